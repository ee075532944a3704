//! The load-balancer document (docs/architecture.md#document): its schema, validation, and its keyed form.
//!
//! One schema describes every field: its type, for validating records, and how it compares,
//! for the diff. [`Document::parse`] checks a `config` map against it and turns every
//! identity-keyed list (listeners, rules, target groups) into a map keyed by port, priority or
//! name, the form the diff walks and change paths point into. The live side goes through the
//! same function, so both sides always have the same shape.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::node::{Digest, Name, Node, Packed, Packer, lookup, position};

pub use crate::model::schema::{
    ACTION, CONDITION, Field, GATEWAY_LISTENER_KEY, Key, LOAD_BALANCER, Shape, field_names,
};

/// Fields of the load balancer that the presence pass reads (`DescribeLoadBalancers`,
/// `DescribeTargetGroups`); everything else needs a deep read.
const PRESENCE_FIELDS: &[&str] = &[
    "name",
    "type",
    "scheme",
    "ip_address_type",
    "subnets",
    "security_groups",
    "target_groups",
];

/// Fields of a target group that need a deep read.
const DEEP_TARGET_GROUP_FIELDS: &[&str] = &["attributes", "tags", "targets"];

/// A load-balancer document in keyed form, checked against the schema.
///
/// Each top-level field carries the digest of its value, taken when the document is built:
/// the diff runs every cycle over every load balancer, and two fields with one digest are
/// identical, so the diff walks only the fields whose digests differ. A document is immutable
/// and shared: a record unchanged since the last scan keeps its document (see
/// [`crate::model::record::RecordCache`]).
#[derive(Debug, Clone)]
pub struct Document {
    /// The document with listeners, rules and target groups as maps keyed by identity: always
    /// a [`Node::Map`].
    keyed: Arc<Node>,
    /// The digest of each top-level field's value, in the order of [`Document::fields`].
    digests: Arc<[Digest]>,
}

impl PartialEq for Document {
    fn eq(&self, other: &Document) -> bool {
        Arc::ptr_eq(&self.keyed, &other.keyed) || self.keyed == other.keyed
    }
}

/// A document parsed from a record, with warnings about fields lbrecon does not know.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub document: Document,
    /// One line per unknown field, naming where it is.
    pub warnings: Vec<String>,
}

impl Document {
    /// Checks a document against the schema and returns its keyed form. The error names the
    /// first field that is wrong and why (`listeners[0].port: expected a number, found a string`).
    pub fn parse(value: &Value) -> Result<Parsed, String> {
        let mut warnings = Vec::new();
        let checked = Node::sorted_map(check_object(
            value,
            LOAD_BALANCER,
            &Path::Root("config"),
            &mut warnings,
        )?);
        // Copied once more, in one go: the copy's nodes lie together in memory (the check
        // allocated them among its temporaries), which is what makes comparing two documents
        // fast.
        let keyed = checked.clone();
        drop(checked);
        Ok(Parsed {
            document: Document::new(keyed),
            warnings,
        })
    }

    /// A document naming only the load balancer, for a live answer outside the schema.
    pub fn named(name: &str) -> Document {
        Document::new(Node::sorted_map(vec![(
            Name::Borrowed("name"),
            Node::String(name.into()),
        )]))
    }

    fn new(keyed: Node) -> Document {
        let digests = keyed
            .as_map()
            .unwrap_or_default()
            .iter()
            .map(|(_, value)| value.digest())
            .collect();
        Document {
            keyed: Arc::new(keyed),
            digests,
        }
    }

    /// The keyed form packed into one allocation (see [`Packed`]).
    pub fn pack(&self) -> Packed {
        let mut packer = Packer::new();
        packer.node(&self.keyed);
        packer.finish()
    }

    /// A document [`Document::pack`] packed; `None` for bytes it did not write.
    pub fn unpack(packed: &Packed) -> Option<Document> {
        let mut from = packed.unpacker();
        let keyed = from.node()?;
        (keyed.as_map().is_some() && from.is_done()).then(|| Document::new(keyed))
    }

    /// The top-level fields, sorted by name.
    pub fn fields(&self) -> &[(Name, Node)] {
        self.keyed.as_map().unwrap_or_default()
    }

    /// A top-level field.
    pub fn get(&self, field: &str) -> Option<&Node> {
        self.keyed.get(field)
    }

    /// The top-level fields, sorted by name, each with its digest.
    pub fn digested_fields(&self) -> impl Iterator<Item = (&Name, &Node, Digest)> {
        self.fields()
            .iter()
            .zip(self.digests.iter())
            .map(|((key, value), digest)| (key, value, *digest))
    }

    /// A top-level field with its digest.
    pub fn digested(&self, field: &str) -> Option<(&Node, Digest)> {
        let fields = self.fields();
        let index = position(fields, field)?;
        Some((&fields[index].1, self.digests[index]))
    }

