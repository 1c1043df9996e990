//! Appends, soft deletes and tombstones on the log, with KurrentDB's rules: the caller's grants
//! and the stream's access control list (`$w`, `$d`; `$mw` of the described stream for a
//! metadata write, whose `$acl` must be well-formed), the append size limit, expected revisions
//! (a soft-deleted stream accepts `NoStream` and its last revision, and continues its
//! numbering), idempotent retries (the log's own: the same ids in the same order answer the
//! first result), and deleted streams refusing what they refuse.
//!
//! A stream without metadata (most of them) is appended to without a read: the log checks the
//! caller's expected revision and refuses anything after a tombstone itself. A stream with
//! metadata may be soft-deleted, so its state is read first, and the append is written with
//! the revisions it read as the expectation: a concurrent writer makes the log refuse it and
//! the rule is read again. Soft deletes and other writes of metadata exclude appends meanwhile
//! ([`MetadataStreams`]).

use uuid::Uuid;

use super::access::{governing_category, is_ledger_category, Caller};
use super::acl::{self, Operation};
use super::errors::Refusal;
use super::stream_state::{
    metadata_stream, MetadataStreams, StreamState, METADATA_EVENT, SOFT_DELETED, TOMBSTONE_EVENT,
};
use crate::store::{
    AppendResult, ContentType, CurrentRevision, EventData, EventLog, EventMetadata,
    ExpectedRevision, Metadata, Position, StoreError, StreamAppend,
};

/// KurrentDB's default largest append: data plus metadata of all its events, in bytes.
pub const MAX_APPEND_SIZE: u32 = 1024 * 1024;

/// How often a rule is read again when a concurrent writer moved the stream meanwhile.
const ATTEMPTS: usize = 16;

/// An event a client proposes.
#[derive(Debug, Clone)]
pub struct Proposed {
    /// Its id (the idempotency key).
    pub id: Uuid,
    /// Its type.
    pub event_type: String,
    /// How its data is encoded.
    pub content_type: ContentType,
    /// The client's metadata bytes.
    pub custom_metadata: Vec<u8>,
    /// The payload.
    pub data: Vec<u8>,
}

/// The outcome of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream's revision after the append.
    pub revision: CurrentRevision,
    /// The position of the last event written, `None` when nothing was.
    pub position: Option<Position>,
}

fn pinned(revision: CurrentRevision) -> ExpectedRevision {
    match revision {
        CurrentRevision::NoStream => ExpectedRevision::NoStream,
        CurrentRevision::At(r) => ExpectedRevision::Exact(r),
    }
}

fn store_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::InvalidInput { field, rule } => {
            Refusal::BadRequest(format!("invalid {field}: {rule}"))
        }
        e @ StoreError::DuplicateEventId { .. } => Refusal::BadRequest(e.to_string()),
        StoreError::StreamDeleted { stream } => Refusal::StreamDeleted(stream),
        StoreError::Closed => Refusal::Unavailable("Server Is Not Ready".into()),
        other => Refusal::Internal(other.to_string()),
    }
}

/// Turns a proposed event into the log's: a foreign envelope, except in the ledger's categories
/// (reachable only with an explicit grant), where the metadata must be the ledger's envelope.
pub(super) fn event_data(stream: &str, proposed: Proposed) -> Result<EventData, Refusal> {
    if proposed.event_type == TOMBSTONE_EVENT {
        return Err(Refusal::BadRequest(format!(
            "invalid type: `{TOMBSTONE_EVENT}` is written by Tombstone, not appended"
        )));
    }
    let metadata = if stream.starts_with("$$") {
        let object = match serde_json::from_slice::<serde_json::Value>(&proposed.data) {
            Ok(serde_json::Value::Object(object)) if proposed.event_type == METADATA_EVENT => {
                object
            }
            _ => {
                return Err(Refusal::BadRequest(format!(
                    "invalid event for metadata stream `{stream}`: it takes `{METADATA_EVENT}` \
                     events whose data is a JSON object"
                )))
            }
        };
        acl::check(&object).map_err(|rule| {
            Refusal::BadRequest(format!("invalid metadata for `{stream}`: {rule}"))
        })?;
        EventMetadata::Foreign {
            content_type: ContentType::Json,
            bytes: proposed.custom_metadata,
        }
    } else if is_ledger_category(governing_category(stream)) {
        let envelope = Metadata::from_bytes(&proposed.custom_metadata).map_err(|_| {
            Refusal::BadRequest(format!(
                "invalid custom_metadata for `{stream}`: the ledger's categories take events \
                 with the ledger's envelope (JSON with actor, source, $correlationId, \
                 $causationId, occurredAt) and a protobuf payload"
            ))
        })?;
        EventMetadata::Ledger(envelope)
    } else {
        EventMetadata::Foreign {
            content_type: proposed.content_type,
            bytes: proposed.custom_metadata,
        }
    };
    Ok(EventData {
        id: proposed.id,
        event_type: proposed.event_type,
        payload: proposed.data,
        metadata,
    })
}

