//! `IntakeError`: why an intake call was refused or failed. Mapped to gRPC statuses in one
//! place, `crate::api::error::to_status`.

use crate::domain::validation::FieldError;
use crate::domain::{CodecError, DomainError};
use crate::privacy::PrivacyError;
use crate::repository::LoadError;
use crate::sequence::SequenceError;
use crate::store::StoreError;

/// Errors of the intake. Whenever one is returned, nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The request is malformed; every bad field with the rule it breaks.
    #[error("invalid request: {}", list(.0))]
    Invalid(Vec<FieldError>),
    /// The request id was first used for another method.
    #[error("request_id {request_id:?} was already used for {used_for}, not {method}")]
    RequestIdReused {
        /// The reused id.
        request_id: String,
        /// The method that first used it.
        used_for: String,
        /// The method of this call.
        method: &'static str,
    },
    /// The request id was first used for the same method with different content.
    #[error("request_id {0:?} was already used for a request with different content")]
    RequestIdReusedWithOtherContent(String),
    /// A donation, payment or tracking row that the call needs does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// `donation`, `payment`, `contribution tracking`.
        what: &'static str,
        /// Its id.
        id: u64,
    },
    /// A donation id supplied by the frontend is taken.
    #[error("{what} {id} already exists")]
    AlreadyExists {
        /// `donation`.
        what: &'static str,
        /// Its id.
        id: u64,
    },
    /// A business rule refused the call.
    #[error(transparent)]
    Rule(#[from] DomainError),
    /// One donation of a batch failed, so the whole batch was refused.
    #[error("donation {donation_id}: {source}")]
    InBatch {
        /// The donation.
        donation_id: u64,
        /// Why.
        source: Box<IntakeError>,
    },
    /// One application of a membership export batch failed, so the whole batch was refused.
    #[error("membership application {membership_id}: {source}")]
    InMembershipBatch {
        /// The application.
        membership_id: u64,
        /// Why.
        source: Box<IntakeError>,
    },
    /// No address change was issued with this token.
    #[error("no address change has this token")]
    UnknownAddressChangeToken,
    /// One address change of an export batch failed, so the whole batch was refused.
    #[error("address change {address_change_id}: {source}")]
    InAddressChangeBatch {
        /// The address change.
        address_change_id: u64,
        /// Why.
        source: Box<IntakeError>,
    },
    /// No subscription was issued this confirmation code (the legacy error code).
    #[error(
        "subscription_confirmation_code_not_found: no subscription has this confirmation code"
    )]
    UnknownSubscriptionCode,
    /// One subscription of an export batch failed, so the whole batch was refused.
    #[error("subscription {subscription_id}: {source}")]
    InSubscriptionBatch {
        /// The subscription.
        subscription_id: u64,
        /// Why.
        source: Box<IntakeError>,
    },
    /// The event log failed or refused the append (a `Conflict` is a concurrent writer).
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    /// Sealing or unsealing personal data failed.
    #[error("privacy layer: {0}")]
    Privacy(#[from] PrivacyError),
    /// The sequence generator failed or refused.
    #[error("sequence generator: {0}")]
    Sequence(#[from] SequenceError),
    /// A stored event does not decode.
    #[error("stored event: {0}")]
    Codec(#[from] CodecError),
    /// A stored idempotency record does not decode.
    #[error("stored record of request {0:?} does not decode")]
    CorruptRecord(String),
    /// An event about to be appended still held personal data in clear (a bug; refused).
    #[error("refusing to append personal data in clear to stream `{0}`")]
    ClearPersonalData(String),
}

impl From<LoadError> for IntakeError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Store(e) => Self::Store(e),
            LoadError::Decode { source, .. } => Self::Codec(source),
        }
    }
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `Invalid` when a request's validation found field errors.
pub fn invalid_if_any(errors: Vec<FieldError>) -> Result<(), IntakeError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IntakeError::Invalid(errors))
    }
}

impl IntakeError {
    /// A single field error.
    pub fn field(field: &str, rule: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            rule: rule.into(),
        }])
    }
}
