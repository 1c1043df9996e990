//! The event-log conformance suite: one contract, written once, run against every backend.
//!
//! A backend's test file calls `event_log_conformance!(factory)` with an async factory that
//! returns a fresh, empty log; every check below becomes one test of that backend.

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ledger::store::{
    Actor, ActorKind, AppendResult, CurrentRevision, Direction, EventData, EventLog,
    ExpectedRevision, Metadata, StoreError, StreamAppend, StreamStart, MAX_EVENT_BYTES,
};
use ledger::store::{ContentType, EventMetadata};
use uuid::Uuid;

/// A test event with a recognisable payload.
pub fn event(payload: &str) -> EventData {
    EventData {
        id: Uuid::new_v4(),
        event_type: "TestEvent.v1".into(),
        payload: payload.as_bytes().to_vec(),
        metadata: Metadata::new(
            Actor {
                kind: ActorKind::Frontend,
                id: "conformance".into(),
            },
            "conformance-suite",
            Uuid::new_v4(),
        )
        .into(),
    }
}

fn events(n: usize, tag: &str) -> Vec<EventData> {
    (0..n).map(|i| event(&format!("{tag}-{i}"))).collect()
}

async fn count_all(log: &dyn EventLog) -> usize {
    log.read_all(0, usize::MAX).await.unwrap().len()
}

