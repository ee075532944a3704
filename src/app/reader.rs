//! Reading one target: the presence pass and deep reads (docs/architecture.md#budget).
//!
//! The presence pass reads every page of the load balancers and target groups, then scans the
//! state table, so a record written before its load balancer was created is always seen. Deep
//! reads fetch listeners, rules, attributes and tags for chosen load balancers with bounded
//! concurrency; a failure there marks only the load balancers it touched as stale.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use futures::stream;

use crate::aws::AwsError;
use crate::aws::dynamodb::Dynamo;
use crate::aws::elb::{Elb, TAGS_PER_CALL};
use crate::aws::reads::{ElbReads, TableScans};
use crate::model::item::StoredItem;
use crate::model::node::Node;
use crate::model::record::{Record, RecordCache, RecordRules};

use crate::model::live::{
    DeepState, ListenerState, LiveLoadBalancer, LiveTargetGroup, TargetGroupState,
};

use crate::aws::elb::TagAnswer;
pub use crate::aws::elb::{Tagged, narrow_tags};

/// One item of the state table as the presence pass keeps it: read as a record, and verbatim
/// as JSON for a snapshot or a restore where [`Items::Kept`]. Converted as each page arrives,
/// so the scan never holds the whole table as trees.
pub type ScannedItem = (Record, Option<StoredItem>);

/// Whether the presence pass keeps each item of the state table verbatim. Only snapshots and
/// restores need them; a check compares records, so it does not hold the table twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Items {
    Kept,
    Dropped,
}

/// What the presence pass read. Each part is kept on its own, so a report can count what was
/// read in full even when another part failed.
#[derive(Debug)]
pub struct PresenceRead {
    pub load_balancers: Result<Vec<LiveLoadBalancer>, AwsError>,
    pub target_groups: Result<Vec<LiveTargetGroup>, AwsError>,
    pub records: Result<Vec<ScannedItem>, AwsError>,
}

impl PresenceRead {
    /// The first failure, if any part failed.
    pub fn error(&self) -> Option<&AwsError> {
        self.load_balancers
            .as_ref()
            .err()
            .or(self.target_groups.as_ref().err())
            .or(self.records.as_ref().err())
    }
}

/// Load balancers deep-read at a time: what is held of deep reads at once, beyond what the
/// caller keeps.
pub const DEEP_BATCH: usize = 250;

/// What to deep-read for one load balancer.
#[derive(Debug, Clone)]
pub struct DeepPlan<'a> {
    pub load_balancer: &'a LiveLoadBalancer,
    pub target_groups: Vec<&'a LiveTargetGroup>,
    /// Listener keys (port, or `gateway`) whose record holds `additional_certificates`.
    pub additional_certificates: BTreeSet<String>,
    /// Target-group names whose record holds `targets`.
    pub targets: BTreeSet<String>,
}

impl DeepPlan<'_> {
    /// The ARNs this plan reads: its load balancer's, then its target groups'.
    pub fn arns(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.load_balancer.arn.as_str())
            .chain(self.target_groups.iter().map(|group| group.arn.as_str()))
    }
}

/// The result of deep-reading one load balancer.
#[derive(Debug, Clone)]
pub enum DeepOutcome {
    Read(DeepState),
    /// The load balancer was deleted since the presence pass listed it.
    Gone,
    /// A read failed: the load balancer's deep state is stale.
    Failed(DeepFailure),
}

/// A failed deep read, with the resource it was for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error} (for {resource})")]
pub struct DeepFailure {
    pub resource: String,
    #[source]
    pub error: AwsError,
}

/// Reads one target's AWS state, through the edge's ELB reads `E` and table scans `D`: the SDK's
/// clients by default, answers from memory in tests.
#[derive(Debug, Clone)]
pub struct Reader<E = Elb, D = Dynamo> {
    pub elb: E,
    pub dynamodb: D,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// What makes an item of the state table a valid record (`[records]`).
    pub rules: RecordRules,
}

impl Reader {
    /// A reader over a target's clients, reading records under `rules`.
    pub fn new(clients: &crate::aws::Clients, concurrency: usize, rules: RecordRules) -> Reader {
        Reader {
            elb: clients.elb.clone(),
            dynamodb: clients.dynamodb.clone(),
            concurrency,
            rules,
        }
    }
}

