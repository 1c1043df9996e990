//! The SQLite read-model backend, all of it: statements from `projections/sqlite/`, multi-row
//! `INSERT ... ON CONFLICT DO UPDATE`, transactions that write first (so they hold the write
//! lock from their first statement), WAL snapshots for verify, scratch files beside the live
//! one and a rebuild's switch by copying tables in one write transaction.
//!
//! Over 600 lines, one concern: the read-model interface (`backend.rs`) for one dialect, kept
//! in one file so that a dialect is one file (issue 17).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Arguments, Row, Sqlite, SqlitePool, Transaction};

use super::backend::{
    db_error, Backend, DbFailure, Dialect, Load, ProjectionError, ReadTx, ReasonTable, Scratch,
    Session, SqlFlavor, Statement, Write,
};
use super::rows::{self, bind_values, chunk_sizes, expanded, ColType, Value};

/// SQLite's limit on bound variables per statement.
const MAX_VARIABLES: usize = 32_766;
/// Rows per multi-row statement at most; a power of two (see `chunk_sizes`).
const MAX_ROWS_PER_STATEMENT: usize = 256;
/// Prepared statements kept per connection: every (statement, chunk size) pair of the
/// projection writes stays cached, with room for the loads and the rest.
const STATEMENT_CACHE_CAPACITY: usize = 256;

const DONATION_SELECT: &str = include_str!("../../projections/sqlite/donation_select.sql");
const PAYMENT_SELECT: &str = include_str!("../../projections/sqlite/payment_select.sql");
const CONTRIBUTION_TRACKING_SELECT: &str =
    include_str!("../../projections/sqlite/contribution_tracking_select.sql");
const MODERATION_REASON_SELECT: &str =
    include_str!("../../projections/sqlite/moderation_reason_select.sql");
const MODERATION_REASON_DELETE: &str =
    include_str!("../../projections/sqlite/moderation_reason_delete.sql");
const MEMBERSHIP_SELECT: &str = include_str!("../../projections/sqlite/membership_select.sql");
const ADDRESS_CHANGE_SELECT: &str =
    include_str!("../../projections/sqlite/address_change_select.sql");
const CIVISHARE_OUTGOING_UPSERT: &str =
    include_str!("../../projections/sqlite/civishare_outgoing_upsert.sql");
const CIVISHARE_INCOMING_UPSERT: &str =
    include_str!("../../projections/sqlite/civishare_incoming_upsert.sql");
const CIVISHARE_STATUS_CHECKPOINT_UPSERT: &str =
    include_str!("../../projections/sqlite/civishare_status_checkpoint_upsert.sql");
const ADDRESS_CHANGE_UPSERT: &str =
    include_str!("../../projections/sqlite/address_change_upsert.sql");
const SUBSCRIPTION_SELECT: &str = include_str!("../../projections/sqlite/subscription_select.sql");
const SUBSCRIPTION_UPSERT: &str = include_str!("../../projections/sqlite/subscription_upsert.sql");
const MEMBERSHIP_UPSERT: &str = include_str!("../../projections/sqlite/membership_upsert.sql");
const MEMBERSHIP_REASON_SELECT: &str =
    include_str!("../../projections/sqlite/membership_moderation_reason_select.sql");
const MEMBERSHIP_REASON_DELETE: &str =
    include_str!("../../projections/sqlite/membership_moderation_reason_delete.sql");
const MEMBERSHIP_REASON_INSERT: &str =
    include_str!("../../projections/sqlite/membership_moderation_reason_insert.sql");
const DONATION_TRACKING_SELECT: &str =
    include_str!("../../projections/sqlite/donation_tracking_select.sql");
const DONATION_TRACKING_MAX_ID: &str =
    include_str!("../../projections/sqlite/donation_tracking_max_id.sql");
pub(crate) const DONATION_UPSERT: &str =
    include_str!("../../projections/sqlite/donation_upsert.sql");
