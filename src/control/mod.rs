//! The control table: the item workflows read before acting (docs/architecture.md#guard), and where the guard keeps
//! its state.
//!
//! The table's partition key is `target` (S). Each target has one control item, keyed by the
//! target's name, and one high-water item keyed `<name>#high-water`. Every write is conditional
//! on the item's `version`, so two replicas, or the daemon and an operator's `pause`, never
//! overwrite each other: the loser re-reads and tries again.

pub mod enforce;
#[cfg(test)]
pub(crate) mod fake;
pub mod lease;
pub mod lease_table;
pub mod pause;
pub mod roster;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::AwsError;
use crate::aws::control_calls::ControlTableCalls;
use crate::aws::dynamodb::{Condition, Dynamo};
use crate::control::lease::Lease;
use crate::model::item::{AttrValue, Item, from_json, to_json};
use crate::reconcile::guard::{GuardState, HighWater};
use crate::reconcile::report::GuardView;
use crate::runtime::config::PauserKind;

/// The control table's partition key.
pub const KEY_ATTRIBUTE: &str = "target";
/// The guard note shown while the control table does not exist.
pub const NO_CONTROL_TABLE: &str = "no control table (run lbrecon init)";
/// Who the guard's own pauses are by.
pub const GUARD_ACTOR: &str = "lbrecon";
/// The audit events kept in the item, newest last.
pub const HISTORY_LIMIT: usize = 50;

/// The control item of one target. Its attributes are the contract workflows read: `paused`
/// (BOOL), `reason`, `since`, `by` (S), `missing` and `quarantine` (L of S).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlItem {
    pub target: String,
    /// Increases with every write; writes are conditional on it.
    #[serde(default)]
    pub version: i64,
    /// Workflows must not act on any load balancer of the target while true.
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
    /// Eligible load balancers without a valid record, as of the last complete cycle while
    /// paused.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Load balancers workflows must not act on, paused or not.
    #[serde(default)]
    pub quarantine: Vec<String>,
    /// What each pauser did, by pauser.
    #[serde(default)]
    pub pausers: BTreeMap<String, PauserRecord>,
    /// Audit events, oldest first, at most [`HISTORY_LIMIT`].
    #[serde(default)]
    pub history: Vec<Event>,
    /// lbrecon has seen the state table exist.
    #[serde(default)]
    pub state_table_seen: bool,
    /// The guard's counters (the high-water names live in their own item).
    #[serde(default)]
    pub guard: StoredGuard,
    /// Who runs the target's pausers now; nobody else runs them until it is released or stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// The version this item was read at; `None` when it was not in the table.
    #[serde(skip)]
    pub loaded_version: Option<i64>,
    /// `paused` as read: a write is conditional on it too, so a flag a person set or cleared
    /// by hand (an `UpdateItem` that leaves `version` alone) is never overwritten unseen.
    #[serde(skip)]
    pub loaded_paused: Option<bool>,
}

/// The guard's state as stored in the control item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredGuard {
    #[serde(default)]
    pub confirm_count: u32,
    #[serde(default)]
    pub missing_streaks: BTreeMap<String, u32>,
    #[serde(default)]
    pub acknowledged: BTreeSet<String>,
    #[serde(default)]
    pub clean_cycles: u32,
    #[serde(default)]
    pub trips: u64,
}

/// One pauser's part of a pause. Every effect is in here before it happens (written ahead), so
/// `resume` undoes it whether it finished or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauserRecord {
    pub kind: PauserKind,
    pub status: PauserStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `autoscaling`: per group, the processes lbrecon is about to suspend (read as not
    /// suspended just before). Written before `SuspendProcesses` is sent, moved to `suspended`
    /// once it answered; `resume` resumes these too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suspending: BTreeMap<String, BTreeSet<String>>,
    /// `autoscaling`: per group, the processes lbrecon suspended (not those already suspended).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suspended: BTreeMap<String, BTreeSet<String>>,
    /// `autoscaling`: per group, processes lbrecon suspended that a person resumed since; never
    /// suspended again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub undone: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    pub attempts: u32,
}

impl PauserRecord {
    /// A record of `kind` about to act.
    pub fn planned(kind: PauserKind) -> Self {
        PauserRecord {
            kind,
            status: PauserStatus::Planned,
            detail: None,
            error: None,
            suspending: BTreeMap::new(),
            suspended: BTreeMap::new(),
            undone: BTreeMap::new(),
            attempts: 0,
        }
    }

