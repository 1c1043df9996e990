//! The contribution-tracking fold: `ContributionTrackingState` from the events of one
//! `contribution_tracking-{ct id}` stream, and the rule its decimal fields follow.
//!
//! The row belongs to the allocation of its first non-empty token. A record carrying another
//! token comes from a second allocation of the same id (a sequence-generator fault): it stays in
//! the log as evidence and is counted, but its fields are not merged. Records with the row's
//! token, or with none, are legitimate repeats and are merged.

use crate::domain::types::to_datetime;
use crate::domain::DomainEvent;

pub use crate::proto::events::ContributionTrackingFields;

/// Copies every set field of `from` into `into`; unset fields leave `into` unchanged.
macro_rules! merge_set_fields {
    ($into:expr, $from:expr, $($field:ident),+ $(,)?) => {
        $(
            if $from.$field.is_some() {
                $into.$field = $from.$field.clone();
            }
        )+
    };
}

/// Overwrites the set fields of `into` with those of `from`.
pub fn merge_fields(into: &mut ContributionTrackingFields, from: &ContributionTrackingFields) {
    merge_set_fields!(
        into,
        from,
        amount,
        currency,
        usd_amount,
        is_recurring,
        referrer,
        utm_medium,
        utm_campaign,
        utm_key,
        gateway,
        appeal,
        payments_form_variant,
        banner,
        landing_page,
        payment_method_id,
        payment_submethod_id,
        language,
        country,
        tracking_date,
        os,
        os_version,
        browser,
        browser_version,
        recurring_choice_id,
        device_type_id,
        banner_size_id,
        is_test_variant,
        banner_variant,
        is_pay_fee,
        mailing_identifier,
        utm_source,
        banner_history_log_id,
        screen_width,
        screen_height,
        app_install_id,
    );
}

/// One tracked field's value, typed as its `contribution_tracking` column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrackedValue<'a> {
    /// A text (or decimal-as-text) column.
    Text(&'a str),
    /// An integer column.
    Int(i64),
    /// A boolean column.
    Flag(bool),
    /// A timestamp column.
    Time(&'a prost_types::Timestamp),
}

impl std::fmt::Display for TrackedValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Int(i) => write!(f, "{i}"),
            Self::Flag(b) => write!(f, "{b}"),
            Self::Time(t) => match to_datetime(t) {
                Some(t) => f.write_str(&t.to_rfc3339()),
                None => write!(f, "{}s{}ns", t.seconds, t.nanos),
            },
        }
    }
}

/// Every tracked field of `f` under its column name, in column order; `None` where unset. The
/// one list of the fields that the read model and the audit share.
pub fn tracked_values<'a>(
    f: &'a ContributionTrackingFields,
) -> Vec<(&'static str, Option<TrackedValue<'a>>)> {
    let text = |s: &'a Option<String>| s.as_deref().map(TrackedValue::Text);
    let int = |i: Option<i32>| i.map(|i| TrackedValue::Int(i64::from(i)));
    let uint = |i: Option<u32>| i.map(|i| TrackedValue::Int(i64::from(i)));
    let flag = |b: Option<bool>| b.map(TrackedValue::Flag);
    vec![
        ("amount", text(&f.amount)),
        ("currency", text(&f.currency)),
        ("usd_amount", text(&f.usd_amount)),
        ("is_recurring", flag(f.is_recurring)),
        ("referrer", text(&f.referrer)),
        ("utm_medium", text(&f.utm_medium)),
        ("utm_campaign", text(&f.utm_campaign)),
        ("utm_key", text(&f.utm_key)),
        ("gateway", text(&f.gateway)),
        ("appeal", text(&f.appeal)),
        ("payments_form_variant", text(&f.payments_form_variant)),
        ("banner", text(&f.banner)),
        ("landing_page", text(&f.landing_page)),
        ("payment_method_id", int(f.payment_method_id)),
        ("payment_submethod_id", int(f.payment_submethod_id)),
        ("language", text(&f.language)),
        ("country", text(&f.country)),
        (
            "tracking_date",
            f.tracking_date.as_ref().map(TrackedValue::Time),
        ),
        ("os", text(&f.os)),
        ("os_version", text(&f.os_version)),
        ("browser", text(&f.browser)),
        ("browser_version", text(&f.browser_version)),
        ("recurring_choice_id", int(f.recurring_choice_id)),
        ("device_type_id", int(f.device_type_id)),
        ("banner_size_id", int(f.banner_size_id)),
        ("is_test_variant", flag(f.is_test_variant)),
        ("banner_variant", text(&f.banner_variant)),
        ("is_pay_fee", flag(f.is_pay_fee)),
        ("mailing_identifier", text(&f.mailing_identifier)),
        ("utm_source", text(&f.utm_source)),
        ("banner_history_log_id", text(&f.banner_history_log_id)),
        ("screen_width", uint(f.screen_width)),
        ("screen_height", uint(f.screen_height)),
        ("app_install_id", text(&f.app_install_id)),
    ]
}

