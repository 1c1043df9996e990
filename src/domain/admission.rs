//! The admission rule: an event the ledger accepts must be projectable into every read-model
//! dialect. An event whose value a read-model column cannot hold (an id above `i64::MAX` for a
//! BIGINT, a count above `i32::MAX` for an INTEGER, a NUL that PostgreSQL refuses in TEXT, a
//! time outside what a DATETIME holds, a decimal wider than its NUMERIC) would stop every
//! projector at it, forever: it is in the log.
//!
//! [`COLUMNS`] is the one table of what each read-model column holds. Every check below names
//! its column in it (`holds!("donation.amount_cents")`), resolved at compile time, so a check
//! cannot name a column the table lacks; a unit test in `projection::rows` holds the table to
//! the read model's layouts and to the PostgreSQL migration's types, so a
//! new column cannot be forgotten.
//!
//! The intake runs [`admit`] on every event before it appends it (after its own request
//! checks, which name the request's fields); the projector runs it on every event it reads
//! (events written before this rule, or by another writer) and quarantines what fails.
//!
//! One concern over 600 lines: the table of what every read-model column holds (most of the
//! file) and the walk of every event type's fields against it.

use prost_types::Timestamp;

use crate::domain::contribution_tracking::{tracked_values, TrackedValue};
use crate::domain::validation::FieldError;
use crate::domain::DomainEvent;
use crate::proto::events as ev;

/// What a read-model column can hold, in every dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// BIGINT with `CHECK (x >= 0)`: ids and positions, 0 to `i64::MAX`.
    Id,
    /// INTEGER with `CHECK (x >= 0)`: counts and months, 0 to `i32::MAX`.
    Count,
    /// INTEGER: any `i32`.
    Int,
    /// BIGINT cents, 0 to [`MAX_CENTS`] (sums of them stay far from overflow).
    Cents,
    /// TEXT on one line: at most this many characters, no control characters.
    Line(usize),
    /// TEXT over several lines: at most this many characters; tab, CR and LF allowed.
    Lines(usize),
    /// NUMERIC(p, s), not negative: at most `int` digits before the point and `frac` after.
    Decimal {
        /// Digits before the point (p − s).
        int: usize,
        /// Digits after the point (s).
        frac: usize,
    },
    /// TIMESTAMPTZ / DATETIME: a valid instant in the years 1000 to 9999 (MariaDB's DATETIME
    /// range, inside PostgreSQL's and what SQLite's RFC 3339 text sorts correctly).
    Time,
    /// BOOLEAN.
    Bool,
    /// Set by the fold from a closed set (states, codes, positions): never an event's value
    /// as such, so there is nothing to admit.
    Derived,
}

/// Largest amount in cents a column holds for one event (10 billion EUR).
pub const MAX_CENTS: i64 = 1_000_000_000_000;
/// Earliest year a time column holds.
pub const MIN_YEAR: i32 = 1000;
/// Latest year a time column holds.
pub const MAX_YEAR: i32 = 9999;

/// Longest one-line text of personal data, tracking and provider columns.
const LINE: Holds = Holds::Line(250);
/// Longest contribution-tracking text column (WMF's `varchar(255)`).
const CT_LINE: Holds = Holds::Line(255);

