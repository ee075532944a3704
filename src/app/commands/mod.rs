//! The guard's commands: `status`, `pause`, `resume`, `init` (docs/architecture.md#commands, docs/architecture.md#guard).

pub mod check;
pub mod recovery;

use std::collections::BTreeMap;

use serde::Serialize;

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

/// `lbrecon status`.
pub async fn status(config: &Config, json: bool) -> i32 {
    let mut lines = Vec::new();
    let mut code = exit::OK;
    let budgets = crate::runtime::budget::Budgets::default();
    for target in &config.targets {
        let clients = Clients::connect(target, &config.aws, &budgets).await;
        let mut line = TargetStatus {
            target: target.name.clone(),
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
        };
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
                code = exit::ERROR;
            }
        }
        lines.push(line);
    }
    if json {
        let doc = serde_json::json!({ "targets": lines });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serializes")
        );
    } else {
        for line in &lines {
            print!("{}", status_table(line));
        }
    }
    code
}

fn status_table(line: &TargetStatus) -> String {
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
        let stale = if claim.until < crate::model::clock::now_unix() {
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

/// Says why `verb` (`pausing`, `resuming`) gave up on a target's control item; exit 1.
fn gave_up(verb: &str, store: &ControlStore<'_>, error: UpdateError) -> i32 {
    eprintln!("lbrecon: {verb} {}: {}", store.target, error.message(store));
    exit::ERROR
}

/// How often a command looks again at a claim it waits for.
const CLAIM_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Reads the control item once no other actor's claim on the pausers blocks it: waits while a
/// claim is held (saying so once), and goes on once it is released or stale (older than
/// `guard.claim_timeout`, then taken over).
async fn load_unclaimed(
    store: &ControlStore<'_>,
    enforcer: &Enforcer<'_>,
) -> Result<ControlItem, String> {
    let mut said = false;
    loop {
        let control = load_item(store).await?;
        let Some(claim) = enforcer.blocking_claim(&control) else {
            return Ok(control);
        };
        if !said {
            eprintln!(
                "lbrecon: waiting: the pausers of {} are claimed by {} ({}) since {}; the claim is released when that run ends, or taken over once stale at {}",
                store.target,
                claim.by,
                claim.purpose,
                claim.since,
                crate::model::clock::rfc3339(claim.until)
                    .unwrap_or_else(|| claim.until.to_string()),
            );
            said = true;
        }
        tokio::time::sleep(CLAIM_POLL).await;
    }
}

/// `lbrecon pause --target T --reason TEXT`: pauses by hand, with every pauser. Over a pause the
/// guard made, the pause becomes the operator's: it no longer resumes by itself.
pub async fn pause(config: &Config, target: &TargetConfig, reason: &str) -> i32 {
    let clients = Clients::connect(
        target,
        &config.aws,
        &crate::runtime::budget::Budgets::default(),
    )
    .await;
    let store = store(target, &clients);
    let by = actor();
    let reader = reader(&clients, config);
    // The control item first: whether the state table was seen (a deleted one is every record
    // missing), and the names the guard keeps in scope.
    let first = match load_item(&store).await {
        Ok(control) => control,
        Err(message) => {
            eprintln!("lbrecon: pausing {}: {message}", target.name);
            return exit::ERROR;
        }
    };
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
        let mut control = match load_unclaimed(&store, &enforcer).await {
            Ok(control) => control,
            Err(message) => {
                eprintln!("lbrecon: pausing {}: {message}", target.name);
                return exit::ERROR;
            }
        };
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
                println!(
                    "target {} is already paused since {} by {}: {}",
                    target.name,
                    control.since.as_deref().unwrap_or("?"),
                    control.by.as_deref().unwrap_or("?"),
                    control.reason.as_deref().unwrap_or("")
                );
                return exit::OK;
            }
        };
        match result {
            Ok(()) if step.action == Action::TakeOver => {
                println!(
                    "target {} was paused by lbrecon; the pause is now yours ({by}): it will not resume by itself",
                    target.name
                );
                return exit::OK;
            }
            Ok(()) if reverted => {
                eprintln!(
                    "lbrecon: target {} was resumed while this pause ran; what it did was undone. Run pause again if it is still needed",
                    target.name
                );
                return exit::ERROR;
            }
            Ok(()) => return report_pausers(target, &control, "paused"),
            Err(err) if err.is_condition_failed() => continue,
            Err(err) => return gave_up("pausing", &store, UpdateError::Aws(err)),
        }
    }
    gave_up("pausing", &store, UpdateError::Contended)
}

