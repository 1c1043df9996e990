//! Subscription decisions: pure functions from a [`SubscriptionView`] to the events to append,
//! each tagged with its stream, or the [`DomainError`] naming the broken rule. The legacy rules
//! (`domain/wmde-memberships.md` §3): the same address subscribes at most once in 30 minutes
//! (`subscription-interval`); a code confirms a NEW subscription once; an export is recorded
//! once. Added here: a removed subscription is neither confirmed nor exported, and a removal
//! (the legacy `removeAll`: exported, or older than the grace period; `forceRemoveByIds` for a
//! GDPR request) destroys the subscription's key.
//!
//! Decisions never read a clock, draw a code or hash an address; the intake passes them in,
//! and seals the address.

use chrono::{DateTime, Duration, Utc};

use super::{
    code_stream, email_stream, SubscriptionCategory, SubscriptionStatus, SubscriptionView,
    SUBSCRIPTION_INTERVAL_MINUTES,
};
use crate::domain::commands::Decision;
use crate::domain::error::DomainError;
use crate::domain::scrub::ScrubRule;
use crate::domain::types::{to_timestamp, StreamEvent};
use crate::proto::events as ev;

/// What a `Subscribe` asks for, as validated by `validation::validate_subscribe`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewSubscription {
    /// The address, as given (trimmed).
    pub email: String,
    /// Lower-cased `campaign/keyword`, or empty when no campaign was given.
    pub tracking: String,
    /// The free `source` parameter.
    pub source: String,
}

/// The legacy tracking string of a subscription (`TrackingDataSelector`): lower-cased
/// `campaign/keyword`, empty when there is no campaign.
pub fn tracking_of(campaign: &str, keyword: &str) -> String {
    let campaign = campaign.trim();
    if campaign.is_empty() {
        String::new()
    } else {
        format!("{campaign}/{}", keyword.trim()).to_lowercase()
    }
}

/// The 30-minute rule: refused when the same address subscribed after `now` − 30 minutes.
/// `last` is the latest subscription of the address the index knows.
pub fn check_interval(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), DomainError> {
    match last {
        Some(at) if at > now - Duration::minutes(SUBSCRIPTION_INTERVAL_MINUTES) => {
            Err(DomainError::SubscribedTooRecently)
        }
        _ => Ok(()),
    }
}

/// A new subscription (status NEW): its creation, its code's index entry and the duplicate
/// index entry under `email_hmac` (the keyed hash of the address in `now`'s window). The
/// address goes in clear here; the intake seals it before the append.
pub fn create(
    id: u64,
    input: &NewSubscription,
    confirmation_code: &str,
    email_hmac: &str,
    now: DateTime<Utc>,
) -> Vec<StreamEvent> {
    let at = Some(to_timestamp(now));
    vec![
        StreamEvent::new(
            SubscriptionCategory::Subscription.stream(id),
            ev::SubscriptionCreated {
                subscription_id: id,
                subscriber: Some(ev::SubscriberData {
                    email: input.email.clone(),
                }),
                subscriber_sealed: None,
                tracking: input.tracking.clone(),
                source: input.source.clone(),
                created_at: at,
                confirmation_code: confirmation_code.to_owned(),
            },
        ),
        StreamEvent::new(
            code_stream(confirmation_code),
            ev::SubscriptionCodeIssued {
                subscription_id: id,
            },
        ),
        StreamEvent::new(
            email_stream(email_hmac),
            ev::SubscriptionEmailUsed {
                subscription_id: id,
                subscribed_at: at,
            },
        ),
    ]
}

fn existing(view: &SubscriptionView) -> Result<u64, DomainError> {
    view.id.ok_or(DomainError::UnknownSubscription)
}

/// The subscriber confirmed with the code: a NEW, not removed subscription becomes CONFIRMED.
pub fn confirm(view: &SubscriptionView, now: DateTime<Utc>) -> Decision {
    let id = existing(view)?;
    if view.is_removed() {
        return Err(DomainError::SubscriptionRemoved { action: "confirm" });
    }
    if view.status == SubscriptionStatus::Confirmed {
        return Err(DomainError::SubscriptionAlreadyConfirmed);
    }
    Ok(vec![StreamEvent::new(
        SubscriptionCategory::Subscription.stream(id),
        ev::SubscriptionConfirmed {
            confirmed_at: Some(to_timestamp(now)),
        },
    )])
}