impl<E: ElbReads, D: TableScans> Reader<E, D> {
    /// A reader over any answers to the edge's reads (a test's, from memory).
    pub fn with(elb: E, dynamodb: D, concurrency: usize, rules: RecordRules) -> Reader<E, D> {
        Reader {
            elb,
            dynamodb,
            concurrency,
            rules,
        }
    }

    /// The presence pass: load balancers and target groups (together), then the state table.
    /// Items are read as records under the reader's rules; items unchanged since the last scan
    /// kept in `records` are not read again.
    pub async fn presence(
        &self,
        state_table: &str,
        records: &mut RecordCache,
        items: Items,
    ) -> PresenceRead {
        let (load_balancers, target_groups) =
            tokio::join!(self.elb.load_balancers(), self.elb.target_groups());
        let mut position = 0;
        let records_read = self
            .dynamodb
            .scan(state_table, |item| {
                let record = if records.keeps() || items == Items::Kept {
                    let stored = StoredItem::new(&item);
                    let record = records.record(&item, stored.json(), position, &self.rules);
                    (record, (items == Items::Kept).then_some(stored))
                } else {
                    // Nothing keeps it for the next scan: the record is compared once, so it
                    // is held packed.
                    (Record::from_item_packed(&item, position, &self.rules), None)
                };
                position += 1;
                record
            })
            .await;
        records.finish(records_read.is_ok());
        PresenceRead {
            load_balancers,
            target_groups,
            records: records_read,
        }
    }

