//! The read-model parts of `ledger bench`: the projection rebuild, the same final rows
//! inserted raw (the baseline), scrub selection and `verify`, and the throw-away PostgreSQL
//! database they run in (MariaDB's are in `mariadb.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures::TryStreamExt;
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};
use uuid::Uuid;

use crate::privacy::Vault;
use crate::projection::compare::CompareOptions;
use crate::projection::verify::{self, VerifyConfig, VerifyReport};
use crate::projection::{self, ProjectorConfig, ReadModel, RebuildReport, DEFAULT_SCHEMA};
use crate::store::EventLog;

/// Rebuilds the read model at `url` from the whole log the way `ledger rebuild` does (fresh
/// tables or scratch file, decrypting through `vault`) and returns the rebuild's report; its
/// `projection` time excludes the switch.
pub async fn rebuild_rate(
    log: Arc<dyn EventLog>,
    url: &str,
    vault: Vault,
) -> anyhow::Result<RebuildReport> {
    let config = ProjectorConfig {
        vault: Some(vault),
        ..ProjectorConfig::default()
    };
    Ok(projection::rebuild(log, url, config).await?)
}

/// The data tables of the read model (what a raw insert writes), in dependency order. A unit
/// test checks the list against the tables `verify` compares.
pub const DATA_TABLES: &[&str] = &[
    "donation_tracking",
    "donation",
    "donation_moderation_reason",
    "payment",
    "donation_event",
    "contribution_tracking",
    "contribution_tracking_conflict",
    "membership_application",
    "membership_moderation_reason",
    "address_change",
    "subscription",
    "membership_event",
    "address_change_event",
];

/// The PostgreSQL schema the raw insert fills.
pub(super) const RAW_SCHEMA: &str = "rawbench";

/// SQLite rows read per page while copying a table raw (bounds the memory the copy needs).
pub(super) const RAW_PAGE_ROWS: i64 = 50_000;

/// What a raw insert did.
#[derive(Debug, Clone, Copy)]
pub struct RawInsert {
    /// Rows inserted.
    pub rows: usize,
    /// Time spent inserting and committing (reading the rows is not counted).
    pub elapsed: Duration,
}

/// Sums the time spent in the futures it runs: the timed steps of a raw insert, without the
/// reads between them.
#[derive(Default)]
pub(super) struct Stopwatch(pub(super) Duration);

impl Stopwatch {
    pub(super) async fn time<T>(&mut self, step: impl std::future::Future<Output = T>) -> T {
        let clock = Instant::now();
        let out = step.await;
        self.0 += clock.elapsed();
        out
    }
}

/// Inserts the rows of every data table of the read model at `url` (after a rebuild: the
/// rebuild's final rows) raw into freshly migrated tables of the same database, the fastest
/// plain way, in one transaction: prepared multi-row INSERTs into a new SQLite file in `dir`
/// with the settings of the rebuild's scratch file, `COPY` into a new PostgreSQL schema
/// with `synchronous_commit = off` like the rebuild's fresh schema, or prepared multi-row
/// INSERTs into a new MariaDB database beside the read model's (`bench/mariadb.rs`). Like the rebuild, it drops
/// the secondary indexes of the empty tables first and builds them after the fill; the build
/// is timed.
pub async fn raw_insert(url: &str, dir: &Path) -> anyhow::Result<RawInsert> {
    if super::mariadb::is_mariadb_url(url) {
        return super::mariadb::raw_insert_mariadb(url).await;
    }
    match url.strip_prefix("sqlite:") {
        Some(rest) => {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            raw_insert_sqlite(Path::new(path), &dir.join("raw.sqlite")).await
        }
        None => raw_insert_postgres(url).await,
    }
}

/// A value read back from SQLite, bound again as it was stored.
pub(super) enum SqliteValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

