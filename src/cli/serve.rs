//! `ledger serve`: the gRPC intake and `/metrics`, until SIGINT or SIGTERM.
use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::api::auth::{Authenticator, Scope};
use crate::api::{shutdown_signal, Application, Settings, TlsFiles};
use crate::civishare;
use crate::civishare::deliver::Outgoing;
use crate::civishare::receive::Receiver;
use crate::cli::jobs::{self, JobArgs};
use crate::cli::preflight::{Flag, StartupError};
use crate::config::StorageArgs;
use crate::console::Console;
use crate::domain::policy::ModerationPolicy;
use crate::intake::ids::DEFAULT_BLOCK;
use crate::intake::Clock;
use crate::kurrentdb::access::Users;
use crate::kurrentdb::KurrentDbServer;
use crate::metrics::readiness::Readiness;
use crate::metrics::{http, Metrics};
use crate::telemetry::format_chain;

/// Flags of `ledger serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the gRPC intake.
    #[arg(long, env = "LEDGER_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Address of the HTTP port: Prometheus `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "LEDGER_METRICS_LISTEN", default_value = "127.0.0.1:9184")]
    pub metrics_listen: SocketAddr,

    /// `/readyz` answers 503 while the projector is more than this many log positions behind
    /// the head.
    #[arg(long, env = "LEDGER_READY_MAX_LAG", default_value_t = crate::metrics::readiness::DEFAULT_MAX_LAG)]
    pub ready_max_lag: u64,

    /// Client tokens (JSON, `{"tokens": [{"name", "sha256", "scopes", "actor_kinds"}]}`).
    /// Absent: an admin token with every scope is generated once and written to
    /// `<data-dir>/admin.token` (mode 0600).
    #[arg(long, env = "LEDGER_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// TLS certificate chain (PEM); needs `--tls-key`. Absent: plain HTTP/2.
    #[arg(long, env = "LEDGER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM); needs `--tls-cert`.
    #[arg(long, env = "LEDGER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Words (one per line, `#` comments) that make names, addresses and comments moderated.
    #[arg(long, env = "LEDGER_DENY_WORDS_FILE")]
    pub deny_words_file: Option<PathBuf>,

    /// Blocked emails (one per line; `@domain` blocks a domain) that make donations moderated.
    #[arg(long, env = "LEDGER_BLOCKED_EMAILS_FILE")]
    pub blocked_emails_file: Option<PathBuf>,

    /// Ids the intake reserves per sequence-generator call (gaps after a restart are fine).
    #[arg(long, env = "LEDGER_ID_BLOCK", default_value_t = DEFAULT_BLOCK)]
    pub id_block: u64,

    /// Address of the KurrentDB-protocol port (any KurrentDB client can append, read and
    /// subscribe there), or `off`. TLS with the intake's `--tls-cert`/`--tls-key`.
    #[arg(long, env = "LEDGER_KURRENTDB_LISTEN", default_value = "127.0.0.1:2113", value_parser = parse_kurrentdb_listen)]
    pub kurrentdb_listen: KurrentDbListen,

    /// KurrentDB-port users (JSON, `{"users": [{"name", "sha256" of the password, "read":
    /// [categories or "*"], "write": [...]}]}`), who sign in with HTTP basic auth.
    #[arg(long, env = "LEDGER_KURRENTDB_USERS")]
    pub kurrentdb_users: Option<PathBuf>,

    /// Lets KurrentDB clients without credentials read everything and write outside the
    /// ledger's categories (development and client test suites only).
    #[arg(long, env = "LEDGER_KURRENTDB_ALLOW_ANONYMOUS")]
    pub kurrentdb_allow_anonymous: bool,

    /// The host name the KurrentDB port advertises in `Gossip.Read` (default: `localhost` on a
    /// loopback address, else the listen address).
    #[arg(long, env = "LEDGER_KURRENTDB_ADVERTISE_HOST")]
    pub kurrentdb_advertise_host: Option<String>,

    /// CiviShare: refuse messages whose `sent` is further than this from this node's clock
    /// (message ids are remembered for twice as long).
    #[arg(long, env = "LEDGER_CIVISHARE_CLOCK_WINDOW_SECS", default_value_t = crate::civishare::receive::DEFAULT_WINDOW_SECS)]
    pub civishare_clock_window_secs: u64,

    /// CiviShare: how long the origin signatures of received changes are remembered (a change
    /// seen again within it is ignored as a loop).
    #[arg(long, env = "LEDGER_CIVISHARE_RETENTION_DAYS", default_value_t = crate::civishare::receive::DEFAULT_RETENTION_DAYS)]
    pub civishare_retention_days: u64,

    /// CiviShare: a PEM file of CA certificates trusted for peers' `https://` endpoints besides
    /// the system's roots (for peers with certificates of a private CA).
    #[arg(long, env = "LEDGER_CIVISHARE_CA_FILE")]
    pub civishare_ca_file: Option<PathBuf>,

    /// The projectors and the scrub schedule that run beside the intake.
    #[command(flatten)]
    pub jobs: JobArgs,
}

