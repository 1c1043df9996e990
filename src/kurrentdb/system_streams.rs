//! KurrentDB's standard system projection streams, computed from the log: `$ce-{category}`
//! (every event of the streams `{category}-…`, as `$by_category` writes it) and
//! `$et-{type}` (every event of one type, as `$by_event_type` writes it).
//!
//! Each is a stream of link events (type `$>`, data `{revision}@{stream}`), numbered from 0 in
//! the log's order, which a client reads, subscribes to and resolves (`resolve_links`) like any
//! stream. They are not stored: [`SystemStreams`] wraps the port's log and answers reads of
//! these names from an index of the linked events, built on a name's first read by walking the
//! log and brought up to the log's head on every read after (the log is append-only, so a
//! link's revision never changes). Only the names read are indexed, at most [`MAX_INDEXES`] of
//! them (the one read longest ago makes room, and is built again if read again); an entry costs
//! a few dozen bytes per linked event. Events of `$`-streams (metadata, the port's own records)
//! and events whose type starts with `$` (tombstones, metadata, links) are linked by neither, as
//! KurrentDB's projections skip system events. A link's position is its event's; a link is in
//! no `$all` read (KurrentDB clients read `$all` without system events anyway). The port
//! refuses to write to these names (`access.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::read::LINK_EVENT;
use crate::store::{
    AppendResult, ContentType, CurrentRevision, Direction, EventLog, EventMetadata, Position,
    RecordedEvent, StoreError, StreamAppend, StreamStart, Subscription,
};

/// Prefix of the category projection's streams.
pub const CATEGORY_PREFIX: &str = "$ce-";
/// Prefix of the event-type projection's streams.
pub const EVENT_TYPE_PREFIX: &str = "$et-";
/// Events read from the log per page while an index catches up.
const PAGE: usize = 1024;
/// Names indexed at once: a client that reads ever new names (`$et-{uuid}`) cannot make the
/// port keep them all.
pub const MAX_INDEXES: usize = 256;
/// Namespace of the links' event ids (UUID v5 of `{stream}:{revision}`).
const LINK_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c69_6e6b_7320_6f66_2024_6365_2f24_6574);

/// A system projection stream, by what it links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// `$ce-{category}`: the events of the streams `{category}-…`.
    Category(String),
    /// `$et-{type}`: the events of one type.
    EventType(String),
}

impl Projection {
    /// The projection a stream name names, `None` for any other stream.
    pub fn of(stream: &str) -> Option<Self> {
        if let Some(category) = stream.strip_prefix(CATEGORY_PREFIX) {
            return (!category.is_empty()).then(|| Self::Category(category.to_owned()));
        }
        let event_type = stream.strip_prefix(EVENT_TYPE_PREFIX)?;
        (!event_type.is_empty()).then(|| Self::EventType(event_type.to_owned()))
    }

    /// What a projection stream's name names after its prefix (a category or an event type),
    /// `None` for any other stream.
    pub fn linked_name(stream: &str) -> Option<&str> {
        Self::of(stream)?;
        stream
            .strip_prefix(CATEGORY_PREFIX)
            .or_else(|| stream.strip_prefix(EVENT_TYPE_PREFIX))
    }

    /// Whether the projection links `event`.
    pub fn links(&self, event: &RecordedEvent) -> bool {
        if event.stream.starts_with('$') || event.event_type.starts_with('$') {
            return false;
        }
        match self {
            Self::Category(category) => event
                .stream
                .split_once('-')
                .is_some_and(|(c, _)| c == category),
            Self::EventType(event_type) => &event.event_type == event_type,
        }
    }
}

/// Whether `stream` is a system projection stream (written by none but the projection).
pub fn is_projection_stream(stream: &str) -> bool {
    Projection::of(stream).is_some()
}

/// An event a projection links, as much of it as its link shows.
#[derive(Debug, Clone)]
struct Target {
    stream: Arc<str>,
    revision: u64,
    position: Position,
    id: Uuid,
    recorded_at: DateTime<Utc>,
}

/// One projection's links so far.
struct Links {
    projection: Projection,
    /// The next log position to look at.
    scanned_to: Position,
    targets: Vec<Target>,
    /// Stream names shared by the targets of one stream.
    names: HashMap<String, Arc<str>>,
}

