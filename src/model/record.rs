//! Records: the state table's items read as load-balancer documents (docs/architecture.md#state-table).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::model::document::Document;
use crate::model::item::{AttrValue, Item, to_json};
use crate::model::node::{Digest, Node, digest_bytes};
use serde::{Deserialize, Serialize};

/// The state table's partition key.
pub const NAME_ATTRIBUTE: &str = "name";
/// The attribute that holds the load-balancer document.
pub const CONFIG_ATTRIBUTE: &str = "config";

/// How the reason of a record that manages nothing begins: a `config` that is empty or holds
/// no field but `name`, the way configs were emptied in the Google Cloud load-balancing
/// incident of September 2023. Such a record compares nothing, so it would read as `in_sync`
/// for ever; it is an invalid record instead, and counts toward the guard as a lost one.
pub const EMPTIED: &str = "emptied: manages nothing";

/// What a record must hold to be valid beyond the document's schema (docs/architecture.md#state-table, `[records]`).
/// Every read of a record (the scan, a restore's plan) takes the same rules, so a record is
/// valid or invalid the same way everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRules {
    /// Top-level document fields every record must hold (`records.required`).
    required: Vec<String>,
}

impl RecordRules {
    /// Rules that require the top-level fields `required` of every record. The names are
    /// checked against the document's fields when the config is validated.
    pub fn new<S: Into<String>>(required: impl IntoIterator<Item = S>) -> RecordRules {
        RecordRules {
            required: required.into_iter().map(Into::into).collect(),
        }
    }

    /// Why `document` (read from `config`) is not a valid record under these rules, if it is
    /// not: it manages nothing, or lacks a required field.
    fn judge(&self, config: &Value, document: &Document) -> Result<(), String> {
        let manages_something = document
            .fields()
            .iter()
            .any(|(field, _)| field.as_ref() != NAME_FIELD);
        if !manages_something {
            let what = match config.as_object() {
                Some(fields) if fields.is_empty() => "config is empty",
                Some(fields) if fields.keys().all(|field| field == NAME_FIELD) => {
                    "config holds no field but name"
                }
                // Only fields lbrecon does not know besides the name: nothing is compared.
                _ => "config holds no field but name that lbrecon knows",
            };
            return Err(format!("{EMPTIED}, {what}"));
        }
        let missing: Vec<String> = self
            .required
            .iter()
            .filter(|field| !document.holds(field))
            .map(|field| format!("{CONFIG_ATTRIBUTE}.{field}"))
            .collect();
        match missing.len() {
            0 => Ok(()),
            1 => Err(format!(
                "{}: missing, and records.required asks every record to hold it",
                missing[0]
            )),
            _ => Err(format!(
                "{}: missing, and records.required asks every record to hold them",
                missing.join(", ")
            )),
        }
    }
}

impl From<&RecordsConfig> for RecordRules {
    fn from(config: &RecordsConfig) -> RecordRules {
        RecordRules::new(config.required.iter().cloned())
    }
}

/// The document's own `name` field: a config holding only that manages nothing.
const NAME_FIELD: &str = "name";

/// The names of the valid records among `records`: what the guard counts as present.
pub fn valid_names<'a>(records: impl IntoIterator<Item = &'a Record>) -> BTreeSet<String> {
    records
        .into_iter()
        .filter(|record| record.is_valid())
        .map(|record| record.name.clone())
        .collect()
}

/// One item of the state table, read.
#[derive(Debug, Clone)]
pub struct Record {
    /// The load balancer's name (the item's key).
    pub name: String,
    /// The control plane's `version` of the item, where it is a number.
    pub version: Option<String>,
    /// The document, or why the item cannot be read as one.
    pub content: RecordContent,
    /// Unknown fields inside `config`, one line each.
    pub warnings: Vec<String>,
}

