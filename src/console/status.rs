//! The figures of the console's overview, gathered in one place and served both in the page
//! and as JSON (`/console/status.json`, polled by the page's live chart). Each figure comes from
//! where it is decided: the log's head from the log, rows by state and checkpoints from the read
//! model (one snapshot), sequence health from the generator itself, refusals from the intake,
//! the rest from the metrics the jobs publish.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Console;
use crate::api::refusal::Refusal;
use crate::metrics::catalog;
use crate::projection::{Overview, DEFAULT_PROJECTOR};
use crate::sequence::SequenceName;

/// Everything the overview shows, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When it was gathered.
    pub at: DateTime<Utc>,
    /// The log's head position (0 when empty); the page's chart derives the append rate from
    /// its change between two polls.
    pub head: u64,
    /// Each projector's checkpoint and lag behind the head, in positions.
    pub projectors: Vec<ProjectorStatus>,
    /// The read model's figures, or why they could not be read.
    pub read_model: Result<Overview, String>,
    /// The donations' scrub backlog.
    pub scrub: ScrubBacklog,
    /// The membership applications' scrub backlog.
    pub membership_scrub: ScrubBacklog,
    /// The address changes' scrub backlog (addresses exported, or changed longer ago than
    /// the grace period).
    pub address_change_scrub: ScrubBacklog,
    /// The newsletter subscriptions' scrub backlog (exported, or created longer ago than the
    /// grace period).
    pub subscription_scrub: ScrubBacklog,
    /// Each sequence's current value or error, and the collisions seen.
    pub sequences: SequenceHealth,
    /// Refusals since start by method and code, and the most recent ones.
    pub refusals: Refusals,
    /// The KurrentDB port's live subscriptions.
    pub kurrentdb: KurrentDbStatus,
    /// CiviShare's local node and peers, or why they could not be read.
    pub civishare: Result<CivishareStatus, String>,
}

/// CiviShare peering.
#[derive(Debug, Clone, Serialize)]
pub struct CivishareStatus {
    /// The local node's name, `None` before `ledger peer node`.
    pub local_node: Option<String>,
    /// Each peer.
    pub peers: Vec<PeerStatus>,
}

/// One peer: what is queued for it and what came from it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// Its node name.
    pub node: String,
    /// Its message endpoint.
    pub endpoint: String,
    /// Changes queued for it and not yet acknowledged.
    pub undelivered: i64,
    /// When the oldest of them was queued.
    pub oldest_undelivered: Option<String>,
    /// Changes whose last delivery attempt failed.
    pub failed: i64,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Changes received from it, per status (`applied`, `ignored_loop`, `refused`).
    pub received: Vec<(String, i64)>,
}

/// One projector.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectorStatus {
    /// Its name.
    pub name: String,
    /// Its checkpoint (`None` before its first event).
    pub position: Option<u64>,
    /// Head minus checkpoint.
    pub lag: u64,
    /// Whether it is stopped on an event it may not pass (`ledger_projector_stopped`).
    pub stopped: bool,
}

/// Donations, membership applications or address changes waiting for their scrub.
#[derive(Debug, Clone, Serialize)]
pub struct ScrubBacklog {
    /// Eligible and not yet scrubbed; `None` while unknown (read model away, first refresh).
    pub eligible: Option<u64>,
    /// Age of the oldest eligible one, in seconds.
    pub oldest_age_seconds: Option<u64>,
}

/// The sequence generator's health.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceHealth {
    /// Per sequence: its name and its current value, or the error reading it.
    pub sequences: Vec<(&'static str, Result<Option<u64>, String>)>,
    /// Contribution-tracking ids the intake saw allocated twice since start
    /// (`ledger_sequence_collisions_total`); the read model's `contribution_tracking_conflict`
    /// rows are the lasting record.
    pub collisions: u64,
}

