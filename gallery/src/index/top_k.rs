//! Best `k` persons of a scan, one entry per person, ties broken by the lower row index.

use std::cmp::Ordering;

use super::Hit;
use crate::person::PersonId;

#[derive(Debug, Clone, Copy)]
struct Entry {
    score: f32,
    row: usize,
    person: PersonId,
}

/// Whether (score `a`, row `a_row`) ranks before (score `b`, row `b_row`): higher score first, then lower row.
/// A strict total order, so the result does not depend on the order rows are offered in.
#[inline]
fn ranks_before(a: f32, a_row: usize, b: f32, b_row: usize) -> bool {
    match a.total_cmp(&b) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => a_row < b_row,
    }
}

/// A sorted list (best first) of at most `k` entries, each a different person with their best row so far.
///
/// Invariant: after any sequence of offers, the list holds the `k` persons whose best offered row ranks
/// highest. An offer for a person already listed can only raise that person's entry; an offer for an
/// unlisted person that does not beat the worst entry cannot make that person a top-`k` person, because
/// every earlier row of theirs was at most as good (it was rejected or evicted by something better).
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    entries: Vec<Entry>,
    /// The worst listed score once `k` entries are held, else `-∞`: no lower score can enter.
    threshold: f32,
}

impl TopK {
    pub(crate) fn new(k: usize) -> TopK {
        TopK {
            k,
            entries: Vec::with_capacity(k.min(1024) + 1),
            threshold: if k == 0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            },
        }
    }

    /// Scores below this cannot enter; callers skip [`TopK::offer`] for them (the scan's fast path).
    /// Scores are never NaN: they are products of finite values.
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        self.threshold
    }

    #[inline]
    pub(crate) fn offer(&mut self, score: f32, row: usize, person: PersonId) {
        if self.entries.len() == self.k {
            match self.entries.last() {
                Some(worst) if ranks_before(score, row, worst.score, worst.row) => {}
                _ => return, // k == 0, or not better than the worst entry.
            }
        }
        self.insert(Entry { score, row, person });
    }

    #[cold]
    fn insert(&mut self, entry: Entry) {
        if let Some(pos) = self.entries.iter().position(|e| e.person == entry.person) {
            let held = self.entries[pos];
            if !ranks_before(entry.score, entry.row, held.score, held.row) {
                return;
            }
            self.entries.remove(pos);
        } else if self.entries.len() == self.k {
            self.entries.pop();
        }
        let at = self
            .entries
            .iter()
            .position(|e| ranks_before(entry.score, entry.row, e.score, e.row))
            .unwrap_or(self.entries.len());
        self.entries.insert(at, entry);
        if self.entries.len() == self.k {
            self.threshold = self.entries[self.k - 1].score;
        }
    }

    /// Takes in another scan's list (of other rows): the result is the list one scan over both sets of
    /// rows would have made, since each list holds its rows' best `k` persons at their best row.
    pub(crate) fn merge(&mut self, other: TopK) {
        for e in other.entries {
            self.offer(e.score, e.row, e.person);
        }
    }

    pub(crate) fn into_hits(self) -> Vec<Hit> {
        self.entries
            .into_iter()
            .map(|e| Hit {
                person: e.person,
                score: e.score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(k: usize, offers: &[(f32, usize, u64)]) -> Vec<(u64, f32)> {
        let mut top = TopK::new(k);
        for &(score, row, person) in offers {
            top.offer(score, row, PersonId(person));
        }
        top.into_hits()
            .into_iter()
            .map(|h| (h.person.0, h.score))
            .collect()
    }

    #[test]
    fn keeps_best_k_persons_once_each() {
        let offers = [
            (0.5, 0, 1),
            (0.9, 1, 2),
            (0.7, 2, 1),
            (0.8, 3, 3),
            (0.95, 4, 2),
            (0.1, 5, 4),
        ];
        assert_eq!(run(2, &offers), vec![(2, 0.95), (3, 0.8)]);
        assert_eq!(run(3, &offers), vec![(2, 0.95), (3, 0.8), (1, 0.7)]);
        assert_eq!(run(10, &offers).len(), 4);
        assert_eq!(run(0, &offers), vec![]);
    }

    #[test]
    fn ties_go_to_the_lower_row_whatever_the_order() {
        let forward = [(0.5, 3, 7), (0.5, 9, 8)];
        let backward = [(0.5, 9, 8), (0.5, 3, 7)];
        assert_eq!(run(1, &forward), vec![(7, 0.5)]);
        assert_eq!(run(1, &backward), vec![(7, 0.5)]);
    }

    #[test]
    fn evicted_person_can_come_back_with_a_better_row() {
        // Person 1 is evicted by 2 and 3, then returns with a higher score.
        let offers = [(0.3, 0, 1), (0.4, 1, 2), (0.5, 2, 3), (0.6, 3, 1)];
        assert_eq!(run(2, &offers), vec![(1, 0.6), (3, 0.5)]);
    }
}
