//! The live side: what the ELBv2 API says, as plain data, and its assembly into documents.
//!
//! `src/aws/` fills these types from the SDK's answers; everything here is pure. What is held
//! from one read to the next (the presence fields, a deep state in the daemon's cache) is held
//! as compact [`Node`] maps. Actions read
//! from the API name target groups by ARN (`target_group_arn`); [`assemble`] maps them to names,
//! since identity is by name, never by ARN.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::model::document::Document;
use crate::model::node::{Node, Packed, PackedNode, Packer, Unpacker};

/// A load balancer as `DescribeLoadBalancers` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveLoadBalancer {
    pub arn: String,
    pub name: String,
    /// `CreatedTime`, in seconds since the Unix epoch.
    pub created_time: Option<i64>,
    /// The document fields this call returns: `type`, `scheme`, `ip_address_type`, `subnets`,
    /// `security_groups`. Packed: a fleet's are held through the whole cycle.
    pub fields: PackedNode,
}

/// A target group as `DescribeTargetGroups` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveTargetGroup {
    pub arn: String,
    pub name: String,
    /// The load balancers that route to it.
    pub load_balancer_arns: Vec<String>,
    /// The document fields this call returns: `name`, `protocol`, `protocol_version`, `port`,
    /// `target_type`, `vpc_id`, `health_check`. Packed: a fleet's are held through the whole
    /// cycle.
    pub fields: PackedNode,
}

/// A listener as `DescribeListeners` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveListener {
    pub arn: String,
    /// `port`, `protocol`, `ssl_policy`, `certificates`, `alpn_policy`, `default_actions`.
    pub fields: Node,
}

/// A rule as `DescribeRules` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRule {
    /// The listener's default rule, which is its `default_actions`, not one of its rules.
    pub is_default: bool,
    /// `priority` (a number), `conditions`, `actions`.
    pub fields: Node,
}

/// The presence pass of one target: every load balancer and every target group.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    pub load_balancers: Vec<LiveLoadBalancer>,
    pub target_groups: Vec<LiveTargetGroup>,
}

/// One listener with what the deep pass read for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerState {
    /// The listener's fields (its ARN is needed only to read its rules, so not kept).
    pub fields: Node,
    pub rules: Vec<LiveRule>,
    /// Non-default certificates, read only where the record holds `additional_certificates`.
    pub additional_certificates: Option<Vec<String>>,
}

/// What the deep pass read for one target group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetGroupState {
    pub attributes: Node,
    pub tags: Node,
    /// Registered targets (a list), read only where a record holds `targets`.
    pub targets: Option<Node>,
}

/// What the deep pass read for one load balancer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeepState {
    pub attributes: Node,
    pub tags: Node,
    pub listeners: Vec<ListenerState>,
    /// By target group ARN (a load balancer routes to few: a list, not a map).
    pub target_groups: Vec<(String, TargetGroupState)>,
    /// Target groups deleted since the presence pass listed them: not live any more.
    pub gone_target_groups: BTreeSet<String>,
}

impl DeepState {
    /// What was read for the target group with this ARN.
    pub fn target_group(&self, arn: &str) -> Option<&TargetGroupState> {
        self.target_groups
            .iter()
            .find(|(known, _)| known == arn)
            .map(|(_, state)| state)
    }
}

/// A [`DeepState`] packed into one allocation (see [`Packed`]): how the daemon keeps a load
/// balancer's deep read from one cycle to the next. Unpacked when it is compared, and dropped
/// after.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedDeepState(Packed);

impl DeepState {
    pub fn pack(&self) -> PackedDeepState {
        let mut packer = Packer::new();
        // Tags first: the scope reads them alone.
        packer.node(&self.tags);
        packer.node(&self.attributes);
        packer.count(self.listeners.len());
        for listener in &self.listeners {
            packer.node(&listener.fields);
            packer.count(listener.rules.len());
            for rule in &listener.rules {
                packer.flag(rule.is_default);
                packer.node(&rule.fields);
            }
            packer.flag(listener.additional_certificates.is_some());
            let certificates = listener
                .additional_certificates
                .as_deref()
                .unwrap_or_default();
            packer.count(certificates.len());
            for certificate in certificates {
                packer.text(certificate);
            }
        }
        packer.count(self.target_groups.len());
        for (arn, group) in &self.target_groups {
            packer.text(arn);
            packer.node(&group.attributes);
            packer.node(&group.tags);
            packer.flag(group.targets.is_some());
            packer.node(group.targets.as_ref().unwrap_or(&Node::Null));
        }
        packer.count(self.gone_target_groups.len());
        for arn in &self.gone_target_groups {
            packer.text(arn);
        }
        PackedDeepState(packer.finish())
    }
}