/// Every column of the read model's tables (`table.column`) and what it holds.
pub const COLUMNS: &[(&str, Holds)] = &[
    ("donation_tracking.id", Holds::Derived),
    ("donation_tracking.campaign", LINE),
    ("donation_tracking.keyword", LINE),
    ("donation.id", Holds::Id),
    ("donation.created_at", Holds::Time),
    ("donation.updated_at", Holds::Time),
    ("donation.amount_cents", Holds::Cents),
    ("donation.currency", Holds::Line(3)),
    ("donation.interval_months", Holds::Count),
    ("donation.payment_id", Holds::Id),
    ("donation.payment_method", Holds::Derived),
    ("donation.payment_state", Holds::Derived),
    ("donation.payment_booked_at", Holds::Time),
    ("donation.deletion_state", Holds::Derived),
    ("donation.moderation_state", Holds::Derived),
    ("donation.is_exported", Holds::Bool),
    ("donation.exported_at", Holds::Time),
    ("donation.export_batch", Holds::Line(128)),
    ("donation.is_scrubbed", Holds::Bool),
    ("donation.scrubbed_at", Holds::Time),
    ("donation.scrub_rule", Holds::Derived),
    ("donation.donor_kind", Holds::Derived),
    ("donation.salutation", LINE),
    ("donation.title", LINE),
    ("donation.first_name", LINE),
    ("donation.last_name", LINE),
    ("donation.company_name", LINE),
    ("donation.street", LINE),
    ("donation.postcode", LINE),
    ("donation.city", LINE),
    ("donation.country", LINE),
    ("donation.email", LINE),
    ("donation.wants_newsletter", Holds::Bool),
    ("donation.wants_receipt", Holds::Bool),
    ("donation.comment", Holds::Lines(2048)),
    ("donation.comment_is_public", Holds::Bool),
    ("donation.comment_display_name", LINE),
    ("donation.tracking_id", Holds::Derived),
    ("donation.campaign", LINE),
    ("donation.keyword", LINE),
    ("donation.impression_count", Holds::Count),
    ("donation.banner_impression_count", Holds::Count),
    ("donation.contribution_tracking_id", Holds::Id),
    ("donation.parent_donation_id", Holds::Id),
    ("donation.approved_as_anonymous", Holds::Bool),
    ("donation_moderation_reason.donation_id", Holds::Id),
    (
        "donation_moderation_reason.moderation_identifier",
        Holds::Derived,
    ),
    ("donation_moderation_reason.source", LINE),
    ("payment.id", Holds::Id),
    ("payment.donation_id", Holds::Id),
    ("payment.method", Holds::Derived),
    ("payment.amount_cents", Holds::Cents),
    ("payment.currency", Holds::Line(3)),
    ("payment.interval_months", Holds::Count),
    ("payment.state", Holds::Derived),
    ("payment.state_before_cancellation", Holds::Derived),
    ("payment.valuation_date", Holds::Time),
    ("payment.parent_payment_id", Holds::Id),
    ("payment.refunded_cents", Holds::Cents),
    ("payment.charged_back_cents", Holds::Cents),
    ("payment.iban", LINE),
    ("payment.bic", LINE),
    ("payment.payment_reference_code", LINE),
    ("payment.transaction_id", LINE),
    ("payment.payer_id", LINE),
    ("payment.subscription_id", LINE),
    ("payment.payer_status", LINE),
    ("payment.provider_payment_status", LINE),
    ("payment.created_at", Holds::Time),
    ("payment.updated_at", Holds::Time),
    ("donation_event.donation_id", Holds::Id),
    ("donation_event.position", Holds::Derived),
    ("donation_event.stream", Holds::Derived),
    ("donation_event.event_type", Holds::Derived),
    ("donation_event.actor_kind", Holds::Derived),
    ("donation_event.actor_id", Holds::Line(256)),
    ("donation_event.occurred_at", Holds::Time),
    ("contribution_tracking.id", Holds::Id),
    ("contribution_tracking.contribution_id", Holds::Id),
    ("contribution_tracking.allocation_token", Holds::Line(64)),
    (
        "contribution_tracking.amount",
        Holds::Decimal { int: 17, frac: 3 },
    ),
    ("contribution_tracking.currency", CT_LINE),
    (
        "contribution_tracking.usd_amount",
        Holds::Decimal { int: 18, frac: 2 },
    ),
    ("contribution_tracking.is_recurring", Holds::Bool),
    ("contribution_tracking.referrer", CT_LINE),
    ("contribution_tracking.utm_medium", CT_LINE),
    ("contribution_tracking.utm_campaign", CT_LINE),
    ("contribution_tracking.utm_key", CT_LINE),
    ("contribution_tracking.gateway", CT_LINE),
    ("contribution_tracking.appeal", CT_LINE),
    ("contribution_tracking.payments_form_variant", CT_LINE),
    ("contribution_tracking.banner", CT_LINE),
    ("contribution_tracking.landing_page", CT_LINE),
    ("contribution_tracking.payment_method_id", Holds::Int),
    ("contribution_tracking.payment_submethod_id", Holds::Int),
    ("contribution_tracking.language", CT_LINE),
    ("contribution_tracking.country", CT_LINE),
    ("contribution_tracking.tracking_date", Holds::Time),
    ("contribution_tracking.os", CT_LINE),
    ("contribution_tracking.os_version", CT_LINE),
    ("contribution_tracking.browser", CT_LINE),
    ("contribution_tracking.browser_version", CT_LINE),
    ("contribution_tracking.recurring_choice_id", Holds::Int),
    ("contribution_tracking.device_type_id", Holds::Int),
    ("contribution_tracking.banner_size_id", Holds::Int),
    ("contribution_tracking.is_test_variant", Holds::Bool),
    ("contribution_tracking.banner_variant", CT_LINE),
    ("contribution_tracking.is_pay_fee", Holds::Bool),
    ("contribution_tracking.mailing_identifier", CT_LINE),
    ("contribution_tracking.utm_source", CT_LINE),
    ("contribution_tracking.banner_history_log_id", CT_LINE),
    ("contribution_tracking.screen_width", Holds::Id),
    ("contribution_tracking.screen_height", Holds::Id),
    ("contribution_tracking.app_install_id", CT_LINE),
    ("contribution_tracking_conflict.position", Holds::Derived),
    (
        "contribution_tracking_conflict.contribution_tracking_id",
        Holds::Id,
    ),
    ("contribution_tracking_conflict.kind", Holds::Derived),
    ("contribution_tracking_conflict.existing", Holds::Derived),
    ("contribution_tracking_conflict.attempted", Holds::Derived),
    ("contribution_tracking_conflict.at", Holds::Time),
    ("membership_application.id", Holds::Id),
    ("membership_application.created_at", Holds::Time),
    ("membership_application.updated_at", Holds::Time),
    ("membership_application.applicant_kind", Holds::Derived),
    ("membership_application.membership_type", Holds::Derived),
    ("membership_application.fee_cents", Holds::Cents),
    ("membership_application.interval_months", Holds::Count),
    ("membership_application.yearly_fee_cents", Holds::Derived),
    ("membership_application.payment_id", Holds::Id),
    ("membership_application.payment_method", Holds::Derived),
    ("membership_application.is_confirmed", Holds::Bool),
    ("membership_application.moderation_state", Holds::Derived),
    ("membership_application.cancellation_state", Holds::Derived),
    ("membership_application.is_exported", Holds::Bool),
    ("membership_application.exported_at", Holds::Time),
    ("membership_application.export_batch", Holds::Line(128)),
    ("membership_application.is_scrubbed", Holds::Bool),
    ("membership_application.scrubbed_at", Holds::Time),
    ("membership_application.scrub_rule", Holds::Derived),
    // The applicant's columns hold what `applicant_fields` admits (the legacy lengths).
    ("membership_application.salutation", Holds::Line(16)),
    ("membership_application.title", Holds::Line(16)),
    ("membership_application.first_name", Holds::Line(50)),
    ("membership_application.last_name", Holds::Line(50)),
    ("membership_application.company_name", Holds::Line(100)),
    ("membership_application.street", Holds::Line(100)),
    ("membership_application.postcode", Holds::Line(16)),
    ("membership_application.city", Holds::Line(100)),
    ("membership_application.country", Holds::Line(8)),
    ("membership_application.email", Holds::Line(250)),
    ("membership_application.phone", Holds::Line(30)),
    ("membership_application.date_of_birth", Holds::Line(10)),
    ("membership_application.iban", LINE),
    ("membership_application.bic", LINE),
    ("membership_application.payment_reference_code", LINE),
    ("membership_application.campaign", MEMBERSHIP_TRACKING),
    ("membership_application.keyword", MEMBERSHIP_TRACKING),
    // Incentive names, each admitted as `MEMBERSHIP_INCENTIVE`, joined by ','; TEXT in
    // every dialect, so no count of them overflows it.
    ("membership_application.incentives", Holds::Derived),
    ("membership_application.wants_receipt", Holds::Bool),
    ("membership_application.receipt_answered", Holds::Bool),
    ("membership_moderation_reason.membership_id", Holds::Id),
    (
        "membership_moderation_reason.moderation_identifier",
        Holds::Derived,
    ),
    ("membership_moderation_reason.source", LINE),
    ("address_change.id", Holds::Id),
    ("address_change.current_identifier", IDENTIFIER),
    ("address_change.previous_identifier", IDENTIFIER),
    ("address_change.external_id", Holds::Id),
    ("address_change.external_id_kind", Holds::Derived),
    ("address_change.address_type", Holds::Derived),
    ("address_change.has_address", Holds::Bool),
    // The address columns hold what `address_fields` admits (the legacy `address` lengths).
    ("address_change.salutation", Holds::Line(16)),
    ("address_change.title", Holds::Line(16)),
    ("address_change.first_name", Holds::Line(50)),
    ("address_change.last_name", Holds::Line(50)),
    ("address_change.company_name", Holds::Line(100)),
    ("address_change.street", Holds::Line(100)),
    ("address_change.postcode", Holds::Line(8)),
    ("address_change.city", Holds::Line(100)),
    ("address_change.country", Holds::Line(8)),
    ("address_change.donation_receipt", Holds::Bool),
    ("address_change.export_state", Holds::Derived),
    ("address_change.is_exported", Holds::Bool),
    ("address_change.exported_at", Holds::Time),
    ("address_change.export_batch", Holds::Line(128)),
    ("address_change.is_scrubbed", Holds::Bool),
    ("address_change.scrubbed_at", Holds::Time),
    ("address_change.scrub_rule", Holds::Derived),
    ("address_change.created_at", Holds::Time),
    ("address_change.modified_at", Holds::Time),
    // Subscriptions: the legacy `subscription` widths (`tracking`, `source` varchar(50)); the
    // address is not a column (see `SUBSCRIPTION_EMAIL`).
    ("subscription.id", Holds::Id),
    ("subscription.status", Holds::Derived),
    ("subscription.created_at", Holds::Time),
    ("subscription.confirmed_at", Holds::Time),
    ("subscription.tracking", Holds::Line(50)),
    ("subscription.source", Holds::Line(50)),
    ("subscription.is_exported", Holds::Bool),
    ("subscription.exported_at", Holds::Time),
    ("subscription.export_batch", Holds::Line(128)),
    ("subscription.is_removed", Holds::Bool),
    ("subscription.removed_at", Holds::Time),
    ("subscription.removal_rule", Holds::Derived),
    // The membership change log: `donation_event`'s columns, so the same rules.
    ("membership_event.membership_id", Holds::Id),
    ("membership_event.position", Holds::Derived),
    ("membership_event.stream", Holds::Derived),
    ("membership_event.event_type", Holds::Derived),
    ("membership_event.actor_kind", Holds::Derived),
    ("membership_event.actor_id", Holds::Line(256)),
    ("membership_event.occurred_at", Holds::Time),
    // The address changes' change log: the same columns again.
    ("address_change_event.address_change_id", Holds::Id),
    ("address_change_event.position", Holds::Derived),
    ("address_change_event.stream", Holds::Derived),
    ("address_change_event.event_type", Holds::Derived),
    ("address_change_event.actor_kind", Holds::Derived),
    ("address_change_event.actor_id", Holds::Line(256)),
    ("address_change_event.occurred_at", Holds::Time),
    ("projector_checkpoint.projector", Holds::Derived),
    ("projector_checkpoint.position", Holds::Derived),
    ("projector_skipped_event.projector", Holds::Derived),
    ("projector_skipped_event.position", Holds::Derived),
    ("projector_skipped_event.stream", Holds::Derived),
    ("projector_skipped_event.event_type", Holds::Derived),
    ("projector_skipped_event.reason", Holds::Derived),
    ("projector_skipped_event.skipped_by", Holds::Derived),
    ("projector_skipped_event.at", Holds::Derived),
];

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// What `column` (`table.column`) holds; panics (at compile time, where it is used in a
/// `const`) for a column [`COLUMNS`] does not list.
pub const fn holds(column: &str) -> Holds {
    let mut i = 0;
    while i < COLUMNS.len() {
        if same(COLUMNS[i].0, column) {
            return COLUMNS[i].1;
        }
        i += 1;
    }
    panic!("column missing from admission::COLUMNS")
}

