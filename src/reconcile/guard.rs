//! The guard's decision (docs/architecture.md#guard): a pure function from one complete cycle's observation and the
//! guard's state to the new state and what to do.
//!
//! The state lives in the control item, so a restart or a new leader carries on where the last
//! one stopped. An incomplete cycle never reaches this function: it neither advances nor resets
//! anything.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use std::time::Duration;

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
        .filter(|name| without_valid_record(observation, name))
        .map(|name| (*name).clone())
        .collect()
}

/// Whether the live load balancer `name` has no valid record: the one definition of a record
/// missing. The guard counts only eligible ones (past their grace); snapshot pruning stops for
/// any (a young load balancer's lost record is kept all the same).
pub fn without_valid_record(observation: &Observation, name: &str) -> bool {
    !observation.records.contains(name)
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
            // Capped where it stops mattering, so a long loss does not change the item
            // every cycle.
            let streak = (state.missing_streaks.get(name).copied().unwrap_or(0) + 1)
                .min(config.confirm_cycles.max(1));
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
        state
            .confirm_count
            .saturating_add(1)
            .min(config.confirm_cycles.max(1))
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
    // The mark keeps the largest record set of the window. A cycle that confirms it (holds at
    // least as many valid records) takes it over with its own time, so the stored time is the
    // last time the set was seen whole, and a restart in the middle of a loss still compares
    // against the set from before it.
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
        state
            .clean_cycles
            .saturating_add(1)
            .min(config.auto_resume_after.unwrap_or(1).max(1))
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

/// Who holds a pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// lbrecon's guard tripped it: it may resume by itself (`auto_resume_after`).
    Guard,
    /// A person paused it, or took the guard's pause over: only a person resumes it.
    Operator(String),
}

/// What the guard's policy needs to know of the control item, as plain facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PauseFacts {
    /// Scaling is paused now.
    pub paused: bool,
    /// Who paused it (`None` while not paused).
    pub owner: Option<Owner>,
    /// The missing load balancers the item lists (as of the last complete cycle while paused).
    pub listed_missing: BTreeSet<String>,
    /// The item is not paused, yet its flag pauser is recorded done: someone cleared the flag
    /// outside lbrecon.
    pub flag_cleared_by_hand: bool,
    /// The item records pauser steps (written ahead, done or not) that a resume would undo.
    pub recorded: bool,
}

/// What asks the guard to act.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The daemon, after a complete cycle.
    Cycle,
    /// `lbrecon pause`.
    Pause { by: String },
    /// `lbrecon resume`, with `--force` or without.
    Resume { force: bool },
    /// The stream saw records of live load balancers removed or emptied, confirmed live since:
    /// the observation is the last complete cycle's with the stream's changes applied. Only a
    /// mass loss trips here; nothing else moves (the threshold, the quarantine, resume and
    /// acknowledgement wait for complete cycles).
    Stream,
}

/// What the code that carries out the guard's decision must do. It decides nothing itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing beyond storing the new state.
    Nothing,
    /// Pause for the guard: write the plan ahead, run the pausers, record what they did.
    Trip(Trip),
    /// Paused: finish what was written ahead and not done, retry failed pausers, extend an
    /// `affected` pause to load balancers missing since, and report (never re-apply) what a
    /// person undid.
    Maintain,
    /// Resume what lbrecon paused, by itself.
    AutoResume { clean_cycles: u32 },
    /// The paused flag was cleared outside lbrecon: report it; the load balancers missing now
    /// are acknowledged (not paused for again until their records are back).
    FlagUndone,
    /// Pause for an operator.
    Pause,
    /// Paused by the guard already: the pause becomes the operator's (it no longer resumes
    /// by itself).
    TakeOver,
    /// Paused by an operator already: nothing to do.
    AlreadyPaused,
    /// Resume everything lbrecon paused; `acknowledged` are the load balancers missing now.
    Resume {
        acknowledged: BTreeSet<String>,
        forced: bool,
    },
    /// Records are still missing and `--force` was not given (or the check could not be
    /// made): resume nothing.
    RefuseResume,
    /// Not paused, nothing recorded to undo.
    NotPaused,
}

/// One step of the guard: the state to store, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub state: GuardState,
    /// Eligible load balancers without a valid record (M), acknowledged ones included; empty
    /// without an observation.
    pub missing: BTreeSet<String>,
    /// How many load balancers were eligible (E).
    pub eligible: usize,
    pub action: Action,
}

