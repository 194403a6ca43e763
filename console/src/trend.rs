//! Trend lines per hall, from the console's own ring buffer (no Prometheus needed): clearances
//! per minute and the 95th percentile of face-decision latency per minute, over the last hour.
//!
//! Sans-IO: [`Trends::observe`] takes each poll's lane views with the poll's time; [`Trends::
//! points`] gives a hall's sixty minutes. A lane's clearances are its counter's growth between
//! polls (the first sighting of a lane, or a counter that went back after a restart, sets the
//! baseline without counting); a decision latency is counted once, when a lane's last decision
//! changes.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::dto::LaneView;

/// Minutes a trend covers.
pub const MINUTES: usize = 60;
/// Latencies kept per hall and minute (the percentile of a busier minute uses the first ones).
const LATENCIES_PER_MINUTE: usize = 4096;
const MINUTE_MS: i64 = 60_000;

/// One minute of a hall.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct TrendPoint {
    /// The minute's start, ms since the epoch.
    pub minute_ms: i64,
    /// Clearances completed in it.
    pub clearances: u64,
    /// 95th percentile of the face decisions' latency in it (camera frame to decision), ms.
    pub p95_ms: Option<f64>,
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    minute: i64,
    clearances: u64,
    latencies: Vec<f64>,
}

#[derive(Clone, Debug, Default)]
struct LaneSeen {
    clearances: u64,
    decision: Option<(String, String, Option<u64>)>,
}

/// Every hall's last hour.
#[derive(Clone, Debug, Default)]
pub struct Trends {
    halls: BTreeMap<String, VecDeque<Bucket>>,
    lanes: BTreeMap<String, LaneSeen>,
}

impl Trends {
    /// Takes one lane's view from a poll at `at_ms`.
    pub fn observe(&mut self, hall: &str, channel: &str, view: &LaneView, at_ms: i64) {
        let minute = at_ms.div_euclid(MINUTE_MS);
        let decision = view.last_decision.as_ref().map(|d| {
            (
                d.at.clone(),
                d.outcome.clone(),
                d.latency_ms.map(f64::to_bits),
            )
        });
        let (grown, latency) = match self.lanes.get(channel) {
            None => (0, None),
            Some(seen) => (
                view.clearances.saturating_sub(seen.clearances),
                view.last_decision
                    .as_ref()
                    .filter(|_| decision != seen.decision)
                    .and_then(|d| d.latency_ms),
            ),
        };
        self.lanes.insert(
            channel.to_string(),
            LaneSeen {
                clearances: view.clearances,
                decision,
            },
        );
        let buckets = self.halls.entry(hall.to_string()).or_default();
        if buckets.back().is_none_or(|b| b.minute < minute) {
            buckets.push_back(Bucket {
                minute,
                ..Bucket::default()
            });
        }
        while buckets
            .front()
            .is_some_and(|b| b.minute <= minute - MINUTES as i64)
        {
            buckets.pop_front();
        }
        // A poll late for its minute (clocks do not go back here) counts in the newest bucket.
        if let Some(b) = buckets.back_mut() {
            b.clearances += grown;
            if let Some(ms) = latency
                && b.latencies.len() < LATENCIES_PER_MINUTE
            {
                b.latencies.push(ms);
            }
        }
    }

    /// A hall's last [`MINUTES`] minutes up to `now_ms`, oldest first (minutes without polls
    /// count nothing).
    pub fn points(&self, hall: &str, now_ms: i64) -> Vec<TrendPoint> {
        let now = now_ms.div_euclid(MINUTE_MS);
        let buckets = self.halls.get(hall);
        (now - MINUTES as i64 + 1..=now)
            .map(|minute| {
                let b = buckets.and_then(|bs| bs.iter().find(|b| b.minute == minute));
                TrendPoint {
                    minute_ms: minute * MINUTE_MS,
                    clearances: b.map_or(0, |b| b.clearances),
                    p95_ms: b.and_then(|b| p95(&b.latencies)),
                }
            })
            .collect()
    }
}

/// The 95th percentile (nearest rank) of `values`.
fn p95(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (0.95 * v.len() as f64).ceil() as usize;
    v.get(rank.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::{DecisionView, LaneMode};

    fn lane(clearances: u64, decision: Option<(&str, f64)>) -> LaneView {
        LaneView {
            pad: "enforce".into(),
            node: 1,
            step: "idle".into(),
            mode: LaneMode::FaceAndCard,
            face_scan: true,
            gates: vec!["closed".into(); 3],
            occupancy: 0,
            held_for: None,
            cameras_up: vec![true, true],
            last_decision: decision.map(|(at, ms)| DecisionView {
                outcome: "admitted".into(),
                latency_ms: Some(ms),
                passage_ms: None,
                at: at.into(),
            }),
            acked_order: 0,
            clearances,
            clearances_last_hour: 0,
            staleness_ms: 0,
            direction: String::new(),
            fence: (0, 0),
        }
    }

    #[test]
    fn clearances_count_their_growth_and_latencies_each_decision_once() {
        let mut t = Trends::default();
        let min = |m: i64, s: i64| m * MINUTE_MS + s * 1000;
        // The console starts while lane 1 has cleared 40 people: the baseline, not a burst.
        t.observe("p", "p/1", &lane(40, Some(("08:00:01", 30.0))), min(100, 0));
        t.observe("p", "p/1", &lane(41, Some(("08:00:05", 50.0))), min(100, 5));
        t.observe("p", "p/1", &lane(41, Some(("08:00:05", 50.0))), min(100, 6));
        t.observe("p", "p/2", &lane(3, None), min(100, 7));
        t.observe("p", "p/2", &lane(5, Some(("08:00:09", 70.0))), min(100, 9));
        // Next minute: lane 1 restarted (its counter went back): baseline again.
        t.observe("p", "p/1", &lane(0, None), min(101, 1));
        t.observe("p", "p/1", &lane(1, Some(("08:01:20", 20.0))), min(101, 20));
        let points = t.points("p", min(101, 30));
        assert_eq!(points.len(), MINUTES);
        let last2: Vec<(u64, Option<f64>)> = points[MINUTES - 2..]
            .iter()
            .map(|p| (p.clearances, p.p95_ms))
            .collect();
        assert_eq!(last2, vec![(3, Some(70.0)), (1, Some(20.0))]);
        assert!(
            points[..MINUTES - 2]
                .iter()
                .all(|p| p.clearances == 0 && p.p95_ms.is_none())
        );
        // An hour later the old minutes are gone.
        t.observe("p", "p/1", &lane(2, None), min(161, 0));
        let points = t.points("p", min(161, 0));
        assert_eq!(points.iter().map(|p| p.clearances).sum::<u64>(), 1);
        assert!(
            t.points("elsewhere", min(161, 0))
                .iter()
                .all(|p| p.clearances == 0)
        );
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        assert_eq!(p95(&[]), None);
        assert_eq!(p95(&[5.0]), Some(5.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p95(&hundred), Some(95.0));
        assert_eq!(p95(&[3.0, 1.0, 2.0]), Some(3.0));
    }
}
