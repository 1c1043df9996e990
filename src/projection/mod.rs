//! The projector runtime: reads the log from a checkpoint, folds each batch in memory into
//! read-model rows, and writes the rows and the new checkpoint in one transaction.
//!
//! * One function, [`decode`], turns a recorded event into a [`DomainEvent`]; decryption of the
//!   personal-data units will hook in there.
//! * A batch loads the rows it touches with one `SELECT ... WHERE id IN (...)` per table,
//!   applies its events to row structs (`donation.rs`, `contribution_tracking.rs`) and writes
//!   them back with one multi-row upsert per table (SQLite: expanded `VALUES`; PostgreSQL:
//!   `UNNEST` of column arrays), plus the checkpoint, in the same transaction. The statements
//!   are the files in `projections/{sqlite,postgres}/`.
//! * An event that cannot be projected — it breaks the admission rule
//!   (`domain/admission.rs`), the fold refuses it, or the database refuses a value of it (a
//!   batch that fails so is retried event by event to find it) — is quarantined: recorded in
//!   `projector_skipped_event` with its cause (`skipped_by = quarantine`), counted, logged at
//!   ERROR, and passed over; no event in the log can stop a read model. With
//!   [`ProjectorConfig::quarantine`] off it stops the projector instead, with
//!   [`ProjectionError::EventRejected`] naming it, until [`Projector::skip_event`] records an
//!   operator's decision to pass over it. `ledger verify` lists the quarantined events;
//!   [`ReadModel::release_quarantined`] and a rebuild replay one after a fix.
//! * Database outages are retried with capped exponential back-off; since rows and checkpoint
//!   commit together, a retry neither loses nor doubles anything.
//! * Positions are opaque: lag is reported in positions (head minus checkpoint) and, on
//!   request, as a capped count of events read from the log ([`Projector::lag`]).

mod batch;
pub mod compare;
mod contribution_tracking;
mod donation;
mod postgres;
mod rows;
pub mod scrub_selection;
mod sqlite;
pub mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::domain::{CodecError, DomainEvent};
use crate::store::{EventLog, Position, RecordedEvent, StoreError};
use crate::telemetry::format_chain;

use batch::Decoded;

/// The statement building of a projector batch, reachable for `benches/hot_paths.rs` (not a
/// stable API): the bench measures the real code, not a copy.
#[doc(hidden)]
pub mod hot_paths {
    use super::rows::{self, ColType, Value};

    /// Donation rows with every column set, opaque to callers.
    pub struct DonationRows(Vec<Vec<Value>>);

    /// `n` donation rows with every column set (the widest table of a batch).
    pub fn donation_rows(n: usize) -> DonationRows {
        let now = chrono::Utc::now();
        DonationRows(
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
                .collect(),
        )
    }

    /// Builds SQLite's `rows`-row donation upsert; returns its length.
    pub fn sqlite_donation_statement(rows: usize) -> usize {
        rows::expand_values(super::sqlite::DONATION_UPSERT, rows).len()
    }

    /// Binds `rows` to PostgreSQL's `UNNEST` donation upsert (one array per column), as a
    /// batch write does before it sends the statement.
    pub fn postgres_donation_binds(rows: &DonationRows) {
        let q = super::postgres::bind_columns(
            sqlx::query(super::postgres::DONATION_UPSERT),
            rows::DONATION_COLUMNS,
            &rows.0,
        );
        drop(std::hint::black_box(q));
    }
}

/// The default projector name (its checkpoint row).
pub const DEFAULT_PROJECTOR: &str = "readmodel";
/// The default PostgreSQL schema of the read model.
pub const DEFAULT_SCHEMA: &str = "readmodel";
/// The default events per transaction of a rebuild (see [`ProjectorConfig::rebuild_batch_size`]).
/// `ledger bench --donations 100000` on PostgreSQL: 93,800 events/s at 10,000, 101,000 at
/// 20,000 (fewer round trips per event); SQLite about the same either way.
pub const REBUILD_BATCH_SIZE: usize = 20_000;
/// The default donations (and as many payments) a rebuild keeps in memory between batches
/// (see [`ProjectorConfig::write_back_rows`]): about 1.5 KB each, so some 75 MB.
pub const REBUILD_CACHE_ROWS: usize = 50_000;

/// Errors of the projection layer.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The read-model database failed. `transient` failures (connection lost, server shutting
    /// down, lock contention) are retried; a `data` failure (a value the column cannot hold,
    /// a constraint) is the batch's events' doing, and the projector narrows it down to the
    /// one event and quarantines it; others stop the projector.
    #[error("read-model database error (transient: {transient}, data: {data}): {source}")]
    Database {
        /// Whether retrying may succeed.
        transient: bool,
        /// Whether a value of the batch caused it (SQLSTATE classes 22 and 23, SQLite
        /// CONSTRAINT, TOOBIG, MISMATCH, RANGE).
        data: bool,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The read-model schema could not be brought up to date.
    #[error("read-model migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Reading the event log failed.
    #[error("event log error (transient: {transient}): {source}")]
    Store {
        /// Whether retrying may succeed.
        transient: bool,
        /// The log's error.
        #[source]
        source: StoreError,
    },
    /// An event cannot be applied; the projector stops before it until it is fixed or skipped.
    #[error(
        "projector `{projector}` stopped at position {position} (stream `{stream}`, event type \
         `{event_type}`): {reason}"
    )]
    EventRejected {
        /// The projector.
        projector: String,
        /// The event's position.
        position: Position,
        /// The event's stream.
        stream: String,
        /// The event's stored type name.
        event_type: String,
        /// Why it cannot be applied.
        reason: String,
    },
    /// The read-model URL is not usable.
    #[error("invalid read-model URL: {0}")]
    InvalidUrl(String),
    /// An operator's skip was refused.
    #[error("cannot skip position {position}: {reason}")]
    SkipRefused {
        /// The position asked for.
        position: Position,
        /// Why not.
        reason: String,
    },
    /// The key store failed while unsealing personal data (a database failure is transient;
    /// a ciphertext that does not authenticate is not).
    #[error("unsealing personal data failed")]
    Privacy(#[from] crate::privacy::PrivacyError),
    /// A rebuild could not prepare or switch its tables.
    #[error("rebuild failed: {0}")]
    Rebuild(String),
    /// A transient failure persisted through every retry.
    #[error("gave up after {attempts} attempts")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<ProjectionError>,
    },
}