    /// Per group, every process this record may have suspended: done or only written ahead.
    pub fn to_undo(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut all = self.suspended.clone();
        for (group, processes) in &self.suspending {
            all.entry(group.clone())
                .or_default()
                .extend(processes.iter().cloned());
        }
        all.retain(|_, processes| !processes.is_empty());
        all
    }
}

/// Where a pauser stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauserStatus {
    /// Written ahead; acting, or interrupted while acting (finished by the next actor).
    Planned,
    /// Everything written ahead was done.
    Done,
    /// The last attempt failed; retried next cycle.
    Failed,
    /// `lbrecon resume` is undoing it; the daemon leaves it alone. One left by an interrupted
    /// resume is finished by running resume again.
    Resuming,
}

impl PauserStatus {
    /// As the control item spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PauserStatus::Planned => "planned",
            PauserStatus::Done => "done",
            PauserStatus::Failed => "failed",
            PauserStatus::Resuming => "resuming",
        }
    }
}

/// A claim on a target's pausers: one actor at a time runs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Who: `lbrecon` for the daemon, the operator for a command.
    pub by: String,
    /// The claiming process; a process recognizes its own claim.
    pub owner: String,
    /// What for: `trip`, `maintain`, `auto_resume`, `pause`, `resume`.
    pub purpose: String,
    /// RFC 3339.
    pub since: String,
    /// Unix seconds after which the claim is stale and another actor may take it over.
    pub until: i64,
}

impl Claim {
    /// Whether another actor must wait for this claim at `now` (Unix seconds).
    pub fn blocks(&self, owner: &str, now: i64) -> bool {
        self.owner != owner && now <= self.until
    }
}

/// An audit event kept in the control item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339.
    pub time: String,
    /// `pause`, `resume`, `trip`, `pause_undone`, `init`, ...
    pub event: String,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// This process's identity in claims: host, process ID and a random part, so a restarted
/// process never takes an old claim for its own.
pub fn process_owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "host".to_string());
        format!(
            "{host}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

/// One pauser's record after two actors ran it: every step either wrote ahead or did stays
/// recorded, so resume undoes both; a step done by either is done.
pub fn merge(theirs: &PauserRecord, ours: &PauserRecord) -> PauserRecord {
    let mut merged = ours.clone();
    for (group, processes) in &theirs.suspended {
        merged
            .suspended
            .entry(group.clone())
            .or_default()
            .extend(processes.iter().cloned());
    }
    for (group, processes) in &theirs.suspending {
        merged
            .suspending
            .entry(group.clone())
            .or_default()
            .extend(processes.iter().cloned());
    }
    for (group, processes) in &theirs.undone {
        merged
            .undone
            .entry(group.clone())
            .or_default()
            .extend(processes.iter().cloned());
    }
    for (group, done) in &merged.suspended {
        if let Some(pending) = merged.suspending.get_mut(group) {
            pending.retain(|process| !done.contains(process));
        }
    }
    merged
        .suspending
        .retain(|_, processes| !processes.is_empty());
    if theirs.status == PauserStatus::Resuming {
        // Someone is undoing it: it stays theirs to finish.
        merged.status = PauserStatus::Resuming;
    }
    merged.attempts = theirs.attempts.max(ours.attempts);
    merged
}

/// What `check` needs of the control item.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlView {
    pub guard: GuardView,
    /// Whether lbrecon has seen the state table exist.
    pub state_table_seen: bool,
    /// Load balancers the guard counts as missing or quarantines: they stay in the target's
    /// scope until their records are back, whatever its rules.
    pub keep_in_scope: BTreeSet<String>,
}

/// The control item, or the absence of its table.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// The table exists; the item as read (a fresh one when there was none).
    Item(Box<ControlItem>),
    /// The control table does not exist.
    NoTable,
}

impl ControlItem {
    /// A fresh item, not yet in the table.
    pub fn new(target: &str) -> Self {
        ControlItem {
            target: target.to_string(),
            ..Default::default()
        }
    }