pub(crate) const PAYMENT_UPSERT: &str = include_str!("../../projections/sqlite/payment_upsert.sql");
pub(crate) const CONTRIBUTION_TRACKING_UPSERT: &str =
    include_str!("../../projections/sqlite/contribution_tracking_upsert.sql");
const CONFLICT_INSERT: &str =
    include_str!("../../projections/sqlite/contribution_tracking_conflict_insert.sql");
const DONATION_EVENT_INSERT: &str =
    include_str!("../../projections/sqlite/donation_event_insert.sql");
const MEMBERSHIP_EVENT_INSERT: &str =
    include_str!("../../projections/sqlite/membership_event_insert.sql");
const ADDRESS_CHANGE_EVENT_INSERT: &str =
    include_str!("../../projections/sqlite/address_change_event_insert.sql");
const DONATION_TRACKING_INSERT: &str =
    include_str!("../../projections/sqlite/donation_tracking_insert.sql");
const MODERATION_REASON_INSERT: &str =
    include_str!("../../projections/sqlite/moderation_reason_insert.sql");
const CHECKPOINT_ENSURE: &str = include_str!("../../projections/sqlite/checkpoint_ensure.sql");
const CHECKPOINT_SELECT: &str = include_str!("../../projections/sqlite/checkpoint_select.sql");
const CHECKPOINT_ADVANCE: &str = include_str!("../../projections/sqlite/checkpoint_advance.sql");
const SKIPPED_EVENT_INSERT: &str =
    include_str!("../../projections/sqlite/skipped_event_insert.sql");
const SKIPPED_EVENT_SELECT: &str =
    include_str!("../../projections/sqlite/skipped_event_select.sql");

