//! Ledger events as CiviShare changes and back: which events are shared (and as which change
//! type and entity), the attributes of a change built from an unsealed event, and the intake
//! command a received change becomes. The attribute table is the one in `docs/civishare.md`.
use std::str::FromStr;

use crate::domain::commands::{NewComment, NewDonation, NewDonor, NewPayment};
use crate::domain::scrub::ScrubRule;
use crate::domain::streams;
use crate::domain::types::{opt_datetime, Money, PaymentMethod};
use crate::domain::DomainEvent;
use crate::proto::events as ev;
use crate::store::RecordedEvent;

use super::message::AttributeChange;

/// A new donation.
pub const DONATION_CREATED: &str = "ledger.change.donation.created";
/// A donation's personal data was scrubbed.
pub const DONATION_SCRUBBED: &str = "ledger.change.donation.scrubbed";
/// The donor cancelled a donation.
pub const DONATION_CANCELLED: &str = "ledger.change.donation.cancelled";
/// An administrator deleted a donation.
pub const DONATION_DELETED: &str = "ledger.change.donation.deleted";
/// A cancelled or deleted donation was restored.
pub const DONATION_RESTORED: &str = "ledger.change.donation.restored";
/// The donor's data changed.
pub const DONOR_UPDATED: &str = "ledger.change.donation.donor_updated";
/// The donation's payment was booked.
pub const PAYMENT_BOOKED: &str = "ledger.change.payment.booked";
/// The donation's payment failed.
pub const PAYMENT_FAILED: &str = "ledger.change.payment.failed";
/// (Part of) the donation's payment was refunded.
pub const PAYMENT_REFUNDED: &str = "ledger.change.payment.refunded";
/// The payer's bank reversed (part of) the donation's payment.
pub const PAYMENT_CHARGEBACK: &str = "ledger.change.payment.chargeback";
/// CiviCRM's contact base data: accepted on the wire, never applied by the ledger.
pub const CONTACT_BASE: &str = "civishare.change.contact.base";
/// The entity of the ledger's changes.
pub const DONATION_ENTITY: &str = "Donation";

/// Which donation a shared event concerns: named by its stream, or, for an event of a
/// payment stream, by the payment (the sender looks up its donation before it queues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The donation with this id.
    Donation(u64),
    /// The donation of the payment with this id.
    PaymentOf(u64),
}

/// Which change an event is, before its attributes are read. Every ledger change has entity
/// `Donation` and the donation's id as its reference, payment changes included: a peer knows
/// the donation (from its `created` change) and finds the payment through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// The change type.
    pub change_type: &'static str,
    /// The donation it concerns.
    pub subject: Subject,
}

impl Shared {
    /// The entity of every ledger change.
    pub const ENTITY: &'static str = DONATION_ENTITY;
}

/// The change an event of the log is, or `None` for events that are not shared. A
/// recurring payment's follow-ups (a new donation on the sender) are not shared.
pub fn shared(event: &RecordedEvent) -> Option<Shared> {
    let (category, id) = streams::parse(&event.stream)?;
    let (change_type, subject) = match (category, event.event_type.as_str()) {
        ("donation", "DonationCreated.v1" | "DonationCreated.v2") => {
            (DONATION_CREATED, Subject::Donation(id))
        }
        ("donation", "DonorUpdated.v1") => (DONOR_UPDATED, Subject::Donation(id)),
        ("scrub", "PersonalDataScrubbed.v1") => (DONATION_SCRUBBED, Subject::Donation(id)),
        ("deletion", "DonationCancelled.v1") => (DONATION_CANCELLED, Subject::Donation(id)),
        ("deletion", "DonationDeleted.v1") => (DONATION_DELETED, Subject::Donation(id)),
        ("deletion", "DonationRestored.v1") => (DONATION_RESTORED, Subject::Donation(id)),
        ("payment", "PaymentBooked.v1") => (PAYMENT_BOOKED, Subject::PaymentOf(id)),
        ("payment", "PaymentFailed.v1") => (PAYMENT_FAILED, Subject::PaymentOf(id)),
        ("payment", "PaymentRefunded.v1") => (PAYMENT_REFUNDED, Subject::PaymentOf(id)),
        ("payment", "ChargebackReceived.v1") => (PAYMENT_CHARGEBACK, Subject::PaymentOf(id)),
        _ => return None,
    };
    Some(Shared {
        change_type,
        subject,
    })
}

