//! `ledger scrub`: purge donors', membership applicants' and address changes' personal data
//! the policy no longer allows to keep, and remove subscriptions (crypto-shred their
//! addresses).
use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use clap::{Args, Subcommand};

use super::progress::Progress;
use crate::config::StorageArgs;
use crate::domain::address_change::commands::AddressChangeScrubPolicy;
use crate::domain::commands::ScrubPolicy;
use crate::domain::membership::commands::MembershipScrubPolicy;
use crate::domain::subscription::commands::SubscriptionRemovalPolicy;
use crate::jobs::scrub::Scrubber;
use crate::metrics::Metrics;
use crate::projection::{Projector, ProjectorConfig, ReadModel};

/// The scrub policy's periods.
#[derive(Debug, Clone, Args)]
pub struct ScrubPolicyArgs {
    /// An external payment (PayPal, credit card, Sofort) still pending this many hours after the
    /// donation counts as abandoned.
    #[arg(long, env = "LEDGER_SCRUB_GRACE_HOURS", default_value_t = 48)]
    pub scrub_grace_hours: i64,
    /// Off unless set: also scrub donations still under moderation after this many days.
    #[arg(long, env = "LEDGER_SCRUB_STALE_MODERATION_DAYS")]
    pub scrub_stale_moderation_days: Option<i64>,
    /// A membership application neither exported nor cancelled is scrubbed this many hours
    /// after it was made, moderated or not (the legacy grace period, 2 days).
    #[arg(
        long,
        env = "LEDGER_MEMBERSHIP_SCRUB_GRACE_HOURS",
        default_value_t = 48
    )]
    pub membership_scrub_grace_hours: i64,
    /// An address change's new address not exported this many days after the change is
    /// scrubbed anyway (the legacy deleter's grace period; its tests use one month).
    #[arg(
        long,
        env = "LEDGER_ADDRESS_CHANGE_SCRUB_GRACE_DAYS",
        default_value_t = 30
    )]
    pub address_change_scrub_grace_days: i64,
    /// A subscription not exported this many days after it was made is removed anyway (its
    /// address crypto-shredded; the legacy removal's grace period, first one month).
    #[arg(
        long,
        env = "LEDGER_SUBSCRIPTION_REMOVAL_GRACE_DAYS",
        default_value_t = 30
    )]
    pub subscription_removal_grace_days: i64,
}

impl ScrubPolicyArgs {
    /// The domain policy.
    pub fn policy(&self) -> ScrubPolicy {
        ScrubPolicy {
            grace_period: Duration::hours(self.scrub_grace_hours.max(0)),
            stale_moderation_after: self
                .scrub_stale_moderation_days
                .map(|d| Duration::days(d.max(0))),
            memberships: MembershipScrubPolicy {
                grace_period: Duration::hours(self.membership_scrub_grace_hours.max(0)),
            },
            address_changes: AddressChangeScrubPolicy {
                grace_period: Duration::days(self.address_change_scrub_grace_days.max(0)),
            },
            subscriptions: SubscriptionRemovalPolicy {
                grace_period: Duration::days(self.subscription_removal_grace_days.max(0)),
            },
        }
    }
}

/// `ledger scrub`.
#[derive(Debug, Args)]
pub struct ScrubArgs {
    /// Only `status`: report how many donations, membership applications, address changes and
    /// subscriptions are eligible and the oldest of each.
    #[command(subcommand)]
    pub action: Option<ScrubAction>,
    /// List what would be scrubbed and why; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// The policy.
    #[command(flatten)]
    pub policy: ScrubPolicyArgs,
}

/// Sub-actions of `ledger scrub`.
#[derive(Debug, Subcommand)]
pub enum ScrubAction {
    /// How many donations, membership applications, address changes and subscriptions are
    /// eligible but not yet scrubbed (removed), and the oldest of each.
    Status,
}

/// Builds the scrubber and a projector over the configured stores.
pub async fn open(
    storage: &StorageArgs,
    policy: ScrubPolicy,
    metrics: Metrics,
) -> anyhow::Result<(Scrubber, Projector)> {
    let log = storage.open_event_log().await?;
    let vault = storage.open_vault().await?;
    let read_model = ReadModel::connect(&storage.read_model_url()?)
        .await
        .context("connecting to the read model")?;
    read_model.migrate().await?;
    let config = ProjectorConfig {
        vault: Some(vault.clone()),
        ..ProjectorConfig::default()
    };
    let projector = Projector::with_config(log.clone(), read_model.clone(), config);
    Ok((
        Scrubber::new(log, vault, read_model, policy, metrics),
        projector,
    ))
}

