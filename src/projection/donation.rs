//! Row logic of the donation read model: the `donation` and `payment` rows and how each event
//! of the donation, payment, moderation, deletion, export and scrub streams changes them.
//!
//! One fold per stream: a row holds the domain's states of its streams (`DonationState`,
//! `PaymentState`, `ModerationStatus`, `DeletionState`, `ExportState`, `ScrubState`), an event
//! moves them with the domain's own `apply`, and the columns are mapped from them when the row
//! is written. What the row adds is only what the domain has no fold for: `created_at` and
//! `updated_at` from the events' times, the `donation_tracking` id, the provider columns
//! besides the transaction id, and the blanking of personal columns by a scrub or an approval
//! as anonymous.
//!
//! Every function here is pure: it checks that an event applies before changing anything, so
//! a rejected event leaves the rows exactly as the previous event left them. One concern (the
//! two rows of a donation, which mirror each other), hence one file; its unit tests check that
//! a row loaded back from its columns folds on like the one kept in memory.

use chrono::{DateTime, Utc};

use super::rows::{code, flag, int, text, time, unsigned, Value};
use crate::domain::deletion::DeletionState;
use crate::domain::donation::{CommentState, DonationState, DonorKind, DonorPublic};
use crate::domain::donation::{PersonalData, Tracking};
use crate::domain::export::ExportState;
use crate::domain::moderation::{ModerationIdentifier, ModerationStatus};
use crate::domain::payment::{BankData, PaymentState, PaymentStatus};
use crate::domain::scrub::{ScrubRule, ScrubState};
use crate::domain::types::opt_datetime;
use crate::domain::{Money, PaymentMethod};
use crate::proto::events as ev;

/// Why an event cannot be applied to the rows.
pub(crate) type Rejection = String;

/// Converts a protobuf timestamp to UTC, truncated to microseconds (what both databases keep).
pub(crate) fn timestamp(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    opt_datetime(ts).map(micros)
}

/// Converts a u64 id to the signed column type, refusing ids above `i64::MAX`.
pub(crate) fn id(v: u64, what: &str) -> Result<i64, Rejection> {
    i64::try_from(v).map_err(|_| format!("{what} {v} does not fit a BIGINT"))
}

/// The code of a moderation identifier, as in the legacy `donation_moderation_reason`.
pub(crate) fn moderation_identifier(identifier: i32) -> Result<&'static str, Rejection> {
    match ModerationIdentifier::try_from(identifier) {
        Ok(ModerationIdentifier::Unspecified) | Err(_) => {
            Err(format!("unknown moderation identifier {identifier}"))
        }
        Ok(known) => Ok(known.as_str()),
    }
}

/// A time as both databases keep it: truncated to microseconds.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.timestamp_subsec_nanos() / 1000 * 1000;
    DateTime::from_timestamp(t.timestamp(), nanos).unwrap_or(t)
}

/// A domain id (`u64`) in its BIGINT column; ids were checked to fit when their event was
/// applied, so this never saturates in practice.
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Money as its two columns (`0`, `''` without an amount).
fn money(m: Option<&Money>) -> (i64, String) {
    m.map_or((0, String::new()), |m| (m.cents, m.currency.clone()))
}

/// The text a comment column shows: a public comment's public text; otherwise whatever of the
/// comment is readable ([`CommentState::text`]: a retracted comment keeps its public text).
fn comment_text(c: &CommentState) -> &str {
    if c.is_public {
        &c.public_text
    } else {
        c.text().unwrap_or_default()
    }
}

