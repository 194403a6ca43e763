//! Registered travellers' records kept true: the document data a card carries and seed 000's
//! prerequisites "as last confirmed" by the authorities.
//!
//! * A card read of a registered traveller refreshes the document data (a renewed validity or
//!   endorsement) and re-confirms the prerequisites with the port's authorities.
//! * A face passage re-confirms the prerequisites when this lane last did so for the traveller
//!   more than `prerequisite_recheck` ago (`[lane.procedure]`, default a day), so a prerequisite
//!   an authority withdrew stops face scan from the traveller's next passage, whether they ever
//!   scan a card again or not.
//!
//! What changed is written through the cluster ([`refresh_commands`]); without every
//! authority's answer the prerequisites stay as last confirmed. Bounded, so a replayed card or a
//! crowd cannot multiply the authorities' queries and the log's writes: one check per traveller
//! per [`CARD_COOLDOWN`] at card reads, at most [`MAX_IN_FLIGHT`] checks at once (more are
//! skipped, not queued), and a bounded [`RecheckBook`] of who was checked when.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clearway_gallery::{Authority, Person, PersonId, Policy, Request};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::authority::AuthorityClient;
use super::procedure::{
    DocumentKey, DocumentRead, PrerequisiteStatus, confirm_prerequisites, refresh_commands,
};
use crate::cluster::ClusterNode;

/// The shortest time between two card-read refreshes of one traveller.
pub const CARD_COOLDOWN: Duration = Duration::from_secs(60);
/// Most refreshes running at once.
pub const MAX_IN_FLIGHT: usize = 4;
/// Most travellers a book remembers (the oldest is forgotten first).
const BOOK_CAP: usize = 4096;

/// Who was last checked when, bounded. Pure: the caller passes the time.
#[derive(Debug)]
pub struct RecheckBook {
    last: HashMap<PersonId, Instant>,
    cap: usize,
}

