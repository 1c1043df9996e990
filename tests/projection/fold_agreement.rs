//! One fold per stream: over generated histories of a donation's six streams (edge cases and
//! odd orders included), the projected `donation` and `payment` rows say column by column what
//! the domain's folds (`DonationView`) say, on SQLite, PostgreSQL and MariaDB, both when the
//! projector reloads its rows between small batches and after a rebuild that keeps them in
//! memory.
//!
//! The histories are generated with proptest strategies from a fixed seed (one run projects
//! every case at once, so a failure prints the case's history instead of shrinking it). One
//! thing no reader can see is left out of the histories: personal data readable after a scrub
//! (its key is gone). Donor and comment changes after an approval as anonymous are in them
//! (the row keeps `approved_as_anonymous`). A history starts with the donation's creation and
//! the payment stream with its initiation: before them the projector has no row to change (it quarantines such
//! events, the check below would fail) where the domain's folds start from their defaults.

use crate::projection_support;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ledger::domain::donation::DonorKind;
use ledger::domain::moderation::{ModerationIdentifier, ModerationReason};
use ledger::domain::view::DonorDisplay;
use ledger::domain::{DomainEvent, DonationView, PaymentMethod};
use ledger::projection::{Projector, ReadModel};
use ledger::proto::events as ev;
use projection_support::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

read_model_conformance!(
    projected_rows_equal_the_domain_folds_of_generated_histories,
    a_refund_or_charge_back_without_an_amount_adds_nothing,
    a_booking_without_a_valuation_date_leaves_the_valuation_date_empty,
    a_booking_after_a_cancellation_forgets_the_status_before_it,
);

/// Histories per dialect.
const CASES: u64 = 64;

/// One generated history: the events of each stream in stream order (ids filled in later),
/// and how they are interleaved.
#[derive(Debug, Clone)]
struct Case {
    follow_up: bool,
    created: ev::DonationCreated,
    donation: Vec<DomainEvent>,
    payment: Vec<DomainEvent>,
    moderation: Vec<DomainEvent>,
    deletion: Vec<DomainEvent>,
    export: Vec<DomainEvent>,
    scrub: Vec<DomainEvent>,
    picks: Vec<u16>,
}

