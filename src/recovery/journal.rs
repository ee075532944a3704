//! The journal (docs/recovery.md#journal): every record of the state table's stream, kept
//! verbatim in the snapshot store, in sealed, content-hashed segments; and what is made of it,
//! as pure functions: the table replayed to an instant, the holes in what it covers, which
//! segments retention drops, and the recovery check.
//!
//! A segment is gzip-compressed JSON stored as
//! `<target>/journal/<from>-<to>-<records>r-<hash>.json.gz`: the time span it covers (from the
//! previous seal to its own, in the snapshot stamp format), how many records it holds, and the
//! first 16 hex digits of the SHA-256 of its JSON. A reader checks the content against the name,
//! so a truncated or altered segment is an error that names it, never a partial read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::clock::rfc3339_millis;
use crate::model::item::{AttrValue, Digests, Item, digests};
use crate::model::stream::{Gap, StreamEvent, StreamRecord, replay_order};
use crate::recovery::snapshot::{
    SnapshotError, Store, gunzip, gzip, is_hash, is_stamp, short_hash, stamp_millis, stamp_of,
};

/// The format tag inside every segment.
pub const FORMAT: &str = "lbrecon-journal/1";
/// The folder of a target's journal, inside the target's folder of the snapshot store.
pub const FOLDER: &str = "journal";
const SUFFIX: &str = ".json.gz";

/// One sealed stretch of the journal: the records read between two seals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub format: String,
    pub target: String,
    pub region: String,
    pub table: String,
    pub stream_arn: String,
    /// The span the reading covered: from the previous seal to this one (Unix milliseconds).
    pub from_millis: i64,
    pub to_millis: i64,
    /// Per shard, the last sequence number journaled in it, over every shard known so far (not
    /// only those of this segment): what a new leader resumes after.
    pub positions: BTreeMap<String, String>,
    /// Stretches in which records may be missing.
    pub gaps: Vec<Gap>,
    /// The records, verbatim, in the order read.
    pub records: Vec<StreamRecord>,
}

/// What a segment's name says of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentId {
    /// `20261126T101500123Z`: the start of the span; ids sort by it.
    pub from: String,
    /// The end of the span: the journal is whole up to it.
    pub to: String,
    /// The newest record's creation time, where it is later than `to` (a record read before
    /// every shard was read that far): which replays need this segment.
    pub reach: String,
    pub records: usize,
    pub hash: String,
}

impl SegmentId {
    /// `<from>-<to>-<reach>-<records>r-<hash>`.
    pub fn as_string(&self) -> String {
        format!(
            "{}-{}-{}-{}r-{}",
            self.from, self.to, self.reach, self.records, self.hash
        )
    }

    /// Parses an id (or a file name ending in `.json.gz`).
    pub fn parse(text: &str) -> Option<SegmentId> {
        let text = text.strip_suffix(SUFFIX).unwrap_or(text);
        let mut parts = text.splitn(5, '-');
        let from = parts.next()?;
        let to = parts.next()?;
        let reach = parts.next()?;
        let records = parts.next()?.strip_suffix('r')?.parse().ok()?;
        let hash = parts.next()?;
        (is_stamp(from) && is_stamp(to) && is_stamp(reach) && is_hash(hash)).then(|| SegmentId {
            from: from.to_string(),
            to: to.to_string(),
            reach: reach.to_string(),
            records,
            hash: hash.to_string(),
        })
    }

    /// The latest of the span's end and its records' creation times, Unix milliseconds.
    pub fn reach_millis(&self) -> i64 {
        stamp_millis(&self.reach).unwrap_or(0)
    }

    /// The start of the span, Unix milliseconds.
    pub fn from_millis(&self) -> i64 {
        stamp_millis(&self.from).unwrap_or(0)
    }

    /// The end of the span, Unix milliseconds.
    pub fn to_millis(&self) -> i64 {
        stamp_millis(&self.to).unwrap_or(0)
    }

    fn file_name(&self) -> String {
        format!("{}{SUFFIX}", self.as_string())
    }
}

/// One stored segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub id: SegmentId,
    pub bytes: u64,
    /// A path, or `s3://bucket/key`.
    pub location: String,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "journal segment {location} is corrupt or truncated: {reason}; move it out of the store to have its span treated as a gap"
    )]
    Corrupt { location: String, reason: String },
    #[error("journal: {0}")]
    Store(#[from] SnapshotError),
}

impl JournalError {
    /// A short, fixed label.
    pub fn kind(&self) -> &'static str {
        match self {
            JournalError::Corrupt { .. } => "corrupt",
            JournalError::Store(err) => err.kind(),
        }
    }
}