impl PackedDeepState {
    /// The deep state packed; `None` only if these are not bytes [`DeepState::pack`] wrote.
    pub fn unpack(&self) -> Option<DeepState> {
        let mut from = self.0.unpacker();
        let tags = from.node()?;
        let attributes = from.node()?;
        let listeners = (0..from.count()?)
            .map(|_| unpack_listener(&mut from))
            .collect::<Option<Vec<_>>>()?;
        let target_groups = (0..from.count()?)
            .map(|_| {
                let arn = from.text()?.to_string();
                let attributes = from.node()?;
                let tags = from.node()?;
                let has_targets = from.flag()?;
                let targets = from.node()?;
                let state = TargetGroupState {
                    attributes,
                    tags,
                    targets: has_targets.then_some(targets),
                };
                Some((arn, state))
            })
            .collect::<Option<Vec<_>>>()?;
        let gone_target_groups = (0..from.count()?)
            .map(|_| from.text().map(str::to_string))
            .collect::<Option<BTreeSet<_>>>()?;
        from.is_done().then_some(DeepState {
            attributes,
            tags,
            listeners,
            target_groups,
            gone_target_groups,
        })
    }

    /// Bytes that are not a packed deep state, for the tests of what reads one.
    #[cfg(test)]
    pub(crate) fn damaged() -> PackedDeepState {
        PackedDeepState(Packed::from_bytes(&[42]))
    }

    /// The load balancer's tags alone.
    pub fn tags(&self) -> Option<Node> {
        self.0.unpacker().node()
    }
}

