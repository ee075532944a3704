//! The state table's stream records as plain data (docs/architecture.md#stream): what the
//! tailer reads, the journal keeps verbatim, and restore and history replay.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::model::item::Item;

/// What a stream record says happened to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamEvent {
    Insert,
    Modify,
    Remove,
}

impl StreamEvent {
    /// The name DynamoDB gives it (`INSERT`, `MODIFY`, `REMOVE`), also the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamEvent::Insert => "INSERT",
            StreamEvent::Modify => "MODIFY",
            StreamEvent::Remove => "REMOVE",
        }
    }

    /// Parses DynamoDB's name for it.
    pub fn parse(text: &str) -> Option<StreamEvent> {
        match text {
            "INSERT" => Some(StreamEvent::Insert),
            "MODIFY" => Some(StreamEvent::Modify),
            "REMOVE" => Some(StreamEvent::Remove),
            _ => None,
        }
    }
}

/// One stream record, verbatim: both images, the key, where it sits in its shard, and when
/// DynamoDB wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The shard it was read from.
    pub shard: String,
    /// Its sequence number: a decimal string, growing within a shard and from a parent shard
    /// to its children (compare with [`cmp_sequence`]).
    pub sequence: String,
    pub event: StreamEvent,
    /// `ApproximateCreationDateTime`, Unix milliseconds (DynamoDB rounds it down to the second).
    pub created_millis: i64,
    /// The item's key attributes.
    pub keys: Item,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_image: Option<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_image: Option<Item>,
}

impl StreamRecord {
    /// The record's `name` (the state table's key), from its keys or, failing that, an image.
    pub fn name(&self) -> Option<&str> {
        [
            Some(&self.keys),
            self.new_image.as_ref(),
            self.old_image.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find_map(|item| item.get("name").and_then(|value| value.as_s()))
    }

    /// The item as it is after this record: the new image, or none after a `REMOVE`.
    pub fn after(&self) -> Option<&Item> {
        match self.event {
            StreamEvent::Remove => None,
            _ => self.new_image.as_ref(),
        }
    }
}

/// A stretch of time the journal may lack records for: the checkpoint was older than the
/// stream's trim horizon, an iterator could not be had, or a shard was not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The shard, when the gap is one shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// From when records may be missing (Unix milliseconds): the last one read before it, or
    /// the checkpoint's time.
    pub from_millis: i64,
    /// Until when (Unix milliseconds): the first record read after it, or when it was seen.
    pub to_millis: i64,
    /// Why, in words (`the checkpoint is older than the stream's trim horizon`).
    pub reason: String,
}

/// Orders two sequence numbers as the numbers they are (they are longer than any integer type,
/// and have no leading zeros).
pub fn cmp_sequence(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Orders records for replay: by sequence number, then by shard, so records of one item
/// (which share a shard lineage) apply in the order they happened.
pub fn replay_order(a: &StreamRecord, b: &StreamRecord) -> Ordering {
    cmp_sequence(&a.sequence, &b.sequence).then_with(|| a.shard.cmp(&b.shard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::item::AttrValue;

    fn record(sequence: &str, event: StreamEvent) -> StreamRecord {
        StreamRecord {
            shard: "shard-1".into(),
            sequence: sequence.into(),
            event,
            created_millis: 0,
            keys: [("name".to_string(), AttrValue::S("web-1".into()))].into(),
            old_image: None,
            new_image: None,
        }
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(cmp_sequence("900", "1000"), Ordering::Less);
        assert_eq!(
            cmp_sequence("1100000000017454423010", "1100000000017454423009"),
            Ordering::Greater
        );
        assert_eq!(cmp_sequence("42", "42"), Ordering::Equal);
    }

    #[test]
    fn a_record_is_named_by_its_key_and_a_removal_leaves_nothing() {
        let removed = record("1", StreamEvent::Remove);
        assert_eq!(removed.name(), Some("web-1"));
        assert_eq!(removed.after(), None);
        assert_eq!(StreamEvent::parse("MODIFY"), Some(StreamEvent::Modify));
        assert_eq!(StreamEvent::parse("modify"), None);
        let json = serde_json::to_string(&removed).unwrap();
        assert!(json.contains("\"event\":\"REMOVE\""), "{json}");
        assert_eq!(
            serde_json::from_str::<StreamRecord>(&json).unwrap(),
            removed
        );
    }
}
