//! Shared harness of the projection tests: a real `SqliteEventLog` in a tempdir, a read model
//! on SQLite or on a throw-away PostgreSQL or MariaDB database, and event builders.
//!
//! Over 600 lines: builders for every event type and the workload that uses them all, kept
//! together so a new event type is added in one place.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use ledger::domain::DomainEvent;
use ledger::projection::{ProjectorConfig, ReadModel, RetryPolicy};
use ledger::proto::events as ev;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata, Position};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// Which read-model database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    Mariadb,
}

/// The read-model conformance suite: runs each listed async test body (`async fn(Env)`)
/// against every read-model backend, as `<backend>::<test>`. The backends are the lines of
/// this macro, one each (module name, [`Db`] variant); adding a backend adds its line here
/// and its arm in [`Env::new`].
#[macro_export]
macro_rules! read_model_conformance {
    ($($name:ident),+ $(,)?) => {
        $crate::read_model_backend_tests!(sqlite, Sqlite, [$($name),+]);
        $crate::read_model_backend_tests!(postgres, Postgres, [$($name),+]);
        $crate::read_model_backend_tests!(mariadb, Mariadb, [$($name),+]);
    };
}

/// One backend's module of the conformance suite.
#[macro_export]
macro_rules! read_model_backend_tests {
    ($module:ident, $db:ident, [$($name:ident),+]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(env) = $crate::projection_support::Env::new($crate::projection_support::Db::$db).await {
                        super::$name(env).await;
                    }
                }
            )+
        }
    };
}

// The crate's shared support: `Env` needs its PostgreSQL and MariaDB databases.
use crate::support::{mariadb, postgres};

#[allow(unused_imports)] // not every test crate that includes the harness needs both
pub use postgres::{admin_url, TestDatabase};

/// One test's world: an event log and a read-model URL.
pub struct Env {
    pub db: Db,
    pub dir: tempfile::TempDir,
    pub log: SqliteEventLog,
    pub url: String,
    pub pg: Option<TestDatabase>,
    pub maria: Option<mariadb::TestDatabase>,
    clock: std::sync::atomic::AtomicI64,
}

