//! Pausers (docs/architecture.md#guard): the ways lbrecon pauses the operator's workflows, and undoes exactly that.
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

use crate::aws::autoscaling::ScalingGroup;
use crate::aws::control_calls::AutoScalingCalls;
use crate::control::{PauserRecord, PauserStatus};
use crate::runtime::config::{GuardConfig, PauseScope, PauserConfig, PauserKind};

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
        let mut acted_on = 0;
        for group in groups {
            if group.target_group_arns.is_disjoint(target_groups) {
                continue;
            }
            touched += 1;
            let is_mine = |record: &PauserRecord| {
                record
                    .suspending
                    .get(&group.name)
                    .is_some_and(|p| !p.is_empty())
                    || record
                        .suspended
                        .get(&group.name)
                        .is_some_and(|p| !p.is_empty())
            };
            let known = record.suspended.contains_key(&group.name)
                || record.undone.contains_key(&group.name)
                || record.suspending.contains_key(&group.name);
            if only_new_groups && known {
                acted_on += usize::from(is_mine(record));
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
            if to_suspend.is_empty() {
                // Handled, with nothing to suspend: remembered (an empty entry), so extending
                // the pause later leaves it alone too.
                record.suspended.entry(group.name.clone()).or_default();
            } else {
                record
                    .suspending
                    .entry(group.name.clone())
                    .or_default()
                    .extend(to_suspend);
            }
            acted_on += usize::from(is_mine(record));
        }
        record.detail = Some(format!(
            "suspend processes on {acted_on} of {touched} group(s) behind {} target group(s)",
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
        autoscaling: &impl AutoScalingCalls,
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
    /// nothing. Fails with what could not be undone, so the record stays for the next resume.
    pub async fn resume(
        &self,
        record: &PauserRecord,
        event: &PauseEvent,
        autoscaling: &impl AutoScalingCalls,
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

    // Autoscaling: intend, verify, has_work, plan.

    /// Processes by name.
    fn processes(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    /// Per group, processes, as a fixture spells them.
    type PerGroup<'a> = &'a [(&'a str, &'a [&'a str])];

    /// Per group, processes: `[("asg-1", &["Launch"])]`.
    fn per_group(groups: PerGroup) -> BTreeMap<String, BTreeSet<String>> {
        groups
            .iter()
            .map(|(group, names)| (group.to_string(), processes(names)))
            .collect()
    }

    /// An Auto Scaling group behind `target_groups`, with `suspended` suspended now.
    fn group(name: &str, target_groups: &[&str], suspended: &[&str]) -> ScalingGroup {
        ScalingGroup {
            name: name.to_string(),
            target_group_arns: processes(target_groups),
            suspended: processes(suspended),
        }
    }

    /// An `autoscaling` pauser that suspends `Launch` and `Terminate`.
    fn autoscaling(scope: Option<PauseScope>) -> Pauser {
        Pauser {
            key: "autoscaling".into(),
            config: PauserConfig {
                scope,
                processes: Some(vec!["Launch".into(), "Terminate".into()]),
                ..Pauser::of_kind("autoscaling", PauserKind::Autoscaling).config
            },
        }
    }

    fn scope(affected: &[&str], all: &[&str]) -> Scope {
        Scope {
            affected_target_groups: processes(affected),
            all_target_groups: processes(all),
        }
    }

    /// An autoscaling record with these steps recorded.
    fn record(
        status: PauserStatus,
        suspending: &[(&str, &[&str])],
        suspended: &[(&str, &[&str])],
        undone: &[(&str, &[&str])],
    ) -> PauserRecord {
        PauserRecord {
            status,
            suspending: per_group(suspending),
            suspended: per_group(suspended),
            undone: per_group(undone),
            ..PauserRecord::planned(PauserKind::Autoscaling)
        }
    }

    fn fresh() -> PauserRecord {
        PauserRecord::planned(PauserKind::Autoscaling)
    }

    const BOTH: &[&str] = &["Launch", "Terminate"];

    struct IntendRow {
        name: &'static str,
        pauser: Pauser,
        record: PauserRecord,
        groups: Vec<ScalingGroup>,
        only_new_groups: bool,
        suspending: BTreeMap<String, BTreeSet<String>>,
    }

    #[test]
    fn intend_writes_ahead_only_what_it_may_suspend() {
        let affected = scope(&["tg-a", "tg-b"], &["tg-a", "tg-b", "tg-z"]);
        let rows = vec![
            IntendRow {
                name: "a fresh pause writes ahead every process not suspended",
                pauser: autoscaling(None),
                record: fresh(),
                groups: vec![group("asg-1", &["tg-a"], &[])],
                only_new_groups: false,
                suspending: per_group(&[("asg-1", BOTH)]),
            },
            IntendRow {
                name: "a process a person suspended is not written ahead",
                pauser: autoscaling(None),
                record: fresh(),
                groups: vec![
                    group("asg-1", &["tg-a"], &["Launch", "AZRebalance"]),
                    group("asg-2", &["tg-b"], BOTH),
                ],
                only_new_groups: false,
                suspending: per_group(&[("asg-1", &["Terminate"])]),
            },
            IntendRow {
                name: "processes a person undid are never intended again",
                pauser: autoscaling(None),
                record: record(
                    PauserStatus::Failed,
                    &[],
                    &[("asg-2", &["Launch"])],
                    &[("asg-1", &["Launch"]), ("asg-2", &["Terminate"])],
                ),
                groups: vec![
                    group("asg-1", &["tg-a"], &[]),
                    group("asg-2", &["tg-a"], &["Launch"]),
                ],
                only_new_groups: false,
                suspending: per_group(&[("asg-1", &["Terminate"])]),
            },
            IntendRow {
                name: "only new groups: known groups untouched, new ones intended",
                pauser: autoscaling(None),
                record: record(
                    PauserStatus::Done,
                    &[],
                    &[("asg-1", &["Launch"])],
                    &[("asg-2", &["Launch"])],
                ),
                groups: vec![
                    // A person resumed Terminate here, or it was never ours: left alone.
                    group("asg-1", &["tg-a"], &[]),
                    group("asg-2", &["tg-a"], &[]),
                    group("asg-3", &["tg-b"], &["Launch"]),
                ],
                only_new_groups: true,
                suspending: per_group(&[("asg-3", &["Terminate"])]),
            },
            IntendRow {
                name: "all groups: known groups get what they lack",
                pauser: autoscaling(None),
                record: record(
                    PauserStatus::Failed,
                    &[],
                    &[("asg-1", &["Launch"])],
                    &[("asg-2", &["Launch"])],
                ),
                groups: vec![
                    group("asg-1", &["tg-a"], &["Launch"]),
                    group("asg-2", &["tg-a"], &[]),
                    group("asg-3", &["tg-b"], &[]),
                ],
                only_new_groups: false,
                suspending: per_group(&[
                    ("asg-1", &["Terminate"]),
                    ("asg-2", &["Terminate"]),
                    ("asg-3", BOTH),
                ]),
            },
            IntendRow {
                name: "groups outside the scope are untouched",
                pauser: autoscaling(None),
                record: fresh(),
                groups: vec![
                    group("asg-1", &["tg-a"], &[]),
                    group("asg-9", &["tg-z"], &[]),
                    group("asg-0", &[], &[]),
                ],
                only_new_groups: false,
                suspending: per_group(&[("asg-1", BOTH)]),
            },
            IntendRow {
                name: "a group is in scope through any of its target groups",
                pauser: autoscaling(None),
                record: fresh(),
                groups: vec![group("asg-1", &["tg-z", "tg-b"], &[])],
                only_new_groups: false,
                suspending: per_group(&[("asg-1", BOTH)]),
            },
            IntendRow {
                name: "the all scope reaches every load balancer's groups",
                pauser: autoscaling(Some(PauseScope::All)),
                record: fresh(),
                groups: vec![
                    group("asg-1", &["tg-a"], &[]),
                    group("asg-9", &["tg-z"], &[]),
                    group("asg-0", &["tg-elsewhere"], &[]),
                ],
                only_new_groups: false,
                suspending: per_group(&[("asg-1", BOTH), ("asg-9", BOTH)]),
            },
            IntendRow {
                name: "leftover steps written ahead stay, and are extended",
                pauser: autoscaling(None),
                record: record(
                    PauserStatus::Planned,
                    &[("asg-gone", &["Launch"]), ("asg-1", &["Launch"])],
                    &[],
                    &[],
                ),
                groups: vec![group("asg-1", &["tg-a"], &[])],
                only_new_groups: false,
                suspending: per_group(&[("asg-gone", &["Launch"]), ("asg-1", BOTH)]),
            },
            IntendRow {
                name: "leftover steps stay as they are with only new groups",
                pauser: autoscaling(None),
                record: record(PauserStatus::Done, &[("asg-1", &["Launch"])], &[], &[]),
                groups: vec![group("asg-1", &["tg-a"], &[])],
                only_new_groups: true,
                suspending: per_group(&[("asg-1", &["Launch"])]),
            },
            IntendRow {
                name: "a pauser that is not autoscaling writes nothing ahead",
                pauser: Pauser::of_kind("command", PauserKind::Command),
                record: fresh(),
                groups: vec![group("asg-1", &["tg-a"], &[])],
                only_new_groups: false,
                suspending: BTreeMap::new(),
            },
        ];
        for row in rows {
            let name = row.name;
            let mut record = row.record.clone();
            row.pauser
                .intend(&mut record, &row.groups, &affected, row.only_new_groups);
            assert_eq!(record.suspending, row.suspending, "{name}: suspending");
            // Only steps about to happen are written: nothing is marked done or undone (a
            // group handled with nothing to suspend is remembered by an empty entry).
            let mut suspended = record.suspended.clone();
            suspended.retain(|group, processes| {
                !processes.is_empty() || row.record.suspended.contains_key(group)
            });
            assert_eq!(suspended, row.record.suspended, "{name}: suspended");
            assert_eq!(record.undone, row.record.undone, "{name}: undone");
            assert_eq!(record.status, row.record.status, "{name}: status");
        }
    }

    #[test]
    fn intend_twice_writes_nothing_more() {
        let pauser = autoscaling(None);
        let scope = scope(&["tg-a"], &["tg-a"]);
        let groups = vec![group("asg-1", &["tg-a"], &["Launch"])];
        let mut record = fresh();
        pauser.intend(&mut record, &groups, &scope, false);
        let once = record.clone();
        pauser.intend(&mut record, &groups, &scope, false);
        assert_eq!(record, once);
    }

    #[test]
    fn verify_moves_what_a_person_resumed_to_undone() {
        let pauser = autoscaling(None);
        let mut record = record(
            PauserStatus::Done,
            &[("asg-3", &["Launch"])],
            &[
                ("asg-1", BOTH),
                ("asg-2", &["Launch"]),
                ("asg-4", &["Launch"]),
            ],
            &[("asg-1", &["AZRebalance"])],
        );
        let groups = vec![
            // Terminate resumed by a person.
            group("asg-1", &["tg-a"], &["Launch"]),
            // Everything of ours resumed.
            group("asg-2", &["tg-a"], &["Terminate"]),
            // Written ahead only, not suspended yet: not checked.
            group("asg-3", &["tg-a"], &[]),
            // asg-4 was not read: nothing is known of it, so nothing is reported.
        ];
        let found = pauser.verify(&mut record, &groups);
        assert_eq!(
            found,
            per_group(&[("asg-1", &["Terminate"]), ("asg-2", &["Launch"])])
        );
        // asg-2 stays known (empty), so a pause extended later leaves it alone.
        assert_eq!(
            record.suspended,
            per_group(&[
                ("asg-1", &["Launch"]),
                ("asg-2", &[]),
                ("asg-4", &["Launch"])
            ])
        );
        assert_eq!(
            record.undone,
            per_group(&[
                ("asg-1", &["AZRebalance", "Terminate"]),
                ("asg-2", &["Launch"])
            ])
        );
        assert_eq!(record.suspending, per_group(&[("asg-3", &["Launch"])]));
        assert_eq!(record.status, PauserStatus::Done);

        // Checked again with nothing new: nothing more is reported.
        let before = record.clone();
        assert!(pauser.verify(&mut record, &groups).is_empty());
        assert_eq!(record, before);
        // What was undone is not intended again.
        pauser.intend(&mut record, &groups, &scope(&["tg-a"], &[]), false);
        assert_eq!(
            record.suspending,
            per_group(&[("asg-3", &["Launch", "Terminate"])])
        );
    }

    #[test]
    fn verify_of_a_record_with_nothing_done_or_of_another_kind_finds_nothing() {
        let groups = vec![group("asg-1", &["tg-a"], &[])];
        let mut written_ahead = record(PauserStatus::Planned, &[("asg-1", BOTH)], &[], &[]);
        let before = written_ahead.clone();
        assert!(
            autoscaling(None)
                .verify(&mut written_ahead, &groups)
                .is_empty()
        );
        assert_eq!(written_ahead, before);
        let command = Pauser::of_kind("command", PauserKind::Command);
        let mut done = record(PauserStatus::Done, &[], &[("asg-1", BOTH)], &[]);
        assert!(command.verify(&mut done, &groups).is_empty());
        assert_eq!(done.suspended, per_group(&[("asg-1", BOTH)]));
    }

    #[test]
    fn has_work_for_each_status() {
        let pauser = autoscaling(None);
        let pending: PerGroup = &[("asg-1", &["Launch"])];
        let rows: &[(&str, PauserStatus, PerGroup, bool)] = &[
            ("planned", PauserStatus::Planned, &[], true),
            ("failed", PauserStatus::Failed, &[], true),
            ("done", PauserStatus::Done, &[], false),
            ("resuming", PauserStatus::Resuming, &[], false),
            (
                "done with steps written ahead",
                PauserStatus::Done,
                pending,
                true,
            ),
            (
                "planned with steps written ahead",
                PauserStatus::Planned,
                pending,
                true,
            ),
            // Work left, but `maintain` leaves a resuming record to the resume.
            (
                "resuming with steps written ahead",
                PauserStatus::Resuming,
                pending,
                true,
            ),
        ];
        for (name, status, suspending, expected) in rows {
            let record = record(*status, suspending, &[("asg-2", &["Launch"])], &[]);
            assert_eq!(pauser.has_work(&record), *expected, "{name}");
        }
    }

    #[test]
    fn the_plan_names_the_scope_it_acts_on() {
        let scope = scope(&["tg-a"], &["tg-a", "tg-b", "tg-c"]);
        let affected = autoscaling(None).plan(&scope);
        assert_eq!(affected.status, PauserStatus::Planned);
        assert_eq!(affected.kind, PauserKind::Autoscaling);
        assert!(affected.suspending.is_empty());
        let detail = affected.detail.unwrap();
        assert!(detail.contains("behind 1 target group(s)"), "{detail}");
        assert!(detail.contains("Launch, Terminate"), "{detail}");
        let explicit = autoscaling(Some(PauseScope::Affected)).plan(&scope);
        assert!(
            explicit
                .detail
                .unwrap()
                .contains("behind 1 target group(s)")
        );
        let all = autoscaling(Some(PauseScope::All))
            .plan(&scope)
            .detail
            .unwrap();
        assert!(all.contains("behind 3 target group(s)"), "{all}");
        // Without `processes`, the default list.
        let default = Pauser::of_kind("autoscaling", PauserKind::Autoscaling)
            .plan(&scope)
            .detail
            .unwrap();
        for process in DEFAULT_PROCESSES {
            assert!(default.contains(process), "{default}");
        }
    }

    #[test]
    fn extending_a_pause_leaves_a_handled_group_alone_even_if_nothing_was_suspended_there() {
        let pauser = autoscaling(None);
        let scope = scope(&["tg-a"], &["tg-a"]);
        // At the trip, everything on asg-1 was already suspended (by someone else): nothing of
        // it is written ahead, so the record does not mention asg-1.
        let mut record = fresh();
        pauser.intend(
            &mut record,
            &[group("asg-1", &["tg-a"], BOTH)],
            &scope,
            false,
        );
        assert!(record.suspending.is_empty());
        record.status = PauserStatus::Done;
        // During the pause a person resumes Launch there; the next cycle extends the pause.
        pauser.intend(
            &mut record,
            &[group("asg-1", &["tg-a"], &["Terminate"])],
            &scope,
            true,
        );
        // asg-1 was handled already: what a person resumed in between is not suspended again.
        assert!(record.suspending.is_empty(), "{:?}", record.suspending);
    }

    #[test]
    fn the_detail_counts_each_group_once() {
        let pauser = autoscaling(None);
        let scope = scope(&["tg-a"], &["tg-a"]);
        // A pause started over leftovers: asg-1 had Launch suspended by lbrecon, a person
        // resumed it, and it is written ahead again.
        let mut record = record(PauserStatus::Planned, &[], &[("asg-1", &["Launch"])], &[]);
        pauser.intend(
            &mut record,
            &[group("asg-1", &["tg-a"], &[])],
            &scope,
            false,
        );
        assert_eq!(record.suspending, per_group(&[("asg-1", BOTH)]));
        let detail = record.detail.unwrap();
        assert!(
            detail.starts_with("suspend processes on 1 of 1 group(s)"),
            "{detail}"
        );
    }
}
