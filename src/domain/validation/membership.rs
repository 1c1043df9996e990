//! The field rules of a new membership application (`ApplyForMembership`), from the legacy
//! apply rules (`domain/wmde-memberships.md` §1.2): required fields by applicant kind, the
//! legacy column lengths, phone and date of birth, the fee rules, the payment methods
//! memberships take, known incentives.

use chrono::NaiveDate;

use super::{bic_is_valid, email_is_valid, iban_is_valid, FieldError, FieldErrors};
use crate::domain::admission::{applicant_fields, MEMBERSHIP_INCENTIVE, MEMBERSHIP_TRACKING};
use crate::domain::membership::commands::{NewMembership, INCENTIVES};
use crate::domain::membership::{fees, ApplicantKind, MembershipType};
use crate::domain::types::PaymentMethod;

/// The applicant fields a kind requires, by path.
fn required_for(kind: ApplicantKind) -> &'static [&'static str] {
    match kind {
        ApplicantKind::Person => &[
            "applicant.salutation",
            "applicant.first_name",
            "applicant.last_name",
            "applicant.street",
            "applicant.postcode",
            "applicant.city",
            "applicant.country",
            "applicant.email",
        ],
        ApplicantKind::Company => &[
            "applicant.company_name",
            "applicant.street",
            "applicant.postcode",
            "applicant.city",
            "applicant.country",
            "applicant.email",
        ],
        ApplicantKind::Unspecified => &[],
    }
}

/// Validates a new application and returns every field error (empty when valid).
pub fn validate_new_membership(m: &NewMembership) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    if m.applicant_kind == ApplicantKind::Unspecified {
        errors.push("applicant.kind", "must be person or company");
    }
    let required = required_for(m.applicant_kind);
    let a = &m.applicant;
    for (path, value, holds) in applicant_fields(a) {
        if required.contains(&path) && value.trim().is_empty() {
            errors.push(path, "is required for this applicant kind");
        }
        errors.text(path, value, holds);
    }
    if !a.email.is_empty() && !email_is_valid(&a.email) {
        errors.push("applicant.email", "must be a valid email address");
    }
    let phone_start = |c: char| c.is_ascii_digit() || "+-()".contains(c);
    if a.phone.chars().next().is_some_and(|c| !phone_start(c)) {
        errors.push(
            "applicant.phone",
            "must start with a digit, `+`, `-`, `(` or `)`",
        );
    }
    if !a.date_of_birth.is_empty() {
        if m.applicant_kind == ApplicantKind::Company {
            errors.push(
                "applicant.date_of_birth",
                "must be empty: a company has no date of birth",
            );
        } else if NaiveDate::parse_from_str(&a.date_of_birth, "%Y-%m-%d").is_err() {
            errors.push(
                "applicant.date_of_birth",
                "must be a date written YYYY-MM-DD",
            );
        }
    }
    if m.membership_type == MembershipType::Unspecified {
        errors.push("membership_type", "must be active or sustaining");
    }
    if let Some((field, rule)) = fees::fee_misfit(m.applicant_kind, m.fee_cents, m.interval_months)
    {
        errors.push(field, rule);
    }
    payment(&mut errors, m);
    errors.text(
        "tracking.campaign",
        &m.tracking.campaign,
        MEMBERSHIP_TRACKING,
    );
    errors.text("tracking.keyword", &m.tracking.keyword, MEMBERSHIP_TRACKING);
    for (i, name) in m.incentives.iter().enumerate() {
        let field = format!("incentives[{i}]");
        if !INCENTIVES.contains(&name.as_str()) {
            errors.push(
                &field,
                format!("must be a known incentive: {}", INCENTIVES.join(", ")),
            );
        } else if m.incentives[..i].contains(name) {
            errors.push(&field, "must not repeat an incentive");
        }
        errors.text(&field, name, MEMBERSHIP_INCENTIVE);
    }
    errors.into_vec()
}

