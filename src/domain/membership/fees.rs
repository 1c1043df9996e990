//! The fee rules of a membership application (`domain/wmde-memberships.md` §1.2, §1.3): the
//! intervals, the yearly minimum by applicant kind, the yearly maximum, and the yearly amount
//! above which an application is moderated.

use super::ApplicantKind;

/// Months between payments; a membership fee is never one-time.
pub const INTERVALS: [u32; 4] = [1, 3, 6, 12];
/// Smallest yearly fee of a person, in cents (24 EUR), whatever the membership type.
pub const MIN_YEARLY_PERSON_CENTS: i64 = 2_400;
/// Smallest yearly fee of a company, in cents (100 EUR).
pub const MIN_YEARLY_COMPANY_CENTS: i64 = 10_000;
/// Largest yearly fee, in cents (100,000 EUR; above it the legacy `FEE_TOO_HIGH`).
pub const MAX_YEARLY_CENTS: i64 = 10_000_000;
/// Yearly fees above this, in cents (1000 EUR), raise `MEMBERSHIP_FEE_TOO_HIGH`.
pub const MODERATION_YEARLY_CENTS: i64 = 100_000;

/// The fee over a year: fee × 12 / interval (exact for the allowed intervals); the fee itself
/// for an interval of 0, which validation refuses. Saturates instead of overflowing.
pub fn yearly_cents(fee_cents: i64, interval_months: u32) -> i64 {
    if interval_months == 0 {
        return fee_cents;
    }
    let yearly = i128::from(fee_cents) * 12 / i128::from(interval_months);
    i64::try_from(yearly).unwrap_or(if yearly < 0 { i64::MIN } else { i64::MAX })
}

/// The smallest yearly fee of an applicant of `kind`.
pub fn min_yearly_cents(kind: ApplicantKind) -> i64 {
    match kind {
        ApplicantKind::Company => MIN_YEARLY_COMPANY_CENTS,
        ApplicantKind::Person | ApplicantKind::Unspecified => MIN_YEARLY_PERSON_CENTS,
    }
}

/// The rule a fee of `fee_cents` every `interval_months` breaks for an applicant of `kind`,
/// as `(field, rule)`; `None` when it is allowed.
pub fn fee_misfit(
    kind: ApplicantKind,
    fee_cents: i64,
    interval_months: u32,
) -> Option<(&'static str, String)> {
    if !INTERVALS.contains(&interval_months) {
        return Some((
            "interval_months",
            "must be one of 1, 3, 6, 12 (a membership fee is never one-time)".into(),
        ));
    }
    if fee_cents <= 0 {
        return Some(("fee_cents", "must be positive".into()));
    }
    let yearly = yearly_cents(fee_cents, interval_months);
    let min = min_yearly_cents(kind);
    if yearly < min {
        let who = if kind == ApplicantKind::Company {
            "a company"
        } else {
            "a person"
        };
        return Some((
            "fee_cents",
            format!(
                "the yearly fee (fee x 12 / interval) of {who} must be at least {min} cents ({} EUR)",
                min / 100
            ),
        ));
    }
    if yearly > MAX_YEARLY_CENTS {
        return Some((
            "fee_cents",
            "the yearly fee (fee x 12 / interval) must be at most 10,000,000 cents (100,000 EUR)"
                .into(),
        ));
    }
    None
}

/// Whether the yearly fee is above the moderation threshold (1000 EUR, exclusive).
pub fn is_fee_too_high(fee_cents: i64, interval_months: u32) -> bool {
    yearly_cents(fee_cents, interval_months) > MODERATION_YEARLY_CENTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApplicantKind::{Company, Person};

    #[test]
    fn the_yearly_fee_is_the_fee_times_twelve_over_the_interval() {
        assert_eq!(yearly_cents(500, 1), 6_000);
        assert_eq!(yearly_cents(600, 3), 2_400);
        assert_eq!(yearly_cents(2_400, 12), 2_400);
        assert_eq!(yearly_cents(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn a_person_pays_at_least_24_euros_a_year_and_a_company_100() {
        assert_eq!(fee_misfit(Person, 200, 1), None);
        assert_eq!(fee_misfit(Person, 199, 1).unwrap().0, "fee_cents");
        assert_eq!(fee_misfit(Company, 2_500, 3), None);
        let (field, rule) = fee_misfit(Company, 2_499, 3).unwrap();
        assert_eq!(field, "fee_cents");
        assert!(
            rule.contains("a company must be at least 10000 cents"),
            "{rule}"
        );
    }

    #[test]
    fn the_yearly_fee_may_not_exceed_100000_euros() {
        assert_eq!(fee_misfit(Person, 10_000_000, 12), None);
        assert!(fee_misfit(Person, 10_000_001, 12)
            .unwrap()
            .1
            .contains("at most 10,000,000 cents"));
    }

    #[test]
    fn one_time_and_odd_intervals_are_refused() {
        for interval in [0, 2, 4, 24] {
            assert_eq!(
                fee_misfit(Person, 10_000, interval).unwrap().0,
                "interval_months"
            );
        }
        assert_eq!(fee_misfit(Person, 0, 12).unwrap().1, "must be positive");
    }

    #[test]
    fn a_yearly_fee_above_1000_euros_is_moderated_exactly_1000_is_not() {
        assert!(!is_fee_too_high(100_000, 12));
        assert!(is_fee_too_high(100_001, 12));
        assert!(is_fee_too_high(8_334, 1));
        assert!(!is_fee_too_high(8_333, 1));
    }
}
