//! `ledger project --once`, `--skip-position` and `ledger rebuild` through their clap argument
//! structs, on SQLite files in a tempdir.

use clap::Parser;
use ledger::cli_project::{project, rebuild, ProjectArgs, RebuildArgs};
use ledger::projection::ReadModel;
use ledger::proto::events as ev;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Actor, EventData, EventLog, ExpectedRevision, Metadata};

#[derive(Parser)]
struct Project {
    #[command(flatten)]
    args: ProjectArgs,
}

#[derive(Parser)]
struct Rebuild {
    #[command(flatten)]
    args: RebuildArgs,
}

#[tokio::test]
async fn project_once_then_rebuild_through_the_cli_entry_points() {
    let dir = tempfile::tempdir().unwrap();
    let log_url = format!("sqlite://{}", dir.path().join("data/events.db").display());
    let rm_url = format!(
        "sqlite://{}",
        dir.path().join("data/readmodel.db").display()
    );
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let log = SqliteEventLog::open_url(&log_url).await.unwrap();
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
                metadata: Metadata::new(Actor::system("t"), "t", uuid::Uuid::new_v4()),
            }],
        )
        .await
        .unwrap();
    }
    let base = [
        "x",
        "--event-log-url",
        &log_url,
        "--read-model-url",
        &rm_url,
    ];
    let once = Project::parse_from(base.iter().copied().chain(["--once"])).args;
    let err = project(once.clone()).await.unwrap_err();
    assert!(err.to_string().contains("PaymentVanished.v1"), "{err:#}");
    let skip = Project::parse_from(base.iter().copied().chain([
        "--skip-position",
        "2",
        "--skip-reason",
        "test",
        "--operator",
        "alice",
    ]))
    .args;
    project(skip).await.unwrap();
    project(once).await.unwrap();
    rebuild(Rebuild::parse_from(base).args).await.unwrap();
    let rm = ReadModel::connect(&rm_url).await.unwrap();
    assert_eq!(
        rm.checkpoint("readmodel").await.unwrap(),
        log.head_position().await.unwrap()
    );
    assert_eq!(rm.dump().await.unwrap()["payment"].len(), 1);
}