impl Segment {
    /// A segment of `records` read from `from_millis` to `to_millis`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target: &str,
        region: &str,
        table: &str,
        stream_arn: &str,
        from_millis: i64,
        to_millis: i64,
        positions: BTreeMap<String, String>,
        gaps: Vec<Gap>,
        records: Vec<StreamRecord>,
    ) -> Segment {
        Segment {
            format: FORMAT.to_string(),
            target: target.to_string(),
            region: region.to_string(),
            table: table.to_string(),
            stream_arn: stream_arn.to_string(),
            from_millis,
            to_millis,
            positions,
            gaps,
            records,
        }
    }

    fn json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a segment always serializes")
    }

    /// The id it is stored under: its span, its record count, and the hash of its JSON (the
    /// canonical content: fields in a fixed order, maps sorted).
    pub fn id(&self) -> SegmentId {
        let newest = self.records.iter().map(|r| r.created_millis).max();
        SegmentId {
            from: stamp_of(self.from_millis),
            to: stamp_of(self.to_millis),
            reach: stamp_of(newest.map_or(self.to_millis, |n| n.max(self.to_millis))),
            records: self.records.len(),
            hash: short_hash(&self.json()),
        }
    }

    /// Gzip-compressed JSON.
    pub fn encode(&self) -> Vec<u8> {
        gzip(&self.json())
    }

    /// Reads a segment, checking it is whole and, with `expected`, that it is the one its name
    /// says: a truncated or altered file is an error naming it.
    pub fn decode(
        bytes: &[u8],
        location: &str,
        expected: Option<&SegmentId>,
    ) -> Result<Segment, JournalError> {
        let corrupt = |reason: String| JournalError::Corrupt {
            location: location.to_string(),
            reason,
        };
        let json = gunzip(bytes).map_err(corrupt)?;
        let segment: Segment = serde_json::from_slice(&json)
            .map_err(|err| corrupt(format!("not a journal segment ({err})")))?;
        if segment.format != FORMAT {
            return Err(corrupt(format!(
                "format {:?}, expected {FORMAT:?}",
                segment.format
            )));
        }
        if let Some(expected) = expected {
            let id = segment.id();
            if id != *expected {
                return Err(corrupt(format!(
                    "its content ({}) does not match its name",
                    id.as_string()
                )));
            }
        }
        Ok(segment)
    }
}

impl Store {
    /// Stores a sealed segment of `target`'s journal: atomically in a local store, one
    /// `PutObject` in S3.
    pub async fn put_segment(
        &self,
        target: &str,
        segment: &Segment,
    ) -> Result<SegmentEntry, JournalError> {
        let id = segment.id();
        let bytes = segment.encode();
        let size = bytes.len() as u64;
        let location = self
            .put_file(target, Some(FOLDER), &id.file_name(), bytes)
            .await?;
        Ok(SegmentEntry {
            id,
            bytes: size,
            location,
        })
    }

    /// Every segment of `target`'s journal, oldest first; other files are ignored.
    pub async fn list_segments(&self, target: &str) -> Result<Vec<SegmentEntry>, JournalError> {
        Ok(self
            .list_named(target, Some(FOLDER), SegmentId::parse)
            .await?
            .into_iter()
            .map(|(id, bytes, location)| SegmentEntry {
                id,
                bytes,
                location,
            })
            .collect())
    }

    /// Reads one segment, checking it is whole.
    pub async fn get_segment(&self, entry: &SegmentEntry) -> Result<Segment, JournalError> {
        let bytes = self.read_file(&entry.location).await?;
        Segment::decode(&bytes, &entry.location, Some(&entry.id))
    }

    /// Deletes one segment.
    pub async fn delete_segment(&self, entry: &SegmentEntry) -> Result<(), JournalError> {
        Ok(self.delete_file(&entry.location).await?)
    }
}

/// Where the journal of `target` stands: per shard, the last sequence number journaled, from
/// the newest segment alone (its positions are cumulative). Empty without a journal. A new
/// leader skips records at or before these.
pub async fn journaled_positions(
    store: &Store,
    target: &str,
) -> Result<BTreeMap<String, String>, JournalError> {
    match store.list_segments(target).await?.last() {
        Some(newest) => Ok(store.get_segment(newest).await?.positions),
        None => Ok(BTreeMap::new()),
    }
}

/// Which segments retention deletes: those whose span and records all end before the oldest
/// snapshot still kept (no restore starts before that snapshot, so nothing replays them). Without a snapshot,
/// none. `segments` in any order.
pub fn segments_to_prune(
    segments: &[SegmentEntry],
    oldest_kept_snapshot_millis: Option<i64>,
) -> Vec<SegmentEntry> {
    let Some(oldest) = oldest_kept_snapshot_millis else {
        return Vec::new();
    };
    segments
        .iter()
        .filter(|entry| entry.id.reach_millis() < oldest)
        .cloned()
        .collect()
}

/// The segments a replay from `after_millis` to `until_millis` reads: those whose span, or
/// records, reach `[after, until]` (the one holding the snapshot's time included, for the
/// records the snapshot may not have seen).
pub fn segments_for(
    segments: &[SegmentEntry],
    after_millis: i64,
    until_millis: i64,
) -> Vec<SegmentEntry> {
    segments
        .iter()
        .filter(|entry| {
            entry.id.reach_millis() >= after_millis && entry.id.from_millis() <= until_millis
        })
        .cloned()
        .collect()
}

