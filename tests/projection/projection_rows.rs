//! The read model's rows after realistic event sequences, on SQLite, PostgreSQL and MariaDB:
//! every payment method's columns, the legacy status letter of every row of the derivation table,
//! scrubbing, contribution tracking upserts and conflicts, and bad events: quarantined by
//! default, or stopping the projector until an operator skips them.

use crate::projection_support;

use std::collections::BTreeMap;

use ledger::projection::{ProjectionError, Projector, ProjectorConfig, ReadModel};
use ledger::proto::events as ev;
use ledger::store::{Actor, ActorKind};
use projection_support::*;

read_model_conformance!(
    every_payment_method_projects_its_columns,
    later_events_change_only_their_own_columns,
    legacy_letter_follows_every_row_of_the_derivation_table,
    scrub_blanks_personal_columns_and_keeps_the_rest,
    scrub_candidates_are_what_the_policy_allows_oldest_first,
    contribution_tracking_is_upserted_by_id_with_refused_changes_counted,
    an_event_that_cannot_be_applied_stops_the_projector_until_skipped,
    a_payment_event_for_an_unknown_payment_stops_the_projector,
    unprojectable_events_from_another_writer_are_quarantined_and_the_projector_goes_on,
    a_value_the_database_refuses_is_narrowed_to_its_event_and_quarantined,
    an_event_whose_sealed_personal_data_does_not_open_is_quarantined,
    the_overview_counts_each_state_as_the_rows_hold_it,
);

/// A projector that stops at an event it cannot project instead of quarantining it.
fn stopping(batch_size: usize) -> ProjectorConfig {
    ProjectorConfig {
        quarantine: false,
        ..config(batch_size)
    }
}

async fn project(env: &Env) -> (Projector, ReadModel) {
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(7));
    p.run_once().await.unwrap();
    (p, rm)
}

async fn every_payment_method_projects_its_columns(env: Env) {
    for (i, code) in ["BEZ", "UEB", "MCP", "PPL", "SUB"].iter().enumerate() {
        let id = 1 + i as u64;
        create_donation(&env, id, code).await;
        if matches!(*code, "MCP" | "PPL" | "SUB") {
            env.append(
                &format!("payment-{}", id + 100_000),
                booked(base_time(), &format!("TXN-{id}")),
            )
            .await;
        }
    }
    let (_p, rm) = project(&env).await;
    let t0 = "2026-11-01T10:00:00.000000Z";
    let expected_state = |code: &str| {
        if matches!(code, "BEZ" | "UEB") {
            "pending"
        } else {
            "booked"
        }
    };
    for (i, code) in ["BEZ", "UEB", "MCP", "PPL", "SUB"].iter().enumerate() {
        let id = 1 + i as u64;
        let d = row(&rm, "donation", id).await;
        check(
            &d,
            &[
                ("amount_cents", "1337"),
                ("currency", "EUR"),
                ("interval_months", if *code == "SUB" { "0" } else { "3" }),
                ("payment_id", &(id + 100_000).to_string()),
                ("payment_method", code),
                ("payment_state", expected_state(code)),
                (
                    "payment_booked_at",
                    if matches!(*code, "BEZ" | "UEB") {
                        "NULL"
                    } else {
                        t0
                    },
                ),
                ("deletion_state", "active"),
                ("moderation_state", "none"),
                ("is_exported", "false"),
                ("exported_at", "NULL"),
                ("export_batch", ""),
                ("is_scrubbed", "false"),
                ("scrubbed_at", "NULL"),
                ("scrub_rule", ""),
                ("donor_kind", "person"),
                ("salutation", "Herr"),
                ("title", "Dr."),
                ("first_name", "Jeroen"),
                ("last_name", "De Dauw"),
                ("company_name", ""),
                ("street", "Zollstraße 3"),
                ("postcode", "12345"),
                ("city", "Berlin"),
                ("country", "DE"),
                ("email", "jeroen@example.org"),
                ("wants_newsletter", "true"),
                ("wants_receipt", "true"),
                ("comment", "for the wiki"),
                ("comment_is_public", "false"),
                ("comment_display_name", ""),
                ("tracking_id", "1"),
                ("campaign", "Test"),
                ("keyword", "Gelb"),
                ("impression_count", "3"),
                ("banner_impression_count", "1"),
                ("contribution_tracking_id", "0"),
                ("parent_donation_id", "0"),
            ],
        );
        let p = row(&rm, "payment", id + 100_000).await;
        check(
            &p,
            &[
                ("donation_id", &id.to_string()),
                ("method", code),
                ("amount_cents", "1337"),
                ("state", expected_state(code)),
                (
                    "iban",
                    if *code == "BEZ" {
                        "DE02120300000000202051"
                    } else {
                        ""
                    },
                ),
                ("bic", if *code == "BEZ" { "BYLADEM1001" } else { "" }),
                (
                    "payment_reference_code",
                    if matches!(*code, "UEB" | "SUB") {
                        "XW-DAR-E99-X"
                    } else {
                        ""
                    },
                ),
                (
                    "transaction_id",
                    &if matches!(*code, "BEZ" | "UEB") {
                        String::new()
                    } else {
                        format!("TXN-{id}")
                    },
                ),
                (
                    "payer_id",
                    if matches!(*code, "BEZ" | "UEB") {
                        ""
                    } else {
                        "PAYER-1"
                    },
                ),
                ("parent_payment_id", "0"),
            ],
        );
        let legacy = row(&rm, "legacy_spenden", id).await;
        check(
            &legacy,
            &[
                ("name", "Dr. Jeroen De Dauw"),
                ("ort", "Berlin"),
                ("betrag", "13.37"),
                ("zahlweise", code),
                ("periode", if *code == "SUB" { "0" } else { "3" }),
                ("info", "1"),
                ("bescheinigung", "1"),
                ("adresstyp", "person"),
                (
                    "ueb_code",
                    if matches!(*code, "UEB" | "SUB") {
                        "XW-DAR-E99-X"
                    } else {
                        ""
                    },
                ),
                ("is_scrubbed", "false"),
                ("dt_gruen", "NULL"),
            ],
        );
    }
    let dump = rm.dump().await.unwrap();
    // One normalised tracking row shared by every donation.
    assert_eq!(
        dump["donation_tracking"],
        vec!["1 | test | gelb".to_owned()]
    );
    // The change log names every event, its stream and its actor.
    assert_eq!(dump["donation_event"].len(), 13);
    assert!(dump["donation_event"][0]
        .starts_with("1 | 1 | payment-100001 | PaymentInitiated.v1 | system | test | "));
}

