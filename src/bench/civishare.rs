//! The CiviShare part of `ledger bench`: two `ledger serve` processes of this binary on
//! loopback, peered both ways under a shared secret, each on its own fresh data directory.
//! Donations are taken by node A's intake over gRPC; node B receives them as signed
//! `ledger.change.donation.created` messages and applies each through its own intake.
//!
//! Two runs: a paced one (one donation every 20 ms) for the end-to-end latency from A's append
//! to B's append of its copy, both read from the logs' `recorded_at` afterwards (one machine,
//! one clock), and a burst from 16 clients for the delivery rate: changes applied on B per
//! second, from the first `AddDonation` to the last change applied. Both servers share the
//! machine with the clients, so the figures are a lower bound.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::grpc_client::GrpcClient;
use super::intake::add_donation_request;
use crate::config::StorageArgs;
use crate::proto::api as pb;
use crate::proto::events as ev;

/// Donations sent one every [`PACE`] for the latency run, at most.
const PACED_CHANGES: usize = 200;
/// The pace of the latency run.
const PACE: Duration = Duration::from_millis(20);
/// Concurrent clients of the burst.
const BURST_CLIENTS: usize = 16;
/// How long B may take to apply everything before the part gives up.
const DEADLINE: Duration = Duration::from_secs(600);

/// What the CiviShare part measured.
#[derive(Debug, Clone)]
pub struct CivishareFigures {
    /// Changes of the burst applied on B.
    pub burst_changes: usize,
    /// From the burst's first call to its last change applied on B.
    pub burst_elapsed: Duration,
    /// Append-to-applied latencies of the paced run, sorted.
    pub paced_latencies: Vec<Duration>,
    /// Append-to-applied latencies of the burst, sorted.
    pub burst_latencies: Vec<Duration>,
}

impl CivishareFigures {
    /// Changes delivered and applied per second in the burst.
    pub fn changes_per_second(&self) -> f64 {
        self.burst_changes as f64 / self.burst_elapsed.as_secs_f64()
    }
}

/// The `p`-quantile of sorted `latencies` (zero when empty).
pub fn quantile(latencies: &[Duration], p: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]
}

/// One `ledger serve` of this binary.
struct Node {
    dir: PathBuf,
    grpc: u16,
    http: u16,
    child: Option<tokio::process::Child>,
}

impl Node {
    fn new(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            grpc: free_port()?,
            http: free_port()?,
            child: None,
        })
    }

    /// The node's name: its base URL, by the convention of `docs/civishare.md`.
    fn name(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn endpoint(&self) -> String {
        format!("{}{}", self.name(), crate::civishare::MESSAGES_PATH)
    }

    /// Runs `ledger --data-dir <dir> <args>` to its end.
    async fn ledger(&self, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
        let out = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("LEDGER_READ_MODEL_URL")
            .env_remove("LEDGER_EVENT_LOG_URL")
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "ledger {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Starts `serve` and waits until its HTTP port answers `/healthz`.
    async fn start(&mut self) -> anyhow::Result<()> {
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.grpc),
                "--metrics-listen",
                &format!("127.0.0.1:{}", self.http),
                "--kurrentdb-listen",
                "off",
                "--scrub-interval-minutes",
                "0",
            ])
            .env("LEDGER_DATA_DIR", &self.dir)
            .env_remove("LEDGER_READ_MODEL_URL")
            .env_remove("LEDGER_EVENT_LOG_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting a CiviShare bench node")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !healthy(self.http).await {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the bench node on port {} did not answer /healthz within 60 s",
                self.http
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Kills the server and waits for it (what it acknowledged is durable).
    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// `recorded_at` of every `DonationCreated` in the node's log, by donation id.
    async fn creations(&self) -> anyhow::Result<HashMap<u64, chrono::DateTime<chrono::Utc>>> {
        let log = StorageArgs::in_dir(&self.dir).open_event_log().await?;
        let mut out = HashMap::new();
        let mut from = 0;
        loop {
            let events = log.read_all(from, 10_000).await?;
            let Some(last) = events.last() else {
                return Ok(out);
            };
            from = last.position + 1;
            for e in &events {
                if e.event_type.starts_with("DonationCreated.") {
                    if let Some((_, id)) = crate::domain::streams::parse(&e.stream) {
                        out.insert(id, e.recorded_at);
                    }
                }
            }
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether `GET /healthz` on the port answers 200.
async fn healthy(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200")
}

/// B's inbox, read-only: (A's donation id, B's copy) of every applied change.
async fn applied(inbox: &SqlitePool) -> anyhow::Result<Vec<(u64, u64)>> {
    let rows = sqlx::query(
        "SELECT entity_reference, local_reference FROM civishare_inbox \
         WHERE status = 'applied' AND change_type = 'ledger.change.donation.created'",
    )
    .fetch_all(inbox)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let theirs: String = r.get(0);
            let ours: Option<String> = r.get(1);
            Some((theirs.parse().ok()?, ours?.parse().ok()?))
        })
        .collect())
}

