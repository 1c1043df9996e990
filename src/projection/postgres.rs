//! The PostgreSQL read-model backend, all of it: statements from `projections/postgres/`, one
//! `INSERT ... SELECT FROM UNNEST(arrays) ON CONFLICT` per table and batch (`COPY` for rows a
//! rebuild writes first), tables in a schema of their own so a rebuild can fill a fresh schema
//! and rename it into place, `REPEATABLE READ` snapshots for verify.
//!
//! Over 600 lines, one concern: the read-model interface (`backend.rs`) for one dialect, kept
//! in one file so that a dialect is one file (issue 17).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::backend::{
    db_error, Backend, DbFailure, Dialect, Load, ProjectionError, ReadTx, ReasonTable, Scratch,
    Session, SqlFlavor, Statement, Write,
};
use super::rows::{self, bind_values, ColType, Value};

const DONATION_SELECT: &str = include_str!("../../projections/postgres/donation_select.sql");
const PAYMENT_SELECT: &str = include_str!("../../projections/postgres/payment_select.sql");
const CONTRIBUTION_TRACKING_SELECT: &str =
    include_str!("../../projections/postgres/contribution_tracking_select.sql");
const MODERATION_REASON_SELECT: &str =
    include_str!("../../projections/postgres/moderation_reason_select.sql");
const MODERATION_REASON_DELETE: &str =
    include_str!("../../projections/postgres/moderation_reason_delete.sql");
const MEMBERSHIP_SELECT: &str = include_str!("../../projections/postgres/membership_select.sql");
const ADDRESS_CHANGE_SELECT: &str =
    include_str!("../../projections/postgres/address_change_select.sql");
const CIVISHARE_OUTGOING_UPSERT: &str =
    include_str!("../../projections/postgres/civishare_outgoing_upsert.sql");
const CIVISHARE_INCOMING_UPSERT: &str =
    include_str!("../../projections/postgres/civishare_incoming_upsert.sql");
const CIVISHARE_STATUS_CHECKPOINT_UPSERT: &str =
    include_str!("../../projections/postgres/civishare_status_checkpoint_upsert.sql");
const ADDRESS_CHANGE_UPSERT: &str =
    include_str!("../../projections/postgres/address_change_upsert.sql");
const SUBSCRIPTION_SELECT: &str =
    include_str!("../../projections/postgres/subscription_select.sql");
const SUBSCRIPTION_UPSERT: &str =
    include_str!("../../projections/postgres/subscription_upsert.sql");
const MEMBERSHIP_UPSERT: &str = include_str!("../../projections/postgres/membership_upsert.sql");
const MEMBERSHIP_REASON_SELECT: &str =
    include_str!("../../projections/postgres/membership_moderation_reason_select.sql");
const MEMBERSHIP_REASON_DELETE: &str =
    include_str!("../../projections/postgres/membership_moderation_reason_delete.sql");
const MEMBERSHIP_REASON_INSERT: &str =
    include_str!("../../projections/postgres/membership_moderation_reason_insert.sql");
const DONATION_TRACKING_SELECT: &str =
    include_str!("../../projections/postgres/donation_tracking_select.sql");
const DONATION_TRACKING_MAX_ID: &str =
    include_str!("../../projections/postgres/donation_tracking_max_id.sql");
pub(crate) const DONATION_UPSERT: &str =
    include_str!("../../projections/postgres/donation_upsert.sql");
pub(crate) const PAYMENT_UPSERT: &str =
    include_str!("../../projections/postgres/payment_upsert.sql");
pub(crate) const CONTRIBUTION_TRACKING_UPSERT: &str =
    include_str!("../../projections/postgres/contribution_tracking_upsert.sql");
const CONFLICT_INSERT: &str =
    include_str!("../../projections/postgres/contribution_tracking_conflict_insert.sql");
const DONATION_EVENT_INSERT: &str =
    include_str!("../../projections/postgres/donation_event_insert.sql");