/// One `contribution_tracking` row, folded from its own stream only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContributionTrackingState {
    /// The contribution-tracking id; `None` until a record was seen.
    pub id: Option<u64>,
    /// The tracking fields, merged: later records complete or overwrite set fields.
    pub fields: ContributionTrackingFields,
    /// How many records were merged (legitimate repeats included).
    pub records: u32,
    /// The allocation the row belongs to: the first non-empty allocation token seen.
    pub allocation_token: Option<String>,
    /// Records from other allocations of the same id, kept out of `fields`.
    pub collisions: u32,
    /// The linked contribution id; the first one wins.
    pub contribution_id: Option<u64>,
    /// Links to a different contribution id that reached the log (for instance through a
    /// race between two linkers) and were refused by the fold.
    pub refused_links: u32,
}

impl ContributionTrackingState {
    /// Folds a whole stream.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DomainEvent>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Whether the id was allocated more than once (records with two different tokens).
    pub fn is_double_allocation(&self) -> bool {
        self.collisions > 0
    }

    /// Whether a record with `token` would come from another allocation than the row's.
    pub fn collides_with(&self, token: &str) -> bool {
        !token.is_empty() && self.allocation_token.as_ref().is_some_and(|t| t != token)
    }

    /// Applies one event; events of other streams are ignored. Never fails.
    pub fn apply(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::ContributionTrackingRecorded(e) => {
                self.id.get_or_insert(e.contribution_tracking_id);
                if self.collides_with(&e.allocation_token) {
                    self.collisions = self.collisions.saturating_add(1);
                    return;
                }
                if self.allocation_token.is_none() && !e.allocation_token.is_empty() {
                    self.allocation_token = Some(e.allocation_token.clone());
                }
                if let Some(f) = &e.fields {
                    merge_fields(&mut self.fields, f);
                }
                self.records = self.records.saturating_add(1);
            }
            DomainEvent::ContributionLinked(e) => match self.contribution_id {
                None => self.contribution_id = Some(e.contribution_id),
                Some(existing) if existing == e.contribution_id => {}
                Some(_) => self.refused_links = self.refused_links.saturating_add(1),
            },
            _ => {}
        }
    }
}

