//! The scrub job: select donations the policy allows to scrub, confirm each against the log,
//! destroy their keys, append `PersonalDataScrubbed`, and let the read model catch up.
//!
//! Order matters for crash safety: the key is destroyed first, then the event appended. A crash
//! in between leaves a donation whose data is already unreadable but not yet marked; it is still
//! eligible, so the next run appends the event (destroying a destroyed key is a no-op). The
//! other order could leave a donation marked scrubbed whose key survives.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::audit;
use crate::domain::commands::{self, ScrubPolicy};
use crate::metrics::{catalog, Metrics};
use crate::projection::scrub_selection::ScrubCandidate;
use crate::projection::ReadModel;
use crate::proto::events::ScrubRule;
use crate::repository;
use crate::store::{Actor, EventLog, Metadata, StoreError};

use crate::privacy::{PrivacyError, Vault};

/// Donations handled per round (one key-store purge, one group of appends).
const ROUND: usize = 500;

/// Errors of a scrub run.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// The read model failed.
    #[error(transparent)]
    ReadModel(#[from] crate::projection::ProjectionError),
    /// Reading the log failed.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// Appending failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key store failed.
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
}

/// One donation scrubbed (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct Scrubbed {
    /// The donation.
    pub donation_id: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The rule that allowed it: `exported`, `cancelled_or_deleted`, `abandoned`, `stale_moderation`.
    pub rule: &'static str,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScrubReport {
    /// A dry run: `scrubbed` lists what would have been scrubbed; nothing changed.
    pub dry_run: bool,
    /// Scrubbed (or would be, in a dry run).
    pub scrubbed: Vec<Scrubbed>,
    /// Candidates of the read model that the log does not confirm (the read model lags).
    pub not_confirmed: Vec<u64>,
    /// Time spent selecting candidates in the read model.
    #[serde(serialize_with = "as_millis")]
    pub selection_time: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// How many donations are eligible but not yet scrubbed.
#[derive(Debug, Clone, Serialize)]
pub struct ScrubStatus {
    /// Eligible, not yet scrubbed (per the read model).
    pub eligible: usize,
    /// The oldest of them.
    pub oldest: Option<DateTime<Utc>>,
}

/// The scrub job.
#[derive(Clone)]
pub struct Scrubber {
    log: Arc<dyn EventLog>,
    vault: Vault,
    read_model: ReadModel,
    policy: ScrubPolicy,
    metrics: Metrics,
}

impl Scrubber {
    /// A scrubber over these stores.
    pub fn new(
        log: Arc<dyn EventLog>,
        vault: Vault,
        read_model: ReadModel,
        policy: ScrubPolicy,
        metrics: Metrics,
    ) -> Self {
        Self {
            log,
            vault,
            read_model,
            policy,
            metrics,
        }
    }

