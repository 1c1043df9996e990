//! Rebuild throughput of the projector (events/s) on SQLite, and on PostgreSQL when
//! `LEDGER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) is reachable,
//! next to the raw rate of inserting one change-log row per event into the same database
//! (prepared multi-row INSERTs on SQLite, COPY on PostgreSQL).
//!
//! `cargo bench --bench projection`

#[path = "../tests/projection_support/mod.rs"]
mod projection_support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ledger::projection::{rebuild, ReadModel};
use projection_support::{config, workload, Db, Env};
use sqlx::Connection;

const DONATIONS: u64 = 1500;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(env) = rt.block_on(Env::new(db)) else {
            continue;
        };
        let events = rt.block_on(workload(&env, 1, DONATIONS, 1)) as u64;
        rt.block_on(async { env.read_model().await.close().await });
        let mut group = c.benchmark_group(format!("projection_{db:?}").to_lowercase());
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(20));
        group.throughput(Throughput::Elements(events));
        group.bench_function("rebuild", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let report = rt
                        .block_on(rebuild(env.log(), &env.url, config(1000)))
                        .unwrap();
                    total += report.projection;
                }
                total
            })
        });
        group.bench_function("raw_insert_one_row_per_event", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += rt.block_on(raw_insert(&env, events));
                }
                total
            })
        });
        group.finish();
        rt.block_on(async { ReadModel::connect(&env.url).await.unwrap().close().await });
        drop(env);
    }
}

/// Inserts `events` rows shaped like `donation_event` into a fresh table, the fastest way
/// each database offers a client.
async fn raw_insert(env: &Env, events: u64) -> Duration {
    let row = |i: u64| {
        (
            i as i64,
            i as i64,
            format!("donation-{i}"),
            "DonationCreated.v2",
            "system",
            "test",
            chrono::Utc::now(),
        )
    };
    match env.db {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
            sqlx::query("DROP TABLE IF EXISTS raw_event")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("CREATE TABLE raw_event (donation_id INTEGER NOT NULL, position INTEGER NOT NULL, stream TEXT NOT NULL, event_type TEXT NOT NULL, actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, occurred_at TEXT NOT NULL, PRIMARY KEY (donation_id, position))")
                .execute(&mut conn).await.unwrap();
            let started = Instant::now();
            let mut tx = conn.begin().await.unwrap();
            let chunk = 1000u64;
            let tuple = "(?, ?, ?, ?, ?, ?, ?)";
            for start in (0..events).step_by(chunk as usize) {
                let n = chunk.min(events - start);
                let sql = format!(
                    "INSERT INTO raw_event (donation_id, position, stream, event_type, actor_kind, actor_id, occurred_at) VALUES {}",
                    vec![tuple; n as usize].join(", ")
                );
                let mut q = sqlx::query(&sql);
                for i in start..start + n {
                    let r = row(i);
                    q = q
                        .bind(r.0)
                        .bind(r.1)
                        .bind(r.2)
                        .bind(r.3)
                        .bind(r.4)
                        .bind(r.5)
                        .bind(r.6);
                }
                q.execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
            started.elapsed()
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&env.url).await.unwrap();
            sqlx::query("DROP TABLE IF EXISTS public.raw_event")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("CREATE TABLE public.raw_event (donation_id BIGINT NOT NULL, position BIGINT NOT NULL, stream TEXT NOT NULL, event_type TEXT NOT NULL, actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (donation_id, position))")
                .execute(&mut conn).await.unwrap();
            let started = Instant::now();
            let mut data = String::new();
            for i in 0..events {
                let r = row(i);
                data.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    r.0,
                    r.1,
                    r.2,
                    r.3,
                    r.4,
                    r.5,
                    r.6.to_rfc3339()
                ));
            }
            let mut copy = conn
                .copy_in_raw("COPY public.raw_event (donation_id, position, stream, event_type, actor_kind, actor_id, occurred_at) FROM STDIN")
                .await
                .unwrap();
            copy.send(data.into_bytes()).await.unwrap();
            copy.finish().await.unwrap();
            started.elapsed()
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
