//! The scrub policy's test matrix (from the seed document), end to end on the embedded default:
//! donations are written as the intake writes them (personal data sealed), projected, then
//! `ledger scrub` runs. Afterwards the scrubbed donors' names, emails and IBANs occur in no file
//! of the data directory and in no command output, and a rebuild still shows them scrubbed.
mod support;

use std::path::Path;

use assert_cmd::Command;
use chrono::{DateTime, Duration, Utc};
use ledger::domain::types::to_timestamp;
use ledger::domain::{streams, DomainEvent};
use ledger::privacy::{KeyStore, Vault};
use ledger::projection::ReadModel;
use ledger::proto::events as ev;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata};
use uuid::Uuid;

use ev::PaymentMethod::{
    BankTransfer as Ueb, CreditCard as Mcp, DirectDebit as Bez, Paypal as Ppl, Sofort as Sub,
};

struct Writer {
    log: SqliteEventLog,
    vault: Vault,
}

impl Writer {
    async fn append(&self, donation_id: u64, stream: String, events: Vec<DomainEvent>) {
        let mut events = events;
        self.vault.seal(donation_id, &mut events).await.unwrap();
        let data = events
            .iter()
            .map(|e| EventData {
                id: Uuid::now_v7(),
                event_type: e.event_type().into(),
                payload: e.encode(),
                metadata: Metadata::new(
                    Actor {
                        kind: ActorKind::Frontend,
                        id: "test".into(),
                    },
                    "scrub-test",
                    Uuid::new_v4(),
                ),
            })
            .collect();
        self.log
            .append(&stream, ExpectedRevision::Any, data)
            .await
            .unwrap();
    }

