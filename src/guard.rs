//! The guard's decision (SPEC 8): a pure function from one complete cycle's observation and the
//! guard's state to the new state and what to do.
//!
//! The state lives in the control item, so a restart or a new leader carries on where the last
//! one stopped. An incomplete cycle never reaches this function: it neither advances nor resets
//! anything.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::GuardConfig;

/// What the guard remembers between cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuardState {
    /// Complete cycles in a row that met the thresholds.
    pub confirm_count: u32,
    /// Per load balancer, complete cycles in a row it was missing (eligible, no valid record).
    pub missing_streaks: BTreeMap<String, u32>,
    /// Load balancers workflows must not act on.
    pub quarantine: BTreeSet<String>,
    /// Load balancers missing when an operator resumed with `--force`: they do not trip the
    /// guard again until their records are back.
    pub acknowledged: BTreeSet<String>,
    /// Complete cycles in a row with nothing missing, for automatic resume.
    pub clean_cycles: u32,
    /// The largest set of records within the mass-loss window.
    pub high_water: Option<HighWater>,
}

/// The record set at the high-water mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HighWater {
    /// Unix seconds when it was taken.
    pub time: i64,
    /// Names with a valid record then.
    pub names: BTreeSet<String>,
}

/// One complete cycle, as the guard sees it.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Unix seconds.
    pub now: i64,
    /// Live load balancers with their `CreatedTime` (Unix seconds), by name.
    pub live: BTreeMap<String, Option<i64>>,
    /// Names with a valid record.
    pub records: BTreeSet<String>,
    /// The state table lbrecon has seen before does not exist any more.
    pub state_table_gone: bool,
}

/// Why the guard trips.
#[derive(Debug, Clone, PartialEq)]
pub enum Trip {
    /// `M >= min_missing` and `M >= max_missing_ratio * E` for `confirm_cycles` cycles.
    Threshold { missing: usize, eligible: usize },
    /// At least `mass_loss_ratio` of the valid records at the high-water mark are gone or no
    /// longer valid (emptied, corrupted) while their load balancers are live.
    MassLoss { gone: usize, high_water: usize },
    /// The state table itself is gone.
    StateTableGone,
}

impl Trip {
    /// The reason written into the control item.
    pub fn reason(&self) -> String {
        match self {
            Trip::Threshold { missing, eligible } => format!(
                "state data missing: {missing} of {eligible} load balancers have no valid record"
            ),
            Trip::MassLoss { gone, high_water } => format!(
                "mass loss: {gone} of the {high_water} valid records at the high-water mark are gone or no longer valid while their load balancers are live"
            ),
            Trip::StateTableGone => "the state table does not exist any more".to_string(),
        }
    }
}

/// What the guard decided for one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub state: GuardState,
    /// Eligible load balancers without a valid record (M), acknowledged ones included.
    pub missing: BTreeSet<String>,
    /// How many load balancers were eligible (E).
    pub eligible: usize,
    /// Trip now (only when not already paused).
    pub trip: Option<Trip>,
    /// Resume automatically now (`auto_resume_after`; only a pause lbrecon made).
    pub auto_resume: bool,
}

/// Live load balancers older than `new_load_balancer_grace` (E).
pub fn eligible<'a>(observation: &'a Observation, config: &GuardConfig) -> BTreeSet<&'a String> {
    let grace = config.new_load_balancer_grace.as_secs() as i64;
    observation
        .live
        .iter()
        .filter(|(_, created)| created.is_none_or(|created| observation.now - created >= grace))
        .map(|(name, _)| name)
        .collect()
}

/// Eligible load balancers without a valid record (M).
pub fn missing(observation: &Observation, eligible: &BTreeSet<&String>) -> BTreeSet<String> {
    eligible
        .iter()
        .filter(|name| !observation.records.contains(**name))
        .map(|name| (*name).clone())
        .collect()
}