/// The rule of a column, looked up at compile time.
macro_rules! holds {
    ($column:expr) => {
        const { holds($column) }
    };
}

/// Whether `c` is refused in a text column: every control character, except tab, CR and LF
/// where the column holds several lines.
fn refused_char(c: char, lines: bool) -> bool {
    c.is_control() && !(lines && matches!(c, '\t' | '\n' | '\r'))
}

/// The rule a text breaks, if any.
pub fn text_misfit(value: &str, holds: Holds) -> Option<String> {
    let (max, lines) = match holds {
        Holds::Line(max) => (max, false),
        Holds::Lines(max) => (max, true),
        _ => return None,
    };
    // Bytes bound characters from above: most values never count their characters.
    if value.len() > max && value.chars().count() > max {
        return Some(format!("must be at most {max} characters"));
    }
    let refused = if value.is_ascii() {
        value.bytes().any(|b| refused_char(char::from(b), lines))
    } else {
        value.chars().any(|c| refused_char(c, lines))
    };
    refused.then(|| {
        if lines {
            "must not contain control characters other than tab, CR and LF".to_owned()
        } else {
            "must not contain control characters".to_owned()
        }
    })
}

/// The rule an unsigned integer breaks, if any.
pub fn unsigned_misfit(value: u64, holds: Holds) -> Option<String> {
    match holds {
        Holds::Id if i64::try_from(value).is_err() => {
            Some(format!("must be at most {} (a BIGINT)", i64::MAX))
        }
        Holds::Count if i32::try_from(value).is_err() => {
            Some(format!("must be at most {} (an INTEGER)", i32::MAX))
        }
        _ => None,
    }
}