/// All guard policy in one place: from what was observed (a complete presence pass, or `None`
/// when the read was incomplete), the stored state and the pause as the control item has it,
/// the new state and the one action to carry out. Pure: no I/O, no clock (a cycle's time is
/// its observation's).
pub fn step(
    observation: Option<&Observation>,
    state: &GuardState,
    pause: &PauseFacts,
    config: &GuardConfig,
    command: &Command,
) -> Step {
    let by_guard = pause.owner == Some(Owner::Guard);
    match command {
        Command::Cycle => {
            let Some(observation) = observation else {
                // An incomplete cycle neither advances nor resets anything.
                return Step {
                    state: state.clone(),
                    missing: BTreeSet::new(),
                    eligible: 0,
                    action: Action::Nothing,
                };
            };
            let decision = decide(observation, state, config, pause.paused, by_guard);
            let mut next = decision.state;
            let action = if pause.paused {
                if decision.auto_resume {
                    let clean_cycles = next.clean_cycles;
                    next = after_resume(&next, &BTreeSet::new());
                    Action::AutoResume { clean_cycles }
                } else {
                    Action::Maintain
                }
            } else if pause.flag_cleared_by_hand {
                // A person undid the pause: never set it again for what is missing now.
                next.acknowledged.extend(decision.missing.iter().cloned());
                next.confirm_count = 0;
                Action::FlagUndone
            } else if let Some(trip) = decision.trip {
                Action::Trip(trip)
            } else {
                Action::Nothing
            };
            Step {
                state: next,
                missing: decision.missing,
                eligible: decision.eligible,
                action,
            }
        }
        Command::Stream => {
            let (missing, eligible) = observed_missing(observation, config);
            let trip = observation
                .filter(|_| !pause.paused && !pause.flag_cleared_by_hand)
                .and_then(|observation| {
                    decide(observation, state, config, false, false)
                        .trip
                        .filter(|trip| matches!(trip, Trip::MassLoss { .. }))
                });
            Step {
                state: state.clone(),
                missing,
                eligible,
                action: trip.map_or(Action::Nothing, Action::Trip),
            }
        }
        Command::Pause { .. } => {
            let (missing, eligible) = observed_missing(observation, config);
            let action = match (&pause.paused, &pause.owner) {
                (false, _) => Action::Pause,
                (true, Some(Owner::Guard)) => Action::TakeOver,
                (true, _) => Action::AlreadyPaused,
            };
            Step {
                state: state.clone(),
                missing,
                eligible,
                action,
            }
        }
        Command::Resume { force } => {
            let (missing, eligible) = observed_missing(observation, config);
            // Without a complete read nothing shows the records are back: only a forced
            // resume goes on, acknowledging what the item lists as missing.
            let acknowledged = match observation {
                Some(_) => missing.clone(),
                None => pause.listed_missing.clone(),
            };
            let action = if !pause.paused && !pause.recorded {
                Action::NotPaused
            } else if !*force && (observation.is_none() || !missing.is_empty()) {
                Action::RefuseResume
            } else {
                Action::Resume {
                    acknowledged: acknowledged.clone(),
                    forced: *force,
                }
            };
            let state = match &action {
                Action::Resume { acknowledged, .. } => after_resume(state, acknowledged),
                _ => state.clone(),
            };
            Step {
                state,
                missing,
                eligible,
                action,
            }
        }
    }
}

/// M and E of an observation, or nothing without one: the one definition of which load
/// balancers are missing now, for the guard, the commands and snapshot pruning.
pub fn observed_missing(
    observation: Option<&Observation>,
    config: &GuardConfig,
) -> (BTreeSet<String>, usize) {
    match observation {
        Some(observation) => {
            let eligible = eligible(observation, config);
            (missing(observation, &eligible), eligible.len())
        }
        None => (BTreeSet::new(), 0),
    }
}

