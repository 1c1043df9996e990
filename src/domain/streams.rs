//! Stream names: one category per concern, `category-id` as in KurrentDB.

/// Stream categories, one per concern.
pub mod category {
    /// The donation itself.
    pub const DONATION: &str = "donation";
    /// A payment's state.
    pub const PAYMENT: &str = "payment";
    /// A donation's moderation.
    pub const MODERATION: &str = "moderation";
    /// A donation's cancellation or deletion.
    pub const DELETION: &str = "deletion";
    /// A donation's export.
    pub const EXPORT: &str = "export";
    /// A donation's scrubbing.
    pub const SCRUB: &str = "scrub";
    /// A contribution-tracking record.
    pub const CONTRIBUTION_TRACKING: &str = "contribution_tracking";
}

/// `donation-{id}`
pub fn donation(id: u64) -> String {
    format!("{}-{id}", category::DONATION)
}
/// `payment-{id}`
pub fn payment(id: u64) -> String {
    format!("{}-{id}", category::PAYMENT)
}
/// `moderation-{donation id}`
pub fn moderation(donation_id: u64) -> String {
    format!("{}-{donation_id}", category::MODERATION)
}
/// `deletion-{donation id}`
pub fn deletion(donation_id: u64) -> String {
    format!("{}-{donation_id}", category::DELETION)
}
/// `export-{donation id}`
pub fn export(donation_id: u64) -> String {
    format!("{}-{donation_id}", category::EXPORT)
}
/// `scrub-{donation id}`
pub fn scrub(donation_id: u64) -> String {
    format!("{}-{donation_id}", category::SCRUB)
}
/// `contribution_tracking-{ct id}`
pub fn contribution_tracking(id: u64) -> String {
    format!("{}-{id}", category::CONTRIBUTION_TRACKING)
}

/// Whether a stream belongs to one of the seven domain categories above.
pub fn is_domain_stream(stream: &str) -> bool {
    use category::*;
    let cat = stream.split_once('-').map_or(stream, |(c, _)| c);
    [
        DONATION,
        PAYMENT,
        MODERATION,
        DELETION,
        EXPORT,
        SCRUB,
        CONTRIBUTION_TRACKING,
    ]
    .contains(&cat)
}

/// Splits a stream name into its category and numeric id.
pub fn parse(stream: &str) -> Option<(&str, u64)> {
    let (cat, id) = stream.split_once('-')?;
    Some((cat, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
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
}
