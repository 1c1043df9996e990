//! The intake part of `ledger bench`: `AddDonation` over gRPC from concurrent clients
//! against the real server running in this process.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;

use super::grpc_client::GrpcClient;
use crate::api::auth::{Authenticator, Scope};
use crate::api::{Application, Settings};
use crate::proto::api as pb;
use crate::proto::events as ev;

/// The bearer token of the bench's intake client.
pub(super) const INTAKE_TOKEN: &str = "bench-token";

/// What the intake bench measured: the calls and their latencies.
#[derive(Debug, Clone, Copy)]
pub struct IntakeFigures {
    /// Calls measured.
    pub calls: usize,
    /// Wall time of all calls.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The slowest call.
    pub max: Duration,
}

impl IntakeFigures {
    /// Calls per second.
    pub fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the real gRPC server in-process (port 0, a fresh data directory `data_dir`, durable
/// embedded stores as in production) and sends it about `calls` `AddDonation` calls from
/// `clients` concurrent clients, each on its own HTTP/2 connection, connected and warmed up
/// before the clock starts. Client and server share the machine, so the figures are a lower
/// bound; the clients are the lean `grpc_client::GrpcClient` (one socket write per call) so
/// that they take as little of it as they can.
pub async fn intake_rate(
    data_dir: &Path,
    calls: usize,
    clients: usize,
) -> anyhow::Result<IntakeFigures> {
    let clients = clients.max(1);
    let auth = Authenticator::default().with_token("bench", INTAKE_TOKEN, [Scope::All].into());
    let server = InProcessServer::start(data_dir, auth).await?;
    let addr = server.addr.clone();

    // Connections, first id blocks and SQLite caches are warmed up outside the clock.
    let warm: Vec<_> = (0..clients)
        .map(|c| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut client =
                    GrpcClient::connect(&addr, &format!("Bearer {INTAKE_TOKEN}")).await?;
                for i in 0..2 {
                    add_donation(&mut client, c * 2 + i).await?;
                }
                Ok::<_, anyhow::Error>(client)
            })
        })
        .collect();
    let mut connected = Vec::with_capacity(clients);
    for w in warm {
        connected.push(w.await??);
    }

    let per_client = calls.div_ceil(clients).max(1);
    let started = Instant::now();
    let tasks: Vec<_> = connected
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let t = Instant::now();
                    add_donation(&mut client, c * per_client + i).await?;
                    latencies.push(t.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(per_client * clients);
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    server.stop().await?;

    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok(IntakeFigures {
        calls: latencies.len(),
        elapsed,
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: *latencies.last().expect("at least one call"),
    })
}

/// The real gRPC server, running in this process on a free port until stopped.
pub(super) struct InProcessServer {
    /// `127.0.0.1:<port>`.
    pub(super) addr: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessServer {
    /// Builds the application on fresh stores in `data_dir` (durable, as in production) with
    /// `auth`, and starts serving.
    pub(super) async fn start(data_dir: &Path, auth: Authenticator) -> anyhow::Result<Self> {
        let app = Application::build(Settings::for_tests(data_dir, auth)).await?;
        let addr = format!("127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, task })
    }

    /// Asks the server to stop and waits for it to drain (at most 30 s).
    pub(super) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(joined) => joined?,
            Err(_) => {
                tracing::warn!("the bench's gRPC server did not stop within 30 s");
                Ok(())
            }
        }
    }
}

/// Sends the `i`-th `AddDonation` request of the intake bench.
pub(super) async fn add_donation(
    client: &mut GrpcClient,
    i: usize,
) -> anyhow::Result<pb::AddDonationResponse> {
    client
        .unary(
            "/ledger.api.v1.Ledger/AddDonation",
            &add_donation_request(i),
        )
        .await
        .context("AddDonation")
}

/// The `i`-th `AddDonation` request of the intake bench: half direct debit (with IBAN), half
/// PayPal, a person with a full address.
pub fn add_donation_request(i: usize) -> pb::AddDonationRequest {
    let direct_debit = i.is_multiple_of(2);
    let method = if direct_debit {
        ev::PaymentMethod::DirectDebit
    } else {
        ev::PaymentMethod::Paypal
    };
    pb::AddDonationRequest {
        context: Some(pb::RequestContext {
            request_id: format!("bench-{}", Uuid::now_v7()),
            actor: Some(pb::Actor {
                kind: pb::ActorKind::Frontend as i32,
                id: "bench".into(),
            }),
            source: "bench".into(),
        }),
        donor: Some(pb::DonorInput {
            kind: ev::DonorKind::Person as i32,
            salutation: "Frau".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            street: "Analytical Street 1".into(),
            postcode: "10963".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            email: "ada@example.org".into(),
            ..Default::default()
        }),
        payment: Some(pb::PaymentInput {
            method: method as i32,
            amount_cents: 2_500,
            currency: "EUR".into(),
            interval_months: 0,
            iban: if direct_debit {
                "DE02120300000000202051".into()
            } else {
                String::new()
            },
            bic: String::new(),
        }),
        tracking: Some(pb::TrackingInput {
            campaign: "bench".into(),
            ..Default::default()
        }),
        comment: None,
        donation_id: 0,
    }
}
