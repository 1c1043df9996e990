//! The donation fold: `DonationState` from the events of one `donation-{id}` stream.

use chrono::{DateTime, Utc};

use crate::domain::types::{donor_kind, opt_datetime, Money, PaymentMethod};
use crate::domain::DomainEvent;
use crate::proto::events as ev;

pub use crate::proto::events::{DonorKind, PersonalData, Tracking};

codes!(DonorKind, "donor kind", {
    Unspecified => "unspecified",
    Person => "person",
    Company => "company",
    EmailOnly => "email_only",
    Anonymous => "anonymous",
});

impl DonorKind {
    /// The kind of a legacy `address_type` code (`person`, `firma`, `email`, `anonym`; the
    /// English `company` and `anonymous` too).
    pub fn from_legacy_code(code: &str) -> Option<Self> {
        match code {
            "person" => Some(Self::Person),
            "firma" | "company" => Some(Self::Company),
            "email" => Some(Self::EmailOnly),
            "anonym" | "anonymous" => Some(Self::Anonymous),
            _ => None,
        }
    }
}

/// The public, non-personal part of a donor; it survives a scrub.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DonorPublic {
    /// Person, company, email-only or anonymous.
    pub kind: DonorKind,
    /// Salutation (kept after a scrub, "for measuring gender").
    pub salutation: String,
    /// Newsletter opt-in.
    pub wants_newsletter: bool,
    /// Wants a donation receipt.
    pub wants_receipt: bool,
}

impl DonorPublic {
    /// Whether the donor gives a postal address (a person or a company, not email-only or
    /// anonymous).
    pub fn has_postal_address(&self) -> bool {
        matches!(self.kind, DonorKind::Person | DonorKind::Company)
    }

    fn from_proto(d: &ev::DonorPublic) -> Self {
        Self {
            kind: donor_kind(d.kind),
            salutation: d.salutation.clone(),
            wants_newsletter: d.wants_newsletter,
            wants_receipt: d.wants_receipt,
        }
    }
}

/// A donation's comment. One per donation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommentState {
    /// Whether the comment is shown publicly.
    pub is_public: bool,
    /// The name shown beside a public comment.
    pub display_name: String,
    /// The public text (stored in clear in the log).
    pub public_text: String,
    /// The private text, when it was decrypted; `None` when absent, only sealed or scrubbed.
    pub private_text: Option<String>,
}

impl CommentState {
    fn from_proto(c: &ev::Comment) -> Self {
        Self {
            is_public: c.is_public,
            display_name: c.display_name.clone(),
            public_text: c.public_text.clone(),
            private_text: c.private_text.as_ref().map(|t| t.text.clone()),
        }
    }

    /// The comment's text as far as it is readable: the public text, else the private one.
    pub fn text(&self) -> Option<&str> {
        if !self.public_text.is_empty() {
            Some(&self.public_text)
        } else {
            self.private_text.as_deref()
        }
    }
}

/// Sets what `DonationCreated` and `FollowUpDonationCreated` both say (their fields share
/// names): id, time, amount, interval, payment, donor and tracking.
macro_rules! created_fields {
    ($state:expr, $e:expr) => {{
        $state.id = Some($e.donation_id);
        $state.created_at = opt_datetime($e.created_at.as_ref());
        $state.amount = $e.amount.as_ref().map(Money::from_proto);
        $state.interval_months = $e.interval_months;
        $state.payment_id = $e.payment_id;
        $state.payment_method = PaymentMethod::from_proto($e.payment_method);
        $state.donor = $e
            .donor
            .as_ref()
            .map(DonorPublic::from_proto)
            .unwrap_or_default();
        $state.tracking = $e.tracking.clone();
    }};
}

