//! Row logic of `contribution_tracking`: an upsert keyed on a pre-allocated id, as WMF's
//! `ContributionTrackingQueueConsumer` does it.
//!
//! * `ContributionTrackingRecorded` completes or overwrites the row with the fields it sets.
//!   Repeats are legitimate. A recording with a *different* non-empty allocation token than the
//!   row's first one means the sequence generator handed the id out twice: its fields are not
//!   merged and an `allocation_collision` conflict is recorded.
//! * `ContributionLinked` sets the contribution id. It may arrive before any tracking data (a
//!   thin row, filled later). The first contribution id wins; a different one is refused and
//!   recorded as a `contribution_id_change` conflict.

use chrono::{DateTime, Utc};

use super::donation::{timestamp, Rejection};
use super::rows::{Value, CONTRIBUTION_TRACKING_COLUMNS};
use crate::domain::contribution_tracking::{decimal_misfits, tracked_values, TrackedValue};
use crate::proto::events as ev;

/// Columns before the tracked fields: id, contribution_id, allocation_token.
const KEY_COLUMNS: usize = 3;

/// One row of `contribution_tracking`; `fields` are the WMF columns after the first three, in
/// the order of `CONTRIBUTION_TRACKING_COLUMNS`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContributionTrackingRow {
    pub id: i64,
    pub contribution_id: Option<i64>,
    pub allocation_token: String,
    pub fields: Vec<Value>,
}

/// A refused change, one row of `contribution_tracking_conflict`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conflict {
    pub position: i64,
    pub contribution_tracking_id: i64,
    pub kind: &'static str,
    pub existing: String,
    pub attempted: String,
    pub at: DateTime<Utc>,
}

impl Conflict {
    /// The row as column values, in the order of `CONFLICT_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        vec![
            Value::int(self.position),
            Value::int(self.contribution_tracking_id),
            Value::text(self.kind),
            Value::text(&self.existing),
            Value::text(&self.attempted),
            Value::Time(Some(self.at)),
        ]
    }
}

/// What an event did to a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The row changed (or was created).
    Changed,
    /// Nothing to change (a repeated link).
    Unchanged,
    /// The change was refused.
    Refused(Conflict),
}

impl ContributionTrackingRow {
    /// An empty row: every tracked field NULL.
    pub(crate) fn new(id: i64) -> Self {
        let fields = CONTRIBUTION_TRACKING_COLUMNS[KEY_COLUMNS..]
            .iter()
            .map(|(_, t)| match t {
                super::rows::ColType::I64 => Value::I64(None),
                super::rows::ColType::Text => Value::Text(None),
                super::rows::ColType::Bool => Value::Bool(None),
                super::rows::ColType::Time => Value::Time(None),
            })
            .collect();
        Self {
            id,
            contribution_id: None,
            allocation_token: String::new(),
            fields,
        }
    }

