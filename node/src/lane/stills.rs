//! Camera stills for a supervisor watching a lane from the console: the newest gate-1 and gate-2
//! frames, shrunk and JPEG-encoded a few times a second **only while someone is watching**, kept
//! in memory (one per camera, replaced, never written anywhere) and handed out over the port's
//! mutual-TLS API (`Call::LaneStill`, which the node answers only for a viewing the port's audit
//! trail records).
//!
//! Sans-IO apart from the clock the caller passes: the vision thread asks [`Stills::wanted`]
//! before encoding and [`Stills::put`]s the result; the node's handler calls [`Stills::take`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one request keeps a camera's stills coming (the console asks a few times a second).
pub const WATCH_FOR: Duration = Duration::from_secs(3);
/// Least time between two stills of one camera.
pub const EVERY: Duration = Duration::from_millis(250);
/// A still older than this is not handed out (the camera stopped, or nobody watched).
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// Longest side of a still, pixels.
pub const MAX_SIDE: u32 = 480;
/// JPEG quality of a still.
pub const QUALITY: u8 = 70;

#[derive(Default)]
struct Slot {
    watched_until: Option<Instant>,
    latest: Option<(Instant, Vec<u8>)>,
}

/// The stills of the lane's two cameras (index 0 = gate 1, 1 = gate 2).
#[derive(Default)]
pub struct Stills([Mutex<Slot>; 2]);

impl Stills {
    fn slot(&self, camera: usize) -> Option<std::sync::MutexGuard<'_, Slot>> {
        self.0
            .get(camera)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A viewer asks for `camera`'s still (0 = gate 1, 1 = gate 2): keeps stills coming for
    /// [`WATCH_FOR`] and answers the newest one if it is fresh. The first request of a viewing
    /// answers `None` (nothing was encoded while nobody watched).
    pub fn take(&self, camera: usize, now: Instant) -> Option<Vec<u8>> {
        let mut slot = self.slot(camera)?;
        slot.watched_until = Some(now + WATCH_FOR);
        match &slot.latest {
            Some((at, jpeg)) if now.saturating_duration_since(*at) <= FRESH_FOR => {
                Some(jpeg.clone())
            }
            _ => None,
        }
    }

    /// Whether the vision thread should encode a still of `camera` now: someone is watching
    /// and the last still is at least [`EVERY`] old. Once nobody watches, the last still is
    /// dropped.
    pub fn wanted(&self, camera: usize, now: Instant) -> bool {
        let Some(mut slot) = self.slot(camera) else {
            return false;
        };
        if slot.watched_until.is_none_or(|until| now >= until) {
            slot.watched_until = None;
            slot.latest = None;
            return false;
        }
        slot.latest
            .as_ref()
            .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= EVERY)
    }

    /// Keeps `jpeg` as `camera`'s newest still, taken at `at`.
    pub fn put(&self, camera: usize, at: Instant, jpeg: Vec<u8>) {
        if let Some(mut slot) = self.slot(camera) {
            slot.latest = Some((at, jpeg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stills_are_made_only_while_watched_and_handed_out_only_while_fresh() {
        let s = Stills::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert!(!s.wanted(0, t0), "nobody watches: nothing is encoded");
        assert_eq!(s.take(0, t0), None, "the first request has nothing yet");
        assert!(s.wanted(0, ms(1)), "now the gate-1 camera is watched");
        assert!(!s.wanted(1, ms(1)), "the gate-2 camera is not");
        s.put(0, ms(10), vec![1]);
        assert!(!s.wanted(0, ms(100)), "not again within EVERY");
        assert!(s.wanted(0, ms(260)), "again after EVERY");
        assert_eq!(s.take(0, ms(300)), Some(vec![1]));
        s.put(0, ms(300), vec![2]);
        assert_eq!(s.take(0, ms(2200)), Some(vec![2]), "fresh for two seconds");
        assert_eq!(
            s.take(0, ms(2400)),
            None,
            "a still the camera did not renew is not shown"
        );
        // The viewer leaves: past WATCH_FOR the still is dropped and nothing more is made.
        assert!(!s.wanted(0, ms(2400) + WATCH_FOR), "no viewer, no still");
        assert_eq!(
            s.0[0].lock().unwrap().latest,
            None,
            "the last still is dropped"
        );
        assert_eq!(s.take(7, ms(1)), None, "there is no camera 7");
        assert!(!s.wanted(7, ms(1)));
    }
}