fn unpack_listener(from: &mut Unpacker<'_>) -> Option<ListenerState> {
    let fields = from.node()?;
    let rules = (0..from.count()?)
        .map(|_| {
            let is_default = from.flag()?;
            Some(LiveRule {
                is_default,
                fields: from.node()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let has_certificates = from.flag()?;
    let certificates = (0..from.count()?)
        .map(|_| from.text().map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    Some(ListenerState {
        fields,
        rules,
        additional_certificates: has_certificates.then_some(certificates),
    })
}

/// Target groups by ARN, and which belong to which load balancer.
#[derive(Debug, Default)]
pub struct TargetGroupIndex<'a> {
    by_arn: HashMap<&'a str, &'a LiveTargetGroup>,
    by_load_balancer: HashMap<&'a str, Vec<&'a LiveTargetGroup>>,
}

impl<'a> TargetGroupIndex<'a> {
    pub fn new(groups: &'a [LiveTargetGroup]) -> Self {
        let mut index = TargetGroupIndex::default();
        for group in groups {
            index.by_arn.insert(&group.arn, group);
            for lb in &group.load_balancer_arns {
                let groups = index.by_load_balancer.entry(lb).or_default();
                // The API may name one load balancer once per listener or rule using the group.
                if !groups.iter().any(|known| known.arn == group.arn) {
                    groups.push(group);
                }
            }
        }
        index
    }

    /// The target groups a load balancer routes to.
    pub fn of(&self, load_balancer_arn: &str) -> &[&'a LiveTargetGroup] {
        self.by_load_balancer
            .get(load_balancer_arn)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The name of the target group with this ARN.
    pub fn name(&self, arn: &str) -> Option<&'a str> {
        self.by_arn.get(arn).map(|group| group.name.as_str())
    }
}

/// Builds the live document of one load balancer: the presence fields always, the deep ones
/// when `deep` is given.
pub fn assemble(
    lb: &LiveLoadBalancer,
    groups: &TargetGroupIndex<'_>,
    deep: Option<&DeepState>,
) -> Document {
    // Packed fields that do not unpack (a defect) are kept as an answer outside the schema
    // is, below: every recorded field reported as drift, never the load balancer dropped.
    let Some(fields) = lb.fields.unpack() else {
        return Document::named(&lb.name);
    };
    let mut doc = Map::new();
    doc.insert("name".into(), Value::String(lb.name.clone()));
    doc.extend(fields.to_object());

    let mut target_groups = Vec::new();
    for group in groups.of(&lb.arn) {
        if deep.is_some_and(|deep| deep.gone_target_groups.contains(&group.arn)) {
            continue;
        }
        let Some(fields) = group.fields.unpack() else {
            return Document::named(&lb.name);
        };
        let mut fields = fields.to_object();
        fields.insert("name".into(), Value::String(group.name.clone()));
        if let Some(state) = deep.and_then(|deep| deep.target_group(&group.arn)) {
            fields.insert("attributes".into(), state.attributes.to_value());
            fields.insert("tags".into(), state.tags.to_value());
            if let Some(targets) = &state.targets {
                fields.insert("targets".into(), targets.to_value());
            }
        }
        target_groups.push(Value::Object(fields));
    }
    doc.insert("target_groups".into(), Value::Array(target_groups));

    if let Some(deep) = deep {
        doc.insert("attributes".into(), deep.attributes.to_value());
        doc.insert("tags".into(), deep.tags.to_value());
        let listeners = deep
            .listeners
            .iter()
            .map(|state| listener_value(state, groups))
            .collect();
        doc.insert("listeners".into(), Value::Array(listeners));
    }

    let value = Value::Object(doc);
    match Document::parse(&value) {
        Ok(parsed) => parsed.document,
        // The API answered something outside the schema (a duplicate key, say). Keep what can
        // be kept: the load balancer is then reported with every recorded field as drift
        // rather than dropped.
        Err(_) => Document::named(&lb.name),
    }
}

fn listener_value(state: &ListenerState, groups: &TargetGroupIndex<'_>) -> Value {
    let mut fields = state.fields.to_object();
    if let Some(Value::Array(actions)) = fields.get_mut("default_actions") {
        name_target_groups(actions, groups);
    }
    let rules = state
        .rules
        .iter()
        .filter(|rule| !rule.is_default)
        .map(|rule| {
            let mut fields = rule.fields.to_object();
            if let Some(Value::Array(actions)) = fields.get_mut("actions") {
                name_target_groups(actions, groups);
            }
            Value::Object(fields)
        })
        .collect();
    fields.insert("rules".into(), Value::Array(rules));
    if let Some(certificates) = &state.additional_certificates {
        fields.insert(
            "additional_certificates".into(),
            Value::Array(certificates.iter().cloned().map(Value::String).collect()),
        );
    }
    Value::Object(fields)
}

/// Replaces `target_group_arn` in actions by `target_group` (the group's name), and collapses
/// a forward to one group with weight 1 and no stickiness into the `target_group` shorthand,
/// as docs/architecture.md#document defines them equal.
fn name_target_groups(actions: &mut [Value], groups: &TargetGroupIndex<'_>) {
    let name_of = |arn: &Value| -> Value {
        match arn.as_str() {
            // A group deleted since the presence pass keeps its ARN, which then shows as drift.
            Some(arn) => Value::String(groups.name(arn).unwrap_or(arn).to_string()),
            None => Value::Null,
        }
    };
    for action in actions.iter_mut() {
        let Some(action) = action.as_object_mut() else {
            continue;
        };
        if let Some(arn) = action.remove("target_group_arn") {
            action.insert("target_group".into(), name_of(&arn));
        }
        if let Some(Value::Object(forward)) = action.get_mut("forward_config")
            && let Some(Value::Array(tuples)) = forward.get_mut("target_groups")
        {
            for tuple in tuples.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(arn) = tuple.remove("target_group_arn") {
                    tuple.insert("target_group".into(), name_of(&arn));
                }
            }
        }
        let normalized = crate::model::document::normalize_action(&Value::Object(action.clone()));
        if let Value::Object(normalized) = normalized {
            *action = normalized;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Node {
        Node::from_value(&value)
    }

    #[test]
    fn assembly_names_target_groups_and_drops_the_default_rule() {
        let lb = LiveLoadBalancer {
            arn: "arn:lb/web".into(),
            name: "web".into(),
            created_time: Some(0),
            fields: object(json!({"type": "application", "subnets": ["s-1"]})).into(),
        };
        let groups = vec![LiveTargetGroup {
            arn: "arn:tg/api".into(),
            name: "api".into(),
            // Named once per listener or rule that uses the group, as the API may do.
            load_balancer_arns: vec!["arn:lb/web".into(), "arn:lb/web".into()],
            fields: object(json!({"port": 80, "protocol": "HTTP"})).into(),
        }];
        let index = TargetGroupIndex::new(&groups);
        let deep = DeepState {
            attributes: object(json!({"a": "1"})),
            tags: object(json!({"team": "edge"})),
            listeners: vec![ListenerState {
                fields: object(json!({"port": 80, "protocol": "HTTP", "default_actions": [
                    {"type": "forward", "order": 1, "target_group_arn": "arn:tg/api",
                     "forward_config": {"target_groups": [{"target_group_arn": "arn:tg/api", "weight": 1}],
                                        "target_group_stickiness_config": {"enabled": false}}}
                ]})),
                rules: vec![
                    LiveRule {
                        is_default: true,
                        fields: object(json!({"actions": []})),
                    },
                    LiveRule {
                        is_default: false,
                        fields: object(json!({"priority": 5, "conditions": [], "actions": [
                            {"type": "forward", "forward_config": {"target_groups": [
                                {"target_group_arn": "arn:tg/api", "weight": 3},
                                {"target_group_arn": "arn:tg/gone", "weight": 1}]}}
                        ]})),
                    },
                ],
                additional_certificates: None,
            }],
            target_groups: vec![(
                "arn:tg/api".to_string(),
                TargetGroupState {
                    tags: object(json!({"t": "v"})),
                    ..Default::default()
                },
            )],
            gone_target_groups: BTreeSet::new(),
        };
        let doc = assemble(&lb, &index, Some(&deep)).to_keyed_value();
        assert_eq!(
            doc["listeners"]["80"]["default_actions"],
            json!([{"type": "forward", "order": 1, "target_group": "api"}])
        );
        assert_eq!(
            doc["listeners"]["80"]["rules"]["5"]["actions"][0]["forward_config"]["target_groups"],
            json!([{"target_group": "api", "weight": 3}, {"target_group": "arn:tg/gone", "weight": 1}])
        );
        assert_eq!(doc["target_groups"]["api"]["tags"], json!({"t": "v"}));
        assert_eq!(doc["tags"], json!({"team": "edge"}));

        let presence = assemble(&lb, &index, None).to_keyed_value();
        assert!(presence.get("listeners").is_none());
        assert!(presence["target_groups"]["api"].get("tags").is_none());
    }
    #[test]
    fn a_packed_deep_state_unpacks_equal_and_its_tags_read_alone() {
        let listener = |port: u64, certificates: Option<Vec<String>>| ListenerState {
            fields: object(
                json!({"port": port, "protocol": "HTTPS", "ssl_policy": "ELBSecurityPolicy-2016-08"}),
            ),
            rules: vec![
                LiveRule {
                    is_default: true,
                    fields: object(
                        json!({"actions": [{"type": "forward", "target_group_arn": "arn:tg/api"}]}),
                    ),
                },
                LiveRule {
                    is_default: false,
                    fields: object(
                        json!({"priority": 10, "conditions": [{"field": "path-pattern", "values": ["/v1/*"]}]}),
                    ),
                },
            ],
            additional_certificates: certificates,
        };
        let states = [
            DeepState::default(),
            DeepState {
                attributes: object(json!({"idle_timeout.timeout_seconds": "60", "a.new.key": "x"})),
                tags: object(json!({"team": "edge", "aws:cloudformation:stack-name": "web"})),
                listeners: vec![
                    listener(443, Some(vec!["arn:cert/1".into(), "arn:cert/2".into()])),
                    listener(8443, Some(Vec::new())),
                    listener(80, None),
                ],
                target_groups: vec![
                    (
                        "arn:tg/api".to_string(),
                        TargetGroupState {
                            attributes: object(json!({"stickiness.enabled": "false"})),
                            tags: object(json!({"t": "v"})),
                            targets: Some(object(json!([{"id": "i-1", "port": 80}]))),
                        },
                    ),
                    ("arn:tg/empty".to_string(), TargetGroupState::default()),
                ],
                gone_target_groups: ["arn:tg/gone".to_string()].into(),
            },
        ];
        for state in &states {
            let packed = state.pack();
            assert_eq!(packed.unpack().as_ref(), Some(state));
            assert_eq!(packed.tags().as_ref(), Some(&state.tags));
        }
        // A cut short copy is not a deep state.
        let packed = states[1].pack();
        let bytes = &packed.0;
        let cut = PackedDeepState(Packed::from_bytes(&bytes.as_bytes()[..bytes.len() - 1]));
        assert_eq!(cut.unpack(), None);
    }
}