/// `[guard]`: when missing state data pauses scaling workflows.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    #[serde(default = "default_min_missing")]
    pub min_missing: u64,
    #[serde(default = "default_max_missing_ratio")]
    pub max_missing_ratio: f64,
    #[serde(default = "default_confirm_cycles")]
    pub confirm_cycles: u32,
    #[serde(
        default = "default_grace",
        with = "crate::model::clock::humantime_serde"
    )]
    pub new_load_balancer_grace: Duration,
    #[serde(default = "default_mass_loss_ratio")]
    pub mass_loss_ratio: f64,
    #[serde(
        default = "default_mass_loss_window",
        with = "crate::model::clock::humantime_serde"
    )]
    pub mass_loss_window: Duration,
    /// Resume by itself once nothing has been missing for this many complete cycles.
    #[serde(default)]
    pub auto_resume_after: Option<u32>,
    /// How long a claim on the pausers holds before another actor may take it over (the
    /// claimer died, or hangs).
    #[serde(
        default = "default_claim_timeout",
        with = "crate::model::clock::humantime_serde"
    )]
    pub claim_timeout: Duration,
    #[serde(default)]
    pub pausers: Vec<PauserConfig>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            min_missing: default_min_missing(),
            max_missing_ratio: default_max_missing_ratio(),
            confirm_cycles: default_confirm_cycles(),
            new_load_balancer_grace: default_grace(),
            mass_loss_ratio: default_mass_loss_ratio(),
            mass_loss_window: default_mass_loss_window(),
            auto_resume_after: None,
            claim_timeout: default_claim_timeout(),
            pausers: Vec::new(),
        }
    }
}

/// `[[guard.pausers]]`: one way of pausing the operator's workflows.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PauserConfig {
    #[serde(rename = "type")]
    pub kind: PauserKind,
    /// `autoscaling`: `affected` (the default) or `all`.
    #[serde(default)]
    pub scope: Option<PauseScope>,
    /// `autoscaling`: the processes to suspend instead of the default list.
    #[serde(default)]
    pub processes: Option<Vec<String>>,
    /// `command`: the program and its arguments.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// `command`: how long the program may run.
    #[serde(default, with = "crate::model::clock::humantime_serde::option")]
    pub timeout: Option<Duration>,
}

/// The kinds of pauser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauserKind {
    DynamodbFlag,
    Autoscaling,
    Command,
}

/// Which load balancers' Auto Scaling groups an `autoscaling` pauser suspends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseScope {
    Affected,
    All,
}

