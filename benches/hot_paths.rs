//! The CPU hot paths between the log and the read model, on the events of `ledger::workload`
//! (200 donations, sealed with per-donation keys):
//! * `codec`: protobuf encoding and decoding of the events, the envelope metadata (JSON) both
//!   ways, and unsealing the personal-data units;
//! * `fold`: `DonationView` over each donation's six streams;
//! * `batch_sql`: building the multi-row statements of a projector batch — SQLite's expanded
//!   `VALUES` (`expand_values`) and PostgreSQL's `UNNEST` array binds.
//!
//! Short measurement times keep the whole file under a minute.
//! Run: `cargo bench --bench hot_paths` (or `-- codec`, `-- fold`, `-- batch_sql`).
#![allow(missing_docs)] // `criterion_group!` generates an undocumented `pub fn`

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ledger::domain::view::DonationView;
use ledger::domain::DomainEvent;
use ledger::privacy::{self, DataKey, KeyStore};
use ledger::projection::hot_paths;
use ledger::store::{Metadata, StreamAppend};
use ledger::workload::WorkloadConfig;

/// The workload as appended (sealed, encoded), and the keys that open it.
struct Sample {
    appends: Vec<StreamAppend>,
    keys: HashMap<u64, DataKey>,
}

fn sample() -> Sample {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let store = KeyStore::open_sqlite(&dir.path().join("keys.sqlite"))
            .await
            .unwrap();
        let config = WorkloadConfig {
            donations: 200,
            seed: 1,
            start: Utc::now(),
            donations_only: false,
        };
        let workload = ledger::bench::sealed_workload(&config, &store)
            .await
            .unwrap();
        let ids: Vec<u64> = (1..=200).collect();
        Sample {
            appends: workload.appends.into_iter().flatten().collect(),
            keys: store.get_many(&ids).await.unwrap(),
        }
    })
}

fn decode_all(appends: &[StreamAppend]) -> Vec<DomainEvent> {
    appends
        .iter()
        .flat_map(|a| &a.events)
        .map(|e| DomainEvent::decode(&e.event_type, &e.payload).unwrap())
        .collect()
}

fn codec(c: &mut Criterion) {
    let s = sample();
    let sealed = decode_all(&s.appends);
    let metadata: Vec<Vec<u8>> = s
        .appends
        .iter()
        .flat_map(|a| &a.events)
        .map(|e| e.metadata.to_bytes())
        .collect();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(sealed.len() as u64));
    group.bench_function("encode_events", |b| {
        b.iter(|| sealed.iter().map(|e| e.encode().len()).sum::<usize>())
    });
    group.bench_function("decode_events", |b| b.iter(|| decode_all(&s.appends)));
    group.bench_function("metadata_to_bytes", |b| {
        b.iter(|| {
            s.appends
                .iter()
                .flat_map(|a| &a.events)
                .map(|e| e.metadata.to_bytes().len())
                .sum::<usize>()
        })
    });
    group.bench_function("metadata_from_bytes", |b| {
        b.iter(|| {
            metadata
                .iter()
                .map(|m| Metadata::from_bytes(m).unwrap().source.len())
                .sum::<usize>()
        })
    });
    group.bench_function("unseal_events", |b| {
        b.iter_batched(
            || sealed.clone(),
            |mut events| privacy::unseal_with(&mut events, &s.keys).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn fold(c: &mut Criterion) {
    let s = sample();
    let mut events = decode_all(&s.appends);
    privacy::unseal_with(&mut events, &s.keys).unwrap();
    // Each donation's events with their streams, in log order; contribution tracking is not
    // part of the view.
    let mut donations: BTreeMap<u64, Vec<(&str, &DomainEvent)>> = BTreeMap::new();
    for (append, event) in s.appends.iter().zip(&events) {
        let Some((category, id)) = ledger::domain::streams::parse(&append.stream) else {
            continue;
        };
        let donation = match category {
            "contribution_tracking" => continue,
            "payment" => id - 10_000_000,
            _ => id,
        };
        donations
            .entry(donation)
            .or_default()
            .push((append.stream.as_str(), event));
    }
    let total: usize = donations.values().map(Vec::len).sum();
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(total as u64));
    group.bench_function("donation_view", |b| {
        b.iter(|| {
            donations
                .values()
                .map(|d| DonationView::fold(d.iter().copied()).legacy_status())
                .filter(|&s| s == 'B')
                .count()
        })
    });
    group.finish();
}

fn batch_sql(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_sql");
    for n in [1, 64, 500] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("sqlite_expand_values", n), &n, |b, &n| {
            b.iter(|| hot_paths::sqlite_donation_statement(n))
        });
    }
    for n in [64, 1_000] {
        let rows = hot_paths::donation_rows(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("postgres_unnest_binds", n),
            &rows,
            |b, rows| b.iter(|| hot_paths::postgres_donation_binds(rows)),
        );
    }
    group.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = codec, fold, batch_sql
}
criterion_main!(benches);