pub(super) fn sqlite_value(
    row: &sqlx::sqlite::SqliteRow,
    i: usize,
) -> Result<SqliteValue, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    Ok(match raw.type_info().name() {
        "NULL" => SqliteValue::Null,
        "INTEGER" => SqliteValue::Int(row.try_get(i)?),
        "REAL" => SqliteValue::Real(row.try_get(i)?),
        "TEXT" => SqliteValue::Text(row.try_get(i)?),
        _ => SqliteValue::Blob(row.try_get(i)?),
    })
}

pub(super) async fn raw_insert_sqlite(source: &Path, target: &Path) -> anyhow::Result<RawInsert> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    let mut read = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(source)
            .read_only(true),
    )
    .await?;
    // The settings of the rebuild's scratch file, and its indexes built after the fill (the
    // drop on empty tables is not timed, the build is), as the rebuild does.
    let target_url = format!("sqlite://{}", target.display());
    let model = ReadModel::connect_scratch(&target_url, DEFAULT_SCHEMA).await?;
    model.migrate().await?;
    let indexes = model.defer_indexes().await?;
    let pool = model.sqlite_pool().context("a SQLite read model")?;
    let mut conn = pool.acquire().await?;

    let mut rows = 0;
    let mut watch = Stopwatch::default();
    let mut tx = watch.time(conn.begin()).await?;
    for table in DATA_TABLES {
        let select = format!(
            "SELECT rowid, * FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT {RAW_PAGE_ROWS}"
        );
        let mut after = i64::MIN;
        loop {
            let page = sqlx::query(&select)
                .bind(after)
                .fetch_all(&mut read)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.try_get(0)?;
            // Column 0 is the rowid the page is keyed on; it is not inserted.
            let columns: Vec<String> = page[0].columns()[1..]
                .iter()
                .map(|c| c.name().to_owned())
                .collect();
            let values = page
                .iter()
                .map(|r| (1..=columns.len()).map(|i| sqlite_value(r, i)).collect())
                .collect::<Result<Vec<Vec<_>>, _>>()?;
            drop(page);
            watch
                .time(insert_sqlite_rows(&mut tx, table, &columns, &values))
                .await?;
            rows += values.len();
        }
    }
    watch.time(tx.commit()).await?;
    drop(conn);
    watch.time(model.create_indexes(&indexes)).await?;
    model.close().await;
    Ok(RawInsert {
        rows,
        elapsed: watch.0,
    })
}

