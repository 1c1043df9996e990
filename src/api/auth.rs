//! Authentication and scopes: each client presents `authorization: Bearer <token>`; tokens are
//! configured by their SHA-256 (the ledger never stores a token in clear) with a name, the
//! scopes they grant and the actor kinds they may act as.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::intake::Method;
use crate::store::ActorKind;

/// What a call needs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize,
)]
pub enum Scope {
    /// AddDonation.
    #[serde(rename = "donations:add")]
    DonationsAdd,
    /// CancelDonation (on the donor's behalf).
    #[serde(rename = "donations:cancel")]
    DonationsCancel,
    /// DeleteDonation, RestoreDonation.
    #[serde(rename = "donations:delete")]
    DonationsDelete,
    /// FlagDonation, ApproveDonation, PublishComment, RetractComment.
    #[serde(rename = "donations:moderate")]
    DonationsModerate,
    /// MarkExported.
    #[serde(rename = "donations:export")]
    DonationsExport,
    /// GetDonation.
    #[serde(rename = "donations:read")]
    DonationsRead,
    /// AddComment.
    #[serde(rename = "comments:add")]
    CommentsAdd,
    /// UpdateDonor.
    #[serde(rename = "donors:update")]
    DonorsUpdate,
    /// BookPayment, FailPayment, RefundPayment, ReportChargeback.
    #[serde(rename = "payments:notify")]
    PaymentsNotify,
    /// RecordContributionTracking, LinkContribution.
    #[serde(rename = "tracking:write")]
    TrackingWrite,
    /// NextId.
    #[serde(rename = "sequence:next")]
    SequenceNext,
    /// GetHistory, GetMembershipHistory and audit reads.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// ApplyForMembership.
    #[serde(rename = "memberships:apply")]
    MembershipsApply,
    /// CancelMembership, RestoreMembership.
    #[serde(rename = "memberships:cancel")]
    MembershipsCancel,
    /// FlagMembership, ApproveMembership.
    #[serde(rename = "memberships:moderate")]
    MembershipsModerate,
    /// MarkMembershipsExported.
    #[serde(rename = "memberships:export")]
    MembershipsExport,
    /// GetMembership.
    #[serde(rename = "memberships:read")]
    MembershipsRead,
    /// ChangeAddress (the address-change page).
    #[serde(rename = "address_changes:change")]
    AddressChangesChange,
    /// GetAddressChange.
    #[serde(rename = "address_changes:read")]
    AddressChangesRead,
    /// MarkAddressChangesExported.
    #[serde(rename = "address_changes:export")]
    AddressChangesExport,
    /// Subscribe (banners and forms).
    #[serde(rename = "subscriptions:subscribe")]
    SubscriptionsSubscribe,
    /// ConfirmSubscription (the confirmation link's page).
    #[serde(rename = "subscriptions:confirm")]
    SubscriptionsConfirm,
    /// GetSubscription.
    #[serde(rename = "subscriptions:read")]
    SubscriptionsRead,
    /// MarkSubscriptionsExported.
    #[serde(rename = "subscriptions:export")]
    SubscriptionsExport,
    /// RemoveSubscription (a GDPR removal from the back office).
    #[serde(rename = "subscriptions:remove")]
    SubscriptionsRemove,
    /// The `Peering` service: CiviShare node and peerings.
    #[serde(rename = "peers:admin")]
    PeersAdmin,
    /// Everything.
    #[serde(rename = "*")]
    All,
}

impl Scope {
    /// Every concrete scope.
    pub const ALL: &'static [Scope] = &[
        Scope::DonationsAdd,
        Scope::DonationsCancel,
        Scope::DonationsDelete,
        Scope::DonationsModerate,
        Scope::DonationsExport,
        Scope::DonationsRead,
        Scope::CommentsAdd,
        Scope::DonorsUpdate,
        Scope::PaymentsNotify,
        Scope::TrackingWrite,
        Scope::SequenceNext,
        Scope::AuditRead,
        Scope::MembershipsApply,
        Scope::MembershipsCancel,
        Scope::MembershipsModerate,
        Scope::MembershipsExport,
        Scope::MembershipsRead,
        Scope::AddressChangesChange,
        Scope::AddressChangesRead,
        Scope::AddressChangesExport,
        Scope::SubscriptionsSubscribe,
        Scope::SubscriptionsConfirm,
        Scope::SubscriptionsRead,
        Scope::SubscriptionsExport,
        Scope::SubscriptionsRemove,
        Scope::PeersAdmin,
    ];
}

