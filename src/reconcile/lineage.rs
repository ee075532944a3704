//! Which shards of the state table's stream to read, and from where (docs/architecture.md#stream).
//! Pure: from the shards `DescribeStream` lists and the checkpoints, the plan.
//!
//! A shard is read only once its parent is finished (closed and read to its end), or no longer
//! listed (trimmed after 24 hours), so the records of one item are read in the order they were
//! written. A parent that was trimmed before it was finished is a gap: its last records are gone.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::stream::Shard;

/// How far one shard has been read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCheckpoint {
    /// The last sequence number read (and journaled); none before the first record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    /// The shard is closed and was read to its end.
    #[serde(default)]
    pub finished: bool,
}

/// Checkpoints by shard id.
pub type Checkpoints = BTreeMap<String, ShardCheckpoint>;

/// Where to start a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The oldest record it holds: a shard never read.
    TrimHorizon,
    /// Just after the checkpoint.
    After(String),
}

/// What to do with the stream's shards now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The shards to read, parents before children, each from where.
    pub read: Vec<(String, Start)>,
    /// Shards read before whose parent was not finished and is no longer listed: records of
    /// theirs may be missing from the journal.
    pub orphaned: Vec<String>,
}

/// The plan for `shards` given `checkpoints`. `started`: the stream was read before (there
/// are checkpoints), so a shard whose unfinished parent is gone is a gap; on a first read every
/// shard starts at its trim horizon and nothing before counts as missed.
pub fn plan(shards: &[Shard], checkpoints: &Checkpoints) -> Plan {
    let listed: BTreeSet<&str> = shards.iter().map(|shard| shard.id.as_str()).collect();
    let started = !checkpoints.is_empty();
    let finished = |id: &str| checkpoints.get(id).is_some_and(|c| c.finished);
    let mut plan = Plan::default();
    for shard in order(shards) {
        if finished(&shard.id) {
            continue;
        }
        let parent_done = match &shard.parent {
            None => true,
            Some(parent) if listed.contains(parent.as_str()) => finished(parent),
            Some(parent) => {
                // The parent is trimmed. It was ours to finish if we read it, or if we were
                // reading before this shard appeared.
                let ours = checkpoints.contains_key(parent.as_str())
                    || (started && !checkpoints.contains_key(&shard.id));
                if ours && !finished(parent) {
                    plan.orphaned.push(shard.id.clone());
                }
                true
            }
        };
        if !parent_done {
            continue;
        }
        let start = match checkpoints.get(&shard.id).and_then(|c| c.sequence.clone()) {
            Some(sequence) => Start::After(sequence),
            None => Start::TrimHorizon,
        };
        plan.read.push((shard.id.clone(), start));
    }
    plan
}

/// The shards ordered so every parent comes before its children (a parent not listed counts
/// as none); shards of one generation keep the order they were listed in.
pub fn order(shards: &[Shard]) -> Vec<&Shard> {
    let by_id: BTreeMap<&str, &Shard> = shards.iter().map(|s| (s.id.as_str(), s)).collect();
    let depth = |shard: &Shard| {
        let mut depth = 0usize;
        let mut seen = BTreeSet::new();
        let mut at = shard;
        while let Some(parent) = at.parent.as_deref().and_then(|p| by_id.get(p)) {
            // A cycle cannot come from DynamoDB; if an answer had one it must not hang here.
            if !seen.insert(parent.id.as_str()) {
                break;
            }
            depth += 1;
            at = parent;
        }
        depth
    };
    let mut ordered: Vec<(usize, usize, &Shard)> = shards
        .iter()
        .enumerate()
        .map(|(i, shard)| (depth(shard), i, shard))
        .collect();
    ordered.sort_by_key(|(depth, i, _)| (*depth, *i));
    ordered.into_iter().map(|(_, _, shard)| shard).collect()
}

