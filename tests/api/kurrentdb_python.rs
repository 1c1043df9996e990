//! The Python KurrentDB client (`kurrentdbclient` 1.0.4 from PyPI, installed by `.ci/run`)
//! against the ledger's KurrentDB port: the test script `tests/kurrentdb_python/` runs with
//! `python3 -m unittest`, and every test of it must pass.
use std::process::Command;

use crate::support::api::spawn_app;
use crate::support::ci::skip_or_fail;
use crate::support::kurrentdb::serve;

/// Whether `python3` can import the client.
fn client_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import kurrentdbclient"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_kurrentdb_client_passes_its_scenarios_against_the_port() {
    if !client_installed() {
        skip_or_fail(
            "the Python KurrentDB client is not installed \
             (pip install kurrentdbclient==1.0.4)",
        );
        return;
    }
    let app = spawn_app().await;
    let port = serve(app.log.clone(), true).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/kurrentdb_python/test_ledger_port.py"
    );
    let target = format!("localhost:{}", port.addr.port());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("KDB_TARGET", target)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client's scenarios failed:\n{report}"
    );
    assert!(report.contains("OK"), "{report}");
}