/// The donor kind as changes name it.
fn kind_name(kind: i32) -> &'static str {
    match ev::DonorKind::try_from(kind).unwrap_or(ev::DonorKind::Unspecified) {
        ev::DonorKind::Person => "person",
        ev::DonorKind::Company => "company",
        ev::DonorKind::EmailOnly => "email_only",
        ev::DonorKind::Anonymous => "anonymous",
        ev::DonorKind::Unspecified => "",
    }
}

fn kind_from_name(name: &str) -> Option<ev::DonorKind> {
    Some(match name {
        "person" => ev::DonorKind::Person,
        "company" => ev::DonorKind::Company,
        "email_only" => ev::DonorKind::EmailOnly,
        "anonymous" => ev::DonorKind::Anonymous,
        _ => return None,
    })
}

/// The attributes of `ledger.change.donation.created` beside the donor's
/// ([`DONOR_ATTRIBUTES`]).
const CREATED_ATTRIBUTES: &[&str] = &[
    "amount_cents",
    "currency",
    "interval_months",
    "payment_method",
    "comment",
    "comment_display_name",
    "campaign",
    "keyword",
];

/// The donor's attributes, of `ledger.change.donation.created` and
/// `ledger.change.donation.donor_updated`.
const DONOR_ATTRIBUTES: &[&str] = &[
    "donor_kind",
    "salutation",
    "title",
    "first_name",
    "last_name",
    "company_name",
    "street",
    "postcode",
    "city",
    "country",
    "email",
    "wants_newsletter",
    "wants_receipt",
];

fn money_attributes(amount: Option<&ev::Money>, out: &mut Vec<(&str, String)>) {
    if let Some(m) = amount {
        out.push(("amount_cents", m.cents.to_string()));
        out.push(("currency", m.currency.clone()));
    }
}

/// The donor's attributes: the public ones always, the personal ones while their key lives.
fn donor_attributes(
    donor: Option<&ev::DonorPublic>,
    personal: Option<&ev::PersonalData>,
    out: &mut Vec<(&str, String)>,
) {
    if let Some(donor) = donor {
        out.push(("donor_kind", kind_name(donor.kind).to_owned()));
        out.push(("salutation", donor.salutation.clone()));
        out.push(("wants_newsletter", donor.wants_newsletter.to_string()));
        out.push(("wants_receipt", donor.wants_receipt.to_string()));
    }
    if let Some(p) = personal {
        out.extend([
            ("title", p.title.clone()),
            ("first_name", p.first_name.clone()),
            ("last_name", p.last_name.clone()),
            ("company_name", p.company_name.clone()),
            ("street", p.street.clone()),
            ("postcode", p.postcode.clone()),
            ("city", p.city.clone()),
            ("country", p.country.clone()),
            ("email", p.email.clone()),
        ]);
    }
}

/// The attributes of a change built from `event`, already unsealed: personal fields whose key
/// was destroyed are gone, and so are left out. Empty values are left out.
pub fn attributes(event: &DomainEvent) -> Vec<AttributeChange> {
    let mut out: Vec<(&str, String)> = Vec::new();
    match event {
        DomainEvent::DonationCreated(d) => {
            money_attributes(d.amount.as_ref(), &mut out);
            out.push(("interval_months", d.interval_months.to_string()));
            if let Some(m) = PaymentMethod::from_proto(d.payment_method) {
                out.push(("payment_method", m.code().to_owned()));
            }
            donor_attributes(d.donor.as_ref(), d.personal.as_ref(), &mut out);
            // Only a public comment is shared; a private one is personal.
            if let Some(c) = d.comment.as_ref().filter(|c| c.is_public) {
                out.push(("comment", c.public_text.clone()));
                out.push(("comment_display_name", c.display_name.clone()));
            }
            if let Some(t) = &d.tracking {
                out.push(("campaign", t.campaign.clone()));
                out.push(("keyword", t.keyword.clone()));
            }
        }
        DomainEvent::DonorUpdated(d) => {
            donor_attributes(d.donor.as_ref(), d.personal.as_ref(), &mut out);
        }
        DomainEvent::PersonalDataScrubbed(s) => {
            let rule = ScrubRule::try_from(s.rule).unwrap_or(ScrubRule::Unspecified);
            out.push(("rule", rule.as_str().to_owned()));
        }
        DomainEvent::DonationCancelled(e) => out.push(("reason", e.reason.clone())),
        DomainEvent::DonationDeleted(e) => out.push(("reason", e.reason.clone())),
        DomainEvent::DonationRestored(e) => out.push(("reason", e.reason.clone())),
        DomainEvent::PaymentFailed(e) => out.push(("reason", e.reason.clone())),
        DomainEvent::PaymentBooked(b) => {
            money_attributes(b.amount.as_ref(), &mut out);
            if let Some(t) = opt_datetime(b.valuation_date.as_ref()) {
                out.push(("valuation_date", super::message::format_time(t)));
            }
        }
        DomainEvent::PaymentRefunded(e) => {
            money_attributes(e.amount.as_ref(), &mut out);
            out.push(("reason", e.reason.clone()));
        }
        DomainEvent::ChargebackReceived(e) => {
            money_attributes(e.amount.as_ref(), &mut out);
            out.push(("reason", e.reason.clone()));
        }
        _ => {}
    }
    out.into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, to)| AttributeChange {
            name: name.to_owned(),
            from: String::new(),
            to,
        })
        .collect()
}

