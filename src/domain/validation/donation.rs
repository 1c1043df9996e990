//! The field rules of a new donation (`AddDonation`) and of a donor (`UpdateDonor`).

use super::{
    bic_is_valid, currency_or_default, email_is_valid, iban_is_valid, is_currency_code, FieldError,
    FieldErrors, CURRENCY_RULE, INTERVALS, MAX_AMOUNT_CENTS_EXCLUSIVE, MAX_AMOUNT_RULE,
    MIN_AMOUNT_CENTS,
};
use crate::domain::admission::{self, holds, Holds};
use crate::domain::commands::{NewDonation, NewDonor, NewPayment};
use crate::domain::donation::DonorKind;
use crate::domain::types::PaymentMethod;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::validate_comment;
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
}