impl RecheckBook {
    /// An empty book remembering at most `cap` travellers.
    pub fn new(cap: usize) -> RecheckBook {
        RecheckBook {
            last: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// Whether `person` is due for a check at `now` (none on record within `gap`); if so, notes
    /// the check. A full book forgets its oldest entry first.
    pub fn take(&mut self, person: PersonId, now: Instant, gap: Duration) -> bool {
        if self
            .last
            .get(&person)
            .is_some_and(|t| now.saturating_duration_since(*t) < gap)
        {
            return false;
        }
        if self.last.len() >= self.cap && !self.last.contains_key(&person) {
            let oldest = self.last.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p);
            if let Some(oldest) = oldest {
                self.last.remove(&oldest);
            }
        }
        self.last.insert(person, now);
        true
    }

    /// Travellers remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether nobody is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// Starts the refreshes of one lane (cheap to clone).
#[derive(Clone)]
pub struct Refresher {
    inner: Arc<Inner>,
}

struct Inner {
    node: ClusterNode,
    clients: Vec<(Authority, AuthorityClient)>,
    policy: Policy,
    recheck: Duration,
    cards: Mutex<RecheckBook>,
    faces: Mutex<RecheckBook>,
    permits: Arc<Semaphore>,
}

impl Refresher {
    /// Refreshes through `node`, asking `clients` (the port's authorities) under `policy`;
    /// a face passage re-checks after `recheck`.
    pub fn new(
        node: ClusterNode,
        clients: Vec<(Authority, AuthorityClient)>,
        policy: Policy,
        recheck: Duration,
    ) -> Refresher {
        Refresher {
            inner: Arc::new(Inner {
                node,
                clients,
                policy,
                recheck,
                cards: Mutex::new(RecheckBook::new(BOOK_CAP)),
                faces: Mutex::new(RecheckBook::new(BOOK_CAP)),
                permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            }),
        }
    }

    /// A registered traveller's card was read: refresh the document data and re-confirm the
    /// prerequisites (at most once per [`CARD_COOLDOWN`]).
    pub fn card_read(&self, person: Person, read: DocumentRead) {
        self.start(&self.inner.cards, CARD_COOLDOWN, person, Some(read));
    }

    /// A registered traveller passed by face: re-confirm the prerequisites if this lane last
    /// did more than `recheck` ago.
    pub fn face_passage(&self, person: Person) {
        if !self.inner.policy.prerequisites {
            return;
        }
        self.start(&self.inner.faces, self.inner.recheck, person, None);
    }

    fn start(
        &self,
        book: &Mutex<RecheckBook>,
        gap: Duration,
        person: Person,
        read: Option<DocumentRead>,
    ) {
        let Ok(permit) = self.inner.permits.clone().try_acquire_owned() else {
            debug!("A record refresh was skipped: enough are running.");
            return;
        };
        let due =
            book.lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(person.id, Instant::now(), gap);
        if !due {
            return;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            refresh(&inner, person, read).await;
            drop(permit);
        });
    }
}

/// Asks the authorities, then writes what changed.
async fn refresh(inner: &Inner, person: Person, read: Option<DocumentRead>) {
    let key = match &read {
        Some(read) => read.key(),
        None => DocumentKey {
            kind: person.document.kind,
            number: person.document.number.clone(),
        },
    };
    let confirmed = if inner.policy.prerequisites {
        let mut answers = [PrerequisiteStatus::default(), PrerequisiteStatus::default()];
        let mut complete = true;
        for (authority, client) in &inner.clients {
            match client.prerequisites(&key).await {
                Ok(status) => answers[usize::from(*authority == Authority::Mainland)] = status,
                Err(e) => {
                    warn!(%authority, error = %e, "Prerequisites not re-confirmed this time.");
                    complete = false;
                }
            }
        }
        let [macao, mainland] = &answers;
        complete.then(|| confirm_prerequisites(person.category, macao, mainland).0)
    } else {
        None
    };
    let commands = refresh_commands(&person, read.as_ref(), confirmed.as_ref());
    if commands.is_empty() {
        return;
    }
    let what: Vec<&str> = commands.iter().map(|c| c.name()).collect();
    match inner.node.write(Request::V1(commands)).await {
        Ok(_) => info!(changes = ?what, "A registered traveller's record was brought up to date."),
        Err(e) => {
            warn!(error = %e, "A registered traveller's record could not be brought up to date.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traveller_is_checked_once_per_gap() {
        let mut book = RecheckBook::new(8);
        let t0 = Instant::now();
        let gap = Duration::from_secs(60);
        let (a, b) = (PersonId(1), PersonId(2));
        let steps = [
            (a, 0, true, "first read"),
            (a, 1, false, "replayed a second later"),
            (b, 1, true, "someone else"),
            (a, 59, false, "still within the gap"),
            (a, 60, true, "the gap has passed"),
            (a, 61, false, "checked again just now"),
        ];
        for (who, s, due, what) in steps {
            assert_eq!(
                book.take(who, t0 + Duration::from_secs(s), gap),
                due,
                "{what}"
            );
        }
        assert!(
            book.take(a, t0 + Duration::from_secs(61), Duration::ZERO),
            "a zero gap checks every time"
        );
    }

    #[test]
    fn a_flood_of_cards_stays_within_the_book() {
        let mut book = RecheckBook::new(3);
        let t0 = Instant::now();
        let gap = Duration::from_secs(60);
        for i in 0..100 {
            assert!(book.take(PersonId(i), t0 + Duration::from_millis(i), gap));
        }
        assert_eq!(book.len(), 3, "bounded");
        // The most recent stay remembered; the oldest were forgotten.
        assert!(!book.take(PersonId(99), t0 + Duration::from_millis(100), gap));
        assert!(book.take(PersonId(0), t0 + Duration::from_millis(100), gap));
    }
}
