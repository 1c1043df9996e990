//! The embedded event log: one SQLite file in WAL mode, every commit fsynced before anyone
//! learns of it.
//!
//! All appends go through one writer thread that group-commits: it takes every request waiting
//! in its queue, checks them against the log and each other in memory, and writes them in one
//! `BEGIN IMMEDIATE` transaction. The `COMMIT` only writes the WAL; a second thread, the
//! syncer, then fsyncs the WAL file and only after that acknowledges the group (and publishes
//! the new head). While the syncer waits for the disk, the writer already commits the next
//! group, so one fsync makes every group committed before it durable, and the writer never
//! idles on the disk. An acknowledged append therefore survives `kill -9` and a power cut
//! (the same contract as `synchronous=FULL`, which the other connections keep). Positions are
//! assigned by that single writer in commit order, so a reader that has seen position `p` has
//! seen every position below it: catch-up subscriptions need no gap detection.
//!
//! Readers never hand out an event that is not yet durable: a read that returns a position
//! beyond the last fsynced one waits for the syncer's next fsync (which covers whatever the
//! read saw, since it was written before). That holds for events another process appended to
//! the same file too.
//!
//! The writer and the readers talk to SQLite directly (rusqlite, on their own threads) rather
//! than through an async driver: a batch is half a dozen statements, and handing each of them
//! to a driver's worker thread and back cost more than the statements themselves. sqlx is used
//! for the migrations, the background WAL checkpointer and [`SqliteEventLog::pool`].
//!
//! The writer commits whatever is queued without waiting: the fsync is where appends share
//! the disk, and the syncer already covers every group committed during its previous fsync.
//! A linger (wait for stragglers when fewer requests came than the previous group held) can
//! be set with `LEDGER_APPEND_LINGER_MICROS`; before the syncer it was 250 µs, with the syncer
//! no setting measured consistently better than none (see `BENCHMARKS.md`).
//!
//! One concern over 600 lines: the embedded event-log backend, whose writer, syncer and reads
//! share one connection discipline (the durability protocol is in `durability.rs`).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use rusqlite::{params, OptionalExtension};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

#[doc(hidden)]
pub use super::durability::ProbeCounts;
use super::durability::{self, Durability, Reply};
use super::{
    category_of, validate_atomic, validate_category, validate_stream_name, AppendResult,
    CurrentRevision, Direction, EventLog, EventMetadata, Position, RecordedEvent, StoreError,
    StreamAppend, StreamStart, Subscription, TOMBSTONE_EVENT_TYPE,
};

