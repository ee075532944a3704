//! The recovery commands: `snapshots`, `restore`, `adopt` (docs/architecture.md#commands, docs/architecture.md#snapshots), and the daemon's
//! snapshot step.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::app::commands::{CommandError, Printed, actor};
use crate::app::cycle::PresencePhase;
use crate::app::reader::{DeepOutcome, DeepPlan, Items, Reader, ScannedItem};
use crate::aws::Clients;
use crate::control::{ControlItem, ControlStore, Event};
use crate::model::clock::rfc3339_millis;
use crate::model::item::{AttrValue, Item, StoredItem, from_json};
use crate::model::live::{self, TargetGroupIndex};
use crate::model::record::RecordCache;
use crate::model::stream::{StreamEvent, StreamRecord};
use crate::reconcile::report::exit;
use crate::recovery::journal::{self, SegmentId};
use crate::recovery::restore::{
    self, Plan, PlannedWrite, RestoreOptions, WriteCondition, plan_restore,
};
use crate::recovery::snapshot::{Entry, Snapshot, SnapshotItem, Store, content_hash_of, to_prune};
use crate::runtime::config::{Config, TargetConfig};
use crate::runtime::telemetry;

/// The snapshot store the config names.
pub fn store(config: &Config, clients: &Clients) -> Store {
    match &config.snapshots.s3 {
        Some(s3) => Store::S3 {
            client: clients.s3.clone(),
            bucket: s3.bucket.clone(),
            prefix: s3.prefix.clone(),
        },
        None => Store::Local {
            dir: config.snapshots.dir.clone(),
        },
    }
}

/// The scanned items back as trees, for a restore or adopt plan; an error if one cannot be
/// read back.
fn items_of(scanned: &[ScannedItem]) -> Result<Vec<Item>, CommandError> {
    scanned
        .iter()
        .map(|(record, stored)| match stored {
            Some(stored) => stored.item().map_err(|err| err.to_string()),
            None => Err(format!("item {} was not kept by the scan", record.name)),
        })
        .collect::<Result<Vec<Item>, String>>()
        .map_err(|err| {
            CommandError::error(format!(
                "an item of the state table could not be read back ({err}); nothing was written. Try again."
            ))
        })
}

/// The items of a complete presence pass in snapshot order (by name), each with the ARN of the
/// live load balancer of that name.
fn snapshot_order(presence: &PresencePhase) -> Vec<(&StoredItem, Option<&str>)> {
    let arns: BTreeMap<&str, &str> = presence
        .load_balancers
        .iter()
        .map(|lb| (lb.name.as_str(), lb.arn.as_str()))
        .collect();
    let mut items: Vec<(&StoredItem, Option<&str>)> = presence
        .items
        .iter()
        .map(|item| (item, arns.get(item.name()).copied()))
        .collect();
    // Stable, as `Snapshot::new` sorts.
    items.sort_by(|a, b| a.0.name().cmp(b.0.name()));
    items
}

/// The content hash a snapshot of this presence pass would have, without building it.
pub fn presence_hash(presence: &PresencePhase) -> String {
    content_hash_of(
        snapshot_order(presence)
            .into_iter()
            .map(|(item, arn)| (item.json(), arn)),
    )
}

/// The daemon's snapshot step after a complete cycle: writes a snapshot when the recorded state
/// differs from the last one, and prunes by age and count, never while a record is missing.
/// `last` is the content hash of the last snapshot, read from the store on first use.
/// `scanned_millis`: when the scan began. The snapshot is named by that time, not when it is
/// written: a change after the scan began may or may not be in it, so a replay of the journal
/// onto it starts there (docs/recovery.md#journal).
pub async fn snapshot_step(
    config: &Config,
    target: &TargetConfig,
    store: &Store,
    presence: &PresencePhase,
    last: &mut Option<String>,
    scanned_millis: i64,
) -> Result<Option<Entry>, crate::recovery::snapshot::SnapshotError> {
    if last.is_none() {
        let entries = store.list(&target.name).await?;
        *last = Some(
            entries
                .last()
                .map(|e| e.id.hash.clone())
                .unwrap_or_default(),
        );
    }
    let millis = scanned_millis;
    // An unchanged state is recognised from the held JSON; only a changed one is rebuilt.
    if last.as_deref() == Some(presence_hash(presence).as_str()) {
        return Ok(None);
    }
    // Written from the held JSON: rebuilding every item as a tree to serialize it again would
    // take several times the table's size in memory.
    let held: Vec<(&str, Option<&str>)> = snapshot_order(presence)
        .into_iter()
        .map(|(item, arn)| (item.json(), arn))
        .collect();
    let (id, bytes) = Snapshot::encode_held(
        &target.name,
        &target.region,
        &target.state_table,
        &held,
        millis,
        // Written once the scan is over: it may hold changes up to now, not later.
        Some(crate::model::clock::now_millis()),
    );
    drop(held);
    let entry = store.put_encoded(&target.name, id, bytes).await?;
    *last = Some(entry.id.hash.clone());
    telemetry::snapshot_written(
        &target.name,
        &entry.location,
        entry.id.records,
        entry.bytes,
        millis,
    );

    // Nothing is pruned while any live load balancer has no valid record, in its grace period
    // or not: a snapshot may be all that holds it.
    let observation = presence.observation(crate::model::clock::now_unix());
    let any_missing = observation
        .live
        .keys()
        .any(|name| crate::reconcile::guard::without_valid_record(&observation, name));
    if !any_missing {
        let entries = store.list(&target.name).await?;
        let prune = to_prune(
            &entries,
            millis,
            config.snapshots.retention.as_millis() as i64,
            config.snapshots.keep as usize,
        );
        for old in &prune {
            store.delete(old).await?;
            tracing::info!(target_name = %target.name, location = %old.location, "snapshot pruned");
        }
        let oldest_kept = entries
            .iter()
            .filter(|entry| !prune.contains(entry))
            .map(|entry| entry.id.unix_millis())
            .min();
        if let Err(err) = prune_journal(store, &target.name, oldest_kept).await {
            tracing::warn!(target_name = %target.name, kind = err.kind(), "pruning the journal: {err}");
        }
    }
    Ok(Some(entry))
}

/// Deletes the journal's segments that ended before the oldest snapshot kept: they are kept
/// as long as the snapshots they follow, and all of them while there is no snapshot.
async fn prune_journal(
    store: &Store,
    target: &str,
    oldest_kept_snapshot_millis: Option<i64>,
) -> Result<(), journal::JournalError> {
    let segments = store.list_segments(target).await?;
    for old in journal::segments_to_prune(&segments, oldest_kept_snapshot_millis) {
        store.delete_segment(&old).await?;
        tracing::info!(target_name = %target, location = %old.location, "journal segment pruned");
    }
    Ok(())
}

/// One snapshot in `lbrecon snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub target: String,
    pub id: String,
    pub time: String,
    pub records: usize,
    pub bytes: u64,
    pub location: String,
}

impl Listed {
    fn of(target: &str, entry: Entry) -> Self {
        Listed {
            target: target.to_string(),
            id: entry.id.as_string(),
            time: entry.id.rfc3339(),
            records: entry.id.records,
            bytes: entry.bytes,
            location: entry.location,
        }
    }
}

/// What `lbrecon snapshots` lists: every snapshot of the targets asked for, target by target,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotList {
    pub snapshots: Vec<Listed>,
    /// `--format json`, else the table.
    pub json: bool,
}

impl SnapshotList {
    /// `{"snapshots": [...]}`, pretty-printed, with a newline.
    pub fn to_json(&self) -> String {
        let doc = serde_json::json!({ "snapshots": self.snapshots });
        format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serializes")
        )
    }

    /// The table for people; `no snapshots` when there are none.
    pub fn to_table(&self) -> String {
        if self.snapshots.is_empty() {
            return "no snapshots\n".to_string();
        }
        let mut out = format!(
            "{:<12} {:<40} {:<25} {:>8} {:>10}  LOCATION\n",
            "TARGET", "ID", "TIME", "RECORDS", "BYTES"
        );
        for l in &self.snapshots {
            out.push_str(&format!(
                "{:<12} {:<40} {:<25} {:>8} {:>10}  {}\n",
                l.target, l.id, l.time, l.records, l.bytes, l.location
            ));
        }
        out
    }
}

impl Printed for SnapshotList {
    fn stdout(&self) -> String {
        if self.json {
            self.to_json()
        } else {
            self.to_table()
        }
    }
    fn exit_code(&self) -> i32 {
        exit::OK
    }
}

/// `lbrecon snapshots [--target T] [--format table|json]`.
pub async fn snapshots(
    config: &Config,
    only: Option<&str>,
    json: bool,
) -> Result<SnapshotList, CommandError> {
    let mut snapshots = Vec::new();
    for target in config
        .targets
        .iter()
        .filter(|t| only.is_none_or(|n| t.name == n))
    {
        let clients = Clients::connect(
            target,
            &config.aws,
            &crate::runtime::budget::Budgets::default(),
        )
        .await;
        let entries = store(config, &clients)
            .list(&target.name)
            .await
            .map_err(|err| listing_failed(&target.name, err))?;
        snapshots.extend(entries.into_iter().map(|e| Listed::of(&target.name, e)));
    }
    Ok(SnapshotList { snapshots, json })
}

fn listing_failed(target: &str, err: crate::recovery::snapshot::SnapshotError) -> CommandError {
    CommandError::error(format!("listing snapshots of {target}: {err}"))
}

/// Which snapshot `restore` uses.
#[derive(Debug, Clone)]
pub enum Pick {
    /// The newest at or before this time (RFC 3339).
    At(String),
    Id(String),
}

/// The snapshot `pick` names among a target's `entries` (oldest first): a usage error for a
/// time that is not RFC 3339, an error when none matches.
pub fn choose<'a>(
    target: &str,
    entries: &'a [Entry],
    pick: &Pick,
) -> Result<&'a Entry, CommandError> {
    let entry = match pick {
        Pick::Id(id) => entries.iter().find(|e| e.id.as_string() == *id),
        Pick::At(at) => {
            let at_millis = at_millis(at)?;
            entries
                .iter()
                .rev()
                .find(|e| e.id.unix_millis() <= at_millis)
        }
    };
    entry.ok_or_else(|| {
        let oldest = entries
            .first()
            .map(|e| e.id.rfc3339())
            .unwrap_or_else(|| "none".into());
        CommandError::error(format!(
            "no snapshot of {target} matches {pick:?} ({} snapshots; the oldest is {oldest}); `lbrecon snapshots --target {target}` lists them",
            entries.len(),
        ))
    })
}