async fn later_events_change_only_their_own_columns(env: Env) {
    create_donation(&env, 1, "BEZ").await;
    env.append(
        "donation-1",
        ev::DonorUpdated {
            donor: Some(ev::DonorPublic {
                kind: ev::DonorKind::Company as i32,
                salutation: "Divers".into(),
                wants_newsletter: false,
                wants_receipt: true,
            }),
            personal: Some(ev::PersonalData {
                company_name: "ACME GmbH".into(),
                city: "Hamburg".into(),
                email: "info@acme.example".into(),
                ..Default::default()
            }),
            personal_sealed: None,
        },
    )
    .await;
    env.append_as(
        "donation-1",
        ev::CommentPublished {
            public_text: "Go Wikipedia".into(),
            display_name: "ACME".into(),
        },
        foc("bob"),
    )
    .await;
    env.append_as(
        "moderation-1",
        ev::ManuallyFlagged {
            note: "check".into(),
        },
        foc("alice"),
    )
    .await;
    env.append(
        "export-1",
        ev::DonationExported {
            batch_id: "2026-11".into(),
            exported_at: Some(ts(base_time())),
        },
    )
    .await;
    let (_p, rm) = project(&env).await;
    let d = row(&rm, "donation", 1).await;
    check(
        &d,
        &[
            ("donor_kind", "company"),
            ("salutation", "Divers"),
            ("company_name", "ACME GmbH"),
            ("first_name", ""),
            ("city", "Hamburg"),
            ("wants_newsletter", "false"),
            ("comment", "Go Wikipedia"),
            ("comment_is_public", "true"),
            ("comment_display_name", "ACME"),
            ("moderation_state", "open"),
            ("is_exported", "true"),
            ("exported_at", "2026-11-01T10:00:00.000000Z"),
            ("export_batch", "2026-11"),
            ("payment_state", "pending"),
            ("deletion_state", "active"),
        ],
    );
    let dump = rm.dump().await.unwrap();
    assert_eq!(
        dump["donation_moderation_reason"],
        vec!["1 | MANUALLY_FLAGGED_BY_ADMIN | ".to_owned()]
    );
    assert!(dump["donation_event"]
        .iter()
        .any(|r| r.contains("| CommentPublished.v1 | foc_user | bob |")));
    check(
        &row(&rm, "legacy_spenden", 1).await,
        &[
            ("status", "P"),
            ("name", "ACME GmbH"),
            ("adresstyp", "firma"),
            ("is_public", "1"),
            ("eintrag", "ACME"),
        ],
    );
}

