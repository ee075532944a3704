//! `lbrecon check`: one presence pass and one full deep pass per target, read-only.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::aws::{AwsError, Clients};
use crate::config::{Config, TargetConfig};
use crate::control;
use crate::document::Document;
use crate::ignore::IgnoreRules;
use crate::live::{self, LiveLoadBalancer, TargetGroupIndex};
use crate::reader::{DeepOutcome, DeepPlan, Reader};
use crate::reconcile::{LiveEntry, reconcile};
use crate::record::Record;
use crate::report::{GuardView, Report, Summary, TargetReport, exit};

/// Checks every target of `config` (or only `only`), concurrently.
pub async fn check(config: &Config, only: Option<&str>, ignore: &IgnoreRules) -> Report {
    let targets: Vec<&TargetConfig> = config
        .targets
        .iter()
        .filter(|target| only.is_none_or(|name| target.name == name))
        .collect();
    let reports = futures::future::join_all(targets.into_iter().map(|target| async move {
        let clients = Clients::connect(target, &config.aws).await;
        let reader = Reader {
            elb: clients.elb.clone(),
            dynamodb: clients.dynamodb.clone(),
            concurrency: config.aws.concurrency,
        };
        check_target(target, &reader, ignore).await
    }))
    .await;
    Report {
        generated_at: now_rfc3339(),
        targets: reports,
    }
}

/// The current time in RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Checks one target.
pub async fn check_target(
    target: &TargetConfig,
    reader: &Reader,
    ignore: &IgnoreRules,
) -> TargetReport {
    let mut report = TargetReport {
        target: target.name.clone(),
        complete: false,
        error: None,
        summary: Summary::default(),
        load_balancers: Vec::new(),
        guard: GuardView {
            paused: false,
            reason: None,
        },
        exit_code: exit::OK,
    };

    let (control, presence) = tokio::join!(
        control::read_view(&reader.dynamodb, &target.control_table, &target.name),
        reader.presence(&target.state_table),
    );
    let state_table_seen = match control {
        Ok(view) => {
            report.guard = view.guard;
            view.state_table_seen
        }
        Err(err) => {
            report.guard.reason = Some(format!("control table unreadable: {}", err.kind()));
            report.error = Some(format!(
                "reading control table {}: {err}",
                target.control_table
            ));
            false
        }
    };

    if let Ok(lbs) = &presence.load_balancers {
        report.summary.live = lbs.len() as u64;
    }
    let items = match presence.records {
        Ok(items) => items,
        Err(err) if err.is_not_found() && state_table_seen => {
            // The table lbrecon has seen before is gone: every record is missing.
            Vec::new()
        }
        Err(err) if err.is_not_found() => {
            report.error = Some(format!(
                "state table {} does not exist in region {} ({err}); create it, or fix \
                 state_table of target {} in the config",
                target.state_table, target.region, target.name
            ));
            report.exit_code = exit::CONFIG;
            return report;
        }
        Err(err) => {
            return incomplete(
                report,
                &format!("reading state table {}", target.state_table),
                &err,
            );
        }
    };
    report.summary.recorded = items.len() as u64;
    let (lbs, groups) = match (presence.load_balancers, presence.target_groups) {
        (Ok(lbs), Ok(groups)) => (lbs, groups),
        (Err(err), _) | (_, Err(err)) => return incomplete(report, "reading live state", &err),
    };

    let records: Vec<Record> = items
        .iter()
        .enumerate()
        .map(|(i, item)| Record::from_item(item, i))
        .collect();
    for record in &records {
        for warning in &record.warnings {
            tracing::warn!(target_name = %target.name, load_balancer = %record.name, "record {}: {warning}", record.name);
        }
    }

    let index = TargetGroupIndex::new(&groups);
    let plans = deep_plans(&lbs, &records, &index);
    let outcomes = reader.deep(&plans).await;

    let mut failures = Vec::new();
    let mut live_entries = Vec::with_capacity(lbs.len());
    for lb in &lbs {
        let outcome = outcomes.get(&lb.arn);
        let (document, deep_fresh) = match outcome {
            Some(DeepOutcome::Gone) => continue,
            Some(DeepOutcome::Read(state)) => (live::assemble(lb, &index, Some(state)), true),
            Some(DeepOutcome::Failed(failure)) => {
                failures.push(failure.to_string());
                (live::assemble(lb, &index, None), false)
            }
            // No valid record: only the presence fields matter.
            None => (live::assemble(lb, &index, None), true),
        };
        live_entries.push(LiveEntry {
            name: lb.name.clone(),
            arn: lb.arn.clone(),
            created_time: lb.created_time,
            document,
            deep_fresh,
        });
    }

    let reconciled = reconcile(&records, &live_entries, ignore);
    report.summary = reconciled.summary();
    report.load_balancers = reconciled.not_in_sync();
    failures.sort();
    report.complete = failures.is_empty() && report.error.is_none();
    if let Some(first) = failures.first() {
        let more = match failures.len() {
            1 => String::new(),
            n => format!(" (and {} more failed reads)", n - 1),
        };
        report.error = Some(format!("{first}{more}"));
    }
    report.with_exit_code()
}

fn incomplete(mut report: TargetReport, what: &str, err: &AwsError) -> TargetReport {
    report.complete = false;
    report.error = Some(format!("{what}: {err}"));
    report.with_exit_code()
}

/// One deep-read plan per live load balancer that has a valid record: a load balancer without
/// one is `missing_record` whatever its deep state, and an invalid record compares nothing.
pub fn deep_plans<'a>(
    lbs: &'a [LiveLoadBalancer],
    records: &[Record],
    index: &TargetGroupIndex<'a>,
) -> Vec<DeepPlan<'a>> {
    let documents: std::collections::HashMap<&str, &Document> = records
        .iter()
        .filter_map(|record| Some((record.name.as_str(), record.document()?)))
        .collect();
    lbs.iter()
        .filter_map(|lb| {
            let document = documents.get(lb.name.as_str())?;
            Some(DeepPlan {
                load_balancer: lb,
                target_groups: index.of(&lb.arn).to_vec(),
                additional_certificates: keys_holding(
                    document,
                    "listeners",
                    "additional_certificates",
                ),
                targets: keys_holding(document, "target_groups", "targets"),
            })
        })
        .collect()
}

/// The keys of a keyed list whose items hold `field`.
fn keys_holding(document: &Document, list: &str, field: &str) -> BTreeSet<String> {
    match document.keyed.get(list) {
        Some(Value::Object(items)) => items
            .iter()
            .filter(|(_, item)| item.get(field).is_some())
            .map(|(key, _)| key.clone())
            .collect(),
        _ => BTreeSet::new(),
    }
}
