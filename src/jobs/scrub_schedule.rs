//! The scrub jobs of `ledger serve`: the scheduled scrub run (donations, membership
//! applications and address changes, each by its own rule), and the refresh of the
//! scrub-eligible gauges of every context (independent of the schedule: entities become eligible as time passes and as
//! events arrive, not only when a scrub runs).
//!
//! The schedule is logged when it starts, with its first run, and after each run with the
//! next; the first run waits [`ScrubSchedule::first_run_after`] (by default one interval), so
//! that starting a ledger never purges data before anyone could see it coming.
//!
//! A run and the gauges see what `ledger scrub` and `ledger scrub status` see, which catch the
//! read model up first: each run and each refresh waits (for at most one of its intervals)
//! until the live projector has reached the log's head as of then. Published straight after
//! start-up, before the projector's first catch-up, the gauge showed the figure of a read
//! model behind the log (0 on a new one) for a whole interval, and a run at start-up selected
//! from that read model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use super::projector::{sleep_or_stop, ProjectorReady};
use super::scrub::Scrubber;
use crate::domain::commands::ScrubPolicy;
use crate::metrics::Metrics;
use crate::privacy::Vault;
use crate::projection::Projector;
use crate::store::EventLog;
use crate::telemetry::format_chain;

/// How long a scrape waits for the scrub status.
const SCRAPE_BUDGET: Duration = Duration::from_secs(3);
/// While waiting for the projector to blank scrubbed rows before purging their residue.
const CATCH_UP_POLL: Duration = Duration::from_millis(200);

/// What both scrub jobs are built from.
pub struct ScrubJob {
    /// The log the scrub appends to.
    pub log: Arc<dyn EventLog>,
    /// The key store whose keys it destroys.
    pub vault: Vault,
    /// Which donations may be scrubbed.
    pub policy: ScrubPolicy,
    /// Where the gauges go.
    pub metrics: Metrics,
    /// The live projector, whose read model selects the candidates.
    pub ready: ProjectorReady,
}

impl ScrubJob {
    /// Waits for the live projector; the scrubber on its read model and the projector, or
    /// `None` at shutdown.
    async fn start(mut self, shutdown: &CancellationToken) -> Option<(Scrubber, Projector)> {
        let projector = self.ready.wait(shutdown).await?;
        let scrubber = Scrubber::new(
            self.log,
            self.vault,
            projector.read_model().clone(),
            self.policy,
            self.metrics,
        );
        Some((scrubber, projector))
    }
}

/// Refreshes the scrub-eligible gauges every `every`.
pub struct ScrubStatusRefresh {
    /// The stores and policy.
    pub job: ScrubJob,
    /// Between refreshes.
    pub every: Duration,
}

impl ScrubStatusRefresh {
    /// Refreshes until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let log = self.job.log.clone();
        let metrics = self.job.metrics.clone();
        let Some((scrubber, projector)) = self.job.start(&shutdown).await else {
            return;
        };
        // A scrape counts what the read model holds then, as `ledger scrub status` does (which
        // catches the read model up first: the projector's lag, beside it, says how far the
        // two may differ). Bounded, so that a read model that hangs cannot hang `/metrics`.
        let (s, p) = (scrubber.clone(), projector.clone());
        metrics.on_scrape(
            "scrub_status",
            Arc::new(move || {
                let (scrubber, projector) = (s.clone(), p.clone());
                Box::pin(async move {
                    let refreshed = tokio::time::timeout(
                        SCRAPE_BUDGET,
                        publish_scrub_status(&scrubber, &projector),
                    );
                    if refreshed.await.is_err() {
                        scrubber.publish_unknown();
                        tracing::warn!(
                            read_model = %projector.read_model().location(),
                            "scrub status unknown: the read model did not answer within 3 s"
                        );
                    }
                })
            }),
        );
        while !shutdown.is_cancelled() {
            wait_projected(&*log, &projector, Some(self.every), &shutdown).await;
            publish_scrub_status(&scrubber, &projector).await;
            sleep_or_stop(self.every, &shutdown).await;
        }
    }
}