/// `--deny-words-file`.
const DENY_WORDS_FILE: Flag = Flag {
    name: "--deny-words-file",
    env: "LEDGER_DENY_WORDS_FILE",
};
/// `--blocked-emails-file`.
const BLOCKED_EMAILS_FILE: Flag = Flag {
    name: "--blocked-emails-file",
    env: "LEDGER_BLOCKED_EMAILS_FILE",
};
/// `--tokens-file`.
const TOKENS_FILE: Flag = Flag {
    name: "--tokens-file",
    env: "LEDGER_TOKENS_FILE",
};
/// `--tls-cert`.
const TLS_CERT: Flag = Flag {
    name: "--tls-cert",
    env: "LEDGER_TLS_CERT",
};
/// `--tls-key`.
const TLS_KEY: Flag = Flag {
    name: "--tls-key",
    env: "LEDGER_TLS_KEY",
};
/// `--kurrentdb-users`.
const KURRENTDB_USERS: Flag = Flag {
    name: "--kurrentdb-users",
    env: "LEDGER_KURRENTDB_USERS",
};
/// `--civishare-ca-file`.
const CIVISHARE_CA_FILE: Flag = Flag {
    name: "--civishare-ca-file",
    env: "LEDGER_CIVISHARE_CA_FILE",
};
/// `--metrics-listen`.
const METRICS_LISTEN: Flag = Flag {
    name: "--metrics-listen",
    env: "LEDGER_METRICS_LISTEN",
};

impl ServeArgs {
    /// Checks the flags that need no store, before the data directory is created or any
    /// store opened: TLS files in pairs making a server identity, and every file flag
    /// readable.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(files) = tls_files(self)? {
            crate::api::rustls_server_config(&files)?;
        }
        for (flag, path) in [
            (TOKENS_FILE, &self.tokens_file),
            (DENY_WORDS_FILE, &self.deny_words_file),
            (BLOCKED_EMAILS_FILE, &self.blocked_emails_file),
            (KURRENTDB_USERS, &self.kurrentdb_users),
            (CIVISHARE_CA_FILE, &self.civishare_ca_file),
        ] {
            if let Some(path) = path {
                std::fs::File::open(path).map_err(|e| unreadable(flag, path, e))?;
            }
        }
        Ok(())
    }
}

/// The error for a file flag whose file cannot be read.
fn unreadable(flag: Flag, path: &Path, cause: impl std::fmt::Display) -> StartupError {
    StartupError::new(
        flag,
        &path.display().to_string(),
        format!("cannot be read: {cause}"),
        "give the path of a file the ledger's user can read",
    )
}

/// Where the KurrentDB port listens, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KurrentDbListen {
    /// Not served.
    Off,
    /// Served on this address.
    At(SocketAddr),
}

fn parse_kurrentdb_listen(value: &str) -> Result<KurrentDbListen, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(KurrentDbListen::Off);
    }
    value
        .parse()
        .map(KurrentDbListen::At)
        .map_err(|_| format!("{value:?} is neither `off` nor an address such as 127.0.0.1:2113"))
}

