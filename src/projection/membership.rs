//! Row logic of the membership read model: the `membership_application` row and its
//! `membership_moderation_reason` rows, and how each event of an application's five streams
//! (`membership`, `membership_moderation`, `membership_cancellation`, `membership_export`,
//! `membership_scrub`) changes them.
//!
//! One fold per stream, all of them the domain's: a row holds the application's
//! [`MembershipView`] (its application, moderation, cancellation, export and scrub folds), an
//! event moves the fold of its stream, and the columns are mapped from the view when the row is
//! written. The row adds only `created_at` and `updated_at` from the events' times, and the
//! blanking of the personal columns after a scrub (the view's own rule: a scrubbed application
//! has no applicant). The legacy status code is not a column: `legacy_request` derives it.
//!
//! A batch loads the rows of the applications its events touch, with their open reasons (a
//! rebuild finds most of them in its write-back cache instead), and writes back every changed
//! row (a rebuild when they leave the cache) and the open reasons it changed (every batch).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::backend::{Load, ProjectionError, ReasonTable, Session, Write};
use super::batch::check_same;
use super::cache::{from_cache, CachedTable};
use super::donation::{
    big, export_and_scrub_of, export_and_scrub_values, id, micros, moderation_identifier, Rejection,
};
use super::moderation_reasons;
use super::rows::{code, flag, int, text, time, unsigned, Value};
use crate::domain::membership::{ApplicationState, MembershipCategory, MembershipView};
use crate::domain::moderation::{ModerationState, ModerationStatus};
use crate::domain::scrub::ScrubRule;
use crate::domain::{DomainEvent, PaymentMethod};
use crate::proto::events as ev;

/// One row of `membership_application`: the application's view across its streams. Every
/// column is derived from it (see [`MembershipRow::to_values`]); a row loaded back from its
/// columns and open reasons folds on exactly as the one kept in memory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MembershipRow {
    pub id: i64,
    /// The application's time, or the time its event occurred when it names none.
    pub created_at: DateTime<Utc>,
    /// The time of the latest event of any of its streams.
    pub updated_at: DateTime<Utc>,
    pub view: MembershipView,
}

impl MembershipRow {
    /// The row of a `MembershipApplied` event on stream `membership-{id}`.
    fn applied(
        id: i64,
        event: &DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let mut view = MembershipView::default();
        view.application.apply(event);
        // A payload without the membership id names the stream's (the caller checked they
        // agree).
        view.application.id = Some(id.unsigned_abs());
        self::id(view.application.payment_id, "payment id")?;
        let created_at = view.application.created_at.map_or(occurred_at, micros);
        Ok(Self {
            id,
            created_at,
            updated_at: created_at,
            view,
        })
    }

