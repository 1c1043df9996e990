//! Row logic of the address-change read model: the `address_change` row, and how each event
//! of an address change's three streams (`address_change`, `address_change_export`,
//! `address_change_scrub`) changes it. The token streams (`address_change_token-{uuid}`) are
//! an index for the intake and make no row.
//!
//! As for memberships, a row holds the domain's fold ([`AddressChangeView`]) and every column
//! is mapped from it when the row is written; the address columns are blanked after a scrub
//! (the view's own rule: a scrubbed address change has no address). A batch loads the rows of
//! the address changes its events touch and writes back every changed row (see
//! `entity_rows.rs`; a rebuild keeps them in its write-back cache).

use chrono::{DateTime, Utc};

use super::backend::{Load, Write};
use super::donation::{export_and_scrub_of, export_and_scrub_values, micros, Rejection};
use super::entity_rows::{EntityRow, EntityRows};
use super::rows::{code, flag, int, text, time, unsigned, Value};
use crate::domain::address_change::{AddressChangeCategory, AddressChangeView, ExportRecord};
use crate::domain::export::ExportState;
use crate::domain::DomainEvent;
use crate::proto::events as ev;

/// One row of `address_change`: the address change's view across its streams (see
/// [`AddressChangeRow::to_values`]); a row loaded back from its columns folds on exactly as
/// the one kept in memory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AddressChangeRow {
    pub id: i64,
    /// The creation's time, or the time its event occurred when it names none.
    pub created_at: DateTime<Utc>,
    pub view: AddressChangeView,
}

impl AddressChangeRow {
    /// The row of an `AddressChangeCreated` event on stream `address_change-{id}`.
    fn of_creation(
        id: i64,
        event: &DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let mut view = AddressChangeView::default();
        view.apply(AddressChangeCategory::AddressChange.as_str(), event);
        // A payload without the id names the stream's (the caller checked they agree).
        view.id = Some(id.unsigned_abs());
        super::donation::id(view.external_id, "external id")?;
        let created_at = view.created_at.map_or(occurred_at, micros);
        Ok(Self {
            id,
            created_at,
            view,
        })
    }

    /// The row as column values, in the order of `ADDRESS_CHANGE_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        let t = |s: &str| Value::Text(Some(s.to_owned()));
        let v = &self.view;
        let no_address = ev::AddressData::default();
        let a = v.address().unwrap_or(&no_address);
        let export = match v.current_export() {
            Some(x) => ExportState {
                exported: true,
                exported_at: x.exported_at.map(micros),
                batch_id: Some(x.batch_id.clone()),
            },
            None => ExportState::default(),
        };
        let modified_at = v.modified_at.map_or(self.created_at, micros);
        let mut values = vec![
            Value::int(self.id),
            Value::Time(Some(self.created_at)),
            Value::Time(Some(modified_at.max(self.created_at))),
            t(&v.current_identifier),
            t(&v.previous_identifier),
            t(v.external_id_kind.as_str()),
            Value::int(i64::try_from(v.external_id).unwrap_or(i64::MAX)),
            t(v.address_type.as_str()),
            Value::Bool(Some(v.has_address)),
            t(&a.salutation),
            t(&a.title),
            t(&a.first_name),
            t(&a.last_name),
            t(&a.company_name),
            t(&a.street),
            t(&a.postcode),
            t(&a.city),
            t(&a.country),
            Value::Bool(Some(v.donation_receipt)),
            t(v.export_status().as_str()),
        ];
        values.extend(export_and_scrub_values(&export, &v.scrub));
        values
    }

    /// A loaded row, from values in the order of `ADDRESS_CHANGE_COLUMNS`: the view its
    /// columns were derived from, as far as they tell it (what they do not tell changes no
    /// column, whatever event comes next).
    pub(crate) fn from_values(v: &[Value]) -> Self {
        let address = ev::AddressData {
            salutation: text(v, 9),
            title: text(v, 10),
            first_name: text(v, 11),
            last_name: text(v, 12),
            company_name: text(v, 13),
            street: text(v, 14),
            postcode: text(v, 15),
            city: text(v, 16),
            country: text(v, 17),
        };
        let current_identifier = text(v, 3);
        let (export, scrub) = export_and_scrub_of(v, 20);
        let exports = if export.exported {
            vec![ExportRecord {
                batch_id: export.batch_id.unwrap_or_default(),
                exported_at: export.exported_at,
                identifier: current_identifier.clone(),
            }]
        } else {
            Vec::new()
        };
        let created_at = time(v, 1).unwrap_or_default();
        let view = AddressChangeView {
            id: Some(unsigned(v, 0)),
            external_id_kind: code(v, 5),
            external_id: unsigned(v, 6),
            address_type: code(v, 7),
            created_at: Some(created_at),
            modified_at: time(v, 2),
            current_identifier,
            previous_identifier: text(v, 4),
            address: (address != ev::AddressData::default()).then_some(address),
            has_address: flag(v, 8),
            donation_receipt: flag(v, 18),
            exports,
            scrub,
        };
        Self {
            id: int(v, 0),
            created_at,
            view,
        }
    }
}

