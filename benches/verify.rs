//! `ledger verify` at scale on the embedded default: generates N donations (default 1 million,
//! about 5 events each) straight into a SQLite event log in large atomic appends, with their
//! personal data sealed under per-donation keys written in bulk to the key store, projects
//! them once, then runs the release `ledger verify` under `/usr/bin/time -v` and prints its
//! wall time and peak RSS.
//!
//! ```text
//! LEDGER_VERIFY_BENCH_DONATIONS=1000000 LEDGER_VERIFY_BENCH_DIR=/tmp/ledger-verify-bench \
//!     cargo bench --bench verify
//! ```
//!
//! An existing directory with a projected read model is reused (delete it to regenerate).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use ledger::domain::types::to_timestamp;
use ledger::domain::{streams, DomainEvent};
use ledger::privacy::{seal_with, DataKey, KeyStore, Vault};
use ledger::projection::{Projector, ProjectorConfig, ReadModel};
use ledger::proto::events as ev;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{
    Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata, StreamAppend,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;
use uuid::Uuid;

/// Donations per atomic append (each with up to five streams).
const DONATIONS_PER_APPEND: u64 = 1000;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap()
}

fn event(
    e: DomainEvent,
    actor: ActorKind,
    actor_id: &str,
    at: DateTime<Utc>,
    request: Uuid,
) -> EventData {
    let mut metadata = Metadata::new(
        Actor {
            kind: actor,
            id: actor_id.into(),
        },
        "verify-bench",
        request,
    );
    metadata.occurred_at = at;
    EventData {
        id: Uuid::now_v7(),
        event_type: e.event_type().into(),
        payload: e.encode(),
        metadata: metadata.into(),
    }
}

