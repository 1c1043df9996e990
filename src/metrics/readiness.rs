//! What `/readyz` answers: ready when the event log answers, the live projector's read model
//! is connected, no projector is stopped or retrying, and its lag is under a threshold (a
//! process standing by while another one holds the projector's lease has no lag to count).
//! Each failed condition is one short reason.

use std::sync::Arc;

use serde::Serialize;

use crate::jobs::projector::ProjectorReady;
use crate::store::EventLog;
use crate::telemetry::format_chain;

/// Lag under which `serve` is ready by default, in log positions.
pub const DEFAULT_MAX_LAG: u64 = 10_000;

/// The readiness checks of one `serve`.
pub struct Readiness {
    log: Arc<dyn EventLog>,
    /// `None` when `serve` runs no projectors (`--projectors false`): then only the log counts.
    projector: Option<ProjectorReady>,
    max_lag: u64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyReport {
    /// Every condition holds.
    pub ready: bool,
    /// Why not, one line per failed condition.
    pub reasons: Vec<String>,
    /// The log's head, when it answered.
    pub head: Option<u64>,
    /// The live projector's lag in positions, when known.
    pub lag_positions: Option<u64>,
}

impl Readiness {
    /// Checks `log` and, when given, the live projector, allowing `max_lag` positions of lag.
    pub fn new(log: Arc<dyn EventLog>, projector: Option<ProjectorReady>, max_lag: u64) -> Self {
        Self {
            log,
            projector,
            max_lag,
        }
    }

    /// Checks every condition now.
    pub async fn check(&self) -> ReadyReport {
        let mut reasons = Vec::new();
        let head = match self.log.head_position().await {
            Ok(head) => Some(head.unwrap_or(0)),
            Err(e) => {
                reasons.push(format!("event log: {}", format_chain(&e)));
                None
            }
        };
        let mut lag_positions = None;
        if let Some(ready) = &self.projector {
            match ready.current() {
                None => reasons.push(
                    "read model not connected: the projector is waiting for it to answer"
                        .to_owned(),
                ),
                // Another process sharing the read model projects; this one stands by.
                Some(_) if !ready.leads() => {}
                Some(projector) => {
                    let stats = projector.stats().snapshot();
                    if let Some(error) = &stats.last_error {
                        reasons.push(format!(
                            "projector {} stopped or retrying: {error}",
                            stats.projector
                        ));
                    }
                    if let Some(head) = head {
                        let lag = head.saturating_sub(stats.checkpoint.unwrap_or(0));
                        lag_positions = Some(lag);
                        if lag > self.max_lag {
                            reasons.push(format!(
                                "projector {} is {lag} positions behind the log (over \
                                 --ready-max-lag {})",
                                stats.projector, self.max_lag
                            ));
                        }
                    }
                }
            }
        }
        ReadyReport {
            ready: reasons.is_empty(),
            reasons,
            head,
            lag_positions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::{Projector, ProjectorConfig, ReadModel};
    use crate::store::sqlite::SqliteEventLog;
    use crate::store::{Actor, EventData, EventMetadata, ExpectedRevision, Metadata};

    /// A log with `n` events outside the domain's categories, and a projector on a fresh
    /// SQLite read model that has not run yet.
    async fn log_and_projector(dir: &std::path::Path, n: usize) -> (Arc<dyn EventLog>, Projector) {
        let log: Arc<dyn EventLog> = Arc::new(
            SqliteEventLog::open(&dir.join("events.sqlite"))
                .await
                .unwrap(),
        );
        let events = (0..n)
            .map(|_| EventData {
                id: uuid::Uuid::new_v4(),
                event_type: "Noted.v1".into(),
                payload: Vec::new(),
                metadata: EventMetadata::Ledger(Metadata::new(
                    Actor::system("test"),
                    "tests",
                    uuid::Uuid::new_v4(),
                )),
            })
            .collect();
        log.append("note-1", ExpectedRevision::Any, events)
            .await
            .unwrap();
        let url = format!("sqlite://{}", dir.join("readmodel.sqlite").display());
        let rm = ReadModel::connect(&url).await.unwrap();
        rm.migrate().await.unwrap();
        let projector = Projector::with_config(log.clone(), rm, ProjectorConfig::default());
        (log, projector)
    }

    #[tokio::test]
    async fn readiness_waits_for_a_projector_under_the_lag_threshold_and_not_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (log, projector) = log_and_projector(dir.path(), 5).await;
        let readiness = Readiness::new(log, Some(ProjectorReady::of(projector.clone())), 2);

        let behind = readiness.check().await;
        assert!(!behind.ready);
        assert_eq!(behind.lag_positions, Some(5));
        assert!(
            behind.reasons[0].contains("5 positions behind the log (over --ready-max-lag 2)"),
            "{behind:?}"
        );

        projector.run_once().await.unwrap();
        let caught_up = readiness.check().await;
        assert_eq!(caught_up.reasons, Vec::<String>::new());
        assert!(caught_up.ready);
        assert_eq!(caught_up.lag_positions, Some(0));

        projector
            .stats()
            .update(|s| s.last_error = Some("the database refused a value".into()));
        let stopped = readiness.check().await;
        assert!(!stopped.ready);
        assert!(
            stopped.reasons[0].contains("stopped or retrying: the database refused a value"),
            "{stopped:?}"
        );
    }

    #[tokio::test]
    async fn without_projectors_only_the_log_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = log_and_projector(dir.path(), 3).await;
        let report = Readiness::new(log, None, 0).check().await;
        assert!(report.ready, "{report:?}");
        assert_eq!(report.head, Some(3));
    }
}