impl ProjectionError {
    /// Whether a value the batch wrote was refused by the database.
    pub fn is_data(&self) -> bool {
        matches!(self, Self::Database { data: true, .. })
    }

    /// Whether retrying the same step may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database { transient, .. } | Self::Store { transient, .. } => *transient,
            Self::Privacy(crate::privacy::PrivacyError::Database(e)) => is_transient(e),
            _ => false,
        }
    }
}

/// What a driver error means for the projector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFailure {
    /// Retrying may succeed (connection lost, server shutting down, lock contention).
    Transient,
    /// A value the batch wrote was refused (out of range, NUL in text, a constraint).
    Data,
    /// Anything else (a missing table, permissions): an operator must look.
    Other,
}

/// Classifies a driver error by error kind and, per dialect, by SQLSTATE or SQLite result
/// code, never by message text. The dialect is read from the error's type, so a PostgreSQL
/// SQLSTATE is never taken for a SQLite code (`22021 & 0xff` is SQLite's BUSY).
pub fn classify(e: &sqlx::Error) -> DbFailure {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => DbFailure::Transient,
        sqlx::Error::Encode(_) => DbFailure::Data,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // Connection exceptions (08), insufficient resources (53), operator
                // intervention such as pg_terminate_backend (57P01..57P03), serialization
                // failure and deadlock (40001, 40P01), lock not available (55P03), a database
                // not accepting connections for maintenance (55000); data exceptions (22) and
                // integrity constraint violations (23).
                if code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(
                        code.as_ref(),
                        "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03" | "55000"
                    )
                {
                    DbFailure::Transient
                } else if code.starts_with("22") || code.starts_with("23") {
                    DbFailure::Data
                } else {
                    DbFailure::Other
                }
            } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Primary result codes (the low byte of an extended code): BUSY (5) and
                // LOCKED (6); TOOBIG (18), CONSTRAINT (19), MISMATCH (20), RANGE (25).
                match code.parse::<i32>().map(|c| c & 0xff) {
                    Ok(5 | 6) => DbFailure::Transient,
                    Ok(18 | 19 | 20 | 25) => DbFailure::Data,
                    _ => DbFailure::Other,
                }
            } else {
                DbFailure::Other
            }
        }
        _ => DbFailure::Other,
    }
}

/// Whether a driver error is worth retrying.
fn is_transient(e: &sqlx::Error) -> bool {
    classify(e) == DbFailure::Transient
}

/// Classifies a read-model driver error where it happens.
pub(crate) fn db_error(source: sqlx::Error) -> ProjectionError {
    let failure = classify(&source);
    ProjectionError::Database {
        transient: failure == DbFailure::Transient,
        data: failure == DbFailure::Data,
        source,
    }
}

fn store_error(source: StoreError) -> ProjectionError {
    let transient = match &source {
        StoreError::Database(e) => is_transient(e),
        other => other.is_transient(),
    };
    ProjectionError::Store { transient, source }
}

/// Longest cause, stream or type stored with a quarantined event.
const MAX_RECORDED_CHARS: usize = 1000;

/// `s` fit for a read-model text column and a log line: control characters escaped, cut to
/// [`MAX_RECORDED_CHARS`] (a foreign writer's stream name or type may hold anything).
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_RECORDED_CHARS));
    for c in s.chars().take(MAX_RECORDED_CHARS) {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Errors turning a recorded event into a domain event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The type name or payload is not understood.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A sealed personal unit cannot be opened: its ciphertext does not authenticate, its
    /// clear text does not decode, or its key id is out of range (an altered or foreign event).
    #[error("sealed personal data cannot be opened: {0}")]
    Unseal(crate::privacy::PrivacyError),
}

/// Decrypts the personal units of a decoded batch with one key-store lookup (the batch-level
/// half of `decode`: keys are fetched for the whole batch at once), in place.
async fn unseal_batch(
    vault: &crate::privacy::Vault,
    events: &mut [Decoded],
) -> Result<(), ProjectionError> {
    let decoded = events.iter_mut().filter_map(|d| d.event.as_mut().ok());
    Ok(vault.unseal(decoded).await?)
}

/// Decodes a recorded event. The one place every projector turns stored bytes into a domain
/// event; `unseal_batch` then decrypts the personal units of the whole batch.
pub fn decode(event: &RecordedEvent) -> Result<DomainEvent, DecodeError> {
    Ok(DomainEvent::decode(&event.event_type, &event.payload)?)
}

/// Which SQL dialect a read model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL schema.
    Postgres,
}

#[derive(Clone)]
enum Backend {
    Sqlite {
        pool: sqlx::SqlitePool,
        path: PathBuf,
    },
    Postgres {
        pool: sqlx::PgPool,
        url: String,
        schema: String,
    },
}

/// A connection to the relational read model: an SQLite file or a PostgreSQL schema.
#[derive(Clone)]
pub struct ReadModel {
    backend: Backend,
}

impl std::fmt::Debug for ReadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("ReadModel")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

/// Every table of a read model rendered as text rows ordered by key, for comparisons.
pub type TableDump = BTreeMap<String, Vec<String>>;