/// The statement and layout of each write.
pub(crate) fn write_statement(what: Write) -> (&'static str, &'static [(&'static str, ColType)]) {
    match what {
        Write::DonationTracking => (DONATION_TRACKING_INSERT, rows::TRACKING_COLUMNS),
        Write::Donation => (DONATION_UPSERT, rows::DONATION_COLUMNS),
        Write::Payment => (PAYMENT_UPSERT, rows::PAYMENT_COLUMNS),
        Write::ModerationReason => (MODERATION_REASON_INSERT, rows::REASON_COLUMNS),
        Write::DonationEvent => (DONATION_EVENT_INSERT, rows::DONATION_EVENT_COLUMNS),
        Write::MembershipEvent => (MEMBERSHIP_EVENT_INSERT, rows::MEMBERSHIP_EVENT_COLUMNS),
        Write::AddressChangeEvent => (
            ADDRESS_CHANGE_EVENT_INSERT,
            rows::ADDRESS_CHANGE_EVENT_COLUMNS,
        ),
        Write::ContributionTracking => (
            CONTRIBUTION_TRACKING_UPSERT,
            rows::CONTRIBUTION_TRACKING_COLUMNS,
        ),
        Write::Conflict => (CONFLICT_INSERT, rows::CONFLICT_COLUMNS),
        Write::Membership => (MEMBERSHIP_UPSERT, rows::MEMBERSHIP_COLUMNS),
        Write::AddressChange => (ADDRESS_CHANGE_UPSERT, rows::ADDRESS_CHANGE_COLUMNS),
        Write::CivishareOutgoing => (CIVISHARE_OUTGOING_UPSERT, rows::CIVISHARE_OUTGOING_COLUMNS),
        Write::CivishareIncoming => (CIVISHARE_INCOMING_UPSERT, rows::CIVISHARE_INCOMING_COLUMNS),
        Write::CivishareStatusCheckpoint => (
            CIVISHARE_STATUS_CHECKPOINT_UPSERT,
            rows::CIVISHARE_STATUS_CHECKPOINT_COLUMNS,
        ),
        Write::Subscription => (SUBSCRIPTION_UPSERT, rows::SUBSCRIPTION_COLUMNS),
        Write::MembershipModerationReason => {
            (MEMBERSHIP_REASON_INSERT, rows::MEMBERSHIP_REASON_COLUMNS)
        }
    }
}

fn load_statement(what: Load) -> (&'static str, &'static [(&'static str, ColType)]) {
    match what {
        Load::Donation => (DONATION_SELECT, rows::DONATION_COLUMNS),
        Load::Payment => (PAYMENT_SELECT, rows::PAYMENT_COLUMNS),
        Load::ContributionTracking => (
            CONTRIBUTION_TRACKING_SELECT,
            rows::CONTRIBUTION_TRACKING_COLUMNS,
        ),
        Load::ModerationReason => (MODERATION_REASON_SELECT, rows::REASON_COLUMNS),
        Load::Membership => (MEMBERSHIP_SELECT, rows::MEMBERSHIP_COLUMNS),
        Load::AddressChange => (ADDRESS_CHANGE_SELECT, rows::ADDRESS_CHANGE_COLUMNS),
        Load::Subscription => (SUBSCRIPTION_SELECT, rows::SUBSCRIPTION_COLUMNS),
        Load::MembershipModerationReason => {
            (MEMBERSHIP_REASON_SELECT, rows::MEMBERSHIP_REASON_COLUMNS)
        }
    }
}

/// Opens a pool on a `sqlite://` URL, creating the file if needed.
async fn connect(url: &str) -> Result<SqlitePool, ProjectionError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| ProjectionError::InvalidUrl(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // The read model is disposable and consistent per transaction; a power cut can only
        // lose whole batches, which the projector applies again.
        .synchronous(SqliteSynchronous::Normal)
        // Personal columns blanked by a scrub must not survive in free pages.
        .pragma("secure_delete", "ON")
        .busy_timeout(Duration::from_secs(30))
        .statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(db_error)
}

/// Opens the scratch file a rebuild fills (created fresh, deleted after the switch). Nothing
/// reads it before the switch and a crash discards it, so it trades durability for speed: an
/// in-memory rollback journal (a failed batch still rolls back), no fsync, one connection
/// and a 64 MiB page cache. `secure_delete` stays on, so personal data a
/// later batch blanks does not linger in free pages.
async fn connect_scratch(path: &Path) -> Result<SqlitePool, ProjectionError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Memory)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "MEMORY")
        // The index build after the fill sorts with a helper thread.
        .pragma("threads", "2")
        .pragma("secure_delete", "ON")
        .busy_timeout(Duration::from_secs(30))
        .statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(db_error)
}

/// Brings the schema up to date. Tolerates the event log's migrations in the same file.
async fn migrate(pool: &SqlitePool) -> Result<(), ProjectionError> {
    let mut migrator = sqlx::migrate!("./migrations/sqlite/readmodel");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await?;
    Ok(())
}

/// Starts a batch transaction. Its first statement (the checkpoint row's `INSERT`) is a write,
/// so it takes the write lock before reading anything, as `BEGIN IMMEDIATE` would. (sqlx's
/// `begin_with` is avoided: cancelled at the wrong moment it leaves the pooled connection
/// inside a transaction, and a projector task may be aborted at any point.)
async fn begin(pool: &SqlitePool) -> Result<Box<dyn Session>, ProjectionError> {
    let tx = pool.begin().await.map_err(db_error)?;
    Ok(Box::new(SqliteSession { tx }))
}

/// Reads a row into values of `columns`' types.
pub(crate) fn read(
    row: &SqliteRow,
    columns: &[(&str, ColType)],
) -> Result<Vec<Value>, ProjectionError> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, t))| {
            Ok(match t {
                ColType::I64 => Value::I64(row.try_get(i).map_err(db_error)?),
                ColType::Text => Value::Text(row.try_get(i).map_err(db_error)?),
                ColType::Bool => Value::Bool(row.try_get(i).map_err(db_error)?),
                ColType::Time => Value::Time(row.try_get(i).map_err(db_error)?),
            })
        })
        .collect()
}

fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("ids serialise")
}

/// Runs `statement` (a one-row `INSERT ... VALUES (...)`) for `rows`, as prepared multi-row
/// statements of the sizes `chunk_sizes` picks. The values of each chunk are bound on this
/// thread while SQLite's worker thread runs the chunk before (binding a rebuild's rows was
/// about a quarter of the projector's own thread, `perf` of `ledger bench --parts projection`).
pub(crate) async fn write_rows(
    conn: &mut sqlx::SqliteConnection,
    statement: &'static str,
    columns: usize,
    rows: Vec<Vec<Value>>,
) -> Result<(), ProjectionError> {
    let max = (MAX_VARIABLES / columns).min(MAX_ROWS_PER_STATEMENT);
    let max = 1 << max.ilog2();
    let total = rows.len();
    let mut rows = rows.into_iter();
    let mut sizes = chunk_sizes(total, max);
    let mut next = sizes
        .next()
        .map(|size| bound_chunk(statement, size, &mut rows))
        .transpose()?;
    while let Some((sql, arguments)) = next.take() {
        let running = sqlx::query_with(&sql, arguments).execute(&mut *conn);
        // `join!` polls the statement first, which hands it to the worker thread; the next
        // chunk is bound while it runs.
        let (done, following) = futures::join!(running, async {
            sizes
                .next()
                .map(|size| bound_chunk(statement, size, &mut rows))
                .transpose()
        });
        done.map_err(db_error)?;
        next = following?;
    }
    Ok(())
}

/// The multi-row form of `statement` for the next `size` of `rows`, with their values bound.
fn bound_chunk(
    statement: &'static str,
    size: usize,
    rows: &mut impl Iterator<Item = Vec<Value>>,
) -> Result<(std::sync::Arc<str>, SqliteArguments<'static>), ProjectionError> {
    let mut arguments = SqliteArguments::default();
    for row in rows.take(size) {
        for v in row {
            let added = match v {
                Value::I64(v) => arguments.add(v),
                Value::Text(v) => arguments.add(v),
                Value::Bool(v) => arguments.add(v),
                Value::Time(v) => arguments.add(v),
            };
            added.map_err(|e| db_error(sqlx::Error::Encode(e)))?;
        }
    }
    Ok((expanded(statement, size), arguments))
}

struct SqliteSession {
    tx: Transaction<'static, Sqlite>,
}

#[async_trait::async_trait]
impl Session for SqliteSession {
    async fn checkpoint(&mut self, projector: &str) -> Result<Option<i64>, ProjectionError> {
        sqlx::query(CHECKPOINT_ENSURE)
            .bind(projector)
            .bind(Utc::now())
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        sqlx::query_scalar(CHECKPOINT_SELECT)
            .bind(projector)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_error)
    }

    async fn skipped(
        &mut self,
        projector: &str,
        from: i64,
        to: i64,
    ) -> Result<HashSet<i64>, ProjectionError> {
        let rows: Vec<i64> = sqlx::query_scalar(SKIPPED_EVENT_SELECT)
            .bind(projector)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().collect())
    }

    async fn load(&mut self, what: Load, ids: &[i64]) -> Result<Vec<Vec<Value>>, ProjectionError> {
        let (sql, columns) = load_statement(what);
        let rows = sqlx::query(sql)
            .bind(json_ids(ids))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_error)?;
        rows.iter().map(|r| read(r, columns)).collect()
    }

    async fn tracking(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<(Vec<(i64, String, String)>, i64), ProjectionError> {
        let json = serde_json::to_string(pairs).expect("pairs serialise");
        let existing: Vec<(i64, String, String)> = sqlx::query_as(DONATION_TRACKING_SELECT)
            .bind(json)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_error)?;
        let max: i64 = sqlx::query_scalar(DONATION_TRACKING_MAX_ID)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok((existing, max))
    }

    async fn write(&mut self, what: Write, rows: Vec<Vec<Value>>) -> Result<(), ProjectionError> {
        let (sql, columns) = write_statement(what);
        write_rows(&mut self.tx, sql, columns.len(), rows).await
    }

    async fn delete_reasons(
        &mut self,
        table: ReasonTable,
        ids: &[i64],
    ) -> Result<(), ProjectionError> {
        let sql = match table {
            ReasonTable::Donation => MODERATION_REASON_DELETE,
            ReasonTable::Membership => MEMBERSHIP_REASON_DELETE,
        };
        sqlx::query(sql)
            .bind(json_ids(ids))
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn set_checkpoint(
        &mut self,
        projector: &str,
        position: i64,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        sqlx::query(CHECKPOINT_ADVANCE)
            .bind(position)
            .bind(at)
            .bind(projector)
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), ProjectionError> {
        self.tx.commit().await.map_err(db_error)
    }
}

