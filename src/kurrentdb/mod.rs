//! The KurrentDB (EventStoreDB) client protocol, v1, served over the ledger's embedded log on a
//! port of its own (`ledger serve --kurrentdb-listen`), so that any KurrentDB client — in PHP,
//! Python, Node, .NET, Java, Go or Rust — can append to, read and subscribe to the ledger.
//!
//! - protocol v2 `StreamsService.AppendSession`: KurrentDB 25.1's multi-stream atomic append
//!   (`append_session.rs`), which the KurrentDB log backend writes through;
//! - `Streams`: `Append`, `BatchAppend`, `Read` (reads and catch-up subscriptions), `Delete`
//!   (soft) and `Tombstone` (`service.rs`, `write.rs`, `read.rs`);
//! - `ServerFeatures.GetSupportedMethods`, `Gossip.Read` as a single alive leader, and
//!   `PersistentSubscriptions.List` as a server with none (`cluster.rs`);
//! - the standard system projections' streams `$ce-{category}` and `$et-{type}`, computed from
//!   the log (`system_streams.rs`);
//! - every other service and method answers UNIMPLEMENTED.
//!
//! Same log, same guarantees: appends go through the embedded log's writer (durable before
//! acknowledged, idempotent by event id, expected revisions), positions are the log's, and the
//! ledger's own events read back with their type, protobuf payload and envelope metadata as
//! JSON — personal data as the sealed bytes the log holds. Access: `access.rs`. The requests a
//! raw client sends, for the bench and the tests: `requests.rs`.

pub mod access;
pub mod acl;
pub mod append_session;
mod cluster;
pub mod convert;
pub mod errors;
pub mod filter;
pub mod read;
pub mod requests;
mod service;
pub mod stream_state;
pub mod system_streams;
pub mod write;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use uuid::Uuid;

use crate::api::TlsFiles;
use crate::metrics::Metrics;
use crate::store::EventLog;
use access::Users;
use errors::Refusal;

/// The KurrentDB version the port reports: the protocol level it answers as.
pub const SERVER_VERSION: &str = "25.0.0";

/// What the KurrentDB port needs to start.
pub struct Settings {
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Serve TLS with these files; plain HTTP/2 (h2c) when `None`.
    pub tls: Option<TlsFiles>,
    /// Who may do what.
    pub users: Users,
    /// The host name `Gossip.Read` advertises; by default `localhost` on a loopback address,
    /// else the listen address.
    pub advertise_host: Option<String>,
}

/// The subscribers' lag, per subscription, with the largest one as a gauge.
#[derive(Default)]
pub struct LagBoard {
    lags: Mutex<HashMap<Uuid, u64>>,
}

impl LagBoard {
    fn set(&self, id: Uuid, lag: u64, metrics: &Metrics) {
        let mut lags = self.lags.lock().expect("lag board lock");
        lags.insert(id, lag);
        Self::publish(&lags, metrics);
    }

    fn remove(&self, id: Uuid, metrics: &Metrics) {
        let mut lags = self.lags.lock().expect("lag board lock");
        lags.remove(&id);
        Self::publish(&lags, metrics);
    }

    fn publish(lags: &HashMap<Uuid, u64>, metrics: &Metrics) {
        let max = lags.values().copied().max().unwrap_or(0);
        metrics.gauge("ledger_kurrentdb_subscriber_lag_events", &[], max as f64);
        metrics.gauge("ledger_kurrentdb_subscriptions", &[], lags.len() as f64);
    }
}

/// What every call of the port shares.
pub struct Port {
    log: Arc<dyn EventLog>,
    users: Users,
    metrics: Metrics,
    shutdown: CancellationToken,
    lag: LagBoard,
    advertise: (String, u16),
    instance: Uuid,
    metadata_streams: stream_state::MetadataStreams,
}

/// Removes a subscription from the gauges when it ends, however it ends.
struct LiveSubscription<'a> {
    port: &'a Port,
    id: Uuid,
}

impl Drop for LiveSubscription<'_> {
    fn drop(&mut self) {
        self.port.lag.remove(self.id, &self.port.metrics);
    }
}

impl Port {
    fn called(&self, method: &'static str) {
        self.metrics
            .count("ledger_kurrentdb_calls_total", &[("method", method)], 1);
    }

    fn refused(&self, method: &'static str, refusal: &Refusal) {
        self.metrics.count(
            "ledger_kurrentdb_errors_total",
            &[("method", method), ("error", refusal.label())],
            1,
        );
        match refusal {
            Refusal::Internal(detail) => {
                tracing::error!(method, %detail, "KurrentDB port: the ledger failed")
            }
            other => tracing::info!(method, refusal = ?other, "KurrentDB port: refused"),
        }
    }

    fn sent(&self, events: usize) {
        if events > 0 {
            self.metrics
                .count("ledger_kurrentdb_events_read_total", &[], events as u64);
        }
    }

    fn subscription_started(&self, id: Uuid) -> LiveSubscription<'_> {
        self.lag.set(id, 0, &self.metrics);
        LiveSubscription { port: self, id }
    }
}

/// The KurrentDB port with its listener bound.
pub struct KurrentDbServer {
    listener: TcpListener,
    port: Arc<Port>,
    tls: Option<ServerTlsConfig>,
}

impl KurrentDbServer {
    /// Binds the listener and prepares the services over `log`.
    pub async fn bind(
        settings: Settings,
        log: Arc<dyn EventLog>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let tls = settings
            .tls
            .as_ref()
            .map(crate::api::tls_config)
            .transpose()?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding --kurrentdb-listen {}", settings.listen))?;
        let local = listener.local_addr()?;
        let host = settings.advertise_host.unwrap_or_else(|| {
            if local.ip().is_loopback() {
                "localhost".to_owned()
            } else {
                local.ip().to_string()
            }
        });
        LagBoard::publish(&HashMap::new(), &metrics);
        Ok(Self {
            listener,
            port: Arc::new(Port {
                log: Arc::new(system_streams::SystemStreams::new(log)),
                users: settings.users,
                metrics,
                shutdown,
                lag: LagBoard::default(),
                advertise: (host, local.port()),
                instance: Uuid::new_v4(),
                metadata_streams: stream_state::MetadataStreams::default(),
            }),
            tls,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the shutdown token is cancelled; open subscriptions end then.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let mut builder = Server::builder();
        let mode = if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).context("configuring TLS")?;
            "tls"
        } else {
            "plaintext"
        };
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        tracing::info!(%addr, mode, "KurrentDB port listening");
        let shutdown = self.port.shutdown.clone();
        service::router(builder, self.port)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await
            .context("serving the KurrentDB port")?;
        tracing::info!("KurrentDB port stopped");
        Ok(())
    }
}