fn time(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn money(cents: i64) -> Option<ev::Money> {
    Some(ev::Money {
        cents,
        currency: "EUR".into(),
    })
}

fn personal(last_name: &str) -> ev::PersonalData {
    ev::PersonalData {
        first_name: "Ada".into(),
        last_name: last_name.into(),
        email: "ada@example.org".into(),
        ..person()
    }
}

fn created() -> impl Strategy<Value = (bool, ev::DonationCreated)> {
    (
        any::<bool>(),
        prop::sample::select(PaymentMethod::ALL.to_vec()),
        prop::sample::select(vec![
            DonorKind::Person,
            DonorKind::Company,
            DonorKind::EmailOnly,
            DonorKind::Anonymous,
        ]),
        prop::sample::select(vec![0u32, 1, 3, 6, 12]),
        0u8..3,
        prop::option::of(Just(time(1_700_000_000))),
    )
        .prop_map(|(follow_up, method, kind, interval, comment, created_at)| {
            let comment = match comment {
                0 => None,
                1 => Some(ev::Comment {
                    is_public: true,
                    display_name: "Ada".into(),
                    public_text: "thanks".into(),
                    ..Default::default()
                }),
                _ => Some(ev::Comment {
                    private_text: Some(ev::CommentText {
                        text: "private".into(),
                    }),
                    ..Default::default()
                }),
            };
            let e = ev::DonationCreated {
                created_at: created_at.flatten(),
                amount: money(2_500),
                interval_months: interval,
                payment_method: method.to_proto(),
                donor: Some(ev::DonorPublic {
                    kind: kind as i32,
                    salutation: "Frau".into(),
                    wants_newsletter: true,
                    wants_receipt: false,
                }),
                personal: Some(personal("Lovelace")),
                tracking: Some(ev::Tracking {
                    campaign: "C".into(),
                    keyword: "k".into(),
                    impression_count: 2,
                    banner_impression_count: 1,
                    contribution_tracking_id: 0,
                }),
                comment,
                ..Default::default()
            };
            (follow_up, e)
        })
}

fn donation_events() -> impl Strategy<Value = Vec<DomainEvent>> {
    prop::collection::vec(0u8..6, 0..4).prop_map(|ops| {
        ops.into_iter()
            .map(|op| match op {
                0 => ev::DonorUpdated {
                    donor: Some(ev::DonorPublic {
                        kind: DonorKind::Company as i32,
                        salutation: "Firma".into(),
                        wants_newsletter: false,
                        wants_receipt: true,
                    }),
                    personal: Some(personal("Corp")),
                    personal_sealed: None,
                }
                .into(),
                1 => ev::CommentAdded {
                    comment: Some(ev::Comment {
                        private_text: Some(ev::CommentText {
                            text: "psst".into(),
                        }),
                        ..Default::default()
                    }),
                }
                .into(),
                2 => ev::CommentAdded {
                    comment: Some(ev::Comment {
                        is_public: true,
                        display_name: "A".into(),
                        public_text: "hello".into(),
                        ..Default::default()
                    }),
                }
                .into(),
                // Published without a comment added first: the domain tolerates it.
                3 => ev::CommentPublished {
                    public_text: "now public".into(),
                    display_name: "B".into(),
                }
                .into(),
                4 => ev::CommentRetracted::default().into(),
                _ => ev::DonorUpdated {
                    donor: Some(ev::DonorPublic {
                        kind: DonorKind::EmailOnly as i32,
                        ..Default::default()
                    }),
                    personal: None,
                    personal_sealed: None,
                }
                .into(),
            })
            .collect()
    })
}

/// A payment stream: initiated first (a payment event before it has no row to change), then
/// anything in any order, with the edge cases: bookings without a valuation date or provider,
/// refunds and charge-backs without an amount, a restore without a cancellation.
fn payment_events() -> impl Strategy<Value = Vec<DomainEvent>> {
    prop::collection::vec(0u8..11, 0..7).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| match op {
                0 => booked(base_time(), &format!("T{i}")).into(),
                1 => ev::PaymentBooked {
                    valuation_date: None,
                    amount: None,
                    provider: None,
                    provider_sealed: None,
                }
                .into(),
                2 => ev::PaymentFailed::default().into(),
                3 => ev::PaymentCancelled::default().into(),
                4 => ev::PaymentRestored::default().into(),
                5 => ev::PaymentRefunded {
                    amount: money(300),
                    reason: String::new(),
                }
                .into(),
                6 => ev::PaymentRefunded::default().into(),
                7 => ev::ChargebackReceived {
                    amount: money(700),
                    reason: String::new(),
                }
                .into(),
                8 => ev::ChargebackReceived::default().into(),
                9 => ev::FollowUpPaymentBooked {
                    valuation_date: time(1_700_100_000),
                    ..Default::default()
                }
                .into(),
                _ => ev::PaymentCancelled::default().into(),
            })
            .collect()
    })
}

fn raised(reasons: &[(ModerationIdentifier, &str)]) -> DomainEvent {
    ev::ModerationReasonsRaised {
        reasons: reasons
            .iter()
            .map(|(i, s)| ModerationReason::new(*i, *s).to_proto())
            .collect(),
    }
    .into()
}

fn moderation_events() -> impl Strategy<Value = Vec<DomainEvent>> {
    prop::collection::vec(0u8..6, 0..4).prop_map(|ops| {
        ops.into_iter()
            .map(|op| match op {
                0 => raised(&[(ModerationIdentifier::AmountTooHigh, "amount")]),
                1 => raised(&[
                    (ModerationIdentifier::EmailBlocked, "email"),
                    (ModerationIdentifier::AddressContentViolation, "street"),
                ]),
                // No reason at all: moves nothing.
                2 => raised(&[]),
                3 => ev::ManuallyFlagged::default().into(),
                4 => ev::ModerationApproved {
                    as_anonymous: false,
                }
                .into(),
                _ => ev::ModerationApproved { as_anonymous: true }.into(),
            })
            .collect()
    })
}

