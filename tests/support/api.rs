//! Spawns the real gRPC intake on port 0 with a temporary data directory, and builds requests.
//!
//! Over 600 lines because [`Call`] lists every RPC of the service in one exhaustive enum (its
//! variants, names, senders and well-formed requests), so a new RPC cannot be left out of the
//! tests that send every method.
use std::sync::Arc;

use ledger::api::auth::{token_hash, Authenticator, TokenFile};
use ledger::api::{Application, Settings};
use ledger::domain::policy::ModerationPolicy;
use ledger::intake::Method;
use ledger::metrics::Metrics;
use ledger::proto::api::{self, ledger_client::LedgerClient};
use ledger::proto::events as ev;
use ledger::store::{Direction, EventLog, RecordedEvent, StreamStart};
use tonic::transport::Channel;
use tonic::Request;

use super::kurrentdb::LogHost;
use super::log_backend;
pub use super::log_backend::LogBackend;

/// Token with every scope.
pub const ADMIN: &str = "admin-secret";
/// A donation form: add donations, tracking, ids, reads; acts as a frontend only.
pub const FORM: &str = "form-secret";
/// A payment provider's notification handler.
pub const PROVIDER: &str = "provider-secret";

/// A running server and what tests inspect.
pub struct TestApp {
    /// The generated client, connected.
    pub client: LedgerClient<Channel>,
    /// The server's event log.
    pub log: Arc<dyn EventLog>,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The host of the log on the KurrentDB backend (stopped before the directory goes).
    host: Option<LogHost>,
    /// The data directory (dropped last).
    pub dir: tempfile::TempDir,
    /// The bound port.
    pub port: u16,
}

fn authenticator() -> Authenticator {
    let file: TokenFile = serde_json::from_str(&format!(
        r#"{{"tokens": [
            {{"name": "admin", "sha256": "{}", "scopes": ["*"]}},
            {{"name": "form", "sha256": "{}", "scopes": ["donations:add", "tracking:write", "sequence:next", "donations:read", "comments:add"], "actor_kinds": ["frontend"]}},
            {{"name": "paypal", "sha256": "{}", "scopes": ["payments:notify"], "actor_kinds": ["provider"]}}
        ]}}"#,
        token_hash(ADMIN),
        token_hash(FORM),
        token_hash(PROVIDER)
    ))
    .unwrap();
    Authenticator::new(file.tokens)
}

/// Starts a server with a policy denying `badword` and blocking `blocked@example.org`.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with settings changed by `configure` (another clock, say).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on_with(LogBackend::Embedded, configure).await
}

/// [`spawn_app`] with its log on `backend`.
pub async fn spawn_app_on(backend: LogBackend) -> TestApp {
    spawn_app_on_with(backend, |_| {}).await
}

/// [`spawn_app_with`] with its log on `backend`.
pub async fn spawn_app_on_with(
    backend: LogBackend,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let host = log_backend::host(dir.path(), backend);
    let mut settings = Settings::for_tests(dir.path(), authenticator());
    if let Some(host) = &host {
        settings.storage.event_log_url = host.url().to_owned().into();
    }
    settings.policy = ModerationPolicy {
        deny_words: vec!["badword".into()],
        blocked_emails: vec!["blocked@example.org".into()],
        ..ModerationPolicy::default()
    };
    configure(&mut settings);
    let metrics = settings.metrics.clone();
    let app = Application::build(settings).await.unwrap();
    assert_eq!(
        dir.path().join("events.sqlite").exists(),
        host.is_none(),
        "the log is where the backend says"
    );
    let port = app.port();
    let log = app.intake().log().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = LedgerClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    TestApp {
        client,
        log,
        metrics,
        host,
        dir,
        port,
    }
}

impl TestApp {
    /// The server's `--event-log-url` (empty: the embedded default).
    pub fn event_log_url(&self) -> String {
        self.host
            .as_ref()
            .map_or(String::new(), |h| h.url().to_owned())
    }

    /// `ledger` on the server's data directory and log.
    pub fn ledger(&self) -> assert_cmd::Command {
        log_backend::ledger_command(self.dir.path(), &self.event_log_url())
    }
}

