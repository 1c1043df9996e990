//! `ledger verify` against a real PostgreSQL read model (`--read-model-url`): identical after
//! a projection, failing with the table and row named after a hand edit, and the scratch schema
//! dropped afterwards. Skips loudly when PostgreSQL is unreachable (fails under `CI=true`).
mod support;
mod verify_support;

use sqlx::Connection;
use verify_support::{both, ledger, stdout, write_donations};

async fn scratch_schemas(url: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT schema_name::TEXT FROM information_schema.schemata WHERE schema_name LIKE '%verify%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    names
}

#[tokio::test]
async fn verify_on_postgres_passes_when_healthy_and_names_the_row_after_a_hand_edit() {
    let Some(db) = support::postgres::fresh_database("verify").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_donations(dir.path(), 4).await;
    let url_flag = ["--read-model-url", db.url.as_str()];
    let run = |args: &[&str]| ledger(dir.path(), &[&url_flag[..], args].concat());

    let projected = run(&["project", "--once"]);
    assert!(projected.status.success(), "{}", both(&projected));
    let out = run(&["verify"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(stdout(&out).contains("read model identical to a rebuild"));
    assert!(scratch_schemas(&db.url).await.is_empty());

    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE readmodel.donation SET amount_cents = 1 WHERE id = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM readmodel.payment WHERE id = 102")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let out = run(&["verify", "--page-size", "1"]);
    assert!(!out.status.success(), "{}", both(&out));
    let text = stdout(&out);
    assert!(
        text.contains("id=3  amount_cents: live \"1\", rebuilt \"3000\""),
        "{text}"
    );
    assert!(
        text.contains("id=102  missing from the live read model"),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("donation, payment, legacy_spenden"),
        "{stderr}"
    );
    assert!(scratch_schemas(&db.url).await.is_empty());
    drop(db);
}
