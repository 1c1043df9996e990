//! Subscriptions, the fourth bounded context: an e-mail-only opt-in to newsletters and
//! reminders from a banner or a form (`domain/wmde-memberships.md` §3). A subscription is NEW
//! until the subscriber confirms it with the code the confirmation mail carries; the export
//! batch exports it; it is removed (crypto-shredded: its key destroyed, so no replay brings the
//! address back) after its export or a grace period, or by id for a GDPR request. Stream
//! categories, the fold of one subscription ([`SubscriptionView`]) and the decisions
//! (`commands`). No I/O.
//!
//! Two index categories let the intake decide from the log alone:
//! * `subscription_code-{code}`: the confirmation code → the subscription, as
//!   `address_change_token-{token}` does for address changes.
//! * `subscription_email-{hmac}`: the 30-minute duplicate rule. The id is the HMAC-SHA256 (hex)
//!   of the normalised address under the key of the 30-minute window the subscription was made
//!   in ([`window_of`]; the key is `privacy::subscription_window_key_id(window)`). A new
//!   subscription looks in the streams of its own window and the previous one, which hold
//!   every subscription of the last 30 minutes at least. A window's key is destroyed by the
//!   removal job once its window and the next are over; from then on an index stream tells
//!   nobody, the ledger included, which address it was made of, so it survives a removal
//!   without being personal data. (A key per subscription would make the index unsearchable; a
//!   key for all time would let whoever holds it confirm, long after a removal, that an address
//!   had subscribed.)

pub mod commands;
pub mod view;

use chrono::{DateTime, Utc};

pub use view::{SubscriptionStatus, SubscriptionView};

/// A stream category of the subscription context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscriptionCategory {
    /// `subscription-{id}`: creation and confirmation.
    Subscription,
    /// `subscription_export-{id}`: its exports.
    Export,
    /// `subscription_scrub-{id}`: its removal.
    Scrub,
}

codes!(SubscriptionCategory, "subscription stream category", {
    Subscription => "subscription",
    Export => "subscription_export",
    Scrub => "subscription_scrub",
});

/// The category of the confirmation-code index: `subscription_code-{code}`.
pub const CODE_CATEGORY: &str = "subscription_code";
/// The category of the duplicate index: `subscription_email-{hmac}`.
pub const EMAIL_CATEGORY: &str = "subscription_email";

/// The legacy `subscription-interval`: the same address may subscribe again only after this.
pub const SUBSCRIPTION_INTERVAL_MINUTES: i64 = 30;
/// The width of a duplicate-index window, in seconds: the interval, so a subscription's own
/// window and the previous one cover the interval before it.
pub const WINDOW_SECONDS: i64 = SUBSCRIPTION_INTERVAL_MINUTES * 60;

impl SubscriptionCategory {
    /// Every category with a numeric id.
    pub const ALL: [SubscriptionCategory; 3] = [Self::Subscription, Self::Export, Self::Scrub];

    /// The stream `{category}-{id}`.
    pub fn stream(self, id: u64) -> String {
        format!("{}-{id}", self.as_str())
    }

    /// The category of a stream name (`subscription_export-5`) or of a bare category; `None`
    /// outside these three.
    pub fn of(stream: &str) -> Option<Self> {
        let cat = stream.split_once('-').map_or(stream, |(c, _)| c);
        cat.parse().ok()
    }
}

/// The code-index stream of confirmation code `code` (lower-case hex).
pub fn code_stream(code: &str) -> String {
    format!("{CODE_CATEGORY}-{code}")
}

/// The duplicate-index stream of an address's keyed hash (lower-case hex).
pub fn email_stream(hmac_hex: &str) -> String {
    format!("{EMAIL_CATEGORY}-{hmac_hex}")
}

/// The duplicate-index window of a time: 30-minute steps since the Unix epoch.
pub fn window_of(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp().div_euclid(WINDOW_SECONDS)).unwrap_or(0)
}

/// An e-mail address as the duplicate rule compares it: trimmed and lower-cased.
pub fn normalised_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The streams of one subscription, in [`SubscriptionCategory::ALL`] order.
pub fn streams_of(id: u64) -> [String; 3] {
    SubscriptionCategory::ALL.map(|c| c.stream(id))
}

/// Whether a stream belongs to one subscription (not its index streams).
pub fn is_subscription_stream(stream: &str) -> bool {
    SubscriptionCategory::of(stream).is_some()
}

/// Every category the context writes, both indexes included.
pub fn categories() -> [&'static str; 5] {
    [
        SubscriptionCategory::Subscription.as_str(),
        SubscriptionCategory::Export.as_str(),
        SubscriptionCategory::Scrub.as_str(),
        CODE_CATEGORY,
        EMAIL_CATEGORY,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{address_change, membership, streams};

    #[test]
    fn subscription_streams_are_named_by_category_and_parsed_back() {
        assert_eq!(streams_of(4)[0], "subscription-4");
        assert_eq!(streams_of(4)[2], "subscription_scrub-4");
        for c in SubscriptionCategory::ALL {
            assert_eq!(SubscriptionCategory::of(&c.stream(3)), Some(c));
        }
        assert_eq!(SubscriptionCategory::of("export-3"), None);
        assert_eq!(SubscriptionCategory::of(&code_stream("ab12")), None);
        assert_eq!(SubscriptionCategory::of(&email_stream("ab12")), None);
    }

    #[test]
    fn subscription_streams_belong_to_no_other_context() {
        for c in SubscriptionCategory::ALL {
            assert!(!streams::is_domain_stream(&c.stream(1)), "{c:?}");
            assert!(!membership::is_membership_stream(&c.stream(1)), "{c:?}");
            assert!(
                !address_change::is_address_change_stream(&c.stream(1)),
                "{c:?}"
            );
        }
        assert!(!streams::is_domain_stream(&code_stream("x")));
        assert!(!is_subscription_stream("membership-1"));
    }

    #[test]
    fn a_window_is_thirty_minutes_and_the_address_is_compared_lower_cased() {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        assert_eq!(window_of(t(0)), 0);
        assert_eq!(window_of(t(1799)), 0);
        assert_eq!(window_of(t(1800)), 1);
        assert_eq!(normalised_email("  Ada@Example.ORG "), "ada@example.org");
    }
}
