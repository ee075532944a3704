//! Point-in-time snapshots of the state table (docs/architecture.md#snapshots): the format, names, and the stores.
//!
//! A snapshot holds every item of the state table verbatim (DynamoDB JSON, every attribute,
//! invalid items too) with the ARN of the live load balancer of that name at the time. It is
//! gzip-compressed JSON, named `<time>-<records>r-<hash>.json.gz`, where the hash is the
//! content's SHA-256: the name alone says when, how many, and whether two snapshots differ.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::aws::AwsError;
use crate::aws::s3::S3;
use crate::model::clock::{parse_rfc3339_millis, rfc3339_millis};
use crate::model::item::Item;

/// The format tag inside every snapshot.
pub const FORMAT: &str = "lbrecon-snapshot/1";
const SUFFIX: &str = ".json.gz";

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: String,
    pub target: String,
    pub region: String,
    pub table: String,
    /// RFC 3339, to the millisecond: when the scan it was made from began.
    pub time: String,
    /// When that scan had ended (RFC 3339): the snapshot may hold changes up to then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_until: Option<String>,
    /// By name.
    pub items: Vec<SnapshotItem>,
}

/// One item, verbatim, with the live load balancer's ARN at snapshot time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotItem {
    pub item: Item,
    pub live_arn: Option<String>,
}

/// What a snapshot's name says of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotId {
    /// `20261126T101500123Z`: sorts by time.
    pub stamp: String,
    pub records: usize,
    pub hash: String,
}

/// Why a snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "snapshot {location} is corrupt or truncated: {reason}; other snapshots are unaffected, pick another with --snapshot or --at"
    )]
    Corrupt { location: String, reason: String },
    #[error("snapshot store {location}: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot store: {0}")]
    Aws(#[from] AwsError),
    #[error("no snapshot {id} of target {target}")]
    NotFound { target: String, id: String },
}

impl SnapshotError {
    /// A short, fixed label.
    pub fn kind(&self) -> &'static str {
        match self {
            SnapshotError::Corrupt { .. } => "corrupt",
            SnapshotError::Io { .. } => "io",
            SnapshotError::Aws(_) => "aws",
            SnapshotError::NotFound { .. } => "not_found",
        }
    }
}

impl SnapshotId {
    /// The id as it appears in listings and on the command line.
    pub fn as_string(&self) -> String {
        format!("{}-{}r-{}", self.stamp, self.records, self.hash)
    }

    /// Parses an id (or a file name ending in `.json.gz`).
    pub fn parse(text: &str) -> Option<SnapshotId> {
        let text = text.strip_suffix(SUFFIX).unwrap_or(text);
        let mut parts = text.splitn(3, '-');
        let stamp = parts.next()?;
        let records = parts.next()?.strip_suffix('r')?.parse().ok()?;
        let hash = parts.next()?;
        (is_stamp(stamp) && is_hash(hash)).then(|| SnapshotId {
            stamp: stamp.to_string(),
            records,
            hash: hash.to_string(),
        })
    }

    /// The time, as Unix milliseconds.
    pub fn unix_millis(&self) -> i64 {
        stamp_millis(&self.stamp).unwrap_or(0)
    }

    /// The time, RFC 3339.
    pub fn rfc3339(&self) -> String {
        rfc3339_millis(self.unix_millis())
    }

    fn file_name(&self) -> String {
        format!("{}{SUFFIX}", self.as_string())
    }
}

/// The content hash of a state: the items (by name) and their live ARNs.
pub fn content_hash(items: &[SnapshotItem]) -> String {
    content_hash_of(items.iter().map(|entry| {
        (
            serde_json::to_string(&entry.item).expect("items always serialize"),
            entry.live_arn.as_deref(),
        )
    }))
}

