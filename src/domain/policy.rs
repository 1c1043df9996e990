//! The moderation policy: which reasons a new donation or a comment raises.

use crate::domain::commands::NewDonation;
use crate::domain::donation::DonorKind;
use crate::domain::moderation::{ModerationIdentifier, ModerationReason};

/// Source field of a comment violation.
pub const COMMENT_SOURCE: &str = "comment";

/// What raises moderation reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModerationPolicy {
    /// One-time or annualised amounts from this many cents raise `AMOUNT_TOO_HIGH`.
    pub amount_threshold_cents: i64,
    /// Words (case-insensitive, whole words; phrases with spaces match as substrings) that
    /// make a text violate the text policy.
    pub deny_words: Vec<String>,
    /// Blocked emails (case-insensitive); an entry `@example.org` blocks a whole domain.
    pub blocked_emails: Vec<String>,
}

impl Default for ModerationPolicy {
    fn default() -> Self {
        Self {
            amount_threshold_cents: 100_000,
            deny_words: Vec::new(),
            blocked_emails: Vec::new(),
        }
    }
}

impl ModerationPolicy {
    /// The moderation reasons for a new donation. PayPal, credit card and Sofort donations
    /// skip moderation entirely.
    pub fn reasons_for(&self, r: &NewDonation) -> Vec<ModerationReason> {
        let mut reasons = Vec::new();
        let (p, d) = (&r.payment, &r.donor);
        if p.method.is_some_and(|m| m.skips_moderation()) {
            return reasons;
        }
        if self.amount_is_too_high(p.amount_cents, p.interval_months) {
            reasons.push(ModerationReason::new(
                ModerationIdentifier::AmountTooHigh,
                "amount",
            ));
        }
        if d.kind != DonorKind::Anonymous {
            for (value, source) in [
                (&d.first_name, "firstName"),
                (&d.last_name, "lastName"),
                (&d.company_name, "companyName"),
                (&d.street, "street"),
                (&d.city, "city"),
            ] {
                if self.text_violates(value) {
                    reasons.push(ModerationReason::new(
                        ModerationIdentifier::AddressContentViolation,
                        source,
                    ));
                }
            }
        }
        if self.email_is_blocked(&d.email) {
            reasons.push(ModerationReason::new(
                ModerationIdentifier::EmailBlocked,
                "email",
            ));
        }
        reasons
    }

    /// One-time amount, or annualised amount (12 / interval × amount), at least the threshold.
    pub fn amount_is_too_high(&self, amount_cents: i64, interval_months: u32) -> bool {
        let annual = if interval_months == 0 {
            i128::from(amount_cents)
        } else {
            i128::from(amount_cents) * 12 / i128::from(interval_months)
        };
        annual >= i128::from(self.amount_threshold_cents)
    }

    /// Whether a text contains a denied word.
    pub fn text_violates(&self, text: &str) -> bool {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        self.deny_words.iter().any(|d| {
            let d = d.trim().to_lowercase();
            if d.is_empty() {
                false
            } else if d.chars().all(char::is_alphanumeric) {
                words.contains(&d.as_str())
            } else {
                lower.contains(&d)
            }
        })
    }

