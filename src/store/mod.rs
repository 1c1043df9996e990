//! The event-log interface, with KurrentDB (EventStoreDB) semantics, and its backends.
//!
//! The interface is backend-neutral: positions are opaque `u64`s in global commit order (not
//! contiguous: a KurrentDB commit position jumps), stream revisions start at 0, and every
//! event carries the KurrentDB envelope (id, type, payload, JSON metadata).
//!
//! Idempotency: an append whose event ids were all written before, to the same stream in the
//! same order, returns the original result and writes nothing. The contract guarantees this
//! exactly for `NoStream` and `Exact` expected revisions; for `Any` and `StreamExists` a backend
//! may only remember a window of recent appends (KurrentDB keeps an in-memory idempotency
//! cache). The embedded SQLite backend keeps a unique index on every event id ever written, so
//! its window is the whole log.
//!
//! One concern over 600 lines: the event-log interface (types, errors, the trait) that every
//! backend and the conformance suite share, kept in one file like the read model's `backend.rs`.

mod durability;
mod envelope_json;
pub mod kurrent;
pub mod sqlite;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A global position in the log (`$all`). Opaque but strictly increasing in commit order.
pub type Position = u64;

/// Largest payload plus metadata accepted for one event (KurrentDB's default is 16 MiB per
/// append; single events of a fundraising ledger are a few hundred bytes).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Largest sum of event sizes accepted in one append call.
pub const MAX_APPEND_BYTES: usize = 16 * 1024 * 1024;
/// Longest stream name accepted.
pub const MAX_STREAM_NAME_LEN: usize = 256;
/// Longest event type accepted.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// What the writer expects the stream's current revision to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this revision.
    Exact(u64),
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no_stream"),
            Self::StreamExists => f.write_str("stream_exists"),
            Self::Exact(r) => write!(f, "{r}"),
        }
    }
}

impl FromStr for ExpectedRevision {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(Self::Any),
            "no_stream" => Ok(Self::NoStream),
            "stream_exists" => Ok(Self::StreamExists),
            _ => s
                .parse::<u64>()
                .map(Self::Exact)
                .map_err(|_| StoreError::InvalidInput {
                    field: "expected_revision",
                    rule: format!(
                    "must be `any`, `no_stream`, `stream_exists` or a revision number, got {s:?}"
                ),
                }),
        }
    }
}

/// A stream's revision as the log sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentRevision {
    /// The stream has no event.
    NoStream,
    /// The revision of the stream's last event.
    At(u64),
}

impl fmt::Display for CurrentRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStream => f.write_str("no_stream"),
            Self::At(r) => write!(f, "{r}"),
        }
    }
}

impl ExpectedRevision {
    /// Whether a stream at `current` satisfies this expectation.
    pub fn admits(self, current: CurrentRevision) -> bool {
        match (self, current) {
            (Self::Any, _) => true,
            (Self::NoStream, CurrentRevision::NoStream) => true,
            (Self::StreamExists, CurrentRevision::At(_)) => true,
            (Self::Exact(e), CurrentRevision::At(a)) => e == a,
            _ => false,
        }
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A donation form or other public frontend.
    Frontend,
    /// A user of the back office (Fundraising Operation Center).
    FocUser,
    /// A payment provider's notification.
    Provider,
    /// The ledger itself (scheduled jobs, follow-ups).
    System,
    /// An import of another system's history (`ledger import legacy`).
    Import,
    /// A linked ledger or CRM whose change was applied here (CiviShare peering).
    Peer,
}

impl ActorKind {
    /// Every kind.
    pub const ALL: [ActorKind; 6] = [
        Self::Frontend,
        Self::FocUser,
        Self::Provider,
        Self::System,
        Self::Import,
        Self::Peer,
    ];

    /// The kind whose [`ActorKind::as_str`] is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The stable lower-case name used in metadata and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Frontend => "frontend",
            Self::FocUser => "foc_user",
            Self::Provider => "provider",
            Self::System => "system",
            Self::Import => "import",
            Self::Peer => "peer",
        }
    }
}

/// The actor of an event: its kind and an identifier (user name, frontend name, provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// What kind of actor.
    pub kind: ActorKind,
    /// Which one, e.g. `spenden.wikimedia.de`, `foc:alice`, `paypal`.
    pub id: String,
}

impl Actor {
    /// The ledger itself, doing `what`.
    pub fn system(what: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: what.to_owned(),
        }
    }
}

