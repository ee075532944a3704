//! Pausers (SPEC 8): the ways lbrecon pauses the operator's workflows, and undoes exactly that.
//!
//! - `dynamodb_flag`, always on: the control item's `paused` flag, which workflows read before
//!   acting. Writing the item is the pause; the other pausers run after it is written.
//! - `autoscaling`: `SuspendProcesses` on the Auto Scaling groups behind the target groups of the
//!   affected load balancers (or of all of them). It records the processes it suspended that
//!   were not suspended already; resume resumes only those.
//! - `command`: runs a program with the event as JSON on stdin, with a timeout.
//!
//! Every pauser is idempotent, and one that fails does not stop the others.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::aws::autoscaling::{AutoScaling, ScalingGroup};
use crate::config::{GuardConfig, PauseScope, PauserConfig, PauserKind};
use crate::control::{PauserRecord, PauserStatus};

/// The processes an `autoscaling` pauser suspends unless configured otherwise.
pub const DEFAULT_PROCESSES: &[&str] = &[
    "Launch",
    "Terminate",
    "AZRebalance",
    "AlarmNotification",
    "ScheduledActions",
    "ReplaceUnhealthy",
];
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The event a pause or resume is about; a `command` pauser gets it as JSON on stdin.
#[derive(Debug, Clone, Serialize)]
pub struct PauseEvent {
    /// `pause` or `resume`.
    pub event: &'static str,
    pub target: String,
    pub reason: String,
    /// RFC 3339.
    pub time: String,
    pub by: String,
    pub missing: Vec<String>,
    pub quarantine: Vec<String>,
}

/// What the pausers need to know of the fleet.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Target groups of the affected (missing) load balancers.
    pub affected_target_groups: BTreeSet<String>,
    /// Target groups of every load balancer of the target.
    pub all_target_groups: BTreeSet<String>,
}

/// The key of the `dynamodb_flag` pauser in the control item.
pub const DYNAMODB_FLAG: &str = "dynamodb_flag";

/// One configured pauser, with its key in the control item.
#[derive(Debug, Clone)]
pub struct Pauser {
    pub key: String,
    pub config: PauserConfig,
}

/// The configured pausers: `dynamodb_flag` first and always, then the others in config order.
/// Keys are the kind, with `#N` for a second one of a kind.
pub fn configured(config: &GuardConfig) -> Vec<Pauser> {
    let mut pausers = vec![Pauser::of_kind(DYNAMODB_FLAG, PauserKind::DynamodbFlag)];
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for pauser in &config.pausers {
        if pauser.kind == PauserKind::DynamodbFlag {
            continue;
        }
        let kind = kind_name(pauser.kind);
        let n = seen.entry(kind).or_insert(0);
        *n += 1;
        let key = if *n == 1 {
            kind.to_string()
        } else {
            format!("{kind}#{n}")
        };
        pausers.push(Pauser {
            key,
            config: pauser.clone(),
        });
    }
    pausers
}

fn kind_name(kind: PauserKind) -> &'static str {
    match kind {
        PauserKind::DynamodbFlag => DYNAMODB_FLAG,
        PauserKind::Autoscaling => "autoscaling",
        PauserKind::Command => "command",
    }
}

impl Pauser {
    /// A pauser of `kind` with nothing configured: enough to undo what a record says it did
    /// after its configuration was removed.
    pub fn of_kind(key: &str, kind: PauserKind) -> Pauser {
        Pauser {
            key: key.to_string(),
            config: PauserConfig {
                kind,
                scope: None,
                processes: None,
                command: None,
                timeout: None,
            },
        }
    }

    fn processes(&self) -> BTreeSet<String> {
        match &self.config.processes {
            Some(processes) => processes.iter().cloned().collect(),
            None => DEFAULT_PROCESSES.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn target_groups<'a>(&self, scope: &'a Scope) -> &'a BTreeSet<String> {
        match self.config.scope.unwrap_or(PauseScope::Affected) {
            PauseScope::Affected => &scope.affected_target_groups,
            PauseScope::All => &scope.all_target_groups,
        }
    }

    /// Whether this pauser acts on Auto Scaling groups (and needs them read first).
    pub fn needs_groups(&self) -> bool {
        self.config.kind == PauserKind::Autoscaling
    }

    /// A fresh record, planned: what this pauser is about to do, before it knows the groups.
    pub fn plan(&self, scope: &Scope) -> PauserRecord {
        let detail = match self.config.kind {
            PauserKind::DynamodbFlag => "set paused in the control item".to_string(),
            PauserKind::Autoscaling => format!(
                "suspend {} on the Auto Scaling groups behind {} target group(s)",
                self.processes().into_iter().collect::<Vec<_>>().join(", "),
                self.target_groups(scope).len()
            ),
            PauserKind::Command => format!(
                "deliver the pause event to {}",
                self.config.command.clone().unwrap_or_default().join(" ")
            ),
        };
        PauserRecord {
            detail: Some(detail),
            ..PauserRecord::planned(self.config.kind)
        }
    }

