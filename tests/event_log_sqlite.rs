//! The event-log conformance suite against the embedded SQLite backend.
mod conformance;

use std::sync::Arc;

use ledger::store::sqlite::SqliteEventLog;
use ledger::store::EventLog;

async fn fresh_sqlite_log() -> (Arc<dyn EventLog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteEventLog::open(&dir.path().join("events.sqlite"))
        .await
        .unwrap();
    (Arc::new(log), dir)
}

event_log_conformance!(fresh_sqlite_log);
