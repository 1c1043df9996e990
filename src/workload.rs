//! A deterministic workload shared by benches and tests: donations with a realistic mix of
//! payment methods, intervals, bookings and failures, moderation with approvals and deletions,
//! cancellations, exports in batches, scrubs of exported donations, comments, and
//! contribution-tracking records with repeats and links (most tracking attempts never become
//! donations). The same seed gives the same events, in the same order.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::types::to_timestamp;
use crate::domain::{streams, StreamEvent};
use crate::proto::events as ev;

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Number of donations.
    pub donations: usize,
    /// Random seed.
    pub seed: u64,
    /// Time of the first donation; donations are spread over the following days.
    pub start: DateTime<Utc>,
}

/// One atomic append of the workload, in the order the intake would write it.
#[derive(Debug, Clone)]
pub struct Step {
    /// The donation whose key seals the events (0 for contribution tracking).
    pub donation_id: u64,
    /// The events, each with its stream.
    pub events: Vec<StreamEvent>,
}

/// Counts of what was generated.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WorkloadSummary {
    /// Donations.
    pub donations: usize,
    /// Events in all.
    pub events: usize,
    /// Contribution-tracking messages.
    pub tracking_messages: usize,
}

fn money(cents: i64) -> Option<ev::Money> {
    Some(ev::Money {
        cents,
        currency: "EUR".into(),
    })
}

/// The payment method mix: PayPal 30 %, bank transfer 25 %, direct debit 25 %, credit card
/// 15 %, Sofort 5 %.
fn method(rng: &mut StdRng) -> ev::PaymentMethod {
    match rng.gen_range(0..100) {
        0..=29 => ev::PaymentMethod::Paypal,
        30..=54 => ev::PaymentMethod::BankTransfer,
        55..=79 => ev::PaymentMethod::DirectDebit,
        80..=94 => ev::PaymentMethod::CreditCard,
        _ => ev::PaymentMethod::Sofort,
    }
}

const FIRST_NAMES: &[&str] = &[
    "Anna", "Jonas", "Lea", "Paul", "Mia", "Emil", "Sofia", "Noah", "Clara", "Ben",
];
const LAST_NAMES: &[&str] = &[
    "Schmidt", "Weber", "Fischer", "Wagner", "Becker", "Hoffmann", "Koch", "Richter",
];
const CITIES: &[&str] = &["Berlin", "Hamburg", "Leipzig", "Köln", "Dresden", "Bremen"];