    /// The row as column values, in the order of `CONTRIBUTION_TRACKING_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        let mut v = vec![
            Value::int(self.id),
            Value::I64(self.contribution_id),
            Value::text(&self.allocation_token),
        ];
        v.extend(self.fields.iter().cloned());
        v
    }

    /// A loaded row.
    pub(crate) fn from_values(mut v: Vec<Value>) -> Self {
        let fields = v.split_off(KEY_COLUMNS);
        Self {
            id: v[0].as_i64().unwrap_or_default(),
            contribution_id: v[1].as_i64(),
            allocation_token: v[2].as_text().unwrap_or_default().to_owned(),
            fields,
        }
    }

    /// Applies `ContributionTrackingRecorded`.
    pub(crate) fn record(
        &mut self,
        e: &ev::ContributionTrackingRecorded,
        position: i64,
        at: DateTime<Utc>,
    ) -> Result<Outcome, Rejection> {
        if !self.allocation_token.is_empty()
            && !e.allocation_token.is_empty()
            && self.allocation_token != e.allocation_token
        {
            return Ok(Outcome::Refused(Conflict {
                position,
                contribution_tracking_id: self.id,
                kind: "allocation_collision",
                existing: self.allocation_token.clone(),
                attempted: e.allocation_token.clone(),
                at,
            }));
        }
        // Validate before changing anything.
        if let Some((name, v, _)) = e
            .fields
            .as_ref()
            .and_then(|f| decimal_misfits(f).into_iter().next())
        {
            return Err(format!(
                "{name} {v:?} is not a decimal that fits the column"
            ));
        }
        if self.allocation_token.is_empty() {
            self.allocation_token = e.allocation_token.clone();
        }
        let Some(f) = &e.fields else {
            return Ok(Outcome::Changed);
        };
        // `tracked_values` lists the columns after the key columns, in table order (a test
        // below holds the two lists together), so the i-th value is `fields[i]`.
        for (slot, (_, value)) in self.fields.iter_mut().zip(tracked_values(f)) {
            let value = match value {
                None => continue,
                Some(TrackedValue::Text(s)) => Value::text(s),
                Some(TrackedValue::Int(i)) => Value::int(i),
                Some(TrackedValue::Flag(b)) => Value::Bool(Some(b)),
                // A timestamp out of the column's range leaves the column as it was.
                Some(TrackedValue::Time(t)) => match timestamp(Some(t)) {
                    Some(t) => Value::Time(Some(t)),
                    None => continue,
                },
            };
            *slot = value;
        }
        Ok(Outcome::Changed)
    }

    /// Applies `ContributionLinked`.
    pub(crate) fn link(
        &mut self,
        contribution_id: i64,
        position: i64,
        at: DateTime<Utc>,
    ) -> Outcome {
        match self.contribution_id {
            Some(existing) if existing == contribution_id => Outcome::Unchanged,
            Some(existing) => Outcome::Refused(Conflict {
                position,
                contribution_tracking_id: self.id,
                kind: "contribution_id_change",
                existing: existing.to_string(),
                attempted: contribution_id.to_string(),
                at,
            }),
            None => {
                self.contribution_id = Some(contribution_id);
                Outcome::Changed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    /// The value of `name` in `row`'s column values.
    fn column(row: &ContributionTrackingRow, name: &str) -> Value {
        let i = CONTRIBUTION_TRACKING_COLUMNS
            .iter()
            .position(|(c, _)| *c == name)
            .unwrap();
        row.to_values().swap_remove(i)
    }

    #[test]
    fn tracked_values_come_in_the_order_of_the_columns() {
        let fields = ev::ContributionTrackingFields::default();
        let tracked: Vec<&str> = tracked_values(&fields).iter().map(|(c, _)| *c).collect();
        let columns: Vec<&str> = CONTRIBUTION_TRACKING_COLUMNS[KEY_COLUMNS..]
            .iter()
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(tracked, columns);
        assert_eq!(ContributionTrackingRow::new(1).fields.len(), columns.len());
    }

    #[test]
    fn recorded_fields_land_in_their_columns() {
        let mut row = ContributionTrackingRow::new(7);
        let e = ev::ContributionTrackingRecorded {
            contribution_tracking_id: 7,
            allocation_token: "a".into(),
            fields: Some(ev::ContributionTrackingFields {
                amount: Some("12.50".into()),
                banner: Some("B1".into()),
                payment_method_id: Some(3),
                is_pay_fee: Some(true),
                ..Default::default()
            }),
        };
        assert_eq!(row.record(&e, 1, at()).unwrap(), Outcome::Changed);
        assert_eq!(column(&row, "allocation_token"), Value::text("a"));
        assert_eq!(column(&row, "amount"), Value::text("12.50"));
        assert_eq!(column(&row, "banner"), Value::text("B1"));
        assert_eq!(column(&row, "payment_method_id"), Value::int(3));
        assert_eq!(column(&row, "is_pay_fee"), Value::Bool(Some(true)));
        assert_eq!(column(&row, "currency"), Value::Text(None));

        // A later recording overwrites only what it sets; one without fields changes nothing
        // but may set a missing token.
        let again = ev::ContributionTrackingRecorded {
            fields: Some(ev::ContributionTrackingFields {
                banner: Some("B2".into()),
                ..Default::default()
            }),
            ..e.clone()
        };
        row.record(&again, 2, at()).unwrap();
        let bare = ev::ContributionTrackingRecorded {
            fields: None,
            ..e.clone()
        };
        let before = row.clone();
        row.record(&bare, 3, at()).unwrap();
        assert_eq!(row, before);
        assert_eq!(column(&row, "banner"), Value::text("B2"));
        assert_eq!(column(&row, "amount"), Value::text("12.50"));

        // A misfit decimal is refused before anything changes.
        let bad = ev::ContributionTrackingRecorded {
            fields: Some(ev::ContributionTrackingFields {
                banner: Some("B3".into()),
                usd_amount: Some("1.234".into()),
                ..Default::default()
            }),
            ..e
        };
        assert!(row
            .record(&bad, 4, at())
            .unwrap_err()
            .contains("usd_amount"));
        assert_eq!(row, before);
    }

    #[test]
    fn first_contribution_id_wins() {
        let mut row = ContributionTrackingRow::new(7);
        assert_eq!(row.link(100, 1, at()), Outcome::Changed);
        assert_eq!(row.link(100, 2, at()), Outcome::Unchanged);
        match row.link(200, 3, at()) {
            Outcome::Refused(c) => {
                assert_eq!(c.kind, "contribution_id_change");
                assert_eq!((c.existing.as_str(), c.attempted.as_str()), ("100", "200"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(row.contribution_id, Some(100));
    }

    #[test]
    fn a_second_allocation_is_not_merged() {
        let mut row = ContributionTrackingRow::new(7);
        let rec = |token: &str, banner: &str| ev::ContributionTrackingRecorded {
            contribution_tracking_id: 7,
            allocation_token: token.into(),
            fields: Some(ev::ContributionTrackingFields {
                banner: Some(banner.into()),
                ..Default::default()
            }),
        };
        row.record(&rec("a", "B1"), 1, at()).unwrap();
        row.record(&rec("a", "B2"), 2, at()).unwrap();
        let before = row.clone();
        assert!(matches!(
            row.record(&rec("b", "B3"), 3, at()).unwrap(),
            Outcome::Refused(Conflict {
                kind: "allocation_collision",
                ..
            })
        ));
        assert_eq!(row, before);
    }
}
