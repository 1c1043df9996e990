//! The application fold: `ApplicationState` from the events of one `membership-{id}` stream.

use chrono::{DateTime, Utc};

use super::{ApplicantKind, MembershipType};
use crate::domain::types::{opt_datetime, PaymentMethod};
use crate::domain::DomainEvent;
use crate::proto::events as ev;

/// What an application says: applicant, membership type, fee, payment, tracking.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplicationState {
    /// The membership id, once applied.
    pub id: Option<u64>,
    /// When the application was made.
    pub created_at: Option<DateTime<Utc>>,
    /// Person or company; kept after a scrub.
    pub applicant_kind: ApplicantKind,
    /// The applicant's personal data when readable here (unsealed); `None` while sealed or
    /// after a scrub.
    pub applicant: Option<ev::ApplicantData>,
    /// Whether personal data was recorded at all (sealed or clear).
    pub has_personal_data: bool,
    /// Active or sustaining.
    pub membership_type: MembershipType,
    /// The fee per interval, in cents.
    pub fee_cents: i64,
    /// Months between payments: 1, 3, 6 or 12.
    pub interval_months: u32,
    /// The payment's id.
    pub payment_id: u64,
    /// The payment method.
    pub payment_method: Option<PaymentMethod>,
    /// Bank account and reference code when readable.
    pub bank: Option<ev::BankData>,
    /// Whether the payment was complete at application (the legacy "confirmed").
    pub confirmed: bool,
    /// Campaign and keyword.
    pub tracking: ev::MembershipTracking,
    /// Incentive names.
    pub incentives: Vec<String>,
    /// Whether the applicant wants a donation receipt; `None` when not said.
    pub donation_receipt: Option<bool>,
}

impl ApplicationState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Whether the application exists.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The fee over a year, in cents (fee × 12 / interval).
    pub fn yearly_fee_cents(&self) -> i64 {
        super::fees::yearly_cents(self.fee_cents, self.interval_months)
    }

    /// Applies one event; events of other streams are ignored. Never fails. The first
    /// application counts (the log refuses a second one on the same stream).
    pub fn apply(&mut self, event: &DomainEvent) {
        let DomainEvent::MembershipApplied(e) = event else {
            return;
        };
        if self.exists() {
            return;
        }
        *self = Self {
            id: Some(e.membership_id),
            created_at: opt_datetime(e.created_at.as_ref()),
            applicant_kind: ApplicantKind::try_from(e.applicant_kind)
                .unwrap_or(ApplicantKind::Unspecified),
            applicant: e.applicant.clone(),
            has_personal_data: e.applicant.is_some() || e.applicant_sealed.is_some(),
            membership_type: MembershipType::try_from(e.membership_type)
                .unwrap_or(MembershipType::Unspecified),
            fee_cents: e.fee.as_ref().map_or(0, |m| m.cents),
            interval_months: e.interval_months,
            payment_id: e.payment_id,
            payment_method: PaymentMethod::from_proto(e.payment_method),
            bank: e.bank.clone(),
            confirmed: e.confirmed,
            tracking: e.tracking.clone().unwrap_or_default(),
            incentives: e.incentives.clone(),
            donation_receipt: e.donation_receipt,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::membership::view::fixtures::applied;

    #[test]
    fn an_application_records_what_was_applied_for() {
        let s = ApplicationState::fold(&[applied(PaymentMethod::DirectDebit, true)]);
        assert!(s.exists());
        assert_eq!(s.applicant_kind, ApplicantKind::Person);
        assert_eq!(s.membership_type, MembershipType::Sustaining);
        assert_eq!((s.fee_cents, s.interval_months), (1000, 3));
        assert_eq!(s.yearly_fee_cents(), 4000);
        assert_eq!(s.payment_method, Some(PaymentMethod::DirectDebit));
        assert!(s.confirmed);
        assert_eq!(s.tracking.campaign, "spring");
        assert_eq!(s.incentives, ["tote_bag"]);
        assert_eq!(s.donation_receipt, Some(true));
    }

    #[test]
    fn a_second_application_on_the_same_stream_changes_nothing() {
        let first = applied(PaymentMethod::DirectDebit, true);
        let mut second = applied(PaymentMethod::BankTransfer, false);
        if let DomainEvent::MembershipApplied(e) = &mut second {
            e.fee = Some(ev::Money {
                cents: 99_999,
                currency: "EUR".into(),
            });
        }
        let s = ApplicationState::fold(&[first.clone(), second]);
        assert_eq!(s, ApplicationState::fold(&[first]));
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let s = ApplicationState::fold(&[
            ev::MembershipCancelled::default().into(),
            ev::DonationExported::default().into(),
        ]);
        assert_eq!(s, ApplicationState::default());
    }
}
