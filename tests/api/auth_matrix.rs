//! The authorisation matrix: every RPC × {no token, an unknown token, each configured client,
//! a token with exactly one scope (every scope in turn), a client acting as an actor kind it
//! may not} → the status the scopes decide, and the log head unchanged on every refusal.
//! Generated from the method registry (`ledger::intake::Method::ALL`, held to the `.proto` by
//! a unit test) and `Call::of`, whose match is exhaustive: a new RPC is in the matrix or the
//! tests do not compile.

use ledger::api::auth::{token_hash, Authenticator, Scope, TokenFile};
use ledger::intake::Method;
use ledger::proto::api::ActorKind;
use tonic::Code;

use crate::support::api::*;

/// The scope each RPC needs, as the README documents it: written here independently of the
/// server's map (`ledger::api::auth::scope`), so a wrong entry there fails the matrix; an
/// exhaustive match, so a new RPC does not compile until it is decided here too.
fn documented_scope(method: Method) -> Scope {
    match method {
        Method::AddDonation => Scope::DonationsAdd,
        Method::BookPayment
        | Method::FailPayment
        | Method::RefundPayment
        | Method::ReportChargeback => Scope::PaymentsNotify,
        Method::CancelDonation => Scope::DonationsCancel,
        Method::DeleteDonation | Method::RestoreDonation => Scope::DonationsDelete,
        Method::FlagDonation
        | Method::ApproveDonation
        | Method::PublishComment
        | Method::RetractComment => Scope::DonationsModerate,
        Method::AddComment => Scope::CommentsAdd,
        Method::UpdateDonor => Scope::DonorsUpdate,
        Method::MarkExported => Scope::DonationsExport,
        Method::RecordContributionTracking | Method::LinkContribution => Scope::TrackingWrite,
        Method::GetDonation => Scope::DonationsRead,
        Method::GetHistory => Scope::AuditRead,
        Method::NextId => Scope::SequenceNext,
        Method::ApplyForMembership => Scope::MembershipsApply,
        Method::CancelMembership | Method::RestoreMembership => Scope::MembershipsCancel,
        Method::FlagMembership | Method::ApproveMembership => Scope::MembershipsModerate,
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

/// The token that holds exactly `scope`.
fn only(scope: Scope) -> String {
    format!(
        "only-{}",
        serde_json::to_string(&scope).unwrap().trim_matches('"')
    )
}

/// A frontend-only client holding every scope.
const FRONTEND_ONLY: &str = "frontend-only-secret";

/// The test's clients: the support's admin, form and provider, one token per scope, and a
/// client with every scope that may act as a frontend only.
fn authenticator() -> Authenticator {
    let mut tokens = vec![
        serde_json::json!({"name": "admin", "sha256": token_hash(ADMIN), "scopes": ["*"]}),
        serde_json::json!({"name": "form", "sha256": token_hash(FORM),
            "scopes": ["donations:add", "tracking:write", "sequence:next", "donations:read", "comments:add"],
            "actor_kinds": ["frontend"]}),
        serde_json::json!({"name": "paypal", "sha256": token_hash(PROVIDER),
            "scopes": ["payments:notify"], "actor_kinds": ["provider"]}),
        serde_json::json!({"name": "frontend-only", "sha256": token_hash(FRONTEND_ONLY),
            "scopes": ["*"], "actor_kinds": ["frontend"]}),
    ];
    for s in Scope::ALL {
        tokens.push(
            serde_json::json!({"name": only(*s), "sha256": token_hash(&only(*s)), "scopes": [s]}),
        );
    }
    let file: TokenFile = serde_json::from_value(serde_json::json!({ "tokens": tokens })).unwrap();
    Authenticator::new(file.tokens)
}

/// Sends `method` with `token` (none when `None`) acting as `kind`; the status code.
async fn code(app: &mut TestApp, method: Method, token: Option<&str>, kind: ActorKind) -> Code {
    let result = Call::of(method, kind)
        .send_with(&mut app.client, token)
        .await;
    result.map_or_else(|s| s.code(), |()| Code::Ok)
}

/// Expects a refusal with `expected` and no event appended.
async fn refused(
    app: &mut TestApp,
    method: Method,
    token: Option<&str>,
    kind: ActorKind,
    expected: Code,
) {
    let before = head(&app.log).await;
    let got = code(app, method, token, kind).await;
    assert_eq!(got, expected, "{method} with {token:?} as {kind:?}");
    assert_eq!(
        head(&app.log).await,
        before,
        "{method} refused but appended"
    );
}

/// Expects the call to pass authorisation (whatever the call itself then answers).
async fn admitted(app: &mut TestApp, method: Method, token: &str, kind: ActorKind) {
    let got = code(app, method, Some(token), kind).await;
    assert!(
        !matches!(got, Code::Unauthenticated | Code::PermissionDenied),
        "{method} with {token} as {kind:?}: {got:?}"
    );
}

#[tokio::test]
async fn no_token_or_an_unknown_token_is_unauthenticated_on_every_rpc() {
    let mut app = spawn_app_with(|s| s.auth = authenticator()).await;
    for method in Method::ALL {
        refused(
            &mut app,
            *method,
            Some("no-such-token"),
            ActorKind::System,
            Code::Unauthenticated,
        )
        .await;
    }
    // Without the header at all (each method's own request where the client has it).
    for method in [Method::GetDonation, Method::NextId, Method::GetHistory] {
        refused(
            &mut app,
            method,
            None,
            ActorKind::System,
            Code::Unauthenticated,
        )
        .await;
    }
}

#[tokio::test]
async fn each_rpc_admits_exactly_the_tokens_holding_its_scope() {
    let mut app = spawn_app_with(|s| s.auth = authenticator()).await;
    for method in Method::ALL {
        let needed = documented_scope(*method);
        for s in Scope::ALL {
            if *s == needed {
                admitted(&mut app, *method, &only(*s), ActorKind::System).await;
            } else {
                refused(
                    &mut app,
                    *method,
                    Some(&only(*s)),
                    ActorKind::System,
                    Code::PermissionDenied,
                )
                .await;
            }
        }
        admitted(&mut app, *method, ADMIN, ActorKind::System).await;
    }
}

#[tokio::test]
async fn the_configured_clients_get_what_their_scopes_and_actor_kinds_allow() {
    let mut app = spawn_app_with(|s| s.auth = authenticator()).await;
    let form = [
        Scope::DonationsAdd,
        Scope::TrackingWrite,
        Scope::SequenceNext,
        Scope::DonationsRead,
        Scope::CommentsAdd,
    ];
    for method in Method::ALL {
        let needed = documented_scope(*method);
        for (token, scopes, kind) in [
            (FORM, &form[..], ActorKind::Frontend),
            (PROVIDER, &[Scope::PaymentsNotify][..], ActorKind::Provider),
        ] {
            if scopes.contains(&needed) {
                admitted(&mut app, *method, token, kind).await;
            } else {
                refused(&mut app, *method, Some(token), kind, Code::PermissionDenied).await;
            }
        }
    }
}

#[tokio::test]
async fn a_client_acting_as_an_actor_kind_it_may_not_is_refused_on_every_mutating_rpc() {
    let mut app = spawn_app_with(|s| s.auth = authenticator()).await;
    for method in Method::ALL.iter().filter(|m| m.is_mutating()) {
        admitted(&mut app, *method, FRONTEND_ONLY, ActorKind::Frontend).await;
        for kind in [ActorKind::FocUser, ActorKind::Provider, ActorKind::System] {
            refused(
                &mut app,
                *method,
                Some(FRONTEND_ONLY),
                kind,
                Code::PermissionDenied,
            )
            .await;
        }
    }
}

#[test]
fn the_server_maps_every_rpc_to_its_documented_scope() {
    for method in Method::ALL {
        assert_eq!(
            ledger::api::auth::scope(*method),
            documented_scope(*method),
            "{method}"
        );
    }
}
