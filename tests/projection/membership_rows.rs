//! The membership read model on SQLite, PostgreSQL and MariaDB: an application's row for every
//! state transition of its five streams (each state its own column, also the combinations
//! the legacy status could not hold), its open moderation reasons, one test per status code of
//! the `legacy_request` view against a hand-built history, the blank personal columns after a
//! scrub, the scrub selection, and a rebuild and `verify` that find the same rows.

use crate::projection_support;

use ledger::projection::{Projector, ProjectorConfig, ReadModel};
use ledger::proto::events as ev;
use projection_support::*;

read_model_conformance!(
    every_state_transition_changes_only_its_own_column,
    open_moderation_reasons_are_rows_until_approved,
    legacy_status_1_is_a_confirmed_application,
    legacy_status_0_is_an_unconfirmed_application,
    legacy_status_minus_1_is_a_cancelled_application,
    legacy_status_minus_2_is_a_moderated_application_even_when_confirmed,
    legacy_status_minus_3_is_a_cancelled_and_moderated_application,
    legacy_request_shows_the_legacy_columns,
    a_scrubbed_application_has_no_personal_data_in_its_rows,
    scrub_candidates_are_exported_or_cancelled_applications_and_any_after_the_grace_period,
    a_rebuild_and_verify_find_the_same_membership_rows,
    a_sealed_application_shows_unsealed_and_nothing_once_its_key_is_destroyed,
);

/// An application of a person, 10 EUR a month by direct debit, with a bank account.
fn applied(id: u64, confirmed: bool) -> ev::MembershipApplied {
    ev::MembershipApplied {
        membership_id: id,
        created_at: Some(ts(base_time())),
        applicant_kind: ev::ApplicantKind::Person as i32,
        applicant: Some(ev::ApplicantData {
            salutation: "Frau".into(),
            title: "Dr.".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            street: "Hauptstraße 1".into(),
            postcode: "10117".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            email: "ada@example.org".into(),
            phone: "+49 30 1234".into(),
            date_of_birth: "1815-12-10".into(),
            ..Default::default()
        }),
        membership_type: ev::MembershipType::Active as i32,
        fee: Some(ev::Money {
            cents: 1050,
            currency: "EUR".into(),
        }),
        interval_months: 1,
        payment_id: 7000 + id,
        payment_method: ev::PaymentMethod::DirectDebit as i32,
        bank: Some(ev::BankData {
            iban: "DE02120300000000202051".into(),
            bic: "BYLADEM1001".into(),
            payment_reference_code: String::new(),
        }),
        confirmed,
        tracking: Some(ev::MembershipTracking {
            campaign: "Spring".into(),
            keyword: "Banner".into(),
        }),
        incentives: vec!["tote_bag".into()],
        donation_receipt: Some(true),
        ..Default::default()
    }
}

fn fee_too_high() -> ev::ModerationReasonsRaised {
    ev::ModerationReasonsRaised {
        reasons: vec![ev::ModerationReason {
            identifier: ev::ModerationIdentifier::MembershipFeeTooHigh as i32,
            source: "amount".into(),
        }],
    }
}

/// One step of an application's history: the stream's category and the event.
enum Step {
    Applied(bool),
    FeeTooHigh,
    Flagged,
    Approved,
    Cancelled,
    Restored,
    Exported,
    Scrubbed,
}

/// Appends `step` to the streams of application `id`.
async fn append(env: &Env, id: u64, step: Step) -> u64 {
    let stream = |category: &str| format!("{category}-{id}");
    match step {
        Step::Applied(confirmed) => {
            env.append(&stream("membership"), applied(id, confirmed))
                .await
        }
        Step::FeeTooHigh => {
            env.append(&stream("membership_moderation"), fee_too_high())
                .await
        }
        Step::Flagged => {
            env.append_as(
                &stream("membership_moderation"),
                ev::ManuallyFlagged {
                    note: "check".into(),
                },
                foc("alice"),
            )
            .await
        }
        Step::Approved => {
            env.append_as(
                &stream("membership_moderation"),
                ev::ModerationApproved::default(),
                foc("alice"),
            )
            .await
        }
        Step::Cancelled => {
            env.append(
                &stream("membership_cancellation"),
                ev::MembershipCancelled {
                    reason: "moved away".into(),
                },
            )
            .await
        }
        Step::Restored => {
            env.append(
                &stream("membership_cancellation"),
                ev::MembershipRestored {
                    reason: "mistake".into(),
                },
            )
            .await
        }
        Step::Exported => {
            env.append(
                &stream("membership_export"),
                ev::MembershipExported {
                    batch_id: "m-1".into(),
                    exported_at: Some(ts(base_time())),
                },
            )
            .await
        }
        Step::Scrubbed => {
            env.append(
                &stream("membership_scrub"),
                ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(ts(base_time())),
                },
            )
            .await
        }
    }
}

