//! Rebuild throughput of the projector (events/s) on SQLite, and on PostgreSQL when
//! `LEDGER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) is reachable,
//! next to the raw rate of inserting the very rows the rebuild ends up with into freshly
//! migrated tables of the same database, the fastest plain way: prepared multi-row INSERTs in
//! one transaction on SQLite (with the rebuild's scratch-file settings), COPY on PostgreSQL.
//!
//! Both measurements are `ledger::bench::{rebuild_rate, raw_insert}`, the ones `ledger bench`
//! makes once; here criterion repeats them for a median. The workload is `ledger::workload`
//! with `LEDGER_BENCH_DONATIONS` (default 20,000) donations, sealed with per-donation keys, so
//! the rebuild decrypts through the vault like `ledger rebuild` does. PostgreSQL runs in a
//! throw-away database.
//!
//! `cargo bench --bench projection` (prints a summary with both rates and their ratio).
#![allow(missing_docs)] // `criterion_group!` generates an undocumented `pub fn`

#[path = "../tests/support/ci.rs"]
mod ci;

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ledger::bench::{self, ScratchDatabase};
use ledger::privacy::{KeyStore, Vault};
use ledger::workload::WorkloadConfig;

fn donations() -> usize {
    std::env::var("LEDGER_BENCH_DONATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn postgres_url() -> String {
    std::env::var("LEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn projection(c: &mut Criterion) {
    // The SQLite settings `ledger` runs with (see `configure_library`), so figures match its own.
    ledger::store::sqlite::configure_library();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = rt
        .block_on(KeyStore::open_sqlite(&dir.path().join("keys.sqlite")))
        .unwrap();
    let vault = Vault::new(keys.clone());
    let config = WorkloadConfig {
        donations: donations(),
        seed: 1,
        start: Utc::now() - chrono::Duration::days(30),
        donations_only: false,
    };
    let log = rt
        .block_on(bench::fresh_log(dir.path(), "events.sqlite"))
        .unwrap();
    rt.block_on(async {
        let workload = bench::sealed_workload(&config, &keys).await?;
        bench::fill_log(log.clone(), workload.appends).await
    })
    .unwrap();

    let pg = match rt.block_on(ScratchDatabase::create(&postgres_url())) {
        Ok(db) => Some(db),
        Err(e) if !ci::is_ci() => {
            eprintln!("\n*** SKIPPED PostgreSQL: {e:#}; set LEDGER_TEST_POSTGRES_URL ***\n");
            None
        }
        Err(e) => panic!("PostgreSQL is unreachable under CI=true: {e:#}"),
    };
    let sqlite_url = format!("sqlite://{}", dir.path().join("readmodel.sqlite").display());
    let mut targets = vec![("sqlite", sqlite_url)];
    if let Some(db) = &pg {
        targets.push(("postgres", db.url.clone()));
    }

    let mut summary = Vec::new();
    for (name, url) in &targets {
        // One of each up front: the rebuild writes the rows the raw insert copies.
        let first = rt
            .block_on(bench::rebuild_rate(log.clone(), url, vault.clone()))
            .unwrap();
        let rows = rt
            .block_on(bench::raw_insert(url, dir.path()))
            .unwrap()
            .rows;
        let rebuild_times = Mutex::new(Vec::new());
        let raw_times = Mutex::new(Vec::new());
        let mut group = c.benchmark_group(format!("projection_{name}"));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(15));
        group.throughput(Throughput::Elements(first.events));
        group.bench_function("rebuild", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let report = rt
                            .block_on(bench::rebuild_rate(log.clone(), url, vault.clone()))
                            .unwrap();
                        rebuild_times.lock().unwrap().push(report.projection);
                        report.projection
                    })
                    .sum()
            })
        });
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function("raw_insert_same_rows", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let raw = rt.block_on(bench::raw_insert(url, dir.path())).unwrap();
                        raw_times.lock().unwrap().push(raw.elapsed);
                        raw.elapsed
                    })
                    .sum()
            })
        });
        group.finish();
        summary.push((
            name,
            first.events,
            rows,
            median(rebuild_times.into_inner().unwrap()),
            median(raw_times.into_inner().unwrap()),
        ));
    }
    if let Some(db) = pg {
        rt.block_on(db.drop_database());
    }
    for (name, events, rows, rebuild, raw) in summary {
        let projector = events as f64 / rebuild.as_secs_f64();
        let raw_rows = rows as f64 / raw.as_secs_f64();
        println!(
            "SUMMARY {name}: {events} events -> {rows} rows; rebuild median {:.3} s = {projector:.0} events/s; \
             raw median {:.3} s = {raw_rows:.0} rows/s; events/s ÷ raw rows/s = {:.0} %",
            rebuild.as_secs_f64(),
            raw.as_secs_f64(),
            100.0 * projector / raw_rows,
        );
    }
}

criterion_group!(benches, projection);
criterion_main!(benches);
