//! `ledger export-audit`: the events of a period and nothing outside it, with envelope,
//! donation id and changed fields; CSV that parses back (quotes and commas included); JSON
//! lines; personal data only as `ledger history` shows it (`<scrubbed>` after a scrub); the
//! fields contribution-tracking events changed; each on the embedded log and on the KurrentDB
//! backend.
use crate::{support, verify_support};

use ledger::domain::streams;
use ledger::proto::events as ev;
use ledger::store::ActorKind;
use support::log_backend::{LedgerData, LogBackend};
use verify_support::{at, both, correlation, stdout, write_donations_on, World};

fn rfc3339(minutes: i64) -> String {
    at(minutes).to_rfc3339()
}

crate::on_both_logs!(
    export_audit_csv_has_the_events_of_the_period_and_nothing_outside_it,
    export_audit_jsonl_to_a_file_shows_scrubbed_donors_as_history_does,
    export_audit_refuses_an_empty_period,
    export_audit_shows_what_contribution_tracking_events_changed,
);

async fn export_audit_csv_has_the_events_of_the_period_and_nothing_outside_it(backend: LogBackend) {
    let data = LedgerData::new(backend);
    let world = write_donations_on(&data, 4).await;
    // An actor id that needs CSV quoting, inside the period, on another donation.
    world
        .append(
            1,
            &streams::export(1),
            25,
            (ActorKind::System, "export \"nightly\", v2"),
            ev::DonationExported {
                batch_id: "b,1".into(),
                exported_at: Some(ledger::domain::types::to_timestamp(at(25))),
            },
        )
        .await;

    let out = world.ledger(&["export-audit", "--from", &rfc3339(20), "--to", &rfc3339(30)]);
    assert!(out.status.success(), "{}", both(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ledger::audit::export::CSV_HEADER
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let column = |name: &str| {
        let i = ledger::audit::export::CSV_HEADER
            .iter()
            .position(|h| *h == name)
            .unwrap();
        records.iter().map(|r| r[i].to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(
        column("stream"),
        [
            "donation-2",
            "payment-102",
            "moderation-2",
            "moderation-2",
            "export-1"
        ]
    );
    assert_eq!(
        column("event_type"),
        [
            "DonationCreated.v2",
            "PaymentInitiated.v1",
            "ModerationReasonsRaised.v1",
            "ModerationApproved.v1",
            "DonationExported.v1"
        ]
    );
    assert_eq!(
        column("actor_id"),
        [
            "spenden.example.org",
            "spenden.example.org",
            "moderation-policy",
            "foc:alice",
            "export \"nightly\", v2"
        ]
    );
    assert_eq!(
        column("actor_kind"),
        ["frontend", "frontend", "system", "foc_user", "system"]
    );
    assert_eq!(column("donation_id"), ["2", "2", "2", "2", "1"]);
    assert_eq!(
        column("correlation_id"),
        [20, 21, 22, 23, 25].map(|m| correlation(m).to_string())
    );
    assert_eq!(
        column("occurred_at")[0],
        at(20).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    let positions: Vec<u64> = column("position")
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let changes = column("changes");
    assert!(
        changes[0].contains("last_name:  → Quastenflosser2"),
        "{}",
        changes[0]
    );
    assert!(
        changes[0].contains("amount_cents:  → 2000"),
        "{}",
        changes[0]
    );
    assert!(
        changes[3].contains("moderation_state: open → approved"),
        "{}",
        changes[3]
    );
    assert!(column("changed_fields")[4]
        .split(';')
        .any(|f| f == "is_exported"));
    let text = stdout(&out);
    for outside in [
        "Quastenflosser1",
        "Quastenflosser3",
        "donation-3",
        "payment-101",
    ] {
        assert!(!text.contains(outside), "{outside} is outside the period");
    }
}

async fn export_audit_jsonl_to_a_file_shows_scrubbed_donors_as_history_does(backend: LogBackend) {
    let data = LedgerData::new(backend);
    let world = write_donations_on(&data, 4).await;
    let file = data.path().join("audit.jsonl");
    let out = world.ledger(&[
        "export-audit",
        "--from",
        &rfc3339(40),
        "--to",
        &rfc3339(60),
        "--format",
        "jsonl",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "DonationCreated.v2",
            "PaymentInitiated.v1",
            "DonationExported.v1",
            "PersonalDataScrubbed.v1"
        ]
    );
    assert!(lines.iter().all(|l| l["donation_id"] == 4));
    // As in `ledger history`: the creation cannot be decrypted any more, and the scrub is
    // where the donor becomes `<scrubbed>`.
    let last_name = lines[3]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "last_name")
        .unwrap();
    assert_eq!(last_name["after"], ledger::audit::SCRUBBED);
    for secret in [
        "Quastenflosser4",
        "hedwig4@example.org",
        "Tulpenweg",
        "DE0212",
    ] {
        assert!(!text.contains(secret), "{secret} in the export");
    }
}

async fn export_audit_refuses_an_empty_period(backend: LogBackend) {
    let data = LedgerData::new(backend);
    let world = write_donations_on(&data, 1).await;
    let out = world.ledger(&["export-audit", "--from", &rfc3339(30), "--to", &rfc3339(30)]);
    assert!(!out.status.success(), "{}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid period"));
}

async fn export_audit_shows_what_contribution_tracking_events_changed(backend: LogBackend) {
    let data = LedgerData::new(backend);
    let world = World::on(&data).await;
    let stream = streams::contribution_tracking(7);
    let form = (ActorKind::Frontend, "spenden.example.org");
    let first = ev::ContributionTrackingFields {
        amount: Some("10.00".into()),
        utm_campaign: Some("spring".into()),
        payment_method_id: Some(3),
        ..Default::default()
    };
    let repeat = ev::ContributionTrackingFields {
        amount: Some("20.00".into()),
        utm_campaign: Some("spring".into()),
        country: Some("DE".into()),
        ..Default::default()
    };
    for (minute, fields) in [(5, first), (6, repeat)] {
        let recorded = ev::ContributionTrackingRecorded {
            contribution_tracking_id: 7,
            allocation_token: "alloc-1".into(),
            fields: Some(fields),
        };
        world.append(7, &stream, minute, form, recorded).await;
    }
    let pipeline = (ActorKind::System, "donation-pipeline");
    let link = ev::ContributionLinked {
        contribution_id: 4711,
    };
    world.append(7, &stream, 7, pipeline, link).await;
    world.append(7, &stream, 8, pipeline, link).await;

    let out = world.ledger(&["export-audit", "--from", &rfc3339(0), "--to", &rfc3339(30)]);
    assert!(out.status.success(), "{}", both(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r[column("stream")] == stream));
    assert!(records.iter().all(|r| r[column("donation_id")].is_empty()));
    let changed: Vec<&str> = records
        .iter()
        .map(|r| &r[column("changed_fields")])
        .collect();
    assert_eq!(
        changed,
        [
            "amount;payment_method_id;utm_campaign",
            "amount;country",
            "contribution_id",
            ""
        ],
        "a repeated value is no change"
    );
    let changes: Vec<&str> = records.iter().map(|r| &r[column("changes")]).collect();
    assert_eq!(
        changes[0],
        "amount:  → 10.00; payment_method_id:  → 3; utm_campaign:  → spring"
    );
    assert_eq!(changes[1], "amount: 10.00 → 20.00; country:  → DE");
    assert_eq!(changes[2], "contribution_id:  → 4711");

    // `ledger history contribution-tracking` shows the same changes.
    let history = world.ledger(&["history", "contribution-tracking", "7", "--json"]);
    assert!(history.status.success(), "{}", both(&history));
    let entries: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let second = &entries[1]["changes"];
    assert_eq!(second[0]["field"], "amount");
    assert_eq!(second[0]["before"], "10.00");
    assert_eq!(second[0]["after"], "20.00");
    assert_eq!(second.as_array().unwrap().len(), 2);
}
