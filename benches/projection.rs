//! Rebuild throughput of the projector (events/s) on SQLite, and on PostgreSQL when
//! `LEDGER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) is reachable,
//! next to the raw rate of inserting the very rows the rebuild ends up with (every data table
//! of the read model, read back after a rebuild) into freshly migrated tables of the same
//! database, the fastest plain way: prepared multi-row INSERTs in one transaction on SQLite,
//! COPY on PostgreSQL.
//!
//! The workload is realistic in shape: `LEDGER_BENCH_DONATIONS` (default 20,000) donations
//! arriving every 20 s of simulated time, each with its payment, and then, interleaved in
//! time with the other donations, bookings (minutes later for card/PayPal/Sofort, days later
//! for bank transfers), moderation and approvals, cancellations, exports days later, scrubs,
//! and contribution tracking. Personal data is sealed with per-donation keys, so the rebuild
//! decrypts through the vault like `ledger rebuild` does.
//!
//! The raw SQLite file gets the settings of the rebuild's scratch file (in-memory journal, no
//! fsync, 64 MiB cache). `LEDGER_BENCH_BATCH_SIZE` overrides the rebuild's
//! events per transaction.
//!
//! `cargo bench --bench projection` (prints a summary with both rates and their ratio).

#[path = "../tests/projection_support/mod.rs"]
mod projection_support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use futures::TryStreamExt;
use ledger::domain::DomainEvent;
use ledger::privacy::{seal_with, DataKey, KeyStore, Vault};
use ledger::projection::{rebuild, ProjectorConfig, ReadModel};
use ledger::proto::events as ev;
use ledger::store::{Actor, EventData, ExpectedRevision, Metadata, StreamAppend};
use projection_support::{
    base_time, booked, config, donation_created, foc, payment_initiated, ts, Db, Env,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};
use uuid::Uuid;

/// The data tables of the read model (what the raw insert writes), in dependency order.
const DATA_TABLES: &[&str] = &[
    "donation_tracking",
    "donation",
    "donation_moderation_reason",
    "payment",
    "donation_event",
    "contribution_tracking",
    "contribution_tracking_conflict",
];

