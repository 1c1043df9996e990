//! What `/readyz` answers: ready when the event log answers, the live projector's read model
//! is connected, no projector is stopped or retrying, and its lag is under a threshold. Each
//! failed condition is one short reason.

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