    /// Appends an audit event, keeping the newest [`HISTORY_LIMIT`].
    pub fn record(&mut self, event: Event) {
        self.history.push(event);
        if self.history.len() > HISTORY_LIMIT {
            let excess = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..excess);
        }
    }

    /// The guard's full state; the high-water mark is kept in an item of its own.
    pub fn guard_state(&self, high_water: Option<HighWater>) -> GuardState {
        GuardState {
            confirm_count: self.guard.confirm_count,
            missing_streaks: self.guard.missing_streaks.clone(),
            quarantine: self.quarantine.iter().cloned().collect(),
            acknowledged: self.guard.acknowledged.clone(),
            clean_cycles: self.guard.clean_cycles,
            high_water,
        }
    }

    /// Stores the guard's state (not the high-water mark).
    pub fn set_guard_state(&mut self, state: &GuardState) {
        self.guard.confirm_count = state.confirm_count;
        self.guard.missing_streaks = state.missing_streaks.clone();
        self.guard.acknowledged = state.acknowledged.clone();
        self.guard.clean_cycles = state.clean_cycles;
        self.quarantine = state.quarantine.iter().cloned().collect();
    }

    /// What `check` shows of it.
    pub fn view(&self) -> ControlView {
        ControlView {
            guard: GuardView {
                paused: self.paused,
                reason: if self.paused {
                    self.reason.clone()
                } else {
                    None
                },
            },
            state_table_seen: self.state_table_seen,
            keep_in_scope: self
                .missing
                .iter()
                .chain(&self.quarantine)
                .chain(self.guard.missing_streaks.keys())
                .cloned()
                .collect(),
        }
    }

    fn to_item(&self) -> Item {
        let value = serde_json::to_value(self).expect("a control item always serializes");
        match from_json(&value) {
            AttrValue::M(map) => map.into_iter().collect(),
            _ => unreachable!("a struct serializes as a map"),
        }
    }

    fn from_item(item: &Item) -> Result<Self, String> {
        let mut map = serde_json::Map::new();
        for (key, value) in item {
            map.insert(key.clone(), to_json(value, key)?);
        }
        let mut control: ControlItem = serde_json::from_value(Value::Object(map))
            .map_err(|err| format!("the control item is not in lbrecon's schema: {err}"))?;
        control.loaded_version = Some(control.version);
        control.loaded_paused = Some(control.paused);
        Ok(control)
    }
}

/// Why [`ControlStore::update`] gave up.
#[derive(Debug)]
pub enum UpdateError {
    /// The control table does not exist.
    NoTable,
    Aws(AwsError),
    /// Another writer won every attempt.
    Contended,
}

impl UpdateError {
    /// A message for a person, naming what to do.
    pub fn message<D>(&self, store: &ControlStore<'_, D>) -> String {
        match self {
            UpdateError::NoTable => format!(
                "the control table {} does not exist: run `lbrecon init --target {} --approve TICKET` first",
                store.table, store.target
            ),
            UpdateError::Aws(err) => format!("control table {}: {err}", store.table),
            UpdateError::Contended => format!(
                "the control item of {} keeps changing under this command; try again",
                store.target
            ),
        }
    }
}

/// Reads and writes one target's control item, through `D`'s calls ([`Dynamo`] but in tests).
#[derive(Debug)]
pub struct ControlStore<'a, D = Dynamo> {
    pub dynamodb: &'a D,
    pub table: &'a str,
    pub target: &'a str,
    /// With leader election, the replica's lease: every write is conditional on it.
    pub lease: Option<&'a Lease>,
}

// By hand rather than derived: a derive would ask `D: Clone`, and the store only holds `&D`.
impl<D> Clone for ControlStore<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D> Copy for ControlStore<'_, D> {}

