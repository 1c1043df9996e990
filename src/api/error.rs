//! The one mapping from intake errors to gRPC statuses. Exhaustive on purpose: a new error
//! variant does not compile until someone decides its status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::DomainError;
use crate::intake::IntakeError;
use crate::privacy::PrivacyError;
use crate::sequence::SequenceError;
use crate::store::StoreError;

/// The status a client sees for `error`. Validation lists every bad field and its rule;
/// internal failures are logged with their cause chain and answered opaquely.
pub fn to_status(error: &IntakeError) -> Status {
    let code = code_of(error);
    if code == Code::Internal {
        let mut chain = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        return Status::internal("internal error; the ledger logged the cause");
    }
    let message = capped(error.to_string());
    match field_errors(error) {
        Some(fields) => {
            let mut details = ErrorDetails::new();
            for field in fields {
                details.add_bad_request_violation(field.field.clone(), field.rule.clone());
            }
            Status::with_error_details(code, message, details)
        }
        None => Status::new(code, message),
    }
}

/// The refused fields of a validation error, for the machine-readable `google.rpc.BadRequest`
/// detail (`grpc-status-details-bin`) that clients can read without parsing the message.
fn field_errors(error: &IntakeError) -> Option<&[crate::domain::validation::FieldError]> {
    match error {
        IntakeError::Invalid(fields) if !fields.is_empty() => Some(fields),
        IntakeError::InBatch { source, .. }
        | IntakeError::InMembershipBatch { source, .. }
        | IntakeError::InAddressChangeBatch { source, .. }
        | IntakeError::InSubscriptionBatch { source, .. } => field_errors(source),
        _ => None,
    }
}

/// The most bytes of a status message. Values a client sent are cut where they are echoed
/// ([`crate::telemetry::excerpt`]); this is the net under every message, so that no refusal
/// outgrows the `grpc-message` header (16 KiB of headers by default on the client side).
pub const MAX_MESSAGE_BYTES: usize = 2048;

