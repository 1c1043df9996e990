//! The membership change log on SQLite, PostgreSQL and MariaDB: one `membership_event` row per
//! event of an application's streams with its actor, the `change_log` view answering for
//! donations and memberships at once, and a rebuild and `verify` that find the same rows.

use crate::membership_rows::execute;
use crate::projection_support;

use ledger::projection::{Projector, ReadModel, TableDump};
use ledger::proto::events as ev;
use ledger::store::{Actor, ActorKind};
use projection_support::*;

read_model_conformance!(
    a_membership_history_has_one_change_log_row_per_event_with_its_actor,
    the_change_log_view_answers_for_donations_and_memberships,
    a_rebuild_and_verify_agree_on_the_membership_change_log,
);

pub(crate) fn frontend() -> Actor {
    Actor {
        kind: ActorKind::Frontend,
        id: "spenden.wikimedia.de".into(),
    }
}

/// A confirmed application of 10 EUR a month by direct debit, without personal data.
fn applied(id: u64) -> ev::MembershipApplied {
    ev::MembershipApplied {
        membership_id: id,
        created_at: Some(ts(base_time())),
        applicant_kind: ev::ApplicantKind::Person as i32,
        membership_type: ev::MembershipType::Active as i32,
        fee: Some(ev::Money {
            cents: 1000,
            currency: "EUR".into(),
        }),
        interval_months: 1,
        payment_id: 7000 + id,
        payment_method: ev::PaymentMethod::DirectDebit as i32,
        confirmed: true,
        ..Default::default()
    }
}

/// Application `id`'s history through all five streams, each event by the actor that makes
/// it: the form applies, moderation raises a reason, alice flags and bob approves, the form
/// cancels, alice restores, the export and the scrub job run. Returns (stream, event type
/// prefix, actor kind, actor id) per event, in order.
pub(crate) async fn history(
    env: &Env,
    id: u64,
) -> Vec<(String, &'static str, &'static str, String)> {
    let s = |category: &str| format!("{category}-{id}");
    env.append_as(&s("membership"), applied(id), frontend())
        .await;
    env.append_as(
        &s("membership_moderation"),
        ev::ModerationReasonsRaised {
            reasons: vec![ev::ModerationReason {
                identifier: ev::ModerationIdentifier::MembershipFeeTooHigh as i32,
                source: "amount".into(),
            }],
        },
        frontend(),
    )
    .await;
    env.append_as(
        &s("membership_moderation"),
        ev::ManuallyFlagged {
            note: "check".into(),
        },
        foc("alice"),
    )
    .await;
    env.append_as(
        &s("membership_moderation"),
        ev::ModerationApproved::default(),
        foc("bob"),
    )
    .await;
    env.append_as(
        &s("membership_cancellation"),
        ev::MembershipCancelled {
            reason: "moved away".into(),
        },
        frontend(),
    )
    .await;
    env.append_as(
        &s("membership_cancellation"),
        ev::MembershipRestored {
            reason: "mistake".into(),
        },
        foc("alice"),
    )
    .await;
    env.append(
        &s("membership_export"),
        ev::MembershipExported {
            batch_id: "m-1".into(),
            exported_at: Some(ts(base_time())),
        },
    )
    .await;
    env.append(
        &s("membership_scrub"),
        ev::PersonalDataScrubbed {
            rule: ev::ScrubRule::Exported as i32,
            scrubbed_at: Some(ts(base_time())),
        },
    )
    .await;
    let web = ("frontend", "spenden.wikimedia.de".to_owned());
    let user = |name: &str| ("foc_user", name.to_owned());
    let job = ("system", "test".to_owned());
    [
        ("membership", "MembershipApplied.", web.clone()),
        (
            "membership_moderation",
            "ModerationReasonsRaised.",
            web.clone(),
        ),
        ("membership_moderation", "ManuallyFlagged.", user("alice")),
        ("membership_moderation", "ModerationApproved.", user("bob")),
        ("membership_cancellation", "MembershipCancelled.", web),
        (
            "membership_cancellation",
            "MembershipRestored.",
            user("alice"),
        ),
        ("membership_export", "MembershipExported.", job.clone()),
        ("membership_scrub", "PersonalDataScrubbed.", job),
    ]
    .into_iter()
    .map(|(category, event, (kind, actor))| (s(category), event, kind, actor))
    .collect()
}

