//! The field rules of the ledger's requests: every field error at once, each naming the
//! field by its path in the request message (`payment.amount_cents`, `donor.city`) and the
//! rule it breaks. What a text field may hold is its read-model column's rule
//! ([`admission::text_misfit`] with [`admission::holds`]): one set of text rules for requests
//! and events.
//!
//! Here: the collector, the shared rules and the small requests' checks; `donation.rs` the
//! rules of a new donation and a donor; `formats.rs` the syntax of IBAN, BIC and email.

use chrono::{DateTime, Utc};

use crate::domain::admission::{self, holds, Holds};
use crate::domain::commands::NewComment;
use crate::domain::types::{to_datetime, Money};
use crate::proto::events as ev;

mod address_change;
mod donation;
mod formats;
mod membership;
mod subscription;

pub use address_change::{
    address_change_input, validate_change_address, validate_token, DEFAULT_COUNTRY,
};
pub use donation::{donor_fits_payment, validate_donor, validate_new_donation};
pub use formats::{bic_is_valid, email_is_valid, iban_is_valid};
pub use membership::validate_new_membership;
pub use subscription::{validate_confirmation_code, validate_subscribe, CONFIRMATION_CODE_CHARS};

/// Smallest donation, in cents (1 EUR).
pub const MIN_AMOUNT_CENTS: i64 = 100;
/// Donations must be below this, in cents (100,000 EUR).
pub const MAX_AMOUNT_CENTS_EXCLUSIVE: i64 = 10_000_000;
/// Allowed intervals in months.
pub const INTERVALS: [u32; 5] = [0, 1, 3, 6, 12];
/// The currency of an amount given without one.
pub const DEFAULT_CURRENCY: &str = "EUR";

/// One refused field: its path in the request and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// The field's path in the request message, e.g. `payment.iban`.
    pub field: String,
    /// The rule, in words.
    pub rule: String,
}

impl FieldError {
    /// The error of `field` breaking `rule`.
    pub fn new(field: &str, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// Collects the field errors of one request, in the order the checks run.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` breaks `rule`.
    pub fn push(&mut self, field: &str, rule: impl Into<String>) {
        self.0.push(FieldError::new(field, rule));
    }

    /// Checks a text field against what its column holds (length and character set).
    pub fn text(&mut self, field: &str, value: &str, holds: Holds) {
        if let Some(rule) = admission::text_misfit(value, holds) {
            self.push(field, rule);
        }
    }

    /// Checks a required text field: not blank, and what its column holds.
    pub fn required_text(&mut self, field: &str, value: &str, holds: Holds) {
        if value.trim().is_empty() {
            self.push(field, "is required");
        }
        self.text(field, value, holds);
    }

    /// Checks an id: positive and within a BIGINT.
    pub fn id(&mut self, field: &str, id: u64) {
        if id == 0 || i64::try_from(id).is_err() {
            self.push(field, "is required: a positive id");
        }
    }

    /// Adds errors found elsewhere (the admission rule's own checks).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.0.extend(errors);
    }

    /// How many errors so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// The currency, the default when empty.
pub fn currency_or_default(currency: &str) -> &str {
    if currency.is_empty() {
        DEFAULT_CURRENCY
    } else {
        currency
    }
}

const CURRENCY_RULE: &str = "must be an ISO 4217 code of 3 uppercase letters";
const MAX_AMOUNT_RULE: &str = "must be below 10,000,000 cents (100,000 EUR)";

fn is_currency_code(currency: &str) -> bool {
    currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())
}

/// An amount a provider reports (a booking, a refund, a charge-back), given as cents and
/// currency: 0 cents means "not given", the currency defaults to EUR.
pub fn optional_money(cents: i64, currency: &str) -> Result<Option<Money>, FieldError> {
    if cents < 0 {
        return Err(FieldError::new("amount_cents", "must not be negative"));
    }
    if cents >= MAX_AMOUNT_CENTS_EXCLUSIVE {
        return Err(FieldError::new("amount_cents", MAX_AMOUNT_RULE));
    }
    if !(currency.is_empty() || is_currency_code(currency)) {
        return Err(FieldError::new("currency", CURRENCY_RULE));
    }
    Ok((cents > 0).then(|| Money {
        cents,
        currency: currency_or_default(currency).to_owned(),
    }))
}