/// Why a received change cannot become a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// A received change's attributes, read by name once every name is known to be one the
/// change type has.
struct Reader<'a> {
    attributes: &'a [AttributeChange],
}

impl<'a> Reader<'a> {
    fn new(attributes: &'a [AttributeChange], known: &[&[&str]]) -> Result<Self, Unusable> {
        let known: Vec<&str> = known.concat();
        let unknown: Vec<&str> = attributes
            .iter()
            .map(|a| a.name.as_str())
            .filter(|n| !known.contains(n))
            .collect();
        if !unknown.is_empty() {
            return Err(Unusable(format!(
                "unknown_attribute: {} (known: {})",
                unknown.join(", "),
                known.join(", ")
            )));
        }
        Ok(Self { attributes })
    }

    fn text(&self, name: &str) -> String {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.to.clone())
            .unwrap_or_default()
    }

    fn number(&self, name: &str) -> Result<i64, Unusable> {
        let v = self.text(name);
        if v.is_empty() {
            return Ok(0);
        }
        v.parse()
            .map_err(|_| Unusable(format!("invalid: {name} must be an integer, not {v:?}")))
    }

    fn flag(&self, name: &str) -> Result<bool, Unusable> {
        match self.text(name).as_str() {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            v => Err(Unusable(format!(
                "invalid: {name} must be true or false, not {v:?}"
            ))),
        }
    }

    /// `amount_cents` and `currency`, or `None` when the change names no amount.
    fn money(&self) -> Result<Option<Money>, Unusable> {
        if self.text("amount_cents").is_empty() {
            return Ok(None);
        }
        Ok(Some(Money {
            cents: self.number("amount_cents")?,
            currency: self.text("currency"),
        }))
    }

    fn donor(&self) -> Result<NewDonor, Unusable> {
        let kind = self.text("donor_kind");
        let kind = kind_from_name(&kind).ok_or_else(|| {
            Unusable(format!(
                "invalid: donor_kind must be person, company, email_only or anonymous, not {kind:?}"
            ))
        })?;
        Ok(NewDonor {
            kind,
            salutation: self.text("salutation"),
            title: self.text("title"),
            first_name: self.text("first_name"),
            last_name: self.text("last_name"),
            company_name: self.text("company_name"),
            street: self.text("street"),
            postcode: self.text("postcode"),
            city: self.text("city"),
            country: self.text("country"),
            email: self.text("email"),
            wants_newsletter: self.flag("wants_newsletter")?,
            wants_receipt: self.flag("wants_receipt")?,
        })
    }
}

/// The new donation a `ledger.change.donation.created` asks for. The intake validates it like
/// any frontend's request; this only refuses what it cannot read.
pub fn new_donation(attributes: &[AttributeChange]) -> Result<NewDonation, Unusable> {
    let read = Reader::new(attributes, &[CREATED_ATTRIBUTES, DONOR_ATTRIBUTES])?;
    let interval = read.number("interval_months")?;
    let comment = read.text("comment");
    Ok(NewDonation {
        payment: NewPayment {
            amount_cents: read.number("amount_cents")?,
            currency: read.text("currency"),
            interval_months: u32::try_from(interval).unwrap_or(u32::MAX),
            method: PaymentMethod::from_code(&read.text("payment_method")),
            iban: String::new(),
            bic: String::new(),
        },
        donor: read.donor()?,
        comment: NewComment {
            is_public: !comment.is_empty(),
            text: comment,
            display_name: read.text("comment_display_name"),
        },
        tracking: ev::Tracking {
            campaign: read.text("campaign"),
            keyword: read.text("keyword"),
            ..ev::Tracking::default()
        },
        donation_id: None,
    })
}

