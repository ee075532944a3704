//! Metrics and their log lines (docs/architecture.md#http).
//!
//! Every metric name lives here, and every event that changes a metric is one function that also
//! writes its log line, so the two cannot drift apart. Every series carries a `target` label.
//! Without an installed recorder (`check`) the metric calls do nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

use crate::reconcile::report::{DriftKind, TargetReport};

pub const CYCLES_TOTAL: &str = "lbrecon_cycles_total";
pub const CYCLE_DURATION_SECONDS: &str = "lbrecon_cycle_duration_seconds";
pub const LAST_COMPLETE_CYCLE_TIMESTAMP_SECONDS: &str =
    "lbrecon_last_complete_cycle_timestamp_seconds";
pub const LOAD_BALANCERS: &str = "lbrecon_load_balancers";
pub const DRIFT_LOAD_BALANCERS: &str = "lbrecon_drift_load_balancers";
pub const DRIFT_CHANGES: &str = "lbrecon_drift_changes";
pub const LOAD_BALANCER_DRIFT: &str = "lbrecon_load_balancer_drift";
pub const SCALING_PAUSED: &str = "lbrecon_scaling_paused";
pub const AWS_REQUESTS_TOTAL: &str = "lbrecon_aws_requests_total";
pub const AWS_REQUEST_DURATION_SECONDS: &str = "lbrecon_aws_request_duration_seconds";
pub const DEEP_CHECK_AGE_SECONDS: &str = "lbrecon_deep_check_age_seconds";
pub const LEADER: &str = "lbrecon_leader";
pub const LAST_SNAPSHOT_TIMESTAMP_SECONDS: &str = "lbrecon_last_snapshot_timestamp_seconds";
pub const GUARD_TRIPS_TOTAL: &str = "lbrecon_guard_trips_total";
pub const QUARANTINED_LOAD_BALANCERS: &str = "lbrecon_quarantined_load_balancers";
pub const STATE_TABLE_PROTECTION: &str = "lbrecon_state_table_protection";
pub const PAUSE_UNDONE_TOTAL: &str = "lbrecon_pause_undone_total";
pub const PAUSER_FAILURES_TOTAL: &str = "lbrecon_pauser_failures_total";
pub const STREAM_RECORDS_TOTAL: &str = "lbrecon_stream_records_total";
pub const STREAM_LAG_SECONDS: &str = "lbrecon_stream_lag_seconds";
pub const JOURNAL_LAST_TIMESTAMP_SECONDS: &str = "lbrecon_journal_last_timestamp_seconds";
pub const RECOVERY_CHECK_MISMATCHES: &str = "lbrecon_recovery_check_mismatches";
pub const BUILD_INFO: &str = "lbrecon_build_info";

const CYCLE_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The Prometheus recorder with lbrecon's histogram buckets. Install it with
/// [`metrics::set_global_recorder`]; its handle renders `/metrics`.
pub fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(CYCLE_DURATION_SECONDS.into()), CYCLE_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(AWS_REQUEST_DURATION_SECONDS.into()),
                REQUEST_BUCKETS,
            )
        })
        .expect("the bucket lists are not empty")
        .build_recorder()
}