pub async fn appending_to_a_new_stream_starts_at_revision_zero(log: Arc<dyn EventLog>) {
    let r = log
        .append("donation-1", ExpectedRevision::NoStream, events(3, "a"))
        .await
        .unwrap();
    assert_eq!(r.next_expected_revision, 2);
    assert_eq!(
        log.stream_revision("donation-1").await.unwrap(),
        CurrentRevision::At(2)
    );
    let read = log
        .read_stream(
            "donation-1",
            Direction::Forwards,
            StreamStart::Beginning,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(read[2].position, r.position);
}

pub async fn no_stream_conflicts_when_the_stream_exists_and_reports_both_revisions(
    log: Arc<dyn EventLog>,
) {
    log.append("payment-1", ExpectedRevision::NoStream, events(2, "a"))
        .await
        .unwrap();
    let err = log
        .append("payment-1", ExpectedRevision::NoStream, events(1, "b"))
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => {
            assert_eq!(stream, "payment-1");
            assert_eq!(expected, ExpectedRevision::NoStream);
            assert_eq!(actual, CurrentRevision::At(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(count_all(&*log).await, 2, "a conflict writes nothing");
}

pub async fn exact_revision_accepts_the_current_revision_only(log: Arc<dyn EventLog>) {
    log.append("moderation-1", ExpectedRevision::Any, events(2, "a"))
        .await
        .unwrap();
    for wrong in [0u64, 2, 5] {
        let err = log
            .append(
                "moderation-1",
                ExpectedRevision::Exact(wrong),
                events(1, "w"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    actual: CurrentRevision::At(1),
                    ..
                }
            ),
            "{wrong}: {err:?}"
        );
    }
    let err = log
        .append("moderation-2", ExpectedRevision::Exact(0), events(1, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: CurrentRevision::NoStream,
                ..
            }
        ),
        "{err:?}"
    );
    let r = log
        .append("moderation-1", ExpectedRevision::Exact(1), events(1, "ok"))
        .await
        .unwrap();
    assert_eq!(r.next_expected_revision, 2);
}

pub async fn stream_exists_requires_an_existing_stream(log: Arc<dyn EventLog>) {
    let err = log
        .append("export-1", ExpectedRevision::StreamExists, events(1, "a"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: CurrentRevision::NoStream,
                ..
            }
        ),
        "{err:?}"
    );
    log.append("export-1", ExpectedRevision::Any, events(1, "a"))
        .await
        .unwrap();
    let r = log
        .append("export-1", ExpectedRevision::StreamExists, events(1, "b"))
        .await
        .unwrap();
    assert_eq!(r.next_expected_revision, 1);
}

pub async fn repeating_an_append_returns_the_original_result_and_writes_nothing(
    log: Arc<dyn EventLog>,
) {
    for (stream, expected) in [
        ("scrub-1", ExpectedRevision::NoStream),
        ("scrub-2", ExpectedRevision::Any),
        ("scrub-3", ExpectedRevision::StreamExists),
    ] {
        if expected == ExpectedRevision::StreamExists {
            log.append(stream, ExpectedRevision::NoStream, events(1, "seed"))
                .await
                .unwrap();
        }
        let batch = events(3, stream);
        let first = log.append(stream, expected, batch.clone()).await.unwrap();
        let before = count_all(&*log).await;
        let again = log.append(stream, expected, batch.clone()).await.unwrap();
        assert_eq!(
            again, first,
            "{stream}: a repeat answers the original result"
        );
        assert_eq!(
            count_all(&*log).await,
            before,
            "{stream}: a repeat writes nothing"
        );
    }
    // Exact revision: the repeat still answers the original even though the stream moved on.
    let batch = events(2, "exact");
    let first = log
        .append("scrub-1", ExpectedRevision::Exact(2), batch.clone())
        .await
        .unwrap();
    log.append("scrub-1", ExpectedRevision::Any, events(1, "later"))
        .await
        .unwrap();
    let again = log
        .append("scrub-1", ExpectedRevision::Exact(2), batch)
        .await
        .unwrap();
    assert_eq!(again, first);
}

pub async fn reusing_an_event_id_in_another_stream_is_refused(log: Arc<dyn EventLog>) {
    let batch = events(1, "a");
    log.append("deletion-1", ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    let err = log
        .append("deletion-2", ExpectedRevision::Any, batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId { ref existing_stream, .. } if existing_stream == "deletion-1"),
        "{err:?}"
    );
    assert_eq!(
        log.stream_revision("deletion-2").await.unwrap(),
        CurrentRevision::NoStream
    );
}

/// A `$metadata` event, the only kind a `$$name` metadata stream takes on KurrentDB.
fn stream_metadata() -> EventData {
    EventData {
        event_type: "$metadata".into(),
        ..foreign("{}")
    }
}

/// A foreign event as a KurrentDB client proposes it.
fn foreign(payload: &str) -> EventData {
    EventData {
        metadata: EventMetadata::Foreign {
            content_type: ContentType::Json,
            bytes: Vec::new(),
        },
        ..event(payload)
    }
}

pub async fn a_foreign_event_id_is_unique_per_stream_and_repeats_within_it(log: Arc<dyn EventLog>) {
    let shared_id = foreign("{\"n\": 1}");
    let first = log
        .append("orders-1", ExpectedRevision::Any, vec![shared_id.clone()])
        .await
        .unwrap();
    // The same id in another stream is another event (KurrentDB accepts it).
    let other = log
        .append("orders-2", ExpectedRevision::Any, vec![shared_id.clone()])
        .await
        .unwrap();
    assert_ne!(other.position, first.position);
    // In its own stream it is a repeat: the first result, nothing written.
    let again = log
        .append("orders-1", ExpectedRevision::Any, vec![shared_id.clone()])
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(count_all(log.as_ref()).await, 2);
    for stream in ["orders-1", "orders-2"] {
        let read = log
            .read_stream(stream, Direction::Forwards, StreamStart::Beginning, 10)
            .await
            .unwrap();
        assert_eq!(read.len(), 1, "{stream}");
        assert_eq!(read[0].id, shared_id.id, "{stream} reads the client's id");
    }
    let all = log.read_all(0, 10).await.unwrap();
    assert!(all.iter().all(|e| e.id == shared_id.id));
}

pub async fn a_tombstoned_stream_takes_no_more_events(log: Arc<dyn EventLog>) {
    let (before, closed) = tombstone_refuses_every_later_append(&log).await;
    assert_eq!(
        log.stream_revision("orders-7").await.unwrap(),
        CurrentRevision::At(closed.next_expected_revision)
    );
    // An exact repeat of the append before the tombstone still answers its result.
    let again = log
        .append("orders-7", ExpectedRevision::NoStream, vec![before])
        .await
        .unwrap();
    assert_eq!(again.next_expected_revision, 0);
}

/// Tombstones `orders-7` after one event and checks that no append reaches it any more, alone
/// or in an atomic append (which then writes nothing): the part of the tombstone check every
/// backend meets, the KurrentDB one included (whose tombstoned streams cannot be read). Returns
/// the event before the tombstone and the tombstone's result.
pub async fn tombstone_refuses_every_later_append(
    log: &Arc<dyn EventLog>,
) -> (EventData, AppendResult) {
    let before = foreign("{}");
    log.append("orders-7", ExpectedRevision::NoStream, vec![before.clone()])
        .await
        .unwrap();
    let tombstone = EventData {
        event_type: ledger::store::TOMBSTONE_EVENT_TYPE.into(),
        ..foreign("")
    };
    let closed = log
        .append("orders-7", ExpectedRevision::Exact(0), vec![tombstone])
        .await
        .unwrap();
    assert_eq!(closed.next_expected_revision, 1);
    for expected in [
        ExpectedRevision::Any,
        ExpectedRevision::Exact(1),
        ExpectedRevision::StreamExists,
    ] {
        let err = log
            .append("orders-7", expected, vec![foreign("{}")])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::StreamDeleted { ref stream } if stream == "orders-7"),
            "{expected:?}: {err:?}"
        );
    }
    // Nor as part of an atomic append, which then writes nothing at all.
    let err = log
        .append_atomic(vec![
            StreamAppend {
                stream: "orders-8".into(),
                expected: ExpectedRevision::Any,
                events: vec![foreign("{}")],
            },
            StreamAppend {
                stream: "orders-7".into(),
                expected: ExpectedRevision::Any,
                events: vec![foreign("{}")],
            },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StreamDeleted { .. }), "{err:?}");
    assert_eq!(
        log.stream_revision("orders-8").await.unwrap(),
        CurrentRevision::NoStream
    );
    (before, closed)
}