/// The independent state columns of an application, in this order.
const STATES: [&str; 5] = [
    "is_confirmed",
    "moderation_state",
    "cancellation_state",
    "is_exported",
    "is_scrubbed",
];

async fn every_state_transition_changes_only_its_own_column(env: Env) {
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(3));
    // After each step, the five state columns (in the order of `STATES`) and the legacy
    // status the view derives.
    let steps = [
        (Step::Applied(true), "true none active false false", "1"),
        (Step::FeeTooHigh, "true open active false false", "-2"),
        (Step::Cancelled, "true open cancelled false false", "-3"),
        (Step::Approved, "true approved cancelled false false", "-1"),
        (Step::Flagged, "true open cancelled false false", "-3"),
        (Step::Restored, "true open active false false", "-2"),
        (Step::Approved, "true approved active false false", "1"),
        (Step::Exported, "true approved active true false", "1"),
        (Step::Scrubbed, "true approved active true true", "1"),
    ];
    for (i, (step, states, status)) in steps.into_iter().enumerate() {
        append(&env, 1, step).await;
        p.run_once().await.unwrap();
        let r = row(&rm, "membership_application", 1).await;
        let expected: Vec<(&str, &str)> = STATES.into_iter().zip(states.split(' ')).collect();
        check(&r, &expected);
        assert_eq!(
            row(&rm, "legacy_request", 1).await["status"],
            status,
            "after step {i}"
        );
        assert_eq!(r["updated_at"] > r["created_at"], i > 0, "after step {i}");
    }
    let r = row(&rm, "membership_application", 1).await;
    check(
        &r,
        &[
            ("export_batch", "m-1"),
            ("scrub_rule", "exported"),
            ("applicant_kind", "person"),
            ("membership_type", "active"),
            ("fee_cents", "1050"),
            ("interval_months", "1"),
            ("yearly_fee_cents", "12600"),
            ("payment_id", "7001"),
            ("payment_method", "BEZ"),
        ],
    );
    assert_eq!(p.stats().snapshot().quarantined_total, 0);
}

async fn open_moderation_reasons_are_rows_until_approved(env: Env) {
    append(&env, 4, Step::Applied(true)).await;
    append(&env, 4, Step::FeeTooHigh).await;
    append(&env, 4, Step::Flagged).await;
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(2));
    p.run_once().await.unwrap();
    let reasons =
        |dump: ledger::projection::TableDump| dump["membership_moderation_reason"].clone();
    assert_eq!(
        reasons(rm.dump().await.unwrap()),
        [
            "4 | MANUALLY_FLAGGED_BY_ADMIN | ",
            "4 | MEMBERSHIP_FEE_TOO_HIGH | amount"
        ]
    );
    // The donation's reason table knows nothing of them.
    assert!(rm.dump().await.unwrap()["donation_moderation_reason"].is_empty());
    append(&env, 4, Step::Approved).await;
    p.run_once().await.unwrap();
    assert!(reasons(rm.dump().await.unwrap()).is_empty());
    check(
        &row(&rm, "membership_application", 4).await,
        &[("moderation_state", "approved")],
    );
}

/// The `legacy_request` status of application 1 after `steps`.
async fn legacy_status(env: &Env, steps: Vec<Step>) -> String {
    for step in steps {
        append(env, 1, step).await;
    }
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    row(&rm, "legacy_request", 1).await["status"].clone()
}

async fn legacy_status_1_is_a_confirmed_application(env: Env) {
    let steps = vec![Step::Applied(true), Step::Exported];
    assert_eq!(legacy_status(&env, steps).await, "1");
}

async fn legacy_status_0_is_an_unconfirmed_application(env: Env) {
    // Moderated and approved again, cancelled and restored again: still only unconfirmed.
    let steps = vec![
        Step::Applied(false),
        Step::FeeTooHigh,
        Step::Approved,
        Step::Cancelled,
        Step::Restored,
    ];
    assert_eq!(legacy_status(&env, steps).await, "0");
}

async fn legacy_status_minus_1_is_a_cancelled_application(env: Env) {
    let steps = vec![Step::Applied(true), Step::Cancelled];
    assert_eq!(legacy_status(&env, steps).await, "-1");
}

async fn legacy_status_minus_2_is_a_moderated_application_even_when_confirmed(env: Env) {
    let steps = vec![Step::Applied(true), Step::Flagged];
    assert_eq!(legacy_status(&env, steps).await, "-2");
}

async fn legacy_status_minus_3_is_a_cancelled_and_moderated_application(env: Env) {
    let steps = vec![Step::Applied(false), Step::Cancelled, Step::FeeTooHigh];
    assert_eq!(legacy_status(&env, steps).await, "-3");
}