/// A record's document, or the reason it is an `invalid_record`.
#[derive(Debug, Clone)]
pub enum RecordContent {
    Valid(Document),
    /// A valid document held packed (see [`crate::model::node::Packed`]), unpacked where it is
    /// compared: what a record costs held from one scan to the next, or through a one-shot
    /// command's whole read.
    Packed(Packed),
    Invalid(String),
}

/// A valid document packed, with what it asks the deep pass to read.
#[derive(Debug, Clone)]
pub struct Packed {
    document: crate::model::node::Packed,
    wants: Wants,
}

/// What a record asks the deep pass to read beyond listeners, rules, attributes and tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wants {
    /// Listener keys (port, or `gateway`) whose record holds `additional_certificates`.
    pub additional_certificates: BTreeSet<String>,
    /// Target-group names whose record holds `targets`.
    pub targets: BTreeSet<String>,
}

impl Wants {
    fn of(document: &Document) -> Wants {
        Wants {
            additional_certificates: keys_holding(document, "listeners", "additional_certificates"),
            targets: keys_holding(document, "target_groups", "targets"),
        }
    }
}

/// The keys of a keyed list whose items hold `field`.
fn keys_holding(document: &Document, list: &str, field: &str) -> BTreeSet<String> {
    match document.get(list).and_then(Node::as_map) {
        Some(items) => items
            .iter()
            .filter(|(_, item)| item.get(field).is_some())
            .map(|(key, _)| key.to_string())
            .collect(),
        None => BTreeSet::new(),
    }
}

impl RecordContent {
    /// The document, or why there is none (the reason of an invalid record). A packed one is
    /// unpacked; only bytes the packer wrote are held, so that can fail only through a defect,
    /// and the record is then reported invalid with why, never compared as empty.
    pub fn document(&self) -> Result<Cow<'_, Document>, String> {
        match self {
            RecordContent::Valid(document) => Ok(Cow::Borrowed(document)),
            RecordContent::Packed(packed) => Document::unpack(&packed.document)
                .map(Cow::Owned)
                .ok_or_else(|| "the record could not be read again from memory".to_string()),
            RecordContent::Invalid(reason) => Err(reason.clone()),
        }
    }
}

impl Record {
    /// Reads one item under `rules`. It never fails: an item that is not a document, manages
    /// nothing or lacks a required field is an invalid record with the reason, and an item
    /// without a string `name` is named by what it has.
    pub fn from_item(item: &Item, position: usize, rules: &RecordRules) -> Record {
        Record::read(item, position, rules, false)
    }

    /// Reads one item as [`Record::from_item`] does, holding a valid document packed.
    pub fn from_item_packed(item: &Item, position: usize, rules: &RecordRules) -> Record {
        Record::read(item, position, rules, true)
    }

    fn read(item: &Item, position: usize, rules: &RecordRules, packed: bool) -> Record {
        let name = match item.get(NAME_ATTRIBUTE) {
            Some(AttrValue::S(name)) => name.clone(),
            Some(AttrValue::N(number)) => number.clone(),
            _ => format!("(item {position} has no string name)"),
        };
        let version = match item.get("version") {
            Some(AttrValue::N(version)) => Some(version.clone()),
            _ => None,
        };
        let mut warnings = Vec::new();
        let content = match parse_config(item, rules) {
            Ok(parsed) => {
                warnings = parsed.warnings;
                if packed {
                    RecordContent::Packed(Packed {
                        document: parsed.document.pack(),
                        wants: Wants::of(&parsed.document),
                    })
                } else {
                    RecordContent::Valid(parsed.document)
                }
            }
            Err(reason) => RecordContent::Invalid(reason),
        };
        Record {
            name,
            version,
            content,
            warnings,
        }
    }

    /// The document's tree, where the record is valid and not packed.
    pub fn document(&self) -> Option<&Document> {
        match &self.content {
            RecordContent::Valid(document) => Some(document),
            RecordContent::Packed(_) | RecordContent::Invalid(_) => None,
        }
    }

    /// Whether the record is a valid document.
    pub fn is_valid(&self) -> bool {
        !matches!(self.content, RecordContent::Invalid(_))
    }

