//! `restore` and `adopt` (docs/architecture.md#snapshots): writing missing records back, never over a record that
//! exists, behind an explicit approval.
//!
//! Planning is pure ([`plan_restore`]); writing ([`write_all`]) uses conditional transactions of
//! up to 100 items, so a record written since the snapshot (or during the restore) always stands:
//! its condition fails, it is reported as a lost race, and it is not tried again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use crate::aws::AwsError;
use crate::aws::dynamodb::{Condition, Dynamo, PutOutcome};
use crate::model::item::{AttrValue, Item};
use crate::model::record::{Record, RecordContent, RecordRules};
use crate::recovery::snapshot::Snapshot;

/// Items in one transaction, DynamoDB's limit.
pub const ITEMS_PER_TRANSACTION: usize = 100;
/// Bytes in one transaction, under DynamoDB's 4 MB.
const BYTES_PER_TRANSACTION: usize = 3_500_000;
/// Transactions in flight at once.
const CONCURRENCY: usize = 4;
/// Attempts of an item whose transaction was cancelled for another item or throttled.
const ATTEMPTS: u32 = 6;

/// Why an item the snapshot holds without a load balancer ARN is skipped.
pub const NOT_LIVE_AT_SNAPSHOT: &str = "its load balancer was not live when the snapshot was taken";

/// Options of `restore`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Replace an `invalid_record` the snapshot holds valid (conditioned on its `version`).
    pub replace_invalid: bool,
    /// Restore items whose load balancer is gone or was recreated under another ARN.
    pub include_gone: bool,
}

/// One write of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedWrite {
    pub name: String,
    /// `restore` (the table lacks it) or `replace_invalid`.
    pub action: &'static str,
    /// For `replace_invalid`: why the table's record is invalid (an emptied one says
    /// `emptied: manages nothing`), so the plan shows what it writes over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces_invalid: Option<String>,
    #[serde(skip)]
    pub item: Item,
    #[serde(skip)]
    pub condition: WriteCondition,
}

/// What must hold for a planned write to happen.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteCondition {
    /// No item of that name exists.
    Absent,
    /// The invalid item is still the one read: its `version` (or, without one, no version).
    InvalidVersion(Option<String>),
}

/// An item the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// What a restore or adopt will do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub writes: Vec<PlannedWrite>,
    pub skipped: Vec<Skipped>,
    /// Items present in the table and left as they are.
    pub unchanged: usize,
}

fn name_of(item: &Item) -> Option<&str> {
    item.get("name").and_then(AttrValue::as_s)
}

/// Plans a restore from `snapshot` against the table's current items and the live load
/// balancers (name to ARN). `rules` judge which records are valid, in the table and in the
/// snapshot alike, as the daemon judges them.
pub fn plan_restore(
    snapshot: &Snapshot,
    current: &[Item],
    live: &BTreeMap<String, String>,
    rules: &RecordRules,
    options: RestoreOptions,
) -> Plan {
    let current: BTreeMap<&str, (&Item, Record)> = current
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((name_of(item)?, (item, Record::from_item(item, i, rules)))))
        .collect();
    let mut plan = Plan::default();
    for (i, saved) in snapshot.items.iter().enumerate() {
        let Some(name) = name_of(&saved.item) else {
            plan.skipped.push(Skipped {
                name: format!("(item {i} without a string name)"),
                reason: "the snapshot's item has no name".into(),
            });
            continue;
        };
        let skip = |reason: String| Skipped {
            name: name.to_string(),
            reason,
        };
        if let Some((item, record)) = current.get(name) {
            let saved_valid = Record::from_item(&saved.item, i, rules).is_valid();
            match (&record.content, saved_valid) {
                (RecordContent::Valid(_) | RecordContent::Packed(_), _) => plan.unchanged += 1,
                (RecordContent::Invalid(reason), true) if options.replace_invalid => {
                    plan.writes.push(PlannedWrite {
                        name: name.to_string(),
                        action: "replace_invalid",
                        replaces_invalid: Some(reason.clone()),
                        item: saved.item.clone(),
                        condition: WriteCondition::InvalidVersion(match item.get("version") {
                            Some(AttrValue::N(version)) => Some(version.clone()),
                            _ => None,
                        }),
                    });
                }
                (RecordContent::Invalid(reason), true) => plan.skipped.push(skip(format!(
                    "the table's record is invalid ({reason}); --replace-invalid replaces it with the snapshot's"
                ))),
                (RecordContent::Invalid(_), false) => plan.unchanged += 1,
            }
            continue;
        }
        let live_arn = live.get(name);
        let gone = match (&saved.live_arn, live_arn) {
            (Some(then), Some(now)) if then == now => None,
            (_, None) => Some("its load balancer is not live".to_string()),
            (Some(then), Some(now)) => Some(format!(
                "its load balancer was recreated since (then {then}, now {now})"
            )),
            (None, Some(_)) => Some(NOT_LIVE_AT_SNAPSHOT.to_string()),
        };
        match gone {
            Some(reason) if !options.include_gone => plan
                .skipped
                .push(skip(format!("{reason}; --include-gone restores it anyway"))),
            _ => plan.writes.push(PlannedWrite {
                name: name.to_string(),
                action: "restore",
                replaces_invalid: None,
                item: saved.item.clone(),
                condition: WriteCondition::Absent,
            }),
        }
    }
    plan
}

