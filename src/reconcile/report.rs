//! The drift report (docs/architecture.md#commands): its JSON shape, its table for people, and exit codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::reconcile::diff::Change;

/// Exit codes of the command line (docs/architecture.md#commands).
pub mod exit {
    /// In sync, or done.
    pub const OK: i32 = 0;
    /// An error, including any read that failed in `check`.
    pub const ERROR: i32 = 1;
    /// Drift found (`check`).
    pub const DRIFT: i32 = 2;
    /// A usage error.
    pub const USAGE: i32 = 64;
    /// A configuration error.
    pub const CONFIG: i32 = 78;

    /// The worst of several targets' codes: 78, then 1, then 2, then 0.
    pub fn worst(codes: impl IntoIterator<Item = i32>) -> i32 {
        let rank = |code: i32| match code {
            CONFIG => 4,
            ERROR => 3,
            DRIFT => 2,
            OK => 0,
            _ => 1,
        };
        codes
            .into_iter()
            .max_by_key(|code| rank(*code))
            .unwrap_or(OK)
    }
}

/// The state of one load balancer in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    InSync,
    Changed,
    MissingRecord,
    MissingLive,
    InvalidRecord,
}

impl DriftKind {
    pub const ALL: [DriftKind; 5] = [
        DriftKind::InSync,
        DriftKind::Changed,
        DriftKind::MissingRecord,
        DriftKind::MissingLive,
        DriftKind::InvalidRecord,
    ];

    /// The kind's name as reports and metric labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::InSync => "in_sync",
            DriftKind::Changed => "changed",
            DriftKind::MissingRecord => "missing_record",
            DriftKind::MissingLive => "missing_live",
            DriftKind::InvalidRecord => "invalid_record",
        }
    }
}

/// The counts of one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Live load balancers.
    pub live: u64,
    /// Items in the state table, invalid ones included.
    pub recorded: u64,
    pub in_sync: u64,
    pub changed: u64,
    pub missing_record: u64,
    pub missing_live: u64,
    pub invalid_record: u64,
    /// Live load balancers outside the target's scope (`[targets.scope]`).
    pub out_of_scope: u64,
}

impl Summary {
    pub fn add(&mut self, kind: DriftKind) {
        *self.count_mut(kind) += 1;
    }

    pub fn count(&self, kind: DriftKind) -> u64 {
        match kind {
            DriftKind::InSync => self.in_sync,
            DriftKind::Changed => self.changed,
            DriftKind::MissingRecord => self.missing_record,
            DriftKind::MissingLive => self.missing_live,
            DriftKind::InvalidRecord => self.invalid_record,
        }
    }

    fn count_mut(&mut self, kind: DriftKind) -> &mut u64 {
        match kind {
            DriftKind::InSync => &mut self.in_sync,
            DriftKind::Changed => &mut self.changed,
            DriftKind::MissingRecord => &mut self.missing_record,
            DriftKind::MissingLive => &mut self.missing_live,
            DriftKind::InvalidRecord => &mut self.invalid_record,
        }
    }

    /// Whether any load balancer is not in sync.
    pub fn has_drift(&self) -> bool {
        DriftKind::ALL
            .iter()
            .any(|kind| *kind != DriftKind::InSync && self.count(*kind) > 0)
    }
}

/// One load balancer that is not in sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadBalancerReport {
    pub name: String,
    pub kind: DriftKind,
    pub changes: Vec<Change>,
    /// Why the record is invalid (`invalid_record` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The pause state a report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardView {
    pub paused: bool,
    pub reason: Option<String>,
}

/// One target's report.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub target: String,
    /// Every read succeeded.
    pub complete: bool,
    /// The failed call, where one failed.
    pub error: Option<String>,
    pub summary: Summary,
    pub load_balancers: Vec<LoadBalancerReport>,
    pub guard: GuardView,
    /// The daemon's report (`/drift`) only: when each live load balancer with a valid record
    /// was last deep-checked (RFC 3339), `null` when never. `check` reads everything at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deep_checked_at: Option<BTreeMap<String, Option<String>>>,
    /// The exit code of this target (not part of the JSON).
    #[serde(skip)]
    pub exit_code: i32,
}

impl TargetReport {
    /// Sets the exit code from what the report holds: an error is 1, drift 2, else 0; a
    /// configuration error (78) already set stays.
    pub fn with_exit_code(mut self) -> Self {
        self.exit_code = if self.exit_code == exit::CONFIG {
            exit::CONFIG
        } else if self.error.is_some() || !self.complete {
            exit::ERROR
        } else if !self.load_balancers.is_empty() {
            exit::DRIFT
        } else {
            exit::OK
        };
        self
    }
}

