//! The KurrentDB log backend: the event log in a KurrentDB (EventStoreDB) node or cluster,
//! chosen with `--event-log-url esdb://…` (also `kurrentdb://`, `kdb://` and their `+discover`
//! forms, TLS and credentials as the `kurrentdb` client crate parses them).
//!
//! Reads and subscriptions go through the official client crate (v1 protocol). Appends go
//! through KurrentDB's multi-stream `AppendSession` (protocol v2, `session.rs`): the intake and
//! the scrub job write several streams in one command, and only that call writes them
//! atomically. The ledger's own KurrentDB port serves both protocols, and is the server this
//! backend's tests run against.
//!
//! Positions are KurrentDB commit positions. Events of KurrentDB's system streams (`$…`, but
//! not the `$$…` metadata streams an application writes) are not part of the ledger's log and
//! are skipped. A tombstone ([`TOMBSTONE_EVENT_TYPE`]) is written with the client's tombstone
//! call, alone; a tombstoned stream then reads as [`StoreError::StreamDeleted`], as KurrentDB
//! answers. Listing streams by prefix and finding a category's highest numeric id walk `$all`
//! (KurrentDB has no such index without its system projections): they run at start-up only.

mod session;

use std::collections::BTreeSet;

use ::kurrentdb::{
    Client, ClientSettings, ReadAllOptions, ReadEvent, ReadStreamOptions, StreamPosition,
    SubscribeToAllOptions, TombstoneStreamOptions,
};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{
    category_of, AppendResult, ContentType, CurrentRevision, Direction, EventLog, EventMetadata,
    ExpectedRevision, Metadata, Position, RecordedEvent, StoreError, StreamAppend, StreamStart,
    Subscription, TOMBSTONE_EVENT_TYPE,
};
use session::Sessions;

/// How many events one read asks for while walking `$all` for a scan (categories, stream
/// names, ids).
const PAGE: usize = 1024;

/// The most events one read asks for when the caller wants a given number (`read_all`): one
/// read call per projector batch instead of one per 1,024 events. Each call costs a round
/// trip that the client crate's connection (no `TCP_NODELAY`) can stretch to tens of
/// milliseconds, so the size of the page sets the read rate (`ledger bench`,
/// `kurrentdb_log_read_all`).
const MAX_PAGE: usize = 20_001;

/// The event log in KurrentDB.
#[derive(Clone)]
pub struct KurrentEventLog {
    client: Client,
    sessions: Sessions,
}

impl std::fmt::Debug for KurrentEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KurrentEventLog").finish_non_exhaustive()
    }
}

/// Whether a URL names a KurrentDB server (the schemes the client crate accepts).
pub fn is_kurrentdb_url(url: &str) -> bool {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    matches!(
        scheme.trim_end_matches("+discover"),
        "esdb" | "kurrentdb" | "kurrent" | "kdb"
    )
}

fn remote(e: ::kurrentdb::Error) -> StoreError {
    use ::kurrentdb::Error as E;
    let transient = matches!(
        e,
        E::ServerError(_)
            | E::NotLeaderException(_)
            | E::ConnectionClosed
            | E::GrpcConnectionError(_)
            | E::DeadlineExceeded
    );
    StoreError::Remote {
        message: e.to_string(),
        transient,
    }
}

fn system_stream(stream: &str) -> bool {
    stream.starts_with('$') && !stream.starts_with("$$")
}

/// The interface's metadata of a stored event: the ledger's envelope when the bytes are
/// exactly one the ledger writes, else the bytes as they are, beside the content type.
fn metadata_of(bytes: &[u8], is_json: bool) -> EventMetadata {
    if let Ok(envelope) = Metadata::from_bytes(bytes) {
        let ledger = EventMetadata::Ledger(envelope);
        if ledger.to_bytes() == bytes {
            return ledger;
        }
    }
    EventMetadata::Foreign {
        content_type: if is_json {
            ContentType::Json
        } else {
            ContentType::Binary
        },
        bytes: bytes.to_vec(),
    }
}

fn recorded(event: &::kurrentdb::RecordedEvent) -> RecordedEvent {
    RecordedEvent {
        stream: event.stream_id().to_owned(),
        revision: event.revision,
        position: event.position.commit,
        id: event.id,
        event_type: event.event_type.clone(),
        payload: event.data.to_vec(),
        metadata: metadata_of(&event.custom_metadata, event.is_json),
        recorded_at: event.created,
    }
}

fn at(position: Position) -> StreamPosition<::kurrentdb::Position> {
    StreamPosition::Position(::kurrentdb::Position {
        commit: position,
        prepare: position,
    })
}