fn deletion_events() -> impl Strategy<Value = Vec<DomainEvent>> {
    prop::collection::vec(0u8..3, 0..4).prop_map(|ops| {
        ops.into_iter()
            .map(|op| match op {
                0 => ev::DonationCancelled::default().into(),
                1 => ev::DonationDeleted::default().into(),
                _ => ev::DonationRestored::default().into(),
            })
            .collect()
    })
}

/// Exports and scrubs: none, one or a repeated one (the first counts), with or without time.
fn export_events() -> impl Strategy<Value = Vec<DomainEvent>> {
    prop::collection::vec(any::<bool>(), 0..3).prop_map(|timed| {
        timed
            .into_iter()
            .enumerate()
            .map(|(i, timed)| {
                ev::DonationExported {
                    batch_id: format!("batch-{i}"),
                    exported_at: if timed {
                        time(1_700_200_000 + i as i64)
                    } else {
                        None
                    },
                }
                .into()
            })
            .collect()
    })
}

fn scrub_events() -> impl Strategy<Value = Vec<DomainEvent>> {
    prop::collection::vec((1i32..5, any::<bool>()), 0..3).prop_map(|scrubs| {
        scrubs
            .into_iter()
            .enumerate()
            .map(|(i, (rule, timed))| {
                ev::PersonalDataScrubbed {
                    rule,
                    scrubbed_at: if timed {
                        time(1_700_300_000 + i as i64)
                    } else {
                        None
                    },
                }
                .into()
            })
            .collect()
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        created(),
        donation_events(),
        payment_events(),
        moderation_events(),
        deletion_events(),
        export_events(),
        scrub_events(),
        prop::collection::vec(any::<u16>(), 0..30),
    )
        .prop_map(
            |(
                (follow_up, created),
                donation,
                payment,
                moderation,
                deletion,
                export,
                scrub,
                picks,
            )| {
                Case {
                    follow_up,
                    created,
                    donation,
                    payment,
                    moderation,
                    deletion,
                    export,
                    scrub,
                    picks,
                }
            },
        )
}

impl Case {
    /// The history of donation `id` (payment `id + 100_000`) in log order: the creation first
    /// (events of the other streams of a donation not yet created have no row to change), then
    /// the streams interleaved by `picks`, each in its own order. Personal data a reader could
    /// not open after the scrub is taken out.
    fn history(&self, id: u64) -> Vec<(String, DomainEvent)> {
        let pid = id + 100_000;
        let creation: DomainEvent = if self.follow_up {
            ev::FollowUpDonationCreated {
                donation_id: id,
                parent_donation_id: 7,
                payment_id: pid,
                created_at: self.created.created_at,
                amount: self.created.amount.clone(),
                interval_months: self.created.interval_months,
                payment_method: self.created.payment_method,
                donor: self.created.donor.clone(),
                tracking: self.created.tracking.clone(),
            }
            .into()
        } else {
            ev::DonationCreated {
                donation_id: id,
                payment_id: pid,
                ..self.created.clone()
            }
            .into()
        };
        let initiated = ev::PaymentInitiated {
            payment_id: pid,
            donation_id: id,
            method: self.created.payment_method,
            amount: self.created.amount.clone(),
            interval_months: self.created.interval_months,
            bank: Some(ev::BankData {
                iban: "DE02120300000000202051".into(),
                bic: "BYLADEM1001".into(),
                payment_reference_code: "XW-1".into(),
            }),
            bank_sealed: None,
            parent_payment_id: 0,
        };
        let mut payment = vec![DomainEvent::from(initiated)];
        for (i, e) in self.payment.iter().enumerate() {
            let mut e = e.clone();
            if let DomainEvent::FollowUpPaymentBooked(f) = &mut e {
                // Ids of their own, apart from every case's donations and payments.
                f.child_payment_id = 10_000_000 + id * 100 + i as u64;
                f.child_donation_id = 20_000_000 + id * 100 + i as u64;
            }
            payment.push(e);
        }
        let streams = [
            (format!("donation-{id}"), self.donation.clone()),
            (format!("payment-{pid}"), payment),
            (format!("moderation-{id}"), self.moderation.clone()),
            (format!("deletion-{id}"), self.deletion.clone()),
            (format!("export-{id}"), self.export.clone()),
            (format!("scrub-{id}"), self.scrub.clone()),
        ];
        let mut cursors = [0usize; 6];
        let total: usize = streams.iter().map(|(_, e)| e.len()).sum();
        let mut out = vec![(format!("donation-{id}"), creation)];
        let mut scrubbed = false;
        for i in 0..total {
            let open: Vec<usize> = (0..streams.len())
                .filter(|&s| cursors[s] < streams[s].1.len())
                .collect();
            let s = open[usize::from(self.picks.get(i).copied().unwrap_or(0)) % open.len()];
            let (stream, events) = &streams[s];
            let mut e = events[cursors[s]].clone();
            cursors[s] += 1;
            if let DomainEvent::PersonalDataScrubbed(_) = e {
                scrubbed = true;
            }
            if scrubbed {
                unreadable_after_scrub(&mut e);
            }
            out.push((stream.clone(), e));
        }
        out
    }
}

/// What a reader sees of an event appended after the donation's key was destroyed: no
/// personal unit in clear.
fn unreadable_after_scrub(e: &mut DomainEvent) {
    match e {
        DomainEvent::DonorUpdated(u) => u.personal = None,
        DomainEvent::CommentAdded(c) => {
            if let Some(c) = &mut c.comment {
                c.private_text = None;
            }
        }
        DomainEvent::PaymentInitiated(p) => p.bank = None,
        DomainEvent::PaymentBooked(b) => b.provider = None,
        DomainEvent::FollowUpPaymentBooked(f) => f.provider = None,
        _ => {}
    }
}

fn render_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or("NULL".into(), |t| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    })
}

