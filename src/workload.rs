//! A deterministic workload shared by benches and tests: donations with a realistic mix of
//! payment methods, intervals, bookings and failures, moderation with approvals and deletions,
//! cancellations, exports in batches, scrubs of exported donations, comments, and
//! contribution-tracking records with repeats and links (most tracking attempts never become
//! donations); and membership applications among them, in their own proportion, with their
//! own lifecycle (see [`DONATIONS_PER_MEMBERSHIP`] and `MembershipFlow`); and address changes,
//! one per donation with a postal address and per application, a few of them used (see
//! `AddressChangeFlow`). Donors are persons, companies, email-only donors and anonymous donors
//! (see [`COMPANY_DONORS_PERCENT`]). The same seed gives the same events, in the same order.
//!
//! The memberships and the address changes each draw from a random stream of their own
//! (seeded from the same seed), so the donation events of a seed are the same with or without
//! them: the donation steps of a seed hold exactly the donation events it gave before
//! memberships and address changes were added, with their steps between them (an address
//! change's creation is in its donation's or application's step, as the intake appends it).

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::address_change::commands::{
    self as address_change_commands, AddressChangeInput, AddressChangeScrubPolicy,
};
use crate::domain::address_change::{AddressChangeView, AddressType, ExternalIdKind};
use crate::domain::membership::{fees, MembershipCategory};
use crate::domain::types::to_timestamp;
use crate::domain::{streams, DomainEvent, StreamEvent};
use crate::privacy::{address_change_key_id, membership_key_id};
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
    /// Donations alone: no membership applications and no address changes (the workload as
    /// it was before them, for a comparison run). A seed's donation events are the same
    /// either way.
    pub donations_only: bool,
}

/// One atomic append of the workload, in the order the intake would write it.
#[derive(Debug, Clone)]
pub struct Step {
    /// The id of the key that seals the events: a donation's id (donation `n` has key `n`),
    /// an application's [`membership_key_id`], 0 for none (contribution tracking).
    pub key_id: u64,
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
    /// Membership applications.
    pub memberships: usize,
    /// Address changes issued (one per donation with a postal address and per application).
    pub address_changes: usize,
    /// Of those, used: a new address or an opt-out of the receipt.
    pub address_changes_used: usize,
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
    let others = !config.donations_only;
    generate_steps(config, others, others)
}