impl ReadModel {
    /// Connects to `sqlite://path` (created if missing) or `postgres://...` (schema
    /// [`DEFAULT_SCHEMA`]). PostgreSQL connects lazily, so this succeeds while it is down.
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        Self::connect_with_schema(url, DEFAULT_SCHEMA).await
    }

    /// Like [`ReadModel::connect`], with the PostgreSQL schema named (ignored for SQLite).
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, ProjectionError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres {
                pool: postgres::connect(url, schema)?,
                url: url.to_owned(),
                schema: schema.to_owned(),
            }
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            Backend::Sqlite {
                pool: sqlite::connect(url).await?,
                path: PathBuf::from(path),
            }
        } else {
            return Err(ProjectionError::InvalidUrl(
                "expected a sqlite:// or postgres:// URL".into(),
            ));
        };
        Ok(Self { backend })
    }

    /// A SQLite file (created if missing) with the settings of a rebuild's scratch file:
    /// nothing reads it while it is filled and a crash discards it (see
    /// `sqlite::connect_scratch`); one connection.
    pub(crate) async fn sqlite_scratch(path: &Path) -> Result<Self, ProjectionError> {
        Ok(Self {
            backend: Backend::Sqlite {
                pool: sqlite::connect_scratch(path).await?,
                path: path.to_owned(),
            },
        })
    }

    /// A PostgreSQL schema with the settings of a rebuild's fresh schema: nothing reads it
    /// while it is filled and a crash discards it, so commits do not wait for the WAL flush
    /// (see `postgres::connect_scratch`).
    pub(crate) fn postgres_scratch(url: &str, schema: &str) -> Result<Self, ProjectionError> {
        Ok(Self {
            backend: Backend::Postgres {
                pool: postgres::connect_scratch(url, schema)?,
                url: url.to_owned(),
                schema: schema.to_owned(),
            },
        })
    }

    /// The SQLite pool, for tools in this crate that write a SQLite read model directly.
    pub(crate) fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => Some(pool),
            Backend::Postgres { .. } => None,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite { .. } => Dialect::Sqlite,
            Backend::Postgres { .. } => Dialect::Postgres,
        }
    }

    /// Where the read model lives, for logs: `host:port/database` (schema `…`) or the
    /// file's path. Never a user name or password.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            Backend::Postgres { url, schema, .. } => postgres::location(url, schema),
        }
    }

    /// Creates or updates the tables (embedded migrations).
    pub async fn migrate(&self) -> Result<(), ProjectionError> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::migrate(pool).await,
            Backend::Postgres { pool, schema, .. } => postgres::migrate(pool, schema).await,
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { pool, .. } => pool.close().await,
            Backend::Postgres { pool, .. } => pool.close().await,
        }
    }

    /// The last position `projector` applied, or `None` before its first event.
    pub async fn checkpoint(&self, projector: &str) -> Result<Option<Position>, ProjectionError> {
        const SQL_SQLITE: &str = "SELECT position FROM projector_checkpoint WHERE projector = ?1";
        const SQL_PG: &str = "SELECT position FROM projector_checkpoint WHERE projector = $1";
        let position: Option<Option<i64>> = match &self.backend {
            Backend::Sqlite { pool, .. } => sqlx::query_scalar(SQL_SQLITE)
                .bind(projector)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?,
            Backend::Postgres { pool, .. } => sqlx::query_scalar(SQL_PG)
                .bind(projector)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?,
        };
        Ok(position.flatten().map(|p| p as Position))
    }

    /// Every table and the `legacy_spenden` view, rendered dialect-neutrally and ordered by
    /// key (`projector_checkpoint` without its wall-clock column).
    pub async fn dump(&self) -> Result<TableDump, ProjectionError> {
        let mut out = TableDump::new();
        for layout in rows::TABLES.iter().chain([&rows::LEGACY_SPENDEN]) {
            let rows = match &self.backend {
                Backend::Sqlite { pool, .. } => sqlite::dump(pool, layout).await?,
                Backend::Postgres { pool, .. } => postgres::dump(pool, layout).await?,
            };
            out.insert(layout.name.to_owned(), rows);
        }
        Ok(out)
    }

    /// One row of a table or of `legacy_spenden` as column name → rendered value, found by
    /// its first column (`id` or `donation_id`). For tests and diagnostics.
    pub async fn row(
        &self,
        table: &str,
        key: i64,
    ) -> Result<Option<BTreeMap<String, String>>, ProjectionError> {
        let layout = rows::TABLES
            .iter()
            .chain([&rows::LEGACY_SPENDEN])
            .find(|l| l.name == table)
            .ok_or_else(|| ProjectionError::InvalidUrl(format!("unknown table {table}")))?;
        let dump = match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::dump(pool, layout).await?,
            Backend::Postgres { pool, .. } => postgres::dump(pool, layout).await?,
        };
        let prefix = format!("{key} |");
        Ok(dump.iter().find(|r| r.starts_with(&prefix)).map(|r| {
            layout
                .columns
                .iter()
                .map(|(c, _)| (*c).to_owned())
                .zip(r.split(" | ").map(str::to_owned))
                .collect()
        }))
    }

    /// Drops the secondary indexes (not those behind a primary key or unique constraint,
    /// which upserts need) and returns the statements that recreate them. A rebuild fills its
    /// fresh tables without them and then builds each index once from sorted data, instead of
    /// updating 28 b-trees row by row.
    pub(crate) async fn defer_indexes(&self) -> Result<Vec<String>, ProjectionError> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::drop_secondary_indexes(pool).await,
            Backend::Postgres { pool, schema, .. } => {
                postgres::drop_secondary_indexes(pool, schema).await
            }
        }
    }

    /// Runs the statements [`ReadModel::defer_indexes`] returned.
    pub(crate) async fn create_indexes(
        &self,
        statements: &[String],
    ) -> Result<(), ProjectionError> {
        for sql in statements {
            match &self.backend {
                Backend::Sqlite { pool, .. } => {
                    sqlx::query(sql).execute(pool).await.map_err(db_error)?;
                }
                Backend::Postgres { pool, .. } => {
                    sqlx::query(sql).execute(pool).await.map_err(db_error)?;
                }
            }
        }
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn batch::Session>, ProjectionError> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::begin(pool).await,
            Backend::Postgres { pool, .. } => postgres::begin(pool).await,
        }
    }

    /// Removes the quarantine of the event at `position` (an operator fixed what made it
    /// unprojectable); whether there was one. The projector is past it: a rebuild replays it.
    pub async fn release_quarantined(
        &self,
        projector: &str,
        position: Position,
    ) -> Result<bool, ProjectionError> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let deleted = match &self.backend {
            Backend::Sqlite { pool, .. } => sqlx::query(
                "DELETE FROM projector_skipped_event \
                 WHERE projector = ?1 AND position = ?2 AND skipped_by = ?3",
            )
            .bind(projector)
            .bind(position)
            .bind(QUARANTINE)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Backend::Postgres { pool, .. } => sqlx::query(
                "DELETE FROM projector_skipped_event \
                 WHERE projector = $1 AND position = $2 AND skipped_by = $3",
            )
            .bind(projector)
            .bind(position)
            .bind(QUARANTINE)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        }
        .map_err(db_error)?;
        Ok(deleted > 0)
    }

    /// Records that `projector` passes over the event at `event` (position, stream, type)
    /// because of `reason`, decided by `operator` (or [`QUARANTINE`]).
    async fn insert_skipped(
        &self,
        projector: &str,
        event: &SkippedEvent<'_>,
        reason: &str,
        operator: &str,
    ) -> Result<(), ProjectionError> {
        let position = i64::try_from(event.position).unwrap_or(i64::MAX);
        let now = Utc::now();
        let result = match &self.backend {
            Backend::Sqlite { pool, .. } => sqlx::query(sqlite::SKIPPED_EVENT_INSERT)
                .bind(projector)
                .bind(position)
                .bind(event.stream)
                .bind(event.event_type)
                .bind(reason)
                .bind(operator)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ()),
            Backend::Postgres { pool, .. } => sqlx::query(postgres::SKIPPED_EVENT_INSERT)
                .bind(projector)
                .bind(position)
                .bind(event.stream)
                .bind(event.event_type)
                .bind(reason)
                .bind(operator)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ()),
        };
        match result {
            Err(sqlx::Error::Database(e))
                if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
            {
                Err(ProjectionError::SkipRefused {
                    position: event.position,
                    reason: "already skipped".into(),
                })
            }
            other => other.map_err(db_error),
        }
    }
}