impl KurrentEventLog {
    /// Connects to the server a connection string names (lazily: the first call connects).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let settings: ClientSettings =
            url.parse()
                .map_err(
                    |e: ::kurrentdb::ClientSettingsParseError| StoreError::InvalidInput {
                        field: "event_log_url",
                        rule: format!("not a KurrentDB connection string: {}", e.message()),
                    },
                )?;
        let sessions = Sessions::new(&settings)?;
        let client = Client::new(settings).map_err(|e| StoreError::InvalidInput {
            field: "event_log_url",
            rule: format!("cannot make a KurrentDB client: {e}"),
        })?;
        Ok(Self { client, sessions })
    }

    /// Reads one page of `$all`, system streams included: `(events, whether the page was full)`.
    async fn read_all_page(
        &self,
        options: ReadAllOptions,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), StoreError> {
        let mut read = self
            .client
            .read_all(&options.max_count(max))
            .await
            .map_err(remote)?;
        let mut events = Vec::new();
        let mut raw = 0;
        while let Some(item) = read.next_read_event().await.map_err(remote)? {
            if let ReadEvent::Event(resolved) = item {
                raw += 1;
                events.push(recorded(resolved.get_original_event()));
            }
        }
        Ok((events, raw >= max))
    }

    /// Walks `$all` forwards from `from` (inclusive), handing each page of application
    /// events to `visit` until it returns `false` or the log ends.
    async fn walk(
        &self,
        from: Position,
        page_size: usize,
        mut visit: impl FnMut(Vec<RecordedEvent>) -> bool,
    ) -> Result<(), StoreError> {
        let mut start = (from > 0).then_some(from);
        let mut after: Option<Position> = None;
        loop {
            let options = ReadAllOptions::default()
                .forwards()
                .position(start.map_or(StreamPosition::Start, at));
            let (page, full) = self.read_all_page(options, page_size).await?;
            let next = page.last().map(|e| e.position);
            let events: Vec<RecordedEvent> = page
                .into_iter()
                .filter(|e| after.is_none_or(|a| e.position > a) && !system_stream(&e.stream))
                .collect();
            if !visit(events) || !full {
                return Ok(());
            }
            // The next page starts at the last event read, which it returns again.
            after = next;
            start = next;
        }
    }

    async fn tombstone(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<AppendResult, StoreError> {
        let before = self.stream_revision(stream).await?;
        if !expected.admits(before) {
            return Err(StoreError::Conflict {
                stream: stream.to_owned(),
                expected,
                actual: before,
            });
        }
        let state = match before {
            CurrentRevision::NoStream => ::kurrentdb::StreamState::NoStream,
            CurrentRevision::At(r) => ::kurrentdb::StreamState::StreamRevision(r),
        };
        let position = self
            .client
            .tombstone_stream(
                stream,
                &TombstoneStreamOptions::default().stream_state(state),
            )
            .await
            .map_err(|e| match e {
                ::kurrentdb::Error::WrongExpectedVersion { current, .. } => StoreError::Conflict {
                    stream: stream.to_owned(),
                    expected,
                    actual: match current {
                        ::kurrentdb::CurrentRevision::Current(r) => CurrentRevision::At(r),
                        ::kurrentdb::CurrentRevision::NoStream => CurrentRevision::NoStream,
                    },
                },
                ::kurrentdb::Error::ResourceDeleted => StoreError::StreamDeleted {
                    stream: stream.to_owned(),
                },
                other => remote(other),
            })?;
        Ok(AppendResult {
            next_expected_revision: match before {
                CurrentRevision::NoStream => 0,
                CurrentRevision::At(r) => r + 1,
            },
            position: position.map_or(0, |p| p.commit),
        })
    }
}

