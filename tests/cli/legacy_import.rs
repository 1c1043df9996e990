//! `ledger import legacy` on the built binary against the machine's real MariaDB: a fixture in
//! every legacy state round-trips (import, project into a MariaDB read model, `--check` finds
//! no difference, the report names every malformed row), personal data arrives sealed, a rerun
//! appends nothing, and an import killed with SIGKILL ten times ends as an uninterrupted one;
//! the same for the membership applications of `request` (every status into `legacy_request`,
//! malformed rows skipped with nothing of them appended, scrubbed rows without personal data).
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use assert_cmd::Command;
use ledger::legacy::fixture::{self, FixtureSummary, MembershipScenario, Scenario};
use ledger::legacy::import::{read_report, REQUEST_STREAM, STREAM};
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Direction, EventLog, StreamStart};
use rand::{Rng, SeedableRng};

use crate::support;

fn ledger(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("ledger").unwrap();
    cmd.env("LEDGER_DATA_DIR", dir)
        .env_remove("RUST_LOG")
        .env_remove("LEDGER_READ_MODEL_URL")
        .env_remove("LEDGER_EVENT_LOG_URL");
    cmd
}

/// A fresh source database filled with `rows` fixture donations.
async fn legacy_source(
    tag: &str,
    rows: u64,
    seed: u64,
) -> Option<(support::mariadb::TestDatabase, FixtureSummary)> {
    legacy_source_with(tag, rows, None, seed).await
}

/// A fresh source database with `rows` fixture donations and at least `memberships`
/// membership applications.
async fn legacy_source_with(
    tag: &str,
    rows: u64,
    memberships: Option<u64>,
    seed: u64,
) -> Option<(support::mariadb::TestDatabase, FixtureSummary)> {
    let db = support::mariadb::fresh_database(tag).await?;
    let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
    let summary = fixture::generate_with(&pool, rows, memberships, seed)
        .await
        .unwrap();
    pool.close().await;
    Some((db, summary))
}

