//! `ledger migrate`: bring the event log, the key store and the read model up to the schema
//! this binary embeds (every other command also does so when it opens a store; this does it on
//! its own, for a deployment step), or with `--list` show each store's migrations, applied or
//! pending, changing nothing.
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::storage_url::{mask_password, sqlite_path};
use crate::config::StorageArgs;
use crate::projection::migrations::{states, MigrationState};
use crate::projection::ReadModel;

/// `ledger migrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Only list every store's migrations, applied or pending; apply nothing.
    #[arg(long, env = "LEDGER_MIGRATE_LIST", default_value_t = false)]
    pub list: bool,
    /// Print the list as JSON.
    #[arg(long, env = "LEDGER_MIGRATE_JSON", default_value_t = false)]
    pub json: bool,
}

/// One store's migrations.
#[derive(Debug, Clone, Serialize)]
pub struct StoreMigrations {
    /// `event log`, `key store` or `read model`.
    pub store: &'static str,
    /// Where it is (passwords masked).
    pub location: String,
    /// Its migrations, oldest first.
    pub migrations: Vec<MigrationState>,
}

impl StoreMigrations {
    /// Migrations not applied yet.
    pub fn pending(&self) -> usize {
        self.migrations.iter().filter(|m| !m.applied).count()
    }
}

/// The event log's embedded migrations.
fn event_log_migrator() -> Migrator {
    sqlx::migrate!("./migrations/sqlite/eventlog")
}

/// The key store's embedded migrations for its dialect.
fn key_store_migrator(postgres: bool) -> Migrator {
    if postgres {
        sqlx::migrate!("./migrations/postgres/keys")
    } else {
        sqlx::migrate!("./migrations/sqlite/keys")
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The embedded log's file.
fn event_log_file(storage: &StorageArgs) -> anyhow::Result<PathBuf> {
    use secrecy::ExposeSecret;
    let url = storage.event_log_url.expose_secret();
    if url.is_empty() {
        return Ok(storage.data_dir.join("events.sqlite"));
    }
    sqlite_path(url).context("--event-log-url must be a sqlite: URL")
}

/// Applied versions in an SQLite file's `_sqlx_migrations` (none when the file or the table
/// does not exist). Opens the file read-only.
async fn sqlite_applied(file: &PathBuf) -> anyhow::Result<Vec<i64>> {
    if !file.exists() {
        return Ok(Vec::new());
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await?;
    let applied = if exists > 0 {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut conn)
            .await?
    } else {
        Vec::new()
    };
    conn.close().await?;
    Ok(applied)
}

/// Applied versions in a PostgreSQL database's `_sqlx_migrations` (in the connection's
/// schema, where the key store's migrations run).
async fn postgres_applied(url: &str) -> anyhow::Result<Vec<i64>> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {}", mask_password(url)))?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await?;
    let applied = if exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut conn)
            .await?
    } else {
        Vec::new()
    };
    conn.close().await?;
    Ok(applied)
}

/// Every store's migrations, applied or pending. Changes nothing.
pub async fn list(storage: &StorageArgs) -> anyhow::Result<Vec<StoreMigrations>> {
    let log_file = event_log_file(storage)?;
    let event_log = StoreMigrations {
        store: "event log",
        location: log_file.display().to_string(),
        migrations: states(&event_log_migrator(), &sqlite_applied(&log_file).await?),
    };
    let keys_url = storage.key_store_url()?;
    let keys = if is_postgres(&keys_url) {
        StoreMigrations {
            store: "key store",
            location: mask_password(&keys_url),
            migrations: states(
                &key_store_migrator(true),
                &postgres_applied(&keys_url).await?,
            ),
        }
    } else {
        let file = sqlite_path(&keys_url)
            .or_else(|| {
                SqliteConnectOptions::from_str(&keys_url)
                    .ok()
                    .map(|o| o.get_filename().to_path_buf())
            })
            .context("--key-store-url must be a sqlite: or postgres: URL")?;
        StoreMigrations {
            store: "key store",
            location: file.display().to_string(),
            migrations: states(&key_store_migrator(false), &sqlite_applied(&file).await?),
        }
    };
    let read_model = ReadModel::connect(&storage.read_model_url()?)
        .await
        .context("connecting to the read model")?;
    let read_model = StoreMigrations {
        store: "read model",
        location: read_model.location(),
        migrations: read_model.migrations().await?,
    };
    Ok(vec![event_log, keys, read_model])
}

/// Applies every pending migration of every store (opening a store migrates it).
pub async fn apply(storage: &StorageArgs) -> anyhow::Result<()> {
    storage
        .open_event_log()
        .await
        .context("migrating the event log")?;
    storage
        .open_vault()
        .await
        .context("migrating the key store")?;
    let read_model = ReadModel::connect(&storage.read_model_url()?)
        .await
        .context("connecting to the read model")?;
    read_model
        .migrate()
        .await
        .context("migrating the read model")?;
    read_model.close().await;
    Ok(())
}

/// Runs `ledger migrate`.
pub async fn run(storage: &StorageArgs, args: MigrateArgs) -> anyhow::Result<()> {
    if !args.list {
        let before: usize = list(storage).await?.iter().map(|s| s.pending()).sum();
        apply(storage).await?;
        tracing::info!(applied = before, "migrations applied");
    }
    let stores = list(storage).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &stores)?;
        writeln!(out)?;
        return Ok(());
    }
    for store in &stores {
        writeln!(
            out,
            "{} ({}): {} applied, {} pending",
            store.store,
            store.location,
            store.migrations.len() - store.pending(),
            store.pending()
        )?;
        for m in &store.migrations {
            let state = if m.applied { "applied" } else { "pending" };
            writeln!(out, "  {:<16} {:<8} {}", m.version, state, m.description)?;
        }
    }
    Ok(())
}
