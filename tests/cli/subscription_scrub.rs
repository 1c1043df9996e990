//! The subscription removal end to end (`domain/wmde-memberships.md` §3, the legacy
//! `removeAll` and `forceRemoveByIds`): subscriptions go through the real gRPC server (its
//! clock set back for the ones that must be older than the grace period), then `ledger scrub`
//! projects and removes. An exported subscription is removed at once, one made longer ago than
//! the grace period (30 days) whatever its state; younger ones are kept; one removed by
//! `RemoveSubscription` is not removed twice. Afterwards the rows keep status, tracking and
//! export, `GetSubscription` shows no address, the removed addresses occur in no file of the
//! data directory and no command output (`ledger history subscription`, `ledger state
//! subscription` and `ledger export-audit` included), and a rebuild shows the same rows.
use crate::scrub_policy::{audit_export, audited, found_nowhere, ledger, read_model, report_of};
use crate::support;

use chrono::{Duration, Utc};
use ledger::intake::{Clock, ManualClock};
use ledger::proto::api::{self, ActorKind};
use support::api::*;

fn email(n: u64) -> String {
    format!("abonnentin{n:04}q@example.org")
}

/// Subscribes `email(n)`, confirms it, and exports it when `export`; returns its id.
async fn make(app: &mut TestApp, n: u64, export: bool) -> u64 {
    let answer = app
        .client
        .subscribe(with_token(subscribe_request(&email(n)), ADMIN))
        .await
        .unwrap()
        .into_inner();
    app.client
        .confirm_subscription(with_token(
            api::ConfirmSubscriptionRequest {
                context: context(ActorKind::Frontend),
                confirmation_code: answer.confirmation_code,
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let id = answer.subscription_id;
    if export {
        let exported = app
            .client
            .mark_subscriptions_exported(with_token(
                api::MarkSubscriptionsExportedRequest {
                    context: context(ActorKind::System),
                    subscription_ids: vec![id],
                    batch_id: "S1".into(),
                },
                ADMIN,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(exported.exported, [id], "subscription {n}");
    }
    id
}

async fn get(app: &mut TestApp, id: u64) -> api::Subscription {
    app.client
        .get_subscription(with_token(
            api::GetSubscriptionRequest {
                subscription_id: id,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// `ledger scrub status --json`: subscriptions eligible for removal.
fn eligible(app: &TestApp) -> u64 {
    let status: serde_json::Value =
        serde_json::from_slice(&ledger(app, &["scrub", "status", "--json"]).stdout).unwrap();
    assert!(status["eligible"].is_u64() && status["address_changes"]["eligible"].is_u64());
    status["subscriptions"]["eligible"].as_u64().unwrap()
}

#[tokio::test]
async fn exported_and_overdue_subscriptions_are_removed_and_their_addresses_found_nowhere() {
    let now = Utc::now();
    let clock = ManualClock::new(now);
    let mut app = spawn_app_with(|s| s.clock = Clock::Manual(clock.clone())).await;
    // n, days before now, exported, the rule that removes it (None: kept).
    let matrix: [(u64, i64, bool, Option<&str>); 4] = [
        (1, 1, true, Some("exported")),
        (2, 40, false, Some("after_grace_period")),
        (3, 31, true, Some("exported")),
        (20, 1, false, None),
    ];
    let mut made = Vec::new();
    for (n, days, export, rule) in matrix {
        clock.set(now - Duration::days(days));
        made.push((n, make(&mut app, n, export).await, rule));
    }
    clock.set(now);
    // One removed on request (GDPR) before the job runs: the job leaves it alone.
    let forced = make(&mut app, 30, false).await;
    app.client
        .remove_subscription(with_token(
            api::RemoveSubscriptionRequest {
                context: context(ActorKind::FocUser),
                subscription_id: forced,
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let mut expected: Vec<(u64, String)> = made
        .iter()
        .filter_map(|(_, id, rule)| rule.map(|r| (*id, r.to_owned())))
        .collect();
    expected.sort();
    let removed = |id: u64| id == forced || expected.iter().any(|(e, _)| *e == id);

    let mut outputs = Vec::new();
    let dry = ledger(&app, &["scrub", "--dry-run", "--json"]);
    assert_eq!(
        report_of(&dry, "subscriptions_removed", "subscription_id"),
        expected,
        "the dry run lists exactly the matrix's removed subscriptions, with their rules"
    );
    outputs.push(dry);
    assert_eq!(eligible(&app), expected.len() as u64);

    let run = ledger(&app, &["scrub", "--json"]);
    assert_eq!(
        report_of(&run, "subscriptions_removed", "subscription_id"),
        expected
    );
    outputs.push(run);
    let status = ledger(&app, &["scrub", "status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("subscriptions eligible, not yet removed: 0"),
        "{status:?}"
    );
    outputs.push(status);

    // The read model keeps status, tracking and export; the API shows no removed address.
    let rm = read_model(app.dir.path()).await;
    let all = made
        .iter()
        .map(|(n, id, _)| (*n, *id))
        .chain([(30, forced)]);
    for (n, id) in all {
        let row = rm
            .row("subscription", id as i64)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("row of subscription {n}"));
        assert_eq!(row["is_removed"], removed(id).to_string(), "{n}: {row:?}");
        assert_eq!(row["status"], "confirmed", "{n}");
        assert_eq!(row["tracking"], "spring/banner", "{n}");
        let s = get(&mut app, id).await;
        assert_eq!(s.is_removed, removed(id), "{n}");
        if removed(id) {
            assert_eq!(s.email, "", "{n}");
        } else {
            assert_eq!(s.email, email(n), "{n}: the kept address is still readable");
        }
    }
    let forced_row = rm
        .row("subscription", forced as i64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(forced_row["removal_rule"], "forced_removal");
    let dump = rm.dump().await.unwrap();
    rm.close().await;

    // A rebuild yields the same rows.
    outputs.push(ledger(&app, &["rebuild"]));
    let rm = read_model(app.dir.path()).await;
    assert_eq!(
        rm.dump().await.unwrap()["subscription"],
        dump["subscription"],
        "a rebuild yields the same subscription rows"
    );
    rm.close().await;

    // The audit shows the removal and no address any more; the state command the rest.
    let (_, first, _) = made[0];
    let history = ledger(
        &app,
        &["history", "subscription", &first.to_string(), "--json"],
    );
    assert!(support::contains(
        &history.stdout,
        b"PersonalDataScrubbed.v1"
    ));
    assert!(support::contains(
        &history.stdout,
        b"SubscriptionConfirmed.v1"
    ));
    assert!(support::contains(&history.stdout, b"<scrubbed>"));
    outputs.push(history);
    let state = ledger(
        &app,
        &["state", "subscription", &first.to_string(), "--json"],
    );
    let state_json: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(state_json["status"], "confirmed");
    assert_eq!(state_json["is_removed"], "true");
    assert_eq!(state_json["email"], "<scrubbed>");
    outputs.push(state);

    let (lines, audit) = audit_export(&app, now - Duration::days(60), now + Duration::days(1));
    for t in [
        "SubscriptionCreated.v1",
        "SubscriptionConfirmed.v1",
        "SubscriptionExported.v1",
        "PersonalDataScrubbed.v1",
    ] {
        assert!(
            audited(&lines, "subscription", first, t),
            "{t} of subscription {first} not in the audit export"
        );
    }
    assert!(
        !lines.iter().any(|l| l["stream"]
            .as_str()
            .unwrap_or_default()
            .starts_with("subscription_email-")),
        "the duplicate index is not audited"
    );
    outputs.push(audit);

    // No file of the data directory and no command output holds a removed address, in any
    // spelling the ledger could have stored.
    let files = support::read_dir_bytes(app.dir.path());
    for (n, id, _) in &made {
        if removed(*id) {
            found_nowhere(&email(*n), &files, &outputs);
            found_nowhere(&format!("abonnentin{n:04}q"), &files, &outputs);
        }
    }
    found_nowhere(&email(30), &files, &outputs);
}