/// The workload, with or without its membership applications and its address changes
/// (without both: the donation steps alone, as the workload was before it had them).
fn generate_steps(
    config: &WorkloadConfig,
    with_memberships: bool,
    with_address_changes: bool,
) -> (Vec<Step>, WorkloadSummary) {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut steps = Vec::new();
    let mut summary = WorkloadSummary {
        donations: config.donations,
        ..Default::default()
    };
    let mut ct_id = 1_000_000u64;
    let mut export_batch: Vec<u64> = Vec::new();
    let mut exported: Vec<u64> = Vec::new();
    let mut memberships = MembershipFlow::new(config.seed);
    let mut address_changes = AddressChangeFlow::new(config.seed);
    let mut donor_kinds = StdRng::seed_from_u64(config.seed ^ DONOR_KIND_STREAM);
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
                    key_id: 0,
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
        // The kind of a donor who gives a name, from its own random stream (drawn for every
        // donation, so the other draws of a seed are those it gave before donors had kinds).
        let named_kind = donor_kind(&mut donor_kinds);
        let kind = if anonymous {
            ev::DonorKind::Anonymous
        } else {
            named_kind
        };
        let company = kind == ev::DonorKind::Company;
        let postal = matches!(kind, ev::DonorKind::Person | ev::DonorKind::Company);
        let deny_word = !external && !anonymous && rng.gen_ratio(1, 100);
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = if deny_word {
            "Spamface"
        } else {
            LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())]
        };
        let personal = (!anonymous).then(|| {
            // The address is drawn for every named donor, kept for those with a postal one.
            let street = format!("Hauptstraße {}", rng.gen_range(1..200));
            let postcode = format!("{:05}", rng.gen_range(10_000..99_999));
            let city = CITIES[rng.gen_range(0..CITIES.len())];
            let email = format!(
                "{}.{}{}@example.org",
                first.to_lowercase(),
                last.to_lowercase(),
                id
            );
            let kept = |s: String| if postal { s } else { String::new() };
            ev::PersonalData {
                first_name: if company { String::new() } else { first.into() },
                last_name: if company { String::new() } else { last.into() },
                company_name: if company {
                    format!("{last} {first} GmbH")
                } else {
                    String::new()
                },
                street: kept(street),
                postcode: kept(postcode),
                city: kept(city.into()),
                country: kept("DE".into()),
                email,
                ..Default::default()
            }
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
                kind: kind as i32,
                salutation: if anonymous {
                    String::new()
                } else {
                    // Drawn for every named donor; a company has none.
                    let s = ["Frau", "Herr", "Divers"][rng.gen_range(0..3)];
                    if company {
                        String::new()
                    } else {
                        s.into()
                    }
                },
                wants_newsletter: rng.gen_bool(0.3),
                // Drawn for every named donor; an email-only donor gets no receipt (no address).
                wants_receipt: !anonymous && rng.gen_bool(0.6) && postal,
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
                source: if company { "companyName" } else { "lastName" }.into(),
            });
        }
        let moderated = !reasons.is_empty();
        if moderated {
            first_step.push(StreamEvent::new(
                streams::moderation(id),
                ev::ModerationReasonsRaised { reasons },
            ));
        }
        // A donor with a postal address (a person or a company; email-only and anonymous
        // donors have none) gets an address change in the donation's append, after its
        // events, as the intake does.
        if with_address_changes && postal {
            first_step.extend(address_changes.create(
                ExternalIdKind::Donation,
                id,
                if company {
                    AddressType::Company
                } else {
                    AddressType::Person
                },
                created,
            ));
        }
        steps.push(Step {
            key_id: id,
            events: first_step,
        });
        // Contribution link for the tracking attempt that became this donation.
        steps.push(Step {
            key_id: 0,
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
                key_id: id,
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
                    key_id: id,
                    events: vec![StreamEvent::new(streams::payment(payment_id), booked)],
                });
            } else if roll < 95 {
                steps.push(Step {
                    key_id: id,
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
                key_id: id,
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
        // A membership application now and then, from its own random stream.
        if with_memberships {
            let issuer = with_address_changes.then_some(&mut address_changes);
            memberships.after_donation(created, &mut steps, issuer);
        }
        // The tokens whose holders use them by now.
        if with_address_changes {
            address_changes.used_by(created, &mut steps);
        }
        // Older donations are exported in batches of 500, as the nightly export does.
        if !deleted && (!moderated || rng.gen_bool(0.75)) {
            export_batch.push(id);
        }
        let last = i + 1 == config.donations;
        let export_now = export_batch.len() == 500 || (last && !export_batch.is_empty());
        if last && with_address_changes {
            // Uses decided for after the workload's end happen at its end, so the share of
            // used tokens is the one decided.
            address_changes.flush(created, &mut steps);
        }
        if with_memberships && (export_now || last) {
            // The same nightly run exports and scrubs applications (its own batch), at the
            // hour the donations' export is stamped with.
            memberships.nightly(created + Duration::hours(1), &mut steps);
        }
        if with_address_changes && (export_now || last) {
            // And the address changes used since (their own batch).
            address_changes.nightly(created + Duration::hours(1), &mut steps);
        }
        if export_now {
            // The scrub job has meanwhile scrubbed the previous batch, so only the latest
            // exports (and the cancelled, deleted and abandoned donations) stay candidates.
            for d in exported.drain(..) {
                let e = ev::PersonalDataScrubbed {
                    rule: ev::ScrubRule::Exported as i32,
                    scrubbed_at: Some(to_timestamp(created)),
                };
                steps.push(Step {
                    key_id: d,
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
                    key_id: d,
                    events: vec![StreamEvent::new(streams::export(d), e)],
                });
            }
        }
    }
    summary.events = steps.iter().map(|s| s.events.len()).sum();
    summary.memberships = memberships.applied;
    summary.address_changes = address_changes.issued;
    summary.address_changes_used = address_changes.used;
    (steps, summary)
}

/// Named donors (not anonymous) who give as a company: 3 in 100 (an assumption: the facts
/// name the kind, `domain/wmde.md` §6, but give no share). They give a company name and a postal
/// address, no person's name and no salutation.
pub const COMPANY_DONORS_PERCENT: u32 = 3;

/// Named donors who give only a name and an email address (no postal address, so no receipt and
/// no address change): 5 in 100, an assumption as for companies.
pub const EMAIL_ONLY_DONORS_PERCENT: u32 = 5;

/// Mixed into the seed for the donor kinds' own random stream.
const DONOR_KIND_STREAM: u64 = 0x646f_6e6f_725f_6b69;

/// The kind of a donor who gives a name: a company, an email-only donor or a person.
fn donor_kind(rng: &mut StdRng) -> ev::DonorKind {
    let roll = rng.gen_range(0..100);
    if roll < COMPANY_DONORS_PERCENT {
        ev::DonorKind::Company
    } else if roll < COMPANY_DONORS_PERCENT + EMAIL_ONLY_DONORS_PERCENT {
        ev::DonorKind::EmailOnly
    } else {
        ev::DonorKind::Person
    }
}

/// Donations per membership application in the workload: 80, about 1.2 % of the donations.
///
/// From the facts (`domain/wmde.md` §9, `domain/wmde-memberships.md` §1.7): ids handed out by
/// mid-2022 were 51,934 for membership applications (`request` AUTO_INCREMENT, MEM dump
/// committed 2022-07) against 4,233,996 for donations (`spenden` AUTO_INCREMENT, dump of
/// 2022-04-21), one application per 81.5 donations, both over the same years of the same
/// forms. The other figure there, 73,832 members against 271,072 donations in the 2024
/// campaign, sets a stock of members against one campaign's donations and is not a rate of
/// applications, so it is not used. Both dumps are marked UNSURE as production figures; the
/// ratio is what they support.
pub const DONATIONS_PER_MEMBERSHIP: u32 = 80;

/// Mixed into the seed for the memberships' own random stream.
const MEMBERSHIP_STREAM: u64 = 0x6d65_6d62_6572_7368;
/// Payment ids of applications start above the donations' (donation `n` pays with
/// `10_000_000 + n`).
const MEMBERSHIP_PAYMENT_BASE: u64 = 20_000_000;
/// Applications not exported (moderation still open) are scrubbed after this grace period,
/// the legacy rule since 2026-07 (`MembershipScrubPolicy`'s default).
const MEMBERSHIP_GRACE: Duration = Duration::days(2);

/// An application the nightly run has not exported or scrubbed yet.
struct Pending {
    id: u64,
    created: DateTime<Utc>,
    /// Moderation open (raised or flagged, not approved): not exportable.
    moderated: bool,
    cancelled: bool,
}

/// The membership applications of the workload, from their own random stream: each applies
/// (with the moderation reasons the intake would raise), is flagged, approved, cancelled or
/// restored by the back office now and then, and is exported and scrubbed by the nightly run,
/// in the order the legacy rules allow (`domain::membership::commands`).
///
/// The mix, from the facts where they have one (`domain/wmde-memberships.md` §1.2–§1.6) and
/// marked as an assumption where they have none:
/// * payment: direct debit 90 %, bank transfer 10 % (only BEZ is enabled in the public
///   configuration since 2017, the production one is not public; the ledger also takes UEB,
///   so a share of it keeps that path in the workload). Both are complete at once, so every
///   application is confirmed; memberships have no payment stream to book or fail;
/// * applicant: company 3 % (assumption), always sustaining (the form disables `active` for
///   companies); persons active 15 % (assumption);
/// * interval: yearly 40 %, monthly 30 %, quarterly 20 %, half-yearly 10 % (assumption; never
///   one-time, the rule);
/// * fee: a yearly amount at or above the legacy minimum (24 EUR persons, 100 EUR companies),
///   per interval rounded up to whole euros; 2 % above 1000 EUR a year, which raises
///   `MEMBERSHIP_FEE_TOO_HIGH` (the rule; the share is an assumption);
/// * a denied word in the last name 1 % (`ADDRESS_CONTENT_VIOLATION`), a manual flag of an
///   unmoderated application 1 %; the back office approves 70 % of the moderated ones, the
///   rest stays open and is scrubbed after the grace period;
/// * cancelled 3 % (direct debit and bank transfer are cancellable), a fifth of them restored;
/// * tote bag 10 %, receipt asked for 60 %, declined 20 %, not answered 20 % (assumptions).
struct MembershipFlow {
    rng: StdRng,
    /// Applications so far (ids 1, 2, …: the membership sequence is its own).
    applied: usize,
    pending: Vec<Pending>,
    /// Exported by the last nightly run, scrubbed by the next.
    exported: Vec<u64>,
    /// Nightly runs so far (names the export batches).
    nights: usize,
}

impl MembershipFlow {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed ^ MEMBERSHIP_STREAM),
            applied: 0,
            pending: Vec::new(),
            exported: Vec::new(),
            nights: 0,
        }
    }

    /// After the donation made at `created`: one application in [`DONATIONS_PER_MEMBERSHIP`],
    /// a minute later, and the back office's actions on it.
    /// With an `issuer`, the application gets its address change in its append, as the
    /// intake gives every application one.
    fn after_donation(
        &mut self,
        created: DateTime<Utc>,
        steps: &mut Vec<Step>,
        issuer: Option<&mut AddressChangeFlow>,
    ) {
        if !self.rng.gen_ratio(1, DONATIONS_PER_MEMBERSHIP) {
            return;
        }
        self.applied += 1;
        let id = self.applied as u64;
        let at = created + Duration::minutes(1);
        let (applied, reasons) = self.application(id, at);
        let key_id = membership_key_id(id);
        let address_type = if applied.applicant_kind == ev::ApplicantKind::Company as i32 {
            AddressType::Company
        } else {
            AddressType::Person
        };
        let mut first = vec![StreamEvent::new(
            MembershipCategory::Application.stream(id),
            applied,
        )];
        let mut moderated = !reasons.is_empty();
        if moderated {
            first.push(StreamEvent::new(
                MembershipCategory::Moderation.stream(id),
                ev::ModerationReasonsRaised { reasons },
            ));
        }
        if let Some(issuer) = issuer {
            first.extend(issuer.create(ExternalIdKind::Membership, id, address_type, at));
        }
        steps.push(Step {
            key_id,
            events: first,
        });
        let mut then = |category: MembershipCategory, event: DomainEvent| {
            steps.push(Step {
                key_id,
                events: vec![StreamEvent::new(category.stream(id), event)],
            });
        };
        if !moderated && self.rng.gen_ratio(1, 100) {
            let note = "checked by the back office".into();
            then(
                MembershipCategory::Moderation,
                ev::ManuallyFlagged { note }.into(),
            );
            moderated = true;
        }
        if moderated && self.rng.gen_ratio(70, 100) {
            let approved = ev::ModerationApproved {
                as_anonymous: false,
            };
            then(MembershipCategory::Moderation, approved.into());
            moderated = false;
        }
        let mut cancelled = false;
        if self.rng.gen_ratio(3, 100) {
            let reason = "member asked".into();
            then(
                MembershipCategory::Cancellation,
                ev::MembershipCancelled { reason }.into(),
            );
            cancelled = true;
            if self.rng.gen_ratio(20, 100) {
                let reason = "cancelled by mistake".into();
                then(
                    MembershipCategory::Cancellation,
                    ev::MembershipRestored { reason }.into(),
                );
                cancelled = false;
            }
        }
        self.pending.push(Pending {
            id,
            created: at,
            moderated,
            cancelled,
        });
    }

    /// Application `id`, made at `at`, and the moderation reasons the intake raises for it.
    fn application(
        &mut self,
        id: u64,
        at: DateTime<Utc>,
    ) -> (ev::MembershipApplied, Vec<ev::ModerationReason>) {
        let rng = &mut self.rng;
        let company = rng.gen_ratio(3, 100);
        let active = !company && rng.gen_ratio(15, 100);
        let interval: u32 = match rng.gen_range(0..100) {
            0..=39 => 12,
            40..=69 => 1,
            70..=89 => 3,
            _ => 6,
        };
        let yearly_euros: i64 = if rng.gen_ratio(2, 100) {
            rng.gen_range(1_100..=5_000)
        } else if company {
            [100, 120, 250, 500, 600][rng.gen_range(0..5)]
        } else {
            [24, 36, 48, 60, 72, 96, 120, 180, 240, 360][rng.gen_range(0..10)]
        };
        // Whole euros per interval, rounded up: the yearly amount never drops below it.
        let per_interval = (yearly_euros * i64::from(interval) + 11) / 12;
        let fee_cents = per_interval * 100;
        let debit = rng.gen_ratio(90, 100);
        let denied = !company && rng.gen_ratio(1, 100);
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = if denied {
            "Spamface"
        } else {
            LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())]
        };
        let postal = Postal::draw(rng, first, last, company, "Firma", "Hauptstraße");
        let applicant = ev::ApplicantData {
            salutation: postal.salutation,
            first_name: postal.first_name,
            last_name: postal.last_name,
            company_name: postal.company_name,
            street: postal.street,
            postcode: postal.postcode,
            city: postal.city,
            country: "DE".into(),
            email: format!("member{id}@example.org"),
            phone: if rng.gen_bool(0.5) {
                format!("+49 30 {}", rng.gen_range(100_000..999_999))
            } else {
                String::new()
            },
            date_of_birth: if !company && rng.gen_bool(0.4) {
                format!(
                    "{}-{:02}-{:02}",
                    rng.gen_range(1940..2005),
                    rng.gen_range(1..=12),
                    rng.gen_range(1..=28)
                )
            } else {
                String::new()
            },
            ..Default::default()
        };
        let bank = if debit {
            ev::BankData {
                iban: "DE02120300000000202051".into(),
                bic: "BYLADEM1001".into(),
                ..Default::default()
            }
        } else {
            let code: String = (0..6)
                .map(|_| char::from(b"ACDEFKLMNPRTWXYZ349"[rng.gen_range(0..19)]))
                .collect();
            ev::BankData {
                payment_reference_code: format!("XM-{}-{}-X", &code[..3], &code[3..]),
                ..Default::default()
            }
        };
        let mut reasons = Vec::new();
        if fees::is_fee_too_high(fee_cents, interval) {
            reasons.push(ev::ModerationReason {
                identifier: ev::ModerationIdentifier::MembershipFeeTooHigh as i32,
                source: "amount".into(),
            });
        }
        if denied {
            reasons.push(ev::ModerationReason {
                identifier: ev::ModerationIdentifier::AddressContentViolation as i32,
                source: "applicant-last-name".into(),
            });
        }
        let donation_receipt = match rng.gen_range(0..10) {
            0..=5 => Some(true),
            6..=7 => Some(false),
            _ => None,
        };
        let applied = ev::MembershipApplied {
            membership_id: id,
            created_at: Some(to_timestamp(at)),
            applicant_kind: if company {
                ev::ApplicantKind::Company
            } else {
                ev::ApplicantKind::Person
            } as i32,
            applicant: Some(applicant),
            membership_type: if active {
                ev::MembershipType::Active
            } else {
                ev::MembershipType::Sustaining
            } as i32,
            fee: money(fee_cents),
            interval_months: interval,
            payment_id: MEMBERSHIP_PAYMENT_BASE + id,
            payment_method: if debit {
                ev::PaymentMethod::DirectDebit
            } else {
                ev::PaymentMethod::BankTransfer
            } as i32,
            bank: Some(bank),
            confirmed: true,
            tracking: Some(ev::MembershipTracking {
                campaign: format!("C26_WMDE_Mitglied_{}", id % 5),
                keyword: format!("org-{}", id % 13),
            }),
            incentives: if rng.gen_ratio(10, 100) {
                vec!["tote_bag".into()]
            } else {
                Vec::new()
            },
            donation_receipt,
            ..Default::default()
        };
        (applied, reasons)
    }

    /// The nightly run at `now`: scrubs what the last run exported, the cancelled
    /// applications and those whose moderation stayed open past the grace period; exports
    /// the rest in one batch.
    fn nightly(&mut self, now: DateTime<Utc>, steps: &mut Vec<Step>) {
        self.nights += 1;
        let batch_id = format!("membership-export-{}", self.nights);
        let scrub = |steps: &mut Vec<Step>, id: u64, rule: ev::ScrubRule| {
            steps.push(Step {
                key_id: membership_key_id(id),
                events: vec![StreamEvent::new(
                    MembershipCategory::Scrub.stream(id),
                    ev::PersonalDataScrubbed {
                        rule: rule as i32,
                        scrubbed_at: Some(to_timestamp(now)),
                    },
                )],
            });
        };
        for id in std::mem::take(&mut self.exported) {
            scrub(steps, id, ev::ScrubRule::Exported);
        }
        for p in std::mem::take(&mut self.pending) {
            if p.cancelled {
                scrub(steps, p.id, ev::ScrubRule::CancelledOrDeleted);
            } else if p.moderated {
                if now - p.created >= MEMBERSHIP_GRACE {
                    scrub(steps, p.id, ev::ScrubRule::AfterGracePeriod);
                } else {
                    self.pending.push(p);
                }
            } else {
                steps.push(Step {
                    key_id: membership_key_id(p.id),
                    events: vec![StreamEvent::new(
                        MembershipCategory::Export.stream(p.id),
                        ev::MembershipExported {
                            batch_id: batch_id.clone(),
                            exported_at: Some(to_timestamp(now)),
                        },
                    )],
                });
                self.exported.push(p.id);
            }
        }
    }
}

