//! `ledger sequence check` on the built binary: passes while every sequence is ahead of the
//! log, fails loudly once one falls behind (the Redis-failover failure mode).
use assert_cmd::Command;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Actor, EventData, EventLog, ExpectedRevision, Metadata};

fn ledger(dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("ledger").unwrap();
    cmd.env("LEDGER_DATA_DIR", dir).env_remove("RUST_LOG");
    cmd
}

#[tokio::test]
async fn sequence_check_fails_when_a_sequence_is_behind_the_log() {
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path())
        .args(["sequence", "init", "donation", "5"])
        .assert()
        .success();
    {
        let log = SqliteEventLog::open(&dir.path().join("events.sqlite"))
            .await
            .unwrap();
        log.append(
            "donation-5",
            ExpectedRevision::NoStream,
            vec![EventData {
                id: uuid::Uuid::now_v7(),
                event_type: "DonationCreated.v2".into(),
                payload: Vec::new(),
                metadata: Metadata::new(Actor::system("test"), "test", uuid::Uuid::now_v7()).into(),
            }],
        )
        .await
        .unwrap();
    }
    let ok = ledger(dir.path())
        .args(["sequence", "check"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&ok.get_output().stdout).to_string();
    assert!(out.contains("donation: sequence 5 log 5 ok"), "{out}");
    ledger(dir.path())
        .args(["sequence", "init", "donation", "3", "--force"])
        .assert()
        .success();
    let failed = ledger(dir.path())
        .args(["sequence", "check"])
        .assert()
        .failure();
    let out = String::from_utf8_lossy(&failed.get_output().stdout).to_string();
    let err = String::from_utf8_lossy(&failed.get_output().stderr).to_string();
    assert!(out.contains("donation: sequence 3 log 5 BEHIND"), "{out}");
    assert!(err.contains("SEQUENCE IS BEHIND THE LOG"), "{err}");
}
