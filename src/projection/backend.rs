//! The read-model interface: the error type, and the traits every read-model backend
//! implements, as the event log has `store/mod.rs`:
//!
//! * [`Backend`] — a read model's connection: migrations, checkpoints, dumps, deferred index
//!   builds, operators' skips, scrub selection, scratch databases and a rebuild's switch;
//! * [`Session`] — one write transaction of a projector batch (load rows, write rows, move
//!   the checkpoint, commit);
//! * [`ReadTx`] — a read-only snapshot, which `verify` compares page by page;
//! * [`SqlFlavor`] — the few spellings (bind parameters, casts, byte order, JSON rows) the
//!   dialect-neutral query builders need.
//!
//! Each backend implements all four in one file (`sqlite.rs`, `postgres.rs`, `mariadb.rs`), with its
//! migrations in `migrations/<dialect>/readmodel` and its statements in
//! `projections/<dialect>/`. Adding one means: that file, its SQL, one arm in
//! `ReadModel::connect_with_schema`, a [`Dialect`] variant, and one line in the read-model
//! conformance suite (`read_model_backends!` in `tests/projection_support`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::rows::{ColType, Value};
use super::{mariadb, postgres, sqlite};
use crate::store::{Position, StoreError};

/// Errors of the projection layer.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The read-model database failed. `transient` failures (connection lost, server shutting
    /// down, lock contention) are retried; a `data` failure (a value the column cannot hold,
    /// a constraint) is the batch's events' doing, and the projector narrows it down to the
    /// one event and quarantines it; others stop the projector.
    #[error("read-model database error (transient: {transient}, data: {data}): {source}")]
    Database {
        /// Whether retrying may succeed.
        transient: bool,
        /// Whether a value of the batch caused it (SQLSTATE classes 22 and 23, SQLite
        /// CONSTRAINT, TOOBIG, MISMATCH, RANGE, MariaDB's 1366).
        data: bool,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The read-model schema could not be brought up to date.
    #[error("read-model migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Reading the event log failed.
    #[error("event log error (transient: {transient}): {source}")]
    Store {
        /// Whether retrying may succeed.
        transient: bool,
        /// The log's error.
        #[source]
        source: StoreError,
    },
    /// An event cannot be applied; the projector stops before it until it is fixed or skipped.
    #[error(
        "projector `{projector}` stopped at position {position} (stream `{stream}`, event type \
         `{event_type}`): {reason}"
    )]
    EventRejected {
        /// The projector.
        projector: String,
        /// The event's position.
        position: Position,
        /// The event's stream.
        stream: String,
        /// The event's stored type name.
        event_type: String,
        /// Why it cannot be applied.
        reason: String,
    },
    /// The read-model URL is not usable.
    #[error("invalid read-model URL: {0}")]
    InvalidUrl(String),
    /// An operator's skip was refused.
    #[error("cannot skip position {position}: {reason}")]
    SkipRefused {
        /// The position asked for.
        position: Position,
        /// Why not.
        reason: String,
    },
    /// The key store failed while unsealing personal data (a database failure is transient;
    /// a ciphertext that does not authenticate is not).
    #[error("unsealing personal data failed")]
    Privacy(#[from] crate::privacy::PrivacyError),
    /// A rebuild could not prepare or switch its tables.
    #[error("rebuild failed: {0}")]
    Rebuild(String),
    /// A transient failure persisted through every retry.
    #[error("gave up after {attempts} attempts")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<ProjectionError>,
    },
}

impl ProjectionError {
    /// Whether a value the batch wrote was refused by the database.
    pub fn is_data(&self) -> bool {
        matches!(self, Self::Database { data: true, .. })
    }

    /// Whether retrying the same step may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database { transient, .. } | Self::Store { transient, .. } => *transient,
            Self::Privacy(crate::privacy::PrivacyError::Database(e)) => is_transient(e),
            _ => false,
        }
    }
}

/// What a driver error means for the projector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFailure {
    /// Retrying may succeed (connection lost, server shutting down, lock contention).
    Transient,
    /// A value the batch wrote was refused (out of range, NUL in text, a constraint).
    Data,
    /// Anything else (a missing table, permissions): an operator must look.
    Other,
}

/// Classifies a driver error by error kind and, per dialect, by SQLSTATE or SQLite result
/// code, never by message text. Each dialect's file classifies only its own driver's errors
/// (it checks the error's type), so a PostgreSQL SQLSTATE is never taken for a SQLite code
/// (`22021 & 0xff` is SQLite's BUSY).
pub fn classify(e: &sqlx::Error) -> DbFailure {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => DbFailure::Transient,
        sqlx::Error::Encode(_) => DbFailure::Data,
        sqlx::Error::Database(db) => postgres::classify_database(db.as_ref())
            .or_else(|| sqlite::classify_database(db.as_ref()))
            .or_else(|| mariadb::classify_database(db.as_ref()))
            .unwrap_or(DbFailure::Other),
        _ => DbFailure::Other,
    }
}

