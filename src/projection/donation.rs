//! Row logic of the donation read model: the `donation` and `payment` rows and how each event
//! of the donation, payment, moderation, deletion, export and scrub streams changes them.
//!
//! Every function here is pure: it checks that an event applies before changing anything, so
//! a rejected event leaves the rows exactly as the previous event left them.

use chrono::{DateTime, Utc};

use super::rows::Value;
use crate::proto::events as ev;

/// Why an event cannot be applied to the rows.
pub(crate) type Rejection = String;

/// Converts a protobuf timestamp to UTC, truncated to microseconds (what both databases keep).
pub(crate) fn timestamp(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let ts = ts?;
    let micros = ts.nanos.max(0) / 1000 * 1000;
    DateTime::from_timestamp(ts.seconds, micros as u32)
}

/// Converts a u64 id to the signed column type, refusing ids above `i64::MAX`.
pub(crate) fn id(v: u64, what: &str) -> Result<i64, Rejection> {
    i64::try_from(v).map_err(|_| format!("{what} {v} does not fit a BIGINT"))
}

/// The legacy three-letter payment code stored in `donation.payment_method`/`payment.method`.
pub(crate) fn method_code(method: i32) -> Result<&'static str, Rejection> {
    match ev::PaymentMethod::try_from(method) {
        Ok(ev::PaymentMethod::DirectDebit) => Ok("BEZ"),
        Ok(ev::PaymentMethod::BankTransfer) => Ok("UEB"),
        Ok(ev::PaymentMethod::CreditCard) => Ok("MCP"),
        Ok(ev::PaymentMethod::Paypal) => Ok("PPL"),
        Ok(ev::PaymentMethod::Sofort) => Ok("SUB"),
        _ => Err(format!("unknown payment method {method}")),
    }
}

fn donor_kind(kind: i32) -> Result<&'static str, Rejection> {
    match ev::DonorKind::try_from(kind) {
        Ok(ev::DonorKind::Person) => Ok("person"),
        Ok(ev::DonorKind::Company) => Ok("company"),
        Ok(ev::DonorKind::EmailOnly) => Ok("email_only"),
        Ok(ev::DonorKind::Anonymous) => Ok("anonymous"),
        _ => Err(format!("unknown donor kind {kind}")),
    }
}

/// The stable name of a moderation identifier, as in the legacy `donation_moderation_reason`.
pub(crate) fn moderation_identifier(identifier: i32) -> Result<&'static str, Rejection> {
    use ev::ModerationIdentifier as M;
    match M::try_from(identifier) {
        Ok(M::AmountTooHigh) => Ok("AMOUNT_TOO_HIGH"),
        Ok(M::AddressContentViolation) => Ok("ADDRESS_CONTENT_VIOLATION"),
        Ok(M::CommentContentViolation) => Ok("COMMENT_CONTENT_VIOLATION"),
        Ok(M::ManuallyFlaggedByAdmin) => Ok("MANUALLY_FLAGGED_BY_ADMIN"),
        Ok(M::EmailBlocked) => Ok("EMAIL_BLOCKED"),
        _ => Err(format!("unknown moderation identifier {identifier}")),
    }
}

/// The stable name of a scrub rule.
pub(crate) fn scrub_rule(rule: i32) -> Result<&'static str, Rejection> {
    use ev::ScrubRule as R;
    match R::try_from(rule) {
        Ok(R::Exported) => Ok("exported"),
        Ok(R::CancelledOrDeleted) => Ok("cancelled_or_deleted"),
        Ok(R::Abandoned) => Ok("abandoned"),
        Ok(R::StaleModeration) => Ok("stale_moderation"),
        _ => Err(format!("unknown scrub rule {rule}")),
    }
}

/// One row of `donation`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct DonationRow {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub amount_cents: i64,
    pub currency: String,
    pub interval_months: i64,
    pub payment_id: i64,
    pub payment_method: String,
    pub payment_state: String,
    pub payment_booked_at: Option<DateTime<Utc>>,
    pub deletion_state: String,
    pub moderation_state: String,
    pub is_exported: bool,
    pub exported_at: Option<DateTime<Utc>>,
    pub export_batch: String,
    pub is_scrubbed: bool,
    pub scrubbed_at: Option<DateTime<Utc>>,
    pub scrub_rule: String,
    pub donor_kind: String,
    pub salutation: String,
    pub title: String,
    pub first_name: String,
    pub last_name: String,
    pub company_name: String,
    pub street: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
    pub email: String,
    pub wants_newsletter: bool,
    pub wants_receipt: bool,
    pub comment: String,
    pub comment_is_public: bool,
    pub comment_display_name: String,
    pub tracking_id: Option<i64>,
    pub campaign: String,
    pub keyword: String,
    pub impression_count: i64,
    pub banner_impression_count: i64,
    pub contribution_tracking_id: i64,
    pub parent_donation_id: i64,
}

