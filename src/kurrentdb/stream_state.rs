//! A stream as KurrentDB clients see it: its revision in the log, whether it was tombstoned, and
//! its metadata (the last `$metadata` event of `$$name`), which may truncate it (`$tb`, set to
//! `i64::MAX` by a soft delete), bound it (`$maxCount`, `$maxAge`), or carry anything else the
//! client stores there.
//!
//! Both deletions are events, so the log stays append-only and `$all` shows them, as in
//! KurrentDB: a soft delete appends `$metadata` with `$tb = i64::MAX` to `$$name`; a tombstone
//! appends `$streamDeleted` to the stream itself. Appending to a soft-deleted stream continues
//! its numbering and moves `$tb` to the first new revision, in the same atomic append.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::sync::{OnceCell, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::acl::StreamAcl;
use crate::store::{CurrentRevision, Direction, EventLog, RecordedEvent, StoreError, StreamStart};

/// The `$tb` a soft delete sets (KurrentDB's `EventNumber.DeletedStream`).
pub const SOFT_DELETED: u64 = i64::MAX as u64;
/// The event type of a stream's metadata.
pub const METADATA_EVENT: &str = "$metadata";
/// The event type that tombstones a stream (the log itself then refuses appends to it).
pub const TOMBSTONE_EVENT: &str = crate::store::TOMBSTONE_EVENT_TYPE;

/// The metadata stream of `stream`.
pub fn metadata_stream(stream: &str) -> String {
    format!("$${stream}")
}

/// A stream's metadata: the JSON object, with the keys the server acts on read out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamMetadata {
    /// The whole object, as the client wrote it (kept when the server moves `$tb`).
    pub object: Map<String, Value>,
}

impl StreamMetadata {
    fn number(&self, key: &str) -> Option<u64> {
        self.object.get(key).and_then(Value::as_u64)
    }

    /// Revisions below this are hidden (`$tb`).
    pub fn truncate_before(&self) -> Option<u64> {
        self.number("$tb")
    }

    /// Only the newest this many events are visible (`$maxCount`).
    pub fn max_count(&self) -> Option<u64> {
        self.number("$maxCount")
    }

    /// Only events younger than this many seconds are visible (`$maxAge`).
    pub fn max_age_seconds(&self) -> Option<u64> {
        self.number("$maxAge")
    }

    /// Its access control list (`$acl`).
    pub fn acl(&self) -> StreamAcl {
        StreamAcl::of(&self.object)
    }

    /// This metadata with `$tb` set to `revision`.
    pub fn truncated_before(&self, revision: u64) -> Self {
        let mut object = self.object.clone();
        object.insert("$tb".into(), Value::from(revision));
        Self { object }
    }

    /// The JSON bytes of a `$metadata` event.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.object).expect("a JSON object serialises")
    }
}

/// What the log holds for one stream, as KurrentDB's rules read it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamState {
    /// The stream's revision in the log (tombstone and truncated events included).
    pub revision: CurrentRevision,
    /// Whether the stream's last event is a tombstone.
    pub tombstoned: bool,
    /// Its metadata.
    pub metadata: StreamMetadata,
    /// The revision of its metadata stream.
    pub metadata_revision: CurrentRevision,
}

impl StreamState {
    /// Reads the stream's last event and its metadata stream's last event.
    pub async fn load(log: &dyn EventLog, stream: &str) -> Result<Self, StoreError> {
        // The stream's tip and its metadata's tip, read at once.
        let (last, metadata_tip) = if stream.starts_with("$$") {
            (last_event(log, stream).await?, None)
        } else {
            let metadata_stream = metadata_stream(stream);
            tokio::try_join!(last_event(log, stream), last_event(log, &metadata_stream))?
        };
        let (metadata, metadata_revision) = if stream.starts_with("$$") {
            (StreamMetadata::default(), CurrentRevision::NoStream)
        } else {
            match metadata_tip {
                None => (StreamMetadata::default(), CurrentRevision::NoStream),
                Some(event) => (
                    StreamMetadata {
                        object: serde_json::from_slice(&event.payload).unwrap_or_default(),
                    },
                    CurrentRevision::At(event.revision),
                ),
            }
        };
        Ok(Self {
            revision: last.as_ref().map_or(CurrentRevision::NoStream, |e| {
                CurrentRevision::At(e.revision)
            }),
            tombstoned: last.is_some_and(|e| e.event_type == TOMBSTONE_EVENT),
            metadata,
            metadata_revision,
        })
    }

    /// Whether a soft delete hides the whole stream.
    pub fn soft_deleted(&self) -> bool {
        self.metadata.truncate_before() == Some(SOFT_DELETED)
    }

    /// The lowest revision a read shows, by `$tb` and `$maxCount`.
    pub fn first_visible(&self) -> u64 {
        let by_tb = self.metadata.truncate_before().unwrap_or(0);
        let by_count = match (self.metadata.max_count(), self.revision) {
            (Some(count), CurrentRevision::At(last)) => (last + 1).saturating_sub(count),
            _ => 0,
        };
        by_tb.max(by_count)
    }

    /// Whether a read shows `event` (by revision and, with `$maxAge`, by age at `now`).
    pub fn shows(&self, event: &RecordedEvent, now: DateTime<Utc>) -> bool {
        if event.revision < self.first_visible() {
            return false;
        }
        match self.metadata.max_age_seconds() {
            Some(age) => (now - event.recorded_at).num_seconds() < age as i64,
            None => true,
        }
    }
}

async fn last_event(log: &dyn EventLog, stream: &str) -> Result<Option<RecordedEvent>, StoreError> {
    Ok(log
        .read_stream(stream, Direction::Backwards, StreamStart::Beginning, 1)
        .await?
        .pop())
}

/// The streams that have metadata (a `$$name` stream in the log), read from the log once and
/// then kept up to date by the port, the only writer of `$$` streams in the one process that
/// writes the log (its lock file sees to that). A stream outside the set has no metadata, so
/// an append to it needs no read first: the log checks its expected revision and refuses it
/// after a tombstone. Appends hold the set shared; a write of metadata (a soft delete, an
/// append to `$$name`) holds it exclusively and adds its stream before writing, so no append
/// takes the fast way past a soft delete.
#[derive(Debug, Default)]
pub struct MetadataStreams {
    set: OnceCell<RwLock<HashSet<String>>>,
}

impl MetadataStreams {
    async fn lock(&self, log: &dyn EventLog) -> Result<&RwLock<HashSet<String>>, StoreError> {
        self.set
            .get_or_try_init(|| async {
                let names = log.stream_names_with_prefix("$$").await?;
                Ok(RwLock::new(
                    names
                        .iter()
                        .filter_map(|n| n.strip_prefix("$$"))
                        .map(str::to_owned)
                        .collect(),
                ))
            })
            .await
    }

    /// The set, shared with other appends.
    pub async fn shared(
        &self,
        log: &dyn EventLog,
    ) -> Result<RwLockReadGuard<'_, HashSet<String>>, StoreError> {
        Ok(self.lock(log).await?.read().await)
    }

    /// The set, alone: for a write of `stream`'s metadata, which it adds.
    pub async fn exclusive(
        &self,
        log: &dyn EventLog,
        stream: &str,
    ) -> Result<RwLockWriteGuard<'_, HashSet<String>>, StoreError> {
        let mut set = self.lock(log).await?.write().await;
        set.insert(stream.to_owned());
        Ok(set)
    }
}
