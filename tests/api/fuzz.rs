//! The fuzzing harness of the intake: generated requests for every RPC, structurally valid
//! (valid requests with zero to three fields replaced by extreme, malformed or hostile values:
//! ids above `i64::MAX`, counts above `i32::MAX`, NUL/BEL/ESC and C1 controls, 5,000-character
//! strings, unknown enum values, timestamps before year 1000 or with negative nanos, missing
//! contexts, reused request ids) sent to the real server. Whatever was accepted is then
//! projected into a SQLite and a PostgreSQL read model.
//!
//! Fails on a panic or an opaque answer (INTERNAL, UNKNOWN, UNAVAILABLE), on a refusal that
//! names no field, on a refused call that appended anything, and on a projector that stops or
//! quarantines an event the intake accepted.
//!
//! `cargo test` runs a short, seeded run; `LEDGER_FUZZ_REQUESTS=1000000 LEDGER_FUZZ_SEED=…
//! cargo test --release --test api fuzz -- --nocapture` runs a long one.

use std::collections::BTreeMap;

use ledger::projection::{Projector, ProjectorConfig, ReadModel, RetryPolicy};
use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Code;

use crate::support::api::*;
use crate::support::postgres;

/// Requests of the run `cargo test` makes (seconds).
const DEFAULT_REQUESTS: u64 = 600;
/// Its seed, so that every CI run sends the same requests.
const DEFAULT_SEED: u64 = 20_261_206;

/// Hostile and boundary strings.
const STRINGS: &[&str] = &[
    "",
    " ",
    "Ada",
    "EUR",
    "eur",
    "XYZ1",
    "DE02120300000000202051",
    "COBADEFFXXX",
    "ada@example.org",
    "\u{0}",
    "nul\u{0}inside",
    "bell\u{7}",
    "esc\u{1b}[31m",
    "line\nbreak",
    "tab\tstop",
    "c1\u{85}control",
    "\u{7f}",
    "ünïcödé ✓ 😀",
    "'; DROP TABLE donation; --",
    "%s%n{}",
];

/// Boundary unsigned integers.
const U64S: &[u64] = &[
    0,
    1,
    2,
    7,
    i32::MAX as u64,
    i32::MAX as u64 + 1,
    u32::MAX as u64,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
];

/// Boundary amounts.
const CENTS: &[i64] = &[
    -1,
    0,
    1,
    99,
    100,
    1_337,
    9_999_999,
    10_000_000,
    i64::MAX,
    i64::MIN,
];

