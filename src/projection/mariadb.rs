//! The MariaDB read-model backend, all of it: statements from `projections/mariadb/`,
//! multi-row `INSERT ... ON DUPLICATE KEY UPDATE` written as prepared statements of a few
//! fixed sizes, id lists passed as one JSON array and read with `JSON_TABLE`, InnoDB
//! `REPEATABLE READ` snapshots for verify, tables `utf8mb4` with `utf8mb4_unicode_ci`.
//!
//! **Databases, not schemas.** A MySQL "schema" is a database, so the read model is the
//! database the URL names (`mysql://user:pass@host:3306/ledger`, or `mariadb://…`), and a
//! scratch database sits beside it on the same server: `<database>_new` for a rebuild,
//! `<database>_verify` for verify. The URL's user must be allowed to create and drop those.
//! A scratch database is opened like the live one: what would make it faster and less durable
//! (`innodb_flush_log_at_trx_commit`) is the server's global setting, not a session's.
//!
//! **What the switch is.** PostgreSQL renames a whole schema; MariaDB cannot rename a database,
//! but `RENAME TABLE` moves tables between databases of one server, and one `RENAME TABLE` of
//! several tables is atomic: no other session sees some tables moved and others not, and it
//! waits for the transactions that still read the old tables. The switch therefore moves, in
//! one statement, every base table of the live database (the migration record included) into
//! `<database>_old` and every base table of `<database>_new` into the live database, then drops
//! both emptied databases. A reader's statement sees either all old or all new tables. The
//! live database itself, its grants and its views stay: the views (`legacy_spenden`,
//! `legacy_request`, `change_log`) name their tables by name, so from the switch on they read
//! the new ones (the rebuild migrates the live database first, so its views are the ones the
//! new tables were made for). Foreign keys move with their tables.
//!
//! Over 600 lines, one concern: the read-model interface (`backend.rs`) for one dialect, kept
//! in one file so that a dialect is one file (issue 17).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::mysql::{MySqlArguments, MySqlConnectOptions, MySqlPoolOptions, MySqlRow};
use sqlx::{Executor, MySql, MySqlPool, Row, Transaction};

use super::backend::{
    db_error, Backend, DbFailure, Dialect, Load, ProjectionError, ReadTx, ReasonTable, Scratch,
    Session, SqlFlavor, Statement, Write,
};
use super::rows::{self, bind_values, chunk_sizes, expanded, ColType, Value};

/// MariaDB's limit on placeholders per prepared statement.
const MAX_PLACEHOLDERS: usize = 65_535;
/// Rows per multi-row statement at most; a power of two (see `rows::chunk_sizes`). Larger
/// statements cost fewer round trips; 512 donation rows stay far below `max_allowed_packet`.
const MAX_ROWS_PER_STATEMENT: usize = 512;
/// Prepared statements kept per connection: every (statement, chunk size) pair of the
/// projection writes stays cached, with room for the loads and the rest.
const STATEMENT_CACHE_CAPACITY: usize = 256;
/// The longest database name MariaDB accepts.
const MAX_DATABASE_NAME: usize = 64;

const DONATION_SELECT: &str = include_str!("../../projections/mariadb/donation_select.sql");
const PAYMENT_SELECT: &str = include_str!("../../projections/mariadb/payment_select.sql");
const CONTRIBUTION_TRACKING_SELECT: &str =
    include_str!("../../projections/mariadb/contribution_tracking_select.sql");
const MODERATION_REASON_SELECT: &str =
    include_str!("../../projections/mariadb/moderation_reason_select.sql");
const MODERATION_REASON_DELETE: &str =
    include_str!("../../projections/mariadb/moderation_reason_delete.sql");
const MEMBERSHIP_SELECT: &str = include_str!("../../projections/mariadb/membership_select.sql");
const ADDRESS_CHANGE_SELECT: &str =
    include_str!("../../projections/mariadb/address_change_select.sql");
const CIVISHARE_OUTGOING_UPSERT: &str =
    include_str!("../../projections/mariadb/civishare_outgoing_upsert.sql");
const CIVISHARE_INCOMING_UPSERT: &str =
    include_str!("../../projections/mariadb/civishare_incoming_upsert.sql");
