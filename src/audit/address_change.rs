//! Audit of address changes: the timeline of an address change across its three streams,
//! what each event changed, and its state as of a time or position, as for memberships.

use std::collections::BTreeMap;

use super::{opt, timeline_with, AsOf, AuditError, HistoryEntry, Step, SCRUBBED};
use crate::domain::address_change::AddressChangeView;
use crate::privacy::Vault;
use crate::repository;
use crate::store::EventLog;

/// Every event of an address change's streams in global commit order, decrypted where its key
/// still exists. `AddressChangeNotFound` when there is no such address change.
pub async fn load_address_change(
    log: &dyn EventLog,
    vault: &Vault,
    id: u64,
) -> Result<Vec<Step>, AuditError> {
    let loaded = repository::load_address_change(log, id)
        .await?
        .ok_or(AuditError::AddressChangeNotFound(id))?;
    let mut steps: Vec<Step> = loaded.into_iter().flat_map(|s| s.steps).collect();
    steps.sort_by_key(|s| s.recorded.position);
    vault.unseal(steps.iter_mut().map(|s| &mut s.event)).await?;
    Ok(steps)
}

/// The fields of an address change's view, flattened for display and diffing. The address
/// shows as [`SCRUBBED`] once it cannot be read.
pub fn fields(view: &AddressChangeView) -> BTreeMap<&'static str, String> {
    let mut f = BTreeMap::new();
    f.insert(
        "external_id_kind",
        view.external_id_kind.as_str().to_owned(),
    );
    f.insert("external_id", view.external_id.to_string());
    f.insert("address_type", view.address_type.as_str().to_owned());
    f.insert("current_identifier", view.current_identifier.clone());
    f.insert("previous_identifier", view.previous_identifier.clone());
    f.insert("donation_receipt", view.donation_receipt.to_string());
    f.insert("export_state", view.export_status().as_str().to_owned());
    f.insert(
        "export_batch",
        opt(view.current_export().map(|x| x.batch_id.clone())),
    );
    f.insert("is_scrubbed", view.is_scrubbed().to_string());
    match view.address() {
        Some(a) => {
            for (k, v) in [
                ("salutation", &a.salutation),
                ("title", &a.title),
                ("first_name", &a.first_name),
                ("last_name", &a.last_name),
                ("company_name", &a.company_name),
                ("street", &a.street),
                ("postcode", &a.postcode),
                ("city", &a.city),
                ("country", &a.country),
            ] {
                f.insert(k, v.clone());
            }
        }
        None if view.has_address => {
            f.insert("address", SCRUBBED.to_owned());
        }
        None => {}
    }
    f
}

/// The timeline of an address change with what each step changed.
pub fn timeline(steps: &[Step]) -> Vec<HistoryEntry> {
    timeline_with(
        steps,
        AddressChangeView::default(),
        |view, step| view.apply(&step.recorded.stream, &step.event),
        fields,
    )
}

/// The address change's view folded from the steps up to `as_of`.
pub fn state_as_of(steps: &[Step], as_of: AsOf) -> AddressChangeView {
    let mut view = AddressChangeView::default();
    for step in steps.iter().filter(|s| as_of.includes(s)) {
        view.apply(&step.recorded.stream, &step.event);
    }
    view
}