impl Env {
    /// A fresh world, or `None` (after a loud SKIPPED line) when its database server is
    /// unreachable outside CI. Under `CI=true` an unreachable server fails the test.
    pub async fn new(db: Db) -> Option<Self> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteEventLog::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        let (mut pg, mut maria) = (None, None);
        let url = match db {
            Db::Sqlite => format!("sqlite://{}", dir.path().join("readmodel.db").display()),
            Db::Postgres => pg
                .insert(postgres::fresh_database("projection").await?)
                .url
                .clone(),
            Db::Mariadb => maria
                .insert(mariadb::fresh_database("projection").await?)
                .url
                .clone(),
        };
        Some(Self {
            db,
            dir,
            log,
            url,
            pg,
            maria,
            clock: std::sync::atomic::AtomicI64::new(0),
        })
    }

    pub fn log(&self) -> Arc<dyn EventLog> {
        Arc::new(self.log.clone())
    }

    /// The test's read model, migrated.
    pub async fn read_model(&self) -> ReadModel {
        let rm = ReadModel::connect(&self.url).await.unwrap();
        rm.migrate().await.unwrap();
        rm
    }

    /// A second, independent read model of the same dialect (another SQLite file, another
    /// PostgreSQL schema or another MariaDB database beside the test's), for comparing runs.
    pub async fn other_read_model(&self, name: &str) -> ReadModel {
        let rm = match self.db {
            Db::Sqlite => {
                let url = format!(
                    "sqlite://{}",
                    self.dir.path().join(format!("{name}.db")).display()
                );
                ReadModel::connect(&url).await.unwrap()
            }
            Db::Postgres => ReadModel::connect_with_schema(&self.url, name)
                .await
                .unwrap(),
            Db::Mariadb => {
                // `<test database>_<name>`, dropped with the test's database.
                let maria = self.maria.as_ref().unwrap();
                let database = format!("{}_{name}", maria.name);
                let url = maria.url.replace(&maria.name, &database);
                let mut admin = <sqlx::MySqlConnection as sqlx::Connection>::connect(&maria.url)
                    .await
                    .unwrap();
                sqlx::query(&format!(
                    "CREATE DATABASE IF NOT EXISTS `{database}` \
                     CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .execute(&mut admin)
                .await
                .unwrap();
                ReadModel::connect(&url).await.unwrap()
            }
        };
        rm.migrate().await.unwrap();
        rm
    }

    /// A deterministic, increasing "occurred at" time.
    pub fn next_time(&self) -> DateTime<Utc> {
        let n = self.clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        base_time() + chrono::Duration::seconds(n)
    }

    /// Appends one event by `actor` and returns its position.
    pub async fn append_as(
        &self,
        stream: &str,
        event: impl Into<DomainEvent>,
        actor: Actor,
    ) -> Position {
        let event = event.into();
        let mut metadata = Metadata::new(actor, "test", Uuid::new_v4());
        metadata.occurred_at = self.next_time();
        self.log
            .append(
                stream,
                ExpectedRevision::Any,
                vec![EventData {
                    id: Uuid::new_v4(),
                    event_type: event.event_type().to_owned(),
                    payload: event.encode(),
                    metadata: metadata.into(),
                }],
            )
            .await
            .unwrap()
            .position
    }

    /// Appends one event by the system actor.
    pub async fn append(&self, stream: &str, event: impl Into<DomainEvent>) -> Position {
        self.append_as(stream, event, Actor::system("test")).await
    }

    /// Appends raw bytes under any type name.
    pub async fn append_raw(&self, stream: &str, event_type: &str, payload: Vec<u8>) -> Position {
        self.log
            .append(
                stream,
                ExpectedRevision::Any,
                vec![EventData {
                    id: Uuid::new_v4(),
                    event_type: event_type.to_owned(),
                    payload,
                    metadata: Metadata::new(Actor::system("test"), "test", Uuid::new_v4()).into(),
                }],
            )
            .await
            .unwrap()
            .position
    }
}

/// `ledger verify` of the test's read model, caught up first, with the test projector's
/// settings.
pub async fn verify(env: &Env) -> ledger::projection::verify::VerifyReport {
    ledger::projection::verify::verify(
        env.log(),
        &env.url,
        ledger::projection::verify::VerifyConfig {
            projector: config(100),
            catch_up_live: true,
            compare: Default::default(),
        },
        &|_| {},
    )
    .await
    .unwrap()
}

/// Projects the whole log, checks that `table` holds `rows` rows, that `ledger verify` finds the
/// read model identical to a rebuild (comparing `table`), and that a real rebuild yields the
/// same tables.
pub async fn assert_rebuild_and_verify_agree(env: &Env, table: &str, rows: usize) {
    let rm = env.read_model().await;
    ledger::projection::Projector::with_config(env.log(), rm.clone(), config(4))
        .run_once()
        .await
        .unwrap();
    let mut live = rm.dump().await.unwrap();
    assert_eq!(live[table].len(), rows);

    let report = verify(env).await;
    assert!(report.is_identical(), "{:?}", report.differing_tables());
    let compared: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    assert!(
        compared.contains(&table),
        "{table} not compared: {compared:?}"
    );

    ledger::projection::rebuild(env.log(), &env.url, config(3))
        .await
        .unwrap();
    let rm = ReadModel::connect(&env.url).await.unwrap();
    let mut rebuilt = rm.dump().await.unwrap();
    rebuilt.remove("projector_checkpoint");
    live.remove("projector_checkpoint");
    assert_eq!(rebuilt, live);
}

/// Row `id` (its first column) of a table or legacy view, as column name → rendered value.
pub async fn row(
    rm: &ReadModel,
    table: &str,
    id: u64,
) -> std::collections::BTreeMap<String, String> {
    rm.row(table, id as i64)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {table} row {id}"))
}

/// Asserts the `expected` (column, rendered value) pairs of a row.
pub fn check(row: &std::collections::BTreeMap<String, String>, expected: &[(&str, &str)]) {
    for (column, value) in expected {
        assert_eq!(
            row.get(*column).map(String::as_str),
            Some(*value),
            "column {column} of {row:?}"
        );
    }
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A fast-retrying projector configuration.
pub fn config(batch_size: usize) -> ProjectorConfig {
    ProjectorConfig {
        batch_size,
        // Rebuilds in tests run over several batches too, as small live catch-ups do.
        rebuild_batch_size: batch_size,
        retry: RetryPolicy {
            initial: std::time::Duration::from_millis(10),
            max: std::time::Duration::from_millis(200),
            max_attempts: None,
        },
        idle_poll: std::time::Duration::from_millis(50),
        ..ProjectorConfig::default()
    }
}

pub fn foc(user: &str) -> Actor {
    Actor {
        kind: ActorKind::FocUser,
        id: user.to_owned(),
    }
}

pub fn method(code: &str) -> ev::PaymentMethod {
    match code {
        "BEZ" => ev::PaymentMethod::DirectDebit,
        "UEB" => ev::PaymentMethod::BankTransfer,
        "MCP" => ev::PaymentMethod::CreditCard,
        "PPL" => ev::PaymentMethod::Paypal,
        "SUB" => ev::PaymentMethod::Sofort,
        other => panic!("{other}"),
    }
}

pub fn person() -> ev::PersonalData {
    ev::PersonalData {
        title: "Dr.".into(),
        first_name: "Jeroen".into(),
        last_name: "De Dauw".into(),
        company_name: String::new(),
        street: "Zollstraße 3".into(),
        postcode: "12345".into(),
        city: "Berlin".into(),
        country: "DE".into(),
        email: "jeroen@example.org".into(),
    }
}

/// `DonationCreated` of the WMDE fixture donor: 13.37 EUR every 3 months, tracking test/gelb.
pub fn donation_created(
    id: u64,
    payment_id: u64,
    code: &str,
    created: DateTime<Utc>,
) -> ev::DonationCreated {
    ev::DonationCreated {
        donation_id: id,
        created_at: Some(ts(created)),
        amount: Some(ev::Money {
            cents: 1337,
            currency: "EUR".into(),
        }),
        interval_months: if code == "SUB" { 0 } else { 3 },
        payment_id,
        payment_method: method(code) as i32,
        donor: Some(ev::DonorPublic {
            kind: ev::DonorKind::Person as i32,
            salutation: "Herr".into(),
            wants_newsletter: true,
            wants_receipt: true,
        }),
        personal: Some(person()),
        personal_sealed: None,
        tracking: Some(ev::Tracking {
            campaign: "Test".into(),
            keyword: "Gelb".into(),
            impression_count: 3,
            banner_impression_count: 1,
            contribution_tracking_id: 0,
        }),
        comment: Some(ev::Comment {
            is_public: false,
            display_name: String::new(),
            public_text: String::new(),
            private_text: Some(ev::CommentText {
                text: "for the wiki".into(),
            }),
            private_text_sealed: None,
        }),
    }
}

pub fn payment_initiated(id: u64, donation_id: u64, code: &str) -> ev::PaymentInitiated {
    let bank = match code {
        "BEZ" => Some(ev::BankData {
            iban: "DE02120300000000202051".into(),
            bic: "BYLADEM1001".into(),
            payment_reference_code: String::new(),
        }),
        "UEB" | "SUB" => Some(ev::BankData {
            iban: String::new(),
            bic: String::new(),
            payment_reference_code: "XW-DAR-E99-X".into(),
        }),
        _ => None,
    };
    ev::PaymentInitiated {
        payment_id: id,
        donation_id,
        method: method(code) as i32,
        amount: Some(ev::Money {
            cents: 1337,
            currency: "EUR".into(),
        }),
        interval_months: if code == "SUB" { 0 } else { 3 },
        bank,
        bank_sealed: None,
        parent_payment_id: 0,
    }
}

pub fn booked(at: DateTime<Utc>, txn: &str) -> ev::PaymentBooked {
    ev::PaymentBooked {
        valuation_date: Some(ts(at)),
        amount: Some(ev::Money {
            cents: 1337,
            currency: "EUR".into(),
        }),
        provider: Some(ev::ProviderData {
            transaction_id: txn.into(),
            payer_id: "PAYER-1".into(),
            payment_status: "Completed".into(),
            ..Default::default()
        }),
        provider_sealed: None,
    }
}

/// Creates donation `id` with payment `id + 100_000` of method `code`.
pub async fn create_donation(env: &Env, id: u64, code: &str) {
    let pid = id + 100_000;
    let created = env.next_time();
    env.append(&format!("payment-{pid}"), payment_initiated(pid, id, code))
        .await;
    env.append(
        &format!("donation-{id}"),
        donation_created(id, pid, code, created),
    )
    .await;
}

/// Appends a realistic random mix of events for `donations` donations (ids from `first`),
/// including contribution tracking, and returns how many events it appended.
pub async fn workload(env: &Env, first: u64, donations: u64, seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let codes = ["BEZ", "UEB", "MCP", "PPL", "SUB"];
    let mut appended = 0;
    for id in first..first + donations {
        let code = codes[rng.gen_range(0..codes.len())];
        create_donation(env, id, code).await;
        appended += 2;
        let pid = id + 100_000;
        if matches!(code, "MCP" | "PPL" | "SUB") && rng.gen_bool(0.7) {
            env.append(
                &format!("payment-{pid}"),
                booked(env.next_time(), &format!("TXN-{id}")),
            )
            .await;
            appended += 1;
        }
        if rng.gen_bool(0.2) {
            env.append(
                &format!("moderation-{id}"),
                ev::ModerationReasonsRaised {
                    reasons: vec![ev::ModerationReason {
                        identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
                        source: "amount".into(),
                    }],
                },
            )
            .await;
            appended += 1;
            if rng.gen_bool(0.5) {
                env.append_as(
                    &format!("moderation-{id}"),
                    ev::ModerationApproved {
                        as_anonymous: false,
                    },
                    foc("alice"),
                )
                .await;
                appended += 1;
            }
        }
        if matches!(code, "BEZ" | "UEB") && rng.gen_bool(0.1) {
            env.append(
                &format!("deletion-{id}"),
                ev::DonationCancelled {
                    reason: "donor".into(),
                },
            )
            .await;
            appended += 1;
        }
        if rng.gen_bool(0.4) {
            env.append(
                &format!("export-{id}"),
                ev::DonationExported {
                    batch_id: format!("batch-{}", id / 10),
                    exported_at: Some(ts(env.next_time())),
                },
            )
            .await;
            appended += 1;
            if rng.gen_bool(0.5) {
                env.append(
                    &format!("scrub-{id}"),
                    ev::PersonalDataScrubbed {
                        rule: ev::ScrubRule::Exported as i32,
                        scrubbed_at: Some(ts(env.next_time())),
                    },
                )
                .await;
                appended += 1;
            }
        }
        if rng.gen_bool(0.3) {
            let ct = id + 500_000;
            env.append(
                &format!("contribution_tracking-{ct}"),
                ev::ContributionTrackingRecorded {
                    contribution_tracking_id: ct,
                    allocation_token: format!("alloc-{ct}"),
                    fields: Some(ev::ContributionTrackingFields {
                        amount: Some("13.37".into()),
                        currency: Some("EUR".into()),
                        utm_source: Some("B26_WMDE.lp1.dsk".into()),
                        ..Default::default()
                    }),
                },
            )
            .await;
            env.append(
                &format!("contribution_tracking-{ct}"),
                ev::ContributionLinked {
                    contribution_id: id,
                },
            )
            .await;
            appended += 2;
        }
    }
    appended
}

/// One random change to an existing donation `id` (payment `id + 100_000`), of the kind `kind`
/// (taken modulo the number of kinds): together the kinds, with creation, cover every event
/// type of the ledger. `follow_up` is the next free id for a follow-up donation and payment.
async fn change_donation(env: &Env, rng: &mut StdRng, id: u64, kind: usize, follow_up: &mut u64) {
    let pid = id + 100_000;
    let (donation, payment) = (format!("donation-{id}"), format!("payment-{pid}"));
    let money = |cents| {
        Some(ev::Money {
            cents,
            currency: "EUR".into(),
        })
    };
    match kind % 20 {
        0 => {
            // Some bookings carry no valuation date or amount.
            let mut b = booked(env.next_time(), &format!("TXN-{id}-{}", rng.gen::<u16>()));
            if rng.gen_bool(0.3) {
                b.valuation_date = None;
                b.amount = None;
            }
            env.append(&payment, b).await;
        }
        1 => {
            env.append(
                &payment,
                ev::PaymentFailed {
                    reason: "declined".into(),
                },
            )
            .await;
        }
        2 => {
            env.append(
                &payment,
                ev::PaymentCancelled {
                    reason: "donor".into(),
                },
            )
            .await;
        }
        3 => {
            env.append(
                &payment,
                ev::PaymentRestored {
                    reason: "mistake".into(),
                },
            )
            .await;
        }
        4 => {
            // A refund or charge-back without an amount refunds nothing (the domain's rule).
            let amount = if rng.gen_bool(0.5) { money(500) } else { None };
            env.append(
                &payment,
                ev::PaymentRefunded {
                    amount,
                    reason: "asked".into(),
                },
            )
            .await;
        }
        5 => {
            let amount = if rng.gen_bool(0.5) { money(1337) } else { None };
            env.append(
                &payment,
                ev::ChargebackReceived {
                    amount,
                    reason: "bank".into(),
                },
            )
            .await;
        }
        6 => {
            let (child_donation, child_payment) = (*follow_up, *follow_up + 100_000);
            *follow_up += 1;
            let at = env.next_time();
            env.append(
                &payment,
                ev::FollowUpPaymentBooked {
                    child_payment_id: child_payment,
                    child_donation_id: child_donation,
                    valuation_date: Some(ts(at)),
                    amount: money(1337),
                    provider: Some(ev::ProviderData {
                        transaction_id: format!("TXN-F-{child_donation}"),
                        ..Default::default()
                    }),
                    provider_sealed: None,
                },
            )
            .await;
            let parent = donation_created(id, pid, "PPL", at);
            env.append(
                &format!("donation-{child_donation}"),
                ev::FollowUpDonationCreated {
                    donation_id: child_donation,
                    parent_donation_id: id,
                    payment_id: child_payment,
                    created_at: Some(ts(at)),
                    amount: money(1337),
                    interval_months: 1,
                    payment_method: method("PPL") as i32,
                    donor: parent.donor,
                    tracking: parent.tracking,
                },
            )
            .await;
        }
        7 => {
            let mut personal = person();
            personal.city = format!("City {}", rng.gen::<u16>());
            env.append(
                &donation,
                ev::DonorUpdated {
                    donor: Some(ev::DonorPublic {
                        kind: ev::DonorKind::Company as i32,
                        salutation: String::new(),
                        wants_newsletter: rng.gen(),
                        wants_receipt: rng.gen(),
                    }),
                    personal: Some(personal),
                    personal_sealed: None,
                },
            )
            .await;
        }
        8 => {
            let public = rng.gen_bool(0.5);
            env.append(
                &donation,
                ev::CommentAdded {
                    comment: Some(ev::Comment {
                        is_public: public,
                        display_name: "Ada".into(),
                        public_text: if public {
                            "public thanks".into()
                        } else {
                            String::new()
                        },
                        private_text: (!public).then(|| ev::CommentText {
                            text: "private thanks".into(),
                        }),
                        private_text_sealed: None,
                    }),
                },
            )
            .await;
        }
        9 => {
            env.append(
                &donation,
                ev::CommentPublished {
                    public_text: "now public".into(),
                    display_name: "A.".into(),
                },
            )
            .await;
        }
        10 => {
            env.append(
                &donation,
                ev::CommentRetracted {
                    reason: "spam".into(),
                },
            )
            .await;
        }
        11 => {
            env.append(
                &format!("moderation-{id}"),
                ev::ModerationReasonsRaised {
                    reasons: vec![ev::ModerationReason {
                        identifier: ev::ModerationIdentifier::AddressContentViolation as i32,
                        source: "street".into(),
                    }],
                },
            )
            .await;
        }
        12 => {
            env.append_as(
                &format!("moderation-{id}"),
                ev::ModerationApproved {
                    as_anonymous: rng.gen_bool(0.3),
                },
                foc("alice"),
            )
            .await;
        }
        13 => {
            env.append_as(
                &format!("moderation-{id}"),
                ev::ManuallyFlagged { note: "odd".into() },
                foc("bob"),
            )
            .await;
        }
        14 => {
            env.append(
                &format!("deletion-{id}"),
                ev::DonationCancelled {
                    reason: "donor".into(),
                },
            )
            .await;
        }
        15 => {
            env.append_as(
                &format!("deletion-{id}"),
                ev::DonationDeleted {
                    reason: "test".into(),
                },
                foc("alice"),
            )
            .await;
        }
        16 => {
            env.append_as(
                &format!("deletion-{id}"),
                ev::DonationRestored {
                    reason: "oops".into(),
                },
                foc("alice"),
            )
            .await;
        }
        17 => {
            env.append(
                &format!("export-{id}"),
                ev::DonationExported {
                    batch_id: format!("batch-{}", id / 10),
                    exported_at: rng.gen_bool(0.8).then(|| ts(env.next_time())),
                },
            )
            .await;
        }
        18 => {
            env.append(
                &format!("scrub-{id}"),
                ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::CancelledOrDeleted as i32,
                    scrubbed_at: Some(ts(env.next_time())),
                },
            )
            .await;
        }
        _ => {
            let ct = id + 500_000;
            let stream = format!("contribution_tracking-{ct}");
            // A second allocation token now and then: a collision the read model records.
            let token = if rng.gen_bool(0.1) { "other" } else { "first" };
            env.append(
                &stream,
                ev::ContributionTrackingRecorded {
                    contribution_tracking_id: ct,
                    allocation_token: format!("{token}-{ct}"),
                    fields: Some(ev::ContributionTrackingFields {
                        amount: Some(format!(
                            "{}.{}",
                            rng.gen_range(1..100),
                            rng.gen_range(0..100)
                        )),
                        currency: Some("EUR".into()),
                        utm_source: Some("B26_WMDE.lp1.dsk".into()),
                        screen_width: Some(rng.gen_range(300..4000)),
                        tracking_date: Some(ts(env.next_time())),
                        ..Default::default()
                    }),
                },
            )
            .await;
            env.append(
                &stream,
                ev::ContributionLinked {
                    contribution_id: rng.gen_range(1..3) * id,
                },
            )
            .await;
        }
    }
}

/// The application `id` of a company: a sustaining membership, 25 EUR a quarter by bank
/// transfer, confirmed.
pub fn membership_applied(env: &Env, id: u64) -> ev::MembershipApplied {
    ev::MembershipApplied {
        membership_id: id,
        created_at: Some(ts(env.next_time())),
        applicant_kind: ev::ApplicantKind::Company as i32,
        membership_type: ev::MembershipType::Sustaining as i32,
        fee: Some(ev::Money {
            cents: 2_500,
            currency: "EUR".into(),
        }),
        interval_months: 3,
        payment_id: id + 900_000,
        payment_method: ev::PaymentMethod::BankTransfer as i32,
        confirmed: true,
        ..Default::default()
    }
}

/// Appends the membership-only event types for application `id`: applied, cancelled,
/// restored, exported.
pub async fn membership_life(env: &Env, id: u64) {
    env.append(&format!("membership-{id}"), membership_applied(env, id))
        .await;
    let cancellation = format!("membership_cancellation-{id}");
    env.append(&cancellation, ev::MembershipCancelled::default())
        .await;
    env.append(&cancellation, ev::MembershipRestored::default())
        .await;
    env.append(
        &format!("membership_export-{id}"),
        ev::MembershipExported {
            batch_id: format!("m-{id}"),
            exported_at: Some(ts(env.next_time())),
        },
    )
    .await;
}

/// Appends the creation of address change `id` of donation `id` with its first token
/// `identifier`: the token's index entry and `AddressChangeCreated`.
pub async fn address_change_created(env: &Env, id: u64, identifier: &str) {
    env.append(
        &format!("address_change_token-{identifier}"),
        ev::AddressChangeTokenIssued {
            address_change_id: id,
        },
    )
    .await;
    env.append(
        &format!("address_change-{id}"),
        ev::AddressChangeCreated {
            address_change_id: id,
            identifier: identifier.to_owned(),
            external_id_kind: ev::ExternalIdKind::Donation as i32,
            external_id: id,
            address_type: ev::AddressType::Person as i32,
            created_at: Some(ts(env.next_time())),
        },
    )
    .await;
}

/// Appends the address-change event types for address change `id` of donation `id`: its
/// token, created, opted out, changed, exported.
pub async fn address_change_life(env: &Env, id: u64) {
    let token = |n: u64| format!("0b7d2f3e-5c1a-4b8e-9f00-{:012}", id * 10 + n);
    address_change_created(env, id, &token(0)).await;
    let stream = format!("address_change-{id}");
    env.append(
        &stream,
        ev::DonationReceiptOptedOut {
            new_identifier: token(1),
            changed_at: Some(ts(env.next_time())),
        },
    )
    .await;
    env.append(
        &stream,
        ev::AddressChanged {
            new_identifier: token(2),
            address_type: ev::AddressType::Company as i32,
            address: Some(ev::AddressData {
                company_name: "Umzug AG".into(),
                street: "Hafenstraße 9".into(),
                postcode: "20457".into(),
                city: "Hamburg".into(),
                country: "DE".into(),
                ..Default::default()
            }),
            changed_at: Some(ts(env.next_time())),
            ..Default::default()
        },
    )
    .await;
    env.append(
        &format!("address_change_export-{id}"),
        ev::AddressChangeExported {
            batch_id: format!("a-{id}"),
            exported_at: Some(ts(env.next_time())),
            identifier: token(2),
        },
    )
    .await;
}

/// Appends the subscription event types for subscription `id`: its code and duplicate index
/// entries, created, confirmed, exported.
pub async fn subscription_life(env: &Env, id: u64) {
    subscription_created(env, id).await;
    env.append(
        &format!("subscription-{id}"),
        ev::SubscriptionConfirmed {
            confirmed_at: Some(ts(env.next_time())),
        },
    )
    .await;
    env.append(
        &format!("subscription_export-{id}"),
        ev::SubscriptionExported {
            batch_id: format!("s-{id}"),
            exported_at: Some(ts(env.next_time())),
        },
    )
    .await;
}

/// Appends the creation of subscription `id`: its code and duplicate index entries, then
/// `SubscriptionCreated`.
pub async fn subscription_created(env: &Env, id: u64) {
    let code = format!("{id:032x}");
    let at = env.next_time();
    env.append(
        &format!("subscription_code-{code}"),
        ev::SubscriptionCodeIssued {
            subscription_id: id,
        },
    )
    .await;
    env.append(
        &format!("subscription_email-{:064x}", id),
        ev::SubscriptionEmailUsed {
            subscription_id: id,
            subscribed_at: Some(ts(at)),
        },
    )
    .await;
    env.append(
        &format!("subscription-{id}"),
        ev::SubscriptionCreated {
            subscription_id: id,
            subscriber: Some(ev::SubscriberData {
                email: format!("subscriber{id}@example.org"),
            }),
            tracking: "spring/banner".into(),
            source: "banner".into(),
            created_at: Some(ts(at)),
            confirmation_code: code,
            ..Default::default()
        },
    )
    .await;
}

/// The membership applications, address changes and subscriptions of a generated history
/// (ids from the one [`OtherContexts::new`] was given, unique across the three), and random
/// steps that create another or change one already there: a rebuild with a small row cache
/// has to load each of them back (or write it as it leaves) between its events.
pub struct OtherContexts {
    next_id: u64,
    memberships: Vec<u64>,
    /// Each address change with the number of its current token ([`address_token`]).
    address_changes: Vec<(u64, u64)>,
    subscriptions: Vec<u64>,
}

/// Token `n` of address change `id` (a UUID).
pub fn address_token(id: u64, n: u64) -> String {
    format!("0b7d2f3e-5c1a-4b8e-9f00-{:012}", id * 1000 + n)
}

impl OtherContexts {
    /// No entity yet; the first gets id `first`.
    pub fn new(first: u64) -> Self {
        Self {
            next_id: first,
            memberships: Vec::new(),
            address_changes: Vec::new(),
            subscriptions: Vec::new(),
        }
    }

    /// Appends `steps` random steps; returns how many events they appended.
    pub async fn steps(&mut self, env: &Env, rng: &mut StdRng, steps: usize) -> usize {
        let mut appended = 0;
        for _ in 0..steps {
            appended += self.step(env, rng).await;
        }
        appended
    }

    /// Appends one random step: a new entity of a random context (one in four), or an event
    /// of a random kind on an existing one. Returns how many events it appended.
    pub async fn step(&mut self, env: &Env, rng: &mut StdRng) -> usize {
        let context = rng.gen_range(0..3);
        let existing = match context {
            0 => self.memberships.len(),
            1 => self.address_changes.len(),
            _ => self.subscriptions.len(),
        };
        if existing == 0 || rng.gen_bool(0.25) {
            let id = self.next_id;
            self.next_id += 1;
            return match context {
                0 => {
                    self.memberships.push(id);
                    env.append(&format!("membership-{id}"), membership_applied(env, id))
                        .await;
                    1
                }
                1 => {
                    self.address_changes.push((id, 0));
                    address_change_created(env, id, &address_token(id, 0)).await;
                    2
                }
                _ => {
                    self.subscriptions.push(id);
                    subscription_created(env, id).await;
                    3
                }
            };
        }
        let pick = rng.gen_range(0..existing);
        match context {
            0 => change_membership(env, rng, self.memberships[pick]).await,
            1 => {
                let (id, token) = &mut self.address_changes[pick];
                change_address_change(env, rng, *id, token).await;
            }
            _ => change_subscription(env, rng, self.subscriptions[pick]).await,
        }
        1
    }
}

/// One random event on the streams of membership application `id`.
async fn change_membership(env: &Env, rng: &mut StdRng, id: u64) {
    let stream = |category: &str| format!("{category}-{id}");
    match rng.gen_range(0..7) {
        0 => {
            let (identifier, source) = if rng.gen_bool(0.5) {
                (ev::ModerationIdentifier::MembershipFeeTooHigh, "fee")
            } else {
                (ev::ModerationIdentifier::AddressContentViolation, "street")
            };
            env.append(
                &stream("membership_moderation"),
                ev::ModerationReasonsRaised {
                    reasons: vec![ev::ModerationReason {
                        identifier: identifier as i32,
                        source: source.into(),
                    }],
                },
            )
            .await
        }
        1 => {
            env.append_as(
                &stream("membership_moderation"),
                ev::ModerationApproved::default(),
                foc("alice"),
            )
            .await
        }
        2 => {
            env.append_as(
                &stream("membership_moderation"),
                ev::ManuallyFlagged { note: "odd".into() },
                foc("bob"),
            )
            .await
        }
        3 => {
            env.append(
                &stream("membership_cancellation"),
                ev::MembershipCancelled {
                    reason: "moved away".into(),
                },
            )
            .await
        }
        4 => {
            env.append(
                &stream("membership_cancellation"),
                ev::MembershipRestored {
                    reason: "mistake".into(),
                },
            )
            .await
        }
        5 => {
            env.append(
                &stream("membership_export"),
                ev::MembershipExported {
                    batch_id: format!("m-{}", id / 10),
                    exported_at: Some(ts(env.next_time())),
                },
            )
            .await
        }
        _ => {
            env.append(
                &stream("membership_scrub"),
                ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(ts(env.next_time())),
                },
            )
            .await
        }
    };
}

