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
use std::sync::{Arc, OnceLock};

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

/// The digest of what `feed` writes, under the same key as nodes'.
pub fn digest_with(feed: impl FnOnce(&mut dyn Hasher)) -> Digest {
    let mut hasher = digest_hasher();
    feed(&mut hasher);
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

/// A node packed into one allocation of bytes: what a value held for a long time (a deep read
/// kept from one cycle to the next) costs, against a tree of allocations for every map, list
/// and long string. It is read back with [`Unpacker`] when it is needed, and the node read
/// back equals the one packed (digest included).
///
/// The encoding is lbrecon's own and lives only in memory: one tag byte per value, lengths as
/// variable-length integers before contents, and names that are static names of the schema or
/// documented attribute keys written as their index in [`static_names`].
///
/// Shared, not copied, when cloned (a record kept from one scan to the next is both the last
/// scan's and this one's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packed(Arc<[u8]>);

impl Packed {
    /// The bytes held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes, as [`Packer::finish`] made them.
    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Bytes to read as packed values, for the tests of what reads them.
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: &[u8]) -> Packed {
        Packed(bytes.into())
    }

    /// Whether two are one allocation, not equal copies.
    #[cfg(test)]
    pub(crate) fn shares(&self, other: &Packed) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A reader from the first value packed.
    pub fn unpacker(&self) -> Unpacker<'_> {
        Unpacker { bytes: &self.0 }
    }
}

/// One node packed: fields held for a whole cycle (the presence pass's) at a fraction of their
/// tree's size, unpacked where they are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedNode(Packed);

impl PackedNode {
    pub fn new(node: &Node) -> PackedNode {
        let mut packer = Packer::new();
        packer.node(node);
        PackedNode(packer.finish())
    }

    /// The node packed; `None` only for bytes [`PackedNode::new`] did not write.
    pub fn unpack(&self) -> Option<Node> {
        let mut from = self.0.unpacker();
        from.node().filter(|_| from.is_done())
    }
}

impl Default for PackedNode {
    /// An empty map.
    fn default() -> PackedNode {
        PackedNode::new(&Node::default())
    }
}

impl From<Node> for PackedNode {
    fn from(node: Node) -> PackedNode {
        PackedNode::new(&node)
    }
}

impl From<Map<String, Value>> for PackedNode {
    fn from(map: Map<String, Value>) -> PackedNode {
        PackedNode::new(&Node::from(map))
    }
}

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UNSIGNED: u8 = 3;
const SIGNED: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const LIST: u8 = 7;
const MAP: u8 = 8;

/// Every name a node may hold as a static one, sorted: the schema's field names and the
/// documented attribute keys. A packed name found here is written as its index.
pub fn static_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = crate::model::schema::field_names().to_vec();
        names.extend_from_slice(crate::model::schema::ATTRIBUTE_KEYS);
        names.sort_unstable();
        names.dedup();
        names
    })
}

/// Writes values into a [`Packed`].
#[derive(Debug, Default)]
pub struct Packer {
    bytes: Vec<u8>,
}

impl Packer {
    pub fn new() -> Packer {
        Packer::default()
    }

    /// A count (of entries, items, bytes).
    pub fn count(&mut self, mut value: usize) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    pub fn flag(&mut self, flag: bool) {
        self.bytes.push(u8::from(flag));
    }

    pub fn text(&mut self, text: &str) {
        self.count(text.len());
        self.bytes.extend_from_slice(text.as_bytes());
    }

    fn name(&mut self, name: &str) {
        match static_names().binary_search(&name) {
            Ok(index) => self.count(index << 1),
            Err(_) => {
                self.count((name.len() << 1) | 1);
                self.bytes.extend_from_slice(name.as_bytes());
            }
        }
    }

    pub fn node(&mut self, node: &Node) {
        match node {
            Node::Null => self.bytes.push(NULL),
            Node::Bool(flag) => self.bytes.push(if *flag { TRUE } else { FALSE }),
            Node::Number(number) => {
                if let Some(unsigned) = number.as_u64() {
                    self.bytes.push(UNSIGNED);
                    self.bytes.extend_from_slice(&unsigned.to_le_bytes());
                } else if let Some(signed) = number.as_i64() {
                    self.bytes.push(SIGNED);
                    self.bytes.extend_from_slice(&signed.to_le_bytes());
                } else {
                    self.bytes.push(FLOAT);
                    let float = number.as_f64().unwrap_or(f64::NAN);
                    self.bytes.extend_from_slice(&float.to_le_bytes());
                }
            }
            Node::String(text) => {
                self.bytes.push(STRING);
                self.text(text);
            }
            Node::List(items) => {
                self.bytes.push(LIST);
                self.count(items.len());
                for item in items {
                    self.node(item);
                }
            }
            Node::Map(entries) => {
                self.bytes.push(MAP);
                self.count(entries.len());
                for (name, value) in entries {
                    self.name(name);
                    self.node(value);
                }
            }
        }
    }

    pub fn finish(self) -> Packed {
        Packed(self.bytes.into())
    }
}

/// Reads back what a [`Packer`] wrote, in the order it was written. Every read is `None` past
/// the end or on bytes that do not read as what was asked: never a panic.
#[derive(Debug)]
pub struct Unpacker<'a> {
    bytes: &'a [u8],
}