/// The time `--at` names, Unix milliseconds; a usage error when it is not RFC 3339.
pub fn at_millis(at: &str) -> Result<i64, CommandError> {
    crate::model::clock::parse_rfc3339_millis(at).ok_or_else(|| {
        CommandError::usage(format!(
            "--at {at:?} is not an RFC 3339 time such as 2026-12-24T20:24:00Z"
        ))
    })
}

/// Where the records of a plan come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `restore`: a snapshot, with its time and how many records it holds, and what of the
    /// journal was applied to it (`None`: the snapshot as it is).
    Snapshot {
        id: String,
        time: String,
        records: usize,
        journal: Option<JournalUse>,
    },
    /// `adopt`: live state.
    Live,
}

/// What `restore --at` took from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalUse {
    /// The journal's records after the snapshot, up to the instant, were applied.
    Applied {
        /// Records applied.
        records: usize,
        /// Segments read.
        segments: usize,
        /// The instant, RFC 3339.
        until: String,
    },
    /// The journal has gaps between the snapshot and the instant, accepted with
    /// `--allow-gap`: the snapshot alone is restored.
    GapAccepted {
        until: String,
        /// Each gap in words.
        gaps: Vec<String>,
    },
}

/// What `restore` or `adopt` will write, shown before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    pub target: String,
    pub source: Source,
    pub plan: Plan,
    /// `adopt`: reading a load balancer failed; the command exits 1 whatever it writes.
    pub read_failed: bool,
}

impl WritePlan {
    /// The command that writes: `restore` or `adopt`.
    pub fn action(&self) -> &'static str {
        match self.source {
            Source::Snapshot { .. } => "restore",
            Source::Live => "adopt",
        }
    }

    /// The attribute a written item is annotated with.
    fn attribute(&self) -> &'static str {
        match self.source {
            Source::Snapshot { .. } => "lbrecon_restored",
            Source::Live => "lbrecon_adopted",
        }
    }

    /// The key and value of the source in the approval written with each item.
    fn source_of(&self) -> (&'static str, &str) {
        match &self.source {
            Source::Snapshot { id, .. } => ("snapshot", id),
            Source::Live => ("source", "live state"),
        }
    }

    /// The plan for people: a header, then the plan, a large one summarized.
    pub fn to_text(&self) -> String {
        let mut out = match &self.source {
            Source::Snapshot {
                id,
                time,
                records,
                journal,
            } => {
                let mut header = format!(
                    "restore of target {} from snapshot {id} ({time}, {records} records)",
                    self.target
                );
                match journal {
                    None => header.push('\n'),
                    Some(JournalUse::Applied {
                        records,
                        segments,
                        until,
                    }) => header.push_str(&format!(
                        " and the journal up to {until}: {records} record(s) applied from {segments} segment(s)\n"
                    )),
                    Some(JournalUse::GapAccepted { until, gaps }) => {
                        header.push_str(&format!(
                            " alone: the journal has gaps between the snapshot and {until}, accepted with --allow-gap\n"
                        ));
                        for gap in gaps {
                            header.push_str(&format!("  gap: {gap}\n"));
                        }
                    }
                }
                header
            }
            Source::Live => format!("adopt for target {}\n", self.target),
        };
        out.push_str(&plan_text(&self.plan));
        out
    }
}

/// A plan's lines: the first lines of each kind, then a count.
fn plan_text(plan: &Plan) -> String {
    let mut out = format!(
        "plan: {} to write, {} skipped, {} present and left as they are\n",
        plan.writes.len(),
        plan.skipped.len(),
        plan.unchanged
    );
    const SHOWN: usize = 25;
    for write in plan.writes.iter().take(SHOWN) {
        out.push_str(&match &write.replaces_invalid {
            Some(reason) => format!(
                "  {:<10} {}: over the table's invalid record ({reason})\n",
                write.action, write.name
            ),
            None => format!("  {:<10} {}\n", write.action, write.name),
        });
    }
    if plan.writes.len() > SHOWN {
        out.push_str(&format!(
            "  ... and {} more to write\n",
            plan.writes.len() - SHOWN
        ));
    }
    for skipped in plan.skipped.iter().take(SHOWN) {
        out.push_str(&format!(
            "  {:<10} {}: {}\n",
            "skip", skipped.name, skipped.reason
        ));
    }
    if plan.skipped.len() > SHOWN {
        out.push_str(&format!(
            "  ... and {} more skipped\n",
            plan.skipped.len() - SHOWN
        ));
    }
    out
}

/// A plan read and made, with the clients that carry it out: show [`Pending::plan`], then
/// [`Pending::apply`] it.
pub struct Pending {
    clients: Clients,
    pub plan: WritePlan,
}

/// What applying a plan did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// No `--approve`, or `--dry-run`: nothing written.
    DryRun,
    /// Approved, but the plan writes nothing.
    NothingToWrite,
    Wrote {
        written: restore::Written,
        seconds: f64,
    },
}

/// How `restore` or `adopt` ended, after its plan was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    pub applied: Applied,
    /// `adopt`: reading a load balancer failed.
    pub read_failed: bool,
}

impl Printed for WriteOutcome {
    fn stdout(&self) -> String {
        match &self.applied {
            Applied::DryRun => {
                "dry run: nothing written (writing needs --approve TICKET)\n".to_string()
            }
            Applied::NothingToWrite => "nothing to write\n".to_string(),
            Applied::Wrote { written, seconds } => {
                let mut out = format!(
                    "wrote {} record(s) in {seconds:.2} s ({} TransactWriteItems calls)\n",
                    written.written.len(),
                    written.calls
                );
                for name in &written.lost_race {
                    out.push_str(&format!(
                        "  {name}: written by someone else meanwhile; theirs stands\n"
                    ));
                }
                for (name, error) in written.failed.iter().take(25) {
                    out.push_str(&format!("  {name}: FAILED: {error}\n"));
                }
                if written.failed.len() > 25 {
                    out.push_str(&format!(
                        "  ... and {} more failed\n",
                        written.failed.len() - 25
                    ));
                }
                out
            }
        }
    }

    /// 1 when a read or a write failed, else 0.
    fn exit_code(&self) -> i32 {
        let write_failed =
            matches!(&self.applied, Applied::Wrote { written, .. } if !written.failed.is_empty());
        if self.read_failed || write_failed {
            exit::ERROR
        } else {
            exit::OK
        }
    }
}

/// What applying a plan will do without writing: `None` when it writes.
fn without_writing(plan: &Plan, dry_run: bool, approve: Option<&str>) -> Option<Applied> {
    if approve.is_none() || dry_run {
        Some(Applied::DryRun)
    } else if plan.writes.is_empty() {
        Some(Applied::NothingToWrite)
    } else {
        None
    }
}

impl Pending {
    /// Writes the plan when approved (`approve` and not `dry_run`), recording it in the audit
    /// log and the control item's history.
    pub async fn apply(
        self,
        target: &TargetConfig,
        dry_run: bool,
        approve: Option<&str>,
    ) -> WriteOutcome {
        let read_failed = self.plan.read_failed;
        let done = |applied| WriteOutcome {
            applied,
            read_failed,
        };
        if let Some(applied) = without_writing(&self.plan.plan, dry_run, approve) {
            return done(applied);
        }
        let ticket = approve.unwrap_or_default();
        let action = self.plan.action();
        let (source_key, source) = self.plan.source_of();
        let started = std::time::Instant::now();
        let annotation = restore::approval(ticket, source_key, source);
        let written = restore::write_all(
            &self.clients.dynamodb,
            &target.state_table,
            &self.plan.plan.writes,
            &annotation,
            self.plan.attribute(),
        )
        .await;
        let seconds = started.elapsed().as_secs_f64();
        let by = actor();
        telemetry::audit(&target.name, action, &by, ticket, &written.written);
        record_history(target, &self.clients, action, &by, ticket, source, &written).await;
        done(Applied::Wrote { written, seconds })
    }
}

/// What `restore` puts back: the snapshot `pick` names, with the journal applied up to the
/// instant for `--at` when the target has a journal.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The state to restore from, each item with its load balancer's ARN at snapshot time.
    pub state: Snapshot,
    pub source: Source,
    /// Names the journal holds and the snapshot does not: no ARN was recorded for them.
    pub journal_only: BTreeSet<String>,
}