/// One donation per row of the derivation table in domain/wmde.md (and the transitions in
/// its notes), with the letter expected.
async fn legacy_letter_follows_every_row_of_the_derivation_table(env: Env) {
    let scrub = |rule: ev::ScrubRule| ev::PersonalDataScrubbed {
        rule: rule as i32,
        scrubbed_at: Some(ts(base_time())),
    };
    let raise = || ev::ModerationReasonsRaised {
        reasons: vec![ev::ModerationReason {
            identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
            source: "amount".into(),
        }],
    };
    let book = |id: u64| {
        (
            format!("payment-{}", id + 100_000),
            booked(base_time(), "T"),
        )
    };
    // 1: cancelled (also while moderated) -> D
    create_donation(&env, 1, "BEZ").await;
    env.append(
        "deletion-1",
        ev::DonationCancelled {
            reason: "donor".into(),
        },
    )
    .await;
    create_donation(&env, 2, "UEB").await;
    env.append("moderation-2", raise()).await;
    env.append(
        "deletion-2",
        ev::DonationDeleted {
            reason: "admin".into(),
        },
    )
    .await;
    // 2: moderated -> P
    create_donation(&env, 3, "UEB").await;
    env.append("moderation-3", raise()).await;
    // 3: scrubbed keeps its letter (N, B, X)
    create_donation(&env, 4, "BEZ").await;
    env.append(
        "export-4",
        ev::DonationExported {
            batch_id: "b".into(),
            exported_at: None,
        },
    )
    .await;
    env.append("scrub-4", scrub(ev::ScrubRule::Exported)).await;
    create_donation(&env, 5, "PPL").await;
    let (s, e) = book(5);
    env.append(&s, e).await;
    env.append("scrub-5", scrub(ev::ScrubRule::Exported)).await;
    create_donation(&env, 6, "SUB").await;
    env.append("scrub-6", scrub(ev::ScrubRule::Abandoned)).await;
    // 4, 5: BEZ -> N, UEB -> Z
    create_donation(&env, 7, "BEZ").await;
    create_donation(&env, 8, "UEB").await;
    // 6, 7: SUB not booked -> X, booked -> Z
    create_donation(&env, 9, "SUB").await;
    create_donation(&env, 10, "SUB").await;
    let (s, e) = book(10);
    env.append(&s, e).await;
    // 8: MCP/PPL booked -> B
    create_donation(&env, 11, "MCP").await;
    let (s, e) = book(11);
    env.append(&s, e).await;
    create_donation(&env, 12, "PPL").await;
    let (s, e) = book(12);
    env.append(&s, e).await;
    // 9: MCP/PPL not booked -> X
    create_donation(&env, 13, "MCP").await;
    create_donation(&env, 14, "PPL").await;
    // Notes: approval turns P into the payment letter; restoring turns D back (into P while
    // reasons are open); a refund after booking keeps B.
    create_donation(&env, 15, "BEZ").await;
    env.append("moderation-15", raise()).await;
    env.append(
        "moderation-15",
        ev::ModerationApproved {
            as_anonymous: false,
        },
    )
    .await;
    create_donation(&env, 16, "UEB").await;
    env.append(
        "deletion-16",
        ev::DonationCancelled {
            reason: "donor".into(),
        },
    )
    .await;
    env.append(
        "deletion-16",
        ev::DonationRestored {
            reason: "mistake".into(),
        },
    )
    .await;
    create_donation(&env, 17, "BEZ").await;
    env.append("moderation-17", raise()).await;
    env.append(
        "deletion-17",
        ev::DonationCancelled {
            reason: "donor".into(),
        },
    )
    .await;
    env.append(
        "deletion-17",
        ev::DonationRestored {
            reason: "mistake".into(),
        },
    )
    .await;
    create_donation(&env, 18, "PPL").await;
    let (s, e) = book(18);
    env.append(&s, e).await;
    env.append(
        &s,
        ev::PaymentRefunded {
            amount: None,
            reason: "asked".into(),
        },
    )
    .await;

    let (_p, rm) = project(&env).await;
    let expected = [
        (1, "D"),
        (2, "D"),
        (3, "P"),
        (4, "N"),
        (5, "B"),
        (6, "X"),
        (7, "N"),
        (8, "Z"),
        (9, "X"),
        (10, "Z"),
        (11, "B"),
        (12, "B"),
        (13, "X"),
        (14, "X"),
        (15, "N"),
        (16, "Z"),
        (17, "P"),
        (18, "B"),
    ];
    for (id, letter) in expected {
        assert_eq!(
            row(&rm, "legacy_spenden", id).await["status"],
            letter,
            "donation {id}"
        );
    }
    check(
        &row(&rm, "donation", 2).await,
        &[
            ("deletion_state", "deleted_by_admin"),
            ("moderation_state", "open"),
        ],
    );
    check(
        &row(&rm, "donation", 18).await,
        &[("payment_state", "refunded")],
    );
}

/// The scrub selection (partial indexes in SQLite and PostgreSQL, indexed generated columns in
/// MariaDB): exported, cancelled and abandoned donations that are not scrubbed yet, oldest
/// first, and with the optional rule the ones still under moderation.
async fn scrub_candidates_are_what_the_policy_allows_oldest_first(env: Env) {
    for (id, code) in [(1, "UEB"), (2, "BEZ"), (3, "PPL"), (4, "PPL")] {
        create_donation(&env, id, code).await;
    }
    let abandoned_before = env.next_time();
    for (id, code) in [(5, "MCP"), (6, "UEB"), (7, "BEZ")] {
        create_donation(&env, id, code).await;
    }
    for id in [1, 6] {
        env.append(
            &format!("export-{id}"),
            ev::DonationExported {
                batch_id: "b1".into(),
                exported_at: Some(ts(base_time())),
            },
        )
        .await;
    }
    env.append(
        "scrub-6",
        ev::PersonalDataScrubbed {
            rule: ev::ScrubRule::Exported as i32,
            scrubbed_at: Some(ts(base_time())),
        },
    )
    .await;
    env.append(
        "deletion-2",
        ev::DonationCancelled {
            reason: "donor".into(),
        },
    )
    .await;
    env.append("payment-100004", booked(base_time(), "TXN-4"))
        .await;
    env.append_as(
        "moderation-7",
        ev::ManuallyFlagged {
            note: "check".into(),
        },
        foc("alice"),
    )
    .await;
    let (_p, rm) = project(&env).await;
    let found = |candidates: Vec<ledger::projection::scrub_selection::ScrubCandidate>| {
        candidates
            .into_iter()
            .map(|c| (c.donation_id, c.rule))
            .collect::<Vec<_>>()
    };
    let policy = [
        (1, "exported".to_owned()),
        (2, "cancelled_or_deleted".to_owned()),
        (3, "abandoned".to_owned()),
    ];
    let candidates = rm
        .scrub_candidates(abandoned_before, None, 100)
        .await
        .unwrap();
    assert_eq!(found(candidates), policy);
    let far = base_time() + chrono::Duration::days(365);
    let with_stale = rm
        .scrub_candidates(abandoned_before, Some(far), 100)
        .await
        .unwrap();
    let mut expected = policy.to_vec();
    expected.push((7, "stale_moderation".to_owned()));
    assert_eq!(found(with_stale), expected);
    let first_two = rm
        .scrub_candidates(abandoned_before, None, 2)
        .await
        .unwrap();
    assert_eq!(found(first_two), policy[..2]);
}

