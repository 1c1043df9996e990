//! Deletion decisions: the donor cancels, an administrator deletes or restores.

use super::{active, existing, not_scrubbed, Decision};
use crate::domain::error::DomainError;
use crate::domain::payment::PaymentStatus;
use crate::domain::streams;
use crate::domain::types::{PaymentMethod, StreamEvent};
use crate::domain::view::DonationView;
use crate::proto::events as ev;

/// The donor cancels. Only BEZ and UEB donations can be cancelled, and not twice. Appends
/// `DonationCancelled` to the deletion stream and `PaymentCancelled` to the payment stream.
pub fn cancel_by_donor(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    let method = view.payment_method().ok_or(DomainError::UnknownPayment)?;
    if !method.is_cancellable() {
        return Err(DomainError::NotCancellable { method });
    }
    active(view, "cancel")?;
    let mut events = vec![StreamEvent::new(
        streams::deletion(id),
        ev::DonationCancelled {
            reason: reason.to_owned(),
        },
    )];
    events.extend(cancel_payment(view, reason));
    Ok(events)
}

fn cancel_payment(view: &DonationView, reason: &str) -> Option<StreamEvent> {
    let cancellable = view
        .payment_method()
        .is_some_and(PaymentMethod::is_cancellable);
    (cancellable && view.payment.status != PaymentStatus::Cancelled).then(|| {
        StreamEvent::new(
            streams::payment(view.donation.payment_id),
            ev::PaymentCancelled {
                reason: reason.to_owned(),
            },
        )
    })
}

/// An administrator deletes a donation of any method; a BEZ/UEB payment is cancelled with it.
pub fn delete_by_admin(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    active(view, "delete")?;
    let mut events = vec![StreamEvent::new(
        streams::deletion(id),
        ev::DonationDeleted {
            reason: reason.to_owned(),
        },
    )];
    events.extend(cancel_payment(view, reason));
    Ok(events)
}

/// Restores a cancelled or deleted donation (and its cancelled payment, which returns to its
/// previous status). Refused once scrubbed: the donor data it would need is gone.
pub fn restore(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    if !view.deletion.is_cancelled_or_deleted() {
        return Err(DomainError::NotCancelledOrDeleted);
    }
    not_scrubbed(view, "restore")?;
    let mut events = vec![StreamEvent::new(
        streams::deletion(id),
        ev::DonationRestored {
            reason: reason.to_owned(),
        },
    )];
    if view.payment.status == PaymentStatus::Cancelled {
        events.push(StreamEvent::new(
            streams::payment(view.donation.payment_id),
            ev::PaymentRestored {
                reason: reason.to_owned(),
            },
        ));
    }
    Ok(events)
}

// ---- moderation ----

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    #[test]
    fn cancelling_a_direct_debit_donation_cancels_donation_and_payment() {
        let mut v = given(DirectDebit);
        let events = when!(v, cancel_by_donor(&v, "changed my mind"));
        assert_eq!(
            types(&events),
            [
                ("deletion-7", "DonationCancelled.v1"),
                ("payment-70", "PaymentCancelled.v1")
            ]
        );
        assert_eq!(v.deletion, DeletionState::CancelledByDonor);
        assert_eq!(v.legacy_status(), 'D');
    }

    #[test]
    fn cancelling_a_paypal_donation_is_refused() {
        let v = given(PayPal);
        let err = cancel_by_donor(&v, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "only direct debit and bank transfer payments can be cancelled, this one is PayPal"
        );
    }

    #[test]
    fn cancelling_a_credit_card_donation_names_the_method() {
        let err = cancel_by_donor(&given(CreditCard), "").unwrap_err();
        assert!(err.to_string().ends_with("this one is credit card"));
    }

    #[test]
    fn cancelling_twice_is_refused() {
        let mut v = given(BankTransfer);
        when!(v, cancel_by_donor(&v, ""));
        assert!(matches!(
            cancel_by_donor(&v, ""),
            Err(DomainError::Inactive { .. })
        ));
    }

    #[test]
    fn cancelling_an_unknown_donation_is_refused() {
        assert_eq!(
            cancel_by_donor(&DonationView::default(), ""),
            Err(DomainError::UnknownDonation)
        );
    }

    #[test]
    fn an_admin_can_delete_a_paypal_donation_without_touching_its_payment() {
        let mut v = given(PayPal);
        let events = when!(v, delete_by_admin(&v, "fraud"));
        assert_eq!(types(&events), [("deletion-7", "DonationDeleted.v1")]);
        assert_eq!(v.deletion, DeletionState::DeletedByAdmin);
        assert!(delete_by_admin(&v, "again").is_err());
    }

    #[test]
    fn restoring_a_cancelled_bank_transfer_restores_the_payment_status() {
        let mut v = given(BankTransfer);
        when!(v, cancel_by_donor(&v, ""));
        let events = when!(v, restore(&v, "mistake"));
        assert_eq!(events.len(), 2);
        assert_eq!(v.deletion, DeletionState::Active);
        assert_eq!(v.payment.status, PaymentStatus::Pending);
        assert_eq!(v.legacy_status(), 'Z');
    }

    #[test]
    fn restoring_an_active_or_scrubbed_donation_is_refused() {
        let mut v = given(DirectDebit);
        assert_eq!(restore(&v, ""), Err(DomainError::NotCancelledOrDeleted));
        when!(v, cancel_by_donor(&v, ""));
        v.apply("scrub-7", &scrubbed());
        assert!(matches!(restore(&v, ""), Err(DomainError::Scrubbed { .. })));
    }
}
