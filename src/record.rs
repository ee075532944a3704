//! Records: the state table's items read as load-balancer documents (SPEC 3).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use crate::document::Document;
use crate::item::{AttrValue, Item, to_json};
use crate::node::{Digest, Name, Node, digest_bytes};

/// The state table's partition key.
pub const NAME_ATTRIBUTE: &str = "name";
/// The attribute that holds the load-balancer document.
pub const CONFIG_ATTRIBUTE: &str = "config";

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
    Valid(Arc<RecordDocument>),
    Invalid(String),
}

/// A valid record's document as it is held from one scan to the next: the digest of each
/// top-level field, what the deep pass needs to know of it, and the checked document as compact
/// JSON. The document as a tree takes several times its JSON's size, and the diff needs it only
/// where a field's digest differs from the live one's, so the tree is built from the JSON then,
/// and kept for the next diff (a drifted record is likely to be drifted in the next cycle too).
#[derive(Debug)]
pub struct RecordDocument {
    /// Each top-level field's name and digest, sorted by name.
    fields: Box<[(Name, Digest)]>,
    /// The same for the fields the presence pass reads (SPEC 12), target groups without the
    /// fields that need a deep read: what is compared when a deep read failed.
    presence: Box<[(Name, Digest)]>,
    /// The listeners (by key) whose record holds `additional_certificates`.
    additional_certificates: BTreeSet<String>,
    /// The target groups (by name) whose record holds `targets`.
    targets: BTreeSet<String>,
    /// The checked document in keyed form, as JSON.
    json: Box<str>,
    tree: OnceLock<Document>,
}

impl RecordDocument {
    fn new(document: Document) -> RecordDocument {
        let digests = |document: &Document| -> Box<[(Name, Digest)]> {
            document
                .digested_fields()
                .map(|(key, _, digest)| (key.clone(), digest))
                .collect()
        };
        RecordDocument {
            fields: digests(&document),
            presence: digests(&document.presence_only()),
            additional_certificates: keys_holding(
                &document,
                "listeners",
                "additional_certificates",
            ),
            targets: keys_holding(&document, "target_groups", "targets"),
            json: document.to_keyed_value().to_string().into(),
            tree: OnceLock::new(),
        }
    }

    /// Whether a diff against `live` can find anything: some field's digest differs from the
    /// live field's, or the live document lacks it. Of the presence fields alone when the live
    /// document holds no deep read.
    pub fn differs_from(&self, live: &Document, deep_fresh: bool) -> bool {
        let fields = if deep_fresh {
            &self.fields
        } else {
            &self.presence
        };
        fields.iter().any(|(key, digest)| {
            live.digested(key)
                .is_none_or(|(_, live_digest)| live_digest != *digest)
        })
    }

    /// The document as a tree, built from its JSON the first time it is asked for.
    pub fn tree(&self) -> Result<&Document, String> {
        if let Some(tree) = self.tree.get() {
            return Ok(tree);
        }
        let value: serde_json::Value = serde_json::from_str(&self.json)
            .map_err(|err| format!("the record's document no longer reads back: {err}"))?;
        let tree = Document::from_keyed(Node::from_value(&value))?;
        Ok(self.tree.get_or_init(|| tree))
    }

    /// The listeners (by key: port, or `gateway`) whose record holds `additional_certificates`.
    pub fn listeners_with_additional_certificates(&self) -> &BTreeSet<String> {
        &self.additional_certificates
    }