/// Every stream of a log with its events' ids and types in revision order.
async fn streams(dir: &Path) -> BTreeMap<String, Vec<(uuid::Uuid, String)>> {
    let log = SqliteEventLog::open(&dir.join("events.sqlite"))
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<(uuid::Uuid, String)>> = BTreeMap::new();
    let mut from = 0;
    loop {
        let page = log.read_all(from, 4096).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for e in page {
            out.entry(e.stream).or_default().push((e.id, e.event_type));
        }
    }
    out
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn a_fixture_in_every_legacy_state_round_trips_and_the_report_names_every_malformed_row() {
    let Some((source, summary)) = legacy_source("legacy_rt", 600, 11).await else {
        return;
    };
    let Some(read_model) = support::mariadb::fresh_database("legacy_rm").await else {
        return;
    };
    let counts = summary.counts();
    for s in Scenario::ALL {
        assert!(counts.contains_key(&s), "the fixture lacks {s:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let imported = ledger(dir.path())
        .args([
            "import",
            "legacy",
            "--from",
            &source.url,
            "--batch-size",
            "64",
        ])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&imported.get_output().stdout).to_string();
    let err = String::from_utf8_lossy(&imported.get_output().stderr).to_string();
    assert!(out.contains("600 rows read"), "{out}");
    assert!(
        !err.contains("rows/s"),
        "no progress line without a terminal: {err}"
    );

    // The report names every malformed row by id and class, every payment without a donation,
    // and every row imported by a rule.
    let report = csv_rows(&dir.path().join("legacy-import-report.csv"));
    let noted: BTreeMap<(String, u64), (String, String)> = report
        .iter()
        .map(|r| {
            (
                (r[0].clone(), r[1].parse().unwrap()),
                (r[2].clone(), r[3].clone()),
            )
        })
        .collect();
    for (id, scenario) in &summary.scenarios {
        let got = noted.get(&("spenden".to_owned(), *id));
        match scenario.expected_note() {
            Some((class, imported)) => {
                let outcome = if imported { "imported" } else { "skipped" };
                assert_eq!(
                    got,
                    Some(&(class.to_owned(), outcome.to_owned())),
                    "row {id} ({scenario:?})"
                );
            }
            None => assert_eq!(got, None, "row {id} ({scenario:?}) needs no note"),
        }
    }
    for p in &summary.orphan_payments {
        assert_eq!(
            noted.get(&("payment".to_owned(), *p)).map(|n| n.0.as_str()),
            Some("payment_without_donation"),
            "payment {p}"
        );
    }
    let malformed = summary.malformed().len() + summary.orphan_payments.len();
    assert_eq!(
        report
            .iter()
            .filter(|r| r[3] == "skipped" && r[0] != "request")
            .count(),
        malformed
    );

    // A rerun appends nothing.
    let before = streams(dir.path()).await;
    ledger(dir.path())
        .args(["import", "legacy", "--from", &source.url])
        .assert()
        .success();
    assert_eq!(streams(dir.path()).await, before, "a rerun appended events");

    // Projected into a MariaDB read model, the legacy view matches the source row for row.
    ledger(dir.path())
        .args(["--read-model-url", &read_model.url, "project", "--once"])
        .assert()
        .success();
    let checked = ledger(dir.path())
        .args([
            "--read-model-url",
            &read_model.url,
            "import",
            "legacy",
            "--check",
            "--from",
            &source.url,
        ])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&checked.get_output().stdout).to_string();
    assert!(out.contains("600 source rows, 0 differences"), "{out}");

    // A change in the source is a difference the check names, and it exits non-zero.
    let pool = sqlx::MySqlPool::connect(&source.url).await.unwrap();
    let first_bez = summary
        .scenarios
        .iter()
        .find(|(_, s)| **s == Scenario::DirectDebit)
        .map(|(id, _)| *id)
        .unwrap();
    sqlx::query("UPDATE spenden SET status = 'B', betrag = '99.00' WHERE id = ?")
        .bind(first_bez)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE payment SET amount = 9900 WHERE id = (SELECT payment_id FROM spenden WHERE id = ?)",
    )
    .bind(first_bez)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let failed = ledger(dir.path())
        .args([
            "--read-model-url",
            &read_model.url,
            "import",
            "legacy",
            "--check",
            "--from",
            &source.url,
        ])
        .assert()
        .failure();
    let out = String::from_utf8_lossy(&failed.get_output().stdout).to_string();
    assert!(out.contains("2 differences"), "{out}");
    assert!(
        out.contains(&format!(
            "status: 1 (e.g. {first_bez}: source \"B\", ledger \"N\")"
        )),
        "{out}"
    );
    assert!(out.contains("amount: 1"), "{out}");
}