fn donations() -> u64 {
    std::env::var("LEDGER_BENCH_DONATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn batch_size() -> usize {
    std::env::var("LEDGER_BENCH_BATCH_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ProjectorConfig::default().rebuild_batch_size)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut summary = Vec::new();
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(env) = rt.block_on(Env::new(db)) else {
            continue;
        };
        let (events, vault) = rt.block_on(workload(&env, donations(), 1));
        let events = events as u64;
        let project_config = || ProjectorConfig {
            vault: Some(vault.clone()),
            rebuild_batch_size: batch_size(),
            ..config(1000)
        };
        // One rebuild up front: its tables are the rows the raw insert writes.
        rt.block_on(rebuild(env.log(), &env.url, project_config()))
            .unwrap();
        let rows = rt.block_on(RawRows::read(&env));
        let row_count = rows.count() as u64;

        let rebuild_times = Mutex::new(Vec::new());
        let raw_times = Mutex::new(Vec::new());
        let mut group = c.benchmark_group(format!("projection_{db:?}").to_lowercase());
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(15));
        group.throughput(Throughput::Elements(events));
        group.bench_function("rebuild", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let report = rt
                        .block_on(rebuild(env.log(), &env.url, project_config()))
                        .unwrap();
                    assert_eq!(report.events, events);
                    rebuild_times.lock().unwrap().push(report.projection);
                    total += report.projection;
                }
                total
            })
        });
        group.throughput(Throughput::Elements(row_count));
        group.bench_function("raw_insert_same_rows", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let took = rt.block_on(rows.insert(&env));
                    raw_times.lock().unwrap().push(took);
                    total += took;
                }
                total
            })
        });
        group.finish();
        summary.push((
            db,
            events,
            row_count,
            median(rebuild_times.into_inner().unwrap()),
            median(raw_times.into_inner().unwrap()),
        ));
        rt.block_on(async { ReadModel::connect(&env.url).await.unwrap().close().await });
        drop(env);
    }
    for (db, events, rows, rebuild, raw) in summary {
        let projector = events as f64 / rebuild.as_secs_f64();
        let raw_rows = rows as f64 / raw.as_secs_f64();
        let raw_events = events as f64 / raw.as_secs_f64();
        println!(
            "SUMMARY {db:?}: {events} events -> {rows} rows; rebuild median {:.3} s = {projector:.0} events/s; \
             raw median {:.3} s = {raw_rows:.0} rows/s ({raw_events:.0} event-equivalents/s); \
             events/s ÷ raw rows/s = {:.0} %; same-output time ratio (raw ÷ rebuild) = {:.0} %",
            rebuild.as_secs_f64(),
            raw.as_secs_f64(),
            100.0 * projector / raw_rows,
            100.0 * raw.as_secs_f64() / rebuild.as_secs_f64(),
        );
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// One event of the generated history, before it is appended.
struct Planned {
    at: DateTime<Utc>,
    seq: usize,
    stream: String,
    event: DomainEvent,
    actor: Actor,
    key: Option<u64>,
}

/// Appends a time-ordered, interleaved history of `count` donations (see the file comment),
/// sealed with keys stored in a key store next to the read model, and returns the number of
/// events and the vault that opens them.
async fn workload(env: &Env, count: u64, seed: u64) -> (usize, Vault) {
    let mut rng = StdRng::seed_from_u64(seed);
    let codes = ["BEZ", "UEB", "MCP", "PPL", "SUB"];
    let secs = chrono::Duration::seconds;
    let mut plan: Vec<Planned> = Vec::new();
    let mut push = |at, stream: String, event: DomainEvent, actor: Actor, key| {
        let seq = plan.len();
        plan.push(Planned {
            at,
            seq,
            stream,
            event,
            actor,
            key,
        });
    };
    let system = || Actor::system("bench");
    for id in 1..=count {
        let t = base_time() + secs(20 * id as i64);
        let code = codes[rng.gen_range(0..codes.len())];
        let pid = id + 10_000_000;
        if rng.gen_bool(0.3) {
            let ct = id + 20_000_000;
            let stream = format!("contribution_tracking-{ct}");
            let recorded = ev::ContributionTrackingRecorded {
                contribution_tracking_id: ct,
                allocation_token: format!("alloc-{ct}"),
                fields: Some(ev::ContributionTrackingFields {
                    amount: Some("13.37".into()),
                    currency: Some("EUR".into()),
                    utm_source: Some("B26_WMDE.lp1.dsk".into()),
                    ..Default::default()
                }),
            };
            push(
                t - secs(60),
                stream.clone(),
                recorded.into(),
                system(),
                None,
            );
            let linked = ev::ContributionLinked {
                contribution_id: id,
            };
            push(t + secs(5), stream, linked.into(), system(), None);
        }
        let initiated = payment_initiated(pid, id, code);
        push(
            t,
            format!("payment-{pid}"),
            initiated.into(),
            system(),
            Some(id),
        );
        let created = donation_created(id, pid, code, t);
        push(
            t + secs(1),
            format!("donation-{id}"),
            created.into(),
            system(),
            Some(id),
        );
        let booking = match code {
            "MCP" | "PPL" | "SUB" if rng.gen_bool(0.7) => Some(secs(rng.gen_range(30..1800))),
            "UEB" if rng.gen_bool(0.5) => Some(secs(rng.gen_range(86_400..864_000))),
            _ => None,
        };
        if let Some(after) = booking {
            let event = booked(t + after, &format!("TXN-{id}"));
            push(
                t + after,
                format!("payment-{pid}"),
                event.into(),
                system(),
                Some(id),
            );
        }
        if rng.gen_bool(0.2) {
            let raised = ev::ModerationReasonsRaised {
                reasons: vec![ev::ModerationReason {
                    identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
                    source: "amount".into(),
                }],
            };
            push(
                t + secs(2),
                format!("moderation-{id}"),
                raised.into(),
                system(),
                None,
            );
            if rng.gen_bool(0.5) {
                let approved = ev::ModerationApproved {
                    as_anonymous: false,
                };
                let at = t + secs(rng.gen_range(3600..259_200));
                push(
                    at,
                    format!("moderation-{id}"),
                    approved.into(),
                    foc("alice"),
                    None,
                );
            }
        }
        if matches!(code, "BEZ" | "UEB") && rng.gen_bool(0.1) {
            let cancelled = ev::DonationCancelled {
                reason: "donor".into(),
            };
            let at = t + secs(rng.gen_range(3600..1_209_600));
            push(
                at,
                format!("deletion-{id}"),
                cancelled.into(),
                foc("bob"),
                None,
            );
        }
        if rng.gen_bool(0.4) {
            let at = t + secs(rng.gen_range(86_400..604_800));
            let exported = ev::DonationExported {
                batch_id: format!("batch-{}", at.timestamp() / 86_400),
                exported_at: Some(ts(at)),
            };
            push(at, format!("export-{id}"), exported.into(), system(), None);
            if rng.gen_bool(0.5) {
                let at = at + secs(rng.gen_range(86_400..2_592_000));
                let scrubbed = ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(ts(at)),
                };
                push(at, format!("scrub-{id}"), scrubbed.into(), system(), None);
            }
        }
    }
    plan.sort_by_key(|p| (p.at, p.seq));

    // Keys: one per donation, stored in bulk (the key store's own API creates them one by one).
    let keys = match env.db {
        Db::Sqlite => KeyStore::open_sqlite(&env.dir.path().join("keys.db"))
            .await
            .unwrap(),
        Db::Postgres => KeyStore::connect(&env.url).await.unwrap(),
    };
    let ids: Vec<u64> = (1..=count).collect();
    let created = keys.create_many(&ids).await.unwrap();
    let data_keys: Vec<DataKey> = ids.iter().map(|i| created[i].clone()).collect();

    // Appended in atomic chunks (a stream at most once per chunk), in time order.
    let total = plan.len();
    let mut parts: Vec<StreamAppend> = Vec::new();
    let log = env.log();
    for p in plan {
        let mut event = p.event;
        if let Some(key_id) = p.key {
            seal_with(
                std::slice::from_mut(&mut event),
                key_id,
                &data_keys[key_id as usize - 1],
            );
        }
        if parts.len() >= 500 || parts.iter().any(|q| q.stream == p.stream) {
            log.append_atomic(std::mem::take(&mut parts)).await.unwrap();
        }
        let mut metadata = Metadata::new(p.actor, "bench", Uuid::new_v4());
        metadata.occurred_at = p.at;
        parts.push(StreamAppend {
            stream: p.stream,
            expected: ExpectedRevision::Any,
            events: vec![EventData {
                id: Uuid::new_v4(),
                event_type: event.event_type().to_owned(),
                payload: event.encode(),
                metadata,
            }],
        });
    }
    if !parts.is_empty() {
        log.append_atomic(parts).await.unwrap();
    }
    (total, Vault::new(keys))
}

