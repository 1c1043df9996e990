//! Export decisions: recording that an export batch handed a donation over.

use chrono::{DateTime, Utc};

use super::{active, existing, not_scrubbed, Decision};
use crate::domain::error::DomainError;
use crate::domain::streams;
use crate::domain::types::{to_timestamp, StreamEvent};
use crate::domain::view::DonationView;
use crate::proto::events as ev;

/// Records an export. Refused when already exported (the first batch stays), cancelled or
/// deleted (nothing to hand over), under open moderation (exported once approved), or
/// scrubbed (the donor data is gone). Pending external payments are not refused here: which
/// donations an export batch selects is the exporter's policy.
pub fn mark_exported(view: &DonationView, batch_id: &str, at: DateTime<Utc>) -> Decision {
    let id = existing(view)?;
    if view.is_exported() {
        return Err(DomainError::AlreadyExported {
            batch_id: view.export.batch_id.clone(),
        });
    }
    if batch_id.trim().is_empty() {
        return Err(DomainError::MissingBatchId);
    }
    active(view, "export")?;
    if view.moderation.is_open() {
        return Err(DomainError::UnderModeration { action: "export" });
    }
    not_scrubbed(view, "export")?;
    Ok(vec![StreamEvent::new(
        streams::export(id),
        ev::DonationExported {
            batch_id: batch_id.to_owned(),
            exported_at: Some(to_timestamp(at)),
        },
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::testing::*;

    #[test]
    fn exporting_records_the_batch_once() {
        let mut v = given(DirectDebit);
        when!(v, mark_exported(&v, "batch-1", t0()));
        assert_eq!(v.export.batch_id.as_deref(), Some("batch-1"));
        assert_eq!(v.legacy_status(), 'N');
        assert_eq!(
            mark_exported(&v, "batch-2", t0()),
            Err(DomainError::AlreadyExported {
                batch_id: Some("batch-1".into())
            })
        );
    }

    #[test]
    fn exporting_is_refused_when_cancelled_moderated_scrubbed_or_without_batch() {
        let v = given(DirectDebit);
        assert_eq!(
            mark_exported(&v, "", t0()),
            Err(DomainError::MissingBatchId)
        );
        let mut c = v.clone();
        when!(c, cancel_by_donor(&c, ""));
        assert!(matches!(
            mark_exported(&c, "b", t0()),
            Err(DomainError::Inactive { .. })
        ));
        let mut m = v.clone();
        when!(m, flag_manually(&m, ""));
        assert!(matches!(
            mark_exported(&m, "b", t0()),
            Err(DomainError::UnderModeration { .. })
        ));
        let mut s = v;
        s.apply("scrub-7", &scrubbed());
        assert!(matches!(
            mark_exported(&s, "b", t0()),
            Err(DomainError::Scrubbed { .. })
        ));
    }
}