impl Links {
    /// Brings the links up to the log's head.
    async fn catch_up(&mut self, log: &dyn EventLog) -> Result<(), StoreError> {
        loop {
            let page = log.read_all(self.scanned_to, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            self.scanned_to = last.position + 1;
            let full = page.len() == PAGE;
            for event in page.iter().filter(|e| self.projection.links(e)) {
                let stream = match self.names.get(&event.stream) {
                    Some(name) => name.clone(),
                    None => {
                        let name: Arc<str> = event.stream.as_str().into();
                        self.names.insert(event.stream.clone(), name.clone());
                        name
                    }
                };
                self.targets.push(Target {
                    stream,
                    revision: event.revision,
                    position: event.position,
                    id: event.id,
                    recorded_at: event.recorded_at,
                });
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The link at `revision` of the stream `name`.
    fn link(&self, name: &str, revision: u64) -> RecordedEvent {
        let target = &self.targets[revision as usize];
        let metadata = serde_json::json!({ "$causedBy": target.id.to_string() });
        RecordedEvent {
            stream: name.to_owned(),
            revision,
            position: target.position,
            id: Uuid::new_v5(&LINK_ID_NAMESPACE, format!("{name}:{revision}").as_bytes()),
            event_type: LINK_EVENT.to_owned(),
            payload: format!("{}@{}", target.revision, target.stream).into_bytes(),
            metadata: EventMetadata::Foreign {
                content_type: ContentType::Binary,
                bytes: metadata.to_string().into_bytes(),
            },
            recorded_at: target.recorded_at,
        }
    }

    /// Up to `max` links from `from`, in `direction`.
    fn read(
        &self,
        name: &str,
        direction: Direction,
        from: StreamStart,
        max: usize,
    ) -> Vec<RecordedEvent> {
        let Some(last) = self.targets.len().checked_sub(1) else {
            return Vec::new();
        };
        let revisions: Box<dyn Iterator<Item = usize>> = match (direction, from) {
            (Direction::Forwards, StreamStart::Beginning) => Box::new(0..=last),
            (Direction::Forwards, StreamStart::Revision(r)) => {
                Box::new(usize::try_from(r).unwrap_or(usize::MAX)..=last)
            }
            (Direction::Backwards, StreamStart::Beginning) => Box::new((0..=last).rev()),
            (Direction::Backwards, StreamStart::Revision(r)) => {
                let top = usize::try_from(r).unwrap_or(usize::MAX).min(last);
                Box::new((0..=top).rev())
            }
        };
        revisions
            .take(max)
            .map(|r| self.link(name, r as u64))
            .collect()
    }
}

/// The port's log with the system projection streams readable (see the module's docs);
/// everything else goes to the log itself.
pub struct SystemStreams {
    log: Arc<dyn EventLog>,
    indexes: std::sync::Mutex<Indexes>,
}

/// The indexes by name, each with the read count at its last read.
#[derive(Default)]
struct Indexes {
    by_name: HashMap<String, (u64, Arc<Mutex<Links>>)>,
    reads: u64,
}

impl Indexes {
    /// The index of `name`, made (room made first) if it has none.
    fn get(&mut self, name: &str, projection: Projection) -> Arc<Mutex<Links>> {
        self.reads += 1;
        let read = self.reads;
        if let Some((last, links)) = self.by_name.get_mut(name) {
            *last = read;
            return links.clone();
        }
        if self.by_name.len() >= MAX_INDEXES {
            let oldest = self
                .by_name
                .iter()
                .min_by_key(|(_, (last, _))| *last)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                self.by_name.remove(&oldest);
            }
        }
        let links = Arc::new(Mutex::new(Links {
            projection,
            scanned_to: 0,
            targets: Vec::new(),
            names: HashMap::new(),
        }));
        self.by_name.insert(name.to_owned(), (read, links.clone()));
        links
    }
}

impl SystemStreams {
    /// Wraps `log`.
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            log,
            indexes: std::sync::Mutex::new(Indexes::default()),
        }
    }

    /// The index of `name`'s links, up to the log's head.
    async fn links(
        &self,
        name: &str,
        projection: Projection,
    ) -> Result<tokio::sync::OwnedMutexGuard<Links>, StoreError> {
        let index = self
            .indexes
            .lock()
            .expect("system streams lock")
            .get(name, projection);
        let mut links = index.lock_owned().await;
        links.catch_up(self.log.as_ref()).await?;
        Ok(links)
    }
}

#[async_trait::async_trait]
impl EventLog for SystemStreams {
    async fn append_atomic(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.log.append_atomic(parts).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from: StreamStart,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if let Some(projection) = Projection::of(stream) {
            return Ok(self
                .links(stream, projection)
                .await?
                .read(stream, direction, from, max));
        }
        if stream.strip_prefix("$$").is_some_and(is_projection_stream) {
            // A projection stream has no metadata.
            return Ok(Vec::new());
        }
        self.log.read_stream(stream, direction, from, max).await
    }

    async fn read_all(&self, from: Position, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.log.read_all(from, max).await
    }

