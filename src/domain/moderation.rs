//! The moderation fold: `ModerationState` from the events of one `moderation-{donation id}`
//! stream.

use std::collections::BTreeSet;

use crate::domain::DomainEvent;
use crate::proto::events as ev;

pub use crate::proto::events::ModerationIdentifier;

/// The source recorded for a manual flag (the legacy system stored none).
pub const MANUAL_FLAG_SOURCE: &str = "";

/// Why a donation is moderated: an identifier and the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModerationReason {
    /// E.g. `AMOUNT_TOO_HIGH`.
    pub identifier: ModerationIdentifier,
    /// The field it concerns, e.g. `amount`, `email`, `street`, `comment`.
    pub source: String,
}

impl ModerationReason {
    /// A reason.
    pub fn new(identifier: ModerationIdentifier, source: impl Into<String>) -> Self {
        Self {
            identifier,
            source: source.into(),
        }
    }

    /// The legacy identifier name, e.g. `AMOUNT_TOO_HIGH`.
    pub fn identifier_name(&self) -> &'static str {
        self.identifier.as_str()
    }

    /// To the protobuf message.
    pub fn to_proto(&self) -> ev::ModerationReason {
        ev::ModerationReason {
            identifier: self.identifier as i32,
            source: self.source.clone(),
        }
    }

    fn from_proto(r: &ev::ModerationReason) -> Self {
        Self {
            identifier: ModerationIdentifier::try_from(r.identifier)
                .unwrap_or(ModerationIdentifier::Unspecified),
            source: r.source.clone(),
        }
    }
}

/// Whether a donation is moderated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModerationStatus {
    /// Never moderated.
    #[default]
    None,
    /// Reasons are open.
    Open,
    /// A moderator approved it and no reason was raised since.
    Approved,
}

impl ModerationStatus {
    /// The status after `event` (of a donation's moderation stream) from this one: what
    /// [`ModerationState::status`] reports after the same event, for a reader (the read
    /// model's row) that keeps the status without the open reasons. Reasons raised open it,
    /// an approval closes them all; nothing else moves it.
    pub fn after(self, event: &DomainEvent) -> Self {
        match event {
            DomainEvent::ModerationReasonsRaised(e) if !e.reasons.is_empty() => Self::Open,
            DomainEvent::ManuallyFlagged(_) => Self::Open,
            DomainEvent::ModerationApproved(_) => Self::Approved,
            _ => self,
        }
    }
}

codes!(ModerationStatus, "moderation status", {
    None => "none",
    Open => "open",
    Approved => "approved",
});

codes!(ModerationIdentifier, "moderation identifier", {
    Unspecified => "UNSPECIFIED",
    AmountTooHigh => "AMOUNT_TOO_HIGH",
    AddressContentViolation => "ADDRESS_CONTENT_VIOLATION",
    CommentContentViolation => "COMMENT_CONTENT_VIOLATION",
    ManuallyFlaggedByAdmin => "MANUALLY_FLAGGED_BY_ADMIN",
    EmailBlocked => "EMAIL_BLOCKED",
    MembershipFeeTooHigh => "MEMBERSHIP_FEE_TOO_HIGH",
});

/// The moderation of one donation, folded from its own stream only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModerationState {
    /// Open reasons; empty unless `status` is `Open`.
    pub open_reasons: BTreeSet<ModerationReason>,
    /// Whether any approval happened.
    pub approved: bool,
    /// Whether a moderator approved it as anonymous. Sticky: once the donor was made
    /// anonymous, a later plain approval does not bring the data back.
    pub approved_as_anonymous: bool,
}

