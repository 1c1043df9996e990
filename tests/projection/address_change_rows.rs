//! The address-change read model on SQLite, PostgreSQL and MariaDB: an address change's row
//! for every transition of its three streams (each state its own columns), the token index
//! making no rows, the blank address columns after a scrub, the scrub selection, and a
//! rebuild and `verify` that find the same rows.

use crate::projection_support;

use ledger::projection::{Projector, ProjectorConfig, ReadModel};
use ledger::proto::events as ev;
use projection_support::*;

read_model_conformance!(
    every_address_change_transition_changes_only_its_own_columns,
    a_scrubbed_address_change_has_no_address_in_its_row,
    address_change_scrub_candidates_hold_an_address_and_are_exported_or_past_the_grace_period,
    a_rebuild_and_verify_find_the_same_address_change_rows,
    a_sealed_address_shows_unsealed_and_nothing_once_its_key_is_destroyed,
);

/// Token `n` of the tests.
fn token(n: u64) -> String {
    format!("0b7d2f3e-5c1a-4b8e-9f00-{n:012}")
}

fn address() -> ev::AddressData {
    ev::AddressData {
        salutation: "Herr".into(),
        first_name: "Kasimir".into(),
        last_name: "Umzugsfreund".into(),
        street: "Neue Allee 5".into(),
        postcode: "04109".into(),
        city: "Leipzig".into(),
        country: "DE".into(),
        ..Default::default()
    }
}

/// One step of an address change's history.
enum Step {
    /// Created for donation `10 + id`, with token `id * 100`.
    Created,
    /// The address changed, the token rotated to `id * 100 + n`.
    Changed(u64),
    /// An opt-out of the receipt, the token rotated to `id * 100 + n`.
    OptedOut(u64),
    /// The version with token `id * 100 + n` exported.
    Exported(u64),
    Scrubbed,
}

fn changed(id: u64, n: u64) -> ev::AddressChanged {
    ev::AddressChanged {
        new_identifier: token(id * 100 + n),
        address_type: ev::AddressType::Person as i32,
        address: Some(address()),
        changed_at: Some(ts(base_time())),
        ..Default::default()
    }
}

async fn append(env: &Env, id: u64, step: Step) -> u64 {
    let stream = |category: &str| format!("{category}-{id}");
    match step {
        Step::Created => {
            env.append(
                &format!("address_change_token-{}", token(id * 100)),
                ev::AddressChangeTokenIssued {
                    address_change_id: id,
                },
            )
            .await;
            env.append(
                &stream("address_change"),
                ev::AddressChangeCreated {
                    address_change_id: id,
                    identifier: token(id * 100),
                    external_id_kind: ev::ExternalIdKind::Donation as i32,
                    external_id: 10 + id,
                    address_type: ev::AddressType::Person as i32,
                    created_at: Some(ts(base_time())),
                },
            )
            .await
        }
        Step::Changed(n) => env.append(&stream("address_change"), changed(id, n)).await,
        Step::OptedOut(n) => {
            env.append(
                &stream("address_change"),
                ev::DonationReceiptOptedOut {
                    new_identifier: token(id * 100 + n),
                    changed_at: Some(ts(base_time())),
                },
            )
            .await
        }
        Step::Exported(n) => {
            env.append(
                &stream("address_change_export"),
                ev::AddressChangeExported {
                    batch_id: "a-1".into(),
                    exported_at: Some(ts(base_time())),
                    identifier: token(id * 100 + n),
                },
            )
            .await
        }
        Step::Scrubbed => {
            env.append(
                &stream("address_change_scrub"),
                ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(ts(base_time())),
                },
            )
            .await
        }
    }
}

/// The independent state columns of an address change, in this order.
const STATES: [&str; 5] = [
    "has_address",
    "donation_receipt",
    "export_state",
    "is_exported",
    "is_scrubbed",
];

async fn every_address_change_transition_changes_only_its_own_columns(env: Env) {
    use Step::*;
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(3));
    // After each step: the state columns (in the order of `STATES`) and the token numbers
    // (current, previous).
    let steps = [
        (Created, "false true no_data false false", (0, 0)),
        (OptedOut(1), "false false no_data false false", (1, 0)),
        // The opt-out's version was exported: still no address to speak of.
        (Exported(1), "false false no_data true false", (1, 0)),
        (
            Changed(2),
            "true false used_not_exported false false",
            (2, 1),
        ),
        (Exported(2), "true false used_exported true false", (2, 1)),
        (Scrubbed, "true false used_exported true true", (2, 1)),
    ];
    for (i, (step, states, (current, previous))) in steps.into_iter().enumerate() {
        append(&env, 1, step).await;
        p.run_once().await.unwrap();
        let r = row(&rm, "address_change", 1).await;
        let expected: Vec<(&str, &str)> = STATES.into_iter().zip(states.split(' ')).collect();
        check(&r, &expected);
        assert_eq!(
            r["current_identifier"],
            token(100 + current),
            "after step {i}"
        );
        assert_eq!(
            r["previous_identifier"],
            token(100 + previous),
            "after step {i}"
        );
        assert_eq!(r["external_id_kind"], "donation");
        assert_eq!(r["external_id"], "11");
    }
    // The token index makes no row of its own anywhere.
    let dump = rm.dump().await.unwrap();
    assert_eq!(dump["address_change"].len(), 1);
}

