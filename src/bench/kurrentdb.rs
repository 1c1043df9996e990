//! The KurrentDB-port part of `ledger bench`: the workload's events appended by 64 writers
//! through the port (single-event `Append` calls; with the `tonic` client once with every
//! writer on its own HTTP/2 connection and once with all of them sharing one, as the tasks of
//! one application share its client; and with the intake bench's lean load generator, each
//! writer on its own connection; and single-event appends on one `BatchAppend` call per writer,
//! kept open, each append awaited before the next, as the clients' batch appenders send them)
//! beside
//! the same appends straight into the embedded log, as a ratio in one run; and a catch-up
//! subscription to `$all` through the port over the filled log beside a direct page-by-page
//! read of it. Clients run in the same process, so the port's figures include their cost.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::append::{fresh_log, lane_key};
use super::grpc_client::GrpcClient;
use super::CONCURRENCY;
use crate::kurrentdb::access::Users;
use crate::kurrentdb::requests::{
    append_any, batch_append_any, subscribe_all_from_start, Proposed,
};
use crate::kurrentdb::{KurrentDbServer, Settings};
use crate::metrics::Metrics;
use crate::proto::kurrentdb::event_store::client::streams::streams_client::StreamsClient;
use crate::proto::kurrentdb::event_store::client::streams::{
    append_resp, batch_append_resp, read_resp, AppendReq, AppendResp,
};
use crate::store::{ContentType, EventData, EventMetadata, ExpectedRevision, StreamAppend};

/// The port's figures.
#[derive(Debug, Clone, Copy)]
pub struct PortRates {
    /// Events/s appended through the port by the writers, each on its own connection.
    pub port_append: f64,
    /// Events/s appended through the port by the writers sharing one connection.
    pub shared_append: f64,
    /// Events/s appended through the port by the writers, each on its own connection, with
    /// the lean load generator of the intake bench instead of the `tonic` client.
    pub lean_append: f64,
    /// Events/s appended through the port by the writers, each sending its single-event
    /// appends one after the other on a `BatchAppend` call it keeps open (its own connection).
    pub batch_append: f64,
    /// Events/s of the same appends straight into the log.
    pub direct_append: f64,
    /// Events/s of a catch-up subscription to `$all` through the port.
    pub catch_up: f64,
    /// Events/s of a direct page-by-page read of the same log.
    pub direct_read: f64,
}

/// One writer's appends: (stream, event), in order.
type Lane = Vec<(String, EventData)>;

/// The workload's events as a foreign client writes them: outside the ledger's categories
/// (`bench_` + the category), binary payload, the envelope as custom metadata.
fn lanes(appends: &[Vec<StreamAppend>]) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = (0..CONCURRENCY).map(|_| Vec::new()).collect();
    for step in appends {
        for part in step {
            let lane = (lane_key(&part.stream) % CONCURRENCY as u64) as usize;
            for event in &part.events {
                lanes[lane].push((
                    format!("bench_{}", part.stream),
                    EventData {
                        id: Uuid::now_v7(),
                        event_type: event.event_type.clone(),
                        payload: event.payload.clone(),
                        metadata: EventMetadata::Foreign {
                            content_type: ContentType::Binary,
                            bytes: event.metadata.to_bytes(),
                        },
                    },
                ));
            }
        }
    }
    lanes
}

fn proposed(event: &EventData) -> Proposed<'_> {
    Proposed {
        id: event.id,
        event_type: &event.event_type,
        content_type: "application/octet-stream",
        custom_metadata: event.metadata.to_bytes(),
        data: event.payload.clone(),
    }
}

fn append_request(stream: &str, event: &EventData) -> Vec<AppendReq> {
    append_any(stream, [proposed(event)])
}

type Client = StreamsClient<tonic::transport::Channel>;

/// Serves the port on `log` at a free loopback port: its URL, its stop token and its task.
async fn start_port(
    log: std::sync::Arc<dyn crate::store::EventLog>,
) -> anyhow::Result<(
    String,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
)> {
    let stop = CancellationToken::new();
    let server = KurrentDbServer::bind(
        Settings {
            listen: "127.0.0.1:0".parse()?,
            tls: None,
            users: Users::anonymous(true),
            advertise_host: None,
        },
        log,
        Metrics::new(),
        stop.clone(),
    )
    .await?;
    let url = format!("http://{}", server.local_addr()?);
    let serving = tokio::spawn(server.run_until_stopped());
    Ok((url, stop, serving))
}

/// Events/s of every lane appended through the port at `addr` (`host:port`), each lane on its
/// own connection of the lean load generator ([`GrpcClient`]: both frames of a call in one
/// write, no buffer task), connected before the clock starts.
async fn lean_append_rate(lanes: Vec<Lane>, addr: &str) -> anyhow::Result<f64> {
    let mut clients = Vec::with_capacity(lanes.len());
    for _ in 0..lanes.len() {
        clients.push(GrpcClient::connect(addr, "").await?);
    }
    lanes_rate(lanes, clients, |lane, mut client| async move {
        for (stream, event) in lane {
            let reply: AppendResp = client
                .call(
                    "/event_store.client.streams.Streams/Append",
                    &append_request(&stream, &event),
                )
                .await?;
            anyhow::ensure!(
                matches!(reply.result, Some(append_resp::Result::Success(_))),
                "the port did not append to {stream}: {reply:?}"
            );
        }
        Ok(())
    })
    .await
}

