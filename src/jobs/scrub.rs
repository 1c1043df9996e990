//! The scrub job: select donations, membership applications, address changes and
//! subscriptions the policy allows to scrub (for subscriptions: to remove), confirm each
//! against the log, destroy their keys, append `PersonalDataScrubbed`, and let the read model
//! catch up. Every context gets the same crypto-shredding, through one shape
//! ([`Scrubber::scrub_context`]) each context plugs into with its [`ScrubArm`]: an
//! application's key is `privacy::membership_key_id`, an address change's
//! `privacy::address_change_key_id`, a subscription's `privacy::subscription_key_id`; the
//! event goes to the context's own scrub stream (`membership_scrub-{id}`,
//! `address_change_scrub-{id}`, `subscription_scrub-{id}`). A run also destroys the keys of the
//! subscriptions' duplicate-index windows no duplicate check needs any more.
//!
//! Order matters for crash safety: the key is destroyed first, then the event appended. A crash
//! in between leaves a donation whose data is already unreadable but not yet marked; it is still
//! eligible, so the next run appends the event (destroying a destroyed key is a no-op). The
//! other order could leave a donation marked scrubbed whose key survives.

use std::collections::HashMap;
use std::future::Future;
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
use crate::domain::subscription::commands as subscription_commands;
use crate::domain::subscription::{window_of, SubscriptionView, WINDOW_SECONDS};
use crate::domain::{DomainError, DomainEvent, StreamEvent};
use crate::metrics::{catalog, Metrics};
use crate::privacy::{
    address_change_key_id, membership_key_id, subscription_key_id, subscription_window_key_id,
};
use crate::projection::scrub_selection::{
    AddressChangeScrubCandidate, MembershipScrubCandidate, ScrubCandidate,
    SubscriptionScrubCandidate,
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

/// One subscription removed (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct RemovedSubscription {
    /// The subscription.
    pub subscription_id: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
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
    /// Subscriptions removed (or would be, in a dry run).
    pub subscriptions_removed: Vec<RemovedSubscription>,
    /// Subscription candidates of the read model that the log does not confirm.
    pub subscriptions_not_confirmed: Vec<u64>,
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
            || !self.subscriptions_removed.is_empty()
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
    /// The subscriptions' figures (eligible for removal).
    pub subscriptions: ContextStatus,
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

    async fn subscription_candidates(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<SubscriptionScrubCandidate>, ScrubError> {
        let cutoff = now - self.policy.subscriptions.grace_period;
        Ok(self
            .read_model
            .subscription_scrub_candidates(cutoff, usize::MAX)
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
            subscriptions: ContextStatus::of(
                self.subscription_candidates(now)
                    .await?
                    .iter()
                    .map(|c| c.created_at),
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
                let s = &status.subscriptions;
                self.metrics
                    .gauge(catalog::SUBSCRIPTION_SCRUB_ELIGIBLE, &[], s.eligible as f64);
                self.metrics.gauge(
                    catalog::SUBSCRIPTION_SCRUB_OLDEST_AGE,
                    &[],
                    s.oldest_age(now),
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
        self.metrics
            .remove_gauge(catalog::SUBSCRIPTION_SCRUB_ELIGIBLE, &[]);
        self.metrics
            .remove_gauge(catalog::SUBSCRIPTION_SCRUB_OLDEST_AGE, &[]);
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
        let subscriptions = self.subscription_candidates(now).await?;
        report.selection_time = started.elapsed();
        let total =
            candidates.len() + memberships.len() + address_changes.len() + subscriptions.len();
        progress(0, total);
        let policy = &self.policy;
        let donations = self
            .scrub_context(
                &DONATIONS,
                &candidates,
                dry_run,
                &|done| progress(done, total),
                |id| async move {
                    let steps = audit::load_donation_sealed(&*self.log, id).await?;
                    let view = audit::view(&steps);
                    Ok::<_, ScrubError>(
                        commands::scrub(&view, now, policy)
                            .map(|events| (events, commands::scrub_rule(&view, now, policy))),
                    )
                },
            )
            .await?;
        report.not_confirmed = donations.not_confirmed;
        report.scrubbed = donations
            .scrubbed
            .into_iter()
            .map(|(c, rule)| Scrubbed {
                donation_id: c.donation_id,
                created_at: c.created_at,
                rule,
            })
            .collect();
        let before = candidates.len();
        let policy = &self.policy.memberships;
        let done = self
            .scrub_context(
                &MEMBERSHIPS,
                &memberships,
                dry_run,
                &|done| progress(before + done, total),
                |id| async move {
                    let view: MembershipView = fold(
                        repository::load_membership(&*self.log, id).await,
                        MembershipView::apply,
                    )?;
                    Ok::<_, ScrubError>(membership_commands::scrub(&view, now, policy).map(
                        |events| (events, membership_commands::scrub_rule(&view, now, policy)),
                    ))
                },
            )
            .await?;
        report.memberships_not_confirmed = done.not_confirmed;
        report.memberships_scrubbed = done
            .scrubbed
            .into_iter()
            .map(|(c, rule)| ScrubbedMembership {
                membership_id: c.membership_id,
                created_at: c.created_at,
                rule,
            })
            .collect();
        let before = before + memberships.len();
        let policy = &self.policy.address_changes;
        let done = self
            .scrub_context(
                &ADDRESS_CHANGES,
                &address_changes,
                dry_run,
                &|done| progress(before + done, total),
                |id| async move {
                    let view: AddressChangeView = fold(
                        repository::load_address_change(&*self.log, id).await,
                        AddressChangeView::apply,
                    )?;
                    Ok::<_, ScrubError>(address_change_commands::scrub(&view, now, policy).map(
                        |events| {
                            (
                                events,
                                address_change_commands::scrub_rule(&view, now, policy),
                            )
                        },
                    ))
                },
            )
            .await?;
        report.address_changes_not_confirmed = done.not_confirmed;
        report.address_changes_scrubbed = done
            .scrubbed
            .into_iter()
            .map(|(c, rule)| ScrubbedAddressChange {
                address_change_id: c.address_change_id,
                modified_at: c.modified_at,
                rule,
            })
            .collect();
        let before = before + address_changes.len();
        let policy = &self.policy.subscriptions;
        let done = self
            .scrub_context(
                &SUBSCRIPTIONS,
                &subscriptions,
                dry_run,
                &|done| progress(before + done, total),
                |id| async move {
                    let view: SubscriptionView = fold(
                        repository::load_subscription(&*self.log, id).await,
                        SubscriptionView::apply,
                    )?;
                    Ok::<_, ScrubError>(subscription_commands::remove(&view, now, policy).map(
                        |events| {
                            (
                                events,
                                subscription_commands::removal_rule(&view, now, policy),
                            )
                        },
                    ))
                },
            )
            .await?;
        report.subscriptions_not_confirmed = done.not_confirmed;
        report.subscriptions_removed = done
            .scrubbed
            .into_iter()
            .map(|(c, rule)| RemovedSubscription {
                subscription_id: c.subscription_id,
                created_at: c.created_at,
                rule,
            })
            .collect();
        if !dry_run {
            // Only the keys that exist: a destroy purges the key store's free pages.
            let spent = spent_window_keys(now);
            let existing: Vec<u64> = self
                .vault
                .keys()
                .get_many(&spent)
                .await?
                .into_keys()
                .collect();
            self.vault.destroy(&existing).await?;
        }
        progress(total, total);
        if dry_run {
            tracing::info!(
                would_scrub = report.scrubbed.len(),
                memberships = report.memberships_scrubbed.len(),
                address_changes = report.address_changes_scrubbed.len(),
                subscriptions = report.subscriptions_removed.len(),
                not_confirmed = report.not_confirmed.len(),
                "scrub dry run finished: nothing was scrubbed"
            );
        } else {
            tracing::info!(
                scrubbed = report.scrubbed.len(),
                memberships = report.memberships_scrubbed.len(),
                address_changes = report.address_changes_scrubbed.len(),
                subscriptions = report.subscriptions_removed.len(),
                not_confirmed = report.not_confirmed.len(),
                "scrub run finished"
            );
        }
        Ok(report)
    }

    /// One context's part of a run, the same for every context: each candidate of the read
    /// model confirmed against the log by `decide` (its streams folded, the context's rule
    /// applied: the events to append and the rule that allowed them, or why not); then, unless
    /// a dry run, in rounds of [`ROUND`], the confirmed entities' keys destroyed and each one's
    /// `PersonalDataScrubbed` appended to its new scrub stream. `progress(done)` after each
    /// candidate.
    async fn scrub_context<'c, C, D, F>(
        &self,
        arm: &ScrubArm<C>,
        candidates: &'c [C],
        dry_run: bool,
        progress: &(dyn Fn(usize) + Send + Sync),
        decide: D,
    ) -> Result<ArmOutcome<'c, C>, ScrubError>
    where
        D: Fn(u64) -> F,
        F: Future<Output = Result<Confirmation, ScrubError>>,
    {
        let mut outcome = ArmOutcome {
            scrubbed: Vec::with_capacity(candidates.len()),
            not_confirmed: Vec::new(),
        };
        for (n, round) in candidates.chunks(ROUND).enumerate() {
            let mut confirmed = Vec::with_capacity(round.len());
            for (i, c) in round.iter().enumerate() {
                progress(n * ROUND + i);
                let id = (arm.id)(c);
                match decide(id).await? {
                    Ok((events, rule)) => {
                        confirmed.push((c, events, rule.map_or("unspecified", ScrubRule::as_str)))
                    }
                    Err(e) => {
                        tracing::info!(context = arm.context, id, reason = %e, "read-model candidate not confirmed by the log");
                        outcome.not_confirmed.push(id);
                    }
                }
            }
            if dry_run {
                outcome
                    .scrubbed
                    .extend(confirmed.into_iter().map(|(c, _, rule)| (c, rule)));
                continue;
            }
            let keys: Vec<u64> = confirmed
                .iter()
                .map(|(c, _, _)| (arm.key_id)((arm.id)(c)))
                .collect();
            self.vault.destroy(&keys).await?;
            let request = Uuid::now_v7();
            for (c, events, rule) in confirmed {
                let metadata = Metadata::new(Actor::system("scrub"), "ledger scrub", request);
                // Every stream the scrub writes is new (one `PersonalDataScrubbed`): a
                // concurrent scrub of the same entity conflicts instead of doubling it.
                let parts = repository::appends(events, &HashMap::new(), &metadata);
                match self.log.append_atomic(parts).await {
                    Ok(_) | Err(StoreError::Conflict { .. }) => {
                        self.metrics.count(arm.counter, &[("rule", rule)], 1);
                        outcome.scrubbed.push((c, rule));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(outcome)
    }
}

/// What the log says of one candidate: the events that scrub it and the rule that allows it,
/// or the domain's reason why not.
type Confirmation = Result<(Vec<StreamEvent>, Option<ScrubRule>), DomainError>;

/// One context's part in the scrub job: how its candidates are named, keyed and counted.
struct ScrubArm<C> {
    /// The context, for the log.
    context: &'static str,
    /// A candidate's entity id.
    id: fn(&C) -> u64,
    /// The key that seals an entity's personal data.
    key_id: fn(u64) -> u64,
    /// The counter of scrubbed entities, by rule.
    counter: &'static str,
}

/// What a context's part of a run did: the candidates scrubbed (or, in a dry run, that would
/// be) with their rules, and the ids the log did not confirm.
struct ArmOutcome<'c, C> {
    scrubbed: Vec<(&'c C, &'static str)>,
    not_confirmed: Vec<u64>,
}

/// Donations: sealed with their own id.
const DONATIONS: ScrubArm<ScrubCandidate> = ScrubArm {
    context: "donation",
    id: |c| c.donation_id,
    key_id: |id| id,
    counter: catalog::SCRUBBED,
};

/// Membership applications.
const MEMBERSHIPS: ScrubArm<MembershipScrubCandidate> = ScrubArm {
    context: "membership",
    id: |c| c.membership_id,
    key_id: membership_key_id,
    counter: catalog::MEMBERSHIPS_SCRUBBED,
};

/// Address changes.
const ADDRESS_CHANGES: ScrubArm<AddressChangeScrubCandidate> = ScrubArm {
    context: "address_change",
    id: |c| c.address_change_id,
    key_id: address_change_key_id,
    counter: catalog::ADDRESS_CHANGES_SCRUBBED,
};

/// Subscriptions: removed, their address crypto-shredded.
const SUBSCRIPTIONS: ScrubArm<SubscriptionScrubCandidate> = ScrubArm {
    context: "subscription",
    id: |c| c.subscription_id,
    key_id: subscription_key_id,
    counter: catalog::SUBSCRIPTIONS_REMOVED,
};

/// How many days of duplicate-index windows a run destroys the keys of, back from the newest
/// spent one: twice the longest removal grace period that makes sense (a subscription is
/// removed within its grace period when the job runs, and `RemoveSubscription` destroys its
/// window's key when the window is spent), so a job that paused for weeks still catches up.
const SPENT_WINDOW_DAYS: i64 = 62;

/// The keys of the duplicate-index windows no duplicate check needs at `now`: every window
/// before the previous one (a check looks in its own window and the previous one), for
/// [`SPENT_WINDOW_DAYS`]. Destroying a key never made, or destroyed before, is a no-op.
fn spent_window_keys(now: DateTime<Utc>) -> Vec<u64> {
    let newest_spent = window_of(now).saturating_sub(2);
    let per_day = (24 * 3600 / WINDOW_SECONDS) as u64;
    let oldest = newest_spent.saturating_sub(SPENT_WINDOW_DAYS as u64 * per_day);
    (oldest..=newest_spent)
        .map(subscription_window_key_id)
        .collect()
}

/// An entity's view folded from its loaded streams, sealed (no rule needs personal data); an
/// entity the log does not know folds to the empty view, which no rule allows to scrub.
fn fold<V: Default>(
    loaded: Result<Option<Vec<repository::LoadedStream>>, repository::LoadError>,
    apply: fn(&mut V, &str, &DomainEvent),
) -> Result<V, ScrubError> {
    let mut view = V::default();
    for stream in loaded.map_err(audit::AuditError::from)?.unwrap_or_default() {
        for step in &stream.steps {
            apply(&mut view, &stream.name, &step.event);
        }
    }
    Ok(view)
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
    fn a_run_destroys_the_keys_of_every_window_before_the_previous_one() {
        let now = Utc.timestamp_opt(100 * WINDOW_SECONDS + 5, 0).unwrap();
        let keys = spent_window_keys(now);
        assert_eq!(keys.last(), Some(&subscription_window_key_id(98)));
        assert!(!keys.contains(&subscription_window_key_id(99)));
        assert_eq!(keys.first(), Some(&subscription_window_key_id(0)));
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
