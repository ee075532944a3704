//! The guard's commands: `status`, `pause`, `resume`, `init` (SPEC 6, 8).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::aws::{AwsError, Clients};
use crate::config::{Config, TargetConfig};
use crate::control::{self, ControlItem, ControlStore, Event, Loaded, PauserRecord, UpdateError};
use crate::cycle::read_presence;
use crate::enforce::{self, Enforcer};
use crate::guard;
use crate::pause::{DONE, DYNAMODB_FLAG, RESUMING};
use crate::reader::{Items, Reader};
use crate::record::RecordCache;
use crate::report::exit;
use crate::telemetry;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    let budgets = crate::budget::Budgets::default();
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
            error: None,
        };
        match store(target, &clients).load().await {
            Ok(Loaded::Item(item)) => {
                line.paused = item.paused;
                line.since = item.since;
                line.reason = item.reason;
                line.by = item.by;
                line.missing = item.missing;
                line.quarantine = item.quarantine;
                line.paused_by_pausers = item.pausers;
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
    for (key, record) in &line.paused_by_pausers {
        out.push_str(&format!("  pauser {key}: {}\n", pauser_summary(record)));
        for (group, processes) in &record.suspended {
            out.push_str(&format!(
                "    {group}: suspended {}\n",
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

/// `lbrecon pause --target T --reason TEXT`: pauses by hand, with every pauser.
pub async fn pause(config: &Config, target: &TargetConfig, reason: &str) -> i32 {
    let clients = Clients::connect(target, &config.aws, &crate::budget::Budgets::default()).await;
    let store = store(target, &clients);
    let by = actor();
    let reader = reader(&clients, config);
    let presence = read_presence(
        target,
        &reader,
        None,
        &mut RecordCache::none(),
        Items::Dropped,
    )
    .await;
    let missing: BTreeSet<String> = if presence.complete {
        let observation =
            enforce::observation(&presence, time::OffsetDateTime::now_utc().unix_timestamp());
        guard::missing(&observation, &guard::eligible(&observation, &config.guard))
    } else {
        BTreeSet::new()
    };
    let scope = enforce::scope(&presence, &missing);
    let enforcer = Enforcer {
        target: &target.name,
        config: &config.guard,
        store,
        autoscaling: &clients.autoscaling,
    };
    // (whether this command paused, the item as it left it)
    let outcome = store
        .update(ATTEMPTS, async |control: &mut ControlItem| {
            if !control.paused {
                enforcer
                    .pause(control, reason, &by, &missing, &scope, "pause")
                    .await?;
                return Ok((true, control.clone()));
            }
            Ok((false, control.clone()))
        })
        .await;
    match outcome {
        Ok((true, control)) => report_pausers(target, &control, "paused"),
        Ok((false, control)) => {
            println!(
                "target {} is already paused since {} by {}: {}",
                target.name,
                control.since.as_deref().unwrap_or("?"),
                control.by.as_deref().unwrap_or("?"),
                control.reason.as_deref().unwrap_or("")
            );
            exit::OK
        }
        Err(err) => {
            eprintln!("lbrecon: pausing {}: {}", target.name, err.message(&store));
            exit::ERROR
        }
    }
}

/// A pauser's status, with what it did: `done (suspended 3 groups)`.
fn pauser_summary(record: &PauserRecord) -> String {
    match &record.detail {
        Some(detail) => format!("{} ({detail})", record.status),
        None => record.status.clone(),
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
    let clients = Clients::connect(target, &config.aws, &crate::budget::Budgets::default()).await;
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
    if !first.paused && first.pausers.is_empty() {
        println!("target {} is not paused; nothing to resume", target.name);
        return exit::OK;
    }
    let presence = read_presence(
        target,
        &reader,
        Some(&first.view()),
        &mut RecordCache::none(),
        Items::Dropped,
    )
    .await;
    let missing: BTreeSet<String> = if presence.complete {
        let observation =
            enforce::observation(&presence, time::OffsetDateTime::now_utc().unix_timestamp());
        guard::missing(&observation, &guard::eligible(&observation, &config.guard))
    } else if force {
        first.missing.iter().cloned().collect()
    } else {
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
    };
    if !missing.is_empty() && !force {
        eprintln!(
            "lbrecon: {} load balancer(s) of {} still have no valid record: {}. Restore them \
             (`lbrecon restore` or `lbrecon adopt`), or resume with --force to acknowledge them",
            missing.len(),
            target.name,
            missing.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        return exit::ERROR;
    }
    // First mark the pausers about to be resumed, so a daemon's cycle that reads the item while
    // their processes are being resumed neither reports that as a pause undone by hand nor
    // suspends them again.
    let marks = |control: &ControlItem| {
        control
            .pausers
            .iter()
            .any(|(key, record)| key != DYNAMODB_FLAG && record.status == DONE)
    };
    if marks(&first) {
        let marked = store
            .update(ATTEMPTS, async |control: &mut ControlItem| {
                for (key, record) in control.pausers.iter_mut() {
                    if key != DYNAMODB_FLAG && record.status == DONE {
                        record.status = RESUMING.into();
                    }
                }
                store.save(control).await
            })
            .await;
        if let Err(err) = marked {
            eprintln!("lbrecon: resuming {}: {}", target.name, err.message(&store));
            return exit::ERROR;
        }
    }
    let outcome = store
        .update(ATTEMPTS, async |control: &mut ControlItem| {
            enforcer.resume(control, reason, &by, &missing, force).await
        })
        .await;
    match outcome {
        Ok(errors) if errors.is_empty() => {
            println!("target {} resumed", target.name);
            if !missing.is_empty() {
                println!(
                    "  acknowledged (no new trip until their records are back): {}",
                    missing.iter().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            exit::OK
        }
        Ok(errors) => {
            eprintln!(
                "lbrecon: target {} is still paused; these could not be resumed: {}",
                target.name,
                errors.join("; ")
            );
            exit::ERROR
        }
        Err(err) => {
            eprintln!("lbrecon: resuming {}: {}", target.name, err.message(&store));
            exit::ERROR
        }
    }
}

/// `lbrecon init --target T [--approve TICKET]`: creates the control table (and the lease
/// table, when configured) if missing. Without `--approve` it only says what it would do.
pub async fn init(config: &Config, target: &TargetConfig, approve: Option<&str>) -> i32 {
    let clients = Clients::connect(target, &config.aws, &crate::budget::Budgets::default()).await;
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
                            time: crate::check::now_rfc3339(),
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