#[tokio::test]
async fn personal_data_arrives_sealed_and_scrubbed_rows_get_no_key() {
    let Some((source, summary)) = legacy_source("legacy_pd", 120, 3).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    ledger(dir.path())
        .args(["import", "legacy", "--from", &source.url])
        .assert()
        .success();
    let log = std::fs::read(dir.path().join("events.sqlite")).unwrap();
    let pool = sqlx::MySqlPool::connect(&source.url).await.unwrap();
    let emails: Vec<String> = sqlx::query_scalar(
        "SELECT email FROM spenden WHERE is_scrubbed = 0 AND email LIKE '%@example.org'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert!(!emails.is_empty());
    for email in &emails {
        assert!(
            !support::contains(&log, email.as_bytes()),
            "{email} is in the log in clear"
        );
    }
    let keys = ledger::privacy::KeyStore::open_sqlite(&dir.path().join("keys.sqlite"))
        .await
        .unwrap();
    let scrubbed: Vec<u64> = summary
        .scenarios
        .iter()
        .filter(|(_, s)| **s == Scenario::ExportedScrubbed)
        .map(|(id, _)| *id)
        .collect();
    let person: Vec<u64> = summary
        .scenarios
        .iter()
        .filter(|(_, s)| **s == Scenario::DirectDebit)
        .map(|(id, _)| *id)
        .collect();
    assert!(keys.get_many(&scrubbed).await.unwrap().is_empty());
    assert_eq!(keys.get_many(&person).await.unwrap().len(), person.len());
    // The intake will not hand out an imported id again.
    let current = ledger(dir.path())
        .args(["sequence", "current", "donation"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&current.get_output().stdout).to_string();
    assert_eq!(out.trim(), summary.max_id.to_string());
}

#[tokio::test]
async fn every_membership_status_round_trips_into_legacy_request_and_malformed_rows_append_nothing()
{
    let Some((source, summary)) = legacy_source_with("legacy_req", 50, Some(120), 31).await else {
        return;
    };
    let Some(read_model) = support::mariadb::fresh_database("legacy_req_rm").await else {
        return;
    };
    let counts = summary.membership_counts();
    for s in MembershipScenario::ALL {
        assert!(counts.contains_key(&s), "the fixture lacks {s:?}");
    }
    let statuses: std::collections::BTreeSet<i64> = summary
        .membership_scenarios
        .values()
        .filter(|s| !s.is_malformed())
        .map(|s| s.status())
        .collect();
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [-3, -2, -1, 0, 1]);
    let n = summary.memberships;
    let malformed = summary.malformed_memberships();
    let dir = tempfile::tempdir().unwrap();
    let imported = ledger(dir.path())
        .args([
            "import",
            "legacy",
            "--from",
            &source.url,
            "--batch-size",
            "16",
        ])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&imported.get_output().stdout).to_string();
    assert!(
        out.contains(&format!(
            "memberships: {n} of {n} `request` rows read, {} applications imported",
            n - malformed.len() as u64
        )),
        "{out}"
    );
    assert!(!out.contains("not imported"), "{out}");

    // The report names every malformed row and every row imported by a rule, nothing else.
    let report = csv_rows(&dir.path().join("legacy-import-report.csv"));
    let noted: BTreeMap<u64, (String, String)> = report
        .iter()
        .filter(|r| r[0] == "request")
        .map(|r| (r[1].parse().unwrap(), (r[2].clone(), r[3].clone())))
        .collect();
    for (id, scenario) in &summary.membership_scenarios {
        let expected = scenario.expected_note().map(|(class, imported)| {
            let outcome = if imported { "imported" } else { "skipped" };
            (class.to_owned(), outcome.to_owned())
        });
        assert_eq!(
            noted.get(id),
            expected.as_ref(),
            "request {id} ({scenario:?})"
        );
    }

    // Nothing of a malformed row is in the log: none of its five streams exists.
    let log_streams = streams(dir.path()).await;
    for id in malformed.keys() {
        for stream in ledger::domain::membership::streams_of(*id) {
            assert!(
                !log_streams.contains_key(&stream),
                "{stream} of a malformed row"
            );
        }
    }
    assert!(log_streams.contains_key(REQUEST_STREAM));

    // The applicants arrive sealed; a scrubbed application gets no key.
    let log = std::fs::read(dir.path().join("events.sqlite")).unwrap();
    let pool = sqlx::MySqlPool::connect(&source.url).await.unwrap();
    let emails: Vec<String> =
        sqlx::query_scalar("SELECT email FROM request WHERE is_scrubbed = 0 AND email <> ''")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!emails.is_empty());
    for email in &emails {
        assert!(
            !support::contains(&log, email.as_bytes()),
            "{email} is in the log in clear"
        );
    }
    let keys = ledger::privacy::KeyStore::open_sqlite(&dir.path().join("keys.sqlite"))
        .await
        .unwrap();
    let key_ids = |f: fn(MembershipScenario) -> bool| -> Vec<u64> {
        summary
            .membership_scenarios
            .iter()
            .filter(|(_, s)| f(**s))
            .map(|(id, _)| ledger::privacy::membership_key_id(*id))
            .collect()
    };
    let scrubbed = key_ids(|s| s.is_scrubbed());
    let confirmed = key_ids(|s| s == MembershipScenario::Confirmed);
    assert!(!scrubbed.is_empty());
    assert!(keys.get_many(&scrubbed).await.unwrap().is_empty());
    assert_eq!(
        keys.get_many(&confirmed).await.unwrap().len(),
        confirmed.len()
    );
    // The intake will not hand out an imported membership id again.
    let current = ledger(dir.path())
        .args(["sequence", "current", "membership"])
        .assert()
        .success();
    let current = String::from_utf8_lossy(&current.get_output().stdout).to_string();
    assert_eq!(current.trim(), summary.max_membership_id.to_string());

    // A rerun appends nothing.
    ledger(dir.path())
        .args(["import", "legacy", "--from", &source.url])
        .assert()
        .success();
    assert_eq!(
        streams(dir.path()).await,
        log_streams,
        "a rerun appended events"
    );

    // Projected into a MariaDB read model, `legacy_request` matches the source row for row.
    ledger(dir.path())
        .args(["--read-model-url", &read_model.url, "project", "--once"])
        .assert()
        .success();
    let check = |dir: &Path| {
        let mut cmd = ledger(dir);
        cmd.args([
            "--read-model-url",
            &read_model.url,
            "import",
            "legacy",
            "--check",
            "--from",
            &source.url,
        ]);
        cmd
    };
    let checked = check(dir.path()).assert().success();
    let out = String::from_utf8_lossy(&checked.get_output().stdout).to_string();
    assert!(
        out.contains(&format!(
            "legacy check (memberships, `request` against `legacy_request`): {n} source rows, \
             0 differences"
        )),
        "{out}"
    );

    // Scrubbed applications carry no personal data in the read model either.
    let rm = sqlx::MySqlPool::connect(&read_model.url).await.unwrap();
    let personal: Vec<(i64, String)> = sqlx::query_as(
        "SELECT CAST(id AS SIGNED), CONCAT(salutation, title, first_name, last_name, \
         company_name, street, postcode, city, country, email, phone, date_of_birth, iban, bic, \
         payment_reference_code) FROM membership_application WHERE is_scrubbed",
    )
    .fetch_all(&rm)
    .await
    .unwrap();
    let scrubbed_rows = summary
        .membership_scenarios
        .values()
        .filter(|s| s.is_scrubbed())
        .count();
    assert_eq!(personal.len(), scrubbed_rows);
    for (id, data) in &personal {
        assert_eq!(data, "", "scrubbed application {id}");
    }
    rm.close().await;

    // A changed status in the source is a difference the check names.
    let confirmed_id = summary
        .membership_scenarios
        .iter()
        .find(|(_, s)| **s == MembershipScenario::Confirmed)
        .map(|(id, _)| *id)
        .unwrap();
    sqlx::query("UPDATE request SET status = -1 WHERE id = ?")
        .bind(confirmed_id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let failed = check(dir.path()).assert().failure();
    let out = String::from_utf8_lossy(&failed.get_output().stdout).to_string();
    assert!(
        out.contains(&format!(
            "status: 1 (e.g. {confirmed_id}: source \"-1\", ledger \"1\")"
        )),
        "{out}"
    );
}

