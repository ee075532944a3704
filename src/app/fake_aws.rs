//! An in-memory answer to the edge's reads ([`ElbReads`], [`TableScans`]), for tests of the
//! reader and the cycle without an endpoint: a small fleet, failures injected per call, and
//! every call counted as the real clients count them.
//!
//! The fleet is built by [`Fleet`]: load balancers with their listeners, rules, target group,
//! attributes and tags, all of one shape, and state-table items ([`Fleet::config`] is the
//! record that matches a load balancer). Pages are as large as the real calls' unless
//! [`Fleet::page_sizes`] says otherwise.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::app::reader::Reader;
use crate::aws::dynamodb::SCAN_PAGE_ITEMS;
use crate::aws::elb::{PAGE_SIZE, TAGS_PER_CALL};
use crate::aws::reads::{Calls, ElbReads, TableScans};
use crate::aws::{AwsError, ErrorClass};
use crate::model::item::{AttrValue, Item, from_json};
use crate::model::live::{
    DeepState, ListenerState, LiveListener, LiveLoadBalancer, LiveRule, LiveTargetGroup,
    TargetGroupState,
};
use crate::model::node::Node;
use crate::model::record::RecordRules;

const ELB: &str = "elasticloadbalancing";
const DYNAMODB: &str = "dynamodb";

/// One load balancer of the fleet, with the target group it routes to.
#[derive(Debug, Clone)]
pub struct FakeLoadBalancer {
    pub arn: String,
    pub name: String,
    /// `type`, `scheme`.
    pub fields: Value,
    pub attributes: Value,
    pub tags: Value,
    pub listeners: Vec<FakeListener>,
    /// The name of the target group it routes to.
    pub group: String,
}

#[derive(Debug, Clone)]
pub struct FakeListener {
    pub arn: String,
    /// `port`, `protocol`, `default_actions` (target groups by ARN, as the API names them).
    pub fields: Value,
    /// The rules, the default one first (as `DescribeRules` answers).
    pub rules: Vec<LiveRule>,
}

#[derive(Debug, Clone)]
pub struct FakeTargetGroup {
    pub arn: String,
    pub name: String,
    pub load_balancer_arns: Vec<String>,
    pub fields: Value,
    pub attributes: Value,
    pub tags: Value,
}

/// A fleet and its state table.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub load_balancers: Vec<FakeLoadBalancer>,
    pub target_groups: Vec<FakeTargetGroup>,
    /// The state table's items, in scan order; `None`: the table does not exist.
    pub items: Option<Vec<Item>>,
    elb_page: usize,
    scan_page: usize,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            load_balancers: Vec::new(),
            target_groups: Vec::new(),
            items: Some(Vec::new()),
            elb_page: PAGE_SIZE as usize,
            scan_page: SCAN_PAGE_ITEMS as usize,
        }
    }
}

/// The ARN of load balancer `name`.
pub fn lb_arn(name: &str) -> String {
    format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/{name}/0f")
}

fn tg_arn(name: &str) -> String {
    format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0f")
}

/// The name of the target group load balancer `name` routes to.
pub fn tg_name(name: &str) -> String {
    format!("{name}-tg")
}

impl Fleet {
    pub fn new() -> Self {
        Fleet::default()
    }

    /// Adds load balancer `name` with `listeners` listeners (ports 80, 81, ...), each forwarding
    /// to its one target group and holding one rule, and its target group.
    pub fn load_balancer(self, name: &str, listeners: usize) -> Self {
        self.load_balancer_routing_to(name, listeners, &tg_name(name))
    }