/// The KurrentDB port's settings, or `None` when it is off. The users file is read here, so a
/// bad one stops `serve` before anything is opened.
fn kurrentdb_settings(
    args: &ServeArgs,
    tls: Option<TlsFiles>,
) -> anyhow::Result<Option<crate::kurrentdb::Settings>> {
    let KurrentDbListen::At(listen) = args.kurrentdb_listen else {
        return Ok(None);
    };
    let users = match &args.kurrentdb_users {
        Some(path) => Users::from_file(path, args.kurrentdb_allow_anonymous)?,
        None => Users::anonymous(args.kurrentdb_allow_anonymous),
    };
    if users.is_empty() && !args.kurrentdb_allow_anonymous {
        tracing::warn!(
            %listen,
            "KurrentDB port: no --kurrentdb-users and no --kurrentdb-allow-anonymous, so every \
             call is refused (access-denied)"
        );
    }
    Ok(Some(crate::kurrentdb::Settings {
        listen,
        tls,
        users,
        advertise_host: args.kurrentdb_advertise_host.clone(),
    }))
}

/// Non-empty, non-comment lines of a list file; an empty path is an empty list.
fn read_list(flag: Flag, path: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(flag, path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The configured clients, or the embedded default's admin token (created once, mode 0600).
fn authenticator(args: &ServeArgs, storage: &StorageArgs) -> anyhow::Result<Authenticator> {
    if let Some(file) = &args.tokens_file {
        let auth = Authenticator::from_file(file).map_err(|e| {
            StartupError::new(
                TOKENS_FILE,
                &file.display().to_string(),
                format!("cannot be used: {}", format_chain(e.as_ref())),
                "give a readable JSON file {\"tokens\": [{\"name\", \"sha256\", \"scopes\", \
                 \"actor_kinds\"}]} (see the README)",
            )
        })?;
        tracing::info!(clients = auth.len(), "tokens loaded");
        return Ok(auth);
    }
    storage.ensure_data_dir()?;
    let path = storage.data_dir.join("admin.token");
    let token = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            // 256 random bits as hex.
            let token = format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            write_private(&path, &token)?;
            token
        }
    };
    tracing::warn!(path = %path.display(), "no --tokens-file: admin token with every scope is in this file");
    Ok(Authenticator::default().with_token("admin", &token, BTreeSet::from([Scope::All])))
}

/// Writes `content` to a new file readable by its owner only.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// The TLS files, when both flags are given; one without the other is refused before anything
/// is opened or bound.
fn tls_files(args: &ServeArgs) -> anyhow::Result<Option<TlsFiles>> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            for (flag, path) in [(TLS_CERT, cert), (TLS_KEY, key)] {
                std::fs::File::open(path).map_err(|e| unreadable(flag, path, e))?;
            }
            Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }))
        }
        (None, None) => Ok(None),
        (Some(_), None) => anyhow::bail!(
            "--tls-cert (LEDGER_TLS_CERT) was given without --tls-key (LEDGER_TLS_KEY): TLS needs \
             the certificate and its private key; give both, or neither for plain HTTP/2"
        ),
        (None, Some(_)) => anyhow::bail!(
            "--tls-key (LEDGER_TLS_KEY) was given without --tls-cert (LEDGER_TLS_CERT): TLS needs \
             the certificate and its private key; give both, or neither for plain HTTP/2"
        ),
    }
}

