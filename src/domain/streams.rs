//! Stream names: one category per concern, `category-id` as in KurrentDB.

use std::str::FromStr;

/// A stream category: one per concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// `donation-{id}`: the donation itself.
    Donation,
    /// `payment-{id}`: a payment's state.
    Payment,
    /// `moderation-{donation id}`: a donation's moderation.
    Moderation,
    /// `deletion-{donation id}`: a donation's cancellation or deletion.
    Deletion,
    /// `export-{donation id}`: a donation's export.
    Export,
    /// `scrub-{donation id}`: a donation's scrubbing.
    Scrub,
    /// `contribution_tracking-{ct id}`: a contribution-tracking record.
    ContributionTracking,
}

codes!(Category, "stream category", {
    Donation => "donation",
    Payment => "payment",
    Moderation => "moderation",
    Deletion => "deletion",
    Export => "export",
    Scrub => "scrub",
    ContributionTracking => "contribution_tracking",
});

impl Category {
    /// Every category.
    pub const ALL: [Category; 7] = [
        Self::Donation,
        Self::Payment,
        Self::Moderation,
        Self::Deletion,
        Self::Export,
        Self::Scrub,
        Self::ContributionTracking,
    ];

    /// The stream `{category}-{id}`.
    pub fn stream(self, id: u64) -> String {
        format!("{}-{id}", self.as_str())
    }

    /// The category of a stream name (`payment-5`) or of a bare category (`payment`); `None`
    /// for a category outside the domain's (e.g. the intake's `request-*`).
    pub fn of(stream: &str) -> Option<Self> {
        let cat = stream.split_once('-').map_or(stream, |(c, _)| c);
        Self::from_str(cat).ok()
    }
}

/// The categories' codes as constants, for `match` arms on a stream's category text.
pub mod category {
    use super::Category;

    /// The donation itself.
    pub const DONATION: &str = Category::Donation.as_str();
    /// A payment's state.
    pub const PAYMENT: &str = Category::Payment.as_str();
    /// A donation's moderation.
    pub const MODERATION: &str = Category::Moderation.as_str();
    /// A donation's cancellation or deletion.
    pub const DELETION: &str = Category::Deletion.as_str();
    /// A donation's export.
    pub const EXPORT: &str = Category::Export.as_str();
    /// A donation's scrubbing.
    pub const SCRUB: &str = Category::Scrub.as_str();
    /// A contribution-tracking record.
    pub const CONTRIBUTION_TRACKING: &str = Category::ContributionTracking.as_str();
}

/// `donation-{id}`
pub fn donation(id: u64) -> String {
    Category::Donation.stream(id)
}
/// `payment-{id}`
pub fn payment(id: u64) -> String {
    Category::Payment.stream(id)
}
/// `moderation-{donation id}`
pub fn moderation(donation_id: u64) -> String {
    Category::Moderation.stream(donation_id)
}
/// `deletion-{donation id}`
pub fn deletion(donation_id: u64) -> String {
    Category::Deletion.stream(donation_id)
}
/// `export-{donation id}`
pub fn export(donation_id: u64) -> String {
    Category::Export.stream(donation_id)
}
/// `scrub-{donation id}`
pub fn scrub(donation_id: u64) -> String {
    Category::Scrub.stream(donation_id)
}
/// `contribution_tracking-{ct id}`
pub fn contribution_tracking(id: u64) -> String {
    Category::ContributionTracking.stream(id)
}

/// Whether a stream belongs to one of the seven domain categories.
pub fn is_domain_stream(stream: &str) -> bool {
    Category::of(stream).is_some()
}

/// Splits a stream name into its category text and numeric id, whatever the category (see
/// [`parse_domain`] for the domain's).
pub fn parse(stream: &str) -> Option<(&str, u64)> {
    let (cat, id) = stream.split_once('-')?;
    Some((cat, id.parse().ok()?))
}

/// Splits a domain stream name into its [`Category`] and numeric id; `None` for a name
/// without that form or of another category.
pub fn parse_domain(stream: &str) -> Option<(Category, u64)> {
    let (cat, id) = parse(stream)?;
    Some((cat.parse().ok()?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(super::donation(42), "donation-42");
        assert_eq!(
            super::parse("contribution_tracking-7"),
            Some(("contribution_tracking", 7))
        );
        assert_eq!(super::parse("donation-x"), None);
        assert!(super::is_domain_stream("scrub-3"));
        assert!(!super::is_domain_stream("request-abc"));
    }

    #[test]
    fn every_category_names_its_streams_and_is_parsed_back() {
        for c in Category::ALL {
            assert_eq!(parse_domain(&c.stream(9)), Some((c, 9)));
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert_eq!(Category::of(c.as_str()), Some(c));
        }
        assert_eq!(parse_domain("request-9"), None);
        assert!("Donation".parse::<Category>().is_err());
    }
}