/// The export batch exported a subscription: once, and not after its removal.
pub fn mark_exported(view: &SubscriptionView, batch_id: &str, at: DateTime<Utc>) -> Decision {
    let id = existing(view)?;
    if view.is_exported() {
        return Err(DomainError::SubscriptionAlreadyExported {
            batch_id: view.export.batch_id.clone().unwrap_or_default(),
        });
    }
    if batch_id.trim().is_empty() {
        return Err(DomainError::MissingBatchId);
    }
    if view.is_removed() {
        return Err(DomainError::SubscriptionRemoved { action: "export" });
    }
    Ok(vec![StreamEvent::new(
        SubscriptionCategory::Export.stream(id),
        ev::SubscriptionExported {
            batch_id: batch_id.to_owned(),
            exported_at: Some(to_timestamp(at)),
        },
    )])
}

/// When a subscription is removed by the removal job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionRemovalPolicy {
    /// A subscription not exported this long after its creation is removed anyway (the legacy
    /// `exportGracePeriod`; its monitor first used one month).
    pub grace_period: Duration,
}

impl Default for SubscriptionRemovalPolicy {
    fn default() -> Self {
        Self {
            grace_period: Duration::days(30),
        }
    }
}

/// The first rule that allows the job to remove `view` at `now`: exported, else created
/// longer ago than the grace period (the legacy `removeAll`: `export IS NOT NULL OR createdAt
/// < now - grace`). `None` when no rule allows it or it is removed.
pub fn removal_rule(
    view: &SubscriptionView,
    now: DateTime<Utc>,
    policy: &SubscriptionRemovalPolicy,
) -> Option<ScrubRule> {
    if view.is_removed() || !view.exists() {
        return None;
    }
    if view.is_exported() {
        return Some(ScrubRule::Exported);
    }
    let created = view.created_at?;
    (created <= now - policy.grace_period).then_some(ScrubRule::AfterGracePeriod)
}

fn removal(id: u64, rule: ScrubRule, now: DateTime<Utc>) -> Decision {
    Ok(vec![StreamEvent::new(
        SubscriptionCategory::Scrub.stream(id),
        ev::PersonalDataScrubbed {
            rule: rule as i32,
            scrubbed_at: Some(to_timestamp(now)),
        },
    )])
}

/// The removal job removes a subscription (the caller then destroys its key):
/// `PersonalDataScrubbed` with the rule that allowed it, on its scrub stream.
pub fn remove(
    view: &SubscriptionView,
    now: DateTime<Utc>,
    policy: &SubscriptionRemovalPolicy,
) -> Decision {
    let id = existing(view)?;
    if view.is_removed() {
        return Err(DomainError::SubscriptionAlreadyRemoved);
    }
    let rule = removal_rule(view, now, policy).ok_or(DomainError::SubscriptionNotRemovable)?;
    removal(id, rule, now)
}

