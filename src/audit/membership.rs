//! Audit of membership applications: the timeline of an application across its five streams,
//! what each event changed, and its state as of a time or position, as for donations.

use std::collections::BTreeMap;

use super::{opt, timeline_with, AsOf, AuditError, HistoryEntry, Step, SCRUBBED};
use crate::domain::membership::MembershipView;
use crate::privacy::Vault;
use crate::repository;
use crate::store::EventLog;

/// Every event of an application's streams in global commit order, decrypted where its key
/// still exists. `NotFound` when there is no such application.
pub async fn load_membership(
    log: &dyn EventLog,
    vault: &Vault,
    membership_id: u64,
) -> Result<Vec<Step>, AuditError> {
    let loaded = repository::load_membership(log, membership_id)
        .await?
        .ok_or(AuditError::MembershipNotFound(membership_id))?;
    let mut steps: Vec<Step> = loaded.into_iter().flat_map(|s| s.steps).collect();
    steps.sort_by_key(|s| s.recorded.position);
    vault.unseal(steps.iter_mut().map(|s| &mut s.event)).await?;
    Ok(steps)
}

/// The fields of an application's view, flattened for display and diffing. Personal data
/// shows as [`SCRUBBED`] once it cannot be read.
pub fn fields(view: &MembershipView) -> BTreeMap<&'static str, String> {
    let a = &view.application;
    let mut f = BTreeMap::new();
    f.insert("applicant_kind", a.applicant_kind.as_str().to_owned());
    f.insert("membership_type", a.membership_type.as_str().to_owned());
    f.insert("fee_cents", a.fee_cents.to_string());
    f.insert("interval_months", a.interval_months.to_string());
    f.insert("payment_method", opt(a.payment_method.map(|m| m.as_str())));
    f.insert("payment_id", a.payment_id.to_string());
    f.insert("is_confirmed", view.is_confirmed().to_string());
    f.insert("cancellation_state", view.cancellation.as_str().to_owned());
    f.insert(
        "moderation_state",
        view.moderation.status().as_str().to_owned(),
    );
    f.insert(
        "moderation_reasons",
        view.moderation
            .open_reasons
            .iter()
            .map(|r| format!("{}:{}", r.identifier_name(), r.source))
            .collect::<Vec<_>>()
            .join(","),
    );
    f.insert("is_exported", view.is_exported().to_string());
    f.insert("export_batch", opt(view.export.batch_id.clone()));
    f.insert("is_scrubbed", view.is_scrubbed().to_string());
    f.insert("campaign", a.tracking.campaign.clone());
    f.insert("keyword", a.tracking.keyword.clone());
    f.insert("incentives", a.incentives.join(","));
    if a.exists() {
        match view.applicant() {
            Some(p) => {
                for (k, v) in [
                    ("salutation", &p.salutation),
                    ("first_name", &p.first_name),
                    ("last_name", &p.last_name),
                    ("company_name", &p.company_name),
                    ("street", &p.street),
                    ("postcode", &p.postcode),
                    ("city", &p.city),
                    ("country", &p.country),
                    ("email", &p.email),
                ] {
                    f.insert(k, v.clone());
                }
            }
            None if a.has_personal_data => {
                f.insert("applicant", SCRUBBED.to_owned());
            }
            None => {}
        }
    }
    f.insert("legacy_status", view.legacy_status().code().to_string());
    f
}

/// The timeline of an application with what each step changed.
pub fn timeline(steps: &[Step]) -> Vec<HistoryEntry> {
    timeline_with(
        steps,
        MembershipView::default(),
        |view, step| view.apply(&step.recorded.stream, &step.event),
        fields,
    )
}

/// The application's view folded from the steps up to `as_of`.
pub fn state_as_of(steps: &[Step], as_of: AsOf) -> MembershipView {
    let mut view = MembershipView::default();
    for step in steps.iter().filter(|s| as_of.includes(s)) {
        view.apply(&step.recorded.stream, &step.event);
    }
    view
}
