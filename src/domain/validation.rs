//! Validation of a new donation request: every field error at once, each naming the field and
//! the rule.

use crate::domain::donation::DonorKind;
use crate::domain::types::PaymentMethod;

/// Smallest donation, in cents (1 EUR).
pub const MIN_AMOUNT_CENTS: i64 = 100;
/// Donations must be below this, in cents (100,000 EUR).
pub const MAX_AMOUNT_CENTS_EXCLUSIVE: i64 = 10_000_000;
/// Allowed intervals in months.
pub const INTERVALS: [u32; 5] = [0, 1, 3, 6, 12];
/// Longest text field, in characters, like the legacy `varchar(250)` columns.
pub const MAX_FIELD_CHARS: usize = 250;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2048;

/// A request to create a donation, as a frontend sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDonationRequest {
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO 4217 currency code; empty means EUR.
    pub currency: String,
    /// Interval in months (0 = one-time).
    pub interval_months: u32,
    /// Legacy payment code: `BEZ`, `UEB`, `MCP`, `PPL`, `SUB`.
    pub payment_method: String,
    /// `person`, `company`, `email` or `anonymous` (legacy `firma` and `anonym` accepted).
    pub donor_kind: String,
    /// Salutation.
    pub salutation: String,
    /// Academic title.
    pub title: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Company name.
    pub company_name: String,
    /// Street and number.
    pub street: String,
    /// Postcode.
    pub postcode: String,
    /// City.
    pub city: String,
    /// Country code.
    pub country: String,
    /// Email address.
    pub email: String,
    /// IBAN (direct debit).
    pub iban: String,
    /// BIC (optional for direct debit).
    pub bic: String,
    /// Comment text, optional.
    pub comment: String,
}

impl NewDonationRequest {
    /// The currency, EUR when empty.
    pub fn currency_or_default(&self) -> &str {
        if self.currency.is_empty() {
            "EUR"
        } else {
            &self.currency
        }
    }

    /// The parsed payment method, if known.
    pub fn method(&self) -> Option<PaymentMethod> {
        PaymentMethod::from_code(&self.payment_method)
    }

    /// The parsed donor kind, if known.
    pub fn kind(&self) -> Option<DonorKind> {
        parse_donor_kind(&self.donor_kind)
    }
}

/// One refused field: its name and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// The request field, e.g. `iban`.
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

/// Parses a donor kind, accepting the legacy codes.
pub fn parse_donor_kind(s: &str) -> Option<DonorKind> {
    match s {
        "person" => Some(DonorKind::Person),
        "company" | "firma" => Some(DonorKind::Company),
        "email" => Some(DonorKind::EmailOnly),
        "anonymous" | "anonym" => Some(DonorKind::Anonymous),
        _ => None,
    }
}

/// Validates a new donation request and returns every field error (empty when valid).
pub fn validate_new_donation(r: &NewDonationRequest) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut err = |field: &str, rule: &str| errors.push(FieldError::new(field, rule));

    if r.amount_cents < MIN_AMOUNT_CENTS {
        err("amount_cents", "must be at least 100 cents (1 EUR)");
    } else if r.amount_cents >= MAX_AMOUNT_CENTS_EXCLUSIVE {
        err(
            "amount_cents",
            "must be below 10,000,000 cents (100,000 EUR)",
        );
    }
    let currency = r.currency_or_default();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        err(
            "currency",
            "must be an ISO 4217 code of 3 uppercase letters",
        );
    }
    if !INTERVALS.contains(&r.interval_months) {
        err("interval_months", "must be one of 0, 1, 3, 6, 12");
    }
    let method = r.method();
    match method {
        None => err(
            "payment_method",
            "must be a known payment method: BEZ, UEB, MCP, PPL or SUB",
        ),
        Some(PaymentMethod::Sofort) if r.interval_months != 0 => {
            err("interval_months", "Sofort payments are one-time only")
        }
        _ => {}
    }
    let kind = r.kind();
    if kind.is_none() {
        err(
            "donor_kind",
            "must be one of person, company, email, anonymous",
        );
    }
    if kind == Some(DonorKind::Anonymous) && method == Some(PaymentMethod::DirectDebit) {
        err(
            "payment_method",
            "anonymous donors cannot pay by direct debit",
        );
    }

    let required: &[&str] = match kind {
        Some(DonorKind::Person) => &[
            "salutation",
            "first_name",
            "last_name",
            "street",
            "postcode",
            "city",
            "country",
            "email",
        ],
        Some(DonorKind::Company) => &[
            "company_name",
            "street",
            "postcode",
            "city",
            "country",
            "email",
        ],
        Some(DonorKind::EmailOnly) => &["first_name", "last_name", "email"],
        _ => &[],
    };
    for (field, value) in text_fields(r) {
        let trimmed_empty = value.trim().is_empty();
        if required.contains(&field) && trimmed_empty {
            err(field, "is required for this donor kind");
        }
        let limit = if field == "comment" {
            MAX_COMMENT_CHARS
        } else {
            MAX_FIELD_CHARS
        };
        if value.chars().count() > limit {
            err(field, &format!("must be at most {limit} characters"));
        }
        let allowed_control = |c: char| field == "comment" && matches!(c, '\n' | '\r' | '\t');
        if value.chars().any(|c| c.is_control() && !allowed_control(c)) {
            err(field, "must not contain control characters");
        }
    }

    if !r.email.is_empty() && !email_is_valid(&r.email) {
        err("email", "must be a valid email address");
    }
    if method == Some(PaymentMethod::DirectDebit) && r.iban.trim().is_empty() {
        err("iban", "is required for direct debit");
    } else if !r.iban.is_empty() && !iban_is_valid(&r.iban) {
        err(
            "iban",
            "must be a valid IBAN (country, length and mod-97 checksum)",
        );
    }
    if !r.bic.is_empty() && !bic_is_valid(&r.bic) {
        err("bic", "must be a valid BIC of 8 or 11 characters");
    }
    errors
}

