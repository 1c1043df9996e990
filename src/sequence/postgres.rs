//! The PostgreSQL sequence generator: one real `SEQUENCE` per name (`ledger_seq_<name>`).
//!
//! Why a lock around a sequence: `nextval` alone is atomic but hands out one number at a
//! time, and `SELECT nextval(…) FROM generate_series(1, n)` is not contiguous when other
//! sessions call `nextval` concurrently. PostgreSQL also refuses `LOCK TABLE` on a sequence.
//! So every operation runs in a short transaction that first takes a transaction-scoped
//! advisory lock keyed on the sequence's OID, then reads `pg_sequence_last_value` and moves
//! the sequence with `setval`. Callers of one sequence are serialised; a block is the
//! contiguous range between the old and the new value; the lock is released at `COMMIT`.
//!
//! `setval` is not rolled back with a transaction, so a crash after it burns the block (a
//! gap), never repeats it. Anyone calling `nextval` on these sequences directly, bypassing
//! the lock, could receive a number inside a concurrent block: do not.

use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::{
    block_ending_at, check_count, check_start, InitializeMode, SequenceError, SequenceGenerator,
    SequenceName, MAX_VALUE,
};

/// First key of the two-key advisory locks this module takes (ASCII `LSEQ`); the second is
/// the sequence's OID, unique within the database.
const LOCK_CLASS: i32 = 0x4C53_4551;

/// The PostgreSQL sequence generator. Cheap to clone.
#[derive(Clone)]
pub struct PostgresSequenceGenerator {
    pool: PgPool,
}

/// The SQL identifier of a sequence: `ledger_seq_` and the name with `-` as `_`.
///
/// The mapping is injective on the known set and stays within PostgreSQL's 63-byte
/// identifier limit (checked by a unit test), and it only ever produces `[a-z0-9_]`, so it
/// is safe to splice into DDL.
pub fn sequence_identifier(name: SequenceName) -> String {
    format!("ledger_seq_{}", name.as_str().replace('-', "_"))
}

impl PostgresSequenceGenerator {
    /// Connects from a `postgres://` URL and creates the sequences that do not exist yet.
    pub async fn connect(url: &str) -> Result<Self, SequenceError> {
        let options = PgConnectOptions::from_str(url).map_err(|_| SequenceError::InvalidUrl {
            rule: "must be a valid `postgres://user@host:port/database` URL".to_owned(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Self::with_pool(pool).await
    }

    /// Uses an existing pool and creates the sequences that do not exist yet.
    pub async fn with_pool(pool: PgPool) -> Result<Self, SequenceError> {
        // Concurrent `CREATE SEQUENCE IF NOT EXISTS` can still fail on the catalog's unique
        // index, so starting processes take turns.
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind(LOCK_CLASS)
            .execute(&mut *tx)
            .await?;
        for name in SequenceName::ALL {
            let ddl = format!(
                "CREATE SEQUENCE IF NOT EXISTS {} AS BIGINT MINVALUE 0 START WITH 1 CACHE 1 NO CYCLE",
                sequence_identifier(name)
            );
            sqlx::query(&ddl).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Self { pool })
    }

    /// Starts a transaction holding the sequence's lock and returns it with the last value
    /// handed out (0 for a fresh sequence, whose next value is 1).
    async fn lock(
        &self,
        name: SequenceName,
    ) -> Result<(Transaction<'static, Postgres>, Option<u64>), SequenceError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2::regclass::oid::int4)")
            .bind(LOCK_CLASS)
            .bind(sequence_identifier(name))
            .execute(&mut *tx)
            .await?;
        let last: Option<i64> = sqlx::query_scalar("SELECT pg_sequence_last_value($1::regclass)")
            .bind(sequence_identifier(name))
            .fetch_one(&mut *tx)
            .await?;
        let last = last
            .map(|v| {
                u64::try_from(v).map_err(|_| SequenceError::Corrupt {
                    name,
                    detail: format!("negative value {v}"),
                })
            })
            .transpose()?;
        Ok((tx, last))
    }

    /// Moves the sequence to `value` (the last id handed out) and commits.
    async fn set_and_commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        name: SequenceName,
        value: u64,
    ) -> Result<(), SequenceError> {
        sqlx::query("SELECT setval($1::regclass, $2, true)")
            .bind(sequence_identifier(name))
            .bind(value as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl SequenceGenerator for PostgresSequenceGenerator {
    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn next_block(
        &self,
        name: SequenceName,
        count: u64,
    ) -> Result<RangeInclusive<u64>, SequenceError> {
        check_count(count)?;
        let (tx, last) = self.lock(name).await?;
        let last = last.unwrap_or(0);
        if last > MAX_VALUE - count {
            return Err(SequenceError::Exhausted { name, count });
        }
        self.set_and_commit(tx, name, last + count).await?;
        Ok(block_ending_at(last + count, count))
    }

    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn initialize(
        &self,
        name: SequenceName,
        start: u64,
        mode: InitializeMode,
    ) -> Result<(), SequenceError> {
        check_start(start)?;
        let (tx, last) = self.lock(name).await?;
        if let Some(current) = last {
            if start < current && mode == InitializeMode::ForwardOnly {
                return Err(SequenceError::Backwards {
                    name,
                    current,
                    requested: start,
                });
            }
        }
        self.set_and_commit(tx, name, start).await?;
        tracing::info!(sequence = %name, start, ?mode, "sequence initialised");
        Ok(())
    }

    #[tracing::instrument(skip(self), err(level = "info"))]
    async fn current(&self, name: SequenceName) -> Result<Option<u64>, SequenceError> {
        let last: Option<i64> = sqlx::query_scalar("SELECT pg_sequence_last_value($1::regclass)")
            .bind(sequence_identifier(name))
            .fetch_one(&self.pool)
            .await?;
        last.map(|v| {
            u64::try_from(v).map_err(|_| SequenceError::Corrupt {
                name,
                detail: format!("negative value {v}"),
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sequence_identifiers_are_distinct_short_and_plain() {
        let ids: HashSet<_> = SequenceName::ALL
            .into_iter()
            .map(sequence_identifier)
            .collect();
        assert_eq!(ids.len(), SequenceName::ALL.len());
        for id in ids {
            assert!(id.len() <= 63, "{id}");
            assert!(id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
        assert_eq!(
            sequence_identifier(SequenceName::ContributionTracking),
            "ledger_seq_contribution_tracking"
        );
    }
}