async fn a_scrubbed_address_change_has_no_address_in_its_row(env: Env) {
    use Step::*;
    for step in [Created, Changed(1), Exported(1)] {
        append(&env, 1, step).await;
    }
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(100));
    p.run_once().await.unwrap();
    check(
        &row(&rm, "address_change", 1).await,
        &[("last_name", "Umzugsfreund"), ("street", "Neue Allee 5")],
    );
    append(&env, 1, Scrubbed).await;
    p.run_once().await.unwrap();
    check(
        &row(&rm, "address_change", 1).await,
        &[
            ("salutation", ""),
            ("first_name", ""),
            ("last_name", ""),
            ("street", ""),
            ("postcode", ""),
            ("city", ""),
            ("country", ""),
            ("has_address", "true"),
            ("scrub_rule", "exported"),
            ("external_id", "11"),
        ],
    );
    let dump = format!("{:?}", rm.dump().await.unwrap());
    for personal in ["Umzugsfreund", "Neue Allee", "Leipzig", "04109"] {
        assert!(!dump.contains(personal), "{personal} survived the scrub");
    }
}

/// The address-change scrub selection (`address_change_scrub_candidates.sql`): an exported
/// current version at once; any other unscrubbed one with an address once changed before the
/// grace cutoff; never one without an address, nor a scrubbed one.
async fn address_change_scrub_candidates_hold_an_address_and_are_exported_or_past_the_grace_period(
    env: Env,
) {
    use Step::*;
    let histories = [
        vec![Created, Changed(1), Exported(1)],
        vec![Created, Changed(1)],
        vec![Created, OptedOut(1), Exported(1)],
        vec![Created],
        vec![Created, Changed(1), Exported(1), Scrubbed],
        vec![Created, Changed(1), Exported(1), OptedOut(2)],
    ];
    for (id, steps) in (1u64..).zip(histories) {
        for step in steps {
            append(&env, id, step).await;
        }
    }
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    let found = |cutoff| {
        let rm = rm.clone();
        async move {
            let mut found: Vec<(u64, String)> = rm
                .address_change_scrub_candidates(cutoff, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.address_change_id, c.rule))
                .collect();
            found.sort();
            found
        }
    };
    // Every change was made at base_time: inside the grace period only the exported one.
    let inside = base_time() - chrono::Duration::seconds(1);
    assert_eq!(found(inside).await, vec![(1, "exported".to_owned())]);
    assert_eq!(
        found(base_time()).await,
        vec![
            (1, "exported".to_owned()),
            (2, "after_grace_period".to_owned()),
            (6, "after_grace_period".to_owned()),
        ]
    );
}

async fn a_rebuild_and_verify_find_the_same_address_change_rows(env: Env) {
    use Step::*;
    // Address changes in every combination of states, among donations with the same ids.
    for id in 1..=6u64 {
        create_donation(&env, id, "UEB").await;
        append(&env, id, Created).await;
        if id % 2 == 0 {
            append(&env, id, Changed(1)).await;
        }
        if id % 3 == 0 {
            append(&env, id, OptedOut(2)).await;
        }
        if id == 4 {
            append(&env, id, Exported(1)).await;
            append(&env, id, Scrubbed).await;
        }
    }
    assert_rebuild_and_verify_agree(&env, "address_change", 6).await;
    let rm = ReadModel::connect(&env.url).await.unwrap();
    assert_eq!(rm.dump().await.unwrap()["donation"].len(), 6);
}

async fn a_sealed_address_shows_unsealed_and_nothing_once_its_key_is_destroyed(env: Env) {
    // Sealed with the address change's own key, as the intake seals it.
    let vault = ledger::config::StorageArgs::in_dir(env.dir.path())
        .open_vault()
        .await
        .unwrap();
    let key_id = ledger::privacy::address_change_key_id(1);
    let key = vault.keys().get_or_create(key_id).await.unwrap();
    let mut event: ledger::domain::DomainEvent = changed(1, 1).into();
    ledger::privacy::seal_with(std::slice::from_mut(&mut event), key_id, &key);
    let ledger::domain::DomainEvent::AddressChanged(sealed) = &event else {
        unreachable!()
    };
    assert!(sealed.address.is_none() && sealed.address_sealed.is_some());
    append(&env, 1, Step::Created).await;
    env.append("address_change-1", event).await;
    let rm = env.read_model().await;
    let with_vault = ProjectorConfig {
        vault: Some(vault.clone()),
        ..config(100)
    };
    let p = Projector::with_config(env.log(), rm.clone(), with_vault.clone());
    p.run_once().await.unwrap();
    check(
        &row(&rm, "address_change", 1).await,
        &[("last_name", "Umzugsfreund"), ("city", "Leipzig")],
    );

    // Exported, scrubbed, its key destroyed: a rebuild cannot bring anything back.
    append(&env, 1, Step::Exported(1)).await;
    append(&env, 1, Step::Scrubbed).await;
    vault.destroy(&[key_id]).await.unwrap();
    p.run_once().await.unwrap();
    rm.close().await;
    ledger::projection::rebuild(env.log(), &env.url, with_vault)
        .await
        .unwrap();
    let rm = ReadModel::connect(&env.url).await.unwrap();
    check(
        &row(&rm, "address_change", 1).await,
        &[("last_name", ""), ("city", ""), ("is_scrubbed", "true")],
    );
    let dump = format!("{:?}", rm.dump().await.unwrap());
    assert!(
        !dump.contains("Umzugsfreund") && !dump.contains("Leipzig"),
        "{dump}"
    );
}
