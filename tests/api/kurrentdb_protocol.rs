//! The KurrentDB port through the project's own protocol client, for what the official clients
//! hide: the exact error shapes (status, message text, `exception` trailers, BatchAppend's
//! `Any` detail), bad input that must append nothing, access rules on the ledger's categories,
//! and the ledger's own events as a KurrentDB client reads them.
use std::collections::HashMap;

use futures::StreamExt;
use ledger::proto::events as ev;
use ledger::proto::kurrentdb::event_store::client::streams::{
    append_req, append_resp, batch_append_req, batch_append_resp, delete_req, read_req, read_resp,
    AppendReq, BatchAppendReq, DeleteReq, ReadReq,
};
use ledger::proto::kurrentdb::event_store::client::{self as shared, Empty, StreamIdentifier};
use ledger::store::Metadata;
use prost::Message as _;
use tonic::Code;
use uuid::Uuid;

use crate::support::api::{donation, spawn_app, with_token, ADMIN};
use crate::support::kurrentdb::{basic, serve};

fn id(text_form: bool) -> shared::Uuid {
    let id = Uuid::new_v4();
    shared::Uuid {
        value: Some(if text_form {
            shared::uuid::Value::String(id.to_string())
        } else {
            let (msb, lsb) = id.as_u64_pair();
            shared::uuid::Value::Structured(shared::uuid::Structured {
                most_significant_bits: msb as i64,
                least_significant_bits: lsb as i64,
            })
        }),
    }
}

fn stream(name: &str) -> Option<StreamIdentifier> {
    Some(StreamIdentifier {
        stream_name: name.as_bytes().to_vec(),
    })
}

fn proposed(event_type: Option<&str>, data: Vec<u8>) -> append_req::ProposedMessage {
    let mut metadata = HashMap::from([("content-type".to_owned(), "application/json".to_owned())]);
    if let Some(t) = event_type {
        metadata.insert("type".into(), t.into());
    }
    append_req::ProposedMessage {
        id: Some(id(true)),
        metadata,
        custom_metadata: Vec::new(),
        data,
    }
}

fn append_messages(
    name: &str,
    expected: append_req::options::ExpectedStreamRevision,
    events: Vec<append_req::ProposedMessage>,
) -> Vec<AppendReq> {
    let mut messages = vec![AppendReq {
        content: Some(append_req::Content::Options(append_req::Options {
            stream_identifier: stream(name),
            expected_stream_revision: Some(expected),
        })),
    }];
    messages.extend(events.into_iter().map(|m| AppendReq {
        content: Some(append_req::Content::ProposedMessage(m)),
    }));
    messages
}

fn any() -> append_req::options::ExpectedStreamRevision {
    append_req::options::ExpectedStreamRevision::Any(Empty {})
}

