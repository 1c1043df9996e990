//! Comment decisions and the one comment policy: a comment failing the text policy is
//! forced private and raises `COMMENT_CONTENT_VIOLATION`, whether it comes with a new
//! donation or later.

use super::{active, existing, not_scrubbed, raise_reasons, Decision};
use crate::domain::error::DomainError;
use crate::domain::moderation::ModerationReason;
use crate::domain::policy::ModerationPolicy;
use crate::domain::streams;
use crate::domain::types::StreamEvent;
use crate::domain::view::DonationView;
use crate::proto::events as ev;

/// A comment a donor gives with a new donation or adds after donating.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewComment {
    /// The text.
    pub text: String,
    /// Whether the donor wants it public.
    pub is_public: bool,
    /// The name to show beside it.
    pub display_name: String,
}

/// The comment policy: a comment is public only when the donor wants it public and it passes
/// the text policy; otherwise it is recorded private (its text personal, sealed in the log)
/// with the reasons the policy raises. The one rule for comments given with a new donation
/// ([`super::create_donation`]) and added later ([`add_comment`]).
pub(super) fn as_recorded(
    policy: &ModerationPolicy,
    cmd: &NewComment,
) -> (ev::Comment, Vec<ModerationReason>) {
    let reasons = policy.comment_reasons(&cmd.text);
    let is_public = cmd.is_public && reasons.is_empty();
    let comment = if is_public {
        ev::Comment {
            is_public,
            display_name: cmd.display_name.clone(),
            public_text: cmd.text.clone(),
            ..Default::default()
        }
    } else {
        ev::Comment {
            is_public,
            display_name: cmd.display_name.clone(),
            private_text: Some(ev::CommentText {
                text: cmd.text.clone(),
            }),
            ..Default::default()
        }
    };
    (comment, reasons)
}

/// Adds the one comment of a donation; none on cancelled donations or follow-ups. A comment
/// failing the text policy is forced private and raises `COMMENT_CONTENT_VIOLATION`.
pub fn add_comment(view: &DonationView, policy: &ModerationPolicy, cmd: &NewComment) -> Decision {
    let id = existing(view)?;
    if view.donation.is_follow_up() {
        return Err(DomainError::CommentOnFollowUp);
    }
    active(view, "add a comment")?;
    if view.donation.comment.is_some() {
        return Err(DomainError::CommentExists);
    }
    if cmd.text.trim().is_empty() {
        return Err(DomainError::EmptyComment);
    }
    let (comment, reasons) = as_recorded(policy, cmd);
    let mut events = vec![StreamEvent::new(
        streams::donation(id),
        ev::CommentAdded {
            comment: Some(comment),
        },
    )];
    events.extend(raise_reasons(id, &reasons));
    Ok(events)
}

/// Publishes the comment; it must pass the text policy and its text must be readable. Already
/// public is a no-op.
pub fn publish_comment(view: &DonationView, policy: &ModerationPolicy) -> Decision {
    let id = existing(view)?;
    let comment = view
        .donation
        .comment
        .as_ref()
        .ok_or(DomainError::NoComment)?;
    active(view, "publish a comment")?;
    not_scrubbed(view, "publish a comment")?;
    if comment.is_public {
        return Ok(Vec::new());
    }
    let text = comment.text().ok_or(DomainError::CommentTextUnavailable)?;
    if policy.text_violates(text) {
        return Err(DomainError::CommentViolatesPolicy);
    }
    Ok(vec![StreamEvent::new(
        streams::donation(id),
        ev::CommentPublished {
            public_text: text.to_owned(),
            display_name: comment.display_name.clone(),
        },
    )])
}

/// Makes the comment private again; a private one is a no-op.
pub fn retract_comment(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    let comment = view
        .donation
        .comment
        .as_ref()
        .ok_or(DomainError::NoComment)?;
    if !comment.is_public {
        return Ok(Vec::new());
    }
    Ok(vec![StreamEvent::new(
        streams::donation(id),
        ev::CommentRetracted {
            reason: reason.to_owned(),
        },
    )])
}