const CIVISHARE_STATUS_CHECKPOINT_UPSERT: &str =
    include_str!("../../projections/mariadb/civishare_status_checkpoint_upsert.sql");
const ADDRESS_CHANGE_UPSERT: &str =
    include_str!("../../projections/mariadb/address_change_upsert.sql");
const SUBSCRIPTION_SELECT: &str = include_str!("../../projections/mariadb/subscription_select.sql");
const SUBSCRIPTION_UPSERT: &str = include_str!("../../projections/mariadb/subscription_upsert.sql");
const MEMBERSHIP_UPSERT: &str = include_str!("../../projections/mariadb/membership_upsert.sql");
const MEMBERSHIP_REASON_SELECT: &str =
    include_str!("../../projections/mariadb/membership_moderation_reason_select.sql");
const MEMBERSHIP_REASON_DELETE: &str =
    include_str!("../../projections/mariadb/membership_moderation_reason_delete.sql");
const MEMBERSHIP_REASON_INSERT: &str =
    include_str!("../../projections/mariadb/membership_moderation_reason_insert.sql");
const DONATION_TRACKING_SELECT: &str =
    include_str!("../../projections/mariadb/donation_tracking_select.sql");
const DONATION_TRACKING_MAX_ID: &str =
    include_str!("../../projections/mariadb/donation_tracking_max_id.sql");
pub(crate) const DONATION_UPSERT: &str =
    include_str!("../../projections/mariadb/donation_upsert.sql");
pub(crate) const PAYMENT_UPSERT: &str =
    include_str!("../../projections/mariadb/payment_upsert.sql");
pub(crate) const CONTRIBUTION_TRACKING_UPSERT: &str =
    include_str!("../../projections/mariadb/contribution_tracking_upsert.sql");
const CONFLICT_INSERT: &str =
    include_str!("../../projections/mariadb/contribution_tracking_conflict_insert.sql");
const DONATION_EVENT_INSERT: &str =
    include_str!("../../projections/mariadb/donation_event_insert.sql");
const MEMBERSHIP_EVENT_INSERT: &str =
    include_str!("../../projections/mariadb/membership_event_insert.sql");
const ADDRESS_CHANGE_EVENT_INSERT: &str =
    include_str!("../../projections/mariadb/address_change_event_insert.sql");
const DONATION_TRACKING_INSERT: &str =
    include_str!("../../projections/mariadb/donation_tracking_insert.sql");
const MODERATION_REASON_INSERT: &str =
    include_str!("../../projections/mariadb/moderation_reason_insert.sql");
const CHECKPOINT_ENSURE: &str = include_str!("../../projections/mariadb/checkpoint_ensure.sql");
const CHECKPOINT_SELECT: &str = include_str!("../../projections/mariadb/checkpoint_select.sql");
const CHECKPOINT_ADVANCE: &str = include_str!("../../projections/mariadb/checkpoint_advance.sql");
const SKIPPED_EVENT_INSERT: &str =
    include_str!("../../projections/mariadb/skipped_event_insert.sql");
const SKIPPED_EVENT_SELECT: &str =
    include_str!("../../projections/mariadb/skipped_event_select.sql");
const CANDIDATES: &str = include_str!("../../projections/mariadb/scrub_candidates.sql");
const STALE_MODERATION: &str = include_str!("../../projections/mariadb/scrub_stale_moderation.sql");
const MEMBERSHIP_CANDIDATES: &str =
    include_str!("../../projections/mariadb/membership_scrub_candidates.sql");
const ADDRESS_CHANGE_CANDIDATES: &str =
    include_str!("../../projections/mariadb/address_change_scrub_candidates.sql");
const SUBSCRIPTION_CANDIDATES: &str =
    include_str!("../../projections/mariadb/subscription_scrub_candidates.sql");

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

/// Whether `url` names a MariaDB (or MySQL) read model.
pub(crate) fn accepts(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// The URL as sqlx's MySQL driver reads it (`mariadb://` is our alias of `mysql://`).
pub(crate) fn driver_url(url: &str) -> std::borrow::Cow<'_, str> {
    match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}").into(),
        None => url.into(),
    }
}