/// A forced removal by id (a GDPR request from the back office): no policy check, only once.
pub fn force_remove(view: &SubscriptionView, now: DateTime<Utc>) -> Decision {
    let id = existing(view)?;
    if view.is_removed() {
        return Err(DomainError::SubscriptionAlreadyRemoved);
    }
    removal(id, ScrubRule::ForcedRemoval, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::t0;
    use crate::domain::subscription::view::fixtures::*;

    fn then(mut view: SubscriptionView, events: &[StreamEvent]) -> SubscriptionView {
        for e in events {
            view.apply(&e.stream, &e.event);
        }
        view
    }

    fn streams(events: &[StreamEvent]) -> Vec<(&str, &str)> {
        events
            .iter()
            .map(|e| (e.stream.as_str(), e.event.event_type()))
            .collect()
    }

    fn later() -> DateTime<Utc> {
        t0() + Duration::days(3)
    }

    fn input() -> NewSubscription {
        NewSubscription {
            email: "ada@example.org".into(),
            tracking: tracking_of("Spring", "Banner"),
            source: "banner".into(),
        }
    }

    #[test]
    fn given_nothing_when_subscribed_then_the_subscription_and_both_indexes_are_written() {
        let events = create(SID, &input(), CODE, "beef", t0());
        assert_eq!(
            streams(&events),
            [
                ("subscription-31", "SubscriptionCreated.v1"),
                (
                    "subscription_code-00112233445566778899aabbccddeeff",
                    "SubscriptionCodeIssued.v1"
                ),
                ("subscription_email-beef", "SubscriptionEmailUsed.v1"),
            ]
        );
        let v = then(SubscriptionView::default(), &events);
        assert_eq!(v.status, SubscriptionStatus::New);
        assert_eq!(v.tracking, "spring/banner");
        assert_eq!(v.email(), Some("ada@example.org"));
    }

    #[test]
    fn tracking_is_lower_cased_campaign_and_keyword_or_empty_without_a_campaign() {
        assert_eq!(tracking_of("Spring", "Banner-1"), "spring/banner-1");
        assert_eq!(tracking_of("spring", ""), "spring/");
        assert_eq!(tracking_of("", "banner"), "");
    }

    #[test]
    fn the_same_address_inside_thirty_minutes_is_refused_and_after_them_allowed() {
        let now = t0() + Duration::minutes(45);
        assert_eq!(
            check_interval(Some(now - Duration::minutes(29)), now),
            Err(DomainError::SubscribedTooRecently)
        );
        assert_eq!(
            check_interval(Some(now - Duration::minutes(30)), now),
            Ok(())
        );
        assert_eq!(
            check_interval(Some(now - Duration::minutes(31)), now),
            Ok(())
        );
        assert_eq!(check_interval(None, now), Ok(()));
    }

    #[test]
    fn given_a_new_subscription_when_confirmed_then_it_is_confirmed() {
        let given = view(&[created()]);
        let events = confirm(&given, later()).unwrap();
        assert_eq!(
            streams(&events),
            [("subscription-31", "SubscriptionConfirmed.v1")]
        );
        let v = then(given, &events);
        assert_eq!(v.status, SubscriptionStatus::Confirmed);
        assert_eq!(v.confirmed_at, Some(later()));
    }

    #[test]
    fn given_a_confirmed_subscription_when_confirmed_again_then_it_is_refused() {
        let given = view(&[created(), confirmed()]);
        assert_eq!(
            confirm(&given, later()),
            Err(DomainError::SubscriptionAlreadyConfirmed)
        );
    }

    #[test]
    fn given_a_removed_subscription_when_confirmed_then_it_is_refused() {
        let given = view(&[created(), removed(ScrubRule::ForcedRemoval)]);
        assert_eq!(
            confirm(&given, later()),
            Err(DomainError::SubscriptionRemoved { action: "confirm" })
        );
        assert_eq!(
            confirm(&SubscriptionView::default(), later()),
            Err(DomainError::UnknownSubscription)
        );
    }

    #[test]
    fn given_a_subscription_when_exported_then_it_is_exported_once() {
        let given = view(&[created()]);
        let events = mark_exported(&given, "b9", later()).unwrap();
        assert_eq!(
            streams(&events),
            [("subscription_export-31", "SubscriptionExported.v1")]
        );
        let v = then(given, &events);
        assert!(v.is_exported());
        assert_eq!(
            mark_exported(&v, "b10", later()),
            Err(DomainError::SubscriptionAlreadyExported {
                batch_id: "b9".into()
            })
        );
        assert_eq!(
            mark_exported(&view(&[created()]), " ", later()),
            Err(DomainError::MissingBatchId)
        );
    }

    #[test]
    fn given_a_removed_subscription_when_exported_then_it_is_refused() {
        let given = view(&[created(), removed(ScrubRule::AfterGracePeriod)]);
        assert_eq!(
            mark_exported(&given, "b1", later()),
            Err(DomainError::SubscriptionRemoved { action: "export" })
        );
    }

    #[test]
    fn given_an_exported_subscription_when_the_job_removes_it_then_the_export_rule_is_recorded() {
        let policy = SubscriptionRemovalPolicy::default();
        let given = view(&[created(), exported()]);
        let events = remove(&given, later(), &policy).unwrap();
        assert_eq!(
            streams(&events),
            [("subscription_scrub-31", "PersonalDataScrubbed.v1")]
        );
        let v = then(given, &events);
        assert_eq!(v.removal.rule, Some(ScrubRule::Exported));
        assert_eq!(v.email(), None);
        assert_eq!(
            remove(&v, later(), &policy),
            Err(DomainError::SubscriptionAlreadyRemoved)
        );
    }

    #[test]
    fn a_subscription_not_exported_is_removed_only_after_the_grace_period() {
        let policy = SubscriptionRemovalPolicy::default();
        let v = view(&[created(), confirmed()]);
        assert_eq!(removal_rule(&v, t0() + Duration::days(29), &policy), None);
        assert_eq!(
            remove(&v, t0() + Duration::days(29), &policy),
            Err(DomainError::SubscriptionNotRemovable)
        );
        assert_eq!(
            removal_rule(&v, t0() + Duration::days(30), &policy),
            Some(ScrubRule::AfterGracePeriod)
        );
    }

    #[test]
    fn given_a_new_subscription_when_forced_removed_then_it_is_removed_once_whatever_its_state() {
        let given = view(&[created()]);
        let events = force_remove(&given, t0()).unwrap();
        let v = then(given, &events);
        assert!(v.is_removed());
        assert_eq!(v.removal.rule, Some(ScrubRule::ForcedRemoval));
        assert_eq!(
            force_remove(&v, t0()),
            Err(DomainError::SubscriptionAlreadyRemoved)
        );
        assert_eq!(
            force_remove(&SubscriptionView::default(), t0()),
            Err(DomainError::UnknownSubscription)
        );
    }
}
