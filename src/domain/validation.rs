//! The field rules of the ledger's requests: every field error at once, each naming the
//! field by its path in the request message (`payment.amount_cents`, `donor.city`) and the
//! rule it breaks. What a text field may hold is its read-model column's rule
//! ([`admission::text_misfit`] with [`admission::holds`]): one set of text rules for requests
//! and events.

use crate::domain::admission::{self, holds, Holds};
use crate::domain::commands::{NewComment, NewDonation, NewDonor, NewPayment};
use crate::domain::donation::DonorKind;
use crate::domain::types::{Money, PaymentMethod};
use crate::proto::events as ev;

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

/// Validates a new donation and returns every field error (empty when valid).
pub fn validate_new_donation(r: &NewDonation) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    let p = &r.payment;
    if p.amount_cents < MIN_AMOUNT_CENTS {
        errors.push("payment.amount_cents", "must be at least 100 cents (1 EUR)");
    } else if p.amount_cents >= MAX_AMOUNT_CENTS_EXCLUSIVE {
        errors.push("payment.amount_cents", MAX_AMOUNT_RULE);
    }
    if !is_currency_code(currency_or_default(&p.currency)) {
        errors.push("payment.currency", CURRENCY_RULE);
    }
    if !INTERVALS.contains(&p.interval_months) {
        errors.push("payment.interval_months", "must be one of 0, 1, 3, 6, 12");
    }
    match p.method {
        None => errors.push(
            "payment.method",
            "must be a known payment method: BEZ, UEB, MCP, PPL or SUB",
        ),
        Some(PaymentMethod::Sofort) if p.interval_months != 0 => errors.push(
            "payment.interval_months",
            "Sofort payments are one-time only",
        ),
        _ => {}
    }
    donor_kind(&mut errors, r.donor.kind);
    if let Some(rule) = donor_fits_payment(r.donor.kind, p.method) {
        errors.push("payment.method", rule);
    }
    donor_texts(&mut errors, &r.donor);
    // The payment's and the comment's texts follow the donor's, as they always did.
    errors.text("payment.iban", &p.iban, const { holds("payment.iban") });
    errors.text("payment.bic", &p.bic, const { holds("payment.bic") });
    // The currency's own rule (3 uppercase letters) is stricter than its column's.
    errors.text(
        "comment.text",
        &r.comment.text,
        const { holds("donation.comment") },
    );
    donor_email(&mut errors, &r.donor);
    bank_account(&mut errors, p);
    errors.text(
        "comment.display_name",
        &r.comment.display_name,
        const { holds("donation.comment_display_name") },
    );
    // Campaign, keyword, counts and tracking id: the admission rule's own checks, whose
    // field paths (`tracking.…`) are the request's.
    errors.extend(admission::admit_tracking(&r.tracking));
    if r.donation_id.is_some_and(|id| i64::try_from(id).is_err()) {
        errors.push("donation_id", "is out of range");
    }
    errors.into_vec()
}

/// Validates the donor of `UpdateDonor` (the donor fields of [`validate_new_donation`]).
pub fn validate_donor(d: &NewDonor) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    donor_kind(&mut errors, d.kind);
    donor_texts(&mut errors, d);
    donor_email(&mut errors, d);
    errors.into_vec()
}

/// The rule a donor of `kind` paying with `method` breaks, if any: anonymous donors cannot
/// pay by direct debit (a debit needs an account holder).
pub fn donor_fits_payment(kind: DonorKind, method: Option<PaymentMethod>) -> Option<&'static str> {
    (kind == DonorKind::Anonymous && method == Some(PaymentMethod::DirectDebit))
        .then_some("anonymous donors cannot pay by direct debit")
}

fn donor_kind(errors: &mut FieldErrors, kind: DonorKind) {
    if kind == DonorKind::Unspecified {
        errors.push(
            "donor.kind",
            "must be one of person, company, email, anonymous",
        );
    }
}

/// The donor's text fields in request order, with the column each is kept in.
fn donor_fields(d: &NewDonor) -> [(&'static str, &str, Holds); 10] {
    [
        (
            "donor.salutation",
            &d.salutation,
            const { holds("donation.salutation") },
        ),
        ("donor.title", &d.title, const { holds("donation.title") }),
        (
            "donor.first_name",
            &d.first_name,
            const { holds("donation.first_name") },
        ),
        (
            "donor.last_name",
            &d.last_name,
            const { holds("donation.last_name") },
        ),
        (
            "donor.company_name",
            &d.company_name,
            const { holds("donation.company_name") },
        ),
        (
            "donor.street",
            &d.street,
            const { holds("donation.street") },
        ),
        (
            "donor.postcode",
            &d.postcode,
            const { holds("donation.postcode") },
        ),
        ("donor.city", &d.city, const { holds("donation.city") }),
        (
            "donor.country",
            &d.country,
            const { holds("donation.country") },
        ),
        ("donor.email", &d.email, const { holds("donation.email") }),
    ]
}

/// The donor fields a kind requires, by path.
fn required_for(kind: DonorKind) -> &'static [&'static str] {
    match kind {
        DonorKind::Person => &[
            "donor.salutation",
            "donor.first_name",
            "donor.last_name",
            "donor.street",
            "donor.postcode",
            "donor.city",
            "donor.country",
            "donor.email",
        ],
        DonorKind::Company => &[
            "donor.company_name",
            "donor.street",
            "donor.postcode",
            "donor.city",
            "donor.country",
            "donor.email",
        ],
        DonorKind::EmailOnly => &["donor.first_name", "donor.last_name", "donor.email"],
        DonorKind::Anonymous | DonorKind::Unspecified => &[],
    }
}