/// Refusals of the intake.
#[derive(Debug, Clone, Serialize)]
pub struct Refusals {
    /// Since start: method, code, count; most frequent first.
    pub by_reason: Vec<(&'static str, String, u64)>,
    /// The newest ones.
    pub recent: Vec<Refusal>,
}

/// The KurrentDB port.
#[derive(Debug, Clone, Serialize)]
pub struct KurrentDbStatus {
    /// Live catch-up subscriptions.
    pub subscriptions: u64,
    /// The largest subscriber lag, in events.
    pub max_lag: u64,
}

/// How many recent refusals the overview lists.
const RECENT_REFUSALS: usize = 10;

impl Console {
    /// Gathers the overview's figures now.
    pub async fn status(&self) -> Status {
        // The figures the jobs compute on demand (scrub backlog, projector state) first.
        self.metrics.refresh().await;
        let log = self.intake.log();
        let head = log.head_position().await.ok().flatten().unwrap_or(0);
        let read_model = match self.read_model().await {
            Ok(read_model) => read_model.overview().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let metrics = &self.metrics;
        let gauge = |name: &str| metrics.gauge_value(name, &[]);
        let mut projectors: Vec<ProjectorStatus> = match &read_model {
            Ok(overview) => overview
                .checkpoints
                .iter()
                .map(|c| {
                    let position = c.position.map(|p| p.max(0) as u64);
                    ProjectorStatus {
                        name: c.projector.clone(),
                        position,
                        lag: head.saturating_sub(position.unwrap_or(0)),
                        stopped: false,
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if projectors.is_empty() {
            projectors.push(ProjectorStatus {
                name: DEFAULT_PROJECTOR.to_owned(),
                position: None,
                lag: head,
                stopped: false,
            });
        }
        for p in &mut projectors {
            p.stopped = metrics
                .gauge_value("ledger_projector_stopped", &[("projector", &p.name)])
                .is_some_and(|v| v > 0.0);
        }
        let mut sequences = Vec::new();
        for name in SequenceName::ALL {
            let current = self
                .intake
                .sequences()
                .current(name)
                .await
                .map_err(|e| e.to_string());
            sequences.push((name.as_str(), current));
        }
        let refusals = self.refusals.recent();
        let backlog = |eligible: &str, oldest: &str| ScrubBacklog {
            eligible: gauge(eligible).map(|v| v as u64),
            oldest_age_seconds: gauge(oldest).map(|v| v as u64),
        };
        Status {
            at: Utc::now(),
            head,
            projectors,
            read_model,
            scrub: backlog(
                "ledger_scrub_eligible",
                "ledger_scrub_oldest_eligible_age_seconds",
            ),
            membership_scrub: backlog(
                "ledger_membership_scrub_eligible",
                "ledger_membership_scrub_oldest_eligible_age_seconds",
            ),
            address_change_scrub: backlog(
                catalog::ADDRESS_CHANGE_SCRUB_ELIGIBLE,
                catalog::ADDRESS_CHANGE_SCRUB_OLDEST_AGE,
            ),
            subscription_scrub: backlog(
                catalog::SUBSCRIPTION_SCRUB_ELIGIBLE,
                catalog::SUBSCRIPTION_SCRUB_OLDEST_AGE,
            ),
            sequences: SequenceHealth {
                sequences,
                collisions: metrics.counter_value(
                    "ledger_sequence_collisions_total",
                    &[("sequence", SequenceName::ContributionTracking.as_str())],
                ),
            },
            refusals: Refusals {
                by_reason: self.refusals.by_reason(),
                recent: refusals.into_iter().take(RECENT_REFUSALS).collect(),
            },
            kurrentdb: KurrentDbStatus {
                subscriptions: gauge("ledger_kurrentdb_subscriptions").unwrap_or(0.0) as u64,
                max_lag: gauge("ledger_kurrentdb_subscriber_lag_events").unwrap_or(0.0) as u64,
            },
            civishare: self.civishare_status().await.map_err(|e| e.to_string()),
        }
    }

    async fn civishare_status(&self) -> Result<CivishareStatus, crate::civishare::CivishareError> {
        let peers = self
            .civishare
            .peer_reports()
            .await?
            .into_iter()
            .map(|r| PeerStatus {
                failed: r
                    .queue
                    .by_status
                    .iter()
                    .filter(|(status, _)| status == "failed")
                    .map(|(_, n)| n)
                    .sum(),
                node: r.peering.node_name,
                endpoint: r.peering.endpoint,
                undelivered: r.queue.undelivered,
                oldest_undelivered: r.queue.oldest_undelivered,
                last_error: r.queue.last_error,
                received: r.incoming,
            })
            .collect();
        Ok(CivishareStatus {
            local_node: self.civishare.local_node().await?,
            peers,
        })
    }
}
