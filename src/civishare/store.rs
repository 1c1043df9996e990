//! The CiviShare database: a SQLite file in the data directory (`civishare.sqlite`) holding
//! the local node, the peerings, the outgoing queue with its checkpoint and the incoming
//! memory. One file, so the outgoing projector writes its queue rows and its checkpoint in one
//! transaction, and `ledger peer …` can change peerings while `ledger serve` runs (WAL mode,
//! a busy timeout; `serve` reads the peerings afresh for every message and delivery round).
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::CivishareError;

/// The file's name in the data directory.
pub const FILE: &str = "civishare.sqlite";

/// The CiviShare database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CivishareStore {
    pub(crate) pool: SqlitePool,
}

impl CivishareStore {
    /// Opens (and migrates) `civishare.sqlite` in `data_dir`.
    pub async fn open_in(data_dir: &Path) -> Result<Self, CivishareError> {
        std::fs::create_dir_all(data_dir).map_err(|e| CivishareError::Invalid {
            field: "--data-dir",
            rule: format!("cannot be created: {e}"),
        })?;
        Self::open(&data_dir.join(FILE)).await
    }

    /// Opens (and migrates) the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, CivishareError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite/civishare")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for SQL of the other files of this module and for tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The local node's name, once set.
    pub async fn local_node(&self) -> Result<Option<String>, CivishareError> {
        let row = sqlx::query("SELECT name FROM civishare_node WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("name")))
    }

    /// Names the local node (its base URL, by convention). A node that is peered keeps its
    /// name: its peers find their peering by it, its loop-detection stamps are made of it, and
    /// a renamed node would receive its own changes back as new ones. Renaming is refused until
    /// every peering is removed (setting the same name again is allowed).
    pub async fn set_local_node(&self, name: &str) -> Result<(), CivishareError> {
        check_name("--name", name)?;
        if let Some(current) = self.local_node().await? {
            let peerings: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM civishare_peering")
                .fetch_one(&self.pool)
                .await?;
            if current != name && peerings > 0 {
                return Err(CivishareError::RenamePeered { current, peerings });
            }
        }
        sqlx::query(
            "INSERT INTO civishare_node (id, name) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A node name: 1 to 200 printable ASCII characters without spaces.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), CivishareError> {
    if name.is_empty() || name.len() > 200 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CivishareError::Invalid {
            field,
            rule: "must be 1 to 200 printable ASCII characters without spaces (by convention \
                   the node's base URL)"
                .into(),
        });
    }
    Ok(())
}