const MEMBERSHIP_EVENT_INSERT: &str =
    include_str!("../../projections/postgres/membership_event_insert.sql");
const ADDRESS_CHANGE_EVENT_INSERT: &str =
    include_str!("../../projections/postgres/address_change_event_insert.sql");
const DONATION_TRACKING_INSERT: &str =
    include_str!("../../projections/postgres/donation_tracking_insert.sql");
const MODERATION_REASON_INSERT: &str =
    include_str!("../../projections/postgres/moderation_reason_insert.sql");
const CHECKPOINT_ENSURE: &str = include_str!("../../projections/postgres/checkpoint_ensure.sql");
const CHECKPOINT_SELECT: &str = include_str!("../../projections/postgres/checkpoint_select.sql");
const CHECKPOINT_ADVANCE: &str = include_str!("../../projections/postgres/checkpoint_advance.sql");
const SKIPPED_EVENT_INSERT: &str =
    include_str!("../../projections/postgres/skipped_event_insert.sql");
const SKIPPED_EVENT_SELECT: &str =
    include_str!("../../projections/postgres/skipped_event_select.sql");

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

/// Checks a schema name (it is spliced into DDL): lower-case letters, digits, underscores.
fn check_schema(schema: &str) -> Result<(), ProjectionError> {
    let ok = !schema.is_empty()
        && schema.len() <= 48
        && schema.starts_with(|c: char| c.is_ascii_lowercase())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ProjectionError::InvalidUrl(format!(
            "schema name {schema:?} must be lower-case letters, digits and underscores"
        )))
    }
}

/// A lazily connecting pool whose connections resolve names in `schema`.
fn connect(url: &str, schema: &str) -> Result<PgPool, ProjectionError> {
    check_schema(schema)?;
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| ProjectionError::InvalidUrl(e.to_string()))?
        .options([("search_path", schema)]);
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options))
}

/// `host:port/database (schema …)` of a read-model URL, for logs: no user, no password. A URL
/// that does not parse is reported as such, never repeated.
fn location(url: &str, schema: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => {
            let host = match o.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => format!("{}:{}", o.get_host(), o.get_port()),
            };
            format!(
                "{host}/{} (schema {schema})",
                o.get_database().unwrap_or_default()
            )
        }
        Err(_) => "an unparsable PostgreSQL URL".to_owned(),
    }
}

/// Like [`connect`], for the fresh schema a rebuild fills: nothing reads it before the switch
/// and a crash discards it, so its commits do not wait for the WAL flush
/// (`synchronous_commit = off`; the switch itself commits durably on an ordinary connection).
fn connect_scratch(url: &str, schema: &str) -> Result<PgPool, ProjectionError> {
    check_schema(schema)?;
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| ProjectionError::InvalidUrl(e.to_string()))?
        .options([("search_path", schema), ("synchronous_commit", "off")]);
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options))
}

/// Creates the schema if needed and brings it up to date.
async fn migrate(pool: &PgPool, schema: &str) -> Result<(), ProjectionError> {
    check_schema(schema)?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(pool)
        .await
        .map_err(db_error)?;
    sqlx::migrate!("./migrations/postgres/readmodel")
        .run(pool)
        .await?;
    Ok(())
}

/// Starts a batch transaction.
async fn begin(pool: &PgPool) -> Result<Box<dyn Session>, ProjectionError> {
    let tx = pool.begin().await.map_err(db_error)?;
    Ok(Box::new(PgSession { tx }))
}

/// Reads a row into values of `columns`' types.
pub(crate) fn read(
    row: &PgRow,
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

/// Binds `rows` column by column as arrays (the `$n::TYPE[]` parameters of the statement);
/// text is encoded straight from the rows, not copied first.
pub(crate) fn bind_columns<'q>(
    mut q: sqlx::query::Query<'q, Postgres, PgArguments>,
    columns: &[(&str, ColType)],
    rows: &'q [Vec<Value>],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    for (i, (_, t)) in columns.iter().enumerate() {
        q = match t {
            ColType::I64 => q.bind(rows.iter().map(|r| r[i].as_i64()).collect::<Vec<_>>()),
            ColType::Text => q.bind(rows.iter().map(|r| r[i].as_text()).collect::<Vec<_>>()),
            ColType::Bool => q.bind(rows.iter().map(|r| r[i].as_bool()).collect::<Vec<_>>()),
            ColType::Time => q.bind(rows.iter().map(|r| r[i].as_time()).collect::<Vec<_>>()),
        };
    }
    q
}

