//! The HTTP port of `ledger serve` (`--metrics-listen`): `/metrics` (Prometheus text, figures
//! refreshed at each scrape), `/healthz` (the process answers: 200) and `/readyz` (200 when
//! ready, 503 otherwise, with the reasons as JSON). Other pages (the status console, the
//! CiviShare message endpoint) are merged into [`router`]'s router by the caller. HTTPS when
//! `serve` has the TLS flags (the intake's `--tls-cert`/`--tls-key`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::readiness::Readiness;
use super::tls_listener::TlsListener;
use super::{Metrics, CONTENT_TYPE};

/// The routes `/metrics`, `/healthz` and `/readyz`.
pub fn router(metrics: Metrics, readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, CONTENT_TYPE)],
                        metrics.scrape().await,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    let report = readiness.check().await;
                    let code = if report.ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, axum::Json(report)).into_response()
                }
            }),
        )
}

/// Binds the port (before anything else starts, so a taken address stops `serve` at once).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves `router` on `listener` until `shutdown` resolves: HTTPS with `tls`, else HTTP.
pub fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        match tls {
            Some(config) => {
                axum::serve(TlsListener::new(listener, config)?, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    })
}
