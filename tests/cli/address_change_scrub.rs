//! The address-change scrub rule end to end (`domain/wmde-memberships.md` §2, the legacy
//! `remove-exported` deleter): donations and an application go through the real gRPC server,
//! their donors change their address through the token (the server's clock set back for the
//! changes that must be older than the grace period), then `ledger scrub` projects and scrubs.
//! A new address whose current version was exported is scrubbed at once, one changed longer
//! ago than the grace period (30 days) whatever its export; younger ones are kept, and an
//! opt-out without an address is never a candidate. Afterwards the address columns are empty,
//! the kind, external id and tokens kept, the scrubbed street and name occur in no file of the
//! data directory and no command output (`ledger history address-change`, `ledger state
//! address-change` and `ledger export-audit` included), and a rebuild still shows the rows
//! scrubbed.
use crate::scrub_policy::{audit_export, audited, found_nowhere, ledger, read_model, report_of};
use crate::support;

use chrono::{Duration, Utc};
use ledger::intake::{Clock, ManualClock};
use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use support::api::*;

/// What a donor does with the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// A new address, then the export batch exports it.
    ChangeAndExport,
    /// A new address, not exported.
    Change,
    /// Only an opt-out of the receipt, exported.
    OptOutAndExport,
}

/// Whose address change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Of {
    Donation,
    Membership,
}

fn last_name(n: u64) -> String {
    format!("Umzugsfreund{n:04}q")
}
fn street(n: u64) -> String {
    format!("Neuwohngasse{n:04}z 5")
}