    async fn read_all_backwards(
        &self,
        before: Option<Position>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.log.read_all_backwards(before, max).await
    }

    async fn read_category(
        &self,
        category: &str,
        from: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.log.read_category(category, from, max).await
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision, StoreError> {
        match Projection::of(stream) {
            Some(projection) => {
                let links = self.links(stream, projection).await?;
                Ok(match links.targets.len() {
                    0 => CurrentRevision::NoStream,
                    n => CurrentRevision::At(n as u64 - 1),
                })
            }
            None if stream.strip_prefix("$$").is_some_and(is_projection_stream) => {
                Ok(CurrentRevision::NoStream)
            }
            None => self.log.stream_revision(stream).await,
        }
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        self.log.head_position().await
    }

    fn head_watch(&self) -> Option<tokio::sync::watch::Receiver<Position>> {
        self.log.head_watch()
    }

    async fn highest_stream_number(&self, category: &str) -> Result<Option<u64>, StoreError> {
        self.log.highest_stream_number(category).await
    }

    async fn stream_names_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.log.stream_names_with_prefix(prefix).await
    }

    fn subscribe_all(&self, from: Position) -> Subscription {
        self.log.subscribe_all(from)
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter::tests::event;
    use super::*;

    #[test]
    fn only_the_two_prefixes_with_a_name_after_them_are_projection_streams() {
        assert_eq!(
            Projection::of("$ce-orders"),
            Some(Projection::Category("orders".into()))
        );
        assert_eq!(
            Projection::of("$et-OrderPlaced"),
            Some(Projection::EventType("OrderPlaced".into()))
        );
        for other in [
            "$ce-",
            "$et-",
            "orders-1",
            "$$orders-1",
            "$streams",
            "ce-orders",
        ] {
            assert_eq!(Projection::of(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn at_most_max_indexes_names_are_kept_and_a_dropped_one_reads_the_same_again() {
        use crate::store::sqlite::SqliteEventLog;
        use crate::store::{EventData, ExpectedRevision};
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> = Arc::new(
            SqliteEventLog::open(&dir.path().join("log.sqlite"))
                .await
                .unwrap(),
        );
        let foreign = |event_type: &str| EventData {
            id: Uuid::new_v4(),
            event_type: event_type.to_owned(),
            payload: b"{}".to_vec(),
            metadata: EventMetadata::Foreign {
                content_type: ContentType::Json,
                bytes: b"{}".to_vec(),
            },
        };
        for stream in ["orders-1", "orders-2", "invoices-1"] {
            log.append(stream, ExpectedRevision::Any, vec![foreign("Placed")])
                .await
                .unwrap();
        }
        let streams = SystemStreams::new(log);
        let read = |name: &'static str| {
            let streams = &streams;
            async move {
                streams
                    .read_stream(name, Direction::Forwards, StreamStart::Beginning, 10)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| String::from_utf8(e.payload.clone()).unwrap())
                    .collect::<Vec<_>>()
            }
        };
        let first = read("$ce-orders").await;
        assert_eq!(first, ["0@orders-1", "0@orders-2"]);
        for n in 0..MAX_INDEXES + 10 {
            let name = format!("$et-Other{n}");
            let links = streams
                .read_stream(&name, Direction::Forwards, StreamStart::Beginning, 10)
                .await
                .unwrap();
            assert!(links.is_empty());
        }
        {
            let indexes = streams.indexes.lock().unwrap();
            assert_eq!(indexes.by_name.len(), MAX_INDEXES);
            assert!(
                !indexes.by_name.contains_key("$ce-orders"),
                "read longest ago"
            );
        }
        assert_eq!(read("$ce-orders").await, first);
        assert_eq!(read("$et-Placed").await.len(), 3);
    }

    #[test]
    fn a_category_links_its_streams_events_and_no_system_event() {
        let orders = Projection::of("$ce-orders").unwrap();
        assert!(orders.links(&event("orders-1", "OrderPlaced")));
        assert!(orders.links(&event("orders-1-2", "OrderPlaced")));
        assert!(!orders.links(&event("orderslist-1", "OrderPlaced")));
        assert!(!orders.links(&event("orders", "OrderPlaced")));
        assert!(!orders.links(&event("orders-1", "$metadata")));
        assert!(!orders.links(&event("$$orders-1", "OrderPlaced")));
        let placed = Projection::of("$et-OrderPlaced").unwrap();
        assert!(placed.links(&event("orders-1", "OrderPlaced")));
        assert!(placed.links(&event("invoices", "OrderPlaced")));
        assert!(!placed.links(&event("orders-1", "OrderPlacedV2")));
        assert!(!placed.links(&event("$ce-orders", "OrderPlaced")));
    }
}