/// `msg` with `authorization: Bearer <token>`.
pub fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A request context with a fresh request id acting as `kind`.
pub fn context(kind: api::ActorKind) -> Option<api::RequestContext> {
    Some(api::RequestContext {
        request_id: format!("req-{}", uuid::Uuid::new_v4()),
        actor: Some(api::Actor {
            kind: kind as i32,
            id: "test".into(),
        }),
        source: "tests".into(),
    })
}

/// `NextId` for `count` ids of `sequence`, with a fresh request id, as a frontend.
pub fn next_id_request(sequence: &str, count: u32) -> api::NextIdRequest {
    api::NextIdRequest {
        sequence: sequence.into(),
        count,
        context: context(api::ActorKind::Frontend),
    }
}

/// A valid membership application by a person, sustaining, `fee_cents` every
/// `interval_months`.
pub fn membership(
    method: ev::PaymentMethod,
    fee_cents: i64,
    interval_months: u32,
) -> api::ApplyForMembershipRequest {
    api::ApplyForMembershipRequest {
        context: context(api::ActorKind::Frontend),
        applicant: Some(api::ApplicantInput {
            kind: ev::ApplicantKind::Person as i32,
            salutation: "Herr".into(),
            first_name: "Korbinian".into(),
            last_name: "Quastenflosser".into(),
            street: "Mitgliedsallee 3".into(),
            postcode: "10963".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            email: "korbinian.quastenflosser@example.org".into(),
            phone: "+49 30 555".into(),
            date_of_birth: "1980-01-31".into(),
            ..Default::default()
        }),
        membership_type: ev::MembershipType::Sustaining as i32,
        fee_cents,
        interval_months,
        payment: Some(api::MembershipPaymentInput {
            method: method as i32,
            iban: if method == ev::PaymentMethod::DirectDebit {
                "DE02120300000000202051".into()
            } else {
                String::new()
            },
            bic: String::new(),
        }),
        tracking: Some(api::MembershipTrackingInput {
            campaign: "Spring".into(),
            keyword: "Banner".into(),
        }),
        incentives: vec!["tote_bag".into()],
        donation_receipt: Some(true),
    }
}

/// A valid donation by a person.
pub fn donation(method: ev::PaymentMethod, amount_cents: i64) -> api::AddDonationRequest {
    api::AddDonationRequest {
        context: context(api::ActorKind::Frontend),
        donor: Some(api::DonorInput {
            kind: ev::DonorKind::Person as i32,
            salutation: "Frau".into(),
            first_name: "Adelheid".into(),
            last_name: "Zwiebelmeier".into(),
            street: "Geheimweg 17".into(),
            postcode: "10963".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            email: "adelheid.zwiebelmeier@example.org".into(),
            wants_newsletter: true,
            wants_receipt: true,
            ..Default::default()
        }),
        payment: Some(api::PaymentInput {
            method: method as i32,
            amount_cents,
            currency: "EUR".into(),
            interval_months: 0,
            iban: if method == ev::PaymentMethod::DirectDebit {
                "DE02120300000000202051".into()
            } else {
                String::new()
            },
            bic: String::new(),
        }),
        tracking: Some(api::TrackingInput {
            campaign: "spring".into(),
            keyword: "banner-1".into(),
            ..Default::default()
        }),
        comment: None,
        donation_id: 0,
    }
}

/// A well-formed address-change token the ledger never issued.
pub const UNKNOWN_TOKEN: &str = "00000000-0000-4000-8000-000000000000";

/// Expects `answer` to be INVALID_ARGUMENT whose `BadRequest` names exactly `field` with a rule
/// containing `rule`, and the log's head still at `before` (nothing appended).
pub async fn assert_invalid<T: std::fmt::Debug>(
    app: &TestApp,
    before: u64,
    answer: Result<T, tonic::Status>,
    field: &str,
    rule: &str,
) {
    use tonic_types::StatusExt;
    let err = answer.expect_err("the call should be refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let violations = err
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest detail: {err:?}"))
        .field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, field, "{violations:?}");
    assert!(
        violations[0].description.contains(rule),
        "{rule:?} not in {:?}",
        violations[0].description
    );
    assert_eq!(
        head(&app.log).await,
        before,
        "a refused call appended events"
    );
}

/// A well-formed confirmation code no subscription was issued.
pub const UNKNOWN_CODE: &str = "0123456789abcdef0123456789abcdef";

