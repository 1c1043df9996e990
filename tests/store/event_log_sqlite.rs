//! The event-log conformance suite against the embedded SQLite backend.

use std::sync::Arc;

use ledger::store::sqlite::SqliteEventLog;
use ledger::store::EventLog;

use crate::conformance;

async fn fresh_sqlite_log() -> (Arc<dyn EventLog>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteEventLog::open(&dir.path().join("events.sqlite"))
        .await
        .unwrap();
    (Arc::new(log), dir)
}

event_log_conformance!(fresh_sqlite_log);

use ledger::store::{ExpectedRevision, StoreError};

async fn append_one(log: &SqliteEventLog, stream: &str, payload: &str) -> Result<u64, StoreError> {
    let results = log
        .append(
            stream,
            ExpectedRevision::Any,
            vec![conformance::event(payload)],
        )
        .await?;
    Ok(results.position)
}

/// The syncer fsyncs the WAL SQLite really writes: through a symbolic link that is the WAL
/// beside the link's target, not beside the link (a wrong name would fail to open).
#[tokio::test]
async fn a_log_opened_through_a_symbolic_link_syncs_the_real_wal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let target = dir.path().join("real").join("events.sqlite");
    let link = dir.path().join("events.sqlite");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let log = SqliteEventLog::open(&link).await.unwrap();
    let position = append_one(&log, "donation-1", "through the link")
        .await
        .unwrap();
    assert!(position >= 1);
    assert!(dir.path().join("real").join("events.sqlite-wal").exists());
    assert!(!dir.path().join("events.sqlite-wal").exists());
    assert_eq!(log.read_all(0, 10).await.unwrap().len(), 1);
}

/// After a failed fsync the log leaves a marker beside its file; until an operator removes
/// it, the log refuses to open (a new file descriptor's fsync could succeed without the lost
/// pages).
#[tokio::test]
async fn a_log_whose_writes_could_not_be_made_durable_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    {
        let log = SqliteEventLog::open(&path).await.unwrap();
        append_one(&log, "donation-1", "before").await.unwrap();
    }
    let marker = dir.path().join("events.sqlite-fsync-failed");
    std::fs::write(&marker, "fsync of events.sqlite-wal failed: EIO\n").unwrap();
    let err = SqliteEventLog::open(&path).await.err().expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("EIO") && message.contains("events.sqlite-fsync-failed"),
        "{message}"
    );
    std::fs::remove_file(&marker).unwrap();
    let log = SqliteEventLog::open(&path).await.unwrap();
    assert_eq!(log.read_all(0, 10).await.unwrap().len(), 1);
}
