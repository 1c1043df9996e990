//! `ledger bench`: one process, one run, every figure operators size deployments with, and the
//! measuring functions the criterion benches in `benches/` share with it. Each part works on
//! fresh files in a scratch directory (never the live data directory) and, for PostgreSQL, in
//! a throw-away database, with the deterministic workload of [`crate::workload`].
//!
//! Parts, in the order [`run`] measures them:
//! * durable appends at 1 and 64 concurrent writers ([`append_rate`]);
//! * `AddDonation` over gRPC from 64 clients against the real server ([`intake_rate`]);
//! * per read-model database: the projection rebuild ([`rebuild_rate`]) next to the same final
//!   rows inserted raw by the fastest plain method ([`raw_insert`]), scrub selection and (on
//!   SQLite) `verify`;
//! * the process's peak memory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};
use uuid::Uuid;

use crate::api::auth::{Authenticator, Scope};
use crate::api::{Application, Settings};
use crate::privacy::{self, KeyStore, Vault};
use crate::projection::compare::CompareOptions;
use crate::projection::verify::{self, VerifyConfig, VerifyReport};
use crate::projection::{self, ProjectorConfig, ReadModel, RebuildReport, DEFAULT_SCHEMA};
use crate::proto::api as pb;
use crate::proto::events as ev;
use crate::store::sqlite::SqliteEventLog;
use crate::store::{Actor, EventData, EventLog, ExpectedRevision, Metadata, StreamAppend};
use crate::workload::{self, WorkloadConfig};
use grpc_client::GrpcClient;

mod grpc_client;

/// The part of `ledger bench` to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Durable appends at 1 and 64 writers.
    Append,
    /// `AddDonation` over gRPC.
    Intake,
    /// Projection rebuild.
    Projection,
    /// The rebuild's final rows inserted raw, and the rebuild's rate against it.
    Raw,
    /// Scrub candidate selection.
    Scrub,
    /// `verify` of the SQLite read model.
    Verify,
}

/// What [`run`] measures, and how much of it.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Donations in the workload.
    pub donations: usize,
    /// Workload seed.
    pub seed: u64,
    /// The parts to run.
    pub parts: BTreeSet<Part>,
    /// A PostgreSQL server to also measure the read model on: a throw-away database is created
    /// there and dropped afterwards.
    pub postgres_url: Option<SecretString>,
    /// Events appended by the single writer (a sample: one fsync per append).
    pub single_writer_events: usize,
    /// `AddDonation` calls measured.
    pub intake_calls: usize,
    /// Where the scratch directory is created (the system's temporary directory if `None`).
    pub scratch_dir: Option<PathBuf>,
}

/// A figure's target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// At least this value.
    AtLeast(f64),
    /// Less than this value.
    Below(f64),
}

impl Target {
    /// Whether `value` meets the target.
    pub fn is_met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(t) => value >= t,
            Self::Below(t) => value < t,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AtLeast(t) => write!(f, "≥ {}", thousands(*t)),
            Self::Below(t) => write!(f, "< {}", thousands(*t)),
        }
    }
}

/// `value` rounded to an integer, with thousands separated by commas.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// A stable key for scripts (`append_64_writers`, `add_donation_p99`, ...).
    pub key: &'static str,
    /// What was measured, for people.
    pub label: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The target, when there is one.
    pub target: Option<Target>,
    /// Whether the value meets the target.
    pub meets_target: Option<bool>,
    /// Supporting numbers (sizes, other percentiles, phases).
    pub detail: Option<String>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    /// Donations in the workload.
    pub donations: usize,
    /// Events in the workload.
    pub events: usize,
    /// The workload's seed.
    pub seed: u64,
    /// Online CPUs.
    pub cpus: usize,
    /// `/proc/loadavg` when the run started and when it ended (figures on a busy machine
    /// understate what it can do).
    pub load_average: (Option<String>, Option<String>),
    /// Share of the CPUs' time over the run that the hypervisor gave to others (`steal` in
    /// `/proc/stat`), in per cent: on a virtual machine, figures taken while it is high
    /// understate what the ledger does on the same machine when it gets its CPUs.
    pub cpu_steal_percent: Option<f64>,
    /// Wall time of the whole run, in seconds.
    pub seconds: f64,
    /// The figures, in the order measured.
    pub figures: Vec<Figure>,
}

