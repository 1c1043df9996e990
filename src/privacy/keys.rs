//! The key store: one random 256-bit key per donation, in its own database (a SQLite file by
//! default, a PostgreSQL table in production), never in the log. Destroying a key is the
//! scrub: afterwards nothing can decrypt that donation's personal data.
//!
//! SQLite: `secure_delete` overwrites deleted rows with zeros, and every destroy ends with a
//! `wal_checkpoint(TRUNCATE)`, so no copy stays in free pages or in the WAL file.
//! PostgreSQL: the deleted rows are removed with `VACUUM FULL`, which rewrites the table file.
//!
//! Key creation is group-committed: `get_or_create` hands its id to one writer task, which
//! takes every id waiting in its queue and creates them in one transaction (one fsync for the
//! whole batch), so many concurrent intake calls share one commit.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rand::RngCore;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Acquire, PgPool, Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use super::PrivacyError;

/// A donation's data key. Zeroed when dropped.
#[derive(Clone)]
pub struct DataKey(pub(crate) Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Self(k)
    }

    /// The raw key bytes, for tests that search files for them.
    #[doc(hidden)]
    pub fn expose_for_tests(&self) -> &[u8; 32] {
        &self.0
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, PrivacyError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| PrivacyError::CorruptKey)?;
        Ok(Self(Zeroizing::new(arr)))
    }
}

/// Where keys live.
#[derive(Clone, Debug)]
enum Backend {
    /// The embedded default: a SQLite file.
    Sqlite(SqlitePool),
    /// A PostgreSQL table.
    Postgres(PgPool),
}

/// The key store. Cheap to clone; clones share the pool and the key-creating writer task.
#[derive(Clone, Debug)]
pub struct KeyStore {
    backend: Backend,
    creator: mpsc::Sender<CreateRequest>,
}

/// One waiting `get_or_create`.
#[derive(Debug)]
struct CreateRequest {
    key_id: u64,
    reply: oneshot::Sender<Result<DataKey, PrivacyError>>,
}

const LOOKUP_CHUNK: usize = 900;
/// Keys the writer creates in one transaction at most.
const MAX_CREATE_BATCH: usize = 900;

/// Whether a key-store URL names PostgreSQL (anything else [`KeyStore::connect`] opens as
/// SQLite).
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

impl KeyStore {
    /// Whether [`KeyStore::connect`] has a backend for `url`'s scheme: `sqlite:` or
    /// `postgres:` (`postgresql:`). Start-up checks refuse anything else by name.
    pub fn accepts(url: &str) -> bool {
        is_postgres(url) || url.starts_with("sqlite:")
    }

    fn with_backend(backend: Backend) -> Self {
        let (creator, rx) = mpsc::channel(8192);
        tokio::spawn(run_creator(backend.clone(), rx));
        Self { backend, creator }
    }

