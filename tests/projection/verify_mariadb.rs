//! `ledger verify` and `ledger rebuild` against a real MariaDB read model
//! (`--read-model-url mysql://…`): identical after a projection, failing with the table and row
//! named after a hand edit, the scratch databases dropped afterwards; a rebuild that switches
//! its tables in keeps text byte for byte where `utf8mb4_unicode_ci` would call two values
//! equal. Skips loudly when MariaDB is unreachable (fails under `CI=true`).
use crate::support;
use crate::verify_support;

use sqlx::Connection;
use verify_support::{both, ledger, stdout, write_donations};

/// The databases beside the test's (`<name>_new`, `<name>_old`, `<name>_verify`).
async fn scratch_databases(url: &str, name: &str) -> Vec<String> {
    let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME LIKE CONCAT(?, '\\_%')",
    )
    .bind(name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    names
}

/// Runs `ledger` on the data directory `dir` with its read model at `url`.
fn on_mariadb(dir: &std::path::Path, url: &str, args: &[&str]) -> std::process::Output {
    ledger(dir, &[&["--read-model-url", url][..], args].concat())
}

/// Projects the log into the read model at `url`, then checks `ledger verify` finds it
/// identical to a rebuild.
fn project_then_verify_identical(dir: &std::path::Path, url: &str) {
    let projected = on_mariadb(dir, url, &["project", "--once"]);
    assert!(projected.status.success(), "{}", both(&projected));
    let out = on_mariadb(dir, url, &["verify"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(stdout(&out).contains("read model identical to a rebuild"));
}

#[tokio::test]
async fn verify_on_mariadb_passes_when_healthy_and_names_the_row_after_a_hand_edit() {
    let Some(db) = support::mariadb::fresh_database("verify").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_donations(dir.path(), 4).await;
    let run = |args: &[&str]| on_mariadb(dir.path(), &db.url, args);

    project_then_verify_identical(dir.path(), &db.url);
    assert!(scratch_databases(&db.url, &db.name).await.is_empty());

    let mut conn = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE donation SET amount_cents = 1 WHERE id = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM payment WHERE id = 102")
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
    assert!(scratch_databases(&db.url, &db.name).await.is_empty());
    drop(db);
}

/// The `donation_tracking` pairs in id order.
async fn tracking_pairs(conn: &mut sqlx::MySqlConnection) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT CAST(campaign AS CHAR), CAST(keyword AS CHAR) FROM donation_tracking ORDER BY id",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

/// Tracking pairs that `utf8mb4_unicode_ci` compares equal (`ß` and `ss`, a trailing space)
/// stay two pairs, and a rebuild switched in with `RENAME TABLE` holds exactly the rows of the
/// live projection, text byte for byte, read through the legacy view too.
#[tokio::test]
async fn a_rebuild_on_mariadb_switches_in_tables_that_keep_text_byte_for_byte() {
    use ledger::domain::streams;
    use ledger::proto::events as ev;
    use ledger::store::ActorKind;

    let Some(db) = support::mariadb::fresh_database("rebuild").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let world = write_donations(dir.path(), 1).await;
    let street = "Hof 2\\3 \\N Links – Größe 🌻";
    let form = (ActorKind::Frontend, "form");
    for (id, campaign, keyword) in [(5u64, "Größe", "Gelb "), (6, "grosse", "gelb")] {
        let created = ev::DonationCreated {
            donation_id: id,
            created_at: Some(ledger::domain::types::to_timestamp(verify_support::at(50))),
            amount: Some(ev::Money {
                cents: 2500,
                currency: "EUR".into(),
            }),
            payment_id: 100 + id,
            payment_method: ev::PaymentMethod::DirectDebit as i32,
            donor: Some(ev::DonorPublic {
                kind: ev::DonorKind::Person as i32,
                salutation: "Frau".into(),
                ..Default::default()
            }),
            personal: Some(ev::PersonalData {
                first_name: "Zoë".into(),
                last_name: "Ångström".into(),
                street: street.into(),
                ..Default::default()
            }),
            tracking: Some(ev::Tracking {
                campaign: campaign.into(),
                keyword: keyword.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        world
            .append(id, &streams::donation(id), 50, form, created)
            .await;
        let initiated = ev::PaymentInitiated {
            payment_id: 100 + id,
            donation_id: id,
            method: ev::PaymentMethod::DirectDebit as i32,
            amount: Some(ev::Money {
                cents: 2500,
                currency: "EUR".into(),
            }),
            ..Default::default()
        };
        world
            .append(id, &streams::payment(100 + id), 51, form, initiated)
            .await;
    }
    drop(world);

    project_then_verify_identical(dir.path(), &db.url);
    let mut conn = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
    let before = tracking_pairs(&mut conn).await;
    assert!(
        before.contains(&("größe".to_owned(), "gelb ".to_owned())),
        "{before:?}"
    );
    assert!(
        before.contains(&("grosse".to_owned(), "gelb".to_owned())),
        "{before:?}"
    );

    let rebuilt = on_mariadb(dir.path(), &db.url, &["rebuild"]);
    assert!(rebuilt.status.success(), "{}", both(&rebuilt));
    assert!(scratch_databases(&db.url, &db.name).await.is_empty());
    assert_eq!(tracking_pairs(&mut conn).await, before);
    let row: (String, String, String, String) = sqlx::query_as(
        "SELECT d.street, d.first_name, s.name, s.status \
         FROM donation AS d JOIN legacy_spenden AS s ON s.id = d.id WHERE d.id = 5",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            street.to_owned(),
            "Zoë".to_owned(),
            "Zoë Ångström".to_owned(),
            "N".to_owned()
        )
    );
    conn.close().await.unwrap();
    let out = on_mariadb(dir.path(), &db.url, &["verify"]);
    assert!(out.status.success(), "{}", both(&out));
    drop(db);
}