/// Generates requests from a seed, learning the ids the server hands out.
struct Gen {
    rng: StdRng,
    donations: u64,
    payments: u64,
    tracking: Vec<(u64, String)>,
    used_request_ids: Vec<api::RequestContext>,
}

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn string(&mut self) -> String {
        match self.rng.gen_range(0..10) {
            0 => "x".repeat(self.rng.gen_range(240..260)),
            1 => "ä".repeat(self.rng.gen_range(240..2100)),
            2 => "y".repeat(5_000),
            _ => STRINGS[self.rng.gen_range(0..STRINGS.len())].to_owned(),
        }
    }

    fn u64(&mut self) -> u64 {
        if self.chance(0.5) {
            U64S[self.rng.gen_range(0..U64S.len())]
        } else {
            self.rng.gen()
        }
    }

    fn u32(&mut self) -> u32 {
        match self.rng.gen_range(0..4) {
            0 => u32::MAX,
            1 => i32::MAX as u32 + 1,
            2 => self.rng.gen_range(0..13),
            _ => self.rng.gen(),
        }
    }

    fn cents(&mut self) -> i64 {
        CENTS[self.rng.gen_range(0..CENTS.len())]
    }

    fn enum_value(&mut self, valid: i32) -> i32 {
        match self.rng.gen_range(0..4) {
            0 => 0,
            1 => 99,
            2 => -1,
            _ => self.rng.gen_range(1..=valid),
        }
    }

    fn timestamp(&mut self) -> Option<prost_types::Timestamp> {
        let (seconds, nanos) = match self.rng.gen_range(0..7) {
            0 => return None,
            1 => (1_700_000_000, -1),
            2 => (1_700_000_000, 1_000_000_000),
            3 => (1 << 62, 0),
            4 => (-(1 << 62), 0),
            5 => (-62_135_596_800, 0), // year 1
            _ => (self.rng.gen_range(0..4_000_000_000), 999_999_999),
        };
        Some(prost_types::Timestamp { seconds, nanos })
    }

    /// A known donation id mostly, else anything.
    fn donation_id(&mut self) -> u64 {
        if self.donations > 0 && self.chance(0.8) {
            self.rng.gen_range(1..=self.donations + 1)
        } else {
            self.u64()
        }
    }

    fn payment_id(&mut self) -> u64 {
        if self.payments > 0 && self.chance(0.8) {
            self.rng.gen_range(1..=self.payments + 1)
        } else {
            self.u64()
        }
    }

    /// A fresh valid context, a reused one, a broken one or none.
    fn context(&mut self, kind: ActorKind) -> Option<api::RequestContext> {
        if !self.used_request_ids.is_empty() && self.chance(0.03) {
            let i = self.rng.gen_range(0..self.used_request_ids.len());
            return Some(self.used_request_ids[i].clone());
        }
        let mut ctx = context(kind)?;
        if self.chance(0.1) {
            match self.rng.gen_range(0..6) {
                0 => return None,
                1 => ctx.actor = None,
                2 => ctx.actor.as_mut()?.kind = self.enum_value(4),
                3 => ctx.actor.as_mut()?.id = self.string(),
                4 => ctx.source = self.string(),
                _ => ctx.request_id = self.string(),
            }
        }
        if self.used_request_ids.len() < 1000 {
            self.used_request_ids.push(ctx.clone());
        }
        Some(ctx)
    }

    fn donor(&mut self, d: &mut api::DonorInput) {
        match self.rng.gen_range(0..8) {
            0 => d.kind = self.enum_value(4),
            1 => d.first_name = self.string(),
            2 => d.street = self.string(),
            3 => d.email = self.string(),
            4 => d.salutation = self.string(),
            5 => d.company_name = self.string(),
            6 => d.postcode = self.string(),
            _ => d.city = self.string(),
        }
    }

    fn add_donation(&mut self) -> api::AddDonationRequest {
        let method = [
            ev::PaymentMethod::DirectDebit,
            ev::PaymentMethod::BankTransfer,
            ev::PaymentMethod::CreditCard,
            ev::PaymentMethod::Paypal,
            ev::PaymentMethod::Sofort,
        ][self.rng.gen_range(0..5)];
        let mut r = donation(method, self.rng.gen_range(100..100_000));
        r.context = self.context(ActorKind::Frontend);
        if self.chance(0.3) {
            r.comment = Some(api::CommentInput {
                text: "Thanks for the wiki".into(),
                is_public: self.chance(0.5),
                display_name: "Ada".into(),
            });
        }
        if self.chance(0.3) && !self.tracking.is_empty() {
            let i = self.rng.gen_range(0..self.tracking.len());
            r.tracking.as_mut().unwrap().contribution_tracking_id = self.tracking[i].0;
        }
        for _ in 0..self.mutations() {
            match self.rng.gen_range(0..12) {
                0 => r.payment.as_mut().unwrap().amount_cents = self.cents(),
                1 => r.payment.as_mut().unwrap().currency = self.string(),
                2 => r.payment.as_mut().unwrap().interval_months = self.u32(),
                3 => r.payment.as_mut().unwrap().method = self.enum_value(5),
                4 => r.payment.as_mut().unwrap().iban = self.string(),
                5 => r.tracking.as_mut().unwrap().impression_count = self.u32(),
                6 => r.tracking.as_mut().unwrap().contribution_tracking_id = self.u64(),
                7 => r.tracking.as_mut().unwrap().campaign = self.string(),
                8 => {
                    r.comment = Some(api::CommentInput {
                        text: self.string(),
                        is_public: self.chance(0.5),
                        display_name: self.string(),
                    })
                }
                9 => r.donation_id = self.u64(),
                10 => r.donor = None,
                _ => {
                    if let Some(d) = r.donor.as_mut() {
                        self.donor(d);
                    }
                }
            }
        }
        r
    }

    /// How many fields to spoil: none for about half of the requests.
    fn mutations(&mut self) -> usize {
        match self.rng.gen_range(0..10) {
            0..=4 => 0,
            5..=7 => 1,
            8 => 2,
            _ => 3,
        }
    }

    fn reason(&mut self) -> String {
        if self.mutations() > 0 {
            self.string()
        } else {
            "checked by the fundraising team".into()
        }
    }

    fn call(&mut self) -> Call {
        let donation_id = self.donation_id();
        let payment_id = self.payment_id();
        let action = |g: &mut Gen, kind| api::DonationActionRequest {
            context: g.context(kind),
            donation_id,
            reason: g.reason(),
        };
        match self.rng.gen_range(0..24) {
            0..=4 => Call::AddDonation(self.add_donation()),
            5 => Call::BookPayment(api::BookPaymentRequest {
                context: self.context(ActorKind::Provider),
                payment_id,
                transaction_id: if self.chance(0.8) {
                    format!("TXN-{}", self.rng.gen_range(0..1000))
                } else {
                    self.string()
                },
                valuation_date: if self.chance(0.5) {
                    self.timestamp()
                } else {
                    None
                },
                amount_cents: if self.chance(0.7) { 0 } else { self.cents() },
                currency: if self.chance(0.8) {
                    String::new()
                } else {
                    self.string()
                },
                payer_id: if self.chance(0.8) {
                    "PAYER".into()
                } else {
                    self.string()
                },
                subscription_id: String::new(),
                payer_status: String::new(),
                payment_status: if self.chance(0.8) {
                    "Completed".into()
                } else {
                    self.string()
                },
            }),
            6 => Call::FailPayment(api::FailPaymentRequest {
                context: self.context(ActorKind::Provider),
                payment_id,
                reason: self.reason(),
            }),
            7 | 8 => {
                let r = api::RefundPaymentRequest {
                    context: self.context(ActorKind::Provider),
                    payment_id,
                    amount_cents: if self.chance(0.5) { 0 } else { self.cents() },
                    currency: if self.chance(0.8) {
                        "EUR".into()
                    } else {
                        self.string()
                    },
                    reason: self.reason(),
                };
                if self.chance(0.5) {
                    Call::RefundPayment(r)
                } else {
                    Call::ReportChargeback(r)
                }
            }
            9 => Call::CancelDonation(action(self, ActorKind::Frontend)),
            10 => Call::DeleteDonation(action(self, ActorKind::FocUser)),
            11 => Call::RestoreDonation(action(self, ActorKind::FocUser)),
            12 => Call::FlagDonation(action(self, ActorKind::FocUser)),
            13 => Call::ApproveDonation(api::ApproveDonationRequest {
                context: self.context(ActorKind::FocUser),
                donation_id,
                as_anonymous: self.chance(0.2),
            }),
            14 => Call::AddComment(api::AddCommentRequest {
                context: self.context(ActorKind::Frontend),
                donation_id,
                comment: Some(api::CommentInput {
                    text: if self.chance(0.7) {
                        "a comment\nover two lines".into()
                    } else {
                        self.string()
                    },
                    is_public: self.chance(0.5),
                    display_name: if self.chance(0.8) {
                        "Ada".into()
                    } else {
                        self.string()
                    },
                }),
            }),
            15 => Call::PublishComment(action(self, ActorKind::FocUser)),
            16 => Call::RetractComment(action(self, ActorKind::FocUser)),
            17 => {
                let mut donor = donation(ev::PaymentMethod::BankTransfer, 100).donor;
                for _ in 0..self.mutations() {
                    self.donor(donor.as_mut().unwrap());
                }
                Call::UpdateDonor(api::UpdateDonorRequest {
                    context: self.context(ActorKind::Frontend),
                    donation_id,
                    donor,
                })
            }
            18 => {
                let n = self.rng.gen_range(0..4);
                Call::MarkExported(api::MarkExportedRequest {
                    context: self.context(ActorKind::System),
                    donation_ids: (0..n).map(|_| self.donation_id()).collect(),
                    batch_id: if self.chance(0.8) {
                        format!("batch-{}", self.rng.gen_range(0..100))
                    } else {
                        self.string()
                    },
                })
            }
            19 | 20 => {
                let (id, token) = match self.tracking.len() {
                    n if n > 0 && self.chance(0.8) => {
                        self.tracking[self.rng.gen_range(0..n)].clone()
                    }
                    _ => (self.u64(), self.string()),
                };
                let mut fields = ev::ContributionTrackingFields {
                    amount: Some("13.37".into()),
                    currency: Some("EUR".into()),
                    utm_campaign: Some("spring".into()),
                    payment_method_id: Some(3),
                    screen_width: Some(1920),
                    tracking_date: Some(prost_types::Timestamp {
                        seconds: 1_780_000_000,
                        nanos: 0,
                    }),
                    ..Default::default()
                };
                for _ in 0..self.mutations() {
                    match self.rng.gen_range(0..6) {
                        0 => fields.amount = Some(self.string()),
                        1 => {
                            fields.usd_amount = Some(
                                ["-1", "1e9", "12345678901234567890", "0.001"]
                                    [self.rng.gen_range(0..4)]
                                .into(),
                            )
                        }
                        2 => fields.tracking_date = self.timestamp(),
                        3 => fields.utm_source = Some(self.string()),
                        4 => fields.screen_height = Some(self.u32()),
                        _ => fields.payment_method_id = Some(self.rng.gen()),
                    }
                }
                if self.chance(0.5) {
                    Call::RecordContributionTracking(api::RecordContributionTrackingRequest {
                        context: self.context(ActorKind::Frontend),
                        contribution_tracking_id: id,
                        allocation_token: token,
                        fields: Some(fields),
                    })
                } else {
                    Call::LinkContribution(api::LinkContributionRequest {
                        context: self.context(ActorKind::System),
                        contribution_tracking_id: id,
                        contribution_id: if self.chance(0.8) {
                            self.rng.gen_range(1..1000)
                        } else {
                            self.u64()
                        },
                    })
                }
            }
            21 => Call::NextId(api::NextIdRequest {
                context: self.context(ActorKind::Frontend),
                sequence: if self.chance(0.8) {
                    "contribution-tracking".into()
                } else {
                    self.string()
                },
                count: if self.chance(0.8) {
                    self.rng.gen_range(1..4)
                } else {
                    self.u32()
                },
            }),
            22 => Call::GetDonation(api::GetDonationRequest { donation_id }),
            _ => Call::GetHistory(api::GetHistoryRequest { donation_id }),
        }
    }
}

