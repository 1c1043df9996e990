//! Payment decisions: booking (with the follow-up of a recurring PayPal payment), failure,
//! refund and charge-back, and the child donation of a follow-up.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::domain::donation::DonationState;
use crate::domain::error::DomainError;
use crate::domain::payment::{PaymentState, PaymentStatus};
use crate::domain::streams;
use crate::domain::types::{to_timestamp, Money, PaymentMethod, StreamEvent};
use crate::proto::events as ev;

/// Ids for the child payment and donation of a recurring follow-up, from the sequence
/// generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUpIds {
    /// The new payment.
    pub child_payment_id: u64,
    /// The new donation.
    pub child_donation_id: u64,
}

/// A provider's notification that a payment was booked.
#[derive(Debug, Clone, PartialEq)]
pub struct BookPayment {
    /// The provider's transaction id (the idempotency key of a booking).
    pub transaction_id: String,
    /// When the provider booked it.
    pub valuation_date: DateTime<Utc>,
    /// The amount the provider reports, if it reports one.
    pub amount: Option<Money>,
    /// Further provider data (its `transaction_id` is overwritten with the one above).
    pub provider: ev::ProviderData,
    /// Ids to use should this be a recurring PayPal follow-up.
    pub follow_up: Option<FollowUpIds>,
}

/// Whether booking `payment` with `transaction_id` books a recurring follow-up: the payment is
/// a booked initial recurring PayPal payment and the transaction id is new. The caller then
/// takes the [`FollowUpIds`] before deciding with [`book_payment`].
pub fn takes_follow_up(payment: &PaymentState, transaction_id: &str) -> bool {
    payment.status == PaymentStatus::Booked
        && !payment.knows_transaction(transaction_id)
        && payment.method == Some(PaymentMethod::PayPal)
        && payment.interval_months > 0
        && payment.parent_payment_id.is_none()
}

/// Books an external payment.
///
/// * BEZ and UEB are never booked by a provider (`NotBookable`).
/// * A transaction id already booked on this payment or one of its follow-ups is an
///   idempotent no-op (no events).
/// * A booked initial recurring PayPal payment (no parent, interval > 0) booked with a new
///   transaction id gets a follow-up: `FollowUpPaymentBooked` on its own stream and
///   `PaymentInitiated` + `PaymentBooked` on the child's stream (wmde.md §3). The caller then
///   creates the child donation with [`follow_up_donation`].
/// * Any other booked payment refuses a different transaction id (`AlreadyBooked`).
/// * Only a pending payment can be booked; credit-card amounts must match.
pub fn book_payment(payment: &PaymentState, cmd: &BookPayment) -> Decision {
    if !payment.initiated {
        return Err(DomainError::UnknownPayment);
    }
    let method = payment.method.ok_or(DomainError::UnknownPayment)?;
    if !method.is_external() {
        return Err(DomainError::NotBookable { method });
    }
    let txn = cmd.transaction_id.trim();
    if txn.is_empty() {
        return Err(DomainError::MissingTransactionId);
    }
    if payment.knows_transaction(txn) {
        return Ok(Vec::new());
    }
    let amount = cmd.amount.clone().or_else(|| payment.amount.clone());
    let provider = ev::ProviderData {
        transaction_id: txn.to_owned(),
        ..cmd.provider.clone()
    };
    let booked = ev::PaymentBooked {
        valuation_date: Some(to_timestamp(cmd.valuation_date)),
        amount: amount.as_ref().map(Money::to_proto),
        provider: Some(provider.clone()),
        provider_sealed: None,
    };
    if payment.was_booked() || payment.status == PaymentStatus::Booked {
        if !takes_follow_up(payment, txn) {
            return Err(DomainError::AlreadyBooked {
                existing: payment.transaction_id.clone(),
                attempted: txn.to_owned(),
            });
        }
        let ids = cmd.follow_up.ok_or(DomainError::MissingFollowUpIds)?;
        let child = streams::payment(ids.child_payment_id);
        return Ok(vec![
            StreamEvent::new(
                streams::payment(payment.payment_id),
                ev::FollowUpPaymentBooked {
                    child_payment_id: ids.child_payment_id,
                    child_donation_id: ids.child_donation_id,
                    valuation_date: booked.valuation_date,
                    amount: booked.amount.clone(),
                    provider: Some(provider),
                    provider_sealed: None,
                },
            ),
            StreamEvent::new(
                child.clone(),
                ev::PaymentInitiated {
                    payment_id: ids.child_payment_id,
                    donation_id: ids.child_donation_id,
                    method: method.to_proto(),
                    amount: booked.amount.clone(),
                    interval_months: payment.interval_months,
                    bank: None,
                    bank_sealed: None,
                    parent_payment_id: payment.payment_id,
                },
            ),
            StreamEvent::new(child, booked),
        ]);
    }
    if payment.status != PaymentStatus::Pending {
        return Err(DomainError::WrongPaymentStatus {
            action: "book",
            status: payment.status,
        });
    }
    if method == PaymentMethod::CreditCard {
        if let (Some(got), Some(expected)) = (&cmd.amount, &payment.amount) {
            if got.cents != expected.cents {
                return Err(DomainError::AmountMismatch {
                    expected: expected.cents,
                    got: got.cents,
                });
            }
        }
    }
    Ok(vec![StreamEvent::new(
        streams::payment(payment.payment_id),
        booked,
    )])
}