/// The six export and scrub columns both `donation` and `membership_application` have, in
/// this order: `is_exported`, `exported_at`, `export_batch`, `is_scrubbed`, `scrubbed_at`,
/// `scrub_rule`.
pub(crate) fn export_and_scrub_values(export: &ExportState, scrub: &ScrubState) -> [Value; 6] {
    let t = |s: &str| Value::Text(Some(s.to_owned()));
    [
        Value::Bool(Some(export.exported)),
        Value::Time(export.exported_at.map(micros)),
        t(export.batch_id.as_deref().unwrap_or_default()),
        Value::Bool(Some(scrub.scrubbed)),
        Value::Time(scrub.scrubbed_at.map(micros)),
        t(scrub.rule.map_or("", ScrubRule::as_str)),
    ]
}

/// The export and scrub folds as far as their six columns, from `v[first]` on, tell them.
pub(crate) fn export_and_scrub_of(v: &[Value], first: usize) -> (ExportState, ScrubState) {
    let (exported, scrubbed) = (flag(v, first), flag(v, first + 3));
    let export = ExportState {
        exported,
        exported_at: time(v, first + 1),
        batch_id: exported.then(|| text(v, first + 2)),
    };
    let scrub = ScrubState {
        scrubbed,
        scrubbed_at: time(v, first + 4),
        rule: scrubbed.then(|| code(v, first + 5)),
    };
    (export, scrub)
}

/// One row of `donation`: the folds of the donation's own streams, with the payment's status
/// mirrored from its row. Every column is derived from these domain states (see
/// [`DonationRow::to_values`]); the row keeps nothing the columns cannot hold, so a row
/// loaded back from the database folds on exactly as the one a rebuild keeps in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct DonationRow {
    pub id: i64,
    /// The donation's payment (a copy of `donation.payment_id`, the key the batch loads by).
    pub payment_id: i64,
    /// The donation's time, or the time its creation occurred when the event names none (the
    /// column is NOT NULL).
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `donation-{id}`. An approval as anonymous has made its donor anonymous (see
    /// [`DonationRow::apply`]); the comment is kept as its one column holds it.
    pub donation: DonationState,
    /// `moderation-{id}`, without the open reasons (`donation_moderation_reason` has them).
    pub moderation: ModerationStatus,
    /// `deletion-{id}`.
    pub deletion: DeletionState,
    /// `export-{id}`.
    pub export: ExportState,
    /// `scrub-{id}`.
    pub scrub: ScrubState,
    /// The payment row's status and valuation date ([`DonationRow::sync_payment`]).
    pub payment_status: PaymentStatus,
    pub payment_booked_at: Option<DateTime<Utc>>,
    /// The `donation_tracking` id of the (campaign, keyword) pair, numbered by the batch.
    pub tracking_id: Option<i64>,
    /// A moderator approved it as anonymous (`ModerationState::approved_as_anonymous`,
    /// sticky): the donor columns show an anonymous donor from then on, whatever follows.
    pub approved_as_anonymous: bool,
}

impl DonationRow {
    /// A new row from the state of the creation event just applied.
    fn new(
        id: i64,
        mut donation: DonationState,
        fallback_time: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        // A payload without the donation id names the stream's (the batch checked they agree).
        donation.id = Some(id.unsigned_abs());
        if donation.payment_method.is_none() {
            return Err("unknown payment method".into());
        }
        if donation.donor.kind == DonorKind::Unspecified {
            return Err("unknown donor kind".into());
        }
        let tracking = donation.tracking.as_ref();
        self::id(
            tracking.map_or(0, |t| t.contribution_tracking_id),
            "contribution tracking id",
        )?;
        let created_at = donation.created_at.map_or(fallback_time, micros);
        let mut row = Self {
            id,
            payment_id: self::id(donation.payment_id, "payment id")?,
            created_at,
            updated_at: created_at,
            donation,
            ..Self::default()
        };
        row.keep_comment_as_column();
        Ok(row)
    }

