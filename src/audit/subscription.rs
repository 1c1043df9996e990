//! Audit of subscriptions: the timeline of a subscription across its three streams, what each
//! event changed, and its state as of a time or position, as for address changes. The address
//! shows while its key exists and as [`SCRUBBED`] after a removal.

use std::collections::BTreeMap;

use super::{opt, timeline_with, AsOf, AuditError, HistoryEntry, Step, SCRUBBED};
use crate::domain::scrub::ScrubRule;
use crate::domain::subscription::SubscriptionView;
use crate::privacy::Vault;
use crate::repository;
use crate::store::EventLog;

/// Every event of a subscription's streams in global commit order, decrypted where its key
/// still exists. `SubscriptionNotFound` when there is no such subscription.
pub async fn load_subscription(
    log: &dyn EventLog,
    vault: &Vault,
    id: u64,
) -> Result<Vec<Step>, AuditError> {
    let loaded = repository::load_subscription(log, id)
        .await?
        .ok_or(AuditError::SubscriptionNotFound(id))?;
    let mut steps: Vec<Step> = loaded.into_iter().flat_map(|s| s.steps).collect();
    steps.sort_by_key(|s| s.recorded.position);
    vault.unseal(steps.iter_mut().map(|s| &mut s.event)).await?;
    Ok(steps)
}

/// The fields of a subscription's view, flattened for display and diffing.
pub fn fields(view: &SubscriptionView) -> BTreeMap<&'static str, String> {
    let mut f = BTreeMap::new();
    f.insert("status", view.status.as_str().to_owned());
    f.insert("tracking", view.tracking.clone());
    f.insert("source", view.source.clone());
    f.insert("is_exported", view.is_exported().to_string());
    f.insert("export_batch", opt(view.export.batch_id.clone()));
    f.insert("is_removed", view.is_removed().to_string());
    f.insert(
        "removal_rule",
        view.removal.rule.map_or("", ScrubRule::as_str).to_owned(),
    );
    if let Some(email) = view.email() {
        f.insert("email", email.to_owned());
    } else if view.is_removed() {
        f.insert("email", SCRUBBED.to_owned());
    }
    f
}

/// The timeline of a subscription with what each step changed.
pub fn timeline(steps: &[Step]) -> Vec<HistoryEntry> {
    timeline_with(
        steps,
        SubscriptionView::default(),
        |view, step| view.apply(&step.recorded.stream, &step.event),
        fields,
    )
}

/// The subscription's view folded from the steps up to `as_of`.
pub fn state_as_of(steps: &[Step], as_of: AsOf) -> SubscriptionView {
    let mut view = SubscriptionView::default();
    for step in steps.iter().filter(|s| as_of.includes(s)) {
        view.apply(&step.recorded.stream, &step.event);
    }
    view
}