/// What a change to a donation the receiver already has asks it to do: the intake command
/// it becomes, on the receiver's copy of the donation (and that copy's payment).
#[derive(Debug, Clone, PartialEq)]
pub enum FollowUp {
    /// `ledger.change.donation.cancelled`: `CancelDonation`.
    Cancel {
        /// Why.
        reason: String,
    },
    /// `ledger.change.donation.deleted`: `DeleteDonation`.
    Delete {
        /// Why.
        reason: String,
    },
    /// `ledger.change.donation.restored`: `RestoreDonation`.
    Restore {
        /// Why.
        reason: String,
    },
    /// `ledger.change.donation.donor_updated`: `UpdateDonor`.
    UpdateDonor(NewDonor),
    /// `ledger.change.payment.booked`: `BookPayment`, the transaction named after the change.
    Book {
        /// The booked amount, when the sender's provider reported one.
        amount: Option<Money>,
        /// When it was booked on the sender.
        valuation_date: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// `ledger.change.payment.failed`: `FailPayment`.
    Fail {
        /// Why.
        reason: String,
    },
    /// `ledger.change.payment.refunded`: `RefundPayment`.
    Refund {
        /// How much; everything still held when `None`.
        amount: Option<Money>,
        /// Why.
        reason: String,
    },
    /// `ledger.change.payment.chargeback`: `ReportChargeback`.
    Chargeback {
        /// How much; everything still held when `None`.
        amount: Option<Money>,
        /// Why.
        reason: String,
    },
}

/// The follow-up a change of `change_type` asks for; `Ok(None)` when the type is not a
/// follow-up (created, scrubbed, contact).
pub fn follow_up(
    change_type: &str,
    attributes: &[AttributeChange],
) -> Result<Option<FollowUp>, Unusable> {
    const REASON: &[&str] = &["reason"];
    const MONEY_BACK: &[&str] = &["amount_cents", "currency", "reason"];
    const BOOKED: &[&str] = &["amount_cents", "currency", "valuation_date"];
    let reason = |known| Ok::<_, Unusable>(Reader::new(attributes, &[known])?.text("reason"));
    Ok(Some(match change_type {
        DONATION_CANCELLED => FollowUp::Cancel {
            reason: reason(REASON)?,
        },
        DONATION_DELETED => FollowUp::Delete {
            reason: reason(REASON)?,
        },
        DONATION_RESTORED => FollowUp::Restore {
            reason: reason(REASON)?,
        },
        PAYMENT_FAILED => FollowUp::Fail {
            reason: reason(REASON)?,
        },
        DONOR_UPDATED => {
            FollowUp::UpdateDonor(Reader::new(attributes, &[DONOR_ATTRIBUTES])?.donor()?)
        }
        PAYMENT_BOOKED => {
            let read = Reader::new(attributes, &[BOOKED])?;
            let date = read.text("valuation_date");
            let valuation_date = if date.is_empty() {
                None
            } else {
                Some(super::message::parse_time(&date).ok_or_else(|| {
                    Unusable(format!(
                        "invalid: valuation_date must be an RFC 3339 time, not {date:?}"
                    ))
                })?)
            };
            FollowUp::Book {
                amount: read.money()?,
                valuation_date,
            }
        }
        PAYMENT_REFUNDED | PAYMENT_CHARGEBACK => {
            let read = Reader::new(attributes, &[MONEY_BACK])?;
            let (amount, reason) = (read.money()?, read.text("reason"));
            if change_type == PAYMENT_REFUNDED {
                FollowUp::Refund { amount, reason }
            } else {
                FollowUp::Chargeback { amount, reason }
            }
        }
        _ => return Ok(None),
    }))
}

/// The scrub rule a `ledger.change.donation.scrubbed` names (unspecified when absent or
/// unknown to this ledger).
pub fn scrub_rule(attributes: &[AttributeChange]) -> ScrubRule {
    attributes
        .iter()
        .find(|a| a.name == "rule")
        .and_then(|a| ScrubRule::from_str(&a.to).ok())
        .unwrap_or(ScrubRule::Unspecified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> ev::DonationCreated {
        ev::DonationCreated {
            donation_id: 7,
            amount: Some(ev::Money {
                cents: 2500,
                currency: "EUR".into(),
            }),
            payment_method: ev::PaymentMethod::Paypal as i32,
            donor: Some(ev::DonorPublic {
                kind: ev::DonorKind::Person as i32,
                salutation: "Frau".into(),
                wants_newsletter: false,
                wants_receipt: true,
            }),
            personal: Some(ev::PersonalData {
                first_name: "Karla".into(),
                last_name: "Beispiel".into(),
                email: "karla@example.org".into(),
                ..ev::PersonalData::default()
            }),
            ..ev::DonationCreated::default()
        }
    }

    #[test]
    fn a_created_donation_round_trips_through_its_attributes() {
        let attrs = attributes(&DomainEvent::DonationCreated(created()));
        assert!(attrs.iter().all(|a| a.from.is_empty() && !a.to.is_empty()));
        let cmd = new_donation(&attrs).unwrap();
        assert_eq!(cmd.payment.amount_cents, 2500);
        assert_eq!(cmd.payment.method, Some(PaymentMethod::PayPal));
        assert_eq!(cmd.donor.kind, ev::DonorKind::Person);
        assert_eq!(cmd.donor.first_name, "Karla");
        assert!(cmd.donor.wants_receipt);
    }

    #[test]
    fn a_scrubbed_donation_gives_no_personal_attribute() {
        let mut d = created();
        // What unsealing leaves once the key is destroyed.
        d.personal = None;
        let attrs = attributes(&DomainEvent::DonationCreated(d));
        let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
        assert!(!names.contains(&"first_name") && !names.contains(&"email"));
        assert!(names.contains(&"salutation") && names.contains(&"donor_kind"));
    }

    #[test]
    fn an_unknown_attribute_or_unreadable_value_is_refused_by_name() {
        let a = |n: &str, v: &str| AttributeChange {
            name: n.into(),
            from: String::new(),
            to: v.into(),
        };
        let e = new_donation(&[a("shoe_size", "44")]).unwrap_err();
        assert!(e.0.contains("shoe_size"), "{e}");
        let e = new_donation(&[a("donor_kind", "person"), a("amount_cents", "lots")]).unwrap_err();
        assert!(e.0.contains("amount_cents"), "{e}");
    }

    #[test]
    fn a_booking_round_trips_through_its_attributes_without_the_providers_data() {
        let booked = ev::PaymentBooked {
            valuation_date: Some(prost_types::Timestamp {
                seconds: 1_796_000_000,
                nanos: 0,
            }),
            amount: Some(ev::Money {
                cents: 2500,
                currency: "EUR".into(),
            }),
            provider: Some(ev::ProviderData {
                payer_id: "PAYER-SECRET".into(),
                ..ev::ProviderData::default()
            }),
            provider_sealed: None,
        };
        let attrs = attributes(&DomainEvent::PaymentBooked(booked));
        assert!(attrs.iter().all(|a| !a.to.contains("PAYER")), "{attrs:?}");
        let Some(FollowUp::Book {
            amount,
            valuation_date,
        }) = follow_up(PAYMENT_BOOKED, &attrs).unwrap()
        else {
            panic!("not a booking");
        };
        assert_eq!(amount, Some(Money::eur(2500)));
        assert_eq!(valuation_date.unwrap().timestamp(), 1_796_000_000);
    }

    #[test]
    fn follow_ups_refuse_attributes_their_type_does_not_have_and_other_types_are_none() {
        let a = |n: &str, v: &str| AttributeChange {
            name: n.into(),
            from: String::new(),
            to: v.into(),
        };
        assert_eq!(
            follow_up(DONATION_CANCELLED, &[a("reason", "moved")]).unwrap(),
            Some(FollowUp::Cancel {
                reason: "moved".into()
            })
        );
        let e = follow_up(DONATION_CANCELLED, &[a("first_name", "Karla")]).unwrap_err();
        assert!(e.0.starts_with("unknown_attribute: first_name"), "{e}");
        let e = follow_up(PAYMENT_REFUNDED, &[a("amount_cents", "ten")]).unwrap_err();
        assert!(e.0.contains("amount_cents"), "{e}");
        let e = follow_up(PAYMENT_BOOKED, &[a("valuation_date", "yesterday")]).unwrap_err();
        assert!(e.0.contains("valuation_date"), "{e}");
        assert_eq!(follow_up(DONATION_CREATED, &[]).unwrap(), None);
        assert_eq!(
            follow_up("ledger.change.donation.teleported", &[]).unwrap(),
            None
        );
    }
}
