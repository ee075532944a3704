//! Tailing the state table's stream (docs/architecture.md#stream): every shard, parents before
//! children, from the checkpoint; every record into the journal; a loss of live load balancers'
//! records confirmed and handed to the guard at once.
//!
//! The stream only ever adds speed. A stream that cannot be read (throttled, denied, an
//! iterator expired, data trimmed) is logged and exported and costs nothing else: the periodic
//! cycle stays the source of truth, and nothing here resumes, acknowledges or clears a pause.
//!
//! Nothing is checkpointed before it is journaled: records are sealed into a segment first,
//! then the checkpoint moves, under the lease's fence. A replica that dies between the two
//! leaves records the next leader reads again; it skips those the newest segment already holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::aws::AwsError;
use crate::aws::control_calls::{AutoScalingCalls, ControlTableCalls};
use crate::aws::reads::ElbReads;
use crate::aws::streams::{EXPIRED_ITERATOR, Position, StreamReads, TRIMMED_DATA};
use crate::control::enforce::{Enforcer, PresenceView};
use crate::control::lease::Lease;
use crate::control::{ControlStore, Loaded, StreamCheckpoint};
use crate::model::clock::now_millis;
use crate::model::item::{AttrValue, Digests, digests};
use crate::model::live::{LiveLoadBalancer, LiveTargetGroup};
use crate::model::record::{Record, RecordRules};
use crate::model::stream::{Gap, Shard, StreamRecord, cmp_sequence};
use crate::reconcile::guard::Observation;
use crate::reconcile::lineage::{self, Checkpoints, Start};
use crate::recovery::journal::{self, Segment};
use crate::recovery::snapshot::Store;
use crate::runtime::config::GuardConfig;
use crate::runtime::telemetry;

/// How often an idle shard is asked for records.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long read records wait before they are sealed into a segment (and checkpointed).
pub const SEAL_EVERY: Duration = Duration::from_secs(10);
/// A segment is sealed once it holds this many records, whatever its age.
pub const SEAL_RECORDS: usize = 5000;
/// An idle stream still seals an empty segment this often, so the journal says it is whole
/// up to then.
pub const HEARTBEAT: Duration = Duration::from_secs(300);
/// How often the shards are listed again (a split adds children).
pub const DESCRIBE_EVERY: Duration = Duration::from_secs(60);
/// Records read and not yet sealed, at most: past this (the journal cannot be written) nothing
/// more is read until a seal succeeds.
pub const MAX_PENDING: usize = 10 * SEAL_RECORDS;
/// Empty pages in a row that say a fresh iterator has reached its shard's tip (DynamoDB may
/// answer empty pages while an iterator crosses a stretch of a shard without records).
pub const EMPTY_PAGES_AT_TIP: u32 = 3;
/// While the stream is tailed, a snapshot is written at least this often, whatever changed:
/// the recovery check replays the journal since the last one.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(3600);
/// How long the reading waits after a failure before it tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What a sealed segment holds, for the journal to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    /// The span the reading covered (Unix milliseconds): from the previous seal to this one.
    pub from_millis: i64,
    pub to_millis: i64,
    /// Every shard's last sequence number journaled, this segment's records included.
    pub positions: BTreeMap<String, String>,
    pub gaps: Vec<Gap>,
    pub records: Vec<StreamRecord>,
}

/// Where sealed segments go: the target's journal in the snapshot store.
pub trait JournalSink: Send + Sync {
    /// Stores one sealed segment; answers where.
    fn seal(&self, segment: Sealed) -> impl Future<Output = Result<String, String>> + Send;

    /// The positions the newest stored segment holds, by shard (none without a journal).
    fn positions(&self) -> impl Future<Output = Result<BTreeMap<String, String>, String>> + Send;
}

/// What the stream's detection compares with: the last complete presence pass, in scope. Held
/// between cycles for the whole fleet, so only what the guard needs, compactly: names, ARNs and
/// creation times of the load balancers, and which target groups route to them.
#[derive(Debug, Clone, Default)]
pub struct Basis {
    /// When that presence pass started (Unix milliseconds).
    pub read_at_millis: i64,
    load_balancers: Vec<BasisLoadBalancer>,
    /// Target groups routing to one of them, with which (indices into `load_balancers`).
    target_groups: Vec<BasisTargetGroup>,
    /// Names with a valid record then.
    pub records: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct BasisLoadBalancer {
    name: Box<str>,
    arn: Box<str>,
    created_time: Option<i64>,
}

#[derive(Debug, Clone)]
struct BasisTargetGroup {
    arn: Box<str>,
    name: Box<str>,
    load_balancers: Box<[u32]>,
}

impl Basis {
    /// The basis of a complete presence pass: only what the guard needs of it.
    pub fn of(
        read_at_millis: i64,
        load_balancers: &[LiveLoadBalancer],
        target_groups: &[LiveTargetGroup],
        records: BTreeSet<String>,
    ) -> Basis {
        let index: HashMap<&str, u32> = load_balancers
            .iter()
            .enumerate()
            .filter_map(|(i, lb)| Some((lb.arn.as_str(), u32::try_from(i).ok()?)))
            .collect();
        Basis {
            read_at_millis,
            load_balancers: load_balancers
                .iter()
                .map(|lb| BasisLoadBalancer {
                    name: lb.name.as_str().into(),
                    arn: lb.arn.as_str().into(),
                    created_time: lb.created_time,
                })
                .collect(),
            target_groups: target_groups
                .iter()
                .filter_map(|group| {
                    let routed: Box<[u32]> = group
                        .load_balancer_arns
                        .iter()
                        .filter_map(|arn| index.get(arn.as_str()).copied())
                        .collect();
                    (!routed.is_empty()).then(|| BasisTargetGroup {
                        arn: group.arn.as_str().into(),
                        name: group.name.as_str().into(),
                        load_balancers: routed,
                    })
                })
                .collect(),
            records,
        }
    }

    /// The live load balancers' names, with their creation times.
    pub fn live(&self) -> impl Iterator<Item = (&str, Option<i64>)> {
        self.load_balancers
            .iter()
            .map(|lb| (&*lb.name, lb.created_time))
    }

    /// The load balancers and the target groups routing to them as the guard's effects take
    /// them (without their fields): made only when the stream's guard step runs.
    pub fn presence(&self) -> (Vec<LiveLoadBalancer>, Vec<LiveTargetGroup>) {
        let load_balancers = self
            .load_balancers
            .iter()
            .map(|lb| LiveLoadBalancer {
                arn: lb.arn.to_string(),
                name: lb.name.to_string(),
                created_time: lb.created_time,
                fields: Default::default(),
            })
            .collect();
        let target_groups = self
            .target_groups
            .iter()
            .map(|group| LiveTargetGroup {
                arn: group.arn.to_string(),
                name: group.name.to_string(),
                load_balancer_arns: group
                    .load_balancers
                    .iter()
                    .filter_map(|&i| self.load_balancers.get(i as usize))
                    .map(|lb| lb.arn.to_string())
                    .collect(),
                fields: Default::default(),
            })
            .collect();
        (load_balancers, target_groups)
    }
}

/// The basis as the daemon's cycle last set it.
pub type SharedBasis = Arc<Mutex<Option<Arc<Basis>>>>;

/// One stream record's meaning for the guard.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Change {
    /// The item is a valid record after it.
    valid: bool,
    created_millis: i64,
}

