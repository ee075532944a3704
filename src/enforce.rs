//! Carrying out the guard's decisions: the pause plan, the pausers, resume.
//!
//! The order on a trip is SPEC 8's: write the plan into the control item (conditional on its
//! version), then run the pausers, then record what each did. Nothing here reads load
//! balancers; callers pass what the presence pass read.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::AwsError;
use crate::aws::autoscaling::AutoScaling;
use crate::config::{GuardConfig, PauserConfig, PauserKind};
use crate::control::{ControlItem, ControlStore, Event, GUARD_ACTOR, PauserRecord};
use crate::cycle::PresencePhase;
use crate::guard::{self, HighWater, Observation, Trip};
use crate::pause::{self, DONE, DYNAMODB_FLAG, PauseEvent, Pauser, RESUMING, Scope};
use crate::telemetry;

/// The current time, RFC 3339.
fn now() -> String {
    crate::check::now_rfc3339()
}

/// What the guard sees of a complete presence pass.
pub fn observation(presence: &PresencePhase, now: i64) -> Observation {
    Observation {
        now,
        live: presence
            .load_balancers
            .iter()
            .map(|lb| (lb.name.clone(), lb.created_time))
            .collect(),
        records: presence.valid_record_names(),
        state_table_gone: presence.state_table_missing,
    }
}