/// The `donation` and `payment` columns as the domain view says them. Columns the domain has
/// no fold for are not listed: `updated_at` (the events' times), `tracking_id` (numbered by
/// the read model), the provider columns besides the transaction id, and `created_at` when the
/// creation event names no time.
fn expected(
    view: &DonationView,
) -> (
    BTreeMap<&'static str, String>,
    BTreeMap<&'static str, String>,
) {
    let d = &view.donation;
    let p = &view.payment;
    let scrubbed = view.is_scrubbed();
    let anonymous = view.moderation.approved_as_anonymous;
    let s = |v: &str| v.to_owned();
    let (cents, currency) = d
        .amount
        .as_ref()
        .map_or((0, String::new()), |m| (m.cents, m.currency.clone()));
    let blank = ev::PersonalData::default();
    let personal = match &d.personal {
        Some(p) if !scrubbed && !anonymous => p,
        _ => &blank,
    };
    let (comment, comment_public, display_name) = match &d.comment {
        Some(c) if !anonymous => {
            let text = if c.is_public {
                c.public_text.as_str()
            } else if scrubbed {
                ""
            } else {
                c.text().unwrap_or_default()
            };
            (text, c.is_public, c.display_name.as_str())
        }
        _ => ("", false, ""),
    };
    let kind = match view.donor_display() {
        DonorDisplay::Anonymous => DonorKind::Anonymous,
        _ => d.donor.kind,
    };
    let tracking = d.tracking.clone().unwrap_or_default();
    let mut donation = BTreeMap::from([
        ("id", d.id.unwrap().to_string()),
        ("amount_cents", cents.to_string()),
        ("currency", currency.clone()),
        ("interval_months", d.interval_months.to_string()),
        ("payment_id", d.payment_id.to_string()),
        ("payment_method", s(d.payment_method.unwrap().code())),
        ("payment_state", s(p.status.as_str())),
        ("payment_booked_at", render_time(p.valuation_date)),
        ("deletion_state", s(view.deletion.as_str())),
        ("moderation_state", s(view.moderation.status().as_str())),
        ("is_exported", view.export.exported.to_string()),
        ("exported_at", render_time(view.export.exported_at)),
        (
            "export_batch",
            view.export.batch_id.clone().unwrap_or_default(),
        ),
        ("is_scrubbed", scrubbed.to_string()),
        ("scrubbed_at", render_time(view.scrub.scrubbed_at)),
        ("scrub_rule", s(view.scrub.rule.map_or("", |r| r.as_str()))),
        ("donor_kind", s(kind.as_str())),
        (
            "salutation",
            if anonymous {
                String::new()
            } else {
                d.donor.salutation.clone()
            },
        ),
        ("title", personal.title.clone()),
        ("first_name", personal.first_name.clone()),
        ("last_name", personal.last_name.clone()),
        ("company_name", personal.company_name.clone()),
        ("street", personal.street.clone()),
        ("postcode", personal.postcode.clone()),
        ("city", personal.city.clone()),
        ("country", personal.country.clone()),
        ("email", personal.email.clone()),
        ("wants_newsletter", d.donor.wants_newsletter.to_string()),
        ("wants_receipt", d.donor.wants_receipt.to_string()),
        ("comment", s(comment)),
        ("comment_is_public", comment_public.to_string()),
        ("comment_display_name", s(display_name)),
        ("campaign", tracking.campaign.clone()),
        ("keyword", tracking.keyword.clone()),
        ("impression_count", tracking.impression_count.to_string()),
        (
            "banner_impression_count",
            tracking.banner_impression_count.to_string(),
        ),
        (
            "contribution_tracking_id",
            tracking.contribution_tracking_id.to_string(),
        ),
        (
            "parent_donation_id",
            d.parent_donation_id.unwrap_or(0).to_string(),
        ),
    ]);
    // Without a time of its own the donation is dated by its creation event (NOT NULL).
    if d.created_at.is_some() {
        donation.insert("created_at", render_time(d.created_at));
    }
    let bank = match &p.bank {
        Some(b) if !scrubbed => b.clone(),
        _ => ev::BankData::default(),
    };
    let (cents, currency) = p
        .amount
        .as_ref()
        .map_or((0, String::new()), |m| (m.cents, m.currency.clone()));
    let payment = BTreeMap::from([
        ("id", p.payment_id.to_string()),
        ("donation_id", p.donation_id.to_string()),
        ("method", s(p.method.unwrap().code())),
        ("amount_cents", cents.to_string()),
        ("currency", currency),
        ("interval_months", p.interval_months.to_string()),
        ("state", s(p.status.as_str())),
        (
            "state_before_cancellation",
            s(p.status_before_cancellation.map_or("", |b| b.as_str())),
        ),
        ("valuation_date", render_time(p.valuation_date)),
        (
            "parent_payment_id",
            p.parent_payment_id.unwrap_or(0).to_string(),
        ),
        ("refunded_cents", p.refunded_cents.to_string()),
        ("charged_back_cents", p.charged_back_cents.to_string()),
        ("iban", bank.iban),
        ("bic", bank.bic),
        ("payment_reference_code", bank.payment_reference_code),
        (
            "transaction_id",
            if scrubbed {
                String::new()
            } else {
                p.transaction_id.clone().unwrap_or_default()
            },
        ),
    ]);
    (donation, payment)
}

