//! The example clients in `examples/` and Python's reflection client, run against a real
//! `ledger serve`: the Python and PHP examples walk a donation from contribution tracking to a
//! booked payment and read a refusal's `google.rpc.BadRequest` details; the reflection check
//! builds the intake's types from reflection v1alpha alone and calls with them. Needs the PyPI
//! packages of `examples/python/requirements.txt` and Debian's `php-cli` and `php-curl`
//! (`.ci/run` installs them).
use std::process::Command;

use crate::cli_serve::{connected, free_port, serving, spawn_serve, stop};
use crate::support::api::with_token;
use crate::support::ci::skip_or_fail;
use ledger::proto::api;

/// Whether `python3` can import every module the example and the check need.
fn python_packages_installed() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import grpc, grpc_tools, grpc_status, grpc_reflection",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `python3 args…` with `env`, off the async runtime; returns success, stdout, stderr.
async fn python(args: Vec<String>, env: Vec<(&'static str, String)>) -> (bool, String, String) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(args)
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether `php` runs with the curl extension (Debian's `php-cli` and `php-curl`).
fn php_installed() -> bool {
    Command::new("php")
        .args(["-r", "exit(function_exists('curl_init') ? 0 : 1);"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs an example client (`program` `script` `--target` … `--token-file` … `extra`) against
/// a fresh `serve` and checks that what it reports is what the ledger holds: a booked donation
/// of `amount_cents` with a contribution tracking id, and a refusal whose machine-readable
/// violations name the bad fields.
async fn example_walks_a_donation_through(
    program: &str,
    script: &str,
    extra: &[&str],
    amount_cents: i64,
) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_serve(dir.path(), port, &[]);
    serving(port, dir.path()).await;
    let token_file = dir.path().join("admin.token");

    let mut args = vec![
        repo(script),
        "--target".into(),
        format!("127.0.0.1:{port}"),
        "--token-file".into(),
        token_file.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let program = program.to_owned();
    let output =
        tokio::task::spawn_blocking(move || Command::new(program).args(args).output().unwrap())
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the example failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    // What the example reports is what the ledger holds.
    let token = std::fs::read_to_string(&token_file).unwrap();
    let donation_id = result["donation_id"].as_u64().unwrap();
    let mut client = connected(port).await;
    let donation = client
        .get_donation(with_token(
            api::GetDonationRequest { donation_id },
            token.trim(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(donation.amount_cents, amount_cents);
    assert_eq!(result["amount_cents"], amount_cents, "{result}");
    assert_eq!(donation.payment_state, "booked");
    assert_eq!(result["payment_state"], "booked", "{result}");
    assert!(result["contribution_tracking_id"].as_u64().unwrap() > 0);

    // The refusal carries the machine-readable violations beside the message.
    let refusal = &result["refusal"];
    assert!(
        refusal["code"] == "INVALID_ARGUMENT" || refusal["code"] == 3,
        "{result}"
    );
    let fields: Vec<&str> = refusal["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"payment.amount_cents"), "{fields:?}");
    assert!(fields.contains(&"donor.kind"), "{fields:?}");

    let (stopped, log) = stop(child).await;
    assert!(stopped, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_books_a_tracked_donation_and_reads_a_refusals_field_violations() {
    if !python_packages_installed() {
        skip_or_fail("the Python gRPC packages are not installed (pip install -r examples/python/requirements.txt)");
        return;
    }
    example_walks_a_donation_through(
        "python3",
        "examples/python/ledger_client.py",
        &["--show-refusal"],
        2500,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_php_example_books_a_tracked_donation_and_reads_a_refusals_field_violations() {
    if !php_installed() {
        skip_or_fail("PHP with curl is not installed (apt-get install php-cli php-curl)");
        return;
    }
    example_walks_a_donation_through("php", "examples/php/ledger_client.php", &[], 3000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_reflection_client_builds_the_intakes_types_and_calls_with_them() {
    if !python_packages_installed() {
        skip_or_fail("the Python gRPC packages are not installed (pip install -r examples/python/requirements.txt)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_serve(dir.path(), port, &[]);
    serving(port, dir.path()).await;
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();

    let (ok, stdout, stderr) = python(
        vec![
            "-m".into(),
            "unittest".into(),
            "-v".into(),
            "test_reflection".into(),
        ],
        vec![
            ("LEDGER_TARGET", format!("127.0.0.1:{port}")),
            ("LEDGER_TOKEN", token.trim().to_owned()),
            ("PYTHONPATH", repo("tests/python")),
        ],
    )
    .await;
    assert!(ok, "the reflection check failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("Ran 4 tests") && stderr.contains("OK"),
        "{stderr}"
    );
    let (stopped, log) = stop(child).await;
    assert!(stopped, "{log}");
}
