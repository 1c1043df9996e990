//! The embedded sequence generator: one row per sequence in a durable SQLite file.
//!
//! Every operation is a single `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement. SQLite
//! takes the database's write lock before such a statement reads anything, so the read of the
//! old value and the write of the new one cannot interleave with another writer, whether it is
//! another connection of this pool or another process on the same file. The file runs in WAL
//! mode with `synchronous=FULL`, so a returned id survives `kill -9` and a power cut: after a
//! restart the sequence continues above it.
//!
//! Give it a file of its own (e.g. `sequences.db` in the data directory): the table is created
//! with `CREATE TABLE IF NOT EXISTS` rather than through a migrator so that it cannot disturb
//! another component's migration history.

use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::{
    block_ending_at, check_count, check_start, InitializeMode, SequenceError, SequenceGenerator,
    SequenceName, MAX_VALUE,
};

/// Schema, idempotent. `STRICT` makes SQLite refuse a non-integer value instead of storing it.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ledger_sequences (
    name TEXT PRIMARY KEY NOT NULL,
    last_value INTEGER NOT NULL CHECK (last_value >= 0)
) STRICT";

/// The SQLite sequence generator. Cheap to clone.
#[derive(Clone)]
pub struct SqliteSequenceGenerator {
    pool: SqlitePool,
}

impl SqliteSequenceGenerator {
    /// Opens (creating if needed) the generator from a `sqlite://path` URL. In-memory
    /// databases are refused: they forget every id on restart.
    pub async fn connect(url: &str) -> Result<Self, SequenceError> {
        let rest = url.split_once(':').map(|(_, r)| r).unwrap_or_default();
        let path = rest.trim_start_matches("//");
        if path.starts_with(":memory:") || path.contains("mode=memory") {
            return Err(SequenceError::InvalidUrl {
                rule: "a sequence database must be a file: an in-memory database would hand \
                       out the same ids again after a restart"
                    .to_owned(),
            });
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| SequenceError::InvalidUrl {
                rule: "must be `sqlite://path` with valid SQLite URI parameters".to_owned(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        Self::connect_with(options).await
    }

    /// Opens (creating if needed) the generator in the SQLite file at `path`.
    pub async fn open(path: &std::path::Path) -> Result<Self, SequenceError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        Self::connect_with(options).await
    }

    async fn connect_with(options: SqliteConnectOptions) -> Result<Self, SequenceError> {
        // Writes serialise on the file's lock anyway; a few connections keep reads flowing.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for open connections (tests use it to simulate a restart).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Converts a stored value; `STRICT` and the `CHECK` make a failure here a sign of tampering.
fn stored(name: SequenceName, value: i64) -> Result<u64, SequenceError> {
    u64::try_from(value).map_err(|_| SequenceError::Corrupt {
        name,
        detail: format!("negative value {value}"),
    })
}

#[async_trait]
impl SequenceGenerator for SqliteSequenceGenerator {
    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn next_block(
        &self,
        name: SequenceName,
        count: u64,
    ) -> Result<RangeInclusive<u64>, SequenceError> {
        check_count(count)?;
        // The WHERE keeps the addition below i64::MAX: SQLite would silently turn an
        // overflowing sum into a REAL. No row back means the guard refused.
        let last: Option<i64> = sqlx::query_scalar(
            "INSERT INTO ledger_sequences (name, last_value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_value = last_value + ?2
             WHERE last_value <= ?3
             RETURNING last_value",
        )
        .bind(name.as_str())
        .bind(count as i64)
        .bind((MAX_VALUE - count) as i64)
        .fetch_optional(&self.pool)
        .await?;
        let last = last.ok_or(SequenceError::Exhausted { name, count })?;
        Ok(block_ending_at(stored(name, last)?, count))
    }

    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn initialize(
        &self,
        name: SequenceName,
        start: u64,
        mode: InitializeMode,
    ) -> Result<(), SequenceError> {
        check_start(start)?;
        let allow_backwards = mode == InitializeMode::AllowBackwards;
        // One statement, so no id can be handed out between the check and the write.
        let written: Option<i64> = sqlx::query_scalar(
            "INSERT INTO ledger_sequences (name, last_value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_value = excluded.last_value
             WHERE ?3 OR last_value <= excluded.last_value
             RETURNING last_value",
        )
        .bind(name.as_str())
        .bind(start as i64)
        .bind(allow_backwards)
        .fetch_optional(&self.pool)
        .await?;
        if written.is_some() {
            tracing::info!(sequence = %name, start, ?mode, "sequence initialised");
            return Ok(());
        }
        // Refused. The sequence only moves forwards meanwhile, so `current` is still above.
        let current = self.current(name).await?.unwrap_or_default();
        Err(SequenceError::Backwards {
            name,
            current,
            requested: start,
        })
    }

    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn current(&self, name: SequenceName) -> Result<Option<u64>, SequenceError> {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_value FROM ledger_sequences WHERE name = ?1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await?;
        last.map(|v| stored(name, v)).transpose()
    }
}
