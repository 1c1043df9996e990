//! The embedded event log: one SQLite file (WAL, `synchronous=FULL`) through sqlx.
//!
//! All appends go through one writer task that group-commits: it takes every request waiting
//! in its queue, checks them against the log and each other in memory, writes them with
//! multi-row statements in one `BEGIN IMMEDIATE` transaction, and acknowledges them after the
//! one `COMMIT` (and its fsync) returns. An acknowledged append therefore survives `kill -9`
//! and a power cut. Positions are assigned by that single writer in commit order, so a reader
//! that has seen position `p` has seen every position below it: catch-up subscriptions need no
//! gap detection.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::{
    category_of, validate_atomic, validate_stream_name, AppendResult, CurrentRevision, Direction,
    EventLog, Metadata, Position, RecordedEvent, StoreError, StreamAppend, StreamStart,
    Subscription,
};

/// Requests the writer takes into one transaction at most.
const MAX_BATCH_REQUESTS: usize = 4096;
/// Events the writer takes into one transaction at most (a single request may exceed it).
const MAX_BATCH_EVENTS: usize = 20_000;
/// Rows per multi-row INSERT (9 binds each, under SQLite's 32,766-variable limit).
const INSERT_CHUNK: usize = 1000;
/// Ids per `IN (...)` lookup.
const LOOKUP_CHUNK: usize = 900;
/// Events per page when a subscription catches up.
const SUBSCRIPTION_PAGE: usize = 1024;

struct WriteRequest {
    parts: Vec<StreamAppend>,
    /// Each event's serialised metadata, per part (serialised once, during validation).
    metadata: Vec<Vec<Vec<u8>>>,
    reply: oneshot::Sender<Result<Vec<AppendResult>, StoreError>>,
}

struct Inner {
    pool: SqlitePool,
    writer: mpsc::Sender<WriteRequest>,
    head: watch::Receiver<Position>,
}

/// The embedded SQLite event log. Cheap to clone; clones share the writer.
#[derive(Clone)]
pub struct SqliteEventLog {
    inner: Arc<Inner>,
}

impl SqliteEventLog {
    /// Opens (creating if needed) the log in the SQLite file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        Self::open_with(options).await
    }

    /// Opens the log from a `sqlite://` URL.
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        // Checkpoints run in their own task (see `run_checkpointer`), not inside the commit
        // that crosses the threshold, so the writer's critical path is one WAL append + fsync.
        let options = options
            .pragma("wal_autocheckpoint", "0")
            .statement_cache_capacity(512);
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite/eventlog")
            .run(&mut conn)
            .await?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&mut conn)
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let (head_tx, head_rx) = watch::channel(head as Position);
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(run_checkpointer(pool.clone(), head_rx.clone()));
        tokio::spawn(run_writer(conn, rx, head_tx));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                writer: tx,
                head: head_rx,
            }),
        })
    }

    /// The pool readers use (for tools that inspect the file).
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }
}

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// WAL pages beyond which the checkpointer waits for writers to finish the WAL (RESTART)
/// instead of copying what it can (PASSIVE), so the WAL cannot grow without bound.
const WAL_RESTART_PAGES: i64 = 32_768;

/// Copies WAL frames into the database file off the writer's path; ends with the log.
async fn run_checkpointer(pool: SqlitePool, mut head: watch::Receiver<Position>) {
    let mut last_head = *head.borrow();
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if head.has_changed().is_err() {
            return;
        }
        let now = *head.borrow_and_update();
        if now == last_head {
            continue;
        }
        last_head = now;
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok((_, log_pages, _)) if log_pages > WAL_RESTART_PAGES => {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "event-log WAL restart checkpoint failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "event-log checkpoint failed"),
        }
    }
}

/// The writer loop: one connection, group commit. Ends when every handle is dropped.
async fn run_writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<WriteRequest>,
    head: watch::Sender<Position>,
) {
    while let Some(first) = rx.recv().await {
        let mut events = first.parts.iter().map(|p| p.events.len()).sum::<usize>();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_REQUESTS && events < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(req) => {
                    events += req.parts.iter().map(|p| p.events.len()).sum::<usize>();
                    batch.push(req);
                }
                Err(_) => break,
            }
        }
        let requests: Vec<Request<'_>> = batch
            .iter()
            .map(|r| (r.parts.as_slice(), r.metadata.as_slice()))
            .collect();
        match write_batch(&mut conn, &requests).await {
            Ok((outcomes, new_head)) => {
                if let Some(p) = new_head {
                    head.send_replace(p);
                }
                for (req, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = req.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = batch.len(), "event log batch failed, rolled back");
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                let msg = e.to_string();
                for req in batch {
                    let _ = req
                        .reply
                        .send(Err(StoreError::Corrupt(format!("write failed: {msg}"))));
                }
            }
        }
    }
    let _ = conn.close().await;
}