/// How one shard is being read.
#[derive(Debug, Clone)]
struct ShardRead {
    iterator: Option<String>,
    /// Where a new iterator starts: after the last record read, or the plan's start.
    start: Start,
    due: Instant,
    /// Every record of this shard created before this (Unix milliseconds) has been read: a
    /// `GetRecords` asked after it reached the shard's tip.
    read_to: Option<i64>,
    /// This iterator's chain has answered records.
    chain_had_records: bool,
    /// Empty pages in a row on this chain.
    empty_pages: u32,
}

/// What the tailer carries between rounds.
#[derive(Debug, Default)]
pub struct TailState {
    shards: Vec<Shard>,
    described: Option<Instant>,
    /// Journaled: what the checkpoint says.
    journaled: Checkpoints,
    /// Read, journaled or not.
    read: Checkpoints,
    reading: HashMap<String, ShardRead>,
    pending: Vec<StreamRecord>,
    pending_gaps: Vec<Gap>,
    pending_since: Option<Instant>,
    /// The end of the journal's last segment (Unix milliseconds).
    sealed_millis: i64,
    last_written: Option<Instant>,
    /// Per name, what the stream last said of it since the basis was read.
    changes: BTreeMap<String, Change>,
    /// Names the stream removed or emptied whose load balancers were confirmed live.
    confirmed: BTreeSet<String>,
    basis_at: i64,
    /// When the reading was last at the end of every shard (Unix milliseconds).
    caught_up_millis: i64,
    /// Every record created before this (Unix milliseconds) has been read, from every shard:
    /// how far a seal may say the journal is whole.
    watermark_millis: i64,
    /// Shards read to their end whose children are not being read yet, with how far they were
    /// read: the watermark waits for the children.
    closed: BTreeMap<String, i64>,
    newest_millis: i64,
}

/// What one round of reading did.
#[derive(Debug, Default)]
pub struct Round {
    pub records: usize,
    /// Every readable shard was read to its end.
    pub caught_up: bool,
    /// A shard could not be read: the records read before it are kept all the same.
    pub error: Option<AwsError>,
}

/// Tails one target's stream. Owned, so the daemon can spawn it.
pub struct Tailer<S, E, J, D, A> {
    pub target: String,
    pub stream_arn: String,
    pub streams: S,
    pub elb: E,
    pub journal: J,
    pub control: Arc<D>,
    pub control_table: String,
    pub lease: Option<Arc<Lease>>,
    pub autoscaling: Arc<A>,
    pub guard: GuardConfig,
    pub rules: RecordRules,
    pub basis: SharedBasis,
    /// Until when the journal is whole (Unix milliseconds), for the recovery check.
    pub sealed: watch::Sender<i64>,
    /// When the journal this tailer writes begins (Unix milliseconds): a snapshot the recovery
    /// check can use is one whose scan began after it.
    pub begun: watch::Sender<i64>,
}

