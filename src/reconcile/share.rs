//! Sharing the targets between replicas (docs/leader-election.md#sharing): each replica's share
//! of the leases, whether to take a free lease now, and whether to hand one over.
//!
//! Pure: takes counts as the lease table showed them, returns a decision.

use std::time::Duration;

/// A replica's share of `targets` among `live` replicas: ceil(targets / live), all of them
/// when it sees no replica (not even itself).
pub fn share(targets: usize, live: usize) -> usize {
    targets.div_ceil(live.max(1))
}

/// How the leases of one lease table stand, as one replica sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Targets whose leases live in the table.
    pub targets: usize,
    /// Leases this replica holds, or is claiming right now.
    pub mine: usize,
    /// Leases each other live replica holds, one entry per replica.
    pub others: Vec<usize>,
}

impl Standing {
    /// Live replicas: the others and this one.
    pub fn live(&self) -> usize {
        self.others.len() + 1
    }

    /// This replica's share.
    pub fn share(&self) -> usize {
        share(self.targets, self.live())
    }

    /// Whether another live replica holds fewer leases than its share.
    pub fn others_below_share(&self) -> bool {
        let share = self.share();
        self.others.iter().any(|held| *held < share)
    }
}

/// What to do with a lease nobody holds (absent, released, or run out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Claim it.
    Now,
    /// Leave it to a replica below its share for now.
    Wait,
}

/// Whether to claim a free lease, seen free for `free_for`: at once while below the share;
/// at or above it, only when no other live replica is below its share, or once those have had
/// `head_start` to take it (so that a lease never stays free because of a stale view).
pub fn take(standing: &Standing, free_for: Duration, head_start: Duration) -> Take {
    if standing.mine < standing.share() || !standing.others_below_share() || free_for >= head_start
    {
        Take::Now
    } else {
        Take::Wait
    }
}

