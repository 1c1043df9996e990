//! Where the ledger keeps its data: the data directory and the connection URLs of the event
//! log, read models, key store and sequences. The default needs nothing installed: SQLite
//! files in the data directory.
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::store::sqlite::SqliteEventLog;
use crate::store::{EventLog, StoreError};

/// The embedded event log's file in the data directory: a directory without it holds no
/// ledger.
pub const EVENT_LOG_FILE: &str = "events.sqlite";

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

    /// Read-model URL (`sqlite://…`, `postgres://…`, or `mysql://…/database` /
    /// `mariadb://…/database`). Empty: `<data-dir>/readmodel.sqlite`.
    #[arg(
        long,
        env = "LEDGER_READ_MODEL_URL",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub read_model_url: SecretString,

    /// Key-store URL (`sqlite://…` or `postgres://…`). Empty: `<data-dir>/keys.sqlite`.
    #[arg(
        long,
        env = "LEDGER_KEY_STORE_URL",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub key_store_url: SecretString,

    /// Sequence-generator URL (`sqlite://…`, `postgres://…`, `redis://…`). Empty:
    /// `<data-dir>/sequences.sqlite`.
    #[arg(
        long,
        env = "LEDGER_SEQUENCE_URL",
        default_value = "",
        hide_default_value = true,
        global = true
    )]
    pub sequence_url: SecretString,
}

impl StorageArgs {
    /// The embedded default in `data_dir`: every store a SQLite file there.
    pub fn in_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            event_log_url: SecretString::from(""),
            read_model_url: SecretString::from(""),
            key_store_url: SecretString::from(""),
            sequence_url: SecretString::from(""),
        }
    }

    /// Creates the data directory if needed.
    pub fn ensure_data_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
    }

    /// `url`, or the SQLite file `file` in the data directory when `url` is empty.
    fn url_or_file(&self, url: &SecretString, file: &str) -> std::io::Result<String> {
        let url = url.expose_secret();
        if !url.is_empty() {
            return Ok(url.to_owned());
        }
        self.ensure_data_dir()?;
        Ok(format!("sqlite://{}", self.data_dir.join(file).display()))
    }

    /// The read-model URL.
    pub fn read_model_url(&self) -> std::io::Result<String> {
        self.url_or_file(&self.read_model_url, "readmodel.sqlite")
    }

    /// The key-store URL.
    pub fn key_store_url(&self) -> std::io::Result<String> {
        self.url_or_file(&self.key_store_url, "keys.sqlite")
    }

    /// The sequence-generator URL.
    pub fn sequence_url(&self) -> std::io::Result<String> {
        self.url_or_file(&self.sequence_url, "sequences.sqlite")
    }

    /// Opens the key store and wraps it in a vault.
    pub async fn open_vault(&self) -> anyhow::Result<crate::privacy::Vault> {
        let keys = crate::privacy::KeyStore::connect(&self.key_store_url()?).await?;
        Ok(crate::privacy::Vault::new(keys))
    }

    /// Connects the sequence generator.
    pub async fn open_sequences(
        &self,
    ) -> anyhow::Result<Arc<dyn crate::sequence::SequenceGenerator>> {
        Ok(crate::sequence::connect(&self.sequence_url()?).await?)
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
        if crate::store::kurrent::is_kurrentdb_url(url) {
            return Ok(Arc::new(
                crate::store::kurrent::KurrentEventLog::connect(url).await?,
            ));
        }
        Err(StoreError::InvalidInput {
            field: "event_log_url",
            rule: "must be empty (embedded default), a sqlite: URL, or a KurrentDB connection \
                   string (esdb://, kurrentdb://, kdb://, with +discover)"
                .into(),
        })
    }
}
