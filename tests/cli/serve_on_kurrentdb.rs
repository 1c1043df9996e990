//! Two real `ledger` processes: A serves its embedded log on its KurrentDB port; B runs
//! `ledger serve` with its log in A (`--event-log-url esdb://…`), its own read model, keys and
//! sequences. A donation taken by B's intake lands in A's log whole, B's projector folds it into
//! B's read model, and the audit, projection, verify, rebuild and scrub commands run on the
//! KurrentDB backend. Over TLS, B checks A's certificate against the system's roots when the
//! connection string names no CA. Two ledgers on one log share the work, and the survivor
//! takes over the projector when the other is killed.
use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::projection::ReadModel;
use ledger::proto::api;
use ledger::proto::events as ev;
use sha2::Digest as _;
use support::api::{context, donation, with_token};

use crate::cli_serve::{connected, free_port, serving, stop};
use crate::kurrentdb_kills::{progress, writer};

/// `ledger serve` with a data directory and exactly these flags; stderr piped.
fn serve_command(data_dir: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ledger"));
    cmd.arg("serve")
        .args(args)
        .env("LEDGER_DATA_DIR", data_dir)
        .env_remove("LEDGER_READ_MODEL_URL")
        .env_remove("LEDGER_EVENT_LOG_URL")
        .env_remove("RUST_LOG")
        .env_remove("SSL_CERT_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The flags of a ledger serving gRPC on `port` with its log at `url` (no KurrentDB port).
fn on_log(port: u16, url: &str) -> [String; 8] {
    [
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--metrics-listen".into(),
        format!("127.0.0.1:{}", free_port()),
        "--kurrentdb-listen".into(),
        "off".into(),
        "--event-log-url".into(),
        url.into(),
    ]
}

/// [`serve_command`], started.
fn serve(data_dir: &Path, args: &[impl AsRef<std::ffi::OsStr>]) -> Child {
    serve_command(data_dir, args).spawn().unwrap()
}

/// A users file granting `ledger` (password `pw`) the ledger's own categories.
pub(crate) fn users_file(dir: &Path) -> String {
    let path = dir.join("users.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"users": [{{"name": "ledger", "sha256": "{}", "read": ["*"], "write": ["*", "$ledger"]}}]}}"#,
            hex::encode(sha2::Sha256::digest(b"pw"))
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Ledger A: serves its embedded log in `dir` on its KurrentDB port, with the `ledger` user of
/// [`users_file`]; the process and the connection string of its port.
pub(crate) async fn log_host(dir: &Path) -> (Child, String) {
    let (port, kurrent) = (free_port(), free_port());
    let users = users_file(dir);
    let a = serve(
        dir,
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--kurrentdb-listen",
            &format!("127.0.0.1:{kurrent}"),
            "--kurrentdb-users",
            &users,
        ],
    );
    serving(port, dir).await;
    (a, format!("esdb://ledger:pw@127.0.0.1:{kurrent}?tls=false"))
}

async fn donation_rows(url: &str) -> usize {
    let rm = ReadModel::connect(url).await.unwrap();
    let rows = rm.dump().await.map(|d| d["donation"].len()).unwrap_or(0);
    rm.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_with_its_log_in_another_ledgers_kurrentdb_port_takes_projects_and_audits_donations(
) {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let b_port = free_port();
    let (a, url) = log_host(a_dir.path()).await;
    let b = serve(b_dir.path(), &on_log(b_port, &url));
    serving(b_port, b_dir.path()).await;
    let token = std::fs::read_to_string(b_dir.path().join("admin.token")).unwrap();
    let mut client = connected(b_port).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = client
            .add_donation(with_token(
                donation(ev::PaymentMethod::BankTransfer, 2_500),
                token.trim(),
            ))
            .await
            .unwrap();
        ids.push(r.into_inner().donation_id);
    }

    // B's projector reads A's log through the backend into B's read model.
    let b_read_model = format!(
        "sqlite://{}",
        b_dir.path().join("readmodel.sqlite").display()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while donation_rows(&b_read_model).await < 3 {
        assert!(
            Instant::now() < deadline,
            "B's read model did not get the donations"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The audit command reads the donation's history from A's log through the backend.
    let out = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
        .args(["history", "donation", &ids[0].to_string(), "--json"])
        .args(["--event-log-url", &url])
        .env("LEDGER_DATA_DIR", b_dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("DonationCreated"), "{text}");

    // Donation 3 is exported: the scrub below is due for it.
    let exported = client
        .mark_exported(with_token(
            api::MarkExportedRequest {
                context: context(api::ActorKind::System),
                donation_ids: vec![ids[2]],
                batch_id: "B1".into(),
            },
            token.trim(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exported.exported, [ids[2]]);
    let (b_ok, b_err) = stop(b).await;
    assert!(b_ok, "{b_err}");

    // With B stopped, its other commands run on the backend too.
    let ledger_b = |args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
            .args(args)
            .args(["--event-log-url", &url])
            .env("LEDGER_DATA_DIR", b_dir.path())
            .env_remove("LEDGER_READ_MODEL_URL")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "ledger {args:?}: {text}");
        text
    };
    let state = ledger_b(&["state", "donation", &ids[1].to_string(), "--json"]);
    assert!(state.contains("2500"), "{state}");
    ledger_b(&["project", "--once"]);
    ledger_b(&["verify"]);
    ledger_b(&["rebuild"]);
    ledger_b(&["verify"]);
    let audit = ledger_b(&[
        "export-audit",
        "--format",
        "jsonl",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2100-01-01T00:00:00Z",
    ]);
    assert!(audit.contains("DonationCreated"), "{audit}");
    let scrubbed_id = ids[2].to_string();
    let before = ledger_b(&["history", "donation", &scrubbed_id]);
    assert!(before.contains("Zwiebelmeier"), "{before}");
    ledger_b(&["scrub", "--dry-run"]);
    ledger_b(&["scrub"]);
    // Crypto-shredding holds on this backend: the donor's data is no longer readable from
    // the KurrentDB log, by history or state, while a donation not scrubbed still is.
    for args in [
        vec!["history", "donation", scrubbed_id.as_str()],
        vec!["state", "donation", scrubbed_id.as_str(), "--json"],
    ] {
        let out = ledger_b(&args);
        for needle in [
            "Zwiebelmeier",
            "adelheid.zwiebelmeier@example.org",
            "Geheimweg",
        ] {
            assert!(!out.contains(needle), "{needle} in {args:?}: {out}");
        }
    }
    let after = ledger_b(&["history", "donation", &scrubbed_id]);
    assert!(after.contains("PersonalDataScrubbed"), "{after}");
    let kept = ledger_b(&["history", "donation", &ids[0].to_string()]);
    assert!(kept.contains("Zwiebelmeier"), "{kept}");

    let (a_ok, a_err) = stop(a).await;
    assert!(a_ok, "{a_err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_reaches_its_log_over_tls_checked_against_the_system_roots_and_refuses_an_unchecked_server(
) {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::cli_serve::test_pki();
    let path = |dir: &Path, name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let (cert, key) = (
        path(a_dir.path(), "cert.pem", &cert),
        path(a_dir.path(), "key.pem", &key),
    );
    let ca = path(b_dir.path(), "ca.pem", &ca);
    let kurrent = free_port();
    let users = users_file(a_dir.path());
    let a = serve(
        a_dir.path(),
        &[
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--metrics-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--kurrentdb-listen",
            &format!("127.0.0.1:{kurrent}"),
            "--kurrentdb-users",
            &users,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", kurrent)).is_err() {
        assert!(Instant::now() < deadline, "A's KurrentDB port did not open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No `tlsCAFile`: the test CA reaches B as the system's roots, through `SSL_CERT_FILE`.
    let url = format!("esdb://ledger:pw@localhost:{kurrent}?tls=true&maxDiscoverAttempts=2");
    let b_port = free_port();
    let b = serve_command(b_dir.path(), &on_log(b_port, &url))
        .env("SSL_CERT_FILE", &ca)
        .spawn()
        .unwrap();
    serving(b_port, b_dir.path()).await;
    let token = std::fs::read_to_string(b_dir.path().join("admin.token")).unwrap();
    let mut client = connected(b_port).await;
    let id = client
        .add_donation(with_token(
            donation(ev::PaymentMethod::BankTransfer, 2_500),
            token.trim(),
        ))
        .await
        .unwrap()
        .into_inner()
        .donation_id;
    let read_back = client
        .get_donation(with_token(
            api::GetDonationRequest { donation_id: id },
            token.trim(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read_back.donor.unwrap().last_name, "Zwiebelmeier");
    let (b_ok, b_err) = stop(b).await;
    assert!(b_ok, "{b_err}");

    let state = |url: &str, roots: Option<&str>| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ledger"));
        cmd.args(["state", "donation", &id.to_string(), "--json"])
            .args(["--event-log-url", url])
            .env("LEDGER_DATA_DIR", b_dir.path())
            .env_remove("SSL_CERT_FILE");
        if let Some(roots) = roots {
            cmd.env("SSL_CERT_FILE", roots);
        }
        cmd.output().unwrap()
    };
    // With the CA as the system's roots the state reads back; without it, A's certificate
    // is unknown and nothing is read; `tlsVerifyCert=false` is refused by name.
    let out = state(&url, Some(&ca));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2500"));
    let out = state(&url, Some(&cert_of_nobody(b_dir.path())));
    assert!(!out.status.success(), "an unknown CA must not be trusted");
    let out = state(&format!("{url}&tlsVerifyCert=false"), Some(&ca));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("tlsVerifyCert"),
        "{stderr}"
    );

    let (a_ok, a_err) = stop(a).await;
    assert!(a_ok, "{a_err}");
}

/// A file of roots holding only a CA that signed nothing here.
fn cert_of_nobody(dir: &Path) -> String {
    let (other_ca, _, _) = crate::cli_serve::test_pki();
    let path = dir.join("other-ca.pem");
    std::fs::write(&path, other_ca).unwrap();
    path.display().to_string()
}

/// A ledger process of a pair sharing one log (behind A's KurrentDB port) and one PostgreSQL
/// read model.
struct Instance {
    child: Child,
    port: u16,
    metrics_port: u16,
    token: String,
    _dir: tempfile::TempDir,
}

async fn instance(log_url: &str, read_model_url: &str) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let child = serve(
        dir.path(),
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--kurrentdb-listen",
            "off",
            "--event-log-url",
            log_url,
            "--read-model-url",
            read_model_url,
            "--sequence-url",
            read_model_url,
            "--key-store-url",
            read_model_url,
        ],
    );
    serving(port, dir.path()).await;
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    Instance {
        child,
        port,
        metrics_port,
        token,
        _dir: dir,
    }
}

/// Whether the instance's `/metrics` says it holds the projector's lease.
fn holds_projector(instance: &Instance) -> Option<bool> {
    let (_, body) = support::http_get(instance.metrics_port, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with("ledger_job_lease_held{job=\"projector\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v == 1.0)
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ledgers_on_one_log_under_load_project_once_and_the_survivor_takes_over_when_the_projecting_one_is_killed(
) {
    let Some(db) = support::postgres::fresh_database("two_ledgers").await else {
        return;
    };
    let a_dir = tempfile::tempdir().unwrap();
    let (a, log_url) = log_host(a_dir.path()).await;

    let mut b = instance(&log_url, &db.url).await;
    until("B takes the projector's lease", || {
        holds_projector(&b) == Some(true)
    })
    .await;
    let c = instance(&log_url, &db.url).await;
    until("C stands by", || holds_projector(&c) == Some(false)).await;
    until("C, standing by, is ready for intake", || {
        support::http_get(c.metrics_port, "/readyz").map(|(code, _)| code) == Some(200)
    })
    .await;

    let add = |instance: &Instance, request: &api::AddDonationRequest| {
        with_token(request.clone(), &instance.token)
    };
    let mut to_b = connected(b.port).await;
    let mut to_c = connected(c.port).await;
    let mut ids = Vec::new();
    let first = donation(ev::PaymentMethod::BankTransfer, 1_000);
    let first_id = to_b
        .add_donation(add(&b, &first))
        .await
        .unwrap()
        .into_inner()
        .donation_id;
    ids.push(first_id);
    for _ in 0..2 {
        let r = to_c
            .add_donation(add(&c, &donation(ev::PaymentMethod::BankTransfer, 1_500)))
            .await
            .unwrap();
        ids.push(r.into_inner().donation_id);
    }
    // A retry that lands on the other instance gets the first answer.
    let retried = to_c
        .add_donation(add(&c, &first))
        .await
        .unwrap()
        .into_inner()
        .donation_id;
    assert_eq!(retried, first_id);

    // Under load: four writers, two starting on B and two on C, each sending a failed
    // request again to the other instance; B, holding the projector, is killed meanwhile.
    let stop_writers = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let mut targets = vec![(b.port, b.token.clone()), (c.port, c.token.clone())];
            if i % 2 == 1 {
                targets.reverse();
            }
            tokio::spawn(writer(targets, stop_writers.clone(), answered.clone()))
        })
        .collect();
    progress(&answered, 40, "before B is killed").await;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    progress(&answered, 40, "after B was killed").await;
    until("C takes the projector's lease after B's death", || {
        holds_projector(&c) == Some(true)
    })
    .await;
    stop_writers.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    ids.extend(answered.lock().unwrap().iter().copied());
    let expected: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(
        expected.len(),
        ids.len(),
        "two answers with one donation id"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rm = ReadModel::connect(&db.url).await.unwrap();
        let rows = rm.dump().await.unwrap().remove("donation").unwrap();
        rm.close().await;
        if rows.len() >= ids.len() || Instant::now() > deadline {
            let projected: BTreeSet<u64> = rows
                .iter()
                .map(|r| r.split(" | ").next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(
                rows.len(),
                ids.len(),
                "every donation once in the read model"
            );
            assert_eq!(
                projected, expected,
                "the read model's donations are the answered ones"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (c_ok, c_err) = stop(c.child).await;
    assert!(c_ok, "{c_err}");
    let (a_ok, a_err) = stop(a).await;
    assert!(a_ok, "{a_err}");
}