impl WriteCondition {
    fn condition(&self) -> Condition {
        match self {
            WriteCondition::Absent => Condition {
                expression: "attribute_not_exists(#name)".into(),
                names: vec![("#name".into(), "name".into())],
                values: vec![],
            },
            WriteCondition::InvalidVersion(Some(version)) => Condition {
                expression: "#version = :version".into(),
                names: vec![("#version".into(), "version".into())],
                values: vec![(":version".into(), AttrValue::N(version.clone()))],
            },
            WriteCondition::InvalidVersion(None) => Condition {
                expression: "attribute_exists(#name) AND attribute_not_exists(#version)".into(),
                names: vec![
                    ("#name".into(), "name".into()),
                    ("#version".into(), "version".into()),
                ],
                values: vec![],
            },
        }
    }
}

/// What the writes did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Written {
    pub written: Vec<String>,
    /// Someone wrote the item first: theirs stands.
    pub lost_race: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// `TransactWriteItems` calls made.
    pub calls: usize,
}

/// Writes every planned item, in conditional transactions of up to 100 items (and 3.5 MB),
/// a few at once. `annotate` adds the approval to each item.
pub async fn write_all(
    dynamodb: &Dynamo,
    table: &str,
    writes: &[PlannedWrite],
    annotate: &AttrValue,
    attribute: &str,
) -> Written {
    let mut chunks: Vec<Vec<Put>> = Vec::new();
    let mut current: Vec<Put> = Vec::new();
    let mut bytes = 0;
    for write in writes {
        let mut item = write.item.clone();
        item.insert(attribute.to_string(), annotate.clone());
        let size = serde_json::to_vec(&item).map(|v| v.len()).unwrap_or(0);
        if !current.is_empty()
            && (current.len() == ITEMS_PER_TRANSACTION || bytes + size > BYTES_PER_TRANSACTION)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push((write.name.clone(), item, write.condition.condition()));
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    let results: Vec<Written> = futures::stream::iter(chunks)
        .map(|chunk| write_chunk(dynamodb, table, chunk))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut total = Written::default();
    for result in results {
        total.written.extend(result.written);
        total.lost_race.extend(result.lost_race);
        total.failed.extend(result.failed);
        total.calls += result.calls;
    }
    total.written.sort();
    total.lost_race.sort();
    total.failed.sort();
    total
}

/// One item to write: its name, the item with its approval, and its condition.
type Put = (String, Item, Condition);

/// The error code of a transaction refused as a whole for what one of its items holds (an item
/// too large, an attribute DynamoDB does not take): AWS does not say which.
const VALIDATION: &str = "ValidationException";

/// Writes one chunk. A chunk refused as a whole for one of its items is split in halves until
/// that item is alone, so the others are written and only it fails.
async fn write_chunk(dynamodb: &Dynamo, table: &str, chunk: Vec<Put>) -> Written {
    let mut result = Written::default();
    let mut parts = vec![chunk];
    while let Some(part) = parts.pop() {
        if let Some((first, second)) = write_part(dynamodb, table, part, &mut result).await {
            parts.push(second);
            parts.push(first);
        }
    }
    result
}

/// Writes one part of a chunk, trying again what was cancelled for another item or throttled.
/// Returns the part in two halves when it was refused as a whole for one of its items.
async fn write_part(
    dynamodb: &Dynamo,
    table: &str,
    mut part: Vec<Put>,
    result: &mut Written,
) -> Option<(Vec<Put>, Vec<Put>)> {
    // Kept while the same items are sent again after an error that leaves unknown whether the
    // write landed (a timeout, a broken connection), so a write that landed is answered as
    // written; a new one for any other set of items.
    let mut token = crate::aws::dynamodb::new_request_token();
    for attempt in 0..ATTEMPTS {
        if part.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
        }
        result.calls += 1;
        let puts: Vec<(Item, Condition)> = part
            .iter()
            .map(|(_, item, c)| (item.clone(), c.clone()))
            .collect();
        match dynamodb.transact_put(table, &puts, &token).await {
            Ok(outcomes) => {
                let mut again = Vec::new();
                for ((name, item, condition), outcome) in part.into_iter().zip(outcomes) {
                    match outcome {
                        PutOutcome::Written => result.written.push(name),
                        PutOutcome::ConditionFailed => {
                            if is_ours(dynamodb, table, &name, &item).await {
                                result.written.push(name);
                            } else {
                                result.lost_race.push(name);
                            }
                        }
                        PutOutcome::Retry => again.push((name, item, condition)),
                        PutOutcome::Refused(reason) => result.failed.push((name, reason)),
                    }
                }
                part = again;
                token = crate::aws::dynamodb::new_request_token();
            }
            Err(err) if retryable(&err) => {}
            Err(err) if err.code.as_deref() == Some(VALIDATION) && part.len() > 1 => {
                let second = part.split_off(part.len() / 2);
                return Some((part, second));
            }
            Err(err) => {
                result
                    .failed
                    .extend(part.drain(..).map(|(name, _, _)| (name, err.to_string())));
            }
        }
    }
    result.failed.extend(part.into_iter().map(|(name, _, _)| {
        (
            name,
            "still cancelled or throttled after retries".to_string(),
        )
    }));
    None
}