/// Events/s of every lane appended through the port at `url`, each lane on a `BatchAppend`
/// call of its own connection, opened before the clock starts: one single-event append per
/// request, the next sent when the answer to the last has come.
async fn batch_append_rate(lanes: Vec<Lane>, url: &str) -> anyhow::Result<f64> {
    let mut calls = Vec::with_capacity(lanes.len());
    for _ in 0..lanes.len() {
        let mut client = StreamsClient::connect(url.to_owned())
            .await
            .context("connecting to the KurrentDB port")?;
        let (requests, outgoing) = tokio::sync::mpsc::channel(1);
        let answers = client
            .batch_append(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        calls.push((requests, answers));
    }
    lanes_rate(lanes, calls, |lane, (requests, mut answers)| async move {
        for (stream, event) in lane {
            requests
                .send(batch_append_any(
                    Uuid::new_v4(),
                    &stream,
                    [proposed(&event)],
                ))
                .await
                .map_err(|_| anyhow::anyhow!("the BatchAppend call closed"))?;
            let answer = answers
                .message()
                .await?
                .context("the BatchAppend call ended early")?;
            anyhow::ensure!(
                matches!(answer.result, Some(batch_append_resp::Result::Success(_))),
                "the port did not append to {stream}: {answer:?}"
            );
        }
        Ok(())
    })
    .await
}

/// Events/s of every lane appended through the port, lane `i` by `clients[i]`.
async fn port_append_rate(lanes: Vec<Lane>, clients: Vec<Client>) -> anyhow::Result<f64> {
    lanes_rate(lanes, clients, |lane, mut client| async move {
        for (stream, event) in lane {
            client
                .append(tokio_stream::iter(append_request(&stream, &event)))
                .await?;
        }
        Ok(())
    })
    .await
}

/// Events/s of every lane appended at once, lane `i` by `append_lane` with `writers[i]` (its
/// connection, call or log, made before the clock starts).
async fn lanes_rate<W, F, Appending>(
    lanes: Vec<Lane>,
    writers: Vec<W>,
    append_lane: F,
) -> anyhow::Result<f64>
where
    F: Fn(Lane, W) -> Appending,
    Appending: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let events: usize = lanes.iter().map(Vec::len).sum();
    let started = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .zip(writers)
        .map(|(lane, writer)| tokio::spawn(append_lane(lane, writer)))
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

/// Measures the port against the log, on fresh logs in `dir`.
pub async fn kurrentdb_rates(
    dir: &Path,
    appends: &[Vec<StreamAppend>],
) -> anyhow::Result<PortRates> {
    let lanes = lanes(appends);
    let events: usize = lanes.iter().map(Vec::len).sum();

    let direct = fresh_log(dir, "kurrentdb-direct.sqlite").await?;
    let logs = vec![direct; lanes.len()];
    let direct_append = lanes_rate(lanes.clone(), logs, |lane, log| async move {
        for (stream, event) in lane {
            log.append(&stream, ExpectedRevision::Any, vec![event])
                .await?;
        }
        Ok(())
    })
    .await?;

    // One shared HTTP/2 connection first (how a client object is used by many tasks), on a
    // log of its own; then each writer on its own connection, on the log the catch-up reads.
    let shared_log = fresh_log(dir, "kurrentdb-port-shared.sqlite").await?;
    let (url, stop, serving) = start_port(shared_log).await?;
    let client = StreamsClient::connect(url)
        .await
        .context("connecting to the KurrentDB port")?;
    let shared_append = port_append_rate(
        lanes.clone(),
        (0..CONCURRENCY).map(|_| client.clone()).collect(),
    )
    .await?;
    stop.cancel();
    serving.await??;

    let lean_log = fresh_log(dir, "kurrentdb-port-lean.sqlite").await?;
    let (url, stop, serving) = start_port(lean_log).await?;
    let lean_append = lean_append_rate(lanes.clone(), url.trim_start_matches("http://")).await?;
    stop.cancel();
    serving.await??;

    let batch_log = fresh_log(dir, "kurrentdb-port-batch.sqlite").await?;
    let (url, stop, serving) = start_port(batch_log).await?;
    let batch_append = batch_append_rate(lanes.clone(), &url).await?;
    stop.cancel();
    serving.await??;

    let log = fresh_log(dir, "kurrentdb-port.sqlite").await?;
    let (url, stop, serving) = start_port(log.clone()).await?;
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        clients.push(
            StreamsClient::connect(url.clone())
                .await
                .context("connecting to the KurrentDB port")?,
        );
    }
    let port_append = port_append_rate(lanes, clients).await?;

    let mut client = StreamsClient::connect(url).await?;
    let started = Instant::now();
    let mut reads = client.read(subscribe_all_from_start()).await?.into_inner();
    let mut received = 0usize;
    while received < events {
        let message = reads
            .next()
            .await
            .context("the subscription ended early")??;
        if let Some(read_resp::Content::Event(_)) = message.content {
            received += 1;
        }
    }
    let catch_up = events as f64 / started.elapsed().as_secs_f64();
    drop(reads);
    stop.cancel();
    serving.await??;

    let started = Instant::now();
    let mut next = 0;
    let mut read = 0usize;
    loop {
        let page = log.read_all(next, 512).await?;
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        read += page.len();
    }
    let direct_read = read as f64 / started.elapsed().as_secs_f64();
    Ok(PortRates {
        port_append,
        shared_append,
        lean_append,
        batch_append,
        direct_append,
        catch_up,
        direct_read,
    })
}