/// Address-change tokens used for a new address, in thousandths of the tokens issued: 20,
/// about 2 % (an assumption, see [`AddressChangeFlow`]).
pub const ADDRESS_CHANGES_PER_MILLE: u32 = 20;
/// Address-change tokens used only to opt out of the donation receipt, in thousandths: 10,
/// about 1 % (an assumption, see [`AddressChangeFlow`]).
pub const RECEIPT_OPT_OUTS_PER_MILLE: u32 = 10;

/// Mixed into the seed for the address changes' own random stream.
const ADDRESS_CHANGE_STREAM: u64 = 0x6164_6472_6573_7321;

/// A use of a token, decided when it was issued, due at `at`.
struct Use {
    at: DateTime<Utc>,
    view: AddressChangeView,
    opt_out_only: bool,
}

/// The address changes of the workload, from their own random stream: each donation with a
/// postal address and each application gets one with its append (legacy
/// `CreateAddressChangeHandler`, `domain/wmde-memberships.md` §2); a few tokens are used
/// days later, and the nightly run exports what was used and scrubs what it exported the
/// night before. Every event after the creation is the one the domain decides
/// (`domain::address_change::commands`), so the workload holds what the intake would append.
///
/// The facts give no figure for how many tokens are used (the link reaches people by letter
/// or receipt, `UNSURE` there). Assumed here: 2 % of the tokens are used for a changed
/// address ([`ADDRESS_CHANGES_PER_MILLE`]), 1 % only to opt out of the donation receipt
/// ([`RECEIPT_OPT_OUTS_PER_MILLE`]), 1 to 14 days after the token was issued; one change in
/// ten of an address also opts out of the receipt. The new address keeps the address type
/// the token was issued for.
struct AddressChangeFlow {
    rng: StdRng,
    /// Address changes issued so far (ids 1, 2, …: the address-change sequence is its own).
    issued: usize,
    /// Of those, used (or decided to be, at the end).
    used: usize,
    /// Uses decided and not yet due.
    due: Vec<Use>,
    /// Used since the last nightly run: exported by the next.
    to_export: Vec<AddressChangeView>,
    /// Exported by the last nightly run: scrubbed by the next (those holding an address).
    exported: Vec<AddressChangeView>,
    /// Nightly runs so far (names the export batches).
    nights: usize,
}

