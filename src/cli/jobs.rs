//! The flags of `ledger serve`'s background jobs, and their start: the jobs themselves are
//! library code in `crate::jobs` (the live projector, the scheduled scrub, the scrub-status
//! refresh); this spawns the ones the flags turn on.
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::scrub::ScrubPolicyArgs;
use crate::jobs::projector::{LiveProjector, ProjectorReady};
use crate::jobs::scrub_schedule::{ScrubJob, ScrubSchedule, ScrubStatusRefresh};
use crate::metrics::{catalog, Metrics};
use crate::privacy::Vault;
use crate::store::EventLog;

/// Flags of the background jobs.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// Run the projectors inside `serve` (turn off to run `ledger project` separately).
    #[arg(long, env = "LEDGER_SERVE_PROJECTORS", default_value_t = true, action = clap::ArgAction::Set)]
    pub projectors: bool,
    /// Minutes between scheduled scrub runs; 0 turns the schedule off.
    #[arg(long, env = "LEDGER_SCRUB_INTERVAL_MINUTES", default_value_t = 60)]
    pub scrub_interval_minutes: u64,
    /// Minutes from start-up to the first scheduled scrub run. Absent: one interval, so that
    /// a start never purges data at once.
    #[arg(
        long,
        env = "LEDGER_SCRUB_FIRST_RUN_AFTER_MINUTES",
        conflicts_with = "scrub_at_start"
    )]
    pub scrub_first_run_after_minutes: Option<u64>,
    /// Run the first scheduled scrub at start-up instead of one interval later.
    #[arg(long, env = "LEDGER_SCRUB_AT_START", default_value_t = false)]
    pub scrub_at_start: bool,
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

impl JobArgs {
    /// From start-up to the first scheduled scrub run.
    pub fn scrub_first_run_after(&self) -> Duration {
        let minutes = if self.scrub_at_start {
            0
        } else {
            self.scrub_first_run_after_minutes
                .unwrap_or(self.scrub_interval_minutes)
        };
        Duration::from_secs(minutes.saturating_mul(60))
    }
}

/// Running background jobs.
pub struct Jobs {
    /// The tasks; each ends when the shutdown token is cancelled.
    pub handles: Vec<JoinHandle<()>>,
    /// The live projector once its read model answers (`None` with `--projectors false`).
    pub projector: Option<ProjectorReady>,
}

/// The stores the jobs share with the intake (opened once, by the intake).
pub struct SharedStores {
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// The key store.
    pub vault: Vault,
    /// The read model's URL.
    pub read_model_url: String,
}

/// Starts the projector, the scrub schedule and the scrub-status refresh.
pub fn start(
    stores: SharedStores,
    args: &JobArgs,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Jobs {
    let mut handles = Vec::new();
    if !args.projectors {
        tracing::info!(
            "projectors off (--projectors false): no scrub schedule and no scrub gauges in \
             this process"
        );
        return Jobs {
            handles,
            projector: None,
        };
    }
    let SharedStores {
        log,
        vault,
        read_model_url,
    } = stores;
    let (projector, ready) = LiveProjector::new(
        log.clone(),
        vault.clone(),
        read_model_url.clone(),
        metrics.clone(),
    );
    handles.push(tokio::spawn(projector.run_until_stopped(shutdown.clone())));
    // Until the read model answers, the scrub figures are unknown.
    metrics.gauge(catalog::SCRUB_STATUS_UP, &[], 0.0);
    let scrub_job = || ScrubJob {
        log: log.clone(),
        vault: vault.clone(),
        policy: args.scrub.policy(),
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    if args.scrub_status_interval_seconds > 0 {
        let refresh = ScrubStatusRefresh {
            job: scrub_job(),
            every: Duration::from_secs(args.scrub_status_interval_seconds),
        };
        handles.push(tokio::spawn(refresh.run_until_stopped(shutdown.clone())));
    }
    if args.scrub_interval_minutes > 0 {
        let schedule = ScrubSchedule {
            job: scrub_job(),
            interval: Duration::from_secs(args.scrub_interval_minutes.saturating_mul(60)),
            first_run_after: args.scrub_first_run_after(),
            read_model_url,
        };
        handles.push(tokio::spawn(schedule.run_until_stopped(shutdown.clone())));
    } else {
        tracing::info!(
            "scrub schedule off (--scrub-interval-minutes 0): personal data is scrubbed only \
             by `ledger scrub`"
        );
    }
    Jobs {
        handles,
        projector: Some(ready),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn jobs(args: &[&str]) -> Result<super::JobArgs, clap::Error> {
        let cli = Cli::try_parse_from(["ledger", "serve"].iter().chain(args))?;
        match cli.command {
            Command::Serve(serve) => Ok(serve.jobs),
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn the_first_scheduled_scrub_waits_one_interval_unless_told_otherwise() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let after = |args: &[&str]| jobs(args).unwrap().scrub_first_run_after();
        assert_eq!(after(&["--scrub-interval-minutes", "30"]), minutes(30));
        assert_eq!(after(&["--scrub-first-run-after-minutes", "5"]), minutes(5));
        assert_eq!(after(&["--scrub-at-start"]), Duration::ZERO);
        assert!(
            jobs(&["--scrub-at-start", "--scrub-first-run-after-minutes", "5"]).is_err(),
            "the two flags contradict each other"
        );
    }
}