pub async fn stream_names_with_a_prefix_are_listed_in_byte_order_once_each(log: Arc<dyn EventLog>) {
    for stream in [
        "$$orders-2",
        "$$orders-1",
        "orders-1",
        "$$orders-1",
        "$$p-1",
    ] {
        let event = if stream.starts_with("$$") {
            stream_metadata()
        } else {
            foreign("{}")
        };
        log.append(stream, ExpectedRevision::Any, vec![event])
            .await
            .unwrap();
    }
    assert_eq!(
        log.stream_names_with_prefix("$$").await.unwrap(),
        ["$$orders-1", "$$orders-2", "$$p-1"]
    );
    assert_eq!(
        log.stream_names_with_prefix("$$orders-").await.unwrap(),
        ["$$orders-1", "$$orders-2"]
    );
    assert!(log
        .stream_names_with_prefix("nothing")
        .await
        .unwrap()
        .is_empty());
}

pub async fn a_partly_repeated_append_is_refused_and_writes_nothing(log: Arc<dyn EventLog>) {
    let batch = events(2, "a");
    log.append("deletion-3", ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    let mut mixed = vec![batch[0].clone()];
    mixed.push(event("new"));
    let err = log
        .append("deletion-3", ExpectedRevision::Any, mixed)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId { .. }),
        "{err:?}"
    );
    assert_eq!(count_all(&*log).await, 2);
}

