//! The guard's commands: `status`, `pause`, `resume`, `init` (docs/architecture.md#commands, docs/architecture.md#guard).

pub mod check;
pub mod output;
pub mod recovery;

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::app::commands::output::{CommandError, Printed, Progress};
use crate::app::cycle::read_scoped_presence;
use crate::app::reader::{Items, Reader};
use crate::aws::{AwsError, Clients};
use crate::control::enforce::{self, Enforcer};
use crate::control::{
    self, Claim, ControlItem, ControlStore, Event, Loaded, PauserRecord, UpdateError,
};
use crate::model::record::RecordCache;
use crate::reconcile::guard::{Action, Command};
use crate::reconcile::report::exit;
use crate::runtime::config::{Config, TargetConfig};
use crate::runtime::telemetry;

/// Attempts of a command against writers racing it on the control item.
const ATTEMPTS: usize = 5;

/// Who runs a command: `LBRECON_ACTOR`, else `operator:$USER`.
pub fn actor() -> String {
    if let Ok(actor) = std::env::var("LBRECON_ACTOR")
        && !actor.trim().is_empty()
    {
        return actor;
    }
    match std::env::var("USER") {
        Ok(user) if !user.is_empty() => format!("operator:{user}"),
        _ => "operator".to_string(),
    }
}

/// One target's line of `status --format json`.
#[derive(Debug, Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub paused: bool,
    pub since: Option<String>,
    pub reason: Option<String>,
    pub by: Option<String>,
    pub missing: Vec<String>,
    pub quarantine: Vec<String>,
    pub paused_by_pausers: BTreeMap<String, PauserRecord>,
    /// Who runs the pausers right now, while a claim is held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The state table's protection, read now.
    pub protection: ProtectionStatus,
    /// Why a protection is off or unknown, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub protection_notes: Vec<String>,
}

/// The state table's protections in `status`: `true` in force, `false` not, `None` (JSON
/// `null`) unknown because it could not be read: never taken as off.
#[derive(Debug, Default, Serialize)]
pub struct ProtectionStatus {
    pub pitr: Option<bool>,
    pub deletion_protection: Option<bool>,
    pub delete_policy: Option<bool>,
}

/// Reads the state table's protection for `status`, with a note for each kind that is off or
/// unknown.
async fn read_protection(
    target: &TargetConfig,
    clients: &Clients,
) -> (ProtectionStatus, Vec<String>) {
    let read = clients.dynamodb.protection(&target.state_table).await;
    let mut notes = Vec::new();
    let mut known = [None; 3];
    for ((kind, reading), known) in read.kinds().into_iter().zip(&mut known) {
        match reading {
            Ok((on, detail)) => {
                if !on {
                    notes.push(format!("{kind}: {detail}"));
                }
                *known = Some(on);
            }
            Err(err) => notes.push(format!("{kind}: unknown: {err}")),
        }
    }
    let [pitr, deletion_protection, delete_policy] = known;
    let status = ProtectionStatus {
        pitr,
        deletion_protection,
        delete_policy,
    };
    (status, notes)
}

fn store<'a>(target: &'a TargetConfig, clients: &'a Clients) -> ControlStore<'a> {
    ControlStore {
        lease: None,
        dynamodb: &clients.dynamodb,
        table: &target.control_table,
        target: &target.name,
    }
}

fn reader(clients: &Clients, config: &Config) -> Reader {
    Reader::new(clients, config.aws.concurrency, (&config.records).into())
}

/// What `lbrecon status` found, one line per target, in the config's order.
#[derive(Debug)]
pub struct StatusReport {
    pub targets: Vec<TargetStatus>,
    /// `--format json`, else the table.
    pub json: bool,
}

impl StatusReport {
    /// The JSON document: `{"targets": [...]}`, pretty-printed, with a newline.
    pub fn to_json(&self) -> String {
        let doc = serde_json::json!({ "targets": self.targets });
        format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serializes")
        )
    }

    /// The table for people, a claim's staleness judged at `now` (Unix seconds).
    pub fn to_table(&self, now: i64) -> String {
        self.targets
            .iter()
            .map(|line| status_table(line, now))
            .collect()
    }
}

impl Printed for StatusReport {
    fn stdout(&self) -> String {
        if self.json {
            self.to_json()
        } else {
            self.to_table(crate::model::clock::now_unix())
        }
    }

    /// 1 when a target's control item could not be read, else 0.
    fn exit_code(&self) -> i32 {
        if self.targets.iter().any(|line| line.error.is_some()) {
            exit::ERROR
        } else {
            exit::OK
        }
    }
}

