//! One reconciliation of one target (docs/architecture.md#terms): a presence pass, deep reads, the diff.
//!
//! A cycle has two phases. [`read_presence`] reads every load balancer, every target group and
//! the state table; that alone says what state data is missing, so the guard can act on it at
//! once. [`PresencePhase::finish`] then deep-reads listeners, rules, attributes and tags and
//! classifies every load balancer, handing each deep read's outcome to a [`Comparison`] (pure)
//! as it comes in. `check` deep-reads everything; the daemon reads the load
//! balancers checked longest ago, keeping what it read in a [`DeepCache`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::app::reader::{DeepOutcome, DeepPlan, Items, Reader, Tagged};
use crate::aws::AwsError;
use crate::aws::reads::{ElbReads, TableScans};
use crate::control::ControlView;
use crate::control::enforce::PresenceView;
use crate::model::item::StoredItem;
use crate::model::live::{LiveLoadBalancer, LiveTargetGroup, PackedDeepState, TargetGroupIndex};
use crate::model::node::{Digest, Node, digest_bytes};
use crate::model::record::{Record, RecordCache};
use crate::reconcile::guard::Observation;
use crate::reconcile::ignore::IgnoreRules;
use crate::reconcile::report::{GuardView, Summary, TargetReport, exit};
use crate::reconcile::scope::{Membership, ScopeRules};
use crate::reconcile::{Deep, Entry, LiveDocument, LiveEntry, Reconciled, classify, reconcile};
use crate::runtime::config::TargetConfig;

/// Which load balancers a cycle deep-reads.
#[derive(Debug, Clone, Copy)]
pub enum DeepScope {
    /// Every load balancer with a valid record (`check`).
    All,
    /// At most `limit`, those checked longest ago first (the daemon's budget), ending when
    /// `until` comes: a deadline in the deep reads ends them, not the cycle.
    Oldest {
        limit: usize,
        until: Option<tokio::time::Instant>,
    },
}

/// What the deep pass last read of each load balancer, by ARN, with when (Unix seconds).
#[derive(Debug)]
pub struct DeepCache {
    /// By the digest of the load balancer's ARN: 16 bytes a key where the ARN takes some 100.
    kept: HashMap<Digest, Kept>,
    /// Whether reads are kept for the next cycle (the daemon), or dropped once compared (a
    /// one-shot command, which has no next cycle).
    keeps: bool,
}

/// What is kept of one load balancer.
#[derive(Debug, Default)]
struct Kept {
    /// Its last deep read, with when; none after a read that failed (stale).
    deep: Option<(PackedDeepState, i64)>,
    /// When it was last deep-read in full (Unix seconds), kept while later reads fail: the
    /// deep-check age grows from it (docs/architecture.md#http).
    read_at: Option<i64>,
}

impl Default for DeepCache {
    fn default() -> Self {
        DeepCache {
            kept: HashMap::new(),
            keeps: true,
        }
    }
}

impl DeepCache {
    /// A cache for one cycle: each deep read is dropped once its load balancer is compared, so
    /// a full deep pass holds only the reads in flight, not the fleet's.
    pub fn none() -> Self {
        DeepCache {
            keeps: false,
            ..DeepCache::default()
        }
    }

    fn key(arn: &str) -> Digest {
        digest_bytes(arn.as_bytes())
    }

    /// The last deep read of a load balancer, with when, if it is kept.
    fn deep(&self, arn: &str) -> Option<&(PackedDeepState, i64)> {
        self.kept.get(&Self::key(arn))?.deep.as_ref()
    }

    /// When a load balancer was last deep-read in full, if it was.
    fn read_at(&self, arn: &str) -> Option<i64> {
        self.kept.get(&Self::key(arn))?.read_at
    }

    /// Keeps a deep read made at `at`.
    fn keep(&mut self, arn: &str, state: PackedDeepState, at: i64) {
        let kept = self.kept.entry(Self::key(arn)).or_default();
        kept.deep = Some((state, at));
        kept.read_at = Some(at);
    }

    /// A read failed: what was kept is stale, but when it was last read stays.
    fn forget_deep(&mut self, arn: &str) {
        if let Some(kept) = self.kept.get_mut(&Self::key(arn)) {
            kept.deep = None;
        }
    }

    /// The load balancer is gone.
    fn forget(&mut self, arn: &str) {
        self.kept.remove(&Self::key(arn));
    }

    /// Keeps only what is kept of these load balancers.
    fn retain<'a>(&mut self, arns: impl IntoIterator<Item = &'a str>) {
        let live: HashSet<Digest> = arns.into_iter().map(Self::key).collect();
        self.kept.retain(|key, _| live.contains(key));
    }

    /// How many load balancers have a deep read kept.
    #[cfg(test)]
    fn deep_reads(&self) -> usize {
        self.kept
            .values()
            .filter(|kept| kept.deep.is_some())
            .count()
    }

    /// The tags the last deep read of a load balancer found, if any.
    pub fn tags(&self, arn: &str) -> Option<Node> {
        self.deep(arn).and_then(|(state, _)| state.tags())
    }

    /// When a load balancer was last deep-checked, if ever.
    pub fn checked_at(&self, arn: &str) -> Option<i64> {
        self.deep(arn).map(|(_, at)| *at)
    }
}

/// The result of the presence pass.
#[derive(Debug)]
pub struct PresencePhase {
    /// The presence pass succeeded in full (docs/architecture.md#terms): the guard may act on it.
    pub complete: bool,
    /// The failure, where there was one.
    pub error: Option<AwsError>,
    /// The state table does not exist.
    pub state_table_missing: bool,
    /// It does not exist, and lbrecon never saw it: a configuration error.
    pub state_table_never_seen: bool,
    /// Every item of the state table, verbatim, where [`Items::Kept`] (empty when the scan
    /// failed).
    pub items: Vec<StoredItem>,
    /// The items, read as records.
    pub records: Vec<Record>,
    /// The live load balancers in the target's scope (empty when their read failed).
    pub load_balancers: Vec<LiveLoadBalancer>,
    pub target_groups: Vec<LiveTargetGroup>,
    /// Live load balancers outside the target's scope: counted, nothing else.
    pub outside: Vec<LiveLoadBalancer>,
    /// Live load balancers whose tags decide their scope and are not known yet: like ones
    /// inside their grace period, not counted; their tags are read first.
    pub pending: Vec<LiveLoadBalancer>,
    /// Reads of tags for the scope that failed, one line each (a `check` needs every read).
    pub scope_failures: Vec<String>,
}

/// The outcome of a whole cycle.
#[derive(Debug)]
pub struct Cycle {
    pub presence: PresencePhase,
    /// Deep reads that failed, one line each.
    pub deep_failures: Vec<String>,
    /// The classification, when the presence pass was complete.
    pub reconciled: Option<Reconciled>,
    /// Live load balancers with a valid record never deep-checked (or whose last deep read
    /// failed).
    pub deep_unchecked: usize,
    /// The oldest deep check among live load balancers with a valid record (Unix seconds).
    pub oldest_deep_check: Option<i64>,
    /// The oldest successful deep read among live load balancers with a valid record (Unix
    /// seconds), a failed read since not counted: what the deep-check age counts from. `None`
    /// when there is none to read; see also `deep_never_read`.
    pub oldest_deep_read: Option<i64>,
    /// Some live load balancer with a valid record has never been deep-read in full.
    pub deep_never_read: bool,
    /// Deep reads made this cycle.
    pub deep_read: usize,
    /// Deep reads planned this cycle; more than `deep_read` when the deadline ended them.
    pub deep_planned: usize,
    /// When each live load balancer with a valid record was last deep-checked (Unix seconds),
    /// `None` when never (or its last deep read failed).
    pub deep_checked: BTreeMap<String, Option<i64>>,
}