    /// Opens the key store in the SQLite file at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, PrivacyError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .pragma("secure_delete", "ON");
        Self::sqlite_with(options).await
    }

    async fn sqlite_with(options: SqliteConnectOptions) -> Result<Self, PrivacyError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite/keys")
            .run(&pool)
            .await?;
        Ok(Self::with_backend(Backend::Sqlite(pool)))
    }

    /// Opens the key store at a URL: `sqlite://…` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, PrivacyError> {
        if is_postgres(url) {
            let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
            sqlx::migrate!("./migrations/postgres/keys")
                .run(&pool)
                .await?;
            return Ok(Self::with_backend(Backend::Postgres(pool)));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .pragma("secure_delete", "ON");
        Self::sqlite_with(options).await
    }

    /// The key of `key_id`, created on first use. Refused once the key was destroyed: a
    /// scrubbed donation takes no new personal data. Concurrent calls are group-committed.
    pub async fn get_or_create(&self, key_id: u64) -> Result<DataKey, PrivacyError> {
        if i64::try_from(key_id).is_err() {
            return Err(PrivacyError::KeyIdOutOfRange(key_id));
        }
        let (reply, rx) = oneshot::channel();
        self.creator
            .send(CreateRequest { key_id, reply })
            .await
            .map_err(|_| PrivacyError::WriteFailed("the key writer stopped".into()))?;
        rx.await
            .map_err(|_| PrivacyError::WriteFailed("the key writer stopped".into()))?
    }

    /// Creates the keys of `ids` ahead of use in as few transactions as possible (one per 900
    /// ids) and returns every key that is not destroyed. Existing keys are returned as stored.
    pub async fn create_many(&self, ids: &[u64]) -> Result<HashMap<u64, DataKey>, PrivacyError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_CREATE_BATCH) {
            out.extend(create_many(&self.backend, chunk).await?);
        }
        Ok(out)
    }

    /// The keys that exist among `ids` (destroyed or never created ones are absent).
    pub async fn get_many(&self, ids: &[u64]) -> Result<HashMap<u64, DataKey>, PrivacyError> {
        let mut out = HashMap::with_capacity(ids.len());
        let ids: Vec<i64> = ids.iter().filter_map(|&i| i64::try_from(i).ok()).collect();
        match &self.backend {
            Backend::Sqlite(pool) => {
                for chunk in ids.chunks(LOOKUP_CHUNK) {
                    let marks = vec!["?"; chunk.len()].join(",");
                    let sql = format!("SELECT key_id, key FROM data_key WHERE key_id IN ({marks})");
                    let mut q = sqlx::query(&sql);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    for row in q.persistent(false).fetch_all(pool).await? {
                        out.insert(
                            row.get::<i64, _>(0) as u64,
                            DataKey::from_slice(row.get::<&[u8], _>(1))?,
                        );
                    }
                }
            }
            Backend::Postgres(pool) => {
                let rows = sqlx::query("SELECT key_id, key FROM data_key WHERE key_id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(pool)
                    .await?;
                for row in rows {
                    out.insert(
                        row.get::<i64, _>(0) as u64,
                        DataKey::from_slice(row.get::<&[u8], _>(1))?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Destroys the keys of `ids` and purges every residue the database keeps of them.
    pub async fn destroy(&self, ids: &[u64]) -> Result<(), PrivacyError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = ids.iter().filter_map(|&i| i64::try_from(i).ok()).collect();
        match &self.backend {
            Backend::Sqlite(pool) => {
                let now = chrono::Utc::now().timestamp();
                let mut tx = pool.begin().await?;
                for chunk in ids.chunks(LOOKUP_CHUNK) {
                    let marks = vec!["?"; chunk.len()].join(",");
                    let del = format!("DELETE FROM data_key WHERE key_id IN ({marks})");
                    let mut q = sqlx::query(&del);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    q.persistent(false).execute(&mut *tx).await?;
                    let values = vec!["(?, ?)"; chunk.len()].join(",");
                    let sql = format!(
                        "INSERT INTO destroyed_key (key_id, destroyed_at) VALUES {values} ON CONFLICT (key_id) DO NOTHING"
                    );
                    let mut q = sqlx::query(&sql);
                    for id in chunk {
                        q = q.bind(*id).bind(now);
                    }
                    q.persistent(false).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                // Move the zeroed pages into the main file and empty the WAL, which still holds
                // the frames written when the keys were created.
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(pool)
                        .await?;
                if busy != 0 {
                    tracing::warn!("key-store WAL checkpoint was blocked by a reader; it will be retried on the next destroy");
                }
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("DELETE FROM data_key WHERE key_id = ANY($1)")
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO destroyed_key (key_id) SELECT * FROM UNNEST($1::bigint[]) ON CONFLICT (key_id) DO NOTHING")
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                sqlx::query("VACUUM FULL data_key").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Whether the key of `key_id` was destroyed.
    pub async fn is_destroyed(&self, key_id: u64) -> Result<bool, PrivacyError> {
        let id = i64::try_from(key_id).map_err(|_| PrivacyError::KeyIdOutOfRange(key_id))?;
        let found: Option<i64> = match &self.backend {
            Backend::Sqlite(pool) => {
                sqlx::query_scalar("SELECT key_id FROM destroyed_key WHERE key_id = ?")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar("SELECT key_id FROM destroyed_key WHERE key_id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(found.is_some())
    }
}

/// The key-creating writer: takes every waiting request, creates the keys in one transaction,
/// answers each. Ends when every `KeyStore` clone is dropped.
async fn run_creator(backend: Backend, mut rx: mpsc::Receiver<CreateRequest>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_CREATE_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut ids: Vec<u64> = batch.iter().map(|r| r.key_id).collect();
        ids.sort_unstable();
        ids.dedup();
        match create_many(&backend, &ids).await {
            Ok(mut keys) => {
                for r in batch {
                    let key = keys
                        .get(&r.key_id)
                        .cloned()
                        .ok_or(PrivacyError::KeyDestroyed(r.key_id));
                    let _ = r.reply.send(key);
                }
                keys.clear();
            }
            Err(e) => {
                tracing::error!(error = %e, keys = ids.len(), "key creation batch failed");
                let msg = e.to_string();
                for r in batch {
                    let _ = r.reply.send(Err(PrivacyError::WriteFailed(msg.clone())));
                }
            }
        }
    }
}

/// Creates the missing keys among `ids` (at most [`LOOKUP_CHUNK`]) in one transaction and
/// returns the stored key of every id that is not destroyed.
async fn create_many(
    backend: &Backend,
    ids: &[u64],
) -> Result<HashMap<u64, DataKey>, PrivacyError> {
    let ids: Vec<i64> = ids.iter().filter_map(|&i| i64::try_from(i).ok()).collect();
    let mut out = HashMap::with_capacity(ids.len());
    match backend {
        Backend::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            let conn = conn.acquire().await?;
            // IMMEDIATE: take the write lock before reading, so a concurrent destroy cannot
            // slip between the check and the insert.
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let result: Result<(), PrivacyError> = async {
                let marks = vec!["?"; ids.len()].join(",");
                let sql = format!("SELECT key_id FROM destroyed_key WHERE key_id IN ({marks})");
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for id in &ids {
                    q = q.bind(*id);
                }
                let destroyed: HashSet<i64> =
                    q.persistent(false).fetch_all(&mut *conn).await?.into_iter().collect();
                let fresh: Vec<i64> = ids.iter().copied().filter(|i| !destroyed.contains(i)).collect();
                if !fresh.is_empty() {
                    let now = chrono::Utc::now().timestamp();
                    let values = vec!["(?, ?, ?)"; fresh.len()].join(",");
                    let sql = format!(
                        "INSERT INTO data_key (key_id, key, created_at) VALUES {values} ON CONFLICT (key_id) DO NOTHING"
                    );
                    let keys: Vec<DataKey> = fresh.iter().map(|_| DataKey::random()).collect();
                    let mut q = sqlx::query(&sql);
                    for (id, key) in fresh.iter().zip(&keys) {
                        q = q.bind(*id).bind(key.0.as_slice()).bind(now);
                    }
                    q.persistent(false).execute(&mut *conn).await?;
                    let sql = format!("SELECT key_id, key FROM data_key WHERE key_id IN ({})", vec!["?"; fresh.len()].join(","));
                    let mut q = sqlx::query(&sql);
                    for id in &fresh {
                        q = q.bind(*id);
                    }
                    for row in q.persistent(false).fetch_all(&mut *conn).await? {
                        out.insert(
                            row.get::<i64, _>(0) as u64,
                            DataKey::from_slice(row.get::<&[u8], _>(1))?,
                        );
                    }
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) => {
                    sqlx::query("COMMIT").execute(&mut *conn).await?;
                }
                Err(e) => {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    return Err(e);
                }
            }
        }
        Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let destroyed: HashSet<i64> =
                sqlx::query_scalar("SELECT key_id FROM destroyed_key WHERE key_id = ANY($1)")
                    .bind(&ids)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
            let fresh: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|i| !destroyed.contains(i))
                .collect();
            let keys: Zeroizing<Vec<Vec<u8>>> =
                Zeroizing::new(fresh.iter().map(|_| DataKey::random().0.to_vec()).collect());
            sqlx::query("INSERT INTO data_key (key_id, key) SELECT * FROM UNNEST($1::bigint[], $2::bytea[]) ON CONFLICT (key_id) DO NOTHING")
                .bind(&fresh)
                .bind(&*keys)
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query("SELECT key_id, key FROM data_key WHERE key_id = ANY($1)")
                .bind(&fresh)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                out.insert(
                    row.get::<i64, _>(0) as u64,
                    DataKey::from_slice(row.get::<&[u8], _>(1))?,
                );
            }
            tx.commit().await?;
        }
    }
    Ok(out)
}