/// Process-wide SQLite settings, applied before the first connection opens (later calls, or
/// calls after SQLite initialised, change nothing). Memory statistics off: with them every
/// allocation inside SQLite takes a global mutex and updates counters nobody here reads
/// (`sqlite3_memory_used`); see `BENCHMARKS.md` for what that cost a rebuild.
pub fn configure_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config` is called once, before this process opens any connection
        // (`main` calls this before any command runs); if SQLite was already initialised it
        // returns SQLITE_MISUSE and changes nothing.
        #[allow(unsafe_code)]
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::os::raw::c_int,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was already initialised; memory statistics stay on"
            );
        }
    });
}

/// Requests the writer takes into one transaction at most.
const MAX_BATCH_REQUESTS: usize = 4096;
/// Events the writer takes into one transaction at most (a single request may exceed it).
const MAX_BATCH_EVENTS: usize = 20_000;
/// Events per page when a subscription catches up.
const SUBSCRIPTION_PAGE: usize = 1024;
/// How long the writer waits for the rest of a group by default (see the module comment).
pub const LINGER: Duration = Duration::ZERO;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// Page cache of the writer's connection, in KiB: SQLite's default. A larger one made every
/// group commit slower: when a B-tree rebalance swaps two pages, SQLite parks one under the
/// number of the lock page (the page holding byte 1 GiB), and the commit then walks the
/// whole page cache to drop pages past the end of the file (`pcache1TruncateUnsafe`, 10-14 %
/// of the writer's time with 16 MiB). Measured with `ledger bench --parts append` and the commit
/// trace: 16 MiB → 2 MiB cut the writer's time per event by about 9 %.
const WRITER_CACHE_KIB: i64 = 2 * 1024;
/// Page cache of each read connection, in KiB.
const READER_CACHE_KIB: i64 = 2 * 1024;
/// How long a connection waits for SQLite's lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

struct WriteRequest {
    parts: Vec<StreamAppend>,
    /// Each event's serialised metadata, per part (serialised once, during validation).
    metadata: Vec<Vec<Vec<u8>>>,
    reply: Reply,
}

impl WriteRequest {
    fn events(&self) -> usize {
        self.parts.iter().map(|p| p.events.len()).sum()
    }
}

/// Read connections, opened on demand and reused.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    durability: Durability,
}

impl Readers {
    /// Runs a query of events on a read connection; returns them once they are all durable.
    async fn events<F>(self: &Arc<Self>, f: F) -> Result<Vec<RecordedEvent>, StoreError>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<Vec<RecordedEvent>, StoreError> + Send + 'static,
    {
        self.durable(|conn| {
            let events = f(conn)?;
            let highest = events.iter().map(|e| e.position as i64).max();
            Ok((events, highest))
        })
        .await
    }

    /// Runs a query on a read connection whose answer rests on rows up to the position it
    /// returns beside its value; returns the value once those rows are durable.
    async fn durable<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<(T, Option<i64>), StoreError> + Send + 'static,
    {
        let (value, highest) = self.with(f).await?;
        if let Some(highest) = highest.and_then(|h| u64::try_from(h).ok()) {
            self.durability.ensure(highest).await?;
        }
        Ok(value)
    }

    /// Runs `f` on a read connection in the blocking pool.
    async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let idle = this.idle.lock().expect("reader pool lock").pop();
            let conn = match idle {
                Some(c) => c,
                None => open_connection(&this.path, READER_CACHE_KIB, CommitSync::Full)?,
            };
            let result = f(&conn);
            let mut idle = this.idle.lock().expect("reader pool lock");
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

/// How a connection's own commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitSync {
    /// `synchronous=FULL`: every commit fsyncs the WAL itself.
    Full,
    /// `synchronous=NORMAL`: commits only write the WAL (checkpoints still fsync); the
    /// writer's commits are made durable by the syncer thread before they are acknowledged.
    BySyncer,
}

impl CommitSync {
    fn pragma(self) -> (&'static str, i64) {
        match self {
            CommitSync::Full => ("FULL", 2),
            CommitSync::BySyncer => ("NORMAL", 1),
        }
    }
}

/// Opens a connection on the log file with the settings every connection of the log uses.
fn open_connection(
    path: &Path,
    cache_kib: i64,
    sync: CommitSync,
) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let (sync_name, sync_level) = sync.pragma();
    conn.pragma_update(None, "synchronous", sync_name)?;
    // Checkpoints run in their own task (see `run_checkpointer`), not inside the commit that
    // crosses the threshold, so the writer's critical path is one WAL append.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // Page cache sizes: see `WRITER_CACHE_KIB` and `READER_CACHE_KIB`. No memory map: its
    // pages would count against the memory of a projector or verify reading the whole log.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Durability rests on these two: refuse to run without them.
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") || sync != sync_level {
        return Err(StoreError::Corrupt(format!(
            "the event log must run with journal_mode=WAL and synchronous={sync_name}, got {mode} and {sync}"
        )));
    }
    Ok(conn)
}

struct Inner {
    pool: SqlitePool,
    readers: Arc<Readers>,
    writer: flume::Sender<WriteRequest>,
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
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens the log from a `sqlite://` URL (a file; an in-memory database cannot be shared
    /// by the writer and the readers).
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::InvalidInput {
                field: "event-log URL",
                rule: "the embedded event log needs a file, not an in-memory database".into(),
            });
        }
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("wal_autocheckpoint", "0");
        let path = options.get_filename().to_path_buf();
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite/eventlog")
            .run(&mut conn)
            .await?;
        conn.close().await?;
        let writer_conn = open_connection(&path, WRITER_CACHE_KIB, CommitSync::BySyncer)?;
        let head: i64 =
            writer_conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                r.get(0)
            })?;
        // The log file as SQLite names it (absolute, symbolic links resolved); that read
        // created its WAL if it was missing.
        let db_file = writer_conn
            .path()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| StoreError::Corrupt("the event log has no file name".into()))?;
        durability::check_marker(&db_file)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_lazy_with(options);
        let (head_tx, head_rx) = watch::channel(head as Position);
        let (durability, syncer) = Durability::start(&db_file, head as Position, head_tx)?;
        let (tx, rx) = flume::bounded(8192);
        tokio::spawn(run_checkpointer(pool.clone(), head_rx.clone()));
        let writer_durability = durability.clone();
        std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || {
                let conn = run_writer(writer_conn, rx, &writer_durability);
                drop(writer_durability);
                // The syncer ends once the last handle is gone; the writer's connection
                // closes after it (closing may checkpoint and remove the WAL) -- unless the
                // log failed: then that checkpoint could copy pages whose write-back was lost
                // into the database file, so the connection is left unclosed.
                if syncer.join() {
                    std::mem::forget(conn);
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                readers: Arc::new(Readers {
                    path,
                    idle: Mutex::new(Vec::new()),
                    durability,
                }),
                writer: tx,
                head: head_rx,
            }),
        })
    }

    /// A sqlx pool on the log file (for tools that inspect the file). Unlike the log's own
    /// reads, it may see a commit the syncer has not fsynced yet.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// What the syncer's ordering probe counted since this log was opened: fsyncs, groups and
    /// appends acknowledged, and acknowledgements that came before the fsync covering them
    /// (never, unless the ordering is broken). For tests.
    #[doc(hidden)]
    pub fn durability_probe(&self) -> ProbeCounts {
        self.inner.readers.durability.probe()
    }
}

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// WAL pages (16 MiB) beyond which the checkpointer waits for writers to finish the WAL
/// (RESTART) instead of copying what it can (PASSIVE), so the next commit rewinds it. This
/// keeps commits cheap, not only the file small: a commit that extends the WAL file makes its
/// fsync also flush the file system's metadata. Measured with the commit trace on the
/// `ledger bench` intake part: 3.3 ms per group commit with a 128 MiB limit, 1.0 ms with this
/// one (64 writers: 24,600 → 53,200 appends/s).
const WAL_RESTART_PAGES: i64 = 4_096;

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

