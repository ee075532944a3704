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

    /// The guard's step on what the stream saw (docs/architecture.md#stream): `observation` is
    /// the last complete cycle's, with the losses the stream confirmed and the records it saw
    /// written back. A mass loss trips at once; while paused, a load balancer whose record
    /// was written back leaves `missing` at once. Nothing else: the threshold, the quarantine,
    /// resume and acknowledgement wait for complete cycles.
    pub async fn after_stream(
        &self,
        presence: &PresenceView<'_>,
        observation: &Observation,
        control: &mut ControlItem,
        high_water: Option<HighWater>,
        written_back: &BTreeSet<String>,
    ) -> Result<GuardOutcome, AwsError> {
        let mut outcome = GuardOutcome::default();
        if let Some(claim) = self.blocking_claim(control) {
            outcome.waited_for = Some(claim.clone());
            return Ok(outcome);
        }
        let step = self.step(control, Some(observation), high_water, &Command::Stream);
        match step.action {
            Action::Trip(trip) => {
                let scope = scope(presence, &step.missing);
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
            _ if control.paused && control.missing.iter().any(|n| written_back.contains(n)) => {
                control.missing.retain(|name| !written_back.contains(name));
                self.store.save(control).await?;
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    //! The guard's effects over the in-memory control table and Auto Scaling groups: what is
    //! written when, against which processes, and how a lost race ends.

    use std::time::Duration;

    use super::*;
    use crate::aws::ErrorClass;
    use crate::control::fake::{
        self, DESCRIBE_GROUPS, Data, FakeAws, GET_ITEM, PUT_ITEM, RESUME, SUSPEND, When, per_group,
    };
    use crate::runtime::config::PauserConfig;

    const TABLE: &str = "control";
    const TARGET: &str = "prod";
    const AUTOSCALING: &str = "autoscaling";
    const OTHER_OWNER: &str = "elsewhere/1/00000000";

    /// Trips on one complete cycle with one load balancer missing; one `autoscaling` pauser
    /// suspending Launch and Terminate behind the affected target groups.
    fn config() -> GuardConfig {
        GuardConfig {
            min_missing: 1,
            max_missing_ratio: 0.0,
            confirm_cycles: 1,
            new_load_balancer_grace: Duration::from_secs(300),
            mass_loss_ratio: 0.2,
            mass_loss_window: Duration::from_secs(3600),
            auto_resume_after: None,
            claim_timeout: Duration::from_secs(120),
            pausers: vec![PauserConfig {
                kind: PauserKind::Autoscaling,
                scope: None,
                processes: Some(vec!["Launch".into(), "Terminate".into()]),
                command: None,
                timeout: None,
            }],
        }
    }

    /// The control table, and three groups: asg-a and asg-b behind lb-0's target group (an
    /// operator had suspended Launch on asg-b), asg-c behind lb-1's.
    fn fake() -> FakeAws {
        FakeAws::new()
            .with_table(TABLE, control::KEY_ATTRIBUTE)
            .with_group("asg-a", &["tg-0"], &[])
            .with_group("asg-b", &["tg-0"], &["Launch"])
            .with_group("asg-c", &["tg-1"], &[])
    }

    fn enforcer<'a>(fake: &'a FakeAws, config: &'a GuardConfig) -> Enforcer<'a, FakeAws, FakeAws> {
        Enforcer {
            target: TARGET,
            config,
            store: ControlStore {
                dynamodb: fake,
                table: TABLE,
                target: TARGET,
                lease: None,
            },
            autoscaling: fake,
        }
    }

    /// lb-0 and lb-1, each with its own target group.
    struct Fleet {
        load_balancers: Vec<LiveLoadBalancer>,
        target_groups: Vec<LiveTargetGroup>,
    }

    fn fleet() -> Fleet {
        Fleet {
            load_balancers: (0..2)
                .map(|i| LiveLoadBalancer {
                    arn: format!("arn:lb-{i}"),
                    name: format!("lb-{i}"),
                    created_time: Some(now_unix() - 3600),
                    fields: Default::default(),
                })
                .collect(),
            target_groups: (0..2)
                .map(|i| LiveTargetGroup {
                    arn: format!("tg-{i}"),
                    name: format!("tg-{i}"),
                    load_balancer_arns: vec![format!("arn:lb-{i}")],
                    fields: Default::default(),
                })
                .collect(),
        }
    }

    impl Fleet {
        fn view(&self) -> PresenceView<'_> {
            PresenceView {
                load_balancers: &self.load_balancers,
                target_groups: &self.target_groups,
                state_table_missing: false,
            }
        }

        /// A complete cycle that finds lb-0's record missing.
        fn lb0_missing(&self) -> Observation {
            Observation {
                now: now_unix(),
                live: self
                    .load_balancers
                    .iter()
                    .map(|lb| (lb.name.clone(), lb.created_time))
                    .collect(),
                records: BTreeSet::from(["lb-1".to_string()]),
                state_table_gone: false,
            }
        }
    }

    fn processes(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|p| p.to_string()).collect()
    }

    /// What a trip over [`fake`]'s groups writes ahead: everything of Launch and Terminate not
    /// suspended already, behind lb-0.
    fn planned() -> BTreeMap<String, BTreeSet<String>> {
        per_group(&[
            ("asg-a", &["Launch", "Terminate"]),
            ("asg-b", &["Terminate"]),
        ])
    }

    async fn load(enforcer: &Enforcer<'_, FakeAws, FakeAws>) -> ControlItem {
        match enforcer.store.load().await.unwrap() {
            Loaded::Item(item) => *item,
            Loaded::NoTable => panic!("the control table exists"),
        }
    }

    fn stored(fake: &FakeAws) -> ControlItem {
        fake.data(|data| data.control(TABLE, TARGET))
            .expect("the control item is stored")
    }

    /// The writes of the control item, with their place in the journal.
    fn control_writes(fake: &FakeAws) -> Vec<(usize, fake::Call)> {
        fake.journal()
            .into_iter()
            .enumerate()
            .filter(|(_, call)| call.operation == PUT_ITEM && call.subject == TARGET)
            .collect()
    }

    /// Where the calls of `operation` are in the journal.
    fn places(fake: &FakeAws, operation: &str) -> Vec<usize> {
        fake.journal()
            .iter()
            .enumerate()
            .filter(|(_, call)| call.operation == operation)
            .map(|(i, _)| i)
            .collect()
    }

    fn group_calls(fake: &FakeAws, operation: &str) -> Vec<(String, BTreeSet<String>)> {
        fake.calls(operation)
            .into_iter()
            .map(|call| (call.subject, call.processes))
            .collect()
    }

    fn suspended_now(fake: &FakeAws) -> BTreeMap<String, BTreeSet<String>> {
        fake.data(|data| {
            data.groups
                .iter()
                .map(|(name, group)| (name.clone(), group.suspended.clone()))
                .collect()
        })
    }

    fn record<'c>(control: &'c ControlItem, key: &str) -> &'c PauserRecord {
        control
            .pausers
            .get(key)
            .unwrap_or_else(|| panic!("no {key} record in {:?}", control.pausers))
    }

    /// Trips through [`Enforcer::pause`] on a fresh item, as `after_presence` does, and
    /// returns how the run ended.
    async fn trip(fake: &FakeAws, config: &GuardConfig) -> Result<Finished, AwsError> {
        let enforcer = enforcer(fake, config);
        let fleet = fleet();
        let mut control = load(&enforcer).await;
        let missing = BTreeSet::from(["lb-0".to_string()]);
        let scope = scope(&fleet.view(), &missing);
        enforcer
            .pause(
                &mut control,
                "state data missing",
                GUARD_ACTOR,
                &missing,
                &scope,
                "trip",
            )
            .await
    }

    /// Another writer's change to the stored control item.
    fn edit(data: &mut Data, bump: bool, change: impl FnOnce(&mut ControlItem)) {
        data.edit_control(TABLE, TARGET, bump, change);
    }

    #[tokio::test]
    async fn a_trip_writes_its_plan_before_suspending_then_records_it_and_releases_the_claim() {
        let fake = fake();
        let config = config();
        let enforcer = enforcer(&fake, &config);
        let fleet = fleet();
        let mut control = load(&enforcer).await;
        let mut high_water = None;
        let outcome = enforcer
            .after_presence(
                &fleet.view(),
                &fleet.lb0_missing(),
                &mut control,
                &mut high_water,
            )
            .await
            .unwrap();
        assert!(outcome.tripped.is_some(), "{outcome:?}");

        let writes = control_writes(&fake);
        assert_eq!(writes.len(), 2, "the plan, then the record: {writes:?}");
        let (plan_at, plan) = (writes[0].0, writes[0].1.control().unwrap());
        let (done_at, done) = (writes[1].0, writes[1].1.control().unwrap());
        let suspends = places(&fake, SUSPEND);

        // The groups are read, then the plan is written, claimed, before any suspension.
        assert!(places(&fake, DESCRIBE_GROUPS).iter().all(|&i| i < plan_at));
        assert!(plan.paused);
        let claim = plan.claim.as_ref().expect("the plan is claimed");
        assert_eq!(claim.owner, control::process_owner());
        assert_eq!(claim.purpose, "trip");
        let written_ahead = record(&plan, AUTOSCALING);
        assert_eq!(written_ahead.status, PauserStatus::Planned);
        assert_eq!(written_ahead.suspending, planned());
        assert!(written_ahead.suspended.is_empty());

        // Then the suspensions, exactly what was written ahead, and only then the record.
        assert_eq!(suspends.len(), 2);
        assert!(
            suspends.iter().all(|&i| plan_at < i && i < done_at),
            "plan at {plan_at}, suspensions at {suspends:?}, record at {done_at}"
        );
        assert_eq!(
            group_calls(&fake, SUSPEND),
            planned().into_iter().collect::<Vec<_>>()
        );
        assert!(done.paused);
        assert_eq!(done.claim, None, "the last write releases the claim");
        let recorded = record(&done, AUTOSCALING);
        assert_eq!(recorded.status, PauserStatus::Done);
        assert!(recorded.suspending.is_empty());
        assert_eq!(recorded.suspended, planned());
        assert_eq!(
            record(&done, pause::DYNAMODB_FLAG).status,
            PauserStatus::Done
        );

        assert_eq!(stored(&fake).pausers, done.pausers);
        assert_eq!(control.version, stored(&fake).version);
        assert_eq!(
            suspended_now(&fake),
            per_group(&[
                ("asg-a", &["Launch", "Terminate"]),
                ("asg-b", &["Launch", "Terminate"]),
                ("asg-c", &[]),
            ])
        );
    }

    #[tokio::test]
    async fn a_suspension_that_fails_mid_way_stays_written_ahead_and_the_next_cycle_finishes_it() {
        let fake = fake();
        fake.fail(
            SUSPEND,
            When::Nth(2),
            fake::error(SUSPEND, ErrorClass::Throttled),
        );
        let config = config();
        let enforcer = enforcer(&fake, &config);
        let fleet = fleet();
        let mut control = load(&enforcer).await;
        let mut high_water = None;
        enforcer
            .after_presence(
                &fleet.view(),
                &fleet.lb0_missing(),
                &mut control,
                &mut high_water,
            )
            .await
            .unwrap();

        // asg-a was suspended, asg-b's call failed: it stays written ahead, so resume undoes
        // it, and the claim is released all the same.
        let after_failure = stored(&fake);
        assert!(after_failure.paused);
        assert_eq!(after_failure.claim, None);
        let failed = record(&after_failure, AUTOSCALING);
        assert_eq!(failed.status, PauserStatus::Failed);
        assert!(
            failed.error.as_deref().unwrap().contains("asg-b"),
            "{failed:?}"
        );
        assert_eq!(
            failed.suspended,
            per_group(&[("asg-a", &["Launch", "Terminate"])])
        );
        assert_eq!(failed.suspending, per_group(&[("asg-b", &["Terminate"])]));
        assert_eq!(failed.to_undo(), planned());
        assert_eq!(
            fake.data(|data| data.suspended("asg-b")),
            processes(&["Launch"])
        );

        // The next cycle writes ahead again under its claim, then finishes asg-b only.
        let writes_before = control_writes(&fake).len();
        let suspends_before = fake.calls(SUSPEND).len();
        let mut control = load(&enforcer).await;
        enforcer
            .after_presence(
                &fleet.view(),
                &fleet.lb0_missing(),
                &mut control,
                &mut high_water,
            )
            .await
            .unwrap();
        let writes = control_writes(&fake);
        assert_eq!(writes.len(), writes_before + 2, "{writes:?}");
        let (plan_at, plan) = &writes[writes_before];
        let plan = plan.control().unwrap();
        assert_eq!(plan.claim.as_ref().unwrap().purpose, "maintain");
        assert_eq!(
            record(&plan, AUTOSCALING).suspending,
            per_group(&[("asg-b", &["Terminate"])])
        );
        let retried = &group_calls(&fake, SUSPEND)[suspends_before..];
        assert_eq!(retried, [("asg-b".to_string(), processes(&["Terminate"]))]);
        assert!(places(&fake, SUSPEND).last().unwrap() > plan_at);
        let finished = stored(&fake);
        assert_eq!(finished.claim, None);
        let done = record(&finished, AUTOSCALING);
        assert_eq!(done.status, PauserStatus::Done);
        assert_eq!(done.error, None);
        assert!(done.suspending.is_empty());
        assert_eq!(done.suspended, planned());
    }

    #[tokio::test]
    async fn a_suspension_that_fails_mid_way_is_undone_by_resume_with_the_rest() {
        let fake = fake();
        fake.fail(
            SUSPEND,
            When::Nth(2),
            fake::error(SUSPEND, ErrorClass::Timeout),
        );
        let config = config();
        trip(&fake, &config).await.unwrap();
        assert_eq!(
            record(&stored(&fake), AUTOSCALING).status,
            PauserStatus::Failed
        );

        let enforcer = enforcer(&fake, &config);
        let mut control = load(&enforcer).await;
        let state = control.guard_state(None);
        let errors = enforcer
            .resume(
                &mut control,
                "records back",
                "operator:alice",
                &state,
                "resume",
                "resumed",
            )
            .await
            .unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        // Both the done step and the one only written ahead are resumed.
        assert_eq!(
            group_calls(&fake, RESUME),
            planned().into_iter().collect::<Vec<_>>()
        );
        assert_eq!(
            suspended_now(&fake),
            per_group(&[("asg-a", &[]), ("asg-b", &["Launch"]), ("asg-c", &[])])
        );
        let resumed = stored(&fake);
        assert!(!resumed.paused);
        assert!(resumed.pausers.is_empty());
    }

    #[tokio::test]
    async fn resume_undoes_what_was_suspended_or_written_ahead_and_nothing_else() {
        let fake = FakeAws::new()
            .with_table(TABLE, control::KEY_ATTRIBUTE)
            // An operator suspended AZRebalance on asg-a and Launch on asg-b themselves, and
            // suspended Launch on asg-c again after resuming lbrecon's.
            .with_group("asg-a", &["tg-0"], &["Launch", "AZRebalance"])
            .with_group("asg-b", &["tg-0"], &["Launch"])
            .with_group("asg-c", &["tg-0"], &["Launch"]);
        let mut paused = ControlItem::new(TARGET);
        paused.version = 3;
        paused.paused = true;
        paused.by = Some(GUARD_ACTOR.into());
        paused.reason = Some("state data missing".into());
        paused.pausers.insert(
            pause::DYNAMODB_FLAG.into(),
            PauserRecord {
                status: PauserStatus::Done,
                ..PauserRecord::planned(PauserKind::DynamodbFlag)
            },
        );
        paused.pausers.insert(
            AUTOSCALING.into(),
            PauserRecord {
                status: PauserStatus::Failed,
                suspended: per_group(&[("asg-a", &["Launch"])]),
                suspending: per_group(&[("asg-b", &["Terminate"])]),
                undone: per_group(&[("asg-c", &["Launch"])]),
                ..PauserRecord::planned(PauserKind::Autoscaling)
            },
        );
        fake.data(|data| data.store_control(TABLE, &paused));

        let config = config();
        let enforcer = enforcer(&fake, &config);
        let mut control = load(&enforcer).await;
        let state = control.guard_state(None);
        let errors = enforcer
            .resume(
                &mut control,
                "records back",
                "operator:alice",
                &state,
                "resume",
                "resumed",
            )
            .await
            .unwrap();
        assert!(errors.is_empty(), "{errors:?}");

        assert_eq!(
            group_calls(&fake, RESUME),
            vec![
                ("asg-a".to_string(), processes(&["Launch"])),
                ("asg-b".to_string(), processes(&["Terminate"])),
            ]
        );
        assert_eq!(
            suspended_now(&fake),
            per_group(&[
                ("asg-a", &["AZRebalance"]),
                ("asg-b", &["Launch"]),
                ("asg-c", &["Launch"]),
            ])
        );
        // Claimed and marked resuming before the first ResumeProcesses; cleared after the last.
        let writes = control_writes(&fake);
        assert_eq!(writes.len(), 2, "{writes:?}");
        let resumes = places(&fake, RESUME);
        let first = writes[0].1.control().unwrap();
        assert!(resumes.iter().all(|&i| writes[0].0 < i && i < writes[1].0));
        assert_eq!(first.claim.as_ref().unwrap().purpose, "resume");
        assert_eq!(record(&first, AUTOSCALING).status, PauserStatus::Resuming);
        let last = stored(&fake);
        assert!(!last.paused);
        assert!(last.pausers.is_empty());
        assert_eq!(last.claim, None);
        assert_eq!(last.version, 5);
    }

    #[tokio::test]
    async fn a_trip_whose_target_was_resumed_meanwhile_undoes_what_it_did() {
        let fake = fake();
        // `lbrecon resume` lands while the trip suspends: it took the (stale) claim over,
        // resumed, cleared the pause and its records, and released the claim.
        fake.before(SUSPEND, When::Nth(1), |data| {
            edit(data, true, |control| {
                control.paused = false;
                control.reason = None;
                control.since = None;
                control.by = None;
                control.pausers.clear();
                control.claim = None;
            })
        });
        let config = config();
        assert_eq!(trip(&fake, &config).await.unwrap(), Finished::Reverted);

        // The record was refused; the fresh item read; what the run did resumed; nothing
        // written on top of the resume.
        let writes = control_writes(&fake);
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes[0].1.succeeded());
        let refused = &writes[1].1;
        assert!(refused.error.as_ref().unwrap().is_condition_failed());
        assert_eq!(
            group_calls(&fake, RESUME),
            planned().into_iter().collect::<Vec<_>>()
        );
        assert!(places(&fake, RESUME).iter().all(|&i| i > writes[1].0));
        assert_eq!(
            suspended_now(&fake),
            per_group(&[("asg-a", &[]), ("asg-b", &["Launch"]), ("asg-c", &[])])
        );
        let after = stored(&fake);
        assert!(!after.paused);
        assert!(after.pausers.is_empty());
        assert_eq!(after.claim, None);
    }

    #[tokio::test]
    async fn what_a_reverted_trip_cannot_undo_is_recorded_as_resuming() {
        let fake = fake();
        fake.before(SUSPEND, When::Nth(1), |data| {
            edit(data, true, |control| {
                control.paused = false;
                control.by = None;
                control.pausers.clear();
                control.claim = None;
            })
        });
        fake.fail(
            RESUME,
            When::Nth(2),
            fake::error(RESUME, ErrorClass::Throttled),
        );
        let config = config();
        assert_eq!(trip(&fake, &config).await.unwrap(), Finished::Reverted);

        let after = stored(&fake);
        assert!(!after.paused);
        assert_eq!(after.claim, None);
        let left = record(&after, AUTOSCALING);
        assert_eq!(left.status, PauserStatus::Resuming);
        assert!(
            left.error.as_deref().unwrap().starts_with("resume failed"),
            "{left:?}"
        );
        // The next resume still undoes asg-b, which is still suspended.
        assert_eq!(left.to_undo(), planned());
        assert_eq!(
            fake.data(|data| data.suspended("asg-b")),
            processes(&["Launch", "Terminate"])
        );
        assert!(!after.pausers.contains_key(pause::DYNAMODB_FLAG));
    }

    #[tokio::test]
    async fn a_trip_whose_flag_was_cleared_by_hand_records_its_steps_and_is_not_paused_again() {
        let fake = fake();
        // A person clears `paused` with an UpdateItem: the version stays as it was.
        fake.before(SUSPEND, When::Nth(1), |data| {
            edit(data, false, |control| control.paused = false)
        });
        let config = config();
        assert_eq!(trip(&fake, &config).await.unwrap(), Finished::Recorded);

        let after = stored(&fake);
        assert!(!after.paused, "the flag stays cleared");
        assert_eq!(after.claim, None);
        assert_eq!(
            record(&after, pause::DYNAMODB_FLAG).status,
            PauserStatus::Done
        );
        let recorded = record(&after, AUTOSCALING);
        assert_eq!(recorded.status, PauserStatus::Done);
        assert_eq!(recorded.suspended, planned());
        assert!(group_calls(&fake, RESUME).is_empty());

        // The next cycle reports the undo and never sets the flag again.
        let enforcer = enforcer(&fake, &config);
        let fleet = fleet();
        let mut control = load(&enforcer).await;
        let suspends = fake.calls(SUSPEND).len();
        let outcome = enforcer
            .after_presence(&fleet.view(), &fleet.lb0_missing(), &mut control, &mut None)
            .await
            .unwrap();
        assert_eq!(outcome.undone, vec![pause::DYNAMODB_FLAG.to_string()]);
        assert!(outcome.tripped.is_none());
        assert_eq!(fake.calls(SUSPEND).len(), suspends);
        assert!(!stored(&fake).paused);
    }

    #[tokio::test]
    async fn a_trip_that_loses_its_last_write_to_another_writer_merges_into_the_fresh_item() {
        let fake = fake();
        // Still paused, but another writer moved: an operator took the pause over, and an
        // earlier run had suspended a process on another group.
        fake.before(SUSPEND, When::Nth(1), |data| {
            edit(data, true, |control| {
                control.by = Some("operator:alice".into());
                control
                    .pausers
                    .get_mut(AUTOSCALING)
                    .unwrap()
                    .suspended
                    .insert("asg-z".into(), processes(&["Launch"]));
            })
        });
        let config = config();
        assert_eq!(trip(&fake, &config).await.unwrap(), Finished::Recorded);

        let after = stored(&fake);
        assert!(after.paused);
        assert_eq!(
            after.by.as_deref(),
            Some("operator:alice"),
            "theirs is kept"
        );
        assert_eq!(after.claim, None);
        let merged = record(&after, AUTOSCALING);
        assert_eq!(merged.status, PauserStatus::Done);
        let mut both = planned();
        both.insert("asg-z".into(), processes(&["Launch"]));
        assert_eq!(merged.suspended, both);
        assert!(merged.suspending.is_empty());
        assert!(group_calls(&fake, RESUME).is_empty());
    }

    #[tokio::test]
    async fn a_trip_retries_its_last_write_until_one_lands() {
        let fake = fake();
        let bump = |data: &mut Data| edit(data, true, |_| {});
        fake.before(SUSPEND, When::Nth(1), bump);
        // The first retry loses too.
        fake.before(PUT_ITEM, When::Nth(3), bump);
        let config = config();
        assert_eq!(trip(&fake, &config).await.unwrap(), Finished::Recorded);

        let outcomes: Vec<bool> = control_writes(&fake)
            .iter()
            .map(|(_, call)| call.succeeded())
            .collect();
        assert_eq!(outcomes, vec![true, false, false, true]);
        assert_eq!(
            fake.calls(GET_ITEM).len(),
            3,
            "one read, then one per retry"
        );
        let after = stored(&fake);
        assert_eq!(after.claim, None);
        assert_eq!(record(&after, AUTOSCALING).suspended, planned());
    }

    #[tokio::test]
    async fn a_trip_that_loses_every_retry_gives_up_with_its_plan_still_recorded() {
        let fake = fake();
        fake.before(PUT_ITEM, When::From(2), |data| edit(data, true, |_| {}));
        let config = config();
        let err = trip(&fake, &config).await.unwrap_err();
        assert!(err.is_condition_failed(), "{err}");

        // The record, then FINISH_ATTEMPTS retries, all refused.
        let writes = control_writes(&fake);
        assert_eq!(writes.len(), 2 + FINISH_ATTEMPTS);
        assert!(writes[1..].iter().all(|(_, call)| !call.succeeded()));
        // What stands is the plan: every step written ahead, so resume undoes it, under a
        // claim that goes stale and is taken over by the next actor.
        let after = stored(&fake);
        assert!(after.paused);
        assert_eq!(record(&after, AUTOSCALING).to_undo(), planned());
        assert_eq!(
            after.claim.as_ref().map(|claim| claim.owner.as_str()),
            Some(control::process_owner())
        );
    }

    fn claimed_by_another(until: i64) -> ControlItem {
        let mut control = ControlItem::new(TARGET);
        control.version = 1;
        control.claim = Some(Claim {
            by: "operator:bob".into(),
            owner: OTHER_OWNER.into(),
            purpose: "pause".into(),
            since: "2026-01-01T00:00:00Z".into(),
            until,
        });
        control
    }

    #[tokio::test]
    async fn a_claim_held_by_another_actor_leaves_the_item_and_the_groups_alone() {
        let fake = fake();
        let held = claimed_by_another(now_unix() + 60);
        fake.data(|data| data.store_control(TABLE, &held));
        let config = config();
        let enforcer = enforcer(&fake, &config);
        let fleet = fleet();
        let mut control = load(&enforcer).await;
        let outcome = enforcer
            .after_presence(&fleet.view(), &fleet.lb0_missing(), &mut control, &mut None)
            .await
            .unwrap();
        assert_eq!(outcome.waited_for, held.claim);
        assert!(outcome.tripped.is_none());
        let operations: Vec<&str> = fake.journal().iter().map(|call| call.operation).collect();
        assert_eq!(operations, vec![GET_ITEM], "only the read");
        assert_eq!(stored(&fake).claim, held.claim);
    }

    #[tokio::test]
    async fn an_expired_claim_is_taken_over() {
        let fake = fake();
        fake.data(|data| data.store_control(TABLE, &claimed_by_another(now_unix() - 1)));
        let config = config();
        let enforcer = enforcer(&fake, &config);
        let fleet = fleet();
        let mut control = load(&enforcer).await;
        let outcome = enforcer
            .after_presence(&fleet.view(), &fleet.lb0_missing(), &mut control, &mut None)
            .await
            .unwrap();
        assert_eq!(outcome.waited_for, None);
        assert!(outcome.tripped.is_some());
        let writes = control_writes(&fake);
        let plan = writes[0].1.control().unwrap();
        let claim = plan.claim.expect("the plan is claimed");
        assert_eq!(claim.owner, control::process_owner());
        assert_eq!(claim.purpose, "trip");
        assert_eq!(stored(&fake).claim, None);
        assert_eq!(group_calls(&fake, SUSPEND).len(), 2);
    }
}
