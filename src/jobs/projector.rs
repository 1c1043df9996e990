//! The live projector of `ledger serve`: connects its read model (retrying until it answers),
//! projects until shutdown, restarts after a stop, and publishes its figures as metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{catalog, Metrics};
use crate::privacy::Vault;
use crate::projection::{Projector, ProjectorConfig, ReadModel, RetryPolicy, StatsHandle};
use crate::store::EventLog;
use crate::telemetry::format_chain;

/// Between attempts to connect an unreachable read model.
const CONNECT_RETRY: Duration = Duration::from_secs(5);
/// Between restarts of a stopped projector.
const RESTART_AFTER: Duration = Duration::from_secs(30);
/// Between publications of the projector's figures.
const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// The live projector job.
pub struct LiveProjector {
    log: Arc<dyn EventLog>,
    vault: Vault,
    url: String,
    metrics: Metrics,
    ready: watch::Sender<Option<Projector>>,
    leading: Arc<AtomicBool>,
}

/// Hands the live projector, once its read model has answered, to the jobs that need it.
#[derive(Clone)]
pub struct ProjectorReady(watch::Receiver<Option<Projector>>, Arc<AtomicBool>);

impl ProjectorReady {
    /// A handle that already carries `projector` (for tests of what reads it).
    #[cfg(test)]
    pub(crate) fn of(projector: Projector) -> Self {
        Self(
            watch::channel(Some(projector)).1,
            Arc::new(AtomicBool::new(true)),
        )
    }

    /// Whether this process's projector runs (holds the projector's lease), rather than
    /// standing by while another process sharing the read model projects.
    pub fn leads(&self) -> bool {
        self.1.load(Ordering::Relaxed)
    }

    /// The live projector if its read model has answered by now.
    pub fn current(&self) -> Option<Projector> {
        self.0.borrow().clone()
    }

    /// The live projector once its read model has answered; `None` at shutdown.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> Option<Projector> {
        loop {
            if let Some(p) = self.0.borrow_and_update().clone() {
                return Some(p);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = self.0.changed() => r.ok()?,
            }
        }
    }
}

impl LiveProjector {
    /// The job for the read model at `url`, decrypting through `vault`, and the handle that
    /// will carry its projector.
    pub fn new(
        log: Arc<dyn EventLog>,
        vault: Vault,
        url: String,
        metrics: Metrics,
    ) -> (Self, ProjectorReady) {
        metrics.gauge(catalog::READ_MODEL_CONNECTED, &[], 0.0);
        let (ready, receiver) = watch::channel(None);
        let leading = Arc::new(AtomicBool::new(false));
        let job = Self {
            log,
            vault,
            url,
            metrics,
            ready,
            leading: leading.clone(),
        };
        (job, ProjectorReady(receiver, leading))
    }