/// The `skipped_by` of an event the projector quarantined itself (not an operator).
pub const QUARANTINE: &str = "quarantine";

/// The coordinates of an event passed over: its position, stream and type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SkippedEvent<'a> {
    position: Position,
    stream: &'a str,
    event_type: &'a str,
}

impl<'a> SkippedEvent<'a> {
    fn of(event: &'a RecordedEvent) -> Self {
        Self {
            position: event.position,
            stream: &event.stream,
            event_type: &event.event_type,
        }
    }
}

/// How a projector retries transient failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first back-off.
    pub initial: Duration,
    /// The longest back-off.
    pub max: Duration,
    /// Attempts per step before giving up in [`Projector::run_once`]; `None` retries forever.
    /// [`Projector::run_until_stopped`] always retries until stopped.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            max_attempts: Some(20),
        }
    }
}

impl RetryPolicy {
    /// The back-off before retry number `attempt` (from 1): doubling, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Settings of a projector.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Its name, the key of its checkpoint.
    pub name: String,
    /// Events per batch (one transaction).
    pub batch_size: usize,
    /// Events per batch while [`rebuild`] fills fresh tables. Nobody reads those before the
    /// switch, so larger transactions cost only memory, and more of a donation's events fold
    /// into one row write.
    pub rebuild_batch_size: usize,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long a live projector waits for a new event before looking again anyway.
    pub idle_poll: Duration,
    /// Decrypts personal data before it is projected; without it personal columns stay empty.
    pub vault: Option<crate::privacy::Vault>,
    /// Donation and payment rows kept in memory between batches and written once, when they
    /// leave the cache or when the projector catches up (0: every batch writes its rows).
    /// Only for tables nobody reads until the fill is complete: [`rebuild`] and a verify's
    /// scratch database set it; a live projector must not, since its checkpoint would run
    /// ahead of the rows a reader sees.
    pub write_back_rows: usize,
    /// Quarantine an event the projector cannot project (record it in
    /// `projector_skipped_event` with the cause, count it, go on) instead of stopping before
    /// it until an operator skips it. On by default: no event in the log may stop a read
    /// model.
    pub quarantine: bool,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_PROJECTOR.to_owned(),
            batch_size: 1000,
            rebuild_batch_size: REBUILD_BATCH_SIZE,
            retry: RetryPolicy::default(),
            idle_poll: Duration::from_secs(1),
            vault: None,
            write_back_rows: 0,
            quarantine: true,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// A batch was committed.
    Processed {
        /// Events applied or skipped.
        events: usize,
        /// The checkpoint after it.
        checkpoint: Option<Position>,
    },
    /// Nothing left to read.
    CaughtUp,
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatchUpOutcome {
    /// Events applied or skipped.
    pub events: u64,
    /// Batches committed.
    pub batches: u64,
    /// Transient failures retried.
    pub retries: u64,
    /// The checkpoint at the end.
    pub checkpoint: Option<Position>,
    /// Wall time.
    pub elapsed: Duration,
}

/// A projector's counters, for a metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectorStats {
    /// The projector's name.
    pub projector: String,
    /// The last applied position.
    pub checkpoint: Option<Position>,
    /// The log's head when last looked at.
    pub head_position: Option<Position>,
    /// Head minus checkpoint, in (opaque, non-contiguous) positions: zero means caught up.
    pub lag_positions: u64,
    /// Events applied or skipped since start.
    pub events_total: u64,
    /// Events passed over because an operator skipped them or the projector quarantined them.
    pub skipped_total: u64,
    /// Events the projector quarantined since start (it could not project them).
    pub quarantined_total: u64,
    /// Batches committed.
    pub batches_total: u64,
    /// Transient failures retried.
    pub retries_total: u64,
    /// `contribution_id_change` conflicts recorded (`change_cid_errors` at WMF).
    pub contribution_id_conflicts_total: u64,
    /// `allocation_collision` conflicts recorded.
    pub allocation_collisions_total: u64,
    /// Events of the last catch-up run.
    pub last_run_events: u64,
    /// Duration of the last catch-up run, in seconds.
    pub last_run_seconds: f64,
    /// Throughput of the last catch-up run.
    pub last_run_events_per_second: f64,
    /// The last error, if the projector is stopped or retrying.
    pub last_error: Option<String>,
}

/// A shared handle on a projector's stats; clone it into a metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<ProjectorStats>>);

impl StatsHandle {
    /// A copy of the current counters.
    pub fn snapshot(&self) -> ProjectorStats {
        self.0.lock().expect("stats lock").clone()
    }

    fn update(&self, f: impl FnOnce(&mut ProjectorStats)) {
        f(&mut self.0.lock().expect("stats lock"));
    }
}

/// Lag of a projector behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Head minus checkpoint, in positions.
    pub positions: u64,
    /// Events behind, counted by reading the log up to `cap` events.
    pub events: u64,
    /// Whether the count stopped at the cap.
    pub capped: bool,
}

