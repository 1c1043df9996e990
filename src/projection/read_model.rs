//! [`ReadModel`]: a handle on one read model, whatever its backend. Everything here is
//! dialect-neutral; what a dialect does differently is behind [`Backend`] (see `backend.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

use super::backend::{
    db_error, Backend, Dialect, ProjectionError, Scratch, Session, SqlFlavor, Statement,
};
use super::rows::{self, ColType, Value};
use super::{mariadb, postgres, sqlite, DEFAULT_SCHEMA};
use crate::store::{Position, RecordedEvent};

/// A connection to the relational read model: an SQLite file, a PostgreSQL schema or a
/// MariaDB database.
#[derive(Clone)]
pub struct ReadModel {
    pub(crate) backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for ReadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("ReadModel")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

/// Every table of a read model rendered as text rows ordered by key, for comparisons.
pub type TableDump = BTreeMap<String, Vec<String>>;

impl ReadModel {
    /// Connects to `sqlite://path` (created if missing), `postgres://...` (schema
    /// [`DEFAULT_SCHEMA`]) or `mysql://…/database` (also `mariadb://`; the database must
    /// exist). PostgreSQL and MariaDB connect lazily, so this succeeds while they are down.
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        Self::connect_with_schema(url, DEFAULT_SCHEMA).await
    }

    /// Like [`ReadModel::connect`], with the PostgreSQL schema named (ignored for SQLite and
    /// MariaDB, whose URL names the database).
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, ProjectionError> {
        Self::open(url, schema, false).await
    }

    /// Like [`ReadModel::connect_with_schema`], with the settings of a scratch database: fast,
    /// not durable (for tools that fill a database nobody reads yet, such as `ledger bench`).
    pub(crate) async fn connect_scratch(url: &str, schema: &str) -> Result<Self, ProjectionError> {
        Self::open(url, schema, true).await
    }

    /// The one place a backend is chosen by URL; `scratch` opens it with a scratch database's
    /// settings.
    async fn open(url: &str, schema: &str, scratch: bool) -> Result<Self, ProjectionError> {
        let backend: Arc<dyn Backend> = if postgres::accepts(url) {
            Arc::new(if scratch {
                postgres::PostgresBackend::connect_scratch(url, schema)?
            } else {
                postgres::PostgresBackend::connect(url, schema)?
            })
        } else if mariadb::accepts(url) {
            // A MariaDB read model is the database the URL names; its scratch databases are
            // made beside it, so there are no separate scratch settings to open it with.
            Arc::new(mariadb::MariaDbBackend::connect(url)?)
        } else if sqlite::accepts(url) {
            Arc::new(if scratch {
                sqlite::SqliteBackend::connect_scratch(url).await?
            } else {
                sqlite::SqliteBackend::connect(url).await?
            })
        } else {
            return Err(ProjectionError::InvalidUrl(
                "expected a sqlite://, postgres://, mysql:// or mariadb:// URL".into(),
            ));
        };
        Ok(Self { backend })
    }

    /// A scratch database of `kind` beside this one (see [`Backend::scratch`]).
    pub(crate) async fn scratch(&self, kind: Scratch) -> Result<Self, ProjectionError> {
        Ok(Self {
            backend: Arc::from(self.backend.scratch(kind).await?),
        })
    }

    /// Closes `scratch` (made by [`ReadModel::scratch`]) and removes it.
    pub(crate) async fn remove_scratch(&self, scratch: &ReadModel) -> Result<(), ProjectionError> {
        scratch.close().await;
        self.backend.remove_scratch(scratch.backend.as_ref()).await
    }

    /// Closes `fresh` (a [`Scratch::Rebuild`] of this read model) and switches its tables in.
    pub(crate) async fn switch_in(&self, fresh: &ReadModel) -> Result<(), ProjectionError> {
        fresh.close().await;
        self.backend.switch_in(fresh.backend.as_ref()).await
    }