    /// Deep-reads the planned load balancers: listeners, rules, attributes, tags (20 ARNs a
    /// call, load balancers and target groups together), and certificates and targets where a
    /// record holds them. Each outcome is handed to `done` with its plan's index as soon as
    /// everything it needs is read, and is not kept here after that.
    ///
    /// Plans are read [`DEEP_BATCH`] at a time, so only a batch's reads are held at once,
    /// whatever the fleet's size. Batching costs no call: a target group is read once, with its
    /// first user, and kept until its last; and tags are asked for in full calls of 20, the
    /// ARNs left over from one batch going with the next, so only the last call may be short.
    pub async fn deep(&self, plans: &[DeepPlan<'_>], mut done: impl FnMut(usize, DeepOutcome)) {
        let concurrency = self.concurrency.max(1);

        // Whether any plan wants a group's targets, and how many deep states take each read:
        // the last one gets the read itself, those before it a copy.
        let mut wants_targets: HashMap<&str, bool> = HashMap::new();
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for plan in plans {
            *uses.entry(&plan.load_balancer.arn).or_default() += 1;
            for group in &plan.target_groups {
                *uses.entry(&group.arn).or_default() += 1;
                *wants_targets.entry(&group.arn).or_default() |= plan.targets.contains(&group.name);
            }
        }
        let uses_of = |arn: &str| uses.get(arn).copied().unwrap_or(0);

        let mut groups = Shared::default();
        let mut tags = Shared::default();
        // ARNs whose tags are still to be asked for, in order.
        let mut untagged: Vec<&str> = Vec::new();
        // Load balancers read whose tags (or a group's) are still to be asked for.
        let mut waiting: Vec<(usize, Result<LoadBalancerRead, DeepFailure>)> = Vec::new();
        let mut group_seen: HashSet<&str> = HashSet::new();

        for start in (0..plans.len()).step_by(DEEP_BATCH) {
            let batch = start..(start + DEEP_BATCH).min(plans.len());
            let last = batch.end == plans.len();

            // Streams over owned items (indices, owned chunks): closures over borrowed items
            // make the future unusable in a spawned task.
            let reads: Vec<(usize, Result<LoadBalancerRead, DeepFailure>)> =
                stream::iter(batch.clone())
                    .map(|i| async move { (i, self.read_load_balancer(&plans[i]).await) })
                    .buffer_unordered(concurrency)
                    .collect()
                    .await;

            let mut first_used: Vec<&LiveTargetGroup> = Vec::new();
            for plan in &plans[batch.clone()] {
                untagged.push(&plan.load_balancer.arn);
                for &group in &plan.target_groups {
                    if group_seen.insert(&group.arn) {
                        first_used.push(group);
                        untagged.push(&group.arn);
                    }
                }
            }
            let group_reads: Vec<(&str, Result<GroupRead, DeepFailure>)> =
                stream::iter(0..first_used.len())
                    .map(|i| {
                        let group = first_used[i];
                        let wants = wants_targets.get(group.arn.as_str()) == Some(&true);
                        async move {
                            (
                                group.arn.as_str(),
                                self.read_target_group(group, wants).await,
                            )
                        }
                    })
                    .buffer_unordered(concurrency)
                    .collect()
                    .await;
            for (arn, read) in group_reads {
                groups.insert(uses_of(arn), arn, read);
            }

            let asked = if last {
                untagged.len()
            } else {
                untagged.len() - untagged.len() % TAGS_PER_CALL
            };
            let asked: Vec<&str> = untagged.drain(..asked).collect();
            let chunks: Vec<Vec<String>> = asked
                .chunks(TAGS_PER_CALL)
                .map(|chunk| chunk.iter().map(|arn| arn.to_string()).collect())
                .collect();
            let tag_reads: Vec<Vec<TagAnswer<Node>>> = stream::iter(chunks)
                .map(|chunk| {
                    narrow_tags(chunk, |arns, again| async move {
                        self.elb.tags(&arns, again).await
                    })
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for (arn, answer) in tag_reads.into_iter().flatten() {
                tags.insert(uses_of(&arn), &arn, answer);
            }

            waiting.extend(reads);
            let pending: HashSet<&str> = untagged.iter().copied().collect();
            let (ready, held): (Vec<_>, Vec<_>) = std::mem::take(&mut waiting)
                .into_iter()
                .partition(|(i, _)| !plans[*i].arns().any(|arn| pending.contains(arn)));
            waiting = held;
            for (i, read) in ready {
                let plan = &plans[i];
                let outcome = match read {
                    Ok(LoadBalancerRead::Read {
                        attributes,
                        listeners,
                    }) => combine(plan, attributes, listeners, &mut groups, &mut tags),
                    Ok(LoadBalancerRead::Gone) => {
                        let_go(plan, &mut groups, &mut tags);
                        DeepOutcome::Gone
                    }
                    Err(failure) => {
                        let_go(plan, &mut groups, &mut tags);
                        DeepOutcome::Failed(failure)
                    }
                };
                done(i, outcome);
            }
        }
        debug_assert!(waiting.is_empty() && untagged.is_empty());
    }

    async fn read_load_balancer(
        &self,
        plan: &DeepPlan<'_>,
    ) -> Result<LoadBalancerRead, DeepFailure> {
        let lb = plan.load_balancer;
        let fail = |error: AwsError| DeepFailure {
            resource: format!("load balancer {}", lb.name),
            error,
        };
        let listeners = match self.elb.listeners(&lb.arn).await {
            Ok(listeners) => listeners,
            Err(err) if err.is_not_found() => return Ok(LoadBalancerRead::Gone),
            Err(err) => return Err(fail(err)),
        };
        let attributes = match self.elb.load_balancer_attributes(&lb.arn).await {
            Ok(attributes) => attributes,
            Err(err) if err.is_not_found() => return Ok(LoadBalancerRead::Gone),
            Err(err) => return Err(fail(err)),
        };
        // A gateway load balancer's listener has no rules: AWS answers `DescribeRules` on one
        // with ListenerNotFound, which would read as a deleted listener (docs/architecture.md#terms).
        let gateway = lb
            .fields
            .unpack()
            .is_some_and(|fields| fields.get("type").and_then(Node::as_str) == Some("gateway"));
        let mut states = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let key = match listener.fields.get("port") {
                Some(port) if !port.is_null() => port.to_value().to_string(),
                _ => crate::model::document::GATEWAY_LISTENER_KEY.to_string(),
            };
            let rules = if gateway {
                Vec::new()
            } else {
                match self.elb.rules(&listener.arn).await {
                    Ok(rules) => rules,
                    // Deleted since it was listed: it is not live any more.
                    Err(err) if err.is_not_found() => continue,
                    Err(err) => return Err(fail(err)),
                }
            };
            let additional_certificates = if plan.additional_certificates.contains(&key) {
                match self.elb.additional_certificates(&listener.arn).await {
                    Ok(certificates) => Some(certificates),
                    Err(err) if err.is_not_found() => continue,
                    Err(err) => return Err(fail(err)),
                }
            } else {
                None
            };
            states.push(ListenerState {
                fields: listener.fields,
                rules,
                additional_certificates,
            });
        }
        Ok(LoadBalancerRead::Read {
            attributes,
            listeners: states,
        })
    }

    async fn read_target_group(
        &self,
        group: &LiveTargetGroup,
        wants_targets: bool,
    ) -> Result<GroupRead, DeepFailure> {
        let fail = |error: AwsError| DeepFailure {
            resource: format!("target group {}", group.name),
            error,
        };
        let attributes = match self.elb.target_group_attributes(&group.arn).await {
            Ok(attributes) => attributes,
            Err(err) if err.is_not_found() => return Ok(GroupRead::Gone),
            Err(err) => return Err(fail(err)),
        };
        let targets = if wants_targets {
            match self.elb.targets(&group.arn).await {
                Ok(targets) => Some(targets),
                Err(err) if err.is_not_found() => return Ok(GroupRead::Gone),
                Err(err) => return Err(fail(err)),
            }
        } else {
            None
        };
        Ok(GroupRead::Read {
            attributes,
            targets,
        })
    }
}

enum LoadBalancerRead {
    Read {
        attributes: Node,
        listeners: Vec<ListenerState>,
    },
    Gone,
}

#[derive(Clone)]
enum GroupRead {
    Read {
        attributes: Node,
        targets: Option<Vec<serde_json::Value>>,
    },
    Gone,
}

fn combine(
    plan: &DeepPlan<'_>,
    attributes: Node,
    listeners: Vec<ListenerState>,
    groups: &mut Shared<Result<GroupRead, DeepFailure>>,
    tags: &mut Shared<Result<Tagged<Node>, AwsError>>,
) -> DeepOutcome {
    let lb = plan.load_balancer;
    let tags_of = |taken: Option<Result<Tagged<Node>, AwsError>>, resource: String| match taken {
        Some(Ok(tagged)) => Ok(tagged),
        Some(Err(error)) => Err(DeepFailure { resource, error }),
        None => Ok(Tagged::Tags(Node::default())),
    };
    // Everything this plan takes is taken first, so a failure part way does not leave a read
    // held for it.
    let lb_tags = tags.take(&lb.arn);
    let parts: Vec<_> = plan
        .target_groups
        .iter()
        .map(|group| (*group, groups.take(&group.arn), tags.take(&group.arn)))
        .collect();
    let mut state = DeepState {
        attributes,
        listeners,
        ..Default::default()
    };
    match tags_of(lb_tags, format!("load balancer {}", lb.name)) {
        Ok(Tagged::Tags(map)) => state.tags = map,
        // Deleted since the presence pass listed it.
        Ok(Tagged::Gone) => return DeepOutcome::Gone,
        Err(failure) => return DeepOutcome::Failed(failure),
    }
    for (group, read, group_tags) in parts {
        match read {
            Some(Ok(GroupRead::Read {
                attributes,
                targets,
            })) => {
                let group_tags = match tags_of(group_tags, format!("target group {}", group.name)) {
                    Ok(Tagged::Tags(map)) => map,
                    Ok(Tagged::Gone) => {
                        state.gone_target_groups.insert(group.arn.clone());
                        continue;
                    }
                    Err(failure) => return DeepOutcome::Failed(failure),
                };
                state.target_groups.push((
                    group.arn.clone(),
                    TargetGroupState {
                        attributes,
                        tags: group_tags,
                        targets: targets.map(|targets| {
                            Node::List(targets.iter().map(Node::from_value).collect())
                        }),
                    },
                ));
            }
            Some(Ok(GroupRead::Gone)) => {
                state.gone_target_groups.insert(group.arn.clone());
            }
            Some(Err(failure)) => return DeepOutcome::Failed(failure),
            None => {}
        }
    }
    DeepOutcome::Read(state)
}

/// Lets go of a plan's reads it will not take (its load balancer is gone, or its read failed),
/// so they are not held for it.
fn let_go(
    plan: &DeepPlan<'_>,
    groups: &mut Shared<Result<GroupRead, DeepFailure>>,
    tags: &mut Shared<Result<Tagged<Node>, AwsError>>,
) {
    for arn in plan.arns() {
        groups.release(arn);
        tags.release(arn);
    }
}

/// Reads by ARN, each with how many deep states still take it: the last one gets the read
/// itself, those before it a copy.
struct Shared<T> {
    entries: HashMap<String, (usize, T)>,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared {
            entries: HashMap::new(),
        }
    }
}

impl<T: Clone> Shared<T> {
    fn insert(&mut self, uses: usize, arn: &str, read: T) {
        if uses > 0 {
            self.entries.insert(arn.to_string(), (uses, read));
        }
    }

