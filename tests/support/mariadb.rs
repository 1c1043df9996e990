//! A fresh MariaDB database per test on the machine's real server. When the server is not
//! reachable the test says so loudly and skips, except under `CI=true`, where it fails.
use sqlx::{Connection, MySqlConnection};

/// The admin URL, from `LEDGER_TEST_MARIADB_URL` (a user that may create and drop databases).
pub fn admin_url() -> String {
    std::env::var("LEDGER_TEST_MARIADB_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into())
}

/// `url` with its database replaced by `database` (a query string is kept).
fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let mut out = match base[authority..].find('/') {
        Some(slash) => format!("{}/{}", &base[..authority + slash], database),
        None => format!("{base}/{database}"),
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database created for one test, dropped with every database named `<it>_…` beside it
/// (scratch databases of a rebuild or verify, a test's second read model) when the guard
/// goes, even after a panic.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = admin_url();
        // Its own thread and runtime: a drop may run inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok(mut conn) = MySqlConnection::connect(&admin).await else {
                    return;
                };
                let beside: Vec<String> = sqlx::query_scalar(
                    "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
                     WHERE SCHEMA_NAME LIKE CONCAT(?, '\\_%')",
                )
                .bind(&name)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
                for database in beside.iter().chain([&name]) {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{database}`"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Creates a uniquely named database (`utf8mb4`, `utf8mb4_unicode_ci`), or returns `None`
/// (after a loud message) when the server is unreachable outside CI.
pub async fn fresh_database(tag: &str) -> Option<TestDatabase> {
    let admin = admin_url();
    let mut conn = match MySqlConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            super::ci::skip_or_fail(&format!(
                "MariaDB not reachable at {admin} ({e}); set LEDGER_TEST_MARIADB_URL"
            ));
            return None;
        }
    };
    // Short: MariaDB allows 64 characters, and the read model adds `_verify` for its scratch.
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("lt_{tag}_{}", &id[..20]);
    sqlx::query(&format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    Some(TestDatabase {
        url: url_with_database(&admin, &name),
        name,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_of_a_url_is_replaced_and_its_query_kept() {
        assert_eq!(
            super::url_with_database("mysql://root@127.0.0.1:3306/mysql?ssl-mode=disabled", "x"),
            "mysql://root@127.0.0.1:3306/x?ssl-mode=disabled"
        );
        assert_eq!(
            super::url_with_database("mysql://root@127.0.0.1:3306", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
    }
}