/// Rows per piece of a `COPY` (see [`PgSession::insert_new`]).
const COPY_PIECE_ROWS: usize = 2048;

/// The table each write fills.
fn table_of(what: Write) -> &'static str {
    match what {
        Write::DonationTracking => "donation_tracking",
        Write::Donation => "donation",
        Write::Payment => "payment",
        Write::ModerationReason => "donation_moderation_reason",
        Write::DonationEvent => "donation_event",
        Write::MembershipEvent => "membership_event",
        Write::AddressChangeEvent => "address_change_event",
        Write::ContributionTracking => "contribution_tracking",
        Write::Conflict => "contribution_tracking_conflict",
        Write::Membership => "membership_application",
        Write::MembershipModerationReason => "membership_moderation_reason",
        Write::AddressChange => "address_change",
        Write::CivishareOutgoing => "civishare_outgoing",
        Write::CivishareIncoming => "civishare_incoming",
        Write::CivishareStatusCheckpoint => "civishare_status_checkpoint",
        Write::Subscription => "subscription",
    }
}

/// A time in `COPY`'s text format, as the binary binding would store it: cut to microseconds
/// (a leap second's fraction carries into the next second), years before 1 as BC. Written
/// field by field: chrono's `format` parses its pattern again for every value (the pattern
/// parser was 13 % of the projector's thread).
fn write_time(out: &mut Vec<u8>, at: DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    use std::io::Write as _;
    let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
    let (year, era) = match at.year() {
        y if y >= 1 => (y, ""),
        y => (1 - y, " BC"),
    };
    let _ = write!(
        out,
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00{era}",
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.timestamp_subsec_micros()
    );
}

/// `rows` in `COPY`'s text format: a line per row, columns separated by tabs, `\N` for NULL,
/// and backslash, tab, newline and carriage return escaped inside text. Times go with
/// microseconds (what the column keeps; binding them as arrays drops the rest the same way).
fn copy_text(rows: &[Vec<Value>]) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(rows.len() * 128);
    for row in rows {
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            match value {
                Value::I64(Some(v)) => {
                    let _ = write!(out, "{v}");
                }
                Value::Bool(Some(v)) => out.push(if *v { b't' } else { b'f' }),
                Value::Time(Some(v)) => write_time(&mut out, *v),
                Value::Text(Some(v)) => {
                    for b in v.bytes() {
                        match b {
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            b'\t' => out.extend_from_slice(b"\\t"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            _ => out.push(b),
                        }
                    }
                }
                Value::I64(None) | Value::Bool(None) | Value::Time(None) | Value::Text(None) => {
                    out.extend_from_slice(b"\\N")
                }
            }
        }
        out.push(b'\n');
    }
    out
}

struct PgSession {
    tx: Transaction<'static, Postgres>,
}