async fn scrub_blanks_personal_columns_and_keeps_the_rest(env: Env) {
    create_donation(&env, 1, "PPL").await;
    env.append("payment-100001", booked(base_time(), "TXN-1"))
        .await;
    create_donation(&env, 2, "BEZ").await;
    env.append(
        "donation-2",
        ev::CommentPublished {
            public_text: "Danke!".into(),
            display_name: "Jeroen".into(),
        },
    )
    .await;
    for id in [1, 2] {
        env.append(
            &format!("export-{id}"),
            ev::DonationExported {
                batch_id: "b1".into(),
                exported_at: Some(ts(base_time())),
            },
        )
        .await;
        env.append(
            &format!("scrub-{id}"),
            ev::PersonalDataScrubbed {
                rule: ev::ScrubRule::Exported as i32,
                scrubbed_at: Some(ts(base_time())),
            },
        )
        .await;
    }
    let (_p, rm) = project(&env).await;
    let blank = [
        "title",
        "first_name",
        "last_name",
        "company_name",
        "street",
        "postcode",
        "city",
        "country",
        "email",
    ];
    for id in [1u64, 2] {
        let d = row(&rm, "donation", id).await;
        for c in blank {
            assert_eq!(d[c], "", "{c} of donation {id}");
        }
        check(
            &d,
            &[
                ("is_scrubbed", "true"),
                ("scrub_rule", "exported"),
                ("scrubbed_at", "2026-11-01T10:00:00.000000Z"),
                ("salutation", "Herr"),
                ("donor_kind", "person"),
                ("wants_newsletter", "true"),
                ("wants_receipt", "true"),
                ("amount_cents", "1337"),
                ("campaign", "Test"),
                ("impression_count", "3"),
                ("is_exported", "true"),
            ],
        );
        let legacy = row(&rm, "legacy_spenden", id).await;
        check(
            &legacy,
            &[
                ("name", ""),
                ("email", ""),
                ("ort", ""),
                ("ueb_code", ""),
                ("is_scrubbed", "true"),
            ],
        );
    }
    // The private comment is gone, the public one stays.
    check(
        &row(&rm, "donation", 1).await,
        &[("comment", ""), ("payment_state", "booked")],
    );
    check(
        &row(&rm, "donation", 2).await,
        &[
            ("comment", "Danke!"),
            ("comment_is_public", "true"),
            ("comment_display_name", "Jeroen"),
        ],
    );
    check(
        &row(&rm, "payment", 100_001).await,
        &[
            ("transaction_id", ""),
            ("payer_id", ""),
            ("valuation_date", "2026-11-01T10:00:00.000000Z"),
            ("state", "booked"),
        ],
    );
    check(
        &row(&rm, "payment", 100_002).await,
        &[("iban", ""), ("bic", "")],
    );
    check(&row(&rm, "legacy_spenden", 1).await, &[("status", "B")]);
    check(&row(&rm, "legacy_spenden", 2).await, &[("status", "N")]);
}