/// The decimal fields of `f` that do not fit their columns (`amount` NUMERIC(20,3),
/// `usd_amount` NUMERIC(20,2), neither negative), as field name, value and rule: the rules of
/// [`crate::domain::admission`].
pub fn decimal_misfits(f: &ContributionTrackingFields) -> Vec<(&'static str, &str, String)> {
    use crate::domain::admission::{decimal_misfit, holds};
    [
        ("amount", &f.amount, holds("contribution_tracking.amount")),
        (
            "usd_amount",
            &f.usd_amount,
            holds("contribution_tracking.usd_amount"),
        ),
    ]
    .into_iter()
    .filter_map(|(name, value, holds)| {
        let v = value.as_deref()?;
        decimal_misfit(v, holds).map(|rule| (name, v, rule))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::events as ev;

    fn recorded(token: &str, fields: ContributionTrackingFields) -> DomainEvent {
        ev::ContributionTrackingRecorded {
            contribution_tracking_id: 3,
            allocation_token: token.into(),
            fields: Some(fields),
        }
        .into()
    }

    #[test]
    fn later_records_complete_and_overwrite_set_fields() {
        let s = ContributionTrackingState::fold(&[
            recorded(
                "a",
                ContributionTrackingFields {
                    amount: Some("10".into()),
                    utm_source: Some("banner".into()),
                    ..Default::default()
                },
            ),
            recorded(
                "a",
                ContributionTrackingFields {
                    amount: Some("20".into()),
                    country: Some("DE".into()),
                    ..Default::default()
                },
            ),
        ]);
        assert_eq!(s.id, Some(3));
        assert_eq!(s.fields.amount.as_deref(), Some("20"));
        assert_eq!(s.fields.utm_source.as_deref(), Some("banner"));
        assert_eq!(s.fields.country.as_deref(), Some("DE"));
        assert_eq!(s.records, 2);
        assert!(!s.is_double_allocation());
    }

    #[test]
    fn a_second_allocation_is_counted_and_not_merged_while_tokenless_repeats_are() {
        let banner = |b: &str| ContributionTrackingFields {
            banner: Some(b.into()),
            ..Default::default()
        };
        let s = ContributionTrackingState::fold(&[
            recorded("a", banner("B1")),
            recorded("b", banner("B2")),
            recorded("", banner("B3")),
        ]);
        assert!(s.is_double_allocation());
        assert_eq!(s.collisions, 1);
        assert_eq!(s.records, 2);
        assert_eq!(s.allocation_token.as_deref(), Some("a"));
        assert_eq!(s.fields.banner.as_deref(), Some("B3"));
        assert!(s.collides_with("b"));
        assert!(!s.collides_with("a"));
        assert!(!s.collides_with(""));
    }

    #[test]
    fn the_first_token_owns_the_row_even_after_tokenless_records() {
        let s = ContributionTrackingState::fold(&[
            recorded("", Default::default()),
            recorded("a", Default::default()),
        ]);
        assert_eq!(s.allocation_token.as_deref(), Some("a"));
        assert!(!s.is_double_allocation());
        assert!(!ContributionTrackingState::default().collides_with("a"));
    }

    #[test]
    fn decimals_are_checked_against_the_column() {
        let amount = |v: &str| ContributionTrackingFields {
            amount: Some(v.into()),
            usd_amount: Some("1.23".into()),
            ..Default::default()
        };
        for good in ["35", "35.125"] {
            assert!(decimal_misfits(&amount(good)).is_empty(), "{good}");
        }
        // A negative amount is refused: tracking records what a donor gives.
        for bad in ["-1.5", "-1", "35.1255", "3e5", "1.", ""] {
            let fields = amount(bad);
            let misfits = decimal_misfits(&fields);
            assert_eq!(misfits.len(), 1, "{bad}");
            assert_eq!(misfits[0].0, "amount");
        }
    }

    #[test]
    fn the_first_contribution_id_wins_and_later_different_ones_are_counted() {
        let s = ContributionTrackingState::fold(&[
            ev::ContributionLinked { contribution_id: 1 }.into(),
            ev::ContributionLinked { contribution_id: 1 }.into(),
            ev::ContributionLinked { contribution_id: 2 }.into(),
        ]);
        assert_eq!(s.contribution_id, Some(1));
        assert_eq!(s.refused_links, 1);
    }

    #[test]
    fn tracked_values_name_every_set_field_with_its_column_and_leave_the_rest_unset() {
        let f = ContributionTrackingFields {
            utm_campaign: Some("spring".into()),
            payment_method_id: Some(3),
            is_pay_fee: Some(true),
            tracking_date: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
            ..Default::default()
        };
        let values = tracked_values(&f);
        let set: Vec<(&str, String)> = values
            .iter()
            .filter_map(|(c, v)| v.map(|v| (*c, v.to_string())))
            .collect();
        assert_eq!(
            set,
            [
                ("utm_campaign", "spring".to_owned()),
                ("payment_method_id", "3".to_owned()),
                ("tracking_date", "2026-01-01T00:00:00+00:00".to_owned()),
                ("is_pay_fee", "true".to_owned()),
            ]
        );
        assert_eq!(values.len(), 34);
    }

    #[test]
    fn events_of_other_streams_change_nothing() {
        let s = ContributionTrackingState::fold(&[ev::DonationCreated::default().into()]);
        assert_eq!(s, ContributionTrackingState::default());
    }
}
