//! The read model's migrations as `ledger migrate --list` shows them: every migration the
//! binary embeds for the read model's dialect, applied or pending, read from sqlx's
//! `_sqlx_migrations` table without changing anything.

use sqlx::migrate::Migrator;

use super::rows::{ColType, Value};
use super::{Dialect, ProjectionError, ReadModel};

/// One migration of one store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationState {
    /// Its version (the timestamp that starts its file name).
    pub version: i64,
    /// Its description (the rest of the file name).
    pub description: String,
    /// Whether the store has applied it.
    pub applied: bool,
}

/// The embedded read-model migrations of `dialect`.
pub fn embedded(dialect: Dialect) -> Migrator {
    match dialect {
        Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite/readmodel"),
        Dialect::Postgres => sqlx::migrate!("./migrations/postgres/readmodel"),
        Dialect::MariaDb => sqlx::migrate!("./migrations/mariadb/readmodel"),
    }
}

/// Pairs `migrator`'s migrations with the `applied` versions.
pub fn states(migrator: &Migrator, applied: &[i64]) -> Vec<MigrationState> {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| MigrationState {
            version: m.version,
            description: m.description.to_string(),
            applied: applied.contains(&m.version),
        })
        .collect()
}

impl ReadModel {
    /// Every embedded migration of this read model's dialect, applied or pending. Reads only.
    pub async fn migrations(&self) -> Result<Vec<MigrationState>, ProjectionError> {
        let dialect = self.dialect();
        // Whether sqlx's table exists yet, in the read model's own schema or database.
        let exists_sql = match dialect {
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
            Dialect::MariaDb => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'"
            }
        };
        let rows = self.fetch_rows(exists_sql, &[("n", ColType::I64)]).await?;
        let exists =
            matches!(rows.first().and_then(|r| r.first()), Some(Value::I64(Some(n))) if *n > 0);
        let applied: Vec<i64> = if exists {
            self.fetch_rows(
                "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
                &[("version", ColType::I64)],
            )
            .await?
            .into_iter()
            .filter_map(|r| match r.first() {
                Some(Value::I64(Some(v))) => Some(*v),
                _ => None,
            })
            .collect()
        } else {
            Vec::new()
        };
        Ok(states(&embedded(dialect), &applied))
    }
}
