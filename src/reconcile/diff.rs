//! The diff (docs/architecture.md#drift): a pure function from a recorded and a live document to the list of
//! changes between them.
//!
//! A record manages what it names: the walk follows the recorded document and compares only
//! the fields it holds. Keyed lists (listeners, rules, target groups) are compared whole, so a
//! live item the record does not hold is drift. Sets, action lists and condition lists are
//! one change each, at their own path.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::model::document::{canonical_order, normalize_action};

use crate::model::document::{Document, Field, LOAD_BALANCER, Shape};
use crate::model::node::{Name, Node, lookup};

/// One difference between the recorded and the live document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// An RFC 6901 JSON Pointer into the document in keyed form.
    pub path: String,
    /// The recorded value, `null` where the record holds nothing there.
    pub recorded: Value,
    /// The live value, `null` where the live side has nothing there.
    pub live: Value,
}

/// Tag keys under this prefix belong to AWS and are never compared.
const AWS_TAG_PREFIX: &str = "aws:";

/// Fields never compared: AWS does not return an OIDC client secret.
const NEVER_COMPARED: &[&str] = &["client_secret"];

/// Every change between `recorded` and `live`, sorted by path.
pub fn diff(recorded: &Document, live: &Document) -> Vec<Change> {
    let mut walk = Walk {
        path: Vec::new(),
        changes: Vec::new(),
    };
    for (key, recorded_value, digest) in recorded.digested_fields() {
        match live.digested(key) {
            // Identical: no rule finds a change between a value and itself.
            Some((_, live_digest)) if live_digest == digest => {}
            live_value => walk.field(
                LOAD_BALANCER,
                key,
                recorded_value,
                live_value.map(|(value, _)| value),
            ),
        }
    }
    walk.changes.sort_by(|a, b| a.path.cmp(&b.path));
    walk.changes
}

/// Escapes one JSON Pointer reference token (RFC 6901: `~` as `~0`, `/` as `~1`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The walk over both documents: the path is borrowed from them, so descending allocates
/// nothing; only a change builds its pointer and values.
struct Walk<'a> {
    path: Vec<&'a str>,
    changes: Vec<Change>,
}

impl<'a> Walk<'a> {
    fn pointer(&self) -> String {
        self.path
            .iter()
            .map(|token| format!("/{}", escape_token(token)))
            .collect()
    }

    fn change(&mut self, recorded: Value, live: Value) {
        self.changes.push(Change {
            path: self.pointer(),
            recorded,
            live,
        });
    }

    fn at(&mut self, token: &'a str, f: impl FnOnce(&mut Self)) {
        self.path.push(token);
        f(self);
        self.path.pop();
    }

    fn object(
        &mut self,
        fields: &'static [Field],
        recorded: &'a [(Name, Node)],
        live: Option<&'a [(Name, Node)]>,
    ) {
        for (key, recorded_value) in recorded {
            let live_value = live.and_then(|map| lookup(map, key));
            self.field(fields, key, recorded_value, live_value);
        }
    }

    /// One field of an object shape, at its own path; a field outside the schema is not
    /// compared.
    fn field(
        &mut self,
        fields: &'static [Field],
        key: &'a str,
        recorded: &'a Node,
        live: Option<&'a Node>,
    ) {
        if let Some((_, shape)) = fields.iter().find(|(name, _)| *name == key) {
            self.at(key, |walk| walk.value(shape, recorded, live));
        }
    }

