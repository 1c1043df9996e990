//! Membership applications, the second bounded context: their stream categories, the folds of
//! each concern (application, moderation, cancellation, export, scrub), the combined view with
//! the legacy `request.status` code derived from it, the fee and moderation rules, and the
//! decisions. No I/O.
//!
//! Moderation, export and scrub reuse the donation context's folds ([`ModerationState`],
//! [`ExportState`], [`ScrubState`]) over the membership's own streams: the facts are the same,
//! the stream's category says whose they are.
//!
//! [`ModerationState`]: crate::domain::moderation::ModerationState
//! [`ExportState`]: crate::domain::export::ExportState
//! [`ScrubState`]: crate::domain::scrub::ScrubState

pub mod application;
pub mod cancellation;
pub mod commands;
pub mod fees;
pub mod view;

pub use crate::proto::events::{ApplicantKind, MembershipType};
pub use application::ApplicationState;
pub use cancellation::CancellationState;
pub use view::{LegacyRequestStatus, MembershipView};

codes!(ApplicantKind, "applicant kind", {
    Unspecified => "unspecified",
    Person => "person",
    Company => "company",
});

codes!(MembershipType, "membership type", {
    Unspecified => "unspecified",
    Active => "active",
    Sustaining => "sustaining",
});

/// A stream category of the membership context: one per concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MembershipCategory {
    /// `membership-{id}`: the application itself.
    Application,
    /// `membership_moderation-{id}`: its moderation.
    Moderation,
    /// `membership_cancellation-{id}`: its cancellation and restoration.
    Cancellation,
    /// `membership_export-{id}`: its export.
    Export,
    /// `membership_scrub-{id}`: its scrubbing.
    Scrub,
}

codes!(MembershipCategory, "membership stream category", {
    Application => "membership",
    Moderation => "membership_moderation",
    Cancellation => "membership_cancellation",
    Export => "membership_export",
    Scrub => "membership_scrub",
});

impl MembershipCategory {
    /// Every category of the context.
    pub const ALL: [MembershipCategory; 5] = [
        Self::Application,
        Self::Moderation,
        Self::Cancellation,
        Self::Export,
        Self::Scrub,
    ];

    /// The stream `{category}-{id}`.
    pub fn stream(self, id: u64) -> String {
        format!("{}-{id}", self.as_str())
    }

    /// The category of a stream name (`membership_export-5`) or of a bare category; `None`
    /// outside the membership context.
    pub fn of(stream: &str) -> Option<Self> {
        let cat = stream.split_once('-').map_or(stream, |(c, _)| c);
        cat.parse().ok()
    }
}

/// The streams of one application, in [`MembershipCategory::ALL`] order.
pub fn streams_of(membership_id: u64) -> [String; 5] {
    MembershipCategory::ALL.map(|c| c.stream(membership_id))
}

/// Whether a stream belongs to the membership context.
pub fn is_membership_stream(stream: &str) -> bool {
    MembershipCategory::of(stream).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::streams;

    #[test]
    fn membership_streams_are_named_by_category_and_parsed_back() {
        assert_eq!(streams_of(9)[0], "membership-9");
        assert_eq!(streams_of(9)[2], "membership_cancellation-9");
        for c in MembershipCategory::ALL {
            assert_eq!(MembershipCategory::of(&c.stream(3)), Some(c));
        }
        assert_eq!(MembershipCategory::of("moderation-3"), None);
    }

    #[test]
    fn membership_streams_are_not_donation_streams() {
        // The donation projector and audit skip streams outside the donation categories; a
        // membership category must never parse as one of them.
        for c in MembershipCategory::ALL {
            assert!(!streams::is_domain_stream(&c.stream(1)), "{c:?}");
        }
        assert!(!is_membership_stream("donation-1"));
    }

    #[test]
    fn applicant_kinds_and_membership_types_have_stable_codes() {
        assert_eq!(ApplicantKind::Company.as_str(), "company");
        assert_eq!("sustaining".parse(), Ok(MembershipType::Sustaining));
        assert!("firma".parse::<ApplicantKind>().is_err());
    }
}