    /// The SQLite pool, for tools in this crate that write a SQLite read model directly.
    pub(crate) fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        self.backend
            .as_any()
            .downcast_ref::<sqlite::SqliteBackend>()
            .map(sqlite::SqliteBackend::pool)
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.backend.dialect()
    }

    /// Where the read model lives, for logs: `host:port/database` (schema `…`) or the
    /// file's path. Never a user name or password.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Runs one read-only query without binds and reads `columns` of every row.
    pub(crate) async fn fetch_rows(
        &self,
        sql: &str,
        columns: &[(&str, ColType)],
    ) -> Result<Vec<Vec<Value>>, ProjectionError> {
        self.backend.fetch(sql, &[], columns).await
    }

    /// Creates or updates the tables (embedded migrations).
    pub async fn migrate(&self) -> Result<(), ProjectionError> {
        self.backend.migrate().await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.backend.close().await
    }

    /// The last position `projector` applied, or `None` before its first event.
    pub async fn checkpoint(&self, projector: &str) -> Result<Option<Position>, ProjectionError> {
        let sql = checkpoint_query(self.backend.flavor());
        let rows = self
            .backend
            .fetch(&sql, &[Value::text(projector)], CHECKPOINT_COLUMN)
            .await?;
        Ok(checkpoint_of(&rows))
    }

    /// Every table and the views (`legacy_spenden`, `legacy_request`, `change_log`), rendered
    /// dialect-neutrally and ordered by key (`projector_checkpoint` without its wall-clock
    /// column).
    pub async fn dump(&self) -> Result<TableDump, ProjectionError> {
        let mut out = TableDump::new();
        for layout in rows::tables_and_views() {
            out.insert(layout.name.to_owned(), self.dump_table(layout).await?);
        }
        Ok(out)
    }

    /// One row of a table or a legacy view as column name → rendered value, found by its
    /// first column (`id`, `donation_id` or `membership_id`). For tests and diagnostics.
    pub async fn row(
        &self,
        table: &str,
        key: i64,
    ) -> Result<Option<BTreeMap<String, String>>, ProjectionError> {
        let layout = rows::tables_and_views()
            .find(|l| l.name == table)
            .ok_or_else(|| ProjectionError::InvalidUrl(format!("unknown table {table}")))?;
        let dump = self.dump_table(layout).await?;
        let prefix = format!("{key} |");
        Ok(dump.iter().find(|r| r.starts_with(&prefix)).map(|r| {
            layout
                .columns
                .iter()
                .map(|(c, _)| (*c).to_owned())
                .zip(r.split(" | ").map(str::to_owned))
                .collect()
        }))
    }

    /// Every row of `layout` rendered dialect-neutrally (values joined by ` | `), ordered by
    /// its key.
    async fn dump_table(&self, layout: &rows::Layout) -> Result<Vec<String>, ProjectionError> {
        Ok(self
            .all_rows(layout)
            .await?
            .iter()
            .map(|values| {
                values
                    .iter()
                    .map(Value::render)
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect())
    }

    /// Drops the secondary indexes (not those behind a primary key or unique constraint,
    /// which upserts need) and returns the statements that recreate them. A rebuild fills its
    /// fresh tables without them and then builds each index once from sorted data, instead of
    /// updating 28 b-trees row by row.
    pub(crate) async fn defer_indexes(&self) -> Result<Vec<String>, ProjectionError> {
        self.backend.drop_secondary_indexes().await
    }

    /// Runs the statements [`ReadModel::defer_indexes`] returned.
    pub(crate) async fn create_indexes(
        &self,
        statements: &[String],
    ) -> Result<(), ProjectionError> {
        for sql in statements {
            self.backend.execute(sql, &[]).await.map_err(db_error)?;
        }
        Ok(())
    }

    /// Starts a projector batch's transaction.
    pub(crate) async fn begin(&self) -> Result<Box<dyn Session>, ProjectionError> {
        self.backend.begin().await
    }

    /// Removes the quarantine of the event at `position` (an operator fixed what made it
    /// unprojectable); whether there was one. The projector is past it: a rebuild replays it.
    pub async fn release_quarantined(
        &self,
        projector: &str,
        position: Position,
    ) -> Result<bool, ProjectionError> {
        let p = |n| self.backend.flavor().param(n);
        let sql = format!(
            "DELETE FROM projector_skipped_event \
             WHERE projector = {} AND position = {} AND skipped_by = {}",
            p(1),
            p(2),
            p(3)
        );
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        let binds = [
            Value::text(projector),
            Value::int(position),
            Value::text(QUARANTINE),
        ];
        let deleted = self.backend.execute(&sql, &binds).await.map_err(db_error)?;
        Ok(deleted > 0)
    }

    /// Records that `projector` passes over the event at `event` (position, stream, type)
    /// because of `reason`, decided by `operator` (or [`QUARANTINE`]).
    pub(crate) async fn insert_skipped(
        &self,
        projector: &str,
        event: &SkippedEvent<'_>,
        reason: &str,
        operator: &str,
    ) -> Result<(), ProjectionError> {
        let binds = [
            Value::text(projector),
            Value::int(i64::try_from(event.position).unwrap_or(i64::MAX)),
            Value::text(event.stream),
            Value::text(event.event_type),
            Value::text(reason),
            Value::text(operator),
            Value::Time(Some(Utc::now())),
        ];
        let sql = self.backend.statement(Statement::SkippedEventInsert);
        self.backend
            .execute(sql, &binds)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                    ProjectionError::SkipRefused {
                        position: event.position,
                        reason: "already skipped".into(),
                    }
                }
                other => db_error(other),
            })
    }

    /// Inserts one row of `layout`, its values in layout order.
    pub(crate) async fn insert_row(
        &self,
        layout: &rows::Layout,
        values: &[Value],
    ) -> Result<(), sqlx::Error> {
        let flavor = self.backend.flavor();
        let columns: Vec<&str> = layout.columns.iter().map(|(c, _)| *c).collect();
        let params: Vec<String> = (1..=columns.len()).map(|n| flavor.param(n)).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            layout.name,
            columns.join(", "),
            params.join(", ")
        );
        self.backend.execute(&sql, values).await.map(|_| ())
    }

    /// Every row of `layout` (for small tables such as the operators' skips), in key order.
    pub(crate) async fn all_rows(
        &self,
        layout: &rows::Layout,
    ) -> Result<Vec<Vec<Value>>, ProjectionError> {
        let flavor = self.backend.flavor();
        let columns: Vec<String> = layout
            .columns
            .iter()
            .map(|(c, t)| flavor.typed(c, *t))
            .collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            columns.join(", "),
            layout.name,
            layout.order_by
        );
        self.backend.fetch(&sql, &[], layout.columns).await
    }
}

