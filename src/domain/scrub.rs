//! The scrub fold: `ScrubState` from the events of one `scrub-{donation id}` stream.

use chrono::{DateTime, Utc};

use crate::domain::types::opt_datetime;
use crate::domain::DomainEvent;

pub use crate::proto::events::ScrubRule;

codes!(ScrubRule, "scrub rule", {
    Unspecified => "unspecified",
    Exported => "exported",
    CancelledOrDeleted => "cancelled_or_deleted",
    Abandoned => "abandoned",
    StaleModeration => "stale_moderation",
    BeforeImport => "before_import",
    AfterGracePeriod => "after_grace_period",
    ForcedRemoval => "forced_removal",
});

/// Whether a donation's personal data was scrubbed (its key destroyed), when and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrubState {
    /// Whether `PersonalDataScrubbed` was seen.
    pub scrubbed: bool,
    /// When.
    pub scrubbed_at: Option<DateTime<Utc>>,
    /// The rule that allowed it.
    pub rule: Option<ScrubRule>,
}

impl ScrubState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Applies one event; events of other streams are ignored. Never fails. Scrubbing cannot
    /// be undone, so the first scrub counts.
    pub fn apply(&mut self, event: &DomainEvent) {
        if let DomainEvent::PersonalDataScrubbed(e) = event {
            if !self.scrubbed {
                self.scrubbed = true;
                self.scrubbed_at = opt_datetime(e.scrubbed_at.as_ref());
                self.rule = Some(ScrubRule::try_from(e.rule).unwrap_or(ScrubRule::Unspecified));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::events as ev;

    #[test]
    fn a_scrub_records_rule_and_time() {
        let s = ScrubState::fold(&[ev::PersonalDataScrubbed {
            rule: ScrubRule::Exported as i32,
            scrubbed_at: Some(prost_types::Timestamp {
                seconds: 10,
                nanos: 0,
            }),
        }
        .into()]);
        assert!(s.scrubbed);
        assert_eq!(s.rule, Some(ScrubRule::Exported));
        assert_eq!(s.scrubbed_at.unwrap().timestamp(), 10);
    }

    #[test]
    fn an_unknown_rule_still_marks_the_donation_scrubbed() {
        let s = ScrubState::fold(&[ev::PersonalDataScrubbed {
            rule: 77,
            scrubbed_at: None,
        }
        .into()]);
        assert!(s.scrubbed);
        assert_eq!(s.rule, Some(ScrubRule::Unspecified));
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let s = ScrubState::fold(&[ev::DonationExported::default().into()]);
        assert_eq!(s, ScrubState::default());
    }
}