/// A subscription of `email` from a banner, as a frontend.
pub fn subscribe_request(email: &str) -> api::SubscribeRequest {
    api::SubscribeRequest {
        context: context(api::ActorKind::Frontend),
        email: email.into(),
        tracking: Some(api::SubscriptionTrackingInput {
            campaign: "Spring".into(),
            keyword: "Banner".into(),
        }),
        source: "banner".into(),
    }
}

/// A valid new address of a person (country left to its default).
pub fn new_address() -> api::AddressInput {
    api::AddressInput {
        r#type: ev::AddressType::Person as i32,
        salutation: "Herr".into(),
        first_name: "Kasimir".into(),
        last_name: "Umzugsfreund".into(),
        street: "Neue Allee 5".into(),
        postcode: "04109".into(),
        city: "Leipzig".into(),
        ..Default::default()
    }
}

/// The head position of the log (0 when empty).
pub async fn head(log: &Arc<dyn EventLog>) -> u64 {
    log.head_position().await.unwrap().unwrap_or(0)
}

/// Every event of a stream.
pub async fn stream(log: &Arc<dyn EventLog>, name: &str) -> Vec<RecordedEvent> {
    log.read_stream(name, Direction::Forwards, StreamStart::Beginning, 1000)
        .await
        .unwrap()
}