/// Where an already-written event sits.
#[derive(Clone)]
struct Written {
    stream: String,
    revision: u64,
    position: Position,
}

/// A row to insert.
struct Row9<'a> {
    position: Position,
    id: Uuid,
    stream: &'a str,
    revision: u64,
    event: &'a super::EventData,
    metadata: &'a [u8],
}

/// One queued request: its parts and their events' serialised metadata.
type Request<'a> = (&'a [StreamAppend], &'a [Vec<Vec<u8>>]);

type BatchOutcome = (Vec<Result<Vec<AppendResult>, StoreError>>, Option<Position>);

/// Checks and writes one batch in one transaction. Per-request failures (conflicts) are
/// returned in the outcome; an `Err` means the transaction failed as a whole.
async fn write_batch(
    conn: &mut SqliteConnection,
    requests: &[Request<'_>],
) -> Result<BatchOutcome, sqlx::Error> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    // Read the head inside the write lock, so another process appending to the same file
    // cannot make positions collide.
    let max: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let mut next_position = max as u64 + 1;

    let stream_names: Vec<&str> = {
        let mut v: Vec<&str> = requests
            .iter()
            .flat_map(|(r, _)| r.iter().map(|p| p.stream.as_str()))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut revisions: HashMap<String, CurrentRevision> =
        lookup_revisions(conn, &stream_names).await?;
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|(r, _)| r.iter().flat_map(|p| p.events.iter().map(|e| e.id)))
        .collect();
    let mut written: HashMap<Uuid, Written> = lookup_ids(conn, &ids).await?;

    let recorded_at = Utc::now().timestamp_micros();
    let mut rows: Vec<Row9<'_>> = Vec::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    for &(parts, metadata) in requests {
        let rows_before = rows.len();
        let position_before = next_position;
        let mut staged_revisions: Vec<(String, CurrentRevision)> = Vec::new();
        let result = stage_request(
            parts,
            metadata,
            &revisions,
            &written,
            &mut next_position,
            &mut rows,
            &mut staged_revisions,
        );
        match result {
            Ok(results) => {
                for (stream, rev) in staged_revisions {
                    revisions.insert(stream, rev);
                }
                for row in &rows[rows_before..] {
                    written.insert(
                        row.id,
                        Written {
                            stream: row.stream.to_owned(),
                            revision: row.revision,
                            position: row.position,
                        },
                    );
                }
                outcomes.push(Ok(results));
            }
            Err(e) => {
                rows.truncate(rows_before);
                next_position = position_before;
                outcomes.push(Err(e));
            }
        }
    }

    if rows.is_empty() {
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        return Ok((outcomes, None));
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = String::with_capacity(40 + chunk.len() * 24);
        sql.push_str(
            "INSERT INTO events (position, event_id, stream_name, category, revision, event_type, payload, metadata, recorded_at) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?,?,?,?,?,?,?,?)");
        }
        let mut q = sqlx::query(&sql);
        for row in chunk {
            q = q
                .bind(row.position as i64)
                .bind(row.id.as_bytes().as_slice())
                .bind(row.stream)
                .bind(category_of(row.stream))
                .bind(row.revision as i64)
                .bind(row.event.event_type.as_str())
                .bind(row.event.payload.as_slice())
                .bind(row.metadata)
                .bind(recorded_at);
        }
        q.persistent(cacheable(chunk.len()))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok((outcomes, Some(next_position - 1)))
}

/// Checks one atomic request against the log state (plus earlier requests of the batch) and
/// stages its rows. Either every part is staged or the request fails.
fn stage_request<'a>(
    parts: &'a [StreamAppend],
    metadata: &'a [Vec<Vec<u8>>],
    revisions: &HashMap<String, CurrentRevision>,
    written: &HashMap<Uuid, Written>,
    next_position: &mut Position,
    rows: &mut Vec<Row9<'a>>,
    staged_revisions: &mut Vec<(String, CurrentRevision)>,
) -> Result<Vec<AppendResult>, StoreError> {
    let mut results = Vec::with_capacity(parts.len());
    for (part, part_metadata) in parts.iter().zip(metadata) {
        let current = revisions
            .get(&part.stream)
            .copied()
            .unwrap_or(CurrentRevision::NoStream);
        if part.events.iter().any(|e| written.contains_key(&e.id)) {
            results.push(replayed_result(part, written)?);
            continue;
        }
        if !part.expected.admits(current) {
            return Err(StoreError::Conflict {
                stream: part.stream.clone(),
                expected: part.expected,
                actual: current,
            });
        }
        let first_revision = match current {
            CurrentRevision::NoStream => 0,
            CurrentRevision::At(r) => r + 1,
        };
        for ((revision, event), metadata) in (first_revision..).zip(&part.events).zip(part_metadata)
        {
            rows.push(Row9 {
                position: *next_position,
                id: event.id,
                stream: &part.stream,
                revision,
                event,
                metadata,
            });
            *next_position += 1;
        }
        let last = rows.last().expect("a part has events");
        staged_revisions.push((part.stream.clone(), CurrentRevision::At(last.revision)));
        results.push(AppendResult {
            next_expected_revision: last.revision,
            position: last.position,
        });
    }
    Ok(results)
}

