//! Reading one target: the presence pass and deep reads (SPEC 12).
//!
//! The presence pass reads every page of the load balancers and target groups, then scans the
//! state table, so a record written before its load balancer was created is always seen. Deep
//! reads fetch listeners, rules, attributes and tags for chosen load balancers with bounded
//! concurrency; a failure there marks only the load balancers it touched as stale.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;
use futures::stream;

use crate::aws::AwsError;
use crate::aws::dynamodb::Dynamo;
use crate::aws::elb::{Elb, TAGS_PER_CALL};
use crate::item::StoredItem;
use crate::node::Node;
use crate::record::{Record, RecordCache};

/// One `DescribeTags` call: the ARNs asked for, and the tags (a map) by ARN.
type TagsRead = (Vec<String>, Result<BTreeMap<String, Node>, AwsError>);
use crate::live::{DeepState, ListenerState, LiveLoadBalancer, LiveTargetGroup, TargetGroupState};

/// One item of the state table as the presence pass keeps it: read as a record, and verbatim
/// as JSON for the snapshot. Converted as each page arrives, so the scan never holds the whole
/// table as trees.
pub type ScannedItem = (Record, StoredItem);

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

/// Reads one target's AWS state.
#[derive(Debug, Clone)]
pub struct Reader {
    pub elb: Elb,
    pub dynamodb: Dynamo,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Reader {
    /// A reader over a target's clients.
    pub fn new(clients: &crate::aws::Clients, concurrency: usize) -> Reader {
        Reader {
            elb: clients.elb.clone(),
            dynamodb: clients.dynamodb.clone(),
            concurrency,
        }
    }

    /// The presence pass: load balancers and target groups (together), then the state table.
    /// Items unchanged since the last scan kept in `records` are not read again.
    pub async fn presence(&self, state_table: &str, records: &mut RecordCache) -> PresenceRead {
        let (load_balancers, target_groups) =
            tokio::join!(self.elb.load_balancers(), self.elb.target_groups());
        let mut position = 0;
        let records_read = self
            .dynamodb
            .scan(state_table, |item| {
                let stored = StoredItem::new(&item);
                let record = records.record(&item, stored.json(), position);
                position += 1;
                (record, stored)
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
    /// record holds them. Keyed by load-balancer ARN.
    pub async fn deep(&self, plans: &[DeepPlan<'_>]) -> HashMap<String, DeepOutcome> {
        let concurrency = self.concurrency.max(1);

        // Streams over owned items (indices, owned chunks): closures over borrowed items make
        // the future unusable in a spawned task.
        let load_balancer_reads: Vec<(String, Result<LoadBalancerRead, DeepFailure>)> =
            stream::iter(0..plans.len())
                .map(|i| async move {
                    let plan = &plans[i];
                    (
                        plan.load_balancer.arn.clone(),
                        self.read_load_balancer(plan).await,
                    )
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;

        let mut groups: BTreeMap<&str, (&LiveTargetGroup, bool)> = BTreeMap::new();
        for plan in plans {
            for group in &plan.target_groups {
                let wants_targets = plan.targets.contains(&group.name);
                let entry = groups.entry(&group.arn).or_insert((group, false));
                entry.1 |= wants_targets;
            }
        }
        let group_list: Vec<(&LiveTargetGroup, bool)> = groups.values().copied().collect();
        let group_reads: Vec<(String, Result<GroupRead, DeepFailure>)> =
            stream::iter(0..group_list.len())
                .map(|i| {
                    let (group, wants_targets) = group_list[i];
                    async move {
                        (
                            group.arn.clone(),
                            self.read_target_group(group, wants_targets).await,
                        )
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;

        let mut arns: Vec<String> = plans
            .iter()
            .map(|plan| plan.load_balancer.arn.clone())
            .collect();
        arns.extend(groups.keys().map(|arn| arn.to_string()));
        let chunks: Vec<Vec<String>> = arns.chunks(TAGS_PER_CALL).map(<[String]>::to_vec).collect();
        let tag_reads: Vec<TagsRead> = stream::iter(chunks)
            .map(|chunk| async move {
                let result = self.elb.tags(&chunk).await;
                (chunk, result)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        // Every read is moved into the deep state of its last user, copied only for the users
        // before it (a target group several load balancers route to): never held twice over.
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for plan in plans {
            *uses.entry(&plan.load_balancer.arn).or_default() += 1;
            for group in &plan.target_groups {
                *uses.entry(&group.arn).or_default() += 1;
            }
        }
        let uses_of = |arn: &str| uses.get(arn).copied().unwrap_or(0);
        let mut groups = Shared::default();
        for (arn, read) in group_reads {
            groups.insert(uses_of(&arn), arn, read);
        }
        let mut tags = Shared::default();
        for (chunk, result) in tag_reads {
            match result {
                Ok(mut found) => {
                    for arn in chunk {
                        // A resource without tags may be left out of the answer.
                        let map = found.remove(&arn).unwrap_or_default();
                        tags.insert(uses_of(&arn), arn, Ok(map));
                    }
                }
                Err(err) => {
                    for arn in chunk {
                        tags.insert(uses_of(&arn), arn, Err(err.clone()));
                    }
                }
            }
        }

        let mut outcomes = HashMap::new();
        let by_arn: HashMap<&str, &DeepPlan<'_>> = plans
            .iter()
            .map(|plan| (plan.load_balancer.arn.as_str(), plan))
            .collect();
        for (arn, read) in load_balancer_reads {
            let plan = by_arn[arn.as_str()];
            let outcome = match read {
                Err(failure) => DeepOutcome::Failed(failure),
                Ok(LoadBalancerRead::Gone) => DeepOutcome::Gone,
                Ok(LoadBalancerRead::Read {
                    attributes,
                    listeners,
                }) => combine(plan, attributes, listeners, &mut groups, &mut tags),
            };
            outcomes.insert(arn, outcome);
        }
        outcomes
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
        let mut states = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let key = match listener.fields.get("port") {
                Some(port) if !port.is_null() => port.to_value().to_string(),
                _ => crate::document::GATEWAY_LISTENER_KEY.to_string(),
            };
            let rules = match self.elb.rules(&listener.arn).await {
                Ok(rules) => rules,
                // Deleted since it was listed: it is not live any more.
                Err(err) if err.is_not_found() => continue,
                Err(err) => return Err(fail(err)),
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
    tags: &mut Shared<Result<Node, AwsError>>,
) -> DeepOutcome {
    let lb = plan.load_balancer;
    let mut tags_of = |arn: &str, resource: String| -> Result<Node, DeepFailure> {
        match tags.take(arn) {
            Some(Ok(map)) => Ok(map),
            Some(Err(error)) => Err(DeepFailure { resource, error }),
            None => Ok(Node::default()),
        }
    };
    let mut state = DeepState {
        attributes,
        listeners,
        ..Default::default()
    };
    match tags_of(&lb.arn, format!("load balancer {}", lb.name)) {
        Ok(map) => state.tags = map,
        Err(failure) => return DeepOutcome::Failed(failure),
    }
    for group in &plan.target_groups {
        match groups.take(&group.arn) {
            Some(Ok(GroupRead::Read {
                attributes,
                targets,
            })) => {
                let group_tags = match tags_of(&group.arn, format!("target group {}", group.name)) {
                    Ok(map) => map,
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
    fn insert(&mut self, uses: usize, arn: String, read: T) {
        self.entries.insert(arn, (uses, read));
    }

    fn take(&mut self, arn: &str) -> Option<T> {
        let (uses, read) = self.entries.get_mut(arn)?;
        if *uses > 1 {
            *uses -= 1;
            return Some(read.clone());
        }
        self.entries.remove(arn).map(|(_, read)| read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_read_is_copied_for_all_but_its_last_user_and_then_gone() {
        let mut shared = Shared::default();
        shared.insert(2, "arn:tg".to_string(), vec![1]);
        assert_eq!(shared.take("arn:tg"), Some(vec![1]));
        assert_eq!(shared.take("arn:tg"), Some(vec![1]));
        assert!(shared.entries.is_empty());
        assert_eq!(shared.take("arn:tg"), None);
    }
}
