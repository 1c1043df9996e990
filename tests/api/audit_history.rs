//! Audit: a donation that went through creation, moderation, approval, booking, export and
//! scrub shows every step with its actor; the state as of each step is what it was then; after
//! the scrub no output shows the donor's personal data. The same for a membership application
//! (`ledger history membership`, `ledger state membership`, its lines in `ledger export-audit`).
//!
//! Just over 600 lines: the two lives (a donation's, an application's) written event by event,
//! as the intake would, are most of the file.
use crate::support;

use chrono::{DateTime, Duration, Utc};
use ledger::audit::{self, AsOf};
use ledger::domain::{streams, DomainEvent};
use ledger::privacy::{KeyStore, Vault};
use ledger::proto::events as ev;
use ledger::store::{Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata};
use support::log_backend::{LedgerData, LogBackend};
use uuid::Uuid;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0, 0).unwrap() + Duration::minutes(minutes)
}

async fn append(
    log: &dyn EventLog,
    vault: &Vault,
    stream: &str,
    minutes: i64,
    actor: (ActorKind, &str),
    event: DomainEvent,
) {
    let mut events = vec![event];
    vault.seal(1, &mut events).await.unwrap();
    let e = &events[0];
    let mut metadata = Metadata::new(
        Actor {
            kind: actor.0,
            id: actor.1.into(),
        },
        "audit-test",
        Uuid::new_v4(),
    );
    metadata.occurred_at = at(minutes);
    log.append(
        stream,
        ExpectedRevision::Any,
        vec![EventData {
            id: Uuid::now_v7(),
            event_type: e.event_type().into(),
            payload: e.encode(),
            metadata: metadata.into(),
        }],
    )
    .await
    .unwrap();
}

