//! One reconciliation of one target (SPEC 2): a presence pass, deep reads, the diff.
//!
//! `check` runs one cycle with a full deep pass; the daemon runs one every interval, deep-reading
//! the load balancers checked longest ago and keeping what it read in a [`DeepCache`]. Both get
//! a [`TargetReport`] back; the daemon also keeps the [`Cycle`] for the guard and metrics.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::aws::AwsError;
use crate::config::TargetConfig;
use crate::control::ControlView;
use crate::document::Document;
use crate::ignore::IgnoreRules;
use crate::item::Item;
use crate::live::{self, DeepState, LiveLoadBalancer, TargetGroupIndex};
use crate::reader::{DeepOutcome, DeepPlan, PresenceRead, Reader};
use crate::reconcile::{LiveEntry, Reconciled, reconcile};
use crate::record::Record;
use crate::report::{GuardView, Summary, TargetReport, exit};

/// Which load balancers a cycle deep-reads.
#[derive(Debug, Clone, Copy)]
pub enum DeepScope {
    /// Every load balancer with a valid record (`check`).
    All,
    /// At most this many, those checked longest ago first (the daemon's budget).
    Oldest(usize),
}

/// What the deep pass last read of each load balancer, by ARN, with when.
#[derive(Debug, Default)]
pub struct DeepCache {
    entries: HashMap<String, (DeepState, i64)>,
}

impl DeepCache {
    /// The time (Unix seconds) each listed load balancer was last deep-checked, if ever.
    pub fn checked_at(&self, arn: &str) -> Option<i64> {
        self.entries.get(arn).map(|(_, at)| *at)
    }

    fn keep_only(&mut self, live: &BTreeSet<&str>) {
        self.entries.retain(|arn, _| live.contains(arn.as_str()));
    }
}

/// The outcome of one cycle.
#[derive(Debug)]
pub struct Cycle {
    /// The presence pass succeeded in full (SPEC 2): the guard may act on it.
    pub complete: bool,
    /// Every read, deep ones included, succeeded (`check`'s notion of complete).
    pub all_reads_succeeded: bool,
    /// The presence failure, where there was one.
    pub presence_error: Option<AwsError>,
    /// Deep reads that failed, one line each.
    pub deep_failures: Vec<String>,
    /// The state table does not exist.
    pub state_table_missing: bool,
    /// Every item of the state table, verbatim (empty when the scan failed).
    pub items: Vec<Item>,
    /// The live load balancers (empty when their read failed).
    pub load_balancers: Vec<LiveLoadBalancer>,
    /// The classification, when the presence pass was complete.
    pub reconciled: Option<Reconciled>,
    /// Load balancers (valid record, live) never deep-checked or whose last deep read failed.
    pub deep_unchecked: usize,
    /// The oldest deep check among live load balancers with a valid record (Unix seconds);
    /// `None` when one was never checked.
    pub oldest_deep_check: Option<i64>,
    /// Deep reads made this cycle.
    pub deep_read: usize,
}

/// Runs one cycle of `target`. `control` is what the control item said, or `None` when it could
/// not be read.
pub async fn run_cycle(
    target: &TargetConfig,
    reader: &Reader,
    ignore: &IgnoreRules,
    control: Option<&ControlView>,
    scope: DeepScope,
    cache: &mut DeepCache,
) -> Cycle {
    let presence = reader.presence(&target.state_table).await;
    run_with_presence(presence, reader, ignore, control, scope, cache).await
}