async fn legacy_request_shows_the_legacy_columns(env: Env) {
    append(&env, 1, Step::Applied(true)).await;
    append(&env, 1, Step::Exported).await;
    let mut company = applied(2, true);
    company.applicant_kind = ev::ApplicantKind::Company as i32;
    company.applicant = Some(ev::ApplicantData {
        company_name: "ACME GmbH".into(),
        email: "info@acme.example".into(),
        ..Default::default()
    });
    company.tracking = Some(ev::MembershipTracking {
        campaign: String::new(),
        keyword: "kw".into(),
    });
    company.donation_receipt = None;
    company.bank = None;
    env.append("membership-2", company).await;
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    check(
        &row(&rm, "legacy_request", 1).await,
        &[
            ("timestamp", "2026-11-01 10:00:00"),
            ("anrede", "Frau"),
            ("titel", "Dr."),
            ("firma", ""),
            ("name", "Ada Lovelace"),
            ("vorname", "Ada"),
            ("nachname", "Lovelace"),
            ("strasse", "Hauptstraße 1"),
            ("plz", "10117"),
            ("ort", "Berlin"),
            ("country", "DE"),
            ("email", "ada@example.org"),
            ("phone", "+49 30 1234"),
            ("dob", "1815-12-10"),
            ("membership_type", "active"),
            ("payment_type", "BEZ"),
            ("membership_fee", "10"),
            ("membership_fee_interval", "1"),
            ("iban", "DE02120300000000202051"),
            ("bic", "BYLADEM1001"),
            ("export", "2026-11-01 10:00:00"),
            ("tracking", "Spring/Banner"),
            ("donation_receipt", "1"),
            ("payment_id", "7001"),
            ("is_scrubbed", "false"),
        ],
    );
    check(
        &row(&rm, "legacy_request", 2).await,
        &[
            ("anrede", "Firma"),
            ("firma", "ACME GmbH"),
            ("name", ""),
            ("dob", "NULL"),
            ("iban", ""),
            ("export", "NULL"),
            ("tracking", "/kw"),
            ("donation_receipt", "NULL"),
        ],
    );
}

async fn a_scrubbed_application_has_no_personal_data_in_its_rows(env: Env) {
    for step in [Step::Applied(true), Step::Exported, Step::Scrubbed] {
        append(&env, 1, step).await;
    }
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    let r = row(&rm, "membership_application", 1).await;
    let personal = "salutation title first_name last_name company_name street postcode city \
                    country email phone date_of_birth iban bic payment_reference_code";
    for personal in personal.split_whitespace() {
        assert_eq!(r[personal], "", "{personal}");
    }
    // What is kept for statistics.
    check(
        &r,
        &[
            ("is_scrubbed", "true"),
            ("applicant_kind", "person"),
            ("fee_cents", "1050"),
            ("campaign", "Spring"),
            ("incentives", "tote_bag"),
            ("wants_receipt", "true"),
        ],
    );
    check(
        &row(&rm, "legacy_request", 1).await,
        &[
            ("anrede", ""),
            ("name", ""),
            ("dob", "NULL"),
            ("is_scrubbed", "true"),
        ],
    );
    // Nowhere in the read model.
    let dump = format!("{:?}", rm.dump().await.unwrap());
    for personal in [
        "Lovelace",
        "ada@example.org",
        "Hauptstraße",
        "DE0212",
        "1815-12-10",
    ] {
        assert!(!dump.contains(personal), "{personal} survived the scrub");
    }
}

/// The membership scrub selection (`membership_scrub_candidates.sql`): exported and cancelled
/// applications at once, moderated or not; every other unscrubbed one once it was made before
/// the grace cutoff; a scrubbed one never.
async fn scrub_candidates_are_exported_or_cancelled_applications_and_any_after_the_grace_period(
    env: Env,
) {
    use Step::*;
    let histories = [
        vec![Applied(true), Exported],
        vec![Applied(true), FeeTooHigh, Cancelled],
        vec![Applied(true), Exported, Scrubbed],
        vec![Applied(true), FeeTooHigh],
        vec![Applied(false), Cancelled, Restored],
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
                .membership_scrub_candidates(cutoff, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.membership_id, c.rule))
                .collect();
            found.sort();
            found
        }
    };
    let at_once = vec![
        (1, "exported".to_owned()),
        (2, "cancelled_or_deleted".to_owned()),
    ];
    // Every application was made at base_time: inside the grace period only the first two.
    let inside = base_time() - chrono::Duration::seconds(1);
    assert_eq!(found(inside).await, at_once);
    let mut after = at_once.clone();
    after.push((4, "after_grace_period".to_owned()));
    after.push((5, "after_grace_period".to_owned()));
    assert_eq!(found(base_time()).await, after);
}

