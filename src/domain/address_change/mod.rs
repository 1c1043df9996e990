//! Address changes, the third bounded context: a donor with a postal address or a membership
//! applicant gets, with the donation or application, a token (UUID v4) that lets them change
//! their address once or opt out of the donation receipt (`domain/wmde-memberships.md` §2).
//! Stream categories, the fold of one address change ([`AddressChangeView`]) and the decisions
//! (`commands`). No I/O.
//!
//! An address change references its donation or application by id and kind only; no domain
//! object holds the other. The token index is a stream per token
//! (`address_change_token-{token}`), so a token is found in the log without a read model.

pub mod commands;
pub mod view;

pub use crate::proto::events::{AddressType, ExternalIdKind};
pub use view::{AddressChangeView, ExportRecord, ExportStatus};

codes!(ExternalIdKind, "external id kind", {
    Unspecified => "unspecified",
    Donation => "donation",
    Membership => "membership",
});

codes!(AddressType, "address type", {
    Unspecified => "unspecified",
    Person => "person",
    Company => "company",
});

/// A stream category of the address-change context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressChangeCategory {
    /// `address_change-{id}`: creation and changes.
    AddressChange,
    /// `address_change_export-{id}`: its exports.
    Export,
    /// `address_change_scrub-{id}`: its scrubbing.
    Scrub,
}

codes!(AddressChangeCategory, "address change stream category", {
    AddressChange => "address_change",
    Export => "address_change_export",
    Scrub => "address_change_scrub",
});

/// The category of the token index: `address_change_token-{token}`, one stream per token
/// ever issued. Its id part is a UUID, not a number, so the read model passes over it.
pub const TOKEN_CATEGORY: &str = "address_change_token";

impl AddressChangeCategory {
    /// Every category with a numeric id.
    pub const ALL: [AddressChangeCategory; 3] = [Self::AddressChange, Self::Export, Self::Scrub];

    /// The stream `{category}-{id}`.
    pub fn stream(self, id: u64) -> String {
        format!("{}-{id}", self.as_str())
    }

    /// The category of a stream name (`address_change_export-5`) or of a bare category;
    /// `None` outside these three.
    pub fn of(stream: &str) -> Option<Self> {
        let cat = stream.split_once('-').map_or(stream, |(c, _)| c);
        cat.parse().ok()
    }
}

/// The token stream of `token`.
pub fn token_stream(token: &str) -> String {
    format!("{TOKEN_CATEGORY}-{token}")
}

/// The streams of one address change, in [`AddressChangeCategory::ALL`] order.
pub fn streams_of(id: u64) -> [String; 3] {
    AddressChangeCategory::ALL.map(|c| c.stream(id))
}

/// Whether a stream belongs to the address-change context (its token streams included).
pub fn is_address_change_stream(stream: &str) -> bool {
    AddressChangeCategory::of(stream).is_some()
}

/// Every category the context writes, the token index included.
pub fn categories() -> [&'static str; 4] {
    [
        AddressChangeCategory::AddressChange.as_str(),
        AddressChangeCategory::Export.as_str(),
        AddressChangeCategory::Scrub.as_str(),
        TOKEN_CATEGORY,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{membership, streams};

    #[test]
    fn address_change_streams_are_named_by_category_and_parsed_back() {
        assert_eq!(streams_of(4)[0], "address_change-4");
        assert_eq!(streams_of(4)[2], "address_change_scrub-4");
        for c in AddressChangeCategory::ALL {
            assert_eq!(AddressChangeCategory::of(&c.stream(3)), Some(c));
        }
        assert_eq!(AddressChangeCategory::of("export-3"), None);
        assert_eq!(AddressChangeCategory::of(&token_stream("ab-cd")), None);
    }

    #[test]
    fn address_change_streams_belong_to_no_other_context() {
        for c in AddressChangeCategory::ALL {
            assert!(!streams::is_domain_stream(&c.stream(1)), "{c:?}");
            assert!(!membership::is_membership_stream(&c.stream(1)), "{c:?}");
        }
        assert!(!streams::is_domain_stream(&token_stream("x")));
        assert!(!is_address_change_stream("membership-1"));
    }
}
