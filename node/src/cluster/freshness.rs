//! When a follower's replica counts as current: the rule behind a lane's face-scan staleness.
//!
//! A follower hears from the leader through `AppendEntries`. Hearing from it is not enough: a
//! lane that comes back after a partition or a restart is reached by the leader at once, but its
//! replica may still lack entries committed meanwhile — a cancellation among them. Such a lane
//! must not identify anyone from its stale replica. So an append counts as contact only once the
//! replica has *applied* everything that append said the leader had committed. Until then the
//! contact is pending; the lane's staleness keeps growing from the last contact that counted (or
//! stays "never" after a restart), and face scan stays off.
//!
//! Sans-IO: times are milliseconds on the node's monotonic clock, indexes are log indexes; the
//! node feeds it appends and asks it on every staleness read.

/// The last contact that counted, and the one waiting for the replica to catch up.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Freshness {
    /// (received at, the leader's commit index it carried), not yet applied here.
    pending: Option<(u64, u64)>,
    /// When the last contact that counted was received.
    current_at: Option<u64>,
}

impl Freshness {
    /// A successful append received at `at`, carrying the leader's commit index
    /// `leader_commit`, with this replica's applied index `applied` at that moment.
    pub fn on_append(&mut self, at: u64, leader_commit: u64, applied: u64) {
        self.promote(applied);
        // An older pending contact stays until it counts: under a steady stream of writes each
        // append carries a newer commit index than the replica has yet applied, and replacing
        // the pending one each time would never let any count.
        if self.pending.is_none() {
            self.pending = Some((at, leader_commit));
        }
        self.promote(applied);
    }

    /// When the replica was last known current, given its applied index now; `None` if never
    /// (since start-up).
    pub fn current_at(&mut self, applied: u64) -> Option<u64> {
        self.promote(applied);
        self.current_at
    }

    fn promote(&mut self, applied: u64) {
        if let Some((at, commit)) = self.pending
            && applied >= commit
        {
            self.current_at = Some(self.current_at.map_or(at, |c| c.max(at)));
            self.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Freshness;

    /// Each step: an append (at, leader commit, applied) or a read (applied), then the expected
    /// `current_at`.
    enum Step {
        Append(u64, u64, u64),
        Read(u64),
    }
    use Step::*;

    #[test]
    fn contact_counts_once_the_replica_applied_what_the_leader_committed() {
        let cases: &[(&str, &[(Step, Option<u64>)])] = &[
            ("never heard from a leader", &[(Read(0), None)]),
            (
                "caught up at once",
                &[(Append(100, 5, 5), Some(100)), (Read(5), Some(100))],
            ),
            (
                "restarted behind a cancellation: no contact until it is applied",
                &[
                    (Append(100, 9, 4), None),
                    (Read(6), None),
                    (Append(200, 9, 8), None),
                    (Read(9), Some(100)),
                    (Append(300, 9, 9), Some(300)),
                ],
            ),
            (
                "back from a partition: the last contact that counted stays",
                &[
                    (Append(100, 5, 5), Some(100)),
                    (Append(5000, 12, 5), Some(100)),
                    (Read(11), Some(100)),
                    (Read(12), Some(5000)),
                ],
            ),
            (
                "a steady stream of writes still counts, one append behind",
                &[
                    (Append(100, 1, 1), Some(100)),
                    (Append(200, 2, 1), Some(100)),
                    (Append(300, 3, 2), Some(200)),
                    (Append(400, 4, 3), Some(300)),
                    (Append(500, 5, 4), Some(400)),
                ],
            ),
        ];
        for (name, steps) in cases {
            let mut f = Freshness::default();
            for (i, (step, want)) in steps.iter().enumerate() {
                let got = match *step {
                    Append(at, commit, applied) => {
                        f.on_append(at, commit, applied);
                        f.current_at(applied)
                    }
                    Read(applied) => f.current_at(applied),
                };
                assert_eq!(got, *want, "{name}: step {i}");
            }
        }
    }
}