/// What a run saw.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    accepted: u64,
    refused: BTreeMap<String, u64>,
    /// INTERNAL, UNKNOWN, UNAVAILABLE, DATA_LOSS: what a panicking handler answers, too.
    opaque: u64,
    failures: Vec<String>,
}

/// Whether a refusal names the field it refuses: the intake's field list (`invalid request:
/// field: rule`) or the request id it cannot reuse.
fn names_a_field(message: &str) -> bool {
    let field = |f: &str| {
        !f.is_empty()
            && f.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.[]".contains(c))
    };
    message
        .strip_prefix("invalid request: ")
        .and_then(|rest| rest.split_once(": "))
        .is_some_and(|(f, _)| field(f))
        || message.starts_with("request_id ")
}

/// Sends `call`, learning ids from what the server answers.
async fn send(app: &mut TestApp, g: &mut Gen, call: Call) -> Result<(), tonic::Status> {
    match call {
        Call::AddDonation(r) => {
            let a = app.client.add_donation(with_token(r, ADMIN)).await?;
            let a = a.into_inner();
            g.donations = g.donations.max(a.donation_id);
            g.payments = g.payments.max(a.payment_id);
            Ok(())
        }
        Call::NextId(r) => {
            let tracking = r.sequence == "contribution-tracking";
            let a = app.client.next_id(with_token(r, ADMIN)).await?.into_inner();
            if tracking && g.tracking.len() < 10_000 {
                g.tracking.push((a.first_id, a.allocation_token));
            }
            Ok(())
        }
        other => other.send(&mut app.client, ADMIN).await,
    }
}