async fn contribution_tracking_is_upserted_by_id_with_refused_changes_counted(env: Env) {
    let recorded = |id: u64, token: &str, fields: ev::ContributionTrackingFields| {
        ev::ContributionTrackingRecorded {
            contribution_tracking_id: id,
            allocation_token: token.into(),
            fields: Some(fields),
        }
    };
    // Repeated messages complete the row; a later value overwrites an earlier one.
    env.append(
        "contribution_tracking-10",
        recorded(
            10,
            "a1",
            ev::ContributionTrackingFields {
                amount: Some("35".into()),
                currency: Some("GBP".into()),
                utm_source: Some("B26_x.lp.dsk".into()),
                tracking_date: Some(ts(base_time())),
                ..Default::default()
            },
        ),
    )
    .await;
    env.append(
        "contribution_tracking-10",
        recorded(
            10,
            "a1",
            ev::ContributionTrackingFields {
                gateway: Some("adyen".into()),
                is_recurring: Some(true),
                screen_width: Some(1920),
                payment_method_id: Some(3),
                currency: Some("EUR".into()),
                ..Default::default()
            },
        ),
    )
    .await;
    // A link before any data: a thin row, filled later; the first contribution id wins.
    env.append(
        "contribution_tracking-11",
        ev::ContributionLinked {
            contribution_id: 500,
        },
    )
    .await;
    let first_pass_end = env
        .append(
            "contribution_tracking-11",
            recorded(
                11,
                "a2",
                ev::ContributionTrackingFields {
                    banner: Some("B26_banner".into()),
                    ..Default::default()
                },
            ),
        )
        .await;
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(2));
    p.run_once().await.unwrap();
    assert_eq!(
        rm.checkpoint("readmodel").await.unwrap(),
        Some(first_pass_end)
    );
    check(
        &row(&rm, "contribution_tracking", 11).await,
        &[
            ("contribution_id", "500"),
            ("banner", "B26_banner"),
            ("allocation_token", "a2"),
            ("gateway", "NULL"),
        ],
    );

    let change = env
        .append(
            "contribution_tracking-11",
            ev::ContributionLinked {
                contribution_id: 501,
            },
        )
        .await;
    env.append(
        "contribution_tracking-11",
        ev::ContributionLinked {
            contribution_id: 500,
        },
    )
    .await;
    // A second allocation of id 10 (different token): not merged, recorded.
    let collision = env
        .append(
            "contribution_tracking-10",
            recorded(
                10,
                "b9",
                ev::ContributionTrackingFields {
                    gateway: Some("paypal_ec".into()),
                    ..Default::default()
                },
            ),
        )
        .await;
    // A repeat without token is a legitimate repeat.
    env.append(
        "contribution_tracking-10",
        recorded(
            10,
            "",
            ev::ContributionTrackingFields {
                appeal: Some("JimmyQuote".into()),
                ..Default::default()
            },
        ),
    )
    .await;
    p.run_once().await.unwrap();

    let ct10 = row(&rm, "contribution_tracking", 10).await;
    // NUMERIC(20,3) in PostgreSQL, DECIMAL(20,3) in MariaDB, the decimal text in SQLite.
    let amount = if matches!(env.db, Db::Postgres | Db::Mariadb) {
        "35.000"
    } else {
        "35"
    };
    check(
        &ct10,
        &[
            ("contribution_id", "NULL"),
            ("allocation_token", "a1"),
            ("amount", amount),
            ("currency", "EUR"),
            ("utm_source", "B26_x.lp.dsk"),
            ("gateway", "adyen"),
            ("appeal", "JimmyQuote"),
            ("is_recurring", "true"),
            ("screen_width", "1920"),
            ("payment_method_id", "3"),
            ("tracking_date", "2026-11-01T10:00:00.000000Z"),
            ("banner", "NULL"),
        ],
    );
    check(
        &row(&rm, "contribution_tracking", 11).await,
        &[("contribution_id", "500")],
    );
    let dump = rm.dump().await.unwrap();
    let conflicts = &dump["contribution_tracking_conflict"];
    assert_eq!(conflicts.len(), 2, "{conflicts:?}");
    assert!(
        conflicts[0].starts_with(&format!(
            "{change} | 11 | contribution_id_change | 500 | 501 | "
        )),
        "{conflicts:?}"
    );
    assert!(
        conflicts[1].starts_with(&format!(
            "{collision} | 10 | allocation_collision | a1 | b9 | "
        )),
        "{conflicts:?}"
    );
    let stats = p.stats().snapshot();
    assert_eq!(stats.contribution_id_conflicts_total, 1);
    assert_eq!(stats.allocation_collisions_total, 1);
    assert_eq!(stats.lag_positions, 0);
}

async fn an_event_that_cannot_be_applied_stops_the_projector_until_skipped(env: Env) {
    create_donation(&env, 1, "BEZ").await;
    let bad = env
        .append_raw("donation-1", "DonationVanished.v1", vec![1, 2, 3])
        .await;
    env.append(
        "export-1",
        ev::DonationExported {
            batch_id: "b".into(),
            exported_at: None,
        },
    )
    .await;
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), stopping(100));
    let err = p.run_once().await.unwrap_err();
    match &err {
        ProjectionError::EventRejected {
            position,
            stream,
            event_type,
            ..
        } => {
            assert_eq!(
                (*position, stream.as_str(), event_type.as_str()),
                (bad, "donation-1", "DonationVanished.v1")
            );
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("position {bad}")) && message.contains("DonationVanished.v1"),
        "{message}"
    );
    // Everything before the bad event was committed; nothing after it.
    assert_eq!(rm.checkpoint("readmodel").await.unwrap(), Some(bad - 1));
    check(&row(&rm, "donation", 1).await, &[("is_exported", "false")]);
    // Still stuck on a second run: never a silent skip.
    assert!(p.run_once().await.is_err());

    assert!(matches!(
        p.skip_event(bad, "", "alice").await,
        Err(ProjectionError::SkipRefused { .. })
    ));
    assert!(matches!(
        p.skip_event(bad + 100, "typo", "alice").await,
        Err(ProjectionError::SkipRefused { .. })
    ));
    p.skip_event(bad, "test event written by mistake", "alice")
        .await
        .unwrap();
    assert!(matches!(
        p.skip_event(bad, "again", "alice").await,
        Err(ProjectionError::SkipRefused { .. })
    ));
    p.run_once().await.unwrap();
    check(&row(&rm, "donation", 1).await, &[("is_exported", "true")]);
    let dump = rm.dump().await.unwrap();
    let skipped = &dump["projector_skipped_event"];
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].starts_with(&format!("readmodel | {bad} | donation-1 | DonationVanished.v1 | test event written by mistake | alice | ")));
    assert_eq!(p.stats().snapshot().skipped_total, 1);
    // A rebuild honours the skip.
    let report = ledger::projection::rebuild(env.log(), &env.url, stopping(100))
        .await
        .unwrap();
    assert_eq!(report.checkpoint, rm.checkpoint("readmodel").await.unwrap());
    let rm = ReadModel::connect(&env.url).await.unwrap();
    check(&row(&rm, "donation", 1).await, &[("is_exported", "true")]);
}

