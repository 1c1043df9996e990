//! The deletion fold: `DeletionState` from the events of one `deletion-{donation id}` stream.

use crate::domain::DomainEvent;

/// Whether a donation is active, cancelled by its donor or deleted by an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeletionState {
    /// Neither cancelled nor deleted (or restored).
    #[default]
    Active,
    /// The donor cancelled it.
    CancelledByDonor,
    /// An administrator deleted it.
    DeletedByAdmin,
}

codes!(DeletionState, "deletion state", {
    Active => "active",
    CancelledByDonor => "cancelled_by_donor",
    DeletedByAdmin => "deleted_by_admin",
});

impl DeletionState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Whether cancelled or deleted (the legacy letter `D`).
    pub fn is_cancelled_or_deleted(self) -> bool {
        self != Self::Active
    }

    /// Applies one event; events of other streams are ignored. Never fails: the latest
    /// cancellation or deletion wins, a restore returns to `Active`.
    pub fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::DonationCancelled(_) => *self = Self::CancelledByDonor,
            DomainEvent::DonationDeleted(_) => *self = Self::DeletedByAdmin,
            DomainEvent::DonationRestored(_) => *self = Self::Active,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::events as ev;

    #[test]
    fn a_donation_is_active_until_cancelled() {
        assert_eq!(DeletionState::fold(&[]).as_str(), "active");
        let s = DeletionState::fold(&[ev::DonationCancelled::default().into()]);
        assert_eq!(s.as_str(), "cancelled_by_donor");
        assert!(s.is_cancelled_or_deleted());
    }

    #[test]
    fn an_admin_deletion_is_told_apart_from_a_donor_cancellation() {
        let s = DeletionState::fold(&[ev::DonationDeleted::default().into()]);
        assert_eq!(s, DeletionState::DeletedByAdmin);
        assert_eq!(s.as_str(), "deleted_by_admin");
    }

    #[test]
    fn a_restore_returns_to_active() {
        let s = DeletionState::fold(&[
            ev::DonationDeleted::default().into(),
            ev::DonationRestored::default().into(),
        ]);
        assert_eq!(s, DeletionState::Active);
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let s = DeletionState::fold(&[
            ev::DonationCancelled::default().into(),
            ev::PaymentRestored::default().into(),
        ]);
        assert_eq!(s, DeletionState::CancelledByDonor);
    }
}