pub async fn a_stream_reads_forwards_and_backwards_from_a_revision(log: Arc<dyn EventLog>) {
    log.append("donation-7", ExpectedRevision::NoStream, events(10, "e"))
        .await
        .unwrap();
    let fwd = log
        .read_stream(
            "donation-7",
            Direction::Forwards,
            StreamStart::Revision(4),
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        fwd.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    let back = log
        .read_stream(
            "donation-7",
            Direction::Backwards,
            StreamStart::Revision(4),
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![4, 3, 2, 1, 0]
    );
    let last = log
        .read_stream(
            "donation-7",
            Direction::Backwards,
            StreamStart::Beginning,
            1,
        )
        .await
        .unwrap();
    assert_eq!(last[0].revision, 9);
    assert_eq!(last[0].payload, b"e-9");
}

pub async fn a_missing_stream_reads_empty_and_has_no_revision(log: Arc<dyn EventLog>) {
    let read = log
        .read_stream(
            "donation-404",
            Direction::Forwards,
            StreamStart::Beginning,
            10,
        )
        .await
        .unwrap();
    assert!(read.is_empty());
    assert_eq!(
        log.stream_revision("donation-404").await.unwrap(),
        CurrentRevision::NoStream
    );
    assert_eq!(log.head_position().await.unwrap(), None);
}

pub async fn read_all_is_in_global_commit_order_from_a_position(log: Arc<dyn EventLog>) {
    let mut expected_payloads = Vec::new();
    for i in 0..5 {
        let stream = format!("payment-{}", i % 2);
        let e = event(&format!("p{i}"));
        expected_payloads.push(e.payload.clone());
        log.append(&stream, ExpectedRevision::Any, vec![e])
            .await
            .unwrap();
    }
    let all = log.read_all(0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(),
        expected_payloads
    );
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let from_third = log.read_all(all[2].position, 100).await.unwrap();
    assert_eq!(from_third.len(), 3, "from is inclusive");
    let page = log.read_all(all[1].position, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(log.head_position().await.unwrap(), Some(all[4].position));
}

pub async fn read_all_backwards_is_newest_first_before_a_position(log: Arc<dyn EventLog>) {
    assert!(log.read_all_backwards(None, 10).await.unwrap().is_empty());
    for i in 0..5 {
        log.append(
            &format!("payment-{i}"),
            ExpectedRevision::Any,
            vec![event("p")],
        )
        .await
        .unwrap();
    }
    let all = log.read_all(0, 100).await.unwrap();
    let positions = |events: Vec<ledger::store::RecordedEvent>| {
        events.iter().map(|e| e.position).collect::<Vec<_>>()
    };
    let newest_first: Vec<_> = all.iter().rev().map(|e| e.position).collect();
    assert_eq!(
        positions(log.read_all_backwards(None, 100).await.unwrap()),
        newest_first
    );
    assert_eq!(
        positions(
            log.read_all_backwards(Some(all[3].position), 2)
                .await
                .unwrap()
        ),
        vec![all[2].position, all[1].position],
        "before is exclusive"
    );
    assert!(log
        .read_all_backwards(Some(all[0].position), 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn a_foreign_envelope_round_trips_byte_for_byte_beside_the_ledgers(
    log: Arc<dyn EventLog>,
) {
    let foreign = EventData {
        metadata: EventMetadata::Foreign {
            content_type: ContentType::Json,
            bytes: b"{\"not\": \"the ledger's\",  \"spacing\": kept}".to_vec(),
        },
        ..event("{}")
    };
    let binary = EventData {
        metadata: EventMetadata::Foreign {
            content_type: ContentType::Binary,
            bytes: Vec::new(),
        },
        ..event("\u{0}\u{1}")
    };
    let ours = event("ours");
    log.append(
        "orders-1",
        ExpectedRevision::NoStream,
        vec![foreign.clone(), ours.clone(), binary.clone()],
    )
    .await
    .unwrap();
    // A metadata stream of `$$name` form is a valid stream name.
    log.append(
        "$$orders-1",
        ExpectedRevision::NoStream,
        vec![stream_metadata()],
    )
    .await
    .unwrap();
    let read = log
        .read_stream("orders-1", Direction::Forwards, StreamStart::Beginning, 10)
        .await
        .unwrap();
    assert_eq!(read[0].metadata, foreign.metadata);
    assert_eq!(read[1].metadata, ours.metadata);
    assert_eq!(read[2].metadata, binary.metadata);
    assert_eq!(read[2].metadata.content_type(), ContentType::Binary);
    assert!(read[0].metadata.ledger().is_none());
}

pub async fn a_category_reads_only_its_own_streams(log: Arc<dyn EventLog>) {
    log.append("donation-1", ExpectedRevision::Any, events(2, "d"))
        .await
        .unwrap();
    log.append("payment-1", ExpectedRevision::Any, events(1, "p"))
        .await
        .unwrap();
    log.append("donation-2", ExpectedRevision::Any, events(1, "d"))
        .await
        .unwrap();
    log.append("donations-3", ExpectedRevision::Any, events(1, "x"))
        .await
        .unwrap();
    let cat = log.read_category("donation", 0, 100).await.unwrap();
    assert_eq!(cat.len(), 3);
    assert!(cat.iter().all(|e| e.stream.starts_with("donation-")));
    assert!(cat.windows(2).all(|w| w[0].position < w[1].position));
    let later = log
        .read_category("donation", cat[1].position + 1, 100)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].stream, "donation-2");
}

pub async fn the_envelope_round_trips(log: Arc<dyn EventLog>) {
    let correlation = Uuid::new_v4();
    let mut e = event("payload");
    e.event_type = "DonationCreated.v2".into();
    e.metadata = Metadata {
        actor: Actor {
            kind: ActorKind::FocUser,
            id: "foc:alice".into(),
        },
        source: "foc-backend".into(),
        correlation_id: correlation,
        causation_id: Uuid::new_v4(),
        occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_000).unwrap(),
    }
    .into();
    log.append("donation-9", ExpectedRevision::NoStream, vec![e.clone()])
        .await
        .unwrap();
    let read = log
        .read_stream("donation-9", Direction::Forwards, StreamStart::Beginning, 1)
        .await
        .unwrap();
    let r = &read[0];
    assert_eq!(r.id, e.id);
    assert_eq!(r.event_type, "DonationCreated.v2");
    assert_eq!(r.payload, e.payload);
    assert_eq!(r.metadata, e.metadata);
    assert_eq!(r.stream, "donation-9");
}

pub async fn an_atomic_append_writes_every_stream_or_none(log: Arc<dyn EventLog>) {
    log.append("payment-5", ExpectedRevision::Any, events(1, "seed"))
        .await
        .unwrap();
    let parts = vec![
        StreamAppend {
            stream: "donation-5".into(),
            expected: ExpectedRevision::NoStream,
            events: events(1, "d"),
        },
        StreamAppend {
            stream: "payment-5".into(),
            expected: ExpectedRevision::NoStream,
            events: events(1, "p"),
        },
    ];
    let err = log.append_atomic(parts).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref stream, .. } if stream == "payment-5"),
        "{err:?}"
    );
    assert_eq!(
        log.stream_revision("donation-5").await.unwrap(),
        CurrentRevision::NoStream
    );
    let parts = vec![
        StreamAppend {
            stream: "donation-5".into(),
            expected: ExpectedRevision::NoStream,
            events: events(2, "d"),
        },
        StreamAppend {
            stream: "payment-5".into(),
            expected: ExpectedRevision::Exact(0),
            events: events(1, "p"),
        },
    ];
    let results: Vec<AppendResult> = log.append_atomic(parts.clone()).await.unwrap();
    assert_eq!(results[0].next_expected_revision, 1);
    assert_eq!(results[1].next_expected_revision, 1);
    let again = log.append_atomic(parts).await.unwrap();
    assert_eq!(again, results, "an atomic append is idempotent as a whole");
}

