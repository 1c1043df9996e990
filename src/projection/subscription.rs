//! Row logic of the subscription read model: the `subscription` row, and how each event of a
//! subscription's three streams (`subscription`, `subscription_export`, `subscription_scrub`)
//! changes it. The index streams (`subscription_code-{code}`, `subscription_email-{hmac}`) are
//! for the intake and make no row.
//!
//! As for address changes, a row holds the domain's fold ([`SubscriptionView`]) and every
//! column is mapped from it when the row is written. The address is no column: it stays
//! sealed in the log, so the read model never holds it and a removal has nothing to blank.

use chrono::{DateTime, Utc};

use super::backend::{Load, Write};
use super::donation::{export_and_scrub_of, export_and_scrub_values, micros, Rejection};
use super::entity_rows::{EntityRow, EntityRows};
use super::rows::{code, int, text, time, unsigned, Value};
use crate::domain::subscription::{SubscriptionCategory, SubscriptionStatus, SubscriptionView};
use crate::domain::DomainEvent;

/// One row of `subscription`: the subscription's view across its streams (see
/// [`SubscriptionRow::to_values`]); a row loaded back from its columns folds on exactly as the
/// one kept in memory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubscriptionRow {
    pub id: i64,
    /// The creation's time, or the time its event occurred when it names none.
    pub created_at: DateTime<Utc>,
    pub view: SubscriptionView,
}

/// The subscription rows of one batch, in memory.
pub(super) type Subscriptions = EntityRows<SubscriptionRow>;

/// The subscription stream an event belongs in, `None` for an event none of them holds.
fn category_of(event: &DomainEvent) -> Option<SubscriptionCategory> {
    use DomainEvent as E;
    use SubscriptionCategory as C;
    Some(match event {
        E::SubscriptionCreated(_) | E::SubscriptionConfirmed(_) => C::Subscription,
        E::SubscriptionExported(_) => C::Export,
        E::PersonalDataScrubbed(_) => C::Scrub,
        _ => return None,
    })
}

impl EntityRow for SubscriptionRow {
    type Category = SubscriptionCategory;
    const WHAT: &'static str = "subscription";
    const ID_FIELD: &'static str = "subscription_id";
    const LOAD: Load = Load::Subscription;
    const WRITE: Write = Write::Subscription;

    fn category_name(category: SubscriptionCategory) -> &'static str {
        category.as_str()
    }

    fn category_of(event: &DomainEvent) -> Option<SubscriptionCategory> {
        category_of(event)
    }

    fn created_id(event: &DomainEvent) -> Option<u64> {
        match event {
            DomainEvent::SubscriptionCreated(e) => Some(e.subscription_id),
            _ => None,
        }
    }

    fn created(
        id: i64,
        event: &DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let mut view = SubscriptionView::default();
        view.apply(SubscriptionCategory::Subscription.as_str(), event);
        // A payload without the id names the stream's (the caller checked they agree).
        view.id = Some(id.unsigned_abs());
        // The read model never holds the address, whether the event came sealed or not.
        view.email = None;
        let created_at = view.created_at.map_or(occurred_at, micros);
        view.created_at = Some(created_at);
        Ok(Self {
            id,
            created_at,
            view,
        })
    }

    fn apply(&mut self, category: SubscriptionCategory, event: &DomainEvent) {
        self.view.apply(category.as_str(), event);
    }

    fn id(&self) -> i64 {
        self.id
    }

    /// The row as column values, in the order of `SUBSCRIPTION_COLUMNS`.
    fn to_values(&self) -> Vec<Value> {
        let t = |s: &str| Value::Text(Some(s.to_owned()));
        let v = &self.view;
        let mut values = vec![
            Value::int(self.id),
            Value::Time(Some(self.created_at)),
            t(v.status.as_str()),
            Value::Time(v.confirmed_at.map(micros)),
            t(&v.tracking),
            t(&v.source),
        ];
        values.extend(export_and_scrub_values(&v.export, &v.removal));
        values
    }

    /// A loaded row, from values in the order of `SUBSCRIPTION_COLUMNS`.
    fn from_values(v: &[Value]) -> Self {
        let (export, removal) = export_and_scrub_of(v, 6);
        let created_at = time(v, 1).unwrap_or_default();
        let view = SubscriptionView {
            id: Some(unsigned(v, 0)),
            email: None,
            tracking: text(v, 4),
            source: text(v, 5),
            confirmation_code: String::new(),
            created_at: Some(created_at),
            confirmed_at: time(v, 3),
            status: code::<SubscriptionStatus>(v, 2),
            export,
            removal,
        };
        Self {
            id: int(v, 0),
            created_at,
            view,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::entity_rows::testing::{
        self, assert_a_loaded_row_folds_on_like_the_one_in_memory, at,
    };
    use super::*;
    use crate::domain::scrub::ScrubRule;
    use crate::domain::subscription::view::fixtures::*;

    fn fold(history: &[(String, DomainEvent)]) -> Subscriptions {
        testing::fold(history, SID as i64, SubscriptionCategory::of)
    }

    fn columns(m: &Subscriptions) -> HashMap<&'static str, Value> {
        testing::columns(m, SID as i64, super::super::rows::SUBSCRIPTION_COLUMNS)
    }

    #[test]
    fn a_subscription_row_loaded_back_from_its_columns_folds_on_like_the_one_in_memory() {
        let history = [
            created(),
            confirmed(),
            exported(),
            removed(ScrubRule::Exported),
        ];
        assert_a_loaded_row_folds_on_like_the_one_in_memory::<SubscriptionRow>(
            &history,
            SID as i64,
            SubscriptionCategory::of,
        );
    }

    #[test]
    fn a_removed_subscription_keeps_its_status_tracking_and_export_in_its_columns() {
        let m = fold(&[
            created(),
            confirmed(),
            exported(),
            removed(ScrubRule::Exported),
        ]);
        let c = columns(&m);
        assert_eq!(c["status"], Value::text("confirmed"));
        assert_eq!(c["tracking"], Value::text("spring/banner"));
        assert_eq!(c["is_exported"], Value::Bool(Some(true)));
        assert_eq!(c["export_batch"], Value::text("b1"));
        assert_eq!(c["is_removed"], Value::Bool(Some(true)));
        assert_eq!(c["removal_rule"], Value::text("exported"));
        assert!(!c.contains_key("email"));
    }

    #[test]
    fn an_event_in_the_wrong_stream_or_before_the_creation_is_refused_and_changes_nothing() {
        let mut m = fold(&[created()]);
        let before = m.rows.clone();
        let (_, export) = exported();
        let wrong = m.apply(
            SubscriptionCategory::Subscription,
            SID as i64,
            &export,
            at(9),
        );
        assert!(wrong.unwrap_err().contains("subscription_export"));
        let (_, confirm) = confirmed();
        let unknown = m.apply(SubscriptionCategory::Subscription, 99, &confirm, at(9));
        assert_eq!(unknown.unwrap_err(), "unknown subscription 99");
        let (_, again) = created();
        let twice = m.apply(
            SubscriptionCategory::Subscription,
            SID as i64,
            &again,
            at(9),
        );
        assert!(twice.unwrap_err().contains("already created"));
        assert_eq!(m.rows, before);
    }
}