fn trailer(status: &tonic::Status, key: &str) -> String {
    status
        .metadata()
        .get(key)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_appends_get_the_servers_error_shapes_and_append_nothing() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let mut raw = port.raw().await;
    let head = app.log.head_position().await.unwrap();
    // No `type`.
    let refused = raw
        .append(tokio_stream::iter(append_messages(
            "orders-1",
            any(),
            vec![proposed(None, b"{}".to_vec())],
        )))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "Required Metadata Property 'type' is missing"
    );
    assert_eq!(
        trailer(&refused, "exception"),
        "missing-required-metadata-property"
    );
    // A malformed UUID.
    let mut bad_id = proposed(Some("A"), b"{}".to_vec());
    bad_id.id = Some(shared::Uuid {
        value: Some(shared::uuid::Value::String("not-a-uuid".into())),
    });
    let refused = raw
        .append(tokio_stream::iter(append_messages(
            "orders-1",
            any(),
            vec![bad_id],
        )))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("not-a-uuid"),
        "{}",
        refused.message()
    );
    // Larger than the server takes.
    let big = vec![
        proposed(Some("A"), vec![b'x'; 700_000]),
        proposed(Some("A"), vec![b'x'; 700_000]),
    ];
    let refused = raw
        .append(tokio_stream::iter(append_messages("orders-1", any(), big)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        trailer(&refused, "exception"),
        "maximum-append-size-exceeded"
    );
    assert_eq!(trailer(&refused, "maximum-append-size"), "1048576");
    // Events before the options.
    let refused = raw
        .append(tokio_stream::iter(vec![AppendReq {
            content: Some(append_req::Content::ProposedMessage(proposed(
                Some("A"),
                b"{}".to_vec(),
            ))),
        }]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    // A forged tombstone and a `$` stream name.
    for (name, event_type) in [("orders-1", "$streamDeleted"), ("$system", "A")] {
        let refused = raw
            .append(tokio_stream::iter(append_messages(
                name,
                any(),
                vec![proposed(Some(event_type), b"{}".to_vec())],
            )))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{name} {event_type}");
    }
    assert_eq!(
        app.log.head_position().await.unwrap(),
        head,
        "nothing was appended"
    );
}

#[tokio::test]
async fn a_wrong_expected_version_is_answered_in_band_with_old_and_new_fields() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let mut raw = port.raw().await;
    let answer = raw
        .append(tokio_stream::iter(append_messages(
            "orders-7",
            append_req::options::ExpectedStreamRevision::Revision(4),
            vec![proposed(Some("A"), b"{}".to_vec())],
        )))
        .await
        .unwrap()
        .into_inner();
    let Some(append_resp::Result::WrongExpectedVersion(wev)) = answer.result else {
        panic!("{answer:?}")
    };
    use append_resp::wrong_expected_version as w;
    assert_eq!(
        wev.current_revision_option,
        Some(w::CurrentRevisionOption::CurrentNoStream(Empty {}))
    );
    assert_eq!(
        wev.expected_revision_option,
        Some(w::ExpectedRevisionOption::ExpectedRevision(4))
    );
    assert_eq!(
        wev.current_revision_option_20_6_0,
        Some(w::CurrentRevisionOption2060::NoStream2060(Empty {}))
    );
    assert_eq!(
        wev.expected_revision_option_20_6_0,
        Some(w::ExpectedRevisionOption2060::ExpectedRevision2060(4))
    );
}

#[tokio::test]
async fn delete_and_read_errors_carry_the_messages_and_trailers_clients_parse() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let mut raw = port.raw().await;
    let delete = |name: &str, expected| DeleteReq {
        options: Some(delete_req::Options {
            stream_identifier: stream(name),
            expected_stream_revision: Some(expected),
        }),
    };
    let refused = raw
        .delete(delete(
            "orders-9",
            delete_req::options::ExpectedStreamRevision::Any(Empty {}),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.message(),
        "Delete failed due to WrongExpectedVersion. Stream: orders-9, Expected version: -2, Actual version: -1"
    );
    assert_eq!(trailer(&refused, "exception"), "wrong-expected-version");
    assert_eq!(trailer(&refused, "stream-name"), "orders-9");
    raw.append(tokio_stream::iter(append_messages(
        "orders-9",
        any(),
        vec![proposed(Some("A"), b"{}".to_vec())],
    )))
    .await
    .unwrap();
    raw.tombstone(ledger::proto::kurrentdb::event_store::client::streams::TombstoneReq {
        options: Some(ledger::proto::kurrentdb::event_store::client::streams::tombstone_req::Options {
            stream_identifier: stream("orders-9"),
            expected_stream_revision: Some(
                ledger::proto::kurrentdb::event_store::client::streams::tombstone_req::options::ExpectedStreamRevision::Revision(0),
            ),
        }),
    })
    .await
    .unwrap();
    let refused = raw.read(read_stream_request("orders-9")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(refused.message(), "Event stream 'orders-9' is deleted.");
    assert_eq!(trailer(&refused, "exception"), "stream-deleted");
}

fn read_stream_request(name: &str) -> ReadReq {
    use read_req::options::{stream_options, CountOption, FilterOption, StreamOption, UuidOption};
    ReadReq {
        options: Some(read_req::Options {
            stream_option: Some(StreamOption::Stream(read_req::options::StreamOptions {
                stream_identifier: stream(name),
                revision_option: Some(stream_options::RevisionOption::Start(Empty {})),
            })),
            read_direction: 0,
            resolve_links: false,
            count_option: Some(CountOption::Count(100)),
            filter_option: Some(FilterOption::NoFilter(Empty {})),
            uuid_option: Some(UuidOption {
                content: Some(read_req::options::uuid_option::Content::String(Empty {})),
            }),
            control_option: None,
        }),
    }
}

#[tokio::test]
async fn malformed_reads_are_refused_naming_what_is_wrong() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let mut raw = port.raw().await;
    let mut no_source = read_stream_request("orders-1");
    no_source.options.as_mut().unwrap().stream_option = None;
    let refused = raw.read(no_source).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("stream_option"),
        "{}",
        refused.message()
    );
    let mut bad_direction = read_stream_request("orders-1");
    bad_direction.options.as_mut().unwrap().read_direction = 7;
    assert_eq!(
        raw.read(bad_direction).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    use read_req::options::{
        filter_options, AllOptions, FilterOption, FilterOptions, StreamOption,
    };
    let mut bad_regex = read_stream_request("orders-1");
    let options = bad_regex.options.as_mut().unwrap();
    options.stream_option = Some(StreamOption::All(AllOptions {
        all_option: Some(read_req::options::all_options::AllOption::Start(Empty {})),
    }));
    options.filter_option = Some(FilterOption::Filter(FilterOptions {
        filter: Some(filter_options::Filter::EventType(
            filter_options::Expression {
                regex: "(unclosed".into(),
                prefix: Vec::new(),
            },
        )),
        window: Some(filter_options::Window::Max(32)),
        checkpoint_interval_multiplier: 1,
    }));
    let refused = raw.read(bad_regex).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("(unclosed"),
        "{}",
        refused.message()
    );
}

