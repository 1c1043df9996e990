//! The raw-insert baseline of `ledger bench`: it copies every row of the rebuilt read model and
//! ends with the same secondary indexes the read model has (it builds them after the fill, as
//! the rebuild does, and that build is part of its time). SQLite, and PostgreSQL when it
//! answers (skipped loudly otherwise, failing under `CI=true`), where the rebuild's rows, sent
//! with `COPY` in several pieces, must equal the SQLite rebuild's.
use crate::support;

use std::collections::BTreeSet;

use chrono::Utc;
use ledger::bench;
use ledger::privacy::{KeyStore, Vault};
use ledger::projection::ReadModel;
use ledger::workload::WorkloadConfig;
use sqlx::{Connection, Row};

/// Rows in the data tables of a read model.
async fn sqlite_rows(path: &std::path::Path) -> usize {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut n = 0;
    for table in bench::DATA_TABLES {
        let c: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n += c as usize;
    }
    n
}

/// Names of the explicitly created, non-unique indexes of a SQLite file.
async fn sqlite_indexes(path: &std::path::Path) -> BTreeSet<String> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND upper(sql) NOT LIKE 'CREATE UNIQUE%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect()
}

/// A dumped row with trailing zeros of decimal fractions dropped (`61.000` → `61`).
fn decimals_trimmed(row: &str) -> String {
    row.split(" | ")
        .map(|field| {
            let decimal = field.contains('.') && field.parse::<f64>().is_ok();
            if decimal {
                field.trim_end_matches('0').trim_end_matches('.')
            } else {
                field
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Index names of a PostgreSQL schema.
async fn pg_indexes(url: &str, schema: &str) -> BTreeSet<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT indexname::TEXT FROM pg_indexes WHERE schemaname = $1")
        .bind(schema)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_raw_insert_copies_every_row_and_builds_the_read_models_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyStore::open_sqlite(&dir.path().join("keys.sqlite"))
        .await
        .unwrap();
    let log = bench::fresh_log(dir.path(), "events.sqlite").await.unwrap();
    let config = WorkloadConfig {
        // Enough for a rebuild batch to send its change log to PostgreSQL in several pieces.
        donations: 1_000,
        seed: 7,
        start: Utc::now() - chrono::Duration::days(30),
        donations_only: false,
    };
    let workload = bench::sealed_workload(&config, &keys).await.unwrap();
    bench::fill_log(log.clone(), workload.appends)
        .await
        .unwrap();
    let vault = Vault::new(keys);

    let live = dir.path().join("readmodel.sqlite");
    let url = format!("sqlite://{}", live.display());
    bench::rebuild_rate(log.clone(), &url, vault.clone())
        .await
        .unwrap();
    let raw = bench::raw_insert(&url, dir.path()).await.unwrap();
    let rows = sqlite_rows(&live).await;
    assert!(rows > 1_000, "{rows}");
    assert_eq!(raw.rows, rows);
    let copy = dir.path().join("raw.sqlite");
    assert_eq!(sqlite_rows(&copy).await, rows);
    let indexes = sqlite_indexes(&live).await;
    assert!(indexes.len() > 10, "{indexes:?}");
    assert_eq!(sqlite_indexes(&copy).await, indexes);

    let Some(db) = support::postgres::fresh_database("rawbench").await else {
        return;
    };
    bench::rebuild_rate(log, &db.url, vault).await.unwrap();
    // The PostgreSQL rebuild (COPY for new rows) and the SQLite one hold the same rows in every
    // table and view (up to how each renders a decimal: `contribution_tracking.amount` is
    // NUMERIC(20, 3) there).
    let sqlite_dump = ReadModel::connect(&url)
        .await
        .unwrap()
        .dump()
        .await
        .unwrap();
    let pg_dump = ReadModel::connect(&db.url)
        .await
        .unwrap()
        .dump()
        .await
        .unwrap();
    assert_eq!(
        sqlite_dump.keys().collect::<Vec<_>>(),
        pg_dump.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &sqlite_dump {
        let pg_rows = &pg_dump[table];
        let same = |a: &String, b: &String| decimals_trimmed(a) == decimals_trimmed(b);
        if let Some((a, b)) = rows.iter().zip(pg_rows).find(|(a, b)| !same(a, b)) {
            panic!("table {table} differs between the dialects:\n sqlite {a}\n pg     {b}");
        }
        assert_eq!(rows.len(), pg_rows.len(), "rows of {table}");
    }
    let raw = bench::raw_insert(&db.url, dir.path()).await.unwrap();
    assert_eq!(raw.rows, rows, "the same rows as on SQLite");
    let indexes = pg_indexes(&db.url, "readmodel").await;
    assert!(indexes.len() > 10, "{indexes:?}");
    assert_eq!(pg_indexes(&db.url, "rawbench").await, indexes);
    drop(db);
}
