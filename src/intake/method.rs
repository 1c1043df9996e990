//! The registry of the ledger's gRPC methods: one enum, one name each. The API authorises by
//! it (`api::auth::scope` maps every method to its scope, exhaustively) and labels its metrics
//! with it; the intake writes its name into the idempotency record of every call. A unit test
//! holds it to the service the `.proto` declares, so no method is missing or misspelt.

/// A method of `ledger.api.v1.Ledger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `AddDonation`
    AddDonation,
    /// `BookPayment`
    BookPayment,
    /// `FailPayment`
    FailPayment,
    /// `RefundPayment`
    RefundPayment,
    /// `ReportChargeback`
    ReportChargeback,
    /// `CancelDonation`
    CancelDonation,
    /// `DeleteDonation`
    DeleteDonation,
    /// `RestoreDonation`
    RestoreDonation,
    /// `FlagDonation`
    FlagDonation,
    /// `ApproveDonation`
    ApproveDonation,
    /// `AddComment`
    AddComment,
    /// `PublishComment`
    PublishComment,
    /// `RetractComment`
    RetractComment,
    /// `UpdateDonor`
    UpdateDonor,
    /// `MarkExported`
    MarkExported,
    /// `RecordContributionTracking`
    RecordContributionTracking,
    /// `LinkContribution`
    LinkContribution,
    /// `GetDonation`
    GetDonation,
    /// `GetHistory`
    GetHistory,
    /// `NextId`
    NextId,
    /// `ApplyForMembership`
    ApplyForMembership,
    /// `CancelMembership`
    CancelMembership,
    /// `RestoreMembership`
    RestoreMembership,
    /// `FlagMembership`
    FlagMembership,
    /// `ApproveMembership`
    ApproveMembership,
    /// `MarkMembershipsExported`
    MarkMembershipsExported,
    /// `GetMembership`
    GetMembership,
    /// `GetMembershipHistory`
    GetMembershipHistory,
    /// `GetAddressChange`
    GetAddressChange,
    /// `ChangeAddress`
    ChangeAddress,
    /// `MarkAddressChangesExported`
    MarkAddressChangesExported,
    /// `Subscribe`
    Subscribe,
    /// `ConfirmSubscription`
    ConfirmSubscription,
    /// `MarkSubscriptionsExported`
    MarkSubscriptionsExported,
    /// `GetSubscription`
    GetSubscription,
    /// `RemoveSubscription`
    RemoveSubscription,
}

impl Method {
    /// Every method, in the order of the `.proto`.
    pub const ALL: &'static [Method] = &[
        Method::AddDonation,
        Method::BookPayment,
        Method::FailPayment,
        Method::RefundPayment,
        Method::ReportChargeback,
        Method::CancelDonation,
        Method::DeleteDonation,
        Method::RestoreDonation,
        Method::FlagDonation,
        Method::ApproveDonation,
        Method::AddComment,
        Method::PublishComment,
        Method::RetractComment,
        Method::UpdateDonor,
        Method::MarkExported,
        Method::RecordContributionTracking,
        Method::LinkContribution,
        Method::GetDonation,
        Method::GetHistory,
        Method::NextId,
        Method::ApplyForMembership,
        Method::CancelMembership,
        Method::RestoreMembership,
        Method::FlagMembership,
        Method::ApproveMembership,
        Method::MarkMembershipsExported,
        Method::GetMembership,
        Method::GetMembershipHistory,
        Method::GetAddressChange,
        Method::ChangeAddress,
        Method::MarkAddressChangesExported,
        Method::Subscribe,
        Method::ConfirmSubscription,
        Method::MarkSubscriptionsExported,
        Method::GetSubscription,
        Method::RemoveSubscription,
    ];

    /// The gRPC method name (also the metrics label and the idempotency record's method).
    pub const fn name(self) -> &'static str {
        match self {
            Method::AddDonation => "AddDonation",
            Method::BookPayment => "BookPayment",
            Method::FailPayment => "FailPayment",
            Method::RefundPayment => "RefundPayment",
            Method::ReportChargeback => "ReportChargeback",
            Method::CancelDonation => "CancelDonation",
            Method::DeleteDonation => "DeleteDonation",
            Method::RestoreDonation => "RestoreDonation",
            Method::FlagDonation => "FlagDonation",
            Method::ApproveDonation => "ApproveDonation",
            Method::AddComment => "AddComment",
            Method::PublishComment => "PublishComment",
            Method::RetractComment => "RetractComment",
            Method::UpdateDonor => "UpdateDonor",
            Method::MarkExported => "MarkExported",
            Method::RecordContributionTracking => "RecordContributionTracking",
            Method::LinkContribution => "LinkContribution",
            Method::GetDonation => "GetDonation",
            Method::GetHistory => "GetHistory",
            Method::NextId => "NextId",
            Method::ApplyForMembership => "ApplyForMembership",
            Method::CancelMembership => "CancelMembership",
            Method::RestoreMembership => "RestoreMembership",
            Method::FlagMembership => "FlagMembership",
            Method::ApproveMembership => "ApproveMembership",
            Method::MarkMembershipsExported => "MarkMembershipsExported",
            Method::GetMembership => "GetMembership",
            Method::GetMembershipHistory => "GetMembershipHistory",
            Method::GetAddressChange => "GetAddressChange",
            Method::ChangeAddress => "ChangeAddress",
            Method::MarkAddressChangesExported => "MarkAddressChangesExported",
            Method::Subscribe => "Subscribe",
            Method::ConfirmSubscription => "ConfirmSubscription",
            Method::MarkSubscriptionsExported => "MarkSubscriptionsExported",
            Method::GetSubscription => "GetSubscription",
            Method::RemoveSubscription => "RemoveSubscription",
        }
    }

    /// Whether a call carries a request context and is idempotent per request id (every
    /// method but the reads).
    pub const fn is_mutating(self) -> bool {
        !matches!(
            self,
            Method::GetDonation
                | Method::GetHistory
                | Method::GetMembership
                | Method::GetMembershipHistory
                | Method::GetAddressChange
                | Method::GetSubscription
        )
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Method;
    use prost::Message;

    #[test]
    fn the_registry_lists_exactly_the_methods_the_proto_declares() {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let service = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(package, s)| *package == "ledger.api.v1" && s.name() == "Ledger")
            .map(|(_, s)| s)
            .expect("ledger.api.v1.Ledger");
        let declared: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let registered: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(registered, declared);
        // Every variant is in ALL (the match in `name` is exhaustive; ALL is held here).
        let mut unique = registered.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), registered.len());
    }
}