    /// The row as column values, in the order of `DONATION_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        let t = |s: &str| Value::Text(Some(s.to_owned()));
        let d = &self.donation;
        let (cents, currency) = money(d.amount.as_ref());
        // A scrub blanks what is personal: the personal unit and a comment that is not public.
        let no_personal = PersonalData::default();
        // Approved as anonymous (`DonorDisplay::Anonymous`): no personal data, no comment.
        let anonymous = self.approved_as_anonymous;
        let personal = match &d.personal {
            Some(p) if !self.scrub.scrubbed && !anonymous => p,
            _ => &no_personal,
        };
        let (comment, comment_is_public, display_name) = match &d.comment {
            _ if anonymous => ("", false, ""),
            Some(c) if self.scrub.scrubbed && !c.is_public => ("", false, c.display_name.as_str()),
            Some(c) => (comment_text(c), c.is_public, c.display_name.as_str()),
            None => ("", false, ""),
        };
        let no_tracking = Tracking::default();
        let tracking = d.tracking.as_ref().unwrap_or(&no_tracking);
        let mut values = vec![
            Value::int(self.id),
            Value::Time(Some(self.created_at)),
            Value::Time(Some(self.updated_at)),
            Value::int(cents),
            Value::Text(Some(currency)),
            Value::int(i64::from(d.interval_months)),
            Value::int(self.payment_id),
            t(d.payment_method.map_or("", PaymentMethod::as_str)),
            t(self.payment_status.as_str()),
            Value::Time(self.payment_booked_at.map(micros)),
            t(self.deletion.as_str()),
            t(self.moderation.as_str()),
        ];
        values.extend(export_and_scrub_values(&self.export, &self.scrub));
        values.extend([
            t(if anonymous {
                DonorKind::Anonymous.as_str()
            } else {
                d.donor.kind.as_str()
            }),
            t(if anonymous { "" } else { &d.donor.salutation }),
            t(&personal.title),
            t(&personal.first_name),
            t(&personal.last_name),
            t(&personal.company_name),
            t(&personal.street),
            t(&personal.postcode),
            t(&personal.city),
            t(&personal.country),
            t(&personal.email),
            Value::Bool(Some(d.donor.wants_newsletter)),
            Value::Bool(Some(d.donor.wants_receipt)),
            t(comment),
            Value::Bool(Some(comment_is_public)),
            t(display_name),
            Value::I64(self.tracking_id),
            t(&tracking.campaign),
            t(&tracking.keyword),
            Value::int(i64::from(tracking.impression_count)),
            Value::int(i64::from(tracking.banner_impression_count)),
            Value::int(big(tracking.contribution_tracking_id)),
            Value::int(big(d.parent_donation_id.unwrap_or(0))),
            Value::Bool(Some(anonymous)),
        ]);
        values
    }

    /// A loaded row, from values in the order of `DONATION_COLUMNS`: the domain states its
    /// columns were derived from, as far as the columns tell them (what they do not tell
    /// changes no column, whatever event comes next).
    pub(crate) fn from_values(v: &[Value]) -> Self {
        let is_public = flag(v, 32);
        let comment = CommentState {
            is_public,
            display_name: text(v, 33),
            public_text: text(v, 31),
            private_text: None,
        };
        let has_comment = is_public || !comment.public_text.is_empty();
        let parent: u64 = unsigned(v, 40);
        let donation = DonationState {
            id: Some(unsigned(v, 0)),
            created_at: time(v, 1),
            amount: Some(Money {
                cents: int(v, 3),
                currency: text(v, 4),
            }),
            interval_months: unsigned(v, 5),
            payment_id: unsigned(v, 6),
            payment_method: v[7].as_text().and_then(|c| c.parse().ok()),
            donor: DonorPublic {
                kind: code(v, 18),
                salutation: text(v, 19),
                wants_newsletter: flag(v, 29),
                wants_receipt: flag(v, 30),
            },
            personal: Some(PersonalData {
                title: text(v, 20),
                first_name: text(v, 21),
                last_name: text(v, 22),
                company_name: text(v, 23),
                street: text(v, 24),
                postcode: text(v, 25),
                city: text(v, 26),
                country: text(v, 27),
                email: text(v, 28),
            }),
            comment: (has_comment || !comment.display_name.is_empty()).then_some(comment),
            tracking: Some(Tracking {
                campaign: text(v, 35),
                keyword: text(v, 36),
                impression_count: unsigned(v, 37),
                banner_impression_count: unsigned(v, 38),
                contribution_tracking_id: unsigned(v, 39),
            }),
            parent_donation_id: (parent != 0).then_some(parent),
            // Only the intake reads it (whether an update issues an address change); the row
            // knows the current donor only.
            had_postal_address: matches!(
                code::<DonorKind>(v, 18),
                DonorKind::Person | DonorKind::Company
            ),
        };
        let (export, scrub) = export_and_scrub_of(v, 12);
        Self {
            id: int(v, 0),
            payment_id: int(v, 6),
            created_at: time(v, 1).unwrap_or_default(),
            updated_at: time(v, 2).unwrap_or_default(),
            donation,
            payment_status: code(v, 8),
            payment_booked_at: time(v, 9),
            deletion: code(v, 10),
            moderation: code(v, 11),
            export,
            scrub,
            tracking_id: v[34].as_i64(),
            approved_as_anonymous: flag(v, 41),
        }
    }

    /// Builds the row of `DonationCreated`.
    pub(crate) fn created(
        id: i64,
        e: &ev::DonationCreated,
        fallback_time: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let mut donation = DonationState::default();
        donation.apply_created(e);
        Self::new(id, donation, fallback_time)
    }

    /// Builds the row of `FollowUpDonationCreated`: a recurring donor (salutation and kind
    /// only), the parent's tracking, no comment.
    pub(crate) fn follow_up(
        id: i64,
        e: &ev::FollowUpDonationCreated,
        fallback_time: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        self::id(e.parent_donation_id, "parent donation id")?;
        let mut donation = DonationState::default();
        donation.apply_follow_up(e);
        Self::new(id, donation, fallback_time)
    }

    /// The lowercased (campaign, keyword) pair of `donation_tracking`, or `None` without a
    /// campaign and keyword.
    pub(crate) fn tracking_key(&self) -> Option<(String, String)> {
        let t = self.donation.tracking.as_ref()?;
        if t.campaign.is_empty() && t.keyword.is_empty() {
            return None;
        }
        Some((t.campaign.to_lowercase(), t.keyword.to_lowercase()))
    }

    /// Keeps the comment as its one column holds it: the text shown ([`comment_text`]) in
    /// place of the public and private texts, so that a row folded on in memory and one
    /// loaded back from its columns take the next event alike.
    fn keep_comment_as_column(&mut self) {
        if let Some(c) = &mut self.donation.comment {
            if c.public_text.is_empty() || !c.is_public {
                c.public_text = comment_text(c).to_owned();
            }
            c.private_text = None;
        }
    }

    /// Applies an event of the donation's own streams (donation, moderation, deletion,
    /// export, scrub) with the domain's fold of its stream. Creation events are handled by
    /// the caller.
    pub(crate) fn apply(
        &mut self,
        event: &crate::domain::DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        use crate::domain::DomainEvent as E;
        match event {
            E::DonorUpdated(e) => {
                if let Some(d) = &e.donor {
                    if d.kind() == DonorKind::Unspecified {
                        return Err(format!("unknown donor kind {}", d.kind));
                    }
                }
                self.donation.apply(event);
            }
            E::CommentAdded(_) | E::CommentPublished(_) | E::CommentRetracted(_) => {
                self.donation.apply(event);
                self.keep_comment_as_column();
            }
            E::ModerationReasonsRaised(_) | E::ManuallyFlagged(_) => {
                self.moderation = self.moderation.after(event);
            }
            E::ModerationApproved(e) => {
                self.moderation = self.moderation.after(event);
                // approveAsAnonymous: the donor is shown anonymous from now on, whatever
                // donor or comment change follows (see `to_values`).
                self.approved_as_anonymous |= e.as_anonymous;
            }
            E::DonationCancelled(_) | E::DonationDeleted(_) | E::DonationRestored(_) => {
                self.deletion.apply(event);
            }
            E::DonationExported(_) => self.export.apply(event),
            E::PersonalDataScrubbed(e) => {
                if ScrubRule::try_from(e.rule).unwrap_or_default() == ScrubRule::Unspecified {
                    return Err(format!("unknown scrub rule {}", e.rule));
                }
                self.scrub.apply(event);
            }
            other => {
                return Err(format!(
                    "`{}` does not apply to a donation",
                    other.event_type()
                ))
            }
        }
        self.touch(occurred_at);
        Ok(())
    }

    /// Moves `updated_at` forward to `at`.
    pub(crate) fn touch(&mut self, at: DateTime<Utc>) {
        if at > self.updated_at {
            self.updated_at = at;
        }
    }

    /// Mirrors the payment's state into the donation row.
    pub(crate) fn sync_payment(&mut self, p: &PaymentRow) {
        self.payment_status = p.payment.status;
        self.payment_booked_at = p.payment.valuation_date.map(micros);
    }
}

