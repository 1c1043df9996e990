//! `ledger serve` on the built binary: with no tokens file it writes an admin token (mode
//! 0600) to the data directory, serves gRPC with it, and stops cleanly on SIGTERM.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledger::proto::api::{self, ledger_client::LedgerClient};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_writes_a_private_admin_token_answers_with_it_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .env("LEDGER_DATA_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let token_path = dir.path().join("admin.token");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut client = loop {
        if let Ok(c) = LedgerClient::connect(format!("http://127.0.0.1:{port}")).await {
            break c;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let token = std::fs::read_to_string(&token_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut request = tonic::Request::new(api::NextIdRequest {
        sequence: "donation".into(),
        count: 3,
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", token.trim()).parse().unwrap(),
    );
    let ids = client.next_id(request).await.unwrap().into_inner();
    assert_eq!(ids.last_id - ids.first_id, 2);

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        !stderr.contains(token.trim()),
        "the token must never be logged"
    );
    assert!(stderr.contains("admin.token"), "{stderr}");
}