fn name_of(item: &Item) -> Option<&str> {
    item.get("name").and_then(AttrValue::as_s)
}

/// The second a time falls in (DynamoDB's `ApproximateCreationDateTime` is rounded down to it).
fn second_of(millis: i64) -> i64 {
    millis.div_euclid(1000)
}

/// Records in replay order (sequence, then shard), each (shard, sequence) once.
pub fn ordered(records: &[StreamRecord]) -> Vec<&StreamRecord> {
    let mut ordered: Vec<&StreamRecord> = records.iter().collect();
    ordered.sort_by(|a, b| replay_order(a, b));
    ordered.dedup_by(|a, b| a.shard == b.shard && a.sequence == b.sequence);
    ordered
}

/// Whether two items, either absent, are the same (sets compared as sets).
fn same(a: Option<&Item>, b: Option<&Item>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => crate::model::item::same_item(a, b),
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// What the item was before a record, where the record says: absent before an `INSERT`, the
/// old image before a `MODIFY` or `REMOVE` (`None` when the stream did not carry it).
fn before(record: &StreamRecord) -> Option<Option<&Item>> {
    match record.event {
        StreamEvent::Insert => Some(None),
        StreamEvent::Modify | StreamEvent::Remove => record.old_image.as_ref().map(Some),
    }
}

/// The table at `until_millis`: `base` (a snapshot's items, taken at `after_millis`) with the
/// journal's `records` applied in replay order, each (shard, sequence) once. An `INSERT` or
/// `MODIFY` sets the item to its new image; a `REMOVE` deletes it.
///
/// Times: DynamoDB rounds a record's creation time down to the second, and a snapshot is made
/// from a scan that reads items over a while before its time, so a record of the snapshot's
/// second or before may or may not be in it. Such a record is applied only when it continues
/// from what the replay holds: its old image (absence, for an `INSERT`) equals the item held.
/// A record the snapshot already holds does not (the item held is its new image, or later), and
/// the records of one item form a chain, so the first one that continues from the snapshot's
/// item and every one after it apply, leaving the item as the last of them left it, whichever
/// point of the chain the snapshot saw. A `MODIFY` or `REMOVE` without an old image is applied.
/// Records of a later second are applied as they are. Records of `until_millis`'s second are
/// included: the journal knows times to the second.
pub fn replay(
    base: impl IntoIterator<Item = Item>,
    records: &[StreamRecord],
    after_millis: i64,
    until_millis: i64,
) -> BTreeMap<String, Item> {
    replay_counted(base, records, after_millis, until_millis).0
}

/// Whether a record can change what a replay onto a snapshot taken at `snapshot_millis` gives:
/// one of the snapshot's second or later. A record of an earlier second was written before the
/// snapshot's scan began, so the scan read it (or what followed it): replayed, it either does
/// not continue from the item held or continues a chain the snapshot already ends. A reader
/// that keeps only these holds a few records where a segment sealed while the stream's backlog
/// was read holds thousands.
pub fn may_change(record: &StreamRecord, snapshot_millis: i64) -> bool {
    second_of(record.created_millis) >= second_of(snapshot_millis)
}

/// [`replay`], with how many records it applied.
pub fn replay_counted(
    base: impl IntoIterator<Item = Item>,
    records: &[StreamRecord],
    after_millis: i64,
    until_millis: i64,
) -> (BTreeMap<String, Item>, usize) {
    let base = base
        .into_iter()
        .filter_map(|item| Some((name_of(&item)?.to_string(), item)));
    replay_with(base, records, after_millis, until_millis, Item::clone, same)
}

/// [`replay`] over items held as `V` (the item itself, or its digests): `hold` makes one of an
/// image, and `continues` says whether a record's old image (`None`: absent) is the item held.
fn replay_with<V>(
    base: impl IntoIterator<Item = (String, V)>,
    records: &[StreamRecord],
    after_millis: i64,
    until_millis: i64,
    hold: impl Fn(&Item) -> V,
    continues: impl Fn(Option<&Item>, Option<&V>) -> bool,
) -> (BTreeMap<String, V>, usize) {
    let mut applied = 0;
    let mut state: BTreeMap<String, V> = base.into_iter().collect();
    let snapshot_second = second_of(after_millis);
    for record in ordered(records) {
        if second_of(record.created_millis) > second_of(until_millis) {
            continue;
        }
        let Some(name) = record.name() else { continue };
        if second_of(record.created_millis) <= snapshot_second {
            let held = state.get(name);
            match before(record) {
                Some(before) if !continues(before, held) => continue,
                _ => {}
            }
        }
        match record.after() {
            Some(item) => {
                state.insert(name.to_string(), hold(item));
            }
            None => {
                state.remove(name);
            }
        }
        applied += 1;
    }
    (state, applied)
}

/// Where the journal may lack records between `from_millis` and `to_millis`: the time no
/// segment covers (before the first, between two, after the last up to `to_millis`), and the
/// gaps recorded in the segments read that overlap the window. Oldest first.
pub fn gaps_between(
    segments: &[SegmentId],
    recorded: &[Gap],
    from_millis: i64,
    to_millis: i64,
) -> Vec<Gap> {
    let mut gaps = Vec::new();
    if from_millis >= to_millis {
        return gaps;
    }
    let mut spans: Vec<(i64, i64)> = segments
        .iter()
        .map(|id| (id.from_millis(), id.to_millis()))
        .collect();
    spans.sort();
    let mut covered_to = from_millis;
    let mut first = true;
    for (from, to) in spans {
        if to <= covered_to {
            continue;
        }
        if from > covered_to && covered_to < to_millis {
            gaps.push(Gap {
                shard: None,
                from_millis: covered_to,
                to_millis: from.min(to_millis),
                reason: if first {
                    "before the journal's first segment".to_string()
                } else {
                    "no journal segment covers it".to_string()
                },
            });
        }
        first = false;
        covered_to = covered_to.max(to);
    }
    if covered_to < to_millis {
        gaps.push(Gap {
            shard: None,
            from_millis: covered_to,
            to_millis,
            reason: if first {
                "no journal segment covers it".to_string()
            } else {
                "after the journal's last sealed segment".to_string()
            },
        });
    }
    gaps.extend(
        recorded
            .iter()
            .filter(|gap| gap.from_millis < to_millis && gap.to_millis > from_millis)
            .cloned(),
    );
    gaps.sort_by_key(|gap| (gap.from_millis, gap.to_millis));
    gaps.dedup();
    gaps
}

/// A gap in words: `2026-11-26T10:15:00.000Z to 2026-11-26T10:20:00.000Z (shard s): why`.
pub fn describe_gap(gap: &Gap) -> String {
    let shard = gap
        .shard
        .as_deref()
        .map(|shard| format!(" (shard {shard})"))
        .unwrap_or_default();
    format!(
        "{} to {}{shard}: {}",
        rfc3339_millis(gap.from_millis),
        rfc3339_millis(gap.to_millis),
        gap.reason
    )
}

/// One disagreement of the recovery check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The item's `name`.
    pub name: String,
    pub kind: MismatchKind,
}