    fn value(&mut self, shape: &'static Shape, recorded: &'a Node, live: Option<&'a Node>) {
        // Identical values differ under no rule: skip the canonical forms.
        if live == Some(recorded) {
            return;
        }
        let live = live.filter(|value| !value.is_null());
        if recorded.is_null() {
            if let Some(live) = live.filter(|value| !value.is_empty()) {
                self.change(Value::Null, live_output(shape, &live.to_value()));
            }
            return;
        }
        let live_or_null = || live.map_or(Value::Null, Node::to_value);
        match shape {
            Shape::Str | Shape::Num | Shape::Bool => {
                if !live.is_some_and(|live| scalar_matches(recorded, live)) {
                    self.change(recorded.to_value(), live_or_null());
                }
            }
            Shape::Set(_) => {
                let recorded = recorded.to_value();
                let live = live.map_or(Value::Array(Vec::new()), Node::to_value);
                if !set_matches(&recorded, &live) {
                    self.change(recorded, sorted_set(&live));
                }
            }
            Shape::Map | Shape::Tags => {
                let skip_aws = matches!(shape, Shape::Tags);
                let recorded = recorded.as_map().expect("checked by the schema");
                let live = live.and_then(Node::as_map);
                for (key, recorded_value) in recorded {
                    if skip_aws && key.starts_with(AWS_TAG_PREFIX) {
                        continue;
                    }
                    let live_value = live.and_then(|map| lookup(map, key));
                    if live_value != Some(recorded_value) {
                        self.at(key, |walk| {
                            walk.change(
                                recorded_value.to_value(),
                                live_value.map_or(Value::Null, Node::to_value),
                            )
                        });
                    }
                }
            }
            Shape::Object(fields) => {
                let recorded_fields = recorded.as_map().expect("checked by the schema");
                match live.and_then(Node::as_map) {
                    Some(live) => self.object(fields, recorded_fields, Some(live)),
                    None => self.change(recorded.to_value(), Value::Null),
                }
            }
            Shape::Keyed(fields, _) => {
                let recorded = recorded.as_map().expect("keyed by the schema");
                let live = live.and_then(Node::as_map).unwrap_or_default();
                for (key, recorded_item) in recorded {
                    match lookup(live, key) {
                        Some(live_item) => self.at(key, |walk| {
                            walk.object(
                                fields,
                                recorded_item.as_map().expect("keyed items are maps"),
                                live_item.as_map(),
                            )
                        }),
                        None => self.at(key, |walk| {
                            walk.change(recorded_item.to_value(), Value::Null)
                        }),
                    }
                }
                for (key, live_item) in live {
                    if lookup(recorded, key).is_none() {
                        self.at(key, |walk| walk.change(Value::Null, live_item.to_value()));
                    }
                }
            }
            Shape::Actions => {
                let live = live.map_or(Value::Array(Vec::new()), Node::to_value);
                let recorded = recorded.to_value();
                let (same, live_view) = compare_actions(&recorded, &live);
                if !same {
                    self.change(recorded, live_view);
                }
            }
            Shape::Conditions => {
                let live = live.map_or(Value::Array(Vec::new()), Node::to_value);
                let recorded = recorded.to_value();
                if condition_keys(&recorded) != condition_keys(&live) {
                    self.change(recorded, sorted_conditions(&live));
                }
            }
            Shape::List(_) => {
                let recorded = recorded.to_value();
                let live = live_or_null();
                if !matches(&recorded, &live) {
                    self.change(recorded, live);
                }
            }
        }
    }
}

/// Whether two scalars are equal; numbers compare by value (`1` equals `1.0`).
fn scalar_matches(recorded: &Node, live: &Node) -> bool {
    match (recorded, live) {
        (Node::Number(a), Node::Number(b)) => numbers_match(a, b),
        _ => recorded == live,
    }
}

fn numbers_match(a: &Number, b: &Number) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) => a == b,
        _ => a.as_f64() == b.as_f64(),
    }
}

/// How a live value is shown when the record holds `null` at its place.
fn live_output(shape: &Shape, live: &Value) -> Value {
    match shape {
        Shape::Set(_) => sorted_set(live),
        Shape::Conditions => sorted_conditions(live),
        Shape::Actions => compare_actions(&Value::Array(Vec::new()), live).1,
        _ => live.clone(),
    }
}

/// Whether `live` holds everything `recorded` names, with equal values. Lists must match
/// element by element; numbers compare by value.
pub fn matches(recorded: &Value, live: &Value) -> bool {
    match (recorded, live) {
        (Value::Object(recorded), Value::Object(live)) => recorded.iter().all(|(key, value)| {
            if NEVER_COMPARED.contains(&key.as_str()) {
                return true;
            }
            match live.get(key) {
                Some(live_value) => matches(value, live_value),
                None => value.is_null(),
            }
        }),
        (Value::Array(recorded), Value::Array(live)) => {
            recorded.len() == live.len() && recorded.iter().zip(live).all(|(r, l)| matches(r, l))
        }
        (Value::Number(a), Value::Number(b)) => numbers_match(a, b),
        (recorded, live) => recorded == live,
    }
}

/// A set's elements, sorted and without duplicates, for comparison and display.
fn sorted_set(value: &Value) -> Value {
    let mut items = value.as_array().cloned().unwrap_or_default();
    items.sort_by(canonical_order);
    items.dedup();
    Value::Array(items)
}

fn set_matches(recorded: &Value, live: &Value) -> bool {
    matches(&sorted_set(recorded), &sorted_set(live))
}