impl<S, E, J, D, A> Tailer<S, E, J, D, A>
where
    S: StreamReads,
    E: ElbReads,
    J: JournalSink,
    D: ControlTableCalls,
    A: AutoScalingCalls,
{
    /// Whether this replica may act for the target (always, without leader election).
    fn acting(&self) -> bool {
        self.lease.as_ref().is_none_or(|lease| lease.acting())
    }

    fn store(&self) -> ControlStore<'_, D> {
        ControlStore {
            dynamodb: &*self.control,
            table: &self.control_table,
            target: &self.target,
            lease: self.lease.as_deref(),
        }
    }

    /// Reads the checkpoint (and the journal's newest positions, which a replica that died
    /// between sealing and checkpointing left ahead of it) and lists the shards.
    pub async fn start(&self) -> Result<TailState, AwsError> {
        let mut state = TailState::default();
        let now = now_millis();
        match self.store().load_stream_checkpoint().await? {
            Some(checkpoint) if checkpoint.stream_arn == self.stream_arn => {
                state.journaled = checkpoint.shards;
                state.sealed_millis = checkpoint.time_millis;
                // Behind since the last seal, until the backlog is read.
                state.caught_up_millis = checkpoint.time_millis;
            }
            Some(checkpoint) => {
                // The stream was disabled and enabled again: what happened between is not in
                // any stream lbrecon can read.
                state.sealed_millis = checkpoint.time_millis;
                self.gap(
                    &mut state,
                    None,
                    format!(
                        "the state table's stream changed (from {} to {}): changes between are not in the journal",
                        checkpoint.stream_arn, self.stream_arn
                    ),
                );
                state.sealed_millis = now;
            }
            None => state.sealed_millis = now,
        }
        match self.journal.positions().await {
            Ok(positions) => {
                for (shard, sequence) in positions {
                    let checkpoint = state.journaled.entry(shard).or_default();
                    let behind = checkpoint
                        .sequence
                        .as_deref()
                        .is_none_or(|at| cmp_sequence(at, &sequence) == std::cmp::Ordering::Less);
                    if behind && !checkpoint.finished {
                        checkpoint.sequence = Some(sequence);
                    }
                }
            }
            Err(err) => {
                return Err(AwsError::unexpected(
                    "dynamodb",
                    "GetRecords",
                    format!(
                        "the journal cannot be read ({err}): the stream is not read until it can, so nothing is journaled twice"
                    ),
                ));
            }
        }
        state.read = state.journaled.clone();
        if state.caught_up_millis == 0 {
            state.caught_up_millis = now;
        }
        state.watermark_millis = state.sealed_millis;
        Ok(state)
    }

    /// Lists the shards again when due, and plans which to read from where.
    async fn describe(&self, state: &mut TailState) -> Result<(), AwsError> {
        if state
            .described
            .is_some_and(|at| at.elapsed() < DESCRIBE_EVERY)
        {
            return Ok(());
        }
        state.shards = self.streams.shards(&self.stream_arn).await?;
        state.described = Some(Instant::now());
        let plan = lineage::plan(&state.shards, &state.read);
        for shard in plan.orphaned {
            self.gap(
                state,
                Some(&shard),
                format!("the parent of shard {shard} was trimmed before it was read to its end"),
            );
            // Recorded once: the parent no longer holds its children back.
            if let Some(parent) = state
                .shards
                .iter()
                .find(|s| s.id == shard)
                .and_then(|s| s.parent.clone())
            {
                state.read.entry(parent).or_default().finished = true;
            }
        }
        let plan = lineage::plan(&state.shards, &state.read);
        let now = Instant::now();
        for (shard, start) in plan.read {
            state.reading.entry(shard).or_insert(ShardRead {
                iterator: None,
                start,
                due: now,
                read_to: None,
                chain_had_records: false,
                empty_pages: 0,
            });
        }
        Ok(())
    }

    /// One round: every shard that is due is asked once for its next records. A shard that
    /// cannot be read ends the round; what the shards before it read is returned with the
    /// error, never dropped (their positions have moved).
    pub async fn round(&self, state: &mut TailState) -> (Round, Vec<StreamRecord>) {
        let mut round = Round {
            records: 0,
            caught_up: true,
            error: None,
        };
        if !self.acting() {
            round.caught_up = false;
            round.error = Some(AwsError::not_acting(&self.target));
            return (round, Vec::new());
        }
        if let Err(err) = self.describe(state).await {
            round.caught_up = false;
            round.error = Some(err);
            return (round, Vec::new());
        }
        let now = Instant::now();
        let mut read = Vec::new();
        let mut due: Vec<String> = state
            .reading
            .iter()
            .filter(|(_, shard)| shard.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        for id in due {
            match self.read_shard(state, &id).await {
                Ok(batch) => {
                    if !batch.is_empty() {
                        round.caught_up = false;
                    }
                    round.records += batch.len();
                    read.extend(batch);
                }
                Err(err) => {
                    round.caught_up = false;
                    round.error = Some(err);
                    break;
                }
            }
        }
        if state.reading.values().any(|shard| shard.read_to.is_none()) {
            round.caught_up = false;
        }
        // Only while the shards known are all being read (a shard just finished has children
        // not listed yet).
        // A closed shard holds the watermark until one of its children is being read.
        let parents: BTreeSet<&str> = state
            .shards
            .iter()
            .filter(|shard| state.reading.contains_key(&shard.id))
            .filter_map(|shard| shard.parent.as_deref())
            .collect();
        state
            .closed
            .retain(|shard, _| !parents.contains(shard.as_str()));
        if state.described.is_some()
            && let Some(watermark) = state
                .reading
                .values()
                .map(|shard| shard.read_to)
                .chain(state.closed.values().map(|at| Some(*at)))
                .min()
            && let Some(watermark) = watermark
        {
            state.watermark_millis = state.watermark_millis.max(watermark);
        }
        (round, read)
    }

    /// Reads one shard once: an iterator from where it stands (a new one after expiry; from the
    /// trim horizon, with a gap recorded, when its position was trimmed), then `GetRecords`.
    async fn read_shard(
        &self,
        state: &mut TailState,
        id: &str,
    ) -> Result<Vec<StreamRecord>, AwsError> {
        let Some(shard) = state.reading.get(id).cloned() else {
            return Ok(Vec::new());
        };
        let iterator = match shard.iterator {
            Some(iterator) => iterator,
            None => {
                let position = match &shard.start {
                    Start::TrimHorizon => Position::TrimHorizon,
                    Start::After(sequence) => Position::After(sequence.clone()),
                };
                match self.streams.iterator(&self.stream_arn, id, &position).await {
                    Ok(iterator) => iterator,
                    Err(err) if err.code.as_deref() == Some(TRIMMED_DATA) => {
                        self.trimmed(state, id);
                        return Ok(Vec::new());
                    }
                    Err(err) => return Err(err),
                }
            }
        };
        let asked = now_millis();
        let batch = match self.streams.records(id, &iterator).await {
            Ok(batch) => batch,
            Err(err) if err.code.as_deref() == Some(EXPIRED_ITERATOR) => {
                // An iterator lives 15 minutes: a new one from the last record read.
                if let Some(shard) = state.reading.get_mut(id) {
                    shard.iterator = None;
                    shard.chain_had_records = false;
                    shard.empty_pages = 0;
                }
                return Ok(Vec::new());
            }
            Err(err) if err.code.as_deref() == Some(TRIMMED_DATA) => {
                self.trimmed(state, id);
                return Ok(Vec::new());
            }
            Err(err) => return Err(err),
        };
        let records = batch.records;
        let closed = batch.next.is_none();
        let reading = state.reading.get_mut(id).expect("read above");
        reading.iterator = batch.next;
        reading.due = if records.is_empty() {
            Instant::now() + IDLE_POLL
        } else {
            Instant::now()
        };
        // At the shard's tip: a page short of the limit after records, or an empty page after
        // records on this chain (or several in a row: a fresh iterator may cross empty stretches
        // of a shard before its records). A record reaches the stream a moment after its write,
        // and its creation time is rounded down to the second: a second's margin.
        if records.is_empty() {
            reading.empty_pages += 1;
        } else {
            reading.empty_pages = 0;
        }
        let at_tip = if records.is_empty() {
            reading.chain_had_records || reading.empty_pages >= EMPTY_PAGES_AT_TIP
        } else {
            records.len() < crate::aws::streams::RECORDS_PER_CALL as usize
        };
        reading.chain_had_records |= !records.is_empty();
        if at_tip {
            reading.read_to = Some(asked - 1000);
        }
        let checkpoint = state.read.entry(id.to_string()).or_default();
        if let Some(last) = records.last() {
            checkpoint.sequence = Some(last.sequence.clone());
            reading.start = Start::After(last.sequence.clone());
        }
        if closed {
            // Read to its end: its children may start (listed at once). Until one of them is
            // being read, the watermark goes no further than this shard was read.
            checkpoint.finished = true;
            state.reading.remove(id);
            state.described = None;
            state.closed.insert(id.to_string(), asked - 1000);
        }
        Ok(records)
    }

    /// Records a gap in the journal, from the last seal until now, and logs it.
    fn gap(&self, state: &mut TailState, shard: Option<&str>, reason: String) {
        let gap = Gap {
            shard: shard.map(str::to_string),
            from_millis: state.sealed_millis,
            to_millis: now_millis(),
            reason,
        };
        telemetry::journal_gap(&self.target, &gap.reason, gap.from_millis, gap.to_millis);
        state.pending_gaps.push(gap);
    }

    /// The shard's position is older than the stream's trim horizon: the records between are
    /// gone. Recorded as a gap; the shard is read again from its trim horizon.
    fn trimmed(&self, state: &mut TailState, id: &str) {
        self.gap(
            state,
            Some(id),
            format!(
                "the checkpoint of shard {id} is older than the stream's trim horizon (24 hours): changes between are not in the journal"
            ),
        );
        if let Some(shard) = state.reading.get_mut(id) {
            shard.iterator = None;
            shard.start = Start::TrimHorizon;
            shard.chain_had_records = false;
            shard.empty_pages = 0;
        }
    }

    /// Takes the records read into the journal's pending segment and the guard's view; hands
    /// a confirmed loss (or a record written back while paused) to the guard.
    pub async fn take(&self, state: &mut TailState, records: Vec<StreamRecord>) {
        if records.is_empty() {
            return;
        }
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut suspects = BTreeSet::new();
        let mut written_back = BTreeSet::new();
        // A record older than the last complete presence pass is in it already: a backlog read
        // after a start or a failover never counts as news (a deletion since restored would
        // look like a loss until its write-back is read).
        let since = self
            .basis
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .map_or(i64::MAX, |basis| basis.read_at_millis - 1000);
        for record in &records {
            *counts.entry(record.event.as_str()).or_default() += 1;
            state.newest_millis = state.newest_millis.max(record.created_millis);
            let Some(name) = record.name() else {
                continue;
            };
            if record.created_millis < since {
                continue;
            }
            let valid = record
                .after()
                .is_some_and(|item| Record::from_item(item, 0, &self.rules).is_valid());
            state.changes.insert(
                name.to_string(),
                Change {
                    valid,
                    created_millis: record.created_millis,
                },
            );
            if valid {
                suspects.remove(name);
                state.confirmed.remove(name);
                written_back.insert(name.to_string());
            } else {
                written_back.remove(name);
                suspects.insert(name.to_string());
            }
        }
        for (event, count) in counts {
            telemetry::stream_records(&self.target, event, count);
        }
        if state.pending_since.is_none() {
            state.pending_since = Some(Instant::now());
        }
        state.pending.extend(records);
        self.act(state, suspects, written_back).await;
    }

    /// The guard's part: confirm the suspects live, then one stream step.
    async fn act(
        &self,
        state: &mut TailState,
        suspects: BTreeSet<String>,
        written_back: BTreeSet<String>,
    ) {
        let Some(basis) = self.basis_now(state) else {
            return;
        };
        let live: BTreeSet<&str> = basis.live().map(|(name, _)| name).collect();
        // Only a load balancer live in the last complete presence pass, with a valid record
        // then, is a loss the stream can see.
        let to_confirm: Vec<String> = suspects
            .into_iter()
            .filter(|name| live.contains(name.as_str()) && basis.records.contains(name))
            .collect();
        let mut confirmed_now = false;
        if !to_confirm.is_empty() {
            match self.elb.live_names(&to_confirm).await {
                Ok(still_live) => {
                    confirmed_now = !still_live.is_empty();
                    state.confirmed.extend(still_live);
                }
                Err(err) => {
                    // The cycle sees them; the stream only costs speed.
                    telemetry::stream_failed(
                        &self.target,
                        &format!("confirming load balancers live: {err}"),
                    );
                    return;
                }
            }
        }
        if !confirmed_now && written_back.is_empty() {
            return;
        }
        let mut records = basis.records.clone();
        for name in &state.confirmed {
            records.remove(name);
        }
        for (name, change) in &state.changes {
            if change.valid {
                records.insert(name.clone());
            }
        }
        let observation = Observation {
            now: now_millis() / 1000,
            live: basis
                .live()
                .map(|(name, created)| (name.to_string(), created))
                .collect(),
            records,
            state_table_gone: false,
        };
        if let Err(err) = self.guard_step(&basis, &observation, &written_back).await {
            if err.is_condition_failed() {
                tracing::info!(target_name = %self.target, "the control item changed under the stream's guard step; the cycle acts on it");
            } else {
                telemetry::stream_failed(&self.target, &format!("the guard's stream step: {err}"));
            }
        }
    }

    /// The basis, with the changes the stream saw before it was read dropped.
    fn basis_now(&self, state: &mut TailState) -> Option<Arc<Basis>> {
        let basis = self
            .basis
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()?;
        if basis.read_at_millis != state.basis_at {
            // A change in the same second as the scan may or may not be in it (creation times
            // are rounded down to the second): kept.
            let since = basis.read_at_millis - 1000;
            state
                .changes
                .retain(|_, change| change.created_millis >= since);
            let changes = &state.changes;
            state
                .confirmed
                .retain(|name| changes.get(name).is_some_and(|change| !change.valid));
            state.basis_at = basis.read_at_millis;
        }
        Some(basis)
    }

    async fn guard_step(
        &self,
        basis: &Basis,
        observation: &Observation,
        written_back: &BTreeSet<String>,
    ) -> Result<(), AwsError> {
        let store = self.store();
        let mut control = match store.load().await? {
            Loaded::Item(item) => *item,
            Loaded::NoTable => return Ok(()),
        };
        let high_water = store.load_high_water().await?;
        let enforcer = Enforcer {
            target: &self.target,
            config: &self.guard,
            store,
            autoscaling: &*self.autoscaling,
        };
        let (load_balancers, target_groups) = basis.presence();
        let view = PresenceView {
            load_balancers: &load_balancers,
            target_groups: &target_groups,
            state_table_missing: false,
        };
        let outcome = enforcer
            .after_stream(&view, observation, &mut control, high_water, written_back)
            .await?;
        if let Some(trip) = outcome.tripped {
            tracing::error!(target_name = %self.target, reason = %trip.reason(), "the stream saw the loss: paused at once");
        }
        Ok(())
    }

    /// Whether the pending records (or gaps, or a long silence) are due to be sealed.
    fn seal_due(&self, state: &TailState, requested: bool) -> bool {
        let waiting = !state.pending.is_empty() || !state.pending_gaps.is_empty();
        (waiting
            && (requested
                || state.pending.len() >= SEAL_RECORDS
                || state
                    .pending_since
                    .is_some_and(|since| since.elapsed() >= SEAL_EVERY)))
            || (state.watermark_millis > state.sealed_millis
                && state
                    .last_written
                    .is_none_or(|at| at.elapsed() >= HEARTBEAT))
    }

    /// Seals the pending records into a segment, stores it, then moves the checkpoint. A failed
    /// write keeps the records pending (and the checkpoint where it was).
    pub async fn seal(&self, state: &mut TailState) -> Result<(), AwsError> {
        // A replica that no longer holds the lease writes nothing more, not even a segment
        // (the store may not be behind the lease's gate).
        if !self.acting() {
            return Err(AwsError::not_acting(&self.target));
        }
        // Whole up to what every shard has been read to: never further because time passed.
        let to_millis = state.watermark_millis.max(state.sealed_millis);
        let positions: BTreeMap<String, String> = state
            .read
            .iter()
            .filter_map(|(shard, c)| c.sequence.clone().map(|seq| (shard.clone(), seq)))
            .collect();
        let segment = Sealed {
            from_millis: state.sealed_millis,
            to_millis,
            positions,
            gaps: state.pending_gaps.clone(),
            records: state.pending.clone(),
        };
        let records = segment.records.len();
        let newest = segment.records.iter().map(|r| r.created_millis).max();
        let location = self.journal.seal(segment).await.map_err(|err| {
            AwsError::unexpected(
                "s3",
                "PutObject",
                format!(
                    "the journal segment could not be written ({err}); its records stay pending"
                ),
            )
        })?;
        telemetry::journal_written(&self.target, &location, records, newest);
        state.pending.clear();
        state.pending_gaps.clear();
        state.pending_since = None;
        state.last_written = Some(Instant::now());
        state.sealed_millis = to_millis;
        state.journaled = lineage::retained(&state.shards, &state.read);
        let checkpoint = StreamCheckpoint {
            stream_arn: self.stream_arn.clone(),
            shards: state.journaled.clone(),
            time_millis: to_millis,
        };
        self.store().save_stream_checkpoint(&checkpoint).await?;
        self.sealed.send_replace(to_millis);
        Ok(())
    }

    /// Tails the stream until `stop` (then seals what was read) or until this replica no
    /// longer holds the lease (then it leaves what was read unsealed: the next leader reads it
    /// again from the checkpoint). `seal_now` asks for a seal (the recovery check).
    pub async fn run(self, mut stop: watch::Receiver<bool>, seal_now: Arc<tokio::sync::Notify>) {
        let mut state = loop {
            match self.start().await {
                Ok(state) => {
                    self.begun.send_replace(state.sealed_millis.max(1));
                    break state;
                }
                Err(err) if err.is_not_leader() => return,
                Err(err) => {
                    telemetry::stream_failed(&self.target, &err.to_string());
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => return,
                        _ = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                }
            }
        };
        // A seal asked for (the recovery check): whole up to this time.
        let mut wanted: Option<i64> = None;
        loop {
            if *stop.borrow() {
                if !state.pending.is_empty() || !state.pending_gaps.is_empty() {
                    let _ = self.seal(&mut state).await;
                }
                return;
            }
            let mut failed = false;
            let mut busy = false;
            if state.pending.len() >= MAX_PENDING {
                // The journal cannot be written: nothing more is read until it can (the
                // checkpoint has not moved, so nothing is lost).
                failed = true;
            } else {
                let (round, records) = self.round(&mut state).await;
                let now = now_millis();
                busy = round.records > 0;
                // What was read before a shard failed is journaled and looked at all the same.
                self.take(&mut state, records).await;
                match round.error {
                    Some(err) if err.is_not_leader() => return,
                    Some(err) => {
                        telemetry::stream_failed(&self.target, &err.to_string());
                        failed = true;
                    }
                    None => {}
                }
                if round.caught_up {
                    state.caught_up_millis = now;
                    telemetry::stream_lag(&self.target, 0.0);
                } else {
                    let behind = state.newest_millis.max(state.caught_up_millis);
                    telemetry::stream_lag(&self.target, (now - behind) as f64 / 1000.0);
                }
                // Read to the end and nothing pending: the journal is whole up to the watermark
                // without a segment written.
                if round.caught_up && state.pending.is_empty() && state.pending_gaps.is_empty() {
                    self.sealed.send_if_modified(|sealed| {
                        let moved = state.watermark_millis > *sealed;
                        *sealed = (*sealed).max(state.watermark_millis);
                        moved
                    });
                    if wanted.is_some_and(|until| state.watermark_millis >= until) {
                        wanted = None;
                    }
                }
            }
            // Sealed as soon as every shard has been read past the time asked for.
            let requested = wanted.is_some_and(|until| state.watermark_millis >= until);
            if self.seal_due(&state, requested) {
                match self.seal(&mut state).await {
                    Ok(()) => {
                        if wanted.is_some_and(|until| state.sealed_millis >= until) {
                            wanted = None;
                        }
                    }
                    Err(err) if err.is_not_leader() => return,
                    Err(err) => {
                        telemetry::stream_failed(&self.target, &err.to_string());
                        failed = true;
                    }
                }
            }
            let wait = if failed {
                RETRY_AFTER
            } else if busy {
                Duration::ZERO
            } else {
                state
                    .reading
                    .values()
                    .map(|shard| shard.due.saturating_duration_since(Instant::now()))
                    .min()
                    .unwrap_or(IDLE_POLL)
                    .max(Duration::from_millis(50))
            };
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => {}
                _ = seal_now.notified() => wanted = Some(now_millis()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// The target's journal in the snapshot store.
pub struct StoreJournal {
    pub store: Store,
    pub target: String,
    pub region: String,
    pub table: String,
    pub stream_arn: String,
}

impl JournalSink for StoreJournal {
    async fn seal(&self, segment: Sealed) -> Result<String, String> {
        let segment = Segment::new(
            &self.target,
            &self.region,
            &self.table,
            &self.stream_arn,
            segment.from_millis,
            segment.to_millis,
            segment.positions,
            segment.gaps,
            segment.records,
        );
        self.store
            .put_segment(&self.target, &segment)
            .await
            .map(|entry| entry.location)
            .map_err(|err| err.to_string())
    }

    async fn positions(&self) -> Result<BTreeMap<String, String>, String> {
        journal::journaled_positions(&self.store, &self.target)
            .await
            .map_err(|err| err.to_string())
    }
}

/// The recovery check after a complete cycle (docs/architecture.md#stream): the newest
/// snapshot taken before the scan began (not one made from this scan), with the journal replayed, must equal the scan,
/// item by item; items with a record from the scan's start on are left out (they changed
/// during it). Waits until the journal is sealed past the scan's end (asking for a seal), so
/// every such record is known. Returns the mismatches, or `None` when it could not run: the
/// journal does not reach the scan's end yet, there is no snapshot before the scan, or the
/// journal has a gap since that snapshot. Both sides are held as their items' digests
/// ([`crate::model::item::digests`]), the snapshot read an item at a time.
pub async fn recovery_check(
    store: &Store,
    target: &str,
    scan_started_millis: i64,
    scanned: &BTreeMap<String, Digests>,
    sealed: &mut watch::Receiver<i64>,
    seal_now: &tokio::sync::Notify,
) -> Option<Vec<String>> {
    let scan_ended_millis = now_millis();
    seal_now.notify_one();
    let reached = tokio::time::timeout(
        SEAL_WAIT,
        sealed.wait_for(|until| *until >= scan_ended_millis),
    )
    .await
    .is_ok_and(|answer| answer.is_ok());
    if !reached {
        tracing::debug!(
            target_name = target,
            "the journal does not reach this cycle's scan yet: the recovery check waits for the next cycle"
        );
        return None;
    }
    let skip = |why: String| {
        tracing::warn!(
            target_name = target,
            "the recovery check did not run: {why}"
        );
        None
    };
    let snapshots = match store.list(target).await {
        Ok(entries) => entries,
        Err(err) => return skip(err.to_string()),
    };
    let entry = snapshots
        .iter()
        .rev()
        .find(|entry| entry.id.unix_millis() < scan_started_millis)?;
    let snapshot_millis = entry.id.unix_millis();
    let segments = match store.list_segments(target).await {
        Ok(segments) => segments,
        Err(err) => return skip(err.to_string()),
    };
    // Whole from the snapshot to the last segment; after it, nothing was read unsealed (the
    // seal above reached the scan's end), so up to the scan there is nothing more to know.
    let last_sealed = segments.iter().map(|entry| entry.id.to_millis()).max()?;
    let wanted = journal::segments_for(&segments, snapshot_millis, i64::MAX);
    let mut records = Vec::new();
    let mut gaps = Vec::new();
    for entry in &wanted {
        match store.get_segment(entry).await {
            Ok(segment) => {
                // Only what can change the replay is held: a segment sealed while the
                // stream's backlog was read holds thousands of records, with their images.
                records.extend(
                    segment
                        .records
                        .into_iter()
                        .filter(|record| journal::may_change(record, snapshot_millis)),
                );
                gaps.extend(segment.gaps);
            }
            Err(err) => return skip(err.to_string()),
        }
    }
    let ids: Vec<_> = segments.iter().map(|entry| entry.id.clone()).collect();
    let until = scan_started_millis.min(last_sealed);
    let gaps = journal::gaps_between(&ids, &gaps, snapshot_millis, until);
    if let Some(gap) = gaps.first() {
        tracing::info!(target_name = target, gap = %journal::describe_gap(gap), "the journal has a gap since the last snapshot: no recovery check until a snapshot follows it");
        return None;
    }
    let mut snapshot = Vec::new();
    let read = store
        .get_each(entry, |held| {
            if let Some(name) = held.item.get("name").and_then(AttrValue::as_s) {
                snapshot.push((name.to_string(), digests(&held.item)));
            }
        })
        .await;
    if let Err(err) = read {
        return skip(err.to_string());
    }
    let mismatches = journal::recovery_check(
        snapshot,
        snapshot_millis,
        &records,
        scan_started_millis,
        scanned,
        &BTreeSet::new(),
    );
    Some(mismatches.iter().map(ToString::to_string).collect())
}

/// How long the recovery check waits for the journal to be sealed past the scan's start.
const SEAL_WAIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fake_aws::{FakeAws as FakeFleet, Fleet};
    use crate::aws::ErrorClass;
    use crate::aws::streams::Batch;
    use crate::control::fake::FakeAws;
    use crate::model::item::{AttrValue, Item};
    use crate::model::stream::StreamEvent;
    use crate::reconcile::guard::HighWater;

    #[test]
    fn the_basis_keeps_what_the_guard_needs_and_gives_it_back() {
        let lb = |i: usize| LiveLoadBalancer {
            arn: format!("arn:lb/{i}"),
            name: format!("lb-{i}"),
            created_time: Some(i as i64),
            fields: crate::model::node::Node::from_value(
                &serde_json::json!({"scheme": "internal"}),
            )
            .into(),
        };
        let group = |name: &str, arns: &[&str]| LiveTargetGroup {
            arn: format!("arn:tg/{name}"),
            name: name.to_string(),
            load_balancer_arns: arns.iter().map(|arn| arn.to_string()).collect(),
            fields: Default::default(),
        };
        let load_balancers = vec![lb(0), lb(1)];
        let groups = vec![
            group("both", &["arn:lb/0", "arn:lb/1"]),
            group("one", &["arn:lb/1", "arn:lb/out-of-scope"]),
            group("none", &["arn:lb/out-of-scope"]),
        ];
        let basis = Basis::of(5, &load_balancers, &groups, ["lb-0".to_string()].into());
        assert_eq!(
            basis.live().collect::<Vec<_>>(),
            vec![("lb-0", Some(0)), ("lb-1", Some(1))]
        );
        let (lbs, tgs) = basis.presence();
        assert_eq!(
            lbs.iter()
                .map(|lb| (&*lb.name, &*lb.arn))
                .collect::<Vec<_>>(),
            vec![("lb-0", "arn:lb/0"), ("lb-1", "arn:lb/1")]
        );
        assert_eq!(
            tgs.iter()
                .map(|tg| (&*tg.name, tg.load_balancer_arns.clone()))
                .collect::<Vec<_>>(),
            vec![
                ("both", vec!["arn:lb/0".to_string(), "arn:lb/1".to_string()]),
                ("one", vec!["arn:lb/1".to_string()]),
            ]
        );
        // The guard's scope of a loss is the same from the basis as from the presence pass.
        let affected = ["lb-1".to_string()].into();
        let from_presence = crate::control::enforce::scope(
            &PresenceView {
                load_balancers: &load_balancers,
                target_groups: &groups,
                state_table_missing: false,
            },
            &affected,
        );
        let from_basis = crate::control::enforce::scope(
            &PresenceView {
                load_balancers: &lbs,
                target_groups: &tgs,
                state_table_missing: false,
            },
            &affected,
        );
        assert_eq!(
            (
                from_basis.affected_target_groups,
                from_basis.all_target_groups
            ),
            (
                from_presence.affected_target_groups,
                from_presence.all_target_groups
            )
        );
    }

    const CONTROL: &str = "control";
    const STREAM: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/lb-state/stream/1";

    /// A stream in memory: its shards, each shard's records, and errors to answer next.
    #[derive(Default)]
    struct FakeStreams {
        state: Mutex<StreamsState>,
    }

    #[derive(Default)]
    struct StreamsState {
        shards: Vec<Shard>,
        records: BTreeMap<String, Vec<StreamRecord>>,
        /// Iterator -> (shard, index of the next record).
        iterators: HashMap<String, (String, usize)>,
        /// The first record each shard still holds (trimmed before it).
        horizon: BTreeMap<String, usize>,
        /// The next calls of an operation answer this error code.
        faults: Vec<(&'static str, &'static str)>,
        /// `GetRecords` of this shard fails.
        failing_shard: Option<String>,
        calls: Vec<&'static str>,
    }

    fn code_error(operation: &'static str, code: &str) -> AwsError {
        AwsError {
            service: "dynamodb",
            operation,
            class: if code == "LimitExceededException" {
                ErrorClass::Throttled
            } else {
                ErrorClass::Service
            },
            code: Some(code.to_string()),
            message: format!("{code} from the fake"),
        }
    }

    impl FakeStreams {
        fn with(self, shard: &str, parent: Option<&str>, closed: bool) -> Self {
            self.state.lock().unwrap().shards.push(Shard {
                id: shard.into(),
                parent: parent.map(str::to_string),
                starting_sequence: None,
                ending_sequence: closed.then(|| "0".to_string()),
            });
            self
        }

        /// Appends a record of `event` for `name` to `shard`; `valid`: its new image is a
        /// whole record.
        fn write(&self, shard: &str, event: StreamEvent, name: &str) {
            let mut state = self.state.lock().unwrap();
            let count: usize = state.records.values().map(Vec::len).sum();
            let record = record(shard, 1000 + count as u64, event, name);
            state.records.entry(shard.into()).or_default().push(record);
        }

        fn fail_next(&self, operation: &'static str, code: &'static str) {
            self.state.lock().unwrap().faults.push((operation, code));
        }

        fn trim(&self, shard: &str, before: usize) {
            self.state
                .lock()
                .unwrap()
                .horizon
                .insert(shard.into(), before);
        }

        fn fault(&self, operation: &'static str) -> Option<AwsError> {
            let mut state = self.state.lock().unwrap();
            state.calls.push(operation);
            let at = state.faults.iter().position(|(op, _)| *op == operation)?;
            let (_, code) = state.faults.remove(at);
            Some(code_error(operation, code))
        }
    }

    impl StreamReads for FakeStreams {
        async fn shards(&self, _arn: &str) -> Result<Vec<Shard>, AwsError> {
            if let Some(err) = self.fault("DescribeStream") {
                return Err(err);
            }
            Ok(self.state.lock().unwrap().shards.clone())
        }

        async fn iterator(
            &self,
            _arn: &str,
            shard: &str,
            position: &Position,
        ) -> Result<String, AwsError> {
            if let Some(err) = self.fault("GetShardIterator") {
                return Err(err);
            }
            let mut state = self.state.lock().unwrap();
            let horizon = state.horizon.get(shard).copied().unwrap_or(0);
            let records = state.records.get(shard).cloned().unwrap_or_default();
            let index = match position {
                Position::TrimHorizon => horizon,
                Position::After(sequence) => {
                    let at = records
                        .iter()
                        .position(|r| &r.sequence == sequence)
                        .map(|i| i + 1)
                        .unwrap_or(0);
                    if at < horizon {
                        return Err(code_error("GetShardIterator", TRIMMED_DATA));
                    }
                    at
                }
            };
            let id = format!("it-{}", state.iterators.len());
            state.iterators.insert(id.clone(), (shard.into(), index));
            Ok(id)
        }

        async fn records(&self, shard: &str, iterator: &str) -> Result<Batch, AwsError> {
            if let Some(err) = self.fault("GetRecords") {
                return Err(err);
            }
            if self.state.lock().unwrap().failing_shard.as_deref() == Some(shard) {
                return Err(code_error("GetRecords", "InternalServerError"));
            }
            let mut state = self.state.lock().unwrap();
            let (_, index) = state.iterators[iterator].clone();
            let all = state.records.get(shard).cloned().unwrap_or_default();
            let records: Vec<StreamRecord> = all.iter().skip(index).take(2).cloned().collect();
            let next_index = index + records.len();
            let closed = state
                .shards
                .iter()
                .any(|s| s.id == shard && s.ending_sequence.is_some());
            let next = if closed && next_index >= all.len() {
                None
            } else {
                let id = format!("it-{}", state.iterators.len());
                state
                    .iterators
                    .insert(id.clone(), (shard.into(), next_index));
                Some(id)
            };
            Ok(Batch { records, next })
        }
    }

    /// The journal in memory.
    #[derive(Default)]
    struct Journal(Mutex<Vec<Sealed>>);

    impl JournalSink for Journal {
        async fn seal(&self, segment: Sealed) -> Result<String, String> {
            let mut segments = self.0.lock().unwrap();
            segments.push(segment);
            Ok(format!("segment-{}", segments.len()))
        }

        async fn positions(&self) -> Result<BTreeMap<String, String>, String> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .last()
                .map(|s| s.positions.clone())
                .unwrap_or_default())
        }
    }

    impl Journal {
        fn sequences(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .flat_map(|s| s.records.iter().map(|r| r.sequence.clone()))
                .collect()
        }

        fn gaps(&self) -> Vec<Gap> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .flat_map(|s| s.gaps.clone())
                .collect()
        }
    }

    fn image(name: &str) -> Item {
        [
            ("name".to_string(), AttrValue::S(name.into())),
            ("version".to_string(), AttrValue::N("1".into())),
            (
                "config".to_string(),
                AttrValue::M([("type".to_string(), AttrValue::S("application".into()))].into()),
            ),
        ]
        .into()
    }

    fn record(shard: &str, sequence: u64, event: StreamEvent, name: &str) -> StreamRecord {
        let keys: Item = [("name".to_string(), AttrValue::S(name.into()))].into();
        StreamRecord {
            shard: shard.into(),
            sequence: sequence.to_string(),
            event,
            created_millis: now_millis(),
            keys,
            old_image: (event != StreamEvent::Insert).then(|| image(name)),
            new_image: (event != StreamEvent::Remove).then(|| image(name)),
        }
    }

    struct Setup {
        streams: FakeStreams,
        journal: Journal,
        control: Arc<FakeAws>,
        fleet: FakeFleet,
        basis: SharedBasis,
    }

    impl Setup {
        fn new(streams: FakeStreams, load_balancers: usize) -> Setup {
            let fleet = FakeFleet::new(Fleet::new().load_balancers(load_balancers, 1).recorded());
            Setup {
                streams,
                journal: Journal::default(),
                control: Arc::new(FakeAws::new().with_table(CONTROL, "target")),
                fleet,
                basis: SharedBasis::default(),
            }
        }

        fn tailer(
            &self,
        ) -> Tailer<&FakeStreams, crate::app::fake_aws::FakeElb, &Journal, FakeAws, FakeAws>
        {
            Tailer {
                target: "prod".into(),
                stream_arn: STREAM.into(),
                streams: &self.streams,
                elb: self.fleet.reader(1).elb,
                journal: &self.journal,
                control: self.control.clone(),
                control_table: CONTROL.into(),
                lease: None,
                autoscaling: self.control.clone(),
                guard: GuardConfig::default(),
                rules: RecordRules::default(),
                basis: self.basis.clone(),
                sealed: watch::channel(0).0,
                begun: watch::channel(0).0,
            }
        }

        /// The last complete cycle saw every load balancer of the fleet with its record, and
        /// the high-water mark holds them all.
        async fn cycle_saw_everything(&self) {
            let (load_balancers, target_groups) = self.fleet_presence().await;
            let names: BTreeSet<String> = load_balancers.iter().map(|lb| lb.name.clone()).collect();
            *self.basis.lock().unwrap() = Some(Arc::new(Basis::of(
                now_millis() - 5000,
                &load_balancers,
                &target_groups,
                names.clone(),
            )));
            let store = ControlStore {
                dynamodb: &*self.control,
                table: CONTROL,
                target: "prod",
                lease: None,
            };
            store
                .save_high_water(&HighWater {
                    time: now_millis() / 1000 - 5,
                    names,
                })
                .await
                .unwrap();
        }

        async fn fleet_presence(&self) -> (Vec<LiveLoadBalancer>, Vec<LiveTargetGroup>) {
            let reader = self.fleet.reader(1);
            (
                reader.elb.load_balancers().await.unwrap(),
                reader.elb.target_groups().await.unwrap(),
            )
        }

        fn paused(&self) -> bool {
            self.control
                .data(|data| data.control(CONTROL, "prod"))
                .is_some_and(|control| control.paused)
        }
    }

    impl StreamReads for &FakeStreams {
        fn shards(&self, arn: &str) -> impl Future<Output = Result<Vec<Shard>, AwsError>> + Send {
            (**self).shards(arn)
        }
        fn iterator(
            &self,
            arn: &str,
            shard: &str,
            position: &Position,
        ) -> impl Future<Output = Result<String, AwsError>> + Send {
            (**self).iterator(arn, shard, position)
        }
        fn records(
            &self,
            shard: &str,
            iterator: &str,
        ) -> impl Future<Output = Result<Batch, AwsError>> + Send {
            (**self).records(shard, iterator)
        }
    }

    impl JournalSink for &Journal {
        fn seal(&self, segment: Sealed) -> impl Future<Output = Result<String, String>> + Send {
            (**self).seal(segment)
        }
        fn positions(
            &self,
        ) -> impl Future<Output = Result<BTreeMap<String, String>, String>> + Send {
            (**self).positions()
        }
    }

    /// Reads until a round reads nothing, then seals.
    async fn drain<S: StreamReads, E: ElbReads, J: JournalSink>(
        tailer: &Tailer<S, E, J, FakeAws, FakeAws>,
        state: &mut TailState,
    ) {
        for _ in 0..50 {
            // Every shard due at once, as if a second had passed.
            for shard in state.reading.values_mut() {
                shard.due = Instant::now();
            }
            let (round, records) = tailer.round(state).await;
            assert!(round.error.is_none(), "{:?}", round.error);
            tailer.take(state, records).await;
            if round.caught_up
                && round.records == 0
                && state.reading.values().all(|s| s.iterator.is_some())
            {
                break;
            }
        }
        tailer.seal(state).await.unwrap();
    }

    #[tokio::test]
    async fn a_split_is_read_parent_first_and_every_record_journaled_once() {
        let streams = FakeStreams::default()
            .with("child-b", Some("parent"), false)
            .with("parent", None, true)
            .with("child-a", Some("parent"), false);
        streams.write("parent", StreamEvent::Insert, "lb-0");
        streams.write("parent", StreamEvent::Modify, "lb-0");
        streams.write("parent", StreamEvent::Modify, "lb-1");
        streams.write("child-a", StreamEvent::Modify, "lb-0");
        streams.write("child-b", StreamEvent::Insert, "lb-2");
        let setup = Setup::new(streams, 3);
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        drain(&tailer, &mut state).await;
        // The parent's records first; then each child's, in its own order.
        let sequences = setup.journal.sequences();
        assert_eq!(sequences[..3], ["1000", "1001", "1002"]);
        let mut children = sequences[3..].to_vec();
        children.sort();
        assert_eq!(children, ["1003", "1004"]);
        let store = tailer.store();
        let checkpoint = store.load_stream_checkpoint().await.unwrap().unwrap();
        assert!(checkpoint.shards["parent"].finished);
        assert_eq!(
            checkpoint.shards["child-a"].sequence.as_deref(),
            Some("1003")
        );
        // Read again from the checkpoint: nothing twice.
        let mut again = tailer.start().await.unwrap();
        drain(&tailer, &mut again).await;
        assert_eq!(setup.journal.sequences().len(), 5);
    }

    #[tokio::test]
    async fn an_expired_iterator_is_renewed_from_the_last_record_read() {
        let streams = FakeStreams::default().with("s", None, false);
        for i in 0..5 {
            streams.write("s", StreamEvent::Modify, &format!("lb-{i:03}"));
        }
        streams.fail_next("GetRecords", EXPIRED_ITERATOR);
        let setup = Setup::new(streams, 5);
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        // The second read answers that its iterator expired.
        let (round, first) = tailer.round(&mut state).await;
        assert!(round.error.is_none());
        assert!(first.is_empty());
        tailer.take(&mut state, first).await;
        drain(&tailer, &mut state).await;
        assert_eq!(
            setup.journal.sequences(),
            vec!["1000", "1001", "1002", "1003", "1004"]
        );
        assert!(setup.journal.gaps().is_empty());
    }

    #[tokio::test]
    async fn a_checkpoint_older_than_the_trim_horizon_is_a_recorded_gap() {
        let streams = FakeStreams::default().with("s", None, false);
        for i in 0..4 {
            streams.write("s", StreamEvent::Modify, &format!("lb-{i:03}"));
        }
        let setup = Setup::new(streams, 4);
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        drain(&tailer, &mut state).await;
        // Down for a day: two more records, and the stream trimmed past the checkpoint.
        setup.streams.write("s", StreamEvent::Modify, "lb-0");
        setup.streams.write("s", StreamEvent::Modify, "lb-1");
        setup.streams.trim("s", 5);
        let mut later = tailer.start().await.unwrap();
        drain(&tailer, &mut later).await;
        let gaps = setup.journal.gaps();
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].shard.as_deref(), Some("s"));
        assert!(
            gaps[0].reason.contains("trim horizon"),
            "{}",
            gaps[0].reason
        );
        // Read on from the trim horizon: the record still held is journaled.
        assert_eq!(
            setup.journal.sequences().last().map(String::as_str),
            Some("1005")
        );
    }

    #[tokio::test]
    async fn records_journaled_but_not_checkpointed_are_not_journaled_again() {
        let streams = FakeStreams::default().with("s", None, false);
        for i in 0..3 {
            streams.write("s", StreamEvent::Modify, &format!("lb-{i:03}"));
        }
        let setup = Setup::new(streams, 3);
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        drain(&tailer, &mut state).await;
        // The replica died after its segment was written, before the checkpoint moved.
        let store = tailer.store();
        let mut checkpoint = store.load_stream_checkpoint().await.unwrap().unwrap();
        checkpoint.shards.get_mut("s").unwrap().sequence = Some("1000".into());
        store.save_stream_checkpoint(&checkpoint).await.unwrap();
        setup.streams.write("s", StreamEvent::Modify, "lb-0");
        let mut next_leader = tailer.start().await.unwrap();
        drain(&tailer, &mut next_leader).await;
        assert_eq!(
            setup.journal.sequences(),
            vec!["1000", "1001", "1002", "1003"]
        );
    }

    #[tokio::test]
    async fn removals_of_live_load_balancers_trip_a_mass_loss_at_once() {
        let streams = FakeStreams::default().with("s", None, false);
        let setup = Setup::new(streams, 10);
        setup.cycle_saw_everything().await;
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        drain(&tailer, &mut state).await;
        assert!(!setup.paused());
        for i in 0..3 {
            setup
                .streams
                .write("s", StreamEvent::Remove, &format!("lb-{i:03}"));
        }
        drain(&tailer, &mut state).await;
        assert!(setup.paused(), "3 of 10 records removed: a mass loss");
        // Tripped as soon as a fifth were gone (the fake answers two records a call).
        let control = setup.control.data(|d| d.control(CONTROL, "prod")).unwrap();
        assert_eq!(control.missing, ["lb-000", "lb-001"]);
        assert!(
            control
                .reason
                .unwrap()
                .starts_with("mass loss: 2 of the 10")
        );
    }

    #[tokio::test]
    async fn removals_of_load_balancers_deleted_too_trip_nothing() {
        let streams = FakeStreams::default().with("s", None, false);
        let setup = Setup::new(streams, 10);
        setup.cycle_saw_everything().await;
        // Decommissioned: the load balancers go with their records.
        setup.fleet.change(|fleet| {
            fleet
                .load_balancers
                .retain(|lb| lb.name.as_str() >= "lb-003")
        });
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        for i in 0..3 {
            setup
                .streams
                .write("s", StreamEvent::Remove, &format!("lb-{i:03}"));
        }
        drain(&tailer, &mut state).await;
        assert!(!setup.paused());
    }

    #[tokio::test]
    async fn a_stream_that_cannot_be_read_trips_nothing_and_a_record_written_back_is_not_lost() {
        let streams = FakeStreams::default().with("s", None, false);
        let setup = Setup::new(streams, 10);
        setup.cycle_saw_everything().await;
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        for i in 0..3 {
            setup
                .streams
                .write("s", StreamEvent::Remove, &format!("lb-{i:03}"));
            setup
                .streams
                .write("s", StreamEvent::Insert, &format!("lb-{i:03}"));
        }
        setup
            .streams
            .fail_next("GetRecords", "AccessDeniedException");
        let (round, records) = tailer.round(&mut state).await;
        assert!(round.error.is_some() && records.is_empty());
        assert!(!setup.paused());
        drain(&tailer, &mut state).await;
        // Each record was written back right after: nothing is missing.
        assert!(!setup.paused());
        assert_eq!(setup.journal.sequences().len(), 6);
    }

    #[tokio::test]
    async fn records_read_before_a_shard_fails_are_kept_and_the_journal_claims_no_more_than_was_read()
     {
        let streams = FakeStreams::default()
            .with("a", None, false)
            .with("b", None, false);
        streams.write("a", StreamEvent::Modify, "lb-000");
        streams.write("b", StreamEvent::Modify, "lb-001");
        streams.state.lock().unwrap().failing_shard = Some("b".into());
        let setup = Setup::new(streams, 2);
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        let sealed_at_start = state.sealed_millis;
        // Shard a answers, shard b is refused: a's record comes back with the error.
        let (round, records) = tailer.round(&mut state).await;
        assert!(round.error.is_some());
        assert_eq!(records.len(), 1);
        tailer.take(&mut state, records).await;
        tailer.seal(&mut state).await.unwrap();
        assert_eq!(setup.journal.sequences(), vec!["1000"]);
        // b was never read to its end: the seal claims nothing past where the journal began.
        let last = setup.journal.0.lock().unwrap().last().unwrap().clone();
        assert_eq!(last.to_millis, sealed_at_start);
        // Once b answers, its record follows; nothing of a's is journaled twice.
        setup.streams.state.lock().unwrap().failing_shard = None;
        // Read to the end a second after the start (the margin for a record's arrival).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        drain(&tailer, &mut state).await;
        let mut sequences = setup.journal.sequences();
        sequences.sort();
        assert_eq!(sequences, vec!["1000", "1001"]);
        let last = setup.journal.0.lock().unwrap().last().unwrap().clone();
        assert!(last.to_millis > sealed_at_start);
    }

    #[tokio::test]
    async fn a_backlog_older_than_the_last_cycle_is_journaled_but_never_counted_as_a_loss() {
        let streams = FakeStreams::default().with("s", None, false);
        // Removed, then written back, both before the last complete cycle.
        for i in 0..3 {
            streams.write("s", StreamEvent::Remove, &format!("lb-{i:03}"));
        }
        {
            let mut state = streams.state.lock().unwrap();
            for record in state.records.get_mut("s").unwrap() {
                record.created_millis -= 60_000;
            }
        }
        let setup = Setup::new(streams, 10);
        setup.cycle_saw_everything().await;
        let tailer = setup.tailer();
        let mut state = tailer.start().await.unwrap();
        drain(&tailer, &mut state).await;
        assert!(
            !setup.paused(),
            "a backlog from before the cycle is not news"
        );
        assert_eq!(setup.journal.sequences().len(), 3);
    }
}
