//! `ledger verify` on the embedded default (SQLite read model): identical after a projection,
//! and failing, with the table and the rows named, after a row is altered or deleted by hand.
use crate::verify_support;

use std::path::Path;

use serde_json::Value;
use sqlx::Connection;
use verify_support::{both, ledger, stdout, write_donations};

async fn by_hand(dir: &Path, sql: &str) {
    let url = format!("sqlite://{}", dir.join("readmodel.sqlite").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
    assert_eq!(done.rows_affected(), 1, "{sql}");
    conn.close().await.unwrap();
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(out)))
}

fn table<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {report}"))
}

fn no_scratch_left(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".verify-"), "scratch file left: {name}");
    }
}

#[tokio::test]
async fn verify_passes_on_a_healthy_store_after_catching_the_live_read_model_up() {
    let dir = tempfile::tempdir().unwrap();
    let world = write_donations(dir.path(), 4).await;
    let projected = ledger(dir.path(), &["project", "--once"]);
    assert!(projected.status.success(), "{}", both(&projected));
    // Two more events that the live read model has not seen: verify catches it up first.
    world
        .append(
            1,
            &ledger::domain::streams::export(1),
            100,
            (ledger::store::ActorKind::System, "export-batch"),
            ledger::proto::events::DonationExported {
                batch_id: "b2".into(),
                exported_at: None,
            },
        )
        .await;

    let out = ledger(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("read model identical to a rebuild"), "{text}");
    for name in ledger::projection::compare::compared_tables() {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    no_scratch_left(dir.path());

    let out = ledger(dir.path(), &["verify", "--json", "--page-size", "2"]);
    assert!(out.status.success(), "{}", both(&out));
    let report = json(&out);
    assert_eq!(report["identical"], true);
    assert_eq!(report["live_caught_up"], true);
    let donation = table(&report, "donation");
    assert_eq!(donation["live_rows"], 4);
    assert_eq!(donation["live_checksum"], donation["rebuilt_checksum"]);
    assert_eq!(table(&report, "donation_event")["live_rows"], 14);
    // The legacy view over identical tables is not read row by row.
    let legacy = table(&report, "legacy_spenden");
    assert_eq!(legacy["method"], "definition_and_inputs");
    assert_eq!(legacy["live_rows"], 4);
    // The scrubbed donation and the decrypted ones compare equal: the rebuild used the vault.
    let rm = ledger::projection::ReadModel::connect(&format!(
        "sqlite://{}",
        dir.path().join("readmodel.sqlite").display()
    ))
    .await
    .unwrap();
    assert_eq!(
        rm.row("donation", 1).await.unwrap().unwrap()["last_name"],
        verify_support::last_name(1)
    );
    no_scratch_left(dir.path());
}

#[tokio::test]
async fn verify_without_catch_up_compares_at_the_live_checkpoint_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let world = write_donations(dir.path(), 2).await;
    assert!(ledger(dir.path(), &["project", "--once"]).status.success());
    world
        .append(
            1,
            &ledger::domain::streams::export(1),
            100,
            (ledger::store::ActorKind::System, "export-batch"),
            ledger::proto::events::DonationExported {
                batch_id: "b2".into(),
                exported_at: None,
            },
        )
        .await;
    let out = ledger(dir.path(), &["verify", "--no-catch-up"]);
    assert!(out.status.success(), "{}", both(&out));
    let text = stdout(&out);
    assert!(
        text.contains("compared at the live checkpoint as it is, 1 positions behind"),
        "{text}"
    );
    let out = ledger(dir.path(), &["verify", "--no-catch-up", "--json"]);
    let report = json(&out);
    assert_eq!(report["live_events_applied"], 0);
    assert_ne!(report["position"], report["head_at_start"]);
}

#[tokio::test]
async fn verify_fails_naming_the_table_and_row_after_a_value_is_altered_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    write_donations(dir.path(), 4).await;
    assert!(ledger(dir.path(), &["project", "--once"]).status.success());
    by_hand(
        dir.path(),
        "UPDATE donation SET amount_cents = 1 WHERE id = 3",
    )
    .await;

    let out = ledger(dir.path(), &["verify"]);
    assert!(!out.status.success(), "{}", both(&out));
    let text = stdout(&out);
    assert!(text.contains("READ MODEL DIFFERS"), "{text}");
    assert!(
        text.contains("id=3  amount_cents: live \"1\", rebuilt \"3000\""),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("differs from its rebuild in: donation, legacy_spenden"),
        "{stderr}"
    );
    no_scratch_left(dir.path());

    let out = ledger(dir.path(), &["verify", "--json"]);
    assert!(!out.status.success());
    let report = json(&out);
    assert_eq!(report["identical"], false);
    let donation = table(&report, "donation");
    assert_eq!(donation["differing_rows"], 1);
    assert_ne!(donation["live_checksum"], donation["rebuilt_checksum"]);
    let d = &donation["differences"][0];
    assert_eq!(
        (
            &d["key"],
            &d["kind"],
            &d["column"],
            &d["live"],
            &d["rebuilt"]
        ),
        (
            &Value::from("id=3"),
            &Value::from("changed"),
            &Value::from("amount_cents"),
            &Value::from("1"),
            &Value::from("3000")
        )
    );
    assert_eq!(table(&report, "legacy_spenden")["differing_rows"], 1);
    assert_eq!(table(&report, "legacy_spenden")["method"], "rows");
    assert_eq!(table(&report, "payment")["differing_rows"], 0);
}

#[tokio::test]
async fn verify_fails_naming_the_table_and_row_after_a_row_is_deleted_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    write_donations(dir.path(), 4).await;
    assert!(ledger(dir.path(), &["project", "--once"]).status.success());
    by_hand(dir.path(), "DELETE FROM payment WHERE id = 102").await;

    let out = ledger(dir.path(), &["verify"]);
    assert!(!out.status.success(), "{}", both(&out));
    let text = stdout(&out);
    assert!(
        text.contains("id=102  missing from the live read model"),
        "{text}"
    );
    let report = json(&ledger(
        dir.path(),
        &["verify", "--json", "--page-size", "1"],
    ));
    let payment = table(&report, "payment");
    assert_eq!(
        (&payment["live_rows"], &payment["rebuilt_rows"]),
        (&Value::from(3), &Value::from(4))
    );
    assert_eq!(payment["differences"][0]["kind"], "only_rebuilt");
    assert_eq!(payment["differences"][0]["key"], "id=102");
    no_scratch_left(dir.path());
}