/// The scope a call of `method` needs: the one place that decides it (exhaustive, so a new
/// method does not compile until someone decides).
pub fn scope(method: Method) -> Scope {
    match method {
        Method::AddDonation => Scope::DonationsAdd,
        Method::BookPayment => Scope::PaymentsNotify,
        Method::FailPayment => Scope::PaymentsNotify,
        Method::RefundPayment => Scope::PaymentsNotify,
        Method::ReportChargeback => Scope::PaymentsNotify,
        Method::CancelDonation => Scope::DonationsCancel,
        Method::DeleteDonation => Scope::DonationsDelete,
        Method::RestoreDonation => Scope::DonationsDelete,
        Method::FlagDonation => Scope::DonationsModerate,
        Method::ApproveDonation => Scope::DonationsModerate,
        Method::AddComment => Scope::CommentsAdd,
        Method::PublishComment => Scope::DonationsModerate,
        Method::RetractComment => Scope::DonationsModerate,
        Method::UpdateDonor => Scope::DonorsUpdate,
        Method::MarkExported => Scope::DonationsExport,
        Method::RecordContributionTracking => Scope::TrackingWrite,
        Method::LinkContribution => Scope::TrackingWrite,
        Method::GetDonation => Scope::DonationsRead,
        Method::GetHistory => Scope::AuditRead,
        Method::NextId => Scope::SequenceNext,
        Method::ApplyForMembership => Scope::MembershipsApply,
        Method::CancelMembership => Scope::MembershipsCancel,
        Method::RestoreMembership => Scope::MembershipsCancel,
        Method::FlagMembership => Scope::MembershipsModerate,
        Method::ApproveMembership => Scope::MembershipsModerate,
        Method::MarkMembershipsExported => Scope::MembershipsExport,
        Method::GetMembership => Scope::MembershipsRead,
        Method::GetMembershipHistory => Scope::AuditRead,
        Method::GetAddressChange => Scope::AddressChangesRead,
        Method::ChangeAddress => Scope::AddressChangesChange,
        Method::MarkAddressChangesExported => Scope::AddressChangesExport,
        Method::Subscribe => Scope::SubscriptionsSubscribe,
        Method::ConfirmSubscription => Scope::SubscriptionsConfirm,
        Method::MarkSubscriptionsExported => Scope::SubscriptionsExport,
        Method::GetSubscription => Scope::SubscriptionsRead,
        Method::RemoveSubscription => Scope::SubscriptionsRemove,
    }
}

/// One configured client.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenEntry {
    /// Who this is, for logs (`donation-form`, `foc`, `paypal-ipn`).
    pub name: String,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    /// Scopes granted.
    pub scopes: BTreeSet<Scope>,
    /// Actor kinds this client may act as; empty means any.
    #[serde(default)]
    pub actor_kinds: BTreeSet<ActorKind>,
}

/// The `tokens.json` file: `{"tokens": [TokenEntry, …]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenFile {
    /// The clients.
    pub tokens: Vec<TokenEntry>,
}

/// An authenticated client.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The configured name.
    pub name: String,
    scopes: BTreeSet<Scope>,
    actor_kinds: BTreeSet<ActorKind>,
}

impl Principal {
    /// Whether the client may act as `kind`.
    pub fn may_act_as(&self, kind: ActorKind) -> bool {
        self.actor_kinds.is_empty() || self.actor_kinds.contains(&kind)
    }

    /// Whether the client holds `scope` (or every scope).
    pub fn grants(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::All)
    }
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    by_hash: HashMap<String, Principal>,
}

/// The SHA-256 of a token, as configured.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Authenticator {
    /// From parsed entries.
    pub fn new(entries: Vec<TokenEntry>) -> Self {
        let by_hash = entries
            .into_iter()
            .map(|e| {
                (
                    e.sha256.to_ascii_lowercase(),
                    Principal {
                        name: e.name,
                        scopes: e.scopes,
                        actor_kinds: e.actor_kinds,
                    },
                )
            })
            .collect();
        Self { by_hash }
    }

    /// Loads `tokens.json`.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let file: TokenFile = serde_json::from_str(&text)?;
        Ok(Self::new(file.tokens))
    }

    /// Adds a client holding a clear token (for the embedded default's generated admin token).
    pub fn with_token(mut self, name: &str, token: &str, scopes: BTreeSet<Scope>) -> Self {
        self.by_hash.insert(
            token_hash(token),
            Principal {
                name: name.to_owned(),
                scopes,
                actor_kinds: BTreeSet::new(),
            },
        );
        self
    }

    /// Number of configured clients.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The client holding `token`, if it is configured.
    pub fn principal(&self, token: &str) -> Option<&Principal> {
        self.by_hash.get(&token_hash(token))
    }

    /// Checks the request's token and that it grants `scope`. Refusals are logged.
    pub fn authorize<T>(
        &self,
        request: &Request<T>,
        scope: Scope,
        method: &str,
    ) -> Result<Principal, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            tracing::warn!(method, "refused: no token");
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(principal) = token.and_then(|t| self.principal(t)) else {
            tracing::warn!(method, "refused: unknown token");
            return Err(Status::unauthenticated("unknown token"));
        };
        if !principal.grants(scope) {
            tracing::warn!(method, client = %principal.name, ?scope, "refused: out of scope");
            return Err(Status::permission_denied(format!(
                "client `{}` lacks scope {}",
                principal.name,
                serde_json::to_string(&scope).unwrap_or_default()
            )));
        }
        Ok(principal.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }

    fn auth() -> Authenticator {
        let file: TokenFile = serde_json::from_str(&format!(
            r#"{{"tokens": [{{"name": "form", "sha256": "{}", "scopes": ["donations:add", "tracking:write"], "actor_kinds": ["frontend"]}}]}}"#,
            token_hash("form-secret")
        ))
        .unwrap();
        Authenticator::new(file.tokens)
    }

    #[test]
    fn a_form_token_may_add_donations_but_not_export() {
        let a = auth();
        let p = a
            .authorize(
                &request(Some("form-secret")),
                Scope::DonationsAdd,
                "AddDonation",
            )
            .unwrap();
        assert_eq!(p.name, "form");
        assert!(p.may_act_as(ActorKind::Frontend));
        assert!(!p.may_act_as(ActorKind::FocUser));
        let err = a
            .authorize(
                &request(Some("form-secret")),
                Scope::DonationsExport,
                "MarkExported",
            )
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn missing_or_unknown_tokens_are_unauthenticated() {
        let a = auth();
        for r in [request(None), request(Some("guess"))] {
            assert_eq!(
                a.authorize(&r, Scope::DonationsAdd, "AddDonation")
                    .unwrap_err()
                    .code(),
                tonic::Code::Unauthenticated
            );
        }
    }
}