/// The content hash of items given as their DynamoDB JSON with their live ARNs, in snapshot
/// order: the first 8 bytes of the SHA-256 of `[{"item":...,"live_arn":...},...]`, the bytes
/// `serde_json` writes for `[SnapshotItem]`, hashed as they are produced.
pub fn content_hash_of<'a, S: AsRef<str>>(
    items: impl IntoIterator<Item = (S, Option<&'a str>)>,
) -> String {
    let mut hasher = Sha256::new();
    write_items(items, |bytes| hasher.update(bytes));
    hex::encode(&hasher.finalize()[..8])
}

/// The first 16 hex digits of the SHA-256 of `bytes`: how snapshots and journal segments are
/// named by their content.
pub(crate) fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// The stamp format of stored names: `20261126T101500123Z`, which sorts by time.
const STAMP: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year][month][day]T[hour][minute][second][subsecond digits:3]Z"
);

/// The stamp of a time (Unix milliseconds), as stored names carry it.
pub(crate) fn stamp_of(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(millis as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(STAMP)
        .unwrap_or_default()
}

/// The time (Unix milliseconds) a stamp names.
pub(crate) fn stamp_millis(stamp: &str) -> Option<i64> {
    time::PrimitiveDateTime::parse(stamp, STAMP)
        .ok()
        .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Whether `text` has the shape of a stamp.
pub(crate) fn is_stamp(text: &str) -> bool {
    text.len() == 19
        && text.ends_with('Z')
        && text.as_bytes()[8] == b'T'
        && text[..8].bytes().all(|b| b.is_ascii_digit())
        && text[9..18].bytes().all(|b| b.is_ascii_digit())
}

/// Whether `text` is a 16-hex-digit content hash.
pub(crate) fn is_hash(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Gzip-compresses `bytes`.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// Decompresses gzip data whole; an error says why (truncated, not gzip).
pub(crate) fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|err| format!("not gzip data ({err})"))?;
    Ok(out)
}

/// Writes items given as their DynamoDB JSON with their live ARNs as the JSON `serde_json`
/// writes for `[SnapshotItem]`, piece by piece: what the content hash digests and what a
/// snapshot written from held JSON holds.
fn write_items<'a, S: AsRef<str>>(
    items: impl IntoIterator<Item = (S, Option<&'a str>)>,
    write: impl FnMut(&[u8]),
) {
    let mut writer = ItemsWriter::new(write);
    for (json, arn) in items {
        writer.push(json.as_ref(), arn);
    }
    writer.finish();
}

/// [`write_items`] an item at a time.
struct ItemsWriter<W: FnMut(&[u8])> {
    write: W,
    count: usize,
}

impl<W: FnMut(&[u8])> ItemsWriter<W> {
    fn new(mut write: W) -> Self {
        write(b"[");
        ItemsWriter { write, count: 0 }
    }

    fn push(&mut self, json: &str, arn: Option<&str>) {
        let write = &mut self.write;
        write(if self.count == 0 {
            b"{\"item\":"
        } else {
            b",{\"item\":"
        });
        write(json.as_bytes());
        write(b",\"live_arn\":");
        match arn {
            Some(arn) => write(Value::String(arn.to_string()).to_string().as_bytes()),
            None => write(b"null"),
        }
        write(b"}");
        self.count += 1;
    }

    fn finish(mut self) -> usize {
        (self.write)(b"]");
        self.count
    }
}

impl Snapshot {
    /// A snapshot of `items` taken at `time` (Unix milliseconds).
    pub fn new(
        target: &str,
        region: &str,
        table: &str,
        mut items: Vec<SnapshotItem>,
        millis: i64,
    ) -> Snapshot {
        items.sort_by(|a, b| name_of(&a.item).cmp(name_of(&b.item)));
        let rfc3339 = rfc3339_millis(millis);
        Snapshot {
            format: FORMAT.to_string(),
            target: target.to_string(),
            region: region.to_string(),
            table: table.to_string(),
            time: rfc3339,
            scanned_until: None,
            items,
        }
    }

    /// When the scan it was made from had ended, Unix milliseconds, where it says.
    pub fn scanned_until_millis(&self) -> Option<i64> {
        parse_rfc3339_millis(self.scanned_until.as_deref()?)
    }

    /// The id this snapshot is stored under.
    pub fn id(&self) -> SnapshotId {
        SnapshotId {
            stamp: stamp_of(self.millis()),
            records: self.items.len(),
            hash: content_hash(&self.items),
        }
    }

    /// The id and the encoded bytes of a snapshot of items held as their JSON, each with the
    /// live ARN, already in snapshot order (by name, stably, as [`Snapshot::new`] sorts).
    /// Written straight from the JSON: the same JSON as `Snapshot::new(..).encode()` compresses,
    /// without rebuilding a single item.
    pub fn encode_held<S: AsRef<str>>(
        target: &str,
        region: &str,
        table: &str,
        items: &[(S, Option<&str>)],
        millis: i64,
        scanned_until_millis: Option<i64>,
    ) -> (SnapshotId, Vec<u8>) {
        let mut header = Snapshot::new(target, region, table, Vec::new(), millis);
        header.scanned_until = scanned_until_millis.map(rfc3339_millis);
        let id = SnapshotId {
            records: items.len(),
            hash: content_hash_of(items.iter().map(|(json, arn)| (json.as_ref(), *arn))),
            ..header.id()
        };
        let text = |value: &str| serde_json::to_string(value).expect("a string serializes");
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        let mut write = |bytes: &[u8]| encoder.write_all(bytes).expect("writing to memory");
        for (field, value) in [
            ("{\"format\":", &header.format),
            (",\"target\":", &header.target),
            (",\"region\":", &header.region),
            (",\"table\":", &header.table),
            (",\"time\":", &header.time),
        ] {
            write(field.as_bytes());
            write(text(value).as_bytes());
        }
        if let Some(until) = &header.scanned_until {
            write(b",\"scanned_until\":");
            write(text(until).as_bytes());
        }
        write(b",\"items\":");
        write_items(items.iter().map(|(json, arn)| (json, *arn)), &mut write);
        write(b"}");
        (id, encoder.finish().expect("writing to memory"))
    }

    /// The snapshot's time, Unix milliseconds.
    pub fn millis(&self) -> i64 {
        parse_rfc3339_millis(&self.time).unwrap_or(0)
    }

    /// Gzip-compressed JSON.
    pub fn encode(&self) -> Vec<u8> {
        gzip(&serde_json::to_vec(self).expect("a snapshot always serializes"))
    }

    /// Reads a snapshot, checking it is whole: a truncated or altered file is an error that
    /// names it, never a partial snapshot.
    pub fn decode(
        bytes: &[u8],
        location: &str,
        expected: Option<&SnapshotId>,
    ) -> Result<Snapshot, SnapshotError> {
        let corrupt = |reason: String| SnapshotError::Corrupt {
            location: location.to_string(),
            reason,
        };
        let json = gunzip(bytes).map_err(corrupt)?;
        let snapshot: Snapshot = serde_json::from_slice(&json)
            .map_err(|err| corrupt(format!("not a snapshot ({err})")))?;
        if snapshot.format != FORMAT {
            return Err(corrupt(format!(
                "format {:?}, expected {FORMAT:?}",
                snapshot.format
            )));
        }
        if let Some(expected) = expected {
            let hash = content_hash(&snapshot.items);
            if hash != expected.hash || snapshot.items.len() != expected.records {
                return Err(corrupt(format!(
                    "its content (hash {hash}, {} records) does not match its name",
                    snapshot.items.len()
                )));
            }
        }
        Ok(snapshot)
    }

    /// Reads a snapshot as [`Snapshot::decode`] does, with the same checks, but hands each
    /// item to `each` as it is read instead of holding them all: what a check that keeps only
    /// a digest of each item needs. On an error `each` may have been given items of a snapshot
    /// that is not whole: what it made of them is to be dropped. Returns how many items.
    pub fn decode_each(
        bytes: &[u8],
        location: &str,
        expected: Option<&SnapshotId>,
        each: impl FnMut(SnapshotItem),
    ) -> Result<usize, SnapshotError> {
        let corrupt = |reason: String| SnapshotError::Corrupt {
            location: location.to_string(),
            reason,
        };
        let reader = std::io::BufReader::new(GzDecoder::new(bytes));
        let mut deserializer = serde_json::Deserializer::from_reader(reader);
        let mut hasher = Sha256::new();
        let visit = EachItem {
            each,
            items: ItemsWriter::new(|bytes: &[u8]| hasher.update(bytes)),
        };
        let (format, count) = serde::Deserializer::deserialize_map(&mut deserializer, visit)
            .and_then(|read| deserializer.end().map(|()| read))
            .map_err(|err| corrupt(format!("not a snapshot ({err})")))?;
        if format.as_deref() != Some(FORMAT) {
            return Err(corrupt(format!("format {format:?}, expected {FORMAT:?}")));
        }
        let hash = hex::encode(&hasher.finalize()[..8]);
        if let Some(expected) = expected
            && (hash != expected.hash || count != expected.records)
        {
            return Err(corrupt(format!(
                "its content (hash {hash}, {count} records) does not match its name"
            )));
        }
        Ok(count)
    }
}

/// Reads a snapshot's fields, handing each item on as it is read (see
/// [`Snapshot::decode_each`]): gives the format and how many items.
struct EachItem<F, W: FnMut(&[u8])> {
    each: F,
    items: ItemsWriter<W>,
}

impl<'de, F: FnMut(SnapshotItem), W: FnMut(&[u8])> serde::de::Visitor<'de> for EachItem<F, W> {
    type Value = (Option<String>, usize);

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a snapshot")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> Result<Self::Value, A::Error> {
        let mut format = None;
        let mut items_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => format = Some(map.next_value::<String>()?),
                "items" => {
                    map.next_value_seed(Items(&mut self))?;
                    items_seen = true;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if !items_seen {
            return Err(serde::de::Error::missing_field("items"));
        }
        Ok((format, self.items.finish()))
    }
}

/// The `items` list of a snapshot, read one at a time.
struct Items<'a, F, W: FnMut(&[u8])>(&'a mut EachItem<F, W>);

