//! The two event-log backends a test runs on: the embedded SQLite log in the data directory,
//! and the KurrentDB backend, its log served on a KurrentDB port by a [`LogHost`] whose files
//! sit in `<data-dir>/log-host` (so a raw search of the data directory covers them too).
//! [`on_both_logs!`](crate::on_both_logs) runs a test body once on each.
use std::path::Path;
use std::sync::Arc;

use ledger::config::StorageArgs;
use ledger::store::EventLog;

use super::kurrentdb::LogHost;

/// Where a test's event log lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogBackend {
    /// `<data-dir>/events.sqlite`, the embedded default.
    Embedded,
    /// A KurrentDB port (`esdb://…`) over a log of its own.
    KurrentDb,
}

/// A data directory and, on the KurrentDB backend, the host of its log.
pub struct LedgerData {
    /// The log's host; stopped before the directory goes.
    host: Option<LogHost>,
    /// The data directory.
    pub dir: tempfile::TempDir,
}

impl LedgerData {
    /// A fresh data directory with its log on `backend`.
    pub fn new(backend: LogBackend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            host: host(dir.path(), backend),
            dir,
        }
    }

    /// The data directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The storage flags of a ledger on this data: the data directory and the log's URL.
    pub fn storage(&self) -> StorageArgs {
        let mut storage = StorageArgs::in_dir(self.path());
        storage.event_log_url = self.event_log_url().into();
        storage
    }

    /// The event log, opened as the ledger opens it.
    pub async fn open_log(&self) -> Arc<dyn EventLog> {
        self.storage().open_event_log().await.unwrap()
    }

    /// The `--event-log-url` of a ledger on this data (empty: the embedded default).
    pub fn event_log_url(&self) -> String {
        self.host
            .as_ref()
            .map_or(String::new(), |h| h.url().to_owned())
    }

    /// `ledger` with `--data-dir` and the log's URL.
    pub fn ledger(&self) -> assert_cmd::Command {
        ledger_command(self.path(), &self.event_log_url())
    }
}

/// The host of the log of a data directory in `dir` on `backend`, if it needs one.
pub(crate) fn host(dir: &Path, backend: LogBackend) -> Option<LogHost> {
    (backend == LogBackend::KurrentDb).then(|| {
        let host_dir = dir.join("log-host");
        std::fs::create_dir_all(&host_dir).unwrap();
        LogHost::start(&host_dir)
    })
}

/// `ledger` with `--data-dir dir` and `LEDGER_EVENT_LOG_URL` set to `event_log_url`.
pub fn ledger_command(dir: &Path, event_log_url: &str) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("ledger").unwrap();
    cmd.arg("--data-dir")
        .arg(dir)
        .env("LEDGER_EVENT_LOG_URL", event_log_url)
        .env_remove("LEDGER_READ_MODEL_URL");
    cmd
}

/// Runs each named test body (an `async fn(LogBackend)`) once on the embedded log, in module
/// `embedded_log`, and once on the KurrentDB backend, in module `kurrentdb_log`.
#[macro_export]
macro_rules! on_both_logs {
    ($($name:ident),+ $(,)?) => {
        $crate::log_backend_tests!(embedded_log, Embedded, [$($name),+]);
        $crate::log_backend_tests!(kurrentdb_log, KurrentDb, [$($name),+]);
    };
}

/// One backend's module of [`on_both_logs!`](crate::on_both_logs).
#[macro_export]
macro_rules! log_backend_tests {
    ($module:ident, $backend:ident, [$($name:ident),+]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::log_backend::LogBackend::$backend).await;
                }
            )+
        }
    };
}
