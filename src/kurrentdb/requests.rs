//! Requests as a KurrentDB client sends them, built from the generated protocol types: for
//! `ledger bench`'s port figures and the tests that drive the port with the raw client (the
//! official clients build the same messages).

use std::collections::HashMap;

use uuid::Uuid;

use crate::proto::kurrentdb::event_store::client::streams::{
    append_req, batch_append_req, read_req, AppendReq, BatchAppendReq, ReadReq,
};
use crate::proto::kurrentdb::event_store::client::{self as shared, Empty, StreamIdentifier};

/// One event as a client proposes it.
#[derive(Debug, Clone)]
pub struct Proposed<'a> {
    /// The event's id.
    pub id: Uuid,
    /// Its type.
    pub event_type: &'a str,
    /// `application/json` or `application/octet-stream`.
    pub content_type: &'a str,
    /// The client's custom metadata.
    pub custom_metadata: Vec<u8>,
    /// The payload.
    pub data: Vec<u8>,
}

fn message_id(id: Uuid) -> shared::Uuid {
    shared::Uuid {
        value: Some(shared::uuid::Value::String(id.to_string())),
    }
}

fn type_metadata(event: &Proposed<'_>) -> HashMap<String, String> {
    HashMap::from([
        ("type".to_owned(), event.event_type.to_owned()),
        ("content-type".to_owned(), event.content_type.to_owned()),
    ])
}

/// One whole append on a `Streams.BatchAppend` call (final, any expected revision, no
/// deadline), as the clients send each of their appends on a call they keep open.
pub fn batch_append_any<'a>(
    correlation_id: Uuid,
    stream: &str,
    events: impl IntoIterator<Item = Proposed<'a>>,
) -> BatchAppendReq {
    BatchAppendReq {
        correlation_id: Some(message_id(correlation_id)),
        options: Some(batch_append_req::Options {
            stream_identifier: Some(StreamIdentifier {
                stream_name: stream.as_bytes().to_vec(),
            }),
            expected_stream_position: Some(batch_append_req::options::ExpectedStreamPosition::Any(
                (),
            )),
            deadline_option: None,
        }),
        proposed_messages: events
            .into_iter()
            .map(|event| batch_append_req::ProposedMessage {
                id: Some(message_id(event.id)),
                metadata: type_metadata(&event),
                custom_metadata: event.custom_metadata,
                data: event.data,
            })
            .collect(),
        is_final: true,
    }
}

/// The messages of one `Streams.Append` call: the options (any expected revision), then each
/// event.
pub fn append_any<'a>(
    stream: &str,
    events: impl IntoIterator<Item = Proposed<'a>>,
) -> Vec<AppendReq> {
    let options = AppendReq {
        content: Some(append_req::Content::Options(append_req::Options {
            stream_identifier: Some(StreamIdentifier {
                stream_name: stream.as_bytes().to_vec(),
            }),
            expected_stream_revision: Some(append_req::options::ExpectedStreamRevision::Any(
                Empty {},
            )),
        })),
    };
    std::iter::once(options)
        .chain(events.into_iter().map(|event| AppendReq {
            content: Some(append_req::Content::ProposedMessage(
                append_req::ProposedMessage {
                    id: Some(message_id(event.id)),
                    metadata: type_metadata(&event),
                    custom_metadata: event.custom_metadata,
                    data: event.data,
                },
            )),
        }))
        .collect()
}

/// A catch-up subscription to `$all` from the start, unfiltered.
pub fn subscribe_all_from_start() -> ReadReq {
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
