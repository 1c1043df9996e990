//! Contribution tracking over gRPC: repeats with one allocation are fine, a second allocation of
//! the same id is told apart, refused and counted; the first contribution id wins.
mod support;

use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use ledger::sequence::{InitializeMode, SequenceName};
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
            api::NextIdRequest {
                sequence: "contribution-tracking".into(),
                count: 1,
            },
            FORM,
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn repeats_of_one_allocation_are_recorded_and_a_second_allocation_is_a_collision() {
    let mut app = spawn_app().await;
    let first = next_ct(&mut app).await;
    let id = first.first_id;
    for amount in ["", "10"] {
        app.client
            .record_contribution_tracking(with_token(
                record(id, &first.allocation_token, amount),
                FORM,
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        types(&app.log, &format!("contribution_tracking-{id}")).await,
        [
            "ContributionTrackingRecorded.v1",
            "ContributionTrackingRecorded.v1"
        ]
    );
    // The sequence is moved back (a Redis failover losing INCRs): the same id comes out again.
    app.log.head_position().await.unwrap();
    let seq = ledger::sequence::sqlite::SqliteSequenceGenerator::open(
        &app.dir.path().join("sequences.sqlite"),
    )
    .await
    .unwrap();
    use ledger::sequence::SequenceGenerator;
    seq.initialize(
        SequenceName::ContributionTracking,
        id - 1,
        InitializeMode::AllowBackwards,
    )
    .await
    .unwrap();
    let second = next_ct(&mut app).await;
    assert_eq!(second.first_id, id);
    assert_ne!(second.allocation_token, first.allocation_token);
    let before = head(&app.log).await;
    let err = app
        .client
        .record_contribution_tracking(with_token(record(id, &second.allocation_token, "20"), FORM))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().contains("allocated twice"), "{err:?}");
    assert_eq!(head(&app.log).await, before);
    assert_eq!(
        app.metrics.counter_value(
            "ledger_sequence_collisions_total",
            &[("sequence", "contribution-tracking")]
        ),
        1
    );
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
