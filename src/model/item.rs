//! DynamoDB items as plain data, independent of the SDK.
//!
//! An [`Item`] keeps every attribute with its exact DynamoDB type, so snapshots and restore can
//! write an item back verbatim. It serializes as DynamoDB JSON (`{"S": "web"}`), the format the
//! AWS CLI and DynamoDB exports use. [`to_json`] turns an attribute value into plain JSON for the
//! load-balancer document, refusing what a document cannot hold.

use std::collections::BTreeMap;
use std::hash::Hasher;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::model::node::{Digest, digest_with};

/// One DynamoDB item: attribute name to value.
pub type Item = BTreeMap<String, AttrValue>;

/// One DynamoDB attribute value with its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttrValue {
    #[serde(rename = "S")]
    S(String),
    /// A number, kept as DynamoDB's decimal string so no precision is lost.
    #[serde(rename = "N")]
    N(String),
    #[serde(rename = "B", with = "base64_bytes")]
    B(Vec<u8>),
    #[serde(rename = "BOOL")]
    Bool(bool),
    #[serde(rename = "NULL")]
    Null(bool),
    #[serde(rename = "M")]
    M(BTreeMap<String, AttrValue>),
    #[serde(rename = "L")]
    L(Vec<AttrValue>),
    #[serde(rename = "SS")]
    Ss(Vec<String>),
    #[serde(rename = "NS")]
    Ns(Vec<String>),
    #[serde(rename = "BS", with = "base64_list")]
    Bs(Vec<Vec<u8>>),
}

/// Whether two items hold the same values: sets (`SS`, `NS`, `BS`) compare as sets, since a
/// scan and a stream image may list a set's members in different orders.
pub fn same_item(a: &Item, b: &Item) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(key, value)| b.get(key).is_some_and(|other| value.same_as(other)))
}

/// An item as the recovery check compares it: each attribute's name with the digest of its
/// value, by name. Two items are [`same_item`] exactly when their digests are equal (sets are
/// digested as sets), and a digest takes 16 bytes where the value's tree takes hundreds.
pub type Digests = Box<[(Box<str>, Digest)]>;

/// The [`Digests`] of an item.
pub fn digests(item: &Item) -> Digests {
    item.iter()
        .map(|(name, value)| {
            let digest = digest_with(|hasher| value.feed(hasher));
            (name.as_str().into(), digest)
        })
        .collect()
}

impl AttrValue {
    /// Writes the value into `hasher` unambiguously: a tag per type, lengths before contents,
    /// a set's members sorted and each once, so that two values [`AttrValue::same_as`] each
    /// other write the same bytes.
    fn feed(&self, hasher: &mut dyn Hasher) {
        fn bytes(hasher: &mut dyn Hasher, bytes: &[u8]) {
            hasher.write_usize(bytes.len());
            hasher.write(bytes);
        }
        fn set<T: AsRef<[u8]> + Ord>(hasher: &mut dyn Hasher, members: &[T]) {
            let mut sorted: Vec<&T> = members.iter().collect();
            sorted.sort();
            sorted.dedup();
            hasher.write_usize(sorted.len());
            for member in sorted {
                bytes(hasher, member.as_ref());
            }
        }
        match self {
            AttrValue::S(text) => {
                hasher.write_u8(0);
                bytes(hasher, text.as_bytes());
            }
            AttrValue::N(number) => {
                hasher.write_u8(1);
                bytes(hasher, number.as_bytes());
            }
            AttrValue::B(data) => {
                hasher.write_u8(2);
                bytes(hasher, data);
            }
            AttrValue::Bool(flag) => hasher.write_u8(3 + u8::from(*flag)),
            AttrValue::Null(flag) => hasher.write_u8(5 + u8::from(*flag)),
            AttrValue::M(map) => {
                hasher.write_u8(7);
                hasher.write_usize(map.len());
                for (key, value) in map {
                    bytes(hasher, key.as_bytes());
                    value.feed(hasher);
                }
            }
            AttrValue::L(list) => {
                hasher.write_u8(8);
                hasher.write_usize(list.len());
                for value in list {
                    value.feed(hasher);
                }
            }
            AttrValue::Ss(members) => {
                hasher.write_u8(9);
                set(hasher, members);
            }
            AttrValue::Ns(members) => {
                hasher.write_u8(10);
                set(hasher, members);
            }
            AttrValue::Bs(members) => {
                hasher.write_u8(11);
                set(hasher, members);
            }
        }
    }

