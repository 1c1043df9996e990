//! Read-model queries of the scrub job: which donations the policy allows to scrub (through
//! the partial indexes, so the cost follows the candidates, not the table), and purging the
//! residue a blanked row leaves behind.
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{db_error, Backend, ProjectionError, ReadModel};

const SQLITE_CANDIDATES: &str = include_str!("../../projections/sqlite/scrub_candidates.sql");
const SQLITE_STALE: &str = include_str!("../../projections/sqlite/scrub_stale_moderation.sql");
const POSTGRES_CANDIDATES: &str = include_str!("../../projections/postgres/scrub_candidates.sql");
const POSTGRES_STALE: &str = include_str!("../../projections/postgres/scrub_stale_moderation.sql");

/// A donation the read model says may be scrubbed, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubCandidate {
    /// The donation.
    pub donation_id: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// `exported`, `cancelled_or_deleted`, `abandoned` or `stale_moderation`.
    pub rule: String,
}

impl ReadModel {
    /// Up to `limit` candidates, oldest first: exported, cancelled/deleted, or abandoned before
    /// `abandoned_before`; plus, when given, still moderated before `stale_moderation_before`.
    pub async fn scrub_candidates(
        &self,
        abandoned_before: DateTime<Utc>,
        stale_moderation_before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<ScrubCandidate>, ProjectionError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        let mut queries = vec![(abandoned_before, true)];
        if let Some(t) = stale_moderation_before {
            queries.push((t, false));
        }
        for (cutoff, main) in queries {
            let rows = match &self.backend {
                Backend::Sqlite { pool, .. } => sqlx::query(if main {
                    SQLITE_CANDIDATES
                } else {
                    SQLITE_STALE
                })
                .bind(cutoff)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(db_error)?
                .iter()
                .map(|r| {
                    (
                        r.get::<i64, _>(0),
                        r.get::<DateTime<Utc>, _>(1),
                        r.get::<String, _>(2),
                    )
                })
                .collect::<Vec<_>>(),
                Backend::Postgres { pool, .. } => sqlx::query(if main {
                    POSTGRES_CANDIDATES
                } else {
                    POSTGRES_STALE
                })
                .bind(cutoff)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(db_error)?
                .iter()
                .map(|r| {
                    (
                        r.get::<i64, _>(0),
                        r.get::<DateTime<Utc>, _>(1),
                        r.get::<String, _>(2),
                    )
                })
                .collect(),
            };
            for (id, created_at, rule) in rows {
                if !out
                    .iter()
                    .any(|c: &ScrubCandidate| c.donation_id == id as u64)
                {
                    out.push(ScrubCandidate {
                        donation_id: id as u64,
                        created_at,
                        rule,
                    });
                }
            }
        }
        out.sort_by_key(|c| c.created_at);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    /// Removes what blanked rows leave behind: SQLite moves the zeroed pages (the connection
    /// runs with `secure_delete`) into the file and empties the WAL; PostgreSQL vacuums the
    /// tables that held personal data.
    pub async fn purge_residue(&self) -> Result<(), ProjectionError> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(pool)
                    .await
                    .map_err(db_error)?;
            }
            Backend::Postgres { pool, .. } => {
                sqlx::query("VACUUM donation, payment")
                    .execute(pool)
                    .await
                    .map_err(db_error)?;
            }
        }
        Ok(())
    }
}

impl ReadModel {
    /// Runs one statement; for benchmarks that fill the read model directly.
    #[doc(hidden)]
    pub async fn execute_for_bench(&self, sql: &str) -> Result<(), ProjectionError> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlx::query(sql).execute(pool).await.map(|_| ()),
            Backend::Postgres { pool, .. } => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .map_err(db_error)
    }
}
