//! Cancellations, told to the port's authorities (seed 000: the registration was recorded with
//! both authorities, so its cancellation is too).
//!
//! A cancellation at a service location erases the person on every replica and leaves a
//! [`CancellationNotice`] in the replicated registry: sealed at rest, carried in snapshots, the
//! only thing of the person kept, and only until delivered. Every lane of the port is a courier:
//! it delivers each notice to every authority of the port under one idempotency key per
//! cancellation ([`notice_key`]: the authority keeps the first copy and answers later ones as
//! duplicates), then reports it delivered (`Command::NoticeDelivered`), which removes it on every
//! replica. So each authority records each cancellation exactly once, whichever lanes deliver,
//! crash or restart meanwhile; a lane that was down, or that catches up from a snapshot, still
//! finds the notice. Lanes spread their first attempts ([`courier_delay`]) so that usually one
//! delivers alone; a failing authority is retried with a growing pause.
//!
//! [`notice_key`], [`notice_record`] and [`courier_delay`] are the pure part; [`run`] is the IO.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clearway_gallery::{Authority, CancellationNotice, Command, NoticeId, Request};
use prometheus::IntGauge;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{info, warn};

use super::authority::AuthorityClient;
use super::procedure::{AuthorityRecord, DocumentKey};
use crate::cluster::ClusterNode;
use crate::cluster::authz::MAX_NOTICES_PER_BATCH;