/// Runs `ledger scrub`.
pub async fn run(storage: &StorageArgs, args: ScrubArgs) -> anyhow::Result<()> {
    let (scrubber, projector) = open(storage, args.policy.policy(), Metrics::new()).await?;
    // Select from an up-to-date read model, then confirm each candidate against the log.
    projector
        .run_once()
        .await
        .context("catching up the read model")?;
    let mut out = std::io::stdout().lock();
    if let Some(ScrubAction::Status) = args.action {
        let status = scrubber.status(Utc::now()).await?;
        if args.json {
            serde_json::to_writer_pretty(&mut out, &status)?;
            writeln!(out)?;
        } else {
            let oldest = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
            writeln!(
                out,
                "eligible, not yet scrubbed: {}\noldest: {}",
                status.eligible,
                oldest(status.oldest)
            )?;
            let m = &status.memberships;
            writeln!(
                out,
                "membership applications eligible, not yet scrubbed: {}\noldest membership application: {}",
                m.eligible,
                oldest(m.oldest)
            )?;
            let a = &status.address_changes;
            writeln!(
                out,
                "address changes eligible, not yet scrubbed: {}\noldest address change: {}",
                a.eligible,
                oldest(a.oldest)
            )?;
            let s = &status.subscriptions;
            writeln!(
                out,
                "subscriptions eligible, not yet removed: {}\noldest subscription: {}",
                s.eligible,
                oldest(s.oldest)
            )?;
        }
        return Ok(());
    }
    let bar = Progress::new(
        if args.dry_run {
            "checking what would be scrubbed"
        } else {
            "scrubbing"
        },
        None,
        "donations, applications, address changes and subscriptions",
    );
    let report = scrubber
        .run_with_progress(Utc::now(), args.dry_run, &|done, total| {
            bar.set_total(
                total as u64,
                "donations, applications, address changes and subscriptions",
            );
            bar.set_position(done as u64);
            if done == total {
                // Before the scrub logs its result: a log line under a drawn bar leaves it
                // behind.
                bar.finish();
            }
        })
        .await;
    bar.finish();
    let report = report?;
    if !args.dry_run {
        projector
            .run_once()
            .await
            .context("projecting the scrubs")?;
        projector.read_model().purge_residue().await?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let verb = if args.dry_run {
            "would scrub"
        } else {
            "scrubbed"
        };
        let donations = report
            .scrubbed
            .iter()
            .map(|s| ("donation", s.donation_id, "created", s.created_at, s.rule));
        let memberships = report.memberships_scrubbed.iter().map(|s| {
            (
                "membership",
                s.membership_id,
                "created",
                s.created_at,
                s.rule,
            )
        });
        let address_changes = report.address_changes_scrubbed.iter().map(|s| {
            (
                "address_change",
                s.address_change_id,
                "changed",
                s.modified_at,
                s.rule,
            )
        });
        let subscriptions = report.subscriptions_removed.iter().map(|s| {
            (
                "subscription",
                s.subscription_id,
                "created",
                s.created_at,
                s.rule,
            )
        });
        let all = donations
            .chain(memberships)
            .chain(address_changes)
            .chain(subscriptions);
        for (what, id, when, at, rule) in all {
            let at = at.to_rfc3339();
            writeln!(out, "{verb} {what} {id:<10} {when} {at}  rule {rule}")?;
        }
        let (memberships, unconfirmed) = (
            report.memberships_scrubbed.len(),
            report.memberships_not_confirmed.len(),
        );
        writeln!(
            out,
            "{verb} {memberships} membership application(s); {unconfirmed} candidate(s) not confirmed by the log"
        )?;
        writeln!(
            out,
            "{verb} {} address change(s); {} candidate(s) not confirmed by the log",
            report.address_changes_scrubbed.len(),
            report.address_changes_not_confirmed.len()
        )?;
        writeln!(
            out,
            "{} {} subscription(s); {} candidate(s) not confirmed by the log",
            if args.dry_run {
                "would remove"
            } else {
                "removed"
            },
            report.subscriptions_removed.len(),
            report.subscriptions_not_confirmed.len()
        )?;
        writeln!(
            out,
            "{verb} {} donation(s); {} candidate(s) not confirmed by the log; selection took {:.1} ms",
            report.scrubbed.len(),
            report.not_confirmed.len(),
            report.selection_time.as_secs_f64() * 1000.0
        )?;
    }
    Ok(())
}