/// The whole `check` report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// RFC 3339.
    pub generated_at: String,
    pub targets: Vec<TargetReport>,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        exit::worst(self.targets.iter().map(|target| target.exit_code))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for target in &self.targets {
            let s = &target.summary;
            let state = if target.complete {
                "complete"
            } else {
                "INCOMPLETE"
            };
            let _ = writeln!(
                out,
                "target {} ({state}): {} live, {} recorded; {} in sync, {} changed, {} missing record, {} missing live, {} invalid record",
                target.target,
                s.live,
                s.recorded,
                s.in_sync,
                s.changed,
                s.missing_record,
                s.missing_live,
                s.invalid_record
            );
            if s.out_of_scope > 0 {
                let _ = writeln!(
                    out,
                    "  {} live load balancer(s) outside the target's scope, not checked",
                    s.out_of_scope
                );
            }
            let guard = match (&target.guard.paused, &target.guard.reason) {
                (true, Some(reason)) => format!("PAUSED: {reason}"),
                (true, None) => "PAUSED".to_string(),
                (false, Some(note)) => format!("not paused ({note})"),
                (false, None) => "not paused".to_string(),
            };
            let _ = writeln!(out, "  guard: {guard}");
            if let Some(error) = &target.error {
                let _ = writeln!(out, "  error: {error}");
            }
            if target.load_balancers.is_empty() {
                let _ = writeln!(out, "  no drift");
                continue;
            }
            let width = target
                .load_balancers
                .iter()
                .map(|lb| lb.name.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let _ = writeln!(out, "  {:width$}  {:14}  DETAIL", "NAME", "KIND");
            for lb in &target.load_balancers {
                let first = match (&lb.reason, lb.changes.first()) {
                    (Some(reason), _) => reason.clone(),
                    (None, Some(change)) => describe(change),
                    (None, None) => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {:width$}  {:14}  {first}",
                    lb.name,
                    lb.kind.as_str()
                );
                for change in lb.changes.iter().skip(1) {
                    let _ = writeln!(out, "  {:width$}  {:14}  {}", "", "", describe(change));
                }
            }
        }
        out
    }
}

fn describe(change: &Change) -> String {
    format!(
        "{}: {} -> {}",
        change.path,
        short(&change.recorded),
        short(&change.live)
    )
}

/// A value on one line, cut to a readable length.
fn short(value: &Value) -> String {
    let text = value.to_string();
    const LIMIT: usize = 80;
    if text.chars().count() > LIMIT {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_worst_exit_code_wins() {
        assert_eq!(exit::worst([0, 2, 1]), 1);
        assert_eq!(exit::worst([2, 78, 1]), 78);
        assert_eq!(exit::worst([0, 2]), 2);
        assert_eq!(exit::worst([]), 0);
    }

    #[test]
    fn the_json_has_the_spec_fields() {
        let report = Report {
            generated_at: "2026-01-01T00:00:00Z".into(),
            targets: vec![
                TargetReport {
                    target: "prod".into(),
                    complete: true,
                    error: None,
                    summary: Summary {
                        live: 1,
                        recorded: 1,
                        changed: 1,
                        ..Summary::default()
                    },
                    load_balancers: vec![LoadBalancerReport {
                        name: "web".into(),
                        kind: DriftKind::Changed,
                        changes: vec![Change {
                            path: "/scheme".into(),
                            recorded: json!("internal"),
                            live: json!("internet-facing"),
                        }],
                        reason: None,
                    }],
                    guard: GuardView {
                        paused: false,
                        reason: None,
                    },
                    deep_checked_at: None,
                    exit_code: 0,
                }
                .with_exit_code(),
            ],
        };
        let value: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            value,
            json!({"generated_at": "2026-01-01T00:00:00Z", "targets": [{
                "target": "prod", "complete": true, "error": null,
                "summary": {"live": 1, "recorded": 1, "in_sync": 0, "changed": 1,
                            "missing_record": 0, "missing_live": 0, "invalid_record": 0,
                            "out_of_scope": 0},
                "load_balancers": [{"name": "web", "kind": "changed", "changes": [
                    {"path": "/scheme", "recorded": "internal", "live": "internet-facing"}]}],
                "guard": {"paused": false, "reason": null}}]})
        );
        assert_eq!(report.exit_code(), exit::DRIFT);
        let table = report.to_table();
        assert!(
            table.contains("/scheme: \"internal\" -> \"internet-facing\""),
            "{table}"
        );
    }
}