    /// Whether the email or its domain is on the block list.
    pub fn email_is_blocked(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return false;
        }
        self.blocked_emails.iter().any(|b| {
            let b = b.trim().to_lowercase();
            if b.starts_with('@') {
                email.ends_with(&b)
            } else {
                !b.is_empty() && email == b
            }
        })
    }

    /// `COMMENT_CONTENT_VIOLATION` when the comment fails the text policy.
    pub fn comment_reasons(&self, text: &str) -> Vec<ModerationReason> {
        if self.text_violates(text) {
            vec![ModerationReason::new(
                ModerationIdentifier::CommentContentViolation,
                COMMENT_SOURCE,
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::commands::{NewDonor, NewPayment};

    fn policy() -> ModerationPolicy {
        ModerationPolicy {
            deny_words: vec!["badword".into(), "very rude".into()],
            blocked_emails: vec!["spam@example.org".into(), "@blocked.test".into()],
            ..Default::default()
        }
    }

    fn request(method: &str, cents: i64, interval: u32) -> NewDonation {
        NewDonation {
            payment: NewPayment {
                amount_cents: cents,
                interval_months: interval,
                method: method.parse().ok(),
                ..Default::default()
            },
            donor: NewDonor {
                kind: DonorKind::Person,
                first_name: "Ada".into(),
                email: "ada@example.org".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn ids(reasons: &[ModerationReason]) -> Vec<(&str, &str)> {
        reasons
            .iter()
            .map(|r| (r.identifier_name(), r.source.as_str()))
            .collect()
    }

    #[test]
    fn a_one_time_amount_of_1000_euro_is_too_high() {
        let p = policy();
        assert_eq!(
            ids(&p.reasons_for(&request("BEZ", 100_000, 0))),
            [("AMOUNT_TOO_HIGH", "amount")]
        );
        assert!(p.reasons_for(&request("BEZ", 99_999, 0)).is_empty());
    }

    #[test]
    fn a_recurring_amount_is_annualised() {
        let p = policy();
        // 84 EUR monthly = 1008 EUR a year; 83 EUR monthly = 996 EUR.
        assert_eq!(p.reasons_for(&request("UEB", 8_400, 1)).len(), 1);
        assert!(p.reasons_for(&request("UEB", 8_300, 1)).is_empty());
        // 250 EUR quarterly = 1000 EUR a year.
        assert_eq!(p.reasons_for(&request("UEB", 25_000, 3)).len(), 1);
        assert!(p.reasons_for(&request("UEB", 99_999, 12)).is_empty());
    }

    #[test]
    fn paypal_credit_card_and_sofort_skip_moderation() {
        let p = policy();
        for m in ["PPL", "MCP", "SUB"] {
            let mut r = request(m, 500_000, 0);
            r.donor.first_name = "badword".into();
            r.donor.email = "spam@example.org".into();
            assert!(p.reasons_for(&r).is_empty(), "{m}");
        }
    }

    #[test]
    fn each_offending_address_field_raises_its_own_reason() {
        let mut r = request("BEZ", 500, 0);
        r.donor.first_name = "BadWord".into();
        r.donor.city = "Town of badword!".into();
        r.donor.street = "badwordless street".into();
        assert_eq!(
            ids(&policy().reasons_for(&r)),
            [
                ("ADDRESS_CONTENT_VIOLATION", "firstName"),
                ("ADDRESS_CONTENT_VIOLATION", "city")
            ]
        );
    }

    #[test]
    fn anonymous_donors_skip_the_address_check() {
        let mut r = request("UEB", 500, 0);
        r.donor.kind = DonorKind::Anonymous;
        r.donor.last_name = "badword".into();
        assert!(policy().reasons_for(&r).is_empty());
    }

    #[test]
    fn blocked_emails_and_domains_raise_email_blocked() {
        let p = policy();
        let mut r = request("BEZ", 500, 0);
        r.donor.email = "SPAM@example.org".into();
        assert_eq!(ids(&p.reasons_for(&r)), [("EMAIL_BLOCKED", "email")]);
        r.donor.email = "anyone@blocked.test".into();
        assert_eq!(p.reasons_for(&r).len(), 1);
        r.donor.email = "anyone@notblocked.test".into();
        assert!(p.reasons_for(&r).is_empty());
    }

    #[test]
    fn a_comment_with_a_denied_phrase_raises_a_comment_violation() {
        let p = policy();
        assert_eq!(
            ids(&p.comment_reasons("That was VERY RUDE of you")),
            [("COMMENT_CONTENT_VIOLATION", "comment")]
        );
        assert!(p.comment_reasons("Thank you!").is_empty());
    }
}