/// Writes the life of donation 1 (PayPal, 1500 EUR, moderated, approved, booked, exported,
/// scrubbed) into the data directory, as the intake would.
async fn write_life(data: &LedgerData, scrub: bool) {
    let log = data.open_log().await;
    let vault = Vault::new(
        KeyStore::open_sqlite(&data.path().join("keys.sqlite"))
            .await
            .unwrap(),
    );
    let form = (ActorKind::Frontend, "spenden.example.org");
    let foc = (ActorKind::FocUser, "foc:alice");
    let paypal = (ActorKind::Provider, "paypal");
    let created = ev::DonationCreated {
        donation_id: 1,
        created_at: Some(ledger::domain::types::to_timestamp(at(0))),
        amount: Some(ev::Money {
            cents: 150_000,
            currency: "EUR".into(),
        }),
        interval_months: 0,
        payment_id: 11,
        payment_method: ev::PaymentMethod::DirectDebit as i32,
        donor: Some(ev::DonorPublic {
            kind: ev::DonorKind::Person as i32,
            salutation: "Frau".into(),
            wants_newsletter: true,
            wants_receipt: true,
        }),
        personal: Some(ev::PersonalData {
            first_name: "Hedwig".into(),
            last_name: "Quastenflosser".into(),
            email: "hedwig.quastenflosser@example.org".into(),
            street: "Tulpenweg 7".into(),
            postcode: "12345".into(),
            city: "Berlin".into(),
            ..Default::default()
        }),
        tracking: Some(ev::Tracking {
            campaign: "c1".into(),
            keyword: "k1".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    append(
        &*log,
        &vault,
        &streams::donation(1),
        0,
        form,
        created.into(),
    )
    .await;
    let initiated = ev::PaymentInitiated {
        payment_id: 11,
        donation_id: 1,
        method: ev::PaymentMethod::DirectDebit as i32,
        amount: Some(ev::Money {
            cents: 150_000,
            currency: "EUR".into(),
        }),
        bank: Some(ev::BankData {
            iban: "DE02120300000000202051".into(),
            bic: "BYLADEM1001".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    append(
        &*log,
        &vault,
        &streams::payment(11),
        0,
        form,
        initiated.into(),
    )
    .await;
    let reasons = ev::ModerationReasonsRaised {
        reasons: vec![ev::ModerationReason {
            identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
            source: "amount".into(),
        }],
    };
    append(
        &*log,
        &vault,
        &streams::moderation(1),
        0,
        (ActorKind::System, "moderation-policy"),
        reasons.into(),
    )
    .await;
    append(
        &*log,
        &vault,
        &streams::moderation(1),
        10,
        foc,
        ev::ModerationApproved {
            as_anonymous: false,
        }
        .into(),
    )
    .await;
    let _ = paypal;
    append(
        &*log,
        &vault,
        &streams::export(1),
        30,
        (ActorKind::System, "export-batch"),
        ev::DonationExported {
            batch_id: "2026-01-01".into(),
            exported_at: Some(ledger::domain::types::to_timestamp(at(30))),
        }
        .into(),
    )
    .await;
    if scrub {
        append(
            &*log,
            &vault,
            &streams::scrub(1),
            40,
            (ActorKind::System, "scrub"),
            ev::PersonalDataScrubbed {
                rule: ev::ScrubRule::Exported as i32,
                scrubbed_at: Some(ledger::domain::types::to_timestamp(at(40))),
            }
            .into(),
        )
        .await;
        vault.destroy(&[1]).await.unwrap();
    }
}

// The audit on both event-log backends: the embedded log and KurrentDB.
crate::on_both_logs!(
    the_history_shows_every_step_with_its_actor_and_changes,
    the_state_as_of_each_step_is_what_it_was_then,
    after_a_scrub_no_history_or_state_output_shows_personal_data,
    a_membership_history_shows_every_step_and_its_state_as_of_each_time,
    after_a_membership_scrub_no_history_or_state_output_shows_personal_data,
    the_history_of_a_membership_that_does_not_exist_names_it,
    the_audit_export_of_a_period_holds_the_membership_events_with_their_changes,
);

async fn the_history_shows_every_step_with_its_actor_and_changes(backend: LogBackend) {
    let data = LedgerData::new(backend);
    write_life(&data, false).await;
    let log = data.open_log().await;
    let vault = Vault::new(
        KeyStore::open_sqlite(&data.path().join("keys.sqlite"))
            .await
            .unwrap(),
    );
    let steps = audit::load_donation(&*log, &vault, 1).await.unwrap();
    let timeline = audit::timeline(&steps);
    let kinds: Vec<(&str, &str)> = timeline
        .iter()
        .map(|e| (e.event_type.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("DonationCreated.v2", "spenden.example.org"),
            ("PaymentInitiated.v1", "spenden.example.org"),
            ("ModerationReasonsRaised.v1", "moderation-policy"),
            ("ModerationApproved.v1", "foc:alice"),
            ("DonationExported.v1", "export-batch"),
        ]
    );
    let change = |i: usize, field: &str| {
        timeline[i]
            .changes
            .iter()
            .find(|c| c.field == field)
            .cloned()
    };
    assert_eq!(change(0, "last_name").unwrap().after, "Quastenflosser");
    assert_eq!(change(2, "moderation_state").unwrap().after, "open");
    assert_eq!(change(2, "legacy_status").unwrap().after, "P");
    let approved = change(3, "moderation_state").unwrap();
    assert_eq!(
        (approved.before.as_str(), approved.after.as_str()),
        ("open", "approved")
    );
    assert_eq!(change(3, "legacy_status").unwrap().after, "N");
    assert_eq!(change(4, "is_exported").unwrap().after, "true");
    assert!(
        change(4, "last_name").is_none(),
        "export changes no donor field"
    );
}

async fn the_state_as_of_each_step_is_what_it_was_then(backend: LogBackend) {
    let data = LedgerData::new(backend);
    write_life(&data, true).await;
    let log = data.open_log().await;
    let vault = Vault::new(
        KeyStore::open_sqlite(&data.path().join("keys.sqlite"))
            .await
            .unwrap(),
    );
    let steps = audit::load_donation(&*log, &vault, 1).await.unwrap();
    let state = |m: i64| audit::fields(&audit::state_as_of(&steps, AsOf::Time(at(m))));
    assert_eq!(state(5)["moderation_state"], "open");
    assert_eq!(state(5)["legacy_status"], "P");
    assert_eq!(state(15)["moderation_state"], "approved");
    assert_eq!(state(15)["is_exported"], "false");
    assert_eq!(state(35)["is_exported"], "true");
    assert_eq!(state(35)["is_scrubbed"], "false");
    assert_eq!(state(45)["is_scrubbed"], "true");
    assert_eq!(
        state(45)["salutation"],
        "Frau",
        "salutation survives a scrub"
    );
    assert_eq!(state(45)["last_name"], audit::SCRUBBED);
    let before_anything = audit::state_as_of(&steps, AsOf::Time(at(-1)));
    assert!(before_anything.donation.id.is_none());
    let by_position = audit::fields(&audit::state_as_of(
        &steps,
        AsOf::Position(steps[2].recorded.position),
    ));
    assert_eq!(by_position["moderation_state"], "open");
}

async fn after_a_scrub_no_history_or_state_output_shows_personal_data(backend: LogBackend) {
    let data = LedgerData::new(backend);
    write_life(&data, true).await;
    let mut outputs = Vec::new();
    for args in [
        vec!["history", "donation", "1"],
        vec!["history", "donation", "1", "--json"],
        vec!["history", "payment", "11"],
        vec!["state", "donation", "1"],
        vec![
            "state",
            "donation",
            "1",
            "--json",
            "--as-of",
            "2026-01-01T00:05:00Z",
        ],
    ] {
        let out = data.ledger().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push((args, out.stdout, out.stderr));
    }
    for (args, stdout, stderr) in &outputs {
        for needle in [
            "Quastenflosser",
            "hedwig.quastenflosser@example.org",
            "DE02120300000000202051",
            "Tulpenweg",
        ] {
            assert!(
                !support::contains(stdout, needle.as_bytes()),
                "{needle} in stdout of {args:?}"
            );
            assert!(
                !support::contains(stderr, needle.as_bytes()),
                "{needle} in stderr of {args:?}"
            );
        }
    }
    let history = String::from_utf8_lossy(&outputs[0].1);
    assert!(history.contains("PersonalDataScrubbed.v1"));
    assert!(history.contains(audit::SCRUBBED));
    assert!(history.contains("foc:alice"));
}

/// Writes the life of membership application 1 (applied, fee too high, cancelled while
/// moderated, approved, exported at minute 40, scrubbed at 50 when `scrub`) as the intake
/// would, sealed with the application's own key.
async fn write_membership_life(data: &LedgerData, scrub: bool) {
    use ledger::domain::membership::MembershipCategory as C;
    let log = data.open_log().await;
    let vault = Vault::new(
        KeyStore::open_sqlite(&data.path().join("keys.sqlite"))
            .await
            .unwrap(),
    );
    let key = ledger::privacy::membership_key_id(1);
    let applied = ev::MembershipApplied {
        membership_id: 1,
        created_at: Some(ledger::domain::types::to_timestamp(at(0))),
        applicant_kind: ev::ApplicantKind::Person as i32,
        applicant: Some(ev::ApplicantData {
            salutation: "Frau".into(),
            first_name: "Hedwig".into(),
            last_name: "Quastenflosser".into(),
            street: "Tulpenweg 7".into(),
            postcode: "12345".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            email: "hedwig.quastenflosser@example.org".into(),
            ..Default::default()
        }),
        membership_type: ev::MembershipType::Active as i32,
        fee: Some(ev::Money {
            cents: 10_000,
            currency: "EUR".into(),
        }),
        interval_months: 1,
        payment_id: 11,
        payment_method: ev::PaymentMethod::DirectDebit as i32,
        bank: Some(ev::BankData {
            iban: "DE02120300000000202051".into(),
            ..Default::default()
        }),
        confirmed: true,
        ..Default::default()
    };
    let fee_too_high = ev::ModerationReasonsRaised {
        reasons: vec![ev::ModerationReason {
            identifier: ev::ModerationIdentifier::MembershipFeeTooHigh as i32,
            source: "amount".into(),
        }],
    };
    let foc = (ActorKind::FocUser, "foc:alice");
    let system = (ActorKind::System, "ledger");
    let mut life: Vec<(C, i64, (ActorKind, &str), DomainEvent)> = vec![
        (
            C::Application,
            0,
            (ActorKind::Frontend, "spenden.example.org"),
            applied.into(),
        ),
        (C::Moderation, 0, system, fee_too_high.into()),
        (
            C::Cancellation,
            10,
            foc,
            ev::MembershipCancelled::default().into(),
        ),
        (
            C::Moderation,
            20,
            foc,
            ev::ModerationApproved::default().into(),
        ),
        (
            C::Cancellation,
            30,
            foc,
            ev::MembershipRestored::default().into(),
        ),
        (
            C::Export,
            40,
            system,
            ev::MembershipExported {
                batch_id: "m-1".into(),
                exported_at: Some(ledger::domain::types::to_timestamp(at(40))),
            }
            .into(),
        ),
    ];
    if scrub {
        life.push((
            C::Scrub,
            50,
            system,
            ev::PersonalDataScrubbed {
                rule: ev::ScrubRule::Exported as i32,
                scrubbed_at: Some(ledger::domain::types::to_timestamp(at(50))),
            }
            .into(),
        ));
    }
    for (category, minutes, (kind, id), event) in life {
        let mut events = vec![event];
        vault.seal(key, &mut events).await.unwrap();
        let mut metadata = Metadata::new(
            Actor {
                kind,
                id: id.into(),
            },
            "audit-test",
            Uuid::new_v4(),
        );
        metadata.occurred_at = at(minutes);
        log.append(
            &category.stream(1),
            ExpectedRevision::Any,
            vec![EventData {
                id: Uuid::now_v7(),
                event_type: events[0].event_type().into(),
                payload: events[0].encode(),
                metadata: metadata.into(),
            }],
        )
        .await
        .unwrap();
    }
    if scrub {
        vault.destroy(&[key]).await.unwrap();
    }
}

/// Runs the built `ledger` on `data`; it must succeed. Returns stdout and stderr.
fn ledger_output(data: &LedgerData, args: &[&str]) -> (String, String) {
    let out = data.ledger().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn a_membership_history_shows_every_step_and_its_state_as_of_each_time(backend: LogBackend) {
    let data = LedgerData::new(backend);
    write_membership_life(&data, false).await;
    let (history, _) = ledger_output(&data, &["history", "membership", "1", "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    let steps: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap(),
                e["event_type"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                "membership-1",
                "MembershipApplied.v1",
                "spenden.example.org"
            ),
            (
                "membership_moderation-1",
                "ModerationReasonsRaised.v1",
                "ledger"
            ),
            (
                "membership_cancellation-1",
                "MembershipCancelled.v1",
                "foc:alice"
            ),
            (
                "membership_moderation-1",
                "ModerationApproved.v1",
                "foc:alice"
            ),
            (
                "membership_cancellation-1",
                "MembershipRestored.v1",
                "foc:alice"
            ),
            ("membership_export-1", "MembershipExported.v1", "ledger"),
        ]
    );
    assert!(
        history.contains("Quastenflosser"),
        "decrypted while the key exists"
    );
    // The legacy status at each point of its life, from `ledger state membership --as-of`.
    for (time, status) in [
        ("2026-01-01T00:05:00Z", "-2"),
        ("2026-01-01T00:15:00Z", "-3"),
        ("2026-01-01T00:25:00Z", "-1"),
        ("2026-01-01T00:35:00Z", "1"),
    ] {
        let (state, _) = ledger_output(
            &data,
            &["state", "membership", "1", "--json", "--as-of", time],
        );
        let fields: serde_json::Value = serde_json::from_str(&state).unwrap();
        assert_eq!(fields["legacy_status"], status, "as of {time}: {state}");
        assert_eq!(fields["is_confirmed"], "true", "as of {time}");
    }
}

async fn after_a_membership_scrub_no_history_or_state_output_shows_personal_data(
    backend: LogBackend,
) {
    let data = LedgerData::new(backend);
    write_membership_life(&data, true).await;
    let mut outputs = Vec::new();
    for args in [
        &["history", "membership", "1"][..],
        &["history", "membership", "1", "--json"],
        &["state", "membership", "1", "--json"],
        &[
            "state",
            "membership",
            "1",
            "--as-of",
            "2026-01-01T00:05:00Z",
        ],
    ] {
        outputs.push((args, ledger_output(&data, args)));
    }
    for (args, (stdout, stderr)) in &outputs {
        for needle in [
            "Quastenflosser",
            "hedwig.quastenflosser@example.org",
            "DE02120300000000202051",
            "Tulpenweg",
        ] {
            assert!(!stdout.contains(needle), "{needle} in stdout of {args:?}");
            assert!(!stderr.contains(needle), "{needle} in stderr of {args:?}");
        }
    }
    let (history, _) = &outputs[0].1;
    assert!(history.contains("PersonalDataScrubbed.v1"));
    assert!(history.contains(audit::SCRUBBED));
    let (state, _) = &outputs[2].1;
    let fields: serde_json::Value = serde_json::from_str(state).unwrap();
    assert_eq!(fields["is_scrubbed"], "true");
    assert_eq!(fields["applicant_kind"], "person", "kept after a scrub");
    assert_eq!(fields["fee_cents"], "10000", "kept after a scrub");
}

async fn the_history_of_a_membership_that_does_not_exist_names_it(backend: LogBackend) {
    let data = LedgerData::new(backend);
    write_membership_life(&data, false).await;
    let out = data
        .ledger()
        .args(["history", "membership", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("membership application 2 not found"),
        "{stderr}"
    );
}

async fn the_audit_export_of_a_period_holds_the_membership_events_with_their_changes(
    backend: LogBackend,
) {
    let data = LedgerData::new(backend);
    write_membership_life(&data, false).await;
    let (csv_text, _) = ledger_output(
        &data,
        &[
            "export-audit",
            "--from",
            "2026-01-01T00:05:00Z",
            "--to",
            "2026-01-01T00:35:00Z",
        ],
    );
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = ledger::audit::export::CSV_HEADER;
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let streams: Vec<&str> = rows.iter().map(|r| &r[column("stream")]).collect();
    assert_eq!(
        streams,
        [
            "membership_cancellation-1",
            "membership_moderation-1",
            "membership_cancellation-1"
        ]
    );
    let changes = &rows[0][column("changes")];
    assert!(changes.contains("legacy_status"), "{changes}");
    assert!(changes.contains("-3"), "{changes}");
}
