//! KurrentDB's multi-stream atomic append (protocol v2, `StreamsService.AppendSession`, as
//! KurrentDB 25.1+ serves it): the port's service, and the wire conventions it shares with
//! the KurrentDB log backend's client (`store::kurrent`), which writes every append through it.
//!
//! A session is one `AppendRequest` per stream; the port writes them with one
//! `EventLog::append_atomic`, so every stream's records are written or none. Records take the
//! same rules as a v1 append (grants, size limit, the ledger's envelope in its categories,
//! idempotent retries by record id). A record's metadata travels as its property
//! [`METADATA_PROPERTY`] (the exact bytes, as text); a record with other user properties gets
//! them as a JSON object instead. Refusals carry one `google.rpc.Status` detail: KurrentDB's
//! `StreamRevisionConflictErrorDetails` and `StreamTombstonedErrorDetails`, and the ledger's
//! own `LedgerDuplicateRecordIdErrorDetails` and `LedgerInvalidInputErrorDetails`.

use std::collections::{BTreeMap, HashSet};

use prost::Message as _;
use tonic::{Code, Request, Response, Status, Streaming};
use uuid::Uuid;

use super::access::Caller;
use super::errors::Refusal;
use super::write::{self, Proposed, MAX_APPEND_SIZE};
use super::Port;
use crate::proto::kurrentdb::google::rpc;
use crate::proto::kurrentdb::kurrentdb::protocol::v2::streams::errors as details;
use crate::proto::kurrentdb::kurrentdb::protocol::v2::streams::{
    streams_service_server::StreamsService, AppendRecord, AppendRequest, AppendResponse,
    AppendSessionResponse, SchemaFormat,
};
use crate::store::{
    AppendResult, ContentType, CurrentRevision, ExpectedRevision, StoreError, StreamAppend,
};

/// The record property that carries an event's metadata bytes, verbatim, as text.
pub const METADATA_PROPERTY: &str = "ledger.metadata";

const NO_STREAM: i64 = -1;
const ANY: i64 = -2;
const STREAM_EXISTS: i64 = -4;

/// The wire number of an expected revision.
pub fn expected_to_wire(expected: ExpectedRevision) -> i64 {
    match expected {
        ExpectedRevision::Any => ANY,
        ExpectedRevision::NoStream => NO_STREAM,
        ExpectedRevision::StreamExists => STREAM_EXISTS,
        ExpectedRevision::Exact(r) => r as i64,
    }
}

/// An expected revision from its wire number; absent means any.
pub fn expected_from_wire(number: Option<i64>) -> Result<ExpectedRevision, String> {
    match number {
        None | Some(ANY) => Ok(ExpectedRevision::Any),
        Some(NO_STREAM) => Ok(ExpectedRevision::NoStream),
        Some(STREAM_EXISTS) => Ok(ExpectedRevision::StreamExists),
        Some(r) if r >= 0 => Ok(ExpectedRevision::Exact(r as u64)),
        Some(other) => Err(format!(
            "{other} is neither a revision nor -1 (no stream), -2 (any) or -4 (exists)"
        )),
    }
}

/// A current revision from its wire number (-1: no stream).
pub fn current_from_wire(number: i64) -> CurrentRevision {
    u64::try_from(number).map_or(CurrentRevision::NoStream, CurrentRevision::At)
}

/// The package of the detail messages, as their `Any` type URLs name it.
const DETAILS_PACKAGE: &str = "kurrentdb.protocol.v2.streams.errors";

/// A status with one detail message.
fn status_with(code: Code, message: String, name: &str, detail: Vec<u8>) -> Status {
    let body = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: Some(prost_types::Any {
            type_url: format!("type.googleapis.com/{DETAILS_PACKAGE}.{name}"),
            value: detail,
        }),
    };
    Status::with_details(code, message, body.encode_to_vec().into())
}

/// The one detail of a refusal: its message name and bytes, if the status carries one.
pub fn detail_of(status: &Status) -> Option<(String, Vec<u8>)> {
    let body = rpc::Status::decode(status.details()).ok()?;
    let any = body.details?;
    let name = any.type_url.rsplit('/').next()?;
    let name = name.strip_prefix(DETAILS_PACKAGE)?.strip_prefix('.')?;
    Some((name.to_owned(), any.value))
}