/// One random event on the streams of address change `id`, whose current token is number
/// `token` (a change issues the next).
async fn change_address_change(env: &Env, rng: &mut StdRng, id: u64, token: &mut u64) {
    match rng.gen_range(0..4) {
        0 => {
            *token += 1;
            env.append(
                &format!("address_change-{id}"),
                ev::DonationReceiptOptedOut {
                    new_identifier: address_token(id, *token),
                    changed_at: Some(ts(env.next_time())),
                },
            )
            .await
        }
        1 => {
            *token += 1;
            env.append(
                &format!("address_change-{id}"),
                ev::AddressChanged {
                    new_identifier: address_token(id, *token),
                    address_type: ev::AddressType::Person as i32,
                    address: Some(ev::AddressData {
                        first_name: "Grace".into(),
                        last_name: "Hopper".into(),
                        street: format!("Navy Yard {}", rng.gen_range(1..100)),
                        postcode: "20457".into(),
                        city: "Hamburg".into(),
                        country: "DE".into(),
                        ..Default::default()
                    }),
                    changed_at: Some(ts(env.next_time())),
                    ..Default::default()
                },
            )
            .await
        }
        2 => {
            // Now and then an export of a token that is no longer the current one.
            let exported = if *token > 0 && rng.gen_bool(0.2) {
                *token - 1
            } else {
                *token
            };
            env.append(
                &format!("address_change_export-{id}"),
                ev::AddressChangeExported {
                    batch_id: format!("a-{}", id / 10),
                    exported_at: Some(ts(env.next_time())),
                    identifier: address_token(id, exported),
                },
            )
            .await
        }
        _ => {
            env.append(
                &format!("address_change_scrub-{id}"),
                ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(ts(env.next_time())),
                },
            )
            .await
        }
    };
}