/// Reads the presence of `target`: load balancers and target groups, then the state table.
/// `control` is what the control item said (whether the state table was seen before).
pub async fn read_presence<E: ElbReads, D: TableScans>(
    target: &TargetConfig,
    reader: &Reader<E, D>,
    control: Option<&ControlView>,
    records: &mut RecordCache,
    items: Items,
) -> PresencePhase {
    let presence = reader.presence(&target.state_table, records, items).await;
    let state_table_seen = control.is_some_and(|view| view.state_table_seen);
    let mut phase = PresencePhase {
        complete: false,
        error: None,
        state_table_missing: false,
        state_table_never_seen: false,
        items: Vec::new(),
        records: Vec::new(),
        load_balancers: Vec::new(),
        target_groups: Vec::new(),
        outside: Vec::new(),
        pending: Vec::new(),
        scope_failures: Vec::new(),
    };
    let items = match presence.records {
        Ok(items) => Some(items),
        Err(err) if err.is_not_found() => {
            phase.state_table_missing = true;
            // A table lbrecon has seen before is gone: every record is missing. One it never
            // saw is a configuration error.
            if state_table_seen {
                Some(Vec::new())
            } else {
                phase.state_table_never_seen = true;
                phase.error = Some(err);
                None
            }
        }
        Err(err) => {
            phase.error = Some(err);
            None
        }
    };
    match presence.load_balancers {
        Ok(lbs) => phase.load_balancers = lbs,
        Err(err) => phase.error = Some(err),
    }
    match presence.target_groups {
        Ok(groups) => phase.target_groups = groups,
        Err(err) => phase.error = phase.error.take().or(Some(err)),
    }
    if let Some(items) = items {
        phase.records.reserve_exact(items.len());
        for (record, item) in items {
            phase.records.push(record);
            phase.items.extend(item);
        }
    }
    phase.complete = phase.error.is_none();
    if phase.complete {
        for record in &phase.records {
            for warning in &record.warnings {
                tracing::warn!(target_name = %target.name, load_balancer = %record.name, "record {}: {warning}", record.name);
            }
        }
    }
    phase
}

/// Reads the presence of `target` as a one-shot command needs it: the presence pass, then,
/// when tags decide the scope, the tags of every live load balancer without a record, and the
/// scope applied (the names the control item says the guard counts stay in scope, see
/// [`PresencePhase::apply_scope`]).
pub async fn read_scoped_presence<E: ElbReads, D: TableScans>(
    target: &TargetConfig,
    reader: &Reader<E, D>,
    control: Option<&ControlView>,
    records: &mut RecordCache,
    items: Items,
) -> PresencePhase {
    let mut presence = read_presence(target, reader, control, records, items).await;
    let rules = target.scope_rules();
    let mut tags = HashMap::new();
    if presence.complete && rules.needs_tags() {
        let recorded = presence.record_names();
        let unrecorded: Vec<&LiveLoadBalancer> = presence
            .load_balancers
            .iter()
            .filter(|lb| !recorded.contains(lb.name.as_str()))
            .collect();
        let (read, failures) = read_scope_tags(reader, &unrecorded).await;
        tags = read;
        presence.scope_failures = failures;
    }
    let keep = control
        .map(|view| view.keep_in_scope.clone())
        .unwrap_or_default();
    presence.apply_scope(
        &target.name,
        &rules,
        |arn| tags.get(arn).map(Cow::Borrowed),
        &keep,
    );
    presence
}

/// Reads the tags of `load_balancers` (20 ARNs a call), for the scope. A NotFound batch is
/// narrowed as the deep pass's are; a load balancer deleted in between is left out (nothing to
/// judge). A call that fails leaves its load balancers unknown (pending), with one failure line
/// each.
pub async fn read_scope_tags<E: ElbReads, D>(
    reader: &Reader<E, D>,
    load_balancers: &[&LiveLoadBalancer],
) -> (HashMap<String, Node>, Vec<String>) {
    let mut tags = HashMap::new();
    let mut failures = Vec::new();
    let arns: Vec<String> = load_balancers.iter().map(|lb| lb.arn.clone()).collect();
    let name_of: HashMap<&str, &str> = load_balancers
        .iter()
        .map(|lb| (lb.arn.as_str(), lb.name.as_str()))
        .collect();
    for chunk in arns.chunks(crate::aws::elb::TAGS_PER_CALL) {
        let answers = crate::app::reader::narrow_tags(chunk.to_vec(), |batch, again| async move {
            reader.elb.tags(&batch, again).await
        })
        .await;
        let mut failed: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (arn, answer) in answers {
            match answer {
                Ok(Tagged::Tags(map)) => {
                    tags.insert(arn, map);
                }
                Ok(Tagged::Gone) => {}
                Err(err) => failed
                    .entry(err.to_string())
                    .or_default()
                    .push(name_of.get(arn.as_str()).copied().unwrap_or("?")),
            }
        }
        for (error, names) in failed {
            failures.push(format!(
                "reading tags for the scope: {error} (for load balancer(s) {})",
                names.join(", ")
            ));
        }
    }
    (tags, failures)
}

impl PresencePhase {
    /// Names of load balancers with a readable record.
    pub fn valid_record_names(&self) -> BTreeSet<String> {
        crate::model::record::valid_names(&self.records)
    }

    /// What the guard sees of a complete presence pass, at `now` (Unix seconds).
    pub fn observation(&self, now: i64) -> Observation {
        Observation {
            now,
            live: self
                .load_balancers
                .iter()
                .map(|lb| (lb.name.clone(), lb.created_time))
                .collect(),
            records: self.valid_record_names(),
            state_table_gone: self.state_table_missing,
        }
    }