/// The checkpoints worth keeping: those of listed shards, and of finished parents of listed
/// ones (so their children know they may start).
pub fn retained(shards: &[Shard], checkpoints: &Checkpoints) -> Checkpoints {
    let needed: BTreeSet<&str> = shards
        .iter()
        .flat_map(|shard| std::iter::once(shard.id.as_str()).chain(shard.parent.as_deref()))
        .collect();
    checkpoints
        .iter()
        .filter(|(id, _)| needed.contains(id.as_str()))
        .map(|(id, checkpoint)| (id.clone(), checkpoint.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>, closed: bool) -> Shard {
        Shard {
            id: id.into(),
            parent: parent.map(str::to_string),
            starting_sequence: Some("100".into()),
            ending_sequence: closed.then(|| "200".to_string()),
        }
    }

    fn at(sequence: &str) -> ShardCheckpoint {
        ShardCheckpoint {
            sequence: Some(sequence.into()),
            finished: false,
        }
    }

    fn done() -> ShardCheckpoint {
        ShardCheckpoint {
            sequence: Some("200".into()),
            finished: true,
        }
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.read.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn a_first_read_starts_every_root_at_its_trim_horizon_and_children_wait() {
        // Listed children first, as an answer may list them.
        let shards = [
            shard("c1", Some("p"), false),
            shard("c2", Some("p"), false),
            shard("p", None, true),
        ];
        let plan = plan(&shards, &Checkpoints::new());
        assert_eq!(plan.read, vec![("p".to_string(), Start::TrimHorizon)]);
        assert!(plan.orphaned.is_empty());
    }

    #[test]
    fn a_split_is_read_once_its_parent_is_finished_from_the_checkpoints() {
        let shards = [
            shard("p", None, true),
            shard("c1", Some("p"), false),
            shard("c2", Some("p"), false),
        ];
        let checkpoints: Checkpoints =
            [("p".to_string(), done()), ("c1".to_string(), at("250"))].into();
        let plan = plan(&shards, &checkpoints);
        assert_eq!(
            plan.read,
            vec![
                ("c1".to_string(), Start::After("250".into())),
                ("c2".to_string(), Start::TrimHorizon),
            ]
        );
    }

    #[test]
    fn an_unfinished_parent_holds_its_children_back() {
        let shards = [shard("p", None, true), shard("c", Some("p"), false)];
        let checkpoints: Checkpoints = [("p".to_string(), at("150"))].into();
        assert_eq!(ids(&plan(&shards, &checkpoints)), vec!["p"]);
    }

    #[test]
    fn a_parent_trimmed_before_it_was_finished_is_a_gap() {
        // Read up to 150 in p; p has since been trimmed.
        let shards = [shard("c", Some("p"), false)];
        let checkpoints: Checkpoints = [("p".to_string(), at("150"))].into();
        let plan = plan(&shards, &checkpoints);
        assert_eq!(ids(&plan), vec!["c"]);
        assert_eq!(plan.orphaned, vec!["c".to_string()]);
        // A parent finished before it was trimmed is no gap.
        let checkpoints: Checkpoints = [("p".to_string(), done())].into();
        assert!(super::plan(&shards, &checkpoints).orphaned.is_empty());
        // Nor is one never ours: the first read of a stream.
        assert!(
            super::plan(&shards, &Checkpoints::new())
                .orphaned
                .is_empty()
        );
    }

    #[test]
    fn grandchildren_come_after_children() {
        let shards = [
            shard("g", Some("c"), false),
            shard("c", Some("p"), true),
            shard("p", None, true),
        ];
        let order: Vec<&str> = order(&shards).iter().map(|s| s.id.as_str()).collect();
        assert_eq!(order, vec!["p", "c", "g"]);
        let checkpoints: Checkpoints =
            [("p".to_string(), done()), ("c".to_string(), done())].into();
        assert_eq!(ids(&plan(&shards, &checkpoints)), vec!["g"]);
    }

    #[test]
    fn a_cycle_in_an_answer_does_not_hang() {
        let shards = [shard("a", Some("b"), false), shard("b", Some("a"), false)];
        assert_eq!(order(&shards).len(), 2);
    }

    #[test]
    fn checkpoints_of_shards_gone_are_dropped_but_a_listed_shards_parent_is_kept() {
        let shards = [shard("c", Some("p"), false)];
        let checkpoints: Checkpoints = [
            ("p".to_string(), done()),
            ("old".to_string(), done()),
            ("c".to_string(), at("300")),
        ]
        .into();
        let kept: Vec<String> = retained(&shards, &checkpoints).into_keys().collect();
        assert_eq!(kept, vec!["c".to_string(), "p".to_string()]);
    }
}