/// Registers each metric's help text.
pub fn describe() {
    describe_counter!(
        CYCLES_TOTAL,
        "Reconciliation cycles by outcome (complete, incomplete)."
    );
    describe_histogram!(
        CYCLE_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one cycle."
    );
    describe_gauge!(
        LAST_COMPLETE_CYCLE_TIMESTAMP_SECONDS,
        metrics::Unit::Seconds,
        "Unix time of the last complete cycle."
    );
    describe_gauge!(
        LOAD_BALANCERS,
        "Load balancers by source: live, recorded (state-table items)."
    );
    describe_gauge!(
        DRIFT_LOAD_BALANCERS,
        "Load balancers by drift kind, in_sync included."
    );
    describe_gauge!(DRIFT_CHANGES, "Field changes in changed load balancers.");
    describe_gauge!(
        LOAD_BALANCER_DRIFT,
        "1 per load balancer not in sync, by name and kind."
    );
    describe_gauge!(SCALING_PAUSED, "1 while scaling workflows are paused.");
    describe_counter!(
        AWS_REQUESTS_TOTAL,
        "AWS request attempts by service, operation and outcome (ok, throttled, error)."
    );
    describe_histogram!(
        AWS_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of one AWS request attempt."
    );
    describe_gauge!(
        DEEP_CHECK_AGE_SECONDS,
        metrics::Unit::Seconds,
        "Age of the oldest deep check of a live load balancer with a record."
    );
    describe_gauge!(LEADER, "1 on the replica that acts for the target.");
    describe_counter!(
        GUARD_TRIPS_TOTAL,
        "Times the guard paused scaling workflows."
    );
    describe_gauge!(
        QUARANTINED_LOAD_BALANCERS,
        "Load balancers workflows must not act on."
    );
    describe_gauge!(
        STATE_TABLE_PROTECTION,
        "1 when the state table's protection (kind pitr, deletion_protection or delete_policy) is in force, 0 when not; absent when unknown."
    );
    describe_counter!(
        PAUSE_UNDONE_TOTAL,
        "Pauses a person undid outside lbrecon, by pauser (reported, never re-applied)."
    );
    describe_counter!(
        PAUSER_FAILURES_TOTAL,
        "Pauser runs that failed, by pauser (retried next cycle)."
    );
    describe_gauge!(
        LAST_SNAPSHOT_TIMESTAMP_SECONDS,
        "Unix time of the last snapshot of the state table written."
    );
    describe_counter!(
        STREAM_RECORDS_TOTAL,
        "Records read from the state table's stream, by event (INSERT, MODIFY, REMOVE)."
    );
    describe_gauge!(
        STREAM_LAG_SECONDS,
        "Now minus the creation time of the newest stream record read (or the last time every shard was read to its end, if later); 0 when caught up."
    );
    describe_gauge!(
        JOURNAL_LAST_TIMESTAMP_SECONDS,
        "Unix time of the newest stream record in the journal."
    );
    describe_gauge!(
        RECOVERY_CHECK_MISMATCHES,
        "Items on which the last snapshot plus the journal disagree with the last scan."
    );
    describe_gauge!(BUILD_INFO, "1, labelled with lbrecon's version.");
}

/// Records were read from the stream.
pub fn stream_records(target: &str, event: &'static str, count: u64) {
    counter!(STREAM_RECORDS_TOTAL, "target" => target.to_string(), "event" => event)
        .increment(count);
}

/// How far behind the stream's reading is, in seconds (0: caught up).
pub fn stream_lag(target: &str, seconds: f64) {
    gauge!(STREAM_LAG_SECONDS, "target" => target.to_string()).set(seconds.max(0.0));
}

/// The stream cannot be read: it costs speed only, the cycle stays the source of truth.
pub fn stream_failed(target: &str, error: &str) {
    tracing::warn!(
        target_name = target,
        error,
        "the state table's stream cannot be read: losses are seen by the cycle alone until it can"
    );
}

/// A journal segment was sealed and written.
pub fn journal_written(target: &str, location: &str, records: usize, newest_millis: Option<i64>) {
    if let Some(millis) = newest_millis {
        gauge!(JOURNAL_LAST_TIMESTAMP_SECONDS, "target" => target.to_string())
            .set(millis as f64 / 1000.0);
    }
    tracing::debug!(
        target_name = target,
        location,
        records,
        "journal segment written"
    );
}

/// A gap was recorded in the journal: changes in it may be missing from it.
pub fn journal_gap(target: &str, reason: &str, from_millis: i64, to_millis: i64) {
    tracing::error!(
        target_name = target,
        reason,
        from = %crate::model::clock::rfc3339_millis(from_millis),
        to = %crate::model::clock::rfc3339_millis(to_millis),
        "a gap in the journal: restore to an instant inside it needs --allow-gap"
    );
}

/// The recovery check ran: the last snapshot plus the journal, replayed, against the scan.
pub fn recovery_check(target: &str, mismatches: &[String]) {
    gauge!(RECOVERY_CHECK_MISMATCHES, "target" => target.to_string()).set(mismatches.len() as f64);
    if !mismatches.is_empty() {
        tracing::error!(
            target_name = target,
            mismatches = mismatches.len(),
            items = %mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("; "),
            "the recovery check failed: the last snapshot plus the journal do not give the table as scanned"
        );
    }
}

/// The daemon starts for a target.
/// Whether this replica acts for `target` (`lbrecon_leader`).
pub fn leader(target: &str, leader: bool) {
    gauge!(LEADER, "target" => target.to_string()).set(if leader { 1.0 } else { 0.0 });
}