async fn a_payment_event_for_an_unknown_payment_stops_the_projector(env: Env) {
    create_donation(&env, 1, "MCP").await;
    let bad = env.append("payment-999", booked(base_time(), "T")).await;
    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), stopping(100));
    match p.run_once().await.unwrap_err() {
        ProjectionError::EventRejected {
            position,
            stream,
            event_type,
            reason,
            ..
        } => {
            assert_eq!(
                (position, stream.as_str(), event_type.as_str()),
                (bad, "payment-999", "PaymentBooked.v1")
            );
            assert!(reason.contains("unknown payment 999"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rm.checkpoint("readmodel").await.unwrap(), Some(bad - 1));
    assert!(p
        .stats()
        .snapshot()
        .last_error
        .unwrap()
        .contains("payment-999"));
}

/// The quarantine rows of the dump: `position | stream | event_type | reason`.
fn quarantined(dump: &ledger::projection::TableDump) -> Vec<String> {
    dump["projector_skipped_event"]
        .iter()
        .filter(|r| r.contains(" | quarantine | "))
        .map(|r| {
            let cols: Vec<&str> = r.split(" | ").collect();
            cols[1..5].join(" | ")
        })
        .collect()
}

async fn unprojectable_events_from_another_writer_are_quarantined_and_the_projector_goes_on(
    env: Env,
) {
    create_donation(&env, 1, "BEZ").await;
    // Written straight into the log, bypassing the intake, as another writer could: ids and
    // counts no column holds, a payload that does not decode, an actor id with a NUL.
    let mut created = donation_created(2, 100_002, "UEB", env.next_time());
    created.tracking = Some(ev::Tracking {
        contribution_tracking_id: 1 << 63,
        impression_count: u32::MAX,
        ..Default::default()
    });
    let too_big = env.append("donation-2", created).await;
    let garbage = env
        .append_raw("donation-1", "DonationVanished.v1", vec![1, 2, 3])
        .await;
    let nul = env
        .append_as(
            "export-1",
            ev::DonationExported {
                batch_id: "b".into(),
                exported_at: None,
            },
            Actor {
                kind: ActorKind::Frontend,
                id: "x\u{0}y".into(),
            },
        )
        .await;
    let after = env
        .append(
            "moderation-1",
            ev::ManuallyFlagged {
                note: "check".into(),
            },
        )
        .await;

    let rm = env.read_model().await;
    let p = Projector::with_config(env.log(), rm.clone(), config(100));
    p.run_once().await.unwrap();
    assert_eq!(rm.checkpoint("readmodel").await.unwrap(), Some(after));
    check(
        &row(&rm, "donation", 1).await,
        &[("moderation_state", "open"), ("is_exported", "false")],
    );
    assert!(rm.row("donation", 2).await.unwrap().is_none());
    let stats = p.stats().snapshot();
    assert_eq!(stats.quarantined_total, 3);
    assert_eq!(stats.last_error, None);
    let dump = rm.dump().await.unwrap();
    let q = quarantined(&dump);
    assert_eq!(q.len(), 3, "{q:?}");
    assert!(
        q[0].starts_with(&format!(
            "{too_big} | donation-2 | DonationCreated.v2 | breaks the admission rule"
        )),
        "{q:?}"
    );
    assert!(
        q[0].contains("tracking.impression_count")
            && q[0].contains("tracking.contribution_tracking_id"),
        "{q:?}"
    );
    assert!(
        q[1].starts_with(&format!(
            "{garbage} | donation-1 | DonationVanished.v1 | cannot decode"
        )),
        "{q:?}"
    );
    assert!(
        q[2].starts_with(&format!(
            "{nul} | export-1 | DonationExported.v1 | breaks the admission rule: metadata.actor.id"
        )),
        "{q:?}"
    );

    // Nothing changes on a second run; verify lists the quarantined events.
    p.run_once().await.unwrap();
    assert_eq!(rm.dump().await.unwrap(), dump);
    let report = verify(&env).await;
    assert!(report.is_identical(), "{:?}", report.differing_tables());
    let positions: Vec<u64> = report.quarantined.iter().map(|q| q.position).collect();
    assert_eq!(positions, [too_big, garbage, nul]);

    // Replaying one after a "fix" lifts its quarantine; the rebuild that replays it finds it
    // still unprojectable and quarantines it again, the others carried over.
    assert!(rm.release_quarantined("readmodel", garbage).await.unwrap());
    assert!(!rm.release_quarantined("readmodel", garbage).await.unwrap());
    assert_eq!(quarantined(&rm.dump().await.unwrap()).len(), 2);
    ledger::projection::rebuild(env.log(), &env.url, config(100))
        .await
        .unwrap();
    let rm = ReadModel::connect(&env.url).await.unwrap();
    let q = quarantined(&rm.dump().await.unwrap());
    assert_eq!(q.len(), 3, "{q:?}");
    check(
        &row(&rm, "donation", 1).await,
        &[("moderation_state", "open")],
    );
}

async fn a_value_the_database_refuses_is_narrowed_to_its_event_and_quarantined(env: Env) {
    // A rule a DBA added to the read model that the events know nothing of.
    let rm = env.read_model().await;
    match env.db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.url).await.unwrap();
            for op in ["INSERT", "UPDATE"] {
                sqlx::query(&format!(
                    "CREATE TRIGGER dba_rule_{op} BEFORE {op} ON donation \
                     WHEN NEW.campaign = 'refused-by-dba' \
                     BEGIN SELECT RAISE(ABORT, 'campaign refused by the DBA'); END"
                ))
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&env.url).await.unwrap();
            sqlx::query(
                "ALTER TABLE readmodel.donation ADD CONSTRAINT dba_rule \
                 CHECK (campaign <> 'refused-by-dba')",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        Db::Mariadb => {
            let pool = sqlx::MySqlPool::connect(&env.url).await.unwrap();
            sqlx::query(
                "ALTER TABLE donation ADD CONSTRAINT dba_rule CHECK (campaign <> 'refused-by-dba')",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
    }
    let mut refused = 0;
    for id in 1..=6u64 {
        let pid = id + 100_000;
        env.append(&format!("payment-{pid}"), payment_initiated(pid, id, "UEB"))
            .await;
        let mut created = donation_created(id, pid, "UEB", env.next_time());
        if id == 4 {
            created.tracking.as_mut().unwrap().campaign = "refused-by-dba".into();
        }
        let position = env.append(&format!("donation-{id}"), created).await;
        if id == 4 {
            refused = position;
        }
    }
    let head = env.log().head_position().await.unwrap();
    let p = Projector::with_config(env.log(), rm.clone(), config(100));
    p.run_once().await.unwrap();
    assert_eq!(rm.checkpoint("readmodel").await.unwrap(), head);
    for id in [1, 2, 3, 5, 6] {
        check(&row(&rm, "donation", id).await, &[("campaign", "Test")]);
    }
    assert!(rm.row("donation", 4).await.unwrap().is_none());
    let q = quarantined(&rm.dump().await.unwrap());
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].starts_with(&format!("{refused} | donation-4 | DonationCreated.v2 | read-model database error (transient: false, data: true)")),
        "{q:?}"
    );
    assert_eq!(p.stats().snapshot().quarantined_total, 1);
}

/// A PostgreSQL SQLSTATE is classified as PostgreSQL's, never read as a SQLite result code:
/// `22021` (a NUL or an invalid byte in text) masked to its low byte is SQLite's BUSY (5),
/// which made the projector retry an unprojectable event forever.
#[tokio::test]
async fn database_errors_are_classified_by_their_own_dialect() {
    use ledger::projection::{classify, DbFailure};
    let Some(pg) = Env::new(Db::Postgres).await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let nul = sqlx::query("SELECT convert_from('\\x00'::bytea, 'UTF8')")
        .execute(&pool)
        .await
        .unwrap_err();
    let code = nul
        .as_database_error()
        .unwrap()
        .code()
        .unwrap()
        .into_owned();
    assert_eq!(code, "22021");
    assert_eq!(code.parse::<i32>().unwrap() & 0xff, 5, "SQLite's BUSY");
    assert_eq!(classify(&nul), DbFailure::Data);
    let missing = sqlx::query("SELECT * FROM no_such_table")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(classify(&missing), DbFailure::Other);
    pool.close().await;

    let lite = Env::new(Db::Sqlite).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", lite.url))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (id INTEGER CHECK (id >= 0))")
        .execute(&pool)
        .await
        .unwrap();
    let check = sqlx::query("INSERT INTO t VALUES (-1)")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(classify(&check), DbFailure::Data);
    let missing = sqlx::query("SELECT * FROM no_such_table")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(classify(&missing), DbFailure::Other);
}

