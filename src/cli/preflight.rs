//! Start-up checks: before a command opens anything, every storage flag it uses is checked —
//! the data directory (exists, is a directory, is writable, holds a ledger unless the command
//! creates one), each `sqlite://` file's directory, each server a URL names (answers within
//! [`PROBE_TIMEOUT`]: PostgreSQL through a real connection, so a refused login is named too;
//! Redis, MariaDB and others through TCP), the URL schemes through the store that chooses the
//! backend — and the data directory is locked for a command that writes the embedded log.
//!
//! A failure is one [`StartupError`] line: the flag, its value (a URL's password masked), the
//! cause and what to do. Only `serve`'s read model may be unreachable at start-up: intake
//! never waits for the back office, so that is a warning and the projectors retry. What a URL
//! names (its file, host and port, its text with the password masked) is read in
//! `storage_url.rs`.
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::lock::{DirLock, LockError};
use super::storage_url::{host_port, mask_password, sqlite_path};
use crate::config::StorageArgs;
use crate::projection::ReadModel;
use crate::telemetry::{excerpt, format_chain};

/// How long a server named by a URL has to answer at start-up.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A command-line flag and its environment variable, as error messages name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// `--data-dir`.
    pub name: &'static str,
    /// `LEDGER_DATA_DIR`.
    pub env: &'static str,
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.env)
    }
}

/// `--data-dir`.
pub const DATA_DIR: Flag = Flag {
    name: "--data-dir",
    env: "LEDGER_DATA_DIR",
};
/// `--event-log-url`.
pub const EVENT_LOG_URL: Flag = Flag {
    name: "--event-log-url",
    env: "LEDGER_EVENT_LOG_URL",
};
/// `--read-model-url`.
pub const READ_MODEL_URL: Flag = Flag {
    name: "--read-model-url",
    env: "LEDGER_READ_MODEL_URL",
};
/// `--key-store-url`.
pub const KEY_STORE_URL: Flag = Flag {
    name: "--key-store-url",
    env: "LEDGER_KEY_STORE_URL",
};
/// `--sequence-url`.
pub const SEQUENCE_URL: Flag = Flag {
    name: "--sequence-url",
    env: "LEDGER_SEQUENCE_URL",
};

/// A flag whose value cannot work: one line with the flag, the value as shown (a password
/// masked), the cause and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {value}: {cause}; {remedy}")]
pub struct StartupError {
    /// The flag.
    pub flag: Flag,
    /// Its value, password masked, cut to [`excerpt`].
    pub value: String,
    /// What is wrong.
    pub cause: String,
    /// What to do about it.
    pub remedy: String,
}

impl StartupError {
    /// The error for `flag` with `value` (a URL or path; its password is masked here).
    pub fn new(
        flag: Flag,
        value: &str,
        cause: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self {
            flag,
            value: excerpt(&mask_password(value)),
            cause: cause.into(),
            remedy: remedy.into(),
        }
    }
}

/// How a command uses the read model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadModelUse {
    /// Not at all.
    #[default]
    Unused,
    /// It must answer at start-up.
    Required,
    /// `serve`: a malformed URL is refused, an unreachable server only warned about (the
    /// projectors connect in the background).
    Background,
}

/// What a command uses, so that only that is checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Reads (or writes) the event log.
    pub event_log: bool,
    /// Opens the key store.
    pub key_store: bool,
    /// Opens the sequence generators.
    pub sequences: bool,
    /// Uses the read model.
    pub read_model: ReadModelUse,
    /// May create the data directory and a new ledger in it (`serve`; the sequence commands
    /// that hand out ids). Every other command refuses a directory that holds no ledger.
    pub creates: bool,
    /// Appends to the event log: holds the lock of the embedded log's directory.
    pub writes_log: bool,
    /// Keeps files of its own in the data directory (`serve`'s generated admin token).
    pub data_dir: bool,
}

/// What passed checks leave behind: the lock, held until dropped.
#[derive(Debug)]
pub struct Checked {
    /// The lock of the embedded log's directory, for a command that writes the log.
    pub lock: Option<DirLock>,
}