fn order_of(action: &Value) -> Option<f64> {
    action.get("order").and_then(Value::as_f64)
}

fn sort_by_order(actions: &mut [Value]) {
    actions.sort_by(|a, b| match (order_of(a), order_of(b)) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
}

/// Compares action lists in `order` (without order when no recorded action has one) and
/// returns whether they match, with the live list as it is shown in a change.
fn compare_actions(recorded: &Value, live: &Value) -> (bool, Value) {
    let mut recorded: Vec<Value> = recorded
        .as_array()
        .map(|items| items.iter().map(normalize_action).collect())
        .unwrap_or_default();
    let mut live: Vec<Value> = live
        .as_array()
        .map(|items| items.iter().map(normalize_action).collect())
        .unwrap_or_default();
    sort_by_order(&mut live);
    let ordered = recorded.iter().any(|action| order_of(action).is_some());
    if ordered {
        sort_by_order(&mut recorded);
    } else {
        for action in &mut live {
            if let Some(map) = action.as_object_mut() {
                map.remove("order");
            }
        }
    }
    let same = recorded.len() == live.len()
        && recorded
            .iter()
            .zip(&live)
            .all(|(recorded, live)| matches(recorded, live));
    (same, Value::Array(live))
}

/// The configuration block that carries a condition field's values.
fn condition_config(field: &str) -> Option<&'static str> {
    Some(match field {
        "host-header" => "host_header_config",
        "path-pattern" => "path_pattern_config",
        "http-header" => "http_header_config",
        "query-string" => "query_string_config",
        "http-request-method" => "http_request_method_config",
        "source-ip" => "source_ip_config",
        _ => return None,
    })
}

