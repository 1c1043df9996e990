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
    let lanes = deal_to_lanes(appends, writers);
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

/// Deals the steps to `writers` lanes: a step goes to the lane of its first stream's
/// [`lane_key`], except an address change's later step, which goes to the lane of the step
/// that created it (its donation's or application's): the address change's own id says
/// nothing of that lane, and a change appended before its creation would be refused.
fn deal_to_lanes(appends: Vec<Vec<StreamAppend>>, writers: usize) -> Vec<Vec<Vec<StreamAppend>>> {
    use crate::domain::address_change::AddressChangeCategory;
    use crate::domain::streams;
    let mut lanes: Vec<Vec<Vec<StreamAppend>>> = (0..writers).map(|_| Vec::new()).collect();
    let mut address_changes: std::collections::HashMap<u64, usize> = Default::default();
    let address_change = |stream: &str| {
        AddressChangeCategory::of(stream)
            .and_then(|_| streams::parse(stream))
            .map(|(_, id)| id)
    };
    for step in appends {
        let first = step.first().map(|p| p.stream.as_str()).unwrap_or_default();
        let lane = match address_change(first).and_then(|id| address_changes.get(&id)) {
            Some(&lane) => lane,
            None => (lane_key(first) % writers as u64) as usize,
        };
        for part in &step {
            if let Some(id) = address_change(&part.stream) {
                address_changes.entry(id).or_insert(lane);
            }
        }
        lanes[lane].push(step);
    }
    lanes
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
    fn an_address_changes_steps_share_the_lane_of_the_step_that_created_it() {
        let config = WorkloadConfig {
            donations: 3_000,
            seed: 4,
            start: Utc::now(),
            donations_only: false,
        };
        let (steps, summary) = workload::generate(&config);
        assert!(summary.address_changes_used > 20);
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
        let lanes = deal_to_lanes(appends, CONCURRENCY);
        // Per address-change stream: its lane, and whether its first append was the creation's
        // step (the one that also holds another context's stream).
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for (lane, steps) in lanes.iter().enumerate() {
            for step in steps {
                let created_here = !step[0].stream.starts_with("address_change");
                for part in step
                    .iter()
                    .filter(|p| p.stream.starts_with("address_change-"))
                {
                    match seen.get(&part.stream) {
                        Some(&first) => assert_eq!(first, lane, "{}", part.stream),
                        None => {
                            assert!(created_here, "{} before its creation", part.stream);
                            seen.insert(part.stream.clone(), lane);
                        }
                    }
                }
            }
        }
        assert_eq!(seen.len(), summary.address_changes);
    }

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
