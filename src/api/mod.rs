//! The gRPC intake: translation between the `ledger.api.v1` messages and the ledger's intake
//! commands, authentication, error mapping, and the server harness (`Application`). The
//! service (`service.rs`) answers each call from its command family's file (`donation.rs`,
//! `payment.rs`, …), which maps messages straight to domain types.
mod address_change;
pub mod auth;
pub mod codec;
mod comment;
mod context;
mod contribution_tracking;
mod deletion;
mod donation;
pub mod error;
mod export;
mod history;
mod membership;
mod moderation;
mod next_id;
mod payment;
pub mod peering;
pub mod reflection;
pub mod refusal;
pub mod service;
mod subscription;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::civishare::CivishareStore;
use crate::config::StorageArgs;
use crate::domain::policy::ModerationPolicy;
use crate::intake::{ids::DEFAULT_BLOCK, sequence_check, Clock, Intake};
use crate::metrics::Metrics;
use crate::proto::api::ledger_server::LedgerServer;
use crate::proto::api::peering_server::PeeringServer;
use auth::Authenticator;
use peering::PeeringService;
use service::LedgerService;

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

/// The TLS configuration of a gRPC server from its files. Installs the process's TLS crypto
/// provider first: with two providers compiled in (the KurrentDB client crate brings a second),
/// rustls cannot pick one itself.
pub fn tls_config(files: &TlsFiles) -> anyhow::Result<ServerTlsConfig> {
    install_crypto_provider();
    let cert =
        std::fs::read(&files.cert).with_context(|| format!("reading {}", files.cert.display()))?;
    let key =
        std::fs::read(&files.key).with_context(|| format!("reading {}", files.key.display()))?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// The TLS configuration of an HTTP server (the HTTP port's HTTPS) from the same files,
/// offering HTTP/2 and HTTP/1.1.
pub fn rustls_server_config(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    install_crypto_provider();
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading a private key from {}", files.key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not make a server identity")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Makes `ring` the process's TLS crypto provider, once; later calls change nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What the gRPC intake needs to start.
pub struct Settings {
    /// Where the stores live.
    pub storage: StorageArgs,
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Serve TLS with these files; plain HTTP/2 when `None`.
    pub tls: Option<TlsFiles>,
    /// The admitted clients.
    pub auth: Authenticator,
    /// What raises moderation reasons.
    pub policy: ModerationPolicy,
    /// The metrics registry.
    pub metrics: Metrics,
    /// Ids reserved per sequence-generator call.
    pub id_block: u64,
    /// Where the intake takes the time from: the system clock, except in tests that need
    /// donations older than the test run.
    pub clock: Clock,
}

impl Settings {
    /// The embedded default in `data_dir` on `127.0.0.1:0`, with these clients.
    pub fn for_tests(data_dir: impl Into<PathBuf>, auth: Authenticator) -> Self {
        Self {
            storage: StorageArgs::in_dir(data_dir),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            auth,
            policy: ModerationPolicy::default(),
            metrics: Metrics::new(),
            id_block: DEFAULT_BLOCK,
            clock: Clock::System,
        }
    }
}

/// The gRPC intake with its listener bound.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    intake: Arc<Intake>,
    service: LedgerService,
    peering: PeeringService,
    civishare: CivishareStore,
    tls: Option<ServerTlsConfig>,
}

impl Application {
    /// Opens the stores, checks the sequences against the log, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let log = settings
            .storage
            .open_event_log()
            .await
            .context("opening the event log")?;
        let vault = settings
            .storage
            .open_vault()
            .await
            .context("opening the key store")?;
        let sequences = settings
            .storage
            .open_sequences()
            .await
            .context("connecting the sequence generator")?;
        // A sequence behind the log is logged loudly; the intake still starts, since ids it
        // takes from a stale sequence are refused by the log (`NoStream` on new streams).
        sequence_check::check_sequences(log.as_ref(), sequences.as_ref())
            .await
            .context("checking the sequences against the log")?;
        let intake = Arc::new(
            Intake::new(
                log,
                vault,
                sequences,
                settings.policy,
                settings.metrics.clone(),
                settings.id_block,
            )
            .with_clock(settings.clock),
        );
        let tls = settings.tls.as_ref().map(tls_config).transpose()?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let address = listener.local_addr()?;
        let civishare = CivishareStore::open_in(&settings.storage.data_dir)
            .await
            .context("opening the CiviShare store")?;
        let auth = Arc::new(settings.auth);
        let service = LedgerService::new(intake.clone(), auth.clone(), settings.metrics.clone());
        let peering = PeeringService::new(
            civishare.clone(),
            intake.vault().keys().clone(),
            auth,
            settings.metrics,
            service.refusals().clone(),
        );
        Ok(Self {
            listener,
            address,
            intake,
            service,
            peering,
            civishare,
            tls,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The refusals the intake answered recently (for the status console).
    pub fn refusals(&self) -> refusal::RecentRefusals {
        self.service.refusals().clone()
    }

    /// The intake behind the service (tests read its log).
    pub fn intake(&self) -> &Arc<Intake> {
        &self.intake
    }

    /// The CiviShare store of the data directory (peerings, queue, inbox).
    pub fn civishare(&self) -> &CivishareStore {
        &self.civishare
    }

    /// Serves the ledger, health and reflection until `shutdown` resolves, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<LedgerServer<LedgerService>>()
            .await;
        let catalog = Arc::new(reflection::Catalog::ledger().context("building reflection")?);
        let mut builder = Server::builder();
        let tls = if let Some(tls) = self.tls {
            builder = builder.tls_config(tls).context("configuring TLS")?;
            "on"
        } else {
            "off"
        };
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        tracing::info!(address = %self.address, tls = %tls, "gRPC intake listening");
        builder
            .add_service(health)
            .add_service(reflection::ReflectionV1::new(catalog.clone()).into_server())
            .add_service(reflection::ReflectionV1Alpha::new(catalog).into_server())
            .add_service(LedgerServer::new(self.service))
            .add_service(PeeringServer::new(self.peering))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .context("serving gRPC")?;
        tracing::info!("gRPC intake stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
