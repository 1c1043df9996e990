//! `ledger serve` on the built binary: with no tokens file it writes an admin token (mode
//! 0600) to the data directory, serves gRPC with it (its listen line naming address and TLS
//! mode), and stops cleanly on SIGTERM; with `--tls-cert` and `--tls-key` it serves TLS only,
//! and one of the two flags alone is refused. A second `serve` (or a scrub) on the same data
//! directory is refused naming the first one's pid; a read model that does not answer at
//! start-up is warned about by host:port while the intake starts anyway; the scrub schedule is
//! logged with its first run, one interval after start-up.
use crate::support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger::proto::api::{self, ledger_client::LedgerClient};
use support::api::{next_id_request, with_token};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ledger serve` on `port` with a data directory, plus `extra` flags; stderr piped.
pub(crate) fn serve_command(data_dir: &Path, port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ledger"));
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--kurrentdb-listen",
        "127.0.0.1:0",
    ]);
    if !extra.contains(&"--metrics-listen") {
        cmd.args(["--metrics-listen", &format!("127.0.0.1:{}", free_port())]);
    }
    cmd.args(extra)
        .env("LEDGER_DATA_DIR", data_dir)
        .env_remove("LEDGER_READ_MODEL_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `ledger serve` on `port` with a data directory, plus `extra` flags.
pub(crate) fn spawn_serve(data_dir: &Path, port: u16, extra: &[&str]) -> Child {
    serve_command(data_dir, port, extra).spawn().unwrap()
}

/// Waits until the gRPC intake on `port` answers.
pub(crate) async fn connected(port: u16) -> LedgerClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(c) = LedgerClient::connect(format!("http://127.0.0.1:{port}")).await {
            return c;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the intake on `port` answers a call with the admin token of `data_dir`: past
/// that, the server handles SIGTERM (a bound listener accepts connections earlier).
pub(crate) async fn serving(port: u16, data_dir: &Path) {
    let mut client = connected(port).await;
    let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
    client.next_id(next_ids(&token)).await.unwrap();
}

/// Sends SIGTERM to `child`.
pub(crate) fn sigterm(child: &Child) {
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Sends SIGTERM and waits for the exit; returns whether it succeeded and its stderr.
pub(crate) async fn stop(mut child: Child) -> (bool, String) {
    sigterm(&child);
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
    (status.success(), stderr)
}

/// A `NextId` request for three donation ids with `token`.
fn next_ids(token: &str) -> tonic::Request<api::NextIdRequest> {
    with_token(next_id_request("donation", 3), token.trim())
}

#[tokio::test]
async fn serve_writes_a_private_admin_token_answers_with_it_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_serve(dir.path(), port, &[]);
    let token_path = dir.path().join("admin.token");
    let mut client = connected(port).await;
    let token = std::fs::read_to_string(&token_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let ids = client.next_id(next_ids(&token)).await.unwrap().into_inner();
    assert_eq!(ids.last_id - ids.first_id, 2);

    let (success, stderr) = stop(child).await;
    assert!(success, "{stderr}");
    assert!(
        !stderr.contains(token.trim()),
        "the token must never be logged"
    );
    assert!(stderr.contains("admin.token"), "{stderr}");
    let listening = stderr
        .lines()
        .find(|l| l.contains("gRPC intake listening"))
        .unwrap_or_else(|| panic!("no listen line: {stderr}"));
    assert!(
        listening.contains(&format!("address=127.0.0.1:{port}")) && listening.contains("tls=off"),
        "the listen line names host, port and TLS mode: {listening}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );
}

/// A CA and a `localhost` server certificate it signed, as PEM: (CA cert, server cert, key).
pub(crate) fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ledger test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

#[tokio::test]
async fn serve_with_tls_answers_tls_clients_and_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let child = spawn_serve(
        &data,
        port,
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca))
        .domain_name("localhost");
    let endpoint = Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let channel = loop {
        if let Ok(c) = endpoint.connect().await {
            break c;
        }
        assert!(Instant::now() < deadline, "TLS server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let ids = LedgerClient::new(channel)
        .next_id(next_ids(&token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids.last_id - ids.first_id, 2);

    // A plaintext HTTP/2 client gets no answer from the TLS port.
    let plaintext = tokio::time::timeout(Duration::from_secs(10), async {
        let mut client = LedgerClient::connect(format!("http://127.0.0.1:{port}")).await?;
        client.next_id(next_ids(&token)).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await;
    assert!(
        matches!(plaintext, Ok(Err(_))),
        "a plaintext call must fail on the TLS port"
    );

    let (success, stderr) = stop(child).await;
    assert!(success, "{stderr}");
}

#[test]
fn serve_refuses_one_tls_flag_without_the_other_before_opening_anything() {
    for (given, missing) in [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let output = assert_cmd::Command::cargo_bin("ledger")
            .unwrap()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                given,
                dir.path().join("file.pem").to_str().unwrap(),
            ])
            .env("LEDGER_DATA_DIR", &data)
            .env_remove("LEDGER_TLS_CERT")
            .env_remove("LEDGER_TLS_KEY")
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{given} alone must be refused");
        assert!(
            stderr.contains(&format!("{given} ("))
                && stderr.contains(&format!("without {missing}")),
            "{stderr}"
        );
        assert!(!data.exists(), "nothing may be created: {stderr}");
    }
}

/// Runs `ledger` with `args` on `data_dir`; a hang guard, not a timed assertion.
fn ledger_on(data_dir: &Path, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("ledger")
        .unwrap()
        .env("LEDGER_DATA_DIR", data_dir)
        .env_remove("LEDGER_EVENT_LOG_URL")
        .env_remove("LEDGER_READ_MODEL_URL")
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_second_serve_on_the_same_data_directory_is_refused_naming_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let first = spawn_serve(dir.path(), port, &[]);
    let pid = first.id();
    serving(port, dir.path()).await;

    let second_port = free_port();
    let second = ledger_on(
        dir.path(),
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{second_port}"),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    // A scrub appends to the log as well; `scrub status` and `history` only read.
    let scrub = ledger_on(dir.path(), &["scrub"]);
    for (what, out) in [("second serve", &second), ("scrub", &scrub)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code().is_some_and(|c| c != 0),
            "{what} must exit non-zero by itself: {stderr}"
        );
        let line = format!("in use by another ledger process (pid {pid}");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("--data-dir") && l.contains(&line)),
            "{what}: {stderr}"
        );
    }
    assert!(
        LedgerClient::connect(format!("http://127.0.0.1:{second_port}"))
            .await
            .is_err(),
        "the second serve must not listen"
    );

    let (success, stderr) = stop(first).await;
    assert!(success, "{stderr}");
    // Released with its process: the next serve starts.
    let port = free_port();
    let next = spawn_serve(dir.path(), port, &[]);
    serving(port, dir.path()).await;
    let (success, stderr) = stop(next).await;
    assert!(success, "{stderr}");
}

#[tokio::test]
async fn serve_starts_the_intake_when_its_read_model_does_not_answer_and_warns_by_host_and_port() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let url = format!("postgres://ledger:hunter2@127.0.0.1:{closed}/funds");
    let port = free_port();
    let child = spawn_serve(dir.path(), port, &["--read-model-url", &url]);
    serving(port, dir.path()).await;

    let (success, stderr) = stop(child).await;
    assert!(success, "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("read model unreachable at start-up"))
        .unwrap_or_else(|| panic!("no start-up warning: {stderr}"));
    assert!(
        warning.contains("--read-model-url") && warning.contains(&format!("127.0.0.1:{closed}")),
        "{warning}"
    );
    assert!(!stderr.contains("hunter2"), "password logged: {stderr}");
}

#[tokio::test]
async fn the_scrub_schedule_is_logged_at_start_up_with_its_first_run_one_interval_later() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let started = chrono::Utc::now();
    let child = serve_command(dir.path(), port, &["--scrub-interval-minutes", "90"])
        .env("LEDGER_LOG_FORMAT", "json")
        .spawn()
        .unwrap();
    serving(port, dir.path()).await;
    let (success, stderr) = stop(child).await;
    assert!(success, "{stderr}");
    let schedule: serde_json::Value = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("scrub schedule on"))
        })
        .unwrap_or_else(|| panic!("no schedule line: {stderr}"));
    assert_eq!(schedule["fields"]["every_minutes"], 90, "{schedule}");
    let next_run = schedule["fields"]["next_run"].as_str().unwrap();
    let next_run = chrono::DateTime::parse_from_rfc3339(next_run).unwrap();
    assert!(
        next_run >= started + chrono::Duration::minutes(89),
        "the first run waits one interval: {next_run} after a start at {started}"
    );
}