impl<D: ControlTableCalls> ControlStore<'_, D> {
    fn high_water_key(&self) -> String {
        format!("{}#high-water", self.target)
    }

    /// Whether this replica may act for the target now (always, without leader election).
    pub fn acting(&self) -> bool {
        match self.lease {
            Some(lease) => lease.acting(),
            None => true,
        }
    }

    /// Writes `item`; under a lease, only while the lease is held, and conditional on it.
    async fn put(&self, item: &Item, condition: Option<&Condition>) -> Result<(), AwsError> {
        let Some(lease) = self.lease else {
            return self.dynamodb.put(self.table, item, condition).await;
        };
        let Some(fence) = lease.fence().await else {
            return Err(AwsError::not_acting(self.target));
        };
        self.dynamodb
            .put_checked(self.table, item, condition, &fence.check())
            .await
    }

    /// Reads the control item.
    pub async fn load(&self) -> Result<Loaded, AwsError> {
        match self
            .dynamodb
            .get(self.table, KEY_ATTRIBUTE, self.target)
            .await
        {
            Ok(Some(item)) => ControlItem::from_item(&item)
                .map(|item| Loaded::Item(Box::new(item)))
                .map_err(|message| {
                    AwsError::unexpected(
                        "dynamodb",
                        "GetItem",
                        format!("table {}: {message}", self.table),
                    )
                }),
            Ok(None) => Ok(Loaded::Item(Box::new(ControlItem::new(self.target)))),
            Err(err) if err.is_not_found() => Ok(Loaded::NoTable),
            Err(err) => Err(err),
        }
    }

    /// Writes the item if nobody wrote it since it was read, and bumps its version. A lost
    /// race is an error whose `is_condition_failed()` is true; re-read and try again.
    pub async fn save(&self, control: &mut ControlItem) -> Result<(), AwsError> {
        let mut next = control.clone();
        next.version = control.version + 1;
        let condition = match control.loaded_version {
            None => Condition {
                expression: "attribute_not_exists(#key)".into(),
                names: vec![("#key".into(), KEY_ATTRIBUTE.into())],
                values: vec![],
            },
            Some(version) => Condition {
                expression: "#version = :version AND #paused = :paused".into(),
                names: vec![
                    ("#version".into(), "version".into()),
                    ("#paused".into(), "paused".into()),
                ],
                values: vec![
                    (":version".into(), AttrValue::N(version.to_string())),
                    (
                        ":paused".into(),
                        AttrValue::Bool(control.loaded_paused.unwrap_or(control.paused)),
                    ),
                ],
            },
        };
        self.put(&next.to_item(), Some(&condition)).await?;
        control.version = next.version;
        control.loaded_version = Some(next.version);
        control.loaded_paused = Some(control.paused);
        Ok(())
    }

    /// Reads the control item and hands it to `change`, which saves it; while another writer
    /// wins the race (the conditional save fails), does it again from a fresh read, up to
    /// `attempts` times.
    pub async fn update<T>(
        &self,
        attempts: usize,
        mut change: impl AsyncFnMut(&mut ControlItem) -> Result<T, AwsError>,
    ) -> Result<T, UpdateError> {
        for _ in 0..attempts {
            let mut control = match self.load().await {
                Ok(Loaded::Item(item)) => *item,
                Ok(Loaded::NoTable) => return Err(UpdateError::NoTable),
                Err(err) => return Err(UpdateError::Aws(err)),
            };
            match change(&mut control).await {
                Err(err) if err.is_condition_failed() => continue,
                Err(err) => return Err(UpdateError::Aws(err)),
                Ok(value) => return Ok(value),
            }
        }
        Err(UpdateError::Contended)
    }

    /// Reads the high-water mark.
    pub async fn load_high_water(&self) -> Result<Option<HighWater>, AwsError> {
        let Some(item) = self
            .dynamodb
            .get(self.table, KEY_ATTRIBUTE, &self.high_water_key())
            .await?
        else {
            return Ok(None);
        };
        let time = time_of(&item);
        let names = match item.get("names") {
            Some(AttrValue::L(list)) => list
                .iter()
                .filter_map(|v| v.as_s().map(str::to_string))
                .collect(),
            Some(AttrValue::Ss(list)) => list.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        Ok(Some(HighWater { time, names }))
    }

    fn stream_key(&self) -> String {
        format!("{}#stream", self.target)
    }

    /// Reads how far the state table's stream was read and journaled, if it ever was.
    pub async fn load_stream_checkpoint(&self) -> Result<Option<StreamCheckpoint>, AwsError> {
        let Some(item) = self
            .dynamodb
            .get(self.table, KEY_ATTRIBUTE, &self.stream_key())
            .await?
        else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s()).unwrap_or_default();
        let shards = serde_json::from_str(text("shards")).map_err(|err| {
            AwsError::unexpected(
                "dynamodb",
                "GetItem",
                format!(
                    "table {}: the stream checkpoint of target {} is not readable ({err}); delete the item {} to read the stream again from its trim horizon",
                    self.table,
                    self.target,
                    self.stream_key()
                ),
            )
        })?;
        let time = time_of(&item);
        Ok(Some(StreamCheckpoint {
            stream_arn: text("stream_arn").to_string(),
            shards,
            time_millis: time,
        }))
    }

    /// Writes the stream's checkpoint: under a lease, only while it is held, and conditional
    /// on it, so a replica that lost the lease never moves the new leader's checkpoint.
    pub async fn save_stream_checkpoint(
        &self,
        checkpoint: &StreamCheckpoint,
    ) -> Result<(), AwsError> {
        let shards = serde_json::to_string(&checkpoint.shards).expect("checkpoints serialize");
        let item: Item = [
            (KEY_ATTRIBUTE.to_string(), AttrValue::S(self.stream_key())),
            (
                "stream_arn".to_string(),
                AttrValue::S(checkpoint.stream_arn.clone()),
            ),
            ("shards".to_string(), AttrValue::S(shards)),
            (
                "time".to_string(),
                AttrValue::N(checkpoint.time_millis.to_string()),
            ),
        ]
        .into_iter()
        .collect();
        self.put(&item, None).await
    }

    /// Writes the high-water mark (only the leader writes it; last writer wins).
    pub async fn save_high_water(&self, high_water: &HighWater) -> Result<(), AwsError> {
        let item: Item = [
            (
                KEY_ATTRIBUTE.to_string(),
                AttrValue::S(self.high_water_key()),
            ),
            (
                "time".to_string(),
                AttrValue::N(high_water.time.to_string()),
            ),
            (
                "names".to_string(),
                AttrValue::L(high_water.names.iter().cloned().map(AttrValue::S).collect()),
            ),
        ]
        .into_iter()
        .collect();
        self.put(&item, None).await
    }
}