pub async fn bad_input_is_rejected_with_the_field_and_writes_nothing(log: Arc<dyn EventLog>) {
    let cases: Vec<(&str, Vec<StreamAppend>)> = vec![
        (
            "stream",
            vec![StreamAppend {
                stream: "".into(),
                expected: ExpectedRevision::Any,
                events: events(1, "x"),
            }],
        ),
        (
            "stream",
            vec![StreamAppend {
                stream: "$all".into(),
                expected: ExpectedRevision::Any,
                events: events(1, "x"),
            }],
        ),
        (
            "stream",
            vec![StreamAppend {
                stream: "a b".into(),
                expected: ExpectedRevision::Any,
                events: events(1, "x"),
            }],
        ),
        (
            "events",
            vec![StreamAppend {
                stream: "donation-1".into(),
                expected: ExpectedRevision::Any,
                events: vec![],
            }],
        ),
        (
            "payload",
            vec![StreamAppend {
                stream: "donation-1".into(),
                expected: ExpectedRevision::Any,
                events: vec![EventData {
                    payload: vec![0; MAX_EVENT_BYTES + 1],
                    ..event("x")
                }],
            }],
        ),
        (
            "event_type",
            vec![StreamAppend {
                stream: "donation-1".into(),
                expected: ExpectedRevision::Any,
                events: vec![EventData {
                    event_type: String::new(),
                    ..event("x")
                }],
            }],
        ),
        (
            "event_id",
            vec![StreamAppend {
                stream: "donation-1".into(),
                expected: ExpectedRevision::Any,
                events: vec![EventData {
                    id: Uuid::nil(),
                    ..event("x")
                }],
            }],
        ),
        ("event_id", {
            let e = event("twice");
            vec![StreamAppend {
                stream: "donation-1".into(),
                expected: ExpectedRevision::Any,
                events: vec![e.clone(), e],
            }]
        }),
        (
            "stream",
            vec![
                StreamAppend {
                    stream: "donation-1".into(),
                    expected: ExpectedRevision::Any,
                    events: events(1, "x"),
                },
                StreamAppend {
                    stream: "donation-1".into(),
                    expected: ExpectedRevision::Any,
                    events: events(1, "y"),
                },
            ],
        ),
    ];
    for (field, parts) in cases {
        let err = log.append_atomic(parts).await.unwrap_err();
        match &err {
            StoreError::InvalidInput { field: f, rule } => {
                assert_eq!(*f, field, "{err}");
                assert!(!rule.is_empty());
            }
            other => panic!("expected invalid input on {field}, got {other:?}"),
        }
    }
    assert!("sometimes".parse::<ExpectedRevision>().is_err());
    assert_eq!(count_all(&*log).await, 0);
    assert!(matches!(
        log.read_stream("", Direction::Forwards, StreamStart::Beginning, 1)
            .await,
        Err(StoreError::InvalidInput {
            field: "stream",
            ..
        })
    ));
}