fn text_fields(r: &NewDonationRequest) -> [(&'static str, &str); 14] {
    [
        ("salutation", &r.salutation),
        ("title", &r.title),
        ("first_name", &r.first_name),
        ("last_name", &r.last_name),
        ("company_name", &r.company_name),
        ("street", &r.street),
        ("postcode", &r.postcode),
        ("city", &r.city),
        ("country", &r.country),
        ("email", &r.email),
        ("iban", &r.iban),
        ("bic", &r.bic),
        ("currency", &r.currency),
        ("comment", &r.comment),
    ]
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

    fn valid_person() -> NewDonationRequest {
        NewDonationRequest {
            amount_cents: 1337,
            currency: String::new(),
            interval_months: 3,
            payment_method: "BEZ".into(),
            donor_kind: "person".into(),
            salutation: "Frau".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            street: "Hauptstraße 1".into(),
            postcode: "12345".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            email: "ada@example.org".into(),
            iban: "DE89 3704 0044 0532 0130 00".into(),
            bic: "COBADEFFXXX".into(),
            ..Default::default()
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
            let r = NewDonationRequest {
                amount_cents: cents,
                ..valid_person()
            };
            assert_eq!(
                fields(&validate_new_donation(&r)),
                ["amount_cents"],
                "{cents}"
            );
        }
        for cents in [100, 9_999_999] {
            let r = NewDonationRequest {
                amount_cents: cents,
                ..valid_person()
            };
            assert!(validate_new_donation(&r).is_empty(), "{cents}");
        }
    }

    #[test]
    fn all_field_errors_are_returned_at_once() {
        let r = NewDonationRequest {
            amount_cents: 5,
            currency: "eur".into(),
            interval_months: 2,
            payment_method: "XYZ".into(),
            donor_kind: "person".into(),
            email: "not an email".into(),
            bic: "bad".into(),
            ..Default::default()
        };
        let errors = validate_new_donation(&r);
        let f = fields(&errors);
        for expected in [
            "amount_cents",
            "currency",
            "interval_months",
            "payment_method",
            "first_name",
            "last_name",
            "street",
            "email",
            "bic",
        ] {
            assert!(f.contains(&expected), "{expected} missing in {errors:?}");
        }
    }

    #[test]
    fn sofort_is_one_time_only() {
        let r = NewDonationRequest {
            payment_method: "SUB".into(),
            interval_months: 1,
            iban: String::new(),
            ..valid_person()
        };
        let errors = validate_new_donation(&r);
        assert_eq!(fields(&errors), ["interval_months"]);
        assert_eq!(errors[0].rule, "Sofort payments are one-time only");
    }

    #[test]
    fn an_anonymous_donor_cannot_pay_by_direct_debit() {
        let r = NewDonationRequest {
            donor_kind: "anonymous".into(),
            ..Default::default()
        };
        let r = NewDonationRequest {
            amount_cents: 500,
            payment_method: "BEZ".into(),
            iban: "DE89370400440532013000".into(),
            ..r
        };
        let errors = validate_new_donation(&r);
        assert_eq!(fields(&errors), ["payment_method"]);
        let ok = NewDonationRequest {
            payment_method: "UEB".into(),
            ..r
        };
        assert!(validate_new_donation(&ok).is_empty());
    }

    #[test]
    fn a_company_donor_needs_a_company_name_but_no_person_name() {
        let r = NewDonationRequest {
            donor_kind: "firma".into(),
            first_name: String::new(),
            last_name: String::new(),
            salutation: String::new(),
            ..valid_person()
        };
        assert_eq!(fields(&validate_new_donation(&r)), ["company_name"]);
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
        let r = NewDonationRequest {
            city: "x".repeat(251),
            street: "Main\u{0}Street".into(),
            comment: "line one\nline two".into(),
            ..valid_person()
        };
        let errors = validate_new_donation(&r);
        assert_eq!(fields(&errors), ["street", "city"]);
    }

    #[test]
    fn an_unknown_donor_kind_is_refused() {
        let r = NewDonationRequest {
            donor_kind: "martian".into(),
            ..valid_person()
        };
        assert_eq!(fields(&validate_new_donation(&r)), ["donor_kind"]);
    }
}