/// `lbrecon status`.
pub async fn status(config: &Config, json: bool) -> StatusReport {
    let mut lines = Vec::new();
    let budgets = crate::runtime::budget::Budgets::default();
    for target in &config.targets {
        let clients = Clients::connect(target, &config.aws, &budgets).await;
        let mut line = TargetStatus::new(&target.name);
        (line.protection, line.protection_notes) = read_protection(target, &clients).await;
        match store(target, &clients).load().await {
            Ok(Loaded::Item(item)) => {
                line.paused = item.paused;
                line.since = item.since;
                line.reason = item.reason;
                line.by = item.by;
                line.missing = item.missing;
                line.quarantine = item.quarantine;
                line.paused_by_pausers = item.pausers;
                line.claim = item.claim;
            }
            Ok(Loaded::NoTable) => line.reason = Some(control::NO_CONTROL_TABLE.to_string()),
            Err(err) => {
                line.error = Some(format!(
                    "reading control table {}: {err}",
                    target.control_table
                ));
            }
        }
        lines.push(line);
    }
    StatusReport {
        targets: lines,
        json,
    }
}

impl TargetStatus {
    /// A target not paused, with nothing read yet.
    pub fn new(target: &str) -> Self {
        TargetStatus {
            target: target.to_string(),
            paused: false,
            since: None,
            reason: None,
            by: None,
            missing: vec![],
            quarantine: vec![],
            paused_by_pausers: BTreeMap::new(),
            claim: None,
            error: None,
            protection: ProtectionStatus::default(),
            protection_notes: vec![],
        }
    }
}

