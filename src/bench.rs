//! `ledger bench`: one process, one run, every figure operators size deployments with. Each
//! part works on fresh files in a scratch directory (never the live data directory) with the
//! deterministic workload of `crate::workload`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use crate::privacy::{self, DataKey};
use crate::projection::{Projector, ProjectorConfig, ReadModel};
use crate::store::sqlite::SqliteEventLog;
use crate::store::{Actor, EventData, EventLog, ExpectedRevision, Metadata, StreamAppend};
use crate::workload::{self, WorkloadConfig};

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// How it compares with the target, when there is one.
    pub target: Option<String>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    /// Donations in the workload.
    pub donations: usize,
    /// Events in the workload.
    pub events: usize,
    /// The figures, in the order measured.
    pub figures: Vec<Figure>,
}

impl BenchReport {
    /// Records a figure.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Option<String>,
    ) {
        let name = name.into();
        tracing::info!(figure = %name, value, unit, "measured");
        self.figures.push(Figure {
            name,
            value,
            unit,
            target,
        });
    }

    /// A figure's value by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }
}

/// The workload's appends, encoded and sealed once, ready to append.
pub fn encoded_workload(config: &WorkloadConfig) -> (Vec<Vec<StreamAppend>>, usize) {
    let (steps, summary) = workload::generate(config);
    let key = DataKey::random();
    let request = Uuid::now_v7();
    let appends = steps
        .into_iter()
        .map(|step| {
            let mut events: Vec<_> = step.events.iter().map(|e| e.event.clone()).collect();
            privacy::seal_with(&mut events, step.donation_id, &key);
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
    (appends, summary.events)
}

/// Appends `appends` from `writers` concurrent tasks; returns events/s. Each donation's (and
/// each tracking id's) appends stay with one writer, in order, as causality requires: a booking
/// is only sent after its payment was acknowledged.
pub async fn append_rate(
    log: Arc<dyn EventLog>,
    appends: Vec<Vec<StreamAppend>>,
    writers: usize,
) -> anyhow::Result<f64> {
    let events: usize = appends
        .iter()
        .map(|a| a.iter().map(|p| p.events.len()).sum::<usize>())
        .sum();
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
                    for part in parts {
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
    match crate::domain::streams::parse(stream) {
        Some(("payment", id)) => id.wrapping_sub(10_000_000),
        Some((_, id)) => id,
        None => 0,
    }
}

/// Projects the whole log into a fresh read model at `url`; returns (events, duration).
pub async fn projection_rate(log: Arc<dyn EventLog>, url: &str) -> anyhow::Result<(u64, Duration)> {
    let rm = ReadModel::connect(url).await?;
    rm.migrate().await?;
    let config = ProjectorConfig {
        batch_size: 5_000,
        ..ProjectorConfig::default()
    };
    let projector = Projector::with_config(log, rm.clone(), config);
    let outcome = projector.run_once().await?;
    rm.close().await;
    Ok((outcome.events, outcome.elapsed))
}

/// Median time of `scrub_candidates` on the read model at `url`.
pub async fn scrub_selection_time(url: &str) -> anyhow::Result<(usize, Duration)> {
    let rm = ReadModel::connect(url).await?;
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..11 {
        let start = Instant::now();
        found = rm
            .scrub_candidates(Utc::now() - chrono::Duration::days(2), None, usize::MAX)
            .await?
            .len();
        times.push(start.elapsed());
    }
    rm.close().await;
    times.sort();
    Ok((found, times[times.len() / 2]))
}

/// The process's peak resident memory (VmHWM) in MiB, where Linux reports it.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Opens a fresh durable log in `dir`.
pub async fn fresh_log(dir: &Path, name: &str) -> anyhow::Result<Arc<dyn EventLog>> {
    Ok(Arc::new(SqliteEventLog::open(&dir.join(name)).await?))
}