    /// The row as column values, in the order of `MEMBERSHIP_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        let t = |s: &str| Value::Text(Some(s.to_owned()));
        let v = &self.view;
        let a = &v.application;
        // A scrubbed application has no applicant ([`MembershipView::applicant`]) and no bank
        // data; one whose unit could not be unsealed has none either.
        let no_applicant = ev::ApplicantData::default();
        let p = v.applicant().unwrap_or(&no_applicant);
        let no_bank = ev::BankData::default();
        let bank = match &a.bank {
            Some(b) if !v.is_scrubbed() => b,
            _ => &no_bank,
        };
        let mut values = vec![
            Value::int(self.id),
            Value::Time(Some(self.created_at)),
            Value::Time(Some(self.updated_at)),
            t(a.applicant_kind.as_str()),
            t(a.membership_type.as_str()),
            Value::int(a.fee_cents),
            Value::int(i64::from(a.interval_months)),
            Value::int(a.yearly_fee_cents()),
            Value::int(big(a.payment_id)),
            t(a.payment_method.map_or("", PaymentMethod::as_str)),
            Value::Bool(Some(v.is_confirmed())),
            t(v.moderation.status().as_str()),
            t(v.cancellation.as_str()),
        ];
        values.extend(export_and_scrub_values(&v.export, &v.scrub));
        values.extend([
            t(&p.salutation),
            t(&p.title),
            t(&p.first_name),
            t(&p.last_name),
            t(&p.company_name),
            t(&p.street),
            t(&p.postcode),
            t(&p.city),
            t(&p.country),
            t(&p.email),
            t(&p.phone),
            t(&p.date_of_birth),
            t(&bank.iban),
            t(&bank.bic),
            t(&bank.payment_reference_code),
            t(&a.tracking.campaign),
            t(&a.tracking.keyword),
            t(&a.incentives.join(",")),
            Value::Bool(Some(a.donation_receipt.unwrap_or(false))),
            Value::Bool(Some(a.donation_receipt.is_some())),
        ]);
        values
    }

    /// A loaded row, from values in the order of `MEMBERSHIP_COLUMNS` and its open reasons:
    /// the view its columns were derived from, as far as they tell it (what they do not tell
    /// changes no column, whatever event comes next).
    pub(crate) fn from_values(v: &[Value], reasons: ModerationState) -> Self {
        let applicant = ev::ApplicantData {
            salutation: text(v, 19),
            title: text(v, 20),
            first_name: text(v, 21),
            last_name: text(v, 22),
            company_name: text(v, 23),
            street: text(v, 24),
            postcode: text(v, 25),
            city: text(v, 26),
            country: text(v, 27),
            email: text(v, 28),
            phone: text(v, 29),
            date_of_birth: text(v, 30),
        };
        let incentives = text(v, 36);
        let application = ApplicationState {
            id: Some(unsigned(v, 0)),
            created_at: time(v, 1),
            applicant_kind: code(v, 3),
            has_personal_data: applicant != ev::ApplicantData::default(),
            applicant: Some(applicant),
            membership_type: code(v, 4),
            fee_cents: int(v, 5),
            interval_months: unsigned(v, 6),
            payment_id: unsigned(v, 8),
            payment_method: v[9].as_text().and_then(|c| c.parse().ok()),
            bank: Some(ev::BankData {
                iban: text(v, 31),
                bic: text(v, 32),
                payment_reference_code: text(v, 33),
            }),
            confirmed: flag(v, 10),
            tracking: ev::MembershipTracking {
                campaign: text(v, 34),
                keyword: text(v, 35),
            },
            incentives: incentives
                .split(',')
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect(),
            donation_receipt: flag(v, 38).then(|| flag(v, 37)),
        };
        // Approved is all the status column adds to the open reasons (an open status has
        // reasons; an approval clears them and sets it again).
        let moderation = ModerationState {
            approved: code::<ModerationStatus>(v, 11) == ModerationStatus::Approved,
            ..reasons
        };
        let (export, scrub) = export_and_scrub_of(v, 13);
        let view = MembershipView {
            application,
            moderation,
            cancellation: code(v, 12),
            export,
            scrub,
        };
        Self {
            id: int(v, 0),
            created_at: time(v, 1).unwrap_or_default(),
            updated_at: time(v, 2).unwrap_or_default(),
            view,
        }
    }

    /// Applies an event of one of the application's streams other than its creation, with
    /// the domain's fold of that stream.
    fn apply(
        &mut self,
        category: MembershipCategory,
        event: &DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        match event {
            DomainEvent::ModerationReasonsRaised(e) => {
                for r in &e.reasons {
                    moderation_identifier(r.identifier)?;
                }
            }
            DomainEvent::PersonalDataScrubbed(e)
                if ScrubRule::try_from(e.rule).unwrap_or_default() == ScrubRule::Unspecified =>
            {
                return Err(format!("unknown scrub rule {}", e.rule));
            }
            _ => {}
        }
        self.view.apply(category.as_str(), event);
        if occurred_at > self.updated_at {
            self.updated_at = occurred_at;
        }
        Ok(())
    }
}

