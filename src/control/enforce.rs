//! Carrying out the guard's decisions: the pause plan, the pausers, resume. The decision itself
//! is [`guard::step`]'s; nothing here chooses whether to trip, resume or acknowledge.
//!
//! The protocol (docs/architecture.md#guard):
//! - **One actor at a time.** Whoever runs a target's pausers (a daemon's cycle, an operator's
//!   `pause` or `resume`) first claims them in the control item with a conditional write.
//!   Another actor waits for the claim, or takes it over once it is stale.
//! - **Written ahead.** That same write holds every effect about to happen (for `autoscaling`,
//!   per group, the processes read as not suspended just before); only then do the pausers act,
//!   and a last write marks what was done and releases the claim. `resume` undoes every step
//!   written ahead, done or not, so a crash, a cycle deadline or a lost lease at any point leaves
//!   nothing suspended that `resume` will not undo.
//! - A trip whose last write finds the item resumed meanwhile undoes what it just did instead of
//!   recording it on top.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::AwsError;
use crate::aws::autoscaling::{AutoScaling, ScalingGroup};
use crate::aws::control_calls::{AutoScalingCalls, ControlTableCalls};
use crate::aws::dynamodb::Dynamo;
use crate::control::pause::{self, DYNAMODB_FLAG, PauseEvent, Pauser, Scope};
use crate::control::{
    self, Claim, ControlItem, ControlStore, Event, GUARD_ACTOR, Loaded, PauserRecord, PauserStatus,
};
use crate::model::clock::now_unix;
use crate::model::live::{LiveLoadBalancer, LiveTargetGroup};
use crate::reconcile::guard::{
    self, Action, Command, GuardState, HighWater, Observation, Owner, PauseFacts,
};
use crate::runtime::config::{GuardConfig, PauserKind};
use crate::runtime::telemetry;

/// The current time, RFC 3339.
fn now() -> String {
    crate::model::clock::now_rfc3339()
}

/// What the guard's policy needs of the control item, as plain facts.
pub fn facts(control: &ControlItem) -> PauseFacts {
    PauseFacts {
        paused: control.paused,
        owner: control.paused.then(|| match control.by.as_deref() {
            Some(GUARD_ACTOR) => Owner::Guard,
            by => Owner::Operator(by.unwrap_or_default().to_string()),
        }),
        listed_missing: control.missing.iter().cloned().collect(),
        flag_cleared_by_hand: !control.paused
            && control
                .pausers
                .get(DYNAMODB_FLAG)
                .is_some_and(|record| record.status == PauserStatus::Done),
        recorded: !control.pausers.is_empty(),
    }
}

/// What the guard's effects need of a complete presence pass: the live load balancers in the
/// target's scope and every target group, with the state table's absence.
#[derive(Debug, Clone, Copy)]
pub struct PresenceView<'a> {
    pub load_balancers: &'a [LiveLoadBalancer],
    pub target_groups: &'a [LiveTargetGroup],
    /// The state table does not exist.
    pub state_table_missing: bool,
}

/// The target groups the pausers act on: those of the `affected` load balancers, and those of
/// every load balancer in the target's scope (never one outside it: another team's, or the
/// Kubernetes controller's).
pub fn scope(presence: &PresenceView<'_>, affected: &BTreeSet<String>) -> Scope {
    let affected_arns: BTreeSet<&str> = presence
        .load_balancers
        .iter()
        .filter(|lb| affected.contains(&lb.name))
        .map(|lb| lb.arn.as_str())
        .collect();
    let in_scope: BTreeSet<&str> = presence
        .load_balancers
        .iter()
        .map(|lb| lb.arn.as_str())
        .collect();
    let mut scope = Scope::default();
    for group in presence.target_groups {
        if !group
            .load_balancer_arns
            .iter()
            .any(|arn| in_scope.contains(arn.as_str()))
        {
            continue;
        }
        scope.all_target_groups.insert(group.arn.clone());
        if group
            .load_balancer_arns
            .iter()
            .any(|arn| affected_arns.contains(arn.as_str()))
        {
            scope.affected_target_groups.insert(group.arn.clone());
        }
    }
    scope
}

/// How often the last write of a run is tried again against other writers.
const FINISH_ATTEMPTS: usize = 5;

