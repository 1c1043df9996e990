//! Contribution tracking over gRPC: repeats with one allocation are merged; tracking data from
//! a second allocation of the same id is recorded as evidence, answered as a collision, counted,
//! and reaches the read model's conflicts table (SQLite and PostgreSQL) without being merged into
//! the row; the first contribution id wins.
use crate::support;

use ledger::projection::{Projector, ReadModel};
use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use ledger::sequence::sqlite::SqliteSequenceGenerator;
use ledger::sequence::{InitializeMode, SequenceGenerator, SequenceName};
use support::api::*;
use tonic::Code;

fn record(id: u64, token: &str, amount: &str) -> api::RecordContributionTrackingRequest {
    api::RecordContributionTrackingRequest {
        context: context(ActorKind::Frontend),
        contribution_tracking_id: id,
        allocation_token: token.into(),
        fields: Some(ev::ContributionTrackingFields {
            amount: Some(amount.into()),
            utm_medium: Some("banner".into()),
            ..Default::default()
        }),
    }
}

async fn next_ct(app: &mut TestApp) -> api::NextIdResponse {
    app.client
        .next_id(with_token(
            next_id_request("contribution-tracking", 1),
            FORM,
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn send(
    app: &mut TestApp,
    request: api::RecordContributionTrackingRequest,
) -> api::ContributionTrackingResponse {
    app.client
        .record_contribution_tracking(with_token(request, FORM))
        .await
        .unwrap()
        .into_inner()
}

/// Moves the sequence back below `id`, as a Redis failover losing its last `INCR`s does, so
/// that `id` is handed out again.
async fn rewind_sequence(app: &TestApp, id: u64) {
    SqliteSequenceGenerator::open(&app.dir.path().join("sequences.sqlite"))
        .await
        .unwrap()
        .initialize(
            SequenceName::ContributionTracking,
            id - 1,
            InitializeMode::AllowBackwards,
        )
        .await
        .unwrap();
}

fn collisions(app: &TestApp) -> u64 {
    app.metrics.counter_value(
        "ledger_sequence_collisions_total",
        &[("sequence", "contribution-tracking")],
    )
}

#[tokio::test]
async fn repeats_of_one_allocation_are_recorded_and_a_second_allocation_is_a_collision() {
    let mut app = spawn_app().await;
    let first = next_ct(&mut app).await;
    let id = first.first_id;
    for amount in ["5", "10"] {
        let r = send(&mut app, record(id, &first.allocation_token, amount)).await;
        assert!(!r.allocation_collision, "{r:?}");
    }
    let stream = format!("contribution_tracking-{id}");
    assert_eq!(types(&app.log, &stream).await.len(), 2);
    assert_eq!(collisions(&app), 0);

    rewind_sequence(&app, id).await;
    let second = next_ct(&mut app).await;
    assert_eq!(second.first_id, id);
    assert_ne!(second.allocation_token, first.allocation_token);
    let colliding = record(id, &second.allocation_token, "20");
    let answer = send(&mut app, colliding.clone()).await;
    assert!(answer.allocation_collision, "{answer:?}");
    assert_eq!(answer.contribution_id, 0);
    // The data is kept as evidence, under its own token.
    let recorded = stream_events(&app, &stream).await;
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[2].allocation_token, second.allocation_token);
    assert_eq!(collisions(&app), 1);

    // A retry of the colliding call answers the same and appends and counts nothing.
    let before = head(&app.log).await;
    assert_eq!(send(&mut app, colliding).await, answer);
    assert_eq!(head(&app.log).await, before);
    assert_eq!(collisions(&app), 1);
    // The first allocation goes on merging.
    let r = send(&mut app, record(id, &first.allocation_token, "11")).await;
    assert!(!r.allocation_collision);
    assert_eq!(collisions(&app), 1);
}

async fn stream_events(app: &TestApp, name: &str) -> Vec<ev::ContributionTrackingRecorded> {
    use prost::Message;
    stream(&app.log, name)
        .await
        .into_iter()
        .map(|e| ev::ContributionTrackingRecorded::decode(e.payload.as_slice()).unwrap())
        .collect()
}

/// Drives a collision and a legitimate repeat through the API, projects the log into the read
/// model at `url`, and checks the row and the conflicts table.
async fn a_collision_reaches_the_conflicts_table_and_stays_out_of_the_row(url: &str) {
    let mut app = spawn_app().await;
    let first = next_ct(&mut app).await;
    let id = first.first_id;
    send(&mut app, record(id, &first.allocation_token, "10")).await;
    // A legitimate repeat: same token, completes the row.
    let mut repeat = record(id, &first.allocation_token, "12.5");
    repeat.fields.as_mut().unwrap().country = Some("DE".into());
    assert!(!send(&mut app, repeat).await.allocation_collision);

    rewind_sequence(&app, id).await;
    let second = next_ct(&mut app).await;
    assert_eq!(second.first_id, id);
    let mut colliding = record(id, &second.allocation_token, "99");
    colliding.fields.as_mut().unwrap().country = Some("FR".into());
    colliding.fields.as_mut().unwrap().utm_medium = Some("email".into());
    assert!(send(&mut app, colliding).await.allocation_collision);

    let rm = ReadModel::connect(url).await.unwrap();
    rm.migrate().await.unwrap();
    let projector = Projector::new(app.log.clone(), rm.clone());
    projector.run_once().await.unwrap();

    let row = rm
        .row("contribution_tracking", id as i64)
        .await
        .unwrap()
        .expect("the tracking row");
    let amount = match rm.dialect() {
        ledger::projection::Dialect::Postgres | ledger::projection::Dialect::MariaDb => "12.500",
        _ => "12.5",
    };
    for (column, value) in [
        ("allocation_token", first.allocation_token.as_str()),
        ("amount", amount),
        ("country", "DE"),
        ("utm_medium", "banner"),
    ] {
        assert_eq!(row.get(column).map(String::as_str), Some(value), "{row:?}");
    }
    let dump = rm.dump().await.unwrap();
    let conflicts = &dump["contribution_tracking_conflict"];
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let expected = format!(
        " | {id} | allocation_collision | {} | {} | ",
        first.allocation_token, second.allocation_token
    );
    assert!(conflicts[0].contains(&expected), "{conflicts:?}");
    assert_eq!(projector.stats().snapshot().allocation_collisions_total, 1);
    rm.close().await;
}

#[tokio::test]
async fn a_collision_reaches_the_sqlite_conflicts_table_and_stays_out_of_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("readmodel.db").display());
    a_collision_reaches_the_conflicts_table_and_stays_out_of_the_row(&url).await;
}

