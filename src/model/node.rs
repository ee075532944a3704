//! A compact, immutable JSON tree for the documents lbrecon holds between reads and the diff.
//!
//! A `serde_json::Value` keeps every object in a B-tree whose node takes about 630 bytes however
//! few keys it holds, and every key in an allocation of its own. A fleet's documents are mostly
//! small objects (an action, a condition, a health check), so a document held that way takes
//! many times its JSON size, and comparing two of them chases pointers across all of it. A
//! [`Node`] keeps an object as one sorted slice of entries, with field names from the schema
//! held as static strings; a lookup is a binary search. Nodes are built once, by
//! [`crate::model::document::Document::parse`], and only read after that.

use std::borrow::Cow;
use std::hash::Hasher;
use std::sync::OnceLock;

use compact_str::CompactString;
use serde_json::{Map, Number, Value};
use siphasher::sip128::{Hasher128, SipHasher13};

/// An object key: a schema field name (static, no allocation) or a key from the data (a port,
/// a priority, a target group's name, a tag key).
pub type Name = Cow<'static, str>;

/// One JSON value. `Map` entries are sorted by key, without duplicates. Strings of up to 24
/// bytes (most of a document's: protocols, paths, names) are held inline, not behind a pointer.
#[derive(Debug, Clone)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(CompactString),
    List(Box<[Node]>),
    Map(Box<[(Name, Node)]>),
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Null, Node::Null) => true,
            (Node::Bool(a), Node::Bool(b)) => a == b,
            (Node::Number(a), Node::Number(b)) => a == b,
            (Node::String(a), Node::String(b)) => a == b,
            (Node::List(a), Node::List(b)) => a == b,
            (Node::Map(a), Node::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|((ka, va), (kb, vb))| same_name(ka, kb) && va == vb)
            }
            _ => false,
        }
    }
}

/// Whether two names are equal; two schema names are the same string only when they are the
/// same static, so the bytes are compared only for names from the data.
fn same_name(a: &Name, b: &Name) -> bool {
    match (a, b) {
        (Cow::Borrowed(a), Cow::Borrowed(b)) => std::ptr::eq(*a, *b) || a == b,
        _ => a == b,
    }
}

impl Node {
    /// A map from entries sorted by key without duplicates (as a `serde_json::Map` iterates).
    pub fn sorted_map(entries: Vec<(Name, Node)>) -> Node {
        debug_assert!(entries.windows(2).all(|pair| pair[0].0 < pair[1].0));
        Node::Map(entries.into_boxed_slice())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    pub fn as_map(&self) -> Option<&[(Name, Node)]> {
        match self {
            Node::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(text) => Some(text),
            _ => None,
        }
    }

    /// The value under `key` of a map; `None` for anything else.
    pub fn get(&self, key: &str) -> Option<&Node> {
        lookup(self.as_map()?, key)
    }

    /// Null, an empty list or an empty map: nothing there.
    pub fn is_empty(&self) -> bool {
        match self {
            Node::Null => true,
            Node::List(items) => items.is_empty(),
            Node::Map(entries) => entries.is_empty(),
            _ => false,
        }
    }

    /// The same value as a `serde_json::Value`, for output and for the comparisons that
    /// rewrite a value before comparing it.
    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(flag) => Value::Bool(*flag),
            Node::Number(number) => Value::Number(number.clone()),
            Node::String(text) => Value::String(text.to_string()),
            Node::List(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Map(entries) => Value::Object(to_map(entries)),
        }
    }

    /// A node holding `value` as it is; keys that are field names of the schema are held as
    /// static names, others owned.
    pub fn from_value(value: &Value) -> Node {
        match value {
            Value::Null => Node::Null,
            Value::Bool(flag) => Node::Bool(*flag),
            Value::Number(number) => Node::Number(number.clone()),
            Value::String(text) => Node::String(CompactString::new(text)),
            Value::Array(items) => Node::List(items.iter().map(Node::from_value).collect()),
            Value::Object(map) => Node::sorted_map(
                map.iter()
                    .map(|(key, value)| (field_name(key.as_str()), Node::from_value(value)))
                    .collect(),
            ),
        }
    }
}