/// [`LINGER`], or `LEDGER_APPEND_LINGER_MICROS` when set (read once per process).
fn linger() -> Duration {
    static L: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *L.get_or_init(|| {
        std::env::var("LEDGER_APPEND_LINGER_MICROS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_micros)
            .unwrap_or(LINGER)
    })
}

/// Takes the next group of requests: the first one (waiting for it), everything already
/// queued, and, while fewer than `expected` have come, whatever arrives within [`linger`].
/// `None` once every handle is dropped.
fn next_group(rx: &flume::Receiver<WriteRequest>, expected: usize) -> Option<Vec<WriteRequest>> {
    let first = rx.recv().ok()?;
    let mut events = first.events();
    let mut batch = vec![first];
    let full = |batch: &Vec<WriteRequest>, events: usize| {
        batch.len() >= MAX_BATCH_REQUESTS || events >= MAX_BATCH_EVENTS
    };
    let deadline = Instant::now() + linger();
    while !full(&batch, events) {
        let next = match rx.try_recv() {
            Ok(req) => Some(req),
            Err(_) if batch.len() < expected => rx.recv_deadline(deadline).ok(),
            Err(_) => None,
        };
        let Some(req) = next else { break };
        events += req.events();
        batch.push(req);
    }
    Some(batch)
}

/// The writer loop: one connection, group commit; the syncer acknowledges each group once it
/// is on disk. Ends when every handle is dropped.
fn run_writer(
    mut conn: rusqlite::Connection,
    rx: flume::Receiver<WriteRequest>,
    durability: &Durability,
) -> rusqlite::Connection {
    let mut expected = 1;
    while let Some(batch) = next_group(&rx, expected) {
        expected = batch.len();
        if durability.failure().is_some() {
            for req in batch {
                let _ = req
                    .reply
                    .send(Err(durability.failure().unwrap_or(StoreError::Closed)));
            }
            continue;
        }
        let requests: Vec<Request<'_>> = batch
            .iter()
            .map(|r| (r.parts.as_slice(), r.metadata.as_slice()))
            .collect();
        let started = Instant::now();
        match write_batch(&mut conn, &requests) {
            Ok((outcomes, new_head)) => {
                tracing::trace!(
                    requests = requests.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "event-log group committed"
                );
                let replies = batch.into_iter().map(|r| r.reply).zip(outcomes).collect();
                durability.acknowledge(new_head, replies);
            }
            Err(e) => {
                tracing::error!(error = %e, requests = batch.len(), "event log batch failed, rolled back");
                if is_io_error(&e) {
                    // As after a failed fsync, what reached the disk is unknown.
                    durability.fail(&format!("I/O error while writing: {e}"));
                }
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                let msg = e.to_string();
                for req in batch {
                    let _ = req
                        .reply
                        .send(Err(StoreError::Corrupt(format!("write failed: {msg}"))));
                }
            }
        }
    }
    conn
}

fn is_io_error(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::SystemIoFailure
    )
}