/// The address-change stream an event belongs in, `None` for an event none of them holds.
fn category_of(event: &DomainEvent) -> Option<AddressChangeCategory> {
    use AddressChangeCategory as C;
    use DomainEvent as E;
    Some(match event {
        E::AddressChangeCreated(_) | E::AddressChanged(_) | E::DonationReceiptOptedOut(_) => {
            C::AddressChange
        }
        E::AddressChangeExported(_) => C::Export,
        E::PersonalDataScrubbed(_) => C::Scrub,
        _ => return None,
    })
}

/// The address-change rows of one batch, in memory.
pub(super) type AddressChanges = EntityRows<AddressChangeRow>;

impl EntityRow for AddressChangeRow {
    type Category = AddressChangeCategory;
    const WHAT: &'static str = "address change";
    const ID_FIELD: &'static str = "address_change_id";
    const LOAD: Load = Load::AddressChange;
    const WRITE: Write = Write::AddressChange;

    fn category_name(category: AddressChangeCategory) -> &'static str {
        category.as_str()
    }

    fn category_of(event: &DomainEvent) -> Option<AddressChangeCategory> {
        category_of(event)
    }

    fn created_id(event: &DomainEvent) -> Option<u64> {
        match event {
            DomainEvent::AddressChangeCreated(e) => Some(e.address_change_id),
            _ => None,
        }
    }

    fn created(
        id: i64,
        event: &DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        Self::of_creation(id, event, occurred_at)
    }

    fn apply(&mut self, category: AddressChangeCategory, event: &DomainEvent) {
        self.view.apply(category.as_str(), event);
    }

    fn id(&self) -> i64 {
        self.id
    }

    fn to_values(&self) -> Vec<Value> {
        self.to_values()
    }

    fn from_values(values: &[Value]) -> Self {
        Self::from_values(values)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::entity_rows::testing::{
        self, assert_a_loaded_row_folds_on_like_the_one_in_memory, at,
    };
    use super::*;
    use crate::domain::address_change::view::fixtures::*;

    fn fold(history: &[(String, DomainEvent)]) -> AddressChanges {
        testing::fold(history, AID as i64, AddressChangeCategory::of)
    }

    fn columns(m: &AddressChanges) -> HashMap<&'static str, Value> {
        testing::columns(m, AID as i64, super::super::rows::ADDRESS_CHANGE_COLUMNS)
    }

    #[test]
    fn a_row_loaded_back_from_its_columns_folds_on_like_the_one_in_memory() {
        let history = [
            created(),
            opted_out(TOKEN_2),
            exported(TOKEN_2),
            changed(TOKEN_3),
            exported(TOKEN_3),
            scrubbed(),
        ];
        assert_a_loaded_row_folds_on_like_the_one_in_memory::<AddressChangeRow>(
            &history,
            AID as i64,
            AddressChangeCategory::of,
        );
    }

    #[test]
    fn a_change_after_an_export_shows_as_not_exported_in_its_own_columns() {
        let m = fold(&[
            created(),
            opted_out(TOKEN_2),
            exported(TOKEN_2),
            changed(TOKEN_3),
        ]);
        let c = columns(&m);
        assert_eq!(c["export_state"], Value::text("used_not_exported"));
        assert_eq!(c["is_exported"], Value::Bool(Some(false)));
        assert_eq!(c["current_identifier"], Value::text(TOKEN_3));
        assert_eq!(c["previous_identifier"], Value::text(TOKEN_2));
        assert_eq!(c["donation_receipt"], Value::Bool(Some(false)));
        assert_eq!(c["street"], Value::text("Navy Yard 3"));
    }

    #[test]
    fn a_scrub_empties_every_address_column_and_keeps_the_rest() {
        let m = fold(&[created(), changed(TOKEN_2), exported(TOKEN_2), scrubbed()]);
        let c = columns(&m);
        for personal in
            "salutation title first_name last_name company_name street postcode city country"
                .split_whitespace()
        {
            assert_eq!(c[personal], Value::text(""), "{personal}");
        }
        assert_eq!(c["has_address"], Value::Bool(Some(true)));
        assert_eq!(c["external_id_kind"], Value::text("donation"));
        assert_eq!(c["external_id"], Value::int(7));
        assert_eq!(c["scrub_rule"], Value::text("exported"));
        assert_eq!(c["export_state"], Value::text("used_exported"));
    }

    #[test]
    fn an_event_in_the_wrong_stream_or_before_the_creation_is_refused_and_changes_nothing() {
        let mut m = fold(&[created()]);
        let before = m.rows.clone();
        let (_, export) = exported(TOKEN_1);
        let wrong = m.apply(
            AddressChangeCategory::AddressChange,
            AID as i64,
            &export,
            at(9),
        );
        assert!(wrong.unwrap_err().contains("address_change_export"));
        let (_, change) = changed(TOKEN_2);
        let unknown = m.apply(AddressChangeCategory::AddressChange, 99, &change, at(9));
        assert_eq!(unknown.unwrap_err(), "unknown address change 99");
        let (_, again) = created();
        let twice = m.apply(
            AddressChangeCategory::AddressChange,
            AID as i64,
            &again,
            at(9),
        );
        assert!(twice.unwrap_err().contains("already created"));
        assert_eq!(m.rows, before);
    }
}
