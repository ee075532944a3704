//! The diff over a whole fleet: 1k, 10k and 100k load balancers (3 listeners, 5 rules each,
//! 3 target groups), unchanged and with 1% drift; and the parsing that builds its documents
//! every cycle (records from scanned items, live documents from API answers), 10k of each, and
//! the daemon's scan of records unchanged since its last scan.
//! Run: `cargo bench --bench diff`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lbrecon::model::document::Document;
use lbrecon::model::item::{AttrValue, Item, from_json};
use lbrecon::model::record::{Record, RecordCache, RecordRules};
use lbrecon::reconcile::ignore::IgnoreRules;
use lbrecon::reconcile::{LiveDocument, LiveEntry, reconcile};
use serde_json::{Value, json};

fn document(i: usize, drift: bool) -> Value {
    let name = format!("lb-{i:06}");
    let groups: Vec<Value> = (0..3)
        .map(|g| {
            json!({"name": format!("{name}-tg{g}"), "protocol": "HTTP", "port": 8080 + g, "target_type": "instance",
                   "health_check": {"enabled": true, "path": "/health", "interval_seconds": 30,
                                    "matcher": {"http_code": "200"}},
                   "attributes": {"deregistration_delay.timeout_seconds": "30"}, "tags": {"svc": "api"}})
        })
        .collect();
    let listeners: Vec<Value> = [80, 443, 8443]
        .iter()
        .map(|port| {
            let rules: Vec<Value> = (1..=5)
                .map(|p| {
                    json!({"priority": p * 10,
                           "conditions": [{"field": "path-pattern", "values": [format!("/v{p}/*")]},
                                          {"field": "host-header", "values": ["api.example.com"]}],
                           "actions": [{"type": "forward", "target_group": format!("{name}-tg{}", p % 3)}]})
                })
                .collect();
            json!({"port": port, "protocol": if *port == 80 { "HTTP" } else { "HTTPS" },
                   "ssl_policy": if *port == 80 { Value::Null } else { json!("ELBSecurityPolicy-2016-08") },
                   "default_actions": [{"type": "forward", "target_group": format!("{name}-tg0")}],
                   "rules": rules})
        })
        .collect();
    json!({"name": name, "type": "application", "scheme": if drift { "internal" } else { "internet-facing" },
           "subnets": ["subnet-a", "subnet-b"], "security_groups": ["sg-1"],
           "attributes": {"idle_timeout.timeout_seconds": "60"}, "tags": {"team": "edge"},
           "listeners": listeners, "target_groups": groups})
}

fn item(i: usize) -> Item {
    [
        ("name".to_string(), AttrValue::S(format!("lb-{i:06}"))),
        ("config".to_string(), from_json(&document(i, false))),
    ]
    .into_iter()
    .collect()
}

fn fleet(n: usize, drift_every: Option<usize>) -> (Vec<Record>, Vec<LiveEntry<'static>>) {
    let records = (0..n)
        .map(|i| Record::from_item(&item(i), i, &RecordRules::default()))
        .collect();
    let live = (0..n)
        .map(|i| {
            let drift = drift_every.is_some_and(|every| i % every == 0);
            LiveEntry {
                name: format!("lb-{i:06}"),
                created_time: Some(0),
                document: LiveDocument::Built(
                    Document::parse(&document(i, drift)).unwrap().document,
                ),
                deep_fresh: true,
            }
        })
        .collect();
    (records, live)
}

fn bench(c: &mut Criterion) {
    let ignore = IgnoreRules::default();
    let mut group = c.benchmark_group("reconcile");
    group.sample_size(10);
    for n in [1_000, 10_000, 100_000] {
        for (label, drift) in [("unchanged", None), ("1% drift", Some(100))] {
            let (records, live) = fleet(n, drift);
            group.bench_with_input(BenchmarkId::new(label, n), &n, |b, _| {
                b.iter(|| black_box(reconcile(black_box(&records), black_box(&live), &ignore)))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.sample_size(10);
    let n = 10_000;
    let items: Vec<Item> = (0..n).map(item).collect();
    group.bench_function(BenchmarkId::new("records", n), |b| {
        b.iter(|| {
            black_box(&items)
                .iter()
                .enumerate()
                .map(|(i, item)| Record::from_item(item, i, &RecordRules::default()))
                .collect::<Vec<_>>()
        })
    });
    // The daemon's scan: the same items as the last scan's, found by their JSON's digest (the
    // JSON itself is made for the snapshot in any case, so it is made outside the timing).
    let jsons: Vec<String> = items
        .iter()
        .map(|item| serde_json::to_string(item).unwrap())
        .collect();
    let mut cache = RecordCache::default();
    let scan = |cache: &mut RecordCache| {
        let records: Vec<Record> = items
            .iter()
            .zip(&jsons)
            .enumerate()
            .map(|(i, (item, json))| cache.record(item, json, i, &RecordRules::default()))
            .collect();
        cache.finish(true);
        records
    };
    scan(&mut cache);
    group.bench_function(
        BenchmarkId::new("records unchanged since the last scan", n),
        |b| b.iter(|| scan(black_box(&mut cache))),
    );
    let answers: Vec<Value> = (0..n).map(|i| document(i, false)).collect();
    group.bench_function(BenchmarkId::new("live documents", n), |b| {
        b.iter(|| {
            black_box(&answers)
                .iter()
                .map(|value| Document::parse(value).unwrap().document)
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