/// Whether to hand one lease over, never while a hand-over or a claim is already under way:
/// above the share when another live replica is below it; or at the share when it is above the
/// floor (targets / live, rounded down) and another live replica is below that floor, so that
/// 7 targets on 3 replicas settle at 3, 2, 2 and never stay at 3, 3, 1.
pub fn hand_over(standing: &Standing, busy: bool) -> bool {
    let share = standing.share();
    let floor = standing.targets / standing.live();
    let above_share = standing.mine > share && standing.others_below_share();
    let above_floor = standing.mine > floor && standing.others.iter().any(|held| *held < floor);
    !busy && (above_share || above_floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD_START: Duration = Duration::from_secs(5);

    fn standing(targets: usize, mine: usize, others: &[usize]) -> Standing {
        Standing {
            targets,
            mine,
            others: others.to_vec(),
        }
    }

    #[test]
    fn the_share_is_the_ceiling_of_targets_over_live_replicas() {
        for (targets, live, expected) in [
            (6, 3, 2),
            (6, 2, 3),
            (7, 3, 3),
            (6, 1, 6),
            (1, 3, 1),
            (0, 3, 0),
            (5, 0, 5),
            (6, 4, 2),
            (6, 6, 1),
            (6, 7, 1),
        ] {
            assert_eq!(
                share(targets, live),
                expected,
                "{targets} targets, {live} live"
            );
        }
    }

    #[test]
    fn the_standing_counts_this_replica_among_the_live() {
        let view = standing(6, 1, &[2, 3]);
        assert_eq!(view.live(), 3);
        assert_eq!(view.share(), 2);
        assert!(!view.others_below_share());
        assert!(standing(6, 2, &[2, 1]).others_below_share());
        assert_eq!(standing(6, 0, &[]).share(), 6);
    }

    #[test]
    fn taking_a_free_lease() {
        let none = Duration::ZERO;
        let later = HEAD_START;
        for (view, free_for, expected, why) in [
            (standing(6, 0, &[0, 0]), none, Take::Now, "below the share"),
            (standing(6, 1, &[2, 2]), none, Take::Now, "below the share"),
            (
                standing(6, 2, &[2, 1]),
                none,
                Take::Wait,
                "at the share, another below it",
            ),
            (
                standing(6, 2, &[2, 1]),
                later - Duration::from_millis(1),
                Take::Wait,
                "at the share, its head start not over",
            ),
            (
                standing(6, 2, &[2, 1]),
                later,
                Take::Now,
                "at the share, the head start over",
            ),
            (
                standing(6, 2, &[2, 2]),
                none,
                Take::Now,
                "at the share, nobody below it",
            ),
            (
                standing(6, 3, &[2, 2]),
                none,
                Take::Now,
                "above the share, nobody below it",
            ),
            (
                standing(6, 3, &[0, 2]),
                none,
                Take::Wait,
                "above the share, another below it",
            ),
            (standing(6, 0, &[]), none, Take::Now, "alone"),
            (
                standing(6, 5, &[]),
                none,
                Take::Now,
                "alone, holding the others",
            ),
            (
                standing(1, 0, &[0, 0]),
                none,
                Take::Now,
                "one target, three replicas",
            ),
        ] {
            assert_eq!(
                take(&view, free_for, HEAD_START),
                expected,
                "{why}: {view:?}"
            );
        }
    }

    #[test]
    fn handing_a_lease_over() {
        for (view, busy, expected, why) in [
            (standing(6, 6, &[0, 0]), false, true, "above, others below"),
            (standing(6, 6, &[0, 0]), true, false, "one at a time"),
            (standing(6, 3, &[2, 1]), false, true, "above by one"),
            (
                standing(6, 2, &[2, 1]),
                false,
                false,
                "at the share: never below it",
            ),
            (
                standing(6, 3, &[3]),
                false,
                false,
                "at the share of two replicas",
            ),
            (
                standing(7, 3, &[2, 2]),
                false,
                false,
                "7 over 3: a share of 3",
            ),
            (
                standing(7, 3, &[3, 1]),
                false,
                true,
                "at the share, another below the floor of 2",
            ),
            (
                standing(7, 2, &[3, 2]),
                false,
                false,
                "at the floor: never below it",
            ),
            (
                standing(6, 4, &[2, 2]),
                false,
                false,
                "above, but nobody below to take it",
            ),
            (standing(6, 6, &[]), false, false, "alone"),
            (
                standing(1, 1, &[0, 0]),
                false,
                false,
                "one target: a share of 1",
            ),
        ] {
            assert_eq!(hand_over(&view, busy), expected, "{why}: {view:?}");
        }
    }

    #[test]
    fn handing_over_and_taking_converge_to_the_shares() {
        // Three replicas, six targets, every lease with the first: hand-overs one at a time,
        // each taken by the replica furthest below its share, end at two each.
        let mut held = [6usize, 0, 0];
        let mut steps = 0;
        loop {
            let giver = (0..3).find(|&i| {
                let others: Vec<usize> = (0..3).filter(|&j| j != i).map(|j| held[j]).collect();
                hand_over(&standing(6, held[i], &others), false)
            });
            let Some(giver) = giver else { break };
            held[giver] -= 1;
            let taker = (0..3)
                .filter(|&j| j != giver)
                .min_by_key(|&j| held[j])
                .unwrap();
            let others: Vec<usize> = (0..3).filter(|&j| j != taker).map(|j| held[j]).collect();
            assert_eq!(
                take(
                    &standing(6, held[taker], &others),
                    Duration::ZERO,
                    HEAD_START
                ),
                Take::Now
            );
            held[taker] += 1;
            steps += 1;
            assert!(steps <= 6, "no end: {held:?}");
        }
        assert_eq!(held, [2, 2, 2]);
        // One goes away: the two left share its two, three each.
        let others = [2usize];
        assert_eq!(
            take(&standing(6, 2, &others), Duration::ZERO, HEAD_START),
            Take::Now
        );
        assert_eq!(standing(6, 2, &others).share(), 3);
    }

    /// Hand-overs one at a time, each taken by the replica with the fewest leases, until no
    /// replica hands one over; the leases at the end, sorted.
    fn settle(targets: usize, mut held: Vec<usize>) -> Vec<usize> {
        let n = held.len();
        for _ in 0..=targets * n {
            let others_of = |held: &[usize], i: usize| -> Vec<usize> {
                (0..n).filter(|&j| j != i).map(|j| held[j]).collect()
            };
            let Some(giver) = (0..n)
                .find(|&i| hand_over(&standing(targets, held[i], &others_of(&held, i)), false))
            else {
                held.sort_unstable();
                return held;
            };
            held[giver] -= 1;
            let taker = (0..n)
                .filter(|&j| j != giver)
                .min_by_key(|&j| held[j])
                .unwrap();
            held[taker] += 1;
        }
        panic!("no end: {held:?}");
    }

    #[test]
    fn uneven_targets_settle_within_one_of_each_other() {
        for (targets, start, end) in [
            (7, vec![7, 0, 0], vec![2, 2, 3]),
            (7, vec![3, 3, 1], vec![2, 2, 3]),
            (7, vec![3, 2, 2], vec![2, 2, 3]),
            (6, vec![6, 0, 0], vec![2, 2, 2]),
            (5, vec![5, 0, 0, 0], vec![1, 1, 1, 2]),
            (2, vec![2, 0, 0], vec![0, 1, 1]),
        ] {
            assert_eq!(
                settle(targets, start.clone()),
                end,
                "{targets} from {start:?}"
            );
        }
    }
}