// ---- donor, export, scrub ----

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    fn comment(text: &str, is_public: bool) -> NewComment {
        NewComment {
            text: text.into(),
            is_public,
            display_name: "Ada".into(),
        }
    }

    fn strict() -> ModerationPolicy {
        ModerationPolicy {
            deny_words: vec!["badword".into()],
            ..Default::default()
        }
    }

    #[test]
    fn adding_a_public_comment_shows_it_publicly() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("Good luck", true)));
        let c = v.donation.comment.clone().unwrap();
        assert!(c.is_public);
        assert_eq!(c.public_text, "Good luck");
    }

    #[test]
    fn a_comment_failing_the_text_policy_is_forced_private_and_moderated() {
        let mut v = given(BankTransfer);
        let events = when!(v, add_comment(&v, &strict(), &comment("badword", true)));
        assert_eq!(
            types(&events),
            [
                ("donation-7", "CommentAdded.v1"),
                ("moderation-7", "ModerationReasonsRaised.v1")
            ]
        );
        let c = v.donation.comment.clone().unwrap();
        assert!(!c.is_public && c.public_text.is_empty());
        assert_eq!(c.private_text.as_deref(), Some("badword"));
        assert_eq!(v.legacy_status(), 'P');
        assert_eq!(
            publish_comment(&v, &strict()),
            Err(DomainError::CommentViolatesPolicy)
        );
    }

    #[test]
    fn a_donation_has_only_one_comment() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("one", false)));
        assert_eq!(
            add_comment(&v, &strict(), &comment("two", false)),
            Err(DomainError::CommentExists)
        );
    }

    #[test]
    fn commenting_on_a_cancelled_donation_is_refused() {
        let mut v = given(DirectDebit);
        when!(v, cancel_by_donor(&v, ""));
        assert!(matches!(
            add_comment(&v, &strict(), &comment("hi", true)),
            Err(DomainError::Inactive { .. })
        ));
    }

    #[test]
    fn empty_comments_and_comments_on_follow_ups_are_refused() {
        let v = given(PayPal);
        assert_eq!(
            add_comment(&v, &strict(), &comment("  ", true)),
            Err(DomainError::EmptyComment)
        );
        let mut child = DonationView::default();
        apply_all(
            &mut child,
            &follow_up_donation(
                &v.donation,
                FollowUpIds {
                    child_payment_id: 71,
                    child_donation_id: 8,
                },
                t0(),
            )
            .unwrap(),
        );
        assert_eq!(
            add_comment(&child, &strict(), &comment("hi", true)),
            Err(DomainError::CommentOnFollowUp)
        );
    }

    #[test]
    fn a_private_comment_is_published_and_retracted() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("Thanks", false)));
        when!(v, publish_comment(&v, &strict()));
        assert!(v.donation.comment.as_ref().unwrap().is_public);
        assert_eq!(publish_comment(&v, &strict()), Ok(vec![]));
        when!(v, retract_comment(&v, "asked by donor"));
        assert!(!v.donation.comment.as_ref().unwrap().is_public);
        assert_eq!(retract_comment(&v, ""), Ok(vec![]));
    }

    #[test]
    fn publishing_or_retracting_without_a_comment_is_refused() {
        let v = given(BankTransfer);
        assert_eq!(publish_comment(&v, &strict()), Err(DomainError::NoComment));
        assert_eq!(retract_comment(&v, ""), Err(DomainError::NoComment));
    }

    #[test]
    fn publishing_after_a_scrub_is_refused() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("Thanks", false)));
        v.apply("scrub-7", &scrubbed());
        assert!(matches!(
            publish_comment(&v, &strict()),
            Err(DomainError::Scrubbed { .. })
        ));
    }
}