/// Compares every case's rows in `rm` with its view; `when` names the run in the message.
async fn check_all(rm: &ReadModel, histories: &[Vec<(String, DomainEvent)>], when: &str) {
    let dump = rm.dump().await.unwrap();
    let quarantined: Vec<&String> = dump["projector_skipped_event"].iter().collect();
    assert!(
        quarantined.is_empty(),
        "{when}: events were quarantined: {quarantined:?}"
    );
    for history in histories {
        let view = DonationView::fold(history.iter().map(|(s, e)| (s.as_str(), e)));
        let (want_donation, want_payment) = expected(&view);
        // The open reasons are the `donation_moderation_reason` rows, in key order.
        let id = &want_donation["id"];
        let prefix = format!("{id} | ");
        let reasons: Vec<&String> = dump["donation_moderation_reason"]
            .iter()
            .filter(|r| r.starts_with(&prefix))
            .collect();
        let mut want_reasons: Vec<String> = view
            .moderation
            .open_reasons
            .iter()
            .map(|r| format!("{id} | {} | {}", r.identifier_name(), r.source))
            .collect();
        want_reasons.sort();
        assert_eq!(
            reasons,
            want_reasons.iter().collect::<Vec<_>>(),
            "{when}: donation_moderation_reason of {id}"
        );
        for (table, want) in [("donation", want_donation), ("payment", want_payment)] {
            let id: i64 = want["id"].parse().unwrap();
            let row = rm.row(table, id).await.unwrap().expect("a projected row");
            for (column, value) in &want {
                assert_eq!(
                    row.get(*column),
                    Some(value),
                    "{when}: column {table}.{column} of {}\nrow: {row:?}\nhistory:\n{}",
                    want["id"],
                    history
                        .iter()
                        .map(|(s, e)| format!("  {s}: {e:?}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }
}

async fn projected_rows_equal_the_domain_folds_of_generated_histories(env: Env) {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = case();
    let mut histories = Vec::new();
    for i in 0..CASES {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let history = case.history(1 + i);
        for (stream, event) in &history {
            env.append(stream, event.clone()).await;
        }
        histories.push(history);
    }

    // Small batches: rows are loaded back from the database between a donation's events.
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(5))
        .run_once()
        .await
        .unwrap();
    check_all(&rm, &histories, "live projector").await;

    // A rebuild keeps the rows in memory (write-back) and writes them at the end.
    ledger::projection::rebuild(env.log(), &env.url, config(40))
        .await
        .unwrap();
    let rebuilt = env.read_model().await;
    check_all(&rebuilt, &histories, "rebuild").await;
}

/// Projects everything appended so far and returns the rows of donation `id` and its payment.
async fn rows_of(env: &Env, id: u64) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(3))
        .run_once()
        .await
        .unwrap();
    let donation = rm.row("donation", id as i64).await.unwrap().unwrap();
    let payment = rm
        .row("payment", id as i64 + 100_000)
        .await
        .unwrap()
        .unwrap();
    (donation, payment)
}

async fn a_refund_or_charge_back_without_an_amount_adds_nothing(env: Env) {
    create_donation(&env, 1, "PPL").await;
    let payment = "payment-100001";
    env.append(payment, booked(base_time(), "T-1")).await;
    env.append(payment, ev::PaymentRefunded::default()).await;
    let (_, p) = rows_of(&env, 1).await;
    assert_eq!(
        (p["state"].as_str(), p["refunded_cents"].as_str()),
        ("refunded", "0")
    );
    env.append(payment, ev::ChargebackReceived::default()).await;
    let (d, p) = rows_of(&env, 1).await;
    assert_eq!(
        (p["state"].as_str(), p["charged_back_cents"].as_str()),
        ("charged_back", "0")
    );
    assert_eq!(d["payment_state"], "charged_back");
}

async fn a_booking_without_a_valuation_date_leaves_the_valuation_date_empty(env: Env) {
    create_donation(&env, 1, "MCP").await;
    let mut booking = booked(base_time(), "T-1");
    booking.valuation_date = None;
    env.append("payment-100001", booking).await;
    let (d, p) = rows_of(&env, 1).await;
    assert_eq!(
        (p["state"].as_str(), p["valuation_date"].as_str()),
        ("booked", "NULL")
    );
    assert_eq!(
        (d["payment_state"].as_str(), d["payment_booked_at"].as_str()),
        ("booked", "NULL")
    );
}

async fn a_booking_after_a_cancellation_forgets_the_status_before_it(env: Env) {
    create_donation(&env, 1, "UEB").await;
    let payment = "payment-100001";
    env.append(payment, ev::PaymentCancelled::default()).await;
    let (_, p) = rows_of(&env, 1).await;
    assert_eq!(
        (p["state"].as_str(), p["state_before_cancellation"].as_str()),
        ("cancelled", "pending")
    );
    env.append(payment, booked(base_time(), "T-1")).await;
    let (_, p) = rows_of(&env, 1).await;
    assert_eq!(
        (p["state"].as_str(), p["state_before_cancellation"].as_str()),
        ("booked", "")
    );
}