/// A target's loop starts. `elected`: with leader election, the replica starts as a standby
/// until it holds the lease; without it, a single replica acts.
pub fn target_started(target: &str, elected: bool) {
    gauge!(BUILD_INFO, "target" => target.to_string(), "version" => env!("CARGO_PKG_VERSION"))
        .set(1.0);
    leader(target, !elected);
    counter!(GUARD_TRIPS_TOTAL, "target" => target.to_string()).increment(0);
    tracing::info!(
        target_name = target,
        version = env!("CARGO_PKG_VERSION"),
        "target started"
    );
}

/// One AWS request attempt finished.
pub fn aws_request(
    target: &str,
    service: &str,
    operation: &str,
    outcome: &'static str,
    duration: Duration,
) {
    counter!(
        AWS_REQUESTS_TOTAL,
        "target" => target.to_string(),
        "service" => service.to_string(),
        "operation" => operation.to_string(),
        "outcome" => outcome
    )
    .increment(1);
    histogram!(
        AWS_REQUEST_DURATION_SECONDS,
        "target" => target.to_string(),
        "service" => service.to_string(),
        "operation" => operation.to_string()
    )
    .record(duration.as_secs_f64());
    tracing::debug!(
        target_name = target,
        service,
        operation,
        outcome,
        seconds = duration.as_secs_f64(),
        "aws request"
    );
}

/// A snapshot was written.
pub fn snapshot_written(target: &str, location: &str, records: usize, bytes: u64, millis: i64) {
    gauge!(LAST_SNAPSHOT_TIMESTAMP_SECONDS, "target" => target.to_string())
        .set(millis as f64 / 1000.0);
    tracing::info!(
        target_name = target,
        location,
        records,
        bytes,
        "snapshot written"
    );
}

/// A snapshot could not be written.
pub fn snapshot_failed(target: &str, error: &str) {
    tracing::error!(target_name = target, error, "cannot write a snapshot");
}

/// The guard paused scaling workflows.
pub fn guard_tripped(target: &str, reason: &str, missing: usize) {
    counter!(GUARD_TRIPS_TOTAL, "target" => target.to_string()).increment(1);
    tracing::error!(
        target_name = target,
        reason,
        missing,
        "guard tripped: scaling workflows paused"
    );
}

/// A pause, resume, restore, adopt or init: an audit event.
pub fn audit(target: &str, action: &str, by: &str, reason: &str, names: &[String]) {
    // The names, up to a readable number; the count is always exact.
    const SHOWN: usize = 50;
    let mut shown = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if names.len() > SHOWN {
        shown.push_str(&format!(",... ({} more)", names.len() - SHOWN));
    }
    tracing::warn!(
        target_name = target,
        audit = true,
        action,
        by,
        reason,
        count = names.len(),
        names = %shown,
        "audit: {action}"
    );
}

/// A person undid part of a pause outside lbrecon.
pub fn pause_undone(target: &str, pauser: &str, detail: &str) {
    counter!(PAUSE_UNDONE_TOTAL, "target" => target.to_string(), "pauser" => pauser.to_string())
        .increment(1);
    tracing::warn!(
        target_name = target,
        pauser,
        detail,
        "a pause was undone outside lbrecon; not re-applied"
    );
}

/// A pauser failed; it is retried next cycle.
pub fn pauser_failed(target: &str, pauser: &str, error: &str) {
    counter!(PAUSER_FAILURES_TOTAL, "target" => target.to_string(), "pauser" => pauser.to_string())
        .increment(1);
    tracing::error!(
        target_name = target,
        pauser,
        error,
        "pauser failed; retried next cycle"
    );
}