#[tokio::test]
async fn batch_append_errors_carry_one_any_that_names_the_error() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let mut raw = port.raw().await;
    let request = BatchAppendReq {
        correlation_id: Some(id(true)),
        options: Some(batch_append_req::Options {
            stream_identifier: stream("orders-3"),
            expected_stream_position: Some(
                batch_append_req::options::ExpectedStreamPosition::StreamPosition(5),
            ),
            deadline_option: None,
        }),
        proposed_messages: vec![batch_append_req::ProposedMessage {
            id: Some(id(false)),
            metadata: HashMap::from([
                ("type".to_owned(), "A".to_owned()),
                (
                    "content-type".to_owned(),
                    "application/octet-stream".to_owned(),
                ),
            ]),
            custom_metadata: Vec::new(),
            data: vec![1, 2, 3],
        }],
        is_final: true,
    };
    let mut answers = raw
        .batch_append(tokio_stream::iter(vec![request.clone()]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    assert_eq!(answer.correlation_id, request.correlation_id);
    assert_eq!(answer.stream_identifier, stream("orders-3"));
    let Some(batch_append_resp::Result::Error(status)) = answer.result else {
        panic!("{answer:?}")
    };
    let detail = status.details.unwrap();
    assert!(
        detail
            .type_url
            .ends_with("event_store.client.WrongExpectedVersion"),
        "{}",
        detail.type_url
    );
    let wev = shared::WrongExpectedVersion::decode(detail.value.as_slice()).unwrap();
    assert_eq!(
        wev.current_stream_revision_option,
        Some(shared::wrong_expected_version::CurrentStreamRevisionOption::CurrentNoStream(()))
    );
    // The same batch as an anonymous caller on a port without anonymous access.
    let closed = serve(app.log.clone(), false).await;
    let mut raw = closed.raw().await;
    let refused = raw
        .batch_append(tokio_stream::iter(vec![request]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(trailer(&refused, "exception"), "access-denied");
}

#[tokio::test]
async fn the_port_answers_the_health_check_clients_wait_for_beside_grpc() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let http = port.addr.port();
    let (code, _) = tokio::task::spawn_blocking(move || {
        crate::support::http_get(http, "/health/live").expect("an HTTP answer")
    })
    .await
    .unwrap();
    assert_eq!(code, 204);
    let (code, _) = tokio::task::spawn_blocking(move || {
        crate::support::http_get(http, "/no-such-page").expect("an HTTP answer")
    })
    .await
    .unwrap();
    assert_eq!(code, 404);
    // gRPC on the same port is unaffected.
    let mut raw = port.raw().await;
    raw.read(read_stream_request("orders-health"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_batch_whose_deadline_has_passed_times_out_and_appends_nothing() {
    use batch_append_req::options::DeadlineOption;
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let mut raw = port.raw().await;
    let batch = |deadline: DeadlineOption| BatchAppendReq {
        correlation_id: Some(id(true)),
        options: Some(batch_append_req::Options {
            stream_identifier: stream("orders-deadline"),
            expected_stream_position: Some(batch_append_req::options::ExpectedStreamPosition::Any(
                (),
            )),
            deadline_option: Some(deadline),
        }),
        proposed_messages: vec![batch_append_req::ProposedMessage {
            id: Some(id(false)),
            metadata: HashMap::from([
                ("type".to_owned(), "A".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]),
            custom_metadata: Vec::new(),
            data: b"{}".to_vec(),
        }],
        is_final: true,
    };
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    for deadline in [
        DeadlineOption::Deadline(prost_types::Duration {
            seconds: 0,
            nanos: 0,
        }),
        DeadlineOption::Deadline(prost_types::Duration {
            seconds: -3,
            nanos: 0,
        }),
        DeadlineOption::Deadline21100(prost_types::Timestamp {
            seconds: past.timestamp(),
            nanos: 0,
        }),
    ] {
        let answer = raw
            .batch_append(tokio_stream::iter(vec![batch(deadline)]))
            .await
            .unwrap()
            .into_inner()
            .next()
            .await
            .unwrap()
            .unwrap();
        let Some(batch_append_resp::Result::Error(status)) = answer.result else {
            panic!("{deadline:?}: {answer:?}")
        };
        assert_eq!(status.code, Code::Aborted as i32, "{deadline:?}");
        assert!(
            status.message.starts_with("Operation timed out"),
            "{}",
            status.message
        );
        let detail = status.details.unwrap();
        assert!(
            detail.type_url.ends_with("event_store.client.Timeout"),
            "{}",
            detail.type_url
        );
    }
    assert_eq!(
        app.log.stream_revision("orders-deadline").await.unwrap(),
        ledger::store::CurrentRevision::NoStream,
        "nothing appended"
    );
    // A deadline in the future (the Python client's 315,576,000,000 s among them) appends.
    for seconds in [30, 315_576_000_000] {
        let answer = raw
            .batch_append(tokio_stream::iter(vec![batch(DeadlineOption::Deadline(
                prost_types::Duration { seconds, nanos: 0 },
            ))]))
            .await
            .unwrap()
            .into_inner()
            .next()
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(answer.result, Some(batch_append_resp::Result::Success(_))),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn a_granted_writer_appends_to_a_ledger_category_only_with_the_ledgers_envelope() {
    let app = spawn_app().await;
    let port = serve(app.log.clone(), false).await;
    let mut raw = port.raw().await;
    let messages = |custom_metadata: Vec<u8>| {
        let mut event = proposed(Some("DonationCommentAdded.v1"), vec![]);
        event.custom_metadata = custom_metadata;
        append_messages("donation-424242", any(), vec![event])
    };
    let head = app.log.head_position().await.unwrap();
    let refused = raw
        .append(basic(
            tokio_stream::iter(messages(b"{}".to_vec())),
            "etl",
            "etl-pw",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = raw
        .append(basic(
            tokio_stream::iter(messages(b"{\"by\":\"me\"}".to_vec())),
            "ops",
            "ops-pw",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("envelope"),
        "{}",
        refused.message()
    );
    assert_eq!(app.log.head_position().await.unwrap(), head);
    let envelope = Metadata::new(
        ledger::store::Actor::system("ops-tool"),
        "ops",
        Uuid::new_v4(),
    );
    let answer = raw
        .append(basic(
            tokio_stream::iter(messages(envelope.to_bytes())),
            "ops",
            "ops-pw",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        matches!(answer.result, Some(append_resp::Result::Success(_))),
        "{answer:?}"
    );
    let written = app.log.read_all(head.unwrap_or(0) + 1, 10).await.unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].metadata.ledger(), Some(&envelope));
}

#[tokio::test]
async fn the_ledgers_own_events_read_as_protobuf_with_json_envelopes_and_sealed_personal_data() {
    let mut app = spawn_app().await;
    let added = app
        .client
        .add_donation(with_token(
            donation(ev::PaymentMethod::DirectDebit, 2_500),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let port = serve(app.log.clone(), false).await;
    let mut raw = port.raw().await;
    let name = format!("donation-{}", added.donation_id);
    let mut reads = raw
        .read(basic(read_stream_request(&name), "reader", "reader-pw"))
        .await
        .unwrap()
        .into_inner();
    let logged = app
        .log
        .read_stream(
            &name,
            ledger::store::Direction::Forwards,
            ledger::store::StreamStart::Beginning,
            10,
        )
        .await
        .unwrap();
    let mut read = Vec::new();
    while let Some(message) = reads.next().await {
        if let Some(read_resp::Content::Event(e)) = message.unwrap().content {
            read.push(e.event.unwrap());
        }
    }
    assert_eq!(read.len(), logged.len());
    assert!(!read.is_empty());
    for (client_view, log_view) in read.iter().zip(&logged) {
        assert_eq!(client_view.metadata["type"], log_view.event_type);
        assert_eq!(
            client_view.metadata["content-type"],
            "application/octet-stream"
        );
        assert_eq!(
            client_view.data, log_view.payload,
            "the log's bytes, sealed fields included"
        );
        let envelope = Metadata::from_bytes(&client_view.custom_metadata).unwrap();
        assert_eq!(Some(&envelope), log_view.metadata.ledger());
        assert_eq!(client_view.commit_position, log_view.position);
        let bytes = [
            client_view.data.as_slice(),
            client_view.custom_metadata.as_slice(),
        ]
        .concat();
        for secret in [
            "Zwiebelmeier",
            "adelheid.zwiebelmeier@example.org",
            "Geheimweg",
            "DE02120300000000202051",
        ] {
            assert!(
                !crate::support::contains(&bytes, secret.as_bytes()),
                "{secret} in clear"
            );
        }
    }
}