    /// The keyed form as JSON (the form change paths point into).
    pub fn to_keyed_value(&self) -> Value {
        self.keyed.to_value()
    }

    /// The document restricted to what the presence pass reads, for a load balancer whose
    /// deep read failed: drift in these fields is known for certain, the rest is not.
    pub fn presence_only(&self) -> Document {
        let mut fields = Vec::new();
        let mut digests = Vec::new();
        for (key, value, digest) in self.digested_fields() {
            if !PRESENCE_FIELDS.contains(&key.as_ref()) {
                continue;
            }
            match (key.as_ref(), value) {
                ("target_groups", Node::Map(groups)) => {
                    let groups = Node::sorted_map(
                        groups
                            .iter()
                            .map(|(name, group)| (name.clone(), without_deep_fields(group)))
                            .collect(),
                    );
                    digests.push(groups.digest());
                    fields.push((key.clone(), groups));
                }
                _ => {
                    digests.push(digest);
                    fields.push((key.clone(), value.clone()));
                }
            }
        }
        Document {
            keyed: Arc::new(Node::sorted_map(fields)),
            digests: digests.into(),
        }
    }

    /// The document in list form (docs/architecture.md#document), as a record holds it: keyed maps become lists,
    /// listeners by port, rules by priority, target groups by name.
    pub fn to_lists(&self) -> Value {
        unkey(&self.keyed, LOAD_BALANCER)
    }

    /// Whether the document names `field` at its top level.
    pub fn holds(&self, field: &str) -> bool {
        self.keyed.get(field).is_some()
    }
}

fn without_deep_fields(group: &Node) -> Node {
    match group {
        Node::Map(fields) => Node::sorted_map(
            fields
                .iter()
                .filter(|(key, _)| !DEEP_TARGET_GROUP_FIELDS.contains(&key.as_ref()))
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}

fn unkey(value: &Node, fields: &'static [Field]) -> Value {
    let Node::Map(map) = value else {
        return value.to_value();
    };
    let mut out = Map::new();
    for (key, item) in map.iter() {
        let converted = match fields
            .iter()
            .find(|(name, _)| *name == key.as_ref())
            .map(|(_, shape)| shape)
        {
            Some(Shape::Keyed(item_fields, _)) => {
                let mut items: Vec<(&str, Value)> = item
                    .as_map()
                    .map(|items| {
                        items
                            .iter()
                            .map(|(k, v)| (k.as_ref(), unkey(v, item_fields)))
                            .collect()
                    })
                    .unwrap_or_default();
                // Numeric keys (ports, priorities) in numeric order.
                items.sort_by(
                    |(a, _), (b, _)| match (a.parse::<f64>(), b.parse::<f64>()) {
                        (Ok(a), Ok(b)) => a.total_cmp(&b),
                        _ => a.cmp(b),
                    },
                );
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            }
            Some(Shape::Object(inner)) => unkey(item, inner),
            _ => item.to_value(),
        };
        out.insert(key.to_string(), converted);
    }
    Value::Object(out)
}

/// A short description of a JSON value's type, for messages.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Where a value is in the document (`config.listeners[0].port`): rendered only for an error
/// or a warning, so checking a valid document formats nothing.
#[derive(Debug, Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn expected(path: &Path<'_>, what: &str, found: &Value) -> String {
    format!("{path}: expected {what}, found {}", type_of(found))
}

/// The fields of an object the schema knows, checked, sorted by name.
fn check_object(
    value: &Value,
    fields: &'static [Field],
    path: &Path<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<(Name, Node)>, String> {
    let Value::Object(map) = value else {
        return Err(expected(path, "a map", value));
    };
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        let child = Path::Field(path, key);
        match fields.iter().find(|(name, _)| name == key) {
            // The map iterates in key order, so `out` stays sorted.
            Some((name, shape)) => out.push((
                Name::Borrowed(name),
                validate_value(value, shape, &child, warnings)?,
            )),
            None => warnings.push(format!("{child}: unknown field, ignored")),
        }
    }
    Ok(out)
}

fn validate_value(
    value: &Value,
    shape: &'static Shape,
    path: &Path<'_>,
    warnings: &mut Vec<String>,
) -> Result<Node, String> {
    // A null names a field as having no value (an HTTP listener's `ssl_policy`, say).
    if value.is_null() {
        return Ok(Node::Null);
    }
    match shape {
        Shape::Str => match value {
            Value::String(text) => Ok(Node::String(text.as_str().into())),
            _ => Err(expected(path, "a string", value)),
        },
        Shape::Num => match value {
            Value::Number(number) => Ok(Node::Number(number.clone())),
            _ => Err(expected(path, "a number", value)),
        },
        Shape::Bool => match value {
            Value::Bool(flag) => Ok(Node::Bool(*flag)),
            _ => Err(expected(path, "a boolean", value)),
        },
        Shape::Set(Shape::Str) if value.is_string() => {
            Ok(Node::List(Box::new([Node::from_value(value)])))
        }
        Shape::Set(element) | Shape::List(element) => check_list(value, path, |item, item_path| {
            validate_value(item, element, item_path, warnings)
        }),
        Shape::Map | Shape::Tags => {
            let Value::Object(map) = value else {
                return Err(expected(path, "a map of strings", value));
            };
            for (key, item) in map {
                if !item.is_string() {
                    return Err(expected(&Path::Field(path, key), "a string", item));
                }
            }
            Ok(Node::from_value(value))
        }
        Shape::Object(fields) => Ok(Node::sorted_map(check_object(
            value, fields, path, warnings,
        )?)),
        Shape::Actions => check_list(value, path, |item, item_path| {
            check_object(item, ACTION, item_path, warnings).map(Node::sorted_map)
        }),
        Shape::Conditions => check_list(value, path, |item, item_path| {
            check_object(item, CONDITION, item_path, warnings).map(Node::sorted_map)
        }),
        Shape::Keyed(fields, key) => {
            let Value::Array(items) = value else {
                return Err(expected(path, "a list", value));
            };
            let mut out: Vec<(Name, Node)> = Vec::with_capacity(items.len());
            let mut seen = HashSet::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = Path::Index(path, i);
                let object = check_object(item, fields, &item_path, warnings)?;
                let id = key_of(&object, *key, &item_path)?;
                if !seen.insert(id.clone()) {
                    return Err(format!("{path}: two items are keyed {id:?}"));
                }
                out.push((Name::Owned(id), Node::sorted_map(object)));
            }
            out.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
            Ok(Node::sorted_map(out))
        }
    }
}