fn status_table(line: &TargetStatus, now: i64) -> String {
    let mut out = String::new();
    let state = if line.paused { "PAUSED" } else { "not paused" };
    out.push_str(&format!("target {}: {state}\n", line.target));
    if let Some(error) = &line.error {
        out.push_str(&format!("  error: {error}\n"));
    }
    for (label, value) in [
        ("since", &line.since),
        ("by", &line.by),
        ("reason", &line.reason),
    ] {
        if let Some(value) = value {
            out.push_str(&format!("  {label}: {value}\n"));
        }
    }
    if !line.missing.is_empty() {
        out.push_str(&format!("  missing: {}\n", line.missing.join(", ")));
    }
    if !line.quarantine.is_empty() {
        out.push_str(&format!("  quarantine: {}\n", line.quarantine.join(", ")));
    }
    let shown = |on: Option<bool>| match on {
        Some(true) => "on",
        Some(false) => "OFF",
        None => "unknown",
    };
    out.push_str(&format!(
        "  state table protection: pitr {}, deletion_protection {}, delete_policy {}\n",
        shown(line.protection.pitr),
        shown(line.protection.deletion_protection),
        shown(line.protection.delete_policy)
    ));
    for note in &line.protection_notes {
        out.push_str(&format!("    {note}\n"));
    }
    if let Some(claim) = &line.claim {
        let stale = if claim.until < now {
            " (stale: its holder stopped; the next actor takes it over)"
        } else {
            ""
        };
        out.push_str(&format!(
            "  pausers claimed by {} ({}) since {}, stale at {}{stale}\n",
            claim.by,
            claim.purpose,
            claim.since,
            crate::model::clock::rfc3339(claim.until).unwrap_or_else(|| claim.until.to_string())
        ));
    }
    for (key, record) in &line.paused_by_pausers {
        out.push_str(&format!("  pauser {key}: {}\n", pauser_summary(record)));
        for (group, processes) in record.suspended.iter().filter(|(_, p)| !p.is_empty()) {
            out.push_str(&format!(
                "    {group}: suspended {}\n",
                processes.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        for (group, processes) in &record.suspending {
            out.push_str(&format!(
                "    {group}: suspending {} (written ahead, not confirmed)\n",
                processes.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(error) = &record.error {
            out.push_str(&format!("    error: {error}\n"));
        }
    }
    out
}

async fn load_item(store: &ControlStore<'_>) -> Result<ControlItem, String> {
    match store.load().await {
        Ok(Loaded::Item(item)) => Ok(*item),
        Ok(Loaded::NoTable) => Err(UpdateError::NoTable.message(store)),
        Err(err) => Err(UpdateError::Aws(err).message(store)),
    }
}

/// Why `verb` (`pausing`, `resuming`) gave up on a target's control item; exit 1.
fn gave_up(verb: &str, store: &ControlStore<'_>, error: UpdateError) -> CommandError {
    CommandError::error(format!("{verb} {}: {}", store.target, error.message(store)))
}

/// How often a command looks again at a claim it waits for.
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Reads the control item once no other actor's claim on the pausers blocks it: waits while a
/// claim is held (saying so once, through `progress`), and goes on once it is released or
/// stale (older than `guard.claim_timeout`, then taken over).
async fn load_unclaimed(
    store: &ControlStore<'_>,
    enforcer: &Enforcer<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ControlItem, String> {
    let mut said = false;
    loop {
        let control = load_item(store).await?;
        let Some(claim) = enforcer.blocking_claim(&control) else {
            return Ok(control);
        };
        if !said {
            progress(Progress::Waiting {
                target: store.target.to_string(),
                claim: claim.clone(),
            });
            said = true;
        }
        tokio::time::sleep(CLAIM_POLL).await;
    }
}

/// How `lbrecon pause` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PauseOutcome {
    /// Already paused, by hand or by an earlier command: nothing done.
    AlreadyPaused {
        target: String,
        since: Option<String>,
        by: Option<String>,
        reason: Option<String>,
    },
    /// The guard's pause became the operator's `by`.
    TakenOver { target: String, by: String },
    /// Resumed while this pause ran; what it did was undone.
    Reverted { target: String },
    /// Paused, with what each pauser did.
    Paused {
        target: String,
        pausers: BTreeMap<String, PauserRecord>,
    },
}

impl Printed for PauseOutcome {
    fn stdout(&self) -> String {
        match self {
            PauseOutcome::AlreadyPaused {
                target,
                since,
                by,
                reason,
            } => format!(
                "target {target} is already paused since {} by {}: {}\n",
                since.as_deref().unwrap_or("?"),
                by.as_deref().unwrap_or("?"),
                reason.as_deref().unwrap_or("")
            ),
            PauseOutcome::TakenOver { target, by } => format!(
                "target {target} was paused by lbrecon; the pause is now yours ({by}): it will not resume by itself\n"
            ),
            PauseOutcome::Reverted { .. } => String::new(),
            PauseOutcome::Paused { target, pausers } => pausers_text(target, pausers, "paused"),
        }
    }

    fn stderr(&self) -> String {
        match self {
            PauseOutcome::Reverted { target } => format!(
                "lbrecon: target {target} was resumed while this pause ran; what it did was undone. Run pause again if it is still needed\n"
            ),
            _ => String::new(),
        }
    }

    /// 1 when reverted or a pauser failed, else 0.
    fn exit_code(&self) -> i32 {
        match self {
            PauseOutcome::AlreadyPaused { .. } | PauseOutcome::TakenOver { .. } => exit::OK,
            PauseOutcome::Reverted { .. } => exit::ERROR,
            PauseOutcome::Paused { pausers, .. } => {
                if pausers.values().any(|record| record.error.is_some()) {
                    exit::ERROR
                } else {
                    exit::OK
                }
            }
        }
    }
}

/// `lbrecon pause --target T --reason TEXT`: pauses by hand, with every pauser. Over a pause the
/// guard made, the pause becomes the operator's: it no longer resumes by itself. Waiting for
/// another actor's claim is said through `progress` as it starts.
pub async fn pause(
    config: &Config,
    target: &TargetConfig,
    reason: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<PauseOutcome, CommandError> {
    let clients = Clients::connect(
        target,
        &config.aws,
        &crate::runtime::budget::Budgets::default(),
    )
    .await;
    let store = store(target, &clients);
    let by = actor();
    let reader = reader(&clients, config);
    let pausing =
        |message: String| CommandError::error(format!("pausing {}: {message}", target.name));
    // The control item first: whether the state table was seen (a deleted one is every record
    // missing), and the names the guard keeps in scope.
    let first = load_item(&store).await.map_err(pausing)?;
    let presence = read_scoped_presence(
        target,
        &reader,
        Some(&first.view()),
        &mut RecordCache::none(),
        Items::Dropped,
    )
    .await;
    let observation = presence
        .complete
        .then(|| presence.observation(crate::model::clock::now_unix()));
    let enforcer = Enforcer {
        target: &target.name,
        config: &config.guard,
        store,
        autoscaling: &clients.autoscaling,
    };
    let command = Command::Pause { by: by.clone() };
    for _ in 0..ATTEMPTS {
        let mut control = load_unclaimed(&store, &enforcer, progress)
            .await
            .map_err(pausing)?;
        let step = enforcer.step(&control, observation.as_ref(), None, &command);
        let mut reverted = false;
        let result = match step.action {
            Action::Pause => {
                let scope = enforce::scope(&presence.view(), &step.missing);
                enforcer
                    .pause(&mut control, reason, &by, &step.missing, &scope, "pause")
                    .await
                    .map(|finished| {
                        reverted = finished == enforce::Finished::Reverted;
                    })
            }
            Action::TakeOver => enforcer.take_over(&mut control, reason, &by).await,
            _ => {
                return Ok(PauseOutcome::AlreadyPaused {
                    target: target.name.clone(),
                    since: control.since,
                    by: control.by,
                    reason: control.reason,
                });
            }
        };
        match result {
            Ok(()) if step.action == Action::TakeOver => {
                return Ok(PauseOutcome::TakenOver {
                    target: target.name.clone(),
                    by,
                });
            }
            Ok(()) if reverted => {
                return Ok(PauseOutcome::Reverted {
                    target: target.name.clone(),
                });
            }
            Ok(()) => {
                return Ok(PauseOutcome::Paused {
                    target: target.name.clone(),
                    pausers: control.pausers,
                });
            }
            Err(err) if err.is_condition_failed() => continue,
            Err(err) => return Err(gave_up("pausing", &store, UpdateError::Aws(err))),
        }
    }
    Err(gave_up("pausing", &store, UpdateError::Contended))
}

/// A pauser's status, with what it did: `done (suspended 3 groups)`.
fn pauser_summary(record: &PauserRecord) -> String {
    match &record.detail {
        Some(detail) => format!("{} ({detail})", record.status.as_str()),
        None => record.status.as_str().to_string(),
    }
}

/// `target T paused`, then each pauser's status and error.
fn pausers_text(target: &str, pausers: &BTreeMap<String, PauserRecord>, what: &str) -> String {
    let mut out = format!("target {target} {what}\n");
    for (key, record) in pausers {
        out.push_str(&format!("  {key}: {}\n", pauser_summary(record)));
        if let Some(error) = &record.error {
            out.push_str(&format!("    error: {error}\n"));
        }
    }
    out
}

/// How `lbrecon resume` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumeOutcome {
    NotPaused {
        target: String,
    },
    /// The records could not be read in full, so that they are back is not known.
    Unverified {
        target: String,
        error: String,
    },
    /// Load balancers still without a valid record, and no `--force`.
    StillMissing {
        target: String,
        missing: Vec<String>,
    },
    /// Resumed; `acknowledged` are missing ones `--force` acknowledged.
    Resumed {
        target: String,
        acknowledged: Vec<String>,
    },
    /// Still paused: these could not be resumed.
    StillPaused {
        target: String,
        errors: Vec<String>,
    },
}

impl Printed for ResumeOutcome {
    fn stdout(&self) -> String {
        match self {
            ResumeOutcome::NotPaused { target } => {
                format!("target {target} is not paused; nothing to resume\n")
            }
            ResumeOutcome::Resumed {
                target,
                acknowledged,
            } => {
                let mut out = format!("target {target} resumed\n");
                if !acknowledged.is_empty() {
                    out.push_str(&format!(
                        "  acknowledged (no new trip until their records are back): {}\n",
                        acknowledged.join(", ")
                    ));
                }
                out
            }
            _ => String::new(),
        }
    }

    fn stderr(&self) -> String {
        match self {
            ResumeOutcome::Unverified { target, error } => format!(
                "lbrecon: cannot check that the records of {target} are back ({error}); try again, or resume with --force\n"
            ),
            ResumeOutcome::StillMissing { target, missing } => format!(
                "lbrecon: {} load balancer(s) of {target} still have no valid record: {}. Restore them \
                 (`lbrecon restore` or `lbrecon adopt`), or resume with --force to acknowledge them\n",
                missing.len(),
                missing.join(", ")
            ),
            ResumeOutcome::StillPaused { target, errors } => format!(
                "lbrecon: target {target} is still paused; these could not be resumed: {}\n",
                errors.join("; ")
            ),
            _ => String::new(),
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            ResumeOutcome::NotPaused { .. } | ResumeOutcome::Resumed { .. } => exit::OK,
            ResumeOutcome::Unverified { .. }
            | ResumeOutcome::StillMissing { .. }
            | ResumeOutcome::StillPaused { .. } => exit::ERROR,
        }
    }
}

/// `lbrecon resume --target T --reason TEXT [--force]`. Waiting for another actor's claim is
/// said through `progress` as it starts.
pub async fn resume(
    config: &Config,
    target: &TargetConfig,
    reason: &str,
    force: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<ResumeOutcome, CommandError> {
    let clients = Clients::connect(
        target,
        &config.aws,
        &crate::runtime::budget::Budgets::default(),
    )
    .await;
    let store = store(target, &clients);
    let by = actor();
    let reader = reader(&clients, config);
    let enforcer = Enforcer {
        target: &target.name,
        config: &config.guard,
        store,
        autoscaling: &clients.autoscaling,
    };
    let first = load_item(&store).await.map_err(CommandError::error)?;
    let presence = read_scoped_presence(
        target,
        &reader,
        Some(&first.view()),
        &mut RecordCache::none(),
        Items::Dropped,
    )
    .await;
    let observation = presence
        .complete
        .then(|| presence.observation(crate::model::clock::now_unix()));
    let command = Command::Resume { force };
    let name = || target.name.clone();
    for _ in 0..ATTEMPTS {
        let mut control = load_unclaimed(&store, &enforcer, progress)
            .await
            .map_err(|message| {
                CommandError::error(format!("resuming {}: {message}", target.name))
            })?;
        let step = enforcer.step(&control, observation.as_ref(), None, &command);
        let (acknowledged, forced) = match &step.action {
            Action::NotPaused => return Ok(ResumeOutcome::NotPaused { target: name() }),
            Action::RefuseResume if observation.is_none() => {
                return Ok(ResumeOutcome::Unverified {
                    target: name(),
                    error: presence
                        .error
                        .as_ref()
                        .map(AwsError::to_string)
                        .unwrap_or_default(),
                });
            }
            Action::RefuseResume => {
                return Ok(ResumeOutcome::StillMissing {
                    target: name(),
                    missing: step.missing.iter().cloned().collect(),
                });
            }
            Action::Resume {
                acknowledged,
                forced,
            } => (acknowledged.clone(), *forced),
            other => unreachable!("resume is never answered with {other:?}"),
        };
        let detail = if forced && !acknowledged.is_empty() {
            "forced while records were missing; those are acknowledged"
        } else {
            "resumed everything lbrecon paused"
        };
        match enforcer
            .resume(&mut control, reason, &by, &step.state, "resume", detail)
            .await
        {
            Ok(errors) if errors.is_empty() => {
                return Ok(ResumeOutcome::Resumed {
                    target: name(),
                    acknowledged: acknowledged.iter().cloned().collect(),
                });
            }
            Ok(errors) => {
                return Ok(ResumeOutcome::StillPaused {
                    target: name(),
                    errors,
                });
            }
            Err(err) if err.is_condition_failed() => continue,
            Err(err) => return Err(gave_up("resuming", &store, UpdateError::Aws(err))),
        }
    }
    Err(gave_up("resuming", &store, UpdateError::Contended))
}

/// What `lbrecon init` found or did with one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOutcome {
    Exists,
    /// Missing, and no `--approve`: it would be created.
    WouldCreate,
    Created,
}

/// One table `lbrecon init` looked at: `role` is `control` or `lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitTable {
    pub role: &'static str,
    pub table: String,
    pub key: &'static str,
    pub region: String,
    pub outcome: TableOutcome,
}

/// How `lbrecon init` ended: the tables it looked at, in order, and the error it stopped at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOutcome {
    pub tables: Vec<InitTable>,
    /// What the state table's stream means for lbrecon, and how its owner enables one.
    pub stream: Option<String>,
    pub error: Option<CommandError>,
}

impl Printed for InitOutcome {
    fn stdout(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            let (role, table, region) = (t.role, &t.table, &t.region);
            out.push_str(&match t.outcome {
                TableOutcome::Exists => format!("{role} table {table} exists in {region}\n"),
                TableOutcome::WouldCreate => format!(
                    "would create the {role} table {table} in {region} (partition key {} (S), on-demand, deletion protection on); run again with --approve TICKET\n",
                    t.key
                ),
                TableOutcome::Created => format!("created the {role} table {table} in {region}\n"),
            });
        }
        if let Some(stream) = &self.stream {
            out.push_str(stream);
            out.push('\n');
        }
        out
    }

    fn stderr(&self) -> String {
        self.error.as_ref().map(Printed::stderr).unwrap_or_default()
    }

    fn exit_code(&self) -> i32 {
        self.error.as_ref().map_or(exit::OK, Printed::exit_code)
    }
}

/// What `init` says of the state table's stream (docs/architecture.md#stream): lbrecon never
/// changes the state table, so enabling one is for its owner.
async fn stream_advice(target: &TargetConfig, clients: &Clients) -> String {
    let table = &target.state_table;
    let enable = format!(
        "its owner can enable one with `aws dynamodb update-table --table-name {table} --region {} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES` (lbrecon never changes the state table)",
        target.region
    );
    if target.stream == crate::runtime::config::StreamMode::Off {
        return "the state table's stream is not read (targets[].stream = \"off\"): losses are seen by the cycle alone".to_string();
    }
    match clients.dynamodb.stream_of(table).await {
        Ok(Some((_, view))) if view == "NEW_AND_OLD_IMAGES" => format!(
            "the state table {table} has a stream (NEW_AND_OLD_IMAGES): the daemon tails it, pauses a mass loss within seconds and journals every change"
        ),
        Ok(Some((_, view))) => format!(
            "the state table {table} has a stream of view type {view}; lbrecon needs NEW_AND_OLD_IMAGES, so the daemon does not read it. A stream's view type cannot be changed: {enable}, after disabling this one"
        ),
        Ok(None) => format!(
            "the state table {table} has no stream: losses are seen once a cycle, and restore --at gives the snapshot before the instant; {enable}"
        ),
        Err(err) => format!("cannot tell whether the state table {table} has a stream: {err}"),
    }
}

/// `lbrecon init --target T [--approve TICKET]`: creates the control table (and the lease
/// table, when configured) if missing. Without `--approve` it only says what it would do.
pub async fn init(config: &Config, target: &TargetConfig, approve: Option<&str>) -> InitOutcome {
    let clients = Clients::connect(
        target,
        &config.aws,
        &crate::runtime::budget::Budgets::default(),
    )
    .await;
    let mut tables = vec![(
        target.control_table.as_str(),
        control::KEY_ATTRIBUTE,
        "control",
    )];
    if let Some(election) = &config.leader_election {
        tables.push((election.table.as_str(), control::KEY_ATTRIBUTE, "lease"));
    }
    let by = actor();
    let mut done = InitOutcome {
        tables: vec![],
        stream: Some(stream_advice(target, &clients).await),
        error: None,
    };
    for (table, key, role) in tables {
        let seen = |outcome| InitTable {
            role,
            table: table.to_string(),
            key,
            region: target.region.clone(),
            outcome,
        };
        match clients.dynamodb.table_exists(table).await {
            Ok(true) => done.tables.push(seen(TableOutcome::Exists)),
            Ok(false) => match approve {
                None => done.tables.push(seen(TableOutcome::WouldCreate)),
                Some(ticket) => {
                    if let Err(err) = clients.dynamodb.create_table(table, key).await {
                        done.error = Some(CommandError::error(format!(
                            "creating table {table}: {err}"
                        )));
                        return done;
                    }
                    telemetry::audit(&target.name, "init", &by, ticket, &[]);
                    done.tables.push(seen(TableOutcome::Created));
                    if role == "control" {
                        let store = store(target, &clients);
                        let mut control = ControlItem::new(&target.name);
                        control.record(Event {
                            time: crate::model::clock::now_rfc3339(),
                            event: "init".into(),
                            by: by.clone(),
                            reason: Some(format!("approved: {ticket}")),
                            ..Default::default()
                        });
                        if let Err(err) = store.save(&mut control).await
                            && !err.is_condition_failed()
                        {
                            done.error = Some(CommandError::error(format!(
                                "writing the control item: {err}"
                            )));
                            return done;
                        }
                    }
                }
            },
            Err(err) => {
                done.error = Some(CommandError::error(format!(
                    "checking table {table}: {err}"
                )));
                return done;
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::PauserStatus;
    use crate::reconcile::guard::PauserKind;
    use serde_json::{Value, json};

    fn pauser(status: PauserStatus, detail: Option<&str>, error: Option<&str>) -> PauserRecord {
        let mut record = PauserRecord::planned(PauserKind::Autoscaling);
        record.status = status;
        record.detail = detail.map(str::to_string);
        record.error = error.map(str::to_string);
        record
    }

    fn paused_line() -> TargetStatus {
        let mut line = TargetStatus::new("prod");
        line.paused = true;
        line.since = Some("2026-01-01T00:00:00Z".into());
        line.by = Some("operator:ann".into());
        line.reason = Some("records missing".into());
        line.missing = vec!["web-1".into(), "web-2".into()];
        line.quarantine = vec!["web-3".into()];
        line.protection = ProtectionStatus {
            pitr: Some(true),
            deletion_protection: Some(false),
            delete_policy: None,
        };
        line.protection_notes = vec![
            "deletion_protection: off".into(),
            "delete_policy: unknown: AccessDenied".into(),
        ];
        line.claim = Some(Claim {
            by: "lbrecon".into(),
            owner: "host:1".into(),
            purpose: "trip".into(),
            since: "2026-01-01T00:00:00Z".into(),
            until: 1_767_225_660,
        });
        let mut record = pauser(PauserStatus::Done, Some("suspended 1 group"), None);
        record
            .suspended
            .insert("asg-a".into(), ["Launch".into(), "Terminate".into()].into());
        record
            .suspending
            .insert("asg-b".into(), ["AZRebalance".into()].into());
        line.paused_by_pausers.insert("autoscaling".into(), record);
        line
    }

    #[test]
    fn the_status_table_shows_every_part_of_a_pause() {
        let report = StatusReport {
            targets: vec![paused_line(), TargetStatus::new("dev")],
            json: false,
        };
        // Before the claim's `until`: not stale.
        assert_eq!(
            report.to_table(1_767_225_600),
            "target prod: PAUSED\n\
             \x20 since: 2026-01-01T00:00:00Z\n\
             \x20 by: operator:ann\n\
             \x20 reason: records missing\n\
             \x20 missing: web-1, web-2\n\
             \x20 quarantine: web-3\n\
             \x20 state table protection: pitr on, deletion_protection OFF, delete_policy unknown\n\
             \x20   deletion_protection: off\n\
             \x20   delete_policy: unknown: AccessDenied\n\
             \x20 pausers claimed by lbrecon (trip) since 2026-01-01T00:00:00Z, stale at 2026-01-01T00:01:00Z\n\
             \x20 pauser autoscaling: done (suspended 1 group)\n\
             \x20   asg-a: suspended Launch, Terminate\n\
             \x20   asg-b: suspending AZRebalance (written ahead, not confirmed)\n\
             target dev: not paused\n\
             \x20 state table protection: pitr unknown, deletion_protection unknown, delete_policy unknown\n"
        );
        // After it: stale.
        assert!(
            report
                .to_table(1_767_225_661)
                .contains("stale at 2026-01-01T00:01:00Z (stale: its holder stopped; the next actor takes it over)\n")
        );
        assert_eq!(report.exit_code(), exit::OK);
    }

    #[test]
    fn a_target_whose_control_item_cannot_be_read_says_so_and_exits_1() {
        let mut line = TargetStatus::new("prod");
        line.error = Some("reading control table ctl: AccessDenied".into());
        let report = StatusReport {
            targets: vec![TargetStatus::new("dev"), line],
            json: false,
        };
        assert!(
            report.stdout().contains(
                "target prod: not paused\n  error: reading control table ctl: AccessDenied\n"
            ),
            "{}",
            report.stdout()
        );
        assert_eq!(report.stderr(), "");
        assert_eq!(report.exit_code(), exit::ERROR);
    }

    #[test]
    fn the_status_json_has_every_field_and_leaves_out_the_empty_optional_ones() {
        let report = StatusReport {
            targets: vec![TargetStatus::new("dev")],
            json: true,
        };
        let text = report.stdout();
        assert!(text.ends_with("}\n"), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({"targets": [{
                "target": "dev", "paused": false, "since": null, "reason": null, "by": null,
                "missing": [], "quarantine": [], "paused_by_pausers": {},
                "protection": {"pitr": null, "deletion_protection": null, "delete_policy": null}
            }]})
        );
        let paused = StatusReport {
            targets: vec![paused_line()],
            json: true,
        };
        let value: Value = serde_json::from_str(&paused.stdout()).unwrap();
        let line = &value["targets"][0];
        assert_eq!(line["claim"]["purpose"], "trip");
        assert_eq!(line["protection"]["deletion_protection"], false);
        assert_eq!(line["protection_notes"][0], "deletion_protection: off");
        assert_eq!(
            line["paused_by_pausers"]["autoscaling"]["suspended"]["asg-a"],
            json!(["Launch", "Terminate"])
        );
    }

    #[test]
    fn pause_outcomes_print_as_before_with_their_exit_codes() {
        let already = PauseOutcome::AlreadyPaused {
            target: "prod".into(),
            since: Some("2026-01-01T00:00:00Z".into()),
            by: None,
            reason: Some("maintenance".into()),
        };
        assert_eq!(
            already.stdout(),
            "target prod is already paused since 2026-01-01T00:00:00Z by ?: maintenance\n"
        );
        assert_eq!(already.exit_code(), exit::OK);

        let taken = PauseOutcome::TakenOver {
            target: "prod".into(),
            by: "operator:ann".into(),
        };
        assert_eq!(
            taken.stdout(),
            "target prod was paused by lbrecon; the pause is now yours (operator:ann): it will not resume by itself\n"
        );
        assert_eq!(taken.exit_code(), exit::OK);

        let reverted = PauseOutcome::Reverted {
            target: "prod".into(),
        };
        assert_eq!(reverted.stdout(), "");
        assert_eq!(
            reverted.stderr(),
            "lbrecon: target prod was resumed while this pause ran; what it did was undone. Run pause again if it is still needed\n"
        );
        assert_eq!(reverted.exit_code(), exit::ERROR);
    }

    #[test]
    fn a_pause_exits_1_when_a_pauser_failed() {
        let mut pausers = BTreeMap::new();
        pausers.insert(
            "autoscaling".to_string(),
            pauser(PauserStatus::Done, Some("suspended 2 groups"), None),
        );
        let done = PauseOutcome::Paused {
            target: "prod".into(),
            pausers: pausers.clone(),
        };
        assert_eq!(
            done.stdout(),
            "target prod paused\n  autoscaling: done (suspended 2 groups)\n"
        );
        assert_eq!(done.exit_code(), exit::OK);

        pausers.insert(
            "flag".to_string(),
            pauser(PauserStatus::Failed, None, Some("AccessDenied")),
        );
        let failed = PauseOutcome::Paused {
            target: "prod".into(),
            pausers,
        };
        assert_eq!(
            failed.stdout(),
            "target prod paused\n  autoscaling: done (suspended 2 groups)\n  flag: failed\n    error: AccessDenied\n"
        );
        assert_eq!(failed.stderr(), "");
        assert_eq!(failed.exit_code(), exit::ERROR);
    }

    #[test]
    fn resume_outcomes_print_as_before_with_their_exit_codes() {
        let target = || "prod".to_string();
        let cases = [
            (
                ResumeOutcome::NotPaused { target: target() },
                "target prod is not paused; nothing to resume\n",
                "",
                exit::OK,
            ),
            (
                ResumeOutcome::Resumed {
                    target: target(),
                    acknowledged: vec![],
                },
                "target prod resumed\n",
                "",
                exit::OK,
            ),
            (
                ResumeOutcome::Resumed {
                    target: target(),
                    acknowledged: vec!["web-1".into(), "web-2".into()],
                },
                "target prod resumed\n  acknowledged (no new trip until their records are back): web-1, web-2\n",
                "",
                exit::OK,
            ),
            (
                ResumeOutcome::Unverified {
                    target: target(),
                    error: "Scan failed: throttled".into(),
                },
                "",
                "lbrecon: cannot check that the records of prod are back (Scan failed: throttled); try again, or resume with --force\n",
                exit::ERROR,
            ),
            (
                ResumeOutcome::StillMissing {
                    target: target(),
                    missing: vec!["web-1".into(), "web-2".into()],
                },
                "",
                "lbrecon: 2 load balancer(s) of prod still have no valid record: web-1, web-2. Restore them \
                 (`lbrecon restore` or `lbrecon adopt`), or resume with --force to acknowledge them\n",
                exit::ERROR,
            ),
            (
                ResumeOutcome::StillPaused {
                    target: target(),
                    errors: vec!["asg-a: denied".into(), "flag: denied".into()],
                },
                "",
                "lbrecon: target prod is still paused; these could not be resumed: asg-a: denied; flag: denied\n",
                exit::ERROR,
            ),
        ];
        for (outcome, stdout, stderr, code) in cases {
            assert_eq!(outcome.stdout(), stdout, "{outcome:?}");
            assert_eq!(outcome.stderr(), stderr, "{outcome:?}");
            assert_eq!(outcome.exit_code(), code, "{outcome:?}");
        }
    }

    fn table(role: &'static str, name: &str, outcome: TableOutcome) -> InitTable {
        InitTable {
            role,
            table: name.into(),
            key: control::KEY_ATTRIBUTE,
            region: "eu-west-1".into(),
            outcome,
        }
    }

    #[test]
    fn init_says_what_it_found_did_or_would_do() {
        let dry = InitOutcome {
            tables: vec![
                table("control", "ctl", TableOutcome::Exists),
                table("lease", "lease", TableOutcome::WouldCreate),
            ],
            stream: None,
            error: None,
        };
        assert_eq!(
            dry.stdout(),
            format!(
                "control table ctl exists in eu-west-1\n\
                 would create the lease table lease in eu-west-1 (partition key {} (S), on-demand, deletion protection on); run again with --approve TICKET\n",
                control::KEY_ATTRIBUTE
            )
        );
        assert_eq!(dry.stderr(), "");
        assert_eq!(dry.exit_code(), exit::OK);

        let stopped = InitOutcome {
            tables: vec![table("control", "ctl", TableOutcome::Created)],
            stream: None,
            error: Some(CommandError::error("creating table lease: AccessDenied")),
        };
        assert_eq!(
            stopped.stdout(),
            "created the control table ctl in eu-west-1\n"
        );
        assert_eq!(
            stopped.stderr(),
            "lbrecon: creating table lease: AccessDenied\n"
        );
        assert_eq!(stopped.exit_code(), exit::ERROR);
    }
}
