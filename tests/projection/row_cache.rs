//! A rebuild's write-back row cache on SQLite, PostgreSQL and MariaDB: membership
//! applications, address changes and subscriptions that leave a tiny cache and change again
//! afterwards are loaded back and written current, so the rebuild ends with exactly the rows
//! the live projector wrote.

use crate::projection_support;

use ledger::projection::{rebuild, Projector, ProjectorConfig, ReadModel};
use ledger::proto::events as ev;
use projection_support::*;

read_model_conformance!(
    rows_changed_after_they_left_a_tiny_row_cache_are_rebuilt_as_the_live_projector_wrote_them,
);

/// Appends application, address change and subscription `id` of each of `ids`: new rows that
/// push older ones out of a small cache.
async fn newcomers(env: &Env, ids: std::ops::RangeInclusive<u64>) {
    for id in ids {
        env.append(&format!("membership-{id}"), membership_applied(env, id))
            .await;
        address_change_created(env, id, &address_token(id, 0)).await;
        subscription_created(env, id).await;
    }
}

async fn rows_changed_after_they_left_a_tiny_row_cache_are_rebuilt_as_the_live_projector_wrote_them(
    env: Env,
) {
    let at = || Some(ts(env.next_time()));
    env.append("membership-1", membership_applied(&env, 1))
        .await;
    env.append("membership_moderation-1", fee_too_high("fee"))
        .await;
    address_change_created(&env, 1, &address_token(1, 0)).await;
    subscription_created(&env, 1).await;
    newcomers(&env, 2..=8).await;

    // Out of the cache (written as they left it), then changed: loaded back, changed, and out
    // again with the newcomers after them (written as they leave).
    env.append(
        "membership_cancellation-1",
        ev::MembershipCancelled {
            reason: "moved away".into(),
        },
    )
    .await;
    env.append_as(
        "membership_moderation-1",
        ev::ModerationApproved::default(),
        foc("alice"),
    )
    .await;
    env.append(
        "address_change-1",
        ev::AddressChanged {
            new_identifier: address_token(1, 1),
            address_type: ev::AddressType::Person as i32,
            address: Some(ev::AddressData {
                first_name: "Grace".into(),
                last_name: "Hopper".into(),
                street: "Navy Yard 3".into(),
                postcode: "20457".into(),
                city: "Hamburg".into(),
                country: "DE".into(),
                ..Default::default()
            }),
            changed_at: at(),
            ..Default::default()
        },
    )
    .await;
    env.append(
        "subscription-1",
        ev::SubscriptionConfirmed { confirmed_at: at() },
    )
    .await;
    newcomers(&env, 9..=15).await;

    // Loaded back once more and changed last: written by the rebuild's final flush.
    env.append(
        "address_change_export-1",
        ev::AddressChangeExported {
            batch_id: "a-1".into(),
            exported_at: at(),
            identifier: address_token(1, 1),
        },
    )
    .await;
    env.append(
        "membership_export-1",
        ev::MembershipExported {
            batch_id: "m-1".into(),
            exported_at: at(),
        },
    )
    .await;
    env.append_as(
        "membership_moderation-1",
        ev::ManuallyFlagged {
            note: "check".into(),
        },
        foc("bob"),
    )
    .await;

    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(3))
        .run_once()
        .await
        .unwrap();
    let mut live = rm.dump().await.unwrap();
    // Two rows per table: every batch of three events pushes rows out.
    let tiny_cache = ProjectorConfig {
        write_back_rows: 2,
        ..config(3)
    };
    rebuild(env.log(), &env.url, tiny_cache).await.unwrap();
    let rebuilt_rm = ReadModel::connect(&env.url).await.unwrap();
    let mut rebuilt = rebuilt_rm.dump().await.unwrap();
    live.remove("projector_checkpoint");
    rebuilt.remove("projector_checkpoint");
    for (table, rows) in &live {
        assert_eq!(&rebuilt[table], rows, "rows of {table}");
    }
    assert_eq!(rebuilt.len(), live.len());

    // The late changes are in the rows.
    check(
        &row(&rebuilt_rm, "membership_application", 1).await,
        &[
            ("cancellation_state", "cancelled"),
            ("moderation_state", "open"),
            ("is_exported", "true"),
        ],
    );
    let reasons: Vec<&String> = rebuilt["membership_moderation_reason"]
        .iter()
        .filter(|r| r.starts_with("1 | "))
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("MANUALLY_FLAGGED_BY_ADMIN"),
        "{reasons:?}"
    );
    check(
        &row(&rebuilt_rm, "address_change", 1).await,
        &[
            ("current_identifier", address_token(1, 1).as_str()),
            ("street", "Navy Yard 3"),
            ("is_exported", "true"),
            ("export_state", "used_exported"),
        ],
    );
    check(
        &row(&rebuilt_rm, "subscription", 1).await,
        &[("status", "confirmed")],
    );
    assert_eq!(rebuilt["membership_application"].len(), 15);
}