fn system_event(event_type: &str, data: Vec<u8>) -> EventData {
    EventData {
        id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        payload: data,
        metadata: EventMetadata::Foreign {
            content_type: ContentType::Json,
            bytes: Vec::new(),
        },
    }
}

fn appended(result: &AppendResult) -> Appended {
    Appended {
        revision: CurrentRevision::At(result.next_expected_revision),
        position: Some(result.position),
    }
}

/// Appends `events` to `stream`.
pub async fn append(
    log: &dyn EventLog,
    with_metadata: &MetadataStreams,
    caller: &Caller,
    stream: &str,
    expected: ExpectedRevision,
    events: Vec<Proposed>,
) -> Result<Appended, Refusal> {
    if !caller.may_write(stream) {
        return Err(Refusal::AccessDenied);
    }
    let size: usize = events
        .iter()
        .map(|e| e.data.len() + e.custom_metadata.len())
        .sum();
    if size > MAX_APPEND_SIZE as usize {
        return Err(Refusal::MaximumAppendSizeExceeded(MAX_APPEND_SIZE));
    }
    let events = events
        .into_iter()
        .map(|p| event_data(stream, p))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(described) = stream.strip_prefix("$$") {
        let _alone = with_metadata
            .exclusive(log, described)
            .await
            .map_err(store_refusal)?;
        let described_state = StreamState::load(log, described)
            .await
            .map_err(store_refusal)?;
        caller.check_listed(&described_state.metadata.acl(), Operation::MetadataWrite)?;
        return append_reading_first(log, caller, stream, expected, events).await;
    }
    let known = with_metadata.shared(log).await.map_err(store_refusal)?;
    if events.is_empty() || known.contains(stream) {
        return append_reading_first(log, caller, stream, expected, events).await;
    }
    let written = log
        .append_atomic(vec![StreamAppend {
            stream: stream.to_owned(),
            expected,
            events,
        }])
        .await;
    drop(known);
    match written {
        Ok(results) => Ok(appended(&results[0])),
        Err(StoreError::Conflict { actual, .. }) => {
            Err(wrong_version("Append", stream, expected, actual))
        }
        Err(e) => Err(store_refusal(e)),
    }
}

/// Appends to a stream that has (or is) metadata: reads its state (its access control list
/// among it), then writes pinned to it.
async fn append_reading_first(
    log: &dyn EventLog,
    caller: &Caller,
    stream: &str,
    expected: ExpectedRevision,
    events: Vec<EventData>,
) -> Result<Appended, Refusal> {
    for _ in 0..ATTEMPTS {
        let state = StreamState::load(log, stream)
            .await
            .map_err(store_refusal)?;
        caller.check_listed(&state.metadata.acl(), Operation::Write)?;
        if state.tombstoned {
            return Err(Refusal::StreamDeleted(stream.to_owned()));
        }
        if events.is_empty() {
            return if expected.admits(state.revision) {
                Ok(Appended {
                    revision: state.revision,
                    position: None,
                })
            } else {
                Err(wrong_version("Append", stream, expected, state.revision))
            };
        }
        let soft_deleted = state.soft_deleted();
        if soft_deleted && expected == ExpectedRevision::StreamExists {
            return Err(Refusal::StreamDeleted(stream.to_owned()));
        }
        let admitted = if soft_deleted {
            matches!(expected, ExpectedRevision::Any | ExpectedRevision::NoStream)
                || expected.admits(state.revision)
        } else {
            expected.admits(state.revision)
        };
        let mut parts = vec![StreamAppend {
            stream: stream.to_owned(),
            // Not admitted: the log still answers an idempotent retry with its first result,
            // and refuses anything else with the stream's actual revision.
            expected: if admitted {
                pinned(state.revision)
            } else {
                expected
            },
            events: events.clone(),
        }];
        if admitted && soft_deleted {
            // Recreating a soft-deleted stream: its old events stay hidden below the new ones.
            let first_new = match state.revision {
                CurrentRevision::NoStream => 0,
                CurrentRevision::At(r) => r + 1,
            };
            parts.push(StreamAppend {
                stream: metadata_stream(stream),
                expected: pinned(state.metadata_revision),
                events: vec![system_event(
                    METADATA_EVENT,
                    state.metadata.truncated_before(first_new).to_bytes(),
                )],
            });
        }
        match log.append_atomic(parts).await {
            Ok(results) => return Ok(appended(&results[0])),
            Err(StoreError::Conflict { actual, .. }) if !admitted => {
                return Err(wrong_version("Append", stream, expected, actual));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_refusal(e)),
        }
    }
    Err(Refusal::Unavailable("Server Is Too Busy".into()))
}

