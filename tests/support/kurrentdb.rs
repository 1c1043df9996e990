//! Serves the KurrentDB port over a running intake's log (port 0), with users from JSON, and
//! connects both kinds of client: the official Rust `kurrentdb` crate, and the project's own
//! generated protocol client for the raw shapes (trailers, details) the crate hides.
use std::net::SocketAddr;
use std::sync::Arc;

use ledger::kurrentdb::access::Users;
use ledger::kurrentdb::{KurrentDbServer, Settings};
use ledger::metrics::Metrics;
use ledger::proto::kurrentdb::event_store::client::streams::streams_client::StreamsClient;
use ledger::store::EventLog;
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A served KurrentDB port; stops when dropped.
pub struct Port {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its metrics.
    pub metrics: Metrics,
    stop: CancellationToken,
    _users_dir: tempfile::TempDir,
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The users of the access tests: `reader` reads everything, writes nothing; `etl` writes
/// everything but the ledger's categories; `ops` may also write `donation` streams; `ledger`
/// writes everything, the ledger's categories too (a KurrentDB log backend's user); `auditor`
/// (group `auditors`) and `root` (group `$admins`) read and write everything outside the
/// ledger's categories, for the streams' access control lists; `clerk` reads the `invoices`
/// category alone. (name, password, read grants,
/// write grants, groups.)
pub const USERS: &[(&str, &str, &str, &str, &str)] = &[
    ("reader", "reader-pw", r#"["*"]"#, "[]", "[]"),
    ("etl", "etl-pw", r#"["*"]"#, r#"["*"]"#, "[]"),
    ("ops", "ops-pw", r#"["*"]"#, r#"["*", "donation"]"#, "[]"),
    (
        "ledger",
        "ledger-pw",
        r#"["*"]"#,
        r#"["*", "$ledger"]"#,
        "[]",
    ),
    (
        "auditor",
        "auditor-pw",
        r#"["*"]"#,
        r#"["*"]"#,
        r#"["auditors"]"#,
    ),
    ("root", "root-pw", r#"["*"]"#, r#"["*"]"#, r#"["$admins"]"#),
    ("clerk", "clerk-pw", r#"["invoices"]"#, "[]", "[]"),
];

/// Serves the port over `log`, with [`USERS`], anonymous callers allowed or not.
pub async fn serve(log: Arc<dyn EventLog>, allow_anonymous: bool) -> Port {
    serve_with(log, allow_anonymous, None).await
}

/// [`serve`] over TLS with a self-signed `localhost` certificate.
pub async fn serve_tls(log: Arc<dyn EventLog>) -> Port {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let files = ledger::api::TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    let port = serve_with(log, false, Some(files)).await;
    std::mem::forget(dir); // the files are read at bind time; the directory is a test's litter
    port
}

async fn serve_with(
    log: Arc<dyn EventLog>,
    allow_anonymous: bool,
    tls: Option<ledger::api::TlsFiles>,
) -> Port {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<String> = USERS
        .iter()
        .map(|(name, password, read, write, groups)| {
            format!(
                r#"{{"name": "{name}", "sha256": "{}", "read": {read}, "write": {write}, "groups": {groups}}}"#,
                hex::encode(sha2::Sha256::digest(password.as_bytes()))
            )
        })
        .collect();
    let path = dir.path().join("users.json");
    std::fs::write(&path, format!(r#"{{"users": [{}]}}"#, entries.join(","))).unwrap();
    let users = Users::from_file(&path, allow_anonymous).unwrap();
    let metrics = Metrics::new();
    let stop = CancellationToken::new();
    let server = KurrentDbServer::bind(
        Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls,
            users,
            advertise_host: None,
        },
        log,
        metrics.clone(),
        stop.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run_until_stopped());
    Port {
        addr,
        metrics,
        stop,
        _users_dir: dir,
    }
}

impl Port {
    /// The official Rust client, anonymous, plaintext.
    pub fn client(&self) -> kurrentdb::Client {
        self.client_as(None)
    }

    /// The official Rust client as `user` (name, password), plaintext.
    pub fn client_as(&self, user: Option<(&str, &str)>) -> kurrentdb::Client {
        let settings = self
            .url_as(user)
            .parse::<kurrentdb::ClientSettings>()
            .unwrap();
        kurrentdb::Client::new(settings).unwrap()
    }

    /// The connection string of the port as `user` (name, password), plaintext.
    pub fn url_as(&self, user: Option<(&str, &str)>) -> String {
        let credentials = user.map_or(String::new(), |(n, p)| format!("{n}:{p}@"));
        format!(
            "esdb://{credentials}127.0.0.1:{}?tls=false&defaultDeadline=30000",
            self.addr.port()
        )
    }

    /// The project's generated Streams client.
    pub async fn raw(&self) -> StreamsClient<Channel> {
        StreamsClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }
}

/// `msg` with HTTP basic credentials.
pub fn basic<T>(msg: T, name: &str, password: &str) -> tonic::Request<T> {
    use base64::Engine as _;
    let mut request = tonic::Request::new(msg);
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {token}").parse().unwrap());
    request
}

/// An embedded log in `<dir>/events.sqlite` served on a KurrentDB port from a thread and
/// runtime of its own, so that a test may block on a `ledger` command that reaches it; the
/// port stops when this is dropped. The log of a ledger on the KurrentDB backend.
pub struct LogHost {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogHost {
    /// Opens the log in `dir` and serves it.
    pub fn start(dir: &std::path::Path) -> Self {
        let path = dir.join("events.sqlite");
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let log = ledger::store::sqlite::SqliteEventLog::open(&path)
                    .await
                    .unwrap();
                let port = serve(Arc::new(log), false).await;
                url_tx
                    .send(port.url_as(Some(("ledger", "ledger-pw"))))
                    .unwrap();
                let _ = stopped.await;
            });
        });
        Self {
            url: url_rx.recv().expect("the log host started"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The connection string of the port, as the `ledger` user.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LogHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