impl BenchReport {
    /// Records a figure.
    pub fn add(
        &mut self,
        key: &'static str,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Option<Target>,
        detail: Option<String>,
    ) {
        let label = label.into();
        tracing::info!(figure = key, value, unit, "measured");
        self.figures.push(Figure {
            key,
            label,
            value,
            unit,
            target,
            meets_target: target.map(|t| t.is_met(value)),
            detail,
        });
    }

    /// A figure's value by key.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.key == key).map(|f| f.value)
    }
}

/// Concurrent writers of the many-writer append, and concurrent gRPC clients of the intake.
pub const CONCURRENCY: usize = 64;

/// At least 50,000 durable appends/s at 64 writers.
pub const APPEND_TARGET: Target = Target::AtLeast(50_000.0);
/// At least 10,000 `AddDonation` calls/s.
pub const INTAKE_RATE_TARGET: Target = Target::AtLeast(10_000.0);
/// `AddDonation` p99 under 25 ms.
pub const INTAKE_P99_TARGET: Target = Target::Below(25.0);
/// The projector at least at half the raw insert rate (events/s ÷ rows/s, in %).
pub const RAW_RATIO_TARGET: Target = Target::AtLeast(50.0);

/// Runs the selected parts and returns their figures. The PostgreSQL database is created
/// first, so an unreachable server fails the run before anything is measured, and dropped
/// last, also after a failure.
pub async fn run(options: BenchOptions) -> anyhow::Result<BenchReport> {
    let postgres = match &options.postgres_url {
        Some(admin) if needs_read_model(&options.parts) => {
            Some(ScratchDatabase::create(admin.expose_secret()).await?)
        }
        _ => None,
    };
    let result = run_parts(&options, postgres.as_ref().map(|db| db.url.as_str())).await;
    if let Some(db) = postgres {
        db.drop_database().await;
    }
    result
}

fn needs_read_model(parts: &BTreeSet<Part>) -> bool {
    [Part::Projection, Part::Raw, Part::Scrub, Part::Verify]
        .iter()
        .any(|p| parts.contains(p))
}