/// One row of `payment`: the payment stream's fold, with the provider data the fold does not
/// keep beside it. Every column is derived from these (see [`PaymentRow::to_values`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct PaymentRow {
    pub id: i64,
    /// The payment's donation (a copy of `payment.donation_id`, the key the batch uses).
    pub donation_id: i64,
    /// `payment-{id}` (for a follow-up child: its state as its parent's booking made it).
    pub payment: PaymentState,
    /// The rest of the last booking's provider unit: the fold keeps its transaction id, the
    /// row these beside it, replaced by each booking as the fold replaces the transaction id.
    pub provider: ProviderExtras,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Provider columns besides the transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ProviderExtras {
    pub payer_id: String,
    pub subscription_id: String,
    pub payer_status: String,
    pub payment_status: String,
}

impl ProviderExtras {
    /// Of a clear provider unit; `None` (not decrypted, or scrubbed) blanks them.
    fn of(provider: Option<&ev::ProviderData>) -> Self {
        provider.map_or_else(Self::default, |p| Self {
            payer_id: p.payer_id.clone(),
            subscription_id: p.subscription_id.clone(),
            payer_status: p.payer_status.clone(),
            payment_status: p.payment_status.clone(),
        })
    }
}

impl PaymentRow {
    /// The row as column values, in the order of `PAYMENT_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        let t = |s: &str| Value::Text(Some(s.to_owned()));
        let p = &self.payment;
        let (cents, currency) = money(p.amount.as_ref());
        let no_bank = BankData::default();
        let bank = p.bank.as_ref().unwrap_or(&no_bank);
        vec![
            Value::int(self.id),
            Value::int(self.donation_id),
            t(p.method.map_or("", PaymentMethod::as_str)),
            Value::int(cents),
            Value::Text(Some(currency)),
            Value::int(i64::from(p.interval_months)),
            t(p.status.as_str()),
            t(p.status_before_cancellation
                .map_or("", PaymentStatus::as_str)),
            Value::Time(p.valuation_date.map(micros)),
            Value::int(big(p.parent_payment_id.unwrap_or(0))),
            Value::int(p.refunded_cents),
            Value::int(p.charged_back_cents),
            t(&bank.iban),
            t(&bank.bic),
            t(&bank.payment_reference_code),
            t(p.transaction_id.as_deref().unwrap_or_default()),
            t(&self.provider.payer_id),
            t(&self.provider.subscription_id),
            t(&self.provider.payer_status),
            t(&self.provider.payment_status),
            Value::Time(Some(self.created_at)),
            Value::Time(Some(self.updated_at)),
        ]
    }

    /// A loaded row, from values in the order of `PAYMENT_COLUMNS`: the payment's fold as far
    /// as the columns tell it (its follow-ups are not among them, and change no column).
    pub(crate) fn from_values(v: &[Value]) -> Self {
        let parent: u64 = unsigned(v, 9);
        let before = text(v, 7);
        let transaction_id = text(v, 15);
        let payment = PaymentState {
            initiated: true,
            payment_id: unsigned(v, 0),
            donation_id: unsigned(v, 1),
            method: v[2].as_text().and_then(|c| c.parse().ok()),
            amount: Some(Money {
                cents: int(v, 3),
                currency: text(v, 4),
            }),
            interval_months: unsigned(v, 5),
            parent_payment_id: (parent != 0).then_some(parent),
            status: code(v, 6),
            status_before_cancellation: before.parse().ok(),
            valuation_date: time(v, 8),
            transaction_id: (!transaction_id.is_empty()).then_some(transaction_id),
            bank: Some(BankData {
                iban: text(v, 12),
                bic: text(v, 13),
                payment_reference_code: text(v, 14),
            }),
            follow_ups: Vec::new(),
            refunded_cents: int(v, 10),
            charged_back_cents: int(v, 11),
        };
        Self {
            id: int(v, 0),
            donation_id: int(v, 1),
            payment,
            provider: ProviderExtras {
                payer_id: text(v, 16),
                subscription_id: text(v, 17),
                payer_status: text(v, 18),
                payment_status: text(v, 19),
            },
            created_at: time(v, 20).unwrap_or_default(),
            updated_at: time(v, 21).unwrap_or_default(),
        }
    }

    /// Builds the row of `PaymentInitiated`: every payment starts pending.
    pub(crate) fn initiated(
        id: i64,
        e: &ev::PaymentInitiated,
        at: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let donation_id = self::id(e.donation_id, "donation id")?;
        self::id(e.parent_payment_id, "parent payment id")?;
        let mut payment = PaymentState::default();
        payment.apply_initiated(e);
        // A payload without the payment id names the stream's (the batch checked they agree).
        payment.payment_id = id.unsigned_abs();
        if payment.method.is_none() {
            return Err(format!("unknown payment method {}", e.method));
        }
        Ok(Self {
            id,
            donation_id,
            payment,
            provider: ProviderExtras::default(),
            created_at: at,
            updated_at: at,
        })
    }

    /// Builds the booked child payment of `FollowUpPaymentBooked`.
    pub(crate) fn follow_up(
        parent: &PaymentRow,
        e: &ev::FollowUpPaymentBooked,
        at: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        Ok(Self {
            id: id(e.child_payment_id, "child payment id")?,
            donation_id: id(e.child_donation_id, "child donation id")?,
            payment: parent.payment.follow_up_child(e),
            provider: ProviderExtras::of(e.provider.as_ref()),
            created_at: at,
            updated_at: at,
        })
    }

    /// Applies an event of the payment's stream (other than initiation and follow-ups) with
    /// the domain's payment fold.
    pub(crate) fn apply(
        &mut self,
        event: &crate::domain::DomainEvent,
        at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        use crate::domain::DomainEvent as E;
        match event {
            E::PaymentBooked(e) => {
                self.payment.apply(event);
                self.provider = ProviderExtras::of(e.provider.as_ref());
            }
            E::PaymentFailed(_)
            | E::PaymentCancelled(_)
            | E::PaymentRestored(_)
            | E::PaymentRefunded(_)
            | E::ChargebackReceived(_) => self.payment.apply(event),
            other => {
                return Err(format!(
                    "`{}` does not apply to a payment",
                    other.event_type()
                ))
            }
        }
        self.updated_at = self.updated_at.max(at);
        Ok(())
    }

    /// Blanks bank and provider data (a scrub of the payment's donation: a replay after it
    /// can read neither, their key is gone).
    pub(crate) fn blank_personal(&mut self, at: DateTime<Utc>) {
        self.payment.bank = None;
        self.payment.transaction_id = None;
        self.provider = ProviderExtras::default();
        self.updated_at = self.updated_at.max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{fixtures, DomainEvent};
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap()
    }

    /// The fixture donation, dated with nanoseconds and with a private comment.
    fn created() -> ev::DonationCreated {
        let DomainEvent::DonationCreated(e) =
            fixtures::created(PaymentMethod::DirectDebit, DonorKind::Person, 1)
        else {
            unreachable!("the fixture creates a donation")
        };
        ev::DonationCreated {
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 987_654_321,
            }),
            comment: Some(ev::Comment {
                private_text: Some(ev::CommentText { text: "hi".into() }),
                ..Default::default()
            }),
            ..e
        }
    }

    fn comment(is_public: bool, public: &str, private: Option<&str>) -> DomainEvent {
        ev::CommentAdded {
            comment: Some(ev::Comment {
                is_public,
                display_name: "D".into(),
                public_text: public.into(),
                private_text: private.map(|t| ev::CommentText { text: t.into() }),
                private_text_sealed: None,
            }),
        }
        .into()
    }

    fn donation_event(op: u8) -> DomainEvent {
        let ts = |s| {
            Some(prost_types::Timestamp {
                seconds: s,
                nanos: 5,
            })
        };
        match op {
            0 => ev::DonorUpdated {
                donor: Some(ev::DonorPublic {
                    kind: DonorKind::Company as i32,
                    ..Default::default()
                }),
                personal: Some(PersonalData {
                    company_name: "ACME".into(),
                    ..Default::default()
                }),
                personal_sealed: None,
            }
            .into(),
            1 => comment(false, "", Some("secret")),
            2 => comment(true, "public", Some("secret")),
            3 => comment(true, "", Some("secret")),
            4 => ev::CommentPublished {
                public_text: "shown".into(),
                display_name: "E".into(),
            }
            .into(),
            5 => ev::CommentPublished::default().into(),
            6 => ev::CommentRetracted::default().into(),
            7 => ev::ManuallyFlagged::default().into(),
            8 => ev::ModerationApproved { as_anonymous: true }.into(),
            9 => ev::ModerationApproved::default().into(),
            10 => ev::DonationCancelled::default().into(),
            11 => ev::DonationRestored::default().into(),
            12 => ev::DonationExported {
                batch_id: "b".into(),
                exported_at: ts(1_700_000_100),
            }
            .into(),
            13 => ev::DonationExported::default().into(),
            14 => ev::PersonalDataScrubbed {
                rule: ScrubRule::Exported as i32,
                scrubbed_at: ts(1_700_000_200),
            }
            .into(),
            _ => ev::PersonalDataScrubbed {
                rule: ScrubRule::Abandoned as i32,
                scrubbed_at: None,
            }
            .into(),
        }
    }

    fn payment_event(op: u8) -> Option<DomainEvent> {
        let money = |c| Some(Money::eur(c).to_proto());
        Some(match op {
            0 => ev::PaymentBooked {
                valuation_date: Some(prost_types::Timestamp {
                    seconds: 1_700_000_300,
                    nanos: 999,
                }),
                provider: Some(ev::ProviderData {
                    transaction_id: "T".into(),
                    payer_id: "P".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .into(),
            1 => ev::PaymentBooked::default().into(),
            2 => ev::PaymentFailed::default().into(),
            3 => ev::PaymentCancelled::default().into(),
            4 => ev::PaymentRestored::default().into(),
            5 => ev::PaymentRefunded {
                amount: money(100),
                reason: String::new(),
            }
            .into(),
            6 => ev::PaymentRefunded::default().into(),
            7 => ev::ChargebackReceived {
                amount: money(300),
                reason: String::new(),
            }
            .into(),
            8 => ev::ChargebackReceived::default().into(),
            _ => return None,
        })
    }

    proptest! {
        /// What the columns do not keep changes no column, whatever comes next: a row folded
        /// on in memory (a rebuild's cache) and one loaded back from its columns after every
        /// event (a live projector) stay equal column for column.
        #[test]
        fn a_donation_row_loaded_back_folds_on_like_the_one_in_memory(
            ops in prop::collection::vec(0u8..16, 0..12),
        ) {
            let mut kept = DonationRow::created(1, &created(), t0()).unwrap();
            let mut loaded = DonationRow::from_values(&kept.to_values());
            prop_assert_eq!(loaded.to_values(), kept.to_values());
            for op in ops {
                let e = donation_event(op);
                kept.apply(&e, t0()).unwrap();
                loaded.apply(&e, t0()).unwrap();
                prop_assert_eq!(loaded.to_values(), kept.to_values(), "after {:?}", e);
                loaded = DonationRow::from_values(&loaded.to_values());
            }
        }

        /// The same for payment rows (op 9: a scrub of the payment's donation).
        #[test]
        fn a_payment_row_loaded_back_folds_on_like_the_one_in_memory(
            ops in prop::collection::vec(0u8..10, 0..12),
        ) {
            let DomainEvent::PaymentInitiated(initiated) =
                fixtures::initiated(PaymentMethod::PayPal, 1)
            else {
                unreachable!("the fixture initiates a payment")
            };
            let initiated = ev::PaymentInitiated {
                bank: Some(BankData {
                    iban: "DE02".into(),
                    ..Default::default()
                }),
                ..initiated
            };
            let mut kept = PaymentRow::initiated(2, &initiated, t0()).unwrap();
            let mut loaded = PaymentRow::from_values(&kept.to_values());
            for op in ops {
                match payment_event(op) {
                    Some(e) => {
                        kept.apply(&e, t0()).unwrap();
                        loaded.apply(&e, t0()).unwrap();
                    }
                    None => {
                        kept.blank_personal(t0());
                        loaded.blank_personal(t0());
                    }
                }
                prop_assert_eq!(loaded.to_values(), kept.to_values());
                loaded = PaymentRow::from_values(&loaded.to_values());
            }
        }
    }

    #[test]
    fn columns_hold_the_domain_folds_codes_and_times_in_microseconds() {
        let mut row = DonationRow::created(1, &created(), t0()).unwrap();
        let v = row.to_values();
        assert_eq!(v[1].render(), "2023-11-14T22:13:20.987654Z");
        assert_eq!(v[7].as_text(), Some("BEZ"));
        assert_eq!(v[18].as_text(), Some("person"));
        assert_eq!(v[31].as_text(), Some("hi"));
        row.apply(&donation_event(14), t0()).unwrap();
        let v = row.to_values();
        assert_eq!(v[17].as_text(), Some("exported"));
        assert_eq!(v[22].as_text(), Some(""), "last name blanked by the scrub");
        assert_eq!(
            v[31].as_text(),
            Some(""),
            "private comment blanked by the scrub"
        );
        // The first scrub counts.
        row.apply(&donation_event(15), t0()).unwrap();
        assert_eq!(row.to_values()[17].as_text(), Some("exported"));
    }

    #[test]
    fn an_event_of_another_kind_or_with_an_unknown_code_is_rejected_unchanged() {
        let mut row = DonationRow::created(1, &created(), t0()).unwrap();
        let before = row.clone();
        let unknown_rule = ev::PersonalDataScrubbed {
            rule: 99,
            scrubbed_at: None,
        };
        assert!(row.apply(&unknown_rule.into(), t0()).is_err());
        assert!(row
            .apply(&ev::PaymentFailed::default().into(), t0())
            .is_err());
        assert_eq!(row, before);
        let unknown_method = ev::DonationCreated {
            payment_method: 42,
            ..created()
        };
        assert!(DonationRow::created(1, &unknown_method, t0()).is_err());
    }
}
