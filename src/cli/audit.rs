//! `ledger history` and `ledger state`: who changed what and when, and a donation, a
//! membership application, an address change or a subscription as of a time.
use std::io::Write;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::audit::{self, AsOf, HistoryEntry};
use crate::config::StorageArgs;
use crate::domain::{streams, DomainEvent};
use crate::store::{Direction, StreamStart};

/// What to show the history of.
#[derive(Debug, Subcommand)]
pub enum HistoryTarget {
    /// Every stream of a donation: donation, payment, moderation, deletion, export, scrub.
    Donation {
        /// Donation id.
        id: u64,
    },
    /// The donation a payment belongs to.
    Payment {
        /// Payment id.
        id: u64,
    },
    /// A contribution-tracking record.
    ContributionTracking {
        /// Contribution-tracking id.
        id: u64,
    },
    /// Every stream of a membership application: application, moderation, cancellation,
    /// export, scrub.
    Membership {
        /// Membership application id.
        id: u64,
    },
    /// Every stream of an address change: the address change, its export, its scrub.
    AddressChange {
        /// Address change id.
        id: u64,
    },
    /// Every stream of a subscription: the subscription, its export, its removal.
    Subscription {
        /// Subscription id.
        id: u64,
    },
}

/// `ledger history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// What to show.
    #[command(subcommand)]
    pub target: HistoryTarget,
    /// JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `ledger state donation <id>`, `ledger state membership <id>`,
/// `ledger state address-change <id>`, `ledger state subscription <id>`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// `donation`, `membership`, `address-change` or `subscription`.
    #[arg(value_parser = ["donation", "membership", "address-change", "subscription"])]
    pub kind: String,
    /// Donation, membership application, address change or subscription id.
    pub id: u64,
    /// Fold the events that happened at or before this time (RFC 3339, such as
    /// `2026-11-01T12:00:00Z`).
    #[arg(long, conflicts_with = "at_position", value_parser = super::time::parse_time)]
    pub as_of: Option<DateTime<Utc>>,
    /// Fold the events at or before this global log position.
    #[arg(long)]
    pub at_position: Option<u64>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn print_entries(entries: &[HistoryEntry], json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, entries)?;
        writeln!(out)?;
        return Ok(());
    }
    for e in entries {
        writeln!(
            out,
            "{}  #{:<6} {:<28} {:<30} {}:{} ({})",
            e.occurred_at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
            e.position,
            e.stream,
            e.event_type,
            e.actor_kind,
            e.actor,
            e.source
        )?;
        for c in &e.changes {
            writeln!(out, "      {:<20} {:?} → {:?}", c.field, c.before, c.after)?;
        }
    }
    Ok(())
}

/// Runs `ledger history`.
pub async fn history(storage: &StorageArgs, args: HistoryArgs) -> anyhow::Result<()> {
    let log = storage.open_event_log().await?;
    let vault = storage.open_vault().await?;
    let donation_id = match args.target {
        HistoryTarget::Donation { id } => id,
        HistoryTarget::Payment { id } => {
            let events = log
                .read_stream(
                    &streams::payment(id),
                    Direction::Forwards,
                    StreamStart::Beginning,
                    1,
                )
                .await?;
            let first = events
                .first()
                .ok_or_else(|| anyhow::anyhow!("payment {id} not found"))?;
            match DomainEvent::decode(&first.event_type, &first.payload)? {
                DomainEvent::PaymentInitiated(p) => p.donation_id,
                other => anyhow::bail!(
                    "payment {id} starts with {} instead of PaymentInitiated",
                    other.event_type()
                ),
            }
        }
        HistoryTarget::ContributionTracking { id } => {
            return contribution_tracking(storage, id, args.json).await
        }
        HistoryTarget::Membership { id } => {
            let steps = audit::membership::load_membership(&*log, &vault, id).await?;
            return print_entries(&audit::membership::timeline(&steps), args.json);
        }
        HistoryTarget::AddressChange { id } => {
            let steps = audit::address_change::load_address_change(&*log, &vault, id).await?;
            return print_entries(&audit::address_change::timeline(&steps), args.json);
        }
        HistoryTarget::Subscription { id } => {
            let steps = audit::subscription::load_subscription(&*log, &vault, id).await?;
            return print_entries(&audit::subscription::timeline(&steps), args.json);
        }
    };
    let steps = audit::load_donation(&*log, &vault, donation_id).await?;
    print_entries(&audit::timeline(&steps), args.json)
}

async fn contribution_tracking(storage: &StorageArgs, id: u64, json: bool) -> anyhow::Result<()> {
    let log = storage.open_event_log().await?;
    let steps = audit::contribution_tracking::load(&*log, id).await?;
    if steps.is_empty() {
        anyhow::bail!("contribution tracking {id} not found");
    }
    print_entries(&audit::contribution_tracking::timeline(&steps), json)
}

/// Runs `ledger state`.
pub async fn state(storage: &StorageArgs, args: StateArgs) -> anyhow::Result<()> {
    let log = storage.open_event_log().await?;
    let vault = storage.open_vault().await?;
    let as_of = match (args.as_of, args.at_position) {
        (_, Some(p)) => AsOf::Position(p),
        (Some(t), None) => AsOf::Time(t),
        (None, None) => AsOf::Time(Utc::now()),
    };
    let fields = if args.kind == "subscription" {
        let steps = audit::subscription::load_subscription(&*log, &vault, args.id).await?;
        let view = audit::subscription::state_as_of(&steps, as_of);
        if !view.exists() {
            anyhow::bail!("subscription {} did not exist yet at that point", args.id);
        }
        audit::subscription::fields(&view)
    } else if args.kind == "address-change" {
        let steps = audit::address_change::load_address_change(&*log, &vault, args.id).await?;
        let view = audit::address_change::state_as_of(&steps, as_of);
        if !view.exists() {
            anyhow::bail!("address change {} did not exist yet at that point", args.id);
        }
        audit::address_change::fields(&view)
    } else if args.kind == "membership" {
        let steps = audit::membership::load_membership(&*log, &vault, args.id).await?;
        let view = audit::membership::state_as_of(&steps, as_of);
        if view.id().is_none() {
            anyhow::bail!(
                "membership application {} did not exist yet at that point",
                args.id
            );
        }
        audit::membership::fields(&view)
    } else {
        let steps = audit::load_donation(&*log, &vault, args.id).await?;
        let view = audit::state_as_of(&steps, as_of);
        if view.donation.id.is_none() {
            anyhow::bail!("donation {} did not exist yet at that point", args.id);
        }
        audit::fields(&view)
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &fields)?;
        writeln!(out)?;
    } else {
        for (k, v) in &fields {
            writeln!(out, "{k:<20} {v}")?;
        }
    }
    Ok(())
}