/// Decides one complete cycle. `paused` says whether scaling is paused now, `paused_by_guard`
/// whether lbrecon's guard made that pause (only those resume automatically).
pub fn decide(
    observation: &Observation,
    state: &GuardState,
    config: &GuardConfig,
    paused: bool,
    paused_by_guard: bool,
) -> Decision {
    let eligible = eligible(observation, config);
    let missing = missing(observation, &eligible);

    let mut next = state.clone();

    // Quarantine: missing for confirm_cycles complete cycles in a row, whatever the thresholds;
    // out as soon as the record is back.
    next.missing_streaks = missing
        .iter()
        .map(|name| {
            let streak = state.missing_streaks.get(name).copied().unwrap_or(0) + 1;
            (name.clone(), streak)
        })
        .collect();
    next.quarantine = next
        .missing_streaks
        .iter()
        .filter(|(name, streak)| {
            **streak >= config.confirm_cycles || state.quarantine.contains(*name)
        })
        .map(|(name, _)| name.clone())
        .collect();

    // Acknowledgements last until the record is back (or the load balancer is gone).
    next.acknowledged = state.acknowledged.intersection(&missing).cloned().collect();
    let counted: BTreeSet<&String> = missing.difference(&next.acknowledged).collect();
    let m = counted.len();
    let e = eligible.len();

    let over_threshold =
        m as u64 >= config.min_missing && m as f64 >= config.max_missing_ratio * e as f64;
    next.confirm_count = if over_threshold {
        state.confirm_count.saturating_add(1)
    } else {
        0
    };

    // Mass loss against the high-water mark of the window.
    let window = config.mass_loss_window.as_secs() as i64;
    let mut trip = None;
    if observation.state_table_gone && !eligible.is_empty() {
        trip = Some(Trip::StateTableGone);
    }
    if let Some(high_water) = &state.high_water
        && observation.now - high_water.time <= window
        && !high_water.names.is_empty()
    {
        let gone = high_water
            .names
            .iter()
            .filter(|name| {
                !observation.records.contains(*name)
                    && observation.live.contains_key(*name)
                    && !next.acknowledged.contains(*name)
            })
            .count();
        let total = high_water.names.len();
        if gone as u64 >= config.min_missing
            && gone as f64 >= config.mass_loss_ratio * total as f64
            && trip.is_none()
        {
            trip = Some(Trip::MassLoss {
                gone,
                high_water: total,
            });
        }
    }
    if trip.is_none() && over_threshold && next.confirm_count >= config.confirm_cycles {
        trip = Some(Trip::Threshold {
            missing: m,
            eligible: e,
        });
    }
    next.high_water = match &state.high_water {
        Some(high_water)
            if observation.now - high_water.time <= window
                && high_water.names.len() > observation.records.len() =>
        {
            Some(high_water.clone())
        }
        _ => Some(HighWater {
            time: observation.now,
            names: observation.records.clone(),
        }),
    };

    // Automatic resume after enough clean cycles, only of a pause lbrecon made.
    next.clean_cycles = if missing.is_empty() {
        state.clean_cycles.saturating_add(1)
    } else {
        0
    };
    let auto_resume = paused
        && paused_by_guard
        && config
            .auto_resume_after
            .is_some_and(|cycles| next.clean_cycles >= cycles);

    Decision {
        state: next,
        missing,
        eligible: e,
        trip: if paused { None } else { trip },
        auto_resume,
    }
}