    /// What a valid record asks the deep pass to read; `None` for an invalid one.
    pub fn wants(&self) -> Option<Cow<'_, Wants>> {
        match &self.content {
            RecordContent::Valid(document) => Some(Cow::Owned(Wants::of(document))),
            RecordContent::Packed(packed) => Some(Cow::Borrowed(&packed.wants)),
            RecordContent::Invalid(_) => None,
        }
    }
}

/// The records of the last complete scan, by the digest of their item's JSON. Reading an item
/// as a document (converting it, checking it against the schema, digesting its fields) is the
/// presence pass's largest cost in CPU; most items do not change between cycles, and an item
/// with the same JSON reads as the same record, so the daemon reads only the items that
/// changed. A record's document is shared, not copied.
#[derive(Debug)]
pub struct RecordCache {
    /// Boxed behind a count, so a table's slots (a power of two of them) stay small.
    last: HashMap<Digest, Arc<Record>>,
    scanning: HashMap<Digest, Arc<Record>>,
    /// Whether records are kept for the next scan; a one-shot command has none.
    keeps: bool,
}

impl Default for RecordCache {
    fn default() -> Self {
        RecordCache {
            last: HashMap::new(),
            scanning: HashMap::new(),
            keeps: true,
        }
    }
}

impl RecordCache {
    /// A cache that keeps nothing, for a command that scans once: every item is read, and no
    /// copy of its record is held beside the scan's.
    pub fn none() -> Self {
        RecordCache {
            keeps: false,
            ..RecordCache::default()
        }
    }

    /// The record of `item` (whose JSON is `json`) under `rules`, read again only if the last
    /// scan did not hold the same item. A cache is used with one set of rules (a target's
    /// reader keeps them for its life). An item without a name is named by its position, so it
    /// is always read.
    pub fn record(
        &mut self,
        item: &Item,
        json: &str,
        position: usize,
        rules: &RecordRules,
    ) -> Record {
        if !self.keeps
            || !matches!(
                item.get(NAME_ATTRIBUTE),
                Some(AttrValue::S(_) | AttrValue::N(_))
            )
        {
            return Record::from_item_packed(item, position, rules);
        }
        let digest = digest_bytes(json.as_bytes());
        let record = match self.last.get(&digest) {
            Some(record) => Arc::clone(record),
            None => Arc::new(Record::from_item_packed(item, position, rules)),
        };
        let read = Record::clone(&record);
        self.scanning.insert(digest, record);
        read
    }

    /// Whether records are kept for the next scan.
    pub fn keeps(&self) -> bool {
        self.keeps
    }

    /// Ends a scan: a complete one replaces what is kept; after a failed one the last complete
    /// scan's records stay.
    pub fn finish(&mut self, complete: bool) {
        if complete {
            self.last = std::mem::take(&mut self.scanning);
        } else {
            self.scanning.clear();
        }
    }

