//! A fresh PostgreSQL database per test on the machine's real server. When the server is not
//! reachable the test says so loudly and skips, except under `CI=true`, where it fails.
use sqlx::{Connection, PgConnection};

/// The admin URL, from `LEDGER_TEST_POSTGRES_URL`.
pub fn admin_url() -> String {
    std::env::var("LEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database created for one test.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
}

impl TestDatabase {
    /// Drops the database (terminating leftover connections).
    pub async fn drop(self) {
        if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// Creates a uniquely named database, or returns `None` (after a loud message) when the server
/// is unreachable outside CI.
pub async fn fresh_database(tag: &str) -> Option<TestDatabase> {
    let admin = admin_url();
    let mut conn = match PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL not reachable at {admin} under CI=true: {e}");
            }
            eprintln!("\n*** SKIPPED: PostgreSQL not reachable at {admin}: {e} ***\n");
            return None;
        }
    };
    let name = format!("ledger_test_{tag}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin.clone());
    Some(TestDatabase {
        url: format!("{base}/{name}"),
        name,
    })
}