/// The state after an operator's `resume`: the missing load balancers are acknowledged, the
/// confirmation count starts again.
pub fn after_resume(state: &GuardState, still_missing: &BTreeSet<String>) -> GuardState {
    GuardState {
        confirm_count: 0,
        acknowledged: state.acknowledged.union(still_missing).cloned().collect(),
        clean_cycles: 0,
        ..state.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOW: i64 = 1_000_000;

    fn config() -> GuardConfig {
        GuardConfig {
            min_missing: 1,
            max_missing_ratio: 0.05,
            confirm_cycles: 2,
            new_load_balancer_grace: Duration::from_secs(300),
            mass_loss_ratio: 0.2,
            mass_loss_window: Duration::from_secs(3600),
            auto_resume_after: None,
            pausers: vec![],
        }
    }

    /// `n` live load balancers `lb-0..n`, old enough to be eligible, all recorded but `missing`.
    fn fleet(n: usize, missing: &[usize]) -> Observation {
        let live = (0..n)
            .map(|i| (format!("lb-{i}"), Some(NOW - 3600)))
            .collect();
        let records = (0..n)
            .filter(|i| !missing.contains(i))
            .map(|i| format!("lb-{i}"))
            .collect();
        Observation {
            now: NOW,
            live,
            records,
            state_table_gone: false,
        }
    }

    fn run(observations: &[Observation], config: &GuardConfig) -> Vec<Decision> {
        let mut state = GuardState::default();
        let mut paused = false;
        observations
            .iter()
            .map(|observation| {
                let decision = decide(observation, &state, config, paused, paused);
                paused |= decision.trip.is_some();
                state = decision.state.clone();
                decision
            })
            .collect()
    }

    #[test]
    fn a_loss_trips_after_confirm_cycles() {
        let decisions = run(
            &[
                fleet(100, &[]),
                fleet(100, &[1, 2, 3, 4, 5, 6]),
                fleet(100, &[1, 2, 3, 4, 5, 6]),
            ],
            &config(),
        );
        assert_eq!(decisions[0].trip, None);
        // Six of a hundred is below the 20% mass-loss ratio: it takes two cycles.
        assert_eq!(decisions[1].trip, None);
        assert_eq!(decisions[1].state.confirm_count, 1);
        assert_eq!(
            decisions[2].trip,
            Some(Trip::Threshold {
                missing: 6,
                eligible: 100
            })
        );
    }

    #[test]
    fn one_cycle_missing_does_not_trip() {
        let decisions = run(
            &[
                fleet(100, &[7]),
                fleet(100, &[]),
                fleet(100, &[7]),
                fleet(100, &[]),
            ],
            &config(),
        );
        assert!(decisions.iter().all(|d| d.trip.is_none()));
        assert_eq!(decisions[3].state.confirm_count, 0);
    }

    #[test]
    fn the_thresholds_are_both_required() {
        let mut config = config();
        config.max_missing_ratio = 0.05;
        // Four of a hundred is below 5%.
        let decisions = run(
            &[
                fleet(100, &[1, 2, 3, 4]),
                fleet(100, &[1, 2, 3, 4]),
                fleet(100, &[1, 2, 3, 4]),
            ],
            &config,
        );
        assert!(decisions.iter().all(|d| d.trip.is_none()));
        config.min_missing = 3;
        config.max_missing_ratio = 0.0;
        let decisions = run(&[fleet(10, &[1, 2]), fleet(10, &[1, 2])], &config);
        assert!(decisions.iter().all(|d| d.trip.is_none()));
        let decisions = run(&[fleet(10, &[1, 2, 3]), fleet(10, &[1, 2, 3])], &config);
        assert!(decisions[1].trip.is_some());
    }

    #[test]
    fn young_load_balancers_are_not_eligible() {
        let mut young = fleet(10, &[9]);
        young.live.insert("lb-9".into(), Some(NOW - 60));
        let decisions = run(&[young.clone(), young.clone(), young], &config());
        assert!(decisions.iter().all(|d| d.trip.is_none()));
        assert!(decisions[2].missing.is_empty());
        assert_eq!(decisions[2].eligible, 9);
        assert!(decisions[2].state.quarantine.is_empty());
    }

    #[test]
    fn quarantine_follows_the_streak_whatever_the_thresholds() {
        let mut config = config();
        config.min_missing = 50;
        let decisions = run(
            &[
                fleet(100, &[3]),
                fleet(100, &[3]),
                fleet(100, &[3]),
                fleet(100, &[]),
            ],
            &config,
        );
        assert!(decisions[0].state.quarantine.is_empty());
        assert_eq!(
            decisions[1].state.quarantine,
            BTreeSet::from(["lb-3".to_string()])
        );
        assert!(decisions.iter().all(|d| d.trip.is_none()));
        // The record is back: out of quarantine.
        assert!(decisions[3].state.quarantine.is_empty());
    }

    #[test]
    fn invalid_records_count_as_missing() {
        // The caller lists only valid records, so an invalid one is simply absent here.
        let decisions = run(&[fleet(10, &[0]), fleet(10, &[0])], &config());
        assert_eq!(
            decisions[1].trip,
            Some(Trip::Threshold {
                missing: 1,
                eligible: 10
            })
        );
    }

    #[test]
    fn mass_loss_trips_at_once() {
        let losses: Vec<usize> = (0..30).collect();
        let decisions = run(&[fleet(100, &[]), fleet(100, &losses)], &config());
        assert_eq!(
            decisions[1].trip,
            Some(Trip::MassLoss {
                gone: 30,
                high_water: 100
            })
        );
    }

    #[test]
    fn emptied_records_are_a_mass_loss() {
        use crate::item::{AttrValue, Item, from_json};
        use crate::record::{Record, RecordRules, valid_names};
        use serde_json::json;

        // Twenty records as the scan reads them; then five overwritten the way the 2023
        // incident did: version bumped, everything else kept, `config` emptied (`{}`) or left
        // holding only the name.
        let item = |i: usize, config: serde_json::Value, version: u32| -> Item {
            [
                ("name".to_string(), AttrValue::S(format!("lb-{i}"))),
                ("config".to_string(), from_json(&config)),
                ("version".to_string(), AttrValue::N(version.to_string())),
            ]
            .into_iter()
            .collect()
        };
        let kept = |i: usize| {
            item(
                i,
                json!({"name": format!("lb-{i}"), "scheme": "internal"}),
                1,
            )
        };
        let emptied = |i: usize| match i % 2 {
            0 => item(i, json!({}), 2),
            _ => item(i, json!({ "name": format!("lb-{i}") }), 2),
        };
        let observe = |items: Vec<Item>| {
            let rules = RecordRules::default();
            let records: Vec<Record> = items
                .iter()
                .enumerate()
                .map(|(position, item)| Record::from_item(item, position, &rules))
                .collect();
            Observation {
                records: valid_names(&records),
                ..fleet(20, &[])
            }
        };
        let before = observe((0..20).map(kept).collect());
        assert_eq!(before.records.len(), 20);
        let after = observe(
            (0..20)
                .map(|i| if i < 5 { emptied(i) } else { kept(i) })
                .collect(),
        );
        let decisions = run(&[before, after.clone(), after], &config());
        assert_eq!(decisions[0].trip, None);
        // A fifth of the table emptied pauses at once, not after confirm_cycles.
        assert_eq!(
            decisions[1].trip,
            Some(Trip::MassLoss {
                gone: 5,
                high_water: 20
            })
        );
        let emptied_names: BTreeSet<String> = (0..5).map(|i| format!("lb-{i}")).collect();
        assert_eq!(decisions[1].missing, emptied_names);
        assert!(decisions[1].state.quarantine.is_empty());
        // And they are quarantined once confirmed, like records deleted.
        assert_eq!(decisions[2].state.quarantine, emptied_names);
        assert!(
            Trip::MassLoss {
                gone: 5,
                high_water: 20
            }
            .reason()
            .contains("gone or no longer valid")
        );
    }

    #[test]
    fn mass_loss_counts_only_load_balancers_still_live() {
        // Thirty records deleted together with their load balancers: a decommission, not a loss.
        let mut after = fleet(100, &[]);
        for i in 0..30 {
            after.live.remove(&format!("lb-{i}"));
            after.records.remove(&format!("lb-{i}"));
        }
        let decisions = run(&[fleet(100, &[]), after], &config());
        assert_eq!(decisions[1].trip, None);
    }

    #[test]
    fn the_high_water_mark_expires_with_its_window() {
        let mut state = GuardState::default();
        let first = decide(&fleet(100, &[]), &state, &config(), false, false);
        state = first.state;
        let mut later = fleet(100, &(0..30).collect::<Vec<_>>());
        later.now = NOW + 7200;
        let decision = decide(&later, &state, &config(), false, false);
        // Not a sudden loss any more; the thresholds still count it (first cycle of two).
        assert_eq!(decision.trip, None);
        assert_eq!(decision.state.high_water.unwrap().names.len(), 70);
    }

    #[test]
    fn a_deleted_state_table_trips_at_once() {
        let mut gone = fleet(10, &(0..10).collect::<Vec<_>>());
        gone.state_table_gone = true;
        let decisions = run(&[gone], &config());
        assert_eq!(decisions[0].trip, Some(Trip::StateTableGone));
    }

    #[test]
    fn a_paused_guard_does_not_trip_again() {
        let state = GuardState::default();
        let decision = decide(
            &fleet(10, &(0..5).collect::<Vec<_>>()),
            &state,
            &config(),
            true,
            true,
        );
        assert_eq!(decision.trip, None);
        assert_eq!(decision.missing.len(), 5);
    }

    #[test]
    fn a_forced_resume_acknowledges_the_missing_set_only() {
        let config = config();
        let missing = fleet(100, &[1, 2, 3, 4, 5, 6]);
        let mut state = GuardState::default();
        for _ in 0..2 {
            state = decide(&missing, &state, &config, false, false).state;
        }
        state = after_resume(
            &state,
            &BTreeSet::from_iter((1..=6).map(|i| format!("lb-{i}"))),
        );
        for _ in 0..3 {
            let decision = decide(&missing, &state, &config, false, false);
            assert_eq!(decision.trip, None, "the acknowledged set trips again");
            state = decision.state;
        }
        // Another load balancer goes missing: that one trips.
        let more = fleet(100, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let first = decide(&more, &state, &config, false, false);
        assert_eq!(first.trip, None);
        let second = decide(&more, &first.state, &config, false, false);
        assert_eq!(
            second.trip,
            Some(Trip::Threshold {
                missing: 5,
                eligible: 100
            })
        );
        // A record that comes back loses its acknowledgement.
        let back = decide(&fleet(100, &[2, 3, 4, 5, 6]), &state, &config, false, false);
        assert!(!back.state.acknowledged.contains("lb-1"));
    }

    #[test]
    fn automatic_resume_after_clean_cycles_of_a_guard_pause_only() {
        let mut config = config();
        config.auto_resume_after = Some(2);
        let clean = fleet(10, &[]);
        let state = GuardState::default();
        let first = decide(&clean, &state, &config, true, true);
        assert!(!first.auto_resume);
        let second = decide(&clean, &first.state, &config, true, true);
        assert!(second.auto_resume);
        // An operator's pause never resumes by itself.
        let manual = decide(&clean, &first.state, &config, true, false);
        assert!(!manual.auto_resume);
        // Off by default.
        config.auto_resume_after = None;
        assert!(!decide(&clean, &first.state, &config, true, true).auto_resume);
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let decisions = run(&[fleet(10, &[1]), fleet(10, &[1])], &config());
        let state = &decisions[1].state;
        let text = serde_json::to_string(state).unwrap();
        let back: GuardState = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, state);
    }
}