/// The rule an amount in cents breaks, if any.
pub fn cents_misfit(cents: i64) -> Option<String> {
    (!(0..=MAX_CENTS).contains(&cents)).then(|| format!("must be between 0 and {MAX_CENTS} cents"))
}

/// The rule a timestamp breaks, if any: nanos in 0..1e9, years 1000 to 9999.
pub fn time_misfit(ts: &Timestamp) -> Option<String> {
    let instant = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .and_then(|n| chrono::DateTime::from_timestamp(ts.seconds, n));
    match instant {
        Some(t) => instant_misfit(t),
        None => Some(TIME_RULE.to_owned()),
    }
}

const TIME_RULE: &str = "must be a valid time in the years 1000 to 9999 (nanos 0 to 999,999,999)";

/// The rule an instant breaks, if any: years 1000 to 9999.
pub fn instant_misfit(t: chrono::DateTime<chrono::Utc>) -> Option<String> {
    use chrono::Datelike;
    (!(MIN_YEAR..=MAX_YEAR).contains(&t.year())).then(|| TIME_RULE.to_owned())
}

/// The rule a decimal string breaks, if any.
pub fn decimal_misfit(value: &str, holds: Holds) -> Option<String> {
    let Holds::Decimal { int, frac } = holds else {
        return None;
    };
    let (i, f) = value.split_once('.').unwrap_or((value, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let fits = !i.is_empty()
        && i.len() <= int
        && f.len() <= frac
        && digits(i)
        && digits(f)
        && (!value.contains('.') || !f.is_empty());
    (!fits).then(|| {
        format!(
            "must be a non-negative decimal with at most {int} digits before the point and \
             {frac} after it"
        )
    })
}

/// Collects the field errors of one event.
#[derive(Default)]
struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    fn push(&mut self, field: &str, rule: Option<String>) {
        if let Some(rule) = rule {
            self.errors.push(FieldError {
                field: field.to_owned(),
                rule,
            });
        }
    }
    fn text(&mut self, field: &str, value: &str, holds: Holds) {
        self.push(field, text_misfit(value, holds));
    }
    fn unsigned(&mut self, field: &str, value: u64, holds: Holds) {
        self.push(field, unsigned_misfit(value, holds));
    }
    fn time(&mut self, field: &str, ts: Option<&Timestamp>) {
        if let Some(ts) = ts {
            self.push(field, time_misfit(ts));
        }
    }
    fn money(&mut self, field: &str, m: Option<&ev::Money>, currency: Holds) {
        // Field paths are built only for a misfit: this runs for every event a rebuild folds.
        let Some(m) = m else { return };
        if let Some(rule) = cents_misfit(m.cents) {
            self.push(&format!("{field}.cents"), Some(rule));
        }
        if let Some(rule) = text_misfit(&m.currency, currency) {
            self.push(&format!("{field}.currency"), Some(rule));
        }
    }
    fn known<E>(&mut self, field: &str, value: i32, unspecified: E, what: &str)
    where
        E: TryFrom<i32> + PartialEq,
    {
        match E::try_from(value) {
            Ok(v) if v != unspecified => {}
            _ => self.push(field, Some(format!("must be a known {what}"))),
        }
    }
    fn donor(&mut self, d: Option<&ev::DonorPublic>) {
        let (kind, salutation) = d.map_or((0, ""), |d| (d.kind, d.salutation.as_str()));
        self.known("donor.kind", kind, ev::DonorKind::Unspecified, "donor kind");
        self.text(
            "donor.salutation",
            salutation,
            holds!("donation.salutation"),
        );
    }
    fn personal(&mut self, p: Option<&ev::PersonalData>) {
        let Some(p) = p else { return };
        for (field, value, holds) in [
            ("personal.title", &p.title, holds!("donation.title")),
            (
                "personal.first_name",
                &p.first_name,
                holds!("donation.first_name"),
            ),
            (
                "personal.last_name",
                &p.last_name,
                holds!("donation.last_name"),
            ),
            (
                "personal.company_name",
                &p.company_name,
                holds!("donation.company_name"),
            ),
            ("personal.street", &p.street, holds!("donation.street")),
            (
                "personal.postcode",
                &p.postcode,
                holds!("donation.postcode"),
            ),
            ("personal.city", &p.city, holds!("donation.city")),
            ("personal.country", &p.country, holds!("donation.country")),
            ("personal.email", &p.email, holds!("donation.email")),
        ] {
            self.text(field, value, holds);
        }
    }
    fn tracking(&mut self, t: Option<&ev::Tracking>) {
        let Some(t) = t else { return };
        self.text(
            "tracking.campaign",
            &t.campaign,
            holds!("donation.campaign"),
        );
        self.text("tracking.keyword", &t.keyword, holds!("donation.keyword"));
        self.unsigned(
            "tracking.impression_count",
            u64::from(t.impression_count),
            holds!("donation.impression_count"),
        );
        self.unsigned(
            "tracking.banner_impression_count",
            u64::from(t.banner_impression_count),
            holds!("donation.banner_impression_count"),
        );
        self.unsigned(
            "tracking.contribution_tracking_id",
            t.contribution_tracking_id,
            holds!("donation.contribution_tracking_id"),
        );
    }
    fn comment(&mut self, c: Option<&ev::Comment>) {
        let Some(c) = c else { return };
        self.text(
            "comment.display_name",
            &c.display_name,
            holds!("donation.comment_display_name"),
        );
        self.text(
            "comment.public_text",
            &c.public_text,
            holds!("donation.comment"),
        );
        if let Some(t) = &c.private_text {
            self.text(
                "comment.private_text.text",
                &t.text,
                holds!("donation.comment"),
            );
        }
    }
    fn method(&mut self, field: &str, method: i32) {
        self.known(
            field,
            method,
            ev::PaymentMethod::Unspecified,
            "payment method",
        );
    }
    fn provider(&mut self, p: Option<&ev::ProviderData>) {
        let Some(p) = p else { return };
        for (field, value, holds) in [
            (
                "provider.transaction_id",
                &p.transaction_id,
                holds!("payment.transaction_id"),
            ),
            ("provider.payer_id", &p.payer_id, holds!("payment.payer_id")),
            (
                "provider.subscription_id",
                &p.subscription_id,
                holds!("payment.subscription_id"),
            ),
            (
                "provider.payer_status",
                &p.payer_status,
                holds!("payment.payer_status"),
            ),
            (
                "provider.payment_status",
                &p.payment_status,
                holds!("payment.provider_payment_status"),
            ),
        ] {
            self.text(field, value, holds);
        }
    }
    fn contribution_tracking(&mut self, f: Option<&ev::ContributionTrackingFields>) {
        let Some(f) = f else { return };
        // The one list of tracked fields (`tracked_values`), each against its column.
        for ((name, value), holds) in tracked_values(f).into_iter().zip(tracking_holds()) {
            let rule = match value {
                None | Some(TrackedValue::Flag(_)) => None,
                Some(TrackedValue::Text(v)) => match holds {
                    Holds::Decimal { .. } => decimal_misfit(v, *holds),
                    _ => text_misfit(v, *holds),
                },
                Some(TrackedValue::Int(i)) => match u64::try_from(i) {
                    Ok(u) => unsigned_misfit(u, *holds),
                    Err(_) if matches!(holds, Holds::Id | Holds::Count) => {
                        Some("must not be negative".to_owned())
                    }
                    Err(_) => None,
                },
                Some(TrackedValue::Time(ts)) => time_misfit(ts),
            };
            if let Some(rule) = rule {
                self.push(&format!("fields.{name}"), Some(rule));
            }
        }
    }
}

/// What each `contribution_tracking` column of [`tracked_values`] holds, in its order (looked
/// up in [`COLUMNS`] once).
fn tracking_holds() -> &'static [Holds] {
    static HOLDS: std::sync::OnceLock<Vec<Holds>> = std::sync::OnceLock::new();
    HOLDS.get_or_init(|| {
        tracked_values(&ev::ContributionTrackingFields::default())
            .into_iter()
            .map(|(name, _)| {
                COLUMNS
                    .iter()
                    .find(|(c, _)| c.strip_prefix("contribution_tracking.") == Some(name))
                    .map(|(_, h)| *h)
                    .unwrap_or_else(|| panic!("contribution_tracking.{name} not in COLUMNS"))
            })
            .collect()
    })
}