/// Event types of a stream.
pub async fn types(log: &Arc<dyn EventLog>, name: &str) -> Vec<String> {
    stream(log, name)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// One call of any RPC, so a test can send every method the same way.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // test requests, built and sent one at a time
pub enum Call {
    /// `AddDonation`
    AddDonation(api::AddDonationRequest),
    /// `BookPayment`
    BookPayment(api::BookPaymentRequest),
    /// `FailPayment`
    FailPayment(api::FailPaymentRequest),
    /// `RefundPayment`
    RefundPayment(api::RefundPaymentRequest),
    /// `ReportChargeback`
    ReportChargeback(api::RefundPaymentRequest),
    /// `CancelDonation`
    CancelDonation(api::DonationActionRequest),
    /// `DeleteDonation`
    DeleteDonation(api::DonationActionRequest),
    /// `RestoreDonation`
    RestoreDonation(api::DonationActionRequest),
    /// `FlagDonation`
    FlagDonation(api::DonationActionRequest),
    /// `ApproveDonation`
    ApproveDonation(api::ApproveDonationRequest),
    /// `AddComment`
    AddComment(api::AddCommentRequest),
    /// `PublishComment`
    PublishComment(api::DonationActionRequest),
    /// `RetractComment`
    RetractComment(api::DonationActionRequest),
    /// `UpdateDonor`
    UpdateDonor(api::UpdateDonorRequest),
    /// `MarkExported`
    MarkExported(api::MarkExportedRequest),
    /// `RecordContributionTracking`
    RecordContributionTracking(api::RecordContributionTrackingRequest),
    /// `LinkContribution`
    LinkContribution(api::LinkContributionRequest),
    /// `NextId`
    NextId(api::NextIdRequest),
    /// `GetDonation`
    GetDonation(api::GetDonationRequest),
    /// `GetHistory`
    GetHistory(api::GetHistoryRequest),
    /// `ApplyForMembership`
    ApplyForMembership(api::ApplyForMembershipRequest),
    /// `CancelMembership`
    CancelMembership(api::MembershipActionRequest),
    /// `RestoreMembership`
    RestoreMembership(api::MembershipActionRequest),
    /// `FlagMembership`
    FlagMembership(api::MembershipActionRequest),
    /// `ApproveMembership`
    ApproveMembership(api::MembershipActionRequest),
    /// `MarkMembershipsExported`
    MarkMembershipsExported(api::MarkMembershipsExportedRequest),
    /// `GetMembership`
    GetMembership(api::GetMembershipRequest),
    /// `GetMembershipHistory`
    GetMembershipHistory(api::GetMembershipHistoryRequest),
    /// `GetAddressChange`
    GetAddressChange(api::GetAddressChangeRequest),
    /// `ChangeAddress`
    ChangeAddress(api::ChangeAddressRequest),
    /// `MarkAddressChangesExported`
    MarkAddressChangesExported(api::MarkAddressChangesExportedRequest),
    /// `Subscribe`
    Subscribe(api::SubscribeRequest),
    /// `ConfirmSubscription`
    ConfirmSubscription(api::ConfirmSubscriptionRequest),
    /// `MarkSubscriptionsExported`
    MarkSubscriptionsExported(api::MarkSubscriptionsExportedRequest),
    /// `GetSubscription`
    GetSubscription(api::GetSubscriptionRequest),
    /// `RemoveSubscription`
    RemoveSubscription(api::RemoveSubscriptionRequest),
}

/// Runs `$body` with `$r` bound to the request of every variant of a `Call`.
macro_rules! each_call {
    ($call:expr, $r:ident => $body:expr) => {
        match $call {
            Call::AddDonation($r) => $body,
            Call::BookPayment($r) => $body,
            Call::FailPayment($r) => $body,
            Call::RefundPayment($r) => $body,
            Call::ReportChargeback($r) => $body,
            Call::CancelDonation($r) => $body,
            Call::DeleteDonation($r) => $body,
            Call::RestoreDonation($r) => $body,
            Call::FlagDonation($r) => $body,
            Call::ApproveDonation($r) => $body,
            Call::AddComment($r) => $body,
            Call::PublishComment($r) => $body,
            Call::RetractComment($r) => $body,
            Call::UpdateDonor($r) => $body,
            Call::MarkExported($r) => $body,
            Call::RecordContributionTracking($r) => $body,
            Call::LinkContribution($r) => $body,
            Call::NextId($r) => $body,
            Call::GetDonation($r) => $body,
            Call::GetHistory($r) => $body,
            Call::ApplyForMembership($r) => $body,
            Call::CancelMembership($r) => $body,
            Call::RestoreMembership($r) => $body,
            Call::FlagMembership($r) => $body,
            Call::ApproveMembership($r) => $body,
            Call::MarkMembershipsExported($r) => $body,
            Call::GetMembership($r) => $body,
            Call::GetMembershipHistory($r) => $body,
            Call::GetAddressChange($r) => $body,
            Call::ChangeAddress($r) => $body,
            Call::MarkAddressChangesExported($r) => $body,
            Call::Subscribe($r) => $body,
            Call::ConfirmSubscription($r) => $body,
            Call::MarkSubscriptionsExported($r) => $body,
            Call::GetSubscription($r) => $body,
            Call::RemoveSubscription($r) => $body,
        }
    };
}

/// A request that carries a request context (every mutating one).
pub trait WithContext {
    /// The context field.
    fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>>;
}

macro_rules! with_context {
    ($($t:ty),+) => {$(
        impl WithContext for $t {
            fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
                Some(&mut self.context)
            }
        }
    )+};
}
with_context!(
    api::AddDonationRequest,
    api::BookPaymentRequest,
    api::FailPaymentRequest,
    api::RefundPaymentRequest,
    api::DonationActionRequest,
    api::ApproveDonationRequest,
    api::AddCommentRequest,
    api::UpdateDonorRequest,
    api::MarkExportedRequest,
    api::RecordContributionTrackingRequest,
    api::LinkContributionRequest,
    api::NextIdRequest,
    api::ApplyForMembershipRequest,
    api::MembershipActionRequest,
    api::MarkMembershipsExportedRequest,
    api::ChangeAddressRequest,
    api::MarkAddressChangesExportedRequest,
    api::SubscribeRequest,
    api::ConfirmSubscriptionRequest,
    api::MarkSubscriptionsExportedRequest,
    api::RemoveSubscriptionRequest
);
impl WithContext for api::GetSubscriptionRequest {
    fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
        None
    }
}
impl WithContext for api::GetAddressChangeRequest {
    fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
        None
    }
}
impl WithContext for api::GetMembershipRequest {
    fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
        None
    }
}
impl WithContext for api::GetMembershipHistoryRequest {
    fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
        None
    }
}
impl WithContext for api::GetDonationRequest {
    fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
        None
    }
}
impl WithContext for api::GetHistoryRequest {
    fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
        None
    }
}

