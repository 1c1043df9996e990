//! Mistakes fail loudly, early and precisely: a command given an unusable storage flag exits
//! non-zero at start-up with one line naming the flag, the value (password masked), the cause
//! and what to do — an unknown URL scheme, a PostgreSQL or Redis that does not answer (named by
//! host:port, without waiting out a pool's timeout), a missing, read-only or ledger-less data
//! directory (nothing created in it), a time in the wrong format. `RUST_BACKTRACE` does not
//! turn them into stack traces, and logs carry no colour codes when stderr is not a terminal.
//!
//! Each run has a generous hang guard (a process still running after it is killed, and the
//! test fails as "did not exit"); it is not a timed assertion.
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use ledger::store::sqlite::SqliteEventLog;

/// Far above any start-up check; only there so that a hang fails instead of blocking CI.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Runs `ledger` with `args`, `RUST_LOG` and the storage variables of the environment
/// removed.
fn ledger(args: &[&str]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("ledger").unwrap();
    for var in [
        "RUST_LOG",
        "LEDGER_DATA_DIR",
        "LEDGER_EVENT_LOG_URL",
        "LEDGER_READ_MODEL_URL",
        "LEDGER_KEY_STORE_URL",
        "LEDGER_SEQUENCE_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args).timeout(HANG_GUARD).output().unwrap()
}

/// Asserts that the run exited by itself, non-zero, with one stderr line holding every one
/// of `needles`; returns that line.
fn refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "did not exit within {HANG_GUARD:?} (killed); stderr:\n{stderr}"
    );
    assert!(!out.status.success(), "must fail; stderr:\n{stderr}");
    stderr
        .lines()
        .find(|line| needles.iter().all(|n| line.contains(n)))
        .unwrap_or_else(|| panic!("no line of stderr holds all of {needles:?}:\n{stderr}"))
        .to_owned()
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A data directory holding an (empty) ledger.
async fn ledger_dir(dir: &Path) {
    SqliteEventLog::open(&dir.join("events.sqlite"))
        .await
        .unwrap();
}

#[test]
fn a_read_only_command_refuses_a_data_directory_that_does_not_exist_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("dtaa");
    let out = ledger(&[
        "--data-dir",
        missing.to_str().unwrap(),
        "history",
        "donation",
        "1",
    ]);
    let line = refused(
        &out,
        &["--data-dir", missing.to_str().unwrap(), "does not exist"],
    );
    assert!(line.contains("check the path"), "{line}");
    assert!(!missing.exists(), "nothing may be created");
}