/// A 128-bit digest of a node's content: two nodes with the same digest are equal. It is a
/// keyed hash (SipHash-1-3) under a key drawn when the process starts, so no input can be
/// built to collide with another, and digests are only ever compared within one process.
pub type Digest = u128;

impl Node {
    /// The digest of this node and everything under it.
    pub fn digest(&self) -> Digest {
        let mut hasher = digest_hasher();
        self.feed(&mut hasher);
        hasher.finish128().as_u128()
    }

    /// Writes the node into `hasher` unambiguously: a tag per kind, lengths before contents,
    /// numbers as the kind serde_json keeps them (so `1` and `1.0` differ, as `==` has them).
    fn feed(&self, hasher: &mut SipHasher13) {
        match self {
            Node::Null => hasher.write_u8(0),
            Node::Bool(flag) => hasher.write_u8(1 + u8::from(*flag)),
            Node::Number(number) => {
                if let Some(unsigned) = number.as_u64() {
                    hasher.write_u8(3);
                    hasher.write_u64(unsigned);
                } else if let Some(signed) = number.as_i64() {
                    hasher.write_u8(4);
                    hasher.write_i64(signed);
                } else {
                    hasher.write_u8(5);
                    hasher.write_u64(number.as_f64().unwrap_or(f64::NAN).to_bits());
                }
            }
            Node::String(text) => {
                hasher.write_u8(6);
                feed_str(hasher, text);
            }
            Node::List(items) => {
                hasher.write_u8(7);
                hasher.write_usize(items.len());
                for item in items {
                    item.feed(hasher);
                }
            }
            Node::Map(entries) => {
                hasher.write_u8(8);
                hasher.write_usize(entries.len());
                for (key, value) in entries {
                    feed_str(hasher, key);
                    value.feed(hasher);
                }
            }
        }
    }
}

/// The digest of some bytes (an item's JSON), under the same key as nodes'.
pub fn digest_bytes(bytes: &[u8]) -> Digest {
    let mut hasher = digest_hasher();
    hasher.write(bytes);
    hasher.finish128().as_u128()
}

fn digest_hasher() -> SipHasher13 {
    static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
    let (key0, key1) = *KEYS.get_or_init(|| (rand::random(), rand::random()));
    SipHasher13::new_with_keys(key0, key1)
}

fn feed_str(hasher: &mut SipHasher13, text: &str) {
    hasher.write_usize(text.len());
    hasher.write(text.as_bytes());
}

/// The value under `key` in sorted map entries.
pub fn lookup<'a>(entries: &'a [(Name, Node)], key: &str) -> Option<&'a Node> {
    position(entries, key).map(|index| &entries[index].1)
}

/// Where `key` is in sorted map entries.
pub fn position(entries: &[(Name, Node)], key: &str) -> Option<usize> {
    entries
        .binary_search_by(|(name, _)| name.as_ref().cmp(key))
        .ok()
}

impl Default for Node {
    /// An empty map.
    fn default() -> Node {
        Node::Map(Box::new([]))
    }
}

impl From<Map<String, Value>> for Node {
    fn from(map: Map<String, Value>) -> Node {
        Node::sorted_map(
            map.iter()
                .map(|(key, value)| (field_name(key), Node::from_value(value)))
                .collect(),
        )
    }
}

/// `key` as a static name where it is a field name of the schema, else owned.
fn field_name(key: &str) -> Name {
    name_in(key, crate::model::schema::field_names())
}

/// `key` as the static name in `known` (sorted) where it is there, else owned.
fn name_in(key: &str, known: &'static [&'static str]) -> Name {
    match known.binary_search(&key) {
        Ok(index) => Name::Borrowed(known[index]),
        Err(_) => Name::Owned(key.to_string()),
    }
}

/// A map of strings (attributes, tags) from key-value pairs in any order; of a key given twice
/// the last value stands. Keys found in `known` (sorted) are held as its static names, not
/// allocated one per map.
pub fn string_map<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    known: &'static [&'static str],
) -> Node {
    let mut entries: Vec<(Name, Node)> = pairs
        .into_iter()
        .map(|(key, value)| (name_in(key, known), Node::String(CompactString::new(value))))
        .collect();
    // Stable: equal keys stay in the order given.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut unique: Vec<(Name, Node)> = Vec::with_capacity(entries.len());
    for entry in entries {
        match unique.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => unique.push(entry),
        }
    }
    Node::sorted_map(unique)
}