/// Projects the whole log into `url` and returns the quarantined count; panics if the
/// projector stops.
async fn project_all(app: &TestApp, url: &str) -> u64 {
    let storage = ledger::config::StorageArgs::in_dir(app.dir.path());
    let rm = ReadModel::connect(url).await.unwrap();
    rm.migrate().await.unwrap();
    let config = ProjectorConfig {
        vault: Some(storage.open_vault().await.unwrap()),
        retry: RetryPolicy {
            max_attempts: Some(5),
            ..RetryPolicy::default()
        },
        ..ProjectorConfig::default()
    };
    let projector = Projector::with_config(app.log.clone(), rm.clone(), config);
    let outcome = projector
        .run_once()
        .await
        .unwrap_or_else(|e| panic!("the projector stopped on {url}: {e}"));
    assert_eq!(outcome.checkpoint, app.log.head_position().await.unwrap());
    let dump = rm.dump().await.unwrap();
    for q in &dump["projector_skipped_event"] {
        eprintln!("QUARANTINED on {url}: {q}");
    }
    rm.close().await;
    projector.stats().snapshot().quarantined_total
}

#[tokio::test]
async fn fuzzed_requests_to_every_rpc_are_answered_with_a_field_or_projected_on_both_dialects() {
    let requests: u64 = std::env::var("LEDGER_FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_REQUESTS);
    let seed: u64 = std::env::var("LEDGER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let pg = postgres::fresh_database("fuzz").await;
    let mut app = spawn_app().await;
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        donations: 0,
        payments: 0,
        tracking: Vec::new(),
        used_request_ids: Vec::new(),
    };
    let mut tally = Tally::default();
    let started = std::time::Instant::now();
    for i in 0..requests {
        let call = g.call();
        let description = format!("request {i} {}: {call:?}", call.method());
        let before = head(&app.log).await;
        tally.requests += 1;
        match send(&mut app, &mut g, call).await {
            Ok(()) => tally.accepted += 1,
            Err(status) => {
                *tally
                    .refused
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
                let opaque = matches!(
                    status.code(),
                    Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss
                );
                let fieldless =
                    status.code() == Code::InvalidArgument && !names_a_field(status.message());
                let appended = head(&app.log).await != before;
                tally.opaque += u64::from(opaque);
                if opaque || fieldless || appended {
                    let cut: String = description.chars().take(600).collect();
                    tally.failures.push(format!(
                        "{cut}\n  -> {:?} {:?} (appended: {appended})",
                        status.code(),
                        status.message().chars().take(300).collect::<String>()
                    ));
                }
            }
        }
        if (i + 1) % 100_000 == 0 {
            eprintln!(
                "fuzz: {} requests, {} accepted, {:.0} s",
                i + 1,
                tally.accepted,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let sending = started.elapsed();
    let sqlite_url = format!(
        "sqlite://{}",
        app.dir.path().join("fuzz-readmodel.db").display()
    );
    let quarantined_sqlite = project_all(&app, &sqlite_url).await;
    let quarantined_postgres = match &pg {
        Some(db) => Some(project_all(&app, &db.url).await),
        None => None,
    };
    eprintln!(
        "fuzz (seed {seed}): {} requests in {:.1} s, {} accepted, refused {:?}, {} failures, \
         {} opaque answers (a panic answers so), {} events in the log, quarantined: sqlite \
         {quarantined_sqlite}, postgres {:?}",
        tally.requests,
        sending.as_secs_f64(),
        tally.accepted,
        tally.refused,
        tally.failures.len(),
        tally.opaque,
        head(&app.log).await,
        quarantined_postgres
    );
    assert!(
        tally.failures.is_empty(),
        "{} failures, the first:\n{}",
        tally.failures.len(),
        tally
            .failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        tally.accepted > tally.requests / 10,
        "too few accepted to exercise the projector: {tally:?}"
    );
    assert_eq!(
        quarantined_sqlite, 0,
        "accepted events the SQLite projector could not project"
    );
    assert_eq!(
        quarantined_postgres.unwrap_or(0),
        0,
        "accepted events the PostgreSQL projector could not project"
    );
}