/// An append whose ids were seen before is a repeat only if every id was written to this
/// stream, in this order, at consecutive revisions; it then answers the original result.
fn replayed_result(
    part: &StreamAppend,
    written: &HashMap<Uuid, Written>,
) -> Result<AppendResult, StoreError> {
    let known: Vec<Option<&Written>> = part.events.iter().map(|e| written.get(&e.id)).collect();
    let repeat = known
        .iter()
        .all(|w| w.is_some_and(|w| w.stream == part.stream))
        && known
            .windows(2)
            .all(|w| matches!((w[0], w[1]), (Some(a), Some(b)) if b.revision == a.revision + 1));
    if !repeat {
        let (event_id, existing) = part
            .events
            .iter()
            .zip(&known)
            .find_map(|(e, w)| w.map(|w| (e.id, w.stream.clone())))
            .expect("at least one id is known");
        return Err(StoreError::DuplicateEventId {
            event_id,
            existing_stream: existing,
        });
    }
    let last = known.last().copied().flatten().expect("a part has events");
    Ok(AppendResult {
        next_expected_revision: last.revision,
        position: last.position,
    })
}

async fn lookup_revisions(
    conn: &mut SqliteConnection,
    streams: &[&str],
) -> Result<HashMap<String, CurrentRevision>, sqlx::Error> {
    let mut out = HashMap::with_capacity(streams.len());
    for chunk in streams.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT stream_name, MAX(revision) FROM events WHERE stream_name IN ({}) GROUP BY stream_name",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for s in chunk {
            q = q.bind(*s);
        }
        for row in q
            .persistent(cacheable(chunk.len()))
            .fetch_all(&mut *conn)
            .await?
        {
            let rev: i64 = row.get(1);
            out.insert(row.get::<String, _>(0), CurrentRevision::At(rev as u64));
        }
    }
    Ok(out)
}

async fn lookup_ids(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Written>, sqlx::Error> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT event_id, stream_name, revision, position FROM events WHERE event_id IN ({})",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.as_bytes().as_slice());
        }
        for row in q
            .persistent(cacheable(chunk.len()))
            .fetch_all(&mut *conn)
            .await?
        {
            let id = Uuid::from_slice(row.get::<&[u8], _>(0)).unwrap_or_default();
            out.insert(
                id,
                Written {
                    stream: row.get(1),
                    revision: row.get::<i64, _>(2) as u64,
                    position: row.get::<i64, _>(3) as u64,
                },
            );
        }
    }
    Ok(out)
}

/// Whether a statement with `n` rows or ids is worth keeping prepared. Group-commit batches
/// repeat the same few sizes (up to the number of concurrent appenders), so caching them saves
/// SQLite re-parsing the statement on every batch; odd large sizes are not kept.
fn cacheable(n: usize) -> bool {
    n <= 128 || n == INSERT_CHUNK || n == LOOKUP_CHUNK
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

const SELECT_EVENT: &str =
    "SELECT position, event_id, stream_name, revision, event_type, payload, metadata, recorded_at FROM events";

fn decode_row(row: &sqlx::sqlite::SqliteRow) -> Result<RecordedEvent, StoreError> {
    let id = Uuid::from_slice(row.get::<&[u8], _>(1))
        .map_err(|e| StoreError::Corrupt(format!("event id: {e}")))?;
    let micros: i64 = row.get(7);
    Ok(RecordedEvent {
        position: row.get::<i64, _>(0) as u64,
        id,
        stream: row.get(2),
        revision: row.get::<i64, _>(3) as u64,
        event_type: row.get(4),
        payload: row.get(5),
        metadata: Metadata::from_bytes(row.get::<&[u8], _>(6))?,
        recorded_at: DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default(),
    })
}

fn clamp_max(max: usize) -> i64 {
    max.min(i64::MAX as usize) as i64
}

fn clamp_position(p: u64) -> i64 {
    p.min(i64::MAX as u64) as i64
}

async fn read_all_from(
    pool: &SqlitePool,
    from: Position,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT_EVENT} WHERE position >= ? ORDER BY position LIMIT ?"
    ))
    .bind(clamp_position(from))
    .bind(clamp_max(max))
    .fetch_all(pool)
    .await?;
    rows.iter().map(decode_row).collect()
}