impl Node {
    /// A map's entries as a `serde_json::Map`; empty for anything else.
    pub fn to_object(&self) -> Map<String, Value> {
        to_map(self.as_map().unwrap_or_default())
    }
}

/// Map entries as a `serde_json::Map`.
pub fn to_map(entries: &[(Name, Node)]) -> Map<String, Value> {
    entries
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_value()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_string_map_is_sorted_keeps_the_last_of_a_key_and_names_known_keys_statically() {
        const KNOWN: &[&str] = &["a.enabled", "z.seconds"];
        let map = string_map(
            [
                ("z.seconds", "60"),
                ("custom", "x"),
                ("a.enabled", "false"),
                ("z.seconds", "30"),
            ],
            KNOWN,
        );
        assert_eq!(
            map.to_value(),
            json!({"a.enabled": "false", "custom": "x", "z.seconds": "30"})
        );
        let entries = map.as_map().unwrap();
        assert!(matches!(&entries[0].0, Name::Borrowed(name) if std::ptr::eq(*name, KNOWN[0])));
        assert!(matches!(entries[1].0, Name::Owned(_)));
        // The same value as the map built from JSON, digest included.
        let from_json = Node::from_value(&map.to_value());
        assert_eq!(map, from_json);
        assert_eq!(map.digest(), from_json.digest());
    }

    #[test]
    fn schema_field_names_are_held_static_and_other_keys_owned() {
        let names = crate::model::schema::field_names();
        assert!(names.windows(2).all(|pair| pair[0] < pair[1]));
        for name in [
            "health_check",
            "interval_seconds",
            "target_group_arn",
            "forward_config",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        let node = Node::from_value(&json!({"health_check": {"path": "/"}, "custom-key": 1}));
        let entries = node.as_map().unwrap();
        assert!(matches!(entries[0].0, Name::Owned(_)));
        assert!(matches!(entries[1].0, Name::Borrowed("health_check")));
        assert!(matches!(
            node.get("health_check").unwrap().as_map().unwrap()[0].0,
            Name::Borrowed("path")
        ));
    }

    #[test]
    fn a_value_round_trips_and_keys_are_looked_up() {
        let value = json!({"b": [1, 2.5, "x", null, true], "a": {"z": {}, "y": []}, "c": -3});
        let node = Node::from_value(&value);
        assert_eq!(node.to_value(), value);
        assert_eq!(node.get("c"), Some(&Node::Number((-3).into())));
        assert!(node.get("a").unwrap().get("z").unwrap().is_empty());
        assert_eq!(node.get("missing"), None);
        assert_eq!(node.get("b").unwrap().get("0"), None);
    }

    #[test]
    fn static_and_owned_keys_compare_equal() {
        let owned = Node::sorted_map(vec![(Name::Owned("port".into()), Node::Bool(true))]);
        let borrowed = Node::sorted_map(vec![(Name::Borrowed("port"), Node::Bool(true))]);
        assert_eq!(owned, borrowed);
    }

    #[test]
    fn digests_differ_where_nodes_differ() {
        let values = [
            json!(null),
            json!(false),
            json!(true),
            json!(1),
            json!(1.0),
            json!(-1),
            json!(""),
            json!("1"),
            json!([]),
            json!({}),
            json!(["a", "b"]),
            json!(["ab"]),
            json!(["b", "a"]),
            json!({"a": "b"}),
            json!({"ab": ""}),
            json!({"a": ["b"]}),
            json!([{"a": "b"}]),
        ];
        let digests: Vec<Digest> = values
            .iter()
            .map(|v| Node::from_value(v).digest())
            .collect();
        for (i, a) in digests.iter().enumerate() {
            for (j, b) in digests.iter().enumerate() {
                assert_eq!(a == b, i == j, "{} against {}", values[i], values[j]);
            }
        }
        // The same content held with static or owned keys, built twice: one digest.
        let owned = Node::sorted_map(vec![(Name::Owned("port".into()), Node::Bool(true))]);
        let borrowed = Node::sorted_map(vec![(Name::Borrowed("port"), Node::Bool(true))]);
        assert_eq!(owned.digest(), borrowed.digest());
    }

    #[test]
    fn a_node_is_small() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
    }
}