/// How the replayed table and the scan disagree on an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// The scan holds it; the snapshot and journal replayed do not.
    MissingFromReplay,
    /// The replay holds it; the scan does not.
    MissingFromScan,
    /// Both hold it, with these attributes different (by name).
    AttributesDiffer(Vec<String>),
}

impl MismatchKind {
    /// A short, fixed label, for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            MismatchKind::MissingFromReplay => "missing_from_replay",
            MismatchKind::MissingFromScan => "missing_from_scan",
            MismatchKind::AttributesDiffer(_) => "attributes_differ",
        }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            MismatchKind::MissingFromReplay => write!(
                f,
                "{}: in the table, but not in the last snapshot replayed with the journal",
                self.name
            ),
            MismatchKind::MissingFromScan => write!(
                f,
                "{}: in the last snapshot replayed with the journal, but not in the table",
                self.name
            ),
            MismatchKind::AttributesDiffer(attributes) => write!(
                f,
                "{}: the replay and the table differ in {}",
                self.name,
                attributes.join(", ")
            ),
        }
    }
}

/// The recovery check: the last snapshot (`snapshot`, its items' [`Digests`] by name, taken at
/// `snapshot_millis`) with the journal's `records` replayed must equal the scan (`scanned`, by
/// name, started at `scan_started_millis`), item by item. Items written during the scan cannot
/// be compared and are left out: those named in `written_during`, and those with a record of
/// the second before the scan started or later (creation times are rounded down to the
/// second). Both sides are held as digests, never as items: at 10,000 records the items' trees
/// would take some 80 MB each. Pure; the disagreements sorted by name.
pub fn recovery_check(
    snapshot: impl IntoIterator<Item = (String, Digests)>,
    snapshot_millis: i64,
    records: &[StreamRecord],
    scan_started_millis: i64,
    scanned: &BTreeMap<String, Digests>,
    written_during: &BTreeSet<String>,
) -> Vec<Mismatch> {
    let (replayed, _) = replay_with(
        snapshot,
        records,
        snapshot_millis,
        i64::MAX,
        digests,
        |before, held| match (before, held) {
            (Some(before), Some(held)) => digests(before) == *held,
            (before, held) => before.is_none() && held.is_none(),
        },
    );
    let mut excluded: BTreeSet<&str> = written_during.iter().map(String::as_str).collect();
    let scan_second = second_of(scan_started_millis);
    excluded.extend(
        records
            .iter()
            .filter(|record| second_of(record.created_millis) >= scan_second - 1)
            .filter_map(StreamRecord::name),
    );
    let names: BTreeSet<&str> = scanned
        .keys()
        .chain(replayed.keys())
        .map(String::as_str)
        .filter(|name| !excluded.contains(name))
        .collect();
    let mut mismatches = Vec::new();
    for name in names {
        let kind = match (replayed.get(name), scanned.get(name)) {
            (None, Some(_)) => MismatchKind::MissingFromReplay,
            (Some(_), None) => MismatchKind::MissingFromScan,
            (Some(replayed), Some(scanned)) => {
                let attributes = differing(replayed, scanned);
                if attributes.is_empty() {
                    continue;
                }
                MismatchKind::AttributesDiffer(attributes)
            }
            (None, None) => continue,
        };
        mismatches.push(Mismatch {
            name: name.to_string(),
            kind,
        });
    }
    mismatches
}