    /// Adds load balancer `name` as [`Fleet::load_balancer`] does, routing to target group
    /// `group`, which may be another load balancer's.
    pub fn load_balancer_routing_to(mut self, name: &str, listeners: usize, group: &str) -> Self {
        let arn = lb_arn(name);
        let group_arn = tg_arn(group);
        let forward = json!([{"type": "forward", "order": 1, "target_group_arn": group_arn}]);
        let listeners = (0..listeners)
            .map(|i| FakeListener {
                arn: format!("{arn}/listener-{i}"),
                fields: json!({"port": 80 + i, "protocol": "HTTP", "default_actions": forward}),
                rules: vec![
                    LiveRule {
                        is_default: true,
                        fields: Node::from_value(&json!({"conditions": [], "actions": forward})),
                    },
                    LiveRule {
                        is_default: false,
                        fields: Node::from_value(&json!({
                            "priority": 10,
                            "conditions": [{"field": "path-pattern", "values": ["/api/*"]}],
                            "actions": forward,
                        })),
                    },
                ],
            })
            .collect();
        self.load_balancers.push(FakeLoadBalancer {
            arn: arn.clone(),
            name: name.to_string(),
            fields: json!({"type": "application", "scheme": "internal"}),
            attributes: json!({"idle_timeout.timeout_seconds": "60"}),
            tags: json!({"team": "edge"}),
            listeners,
            group: group.to_string(),
        });
        match self.target_groups.iter_mut().find(|tg| tg.name == group) {
            Some(shared) => shared.load_balancer_arns.push(arn),
            None => self.target_groups.push(FakeTargetGroup {
                arn: group_arn,
                name: group.to_string(),
                load_balancer_arns: vec![arn],
                fields: json!({"protocol": "HTTP", "port": 8080}),
                attributes: json!({"deregistration_delay.timeout_seconds": "300"}),
                tags: json!({"team": "edge"}),
            }),
        }
        self
    }

    /// Adds `count` load balancers `lb-000`, `lb-001`, ... of `listeners` listeners each.
    pub fn load_balancers(self, count: usize, listeners: usize) -> Self {
        self.load_balancers_sharing(count, listeners, 1)
    }

    /// Adds `count` load balancers as [`Fleet::load_balancers`] does, each `sharing` in a row
    /// routing to the same target group: ceil(count / sharing) target groups.
    pub fn load_balancers_sharing(self, count: usize, listeners: usize, sharing: usize) -> Self {
        (0..count).fold(self, |fleet, i| {
            let group = tg_name(&format!("lb-{:03}", i - i % sharing));
            fleet.load_balancer_routing_to(&format!("lb-{i:03}"), listeners, &group)
        })
    }

    /// The record that matches load balancer `name` as the fleet holds it: a `config`.
    pub fn config(&self, name: &str) -> Value {
        let lb = self.lb(name).expect("a load balancer of the fleet");
        let group = &lb.group;
        let forward = json!([{"type": "forward", "target_group": group}]);
        let listeners: Vec<Value> = lb
            .listeners
            .iter()
            .map(|listener| {
                json!({
                    "port": listener.fields["port"],
                    "protocol": "HTTP",
                    "default_actions": forward,
                    "rules": [{
                        "priority": 10,
                        "conditions": [{"field": "path-pattern", "values": ["/api/*"]}],
                        "actions": forward,
                    }],
                })
            })
            .collect();
        let tg = self
            .target_groups
            .iter()
            .find(|tg| tg.name == *group)
            .expect("its target group");
        json!({
            "name": name,
            "type": lb.fields["type"],
            "scheme": lb.fields["scheme"],
            "attributes": lb.attributes,
            "tags": lb.tags,
            "listeners": listeners,
            "target_groups": [{
                "name": group,
                "protocol": tg.fields["protocol"],
                "port": tg.fields["port"],
                "attributes": tg.attributes,
                "tags": tg.tags,
            }],
        })
    }

    /// Adds a state-table item for `name` holding `config`.
    pub fn item(mut self, name: &str, config: Value) -> Self {
        let item: Item = [
            ("name".to_string(), AttrValue::S(name.to_string())),
            ("version".to_string(), AttrValue::N("1".to_string())),
            ("config".to_string(), from_json(&config)),
        ]
        .into_iter()
        .collect();
        self.items.get_or_insert_with(Vec::new).push(item);
        self
    }

    /// Adds the matching record of every load balancer.
    pub fn recorded(self) -> Self {
        let names: Vec<String> = self
            .load_balancers
            .iter()
            .map(|lb| lb.name.clone())
            .collect();
        names.iter().fold(self, |fleet, name| {
            let config = fleet.config(name);
            fleet.item(name, config)
        })
    }

    /// The state table does not exist.
    pub fn without_table(mut self) -> Self {
        self.items = None;
        self
    }