/// Every field of `event` that a read-model column could not hold, with the rule it breaks
/// (empty when the event fits). Field paths are the event's (`tracking.impression_count`).
/// Sealed personal units are not looked into: they are checked where they are clear (the
/// request, and the projector after unsealing).
pub fn admit(event: &DomainEvent) -> Vec<FieldError> {
    use DomainEvent as E;
    let mut c = Check::default();
    match event {
        E::DonationCreated(e) => {
            c.unsigned("donation_id", e.donation_id, holds!("donation.id"));
            c.time("created_at", e.created_at.as_ref());
            c.money("amount", e.amount.as_ref(), holds!("donation.currency"));
            c.unsigned(
                "interval_months",
                u64::from(e.interval_months),
                holds!("donation.interval_months"),
            );
            c.unsigned("payment_id", e.payment_id, holds!("donation.payment_id"));
            c.method("payment_method", e.payment_method);
            c.donor(e.donor.as_ref());
            c.personal(e.personal.as_ref());
            c.tracking(e.tracking.as_ref());
            c.comment(e.comment.as_ref());
        }
        E::FollowUpDonationCreated(e) => {
            c.unsigned("donation_id", e.donation_id, holds!("donation.id"));
            c.unsigned(
                "parent_donation_id",
                e.parent_donation_id,
                holds!("donation.parent_donation_id"),
            );
            c.unsigned("payment_id", e.payment_id, holds!("donation.payment_id"));
            c.time("created_at", e.created_at.as_ref());
            c.money("amount", e.amount.as_ref(), holds!("donation.currency"));
            c.unsigned(
                "interval_months",
                u64::from(e.interval_months),
                holds!("donation.interval_months"),
            );
            c.method("payment_method", e.payment_method);
            c.donor(e.donor.as_ref());
            c.tracking(e.tracking.as_ref());
        }
        E::DonorUpdated(e) => {
            c.donor(e.donor.as_ref());
            c.personal(e.personal.as_ref());
        }
        E::CommentAdded(e) => c.comment(e.comment.as_ref()),
        E::CommentPublished(e) => {
            c.text("public_text", &e.public_text, holds!("donation.comment"));
            c.text(
                "display_name",
                &e.display_name,
                holds!("donation.comment_display_name"),
            );
        }
        E::PaymentInitiated(e) => {
            c.unsigned("payment_id", e.payment_id, holds!("payment.id"));
            c.unsigned("donation_id", e.donation_id, holds!("payment.donation_id"));
            c.method("method", e.method);
            c.money("amount", e.amount.as_ref(), holds!("payment.currency"));
            c.unsigned(
                "interval_months",
                u64::from(e.interval_months),
                holds!("payment.interval_months"),
            );
            if let Some(b) = &e.bank {
                c.text("bank.iban", &b.iban, holds!("payment.iban"));
                c.text("bank.bic", &b.bic, holds!("payment.bic"));
                c.text(
                    "bank.payment_reference_code",
                    &b.payment_reference_code,
                    holds!("payment.payment_reference_code"),
                );
            }
            c.unsigned(
                "parent_payment_id",
                e.parent_payment_id,
                holds!("payment.parent_payment_id"),
            );
        }
        E::PaymentBooked(e) => {
            c.time("valuation_date", e.valuation_date.as_ref());
            c.money("amount", e.amount.as_ref(), holds!("payment.currency"));
            c.provider(e.provider.as_ref());
        }
        E::FollowUpPaymentBooked(e) => {
            c.unsigned("child_payment_id", e.child_payment_id, holds!("payment.id"));
            c.unsigned(
                "child_donation_id",
                e.child_donation_id,
                holds!("payment.donation_id"),
            );
            c.time("valuation_date", e.valuation_date.as_ref());
            c.money("amount", e.amount.as_ref(), holds!("payment.currency"));
            c.provider(e.provider.as_ref());
        }
        E::PaymentRefunded(ev::PaymentRefunded { amount, .. })
        | E::ChargebackReceived(ev::ChargebackReceived { amount, .. }) => {
            c.money("amount", amount.as_ref(), holds!("payment.currency"));
        }
        E::ModerationReasonsRaised(e) => {
            for (i, r) in e.reasons.iter().enumerate() {
                let known = matches!(
                    ev::ModerationIdentifier::try_from(r.identifier),
                    Ok(id) if id != ev::ModerationIdentifier::Unspecified
                );
                if !known {
                    c.push(
                        &format!("reasons[{i}].identifier"),
                        Some("must be a known moderation identifier".to_owned()),
                    );
                }
                let source = holds!("donation_moderation_reason.source");
                if let Some(rule) = text_misfit(&r.source, source) {
                    c.push(&format!("reasons[{i}].source"), Some(rule));
                }
            }
        }
        E::DonationExported(e) => {
            c.text("batch_id", &e.batch_id, holds!("donation.export_batch"));
            c.time("exported_at", e.exported_at.as_ref());
        }
        E::PersonalDataScrubbed(e) => {
            c.known("rule", e.rule, ev::ScrubRule::Unspecified, "scrub rule");
            c.time("scrubbed_at", e.scrubbed_at.as_ref());
        }
        E::ContributionTrackingRecorded(e) => {
            c.unsigned(
                "contribution_tracking_id",
                e.contribution_tracking_id,
                holds!("contribution_tracking.id"),
            );
            c.text(
                "allocation_token",
                &e.allocation_token,
                holds!("contribution_tracking.allocation_token"),
            );
            c.contribution_tracking(e.fields.as_ref());
        }
        E::ContributionLinked(e) => c.unsigned(
            "contribution_id",
            e.contribution_id,
            holds!("contribution_tracking.contribution_id"),
        ),
        E::MembershipApplied(e) => {
            c.unsigned("membership_id", e.membership_id, Holds::Id);
            c.time("created_at", e.created_at.as_ref());
            c.known(
                "applicant_kind",
                e.applicant_kind,
                ev::ApplicantKind::Unspecified,
                "applicant kind",
            );
            if let Some(a) = &e.applicant {
                for (field, value, holds) in applicant_fields(a) {
                    c.text(field, value, holds);
                }
            }
            c.known(
                "membership_type",
                e.membership_type,
                ev::MembershipType::Unspecified,
                "membership type",
            );
            c.money("fee", e.fee.as_ref(), Holds::Line(3));
            c.unsigned(
                "interval_months",
                u64::from(e.interval_months),
                Holds::Count,
            );
            c.unsigned("payment_id", e.payment_id, Holds::Id);
            c.method("payment_method", e.payment_method);
            if let Some(b) = &e.bank {
                c.text("bank.iban", &b.iban, holds!("payment.iban"));
                c.text("bank.bic", &b.bic, holds!("payment.bic"));
                c.text(
                    "bank.payment_reference_code",
                    &b.payment_reference_code,
                    holds!("payment.payment_reference_code"),
                );
            }
            if let Some(t) = &e.tracking {
                c.text("tracking.campaign", &t.campaign, MEMBERSHIP_TRACKING);
                c.text("tracking.keyword", &t.keyword, MEMBERSHIP_TRACKING);
            }
            for (i, name) in e.incentives.iter().enumerate() {
                if let Some(rule) = text_misfit(name, MEMBERSHIP_INCENTIVE) {
                    c.push(&format!("incentives[{i}]"), Some(rule));
                }
            }
        }
        E::MembershipExported(e) => {
            c.text("batch_id", &e.batch_id, holds!("donation.export_batch"));
            c.time("exported_at", e.exported_at.as_ref());
        }
        E::AddressChangeCreated(e) => {
            c.unsigned("address_change_id", e.address_change_id, Holds::Id);
            c.text("identifier", &e.identifier, IDENTIFIER);
            c.known(
                "external_id_kind",
                e.external_id_kind,
                ev::ExternalIdKind::Unspecified,
                "external id kind",
            );
            c.unsigned("external_id", e.external_id, Holds::Id);
            c.known(
                "address_type",
                e.address_type,
                ev::AddressType::Unspecified,
                "address type",
            );
            c.time("created_at", e.created_at.as_ref());
        }
        E::AddressChanged(e) => {
            c.text("new_identifier", &e.new_identifier, IDENTIFIER);
            c.known(
                "address_type",
                e.address_type,
                ev::AddressType::Unspecified,
                "address type",
            );
            if let Some(a) = &e.address {
                for (field, value, holds) in address_fields(a) {
                    c.text(field, value, holds);
                }
            }
            c.time("changed_at", e.changed_at.as_ref());
        }
        E::DonationReceiptOptedOut(e) => {
            c.text("new_identifier", &e.new_identifier, IDENTIFIER);
            c.time("changed_at", e.changed_at.as_ref());
        }
        E::AddressChangeTokenIssued(e) => {
            c.unsigned("address_change_id", e.address_change_id, Holds::Id);
        }
        E::AddressChangeExported(e) => {
            c.text(
                "batch_id",
                &e.batch_id,
                holds!("address_change.export_batch"),
            );
            c.time("exported_at", e.exported_at.as_ref());
            c.text("identifier", &e.identifier, IDENTIFIER);
        }
        E::SubscriptionCreated(e) => {
            c.unsigned("subscription_id", e.subscription_id, Holds::Id);
            if let Some(s) = &e.subscriber {
                c.text("subscriber.email", &s.email, SUBSCRIPTION_EMAIL);
            }
            c.text("tracking", &e.tracking, holds!("subscription.tracking"));
            c.text("source", &e.source, holds!("subscription.source"));
            c.time("created_at", e.created_at.as_ref());
            c.text("confirmation_code", &e.confirmation_code, CONFIRMATION_CODE);
        }
        E::SubscriptionConfirmed(e) => c.time("confirmed_at", e.confirmed_at.as_ref()),
        E::SubscriptionCodeIssued(e) => {
            c.unsigned("subscription_id", e.subscription_id, Holds::Id);
        }
        E::SubscriptionEmailUsed(e) => {
            c.unsigned("subscription_id", e.subscription_id, Holds::Id);
            c.time("subscribed_at", e.subscribed_at.as_ref());
        }
        E::SubscriptionExported(e) => {
            c.text("batch_id", &e.batch_id, holds!("subscription.export_batch"));
            c.time("exported_at", e.exported_at.as_ref());
        }
        // Reasons and notes reach no column; nothing else in them to admit.
        E::CommentRetracted(_)
        | E::PaymentFailed(_)
        | E::PaymentCancelled(_)
        | E::PaymentRestored(_)
        | E::ModerationApproved(_)
        | E::ManuallyFlagged(_)
        | E::DonationCancelled(_)
        | E::DonationDeleted(_)
        | E::DonationRestored(_)
        | E::MembershipCancelled(_)
        | E::MembershipRestored(_) => {}
    }
    c.errors
}