/// The one column of [`checkpoint_query`].
pub(crate) const CHECKPOINT_COLUMN: &[(&str, ColType)] = &[("position", ColType::I64)];

/// The query of a projector's checkpoint, binding the projector's name.
pub(crate) fn checkpoint_query(flavor: &dyn SqlFlavor) -> String {
    format!(
        "SELECT position FROM projector_checkpoint WHERE projector = {}",
        flavor.param(1)
    )
}

/// The checkpoint in the rows of [`checkpoint_query`] (`None` before the first event).
pub(crate) fn checkpoint_of(rows: &[Vec<Value>]) -> Option<Position> {
    rows.first()
        .and_then(|r| r[0].as_i64())
        .map(|p| p as Position)
}

/// The `skipped_by` of an event the projector quarantined itself (not an operator).
pub const QUARANTINE: &str = "quarantine";

/// The coordinates of an event passed over: its position, stream and type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SkippedEvent<'a> {
    pub(crate) position: Position,
    pub(crate) stream: &'a str,
    pub(crate) event_type: &'a str,
}

impl<'a> SkippedEvent<'a> {
    pub(crate) fn of(event: &'a RecordedEvent) -> Self {
        Self {
            position: event.position,
            stream: &event.stream,
            event_type: &event.event_type,
        }
    }
}