impl<'a> Unpacker<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(taken)
    }

    fn eight(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }

    pub fn count(&mut self) -> Option<usize> {
        let mut value: usize = 0;
        for shift in (0..usize::BITS).step_by(7) {
            let byte = self.byte()?;
            value |= usize::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    pub fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub fn text(&mut self) -> Option<&'a str> {
        let len = self.count()?;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn name(&mut self) -> Option<Name> {
        let code = self.count()?;
        if code & 1 == 0 {
            static_names()
                .get(code >> 1)
                .map(|name| Name::Borrowed(*name))
        } else {
            let bytes = self.take(code >> 1)?;
            Some(Name::Owned(std::str::from_utf8(bytes).ok()?.to_string()))
        }
    }

    pub fn node(&mut self) -> Option<Node> {
        Some(match self.byte()? {
            NULL => Node::Null,
            FALSE => Node::Bool(false),
            TRUE => Node::Bool(true),
            UNSIGNED => Node::Number(u64::from_le_bytes(self.eight()?).into()),
            SIGNED => Node::Number(i64::from_le_bytes(self.eight()?).into()),
            FLOAT => Node::Number(Number::from_f64(f64::from_le_bytes(self.eight()?))?),
            STRING => Node::String(CompactString::new(self.text()?)),
            LIST => {
                let len = self.count()?;
                // Each item takes a byte at least: a count beyond the bytes left is not one
                // this packer wrote.
                if len > self.bytes.len() {
                    return None;
                }
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.node()?);
                }
                Node::List(items.into_boxed_slice())
            }
            MAP => {
                let len = self.count()?;
                if len > self.bytes.len() {
                    return None;
                }
                let mut entries = Vec::with_capacity(len);
                for _ in 0..len {
                    let name = self.name()?;
                    entries.push((name, self.node()?));
                }
                if !entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
                    return None;
                }
                Node::Map(entries.into_boxed_slice())
            }
            _ => return None,
        })
    }

    /// Whether everything packed has been read.
    pub fn is_done(&self) -> bool {
        self.bytes.is_empty()
    }
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
    fn a_packed_node_reads_back_equal_with_its_digest_and_names() {
        let values = [
            json!(null),
            json!({"health_check": {"path": "/", "port": "traffic-port"}, "custom-key": [1, -2, 2.5, u64::MAX, i64::MIN]}),
            json!({"idle_timeout.timeout_seconds": "60", "a.new.attribute": "", "ünïcode": "✓"}),
            json!([
                [],
                {},
                "",
                "a string longer than twenty-four bytes, held on the heap",
                true,
                false
            ]),
        ];
        for value in &values {
            let node = Node::from_value(value);
            let mut packer = Packer::new();
            packer.node(&node);
            packer.text("after");
            packer.count(300);
            packer.flag(true);
            let packed = packer.finish();
            let mut unpacker = packed.unpacker();
            let read = unpacker.node().unwrap();
            assert_eq!(read, node, "{value}");
            assert_eq!(read.digest(), node.digest());
            assert_eq!(read.to_value(), *value);
            assert_eq!(unpacker.text(), Some("after"));
            assert_eq!(unpacker.count(), Some(300));
            assert_eq!(unpacker.flag(), Some(true));
            assert!(unpacker.is_done());
        }
        // Static names come back static (no allocation per key), others owned.
        let node = Node::from_value(&json!({"health_check": {}, "custom-key": 1}));
        let mut packer = Packer::new();
        packer.node(&node);
        let packed = packer.finish();
        let read = packed.unpacker().node().unwrap();
        let entries = read.as_map().unwrap();
        assert!(matches!(entries[0].0, Name::Owned(_)));
        assert!(matches!(entries[1].0, Name::Borrowed("health_check")));
        // Smaller than its JSON.
        assert!(packed.len() < serde_json::to_string(&node.to_value()).unwrap().len());
        // One node alone, as presence fields are held.
        assert_eq!(PackedNode::from(node.clone()).unpack(), Some(node));
        assert_eq!(PackedNode::default().unpack(), Some(Node::default()));
        assert_eq!(PackedNode(Packed::from_bytes(&[0, 0])).unpack(), None);
    }

    #[test]
    fn bytes_that_are_not_a_packed_node_read_as_none_never_a_panic() {
        let node =
            Node::from_value(&json!({"listeners": [{"port": 80, "rules": ["x", null, 1.5]}]}));
        let mut packer = Packer::new();
        packer.node(&node);
        let packed = packer.finish();
        for len in 0..packed.len() {
            let cut = Packed(packed.0[..len].into());
            assert_eq!(cut.unpacker().node(), None, "cut at {len}");
        }
        for garbage in [
            &[9u8][..],
            &[
                7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            &[6, 2, 0xff, 0xfe],
            &[8, 2, 1, 0, 1, 0],
        ] {
            assert_eq!(
                Packed(garbage.into()).unpacker().node(),
                None,
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn static_names_hold_the_schema_and_the_attribute_keys_sorted() {
        let names = static_names();
        assert!(names.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(names.contains(&"health_check") && names.contains(&"routing.http2.enabled"));
    }

    #[test]
    fn a_node_is_small() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
    }
}