fn wrong_version(
    operation: &'static str,
    stream: &str,
    expected: ExpectedRevision,
    actual: CurrentRevision,
) -> Refusal {
    Refusal::WrongExpectedVersion {
        operation,
        stream: stream.to_owned(),
        expected,
        actual,
    }
}

/// How a stream is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Hidden, and recreated by the next append (`Delete`).
    Soft,
    /// For ever (`Tombstone`).
    Tombstone,
}

/// Deletes `stream`; answers the position of the event that records the deletion.
pub async fn delete(
    log: &dyn EventLog,
    with_metadata: &MetadataStreams,
    caller: &Caller,
    stream: &str,
    expected: ExpectedRevision,
    how: Deletion,
) -> Result<Position, Refusal> {
    if !caller.may_delete(stream) {
        return Err(Refusal::AccessDenied);
    }
    if stream.starts_with("$$") {
        return Err(Refusal::BadRequest(format!(
            "invalid stream: `{stream}` is a metadata stream; delete the stream it describes"
        )));
    }
    let operation = match how {
        Deletion::Soft => "Delete",
        Deletion::Tombstone => "Tombstone",
    };
    // A soft delete writes metadata: no append may pass it meanwhile. A tombstone is pinned
    // to the revision read, and the log refuses every append after it.
    let _alone = match how {
        Deletion::Soft => Some(
            with_metadata
                .exclusive(log, stream)
                .await
                .map_err(store_refusal)?,
        ),
        Deletion::Tombstone => None,
    };
    for _ in 0..ATTEMPTS {
        let state = StreamState::load(log, stream)
            .await
            .map_err(store_refusal)?;
        caller.check_listed(&state.metadata.acl(), Operation::Delete)?;
        if state.tombstoned {
            return Err(Refusal::StreamDeleted(stream.to_owned()));
        }
        let refused = match how {
            // A soft delete of a stream that never had an event is refused whatever the
            // expectation, as the server does ("Actual version: -1").
            Deletion::Soft if state.revision == CurrentRevision::NoStream => true,
            _ => !expected.admits(state.revision),
        };
        if how == Deletion::Soft
            && state.soft_deleted()
            && expected == ExpectedRevision::StreamExists
        {
            return Err(Refusal::StreamDeleted(stream.to_owned()));
        }
        if refused {
            return Err(wrong_version(operation, stream, expected, state.revision));
        }
        let part = match how {
            Deletion::Soft => StreamAppend {
                stream: metadata_stream(stream),
                expected: pinned(state.metadata_revision),
                events: vec![system_event(
                    METADATA_EVENT,
                    state.metadata.truncated_before(SOFT_DELETED).to_bytes(),
                )],
            },
            Deletion::Tombstone => StreamAppend {
                stream: stream.to_owned(),
                expected: pinned(state.revision),
                events: vec![system_event(TOMBSTONE_EVENT, Vec::new())],
            },
        };
        match log.append_atomic(vec![part]).await {
            Ok(results) => return Ok(results[0].position),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_refusal(e)),
        }
    }
    Err(Refusal::Unavailable("Server Is Too Busy".into()))
}
