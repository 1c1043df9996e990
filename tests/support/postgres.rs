//! A fresh PostgreSQL database per test on the machine's real server. When the server is not
//! reachable the test says so loudly and skips, except under `CI=true`, where it fails.
use sqlx::{Connection, PgConnection};

/// The admin URL, from `LEDGER_TEST_POSTGRES_URL` (a database the tests may create databases
/// from).
pub fn admin_url() -> String {
    std::env::var("LEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its database replaced by `database` (a query string is kept).
fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let slash = base.rfind('/').expect("URL has a path");
    let mut out = format!("{}/{}", &base[..slash], database);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database created for one test, dropped (terminating leftover connections) when the
/// guard goes, even after a panic.
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
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// Creates a uniquely named database, or returns `None` (after a loud message) when the server
/// is unreachable outside CI.
pub async fn fresh_database(tag: &str) -> Option<TestDatabase> {
    let admin = admin_url();
    let mut conn = match PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            super::ci::skip_or_fail(&format!(
                "PostgreSQL not reachable at {admin} ({e}); set LEDGER_TEST_POSTGRES_URL"
            ));
            return None;
        }
    };
    let name = format!("ledger_test_{tag}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    Some(TestDatabase {
        url: url_with_database(&admin, &name),
        name,
    })
}
