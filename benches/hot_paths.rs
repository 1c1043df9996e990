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

// The row values, table layouts and `expand_values` the projector uses, compiled in from the
// crate-private module (its items are not public).
#[allow(dead_code, unused_imports)]
#[path = "../src/projection/rows.rs"]
mod rows;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ledger::domain::view::DonationView;
use ledger::domain::DomainEvent;
use ledger::privacy::{self, DataKey, KeyStore};
use ledger::store::{Metadata, StreamAppend};
use ledger::workload::WorkloadConfig;
use rows::{ColType, Value};
use sqlx::postgres::PgArguments;
use sqlx::Postgres;

const SQLITE_DONATION_UPSERT: &str = include_str!("../projections/sqlite/donation_upsert.sql");
const POSTGRES_DONATION_UPSERT: &str = include_str!("../projections/postgres/donation_upsert.sql");

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

/// Builds the `UNNEST` statement's binds the way `projection::postgres::bind_columns` does (one
/// array per column, text borrowed from the rows); that function is crate-private.
fn unnest_binds<'q>(
    mut q: sqlx::query::Query<'q, Postgres, PgArguments>,
    columns: &[(&str, ColType)],
    rows: &'q [Vec<Value>],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    for (i, (_, t)) in columns.iter().enumerate() {
        q = match t {
            ColType::I64 => q.bind(rows.iter().map(|r| r[i].as_i64()).collect::<Vec<_>>()),
            ColType::Text => q.bind(rows.iter().map(|r| r[i].as_text()).collect::<Vec<_>>()),
            ColType::Bool => q.bind(rows.iter().map(|r| r[i].as_bool()).collect::<Vec<_>>()),
            ColType::Time => q.bind(rows.iter().map(|r| r[i].as_time()).collect::<Vec<_>>()),
        };
    }
    q
}

/// `n` donation rows with every column set (the widest table of a batch).
fn donation_rows(n: usize) -> Vec<Vec<Value>> {
    let now = Utc::now();
    (0..n as i64)
        .map(|i| {
            rows::DONATION_COLUMNS
                .iter()
                .map(|(name, t)| match t {
                    ColType::I64 => Value::int(i),
                    ColType::Text => Value::text(&format!("{name}-{i}")),
                    ColType::Bool => Value::Bool(Some(i % 2 == 0)),
                    ColType::Time => Value::Time(Some(now)),
                })
                .collect()
        })
        .collect()
}

fn batch_sql(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_sql");
    for n in [1, 64, 500] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("sqlite_expand_values", n), &n, |b, &n| {
            b.iter(|| rows::expand_values(SQLITE_DONATION_UPSERT, n).len())
        });
    }
    for n in [64, 1_000] {
        let rows = donation_rows(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("postgres_unnest_binds", n),
            &rows,
            |b, rows| {
                b.iter(|| {
                    unnest_binds(
                        sqlx::query(POSTGRES_DONATION_UPSERT),
                        rows::DONATION_COLUMNS,
                        rows,
                    )
                })
            },
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