    /// What the guard's effects need of it.
    pub fn view(&self) -> PresenceView<'_> {
        PresenceView {
            load_balancers: &self.load_balancers,
            target_groups: &self.target_groups,
            state_table_missing: self.state_table_missing,
        }
    }

    /// Names the state table holds an item for, valid or not.
    pub fn record_names(&self) -> HashSet<&str> {
        self.records
            .iter()
            .map(|record| record.name.as_str())
            .collect()
    }

    /// Splits the live load balancers by scope: in scope ones stay in `load_balancers`,
    /// pending ones move to `pending`, out of scope ones to `outside`. A name
    /// in `keep` (one the guard counts as missing, or quarantines, or whose record was at the
    /// high-water mark) stays in scope whatever the rules say: a load balancer whose ownership
    /// tag is removed during a loss is not dropped until its record is back.
    pub fn apply_scope<'t>(
        &mut self,
        target: &str,
        rules: &ScopeRules,
        tags_of: impl Fn(&str) -> Option<Cow<'t, Node>>,
        keep: &BTreeSet<String>,
    ) {
        if rules.is_everything() || !self.complete {
            return;
        }
        let recorded: HashSet<String> = self
            .record_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut in_scope = Vec::with_capacity(self.load_balancers.len());
        for lb in std::mem::take(&mut self.load_balancers) {
            let membership = rules.membership(
                &lb.name,
                recorded.contains(&lb.name),
                tags_of(&lb.arn).as_deref(),
            );
            match membership {
                Membership::In => in_scope.push(lb),
                _ if keep.contains(&lb.name) => {
                    tracing::warn!(target_name = target, load_balancer = %lb.name, "out of the target's scope by its rules, but kept in it until its record is back: it went missing while in scope");
                    in_scope.push(lb);
                }
                Membership::Pending => self.pending.push(lb),
                Membership::Out => self.outside.push(lb),
            }
        }
        self.load_balancers = in_scope;
    }

    /// Deep-reads within `scope` and classifies every load balancer: each outcome of the deep
    /// reads is handed to a [`Comparison`] as it comes in.
    pub async fn finish<E: ElbReads, D: TableScans>(
        mut self,
        reader: &Reader<E, D>,
        ignore: &IgnoreRules,
        scope: DeepScope,
        cache: &mut DeepCache,
    ) -> Cycle {
        if !self.complete {
            return Cycle {
                presence: self,
                deep_failures: Vec::new(),
                reconciled: None,
                deep_unchecked: 0,
                oldest_deep_check: None,
                oldest_deep_read: None,
                deep_never_read: false,
                deep_checked: BTreeMap::new(),
                deep_read: 0,
                deep_planned: 0,
            };
        }
        let mut deep_failures = std::mem::take(&mut self.scope_failures);
        let until = match scope {
            DeepScope::Oldest { until, .. } => until,
            DeepScope::All => None,
        };
        let now = crate::model::clock::now_unix();
        let (compared, planned) = {
            let mut comparison = Comparison::new(&self, ignore, cache, now);
            let plans = comparison.plans(scope);
            let deep_pass = reader.deep(&plans, |i, outcome| {
                comparison.add(plans[i].load_balancer, outcome)
            });
            match until {
                // What was read before the deadline is kept; the rest waits for the next
                // cycle, oldest-checked first as ever.
                Some(until) => {
                    let _ = tokio::time::timeout_at(until, deep_pass).await;
                }
                None => deep_pass.await,
            }
            (comparison.finish(), plans.len())
        };
        deep_failures.extend(compared.failures);
        deep_failures.sort();
        self.load_balancers
            .retain(|lb| !compared.gone.contains(&lb.arn));
        let reconciled = Reconciled {
            entries: compared.entries,
            live: self.load_balancers.len() as u64,
            recorded: self.records.len() as u64,
        };
        Cycle {
            presence: self,
            deep_failures,
            reconciled: Some(reconciled),
            deep_unchecked: compared.deep_unchecked,
            oldest_deep_check: compared.oldest_deep_check,
            oldest_deep_read: compared.oldest_deep_read,
            deep_never_read: compared.deep_never_read,
            deep_checked: compared.deep_checked,
            deep_read: compared.deep_read,
            deep_planned: planned,
        }
    }
}

/// The compare step of a complete cycle, fed one deep read's outcome at a time: each load
/// balancer deep-read is compared as soon as its read is in (so a one-shot cache holds only the
/// reads in flight), and [`Comparison::finish`] compares the rest, the load balancers not
/// deep-read this cycle with their last deep read (if any), and the names on one side only.
/// Pure: it does no I/O, and keeps `cache` up to date as outcomes come in.
pub struct Comparison<'p, 'c> {
    presence: &'p PresencePhase,
    index: TargetGroupIndex<'p>,
    ignore: &'p IgnoreRules,
    cache: &'c mut DeepCache,
    /// When the reads handed in were made (Unix seconds).
    now: i64,
    /// The record a name stands for: the last of that name, as `reconcile` takes it.
    record_of: HashMap<&'p str, &'p Record>,
    /// Names with a valid record: the load balancers a deep read compares (one with none is
    /// `missing_record` whatever its deep state).
    valid: HashSet<&'p str>,
    entries: Vec<Entry>,
    compared: HashSet<&'p str>,
    gone: HashSet<&'p str>,
    deep: DeepTally,
    failures: Vec<String>,
    read: usize,
}

/// What a [`Comparison`] found.
#[derive(Debug)]
pub struct Compared {
    /// One entry per name, by name.
    pub entries: Vec<Entry>,
    /// ARNs of load balancers deleted since the presence pass listed them.
    pub gone: HashSet<String>,
    /// Deep reads that failed, one line each, in the order they came.
    pub failures: Vec<String>,
    /// Outcomes handed in.
    pub deep_read: usize,
    /// As [`Cycle`]'s fields of the same names.
    pub deep_checked: BTreeMap<String, Option<i64>>,
    pub deep_unchecked: usize,
    pub oldest_deep_check: Option<i64>,
    pub oldest_deep_read: Option<i64>,
    pub deep_never_read: bool,
}

impl<'p, 'c> Comparison<'p, 'c> {
    /// A comparison of a complete presence pass, whose deep reads were made at `now`. What
    /// `cache` holds of load balancers no longer live is dropped.
    pub fn new(
        presence: &'p PresencePhase,
        ignore: &'p IgnoreRules,
        cache: &'c mut DeepCache,
        now: i64,
    ) -> Self {
        cache.retain(presence.load_balancers.iter().map(|lb| lb.arn.as_str()));
        let record_of = presence
            .records
            .iter()
            .map(|record| (record.name.as_str(), record))
            .collect();
        let valid = presence
            .records
            .iter()
            .filter(|record| record.is_valid())
            .map(|record| record.name.as_str())
            .collect();
        Comparison {
            presence,
            index: TargetGroupIndex::new(&presence.target_groups),
            ignore,
            cache,
            now,
            record_of,
            valid,
            entries: Vec::with_capacity(presence.records.len() + presence.load_balancers.len()),
            compared: HashSet::new(),
            gone: HashSet::new(),
            deep: DeepTally::default(),
            failures: Vec::new(),
            read: 0,
        }
    }