impl<'de, F: FnMut(SnapshotItem), W: FnMut(&[u8])> serde::de::DeserializeSeed<'de>
    for Items<'_, F, W>
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(SnapshotItem), W: FnMut(&[u8])> serde::de::Visitor<'de> for Items<'_, F, W> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a list of items")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<SnapshotItem>()? {
            let json = serde_json::to_string(&item.item).map_err(serde::de::Error::custom)?;
            self.0.items.push(&json, item.live_arn.as_deref());
            (self.0.each)(item);
        }
        Ok(())
    }
}

fn name_of(item: &Item) -> &str {
    item.get("name").and_then(|v| v.as_s()).unwrap_or("")
}

/// One stored snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: SnapshotId,
    pub bytes: u64,
    /// A path, or `s3://bucket/key`.
    pub location: String,
}

/// Where snapshots are kept: a local directory, or S3 (for ECS, where local disk does not
/// outlive the task).
#[derive(Debug, Clone)]
pub enum Store {
    Local {
        dir: PathBuf,
    },
    S3 {
        client: S3,
        bucket: String,
        prefix: String,
    },
}

impl Store {
    /// The S3 key of `file` of `target`, under the store's prefix.
    fn key(prefix: &str, target: &str, file: &str) -> String {
        format!("{prefix}{target}/{file}")
    }