/// Checks a database name (it is spliced into DDL): ASCII letters, digits and underscores, at
/// most 64 characters with the suffix of its scratch databases.
fn check_database(name: &str) -> Result<(), ProjectionError> {
    let ok = !name.is_empty()
        && name.len() + "_verify".len() <= MAX_DATABASE_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ProjectionError::InvalidUrl(format!(
            "the MariaDB database {name:?} must be named with ASCII letters, digits and \
             underscores, at most {} characters",
            MAX_DATABASE_NAME - "_verify".len()
        )))
    }
}

/// The connection options of `url`, and its database (which it must name).
fn options(url: &str) -> Result<(MySqlConnectOptions, String), ProjectionError> {
    let options = MySqlConnectOptions::from_str(&driver_url(url))
        .map_err(|e| ProjectionError::InvalidUrl(e.to_string()))?;
    let database = options.get_database().map(str::to_owned).ok_or_else(|| {
        ProjectionError::InvalidUrl(
            "a mysql:// or mariadb:// read-model URL must name its database \
                 (mysql://user@host:3306/ledger)"
                .into(),
        )
    })?;
    check_database(&database)?;
    Ok((options, database))
}

/// A lazily connecting pool on `database` (this succeeds while the server is down). Each
/// connection talks utf8mb4 in UTC, refuses values a column cannot hold instead of cutting
/// them (strict mode), reads in `REPEATABLE READ` (the snapshots verify compares) and may
/// aggregate a whole verify page into one text.
fn connect(options: &MySqlConnectOptions, database: &str) -> MySqlPool {
    let options = options
        .clone()
        .database(database)
        .charset("utf8mb4")
        .collation("utf8mb4_unicode_ci")
        .timezone(Some("+00:00".to_owned()))
        .statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), \
                     SESSION group_concat_max_len = 1073741824",
                )
                .await?;
                conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .await?;
                Ok(())
            })
        })
        .connect_lazy_with(options)
}

/// `host:port/database` of a read-model URL, for logs: no user, no password. A URL that does
/// not parse is reported as such, never repeated.
fn location(url: &str) -> String {
    match MySqlConnectOptions::from_str(&driver_url(url)) {
        Ok(o) => {
            let host = match o.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => format!("{}:{}", o.get_host(), o.get_port()),
            };
            format!("{host}/{}", o.get_database().unwrap_or_default())
        }
        Err(_) => "an unparsable MariaDB URL".to_owned(),
    }
}

/// Binds one value, moving its text in.
fn bind(
    q: sqlx::query::Query<'_, MySql, MySqlArguments>,
    v: Value,
) -> sqlx::query::Query<'_, MySql, MySqlArguments> {
    match v {
        Value::I64(v) => q.bind(v),
        Value::Text(v) => q.bind(v),
        Value::Bool(v) => q.bind(v),
        Value::Time(v) => q.bind(v),
    }
}

