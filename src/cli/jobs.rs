//! The background jobs of `ledger serve`: the live projector (which survives its database being
//! away at start-up or later), its metrics, and the scheduled scrub.
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::scrub::ScrubPolicyArgs;
use crate::config::StorageArgs;
use crate::metrics::Metrics;
use crate::privacy::scrub::Scrubber;
use crate::projection::{Projector, ProjectorConfig, ReadModel, RetryPolicy, StatsHandle};
use crate::telemetry::format_chain;

/// Flags of the background jobs.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// Run the projectors inside `serve` (turn off to run `ledger project` separately).
    #[arg(long, env = "LEDGER_SERVE_PROJECTORS", default_value_t = true, action = clap::ArgAction::Set)]
    pub projectors: bool,
    /// Minutes between scheduled scrub runs; 0 turns the schedule off.
    #[arg(long, env = "LEDGER_SCRUB_INTERVAL_MINUTES", default_value_t = 60)]
    pub scrub_interval_minutes: u64,
    /// Seconds between refreshes of the scrub-eligible gauges (also refreshed at start and
    /// after every scrub run); 0 turns the refresh off.
    #[arg(
        long,
        env = "LEDGER_SCRUB_STATUS_INTERVAL_SECONDS",
        default_value_t = 60
    )]
    pub scrub_status_interval_seconds: u64,
    /// The scrub policy.
    #[command(flatten)]
    pub scrub: ScrubPolicyArgs,
}

/// Running background jobs.
pub struct Jobs {
    /// The tasks; each ends when the shutdown token is cancelled.
    pub handles: Vec<JoinHandle<()>>,
}

const RETRY: Duration = Duration::from_secs(5);