fn check_list(
    value: &Value,
    path: &Path<'_>,
    mut each: impl FnMut(&Value, &Path<'_>) -> Result<Node, String>,
) -> Result<Node, String> {
    let Value::Array(items) = value else {
        return Err(expected(path, "a list", value));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| each(item, &Path::Index(path, i)))
        .collect::<Result<Box<[_]>, _>>()
        .map(Node::List)
}

/// The identity of one item of a keyed list, as it appears in change paths.
fn key_of(object: &[(Name, Node)], key: Key, path: &Path<'_>) -> Result<String, String> {
    let field = |name: &str| lookup(object, name);
    match key {
        Key::Port => match field("port") {
            None | Some(Node::Null) => Ok(GATEWAY_LISTENER_KEY.to_string()),
            Some(Node::Number(port)) => Ok(port.to_string()),
            Some(other) => Ok(other.to_value().to_string()),
        },
        Key::Priority => match field("priority") {
            Some(Node::Number(priority)) => Ok(priority.to_string()),
            _ => Err(format!("{path}: a rule needs a numeric priority")),
        },
        Key::Name => match field("name") {
            Some(Node::String(name)) if !name.is_empty() => Ok(name.to_string()),
            _ => Err(format!("{path}: a target group needs a name")),
        },
    }
}

/// The order sets and weighted groups are compared and shown in.
pub fn canonical_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a.cmp(b),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Puts an action into its comparable form: a forward to one group with weight 1 and no
/// stickiness becomes the `target_group` shorthand, and weighted groups are sorted by name.
pub fn normalize_action(action: &Value) -> Value {
    let Some(map) = action.as_object() else {
        return action.clone();
    };
    let mut map = map.clone();
    if let Some(Value::Object(forward)) = map.get_mut("forward_config") {
        if let Some(Value::Array(groups)) = forward.get_mut("target_groups") {
            groups.sort_by(|a, b| canonical_order(&a["target_group"], &b["target_group"]));
        }
        if let Some(name) = single_plain_forward(forward) {
            let shorthand_agrees = map
                .get("target_group")
                .is_none_or(|existing| existing.is_null() || existing == &name);
            if shorthand_agrees {
                map.remove("forward_config");
                map.insert("target_group".into(), name);
            }
        }
    }
    if map.get("forward_config").is_some() && map.get("target_group").is_some_and(Value::is_null) {
        map.remove("target_group");
    }
    Value::Object(map)
}

/// The target group of a forward config that means no more than the `target_group` shorthand.
fn single_plain_forward(forward: &Map<String, Value>) -> Option<Value> {
    let groups = forward.get("target_groups")?.as_array()?;
    let [group] = groups.as_slice() else {
        return None;
    };
    let weight_is_one = match group.get("weight") {
        None | Some(Value::Null) => true,
        Some(weight) => weight.as_f64() == Some(1.0),
    };
    let sticky = forward
        .get("target_group_stickiness_config")
        .and_then(|config| config.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let name = group.get("target_group")?;
    (weight_is_one && !sticky && name.is_string()).then(|| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_become_keyed_maps() {
        let parsed = Document::parse(&json!({
            "name": "web",
            "listeners": [
                {"port": 443, "rules": [{"priority": 10, "actions": []}, {"priority": 20}]},
                {"protocol": "GENEVE"}
            ],
            "target_groups": [{"name": "api", "port": 8080}]
        }))
        .unwrap();
        let keyed = parsed.document.to_keyed_value();
        assert_eq!(keyed["listeners"]["443"]["rules"]["10"]["priority"], 10);
        assert_eq!(keyed["listeners"]["443"]["rules"]["20"]["priority"], 20);
        assert_eq!(keyed["listeners"]["gateway"]["protocol"], "GENEVE");
        assert_eq!(keyed["target_groups"]["api"]["port"], 8080);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn wrong_types_are_invalid_with_the_path() {
        let cases = [
            (
                json!({"listeners": [{"port": "443"}]}),
                "config.listeners[0].port: expected a number, found a string",
            ),
            (
                json!({"subnets": "a,b", "tags": []}),
                "config.tags: expected a map of strings, found a list",
            ),
            (
                json!({"tags": {"team": 1}}),
                "config.tags.team: expected a string, found a number",
            ),
            (
                json!({"listeners": {"443": {}}}),
                "config.listeners: expected a list, found a map",
            ),
            (
                json!({"listeners": [{"port": 1, "rules": [{"actions": []}]}]}),
                "config.listeners[0].rules[0]: a rule needs a numeric priority",
            ),
            (
                json!({"target_groups": [{"port": 1}]}),
                "config.target_groups[0]: a target group needs a name",
            ),
            (
                json!({"listeners": [{"port": 80}, {"port": 80}]}),
                "config.listeners: two items are keyed \"80\"",
            ),
            (
                json!({"listeners": [{"port": 80, "default_actions": [{"type": 1}]}]}),
                "config.listeners[0].default_actions[0].type: expected a string, found a number",
            ),
            (
                json!({"target_groups": [{"name": "a", "health_check": {"enabled": "yes"}}]}),
                "config.target_groups[0].health_check.enabled: expected a boolean, found a string",
            ),
            (json!("web"), "config: expected a map, found a string"),
        ];
        for (doc, message) in cases {
            assert_eq!(Document::parse(&doc).unwrap_err(), message, "{doc}");
        }
    }

    #[test]
    fn unknown_fields_are_warnings_not_errors() {
        let parsed = Document::parse(&json!({
            "name": "web", "owner": "team-a",
            "listeners": [{"port": 80, "future_field": true}]
        }))
        .unwrap();
        assert_eq!(
            parsed.warnings,
            vec![
                "config.listeners[0].future_field: unknown field, ignored",
                "config.owner: unknown field, ignored",
            ]
        );
        assert!(!parsed.document.holds("owner"));
    }

    #[test]
    fn a_single_string_is_a_set_of_one() {
        let parsed = Document::parse(
            &json!({"listeners": [{"port": 443, "alpn_policy": "HTTP2Preferred"}]}),
        )
        .unwrap();
        assert_eq!(
            parsed.document.to_keyed_value()["listeners"]["443"]["alpn_policy"],
            json!(["HTTP2Preferred"])
        );
    }

    #[test]
    fn the_list_form_round_trips() {
        let doc = json!({
            "name": "web",
            "listeners": [
                {"port": 80, "rules": [{"priority": 5}, {"priority": 40}]},
                {"port": 443, "rules": []}
            ],
            "target_groups": [{"name": "a"}, {"name": "b", "health_check": {"path": "/"}}]
        });
        let parsed = Document::parse(&doc).unwrap().document;
        assert_eq!(parsed.to_lists(), doc);
    }

    #[test]
    fn presence_only_drops_deep_fields() {
        let parsed = Document::parse(&json!({
            "name": "web", "scheme": "internal", "tags": {"a": "b"}, "listeners": [],
            "target_groups": [{"name": "api", "port": 80, "tags": {}, "attributes": {}}]
        }))
        .unwrap();
        let presence = parsed.document.presence_only();
        assert_eq!(
            presence.to_keyed_value(),
            json!({"name": "web", "scheme": "internal", "target_groups": {"api": {"name": "api", "port": 80}}})
        );
        // Its digests, kept or taken again, are those of its values.
        let rebuilt = Document::parse(&presence.to_lists()).unwrap().document;
        let digests = |document: &Document| -> Vec<(String, Digest)> {
            document
                .digested_fields()
                .map(|(key, _, digest)| (key.to_string(), digest))
                .collect()
        };
        assert_eq!(digests(&presence), digests(&rebuilt));
        assert_eq!(presence.fields().len(), 3);
    }
}
