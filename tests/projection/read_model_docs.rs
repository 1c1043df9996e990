//! `docs/read-model.md` cannot rot: on SQLite, PostgreSQL and MariaDB every ```sql block meant
//! for the dialect runs against a real read model filled by the projector (the history queries
//! find the donation's events), and every table and column the migrations create is
//! documented.

use crate::projection_support;

use std::collections::BTreeSet;
use std::str::FromStr;

use ledger::projection::Projector;
use ledger::proto::events as ev;
use projection_support::*;
use sqlx::Row;

read_model_conformance!(every_query_of_the_read_model_docs_runs_and_every_column_is_documented);

/// The document.
fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/read-model.md");
    std::fs::read_to_string(path).unwrap()
}

/// The ```sql blocks: the dialects named after `sql` (none: every dialect) and the text.
fn sql_blocks(doc: &str) -> Vec<(Vec<String>, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(Vec<String>, String)> = None;
    for line in doc.lines() {
        match current.take() {
            None => {
                if let Some(info) = line.strip_prefix("```sql") {
                    let dialects = info.split_whitespace().map(str::to_owned).collect();
                    current = Some((dialects, String::new()));
                }
            }
            Some(block) if line.starts_with("```") => blocks.push(block),
            Some((dialects, mut text)) => {
                text.push_str(line);
                text.push('\n');
                current = Some((dialects, text));
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```sql block");
    blocks
}

/// A connection to the read model of `env` in its own schema or database.
pub(crate) enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    Mariadb(sqlx::MySqlConnection),
}

impl Conn {
    pub(crate) async fn open(env: &Env) -> Self {
        use sqlx::ConnectOptions;
        match env.db {
            Db::Sqlite => Conn::Sqlite(
                sqlx::sqlite::SqliteConnectOptions::from_str(&env.url)
                    .unwrap()
                    .connect()
                    .await
                    .unwrap(),
            ),
            Db::Postgres => Conn::Postgres(
                sqlx::postgres::PgConnectOptions::from_str(&env.url)
                    .unwrap()
                    .options([("search_path", "readmodel")])
                    .connect()
                    .await
                    .unwrap(),
            ),
            Db::Mariadb => Conn::Mariadb(
                sqlx::mysql::MySqlConnectOptions::from_str(&env.url)
                    .unwrap()
                    .connect()
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Runs `sql` as written (one statement, unprepared); the rows' first columns as text
    /// when `text_columns` is set, else empty strings, one per row.
    pub(crate) async fn rows(
        &mut self,
        sql: &str,
        text_columns: usize,
    ) -> Result<Vec<Vec<String>>, String> {
        let strings = |row_count: usize, get: &dyn Fn(usize, usize) -> String| {
            (0..row_count)
                .map(|r| (0..text_columns).map(|c| get(r, c)).collect())
                .collect()
        };
        match self {
            Conn::Sqlite(c) => {
                let rows = sqlx::raw_sql(sql)
                    .fetch_all(c)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(strings(rows.len(), &|r, c| rows[r].get::<String, _>(c)))
            }
            Conn::Postgres(c) => {
                let rows = sqlx::raw_sql(sql)
                    .fetch_all(c)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(strings(rows.len(), &|r, c| rows[r].get::<String, _>(c)))
            }
            Conn::Mariadb(c) => {
                let rows = sqlx::raw_sql(sql)
                    .fetch_all(c)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(strings(rows.len(), &|r, c| rows[r].get::<String, _>(c)))
            }
        }
    }
}

async fn every_query_of_the_read_model_docs_runs_and_every_column_is_documented(env: Env) {
    // Donations 1 to 60 with every kind of payment, some booked, cancelled, moderated, exported.
    workload(&env, 1, 60, 23).await;
    // Membership application 1, flagged by a back-office user (the change-log queries).
    env.append("membership-1", membership_applied(1)).await;
    env.append_as(
        "membership_moderation-1",
        ev::ManuallyFlagged {
            note: "check".into(),
        },
        foc("alice"),
    )
    .await;
    // Address change 1 of donation 1, used and exported (the address-change queries).
    address_change_life(&env, 1).await;
    let rm = env.read_model().await;
    Projector::with_config(env.log(), rm.clone(), config(500))
        .run_once()
        .await
        .unwrap();
    rm.close().await;

    let doc = doc();
    let dialect = match env.db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
        Db::Mariadb => "mariadb",
    };
    let blocks: Vec<String> = sql_blocks(&doc)
        .into_iter()
        .filter(|(dialects, _)| dialects.is_empty() || dialects.iter().any(|d| d == dialect))
        .map(|(_, sql)| sql)
        .collect();
    assert_eq!(blocks.len(), 16, "every question answered for {dialect}");
    let mut conn = Conn::open(&env).await;
    for sql in &blocks {
        let rows = conn
            .rows(sql, 0)
            .await
            .unwrap_or_else(|e| panic!("on {dialect}: {e}\n{sql}"));
        if sql.contains("WHERE donation_id = 1") || sql.contains("WHERE d.id = 1") {
            assert!(!rows.is_empty(), "donation 1 has a history:\n{sql}");
        }
        if sql.contains("WHERE membership_id = 1") || sql.contains("actor_id = 'alice'") {
            assert!(!rows.is_empty(), "application 1 has a history:\n{sql}");
        }
        if sql.contains("WHERE address_change_id = 1") {
            assert!(!rows.is_empty(), "address change 1 has a history:\n{sql}");
        }
    }

    // Every column of every table, as the dialect's catalogue lists it.
    let columns_sql = match env.db {
        Db::Sqlite => {
            "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' AND m.name <> '_sqlx_migrations'"
        }
        Db::Postgres => {
            "SELECT c.table_name::TEXT, c.column_name::TEXT FROM information_schema.columns AS c \
             JOIN information_schema.tables AS t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = 'readmodel' AND t.table_type = 'BASE TABLE' \
               AND c.table_name <> '_sqlx_migrations'"
        }
        Db::Mariadb => {
            "SELECT CAST(c.table_name AS CHAR), CAST(c.column_name AS CHAR) \
             FROM information_schema.columns AS c \
             JOIN information_schema.tables AS t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' \
               AND c.table_name <> '_sqlx_migrations'"
        }
    };
    let columns = conn.rows(columns_sql, 2).await.unwrap();
    let tables: BTreeSet<&str> = columns.iter().map(|r| r[0].as_str()).collect();
    assert!(tables.len() >= 9, "{tables:?}");
    let mut missing = Vec::new();
    for table in &tables {
        // The table's section runs from its heading to the next heading.
        let heading = format!("### `{table}`");
        let Some(start) = doc.find(&heading) else {
            missing.push(table.to_string());
            continue;
        };
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n#").unwrap_or(section.len())];
        for row in columns.iter().filter(|r| r[0] == *table) {
            if !section.contains(&format!("| `{}` |", row[1])) {
                missing.push(format!("{table}.{}", row[1]));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented on {dialect}: {missing:?}");
}

/// A confirmed application of 10 EUR a month by direct debit, without personal data.
fn membership_applied(id: u64) -> ev::MembershipApplied {
    ev::MembershipApplied {
        membership_id: id,
        created_at: Some(ts(base_time())),
        applicant_kind: ev::ApplicantKind::Person as i32,
        membership_type: ev::MembershipType::Sustaining as i32,
        fee: Some(ev::Money {
            cents: 1000,
            currency: "EUR".into(),
        }),
        interval_months: 1,
        payment_id: 9000 + id,
        payment_method: ev::PaymentMethod::DirectDebit as i32,
        confirmed: true,
        ..Default::default()
    }
}
