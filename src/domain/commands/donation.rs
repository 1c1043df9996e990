//! The new-donation decision: a donation with its payment and, when the moderation policy
//! says so, moderation reasons, decided from the request as the API parsed it.

use chrono::{DateTime, Utc};

use super::comment::{self, NewComment};
use super::raise_reasons;
use crate::domain::donation::{DonorKind, PersonalData};
use crate::domain::error::DomainError;
use crate::domain::moderation::ModerationReason;
use crate::domain::policy::ModerationPolicy;
use crate::domain::streams;
use crate::domain::types::{to_timestamp, Money, PaymentMethod, StreamEvent};
use crate::domain::validation::currency_or_default;
use crate::proto::events as ev;

/// The payment of a new donation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewPayment {
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO 4217 currency code; empty means EUR.
    pub currency: String,
    /// Interval in months (0 = one-time).
    pub interval_months: u32,
    /// The method; `None` when the request named none the ledger knows.
    pub method: Option<PaymentMethod>,
    /// IBAN (direct debit).
    pub iban: String,
    /// BIC (optional for direct debit).
    pub bic: String,
}

/// A donor, new or replacing the one a donation had.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDonor {
    /// Person, company, email-only or anonymous; unspecified when the request named none.
    pub kind: DonorKind,
    /// Salutation.
    pub salutation: String,
    /// Academic title.
    pub title: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Company name.
    pub company_name: String,
    /// Street and number.
    pub street: String,
    /// Postcode.
    pub postcode: String,
    /// City.
    pub city: String,
    /// Country code.
    pub country: String,
    /// Email address.
    pub email: String,
    /// Newsletter opt-in.
    pub wants_newsletter: bool,
    /// Wants a receipt.
    pub wants_receipt: bool,
}

impl NewDonor {
    /// The public part, as events carry it (trimmed).
    pub fn public(&self) -> ev::DonorPublic {
        ev::DonorPublic {
            kind: self.kind as i32,
            salutation: self.salutation.trim().to_owned(),
            wants_newsletter: self.wants_newsletter,
            wants_receipt: self.wants_receipt,
        }
    }

    /// The personal data, as events carry it in clear before sealing (trimmed).
    pub fn personal(&self) -> PersonalData {
        PersonalData {
            title: self.title.trim().to_owned(),
            first_name: self.first_name.trim().to_owned(),
            last_name: self.last_name.trim().to_owned(),
            company_name: self.company_name.trim().to_owned(),
            street: self.street.trim().to_owned(),
            postcode: self.postcode.trim().to_owned(),
            city: self.city.trim().to_owned(),
            country: self.country.trim().to_owned(),
            email: self.email.trim().to_owned(),
        }
    }
}

/// A new donation as a frontend sends it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewDonation {
    /// The payment.
    pub payment: NewPayment,
    /// The donor.
    pub donor: NewDonor,
    /// The comment; an empty text means none.
    pub comment: NewComment,
    /// Marketing tracking.
    pub tracking: ev::Tracking,
    /// A donation id the frontend took from `NextId(donation)`.
    pub donation_id: Option<u64>,
}

/// The ids of a new donation and its payment, from the sequence generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DonationIds {
    /// The donation.
    pub donation_id: u64,
    /// Its payment.
    pub payment_id: u64,
}

/// A new donation, decided.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedDonation {
    /// `DonationCreated`, `PaymentInitiated` and, when raised, `ModerationReasonsRaised`.
    pub events: Vec<StreamEvent>,
    /// The moderation reasons raised, in the order the policy raised them.
    pub reasons: Vec<ModerationReason>,
    /// The payment reference code (bank transfer and Sofort), else empty.
    pub payment_reference_code: String,
}