/// Issues an address change with a donation or an application and uses its token; returns
/// the address change's id.
async fn make(app: &mut TestApp, n: u64, of: Of, usage: Use) -> u64 {
    let token = match of {
        Of::Donation => {
            app.client
                .add_donation(with_token(
                    donation(ev::PaymentMethod::BankTransfer, 1_000),
                    ADMIN,
                ))
                .await
                .unwrap()
                .into_inner()
                .address_change_token
        }
        Of::Membership => {
            app.client
                .apply_for_membership(with_token(
                    membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
                    ADMIN,
                ))
                .await
                .unwrap()
                .into_inner()
                .address_change_token
        }
    };
    let address = (usage != Use::OptOutAndExport).then(|| api::AddressInput {
        last_name: last_name(n),
        street: street(n),
        ..new_address()
    });
    let changed = app
        .client
        .change_address(with_token(
            api::ChangeAddressRequest {
                context: context(ActorKind::Frontend),
                identifier: token,
                donation_receipt_opt_out: usage == Use::OptOutAndExport,
                address,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let id = changed.address_change.unwrap().address_change_id;
    if usage != Use::Change {
        let exported = app
            .client
            .mark_address_changes_exported(with_token(
                api::MarkAddressChangesExportedRequest {
                    context: context(ActorKind::System),
                    address_change_ids: vec![id],
                    batch_id: "A1".into(),
                },
                ADMIN,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(exported.exported, [id], "address change {n}");
    }
    id
}

/// `ledger scrub status --json`: eligible address changes.
fn eligible(app: &TestApp) -> u64 {
    let status: serde_json::Value =
        serde_json::from_slice(&ledger(app, &["scrub", "status", "--json"]).stdout).unwrap();
    // The earlier keys stay where they were.
    assert!(status["eligible"].is_u64() && status["memberships"]["eligible"].is_u64());
    status["address_changes"]["eligible"].as_u64().unwrap()
}

#[tokio::test]
async fn exported_and_overdue_addresses_are_scrubbed_and_found_nowhere_afterwards() {
    let now = Utc::now();
    let clock = ManualClock::new(now);
    let mut app = spawn_app_with(|s| s.clock = Clock::Manual(clock.clone())).await;
    // n, whose, days before now, what the donor did, the rule that scrubs it (None: kept).
    let matrix: [(u64, Of, i64, Use, Option<&str>); 6] = [
        (1, Of::Donation, 1, Use::ChangeAndExport, Some("exported")),
        (2, Of::Membership, 1, Use::ChangeAndExport, Some("exported")),
        (3, Of::Donation, 40, Use::Change, Some("after_grace_period")),
        (
            4,
            Of::Membership,
            31,
            Use::Change,
            Some("after_grace_period"),
        ),
        (20, Of::Donation, 1, Use::Change, None),
        (21, Of::Donation, 40, Use::OptOutAndExport, None),
    ];
    let mut made = Vec::new();
    for (n, of, days, usage, rule) in matrix {
        clock.set(now - Duration::days(days));
        made.push((n, make(&mut app, n, of, usage).await, rule));
    }
    clock.set(now);
    let mut expected: Vec<(u64, String)> = made
        .iter()
        .filter_map(|(_, id, rule)| rule.map(|r| (*id, r.to_owned())))
        .collect();
    expected.sort();
    let scrubbed = |id: u64| expected.iter().any(|(e, _)| *e == id);

    let mut outputs = Vec::new();
    let dry = ledger(&app, &["scrub", "--dry-run", "--json"]);
    assert_eq!(
        report_of(&dry, "address_changes_scrubbed", "address_change_id"),
        expected,
        "the dry run lists exactly the matrix's scrubbed address changes, with their rules"
    );
    outputs.push(dry);
    assert_eq!(eligible(&app), expected.len() as u64);

    let run = ledger(&app, &["scrub", "--json"]);
    assert_eq!(
        report_of(&run, "address_changes_scrubbed", "address_change_id"),
        expected
    );
    assert_eq!(report_of(&run, "scrubbed", "donation_id"), []);
    outputs.push(run);
    let status = ledger(&app, &["scrub", "status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("address changes eligible, not yet scrubbed: 0"),
        "{status:?}"
    );
    outputs.push(status);

    // The read model: scrubbed rows keep what they belong to and their tokens.
    let rm = read_model(app.dir.path()).await;
    for (n, id, _) in &made {
        let row = rm
            .row("address_change", *id as i64)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("row of address change {n}"));
        assert_eq!(
            row["is_scrubbed"],
            scrubbed(*id).to_string(),
            "{n}: {row:?}"
        );
        assert_ne!(row["current_identifier"], "", "{n}");
        assert_ne!(row["external_id"], "0", "{n}");
        if scrubbed(*id) {
            for c in "salutation first_name last_name street postcode city country".split(' ') {
                assert_eq!(row[c], "", "{c} of {n}");
            }
        } else if *n == 20 {
            assert_eq!(row["last_name"], last_name(20));
        }
    }
    let dump = rm.dump().await.unwrap();
    rm.close().await;

    // A rebuild still shows them scrubbed.
    outputs.push(ledger(&app, &["rebuild"]));
    let rm = read_model(app.dir.path()).await;
    assert_eq!(
        rm.dump().await.unwrap()["address_change"],
        dump["address_change"],
        "a rebuild yields the same address-change rows"
    );
    rm.close().await;

    // The audit shows the scrub and no address any more; the state command the rest.
    let (_, first, _) = made[0];
    let history = ledger(
        &app,
        &["history", "address-change", &first.to_string(), "--json"],
    );
    assert!(support::contains(
        &history.stdout,
        b"PersonalDataScrubbed.v1"
    ));
    assert!(support::contains(&history.stdout, b"AddressChanged.v1"));
    assert!(support::contains(&history.stdout, b"<scrubbed>"));
    outputs.push(history);
    let state = ledger(
        &app,
        &["state", "address-change", &first.to_string(), "--json"],
    );
    let state_json: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(state_json["export_state"], "used_exported");
    assert_eq!(state_json["is_scrubbed"], "true");
    assert_eq!(state_json["address"], "<scrubbed>");
    outputs.push(state);

    // The audit export lists the address changes' events, with the scrubbed address as
    // `<scrubbed>` like history does.
    let (lines, audit) = audit_export(&app, now - Duration::days(60), now + Duration::days(1));
    for t in [
        "AddressChangeCreated.v1",
        "AddressChanged.v1",
        "AddressChangeExported.v1",
        "PersonalDataScrubbed.v1",
    ] {
        assert!(
            audited(&lines, "address_change", first, t),
            "{t} of address change {first} not in the audit export"
        );
    }
    outputs.push(audit);

    // No file of the data directory and no command output holds a scrubbed new address; the
    // kept one is still there.
    let files = support::read_dir_bytes(app.dir.path());
    for (n, id, _) in &made {
        if scrubbed(*id) {
            found_nowhere(&last_name(*n), &files, &outputs);
            found_nowhere(&street(*n), &files, &outputs);
        }
    }
    assert!(
        files
            .iter()
            .any(|(_, b)| support::contains(b, last_name(20).as_bytes())),
        "the kept new address is still readable"
    );
}