/// How often a lane looks at its replica's notices.
const TICK: Duration = Duration::from_secs(1);
/// A lane's first attempt at a notice waits up to this long (its own share of it).
pub const SPREAD: Duration = Duration::from_secs(5);
/// The longest pause after an authority failed.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The idempotency key a cancellation goes to the authorities under: the same on every lane,
/// different for every cancellation (of any port: the document and the time are in it), and
/// without personal data in clear.
pub fn notice_key(id: NoticeId, notice: &CancellationNotice) -> String {
    let mut h = Sha256::new();
    for part in [
        "clearway-cancellation",
        &id.index.to_string(),
        &id.person.0.to_string(),
        notice.kind.as_str(),
        &notice.number,
        &notice
            .cancelled_at
            .map(|t| t.timestamp_millis().to_string())
            .unwrap_or_default(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("cancel-{}", &hex::encode(h.finalize())[..32])
}

/// The record an authority receives for a notice; `now` dates a cancellation whose change
/// carried no time.
pub fn notice_record(
    id: NoticeId,
    notice: &CancellationNotice,
    now: DateTime<Utc>,
) -> AuthorityRecord {
    AuthorityRecord::RegistrationCancelled {
        document: DocumentKey {
            kind: notice.kind,
            number: notice.number.clone(),
        },
        cancelled_at: notice.cancelled_at.unwrap_or(now),
        reference: format!("{}/{}", id.index, id.person),
    }
}

/// How long this lane lets a notice wait before delivering it itself: a share of `spread`
/// fixed by the channel and the notice, so lanes take turns and one usually delivers alone.
pub fn courier_delay(channel: &str, id: NoticeId, spread: Duration) -> Duration {
    let mut h = Sha256::new();
    h.update(channel.as_bytes());
    h.update(id.index.to_be_bytes());
    h.update(id.person.0.to_be_bytes());
    let d = h.finalize();
    let r = u64::from_be_bytes(d[..8].try_into().unwrap_or_default());
    let ms = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(r % ms)
}

/// Delivers the replica's cancellation notices to `clients` (the port's authorities) until
/// `stop`, and reports them delivered through the cluster; `pending` shows how many the
/// replica holds.
pub async fn run(
    node: ClusterNode,
    channel: String,
    clients: Vec<(Authority, AuthorityClient)>,
    pending: IntGauge,
    spread: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen: HashMap<NoticeId, Instant> = HashMap::new();
    let mut delivered: HashSet<(NoticeId, Authority)> = HashSet::new();
    let mut pause: HashMap<Authority, (Instant, Duration)> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        let notices: Vec<(NoticeId, CancellationNotice)> = {
            let applied = node.gallery().read();
            pending.set(i64::try_from(applied.registry.notices().count()).unwrap_or(i64::MAX));
            applied
                .registry
                .notices()
                .take(MAX_NOTICES_PER_BATCH)
                .map(|(id, n)| (*id, n.clone()))
                .collect()
        };
        let now = Instant::now();
        seen.retain(|id, _| notices.iter().any(|(n, _)| n == id));
        delivered.retain(|(id, _)| seen.contains_key(id));
        let mut done = Vec::new();
        for (id, notice) in &notices {
            let first = *seen.entry(*id).or_insert(now);
            if now.duration_since(first) < courier_delay(&channel, *id, spread) {
                continue;
            }
            let key = notice_key(*id, notice);
            let record = notice_record(*id, notice, Utc::now());
            for (authority, client) in &clients {
                if delivered.contains(&(*id, *authority)) {
                    continue;
                }
                if pause.get(authority).is_some_and(|(until, _)| now < *until) {
                    continue;
                }
                match client.deliver(&key, &record).await {
                    Ok(()) => {
                        delivered.insert((*id, *authority));
                        pause.remove(authority);
                    }
                    Err(e) => {
                        let last = pause.get(authority).map_or(TICK, |(_, p)| *p);
                        let next = (last * 2).min(MAX_PAUSE);
                        pause.insert(*authority, (Instant::now() + next, next));
                        warn!(%authority, notice = id.index, error = %e,
                            "A cancellation was not delivered; it is tried again.");
                    }
                }
            }
            if clients.iter().all(|(a, _)| delivered.contains(&(*id, *a))) {
                done.push(*id);
            }
        }
        if done.is_empty() {
            continue;
        }
        let batch = done
            .iter()
            .map(|id| Command::NoticeDelivered { notice: *id })
            .collect();
        match node.write(Request::V1(batch)).await {
            Ok(_) => info!(
                notices = done.len(),
                "Cancellations delivered to every authority of the port."
            ),
            // The authorities have them; the next round reports them again.
            Err(e) => warn!(error = %e, "Delivered cancellations could not be reported."),
        }
    }
}

#[cfg(test)]
mod tests {
    use clearway_gallery::{DocumentKind, PersonId};

    use super::*;

    fn notice(at: Option<&str>) -> CancellationNotice {
        CancellationNotice {
            kind: DocumentKind::MainlandTravelPermitHkMacao,
            number: "1234567(8)".into(),
            cancelled_at: at.map(|t| t.parse().expect("time")),
        }
    }

    const ID: NoticeId = NoticeId {
        index: 41,
        person: PersonId(3),
    };

    #[test]
    fn one_key_per_cancellation_the_same_on_every_lane() {
        let n = notice(Some("2026-03-01T09:30:00Z"));
        let key = notice_key(ID, &n);
        assert_eq!(key, notice_key(ID, &n.clone()), "stable");
        assert!(key.starts_with("cancel-") && key.len() == 39, "{key}");
        assert!(!key.contains("1234567"), "no document number in clear");
        let other_index = NoticeId { index: 42, ..ID };
        let other_time = notice(Some("2026-03-01T09:30:01Z"));
        let mut other_number = n.clone();
        other_number.number = "7654321(0)".into();
        for (id, n2) in [(other_index, &n), (ID, &other_time), (ID, &other_number)] {
            assert_ne!(notice_key(id, n2), key);
        }
    }

    #[test]
    fn the_record_names_the_document_the_time_and_the_reference_only() {
        let now: DateTime<Utc> = "2026-03-02T00:00:00Z".parse().expect("time");
        let dated = notice_record(ID, &notice(Some("2026-03-01T09:30:00Z")), now);
        let json = serde_json::to_value(&dated).expect("json");
        assert_eq!(json["record"], "registration_cancelled");
        assert_eq!(json["document"]["number"], "1234567(8)");
        assert_eq!(json["cancelled_at"], "2026-03-01T09:30:00Z");
        assert_eq!(json["reference"], "41/P00000003");
        let undated = notice_record(ID, &notice(None), now);
        assert!(matches!(
            undated,
            AuthorityRecord::RegistrationCancelled { cancelled_at, .. } if cancelled_at == now
        ));
    }

    #[test]
    fn lanes_take_turns_within_the_spread() {
        let spread = Duration::from_secs(5);
        let delays: HashSet<Duration> = (0..16)
            .map(|lane| courier_delay(&format!("hengqin/passenger/{lane}"), ID, spread))
            .collect();
        assert!(delays.iter().all(|d| *d < spread));
        assert!(delays.len() > 8, "lanes spread out: {delays:?}");
        assert_eq!(
            courier_delay("hengqin/passenger/1", ID, spread),
            courier_delay("hengqin/passenger/1", ID, spread),
            "a lane keeps its turn from one look to the next"
        );
    }
}