fn default_claim_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_min_missing() -> u64 {
    1
}
fn default_max_missing_ratio() -> f64 {
    0.05
}
fn default_confirm_cycles() -> u32 {
    2
}
fn default_grace() -> Duration {
    Duration::from_secs(300)
}
fn default_mass_loss_ratio() -> f64 {
    0.2
}
fn default_mass_loss_window() -> Duration {
    Duration::from_secs(3600)
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
            claim_timeout: Duration::from_secs(120),
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
        use crate::model::item::{AttrValue, Item, from_json};
        use crate::model::record::{Record, RecordRules, valid_names};
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

    // guard::step: one row per transition.

    /// The names `lb-i`, one per index.
    fn names(indices: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
        indices.into_iter().map(|i| format!("lb-{i}")).collect()
    }

    /// The indices `from..to` as a list, for `fleet`.
    fn span(from: usize, to: usize) -> Vec<usize> {
        (from..to).collect()
    }

    impl Observation {
        /// The same cycle, seen at `now`.
        fn at(mut self, now: i64) -> Self {
            self.now = now;
            self
        }

        /// These records are still in the table but no longer valid: the caller lists only
        /// valid records, so they are absent here while their load balancers stay live.
        fn invalid(mut self, indices: &[usize]) -> Self {
            for name in names(indices.iter().copied()) {
                self.records.remove(&name);
            }
            self
        }

        /// The state table lbrecon has seen before is gone, and every record with it.
        fn table_gone(mut self) -> Self {
            self.records.clear();
            self.state_table_gone = true;
            self
        }
    }

    impl GuardState {
        fn confirmed(mut self, cycles: u32) -> Self {
            self.confirm_count = cycles;
            self
        }

        fn clean(mut self, cycles: u32) -> Self {
            self.clean_cycles = cycles;
            self
        }

        fn acknowledging(mut self, names: BTreeSet<String>) -> Self {
            self.acknowledged = names;
            self
        }

        fn high_water_at(mut self, time: i64, names: BTreeSet<String>) -> Self {
            self.high_water = Some(HighWater { time, names });
            self
        }
    }

    /// Not paused, nothing recorded.
    fn running() -> PauseFacts {
        PauseFacts::default()
    }

    fn paused_by_guard() -> PauseFacts {
        PauseFacts {
            paused: true,
            owner: Some(Owner::Guard),
            recorded: true,
            ..Default::default()
        }
    }

    fn paused_by(operator: &str) -> PauseFacts {
        PauseFacts {
            paused: true,
            owner: Some(Owner::Operator(operator.to_string())),
            recorded: true,
            ..Default::default()
        }
    }

    impl PauseFacts {
        fn listing(mut self, missing: BTreeSet<String>) -> Self {
            self.listed_missing = missing;
            self
        }

        /// Not paused, but pauser steps are still recorded (a resume that did not finish).
        fn with_leftovers(mut self) -> Self {
            self.recorded = true;
            self
        }

        /// Not paused, yet the flag pauser is recorded done: someone cleared the flag.
        fn flag_cleared(mut self) -> Self {
            self.flag_cleared_by_hand = true;
            self.recorded = true;
            self
        }
    }

    /// One transition of `step`: its inputs, the action expected, and the state fields that
    /// matter for it (`None`: not checked).
    struct Row {
        name: &'static str,
        observation: Option<Observation>,
        state: GuardState,
        pause: PauseFacts,
        config: GuardConfig,
        command: Command,
        action: Action,
        missing: Option<BTreeSet<String>>,
        confirm_count: Option<u32>,
        clean_cycles: Option<u32>,
        acknowledged: Option<BTreeSet<String>>,
        /// The stored state comes back exactly as it was.
        unchanged: bool,
    }

    fn row(
        name: &'static str,
        observation: Option<Observation>,
        state: GuardState,
        pause: PauseFacts,
        command: Command,
        action: Action,
    ) -> Row {
        Row {
            name,
            observation,
            state,
            pause,
            config: config(),
            command,
            action,
            missing: None,
            confirm_count: None,
            clean_cycles: None,
            acknowledged: None,
            unchanged: false,
        }
    }

    impl Row {
        fn config(mut self, change: impl FnOnce(&mut GuardConfig)) -> Self {
            change(&mut self.config);
            self
        }

        fn missing(mut self, missing: BTreeSet<String>) -> Self {
            self.missing = Some(missing);
            self
        }

        fn confirm_count(mut self, count: u32) -> Self {
            self.confirm_count = Some(count);
            self
        }

        fn clean_cycles(mut self, count: u32) -> Self {
            self.clean_cycles = Some(count);
            self
        }

        fn acknowledged(mut self, names: BTreeSet<String>) -> Self {
            self.acknowledged = Some(names);
            self
        }

        fn unchanged(mut self) -> Self {
            self.unchanged = true;
            self
        }
    }

    fn resume(force: bool) -> Command {
        Command::Resume { force }
    }

    fn pause_by(by: &str) -> Command {
        Command::Pause { by: by.to_string() }
    }

    fn step_rows() -> Vec<Row> {
        let six = || names(1..=6);
        // The full fleet of a hundred, confirmed a minute ago.
        let marked = || GuardState::default().high_water_at(NOW - 60, names(0..100));
        vec![
            // Stream.
            row(
                "the stream's mass loss trips at once and moves nothing else",
                Some(fleet(100, &span(0, 30))),
                marked().confirmed(1).clean(2),
                running(),
                Command::Stream,
                Action::Trip(Trip::MassLoss {
                    gone: 30,
                    high_water: 100,
                }),
            )
            .unchanged(),
            row(
                "the stream never takes the threshold path",
                Some(fleet(100, &[1, 2, 3, 4, 5, 6])),
                marked().confirmed(1),
                running(),
                Command::Stream,
                Action::Nothing,
            )
            .missing(six())
            .unchanged(),
            row(
                "the stream does nothing while paused, nor resumes",
                Some(fleet(100, &[])),
                marked().clean(5),
                paused_by_guard(),
                Command::Stream,
                Action::Nothing,
            )
            .config(|c| c.auto_resume_after = Some(1))
            .unchanged(),
            row(
                "the stream does not pause again what a person un-paused",
                Some(fleet(100, &span(0, 30))),
                marked(),
                running().flag_cleared(),
                Command::Stream,
                Action::Nothing,
            )
            .unchanged(),
            row(
                "the stream without an observation does nothing",
                None,
                marked(),
                running(),
                Command::Stream,
                Action::Nothing,
            )
            .unchanged(),
            // Cycle.
            row(
                "an incomplete cycle changes nothing",
                None,
                GuardState::default()
                    .confirmed(1)
                    .clean(3)
                    .acknowledging(names([4]))
                    .high_water_at(NOW - 60, names(0..10)),
                running(),
                Command::Cycle,
                Action::Nothing,
            )
            .missing(BTreeSet::new())
            .unchanged(),
            row(
                "an incomplete cycle while paused neither maintains nor resumes",
                None,
                GuardState::default().clean(5),
                paused_by_guard(),
                Command::Cycle,
                Action::Nothing,
            )
            .config(|c| c.auto_resume_after = Some(1))
            .unchanged(),
            row(
                "nothing missing, not paused",
                Some(fleet(10, &[])),
                GuardState::default(),
                running(),
                Command::Cycle,
                Action::Nothing,
            )
            .missing(BTreeSet::new())
            .confirm_count(0)
            .clean_cycles(1),
            row(
                "the first cycle over the thresholds only counts",
                Some(fleet(100, &[1, 2, 3, 4, 5, 6])),
                GuardState::default(),
                running(),
                Command::Cycle,
                Action::Nothing,
            )
            .missing(six())
            .confirm_count(1)
            .clean_cycles(0),
            row(
                "the thresholds met for confirm_cycles trip",
                Some(fleet(100, &[1, 2, 3, 4, 5, 6])),
                GuardState::default().confirmed(1),
                running(),
                Command::Cycle,
                Action::Trip(Trip::Threshold {
                    missing: 6,
                    eligible: 100,
                }),
            )
            .missing(six())
            .confirm_count(2),
            row(
                "a mass loss trips at once",
                Some(fleet(100, &span(0, 30))),
                marked(),
                running(),
                Command::Cycle,
                Action::Trip(Trip::MassLoss {
                    gone: 30,
                    high_water: 100,
                }),
            )
            .confirm_count(1),
            row(
                "records that became invalid while their load balancers live are a mass loss",
                Some(fleet(100, &[]).invalid(&span(0, 25))),
                marked(),
                running(),
                Command::Cycle,
                Action::Trip(Trip::MassLoss {
                    gone: 25,
                    high_water: 100,
                }),
            )
            .missing(names(0..25)),
            row(
                "a deleted state table trips at once",
                Some(fleet(10, &[]).table_gone()),
                GuardState::default(),
                running(),
                Command::Cycle,
                Action::Trip(Trip::StateTableGone),
            ),
            row(
                "paused: maintain, even over the thresholds",
                Some(fleet(100, &[1, 2, 3, 4, 5, 6])),
                GuardState::default().confirmed(4),
                paused_by_guard(),
                Command::Cycle,
                Action::Maintain,
            )
            .missing(six())
            .confirm_count(2),
            row(
                "paused: a mass loss does not trip again",
                Some(fleet(100, &span(0, 30))),
                marked(),
                paused_by("alice"),
                Command::Cycle,
                Action::Maintain,
            ),
            row(
                "a guard pause not yet clean for auto_resume_after is maintained",
                Some(fleet(10, &[])),
                GuardState::default(),
                paused_by_guard(),
                Command::Cycle,
                Action::Maintain,
            )
            .config(|c| c.auto_resume_after = Some(2))
            .clean_cycles(1),
            row(
                "a guard pause clean for auto_resume_after resumes by itself",
                Some(fleet(10, &[])),
                GuardState::default().clean(1).confirmed(3),
                paused_by_guard(),
                Command::Cycle,
                Action::AutoResume { clean_cycles: 2 },
            )
            .config(|c| c.auto_resume_after = Some(2))
            .missing(BTreeSet::new())
            .confirm_count(0)
            .clean_cycles(0),
            row(
                "an operator's pause never resumes by itself",
                Some(fleet(10, &[])),
                GuardState::default().clean(5),
                paused_by("alice"),
                Command::Cycle,
                Action::Maintain,
            )
            .config(|c| c.auto_resume_after = Some(2))
            .clean_cycles(2),
            row(
                "a flag cleared by hand acknowledges what is missing and does not trip",
                Some(fleet(100, &[1, 2, 3, 4, 5, 6])),
                GuardState::default().confirmed(1),
                running().flag_cleared(),
                Command::Cycle,
                Action::FlagUndone,
            )
            .missing(six())
            .acknowledged(six())
            .confirm_count(0),
            row(
                "a flag cleared by hand during a mass loss does not trip either",
                Some(fleet(100, &span(0, 30))),
                marked().acknowledging(names([99])),
                running().flag_cleared(),
                Command::Cycle,
                Action::FlagUndone,
            )
            .acknowledged(names(0..30))
            .confirm_count(0),
            // Pause.
            row(
                "pause when not paused",
                Some(fleet(10, &[3])),
                GuardState::default().confirmed(1),
                running(),
                pause_by("alice"),
                Action::Pause,
            )
            .missing(names([3]))
            .unchanged(),
            row(
                "pause without a complete read still pauses",
                None,
                GuardState::default(),
                running(),
                pause_by("alice"),
                Action::Pause,
            )
            .missing(BTreeSet::new())
            .unchanged(),
            row(
                "pause over a guard pause takes it over",
                Some(fleet(10, &[3])),
                GuardState::default(),
                paused_by_guard(),
                pause_by("alice"),
                Action::TakeOver,
            )
            .unchanged(),
            row(
                "pause over an operator's pause",
                Some(fleet(10, &[])),
                GuardState::default(),
                paused_by("bob"),
                pause_by("alice"),
                Action::AlreadyPaused,
            )
            .unchanged(),
            // Resume.
            row(
                "resume when not paused and nothing recorded",
                Some(fleet(10, &[3])),
                GuardState::default().confirmed(1),
                running(),
                resume(true),
                Action::NotPaused,
            )
            .unchanged(),
            row(
                "resume when not paused undoes the leftovers",
                Some(fleet(10, &[])),
                GuardState::default(),
                running().with_leftovers(),
                resume(false),
                Action::Resume {
                    acknowledged: BTreeSet::new(),
                    forced: false,
                },
            ),
            row(
                "resume with nothing missing",
                Some(fleet(10, &[])),
                GuardState::default().confirmed(2).clean(1),
                paused_by_guard(),
                resume(false),
                Action::Resume {
                    acknowledged: BTreeSet::new(),
                    forced: false,
                },
            )
            .confirm_count(0)
            .clean_cycles(0),
            row(
                "resume without force while records are missing is refused",
                Some(fleet(10, &[3])),
                GuardState::default().confirmed(2),
                paused_by_guard(),
                resume(false),
                Action::RefuseResume,
            )
            .missing(names([3]))
            .unchanged(),
            row(
                "resume without force after an incomplete read is refused",
                None,
                GuardState::default().confirmed(2),
                paused_by_guard().listing(names([3])),
                resume(false),
                Action::RefuseResume,
            )
            .unchanged(),
            row(
                "a forced resume after an incomplete read acknowledges what the item lists",
                None,
                GuardState::default().confirmed(2).acknowledging(names([8])),
                paused_by("alice").listing(names([3, 4])),
                resume(true),
                Action::Resume {
                    acknowledged: names([3, 4]),
                    forced: true,
                },
            )
            .acknowledged(names([3, 4, 8]))
            .confirm_count(0),
            row(
                "a forced resume while missing acknowledges the missing",
                Some(fleet(100, &[1, 2, 3, 4, 5, 6])),
                GuardState::default().confirmed(2),
                paused_by_guard().listing(names([1])),
                resume(true),
                Action::Resume {
                    acknowledged: six(),
                    forced: true,
                },
            )
            .missing(six())
            .acknowledged(six())
            .confirm_count(0)
            .clean_cycles(0),
            // After a forced resume.
            row(
                "acknowledged load balancers do not trip again",
                Some(fleet(100, &[1, 2, 3, 4, 5, 6])),
                GuardState::default().acknowledging(six()).confirmed(1),
                running().with_leftovers(),
                Command::Cycle,
                Action::Nothing,
            )
            .missing(six())
            .acknowledged(six())
            .confirm_count(0),
            row(
                "acknowledged load balancers are no mass loss",
                Some(fleet(100, &span(0, 30))),
                marked().acknowledging(names(0..30)),
                running(),
                Command::Cycle,
                Action::Nothing,
            ),
            row(
                "a load balancer missing besides the acknowledged ones trips",
                Some(fleet(10, &[1, 2])),
                GuardState::default().acknowledging(names([1])).confirmed(1),
                running(),
                Command::Cycle,
                Action::Trip(Trip::Threshold {
                    missing: 1,
                    eligible: 10,
                }),
            )
            .missing(names([1, 2]))
            .acknowledged(names([1])),
            row(
                "a record that is back loses its acknowledgement",
                Some(fleet(10, &[2])),
                GuardState::default().acknowledging(names([1, 2])),
                running(),
                Command::Cycle,
                Action::Nothing,
            )
            .acknowledged(names([2])),
        ]
    }

    #[test]
    fn every_step_transition() {
        for row in step_rows() {
            let got = step(
                row.observation.as_ref(),
                &row.state,
                &row.pause,
                &row.config,
                &row.command,
            );
            let name = row.name;
            assert_eq!(got.action, row.action, "{name}: action");
            if let Some(missing) = &row.missing {
                assert_eq!(&got.missing, missing, "{name}: missing");
            }
            if let Some(count) = row.confirm_count {
                assert_eq!(got.state.confirm_count, count, "{name}: confirm_count");
            }
            if let Some(count) = row.clean_cycles {
                assert_eq!(got.state.clean_cycles, count, "{name}: clean_cycles");
            }
            if let Some(acknowledged) = &row.acknowledged {
                assert_eq!(
                    &got.state.acknowledged, acknowledged,
                    "{name}: acknowledged"
                );
            }
            if row.unchanged {
                assert_eq!(got.state, row.state, "{name}: state");
            }
        }
    }

    /// Carries out a chain of commands the way the daemon and an operator would: each step
    /// starts from the state the previous one stored, and the pause follows the actions.
    fn chain(config: &GuardConfig, commands: &[(Option<Observation>, Command)]) -> Vec<Step> {
        let mut state = GuardState::default();
        let mut pause = running();
        commands
            .iter()
            .map(|(observation, command)| {
                let got = step(observation.as_ref(), &state, &pause, config, command);
                state = got.state.clone();
                pause = match &got.action {
                    Action::Trip(_) => paused_by_guard().listing(got.missing.clone()),
                    Action::Pause | Action::TakeOver => {
                        paused_by("alice").listing(got.missing.clone())
                    }
                    Action::Resume { .. } | Action::AutoResume { .. } => running(),
                    _ => pause.clone(),
                };
                got
            })
            .collect()
    }

    #[test]
    fn after_a_forced_resume_only_a_new_loss_trips() {
        let six = fleet(100, &[1, 2, 3, 4, 5, 6]);
        let eleven = fleet(100, &span(1, 12));
        let steps = chain(
            &config(),
            &[
                (Some(fleet(100, &[])), Command::Cycle),
                (Some(six.clone()), Command::Cycle),
                (Some(six.clone()), Command::Cycle),
                (Some(six.clone()), resume(false)),
                (Some(six.clone()), resume(true)),
                (Some(six.clone()), Command::Cycle),
                (Some(six.clone()), Command::Cycle),
                (Some(six), Command::Cycle),
                (Some(eleven.clone()), Command::Cycle),
                (Some(eleven), Command::Cycle),
            ],
        );
        let actions: Vec<&Action> = steps.iter().map(|s| &s.action).collect();
        assert_eq!(
            actions,
            vec![
                &Action::Nothing,
                &Action::Nothing,
                &Action::Trip(Trip::Threshold {
                    missing: 6,
                    eligible: 100
                }),
                &Action::RefuseResume,
                &Action::Resume {
                    acknowledged: names(1..=6),
                    forced: true
                },
                &Action::Nothing,
                &Action::Nothing,
                &Action::Nothing,
                &Action::Nothing,
                &Action::Trip(Trip::Threshold {
                    missing: 5,
                    eligible: 100
                }),
            ]
        );
        assert_eq!(steps[7].state.confirm_count, 0);
        assert_eq!(steps[8].state.confirm_count, 1);
    }

    #[test]
    fn an_operator_take_over_stops_the_automatic_resume() {
        let mut config = config();
        config.auto_resume_after = Some(1);
        let lost = fleet(10, &[1]);
        let steps = chain(
            &config,
            &[
                (Some(lost.clone()), Command::Cycle),
                (Some(lost.clone()), Command::Cycle),
                (Some(lost), pause_by("alice")),
                (Some(fleet(10, &[])), Command::Cycle),
                (Some(fleet(10, &[])), Command::Cycle),
            ],
        );
        assert!(matches!(steps[1].action, Action::Trip(_)));
        assert_eq!(steps[2].action, Action::TakeOver);
        assert_eq!(steps[3].action, Action::Maintain);
        assert_eq!(steps[4].action, Action::Maintain);
        // Counted up to where it matters (auto_resume_after), not further.
        assert_eq!(steps[4].state.clean_cycles, 1);
    }

    #[test]
    fn the_high_water_mark_is_refreshed_by_every_cycle_that_confirms_it() {
        let config = config();
        let all = names(0..10);
        let stored = GuardState::default().high_water_at(NOW - 600, all.clone());
        let cycle = |observation: Observation, state: &GuardState, pause: PauseFacts| {
            step(Some(&observation), state, &pause, &config, &Command::Cycle).state
        };

        // The same record set, later: the mark's time moves to this cycle's.
        let confirmed = cycle(fleet(10, &[]), &stored, running());
        assert_eq!(
            confirmed.high_water,
            Some(HighWater {
                time: NOW,
                names: all.clone()
            })
        );
        // Fewer records within the window: the mark, and its time, are kept.
        let fewer = cycle(fleet(10, &[3]).at(NOW + 60), &confirmed, running());
        assert_eq!(fewer.high_water, confirmed.high_water);
        let fewer = cycle(fleet(10, &[3, 4]).at(NOW + 120), &fewer, running());
        assert_eq!(fewer.high_water, confirmed.high_water);
        // Whole again, while paused: confirmed again.
        let whole = cycle(fleet(10, &[]).at(NOW + 180), &fewer, paused_by_guard());
        assert_eq!(
            whole.high_water,
            Some(HighWater {
                time: NOW + 180,
                names: all
            })
        );
        // More records: the larger set is the mark.
        let grown = cycle(fleet(12, &[]).at(NOW + 240), &whole, running());
        assert_eq!(
            grown.high_water,
            Some(HighWater {
                time: NOW + 240,
                names: names(0..12)
            })
        );
        // An incomplete cycle does not touch it.
        let incomplete = step(None, &grown, &running(), &config, &Command::Cycle).state;
        assert_eq!(incomplete.high_water, grown.high_water);
    }

    #[test]
    fn a_restart_in_the_middle_of_a_mass_deletion_still_trips_at_once() {
        let mut config = config();
        config.confirm_cycles = 10;
        // What the last leader stored: a set that has been whole for hours, last confirmed
        // 30 s before this cycle.
        let stored = GuardState::default().high_water_at(NOW - 30, names(0..100));
        let got = step(
            Some(&fleet(100, &span(0, 25))),
            &stored,
            &running(),
            &config,
            &Command::Cycle,
        );
        assert_eq!(
            got.action,
            Action::Trip(Trip::MassLoss {
                gone: 25,
                high_water: 100
            })
        );

        // The same, lived through: two hours of a whole fleet, a loss that starts, then the
        // state carried over to a new leader as the control item keeps it.
        let mut state = GuardState::default();
        for minutes in [120, 100, 80, 60, 40, 20, 1] {
            let observation = fleet(100, &[]).at(NOW - minutes * 60 + 30);
            state = step(
                Some(&observation),
                &state,
                &running(),
                &config,
                &Command::Cycle,
            )
            .state;
        }
        assert_eq!(
            state.high_water.as_ref().map(|mark| mark.time),
            Some(NOW - 30)
        );
        let started = step(
            Some(&fleet(100, &span(0, 10)).at(NOW - 10)),
            &state,
            &running(),
            &config,
            &Command::Cycle,
        );
        assert_eq!(started.action, Action::Nothing);
        // A restart: the state as stored and read back (the control item's round trip of it
        // is tested beside the control item).
        let stored = serde_json::to_string(&started.state).unwrap();
        let restarted: GuardState = serde_json::from_str(&stored).unwrap();
        let got = step(
            Some(&fleet(100, &span(0, 25))),
            &restarted,
            &running(),
            &config,
            &Command::Cycle,
        );
        assert_eq!(
            got.action,
            Action::Trip(Trip::MassLoss {
                gone: 25,
                high_water: 100
            })
        );
    }
}
