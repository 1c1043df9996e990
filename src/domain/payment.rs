//! The payment fold: `PaymentState` from the events of one `payment-{id}` stream.
//!
//! Status semantics: every payment starts `Pending`, including direct debit (BEZ) and bank
//! transfer (UEB). Those two are never booked by a provider, so their status stays `Pending`
//! (money has not been seen yet) while `is_complete()` is always true for them: they count as
//! complete at creation, as in the legacy system. External methods (MCP, PPL, SUB) are complete
//! once a provider booked them (valuation date set). Keep the two questions apart: "has money
//! arrived" is `status`, "does the donor need to do anything more" is `is_complete`.

use chrono::{DateTime, Utc};

use crate::domain::types::{opt_datetime, Money, PaymentMethod};
use crate::domain::DomainEvent;
use crate::proto::events as ev;

pub use crate::proto::events::BankData;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaymentStatus {
    /// Initiated, not booked by a provider (BEZ and UEB stay here; see the module docs).
    #[default]
    Pending,
    /// A provider confirmed the payment.
    Booked,
    /// The provider reported a failure.
    Failed,
    /// Cancelled (BEZ/UEB only).
    Cancelled,
    /// Money was returned.
    Refunded,
    /// The payer's bank reversed the payment.
    ChargedBack,
}

codes!(PaymentStatus, "payment status", {
    Pending => "pending",
    Booked => "booked",
    Failed => "failed",
    Cancelled => "cancelled",
    Refunded => "refunded",
    ChargedBack => "charged_back",
});

/// A further booking of a recurring payment, with its own payment and donation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The child payment.
    pub child_payment_id: u64,
    /// The child donation.
    pub child_donation_id: u64,
    /// Transaction id, when the provider data was readable.
    pub transaction_id: Option<String>,
    /// When the provider booked it.
    pub valuation_date: Option<DateTime<Utc>>,
}

impl FollowUp {
    /// The follow-up a `FollowUpPaymentBooked` records.
    fn of(e: &ev::FollowUpPaymentBooked) -> Self {
        Self {
            child_payment_id: e.child_payment_id,
            child_donation_id: e.child_donation_id,
            transaction_id: e
                .provider
                .as_ref()
                .map(|p| p.transaction_id.clone())
                .filter(|t| !t.is_empty()),
            valuation_date: opt_datetime(e.valuation_date.as_ref()),
        }
    }
}

/// The state of one payment, folded from its own stream only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PaymentState {
    /// Whether `PaymentInitiated` was seen.
    pub initiated: bool,
    /// The payment id.
    pub payment_id: u64,
    /// The donation it pays for.
    pub donation_id: u64,
    /// The method; `None` when unknown.
    pub method: Option<PaymentMethod>,
    /// The amount.
    pub amount: Option<Money>,
    /// Interval in months (0 = one-time).
    pub interval_months: u32,
    /// For a follow-up payment: its parent.
    pub parent_payment_id: Option<u64>,
    /// Current status.
    pub status: PaymentStatus,
    /// The status before a cancellation, restored by `PaymentRestored`.
    pub status_before_cancellation: Option<PaymentStatus>,
    /// When the provider booked it (kept after a scrub).
    pub valuation_date: Option<DateTime<Utc>>,
    /// The provider's transaction id, when the provider data was readable (clear).
    pub transaction_id: Option<String>,
    /// Bank data in clear, when readable.
    pub bank: Option<BankData>,
    /// Follow-up bookings of a recurring payment.
    pub follow_ups: Vec<FollowUp>,
    /// Sum of refunds, in cents.
    pub refunded_cents: i64,
    /// Sum of charge-backs, in cents.
    pub charged_back_cents: i64,
}

