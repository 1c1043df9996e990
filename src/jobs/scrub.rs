//! The scrub job: select donations, membership applications and address changes the policy
//! allows to scrub, confirm each against the log, destroy their keys, append
//! `PersonalDataScrubbed`, and let the read model catch up. Every context gets the same
//! crypto-shredding: an application's key is `privacy::membership_key_id`, an address
//! change's `privacy::address_change_key_id`; the event goes to the context's own scrub
//! stream (`membership_scrub-{id}`, `address_change_scrub-{id}`).
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
use crate::domain::address_change::commands as address_change_commands;
use crate::domain::address_change::AddressChangeView;
use crate::domain::commands::{self, ScrubPolicy};
use crate::domain::membership::commands as membership_commands;
use crate::domain::membership::MembershipView;
use crate::metrics::{catalog, Metrics};
use crate::privacy::{address_change_key_id, membership_key_id};
use crate::projection::scrub_selection::{
    AddressChangeScrubCandidate, MembershipScrubCandidate, ScrubCandidate,
};
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

/// One membership application scrubbed (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct ScrubbedMembership {
    /// The application.
    pub membership_id: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The rule that allowed it: `exported`, `cancelled_or_deleted`, `after_grace_period`.
    pub rule: &'static str,
}

/// One address change's address scrubbed (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct ScrubbedAddressChange {
    /// The address change.
    pub address_change_id: u64,
    /// When it was last changed.
    pub modified_at: DateTime<Utc>,
    /// The rule that allowed it: `exported`, `after_grace_period`.
    pub rule: &'static str,
}

/// What a run did. The top-level `scrubbed` and `not_confirmed` are donations (outside
/// readers rely on them); the membership applications sit beside them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScrubReport {
    /// A dry run: `scrubbed` lists what would have been scrubbed; nothing changed.
    pub dry_run: bool,
    /// Donations scrubbed (or would be, in a dry run).
    pub scrubbed: Vec<Scrubbed>,
    /// Donation candidates of the read model that the log does not confirm (the read model
    /// lags).
    pub not_confirmed: Vec<u64>,
    /// Membership applications scrubbed (or would be, in a dry run).
    pub memberships_scrubbed: Vec<ScrubbedMembership>,
    /// Membership candidates of the read model that the log does not confirm.
    pub memberships_not_confirmed: Vec<u64>,
    /// Address changes scrubbed (or would be, in a dry run).
    pub address_changes_scrubbed: Vec<ScrubbedAddressChange>,
    /// Address-change candidates of the read model that the log does not confirm.
    pub address_changes_not_confirmed: Vec<u64>,
    /// Time spent selecting candidates in the read model.
    #[serde(serialize_with = "as_millis")]
    pub selection_time: Duration,
}

impl ScrubReport {
    /// Whether the run scrubbed anything, in either context.
    pub fn scrubbed_any(&self) -> bool {
        !self.scrubbed.is_empty()
            || !self.memberships_scrubbed.is_empty()
            || !self.address_changes_scrubbed.is_empty()
    }
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// How many donations and membership applications are eligible but not yet scrubbed. The
/// top-level figures are the donations' (outside readers rely on them).
#[derive(Debug, Clone, Serialize)]
pub struct ScrubStatus {
    /// Donations eligible, not yet scrubbed (per the read model).
    pub eligible: usize,
    /// The oldest of them.
    pub oldest: Option<DateTime<Utc>>,
    /// The membership applications' figures.
    pub memberships: ContextStatus,
    /// The address changes' figures (the oldest by the time of their change).
    pub address_changes: ContextStatus,
}

/// The eligible, not yet scrubbed entities of one context.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContextStatus {
    /// How many (per the read model).
    pub eligible: usize,
    /// The oldest of them.
    pub oldest: Option<DateTime<Utc>>,
}

impl ContextStatus {
    fn of(created: impl Iterator<Item = DateTime<Utc>>) -> Self {
        let mut status = Self::default();
        for t in created {
            status.eligible += 1;
            status.oldest = Some(status.oldest.map_or(t, |o| o.min(t)));
        }
        status
    }