/// Generates the workload.
pub fn generate(config: &WorkloadConfig) -> (Vec<Step>, WorkloadSummary) {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut steps = Vec::new();
    let mut summary = WorkloadSummary {
        donations: config.donations,
        ..Default::default()
    };
    let mut ct_id = 1_000_000u64;
    let mut export_batch: Vec<u64> = Vec::new();
    let mut exported: Vec<u64> = Vec::new();
    let minutes_per_donation = 2;
    for i in 0..config.donations {
        let id = i as u64 + 1;
        let payment_id = id + 10_000_000;
        let created = config.start + Duration::minutes((i * minutes_per_donation) as i64);
        // Tracking attempts: most never become donations; the one that does is linked.
        let attempts = rng.gen_range(1..=3);
        for a in 0..attempts {
            ct_id += 1;
            let token = format!("{:032x}", rng.gen::<u128>());
            let repeats = rng.gen_range(1..=3);
            for r in 0..repeats {
                let fields = ev::ContributionTrackingFields {
                    utm_source: Some(format!("B26_WMDE_{}_dsk_lg_ctrl.lp{}", i % 40, a)),
                    utm_medium: Some("sitenotice".into()),
                    utm_campaign: Some(format!("C26_WMDE_{}", i % 7)),
                    language: Some("de".into()),
                    country: Some("DE".into()),
                    amount: (r > 0).then(|| format!("{}.00", rng.gen_range(5..100))),
                    currency: (r > 0).then(|| "EUR".into()),
                    tracking_date: Some(to_timestamp(created)),
                    ..Default::default()
                };
                let e = ev::ContributionTrackingRecorded {
                    contribution_tracking_id: ct_id,
                    allocation_token: token.clone(),
                    fields: Some(fields),
                };
                steps.push(Step {
                    donation_id: 0,
                    events: vec![StreamEvent::new(streams::contribution_tracking(ct_id), e)],
                });
                summary.tracking_messages += 1;
            }
        }
        let m = method(&mut rng);
        let external = matches!(
            m,
            ev::PaymentMethod::Paypal | ev::PaymentMethod::CreditCard | ev::PaymentMethod::Sofort
        );
        let interval = if m == ev::PaymentMethod::Sofort {
            0
        } else {
            match rng.gen_range(0..100) {
                0..=69 => 0,
                70..=89 => 1,
                90..=94 => 3,
                95..=97 => 6,
                _ => 12,
            }
        };
        let cents: i64 = if rng.gen_ratio(2, 100) {
            rng.gen_range(100_000..500_000)
        } else {
            100 * rng.gen_range(5..=300)
        };
        let anonymous = m != ev::PaymentMethod::DirectDebit && rng.gen_ratio(5, 100);
        let deny_word = !external && !anonymous && rng.gen_ratio(1, 100);
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = if deny_word {
            "Spamface"
        } else {
            LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())]
        };
        let personal = (!anonymous).then(|| ev::PersonalData {
            first_name: first.into(),
            last_name: last.into(),
            street: format!("Hauptstraße {}", rng.gen_range(1..200)),
            postcode: format!("{:05}", rng.gen_range(10_000..99_999)),
            city: CITIES[rng.gen_range(0..CITIES.len())].into(),
            country: "DE".into(),
            email: format!(
                "{}.{}{}@example.org",
                first.to_lowercase(),
                last.to_lowercase(),
                id
            ),
            ..Default::default()
        });
        let comment = rng.gen_ratio(10, 100).then(|| ev::Comment {
            is_public: rng.gen_bool(0.5),
            display_name: if anonymous {
                "anonym".into()
            } else {
                first.into()
            },
            public_text: "Danke für Wikipedia!".into(),
            ..Default::default()
        });
        let created_event = ev::DonationCreated {
            donation_id: id,
            created_at: Some(to_timestamp(created)),
            amount: money(cents),
            interval_months: interval,
            payment_id,
            payment_method: m as i32,
            donor: Some(ev::DonorPublic {
                kind: if anonymous {
                    ev::DonorKind::Anonymous
                } else {
                    ev::DonorKind::Person
                } as i32,
                salutation: if anonymous {
                    String::new()
                } else {
                    ["Frau", "Herr", "Divers"][rng.gen_range(0..3)].into()
                },
                wants_newsletter: rng.gen_bool(0.3),
                wants_receipt: !anonymous && rng.gen_bool(0.6),
            }),
            personal,
            tracking: Some(ev::Tracking {
                campaign: format!("c26_wmde_{}", i % 7),
                keyword: format!("org-{}", i % 13),
                impression_count: rng.gen_range(0..20),
                banner_impression_count: rng.gen_range(0..5),
                contribution_tracking_id: ct_id,
            }),
            comment,
            ..Default::default()
        };
        let bank = (m == ev::PaymentMethod::DirectDebit).then(|| ev::BankData {
            iban: "DE02120300000000202051".into(),
            bic: "BYLADEM1001".into(),
            ..Default::default()
        });
        let mut first_step = vec![
            StreamEvent::new(streams::donation(id), created_event),
            StreamEvent::new(
                streams::payment(payment_id),
                ev::PaymentInitiated {
                    payment_id,
                    donation_id: id,
                    method: m as i32,
                    amount: money(cents),
                    interval_months: interval,
                    bank,
                    ..Default::default()
                },
            ),
        ];
        let annual = if interval == 0 {
            cents
        } else {
            cents * 12 / i64::from(interval)
        };
        let mut reasons = Vec::new();
        if !external && annual >= 100_000 {
            reasons.push(ev::ModerationReason {
                identifier: ev::ModerationIdentifier::AmountTooHigh as i32,
                source: "amount".into(),
            });
        }
        if deny_word {
            reasons.push(ev::ModerationReason {
                identifier: ev::ModerationIdentifier::AddressContentViolation as i32,
                source: "lastName".into(),
            });
        }
        let moderated = !reasons.is_empty();
        if moderated {
            first_step.push(StreamEvent::new(
                streams::moderation(id),
                ev::ModerationReasonsRaised { reasons },
            ));
        }
        steps.push(Step {
            donation_id: id,
            events: first_step,
        });
        // Contribution link for the tracking attempt that became this donation.
        steps.push(Step {
            donation_id: 0,
            events: vec![StreamEvent::new(
                streams::contribution_tracking(ct_id),
                ev::ContributionLinked {
                    contribution_id: 50_000_000 + id,
                },
            )],
        });
        let mut deleted = false;
        if moderated {
            let e = if rng.gen_ratio(75, 100) {
                StreamEvent::new(
                    streams::moderation(id),
                    ev::ModerationApproved {
                        as_anonymous: false,
                    },
                )
            } else {
                deleted = true;
                StreamEvent::new(
                    streams::deletion(id),
                    ev::DonationDeleted {
                        reason: "spam".into(),
                    },
                )
            };
            steps.push(Step {
                donation_id: id,
                events: vec![e],
            });
        }
        if external {
            let roll = rng.gen_range(0..100);
            if roll < 85 {
                let booked = ev::PaymentBooked {
                    valuation_date: Some(to_timestamp(created + Duration::minutes(1))),
                    amount: money(cents),
                    provider: Some(ev::ProviderData {
                        transaction_id: format!("TX{id:010}"),
                        payer_id: format!("P{id:08}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                steps.push(Step {
                    donation_id: id,
                    events: vec![StreamEvent::new(streams::payment(payment_id), booked)],
                });
            } else if roll < 95 {
                steps.push(Step {
                    donation_id: id,
                    events: vec![StreamEvent::new(
                        streams::payment(payment_id),
                        ev::PaymentFailed {
                            reason: "declined".into(),
                        },
                    )],
                });
            }
        } else if !deleted && rng.gen_ratio(2, 100) {
            steps.push(Step {
                donation_id: id,
                events: vec![
                    StreamEvent::new(
                        streams::deletion(id),
                        ev::DonationCancelled {
                            reason: "donor".into(),
                        },
                    ),
                    StreamEvent::new(
                        streams::payment(payment_id),
                        ev::PaymentCancelled {
                            reason: "donor".into(),
                        },
                    ),
                ],
            });
            deleted = true;
        }
        // Older donations are exported in batches of 500, as the nightly export does.
        if !deleted && (!moderated || rng.gen_bool(0.75)) {
            export_batch.push(id);
        }
        if export_batch.len() == 500 || (i + 1 == config.donations && !export_batch.is_empty()) {
            // The scrub job has meanwhile scrubbed the previous batch, so only the latest
            // exports (and the cancelled, deleted and abandoned donations) stay candidates.
            for d in exported.drain(..) {
                let e = ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(to_timestamp(created)),
                };
                steps.push(Step {
                    donation_id: d,
                    events: vec![StreamEvent::new(streams::scrub(d), e)],
                });
            }
            exported.extend_from_slice(&export_batch);
            let batch_id = format!("export-{}", id);
            for d in export_batch.drain(..) {
                let e = ev::DonationExported {
                    batch_id: batch_id.clone(),
                    exported_at: Some(to_timestamp(created + Duration::hours(1))),
                };
                steps.push(Step {
                    donation_id: d,
                    events: vec![StreamEvent::new(streams::export(d), e)],
                });
            }
        }
    }
    summary.events = steps.iter().map(|s| s.events.len()).sum();
    (steps, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let config = WorkloadConfig {
            donations: 300,
            seed: 7,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let (a, sa) = generate(&config);
        let (b, _) = generate(&config);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.events == y.events));
        assert_eq!(sa.donations, 300);
        assert!(sa.events > 300 * 3, "{} events", sa.events);
        let other = generate(&WorkloadConfig { seed: 8, ..config }).0;
        assert!(a.iter().zip(&other).any(|(x, y)| x.events != y.events));
    }

    #[test]
    fn the_mix_has_every_method_moderation_exports_and_tracking() {
        let config = WorkloadConfig {
            donations: 2_000,
            seed: 1,
            start: Utc::now(),
        };
        let (steps, summary) = generate(&config);
        let types: std::collections::BTreeSet<&str> = steps
            .iter()
            .flat_map(|s| s.events.iter().map(|e| e.event.event_type()))
            .collect();
        for t in [
            "DonationCreated.v2",
            "PaymentInitiated.v1",
            "PaymentBooked.v1",
            "PaymentFailed.v1",
            "ModerationReasonsRaised.v1",
            "ModerationApproved.v1",
            "DonationDeleted.v1",
            "DonationCancelled.v1",
            "DonationExported.v1",
            "PersonalDataScrubbed.v1",
            "ContributionTrackingRecorded.v1",
            "ContributionLinked.v1",
        ] {
            assert!(types.contains(t), "{t} missing");
        }
        assert!(summary.tracking_messages > 2_000);
    }
}
