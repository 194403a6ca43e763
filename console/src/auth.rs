//! Console users, sessions, CSRF tokens and lock-out (sans-IO in time: every call takes `now`,
//! milliseconds since the epoch).
//!
//! * Users live in the sled tree `users` of the console's database: name, role, ports (for
//!   supervisors) and an argon2id PHC hash. No default account exists;
//!   the first port admin is made by `clearway-console user add`.
//! * A session is a random 256-bit token (the `clearway_session` cookie); the server keeps only
//!   its SHA-256 (the key in the sled tree `sessions`), with the user, a random 256-bit CSRF
//!   token, the client's address, the login time (absolute lifetime) and the last use (idle
//!   time-out, written at most every [`TOUCH_MS`]). Sessions survive a console restart; a
//!   stolen database holds no token that opens one.
//! * An account has a lifecycle: an administrator disables and re-enables it, deletes it,
//!   resets its password (the user must choose a new one at the next sign-in: until then the
//!   session may do nothing else, see `server::guard`), lifts its login back-off; each ends the
//!   account's sessions where it takes access away. Every user changes their own password and
//!   lists and revokes their own sessions.
//! * Tokens are compared in constant time (`subtle`).
//! * Logins back off ([`crate::throttle`]): per account name after `lockout_after` attempts
//!   and per client address after [`crate::throttle::CLIENT_FREE`], exponentially up to
//!   `lockout_s`, even against the right password; an attempt made too early is refused before
//!   any password is hashed. Names that are nobody's back off alike, and no attempt writes to
//!   disk, so neither answers, timing nor writes tell which accounts exist. At most
//!   [`HASHING_AT_ONCE`] password hashes run at once (the server holds a permit around each
//!   login). The back-off lives in memory: a restart forgets it (an attacker cannot restart the
//!   console); an administrator lifts an account's with [`Auth::unlock`].

use std::sync::Mutex;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use crate::config::{AuthConfig, valid_id};
use crate::dto::{Role, SessionView, UserView, Viewer};
use crate::error::{Error, Result};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Password hashes computed at once (the appliance's cores; each takes ~19 MiB).
pub const HASHING_AT_ONCE: usize = 2;

/// Longest password accepted (argon2 cost does not depend on it, but bodies are bounded).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A stored account.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
struct UserRecord {
    name: String,
    role: Role,
    ports: Vec<String>,
    /// argon2id PHC string.
    hash: String,
    created: Millis,
    /// Disabled by an administrator: no sign-in, no session.
    #[serde(default)]
    disabled: bool,
    /// The password was set by an administrator: the user must change it first.
    #[serde(default)]
    must_change: bool,
}

/// A live session (kept server side in the tree `sessions`, keyed by the token's SHA-256).
#[derive(Clone, Debug, Deserialize, Serialize)]
struct Session {
    user: String,
    csrf: String,
    created: Millis,
    last_seen: Millis,
    /// The client address it signed in from.
    #[serde(default)]
    client: String,
}

/// A session's last use is written back at most this often (not on every request).
pub const TOUCH_MS: Millis = 30_000;

/// What a login answered.
#[derive(Debug)]
pub struct LoggedIn {
    /// The session token for the cookie (256 bits, hex).
    pub token: String,
    /// Who signed in.
    pub viewer: Viewer,
}

/// Users and sessions.
pub struct Auth {
    users: sled::Tree,
    sessions: sled::Tree,
    config: AuthConfig,
    hasher: Argon2<'static>,
    /// The login back-off, per account name and per client address.
    throttle: Mutex<crate::throttle::Throttle>,
    /// Permits for password hashing (~19 MiB and tens of ms each).
    hashing: tokio::sync::Semaphore,
    /// Passwords verified since start (what a flood costs).
    hashed: std::sync::atomic::AtomicU64,
    /// A hash of a random password: unknown users are verified against it, so a login takes as
    /// long whether or not the name exists.
    decoy: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

/// The current time, ms since the epoch.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// 256 random bits, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// A random password of 20 characters (about 114 bits) without look-alike characters.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn session_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a session is shown and revoked by: 64 bits of a hash of its key (neither the token nor
/// the key can be had from it).
fn session_handle(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

/// Checks a user name: 1–64 of `[a-z0-9._-]`.
pub fn check_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'-'
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "user name {name:?} must be 1-64 characters of a-z, 0-9, '.', '_' and '-'"
        )))
    }
}

fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(Error::Invalid(format!(
            "a password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_role_ports(role: Role, ports: &[String]) -> Result<()> {
    match role {
        Role::Supervisor if ports.is_empty() => Err(Error::Invalid(
            "a supervisor needs at least one port to act on".into(),
        )),
        Role::Supervisor => match ports.iter().find(|p| !valid_id(p)) {
            Some(p) => Err(Error::Invalid(format!("{p:?} is not a port id"))),
            None => Ok(()),
        },
        _ if !ports.is_empty() => Err(Error::Invalid(format!(
            "only supervisors have ports; a {} acts on every port its role allows",
            role.label().to_lowercase()
        ))),
        _ => Ok(()),
    }
}

impl Auth {
    /// Opens the user store in `db` (the production hashing cost: argon2id, 19 MiB, 2 passes).
    pub fn open(db: &sled::Db, config: AuthConfig) -> Result<Auth> {
        Auth::with_params(db, config, Params::default())
    }

    /// Opens the user store with explicit argon2id parameters (tests use a cheaper cost).
    pub fn with_params(db: &sled::Db, config: AuthConfig, params: Params) -> Result<Auth> {
        let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy = hash_with(&hasher, &generate_password())?;
        let throttle = crate::throttle::Throttle::new(
            config.lockout_after,
            Millis::try_from(config.lockout().as_millis()).unwrap_or(Millis::MAX),
        );
        Ok(Auth {
            users: db.open_tree("users")?,
            sessions: db.open_tree("sessions")?,
            config,
            hasher,
            throttle: Mutex::new(throttle),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
            hashed: std::sync::atomic::AtomicU64::new(0),
            decoy,
        })
    }

    fn get(&self, name: &str) -> Result<Option<UserRecord>> {
        match self.users.get(name.as_bytes())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| Error::Store(format!("user record {name}: {e}"))),
        }
    }

    /// Whether any user exists.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Creates a user; an existing name is refused.
    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        ports: &[String],
        password: &str,
        now: Millis,
    ) -> Result<()> {
        check_user_name(name)?;
        check_password(password)?;
        check_role_ports(role, ports)?;
        let record = UserRecord {
            name: name.to_string(),
            role,
            ports: ports.to_vec(),
            hash: hash_with(&self.hasher, password)?,
            created: now,
            disabled: false,
            must_change: false,
        };
        let v = serde_json::to_vec(&record).map_err(Error::store)?;
        match self
            .users
            .compare_and_swap(name.as_bytes(), None as Option<&[u8]>, Some(v))?
        {
            Ok(()) => {
                self.users.flush()?;
                info!(user = name, role = %role, "User created.");
                Ok(())
            }
            Err(_) => Err(Error::Invalid(format!("user {name} already exists"))),
        }
    }

    /// Every user, by name.
    pub fn users(&self, now: Millis, offset_minutes: i32) -> Result<Vec<UserView>> {
        let mut out = Vec::new();
        for kv in self.users.iter() {
            let (_, v) = kv?;
            let r: UserRecord = serde_json::from_slice(&v).map_err(Error::store)?;
            let (attempts, until) = self.lock_throttle().account(&r.name, now);
            out.push(UserView {
                locked_until: until.map(|u| crate::time::local(u, offset_minutes)),
                name: r.name,
                role: r.role,
                ports: r.ports,
                failed_logins: attempts,
                disabled: r.disabled,
                must_change: r.must_change,
            });
        }
        Ok(out)
    }

    /// The permits password hashing runs under: the server holds one around each
    /// [`Auth::login`].
    pub fn hashing(&self) -> &tokio::sync::Semaphore {
        &self.hashing
    }

    /// Passwords verified since start (unknown names against the decoy included).
    pub fn hashes(&self) -> u64 {
        self.hashed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Lifts an account's login back-off (an administrator, after checking with the user).
    pub fn unlock(&self, name: &str) {
        self.lock_throttle().unlock(name);
        info!(user = name, "Login back-off lifted.");
    }

    fn lock_throttle(&self) -> std::sync::MutexGuard<'_, crate::throttle::Throttle> {
        // Single inserts and removes: a poisoned lock is still consistent.
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a name and password from `client`; on success opens a session.
    pub fn login(
        &self,
        name: &str,
        password: &str,
        client: std::net::IpAddr,
        now: Millis,
    ) -> Result<LoggedIn> {
        let attempt = self.lock_throttle().attempt(client, name, now);
        if let Err(until) = attempt {
            let shown = if check_user_name(name).is_ok() {
                name
            } else {
                "<not a user name>"
            };
            warn!(
                user = shown,
                result = "locked",
                "Login refused: backing off."
            );
            return Err(Error::LockedOut {
                until: crate::time::local(until, 0),
            });
        }
        self.hashed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(user) = self.get(name)? else {
            // Same work as for a real user, so timing does not tell which names exist.
            let _ = verify_with(&self.hasher, &self.decoy, password);
            // A name that cannot exist may be a password typed into the wrong field: not logged.
            let shown = if check_user_name(name).is_ok() {
                name
            } else {
                "<not a user name>"
            };
            warn!(user = shown, result = "unknown_user", "Login refused.");
            return Err(Error::InvalidCredentials);
        };
        if !verify_with(&self.hasher, &user.hash, password)? {
            let (attempts, _) = self.lock_throttle().account(name, now);
            warn!(
                user = name,
                attempts,
                result = "wrong_password",
                "Login refused."
            );
            return Err(Error::InvalidCredentials);
        }
        self.lock_throttle().succeeded(client, name);
        if user.disabled {
            // Told only to whoever knows the password.
            warn!(user = name, result = "disabled", "Login refused.");
            return Err(Error::AccountDisabled);
        }
        let token = random_token();
        let session = Session {
            user: user.name.clone(),
            csrf: random_token(),
            created: now,
            last_seen: now,
            client: client.to_string(),
        };
        let viewer = viewer_of(&user, &session.csrf);
        self.purge_expired(now)?;
        self.put_session(&session_key(&token), &session)?;
        info!(user = name, role = %user.role, result = "ok", "Signed in.");
        Ok(LoggedIn { token, viewer })
    }

    fn put_session(&self, key: &[u8], s: &Session) -> Result<()> {
        let v = serde_json::to_vec(s).map_err(Error::store)?;
        self.sessions.insert(key, v)?;
        Ok(())
    }

    fn get_session(&self, key: &[u8]) -> Result<Option<Session>> {
        match self.sessions.get(key)? {
            None => Ok(None),
            // A record this build cannot read is no session.
            Some(v) => Ok(serde_json::from_slice(&v).ok()),
        }
    }

    fn live(&self, s: &Session, now: Millis) -> bool {
        let (idle, life) = self.limits();
        now - s.last_seen <= idle && now - s.created <= life
    }

    /// Every stored session: key and record (unreadable ones are skipped).
    fn all_sessions(&self) -> Result<Vec<(sled::IVec, Session)>> {
        let mut out = Vec::new();
        for kv in self.sessions.iter() {
            let (k, v) = kv?;
            if let Ok(s) = serde_json::from_slice::<Session>(&v) {
                out.push((k, s));
            }
        }
        Ok(out)
    }

    fn purge_expired(&self, now: Millis) -> Result<()> {
        for kv in self.sessions.iter() {
            let (k, v) = kv?;
            let keep = serde_json::from_slice::<Session>(&v).is_ok_and(|s| self.live(&s, now));
            if !keep {
                self.sessions.remove(k)?;
            }
        }
        Ok(())
    }

    /// Ends every session of `user` but the one keyed `except`; answers how many ended.
    fn end_sessions(&self, user: &str, except: Option<&[u8]>) -> Result<usize> {
        let mut ended = 0;
        for (k, s) in self.all_sessions()? {
            if s.user == user && except != Some(&k[..]) {
                self.sessions.remove(k)?;
                ended += 1;
            }
        }
        self.sessions.flush()?;
        Ok(ended)
    }

    fn put_user(&self, r: &UserRecord) -> Result<()> {
        let v = serde_json::to_vec(r).map_err(Error::store)?;
        self.users.insert(r.name.as_bytes(), v)?;
        self.users.flush()?;
        Ok(())
    }

    fn existing(&self, name: &str) -> Result<UserRecord> {
        self.get(name)?
            .ok_or_else(|| Error::NotFound(format!("there is no user {name}")))
    }

    /// Port admins that are not disabled, but `except`.
    fn other_admins(&self, except: &str) -> Result<usize> {
        let mut n = 0;
        for kv in self.users.iter() {
            let (_, v) = kv?;
            let r: UserRecord = serde_json::from_slice(&v).map_err(Error::store)?;
            if r.role == Role::PortAdmin && !r.disabled && r.name != except {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Refuses taking `target`'s access away when `actor` is `target` or `target` is the last
    /// enabled port admin (the console would have nobody left to manage it).
    fn check_removable(&self, actor: &str, target: &UserRecord, what: &str) -> Result<()> {
        if actor == target.name {
            return Err(Error::Invalid(format!(
                "you cannot {what} your own account; ask another port admin"
            )));
        }
        if target.role == Role::PortAdmin
            && !target.disabled
            && self.other_admins(&target.name)? == 0
        {
            return Err(Error::Invalid(format!(
                "{} is the last enabled port admin; create another before you {what} it",
                target.name
            )));
        }
        Ok(())
    }

    /// Disables (`true`) or re-enables an account; disabling ends its sessions.
    pub fn set_disabled(&self, actor: &str, name: &str, disabled: bool) -> Result<()> {
        let mut r = self.existing(name)?;
        if disabled {
            self.check_removable(actor, &r, "disable")?;
        }
        r.disabled = disabled;
        self.put_user(&r)?;
        if disabled {
            self.end_sessions(name, None)?;
        }
        info!(user = name, by = actor, disabled, "Account changed.");
        Ok(())
    }

    /// Deletes an account and its sessions.
    pub fn delete_user(&self, actor: &str, name: &str) -> Result<()> {
        let r = self.existing(name)?;
        self.check_removable(actor, &r, "delete")?;
        self.users.remove(name.as_bytes())?;
        self.users.flush()?;
        self.end_sessions(name, None)?;
        self.lock_throttle().unlock(name);
        info!(user = name, by = actor, "Account deleted.");
        Ok(())
    }

    /// Gives an account a generated password the user must change at the next sign-in; ends
    /// its sessions and lifts its back-off. Answers the password (shown once).
    pub fn reset_password(&self, actor: &str, name: &str) -> Result<String> {
        let mut r = self.existing(name)?;
        if actor == name {
            return Err(Error::Invalid(
                "change your own password on the account page".into(),
            ));
        }
        let password = generate_password();
        r.hash = hash_with(&self.hasher, &password)?;
        r.must_change = true;
        self.put_user(&r)?;
        self.end_sessions(name, None)?;
        self.lock_throttle().unlock(name);
        info!(user = name, by = actor, "Password reset.");
        Ok(password)
    }

    /// Changes the signed-in user's own password (the current one is checked; the new one must
    /// differ); ends the user's other sessions. Hashes twice: call under a hashing permit.
    pub fn change_password(
        &self,
        token: &str,
        current: &str,
        new: &str,
        now: Millis,
    ) -> Result<()> {
        let key = session_key(token);
        let s = self
            .get_session(&key)?
            .filter(|s| self.live(s, now))
            .ok_or(Error::SessionExpired)?;
        let mut r = self.existing(&s.user)?;
        check_password(new)?;
        self.hashed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !verify_with(&self.hasher, &r.hash, current)? {
            warn!(user = %s.user, "Password change refused: the current password is wrong.");
            return Err(Error::Invalid("the current password is wrong".into()));
        }
        if current == new {
            return Err(Error::Invalid(
                "the new password must differ from the current one".into(),
            ));
        }
        r.hash = hash_with(&self.hasher, new)?;
        r.must_change = false;
        self.put_user(&r)?;
        self.end_sessions(&s.user, Some(&key))?;
        info!(user = %s.user, "Password changed.");
        Ok(())
    }

    /// The live sessions of `user`, newest first; `current` marks the caller's own.
    pub fn sessions_of(
        &self,
        user: &str,
        current: Option<&str>,
        now: Millis,
        offset_minutes: i32,
    ) -> Result<Vec<SessionView>> {
        let mine = current.map(session_key);
        let mut out: Vec<(Millis, SessionView)> = self
            .all_sessions()?
            .into_iter()
            .filter(|(_, s)| s.user == user && self.live(s, now))
            .map(|(k, s)| {
                let view = SessionView {
                    id: session_handle(&k),
                    signed_in: crate::time::local(s.created, offset_minutes),
                    last_seen: crate::time::local(s.last_seen, offset_minutes),
                    client: s.client.clone(),
                    current: mine.is_some_and(|m| m[..] == k[..]),
                };
                (s.created, view)
            })
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }

    /// Ends `user`'s session shown as `id`; `None` ends every session of the user.
    pub fn revoke(&self, user: &str, id: Option<&str>) -> Result<usize> {
        let Some(id) = id else {
            return self.end_sessions(user, None);
        };
        for (k, s) in self.all_sessions()? {
            if s.user == user && tokens_equal(&session_handle(&k), id) {
                self.sessions.remove(k)?;
                self.sessions.flush()?;
                return Ok(1);
            }
        }
        Err(Error::NotFound(format!("{user} has no session {id}")))
    }

    fn limits(&self) -> (Millis, Millis) {
        (
            self.config.idle().as_millis() as Millis,
            self.config.lifetime().as_millis() as Millis,
        )
    }

    /// The session's user, refreshing its idle timer; an expired session is ended.
    pub fn session(&self, token: Option<&str>, now: Millis) -> Result<Viewer> {
        let token = token.ok_or(Error::Unauthenticated)?;
        let key = session_key(token);
        let mut s = self.get_session(&key)?.ok_or(Error::SessionExpired)?;
        if !self.live(&s, now) {
            self.sessions.remove(key)?;
            return Err(Error::SessionExpired);
        }
        match self.get(&s.user)? {
            Some(r) if !r.disabled => {
                // At most every TOUCH_MS, and often enough for a short idle limit (a session
                // in use must not expire between two writes of its last use).
                let (idle, _) = self.limits();
                if now - s.last_seen >= TOUCH_MS.min(idle / 4) {
                    s.last_seen = now;
                    self.put_session(&key, &s)?;
                }
                Ok(viewer_of(&r, &s.csrf))
            }
            _ => {
                // The account was removed or disabled: its sessions end.
                self.sessions.remove(key)?;
                Err(Error::SessionExpired)
            }
        }
    }

    /// Whether the session is still live, without counting this as use (a page's open
    /// live-update stream must not keep a session alive forever).
    pub fn peek(&self, token: &str, now: Millis) -> bool {
        matches!(self.get_session(&session_key(token)), Ok(Some(s)) if self.live(&s, now))
    }

    /// Checks a state-changing request: a live session and its CSRF token.
    pub fn authorize(
        &self,
        token: Option<&str>,
        csrf: Option<&str>,
        now: Millis,
    ) -> Result<Viewer> {
        let viewer = self.session(token, now)?;
        match csrf {
            Some(c) if tokens_equal(c, &viewer.csrf) => Ok(viewer),
            _ => {
                warn!(user = %viewer.name, "Request refused: CSRF token missing or wrong.");
                Err(Error::Csrf)
            }
        }
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) {
        if let Err(e) = self
            .sessions
            .remove(session_key(token))
            .and_then(|_| self.sessions.flush())
        {
            warn!(error = %e, "Cannot end a session in the store.");
        }
    }

    /// Stored sessions (for tests and metrics).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

fn viewer_of(r: &UserRecord, csrf: &str) -> Viewer {
    Viewer {
        name: r.name.clone(),
        role: r.role,
        ports: r.ports.clone(),
        csrf: csrf.to_string(),
        must_change: r.must_change,
    }
}

fn hash_with(hasher: &Argon2<'_>, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Store(format!("cannot hash a password: {e}")))
}

fn verify_with(hasher: &Argon2<'_>, hash: &str, password: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| Error::Store(format!("a stored password hash is malformed: {e}")))?;
    Ok(hasher.verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "correct horse battery";
    /// The client's address.
    const C: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 7));
    const SEC: Millis = 1000;
    const MIN: Millis = 60_000;

    /// A store with a cheap argon2id cost and short limits: idle 10 min, life 60 min, lock after
    /// 5 for 15 min.
    fn store() -> (tempfile::TempDir, Auth) {
        store_with(600)
    }

    /// [`store`] with another idle limit.
    fn store_with(idle_s: u64) -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let config = AuthConfig {
            session_idle_s: idle_s,
            session_lifetime_s: 3600,
            lockout_after: 5,
            lockout_s: 900,
        };
        let params = Params::new(1024, 1, 1, None).expect("params");
        let auth = Auth::with_params(&db, config, params).expect("auth");
        auth.add_user("ana", Role::Supervisor, &["hengqin".into()], PW, 0)
            .expect("add");
        (dir, auth)
    }

    #[test]
    fn passwords_are_stored_as_argon2id_hashes_only() {
        let (_d, auth) = store();
        let r = auth.get("ana").expect("get").expect("present");
        assert!(r.hash.starts_with("$argon2id$v=19$"), "{}", r.hash);
        assert!(!r.hash.contains(PW));
        let raw = auth.users.get("ana").expect("raw").expect("present");
        assert!(!String::from_utf8_lossy(&raw).contains(PW));
    }

    #[test]
    fn login_checks_the_password_and_issues_distinct_tokens() {
        let (_d, auth) = store();
        let a = auth.login("ana", PW, C, 0).expect("right password");
        let b = auth.login("ana", PW, C, 0).expect("again");
        assert_eq!(a.token.len(), 64);
        assert_ne!(a.token, b.token);
        assert_ne!(a.viewer.csrf, b.viewer.csrf, "one CSRF token per session");
        assert_eq!(a.viewer.role, Role::Supervisor);
        assert!(matches!(
            auth.login("ana", "wrong password!", C, 0),
            Err(Error::InvalidCredentials)
        ));
        assert!(matches!(
            auth.login("nobody", PW, C, 0),
            Err(Error::InvalidCredentials)
        ));
        assert_eq!(auth.session(Some(&a.token), 1).expect("live").name, "ana");
    }

    #[test]
    fn parallel_guesses_are_each_counted() {
        let (_d, auth) = store();
        std::thread::scope(|s| {
            for i in 0..8 {
                let auth = &auth;
                s.spawn(move || {
                    let _ = auth.login("ana", &format!("parallel guess {i}"), C, 0);
                });
            }
        });
        assert!(
            matches!(auth.login("ana", PW, C, 1), Err(Error::LockedOut { .. })),
            "eight parallel wrong guesses lock the account"
        );
    }

    #[test]
    fn five_failures_lock_the_account_even_against_the_right_password() {
        let (_d, auth) = store();
        let mut trace = Vec::new();
        let attempts = [
            (0, "bad password 1"),
            (SEC, "bad password 2"),
            (2 * SEC, "bad password 3"),
            (3 * SEC, "bad password 4"),
            (4 * SEC, "bad password 5"),
            (10 * SEC, PW),
            (34 * SEC, "bad password 6"),
            (40 * SEC, PW),
            (94 * SEC, PW),
            (95 * SEC, "bad password 7"),
        ];
        for (at, pw) in attempts {
            let r = auth.login("ana", pw, C, at);
            trace.push(format!(
                "t={:>2}s {:<14} -> {}",
                at / SEC,
                if pw == PW { "right" } else { pw },
                match r {
                    Ok(_) => "ok".to_string(),
                    Err(e) => e.code().to_string(),
                }
            ));
        }
        expect_test::expect![[r#"
            t= 0s bad password 1 -> invalid_credentials
            t= 1s bad password 2 -> invalid_credentials
            t= 2s bad password 3 -> invalid_credentials
            t= 3s bad password 4 -> invalid_credentials
            t= 4s bad password 5 -> invalid_credentials
            t=10s right          -> locked_out
            t=34s bad password 6 -> invalid_credentials
            t=40s right          -> locked_out
            t=94s right          -> ok
            t=95s bad password 7 -> invalid_credentials"#]]
        .assert_eq(&trace.join("\n"));
        let views = auth.users(95 * SEC, 0).expect("users");
        assert_eq!(views[0].failed_logins, 1);
        assert_eq!(views[0].locked_until, None);
        // An administrator lifts a back-off.
        for i in 0..6 {
            let _ = auth.login("ana", "wrong again", C, 100 * SEC + i);
        }
        assert!(matches!(
            auth.login("ana", PW, C, 101 * SEC),
            Err(Error::LockedOut { .. })
        ));
        assert!(
            auth.users(101 * SEC, 0).expect("users")[0]
                .locked_until
                .is_some()
        );
        auth.unlock("ana");
        assert!(auth.login("ana", PW, C, 101 * SEC).is_ok());
    }

    #[test]
    fn nobodys_name_is_answered_like_a_real_one_and_nothing_is_written() {
        let (_d, auth) = store();
        let before = auth.users.checksum().expect("checksum");
        let mut answers = Vec::new();
        for name in ["ana", "nobody"] {
            let codes: Vec<&str> = (0..7)
                .map(|i| match auth.login(name, "a wrong password", C, i * SEC) {
                    Ok(_) => "ok",
                    Err(e) => e.code(),
                })
                .collect();
            answers.push(codes);
            auth.lock_throttle().succeeded(C, "-");
        }
        assert_eq!(answers[0], answers[1], "{answers:?}");
        assert_eq!(
            auth.users.checksum().expect("checksum"),
            before,
            "failed logins write nothing"
        );
    }

    #[test]
    fn sessions_end_after_idle_time_and_absolute_lifetime() {
        let (_d, auth) = store();
        // Idle: 10 minutes without a request.
        let s = auth.login("ana", PW, C, 0).expect("login");
        assert!(auth.session(Some(&s.token), 9 * MIN).is_ok());
        assert!(
            auth.session(Some(&s.token), 18 * MIN).is_ok(),
            "activity extends"
        );
        assert!(matches!(
            auth.session(Some(&s.token), 29 * MIN),
            Err(Error::SessionExpired)
        ));
        assert!(
            matches!(
                auth.session(Some(&s.token), 29 * MIN),
                Err(Error::SessionExpired)
            ),
            "an expired session stays ended"
        );
        // A short idle limit (15 s, below the write interval): a session used every 5 s lives.
        let (_d2, short) = store_with(15);
        let s = short.login("ana", PW, C, 0).expect("login");
        for t in (5..=60).step_by(5) {
            assert!(short.session(Some(&s.token), t * SEC).is_ok(), "{t} s");
        }
        assert!(matches!(
            short.session(Some(&s.token), 80 * SEC),
            Err(Error::SessionExpired)
        ));
        // Lifetime: 60 minutes however busy.
        let s = auth.login("ana", PW, C, 0).expect("login");
        for m in (5..=60).step_by(5) {
            assert!(auth.session(Some(&s.token), m * MIN).is_ok(), "{m} min");
        }
        assert!(matches!(
            auth.session(Some(&s.token), 61 * MIN),
            Err(Error::SessionExpired)
        ));
        assert!(matches!(auth.session(None, 0), Err(Error::Unauthenticated)));
        assert!(matches!(
            auth.session(Some("forged"), 0),
            Err(Error::SessionExpired)
        ));
        let s = auth.login("ana", PW, C, 0).expect("login");
        auth.logout(&s.token);
        assert!(auth.session(Some(&s.token), 0).is_err(), "logged out");
    }

    #[test]
    fn state_changes_need_the_sessions_own_csrf_token() {
        let (_d, auth) = store();
        let a = auth.login("ana", PW, C, 0).expect("login");
        let b = auth.login("ana", PW, C, 0).expect("login");
        let table: [(Option<&str>, &str); 5] = [
            (Some(&a.viewer.csrf), "ok"),
            (None, "csrf"),
            (Some(""), "csrf"),
            (Some(&b.viewer.csrf), "csrf"),
            (Some(&a.viewer.csrf[..63]), "csrf"),
        ];
        for (csrf, want) in table {
            let got = match auth.authorize(Some(&a.token), csrf, 1) {
                Ok(_) => "ok",
                Err(e) => e.code(),
            };
            assert_eq!(got, want, "{csrf:?}");
        }
        assert_eq!(
            Error::Csrf.status(),
            403,
            "a missing or wrong token is answered 403"
        );
        assert!(matches!(
            auth.authorize(None, Some(&a.viewer.csrf), 1),
            Err(Error::Unauthenticated)
        ));
    }

    #[test]
    fn bad_accounts_are_refused() {
        let (_d, auth) = store();
        let cases: [(&str, Role, &[&str], &str, &str); 6] = [
            ("ana", Role::ServiceDesk, &[], PW, "already exists"),
            ("Ana Lima", Role::ServiceDesk, &[], PW, "user name"),
            ("bo", Role::ServiceDesk, &[], "short", "12 to 256"),
            ("bo", Role::Supervisor, &[], PW, "at least one port"),
            (
                "bo",
                Role::ServiceDesk,
                &["hengqin"],
                PW,
                "only supervisors",
            ),
            ("bo", Role::Supervisor, &["Heng Qin"], PW, "not a port id"),
        ];
        for (name, role, ports, pw, needle) in cases {
            let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            let e = auth
                .add_user(name, role, &ports, pw, 0)
                .expect_err(name)
                .to_string();
            assert!(e.contains(needle), "{name}: {e}");
        }
    }

    #[test]
    fn sessions_survive_a_restart_and_only_their_hash_is_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = AuthConfig {
            session_idle_s: 600,
            session_lifetime_s: 3600,
            lockout_after: 5,
            lockout_s: 900,
        };
        let params = || Params::new(1024, 1, 1, None).expect("params");
        let token = {
            let db = sled::open(dir.path()).expect("sled");
            let auth = Auth::with_params(&db, config.clone(), params()).expect("auth");
            auth.add_user("ana", Role::Supervisor, &["hengqin".into()], PW, 0)
                .expect("add");
            let s = auth.login("ana", PW, C, 0).expect("login");
            db.flush().expect("flush");
            s.token
        };
        let db = crate::reopen_sled(dir.path());
        let auth = Auth::with_params(&db, config, params()).expect("auth");
        assert_eq!(auth.session(Some(&token), MIN).expect("kept").name, "ana");
        for kv in auth.sessions.iter() {
            let (k, v) = kv.expect("entry");
            assert!(!String::from_utf8_lossy(&v).contains(&token));
            assert_ne!(&k[..], token.as_bytes());
        }
        // The idle time-out still holds across the restart.
        assert!(matches!(
            auth.session(Some(&token), 12 * MIN),
            Err(Error::SessionExpired)
        ));
    }

    /// An account's lifecycle, step by step: who may do what, and what it does to sessions.
    #[test]
    fn accounts_are_disabled_reset_and_deleted_by_another_admin() {
        let (_d, auth) = store();
        auth.add_user("root", Role::PortAdmin, &[], PW, 0)
            .expect("root");
        let ana = auth.login("ana", PW, C, 0).expect("login");
        let other = auth.login("ana", PW, C, 0).expect("second session");
        // Nobody takes away their own access, nor the last admin's.
        for (actor, target, step) in [
            ("root", "root", "disable"),
            ("ana", "root", "disable"),
            ("root", "root", "delete"),
        ] {
            let e = match step {
                "disable" => auth.set_disabled(actor, target, true),
                _ => auth.delete_user(actor, target),
            }
            .expect_err(step)
            .to_string();
            assert!(
                e.contains("own account") || e.contains("last enabled port admin"),
                "{e}"
            );
        }
        // Disabling ends the sessions and refuses sign-in, told only with the right password.
        auth.set_disabled("root", "ana", true).expect("disable");
        assert!(auth.session(Some(&ana.token), 1).is_err());
        assert!(matches!(
            auth.login("ana", PW, C, 2),
            Err(Error::AccountDisabled)
        ));
        assert!(matches!(
            auth.login("ana", "wrong password!!", C, 3),
            Err(Error::InvalidCredentials)
        ));
        auth.set_disabled("root", "ana", false).expect("enable");
        // A reset: the old password stops working, the new one must be changed first.
        let generated = auth.reset_password("root", "ana").expect("reset");
        assert!(matches!(
            auth.login("ana", PW, C, 4),
            Err(Error::InvalidCredentials)
        ));
        let s = auth.login("ana", &generated, C, 5).expect("generated");
        assert!(s.viewer.must_change);
        assert!(
            auth.users(5, 0)
                .expect("users")
                .iter()
                .any(|u| u.name == "ana" && u.must_change)
        );
        let e = auth
            .change_password(&s.token, &generated, &generated, 6)
            .expect_err("same password");
        assert!(e.to_string().contains("differ"), "{e}");
        let e = auth
            .change_password(&s.token, "not the password", "a brand new password", 6)
            .expect_err("wrong current");
        assert!(e.to_string().contains("current password is wrong"), "{e}");
        let keep = auth.login("ana", &generated, C, 6).expect("third session");
        auth.change_password(&keep.token, &generated, "a brand new password", 7)
            .expect("change");
        let v = auth.session(Some(&keep.token), 8).expect("kept");
        assert!(!v.must_change);
        assert!(
            auth.session(Some(&s.token), 8).is_err(),
            "the other sessions end"
        );
        assert!(auth.session(Some(&other.token), 8).is_err());
        // Sessions are listed by a handle, not the token, and revoked by it.
        let b = auth
            .login("ana", "a brand new password", C, 9)
            .expect("login");
        let list = auth
            .sessions_of("ana", Some(&b.token), 10, 0)
            .expect("list");
        assert_eq!(list.len(), 2);
        assert!(
            list.iter()
                .all(|x| x.id.len() == 16 && !b.token.contains(&x.id))
        );
        let theirs = list.iter().find(|x| !x.current).expect("the other");
        assert!(
            auth.revoke("root", Some(&theirs.id)).is_err(),
            "only the owner's"
        );
        auth.revoke("ana", Some(&theirs.id)).expect("revoke");
        assert!(auth.session(Some(&keep.token), 11).is_err());
        assert!(auth.session(Some(&b.token), 11).is_ok());
        // Deleting ends everything.
        auth.delete_user("root", "ana").expect("delete");
        assert!(auth.session(Some(&b.token), 12).is_err());
        assert!(matches!(
            auth.login("ana", "a brand new password", C, 13),
            Err(Error::InvalidCredentials)
        ));
        assert_eq!(auth.session_count(), 0);
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_password());
        assert!(check_password(&a).is_ok());
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "abcd"));
    }
}
