//! The append part of `ledger bench`: the sealed workload and durable appends from concurrent
//! writers, each donation's appends in order in one writer.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::CONCURRENCY;
use crate::privacy::{self, KeyStore};
use crate::store::sqlite::SqliteEventLog;
use crate::store::{Actor, EventData, EventLog, ExpectedRevision, Metadata, StreamAppend};
use crate::workload::{self, WorkloadConfig};

/// The workload's appends, each donation's and each membership application's events sealed
/// with its own key (created in `keys` up front, as the intake would have), ready to append.
pub struct SealedWorkload {
    /// One entry per workload step: its streams' appends, in order.
    pub appends: Vec<Vec<StreamAppend>>,
    /// Events in all.
    pub events: usize,
    /// Membership applications among them.
    pub memberships: usize,
    /// Address changes among them.
    pub address_changes: usize,
    /// Of those, used.
    pub address_changes_used: usize,
}

/// Generates the workload and seals it with per-donation and per-application keys stored in
/// `keys`.
pub async fn sealed_workload(
    config: &WorkloadConfig,
    keys: &KeyStore,
) -> anyhow::Result<SealedWorkload> {
    let (steps, summary) = workload::generate(config);
    // Every donation's key and every application's, as the intake would have made them.
    let ids: Vec<u64> = steps
        .iter()
        .map(|s| s.key_id)
        .filter(|&k| k != 0)
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect();
    let data_keys = keys.create_many(&ids).await?;
    let request = Uuid::now_v7();
    let appends = steps
        .into_iter()
        .map(|step| {
            let mut events: Vec<_> = step.events.iter().map(|e| e.event.clone()).collect();
            if let Some(key) = data_keys.get(&step.key_id) {
                privacy::seal_with(&mut events, step.key_id, key);
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
                        metadata: Metadata::new(Actor::system("bench"), "ledger bench", request)
                            .into(),
                    }],
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(SealedWorkload {
        appends,
        events: summary.events,
        memberships: summary.memberships,
        address_changes: summary.address_changes,
        address_changes_used: summary.address_changes_used,
    })
}

pub(super) fn count_events(appends: &[Vec<StreamAppend>]) -> usize {
    appends.iter().flatten().map(|part| part.events.len()).sum()
}

/// The first steps of `appends` holding about `events` events.
pub(super) fn first_events(appends: &[Vec<StreamAppend>], events: usize) -> Vec<Vec<StreamAppend>> {
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
pub(super) fn stamp_ids(events: &mut [EventData]) {
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
pub(super) fn lane_key(stream: &str) -> u64 {
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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn first_events_takes_whole_steps_up_to_the_sample() {
        let config = WorkloadConfig {
            donations: 50,
            seed: 3,
            start: Utc::now(),
            donations_only: false,
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
    fn stamped_ids_are_new_and_in_the_order_they_were_sent() {
        let event = |id| EventData {
            id,
            event_type: "Bench.v1".into(),
            payload: Vec::new(),
            metadata: Metadata::new(Actor::system("test"), "test", Uuid::nil()).into(),
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
