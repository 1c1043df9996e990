//! The address changes' change log on SQLite, PostgreSQL and MariaDB: one
//! `address_change_event` row per event of an address change's three streams with its actor
//! (the token index makes none), the `change_log` view answering for donations, memberships
//! and address changes at once, and a rebuild and `verify` that find the same rows.

use crate::membership_change_log::{frontend, history as membership_history, rows};
use crate::membership_rows::execute;
use crate::projection_support;

use ledger::projection::{Projector, ReadModel};
use ledger::proto::events as ev;
use projection_support::*;

read_model_conformance!(
    an_address_change_history_has_one_change_log_row_per_event_with_its_actor,
    the_change_log_view_answers_for_donations_memberships_and_address_changes,
    a_rebuild_and_verify_agree_on_the_address_change_change_log,
);

/// Token `n` of address change `id`.
fn token(id: u64, n: u64) -> String {
    format!("5e0c1a2b-3d4e-4f60-8a71-{:012}", id * 10 + n)
}

/// Address change `id`'s history through its three streams and the token index, each event
/// by the actor that makes it: the form creates it with its donation (and indexes the token),
/// back-office user alice opts the donor out of the receipt on the phone, the donor gives a
/// new address on the page, the export and the scrub job run. Returns (stream, event type
/// prefix, actor kind, actor id) per event that makes a change-log row, in order.
async fn history(env: &Env, id: u64) -> Vec<(String, &'static str, &'static str, String)> {
    let s = |category: &str| format!("{category}-{id}");
    let index = |n: u64| format!("address_change_token-{}", token(id, n));
    let issued = ev::AddressChangeTokenIssued {
        address_change_id: id,
    };
    env.append_as(
        &s("address_change"),
        ev::AddressChangeCreated {
            address_change_id: id,
            identifier: token(id, 0),
            external_id_kind: ev::ExternalIdKind::Donation as i32,
            external_id: id,
            address_type: ev::AddressType::Person as i32,
            created_at: Some(ts(base_time())),
        },
        frontend(),
    )
    .await;
    env.append_as(&index(0), issued, frontend()).await;
    env.append_as(
        &s("address_change"),
        ev::DonationReceiptOptedOut {
            new_identifier: token(id, 1),
            changed_at: Some(ts(base_time())),
        },
        foc("alice"),
    )
    .await;
    env.append_as(&index(1), issued, foc("alice")).await;
    env.append_as(
        &s("address_change"),
        ev::AddressChanged {
            new_identifier: token(id, 2),
            address_type: ev::AddressType::Person as i32,
            address: Some(ev::AddressData {
                salutation: "Herr".into(),
                first_name: "Kasimir".into(),
                last_name: "Umzugsfreund".into(),
                street: "Neue Allee 5".into(),
                postcode: "04109".into(),
                city: "Leipzig".into(),
                country: "DE".into(),
                ..Default::default()
            }),
            changed_at: Some(ts(base_time())),
            ..Default::default()
        },
        frontend(),
    )
    .await;
    env.append_as(&index(2), issued, frontend()).await;
    env.append(
        &s("address_change_export"),
        ev::AddressChangeExported {
            batch_id: "a-1".into(),
            exported_at: Some(ts(base_time())),
            identifier: token(id, 2),
        },
    )
    .await;
    env.append(
        &s("address_change_scrub"),
        ev::PersonalDataScrubbed {
            rule: ev::ScrubRule::Exported as i32,
            scrubbed_at: Some(ts(base_time())),
        },
    )
    .await;
    let web = ("frontend", "spenden.wikimedia.de".to_owned());
    let job = ("system", "test".to_owned());
    [
        ("address_change", "AddressChangeCreated.", web.clone()),
        (
            "address_change",
            "DonationReceiptOptedOut.",
            ("foc_user", "alice".to_owned()),
        ),
        ("address_change", "AddressChanged.", web),
        (
            "address_change_export",
            "AddressChangeExported.",
            job.clone(),
        ),
        ("address_change_scrub", "PersonalDataScrubbed.", job),
    ]
    .into_iter()
    .map(|(category, event, (kind, actor))| (s(category), event, kind, actor))
    .collect()
}