/// Whether a driver error is worth retrying.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    classify(e) == DbFailure::Transient
}

/// Classifies a read-model driver error where it happens.
pub(crate) fn db_error(source: sqlx::Error) -> ProjectionError {
    let failure = classify(&source);
    ProjectionError::Database {
        transient: failure == DbFailure::Transient,
        data: failure == DbFailure::Data,
        source,
    }
}

/// Classifies an event-log error met while projecting.
pub(crate) fn store_error(source: StoreError) -> ProjectionError {
    let transient = match &source {
        StoreError::Database(e) => is_transient(e),
        other => other.is_transient(),
    };
    ProjectionError::Store { transient, source }
}

/// Which SQL dialect a read model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL schema.
    Postgres,
    /// A MariaDB (or MySQL) database.
    MariaDb,
}

/// Which scratch database a backend opens beside its live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scratch {
    /// The fresh tables a rebuild fills and then switches in.
    Rebuild,
    /// The tables a `verify` run rebuilds and compares, then removes.
    Verify,
}

/// The statements of `projections/<dialect>/` that dialect-neutral code runs through
/// [`Backend::execute`] and [`Backend::fetch`] (a batch's statements are the [`Session`]'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Statement {
    /// `skipped_event_insert.sql`: binds projector, position, stream, event type, reason,
    /// skipped by, time.
    SkippedEventInsert,
    /// `scrub_candidates.sql`: binds the cutoff time of abandoned donations and the limit;
    /// returns `(donation id, created at, rule)`.
    ScrubCandidates,
    /// `scrub_stale_moderation.sql`: binds the cutoff time and the limit; returns what
    /// [`Statement::ScrubCandidates`] does.
    ScrubStaleModeration,
    /// `membership_scrub_candidates.sql`: binds the cutoff time of the grace period and the
    /// limit; returns `(membership id, created at, rule)`.
    MembershipScrubCandidates,
    /// `address_change_scrub_candidates.sql`: binds the cutoff time of the grace period and
    /// the limit; returns `(address change id, modified at, rule)`.
    AddressChangeScrubCandidates,
    /// `subscription_scrub_candidates.sql`: binds the cutoff time of the grace period and the
    /// limit; returns `(subscription id, created at, rule)`.
    SubscriptionScrubCandidates,
}

/// A read model's connection, in one dialect.
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// The dialect.
    fn dialect(&self) -> Dialect;
    /// Where it lives, for logs; never a user name or password.
    fn location(&self) -> String;
    /// Its SQL spellings.
    fn flavor(&self) -> &'static dyn SqlFlavor;
    /// For [`Backend::switch_in`] and [`Backend::remove_scratch`], which need the concrete
    /// scratch of their own dialect.
    fn as_any(&self) -> &dyn std::any::Any;
    /// Creates or updates the tables (embedded migrations).
    async fn migrate(&self) -> Result<(), ProjectionError>;
    /// Closes the pool.
    async fn close(&self);
    /// Starts a projector batch's write transaction.
    async fn begin(&self) -> Result<Box<dyn Session>, ProjectionError>;
    /// Opens a read-only snapshot.
    async fn snapshot(&self) -> Result<Box<dyn ReadTx>, ProjectionError>;
    /// Runs one statement with `binds` (in [`SqlFlavor::param`] order); rows affected. The
    /// driver's error is returned as is, so a caller can tell a unique violation.
    async fn execute(&self, sql: &str, binds: &[Value]) -> Result<u64, sqlx::Error>;
    /// Runs one query with `binds` and reads `columns` of every row.
    async fn fetch(
        &self,
        sql: &str,
        binds: &[Value],
        columns: &[(&str, ColType)],
    ) -> Result<Vec<Vec<Value>>, ProjectionError>;
    /// Drops the secondary indexes (not those behind a primary key or unique constraint,
    /// which upserts need) and returns the statements that recreate them.
    async fn drop_secondary_indexes(&self) -> Result<Vec<String>, ProjectionError>;
    /// One of the named statements of `projections/<dialect>/`.
    fn statement(&self, which: Statement) -> &'static str;
    /// Removes what blanked rows leave behind (free pages, old row versions).
    async fn purge_residue(&self) -> Result<(), ProjectionError>;
    /// Creates an empty scratch database of `kind` beside this one (a leftover of an earlier
    /// run is removed first), opened for speed: nothing reads it while it is filled and a
    /// crash discards it.
    async fn scratch(&self, kind: Scratch) -> Result<Box<dyn Backend>, ProjectionError>;
    /// Removes a scratch database this backend created; `scratch` is closed already.
    async fn remove_scratch(&self, scratch: &dyn Backend) -> Result<(), ProjectionError>;
    /// Replaces the live tables with those of `fresh` (a closed [`Scratch::Rebuild`] of this
    /// backend) atomically, and removes `fresh`.
    async fn switch_in(&self, fresh: &dyn Backend) -> Result<(), ProjectionError>;
}

