//! Matching records with live load balancers by name and classifying each (docs/architecture.md#drift).
//!
//! Pure: takes what was read, returns one entry per load balancer named on either side.

pub mod diff;
pub mod guard;
pub mod ignore;
pub mod lineage;
pub mod protection;
pub mod report;
pub mod scope;
pub mod share;

use std::borrow::Cow;

use crate::model::document::Document;
use crate::model::live::{self, DeepState, LiveLoadBalancer, PackedDeepState, TargetGroupIndex};
use crate::model::record::{Record, RecordContent};
use crate::reconcile::diff::{Change, diff};
use crate::reconcile::ignore::IgnoreRules;
use crate::reconcile::report::{DriftKind, LoadBalancerReport, Summary};

/// One live load balancer as the diff sees it.
#[derive(Debug, Clone)]
pub struct LiveEntry<'a> {
    pub name: String,
    /// `CreatedTime`, seconds since the Unix epoch.
    pub created_time: Option<i64>,
    pub document: LiveDocument<'a>,
    /// Whether `document` holds a successful deep read; otherwise only presence fields are
    /// known and only they are compared.
    pub deep_fresh: bool,
}

/// A live load balancer's document, or what it is assembled from.
#[derive(Debug, Clone)]
pub enum LiveDocument<'a> {
    Built(Document),
    /// Assembled when the diff reaches this load balancer and dropped right after it, so a
    /// fleet's live documents are never all held at once (they are as large as its records).
    Parts {
        load_balancer: &'a LiveLoadBalancer,
        groups: &'a TargetGroupIndex<'a>,
        deep: Option<Deep<'a>>,
    },
}

/// A deep read as the diff is given it: just read, or as the daemon keeps it between cycles.
#[derive(Debug, Clone, Copy)]
pub enum Deep<'a> {
    Read(&'a DeepState),
    Packed(&'a PackedDeepState),
}

impl LiveDocument<'_> {
    /// The document, and whether it holds every part it was given: `false` only when a kept
    /// deep read could not be unpacked, and the document holds the presence fields alone.
    pub fn get(&self) -> (Cow<'_, Document>, bool) {
        match self {
            LiveDocument::Built(document) => (Cow::Borrowed(document), true),
            LiveDocument::Parts {
                load_balancer,
                groups,
                deep,
            } => match deep {
                None => (
                    Cow::Owned(live::assemble(load_balancer, groups, None)),
                    true,
                ),
                Some(Deep::Read(state)) => (
                    Cow::Owned(live::assemble(load_balancer, groups, Some(state))),
                    true,
                ),
                Some(Deep::Packed(packed)) => {
                    // Only bytes `DeepState::pack` wrote are held; should they not read back,
                    // the load balancer is compared as one whose deep read failed.
                    let state = packed.unpack();
                    let whole = state.is_some();
                    let document = live::assemble(load_balancer, groups, state.as_ref());
                    (Cow::Owned(document), whole)
                }
            },
        }
    }
}

/// One load balancer's classification.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    /// `None` when the deep read failed and the presence fields agree: neither in sync nor
    /// changed can be said.
    pub kind: Option<DriftKind>,
    pub changes: Vec<Change>,
    /// Why the record is invalid.
    pub reason: Option<String>,
    /// Whether a live load balancer of this name exists.
    pub live: bool,
    pub created_time: Option<i64>,
}

/// The classification of a whole target.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    /// By name.
    pub entries: Vec<Entry>,
    pub live: u64,
    pub recorded: u64,
}

impl Reconciled {
    /// The counts of the report's `summary`.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary {
            live: self.live,
            recorded: self.recorded,
            ..Summary::default()
        };
        for entry in &self.entries {
            if let Some(kind) = entry.kind {
                summary.add(kind);
            }
        }
        summary
    }

    /// The report lines: every load balancer not in sync, by name.
    pub fn not_in_sync(&self) -> Vec<LoadBalancerReport> {
        self.entries
            .iter()
            .filter(|entry| matches!(entry.kind, Some(kind) if kind != DriftKind::InSync))
            .map(|entry| LoadBalancerReport {
                name: entry.name.clone(),
                kind: entry.kind.expect("filtered"),
                changes: entry.changes.clone(),
                reason: entry.reason.clone(),
            })
            .collect()
    }
}