    /// Connects, then projects until `shutdown`. Inside serve the projector never gives up on
    /// an unreachable database: intake goes on, and the projector catches up whenever the
    /// database is back. A stopped projector (an event it cannot apply, with quarantine off)
    /// is restarted every 30 s until an operator skips the event.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let Some(rm) = connect_read_model(&self.url, &shutdown).await else {
            return;
        };
        let retry = RetryPolicy {
            max_attempts: None,
            max: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let config = ProjectorConfig {
            vault: Some(self.vault),
            retry,
            metrics: Some(self.metrics.clone()),
            ..ProjectorConfig::default()
        };
        let projector = Projector::with_config(self.log.clone(), rm, config);
        let _ = self.ready.send(Some(projector.clone()));
        self.metrics.gauge(catalog::READ_MODEL_CONNECTED, &[], 1.0);
        // A scrape reads the projector's figures and the log's head as they are then.
        let (metrics, stats, log) = (self.metrics.clone(), projector.stats(), self.log.clone());
        self.metrics.on_scrape(
            "projector",
            Arc::new(move || {
                let (metrics, stats, log) = (metrics.clone(), stats.clone(), log.clone());
                Box::pin(async move {
                    match log.head_position().await {
                        Ok(head) => publish(&metrics, &stats, Some(head.unwrap_or(0))),
                        Err(e) => {
                            tracing::warn!(error = %format_chain(&e), "reading the log's head for /metrics failed");
                            publish(&metrics, &stats, None);
                        }
                    }
                })
            }),
        );
        let reporter = tokio::spawn(publish_until_stopped(
            self.metrics.clone(),
            projector.stats(),
            self.log.clone(),
            shutdown.clone(),
        ));
        while !shutdown.is_cancelled() {
            // Among processes sharing the read model, one projects; the others stand by.
            let Some(lease) =
                super::lease::acquire(&self.url, "projector", &self.metrics, &shutdown).await
            else {
                break;
            };
            self.leading.store(true, Ordering::Relaxed);
            let outcome = projector.run_until_stopped(lease.lost()).await;
            self.leading.store(false, Ordering::Relaxed);
            match outcome {
                // Shutdown, or the lease was lost: stand by for it again.
                Ok(()) => continue,
                Err(e) => {
                    let from = projector.stats().snapshot().checkpoint.map_or(0, |p| p + 1);
                    tracing::error!(
                        read_model = %projector.read_model().location(),
                        from_position = from,
                        error = %format_chain(&e),
                        "projector stopped; fix or `ledger project --skip-position`, retrying in 30 s"
                    );
                    sleep_or_stop(RESTART_AFTER, &shutdown).await;
                }
            }
        }
        let _ = reporter.await;
    }
}

/// Sleeps for `duration` or until `shutdown`, whichever comes first.
pub(crate) async fn sleep_or_stop(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

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
        sleep_or_stop(CONNECT_RETRY, shutdown).await;
        if shutdown.is_cancelled() {
            return None;
        }
    }
}

/// Publishes the projector's figures every two seconds until shutdown, for readers of the
/// registry between scrapes (a scrape publishes them itself, with the log's head of then).
async fn publish_until_stopped(
    metrics: Metrics,
    stats: StatsHandle,
    log: Arc<dyn EventLog>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        // The log's head as it is now: a projector that is not running (its database away, or
        // standing by for its lease) falls further behind as the log grows.
        let head = log.head_position().await.ok().map(|h| h.unwrap_or(0));
        publish(&metrics, &stats, head);
        sleep_or_stop(PUBLISH_EVERY, &shutdown).await;
    }
}

/// The projector's figures; the lag against `head` when given, else against the head the
/// projector saw last.
fn publish(metrics: &Metrics, stats: &StatsHandle, head: Option<u64>) {
    let s = stats.snapshot();
    let p = [("projector", s.projector.as_str())];
    let checkpoint = s.checkpoint.unwrap_or(0);
    let lag = head.map_or(s.lag_positions, |h| h.saturating_sub(checkpoint));
    if let Some(head) = head {
        metrics.gauge(catalog::LOG_HEAD, &[], head as f64);
    }
    metrics.gauge(catalog::PROJECTOR_LAG, &p, lag as f64);
    metrics.gauge(catalog::PROJECTOR_CHECKPOINT, &p, checkpoint as f64);
    metrics.count_to(catalog::PROJECTOR_EVENTS, &p, s.events_total);
    metrics.count_to(catalog::PROJECTOR_BATCHES, &p, s.batches_total);
    metrics.count_to(catalog::PROJECTOR_RETRIES, &p, s.retries_total);
    metrics.count_to(catalog::PROJECTOR_QUARANTINED, &p, s.quarantined_total);
    metrics.gauge(catalog::PROJECTOR_RATE, &p, s.last_run_events_per_second);
    metrics.count_to(
        catalog::TRACKING_CONFLICTS,
        &[("kind", "contribution_id_change")],
        s.contribution_id_conflicts_total,
    );
    metrics.count_to(
        catalog::TRACKING_CONFLICTS,
        &[("kind", "allocation_collision")],
        s.allocation_collisions_total,
    );
    metrics.gauge(
        catalog::PROJECTOR_STOPPED,
        &p,
        if s.last_error.is_some() { 1.0 } else { 0.0 },
    );
}