/// Envelope metadata, serialised as JSON with KurrentDB's `$correlationId` and
/// `$causationId` keys so that KurrentDB tooling links events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Who caused the event.
    pub actor: Actor,
    /// Where the request came from (service name, request id, job name).
    pub source: String,
    /// The id shared by every event caused by one request.
    #[serde(rename = "$correlationId")]
    pub correlation_id: Uuid,
    /// The event or request that caused this one.
    #[serde(rename = "$causationId")]
    pub causation_id: Uuid,
    /// When it happened in the world (not when the log recorded it).
    #[serde(rename = "occurredAt")]
    pub occurred_at: DateTime<Utc>,
}

impl Metadata {
    /// Metadata for an event caused directly by request `request_id`.
    pub fn new(actor: Actor, source: impl Into<String>, request_id: Uuid) -> Self {
        Self {
            actor,
            source: source.into(),
            correlation_id: request_id,
            causation_id: request_id,
            occurred_at: Utc::now(),
        }
    }

    /// The JSON bytes stored in the log.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata serialises")
    }

    /// Parses stored JSON metadata: the form [`Metadata::to_bytes`] writes directly, any other
    /// with `serde_json`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        if let Some(metadata) = envelope_json::parse(bytes) {
            return Ok(metadata);
        }
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("metadata: {e}")))
    }
}

/// How a foreign event's payload is encoded (KurrentDB's `content-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `application/json`.
    Json,
    /// `application/octet-stream`, and any other type a client names.
    Binary,
}

impl ContentType {
    /// The MIME type KurrentDB clients read.
    pub fn as_mime(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Binary => "application/octet-stream",
        }
    }
}

/// The metadata an event carries: the ledger's own envelope, or the bytes a KurrentDB client
/// wrote (through the ledger's KurrentDB port, to a stream outside the ledger's categories).
/// The log keeps which one it is, so a foreign event is never mistaken for the ledger's.
#[derive(Debug, Clone, PartialEq)]
pub enum EventMetadata {
    /// The ledger's envelope; the payload is protobuf.
    Ledger(Metadata),
    /// A foreign client's metadata, kept byte for byte, and its payload's content type.
    Foreign {
        /// How the payload is encoded.
        content_type: ContentType,
        /// The client's metadata bytes (KurrentDB's `custom_metadata`).
        bytes: Vec<u8>,
    },
}

impl EventMetadata {
    /// The ledger's envelope, or `None` for a foreign event.
    pub fn ledger(&self) -> Option<&Metadata> {
        match self {
            Self::Ledger(m) => Some(m),
            Self::Foreign { .. } => None,
        }
    }

    /// The payload's content type: protobuf (binary) for the ledger's events.
    pub fn content_type(&self) -> ContentType {
        match self {
            Self::Ledger(_) => ContentType::Binary,
            Self::Foreign { content_type, .. } => *content_type,
        }
    }

    /// The stored bytes: the ledger's envelope as JSON, or the client's bytes as written.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Ledger(m) => m.to_bytes(),
            Self::Foreign { bytes, .. } => bytes.clone(),
        }
    }

    /// The log's code for the envelope kind: 0 the ledger's, 1 foreign binary, 2 foreign JSON.
    pub fn kind_code(&self) -> i64 {
        match self {
            Self::Ledger(_) => 0,
            Self::Foreign {
                content_type: ContentType::Binary,
                ..
            } => 1,
            Self::Foreign {
                content_type: ContentType::Json,
                ..
            } => 2,
        }
    }

    /// Rebuilds the metadata from its stored kind code and bytes (copied only for a foreign
    /// event: the ledger's envelope is parsed where it lies).
    pub fn from_stored(kind: i64, bytes: &[u8]) -> Result<Self, StoreError> {
        match kind {
            1 => Ok(Self::Foreign {
                content_type: ContentType::Binary,
                bytes: bytes.to_vec(),
            }),
            2 => Ok(Self::Foreign {
                content_type: ContentType::Json,
                bytes: bytes.to_vec(),
            }),
            0 => Metadata::from_bytes(bytes).map(Self::Ledger),
            other => Err(StoreError::Corrupt(format!(
                "unknown envelope kind {other}"
            ))),
        }
    }
}

impl From<Metadata> for EventMetadata {
    fn from(m: Metadata) -> Self {
        Self::Ledger(m)
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    /// The idempotency key.
    pub id: Uuid,
    /// Explicit, versioned type name, e.g. `DonationCreated.v2`.
    pub event_type: String,
    /// The payload: protobuf for the ledger's events.
    pub payload: Vec<u8>,
    /// Envelope metadata.
    pub metadata: EventMetadata,
}

/// An event as recorded in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The stream it belongs to.
    pub stream: String,
    /// Its revision in that stream, from 0.
    pub revision: u64,
    /// Its global position.
    pub position: Position,
    /// The idempotency key.
    pub id: Uuid,
    /// Explicit, versioned type name.
    pub event_type: String,
    /// The payload: protobuf for the ledger's events.
    pub payload: Vec<u8>,
    /// Envelope metadata.
    pub metadata: EventMetadata,
    /// When the log committed it.
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// When it happened in the world: the ledger envelope's time, or, for a foreign event,
    /// when the log recorded it.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.metadata
            .ledger()
            .map_or(self.recorded_at, |m| m.occurred_at)
    }
}

