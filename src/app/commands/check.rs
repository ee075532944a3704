//! `lbrecon check`: one presence pass and one full deep pass per target, read-only.

use crate::app::cycle::{DeepCache, DeepScope, read_scoped_presence};
use crate::app::reader::{Items, Reader};
use crate::aws::Clients;
use crate::control;
use crate::model::clock::now_rfc3339;
use crate::model::record::RecordCache;
use crate::reconcile::ignore::IgnoreRules;
use crate::reconcile::report::{GuardView, Report, TargetReport};
use crate::runtime::config::{Config, TargetConfig};

/// Checks every target of `config` (or only `only`), concurrently.
pub async fn check(config: &Config, only: Option<&str>, ignore: &IgnoreRules) -> Report {
    let targets: Vec<&TargetConfig> = config
        .targets
        .iter()
        .filter(|target| only.is_none_or(|name| target.name == name))
        .collect();
    // One budget per account and region for the whole check, shared by its targets.
    let budgets = crate::runtime::budget::Budgets::default();
    let budgets = &budgets;
    let reports = futures::future::join_all(targets.into_iter().map(|target| async move {
        let clients = Clients::connect(target, &config.aws, budgets).await;
        let reader = Reader::new(&clients, config.aws.concurrency, (&config.records).into());
        let report = check_target(target, &reader, ignore).await;
        let elb = reader.elb.calls();
        let dynamodb = reader.dynamodb.calls();
        let total = |calls: &std::collections::BTreeMap<&'static str, (u64, u64)>| {
            calls.values().fold((0, 0), |(c, r), (calls, retries)| (c + calls, r + retries))
        };
        let (elb_calls, elb_retries) = total(&elb);
        let (dynamodb_calls, dynamodb_retries) = total(&dynamodb);
        let detail: Vec<String> = elb.iter().map(|(op, (calls, _))| format!("{op} {calls}")).collect();
        tracing::info!(
            target_name = %target.name,
            elb_calls,
            elb_retries,
            dynamodb_calls,
            dynamodb_retries,
            "full read: {elb_calls} ELB calls ({}), {elb_retries} retries; {dynamodb_calls} DynamoDB calls, {dynamodb_retries} retries",
            detail.join(", ")
        );
        report
    }))
    .await;
    Report {
        generated_at: now_rfc3339(),
        targets: reports,
    }
}

/// Checks one target: its control item and a cycle with a full deep pass, read together.
pub async fn check_target(
    target: &TargetConfig,
    reader: &Reader,
    ignore: &IgnoreRules,
) -> TargetReport {
    let control = control::read_view(&reader.dynamodb, &target.control_table, &target.name).await;
    let (view, guard, control_error) = match control {
        Ok(view) => {
            let guard = view.guard.clone();
            (Some(view), guard, None)
        }
        Err(err) => (
            None,
            GuardView {
                paused: false,
                reason: Some(format!("control table unreadable ({})", err.kind())),
            },
            Some(format!(
                "reading control table {}: {err}",
                target.control_table
            )),
        ),
    };
    let presence = read_scoped_presence(
        target,
        reader,
        view.as_ref(),
        &mut RecordCache::none(),
        Items::Dropped,
    )
    .await;
    let cycle = presence
        .finish(reader, ignore, DeepScope::All, &mut DeepCache::none())
        .await;
    let report = cycle.report(target, guard, true);
    match control_error {
        Some(error) => without_control_item(report, error),
        None => report,
    }
}

/// A target's report when its control item could not be read: incomplete, since a full check
/// needs every read, the control item's included; an error the report already has stays.
fn without_control_item(mut report: TargetReport, error: String) -> TargetReport {
    report.complete = false;
    report.error.get_or_insert(error);
    report.with_exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::report::{Summary, exit};

    fn report(error: Option<&str>) -> TargetReport {
        TargetReport {
            target: "prod".into(),
            complete: error.is_none(),
            error: error.map(str::to_string),
            summary: Summary::default(),
            load_balancers: vec![],
            guard: GuardView {
                paused: false,
                reason: Some("control table unreadable (throttled)".into()),
            },
            deep_checked_at: None,
            exit_code: 0,
        }
        .with_exit_code()
    }

    #[test]
    fn an_unreadable_control_item_makes_an_in_sync_target_incomplete() {
        let in_sync = report(None);
        assert_eq!(in_sync.exit_code, exit::OK);
        let done = without_control_item(in_sync, "reading control table ctl: throttled".into());
        assert!(!done.complete);
        assert_eq!(
            done.error.as_deref(),
            Some("reading control table ctl: throttled")
        );
        assert_eq!(done.exit_code, exit::ERROR);
    }

    #[test]
    fn the_first_error_a_report_has_stays() {
        let done = without_control_item(
            report(Some("Scan failed: throttled")),
            "reading control table ctl: throttled".into(),
        );
        assert_eq!(done.error.as_deref(), Some("Scan failed: throttled"));
        assert_eq!(done.exit_code, exit::ERROR);
    }
}