fn donor_texts(errors: &mut FieldErrors, d: &NewDonor) {
    let required = required_for(d.kind);
    for (path, value, column) in donor_fields(d) {
        if required.contains(&path) && value.trim().is_empty() {
            errors.push(path, "is required for this donor kind");
        }
        errors.text(path, value, column);
    }
}

fn donor_email(errors: &mut FieldErrors, d: &NewDonor) {
    if !d.email.is_empty() && !email_is_valid(&d.email) {
        errors.push("donor.email", "must be a valid email address");
    }
}

fn bank_account(errors: &mut FieldErrors, p: &NewPayment) {
    if p.method == Some(PaymentMethod::DirectDebit) && p.iban.trim().is_empty() {
        errors.push("payment.iban", "is required for direct debit");
    } else if !p.iban.is_empty() && !iban_is_valid(&p.iban) {
        errors.push(
            "payment.iban",
            "must be a valid IBAN (country, length and mod-97 checksum)",
        );
    }
    if !p.bic.is_empty() && !bic_is_valid(&p.bic) {
        errors.push("payment.bic", "must be a valid BIC of 8 or 11 characters");
    }
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

/// IBAN lengths of common countries; others must be 15 to 34 characters long.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("DE", 22),
    ("ES", 24),
    ("FR", 27),
    ("GB", 22),
    ("IT", 27),
    ("LU", 20),
    ("NL", 18),
];