/// Records a provider's failure. Only a pending payment can fail; failing a failed one again
/// is a no-op. A booked payment is refunded or charged back instead.
pub fn fail_payment(payment: &PaymentState, reason: &str) -> Decision {
    if !payment.initiated {
        return Err(DomainError::UnknownPayment);
    }
    match payment.status {
        PaymentStatus::Failed => Ok(Vec::new()),
        PaymentStatus::Pending => Ok(vec![StreamEvent::new(
            streams::payment(payment.payment_id),
            ev::PaymentFailed {
                reason: reason.to_owned(),
            },
        )]),
        status => Err(DomainError::WrongPaymentStatus {
            action: "fail",
            status,
        }),
    }
}

/// Money leaving a payment again (a refund or a charge-back) is checked the same way: the
/// payment must be complete (BEZ/UEB from creation, external ones once booked), not failed,
/// cancelled or charged back, and the amount (default: what is still held) must be positive
/// and at most what is still held.
fn money_back(
    payment: &PaymentState,
    action: &'static str,
    amount: Option<&Money>,
) -> Result<Money, DomainError> {
    if !payment.initiated {
        return Err(DomainError::UnknownPayment);
    }
    let blocked = matches!(
        payment.status,
        PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::ChargedBack
    );
    if blocked || !payment.is_complete() {
        return Err(DomainError::WrongPaymentStatus {
            action,
            status: payment.status,
        });
    }
    let total = payment.amount.clone().unwrap_or_else(|| Money::eur(0));
    let available = total.cents - payment.refunded_cents - payment.charged_back_cents;
    let requested = amount.map_or(available, |m| m.cents);
    if requested <= 0 || requested > available {
        return Err(DomainError::ExceedsAmount {
            action,
            available,
            requested,
        });
    }
    Ok(Money {
        cents: requested,
        currency: total.currency,
    })
}

/// Records a refund (partial refunds add up; the status becomes refunded).
pub fn refund_payment(payment: &PaymentState, amount: Option<&Money>, reason: &str) -> Decision {
    let money = money_back(payment, "refund", amount)?;
    Ok(vec![StreamEvent::new(
        streams::payment(payment.payment_id),
        ev::PaymentRefunded {
            amount: Some(money.to_proto()),
            reason: reason.to_owned(),
        },
    )])
}

/// Records a charge-back by the payer's bank; a charged-back payment takes no further one.
pub fn report_chargeback(payment: &PaymentState, amount: Option<&Money>, reason: &str) -> Decision {
    let money = money_back(payment, "chargeback", amount)?;
    Ok(vec![StreamEvent::new(
        streams::payment(payment.payment_id),
        ev::ChargebackReceived {
            amount: Some(money.to_proto()),
            reason: reason.to_owned(),
        },
    )])
}