/// A pauser's status, with what it did: `done (suspended 3 groups)`.
fn pauser_summary(record: &PauserRecord) -> String {
    match &record.detail {
        Some(detail) => format!("{} ({detail})", record.status.as_str()),
        None => record.status.as_str().to_string(),
    }
}

fn report_pausers(target: &TargetConfig, control: &ControlItem, what: &str) -> i32 {
    println!("target {} {what}", target.name);
    let mut failed = false;
    for (key, record) in &control.pausers {
        println!("  {key}: {}", pauser_summary(record));
        if let Some(error) = &record.error {
            failed = true;
            println!("    error: {error}");
        }
    }
    if failed { exit::ERROR } else { exit::OK }
}

/// `lbrecon resume --target T --reason TEXT [--force]`.
pub async fn resume(config: &Config, target: &TargetConfig, reason: &str, force: bool) -> i32 {
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
    let first = match load_item(&store).await {
        Ok(control) => control,
        Err(message) => {
            eprintln!("lbrecon: {message}");
            return exit::ERROR;
        }
    };
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
    for _ in 0..ATTEMPTS {
        let mut control = match load_unclaimed(&store, &enforcer).await {
            Ok(control) => control,
            Err(message) => {
                eprintln!("lbrecon: resuming {}: {message}", target.name);
                return exit::ERROR;
            }
        };
        let step = enforcer.step(&control, observation.as_ref(), None, &command);
        let (acknowledged, forced) = match &step.action {
            Action::NotPaused => {
                println!("target {} is not paused; nothing to resume", target.name);
                return exit::OK;
            }
            Action::RefuseResume if observation.is_none() => {
                let error = presence
                    .error
                    .as_ref()
                    .map(AwsError::to_string)
                    .unwrap_or_default();
                eprintln!(
                    "lbrecon: cannot check that the records of {} are back ({error}); try again, or resume with --force",
                    target.name
                );
                return exit::ERROR;
            }
            Action::RefuseResume => {
                eprintln!(
                    "lbrecon: {} load balancer(s) of {} still have no valid record: {}. Restore them \
                     (`lbrecon restore` or `lbrecon adopt`), or resume with --force to acknowledge them",
                    step.missing.len(),
                    target.name,
                    step.missing.iter().cloned().collect::<Vec<_>>().join(", ")
                );
                return exit::ERROR;
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
                println!("target {} resumed", target.name);
                if !acknowledged.is_empty() {
                    println!(
                        "  acknowledged (no new trip until their records are back): {}",
                        acknowledged.iter().cloned().collect::<Vec<_>>().join(", ")
                    );
                }
                return exit::OK;
            }
            Ok(errors) => {
                eprintln!(
                    "lbrecon: target {} is still paused; these could not be resumed: {}",
                    target.name,
                    errors.join("; ")
                );
                return exit::ERROR;
            }
            Err(err) if err.is_condition_failed() => continue,
            Err(err) => return gave_up("resuming", &store, UpdateError::Aws(err)),
        }
    }
    gave_up("resuming", &store, UpdateError::Contended)
}

/// `lbrecon init --target T [--approve TICKET]`: creates the control table (and the lease
/// table, when configured) if missing. Without `--approve` it only says what it would do.
pub async fn init(config: &Config, target: &TargetConfig, approve: Option<&str>) -> i32 {
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
    for (table, key, role) in tables {
        match clients.dynamodb.table_exists(table).await {
            Ok(true) => println!("{role} table {table} exists in {}", target.region),
            Ok(false) => match approve {
                None => println!(
                    "would create the {role} table {table} in {} (partition key {key} (S), on-demand, deletion protection on); run again with --approve TICKET",
                    target.region
                ),
                Some(ticket) => {
                    if let Err(err) = clients.dynamodb.create_table(table, key).await {
                        eprintln!("lbrecon: creating table {table}: {err}");
                        return exit::ERROR;
                    }
                    telemetry::audit(&target.name, "init", &by, ticket, &[]);
                    println!("created the {role} table {table} in {}", target.region);
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
                            eprintln!("lbrecon: writing the control item: {err}");
                            return exit::ERROR;
                        }
                    }
                }
            },
            Err(err) => {
                eprintln!("lbrecon: checking table {table}: {err}");
                return exit::ERROR;
            }
        }
    }
    exit::OK
}