/// One stream's part of an append.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    /// Target stream, `category-id`.
    pub stream: String,
    /// The expectation on the stream's revision.
    pub expected: ExpectedRevision,
    /// Events in order.
    pub events: Vec<EventData>,
}

/// The result of appending to one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The revision of the last event appended (pass as `Exact` to append after it).
    pub next_expected_revision: u64,
    /// The global position of the last event appended.
    pub position: Position,
}

/// Which way to read a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forwards,
    /// Newest first.
    Backwards,
}

/// Where to start reading a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The first event (forwards) or the last event (backwards).
    Beginning,
    /// The event with this revision, inclusive.
    Revision(u64),
}

/// The type of the event that closes a stream for good (a KurrentDB tombstone): once it is a
/// stream's last event, every backend refuses appends to that stream with
/// [`StoreError::StreamDeleted`] (an exact repeat of an earlier append still answers its
/// result).
pub const TOMBSTONE_EVENT_TYPE: &str = "$streamDeleted";

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The expected revision did not hold; nothing was written.
    #[error("wrong expected revision on stream `{stream}`: expected {expected}, actual {actual}")]
    Conflict {
        /// The stream.
        stream: String,
        /// What the writer expected.
        expected: ExpectedRevision,
        /// What the stream is at.
        actual: CurrentRevision,
    },
    /// Some of the event ids were written before, but not as this exact append.
    #[error("event id {event_id} was already written to stream `{existing_stream}`, and the append is not a repeat of that write")]
    DuplicateEventId {
        /// The reused id.
        event_id: Uuid,
        /// Where it was written.
        existing_stream: String,
    },
    /// The stream was tombstoned (its last event is [`TOMBSTONE_EVENT_TYPE`]) and takes no
    /// more events; nothing was written.
    #[error("stream `{stream}` was deleted for good (tombstoned) and takes no more events")]
    StreamDeleted {
        /// The stream.
        stream: String,
    },
    /// The request was malformed; nothing was written.
    #[error("invalid {field}: {rule}")]
    InvalidInput {
        /// The offending field.
        field: &'static str,
        /// The rule it broke.
        rule: String,
    },
    /// Stored data could not be read back.
    #[error("corrupt log data: {0}")]
    Corrupt(String),
    /// The log is shutting down.
    #[error("the event log is closed")]
    Closed,
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The embedded database failed (the SQLite backend's writer and readers).
    #[error("embedded database error")]
    Embedded(#[from] rusqlite::Error),
    /// The KurrentDB server of the KurrentDB backend refused or failed a call in a way the
    /// interface has no error for (access denied, unreachable, an internal failure).
    #[error("KurrentDB: {message}")]
    Remote {
        /// What the server or the client said.
        message: String,
        /// Whether retrying may succeed (the server was unreachable or busy).
        transient: bool,
    },
    /// The database schema could not be brought up to date.
    #[error("migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A catch-up subscription: historical events first, then live ones, with no gap and no
/// duplicate.
pub type Subscription = BoxStream<'static, Result<RecordedEvent, StoreError>>;

/// The event log. Every backend passes the suite in `tests/conformance/`.
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends to one stream.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<EventData>,
    ) -> Result<AppendResult, StoreError> {
        let mut results = self
            .append_atomic(vec![StreamAppend {
                stream: stream.to_owned(),
                expected,
                events,
            }])
            .await?;
        Ok(results.remove(0))
    }

    /// Appends to several streams atomically: either every part is written or none is. Each
    /// part is checked against its own expected revision and made idempotent on its own.
    async fn append_atomic(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError>;

    /// Reads up to `max` events of one stream. A missing stream reads as empty.
    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from: StreamStart,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `max` events of every stream, in global order, from `from` inclusive.
    async fn read_all(&self, from: Position, max: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `max` events of every stream, newest first, starting from the newest event
    /// before `before` (exclusive), or from the newest event of all when `before` is `None`.
    async fn read_all_backwards(
        &self,
        before: Option<Position>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `max` events of the streams of one category, in global order, from `from`
    /// inclusive. The embedded log keeps no category index (it cost every append), so a read
    /// walks the log from `from` until it has `max` events of the category: cheap for a common
    /// category, a scan of the rest of the log for a rare one.
    async fn read_category(
        &self,
        category: &str,
        from: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The current revision of a stream.
    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision, StoreError>;

    /// The position of the newest event, or `None` for an empty log.
    async fn head_position(&self) -> Result<Option<Position>, StoreError>;

    /// A watch that changes whenever events are committed, for a reader that waits for
    /// appends instead of polling; `None` where the backend has none (poll it then).
    fn head_watch(&self) -> Option<tokio::sync::watch::Receiver<Position>> {
        None
    }

    /// The highest numeric id among the streams `category-{id}` of one category, or `None`
    /// when the category has no stream with a numeric id. Used to check that a sequence
    /// generator is ahead of every id the log already holds.
    async fn highest_stream_number(&self, category: &str) -> Result<Option<u64>, StoreError>;

    /// The names of the streams that hold at least one event and start with `prefix`, in
    /// byte order (KurrentDB's port lists the `$$` metadata streams with it at start).
    async fn stream_names_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Every event from `from` inclusive, then live events as they are committed.
    fn subscribe_all(&self, from: Position) -> Subscription;
}

/// The category of a stream name: everything before the first `-` (KurrentDB's `$ce-`).
pub fn category_of(stream: &str) -> &str {
    stream.split_once('-').map_or(stream, |(c, _)| c)
}

/// Checks a category name: non-empty, no `-` (the separator of `category-id`).
pub fn validate_category(category: &str) -> Result<(), StoreError> {
    if category.is_empty() || category.contains('-') {
        return Err(StoreError::InvalidInput {
            field: "category",
            rule: "must be non-empty and contain no `-`".into(),
        });
    }
    Ok(())
}

/// Checks a stream name: non-empty, bounded, printable, not a `$` system stream.
pub fn validate_stream_name(stream: &str) -> Result<(), StoreError> {
    let bad = |rule: &str| StoreError::InvalidInput {
        field: "stream",
        rule: rule.to_owned(),
    };
    if stream.is_empty() {
        return Err(bad("must not be empty"));
    }
    if stream.len() > MAX_STREAM_NAME_LEN {
        return Err(bad(&format!("must be at most {MAX_STREAM_NAME_LEN} bytes")));
    }
    if let Some(described) = stream.strip_prefix("$$") {
        // A stream's metadata stream (KurrentDB's `$$name`): the described name must be valid.
        if described.starts_with('$') || described.is_empty() {
            return Err(bad(
                "a metadata stream is `$$` followed by an ordinary stream name",
            ));
        }
    } else if stream.starts_with('$') {
        return Err(bad(
            "must not start with `$` (reserved for system streams; `$$name` holds a stream's metadata)",
        ));
    }
    if stream.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("must not contain whitespace or control characters"));
    }
    Ok(())
}

/// The metadata serialised last, with its bytes: the events of one call share theirs, so it is
/// serialised once per call rather than once per event.
type LastMetadata<'a> = Option<(&'a Metadata, Vec<u8>)>;

/// Checks one append part: a valid stream name, at least one event, bounded sizes, event ids
/// unique within the part, and valid event types. Returns the part's size and each event's
/// serialised metadata (so a backend serialises it once).
fn validate_append<'a>(
    part: &'a StreamAppend,
    last: &mut LastMetadata<'a>,
) -> Result<(usize, Vec<Vec<u8>>), StoreError> {
    validate_stream_name(&part.stream)?;
    if part.events.is_empty() {
        return Err(StoreError::InvalidInput {
            field: "events",
            rule: "an append needs at least one event".into(),
        });
    }
    let mut total = 0usize;
    let mut metadata = Vec::with_capacity(part.events.len());
    let mut seen = std::collections::HashSet::with_capacity(part.events.len());
    for event in &part.events {
        if event.event_type.is_empty() || event.event_type.len() > MAX_EVENT_TYPE_LEN {
            return Err(StoreError::InvalidInput {
                field: "event_type",
                rule: format!("must be 1 to {MAX_EVENT_TYPE_LEN} bytes"),
            });
        }
        if event
            .event_type
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(StoreError::InvalidInput {
                field: "event_type",
                rule: "must not contain whitespace or control characters".into(),
            });
        }
        if event.id.is_nil() {
            return Err(StoreError::InvalidInput {
                field: "event_id",
                rule: "must not be the nil UUID".into(),
            });
        }
        if !seen.insert(event.id) {
            return Err(StoreError::InvalidInput {
                field: "event_id",
                rule: format!("{} appears twice in one append", event.id),
            });
        }
        let meta = match &event.metadata {
            EventMetadata::Ledger(m) => match last {
                Some((l, bytes)) if *l == m => bytes.clone(),
                _ => {
                    let bytes = m.to_bytes();
                    *last = Some((m, bytes.clone()));
                    bytes
                }
            },
            foreign => foreign.to_bytes(),
        };
        let size = event.payload.len() + meta.len();
        metadata.push(meta);
        if size > MAX_EVENT_BYTES {
            return Err(StoreError::InvalidInput {
                field: "payload",
                rule: format!(
                    "event {} is {size} bytes, more than {MAX_EVENT_BYTES}",
                    event.id
                ),
            });
        }
        total += size;
    }
    Ok((total, metadata))
}