impl PaymentState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Whether a provider ever booked this payment (valuation date set).
    pub fn was_booked(&self) -> bool {
        self.valuation_date.is_some()
    }

    /// BEZ and UEB are complete from creation on; external methods once a provider booked
    /// them. An unknown method is never complete.
    pub fn is_complete(&self) -> bool {
        match self.method {
            Some(m) if !m.is_external() => true,
            Some(_) => self.was_booked(),
            None => false,
        }
    }

    /// Whether `transaction_id` is the one of this payment or of one of its follow-ups.
    pub fn knows_transaction(&self, transaction_id: &str) -> bool {
        self.transaction_id.as_deref() == Some(transaction_id)
            || self
                .follow_ups
                .iter()
                .any(|f| f.transaction_id.as_deref() == Some(transaction_id))
    }

    /// Applies `PaymentInitiated` (what [`PaymentState::apply`] does with it; for a caller that
    /// holds the payload without its event).
    pub fn apply_initiated(&mut self, e: &ev::PaymentInitiated) {
        self.initiated = true;
        self.payment_id = e.payment_id;
        self.donation_id = e.donation_id;
        self.method = PaymentMethod::from_proto(e.method);
        self.amount = e.amount.as_ref().map(Money::from_proto);
        self.interval_months = e.interval_months;
        self.bank = e.bank.clone();
        self.parent_payment_id = (e.parent_payment_id != 0).then_some(e.parent_payment_id);
    }

    /// The state of the child payment a follow-up booking of this (parent) payment creates:
    /// initiated and booked at once, with the parent's method and interval and the booking's
    /// amount (the parent's when the booking names none), no bank data.
    pub fn follow_up_child(&self, e: &ev::FollowUpPaymentBooked) -> PaymentState {
        let f = FollowUp::of(e);
        PaymentState {
            initiated: true,
            payment_id: f.child_payment_id,
            donation_id: f.child_donation_id,
            method: self.method,
            amount: e
                .amount
                .as_ref()
                .map(Money::from_proto)
                .or_else(|| self.amount.clone()),
            interval_months: self.interval_months,
            parent_payment_id: Some(self.payment_id),
            status: PaymentStatus::Booked,
            valuation_date: f.valuation_date,
            transaction_id: f.transaction_id,
            ..PaymentState::default()
        }
    }

    /// Applies one event; events of other streams are ignored. Never fails: each event states
    /// a fact, so it moves the status even from an unusual one.
    pub fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::PaymentInitiated(e) => self.apply_initiated(e),
            DomainEvent::PaymentBooked(e) => {
                self.status = PaymentStatus::Booked;
                self.status_before_cancellation = None;
                self.valuation_date = opt_datetime(e.valuation_date.as_ref());
                self.transaction_id = e
                    .provider
                    .as_ref()
                    .map(|p| p.transaction_id.clone())
                    .filter(|t| !t.is_empty());
            }
            DomainEvent::PaymentFailed(_) => {
                self.status = PaymentStatus::Failed;
            }
            // A repeated cancellation keeps the status from before the first one.
            DomainEvent::PaymentCancelled(_) if self.status != PaymentStatus::Cancelled => {
                self.status_before_cancellation = Some(self.status);
                self.status = PaymentStatus::Cancelled;
            }
            DomainEvent::PaymentRestored(_) if self.status == PaymentStatus::Cancelled => {
                self.status = self.status_before_cancellation.take().unwrap_or_default();
            }
            DomainEvent::FollowUpPaymentBooked(e) => self.follow_ups.push(FollowUp::of(e)),
            DomainEvent::PaymentRefunded(e) => {
                self.status = PaymentStatus::Refunded;
                self.refunded_cents = self
                    .refunded_cents
                    .saturating_add(e.amount.as_ref().map_or(0, |m| m.cents));
            }
            DomainEvent::ChargebackReceived(e) => {
                self.status = PaymentStatus::ChargedBack;
                self.charged_back_cents = self
                    .charged_back_cents
                    .saturating_add(e.amount.as_ref().map_or(0, |m| m.cents));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn initiated(method: PaymentMethod) -> DomainEvent {
        ev::PaymentInitiated {
            payment_id: 5,
            donation_id: 7,
            method: method.to_proto(),
            amount: Some(ev::Money {
                cents: 500,
                currency: "EUR".into(),
            }),
            interval_months: 1,
            ..Default::default()
        }
        .into()
    }

    fn booked(txn: &str) -> DomainEvent {
        ev::PaymentBooked {
            valuation_date: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            provider: Some(ev::ProviderData {
                transaction_id: txn.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn an_initiated_payment_is_pending() {
        let s = PaymentState::fold(&[initiated(PaymentMethod::PayPal)]);
        assert_eq!(s.status, PaymentStatus::Pending);
        assert_eq!(s.amount, Some(Money::eur(500)));
        assert!(!s.is_complete());
        assert_eq!(s.parent_payment_id, None);
    }

    #[test]
    fn direct_debit_and_bank_transfer_are_complete_while_pending() {
        for m in [PaymentMethod::DirectDebit, PaymentMethod::BankTransfer] {
            let s = PaymentState::fold(&[initiated(m)]);
            assert_eq!(s.status, PaymentStatus::Pending);
            assert!(s.is_complete(), "{m}");
        }
    }

    #[test]
    fn a_booked_external_payment_is_complete_with_its_transaction_id() {
        let s = PaymentState::fold(&[initiated(PaymentMethod::CreditCard), booked("T1")]);
        assert_eq!(s.status, PaymentStatus::Booked);
        assert_eq!(s.transaction_id.as_deref(), Some("T1"));
        assert!(s.valuation_date.is_some());
        assert!(s.is_complete());
    }

    #[test]
    fn a_restored_payment_returns_to_its_previous_status() {
        let mut s = PaymentState::fold(&[initiated(PaymentMethod::BankTransfer), booked("x")]);
        s.apply(&ev::PaymentCancelled::default().into());
        assert_eq!(s.status, PaymentStatus::Cancelled);
        s.apply(&ev::PaymentCancelled::default().into());
        s.apply(&ev::PaymentRestored::default().into());
        assert_eq!(s.status, PaymentStatus::Booked);
    }

    #[test]
    fn a_restore_without_cancellation_changes_nothing() {
        let before = PaymentState::fold(&[initiated(PaymentMethod::DirectDebit)]);
        let mut after = before.clone();
        after.apply(&ev::PaymentRestored::default().into());
        assert_eq!(before, after);
    }

    #[test]
    fn failures_refunds_and_chargebacks_set_their_status() {
        let mut s = PaymentState::fold(&[initiated(PaymentMethod::PayPal)]);
        s.apply(&ev::PaymentFailed::default().into());
        assert_eq!(s.status.as_str(), "failed");
        s.apply(&booked("t"));
        s.apply(
            &ev::PaymentRefunded {
                amount: Some(ev::Money {
                    cents: 200,
                    currency: "EUR".into(),
                }),
                reason: String::new(),
            }
            .into(),
        );
        assert_eq!(s.status.as_str(), "refunded");
        assert_eq!(s.refunded_cents, 200);
        s.apply(&ev::ChargebackReceived::default().into());
        assert_eq!(s.status.as_str(), "charged_back");
    }

    #[test]
    fn follow_ups_are_listed_and_their_transactions_known() {
        let mut s = PaymentState::fold(&[initiated(PaymentMethod::PayPal), booked("a")]);
        s.apply(
            &ev::FollowUpPaymentBooked {
                child_payment_id: 6,
                child_donation_id: 8,
                provider: Some(ev::ProviderData {
                    transaction_id: "b".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
        );
        assert_eq!(s.follow_ups.len(), 1);
        assert!(s.knows_transaction("a") && s.knows_transaction("b"));
        assert!(!s.knows_transaction("c"));
        assert_eq!(s.status, PaymentStatus::Booked);
    }

    #[test]
    fn a_follow_up_child_is_booked_with_the_parents_method_and_its_own_amount_or_the_parents() {
        let parent = PaymentState::fold(&[initiated(PaymentMethod::PayPal), booked("a")]);
        let booking = ev::FollowUpPaymentBooked {
            child_payment_id: 6,
            child_donation_id: 8,
            ..Default::default()
        };
        let child = parent.follow_up_child(&booking);
        assert_eq!((child.payment_id, child.donation_id), (6, 8));
        assert_eq!(child.status, PaymentStatus::Booked);
        assert_eq!(child.method, Some(PaymentMethod::PayPal));
        assert_eq!(child.amount, Some(Money::eur(500)));
        assert_eq!(child.parent_payment_id, Some(5));
        assert_eq!((child.valuation_date, child.transaction_id), (None, None));
        let own = parent.follow_up_child(&ev::FollowUpPaymentBooked {
            amount: Some(Money::eur(300).to_proto()),
            ..booking
        });
        assert_eq!(own.amount, Some(Money::eur(300)));
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let before = PaymentState::fold(&[initiated(PaymentMethod::PayPal)]);
        let mut after = before.clone();
        after.apply(&ev::DonationCancelled::default().into());
        after.apply(&ev::ModerationApproved::default().into());
        assert_eq!(before, after);
    }

    #[test]
    fn status_names_are_stable() {
        let all = [
            PaymentStatus::Pending,
            PaymentStatus::Booked,
            PaymentStatus::Failed,
            PaymentStatus::Cancelled,
            PaymentStatus::Refunded,
            PaymentStatus::ChargedBack,
        ];
        let names: Vec<_> = all.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "pending",
                "booked",
                "failed",
                "cancelled",
                "refunded",
                "charged_back"
            ]
        );
    }
}