fn payment(errors: &mut FieldErrors, m: &NewMembership) {
    match m.payment_method {
        Some(PaymentMethod::DirectDebit) => {
            if m.iban.trim().is_empty() {
                errors.push("payment.iban", "is required for direct debit");
            } else if !iban_is_valid(&m.iban) {
                errors.push(
                    "payment.iban",
                    "must be a valid IBAN (country, length and mod-97 checksum)",
                );
            }
            if !m.bic.is_empty() && !bic_is_valid(&m.bic) {
                errors.push("payment.bic", "must be a valid BIC of 8 or 11 characters");
            }
        }
        Some(PaymentMethod::BankTransfer) => {
            for (field, value) in [("payment.iban", &m.iban), ("payment.bic", &m.bic)] {
                if !value.is_empty() {
                    errors.push(field, "must be empty for bank transfer");
                }
            }
        }
        _ => errors.push(
            "payment.method",
            "memberships are paid by direct debit (BEZ) or bank transfer (UEB)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::events as ev;

    fn valid_person() -> NewMembership {
        NewMembership {
            applicant_kind: ApplicantKind::Person,
            applicant: ev::ApplicantData {
                salutation: "Frau".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                street: "Hauptstraße 1".into(),
                postcode: "12345".into(),
                city: "Berlin".into(),
                country: "DE".into(),
                email: "ada@example.org".into(),
                phone: "+49 30 123".into(),
                date_of_birth: "1990-02-28".into(),
                ..Default::default()
            },
            membership_type: MembershipType::Sustaining,
            fee_cents: 600,
            interval_months: 3,
            payment_method: Some(PaymentMethod::DirectDebit),
            iban: "DE89370400440532013000".into(),
            bic: "COBADEFFXXX".into(),
            incentives: vec!["tote_bag".into()],
            ..Default::default()
        }
    }

    fn fields(m: &NewMembership) -> Vec<String> {
        validate_new_membership(m)
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_valid_person_and_a_valid_company_have_no_errors() {
        assert_eq!(fields(&valid_person()), Vec::<String>::new());
        let mut company = valid_person();
        company.applicant_kind = ApplicantKind::Company;
        company.applicant.company_name = "Engines Ltd".into();
        company.applicant.date_of_birth.clear();
        company.fee_cents = 2_500;
        assert_eq!(fields(&company), Vec::<String>::new());
    }

    #[test]
    fn a_person_needs_salutation_and_names_and_a_company_its_name() {
        let mut m = valid_person();
        m.applicant.salutation.clear();
        m.applicant.last_name = " ".into();
        assert_eq!(fields(&m), ["applicant.salutation", "applicant.last_name"]);
        m = valid_person();
        m.applicant_kind = ApplicantKind::Company;
        m.applicant.date_of_birth.clear();
        m.fee_cents = 2_500;
        m.applicant.salutation.clear();
        assert_eq!(fields(&m), ["applicant.company_name"]);
    }

    #[test]
    fn texts_longer_than_their_legacy_column_are_refused() {
        let mut m = valid_person();
        m.applicant.first_name = "a".repeat(51);
        m.applicant.postcode = "1".repeat(17);
        assert_eq!(fields(&m), ["applicant.first_name", "applicant.postcode"]);
    }

    #[test]
    fn phone_and_date_of_birth_follow_the_legacy_rules() {
        let mut m = valid_person();
        m.applicant.phone = "call me".into();
        m.applicant.date_of_birth = "28.02.1990".into();
        let errors = validate_new_membership(&m);
        assert_eq!(errors[0].field, "applicant.phone");
        assert_eq!(errors[1].rule, "must be a date written YYYY-MM-DD");
    }

    #[test]
    fn a_company_below_100_euros_a_year_is_refused_a_person_is_not() {
        let mut m = valid_person();
        m.fee_cents = 2_400;
        m.interval_months = 12;
        assert_eq!(fields(&m), Vec::<String>::new());
        m.applicant_kind = ApplicantKind::Company;
        m.applicant.company_name = "Engines Ltd".into();
        m.applicant.date_of_birth.clear();
        assert_eq!(fields(&m), ["fee_cents"]);
    }

    #[test]
    fn only_direct_debit_with_an_iban_or_bank_transfer_without_one_is_accepted() {
        let mut m = valid_person();
        m.payment_method = Some(PaymentMethod::PayPal);
        assert_eq!(fields(&m), ["payment.method"]);
        m.payment_method = Some(PaymentMethod::BankTransfer);
        assert_eq!(fields(&m), ["payment.iban", "payment.bic"]);
        m = valid_person();
        m.iban = "DE00370400440532013000".into();
        assert_eq!(fields(&m), ["payment.iban"]);
    }

    #[test]
    fn unknown_or_repeated_incentives_are_refused() {
        let mut m = valid_person();
        m.incentives = vec!["tote_bag".into(), "mug".into(), "tote_bag".into()];
        assert_eq!(fields(&m), ["incentives[1]", "incentives[2]"]);
    }
}