    /// What to deep-read within `scope`: every live load balancer with a valid record, or the
    /// `limit` checked longest ago (never checked first, then by name).
    pub fn plans(&self, scope: DeepScope) -> Vec<DeepPlan<'p>> {
        let presence = self.presence;
        let mut plans = deep_plans(&presence.load_balancers, &presence.records, &self.index);
        if let DeepScope::Oldest { limit, .. } = scope {
            plans.sort_by_key(|plan| {
                (
                    self.cache.checked_at(&plan.load_balancer.arn),
                    plan.load_balancer.name.clone(),
                )
            });
            plans.truncate(limit);
        }
        plans
    }

    /// Takes the outcome of deep-reading `lb` (one of the presence pass's): kept in the cache
    /// (a failure drops what the cache held: stale, never compared as if known), and `lb`
    /// compared with its record at once; a load balancer gone since is not live any more.
    pub fn add(&mut self, lb: &'p LiveLoadBalancer, outcome: DeepOutcome) {
        self.read += 1;
        let cache = &mut *self.cache;
        let state = match outcome {
            DeepOutcome::Gone => {
                // Deleted since the presence pass listed it: not live any more (its record,
                // if any, is compared with nothing by `finish`).
                self.gone.insert(&lb.arn);
                cache.forget(&lb.arn);
                return;
            }
            DeepOutcome::Read(state) => Some(state),
            DeepOutcome::Failed(failure) => {
                self.failures.push(failure.to_string());
                // Stale: never compared as if known, until read again.
                cache.forget_deep(&lb.arn);
                None
            }
        };
        if let Some(state) = &state
            && cache.keeps
        {
            cache.keep(&lb.arn, state.pack(), self.now);
        }
        self.deep.note(&lb.name, state.as_ref().map(|_| self.now));
        self.deep.note_read(cache.read_at(&lb.arn));
        let live = live_entry(lb, &self.index, state.as_ref().map(Deep::Read), true);
        self.entries.push(classify(
            &lb.name,
            self.record_of.get(lb.name.as_str()).copied(),
            Some(&live),
            self.ignore,
        ));
        self.compared.insert(&lb.name);
    }

    /// Compares the rest: load balancers not deep-read this cycle (with their last deep read,
    /// if any) and names on one side only, the records of load balancers gone since among them.
    pub fn finish(mut self) -> Compared {
        let presence = self.presence;
        let cache = &*self.cache;
        let mut rest_live = Vec::new();
        for lb in &presence.load_balancers {
            if self.gone.contains(lb.arn.as_str()) || self.compared.contains(lb.name.as_str()) {
                continue;
            }
            let has_record = self.valid.contains(lb.name.as_str());
            let cached = cache.deep(&lb.arn);
            if has_record {
                self.deep.note(&lb.name, cached.map(|(_, at)| *at));
                self.deep.note_read(cache.read_at(&lb.arn));
            }
            let deep = cached.map(|(packed, _)| Deep::Packed(packed));
            rest_live.push(live_entry(lb, &self.index, deep, has_record));
        }
        let rest_records = presence
            .records
            .iter()
            .filter(|record| !self.compared.contains(record.name.as_str()));
        self.entries
            .extend(reconcile(rest_records, &rest_live, self.ignore).entries);
        self.entries.sort_by(|a, b| a.name.cmp(&b.name));
        Compared {
            entries: self.entries,
            gone: self.gone.into_iter().map(str::to_string).collect(),
            failures: self.failures,
            deep_read: self.read,
            deep_checked: self.deep.checked,
            deep_unchecked: self.deep.unchecked,
            oldest_deep_check: self.deep.oldest,
            oldest_deep_read: self.deep.oldest_read,
            deep_never_read: self.deep.never_read,
        }
    }
}

/// One live load balancer as the diff sees it: its presence fields, with its deep state where
/// one is known. `has_record`: whether a valid record compares it (without one, no deep read
/// is needed: it is `missing_record` whatever its deep state).
fn live_entry<'a>(
    lb: &'a LiveLoadBalancer,
    index: &'a TargetGroupIndex<'a>,
    deep: Option<Deep<'a>>,
    has_record: bool,
) -> LiveEntry<'a> {
    LiveEntry {
        name: lb.name.clone(),
        created_time: lb.created_time,
        document: LiveDocument::Parts {
            load_balancer: lb,
            groups: index,
            deep,
        },
        deep_fresh: deep.is_some() || !has_record,
    }
}

/// When each live load balancer with a valid record was last deep-checked.
#[derive(Default)]
struct DeepTally {
    checked: BTreeMap<String, Option<i64>>,
    unchecked: usize,
    oldest: Option<i64>,
    oldest_read: Option<i64>,
    never_read: bool,
}

impl DeepTally {
    fn note(&mut self, name: &str, at: Option<i64>) {
        self.checked.insert(name.to_string(), at);
        match at {
            Some(at) => self.oldest = Some(self.oldest.map_or(at, |oldest| oldest.min(at))),
            None => self.unchecked += 1,
        }
    }

    /// When a load balancer was last deep-read in full, failed reads since not counted.
    fn note_read(&mut self, at: Option<i64>) {
        match at {
            Some(at) => {
                self.oldest_read = Some(self.oldest_read.map_or(at, |oldest| oldest.min(at)))
            }
            None => self.never_read = true,
        }
    }
}

/// What a cycle says of its deep reads, for the deep-check age: whether some live load
/// balancer with a record was never deep-read in full, and the oldest full read among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeepReadAge {
    pub never_read: bool,
    pub oldest_read: Option<i64>,
}

/// When the deep-check age counts from (Unix seconds), after a cycle (docs/architecture.md#http). `read`: what a
/// complete cycle said (`None` for an incomplete one). The oldest successful deep read of a
/// live load balancer with a record, or `started` (the daemon's start) while one has never
/// been read; `now` when there is nothing to read. An incomplete cycle says nothing new: the
/// age keeps counting from `previous` (or from `started`), so it grows while cycles fail.
pub fn deep_age_since(
    read: Option<DeepReadAge>,
    previous: Option<i64>,
    started: i64,
    now: i64,
) -> i64 {
    match read {
        None => previous.unwrap_or(started),
        Some(read) if read.never_read => started,
        Some(read) => read.oldest_read.unwrap_or(now),
    }
}

impl Cycle {
    /// The presence pass succeeded in full.
    pub fn complete(&self) -> bool {
        self.presence.complete
    }

    /// What this cycle says of its deep reads, for the deep-check age; `None` when it was
    /// incomplete (it read nothing deep).
    pub fn deep_read_age(&self) -> Option<DeepReadAge> {
        self.complete().then_some(DeepReadAge {
            never_read: self.deep_never_read,
            oldest_read: self.oldest_deep_read,
        })
    }