/// The membership stream an event belongs in, `None` for an event no membership stream holds.
fn category_of(event: &DomainEvent) -> Option<MembershipCategory> {
    use DomainEvent as E;
    use MembershipCategory as C;
    Some(match event {
        E::MembershipApplied(_) => C::Application,
        E::ModerationReasonsRaised(_) | E::ModerationApproved(_) | E::ManuallyFlagged(_) => {
            C::Moderation
        }
        E::MembershipCancelled(_) | E::MembershipRestored(_) => C::Cancellation,
        E::MembershipExported(_) => C::Export,
        E::PersonalDataScrubbed(_) => C::Scrub,
        _ => return None,
    })
}

/// The membership rows of one batch, in memory.
#[derive(Debug, Default)]
pub(super) struct Memberships {
    pub(super) rows: HashMap<i64, MembershipRow>,
    /// Applications whose row changed.
    pub(super) dirty: BTreeSet<i64>,
    /// Applications whose open reasons changed (their reason rows are replaced).
    dirty_reasons: BTreeSet<i64>,
}

impl Memberships {
    /// Loads the rows of `ids`: copies of those the rebuild's `cache` holds (with the open
    /// reasons they fold), the others from the database with their open reasons.
    pub(super) async fn load(
        &mut self,
        session: &mut dyn Session,
        ids: &BTreeSet<i64>,
        cache: Option<(&CachedTable<MembershipRow>, bool)>,
    ) -> Result<(), ProjectionError> {
        let ids = from_cache(ids, &mut self.rows, cache);
        if ids.is_empty() {
            return Ok(());
        }
        let mut reasons = HashMap::new();
        moderation_reasons::load(session, ReasonTable::Membership, &ids, &mut reasons).await?;
        for v in session.load(Load::Membership, &ids).await? {
            let id = int(&v, 0);
            let row = MembershipRow::from_values(&v, reasons.remove(&id).unwrap_or_default());
            self.rows.insert(id, row);
        }
        Ok(())
    }

    /// Applies an event of stream `{category}-{id}`; on a rejection nothing was changed.
    pub(super) fn apply(
        &mut self,
        category: MembershipCategory,
        id: i64,
        event: &DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        let expected = category_of(event);
        if expected != Some(category) {
            let belongs = expected.map_or("another context", MembershipCategory::as_str);
            return Err(format!(
                "a `{}` stream cannot hold this event (it belongs in `{belongs}`)",
                category.as_str()
            ));
        }
        if let DomainEvent::MembershipApplied(e) = event {
            check_same(e.membership_id, id, "membership_id")?;
            if self.rows.contains_key(&id) {
                return Err(format!("membership {id} was already applied for"));
            }
            self.rows
                .insert(id, MembershipRow::applied(id, event, occurred_at)?);
        } else {
            let row = self
                .rows
                .get_mut(&id)
                .ok_or_else(|| format!("unknown membership {id}"))?;
            row.apply(category, event, occurred_at)?;
            if category == MembershipCategory::Moderation {
                self.dirty_reasons.insert(id);
            }
        }
        self.dirty.insert(id);
        Ok(())
    }

    /// Writes every changed row.
    pub(super) async fn write_rows(
        &self,
        session: &mut dyn Session,
    ) -> Result<(), ProjectionError> {
        let rows: Vec<Vec<Value>> = self
            .dirty
            .iter()
            .map(|id| self.rows[id].to_values())
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        session.write(Write::Membership, rows).await
    }

    /// Writes the open reasons of the applications whose reasons changed (with or without a
    /// row cache: a row loaded back after it left the cache finds them here).
    pub(super) async fn write_reasons(
        &self,
        session: &mut dyn Session,
    ) -> Result<(), ProjectionError> {
        let reasons = self
            .dirty_reasons
            .iter()
            .map(|id| (*id, &self.rows[id].view.moderation.open_reasons));
        moderation_reasons::replace(session, ReasonTable::Membership, reasons).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::membership::view::fixtures::*;
    use crate::domain::types::PaymentMethod;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap()
    }

    /// The batch's rows after `history` (each event a second after the last).
    fn fold(history: &[(String, DomainEvent)]) -> Memberships {
        let mut m = Memberships::default();
        for (i, (stream, event)) in history.iter().enumerate() {
            let category = MembershipCategory::of(stream).unwrap();
            m.apply(category, MID as i64, event, at(i as i64)).unwrap();
        }
        m
    }