    async fn candidates(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ScrubCandidate>, ScrubError> {
        let abandoned_before = now - self.policy.grace_period;
        let stale = self.policy.stale_moderation_after.map(|d| now - d);
        Ok(self
            .read_model
            .scrub_candidates(abandoned_before, stale, limit)
            .await?)
    }

    /// Counts eligible donations and finds the oldest one: the figure of `ledger scrub status`
    /// and of the `ledger_scrub_eligible` gauge ([`Scrubber::publish_status`]).
    pub async fn status(&self, now: DateTime<Utc>) -> Result<ScrubStatus, ScrubError> {
        let all = self.candidates(now, usize::MAX).await?;
        let oldest = all.iter().map(|c| c.created_at).min();
        Ok(ScrubStatus {
            eligible: all.len(),
            oldest,
        })
    }

    /// Computes [`Scrubber::status`] and publishes it as `ledger_scrub_eligible` and
    /// `ledger_scrub_oldest_eligible_age_seconds`. When it cannot be computed (the read model
    /// is away), both gauges are removed rather than left showing an old figure, and
    /// `ledger_scrub_status_up` reads 0.
    pub async fn publish_status(&self, now: DateTime<Utc>) -> Result<ScrubStatus, ScrubError> {
        match self.status(now).await {
            Ok(status) => {
                let age = status
                    .oldest
                    .map_or(0.0, |o| (now - o).num_seconds().max(0) as f64);
                self.metrics
                    .gauge(catalog::SCRUB_ELIGIBLE, &[], status.eligible as f64);
                self.metrics.gauge(catalog::SCRUB_OLDEST_AGE, &[], age);
                self.metrics.gauge(catalog::SCRUB_STATUS_UP, &[], 1.0);
                Ok(status)
            }
            Err(e) => {
                self.publish_unknown();
                Err(e)
            }
        }
    }

    /// Removes the scrub-eligible gauges and sets `ledger_scrub_status_up` to 0: the status
    /// cannot be read now.
    pub fn publish_unknown(&self) {
        self.metrics.remove_gauge(catalog::SCRUB_ELIGIBLE, &[]);
        self.metrics.remove_gauge(catalog::SCRUB_OLDEST_AGE, &[]);
        self.metrics.gauge(catalog::SCRUB_STATUS_UP, &[], 0.0);
    }

    /// Scrubs every eligible donation (or, with `dry_run`, only reports them). Each candidate
    /// of the read model is confirmed against the log with the domain's rule first.
    pub async fn run(&self, now: DateTime<Utc>, dry_run: bool) -> Result<ScrubReport, ScrubError> {
        self.run_with_progress(now, dry_run, &|_, _| {}).await
    }

    /// [`Scrubber::run`], calling `progress(done, candidates)` after each candidate.
    #[tracing::instrument(name = "run", skip_all, err, fields(dry_run))]
    pub async fn run_with_progress(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<ScrubReport, ScrubError> {
        let mut report = ScrubReport {
            dry_run,
            ..ScrubReport::default()
        };
        let started = Instant::now();
        let candidates = self.candidates(now, usize::MAX).await?;
        report.selection_time = started.elapsed();
        let total = candidates.len();
        progress(0, total);
        for (n, round) in candidates.chunks(ROUND).enumerate() {
            let mut confirmed = Vec::with_capacity(round.len());
            for (i, c) in round.iter().enumerate() {
                progress(n * ROUND + i, total);
                let steps = audit::load_donation_sealed(&*self.log, c.donation_id).await?;
                let view = audit::view(&steps);
                match commands::scrub(&view, now, &self.policy) {
                    Ok(events) => {
                        let rule = commands::scrub_rule(&view, now, &self.policy)
                            .map_or("unspecified", ScrubRule::as_str);
                        confirmed.push((c, events, rule));
                    }
                    Err(e) => {
                        tracing::info!(donation_id = c.donation_id, reason = %e, "read-model candidate not confirmed by the log");
                        report.not_confirmed.push(c.donation_id);
                    }
                }
            }
            if dry_run {
                for (c, _, rule) in &confirmed {
                    report.scrubbed.push(Scrubbed {
                        donation_id: c.donation_id,
                        created_at: c.created_at,
                        rule,
                    });
                }
                continue;
            }
            let ids: Vec<u64> = confirmed.iter().map(|(c, _, _)| c.donation_id).collect();
            self.vault.destroy(&ids).await?;
            let request = Uuid::now_v7();
            for (c, events, rule) in confirmed {
                let metadata = Metadata::new(Actor::system("scrub"), "ledger scrub", request);
                // Every stream the scrub writes is new (one `PersonalDataScrubbed`): a
                // concurrent scrub of the same donation conflicts instead of doubling it.
                let parts = repository::appends(events, &HashMap::new(), &metadata);
                match self.log.append_atomic(parts).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => {
                        self.metrics.count(catalog::SCRUBBED, &[("rule", rule)], 1);
                        report.scrubbed.push(Scrubbed {
                            donation_id: c.donation_id,
                            created_at: c.created_at,
                            rule,
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        progress(total, total);
        if dry_run {
            tracing::info!(
                would_scrub = report.scrubbed.len(),
                not_confirmed = report.not_confirmed.len(),
                "scrub dry run finished: nothing was scrubbed"
            );
        } else {
            tracing::info!(
                scrubbed = report.scrubbed.len(),
                not_confirmed = report.not_confirmed.len(),
                "scrub run finished"
            );
        }
        Ok(report)
    }
}