async fn an_address_change_history_has_one_change_log_row_per_event_with_its_actor(env: Env) {
    // A donation and an application with the same id: their rows stay in their own tables.
    create_donation(&env, 1, "BEZ").await;
    membership_history(&env, 1).await;
    let expected = history(&env, 1).await;
    let rm = env.read_model().await;
    // Small batches: the address change's events are spread over several transactions.
    let p = Projector::with_config(env.log(), rm.clone(), config(3));
    p.run_once().await.unwrap();
    assert_eq!(p.stats().snapshot().quarantined_total, 0);
    let dump = rm.dump().await.unwrap();
    let log = rows(&dump, "address_change_event");
    // The token index entries make no row.
    assert_eq!(log.len(), expected.len(), "{log:?}");
    let mut last_position = 0;
    for (row, (stream, event, kind, actor)) in log.iter().zip(&expected) {
        // address_change_id, position, stream, event_type, actor_kind, actor_id, occurred_at
        assert_eq!(row[0], "1", "{row:?}");
        let position: u64 = row[1].parse().unwrap();
        assert!(position > last_position, "{row:?}");
        last_position = position;
        assert_eq!(&row[2], stream, "{row:?}");
        assert!(row[3].starts_with(event), "{row:?}");
        assert_eq!(row[4], *kind, "{row:?}");
        assert_eq!(&row[5], actor, "{row:?}");
        assert!(row[6].starts_with("2026-11-01T10:00:"), "{row:?}");
    }
    let donation_log = rows(&dump, "donation_event");
    assert_eq!(donation_log.len(), 2, "{donation_log:?}");
    assert!(donation_log.iter().all(|r| !r[2].starts_with("address")));
    let membership_log = rows(&dump, "membership_event");
    assert_eq!(membership_log.len(), 8, "{membership_log:?}");
    assert!(membership_log.iter().all(|r| !r[2].starts_with("address")));
}

async fn the_change_log_view_answers_for_donations_memberships_and_address_changes(env: Env) {
    create_donation(&env, 1, "BEZ").await;
    env.append_as(
        "moderation-1",
        ev::ManuallyFlagged {
            note: "donor asked".into(),
        },
        foc("alice"),
    )
    .await;
    membership_history(&env, 2).await;
    history(&env, 3).await;
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    let dump = rm.dump().await.unwrap();
    let view = rows(&dump, "change_log");
    // Every row of the three tables, in (context, subject_id, position) order, `context`
    // first.
    let arm = |context: &str, table: &str| -> Vec<Vec<String>> {
        rows(&dump, table)
            .into_iter()
            .map(|r| {
                let mut row = vec![context.to_owned()];
                row.extend(r);
                row
            })
            .collect()
    };
    let mut all = arm("address_change", "address_change_event");
    all.extend(arm("donation", "donation_event"));
    all.extend(arm("membership", "membership_event"));
    assert_eq!(all.len(), 5 + 3 + 8);
    assert_eq!(view, all);
    let contexts: std::collections::BTreeSet<&str> = view.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        contexts.into_iter().collect::<Vec<_>>(),
        ["address_change", "donation", "membership"]
    );

    // What alice did, everywhere, oldest first: the docs' "Who did what" filter.
    let mut alice: Vec<(u64, String)> = view
        .iter()
        .filter(|r| r[5] == "foc_user" && r[6] == "alice")
        .map(|r| (r[2].parse().unwrap(), format!("{} {} {}", r[0], r[1], r[4])))
        .collect();
    alice.sort();
    let alice: Vec<String> = alice.into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        alice,
        [
            "donation 1 ManuallyFlagged.v1",
            "membership 2 ManuallyFlagged.v1",
            "membership 2 MembershipRestored.v1",
            "address_change 3 DonationReceiptOptedOut.v1",
        ]
    );
}

async fn a_rebuild_and_verify_agree_on_the_address_change_change_log(env: Env) {
    for id in 1..=4u64 {
        create_donation(&env, id, "UEB").await;
        history(&env, id).await;
    }
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(5))
        .run_once()
        .await
        .unwrap();
    let live = rm.dump().await.unwrap();
    assert_eq!(live["address_change_event"].len(), 4 * 5);

    let report = verify(&env).await;
    assert!(report.is_identical(), "{:?}", report.differing_tables());
    let compared: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    for table in ["address_change_event", "change_log"] {
        assert!(compared.contains(&table), "{table}: {compared:?}");
    }

    rm.close().await;
    ledger::projection::rebuild(env.log(), &env.url, config(7))
        .await
        .unwrap();
    let rm = ReadModel::connect(&env.url).await.unwrap();
    let mut rebuilt = rm.dump().await.unwrap();
    rm.close().await;
    let mut live = live;
    // The checkpoint row's time is not dumped; everything else is the same.
    rebuilt.remove("projector_checkpoint");
    live.remove("projector_checkpoint");
    assert_eq!(rebuilt, live);

    // A change-log row lost by hand is what verify then reports, in the table and the view.
    execute(
        &env,
        "DELETE FROM address_change_event WHERE address_change_id = 3",
    )
    .await;
    let report = verify(&env).await;
    let differing = report.differing_tables();
    assert!(differing.contains(&"address_change_event"), "{differing:?}");
    assert!(differing.contains(&"change_log"), "{differing:?}");
}
