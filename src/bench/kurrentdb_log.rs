//! The KurrentDB-log part of `ledger bench`: the workload appended through the KurrentDB log
//! backend by 1 and by 64 writers, the whole log read through it in the rebuild's batches (the
//! rebuild's ceiling), and a read-model rebuild reading the log through it — the
//! figures to set beside the embedded log's `append_1_writer`, `append_64_writers` and
//! `rebuild` of the same run. The server is the global `--event-log-url` when it is a
//! KurrentDB connection string (give it an empty scratch server: the bench writes the workload
//! into it and rebuilds from all of it), else a KurrentDB port over a scratch log, served in
//! this process.

use std::path::Path;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::append::{append_rate, fresh_log};
use super::read_model::rebuild_rate;
use super::CONCURRENCY;
use crate::kurrentdb::access::Users;
use crate::kurrentdb::{KurrentDbServer, Settings};
use crate::metrics::Metrics;
use crate::privacy::Vault;
use crate::store::kurrent::KurrentEventLog;
use crate::store::{EventLog, StreamAppend};

/// The backend's figures.
#[derive(Debug, Clone, Copy)]
pub struct BackendRates {
    /// Events/s appended by one writer.
    pub append_1_writer: f64,
    /// Events/s appended by 64 writers.
    pub append_64_writers: f64,
    /// Events/s of reading the whole log through the backend as a rebuild does (batches of
    /// the rebuild's size), without projecting: the rebuild's ceiling on this backend.
    pub read_all: f64,
    /// Events/s of a rebuild reading the log through the backend.
    pub rebuild: f64,
}

/// Reads everything `log` holds in batches of the rebuild's size; events/s.
async fn read_rate(log: &dyn EventLog) -> anyhow::Result<f64> {
    let started = std::time::Instant::now();
    let (mut from, mut events) = (0, 0usize);
    loop {
        let batch = log
            .read_all(from, crate::projection::REBUILD_BATCH_SIZE)
            .await?;
        let Some(last) = batch.last() else {
            break;
        };
        from = last.position + 1;
        events += batch.len();
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// A KurrentDB port over a scratch log in `dir`, with one user (`bench`) that may write the
/// ledger's categories: its connection string and its stop token.
async fn scratch_port(dir: &Path) -> anyhow::Result<(String, CancellationToken)> {
    let users_path = dir.join("kurrentdb-log-users.json");
    std::fs::write(
        &users_path,
        format!(
            r#"{{"users": [{{"name": "bench", "sha256": "{}", "read": ["*"], "write": ["*", "{}"]}}]}}"#,
            hex::encode(sha2::Sha256::digest(b"bench")),
            crate::kurrentdb::access::LEDGER_GRANT
        ),
    )?;
    let stop = CancellationToken::new();
    let server = KurrentDbServer::bind(
        Settings {
            listen: "127.0.0.1:0".parse()?,
            tls: None,
            users: Users::from_file(&users_path, false)?,
            advertise_host: None,
        },
        fresh_log(dir, "kurrentdb-log.sqlite").await?,
        Metrics::new(),
        stop.clone(),
    )
    .await?;
    let url = format!(
        "esdb://bench:bench@{}?tls=false&defaultDeadline=60000",
        server.local_addr()?
    );
    tokio::spawn(server.run_until_stopped());
    Ok((url, stop))
}

/// The single writer's sample, moved out of the ledger's categories (`bench_single-…`) with
/// fresh ids, so it neither repeats the workload's events nor enters the rebuild's read model.
fn single_writer_sample(sample: Vec<Vec<StreamAppend>>) -> Vec<Vec<StreamAppend>> {
    sample
        .into_iter()
        .map(|step| {
            step.into_iter()
                .map(|mut part| {
                    part.stream = format!(
                        "bench_single{}",
                        &part.stream[part.stream.find('-').unwrap_or(0)..]
                    );
                    for event in &mut part.events {
                        event.id = Uuid::now_v7();
                    }
                    part
                })
                .collect()
        })
        .collect()
}

/// Measures the backend: `sample` by one writer, `appends` by 64, then a rebuild of a
/// SQLite read model in `dir` from everything the log holds, opening sealed data with `vault`.
pub async fn backend_rates(
    dir: &Path,
    url: Option<&SecretString>,
    sample: Vec<Vec<StreamAppend>>,
    appends: Vec<Vec<StreamAppend>>,
    vault: &Vault,
) -> anyhow::Result<BackendRates> {
    let (url, stop) = match url {
        Some(url) => (url.expose_secret().to_owned(), None),
        None => {
            let (url, stop) = scratch_port(dir).await?;
            (url, Some(stop))
        }
    };
    let log: Arc<dyn EventLog> = Arc::new(KurrentEventLog::connect(&url).await?);
    let append_1_writer = append_rate(log.clone(), single_writer_sample(sample), 1).await?;
    let append_64_writers = append_rate(log.clone(), appends, CONCURRENCY).await?;
    let read_all = read_rate(log.as_ref()).await?;
    let read_model = format!(
        "sqlite://{}",
        dir.join("kurrentdb-log-readmodel.sqlite").display()
    );
    let rebuild = rebuild_rate(log, &read_model, vault.clone())
        .await?
        .events_per_second;
    if let Some(stop) = stop {
        stop.cancel();
    }
    Ok(BackendRates {
        append_1_writer,
        append_64_writers,
        read_all,
        rebuild,
    })
}