/// The attributes two items' digests disagree on (held by one only, or with other values),
/// sorted.
fn differing(a: &Digests, b: &Digests) -> Vec<String> {
    let digest_in = |digests: &Digests, name: &str| {
        digests
            .iter()
            .find(|(held, _)| &**held == name)
            .map(|(_, digest)| *digest)
    };
    a.iter()
        .chain(b.iter())
        .map(|(name, _)| &**name)
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .filter(|name| digest_in(a, name) != digest_in(b, name))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::snapshot::{Snapshot, SnapshotItem};

    const SECOND: i64 = 1000;
    /// 2026-11-26T10:15:00Z.
    const T0: i64 = 1_795_688_100_000;

    fn item(name: &str, version: u32) -> Item {
        [
            ("name".to_string(), AttrValue::S(name.into())),
            ("version".to_string(), AttrValue::N(version.to_string())),
        ]
        .into_iter()
        .collect()
    }

    fn key(name: &str) -> Item {
        [("name".to_string(), AttrValue::S(name.into()))].into()
    }

    fn record(
        sequence: u64,
        created_millis: i64,
        event: StreamEvent,
        old: Option<Item>,
        new: Option<Item>,
    ) -> StreamRecord {
        let name = new
            .as_ref()
            .or(old.as_ref())
            .and_then(|i| name_of(i).map(str::to_string))
            .unwrap_or_default();
        StreamRecord {
            shard: "shard-1".into(),
            sequence: sequence.to_string(),
            event,
            created_millis,
            keys: key(&name),
            old_image: old,
            new_image: new,
        }
    }

    fn insert(sequence: u64, at: i64, new: Item) -> StreamRecord {
        record(sequence, at, StreamEvent::Insert, None, Some(new))
    }

    fn modify(sequence: u64, at: i64, old: Item, new: Item) -> StreamRecord {
        record(sequence, at, StreamEvent::Modify, Some(old), Some(new))
    }

    fn remove(sequence: u64, at: i64, old: Item) -> StreamRecord {
        record(sequence, at, StreamEvent::Remove, Some(old), None)
    }

    fn segment(from: i64, to: i64, records: Vec<StreamRecord>) -> Segment {
        Segment::new(
            "prod",
            "us-east-1",
            "lb-state",
            "arn:aws:dynamodb:us-east-1:1:table/lb-state/stream/2026-11-26T00:00:00.000",
            from,
            to,
            [("shard-1".to_string(), "7".to_string())].into(),
            vec![],
            records,
        )
    }

    #[test]
    fn a_segment_name_round_trips_and_sorts_by_time() {
        let seg = segment(T0, T0 + 60 * SECOND, vec![insert(1, T0, item("a", 1))]);
        let id = seg.id();
        assert_eq!(id.from, "20261126T101500000Z");
        assert_eq!(id.to, "20261126T101600000Z");
        assert_eq!(id.records, 1);
        assert_eq!(SegmentId::parse(&id.as_string()), Some(id.clone()));
        assert_eq!(SegmentId::parse(&id.file_name()), Some(id.clone()));
        assert_eq!((id.from_millis(), id.to_millis()), (T0, T0 + 60 * SECOND));
        let later = segment(T0 + 60 * SECOND, T0 + 120 * SECOND, vec![]).id();
        assert!(later > id);
        // A snapshot's name is no segment's, and the reverse.
        let snapshot = Snapshot::new("prod", "r", "t", vec![], T0).id().as_string();
        assert_eq!(SegmentId::parse(&snapshot), None);
        assert_eq!(
            crate::recovery::snapshot::SnapshotId::parse(&id.as_string()),
            None
        );
        for bad in [
            "",
            "20261126T101500000Z-20261126T101600000Z-1r-zz",
            "20261126T101500000Z-x-1r-0123456789abcdef",
            "20261126T101500000Z-20261126T101600000Z-r-0123456789abcdef",
        ] {
            assert_eq!(SegmentId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn corrupt_truncated_and_altered_segments_are_named_errors() {
        let seg = segment(T0, T0 + SECOND, vec![insert(1, T0, item("a", 1))]);
        let bytes = seg.encode();
        let id = seg.id();
        assert_eq!(Segment::decode(&bytes, "x", Some(&id)).unwrap(), seg);
        let truncated =
            Segment::decode(&bytes[..bytes.len() / 2], "/j/s.json.gz", Some(&id)).unwrap_err();
        assert!(
            truncated.to_string().contains("/j/s.json.gz"),
            "{truncated}"
        );
        assert_eq!(truncated.kind(), "corrupt");
        assert!(Segment::decode(b"garbage", "g", None).is_err());
        let mut altered = seg.clone();
        altered.records[0].new_image = Some(item("a", 2));
        let err = Segment::decode(&altered.encode(), "m", Some(&id)).unwrap_err();
        assert!(err.to_string().contains("does not match its name"), "{err}");
        let snapshot = Snapshot::new("prod", "r", "t", vec![], T0);
        assert!(Segment::decode(&snapshot.encode(), "s", None).is_err());
    }

    #[tokio::test]
    async fn the_local_store_keeps_segments_apart_from_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local {
            dir: dir.path().to_path_buf(),
        };
        let snapshot = Snapshot::new(
            "prod",
            "r",
            "t",
            vec![SnapshotItem {
                item: item("a", 1),
                live_arn: None,
            }],
            T0,
        );
        store.put(&snapshot).await.unwrap();
        let second = segment(T0 + SECOND, T0 + 2 * SECOND, vec![]);
        let first = segment(T0, T0 + SECOND, vec![insert(1, T0, item("b", 1))]);
        store.put_segment("prod", &second).await.unwrap();
        let entry = store.put_segment("prod", &first).await.unwrap();
        assert!(
            entry.location.contains("/prod/journal/"),
            "{}",
            entry.location
        );
        std::fs::write(dir.path().join("prod/journal/notes.txt"), "ignored").unwrap();

        let snapshots = store.list("prod").await.unwrap();
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].id, snapshot.id());
        let segments = store.list_segments("prod").await.unwrap();
        assert_eq!(
            segments.iter().map(|e| &e.id).collect::<Vec<_>>(),
            vec![&first.id(), &second.id()]
        );
        assert_eq!(store.get_segment(&segments[0]).await.unwrap(), first);
        assert!(store.list_segments("other").await.unwrap().is_empty());
        assert_eq!(
            journaled_positions(&store, "prod").await.unwrap(),
            second.positions
        );
        assert!(
            journaled_positions(&store, "other")
                .await
                .unwrap()
                .is_empty()
        );

        std::fs::write(&segments[1].location, b"cut").unwrap();
        let err = store.get_segment(&segments[1]).await.unwrap_err();
        assert!(err.to_string().contains(&segments[1].location), "{err}");

        store.delete_segment(&segments[0]).await.unwrap();
        assert_eq!(store.list_segments("prod").await.unwrap().len(), 1);
        assert_eq!(store.list("prod").await.unwrap().len(), 1);
    }

    #[test]
    fn replay_applies_records_after_the_snapshot_and_up_to_the_instant() {
        let snap = T0 + 500;
        let base = vec![item("kept", 1), item("changed", 1), item("removed", 1)];
        let records = vec![
            // Before the snapshot's second, already in it.
            insert(1, T0 - 5 * SECOND, item("kept", 1)),
            modify(2, T0 - 5 * SECOND, item("changed", 0), item("changed", 1)),
            // After it.
            modify(3, T0 + 2 * SECOND, item("changed", 1), item("changed", 2)),
            remove(4, T0 + 3 * SECOND, item("removed", 1)),
            insert(5, T0 + 4 * SECOND, item("new", 1)),
            // After the instant.
            modify(6, T0 + 9 * SECOND, item("changed", 2), item("changed", 3)),
        ];
        let state = replay(base.clone(), &records, snap, T0 + 5 * SECOND);
        assert_eq!(
            state,
            BTreeMap::from([
                ("changed".to_string(), item("changed", 2)),
                ("kept".to_string(), item("kept", 1)),
                ("new".to_string(), item("new", 1)),
            ])
        );
        // Up to an earlier instant: only what happened by then.
        let state = replay(base.clone(), &records, snap, T0 + 2 * SECOND);
        assert_eq!(state["changed"], item("changed", 2));
        assert_eq!(state["removed"], item("removed", 1));
        assert!(!state.contains_key("new"));
        // Records in the instant's second are included.
        let state = replay(base, &records, snap, T0 + 9 * SECOND + 1);
        assert_eq!(state["changed"], item("changed", 3));
    }

    #[test]
    fn records_of_the_snapshots_second_apply_only_when_they_continue_from_it() {
        let snap = T0 + 500;
        // The snapshot saw the first modification of a, but not the second; it saw b removed;
        // c's insertion and d's removal came after it, in the same second.
        let base = vec![item("a", 2), item("d", 1)];
        let records = vec![
            modify(1, T0, item("a", 1), item("a", 2)),
            modify(2, T0, item("a", 2), item("a", 3)),
            remove(3, T0, item("b", 1)),
            insert(4, T0, item("c", 1)),
            remove(5, T0, item("d", 1)),
        ];
        let state = replay(base, &records, snap, T0 + 10 * SECOND);
        assert_eq!(
            state,
            BTreeMap::from([
                ("a".to_string(), item("a", 3)),
                ("c".to_string(), item("c", 1)),
            ])
        );
        // A record the snapshot already holds changes nothing: re-inserting it is not redone
        // over a later version.
        let state = replay(
            vec![item("c", 2)],
            &[insert(1, T0, item("c", 1))],
            snap,
            T0 + SECOND,
        );
        assert_eq!(state["c"], item("c", 2));
        // The same record a second later is after the snapshot and applies.
        let state = replay(
            vec![item("c", 2)],
            &[modify(1, T0 + SECOND, item("c", 9), item("c", 3))],
            snap,
            T0 + 2 * SECOND,
        );
        assert_eq!(state["c"], item("c", 3));
    }

    #[test]
    fn a_duplicate_record_applies_once_and_records_apply_in_sequence_order() {
        let records = vec![
            insert(3, T0 + 3 * SECOND, item("a", 1)),
            remove(2, T0 + 2 * SECOND, item("a", 0)),
            // Read twice (a shard re-read after a leader change).
            insert(3, T0 + 3 * SECOND, item("a", 1)),
        ];
        assert_eq!(ordered(&records).len(), 2);
        let state = replay(vec![item("a", 0)], &records, T0, T0 + 10 * SECOND);
        assert_eq!(state["a"], item("a", 1));
        // The same record read twice is one, whatever its position among the others.
        let records = vec![
            modify(1, T0 + SECOND, item("a", 0), item("a", 1)),
            modify(1, T0 + SECOND, item("a", 0), item("a", 1)),
        ];
        assert_eq!(ordered(&records).len(), 1);
    }

    fn id(from: i64, to: i64) -> SegmentId {
        segment(from, to, vec![]).id()
    }

    #[test]
    fn gaps_are_the_holes_between_segments_and_the_recorded_ones() {
        let minute = 60 * SECOND;
        let segments = vec![
            id(T0 + 2 * minute, T0 + 3 * minute),
            id(T0, T0 + minute),
            id(T0 + minute, T0 + 2 * minute - SECOND),
        ];
        let recorded = vec![
            Gap {
                shard: Some("shard-1".into()),
                from_millis: T0 + 10 * SECOND,
                to_millis: T0 + 20 * SECOND,
                reason: "the checkpoint is older than the stream's trim horizon".into(),
            },
            Gap {
                shard: None,
                from_millis: T0 - 10 * minute,
                to_millis: T0 - 9 * minute,
                reason: "long before".into(),
            },
        ];
        let gaps = gaps_between(&segments, &recorded, T0 - minute, T0 + 4 * minute);
        let spans: Vec<(i64, i64)> = gaps.iter().map(|g| (g.from_millis, g.to_millis)).collect();
        assert_eq!(
            spans,
            vec![
                (T0 - minute, T0),
                (T0 + 10 * SECOND, T0 + 20 * SECOND),
                (T0 + 2 * minute - SECOND, T0 + 2 * minute),
                (T0 + 3 * minute, T0 + 4 * minute),
            ]
        );
        assert_eq!(gaps[0].reason, "before the journal's first segment");
        assert_eq!(gaps[3].reason, "after the journal's last sealed segment");
        assert!(describe_gap(&gaps[1]).contains("(shard shard-1): the checkpoint"));
        // A window the segments cover whole, away from the recorded gap: none.
        assert!(gaps_between(&segments, &recorded, T0 + 30 * SECOND, T0 + minute).is_empty());
        // No segment at all: the whole window.
        let all = gaps_between(&[], &[], T0, T0 + minute);
        assert_eq!((all[0].from_millis, all[0].to_millis), (T0, T0 + minute));
        assert!(gaps_between(&segments, &recorded, T0, T0).is_empty());
    }

    #[test]
    fn segments_are_pruned_once_older_than_the_oldest_snapshot_kept() {
        let hour = 3_600_000;
        let entries: Vec<SegmentEntry> = (0..4)
            .map(|i| SegmentEntry {
                id: id(T0 + i * hour, T0 + (i + 1) * hour),
                bytes: 1,
                location: String::new(),
            })
            .collect();
        assert!(segments_to_prune(&entries, None).is_empty());
        let pruned = segments_to_prune(&entries, Some(T0 + 2 * hour + 1));
        assert_eq!(pruned, entries[..2].to_vec());
        // The segment the oldest snapshot falls in is kept: it holds what the snapshot's scan
        // may have missed.
        assert_eq!(segments_to_prune(&entries, Some(T0 + 2 * hour)).len(), 1);
        assert_eq!(
            segments_for(&entries, T0 + 2 * hour + 1, T0 + 3 * hour),
            entries[2..].to_vec()
        );
    }

    #[test]
    fn a_segment_holding_records_newer_than_its_span_is_read_and_kept_for_them() {
        // Sealed while one shard was behind: whole only to T0 + 10 s, holding a record of
        // T0 + 30 s from another shard.
        let ahead = segment(
            T0,
            T0 + 10 * SECOND,
            vec![modify(1, T0 + 30 * SECOND, item("a", 0), item("a", 1))],
        );
        let entries = vec![SegmentEntry {
            id: ahead.id(),
            bytes: 1,
            location: String::new(),
        }];
        assert_eq!(ahead.id().to_millis(), T0 + 10 * SECOND);
        assert_eq!(ahead.id().reach_millis(), T0 + 30 * SECOND);
        assert_eq!(SegmentId::parse(&ahead.id().as_string()), Some(ahead.id()));
        // A snapshot of T0 + 20 s needs it; a snapshot after its record does not.
        assert_eq!(
            segments_for(&entries, T0 + 20 * SECOND, T0 + 40 * SECOND).len(),
            1
        );
        assert!(segments_to_prune(&entries, Some(T0 + 20 * SECOND)).is_empty());
        assert_eq!(segments_to_prune(&entries, Some(T0 + 31 * SECOND)).len(), 1);
    }

    #[test]
    fn the_recovery_check_finds_lost_and_changed_items_but_not_those_written_during_the_scan() {
        let snap = T0;
        let scan = T0 + 60 * SECOND;
        let base = vec![item("a", 1), item("b", 1), item("c", 1), item("d", 1)];
        let records = vec![
            modify(1, T0 + 10 * SECOND, item("b", 1), item("b", 2)),
            // During the scan: the scan may have read either version.
            modify(2, scan, item("c", 1), item("c", 2)),
        ];
        // The scan: a as replayed; b lost its change (a lost write the journal holds); c as it
        // was before its change; d gone with no record of it; e there with no record of it;
        // f written during the scan by the caller's account.
        let scanned = vec![
            item("a", 1),
            item("b", 1),
            item("c", 1),
            item("e", 1),
            item("f", 1),
        ];
        let during: BTreeSet<String> = ["f".to_string()].into();
        let mismatches = recovery_check(
            held(&base),
            snap,
            &records,
            scan,
            &held(&scanned).collect(),
            &during,
        );
        assert_eq!(
            mismatches,
            vec![
                Mismatch {
                    name: "b".into(),
                    kind: MismatchKind::AttributesDiffer(vec!["version".into()]),
                },
                Mismatch {
                    name: "d".into(),
                    kind: MismatchKind::MissingFromScan,
                },
                Mismatch {
                    name: "e".into(),
                    kind: MismatchKind::MissingFromReplay,
                },
            ]
        );
        assert!(mismatches[0].to_string().contains("differ in version"));
        assert_eq!(mismatches[1].kind.as_str(), "missing_from_scan");
        // Agreeing sides: nothing.
        let agreeing = vec![item("a", 1), item("b", 2), item("c", 2), item("d", 1)];
        let agreeing = held(&agreeing).collect();
        assert!(
            recovery_check(
                held(&base),
                snap,
                &records,
                scan,
                &agreeing,
                &BTreeSet::new()
            )
            .is_empty()
        );
        // Sets compare as sets: a set read back in another order is the same item.
        let tagged = |members: &[&str]| {
            let mut item = item("g", 1);
            let members = members.iter().map(|m| m.to_string()).collect();
            item.insert("tags".into(), AttrValue::Ss(members));
            item
        };
        let base = vec![tagged(&["x", "y"])];
        let scanned = held(&[tagged(&["y", "x"])]).collect();
        assert!(
            recovery_check(held(&base), snap, &[], scan, &scanned, &BTreeSet::new()).is_empty()
        );
        let scanned = held(&[tagged(&["y", "z"])]).collect();
        assert_eq!(
            recovery_check(held(&base), snap, &[], scan, &scanned, &BTreeSet::new())[0].kind,
            MismatchKind::AttributesDiffer(vec!["tags".into()])
        );
    }

    #[test]
    fn records_from_before_the_snapshots_second_change_nothing_in_its_replay() {
        // Changed, reverted and changed again before the snapshot, which saw the last state;
        // then changed once after it.
        let records = vec![
            modify(1, T0 - 5 * SECOND, item("a", 0), item("a", 1)),
            modify(2, T0 - 4 * SECOND, item("a", 1), item("a", 0)),
            modify(3, T0 - 3 * SECOND, item("a", 0), item("a", 2)),
            insert(4, T0 - 2 * SECOND, item("b", 0)),
            modify(5, T0 + 2 * SECOND, item("a", 2), item("a", 3)),
        ];
        let base = vec![item("a", 2), item("b", 0)];
        let kept: Vec<StreamRecord> = records
            .iter()
            .filter(|record| may_change(record, T0))
            .cloned()
            .collect();
        assert_eq!(kept.len(), 1);
        let all = replay(base.clone(), &records, T0, i64::MAX);
        assert_eq!(replay(base, &kept, T0, i64::MAX), all);
        assert_eq!(all["a"], item("a", 3));
    }

    /// Items as the recovery check holds them: their digests, by name.
    fn held(items: &[Item]) -> impl Iterator<Item = (String, Digests)> + '_ {
        items
            .iter()
            .map(|item| (name_of(item).unwrap().to_string(), digests(item)))
    }
}
