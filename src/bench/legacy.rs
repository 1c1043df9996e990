//! The legacy import's rate (`ledger bench --parts legacy`, opt-in): a fixture of legacy rows
//! in a throw-away MariaDB database, imported end to end (read, interpret, seal, append) into a
//! fresh embedded log with its key store and sequences in the scratch directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::ScratchMariaDb;
use crate::legacy::fixture;
use crate::legacy::import::{ImportOptions, Importer, DEFAULT_BATCH};
use crate::legacy::source::Source;
use crate::privacy::{KeyStore, Vault};
use crate::store::sqlite::SqliteEventLog;

/// What one legacy import measured.
#[derive(Debug, Clone, Copy)]
pub struct LegacyRate {
    /// Source rows read.
    pub rows: u64,
    /// Donations imported.
    pub donations: u64,
    /// Events appended.
    pub events: u64,
    /// Seconds the import took.
    pub seconds: f64,
    /// Seconds the fixture took to write (not part of the rate).
    pub fixture_seconds: f64,
}

impl LegacyRate {
    /// Source rows per second, end to end.
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }
}

/// Writes `rows` fixture rows into a throw-away database on the MariaDB server `url` names,
/// imports them into fresh stores under `dir` and drops the database again.
pub async fn legacy_import_rate(
    dir: &Path,
    url: &str,
    rows: u64,
    seed: u64,
) -> anyhow::Result<LegacyRate> {
    let db = ScratchMariaDb::create(url).await?;
    let result = async {
        let source = Source::connect(&db.url).await?;
        let started = Instant::now();
        fixture::generate(source.pool(), rows, seed)
            .await
            .context("writing the legacy fixture")?;
        let fixture_seconds = started.elapsed().as_secs_f64();
        let dir = dir.join("legacy");
        std::fs::create_dir_all(&dir)?;
        let importer = Importer {
            log: Arc::new(SqliteEventLog::open(&dir.join("events.sqlite")).await?),
            vault: Vault::new(KeyStore::open_sqlite(&dir.join("keys.sqlite")).await?),
            sequences: crate::sequence::connect(&format!(
                "sqlite://{}",
                dir.join("sequences.sqlite").display()
            ))
            .await?,
            source,
        };
        let started = Instant::now();
        let report = importer
            .run(&ImportOptions {
                batch: DEFAULT_BATCH,
                progress: false,
                // The figure is donation rows per second, comparable with earlier runs.
                memberships: false,
            })
            .await?;
        Ok(LegacyRate {
            rows: report.rows,
            donations: report.donations,
            events: report.events,
            seconds: started.elapsed().as_secs_f64(),
            fixture_seconds,
        })
    }
    .await;
    db.drop_database().await;
    result
}
