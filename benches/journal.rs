//! The journal: replaying a day of changes of 10,000 records onto a snapshot (what `restore --at`
//! and the recovery check do), and sealing and reading back one segment of those changes (its
//! bytes per record change are printed once).
//! Run: `cargo bench --bench journal`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lbrecon::model::item::{AttrValue, Item, from_json};
use lbrecon::model::stream::{StreamEvent, StreamRecord};
use lbrecon::recovery::journal::{Segment, replay};
use serde_json::json;

const RECORDS: usize = 10_000;
/// Each record changes this many times a day: a busy control plane (deploys, scaling, certs).
const CHANGES_PER_RECORD: usize = 10;
const DAY_MILLIS: i64 = 86_400_000;
const START: i64 = 1_800_000_000_000;

/// A record as a control plane writes it: three listeners with rules, three target groups.
fn item(i: usize, version: usize) -> Item {
    let name = format!("lb-{i:05}");
    let listeners: serde_json::Map<String, serde_json::Value> = [80, 443, 8443]
        .iter()
        .map(|port| {
            let rules: Vec<serde_json::Value> = (1..=5)
                .map(|p| {
                    json!({"priority": p * 10,
                           "conditions": [{"field": "path-pattern", "values": [format!("/v{p}/*")]}],
                           "actions": [{"type": "forward", "target_group": format!("{name}-tg{}", p % 3)}]})
                })
                .collect();
            (
                port.to_string(),
                json!({"port": port, "protocol": "HTTPS", "rules": rules,
                       "default_actions": [{"type": "forward", "target_group": format!("{name}-tg0")}]}),
            )
        })
        .collect();
    let config = json!({"type": "application", "scheme": "internet-facing",
                        "listeners": listeners,
                        "target_groups": (0..3).map(|g| (format!("{name}-tg{g}"),
                            json!({"protocol": "HTTP", "port": 8080 + g, "health_check": {"path": "/health"}})))
                            .collect::<serde_json::Map<_, _>>()});
    [
        ("name".to_string(), AttrValue::S(name)),
        ("version".to_string(), AttrValue::N(version.to_string())),
        (
            "updated_at".to_string(),
            AttrValue::S("2027-01-15T10:00:00Z".into()),
        ),
        ("config".to_string(), from_json(&config)),
    ]
    .into_iter()
    .collect()
}

/// A day of MODIFY records: every record changed `CHANGES_PER_RECORD` times, spread over the day.
fn day_of_changes(snapshot: &BTreeMap<String, Item>) -> Vec<StreamRecord> {
    let total = RECORDS * CHANGES_PER_RECORD;
    let mut current: Vec<Item> = snapshot.values().cloned().collect();
    (0..total)
        .map(|n| {
            let i = n % RECORDS;
            let version = n / RECORDS + 2;
            let old = current[i].clone();
            let new = item(i, version);
            current[i] = new.clone();
            StreamRecord {
                shard: "shardId-00000001".into(),
                sequence: (100_000_000_000_000_000_000u128 + n as u128).to_string(),
                event: StreamEvent::Modify,
                created_millis: START + (n as i64 * DAY_MILLIS) / total as i64,
                keys: [("name".to_string(), old["name"].clone())].into(),
                old_image: Some(old),
                new_image: Some(new),
            }
        })
        .collect()
}

fn journal(c: &mut Criterion) {
    let snapshot: BTreeMap<String, Item> = (0..RECORDS)
        .map(|i| (format!("lb-{i:05}"), item(i, 1)))
        .collect();
    let records = day_of_changes(&snapshot);
    let segment = Segment::new(
        "bench",
        "us-east-1",
        "lb-state",
        "arn:aws:dynamodb:us-east-1:123456789012:table/lb-state/stream/1",
        START,
        START + DAY_MILLIS,
        BTreeMap::new(),
        Vec::new(),
        records[..5000].to_vec(),
    );
    let encoded = segment.encode();
    println!(
        "journal: a segment of 5,000 record changes (both images) is {} bytes gzip-compressed: {} bytes per change",
        encoded.len(),
        encoded.len() / 5000
    );
    let mut group = c.benchmark_group("journal");
    group.sample_size(10);
    group.bench_function("replay a day (100k changes) onto 10k records", |b| {
        b.iter(|| {
            let state = replay(
                snapshot.values().cloned(),
                black_box(&records),
                START,
                START + DAY_MILLIS,
            );
            assert_eq!(state.len(), RECORDS);
        })
    });
    group.bench_function("seal a segment of 5,000 changes", |b| {
        b.iter(|| black_box(&segment).encode())
    });
    group.bench_function("read a segment of 5,000 changes", |b| {
        b.iter(|| Segment::decode(black_box(&encoded), "bench", None).unwrap())
    });
    group.finish();
}

criterion_group!(benches, journal);
criterion_main!(benches);