    /// The target groups (by name) whose record holds `targets`.
    pub fn target_groups_with_targets(&self) -> &BTreeSet<String> {
        &self.targets
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

impl Record {
    /// Reads one item. It never fails: an item that is not a document is an invalid record
    /// with the reason, and an item without a string `name` is named by what it has.
    pub fn from_item(item: &Item, position: usize) -> Record {
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
        let content = match parse_config(item) {
            Ok(parsed) => {
                warnings = parsed.warnings;
                RecordContent::Valid(Arc::new(RecordDocument::new(parsed.document)))
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

    /// The document, where the record is valid.
    pub fn document(&self) -> Option<&RecordDocument> {
        match &self.content {
            RecordContent::Valid(document) => Some(document),
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
    last: HashMap<Digest, Record>,
    scanning: HashMap<Digest, Record>,
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

    /// The record of `item` (whose JSON is `json`), read again only if the last scan did not
    /// hold the same item. An item without a name is named by its position, so it is always
    /// read.
    pub fn record(&mut self, item: &Item, json: &str, position: usize) -> Record {
        if !self.keeps
            || !matches!(
                item.get(NAME_ATTRIBUTE),
                Some(AttrValue::S(_) | AttrValue::N(_))
            )
        {
            return Record::from_item(item, position);
        }
        let digest = digest_bytes(json.as_bytes());
        let record = match self.last.get(&digest) {
            Some(record) => record.clone(),
            None => Record::from_item(item, position),
        };
        self.scanning.insert(digest, record.clone());
        record
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

fn parse_config(item: &Item) -> Result<crate::document::Parsed, String> {
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
    Document::parse(&json)
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
            RecordContent::Valid(_) => panic!("{} should be invalid", record.name),
        }
    }

    fn scan(cache: &mut RecordCache, items: &[Item], complete: bool) -> Vec<Record> {
        let records = items
            .iter()
            .enumerate()
            .map(|(position, item)| {
                let json = serde_json::to_string(item).unwrap();
                cache.record(item, &json, position)
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
        std::ptr::eq(a.document().unwrap(), b.document().unwrap())
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
                .document()
                .unwrap()
                .tree()
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
                .document()
                .unwrap()
                .tree()
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

    fn document(value: serde_json::Value) -> Document {
        Document::parse(&value).unwrap().document
    }

    fn full_config() -> serde_json::Value {
        serde_json::json!({
            "name": "web", "type": "application", "scheme": "internal",
            "subnets": ["subnet-b", "subnet-a"], "attributes": {"idle_timeout.timeout_seconds": "60"},
            "tags": {"team": "edge"},
            "listeners": [{"port": 443, "protocol": "HTTPS", "certificates": ["arn:cert/1"],
                           "additional_certificates": ["arn:cert/2"],
                           "default_actions": [{"type": "forward", "target_group": "api"}],
                           "rules": [{"priority": 5, "conditions": [{"field": "path-pattern", "values": ["/a/*"]}],
                                      "actions": [{"type": "fixed-response",
                                                   "fixed_response_config": {"status_code": "503"}}]}]}],
            "target_groups": [{"name": "api", "protocol": "HTTP", "port": 8080,
                               "health_check": {"path": "/health", "interval_seconds": 30},
                               "attributes": {"stickiness.enabled": "false"}, "targets": [{"id": "i-1", "port": 80}]}]
        })
    }

    #[test]
    fn a_record_document_rebuilds_the_same_tree_from_its_json() {
        let parsed = document(full_config());
        let held = RecordDocument::new(parsed.clone());
        let tree = held.tree().unwrap();
        assert_eq!(tree, &parsed);
        assert_eq!(tree.to_keyed_value(), parsed.to_keyed_value());
        let digests = |document: &Document| -> Vec<Digest> {
            document
                .digested_fields()
                .map(|(_, _, digest)| digest)
                .collect()
        };
        assert_eq!(digests(tree), digests(&parsed));
        // Built once, then kept.
        assert!(std::ptr::eq(held.tree().unwrap(), tree));
        assert_eq!(
            held.listeners_with_additional_certificates(),
            &BTreeSet::from(["443".to_string()])
        );
        assert_eq!(
            held.target_groups_with_targets(),
            &BTreeSet::from(["api".to_string()])
        );
    }

    #[test]
    fn a_record_document_differs_where_a_field_digest_does() {
        let held = RecordDocument::new(document(full_config()));
        assert!(!held.differs_from(&document(full_config()), true));
        // A live document holds more than the record: not a difference by itself.
        let mut more = full_config();
        more["ip_address_type"] = "ipv4".into();
        assert!(!held.differs_from(&document(more), true));

        let mut scheme = full_config();
        scheme["scheme"] = "internet-facing".into();
        assert!(held.differs_from(&document(scheme), true));
        let mut fewer = full_config();
        fewer.as_object_mut().unwrap().remove("tags");
        assert!(held.differs_from(&document(fewer), true));

        // Without a deep read only presence fields count, and a target group's presence fields.
        let mut attributes = full_config();
        attributes["attributes"]["idle_timeout.timeout_seconds"] = "30".into();
        attributes["target_groups"][0]["attributes"]["stickiness.enabled"] = "true".into();
        assert!(held.differs_from(&document(attributes.clone()), true));
        let presence = document(attributes).presence_only();
        assert!(!held.differs_from(&presence, false));
        let mut port = full_config();
        port["target_groups"][0]["port"] = 8081.into();
        assert!(held.differs_from(&document(port).presence_only(), false));
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
        );
        assert_eq!(record.name, "web");
        assert_eq!(record.version.as_deref(), Some("7"));
        assert_eq!(
            record.document().unwrap().tree().unwrap().to_keyed_value()["scheme"],
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
            assert_eq!(reason(&Record::from_item(&item, 0)), expected);
        }
    }

    #[test]
    fn an_item_without_a_string_name_is_still_reported() {
        let record = Record::from_item(&item(vec![("config", AttrValue::M(BTreeMap::new()))]), 3);
        assert_eq!(record.name, "(item 3 has no string name)");
        assert_eq!(reason(&record), "the item has no name attribute");
    }
}