    /// Age in seconds of the oldest at `now`, 0 when there is none.
    fn oldest_age(&self, now: DateTime<Utc>) -> f64 {
        self.oldest
            .map_or(0.0, |o| (now - o).num_seconds().max(0) as f64)
    }
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

    async fn membership_candidates(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<MembershipScrubCandidate>, ScrubError> {
        let cutoff = now - self.policy.memberships.grace_period;
        Ok(self
            .read_model
            .membership_scrub_candidates(cutoff, usize::MAX)
            .await?)
    }

    async fn address_change_candidates(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<AddressChangeScrubCandidate>, ScrubError> {
        let cutoff = now - self.policy.address_changes.grace_period;
        Ok(self
            .read_model
            .address_change_scrub_candidates(cutoff, usize::MAX)
            .await?)
    }

    /// Counts eligible donations and membership applications and finds the oldest of each:
    /// the figures of `ledger scrub status` and of the `ledger_scrub_eligible` and
    /// `ledger_membership_scrub_eligible` gauges ([`Scrubber::publish_status`]).
    pub async fn status(&self, now: DateTime<Utc>) -> Result<ScrubStatus, ScrubError> {
        let donations = self.candidates(now, usize::MAX).await?;
        let donations = ContextStatus::of(donations.iter().map(|c| c.created_at));
        let memberships = self.membership_candidates(now).await?;
        Ok(ScrubStatus {
            eligible: donations.eligible,
            oldest: donations.oldest,
            memberships: ContextStatus::of(memberships.iter().map(|c| c.created_at)),
            address_changes: ContextStatus::of(
                self.address_change_candidates(now)
                    .await?
                    .iter()
                    .map(|c| c.modified_at),
            ),
        })
    }

    /// Computes [`Scrubber::status`] and publishes it as `ledger_scrub_eligible` and
    /// `ledger_scrub_oldest_eligible_age_seconds` (donations), and
    /// `ledger_membership_scrub_eligible` and its oldest age (membership applications). When
    /// it cannot be computed (the read model is away), the gauges are removed rather than
    /// left showing an old figure, and `ledger_scrub_status_up` reads 0.
    pub async fn publish_status(&self, now: DateTime<Utc>) -> Result<ScrubStatus, ScrubError> {
        match self.status(now).await {
            Ok(status) => {
                let age = status
                    .oldest
                    .map_or(0.0, |o| (now - o).num_seconds().max(0) as f64);
                self.metrics
                    .gauge(catalog::SCRUB_ELIGIBLE, &[], status.eligible as f64);
                self.metrics.gauge(catalog::SCRUB_OLDEST_AGE, &[], age);
                let m = &status.memberships;
                self.metrics
                    .gauge(catalog::MEMBERSHIP_SCRUB_ELIGIBLE, &[], m.eligible as f64);
                self.metrics
                    .gauge(catalog::MEMBERSHIP_SCRUB_OLDEST_AGE, &[], m.oldest_age(now));
                let a = &status.address_changes;
                self.metrics.gauge(
                    catalog::ADDRESS_CHANGE_SCRUB_ELIGIBLE,
                    &[],
                    a.eligible as f64,
                );
                self.metrics.gauge(
                    catalog::ADDRESS_CHANGE_SCRUB_OLDEST_AGE,
                    &[],
                    a.oldest_age(now),
                );
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
        self.metrics
            .remove_gauge(catalog::MEMBERSHIP_SCRUB_ELIGIBLE, &[]);
        self.metrics
            .remove_gauge(catalog::MEMBERSHIP_SCRUB_OLDEST_AGE, &[]);
        self.metrics
            .remove_gauge(catalog::ADDRESS_CHANGE_SCRUB_ELIGIBLE, &[]);
        self.metrics
            .remove_gauge(catalog::ADDRESS_CHANGE_SCRUB_OLDEST_AGE, &[]);
        self.metrics.gauge(catalog::SCRUB_STATUS_UP, &[], 0.0);
    }

    /// Scrubs every eligible donation and membership application (or, with `dry_run`, only
    /// reports them). Each candidate of the read model is confirmed against the log with the
    /// domain's rule first.
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
        let memberships = self.membership_candidates(now).await?;
        let address_changes = self.address_change_candidates(now).await?;
        report.selection_time = started.elapsed();
        let total = candidates.len() + memberships.len() + address_changes.len();
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
        self.scrub_memberships(&memberships, now, &mut report, &|done| {
            progress(candidates.len() + done, total)
        })
        .await?;
        let before = candidates.len() + memberships.len();
        self.scrub_address_changes(&address_changes, now, &mut report, &|done| {
            progress(before + done, total)
        })
        .await?;
        progress(total, total);
        if dry_run {
            tracing::info!(
                would_scrub = report.scrubbed.len(),
                memberships = report.memberships_scrubbed.len(),
                address_changes = report.address_changes_scrubbed.len(),
                not_confirmed = report.not_confirmed.len(),
                "scrub dry run finished: nothing was scrubbed"
            );
        } else {
            tracing::info!(
                scrubbed = report.scrubbed.len(),
                memberships = report.memberships_scrubbed.len(),
                address_changes = report.address_changes_scrubbed.len(),
                not_confirmed = report.not_confirmed.len(),
                "scrub run finished"
            );
        }
        Ok(report)
    }

    /// The membership part of a run: each candidate confirmed with the membership rule on its
    /// streams (`domain/wmde-memberships.md` §1.6), then, unless a dry run, its key destroyed
    /// and `PersonalDataScrubbed` appended to its scrub stream, in rounds as for donations.
    async fn scrub_memberships(
        &self,
        candidates: &[MembershipScrubCandidate],
        now: DateTime<Utc>,
        report: &mut ScrubReport,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<(), ScrubError> {
        let policy = &self.policy.memberships;
        for (n, round) in candidates.chunks(ROUND).enumerate() {
            let mut confirmed = Vec::with_capacity(round.len());
            for (i, c) in round.iter().enumerate() {
                progress(n * ROUND + i);
                let view = self.membership_view(c.membership_id).await?;
                match membership_commands::scrub(&view, now, policy) {
                    Ok(events) => {
                        let rule = membership_commands::scrub_rule(&view, now, policy)
                            .map_or("unspecified", ScrubRule::as_str);
                        confirmed.push((c, events, rule));
                    }
                    Err(e) => {
                        tracing::info!(membership_id = c.membership_id, reason = %e, "read-model candidate not confirmed by the log");
                        report.memberships_not_confirmed.push(c.membership_id);
                    }
                }
            }
            if !report.dry_run {
                let keys: Vec<u64> = confirmed
                    .iter()
                    .map(|(c, _, _)| membership_key_id(c.membership_id))
                    .collect();
                self.vault.destroy(&keys).await?;
            }
            let request = Uuid::now_v7();
            for (c, events, rule) in confirmed {
                if !report.dry_run {
                    let metadata = Metadata::new(Actor::system("scrub"), "ledger scrub", request);
                    // A new stream, as for donations: a concurrent scrub conflicts.
                    let parts = repository::appends(events, &HashMap::new(), &metadata);
                    match self.log.append_atomic(parts).await {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {
                            self.metrics
                                .count(catalog::MEMBERSHIPS_SCRUBBED, &[("rule", rule)], 1);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                report.memberships_scrubbed.push(ScrubbedMembership {
                    membership_id: c.membership_id,
                    created_at: c.created_at,
                    rule,
                });
            }
        }
        Ok(())
    }

    /// The address-change part of a run: each candidate confirmed with the address-change
    /// rule on its streams (`domain/wmde-memberships.md` §2), then, unless a dry run, its key
    /// destroyed and `PersonalDataScrubbed` appended to its scrub stream, in rounds.
    async fn scrub_address_changes(
        &self,
        candidates: &[AddressChangeScrubCandidate],
        now: DateTime<Utc>,
        report: &mut ScrubReport,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<(), ScrubError> {
        let policy = &self.policy.address_changes;
        for (n, round) in candidates.chunks(ROUND).enumerate() {
            let mut confirmed = Vec::with_capacity(round.len());
            for (i, c) in round.iter().enumerate() {
                progress(n * ROUND + i);
                let view = self.address_change_view(c.address_change_id).await?;
                match address_change_commands::scrub(&view, now, policy) {
                    Ok(events) => {
                        let rule = address_change_commands::scrub_rule(&view, now, policy)
                            .map_or("unspecified", ScrubRule::as_str);
                        confirmed.push((c, events, rule));
                    }
                    Err(e) => {
                        tracing::info!(address_change_id = c.address_change_id, reason = %e, "read-model candidate not confirmed by the log");
                        report
                            .address_changes_not_confirmed
                            .push(c.address_change_id);
                    }
                }
            }
            if !report.dry_run {
                let keys: Vec<u64> = confirmed
                    .iter()
                    .map(|(c, _, _)| address_change_key_id(c.address_change_id))
                    .collect();
                self.vault.destroy(&keys).await?;
            }
            let request = Uuid::now_v7();
            for (c, events, rule) in confirmed {
                if !report.dry_run {
                    let metadata = Metadata::new(Actor::system("scrub"), "ledger scrub", request);
                    // A new stream, as for donations: a concurrent scrub conflicts.
                    let parts = repository::appends(events, &HashMap::new(), &metadata);
                    match self.log.append_atomic(parts).await {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {
                            self.metrics.count(
                                catalog::ADDRESS_CHANGES_SCRUBBED,
                                &[("rule", rule)],
                                1,
                            );
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                report.address_changes_scrubbed.push(ScrubbedAddressChange {
                    address_change_id: c.address_change_id,
                    modified_at: c.modified_at,
                    rule,
                });
            }
        }
        Ok(())
    }

    /// An address change's view folded from its streams, sealed; one the log does not know
    /// folds to the empty view, which no rule allows to scrub.
    async fn address_change_view(&self, id: u64) -> Result<AddressChangeView, ScrubError> {
        let streams = repository::load_address_change(&*self.log, id)
            .await
            .map_err(audit::AuditError::from)?
            .unwrap_or_default();
        let mut view = AddressChangeView::default();
        for stream in &streams {
            for step in &stream.steps {
                view.apply(&stream.name, &step.event);
            }
        }
        Ok(view)
    }

    /// An application's view folded from its streams, sealed (the rule needs no personal
    /// data); an application the log does not know folds to the empty view, which no rule
    /// allows to scrub.
    async fn membership_view(&self, membership_id: u64) -> Result<MembershipView, ScrubError> {
        let streams = repository::load_membership(&*self.log, membership_id)
            .await
            .map_err(audit::AuditError::from)?
            .unwrap_or_default();
        let mut view = MembershipView::default();
        for stream in &streams {
            for step in &stream.steps {
                view.apply(&stream.name, &step.event);
            }
        }
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_context_status_counts_its_candidates_and_finds_the_oldest() {
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        let status = ContextStatus::of([t(30), t(10), t(20)].into_iter());
        assert_eq!(status.eligible, 3);
        assert_eq!(status.oldest, Some(t(10)));
        assert_eq!(status.oldest_age(t(70)), 60.0);
        let none = ContextStatus::of(std::iter::empty());
        assert_eq!((none.eligible, none.oldest), (0, None));
        assert_eq!(none.oldest_age(t(70)), 0.0);
    }

    #[test]
    fn a_report_scrubbed_something_when_either_context_did() {
        let mut report = ScrubReport::default();
        assert!(!report.scrubbed_any());
        report.memberships_scrubbed.push(ScrubbedMembership {
            membership_id: 1,
            created_at: Utc::now(),
            rule: "exported",
        });
        assert!(report.scrubbed_any());
    }
}
