//! The status console in a real headless Chromium (Debian's `chromium` and `chromedriver`,
//! driven by Selenium from `tests/python/console_browser.py`), against a `ledger serve` that
//! took a few thousand donations in every state: the figures the page shows equal the read
//! model's own counts, a donation's history is followed from the lookup form, personal data
//! shows only to a token holding `donations:read`, and screenshots are saved to
//! `target/test-artifacts/`.
use std::collections::BTreeMap;
use std::process::Command;

use futures::StreamExt;
use ledger::api::auth::token_hash;
use ledger::proto::api::{self, ledger_client::LedgerClient, ActorKind};
use ledger::proto::events as ev;
use tonic::transport::Channel;

use crate::cli_serve::{connected, free_port, spawn_serve, stop};
use crate::support::api::{context, donation, new_address, subscribe_request, with_token};
use crate::support::ci::skip_or_fail;

const ADMIN: &str = "console-test-admin";
const OPERATOR: &str = "console-test-operator";
const AUDITOR: &str = "console-test-auditor";
const DONATIONS: u64 = 2_000;

fn chromium_ready() -> Result<(), String> {
    for path in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !std::path::Path::new(path).exists() {
            return Err(format!(
                "{path} is missing (apt-get install chromium chromium-driver)"
            ));
        }
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .output()
        .is_ok_and(|o| o.status.success());
    if selenium {
        Ok(())
    } else {
        Err("the Python package selenium is missing (pip install selenium)".into())
    }
}

fn tokens_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tokens.json");
    let file = serde_json::json!({"tokens": [
        {"name": "admin", "sha256": token_hash(ADMIN), "scopes": ["*"]},
        {"name": "operator", "sha256": token_hash(OPERATOR), "scopes": ["audit:read"]},
        {"name": "auditor", "sha256": token_hash(AUDITOR), "scopes": ["audit:read", "donations:read"]},
    ]});
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

fn action(donation_id: u64, kind: ActorKind) -> api::DonationActionRequest {
    api::DonationActionRequest {
        context: context(kind),
        donation_id,
        reason: String::new(),
    }
}

/// Adds donation `i` and moves it to the state `i` picks; returns its id, the last position
/// written, `i` and its address-change token.
async fn one_donation(mut client: LedgerClient<Channel>, i: u64) -> (u64, u64, u64, String) {
    let method = match i % 5 {
        1 => ev::PaymentMethod::CreditCard,
        2 => ev::PaymentMethod::BankTransfer,
        _ => ev::PaymentMethod::DirectDebit,
    };
    let added = client
        .add_donation(with_token(donation(method, 500 + i as i64), ADMIN))
        .await
        .unwrap()
        .into_inner();
    let id = added.donation_id;
    let position = match i % 5 {
        0 => {
            client
                .cancel_donation(with_token(action(id, ActorKind::Frontend), ADMIN))
                .await
                .unwrap()
                .into_inner()
                .position
        }
        1 => {
            client
                .book_payment(with_token(
                    api::BookPaymentRequest {
                        context: context(ActorKind::Provider),
                        payment_id: added.payment_id,
                        transaction_id: format!("CC-{i}"),
                        amount_cents: 500 + i as i64,
                        ..Default::default()
                    },
                    ADMIN,
                ))
                .await
                .unwrap()
                .into_inner()
                .position
        }
        2 => {
            client
                .flag_donation(with_token(action(id, ActorKind::FocUser), ADMIN))
                .await
                .unwrap()
                .into_inner()
                .position
        }
        _ => added.position,
    };
    (id, position, i, added.address_change_token)
}

/// Donors who give a new address through their address-change token: one in
/// `ADDRESS_CHANGE_EVERY` donations; of those, every second is exported (and so eligible for
/// the scrub) before the page is read.
const ADDRESS_CHANGE_EVERY: u64 = 50;