/// A value read back from SQLite, bound again as it was stored.
#[derive(Clone)]
enum SqliteValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// One SQLite table's rows: its name, column names and values.
type SqliteTable = (&'static str, Vec<String>, Vec<Vec<SqliteValue>>);

/// The rows of every data table after a rebuild, as each database hands them out.
enum RawRows {
    /// Per table: column names and rows.
    Sqlite(Vec<SqliteTable>),
    /// Per table: row count and COPY text.
    Postgres(Vec<(&'static str, usize, Vec<u8>)>),
}

impl RawRows {
    async fn read(env: &Env) -> Self {
        match env.db {
            Db::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
                let mut out = Vec::new();
                for table in DATA_TABLES {
                    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    let columns = rows.first().map_or_else(Vec::new, |r| {
                        r.columns().iter().map(|c| c.name().to_owned()).collect()
                    });
                    let values = rows
                        .iter()
                        .map(|r| {
                            (0..columns.len())
                                .map(|i| {
                                    let raw = r.try_get_raw(i).unwrap();
                                    match raw.type_info().name() {
                                        "NULL" => SqliteValue::Null,
                                        "INTEGER" => SqliteValue::Int(r.get(i)),
                                        "REAL" => SqliteValue::Real(r.get(i)),
                                        "TEXT" => SqliteValue::Text(r.get(i)),
                                        _ => SqliteValue::Blob(r.get(i)),
                                    }
                                })
                                .collect()
                        })
                        .collect();
                    out.push((*table, columns, values));
                }
                Self::Sqlite(out)
            }
            Db::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&env.url).await.unwrap();
                let mut out = Vec::new();
                for table in DATA_TABLES {
                    let chunks: Vec<bytes::Bytes> = conn
                        .copy_out_raw(&format!("COPY readmodel.{table} TO STDOUT"))
                        .await
                        .unwrap()
                        .try_collect()
                        .await
                        .unwrap();
                    let data: Vec<u8> = chunks.concat();
                    let rows = data.iter().filter(|&&b| b == b'\n').count();
                    out.push((*table, rows, data));
                }
                Self::Postgres(out)
            }
        }
    }

    fn count(&self) -> usize {
        match self {
            Self::Sqlite(t) => t.iter().map(|(_, _, r)| r.len()).sum(),
            Self::Postgres(t) => t.iter().map(|(_, n, _)| n).sum(),
        }
    }

    /// Inserts the rows into freshly migrated read-model tables and returns the time the
    /// inserts and their commit took.
    async fn insert(&self, env: &Env) -> Duration {
        match self {
            Self::Sqlite(tables) => {
                let path = env.dir.path().join("raw.db");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                // The settings the rebuild's scratch file gets (see `sqlite::connect_scratch`),
                // and the read model's schema.
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Memory)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
                    .pragma("cache_size", "-65536")
                    .pragma("secure_delete", "ON");
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::migrate!("./migrations/sqlite/readmodel")
                    .run(&mut conn)
                    .await
                    .unwrap();
                let started = Instant::now();
                let mut tx = conn.begin().await.unwrap();
                for (table, columns, rows) in tables {
                    if rows.is_empty() {
                        continue;
                    }
                    // A fixed chunk size, so that one prepared statement serves every full chunk.
                    let chunk = (32_766 / columns.len()).min(500);
                    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
                    for part in rows.chunks(chunk) {
                        let sql = format!(
                            "INSERT INTO {table} ({}) VALUES {}",
                            columns.join(", "),
                            vec![tuple.as_str(); part.len()].join(", ")
                        );
                        let mut q = sqlx::query(&sql);
                        for row in part {
                            for v in row {
                                q = match v {
                                    SqliteValue::Null => q.bind(None::<i64>),
                                    SqliteValue::Int(i) => q.bind(*i),
                                    SqliteValue::Real(f) => q.bind(*f),
                                    SqliteValue::Text(s) => q.bind(s.as_str()),
                                    SqliteValue::Blob(b) => q.bind(b.as_slice()),
                                };
                            }
                        }
                        q.execute(&mut *tx).await.unwrap();
                    }
                }
                tx.commit().await.unwrap();
                started.elapsed()
            }
            Self::Postgres(tables) => {
                let rm = ReadModel::connect_with_schema(&env.url, "rawbench")
                    .await
                    .unwrap();
                rm.migrate().await.unwrap();
                rm.close().await;
                let mut conn = sqlx::PgConnection::connect(&env.url).await.unwrap();
                let names: Vec<String> = DATA_TABLES
                    .iter()
                    .map(|t| format!("rawbench.{t}"))
                    .collect();
                sqlx::query(&format!("TRUNCATE {}", names.join(", ")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let started = Instant::now();
                let mut tx = conn.begin().await.unwrap();
                for (table, _, data) in tables {
                    let mut copy = tx
                        .copy_in_raw(&format!("COPY rawbench.{table} FROM STDIN"))
                        .await
                        .unwrap();
                    copy.send(data.as_slice()).await.unwrap();
                    copy.finish().await.unwrap();
                }
                tx.commit().await.unwrap();
                started.elapsed()
            }
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