    /// Writes ahead, into `record`, what this pauser is about to do, from the groups as read
    /// just now. For `autoscaling`: on every group behind the scope's target groups, the
    /// processes not suspended now and not undone by a person go into `suspending`. With
    /// `only_new_groups` (extending a pause that is done), groups already handled are left
    /// alone, so nothing a person resumed in between is suspended again. Steps written ahead
    /// earlier and not done stay, to be finished.
    pub fn intend(
        &self,
        record: &mut PauserRecord,
        groups: &[ScalingGroup],
        scope: &Scope,
        only_new_groups: bool,
    ) {
        if self.config.kind != PauserKind::Autoscaling {
            return;
        }
        let processes = self.processes();
        let target_groups = self.target_groups(scope);
        let mut touched = 0;
        for group in groups {
            if group.target_group_arns.is_disjoint(target_groups) {
                continue;
            }
            touched += 1;
            let known = record.suspended.contains_key(&group.name)
                || record.undone.contains_key(&group.name)
                || record.suspending.contains_key(&group.name);
            if only_new_groups && known {
                continue;
            }
            let undone = record.undone.get(&group.name);
            let to_suspend: BTreeSet<String> = processes
                .iter()
                .filter(|process| {
                    !group.suspended.contains(*process)
                        && undone.is_none_or(|undone| !undone.contains(*process))
                })
                .cloned()
                .collect();
            if !to_suspend.is_empty() {
                record
                    .suspending
                    .entry(group.name.clone())
                    .or_default()
                    .extend(to_suspend);
            }
        }
        record.detail = Some(format!(
            "suspend processes on {} of {touched} group(s) behind {} target group(s)",
            record.suspending.len() + record.suspended.len(),
            target_groups.len()
        ));
    }

    /// Whether this record holds anything still to do: a step written ahead and not done, or
    /// an attempt that failed or was cut short.
    pub fn has_work(&self, record: &PauserRecord) -> bool {
        !record.suspending.is_empty()
            || matches!(record.status, PauserStatus::Planned | PauserStatus::Failed)
    }