/// A condition reduced to what it means: the field, the header name where there is one, and
/// its values without order, whether they were written in `values` or in the field's block.
fn condition_key(condition: &Value) -> String {
    let field = condition.get("field").and_then(Value::as_str).unwrap_or("");
    let block = condition_config(field)
        .and_then(|name| condition.get(name))
        .filter(|b| !b.is_null());
    let values = block
        .and_then(|block| block.get("values"))
        .filter(|values| !values.is_null())
        .or_else(|| condition.get("values"))
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let header = block
        .and_then(|block| block.get("http_header_name"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mut parts: Vec<String> = values
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    parts.sort_unstable();
    parts.dedup();
    // NUL cannot appear in a condition value: it separates the parts unambiguously.
    format!("{field}\0{header}\0{}", parts.join("\0"))
}

fn condition_keys(conditions: &Value) -> Vec<String> {
    let mut keys: Vec<String> = conditions
        .as_array()
        .map(|items| items.iter().map(condition_key).collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn sorted_conditions(conditions: &Value) -> Value {
    let mut items = conditions.as_array().cloned().unwrap_or_default();
    items.sort_by_cached_key(condition_key);
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> Document {
        Document::parse(&value).unwrap().document
    }

    fn changes(recorded: Value, live: Value) -> Vec<Change> {
        diff(&doc(recorded), &doc(live))
    }

    fn change(path: &str, recorded: Value, live: Value) -> Change {
        Change {
            path: path.into(),
            recorded,
            live,
        }
    }

    /// A live load balancer with every field lbrecon reads.
    fn live_web() -> Value {
        json!({
            "name": "web", "type": "application", "scheme": "internet-facing",
            "ip_address_type": "ipv4", "subnets": ["subnet-b", "subnet-a"],
            "security_groups": ["sg-1"],
            "attributes": {"idle_timeout.timeout_seconds": "60", "deletion_protection.enabled": "false"},
            "tags": {"team": "edge", "aws:cloudformation:stack-name": "web"},
            "listeners": [
                {"port": 443, "protocol": "HTTPS", "ssl_policy": "ELBSecurityPolicy-2016-08",
                 "certificates": ["arn:cert/1"],
                 "default_actions": [{"type": "forward", "order": 1, "target_group": "api",
                    "forward_config": {"target_groups": [{"target_group": "api", "weight": 1}],
                                       "target_group_stickiness_config": {"enabled": false}}}],
                 "rules": [
                    {"priority": 10,
                     "conditions": [{"field": "path-pattern", "values": ["/api/*"],
                                     "path_pattern_config": {"values": ["/api/*"]}},
                                    {"field": "host-header", "host_header_config": {"values": ["b.example", "a.example"]}}],
                     "actions": [{"type": "forward", "order": 1, "target_group": "api"}]}
                 ]},
                {"port": 80, "protocol": "HTTP",
                 "default_actions": [{"type": "redirect", "order": 1,
                    "redirect_config": {"protocol": "HTTPS", "port": "443", "host": "#{host}",
                                        "path": "/#{path}", "query": "#{query}", "status_code": "HTTP_301"}}],
                 "rules": []}
            ],
            "target_groups": [
                {"name": "api", "protocol": "HTTP", "port": 8080, "target_type": "instance", "vpc_id": "vpc-1",
                 "health_check": {"enabled": true, "protocol": "HTTP", "port": "traffic-port", "path": "/health",
                                  "interval_seconds": 30, "timeout_seconds": 5, "healthy_threshold_count": 5,
                                  "unhealthy_threshold_count": 2, "matcher": {"http_code": "200"}},
                 "attributes": {"deregistration_delay.timeout_seconds": "300"},
                 "tags": {"team": "edge"},
                 "targets": [{"id": "i-2", "port": 8080}, {"id": "i-1", "port": 8080}]}
            ]
        })
    }

    #[test]
    fn an_identical_document_has_no_changes() {
        assert_eq!(changes(live_web(), live_web()), vec![]);
    }

    #[test]
    fn a_record_as_a_control_plane_writes_it_is_in_sync() {
        // Shorthand forward, no orders, condition values in the legacy form, sets in another
        // order, only some attributes and tags, no targets: all in sync.
        let recorded = json!({
            "name": "web", "type": "application", "scheme": "internet-facing",
            "subnets": ["subnet-a", "subnet-b"], "security_groups": ["sg-1"],
            "attributes": {"idle_timeout.timeout_seconds": "60"},
            "tags": {"team": "edge", "aws:cloudformation:stack-name": "other"},
            "listeners": [
                {"port": 80, "protocol": "HTTP",
                 "default_actions": [{"type": "redirect", "redirect_config": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}]},
                {"port": 443, "protocol": "HTTPS", "certificates": ["arn:cert/1"],
                 "default_actions": [{"type": "forward", "target_group": "api"}],
                 "rules": [{"priority": 10,
                            "conditions": [{"field": "host-header", "values": ["a.example", "b.example"]},
                                           {"field": "path-pattern", "path_pattern_config": {"values": ["/api/*"]}}],
                            "actions": [{"type": "forward", "forward_config": {"target_groups": [{"target_group": "api", "weight": 1}]}}]}]}
            ],
            "target_groups": [{"name": "api", "port": 8080, "health_check": {"path": "/health", "matcher": {"http_code": "200"}}}]
        });
        assert_eq!(changes(recorded, live_web()), vec![]);
    }

    #[test]
    fn each_rule_gives_its_change() {
        let base = live_web();
        let mut cases: Vec<(Value, Vec<Change>)> = Vec::new();

        let mut record = base.clone();
        record["scheme"] = json!("internal");
        cases.push((
            record,
            vec![change(
                "/scheme",
                json!("internal"),
                json!("internet-facing"),
            )],
        ));

        let mut record = base.clone();
        record["security_groups"] = json!(["sg-2", "sg-1"]);
        cases.push((
            record,
            vec![change(
                "/security_groups",
                json!(["sg-2", "sg-1"]),
                json!(["sg-1"]),
            )],
        ));

        let mut record = base.clone();
        record["listeners"][0]["ssl_policy"] = json!("ELBSecurityPolicy-TLS13-1-2-2021-06");
        cases.push((
            record,
            vec![change(
                "/listeners/443/ssl_policy",
                json!("ELBSecurityPolicy-TLS13-1-2-2021-06"),
                json!("ELBSecurityPolicy-2016-08"),
            )],
        ));

        let mut record = base.clone();
        record["target_groups"][0]["health_check"]["path"] = json!("/ping");
        cases.push((
            record,
            vec![change(
                "/target_groups/api/health_check/path",
                json!("/ping"),
                json!("/health"),
            )],
        ));

        let mut record = base.clone();
        record["target_groups"][0]["health_check"]["matcher"]["http_code"] = json!("200-299");
        cases.push((
            record,
            vec![change(
                "/target_groups/api/health_check/matcher/http_code",
                json!("200-299"),
                json!("200"),
            )],
        ));

        let mut record = base.clone();
        record["attributes"]["idle_timeout.timeout_seconds"] = json!("120");
        cases.push((
            record,
            vec![change(
                "/attributes/idle_timeout.timeout_seconds",
                json!("120"),
                json!("60"),
            )],
        ));

        let mut record = base.clone();
        record["tags"]["owner"] = json!("sre");
        cases.push((
            record,
            vec![change("/tags/owner", json!("sre"), Value::Null)],
        ));

        let mut record = base.clone();
        record["tags"]["a/b~c"] = json!("x");
        cases.push((
            record,
            vec![change("/tags/a~1b~0c", json!("x"), Value::Null)],
        ));

        let mut record = base.clone();
        record["listeners"][0]["rules"][0]["actions"] =
            json!([{"type": "forward", "order": 1, "target_group": "web"}]);
        cases.push((
            record,
            vec![change(
                "/listeners/443/rules/10/actions",
                json!([{"type": "forward", "order": 1, "target_group": "web"}]),
                json!([{"type": "forward", "order": 1, "target_group": "api"}]),
            )],
        ));

        let mut record = base.clone();
        record["listeners"][0]["rules"][0]["conditions"] =
            json!([{"field": "path-pattern", "values": ["/v2/*"]}]);
        let live_conditions = json!([
            {"field": "host-header", "host_header_config": {"values": ["b.example", "a.example"]}},
            {"field": "path-pattern", "values": ["/api/*"], "path_pattern_config": {"values": ["/api/*"]}}
        ]);
        cases.push((
            record,
            vec![change(
                "/listeners/443/rules/10/conditions",
                json!([{"field": "path-pattern", "values": ["/v2/*"]}]),
                live_conditions,
            )],
        ));

        let mut record = base.clone();
        record["target_groups"][0]["port"] = json!(9090);
        cases.push((
            record,
            vec![change("/target_groups/api/port", json!(9090), json!(8080))],
        ));

        let mut record = base.clone();
        record["target_groups"][0]["targets"] = json!([{"id": "i-1", "port": 8080}]);
        cases.push((
            record,
            vec![change(
                "/target_groups/api/targets",
                json!([{"id": "i-1", "port": 8080}]),
                json!([{"id": "i-1", "port": 8080}, {"id": "i-2", "port": 8080}]),
            )],
        ));

        // Equal values held differently: digests differ, the rules find no change.
        let mut record = base.clone();
        record["target_groups"][0]["port"] = json!(8080.0);
        record["subnets"] = json!(["subnet-a", "subnet-b"]);
        cases.push((record, vec![]));
        cases.push((base.clone(), vec![]));

        for (record, expected) in cases {
            assert_eq!(
                changes(record.clone(), base.clone()),
                expected,
                "record: {record}"
            );
            // Skipping the fields whose digests agree changes nothing.
            assert_eq!(
                walking_every_field(&doc(record.clone()), &doc(base.clone())),
                expected,
                "record: {record}"
            );
        }
    }

    /// The diff without the digests: every recorded field walked.
    fn walking_every_field(recorded: &Document, live: &Document) -> Vec<Change> {
        let mut walk = Walk {
            path: Vec::new(),
            changes: Vec::new(),
        };
        walk.object(LOAD_BALANCER, recorded.fields(), Some(live.fields()));
        walk.changes.sort_by(|a, b| a.path.cmp(&b.path));
        walk.changes
    }

    #[test]
    fn keyed_items_on_one_side_only_are_drift() {
        let live = live_web();
        let mut record = live.clone();
        record["listeners"].as_array_mut().unwrap().remove(1);
        record["listeners"][0]["rules"]
            .as_array_mut()
            .unwrap()
            .push(json!({"priority": 20, "actions": []}));
        record["target_groups"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "old", "port": 80}));
        let found = changes(record, live.clone());
        let paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/listeners/443/rules/20",
                "/listeners/80",
                "/target_groups/old"
            ]
        );
        assert_eq!(found[0].recorded, json!({"priority": 20, "actions": []}));
        assert_eq!(found[0].live, Value::Null);
        assert_eq!(found[1].recorded, Value::Null);
        assert_eq!(found[1].live["protocol"], "HTTP");
        assert_eq!(found[1].live["rules"], json!({}));
        assert_eq!(found[2].live, Value::Null);
    }

    #[test]
    fn what_the_record_does_not_name_is_not_compared() {
        let cases = [
            json!({"name": "web"}),
            json!({"name": "web", "listeners": [
                {"port": 443}, {"port": 80}
            ]}),
            json!({"name": "web", "tags": {}}),
            json!({"name": "web", "target_groups": [{"name": "api"}]}),
        ];
        for record in cases {
            assert_eq!(changes(record.clone(), live_web()), vec![], "{record}");
        }
    }

    #[test]
    fn aws_tags_are_never_compared() {
        let mut record = live_web();
        record["tags"] = json!({"team": "edge", "aws:autoscaling:groupName": "asg"});
        assert_eq!(changes(record, live_web()), vec![]);
    }

    #[test]
    fn targets_are_compared_only_when_recorded() {
        let mut live = live_web();
        live["target_groups"][0]["targets"] = json!([{"id": "i-9", "port": 80}]);
        let mut record = live_web();
        record["target_groups"][0]
            .as_object_mut()
            .unwrap()
            .remove("targets");
        assert_eq!(changes(record, live), vec![]);
    }

    #[test]
    fn actions_compare_in_order_when_ordered() {
        let mut live = live_web();
        live["listeners"][1]["default_actions"] = json!([
            {"type": "authenticate-oidc", "order": 1, "authenticate_oidc_config": {"issuer": "https://idp"}},
            {"type": "forward", "order": 2, "target_group": "api"}
        ]);
        let mut record = live.clone();
        record["listeners"][1]["default_actions"] = json!([
            {"type": "forward", "order": 2, "target_group": "api"},
            {"type": "authenticate-oidc", "order": 1, "authenticate_oidc_config": {"issuer": "https://idp", "client_secret": "s"}}
        ]);
        assert_eq!(changes(record.clone(), live.clone()), vec![]);

        record["listeners"][1]["default_actions"] = json!([
            {"type": "forward", "target_group": "api"},
            {"type": "authenticate-oidc", "authenticate_oidc_config": {"issuer": "https://idp"}}
        ]);
        let found = changes(record, live);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "/listeners/80/default_actions");
        assert_eq!(
            found[0].live,
            json!([
                {"type": "authenticate-oidc", "authenticate_oidc_config": {"issuer": "https://idp"}},
                {"type": "forward", "target_group": "api"}
            ])
        );
    }

    #[test]
    fn weighted_forwards_compare_without_group_order() {
        let weighted = |a: u64, b: u64| {
            json!([{"type": "forward", "forward_config": {"target_groups": [
                {"target_group": "blue", "weight": a}, {"target_group": "green", "weight": b}
            ]}}])
        };
        let mut live = live_web();
        live["listeners"][1]["default_actions"] = weighted(90, 10);
        let mut record = live.clone();
        record["listeners"][1]["default_actions"] = json!([{"type": "forward", "forward_config": {"target_groups": [
            {"target_group": "green", "weight": 10}, {"target_group": "blue", "weight": 90}
        ]}}]);
        assert_eq!(changes(record.clone(), live.clone()), vec![]);
        record["listeners"][1]["default_actions"] = weighted(50, 50);
        assert_eq!(changes(record, live).len(), 1);
    }

    #[test]
    fn http_header_names_compare_without_case() {
        let condition = |name: &str, values: Value| json!([{"field": "http-header", "http_header_config": {"http_header_name": name, "values": values}}]);
        let mut live = live_web();
        live["listeners"][0]["rules"][0]["conditions"] = condition("X-Env", json!(["a", "b"]));
        let mut record = live.clone();
        record["listeners"][0]["rules"][0]["conditions"] = condition("x-env", json!(["b", "a"]));
        assert_eq!(changes(record.clone(), live.clone()), vec![]);
        record["listeners"][0]["rules"][0]["conditions"] = condition("x-env", json!(["a"]));
        assert_eq!(changes(record, live).len(), 1);
    }

    #[test]
    fn a_recorded_null_means_none() {
        let mut record = live_web();
        record["listeners"][1]["ssl_policy"] = Value::Null;
        assert_eq!(changes(record.clone(), live_web()), vec![]);
        record["listeners"][0]["ssl_policy"] = Value::Null;
        assert_eq!(
            changes(record, live_web()),
            vec![change(
                "/listeners/443/ssl_policy",
                Value::Null,
                json!("ELBSecurityPolicy-2016-08")
            )]
        );
    }

    #[test]
    fn changes_are_sorted_by_path() {
        let mut record = live_web();
        record["type"] = json!("network");
        record["attributes"]["a"] = json!("1");
        record["subnets"] = json!(["subnet-z"]);
        let paths: Vec<String> = changes(record, live_web())
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(paths, vec!["/attributes/a", "/subnets", "/type"]);
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(escape_token("a/b~c"), "a~1b~0c");
        assert_eq!(escape_token("~/"), "~0~1");
    }
}