/// A projector: folds the log into one read model. Clones share the stats handle.
#[derive(Clone)]
pub struct Projector {
    log: Arc<dyn EventLog>,
    read_model: ReadModel,
    config: ProjectorConfig,
    stats: StatsHandle,
    prefetch: Arc<Mutex<Option<Prefetch>>>,
    cache: Option<Arc<tokio::sync::Mutex<batch::RowCache>>>,
    /// Up to this position the projector reads one event per batch: a batch of several
    /// failed on a value the database refused, and this finds which event it was.
    narrow: Arc<Mutex<Option<Position>>>,
}

/// The next batch, read, decoded and unsealed in the background while the current one is
/// written (after a full batch, the log very likely has more). Used only if the step after
/// starts exactly where it did; otherwise it is dropped and the batch is read again.
struct Prefetch {
    from: Position,
    task: tokio::task::JoinHandle<Result<Vec<Decoded>, ProjectionError>>,
}

impl Drop for Projector {
    fn drop(&mut self) {
        // Clones share the prefetch; the last one cancels a read still in flight.
        if Arc::strong_count(&self.prefetch) == 1 {
            if let Some(p) = self.prefetch.lock().ok().and_then(|mut g| g.take()) {
                p.task.abort();
            }
        }
    }
}

/// Reads up to `max` events from `from`, decodes them and unseals their personal data.
async fn read_batch(
    log: Arc<dyn EventLog>,
    vault: Option<crate::privacy::Vault>,
    from: Position,
    max: usize,
) -> Result<Vec<Decoded>, ProjectionError> {
    let records = log.read_all(from, max).await.map_err(store_error)?;
    let mut events: Vec<Decoded> = records
        .into_iter()
        .map(|record| Decoded {
            event: decode(&record),
            record,
        })
        .collect();
    if let Some(vault) = &vault {
        match unseal_batch(vault, &mut events).await {
            Ok(()) => {}
            // An event whose sealed unit cannot be opened: find it (and any other) one by
            // one, so the batch quarantines it instead of the projector stopping before it.
            Err(ProjectionError::Privacy(e)) if is_the_events_fault(&e) => {
                for d in &mut events {
                    let Ok(event) = d.event.as_mut() else {
                        continue;
                    };
                    match vault.unseal(std::iter::once(event)).await {
                        Ok(()) => {}
                        Err(e) if is_the_events_fault(&e) => d.event = Err(DecodeError::Unseal(e)),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(events)
}

/// Whether an unsealing failure lies in the event (altered or foreign ciphertext) rather than
/// in the key store.
fn is_the_events_fault(e: &crate::privacy::PrivacyError) -> bool {
    use crate::privacy::PrivacyError as P;
    match e {
        P::Tampered { .. } | P::Malformed(_) | P::KeyIdOutOfRange(_) => true,
        P::KeyDestroyed(_) | P::CorruptKey | P::WriteFailed(_) | P::Database(_) | P::Migrate(_) => {
            false
        }
    }
}

/// Events per batch from which [`release`] frees a batch on another thread.
const RELEASE_ELSEWHERE: usize = 4096;

/// Frees an applied batch. A rebuild's batches hold tens of thousands of decoded events with
/// their strings (freeing one was 3 % of the projector's thread, `perf` of `ledger bench
/// --parts projection`); a blocking-pool thread does that while the next batch is folded.
/// Small batches are freed in place, where that is cheaper than the hand-over.
fn release(events: Vec<Decoded>) {
    if events.len() >= RELEASE_ELSEWHERE {
        drop(tokio::task::spawn_blocking(move || drop(events)));
    }
}

impl Projector {
    /// A projector with the default configuration.
    pub fn new(log: Arc<dyn EventLog>, read_model: ReadModel) -> Self {
        Self::with_config(log, read_model, ProjectorConfig::default())
    }

    /// A projector with `config`.
    pub fn with_config(
        log: Arc<dyn EventLog>,
        read_model: ReadModel,
        config: ProjectorConfig,
    ) -> Self {
        let stats = StatsHandle::default();
        stats.update(|s| s.projector = config.name.clone());
        let cache = (config.write_back_rows > 0).then(|| {
            Arc::new(tokio::sync::Mutex::new(batch::RowCache::new(
                config.write_back_rows,
            )))
        });
        Self {
            log,
            read_model,
            config,
            stats,
            prefetch: Arc::new(Mutex::new(None)),
            cache,
            narrow: Arc::new(Mutex::new(None)),
        }
    }

    /// The shared stats handle.
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// The read model it writes.
    pub fn read_model(&self) -> &ReadModel {
        &self.read_model
    }

    /// Reads one batch after the checkpoint and applies it. Errors are not retried here.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(projector = %self.config.name))]
    pub async fn try_step(&self) -> Result<StepOutcome, ProjectionError> {
        let name = &self.config.name;
        let mut cache = match &self.cache {
            Some(c) => Some(c.lock().await),
            None => None,
        };
        let checkpoint = self.read_model.checkpoint(name).await?;
        if let Some(cache) = cache.as_deref_mut() {
            // No checkpoint: nothing was ever applied to these tables, so they are empty
            // (a write-back projector only fills fresh tables).
            if checkpoint.is_none() {
                cache.set_started_empty(true);
            }
        }
        let from = checkpoint.map_or(0, |p| p + 1);
        let narrowed = {
            let mut narrow = self.narrow.lock().expect("narrow lock");
            if narrow.is_some_and(|until| from > until) {
                *narrow = None;
            }
            narrow.is_some()
        };
        let max = if narrowed {
            1
        } else {
            self.config.batch_size.max(1)
        };
        let prefetched = self.prefetch.lock().expect("prefetch lock").take();
        let events = match prefetched {
            Some(p) if p.from == from => match p.task.await {
                Ok(events) => events?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {
                    read_batch(self.log.clone(), self.config.vault.clone(), from, max).await?
                }
            },
            stale => {
                if let Some(p) = stale {
                    p.task.abort();
                }
                read_batch(self.log.clone(), self.config.vault.clone(), from, max).await?
            }
        };
        if events.is_empty() {
            if let Some(cache) = cache.as_deref_mut().filter(|c| c.is_dirty()) {
                let mut session = self.read_model.begin().await?;
                cache.flush(session.as_mut()).await?;
                session.commit().await?;
                cache.flushed();
            }
            self.stats.update(|s| {
                s.checkpoint = checkpoint;
                s.lag_positions = s
                    .head_position
                    .unwrap_or(0)
                    .saturating_sub(checkpoint.unwrap_or(0));
            });
            return Ok(StepOutcome::CaughtUp);
        }
        if events.len() == max {
            let next = events.last().map_or(from, |d| d.record.position + 1);
            let task = tokio::spawn(read_batch(
                self.log.clone(),
                self.config.vault.clone(),
                next,
                max,
            ));
            *self.prefetch.lock().expect("prefetch lock") = Some(Prefetch { from: next, task });
        }
        let written = async {
            let mut session = self.read_model.begin().await?;
            let (outcome, committed) = batch::apply(
                session.as_mut(),
                name,
                checkpoint,
                &events,
                cache.as_deref(),
            )
            .await?;
            if !outcome.raced {
                session.commit().await?;
            }
            Ok::<_, ProjectionError>((outcome, committed))
        }
        .await;
        let (outcome, committed) = match written {
            Ok(done) => done,
            // A value the database refused: find the event (one per batch) and quarantine
            // it. Not with a write-back cache, whose rows are written batches after their
            // events; there the error ends the rebuild.
            Err(e) if e.is_data() && self.config.quarantine && cache.is_none() => {
                let (first, last) = (&events[0].record, &events[events.len() - 1].record);
                if events.len() > 1 {
                    tracing::warn!(projector = %name, from = first.position, to = last.position, cause = %format_chain(&e), read_model = %self.read_model.location(), "the database refused a value of this batch; retrying its events one by one");
                    *self.narrow.lock().expect("narrow lock") = Some(last.position);
                    if let Some(p) = self.prefetch.lock().expect("prefetch lock").take() {
                        p.task.abort();
                    }
                } else {
                    self.quarantine(SkippedEvent::of(first), &format_chain(&e))
                        .await?;
                }
                return Ok(StepOutcome::Processed {
                    events: 0,
                    checkpoint,
                });
            }
            Err(e) => return Err(e),
        };
        if outcome.raced {
            tracing::info!(projector = %name, "another projector advanced the checkpoint; re-reading");
            return Ok(StepOutcome::Processed {
                events: 0,
                checkpoint: None,
            });
        }
        if let Some(cache) = cache.as_deref_mut() {
            committed.finish(cache);
        }
        release(events);

        let head = self.log.head_position().await.map_err(store_error)?;
        let (mut cid, mut alloc) = (0, 0);
        for c in &outcome.conflicts {
            if c.kind == "allocation_collision" {
                alloc += 1;
            } else {
                cid += 1;
            }
            tracing::warn!(
                projector = %name,
                contribution_tracking_id = c.contribution_tracking_id,
                kind = c.kind,
                existing = %c.existing,
                attempted = %c.attempted,
                position = c.position,
                "contribution_tracking change refused"
            );
        }
        self.stats.update(|s| {
            s.checkpoint = outcome.checkpoint;
            s.head_position = head;
            s.lag_positions = head
                .unwrap_or(0)
                .saturating_sub(outcome.checkpoint.unwrap_or(0));
            s.events_total += outcome.processed as u64;
            s.skipped_total += outcome.skipped as u64;
            s.batches_total += 1;
            s.contribution_id_conflicts_total += cid;
            s.allocation_collisions_total += alloc;
        });
        tracing::debug!(projector = %name, events = outcome.processed, checkpoint = ?outcome.checkpoint, "batch committed");
        match outcome.error {
            Some(ProjectionError::EventRejected {
                position,
                stream,
                event_type,
                reason,
                ..
            }) if self.config.quarantine => {
                let event = SkippedEvent {
                    position,
                    stream: &stream,
                    event_type: &event_type,
                };
                self.quarantine(event, &reason).await?;
            }
            Some(error) => {
                tracing::error!(projector = %name, error = %error, "projector stopped at an event it cannot apply");
                self.stats
                    .update(|s| s.last_error = Some(error.to_string()));
                return Err(error);
            }
            None => {}
        }
        Ok(StepOutcome::Processed {
            events: outcome.processed,
            checkpoint: outcome.checkpoint,
        })
    }

    /// Records that the event at `event` cannot be projected because of `cause`, so this
    /// projector (and a rebuild) passes over it, counts it and says so loudly. Recording it
    /// again (a crash came between the record and the checkpoint) changes nothing.
    async fn quarantine(
        &self,
        event: SkippedEvent<'_>,
        cause: &str,
    ) -> Result<(), ProjectionError> {
        let name = &self.config.name;
        let (stream, event_type) = (printable(event.stream), printable(event.event_type));
        let cause = printable(cause);
        let record = SkippedEvent {
            stream: &stream,
            event_type: &event_type,
            ..event
        };
        match self
            .read_model
            .insert_skipped(name, &record, &cause, QUARANTINE)
            .await
        {
            Ok(()) | Err(ProjectionError::SkipRefused { .. }) => {}
            Err(e) => return Err(e),
        }
        self.stats.update(|s| s.quarantined_total += 1);
        tracing::error!(
            projector = %name,
            position = event.position,
            stream = %stream,
            event_type = %event_type,
            cause = %cause,
            "event quarantined: it cannot be projected, the projector passes over it \
             (`ledger verify` lists it; `ledger project --replay-quarantined` after a fix)"
        );
        Ok(())
    }

    /// Catches up to the head and returns, retrying transient failures with back-off (up to
    /// the policy's attempts per step).
    #[tracing::instrument(skip_all, err, fields(projector = %self.config.name))]
    pub async fn run_once(&self) -> Result<CatchUpOutcome, ProjectionError> {
        self.catch_up(None).await
    }

    async fn catch_up(
        &self,
        shutdown: Option<&CancellationToken>,
    ) -> Result<CatchUpOutcome, ProjectionError> {
        let started = Instant::now();
        let (mut events, mut batches, mut retries, mut attempt) = (0u64, 0u64, 0u64, 0u32);
        let mut checkpoint = None;
        loop {
            if shutdown.is_some_and(CancellationToken::is_cancelled) {
                break;
            }
            match self.try_step().await {
                Ok(StepOutcome::Processed {
                    events: n,
                    checkpoint: c,
                }) => {
                    attempt = 0;
                    events += n as u64;
                    batches += 1;
                    checkpoint = c.or(checkpoint);
                }
                Ok(StepOutcome::CaughtUp) => break,
                Err(e) if e.is_transient() => {
                    attempt += 1;
                    retries += 1;
                    let from = self.refresh_lag().await.map_or(0, |p| p + 1);
                    self.stats.update(|s| {
                        s.retries_total += 1;
                        s.last_error = Some(e.to_string());
                    });
                    let limited = shutdown.is_none();
                    if limited && self.config.retry.max_attempts.is_some_and(|m| attempt >= m) {
                        return Err(ProjectionError::RetriesExhausted {
                            attempts: attempt,
                            last: Box::new(e),
                        });
                    }
                    let delay = self.config.retry.delay(attempt);
                    tracing::warn!(
                        projector = %self.config.name,
                        read_model = %self.read_model.location(),
                        from_position = from,
                        error = %format_chain(&e),
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "transient failure; backing off"
                    );
                    match shutdown {
                        Some(token) => {
                            tokio::select! {
                                () = token.cancelled() => break,
                                () = tokio::time::sleep(delay) => {}
                            }
                        }
                        None => tokio::time::sleep(delay).await,
                    }
                }
                Err(e) => {
                    // The caller logs it (`ledger serve`'s job: with the read model's location).
                    self.refresh_lag().await;
                    return Err(e);
                }
            }
        }
        let elapsed = started.elapsed();
        let checkpoint = match checkpoint {
            Some(c) => Some(c),
            None => self.stats.snapshot().checkpoint,
        };
        self.stats.update(|s| {
            s.last_run_events = events;
            s.last_run_seconds = elapsed.as_secs_f64();
            s.last_run_events_per_second = if elapsed.as_secs_f64() > 0.0 {
                events as f64 / elapsed.as_secs_f64()
            } else {
                0.0
            };
            if events > 0 || retries == 0 {
                s.last_error = None;
            }
        });
        Ok(CatchUpOutcome {
            events,
            batches,
            retries,
            checkpoint,
            elapsed,
        })
    }

    /// After a failed step: reads the log's head (the read model may be away, the log usually
    /// is not) and recomputes lag from the last committed checkpoint, so lag keeps rising
    /// while nothing is projected. Returns that checkpoint.
    async fn refresh_lag(&self) -> Option<Position> {
        match self.log.head_position().await {
            Ok(head) => self.stats.update(|s| {
                s.head_position = head;
                s.lag_positions = head.unwrap_or(0).saturating_sub(s.checkpoint.unwrap_or(0));
            }),
            Err(e) => tracing::warn!(
                projector = %self.config.name,
                error = %format_chain(&e),
                "reading the log's head for the lag failed"
            ),
        }
        self.stats.snapshot().checkpoint
    }

    /// Catches up, then follows the log live until `shutdown` is cancelled. Transient
    /// failures are retried forever; an event it cannot apply ends it with an error.
    #[tracing::instrument(skip_all, err, fields(projector = %self.config.name))]
    pub async fn run_until_stopped(
        &self,
        shutdown: CancellationToken,
    ) -> Result<(), ProjectionError> {
        while !shutdown.is_cancelled() {
            let outcome = self.catch_up(Some(&shutdown)).await?;
            if outcome.events > 0 {
                tracing::info!(projector = %self.config.name, events = outcome.events, checkpoint = ?outcome.checkpoint, "caught up");
            }
            // Wait for the next event: a subscription from just after the checkpoint wakes
            // us as soon as one is committed; the poll interval bounds the wait regardless.
            let from = self.stats.snapshot().checkpoint.map_or(0, |p| p + 1);
            let mut subscription = self.log.subscribe_all(from);
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = subscription.next() => {}
                () = tokio::time::sleep(self.config.idle_poll) => {}
            }
        }
        Ok(())
    }

    /// How far behind the log the projector is: positions, and events counted by reading up
    /// to `cap` of them.
    pub async fn lag(&self, cap: usize) -> Result<Lag, ProjectionError> {
        let checkpoint = self.read_model.checkpoint(&self.config.name).await?;
        let head = self.log.head_position().await.map_err(store_error)?;
        let from = checkpoint.map_or(0, |p| p + 1);
        let behind = self
            .log
            .read_all(from, cap)
            .await
            .map_err(store_error)?
            .len();
        Ok(Lag {
            positions: head.unwrap_or(0).saturating_sub(checkpoint.unwrap_or(0)),
            events: behind as u64,
            capped: behind >= cap,
        })
    }

    /// Records that `operator` told this projector to pass over the event at `position`
    /// (typically the one it stopped at) because of `reason`. The projector then treats it
    /// as applied without changing any row.
    pub async fn skip_event(
        &self,
        position: Position,
        reason: &str,
        operator: &str,
    ) -> Result<(), ProjectionError> {
        let refuse = |reason: &str| ProjectionError::SkipRefused {
            position,
            reason: reason.to_owned(),
        };
        if reason.trim().is_empty() || operator.trim().is_empty() {
            return Err(refuse("a reason and an operator are required"));
        }
        let checkpoint = self.read_model.checkpoint(&self.config.name).await?;
        if checkpoint.is_some_and(|c| position <= c) {
            return Err(refuse("the projector is already past it"));
        }
        let events = self.log.read_all(position, 1).await.map_err(store_error)?;
        let event = events
            .into_iter()
            .next()
            .filter(|e| e.position == position)
            .ok_or_else(|| refuse("no event at this position"))?;
        self.read_model
            .insert_skipped(
                &self.config.name,
                &SkippedEvent::of(&event),
                reason,
                operator,
            )
            .await?;
        tracing::warn!(
            projector = %self.config.name,
            position,
            stream = %event.stream,
            event_type = %event.event_type,
            reason,
            operator,
            "event skipped by operator"
        );
        Ok(())
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildReport {
    /// Events applied (or skipped) into the fresh tables.
    pub events: u64,
    /// Wall time of the projection, without the switch.
    pub projection: Duration,
    /// Wall time of the switch.
    pub switch: Duration,
    /// Throughput of the projection.
    pub events_per_second: f64,
    /// The checkpoint the rebuilt tables start from.
    pub checkpoint: Option<Position>,
}

/// Rebuilds the read model at `url` from position 0 into fresh tables while the old ones keep
/// serving, then switches atomically. PostgreSQL: fills schema `<schema>_new` and renames it
/// over the live schema in one transaction. SQLite: fills `<file>.rebuild` and copies it into
/// the live file in one write transaction. Operator skips carry over.
#[tracing::instrument(skip_all, err)]
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    url: &str,
    config: ProjectorConfig,
) -> Result<RebuildReport, ProjectionError> {
    let live = ReadModel::connect(url).await?;
    live.migrate().await?;
    let (fresh, cleanup): (ReadModel, Option<PathBuf>) = match &live.backend {
        Backend::Sqlite { path, .. } => {
            let fresh_path = rebuild_path(path);
            remove_sqlite_files(&fresh_path)?;
            let fresh = ReadModel::sqlite_scratch(&fresh_path).await?;
            (fresh, Some(fresh_path))
        }
        Backend::Postgres { pool, url, schema } => {
            let fresh_schema = format!("{schema}_new");
            postgres::check_schema(&fresh_schema)?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {fresh_schema} CASCADE"))
                .execute(pool)
                .await
                .map_err(db_error)?;
            (ReadModel::postgres_scratch(url, &fresh_schema)?, None)
        }
    };
    fresh.migrate().await?;
    copy_skipped(&live, &fresh).await?;
    let indexes = fresh.defer_indexes().await?;

    let config = ProjectorConfig {
        batch_size: config.rebuild_batch_size.max(1),
        write_back_rows: if config.write_back_rows > 0 {
            config.write_back_rows
        } else {
            REBUILD_CACHE_ROWS
        },
        ..config
    };
    let projector = Projector::with_config(log, fresh.clone(), config);
    let started = Instant::now();
    let outcome = projector.run_once().await?;
    fresh.create_indexes(&indexes).await?;
    let projection = started.elapsed();
    fresh.close().await;

    let started = Instant::now();
    match (&live.backend, &fresh.backend) {
        (Backend::Sqlite { pool, .. }, _) => {
            let fresh_path = cleanup.as_ref().expect("sqlite rebuild has a file");
            sqlite::swap_in(pool, fresh_path).await?;
            remove_sqlite_files(fresh_path)?;
        }
        (
            Backend::Postgres { pool, schema, .. },
            Backend::Postgres {
                schema: fresh_schema,
                ..
            },
        ) => {
            postgres::swap_schemas(pool, schema, fresh_schema).await?;
        }
        _ => unreachable!("a rebuild stays in its dialect"),
    }
    let switch = started.elapsed();
    tracing::info!(
        events = outcome.events,
        ?projection,
        ?switch,
        "read model rebuilt and switched"
    );
    Ok(RebuildReport {
        events: outcome.events,
        projection,
        switch,
        events_per_second: if projection.as_secs_f64() > 0.0 {
            outcome.events as f64 / projection.as_secs_f64()
        } else {
            0.0
        },
        checkpoint: outcome.checkpoint,
    })
}

fn rebuild_path(live: &Path) -> PathBuf {
    let mut name = live.as_os_str().to_owned();
    name.push(".rebuild");
    PathBuf::from(name)
}

fn remove_sqlite_files(path: &Path) -> Result<(), ProjectionError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ProjectionError::Rebuild(format!(
                    "cannot remove {}: {e}",
                    path.display()
                )))
            }
        }
    }
    Ok(())
}

