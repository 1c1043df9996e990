//! The MariaDB side of the read-model bench: a throw-away database on the server of
//! `--read-model-url mysql://…`, and the raw insert of the rebuild's final rows into a fresh
//! database beside it (the baseline the rebuild's rate is set against).

use anyhow::Context;
use chrono::NaiveDateTime;
use futures::TryStreamExt;
use sqlx::mysql::{MySqlArguments, MySqlRow};
use sqlx::{Connection, MySql, MySqlConnection, Row};
use uuid::Uuid;

use super::read_model::{url_with_database, RawInsert, Stopwatch, DATA_TABLES, RAW_PAGE_ROWS};
use crate::projection::ReadModel;

/// Whether `url` names a MariaDB (or MySQL) server.
pub fn is_mariadb_url(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// `url` as sqlx's MySQL driver reads it (`mariadb://` is the ledger's alias of `mysql://`).
fn driver_url(url: &str) -> String {
    match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_owned(),
    }
}

/// A throw-away MariaDB database (and the scratch databases named after it) on the server of
/// a read-model URL.
pub struct ScratchMariaDb {
    admin_url: String,
    name: String,
    /// The URL of the throw-away database.
    pub url: String,
}

impl ScratchMariaDb {
    /// Creates `ledger_bench_<random>` (utf8mb4, utf8mb4_unicode_ci) on the server `url`
    /// points to; its user needs the right to create databases.
    pub async fn create(url: &str) -> anyhow::Result<Self> {
        let admin_url = driver_url(url);
        let mut conn = MySqlConnection::connect(&admin_url)
            .await
            .context("connecting to MariaDB")?;
        let name = format!(
            "ledger_bench_{}",
            &Uuid::new_v4().simple().to_string()[..16]
        );
        sqlx::query(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ))
        .execute(&mut conn)
        .await
        .context("creating the bench's scratch database")?;
        conn.close().await?;
        Ok(Self {
            url: url_with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }

    /// Drops the database and the ones named after it (`_raw`, a rebuild's leftovers); a
    /// failure is logged, not returned, since the figures matter more than the clean-up.
    pub async fn drop_database(self) {
        let result = async {
            let mut conn = MySqlConnection::connect(&self.admin_url).await?;
            for suffix in ["", "_raw", "_new", "_old", "_verify"] {
                sqlx::query(&format!("DROP DATABASE IF EXISTS `{}{suffix}`", self.name))
                    .execute(&mut conn)
                    .await?;
            }
            conn.close().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(database = %self.name, error = %e, "could not drop the bench's scratch database");
        }
    }
}

/// How a column is read back and bound again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Int,
    Text,
    Time,
}

/// A value read back, bound again as it was stored.
enum RawValue {
    Int(Option<i64>),
    Text(Option<String>),
    Time(Option<NaiveDateTime>),
}

fn raw_value(row: &MySqlRow, i: usize, class: Class) -> Result<RawValue, sqlx::Error> {
    Ok(match class {
        Class::Int => RawValue::Int(row.try_get(i)?),
        Class::Text => RawValue::Text(row.try_get(i)?),
        Class::Time => RawValue::Time(row.try_get(i)?),
    })
}

/// The stored (not generated) columns of `table` in `database` with how each is read.
async fn stored_columns(
    conn: &mut MySqlConnection,
    database: &str,
    table: &str,
) -> anyhow::Result<Vec<(String, Class)>> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND IS_GENERATED = 'NEVER' \
         ORDER BY ORDINAL_POSITION",
    )
    .bind(database)
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    Ok(columns
        .into_iter()
        .map(|(name, ty)| {
            let class = match ty.as_str() {
                "bigint" | "int" | "tinyint" | "smallint" | "mediumint" => Class::Int,
                "datetime" | "timestamp" => Class::Time,
                _ => Class::Text,
            };
            (name, class)
        })
        .collect())
}

