//! Login back-off per client address and per account name, in memory (sans-IO: every call
//! takes `now`, milliseconds).
//!
//! Every attempt counts until one succeeds, so parallel guesses are each counted. The first
//! `free` attempts of a key go through at once; after that each waits `BASE_MS · 2^(n − free)`,
//! at most `cap`, from the previous attempt. An attempt made too early is refused without a
//! password being hashed, and does not count. Keys are what the client sent — a name that is
//! nobody's backs off exactly like a real one — so neither the answer, its timing nor any disk
//! write tells which accounts exist. Both books are bounded: a full one forgets first the keys
//! whose back-off has run out, then the oldest.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

use crate::auth::Millis;

/// The first back-off step.
pub const BASE_MS: Millis = 30_000;
/// Attempts a client address makes before it backs off (a shared office NAT, typos).
pub const CLIENT_FREE: u32 = 20;
/// Most keys a book remembers.
const BOOK_CAP: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Entry {
    attempts: u32,
    last: Millis,
}

#[derive(Debug)]
struct Book<K> {
    entries: HashMap<K, Entry>,
    free: u32,
    cap_ms: Millis,
}

impl<K: Hash + Eq + Clone> Book<K> {
    fn new(free: u32, cap_ms: Millis) -> Book<K> {
        Book {
            entries: HashMap::new(),
            free,
            cap_ms,
        }
    }

    /// When `e` may try again.
    fn until(&self, e: &Entry) -> Millis {
        if e.attempts < self.free {
            return e.last;
        }
        let step = (e.attempts - self.free).min(20);
        e.last
            .saturating_add(BASE_MS.saturating_mul(1 << step).min(self.cap_ms))
    }

    fn refused(&self, key: &K, now: Millis) -> Option<Millis> {
        let e = self.entries.get(key)?;
        let until = self.until(e);
        (now < until).then_some(until)
    }

    fn count(&mut self, key: &K, now: Millis) {
        if !self.entries.contains_key(key) && self.entries.len() >= BOOK_CAP {
            self.make_room(now);
        }
        let e = self.entries.entry(key.clone()).or_insert(Entry {
            attempts: 0,
            last: now,
        });
        e.attempts = e.attempts.saturating_add(1);
        e.last = now;
    }

    fn make_room(&mut self, now: Millis) {
        let done: Vec<K> = self
            .entries
            .iter()
            .filter(|(_, e)| self.until(e) <= now && now - e.last > self.cap_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            self.entries.remove(&k);
        }
        if self.entries.len() >= BOOK_CAP {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
    }
}

/// The two books.
#[derive(Debug)]
pub struct Throttle {
    accounts: Book<String>,
    clients: Book<IpAddr>,
}

impl Throttle {
    /// `account_free` attempts per account name before back-off; back-off at most `cap_ms`.
    pub fn new(account_free: u32, cap_ms: Millis) -> Throttle {
        Throttle {
            accounts: Book::new(account_free.max(1), cap_ms.max(BASE_MS)),
            clients: Book::new(CLIENT_FREE, cap_ms.max(BASE_MS)),
        }
    }

    /// An attempt by `client` on `account` at `now`: `Err(until)` when either is backing off
    /// (not counted, nothing to hash); otherwise counted against both.
    pub fn attempt(&mut self, client: IpAddr, account: &str, now: Millis) -> Result<(), Millis> {
        let account = account.to_string();
        let refused = [
            self.accounts.refused(&account, now),
            self.clients.refused(&client, now),
        ];
        if let Some(until) = refused.into_iter().flatten().max() {
            return Err(until);
        }
        self.accounts.count(&account, now);
        self.clients.count(&client, now);
        Ok(())
    }

    /// The attempt succeeded: both start afresh.
    pub fn succeeded(&mut self, client: IpAddr, account: &str) {
        self.accounts.entries.remove(account);
        self.clients.entries.remove(&client);
    }

    /// An administrator lifts an account's back-off.
    pub fn unlock(&mut self, account: &str) {
        self.accounts.entries.remove(account);
    }

    /// Attempts on `account` since its last success, and until when it backs off (if it does).
    pub fn account(&self, account: &str, now: Millis) -> (u32, Option<Millis>) {
        match self.accounts.entries.get(account) {
            Some(e) => (e.attempts, self.accounts.refused(&account.to_string(), now)),
            None => (0, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "lee";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn an_account_backs_off_exponentially_after_its_free_attempts() {
        let mut t = Throttle::new(5, 900_000);
        let c = ip("10.0.0.1");
        for i in 0..5 {
            assert_eq!(t.attempt(c, A, i), Ok(()), "free attempt {i}");
        }
        // The sixth waits 30 s from the fifth, the seventh 60 s from the sixth, …
        assert_eq!(t.attempt(c, A, 10), Err(4 + 30_000));
        assert_eq!(t.attempt(c, A, 4 + 30_000), Ok(()));
        assert_eq!(t.attempt(c, A, 4 + 30_001), Err(4 + 30_000 + 60_000));
        assert_eq!(t.account(A, 4 + 30_001).0, 6, "refusals do not count");
        // … at most the cap.
        let mut now = 4 + 30_000 + 60_000;
        for _ in 0..10 {
            assert_eq!(t.attempt(c, A, now), Ok(()));
            let Err(until) = t.attempt(c, A, now + 1) else {
                panic!("backing off")
            };
            assert!(until - now <= 900_000);
            now = until;
        }
        // A success starts afresh; so does an administrator's unlock.
        t.succeeded(c, A);
        assert_eq!(t.account(A, now), (0, None));
        for i in 0..5 {
            assert_eq!(t.attempt(ip("10.0.0.2"), A, now + i), Ok(()));
        }
        assert!(t.attempt(ip("10.0.0.3"), A, now + 5).is_err());
        t.unlock(A);
        assert_eq!(t.attempt(ip("10.0.0.3"), A, now + 6), Ok(()));
    }

    #[test]
    fn a_flooding_address_backs_off_and_others_do_not() {
        let mut t = Throttle::new(5, 900_000);
        let flood = ip("10.9.9.9");
        let mut refused = 0;
        for i in 0..1000 {
            // A different name each time: the account book does not stop it, the address does.
            if t.attempt(flood, &format!("guess{i}"), i).is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 1000 - CLIENT_FREE as usize);
        assert_eq!(
            t.attempt(ip("10.0.0.1"), A, 1000),
            Ok(()),
            "another user signs in"
        );
    }

    #[test]
    fn a_name_that_is_nobodys_backs_off_like_a_real_one() {
        let mut t = Throttle::new(5, 900_000);
        let c = ip("10.0.0.1");
        let mut answers = Vec::new();
        for name in ["lee", "no-such-user"] {
            answers.push(
                (0..7)
                    .map(|i| t.attempt(c, name, i * 10).is_ok())
                    .collect::<Vec<_>>(),
            );
            t.succeeded(c, "x"); // keep the address book out of it
        }
        assert_eq!(answers[0], answers[1]);
    }

    #[test]
    fn the_books_stay_bounded() {
        let mut t = Throttle::new(5, 900_000);
        for i in 0..(BOOK_CAP as u32 + 50) {
            let c = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            let _ = t.attempt(c, &format!("n{i}"), Millis::from(i));
        }
        assert!(t.accounts.entries.len() <= BOOK_CAP);
        assert!(t.clients.entries.len() <= BOOK_CAP);
    }
}