fn capped(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

fn code_of(error: &IntakeError) -> Code {
    match error {
        IntakeError::Invalid(_)
        | IntakeError::RequestIdReused { .. }
        | IntakeError::RequestIdReusedWithOtherContent(_) => Code::InvalidArgument,
        IntakeError::NotFound { .. }
        | IntakeError::UnknownAddressChangeToken
        | IntakeError::UnknownSubscriptionCode => Code::NotFound,
        IntakeError::AlreadyExists { .. } => Code::AlreadyExists,
        IntakeError::Rule(rule) => rule_code(rule),
        IntakeError::InBatch { source, .. }
        | IntakeError::InMembershipBatch { source, .. }
        | IntakeError::InAddressChangeBatch { source, .. }
        | IntakeError::InSubscriptionBatch { source, .. } => code_of(source),
        IntakeError::Store(e) => store_code(e),
        IntakeError::Privacy(e) => match e {
            PrivacyError::KeyDestroyed(_) => Code::FailedPrecondition,
            PrivacyError::KeyIdOutOfRange(_) => Code::InvalidArgument,
            PrivacyError::CorruptKey
            | PrivacyError::Tampered { .. }
            | PrivacyError::Malformed(_)
            | PrivacyError::WriteFailed(_)
            | PrivacyError::Database(_)
            | PrivacyError::Migrate(_) => Code::Internal,
        },
        IntakeError::Sequence(e) => match e {
            SequenceError::InvalidName { .. } | SequenceError::InvalidCount { .. } => {
                Code::InvalidArgument
            }
            SequenceError::Exhausted { .. } => Code::ResourceExhausted,
            SequenceError::InvalidStart { .. }
            | SequenceError::Backwards { .. }
            | SequenceError::Corrupt { .. }
            | SequenceError::InvalidUrl { .. } => Code::Internal,
            SequenceError::Backend(_) => Code::Unavailable,
        },
        IntakeError::Codec(_)
        | IntakeError::CorruptRecord(_)
        | IntakeError::ClearPersonalData(_) => Code::Internal,
    }
}

fn store_code(error: &StoreError) -> Code {
    match error {
        StoreError::Conflict { .. } => Code::Aborted,
        StoreError::DuplicateEventId { .. } => Code::AlreadyExists,
        StoreError::StreamDeleted { .. } => Code::FailedPrecondition,
        StoreError::InvalidInput { .. } => Code::InvalidArgument,
        StoreError::Closed => Code::Unavailable,
        StoreError::Remote { transient, .. } => {
            if *transient {
                Code::Unavailable
            } else {
                Code::Internal
            }
        }
        StoreError::Corrupt(_)
        | StoreError::Database(_)
        | StoreError::Embedded(_)
        | StoreError::Migrate(_) => Code::Internal,
    }
}

fn rule_code(rule: &DomainError) -> Code {
    match rule {
        DomainError::UnknownDonation
        | DomainError::UnknownPayment
        | DomainError::UnknownMembership
        | DomainError::UnknownAddressChange
        | DomainError::UnknownSubscription => Code::NotFound,
        DomainError::MissingTransactionId
        | DomainError::EmptyComment
        | DomainError::MissingBatchId
        | DomainError::NothingToChange => Code::InvalidArgument,
        DomainError::NotCancellable { .. }
        | DomainError::Inactive { .. }
        | DomainError::NotCancelledOrDeleted
        | DomainError::NotBookable { .. }
        | DomainError::AlreadyBooked { .. }
        | DomainError::WrongPaymentStatus { .. }
        | DomainError::AmountMismatch { .. }
        | DomainError::ExceedsAmount { .. }
        | DomainError::MissingFollowUpIds
        | DomainError::AlreadyUnderModeration
        | DomainError::NotUnderModeration
        | DomainError::UnderModeration { .. }
        | DomainError::CommentExists
        | DomainError::CommentOnFollowUp
        | DomainError::NoComment
        | DomainError::CommentViolatesPolicy
        | DomainError::CommentTextUnavailable
        | DomainError::Scrubbed { .. }
        | DomainError::Exported { .. }
        | DomainError::AlreadyExported { .. }
        | DomainError::AlreadyScrubbed
        | DomainError::NotScrubbable
        | DomainError::ContributionAlreadyLinked { .. }
        | DomainError::MembershipCancelled { .. }
        | DomainError::MembershipNotCancelled
        | DomainError::MembershipExported { .. }
        | DomainError::MembershipScrubbed { .. }
        | DomainError::MembershipAlreadyModerated
        | DomainError::MembershipNotModerated
        | DomainError::MembershipUnderModeration { .. }
        | DomainError::MembershipAlreadyExported { .. }
        | DomainError::MembershipNotCancellable { .. }
        | DomainError::MembershipAlreadyScrubbed
        | DomainError::MembershipNotScrubbable
        | DomainError::AddressChangeTokenReplaced
        | DomainError::AddressAlreadyChanged
        | DomainError::AddressChangeScrubbed { .. }
        | DomainError::AddressChangeNotUsed
        | DomainError::AddressChangeAlreadyExported { .. }
        | DomainError::AddressChangeAlreadyScrubbed
        | DomainError::AddressChangeNotScrubbable
        | DomainError::SubscribedTooRecently
        | DomainError::SubscriptionAlreadyConfirmed
        | DomainError::SubscriptionRemoved { .. }
        | DomainError::SubscriptionAlreadyExported { .. }
        | DomainError::SubscriptionAlreadyRemoved
        | DomainError::SubscriptionNotRemovable => Code::FailedPrecondition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::FieldError;

    #[test]
    fn validation_names_every_field_and_rule() {
        let status = to_status(&IntakeError::Invalid(vec![
            FieldError {
                field: "payment.amount_cents".into(),
                rule: "must be at least 100 cents (1 EUR)".into(),
            },
            FieldError {
                field: "donor.email".into(),
                rule: "must be a valid email address".into(),
            },
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status
            .message()
            .contains("payment.amount_cents: must be at least"));
        assert!(status.message().contains("donor.email: must be a valid"));
    }

    #[test]
    fn no_message_outgrows_the_cap_however_long_the_values_it_names() {
        let rule = "ü".repeat(1 << 20);
        let status = to_status(&IntakeError::field("donor.street", rule));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(status
            .message()
            .starts_with("invalid request: donor.street"));
    }

    #[test]
    fn conflicts_abort_and_internal_errors_are_opaque() {
        let conflict = IntakeError::Store(StoreError::Conflict {
            stream: "donation-1".into(),
            expected: crate::store::ExpectedRevision::Exact(0),
            actual: crate::store::CurrentRevision::At(1),
        });
        assert_eq!(to_status(&conflict).code(), Code::Aborted);
        let internal = to_status(&IntakeError::Store(StoreError::Corrupt(
            "secret detail".into(),
        )));
        assert_eq!(internal.code(), Code::Internal);
        assert!(!internal.message().contains("secret detail"));
        let rule = to_status(&IntakeError::Rule(DomainError::CommentExists));
        assert_eq!(rule.code(), Code::FailedPrecondition);
    }
}