/// MariaDB's errors are classified by their SQLSTATE and number: a CHECK violation (4025,
/// SQLSTATE 23000) and a value out of range (1264, 22003) are the data's doing, a missing table
/// (1146, 42S02) is not, and a lock wait that timed out (1205, HY000) is worth retrying.
#[tokio::test]
async fn mariadb_errors_are_classified_by_their_own_codes() {
    use ledger::projection::{classify, DbFailure};
    let Some(maria) = Env::new(Db::Mariadb).await else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&maria.url).await.unwrap();
    sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY CHECK (id >= 0), n TINYINT)")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET SESSION sql_mode = 'STRICT_ALL_TABLES', innodb_lock_wait_timeout = 1")
        .execute(&mut *conn)
        .await
        .unwrap();
    let check = sqlx::query("INSERT INTO t (id) VALUES (-1)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(classify(&check), DbFailure::Data, "{check}");
    let range = sqlx::query("INSERT INTO t (id, n) VALUES (1, 1000)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(classify(&range), DbFailure::Data, "{range}");
    let missing = sqlx::query("SELECT * FROM no_such_table")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(classify(&missing), DbFailure::Other, "{missing}");

    sqlx::query("INSERT INTO t (id) VALUES (2)")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM t WHERE id = 2 FOR UPDATE")
        .fetch_all(&mut *holder)
        .await
        .unwrap();
    let waited = sqlx::query("UPDATE t SET n = 1 WHERE id = 2")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(classify(&waited), DbFailure::Transient, "{waited}");
    holder.rollback().await.unwrap();
    drop(conn);
    pool.close().await;
}

async fn an_event_whose_sealed_personal_data_does_not_open_is_quarantined(env: Env) {
    let vault = ledger::config::StorageArgs::in_dir(env.dir.path())
        .open_vault()
        .await
        .unwrap();
    // Donation 1 sealed as the intake seals it; donation 2's sealed unit altered (as a
    // foreign writer or a tampered log would have it).
    let mut events = Vec::new();
    for id in [1, 2] {
        let key = vault.keys().get_or_create(id).await.unwrap();
        let mut event: ledger::domain::DomainEvent =
            donation_created(id, id + 100_000, "UEB", env.next_time()).into();
        ledger::privacy::seal_with(std::slice::from_mut(&mut event), id, &key);
        events.push(event);
    }
    let (one, two) = (events.remove(0), events.remove(0));
    let ledger::domain::DomainEvent::DonationCreated(mut two) = two else {
        unreachable!()
    };
    two.personal_sealed.as_mut().unwrap().ciphertext[0] ^= 0xff;
    env.append("payment-100001", payment_initiated(100_001, 1, "UEB"))
        .await;
    env.append("donation-1", one).await;
    env.append("payment-100002", payment_initiated(100_002, 2, "UEB"))
        .await;
    let altered = env.append("donation-2", two).await;
    let after = env
        .append(
            "export-1",
            ev::DonationExported {
                batch_id: "b".into(),
                exported_at: None,
            },
        )
        .await;

    let rm = env.read_model().await;
    let config = ProjectorConfig {
        vault: Some(vault.clone()),
        ..config(100)
    };
    let p = Projector::with_config(env.log(), rm.clone(), config);
    p.run_once().await.unwrap();
    assert_eq!(rm.checkpoint("readmodel").await.unwrap(), Some(after));
    check(
        &row(&rm, "donation", 1).await,
        &[("first_name", "Jeroen"), ("is_exported", "true")],
    );
    assert!(rm.row("donation", 2).await.unwrap().is_none());
    let q = quarantined(&rm.dump().await.unwrap());
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].starts_with(&format!(
            "{altered} | donation-2 | DonationCreated.v2 | cannot decode: sealed personal data cannot be opened"
        )),
        "{q:?}"
    );
}

