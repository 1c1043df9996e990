//! The export fold: `ExportState` from the events of one `export-{donation id}` (or
//! `membership_export-{membership id}`) stream.

use chrono::{DateTime, Utc};

use crate::domain::types::opt_datetime;
use crate::domain::DomainEvent;

/// Whether, when and in which batch a donation was exported (legacy `dt_gruen`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportState {
    /// Whether an export was recorded.
    pub exported: bool,
    /// When; `None` if not exported or the time was missing.
    pub exported_at: Option<DateTime<Utc>>,
    /// The export batch.
    pub batch_id: Option<String>,
}

impl ExportState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Applies one event; events of other streams are ignored. Never fails. The first export
    /// counts: a second one (which the decision refuses) does not move the date.
    /// A membership's export stream holds `MembershipExported`, the same fact.
    pub fn apply(&mut self, event: &DomainEvent) {
        let (batch_id, exported_at) = match event {
            DomainEvent::DonationExported(e) => (&e.batch_id, &e.exported_at),
            DomainEvent::MembershipExported(e) => (&e.batch_id, &e.exported_at),
            _ => return,
        };
        if !self.exported {
            self.exported = true;
            self.exported_at = opt_datetime(exported_at.as_ref());
            self.batch_id = Some(batch_id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::events as ev;

    fn exported(batch: &str, seconds: i64) -> DomainEvent {
        ev::DonationExported {
            batch_id: batch.into(),
            exported_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        }
        .into()
    }

    #[test]
    fn an_export_records_batch_and_time() {
        let s = ExportState::fold(&[exported("b1", 1_700_000_000)]);
        assert!(s.exported);
        assert_eq!(s.batch_id.as_deref(), Some("b1"));
        assert_eq!(s.exported_at.unwrap().timestamp(), 1_700_000_000);
    }

    #[test]
    fn the_first_export_wins() {
        let s = ExportState::fold(&[exported("b1", 1), exported("b2", 2)]);
        assert_eq!(s.batch_id.as_deref(), Some("b1"));
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let s = ExportState::fold(&[ev::PersonalDataScrubbed::default().into()]);
        assert_eq!(s, ExportState::default());
    }
}