/// Reads what `restore` puts back from the store: the snapshot `pick` names and, for `--at`
/// on a target with a journal, the segments overlapping the snapshot's time to the instant,
/// replayed onto it. A gap in the journal between the two is an error unless `allow_gap`,
/// which takes the snapshot alone. A target without a journal is restored from the snapshot
/// as it is.
pub async fn restore_source(
    store: &Store,
    target: &str,
    pick: &Pick,
    allow_gap: bool,
) -> Result<Restored, CommandError> {
    let entries = store
        .list(target)
        .await
        .map_err(|err| listing_failed(target, err))?;
    let mut entry = choose(target, &entries, pick)?;
    let mut snapshot = store
        .get(entry)
        .await
        .map_err(|err| CommandError::error(err.to_string()))?;
    // With --at, the instant and the journal (none: the snapshot alone, as without a stream).
    let journal_to = match pick {
        Pick::At(at) => {
            let until = at_millis(at)?;
            let segments = store.list_segments(target).await.map_err(|err| {
                CommandError::error(format!("listing the journal of {target}: {err}"))
            })?;
            (!segments.is_empty()).then_some((until, segments))
        }
        Pick::Id(_) => None,
    };
    // With a journal, the snapshot replayed to an instant must have been scanned whole before
    // it: one whose scan ran past the instant may hold changes made after it, which no replay
    // takes back. An older one, replayed further, gives the table at the instant.
    if let Some((at, _)) = &journal_to
        && snapshot
            .scanned_until_millis()
            .is_some_and(|until| until > *at)
    {
        let at = *at;
        let earlier = entries
            .iter()
            .rev()
            .filter(|e| e.id.unix_millis() < entry.id.unix_millis());
        let mut found = None;
        for candidate in earlier {
            let older = store
                .get(candidate)
                .await
                .map_err(|err| CommandError::error(err.to_string()))?;
            if older.scanned_until_millis().is_none_or(|until| until <= at) {
                found = Some((candidate, older));
                break;
            }
        }
        match found {
            Some((candidate, older)) => {
                entry = candidate;
                snapshot = older;
            }
            None => {
                return Err(CommandError::error(format!(
                    "snapshot {} of target {target} was still being scanned at {} (until {}), and no earlier snapshot was scanned whole by then; nothing was written. Choose a later --at, or --snapshot ID",
                    entry.id.as_string(),
                    rfc3339_millis(at),
                    snapshot.scanned_until.as_deref().unwrap_or_default()
                )));
            }
        }
    }
    let (entry, snapshot) = (entry, snapshot);
    let id = entry.id.as_string();
    let source = |journal| Source::Snapshot {
        id: id.clone(),
        time: snapshot.time.clone(),
        records: snapshot.items.len(),
        journal,
    };
    let as_it_is = |journal| Restored {
        state: snapshot.clone(),
        source: source(journal),
        journal_only: BTreeSet::new(),
    };
    let Some((until, segments)) = journal_to else {
        return Ok(as_it_is(None));
    };
    let after = entry.id.unix_millis();
    let read = journal::segments_for(&segments, after, until);
    let mut records = Vec::new();
    let mut recorded_gaps = Vec::new();
    for segment in &read {
        let segment = store
            .get_segment(segment)
            .await
            .map_err(|err| CommandError::error(format!("{err}; nothing was written")))?;
        records.extend(segment.records);
        recorded_gaps.extend(segment.gaps);
    }
    let ids: Vec<SegmentId> = segments.iter().map(|e| e.id.clone()).collect();
    let gaps = journal::gaps_between(&ids, &recorded_gaps, after, until);
    let until_text = rfc3339_millis(until);
    if !gaps.is_empty() {
        let described: Vec<String> = gaps.iter().map(journal::describe_gap).collect();
        if !allow_gap {
            return Err(CommandError::error(format!(
                "the journal of target {target} has {} gap(s) between snapshot {id} ({}) and {until_text}, so the table at that instant is not known: {}; nothing was written. \
                 Pass --allow-gap to restore the snapshot alone, or choose another --at (before the gap, or at a snapshot's time: `lbrecon snapshots --target {target}`)",
                gaps.len(),
                snapshot.time,
                described.join("; ")
            )));
        }
        return Ok(as_it_is(Some(JournalUse::GapAccepted {
            until: until_text,
            gaps: described,
        })));
    }
    let arns: BTreeMap<&str, Option<&String>> = snapshot
        .items
        .iter()
        .filter_map(|saved| {
            let name = saved.item.get("name").and_then(AttrValue::as_s)?;
            Some((name, saved.live_arn.as_ref()))
        })
        .collect();
    let (replayed, applied) = journal::replay_counted(
        snapshot.items.iter().map(|saved| saved.item.clone()),
        &records,
        after,
        until,
    );
    let mut journal_only = BTreeSet::new();
    let mut items: Vec<SnapshotItem> = replayed
        .into_iter()
        .map(|(name, item)| {
            let live_arn = match arns.get(name.as_str()) {
                Some(arn) => arn.cloned(),
                None => {
                    journal_only.insert(name);
                    None
                }
            };
            SnapshotItem { item, live_arn }
        })
        .collect();
    // Items without a string name are kept, for the plan to list them as skipped.
    items.extend(
        snapshot
            .items
            .iter()
            .filter(|saved| saved.item.get("name").and_then(AttrValue::as_s).is_none())
            .cloned(),
    );
    let state = Snapshot::new(
        &snapshot.target,
        &snapshot.region,
        &snapshot.table,
        items,
        after,
    );
    Ok(Restored {
        state,
        source: source(Some(JournalUse::Applied {
            records: applied,
            segments: read.len(),
            until: until_text,
        })),
        journal_only,
    })
}

/// Says why a record only the journal holds is skipped: its load balancer's ARN was never
/// recorded, so a load balancer recreated under the same name cannot be told apart.
fn explain_journal_only(plan: &mut Plan, journal_only: &BTreeSet<String>) {
    for skipped in &mut plan.skipped {
        if journal_only.contains(&skipped.name)
            && skipped.reason.starts_with(restore::NOT_LIVE_AT_SNAPSHOT)
        {
            skipped.reason = "its record was written after the snapshot (the journal holds it), so no ARN of its load balancer was recorded to check the live one against; --include-gone restores it anyway".to_string();
        }
    }
}

/// `lbrecon restore`: reads what the store holds for the instant or snapshot `pick` names and
/// the table and live state now, and makes the plan.
pub async fn prepare_restore(
    config: &Config,
    target: &TargetConfig,
    pick: Pick,
    options: RestoreOptions,
    allow_gap: bool,
) -> Result<Pending, CommandError> {
    let clients = Clients::connect(
        target,
        &config.aws,
        &crate::runtime::budget::Budgets::default(),
    )
    .await;
    let store = store(config, &clients);
    let restored = restore_source(&store, &target.name, &pick, allow_gap).await?;
    let reader = Reader::new(&clients, config.aws.concurrency, (&config.records).into());
    let presence = reader
        .presence(&target.state_table, &mut RecordCache::none(), Items::Kept)
        .await;
    let (lbs, current) = match (presence.load_balancers, presence.records) {
        (Ok(lbs), Ok(scanned)) => (lbs, items_of(&scanned)?),
        (Err(err), _) | (_, Err(err)) => return Err(incomplete(err)),
    };
    let live: BTreeMap<String, String> = lbs
        .iter()
        .map(|lb| (lb.name.clone(), lb.arn.clone()))
        .collect();
    let mut plan = plan_restore(&restored.state, &current, &live, &reader.rules, options);
    explain_journal_only(&mut plan, &restored.journal_only);
    let plan = WritePlan {
        target: target.name.clone(),
        source: restored.source,
        plan,
        read_failed: false,
    };
    drop(reader);
    Ok(Pending { clients, plan })
}

fn incomplete(err: impl std::fmt::Display) -> CommandError {
    CommandError::error(format!(
        "the live read is incomplete ({err}); nothing was written. Try again."
    ))
}

async fn record_history(
    target: &TargetConfig,
    clients: &Clients,
    action: &str,
    by: &str,
    ticket: &str,
    source: &str,
    written: &restore::Written,
) {
    let store = ControlStore {
        lease: None,
        dynamodb: &clients.dynamodb,
        table: &target.control_table,
        target: &target.name,
    };
    let outcome = store
        .update(5, async |control: &mut ControlItem| {
            control.record(Event {
                time: crate::model::clock::now_rfc3339(),
                event: action.to_string(),
                by: by.to_string(),
                reason: Some(format!("approved: {ticket}")),
                missing: written.written.clone(),
                detail: Some(format!(
                    "from {source}: {} written, {} lost to newer writes, {} failed",
                    written.written.len(),
                    written.lost_race.len(),
                    written.failed.len()
                )),
            });
            store.save(control).await
        })
        .await;
    if let Err(err) = outcome {
        tracing::warn!(target_name = %target.name, error = %err.message(&store), "cannot record the {action} in the control table");
    }
}

/// What adopt knows of each live load balancer and record before choosing.
struct Seen<'a> {
    /// Every live load balancer, in the order read.
    live: Vec<&'a str>,
    /// Unrecorded live load balancers outside the target's scope.
    outside: BTreeSet<&'a str>,
    recorded: BTreeSet<String>,
    /// Names a snapshot or the journal holds, with what to do instead of adopting them.
    in_snapshot: BTreeMap<String, String>,
}

/// Which load balancers adopt reads to write a record for (`chosen`, by name), and the plan of
/// those it leaves: skipped with why, or counted as present. With `all`, every live one in
/// scope is wanted; else `names`.
fn choose_adopted(all: bool, names: &[String], seen: &Seen<'_>) -> (Plan, Vec<String>) {
    let live_names: BTreeSet<&str> = seen.live.iter().copied().collect();
    let wanted: BTreeSet<String> = if all {
        seen.live
            .iter()
            .filter(|name| !seen.outside.contains(*name))
            .map(|name| name.to_string())
            .collect()
    } else {
        names.iter().cloned().collect()
    };
    let mut plan = Plan::default();
    let mut chosen = Vec::new();
    for name in &wanted {
        let skip = |reason: &str| restore::Skipped {
            name: name.clone(),
            reason: reason.to_string(),
        };
        if !live_names.contains(name.as_str()) {
            plan.skipped
                .push(skip("no live load balancer of that name"));
        } else if seen.outside.contains(name.as_str()) {
            plan.skipped.push(skip(
                "it is outside the target's scope ([targets.scope]): adopt writes records only for load balancers the target owns",
            ));
        } else if seen.recorded.contains(name) {
            if !all {
                plan.skipped
                    .push(skip("it has a record; adopt never overwrites one"));
            } else {
                plan.unchanged += 1;
            }
        } else if let Some(why) = seen.in_snapshot.get(name) {
            plan.skipped.push(skip(why));
        } else {
            chosen.push(name.clone());
        }
    }
    (plan, chosen)
}

/// `lbrecon adopt --target T (--all | NAME...)`: reads live state and makes records for load
/// balancers that have none and that no snapshot holds.
pub async fn prepare_adopt(
    config: &Config,
    target: &TargetConfig,
    all: bool,
    names: &[String],
) -> Result<Pending, CommandError> {
    let clients = Clients::connect(
        target,
        &config.aws,
        &crate::runtime::budget::Budgets::default(),
    )
    .await;
    let plan = adopt_plan(config, target, all, names, &clients).await?;
    Ok(Pending { clients, plan })
}

