//! Command-line glue for `ledger project` and `ledger rebuild`: clap argument structs and the
//! entry points the binary calls after starting telemetry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use crate::config::StorageArgs;
use crate::projection::{self, Projector, ProjectorConfig, ReadModel, RetryPolicy};
use crate::store::EventLog;

/// How the projector batches and retries (where the log and read model are comes from the
/// global storage flags).
#[derive(Debug, Clone, clap::Args)]
pub struct ReadModelArgs {
    /// The projector's name: the key of its checkpoint.
    #[arg(long, env = "LEDGER_PROJECTOR_NAME", default_value = projection::DEFAULT_PROJECTOR)]
    pub projector: String,
    /// Events per batch; one batch is one read-model transaction.
    #[arg(long, env = "LEDGER_PROJECTOR_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// Longest back-off between retries when the read-model database is unreachable, in
    /// seconds.
    #[arg(long, env = "LEDGER_PROJECTOR_MAX_BACKOFF_SECS", default_value_t = 30)]
    pub max_backoff_secs: u64,
    /// Quarantine an event that cannot be projected (recorded in `projector_skipped_event`
    /// with its cause, counted, listed by `ledger verify`) and go on; `false` stops before it
    /// until an operator skips it with `--skip-position`.
    #[arg(long, env = "LEDGER_PROJECTOR_QUARANTINE", default_value_t = true, action = clap::ArgAction::Set)]
    pub quarantine: bool,
}

impl ReadModelArgs {
    fn config(&self) -> ProjectorConfig {
        ProjectorConfig {
            name: self.projector.clone(),
            batch_size: self.batch_size.max(1),
            retry: RetryPolicy {
                max: Duration::from_secs(self.max_backoff_secs.max(1)),
                ..RetryPolicy::default()
            },
            quarantine: self.quarantine,
            ..ProjectorConfig::default()
        }
    }

    /// Opens the log, the vault and the read model named by the storage flags.
    pub(crate) async fn open(
        &self,
        storage: &StorageArgs,
    ) -> anyhow::Result<(Arc<dyn EventLog>, ProjectorConfig, String)> {
        let log = storage
            .open_event_log()
            .await
            .context("opening the event log")?;
        let mut config = self.config();
        config.vault = Some(
            storage
                .open_vault()
                .await
                .context("opening the key store")?,
        );
        let url = storage.read_model_url()?;
        ensure_sqlite_dir(&url)?;
        Ok((log, config, url))
    }
}

/// `ledger project`: follow the log into the read model.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// Where and how.
    #[command(flatten)]
    pub read_model: ReadModelArgs,
    /// Catch up to the head of the log once, then exit (instead of following it live).
    #[arg(long, env = "LEDGER_PROJECT_ONCE", default_value_t = false)]
    pub once: bool,
    /// Record that the event at this position (the one the projector stopped at) is to be
    /// passed over, then exit. Needs `--skip-reason` and `--operator`.
    #[arg(long, env = "LEDGER_PROJECT_SKIP_POSITION")]
    pub skip_position: Option<u64>,
    /// Why the event is skipped (stored with the skip).
    #[arg(long, env = "LEDGER_PROJECT_SKIP_REASON", default_value = "")]
    pub skip_reason: String,
    /// Who decided the skip (stored with the skip).
    #[arg(long, env = "LEDGER_OPERATOR", default_value = "")]
    pub operator: String,
    /// Replay the quarantined event at this position after a fix: lift its quarantine and
    /// rebuild the read model (the projector is past it), then exit. Quarantined again if it
    /// still cannot be projected.
    #[arg(
        long,
        env = "LEDGER_PROJECT_REPLAY_QUARANTINED",
        conflicts_with = "skip_position"
    )]
    pub replay_quarantined: Option<u64>,
}

/// `ledger rebuild`: project the whole log into fresh tables, then switch to them.
#[derive(Debug, Clone, clap::Args)]
pub struct RebuildArgs {
    /// Where and how.
    #[command(flatten)]
    pub read_model: ReadModelArgs,
}

/// Runs `ledger project`.
pub async fn project(storage: &StorageArgs, args: ProjectArgs) -> anyhow::Result<()> {
    let (log, config, url) = args.read_model.open(storage).await?;
    let read_model = ReadModel::connect(&url)
        .await
        .context("connecting to the read model")?;
    read_model
        .migrate()
        .await
        .context("migrating the read model")?;
    if let Some(position) = args.replay_quarantined {
        if !read_model
            .release_quarantined(&config.name, position)
            .await?
        {
            anyhow::bail!(
                "no event is quarantined at position {position} for projector `{}`",
                config.name
            );
        }
        read_model.close().await;
        let report = projection::rebuild(log, &url, config).await?;
        tracing::info!(
            position,
            events = report.events,
            checkpoint = ?report.checkpoint,
            "quarantine lifted and read model rebuilt"
        );
        return Ok(());
    }
    let projector = Projector::with_config(log, read_model, config);
    if let Some(position) = args.skip_position {
        projector
            .skip_event(position, &args.skip_reason, &args.operator)
            .await?;
        tracing::info!(position, "event skipped; the projector will pass over it");
        return Ok(());
    }
    if args.once {
        let outcome = projector.run_once().await?;
        tracing::info!(
            events = outcome.events,
            batches = outcome.batches,
            retries = outcome.retries,
            checkpoint = ?outcome.checkpoint,
            seconds = outcome.elapsed.as_secs_f64(),
            "caught up"
        );
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    projector.run_until_stopped(shutdown).await?;
    tracing::info!("projector stopped");
    Ok(())
}

/// Runs `ledger rebuild`.
pub async fn rebuild(storage: &StorageArgs, args: RebuildArgs) -> anyhow::Result<()> {
    let (log, config, url) = args.read_model.open(storage).await?;
    let bar = Progress::new("rebuilding the read model", None, "positions");
    let report = projection::rebuild_with_progress(log, &url, config, &|p| {
        if let Some(head) = p.head {
            bar.set_total(head, "positions");
        }
        bar.set_position(p.position.unwrap_or(0));
        if p.finished {
            // Before the rebuild logs its switch: a log line under a drawn bar leaves it behind.
            bar.finish();
        }
    })
    .await;
    bar.finish();
    let report = report?;
    tracing::info!(
        events = report.events,
        projection_seconds = report.projection.as_secs_f64(),
        switch_seconds = report.switch.as_secs_f64(),
        events_per_second = report.events_per_second,
        checkpoint = ?report.checkpoint,
        "read model rebuilt"
    );
    Ok(())
}

/// Creates the directory of a `sqlite://` file if it is missing.
fn ensure_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let path = super::storage_url::sqlite_path(url);
    if let Some(dir) = path.as_deref().and_then(Path::parent) {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
    token.cancel();
}
