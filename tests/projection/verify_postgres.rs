//! `ledger verify` against a real PostgreSQL read model (`--read-model-url`): identical after
//! a projection, failing with the table and row named after a hand edit, and the scratch schema
//! dropped afterwards. Skips loudly when PostgreSQL is unreachable (fails under `CI=true`).
use crate::support;
use crate::verify_support;

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

/// Runs `ledger` on the data directory `dir` with its read model at `url`.
fn on_postgres(dir: &std::path::Path, url: &str, args: &[&str]) -> std::process::Output {
    ledger(dir, &[&["--read-model-url", url][..], args].concat())
}

/// Projects the log into the read model at `url`, then checks `ledger verify` finds it
/// identical to a rebuild.
fn project_then_verify_identical(dir: &std::path::Path, url: &str) {
    let projected = on_postgres(dir, url, &["project", "--once"]);
    assert!(projected.status.success(), "{}", both(&projected));
    let out = on_postgres(dir, url, &["verify"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(stdout(&out).contains("read model identical to a rebuild"));
}

#[tokio::test]
async fn verify_on_postgres_passes_when_healthy_and_names_the_row_after_a_hand_edit() {
    let Some(db) = support::postgres::fresh_database("verify").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_donations(dir.path(), 4).await;
    let run = |args: &[&str]| on_postgres(dir.path(), &db.url, args);

    project_then_verify_identical(dir.path(), &db.url);
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

/// A rebuild into PostgreSQL writes its rows with `COPY` (text format), the live projector with
/// bound arrays: text that `COPY` must escape (tab, newline and carriage return, which the
/// admission rule lets into multi-line columns such as the comment only; backslash and a
/// literal `\N`, allowed anywhere) and non-ASCII text come out of both the same, and exactly
/// as sent.
#[tokio::test]
async fn a_rebuild_keeps_text_that_copy_must_escape() {
    use ledger::domain::streams;
    use ledger::proto::events as ev;
    use ledger::store::ActorKind;

    let Some(db) = support::postgres::fresh_database("verify").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let world = write_donations(dir.path(), 1).await;
    let street = "Hof 2\\3 \\N Links – Größe 🌻";
    let comment = "Hof\t2\\3 \\N\r\nLinks – Größe 🌻\n";
    let actor = "form\\tv2\\beta";
    let created = ev::DonationCreated {
        donation_id: 5,
        created_at: Some(ledger::domain::types::to_timestamp(verify_support::at(50))),
        amount: Some(ev::Money {
            cents: 2500,
            currency: "EUR".into(),
        }),
        payment_id: 105,
        payment_method: ev::PaymentMethod::DirectDebit as i32,
        donor: Some(ev::DonorPublic {
            kind: ev::DonorKind::Person as i32,
            salutation: "Frau".into(),
            ..Default::default()
        }),
        personal: Some(ev::PersonalData {
            first_name: "Tab\\tby".into(),
            last_name: "Back\\slash".into(),
            street: street.into(),
            city: "\\N".into(),
            ..Default::default()
        }),
        comment: Some(ev::Comment {
            is_public: true,
            public_text: comment.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let form = (ActorKind::Frontend, actor);
    world
        .append(5, &streams::donation(5), 50, form, created)
        .await;
    let initiated = ev::PaymentInitiated {
        payment_id: 105,
        donation_id: 5,
        method: ev::PaymentMethod::DirectDebit as i32,
        amount: Some(ev::Money {
            cents: 2500,
            currency: "EUR".into(),
        }),
        ..Default::default()
    };
    world
        .append(5, &streams::payment(105), 51, form, initiated)
        .await;
    drop(world);

    project_then_verify_identical(dir.path(), &db.url);

    let rebuilt = on_postgres(dir.path(), &db.url, &["rebuild"]);
    assert!(rebuilt.status.success(), "{}", both(&rebuilt));
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let row: (String, String, String, String, String) = sqlx::query_as(
        "SELECT street, city, first_name, last_name, comment FROM readmodel.donation WHERE id = 5",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            street.to_owned(),
            "\\N".to_owned(),
            "Tab\\tby".to_owned(),
            "Back\\slash".to_owned(),
            comment.to_owned()
        )
    );
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT actor_id FROM readmodel.donation_event WHERE donation_id = 5",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(actors, [actor]);
    conn.close().await.unwrap();
    drop(db);
}