/// Copies the operators' skips from the live read model into the fresh one.
async fn copy_skipped(live: &ReadModel, fresh: &ReadModel) -> Result<(), ProjectionError> {
    let layout = rows::TABLES
        .iter()
        .find(|l| l.name == "projector_skipped_event")
        .expect("layout");
    let rows: Vec<Vec<rows::Value>> = match &live.backend {
        Backend::Sqlite { pool, .. } => {
            let r = sqlx::query(
                "SELECT projector, position, stream, event_type, reason, skipped_by, at \
                 FROM projector_skipped_event",
            )
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
            r.iter()
                .map(|r| sqlite::read(r, layout.columns))
                .collect::<Result<_, _>>()?
        }
        Backend::Postgres { pool, .. } => {
            let r = sqlx::query(
                "SELECT projector, position, stream, event_type, reason, skipped_by, at \
                 FROM projector_skipped_event",
            )
            .fetch_all(pool)
            .await
            .map_err(db_error)?;
            r.iter()
                .map(|r| postgres::read(r, layout.columns))
                .collect::<Result<_, _>>()?
        }
    };
    for row in rows {
        let text = |i: usize| row[i].as_text().unwrap_or_default();
        let event = SkippedEvent {
            position: row[1].as_i64().unwrap_or_default() as Position,
            stream: text(2),
            event_type: text(3),
        };
        fresh
            .insert_skipped(text(0), &event, text(4), text(5))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rows::{statement_columns, TABLES};
    use super::*;

    #[test]
    fn every_statement_lists_the_columns_of_its_layout() {
        use batch::Write;
        for what in [
            Write::DonationTracking,
            Write::Donation,
            Write::Payment,
            Write::ModerationReason,
            Write::DonationEvent,
            Write::ContributionTracking,
            Write::Conflict,
        ] {
            for (sql, columns) in [
                sqlite::write_statement(what),
                postgres::write_statement(what),
            ] {
                let expected: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
                assert_eq!(statement_columns(sql), expected, "{what:?}");
            }
        }
        assert!(TABLES.iter().any(|t| t.name == "donation"));
    }

    #[test]
    fn back_off_doubles_and_is_capped() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: None,
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(4), Duration::from_millis(800));
        assert_eq!(p.delay(5), Duration::from_secs(1));
        assert_eq!(p.delay(60), Duration::from_secs(1));
    }

    #[test]
    fn decode_errors_name_the_type() {
        let event = RecordedEvent {
            stream: "donation-1".into(),
            revision: 0,
            position: 1,
            id: uuid::Uuid::new_v4(),
            event_type: "DonationVanished.v1".into(),
            payload: vec![],
            metadata: crate::store::Metadata::new(
                crate::store::Actor::system("t"),
                "t",
                uuid::Uuid::nil(),
            ),
            recorded_at: Utc::now(),
        };
        assert!(decode(&event)
            .unwrap_err()
            .to_string()
            .contains("DonationVanished.v1"));
    }
}
