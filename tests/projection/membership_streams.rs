//! Donations and membership applications side by side: the membership context's streams make
//! rows in their own table (`membership_application`) and none in `donation`, even where an
//! application has the same numeric id as a donation, on SQLite, PostgreSQL and MariaDB.

use crate::projection_support;

use ledger::projection::{Projector, ReadModel};
use ledger::proto::events as ev;
use projection_support::*;

read_model_conformance!(membership_events_make_their_own_rows_and_change_no_donation_row,);

async fn column(rm: &ReadModel, table: &str, id: u64, name: &str) -> String {
    rm.row(table, id as i64)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {table} row {id}"))
        .remove(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

async fn membership_events_make_their_own_rows_and_change_no_donation_row(env: Env) {
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
    env.append("membership_moderation-1", fee_too_high("amount"))
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
        assert_eq!(
            column(&rm, "donation", 1, name).await,
            value,
            "donation 1 {name}"
        );
    }
    assert!(rm.row("donation", 7).await.unwrap().is_none());
    // Application 1 has its own row, in every state its streams hold.
    for (name, value) in [
        ("moderation_state", "open"),
        ("cancellation_state", "cancelled"),
        ("is_exported", "true"),
        ("is_scrubbed", "true"),
        ("is_confirmed", "true"),
        ("payment_id", "7"),
    ] {
        assert_eq!(
            column(&rm, "membership_application", 1, name).await,
            value,
            "application 1 {name}"
        );
    }
    assert_eq!(column(&rm, "legacy_request", 1, "status").await, "-3");
    let dump = rm.dump().await.unwrap();
    assert_eq!(dump["membership_application"].len(), 1);
    assert_eq!(dump["donation"].len(), 1);
    assert_eq!(dump["payment"].len(), 1);
    // Only the donation's events are in its change log.
    assert!(dump["donation_event"]
        .iter()
        .all(|e| !e.contains("membership")));
}