impl AddressChangeFlow {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed ^ ADDRESS_CHANGE_STREAM),
            issued: 0,
            used: 0,
            due: Vec::new(),
            to_export: Vec::new(),
            exported: Vec::new(),
            nights: 0,
        }
    }

    /// A fresh token from the stream: a UUID v4 as the intake draws one.
    fn token(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.gen())
            .into_uuid()
            .to_string()
    }

    /// The events of a new address change for `kind` `external_id`, made at `at` (for its
    /// donation's or application's append), and whether and when its token is used.
    fn create(
        &mut self,
        kind: ExternalIdKind,
        external_id: u64,
        address_type: AddressType,
        at: DateTime<Utc>,
    ) -> Vec<StreamEvent> {
        self.issued += 1;
        let id = self.issued as u64;
        let token = self.token();
        let events =
            address_change_commands::create(id, &token, kind, external_id, address_type, at);
        let roll = self.rng.gen_range(0..1000);
        if roll < ADDRESS_CHANGES_PER_MILLE + RECEIPT_OPT_OUTS_PER_MILLE {
            let later = Duration::days(self.rng.gen_range(1..=14))
                + Duration::minutes(self.rng.gen_range(0..24 * 60));
            let view =
                AddressChangeView::fold(events.iter().map(|e| (e.stream.as_str(), &e.event)));
            self.due.push(Use {
                at: at + later,
                view,
                opt_out_only: roll >= ADDRESS_CHANGES_PER_MILLE,
            });
        }
        events
    }

    /// The new address of a change to an address change of `address_type`.
    fn address(&mut self, address_type: AddressType) -> ev::AddressData {
        let rng = &mut self.rng;
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        let company = address_type == AddressType::Company;
        let postal = Postal::draw(rng, first, last, company, "", "Lindenallee");
        ev::AddressData {
            salutation: postal.salutation,
            first_name: postal.first_name,
            last_name: postal.last_name,
            company_name: postal.company_name,
            street: postal.street,
            postcode: postal.postcode,
            city: postal.city,
            country: "DE".into(),
            ..Default::default()
        }
    }

    /// Appends the uses due by `now`, in the order they are due: each a `ChangeAddress` call
    /// through the current token, which it replaces.
    fn used_by(&mut self, now: DateTime<Utc>, steps: &mut Vec<Step>) {
        if self.due.iter().all(|u| u.at > now) {
            return;
        }
        let (mut due, later): (Vec<Use>, Vec<Use>) = std::mem::take(&mut self.due)
            .into_iter()
            .partition(|u| u.at <= now);
        self.due = later;
        due.sort_by_key(|u| (u.at, u.view.id));
        for mut u in due {
            let input = if u.opt_out_only {
                AddressChangeInput {
                    address: None,
                    donation_receipt_opt_out: true,
                }
            } else {
                let address = self.address(u.view.address_type);
                AddressChangeInput {
                    address: Some((u.view.address_type, address)),
                    donation_receipt_opt_out: self.rng.gen_ratio(1, 10),
                }
            };
            let token = u.view.current_identifier.clone();
            let new = self.token();
            let events = address_change_commands::change(&u.view, &token, &input, &new, u.at)
                .expect("an unused, unscrubbed address change takes a change");
            for e in &events {
                u.view.apply(&e.stream, &e.event);
            }
            self.used += 1;
            steps.push(Step {
                key_id: self.key_id(&u.view),
                events,
            });
            self.to_export.push(u.view);
        }
    }

    /// Appends every use still to come, those due after `end` made at `end`.
    fn flush(&mut self, end: DateTime<Utc>, steps: &mut Vec<Step>) {
        for u in &mut self.due {
            u.at = u.at.min(end);
        }
        self.used_by(end, steps);
    }

    /// The key that seals an address change's events: its own once it holds an address (the
    /// intake makes one only then), none for an opt-out alone.
    fn key_id(&self, view: &AddressChangeView) -> u64 {
        match view.id {
            Some(id) if view.has_address => address_change_key_id(id),
            _ => 0,
        }
    }

    /// The nightly run at `now`: scrubs the addresses the last run exported, then exports
    /// what was used since in one batch (`MarkAddressChangesExported`).
    fn nightly(&mut self, now: DateTime<Utc>, steps: &mut Vec<Step>) {
        self.nights += 1;
        let policy = AddressChangeScrubPolicy::default();
        for view in std::mem::take(&mut self.exported) {
            // An opt-out alone holds nothing to scrub: the domain refuses it.
            if let Ok(events) = address_change_commands::scrub(&view, now, &policy) {
                steps.push(Step {
                    key_id: self.key_id(&view),
                    events,
                });
            }
        }
        let batch_id = format!("address-change-export-{}", self.nights);
        for mut view in std::mem::take(&mut self.to_export) {
            let events = address_change_commands::mark_exported(&view, &batch_id, now)
                .expect("a used address change not yet exported is exportable");
            for e in &events {
                view.apply(&e.stream, &e.event);
            }
            steps.push(Step {
                key_id: self.key_id(&view),
                events,
            });
            self.exported.push(view);
        }
    }
}