/// Creates the child donation of a recurring follow-up booking: same amount, interval,
/// method and tracking; a recurring donor (salutation and kind only); no comment.
pub fn follow_up_donation(
    parent: &DonationState,
    ids: FollowUpIds,
    created_at: DateTime<Utc>,
) -> Decision {
    let parent_id = parent.id.ok_or(DomainError::UnknownDonation)?;
    Ok(vec![StreamEvent::new(
        streams::donation(ids.child_donation_id),
        ev::FollowUpDonationCreated {
            donation_id: ids.child_donation_id,
            parent_donation_id: parent_id,
            payment_id: ids.child_payment_id,
            created_at: Some(to_timestamp(created_at)),
            amount: parent.amount.as_ref().map(Money::to_proto),
            interval_months: parent.interval_months,
            payment_method: parent.payment_method.map_or(0, PaymentMethod::to_proto),
            donor: Some(ev::DonorPublic {
                kind: parent.donor.kind as i32,
                salutation: parent.donor.salutation.clone(),
                wants_newsletter: false,
                wants_receipt: false,
            }),
            tracking: parent.tracking.clone(),
        },
    )])
}

// ---- deletion ----

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    #[test]
    fn booking_a_pending_paypal_payment_books_it() {
        let mut v = given(PayPal);
        let events = when!(v, book_payment(&v.payment, &booking("T1")));
        assert_eq!(types(&events), [("payment-70", "PaymentBooked.v1")]);
        assert_eq!(v.payment.status, PaymentStatus::Booked);
        assert_eq!(v.payment.transaction_id.as_deref(), Some("T1"));
        assert_eq!(v.legacy_status(), 'B');
    }

    #[test]
    fn a_booked_payment_is_refunded_in_parts_up_to_its_amount() {
        let mut v = given(PayPal);
        assert!(matches!(
            refund_payment(&v.payment, None, "r"),
            Err(DomainError::WrongPaymentStatus { .. })
        ));
        when!(v, book_payment(&v.payment, &booking("T1")));
        let half = Money::eur(v.payment.amount.as_ref().unwrap().cents / 2);
        when!(v, refund_payment(&v.payment, Some(&half), "r"));
        assert_eq!(v.payment.status, PaymentStatus::Refunded);
        let too_much = Money::eur(v.payment.amount.as_ref().unwrap().cents);
        assert!(matches!(
            refund_payment(&v.payment, Some(&too_much), "r"),
            Err(DomainError::ExceedsAmount { .. })
        ));
        when!(v, report_chargeback(&v.payment, None, "bank"));
        assert_eq!(v.payment.status, PaymentStatus::ChargedBack);
        assert!(report_chargeback(&v.payment, None, "bank").is_err());
    }

    #[test]
    fn booking_again_with_the_same_transaction_id_is_a_no_op() {
        let mut v = given(CreditCard);
        when!(v, book_payment(&v.payment, &booking("T1")));
        assert_eq!(book_payment(&v.payment, &booking("T1")), Ok(vec![]));
    }

    #[test]
    fn booking_a_booked_payment_with_another_transaction_id_is_refused() {
        let mut v = given(Sofort);
        when!(v, book_payment(&v.payment, &booking("T1")));
        let err = book_payment(&v.payment, &booking("T2")).unwrap_err();
        assert!(matches!(err, DomainError::AlreadyBooked { .. }));
        assert!(err.to_string().contains("different transaction id"));
    }

    #[test]
    fn rebooking_a_recurring_paypal_payment_creates_a_follow_up() {
        let mut v = view(PayPal, DonorKind::Person, 1);
        when!(v, book_payment(&v.payment, &booking("T1")));
        let events = book_payment(&v.payment, &booking("T2")).unwrap();
        assert_eq!(
            types(&events),
            [
                ("payment-70", "FollowUpPaymentBooked.v1"),
                ("payment-71", "PaymentInitiated.v1"),
                ("payment-71", "PaymentBooked.v1"),
            ]
        );
        apply_all(&mut v, &events);
        assert_eq!(v.payment.follow_ups.len(), 1);
        // The follow-up's transaction is known now: a repeat is a no-op.
        assert_eq!(book_payment(&v.payment, &booking("T2")), Ok(vec![]));
        let DomainEvent::PaymentInitiated(child) = &events[1].event else {
            panic!("child payment")
        };
        assert_eq!(child.parent_payment_id, 70);
    }

    #[test]
    fn only_a_new_transaction_on_a_booked_initial_recurring_paypal_payment_takes_a_follow_up() {
        let mut v = view(PayPal, DonorKind::Person, 1);
        assert!(!takes_follow_up(&v.payment, "T1"));
        when!(v, book_payment(&v.payment, &booking("T1")));
        assert!(!takes_follow_up(&v.payment, "T1"));
        assert!(takes_follow_up(&v.payment, "T2"));
        let mut one_time = given(PayPal);
        when!(one_time, book_payment(&one_time.payment, &booking("T1")));
        assert!(!takes_follow_up(&one_time.payment, "T2"));
    }

    #[test]
    fn a_follow_up_without_new_ids_is_refused() {
        let mut v = view(PayPal, DonorKind::Person, 1);
        when!(v, book_payment(&v.payment, &booking("T1")));
        let cmd = BookPayment {
            follow_up: None,
            ..booking("T2")
        };
        assert_eq!(
            book_payment(&v.payment, &cmd),
            Err(DomainError::MissingFollowUpIds)
        );
    }

    #[test]
    fn the_follow_up_donation_is_a_recurring_donor_without_comment() {
        let v = given(PayPal);
        let ids = FollowUpIds {
            child_payment_id: 71,
            child_donation_id: 8,
        };
        let events = follow_up_donation(&v.donation, ids, t0()).unwrap();
        let child = crate::domain::donation::DonationState::fold(events.iter().map(|e| &e.event));
        assert_eq!(events[0].stream, "donation-8");
        assert_eq!(child.parent_donation_id, Some(ID));
        assert_eq!(child.donor.salutation, "Frau");
        assert!(child.personal.is_none() && child.comment.is_none());
        assert_eq!(child.tracking, v.donation.tracking);
    }

    #[test]
    fn booking_a_direct_debit_is_refused_because_it_is_complete_at_creation() {
        let v = given(DirectDebit);
        let err = book_payment(&v.payment, &booking("T1")).unwrap_err();
        assert_eq!(
            err,
            DomainError::NotBookable {
                method: DirectDebit
            }
        );
        assert!(v.payment.is_complete());
    }

    #[test]
    fn booking_without_a_transaction_id_is_refused() {
        let v = given(PayPal);
        assert_eq!(
            book_payment(&v.payment, &booking(" ")),
            Err(DomainError::MissingTransactionId)
        );
    }

    #[test]
    fn booking_a_credit_card_payment_with_another_amount_is_refused() {
        let v = given(CreditCard);
        let cmd = BookPayment {
            amount: Some(Money::eur(1)),
            ..booking("T1")
        };
        assert_eq!(
            book_payment(&v.payment, &cmd),
            Err(DomainError::AmountMismatch {
                expected: 1337,
                got: 1
            })
        );
    }

    #[test]
    fn booking_a_failed_payment_is_refused() {
        let mut v = given(PayPal);
        when!(v, fail_payment(&v.payment, "declined"));
        assert_eq!(v.payment.status, PaymentStatus::Failed);
        assert!(matches!(
            book_payment(&v.payment, &booking("T1")),
            Err(DomainError::WrongPaymentStatus { .. })
        ));
    }

    #[test]
    fn failing_a_failed_payment_is_a_no_op_and_a_booked_one_is_refused() {
        let mut v = given(PayPal);
        when!(v, fail_payment(&v.payment, "x"));
        assert_eq!(fail_payment(&v.payment, "x"), Ok(vec![]));
        let mut w = given(PayPal);
        when!(w, book_payment(&w.payment, &booking("T1")));
        assert!(fail_payment(&w.payment, "x").is_err());
        assert_eq!(
            fail_payment(&PaymentState::default(), "x"),
            Err(DomainError::UnknownPayment)
        );
    }
}