/// Whether `iban` (spaces allowed, any case) has a valid shape, length and mod-97 checksum.
pub fn iban_is_valid(iban: &str) -> bool {
    let s: String = iban
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let b = s.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    if let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == &b[..2]) {
        if b.len() != *len {
            return false;
        }
    }
    // Move the first four characters to the end, letters become 10..35, remainder mod 97 is 1.
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Whether `bic` is 4 bank letters, 2 country letters, 2 location characters and an optional
/// 3-character branch.
pub fn bic_is_valid(bic: &str) -> bool {
    let b = bic.as_bytes();
    (b.len() == 8 || b.len() == 11)
        && b[..6].iter().all(u8::is_ascii_uppercase)
        && b[6..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A pragmatic email syntax check: one local part of at most 64 characters without spaces, an
/// `@`, and a domain of dot-separated labels ending in a top-level domain of 2+ letters.
pub fn email_is_valid(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.chars().count() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| !c.is_whitespace() && !c.is_control());
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentMethod::*;

    fn valid_person() -> NewDonation {
        NewDonation {
            payment: NewPayment {
                amount_cents: 1337,
                currency: String::new(),
                interval_months: 3,
                method: Some(DirectDebit),
                iban: "DE89 3704 0044 0532 0130 00".into(),
                bic: "COBADEFFXXX".into(),
            },
            donor: NewDonor {
                kind: DonorKind::Person,
                salutation: "Frau".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                street: "Hauptstraße 1".into(),
                postcode: "12345".into(),
                city: "Berlin".into(),
                country: "DE".into(),
                email: "ada@example.org".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn paying(payment: NewPayment) -> NewDonation {
        NewDonation {
            payment,
            ..valid_person()
        }
    }

    fn by(donor: NewDonor) -> NewDonation {
        NewDonation {
            donor,
            ..valid_person()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_valid_direct_debit_donation_has_no_errors() {
        assert_eq!(validate_new_donation(&valid_person()), vec![]);
    }

    #[test]
    fn amounts_below_one_euro_or_from_100000_euro_are_refused() {
        for cents in [0, 99, 10_000_000, i64::MAX, -5] {
            let r = paying(NewPayment {
                amount_cents: cents,
                ..valid_person().payment
            });
            assert_eq!(
                fields(&validate_new_donation(&r)),
                ["payment.amount_cents"],
                "{cents}"
            );
        }
        for cents in [100, 9_999_999] {
            let r = paying(NewPayment {
                amount_cents: cents,
                ..valid_person().payment
            });
            assert!(validate_new_donation(&r).is_empty(), "{cents}");
        }
    }

    #[test]
    fn all_field_errors_are_returned_at_once() {
        let r = NewDonation {
            payment: NewPayment {
                amount_cents: 5,
                currency: "eur".into(),
                interval_months: 2,
                method: None,
                bic: "bad".into(),
                ..Default::default()
            },
            donor: NewDonor {
                kind: DonorKind::Person,
                email: "not an email".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let errors = validate_new_donation(&r);
        let f = fields(&errors);
        for expected in [
            "payment.amount_cents",
            "payment.currency",
            "payment.interval_months",
            "payment.method",
            "donor.first_name",
            "donor.last_name",
            "donor.street",
            "donor.email",
            "payment.bic",
        ] {
            assert!(f.contains(&expected), "{expected} missing in {errors:?}");
        }
    }

    #[test]
    fn sofort_is_one_time_only() {
        let r = paying(NewPayment {
            method: Some(Sofort),
            interval_months: 1,
            iban: String::new(),
            ..valid_person().payment
        });
        let errors = validate_new_donation(&r);
        assert_eq!(fields(&errors), ["payment.interval_months"]);
        assert_eq!(errors[0].rule, "Sofort payments are one-time only");
    }

    #[test]
    fn an_anonymous_donor_cannot_pay_by_direct_debit() {
        let r = NewDonation {
            donor: NewDonor {
                kind: DonorKind::Anonymous,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = NewDonation {
            payment: NewPayment {
                amount_cents: 500,
                method: Some(DirectDebit),
                iban: "DE89370400440532013000".into(),
                ..Default::default()
            },
            ..r
        };
        let errors = validate_new_donation(&r);
        assert_eq!(fields(&errors), ["payment.method"]);
        let ok = NewDonation {
            payment: NewPayment {
                method: Some(BankTransfer),
                ..r.payment.clone()
            },
            ..r
        };
        assert!(validate_new_donation(&ok).is_empty());
    }

    #[test]
    fn a_company_donor_needs_a_company_name_but_no_person_name() {
        let r = by(NewDonor {
            kind: DonorKind::Company,
            first_name: String::new(),
            last_name: String::new(),
            salutation: String::new(),
            ..valid_person().donor
        });
        assert_eq!(fields(&validate_new_donation(&r)), ["donor.company_name"]);
    }

    #[test]
    fn iban_checksums_are_verified() {
        assert!(iban_is_valid("DE89370400440532013000"));
        assert!(iban_is_valid("gb82 west 1234 5698 7654 32"));
        assert!(!iban_is_valid("DE89370400440532013001"));
        assert!(!iban_is_valid("DE8937040044053201300"));
        assert!(!iban_is_valid("DE89-3704-0044-0532-0130-00"));
        assert!(!iban_is_valid(""));
        assert!(!iban_is_valid("ÄÖ89370400440532013000"));
    }

    #[test]
    fn bics_have_eight_or_eleven_characters() {
        assert!(bic_is_valid("COBADEFF"));
        assert!(bic_is_valid("COBADEFFXXX"));
        assert!(!bic_is_valid("COBADEF"));
        assert!(!bic_is_valid("cobadeffxxx"));
        assert!(!bic_is_valid("C0BADEFF"));
    }

    #[test]
    fn email_syntax_is_checked() {
        for good in [
            "a@example.org",
            "first.last+tag@sub.example.de",
            "x@bücher.de",
        ] {
            assert!(email_is_valid(good), "{good}");
        }
        for bad in [
            "",
            "a@",
            "@example.org",
            "a b@example.org",
            "a@example",
            "a@-x.org",
            "a@x..org",
            "a@x.o1",
        ] {
            assert!(!email_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn long_fields_and_control_characters_are_refused() {
        let mut r = by(NewDonor {
            city: "x".repeat(251),
            street: "Main\u{0}Street".into(),
            ..valid_person().donor
        });
        r.comment.text = "line one\nline two".into();
        let errors = validate_new_donation(&r);
        assert_eq!(fields(&errors), ["donor.street", "donor.city"]);
    }

    #[test]
    fn a_comment_is_held_to_its_column_the_same_way_whenever_it_is_given() {
        let mut r = valid_person();
        r.comment.text = "tab\tis fine, a bell\u{7} is not".into();
        let with_donation = validate_new_donation(&r);
        let later = validate_comment(&r.comment);
        assert_eq!(with_donation, later);
        assert_eq!(
            later[0].to_string(),
            "comment.text: must not contain control characters other than tab, CR and LF"
        );
    }

    #[test]
    fn an_unknown_donor_kind_is_refused() {
        let r = by(NewDonor {
            kind: DonorKind::Unspecified,
            ..valid_person().donor
        });
        assert_eq!(fields(&validate_new_donation(&r)), ["donor.kind"]);
    }

    #[test]
    fn an_updated_donor_is_checked_like_the_donor_of_a_new_donation() {
        let donor = NewDonor {
            last_name: String::new(),
            email: "nope".into(),
            ..valid_person().donor
        };
        assert_eq!(
            fields(&validate_donor(&donor)),
            ["donor.last_name", "donor.email"]
        );
        assert_eq!(validate_donor(&donor), validate_new_donation(&by(donor)));
    }

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
}