    /// A donation as AddDonation writes it. The donor's surname and email carry the id, so
    /// each donation's personal data can be searched for on its own.
    async fn donation(&self, id: u64, method: ev::PaymentMethod, created_at: DateTime<Utc>) {
        let created = ev::DonationCreated {
            donation_id: id,
            created_at: Some(to_timestamp(created_at)),
            amount: Some(ev::Money {
                cents: 2_500,
                currency: "EUR".into(),
            }),
            payment_id: 1000 + id,
            payment_method: method as i32,
            donor: Some(ev::DonorPublic {
                kind: ev::DonorKind::Person as i32,
                salutation: "Frau".into(),
                ..Default::default()
            }),
            personal: Some(ev::PersonalData {
                first_name: "Erika".into(),
                last_name: surname(id),
                email: email(id),
                street: "Lindenallee 5".into(),
                postcode: "10115".into(),
                city: "Berlin".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.append(id, streams::donation(id), vec![created.into()])
            .await;
        let bank = (method == Bez).then(|| ev::BankData {
            iban: iban(id),
            bic: "INGDDEFFXXX".into(),
            ..Default::default()
        });
        let initiated = ev::PaymentInitiated {
            payment_id: 1000 + id,
            donation_id: id,
            method: method as i32,
            amount: Some(ev::Money {
                cents: 2_500,
                currency: "EUR".into(),
            }),
            bank,
            ..Default::default()
        };
        self.append(id, streams::payment(1000 + id), vec![initiated.into()])
            .await;
    }

    async fn book(&self, id: u64) {
        let booked = ev::PaymentBooked {
            valuation_date: Some(to_timestamp(Utc::now())),
            amount: Some(ev::Money {
                cents: 2_500,
                currency: "EUR".into(),
            }),
            provider: Some(ev::ProviderData {
                transaction_id: format!("TX{id}SECRET"),
                payer_id: format!("PAYER{id}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.append(id, streams::payment(1000 + id), vec![booked.into()])
            .await;
    }

    async fn export(&self, id: u64) {
        let e = ev::DonationExported {
            batch_id: "B1".into(),
            exported_at: Some(to_timestamp(Utc::now())),
        };
        self.append(id, streams::export(id), vec![e.into()]).await;
    }

    async fn moderate(&self, id: u64) {
        let e = ev::ModerationReasonsRaised {
            reasons: vec![ev::ModerationReason {
                identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
                source: "amount".into(),
            }],
        };
        self.append(id, streams::moderation(id), vec![e.into()])
            .await;
    }
}

fn surname(id: u64) -> String {
    format!("Mustermann{id:04}x")
}
fn email(id: u64) -> String {
    format!("erika{id:04}@beispiel.example")
}
fn iban(id: u64) -> String {
    format!("DE8937040044053201{id:04}")
}

fn ledger(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::cargo_bin("ledger")
        .unwrap()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_policy_matrix_holds_and_no_personal_data_survives_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let w = Writer {
        log: SqliteEventLog::open(&data.join("events.sqlite"))
            .await
            .unwrap(),
        vault: Vault::new(
            KeyStore::open_sqlite(&data.join("keys.sqlite"))
                .await
                .unwrap(),
        ),
    };
    let now = Utc::now();
    let old = now - Duration::days(3);
    let fresh = now - Duration::days(1);
    let mut expect_scrubbed = Vec::new();
    let mut expect_kept = Vec::new();

    // Scrubbed: abandoned PayPal, credit card and Sofort older than the grace period.
    for (id, m) in [(1, Ppl), (2, Mcp), (3, Sub)] {
        w.donation(id, m, old).await;
        expect_scrubbed.push(id);
    }
    // Scrubbed: deleted by an administrator; cancelled by the donor.
    w.donation(4, Bez, fresh).await;
    w.append(
        4,
        streams::deletion(4),
        vec![ev::DonationDeleted {
            reason: "fake".into(),
        }
        .into()],
    )
    .await;
    w.donation(5, Ueb, fresh).await;
    w.append(
        5,
        streams::deletion(5),
        vec![ev::DonationCancelled {
            reason: "donor".into(),
        }
        .into()],
    )
    .await;
    w.append(
        5,
        streams::payment(1005),
        vec![ev::PaymentCancelled {
            reason: "donor".into(),
        }
        .into()],
    )
    .await;
    expect_scrubbed.extend([4, 5]);
    // Scrubbed: exported donations of every payment method, external ones booked.
    for (id, m) in [(6, Bez), (7, Ueb), (8, Mcp), (9, Ppl), (10, Sub)] {
        w.donation(id, m, fresh).await;
        if m != Bez && m != Ueb {
            w.book(id).await;
        }
        w.export(id).await;
        expect_scrubbed.push(id);
    }
    // Scrubbed: a moderated donation that is deleted.
    w.donation(11, Bez, fresh).await;
    w.moderate(11).await;
    w.append(
        11,
        streams::deletion(11),
        vec![ev::DonationDeleted {
            reason: "fake".into(),
        }
        .into()],
    )
    .await;
    expect_scrubbed.push(11);

    // Kept: pending PayPal and credit card inside the grace period.
    for (id, m) in [(20, Ppl), (21, Mcp)] {
        w.donation(id, m, fresh).await;
        expect_kept.push(id);
    }
    // Kept: unexported donations of every payment method (external ones booked), old.
    for (id, m) in [(22, Bez), (23, Ueb), (24, Mcp), (25, Ppl), (26, Sub)] {
        w.donation(id, m, old - Duration::days(30)).await;
        if m != Bez && m != Ueb {
            w.book(id).await;
        }
        expect_kept.push(id);
    }
    // Kept: a moderated donation neither exported nor deleted.
    w.donation(27, Bez, old - Duration::days(60)).await;
    w.moderate(27).await;
    expect_kept.push(27);
    drop(w);

    let dry = ledger(data, &["scrub", "--dry-run", "--json"]);
    let dry: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let mut would: Vec<u64> = dry["scrubbed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["donation_id"].as_u64().unwrap())
        .collect();
    would.sort_unstable();
    let mut expected = expect_scrubbed.clone();
    expected.sort_unstable();
    assert_eq!(
        would, expected,
        "dry run lists exactly the matrix's scrubbed donations"
    );
    let rules: Vec<(u64, String)> = dry["scrubbed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["donation_id"].as_u64().unwrap(),
                s["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (id, rule) in &rules {
        let want = match id {
            1..=3 => "abandoned",
            4 | 5 | 11 => "cancelled_or_deleted",
            _ => "exported",
        };
        assert_eq!(rule, want, "donation {id}");
    }
    let status = ledger(data, &["scrub", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["eligible"].as_u64().unwrap() as usize,
        expected.len()
    );

    let outputs = [ledger(data, &["scrub"]), ledger(data, &["scrub", "status"])];
    let status: serde_json::Value =
        serde_json::from_slice(&ledger(data, &["scrub", "status", "--json"]).stdout).unwrap();
    assert_eq!(status["eligible"], 0);

    // The read model: scrubbed rows keep only what the policy allows.
    let rm = ReadModel::connect(&format!(
        "sqlite://{}",
        data.join("readmodel.sqlite").display()
    ))
    .await
    .unwrap();
    let dump = rm.dump().await.unwrap();
    for id in expect_scrubbed.iter().chain(&expect_kept) {
        let row = rm
            .row("donation", *id as i64)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("row {id}"));
        let scrubbed = expect_scrubbed.contains(id);
        assert!(
            matches!(row["is_scrubbed"].as_str(), "1" | "true") == scrubbed,
            "donation {id}: {row:?}"
        );
        assert_eq!(row["salutation"], "Frau", "salutation kept for {id}");
        assert_eq!(row["donor_kind"], "person", "donor kind kept for {id}");
        if scrubbed {
            for c in [
                "first_name",
                "last_name",
                "email",
                "street",
                "postcode",
                "city",
            ] {
                assert_eq!(row[c], "", "{c} of {id}");
            }
        } else {
            assert_eq!(row["last_name"], surname(*id));
        }
    }

    // A rebuild still shows them scrubbed.
    let rebuilt = ledger(data, &["rebuild"]);
    let dump2 = rm.dump().await.unwrap();
    assert_eq!(
        dump2["donation"], dump["donation"],
        "a rebuild yields the same donation rows"
    );
    rm.purge_residue().await.unwrap();
    rm.close().await;

    // No file of the data directory holds a scrubbed donor's surname, email or IBAN; the kept
    // donors' data is still there (encrypted in the log, clear in the read model).
    let files = support::read_dir_bytes(data);
    for id in &expect_scrubbed {
        for needle in [surname(*id), email(*id), iban(*id), format!("TX{id}SECRET")] {
            for (path, bytes) in &files {
                assert!(
                    !support::contains(bytes, needle.as_bytes()),
                    "{needle} found in {}",
                    path.display()
                );
            }
        }
    }
    assert!(
        files
            .iter()
            .any(|(_, b)| support::contains(b, surname(22).as_bytes())),
        "kept donors are still readable"
    );
    for out in outputs.iter().chain(std::iter::once(&rebuilt)) {
        for id in &expect_scrubbed {
            for needle in [surname(*id), email(*id), iban(*id)] {
                assert!(
                    !support::contains(&out.stdout, needle.as_bytes())
                        && !support::contains(&out.stderr, needle.as_bytes())
                );
            }
        }
    }
    for id in [1u64, 9] {
        let history = ledger(data, &["history", "donation", &id.to_string(), "--json"]);
        assert!(!support::contains(&history.stdout, surname(id).as_bytes()));
        assert!(support::contains(&history.stdout, b"<scrubbed>"));
    }
}
