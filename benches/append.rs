//! Durable append throughput of the embedded log: single-event and 100-event appends, from 1
//! and from 64 concurrent appenders. Every append is acknowledged only after its group commit
//! (`synchronous=FULL`, one fsync per batch).
//!
//! Ids have the shapes the ledger's own intake produces: time-ordered UUIDv7 event ids and
//! sequential donation ids from the sequence generator, so index inserts land at the tail.
//!
//! Run: `cargo bench --bench append`. Criterion reports events/s as "thrpt".
#![allow(missing_docs)] // `criterion_group!` generates an undocumented `pub fn`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata};
use uuid::Uuid;

fn event() -> EventData {
    EventData {
        id: Uuid::now_v7(),
        event_type: "DonationCreated.v2".into(),
        payload: vec![42u8; 300],
        metadata: Metadata::new(
            Actor {
                kind: ActorKind::Frontend,
                id: "bench".into(),
            },
            "bench",
            Uuid::new_v4(),
        )
        .into(),
    }
}

/// Appends `total_appends` appends of `events_per_append` events spread over `writers` tasks.
async fn run(
    log: Arc<SqliteEventLog>,
    writers: usize,
    total_appends: usize,
    events_per_append: usize,
) -> Duration {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let per_writer = total_appends.div_ceil(writers);
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                for _ in 0..per_writer {
                    let events = (0..events_per_append).map(|_| event()).collect();
                    let stream = format!("donation-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
                    log.append(&stream, ExpectedRevision::Any, events)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn append_throughput(c: &mut Criterion) {
    // The SQLite settings `ledger` runs with (see `configure_library`), so figures match its own.
    ledger::store::sqlite::configure_library();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        rt.block_on(SqliteEventLog::open(&dir.path().join("bench.sqlite")))
            .unwrap(),
    );
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for (events_per_append, writers, appends) in
        [(1, 1, 500), (1, 64, 6400), (100, 1, 50), (100, 64, 640)]
    {
        group.throughput(Throughput::Elements((events_per_append * appends) as u64));
        let id = BenchmarkId::new(
            format!("{events_per_append}_event_appends"),
            format!("{writers}_writers"),
        );
        group.bench_with_input(
            id,
            &(events_per_append, writers, appends),
            |b, &(epa, w, n)| {
                b.to_async(&rt).iter_custom(|iters| {
                    let log = log.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += run(log.clone(), w, n, epa).await;
                        }
                        total
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, append_throughput);
criterion_main!(benches);