async fn run_parts(options: &BenchOptions, postgres: Option<&str>) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let cpu_at_start = cpu_times();
    let scratch = match &options.scratch_dir {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .context("creating the scratch directory")?;
    let dir = scratch.path();
    let wants = |p: Part| options.parts.contains(&p);
    let mut report = BenchReport {
        donations: options.donations,
        seed: options.seed,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: (load_average(), None),
        ..Default::default()
    };

    let keys = KeyStore::open_sqlite(&dir.join("keys.sqlite")).await?;
    let vault = Vault::new(keys.clone());
    let config = WorkloadConfig {
        donations: options.donations,
        seed: options.seed,
        start: Utc::now() - chrono::Duration::days(30),
    };
    tracing::info!(
        donations = options.donations,
        "generating and sealing the workload"
    );
    let workload = sealed_workload(&config, &keys).await?;
    report.events = workload.events;

    let log = fresh_log(dir, "events.sqlite").await?;
    let needs_read_model = needs_read_model(&options.parts);
    if wants(Part::Append) {
        tracing::info!("measuring appends");
        let sample = first_events(&workload.appends, options.single_writer_events);
        let single = fresh_log(dir, "single.sqlite").await?;
        let rate = append_rate(single, sample.clone(), 1).await?;
        report.add(
            "append_1_writer",
            "append, 1 writer",
            rate,
            "events/s",
            None,
            Some(format!("{} events", count_events(&sample))),
        );
        let rate = append_rate(log.clone(), workload.appends, CONCURRENCY).await?;
        report.add(
            "append_64_writers",
            "append, 64 writers",
            rate,
            "events/s",
            Some(APPEND_TARGET),
            Some(format!("{} events", workload.events)),
        );
    } else if needs_read_model {
        fill_log(log.clone(), workload.appends).await?;
    }

    if wants(Part::Intake) {
        tracing::info!("measuring AddDonation over gRPC");
        let intake = intake_rate(&dir.join("intake"), options.intake_calls, CONCURRENCY).await?;
        let detail = format!(
            "{} calls; p90 {:.2} ms, max {:.2} ms",
            intake.calls,
            millis(intake.p90),
            millis(intake.max)
        );
        report.add(
            "add_donation_rate",
            "AddDonation, 64 clients",
            intake.calls_per_second(),
            "calls/s",
            Some(INTAKE_RATE_TARGET),
            Some(detail),
        );
        report.add(
            "add_donation_p50",
            "AddDonation latency p50",
            millis(intake.p50),
            "ms",
            None,
            None,
        );
        report.add(
            "add_donation_p99",
            "AddDonation latency p99",
            millis(intake.p99),
            "ms",
            Some(INTAKE_P99_TARGET),
            None,
        );
    }

    if needs_read_model {
        let url = format!("sqlite://{}", dir.join("readmodel.sqlite").display());
        measure_read_model(&mut report, &options.parts, log.clone(), &vault, &url, dir).await?;
        if wants(Part::Verify) {
            tracing::info!("measuring verify");
            let started = Instant::now();
            let verified = verify_read_model(log.clone(), &url, &vault).await?;
            report.add(
                "verify_sqlite",
                "verify, SQLite",
                started.elapsed().as_secs_f64(),
                "s",
                None,
                Some(format!(
                    "rebuild {:.1} s, compare {:.1} s, {} events",
                    verified.rebuild_seconds, verified.compare_seconds, verified.rebuilt_events
                )),
            );
        }
        if let Some(url) = postgres {
            measure_read_model(&mut report, &options.parts, log.clone(), &vault, url, dir).await?;
        }
    }

    if let Some(mib) = peak_memory_mib() {
        let detail = format!(
            "whole run, including the {} pre-encoded workload events",
            report.events
        );
        report.add("peak_memory", "peak memory", mib, "MiB", None, Some(detail));
    }
    report.load_average.1 = load_average();
    report.cpu_steal_percent = cpu_at_start
        .zip(cpu_times())
        .and_then(|(start, end)| end.steal_percent_since(&start));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The figure keys and name of one read-model database.
struct DbFigures {
    name: &'static str,
    rebuild: &'static str,
    raw: &'static str,
    ratio: &'static str,
    scrub: &'static str,
    switch: &'static str,
    /// What the switch after a rebuild does in this dialect.
    switch_method: &'static str,
}

const SQLITE_FIGURES: DbFigures = DbFigures {
    name: "SQLite",
    rebuild: "rebuild_sqlite",
    raw: "raw_insert_sqlite",
    ratio: "rebuild_vs_raw_sqlite",
    scrub: "scrub_selection_sqlite",
    switch: "rebuild_switch_sqlite",
    switch_method: "rebuilt rows copied into the live file's tables",
};

const POSTGRES_FIGURES: DbFigures = DbFigures {
    name: "PostgreSQL",
    rebuild: "rebuild_postgres",
    raw: "raw_insert_postgres",
    ratio: "rebuild_vs_raw_postgres",
    scrub: "scrub_selection_postgres",
    switch: "rebuild_switch_postgres",
    switch_method: "schemas renamed",
};

/// Rebuild, raw insert and scrub selection on the read model at `url`.
async fn measure_read_model(
    report: &mut BenchReport,
    parts: &BTreeSet<Part>,
    log: Arc<dyn EventLog>,
    vault: &Vault,
    url: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    let wants = |p: Part| parts.contains(&p);
    let postgres = !url.starts_with("sqlite:");
    let db = if postgres {
        POSTGRES_FIGURES
    } else {
        SQLITE_FIGURES
    };
    tracing::info!(db = db.name, "measuring the projection rebuild");
    let rebuilt = rebuild_rate(log, url, vault.clone()).await?;
    let projector_rate = rebuilt.events as f64 / rebuilt.projection.as_secs_f64();
    if wants(Part::Projection) {
        report.add(
            db.rebuild,
            format!("projection rebuild, {}", db.name),
            projector_rate,
            "events/s",
            None,
            Some(format!(
                "{} events in {:.2} s",
                rebuilt.events,
                rebuilt.projection.as_secs_f64()
            )),
        );
        // Not part of the projector's rate, but of how long an operator's rebuild takes.
        report.add(
            db.switch,
            format!("rebuild switch, {}", db.name),
            rebuilt.switch.as_secs_f64(),
            "s",
            None,
            Some(format!("after the projection: {}", db.switch_method)),
        );
    }
    if wants(Part::Raw) {
        tracing::info!(db = db.name, "measuring the raw insert of the same rows");
        let raw = raw_insert(url, dir).await?;
        let raw_rate = raw.rows as f64 / raw.elapsed.as_secs_f64();
        let method = if postgres {
            "COPY"
        } else {
            "prepared multi-row INSERT"
        };
        report.add(
            db.raw,
            format!("raw insert of the same rows, {}", db.name),
            raw_rate,
            "rows/s",
            None,
            Some(format!(
                "{} rows in {:.2} s, {method}",
                raw.rows,
                raw.elapsed.as_secs_f64()
            )),
        );
        report.add(
            db.ratio,
            format!("rebuild ÷ raw, {}", db.name),
            100.0 * projector_rate / raw_rate,
            "%",
            Some(RAW_RATIO_TARGET),
            Some("projector events/s ÷ raw rows/s".into()),
        );
    }
    if wants(Part::Scrub) {
        let (found, took, runs) = scrub_selection_time(url).await?;
        report.add(
            db.scrub,
            format!("scrub selection, {}", db.name),
            millis(took),
            "ms",
            None,
            Some(format!("median of {runs}, {found} candidates")),
        );
    }
    Ok(())
}

/// The workload's appends, each donation's events sealed with its own key (created in `keys`
/// up front, as the intake would have), ready to append.
pub struct SealedWorkload {
    /// One entry per workload step: its streams' appends, in order.
    pub appends: Vec<Vec<StreamAppend>>,
    /// Events in all.
    pub events: usize,
}

/// Generates the workload and seals it with per-donation keys stored in `keys`.
pub async fn sealed_workload(
    config: &WorkloadConfig,
    keys: &KeyStore,
) -> anyhow::Result<SealedWorkload> {
    let (steps, summary) = workload::generate(config);
    let ids: Vec<u64> = (1..=config.donations as u64).collect();
    let data_keys = keys.create_many(&ids).await?;
    let request = Uuid::now_v7();
    let appends = steps
        .into_iter()
        .map(|step| {
            let mut events: Vec<_> = step.events.iter().map(|e| e.event.clone()).collect();
            if let Some(key) = data_keys.get(&step.donation_id) {
                privacy::seal_with(&mut events, step.donation_id, key);
            }
            step.events
                .into_iter()
                .zip(events)
                .map(|(se, event)| StreamAppend {
                    stream: se.stream,
                    expected: ExpectedRevision::Any,
                    events: vec![EventData {
                        id: Uuid::now_v7(),
                        event_type: event.event_type().to_owned(),
                        payload: event.encode(),
                        metadata: Metadata::new(Actor::system("bench"), "ledger bench", request),
                    }],
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(SealedWorkload {
        appends,
        events: summary.events,
    })
}

fn count_events(appends: &[Vec<StreamAppend>]) -> usize {
    appends.iter().flatten().map(|part| part.events.len()).sum()
}

/// The first steps of `appends` holding about `events` events.
fn first_events(appends: &[Vec<StreamAppend>], events: usize) -> Vec<Vec<StreamAppend>> {
    let mut n = 0;
    appends
        .iter()
        .take_while(|step| {
            let more = n < events;
            n += step.len();
            more
        })
        .cloned()
        .collect()
}

/// Gives each event a fresh time-ordered id as it is sent, as the intake does (`Uuid::now_v7()`
/// when the call is handled): ids made when the workload was generated and then dealt out to
/// many writers would reach the log out of time order, scattering the id index's inserts in a
/// way no frontend does.
fn stamp_ids(events: &mut [EventData]) {
    for e in events {
        e.id = Uuid::now_v7();
    }
}

/// Appends `appends` from `writers` concurrent tasks; returns events/s. Each donation's (and
/// each tracking id's) appends stay with one writer, in order, as causality requires: a booking
/// is only sent after its payment was acknowledged.
pub async fn append_rate(
    log: Arc<dyn EventLog>,
    appends: Vec<Vec<StreamAppend>>,
    writers: usize,
) -> anyhow::Result<f64> {
    let events = count_events(&appends);
    let writers = writers.max(1);
    let mut lanes: Vec<Vec<Vec<StreamAppend>>> = (0..writers).map(|_| Vec::new()).collect();
    for step in appends {
        let key = step.first().map(|p| lane_key(&p.stream)).unwrap_or(0);
        lanes[(key % writers as u64) as usize].push(step);
    }
    let start = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let log = log.clone();
            tokio::spawn(async move {
                for parts in lane {
                    // One stream per append: the single-event appends a frontend makes.
                    for mut part in parts {
                        stamp_ids(&mut part.events);
                        log.append(&part.stream, part.expected, part.events).await?;
                    }
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(events as f64 / start.elapsed().as_secs_f64())
}

/// The donation (or tracking) id that keeps a stream's appends in one lane. Payment ids are
/// the donation id plus a fixed offset in the workload, so they land in the same lane.
fn lane_key(stream: &str) -> u64 {
    use crate::domain::streams::{self, category};
    match streams::parse(stream) {
        Some((category::PAYMENT, id)) => id.wrapping_sub(10_000_000),
        Some((_, id)) => id,
        None => 0,
    }
}

/// Fills `log` with `appends` as the append part writes them (64 writers, each donation's
/// appends in order in one writer), without measuring: the log a projection part reads.
pub async fn fill_log(
    log: Arc<dyn EventLog>,
    appends: Vec<Vec<StreamAppend>>,
) -> anyhow::Result<()> {
    append_rate(log, appends, CONCURRENCY).await.map(|_| ())
}

/// Opens a fresh durable log in `dir`.
pub async fn fresh_log(dir: &Path, name: &str) -> anyhow::Result<Arc<dyn EventLog>> {
    Ok(Arc::new(SqliteEventLog::open(&dir.join(name)).await?))
}

/// The bearer token of the bench's intake client.
const INTAKE_TOKEN: &str = "bench-token";

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
struct InProcessServer {
    /// `127.0.0.1:<port>`.
    addr: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessServer {
    /// Builds the application on fresh stores in `data_dir` (durable, as in production) with
    /// `auth`, and starts serving.
    async fn start(data_dir: &Path, auth: Authenticator) -> anyhow::Result<Self> {
        let app = Application::build(Settings::for_tests(data_dir, auth)).await?;
        let addr = format!("127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, task })
    }

    /// Asks the server to stop and waits for it to drain (at most 30 s).
    async fn stop(self) -> anyhow::Result<()> {
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
async fn add_donation(
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

/// Rebuilds the read model at `url` from the whole log the way `ledger rebuild` does (fresh
/// tables or scratch file, decrypting through `vault`) and returns the rebuild's report; its
/// `projection` time excludes the switch.
pub async fn rebuild_rate(
    log: Arc<dyn EventLog>,
    url: &str,
    vault: Vault,
) -> anyhow::Result<RebuildReport> {
    let config = ProjectorConfig {
        vault: Some(vault),
        ..ProjectorConfig::default()
    };
    Ok(projection::rebuild(log, url, config).await?)
}

/// The data tables of the read model (what a raw insert writes), in dependency order. A unit
/// test checks the list against the tables `verify` compares.
pub const DATA_TABLES: &[&str] = &[
    "donation_tracking",
    "donation",
    "donation_moderation_reason",
    "payment",
    "donation_event",
    "contribution_tracking",
    "contribution_tracking_conflict",
];

/// The PostgreSQL schema the raw insert fills.
const RAW_SCHEMA: &str = "rawbench";

/// SQLite rows read per page while copying a table raw (bounds the memory the copy needs).
const RAW_PAGE_ROWS: i64 = 50_000;

/// What a raw insert did.
#[derive(Debug, Clone, Copy)]
pub struct RawInsert {
    /// Rows inserted.
    pub rows: usize,
    /// Time spent inserting and committing (reading the rows is not counted).
    pub elapsed: Duration,
}

/// Sums the time spent in the futures it runs: the timed steps of a raw insert, without the
/// reads between them.
#[derive(Default)]
struct Stopwatch(Duration);

impl Stopwatch {
    async fn time<T>(&mut self, step: impl std::future::Future<Output = T>) -> T {
        let clock = Instant::now();
        let out = step.await;
        self.0 += clock.elapsed();
        out
    }
}

/// Inserts the rows of every data table of the read model at `url` (after a rebuild: the
/// rebuild's final rows) raw into freshly migrated tables of the same database, the fastest
/// plain way, in one transaction: prepared multi-row INSERTs into a new SQLite file in `dir`
/// with the settings of the rebuild's scratch file, or `COPY` into a new PostgreSQL schema
/// with `synchronous_commit = off` like the rebuild's fresh schema. Like the rebuild, it drops
/// the secondary indexes of the empty tables first and builds them after the fill; the build
/// is timed.
pub async fn raw_insert(url: &str, dir: &Path) -> anyhow::Result<RawInsert> {
    match url.strip_prefix("sqlite:") {
        Some(rest) => {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            raw_insert_sqlite(Path::new(path), &dir.join("raw.sqlite")).await
        }
        None => raw_insert_postgres(url).await,
    }
}

/// A value read back from SQLite, bound again as it was stored.
enum SqliteValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<SqliteValue, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    Ok(match raw.type_info().name() {
        "NULL" => SqliteValue::Null,
        "INTEGER" => SqliteValue::Int(row.try_get(i)?),
        "REAL" => SqliteValue::Real(row.try_get(i)?),
        "TEXT" => SqliteValue::Text(row.try_get(i)?),
        _ => SqliteValue::Blob(row.try_get(i)?),
    })
}

async fn raw_insert_sqlite(source: &Path, target: &Path) -> anyhow::Result<RawInsert> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    let mut read = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new()
            .filename(source)
            .read_only(true),
    )
    .await?;
    // The settings of the rebuild's scratch file, and its indexes built after the fill (the
    // drop on empty tables is not timed, the build is), as the rebuild does.
    let model = ReadModel::sqlite_scratch(target).await?;
    model.migrate().await?;
    let indexes = model.defer_indexes().await?;
    let pool = model.sqlite_pool().context("a SQLite read model")?;
    let mut conn = pool.acquire().await?;

    let mut rows = 0;
    let mut watch = Stopwatch::default();
    let mut tx = watch.time(conn.begin()).await?;
    for table in DATA_TABLES {
        let select = format!(
            "SELECT rowid, * FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT {RAW_PAGE_ROWS}"
        );
        let mut after = i64::MIN;
        loop {
            let page = sqlx::query(&select)
                .bind(after)
                .fetch_all(&mut read)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.try_get(0)?;
            // Column 0 is the rowid the page is keyed on; it is not inserted.
            let columns: Vec<String> = page[0].columns()[1..]
                .iter()
                .map(|c| c.name().to_owned())
                .collect();
            let values = page
                .iter()
                .map(|r| (1..=columns.len()).map(|i| sqlite_value(r, i)).collect())
                .collect::<Result<Vec<Vec<_>>, _>>()?;
            drop(page);
            watch
                .time(insert_sqlite_rows(&mut tx, table, &columns, &values))
                .await?;
            rows += values.len();
        }
    }
    watch.time(tx.commit()).await?;
    drop(conn);
    watch.time(model.create_indexes(&indexes)).await?;
    model.close().await;
    Ok(RawInsert {
        rows,
        elapsed: watch.0,
    })
}

/// Inserts `rows` with prepared multi-row INSERTs of a fixed chunk size, so that one prepared
/// statement serves every full chunk.
async fn insert_sqlite_rows(
    conn: &mut sqlx::SqliteConnection,
    table: &str,
    columns: &[String],
    rows: &[Vec<SqliteValue>],
) -> Result<(), sqlx::Error> {
    let chunk = (32_766 / columns.len().max(1)).min(500);
    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
    for part in rows.chunks(chunk) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            vec![tuple.as_str(); part.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for v in part.iter().flatten() {
            q = match v {
                SqliteValue::Null => q.bind(None::<i64>),
                SqliteValue::Int(i) => q.bind(*i),
                SqliteValue::Real(f) => q.bind(*f),
                SqliteValue::Text(s) => q.bind(s.as_str()),
                SqliteValue::Blob(b) => q.bind(b.as_slice()),
            };
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn raw_insert_postgres(url: &str) -> anyhow::Result<RawInsert> {
    let mut read = sqlx::PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {RAW_SCHEMA} CASCADE"))
        .execute(&mut read)
        .await?;
    // The settings of the rebuild's fresh schema (`synchronous_commit = off`, also for the
    // index build).
    let target = ReadModel::postgres_scratch(url, RAW_SCHEMA)?;
    target.migrate().await?;
    // Indexes built after the fill, as the rebuild does: the drop on empty tables is not
    // timed, the build is.
    let indexes = target.defer_indexes().await?;

    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut conn)
        .await?;
    let mut rows = 0;
    let mut watch = Stopwatch::default();
    let mut tx = watch.time(conn.begin()).await?;
    for table in DATA_TABLES {
        let chunks: Vec<bytes::Bytes> = read
            .copy_out_raw(&format!("COPY {DEFAULT_SCHEMA}.{table} TO STDOUT"))
            .await?
            .try_collect()
            .await?;
        let data = chunks.concat();
        // COPY's text format escapes newlines inside values: one line per row.
        rows += data.iter().filter(|&&b| b == b'\n').count();
        watch
            .time(async {
                let sql = format!("COPY {RAW_SCHEMA}.{table} FROM STDIN");
                let mut copy = tx.copy_in_raw(&sql).await?;
                copy.send(data.as_slice()).await?;
                copy.finish().await
            })
            .await?;
    }
    watch.time(tx.commit()).await?;
    watch.time(target.create_indexes(&indexes)).await?;
    target.close().await;
    Ok(RawInsert {
        rows,
        elapsed: watch.0,
    })
}

/// Median time of `scrub_candidates` as the scrub job runs it (abandoned after the default
/// two days, no limit) on the read model at `url`, the number of candidates found and the
/// number of runs: 11, or fewer (at least 3) when they take more than 3 s in all.
pub async fn scrub_selection_time(url: &str) -> anyhow::Result<(usize, Duration, usize)> {
    let rm = ReadModel::connect(url).await?;
    let mut times: Vec<Duration> = Vec::new();
    let mut found = 0;
    while times.len() < 11
        && (times.len() < 3 || times.iter().sum::<Duration>() < Duration::from_secs(3))
    {
        let start = Instant::now();
        found = rm
            .scrub_candidates(Utc::now() - chrono::Duration::days(2), None, usize::MAX)
            .await?
            .len();
        times.push(start.elapsed());
    }
    rm.close().await;
    times.sort();
    Ok((found, times[times.len() / 2], times.len()))
}

/// Runs `verify` on the read model at `url` as `ledger verify` does (default projector
/// settings, decrypting through `vault`); fails when the read model differs from a rebuild.
pub async fn verify_read_model(
    log: Arc<dyn EventLog>,
    url: &str,
    vault: &Vault,
) -> anyhow::Result<VerifyReport> {
    let config = VerifyConfig {
        projector: ProjectorConfig {
            vault: Some(vault.clone()),
            ..ProjectorConfig::default()
        },
        catch_up_live: true,
        compare: CompareOptions::default(),
    };
    let report = verify::verify(log, url, config, &|_| {}).await?;
    anyhow::ensure!(
        report.is_identical(),
        "verify found differences in {:?}",
        report.differing_tables()
    );
    Ok(report)
}

/// A throw-away PostgreSQL database on the server of an administrative URL.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The URL of the throw-away database.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates `ledger_bench_<random>` on the server `admin_url` points to (the role needs
    /// the right to create databases).
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connecting to PostgreSQL")?;
        let name = format!("ledger_bench_{}", Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .context("creating the bench's scratch database")?;
        conn.close().await?;
        Ok(Self {
            url: url_with_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    /// Drops the database (closing its remaining sessions); a failure is logged, not
    /// returned, since the figures matter more than the clean-up.
    pub async fn drop_database(self) {
        let result = async {
            let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await?;
            conn.close().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(database = %self.name, error = %e, "could not drop the bench's scratch database");
        }
    }
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let end = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The process's peak resident memory (VmHWM) in MiB, where Linux reports it.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The CPUs' time counters of `/proc/stat`'s `cpu` line, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTimes {
    /// user, nice, system, idle, iowait, irq, softirq and steal together.
    total: u64,
    /// Time the hypervisor ran something else while this machine wanted the CPU.
    steal: u64,
}

impl CpuTimes {
    /// Parses the aggregate `cpu` line of `/proc/stat`.
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let ticks: Vec<u64> = fields
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        (ticks.len() == 8).then(|| Self {
            total: ticks.iter().sum(),
            steal: ticks[7],
        })
    }

    /// The stolen share of the time between `start` and `self`, in per cent.
    fn steal_percent_since(&self, start: &Self) -> Option<f64> {
        let total = self.total.checked_sub(start.total).filter(|&t| t > 0)?;
        let steal = self.steal.checked_sub(start.steal)?;
        Some(steal as f64 * 100.0 / total as f64)
    }
}

/// The CPUs' time counters, where Linux reports them.
fn cpu_times() -> Option<CpuTimes> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    CpuTimes::parse(text.lines().next()?)
}

/// The 1, 5 and 15 minute load averages, where Linux reports them.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_tables_are_every_compared_table_but_the_bookkeeping() {
        let compared: BTreeSet<&str> = crate::projection::compare::compared_tables()
            .into_iter()
            .filter(|t| {
                !matches!(
                    *t,
                    "projector_checkpoint" | "projector_skipped_event" | "legacy_spenden"
                )
            })
            .collect();
        let raw: BTreeSet<&str> = DATA_TABLES.iter().copied().collect();
        assert_eq!(raw, compared);
    }

    #[test]
    fn url_with_database_replaces_only_the_database() {
        assert_eq!(
            url_with_database(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "b"
            ),
            "postgres://postgres@127.0.0.1:5432/b?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://postgres@localhost", "b"),
            "postgres://postgres@localhost/b"
        );
    }

    #[test]
    fn targets_and_thousands_read_as_in_the_issue() {
        assert_eq!(APPEND_TARGET.to_string(), "≥ 50,000");
        assert_eq!(INTAKE_P99_TARGET.to_string(), "< 25");
        assert!(INTAKE_P99_TARGET.is_met(24.9));
        assert!(!INTAKE_P99_TARGET.is_met(25.0));
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }

    #[test]
    fn first_events_takes_whole_steps_up_to_the_sample() {
        let config = WorkloadConfig {
            donations: 50,
            seed: 3,
            start: Utc::now(),
        };
        let (steps, _) = workload::generate(&config);
        let appends: Vec<Vec<StreamAppend>> = steps
            .into_iter()
            .map(|s| {
                s.events
                    .into_iter()
                    .map(|e| StreamAppend {
                        stream: e.stream,
                        expected: ExpectedRevision::Any,
                        events: Vec::new(),
                    })
                    .collect()
            })
            .collect();
        let sample = first_events(&appends, 20);
        let streams: usize = sample.iter().map(Vec::len).sum();
        assert!((20..20 + 4).contains(&streams), "{streams}");
    }

    #[test]
    fn steal_is_read_from_the_cpu_line() {
        let start = CpuTimes::parse("cpu  532323 0 118945 356861 15467 0 7678 5432 0 0").unwrap();
        assert_eq!(start.total, 1_036_706);
        assert_eq!(start.steal, 5432);
        let end = CpuTimes::parse("cpu  532400 0 119000 356900 15467 0 7678 5457 0 0").unwrap();
        let percent = end.steal_percent_since(&start).unwrap();
        assert!((percent - 25.0 * 100.0 / 196.0).abs() < 1e-9, "{percent}");
        assert_eq!(start.steal_percent_since(&start), None);
        assert_eq!(CpuTimes::parse("cpu0 1 2 3 4 5 6 7 8 0 0"), None);
        assert_eq!(CpuTimes::parse("cpu  1 2 3"), None);
    }

    #[test]
    fn stamped_ids_are_new_and_in_the_order_they_were_sent() {
        let event = |id| EventData {
            id,
            event_type: "Bench.v1".into(),
            payload: Vec::new(),
            metadata: Metadata::new(Actor::system("test"), "test", Uuid::nil()),
        };
        // Made in advance and out of order, as dealing a workload out to writers leaves them.
        let made: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).rev().collect();
        let mut first: Vec<EventData> = made.iter().map(|&id| event(id)).collect();
        let mut second = vec![event(made[0])];
        stamp_ids(&mut first);
        stamp_ids(&mut second);
        let sent: Vec<Uuid> = first.iter().chain(&second).map(|e| e.id).collect();
        assert!(sent.iter().all(|id| !made.contains(id)), "{sent:?}");
        assert!(sent.windows(2).all(|w| w[0] < w[1]), "{sent:?}");
    }
}