/// Whether the item the table holds under `name` is the very one this restore wrote (its
/// approval carries the ticket and the time): a write that landed though its answer was lost,
/// then found its own item on the way (a store that does not keep request tokens), is not
/// someone else's.
async fn is_ours(dynamodb: &Dynamo, table: &str, name: &str, item: &Item) -> bool {
    matches!(dynamodb.get(table, "name", name).await, Ok(Some(current)) if current == *item)
}

fn retryable(err: &AwsError) -> bool {
    matches!(
        err.class,
        crate::aws::ErrorClass::Throttled
            | crate::aws::ErrorClass::Timeout
            | crate::aws::ErrorClass::Network
    )
}

/// The approval stored on each written item: ticket, time and source.
pub fn approval(ticket: &str, source_key: &str, source: &str) -> AttrValue {
    AttrValue::M(
        [
            ("ticket".to_string(), AttrValue::S(ticket.to_string())),
            (
                "time".to_string(),
                AttrValue::S(crate::model::clock::now_rfc3339()),
            ),
            (source_key.to_string(), AttrValue::S(source.to_string())),
        ]
        .into_iter()
        .collect(),
    )
}

/// Names of items in `items`.
pub fn names(items: &[Item]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|item| name_of(item).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::item::from_json;
    use crate::recovery::snapshot::SnapshotItem;
    use serde_json::json;

    fn valid(name: &str, version: u32) -> Item {
        [
            ("name".to_string(), AttrValue::S(name.into())),
            ("version".to_string(), AttrValue::N(version.to_string())),
            (
                "config".to_string(),
                from_json(&json!({"name": name, "scheme": "internal"})),
            ),
            ("owner".to_string(), AttrValue::B(vec![7])),
        ]
        .into_iter()
        .collect()
    }

    fn invalid(name: &str, version: Option<u32>) -> Item {
        let mut item: Item = [
            ("name".to_string(), AttrValue::S(name.into())),
            ("config".to_string(), AttrValue::S("broken".into())),
        ]
        .into_iter()
        .collect();
        if let Some(version) = version {
            item.insert("version".into(), AttrValue::N(version.to_string()));
        }
        item
    }

    fn snapshot(items: Vec<(Item, Option<&str>)>) -> Snapshot {
        Snapshot::new(
            "prod",
            "us-east-1",
            "lb-state",
            items
                .into_iter()
                .map(|(item, arn)| SnapshotItem {
                    item,
                    live_arn: arn.map(str::to_string),
                })
                .collect(),
            1_795_000_000_000,
        )
    }

    fn live(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect()
    }

    #[test]
    fn restores_only_what_the_table_lacks_verbatim() {
        let snap = snapshot(vec![
            (valid("a", 1), Some("arn:a")),
            (valid("b", 1), Some("arn:b")),
        ]);
        let plan = plan_restore(
            &snap,
            &[valid("a", 9)],
            &live(&[("a", "arn:a"), ("b", "arn:b")]),
            &RecordRules::default(),
            RestoreOptions::default(),
        );
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.writes.len(), 1);
        assert_eq!(plan.writes[0].name, "b");
        assert_eq!(plan.writes[0].item, valid("b", 1));
        assert_eq!(plan.writes[0].condition, WriteCondition::Absent);
    }

    #[test]
    fn gone_and_recreated_load_balancers_are_skipped_unless_included() {
        let snap = snapshot(vec![
            (valid("gone", 1), Some("arn:gone")),
            (valid("recreated", 1), Some("arn:old")),
            (valid("never", 1), None),
        ]);
        let now = live(&[("recreated", "arn:new"), ("never", "arn:never")]);
        let plan = plan_restore(
            &snap,
            &[],
            &now,
            &RecordRules::default(),
            RestoreOptions::default(),
        );
        assert!(plan.writes.is_empty());
        let reason = |name: &str| {
            plan.skipped
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.reason.clone())
                .unwrap_or_default()
        };
        assert!(reason("gone").starts_with("its load balancer is not live"));
        assert!(reason("recreated").contains("recreated since (then arn:old, now arn:new)"));
        assert!(reason("never").contains("not live when the snapshot was taken"));
        let plan = plan_restore(
            &snap,
            &[],
            &now,
            &RecordRules::default(),
            RestoreOptions {
                include_gone: true,
                ..Default::default()
            },
        );
        assert_eq!(plan.writes.len(), 3);
    }

    #[test]
    fn invalid_records_are_replaced_only_when_asked_and_on_their_version() {
        let snap = snapshot(vec![
            (valid("a", 1), Some("arn:a")),
            (valid("b", 1), Some("arn:b")),
        ]);
        let current = vec![invalid("a", Some(5)), invalid("b", None)];
        let now = live(&[("a", "arn:a"), ("b", "arn:b")]);
        let plan = plan_restore(
            &snap,
            &current,
            &now,
            &RecordRules::default(),
            RestoreOptions::default(),
        );
        assert!(plan.writes.is_empty());
        assert!(plan.skipped[0].reason.contains("--replace-invalid"));
        let plan = plan_restore(
            &snap,
            &current,
            &now,
            &RecordRules::default(),
            RestoreOptions {
                replace_invalid: true,
                ..Default::default()
            },
        );
        assert_eq!(
            plan.writes[0].condition,
            WriteCondition::InvalidVersion(Some("5".into()))
        );
        assert_eq!(
            plan.writes[1].condition,
            WriteCondition::InvalidVersion(None)
        );
        assert_eq!(plan.writes[0].action, "replace_invalid");
    }

    /// `name`'s item as the incident left it: version bumped, everything else kept, `config`
    /// emptied (`{}`) or holding only the name.
    fn emptied(name: &str, version: u32, keep_name: bool) -> Item {
        let mut item = valid(name, version);
        let config = if keep_name {
            json!({ "name": name })
        } else {
            json!({})
        };
        item.insert("config".into(), from_json(&config));
        item
    }

    const REPLACE: RestoreOptions = RestoreOptions {
        replace_invalid: true,
        include_gone: false,
    };

    #[test]
    fn emptied_records_are_replaced_on_their_version_and_the_plan_says_they_were_emptied() {
        let snap = snapshot(vec![
            (valid("a", 1), Some("arn:a")),
            (valid("b", 1), Some("arn:b")),
            (valid("c", 1), Some("arn:c")),
        ]);
        let current = vec![emptied("a", 2, false), emptied("b", 3, true), valid("c", 1)];
        let now = live(&[("a", "arn:a"), ("b", "arn:b"), ("c", "arn:c")]);
        let rules = RecordRules::default();

        let plan = plan_restore(&snap, &current, &now, &rules, RestoreOptions::default());
        assert!(plan.writes.is_empty());
        assert_eq!(plan.unchanged, 1);
        for skipped in &plan.skipped {
            assert!(
                skipped
                    .reason
                    .starts_with("the table's record is invalid (emptied: manages nothing, "),
                "{}",
                skipped.reason
            );
        }

        let plan = plan_restore(&snap, &current, &now, &rules, REPLACE);
        assert_eq!(plan.unchanged, 1);
        let writes: Vec<(&str, &str, Option<&str>, &WriteCondition)> = plan
            .writes
            .iter()
            .map(|w| {
                (
                    w.name.as_str(),
                    w.action,
                    w.replaces_invalid.as_deref(),
                    &w.condition,
                )
            })
            .collect();
        assert_eq!(
            writes,
            vec![
                (
                    "a",
                    "replace_invalid",
                    Some("emptied: manages nothing, config is empty"),
                    &WriteCondition::InvalidVersion(Some("2".into()))
                ),
                (
                    "b",
                    "replace_invalid",
                    Some("emptied: manages nothing, config holds no field but name"),
                    &WriteCondition::InvalidVersion(Some("3".into()))
                ),
            ]
        );
        // What is written back is the snapshot's item, verbatim.
        assert_eq!(plan.writes[0].item, valid("a", 1));
        // The plan's JSON form says so too.
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json["writes"][1],
            json!({
                "name": "b",
                "action": "replace_invalid",
                "replaces_invalid": "emptied: manages nothing, config holds no field but name"
            })
        );
        // An emptied snapshot item is no valid version to put back.
        let emptied_then = snapshot(vec![(emptied("a", 1, true), Some("arn:a"))]);
        let plan = plan_restore(&emptied_then, &current[..1], &now, &rules, REPLACE);
        assert!(plan.writes.is_empty());
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn required_fields_judge_the_table_and_the_snapshot_alike() {
        let with_listeners = |name: &str, version: u32| {
            let mut item = valid(name, version);
            item.insert(
                "config".into(),
                from_json(&json!({"name": name, "scheme": "internal", "listeners": []})),
            );
            item
        };
        // The table's a lacks listeners; the snapshot's has them.
        let snap = snapshot(vec![
            (with_listeners("a", 1), Some("arn:a")),
            (valid("b", 1), Some("arn:b")),
        ]);
        let current = vec![valid("a", 4), valid("b", 4)];
        let now = live(&[("a", "arn:a"), ("b", "arn:b")]);
        let plan = plan_restore(&snap, &current, &now, &RecordRules::default(), REPLACE);
        assert!(plan.writes.is_empty());
        let rules = RecordRules::new(["listeners"]);
        let plan = plan_restore(&snap, &current, &now, &rules, REPLACE);
        assert_eq!(plan.writes.len(), 1);
        assert_eq!(plan.writes[0].name, "a");
        assert_eq!(
            plan.writes[0].replaces_invalid.as_deref(),
            Some("config.listeners: missing, and records.required asks every record to hold it")
        );
        // b is invalid in the table, and the snapshot holds no valid version of it either.
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn a_second_run_plans_nothing() {
        let snap = snapshot(vec![(valid("a", 1), Some("arn:a"))]);
        let plan = plan_restore(
            &snap,
            &[valid("a", 1)],
            &live(&[("a", "arn:a")]),
            &RecordRules::default(),
            RestoreOptions::default(),
        );
        assert!(plan.writes.is_empty());
        assert_eq!(plan.unchanged, 1);
    }
}
