//! `ledger migrate`: applies the migrations of the event log, key store and read model, and
//! `--list` shows every one of them (the files under `migrations/`), applied or pending,
//! without applying any.
use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;

/// Runs the built `ledger` on `data_dir` with `args`; its stdout (it must succeed).
pub(crate) fn ledger(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::cargo_bin("ledger")
        .unwrap()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("LEDGER_READ_MODEL_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ledger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The versions of the migration files in `migrations/<dir>`, oldest first.
fn versions_in(dir: &str) -> Vec<i64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let mut v: Vec<i64> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.split('_').next().and_then(|v| v.parse().ok()))
        .collect();
    v.sort_unstable();
    v
}

/// `migrate --list --json` as (store, versions, applied flags).
fn listed(data_dir: &Path, extra: &[&str]) -> Vec<(String, Vec<i64>, Vec<bool>)> {
    let mut args = extra.to_vec();
    args.extend(["migrate", "--list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&ledger(data_dir, &args)).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|store| {
            let migrations = store["migrations"].as_array().unwrap();
            (
                store["store"].as_str().unwrap().to_owned(),
                migrations
                    .iter()
                    .map(|m| m["version"].as_i64().unwrap())
                    .collect(),
                migrations
                    .iter()
                    .map(|m| m["applied"].as_bool().unwrap())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn migrate_applies_every_store_and_list_shows_applied_and_pending_without_applying() {
    let dir = tempfile::tempdir().unwrap();
    let text = ledger(dir.path(), &["migrate"]);
    assert!(text.contains("event log ("), "{text}");
    let entries: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(!entries.is_empty(), "{text}");
    assert!(entries.iter().all(|l| l.contains(" applied ")), "{text}");

    let stores = listed(dir.path(), &[]);
    let expected = [
        ("event log", versions_in("sqlite/eventlog")),
        ("key store", versions_in("sqlite/keys")),
        ("read model", versions_in("sqlite/readmodel")),
    ];
    assert_eq!(stores.len(), 3);
    for ((store, versions, applied), (name, files)) in stores.iter().zip(&expected) {
        assert_eq!(store, name);
        assert_eq!(versions, files, "{store}: one entry per migration file");
        assert!(applied.iter().all(|a| *a), "{store}: all applied");
    }

    // A read model nobody migrated yet: listed as pending, and listing applies nothing.
    let other = format!("sqlite://{}", dir.path().join("other.sqlite").display());
    let flags = ["--read-model-url", other.as_str()];
    for _ in 0..2 {
        let (_, versions, applied) = listed(dir.path(), &flags).pop().unwrap();
        assert_eq!(versions, versions_in("sqlite/readmodel"));
        assert!(applied.iter().all(|a| !a), "pending: {applied:?}");
    }
    let text = ledger(dir.path(), &[&flags[..], &["migrate"][..]].concat());
    let read_model = text.lines().find(|l| l.starts_with("read model")).unwrap();
    assert!(read_model.ends_with(" 0 pending"), "{text}");
    let (_, _, applied) = listed(dir.path(), &flags).pop().unwrap();
    assert!(applied.iter().all(|a| *a));
}