async fn adopt_plan(
    config: &Config,
    target: &TargetConfig,
    all: bool,
    names: &[String],
    clients: &Clients,
) -> Result<WritePlan, CommandError> {
    let reader = Reader::new(clients, config.aws.concurrency, (&config.records).into());
    let presence = reader
        .presence(&target.state_table, &mut RecordCache::none(), Items::Kept)
        .await;
    let (lbs, groups, current) = match (
        presence.load_balancers,
        presence.target_groups,
        presence.records,
    ) {
        (Ok(lbs), Ok(groups), Ok(scanned)) => (lbs, groups, items_of(&scanned)?),
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => return Err(incomplete(err)),
    };
    let recorded = restore::names(&current);
    // Every snapshot in retention, not only the newest: one taken after a loss no longer holds
    // the lost records, and adopting them from live state would put a record made up from
    // live state where `restore` would put back the real one (docs/architecture.md#snapshots).
    let in_snapshot = snapshot_holders(&store(config, clients), &target.name)
        .await
        .map_err(|err| {
            CommandError::error(format!(
                "{err}; adopt writes nothing while it cannot tell which records the \
                 snapshots hold. Fix or move that snapshot aside, then run adopt again."
            ))
        })?;
    // Only load balancers the target owns are adopted (docs/architecture.md#terms): judged by the scope's rules,
    // reading the tags of the unrecorded ones when tags decide.
    let rules = target.scope_rules();
    let unrecorded: Vec<&crate::model::live::LiveLoadBalancer> = lbs
        .iter()
        .filter(|lb| !recorded.contains(&lb.name))
        .collect();
    let scope_tags = if rules.needs_tags() {
        let (tags, failures) = crate::app::cycle::read_scope_tags(&reader, &unrecorded).await;
        if let Some(failure) = failures.first() {
            return Err(CommandError::error(format!(
                "{failure}; nothing was written. Try again."
            )));
        }
        tags
    } else {
        Default::default()
    };
    let outside: BTreeSet<&str> = unrecorded
        .iter()
        .filter(|lb| {
            rules.membership(&lb.name, false, scope_tags.get(&lb.arn))
                != crate::reconcile::scope::Membership::In
        })
        .map(|lb| lb.name.as_str())
        .collect();
    let seen = Seen {
        live: lbs.iter().map(|lb| lb.name.as_str()).collect(),
        outside,
        recorded,
        in_snapshot,
    };
    let (mut plan, chosen) = choose_adopted(all, names, &seen);
    let index = TargetGroupIndex::new(&groups);
    let plans: Vec<DeepPlan<'_>> = lbs
        .iter()
        .filter(|lb| chosen.contains(&lb.name))
        .map(|lb| DeepPlan {
            load_balancer: lb,
            target_groups: index.of(&lb.arn).to_vec(),
            additional_certificates: Default::default(),
            targets: Default::default(),
        })
        .collect();
    // Each read is made into its item as it comes in (not held until all are read), and kept
    // in the plans' order.
    let mut outcomes: Vec<Option<Result<PlannedWrite, restore::Skipped>>> =
        plans.iter().map(|_| None).collect();
    let mut failed = false;
    reader
        .deep(&plans, |i, outcome| {
            let lb = plans[i].load_balancer;
            let skip = |reason: String| {
                Err(restore::Skipped {
                    name: lb.name.clone(),
                    reason,
                })
            };
            outcomes[i] = Some(match outcome {
                DeepOutcome::Read(state) => {
                    let document = live::assemble(lb, &index, Some(&state));
                    let mut config_doc = document.to_lists();
                    strip_aws_tags(&mut config_doc);
                    Ok(PlannedWrite {
                        name: lb.name.clone(),
                        action: "adopt",
                        replaces_invalid: None,
                        item: adopted_item(&lb.name, &config_doc),
                        condition: WriteCondition::Absent,
                    })
                }
                DeepOutcome::Gone => skip("deleted while being read".into()),
                DeepOutcome::Failed(failure) => {
                    failed = true;
                    skip(format!("reading it failed: {failure}"))
                }
            });
        })
        .await;
    for outcome in outcomes.into_iter().flatten() {
        match outcome {
            Ok(write) => plan.writes.push(write),
            Err(skipped) => plan.skipped.push(skipped),
        }
    }
    Ok(WritePlan {
        target: target.name.clone(),
        source: Source::Live,
        plan,
        read_failed: failed,
    })
}

/// Every name any snapshot of `target` in the store holds, with the newest snapshot that holds
/// it. Snapshots are read one at a time, and only their names kept.
async fn snapshot_holders(store: &Store, target: &str) -> Result<BTreeMap<String, String>, String> {
    let mut holders = BTreeMap::new();
    // Oldest first, so the newest holder of a name is the one left.
    for entry in store.list(target).await.map_err(|err| err.to_string())? {
        let snapshot = store.get(&entry).await.map_err(|err| err.to_string())?;
        let id = entry.id.as_string();
        let why = format!(
            "snapshot {id} holds its record: use `lbrecon restore --target {target} --snapshot {id}`, which puts it back verbatim"
        );
        for name in snapshot_names(&snapshot) {
            holders.insert(name, why.clone());
        }
    }
    // And the journal (SPEC: "any snapshot (or journal) in retention"): a record written after
    // the last snapshot and lost since is held by the journal alone.
    for entry in store
        .list_segments(target)
        .await
        .map_err(|err| err.to_string())?
    {
        let segment = store
            .get_segment(&entry)
            .await
            .map_err(|err| err.to_string())?;
        for record in &segment.records {
            if record.new_image.is_none() && record.old_image.is_none() {
                continue;
            }
            if let Some(name) = record.name() {
                let at = crate::model::clock::rfc3339_millis(record.created_millis);
                let why = format!(
                    "the journal holds its record ({} at {at}, segment {}): use `lbrecon restore --target {target} --at TIME` with a TIME before it was lost, which puts it back verbatim",
                    record.event.as_str(),
                    entry.id.as_string()
                );
                holders.insert(name.to_string(), why);
            }
        }
    }
    Ok(holders)
}

/// The names of the items a snapshot holds.
fn snapshot_names(snapshot: &Snapshot) -> impl Iterator<Item = String> + '_ {
    snapshot.items.iter().filter_map(|saved| {
        saved
            .item
            .get("name")
            .and_then(AttrValue::as_s)
            .map(str::to_string)
    })
}

fn strip_aws_tags(doc: &mut Value) {
    fn strip(map: &mut Value) {
        if let Some(Value::Object(tags)) = map.get_mut("tags") {
            tags.retain(|key, _| !key.starts_with("aws:"));
        }
    }
    strip(doc);
    if let Some(Value::Array(groups)) = doc.get_mut("target_groups") {
        groups.iter_mut().for_each(strip);
    }
}

fn adopted_item(name: &str, config: &Value) -> Item {
    [
        ("name".to_string(), AttrValue::S(name.to_string())),
        ("config".to_string(), from_json(config)),
        ("version".to_string(), AttrValue::N("1".into())),
        (
            "updated_at".to_string(),
            AttrValue::S(crate::model::clock::now_rfc3339()),
        ),
    ]
    .into_iter()
    .collect()
}

/// One change between two consecutive versions of a record in `lbrecon history`: the drift
/// path (`""`, the whole record, where one side has no valid document) and the value before
/// and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionChange {
    pub path: String,
    pub from: Value,
    pub to: Value,
}

/// One version of a record in `lbrecon history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    /// RFC 3339: the snapshot's time, or the record's creation time (to the second).
    pub time: String,
    /// `snapshot`, `INSERT`, `MODIFY` or `REMOVE`.
    pub event: &'static str,
    /// The snapshot's id, or the journal segment's.
    pub source: String,
    /// Whether the item exists in this version (not after a `REMOVE`, nor in a snapshot that
    /// lacks it).
    pub present: bool,
    /// The item's `version` and `updated_at` attributes, where it has them.
    pub version: Option<String>,
    pub updated_at: Option<String>,
    /// Whether it is a valid record (`null` where there is no item).
    pub valid: Option<bool>,
    /// Why it is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What changed since the version before.
    pub changes: Vec<VersionChange>,
}

/// A stretch the journal may lack records for, in `lbrecon history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryGap {
    pub from: String,
    pub to: String,
    pub shard: Option<String>,
    pub reason: String,
}

/// What `lbrecon history` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub target: String,
    pub name: String,
    pub versions: Vec<Version>,
    pub gaps: Vec<HistoryGap>,
    /// `--format json`, else the table.
    pub json: bool,
}

/// Where a version of a record was seen: a snapshot, or a journal record.
enum Sighting<'a> {
    Snapshot {
        id: &'a str,
        item: Option<&'a Item>,
    },
    Record {
        segment: &'a str,
        record: &'a StreamRecord,
    },
}

fn attribute_text(item: &Item, name: &str) -> Option<String> {
    match item.get(name)? {
        AttrValue::S(text) | AttrValue::N(text) => Some(text.clone()),
        _ => None,
    }
}

/// The changes from one state of a record to the next: the drift paths between two valid
/// documents, both ways (a field only one of them holds is a change too); one change of the
/// whole record (path `""`) where only one side is a valid document.
fn version_changes(
    before: Option<&Item>,
    after: Option<&Item>,
    rules: &crate::model::record::RecordRules,
) -> Vec<VersionChange> {
    use crate::model::record::Record;
    let document = |item: Option<&Item>| {
        item.map(|item| Record::from_item(item, 0, rules))
            .and_then(|record| record.content.document().ok().map(|d| d.into_owned()))
    };
    match (document(before), document(after)) {
        (Some(before), Some(after)) => {
            let mut changes: Vec<VersionChange> = crate::reconcile::diff::diff(&before, &after)
                .into_iter()
                .map(|change| VersionChange {
                    path: change.path,
                    from: change.recorded,
                    to: change.live,
                })
                .collect();
            let seen: BTreeSet<String> = changes.iter().map(|c| c.path.clone()).collect();
            changes.extend(
                crate::reconcile::diff::diff(&after, &before)
                    .into_iter()
                    .filter(|change| !seen.contains(&change.path))
                    .map(|change| VersionChange {
                        path: change.path,
                        from: change.live,
                        to: change.recorded,
                    }),
            );
            changes.sort_by(|a, b| a.path.cmp(&b.path));
            changes
        }
        (None, None) => Vec::new(),
        (before, after) => vec![VersionChange {
            path: String::new(),
            from: before.map_or(Value::Null, |d| d.to_keyed_value()),
            to: after.map_or(Value::Null, |d| d.to_keyed_value()),
        }],
    }
}