/// A stream's tip as a batch sees it.
#[derive(Debug, Clone, Copy)]
struct Tip {
    revision: CurrentRevision,
    /// Its last event is a tombstone: it takes no more events.
    closed: bool,
}

/// Where an already-written event sits.
#[derive(Clone)]
struct Written {
    stream: String,
    revision: u64,
    position: Position,
}

/// A row to insert.
struct StagedRow<'a> {
    position: Position,
    /// Its storage key ([`storage_key`]).
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
fn write_batch(
    conn: &mut rusqlite::Connection,
    requests: &[Request<'_>],
) -> rusqlite::Result<BatchOutcome> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    // Read the head inside the write lock, so another process appending to the same file
    // cannot make positions collide.
    let max: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
        .query_row([], |r| r.get(0))?;
    let mut next_position = max as u64 + 1;

    // Each stream's tip: its revision, and whether its last event closed it (a tombstone).
    let mut tips: HashMap<String, Tip> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT revision, event_type = ?2 FROM events WHERE stream_name = ?1 \
             ORDER BY revision DESC LIMIT 1",
        )?;
        for (parts, _) in requests {
            for part in *parts {
                if tips.contains_key(&part.stream) {
                    continue;
                }
                let tip = stmt
                    .query_row(params![&part.stream, TOMBSTONE_EVENT_TYPE], |r| {
                        Ok(Tip {
                            revision: CurrentRevision::At(r.get::<_, i64>(0)? as u64),
                            closed: r.get(1)?,
                        })
                    })
                    .optional()?
                    .unwrap_or(Tip {
                        revision: CurrentRevision::NoStream,
                        closed: false,
                    });
                tips.insert(part.stream.clone(), tip);
            }
        }
    }
    let mut written: HashMap<Uuid, Written> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT stream_name, revision, position, client_event_id IS NULL FROM events \
             WHERE event_id = ?1",
        )?;
        let mut find = |key: &Uuid| {
            stmt.query_row([key.as_bytes().as_slice()], |r| {
                Ok((
                    Written {
                        stream: r.get(0)?,
                        revision: r.get::<_, i64>(1)? as u64,
                        position: r.get::<_, i64>(2)? as u64,
                    },
                    r.get::<_, bool>(3)?,
                ))
            })
            .optional()
        };
        for (parts, _) in requests {
            for part in *parts {
                for event in &part.events {
                    let key = storage_key(&part.stream, event);
                    if let Some((w, _)) = find(&key)? {
                        written.insert(key, w);
                    } else if key != event.id {
                        // A foreign event written before ids were per stream is keyed by its
                        // own id: a repeat of that append to the same stream is still one.
                        if let Some((w, true)) = find(&event.id)? {
                            if w.stream == part.stream {
                                written.insert(key, w);
                            }
                        }
                    }
                }
            }
        }
    }

    let recorded_at = Utc::now().timestamp_micros();
    let mut rows: Vec<StagedRow<'_>> = Vec::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    for &(parts, metadata) in requests {
        let rows_before = rows.len();
        let position_before = next_position;
        let mut staged_tips: Vec<(String, Tip)> = Vec::new();
        let result = stage_request(
            parts,
            metadata,
            &tips,
            &written,
            &mut next_position,
            &mut rows,
            &mut staged_tips,
        );
        match result {
            Ok(results) => {
                for (stream, tip) in staged_tips {
                    tips.insert(stream, tip);
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
        conn.execute_batch("ROLLBACK")?;
        return Ok((outcomes, None));
    }
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO events (position, event_id, stream_name, category, revision, event_type, payload, metadata, recorded_at, envelope, client_event_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for row in &rows {
            let client_id = (row.id != row.event.id).then(|| row.event.id.as_bytes().to_vec());
            insert.execute(params![
                row.position as i64,
                row.id.as_bytes().as_slice(),
                row.stream,
                category_of(row.stream),
                row.revision as i64,
                row.event.event_type.as_str(),
                row.event.payload.as_slice(),
                row.metadata,
                recorded_at,
                row.event.metadata.kind_code(),
                client_id,
            ])?;
        }
    }
    let commit = Instant::now();
    conn.execute_batch("COMMIT")?;
    tracing::trace!(
        rows = rows.len(),
        commit_micros = commit.elapsed().as_micros() as u64,
        "event-log commit (WAL write)"
    );
    Ok((outcomes, Some(next_position - 1)))
}

/// Checks one atomic request against the log state (plus earlier requests of the batch) and
/// stages its rows. Either every part is staged or the request fails.
fn stage_request<'a>(
    parts: &'a [StreamAppend],
    metadata: &'a [Vec<Vec<u8>>],
    tips: &HashMap<String, Tip>,
    written: &HashMap<Uuid, Written>,
    next_position: &mut Position,
    rows: &mut Vec<StagedRow<'a>>,
    staged_tips: &mut Vec<(String, Tip)>,
) -> Result<Vec<AppendResult>, StoreError> {
    let mut results = Vec::with_capacity(parts.len());
    for (part, part_metadata) in parts.iter().zip(metadata) {
        // An earlier part of this request may have moved the stream already.
        let tip = staged_tips
            .iter()
            .rev()
            .find(|(s, _)| *s == part.stream)
            .map(|(_, t)| t)
            .or_else(|| tips.get(&part.stream))
            .copied()
            .unwrap_or(Tip {
                revision: CurrentRevision::NoStream,
                closed: false,
            });
        let current = tip.revision;
        let keys: Vec<Uuid> = part
            .events
            .iter()
            .map(|e| storage_key(&part.stream, e))
            .collect();
        if keys.iter().any(|k| written.contains_key(k)) {
            results.push(replayed_result(part, &keys, written)?);
            continue;
        }
        if tip.closed {
            return Err(StoreError::StreamDeleted {
                stream: part.stream.clone(),
            });
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
        for (((revision, event), metadata), key) in (first_revision..)
            .zip(&part.events)
            .zip(part_metadata)
            .zip(keys)
        {
            rows.push(StagedRow {
                position: *next_position,
                id: key,
                stream: &part.stream,
                revision,
                event,
                metadata,
            });
            *next_position += 1;
        }
        let last = rows.last().expect("a part has events");
        staged_tips.push((
            part.stream.clone(),
            Tip {
                revision: CurrentRevision::At(last.revision),
                closed: last.event.event_type == TOMBSTONE_EVENT_TYPE,
            },
        ));
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
    keys: &[Uuid],
    written: &HashMap<Uuid, Written>,
) -> Result<AppendResult, StoreError> {
    let known: Vec<Option<&Written>> = keys.iter().map(|k| written.get(k)).collect();
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

/// The highest numeric id of the streams named from `?2` (`category-`) up to `?3`
/// (`category.`), ids starting at character `?1`; and the highest position it rests on.
const HIGHEST_STREAM_NUMBER: &str =
    "SELECT MAX(CAST(SUBSTR(stream_name, ?1) AS INTEGER)), MAX(position) \
     FROM events WHERE stream_name >= ?2 AND stream_name < ?3 \
     AND SUBSTR(stream_name, ?1) NOT GLOB '*[^0-9]*' \
     AND SUBSTR(stream_name, ?1) <> ''";

/// The smallest string above every string that starts with `prefix` (`None`: there is none,
/// the prefix is all `char::MAX`).
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The key a foreign (KurrentDB client's) event is stored under: its id is unique only within
/// its stream, so the key is a name-based UUID of both. The ledger's own events are keyed by
/// their id, unique across the log.
fn storage_key(stream: &str, event: &super::EventData) -> Uuid {
    if event.metadata.ledger().is_none() {
        let mut name = Vec::with_capacity(stream.len() + 17);
        name.extend_from_slice(stream.as_bytes());
        name.push(0);
        name.extend_from_slice(event.id.as_bytes());
        Uuid::new_v5(&FOREIGN_KEYS, &name)
    } else {
        event.id
    }
}

/// The namespace of [`storage_key`]'s name-based ids.
const FOREIGN_KEYS: Uuid = Uuid::from_u128(0x6c65_6467_6572_4b44_8000_666f_7265_6967);

const SELECT_EVENT: &str =
    "SELECT position, COALESCE(client_event_id, event_id), stream_name, revision, event_type, payload, metadata, recorded_at, envelope FROM events";

fn blob<'a>(row: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a [u8], StoreError> {
    row.get_ref(i)?
        .as_blob()
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// Runs a `SELECT_EVENT` query and decodes its rows.
fn query_events(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let id = Uuid::from_slice(blob(row, 1)?)
            .map_err(|e| StoreError::Corrupt(format!("event id: {e}")))?;
        let micros: i64 = row.get(7)?;
        out.push(RecordedEvent {
            position: row.get::<_, i64>(0)? as u64,
            id,
            stream: row.get(2)?,
            revision: row.get::<_, i64>(3)? as u64,
            event_type: row.get(4)?,
            payload: blob(row, 5)?.to_vec(),
            metadata: EventMetadata::from_stored(row.get(8)?, blob(row, 6)?)?,
            recorded_at: DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn clamp_max(max: usize) -> i64 {
    max.min(i64::MAX as usize) as i64
}

fn clamp_position(p: u64) -> i64 {
    p.min(i64::MAX as u64) as i64
}

async fn read_all_from(
    readers: &Arc<Readers>,
    from: Position,
    max: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    readers
        .events(move |conn| {
            query_events(
                conn,
                &format!("{SELECT_EVENT} WHERE position >= ?1 ORDER BY position LIMIT ?2"),
                params![clamp_position(from), clamp_max(max)],
            )
        })
        .await
}

#[async_trait::async_trait]
impl EventLog for SqliteEventLog {
    #[tracing::instrument(level = "debug", skip_all, err(level = "info"), fields(streams = parts.len()))]
    async fn append_atomic(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let metadata = validate_atomic(&parts)?;
        let started = Instant::now();
        let (reply, rx) = oneshot::channel();
        self.inner
            .writer
            .send_async(WriteRequest {
                parts,
                metadata,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        let appended = rx.await.map_err(|_| StoreError::Closed)?;
        if appended.is_ok() {
            crate::metrics::observe_event_log(
                crate::metrics::catalog::APPEND_DURATION,
                started.elapsed(),
            );
        }
        appended
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
            "{SELECT_EVENT} WHERE stream_name = ?1 AND revision {cmp} ?2 ORDER BY revision {order} LIMIT ?3"
        );
        let stream = stream.to_owned();
        self.inner
            .readers
            .events(move |conn| query_events(conn, &sql, params![stream, from_rev, clamp_max(max)]))
            .await
    }

    async fn read_all(&self, from: Position, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        read_all_from(&self.inner.readers, from, max).await
    }

    async fn read_all_backwards(
        &self,
        before: Option<Position>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let before = before.map_or(i64::MAX, clamp_position);
        self.inner
            .readers
            .events(move |conn| {
                query_events(
                    conn,
                    &format!("{SELECT_EVENT} WHERE position < ?1 ORDER BY position DESC LIMIT ?2"),
                    params![before, clamp_max(max)],
                )
            })
            .await
    }

    async fn read_category(
        &self,
        category: &str,
        from: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        validate_category(category)?;
        let category = category.to_owned();
        // No category index (see the migration that dropped it): the read walks the log by
        // position from `from` and keeps the category's events.
        self.inner
            .readers
            .events(move |conn| {
                query_events(
                    conn,
                    &format!(
                        "{SELECT_EVENT} WHERE category = ?1 AND position >= ?2 ORDER BY position LIMIT ?3"
                    ),
                    params![category, clamp_position(from), clamp_max(max)],
                )
            })
            .await
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision, StoreError> {
        validate_stream_name(stream)?;
        let stream = stream.to_owned();
        let rev: Option<i64> = self
            .inner
            .readers
            .durable(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT MAX(revision), MAX(position) FROM events WHERE stream_name = ?1",
                    )?
                    .query_row([stream], |r| Ok((r.get(0)?, r.get(1)?)))?)
            })
            .await?;
        Ok(rev.map_or(CurrentRevision::NoStream, |r| CurrentRevision::At(r as u64)))
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        let head: i64 = self
            .inner
            .readers
            .durable(|conn| {
                let head: i64 = conn
                    .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
                    .query_row([], |r| r.get(0))?;
                Ok((head, Some(head)))
            })
            .await?;
        Ok((head > 0).then_some(head as Position))
    }

    async fn highest_stream_number(&self, category: &str) -> Result<Option<u64>, StoreError> {
        validate_category(category)?;
        // The streams `category-…` are the stream index's keys from `category-` up to (not
        // including) `category.` ('.' follows '-'), so the scan reads only that range of the
        // index; ids that are not all digits are skipped.
        let (low, high) = (format!("{category}-"), format!("{category}."));
        let highest: Option<i64> = self
            .inner
            .readers
            .durable(move |conn| {
                Ok(conn
                    .prepare_cached(HIGHEST_STREAM_NUMBER)?
                    .query_row(params![low.len() as i64 + 1, low, high], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?)
            })
            .await?;
        Ok(highest.and_then(|h| u64::try_from(h).ok()))
    }

    async fn stream_names_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        if prefix.is_empty() {
            return Err(StoreError::InvalidInput {
                field: "prefix",
                rule: "must not be empty (that lists every stream)".into(),
            });
        }
        // The stream index's keys from `prefix` up to (not including) the prefix with its
        // last byte raised: only that range of the index is read.
        let low = prefix.to_owned();
        let high = prefix_successor(prefix);
        self.inner
            .readers
            .with(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT DISTINCT stream_name FROM events \
                     WHERE stream_name >= ?1 AND (?2 IS NULL OR stream_name < ?2) \
                     ORDER BY stream_name",
                )?;
                let names = stmt
                    .query_map(params![low, high], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(names)
            })
            .await
    }

    fn head_watch(&self) -> Option<watch::Receiver<Position>> {
        Some(self.inner.head.clone())
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
                    match read_all_from(&st.inner.readers, st.next, SUBSCRIPTION_PAGE).await {
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
                // After a failed fsync the head never moves again: end with the error.
                if let Some(e) = st.inner.readers.durability.failure() {
                    return Some((Err(e), st));
                }
                if st.head.changed().await.is_err() {
                    return None;
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's schema, as its migrations leave it, in memory.
    fn migrated() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite/eventlog");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            conn.execute_batch(&std::fs::read_to_string(file).unwrap())
                .unwrap();
        }
        conn
    }

    #[test]
    fn the_highest_stream_number_reads_a_range_of_the_stream_index_not_the_log() {
        let conn = migrated();
        let plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {HIGHEST_STREAM_NUMBER}"))
            .unwrap()
            .query_map(params![10, "donation-", "donation."], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect::<Vec<_>>()
            .join("; ");
        assert!(
            plan.contains("COVERING INDEX") && plan.contains("stream_name>? AND stream_name<?"),
            "{plan}"
        );
    }

    #[test]
    fn appends_maintain_no_category_index() {
        let conn = migrated();
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        // The event id's and the (stream, revision) uniqueness indexes, nothing else.
        assert_eq!(indexes.len(), 2, "{indexes:?}");
        assert!(indexes
            .iter()
            .all(|i| i.starts_with("sqlite_autoindex_events")));
    }
}