    /// The report of this cycle. `complete` follows `check`'s rule (every read succeeded) when
    /// `strict`, else docs/architecture.md#terms's (the presence pass succeeded).
    pub fn report(&self, target: &TargetConfig, guard: GuardView, strict: bool) -> TargetReport {
        let presence = &self.presence;
        let mut report = TargetReport {
            target: target.name.clone(),
            complete: presence.complete && (!strict || self.deep_failures.is_empty()),
            error: None,
            summary: Summary::default(),
            load_balancers: Vec::new(),
            guard,
            deep_checked_at: None,
            exit_code: exit::OK,
        };
        if !strict {
            report.deep_checked_at = Some(
                self.deep_checked
                    .iter()
                    .map(|(name, at)| (name.clone(), at.and_then(crate::model::clock::rfc3339)))
                    .collect(),
            );
        }
        match &self.reconciled {
            Some(reconciled) => {
                report.summary = reconciled.summary();
                report.load_balancers = reconciled.not_in_sync();
            }
            None => {
                // Counts only from what was read in full.
                report.summary.live = presence.load_balancers.len() as u64;
                report.summary.recorded = presence.records.len() as u64;
            }
        }
        report.summary.out_of_scope = presence.outside.len() as u64;
        if presence.state_table_never_seen {
            report.error = Some(format!(
                "state table {} does not exist in region {}; create it, or fix state_table of \
                 target {} in the config",
                target.state_table, target.region, target.name
            ));
            report.exit_code = exit::CONFIG;
            return report;
        }
        if let Some(err) = &presence.error {
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
    let valid: HashMap<&str, &Record> = records
        .iter()
        .filter(|record| record.is_valid())
        .map(|record| (record.name.as_str(), record))
        .collect();
    lbs.iter()
        .filter_map(|lb| {
            let wanted = valid.get(lb.name.as_str())?.wants()?.into_owned();
            Some(DeepPlan {
                load_balancer: lb,
                target_groups: index.of(&lb.arn).to_vec(),
                additional_certificates: wanted.additional_certificates,
                targets: wanted.targets,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTED: i64 = 1_000;

    #[test]
    fn the_deep_check_age_keeps_growing_while_cycles_fail() {
        let read = DeepReadAge {
            never_read: false,
            oldest_read: Some(1_100),
        };
        // A complete cycle: from the oldest full read.
        let since = deep_age_since(Some(read), None, STARTED, 1_200);
        assert_eq!(since, 1_100);
        // Incomplete cycles after it: still from that read, so the age (now - since) grows.
        let since = deep_age_since(None, Some(since), STARTED, 1_300);
        assert_eq!(since, 1_100);
        assert_eq!(deep_age_since(None, Some(since), STARTED, 1_400), 1_100);
    }

    #[test]
    fn a_load_balancer_never_read_ages_from_the_daemons_start() {
        // The first cycles fail: from the start, exported all the same.
        assert_eq!(deep_age_since(None, None, STARTED, 1_050), STARTED);
        let never = DeepReadAge {
            never_read: true,
            oldest_read: Some(1_100),
        };
        assert_eq!(deep_age_since(Some(never), None, STARTED, 1_200), STARTED);
    }

    #[test]
    fn nothing_to_read_is_an_age_of_zero() {
        let nothing = DeepReadAge {
            never_read: false,
            oldest_read: None,
        };
        assert_eq!(
            deep_age_since(Some(nothing), Some(900), STARTED, 1_200),
            1_200
        );
    }
}

/// The compare step fed one outcome at a time, and the presence pass and a whole cycle over an
/// in-memory fleet.
#[cfg(test)]
mod seams {
    use super::*;
    use crate::app::fake_aws::{FakeAws, Fleet, On, lb_arn};
    use crate::app::reader::DeepFailure;
    use crate::aws::ErrorClass;
    use crate::control::ControlView;
    use crate::model::live::DeepState;
    use crate::model::record::RecordRules;
    use crate::reconcile::report::{DriftKind, GuardView};
    use serde_json::json;

    /// When this cycle's reads were made, and an earlier cycle's.
    const NOW: i64 = 2_000_000_000;
    const EARLIER: i64 = 1_999_990_000;

    fn target() -> TargetConfig {
        TargetConfig {
            name: "prod".into(),
            region: "us-east-1".into(),
            state_table: "lb-state".into(),
            control_table: "lbrecon-control".into(),
            role_arn: None,
            scope: Default::default(),
            stream: Default::default(),
        }
    }

    /// A complete presence pass of `fleet`, as `read_presence` would give it.
    fn presence_of(fleet: &Fleet) -> PresencePhase {
        let (load_balancers, target_groups) = fleet.presence();
        let records = fleet
            .items
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, item)| Record::from_item(item, i, &RecordRules::default()))
            .collect();
        PresencePhase {
            complete: true,
            error: None,
            state_table_missing: false,
            state_table_never_seen: false,
            items: Vec::new(),
            records,
            load_balancers,
            target_groups,
            outside: Vec::new(),
            pending: Vec::new(),
            scope_failures: Vec::new(),
        }
    }

    fn lb<'p>(presence: &'p PresencePhase, name: &str) -> &'p LiveLoadBalancer {
        presence
            .load_balancers
            .iter()
            .find(|lb| lb.name == name)
            .expect("listed")
    }

    fn entry<'e>(compared: &'e [Entry], name: &str) -> &'e Entry {
        compared
            .iter()
            .find(|entry| entry.name == name)
            .unwrap_or_else(|| panic!("no entry for {name}: {compared:?}"))
    }

    fn throttled(name: &str) -> DeepOutcome {
        DeepOutcome::Failed(DeepFailure {
            resource: format!("load balancer {name}"),
            error: AwsError {
                service: "elasticloadbalancing",
                operation: "DescribeListeners",
                class: ErrorClass::Throttled,
                code: Some("Throttling".into()),
                message: "Rate exceeded".into(),
            },
        })
    }

    fn cached(cache: &mut DeepCache, fleet: &Fleet, name: &str, at: i64) {
        cached_state(cache, name, fleet.deep_state(name), at);
    }

    fn cached_state(cache: &mut DeepCache, name: &str, state: DeepState, at: i64) {
        cache.keep(&lb_arn(name), state.pack(), at);
    }