    /// Pages of `elb` load balancers or target groups, and of `scan` items.
    pub fn page_sizes(mut self, elb: usize, scan: usize) -> Self {
        self.elb_page = elb;
        self.scan_page = scan;
        self
    }

    pub fn lb(&self, name: &str) -> Option<&FakeLoadBalancer> {
        self.load_balancers.iter().find(|lb| lb.name == name)
    }

    fn lb_by_arn(&self, arn: &str) -> Option<&FakeLoadBalancer> {
        self.load_balancers.iter().find(|lb| lb.arn == arn)
    }

    fn tg_by_arn(&self, arn: &str) -> Option<&FakeTargetGroup> {
        self.target_groups.iter().find(|tg| tg.arn == arn)
    }

    fn listener(&self, arn: &str) -> Option<&FakeListener> {
        self.load_balancers
            .iter()
            .flat_map(|lb| &lb.listeners)
            .find(|listener| listener.arn == arn)
    }

    /// Every load balancer and target group as the presence pass lists them.
    pub fn presence(&self) -> (Vec<LiveLoadBalancer>, Vec<LiveTargetGroup>) {
        (
            self.load_balancers.iter().map(live_lb).collect(),
            self.target_groups.iter().map(live_tg).collect(),
        )
    }

    /// What a deep read of load balancer `name` finds.
    pub fn deep_state(&self, name: &str) -> DeepState {
        let lb = self.lb(name).expect("a load balancer of the fleet");
        DeepState {
            attributes: Node::from_value(&lb.attributes),
            tags: Node::from_value(&lb.tags),
            listeners: lb
                .listeners
                .iter()
                .map(|listener| ListenerState {
                    fields: Node::from_value(&listener.fields),
                    rules: listener.rules.clone(),
                    additional_certificates: None,
                })
                .collect(),
            target_groups: self
                .target_groups
                .iter()
                .filter(|tg| tg.load_balancer_arns.contains(&lb.arn))
                .map(|tg| {
                    (
                        tg.arn.clone(),
                        TargetGroupState {
                            attributes: Node::from_value(&tg.attributes),
                            tags: Node::from_value(&tg.tags),
                            targets: None,
                        },
                    )
                })
                .collect(),
            gone_target_groups: Default::default(),
        }
    }
}

fn live_lb(lb: &FakeLoadBalancer) -> LiveLoadBalancer {
    LiveLoadBalancer {
        arn: lb.arn.clone(),
        name: lb.name.clone(),
        created_time: Some(1_700_000_000),
        fields: Node::from_value(&lb.fields).into(),
    }
}

fn live_tg(tg: &FakeTargetGroup) -> LiveTargetGroup {
    LiveTargetGroup {
        arn: tg.arn.clone(),
        name: tg.name.clone(),
        load_balancer_arns: tg.load_balancer_arns.clone(),
        fields: Node::from_value(&tg.fields).into(),
    }
}

/// Which calls of an operation fail.
#[derive(Debug, Clone, PartialEq)]
pub enum On {
    /// The `n`th call of the operation (from 1), retries counted.
    Call(u64),
    /// Every call for this resource (an ARN, or for `DescribeTags` one ARN of the batch).
    Resource(String),
    /// Every call.
    Every,
}

#[derive(Debug, Clone)]
struct Failure {
    operation: &'static str,
    on: On,
    class: ErrorClass,
}

/// The error a call injected with a failure of `class` answers, naming `resource` (one of class
/// `Timeout` is no answer at all instead, see [`FakeAws::fail`]).
fn error(
    service: &'static str,
    operation: &'static str,
    class: ErrorClass,
    resource: &str,
) -> AwsError {
    let code = match class {
        ErrorClass::Throttled => Some("Throttling"),
        ErrorClass::NotFound if service == DYNAMODB => Some("ResourceNotFoundException"),
        ErrorClass::NotFound if resource.contains(":targetgroup/") => Some("TargetGroupNotFound"),
        ErrorClass::NotFound => Some("LoadBalancerNotFound"),
        ErrorClass::AccessDenied => Some("AccessDenied"),
        ErrorClass::Service => Some("InternalFailure"),
        ErrorClass::Timeout | ErrorClass::Network | ErrorClass::NotLeader => None,
    };
    AwsError {
        service,
        operation,
        class,
        code: code.map(str::to_string),
        message: format!("injected for '{resource}'"),
    }
}