/// Imports `args` once uninterrupted and once killed with SIGKILL ten times at random points
/// (then run to its end); asserts both logs and reports are the same and returns how many kills
/// landed while `stream` was mid-import (some batches recorded, the run not completed), with the
/// streams of the log.
async fn kill_ten_times_and_compare(
    args: &[&str],
    stream: &str,
    seed: u64,
) -> (usize, BTreeMap<String, Vec<(uuid::Uuid, String)>>) {
    // The uninterrupted import, timed to choose the kill points (not an assertion).
    let whole = tempfile::tempdir().unwrap();
    let started = Instant::now();
    ledger(whole.path()).args(args).assert().success();
    let duration = started.elapsed();

    let killed = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("ledger");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut mid_import = 0;
    for _ in 0..10 {
        let mut child = std::process::Command::new(&bin)
            .env("LEDGER_DATA_DIR", killed.path())
            .env_remove("RUST_LOG")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = duration.mul_f64(rng.gen_range(0.1..0.4));
        std::thread::sleep(at);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Where the import stood: some batches done, the run not completed.
        if killed.path().join("events.sqlite").exists() {
            let log = SqliteEventLog::open(&killed.path().join("events.sqlite"))
                .await
                .unwrap();
            let records = log
                .read_stream(stream, Direction::Forwards, StreamStart::Beginning, 10_000)
                .await
                .unwrap();
            let completed = records
                .iter()
                .any(|r| r.event_type == ledger::legacy::import::COMPLETED);
            if !records.is_empty() && !completed {
                mid_import += 1;
            }
        }
    }
    ledger(killed.path()).args(args).assert().success();

    let log = streams(whole.path()).await;
    assert_eq!(streams(killed.path()).await, log);
    let report = |dir: &Path| {
        let dir = dir.to_owned();
        async move {
            let log = SqliteEventLog::open(&dir.join("events.sqlite"))
                .await
                .unwrap();
            read_report(&log).await.unwrap()
        }
    };
    assert_eq!(report(killed.path()).await, report(whole.path()).await);
    eprintln!(
        "{mid_import} of 10 kills landed mid-import of {stream}; the uninterrupted import took \
         {duration:?}"
    );
    (mid_import, log)
}