    /// The read for one of its users.
    fn take(&mut self, arn: &str) -> Option<T> {
        let (uses, read) = self.entries.get_mut(arn)?;
        if *uses > 1 {
            *uses -= 1;
            return Some(read.clone());
        }
        self.entries.remove(arn).map(|(_, read)| read)
    }

    /// One user will not take the read after all.
    fn release(&mut self, arn: &str) {
        if let Some((uses, _)) = self.entries.get_mut(arn) {
            *uses -= 1;
            if *uses == 0 {
                self.entries.remove(arn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::aws::ErrorClass;
    use crate::aws::elb::names_arn;
    use std::sync::Mutex;

    fn arn(i: usize) -> String {
        format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/lb-{i}/{i:016x}"
        )
    }

    fn error(class: ErrorClass, code: &str, message: String) -> AwsError {
        AwsError {
            service: "elasticloadbalancing",
            operation: "DescribeTags",
            class,
            code: Some(code.to_string()),
            message,
        }
    }

    /// A fake `DescribeTags`: fails the whole call, as AWS does, when any ARN asked is gone;
    /// `names`: whether its message names the gone ARNs. Records every call with its `again`.
    async fn run_narrowing(
        arns: Vec<String>,
        gone: &[String],
        names: bool,
    ) -> (Vec<TagAnswer<u32>>, Vec<(usize, bool)>) {
        let calls = Mutex::new(Vec::new());
        let answers = narrow_tags(arns, |asked: Vec<String>, again| {
            calls.lock().unwrap().push((asked.len(), again));
            let missing: Vec<&String> = asked.iter().filter(|a| gone.contains(a)).collect();
            let result = if missing.is_empty() {
                // Every resource is tagged with its position, the last one left out (no tags).
                Ok(asked
                    .iter()
                    .filter(|a| **a != arn(19))
                    .map(|a| (a.clone(), a.len() as u32))
                    .collect())
            } else if names {
                Err(error(
                    ErrorClass::NotFound,
                    "LoadBalancerNotFound",
                    format!("Load balancers '[{}]' not found", missing[0]),
                ))
            } else {
                Err(error(
                    ErrorClass::NotFound,
                    "TargetGroupNotFound",
                    "One or more target groups not found".into(),
                ))
            };
            async move { result }
        })
        .await;
        (answers, calls.into_inner().unwrap())
    }

    fn by_arn(answers: Vec<TagAnswer<u32>>) -> BTreeMap<String, Result<Tagged<u32>, String>> {
        answers
            .into_iter()
            .map(|(arn, answer)| (arn, answer.map_err(|err| err.to_string())))
            .collect()
    }

    #[tokio::test]
    async fn a_batch_without_a_gone_arn_is_one_call() {
        let arns: Vec<String> = (0..20).map(arn).collect();
        let (answers, calls) = run_narrowing(arns.clone(), &[], true).await;
        assert_eq!(calls, vec![(20, false)]);
        let answers = by_arn(answers);
        assert_eq!(answers.len(), 20);
        assert_eq!(answers[&arn(3)], Ok(Tagged::Tags(arn(3).len() as u32)));
        // Left out of the answer: no tags, not gone.
        assert_eq!(answers[&arn(19)], Ok(Tagged::Tags(0)));
    }

    #[tokio::test]
    async fn a_gone_arn_the_message_names_costs_one_more_call() {
        let arns: Vec<String> = (0..20).map(arn).collect();
        let (answers, calls) = run_narrowing(arns, &[arn(7)], true).await;
        assert_eq!(calls, vec![(20, false), (19, true)]);
        let answers = by_arn(answers);
        assert_eq!(answers.len(), 20);
        assert_eq!(answers[&arn(7)], Ok(Tagged::Gone));
        for i in (0..20).filter(|i| *i != 7 && *i != 19) {
            assert_eq!(
                answers[&arn(i)],
                Ok(Tagged::Tags(arn(i).len() as u32)),
                "{i}"
            );
        }
    }

    #[tokio::test]
    async fn gone_arns_the_message_does_not_name_are_found_by_halves() {
        let arns: Vec<String> = (0..20).map(arn).collect();
        let gone = [arn(2), arn(13)];
        let (answers, calls) = run_narrowing(arns, &gone, false).await;
        let answers = by_arn(answers);
        assert_eq!(answers.len(), 20);
        assert_eq!(answers[&arn(2)], Ok(Tagged::Gone));
        assert_eq!(answers[&arn(13)], Ok(Tagged::Gone));
        for i in (0..20).filter(|i| ![2, 13, 19].contains(i)) {
            assert_eq!(
                answers[&arn(i)],
                Ok(Tagged::Tags(arn(i).len() as u32)),
                "{i}"
            );
        }
        // The first call is the batch's own; every narrowing call is counted as asking again,
        // and halving finds each gone ARN in a few calls, not one call per ARN.
        assert_eq!(calls[0], (20, false));
        assert!(calls[1..].iter().all(|(_, again)| *again), "{calls:?}");
        assert!(
            calls.len() <= 1 + 2 * 2 * 5,
            "{} calls: {calls:?}",
            calls.len()
        );
    }

    #[tokio::test]
    async fn an_arn_named_only_as_the_start_of_a_longer_one_is_not_taken_as_gone() {
        let short = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tg/ab".to_string();
        let long = format!("{short}cd");
        assert!(!names_arn(
            &format!("Target groups '{long}' not found"),
            &short
        ));
        assert!(names_arn(
            &format!("Target groups '{long}' not found"),
            &long
        ));
        let (answers, _) = run_narrowing(
            vec![short.clone(), long.clone()],
            std::slice::from_ref(&long),
            true,
        )
        .await;
        let answers = by_arn(answers);
        assert_eq!(answers[&long], Ok(Tagged::Gone));
        assert_eq!(answers[&short], Ok(Tagged::Tags(short.len() as u32)));
    }

    #[tokio::test]
    async fn another_error_fails_the_whole_batch_without_narrowing() {
        let arns: Vec<String> = (0..5).map(arn).collect();
        let calls = Mutex::new(0);
        let answers = narrow_tags(arns, |_asked: Vec<String>, _again| {
            *calls.lock().unwrap() += 1;
            async {
                Err::<BTreeMap<String, u32>, _>(error(
                    ErrorClass::Throttled,
                    "Throttling",
                    "Rate exceeded".into(),
                ))
            }
        })
        .await;
        assert_eq!(*calls.lock().unwrap(), 1);
        assert_eq!(answers.len(), 5);
        for (_, answer) in answers {
            let err = answer.unwrap_err();
            assert_eq!(
                err.to_string(),
                "DescribeTags failed: Throttling: Rate exceeded"
            );
        }
    }

    #[test]
    fn a_shared_read_is_copied_for_all_but_its_last_user_and_then_gone() {
        let mut shared = Shared::default();
        shared.insert(2, "arn:tg", vec![1]);
        assert_eq!(shared.take("arn:tg"), Some(vec![1]));
        assert_eq!(shared.take("arn:tg"), Some(vec![1]));
        assert!(shared.entries.is_empty());
        assert_eq!(shared.take("arn:tg"), None);
    }

    #[test]
    fn a_user_that_lets_a_read_go_leaves_it_to_the_others_and_the_last_takes_it_whole() {
        let mut shared = Shared::default();
        shared.insert(3, "arn:tg", vec![1]);
        shared.release("arn:tg");
        assert_eq!(shared.take("arn:tg"), Some(vec![1]));
        assert_eq!(shared.entries["arn:tg"].0, 1);
        shared.release("arn:tg");
        assert!(shared.entries.is_empty(), "no user is left to take it");
        // A read nobody takes is not held at all.
        shared.insert(0, "arn:unused", vec![2]);
        assert!(shared.entries.is_empty());
        shared.release("arn:unknown");
    }
}
