//! `ledger project --once`, `--skip-position` and `ledger rebuild` through their clap argument
//! structs, on SQLite files in a tempdir.

use assert_cmd::Command;
use ledger::projection::ReadModel;
use ledger::proto::events as ev;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Actor, EventData, EventLog, ExpectedRevision, Metadata};

fn ledger(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("ledger")
        .unwrap()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap()
}

/// A data directory whose log holds a payment and, at position 2, an event of a type no
/// ledger ever wrote; its read-model URL and the log.
async fn log_with_a_bad_event() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    String,
    SqliteEventLog,
) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let rm_url = format!("sqlite://{}", data.join("readmodel.sqlite").display());
    let log = SqliteEventLog::open(&data.join("events.sqlite"))
        .await
        .unwrap();
    let event: ledger::domain::DomainEvent = ev::PaymentInitiated {
        payment_id: 5,
        donation_id: 1,
        method: ev::PaymentMethod::BankTransfer as i32,
        ..Default::default()
    }
    .into();
    for (stream, event_type, payload) in [
        ("payment-5", event.event_type(), event.encode()),
        ("payment-5", "PaymentVanished.v1", vec![]),
    ] {
        log.append(
            stream,
            ExpectedRevision::Any,
            vec![EventData {
                id: uuid::Uuid::new_v4(),
                event_type: event_type.into(),
                payload,
                metadata: Metadata::new(Actor::system("t"), "t", uuid::Uuid::new_v4()).into(),
            }],
        )
        .await
        .unwrap();
    }
    (dir, data, rm_url, log)
}

#[tokio::test]
async fn project_stops_at_a_bad_event_skips_it_on_request_then_catches_up_and_rebuilds() {
    let (_dir, data, rm_url, log) = log_with_a_bad_event().await;
    let once = ledger(&data, &["project", "--once", "--quarantine", "false"]);
    assert!(!once.status.success());
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(
        stderr.contains("PaymentVanished.v1") && stderr.contains("position 2"),
        "{stderr}"
    );
    let skip = ledger(
        &data,
        &[
            "project",
            "--skip-position",
            "2",
            "--skip-reason",
            "test",
            "--operator",
            "alice",
        ],
    );
    assert!(
        skip.status.success(),
        "{}",
        String::from_utf8_lossy(&skip.stderr)
    );
    let once = ledger(&data, &["project", "--once"]);
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let rebuilt = ledger(&data, &["rebuild"]);
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let rm = ReadModel::connect(&rm_url).await.unwrap();
    assert_eq!(
        rm.checkpoint("readmodel").await.unwrap(),
        log.head_position().await.unwrap()
    );
    assert_eq!(rm.dump().await.unwrap()["payment"].len(), 1);
}

#[tokio::test]
async fn project_quarantines_a_bad_event_by_default_verify_lists_it_and_a_replay_rebuilds() {
    let (_dir, data, rm_url, log) = log_with_a_bad_event().await;
    let once = ledger(&data, &["project", "--once"]);
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(once.status.success(), "{stderr}");
    assert!(stderr.contains("event quarantined"), "{stderr}");
    let rm = ReadModel::connect(&rm_url).await.unwrap();
    assert_eq!(
        rm.checkpoint("readmodel").await.unwrap(),
        log.head_position().await.unwrap()
    );
    rm.close().await;

    let verify = ledger(&data, &["verify"]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{stdout}");
    assert!(
        stdout.contains("QUARANTINED: 1 event(s)")
            && stdout.contains("position 2  payment-5  PaymentVanished.v1: cannot decode"),
        "{stdout}"
    );

    let replay = ledger(&data, &["project", "--replay-quarantined", "2"]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    // Still unprojectable: the rebuild that replayed it quarantined it again.
    let rm = ReadModel::connect(&rm_url).await.unwrap();
    let skipped = &rm.dump().await.unwrap()["projector_skipped_event"];
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains(" | quarantine | "), "{skipped:?}");
    rm.close().await;
    let none = ledger(&data, &["project", "--replay-quarantined", "1"]);
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no event is quarantined at position 1"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}