    /// Whether two values are the same, sets compared as sets.
    pub fn same_as(&self, other: &AttrValue) -> bool {
        fn sorted<T: Ord + Clone>(list: &[T]) -> Vec<T> {
            let mut list = list.to_vec();
            list.sort();
            list.dedup();
            list
        }
        match (self, other) {
            (AttrValue::Ss(a), AttrValue::Ss(b)) | (AttrValue::Ns(a), AttrValue::Ns(b)) => {
                sorted(a) == sorted(b)
            }
            (AttrValue::Bs(a), AttrValue::Bs(b)) => sorted(a) == sorted(b),
            (AttrValue::M(a), AttrValue::M(b)) => same_item(a, b),
            (AttrValue::L(a), AttrValue::L(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.same_as(b))
            }
            (a, b) => a == b,
        }
    }

    /// The DynamoDB type name (`S`, `N`, `M`, ...), for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::B(_) => "B",
            AttrValue::Bool(_) => "BOOL",
            AttrValue::Null(_) => "NULL",
            AttrValue::M(_) => "M",
            AttrValue::L(_) => "L",
            AttrValue::Ss(_) => "SS",
            AttrValue::Ns(_) => "NS",
            AttrValue::Bs(_) => "BS",
        }
    }

    /// The string of an `S` value.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            AttrValue::S(s) => Some(s),
            _ => None,
        }
    }
}

/// An item held between its read and the snapshot step as its DynamoDB JSON text: a tenth of
/// the memory of the tree, and the exact bytes a snapshot's content hash is taken over, so an
/// unchanged table is recognised without rebuilding any item.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    /// The `name` attribute where it is a string, else empty (how snapshots sort items).
    name: Box<str>,
    json: Box<str>,
}