impl ModerationState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// None, open or approved.
    pub fn status(&self) -> ModerationStatus {
        if !self.open_reasons.is_empty() {
            ModerationStatus::Open
        } else if self.approved {
            ModerationStatus::Approved
        } else {
            ModerationStatus::None
        }
    }

    /// Whether reasons are open.
    pub fn is_open(&self) -> bool {
        !self.open_reasons.is_empty()
    }

    /// Applies one event; events of other streams are ignored. Never fails.
    pub fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::ModerationReasonsRaised(e) => {
                self.open_reasons
                    .extend(e.reasons.iter().map(ModerationReason::from_proto));
            }
            DomainEvent::ManuallyFlagged(_) => {
                self.open_reasons.insert(ModerationReason::new(
                    ModerationIdentifier::ManuallyFlaggedByAdmin,
                    MANUAL_FLAG_SOURCE,
                ));
            }
            DomainEvent::ModerationApproved(e) => {
                // Approval clears every reason, as `Donation::approve()` did.
                self.open_reasons.clear();
                self.approved = true;
                self.approved_as_anonymous |= e.as_anonymous;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raised(id: ModerationIdentifier, source: &str) -> DomainEvent {
        ev::ModerationReasonsRaised {
            reasons: vec![ModerationReason::new(id, source).to_proto()],
        }
        .into()
    }

    #[test]
    fn a_donation_without_moderation_events_is_not_moderated() {
        let s = ModerationState::default();
        assert_eq!(s.status(), ModerationStatus::None);
        assert_eq!(s.status().as_str(), "none");
    }

    #[test]
    fn raised_reasons_are_open_with_their_source() {
        let s = ModerationState::fold(&[
            raised(ModerationIdentifier::AmountTooHigh, "amount"),
            raised(ModerationIdentifier::EmailBlocked, "email"),
            raised(ModerationIdentifier::AmountTooHigh, "amount"),
        ]);
        assert_eq!(s.status(), ModerationStatus::Open);
        assert_eq!(s.open_reasons.len(), 2);
        let first = s.open_reasons.iter().next().unwrap();
        assert_eq!(first.identifier_name(), "AMOUNT_TOO_HIGH");
        assert_eq!(first.source, "amount");
    }

    #[test]
    fn approval_clears_all_reasons() {
        let s = ModerationState::fold(&[
            raised(ModerationIdentifier::AmountTooHigh, "amount"),
            ev::ManuallyFlagged::default().into(),
            ev::ModerationApproved { as_anonymous: true }.into(),
        ]);
        assert_eq!(s.status(), ModerationStatus::Approved);
        assert_eq!(s.status().as_str(), "approved");
        assert!(s.open_reasons.is_empty());
        assert!(s.approved_as_anonymous);
    }

    #[test]
    fn a_new_reason_after_approval_reopens_moderation() {
        let s = ModerationState::fold(&[
            raised(ModerationIdentifier::AmountTooHigh, "amount"),
            ev::ModerationApproved::default().into(),
            raised(ModerationIdentifier::CommentContentViolation, "comment"),
        ]);
        assert_eq!(s.status(), ModerationStatus::Open);
        assert_eq!(s.status().as_str(), "open");
        assert_eq!(s.open_reasons.len(), 1);
    }

    #[test]
    fn a_manual_flag_opens_a_manually_flagged_reason() {
        let s = ModerationState::fold(&[ev::ManuallyFlagged::default().into()]);
        assert_eq!(
            s.open_reasons.iter().next().unwrap().identifier,
            ModerationIdentifier::ManuallyFlaggedByAdmin
        );
    }

    #[test]
    fn the_status_alone_moves_as_the_fold_reports_it() {
        let events: Vec<DomainEvent> = vec![
            raised(ModerationIdentifier::AmountTooHigh, "amount"),
            ev::ModerationReasonsRaised { reasons: vec![] }.into(),
            ev::ModerationApproved::default().into(),
            ev::ModerationReasonsRaised { reasons: vec![] }.into(),
            ev::ManuallyFlagged::default().into(),
            ev::ModerationApproved { as_anonymous: true }.into(),
            raised(ModerationIdentifier::EmailBlocked, "email"),
            ev::DonationExported::default().into(),
        ];
        // Every prefix of every rotation: odd orders included.
        for start in 0..events.len() {
            let rotated: Vec<&DomainEvent> =
                events[start..].iter().chain(&events[..start]).collect();
            let mut status = ModerationStatus::default();
            for (i, e) in rotated.iter().enumerate() {
                status = status.after(e);
                let folded = ModerationState::fold(rotated[..=i].iter().copied()).status();
                assert_eq!(status, folded, "after {:?}", &rotated[..=i]);
            }
        }
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let mut s = ModerationState::default();
        s.apply(&ev::PaymentBooked::default().into());
        s.apply(&ev::DonationExported::default().into());
        assert_eq!(s, ModerationState::default());
    }
}
