//! Ledger events as CiviShare changes and back: which events are shared (and as which change
//! type and entity), the attributes of a change built from an unsealed event, and the intake
//! command a received change becomes. The attribute table is the one in `docs/civishare.md`.
use std::str::FromStr;

use crate::domain::commands::{NewComment, NewDonation, NewDonor, NewPayment};
use crate::domain::scrub::ScrubRule;
use crate::domain::streams;
use crate::domain::types::PaymentMethod;
use crate::domain::DomainEvent;
use crate::proto::events as ev;
use crate::store::RecordedEvent;

use super::message::AttributeChange;

/// A new donation.
pub const DONATION_CREATED: &str = "ledger.change.donation.created";
/// A donation's personal data was scrubbed.
pub const DONATION_SCRUBBED: &str = "ledger.change.donation.scrubbed";
/// CiviCRM's contact base data: accepted on the wire, never applied by the ledger.
pub const CONTACT_BASE: &str = "civishare.change.contact.base";
/// The entity of the ledger's changes.
pub const DONATION_ENTITY: &str = "Donation";

/// Which change an event is, before its attributes are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// The change type.
    pub change_type: &'static str,
    /// The entity.
    pub entity: &'static str,
    /// Its id on this node.
    pub entity_reference: String,
}

/// The change an event of the log is, or `None` for events that are not shared.
pub fn shared(event: &RecordedEvent) -> Option<Shared> {
    match event.event_type.as_str() {
        "DonationCreated.v1" | "DonationCreated.v2" => {
            let (_, id) = streams::parse(&event.stream)?;
            Some(Shared {
                change_type: DONATION_CREATED,
                entity: DONATION_ENTITY,
                entity_reference: id.to_string(),
            })
        }
        "PersonalDataScrubbed.v1" if event.stream.starts_with("scrub-") => {
            let (_, id) = streams::parse(&event.stream)?;
            Some(Shared {
                change_type: DONATION_SCRUBBED,
                entity: DONATION_ENTITY,
                entity_reference: id.to_string(),
            })
        }
        _ => None,
    }
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

/// Every attribute of `ledger.change.donation.created`.
const CREATED_ATTRIBUTES: &[&str] = &[
    "amount_cents",
    "currency",
    "interval_months",
    "payment_method",
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
    "comment",
    "comment_display_name",
    "campaign",
    "keyword",
];

/// The attributes of a change built from `event`, already unsealed: personal fields whose key
/// was destroyed are gone, and so are left out. Empty values are left out.
pub fn attributes(event: &DomainEvent) -> Vec<AttributeChange> {
    let mut out: Vec<(&str, String)> = Vec::new();
    match event {
        DomainEvent::DonationCreated(d) => {
            if let Some(m) = &d.amount {
                out.push(("amount_cents", m.cents.to_string()));
                out.push(("currency", m.currency.clone()));
            }
            out.push(("interval_months", d.interval_months.to_string()));
            if let Some(m) = PaymentMethod::from_proto(d.payment_method) {
                out.push(("payment_method", m.code().to_owned()));
            }
            if let Some(donor) = &d.donor {
                out.push(("donor_kind", kind_name(donor.kind).to_owned()));
                out.push(("salutation", donor.salutation.clone()));
                out.push(("wants_newsletter", donor.wants_newsletter.to_string()));
                out.push(("wants_receipt", donor.wants_receipt.to_string()));
            }
            if let Some(p) = &d.personal {
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
        DomainEvent::PersonalDataScrubbed(s) => {
            let rule = ScrubRule::try_from(s.rule).unwrap_or(ScrubRule::Unspecified);
            out.push(("rule", rule.as_str().to_owned()));
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

/// The new donation a `ledger.change.donation.created` asks for. The intake validates it like
/// any frontend's request; this only refuses what it cannot read.
pub fn new_donation(attributes: &[AttributeChange]) -> Result<NewDonation, Unusable> {
    let unknown: Vec<&str> = attributes
        .iter()
        .map(|a| a.name.as_str())
        .filter(|n| !CREATED_ATTRIBUTES.contains(n))
        .collect();
    if !unknown.is_empty() {
        return Err(Unusable(format!(
            "unknown_attribute: {} (known: {})",
            unknown.join(", "),
            CREATED_ATTRIBUTES.join(", ")
        )));
    }
    let get = |name: &str| {
        attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.to.clone())
            .unwrap_or_default()
    };
    let number = |name: &str| -> Result<i64, Unusable> {
        let v = get(name);
        if v.is_empty() {
            return Ok(0);
        }
        v.parse()
            .map_err(|_| Unusable(format!("invalid: {name} must be an integer, not {v:?}")))
    };
    let flag = |name: &str| -> Result<bool, Unusable> {
        match get(name).as_str() {
            "" | "false" => Ok(false),
            "true" => Ok(true),
            v => Err(Unusable(format!(
                "invalid: {name} must be true or false, not {v:?}"
            ))),
        }
    };
    let method_code = get("payment_method");
    let kind = get("donor_kind");
    let kind = kind_from_name(&kind).ok_or_else(|| {
        Unusable(format!(
            "invalid: donor_kind must be person, company, email_only or anonymous, not {kind:?}"
        ))
    })?;
    let interval = number("interval_months")?;
    let comment = get("comment");
    Ok(NewDonation {
        payment: NewPayment {
            amount_cents: number("amount_cents")?,
            currency: get("currency"),
            interval_months: u32::try_from(interval).unwrap_or(u32::MAX),
            method: PaymentMethod::from_code(&method_code),
            iban: String::new(),
            bic: String::new(),
        },
        donor: NewDonor {
            kind,
            salutation: get("salutation"),
            title: get("title"),
            first_name: get("first_name"),
            last_name: get("last_name"),
            company_name: get("company_name"),
            street: get("street"),
            postcode: get("postcode"),
            city: get("city"),
            country: get("country"),
            email: get("email"),
            wants_newsletter: flag("wants_newsletter")?,
            wants_receipt: flag("wants_receipt")?,
        },
        comment: NewComment {
            is_public: !comment.is_empty(),
            text: comment,
            display_name: get("comment_display_name"),
        },
        tracking: ev::Tracking {
            campaign: get("campaign"),
            keyword: get("keyword"),
            ..ev::Tracking::default()
        },
        donation_id: None,
    })
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
}
