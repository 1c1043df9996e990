//! The error shapes KurrentDB clients recognise: a gRPC status, its message text (the Python
//! client parses it), and the `exception` trailer with its fields (the Rust, .NET, Node and Go
//! clients read it); and, for BatchAppend, the one-`Any` `google.rpc.Status` in the response.
//!
//! Message texts follow the server's (`RpcExceptions.cs`), because clients match on them: the
//! Python client reads "WrongExpectedVersion", "Actual version: -1" and "is deleted".

use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::proto::kurrentdb::event_store::client as shared;
use crate::proto::kurrentdb::google::rpc;
use crate::store::{CurrentRevision, ExpectedRevision};

/// A refusal: what the call answers instead of its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller may not do this.
    AccessDenied,
    /// Credentials were sent but do not match a user.
    BadCredentials,
    /// The stream was tombstoned (or, for a `StreamExists` expectation, soft-deleted).
    StreamDeleted(String),
    /// The stream's revision is not the expected one.
    WrongExpectedVersion {
        /// The operation, as the server names it (`Append`, `Delete`, `Tombstone`).
        operation: &'static str,
        /// The stream.
        stream: String,
        /// What the caller expected.
        expected: ExpectedRevision,
        /// What the stream is at.
        actual: CurrentRevision,
    },
    /// The append is larger than the server takes.
    MaximumAppendSizeExceeded(u32),
    /// A proposed event lacks a required metadata key (`type`, `content-type`).
    MissingMetadata(&'static str),
    /// The request is malformed: the field and the rule.
    BadRequest(String),
    /// The server failed; the detail is logged, not sent.
    Internal(String),
    /// The server is shutting down or its log stopped.
    Unavailable(String),
    /// The operation's deadline passed before it ended (what the log did meanwhile stands:
    /// an idempotent retry answers its result).
    Timeout(String),
}

/// KurrentDB's number for a revision expectation in messages: -2 any, -1 no stream, -4 exists.
fn expected_number(e: ExpectedRevision) -> i64 {
    match e {
        ExpectedRevision::Any => -2,
        ExpectedRevision::NoStream => -1,
        ExpectedRevision::StreamExists => -4,
        ExpectedRevision::Exact(r) => r as i64,
    }
}

/// KurrentDB's number for a current revision in messages: -1 for no stream.
pub fn actual_number(a: CurrentRevision) -> i64 {
    match a {
        CurrentRevision::NoStream => -1,
        CurrentRevision::At(r) => r as i64,
    }
}