/// Drops every explicitly created, non-unique index and returns the statements that recreate
/// them (indexes behind PRIMARY KEY and UNIQUE constraints have no SQL and stay).
async fn drop_secondary_indexes(pool: &SqlitePool) -> Result<Vec<String>, ProjectionError> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master \
         WHERE type = 'index' AND sql IS NOT NULL AND upper(sql) NOT LIKE 'CREATE UNIQUE%' \
         ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .execute(pool)
            .await
            .map_err(db_error)?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// Replaces every table of the live file at `pool` with the tables of the rebuilt file at
/// `rebuilt`, in one write transaction: readers keep their snapshot of the old
/// rows until it commits and then see the new ones. (A file rename is not safe: another
/// process may hold the live file's WAL and shared-memory files.)
async fn swap_in(pool: &SqlitePool, rebuilt: &std::path::Path) -> Result<(), ProjectionError> {
    let mut conn = pool.acquire().await.map_err(db_error)?;
    sqlx::query("ATTACH DATABASE ?1 AS rebuilt")
        .bind(rebuilt.to_string_lossy().into_owned())
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let result = async {
        // The first statement is a write: the write lock is taken before anything is read.
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(db_error)?;
        for layout in rows::TABLES.iter().rev() {
            sqlx::query(&format!("DELETE FROM main.{}", layout.name))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        for layout in rows::TABLES {
            let columns: Vec<&str> = layout.columns.iter().map(|(c, _)| *c).collect();
            let columns = columns.join(", ");
            let all = full_columns(layout.name);
            let list = all.as_deref().unwrap_or(&columns);
            sqlx::query(&format!(
                "INSERT INTO main.{t} ({list}) SELECT {list} FROM rebuilt.{t}",
                t = layout.name
            ))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
    .await;
    sqlx::query("DETACH DATABASE rebuilt")
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    result
}

/// Tables whose layout lists fewer columns than the table has (only what the projector
/// binds); the swap copies every column of them.
fn full_columns(table: &str) -> Option<String> {
    match table {
        "projector_checkpoint" => Some("projector, position, updated_at".into()),
        _ => None,
    }
}

const CANDIDATES: &str = include_str!("../../projections/sqlite/scrub_candidates.sql");
const STALE_MODERATION: &str = include_str!("../../projections/sqlite/scrub_stale_moderation.sql");
const MEMBERSHIP_CANDIDATES: &str =
    include_str!("../../projections/sqlite/membership_scrub_candidates.sql");
const ADDRESS_CHANGE_CANDIDATES: &str =
    include_str!("../../projections/sqlite/address_change_scrub_candidates.sql");
const SUBSCRIPTION_CANDIDATES: &str =
    include_str!("../../projections/sqlite/subscription_scrub_candidates.sql");

/// Whether `url` names an SQLite read model.
pub(crate) fn accepts(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Classifies an SQLite error by its primary result code (the low byte of an extended code):
/// BUSY (5) and LOCKED (6) are transient; TOOBIG (18), CONSTRAINT (19), MISMATCH (20) and
/// RANGE (25) are the data's doing. `None` for another driver's error.
pub(crate) fn classify_database(db: &dyn sqlx::error::DatabaseError) -> Option<DbFailure> {
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let code = db.code().unwrap_or_default();
    Some(match code.parse::<i32>().map(|c| c & 0xff) {
        Ok(5 | 6) => DbFailure::Transient,
        Ok(18 | 19 | 20 | 25) => DbFailure::Data,
        _ => DbFailure::Other,
    })
}

/// The file of a `sqlite://` URL (without its query options).
fn path_of(url: &str) -> PathBuf {
    let rest = url.strip_prefix("sqlite:").unwrap_or(url);
    let path = rest.trim_start_matches("//");
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// An SQLite read model: a file (with its WAL) and a pool on it.
pub(crate) struct SqliteBackend {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteBackend {
    /// Opens `sqlite://path`, creating the file if needed.
    pub(crate) async fn connect(url: &str) -> Result<Self, ProjectionError> {
        Ok(Self {
            pool: connect(url).await?,
            path: path_of(url),
        })
    }

    /// Opens `sqlite://path` (created if missing) with the settings of a scratch database
    /// (see [`connect_scratch`]).
    pub(crate) async fn connect_scratch(url: &str) -> Result<Self, ProjectionError> {
        let path = path_of(url);
        Ok(Self {
            pool: connect_scratch(&path).await?,
            path,
        })
    }

    /// The pool, for tools in this crate that write a SQLite read model directly.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The file of a scratch database of `kind` beside this one.
    fn scratch_path(&self, kind: Scratch) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        match kind {
            Scratch::Rebuild => name.push(".rebuild"),
            Scratch::Verify => name.push(format!(".verify-{}", std::process::id())),
        }
        PathBuf::from(name)
    }

    /// The scratch `other` as one of ours.
    fn ours(other: &dyn Backend) -> Result<&Self, ProjectionError> {
        other
            .as_any()
            .downcast_ref::<Self>()
            .ok_or_else(|| ProjectionError::Rebuild("a scratch of another dialect".into()))
    }
}

/// Removes an SQLite file with its WAL and shared-memory files (missing ones are fine).
pub(crate) fn remove_files(path: &Path) -> Result<(), ProjectionError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ProjectionError::Rebuild(format!(
                    "cannot remove {}: {e}",
                    path.display()
                )))
            }
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn flavor(&self) -> &'static dyn SqlFlavor {
        &SqliteFlavor
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn migrate(&self) -> Result<(), ProjectionError> {
        migrate(&self.pool).await
    }

    async fn close(&self) {
        self.pool.close().await
    }

    async fn begin(&self) -> Result<Box<dyn Session>, ProjectionError> {
        begin(&self.pool).await
    }

    /// SQLite takes the snapshot at the first read (WAL readers are isolated).
    async fn snapshot(&self) -> Result<Box<dyn ReadTx>, ProjectionError> {
        let tx = self.pool.begin().await.map_err(db_error)?;
        Ok(Box::new(SqliteReadTx { tx }))
    }

    async fn execute(&self, sql: &str, binds: &[Value]) -> Result<u64, sqlx::Error> {
        let q = bind_values!(sqlx::query(sql), binds);
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    async fn fetch(
        &self,
        sql: &str,
        binds: &[Value],
        columns: &[(&str, ColType)],
    ) -> Result<Vec<Vec<Value>>, ProjectionError> {
        let q = bind_values!(sqlx::query(sql), binds);
        let rows = q.fetch_all(&self.pool).await.map_err(db_error)?;
        rows.iter().map(|r| read(r, columns)).collect()
    }

    async fn drop_secondary_indexes(&self) -> Result<Vec<String>, ProjectionError> {
        drop_secondary_indexes(&self.pool).await
    }

    fn statement(&self, which: Statement) -> &'static str {
        match which {
            Statement::SkippedEventInsert => SKIPPED_EVENT_INSERT,
            Statement::ScrubCandidates => CANDIDATES,
            Statement::ScrubStaleModeration => STALE_MODERATION,
            Statement::MembershipScrubCandidates => MEMBERSHIP_CANDIDATES,
            Statement::AddressChangeScrubCandidates => ADDRESS_CHANGE_CANDIDATES,
            Statement::SubscriptionScrubCandidates => SUBSCRIPTION_CANDIDATES,
        }
    }

    /// Moves the zeroed pages (the connection runs with `secure_delete`) into the file and
    /// empties the WAL.
    async fn purge_residue(&self) -> Result<(), ProjectionError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// `<file>.rebuild` or `<file>.verify-<pid>`, opened by [`connect_scratch`].
    async fn scratch(&self, kind: Scratch) -> Result<Box<dyn Backend>, ProjectionError> {
        let path = self.scratch_path(kind);
        remove_files(&path)?;
        match connect_scratch(&path).await {
            Ok(pool) => Ok(Box::new(Self { pool, path })),
            Err(e) => {
                let _ = remove_files(&path);
                Err(e)
            }
        }
    }

    async fn remove_scratch(&self, scratch: &dyn Backend) -> Result<(), ProjectionError> {
        remove_files(&Self::ours(scratch)?.path)
    }

    async fn switch_in(&self, fresh: &dyn Backend) -> Result<(), ProjectionError> {
        let fresh = Self::ours(fresh)?;
        swap_in(&self.pool, &fresh.path).await?;
        remove_files(&fresh.path)
    }
}

/// SQLite's spellings: `?n` parameters, no casts (the driver reads each declared type),
/// text keys already in byte order (`BINARY` collation), `json_array` rows.
pub(crate) struct SqliteFlavor;

impl SqlFlavor for SqliteFlavor {
    fn param(&self, n: usize) -> String {
        format!("?{n}")
    }

    fn typed(&self, column: &str, _: ColType) -> String {
        column.to_owned()
    }

    fn byte_ordered(&self, column: &str, _: ColType) -> String {
        column.to_owned()
    }

    fn view_definition_sql(&self) -> &'static str {
        "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?1"
    }

    // Ordered by a subquery, not by `group_concat(… ORDER BY …)`, which copies every row
    // into a sorter and doubles the cost although the key index already gives the order.
    // SQLite keeps a FROM-subquery's ORDER BY when the outer query aggregates with
    // anything but count/min/max (its `SQLITE_OmitOrderBy` rule 4); a misordered page
    // would still only show as differences, never hide one.
    fn page_text(&self, columns: &str, from_where: &str, order: &str) -> String {
        format!(
            "SELECT count(*), group_concat(row_text, char(10)) FROM \
             (SELECT json_array({columns}) AS row_text FROM {from_where} ORDER BY {order})"
        )
    }
}

/// A read transaction: WAL readers see the state of their first read until they end.
struct SqliteReadTx {
    tx: Transaction<'static, Sqlite>,
}

#[async_trait::async_trait]
impl ReadTx for SqliteReadTx {
    fn flavor(&self) -> &'static dyn SqlFlavor {
        &SqliteFlavor
    }

    async fn fetch(
        &mut self,
        sql: &str,
        binds: &[Value],
        columns: &[(&str, ColType)],
    ) -> Result<Vec<Vec<Value>>, ProjectionError> {
        let q = bind_values!(sqlx::query(sql), binds);
        let rows = q.fetch_all(&mut *self.tx).await.map_err(db_error)?;
        rows.iter().map(|r| read(r, columns)).collect()
    }

    async fn finish(self: Box<Self>) -> Result<(), ProjectionError> {
        self.tx.rollback().await.map_err(db_error)
    }
}