async fn a_rebuild_and_verify_find_the_same_membership_rows(env: Env) {
    // Applications in every combination of states, among donations with the same ids.
    for id in 1..=8u64 {
        create_donation(&env, id, "BEZ").await;
        append(&env, id, Step::Applied(id % 2 == 0)).await;
        if id % 3 == 0 {
            append(&env, id, Step::FeeTooHigh).await;
        }
        if id % 4 == 0 {
            append(&env, id, Step::Cancelled).await;
        }
        if id == 5 {
            append(&env, id, Step::Exported).await;
            append(&env, id, Step::Scrubbed).await;
        }
        if id == 6 {
            append(&env, id, Step::Approved).await;
        }
    }
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(4))
        .run_once()
        .await
        .unwrap();
    let live = rm.dump().await.unwrap();
    assert_eq!(live["membership_application"].len(), 8);
    assert_eq!(live["legacy_request"].len(), 8);
    assert_eq!(live["donation"].len(), 8);

    let report = verify(&env).await;
    assert!(report.is_identical(), "{:?}", report.differing_tables());
    let compared: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    for table in [
        "membership_application",
        "membership_moderation_reason",
        "legacy_request",
    ] {
        assert!(
            compared.contains(&table),
            "{table} not compared: {compared:?}"
        );
    }

    ledger::projection::rebuild(env.log(), &env.url, config(3))
        .await
        .unwrap();
    let rm = ReadModel::connect(&env.url).await.unwrap();
    let mut rebuilt = rm.dump().await.unwrap();
    let mut live = live;
    // The checkpoint row's time is not dumped; everything else is the same.
    rebuilt.remove("projector_checkpoint");
    live.remove("projector_checkpoint");
    assert_eq!(rebuilt, live);

    // A hand edit of a membership row is what verify then reports.
    rm.close().await;
    let edit = "UPDATE membership_application SET cancellation_state = 'cancelled' WHERE id = 1";
    execute(&env, edit).await;
    let report = verify(&env).await;
    let differing = report.differing_tables();
    assert!(
        differing.contains(&"membership_application"),
        "{differing:?}"
    );
}

async fn a_sealed_application_shows_unsealed_and_nothing_once_its_key_is_destroyed(env: Env) {
    // Sealed with the application's own key, as the intake seals it.
    let vault = ledger::config::StorageArgs::in_dir(env.dir.path())
        .open_vault()
        .await
        .unwrap();
    let key_id = ledger::privacy::membership_key_id(1);
    let key = vault.keys().get_or_create(key_id).await.unwrap();
    let mut event: ledger::domain::DomainEvent = applied(1, true).into();
    ledger::privacy::seal_with(std::slice::from_mut(&mut event), key_id, &key);
    let ledger::domain::DomainEvent::MembershipApplied(sealed) = &event else {
        unreachable!()
    };
    assert!(sealed.applicant.is_none() && sealed.applicant_sealed.is_some());
    env.append("membership-1", event).await;
    let rm = env.read_model().await;
    let with_vault = ProjectorConfig {
        vault: Some(vault.clone()),
        ..config(100)
    };
    let p = Projector::with_config(env.log(), rm.clone(), with_vault.clone());
    p.run_once().await.unwrap();
    check(
        &row(&rm, "membership_application", 1).await,
        &[
            ("last_name", "Lovelace"),
            ("iban", "DE02120300000000202051"),
        ],
    );

    // Exported, scrubbed, its key destroyed: a rebuild cannot bring anything back.
    append(&env, 1, Step::Exported).await;
    append(&env, 1, Step::Scrubbed).await;
    vault.destroy(&[key_id]).await.unwrap();
    p.run_once().await.unwrap();
    rm.close().await;
    ledger::projection::rebuild(env.log(), &env.url, with_vault)
        .await
        .unwrap();
    let rm = ReadModel::connect(&env.url).await.unwrap();
    check(
        &row(&rm, "membership_application", 1).await,
        &[("last_name", ""), ("iban", ""), ("is_scrubbed", "true")],
    );
    let dump = format!("{:?}", rm.dump().await.unwrap());
    assert!(
        !dump.contains("Lovelace") && !dump.contains("DE0212"),
        "{dump}"
    );
}

/// Runs one statement on the test's read model with the dialect's own driver.
pub(crate) async fn execute(env: &Env, sql: &str) {
    use sqlx::Connection;
    match env.db {
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(&env.url).await.unwrap();
            sqlx::query("SET search_path = readmodel")
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Db::Mariadb => {
            let mut c = sqlx::MySqlConnection::connect(&env.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}
