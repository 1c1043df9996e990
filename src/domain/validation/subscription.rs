//! The field rules of the subscription calls (`domain/wmde-memberships.md` §3): the address is
//! required and valid and fits the legacy `email varchar(250)`; the tracking string
//! (lower-cased `campaign/keyword`) fits `tracking varchar(50)`, the `source` `varchar(50)`;
//! a confirmation code is the hex of 16 bytes.

use super::{email_is_valid, FieldError, FieldErrors};
use crate::domain::admission::{holds, SUBSCRIPTION_EMAIL};
use crate::domain::subscription::commands::{tracking_of, NewSubscription};

/// The length of a confirmation code: hex of 16 random bytes.
pub const CONFIRMATION_CODE_CHARS: usize = 32;

/// Validates a `Subscribe` request and builds the domain's input from it; every field error
/// at once.
pub fn validate_subscribe(
    email: &str,
    campaign: &str,
    keyword: &str,
    source: &str,
) -> Result<NewSubscription, Vec<FieldError>> {
    let mut errors = FieldErrors::new();
    let email = email.trim();
    let before = errors.len();
    errors.required_text("email", email, SUBSCRIPTION_EMAIL);
    // One rule at a time: an over-long address is not also called invalid.
    if errors.len() == before && !email_is_valid(email) {
        errors.push("email", "must be a valid email address");
    }
    let tracking_holds = const { holds("subscription.tracking") };
    errors.text("tracking.campaign", campaign, tracking_holds);
    errors.text("tracking.keyword", keyword, tracking_holds);
    let tracking = tracking_of(campaign, keyword);
    errors.text("tracking", &tracking, tracking_holds);
    errors.text("source", source, const { holds("subscription.source") });
    let errors = errors.into_vec();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewSubscription {
        email: email.to_owned(),
        tracking,
        source: source.to_owned(),
    })
}

/// Validates a confirmation code: 32 hexadecimal characters (either case).
pub fn validate_confirmation_code(code: &str) -> Vec<FieldError> {
    let mut errors = FieldErrors::new();
    if code.is_empty() {
        errors.push("confirmation_code", "is required");
    } else if code.len() != CONFIRMATION_CODE_CHARS || !code.bytes().all(|b| b.is_ascii_hexdigit())
    {
        errors.push(
            "confirmation_code",
            "must be 32 hexadecimal characters (the code of the confirmation link)",
        );
    }
    errors.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_subscription_needs_a_valid_address_of_at_most_250_characters() {
        assert_eq!(
            fields(&validate_subscribe("", "", "", "").unwrap_err()),
            ["email"]
        );
        assert_eq!(
            fields(&validate_subscribe("not-an-address", "", "", "").unwrap_err()),
            ["email"]
        );
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(fields(&validate_subscribe(&long, "", "", "").unwrap_err()).contains(&"email"));
        let ok = validate_subscribe(" ada@example.org ", "Spring", "Banner", "form").unwrap();
        assert_eq!(ok.email, "ada@example.org");
        assert_eq!(ok.tracking, "spring/banner");
    }

    #[test]
    fn tracking_and_source_fit_the_legacy_fifty_characters() {
        let long = "x".repeat(51);
        let errors = validate_subscribe("ada@example.org", &long, "", &long).unwrap_err();
        assert_eq!(fields(&errors), ["tracking.campaign", "tracking", "source"]);
        let joined = validate_subscribe("ada@example.org", &"c".repeat(30), &"k".repeat(30), "")
            .unwrap_err();
        assert_eq!(fields(&joined), ["tracking"]);
    }

    #[test]
    fn a_confirmation_code_is_32_hex_characters() {
        assert!(validate_confirmation_code("00112233445566778899AABBccddeeff").is_empty());
        assert_eq!(validate_confirmation_code("")[0].rule, "is required");
        assert_eq!(validate_confirmation_code("xyz").len(), 1);
        assert_eq!(
            validate_confirmation_code("00112233445566778899aabbccddeefg").len(),
            1
        );
    }
}