    /// The row's values by column name.
    fn columns(m: &Memberships) -> HashMap<&'static str, Value> {
        let row = &m.rows[&(MID as i64)];
        super::super::rows::MEMBERSHIP_COLUMNS
            .iter()
            .map(|(c, _)| *c)
            .zip(row.to_values())
            .collect()
    }

    #[test]
    fn a_row_loaded_back_from_its_columns_folds_on_like_the_one_in_memory() {
        let history = [
            confirmed_application(),
            fee_too_high(),
            cancelled(),
            flagged(),
            restored(),
            exported(),
            approved(),
            scrubbed(),
        ];
        for split in 1..history.len() {
            let mut memory = fold(&history);
            let mut loaded = fold(&history[..split]);
            let row = &loaded.rows[&(MID as i64)];
            let reasons = row.view.moderation.clone();
            let back = MembershipRow::from_values(
                &row.to_values(),
                ModerationState {
                    open_reasons: reasons.open_reasons,
                    ..ModerationState::default()
                },
            );
            loaded.rows.insert(MID as i64, back);
            for (i, (stream, event)) in history.iter().enumerate().skip(split) {
                let category = MembershipCategory::of(stream).unwrap();
                loaded
                    .apply(category, MID as i64, event, at(i as i64))
                    .unwrap();
            }
            memory.dirty.clear();
            assert_eq!(
                loaded.rows[&(MID as i64)].to_values(),
                memory.rows[&(MID as i64)].to_values(),
                "loaded back after {split} events"
            );
        }
    }

    #[test]
    fn cancelled_and_moderated_at_once_show_in_their_own_columns() {
        let m = fold(&[confirmed_application(), fee_too_high(), cancelled()]);
        let c = columns(&m);
        assert_eq!(c["moderation_state"], Value::text("open"));
        assert_eq!(c["cancellation_state"], Value::text("cancelled"));
        assert_eq!(c["is_confirmed"], Value::Bool(Some(true)));
        assert_eq!(m.dirty_reasons.len(), 1);
    }

    #[test]
    fn a_scrub_empties_every_personal_column_and_keeps_the_rest() {
        let mut applied = applied(PaymentMethod::DirectDebit, true);
        if let DomainEvent::MembershipApplied(e) = &mut applied {
            e.bank = Some(ev::BankData {
                iban: "DE02120300000000202051".into(),
                bic: "BYLADEM1001".into(),
                payment_reference_code: String::new(),
            });
        }
        let m = fold(&[
            on(MembershipCategory::Application, applied),
            exported(),
            scrubbed(),
        ]);
        let c = columns(&m);
        let personal = "salutation title first_name last_name company_name street postcode \
                        city country email phone date_of_birth iban bic";
        for personal in personal.split_whitespace() {
            assert_eq!(c[personal], Value::text(""), "{personal}");
        }
        assert_eq!(c["applicant_kind"], Value::text("person"));
        assert_eq!(c["fee_cents"], Value::int(1000));
        assert_eq!(c["keyword"], Value::text("banner"));
        assert_eq!(c["scrub_rule"], Value::text("exported"));
    }

    #[test]
    fn an_event_in_the_wrong_stream_or_before_the_application_is_refused_and_changes_nothing() {
        let mut m = fold(&[confirmed_application()]);
        let before = m.rows.clone();
        let (_, cancel) = cancelled();
        let wrong = m.apply(MembershipCategory::Moderation, MID as i64, &cancel, at(9));
        assert!(wrong.unwrap_err().contains("membership_cancellation"));
        let (_, raised) = fee_too_high();
        let unknown = m.apply(MembershipCategory::Moderation, 99, &raised, at(9));
        assert_eq!(unknown.unwrap_err(), "unknown membership 99");
        let (_, again) = confirmed_application();
        let twice = m.apply(MembershipCategory::Application, MID as i64, &again, at(9));
        assert!(twice.unwrap_err().contains("already applied"));
        assert_eq!(m.rows, before);
    }
}