/// The rows of `table` in `dump`, each split into its rendered columns.
pub(crate) fn rows(dump: &TableDump, table: &str) -> Vec<Vec<String>> {
    dump[table]
        .iter()
        .map(|r| r.split(" | ").map(str::to_owned).collect())
        .collect()
}

async fn a_membership_history_has_one_change_log_row_per_event_with_its_actor(env: Env) {
    // A donation with the same id: its rows stay in `donation_event`, the application's in
    // `membership_event`.
    create_donation(&env, 1, "BEZ").await;
    let expected = history(&env, 1).await;
    let rm = env.read_model().await;
    // Small batches: the application's events are spread over several transactions.
    let p = Projector::with_config(env.log(), rm.clone(), config(3));
    p.run_once().await.unwrap();
    assert_eq!(p.stats().snapshot().quarantined_total, 0);
    let dump = rm.dump().await.unwrap();
    let log = rows(&dump, "membership_event");
    assert_eq!(log.len(), expected.len(), "{log:?}");
    let mut last_position = 0;
    for (row, (stream, event, kind, actor)) in log.iter().zip(&expected) {
        // membership_id, position, stream, event_type, actor_kind, actor_id, occurred_at
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
    assert!(donation_log.iter().all(|r| !r[2].starts_with("membership")));
}

async fn the_change_log_view_answers_for_donations_and_memberships(env: Env) {
    create_donation(&env, 1, "BEZ").await;
    env.append_as(
        "moderation-1",
        ev::ManuallyFlagged {
            note: "donor asked".into(),
        },
        foc("alice"),
    )
    .await;
    history(&env, 2).await;
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(100))
        .run_once()
        .await
        .unwrap();
    let dump = rm.dump().await.unwrap();
    let view = rows(&dump, "change_log");
    let donation_log = rows(&dump, "donation_event");
    let membership_log = rows(&dump, "membership_event");
    // Every row of both tables, in (context, subject_id, position) order, `context` first.
    assert_eq!(view.len(), donation_log.len() + membership_log.len());
    let arm = |context: &str, log: &[Vec<String>]| -> Vec<Vec<String>> {
        log.iter()
            .map(|r| {
                let mut row = vec![context.to_owned()];
                row.extend(r.iter().cloned());
                row
            })
            .collect()
    };
    let mut both = arm("donation", &donation_log);
    both.extend(arm("membership", &membership_log));
    assert_eq!(view, both);

    // What alice did, everywhere: the docs' "Who did what" filter.
    let alice: Vec<String> = view
        .iter()
        .filter(|r| r[5] == "foc_user" && r[6] == "alice")
        .map(|r| format!("{} {} {}", r[0], r[1], r[3]))
        .collect();
    assert_eq!(
        alice,
        [
            "donation 1 moderation-1",
            "membership 2 membership_moderation-2",
            "membership 2 membership_cancellation-2",
        ]
    );
}

async fn a_rebuild_and_verify_agree_on_the_membership_change_log(env: Env) {
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
    assert_eq!(live["membership_event"].len(), 4 * 8);

    let report = verify(&env).await;
    assert!(report.is_identical(), "{:?}", report.differing_tables());
    let compared: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    for table in ["membership_event", "change_log"] {
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
    execute(&env, "DELETE FROM membership_event WHERE membership_id = 3").await;
    let report = verify(&env).await;
    let differing = report.differing_tables();
    assert!(differing.contains(&"membership_event"), "{differing:?}");
    assert!(differing.contains(&"change_log"), "{differing:?}");
}