/// The target groups the pausers act on: those of the `affected` load balancers, and all.
pub fn scope(presence: &PresencePhase, affected: &BTreeSet<String>) -> Scope {
    let affected_arns: BTreeSet<&str> = presence
        .load_balancers
        .iter()
        .filter(|lb| affected.contains(&lb.name))
        .map(|lb| lb.arn.as_str())
        .collect();
    let mut scope = Scope::default();
    for group in &presence.target_groups {
        if group.load_balancer_arns.is_empty() {
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

/// What one guard step did.
#[derive(Debug, Default)]
pub struct GuardOutcome {
    pub tripped: Option<Trip>,
    pub resumed: bool,
    /// Pausers whose effect a person undid this cycle.
    pub undone: Vec<String>,
}

/// Acts for one target.
pub struct Enforcer<'a> {
    pub target: &'a str,
    pub config: &'a GuardConfig,
    pub store: ControlStore<'a>,
    pub autoscaling: &'a AutoScaling,
}

impl Enforcer<'_> {
    fn pausers(&self) -> Vec<Pauser> {
        pause::configured(self.config)
    }

    /// A pauser for a record whose pauser is no longer configured, so what it did can still be
    /// undone.
    fn pauser_for(&self, key: &str, record: &PauserRecord) -> Pauser {
        if let Some(pauser) = self.pausers().into_iter().find(|p| p.key == key) {
            return pauser;
        }
        let kind = match record.kind.as_str() {
            "autoscaling" => PauserKind::Autoscaling,
            "command" => PauserKind::Command,
            _ => PauserKind::DynamodbFlag,
        };
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

    /// The guard's step after a complete presence pass: decide, then pause, retry, verify or
    /// resume, and write the control item if anything changed. The high-water mark is kept in
    /// `high_water` and written when it moves.
    pub async fn after_presence(
        &self,
        presence: &PresencePhase,
        control: &mut ControlItem,
        high_water: &mut Option<HighWater>,
    ) -> Result<GuardOutcome, AwsError> {
        let before = control.clone();
        let mut outcome = GuardOutcome::default();
        let observation = observation(presence, time::OffsetDateTime::now_utc().unix_timestamp());
        let paused_by_guard = control.by.as_deref() == Some(GUARD_ACTOR);
        let state = control.guard_state(&control.quarantine, high_water.clone());
        let mut decision = guard::decide(
            &observation,
            &state,
            self.config,
            control.paused,
            paused_by_guard,
        );

        // The flag was cleared by hand, not through `lbrecon resume`: report it, never set it
        // again for the load balancers missing now.
        let flag_undone = !control.paused
            && control
                .pausers
                .get(DYNAMODB_FLAG)
                .is_some_and(|record| record.status == DONE);
        if flag_undone {
            control.pausers.remove(DYNAMODB_FLAG);
            decision
                .state
                .acknowledged
                .extend(decision.missing.iter().cloned());
            decision.state.confirm_count = 0;
            decision.trip = None;
            telemetry::pause_undone(
                self.target,
                DYNAMODB_FLAG,
                "the paused flag was cleared by hand",
            );
            control.record(Event {
                time: now(),
                event: "pause_undone".into(),
                by: "unknown".into(),
                detail: Some("the paused flag was cleared outside lbrecon; not paused again for the load balancers missing now".into()),
                missing: decision.missing.iter().cloned().collect(),
                ..Default::default()
            });
            outcome.undone.push(DYNAMODB_FLAG.into());
        }

        control.set_guard_state(&decision.state);
        control.state_table_seen |= !presence.state_table_missing;
        if control.paused {
            control.missing = decision.missing.iter().cloned().collect();
        }
        if decision.state.high_water != *high_water {
            if let Some(mark) = &decision.state.high_water
                && high_water
                    .as_ref()
                    .is_none_or(|old| old.names != mark.names)
            {
                self.store.save_high_water(mark).await?;
            }
            *high_water = decision.state.high_water.clone();
        }

        let scope = scope(presence, &decision.missing);
        if let Some(trip) = &decision.trip {
            control.guard.trips += 1;
            self.pause(
                control,
                &trip.reason(),
                GUARD_ACTOR,
                &decision.missing,
                &scope,
                "trip",
            )
            .await?;
            telemetry::guard_tripped(self.target, &trip.reason(), decision.missing.len());
            outcome.tripped = Some(trip.clone());
            return Ok(outcome);
        }
        if decision.auto_resume {
            let reason = format!(
                "automatic resume: nothing missing for {} complete cycles",
                decision.state.clean_cycles
            );
            let errors = self
                .resume(control, &reason, GUARD_ACTOR, &BTreeSet::new(), false)
                .await?;
            outcome.resumed = errors.is_empty();
            return Ok(outcome);
        }
        if control.paused {
            // Claim the item first: if anyone (an operator's resume) wrote since it was read,
            // this fails and no pauser runs on a stale picture.
            self.store.save(control).await?;
            let claimed = control.clone();
            let undone = self.maintain(control, &scope).await;
            if *control != claimed {
                self.store.save(control).await?;
            }
            // Reported once recorded: a write refused because `lbrecon resume` moved first
            // means the processes were being resumed by it, not undone by hand.
            for (pauser, detail) in undone {
                telemetry::pause_undone(self.target, &pauser, &detail);
                outcome.undone.push(pauser);
            }
        } else if *control != before {
            self.store.save(control).await?;
        }
        Ok(outcome)
    }

    /// While paused: retries pausers that failed, checks the others are still in effect
    /// (reporting, never re-applying, what a person undid), and extends an `affected`
    /// autoscaling pause to load balancers that went missing since.
    /// Returns the pausers found undone, with what was undone.
    async fn maintain(&self, control: &mut ControlItem, scope: &Scope) -> Vec<(String, String)> {
        let mut undone_pausers = Vec::new();
        let reason = control.reason.clone().unwrap_or_default();
        let by = control.by.clone().unwrap_or_default();
        let event = self.event(control, "pause", &reason, &by);
        for pauser in self.pausers() {
            if pauser.config.kind == PauserKind::DynamodbFlag {
                continue;
            }
            if !self.store.acting() {
                // Lost the lease: the new leader carries on; the write below is refused.
                break;
            }
            let mut record = control
                .pausers
                .get(&pauser.key)
                .cloned()
                .unwrap_or_else(|| pauser.plan(scope));
            if record.status == RESUMING {
                // `lbrecon resume` is undoing it (or was interrupted, and is run again).
                continue;
            }
            if record.status == DONE {
                match pauser.verify(&mut record, self.autoscaling).await {
                    Ok(undone) if !undone.is_empty() => {
                        let detail = undone
                            .iter()
                            .map(|(group, processes)| {
                                format!(
                                    "{group}: {}",
                                    processes.iter().cloned().collect::<Vec<_>>().join(", ")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; ");
                        control.record(Event {
                            time: now(),
                            event: "pause_undone".into(),
                            by: "unknown".into(),
                            detail: Some(format!(
                                "resumed outside lbrecon, not suspended again: {detail}"
                            )),
                            ..Default::default()
                        });
                        undone_pausers.push((pauser.key.clone(), detail));
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(target_name = self.target, pauser = %pauser.key, %error, "cannot verify the pause")
                    }
                }
            }
            // A command runs once per pause; an autoscaling pause is extended every cycle (it
            // suspends only what is not suspended yet, and nothing a person undid); a pauser
            // that failed is retried.
            let extend = record.status == DONE;
            let run = !extend || pauser.config.kind == PauserKind::Autoscaling;
            if run {
                let mut next = self
                    .run_pauser(&pauser, &record, scope, &event, extend)
                    .await;
                if next.status == DONE
                    && record.status == DONE
                    && next.suspended == record.suspended
                {
                    // Nothing new: keep the record as it was, so the item is not rewritten.
                    next = record;
                }
                record = next;
            }
            control.pausers.insert(pauser.key.clone(), record);
        }
        undone_pausers
    }

    /// Runs one pauser from its previous record; a failure is counted and logged (the pauser
    /// is retried next cycle).
    async fn run_pauser(
        &self,
        pauser: &Pauser,
        previous: &PauserRecord,
        scope: &Scope,
        event: &PauseEvent,
        only_new_groups: bool,
    ) -> PauserRecord {
        let record = pauser
            .pause(previous, scope, event, self.autoscaling, only_new_groups)
            .await;
        if record.status != DONE {
            telemetry::pauser_failed(
                self.target,
                &pauser.key,
                record.error.as_deref().unwrap_or(""),
            );
        }
        record
    }

    /// Pauses: writes the plan, runs every pauser, records what each did. `event_kind` is the
    /// audit event (`trip` for the guard, `pause` for an operator).
    pub async fn pause(
        &self,
        control: &mut ControlItem,
        reason: &str,
        by: &str,
        missing: &BTreeSet<String>,
        scope: &Scope,
        event_kind: &str,
    ) -> Result<(), AwsError> {
        control.paused = true;
        control.reason = Some(reason.to_string());
        control.since = Some(now());
        control.by = Some(by.to_string());
        control.missing = missing.iter().cloned().collect();
        let pausers = self.pausers();
        for pauser in &pausers {
            let mut plan = pauser.plan(scope);
            if let Some(previous) = control.pausers.get(&pauser.key) {
                // Processes from a pause never resumed stay recorded, so resume undoes them.
                plan.suspended = previous.suspended.clone();
                plan.undone = previous.undone.clone();
            }
            control.pausers.insert(pauser.key.clone(), plan);
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
        // The plan is in the control item before any pauser runs.
        self.store.save(control).await?;
        telemetry::audit(self.target, event_kind, by, reason, &control.missing);

        let event = self.event(control, "pause", reason, by);
        let mut results = BTreeMap::new();
        for pauser in &pausers {
            if !self.store.acting() {
                return Err(AwsError::not_acting(self.target));
            }
            let previous = control
                .pausers
                .get(&pauser.key)
                .cloned()
                .unwrap_or_default();
            let record = self
                .run_pauser(pauser, &previous, scope, &event, false)
                .await;
            results.insert(pauser.key.clone(), record);
        }
        control.pausers.extend(results.clone());
        match self.store.save(control).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_condition_failed() => {
                // Someone wrote in between (an operator's command): record the results on top.
                let crate::control::Loaded::Item(fresh) = self.store.load().await? else {
                    return Err(err);
                };
                *control = *fresh;
                control.pausers.extend(results);
                self.store.save(control).await
            }
            Err(err) => Err(err),
        }
    }

    /// Resumes exactly what was paused. Load balancers in `acknowledged` (missing at a forced
    /// resume) do not trip the guard again until their records are back. Returns the pausers
    /// that could not be resumed; while there are any, the target stays paused.
    pub async fn resume(
        &self,
        control: &mut ControlItem,
        reason: &str,
        by: &str,
        acknowledged: &BTreeSet<String>,
        forced: bool,
    ) -> Result<Vec<String>, AwsError> {
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
            let pauser = self.pauser_for(&key, &record);
            match pauser.resume(&record, &event, self.autoscaling).await {
                Ok(()) => {
                    control.pausers.remove(&key);
                }
                Err(error) => {
                    let failed = control.pausers.get_mut(&key).expect("listed above");
                    failed.error = Some(format!("resume failed: {error}"));
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
        let state = guard::after_resume(
            &control.guard_state(&control.quarantine, None),
            acknowledged,
        );
        control.set_guard_state(&state);
        control.record(Event {
            time: now(),
            event: "resume".into(),
            by: by.to_string(),
            reason: Some(reason.to_string()),
            missing: acknowledged.iter().cloned().collect(),
            detail: Some(if !errors.is_empty() {
                format!("incomplete, still paused: {}", errors.join("; "))
            } else if forced {
                "forced while records were missing; those are acknowledged".to_string()
            } else {
                "resumed everything lbrecon paused".to_string()
            }),
        });
        self.store.save(control).await?;
        let acknowledged: Vec<String> = acknowledged.iter().cloned().collect();
        telemetry::audit(self.target, "resume", by, reason, &acknowledged);
        Ok(errors)
    }
}