fn with_trailers(code: Code, message: String, trailers: &[(&'static str, String)]) -> Status {
    let mut map = MetadataMap::new();
    for (key, value) in trailers {
        if let Ok(v) = MetadataValue::try_from(value.as_str()) {
            map.insert(*key, v);
        }
    }
    Status::with_metadata(code, message, map)
}

impl Refusal {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::BadCredentials => "bad_credentials",
            Self::StreamDeleted(_) => "stream_deleted",
            Self::WrongExpectedVersion { .. } => "wrong_expected_version",
            Self::MaximumAppendSizeExceeded(_) => "maximum_append_size_exceeded",
            Self::MissingMetadata(_) => "missing_required_metadata_property",
            Self::BadRequest(_) => "bad_request",
            Self::Internal(_) => "internal",
            Self::Unavailable(_) => "unavailable",
            Self::Timeout(_) => "timeout",
        }
    }

    /// The gRPC status, with the server's message text and `exception` trailers.
    pub fn status(&self) -> Status {
        match self {
            Self::AccessDenied => with_trailers(
                Code::PermissionDenied,
                "Access Denied".into(),
                &[("exception", "access-denied".into())],
            ),
            Self::BadCredentials => with_trailers(
                Code::Unauthenticated,
                "Bad username or password".into(),
                &[("exception", "not-authenticated".into())],
            ),
            Self::StreamDeleted(stream) => with_trailers(
                Code::FailedPrecondition,
                format!("Event stream '{stream}' is deleted."),
                &[
                    ("exception", "stream-deleted".into()),
                    ("stream-name", stream.clone()),
                ],
            ),
            Self::WrongExpectedVersion {
                operation,
                stream,
                expected,
                actual,
            } => {
                let (e, a) = (expected_number(*expected), actual_number(*actual));
                with_trailers(
                    Code::FailedPrecondition,
                    format!(
                        "{operation} failed due to WrongExpectedVersion. Stream: {stream}, \
                         Expected version: {e}, Actual version: {a}"
                    ),
                    &[
                        ("exception", "wrong-expected-version".into()),
                        ("stream-name", stream.clone()),
                        ("expected-version", e.to_string()),
                        ("actual-version", a.to_string()),
                    ],
                )
            }
            Self::MaximumAppendSizeExceeded(max) => with_trailers(
                Code::InvalidArgument,
                format!("Maximum Append Size of {max} Exceeded."),
                &[
                    ("exception", "maximum-append-size-exceeded".into()),
                    ("maximum-append-size", max.to_string()),
                ],
            ),
            Self::MissingMetadata(key) => with_trailers(
                Code::InvalidArgument,
                format!("Required Metadata Property '{key}' is missing"),
                &[
                    ("exception", "missing-required-metadata-property".into()),
                    ("required-properties", (*key).into()),
                ],
            ),
            Self::BadRequest(message) => Status::invalid_argument(message.clone()),
            Self::Internal(_) => Status::internal("the ledger failed; see its log"),
            Self::Unavailable(message) => Status::unavailable(message.clone()),
            Self::Timeout(what) => Status::aborted(format!("Operation timed out: {what}")),
        }
    }

    /// The BatchAppend form: a `google.rpc.Status` whose one `Any` detail names the error as
    /// the clients check it (`event_store.client.WrongExpectedVersion`, …).
    pub fn batch_status(&self) -> rpc::Status {
        let status = self.status();
        let detail = match self {
            Self::AccessDenied | Self::BadCredentials => {
                any("AccessDenied", shared::AccessDenied {}.encode_to_vec())
            }
            Self::StreamDeleted(stream) => any(
                "StreamDeleted",
                shared::StreamDeleted {
                    stream_identifier: Some(shared::StreamIdentifier {
                        stream_name: stream.clone().into_bytes(),
                    }),
                }
                .encode_to_vec(),
            ),
            Self::WrongExpectedVersion {
                expected, actual, ..
            } => any(
                "WrongExpectedVersion",
                batch_wrong_version(*expected, *actual),
            ),
            Self::MaximumAppendSizeExceeded(max) => any(
                "MaximumAppendSizeExceeded",
                shared::MaximumAppendSizeExceeded {
                    max_append_size: *max,
                }
                .encode_to_vec(),
            ),
            Self::MissingMetadata(_) | Self::BadRequest(_) => any(
                "BadRequest",
                shared::BadRequest {
                    message: status.message().to_owned(),
                }
                .encode_to_vec(),
            ),
            Self::Timeout(_) => any("Timeout", shared::Timeout {}.encode_to_vec()),
            Self::Internal(_) | Self::Unavailable(_) => {
                any("Unknown", shared::Unknown {}.encode_to_vec())
            }
        };
        rpc::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: Some(detail),
        }
    }
}

fn any(message: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/event_store.client.{message}"),
        value,
    }
}

fn batch_wrong_version(expected: ExpectedRevision, actual: CurrentRevision) -> Vec<u8> {
    use shared::wrong_expected_version::{
        CurrentStreamRevisionOption as C, ExpectedStreamPositionOption as E,
    };
    shared::WrongExpectedVersion {
        current_stream_revision_option: Some(match actual {
            CurrentRevision::NoStream => C::CurrentNoStream(()),
            CurrentRevision::At(r) => C::CurrentStreamRevision(r),
        }),
        expected_stream_position_option: Some(match expected {
            ExpectedRevision::Any => E::ExpectedAny(()),
            ExpectedRevision::NoStream => E::ExpectedNoStream(()),
            ExpectedRevision::StreamExists => E::ExpectedStreamExists(()),
            ExpectedRevision::Exact(r) => E::ExpectedStreamPosition(r),
        }),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_expected_version_reads_as_the_server_words_it() {
        let status = Refusal::WrongExpectedVersion {
            operation: "Delete",
            stream: "orders-1".into(),
            expected: ExpectedRevision::Any,
            actual: CurrentRevision::NoStream,
        }
        .status();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.message(),
            "Delete failed due to WrongExpectedVersion. Stream: orders-1, Expected version: -2, \
             Actual version: -1"
        );
        let trailers = status.metadata();
        assert_eq!(trailers.get("exception").unwrap(), "wrong-expected-version");
        assert_eq!(trailers.get("actual-version").unwrap(), "-1");
        assert_eq!(trailers.get("expected-version").unwrap(), "-2");
        assert_eq!(trailers.get("stream-name").unwrap(), "orders-1");
    }

    #[test]
    fn a_batch_refusal_carries_one_any_named_as_the_clients_check_it() {
        let status = Refusal::StreamDeleted("orders-1".into()).batch_status();
        let detail = status.details.unwrap();
        assert!(detail
            .type_url
            .ends_with("event_store.client.StreamDeleted"));
        let decoded = shared::StreamDeleted::decode(detail.value.as_slice()).unwrap();
        assert_eq!(
            decoded.stream_identifier.unwrap().stream_name,
            b"orders-1".to_vec()
        );
        assert_eq!(status.code, Code::FailedPrecondition as i32);
    }
}