/// The store error a refused session stands for, when its detail names one; `None` for any
/// other refusal (the caller maps the status by its code).
pub fn store_error_of(status: &Status) -> Option<StoreError> {
    let (name, bytes) = detail_of(status)?;
    let bytes = bytes.as_slice();
    Some(match name.as_str() {
        "StreamRevisionConflictErrorDetails" => {
            let d = details::StreamRevisionConflictErrorDetails::decode(bytes).ok()?;
            StoreError::Conflict {
                stream: d.stream,
                expected: expected_from_wire(Some(d.expected_revision)).ok()?,
                actual: current_from_wire(d.actual_revision),
            }
        }
        "StreamTombstonedErrorDetails" => StoreError::StreamDeleted {
            stream: details::StreamTombstonedErrorDetails::decode(bytes)
                .ok()?
                .stream,
        },
        "LedgerDuplicateRecordIdErrorDetails" => {
            let d = details::LedgerDuplicateRecordIdErrorDetails::decode(bytes).ok()?;
            StoreError::DuplicateEventId {
                event_id: Uuid::parse_str(&d.record_id).ok()?,
                existing_stream: d.existing_stream,
            }
        }
        "LedgerInvalidInputErrorDetails" => {
            let d = details::LedgerInvalidInputErrorDetails::decode(bytes).ok()?;
            StoreError::InvalidInput {
                field: known_field(&d.field),
                rule: d.rule,
            }
        }
        _ => return None,
    })
}

/// The interface's field names are `&'static str`; a name from the wire maps onto the one the
/// log uses, or onto `request` for a name it does not know.
fn known_field(name: &str) -> &'static str {
    const FIELDS: &[&str] = &[
        "stream",
        "events",
        "event_id",
        "event_type",
        "payload",
        "metadata",
        "expected_revision",
        "streams",
        "category",
    ];
    FIELDS
        .iter()
        .find(|f| **f == name)
        .copied()
        .unwrap_or("request")
}

/// The status of a store error, with its detail.
fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => {
            let actual_number = super::errors::actual_number(actual);
            status_with(
                Code::FailedPrecondition,
                format!("wrong expected revision on stream `{stream}`: expected {expected}, actual {actual}"),
                "StreamRevisionConflictErrorDetails",
                details::StreamRevisionConflictErrorDetails {
                    stream,
                    expected_revision: expected_to_wire(expected),
                    actual_revision: actual_number,
                }
                .encode_to_vec(),
            )
        }
        StoreError::StreamDeleted { stream } => tombstoned(stream),
        StoreError::DuplicateEventId {
            event_id,
            existing_stream,
        } => status_with(
            Code::AlreadyExists,
            format!("record id {event_id} was already written to stream `{existing_stream}`"),
            "LedgerDuplicateRecordIdErrorDetails",
            details::LedgerDuplicateRecordIdErrorDetails {
                record_id: event_id.to_string(),
                existing_stream,
            }
            .encode_to_vec(),
        ),
        StoreError::InvalidInput { field, rule } => invalid(field, rule),
        StoreError::Closed => Status::unavailable("Server Is Not Ready"),
        other => {
            tracing::error!(error = %other, "KurrentDB port: AppendSession failed");
            Status::internal("the ledger failed; see its log")
        }
    }
}

fn tombstoned(stream: String) -> Status {
    status_with(
        Code::FailedPrecondition,
        format!("stream `{stream}` was deleted for good (tombstoned)"),
        "StreamTombstonedErrorDetails",
        details::StreamTombstonedErrorDetails { stream }.encode_to_vec(),
    )
}

fn invalid(field: &str, rule: String) -> Status {
    status_with(
        Code::InvalidArgument,
        format!("invalid {field}: {rule}"),
        "LedgerInvalidInputErrorDetails",
        details::LedgerInvalidInputErrorDetails {
            field: field.to_owned(),
            rule,
        }
        .encode_to_vec(),
    )
}

/// The status of a v1-style refusal from the single-stream path.
fn refusal_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::WrongExpectedVersion {
            stream,
            expected,
            actual,
            ..
        } => store_status(StoreError::Conflict {
            stream,
            expected,
            actual,
        }),
        Refusal::StreamDeleted(stream) => tombstoned(stream),
        Refusal::BadRequest(rule) => invalid("request", rule),
        other => other.status(),
    }
}

/// A record's metadata bytes from its properties (system `$` properties are not metadata).
fn metadata_bytes(record: &AppendRecord) -> Result<Vec<u8>, String> {
    let user: BTreeMap<&String, &prost_types::Value> = record
        .properties
        .iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .collect();
    if let Some(value) = record.properties.get(METADATA_PROPERTY) {
        return match (&value.kind, user.len()) {
            (Some(prost_types::value::Kind::StringValue(text)), 1) => Ok(text.clone().into_bytes()),
            _ => Err(format!(
                "`{METADATA_PROPERTY}` must be a string and the record's only user property"
            )),
        };
    }
    if user.is_empty() {
        return Ok(Vec::new());
    }
    let object: serde_json::Map<String, serde_json::Value> = user
        .into_iter()
        .map(|(k, v)| (k.clone(), json_of(v)))
        .collect();
    Ok(serde_json::to_vec(&object).expect("a JSON value serialises"))
}

