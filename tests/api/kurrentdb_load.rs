//! Many subscribers while many writers append, through the KurrentDB port: every subscriber
//! receives every event exactly once, in the log's order.
use std::time::Duration;

use futures::StreamExt;
use ledger::kurrentdb::requests::{append_any, subscribe_all_from_start, Proposed};
use ledger::proto::kurrentdb::event_store::client::streams::{read_resp, AppendReq};

use crate::support::api::spawn_app;
use crate::support::kurrentdb::serve;

const SUBSCRIBERS: usize = 64;
const WRITERS: usize = 64;
const APPENDS_PER_WRITER: usize = 20;

fn append(stream: &str, n: usize) -> Vec<AppendReq> {
    append_any(
        stream,
        [Proposed {
            id: uuid::Uuid::new_v4(),
            event_type: "Tick",
            content_type: "application/json",
            custom_metadata: Vec::new(),
            data: format!("{{\"n\":{n}}}").into_bytes(),
        }],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_subscribers_each_get_every_event_of_sixty_four_writers_once_in_order() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let total = WRITERS * APPENDS_PER_WRITER;
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut raw = port.raw().await;
        let mut reads = raw
            .read(subscribe_all_from_start())
            .await
            .unwrap()
            .into_inner();
        // Wait for the confirmation, so every subscriber is in place before the writers start.
        let first = reads.next().await.unwrap().unwrap();
        assert!(matches!(
            first.content,
            Some(read_resp::Content::Confirmation(_))
        ));
        subscribers.push(tokio::spawn(async move {
            let mut positions = Vec::with_capacity(total);
            while positions.len() < total {
                let message = reads
                    .next()
                    .await
                    .expect("the subscription stays open")
                    .unwrap();
                if let Some(read_resp::Content::Event(e)) = message.content {
                    positions.push(e.event.unwrap().commit_position);
                }
            }
            positions
        }));
    }
    assert_eq!(
        port.metrics
            .gauge_value("ledger_kurrentdb_subscriptions", &[]),
        Some(SUBSCRIBERS as f64),
        "every confirmed subscription is counted"
    );
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut raw = port.raw().await;
        writers.push(tokio::spawn(async move {
            for n in 0..APPENDS_PER_WRITER {
                raw.append(tokio_stream::iter(append(&format!("load-{w}"), n)))
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let logged: Vec<u64> = app
        .log
        .read_all(0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(logged.len(), total);
    for subscriber in subscribers {
        let positions = tokio::time::timeout(Duration::from_secs(120), subscriber)
            .await
            .expect("every subscriber receives every event")
            .unwrap();
        assert_eq!(positions, logged, "exactly once, in the log's order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscriber_far_behind_the_head_is_told_it_fell_behind_and_then_caught_up() {
    use ledger::store::{ContentType, EventData, EventMetadata, ExpectedRevision};
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let mut raw = port.raw().await;
    let mut reads = raw
        .read(subscribe_all_from_start())
        .await
        .unwrap()
        .into_inner();
    // Confirmation, then caught up on the empty log: the subscription is live.
    let mut kinds: Vec<&str> = Vec::new();
    while kinds.last() != Some(&"caught_up") {
        let message = reads.next().await.unwrap().unwrap();
        kinds.push(kind(&message));
    }
    // The client stops reading while the log grows far past what it took.
    let behind = ledger::kurrentdb::read::FELL_BEHIND as usize * 2;
    // One append, so the head jumps past the subscriber at once.
    let events = (0..behind)
        .map(|_| EventData {
            id: uuid::Uuid::new_v4(),
            event_type: "Tick".into(),
            payload: b"{}".to_vec(),
            metadata: EventMetadata::Foreign {
                content_type: ContentType::Json,
                bytes: Vec::new(),
            },
        })
        .collect();
    app.log
        .append("ticks-1", ExpectedRevision::NoStream, events)
        .await
        .unwrap();
    let mut events = 0;
    let mut seen = Vec::new();
    while events < behind {
        let message = tokio::time::timeout(Duration::from_secs(60), reads.next())
            .await
            .expect("the subscription answers")
            .unwrap()
            .unwrap();
        match kind(&message) {
            "event" => events += 1,
            other => seen.push((other, events)),
        }
    }
    let fell = seen.iter().position(|(k, _)| *k == "fell_behind");
    let back = seen.iter().rposition(|(k, _)| *k == "caught_up");
    assert!(
        matches!((fell, back), (Some(f), Some(b)) if f < b),
        "fell behind, then caught up again: {seen:?}"
    );
}

fn kind(
    message: &ledger::proto::kurrentdb::event_store::client::streams::ReadResp,
) -> &'static str {
    match &message.content {
        Some(read_resp::Content::Confirmation(_)) => "confirmation",
        Some(read_resp::Content::CaughtUp(_)) => "caught_up",
        Some(read_resp::Content::FellBehind(_)) => "fell_behind",
        Some(read_resp::Content::Event(_)) => "event",
        Some(read_resp::Content::Checkpoint(_)) => "checkpoint",
        _ => "other",
    }
}