#[derive(Debug, Default)]
struct State {
    fleet: Arc<Fleet>,
    failures: Vec<Failure>,
    /// Calls per service, per operation: (calls, retries).
    calls: BTreeMap<&'static str, Calls>,
    /// Calls that never answer (a failure of class `Timeout`).
    stalled: u64,
}

/// The fake AWS of one target: its fleet, the failures to inject, the calls made.
#[derive(Debug, Clone, Default)]
pub struct FakeAws {
    state: Arc<Mutex<State>>,
}

/// The ELB side of a [`FakeAws`].
#[derive(Debug, Clone)]
pub struct FakeElb(FakeAws);

/// The DynamoDB side of a [`FakeAws`].
#[derive(Debug, Clone)]
pub struct FakeDynamo(FakeAws);

/// What a call may do: answer from the fleet, fail, or never answer.
enum Answer {
    Go(Arc<Fleet>),
    Fail(AwsError),
    Stall,
}

impl FakeAws {
    pub fn new(fleet: Fleet) -> Self {
        FakeAws {
            state: Arc::new(Mutex::new(State {
                fleet: Arc::new(fleet),
                ..State::default()
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the calls of `operation` that `on` names fail with an error of `class`
    /// (`Timeout`: no answer ever).
    pub fn fail(&self, operation: &'static str, on: On, class: ErrorClass) -> &Self {
        self.state().failures.push(Failure {
            operation,
            on,
            class,
        });
        self
    }

    /// Changes the fleet (deletes a load balancer after the presence pass listed it, say).
    pub fn change(&self, change: impl FnOnce(&mut Fleet)) {
        change(Arc::make_mut(&mut self.state().fleet));
    }

    /// A reader over this fake, reading `concurrency` at a time under the default rules.
    pub fn reader(&self, concurrency: usize) -> Reader<FakeElb, FakeDynamo> {
        Reader::with(
            FakeElb(self.clone()),
            FakeDynamo(self.clone()),
            concurrency,
            RecordRules::default(),
        )
    }

    /// Calls of `operation` made (retries apart).
    pub fn count(&self, operation: &str) -> u64 {
        self.all_calls()
            .get(operation)
            .map_or(0, |(calls, _)| *calls)
    }

    /// Calls of `operation` made again (narrowing a NotFound `DescribeTags`).
    pub fn retries(&self, operation: &str) -> u64 {
        self.all_calls()
            .get(operation)
            .map_or(0, |(_, retries)| *retries)
    }

    /// Every call made, per operation: (calls, retries).
    pub fn all_calls(&self) -> Calls {
        self.state()
            .calls
            .values()
            .flatten()
            .map(|(op, n)| (*op, *n))
            .collect()
    }

    /// Calls made that never answered.
    pub fn stalled(&self) -> u64 {
        self.state().stalled
    }

    /// Counts one call of `operation` for `resources`, and says how it answers.
    fn call(
        &self,
        service: &'static str,
        operation: &'static str,
        resources: &[&str],
        again: bool,
    ) -> Answer {
        let mut state = self.state();
        let counted = state
            .calls
            .entry(service)
            .or_default()
            .entry(operation)
            .or_default();
        if again {
            counted.1 += 1;
        } else {
            counted.0 += 1;
        }
        let nth = counted.0 + counted.1;
        let failed = state.failures.iter().find_map(|failure| {
            if failure.operation != operation {
                return None;
            }
            let resource = match &failure.on {
                On::Call(n) if *n == nth => resources.first().copied().unwrap_or(""),
                On::Every => resources.first().copied().unwrap_or(""),
                On::Resource(arn) if resources.contains(&arn.as_str()) => arn.as_str(),
                _ => return None,
            };
            Some((failure.class, resource.to_string()))
        });
        match failed {
            Some((ErrorClass::Timeout, _)) => {
                state.stalled += 1;
                Answer::Stall
            }
            Some((class, resource)) => Answer::Fail(error(service, operation, class, &resource)),
            None => Answer::Go(Arc::clone(&state.fleet)),
        }
    }

    /// One call of an ELB operation for `resource`, answered by `answer` from the fleet.
    fn elb<T, F>(
        &self,
        operation: &'static str,
        resources: &[&str],
        again: bool,
        answer: F,
    ) -> impl Future<Output = Result<T, AwsError>> + Send + use<T, F>
    where
        T: Send,
        F: FnOnce(&Fleet) -> Result<T, AwsError> + Send,
    {
        let decided = self.call(ELB, operation, resources, again);
        async move {
            // Every call yields once, so reads in flight interleave as real ones do.
            tokio::task::yield_now().await;
            match decided {
                Answer::Go(fleet) => answer(&fleet),
                Answer::Fail(err) => Err(err),
                Answer::Stall => std::future::pending().await,
            }
        }
    }

    /// Every page of a listing, `page` things a page: fails at the first page that fails,
    /// never answering a partial list.
    async fn pages<T>(
        &self,
        operation: &'static str,
        page: usize,
        items: impl Fn(&Fleet) -> Vec<T>,
    ) -> Result<Vec<T>, AwsError> {
        let mut read = Vec::new();
        let mut start = 0;
        loop {
            let fleet = match self.call(ELB, operation, &[], false) {
                Answer::Go(fleet) => fleet,
                Answer::Fail(err) => return Err(err),
                Answer::Stall => std::future::pending().await,
            };
            tokio::task::yield_now().await;
            let all = items(&fleet);
            let (count, end) = (all.len(), (start + page).min(all.len()));
            read.extend(all.into_iter().skip(start).take(end - start));
            // The last page names no next one.
            if end == count {
                return Ok(read);
            }
            start = end;
        }
    }
}

fn not_found(operation: &'static str, arn: &str) -> AwsError {
    error(ELB, operation, ErrorClass::NotFound, arn)
}

impl ElbReads for FakeElb {
    fn load_balancers(
        &self,
    ) -> impl Future<Output = Result<Vec<LiveLoadBalancer>, AwsError>> + Send {
        let fake = self.0.clone();
        async move {
            let page = fake.state().fleet.elb_page;
            fake.pages("DescribeLoadBalancers", page, |fleet| {
                fleet.load_balancers.iter().map(live_lb).collect()
            })
            .await
        }
    }

    fn target_groups(&self) -> impl Future<Output = Result<Vec<LiveTargetGroup>, AwsError>> + Send {
        let fake = self.0.clone();
        async move {
            let page = fake.state().fleet.elb_page;
            fake.pages("DescribeTargetGroups", page, |fleet| {
                fleet.target_groups.iter().map(live_tg).collect()
            })
            .await
        }
    }

    fn listeners(
        &self,
        load_balancer_arn: &str,
    ) -> impl Future<Output = Result<Vec<LiveListener>, AwsError>> + Send {
        const OP: &str = "DescribeListeners";
        let arn = load_balancer_arn.to_string();
        self.0.elb(OP, &[load_balancer_arn], false, move |fleet| {
            let lb = fleet.lb_by_arn(&arn).ok_or_else(|| not_found(OP, &arn))?;
            Ok(lb
                .listeners
                .iter()
                .map(|listener| LiveListener {
                    arn: listener.arn.clone(),
                    fields: Node::from_value(&listener.fields),
                })
                .collect())
        })
    }

    fn rules(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<LiveRule>, AwsError>> + Send {
        const OP: &str = "DescribeRules";
        let arn = listener_arn.to_string();
        self.0.elb(OP, &[listener_arn], false, move |fleet| {
            let listener = fleet.listener(&arn).ok_or_else(|| not_found(OP, &arn))?;
            Ok(listener.rules.clone())
        })
    }

    fn additional_certificates(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send {
        const OP: &str = "DescribeListenerCertificates";
        let arn = listener_arn.to_string();
        self.0.elb(OP, &[listener_arn], false, move |fleet| {
            fleet.listener(&arn).ok_or_else(|| not_found(OP, &arn))?;
            Ok(Vec::new())
        })
    }

    fn load_balancer_attributes(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Node, AwsError>> + Send {
        const OP: &str = "DescribeLoadBalancerAttributes";
        let owned = arn.to_string();
        self.0.elb(OP, &[arn], false, move |fleet| {
            let lb = fleet
                .lb_by_arn(&owned)
                .ok_or_else(|| not_found(OP, &owned))?;
            Ok(Node::from_value(&lb.attributes))
        })
    }

    fn target_group_attributes(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Node, AwsError>> + Send {
        const OP: &str = "DescribeTargetGroupAttributes";
        let owned = arn.to_string();
        self.0.elb(OP, &[arn], false, move |fleet| {
            let tg = fleet
                .tg_by_arn(&owned)
                .ok_or_else(|| not_found(OP, &owned))?;
            Ok(Node::from_value(&tg.attributes))
        })
    }

    fn tags(
        &self,
        arns: &[String],
        again: bool,
    ) -> impl Future<Output = Result<BTreeMap<String, Node>, AwsError>> + Send {
        const OP: &str = "DescribeTags";
        let resources: Vec<&str> = arns.iter().map(String::as_str).collect();
        let owned = arns.to_vec();
        self.0.elb(OP, &resources, again, move |fleet| {
            assert!(
                owned.len() <= TAGS_PER_CALL,
                "{} ARNs in one call",
                owned.len()
            );
            let mut tags = BTreeMap::new();
            for arn in &owned {
                let found = match (fleet.lb_by_arn(arn), fleet.tg_by_arn(arn)) {
                    (Some(lb), _) => &lb.tags,
                    (None, Some(tg)) => &tg.tags,
                    // AWS fails the whole call, naming the ARN.
                    (None, None) => return Err(not_found(OP, arn)),
                };
                tags.insert(arn.clone(), Node::from_value(found));
            }
            Ok(tags)
        })
    }

    fn targets(
        &self,
        target_group_arn: &str,
    ) -> impl Future<Output = Result<Vec<Value>, AwsError>> + Send {
        const OP: &str = "DescribeTargetHealth";
        let arn = target_group_arn.to_string();
        self.0.elb(OP, &[target_group_arn], false, move |fleet| {
            fleet.tg_by_arn(&arn).ok_or_else(|| not_found(OP, &arn))?;
            Ok(Vec::new())
        })
    }

    fn live_names(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<std::collections::BTreeSet<String>, AwsError>> + Send {
        let names = names.to_vec();
        let keys: Vec<&str> = Vec::new();
        self.0
            .elb("DescribeLoadBalancers", &keys, false, move |fleet| {
                Ok(names
                    .iter()
                    .filter(|name| fleet.load_balancers.iter().any(|lb| &lb.name == *name))
                    .cloned()
                    .collect())
            })
    }

    fn calls(&self) -> Calls {
        self.0.state().calls.get(ELB).cloned().unwrap_or_default()
    }
}

impl TableScans for FakeDynamo {
    fn scan_table<T: Send>(
        &self,
        role: &str,
        table: &str,
        mut each: impl FnMut(Item) -> T + Send,
    ) -> impl Future<Output = Result<Vec<T>, AwsError>> + Send {
        const OP: &str = "Scan";
        let fake = self.0.clone();
        let for_table = format!("(for {role} {table})");
        async move {
            let mut read = Vec::new();
            let mut start = 0;
            loop {
                let fleet = match fake.call(DYNAMODB, OP, &[], false) {
                    Answer::Go(fleet) => fleet,
                    Answer::Fail(mut err) => {
                        err.message = format!("{} {for_table}", err.message);
                        return Err(err);
                    }
                    Answer::Stall => std::future::pending().await,
                };
                tokio::task::yield_now().await;
                let Some(items) = &fleet.items else {
                    let mut err = error(DYNAMODB, OP, ErrorClass::NotFound, "table");
                    err.message = format!("Requested resource not found {for_table}");
                    return Err(err);
                };
                let end = (start + fleet.scan_page).min(items.len());
                // Each item is handed over as its page arrives.
                read.extend(items[start..end].iter().cloned().map(&mut each));
                if end == items.len() {
                    return Ok(read);
                }
                start = end;
            }
        }
    }

    fn calls(&self) -> Calls {
        self.0
            .state()
            .calls
            .get(DYNAMODB)
            .cloned()
            .unwrap_or_default()
    }
}