/// Waits until B applied `count` creations in all.
async fn wait_applied(inbox: &SqlitePool, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM civishare_inbox \
             WHERE status = 'applied' AND change_type = 'ledger.change.donation.created'",
        )
        .fetch_one(inbox)
        .await?;
        if usize::try_from(n).unwrap_or(0) >= count {
            return Ok(());
        }
        let refused: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM civishare_inbox WHERE status <> 'applied'")
                .fetch_one(inbox)
                .await?;
        anyhow::ensure!(refused == 0, "node B refused or ignored {refused} changes");
        anyhow::ensure!(
            Instant::now() < deadline,
            "node B applied {n} of {count} changes within {} s",
            DEADLINE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A PayPal donation (a direct debit's IBAN stays on the node that took it, so the peer
/// refuses those): the intake bench's request `i` with its method switched.
fn paypal_donation(i: usize) -> pb::AddDonationRequest {
    let mut request = add_donation_request(2 * i + 1);
    if let Some(p) = request.payment.as_mut() {
        p.method = ev::PaymentMethod::Paypal as i32;
        p.iban.clear();
    }
    request
}

/// Runs the part in `dir` with a burst of `changes` donations.
pub async fn civishare_rates(dir: &Path, changes: usize) -> anyhow::Result<CivishareFigures> {
    let mut a = Node::new(dir.join("civishare-a"))?;
    let mut b = Node::new(dir.join("civishare-b"))?;
    let secret = crate::civishare::peers::generate_secret();
    for (node, other) in [(&a, &b), (&b, &a)] {
        node.ledger(&["peer", "node", "--name", &node.name()], &[])
            .await?;
        node.ledger(
            &[
                "peer",
                "add",
                "--node",
                &other.name(),
                "--url",
                &other.endpoint(),
            ],
            &[("LEDGER_PEER_SECRET", secret.as_str())],
        )
        .await?;
    }
    a.start().await?;
    b.start().await?;
    let result = measure(&a, &b, changes).await;
    a.stop().await?;
    b.stop().await?;
    let (burst_changes, burst_elapsed, paced, burst) = result?;
    let (sent, received) = (a.creations().await?, b.creations().await?);
    let latencies = |pairs: &[(u64, u64)]| -> anyhow::Result<Vec<Duration>> {
        let mut out = Vec::with_capacity(pairs.len());
        for (theirs, ours) in pairs {
            let (Some(at_a), Some(at_b)) = (sent.get(theirs), received.get(ours)) else {
                anyhow::bail!("donation {theirs} (B's {ours}) is missing from a log");
            };
            out.push((*at_b - *at_a).to_std().unwrap_or_default());
        }
        out.sort_unstable();
        Ok(out)
    };
    Ok(CivishareFigures {
        burst_changes,
        burst_elapsed,
        paced_latencies: latencies(&paced)?,
        burst_latencies: latencies(&burst)?,
    })
}

type Pairs = Vec<(u64, u64)>;

/// The two runs against running nodes: the burst's size and time, and the (A, B) id pairs of
/// each run.
async fn measure(
    a: &Node,
    b: &Node,
    changes: usize,
) -> anyhow::Result<(usize, Duration, Pairs, Pairs)> {
    let token = std::fs::read_to_string(a.dir.join("admin.token"))
        .context("reading node A's admin token")?;
    let authorization = format!("Bearer {}", token.trim());
    let addr = format!("127.0.0.1:{}", a.grpc);
    let inbox = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(b.dir.join("civishare.sqlite"))
            .read_only(true),
    )
    .await
    .context("opening node B's CiviShare database")?;

    let paced = (changes / 10).clamp(1, PACED_CHANGES);
    let mut client = GrpcClient::connect(&addr, &authorization).await?;
    let mut tick = tokio::time::interval(PACE);
    for i in 0..paced {
        tick.tick().await;
        let _: pb::AddDonationResponse = client
            .unary("/ledger.api.v1.Ledger/AddDonation", &paypal_donation(i))
            .await
            .context("AddDonation on node A")?;
    }
    wait_applied(&inbox, paced).await?;
    let paced_pairs = applied(&inbox).await?;

    let clients = BURST_CLIENTS.min(changes).max(1);
    let per_client = changes.div_ceil(clients);
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        connected.push(GrpcClient::connect(&addr, &authorization).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = connected
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            tokio::spawn(async move {
                for i in 0..per_client {
                    let _: pb::AddDonationResponse = client
                        .unary(
                            "/ledger.api.v1.Ledger/AddDonation",
                            &paypal_donation(paced + c * per_client + i),
                        )
                        .await
                        .context("AddDonation on node A")?;
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let burst = per_client * clients;
    wait_applied(&inbox, paced + burst).await?;
    let elapsed = started.elapsed();
    let burst_pairs: Pairs = applied(&inbox)
        .await?
        .into_iter()
        .filter(|pair| !paced_pairs.contains(pair))
        .collect();
    inbox.close().await;
    Ok((burst, elapsed, paced_pairs, burst_pairs))
}