#[tokio::test]
async fn an_import_killed_ten_times_ends_as_an_uninterrupted_one() {
    let Some((source, _)) = legacy_source("legacy_kill", 4000, 21).await else {
        return;
    };
    let args = [
        "import",
        "legacy",
        "--from",
        &source.url,
        "--batch-size",
        "40",
    ];
    let (mid_import, _) = kill_ten_times_and_compare(&args, STREAM, 22).await;
    assert!(
        mid_import > 0,
        "no kill landed in the middle of the donations' import"
    );
}

#[tokio::test]
async fn a_membership_import_killed_ten_times_neither_loses_nor_duplicates_an_application() {
    let Some((source, summary)) =
        legacy_source_with("legacy_kill_request", 40, Some(3000), 23).await
    else {
        return;
    };
    let args = [
        "import",
        "legacy",
        "--from",
        &source.url,
        "--batch-size",
        "40",
    ];
    let (mid_import, all) = kill_ten_times_and_compare(&args, REQUEST_STREAM, 24).await;
    assert!(
        mid_import > 0,
        "no kill landed in the middle of the memberships' import"
    );
    // Every application that is not malformed is in the log once, with one application event.
    let malformed = summary.malformed_memberships();
    for id in summary.membership_scenarios.keys() {
        let applied = all.get(&format!("membership-{id}"));
        if malformed.contains_key(id) {
            assert_eq!(applied, None, "malformed application {id}");
        } else {
            assert_eq!(applied.map(Vec::len), Some(1), "application {id}");
        }
    }
}

#[tokio::test]
async fn the_opt_in_bench_part_measures_the_import_on_a_fixture() {
    // Only a reachability probe: the bench makes and drops its own database.
    let Some(_probe) = support::mariadb::fresh_database("legacy_bench").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = ledger(dir.path())
        .args([
            "--read-model-url",
            &support::mariadb::admin_url(),
            "bench",
            "--parts",
            "legacy",
            "--donations",
            "300",
            "--json",
            "--scratch-dir",
        ])
        .arg(dir.path())
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let figures = report["figures"].as_array().unwrap();
    let legacy = figures
        .iter()
        .find(|f| f["key"] == "legacy_import")
        .expect("the legacy_import figure");
    assert!(legacy["value"].as_f64().unwrap() > 0.0, "{legacy}");
    assert!(
        legacy["detail"]
            .as_str()
            .unwrap()
            .starts_with("300 rows in"),
        "{legacy}"
    );
}