/// The postal part of a generated applicant's or new address: a person's names or a company's
/// name, a street in `street`, a postcode and a city. The draws come in one fixed order
/// (salutation for a person, house number, postcode, city), so a seed gives the same values.
struct Postal {
    salutation: String,
    first_name: String,
    last_name: String,
    company_name: String,
    street: String,
    postcode: String,
    city: String,
}

impl Postal {
    fn draw(
        rng: &mut impl Rng,
        first: &str,
        last: &str,
        company: bool,
        company_salutation: &str,
        street: &str,
    ) -> Self {
        Self {
            salutation: if company {
                company_salutation.into()
            } else {
                ["Frau", "Herr", "Divers"][rng.gen_range(0..3)].into()
            },
            first_name: if company { String::new() } else { first.into() },
            last_name: if company { String::new() } else { last.into() },
            company_name: if company {
                format!("{last} & {first} GmbH")
            } else {
                String::new()
            },
            street: format!("{street} {}", rng.gen_range(1..200)),
            postcode: format!("{:05}", rng.gen_range(10_000..99_999)),
            city: CITIES[rng.gen_range(0..CITIES.len())].into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::address_change::{
        is_address_change_stream, token_stream, AddressChangeCategory,
    };
    use crate::domain::types::to_datetime;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let config = WorkloadConfig {
            donations: 300,
            seed: 7,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
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
            donations_only: false,
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

    #[test]
    fn donors_are_persons_companies_email_only_and_anonymous_each_with_what_its_kind_needs() {
        let config = WorkloadConfig {
            donations: 4_000,
            seed: 3,
            start: Utc::now(),
            donations_only: false,
        };
        let (steps, _) = generate(&config);
        let mut kinds = std::collections::BTreeMap::<i32, usize>::new();
        for e in steps.iter().flat_map(|s| &s.events) {
            let DomainEvent::DonationCreated(d) = &e.event else {
                continue;
            };
            let donor = d.donor.as_ref().unwrap();
            *kinds.entry(donor.kind).or_default() += 1;
            let kind = ev::DonorKind::try_from(donor.kind).unwrap();
            let Some(p) = d.personal.as_ref() else {
                assert_eq!(kind, ev::DonorKind::Anonymous);
                continue;
            };
            let postal = !p.street.is_empty()
                && !p.postcode.is_empty()
                && !p.city.is_empty()
                && !p.country.is_empty();
            assert!(!p.email.is_empty());
            match kind {
                ev::DonorKind::Person => {
                    assert!(postal && !p.first_name.is_empty() && !p.last_name.is_empty());
                    assert!(p.company_name.is_empty() && !donor.salutation.is_empty());
                }
                ev::DonorKind::Company => {
                    assert!(postal && !p.company_name.is_empty());
                    assert!(p.first_name.is_empty() && p.last_name.is_empty());
                    assert!(donor.salutation.is_empty());
                }
                ev::DonorKind::EmailOnly => {
                    assert!(!p.first_name.is_empty() && !p.last_name.is_empty());
                    assert!(p.street.is_empty() && p.postcode.is_empty() && p.city.is_empty());
                    assert!(!donor.wants_receipt, "no address, no receipt");
                }
                other => panic!("a named donor of kind {other:?}"),
            }
        }
        let share = |k: ev::DonorKind| kinds.get(&(k as i32)).copied().unwrap_or(0) * 100 / 4_000;
        // Named donors are 95 % of 4,000: about 3 % companies and 5 % email-only of them.
        assert!(
            (1..=5).contains(&share(ev::DonorKind::Company)),
            "{kinds:?}"
        );
        assert!(
            (3..=7).contains(&share(ev::DonorKind::EmailOnly)),
            "{kinds:?}"
        );
        assert!(
            (2..=8).contains(&share(ev::DonorKind::Anonymous)),
            "{kinds:?}"
        );
        assert!(share(ev::DonorKind::Person) >= 80, "{kinds:?}");
    }

    fn is_membership_step(step: &Step) -> bool {
        step.events
            .iter()
            .any(|e| MembershipCategory::of(&e.stream).is_some())
    }

    /// An address change's stream, its token index included.
    fn is_address_change_event(e: &StreamEvent) -> bool {
        is_address_change_stream(&e.stream) || e.stream.starts_with(&token_stream(""))
    }

    /// The donation events of a workload's steps (tracking included), by step, with the key
    /// that seals them: everything but the memberships' and the address changes' events.
    fn donation_steps(steps: &[Step]) -> Vec<(u64, Vec<&StreamEvent>)> {
        steps
            .iter()
            .map(|s| {
                let events: Vec<&StreamEvent> = s
                    .events
                    .iter()
                    .filter(|e| {
                        MembershipCategory::of(&e.stream).is_none() && !is_address_change_event(e)
                    })
                    .collect();
                (s.key_id, events)
            })
            .filter(|(_, events)| !events.is_empty())
            .collect()
    }

    #[test]
    fn memberships_and_address_changes_leave_the_donation_events_of_a_seed_as_they_were() {
        let config = WorkloadConfig {
            donations: 3_000,
            seed: 7,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
        };
        let (with, summary) = generate(&config);
        let (alone, before) = generate(&WorkloadConfig {
            donations_only: true,
            ..config.clone()
        });
        assert!(summary.memberships > 0 && summary.address_changes > 0);
        assert_eq!((before.memberships, before.address_changes), (0, 0));
        assert!(alone
            .iter()
            .flat_map(|s| &s.events)
            .all(|e| !is_address_change_event(e) && MembershipCategory::of(&e.stream).is_none()));
        let (with, alone) = (donation_steps(&with), donation_steps(&alone));
        assert_eq!(with.len(), alone.len());
        for (a, b) in with.iter().zip(&alone) {
            assert_eq!(a, b);
        }
    }

    #[test]
    fn address_changes_leave_the_membership_events_of_a_seed_as_they_were() {
        let config = WorkloadConfig {
            donations: 3_000,
            seed: 9,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
        };
        let memberships = |steps: Vec<Step>| -> Vec<StreamEvent> {
            steps
                .into_iter()
                .flat_map(|s| s.events)
                .filter(|e| MembershipCategory::of(&e.stream).is_some())
                .collect()
        };
        let with = memberships(generate_steps(&config, true, true).0);
        let without = memberships(generate_steps(&config, true, false).0);
        assert!(!with.is_empty());
        assert_eq!(with, without);
    }

    #[test]
    fn memberships_leave_the_donation_steps_of_a_seed_as_they_were() {
        let config = WorkloadConfig {
            donations: 3_000,
            seed: 7,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
        };
        // Without address changes: the steps themselves are the same.
        let (with, summary) = generate_steps(&config, true, false);
        let (without, before) = generate_steps(&config, false, false);
        assert!(summary.memberships > 0);
        assert_eq!(before.memberships, 0);
        let donations: Vec<&Step> = with.iter().filter(|s| !is_membership_step(s)).collect();
        assert_eq!(donations.len(), without.len());
        for (a, b) in donations.iter().zip(&without) {
            assert_eq!(a.key_id, b.key_id);
            assert_eq!(a.events, b.events);
        }
        // Memberships never share a step with a donation's events; an application's address
        // change is in its step.
        for step in generate(&config).0.iter().filter(|s| is_membership_step(s)) {
            assert!(
                step.events
                    .iter()
                    .all(|e| MembershipCategory::of(&e.stream).is_some()
                        || is_address_change_event(e))
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_memberships() {
        let config = WorkloadConfig {
            donations: 2_000,
            seed: 11,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
        };
        let memberships = |config: &WorkloadConfig| -> Vec<Step> {
            generate(config)
                .0
                .into_iter()
                .filter(is_membership_step)
                .collect()
        };
        let (a, b) = (memberships(&config), memberships(&config));
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.events == y.events));
        let other = memberships(&WorkloadConfig { seed: 12, ..config });
        assert!(a.len() != other.len() || a.iter().zip(&other).any(|(x, y)| x.events != y.events));
    }

    /// Every application's events, by application id, with the time each was made (an
    /// export's or scrub's own time; the application's for the rest).
    fn histories(steps: &[Step]) -> std::collections::BTreeMap<u64, Vec<StreamEvent>> {
        let mut out: std::collections::BTreeMap<u64, Vec<StreamEvent>> = Default::default();
        for e in steps.iter().flat_map(|s| &s.events) {
            if MembershipCategory::of(&e.stream).is_some() {
                let (_, id) = streams::parse(&e.stream).unwrap();
                out.entry(id).or_default().push(e.clone());
            }
        }
        out
    }

    #[test]
    fn memberships_come_in_their_proportion_with_their_whole_lifecycle() {
        let config = WorkloadConfig {
            donations: 20_000,
            seed: 42,
            start: Utc::now(),
            donations_only: false,
        };
        let (steps, summary) = generate(&config);
        // One in 80 donations: 250 expected; three standard deviations (about 16) either way.
        let expected = config.donations / DONATIONS_PER_MEMBERSHIP as usize;
        assert!(
            (expected - 48..=expected + 48).contains(&summary.memberships),
            "{} applications",
            summary.memberships
        );
        let histories = histories(&steps);
        assert_eq!(histories.len(), summary.memberships);
        let mut types = std::collections::BTreeSet::new();
        let mut reasons = std::collections::BTreeSet::new();
        let mut rules = std::collections::BTreeSet::new();
        for events in histories.values() {
            for e in events {
                types.insert(e.event.event_type());
                match &e.event {
                    DomainEvent::ModerationReasonsRaised(r) => {
                        reasons.extend(r.reasons.iter().map(|r| r.identifier));
                    }
                    DomainEvent::PersonalDataScrubbed(s) => {
                        rules.insert(s.rule);
                    }
                    _ => {}
                }
            }
        }
        for t in [
            "MembershipApplied.v1",
            "ModerationReasonsRaised.v1",
            "ManuallyFlagged.v1",
            "ModerationApproved.v1",
            "MembershipCancelled.v1",
            "MembershipRestored.v1",
            "MembershipExported.v1",
            "PersonalDataScrubbed.v1",
        ] {
            assert!(types.contains(t), "{t} missing from {types:?}");
        }
        assert!(reasons.contains(&(ev::ModerationIdentifier::MembershipFeeTooHigh as i32)));
        assert!(reasons.contains(&(ev::ModerationIdentifier::AddressContentViolation as i32)));
        for rule in [
            ev::ScrubRule::Exported,
            ev::ScrubRule::CancelledOrDeleted,
            ev::ScrubRule::AfterGracePeriod,
        ] {
            assert!(rules.contains(&(rule as i32)), "{rule:?} missing");
        }
    }

    #[test]
    fn every_membership_event_is_one_the_domain_would_decide() {
        use crate::domain::membership::commands::{self, MembershipScrubPolicy};
        use crate::domain::membership::MembershipView;
        let config = WorkloadConfig {
            donations: 20_000,
            seed: 3,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
        };
        let (steps, _) = generate(&config);
        for (id, events) in histories(&steps) {
            let mut view = MembershipView::default();
            for e in &events {
                let decided = match &e.event {
                    DomainEvent::MembershipApplied(a) => {
                        let kind = ev::ApplicantKind::try_from(a.applicant_kind).unwrap();
                        let fee = a.fee.as_ref().unwrap().cents;
                        assert_eq!(fees::fee_misfit(kind, fee, a.interval_months), None);
                        assert!(!view.application.exists(), "{id} applied twice");
                        None
                    }
                    DomainEvent::ModerationReasonsRaised(_) => None,
                    DomainEvent::ManuallyFlagged(f) => Some(commands::flag(&view, &f.note)),
                    DomainEvent::ModerationApproved(_) => Some(commands::approve(&view)),
                    DomainEvent::MembershipCancelled(c) => Some(commands::cancel(&view, &c.reason)),
                    DomainEvent::MembershipRestored(r) => Some(commands::restore(&view, &r.reason)),
                    DomainEvent::MembershipExported(x) => {
                        let at = to_datetime(x.exported_at.as_ref().unwrap()).unwrap();
                        Some(commands::mark_exported(&view, &x.batch_id, at))
                    }
                    DomainEvent::PersonalDataScrubbed(s) => {
                        let now = to_datetime(s.scrubbed_at.as_ref().unwrap()).unwrap();
                        Some(commands::scrub(
                            &view,
                            now,
                            &MembershipScrubPolicy::default(),
                        ))
                    }
                    other => panic!("{id}: {} in a membership stream", other.event_type()),
                };
                if let Some(decided) = decided {
                    let decided = decided.unwrap_or_else(|err| {
                        panic!("{id}: {} refused: {err}", e.event.event_type())
                    });
                    assert_eq!(decided, vec![e.clone()], "application {id}");
                }
                view.apply(&e.stream, &e.event);
            }
        }
    }

    /// Every address change's events, by id, in the order appended (its token index
    /// entries included, under the id they name).
    fn address_change_histories(
        steps: &[Step],
    ) -> std::collections::BTreeMap<u64, Vec<StreamEvent>> {
        let mut out: std::collections::BTreeMap<u64, Vec<StreamEvent>> = Default::default();
        for e in steps.iter().flat_map(|s| &s.events) {
            let id = match &e.event {
                DomainEvent::AddressChangeTokenIssued(t) => t.address_change_id,
                _ if is_address_change_stream(&e.stream) => streams::parse(&e.stream).unwrap().1,
                _ => continue,
            };
            out.entry(id).or_default().push(e.clone());
        }
        out
    }

    #[test]
    fn every_postal_donor_and_every_application_gets_an_address_change_in_its_own_append() {
        let config = WorkloadConfig {
            donations: 3_000,
            seed: 5,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
        };
        let (steps, summary) = generate(&config);
        let (mut donors, mut applications) = (0, 0);
        for step in &steps {
            let created: Vec<&ev::AddressChangeCreated> = step
                .events
                .iter()
                .filter_map(|e| match &e.event {
                    DomainEvent::AddressChangeCreated(c) => Some(c),
                    _ => None,
                })
                .collect();
            let expected = step.events.iter().find_map(|e| match &e.event {
                DomainEvent::DonationCreated(d) => {
                    let kind = d.donor.as_ref().map(|d| d.kind);
                    let address_type = match kind {
                        Some(k) if k == ev::DonorKind::Person as i32 => Some(AddressType::Person),
                        Some(k) if k == ev::DonorKind::Company as i32 => Some(AddressType::Company),
                        _ => None,
                    };
                    donors += usize::from(address_type.is_some());
                    Some(address_type.map(|t| (ExternalIdKind::Donation, d.donation_id, t)))
                }
                DomainEvent::MembershipApplied(m) => {
                    applications += 1;
                    let company = m.applicant_kind == ev::ApplicantKind::Company as i32;
                    let kind = if company {
                        AddressType::Company
                    } else {
                        AddressType::Person
                    };
                    Some(Some((ExternalIdKind::Membership, m.membership_id, kind)))
                }
                _ => None,
            });
            match expected.flatten() {
                Some((kind, external_id, address_type)) => {
                    assert_eq!(created.len(), 1, "{:?}", step.events);
                    let c = created[0];
                    assert_eq!(c.external_id_kind, kind as i32);
                    assert_eq!(c.external_id, external_id);
                    assert_eq!(c.address_type, address_type as i32);
                    // The intake's own events: the creation and the token's index entry.
                    let tail: Vec<StreamEvent> = step.events[step.events.len() - 2..].to_vec();
                    let at = to_datetime(c.created_at.as_ref().unwrap()).unwrap();
                    let decided = address_change_commands::create(
                        c.address_change_id,
                        &c.identifier,
                        kind,
                        external_id,
                        address_type,
                        at,
                    );
                    assert_eq!(tail, decided);
                }
                None => assert!(created.is_empty(), "{:?}", step.events),
            }
        }
        assert!(donors > 2_500 && applications > 0);
        assert_eq!(summary.address_changes, donors + applications);
        // Ids are handed out in order, once each.
        let ids: Vec<u64> = address_change_histories(&steps).into_keys().collect();
        assert_eq!(
            ids,
            (1..=summary.address_changes as u64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn address_changes_are_used_exported_and_scrubbed_in_their_assumed_proportion() {
        let config = WorkloadConfig {
            donations: 40_000,
            seed: 42,
            start: Utc::now(),
            donations_only: false,
        };
        let (steps, summary) = generate(&config);
        let count = |t: &str| {
            steps
                .iter()
                .flat_map(|s| &s.events)
                .filter(|e| e.event.event_type() == t)
                .count()
        };
        let issued = summary.address_changes;
        assert_eq!(count("AddressChangeCreated.v1"), issued);
        // Binomial shares: four standard deviations either way (about 4 * 28 of 800 for the
        // changes, 4 * 20 of 400 for the opt-outs at this size).
        let within = |n: usize, per_mille: u32| {
            let p = f64::from(per_mille) / 1000.0;
            let mean = issued as f64 * p;
            let sd = (issued as f64 * p * (1.0 - p)).sqrt();
            (n as f64 - mean).abs() <= 4.0 * sd
        };
        let changed = count("AddressChanged.v1");
        let opted_out = count("DonationReceiptOptedOut.v1");
        assert!(
            within(changed, ADDRESS_CHANGES_PER_MILLE),
            "{changed} of {issued} changed"
        );
        assert!(
            within(opted_out, RECEIPT_OPT_OUTS_PER_MILLE),
            "{opted_out} of {issued} opted out"
        );
        assert_eq!(summary.address_changes_used, changed + opted_out);
        // Every use is exported by the nightly run; every exported address (not an opt-out
        // alone) is scrubbed by the next, but for the last night's (which also exports the
        // uses decided for after the end: up to two weeks' worth).
        assert_eq!(count("AddressChangeExported.v1"), changed + opted_out);
        let scrubbed = steps
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| AddressChangeCategory::of(&e.stream) == Some(AddressChangeCategory::Scrub))
            .count();
        assert!(
            scrubbed > changed / 2 && scrubbed <= changed,
            "{scrubbed} of {changed}"
        );
        // One token index entry per token: the first and each use's new one.
        assert_eq!(
            count("AddressChangeTokenIssued.v1"),
            issued + changed + opted_out
        );
    }

    #[test]
    fn every_address_change_event_is_one_the_domain_would_decide() {
        use crate::domain::validation::validate_change_address;
        let config = WorkloadConfig {
            donations: 20_000,
            seed: 3,
            start: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            donations_only: false,
        };
        let (steps, _) = generate(&config);
        let policy = AddressChangeScrubPolicy::default();
        let mut used = 0;
        for (id, events) in address_change_histories(&steps) {
            let mut view = AddressChangeView::default();
            let mut rest = events.iter().peekable();
            while let Some(e) = rest.next() {
                let decided = match &e.event {
                    DomainEvent::AddressChangeCreated(_) => {
                        assert!(!view.exists(), "{id} created twice");
                        None
                    }
                    DomainEvent::AddressChangeTokenIssued(_) => {
                        panic!("{id}: a token index entry without its change")
                    }
                    DomainEvent::AddressChanged(c) => {
                        let (token, new) = (view.current_identifier.clone(), &c.new_identifier);
                        let address_type = AddressType::try_from(c.address_type).unwrap();
                        let input = AddressChangeInput {
                            address: Some((address_type, c.address.clone().unwrap())),
                            donation_receipt_opt_out: c.donation_receipt_opted_out,
                        };
                        assert!(validate_change_address(&token, &input).is_empty(), "{id}");
                        assert_eq!(address_type, view.address_type, "{id}");
                        used += 1;
                        let at = to_datetime(c.changed_at.as_ref().unwrap()).unwrap();
                        Some(address_change_commands::change(
                            &view, &token, &input, new, at,
                        ))
                    }
                    DomainEvent::DonationReceiptOptedOut(o) => {
                        let token = view.current_identifier.clone();
                        let input = AddressChangeInput {
                            address: None,
                            donation_receipt_opt_out: true,
                        };
                        assert!(validate_change_address(&token, &input).is_empty(), "{id}");
                        used += 1;
                        let at = to_datetime(o.changed_at.as_ref().unwrap()).unwrap();
                        Some(address_change_commands::change(
                            &view,
                            &token,
                            &input,
                            &o.new_identifier,
                            at,
                        ))
                    }
                    DomainEvent::AddressChangeExported(x) => {
                        let at = to_datetime(x.exported_at.as_ref().unwrap()).unwrap();
                        Some(address_change_commands::mark_exported(
                            &view,
                            &x.batch_id,
                            at,
                        ))
                    }
                    DomainEvent::PersonalDataScrubbed(s) => {
                        let now = to_datetime(s.scrubbed_at.as_ref().unwrap()).unwrap();
                        Some(address_change_commands::scrub(&view, now, &policy))
                    }
                    other => panic!(
                        "{id}: {} in an address change's streams",
                        other.event_type()
                    ),
                };
                let mut appended = vec![e.clone()];
                if let Some(decided) = decided {
                    let decided = decided.unwrap_or_else(|err| {
                        panic!("{id}: {} refused: {err}", e.event.event_type())
                    });
                    // A change appends its new token's index entry with it.
                    while appended.len() < decided.len() {
                        appended.push(rest.next().expect("the decided events follow").clone());
                    }
                    assert_eq!(decided, appended, "address change {id}");
                } else if let Some(next) =
                    rest.next_if(|n| matches!(n.event, DomainEvent::AddressChangeTokenIssued(_)))
                {
                    appended.push(next.clone());
                }
                for a in &appended {
                    view.apply(&a.stream, &a.event);
                }
            }
            assert!(view.exists(), "{id}");
        }
        assert!(used > 100, "{used} uses");
    }
}