/// The state of one donation, folded from its own stream only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DonationState {
    /// The donation id; `None` until `DonationCreated` or `FollowUpDonationCreated`.
    pub id: Option<u64>,
    /// When the donation was made.
    pub created_at: Option<DateTime<Utc>>,
    /// The amount.
    pub amount: Option<Money>,
    /// Interval in months (0 = one-time).
    pub interval_months: u32,
    /// The payment's id.
    pub payment_id: u64,
    /// The payment method; `None` when unknown.
    pub payment_method: Option<PaymentMethod>,
    /// The public part of the donor.
    pub donor: DonorPublic,
    /// Personal data in clear, when the event carried it decrypted; `None` when absent or only
    /// sealed (always `None` after a scrub, since the key is gone).
    pub personal: Option<PersonalData>,
    /// The comment, if any.
    pub comment: Option<CommentState>,
    /// Marketing tracking.
    pub tracking: Option<Tracking>,
    /// For a follow-up donation of a recurring payment: the parent donation.
    pub parent_donation_id: Option<u64>,
    /// Whether its donor ever had a postal address (a person or a company) here, at creation
    /// or by an update: then an address change was issued for it (`AddDonation`,
    /// `UpdateDonor`).
    pub had_postal_address: bool,
}

impl DonationState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Whether the donation exists (was created).
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Whether this donation was created by a recurring payment's follow-up.
    pub fn is_follow_up(&self) -> bool {
        self.parent_donation_id.is_some()
    }

    /// Applies `DonationCreated` (what [`DonationState::apply`] does with it; for a caller
    /// that holds the payload without its event).
    pub fn apply_created(&mut self, e: &ev::DonationCreated) {
        created_fields!(self, e);
        self.had_postal_address = self.donor.has_postal_address();
        self.personal = e.personal.clone();
        self.comment = e.comment.as_ref().map(CommentState::from_proto);
    }

    /// Applies `FollowUpDonationCreated`, as [`DonationState::apply_created`] does creation.
    pub fn apply_follow_up(&mut self, e: &ev::FollowUpDonationCreated) {
        created_fields!(self, e);
        self.parent_donation_id = Some(e.parent_donation_id);
        // A recurring donor: salutation and kind only, never personal data.
        self.personal = None;
        self.comment = None;
    }

    /// Applies one event; events of other streams are ignored. Never fails.
    pub fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::DonationCreated(e) => self.apply_created(e),
            DomainEvent::FollowUpDonationCreated(e) => self.apply_follow_up(e),
            DomainEvent::DonorUpdated(e) => {
                if let Some(d) = &e.donor {
                    self.donor = DonorPublic::from_proto(d);
                }
                self.had_postal_address |= self.donor.has_postal_address();
                self.personal = e.personal.clone();
            }
            DomainEvent::CommentAdded(e) => {
                self.comment = e.comment.as_ref().map(CommentState::from_proto);
            }
            DomainEvent::CommentPublished(e) => {
                let c = self.comment.get_or_insert_with(CommentState::default);
                c.is_public = true;
                c.public_text = e.public_text.clone();
                c.display_name = e.display_name.clone();
            }
            DomainEvent::CommentRetracted(_) => {
                if let Some(c) = &mut self.comment {
                    c.is_public = false;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> DomainEvent {
        ev::DonationCreated {
            donation_id: 7,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            amount: Some(ev::Money {
                cents: 1337,
                currency: "EUR".into(),
            }),
            interval_months: 3,
            payment_id: 70,
            payment_method: ev::PaymentMethod::DirectDebit as i32,
            donor: Some(ev::DonorPublic {
                kind: DonorKind::Person as i32,
                salutation: "Frau".into(),
                wants_newsletter: true,
                wants_receipt: true,
            }),
            personal: Some(PersonalData {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                ..Default::default()
            }),
            personal_sealed: None,
            tracking: Some(Tracking {
                campaign: "c".into(),
                keyword: "k".into(),
                ..Default::default()
            }),
            comment: None,
        }
        .into()
    }

    #[test]
    fn a_created_donation_holds_its_facts() {
        let s = DonationState::fold(&[created()]);
        assert_eq!(s.id, Some(7));
        assert_eq!(s.amount, Some(Money::eur(1337)));
        assert_eq!(s.interval_months, 3);
        assert_eq!(s.payment_id, 70);
        assert_eq!(s.payment_method, Some(PaymentMethod::DirectDebit));
        assert_eq!(s.donor.kind, DonorKind::Person);
        assert_eq!(s.donor.salutation, "Frau");
        assert_eq!(s.personal.as_ref().unwrap().last_name, "Lovelace");
        assert_eq!(s.tracking.as_ref().unwrap().campaign, "c");
        assert!(s.created_at.is_some());
        assert!(!s.is_follow_up());
    }

    #[test]
    fn personal_data_that_is_only_sealed_reads_as_none() {
        let DomainEvent::DonationCreated(mut e) = created() else {
            unreachable!()
        };
        e.personal = None;
        e.personal_sealed = Some(ev::Sealed::default());
        let s = DonationState::fold(&[e.into()]);
        assert_eq!(s.personal, None);
    }

    #[test]
    fn a_donor_update_replaces_the_donor() {
        let update = ev::DonorUpdated {
            donor: Some(ev::DonorPublic {
                kind: DonorKind::Company as i32,
                ..Default::default()
            }),
            personal: Some(PersonalData {
                company_name: "ACME".into(),
                ..Default::default()
            }),
            personal_sealed: None,
        };
        let s = DonationState::fold(&[created(), update.into()]);
        assert_eq!(s.donor.kind, DonorKind::Company);
        assert_eq!(s.personal.unwrap().company_name, "ACME");
    }

    #[test]
    fn a_comment_is_added_published_and_retracted() {
        let added = ev::CommentAdded {
            comment: Some(ev::Comment {
                is_public: false,
                private_text: Some(ev::CommentText {
                    text: "hello".into(),
                }),
                ..Default::default()
            }),
        };
        let published = ev::CommentPublished {
            public_text: "hello".into(),
            display_name: "Ada".into(),
        };
        let mut s = DonationState::fold(&[created(), added.into()]);
        let c = s.comment.clone().unwrap();
        assert!(!c.is_public);
        assert_eq!(c.private_text.as_deref(), Some("hello"));
        s.apply(&published.into());
        let c = s.comment.clone().unwrap();
        assert!(c.is_public);
        assert_eq!(c.display_name, "Ada");
        s.apply(&ev::CommentRetracted::default().into());
        assert!(!s.comment.unwrap().is_public);
    }

    #[test]
    fn a_follow_up_donation_knows_its_parent_and_has_no_personal_data() {
        let e = ev::FollowUpDonationCreated {
            donation_id: 8,
            parent_donation_id: 7,
            payment_id: 80,
            payment_method: ev::PaymentMethod::Paypal as i32,
            ..Default::default()
        };
        let s = DonationState::fold(&[e.into()]);
        assert_eq!(s.parent_donation_id, Some(7));
        assert_eq!(s.payment_method, Some(PaymentMethod::PayPal));
        assert!(s.personal.is_none());
        assert!(s.is_follow_up());
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let before = DonationState::fold(&[created()]);
        let mut after = before.clone();
        after.apply(&ev::PaymentFailed::default().into());
        after.apply(&ev::DonationCancelled::default().into());
        after.apply(&ev::PersonalDataScrubbed::default().into());
        assert_eq!(before, after);
    }

    #[test]
    fn unknown_enum_values_do_not_fail_the_fold() {
        let e = ev::DonationCreated {
            payment_method: 99,
            donor: Some(ev::DonorPublic {
                kind: 42,
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = DonationState::fold(&[e.into()]);
        assert_eq!(s.payment_method, None);
        assert_eq!(s.donor.kind, DonorKind::Unspecified);
    }
}
