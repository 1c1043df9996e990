//! A projector's settings ([`ProjectorConfig`], [`RetryPolicy`]) and what it reports: step
//! and catch-up outcomes, the counters a metrics endpoint reads ([`ProjectorStats`]), lag.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{DEFAULT_PROJECTOR, REBUILD_BATCH_SIZE};
use crate::store::Position;

/// How a projector retries transient failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first back-off.
    pub initial: Duration,
    /// The longest back-off.
    pub max: Duration,
    /// Attempts per step before giving up in [`Projector::run_once`]; `None` retries forever.
    /// [`Projector::run_until_stopped`] always retries until stopped.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            max_attempts: Some(20),
        }
    }
}

impl RetryPolicy {
    /// The back-off before retry number `attempt` (from 1): doubling, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Settings of a projector.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Its name, the key of its checkpoint.
    pub name: String,
    /// Events per batch (one transaction).
    pub batch_size: usize,
    /// Events per batch while [`rebuild`] fills fresh tables. Nobody reads those before the
    /// switch, so larger transactions cost only memory, and more of a donation's events fold
    /// into one row write.
    pub rebuild_batch_size: usize,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long a live projector waits for a new event before looking again anyway.
    pub idle_poll: Duration,
    /// Decrypts personal data before it is projected; without it personal columns stay empty.
    pub vault: Option<crate::privacy::Vault>,
    /// Rows per table (donation, payment, contribution tracking, membership application,
    /// address change, subscription) kept in memory between batches and written once, when
    /// they leave the cache or when the projector catches up (0: every batch writes its rows).
    /// Only for tables nobody reads until the fill is complete: [`rebuild`] and a verify's
    /// scratch database set it; a live projector must not, since its checkpoint would run
    /// ahead of the rows a reader sees.
    pub write_back_rows: usize,
    /// Quarantine an event the projector cannot project (record it in
    /// `projector_skipped_event` with the cause, count it, go on) instead of stopping before
    /// it until an operator skips it. On by default: no event in the log may stop a read
    /// model.
    pub quarantine: bool,
    /// Where the projector records each batch's duration
    /// (`ledger_projector_batch_duration_seconds`); none by default.
    pub metrics: Option<crate::metrics::Metrics>,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_PROJECTOR.to_owned(),
            batch_size: 1000,
            rebuild_batch_size: REBUILD_BATCH_SIZE,
            retry: RetryPolicy::default(),
            idle_poll: Duration::from_secs(1),
            vault: None,
            write_back_rows: 0,
            quarantine: true,
            metrics: None,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// A batch was committed.
    Processed {
        /// Events applied or skipped.
        events: usize,
        /// The checkpoint after it.
        checkpoint: Option<Position>,
    },
    /// Nothing left to read.
    CaughtUp,
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatchUpOutcome {
    /// Events applied or skipped.
    pub events: u64,
    /// Batches committed.
    pub batches: u64,
    /// Transient failures retried.
    pub retries: u64,
    /// The checkpoint at the end.
    pub checkpoint: Option<Position>,
    /// Wall time.
    pub elapsed: Duration,
}

/// A projector's counters, for a metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectorStats {
    /// The projector's name.
    pub projector: String,
    /// The last applied position.
    pub checkpoint: Option<Position>,
    /// The log's head when last looked at.
    pub head_position: Option<Position>,
    /// Head minus checkpoint, in (opaque, non-contiguous) positions: zero means caught up.
    pub lag_positions: u64,
    /// Events applied or skipped since start.
    pub events_total: u64,
    /// Events passed over because an operator skipped them or the projector quarantined them.
    pub skipped_total: u64,
    /// Events the projector quarantined since start (it could not project them).
    pub quarantined_total: u64,
    /// Batches committed.
    pub batches_total: u64,
    /// Transient failures retried.
    pub retries_total: u64,
    /// `contribution_id_change` conflicts recorded (`change_cid_errors` at WMF).
    pub contribution_id_conflicts_total: u64,
    /// `allocation_collision` conflicts recorded.
    pub allocation_collisions_total: u64,
    /// Events of the last catch-up run that applied any.
    pub last_run_events: u64,
    /// Duration of that run, in seconds.
    pub last_run_seconds: f64,
    /// Throughput of that run (0 until a run applied anything).
    pub last_run_events_per_second: f64,
    /// The last error, if the projector is stopped or retrying.
    pub last_error: Option<String>,
}

/// A shared handle on a projector's stats; clone it into a metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<ProjectorStats>>);

impl StatsHandle {
    /// A copy of the current counters.
    pub fn snapshot(&self) -> ProjectorStats {
        self.0.lock().expect("stats lock").clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut ProjectorStats)) {
        f(&mut self.0.lock().expect("stats lock"));
    }
}

/// Lag of a projector behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Head minus checkpoint, in positions.
    pub positions: u64,
    /// Events behind, counted by reading the log up to `cap` events.
    pub events: u64,
    /// Whether the count stopped at the cap.
    pub capped: bool,
}
