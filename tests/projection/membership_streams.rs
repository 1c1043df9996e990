//! The donation read model and membership applications: the projector passes over the
//! membership context's streams, even where an application has the same numeric id as a
//! donation, on SQLite, PostgreSQL and MariaDB (until the membership read model exists).

use crate::projection_support;

use ledger::projection::{Projector, ReadModel};
use ledger::proto::events as ev;
use projection_support::*;

read_model_conformance!(membership_events_change_no_donation_row_and_are_not_quarantined,);

async fn column(rm: &ReadModel, id: u64, name: &str) -> String {
    rm.row("donation", id as i64)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no donation row {id}"))
        .remove(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

async fn membership_events_change_no_donation_row_and_are_not_quarantined(env: Env) {
    create_donation(&env, 1, "BEZ").await;
    // Application 1 goes through every state its streams hold; donation 1 must not notice.
    env.append(
        "membership-1",
        ev::MembershipApplied {
            membership_id: 1,
            applicant_kind: ev::ApplicantKind::Person as i32,
            membership_type: ev::MembershipType::Active as i32,
            fee: Some(ev::Money {
                cents: 10_000,
                currency: "EUR".into(),
            }),
            interval_months: 1,
            payment_id: 7,
            payment_method: ev::PaymentMethod::DirectDebit as i32,
            confirmed: true,
            ..Default::default()
        },
    )
    .await;
    env.append(
        "membership_moderation-1",
        ev::ModerationReasonsRaised {
            reasons: vec![ev::ModerationReason {
                identifier: ev::ModerationIdentifier::MembershipFeeTooHigh as i32,
                source: "amount".into(),
            }],
        },
    )
    .await;
    env.append(
        "membership_cancellation-1",
        ev::MembershipCancelled::default(),
    )
    .await;
    env.append(
        "membership_export-1",
        ev::MembershipExported {
            batch_id: "m-1".into(),
            exported_at: None,
        },
    )
    .await;
    let last = env
        .append(
            "membership_scrub-1",
            ev::PersonalDataScrubbed {
                rule: ev::ScrubRule::CancelledOrDeleted as i32,
                scrubbed_at: None,
            },
        )
        .await;

    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(3));
    p.run_once().await.unwrap();
    assert_eq!(rm.checkpoint("readmodel").await.unwrap(), Some(last));
    let stats = p.stats().snapshot();
    assert_eq!(stats.quarantined_total, 0);
    assert_eq!(stats.last_error, None);
    for (name, value) in [
        ("moderation_state", "none"),
        ("deletion_state", "active"),
        ("is_exported", "false"),
        ("is_scrubbed", "false"),
    ] {
        assert_eq!(column(&rm, 1, name).await, value, "donation 1 {name}");
    }
    assert!(rm.row("donation", 7).await.unwrap().is_none());
}