#[test]
fn a_read_only_command_refuses_a_directory_that_holds_no_ledger_instead_of_creating_one() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["history", "donation", "1"][..],
        &["state", "donation", "1"],
        &[
            "export-audit",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-12-01T00:00:00Z",
        ],
        &["project", "--once"],
        &["scrub", "status"],
    ] {
        let mut full = vec!["--data-dir", dir.path().to_str().unwrap()];
        full.extend_from_slice(args);
        let out = ledger(&full);
        refused(&out, &["--data-dir", "holds no ledger (no events.sqlite)"]);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

/// A directory this process cannot write to: a mode-0555 directory, or, for root (who writes
/// there anyway), `/sys`, where nobody can create a file. `None` when there is neither.
fn read_only_dir(scratch: &Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch.join("read-only");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable = |d: &Path| {
        let probe = d.join("probe");
        let ok = std::fs::write(&probe, b"").is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    };
    if !writable(&dir) {
        return Some(dir);
    }
    let sys = Path::new("/sys");
    (sys.is_dir() && !writable(sys)).then(|| sys.to_path_buf())
}

#[test]
fn serve_refuses_a_read_only_data_directory_naming_its_path() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(read_only) = read_only_dir(scratch.path()) else {
        eprintln!("\n*** SKIPPED: no directory this process cannot write to ***\n");
        return;
    };
    let shown = read_only.to_str().unwrap();
    let out = ledger(&[
        "--data-dir",
        shown,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    refused(&out, &["--data-dir", shown, "is not writable"]);

    // A new data directory inside it cannot be created: named too.
    let inside = read_only.join("data");
    let shown = inside.to_str().unwrap();
    let out = ledger(&[
        "--data-dir",
        shown,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    refused(&out, &["--data-dir", shown, "cannot be created"]);
}

#[tokio::test]
async fn an_unknown_read_model_scheme_is_refused_at_start_with_the_password_masked() {
    let dir = tempfile::tempdir().unwrap();
    ledger_dir(dir.path()).await;
    let url = "oracle://ledger:hunter2@db.example/funds";
    for command in [
        &["project", "--once"][..],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    ] {
        let mut args = vec![
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--read-model-url",
            url,
        ];
        args.extend_from_slice(command);
        let out = ledger(&args);
        refused(
            &out,
            &[
                "--read-model-url",
                "oracle://ledger:***@db.example/funds",
                "not a usable read-model URL",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("hunter2"), "password shown: {stderr}");
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_by_host_and_port_for_every_store_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    ledger_dir(dir.path()).await;
    let port = closed_port();
    let url = format!("postgres://ledger:hunter2@127.0.0.1:{port}/funds");
    let target = format!("127.0.0.1:{port}");
    for (flag, command) in [
        ("--read-model-url", &["project", "--once"][..]),
        ("--read-model-url", &["scrub", "status"]),
        ("--key-store-url", &["history", "donation", "1"]),
        ("--sequence-url", &["sequence", "current", "donation"]),
    ] {
        let mut args = vec!["--data-dir", dir.path().to_str().unwrap(), flag, &url];
        args.extend_from_slice(command);
        let out = ledger(&args);
        let line = refused(&out, &[flag, "ledger:***@", &target, "cannot reach"]);
        assert!(
            line.contains("start the server or correct the URL"),
            "{line}"
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    }
}

#[tokio::test]
async fn a_server_that_accepts_but_never_answers_is_given_up_on_after_the_probe_not_the_pool_timeout(
) {
    let dir = tempfile::tempdir().unwrap();
    ledger_dir(dir.path()).await;
    // Accepts connections and says nothing: the PostgreSQL handshake waits for an answer.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://ledger@127.0.0.1:{port}/funds");
    let out = ledger(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--read-model-url",
        &url,
        "project",
        "--once",
    ]);
    refused(
        &out,
        &[
            "--read-model-url",
            &format!("127.0.0.1:{port}"),
            "no answer within 3 s",
        ],
    );
    drop(silent);
}

#[tokio::test]
async fn an_unreachable_redis_sequence_generator_is_named_by_host_and_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let out = ledger(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--sequence-url",
        &url,
        "sequence",
        "next",
        "donation",
    ]);
    refused(
        &out,
        &[
            "--sequence-url",
            &url,
            &format!("cannot reach 127.0.0.1:{port}"),
        ],
    );
}

#[tokio::test]
async fn unknown_key_store_and_sequence_schemes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    ledger_dir(dir.path()).await;
    let out = ledger(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--sequence-url",
        "memcached://cache:11211",
        "sequence",
        "next",
        "donation",
    ]);
    refused(
        &out,
        &["--sequence-url", "not a sequence-generator URL", "redis://"],
    );
    let out = ledger(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--key-store-url",
        "vault://keys",
        "history",
        "donation",
        "1",
    ]);
    refused(&out, &["--key-store-url", "not a key-store URL"]);
}

#[test]
fn a_time_in_the_wrong_format_names_the_flag_and_the_accepted_format() {
    let out = ledger(&["state", "donation", "1", "--as-of", "2026-11-01"]);
    let line = refused(&out, &["--as-of", "2026-11-01", "RFC 3339"]);
    assert!(line.contains("2026-11-01T00:00:00Z"), "{line}");
    let out = ledger(&[
        "export-audit",
        "--from",
        "1.11.2026",
        "--to",
        "2026-12-01T00:00:00Z",
    ]);
    refused(&out, &["--from", "1.11.2026", "not a time", "RFC 3339"]);
}

#[test]
fn rust_backtrace_does_not_turn_a_user_mistake_into_a_stack_trace() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("ledger").unwrap();
    let out = cmd
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .env_remove("LEDGER_EVENT_LOG_URL")
        .env_remove("LEDGER_KEY_STORE_URL")
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["history", "donation", "1"])
        .timeout(HANG_GUARD)
        .output()
        .unwrap();
    refused(&out, &["error: --data-dir", "holds no ledger"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.to_lowercase().contains("backtrace"),
        "a user mistake printed a stack trace:\n{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("ledger").unwrap();
    let out = cmd
        .env("RUST_LOG", "info")
        .env_remove("LEDGER_SEQUENCE_URL")
        .env_remove("NO_COLOR")
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["sequence", "next", "donation"])
        .timeout(HANG_GUARD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("sequence generator connected"),
        "logged at INFO: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );
}
