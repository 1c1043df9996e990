//! Moderation decisions: a manual flag, an approval, and raising the policy's reasons.

use super::{existing, Decision};
use crate::domain::error::DomainError;
use crate::domain::moderation::ModerationReason;
use crate::domain::streams;
use crate::domain::types::StreamEvent;
use crate::domain::view::DonationView;
use crate::proto::events as ev;

/// An administrator flags a donation; refused while reasons are open.
pub fn flag_manually(view: &DonationView, note: &str) -> Decision {
    let id = existing(view)?;
    if view.moderation.is_open() {
        return Err(DomainError::AlreadyUnderModeration);
    }
    Ok(vec![StreamEvent::new(
        streams::moderation(id),
        ev::ManuallyFlagged {
            note: note.to_owned(),
        },
    )])
}

/// A moderator approves, optionally as anonymous; needs open reasons. Approval as anonymous is
/// only recorded in the moderation stream; the view then shows the donor as anonymous.
pub fn approve(view: &DonationView, as_anonymous: bool) -> Decision {
    let id = existing(view)?;
    if !view.moderation.is_open() {
        return Err(DomainError::NotUnderModeration);
    }
    Ok(vec![StreamEvent::new(
        streams::moderation(id),
        ev::ModerationApproved { as_anonymous },
    )])
}

/// Raises moderation reasons (e.g. from [`ModerationPolicy::reasons_for`]); no events when
/// there are none.
pub fn raise_reasons(donation_id: u64, reasons: &[ModerationReason]) -> Vec<StreamEvent> {
    if reasons.is_empty() {
        return Vec::new();
    }
    vec![StreamEvent::new(
        streams::moderation(donation_id),
        ev::ModerationReasonsRaised {
            reasons: reasons.iter().map(ModerationReason::to_proto).collect(),
        },
    )]
}

// ---- comments ----

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    #[test]
    fn a_manual_flag_opens_moderation_and_cannot_be_repeated() {
        let mut v = given(DirectDebit);
        when!(v, flag_manually(&v, "looks odd"));
        assert_eq!(v.legacy_status(), 'P');
        assert_eq!(
            flag_manually(&v, ""),
            Err(DomainError::AlreadyUnderModeration)
        );
    }

    #[test]
    fn approving_needs_open_reasons() {
        let mut v = given(DirectDebit);
        assert_eq!(approve(&v, false), Err(DomainError::NotUnderModeration));
        apply_all(
            &mut v,
            &raise_reasons(
                ID,
                &[ModerationReason::new(
                    ModerationIdentifier::AmountTooHigh,
                    "amount",
                )],
            ),
        );
        when!(v, approve(&v, true));
        assert!(v.moderation.approved_as_anonymous);
        assert_eq!(v.legacy_status(), 'N');
    }

    #[test]
    fn raising_no_reasons_appends_nothing() {
        assert!(raise_reasons(ID, &[]).is_empty());
    }
}