impl StoredItem {
    pub fn new(item: &Item) -> StoredItem {
        StoredItem {
            name: item
                .get("name")
                .and_then(AttrValue::as_s)
                .unwrap_or("")
                .into(),
            json: serde_json::to_string(item)
                .expect("an item always serializes")
                .into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The item as DynamoDB JSON, exactly as `serde_json` writes an [`Item`].
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The item back as a tree.
    pub fn item(&self) -> Result<Item, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// Parses a DynamoDB number into a JSON number: an integer where it is one, else a float.
pub fn parse_number(text: &str) -> Option<Number> {
    let text = text.trim();
    if let Ok(int) = text.parse::<i64>() {
        return Some(Number::from(int));
    }
    let float: f64 = text.parse().ok()?;
    if !float.is_finite() {
        return None;
    }
    if float.fract() == 0.0 && float.abs() < 9.0e15 {
        return Some(Number::from(float as i64));
    }
    Number::from_f64(float)
}

/// Converts an attribute value into plain JSON. `path` names the value in the error, which says
/// why the value cannot be part of a document (binary data, a malformed number).
pub fn to_json(value: &AttrValue, path: &str) -> Result<Value, String> {
    Ok(match value {
        AttrValue::S(s) => Value::String(s.clone()),
        AttrValue::N(n) => {
            Value::Number(parse_number(n).ok_or_else(|| format!("{path}: {n:?} is not a number"))?)
        }
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Null(_) => Value::Null,
        AttrValue::M(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                out.insert(key.clone(), to_json(value, &format!("{path}.{key}"))?);
            }
            Value::Object(out)
        }
        AttrValue::L(list) => Value::Array(
            list.iter()
                .enumerate()
                .map(|(i, value)| to_json(value, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        AttrValue::Ss(list) => Value::Array(list.iter().cloned().map(Value::String).collect()),
        AttrValue::Ns(list) => Value::Array(
            list.iter()
                .map(|n| {
                    parse_number(n)
                        .map(Value::Number)
                        .ok_or_else(|| format!("{path}: {n:?} is not a number"))
                })
                .collect::<Result<_, _>>()?,
        ),
        AttrValue::B(_) | AttrValue::Bs(_) => {
            return Err(format!(
                "{path}: binary data ({}) has no place in a load-balancer document",
                value.type_name()
            ));
        }
    })
}

/// Converts plain JSON into an attribute value (maps as `M`, lists as `L`), as `adopt` writes a
/// document into the `config` attribute.
pub fn from_json(value: &Value) -> AttrValue {
    match value {
        Value::Null => AttrValue::Null(true),
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => AttrValue::N(n.to_string()),
        Value::String(s) => AttrValue::S(s.clone()),
        Value::Array(list) => AttrValue::L(list.iter().map(from_json).collect()),
        Value::Object(map) => AttrValue::M(
            map.iter()
                .map(|(key, value)| (key.clone(), from_json(value)))
                .collect(),
        ),
    }
}

mod base64_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

mod base64_list {
    use super::*;

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        let encoded: Vec<String> = list
            .iter()
            .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
            .collect();
        encoded.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        let list = Vec::<String>::deserialize(deserializer)?;
        list.into_iter()
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_agree_exactly_where_items_are_the_same() {
        let items: Vec<Item> = [
            json!({"name": {"S": "a"}}),
            json!({"name": {"S": "a"}, "n": {"N": "1"}}),
            json!({"name": {"S": "a"}, "n": {"N": "1.0"}}),
            json!({"name": {"S": "a"}, "n": {"S": "1"}}),
            json!({"name": {"S": "a"}, "s": {"SS": ["x", "y"]}}),
            json!({"name": {"S": "a"}, "s": {"SS": ["y", "x", "x"]}}),
            json!({"name": {"S": "a"}, "s": {"SS": ["xy"]}}),
            json!({"name": {"S": "a"}, "s": {"NS": ["1", "2"]}}),
            json!({"name": {"S": "a"}, "l": {"L": [{"S": "x"}, {"S": "y"}]}}),
            json!({"name": {"S": "a"}, "l": {"L": [{"S": "y"}, {"S": "x"}]}}),
            json!({"name": {"S": "a"}, "m": {"M": {"k": {"BOOL": true}}}}),
            json!({"name": {"S": "a"}, "m": {"M": {"k": {"NULL": true}}}}),
            json!({"name": {"S": "a"}, "m": {"M": {"k": {"B": "AQI="}}}}),
            json!({"name": {"S": "a"}, "m": {"M": {"k": {"BS": ["AQI=", "AA=="]}}}}),
            json!({"name": {"S": "a"}, "m": {"M": {"k": {"BS": ["AA==", "AQI="]}}}}),
        ]
        .iter()
        .map(|value| serde_json::from_value(value.clone()).unwrap())
        .collect();
        for a in &items {
            for b in &items {
                assert_eq!(
                    digests(a) == digests(b),
                    same_item(a, b),
                    "{a:?} against {b:?}"
                );
            }
        }
    }
    use serde_json::json;

    #[test]
    fn numbers_keep_integers_as_integers() {
        assert_eq!(parse_number("443"), Some(Number::from(443)));
        assert_eq!(parse_number("10.0"), Some(Number::from(10)));
        assert_eq!(parse_number("1e2"), Some(Number::from(100)));
        assert_eq!(parse_number("0.5"), Number::from_f64(0.5));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number("NaN"), None);
    }

    #[test]
    fn json_conversion_names_the_bad_value() {
        let value = AttrValue::M(BTreeMap::from([(
            "listeners".to_string(),
            AttrValue::L(vec![AttrValue::B(vec![1, 2])]),
        )]));
        let err = to_json(&value, "config").unwrap_err();
        assert!(err.starts_with("config.listeners[0]"), "{err}");
    }

    #[test]
    fn items_round_trip_through_dynamodb_json() {
        let item: Item = BTreeMap::from([
            ("name".to_string(), AttrValue::S("web".into())),
            ("blob".to_string(), AttrValue::B(vec![0, 255])),
            (
                "set".to_string(),
                AttrValue::Ns(vec!["1".into(), "2.5".into()]),
            ),
            ("nothing".to_string(), AttrValue::Null(true)),
        ]);
        let text = serde_json::to_string(&item).unwrap();
        assert!(text.contains(r#""name":{"S":"web"}"#), "{text}");
        let back: Item = serde_json::from_str(&text).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn json_round_trips_through_attribute_values() {
        let doc =
            json!({"name": "web", "listeners": [{"port": 443, "ssl_policy": null}], "ok": true});
        assert_eq!(to_json(&from_json(&doc), "config").unwrap(), doc);
    }
}