/// The `time` attribute (a number) of one of the control table's items; 0 without one.
fn time_of(item: &Item) -> i64 {
    match item.get("time") {
        Some(AttrValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

/// How far the state table's stream was read and journaled (docs/architecture.md#stream).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamCheckpoint {
    /// The stream it is for: a stream disabled and enabled again is a new one.
    pub stream_arn: String,
    pub shards: crate::reconcile::lineage::Checkpoints,
    /// Until when the journal is whole (Unix milliseconds): the last seal.
    pub time_millis: i64,
}

/// Reads the control item of `target` for a view. A control table that does not exist is not
/// an error here: the view says so.
pub async fn read_view(
    dynamodb: &Dynamo,
    table: &str,
    target: &str,
) -> Result<ControlView, AwsError> {
    let store = ControlStore {
        lease: None,
        dynamodb,
        table,
        target,
    };
    Ok(match store.load().await? {
        Loaded::Item(item) => item.view(),
        Loaded::NoTable => ControlView {
            guard: GuardView {
                paused: false,
                reason: Some(NO_CONTROL_TABLE.to_string()),
            },
            state_table_seen: false,
            keep_in_scope: BTreeSet::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::fake::per_group;
    use super::*;

    #[test]
    fn the_guard_state_survives_the_control_item() {
        let state = GuardState {
            confirm_count: 1,
            missing_streaks: [("web-1".to_string(), 2)].into_iter().collect(),
            quarantine: ["web-1".to_string()].into_iter().collect(),
            acknowledged: ["web-9".to_string()].into_iter().collect(),
            clean_cycles: 0,
            high_water: Some(HighWater {
                time: 100,
                names: ["web-1".to_string(), "web-2".to_string()]
                    .into_iter()
                    .collect(),
            }),
        };
        let mut control = ControlItem::new("prod");
        control.set_guard_state(&state);
        // The high-water mark lives in an item of its own, and is handed back.
        assert_eq!(control.guard_state(state.high_water.clone()), state);
    }

    #[test]
    fn the_item_round_trips_with_the_documented_attribute_types() {
        let mut control = ControlItem::new("prod");
        control.version = 4;
        control.paused = true;
        control.reason = Some("state data missing".into());
        control.missing = vec!["a".into()];
        control.quarantine = vec!["a".into()];
        control.pausers.insert(
            "autoscaling".into(),
            PauserRecord {
                status: PauserStatus::Done,
                suspended: BTreeMap::from([("asg-1".into(), BTreeSet::from(["Launch".into()]))]),
                suspending: BTreeMap::from([("asg-2".into(), BTreeSet::from(["Launch".into()]))]),
                ..PauserRecord::planned(PauserKind::Autoscaling)
            },
        );
        control.claim = Some(Claim {
            by: GUARD_ACTOR.into(),
            owner: "daemon-1".into(),
            purpose: "trip".into(),
            since: "2026-01-01T00:00:00Z".into(),
            until: 1_767_225_660,
        });
        control.record(Event {
            time: "2026-01-01T00:00:00Z".into(),
            event: "trip".into(),
            by: GUARD_ACTOR.into(),
            ..Default::default()
        });
        let item = control.to_item();
        assert_eq!(item["paused"], AttrValue::Bool(true));
        let AttrValue::M(pausers) = &item["pausers"] else {
            panic!("pausers is a map")
        };
        let AttrValue::M(autoscaling) = &pausers["autoscaling"] else {
            panic!("a pauser is a map")
        };
        assert_eq!(autoscaling["status"], AttrValue::S("done".into()));
        assert_eq!(autoscaling["kind"], AttrValue::S("autoscaling".into()));
        assert_eq!(item["target"], AttrValue::S("prod".into()));
        assert_eq!(item["version"], AttrValue::N("4".into()));
        assert_eq!(
            item["quarantine"],
            AttrValue::L(vec![AttrValue::S("a".into())])
        );
        let back = ControlItem::from_item(&item).unwrap();
        assert_eq!(back.loaded_version, Some(4));
        assert_eq!(
            ControlItem {
                loaded_version: None,
                loaded_paused: None,
                ..back
            },
            control
        );
    }

    #[test]
    fn history_keeps_the_newest_events() {
        let mut control = ControlItem::new("prod");
        for i in 0..(HISTORY_LIMIT + 5) {
            control.record(Event {
                event: format!("e{i}"),
                ..Default::default()
            });
        }
        assert_eq!(control.history.len(), HISTORY_LIMIT);
        assert_eq!(control.history[0].event, "e5");
    }

    #[test]
    fn the_view_shows_the_reason_only_while_paused() {
        let mut control = ControlItem::new("prod");
        control.reason = Some("old".into());
        assert_eq!(
            control.view().guard,
            GuardView {
                paused: false,
                reason: None
            }
        );
        control.paused = true;
        assert_eq!(control.view().guard.reason.as_deref(), Some("old"));
    }

    #[test]
    fn an_item_outside_the_schema_is_an_error_not_a_panic() {
        let item: Item = [
            ("target".to_string(), AttrValue::S("prod".into())),
            ("paused".to_string(), AttrValue::S("yes".into())),
        ]
        .into_iter()
        .collect();
        assert!(
            ControlItem::from_item(&item)
                .unwrap_err()
                .contains("schema")
        );
    }

    /// An autoscaling record, built step by step.
    fn autoscaling(status: PauserStatus) -> PauserRecord {
        PauserRecord {
            status,
            ..PauserRecord::planned(PauserKind::Autoscaling)
        }
    }

    impl PauserRecord {
        fn with_suspending(mut self, groups: &[(&str, &[&str])]) -> Self {
            self.suspending = per_group(groups);
            self
        }

        fn with_suspended(mut self, groups: &[(&str, &[&str])]) -> Self {
            self.suspended = per_group(groups);
            self
        }

        fn with_undone(mut self, groups: &[(&str, &[&str])]) -> Self {
            self.undone = per_group(groups);
            self
        }

        fn attempted(mut self, attempts: u32) -> Self {
            self.attempts = attempts;
            self
        }
    }

    struct MergeRow {
        name: &'static str,
        theirs: PauserRecord,
        ours: PauserRecord,
        merged: PauserRecord,
    }

    #[test]
    fn merge_keeps_every_step_of_both_actors() {
        let rows = vec![
            MergeRow {
                name: "every map is a union",
                theirs: autoscaling(PauserStatus::Done)
                    .with_suspended(&[("asg-1", &["Launch"]), ("asg-3", &["Launch"])])
                    .with_suspending(&[("asg-2", &["Launch"])])
                    .with_undone(&[("asg-4", &["Terminate"])]),
                ours: autoscaling(PauserStatus::Done)
                    .with_suspended(&[("asg-3", &["Terminate"]), ("asg-5", &["Launch"])])
                    .with_suspending(&[("asg-6", &["Terminate"])])
                    .with_undone(&[("asg-4", &["Launch"])]),
                merged: autoscaling(PauserStatus::Done)
                    .with_suspended(&[
                        ("asg-1", &["Launch"]),
                        ("asg-3", &["Launch", "Terminate"]),
                        ("asg-5", &["Launch"]),
                    ])
                    .with_suspending(&[("asg-2", &["Launch"]), ("asg-6", &["Terminate"])])
                    .with_undone(&[("asg-4", &["Launch", "Terminate"])]),
            },
            MergeRow {
                name: "a step we did is not left in their suspending",
                theirs: autoscaling(PauserStatus::Planned)
                    .with_suspending(&[("asg-1", &["Launch", "Terminate"])]),
                ours: autoscaling(PauserStatus::Done).with_suspended(&[("asg-1", &["Launch"])]),
                merged: autoscaling(PauserStatus::Done)
                    .with_suspended(&[("asg-1", &["Launch"])])
                    .with_suspending(&[("asg-1", &["Terminate"])]),
            },
            MergeRow {
                name: "a step they did is not left in our suspending",
                theirs: autoscaling(PauserStatus::Done)
                    .with_suspended(&[("asg-1", &["Launch", "Terminate"])]),
                ours: autoscaling(PauserStatus::Failed)
                    .with_suspending(&[("asg-1", &["Launch", "Terminate"])]),
                merged: autoscaling(PauserStatus::Failed)
                    .with_suspended(&[("asg-1", &["Launch", "Terminate"])]),
            },
            MergeRow {
                name: "their resume wins over our done",
                theirs: autoscaling(PauserStatus::Resuming)
                    .with_suspended(&[("asg-1", &["Launch"])])
                    .attempted(1),
                ours: autoscaling(PauserStatus::Done)
                    .with_suspended(&[("asg-2", &["Launch"])])
                    .attempted(2),
                merged: autoscaling(PauserStatus::Resuming)
                    .with_suspended(&[("asg-1", &["Launch"]), ("asg-2", &["Launch"])])
                    .attempted(2),
            },
            MergeRow {
                name: "our resume stays a resume",
                theirs: autoscaling(PauserStatus::Done)
                    .with_suspended(&[("asg-1", &["Launch"])])
                    .attempted(3),
                ours: autoscaling(PauserStatus::Resuming),
                merged: autoscaling(PauserStatus::Resuming)
                    .with_suspended(&[("asg-1", &["Launch"])])
                    .attempted(3),
            },
            MergeRow {
                name: "otherwise our status stands",
                theirs: autoscaling(PauserStatus::Failed),
                ours: autoscaling(PauserStatus::Done),
                merged: autoscaling(PauserStatus::Done),
            },
        ];
        for row in rows {
            let name = row.name;
            let merged = merge(&row.theirs, &row.ours);
            assert_eq!(merged, row.merged, "{name}");
            // Whatever either may have suspended, resume still undoes.
            let mut either = row.theirs.to_undo();
            for (group, processes) in row.ours.to_undo() {
                either.entry(group).or_default().extend(processes);
            }
            assert_eq!(merged.to_undo(), either, "{name}: to_undo");
            // Merging again changes nothing.
            assert_eq!(merge(&row.theirs, &merged), merged, "{name}: idempotent");
        }
    }

    #[test]
    fn to_undo_is_everything_suspended_or_written_ahead() {
        let record = autoscaling(PauserStatus::Failed)
            .with_suspended(&[("asg-1", &["Launch"]), ("asg-2", &[])])
            .with_suspending(&[
                ("asg-1", &["Terminate"]),
                ("asg-3", &["Launch"]),
                ("asg-4", &[]),
            ])
            .with_undone(&[("asg-5", &["Launch"])]);
        assert_eq!(
            record.to_undo(),
            per_group(&[("asg-1", &["Launch", "Terminate"]), ("asg-3", &["Launch"])])
        );
        assert!(autoscaling(PauserStatus::Planned).to_undo().is_empty());
    }

    #[test]
    fn a_claim_blocks_others_until_it_is_stale() {
        const UNTIL: i64 = 1_000_000;
        let claim = Claim {
            by: GUARD_ACTOR.into(),
            owner: "host/1/aa".into(),
            purpose: "trip".into(),
            since: "2026-01-01T00:00:00Z".into(),
            until: UNTIL,
        };
        let rows = [
            ("our own claim, in time", "host/1/aa", UNTIL - 60, false),
            ("our own claim, stale", "host/1/aa", UNTIL + 60, false),
            ("another's claim, in time", "host/2/bb", UNTIL - 60, true),
            ("another's claim, at its limit", "host/2/bb", UNTIL, true),
            ("another's claim, just stale", "host/2/bb", UNTIL + 1, false),
            (
                "a restarted process is another",
                "host/1/cc",
                UNTIL - 60,
                true,
            ),
        ];
        for (name, owner, now, blocks) in rows {
            assert_eq!(claim.blocks(owner, now), blocks, "{name}");
        }
    }
}

#[cfg(test)]
mod store_tests {
    //! [`ControlStore`] over the in-memory table: its conditions, and `update`'s retries.

    use super::fake::{FakeAws, GET_ITEM, PUT_ITEM, When};
    use super::*;

    const TABLE: &str = "control";

    fn store(fake: &FakeAws) -> ControlStore<'_, FakeAws> {
        ControlStore {
            dynamodb: fake,
            table: TABLE,
            target: "prod",
            lease: None,
        }
    }

    async fn load(store: &ControlStore<'_, FakeAws>) -> ControlItem {
        match store.load().await.unwrap() {
            Loaded::Item(item) => *item,
            Loaded::NoTable => panic!("the table exists"),
        }
    }

    #[tokio::test]
    async fn a_save_loses_to_any_write_since_the_read_and_to_a_flag_set_by_hand() {
        let fake = FakeAws::new().with_table(TABLE, KEY_ATTRIBUTE);
        let store = store(&fake);
        // Two writers create the item: the second finds it there.
        let mut first = load(&store).await;
        let mut second = load(&store).await;
        assert_eq!(first.loaded_version, None);
        store.save(&mut first).await.unwrap();
        assert!(
            store
                .save(&mut second)
                .await
                .unwrap_err()
                .is_condition_failed()
        );
        assert_eq!((first.version, first.loaded_version), (1, Some(1)));

        // Another writer moved on since the read.
        let mut stale = load(&store).await;
        store.save(&mut first).await.unwrap();
        assert!(
            store
                .save(&mut stale)
                .await
                .unwrap_err()
                .is_condition_failed()
        );

        // A person set the flag by hand, leaving the version alone.
        let mut read = load(&store).await;
        fake.data(|data| data.edit_control(TABLE, "prod", false, |c| c.paused = true));
        read.missing = vec!["lb-0".into()];
        assert!(
            store
                .save(&mut read)
                .await
                .unwrap_err()
                .is_condition_failed()
        );
        let kept = fake.data(|data| data.control(TABLE, "prod")).unwrap();
        assert!(kept.paused && kept.missing.is_empty());
    }

    #[tokio::test]
    async fn update_reads_again_after_a_lost_race_and_gives_up_after_its_attempts() {
        let fake = FakeAws::new().with_table(TABLE, KEY_ATTRIBUTE);
        let store = store(&fake);
        store.save(&mut load(&store).await).await.unwrap();
        let bump = |data: &mut fake::Data| data.edit_control(TABLE, "prod", true, |_| {});
        // Another writer lands before our first two writes.
        fake.before(PUT_ITEM, When::Nth(2), bump);
        fake.before(PUT_ITEM, When::Nth(3), bump);
        let attempts = store
            .update(3, async |control: &mut ControlItem| {
                control.reason = Some("noted".into());
                store.save(control).await.map(|()| control.version)
            })
            .await
            .unwrap();
        assert_eq!(
            attempts, 4,
            "the version after two writes of theirs and ours"
        );
        assert_eq!(fake.calls(GET_ITEM).len(), 1 + 3);

        fake.before(PUT_ITEM, When::From(5), bump);
        let gave_up = store
            .update(2, async |control: &mut ControlItem| {
                store.save(control).await
            })
            .await;
        assert!(
            matches!(gave_up, Err(UpdateError::Contended)),
            "{gave_up:?}"
        );

        // Another error is not retried.
        fake.fail(
            GET_ITEM,
            When::From(1),
            fake::error(GET_ITEM, crate::aws::ErrorClass::AccessDenied),
        );
        let denied = store
            .update(5, async |control: &mut ControlItem| {
                store.save(control).await
            })
            .await;
        assert!(matches!(denied, Err(UpdateError::Aws(ref err)) if err.kind() == "access_denied"));
        // A missing table is said as such.
        let none = FakeAws::new();
        let missing = ControlStore {
            dynamodb: &none,
            ..store
        }
        .update(5, async |_: &mut ControlItem| Ok(()))
        .await;
        assert!(matches!(missing, Err(UpdateError::NoTable)));
    }
}