/// Creates a donation from a validated request
/// ([`crate::domain::validation::validate_new_donation`]).
///
/// * The moderation policy decides the reasons; a comment goes through the comment policy
///   (public only if it passes the text policy).
/// * An anonymous donor has no personal data.
/// * Bank transfer and Sofort payments get a payment reference code from `reference_code`,
///   told whether the donor is anonymous (the code's prefix says so).
/// * The IBAN is kept without spaces, in capitals.
///
/// `UnknownPayment` when the request names no payment method (validation refuses that first).
pub fn create_donation(
    cmd: &NewDonation,
    ids: DonationIds,
    created_at: DateTime<Utc>,
    policy: &ModerationPolicy,
    reference_code: impl FnOnce(bool) -> String,
) -> Result<CreatedDonation, DomainError> {
    let p = &cmd.payment;
    let method = p.method.ok_or(DomainError::UnknownPayment)?;
    let DonationIds {
        donation_id,
        payment_id,
    } = ids;
    let mut reasons = policy.reasons_for(cmd);
    let amount = Money {
        cents: p.amount_cents,
        currency: currency_or_default(&p.currency).to_owned(),
    };
    let comment = (!cmd.comment.text.trim().is_empty()).then(|| {
        let (comment, comment_reasons) = comment::as_recorded(policy, &cmd.comment);
        reasons.extend(comment_reasons);
        comment
    });
    let anonymous = cmd.donor.kind == DonorKind::Anonymous;
    let payment_reference_code =
        matches!(method, PaymentMethod::BankTransfer | PaymentMethod::Sofort)
            .then(|| reference_code(anonymous))
            .unwrap_or_default();
    let iban: String = p
        .iban
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let bank = (!iban.is_empty() || !payment_reference_code.is_empty()).then(|| ev::BankData {
        iban,
        bic: p.bic.trim().to_owned(),
        payment_reference_code: payment_reference_code.clone(),
    });
    let mut events = vec![
        StreamEvent::new(
            streams::donation(donation_id),
            ev::DonationCreated {
                donation_id,
                created_at: Some(to_timestamp(created_at)),
                amount: Some(amount.to_proto()),
                interval_months: p.interval_months,
                payment_id,
                payment_method: method.to_proto(),
                donor: Some(cmd.donor.public()),
                personal: (!anonymous).then(|| cmd.donor.personal()),
                personal_sealed: None,
                tracking: Some(cmd.tracking.clone()),
                comment,
            },
        ),
        StreamEvent::new(
            streams::payment(payment_id),
            ev::PaymentInitiated {
                payment_id,
                donation_id,
                method: method.to_proto(),
                amount: Some(amount.to_proto()),
                interval_months: p.interval_months,
                bank,
                bank_sealed: None,
                parent_payment_id: 0,
            },
        ),
    ];
    events.extend(raise_reasons(donation_id, &reasons));
    Ok(CreatedDonation {
        events,
        reasons,
        payment_reference_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;
    use crate::domain::view::DonationView;

    const IDS: DonationIds = DonationIds {
        donation_id: 7,
        payment_id: 70,
    };

    fn request(method: PaymentMethod, kind: DonorKind) -> NewDonation {
        NewDonation {
            payment: NewPayment {
                amount_cents: 1_000,
                method: Some(method),
                iban: " de89 3704 0044 0532 0130 00 ".into(),
                ..Default::default()
            },
            donor: NewDonor {
                kind,
                salutation: " Frau ".into(),
                last_name: " Lovelace ".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn strict() -> ModerationPolicy {
        ModerationPolicy {
            deny_words: vec!["badword".into()],
            ..Default::default()
        }
    }

    fn decide(cmd: &NewDonation) -> CreatedDonation {
        create_donation(cmd, IDS, t0(), &strict(), |anonymous| {
            if anonymous { "XR" } else { "XW" }.into()
        })
        .unwrap()
    }

    fn folded(created: &CreatedDonation) -> DonationView {
        let mut v = DonationView::default();
        apply_all(&mut v, &created.events);
        v
    }

    #[test]
    fn a_new_donation_creates_the_donation_and_its_pending_payment() {
        let created = decide(&request(DirectDebit, DonorKind::Person));
        assert_eq!(
            types(&created.events),
            [
                ("donation-7", "DonationCreated.v2"),
                ("payment-70", "PaymentInitiated.v1")
            ]
        );
        let v = folded(&created);
        assert_eq!(v.payment_method(), Some(DirectDebit));
        assert_eq!(v.donation.amount, Some(Money::eur(1_000)));
        assert_eq!(v.donation.donor.salutation, "Frau");
        let personal = v.donation.personal.as_ref().unwrap();
        assert_eq!(personal.last_name, "Lovelace");
        let bank = v.payment.bank.as_ref().unwrap();
        assert_eq!(bank.iban, "DE89370400440532013000");
        assert!(created.payment_reference_code.is_empty() && created.reasons.is_empty());
    }

    #[test]
    fn a_bank_transfer_gets_a_reference_code_that_says_whether_the_donor_is_anonymous() {
        let known = decide(&request(BankTransfer, DonorKind::Person));
        assert_eq!(known.payment_reference_code, "XW");
        let anonymous = decide(&request(BankTransfer, DonorKind::Anonymous));
        assert_eq!(anonymous.payment_reference_code, "XR");
        assert!(folded(&anonymous).donation.personal.is_none());
        assert!(decide(&request(PayPal, DonorKind::Person))
            .payment_reference_code
            .is_empty());
    }

    #[test]
    fn a_comment_given_with_the_donation_follows_the_comment_policy() {
        let mut cmd = request(BankTransfer, DonorKind::Person);
        cmd.comment = NewComment {
            text: "badword".into(),
            is_public: true,
            display_name: "Ada".into(),
        };
        let created = decide(&cmd);
        assert_eq!(
            created.reasons,
            [ModerationReason::new(
                ModerationIdentifier::CommentContentViolation,
                "comment"
            )]
        );
        let v = folded(&created);
        let c = v.donation.comment.as_ref().unwrap();
        assert!(!c.is_public && c.public_text.is_empty());
        assert_eq!(v.legacy_status(), 'P');
        // The same comment added later is recorded the same way.
        let mut later = folded(&decide(&request(BankTransfer, DonorKind::Person)));
        let added = add_comment(&later, &strict(), &cmd.comment).unwrap();
        apply_all(&mut later, &added);
        assert_eq!(later.donation.comment, v.donation.comment);
    }

    #[test]
    fn a_blank_comment_is_no_comment() {
        let mut cmd = request(BankTransfer, DonorKind::Person);
        cmd.comment.text = "  ".into();
        assert!(folded(&decide(&cmd)).donation.comment.is_none());
    }

    #[test]
    fn a_request_without_a_payment_method_decides_nothing() {
        let mut cmd = request(BankTransfer, DonorKind::Person);
        cmd.payment.method = None;
        assert_eq!(
            create_donation(&cmd, IDS, t0(), &strict(), |_| String::new()),
            Err(DomainError::UnknownPayment)
        );
    }
}
