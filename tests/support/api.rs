//! Spawns the real gRPC intake on port 0 with a temporary data directory, and builds requests.
use std::sync::Arc;

use ledger::api::auth::{token_hash, Authenticator, TokenFile};
use ledger::api::{Application, Settings};
use ledger::domain::policy::ModerationPolicy;
use ledger::metrics::Metrics;
use ledger::proto::api::{self, ledger_client::LedgerClient};
use ledger::proto::events as ev;
use ledger::store::{Direction, EventLog, RecordedEvent, StreamStart};
use tonic::transport::Channel;
use tonic::Request;

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
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_tests(dir.path(), authenticator());
    settings.policy = ModerationPolicy {
        deny_words: vec!["badword".into()],
        blocked_emails: vec!["blocked@example.org".into()],
        ..ModerationPolicy::default()
    };
    configure(&mut settings);
    let metrics = settings.metrics.clone();
    let app = Application::build(settings).await.unwrap();
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
        dir,
        port,
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