/// Checks every storage flag `needs` names, in the order a person would fix them, and takes
/// the lock. Returns at the first failure.
pub async fn check(storage: &StorageArgs, needs: Needs) -> Result<Checked, StartupError> {
    let log_url = storage.event_log_url.expose_secret();
    let keys_url = storage.key_store_url.expose_secret();
    let sequence_url = storage.sequence_url.expose_secret();
    let read_model_url = storage.read_model_url.expose_secret();
    let uses_read_model = needs.read_model != ReadModelUse::Unused;
    let embedded = needs.data_dir
        || (needs.event_log && log_url.is_empty())
        || (needs.key_store && keys_url.is_empty())
        || (needs.sequences && sequence_url.is_empty())
        || (uses_read_model && read_model_url.is_empty());
    if embedded {
        let needs_ledger = needs.event_log && log_url.is_empty() && !needs.creates;
        check_data_dir(&storage.data_dir, needs.creates, needs_ledger)?;
    }
    if needs.event_log && !log_url.is_empty() {
        check_event_log_url(log_url, needs.creates)?;
    }
    if needs.key_store && !keys_url.is_empty() {
        if !crate::privacy::KeyStore::accepts(keys_url) {
            return Err(StartupError::new(
                KEY_STORE_URL,
                keys_url,
                "not a key-store URL",
                "give a sqlite:// or postgres:// URL, or leave it empty for keys.sqlite in the \
                 data directory",
            ));
        }
        check_store_url(KEY_STORE_URL, keys_url, needs.creates).await?;
    }
    if needs.sequences && !sequence_url.is_empty() {
        if !crate::sequence::accepts(sequence_url) {
            return Err(StartupError::new(
                SEQUENCE_URL,
                sequence_url,
                "not a sequence-generator URL",
                "give a sqlite://, postgres:// or redis:// URL, or leave it empty for \
                 sequences.sqlite in the data directory",
            ));
        }
        check_store_url(SEQUENCE_URL, sequence_url, needs.creates).await?;
    }
    if uses_read_model && !read_model_url.is_empty() {
        check_read_model_url(read_model_url, needs.read_model).await?;
    }
    let lock = if needs.writes_log {
        lock_log_dir(storage)?
    } else {
        None
    };
    Ok(Checked { lock })
}

/// The data directory: it exists (or is created, for a command that creates a ledger), is a
/// directory, is writable (SQLite needs that even to read a WAL database), and holds a ledger
/// when the command reads one.
fn check_data_dir(dir: &Path, creates: bool, needs_ledger: bool) -> Result<(), StartupError> {
    let shown = dir.display().to_string();
    let fail = |cause: String, remedy: &str| StartupError::new(DATA_DIR, &shown, cause, remedy);
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(fail(
                "is not a directory".into(),
                "give the directory that holds the ledger's files",
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && creates => {
            std::fs::create_dir_all(dir).map_err(|e| {
                fail(
                    format!("cannot be created: {e}"),
                    "create it with write access for the ledger's user, or choose another \
                     --data-dir",
                )
            })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                "does not exist".into(),
                "check the path (a new ledger is created by `ledger serve`)",
            ))
        }
        Err(e) => {
            return Err(fail(
                format!("cannot be read: {e}"),
                "give the ledger's user access to it, or choose another --data-dir",
            ))
        }
    }
    check_writable(dir).map_err(|e| {
        fail(
            format!("is not writable: {e}"),
            "give the ledger's user write access (SQLite needs it even to read), or choose \
             another --data-dir",
        )
    })?;
    let log = dir.join(crate::config::EVENT_LOG_FILE);
    if needs_ledger && !log.exists() {
        return Err(fail(
            format!("holds no ledger (no {})", file_name(&log)),
            "check the path; this command does not create a ledger (`ledger serve` does)",
        ));
    }
    Ok(())
}

/// `--event-log-url`: a `sqlite://` file must exist unless the command creates a ledger, in a
/// writable directory. Other schemes are judged by the event log's own opening, which names
/// the ones it supports.
fn check_event_log_url(url: &str, creates: bool) -> Result<(), StartupError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if !creates && !path.exists() {
        return Err(StartupError::new(
            EVENT_LOG_URL,
            url,
            format!("holds no ledger (no file {})", path.display()),
            "check the path; this command does not create a ledger (`ledger serve` does)",
        ));
    }
    check_sqlite_dir(EVENT_LOG_URL, url, &path, creates)
}

/// A key-store or sequence URL whose scheme its store accepts: a `sqlite://` file's
/// directory, or the server it names.
async fn check_store_url(flag: Flag, url: &str, creates: bool) -> Result<(), StartupError> {
    match sqlite_path(url) {
        Some(path) => check_sqlite_dir(flag, url, &path, creates),
        None if url.starts_with("sqlite:") => Ok(()),
        None => check_server(flag, url, false).await,
    }
}

/// `--read-model-url`: the scheme through [`ReadModel::connect`], the one place that chooses
/// a read-model backend; then the file's directory or the server.
async fn check_read_model_url(url: &str, usage: ReadModelUse) -> Result<(), StartupError> {
    let background = usage == ReadModelUse::Background;
    if let Some(path) = sqlite_path(url) {
        // `ledger project` and `serve` create a missing directory of the read-model file.
        return check_sqlite_dir(READ_MODEL_URL, url, &path, true);
    }
    if !url.starts_with("sqlite:") {
        // Network backends connect lazily or within the probe's time; nothing is created.
        match tokio::time::timeout(PROBE_TIMEOUT, ReadModel::connect(url)).await {
            Ok(Ok(rm)) => rm.close().await,
            Ok(Err(crate::projection::ProjectionError::InvalidUrl(rule))) => {
                return Err(StartupError::new(
                    READ_MODEL_URL,
                    url,
                    format!("not a usable read-model URL: {rule}"),
                    "correct the URL, or leave it empty for readmodel.sqlite in the data \
                     directory",
                ))
            }
            Ok(Err(e)) => return unreachable(READ_MODEL_URL, url, format_chain(&e), background),
            Err(_) => {
                return unreachable(
                    READ_MODEL_URL,
                    url,
                    format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
                    background,
                )
            }
        }
    }
    check_server(READ_MODEL_URL, url, background).await
}