/// Checks a whole atomic append: each part valid, no stream twice, bounded total size.
/// Returns the serialised metadata of every event, per part.
pub fn validate_atomic(parts: &[StreamAppend]) -> Result<Vec<Vec<Vec<u8>>>, StoreError> {
    if parts.is_empty() {
        return Err(StoreError::InvalidInput {
            field: "streams",
            rule: "an append needs at least one stream".into(),
        });
    }
    let mut total = 0usize;
    let mut metadata = Vec::with_capacity(parts.len());
    let mut streams = std::collections::HashSet::new();
    let mut last = None;
    for part in parts {
        let (size, meta) = validate_append(part, &mut last)?;
        total += size;
        metadata.push(meta);
        if !streams.insert(part.stream.as_str()) {
            return Err(StoreError::InvalidInput {
                field: "stream",
                rule: format!("`{}` appears twice in one atomic append", part.stream),
            });
        }
    }
    if total > MAX_APPEND_BYTES {
        return Err(StoreError::InvalidInput {
            field: "events",
            rule: format!("append is {total} bytes, more than {MAX_APPEND_BYTES}"),
        });
    }
    Ok(metadata)
}

impl StoreError {
    /// Whether retrying the same call may succeed: the database was busy, locked or
    /// unreachable, not the request or the data at fault.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Embedded(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::Remote { transient, .. } => *transient,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_gets_its_own_metadata_when_a_call_mixes_them() {
        let meta = |source: &str| Metadata::new(Actor::system("test"), source, Uuid::now_v7());
        let (a, b) = (meta("a"), meta("b"));
        let event = |m: &Metadata| EventData {
            id: Uuid::now_v7(),
            event_type: "Test.v1".into(),
            payload: vec![1],
            metadata: m.clone().into(),
        };
        let parts = vec![
            StreamAppend {
                stream: "one-1".into(),
                expected: ExpectedRevision::Any,
                events: vec![event(&a), event(&a), event(&b)],
            },
            StreamAppend {
                stream: "two-1".into(),
                expected: ExpectedRevision::Any,
                events: vec![event(&b), event(&a)],
            },
        ];
        let serialised = validate_atomic(&parts).unwrap();
        let expected: Vec<Vec<Vec<u8>>> = parts
            .iter()
            .map(|p| p.events.iter().map(|e| e.metadata.to_bytes()).collect())
            .collect();
        assert_eq!(serialised, expected);
        assert_ne!(serialised[0][1], serialised[0][2]);
    }

    #[test]
    fn expected_revision_parses_every_form_and_rejects_others() {
        assert_eq!(
            "any".parse::<ExpectedRevision>().unwrap(),
            ExpectedRevision::Any
        );
        assert_eq!(
            "no_stream".parse::<ExpectedRevision>().unwrap(),
            ExpectedRevision::NoStream
        );
        assert_eq!(
            "stream_exists".parse::<ExpectedRevision>().unwrap(),
            ExpectedRevision::StreamExists
        );
        assert_eq!(
            "7".parse::<ExpectedRevision>().unwrap(),
            ExpectedRevision::Exact(7)
        );
        let err = "latest".parse::<ExpectedRevision>().unwrap_err();
        assert!(err.to_string().contains("expected_revision"), "{err}");
        assert!("-1".parse::<ExpectedRevision>().is_err());
    }

    #[test]
    fn category_is_the_prefix_before_the_first_dash() {
        assert_eq!(category_of("donation-12"), "donation");
        assert_eq!(
            category_of("contribution_tracking-5-x"),
            "contribution_tracking"
        );
        assert_eq!(category_of("plain"), "plain");
    }

    #[test]
    fn stream_names_are_validated() {
        assert!(validate_stream_name("donation-1").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name("$all").is_err());
        assert!(validate_stream_name("a b").is_err());
        assert!(validate_stream_name(&"x".repeat(MAX_STREAM_NAME_LEN + 1)).is_err());
    }
}
