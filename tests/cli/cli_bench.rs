//! `ledger bench --json` on a small workload: every figure the issue asks for is there and
//! positive, so the command cannot silently lose a part; with `--event-log-url esdb://…` the
//! KurrentDB-log part measures that server. (No timing is asserted: figures are
//! for `ledger bench` itself to print.)

use crate::support::ci;

use assert_cmd::Command;
use sqlx::Connection;

/// The figures of every run, and the ones a PostgreSQL or MariaDB URL adds.
const FIGURES: &[&str] = &[
    "append_1_writer",
    "append_64_writers",
    "add_donation_rate",
    "add_donation_p50",
    "add_donation_p99",
    "rebuild_sqlite",
    "rebuild_switch_sqlite",
    "raw_insert_sqlite",
    "rebuild_vs_raw_sqlite",
    "scrub_selection_sqlite",
    "verify_sqlite",
    "kurrentdb_log_append_1_writer",
    "kurrentdb_log_append_64_writers",
    "kurrentdb_log_read_all",
    "kurrentdb_log_rebuild",
    "civishare_changes_rate",
    "civishare_latency_p50",
    "civishare_latency_p99",
    "peak_memory",
];
const POSTGRES_FIGURES: &[&str] = &[
    "rebuild_postgres",
    "rebuild_switch_postgres",
    "raw_insert_postgres",
    "rebuild_vs_raw_postgres",
    "scrub_selection_postgres",
];
const MARIADB_FIGURES: &[&str] = &[
    "rebuild_mariadb",
    "rebuild_switch_mariadb",
    "raw_insert_mariadb",
    "rebuild_vs_raw_mariadb",
    "scrub_selection_mariadb",
];
/// The figures that carry a target.
const TARGETED: &[&str] = &[
    "append_64_writers",
    "add_donation_rate",
    "add_donation_p99",
    "rebuild_vs_raw_sqlite",
];

/// The PostgreSQL URL when the server answers; says so loudly when it does not (and fails
/// under `CI=true`).
async fn postgres_url() -> Option<String> {
    let url = std::env::var("LEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match sqlx::PgConnection::connect(&url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            Some(url)
        }
        Err(e) => {
            ci::skip_or_fail(&format!(
                "the PostgreSQL figures: {url} is unreachable ({e}); set LEDGER_TEST_POSTGRES_URL"
            ));
            None
        }
    }
}

/// The MariaDB URL when the server answers; says so loudly when it does not (and fails under
/// `CI=true`).
async fn mariadb_url() -> Option<String> {
    let url = crate::support::mariadb::admin_url();
    match sqlx::MySqlConnection::connect(&url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            Some(url)
        }
        Err(e) => {
            ci::skip_or_fail(&format!(
                "the MariaDB figures: {url} is unreachable ({e}); set LEDGER_TEST_MARIADB_URL"
            ));
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_json_has_every_figure_and_each_is_positive() {
    let pg = postgres_url().await;
    let maria = mariadb_url().await;
    let mut args: Vec<String> = [
        "bench",
        "--donations",
        "300",
        "--json",
        "--single-writer-events",
        "200",
        "--intake-calls",
        "128",
        "--civishare-changes",
        "100",
    ]
    .map(str::to_owned)
    .into();
    if let Some(url) = &pg {
        args.extend(["--postgres-url".to_owned(), url.clone()]);
    }
    if let Some(url) = &maria {
        args.extend(["--read-model-url".to_owned(), url.clone()]);
    }
    let output = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("ledger")
            .unwrap()
            .args(&args)
            .env("RUST_LOG", "warn")
            .env_remove("LEDGER_BENCH_POSTGRES_URL")
            .env_remove("LEDGER_READ_MODEL_URL")
            .env_remove("LEDGER_BENCH_PARTS")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "ledger bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["donations"], 300);
    assert!(report["events"].as_u64().unwrap() > 300);
    // Membership applications are part of the workload (one per 80 donations, by chance).
    assert!(report["memberships"].is_u64(), "{report:#}");
    // Address changes too: one with every donation by a person (most of the 300) and every
    // application; a few of them used (about 3 %, by chance).
    let address_changes = report["address_changes"].as_u64().unwrap();
    assert!(address_changes > 200, "{report:#}");
    assert!(
        report["address_changes_used"].as_u64().unwrap() <= address_changes,
        "{report:#}"
    );
    // The machine's state is part of the result: Linux reports both.
    assert!(report["load_average"][1].is_string(), "{report:#}");
    let steal = report["cpu_steal_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&steal), "{steal}");
    let figures = report["figures"].as_array().unwrap();
    let expected = FIGURES
        .iter()
        .chain(pg.as_ref().map_or(&[][..], |_| POSTGRES_FIGURES))
        .chain(maria.as_ref().map_or(&[][..], |_| MARIADB_FIGURES));
    for key in expected {
        let figure = figures
            .iter()
            .find(|f| f["key"] == *key)
            .unwrap_or_else(|| panic!("figure {key} missing from {report:#}"));
        let value = figure["value"].as_f64().unwrap();
        assert!(value.is_finite() && value > 0.0, "{key} = {value}");
        assert!(!figure["unit"].as_str().unwrap().is_empty(), "{key} unit");
        if TARGETED.contains(key) {
            assert!(figure["meets_target"].is_boolean(), "{key} has no target");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_measures_the_kurrentdb_log_backend_on_the_server_of_event_log_url() {
    let dir = tempfile::tempdir().unwrap();
    let (host, url) = crate::serve_on_kurrentdb::log_host(dir.path()).await;
    let scratch = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "bench",
        "--donations",
        "200",
        "--single-writer-events",
        "100",
        "--parts",
        "kurrentdb-log",
        "--json",
        "--event-log-url",
        url.as_str(),
        "--scratch-dir",
        scratch.path().to_str().unwrap(),
    ]
    .map(str::to_owned)
    .into();
    let output = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("ledger")
            .unwrap()
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "ledger bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in [
        "kurrentdb_log_append_1_writer",
        "kurrentdb_log_append_64_writers",
        "kurrentdb_log_read_all",
        "kurrentdb_log_rebuild",
    ] {
        let figure = report["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("figure {key} missing from {report:#}"));
        assert!(figure["value"].as_f64().unwrap() > 0.0, "{key}");
        assert!(
            figure["detail"]
                .as_str()
                .unwrap()
                .contains("the --event-log-url server"),
            "{key} measured elsewhere: {figure}"
        );
    }
    // The workload went to the server: its log holds the bench's donations.
    let (ok, stderr) = crate::cli_serve::stop(host).await;
    assert!(ok, "{stderr}");
    let log = ledger::store::sqlite::SqliteEventLog::open(&dir.path().join("events.sqlite"))
        .await
        .unwrap();
    use ledger::store::EventLog as _;
    assert!(
        log.highest_stream_number("donation").await.unwrap() >= Some(200),
        "the workload's donations are in the server's log"
    );
}

#[test]
fn an_empty_workload_is_refused_with_the_flag_and_the_rule() {
    for (flag, value) in [
        ("--donations", "0"),
        ("--single-writer-events", "0"),
        ("--donations", "lots"),
    ] {
        let output = Command::cargo_bin("ledger")
            .unwrap()
            .args(["bench", flag, value])
            .env_remove("LEDGER_BENCH_DONATIONS")
            .env_remove("LEDGER_BENCH_SINGLE_WRITER_EVENTS")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains("at least 1"),
            "{flag} {value}: {stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "nothing measured for {flag} {value}"
        );
    }
}