    /// A deep state of `fleet` whose tags are not its record's.
    fn retagged(fleet: &Fleet, name: &str) -> DeepState {
        DeepState {
            tags: Node::from_value(&json!({"team": "core"})),
            ..fleet.deep_state(name)
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Given {
        Read,
        Failed,
        Gone,
    }

    #[test]
    fn the_compare_step_classifies_each_outcome_as_it_is_handed_in() {
        struct Case {
            what: &'static str,
            /// Changes the record of `web` from the one that matches.
            record: fn(&mut serde_json::Value),
            given: Given,
            kind: Option<DriftKind>,
            /// Paths of the changes reported.
            changes: &'static [&'static str],
            /// What the cache holds of `web` after: when its deep state was read.
            cache_after: Option<i64>,
            checked: Option<i64>,
        }
        let cases = [
            Case {
                what: "read, as recorded",
                record: |_| {},
                given: Given::Read,
                kind: Some(DriftKind::InSync),
                changes: &[],
                cache_after: Some(NOW),
                checked: Some(NOW),
            },
            Case {
                what: "read, a tag changed",
                record: |config| config["tags"]["team"] = json!("core"),
                given: Given::Read,
                kind: Some(DriftKind::Changed),
                changes: &["/tags/team"],
                cache_after: Some(NOW),
                checked: Some(NOW),
            },
            Case {
                what: "read, a rule changed",
                record: |config| config["listeners"][0]["rules"][0]["priority"] = json!(20),
                given: Given::Read,
                kind: Some(DriftKind::Changed),
                changes: &["/listeners/80/rules/10", "/listeners/80/rules/20"],
                cache_after: Some(NOW),
                checked: Some(NOW),
            },
            Case {
                what: "failed: stale, neither in sync nor changed, its last read dropped",
                record: |config| config["tags"]["team"] = json!("core"),
                given: Given::Failed,
                kind: None,
                changes: &[],
                cache_after: None,
                checked: None,
            },
            Case {
                what: "failed: a presence field that differs is still drift",
                record: |config| config["scheme"] = json!("internet-facing"),
                given: Given::Failed,
                kind: Some(DriftKind::Changed),
                changes: &["/scheme"],
                cache_after: None,
                checked: None,
            },
            Case {
                what: "gone: not live any more, its record missing live",
                record: |_| {},
                given: Given::Gone,
                kind: Some(DriftKind::MissingLive),
                changes: &[],
                cache_after: None,
                checked: None,
            },
        ];
        for case in cases {
            let fleet = Fleet::new().load_balancer("web", 1);
            let mut config = fleet.config("web");
            (case.record)(&mut config);
            let fleet = fleet.item("web", config);
            let presence = presence_of(&fleet);
            let ignore = IgnoreRules::default();
            let mut cache = DeepCache::default();
            // Read in full by an earlier cycle.
            cached(&mut cache, &fleet, "web", EARLIER);

            let mut comparison = Comparison::new(&presence, &ignore, &mut cache, NOW);
            let outcome = match case.given {
                Given::Read => DeepOutcome::Read(fleet.deep_state("web")),
                Given::Failed => throttled("web"),
                Given::Gone => DeepOutcome::Gone,
            };
            comparison.add(lb(&presence, "web"), outcome);
            let compared = comparison.finish();

            let what = case.what;
            assert_eq!(compared.entries.len(), 1, "{what}: {:?}", compared.entries);
            let web = entry(&compared.entries, "web");
            assert_eq!(web.kind, case.kind, "{what}: {web:?}");
            let paths: Vec<&str> = web.changes.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, case.changes, "{what}");
            assert_eq!(compared.deep_read, 1, "{what}");
            assert_eq!(cache.checked_at(&lb_arn("web")), case.cache_after, "{what}");
            match case.given {
                Given::Read => {
                    assert!(compared.failures.is_empty() && compared.gone.is_empty());
                    assert_eq!(compared.deep_checked["web"], case.checked, "{what}");
                    assert_eq!(compared.oldest_deep_read, Some(NOW), "{what}");
                    assert_eq!(compared.deep_unchecked, 0, "{what}");
                }
                Given::Failed => {
                    assert_eq!(
                        compared.failures,
                        [
                            "DescribeListeners failed: Throttling: Rate exceeded (for load balancer web)"
                        ],
                        "{what}"
                    );
                    assert_ne!(web.kind, Some(DriftKind::InSync), "{what}");
                    assert_eq!(compared.deep_checked["web"], case.checked, "{what}");
                    assert_eq!(compared.deep_unchecked, 1, "{what}");
                    // The deep-check age keeps counting from the last full read.
                    assert_eq!(cache.read_at(&lb_arn("web")), Some(EARLIER), "{what}");
                    assert_eq!(compared.oldest_deep_read, Some(EARLIER), "{what}");
                }
                Given::Gone => {
                    assert!(!web.live, "{what}");
                    assert!(compared.gone.contains(&lb_arn("web")), "{what}");
                    assert!(compared.failures.is_empty(), "{what}");
                    assert!(compared.deep_checked.is_empty(), "{what}");
                    assert_eq!(cache.read_at(&lb_arn("web")), None, "{what}");
                }
            }
        }
    }

    #[test]
    fn load_balancers_not_read_this_cycle_are_compared_with_their_last_deep_read() {
        let fleet = Fleet::new()
            .load_balancer("cached", 1)
            .load_balancer("never", 1)
            .load_balancer("read", 1)
            .load_balancer("unrecorded", 1)
            .load_balancer("drifted", 1);
        let fleet = ["cached", "never", "read", "drifted"]
            .into_iter()
            .fold(fleet, |fleet, name| {
                let config = fleet.config(name);
                fleet.item(name, config)
            })
            .item("deleted", json!({"scheme": "internal"}));
        let presence = presence_of(&fleet);
        let ignore = IgnoreRules::default();
        let mut cache = DeepCache::default();
        cached(&mut cache, &fleet, "cached", EARLIER);
        // Its last deep read found a tag that is not the record's.
        cached_state(
            &mut cache,
            "drifted",
            retagged(&fleet, "drifted"),
            EARLIER + 1,
        );

        let mut comparison = Comparison::new(&presence, &ignore, &mut cache, NOW);
        comparison.add(
            lb(&presence, "read"),
            DeepOutcome::Read(fleet.deep_state("read")),
        );
        let compared = comparison.finish();

        let kinds: Vec<(&str, Option<DriftKind>)> = compared
            .entries
            .iter()
            .map(|entry| (entry.name.as_str(), entry.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("cached", Some(DriftKind::InSync)),
                ("deleted", Some(DriftKind::MissingLive)),
                ("drifted", Some(DriftKind::Changed)),
                // Never deep-read: only its presence fields are known, which agree.
                ("never", None),
                ("read", Some(DriftKind::InSync)),
                ("unrecorded", Some(DriftKind::MissingRecord)),
            ]
        );
        assert_eq!(
            entry(&compared.entries, "drifted").changes[0].path,
            "/tags/team"
        );
        assert_eq!(compared.deep_read, 1);
        assert_eq!(
            compared.deep_checked,
            BTreeMap::from([
                ("cached".to_string(), Some(EARLIER)),
                ("drifted".to_string(), Some(EARLIER + 1)),
                ("never".to_string(), None),
                ("read".to_string(), Some(NOW)),
            ])
        );
        assert_eq!(compared.deep_unchecked, 1);
        assert_eq!(compared.oldest_deep_check, Some(EARLIER));
        assert_eq!(compared.oldest_deep_read, Some(EARLIER));
        assert!(compared.deep_never_read);
    }