#[async_trait::async_trait]
impl Session for PgSession {
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
            .bind(ids)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_error)?;
        rows.iter().map(|r| read(r, columns)).collect()
    }

    async fn tracking(
        &mut self,
        pairs: &[(String, String)],
    ) -> Result<(Vec<(i64, String, String)>, i64), ProjectionError> {
        let campaigns: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
        let keywords: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
        let existing: Vec<(i64, String, String)> = sqlx::query_as(DONATION_TRACKING_SELECT)
            .bind(campaigns)
            .bind(keywords)
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
        if rows.is_empty() {
            return Ok(());
        }
        let (sql, columns) = write_statement(what);
        bind_columns(sqlx::query(sql), columns, &rows)
            .execute(&mut *self.tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// `COPY ... FROM STDIN` in text format: the server parses plain rows instead of
    /// unpacking bound arrays (`UNNEST`) and checking each row for a conflict. Only a
    /// write-back projector calls this, on the pool of a rebuild's fresh schema, which is
    /// dropped with the rebuild if it fails half-way (a `COPY` cut off by a cancelled task would
    /// leave its connection unusable for a pool that lives on).
    async fn insert_new(
        &mut self,
        what: Write,
        rows: Vec<Vec<Value>>,
    ) -> Result<(), ProjectionError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (_, columns) = write_statement(what);
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        let sql = format!("COPY {} ({}) FROM STDIN", table_of(what), names.join(", "));
        let mut copy = self.tx.copy_in_raw(&sql).await.map_err(db_error)?;
        // In pieces: the server parses and inserts one piece while the next is encoded here.
        for piece in rows.chunks(COPY_PIECE_ROWS) {
            if let Err(e) = copy.send(copy_text(piece)).await {
                let _ = copy.abort("sending the rows failed").await;
                return Err(db_error(e));
            }
        }
        copy.finish().await.map_err(db_error)?;
        Ok(())
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
            .bind(ids)
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

/// Drops every index of `schema` that no constraint owns and that is not unique, and returns
/// the statements that recreate them.
async fn drop_secondary_indexes(
    pool: &PgPool,
    schema: &str,
) -> Result<Vec<String>, ProjectionError> {
    check_schema(schema)?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexname::TEXT, i.indexdef::TEXT FROM pg_indexes i \
         WHERE i.schemaname = $1 AND i.indexdef NOT LIKE 'CREATE UNIQUE%' \
         AND NOT EXISTS ( \
             SELECT 1 FROM pg_constraint c \
             JOIN pg_class ci ON ci.oid = c.conindid \
             JOIN pg_namespace n ON n.oid = ci.relnamespace \
             WHERE ci.relname = i.indexname AND n.nspname = i.schemaname) \
         ORDER BY i.indexname",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    for (name, _) in &indexes {
        sqlx::query(&format!(
            "DROP INDEX \"{schema}\".\"{}\"",
            name.replace('"', "\"\"")
        ))
        .execute(pool)
        .await
        .map_err(db_error)?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// Switches `fresh` into the place of `live` in one transaction: the old schema is renamed
/// away and dropped, so cached plans of other sessions re-resolve to the new tables.
async fn swap_schemas(pool: &PgPool, live: &str, fresh: &str) -> Result<(), ProjectionError> {
    check_schema(live)?;
    check_schema(fresh)?;
    let old = format!("{live}_old");
    let mut tx = pool.begin().await.map_err(db_error)?;
    for sql in [
        format!("DROP SCHEMA IF EXISTS {old} CASCADE"),
        format!("ALTER SCHEMA {live} RENAME TO {old}"),
        format!("ALTER SCHEMA {fresh} RENAME TO {live}"),
        format!("DROP SCHEMA {old} CASCADE"),
    ] {
        sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)
}

const CANDIDATES: &str = include_str!("../../projections/postgres/scrub_candidates.sql");
const STALE_MODERATION: &str =
    include_str!("../../projections/postgres/scrub_stale_moderation.sql");
const MEMBERSHIP_CANDIDATES: &str =
    include_str!("../../projections/postgres/membership_scrub_candidates.sql");
const ADDRESS_CHANGE_CANDIDATES: &str =
    include_str!("../../projections/postgres/address_change_scrub_candidates.sql");
const SUBSCRIPTION_CANDIDATES: &str =
    include_str!("../../projections/postgres/subscription_scrub_candidates.sql");

/// Whether `url` names a PostgreSQL read model.
pub(crate) fn accepts(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Classifies a PostgreSQL error by SQLSTATE: connection exceptions (08), insufficient
/// resources (53), operator intervention such as pg_terminate_backend (57P01..57P03),
/// serialization failure and deadlock (40001, 40P01), lock not available (55P03) and a
/// database not accepting connections for maintenance (55000) are transient; data exceptions
/// (22) and integrity constraint violations (23) are the data's doing. `None` for another
/// driver's error.
pub(crate) fn classify_database(db: &dyn sqlx::error::DatabaseError) -> Option<DbFailure> {
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let code = db.code().unwrap_or_default();
    Some(
        if code.starts_with("08")
            || code.starts_with("53")
            || matches!(
                code.as_ref(),
                "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03" | "55000"
            )
        {
            DbFailure::Transient
        } else if code.starts_with("22") || code.starts_with("23") {
            DbFailure::Data
        } else {
            DbFailure::Other
        },
    )
}

/// A PostgreSQL read model: a schema, and a pool whose connections resolve names in it.
pub(crate) struct PostgresBackend {
    pool: PgPool,
    url: String,
    schema: String,
}

impl PostgresBackend {
    /// A lazily connecting backend on `schema` of the database at `url`: this succeeds while
    /// the server is down.
    pub(crate) fn connect(url: &str, schema: &str) -> Result<Self, ProjectionError> {
        Ok(Self {
            pool: connect(url, schema)?,
            url: url.to_owned(),
            schema: schema.to_owned(),
        })
    }

    /// Like [`PostgresBackend::connect`], with the settings of a scratch database (see
    /// [`connect_scratch`]).
    pub(crate) fn connect_scratch(url: &str, schema: &str) -> Result<Self, ProjectionError> {
        Ok(Self {
            pool: connect_scratch(url, schema)?,
            url: url.to_owned(),
            schema: schema.to_owned(),
        })
    }

    /// The schema of a scratch database of `kind` beside this one.
    fn scratch_schema(&self, kind: Scratch) -> String {
        match kind {
            Scratch::Rebuild => format!("{}_new", self.schema),
            Scratch::Verify => format!("{}_verify", self.schema),
        }
    }

    /// The scratch `other` as one of ours.
    fn ours(other: &dyn Backend) -> Result<&Self, ProjectionError> {
        other
            .as_any()
            .downcast_ref::<Self>()
            .ok_or_else(|| ProjectionError::Rebuild("a scratch of another dialect".into()))
    }

    /// Drops `schema` with everything in it.
    async fn drop_schema(&self, schema: &str) -> Result<(), ProjectionError> {
        check_schema(schema)?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for PostgresBackend {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn location(&self) -> String {
        location(&self.url, &self.schema)
    }

    fn flavor(&self) -> &'static dyn SqlFlavor {
        &PostgresFlavor
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn migrate(&self) -> Result<(), ProjectionError> {
        migrate(&self.pool, &self.schema).await
    }

    async fn close(&self) {
        self.pool.close().await
    }

    async fn begin(&self) -> Result<Box<dyn Session>, ProjectionError> {
        begin(&self.pool).await
    }

    /// `REPEATABLE READ, READ ONLY`: every statement sees the snapshot of the first.
    async fn snapshot(&self) -> Result<Box<dyn ReadTx>, ProjectionError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        Ok(Box::new(PgReadTx { tx }))
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
        drop_secondary_indexes(&self.pool, &self.schema).await
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

    /// Vacuums the tables that held personal data.
    async fn purge_residue(&self) -> Result<(), ProjectionError> {
        sqlx::query("VACUUM donation, payment, membership_application, address_change")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Schema `<schema>_new` or `<schema>_verify`, opened by [`connect_scratch`].
    async fn scratch(&self, kind: Scratch) -> Result<Box<dyn Backend>, ProjectionError> {
        let schema = self.scratch_schema(kind);
        self.drop_schema(&schema).await?;
        Ok(Box::new(Self::connect_scratch(&self.url, &schema)?))
    }

    async fn remove_scratch(&self, scratch: &dyn Backend) -> Result<(), ProjectionError> {
        self.drop_schema(&Self::ours(scratch)?.schema).await
    }

    async fn switch_in(&self, fresh: &dyn Backend) -> Result<(), ProjectionError> {
        swap_schemas(&self.pool, &self.schema, &Self::ours(fresh)?.schema).await
    }
}

/// PostgreSQL's spellings: `$n` parameters, casts to the layout's types, text keys in the
/// `"C"` collation (byte order), `json_build_array` rows aggregated in key order.
pub(crate) struct PostgresFlavor;

impl SqlFlavor for PostgresFlavor {
    fn param(&self, n: usize) -> String {
        format!("${n}")
    }

    fn typed(&self, column: &str, t: ColType) -> String {
        match t {
            ColType::I64 => format!("{column}::BIGINT"),
            ColType::Text => format!("{column}::TEXT"),
            ColType::Bool | ColType::Time => column.to_owned(),
        }
    }

    fn view_definition_sql(&self) -> &'static str {
        "SELECT pg_get_viewdef(to_regclass($1))"
    }

    fn byte_ordered(&self, column: &str, t: ColType) -> String {
        match t {
            ColType::Text => format!("{column} COLLATE \"C\""),
            _ => column.to_owned(),
        }
    }

    fn page_text(&self, columns: &str, from_where: &str, order: &str) -> String {
        format!(
            "SELECT count(*), string_agg(json_build_array({columns})::TEXT, chr(10) \
             ORDER BY {order}) FROM {from_where}"
        )
    }
}

/// A `REPEATABLE READ, READ ONLY` transaction.
struct PgReadTx {
    tx: Transaction<'static, Postgres>,
}

#[async_trait::async_trait]
impl ReadTx for PgReadTx {
    fn flavor(&self) -> &'static dyn SqlFlavor {
        &PostgresFlavor
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_names_host_port_database_and_schema_but_no_credentials() {
        let at = super::location(
            "postgres://ledger:hunter2@db.example:6543/funds",
            "readmodel",
        );
        assert_eq!(at, "db.example:6543/funds (schema readmodel)");
        assert!(!super::location("postgres://u:hunter2@[::1", "s").contains("hunter2"));
    }

    #[test]
    fn copy_text_escapes_what_the_format_reserves_and_marks_nulls() {
        let at = DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap();
        let rows = vec![
            vec![
                Value::int(-7),
                Value::text("a\tb\\c\nd\re \\N ü"),
                Value::Bool(Some(true)),
                Value::Time(Some(at)),
            ],
            vec![
                Value::I64(None),
                Value::Text(None),
                Value::Bool(Some(false)),
                Value::Time(None),
            ],
        ];
        assert_eq!(
            String::from_utf8(copy_text(&rows)).unwrap(),
            "-7\ta\\tb\\\\c\\nd\\re \\\\N ü\tt\t2026-01-01 00:00:00.123456+00\n\
             \\N\t\\N\tf\t\\N\n"
        );
        // Every field zero-padded; what chrono itself renders for the same instant.
        let at = DateTime::from_timestamp(1_772_600_767, 8_000).unwrap();
        assert_eq!(
            String::from_utf8(copy_text(&[vec![Value::Time(Some(at))]])).unwrap(),
            format!("{}\n", at.format("%Y-%m-%d %H:%M:%S%.6f+00"))
        );
        assert_eq!(at.format("%m-%d %H").to_string(), "03-04 05");
    }

    #[test]
    fn times_before_year_one_and_leap_seconds_are_written_as_postgres_reads_them() {
        let text = |at: DateTime<Utc>| {
            let mut out = Vec::new();
            write_time(&mut out, at);
            String::from_utf8(out).unwrap()
        };
        let bc = chrono::NaiveDate::from_ymd_opt(0, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 5)
            .unwrap()
            .and_utc();
        assert_eq!(text(bc), "0001-12-31 23:59:59.000005+00 BC");
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_250_000_000)
            .unwrap()
            .and_utc();
        assert_eq!(text(leap), "2017-01-01 00:00:00.250000+00");
    }
}
