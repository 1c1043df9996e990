//! `SubscriptionView`: one subscription folded from its three streams (the subscription
//! itself, its exports, its removal), each concern in its own part of the fold.

use chrono::{DateTime, Utc};

use super::SubscriptionCategory;
use crate::domain::export::ExportState;
use crate::domain::scrub::ScrubState;
use crate::domain::types::opt_datetime;
use crate::domain::DomainEvent;

/// The legacy `subscription.status`: 0 NEW, 1 CONFIRMED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubscriptionStatus {
    /// Waiting for the confirmation code.
    #[default]
    New,
    /// Confirmed by the code.
    Confirmed,
}

codes!(SubscriptionStatus, "subscription status", {
    New => "new",
    Confirmed => "confirmed",
});

/// One subscription across its streams.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscriptionView {
    /// The id, once created.
    pub id: Option<u64>,
    /// The address when readable here (unsealed); `None` while sealed and after a removal.
    pub email: Option<String>,
    /// Lower-cased `campaign/keyword`, or empty.
    pub tracking: String,
    /// The free `source` parameter.
    pub source: String,
    /// The confirmation code.
    pub confirmation_code: String,
    /// When it was made.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// New or confirmed.
    pub status: SubscriptionStatus,
    /// `subscription_export-{id}`: the first export.
    pub export: ExportState,
    /// `subscription_scrub-{id}`: the removal.
    pub removal: ScrubState,
}

impl SubscriptionView {
    /// Folds `(stream name, event)` pairs in any order of the streams.
    pub fn fold<'a>(events: impl IntoIterator<Item = (&'a str, &'a DomainEvent)>) -> Self {
        let mut v = Self::default();
        for (stream, e) in events {
            v.apply(stream, e);
        }
        v
    }

    /// Applies an event read from `stream` (a stream name or just its category). Streams of
    /// other contexts and events before the creation are ignored. Never fails.
    pub fn apply(&mut self, stream: &str, event: &DomainEvent) {
        match (SubscriptionCategory::of(stream), event) {
            (Some(SubscriptionCategory::Subscription), DomainEvent::SubscriptionCreated(e))
                if self.id.is_none() =>
            {
                self.id = Some(e.subscription_id);
                self.email = e.subscriber.as_ref().map(|s| s.email.clone());
                self.tracking = e.tracking.clone();
                self.source = e.source.clone();
                self.confirmation_code = e.confirmation_code.clone();
                self.created_at = opt_datetime(e.created_at.as_ref());
            }
            (Some(SubscriptionCategory::Subscription), DomainEvent::SubscriptionConfirmed(e))
                if self.id.is_some() && self.status == SubscriptionStatus::New =>
            {
                self.status = SubscriptionStatus::Confirmed;
                self.confirmed_at = opt_datetime(e.confirmed_at.as_ref());
            }
            (Some(SubscriptionCategory::Export), DomainEvent::SubscriptionExported(e))
                if !self.export.exported =>
            {
                self.export = ExportState {
                    exported: true,
                    exported_at: opt_datetime(e.exported_at.as_ref()),
                    batch_id: Some(e.batch_id.clone()),
                };
            }
            (Some(SubscriptionCategory::Scrub), _) => self.removal.apply(event),
            _ => {}
        }
    }

    /// Whether it was created.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Whether it was removed (its key destroyed).
    pub fn is_removed(&self) -> bool {
        self.removal.scrubbed
    }

    /// Whether an export batch exported it.
    pub fn is_exported(&self) -> bool {
        self.export.exported
    }

    /// The address when readable and not removed.
    pub fn email(&self) -> Option<&str> {
        if self.is_removed() {
            None
        } else {
            self.email.as_deref().filter(|e| !e.is_empty())
        }
    }
}