    #[test]
    fn a_deadline_that_leaves_plans_unread_keeps_the_rest_with_their_last_deep_state() {
        let fleet = Fleet::new()
            .load_balancer("a", 1)
            .load_balancer("b", 1)
            .load_balancer("c", 1)
            .recorded();
        let presence = presence_of(&fleet);
        let ignore = IgnoreRules::default();
        let mut cache = DeepCache::default();
        cached(&mut cache, &fleet, "a", EARLIER + 300);
        cached(&mut cache, &fleet, "b", EARLIER + 100);
        // What the last read of `c` found differs from its record.
        cached_state(&mut cache, "c", retagged(&fleet, "c"), EARLIER + 200);

        let mut comparison = Comparison::new(&presence, &ignore, &mut cache, NOW);
        let oldest = DeepScope::Oldest {
            limit: 2,
            until: None,
        };
        let names = |plans: &[DeepPlan<'_>]| -> Vec<String> {
            plans
                .iter()
                .map(|plan| plan.load_balancer.name.clone())
                .collect()
        };
        // Checked longest ago first, `limit` of them.
        assert_eq!(names(&comparison.plans(oldest)), ["b", "c"]);
        let plans = comparison.plans(DeepScope::Oldest {
            limit: 10,
            until: None,
        });
        assert_eq!(names(&plans), ["b", "c", "a"]);
        assert_eq!(names(&comparison.plans(DeepScope::All)), ["a", "b", "c"]);
        // The deadline came after the first read.
        comparison.add(
            plans[0].load_balancer,
            DeepOutcome::Read(fleet.deep_state("b")),
        );
        let planned = plans.len();
        drop(plans);
        let compared = comparison.finish();

        assert!(compared.deep_read < planned);
        assert_eq!(compared.deep_read, 1);
        let kinds: Vec<Option<DriftKind>> = compared.entries.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                Some(DriftKind::InSync),
                Some(DriftKind::InSync),
                Some(DriftKind::Changed)
            ]
        );
        assert_eq!(
            compared.deep_checked,
            BTreeMap::from([
                ("a".to_string(), Some(EARLIER + 300)),
                ("b".to_string(), Some(NOW)),
                ("c".to_string(), Some(EARLIER + 200)),
            ])
        );
        // The rest are read first next cycle.
        assert_eq!(cache.checked_at(&lb_arn("a")), Some(EARLIER + 300));
        assert_eq!(cache.checked_at(&lb_arn("c")), Some(EARLIER + 200));
    }

    #[test]
    fn a_one_shot_comparison_drops_each_read_once_compared() {
        let fleet = Fleet::new().load_balancer("web", 1).recorded();
        let presence = presence_of(&fleet);
        let ignore = IgnoreRules::default();
        let mut cache = DeepCache::none();
        let mut comparison = Comparison::new(&presence, &ignore, &mut cache, NOW);
        comparison.add(
            lb(&presence, "web"),
            DeepOutcome::Read(fleet.deep_state("web")),
        );
        let compared = comparison.finish();
        assert_eq!(compared.entries[0].kind, Some(DriftKind::InSync));
        assert!(cache.kept.is_empty());
    }

    /// A fleet of five load balancers, pages of two, four of them recorded.
    fn paged_fleet() -> Fleet {
        let fleet = Fleet::new().load_balancers(5, 1).page_sizes(2, 2);
        (0..4).fold(fleet, |fleet, i| {
            let name = format!("lb-{i:03}");
            let config = fleet.config(&name);
            fleet.item(&name, config)
        })
    }

    #[tokio::test]
    async fn the_presence_pass_is_complete_only_when_every_page_is_read() {
        struct Case {
            what: &'static str,
            fail: Option<(&'static str, On, ErrorClass)>,
            complete: bool,
            /// Load balancers, target groups and records the pass holds.
            counts: (usize, usize, usize),
        }
        let cases = [
            Case {
                what: "every page read",
                fail: None,
                complete: true,
                counts: (5, 5, 4),
            },
            Case {
                what: "a page of load balancers fails",
                fail: Some(("DescribeLoadBalancers", On::Call(2), ErrorClass::Throttled)),
                complete: false,
                counts: (0, 5, 4),
            },
            Case {
                what: "a page of target groups fails",
                fail: Some(("DescribeTargetGroups", On::Call(3), ErrorClass::Service)),
                complete: false,
                counts: (5, 0, 4),
            },
            Case {
                what: "a page of the scan fails",
                fail: Some(("Scan", On::Call(2), ErrorClass::Throttled)),
                complete: false,
                counts: (5, 5, 0),
            },
            Case {
                what: "the state table denies the scan",
                fail: Some(("Scan", On::Call(1), ErrorClass::AccessDenied)),
                complete: false,
                counts: (5, 5, 0),
            },
        ];
        for case in cases {
            let what = case.what;
            let fake = FakeAws::new(paged_fleet());
            if let Some((operation, on, class)) = case.fail.clone() {
                fake.fail(operation, on, class);
            }
            let reader = fake.reader(4);
            let mut records = RecordCache::default();
            let presence = read_presence(&target(), &reader, None, &mut records, Items::Kept).await;
            assert_eq!(presence.complete, case.complete, "{what}");
            assert_eq!(
                (
                    presence.load_balancers.len(),
                    presence.target_groups.len(),
                    presence.records.len()
                ),
                case.counts,
                "{what}"
            );
            assert!(!presence.state_table_missing, "{what}");
            // Every page is asked for up to the one that fails; a failed part is not read on.
            let pages = [
                ("DescribeLoadBalancers", 3),
                ("DescribeTargetGroups", 3),
                ("Scan", 2),
            ];
            for (operation, whole) in pages {
                let expected = match &case.fail {
                    Some((failed, On::Call(n), _)) if *failed == operation => *n,
                    _ => whole,
                };
                assert_eq!(fake.count(operation), expected, "{what}: {operation}");
            }
            let scan_failed = matches!(&case.fail, Some(("Scan", _, _)));
            match &case.fail {
                None => assert!(presence.error.is_none(), "{what}"),
                Some((operation, _, _)) => {
                    let error = presence.error.as_ref().expect("the failure");
                    assert_eq!(error.operation, *operation, "{what}");
                }
            }
            // A partial scan is never taken for the table, nor kept for the next one.
            let items = if scan_failed { 0 } else { 4 };
            assert_eq!(presence.items.len(), items, "{what}");
            assert_eq!(records.len(), items, "{what}");

            let before = fake.all_calls();
            let cycle = presence
                .finish(
                    &reader,
                    &IgnoreRules::default(),
                    DeepScope::All,
                    &mut DeepCache::none(),
                )
                .await;
            let report = cycle.report(
                &target(),
                GuardView {
                    paused: false,
                    reason: None,
                },
                true,
            );
            let summary = &report.summary;
            if case.complete {
                assert_eq!(summary.in_sync, 4, "{what}: {summary:?}");
                assert_eq!(summary.missing_record, 1, "{what}: {summary:?}");
                assert_eq!(summary.missing_live, 0, "{what}: {summary:?}");
            } else {
                // An incomplete pass reports nothing missing, and reads nothing deep.
                assert!(cycle.reconciled.is_none(), "{what}");
                assert_eq!(
                    (
                        summary.missing_record,
                        summary.missing_live,
                        summary.in_sync
                    ),
                    (0, 0, 0),
                    "{what}: {summary:?}"
                );
                assert_eq!(fake.all_calls(), before, "{what}");
                assert!(!report.complete, "{what}");
            }
        }
    }

    #[tokio::test]
    async fn a_state_table_that_does_not_exist_is_missing() {
        for (what, fleet, seen) in [
            ("never seen", paged_fleet().without_table(), false),
            ("seen before", paged_fleet().without_table(), true),
        ] {
            let fake = FakeAws::new(fleet);
            let reader = fake.reader(4);
            let view = ControlView {
                guard: GuardView {
                    paused: false,
                    reason: None,
                },
                state_table_seen: seen,
                keep_in_scope: BTreeSet::new(),
            };
            let presence = read_presence(
                &target(),
                &reader,
                Some(&view),
                &mut RecordCache::default(),
                Items::Dropped,
            )
            .await;
            assert!(presence.state_table_missing, "{what}");
            assert_eq!(presence.state_table_never_seen, !seen, "{what}");
            // A table seen before and gone: every record is missing, and the guard may act.
            assert_eq!(presence.complete, seen, "{what}");
            assert!(presence.records.is_empty(), "{what}");
            assert_eq!(presence.load_balancers.len(), 5, "{what}");
            assert_eq!(
                presence.error.as_ref().map(|err| err.is_not_found()),
                (!seen).then_some(true),
                "{what}"
            );
            assert!(presence.observation(NOW).state_table_gone, "{what}");
        }
        // Injected on a table that exists, NotFound reads the same.
        let fake = FakeAws::new(paged_fleet());
        fake.fail("Scan", On::Call(1), ErrorClass::NotFound);
        let presence = read_presence(
            &target(),
            &fake.reader(4),
            None,
            &mut RecordCache::default(),
            Items::Kept,
        )
        .await;
        assert!(presence.state_table_missing && presence.state_table_never_seen);
        assert!(!presence.complete);
    }

    /// The floor of docs/architecture.md#budget for `n` load balancers of `listeners` listeners
    /// and `t` target groups: pages of load balancers and target groups; listeners; rules;
    /// tags; attributes (load balancers, then target groups).
    fn floor(n: u64, listeners: u64, t: u64) -> [(&'static str, u64); 7] {
        [
            ("DescribeLoadBalancers", n.div_ceil(400)),
            ("DescribeTargetGroups", t.div_ceil(400)),
            ("DescribeListeners", n),
            ("DescribeRules", n * listeners),
            ("DescribeTags", (n + t).div_ceil(20)),
            ("DescribeLoadBalancerAttributes", n),
            ("DescribeTargetGroupAttributes", t),
        ]
    }

    #[tokio::test]
    async fn a_full_cycle_makes_exactly_the_floor_of_calls() {
        // (load balancers, listeners each, load balancers sharing a target group). 253 of them,
        // two to a group: two batches of deep reads, whose 380 ARNs take 19 tag calls only if
        // the ARNs left over from the first batch go with the second.
        for (n, listeners, sharing) in [
            (1, 1, 1),
            (5, 1, 1),
            (12, 2, 1),
            (45, 1, 3),
            (253, 1, 2),
            (260, 1, 1),
        ] {
            let fleet = Fleet::new().load_balancers_sharing(n, listeners, sharing);
            let t = fleet.target_groups.len() as u64;
            assert_eq!(t, n.div_ceil(sharing) as u64);
            let fake = FakeAws::new(fleet.recorded());
            let reader = fake.reader(4);
            let presence = read_scoped_presence(
                &target(),
                &reader,
                None,
                &mut RecordCache::none(),
                Items::Dropped,
            )
            .await;
            let cycle = presence
                .finish(
                    &reader,
                    &IgnoreRules::default(),
                    DeepScope::All,
                    &mut DeepCache::none(),
                )
                .await;
            let (n, listeners) = (n as u64, listeners as u64);
            let floor = floor(n, listeners, t);
            let mut expected: BTreeMap<&str, (u64, u64)> =
                floor.iter().map(|(op, calls)| (*op, (*calls, 0))).collect();
            let total: u64 = floor.iter().map(|(_, calls)| calls).sum();
            // ceil(N/400) + ceil(T/400) + N + N*L + ceil((N+T)/20) + N + T.
            assert_eq!(
                total,
                n.div_ceil(400)
                    + t.div_ceil(400)
                    + n
                    + n * listeners
                    + (n + t).div_ceil(20)
                    + n
                    + t
            );
            let elb = reader.elb.calls();
            assert_eq!(elb, expected, "{n} load balancers of {listeners} listeners");
            expected.clear();
            expected.insert("Scan", (n.div_ceil(250).max(1), 0));
            assert_eq!(reader.dynamodb.calls(), expected, "{n}");

            assert!(cycle.deep_failures.is_empty(), "{:?}", cycle.deep_failures);
            assert_eq!(
                (cycle.deep_read, cycle.deep_planned),
                (n as usize, n as usize)
            );
            let summary = cycle.reconciled.as_ref().expect("complete").summary();
            assert_eq!(summary.in_sync, n, "{n}: {:?}", cycle.reconciled);
            assert_eq!(summary.live, n);
        }
    }

    #[tokio::test]
    async fn a_cycle_over_a_load_balancer_deleted_and_one_throttled() {
        let fake = FakeAws::new(Fleet::new().load_balancers(4, 1).recorded());
        let reader = fake.reader(2);
        let presence = read_presence(
            &target(),
            &reader,
            None,
            &mut RecordCache::default(),
            Items::Dropped,
        )
        .await;
        assert!(presence.complete);
        // Deleted after the presence pass listed it.
        fake.change(|fleet| {
            fleet.load_balancers.retain(|lb| lb.name != "lb-001");
        });
        fake.fail(
            "DescribeLoadBalancerAttributes",
            On::Resource(lb_arn("lb-002")),
            ErrorClass::Throttled,
        );
        let mut cache = DeepCache::default();
        let cycle = presence
            .finish(&reader, &IgnoreRules::default(), DeepScope::All, &mut cache)
            .await;
        let reconciled = cycle.reconciled.as_ref().expect("complete");
        let kinds: Vec<(&str, Option<DriftKind>)> = reconciled
            .entries
            .iter()
            .map(|entry| (entry.name.as_str(), entry.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("lb-000", Some(DriftKind::InSync)),
                ("lb-001", Some(DriftKind::MissingLive)),
                ("lb-002", None),
                ("lb-003", Some(DriftKind::InSync)),
            ]
        );
        assert_eq!(reconciled.live, 3);
        assert_eq!(cycle.presence.load_balancers.len(), 3);
        assert_eq!(cycle.deep_failures.len(), 1, "{:?}", cycle.deep_failures);
        assert!(
            cycle.deep_failures[0].contains("DescribeLoadBalancerAttributes failed: Throttling")
                && cycle.deep_failures[0].ends_with("(for load balancer lb-002)"),
            "{:?}",
            cycle.deep_failures
        );
        assert_eq!((cycle.deep_read, cycle.deep_planned), (4, 4));
        assert_eq!(cycle.deep_unchecked, 1);
        // The tags call naming the deleted load balancer failed whole, and was narrowed.
        assert!(fake.retries("DescribeTags") >= 1, "{:?}", fake.all_calls());
        assert_eq!(cache.deep_reads(), 2);
        assert!(cache.checked_at(&lb_arn("lb-001")).is_none());
        assert!(cache.checked_at(&lb_arn("lb-002")).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn reads_cut_short_by_the_deadline_leave_the_last_deep_state() {
        let fake = FakeAws::new(Fleet::new().load_balancers(3, 1).recorded());
        let reader = fake.reader(4);
        let ignore = IgnoreRules::default();
        let mut records = RecordCache::default();
        let mut cache = DeepCache::default();
        let scope = |until| DeepScope::Oldest { limit: 10, until };

        let presence = read_presence(&target(), &reader, None, &mut records, Items::Dropped).await;
        let first = presence
            .finish(&reader, &ignore, scope(None), &mut cache)
            .await;
        assert_eq!((first.deep_read, first.deep_planned), (3, 3));
        let read_at: Vec<Option<i64>> = (0..3)
            .map(|i| cache.checked_at(&lb_arn(&format!("lb-{i:03}"))))
            .collect();
        assert!(read_at.iter().all(Option::is_some));

        // The next cycle's reads never answer before its deadline.
        fake.fail("DescribeListeners", On::Every, ErrorClass::Timeout);
        let presence = read_presence(&target(), &reader, None, &mut records, Items::Dropped).await;
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let second = presence
            .finish(&reader, &ignore, scope(Some(until)), &mut cache)
            .await;
        assert!(fake.stalled() > 0);
        assert_eq!((second.deep_read, second.deep_planned), (0, 3));
        assert!(second.deep_failures.is_empty());
        let summary = second.reconciled.as_ref().expect("complete").summary();
        assert_eq!(summary.in_sync, 3, "{:?}", second.reconciled);
        let kept: Vec<Option<i64>> = (0..3)
            .map(|i| cache.checked_at(&lb_arn(&format!("lb-{i:03}"))))
            .collect();
        assert_eq!(kept, read_at);
        assert_eq!(
            second.deep_checked.values().copied().collect::<Vec<_>>(),
            read_at
        );
    }
}