fn json_of(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => (*b).into(),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Some(Kind::StringValue(s)) => s.clone().into(),
        Some(Kind::ListValue(l)) => l.values.iter().map(json_of).collect(),
        Some(Kind::StructValue(s)) => s
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), json_of(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// A proposed event from a record.
fn proposed(record: AppendRecord) -> Result<Proposed, Status> {
    let id = match &record.record_id {
        Some(text) => Uuid::parse_str(text)
            .map_err(|e| invalid("event_id", format!("{text:?} is not a UUID ({e})")))?,
        None => Uuid::new_v4(),
    };
    let schema = record.schema.clone().unwrap_or_default();
    if schema.name.is_empty() {
        return Err(invalid(
            "event_type",
            "every record needs `schema.name`, its type".into(),
        ));
    }
    let content_type = if schema.format == SchemaFormat::Json as i32 {
        ContentType::Json
    } else {
        ContentType::Binary
    };
    let custom_metadata = metadata_bytes(&record).map_err(|rule| invalid("metadata", rule))?;
    Ok(Proposed {
        id,
        event_type: schema.name,
        content_type,
        custom_metadata,
        data: record.data,
    })
}

/// One stream's request, checked and converted.
struct Part {
    stream: String,
    expected: ExpectedRevision,
    events: Vec<Proposed>,
}

/// Reads the whole session, refusing what breaks a rule before anything is written.
async fn read_session(
    caller: &Caller,
    mut requests: Streaming<AppendRequest>,
) -> Result<Vec<Part>, Status> {
    let mut parts = Vec::new();
    let mut seen = HashSet::new();
    let mut size = 0usize;
    while let Some(request) = requests.message().await? {
        if !seen.insert(request.stream.clone()) {
            return Err(status_with(
                Code::Aborted,
                format!("stream `{}` appears twice in one session", request.stream),
                "StreamAlreadyInAppendSessionErrorDetails",
                details::StreamAlreadyInAppendSessionErrorDetails {
                    stream: request.stream,
                }
                .encode_to_vec(),
            ));
        }
        if !caller.may_write(&request.stream) {
            return Err(Refusal::AccessDenied.status());
        }
        let expected = expected_from_wire(request.expected_revision)
            .map_err(|rule| invalid("expected_revision", rule))?;
        let mut events = Vec::with_capacity(request.records.len());
        for record in request.records {
            let event = proposed(record)?;
            size += event.data.len() + event.custom_metadata.len();
            if size > MAX_APPEND_SIZE as usize {
                return Err(Refusal::MaximumAppendSizeExceeded(MAX_APPEND_SIZE).status());
            }
            events.push(event);
        }
        parts.push(Part {
            stream: request.stream,
            expected,
            events,
        });
    }
    if parts.is_empty() {
        return Err(Status::failed_precondition(
            "an append session needs at least one append request",
        ));
    }
    Ok(parts)
}

fn response(streams: &[String], results: &[AppendResult]) -> AppendSessionResponse {
    let output: Vec<AppendResponse> = streams
        .iter()
        .zip(results)
        .map(|(stream, r)| AppendResponse {
            stream: stream.clone(),
            stream_revision: r.next_expected_revision as i64,
            position: Some(r.position as i64),
        })
        .collect();
    let position = results.iter().map(|r| r.position).max().unwrap_or(0);
    AppendSessionResponse {
        output,
        position: position as i64,
    }
}

/// The service, over the port's log.
pub struct AppendSessions {
    /// What every call of the port shares.
    pub port: std::sync::Arc<Port>,
}

impl AppendSessions {
    async fn session(
        &self,
        caller: &Caller,
        parts: Vec<Part>,
    ) -> Result<AppendSessionResponse, Status> {
        let port = &self.port;
        let log = port.log.as_ref();
        let known = port
            .metadata_streams
            .shared(log)
            .await
            .map_err(store_status)?;
        let with_metadata = parts
            .iter()
            .any(|p| p.stream.starts_with("$$") || known.contains(&p.stream));
        if with_metadata {
            drop(known);
            let [part] = <[Part; 1]>::try_from(parts).map_err(|_| {
                Status::failed_precondition(
                    "a stream with metadata (or a metadata stream) is appended alone, not in a \
                     session with other streams",
                )
            })?;
            let stream = part.stream.clone();
            let done = write::append(
                log,
                &port.metadata_streams,
                caller,
                &part.stream,
                part.expected,
                part.events,
            )
            .await
            .map_err(refusal_status)?;
            let revision = match done.revision {
                CurrentRevision::At(r) => r as i64,
                CurrentRevision::NoStream => -1,
            };
            let position = done.position.map(|p| p as i64);
            return Ok(AppendSessionResponse {
                output: vec![AppendResponse {
                    stream,
                    stream_revision: revision,
                    position,
                }],
                position: position.unwrap_or(0),
            });
        }
        let mut appends = Vec::with_capacity(parts.len());
        for part in parts {
            let events = part
                .events
                .into_iter()
                .map(|p| write::event_data(&part.stream, p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(refusal_status)?;
            appends.push(StreamAppend {
                stream: part.stream,
                expected: part.expected,
                events,
            });
        }
        let streams: Vec<String> = appends.iter().map(|a| a.stream.clone()).collect();
        let results = log.append_atomic(appends).await.map_err(store_status)?;
        drop(known);
        Ok(response(&streams, &results))
    }
}

#[tonic::async_trait]
impl StreamsService for AppendSessions {
    async fn append_session(
        &self,
        request: Request<Streaming<AppendRequest>>,
    ) -> Result<Response<AppendSessionResponse>, Status> {
        const METHOD: &str = "AppendSession";
        self.port.called(METHOD);
        let caller = self.port.users.caller(request.metadata()).map_err(|r| {
            self.port.refused(METHOD, &r);
            r.status()
        })?;
        let outcome = match read_session(&caller, request.into_inner()).await {
            Ok(parts) => {
                let count: usize = parts.iter().map(|p| p.events.len()).sum();
                self.session(&caller, parts).await.map(|r| (r, count))
            }
            Err(status) => Err(status),
        };
        match outcome {
            Ok((response, count)) => {
                self.port.metrics.count(
                    "ledger_kurrentdb_events_appended_total",
                    &[],
                    count as u64,
                );
                Ok(Response::new(response))
            }
            Err(status) => {
                self.port.metrics.count(
                    "ledger_kurrentdb_errors_total",
                    &[("method", METHOD), ("error", code_label(status.code()))],
                    1,
                );
                tracing::info!(method = METHOD, code = ?status.code(), message = status.message(), "KurrentDB port: refused");
                Err(status)
            }
        }
    }
}

fn code_label(code: Code) -> &'static str {
    match code {
        Code::FailedPrecondition => "failed_precondition",
        Code::AlreadyExists => "already_exists",
        Code::InvalidArgument => "invalid_argument",
        Code::PermissionDenied => "access_denied",
        Code::Unauthenticated => "bad_credentials",
        Code::Aborted => "aborted",
        Code::Unavailable => "unavailable",
        _ => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_revisions_survive_the_wire_and_odd_numbers_are_refused() {
        for e in [
            ExpectedRevision::Any,
            ExpectedRevision::NoStream,
            ExpectedRevision::StreamExists,
            ExpectedRevision::Exact(0),
            ExpectedRevision::Exact(41),
        ] {
            assert_eq!(expected_from_wire(Some(expected_to_wire(e))), Ok(e));
        }
        assert_eq!(expected_from_wire(None), Ok(ExpectedRevision::Any));
        assert!(expected_from_wire(Some(-3)).is_err());
    }

    #[test]
    fn a_refusal_detail_turns_back_into_the_store_error_it_stands_for() {
        let id = Uuid::new_v4();
        let status = store_status(StoreError::DuplicateEventId {
            event_id: id,
            existing_stream: "deletion-1".into(),
        });
        assert_eq!(status.code(), Code::AlreadyExists);
        assert!(matches!(
            store_error_of(&status),
            Some(StoreError::DuplicateEventId { event_id, ref existing_stream })
                if event_id == id && existing_stream == "deletion-1"
        ));
        let status = store_status(StoreError::Conflict {
            stream: "payment-5".into(),
            expected: ExpectedRevision::NoStream,
            actual: CurrentRevision::At(0),
        });
        assert!(matches!(
            store_error_of(&status),
            Some(StoreError::Conflict { ref stream, expected: ExpectedRevision::NoStream, actual: CurrentRevision::At(0) })
                if stream == "payment-5"
        ));
        assert!(store_error_of(&Status::internal("x")).is_none());
    }

    #[test]
    fn the_metadata_property_carries_the_bytes_and_other_properties_become_json() {
        let text = |s: &str| prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue(s.into())),
        };
        let mut record = AppendRecord::default();
        record
            .properties
            .insert(METADATA_PROPERTY.into(), text("{\"b\":1, \"a\":2}"));
        record.properties.insert("$schema.name".into(), text("x"));
        assert_eq!(metadata_bytes(&record).unwrap(), b"{\"b\":1, \"a\":2}");
        record.properties.insert("tenant".into(), text("acme"));
        assert!(metadata_bytes(&record).is_err());
        record.properties.remove(METADATA_PROPERTY);
        assert_eq!(metadata_bytes(&record).unwrap(), br#"{"tenant":"acme"}"#);
    }
}