#[tokio::test]
async fn a_collision_reaches_the_postgres_conflicts_table_and_stays_out_of_the_row() {
    let Some(db) = support::postgres::fresh_database("tracking").await else {
        return;
    };
    a_collision_reaches_the_conflicts_table_and_stays_out_of_the_row(&db.url).await;
    drop(db);
}

#[tokio::test]
async fn tracking_needs_the_allocation_token_and_an_allocated_id() {
    let mut app = spawn_app().await;
    let ids = next_ct(&mut app).await;
    let err = app
        .client
        .record_contribution_tracking(with_token(record(ids.first_id, "", "1"), FORM))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("allocation_token"), "{err:?}");
    let err = app
        .client
        .record_contribution_tracking(with_token(
            record(ids.first_id + 50, &ids.allocation_token, "1"),
            FORM,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("contribution_tracking_id"),
        "{err:?}"
    );
    // A decimal the `amount` column cannot hold would stop the projector: refused up front.
    let before = head(&app.log).await;
    let err = app
        .client
        .record_contribution_tracking(with_token(
            record(ids.first_id, &ids.allocation_token, "1.2345"),
            FORM,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("fields.amount"), "{err:?}");
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn the_first_contribution_id_wins_and_a_change_is_refused_and_counted() {
    let mut app = spawn_app().await;
    let ids = next_ct(&mut app).await;
    let link = |contribution_id| api::LinkContributionRequest {
        context: context(ActorKind::System),
        contribution_tracking_id: ids.first_id,
        contribution_id,
    };
    let r = app
        .client
        .link_contribution(with_token(link(500), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.contribution_id, 500);
    app.client
        .link_contribution(with_token(link(500), ADMIN))
        .await
        .unwrap();
    let err = app
        .client
        .link_contribution(with_token(link(501), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        types(&app.log, &format!("contribution_tracking-{}", ids.first_id)).await,
        ["ContributionLinked.v1"]
    );
    assert_eq!(
        app.metrics
            .counter_value("ledger_contribution_link_refusals_total", &[]),
        1
    );
}