/// A record's versions over time, oldest first, from `snapshots` (id, time, the item it held
/// of that name) and the journal's `records` of it (each with its segment's id). Pure.
///
/// A snapshot version identical to the version before it is left out, as is one equal to what
/// the item was before a journal record of the snapshot's second (the snapshot was read before
/// that record, whose time is rounded down). A record read twice is shown once.
pub fn versions_of(
    snapshots: &[(String, i64, Option<Item>)],
    records: &[(String, StreamRecord)],
    rules: &crate::model::record::RecordRules,
) -> Vec<Version> {
    let mut seen: Vec<(i64, u8, Sighting<'_>)> = Vec::new();
    let mut once = BTreeSet::new();
    let mut ordered: Vec<&(String, StreamRecord)> = records.iter().collect();
    ordered.sort_by(|a, b| crate::model::stream::replay_order(&a.1, &b.1));
    for (segment, record) in ordered {
        if once.insert((record.shard.as_str(), record.sequence.as_str())) {
            seen.push((
                record.created_millis,
                0,
                Sighting::Record { segment, record },
            ));
        }
    }
    for (id, millis, item) in snapshots {
        seen.push((
            *millis,
            1,
            Sighting::Snapshot {
                id,
                item: item.as_ref(),
            },
        ));
    }
    // Stable: records of one millisecond stay in sequence order, before a snapshot of it.
    seen.sort_by_key(|(millis, kind, _)| (*millis, *kind));
    let before_in_second = |second: i64| -> Vec<Option<&Item>> {
        records
            .iter()
            .filter(|(_, record)| record.created_millis.div_euclid(1000) == second)
            .filter_map(|(_, record)| match record.event {
                StreamEvent::Insert => Some(None),
                _ => record.old_image.as_ref().map(Some),
            })
            .collect()
    };
    let mut versions = Vec::new();
    let mut state: Option<&Item> = None;
    for (millis, _, event) in &seen {
        let (name, source, after) = match event {
            Sighting::Snapshot { id, item } => {
                if *item == state || before_in_second(millis.div_euclid(1000)).contains(item) {
                    continue;
                }
                ("snapshot", id.to_string(), *item)
            }
            Sighting::Record { segment, record } => {
                (record.event.as_str(), segment.to_string(), record.after())
            }
        };
        let record = after.map(|item| crate::model::record::Record::from_item(item, 0, rules));
        versions.push(Version {
            time: rfc3339_millis(*millis),
            event: name,
            source,
            present: after.is_some(),
            version: after.and_then(|item| attribute_text(item, "version")),
            updated_at: after.and_then(|item| attribute_text(item, "updated_at")),
            valid: record.as_ref().map(|record| record.is_valid()),
            reason: record.and_then(|record| match record.content {
                crate::model::record::RecordContent::Invalid(reason) => Some(reason),
                _ => None,
            }),
            changes: version_changes(state, after, rules),
        });
        state = after;
    }
    versions
}

impl History {
    /// `{"target", "name", "versions": [...], "gaps": [...]}`, pretty-printed, with a newline.
    pub fn to_json(&self) -> String {
        let doc = serde_json::json!({
            "target": self.target,
            "name": self.name,
            "versions": self.versions,
            "gaps": self.gaps,
        });
        format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serializes")
        )
    }

    /// The table for people: one line per version, its changes below it, then the gaps.
    pub fn to_table(&self) -> String {
        let mut out = format!("history of {} in target {}\n", self.name, self.target);
        out.push_str(&format!(
            "{:<25} {:<8} {:>8}  {:<25} SOURCE\n",
            "TIME", "EVENT", "VERSION", "UPDATED_AT"
        ));
        let short = |value: &Value| {
            let text = value.to_string();
            if text.chars().count() > 100 {
                format!("{}...", text.chars().take(100).collect::<String>())
            } else {
                text
            }
        };
        for version in &self.versions {
            out.push_str(&format!(
                "{:<25} {:<8} {:>8}  {:<25} {}\n",
                version.time,
                version.event,
                version.version.as_deref().unwrap_or("-"),
                version.updated_at.as_deref().unwrap_or("-"),
                version.source
            ));
            if let Some(reason) = &version.reason {
                out.push_str(&format!("    invalid: {reason}\n"));
            }
            for change in &version.changes {
                out.push_str(&match (change.path.as_str(), &change.from, &change.to) {
                    ("", Value::Null, _) => "    (whole record): now a valid document\n".into(),
                    ("", _, Value::Null) => {
                        "    (whole record): no longer a valid document\n".into()
                    }
                    (path, from, to) => {
                        format!("    {path}: {} -> {}\n", short(from), short(to))
                    }
                });
            }
        }
        for gap in &self.gaps {
            let shard = gap
                .shard
                .as_deref()
                .map(|shard| format!(" (shard {shard})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "gap: {} to {}{shard}: {}; changes in it may be missing\n",
                gap.from, gap.to, gap.reason
            ));
        }
        out
    }
}

impl Printed for History {
    fn stdout(&self) -> String {
        if self.json {
            self.to_json()
        } else {
            self.to_table()
        }
    }
    fn exit_code(&self) -> i32 {
        exit::OK
    }
}

/// The store the config names, reached without any AWS call but S3's own (no account lookup):
/// `history` reads only the store.
async fn store_alone(config: &Config, target: &TargetConfig) -> Store {
    match &config.snapshots.s3 {
        Some(s3) => {
            let sdk = crate::aws::sdk_config(target, &config.aws).await;
            Store::S3 {
                client: crate::aws::s3::S3::new(
                    &sdk,
                    crate::aws::Api::new(&target.name, "s3", None, config.aws.max_attempts),
                ),
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
            }
        }
        None => Store::Local {
            dir: config.snapshots.dir.clone(),
        },
    }
}

/// `lbrecon history --target T NAME`: the record's versions from every snapshot in retention
/// and the journal. A name no snapshot or record holds is an error.
pub async fn history(
    config: &Config,
    target: &TargetConfig,
    name: &str,
    json: bool,
) -> Result<History, CommandError> {
    let store = store_alone(config, target).await;
    history_from(&store, &target.name, name, &(&config.records).into(), json).await
}