/// A new address through `token`; returns the address change's id.
async fn change_address(mut client: LedgerClient<Channel>, token: String) -> u64 {
    client
        .change_address(with_token(
            api::ChangeAddressRequest {
                context: context(ActorKind::Frontend),
                identifier: token,
                address: Some(new_address()),
                donation_receipt_opt_out: false,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
        .address_change
        .unwrap()
        .address_change_id
}

/// Reads `sql` (two columns: a key and a count) from the SQLite read model.
fn counts(read_model: &std::path::Path, sql: &str) -> BTreeMap<String, i64> {
    let db = rusqlite::Connection::open_with_flags(
        read_model,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut statement = db.prepare(sql).unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_shows_the_read_models_counts_and_a_donations_history() {
    if let Err(why) = chromium_ready() {
        skip_or_fail(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(dir.path());
    let (port, http) = (free_port(), free_port());
    // A peer that never answers: every shared change waits in its queue.
    let peer = "https://unreachable.example.org";
    let unreachable = format!("http://127.0.0.1:{}/civishare/v1/messages", free_port());
    for args in [
        &["peer", "node", "--name", "https://console-test.example.org"][..],
        &["peer", "add", "--node", peer, "--url", unreachable.as_str()][..],
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env(
                "LEDGER_PEER_SECRET",
                "ConsoleTestSecretConsoleTestSecret012345678",
            )
            .env_remove("LEDGER_READ_MODEL_URL")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let child = spawn_serve(
        dir.path(),
        port,
        &[
            "--tokens-file",
            tokens.to_str().unwrap(),
            "--metrics-listen",
            &format!("127.0.0.1:{http}"),
        ],
    );
    let client = connected(port).await;

    // A few thousand donations in every state, eight calls at a time.
    let done: Vec<(u64, u64, u64, String)> = futures::stream::iter(0..DONATIONS)
        .map(|i| one_donation(client.clone(), i))
        .buffer_unordered(8)
        .collect()
        .await;
    // Some donors change their address; every second change is exported at once, so it is
    // eligible for the scrub (the others wait for their grace period).
    let tokens: Vec<String> = done
        .iter()
        .filter(|d| d.2 % ADDRESS_CHANGE_EVERY == 3)
        .map(|d| d.3.clone())
        .collect();
    assert!(tokens.iter().all(|t| !t.is_empty()));
    let mut changed: Vec<u64> = futures::stream::iter(tokens)
        .map(|t| change_address(client.clone(), t))
        .buffer_unordered(8)
        .collect()
        .await;
    changed.sort_unstable();
    let to_export: Vec<u64> = changed.iter().copied().step_by(2).collect();
    let address_changes_exported = client
        .clone()
        .mark_address_changes_exported(with_token(
            api::MarkAddressChangesExportedRequest {
                context: context(ActorKind::System),
                address_change_ids: to_export.clone(),
                batch_id: "console-test-addresses".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(address_changes_exported.exported, to_export);
    // Newsletter subscriptions: two of five exported at once, so eligible for the removal job
    // (the others wait for their grace period).
    let mut subscriptions = Vec::new();
    for i in 0..5 {
        let subscribed = client
            .clone()
            .subscribe(with_token(
                subscribe_request(&format!("reader{i}@example.org")),
                ADMIN,
            ))
            .await
            .unwrap()
            .into_inner();
        subscriptions.push(subscribed.subscription_id);
    }
    client
        .clone()
        .mark_subscriptions_exported(with_token(
            api::MarkSubscriptionsExportedRequest {
                context: context(ActorKind::System),
                subscription_ids: subscriptions[..2].to_vec(),
                batch_id: "console-test-subscriptions".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let export: Vec<u64> = done.iter().filter(|d| d.2 % 5 == 4).map(|d| d.0).collect();
    let exported = client
        .clone()
        .mark_exported(with_token(
            api::MarkExportedRequest {
                context: context(ActorKind::System),
                donation_ids: export.clone(),
                batch_id: "console-test".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exported.exported.len(), export.len());
    // A booked credit-card donation.
    let followed = done.iter().find(|d| d.2 % 5 == 1).unwrap().0;

    // Wait until the projector has applied everything written.
    let read_model = dir.path().join("readmodel.sqlite");
    let head = exported.position;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let applied = read_model.exists()
            && counts(
                &read_model,
                "SELECT projector, COALESCE(position, 0) FROM projector_checkpoint",
            )
            .values()
            .any(|p| *p as u64 >= head)
            && counts(
                &dir.path().join("civishare.sqlite"),
                "SELECT 'next', position FROM civishare_checkpoint",
            )
            .values()
            .any(|p| *p as u64 > head);
        if applied {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the projector or CiviShare's outgoing projector did not catch up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let artifacts = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-artifacts");
    std::fs::create_dir_all(artifacts).unwrap();
    let screenshot = format!("{artifacts}/console.png");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/console_browser.py"
    );
    let envs = [
        ("CONSOLE_URL", format!("http://127.0.0.1:{http}")),
        ("CONSOLE_TOKEN", OPERATOR.to_owned()),
        ("CONSOLE_AUDITOR_TOKEN", AUDITOR.to_owned()),
        ("CONSOLE_DONATION", followed.to_string()),
        ("CONSOLE_SCREENSHOT", screenshot.clone()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .envs(envs)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let figures = result["figures"].as_object().unwrap();
    let shown = |name: &str| -> i64 {
        figures
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("{name} not on the page: {figures:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {:?}", figures[name]))
    };

    // Every state count on the page is the read model's own.
    let mut compared = 0;
    for column in [
        "payment_state",
        "deletion_state",
        "moderation_state",
        "payment_method",
    ] {
        let expected = counts(
            &read_model,
            &format!("SELECT {column}, COUNT(*) FROM donation GROUP BY {column}"),
        );
        assert!(!expected.is_empty());
        for (value, n) in expected {
            assert_eq!(
                shown(&format!("donation.{column}.{value}")),
                n,
                "{column} = {value}"
            );
            compared += 1;
        }
    }
    for flag in ["is_exported", "is_scrubbed"] {
        let expected = counts(
            &read_model,
            &format!("SELECT CAST({flag} AS TEXT), COUNT(*) FROM donation GROUP BY 1"),
        );
        assert_eq!(
            shown(&format!("donation.{flag}.true")),
            expected.get("1").copied().unwrap_or(0),
            "{flag}"
        );
        compared += 1;
    }
    assert_eq!(shown("donation.is_exported.true"), export.len() as i64);
    let total: i64 = counts(&read_model, "SELECT 'all', COUNT(*) FROM donation")["all"];
    assert_eq!(total, DONATIONS as i64);
    assert!(compared >= 10, "too few figures compared: {compared}");
    assert_eq!(shown("projector.readmodel.lag"), 0);
    // CiviShare: the peer's queue is CiviShare's own count, every change of the log that it
    // takes (each donation's creation, cancellations, bookings).
    let queued = counts(
        &dir.path().join("civishare.sqlite"),
        "SELECT 'undelivered', COUNT(*) FROM civishare_outbox WHERE status <> 'acknowledged'",
    )["undelivered"];
    assert!(queued >= DONATIONS as i64, "{queued}");
    assert_eq!(shown(&format!("civishare.{peer}.undelivered")), queued);
    assert!(shown(&format!("civishare.{peer}.failed")) <= queued);
    assert_eq!(
        figures["civishare.local_node"].as_str(),
        Some("https://console-test.example.org")
    );
    assert!(
        figures.contains_key("scrub.memberships.eligible"),
        "{figures:?}"
    );
    // The address changes' scrub backlog is the read model's own count of the scrub rule's
    // candidates (an address, not scrubbed, exported or changed before the grace period).
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let eligible = counts(
        &read_model,
        &format!(
            "SELECT 'eligible', COUNT(*) FROM address_change WHERE is_scrubbed = 0 \
             AND has_address = 1 AND (is_exported = 1 OR modified_at <= '{cutoff}')"
        ),
    )["eligible"];
    assert_eq!(eligible, to_export.len() as i64);
    assert_eq!(shown("scrub.address_changes.eligible"), eligible);
    // The subscriptions' backlog likewise: not removed, exported or older than the grace period.
    let eligible = counts(
        &read_model,
        &format!(
            "SELECT 'eligible', COUNT(*) FROM subscription WHERE is_removed = 0 \
             AND (is_exported = 1 OR created_at <= '{cutoff}')"
        ),
    )["eligible"];
    assert_eq!(eligible, 2);
    assert_eq!(shown("scrub.subscriptions.eligible"), eligible);
    assert!(shown("head") as u64 >= head);
    assert!(
        result["chart_lines"].as_u64().unwrap() >= 1,
        "the live chart drew nothing"
    );
    assert!(
        result["bad_token_page"]
            .as_str()
            .unwrap()
            .contains("Unknown token"),
        "{result}"
    );
    assert!(result["after_sign_out"]
        .as_str()
        .unwrap()
        .ends_with("/login"));

    // The followed donation's history, without personal data for the operator, with it for
    // the auditor.
    let operator = &result["operator"];
    assert!(operator["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/donations/{followed}")));
    let events: Vec<&str> = operator["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(events.len() >= 2, "{events:?}");
    assert!(events[0].starts_with("DonationCreated"), "{events:?}");
    assert!(
        events.iter().any(|e| e.starts_with("PaymentBooked")),
        "{events:?}"
    );
    let operator_text = operator["text"].as_str().unwrap();
    assert!(operator_text.contains("Personal data is hidden"));
    assert!(!operator_text.contains("Zwiebelmeier"), "{operator_text}");
    let auditor_text = result["auditor"]["text"].as_str().unwrap();
    assert!(auditor_text.contains("Zwiebelmeier"), "{auditor_text}");
    assert!(!auditor_text.contains("Personal data is hidden"));

    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    eprintln!("console screenshots: {screenshot} and console-donation.png beside it");
    let (stopped, log) = stop(child).await;
    assert!(stopped, "{log}");
}