/// Connects the read model, retrying until it answers or shutdown.
async fn connect_read_model(url: &str, shutdown: &CancellationToken) -> Option<ReadModel> {
    loop {
        match ReadModel::connect(url).await {
            Ok(rm) => match rm.migrate().await {
                Ok(()) => return Some(rm),
                Err(e) => tracing::warn!(
                    read_model = %rm.location(),
                    error = %format_chain(&e),
                    "read model unreachable; intake goes on, projectors retry"
                ),
            },
            // The URL is not repeated: it may hold a password.
            Err(e) => tracing::warn!(
                error = %format_chain(&e),
                "read model unusable; intake goes on, projectors retry"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

fn publish(metrics: &Metrics, stats: &StatsHandle) {
    let s = stats.snapshot();
    let p = [("projector", s.projector.as_str())];
    metrics.gauge("ledger_projector_lag_positions", &p, s.lag_positions as f64);
    metrics.gauge(
        "ledger_projector_checkpoint",
        &p,
        s.checkpoint.unwrap_or(0) as f64,
    );
    metrics.gauge("ledger_projector_events_total", &p, s.events_total as f64);
    metrics.gauge("ledger_projector_retries_total", &p, s.retries_total as f64);
    metrics.gauge(
        "ledger_projector_quarantined_total",
        &p,
        s.quarantined_total as f64,
    );
    metrics.gauge(
        "ledger_projector_last_run_events_per_second",
        &p,
        s.last_run_events_per_second,
    );
    metrics.gauge(
        "ledger_contribution_tracking_conflicts_total",
        &[("kind", "contribution_id_change")],
        s.contribution_id_conflicts_total as f64,
    );
    metrics.gauge(
        "ledger_contribution_tracking_conflicts_total",
        &[("kind", "allocation_collision")],
        s.allocation_collisions_total as f64,
    );
    metrics.gauge(
        "ledger_projector_stopped",
        &p,
        if s.last_error.is_some() { 1.0 } else { 0.0 },
    );
}

/// The live projector, once its read model has answered; `None` at shutdown.
async fn wait_ready(
    ready: &mut tokio::sync::watch::Receiver<Option<Projector>>,
    shutdown: &CancellationToken,
) -> Option<Projector> {
    loop {
        if let Some(p) = ready.borrow_and_update().clone() {
            return Some(p);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            r = ready.changed() => r.ok()?,
        }
    }
}

/// Refreshes the scrub gauges with the figure `ledger scrub status` prints.
async fn publish_scrub_status(scrubber: &Scrubber, projector: &Projector) {
    if let Err(e) = scrubber.publish_status(Utc::now()).await {
        tracing::warn!(
            read_model = %projector.read_model().location(),
            error = %format_chain(&e),
            "scrub status unknown: the read model did not answer"
        );
    }
}

/// Starts the projector, the scrub schedule and the scrub-status refresh.
pub async fn start(
    storage: &StorageArgs,
    args: &JobArgs,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<Jobs> {
    let mut handles = Vec::new();
    if !args.projectors {
        return Ok(Jobs { handles });
    }
    let log = storage.open_event_log().await?;
    let vault = storage.open_vault().await?;
    let url = storage.read_model_url()?;
    metrics.describe(
        "ledger_projector_lag_positions",
        "Log positions between the projector's checkpoint and the head.",
    );
    metrics.describe(
        "ledger_projector_quarantined_total",
        "Events the projector could not project and quarantined (see `ledger verify`).",
    );
    metrics.describe(
        "ledger_projector_last_run_events_per_second",
        "Projection throughput of the last catch-up.",
    );
    let (ready_tx, ready_rx) = tokio::sync::watch::channel::<Option<Projector>>(None);
    {
        let (log, vault, url, metrics, shutdown) = (
            log.clone(),
            vault.clone(),
            url.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        handles.push(tokio::spawn(async move {
            let Some(rm) = connect_read_model(&url, &shutdown).await else { return };
            // Inside serve the projector never gives up on an unreachable database: intake
            // goes on, and the projector catches up whenever the database is back.
            let retry = RetryPolicy { max_attempts: None, max: Duration::from_secs(10), ..RetryPolicy::default() };
            let config = ProjectorConfig { vault: Some(vault), retry, ..ProjectorConfig::default() };
            let projector = Projector::with_config(log, rm, config);
            let stats = projector.stats();
            let _ = ready_tx.send(Some(projector.clone()));
            let reporter = {
                let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
                tokio::spawn(async move {
                    while !shutdown.is_cancelled() {
                        publish(&metrics, &stats);
                        tokio::select! { _ = shutdown.cancelled() => {}, _ = tokio::time::sleep(Duration::from_secs(2)) => {} }
                    }
                })
            };
            // A stopped projector (an event it cannot apply) stays stopped until an operator
            // skips the event; retrying a database outage happens inside the projector.
            while !shutdown.is_cancelled() {
                match projector.run_until_stopped(shutdown.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        let from = projector.stats().snapshot().checkpoint.map_or(0, |p| p + 1);
                        tracing::error!(
                            read_model = %projector.read_model().location(),
                            from_position = from,
                            error = %format_chain(&e),
                            "projector stopped; fix or `ledger project --skip-position`, retrying in 30 s"
                        );
                        tokio::select! { _ = shutdown.cancelled() => {}, _ = tokio::time::sleep(Duration::from_secs(30)) => {} }
                    }
                }
            }
            let _ = reporter.await;
        }));
    }
    // Until the read model answers, the scrub figures are unknown.
    metrics.gauge("ledger_scrub_status_up", &[], 0.0);
    if args.scrub_status_interval_seconds > 0 {
        let every = Duration::from_secs(args.scrub_status_interval_seconds);
        let (mut ready, shutdown) = (ready_rx.clone(), shutdown.clone());
        let (log, vault, policy, metrics) = (
            log.clone(),
            vault.clone(),
            args.scrub.policy(),
            metrics.clone(),
        );
        handles.push(tokio::spawn(async move {
            let Some(projector) = wait_ready(&mut ready, &shutdown).await else { return };
            let scrubber = Scrubber::new(log, vault, projector.read_model().clone(), policy, metrics);
            // Independent of the scrub schedule: donations become eligible as time passes and
            // as events arrive, not only when a scrub runs.
            loop {
                publish_scrub_status(&scrubber, &projector).await;
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(every) => {} }
            }
        }));
    }
    if args.scrub_interval_minutes > 0 {
        let interval = Duration::from_secs(args.scrub_interval_minutes * 60);
        let policy = args.scrub.policy();
        let mut ready = ready_rx;
        handles.push(tokio::spawn(async move {
            let Some(projector) = wait_ready(&mut ready, &shutdown).await else { return };
            let scrubber = Scrubber::new(log.clone(), vault, projector.read_model().clone(), policy, metrics);
            loop {
                let now = Utc::now();
                match scrubber.run(now, false).await {
                    Ok(report) if !report.scrubbed.is_empty() => {
                        // Purge the read model's residue once the live projector has blanked
                        // the scrubbed rows.
                        let head = log.head_position().await.ok().flatten().unwrap_or(0);
                        while projector.stats().snapshot().checkpoint.unwrap_or(0) < head && !shutdown.is_cancelled() {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        if let Err(e) = projector.read_model().purge_residue().await {
                            tracing::warn!(error = %format_chain(&e), "purging read-model residue failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(
                        read_model = %projector.read_model().location(),
                        error = %format_chain(&e),
                        "scheduled scrub failed"
                    ),
                }
                publish_scrub_status(&scrubber, &projector).await;
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(interval) => {} }
            }
        }));
    }
    Ok(Jobs { handles })
}