/// A read-only snapshot: every query through it sees the same committed state.
#[async_trait::async_trait]
pub(crate) trait ReadTx: Send {
    /// Its SQL spellings.
    fn flavor(&self) -> &'static dyn SqlFlavor;
    /// Runs one query with `binds` and reads `columns` of every row.
    async fn fetch(
        &mut self,
        sql: &str,
        binds: &[Value],
        columns: &[(&str, ColType)],
    ) -> Result<Vec<Vec<Value>>, ProjectionError>;
    /// Ends the snapshot.
    async fn finish(self: Box<Self>) -> Result<(), ProjectionError>;
}

/// The spellings in which dialects differ where the query builders (verify's keyset pages,
/// checkpoints, skips) are otherwise dialect-neutral.
pub(crate) trait SqlFlavor: Send + Sync {
    /// The `n`-th bind parameter, from 1.
    fn param(&self, n: usize) -> String;
    /// `column` read back as its layout type `t` (a cast where the engine's type differs).
    fn typed(&self, column: &str, t: ColType) -> String;
    /// The query of a view's stored definition, binding the view's name: one text column, no
    /// row or NULL when there is no such view.
    fn view_definition_sql(&self) -> &'static str;
    /// `column` as a key that sorts text in byte order.
    fn byte_ordered(&self, column: &str, t: ColType) -> String;
    /// One row of `count(*)` and the JSON arrays of `columns` of the rows `from_where` (a table
    /// and its conditions) selects, one per line in `order`.
    fn page_text(&self, columns: &str, from_where: &str, order: &str) -> String;
}

/// The row sets a `Session` loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    Donation,
    Payment,
    ContributionTracking,
    ModerationReason,
    Membership,
    MembershipModerationReason,
    AddressChange,
    Subscription,
}

/// The statements a `Session` writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    DonationTracking,
    Donation,
    Payment,
    ModerationReason,
    DonationEvent,
    ContributionTracking,
    Conflict,
    Membership,
    MembershipModerationReason,
    AddressChange,
    Subscription,
    MembershipEvent,
    AddressChangeEvent,
    /// CiviShare's status mirror (`civishare::mirror`) writes these three, not the projector.
    CivishareOutgoing,
    CivishareIncoming,
    CivishareStatusCheckpoint,
}

/// A table of open moderation reasons: each context has its own, with the same columns
/// (owner id, identifier, source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReasonTable {
    /// `donation_moderation_reason`.
    Donation,
    /// `membership_moderation_reason`.
    Membership,
}

impl ReasonTable {
    /// The table's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Donation => "donation_moderation_reason",
            Self::Membership => "membership_moderation_reason",
        }
    }

    /// The load of its rows.
    pub(crate) fn load(self) -> Load {
        match self {
            Self::Donation => Load::ModerationReason,
            Self::Membership => Load::MembershipModerationReason,
        }
    }

    /// The write of its rows.
    pub(crate) fn write(self) -> Write {
        match self {
            Self::Donation => Write::ModerationReason,
            Self::Membership => Write::MembershipModerationReason,
        }
    }
}

/// One read-model transaction, in one dialect.
#[async_trait::async_trait]
pub(crate) trait Session: Send {
    /// The projector's checkpoint (creating its row), locked until commit.
    async fn checkpoint(&mut self, projector: &str) -> Result<Option<i64>, ProjectionError>;
    /// Positions an operator skipped, between `from` and `to` inclusive.
    async fn skipped(
        &mut self,
        projector: &str,
        from: i64,
        to: i64,
    ) -> Result<HashSet<i64>, ProjectionError>;
    /// Rows of `what` whose key is one of `ids`, as values in layout order.
    async fn load(&mut self, what: Load, ids: &[i64]) -> Result<Vec<Vec<Value>>, ProjectionError>;
    /// Existing `donation_tracking` rows of `pairs`, and the highest id.
    async fn tracking(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<(Vec<(i64, String, String)>, i64), ProjectionError>;
    /// Writes rows with one of the projection statements (multi-row).
    /// Writes `rows` (taken by value: a driver binds their text without copying it again).
    async fn write(&mut self, what: Write, rows: Vec<Vec<Value>>) -> Result<(), ProjectionError>;
    /// Inserts rows known to be absent from their table (what a write-back projector writes
    /// for the first time into its fresh tables, and the change log), the fastest way the
    /// dialect has. By default the same as [`Session::write`].
    async fn insert_new(
        &mut self,
        what: Write,
        rows: Vec<Vec<Value>>,
    ) -> Result<(), ProjectionError> {
        self.write(what, rows).await
    }
    /// Deletes the rows of `table` whose owner (donation or membership) is one of `ids`.
    async fn delete_reasons(
        &mut self,
        table: ReasonTable,
        ids: &[i64],
    ) -> Result<(), ProjectionError>;
    /// Stores the checkpoint.
    async fn set_checkpoint(
        &mut self,
        projector: &str,
        position: i64,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError>;
    /// Commits the transaction.
    async fn commit(self: Box<Self>) -> Result<(), ProjectionError>;
}