/// What a subscriber's address holds (the legacy `subscription.email varchar(250)`); no read
/// model column holds it, but the rule is the legacy width.
pub const SUBSCRIPTION_EMAIL: Holds = Holds::Line(250);

/// What a membership's campaign or keyword holds (the legacy `tracking` column joins them as
/// `campaign/keyword` in 50 characters; each part alone is held to that).
pub const MEMBERSHIP_TRACKING: Holds = Holds::Line(50);
/// What an incentive name holds (legacy `incentive.name varchar(32)`).
pub const MEMBERSHIP_INCENTIVE: Holds = Holds::Line(32);

/// What an address-change token column holds: a hyphenated UUID.
pub const IDENTIFIER: Holds = Holds::Line(36);

/// What a subscription's confirmation code holds: hex of 16 bytes (legacy `varchar(32)`).
pub const CONFIRMATION_CODE: Holds = Holds::Line(32);

/// The new address's text fields with what each holds: the legacy `address` column lengths
/// (`domain/wmde-memberships.md` §2). Paths are the same in the `ChangeAddress` request and
/// the `AddressChanged` event.
pub fn address_fields(a: &ev::AddressData) -> [(&'static str, &str, Holds); 9] {
    [
        (
            "address.salutation",
            &a.salutation,
            holds!("address_change.salutation"),
        ),
        ("address.title", &a.title, holds!("address_change.title")),
        (
            "address.first_name",
            &a.first_name,
            holds!("address_change.first_name"),
        ),
        (
            "address.last_name",
            &a.last_name,
            holds!("address_change.last_name"),
        ),
        (
            "address.company_name",
            &a.company_name,
            holds!("address_change.company_name"),
        ),
        ("address.street", &a.street, holds!("address_change.street")),
        (
            "address.postcode",
            &a.postcode,
            holds!("address_change.postcode"),
        ),
        ("address.city", &a.city, holds!("address_change.city")),
        (
            "address.country",
            &a.country,
            holds!("address_change.country"),
        ),
    ]
}

/// The applicant's text fields with what each holds: the legacy `request` column lengths
/// (`domain/wmde-memberships.md` §1.2), so the legacy view can always hold them. Paths are the
/// same in the `ApplyForMembership` request and the `MembershipApplied` event.
pub fn applicant_fields(a: &ev::ApplicantData) -> [(&'static str, &str, Holds); 12] {
    [
        ("applicant.salutation", &a.salutation, Holds::Line(16)),
        ("applicant.title", &a.title, Holds::Line(16)),
        ("applicant.first_name", &a.first_name, Holds::Line(50)),
        ("applicant.last_name", &a.last_name, Holds::Line(50)),
        ("applicant.company_name", &a.company_name, Holds::Line(100)),
        ("applicant.street", &a.street, Holds::Line(100)),
        ("applicant.postcode", &a.postcode, Holds::Line(16)),
        ("applicant.city", &a.city, Holds::Line(100)),
        ("applicant.country", &a.country, Holds::Line(8)),
        ("applicant.email", &a.email, Holds::Line(250)),
        ("applicant.phone", &a.phone, Holds::Line(30)),
        ("applicant.date_of_birth", &a.date_of_birth, Holds::Line(10)),
    ]
}

/// The field errors of a donation's marketing tracking (`tracking.campaign`, …), as an
/// `AddDonation` request and its event both name them.
pub fn admit_tracking(tracking: &ev::Tracking) -> Vec<FieldError> {
    let mut c = Check::default();
    c.tracking(Some(tracking));
    c.errors
}

/// The field errors of contribution-tracking fields (`fields.amount`, …), as a
/// `RecordContributionTracking` request and its event both name them.
pub fn admit_tracking_fields(fields: &ev::ContributionTrackingFields) -> Vec<FieldError> {
    let mut c = Check::default();
    c.contribution_tracking(Some(fields));
    c.errors
}

/// The field errors of an event's actor id (it reaches `donation_event.actor_id`,
/// `membership_event.actor_id` or `address_change_event.actor_id`, which hold the same: a unit
/// test keeps them so).
pub fn admit_actor_id(actor_id: &str) -> Vec<FieldError> {
    let mut c = Check::default();
    c.text(
        "metadata.actor.id",
        actor_id,
        holds!("donation_event.actor_id"),
    );
    c.errors
}

/// The errors as one line: `field: rule; field: rule`.
pub fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_log_holds_what_the_actor_id_check_admits() {
        let columns = "position stream event_type actor_kind actor_id occurred_at";
        for table in ["membership_event", "address_change_event"] {
            for column in columns.split(' ') {
                assert_eq!(
                    holds(&format!("{table}.{column}")),
                    holds(&format!("donation_event.{column}")),
                    "{table}.{column}"
                );
            }
        }
        assert_eq!(
            holds("membership_event.membership_id"),
            holds("donation_event.donation_id")
        );
        assert_eq!(
            holds("address_change_event.address_change_id"),
            holds("donation_event.donation_id")
        );
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn created() -> ev::DonationCreated {
        ev::DonationCreated {
            donation_id: 1,
            payment_id: 1,
            payment_method: ev::PaymentMethod::BankTransfer as i32,
            amount: Some(ev::Money {
                cents: 500,
                currency: "EUR".into(),
            }),
            donor: Some(ev::DonorPublic {
                kind: ev::DonorKind::Anonymous as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_column_is_listed_once() {
        let mut names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a column is listed twice");
        assert_eq!(holds("donation.amount_cents"), Holds::Cents);
    }

    #[test]
    fn an_event_that_fits_every_column_is_admitted() {
        assert_eq!(admit(&created().into()), vec![]);
    }

    #[test]
    fn ids_above_bigint_and_counts_above_integer_are_refused() {
        let mut e = created();
        e.tracking = Some(ev::Tracking {
            contribution_tracking_id: 1 << 63,
            impression_count: u32::MAX,
            banner_impression_count: i32::MAX as u32,
            ..Default::default()
        });
        e.donation_id = i64::MAX as u64;
        let errors = admit(&e.into());
        assert_eq!(
            fields(&errors),
            [
                "tracking.impression_count",
                "tracking.contribution_tracking_id"
            ]
        );
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_multi_line_columns() {
        let mut e = created();
        e.donor.as_mut().unwrap().salutation = "Frau\u{0}".into();
        e.comment = Some(ev::Comment {
            is_public: true,
            public_text: "line one\r\nline\ttwo".into(),
            display_name: "Ada\u{1b}[31m".into(),
            ..Default::default()
        });
        e.personal = Some(ev::PersonalData {
            city: "Berlin\u{85}".into(),
            email: "ä".repeat(250),
            street: "ä".repeat(251),
            ..Default::default()
        });
        let errors = admit(&e.into());
        assert_eq!(
            fields(&errors),
            [
                "donor.salutation",
                "personal.street",
                "personal.city",
                "comment.display_name"
            ]
        );
    }

    #[test]
    fn times_outside_the_years_1000_to_9999_or_with_bad_nanos_are_refused() {
        let ok = Timestamp {
            seconds: 1_700_000_000,
            nanos: 999_999_999,
        };
        assert_eq!(time_misfit(&ok), None);
        for bad in [
            Timestamp {
                seconds: 1_700_000_000,
                nanos: -1,
            },
            Timestamp {
                seconds: 1_700_000_000,
                nanos: 1_000_000_000,
            },
            Timestamp {
                seconds: 1 << 62,
                nanos: 0,
            },
            Timestamp {
                seconds: -62_135_596_800, // year 1
                nanos: 0,
            },
            Timestamp {
                seconds: 253_402_300_800, // 10000-01-01
                nanos: 0,
            },
        ] {
            assert!(time_misfit(&bad).is_some(), "{bad:?}");
        }
        // The first and last second of the range.
        for edge in [-30_610_224_000, 253_402_300_799] {
            let ts = Timestamp {
                seconds: edge,
                nanos: 0,
            };
            assert_eq!(time_misfit(&ts), None, "{edge}");
        }
    }

    #[test]
    fn decimals_must_be_non_negative_and_fit_their_numeric() {
        let amount = holds("contribution_tracking.amount");
        for good in ["0", "1.5", "12345678901234567.123"] {
            assert_eq!(decimal_misfit(good, amount), None, "{good}");
        }
        for bad in [
            "-1",
            "1.",
            ".5",
            "1e3",
            "123456789012345678",
            "1.2345",
            "",
            " 1",
        ] {
            assert!(decimal_misfit(bad, amount).is_some(), "{bad}");
        }
    }

    #[test]
    fn amounts_must_be_between_zero_and_the_largest_sum_a_column_keeps() {
        let booked = ev::PaymentBooked {
            amount: Some(ev::Money {
                cents: i64::MAX,
                currency: "EUR".into(),
            }),
            ..Default::default()
        };
        assert_eq!(fields(&admit(&booked.into())), ["amount.cents"]);
        let refunded = ev::PaymentRefunded {
            amount: Some(ev::Money {
                cents: -1,
                currency: "EURO".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            fields(&admit(&refunded.into())),
            ["amount.cents", "amount.currency"]
        );
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        let mut e = created();
        e.payment_method = 99;
        e.donor.as_mut().unwrap().kind = 0;
        assert_eq!(fields(&admit(&e.into())), ["payment_method", "donor.kind"]);
        let scrubbed = ev::PersonalDataScrubbed {
            rule: 42,
            ..Default::default()
        };
        assert_eq!(fields(&admit(&scrubbed.into())), ["rule"]);
    }

    #[test]
    fn every_tracked_field_is_checked_against_its_column() {
        assert_eq!(
            tracking_holds().len(),
            tracked_values(&Default::default()).len()
        );
        let f = ev::ContributionTrackingFields {
            amount: Some("-1".into()),
            utm_source: Some("a\u{0}".into()),
            tracking_date: Some(Timestamp {
                seconds: 1 << 62,
                nanos: 0,
            }),
            screen_width: Some(u32::MAX),
            payment_method_id: Some(-3),
            ..Default::default()
        };
        assert_eq!(
            fields(&admit_tracking_fields(&f)),
            ["fields.amount", "fields.tracking_date", "fields.utm_source"]
        );
    }

    #[test]
    fn an_actor_id_with_a_nul_is_refused() {
        assert_eq!(
            fields(&admit_actor_id("frontend\u{0}")),
            ["metadata.actor.id"]
        );
        assert!(admit_actor_id("frontend").is_empty());
    }
}