/// [`history`], from `store`.
pub async fn history_from(
    store: &Store,
    target: &str,
    name: &str,
    rules: &crate::model::record::RecordRules,
    json: bool,
) -> Result<History, CommandError> {
    let read_failed =
        |err: String| CommandError::error(format!("{err}; history read nothing more"));
    let entries = store
        .list(target)
        .await
        .map_err(|err| listing_failed(target, err))?;
    let mut snapshots = Vec::new();
    let mut held = false;
    // One at a time, keeping only the item of that name.
    for entry in &entries {
        let snapshot = store
            .get(entry)
            .await
            .map_err(|err| read_failed(err.to_string()))?;
        let item = snapshot
            .items
            .into_iter()
            .map(|saved| saved.item)
            .find(|item| item.get("name").and_then(AttrValue::as_s) == Some(name));
        held |= item.is_some();
        snapshots.push((entry.id.as_string(), entry.id.unix_millis(), item));
    }
    let segments = store
        .list_segments(target)
        .await
        .map_err(|err| CommandError::error(format!("listing the journal of {target}: {err}")))?;
    let mut records = Vec::new();
    let mut recorded_gaps = Vec::new();
    for entry in &segments {
        let segment = store
            .get_segment(entry)
            .await
            .map_err(|err| read_failed(err.to_string()))?;
        let id = entry.id.as_string();
        records.extend(
            segment
                .records
                .into_iter()
                .filter(|record| record.name() == Some(name))
                .map(|record| (id.clone(), record)),
        );
        recorded_gaps.extend(segment.gaps);
    }
    if !held && records.is_empty() {
        return Err(CommandError::error(format!(
            "no snapshot or journal record of target {target} holds {name:?} ({} snapshot(s) and {} journal segment(s) read); check the name, and `lbrecon snapshots --target {target}` for what is kept",
            entries.len(),
            segments.len()
        )));
    }
    let versions = versions_of(&snapshots, &records, rules);
    let first = versions
        .first()
        .and_then(|v| crate::model::clock::parse_rfc3339_millis(&v.time))
        .unwrap_or(i64::MIN);
    let gaps = match (segments.first(), segments.last()) {
        (Some(oldest), Some(newest)) => {
            let ids: Vec<SegmentId> = segments.iter().map(|e| e.id.clone()).collect();
            journal::gaps_between(
                &ids,
                &recorded_gaps,
                oldest.id.from_millis(),
                newest.id.to_millis(),
            )
        }
        _ => Vec::new(),
    };
    let gaps = gaps
        .into_iter()
        .filter(|gap| gap.to_millis > first)
        .map(|gap| HistoryGap {
            from: rfc3339_millis(gap.from_millis),
            to: rfc3339_millis(gap.to_millis),
            shard: gap.shard,
            reason: gap.reason,
        })
        .collect();
    Ok(History {
        target: target.to_string(),
        name: name.to_string(),
        versions,
        gaps,
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    fn item(name: &str) -> SnapshotItem {
        SnapshotItem {
            item: [("name".to_string(), AttrValue::S(name.to_string()))]
                .into_iter()
                .collect(),
            live_arn: Some(format!("arn:{name}")),
        }
    }

    fn entry(stamp: &str, records: usize) -> Entry {
        let id = crate::recovery::snapshot::SnapshotId {
            stamp: stamp.into(),
            records,
            hash: "abc123".into(),
        };
        Entry {
            location: format!("/var/lib/lbrecon/snapshots/prod/{}.json.gz", id.as_string()),
            id,
            bytes: 2048,
        }
    }

    fn entries() -> Vec<Entry> {
        vec![
            entry("20261126T101500123Z", 3),
            entry("20261126T111500000Z", 4),
        ]
    }

    #[test]
    fn the_snapshot_table_lines_up_and_says_when_there_are_none() {
        let list = SnapshotList {
            snapshots: entries()
                .into_iter()
                .map(|e| Listed::of("prod", e))
                .collect(),
            json: false,
        };
        let table = list.stdout();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert_eq!(
            lines[0],
            "TARGET       ID                                       TIME                       RECORDS      BYTES  LOCATION"
        );
        assert_eq!(
            lines[1],
            "prod         20261126T101500123Z-3r-abc123            2026-11-26T10:15:00.123Z         3       2048  \
             /var/lib/lbrecon/snapshots/prod/20261126T101500123Z-3r-abc123.json.gz"
        );
        assert!(table.ends_with(".json.gz\n"));
        assert_eq!(list.exit_code(), exit::OK);
        let none = SnapshotList {
            snapshots: vec![],
            json: false,
        };
        assert_eq!(none.stdout(), "no snapshots\n");
    }

    #[test]
    fn the_snapshot_json_lists_every_field() {
        let list = SnapshotList {
            snapshots: vec![Listed::of("prod", entries().remove(0))],
            json: true,
        };
        let value: Value = serde_json::from_str(&list.stdout()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"snapshots": [{
                "target": "prod", "id": "20261126T101500123Z-3r-abc123",
                "time": "2026-11-26T10:15:00.123Z", "records": 3, "bytes": 2048,
                "location": "/var/lib/lbrecon/snapshots/prod/20261126T101500123Z-3r-abc123.json.gz"
            }]})
        );
        let none = SnapshotList {
            snapshots: vec![],
            json: true,
        };
        assert_eq!(none.stdout(), "{\n  \"snapshots\": []\n}\n");
    }

    #[test]
    fn a_snapshot_is_picked_by_id_or_as_the_newest_at_or_before_a_time() {
        let entries = entries();
        let by_id = choose(
            "prod",
            &entries,
            &Pick::Id("20261126T101500123Z-3r-abc123".into()),
        )
        .unwrap();
        assert_eq!(by_id.id.records, 3);
        let between = choose("prod", &entries, &Pick::At("2026-11-26T11:00:00Z".into())).unwrap();
        assert_eq!(between.id.records, 3);
        let at_newest = choose("prod", &entries, &Pick::At("2026-11-26T11:15:00Z".into())).unwrap();
        assert_eq!(at_newest.id.records, 4);
        let later = choose(
            "prod",
            &entries,
            &Pick::At("2026-12-01T00:00:00+01:00".into()),
        )
        .unwrap();
        assert_eq!(later.id.records, 4);
    }

    #[test]
    fn no_matching_snapshot_is_an_error_naming_the_oldest() {
        let err = choose("prod", &entries(), &Pick::At("2026-11-26T10:00:00Z".into())).unwrap_err();
        assert_eq!(
            err.stderr(),
            "lbrecon: no snapshot of prod matches At(\"2026-11-26T10:00:00Z\") (2 snapshots; the oldest \
             is 2026-11-26T10:15:00.123Z); `lbrecon snapshots --target prod` lists them\n"
        );
        assert_eq!(err.exit_code(), exit::ERROR);
        let err = choose("prod", &[], &Pick::Id("nope".into())).unwrap_err();
        assert!(
            err.message
                .contains("matches Id(\"nope\") (0 snapshots; the oldest is none)"),
            "{err}"
        );
    }

    #[test]
    fn a_time_that_is_not_rfc_3339_is_a_usage_error() {
        let err = choose("prod", &entries(), &Pick::At("yesterday".into())).unwrap_err();
        assert_eq!(
            err.stderr(),
            "lbrecon: --at \"yesterday\" is not an RFC 3339 time such as 2026-12-24T20:24:00Z\n"
        );
        assert_eq!(err.exit_code(), exit::USAGE);
    }

    fn write(name: &str, replaces_invalid: Option<&str>) -> PlannedWrite {
        PlannedWrite {
            name: name.into(),
            action: if replaces_invalid.is_some() {
                "replace_invalid"
            } else {
                "restore"
            },
            replaces_invalid: replaces_invalid.map(str::to_string),
            item: Item::new(),
            condition: WriteCondition::Absent,
        }
    }

    fn skipped(name: &str, reason: &str) -> restore::Skipped {
        restore::Skipped {
            name: name.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn a_restore_plan_shows_its_snapshot_then_each_write_and_skip() {
        let plan = WritePlan {
            target: "prod".into(),
            source: Source::Snapshot {
                id: "20261126T101500123Z-3r-abc123".into(),
                time: "2026-11-26T10:15:00.123Z".into(),
                records: 3,
                journal: None,
            },
            plan: Plan {
                writes: vec![
                    write("web-1", None),
                    write("web-2", Some("emptied: manages nothing")),
                ],
                skipped: vec![skipped("web-3", "its load balancer is gone")],
                unchanged: 4,
            },
            read_failed: false,
        };
        assert_eq!(plan.action(), "restore");
        assert_eq!(
            plan.to_text(),
            "restore of target prod from snapshot 20261126T101500123Z-3r-abc123 (2026-11-26T10:15:00.123Z, 3 records)\n\
             plan: 2 to write, 1 skipped, 4 present and left as they are\n\
             \x20 restore    web-1\n\
             \x20 replace_invalid web-2: over the table's invalid record (emptied: manages nothing)\n\
             \x20 skip       web-3: its load balancer is gone\n"
        );
    }

    #[test]
    fn a_large_plan_is_summarized_after_25_lines_of_each_kind() {
        let plan = WritePlan {
            target: "prod".into(),
            source: Source::Live,
            plan: Plan {
                writes: (0..30).map(|i| write(&format!("w{i}"), None)).collect(),
                skipped: (0..26).map(|i| skipped(&format!("s{i}"), "why")).collect(),
                unchanged: 0,
            },
            read_failed: false,
        };
        assert_eq!(plan.action(), "adopt");
        let text = plan.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "adopt for target prod");
        assert_eq!(
            lines[1],
            "plan: 30 to write, 26 skipped, 0 present and left as they are"
        );
        assert_eq!(lines[26], "  restore    w24");
        assert_eq!(lines[27], "  ... and 5 more to write");
        assert_eq!(lines[28], "  skip       s0: why");
        assert_eq!(lines[53], "  ... and 1 more skipped");
        assert_eq!(lines.len(), 54);
    }

    #[test]
    fn only_an_approved_run_that_is_not_dry_writes() {
        let empty = Plan::default();
        let some = Plan {
            writes: vec![write("web-1", None)],
            ..Plan::default()
        };
        assert_eq!(without_writing(&some, false, None), Some(Applied::DryRun));
        assert_eq!(
            without_writing(&some, true, Some("CHG-1")),
            Some(Applied::DryRun)
        );
        assert_eq!(without_writing(&empty, true, None), Some(Applied::DryRun));
        assert_eq!(
            without_writing(&empty, false, Some("CHG-1")),
            Some(Applied::NothingToWrite)
        );
        assert_eq!(without_writing(&some, false, Some("CHG-1")), None);
    }

    #[test]
    fn what_was_written_is_printed_and_any_failure_exits_1() {
        let dry = WriteOutcome {
            applied: Applied::DryRun,
            read_failed: false,
        };
        assert_eq!(
            dry.stdout(),
            "dry run: nothing written (writing needs --approve TICKET)\n"
        );
        assert_eq!(dry.exit_code(), exit::OK);
        let nothing = WriteOutcome {
            applied: Applied::NothingToWrite,
            read_failed: true,
        };
        assert_eq!(nothing.stdout(), "nothing to write\n");
        // adopt: a load balancer could not be read.
        assert_eq!(nothing.exit_code(), exit::ERROR);

        let written = restore::Written {
            written: vec!["web-1".into(), "web-2".into()],
            lost_race: vec!["web-3".into()],
            failed: vec![],
            calls: 1,
        };
        let wrote = WriteOutcome {
            applied: Applied::Wrote {
                written: written.clone(),
                seconds: 0.256,
            },
            read_failed: false,
        };
        assert_eq!(
            wrote.stdout(),
            "wrote 2 record(s) in 0.26 s (1 TransactWriteItems calls)\n\
             \x20 web-3: written by someone else meanwhile; theirs stands\n"
        );
        assert_eq!(wrote.stderr(), "");
        assert_eq!(wrote.exit_code(), exit::OK);

        let failed = WriteOutcome {
            applied: Applied::Wrote {
                written: restore::Written {
                    failed: (0..27)
                        .map(|i| (format!("f{i}"), "AccessDenied".to_string()))
                        .collect(),
                    ..written
                },
                seconds: 1.0,
            },
            read_failed: false,
        };
        let text = failed.stdout();
        assert!(text.contains("  f0: FAILED: AccessDenied\n"), "{text}");
        assert!(text.contains("  f24: FAILED: AccessDenied\n"), "{text}");
        assert!(!text.contains("  f25: FAILED"), "{text}");
        assert!(text.ends_with("  ... and 2 more failed\n"), "{text}");
        assert_eq!(failed.exit_code(), exit::ERROR);
    }

    fn seen<'a>(live: &[&'a str], outside: &[&'a str], recorded: &[&str]) -> Seen<'a> {
        Seen {
            live: live.to_vec(),
            outside: outside.iter().copied().collect(),
            recorded: recorded.iter().map(|n| n.to_string()).collect(),
            in_snapshot: [(
                "held".to_string(),
                "snapshot SNAP-1 holds its record: use `lbrecon restore --target prod --snapshot SNAP-1`, which puts it back verbatim".to_string(),
            )]
            .into(),
        }
    }

    #[test]
    fn adopt_all_takes_every_unrecorded_one_in_scope_that_no_snapshot_holds() {
        let seen = seen(&["b", "a", "rec", "held", "out"], &["out"], &["rec"]);
        let (plan, chosen) = choose_adopted(true, &[], &seen);
        assert_eq!(chosen, vec!["a".to_string(), "b".to_string()]);
        // A recorded one is counted as present, not skipped; one out of scope is not wanted.
        assert_eq!(plan.unchanged, 1);
        assert_eq!(
            plan.skipped,
            vec![skipped(
                "held",
                "snapshot SNAP-1 holds its record: use `lbrecon restore --target prod --snapshot SNAP-1`, which puts it back verbatim"
            )]
        );
        assert!(plan.writes.is_empty());
    }

    #[test]
    fn adopt_by_name_says_why_each_name_is_left() {
        let seen = seen(&["a", "rec", "held", "out"], &["out"], &["rec"]);
        let names: Vec<String> = ["a", "ghost", "out", "rec", "held"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let (plan, chosen) = choose_adopted(false, &names, &seen);
        assert_eq!(chosen, vec!["a".to_string()]);
        assert_eq!(plan.unchanged, 0);
        let reasons: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("ghost", "no live load balancer of that name"),
                (
                    "held",
                    "snapshot SNAP-1 holds its record: use `lbrecon restore --target prod --snapshot SNAP-1`, which puts it back verbatim"
                ),
                (
                    "out",
                    "it is outside the target's scope ([targets.scope]): adopt writes records only for load balancers the target owns"
                ),
                ("rec", "it has a record; adopt never overwrites one"),
            ]
        );
    }

    #[test]
    fn adopted_records_drop_the_tags_aws_sets() {
        let mut doc = serde_json::json!({
            "tags": {"aws:cloudformation:stack-name": "s", "team": "web"},
            "target_groups": [{"tags": {"aws:x": "1", "app": "a"}}]
        });
        strip_aws_tags(&mut doc);
        assert_eq!(
            doc,
            serde_json::json!({"tags": {"team": "web"}, "target_groups": [{"tags": {"app": "a"}}]})
        );
        let item = adopted_item("web-1", &doc);
        assert_eq!(item.get("name"), Some(&AttrValue::S("web-1".into())));
        assert_eq!(item.get("version"), Some(&AttrValue::N("1".into())));
    }

    mod at_an_instant {
        use super::*;
        use crate::model::stream::{StreamEvent, StreamRecord};
        use crate::recovery::journal::Segment;

        const MINUTE: i64 = 60_000;
        /// 2026-11-26T10:15:00Z.
        pub(crate) const T1: i64 = 1_795_688_100_000;

        pub(crate) fn versioned(name: &str, version: u32) -> Item {
            [
                ("name".to_string(), AttrValue::S(name.into())),
                ("version".to_string(), AttrValue::N(version.to_string())),
            ]
            .into_iter()
            .collect()
        }

        pub(crate) fn change(
            sequence: u64,
            at: i64,
            event: StreamEvent,
            old: Option<Item>,
            new: Option<Item>,
        ) -> StreamRecord {
            let name = new.as_ref().or(old.as_ref()).unwrap()["name"].clone();
            StreamRecord {
                shard: "shard-1".into(),
                sequence: sequence.to_string(),
                event,
                created_millis: at,
                keys: [("name".to_string(), name)].into(),
                old_image: old,
                new_image: new,
            }
        }

        pub(crate) fn segment(from: i64, to: i64, records: Vec<StreamRecord>) -> Segment {
            Segment::new(
                "prod",
                "us-east-1",
                "lb-state",
                "arn:stream",
                from,
                to,
                Default::default(),
                vec![],
                records,
            )
        }

        fn saved(name: &str, version: u32) -> SnapshotItem {
            SnapshotItem {
                item: versioned(name, version),
                live_arn: Some(format!("arn:{name}")),
            }
        }

        fn rfc(millis: i64) -> String {
            rfc3339_millis(millis)
        }

        /// Two snapshots ten minutes apart, and a journal of two segments covering them, with
        /// changes and deletions before and after the instant restored.
        async fn store_with_journal(dir: &std::path::Path) -> Store {
            use StreamEvent::*;
            let store = Store::Local {
                dir: dir.to_path_buf(),
            };
            let first = Snapshot::new(
                "prod",
                "us-east-1",
                "lb-state",
                vec![saved("a", 1), saved("b", 1), saved("c", 1)],
                T1,
            );
            let second = Snapshot::new(
                "prod",
                "us-east-1",
                "lb-state",
                vec![saved("c", 1), saved("e", 1)],
                T1 + 10 * MINUTE,
            );
            store.put(&first).await.unwrap();
            store.put(&second).await.unwrap();
            let a = |v| Some(versioned("a", v));
            store
                .put_segment(
                    "prod",
                    &segment(
                        T1 - 5 * MINUTE,
                        T1 + 5 * MINUTE,
                        vec![
                            // Already in the first snapshot.
                            change(1, T1 - MINUTE, Modify, a(0), a(1)),
                            change(2, T1 + MINUTE, Modify, a(1), a(2)),
                            change(3, T1 + 2 * MINUTE, Remove, Some(versioned("b", 1)), None),
                            change(4, T1 + 3 * MINUTE, Insert, None, Some(versioned("d", 1))),
                        ],
                    ),
                )
                .await
                .unwrap();
            store
                .put_segment(
                    "prod",
                    &segment(
                        T1 + 5 * MINUTE,
                        T1 + 15 * MINUTE,
                        vec![
                            change(5, T1 + 5 * MINUTE + 30_000, Modify, a(2), a(3)),
                            // After the instant.
                            change(6, T1 + 7 * MINUTE, Remove, a(3), None),
                            change(7, T1 + 8 * MINUTE, Insert, None, Some(versioned("e", 1))),
                            change(8, T1 + 9 * MINUTE, Remove, Some(versioned("d", 1)), None),
                        ],
                    ),
                )
                .await
                .unwrap();
            store
        }

        fn names_of(state: &Snapshot) -> Vec<(String, Option<String>, Item)> {
            state
                .items
                .iter()
                .map(|saved| {
                    (
                        saved.item["name"].as_s().unwrap().to_string(),
                        saved.live_arn.clone(),
                        saved.item.clone(),
                    )
                })
                .collect()
        }

        #[tokio::test]
        async fn between_two_snapshots_the_journal_is_applied_up_to_the_instant() {
            let dir = tempfile::tempdir().unwrap();
            let store = store_with_journal(dir.path()).await;
            let at = Pick::At(rfc(T1 + 6 * MINUTE));
            let restored = restore_source(&store, "prod", &at, false).await.unwrap();
            assert_eq!(
                names_of(&restored.state),
                vec![
                    ("a".into(), Some("arn:a".into()), versioned("a", 3)),
                    ("c".into(), Some("arn:c".into()), versioned("c", 1)),
                    ("d".into(), None, versioned("d", 1)),
                ]
            );
            assert_eq!(restored.journal_only, BTreeSet::from(["d".to_string()]));
            let Source::Snapshot { id, journal, .. } = &restored.source else {
                panic!("{:?}", restored.source);
            };
            assert!(id.starts_with("20261126T101500000Z-3r-"), "{id}");
            assert_eq!(
                journal,
                &Some(JournalUse::Applied {
                    records: 4,
                    segments: 2,
                    until: "2026-11-26T10:21:00Z".into(),
                })
            );
            let plan = WritePlan {
                target: "prod".into(),
                source: restored.source.clone(),
                plan: Plan::default(),
                read_failed: false,
            };
            assert!(
                plan.to_text().starts_with(&format!(
                    "restore of target prod from snapshot {id} (2026-11-26T10:15:00Z, 3 records) \
                     and the journal up to 2026-11-26T10:21:00Z: 4 record(s) applied from 2 segment(s)\n"
                )),
                "{}",
                plan.to_text()
            );

            // The plan: what the table lacks is written as it was at the instant; the record
            // only the journal holds has no ARN to check and is skipped, saying why.
            let live: BTreeMap<String, String> = ["a", "b", "c", "d"]
                .iter()
                .map(|n| (n.to_string(), format!("arn:{n}")))
                .collect();
            let mut plan = plan_restore(
                &restored.state,
                &[],
                &live,
                &crate::model::record::RecordRules::default(),
                RestoreOptions::default(),
            );
            explain_journal_only(&mut plan, &restored.journal_only);
            let written: Vec<(&str, &Item)> = plan
                .writes
                .iter()
                .map(|w| (w.name.as_str(), &w.item))
                .collect();
            assert_eq!(
                written,
                vec![("a", &versioned("a", 3)), ("c", &versioned("c", 1))]
            );
            assert_eq!(plan.skipped.len(), 1);
            assert!(
                plan.skipped[0].reason.starts_with(
                    "its record was written after the snapshot (the journal holds it)"
                ),
                "{}",
                plan.skipped[0].reason
            );

            // Later, from the second snapshot: a is gone, e back, d removed.
            let later = restore_source(&store, "prod", &Pick::At(rfc(T1 + 14 * MINUTE)), false)
                .await
                .unwrap();
            let names: Vec<String> = names_of(&later.state).into_iter().map(|n| n.0).collect();
            assert_eq!(names, vec!["c".to_string(), "e".to_string()]);
            // At the first snapshot's very time: the snapshot, nothing applied after it.
            let at_snapshot = restore_source(&store, "prod", &Pick::At(rfc(T1)), false)
                .await
                .unwrap();
            assert_eq!(names_of(&at_snapshot.state).len(), 3);
        }

        #[tokio::test]
        async fn a_snapshot_still_being_scanned_at_the_instant_is_passed_over_for_an_earlier_one() {
            let dir = tempfile::tempdir().unwrap();
            let store = store_with_journal(dir.path()).await;
            // The second snapshot's scan began at T1 + 10 min and ran until T1 + 12 min.
            let mut second = Snapshot::new(
                "prod",
                "us-east-1",
                "lb-state",
                vec![saved("c", 1), saved("e", 1)],
                T1 + 10 * MINUTE,
            );
            second.scanned_until = Some(rfc(T1 + 12 * MINUTE));
            store.put(&second).await.unwrap();
            let inside = restore_source(&store, "prod", &Pick::At(rfc(T1 + 11 * MINUTE)), false)
                .await
                .unwrap();
            let Source::Snapshot { id, .. } = &inside.source else {
                panic!();
            };
            assert!(id.starts_with("20261126T101500000Z-3r-"), "{id}");
            // After its scan ended it is the one.
            let after = restore_source(&store, "prod", &Pick::At(rfc(T1 + 13 * MINUTE)), false)
                .await
                .unwrap();
            let Source::Snapshot { id, .. } = &after.source else {
                panic!();
            };
            assert!(id.starts_with("20261126T102500000Z-2r-"), "{id}");
        }

        #[tokio::test]
        async fn a_gap_refuses_unless_the_snapshot_alone_is_accepted() {
            let dir = tempfile::tempdir().unwrap();
            let store = store_with_journal(dir.path()).await;
            let at = Pick::At(rfc(T1 + 20 * MINUTE));
            let err = restore_source(&store, "prod", &at, false)
                .await
                .unwrap_err();
            assert_eq!(err.exit_code(), exit::ERROR);
            assert!(
                err.message.contains(
                    "2026-11-26T10:30:00Z to 2026-11-26T10:35:00Z: after the journal's last sealed segment"
                ),
                "{err}"
            );
            assert!(
                err.message
                    .contains("Pass --allow-gap to restore the snapshot alone")
            );
            let restored = restore_source(&store, "prod", &at, true).await.unwrap();
            let Source::Snapshot { id, journal, .. } = &restored.source else {
                panic!();
            };
            assert!(id.starts_with("20261126T102500000Z-2r-"), "{id}");
            assert!(restored.journal_only.is_empty());
            assert_eq!(names_of(&restored.state).len(), 2);
            let Some(JournalUse::GapAccepted { gaps, .. }) = journal else {
                panic!("{journal:?}");
            };
            assert_eq!(gaps.len(), 1);
            let text = WritePlan {
                target: "prod".into(),
                source: restored.source.clone(),
                plan: Plan::default(),
                read_failed: false,
            }
            .to_text();
            assert!(text.contains(" alone: the journal has gaps between the snapshot and 2026-11-26T10:35:00Z, accepted with --allow-gap\n  gap: 2026-11-26T10:30:00Z to"), "{text}");

            // A gap recorded inside a segment counts too.
            let mut gappy = segment(T1 + 15 * MINUTE, T1 + 25 * MINUTE, vec![]);
            gappy.gaps.push(crate::model::stream::Gap {
                shard: Some("shard-2".into()),
                from_millis: T1 + 16 * MINUTE,
                to_millis: T1 + 17 * MINUTE,
                reason: "the checkpoint is older than the stream's trim horizon".into(),
            });
            store.put_segment("prod", &gappy).await.unwrap();
            let err = restore_source(&store, "prod", &at, false)
                .await
                .unwrap_err();
            assert!(
                err.message.contains("(shard shard-2): the checkpoint"),
                "{err}"
            );
            assert!(err.message.contains("has 1 gap(s)"), "{err}");
            // Before it, the journal is whole.
            assert!(
                restore_source(&store, "prod", &Pick::At(rfc(T1 + 15 * MINUTE)), false)
                    .await
                    .is_ok()
            );
        }

        #[tokio::test]
        async fn without_a_journal_or_with_an_id_the_snapshot_is_restored_as_it_is() {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::Local {
                dir: dir.path().to_path_buf(),
            };
            let snapshot = Snapshot::new("prod", "r", "t", vec![saved("a", 1)], T1);
            store.put(&snapshot).await.unwrap();
            let restored = restore_source(&store, "prod", &Pick::At(rfc(T1 + 60 * MINUTE)), false)
                .await
                .unwrap();
            assert_eq!(restored.state, snapshot);
            assert!(matches!(
                restored.source,
                Source::Snapshot { journal: None, .. }
            ));
            let dir = tempfile::tempdir().unwrap();
            let store = store_with_journal(dir.path()).await;
            let id = store.list("prod").await.unwrap()[0].id.as_string();
            let restored = restore_source(&store, "prod", &Pick::Id(id), false)
                .await
                .unwrap();
            assert!(matches!(
                restored.source,
                Source::Snapshot { journal: None, .. }
            ));
            assert_eq!(names_of(&restored.state).len(), 3);
        }
    }

    mod history {
        use super::at_an_instant::{T1, change, segment};
        use super::*;
        use crate::model::record::RecordRules;
        use crate::model::stream::{Gap, StreamEvent::*};
        use serde_json::json;

        const MINUTE: i64 = 60_000;

        fn web(version: u32, config: Value) -> Item {
            [
                ("name".to_string(), AttrValue::S("web-1".into())),
                ("version".to_string(), AttrValue::N(version.to_string())),
                (
                    "updated_at".to_string(),
                    AttrValue::S(format!("2026-11-26T10:0{version}:00Z")),
                ),
                ("config".to_string(), from_json(&config)),
            ]
            .into_iter()
            .collect()
        }

        fn internal() -> Value {
            json!({"name": "web-1", "scheme": "internal"})
        }

        fn snapshot_of(items: Vec<Item>, millis: i64) -> Snapshot {
            Snapshot::new(
                "prod",
                "us-east-1",
                "lb-state",
                items
                    .into_iter()
                    .map(|item| SnapshotItem {
                        item,
                        live_arn: None,
                    })
                    .collect(),
                millis,
            )
        }

        async fn store(dir: &std::path::Path) -> Store {
            let store = Store::Local {
                dir: dir.to_path_buf(),
            };
            let v1 = web(1, internal());
            let v2 = web(
                2,
                json!({"name": "web-1", "scheme": "internet-facing", "tags": {"team": "web"}}),
            );
            let v3 = web(3, json!("broken"));
            let v4 = web(4, internal());
            let other = super::at_an_instant::versioned("other", 1);
            for (items, millis) in [
                (vec![v1.clone(), other.clone()], T1),
                // Unchanged: collapsed.
                (vec![v1.clone(), other.clone()], T1 + MINUTE),
                // Read before the change of its second landed: collapsed.
                (vec![v1.clone(), other.clone()], T1 + 2 * MINUTE + 300),
                // After the removal: collapsed.
                (vec![other.clone()], T1 + 5 * MINUTE),
            ] {
                store.put(&snapshot_of(items, millis)).await.unwrap();
            }
            let mut journal = segment(
                T1 + MINUTE,
                T1 + 10 * MINUTE,
                vec![
                    change(
                        1,
                        T1 + 2 * MINUTE,
                        Modify,
                        Some(v1.clone()),
                        Some(v2.clone()),
                    ),
                    change(2, T1 + 2 * MINUTE, Modify, Some(other.clone()), Some(other)),
                    change(
                        3,
                        T1 + 3 * MINUTE,
                        Modify,
                        Some(v2.clone()),
                        Some(v3.clone()),
                    ),
                    change(4, T1 + 4 * MINUTE, Remove, Some(v3), None),
                    // Read twice.
                    change(
                        4,
                        T1 + 4 * MINUTE,
                        Remove,
                        Some(web(3, json!("broken"))),
                        None,
                    ),
                    change(5, T1 + 6 * MINUTE, Insert, None, Some(v4)),
                ],
            );
            journal.gaps.push(Gap {
                shard: None,
                from_millis: T1 + 7 * MINUTE,
                to_millis: T1 + 8 * MINUTE,
                reason: "a shard was not read".into(),
            });
            store.put_segment("prod", &journal).await.unwrap();
            store
        }

        #[tokio::test]
        async fn a_records_versions_come_from_snapshots_and_the_journal_with_their_changes() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path()).await;
            let history = history_from(&store, "prod", "web-1", &RecordRules::default(), true)
                .await
                .unwrap();
            /// Time, event, version, present, valid.
            type Line<'a> = (&'a str, &'a str, Option<&'a str>, bool, Option<bool>);
            let summary: Vec<Line<'_>> = history
                .versions
                .iter()
                .map(|v| {
                    (
                        v.time.as_str(),
                        v.event,
                        v.version.as_deref(),
                        v.present,
                        v.valid,
                    )
                })
                .collect();
            assert_eq!(
                summary,
                vec![
                    (
                        "2026-11-26T10:15:00Z",
                        "snapshot",
                        Some("1"),
                        true,
                        Some(true)
                    ),
                    (
                        "2026-11-26T10:17:00Z",
                        "MODIFY",
                        Some("2"),
                        true,
                        Some(true)
                    ),
                    (
                        "2026-11-26T10:18:00Z",
                        "MODIFY",
                        Some("3"),
                        true,
                        Some(false)
                    ),
                    ("2026-11-26T10:19:00Z", "REMOVE", None, false, None),
                    (
                        "2026-11-26T10:21:00Z",
                        "INSERT",
                        Some("4"),
                        true,
                        Some(true)
                    ),
                ]
            );
            let v = &history.versions;
            assert!(
                v[0].source.starts_with("20261126T101500000Z-2r-"),
                "{}",
                v[0].source
            );
            assert!(
                v[1].source
                    .starts_with("20261126T101600000Z-20261126T102500000Z-20261126T102500000Z-6r-"),
                "{}",
                v[1].source
            );
            assert_eq!(v[0].changes.len(), 1);
            assert_eq!(v[0].changes[0].path, "");
            assert_eq!(v[0].changes[0].from, Value::Null);
            assert_eq!(v[0].changes[0].to["scheme"], "internal");
            assert_eq!(
                v[1].changes,
                vec![
                    VersionChange {
                        path: "/scheme".into(),
                        from: json!("internal"),
                        to: json!("internet-facing"),
                    },
                    VersionChange {
                        path: "/tags/team".into(),
                        from: Value::Null,
                        to: json!("web"),
                    },
                ]
            );
            assert_eq!(v[1].updated_at.as_deref(), Some("2026-11-26T10:02:00Z"));
            assert!(v[2].reason.is_some());
            assert_eq!(v[2].changes[0].to, Value::Null);
            assert!(v[3].changes.is_empty());

            let doc: Value = serde_json::from_str(&history.stdout()).unwrap();
            assert_eq!(doc["target"], "prod");
            assert_eq!(doc["name"], "web-1");
            assert_eq!(
                doc["versions"][1]["changes"][0],
                json!({"path": "/scheme", "from": "internal", "to": "internet-facing"})
            );
            assert_eq!(doc["versions"][3]["valid"], Value::Null);
            assert_eq!(
                doc["gaps"],
                json!([{"from": "2026-11-26T10:22:00Z", "to": "2026-11-26T10:23:00Z",
                        "shard": null, "reason": "a shard was not read"}])
            );
            assert_eq!(history.exit_code(), exit::OK);

            let table = History {
                json: false,
                ..history
            }
            .stdout();
            let lines: Vec<&str> = table.lines().collect();
            assert_eq!(lines[0], "history of web-1 in target prod");
            assert!(lines[2].starts_with("2026-11-26T10:15:00Z      snapshot        1  2026-11-26T10:01:00Z      20261126T101500000Z-2r-"), "{table}");
            assert_eq!(lines[3], "    (whole record): now a valid document");
            assert_eq!(lines[5], "    /scheme: \"internal\" -> \"internet-facing\"");
            assert!(table.contains("    invalid: "), "{table}");
            assert!(table.contains("REMOVE          -  -  "), "{table}");
            assert!(table.ends_with(
                "gap: 2026-11-26T10:22:00Z to 2026-11-26T10:23:00Z: a shard was not read; changes in it may be missing\n"
            ), "{table}");
        }

        #[tokio::test]
        async fn a_name_never_seen_is_an_error() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path()).await;
            let err = history_from(&store, "prod", "web-9", &RecordRules::default(), false)
                .await
                .unwrap_err();
            assert_eq!(err.exit_code(), exit::ERROR);
            assert!(
                err.message.starts_with(
                    "no snapshot or journal record of target prod holds \"web-9\" (4 snapshot(s) and 1 journal segment(s) read)"
                ),
                "{err}"
            );
            // Another name the store holds is found.
            let only_journal =
                history_from(&store, "prod", "other", &RecordRules::default(), false)
                    .await
                    .unwrap();
            assert_eq!(only_journal.versions[0].event, "snapshot");
        }
    }

    #[tokio::test]
    async fn every_snapshot_in_retention_is_consulted_not_only_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local {
            dir: dir.path().to_path_buf(),
        };
        let before = Snapshot::new("t", "r", "s", vec![item("a"), item("lost")], 1_000);
        let after = Snapshot::new("t", "r", "s", vec![item("a")], 2_000);
        store.put(&before).await.unwrap();
        store.put(&after).await.unwrap();
        // A record written after the last snapshot and removed since: the journal alone holds it.
        let removed = crate::model::stream::StreamRecord {
            shard: "s1".into(),
            sequence: "100".into(),
            event: crate::model::stream::StreamEvent::Remove,
            created_millis: 3_000,
            keys: [("name".to_string(), AttrValue::S("journaled".into()))].into(),
            old_image: Some(item("journaled").item),
            new_image: None,
        };
        let segment = crate::recovery::journal::Segment::new(
            "t",
            "r",
            "s",
            "arn",
            2_500,
            3_500,
            Default::default(),
            Vec::new(),
            vec![removed],
        );
        store.put_segment("t", &segment).await.unwrap();
        let holders = snapshot_holders(&store, "t").await.unwrap();
        // The record lost before the newest snapshot is still found, in the older one.
        assert!(
            holders["lost"].contains(&before.id().as_string()),
            "{holders:?}"
        );
        assert!(holders["a"].contains(&after.id().as_string()));
        assert!(
            holders["journaled"].starts_with("the journal holds its record (REMOVE at"),
            "{holders:?}"
        );
        assert!(holders["journaled"].contains("restore --target t --at TIME"));
        assert_eq!(holders.len(), 3);
    }

    #[tokio::test]
    async fn a_snapshot_that_cannot_be_read_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local {
            dir: dir.path().to_path_buf(),
        };
        let entry = store
            .put(&Snapshot::new("t", "r", "s", vec![item("a")], 1_000))
            .await
            .unwrap();
        std::fs::write(&entry.location, b"not a snapshot").unwrap();
        assert!(snapshot_holders(&store, "t").await.is_err());
    }
}