/// Reads column `i` of a loaded row.
fn at(values: &[Value], i: usize) -> &Value {
    &values[i]
}
fn text(values: &[Value], i: usize) -> String {
    at(values, i).as_text().unwrap_or_default().to_owned()
}
fn int(values: &[Value], i: usize) -> i64 {
    at(values, i).as_i64().unwrap_or_default()
}
fn flag(values: &[Value], i: usize) -> bool {
    at(values, i).as_bool().unwrap_or_default()
}
fn time(values: &[Value], i: usize) -> Option<DateTime<Utc>> {
    at(values, i).as_time()
}

impl DonationRow {
    /// A new row in its initial states.
    fn new(id: i64, created_at: DateTime<Utc>) -> Self {
        Self {
            id,
            created_at,
            updated_at: created_at,
            payment_state: "pending".into(),
            deletion_state: "active".into(),
            moderation_state: "none".into(),
            ..Self::default()
        }
    }

    /// The row as column values, in the order of `DONATION_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        let t = |s: &String| Value::Text(Some(s.clone()));
        vec![
            Value::int(self.id),
            Value::Time(Some(self.created_at)),
            Value::Time(Some(self.updated_at)),
            Value::int(self.amount_cents),
            t(&self.currency),
            Value::int(self.interval_months),
            Value::int(self.payment_id),
            t(&self.payment_method),
            t(&self.payment_state),
            Value::Time(self.payment_booked_at),
            t(&self.deletion_state),
            t(&self.moderation_state),
            Value::Bool(Some(self.is_exported)),
            Value::Time(self.exported_at),
            t(&self.export_batch),
            Value::Bool(Some(self.is_scrubbed)),
            Value::Time(self.scrubbed_at),
            t(&self.scrub_rule),
            t(&self.donor_kind),
            t(&self.salutation),
            t(&self.title),
            t(&self.first_name),
            t(&self.last_name),
            t(&self.company_name),
            t(&self.street),
            t(&self.postcode),
            t(&self.city),
            t(&self.country),
            t(&self.email),
            Value::Bool(Some(self.wants_newsletter)),
            Value::Bool(Some(self.wants_receipt)),
            t(&self.comment),
            Value::Bool(Some(self.comment_is_public)),
            t(&self.comment_display_name),
            Value::I64(self.tracking_id),
            t(&self.campaign),
            t(&self.keyword),
            Value::int(self.impression_count),
            Value::int(self.banner_impression_count),
            Value::int(self.contribution_tracking_id),
            Value::int(self.parent_donation_id),
        ]
    }

    /// A loaded row, from values in the order of `DONATION_COLUMNS`.
    pub(crate) fn from_values(v: &[Value]) -> Self {
        Self {
            id: int(v, 0),
            created_at: time(v, 1).unwrap_or_default(),
            updated_at: time(v, 2).unwrap_or_default(),
            amount_cents: int(v, 3),
            currency: text(v, 4),
            interval_months: int(v, 5),
            payment_id: int(v, 6),
            payment_method: text(v, 7),
            payment_state: text(v, 8),
            payment_booked_at: time(v, 9),
            deletion_state: text(v, 10),
            moderation_state: text(v, 11),
            is_exported: flag(v, 12),
            exported_at: time(v, 13),
            export_batch: text(v, 14),
            is_scrubbed: flag(v, 15),
            scrubbed_at: time(v, 16),
            scrub_rule: text(v, 17),
            donor_kind: text(v, 18),
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
            wants_newsletter: flag(v, 29),
            wants_receipt: flag(v, 30),
            comment: text(v, 31),
            comment_is_public: flag(v, 32),
            comment_display_name: text(v, 33),
            tracking_id: at(v, 34).as_i64(),
            campaign: text(v, 35),
            keyword: text(v, 36),
            impression_count: int(v, 37),
            banner_impression_count: int(v, 38),
            contribution_tracking_id: int(v, 39),
            parent_donation_id: int(v, 40),
        }
    }

    /// Builds the row of `DonationCreated`.
    pub(crate) fn created(
        id: i64,
        e: &ev::DonationCreated,
        fallback_time: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let created_at = timestamp(e.created_at.as_ref()).unwrap_or(fallback_time);
        let mut row = Self::new(id, created_at);
        let amount = e.amount.clone().unwrap_or_default();
        row.amount_cents = amount.cents;
        row.currency = amount.currency;
        row.interval_months = i64::from(e.interval_months);
        row.payment_id = self::id(e.payment_id, "payment id")?;
        row.payment_method = method_code(e.payment_method)?.to_owned();
        row.set_donor_public(e.donor.as_ref())?;
        row.set_personal(e.personal.as_ref());
        row.set_tracking(e.tracking.as_ref())?;
        if let Some(comment) = &e.comment {
            row.set_comment(comment);
        }
        Ok(row)
    }

    /// Builds the row of `FollowUpDonationCreated`: a recurring donor (salutation and kind
    /// only), the parent's tracking, no comment.
    pub(crate) fn follow_up(
        id: i64,
        e: &ev::FollowUpDonationCreated,
        fallback_time: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let created_at = timestamp(e.created_at.as_ref()).unwrap_or(fallback_time);
        let mut row = Self::new(id, created_at);
        let amount = e.amount.clone().unwrap_or_default();
        row.amount_cents = amount.cents;
        row.currency = amount.currency;
        row.interval_months = i64::from(e.interval_months);
        row.payment_id = self::id(e.payment_id, "payment id")?;
        row.payment_method = method_code(e.payment_method)?.to_owned();
        row.parent_donation_id = self::id(e.parent_donation_id, "parent donation id")?;
        row.set_donor_public(e.donor.as_ref())?;
        row.set_tracking(e.tracking.as_ref())?;
        Ok(row)
    }

    fn set_donor_public(&mut self, donor: Option<&ev::DonorPublic>) -> Result<(), Rejection> {
        let donor = donor.cloned().unwrap_or_default();
        self.donor_kind = donor_kind(donor.kind)?.to_owned();
        self.salutation = donor.salutation;
        self.wants_newsletter = donor.wants_newsletter;
        self.wants_receipt = donor.wants_receipt;
        Ok(())
    }

    /// Personal columns from the clear personal unit; `None` (not decrypted, or scrubbed)
    /// blanks them.
    fn set_personal(&mut self, personal: Option<&ev::PersonalData>) {
        let p = personal.cloned().unwrap_or_default();
        self.title = p.title;
        self.first_name = p.first_name;
        self.last_name = p.last_name;
        self.company_name = p.company_name;
        self.street = p.street;
        self.postcode = p.postcode;
        self.city = p.city;
        self.country = p.country;
        self.email = p.email;
    }

    fn set_tracking(&mut self, tracking: Option<&ev::Tracking>) -> Result<(), Rejection> {
        let t = tracking.cloned().unwrap_or_default();
        self.campaign = t.campaign;
        self.keyword = t.keyword;
        self.impression_count = i64::from(t.impression_count);
        self.banner_impression_count = i64::from(t.banner_impression_count);
        self.contribution_tracking_id = id(t.contribution_tracking_id, "contribution tracking id")?;
        Ok(())
    }

    fn set_comment(&mut self, c: &ev::Comment) {
        self.comment_is_public = c.is_public;
        self.comment_display_name = c.display_name.clone();
        self.comment = if c.is_public {
            c.public_text.clone()
        } else {
            c.private_text
                .as_ref()
                .map(|t| t.text.clone())
                .unwrap_or_default()
        };
    }

    /// The lowercased (campaign, keyword) pair of `donation_tracking`, or `None` without a
    /// campaign and keyword.
    pub(crate) fn tracking_key(&self) -> Option<(String, String)> {
        if self.campaign.is_empty() && self.keyword.is_empty() {
            return None;
        }
        Some((self.campaign.to_lowercase(), self.keyword.to_lowercase()))
    }

    /// Blanks every personal column; keeps salutation, donor kind, opt-ins, a public comment,
    /// tracking, amounts, dates and states.
    fn blank_personal(&mut self) {
        self.set_personal(None);
        if !self.comment_is_public {
            self.comment.clear();
        }
    }

    /// Applies an event of the donation's own streams (donation, moderation, deletion,
    /// export, scrub). Creation events are handled by the caller.
    pub(crate) fn apply(
        &mut self,
        event: &crate::domain::DomainEvent,
        occurred_at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        use crate::domain::DomainEvent as E;
        match event {
            E::DonorUpdated(e) => {
                self.set_donor_public(e.donor.as_ref())?;
                self.set_personal(e.personal.as_ref());
            }
            E::CommentAdded(e) => self.set_comment(&e.comment.clone().unwrap_or_default()),
            E::CommentPublished(e) => {
                self.comment_is_public = true;
                self.comment = e.public_text.clone();
                self.comment_display_name = e.display_name.clone();
            }
            E::CommentRetracted(_) => self.comment_is_public = false,
            E::ModerationReasonsRaised(e) => {
                if !e.reasons.is_empty() {
                    self.moderation_state = "open".into();
                }
            }
            E::ManuallyFlagged(_) => self.moderation_state = "open".into(),
            E::ModerationApproved(e) => {
                self.moderation_state = "approved".into();
                if e.as_anonymous {
                    // approveAsAnonymous: the donor becomes anonymous, the comment goes.
                    self.donor_kind = "anonymous".into();
                    self.salutation.clear();
                    self.set_personal(None);
                    self.comment.clear();
                    self.comment_is_public = false;
                    self.comment_display_name.clear();
                }
            }
            E::DonationCancelled(_) => self.deletion_state = "cancelled_by_donor".into(),
            E::DonationDeleted(_) => self.deletion_state = "deleted_by_admin".into(),
            E::DonationRestored(_) => self.deletion_state = "active".into(),
            E::DonationExported(e) => {
                self.is_exported = true;
                self.exported_at = Some(timestamp(e.exported_at.as_ref()).unwrap_or(occurred_at));
                self.export_batch = e.batch_id.clone();
            }
            E::PersonalDataScrubbed(e) => {
                let rule = scrub_rule(e.rule)?;
                self.is_scrubbed = true;
                self.scrubbed_at = Some(timestamp(e.scrubbed_at.as_ref()).unwrap_or(occurred_at));
                self.scrub_rule = rule.to_owned();
                self.blank_personal();
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
        self.payment_state = p.state.clone();
        self.payment_booked_at = p.valuation_date;
    }
}

/// One row of `payment`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct PaymentRow {
    pub id: i64,
    pub donation_id: i64,
    pub method: String,
    pub amount_cents: i64,
    pub currency: String,
    pub interval_months: i64,
    pub state: String,
    pub state_before_cancellation: String,
    pub valuation_date: Option<DateTime<Utc>>,
    pub parent_payment_id: i64,
    pub refunded_cents: i64,
    pub charged_back_cents: i64,
    pub iban: String,
    pub bic: String,
    pub payment_reference_code: String,
    pub transaction_id: String,
    pub payer_id: String,
    pub subscription_id: String,
    pub payer_status: String,
    pub provider_payment_status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentRow {
    /// The row as column values, in the order of `PAYMENT_COLUMNS`.
    pub(crate) fn to_values(&self) -> Vec<Value> {
        let t = |s: &String| Value::Text(Some(s.clone()));
        vec![
            Value::int(self.id),
            Value::int(self.donation_id),
            t(&self.method),
            Value::int(self.amount_cents),
            t(&self.currency),
            Value::int(self.interval_months),
            t(&self.state),
            t(&self.state_before_cancellation),
            Value::Time(self.valuation_date),
            Value::int(self.parent_payment_id),
            Value::int(self.refunded_cents),
            Value::int(self.charged_back_cents),
            t(&self.iban),
            t(&self.bic),
            t(&self.payment_reference_code),
            t(&self.transaction_id),
            t(&self.payer_id),
            t(&self.subscription_id),
            t(&self.payer_status),
            t(&self.provider_payment_status),
            Value::Time(Some(self.created_at)),
            Value::Time(Some(self.updated_at)),
        ]
    }

    /// A loaded row, from values in the order of `PAYMENT_COLUMNS`.
    pub(crate) fn from_values(v: &[Value]) -> Self {
        Self {
            id: int(v, 0),
            donation_id: int(v, 1),
            method: text(v, 2),
            amount_cents: int(v, 3),
            currency: text(v, 4),
            interval_months: int(v, 5),
            state: text(v, 6),
            state_before_cancellation: text(v, 7),
            valuation_date: time(v, 8),
            parent_payment_id: int(v, 9),
            refunded_cents: int(v, 10),
            charged_back_cents: int(v, 11),
            iban: text(v, 12),
            bic: text(v, 13),
            payment_reference_code: text(v, 14),
            transaction_id: text(v, 15),
            payer_id: text(v, 16),
            subscription_id: text(v, 17),
            payer_status: text(v, 18),
            provider_payment_status: text(v, 19),
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
        let amount = e.amount.clone().unwrap_or_default();
        let bank = e.bank.clone().unwrap_or_default();
        Ok(Self {
            id,
            donation_id: self::id(e.donation_id, "donation id")?,
            method: method_code(e.method)?.to_owned(),
            amount_cents: amount.cents,
            currency: amount.currency,
            interval_months: i64::from(e.interval_months),
            state: "pending".into(),
            parent_payment_id: self::id(e.parent_payment_id, "parent payment id")?,
            iban: bank.iban,
            bic: bank.bic,
            payment_reference_code: bank.payment_reference_code,
            created_at: at,
            updated_at: at,
            ..Self::default()
        })
    }

    /// Builds the booked child payment of `FollowUpPaymentBooked`.
    pub(crate) fn follow_up(
        parent: &PaymentRow,
        e: &ev::FollowUpPaymentBooked,
        at: DateTime<Utc>,
    ) -> Result<Self, Rejection> {
        let amount = e.amount.clone().unwrap_or(ev::Money {
            cents: parent.amount_cents,
            currency: parent.currency.clone(),
        });
        let mut row = Self {
            id: id(e.child_payment_id, "child payment id")?,
            donation_id: id(e.child_donation_id, "child donation id")?,
            method: parent.method.clone(),
            amount_cents: amount.cents,
            currency: amount.currency,
            interval_months: parent.interval_months,
            state: "booked".into(),
            valuation_date: Some(timestamp(e.valuation_date.as_ref()).unwrap_or(at)),
            parent_payment_id: parent.id,
            created_at: at,
            updated_at: at,
            ..Self::default()
        };
        row.set_provider(e.provider.as_ref());
        Ok(row)
    }

    /// Provider columns from the clear provider unit; `None` blanks them.
    fn set_provider(&mut self, provider: Option<&ev::ProviderData>) {
        let p = provider.cloned().unwrap_or_default();
        self.transaction_id = p.transaction_id;
        self.payer_id = p.payer_id;
        self.subscription_id = p.subscription_id;
        self.payer_status = p.payer_status;
        self.provider_payment_status = p.payment_status;
    }

    /// Applies an event of the payment's stream (other than initiation and follow-ups).
    pub(crate) fn apply(
        &mut self,
        event: &crate::domain::DomainEvent,
        at: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        use crate::domain::DomainEvent as E;
        match event {
            E::PaymentBooked(e) => {
                self.state = "booked".into();
                self.valuation_date = Some(timestamp(e.valuation_date.as_ref()).unwrap_or(at));
                self.set_provider(e.provider.as_ref());
            }
            E::PaymentFailed(_) => self.state = "failed".into(),
            E::PaymentCancelled(_) => {
                if self.state != "cancelled" {
                    self.state_before_cancellation = std::mem::take(&mut self.state);
                    self.state = "cancelled".into();
                }
            }
            E::PaymentRestored(_) => {
                if self.state == "cancelled" {
                    self.state = match std::mem::take(&mut self.state_before_cancellation) {
                        s if s.is_empty() => "pending".into(),
                        s => s,
                    };
                }
            }
            E::PaymentRefunded(e) => {
                self.state = "refunded".into();
                self.refunded_cents += e.amount.as_ref().map_or(self.amount_cents, |m| m.cents);
            }
            E::ChargebackReceived(e) => {
                self.state = "charged_back".into();
                self.charged_back_cents += e.amount.as_ref().map_or(self.amount_cents, |m| m.cents);
            }
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

    /// Blanks bank and provider data (a scrub of the payment's donation).
    pub(crate) fn blank_personal(&mut self, at: DateTime<Utc>) {
        self.iban.clear();
        self.bic.clear();
        self.payment_reference_code.clear();
        self.set_provider(None);
        self.updated_at = self.updated_at.max(at);
    }
}