/// Classifies every load balancer named by a record or live, in name order.
pub fn reconcile<'r>(
    records: impl IntoIterator<Item = &'r Record>,
    live: &[LiveEntry<'_>],
    ignore: &IgnoreRules,
) -> Reconciled {
    // One sort of both sides by name, then one pass: each name's record and live load balancer
    // are next to each other (a name twice on one side: the later one stands).
    let mut recorded = 0;
    let mut sides: Vec<(&str, Side<'_>)> = records
        .into_iter()
        .inspect(|_| recorded += 1)
        .map(|record| (record.name.as_str(), Side::Record(record)))
        .chain(
            live.iter()
                .map(|entry| (entry.name.as_str(), Side::Live(entry))),
        )
        .collect();
    sides.sort_by_key(|(name, _)| *name);
    let mut entries: Vec<Entry> = Vec::new();
    let mut rest = sides.as_slice();
    while let Some(((name, _), _)) = rest.split_first() {
        let same = rest.iter().take_while(|(other, _)| other == name).count();
        let (group, tail) = rest.split_at(same);
        let mut record = None;
        let mut live = None;
        for (_, side) in group {
            match side {
                Side::Record(found) => record = Some(*found),
                Side::Live(found) => live = Some(*found),
            }
        }
        entries.push(classify(name, record, live, ignore));
        rest = tail;
    }
    Reconciled {
        entries,
        live: live.len() as u64,
        recorded,
    }
}

/// Where a name comes from.
enum Side<'a> {
    Record(&'a Record),
    Live(&'a LiveEntry<'a>),
}

/// Classifies one name: the record of that name that stands, and the live load balancer.
pub fn classify(
    name: &str,
    record: Option<&Record>,
    live: Option<&LiveEntry<'_>>,
    ignore: &IgnoreRules,
) -> Entry {
    let mut entry = Entry {
        name: name.to_string(),
        kind: None,
        changes: Vec::new(),
        reason: None,
        live: live.is_some(),
        created_time: live.and_then(|live| live.created_time),
    };
    match (record.map(|record| &record.content), live) {
        (None, None) => unreachable!("a name comes from one side"),
        (Some(RecordContent::Invalid(reason)), _) => {
            entry.kind = Some(DriftKind::InvalidRecord);
            entry.reason = Some(reason.clone());
        }
        (None, Some(_)) => entry.kind = Some(DriftKind::MissingRecord),
        (Some(_), None) => entry.kind = Some(DriftKind::MissingLive),
        (Some(content), Some(live)) => {
            let recorded = match content.document() {
                Ok(recorded) => recorded,
                Err(reason) => {
                    entry.kind = Some(DriftKind::InvalidRecord);
                    entry.reason = Some(reason);
                    return entry;
                }
            };
            let (document, whole) = live.document.get();
            let deep_fresh = live.deep_fresh && whole;
            let presence;
            let recorded = if deep_fresh {
                &*recorded
            } else {
                presence = recorded.presence_only();
                &presence
            };
            let mut changes = diff(recorded, &document);
            ignore.retain(name, &mut changes);
            entry.kind = if !changes.is_empty() {
                Some(DriftKind::Changed)
            } else if deep_fresh {
                Some(DriftKind::InSync)
            } else {
                None
            };
            entry.changes = changes;
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::item::{AttrValue, Item, from_json};
    use crate::model::record::RecordRules;
    use crate::reconcile::ignore::IgnoreConfig;
    use serde_json::{Value, json};

    fn item(name: &str, config: &Value) -> Item {
        [
            ("name".to_string(), AttrValue::S(name.into())),
            ("config".to_string(), from_json(config)),
        ]
        .into_iter()
        .collect()
    }

    fn record(name: &str, config: Value) -> Record {
        Record::from_item(&item(name, &config), 0, &RecordRules::default())
    }

    #[test]
    fn a_kept_deep_read_compares_as_read_and_one_that_does_not_unpack_as_a_failed_read() {
        let lb = LiveLoadBalancer {
            arn: "arn:lb/web".into(),
            name: "web".into(),
            created_time: Some(0),
            fields: crate::model::node::Node::from_value(&json!({"scheme": "internal"})).into(),
        };
        let groups = TargetGroupIndex::new(&[]);
        let state = DeepState {
            tags: crate::model::node::Node::from_value(&json!({"team": "core"})),
            ..DeepState::default()
        };
        let packed = state.pack();
        let damaged = PackedDeepState::damaged();
        let recorded = record(
            "web",
            json!({"scheme": "internal", "tags": {"team": "edge"}}),
        );
        let classify_with = |deep: Deep<'_>| {
            let live = LiveEntry {
                name: "web".into(),
                created_time: Some(0),
                document: LiveDocument::Parts {
                    load_balancer: &lb,
                    groups: &groups,
                    deep: Some(deep),
                },
                deep_fresh: true,
            };
            classify("web", Some(&recorded), Some(&live), &IgnoreRules::default())
        };
        let read = classify_with(Deep::Read(&state));
        assert_eq!(read.kind, Some(DriftKind::Changed));
        assert_eq!(classify_with(Deep::Packed(&packed)), read);
        // Never compared as if its deep fields were gone: the presence fields agree, so
        // neither in sync nor changed can be said.
        let unreadable = classify_with(Deep::Packed(&damaged));
        assert_eq!((unreadable.kind, unreadable.changes), (None, Vec::new()));
    }

    #[test]
    fn a_packed_record_is_classified_as_its_tree_is() {
        let configs = [
            ("same", json!({"scheme": "internal", "tags": {"t": "1"}})),
            ("moved", json!({"scheme": "internal", "tags": {"t": "1"}})),
            ("gone", json!({"scheme": "internal"})),
            ("broken", json!({"listeners": "not a list"})),
            ("emptied", json!({})),
            ("renamed", json!({"name": "renamed"})),
            ("tagged", json!({"name": "tagged", "tags": {"t": "1"}})),
        ];
        let live = [
            live("broken", json!({"name": "broken"}), true),
            live(
                "moved",
                json!({"name": "moved", "scheme": "internet-facing"}),
                true,
            ),
            live(
                "same",
                json!({"name": "same", "scheme": "internal", "tags": {"t": "1"}}),
                true,
            ),
            live("emptied", json!({"name": "emptied"}), true),
            live("renamed", json!({"name": "renamed"}), true),
            live(
                "tagged",
                json!({"name": "tagged", "tags": {"t": "1"}}),
                true,
            ),
        ];
        // Under `records.required = ["tags"]` only the emptied ones and those without tags are
        // invalid; under `["listeners"]` every record is.
        for (rules, invalid) in [
            (RecordRules::default(), 3),
            (RecordRules::new(["tags"]), 4),
            (RecordRules::new(["listeners"]), 7),
        ] {
            for deep_fresh in [true, false] {
                let live: Vec<LiveEntry<'_>> = live
                    .iter()
                    .map(|entry| LiveEntry {
                        deep_fresh,
                        ..entry.clone()
                    })
                    .collect();
                let trees: Vec<Record> = configs
                    .iter()
                    .map(|(name, config)| Record::from_item(&item(name, config), 0, &rules))
                    .collect();
                let packed: Vec<Record> = configs
                    .iter()
                    .map(|(name, config)| Record::from_item_packed(&item(name, config), 0, &rules))
                    .collect();
                let ignore = IgnoreRules::default();
                let (trees, packed) = (
                    reconcile(&trees, &live, &ignore),
                    reconcile(&packed, &live, &ignore),
                );
                assert_eq!(trees.entries, packed.entries, "deep_fresh {deep_fresh}");
                let invalid_now = trees
                    .entries
                    .iter()
                    .filter(|entry| entry.kind == Some(DriftKind::InvalidRecord))
                    .count();
                assert_eq!(invalid_now, invalid, "{rules:?}");
                let emptied = trees.entries.iter().find(|e| e.name == "emptied").unwrap();
                assert_eq!(
                    emptied.reason.as_deref(),
                    Some("emptied: manages nothing, config is empty")
                );
                if invalid < configs.len() {
                    assert!(
                        trees
                            .entries
                            .iter()
                            .any(|entry| entry.kind == Some(DriftKind::Changed))
                    );
                }
            }
        }
    }

    fn live(name: &str, doc: Value, deep_fresh: bool) -> LiveEntry<'static> {
        LiveEntry {
            name: name.into(),
            created_time: Some(0),
            document: LiveDocument::Built(Document::parse(&doc).unwrap().document),
            deep_fresh,
        }
    }

    fn kinds(reconciled: &Reconciled) -> Vec<(&str, Option<DriftKind>)> {
        reconciled
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind))
            .collect()
    }

    #[test]
    fn a_name_is_one_entry_even_twice_on_one_side() {
        let records = vec![record("a", json!({"name": "a", "scheme": "internal"}))];
        let live = vec![
            live("b", json!({"name": "b"}), true),
            live("a", json!({"name": "a", "scheme": "internet-facing"}), true),
            live("a", json!({"name": "a", "scheme": "internal"}), true),
        ];
        let reconciled = reconcile(&records, &live, &IgnoreRules::default());
        assert_eq!(
            kinds(&reconciled),
            vec![
                ("a", Some(DriftKind::InSync)),
                ("b", Some(DriftKind::MissingRecord))
            ]
        );
    }

    #[test]
    fn every_kind_is_classified_and_counted() {
        let records = vec![
            record("same", json!({"name": "same", "scheme": "internal"})),
            record("moved", json!({"name": "moved", "scheme": "internal"})),
            record("gone", json!({"name": "gone", "scheme": "internal"})),
            record("broken", json!({"listeners": "not a list"})),
        ];
        let live = vec![
            live("same", json!({"name": "same", "scheme": "internal"}), true),
            live(
                "moved",
                json!({"name": "moved", "scheme": "internet-facing"}),
                true,
            ),
            live("new", json!({"name": "new"}), true),
            live("broken", json!({"name": "broken"}), true),
        ];
        let reconciled = reconcile(&records, &live, &IgnoreRules::default());
        assert_eq!(
            kinds(&reconciled),
            vec![
                ("broken", Some(DriftKind::InvalidRecord)),
                ("gone", Some(DriftKind::MissingLive)),
                ("moved", Some(DriftKind::Changed)),
                ("new", Some(DriftKind::MissingRecord)),
                ("same", Some(DriftKind::InSync)),
            ]
        );
        let summary = reconciled.summary();
        assert_eq!((summary.live, summary.recorded), (4, 4));
        assert_eq!(
            (
                summary.in_sync,
                summary.changed,
                summary.missing_record,
                summary.missing_live,
                summary.invalid_record
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(reconciled.not_in_sync().len(), 4);
        assert_eq!(
            reconciled.entries[0].reason.as_deref(),
            Some("config.listeners: expected a list, found a string")
        );
    }

    #[test]
    fn a_stale_deep_read_never_looks_in_sync() {
        let records = vec![
            record(
                "a",
                json!({"name": "a", "scheme": "internal", "tags": {"t": "1"}}),
            ),
            record(
                "b",
                json!({"name": "b", "scheme": "internal", "tags": {"t": "1"}}),
            ),
        ];
        let live = vec![
            live("a", json!({"name": "a", "scheme": "internal"}), false),
            live(
                "b",
                json!({"name": "b", "scheme": "internet-facing"}),
                false,
            ),
        ];
        let reconciled = reconcile(&records, &live, &IgnoreRules::default());
        assert_eq!(reconciled.entries[0].kind, None);
        assert_eq!(reconciled.entries[1].kind, Some(DriftKind::Changed));
        // Only the presence field is reported; the tags were not read.
        assert_eq!(reconciled.entries[1].changes.len(), 1);
        assert_eq!(reconciled.summary().in_sync, 0);
    }

    #[test]
    fn ignored_changes_are_neither_reported_nor_counted() {
        let ignore = IgnoreRules::new(&[IgnoreConfig {
            load_balancers: "a*".into(),
            paths: vec!["/scheme".into()],
        }])
        .unwrap();
        let records = vec![
            record("a1", json!({"scheme": "internal"})),
            record("b1", json!({"scheme": "internal"})),
        ];
        let live = vec![
            live("a1", json!({"scheme": "internet-facing"}), true),
            live("b1", json!({"scheme": "internet-facing"}), true),
        ];
        let reconciled = reconcile(&records, &live, &ignore);
        assert_eq!(reconciled.entries[0].kind, Some(DriftKind::InSync));
        assert_eq!(reconciled.entries[1].kind, Some(DriftKind::Changed));
    }
}