/// Runs the scrub every `interval`, purges the read model's residue after a run that scrubbed
/// anything, and refreshes the gauges after each run.
pub struct ScrubSchedule {
    /// The stores and policy.
    pub job: ScrubJob,
    /// Between runs.
    pub interval: Duration,
    /// From start to the first run.
    pub first_run_after: Duration,
    /// The read model's URL, where the schedule's lease is taken: among processes sharing
    /// the read model, one runs the schedule.
    pub read_model_url: String,
}

impl ScrubSchedule {
    /// Logs the schedule, waits for the first run, then runs every interval until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let log = self.job.log.clone();
        let metrics = self.job.metrics.clone();
        tracing::info!(
            every_minutes = self.interval.as_secs() / 60,
            next_run = %next_run(self.first_run_after),
            grace_hours = self.job.policy.grace_period.num_hours(),
            "scrub schedule on: the first run purges the personal data of every eligible \
             donation (see `ledger scrub --dry-run`)"
        );
        sleep_or_stop(self.first_run_after, &shutdown).await;
        let Some((scrubber, projector)) = self.job.start(&shutdown).await else {
            return;
        };
        let mut lease: Option<super::lease::Lease> = None;
        while !shutdown.is_cancelled() {
            if lease.as_ref().is_none_or(|l| l.lost().is_cancelled()) {
                // The lost lease's connection goes first, then the next one is waited for.
                drop(lease.take());
                lease = super::lease::acquire(
                    &self.read_model_url,
                    "scrub_schedule",
                    &metrics,
                    &shutdown,
                )
                .await;
                if lease.is_none() {
                    break;
                }
            }
            // Candidates come from the read model: select from one caught up with the log, as
            // `ledger scrub` does (not from one still catching up after start-up).
            wait_projected(&*log, &projector, Some(self.interval), &shutdown).await;
            match scrubber.run(Utc::now(), false).await {
                Ok(report) if report.scrubbed_any() => {
                    purge_when_projected(&*log, &projector, &shutdown).await;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(
                    read_model = %projector.read_model().location(),
                    error = %format_chain(&e),
                    "scheduled scrub failed"
                ),
            }
            publish_scrub_status(&scrubber, &projector).await;
            tracing::info!(next_run = %next_run(self.interval), "scheduled scrub run done");
            // The lease's token ends with shutdown too, and at once when the lease is lost.
            let until = lease
                .as_ref()
                .map_or_else(|| shutdown.clone(), |l| l.lost());
            sleep_or_stop(self.interval, &until).await;
        }
    }
}

/// The time a run `after` from now will start, to the second, for logs.
fn next_run(after: Duration) -> String {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    Utc::now().checked_add_signed(after).map_or_else(
        || "never".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// Waits until the live projector has reached the log's head as of now (for at most `limit`,
/// when given), or shutdown.
async fn wait_projected(
    log: &dyn EventLog,
    projector: &Projector,
    limit: Option<Duration>,
    shutdown: &CancellationToken,
) {
    let started = Instant::now();
    let head = log.head_position().await.ok().flatten().unwrap_or(0);
    while projector.stats().snapshot().checkpoint.unwrap_or(0) < head
        && !shutdown.is_cancelled()
        && limit.is_none_or(|l| started.elapsed() < l)
    {
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
}

/// Purges the read model's residue once the live projector has blanked the scrubbed rows
/// (caught up to the log's head).
async fn purge_when_projected(
    log: &dyn EventLog,
    projector: &Projector,
    shutdown: &CancellationToken,
) {
    wait_projected(log, projector, None, shutdown).await;
    if let Err(e) = projector.read_model().purge_residue().await {
        tracing::warn!(error = %format_chain(&e), "purging read-model residue failed");
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
