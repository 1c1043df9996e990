//! The timeline of a contribution-tracking record: each event of its
//! `contribution_tracking-{id}` stream with the tracked fields and the contribution id it
//! changed, named as the `contribution_tracking` columns are.

use std::collections::BTreeMap;

use super::{timeline_with, AuditError, HistoryEntry, Step};
use crate::domain::contribution_tracking::{tracked_values, ContributionTrackingState};
use crate::domain::streams;
use crate::repository;
use crate::store::EventLog;

/// Every event of a contribution-tracking record, decoded, in stream order (empty when the
/// record does not exist).
pub async fn load(log: &dyn EventLog, id: u64) -> Result<Vec<Step>, AuditError> {
    let loaded = repository::load_stream(log, &streams::contribution_tracking(id)).await?;
    Ok(loaded.steps)
}

/// The record's fields, flattened for display and diffing; unset fields are empty.
pub fn fields(state: &ContributionTrackingState) -> BTreeMap<&'static str, String> {
    let mut f: BTreeMap<&'static str, String> = tracked_values(&state.fields)
        .into_iter()
        .map(|(name, value)| (name, value.map(|v| v.to_string()).unwrap_or_default()))
        .collect();
    f.insert(
        "contribution_id",
        state
            .contribution_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
    );
    f
}

/// The timeline with what each step changed.
pub fn timeline(steps: &[Step]) -> Vec<HistoryEntry> {
    timeline_with(
        steps,
        ContributionTrackingState::default(),
        |state, step| state.apply(&step.event),
        fields,
    )
}