/// Inserts the rows of every data table of the MariaDB read model at `url` (after a rebuild:
/// the rebuild's final rows) raw into a freshly migrated database `<database>_raw` beside it,
/// the fastest plain way a client has without a file on the server: prepared multi-row INSERTs
/// of a fixed size, in one transaction. Like the rebuild, it drops the secondary indexes of
/// the empty tables first and builds them after the fill; the build is timed, reading the
/// rows is not.
pub async fn raw_insert_mariadb(url: &str) -> anyhow::Result<RawInsert> {
    let url = driver_url(url);
    let mut read = MySqlConnection::connect(&url).await?;
    let database: String = sqlx::query_scalar("SELECT CAST(DATABASE() AS CHAR)")
        .fetch_one(&mut read)
        .await?;
    let raw = format!("{database}_raw");
    sqlx::query(&format!("DROP DATABASE IF EXISTS `{raw}`"))
        .execute(&mut read)
        .await?;
    sqlx::query(&format!(
        "CREATE DATABASE `{raw}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut read)
    .await?;
    // The rows stream to this connection while the other one inserts: the server must not
    // give up writing to it meanwhile.
    sqlx::query("SET SESSION net_write_timeout = 3600")
        .execute(&mut read)
        .await?;
    let raw_url = url_with_database(&url, &raw);
    let target = ReadModel::connect(&raw_url).await?;
    target.migrate().await?;
    let indexes = target.defer_indexes().await?;

    let mut conn = MySqlConnection::connect(&raw_url).await?;
    sqlx::query(
        "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), time_zone = '+00:00'",
    )
    .execute(&mut conn)
    .await?;
    let mut rows = 0;
    let mut watch = Stopwatch::default();
    let mut tx = watch.time(conn.begin()).await?;
    for table in DATA_TABLES {
        let columns = stored_columns(&mut read, &database, table).await?;
        let select: Vec<String> = columns
            .iter()
            .map(|(c, class)| match class {
                Class::Text => format!("CAST(`{c}` AS CHAR)"),
                Class::Int => format!("CAST(`{c}` AS SIGNED)"),
                Class::Time => format!("`{c}`"),
            })
            .collect();
        let names: Vec<String> = columns.iter().map(|(c, _)| format!("`{c}`")).collect();
        let sql = format!("SELECT {} FROM `{table}`", select.join(", "));
        let mut stream = sqlx::query(&sql).fetch(&mut read);
        let mut page = Vec::new();
        loop {
            let row = stream.try_next().await?;
            if let Some(row) = &row {
                let values = columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, class))| raw_value(row, i, *class))
                    .collect::<Result<Vec<_>, _>>()?;
                page.push(values);
            }
            let full = page.len() >= usize::try_from(RAW_PAGE_ROWS).unwrap_or(usize::MAX);
            if (full || row.is_none()) && !page.is_empty() {
                let values = std::mem::take(&mut page);
                rows += values.len();
                watch
                    .time(insert_rows(&mut tx, table, &names, values))
                    .await?;
            }
            if row.is_none() {
                break;
            }
        }
    }
    watch.time(tx.commit()).await?;
    watch.time(target.create_indexes(&indexes)).await?;
    target.close().await;
    read.close().await?;
    Ok(RawInsert {
        rows,
        elapsed: watch.0,
    })
}

/// Inserts `rows` with prepared multi-row INSERTs of a fixed chunk size, so that one prepared
/// statement serves every full chunk.
async fn insert_rows(
    conn: &mut MySqlConnection,
    table: &str,
    columns: &[String],
    rows: Vec<Vec<RawValue>>,
) -> Result<(), sqlx::Error> {
    let chunk = (65_535 / columns.len().max(1)).min(512);
    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let part: Vec<Vec<RawValue>> = rows.by_ref().take(chunk).collect();
        let sql = format!(
            "INSERT INTO `{table}` ({}) VALUES {}",
            columns.join(", "),
            vec![tuple.as_str(); part.len()].join(", ")
        );
        let mut q: sqlx::query::Query<'_, MySql, MySqlArguments> = sqlx::query(&sql);
        for v in part.into_iter().flatten() {
            q = match v {
                RawValue::Int(i) => q.bind(i),
                RawValue::Text(s) => q.bind(s),
                RawValue::Time(t) => q.bind(t),
            };
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_and_mariadb_urls_are_recognised_and_read_by_the_mysql_driver() {
        assert!(is_mariadb_url("mysql://root@127.0.0.1:3306/test"));
        assert!(is_mariadb_url("mariadb://root@127.0.0.1:3306/test"));
        assert!(!is_mariadb_url("postgres://postgres@127.0.0.1/test"));
        assert_eq!(
            driver_url("mariadb://root@127.0.0.1:3306/test"),
            "mysql://root@127.0.0.1:3306/test"
        );
    }
}