/// A time a provider reports (a valuation date): `None` when not given; refused when a time
/// column could not hold it.
pub fn optional_time(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(ts) = ts else { return Ok(None) };
    match admission::time_misfit(ts) {
        Some(rule) => Err(FieldError::new(field, rule)),
        None => Ok(to_datetime(ts)),
    }
}

/// Validates the comment of `AddComment`.
pub fn validate_comment(c: &NewComment) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    errors.required_text("comment.text", &c.text, const { holds("donation.comment") });
    errors.text(
        "comment.display_name",
        &c.display_name,
        const { holds("donation.comment_display_name") },
    );
    errors.into_vec()
}

/// Longest free-text reason or note.
pub const MAX_REASON_CHARS: usize = 1000;
/// Most donations in one `MarkExported` batch.
pub const MAX_EXPORT_BATCH: usize = 1000;

/// Validates an id the request names (`donation_id`, `payment_id`, …).
pub fn validate_id(field: &str, id: u64) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    errors.id(field, id);
    errors.into_vec()
}

/// Validates the free-text `reason` (or note) of an action: several lines of at most
/// [`MAX_REASON_CHARS`] characters.
pub fn validate_reason(reason: &str) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    errors.text("reason", reason, Holds::Lines(MAX_REASON_CHARS));
    errors.into_vec()
}

/// Validates a provider's booking: a transaction id, and provider fields their columns hold.
pub fn validate_booking(transaction_id: &str, provider: &ev::ProviderData) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    if transaction_id.trim().is_empty() {
        errors.push("transaction_id", "is required");
    }
    let column = const { holds("payment.transaction_id") };
    for (field, value) in [
        ("transaction_id", transaction_id),
        ("payer_id", &provider.payer_id),
        ("subscription_id", &provider.subscription_id),
        ("payer_status", &provider.payer_status),
        ("payment_status", &provider.payment_status),
    ] {
        errors.text(field, value, column);
    }
    errors.into_vec()
}

/// Validates an export batch: 1 to [`MAX_EXPORT_BATCH`] positive ids and a batch id.
pub fn validate_export(donation_ids: &[u64], batch_id: &str) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    if donation_ids.is_empty() || donation_ids.len() > MAX_EXPORT_BATCH {
        errors.push(
            "donation_ids",
            format!("must hold 1 to {MAX_EXPORT_BATCH} ids"),
        );
    }
    if donation_ids
        .iter()
        .any(|&id| id == 0 || i64::try_from(id).is_err())
    {
        errors.push("donation_ids", "must hold positive ids only");
    }
    errors.required_text(
        "batch_id",
        batch_id,
        const { holds("donation.export_batch") },
    );
    errors.into_vec()
}

/// Validates tracking data for a contribution-tracking id: the allocation token `NextId`
/// returned, and every field against its column (texts, decimals, the tracking date).
pub fn validate_tracking_record(
    allocation_token: &str,
    fields: &ev::ContributionTrackingFields,
) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    if allocation_token.is_empty() {
        errors.push(
            "allocation_token",
            "is required: send the token NextId returned with the id",
        );
    } else if allocation_token.len() > 64
        || !allocation_token.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        errors.push(
            "allocation_token",
            "must be the token NextId returned (up to 64 letters and digits)",
        );
    }
    errors.extend(admission::admit_tracking_fields(fields));
    errors.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_amount_of_zero_is_no_amount_and_its_currency_defaults_to_euro() {
        assert_eq!(optional_money(0, ""), Ok(None));
        assert_eq!(optional_money(250, ""), Ok(Some(Money::eur(250))));
        assert_eq!(
            optional_money(-1, "").unwrap_err().to_string(),
            "amount_cents: must not be negative"
        );
        assert_eq!(optional_money(1, "eur").unwrap_err().field, "currency");
    }

    #[test]
    fn a_reported_time_a_column_cannot_hold_is_refused_by_its_field() {
        assert_eq!(optional_time("valuation_date", None), Ok(None));
        let ok = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(
            optional_time("valuation_date", Some(&ok)).unwrap(),
            to_datetime(&ok)
        );
        let too_late = prost_types::Timestamp {
            seconds: 1 << 40,
            nanos: 0,
        };
        let err = optional_time("valuation_date", Some(&too_late)).unwrap_err();
        assert_eq!(err.field, "valuation_date");
    }
}