/// Reads a row into values of `columns`' types.
pub(crate) fn read(
    row: &MySqlRow,
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
/// statements of the sizes `chunk_sizes` picks.
async fn write_rows(
    conn: &mut sqlx::MySqlConnection,
    statement: &'static str,
    columns: usize,
    rows: Vec<Vec<Value>>,
) -> Result<(), ProjectionError> {
    let max = (MAX_PLACEHOLDERS / columns).min(MAX_ROWS_PER_STATEMENT);
    let max = 1 << max.ilog2();
    let total = rows.len();
    let mut rows = rows.into_iter();
    for size in chunk_sizes(total, max) {
        let sql = expanded(statement, size);
        let mut q = sqlx::query(&sql);
        for row in rows.by_ref().take(size) {
            for v in row {
                q = bind(q, v);
            }
        }
        q.execute(&mut *conn).await.map_err(db_error)?;
    }
    Ok(())
}

struct MariaDbSession {
    tx: Transaction<'static, MySql>,
}

#[async_trait::async_trait]
impl Session for MariaDbSession {
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

/// A backquoted identifier.
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Drops every non-unique index of the connection's database that no foreign key needs
/// (MariaDB refuses to drop those) and returns, per table, one `ALTER TABLE` that adds them all
/// again (one pass over the table builds every index by sorting).
async fn drop_secondary_indexes(pool: &MySqlPool) -> Result<Vec<String>, ProjectionError> {
    let indexes: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.TABLE_NAME, s.INDEX_NAME, \
                CAST(GROUP_CONCAT(CONCAT('`', s.COLUMN_NAME, '`', \
                     IFNULL(CONCAT('(', s.SUB_PART, ')'), '')) \
                     ORDER BY s.SEQ_IN_INDEX SEPARATOR ', ') AS CHAR) \
         FROM information_schema.STATISTICS AS s \
         WHERE s.TABLE_SCHEMA = DATABASE() AND s.NON_UNIQUE = 1 \
           AND NOT EXISTS ( \
               SELECT 1 FROM information_schema.KEY_COLUMN_USAGE AS k \
               JOIN information_schema.STATISTICS AS f \
                 ON f.TABLE_SCHEMA = k.TABLE_SCHEMA AND f.TABLE_NAME = k.TABLE_NAME \
                AND f.INDEX_NAME = s.INDEX_NAME AND f.SEQ_IN_INDEX = 1 \
                AND f.COLUMN_NAME = k.COLUMN_NAME \
               WHERE k.TABLE_SCHEMA = s.TABLE_SCHEMA AND k.TABLE_NAME = s.TABLE_NAME \
                 AND k.REFERENCED_TABLE_NAME IS NOT NULL) \
         GROUP BY s.TABLE_NAME, s.INDEX_NAME \
         ORDER BY s.TABLE_NAME, s.INDEX_NAME",
    )
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    let mut by_table: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (table, index, columns) in indexes {
        by_table.entry(table).or_default().push((index, columns));
    }
    let mut recreate = Vec::new();
    for (table, indexes) in by_table {
        let drops: Vec<String> = indexes
            .iter()
            .map(|(index, _)| format!("DROP INDEX {}", quoted(index)))
            .collect();
        sqlx::query(&format!(
            "ALTER TABLE {} {}",
            quoted(&table),
            drops.join(", ")
        ))
        .execute(pool)
        .await
        .map_err(db_error)?;
        let adds: Vec<String> = indexes
            .iter()
            .map(|(index, columns)| format!("ADD INDEX {} ({columns})", quoted(index)))
            .collect();
        recreate.push(format!(
            "ALTER TABLE {} {}",
            quoted(&table),
            adds.join(", ")
        ));
    }
    Ok(recreate)
}

/// The base tables of `database` (not its views).
async fn base_tables(pool: &MySqlPool, database: &str) -> Result<Vec<String>, ProjectionError> {
    sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .bind(database)
    .fetch_all(pool)
    .await
    .map_err(db_error)
}

/// Switches the tables of `fresh` into `live` with one atomic `RENAME TABLE` (see the
/// module's documentation), then drops the emptied databases.
async fn switch_databases(
    pool: &MySqlPool,
    live: &str,
    fresh: &str,
) -> Result<(), ProjectionError> {
    check_database(live)?;
    check_database(fresh)?;
    let old = format!("{live}_old");
    let (live_tables, fresh_tables) =
        tokio::try_join!(base_tables(pool, live), base_tables(pool, fresh))?;
    if fresh_tables.is_empty() {
        return Err(ProjectionError::Rebuild(format!(
            "the rebuilt database {fresh} has no tables"
        )));
    }
    let db = |name: &str| quoted(name);
    sqlx::query(&format!("DROP DATABASE IF EXISTS {}", db(&old)))
        .execute(pool)
        .await
        .map_err(db_error)?;
    sqlx::query(&format!(
        "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        db(&old)
    ))
    .execute(pool)
    .await
    .map_err(db_error)?;
    let moves: Vec<String> = live_tables
        .iter()
        .map(|t| format!("{}.{} TO {}.{}", db(live), quoted(t), db(&old), quoted(t)))
        .chain(
            fresh_tables
                .iter()
                .map(|t| format!("{}.{} TO {}.{}", db(fresh), quoted(t), db(live), quoted(t))),
        )
        .collect();
    sqlx::query(&format!("RENAME TABLE {}", moves.join(", ")))
        .execute(pool)
        .await
        .map_err(db_error)?;
    for name in [&old, fresh] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {}", db(name)))
            .execute(pool)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Classifies a MariaDB error by its SQLSTATE and error number: connection exceptions (class
/// 08), a killed connection or query (70100, 1927, 1317), deadlock (40001, 1213), lock wait
/// timeout (1205), too many connections (1040, 1203), a server shutting down (1053) or
/// read-only for a failover (1290, 1836) are transient; data exceptions (class 22) and
/// integrity constraint violations (class 23: keys, NOT NULL, CHECK), and a string the
/// character set cannot hold (1366), are the data's doing. `None` for another driver's error.
pub(crate) fn classify_database(db: &dyn sqlx::error::DatabaseError) -> Option<DbFailure> {
    let my = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()?;
    let code = my.code().unwrap_or_default();
    Some(
        if code.starts_with("08")
            || matches!(code, "70100" | "40001")
            || matches!(
                my.number(),
                1040 | 1053 | 1203 | 1205 | 1213 | 1290 | 1317 | 1836 | 1927
            )
        {
            DbFailure::Transient
        } else if code.starts_with("22") || code.starts_with("23") || my.number() == 1366 {
            DbFailure::Data
        } else {
            DbFailure::Other
        },
    )
}

/// A MariaDB read model: a database, and a pool on it.
pub(crate) struct MariaDbBackend {
    pool: MySqlPool,
    url: String,
    options: MySqlConnectOptions,
    database: String,
}

impl MariaDbBackend {
    /// A lazily connecting backend on the database `url` names: this succeeds while the
    /// server is down.
    pub(crate) fn connect(url: &str) -> Result<Self, ProjectionError> {
        let (options, database) = options(url)?;
        Ok(Self {
            pool: connect(&options, &database),
            url: url.to_owned(),
            options,
            database,
        })
    }

    /// The database of a scratch database of `kind` beside this one.
    fn scratch_database(&self, kind: Scratch) -> String {
        match kind {
            Scratch::Rebuild => format!("{}_new", self.database),
            Scratch::Verify => format!("{}_verify", self.database),
        }
    }

    /// The scratch `other` as one of ours.
    fn ours(other: &dyn Backend) -> Result<&Self, ProjectionError> {
        other
            .as_any()
            .downcast_ref::<Self>()
            .ok_or_else(|| ProjectionError::Rebuild("a scratch of another dialect".into()))
    }

    /// Drops `database` with everything in it.
    async fn drop_database(&self, database: &str) -> Result<(), ProjectionError> {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {}", quoted(database)))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for MariaDbBackend {
    fn dialect(&self) -> Dialect {
        Dialect::MariaDb
    }

    fn location(&self) -> String {
        location(&self.url)
    }

    fn flavor(&self) -> &'static dyn SqlFlavor {
        &MariaDbFlavor
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn migrate(&self) -> Result<(), ProjectionError> {
        sqlx::migrate!("./migrations/mariadb/readmodel")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await
    }

    async fn begin(&self) -> Result<Box<dyn Session>, ProjectionError> {
        let tx = self.pool.begin().await.map_err(db_error)?;
        Ok(Box::new(MariaDbSession { tx }))
    }

    /// A `REPEATABLE READ` transaction (every connection's level): InnoDB fixes its snapshot
    /// at the first read, and every later read sees that one.
    async fn snapshot(&self) -> Result<Box<dyn ReadTx>, ProjectionError> {
        let tx = self.pool.begin().await.map_err(db_error)?;
        Ok(Box::new(MariaDbReadTx { tx }))
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

    /// Rebuilds the tables that held personal data: `OPTIMIZE TABLE` on InnoDB copies the live
    /// rows into a new tablespace and frees the old one, with the blanked values' old versions
    /// in its pages (InnoDB reuses free space but never zeroes it). It costs a pass over both
    /// tables, online (readers and the projector go on); the scrub job runs it only after a
    /// run that scrubbed something.
    async fn purge_residue(&self) -> Result<(), ProjectionError> {
        sqlx::query("OPTIMIZE TABLE donation, payment, membership_application, address_change")
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Database `<database>_new` or `<database>_verify`, created empty.
    async fn scratch(&self, kind: Scratch) -> Result<Box<dyn Backend>, ProjectionError> {
        let database = self.scratch_database(kind);
        self.drop_database(&database).await?;
        sqlx::query(&format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            quoted(&database)
        ))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(Box::new(Self {
            pool: connect(&self.options, &database),
            url: self.url.clone(),
            options: self.options.clone(),
            database,
        }))
    }

    async fn remove_scratch(&self, scratch: &dyn Backend) -> Result<(), ProjectionError> {
        self.drop_database(&Self::ours(scratch)?.database).await
    }

    async fn switch_in(&self, fresh: &dyn Backend) -> Result<(), ProjectionError> {
        switch_databases(&self.pool, &self.database, &Self::ours(fresh)?.database).await
    }
}

/// MariaDB's spellings: `?` parameters (bound in order of appearance), casts to the layout's
/// types, text keys in `utf8mb4_nopad_bin` (byte order), `JSON_ARRAY` rows concatenated in key
/// order.
pub(crate) struct MariaDbFlavor;

impl SqlFlavor for MariaDbFlavor {
    fn param(&self, _: usize) -> String {
        "?".to_owned()
    }

    fn typed(&self, column: &str, t: ColType) -> String {
        match t {
            ColType::I64 => format!("CAST({column} AS SIGNED)"),
            ColType::Text => format!("CAST({column} AS CHAR)"),
            ColType::Bool | ColType::Time => column.to_owned(),
        }
    }

    /// The definition without the database's name, which MariaDB writes before every table:
    /// the live and the scratch database's views compare equal when they say the same.
    fn view_definition_sql(&self) -> &'static str {
        "SELECT CAST(REPLACE(VIEW_DEFINITION, CONCAT('`', TABLE_SCHEMA, '`.'), '') AS CHAR) \
         FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
    }

    fn byte_ordered(&self, column: &str, t: ColType) -> String {
        match t {
            ColType::Text => format!("{column} COLLATE utf8mb4_nopad_bin"),
            _ => column.to_owned(),
        }
    }

    fn page_text(&self, columns: &str, from_where: &str, order: &str) -> String {
        format!(
            "SELECT COUNT(*), CAST(GROUP_CONCAT(JSON_ARRAY({columns}) ORDER BY {order} \
             SEPARATOR '\\n') AS CHAR) FROM {from_where}"
        )
    }
}

/// A `REPEATABLE READ` transaction, rolled back at the end.
struct MariaDbReadTx {
    tx: Transaction<'static, MySql>,
}

#[async_trait::async_trait]
impl ReadTx for MariaDbReadTx {
    fn flavor(&self) -> &'static dyn SqlFlavor {
        &MariaDbFlavor
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
    fn location_names_host_port_and_database_but_no_credentials() {
        assert_eq!(
            super::location("mysql://ledger:hunter2@db.example:3307/funds"),
            "db.example:3307/funds"
        );
        assert_eq!(
            super::location("mariadb://root@127.0.0.1/ledger"),
            "127.0.0.1:3306/ledger"
        );
        assert!(!super::location("mysql://u:hunter2@[::1").contains("hunter2"));
    }

    #[test]
    fn a_url_without_a_database_or_with_an_unusable_name_is_refused_with_the_rule() {
        let missing = MariaDbBackend::connect("mysql://root@127.0.0.1:3306").err();
        assert!(
            matches!(&missing, Some(ProjectionError::InvalidUrl(m)) if m.contains("must name its database")),
            "{missing:?}"
        );
        let odd = MariaDbBackend::connect("mariadb://root@127.0.0.1:3306/led-ger").err();
        assert!(
            matches!(&odd, Some(ProjectionError::InvalidUrl(m)) if m.contains("ASCII letters, digits and underscores")),
            "{odd:?}"
        );
    }

    #[test]
    fn verify_pages_order_text_keys_by_bytes_and_bind_in_order() {
        let f = MariaDbFlavor;
        assert_eq!(f.param(3), "?");
        assert_eq!(
            f.byte_ordered("source", ColType::Text),
            "source COLLATE utf8mb4_nopad_bin"
        );
        assert_eq!(f.byte_ordered("id", ColType::I64), "id");
        let page = f.page_text("id, name", "t WHERE id > ?", "id");
        assert!(
            page.contains("GROUP_CONCAT(JSON_ARRAY(id, name) ORDER BY id SEPARATOR '\\n')"),
            "{page}"
        );
    }
}