    /// The folder of `target`'s files: its own (`None`, the snapshots) or a sub-folder of it
    /// (`Some("journal")`).
    fn folder(target: &str, sub: Option<&str>) -> String {
        match sub {
            Some(sub) => format!("{target}/{sub}"),
            None => target.to_string(),
        }
    }

    /// Writes one file of `target` (in `sub`, when given) atomically; returns its location.
    pub(crate) async fn put_file(
        &self,
        target: &str,
        sub: Option<&str>,
        file: &str,
        bytes: Vec<u8>,
    ) -> Result<String, SnapshotError> {
        let folder = Self::folder(target, sub);
        match self {
            Store::Local { dir } => {
                let dir = dir.join(folder);
                let path = dir.join(file);
                let location = path.display().to_string();
                write_atomically(&dir, &path, &bytes).map_err(|source| SnapshotError::Io {
                    location: location.clone(),
                    source,
                })?;
                Ok(location)
            }
            Store::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = Self::key(prefix, &folder, file);
                client.put(bucket, &key, bytes).await?;
                Ok(format!("s3://{bucket}/{key}"))
            }
        }
    }

    /// The files directly in `target`'s folder (or its `sub` folder), not in folders below it
    /// (S3 lists by prefix, so a deeper key is left out here): name, size, location.
    pub(crate) async fn list_files(
        &self,
        target: &str,
        sub: Option<&str>,
    ) -> Result<Vec<(String, u64, String)>, SnapshotError> {
        let folder = Self::folder(target, sub);
        let mut files = Vec::new();
        match self {
            Store::Local { dir } => {
                let dir = dir.join(folder);
                let read = match std::fs::read_dir(&dir) {
                    Ok(read) => read,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(files),
                    Err(source) => {
                        return Err(SnapshotError::Io {
                            location: dir.display().to_string(),
                            source,
                        });
                    }
                };
                for file in read.flatten() {
                    if file.file_type().is_ok_and(|t| t.is_file()) {
                        let name = file.file_name().to_string_lossy().to_string();
                        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
                        files.push((name, bytes, file.path().display().to_string()));
                    }
                }
            }
            Store::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key_prefix = Self::key(prefix, &folder, "");
                for (key, bytes) in client.list(bucket, &key_prefix).await? {
                    let Some(name) = key.strip_prefix(&key_prefix) else {
                        continue;
                    };
                    if !name.is_empty() && !name.contains('/') {
                        files.push((name.to_string(), bytes, format!("s3://{bucket}/{key}")));
                    }
                }
            }
        }
        Ok(files)
    }

    /// The bytes of the file at `location` (as [`Store::list_files`] gives it).
    pub(crate) async fn read_file(&self, location: &str) -> Result<Vec<u8>, SnapshotError> {
        match self {
            Store::Local { .. } => std::fs::read(location).map_err(|source| SnapshotError::Io {
                location: location.to_string(),
                source,
            }),
            Store::S3 { client, bucket, .. } => {
                let key = location
                    .strip_prefix(&format!("s3://{bucket}/"))
                    .unwrap_or(location);
                Ok(client.get(bucket, key).await?)
            }
        }
    }

    /// Deletes the file at `location`.
    pub(crate) async fn delete_file(&self, location: &str) -> Result<(), SnapshotError> {
        match self {
            Store::Local { .. } => {
                std::fs::remove_file(location).map_err(|source| SnapshotError::Io {
                    location: location.to_string(),
                    source,
                })
            }
            Store::S3 { client, bucket, .. } => {
                let key = location
                    .strip_prefix(&format!("s3://{bucket}/"))
                    .unwrap_or(location);
                Ok(client.delete(bucket, key).await?)
            }
        }
    }

    /// Writes a snapshot atomically; returns its location.
    pub async fn put(&self, snapshot: &Snapshot) -> Result<Entry, SnapshotError> {
        self.put_encoded(&snapshot.target, snapshot.id(), snapshot.encode())
            .await
    }

    /// Stores a snapshot of `target` already encoded, under `id`.
    pub async fn put_encoded(
        &self,
        target: &str,
        id: SnapshotId,
        bytes: Vec<u8>,
    ) -> Result<Entry, SnapshotError> {
        let size = bytes.len() as u64;
        let location = self.put_file(target, None, &id.file_name(), bytes).await?;
        Ok(Entry {
            id,
            bytes: size,
            location,
        })
    }

    /// Every snapshot of `target`, oldest first. Files whose names are not snapshot names, and
    /// the journal's folder, are ignored.
    pub async fn list(&self, target: &str) -> Result<Vec<Entry>, SnapshotError> {
        Ok(self
            .list_named(target, None, SnapshotId::parse)
            .await?
            .into_iter()
            .map(|(id, bytes, location)| Entry {
                id,
                bytes,
                location,
            })
            .collect())
    }

    /// The files of `target`'s folder (or its `sub` folder) whose names `parse` reads as an id
    /// (gzip-compressed JSON), with their size and location, sorted by id.
    pub(crate) async fn list_named<I: Ord>(
        &self,
        target: &str,
        sub: Option<&str>,
        parse: impl Fn(&str) -> Option<I>,
    ) -> Result<Vec<(I, u64, String)>, SnapshotError> {
        let mut named: Vec<(I, u64, String)> = self
            .list_files(target, sub)
            .await?
            .into_iter()
            .filter_map(|(name, bytes, location)| {
                let id = name.ends_with(SUFFIX).then(|| parse(&name)).flatten()?;
                Some((id, bytes, location))
            })
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(named)
    }

    /// Reads one snapshot, checking it is whole.
    pub async fn get(&self, entry: &Entry) -> Result<Snapshot, SnapshotError> {
        let bytes = self.read_file(&entry.location).await?;
        Snapshot::decode(&bytes, &entry.location, Some(&entry.id))
    }

    /// Reads one snapshot an item at a time (see [`Snapshot::decode_each`]).
    pub async fn get_each(
        &self,
        entry: &Entry,
        each: impl FnMut(SnapshotItem),
    ) -> Result<usize, SnapshotError> {
        let bytes = self.read_file(&entry.location).await?;
        Snapshot::decode_each(&bytes, &entry.location, Some(&entry.id), each)
    }

    /// Deletes one snapshot.
    pub async fn delete(&self, entry: &Entry) -> Result<(), SnapshotError> {
        self.delete_file(&entry.location).await
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one: a
/// temporary file, fsync, rename, fsync of the directory.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("snapshot"),
        std::process::id()
    ));
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Which snapshots retention deletes: older than `max_age_millis` or beyond the newest `keep`;
/// never the newest one. `entries` are oldest first.
pub fn to_prune(
    entries: &[Entry],
    now_millis: i64,
    max_age_millis: i64,
    keep: usize,
) -> Vec<Entry> {
    let keep = keep.max(1);
    let count = entries.len();
    entries
        .iter()
        .enumerate()
        .filter(|(i, entry)| {
            let newest = *i + 1 == count;
            let beyond_count = count - *i > keep;
            let too_old = now_millis - entry.id.unix_millis() > max_age_millis;
            !newest && (beyond_count || too_old)
        })
        .map(|(_, entry)| entry.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_streamed_hash_is_the_hash_of_the_serialized_items() {
        let item = |name: &str, extra: AttrValue| -> Item {
            [
                ("name".to_string(), AttrValue::S(name.into())),
                ("x".to_string(), extra),
            ]
            .into_iter()
            .collect()
        };
        let items = vec![
            SnapshotItem {
                item: item("a \"quoted\" é", AttrValue::B(vec![0, 255, 7])),
                live_arn: Some(
                    "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a\\b/1".into(),
                ),
            },
            SnapshotItem {
                item: item("b", AttrValue::Ns(vec!["1.50".into(), "-2".into()])),
                live_arn: None,
            },
        ];
        let whole = serde_json::to_vec(&items).unwrap();
        let expected = hex::encode(&Sha256::digest(&whole)[..8]);
        assert_eq!(content_hash(&items), expected);
        let stored: Vec<_> = items
            .iter()
            .map(|i| crate::model::item::StoredItem::new(&i.item))
            .collect();
        let streamed = content_hash_of(
            stored
                .iter()
                .zip(&items)
                .map(|(s, i)| (s.json(), i.live_arn.as_deref())),
        );
        assert_eq!(streamed, expected);
        assert_eq!(content_hash(&[]), hex::encode(&Sha256::digest(b"[]")[..8]));

        // The snapshot written from the held JSON is the one built from the items, to the byte
        // before compression, under the same id.
        let millis = 1_764_150_000_123;
        let built = Snapshot::new("prod \"t\"", "us-east-1", "lb-state", items.clone(), millis);
        let held: Vec<(&str, Option<&str>)> = stored
            .iter()
            .zip(&items)
            .map(|(s, i)| (s.json(), i.live_arn.as_deref()))
            .collect();
        let (id, bytes) =
            Snapshot::encode_held("prod \"t\"", "us-east-1", "lb-state", &held, millis, None);
        assert_eq!(id, built.id());
        let mut json = Vec::new();
        GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut json)
            .unwrap();
        assert_eq!(json, serde_json::to_vec(&built).unwrap());
        assert_eq!(Snapshot::decode(&bytes, "held", Some(&id)).unwrap(), built);
        let (empty, _) = Snapshot::encode_held::<&str>("t", "r", "lb-state", &[], millis, None);
        assert_eq!(
            empty,
            Snapshot::new("t", "r", "lb-state", Vec::new(), millis).id()
        );
    }

    use super::*;
    use crate::model::item::AttrValue;

    fn item(name: &str) -> SnapshotItem {
        SnapshotItem {
            item: [
                ("name".to_string(), AttrValue::S(name.into())),
                ("blob".to_string(), AttrValue::B(vec![1, 2, 3])),
            ]
            .into_iter()
            .collect(),
            live_arn: Some(format!("arn:{name}")),
        }
    }

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let snapshot = Snapshot::new(
            "prod",
            "us-east-1",
            "lb-state",
            vec![item("b"), item("a")],
            1_795_000_000_123,
        );
        let id = snapshot.id();
        assert_eq!(id.records, 2);
        assert_eq!(SnapshotId::parse(&id.as_string()), Some(id.clone()));
        assert_eq!(
            SnapshotId::parse(&format!("{}.json.gz", id.as_string())),
            Some(id.clone())
        );
        assert_eq!(id.unix_millis(), 1_795_000_000_123);
        assert!(id.rfc3339().starts_with("2026-"));
        let later = Snapshot::new(
            "prod",
            "us-east-1",
            "lb-state",
            vec![item("a")],
            1_795_000_001_000,
        )
        .id();
        assert!(later > id);
        assert_eq!(snapshot.items[0].item["name"], AttrValue::S("a".into()));
        for bad in [
            "",
            "x-1r-abc",
            "20261126T101500123Z-xr-0123456789abcdef",
            "20261126T101500123Z-1r-zz",
        ] {
            assert_eq!(SnapshotId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_snapshot_round_trips_verbatim() {
        let snapshot = Snapshot::new(
            "prod",
            "us-east-1",
            "lb-state",
            vec![item("a")],
            1_795_000_000_000,
        );
        let back = Snapshot::decode(&snapshot.encode(), "x", Some(&snapshot.id())).unwrap();
        assert_eq!(back, snapshot);
    }

    #[test]
    fn corrupt_and_truncated_snapshots_are_named_errors() {
        let snapshot = Snapshot::new(
            "prod",
            "us-east-1",
            "lb-state",
            vec![item("a"), item("b")],
            1_795_000_000_000,
        );
        let bytes = snapshot.encode();
        let id = snapshot.id();
        let truncated =
            Snapshot::decode(&bytes[..bytes.len() / 2], "/s/x.json.gz", Some(&id)).unwrap_err();
        assert!(
            truncated.to_string().contains("/s/x.json.gz"),
            "{truncated}"
        );
        assert_eq!(truncated.kind(), "corrupt");
        assert!(Snapshot::decode(b"garbage", "g", None).is_err());
        let other = Snapshot::new(
            "prod",
            "us-east-1",
            "lb-state",
            vec![item("a")],
            1_795_000_000_000,
        );
        let mismatch = Snapshot::decode(&other.encode(), "m", Some(&id)).unwrap_err();
        assert!(
            mismatch.to_string().contains("does not match its name"),
            "{mismatch}"
        );
    }

    #[test]
    fn a_snapshot_read_an_item_at_a_time_gives_its_items_with_the_same_checks() {
        let snapshot = Snapshot::new(
            "prod",
            "us-east-1",
            "lb-state",
            vec![item("b"), item("a"), item("c")],
            1_795_000_000_000,
        );
        let bytes = snapshot.encode();
        let id = snapshot.id();
        let mut read = Vec::new();
        let count = Snapshot::decode_each(&bytes, "x", Some(&id), |held| read.push(held)).unwrap();
        assert_eq!((count, read), (3, snapshot.items.clone()));
        // Cut short, altered, not a snapshot, or of another format: named errors.
        let truncated =
            Snapshot::decode_each(&bytes[..bytes.len() / 2], "/s/x", Some(&id), drop).unwrap_err();
        assert!(truncated.to_string().contains("/s/x"), "{truncated}");
        assert_eq!(truncated.kind(), "corrupt");
        let other = Snapshot::new("prod", "r", "t", vec![item("a")], 1_795_000_000_000);
        let mismatch = Snapshot::decode_each(&other.encode(), "m", Some(&id), drop).unwrap_err();
        assert!(
            mismatch.to_string().contains("does not match its name"),
            "{mismatch}"
        );
        assert!(Snapshot::decode_each(&gzip(b"[1, 2]"), "g", None, drop).is_err());
        assert!(Snapshot::decode_each(&gzip(b"{\"format\": \"x\"}"), "g", None, drop).is_err());
        let foreign = gzip(b"{\"format\": \"other/1\", \"items\": []}");
        let format = Snapshot::decode_each(&foreign, "f", None, drop).unwrap_err();
        assert!(format.to_string().contains("other/1"), "{format}");
        // Anything after the snapshot is not one.
        let mut json = serde_json::to_vec(&snapshot).unwrap();
        json.extend_from_slice(b" {}");
        assert!(Snapshot::decode_each(&gzip(&json), "t", Some(&id), drop).is_err());
    }

    #[tokio::test]
    async fn the_local_store_writes_lists_reads_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local {
            dir: dir.path().to_path_buf(),
        };
        let first = Snapshot::new("prod", "r", "t", vec![item("a")], 1_795_000_000_000);
        let second = Snapshot::new(
            "prod",
            "r",
            "t",
            vec![item("a"), item("b")],
            1_795_000_060_000,
        );
        store.put(&second).await.unwrap();
        store.put(&first).await.unwrap();
        std::fs::write(dir.path().join("prod").join("notes.txt"), "ignored").unwrap();
        let entries = store.list("prod").await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, first.id());
        assert_eq!(store.get(&entries[1]).await.unwrap(), second);
        assert!(store.list("other").await.unwrap().is_empty());
        store.delete(&entries[0]).await.unwrap();
        assert_eq!(store.list("prod").await.unwrap().len(), 1);
    }

    #[test]
    fn retention_keeps_the_newest_and_prunes_by_age_and_count() {
        let entry = |millis: i64| Entry {
            id: Snapshot::new("p", "r", "t", vec![], millis).id(),
            bytes: 1,
            location: String::new(),
        };
        let hour = 3_600_000;
        let entries: Vec<Entry> = (0..5).map(|i| entry(i * hour)).collect();
        let now = 4 * hour;
        assert_eq!(to_prune(&entries, now, 100 * hour, 3).len(), 2);
        assert_eq!(to_prune(&entries, now, 2 * hour, 100).len(), 2);
        // Even when all are too old, the newest stays.
        assert_eq!(to_prune(&entries, 100 * hour, hour, 100).len(), 4);
    }
}
