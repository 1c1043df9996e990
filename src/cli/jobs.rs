//! The flags of `ledger serve`'s background jobs, and their start: the jobs themselves are
//! library code in `crate::jobs` (the live projector, the scheduled scrub, the scrub-status
//! refresh); this spawns the ones the flags turn on.
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::scrub::ScrubPolicyArgs;
use crate::jobs::projector::LiveProjector;
use crate::jobs::scrub_schedule::{ScrubJob, ScrubSchedule, ScrubStatusRefresh};
use crate::metrics::Metrics;
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
        return Jobs { handles };
    }
    let SharedStores {
        log,
        vault,
        read_model_url,
    } = stores;
    let (projector, ready) =
        LiveProjector::new(log.clone(), vault.clone(), read_model_url, metrics.clone());
    handles.push(tokio::spawn(projector.run_until_stopped(shutdown.clone())));
    // Until the read model answers, the scrub figures are unknown.
    metrics.gauge("ledger_scrub_status_up", &[], 0.0);
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
            interval: Duration::from_secs(args.scrub_interval_minutes * 60),
        };
        handles.push(tokio::spawn(schedule.run_until_stopped(shutdown.clone())));
    }
    Jobs { handles }
}