    /// How many records are kept.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// The item's `config` read as a document that `rules` accept.
fn parse_config(
    item: &Item,
    rules: &RecordRules,
) -> Result<crate::model::document::Parsed, String> {
    match item.get(NAME_ATTRIBUTE) {
        Some(AttrValue::S(_)) => {}
        Some(other) => {
            return Err(format!(
                "name is of type {}, not a string (S)",
                other.type_name()
            ));
        }
        None => return Err("the item has no name attribute".into()),
    }
    let config = match item.get(CONFIG_ATTRIBUTE) {
        None => return Err("config is missing".into()),
        Some(value @ AttrValue::M(_)) => value,
        Some(other) => {
            return Err(format!(
                "config is of type {}, not a map (M)",
                other.type_name()
            ));
        }
    };
    let json = to_json(config, CONFIG_ATTRIBUTE)?;
    let parsed = Document::parse(&json)?;
    rules.judge(&json, &parsed.document)?;
    Ok(parsed)
}

/// `[records]`: what every record of the state table must hold to be valid (docs/architecture.md#state-table).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// Top-level document fields every record must hold (`["type", "listeners"]`); a record
    /// without one is an invalid record whose reason names the field. None by default.
    #[serde(default)]
    pub required: Vec<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn item(pairs: Vec<(&str, AttrValue)>) -> Item {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn s(text: &str) -> AttrValue {
        AttrValue::S(text.into())
    }

    fn reason(record: &Record) -> &str {
        match &record.content {
            RecordContent::Invalid(reason) => reason,
            _ => panic!("{} should be invalid", record.name),
        }
    }

    fn scan(cache: &mut RecordCache, items: &[Item], complete: bool) -> Vec<Record> {
        let records = items
            .iter()
            .enumerate()
            .map(|(position, item)| {
                let json = serde_json::to_string(item).unwrap();
                cache.record(item, &json, position, &RecordRules::default())
            })
            .collect();
        cache.finish(complete);
        records
    }

    fn lb(name: &str, scheme: &str) -> Item {
        item(vec![
            ("name", s(name)),
            (
                "config",
                AttrValue::M(BTreeMap::from([("scheme".to_string(), s(scheme))])),
            ),
        ])
    }

    fn shares(a: &Record, b: &Record) -> bool {
        match (&a.content, &b.content) {
            (RecordContent::Packed(a), RecordContent::Packed(b)) => a.document.shares(&b.document),
            _ => panic!("the cache holds records packed"),
        }
    }

    #[test]
    fn an_unchanged_item_keeps_its_record_and_a_changed_one_is_read_again() {
        let mut cache = RecordCache::default();
        let first = scan(
            &mut cache,
            &[lb("a", "internal"), lb("b", "internal")],
            true,
        );
        assert_eq!(cache.len(), 2);
        let second = scan(
            &mut cache,
            &[lb("a", "internal"), lb("b", "internet-facing")],
            true,
        );
        assert!(shares(&first[0], &second[0]));
        assert!(!shares(&first[1], &second[1]));
        assert_eq!(
            second[1]
                .content
                .document()
                .unwrap()
                .get("scheme")
                .unwrap()
                .as_str(),
            Some("internet-facing")
        );
        // A failed scan keeps the last complete one's records.
        scan(&mut cache, &[], false);
        let third = scan(&mut cache, &[lb("a", "internal")], true);
        assert!(shares(&second[0], &third[0]));
        // Items gone from the table are not kept.
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_cache_for_one_scan_keeps_nothing() {
        let mut cache = RecordCache::none();
        let records = scan(&mut cache, &[lb("a", "internal")], true);
        assert_eq!(
            records[0]
                .content
                .document()
                .unwrap()
                .get("scheme")
                .unwrap()
                .as_str(),
            Some("internal")
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn an_item_without_a_name_is_read_at_its_position_every_time() {
        let mut cache = RecordCache::default();
        let nameless = item(vec![("config", AttrValue::M(BTreeMap::new()))]);
        scan(&mut cache, &[lb("a", "internal"), nameless.clone()], true);
        let records = scan(&mut cache, &[nameless], true);
        assert_eq!(records[0].name, "(item 0 has no string name)");
        assert!(cache.is_empty());
    }

    #[test]
    fn a_valid_item_is_a_document() {
        let record = Record::from_item(
            &item(vec![
                ("name", s("web")),
                ("version", AttrValue::N("7".into())),
                ("updated_at", s("2026-01-01T00:00:00Z")),
                ("owner", s("kept and ignored")),
                (
                    "config",
                    AttrValue::M(BTreeMap::from([
                        ("name".to_string(), s("web")),
                        ("scheme".to_string(), s("internal")),
                    ])),
                ),
            ]),
            0,
            &RecordRules::default(),
        );
        assert_eq!(record.name, "web");
        assert_eq!(record.version.as_deref(), Some("7"));
        assert_eq!(
            record.document().unwrap().to_keyed_value()["scheme"],
            "internal"
        );
    }

    #[test]
    fn bad_items_are_invalid_with_a_reason() {
        let cases = vec![
            (item(vec![("name", s("a"))]), "config is missing"),
            (
                item(vec![("name", s("a")), ("config", s("{}"))]),
                "config is of type S, not a map (M)",
            ),
            (
                item(vec![
                    ("name", s("a")),
                    (
                        "config",
                        AttrValue::M(BTreeMap::from([("listeners".to_string(), s("x"))])),
                    ),
                ]),
                "config.listeners: expected a list, found a string",
            ),
            (
                item(vec![
                    ("name", s("a")),
                    (
                        "config",
                        AttrValue::M(BTreeMap::from([(
                            "subnets".to_string(),
                            AttrValue::Bs(vec![vec![1]]),
                        )])),
                    ),
                ]),
                "config.subnets: binary data (BS) has no place in a load-balancer document",
            ),
        ];
        for (item, expected) in cases {
            assert_eq!(
                reason(&Record::from_item(&item, 0, &RecordRules::default())),
                expected
            );
        }
    }

    fn config(pairs: Vec<(&str, AttrValue)>) -> AttrValue {
        AttrValue::M(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn with_config(name: &str, config: AttrValue) -> Item {
        item(vec![
            ("name", s(name)),
            ("version", AttrValue::N("2".into())),
            ("config", config),
        ])
    }

    #[test]
    fn a_config_that_manages_nothing_is_invalid_either_way_it_is_read() {
        let cases = vec![
            (config(vec![]), "emptied: manages nothing, config is empty"),
            (
                config(vec![("name", s("a"))]),
                "emptied: manages nothing, config holds no field but name",
            ),
            (
                config(vec![("name", s("a")), ("owner_team", s("x"))]),
                "emptied: manages nothing, config holds no field but name that lbrecon knows",
            ),
        ];
        for rules in [RecordRules::default(), RecordRules::new(["listeners"])] {
            for (config, expected) in &cases {
                let emptied = with_config("a", config.clone());
                let tree = Record::from_item(&emptied, 0, &rules);
                let packed = Record::from_item_packed(&emptied, 0, &rules);
                // Emptied says more than a missing required field: it wins.
                assert_eq!(reason(&tree), *expected);
                assert_eq!(reason(&packed), *expected);
                assert!(reason(&tree).starts_with(EMPTIED));
                assert!(!tree.is_valid() && tree.wants().is_none());
                assert_eq!(tree.version.as_deref(), Some("2"));
            }
        }
        // One field beside the name is enough to manage something, even one that compares
        // nothing yet (a null names a field as having no value).
        for managed in [
            config(vec![("name", s("a")), ("scheme", s("internal"))]),
            config(vec![("tags", config(vec![]))]),
            config(vec![("name", s("a")), ("scheme", AttrValue::Null(true))]),
        ] {
            let record = Record::from_item(&with_config("a", managed), 0, &RecordRules::default());
            assert!(record.is_valid(), "{record:?}");
        }
    }

    #[test]
    fn required_fields_are_named_when_missing() {
        let tags_only = with_config(
            "a",
            config(vec![
                ("name", s("a")),
                ("tags", config(vec![("team", s("edge"))])),
            ]),
        );
        assert!(Record::from_item(&tags_only, 0, &RecordRules::default()).is_valid());
        let listeners = RecordRules::new(["listeners"]);
        for record in [
            Record::from_item(&tags_only, 0, &listeners),
            Record::from_item_packed(&tags_only, 0, &listeners),
        ] {
            assert_eq!(
                reason(&record),
                "config.listeners: missing, and records.required asks every record to hold it"
            );
        }
        let both = RecordRules::new(["type", "tags", "listeners"]);
        assert_eq!(
            reason(&Record::from_item(&tags_only, 0, &both)),
            "config.type, config.listeners: missing, and records.required asks every record to hold them"
        );
        // A record holding every required field is read as before.
        let full = with_config(
            "b",
            config(vec![
                ("type", s("application")),
                ("listeners", AttrValue::L(vec![])),
            ]),
        );
        let tree = Record::from_item(&full, 0, &RecordRules::new(["type", "listeners"]));
        assert!(tree.document().unwrap().holds("listeners"));
        assert!(
            Record::from_item_packed(&full, 0, &RecordRules::new(["type", "listeners"])).is_valid()
        );
    }

    #[test]
    fn a_cache_reads_under_the_rules_it_is_given() {
        let tags_only = with_config("a", config(vec![("tags", config(vec![]))]));
        let json = serde_json::to_string(&tags_only).unwrap();
        let mut cache = RecordCache::default();
        let rules = RecordRules::new(["listeners"]);
        assert!(!cache.record(&tags_only, &json, 0, &rules).is_valid());
        cache.finish(true);
        assert!(!cache.record(&tags_only, &json, 0, &rules).is_valid());
    }

    #[test]
    fn only_valid_records_are_named_valid() {
        let records: Vec<Record> = [
            with_config("kept", config(vec![("scheme", s("internal"))])),
            with_config("emptied", config(vec![])),
            with_config("named", config(vec![("name", s("named"))])),
            with_config("corrupt", s("text")),
        ]
        .iter()
        .map(|item| Record::from_item(item, 0, &RecordRules::default()))
        .collect();
        assert_eq!(valid_names(&records), BTreeSet::from(["kept".to_string()]));
    }

    #[test]
    fn an_item_without_a_string_name_is_still_reported() {
        let record = Record::from_item(
            &item(vec![("config", AttrValue::M(BTreeMap::new()))]),
            3,
            &RecordRules::default(),
        );
        assert_eq!(record.name, "(item 3 has no string name)");
        assert_eq!(reason(&record), "the item has no name attribute");
    }

    fn with_extras() -> Item {
        let config = serde_json::json!({
            "scheme": "internal",
            "listeners": [{"port": 443, "protocol": "HTTPS", "additional_certificates": ["arn:cert"]},
                          {"port": 80, "protocol": "HTTP"}],
            "target_groups": [{"name": "web", "targets": [{"id": "i-1"}]}, {"name": "api"}],
        });
        item(vec![
            ("name", s("a")),
            ("config", crate::model::item::from_json(&config)),
        ])
    }

    #[test]
    fn a_packed_record_reads_back_as_the_same_document_and_asks_for_the_same_reads() {
        let extras = with_extras();
        let tree = Record::from_item(&extras, 0, &RecordRules::default());
        let packed = Record::from_item_packed(&extras, 0, &RecordRules::default());
        assert!(matches!(packed.content, RecordContent::Packed(_)));
        assert!(packed.is_valid() && packed.document().is_none());
        let read_back = packed.content.document().unwrap();
        assert_eq!(&*read_back, tree.document().unwrap());
        assert_eq!(packed.wants(), tree.wants());
        let wants = packed.wants().unwrap();
        assert_eq!(
            wants.additional_certificates,
            BTreeSet::from(["443".to_string()])
        );
        assert_eq!(wants.targets, BTreeSet::from(["web".to_string()]));
        // An invalid item is invalid either way, with the same reason.
        let bad = item(vec![("name", s("b")), ("config", s("text"))]);
        assert_eq!(
            reason(&Record::from_item_packed(&bad, 0, &RecordRules::default())),
            reason(&Record::from_item(&bad, 0, &RecordRules::default()))
        );
        assert!(
            Record::from_item_packed(&bad, 0, &RecordRules::default())
                .wants()
                .is_none()
        );
    }

    #[test]
    fn a_packed_record_that_cannot_be_read_again_says_why_and_is_not_a_document() {
        let content = RecordContent::Packed(Packed {
            document: crate::model::node::Packed::from_bytes(&[42]),
            wants: Wants::default(),
        });
        let err = content.document().unwrap_err();
        assert_eq!(err, "the record could not be read again from memory");
    }
}