    /// Carries out what `record` wrote ahead and returns the record with it marked done.
    /// Idempotent: suspending a suspended process, or delivering an event twice, changes
    /// nothing. A step that fails stays written ahead (its request may have landed), so resume
    /// still undoes it and the next cycle retries it.
    pub async fn act(
        &self,
        record: &PauserRecord,
        event: &PauseEvent,
        autoscaling: &AutoScaling,
    ) -> PauserRecord {
        let mut record = record.clone();
        record.attempts += 1;
        let result = match self.config.kind {
            PauserKind::DynamodbFlag => Ok(()),
            PauserKind::Autoscaling => {
                let mut errors = Vec::new();
                for (group, processes) in std::mem::take(&mut record.suspending) {
                    match autoscaling.suspend(&group, &processes).await {
                        Ok(()) => record.suspended.entry(group).or_default().extend(processes),
                        Err(err) => {
                            errors.push(format!("{group}: {err}"));
                            record.suspending.insert(group, processes);
                        }
                    }
                }
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors.join("; "))
                }
            }
            PauserKind::Command => self.run_command(event).await,
        };
        match result {
            Ok(()) => {
                record.status = PauserStatus::Done;
                record.error = None;
            }
            Err(error) => {
                record.status = PauserStatus::Failed;
                record.error = Some(error);
            }
        }
        record
    }

    /// Undoes everything `record` wrote ahead, done or not: resuming a process that is not
    /// suspended, or delivering a resume event for a pause event that never arrived, changes
    /// nothing. Returns the record with what could not be undone (the rest removed).
    pub async fn resume(
        &self,
        record: &PauserRecord,
        event: &PauseEvent,
        autoscaling: &AutoScaling,
    ) -> Result<(), String> {
        match self.config.kind {
            PauserKind::DynamodbFlag => Ok(()),
            PauserKind::Autoscaling => {
                let mut errors = Vec::new();
                for (group, processes) in record.to_undo() {
                    if let Err(err) = autoscaling.resume(&group, &processes).await {
                        errors.push(format!("{group}: {err}"));
                    }
                }
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors.join("; "))
                }
            }
            PauserKind::Command => self.run_command(event).await,
        }
    }

    /// Checks, against the groups as read just now, that what this pauser did is still in
    /// effect. Processes a person resumed since are moved to `undone` (and never suspended
    /// again); returns them, by group. Steps only written ahead are not checked: they may not
    /// have happened yet.
    pub fn verify(
        &self,
        record: &mut PauserRecord,
        groups: &[ScalingGroup],
    ) -> BTreeMap<String, BTreeSet<String>> {
        if self.config.kind != PauserKind::Autoscaling || record.suspended.is_empty() {
            return BTreeMap::new();
        }
        let current: BTreeMap<&str, &BTreeSet<String>> = groups
            .iter()
            .map(|g| (g.name.as_str(), &g.suspended))
            .collect();
        let mut undone = BTreeMap::new();
        for (group, processes) in record.suspended.iter_mut() {
            let still = current.get(group.as_str());
            let resumed: BTreeSet<String> = processes
                .iter()
                .filter(|process| still.is_some_and(|s| !s.contains(*process)))
                .cloned()
                .collect();
            if !resumed.is_empty() {
                processes.retain(|process| !resumed.contains(process));
                record
                    .undone
                    .entry(group.clone())
                    .or_default()
                    .extend(resumed.iter().cloned());
                undone.insert(group.clone(), resumed);
            }
        }
        record
            .suspended
            .retain(|_, processes| !processes.is_empty());
        undone
    }

    async fn run_command(&self, event: &PauseEvent) -> Result<(), String> {
        let argv = self.config.command.clone().unwrap_or_default();
        let Some((program, args)) = argv.split_first() else {
            return Err("no command configured".into());
        };
        let timeout = self.config.timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
        let input = serde_json::to_vec(event).map_err(|err| err.to_string())?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start {program}: {err}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is not an error.
            let _ = stdin.write_all(&input).await;
        }
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Err(_) => Err(format!(
                "{program} did not finish within {}",
                humantime::format_duration(timeout)
            )),
            Ok(Err(err)) => Err(format!("{program}: {err}")),
            Ok(Ok(output)) if output.status.success() => Ok(()),
            Ok(Ok(output)) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: String = stderr
                    .trim()
                    .chars()
                    .rev()
                    .take(300)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect();
                Err(format!("{program} exited with {}: {tail}", output.status))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard_with(pausers: Vec<PauserConfig>) -> GuardConfig {
        GuardConfig {
            pausers,
            ..Default::default()
        }
    }

    fn command(argv: &[&str], timeout: Option<Duration>) -> PauserConfig {
        PauserConfig {
            kind: PauserKind::Command,
            scope: None,
            processes: None,
            command: Some(argv.iter().map(|s| s.to_string()).collect()),
            timeout,
        }
    }

    fn event() -> PauseEvent {
        PauseEvent {
            event: "pause",
            target: "prod".into(),
            reason: "test".into(),
            time: "2026-01-01T00:00:00Z".into(),
            by: "lbrecon".into(),
            missing: vec!["web-1".into()],
            quarantine: vec![],
        }
    }

    #[test]
    fn the_flag_is_always_first_and_keys_are_unique() {
        let pausers = configured(&guard_with(vec![
            command(&["a"], None),
            PauserConfig {
                kind: PauserKind::DynamodbFlag,
                scope: None,
                processes: None,
                command: None,
                timeout: None,
            },
            command(&["b"], None),
        ]));
        let keys: Vec<&str> = pausers.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["dynamodb_flag", "command", "command#2"]);
    }

    #[tokio::test]
    async fn a_command_gets_the_event_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("event.json");
        let script = format!("cat > {}", out.display());
        let pauser = &configured(&guard_with(vec![command(&["sh", "-c", &script], None)]))[1];
        assert_eq!(pauser.run_command(&event()).await, Ok(()));
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        assert_eq!(written["event"], "pause");
        assert_eq!(written["missing"][0], "web-1");
    }

    #[tokio::test]
    async fn a_failing_or_slow_command_is_an_error() {
        let failing = &configured(&guard_with(vec![command(
            &["sh", "-c", "echo broken >&2; exit 3"],
            None,
        )]))[1];
        let err = failing.run_command(&event()).await.unwrap_err();
        assert!(err.contains("broken"), "{err}");
        let slow = &configured(&guard_with(vec![command(
            &["sleep", "5"],
            Some(Duration::from_millis(200)),
        )]))[1];
        let err = slow.run_command(&event()).await.unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
        let missing = &configured(&guard_with(vec![command(&["/nonexistent/program"], None)]))[1];
        assert!(
            missing
                .run_command(&event())
                .await
                .unwrap_err()
                .contains("cannot start")
        );
    }
}