/// The status console's figures (`ReadModel::overview`) are the rows' own states, counted in
/// each dialect.
async fn the_overview_counts_each_state_as_the_rows_hold_it(env: Env) {
    workload(&env, 1, 80, 11).await;
    let (_, rm) = project(&env).await;
    let dump = rm.dump().await.unwrap();
    let ids: Vec<u64> = dump["donation"]
        .iter()
        .map(|r| r.split(" | ").next().unwrap().parse().unwrap())
        .collect();
    assert!(ids.len() >= 80);
    let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    for id in &ids {
        let r = row(&rm, "donation", *id).await;
        for column in [
            "payment_state",
            "deletion_state",
            "moderation_state",
            "payment_method",
            "is_exported",
            "is_scrubbed",
        ] {
            let value = match r[column].as_str() {
                "1" | "true" => "true".to_owned(),
                "0" | "false" => "false".to_owned(),
                other => other.to_owned(),
            };
            *expected.entry((column.to_owned(), value)).or_default() += 1;
        }
    }
    let overview = rm.overview().await.unwrap();
    let shown: BTreeMap<(String, String), i64> = overview
        .states
        .iter()
        .filter(|s| s.table == "donation" && s.column != "comment_is_public")
        .filter(|s| s.rows > 0)
        .map(|s| ((s.column.to_owned(), s.value.clone()), s.rows))
        .collect();
    assert_eq!(shown, expected);
    assert!(
        expected.len() > 8,
        "the workload should reach several states: {expected:?}"
    );
    let head = env.log().head_position().await.unwrap().unwrap();
    assert_eq!(overview.checkpoints.len(), 1);
    assert_eq!(overview.checkpoints[0].position, Some(head as i64));
    assert_eq!(
        overview.count("contribution_tracking", "contribution_id", "linked")
            + overview.count("contribution_tracking", "contribution_id", "not linked"),
        dump["contribution_tracking"].len() as i64
    );
}