/// Inserts `rows` with prepared multi-row INSERTs of a fixed chunk size, so that one prepared
/// statement serves every full chunk.
pub(super) async fn insert_sqlite_rows(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
    columns: &[String],
    rows: &[Vec<SqliteValue>],
) -> Result<(), sqlx::Error> {
    let chunk = (32_766 / columns.len().max(1)).min(500);
    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
    for part in rows.chunks(chunk) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            vec![tuple.as_str(); part.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for v in part.iter().flatten() {
            q = match v {
                SqliteValue::Null => q.bind(None::<i64>),
                SqliteValue::Int(i) => q.bind(*i),
                SqliteValue::Real(f) => q.bind(*f),
                SqliteValue::Text(s) => q.bind(s.as_str()),
                SqliteValue::Blob(b) => q.bind(b.as_slice()),
            };
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn raw_insert_postgres(url: &str) -> anyhow::Result<RawInsert> {
    let mut read = sqlx::PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {RAW_SCHEMA} CASCADE"))
        .execute(&mut read)
        .await?;
    // The settings of the rebuild's fresh schema (`synchronous_commit = off`, also for the
    // index build).
    let target = ReadModel::connect_scratch(url, RAW_SCHEMA).await?;
    target.migrate().await?;
    // Indexes built after the fill, as the rebuild does: the drop on empty tables is not
    // timed, the build is.
    let indexes = target.defer_indexes().await?;

    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut conn)
        .await?;
    let mut rows = 0;
    let mut watch = Stopwatch::default();
    let mut tx = watch.time(conn.begin()).await?;
    for table in DATA_TABLES {
        let chunks: Vec<bytes::Bytes> = read
            .copy_out_raw(&format!("COPY {DEFAULT_SCHEMA}.{table} TO STDOUT"))
            .await?
            .try_collect()
            .await?;
        let data = chunks.concat();
        // COPY's text format escapes newlines inside values: one line per row.
        rows += data.iter().filter(|&&b| b == b'\n').count();
        watch
            .time(async {
                let sql = format!("COPY {RAW_SCHEMA}.{table} FROM STDIN");
                let mut copy = tx.copy_in_raw(&sql).await?;
                copy.send(data.as_slice()).await?;
                copy.finish().await
            })
            .await?;
    }
    watch.time(tx.commit()).await?;
    watch.time(target.create_indexes(&indexes)).await?;
    target.close().await;
    Ok(RawInsert {
        rows,
        elapsed: watch.0,
    })
}

/// Median time of `scrub_candidates` as the scrub job runs it (abandoned after the default
/// two days, no limit) on the read model at `url`, the number of candidates found and the
/// number of runs: 11, or fewer (at least 3) when they take more than 3 s in all.
pub async fn scrub_selection_time(url: &str) -> anyhow::Result<(usize, Duration, usize)> {
    let rm = ReadModel::connect(url).await?;
    let mut times: Vec<Duration> = Vec::new();
    let mut found = 0;
    while times.len() < 11
        && (times.len() < 3 || times.iter().sum::<Duration>() < Duration::from_secs(3))
    {
        let start = Instant::now();
        found = rm
            .scrub_candidates(Utc::now() - chrono::Duration::days(2), None, usize::MAX)
            .await?
            .len();
        times.push(start.elapsed());
    }
    rm.close().await;
    times.sort();
    Ok((found, times[times.len() / 2], times.len()))
}

/// Runs `verify` on the read model at `url` as `ledger verify` does (default projector
/// settings, decrypting through `vault`); fails when the read model differs from a rebuild.
pub async fn verify_read_model(
    log: Arc<dyn EventLog>,
    url: &str,
    vault: &Vault,
) -> anyhow::Result<VerifyReport> {
    let config = VerifyConfig {
        projector: ProjectorConfig {
            vault: Some(vault.clone()),
            ..ProjectorConfig::default()
        },
        catch_up_live: true,
        compare: CompareOptions::default(),
    };
    let report = verify::verify(log, url, config, &|_| {}).await?;
    anyhow::ensure!(
        report.is_identical(),
        "verify found differences in {:?}",
        report.differing_tables()
    );
    Ok(report)
}

/// A throw-away PostgreSQL database on the server of an administrative URL.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The URL of the throw-away database.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates `ledger_bench_<random>` on the server `admin_url` points to (the role needs
    /// the right to create databases).
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connecting to PostgreSQL")?;
        let name = format!("ledger_bench_{}", Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .context("creating the bench's scratch database")?;
        conn.close().await?;
        Ok(Self {
            url: url_with_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    /// Drops the database (closing its remaining sessions); a failure is logged, not
    /// returned, since the figures matter more than the clean-up.
    pub async fn drop_database(self) {
        let result = async {
            let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await?;
            conn.close().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(database = %self.name, error = %e, "could not drop the bench's scratch database");
        }
    }
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub(super) fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let end = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn data_tables_are_every_compared_table_but_the_bookkeeping() {
        let compared: BTreeSet<&str> = crate::projection::compare::compared_tables()
            .into_iter()
            .filter(|t| {
                !matches!(
                    *t,
                    "projector_checkpoint"
                        | "projector_skipped_event"
                        | "legacy_spenden"
                        | "legacy_request"
                        | "change_log"
                )
            })
            .collect();
        let raw: BTreeSet<&str> = DATA_TABLES.iter().copied().collect();
        assert_eq!(raw, compared);
    }

    #[test]
    fn url_with_database_replaces_only_the_database() {
        assert_eq!(
            url_with_database(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "b"
            ),
            "postgres://postgres@127.0.0.1:5432/b?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://postgres@localhost", "b"),
            "postgres://postgres@localhost/b"
        );
    }
}