pub async fn concurrent_writers_with_exact_revisions_never_both_win(log: Arc<dyn EventLog>) {
    log.append("donation-c", ExpectedRevision::NoStream, events(1, "seed"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(
                "donation-c",
                ExpectedRevision::Exact(0),
                vec![event(&format!("w{i}"))],
            )
            .await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                winners += 1;
                assert_eq!(r.next_expected_revision, 1);
            }
            Err(StoreError::Conflict {
                actual: CurrentRevision::At(1),
                ..
            }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(
        log.stream_revision("donation-c").await.unwrap(),
        CurrentRevision::At(1)
    );
}

pub async fn concurrent_appenders_all_land_with_unique_positions(log: Arc<dyn EventLog>) {
    let mut tasks = Vec::new();
    for w in 0..32 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..20 {
                let stream = format!("payment-{}", (w * 7 + i) % 10);
                out.push(
                    log.append(&stream, ExpectedRevision::Any, vec![event("c")])
                        .await
                        .unwrap(),
                );
            }
            out
        }));
    }
    let mut positions = HashSet::new();
    for t in tasks {
        for r in t.await.unwrap() {
            assert!(
                positions.insert(r.position),
                "position {} handed out twice",
                r.position
            );
        }
    }
    assert_eq!(count_all(&*log).await, 640);
    for s in 0..10 {
        let read = log
            .read_stream(
                &format!("payment-{s}"),
                Direction::Forwards,
                StreamStart::Beginning,
                1000,
            )
            .await
            .unwrap();
        assert!(
            read.iter().enumerate().all(|(i, e)| e.revision == i as u64),
            "revisions contiguous"
        );
    }
}

