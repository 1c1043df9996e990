//! Scrub decisions: which rule allows scrubbing a donation, and the scrub itself.

use chrono::{DateTime, Duration, Utc};

use super::{existing, Decision};
use crate::domain::address_change::commands::AddressChangeScrubPolicy;
use crate::domain::error::DomainError;
use crate::domain::membership::commands::MembershipScrubPolicy;
use crate::domain::payment::PaymentStatus;
use crate::domain::scrub::ScrubRule;
use crate::domain::streams;
use crate::domain::subscription::commands::SubscriptionRemovalPolicy;
use crate::domain::types::{to_timestamp, PaymentMethod, StreamEvent};
use crate::domain::view::DonationView;
use crate::proto::events as ev;

/// When scrubbing is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubPolicy {
    /// An external payment still unbooked after this long counts as abandoned (2 days).
    pub grace_period: Duration,
    /// Off by default: scrub donations still under moderation after this long.
    pub stale_moderation_after: Option<Duration>,
    /// The membership applications' own rule (their grace period).
    pub memberships: MembershipScrubPolicy,
    /// The address changes' own rule (their grace period).
    pub address_changes: AddressChangeScrubPolicy,
    /// The subscriptions' removal rule (their grace period).
    pub subscriptions: SubscriptionRemovalPolicy,
}

impl Default for ScrubPolicy {
    fn default() -> Self {
        Self {
            grace_period: Duration::days(2),
            stale_moderation_after: None,
            memberships: MembershipScrubPolicy::default(),
            address_changes: AddressChangeScrubPolicy::default(),
            subscriptions: SubscriptionRemovalPolicy::default(),
        }
    }
}

/// The first rule that allows scrubbing `view` at `now`, in the order exported, cancelled or
/// deleted, abandoned, stale moderation; `None` when none does or it is already scrubbed.
///
/// Moderation is otherwise ignored. Abandoned means exactly what the policy says: an external
/// method (PPL, MCP, SUB) whose payment is still pending, created at least the grace period
/// before `now`. A failed payment is not pending and does not make a donation abandoned.
pub fn scrub_rule(
    view: &DonationView,
    now: DateTime<Utc>,
    policy: &ScrubPolicy,
) -> Option<ScrubRule> {
    if view.is_scrubbed() {
        return None;
    }
    if view.is_exported() {
        return Some(ScrubRule::Exported);
    }
    if view.deletion.is_cancelled_or_deleted() {
        return Some(ScrubRule::CancelledOrDeleted);
    }
    let older_than = |d: Duration| view.donation.created_at.is_some_and(|c| c <= now - d);
    let unbooked = view.payment.status == PaymentStatus::Pending;
    if view
        .payment_method()
        .is_some_and(PaymentMethod::is_external)
        && unbooked
        && older_than(policy.grace_period)
    {
        return Some(ScrubRule::Abandoned);
    }
    if let Some(period) = policy.stale_moderation_after {
        if view.moderation.is_open() && older_than(period) {
            return Some(ScrubRule::StaleModeration);
        }
    }
    None
}

/// Scrubs the personal data (the caller then destroys the key).
pub fn scrub(view: &DonationView, now: DateTime<Utc>, policy: &ScrubPolicy) -> Decision {
    let id = existing(view)?;
    if view.is_scrubbed() {
        return Err(DomainError::AlreadyScrubbed);
    }
    let rule = scrub_rule(view, now, policy).ok_or(DomainError::NotScrubbable)?;
    Ok(vec![StreamEvent::new(
        streams::scrub(id),
        ev::PersonalDataScrubbed {
            rule: rule as i32,
            scrubbed_at: Some(to_timestamp(now)),
        },
    )])
}

// ---- contribution tracking ----

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    fn rule_of(events: &[StreamEvent]) -> i32 {
        match &events[0].event {
            DomainEvent::PersonalDataScrubbed(e) => e.rule,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_exported_donation_may_be_scrubbed() {
        let mut v = given(DirectDebit);
        when!(v, mark_exported(&v, "b", t0()));
        let events = when!(v, scrub(&v, t0(), &ScrubPolicy::default()));
        assert_eq!(rule_of(&events), ScrubRule::Exported as i32);
        assert!(v.is_scrubbed());
        assert_eq!(v.legacy_status(), 'N');
        assert_eq!(
            scrub(&v, t0(), &ScrubPolicy::default()),
            Err(DomainError::AlreadyScrubbed)
        );
    }

    #[test]
    fn a_cancelled_donation_may_be_scrubbed_even_while_moderated() {
        let mut v = given(BankTransfer);
        when!(v, flag_manually(&v, ""));
        when!(v, cancel_by_donor(&v, ""));
        let events = scrub(&v, t0(), &ScrubPolicy::default()).unwrap();
        assert_eq!(rule_of(&events), ScrubRule::CancelledOrDeleted as i32);
    }

    #[test]
    fn scrub_skips_pending_paypal_inside_grace_period() {
        let v = given(PayPal);
        let now = t0() + Duration::days(2) - Duration::seconds(1);
        assert_eq!(
            scrub(&v, now, &ScrubPolicy::default()),
            Err(DomainError::NotScrubbable)
        );
    }

    #[test]
    fn an_abandoned_external_payment_may_be_scrubbed_after_the_grace_period() {
        for m in [PayPal, CreditCard, Sofort] {
            let v = given(m);
            let events = scrub(&v, t0() + Duration::days(2), &ScrubPolicy::default()).unwrap();
            assert_eq!(rule_of(&events), ScrubRule::Abandoned as i32, "{m}");
        }
    }

    #[test]
    fn a_failed_paypal_payment_does_not_make_a_donation_abandoned() {
        let mut v = given(PayPal);
        when!(v, fail_payment(&v.payment, "declined"));
        assert_eq!(
            scrub(&v, t0() + Duration::days(30), &ScrubPolicy::default()),
            Err(DomainError::NotScrubbable)
        );
    }

    #[test]
    fn a_booked_external_or_a_direct_debit_donation_is_not_abandoned() {
        let mut booked_v = given(PayPal);
        when!(booked_v, book_payment(&booked_v.payment, &booking("T")));
        let later = t0() + Duration::days(30);
        for v in [booked_v, given(DirectDebit), given(BankTransfer)] {
            assert_eq!(
                scrub(&v, later, &ScrubPolicy::default()),
                Err(DomainError::NotScrubbable)
            );
        }
    }

    #[test]
    fn stale_moderation_is_scrubbed_only_when_the_rule_is_on() {
        let mut v = given(DirectDebit);
        when!(v, flag_manually(&v, ""));
        let later = t0() + Duration::days(40);
        assert_eq!(scrub_rule(&v, later, &ScrubPolicy::default()), None);
        let on = ScrubPolicy {
            stale_moderation_after: Some(Duration::days(30)),
            ..Default::default()
        };
        assert_eq!(scrub_rule(&v, later, &on), Some(ScrubRule::StaleModeration));
        assert_eq!(scrub_rule(&v, t0() + Duration::days(29), &on), None);
    }
}