#[async_trait::async_trait]
impl EventLog for SqliteEventLog {
    #[tracing::instrument(skip_all, err, fields(streams = parts.len()))]
    async fn append_atomic(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let metadata = validate_atomic(&parts)?;
        let (reply, rx) = oneshot::channel();
        self.inner
            .writer
            .send(WriteRequest {
                parts,
                metadata,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from: StreamStart,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_stream_name(stream)?;
        let (cmp, order) = match direction {
            Direction::Forwards => (">=", "ASC"),
            Direction::Backwards => ("<=", "DESC"),
        };
        let from_rev = match (from, direction) {
            (StreamStart::Revision(r), _) => clamp_position(r),
            (StreamStart::Beginning, Direction::Forwards) => 0,
            (StreamStart::Beginning, Direction::Backwards) => i64::MAX,
        };
        let sql = format!(
            "{SELECT_EVENT} WHERE stream_name = ? AND revision {cmp} ? ORDER BY revision {order} LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(stream)
            .bind(from_rev)
            .bind(clamp_max(max))
            .fetch_all(&self.inner.pool)
            .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn read_all(&self, from: Position, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all_from(&self.inner.pool, from, max).await
    }

    async fn read_category(
        &self,
        category: &str,
        from: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if category.is_empty() || category.contains('-') {
            return Err(StoreError::InvalidInput {
                field: "category",
                rule: "must be non-empty and contain no `-`".into(),
            });
        }
        let rows = sqlx::query(&format!(
            "{SELECT_EVENT} WHERE category = ? AND position >= ? ORDER BY position LIMIT ?"
        ))
        .bind(category)
        .bind(clamp_position(from))
        .bind(clamp_max(max))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision, StoreError> {
        validate_stream_name(stream)?;
        let rev: Option<i64> =
            sqlx::query_scalar("SELECT MAX(revision) FROM events WHERE stream_name = ?")
                .bind(stream)
                .fetch_one(&self.inner.pool)
                .await?;
        Ok(rev.map_or(CurrentRevision::NoStream, |r| CurrentRevision::At(r as u64)))
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&self.inner.pool)
            .await?;
        Ok((head > 0).then_some(head as Position))
    }

    async fn highest_stream_number(&self, category: &str) -> Result<Option<u64>, StoreError> {
        if category.is_empty() || category.contains('-') {
            return Err(StoreError::InvalidInput {
                field: "category",
                rule: "must be non-empty and contain no `-`".into(),
            });
        }
        // The category index bounds the scan; ids that are not all digits are skipped.
        let highest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(CAST(SUBSTR(stream_name, ?1) AS INTEGER)) FROM events \
             WHERE category = ?2 AND SUBSTR(stream_name, ?1) NOT GLOB '*[^0-9]*' \
             AND SUBSTR(stream_name, ?1) <> ''",
        )
        .bind(category.len() as i64 + 2)
        .bind(category)
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(highest.and_then(|h| u64::try_from(h).ok()))
    }

    fn subscribe_all(&self, from: Position) -> Subscription {
        struct State {
            inner: Arc<Inner>,
            head: watch::Receiver<Position>,
            next: Position,
            buffer: VecDeque<RecordedEvent>,
        }
        let state = State {
            head: self.inner.head.clone(),
            inner: self.inner.clone(),
            next: from,
            buffer: VecDeque::new(),
        };
        futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(event) = st.buffer.pop_front() {
                    return Some((Ok(event), st));
                }
                // `borrow_and_update` before reading: a commit after this point bumps the
                // watch version, so `changed()` below cannot miss it.
                let head = *st.head.borrow_and_update();
                if head >= st.next {
                    match read_all_from(&st.inner.pool, st.next, SUBSCRIPTION_PAGE).await {
                        Ok(events) => {
                            if let Some(last) = events.last() {
                                st.next = last.position + 1;
                                st.buffer.extend(events);
                                continue;
                            }
                        }
                        Err(e) => return Some((Err(e), st)),
                    }
                }
                if st.head.changed().await.is_err() {
                    return None;
                }
            }
        })
        .boxed()
    }
}