/// Test-only builders of subscription events.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::domain::fixtures::t0;
    use crate::domain::scrub::ScrubRule;
    use crate::domain::types::to_timestamp;
    use crate::proto::events as ev;

    /// Subscription id used by the fixtures.
    pub const SID: u64 = 31;
    /// Its confirmation code.
    pub const CODE: &str = "00112233445566778899aabbccddeeff";

    /// `(stream, event)` on a stream of [`SID`].
    pub fn on(
        category: SubscriptionCategory,
        event: impl Into<DomainEvent>,
    ) -> (String, DomainEvent) {
        (category.stream(SID), event.into())
    }

    /// Created at [`t0`] for `ada@example.org`, from a banner.
    pub fn created() -> (String, DomainEvent) {
        on(
            SubscriptionCategory::Subscription,
            ev::SubscriptionCreated {
                subscription_id: SID,
                subscriber: Some(ev::SubscriberData {
                    email: "ada@example.org".into(),
                }),
                subscriber_sealed: None,
                tracking: "spring/banner".into(),
                source: "banner".into(),
                created_at: Some(to_timestamp(t0())),
                confirmation_code: CODE.into(),
            },
        )
    }

    /// Confirmed an hour after the creation.
    pub fn confirmed() -> (String, DomainEvent) {
        on(
            SubscriptionCategory::Subscription,
            ev::SubscriptionConfirmed {
                confirmed_at: Some(to_timestamp(t0() + chrono::Duration::hours(1))),
            },
        )
    }

    /// Exported in batch `b1` a day after the creation.
    pub fn exported() -> (String, DomainEvent) {
        on(
            SubscriptionCategory::Export,
            ev::SubscriptionExported {
                batch_id: "b1".into(),
                exported_at: Some(to_timestamp(t0() + chrono::Duration::days(1))),
            },
        )
    }

    /// Removed by `rule` two days after the creation.
    pub fn removed(rule: ScrubRule) -> (String, DomainEvent) {
        on(
            SubscriptionCategory::Scrub,
            ev::PersonalDataScrubbed {
                rule: rule as i32,
                scrubbed_at: Some(to_timestamp(t0() + chrono::Duration::days(2))),
            },
        )
    }

    /// The view after `history`.
    pub fn view(history: &[(String, DomainEvent)]) -> SubscriptionView {
        SubscriptionView::fold(history.iter().map(|(s, e)| (s.as_str(), e)))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::domain::fixtures::t0;
    use crate::domain::scrub::ScrubRule;

    #[test]
    fn given_nothing_when_created_then_it_is_new_with_its_address_tracking_and_code() {
        let v = view(&[created()]);
        assert_eq!(v.id, Some(SID));
        assert_eq!(v.status, SubscriptionStatus::New);
        assert_eq!(v.email(), Some("ada@example.org"));
        assert_eq!(v.tracking, "spring/banner");
        assert_eq!(v.source, "banner");
        assert_eq!(v.confirmation_code, CODE);
        assert_eq!(v.created_at, Some(t0()));
        assert!(!v.is_exported() && !v.is_removed());
    }

    #[test]
    fn given_a_new_subscription_when_confirmed_then_it_is_confirmed_with_the_time() {
        let v = view(&[created(), confirmed()]);
        assert_eq!(v.status, SubscriptionStatus::Confirmed);
        assert_eq!(v.confirmed_at, Some(t0() + chrono::Duration::hours(1)));
    }

    #[test]
    fn given_a_confirmed_subscription_when_confirmed_again_then_the_first_time_stays() {
        let mut later = confirmed();
        if let DomainEvent::SubscriptionConfirmed(e) = &mut later.1 {
            e.confirmed_at = Some(crate::domain::types::to_timestamp(
                t0() + chrono::Duration::days(9),
            ));
        }
        let v = view(&[created(), confirmed(), later]);
        assert_eq!(v.confirmed_at, Some(t0() + chrono::Duration::hours(1)));
    }

    #[test]
    fn given_a_subscription_when_exported_then_the_batch_and_time_are_kept() {
        let v = view(&[created(), confirmed(), exported()]);
        assert!(v.is_exported());
        assert_eq!(v.export.batch_id.as_deref(), Some("b1"));
        assert_eq!(v.export.exported_at, Some(t0() + chrono::Duration::days(1)));
    }

    #[test]
    fn given_an_exported_subscription_when_removed_then_the_address_is_gone_and_the_rest_is_kept() {
        let v = view(&[
            created(),
            confirmed(),
            exported(),
            removed(ScrubRule::Exported),
        ]);
        assert!(v.is_removed());
        assert_eq!(v.email(), None);
        assert_eq!(v.status, SubscriptionStatus::Confirmed);
        assert_eq!(v.tracking, "spring/banner");
        assert!(v.is_exported());
        assert_eq!(v.removal.rule, Some(ScrubRule::Exported));
    }

    #[test]
    fn the_streams_fold_in_any_order_and_ignore_other_contexts() {
        let history = [
            created(),
            confirmed(),
            exported(),
            removed(ScrubRule::Exported),
        ];
        let mut reordered = history.to_vec();
        reordered.swap(2, 3);
        assert_eq!(view(&reordered), view(&history));
        let mut v = view(&history[..2]);
        v.apply("export-31", &history[2].1);
        v.apply("address_change_scrub-31", &history[3].1);
        assert_eq!(v, view(&history[..2]));
    }

    #[test]
    fn a_confirmation_before_the_creation_and_a_second_creation_change_nothing() {
        assert_eq!(view(&[confirmed()]), SubscriptionView::default());
        let mut second = created();
        if let DomainEvent::SubscriptionCreated(e) = &mut second.1 {
            e.source = "other".into();
        }
        assert_eq!(view(&[created(), second]), view(&[created()]));
    }
}
