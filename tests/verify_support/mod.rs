//! Shared by the `verify` and `export-audit` tests: writes a few donations' lives into a data
//! directory as the intake would (personal data sealed with the vault), and runs the binary;
//! on the embedded log, or on either backend with [`World::on`].
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ledger::domain::{streams, DomainEvent};
use ledger::privacy::{KeyStore, Vault};
use ledger::proto::events as ev;
use ledger::store::{Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata};
use uuid::Uuid;

use crate::support::log_backend::{ledger_command, LedgerData};

/// 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600;

/// `T0` plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0, 0).unwrap() + Duration::minutes(minutes)
}

/// The correlation id of every event appended at `minutes`, so tests can find it.
pub fn correlation(minutes: i64) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 + minutes as u128)
}

/// Runs the built `ledger` with `--data-dir dir` (its embedded log) and `args`.
pub fn ledger(dir: &Path, args: &[&str]) -> std::process::Output {
    ledger_on(dir, "", args)
}

/// Runs the built `ledger` with `--data-dir dir`, the log at `event_log_url`, and `args`.
fn ledger_on(dir: &Path, event_log_url: &str, args: &[&str]) -> std::process::Output {
    ledger_command(dir, event_log_url)
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .unwrap()
}

/// Stdout of a run, lossily as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stdout and stderr, for assertion messages.
pub fn both(out: &std::process::Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The event log and vault of a data directory.
pub struct World {
    pub log: Arc<dyn EventLog>,
    pub vault: Vault,
    dir: PathBuf,
    event_log_url: String,
}

impl World {
    /// Opens (creating) the embedded log and the key store in `dir`.
    pub async fn open(dir: &Path) -> Self {
        let storage = ledger::config::StorageArgs::in_dir(dir);
        Self::with_log(dir, storage.open_event_log().await.unwrap(), String::new()).await
    }

    /// Opens the log of `data` (on its backend) and the key store in its directory.
    pub async fn on(data: &LedgerData) -> Self {
        Self::with_log(data.path(), data.open_log().await, data.event_log_url()).await
    }

    async fn with_log(dir: &Path, log: Arc<dyn EventLog>, event_log_url: String) -> Self {
        Self {
            log,
            vault: Vault::new(
                KeyStore::open_sqlite(&dir.join("keys.sqlite"))
                    .await
                    .unwrap(),
            ),
            dir: dir.to_owned(),
            event_log_url,
        }
    }

    /// Runs the built `ledger` on this world's data directory and log with `args`.
    pub fn ledger(&self, args: &[&str]) -> std::process::Output {
        ledger_on(&self.dir, &self.event_log_url, args)
    }

    /// Appends one event of donation `donation` (sealed with its key) at `minutes`.
    pub async fn append(
        &self,
        donation: u64,
        stream: &str,
        minutes: i64,
        actor: (ActorKind, &str),
        event: impl Into<DomainEvent>,
    ) {
        let mut events = vec![event.into()];
        self.vault.seal(donation, &mut events).await.unwrap();
        let e = &events[0];
        let mut metadata = Metadata::new(
            Actor {
                kind: actor.0,
                id: actor.1.into(),
            },
            "verify-test",
            correlation(minutes),
        );
        metadata.occurred_at = at(minutes);
        self.log
            .append(
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
}

/// The person who gives donation `id`.
pub fn last_name(id: u64) -> String {
    format!("Quastenflosser{id}")
}

/// Writes donations `1..=n`, donation `id` at minute `10 * id`: created (direct debit, with
/// personal data), payment initiated; donation 2 is moderated and approved; donation 3 is
/// exported; donation 4 is exported and scrubbed (key destroyed).
pub async fn write_donations(dir: &Path, n: u64) -> World {
    fill_donations(World::open(dir).await, n).await
}

/// [`write_donations`] into `data`, on its backend.
pub async fn write_donations_on(data: &LedgerData, n: u64) -> World {
    fill_donations(World::on(data).await, n).await
}

async fn fill_donations(w: World, n: u64) -> World {
    let form = (ActorKind::Frontend, "spenden.example.org");
    for id in 1..=n {
        let m = 10 * id as i64;
        let created = ev::DonationCreated {
            donation_id: id,
            created_at: Some(ledger::domain::types::to_timestamp(at(m))),
            amount: Some(ev::Money {
                cents: 1000 * id as i64,
                currency: "EUR".into(),
            }),
            interval_months: 0,
            payment_id: 100 + id,
            payment_method: ev::PaymentMethod::DirectDebit as i32,
            donor: Some(ev::DonorPublic {
                kind: ev::DonorKind::Person as i32,
                salutation: "Frau".into(),
                wants_newsletter: true,
                wants_receipt: true,
            }),
            personal: Some(ev::PersonalData {
                first_name: "Hedwig".into(),
                last_name: last_name(id),
                email: format!("hedwig{id}@example.org"),
                street: "Tulpenweg 7".into(),
                postcode: "12345".into(),
                city: "Berlin".into(),
                ..Default::default()
            }),
            tracking: Some(ev::Tracking {
                campaign: "c1".into(),
                keyword: format!("k{id}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        w.append(id, &streams::donation(id), m, form, created).await;
        let initiated = ev::PaymentInitiated {
            payment_id: 100 + id,
            donation_id: id,
            method: ev::PaymentMethod::DirectDebit as i32,
            amount: Some(ev::Money {
                cents: 1000 * id as i64,
                currency: "EUR".into(),
            }),
            bank: Some(ev::BankData {
                iban: "DE02120300000000202051".into(),
                bic: "BYLADEM1001".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        w.append(id, &streams::payment(100 + id), m + 1, form, initiated)
            .await;
        if id == 2 {
            let reasons = ev::ModerationReasonsRaised {
                reasons: vec![ev::ModerationReason {
                    identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
                    source: "amount".into(),
                }],
            };
            w.append(
                id,
                &streams::moderation(id),
                m + 2,
                (ActorKind::System, "moderation-policy"),
                reasons,
            )
            .await;
            w.append(
                id,
                &streams::moderation(id),
                m + 3,
                (ActorKind::FocUser, "foc:alice"),
                ev::ModerationApproved {
                    as_anonymous: false,
                },
            )
            .await;
        }
        if id == 3 || id == 4 {
            w.append(
                id,
                &streams::export(id),
                m + 4,
                (ActorKind::System, "export-batch"),
                ev::DonationExported {
                    batch_id: "2026-01-01".into(),
                    exported_at: Some(ledger::domain::types::to_timestamp(at(m + 4))),
                },
            )
            .await;
        }
        if id == 4 {
            w.append(
                id,
                &streams::scrub(id),
                m + 5,
                (ActorKind::System, "scrub"),
                ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(ledger::domain::types::to_timestamp(at(m + 5))),
                },
            )
            .await;
            w.vault.destroy(&[id]).await.unwrap();
        }
    }
    w
}
