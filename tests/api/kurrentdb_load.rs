//! Many subscribers while many writers append, through the KurrentDB port: every subscriber
//! receives every event exactly once, in the log's order.
use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use ledger::proto::kurrentdb::event_store::client::streams::{
    append_req, read_req, read_resp, AppendReq, ReadReq,
};
use ledger::proto::kurrentdb::event_store::client::{self as shared, Empty, StreamIdentifier};

use crate::kurrentdb_support::serve;
use crate::support::api::spawn_app;

const SUBSCRIBERS: usize = 64;
const WRITERS: usize = 64;
const APPENDS_PER_WRITER: usize = 20;

fn subscribe_all() -> ReadReq {
    use read_req::options::{all_options, AllOptions, CountOption, FilterOption, StreamOption};
    ReadReq {
        options: Some(read_req::Options {
            stream_option: Some(StreamOption::All(AllOptions {
                all_option: Some(all_options::AllOption::Start(Empty {})),
            })),
            read_direction: 0,
            resolve_links: false,
            count_option: Some(CountOption::Subscription(
                read_req::options::SubscriptionOptions {},
            )),
            filter_option: Some(FilterOption::NoFilter(Empty {})),
            uuid_option: None,
            control_option: None,
        }),
    }
}

fn append(stream: &str, n: usize) -> Vec<AppendReq> {
    let id = uuid::Uuid::new_v4().to_string();
    vec![
        AppendReq {
            content: Some(append_req::Content::Options(append_req::Options {
                stream_identifier: Some(StreamIdentifier {
                    stream_name: stream.as_bytes().to_vec(),
                }),
                expected_stream_revision: Some(append_req::options::ExpectedStreamRevision::Any(
                    Empty {},
                )),
            })),
        },
        AppendReq {
            content: Some(append_req::Content::ProposedMessage(
                append_req::ProposedMessage {
                    id: Some(shared::Uuid {
                        value: Some(shared::uuid::Value::String(id)),
                    }),
                    metadata: HashMap::from([
                        ("type".to_owned(), "Tick".to_owned()),
                        ("content-type".to_owned(), "application/json".to_owned()),
                    ]),
                    custom_metadata: Vec::new(),
                    data: format!("{{\"n\":{n}}}").into_bytes(),
                },
            )),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_subscribers_each_get_every_event_of_sixty_four_writers_once_in_order() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let total = WRITERS * APPENDS_PER_WRITER;
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut raw = port.raw().await;
        let mut reads = raw.read(subscribe_all()).await.unwrap().into_inner();
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