/// The server a URL names answers: PostgreSQL through a real connection (a refused login or
/// a missing database is a configuration error, never only a warning), anything else with a
/// host through TCP. A URL without a host (a Unix socket, several hosts) is left to its store.
async fn check_server(flag: Flag, url: &str, background: bool) -> Result<(), StartupError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return check_postgres(flag, url, background).await;
    }
    let Some((host, port)) = host_port(url) else {
        return Ok(());
    };
    let target = format!("{host}:{port}");
    match tokio::time::timeout(
        PROBE_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => unreachable(flag, url, format!("cannot reach {target}: {e}"), background),
        Err(_) => unreachable(
            flag,
            url,
            format!(
                "cannot reach {target}: no answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ),
            background,
        ),
    }
}

/// Connects to PostgreSQL once, within [`PROBE_TIMEOUT`].
async fn check_postgres(flag: Flag, url: &str, background: bool) -> Result<(), StartupError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        StartupError::new(
            flag,
            url,
            format!("not a valid PostgreSQL URL: {e}"),
            "write it as postgres://user:password@host:port/database",
        )
    })?;
    let target = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    match tokio::time::timeout(PROBE_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Database(e))) => Err(StartupError::new(
            flag,
            url,
            format!(
                "PostgreSQL at {target} refused the connection: {}",
                e.message()
            ),
            "check the user, password and database name in the URL",
        )),
        Ok(Err(e)) => unreachable(
            flag,
            url,
            format!("cannot reach PostgreSQL at {target}: {}", format_chain(&e)),
            background,
        ),
        Err(_) => unreachable(
            flag,
            url,
            format!(
                "cannot reach PostgreSQL at {target}: no answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ),
            background,
        ),
    }
}

/// A server that did not answer: an error, or for `serve`'s read model a warning.
fn unreachable(flag: Flag, url: &str, cause: String, background: bool) -> Result<(), StartupError> {
    let error = StartupError::new(flag, url, cause, "start the server or correct the URL");
    if background {
        tracing::warn!(
            flag = flag.name,
            value = %error.value,
            cause = %error.cause,
            "read model unreachable at start-up: intake starts anyway; the projectors retry \
             until it answers"
        );
        return Ok(());
    }
    Err(error)
}

/// The directory of a `sqlite://` file exists (or is created, for `create`) and is writable.
fn check_sqlite_dir(flag: Flag, url: &str, path: &Path, create: bool) -> Result<(), StartupError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        if !create {
            return Err(StartupError::new(
                flag,
                url,
                format!("directory {} does not exist", dir.display()),
                "check the path",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            StartupError::new(
                flag,
                url,
                format!("directory {} cannot be created: {e}", dir.display()),
                "create it with write access for the ledger's user, or choose another path",
            )
        })?;
    }
    check_writable(dir).map_err(|e| {
        StartupError::new(
            flag,
            url,
            format!("directory {} is not writable: {e}", dir.display()),
            "give the ledger's user write access (SQLite needs it even to read), or choose \
             another path",
        )
    })
}

/// Locks the directory of the embedded log (the data directory, or a `sqlite://` log's
/// directory); a log on a server needs no lock here.
fn lock_log_dir(storage: &StorageArgs) -> Result<Option<DirLock>, StartupError> {
    let url = storage.event_log_url.expose_secret();
    let (flag, value, dir) = if url.is_empty() {
        let dir = storage.data_dir.clone();
        (DATA_DIR, dir.display().to_string(), dir)
    } else {
        match sqlite_path(url).as_deref().and_then(Path::parent) {
            Some(dir) if !dir.as_os_str().is_empty() => (EVENT_LOG_URL, url.to_owned(), dir.into()),
            Some(_) => (EVENT_LOG_URL, url.to_owned(), PathBuf::from(".")),
            None => return Ok(None),
        }
    };
    match DirLock::acquire(&dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(e @ LockError::Held { .. }) => Err(StartupError::new(
            flag,
            &value,
            e.to_string(),
            "only one process may write the event log: stop that one first, or use another \
             directory",
        )),
        Err(e) => Err(StartupError::new(
            flag,
            &value,
            format_chain(&e),
            "give the ledger's user write access to the directory",
        )),
    }
}

/// Creates and removes a file in `dir`: the one test of writability that also holds for
/// root, read-only mounts and ACLs.
fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".ledger-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