/// The protections of the state table that were unknown at their last reading, by target and
/// kind: their series are left out of `/metrics` ([`render`]), since the exporter cannot remove
/// a gauge it once had and a stale value would claim a protection nobody could read.
static UNKNOWN_PROTECTION: std::sync::Mutex<BTreeSet<(String, &'static str)>> =
    std::sync::Mutex::new(BTreeSet::new());

/// The state table's protection, read at start and once an hour: each kind read is exported,
/// and warned about when off; each kind that could not be read is unknown, its series absent,
/// and the log says why (docs/architecture.md#guard).
/// `readings`: per kind (`pitr`, `deletion_protection`, `delete_policy`), whether it is in
/// force with what was found, or why it could not be read.
pub fn state_table_protection<E: std::fmt::Display>(
    target: &str,
    table: &str,
    readings: impl IntoIterator<Item = (&'static str, Result<(bool, String), E>)>,
) {
    let mut unknown = UNKNOWN_PROTECTION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for (kind, reading) in readings {
        match reading {
            Ok((on, detail)) => {
                unknown.remove(&(target.to_string(), kind));
                gauge!(STATE_TABLE_PROTECTION, "target" => target.to_string(), "kind" => kind)
                    .set(if on { 1.0 } else { 0.0 });
                if !on {
                    tracing::warn!(
                        target_name = target,
                        table,
                        kind,
                        detail,
                        "the state table's protection is off"
                    );
                }
            }
            Err(err) => {
                unknown.insert((target.to_string(), kind));
                tracing::warn!(
                    target_name = target,
                    table,
                    kind,
                    error = %err,
                    "the state table's protection is unknown: it cannot be read, so its series is absent (not reported as off)"
                );
            }
        }
    }
}

/// The `/metrics` page without the series of protections that are unknown now.
pub fn render(page: String) -> String {
    let unknown = UNKNOWN_PROTECTION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if unknown.is_empty() {
        return page;
    }
    let series = format!("{STATE_TABLE_PROTECTION}{{");
    let hidden = |line: &str| {
        line.starts_with(&series)
            && unknown.iter().any(|(target, kind)| {
                line.contains(&format!("target=\"{target}\""))
                    && line.contains(&format!("kind=\"{kind}\""))
            })
    };
    let mut out = String::with_capacity(page.len());
    for line in page.lines().filter(|line| !hidden(line)) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The guard's state after a cycle: paused or not, and the quarantine.
pub fn guard_state(target: &str, paused: bool, quarantined: usize) {
    gauge!(SCALING_PAUSED, "target" => target.to_string()).set(if paused { 1.0 } else { 0.0 });
    gauge!(QUARANTINED_LOAD_BALANCERS, "target" => target.to_string()).set(quarantined as f64);
}

/// The per-load-balancer drift series a target currently shows, so those that leave drift are
/// set to 0 instead of lingering at 1.
#[derive(Debug, Default)]
pub struct DriftSeries {
    shown: BTreeSet<(String, DriftKind)>,
}

/// What one cycle found, for its summary event.
#[derive(Debug)]
pub struct CycleEvent<'a> {
    pub target: &'a str,
    pub complete: bool,
    pub duration: Duration,
    pub report: &'a TargetReport,
    /// Deep reads made this cycle.
    pub deep_read: usize,
    /// Seconds since the oldest deep check (or since start for one never made).
    pub deep_check_age: Option<f64>,
    /// Export per-load-balancer series, at most this many.
    pub per_load_balancer: Option<usize>,
}

/// One cycle finished: the summary log line and every cycle metric.
pub fn cycle_finished(event: &CycleEvent<'_>, series: &mut DriftSeries) {
    let target = event.target.to_string();
    let outcome = if event.complete {
        "complete"
    } else {
        "incomplete"
    };
    counter!(CYCLES_TOTAL, "target" => target.clone(), "outcome" => outcome).increment(1);
    histogram!(CYCLE_DURATION_SECONDS, "target" => target.clone())
        .record(event.duration.as_secs_f64());
    if let Some(age) = event.deep_check_age {
        gauge!(DEEP_CHECK_AGE_SECONDS, "target" => target.clone()).set(age);
    }
    let summary = &event.report.summary;
    if !event.complete {
        // A failed read is not a missing record: the drift gauges keep the last complete
        // cycle's values, and staleness shows in the cycle counter and timestamp.
        tracing::warn!(
            target_name = event.target,
            outcome,
            seconds = event.duration.as_secs_f64(),
            error = event.report.error.as_deref().unwrap_or(""),
            "cycle incomplete"
        );
        return;
    }
    gauge!(LAST_COMPLETE_CYCLE_TIMESTAMP_SECONDS, "target" => target.clone())
        .set(crate::model::clock::now_unix() as f64);
    gauge!(LOAD_BALANCERS, "target" => target.clone(), "source" => "live").set(summary.live as f64);
    gauge!(LOAD_BALANCERS, "target" => target.clone(), "source" => "out_of_scope")
        .set(summary.out_of_scope as f64);
    gauge!(LOAD_BALANCERS, "target" => target.clone(), "source" => "recorded")
        .set(summary.recorded as f64);
    for kind in DriftKind::ALL {
        gauge!(DRIFT_LOAD_BALANCERS, "target" => target.clone(), "kind" => kind.as_str())
            .set(summary.count(kind) as f64);
    }
    let changes: usize = event
        .report
        .load_balancers
        .iter()
        .filter(|lb| lb.kind == DriftKind::Changed)
        .map(|lb| lb.changes.len())
        .sum();
    gauge!(DRIFT_CHANGES, "target" => target.clone()).set(changes as f64);

    let now: BTreeSet<(String, DriftKind)> = match event.per_load_balancer {
        Some(limit) => event
            .report
            .load_balancers
            .iter()
            .take(limit)
            .map(|lb| (lb.name.clone(), lb.kind))
            .collect(),
        None => BTreeSet::new(),
    };
    for (name, kind) in series.shown.difference(&now) {
        gauge!(LOAD_BALANCER_DRIFT, "target" => target.clone(), "name" => name.clone(), "kind" => kind.as_str())
            .set(0.0);
    }
    for (name, kind) in &now {
        gauge!(LOAD_BALANCER_DRIFT, "target" => target.clone(), "name" => name.clone(), "kind" => kind.as_str())
            .set(1.0);
    }
    series.shown = now;

    tracing::info!(
        target_name = event.target,
        outcome,
        seconds = event.duration.as_secs_f64(),
        live = summary.live,
        recorded = summary.recorded,
        in_sync = summary.in_sync,
        changed = summary.changed,
        missing_record = summary.missing_record,
        missing_live = summary.missing_live,
        invalid_record = summary.invalid_record,
        changes,
        deep_read = event.deep_read,
        deep_errors = event.report.error.is_some(),
        "cycle complete"
    );
    for lb in &event.report.load_balancers {
        for change in &lb.changes {
            tracing::debug!(
                target_name = event.target,
                load_balancer = %lb.name,
                path = %change.path,
                recorded = %change.recorded,
                live = %change.live,
                "drift"
            );
        }
        if lb.changes.is_empty() {
            tracing::debug!(target_name = event.target, load_balancer = %lb.name, kind = lb.kind.as_str(), "drift");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::diff::Change;
    use crate::reconcile::report::{GuardView, LoadBalancerReport, Summary};
    use serde_json::json;

    fn report(lbs: Vec<(&str, DriftKind)>) -> TargetReport {
        let mut summary = Summary {
            live: 3,
            recorded: 2,
            ..Summary::default()
        };
        for (_, kind) in &lbs {
            summary.add(*kind);
        }
        TargetReport {
            target: "prod".into(),
            complete: true,
            error: None,
            summary,
            load_balancers: lbs
                .into_iter()
                .map(|(name, kind)| LoadBalancerReport {
                    name: name.into(),
                    kind,
                    changes: if kind == DriftKind::Changed {
                        vec![Change {
                            path: "/scheme".into(),
                            recorded: json!("a"),
                            live: json!("b"),
                        }]
                    } else {
                        vec![]
                    },
                    reason: None,
                })
                .collect(),
            guard: GuardView {
                paused: false,
                reason: None,
            },
            deep_checked_at: None,
            exit_code: 0,
        }
    }

    fn render(f: impl FnOnce()) -> String {
        let recorder = recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            f()
        });
        handle.render()
    }

    #[test]
    fn a_cycle_exports_the_spec_series() {
        let text = render(|| {
            target_started("prod", false);
            guard_state("prod", false, 0);
            let mut series = DriftSeries::default();
            let first = report(vec![
                ("a", DriftKind::Changed),
                ("b", DriftKind::MissingRecord),
            ]);
            let event = CycleEvent {
                target: "prod",
                complete: true,
                duration: Duration::from_millis(300),
                report: &first,
                deep_read: 2,
                deep_check_age: Some(12.0),
                per_load_balancer: Some(10),
            };
            cycle_finished(&event, &mut series);
            let second = report(vec![("b", DriftKind::MissingRecord)]);
            cycle_finished(
                &CycleEvent {
                    report: &second,
                    ..event
                },
                &mut series,
            );
            aws_request(
                "prod",
                "elasticloadbalancing",
                "DescribeLoadBalancers",
                "ok",
                Duration::from_millis(20),
            );
        });
        for line in [
            "lbrecon_cycles_total{target=\"prod\",outcome=\"complete\"} 2",
            "lbrecon_load_balancers{target=\"prod\",source=\"live\"} 3",
            "lbrecon_load_balancers{target=\"prod\",source=\"recorded\"} 2",
            "lbrecon_drift_load_balancers{target=\"prod\",kind=\"missing_record\"} 1",
            "lbrecon_drift_load_balancers{target=\"prod\",kind=\"changed\"} 0",
            "lbrecon_drift_load_balancers{target=\"prod\",kind=\"in_sync\"} 0",
            "lbrecon_drift_changes{target=\"prod\"} 0",
            "lbrecon_load_balancer_drift{target=\"prod\",name=\"a\",kind=\"changed\"} 0",
            "lbrecon_load_balancer_drift{target=\"prod\",name=\"b\",kind=\"missing_record\"} 1",
            "lbrecon_deep_check_age_seconds{target=\"prod\"} 12",
            "lbrecon_leader{target=\"prod\"} 1",
            "lbrecon_scaling_paused{target=\"prod\"} 0",
            "lbrecon_quarantined_load_balancers{target=\"prod\"} 0",
            "lbrecon_aws_requests_total{target=\"prod\",service=\"elasticloadbalancing\",operation=\"DescribeLoadBalancers\",outcome=\"ok\"} 1",
            "# TYPE lbrecon_cycle_duration_seconds histogram",
            "# TYPE lbrecon_aws_request_duration_seconds histogram",
            "# TYPE lbrecon_cycles_total counter",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        assert!(text.contains(&format!(
            "lbrecon_build_info{{target=\"prod\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn an_incomplete_cycle_keeps_the_drift_gauges() {
        let text = render(|| {
            let mut series = DriftSeries::default();
            let complete = report(vec![("b", DriftKind::MissingRecord)]);
            let event = CycleEvent {
                target: "prod",
                complete: true,
                duration: Duration::from_millis(300),
                report: &complete,
                deep_read: 0,
                deep_check_age: None,
                per_load_balancer: None,
            };
            cycle_finished(&event, &mut series);
            let mut failed = report(vec![]);
            failed.summary = Summary::default();
            cycle_finished(
                &CycleEvent {
                    complete: false,
                    report: &failed,
                    ..event
                },
                &mut series,
            );
        });
        assert!(
            text.contains("lbrecon_cycles_total{target=\"prod\",outcome=\"incomplete\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "lbrecon_drift_load_balancers{target=\"prod\",kind=\"missing_record\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("lbrecon_load_balancer_drift"), "{text}");
    }
}

#[cfg(test)]
mod protection_tests {
    use super::*;

    type Reading<'a> = Result<(bool, String), &'a str>;

    fn readings(policy: Reading<'_>) -> [(&'static str, Reading<'_>); 3] {
        [
            ("pitr", Ok((true, String::new()))),
            ("deletion_protection", Ok((true, String::new()))),
            ("delete_policy", policy),
        ]
    }

    #[test]
    fn an_unknown_protection_leaves_the_page_and_comes_back_once_read() {
        // Its own target name: the set of unknown protections is shared by the process.
        let target = "render-test";
        let page = format!(
            "# TYPE {STATE_TABLE_PROTECTION} gauge\n\
             {STATE_TABLE_PROTECTION}{{target=\"{target}\",kind=\"pitr\"}} 1\n\
             {STATE_TABLE_PROTECTION}{{target=\"{target}\",kind=\"delete_policy\"}} 1\n\
             {STATE_TABLE_PROTECTION}{{target=\"other\",kind=\"delete_policy\"}} 0\n"
        );
        let denied = "GetResourcePolicy failed: AccessDeniedException: not authorized (for state table lb-state)";
        state_table_protection(target, "lb-state", readings(Err(denied)));
        let shown = render(page.clone());
        assert!(
            shown.contains(&format!("target=\"{target}\",kind=\"pitr\"}} 1")),
            "{shown}"
        );
        assert!(
            !shown.contains(&format!("target=\"{target}\",kind=\"delete_policy\"")),
            "{shown}"
        );
        assert!(
            shown.contains("target=\"other\",kind=\"delete_policy\"} 0"),
            "{shown}"
        );
        state_table_protection(
            target,
            "lb-state",
            readings(Ok((false, "no resource policy".to_string()))),
        );
        assert!(render(page).contains(&format!("target=\"{target}\",kind=\"delete_policy\"}} 1")));
    }
}