impl Call {
    /// The gRPC method name.
    pub fn method(&self) -> &'static str {
        match self {
            Call::AddDonation(_) => "AddDonation",
            Call::BookPayment(_) => "BookPayment",
            Call::FailPayment(_) => "FailPayment",
            Call::RefundPayment(_) => "RefundPayment",
            Call::ReportChargeback(_) => "ReportChargeback",
            Call::CancelDonation(_) => "CancelDonation",
            Call::DeleteDonation(_) => "DeleteDonation",
            Call::RestoreDonation(_) => "RestoreDonation",
            Call::FlagDonation(_) => "FlagDonation",
            Call::ApproveDonation(_) => "ApproveDonation",
            Call::AddComment(_) => "AddComment",
            Call::PublishComment(_) => "PublishComment",
            Call::RetractComment(_) => "RetractComment",
            Call::UpdateDonor(_) => "UpdateDonor",
            Call::MarkExported(_) => "MarkExported",
            Call::RecordContributionTracking(_) => "RecordContributionTracking",
            Call::LinkContribution(_) => "LinkContribution",
            Call::NextId(_) => "NextId",
            Call::GetDonation(_) => "GetDonation",
            Call::GetHistory(_) => "GetHistory",
            Call::ApplyForMembership(_) => "ApplyForMembership",
            Call::CancelMembership(_) => "CancelMembership",
            Call::RestoreMembership(_) => "RestoreMembership",
            Call::FlagMembership(_) => "FlagMembership",
            Call::ApproveMembership(_) => "ApproveMembership",
            Call::MarkMembershipsExported(_) => "MarkMembershipsExported",
            Call::GetMembership(_) => "GetMembership",
            Call::GetMembershipHistory(_) => "GetMembershipHistory",
            Call::GetAddressChange(_) => "GetAddressChange",
            Call::ChangeAddress(_) => "ChangeAddress",
            Call::MarkAddressChangesExported(_) => "MarkAddressChangesExported",
            Call::Subscribe(_) => "Subscribe",
            Call::ConfirmSubscription(_) => "ConfirmSubscription",
            Call::MarkSubscriptionsExported(_) => "MarkSubscriptionsExported",
            Call::GetSubscription(_) => "GetSubscription",
            Call::RemoveSubscription(_) => "RemoveSubscription",
        }
    }

    /// The request's context, when it has one (every mutating call).
    pub fn context_mut(&mut self) -> Option<&mut Option<api::RequestContext>> {
        each_call!(self, r => r.context_mut())
    }

    /// Sends the call with `token`; the answer's content is dropped.
    pub async fn send(
        self,
        client: &mut LedgerClient<Channel>,
        token: &str,
    ) -> Result<(), tonic::Status> {
        self.send_with(client, Some(token)).await
    }

    /// Sends the call with `token`, or without any `authorization` header.
    pub async fn send_with(
        self,
        client: &mut LedgerClient<Channel>,
        token: Option<&str>,
    ) -> Result<(), tonic::Status> {
        fn request<T>(msg: T, token: Option<&str>) -> Request<T> {
            match token {
                Some(t) => with_token(msg, t),
                None => Request::new(msg),
            }
        }
        match self {
            Call::AddDonation(r) => client.add_donation(request(r, token)).await.map(drop),
            Call::BookPayment(r) => client.book_payment(request(r, token)).await.map(drop),
            Call::FailPayment(r) => client.fail_payment(request(r, token)).await.map(drop),
            Call::RefundPayment(r) => client.refund_payment(request(r, token)).await.map(drop),
            Call::ReportChargeback(r) => {
                client.report_chargeback(request(r, token)).await.map(drop)
            }
            Call::CancelDonation(r) => client.cancel_donation(request(r, token)).await.map(drop),
            Call::DeleteDonation(r) => client.delete_donation(request(r, token)).await.map(drop),
            Call::RestoreDonation(r) => client.restore_donation(request(r, token)).await.map(drop),
            Call::FlagDonation(r) => client.flag_donation(request(r, token)).await.map(drop),
            Call::ApproveDonation(r) => client.approve_donation(request(r, token)).await.map(drop),
            Call::AddComment(r) => client.add_comment(request(r, token)).await.map(drop),
            Call::PublishComment(r) => client.publish_comment(request(r, token)).await.map(drop),
            Call::RetractComment(r) => client.retract_comment(request(r, token)).await.map(drop),
            Call::UpdateDonor(r) => client.update_donor(request(r, token)).await.map(drop),
            Call::MarkExported(r) => client.mark_exported(request(r, token)).await.map(drop),
            Call::RecordContributionTracking(r) => client
                .record_contribution_tracking(request(r, token))
                .await
                .map(drop),
            Call::LinkContribution(r) => {
                client.link_contribution(request(r, token)).await.map(drop)
            }
            Call::NextId(r) => client.next_id(request(r, token)).await.map(drop),
            Call::GetDonation(r) => client.get_donation(request(r, token)).await.map(drop),
            Call::GetHistory(r) => client.get_history(request(r, token)).await.map(drop),
            Call::ApplyForMembership(r) => client
                .apply_for_membership(request(r, token))
                .await
                .map(drop),
            Call::CancelMembership(r) => {
                client.cancel_membership(request(r, token)).await.map(drop)
            }
            Call::RestoreMembership(r) => {
                client.restore_membership(request(r, token)).await.map(drop)
            }
            Call::FlagMembership(r) => client.flag_membership(request(r, token)).await.map(drop),
            Call::ApproveMembership(r) => {
                client.approve_membership(request(r, token)).await.map(drop)
            }
            Call::MarkMembershipsExported(r) => client
                .mark_memberships_exported(request(r, token))
                .await
                .map(drop),
            Call::GetMembership(r) => client.get_membership(request(r, token)).await.map(drop),
            Call::GetMembershipHistory(r) => client
                .get_membership_history(request(r, token))
                .await
                .map(drop),
            Call::GetAddressChange(r) => {
                client.get_address_change(request(r, token)).await.map(drop)
            }
            Call::ChangeAddress(r) => client.change_address(request(r, token)).await.map(drop),
            Call::MarkAddressChangesExported(r) => client
                .mark_address_changes_exported(request(r, token))
                .await
                .map(drop),
            Call::Subscribe(r) => client.subscribe(request(r, token)).await.map(drop),
            Call::ConfirmSubscription(r) => client
                .confirm_subscription(request(r, token))
                .await
                .map(drop),
            Call::MarkSubscriptionsExported(r) => client
                .mark_subscriptions_exported(request(r, token))
                .await
                .map(drop),
            Call::GetSubscription(r) => client.get_subscription(request(r, token)).await.map(drop),
            Call::RemoveSubscription(r) => client
                .remove_subscription(request(r, token))
                .await
                .map(drop),
        }
    }

    /// A well-formed call of `method`, with a fresh context acting as `kind` where it has one,
    /// about donation, payment and tracking id 1. Exhaustive: a new method must be added here.
    pub fn of(method: Method, kind: api::ActorKind) -> Call {
        let action = || api::DonationActionRequest {
            context: context(kind),
            donation_id: 1,
            reason: "why".into(),
        };
        let membership_action = || api::MembershipActionRequest {
            context: context(kind),
            membership_id: 1,
            reason: "why".into(),
        };
        let money_back = || api::RefundPaymentRequest {
            context: context(kind),
            payment_id: 1,
            amount_cents: 100,
            currency: "EUR".into(),
            reason: "why".into(),
        };
        match method {
            Method::AddDonation => {
                let mut add = donation(ev::PaymentMethod::BankTransfer, 1_000);
                add.context = context(kind);
                Call::AddDonation(add)
            }
            Method::BookPayment => Call::BookPayment(api::BookPaymentRequest {
                context: context(kind),
                payment_id: 1,
                transaction_id: "T-1".into(),
                ..Default::default()
            }),
            Method::FailPayment => Call::FailPayment(api::FailPaymentRequest {
                context: context(kind),
                payment_id: 1,
                reason: "declined".into(),
            }),
            Method::RefundPayment => Call::RefundPayment(money_back()),
            Method::ReportChargeback => Call::ReportChargeback(money_back()),
            Method::CancelDonation => Call::CancelDonation(action()),
            Method::DeleteDonation => Call::DeleteDonation(action()),
            Method::RestoreDonation => Call::RestoreDonation(action()),
            Method::FlagDonation => Call::FlagDonation(action()),
            Method::ApproveDonation => Call::ApproveDonation(api::ApproveDonationRequest {
                context: context(kind),
                donation_id: 1,
                as_anonymous: false,
            }),
            Method::AddComment => Call::AddComment(api::AddCommentRequest {
                context: context(kind),
                donation_id: 1,
                comment: Some(api::CommentInput {
                    text: "thanks".into(),
                    is_public: false,
                    display_name: String::new(),
                }),
            }),
            Method::PublishComment => Call::PublishComment(action()),
            Method::RetractComment => Call::RetractComment(action()),
            Method::UpdateDonor => Call::UpdateDonor(api::UpdateDonorRequest {
                context: context(kind),
                donation_id: 1,
                donor: donation(ev::PaymentMethod::BankTransfer, 1_000).donor,
            }),
            Method::MarkExported => Call::MarkExported(api::MarkExportedRequest {
                context: context(kind),
                donation_ids: vec![1],
                batch_id: "b-1".into(),
            }),
            Method::RecordContributionTracking => {
                Call::RecordContributionTracking(api::RecordContributionTrackingRequest {
                    context: context(kind),
                    contribution_tracking_id: 1,
                    allocation_token: "t1".into(),
                    fields: None,
                })
            }
            Method::LinkContribution => Call::LinkContribution(api::LinkContributionRequest {
                context: context(kind),
                contribution_tracking_id: 1,
                contribution_id: 1,
            }),
            Method::NextId => Call::NextId(api::NextIdRequest {
                context: context(kind),
                sequence: "donation".into(),
                count: 1,
            }),
            Method::GetDonation => Call::GetDonation(api::GetDonationRequest { donation_id: 1 }),
            Method::GetHistory => Call::GetHistory(api::GetHistoryRequest { donation_id: 1 }),
            Method::ApplyForMembership => {
                let mut apply = membership(ev::PaymentMethod::DirectDebit, 1_000, 1);
                apply.context = context(kind);
                Call::ApplyForMembership(apply)
            }
            Method::CancelMembership => Call::CancelMembership(membership_action()),
            Method::RestoreMembership => Call::RestoreMembership(membership_action()),
            Method::FlagMembership => Call::FlagMembership(membership_action()),
            Method::ApproveMembership => Call::ApproveMembership(membership_action()),
            Method::MarkMembershipsExported => {
                Call::MarkMembershipsExported(api::MarkMembershipsExportedRequest {
                    context: context(kind),
                    membership_ids: vec![1],
                    batch_id: "m-1".into(),
                })
            }
            Method::GetMembership => {
                Call::GetMembership(api::GetMembershipRequest { membership_id: 1 })
            }
            Method::GetMembershipHistory => {
                Call::GetMembershipHistory(api::GetMembershipHistoryRequest { membership_id: 1 })
            }
            Method::GetAddressChange => Call::GetAddressChange(api::GetAddressChangeRequest {
                identifier: UNKNOWN_TOKEN.into(),
            }),
            Method::ChangeAddress => Call::ChangeAddress(api::ChangeAddressRequest {
                context: context(kind),
                identifier: UNKNOWN_TOKEN.into(),
                address: Some(new_address()),
                donation_receipt_opt_out: false,
            }),
            Method::MarkAddressChangesExported => {
                Call::MarkAddressChangesExported(api::MarkAddressChangesExportedRequest {
                    context: context(kind),
                    address_change_ids: vec![1],
                    batch_id: "a-1".into(),
                })
            }
            Method::Subscribe => {
                let mut subscribe = subscribe_request("call@example.org");
                subscribe.context = context(kind);
                Call::Subscribe(subscribe)
            }
            Method::ConfirmSubscription => {
                Call::ConfirmSubscription(api::ConfirmSubscriptionRequest {
                    context: context(kind),
                    confirmation_code: UNKNOWN_CODE.into(),
                })
            }
            Method::MarkSubscriptionsExported => {
                Call::MarkSubscriptionsExported(api::MarkSubscriptionsExportedRequest {
                    context: context(kind),
                    subscription_ids: vec![1],
                    batch_id: "s-1".into(),
                })
            }
            Method::GetSubscription => {
                Call::GetSubscription(api::GetSubscriptionRequest { subscription_id: 1 })
            }
            Method::RemoveSubscription => {
                Call::RemoveSubscription(api::RemoveSubscriptionRequest {
                    context: context(kind),
                    subscription_id: 1,
                })
            }
        }
    }

    /// One well-formed call of every mutating method (see [`Call::of`]).
    pub fn every_mutating(kind: api::ActorKind) -> Vec<Call> {
        Method::ALL
            .iter()
            .filter(|m| m.is_mutating())
            .map(|m| Call::of(*m, kind))
            .collect()
    }
}