/// One random event on the streams of subscription `id`.
async fn change_subscription(env: &Env, rng: &mut StdRng, id: u64) {
    match rng.gen_range(0..3) {
        0 => {
            env.append(
                &format!("subscription-{id}"),
                ev::SubscriptionConfirmed {
                    confirmed_at: Some(ts(env.next_time())),
                },
            )
            .await
        }
        1 => {
            env.append(
                &format!("subscription_export-{id}"),
                ev::SubscriptionExported {
                    batch_id: format!("s-{}", id / 10),
                    exported_at: Some(ts(env.next_time())),
                },
            )
            .await
        }
        _ => {
            let rule = if rng.gen_bool(0.5) {
                ev::ScrubRule::Exported
            } else {
                ev::ScrubRule::ForcedRemoval
            };
            env.append(
                &format!("subscription_scrub-{id}"),
                ev::PersonalDataScrubbed {
                    rule: rule as i32,
                    scrubbed_at: Some(ts(env.next_time())),
                },
            )
            .await
        }
    };
}

/// Appends a history over every event type: `donations` donations (ids from 1), first one
/// change of each kind in turn (so every type occurs whatever the seed), two membership
/// applications, address changes and subscriptions, then random changes of random donations
/// interleaved with [`OtherContexts`] steps (more applications, address changes and
/// subscriptions, and changes to them). Returns the event types it appended.
pub async fn every_type_workload(
    env: &Env,
    donations: u64,
    changes: usize,
    seed: u64,
) -> std::collections::BTreeSet<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let codes = ["BEZ", "UEB", "MCP", "PPL", "SUB"];
    for id in 1..=donations {
        create_donation(env, id, codes[rng.gen_range(0..codes.len())]).await;
    }
    let mut follow_up = 800_000;
    for kind in 0..20 {
        let id = 1 + kind as u64 % donations;
        change_donation(env, &mut rng, id, kind, &mut follow_up).await;
    }
    // Membership applications with the ids of donations: streams of another context, which
    // the donation read model passes over.
    for id in [1, 2] {
        membership_life(env, id).await;
    }
    // Address changes of donations 1 and 2: a third context the others pass over.
    for id in [1, 2] {
        address_change_life(env, id).await;
    }
    // Subscriptions 1 and 2: a fourth context.
    for id in [1, 2] {
        subscription_life(env, id).await;
    }
    // Ids after those of the lives above.
    let mut others = OtherContexts::new(3);
    for _ in 0..changes {
        let id = rng.gen_range(1..=donations);
        let kind = rng.gen_range(0..20);
        change_donation(env, &mut rng, id, kind, &mut follow_up).await;
        if rng.gen_bool(0.4) {
            others.step(env, &mut rng).await;
        }
    }
    env.log()
        .read_all(0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// A membership application's moderation for a fee too high, raised by `source`.
pub fn fee_too_high(source: &str) -> ev::ModerationReasonsRaised {
    ev::ModerationReasonsRaised {
        reasons: vec![ev::ModerationReason {
            identifier: ev::ModerationIdentifier::MembershipFeeTooHigh as i32,
            source: source.into(),
        }],
    }
}