/// Runs `ledger serve`.
pub async fn run(storage: &StorageArgs, args: ServeArgs) -> anyhow::Result<()> {
    let tls = tls_files(&args)?;
    let http_tls = tls
        .as_ref()
        .map(crate::api::rustls_server_config)
        .transpose()?;
    let civishare_tls = crate::civishare::deliver::client_tls(args.civishare_ca_file.as_deref())?;
    let policy = ModerationPolicy {
        deny_words: read_list(DENY_WORDS_FILE, args.deny_words_file.as_deref())?,
        blocked_emails: read_list(BLOCKED_EMAILS_FILE, args.blocked_emails_file.as_deref())?,
        ..ModerationPolicy::default()
    };
    let kurrentdb = kurrentdb_settings(&args, tls.clone())?;
    let metrics = Metrics::new();
    let settings = Settings {
        storage: storage.clone(),
        listen: args.listen,
        tls,
        auth: authenticator(&args, storage)?,
        policy,
        metrics: metrics.clone(),
        id_block: args.id_block,
        clock: Clock::System,
    };
    let auth = Arc::new(settings.auth.clone());
    let app = Application::build(settings).await?;
    let console = Arc::new(Console::new(
        app.intake().clone(),
        storage.read_model_url()?,
        metrics.clone(),
        auth,
        app.refusals(),
        // The console is on the HTTP port, which serves HTTPS only when TLS flags are given.
        http_tls.is_some(),
        app.civishare().clone(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut metrics_stop = stop_rx;
    let cannot_listen = |e: std::io::Error| {
        StartupError::new(
            METRICS_LISTEN,
            &args.metrics_listen.to_string(),
            format!("cannot listen: {}", format_chain(&e)),
            "stop the process that holds the address, or choose another",
        )
    };
    let http_listener = http::bind(args.metrics_listen)
        .await
        .map_err(cannot_listen)?;
    let metrics_addr = http_listener.local_addr().map_err(cannot_listen)?;
    // The projectors never block intake: they connect (and reconnect) to the read model in
    // their own tasks while the gRPC server already accepts donations.
    let shutdown = CancellationToken::new();
    let stores = jobs::SharedStores {
        log: app.intake().log().clone(),
        vault: app.intake().vault().clone(),
        read_model_url: storage.read_model_url()?,
    };
    let kurrentdb = match kurrentdb {
        Some(settings) => Some(
            KurrentDbServer::bind(
                settings,
                app.intake().log().clone(),
                metrics.clone(),
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let workers = jobs::start(stores, &args.jobs, metrics.clone(), shutdown.clone());
    // CiviShare: the message endpoint on the HTTP port, and the outgoing worker.
    let civishare = app.civishare().clone();
    let receiver = Arc::new(Receiver::new(
        civishare.clone(),
        app.intake().vault().keys().clone(),
        app.intake().clone(),
        metrics.clone(),
        args.civishare_clock_window_secs,
        args.civishare_retention_days,
    ));
    let outgoing = Outgoing::new(
        civishare,
        app.intake().log().clone(),
        app.intake().vault().clone(),
        metrics.clone(),
        civishare_tls,
    );
    let civishare_worker = tokio::spawn(outgoing.run_until_stopped(shutdown.clone()));
    // The statuses go to the read model this process projects into (none with
    // `--projectors false`: then the read model is another process's).
    let mirror_worker = workers.projector.clone().map(|ready| {
        let mirror = civishare::mirror::StatusMirror::new(app.civishare().clone());
        tokio::spawn(mirror.run_until_stopped(ready, shutdown.clone()))
    });
    let readiness = Readiness::new(
        app.intake().log().clone(),
        workers.projector.clone(),
        args.ready_max_lag,
    );
    let metrics_task = http::serve(
        http_listener,
        http::router(metrics.clone(), Arc::new(readiness))
            .merge(console.router())
            .merge(civishare::receive::router(receiver)),
        http_tls.clone(),
        async move {
            let _ = metrics_stop.wait_for(|s| *s).await;
        },
    );
    let scheme = if http_tls.is_some() { "https" } else { "http" };
    tracing::info!(
        %metrics_addr,
        "metrics, /healthz, /readyz and the status console ({scheme}://{metrics_addr}/) listening"
    );
    let kurrentdb = kurrentdb.map(|server| tokio::spawn(server.run_until_stopped()));
    let served = app
        .run_until_stopped(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
            shutdown.cancel();
        })
        .await;
    let _ = metrics_task.await;
    if let Some(task) = kurrentdb {
        match task.await {
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "KurrentDB port failed"),
            Err(e) => tracing::error!(error = %e, "KurrentDB port panicked"),
            Ok(Ok(())) => {}
        }
    }
    if let Err(e) = civishare_worker.await {
        tracing::error!(error = %e, "CiviShare worker panicked");
    }
    if let Some(task) = mirror_worker {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "CiviShare status mirror panicked");
        }
    }
    for worker in workers.handles {
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "background job panicked");
        }
    }
    served
}