pub async fn a_subscription_catches_up_then_turns_live_with_no_gap_and_no_duplicate(
    log: Arc<dyn EventLog>,
) {
    for i in 0..50 {
        log.append(
            &format!("donation-{}", i % 5),
            ExpectedRevision::Any,
            vec![event("old")],
        )
        .await
        .unwrap();
    }
    let all = log.read_all(0, 1000).await.unwrap();
    let from = all[10].position;
    let mut sub = log.subscribe_all(from);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    log.append(
                        &format!("payment-{w}"),
                        ExpectedRevision::Any,
                        vec![event(&format!("live{i}"))],
                    )
                    .await
                    .unwrap();
                    if i % 5 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    while seen.len() < 40 + 200 {
        let next = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("subscription stalled")
            .expect("subscription ended")
            .unwrap();
        seen.push(next);
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sub.next())
            .await
            .is_err(),
        "no event beyond the ones written"
    );
    let expected = log.read_all(from, 10_000).await.unwrap();
    assert_eq!(
        seen.iter().map(|e| e.id).collect::<Vec<_>>(),
        expected.iter().map(|e| e.id).collect::<Vec<_>>(),
        "the subscription saw exactly the log from its start, in order"
    );
}

pub async fn the_highest_stream_number_of_a_category_ignores_other_categories_and_non_numbers(
    log: Arc<dyn EventLog>,
) {
    assert_eq!(log.highest_stream_number("donation").await.unwrap(), None);
    for stream in [
        "donation-9",
        "donation-10",
        "donation-x",
        "payment-500",
        "donation-2",
        // Just outside the range of stream names `donation-…`, or inside it without a number.
        "donations-700",
        "donation_x-800",
        "donation-3-extra",
        "donation",
    ] {
        log.append(stream, ExpectedRevision::Any, events(1, stream))
            .await
            .unwrap();
    }
    assert_eq!(
        log.highest_stream_number("donation").await.unwrap(),
        Some(10)
    );
    assert_eq!(
        log.highest_stream_number("payment").await.unwrap(),
        Some(500)
    );
    assert_eq!(log.highest_stream_number("export").await.unwrap(), None);
    assert!(log.highest_stream_number("bad-category").await.is_err());
}

/// Generates one `#[tokio::test]` per conformance check for a backend.
#[macro_export]
macro_rules! event_log_conformance {
    // Every check but the tombstone one's reading of a tombstoned stream, which KurrentDB
    // refuses: what every backend meets, the KurrentDB log included.
    (@portable $factory:expr) => {
        $crate::event_log_conformance!($factory;
            appending_to_a_new_stream_starts_at_revision_zero,
            no_stream_conflicts_when_the_stream_exists_and_reports_both_revisions,
            exact_revision_accepts_the_current_revision_only,
            stream_exists_requires_an_existing_stream,
            repeating_an_append_returns_the_original_result_and_writes_nothing,
            reusing_an_event_id_in_another_stream_is_refused,
            a_foreign_event_id_is_unique_per_stream_and_repeats_within_it,
            stream_names_with_a_prefix_are_listed_in_byte_order_once_each,
            a_partly_repeated_append_is_refused_and_writes_nothing,
            a_stream_reads_forwards_and_backwards_from_a_revision,
            a_missing_stream_reads_empty_and_has_no_revision,
            read_all_is_in_global_commit_order_from_a_position,
            read_all_backwards_is_newest_first_before_a_position,
            a_foreign_envelope_round_trips_byte_for_byte_beside_the_ledgers,
            a_category_reads_only_its_own_streams,
            the_envelope_round_trips,
            an_atomic_append_writes_every_stream_or_none,
            bad_input_is_rejected_with_the_field_and_writes_nothing,
            concurrent_writers_with_exact_revisions_never_both_win,
            concurrent_appenders_all_land_with_unique_positions,
            a_subscription_catches_up_then_turns_live_with_no_gap_and_no_duplicate,
            the_highest_stream_number_of_a_category_ignores_other_categories_and_non_numbers,
        );
    };
    ($factory:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (log, _guard) = $factory().await;
                $crate::conformance::$check(log).await;
            }
        )+
    };
    ($factory:expr) => {
        $crate::event_log_conformance!(@portable $factory);
        $crate::event_log_conformance!($factory; a_tombstoned_stream_takes_no_more_events);
    };
}