#[async_trait::async_trait]
impl EventLog for KurrentEventLog {
    async fn append_atomic(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let tombstones = parts
            .iter()
            .flat_map(|p| &p.events)
            .filter(|e| e.event_type == TOMBSTONE_EVENT_TYPE)
            .count();
        if tombstones > 0 {
            return match parts.as_slice() {
                [part] if part.events.len() == 1 => {
                    super::validate_atomic(&parts)?;
                    Ok(vec![self.tombstone(&part.stream, part.expected).await?])
                }
                _ => Err(StoreError::InvalidInput {
                    field: "events",
                    rule: format!(
                        "on the KurrentDB backend a `{TOMBSTONE_EVENT_TYPE}` event is written \
                         alone (KurrentDB's tombstone call)"
                    ),
                }),
            };
        }
        self.sessions.append(parts).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from: StreamStart,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        super::validate_stream_name(stream)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let options = ReadStreamOptions::default().max_count(max);
        let options = match (direction, from) {
            (Direction::Forwards, StreamStart::Beginning) => {
                options.forwards().position(StreamPosition::Start)
            }
            (Direction::Backwards, StreamStart::Beginning) => {
                options.backwards().position(StreamPosition::End)
            }
            (Direction::Forwards, StreamStart::Revision(r)) => {
                options.forwards().position(StreamPosition::Position(r))
            }
            (Direction::Backwards, StreamStart::Revision(r)) => {
                options.backwards().position(StreamPosition::Position(r))
            }
        };
        let deleted = || StoreError::StreamDeleted {
            stream: stream.to_owned(),
        };
        let mut read = match self.client.read_stream(stream, &options).await {
            Ok(read) => read,
            Err(::kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(::kurrentdb::Error::ResourceDeleted) => return Err(deleted()),
            Err(e) => return Err(remote(e)),
        };
        let mut events = Vec::new();
        loop {
            match read.next_read_event().await {
                Ok(Some(ReadEvent::Event(resolved))) => {
                    events.push(recorded(resolved.get_original_event()))
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok(events),
                Err(::kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
                Err(::kurrentdb::Error::ResourceDeleted) => return Err(deleted()),
                Err(e) => return Err(remote(e)),
            }
        }
    }

    async fn read_all(&self, from: Position, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        if max == 0 {
            return Ok(events);
        }
        // One more than asked: a page after the first repeats the last event read.
        self.walk(from, max.saturating_add(1).clamp(2, MAX_PAGE), |page| {
            events.extend(page);
            events.len() < max
        })
        .await?;
        events.truncate(max);
        Ok(events)
    }

    async fn read_all_backwards(
        &self,
        before: Option<Position>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        let mut from = before;
        while events.len() < max {
            let options = ReadAllOptions::default()
                .backwards()
                .position(from.map_or(StreamPosition::End, at));
            // One more than asked: a backwards read may start with the event at `before`.
            let (page, full) = self.read_all_page(options, max + 1).await?;
            let last = page.last().map(|e| e.position);
            events.extend(
                page.into_iter()
                    .filter(|e| from.is_none_or(|b| e.position < b) && !system_stream(&e.stream)),
            );
            match last {
                Some(p) if full && from != Some(p) => from = Some(p),
                _ => break,
            }
        }
        events.truncate(max);
        Ok(events)
    }

    async fn read_category(
        &self,
        category: &str,
        from: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        super::validate_category(category)?;
        let mut events = Vec::new();
        if max == 0 {
            return Ok(events);
        }
        self.walk(from, PAGE, |page| {
            events.extend(
                page.into_iter()
                    .filter(|e| category_of(&e.stream) == category),
            );
            events.len() < max
        })
        .await?;
        events.truncate(max);
        Ok(events)
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision, StoreError> {
        Ok(self
            .read_stream(stream, Direction::Backwards, StreamStart::Beginning, 1)
            .await?
            .first()
            .map_or(CurrentRevision::NoStream, |e| {
                CurrentRevision::At(e.revision)
            }))
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        Ok(self
            .read_all_backwards(None, 1)
            .await?
            .first()
            .map(|e| e.position))
    }

    async fn highest_stream_number(&self, category: &str) -> Result<Option<u64>, StoreError> {
        super::validate_category(category)?;
        let prefix = format!("{category}-");
        let mut highest = None;
        self.walk(0, PAGE, |page| {
            for e in page {
                if let Some(n) = e
                    .stream
                    .strip_prefix(&prefix)
                    .and_then(|id| id.parse::<u64>().ok())
                {
                    highest = highest.max(Some(n));
                }
            }
            true
        })
        .await?;
        Ok(highest)
    }

    async fn stream_names_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names = BTreeSet::new();
        self.walk(0, PAGE, |page| {
            names.extend(
                page.into_iter()
                    .filter(|e| e.stream.starts_with(prefix))
                    .map(|e| e.stream),
            );
            true
        })
        .await?;
        Ok(names.into_iter().collect())
    }

    fn subscribe_all(&self, from: Position) -> Subscription {
        let (tx, rx) = mpsc::channel(PAGE);
        let log = self.clone();
        tokio::spawn(async move {
            if let Err(e) = log.feed(from, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        ReceiverStream::new(rx).boxed()
    }
}

type Feed = mpsc::Sender<Result<RecordedEvent, StoreError>>;

impl KurrentEventLog {
    /// Catches up by reading `$all` from `from` (inclusive), then subscribes after the last
    /// event it sent (KurrentDB's subscription start is exclusive), so nothing is missed or sent
    /// twice. Ends with an error for the subscriber to restart from its checkpoint, or when the
    /// subscriber is gone.
    async fn feed(&self, from: Position, tx: &Feed) -> Result<(), StoreError> {
        let mut last: Option<Position> = None;
        loop {
            let page = self.read_all(last.unwrap_or(from), PAGE).await?;
            let fresh: Vec<RecordedEvent> = page
                .into_iter()
                .filter(|e| last.is_none_or(|l| e.position > l))
                .collect();
            if fresh.is_empty() {
                return self.live(last, from, tx).await;
            }
            for event in fresh {
                last = Some(event.position);
                if tx.send(Ok(event)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }

    async fn live(
        &self,
        last: Option<Position>,
        from: Position,
        tx: &Feed,
    ) -> Result<(), StoreError> {
        let options =
            SubscribeToAllOptions::default().position(last.map_or(StreamPosition::Start, at));
        let mut subscription = self.client.subscribe_to_all(&options).await;
        let mut last = last;
        loop {
            let resolved = tokio::select! {
                next = subscription.next() => next.map_err(remote)?,
                () = tx.closed() => return Ok(()),
            };
            let event = recorded(resolved.get_original_event());
            if system_stream(&event.stream)
                || event.position < from
                || last.is_some_and(|l| event.position <= l)
            {
                continue;
            }
            last = Some(event.position);
            if tx.send(Ok(event)).await.is_err() {
                return Ok(());
            }
        }
    }
}
