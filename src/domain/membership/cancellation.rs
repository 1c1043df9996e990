//! The cancellation fold: `CancellationState` from one `membership_cancellation-{id}` stream.

use crate::domain::DomainEvent;

/// Whether an application is cancelled; a restoration makes it active again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CancellationState {
    /// Not cancelled (or restored).
    #[default]
    Active,
    /// Cancelled.
    Cancelled,
}

codes!(CancellationState, "cancellation state", {
    Active => "active",
    Cancelled => "cancelled",
});

impl CancellationState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Whether cancelled.
    pub fn is_cancelled(self) -> bool {
        self == Self::Cancelled
    }

    /// Applies one event; events of other streams are ignored. Never fails: the latest
    /// cancellation or restoration wins.
    pub fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::MembershipCancelled(_) => *self = Self::Cancelled,
            DomainEvent::MembershipRestored(_) => *self = Self::Active,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::events as ev;

    #[test]
    fn an_application_is_active_until_cancelled_and_active_again_once_restored() {
        assert_eq!(CancellationState::fold(&[]).as_str(), "active");
        let cancelled = CancellationState::fold(&[ev::MembershipCancelled::default().into()]);
        assert!(cancelled.is_cancelled());
        assert_eq!(cancelled.as_str(), "cancelled");
        let restored = CancellationState::fold(&[
            ev::MembershipCancelled::default().into(),
            ev::MembershipRestored::default().into(),
        ]);
        assert_eq!(restored, CancellationState::Active);
    }

    #[test]
    fn donation_cancellations_change_nothing() {
        let s = CancellationState::fold(&[ev::DonationCancelled::default().into()]);
        assert_eq!(s, CancellationState::Active);
    }
}