/// What one guard step did.
#[derive(Debug, Default)]
pub struct GuardOutcome {
    pub tripped: Option<guard::Trip>,
    pub resumed: bool,
    /// Pausers whose effect a person undid this cycle.
    pub undone: Vec<String>,
    /// Another actor holds the pausers' claim: this cycle left the control item alone.
    pub waited_for: Option<Claim>,
}

/// How a run of the pausers ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// What the pausers did is recorded in the control item.
    Recorded,
    /// The item had been resumed meanwhile: what this run did was undone, not recorded.
    Reverted,
}

/// Acts for one target, through `S`'s Auto Scaling calls and `D`'s control table calls
/// ([`AutoScaling`] and [`Dynamo`] but in tests).
pub struct Enforcer<'a, S = AutoScaling, D = Dynamo> {
    pub target: &'a str,
    pub config: &'a GuardConfig,
    pub store: ControlStore<'a, D>,
    pub autoscaling: &'a S,
}

impl<S: AutoScalingCalls, D: ControlTableCalls> Enforcer<'_, S, D> {
    fn pausers(&self) -> Vec<Pauser> {
        pause::configured(self.config)
    }

    /// The pauser of a record: the configured one, or, when it is no longer configured, one of
    /// its kind, so what it did can still be undone.
    fn pauser_for(&self, key: &str, kind: PauserKind) -> Pauser {
        self.pausers()
            .into_iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| Pauser::of_kind(key, kind))
    }

    /// The guard's step for `command` on the control item as read, with the high-water mark
    /// (kept in an item of its own) where the caller has it.
    pub fn step(
        &self,
        control: &ControlItem,
        observation: Option<&Observation>,
        high_water: Option<HighWater>,
        command: &Command,
    ) -> guard::Step {
        guard::step(
            observation,
            &control.guard_state(high_water),
            &facts(control),
            self.config,
            command,
        )
    }

    /// The claim on the pausers that this actor must wait for, if any.
    pub fn blocking_claim<'c>(&self, control: &'c ControlItem) -> Option<&'c Claim> {
        control
            .claim
            .as_ref()
            .filter(|claim| claim.blocks(control::process_owner(), now_unix()))
    }

    fn claim(&self, control: &mut ControlItem, by: &str, purpose: &str) {
        // Callers wait for a claim that blocks them first: another actor's claim here is stale.
        if let Some(stale) = &control.claim
            && stale.owner != control::process_owner()
        {
            tracing::warn!(target_name = self.target, by = %stale.by, purpose = %stale.purpose, since = %stale.since, "taking over a stale claim on the pausers");
        }
        control.claim = Some(Claim {
            by: by.to_string(),
            owner: control::process_owner().to_string(),
            purpose: purpose.to_string(),
            since: now(),
            until: now_unix() + self.config.claim_timeout.as_secs() as i64,
        });
    }

    fn event(
        &self,
        control: &ControlItem,
        kind: &'static str,
        reason: &str,
        by: &str,
    ) -> PauseEvent {
        PauseEvent {
            event: kind,
            target: self.target.to_string(),
            reason: reason.to_string(),
            time: now(),
            by: by.to_string(),
            missing: control.missing.clone(),
            quarantine: control.quarantine.clone(),
        }
    }

    /// The Auto Scaling groups, read when a pauser needs them.
    async fn groups(&self, pausers: &[Pauser]) -> Option<Result<Vec<ScalingGroup>, String>> {
        if !pausers.iter().any(Pauser::needs_groups) {
            return None;
        }
        Some(
            self.autoscaling
                .groups()
                .await
                .map_err(|err| format!("reading the Auto Scaling groups: {err}")),
        )
    }

    /// The guard's step after a complete presence pass: decide, then carry the action out and
    /// write the control item if anything changed. The high-water mark is kept in
    /// `high_water` and written whenever it moves (its time included).
    pub async fn after_presence(
        &self,
        presence: &PresenceView<'_>,
        observation: &Observation,
        control: &mut ControlItem,
        high_water: &mut Option<HighWater>,
    ) -> Result<GuardOutcome, AwsError> {
        let mut outcome = GuardOutcome::default();
        if let Some(claim) = self.blocking_claim(control) {
            tracing::info!(target_name = self.target, by = %claim.by, purpose = %claim.purpose, since = %claim.since, "the pausers are claimed by another actor; the guard acts again next cycle");
            outcome.waited_for = Some(claim.clone());
            return Ok(outcome);
        }
        let before = control.clone();
        let step = self.step(
            control,
            Some(observation),
            high_water.clone(),
            &Command::Cycle,
        );
        control.set_guard_state(&step.state);
        control.state_table_seen |= !presence.state_table_missing;
        if control.paused {
            control.missing = step.missing.iter().cloned().collect();
        }
        if step.state.high_water != *high_water {
            if let Some(mark) = &step.state.high_water {
                self.store.save_high_water(mark).await?;
            }
            *high_water = step.state.high_water.clone();
        }

        let scope = scope(presence, &step.missing);
        match step.action {
            Action::Trip(trip) => {
                self.pause(
                    control,
                    &trip.reason(),
                    GUARD_ACTOR,
                    &step.missing,
                    &scope,
                    "trip",
                )
                .await?;
                outcome.tripped = Some(trip);
            }
            Action::AutoResume { clean_cycles } => {
                let reason =
                    format!("automatic resume: nothing missing for {clean_cycles} complete cycles");
                let errors = self
                    .resume(
                        control,
                        &reason,
                        GUARD_ACTOR,
                        &step.state,
                        "auto_resume",
                        "resumed everything lbrecon paused",
                    )
                    .await?;
                outcome.resumed = errors.is_empty();
            }
            Action::Maintain => {
                outcome.undone = self.maintain(control, &before, &scope).await?;
            }
            Action::FlagUndone => {
                control.pausers.remove(DYNAMODB_FLAG);
                control.record(Event {
                    time: now(),
                    event: "pause_undone".into(),
                    by: "unknown".into(),
                    detail: Some("the paused flag was cleared outside lbrecon; not paused again for the load balancers missing now".into()),
                    missing: step.missing.iter().cloned().collect(),
                    ..Default::default()
                });
                self.store.save(control).await?;
                telemetry::pause_undone(
                    self.target,
                    DYNAMODB_FLAG,
                    "the paused flag was cleared by hand",
                );
                outcome.undone.push(DYNAMODB_FLAG.into());
            }
            _ => {
                if *control != before {
                    self.store.save(control).await?;
                }
            }
        }
        Ok(outcome)
    }

    /// While paused: finishes steps written ahead and not done (a crash or a deadline cut them
    /// short), retries pausers that failed, checks the others are still in effect (reporting,
    /// never re-applying, what a person undid), and extends an `affected` autoscaling pause to
    /// load balancers that went missing since. Writes only when something changed. Returns the
    /// pausers found undone.
    async fn maintain(
        &self,
        control: &mut ControlItem,
        before: &ControlItem,
        scope: &Scope,
    ) -> Result<Vec<String>, AwsError> {
        // The flag pauser is among them: one whose plan was written but not marked done (a
        // crash after the plan) is marked done here, so a flag cleared by hand later is seen.
        let pausers: Vec<Pauser> = self
            .pausers()
            .into_iter()
            .filter(|pauser| {
                control
                    .pausers
                    .get(&pauser.key)
                    .is_none_or(|record| record.status != PauserStatus::Resuming)
            })
            .collect();
        let groups = self.groups(&pausers).await;
        let mut undone = Vec::new();
        let mut to_run = Vec::new();
        for pauser in pausers {
            // A pauser configured since the pause started gets its plan now.
            let mut record = control
                .pausers
                .get(&pauser.key)
                .cloned()
                .unwrap_or_else(|| pauser.plan(scope));
            if pauser.needs_groups() {
                match &groups {
                    Some(Ok(groups)) => {
                        let found = pauser.verify(&mut record, groups);
                        if !found.is_empty() {
                            let detail = describe(&found);
                            control.record(Event {
                                time: now(),
                                event: "pause_undone".into(),
                                by: "unknown".into(),
                                detail: Some(format!(
                                    "resumed outside lbrecon, not suspended again: {detail}"
                                )),
                                ..Default::default()
                            });
                            undone.push((pauser.key.clone(), detail));
                        }
                        let extend_only = record.status == PauserStatus::Done;
                        pauser.intend(&mut record, groups, scope, extend_only);
                    }
                    Some(Err(error)) => {
                        tracing::warn!(target_name = self.target, pauser = %pauser.key, %error, "cannot check or extend the pause; next cycle tries again");
                        continue;
                    }
                    None => {}
                }
            }
            if pauser.has_work(&record) {
                if record.status == PauserStatus::Done {
                    record.status = PauserStatus::Planned;
                }
                to_run.push(pauser.clone());
            }
            control.pausers.insert(pauser.key.clone(), record);
        }
        if to_run.is_empty() {
            if control != before {
                self.store.save(control).await?;
            }
        } else {
            // Written ahead, and claimed, before any pauser acts.
            self.claim(control, GUARD_ACTOR, "maintain");
            self.store.save(control).await?;
        }
        // Reported once recorded: a write refused because `lbrecon resume` moved first means
        // the processes were being resumed by it, not undone by hand.
        for (pauser, detail) in &undone {
            telemetry::pause_undone(self.target, pauser, detail);
        }
        if !to_run.is_empty() {
            let reason = control.reason.clone().unwrap_or_default();
            let by = control.by.clone().unwrap_or_default();
            let event = self.event(control, "pause", &reason, &by);
            let results = self.run(control, &to_run, &event).await?;
            self.finish(control, results, &event).await?;
        }
        Ok(undone.into_iter().map(|(pauser, _)| pauser).collect())
    }

    /// Runs `pausers` on what their records wrote ahead; a failure is counted and logged (the
    /// pauser is retried next cycle). Stops, with the rest still written ahead, once this
    /// replica may no longer act.
    async fn run(
        &self,
        control: &ControlItem,
        pausers: &[Pauser],
        event: &PauseEvent,
    ) -> Result<BTreeMap<String, PauserRecord>, AwsError> {
        let mut results = BTreeMap::new();
        for pauser in pausers {
            if !self.store.acting() {
                return Err(AwsError::not_acting(self.target));
            }
            let Some(record) = control.pausers.get(&pauser.key) else {
                continue;
            };
            let done = pauser.act(record, event, self.autoscaling).await;
            if done.status != PauserStatus::Done {
                telemetry::pauser_failed(
                    self.target,
                    &pauser.key,
                    done.error.as_deref().unwrap_or(""),
                );
            }
            results.insert(pauser.key.clone(), done);
        }
        Ok(results)
    }

    /// The last write of a run: records what the pausers did and releases the claim. When
    /// another writer moved in between, the fresh item decides, again until one write lands:
    /// - resumed by `lbrecon resume` (not paused, its pauser records cleared: this run's claim
    ///   had gone stale and was taken over), what this run did is undone instead of recorded;
    ///   what cannot be undone is recorded as `resuming`, so the next `resume` finishes it;
    /// - the flag cleared by hand (not paused, records still there), this run's steps are
    ///   recorded and the flag marked done, so the next cycle reports the undo (never re-applies);
    /// - still paused, this run's steps are merged into the fresh item.
    async fn finish(
        &self,
        control: &mut ControlItem,
        results: BTreeMap<String, PauserRecord>,
        event: &PauseEvent,
    ) -> Result<Finished, AwsError> {
        let mut recorded = control.clone();
        recorded.pausers.extend(results.clone());
        release(&mut recorded);
        let mut last = match self.store.save(&mut recorded).await {
            Ok(()) => {
                *control = recorded;
                return Ok(Finished::Recorded);
            }
            Err(err) if !err.is_condition_failed() => return Err(err),
            Err(err) => err,
        };
        let mut reverted: Option<BTreeMap<String, PauserRecord>> = None;
        for _ in 0..FINISH_ATTEMPTS {
            let Loaded::Item(fresh) = self.store.load().await? else {
                return Err(AwsError::unexpected(
                    "dynamodb",
                    "GetItem",
                    format!("the control table of {} is gone", self.target),
                ));
            };
            let mut fresh = *fresh;
            let resumed_by_lbrecon =
                !fresh.paused && results.keys().all(|key| !fresh.pausers.contains_key(key));
            if resumed_by_lbrecon {
                // Undo once; what could not be undone is kept as `resuming`.
                let left = match &reverted {
                    Some(left) => left.clone(),
                    None => {
                        let left = self.revert(&results, event).await;
                        reverted = Some(left.clone());
                        left
                    }
                };
                if left.is_empty() {
                    *control = fresh;
                    return Ok(Finished::Reverted);
                }
                fresh.pausers.extend(left);
            } else {
                for (key, ours) in &results {
                    let merged = match fresh.pausers.get(key) {
                        Some(theirs) => control::merge(theirs, ours),
                        None => ours.clone(),
                    };
                    fresh.pausers.insert(key.clone(), merged);
                }
                if !fresh.paused
                    && let Some(flag) = fresh.pausers.get_mut(DYNAMODB_FLAG)
                {
                    // Cleared by hand while the pausers ran: marked done, so the next cycle
                    // reports it and never sets it again.
                    flag.status = PauserStatus::Done;
                }
            }
            release(&mut fresh);
            match self.store.save(&mut fresh).await {
                Ok(()) => {
                    *control = fresh;
                    return Ok(if reverted.is_some() {
                        Finished::Reverted
                    } else {
                        Finished::Recorded
                    });
                }
                Err(err) if err.is_condition_failed() => last = err,
                Err(err) => return Err(err),
            }
        }
        Err(last)
    }

    /// Undoes what one run of the pausers did; returns, as `resuming` records, what could not
    /// be undone.
    async fn revert(
        &self,
        results: &BTreeMap<String, PauserRecord>,
        event: &PauseEvent,
    ) -> BTreeMap<String, PauserRecord> {
        tracing::warn!(
            target_name = self.target,
            "the target was resumed while its pausers ran: undoing what they did instead of recording it"
        );
        let resume_event = PauseEvent {
            event: "resume",
            ..event.clone()
        };
        let mut left = BTreeMap::new();
        for (key, record) in results {
            let pauser = self.pauser_for(key, record.kind);
            if let Err(error) = pauser.resume(record, &resume_event, self.autoscaling).await {
                telemetry::pauser_failed(self.target, key, &error);
                let mut failed = record.clone();
                failed.status = PauserStatus::Resuming;
                failed.error = Some(format!("resume failed: {error}"));
                left.insert(key.clone(), failed);
            }
        }
        left
    }

    /// Pauses: reads what is suspended now, writes the plan (every effect about to happen) and
    /// the claim, runs every pauser, records what each did. `event_kind` is the audit event
    /// (`trip` for the guard, `pause` for an operator).
    pub async fn pause(
        &self,
        control: &mut ControlItem,
        reason: &str,
        by: &str,
        missing: &BTreeSet<String>,
        scope: &Scope,
        event_kind: &str,
    ) -> Result<Finished, AwsError> {
        let pausers = self.pausers();
        let groups = self.groups(&pausers).await;
        control.paused = true;
        control.reason = Some(reason.to_string());
        control.since = Some(now());
        control.by = Some(by.to_string());
        control.missing = missing.iter().cloned().collect();
        let mut to_run = Vec::new();
        for pauser in &pausers {
            let mut record = pauser.plan(scope);
            if let Some(previous) = control.pausers.get(&pauser.key) {
                // Steps of a pause never resumed stay recorded, so resume undoes them.
                record.suspending = previous.suspending.clone();
                record.suspended = previous.suspended.clone();
                record.undone = previous.undone.clone();
            }
            match (&groups, pauser.needs_groups()) {
                (Some(Ok(groups)), true) => pauser.intend(&mut record, groups, scope, false),
                (Some(Err(error)), true) => {
                    record.status = PauserStatus::Failed;
                    record.error = Some(error.clone());
                    telemetry::pauser_failed(self.target, &pauser.key, error);
                }
                _ => {}
            }
            if record.status == PauserStatus::Planned {
                to_run.push(pauser.clone());
            }
            control.pausers.insert(pauser.key.clone(), record);
        }
        if event_kind == "trip" {
            control.guard.trips += 1;
        }
        control.record(Event {
            time: now(),
            event: event_kind.to_string(),
            by: by.to_string(),
            reason: Some(reason.to_string()),
            missing: control.missing.clone(),
            detail: Some(
                control
                    .pausers
                    .iter()
                    .map(|(key, record)| {
                        format!("{key}: {}", record.detail.clone().unwrap_or_default())
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        });
        self.claim(control, by, event_kind);
        // The plan is in the control item before any pauser runs: from here workflows see the
        // pause, and resume can undo every step.
        self.store.save(control).await?;
        if event_kind == "trip" {
            telemetry::guard_tripped(self.target, reason, missing.len());
        }
        telemetry::audit(self.target, event_kind, by, reason, &control.missing);

        let event = self.event(control, "pause", reason, by);
        let results = self.run(control, &to_run, &event).await?;
        self.finish(control, results, &event).await
    }

    /// Takes a pause over for an operator: it becomes theirs (`by`) and no longer resumes by
    /// itself. The pausers' steps stay as they are.
    pub async fn take_over(
        &self,
        control: &mut ControlItem,
        reason: &str,
        by: &str,
    ) -> Result<(), AwsError> {
        let previous = control.by.clone().unwrap_or_default();
        control.by = Some(by.to_string());
        control.reason = Some(reason.to_string());
        control.record(Event {
            time: now(),
            event: "pause".into(),
            by: by.to_string(),
            reason: Some(reason.to_string()),
            missing: control.missing.clone(),
            detail: Some(format!(
                "took over the pause by {previous}: it no longer resumes by itself"
            )),
        });
        self.store.save(control).await?;
        telemetry::audit(self.target, "pause", by, reason, &control.missing);
        Ok(())
    }

    /// Resumes exactly what was paused: claims the pausers and marks each `resuming` (so a
    /// daemon cycle meanwhile neither reports it undone nor extends it), undoes every step
    /// written ahead, then clears the pause and stores `state` (the guard's, from
    /// [`guard::step`]). Returns the pausers that could not be resumed; while there are any,
    /// the target stays paused.
    pub async fn resume(
        &self,
        control: &mut ControlItem,
        reason: &str,
        by: &str,
        state: &GuardState,
        purpose: &str,
        detail: &str,
    ) -> Result<Vec<String>, AwsError> {
        for record in control.pausers.values_mut() {
            if record.kind != PauserKind::DynamodbFlag {
                record.status = PauserStatus::Resuming;
            }
        }
        self.claim(control, by, purpose);
        self.store.save(control).await?;

        let event = self.event(control, "resume", reason, by);
        let mut errors = Vec::new();
        let records: Vec<(String, PauserRecord)> = control
            .pausers
            .iter()
            .map(|(key, record)| (key.clone(), record.clone()))
            .collect();
        for (key, record) in records {
            if !self.store.acting() {
                return Err(AwsError::not_acting(self.target));
            }
            let pauser = self.pauser_for(&key, record.kind);
            match pauser.resume(&record, &event, self.autoscaling).await {
                Ok(()) => {
                    control.pausers.remove(&key);
                }
                Err(error) => {
                    if let Some(failed) = control.pausers.get_mut(&key) {
                        failed.error = Some(format!("resume failed: {error}"));
                    }
                    errors.push(format!("{key}: {error}"));
                }
            }
        }
        if errors.is_empty() {
            control.paused = false;
            control.reason = None;
            control.since = None;
            control.by = None;
            control.missing.clear();
        }
        control.set_guard_state(state);
        release(control);
        control.record(Event {
            time: now(),
            event: "resume".into(),
            by: by.to_string(),
            reason: Some(reason.to_string()),
            missing: state.acknowledged.iter().cloned().collect(),
            detail: Some(if errors.is_empty() {
                detail.to_string()
            } else {
                format!("incomplete, still paused: {}", errors.join("; "))
            }),
        });
        self.store.save(control).await?;
        let acknowledged: Vec<String> = state.acknowledged.iter().cloned().collect();
        telemetry::audit(self.target, "resume", by, reason, &acknowledged);
        Ok(errors)
    }
}

/// Releases this process's claim on the pausers.
fn release(control: &mut ControlItem) {
    if control
        .claim
        .as_ref()
        .is_some_and(|claim| claim.owner == control::process_owner())
    {
        control.claim = None;
    }
}

/// `asg-1: Launch, Terminate; asg-2: Launch`.
fn describe(by_group: &BTreeMap<String, BTreeSet<String>>) -> String {
    by_group
        .iter()
        .map(|(group, processes)| {
            format!(
                "{group}: {}",
                processes.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