/// The streams of one donation's life: created and payment initiated (sealed personal and
/// bank data); external payments mostly booked; a fifth moderated (half approved); a tenth of
/// the direct debits cancelled; most exported; exported ones mostly scrubbed.
fn donation_life(id: u64, rng: &mut StdRng, key: &DataKey) -> (Vec<StreamAppend>, bool) {
    let methods = [
        ev::PaymentMethod::DirectDebit,
        ev::PaymentMethod::BankTransfer,
        ev::PaymentMethod::CreditCard,
        ev::PaymentMethod::Paypal,
        ev::PaymentMethod::Sofort,
    ];
    let method = methods[rng.gen_range(0..methods.len())];
    let external = !matches!(
        method,
        ev::PaymentMethod::DirectDebit | ev::PaymentMethod::BankTransfer
    );
    let at = t0() + Duration::seconds(id as i64 * 30);
    let request = Uuid::now_v7();
    let pid = id + 10_000_000;
    let cents = rng.gen_range(100..200_000);
    let created = ev::DonationCreated {
        donation_id: id,
        created_at: Some(to_timestamp(at)),
        amount: Some(ev::Money {
            cents,
            currency: "EUR".into(),
        }),
        interval_months: [0, 0, 0, 1, 3, 6, 12][rng.gen_range(0..7)],
        payment_id: pid,
        payment_method: method as i32,
        donor: Some(ev::DonorPublic {
            kind: ev::DonorKind::Person as i32,
            salutation: "Frau".into(),
            wants_newsletter: rng.gen_bool(0.3),
            wants_receipt: rng.gen_bool(0.5),
        }),
        personal: Some(ev::PersonalData {
            first_name: "Hedwig".into(),
            last_name: format!("Name{id}"),
            email: format!("donor{id}@example.org"),
            street: format!("Tulpenweg {}", id % 200),
            postcode: format!("{:05}", id % 100_000),
            city: "Berlin".into(),
            ..Default::default()
        }),
        tracking: Some(ev::Tracking {
            campaign: format!("c{}", id % 50),
            keyword: format!("k{}", id % 7),
            ..Default::default()
        }),
        ..Default::default()
    };
    let initiated = ev::PaymentInitiated {
        payment_id: pid,
        donation_id: id,
        method: method as i32,
        amount: Some(ev::Money {
            cents,
            currency: "EUR".into(),
        }),
        bank: (!external).then(|| ev::BankData {
            iban: "DE02120300000000202051".into(),
            bic: "BYLADEM1001".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut donation = vec![DomainEvent::from(created)];
    let mut payment = vec![DomainEvent::from(initiated)];
    seal_with(&mut donation, id, key);
    if external && rng.gen_bool(0.8) {
        payment.push(
            ev::PaymentBooked {
                valuation_date: Some(to_timestamp(at + Duration::minutes(5))),
                amount: None,
                provider: Some(ev::ProviderData {
                    transaction_id: format!("TXN-{id}"),
                    ..Default::default()
                }),
                provider_sealed: None,
            }
            .into(),
        );
    }
    seal_with(&mut payment, id, key);
    let form = |e: DomainEvent, m: i64| {
        event(
            e,
            ActorKind::Frontend,
            "spenden.example.org",
            at + Duration::minutes(m),
            request,
        )
    };
    let system = |e: DomainEvent, who: &str, m: i64| {
        event(
            e,
            ActorKind::System,
            who,
            at + Duration::minutes(m),
            Uuid::now_v7(),
        )
    };
    let part = |stream: String, events: Vec<EventData>| StreamAppend {
        stream,
        expected: ExpectedRevision::NoStream,
        events,
    };
    let mut parts = vec![
        part(
            streams::donation(id),
            donation.into_iter().map(|e| form(e, 0)).collect(),
        ),
        part(
            streams::payment(pid),
            payment.into_iter().map(|e| form(e, 1)).collect(),
        ),
    ];
    let mut moderation = Vec::new();
    if rng.gen_bool(0.2) {
        let raised = ev::ModerationReasonsRaised {
            reasons: vec![ev::ModerationReason {
                identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
                source: "amount".into(),
            }],
        };
        moderation.push(system(raised.into(), "moderation-policy", 0));
        if rng.gen_bool(0.5) {
            moderation.push(event(
                ev::ModerationApproved {
                    as_anonymous: false,
                }
                .into(),
                ActorKind::FocUser,
                "foc:alice",
                at + Duration::hours(2),
                Uuid::now_v7(),
            ));
        }
        parts.push(part(streams::moderation(id), moderation));
    }
    if !external && rng.gen_bool(0.1) {
        let cancelled = ev::DonationCancelled {
            reason: "donor".into(),
        };
        parts.push(part(
            streams::deletion(id),
            vec![event(
                cancelled.into(),
                ActorKind::Frontend,
                "spenden.example.org",
                at + Duration::hours(3),
                Uuid::now_v7(),
            )],
        ));
    }
    let mut scrubbed = false;
    if rng.gen_bool(0.9) {
        let exported = ev::DonationExported {
            batch_id: format!("batch-{}", id / 1000),
            exported_at: Some(to_timestamp(at + Duration::days(1))),
        };
        parts.push(part(
            streams::export(id),
            vec![system(exported.into(), "export-batch", 24 * 60)],
        ));
        if rng.gen_bool(0.8) {
            let scrub = ev::PersonalDataScrubbed {
                rule: ev::ScrubRule::Exported as i32,
                scrubbed_at: Some(to_timestamp(at + Duration::days(2))),
            };
            parts.push(part(
                streams::scrub(id),
                vec![system(scrub.into(), "scrub", 48 * 60)],
            ));
            scrubbed = true;
        }
    }
    (parts, scrubbed)
}

async fn generate(dir: &Path, donations: u64) -> u64 {
    let log = SqliteEventLog::open(&dir.join("events.sqlite"))
        .await
        .unwrap();
    // Create the key store's tables, then write the keys in bulk.
    drop(
        KeyStore::open_sqlite(&dir.join("keys.sqlite"))
            .await
            .unwrap(),
    );
    let mut keys =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.join("keys.sqlite").display()))
            .await
            .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let started = Instant::now();
    let mut events = 0u64;
    let mut first = 1;
    while first <= donations {
        let last = (first + DONATIONS_PER_APPEND - 1).min(donations);
        let mut parts = Vec::new();
        let mut live_keys = Vec::new();
        for id in first..=last {
            let key = DataKey::random();
            let (p, scrubbed) = donation_life(id, &mut rng, &key);
            // A scrubbed donation's key is gone (as after `ledger scrub`).
            if !scrubbed {
                live_keys.push((id as i64, key.expose_for_tests().to_vec()));
            }
            events += p.iter().map(|p| p.events.len() as u64).sum::<u64>();
            parts.extend(p);
        }
        log.append_atomic(parts).await.unwrap();
        let mut tx = keys.begin().await.unwrap();
        for (id, key) in live_keys {
            sqlx::query("INSERT INTO data_key (key_id, key, created_at) VALUES (?1, ?2, 0)")
                .bind(id)
                .bind(key)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        if last.is_multiple_of(100_000) || last == donations {
            eprintln!(
                "generated {last} donations, {events} events ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        first = last + 1;
    }
    events
}

fn main() {
    // `cargo bench` passes `--bench`; only run when asked as a bench (not under `cargo test`).
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let donations: u64 = std::env::var("LEDGER_VERIFY_BENCH_DONATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::path::PathBuf::from(
        std::env::var("LEDGER_VERIFY_BENCH_DIR")
            .unwrap_or_else(|_| "/tmp/ledger-verify-bench".into()),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let marker = dir.join("projected");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        rt.block_on(async {
            let started = Instant::now();
            let events = generate(&dir, donations).await;
            eprintln!(
                "generated {donations} donations, {events} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            let log: Arc<dyn EventLog> = Arc::new(
                SqliteEventLog::open(&dir.join("events.sqlite"))
                    .await
                    .unwrap(),
            );
            let vault = Vault::new(
                KeyStore::open_sqlite(&dir.join("keys.sqlite"))
                    .await
                    .unwrap(),
            );
            let rm = ReadModel::connect(&format!(
                "sqlite://{}",
                dir.join("readmodel.sqlite").display()
            ))
            .await
            .unwrap();
            rm.migrate().await.unwrap();
            let started = Instant::now();
            let outcome = Projector::with_config(
                log,
                rm.clone(),
                ProjectorConfig {
                    vault: Some(vault),
                    ..ProjectorConfig::default()
                },
            )
            .run_once()
            .await
            .unwrap();
            eprintln!(
                "projected {} events in {:.1} s",
                outcome.events,
                started.elapsed().as_secs_f64()
            );
            rm.close().await;
        });
        std::fs::write(&marker, donations.to_string()).unwrap();
    }
    let binary = env!("CARGO_BIN_EXE_ledger");
    eprintln!(
        "running: /usr/bin/time -v {binary} --data-dir {} verify",
        dir.display()
    );
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(binary)
        .arg("--data-dir")
        .arg(&dir)
        .arg("verify")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        let l = line.trim();
        if l.starts_with("Elapsed (wall clock)")
            || l.starts_with("Maximum resident set size")
            || l.starts_with("User time")
            || l.starts_with("System time")
            || l.starts_with("Exit status")
            || l.contains("compared ")
            || l.contains("ERROR")
            || l.starts_with("Error")
            || l.starts_with("Caused by")
            || l.starts_with(|c: char| c.is_ascii_digit() && l.contains(": "))
        {
            println!("{l}");
        }
    }
}
