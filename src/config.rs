//! Where the ledger keeps its data: the data directory and the connection URLs of the event
//! log, read models, key store and sequences. The default needs nothing installed: SQLite
//! files in the data directory.
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::store::sqlite::SqliteEventLog;
use crate::store::{EventLog, StoreError};

/// Storage flags shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Directory of the embedded default's SQLite files (event log, read model, keys, sequences).
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Event-log URL. Empty: `sqlite://<data-dir>/events.sqlite`.
    #[arg(
        long,
        env = "LEDGER_EVENT_LOG_URL",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub event_log_url: SecretString,
}

impl StorageArgs {
    /// Creates the data directory if needed.
    pub fn ensure_data_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
    }

    /// Opens the configured event log.
    pub async fn open_event_log(&self) -> Result<Arc<dyn EventLog>, StoreError> {
        let url = self.event_log_url.expose_secret();
        if url.is_empty() {
            self.ensure_data_dir()
                .map_err(|e| StoreError::InvalidInput {
                    field: "data_dir",
                    rule: format!("cannot create {}: {e}", self.data_dir.display()),
                })?;
            return Ok(Arc::new(
                SqliteEventLog::open(&self.data_dir.join("events.sqlite")).await?,
            ));
        }
        if url.starts_with("sqlite:") {
            return Ok(Arc::new(SqliteEventLog::open_url(url).await?));
        }
        Err(StoreError::InvalidInput {
            field: "event_log_url",
            rule: "must be empty (embedded default) or a sqlite: URL; the KurrentDB backend is not built yet".into(),
        })
    }
}