async fn run_with_presence(
    presence: PresenceRead,
    reader: &Reader,
    ignore: &IgnoreRules,
    control: Option<&ControlView>,
    scope: DeepScope,
    cache: &mut DeepCache,
) -> Cycle {
    let state_table_seen = control.is_some_and(|view| view.state_table_seen);
    let mut cycle = Cycle {
        complete: false,
        all_reads_succeeded: false,
        presence_error: None,
        deep_failures: Vec::new(),
        state_table_missing: false,
        items: Vec::new(),
        load_balancers: Vec::new(),
        reconciled: None,
        deep_unchecked: 0,
        oldest_deep_check: None,
        deep_read: 0,
    };
    let items = match presence.records {
        Ok(items) => Some(items),
        Err(err) if err.is_not_found() => {
            cycle.state_table_missing = true;
            // A table lbrecon has seen before is gone: every record is missing. One it never saw
            // is a configuration error, which the caller reports.
            if state_table_seen {
                Some(Vec::new())
            } else {
                cycle.presence_error = Some(err);
                None
            }
        }
        Err(err) => {
            cycle.presence_error = Some(err);
            None
        }
    };
    let (lbs, groups) = match (presence.load_balancers, presence.target_groups) {
        (Ok(lbs), Ok(groups)) => (lbs, groups),
        (lbs, groups) => {
            if let Err(err) = &lbs {
                cycle.presence_error = Some(err.clone());
            } else if let Err(err) = &groups {
                cycle.presence_error = Some(err.clone());
            }
            cycle.load_balancers = lbs.unwrap_or_default();
            cycle.items = items.unwrap_or_default();
            return cycle;
        }
    };
    cycle.load_balancers = lbs;
    let Some(items) = items else {
        return cycle;
    };
    cycle.items = items;
    cycle.complete = true;

    let records: Vec<Record> = cycle
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| Record::from_item(item, i))
        .collect();
    for record in &records {
        for warning in &record.warnings {
            tracing::warn!(load_balancer = %record.name, "record {}: {warning}", record.name);
        }
    }

    let index = TargetGroupIndex::new(&groups);
    let live_arns: BTreeSet<&str> = cycle
        .load_balancers
        .iter()
        .map(|lb| lb.arn.as_str())
        .collect();
    cache.keep_only(&live_arns);
    let mut plans = deep_plans(&cycle.load_balancers, &records, &index);
    let with_record: BTreeSet<String> = plans
        .iter()
        .map(|plan| plan.load_balancer.arn.clone())
        .collect();
    if let DeepScope::Oldest(limit) = scope {
        plans.sort_by_key(|plan| {
            (
                cache.checked_at(&plan.load_balancer.arn),
                plan.load_balancer.name.clone(),
            )
        });
        plans.truncate(limit);
    }
    cycle.deep_read = plans.len();
    let outcomes = reader.deep(&plans).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let mut live_entries = Vec::with_capacity(cycle.load_balancers.len());
    let mut gone = BTreeSet::new();
    for lb in &cycle.load_balancers {
        match outcomes.get(&lb.arn) {
            Some(DeepOutcome::Gone) => {
                gone.insert(lb.arn.clone());
                cache.entries.remove(&lb.arn);
                continue;
            }
            Some(DeepOutcome::Read(state)) => {
                cache.entries.insert(lb.arn.clone(), (state.clone(), now));
            }
            Some(DeepOutcome::Failed(failure)) => {
                cycle.deep_failures.push(failure.to_string());
                // Stale: never compared as if known, until read again.
                cache.entries.remove(&lb.arn);
            }
            None => {}
        }
        let has_record = with_record.contains(&lb.arn);
        let cached = cache.entries.get(&lb.arn);
        let (document, deep_fresh) = match cached {
            Some((state, _)) => (live::assemble(lb, &index, Some(state)), true),
            // A load balancer without a valid record needs no deep read: nothing compares it.
            None => (live::assemble(lb, &index, None), !has_record),
        };
        if has_record {
            match cached {
                Some((_, at)) => {
                    cycle.oldest_deep_check =
                        Some(cycle.oldest_deep_check.map_or(*at, |o: i64| o.min(*at)));
                }
                None => cycle.deep_unchecked += 1,
            }
        }
        live_entries.push(LiveEntry {
            name: lb.name.clone(),
            arn: lb.arn.clone(),
            created_time: lb.created_time,
            document,
            deep_fresh,
        });
    }
    cycle.load_balancers.retain(|lb| !gone.contains(&lb.arn));
    cycle.deep_failures.sort();
    cycle.all_reads_succeeded = cycle.deep_failures.is_empty();
    cycle.reconciled = Some(reconcile(&records, &live_entries, ignore));
    cycle
}

impl Cycle {
    /// The report of this cycle. `complete` follows `check`'s rule (every read succeeded) when
    /// `strict`, else SPEC 2's (the presence pass succeeded).
    pub fn report(&self, target: &TargetConfig, guard: GuardView, strict: bool) -> TargetReport {
        let mut report = TargetReport {
            target: target.name.clone(),
            complete: if strict {
                self.complete && self.all_reads_succeeded
            } else {
                self.complete
            },
            error: None,
            summary: Summary::default(),
            load_balancers: Vec::new(),
            guard,
            exit_code: exit::OK,
        };
        match &self.reconciled {
            Some(reconciled) => {
                report.summary = reconciled.summary();
                report.load_balancers = reconciled.not_in_sync();
            }
            None => {
                // Counts only from what was read in full.
                report.summary.live = self.load_balancers.len() as u64;
                report.summary.recorded = self.items.len() as u64;
            }
        }
        if self.state_table_missing && !self.complete {
            report.error = Some(format!(
                "state table {} does not exist in region {}; create it, or fix state_table of \
                 target {} in the config",
                target.state_table, target.region, target.name
            ));
            report.exit_code = exit::CONFIG;
            return report;
        }
        if let Some(err) = &self.presence_error {
            report.error = Some(format!("{err}"));
        } else if let Some(first) = self.deep_failures.first() {
            let more = match self.deep_failures.len() {
                1 => String::new(),
                n => format!(" (and {} more failed reads)", n - 1),
            };
            report.error = Some(format!("{first}{more}"));
        }
        report.with_exit_code()
    }
}

/// One deep-read plan per live load balancer that has a valid record: a load balancer without
/// one is `missing_record` whatever its deep state, and an invalid record compares nothing.
pub fn deep_plans<'a>(
    lbs: &'a [LiveLoadBalancer],
    records: &[Record],
    index: &TargetGroupIndex<'a>,
) -> Vec<DeepPlan<'a>> {
    let documents: HashMap<&str, &Document> = records
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
