//! The status console: an operator's view of a running `ledger serve`, on the HTTP port that
//! serves `/metrics`. Server-rendered HTML with one small script for the live chart; no
//! front-end build step.
//!
//! * `/` — the overview: projector checkpoints and lag with a live chart of lag and
//!   throughput, read-model rows by each independent state, the scrub backlog, sequence
//!   health, recent refusals, KurrentDB-port subscriptions.
//! * `/donations/{id}` — a donation's history timeline (who, when, what); personal data only
//!   for a token that holds `donations:read`.
//! * `/console/status.json` — the overview's figures, polled by the page.
//! * `/login`, `/logout` — sessions from a client token with `audit:read` (`session.rs`).
//!
//! Layout: `session.rs` (who may look), `status.rs` (the figures), `pages.rs` (the HTML),
//! `console.js` and `console.css` (embedded assets).

mod pages;
mod session;
mod status;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::api::auth::{Authenticator, Principal, Scope};
use crate::api::refusal::RecentRefusals;
use crate::civishare::CivishareStore;
use crate::intake::Intake;
use crate::metrics::Metrics;
use crate::projection::ReadModel;
pub use session::Sessions;
use session::{clear_cookie, set_cookie, Denied};
pub use status::Status;

/// What the console reads, shared by every request.
pub struct Console {
    intake: Arc<Intake>,
    read_model_url: String,
    read_model: OnceCell<ReadModel>,
    metrics: Metrics,
    auth: Arc<Authenticator>,
    refusals: RecentRefusals,
    sessions: Sessions,
    secure_cookies: bool,
    civishare: CivishareStore,
}

impl Console {
    /// A console over a serving ledger's parts. `secure_cookies` when the port serves HTTPS.
    pub fn new(
        intake: Arc<Intake>,
        read_model_url: String,
        metrics: Metrics,
        auth: Arc<Authenticator>,
        refusals: RecentRefusals,
        secure_cookies: bool,
        civishare: CivishareStore,
    ) -> Self {
        Self {
            intake,
            read_model_url,
            read_model: OnceCell::new(),
            metrics,
            auth,
            refusals,
            sessions: Sessions::default(),
            secure_cookies,
            civishare,
        }
    }

    /// The read model, connected on first use (PostgreSQL and MariaDB connect lazily, so this
    /// succeeds while they are down; the queries then fail and the page says so).
    async fn read_model(&self) -> Result<&ReadModel, String> {
        self.read_model
            .get_or_try_init(|| ReadModel::connect(&self.read_model_url))
            .await
            .map_err(|e| e.to_string())
    }

    /// The console's routes, to be merged into the HTTP port's router.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(overview))
            .route("/login", get(sign_in_form).post(sign_in))
            .route("/logout", post(sign_out))
            .route("/console/status.json", get(status_json))
            .route("/console/donation", get(lookup))
            .route("/donations/{id}", get(donation))
            .route("/console/console.js", get(script))
            .route("/console/console.css", get(stylesheet))
            .with_state(self)
    }

    fn viewer(&self, headers: &HeaderMap) -> Result<Principal, Denied> {
        self.sessions.viewer(&self.auth, headers)
    }
}

type Shared = State<Arc<Console>>;

/// Headers every console answer carries: no caching of what may hold personal data, no
/// framing, scripts and styles from the console itself only.
fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The answer to a request that may not see the page.
fn denied(why: Denied) -> Response {
    match why {
        Denied::SignIn => Redirect::to("/login").into_response(),
        Denied::Scope(scope) => page(
            StatusCode::FORBIDDEN,
            pages::message(
                None,
                "Not allowed",
                &format!("Your token lacks the {scope} scope the console needs."),
            ),
        ),
    }
}

async fn overview(State(console): Shared, headers: HeaderMap) -> Response {
    let viewer = match console.viewer(&headers) {
        Ok(v) => v,
        Err(why) => return denied(why),
    };
    let status = console.status().await;
    page(StatusCode::OK, pages::overview(&viewer.name, &status))
}

async fn status_json(State(console): Shared, headers: HeaderMap) -> Response {
    match console.viewer(&headers) {
        Ok(_) => {
            let mut response = Json(console.status().await).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(Denied::SignIn) => StatusCode::UNAUTHORIZED.into_response(),
        Err(Denied::Scope(_)) => StatusCode::FORBIDDEN.into_response(),
    }
}

async fn sign_in_form() -> Response {
    page(StatusCode::OK, pages::sign_in(None))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn sign_in(State(console): Shared, Form(form): Form<SignIn>) -> Response {
    match console.sessions.open(&console.auth, &form.token) {
        Ok(id) => {
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = HeaderValue::from_str(&set_cookie(&id, console.secure_cookies)) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(Denied::SignIn) => {
            tracing::warn!("console: sign-in with an unknown token refused");
            page(
                StatusCode::UNAUTHORIZED,
                pages::sign_in(Some("Unknown token.")),
            )
        }
        Err(Denied::Scope(scope)) => page(
            StatusCode::FORBIDDEN,
            pages::sign_in(Some(&format!(
                "This token lacks the {scope} scope the console needs."
            ))),
        ),
    }
}

async fn sign_out(State(console): Shared, headers: HeaderMap) -> Response {
    console.sessions.close(&headers);
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear_cookie()).expect("static cookie"),
    );
    response
}

#[derive(Deserialize)]
struct Lookup {
    id: String,
}

async fn lookup(State(console): Shared, headers: HeaderMap, Query(q): Query<Lookup>) -> Response {
    let viewer = match console.viewer(&headers) {
        Ok(v) => v,
        Err(why) => return denied(why),
    };
    match q.id.trim().parse::<u64>() {
        Ok(id) if id > 0 => Redirect::to(&format!("/donations/{id}")).into_response(),
        _ => page(
            StatusCode::BAD_REQUEST,
            pages::message(
                Some(&viewer.name),
                "Not a donation id",
                &format!(
                    "id: must be a whole number above 0, not {:?}",
                    crate::telemetry::excerpt(&q.id)
                ),
            ),
        ),
    }
}

async fn donation(State(console): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let viewer = match console.viewer(&headers) {
        Ok(v) => v,
        Err(why) => return denied(why),
    };
    let Ok(donation_id) = id.parse::<u64>() else {
        return page(
            StatusCode::BAD_REQUEST,
            pages::message(
                Some(&viewer.name),
                "Not a donation id",
                "id: must be a whole number above 0",
            ),
        );
    };
    let personal = viewer.grants(Scope::DonationsRead);
    let log = console.intake.log();
    let steps = if personal {
        crate::audit::load_donation(&**log, console.intake.vault(), donation_id).await
    } else {
        crate::audit::load_donation_sealed(&**log, donation_id).await
    };
    match steps {
        Ok(steps) => {
            tracing::info!(
                client = %viewer.name,
                donation_id,
                personal,
                "console: donation history viewed"
            );
            page(
                StatusCode::OK,
                pages::donation(
                    &viewer.name,
                    donation_id,
                    &crate::audit::timeline(&steps),
                    personal,
                ),
            )
        }
        Err(crate::audit::AuditError::NotFound(_)) => page(
            StatusCode::NOT_FOUND,
            pages::message(
                Some(&viewer.name),
                "Not found",
                &format!("Donation {donation_id} is not in the ledger."),
            ),
        ),
        Err(e) => {
            tracing::error!(donation_id, error = %e, "console: history could not be read");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message(
                    Some(&viewer.name),
                    "History unavailable",
                    "The history could not be read; the ledger logged the cause.",
                ),
            )
        }
    }
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("console.js"))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("console.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
