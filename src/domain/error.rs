//! `DomainError`: every business rule a decision can refuse, each message naming the rule.

use crate::domain::deletion::DeletionState;
use crate::domain::payment::PaymentStatus;
use crate::domain::types::PaymentMethod;

/// A broken business rule. Nothing is appended when a decision returns one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The donation stream has no `DonationCreated` yet.
    #[error("the donation does not exist")]
    UnknownDonation,
    /// The payment stream has no `PaymentInitiated` yet, or its method is unknown.
    #[error("the payment does not exist or has an unknown payment method")]
    UnknownPayment,
    /// Only BEZ and UEB payments can be cancelled.
    #[error("only direct debit and bank transfer payments can be cancelled, this one is {method}")]
    NotCancellable {
        /// The donation's payment method.
        method: PaymentMethod,
    },
    /// Cancelling, deleting or changing a donation that is already cancelled or deleted.
    #[error("cannot {action}: the donation is already {}", state.as_str())]
    Inactive {
        /// What was attempted.
        action: &'static str,
        /// The deletion state.
        state: DeletionState,
    },
    /// Restoring an active donation.
    #[error("only a cancelled or deleted donation can be restored, this one is active")]
    NotCancelledOrDeleted,
    /// BEZ and UEB are complete at creation and never booked by a provider.
    #[error("only external payments (credit card, PayPal, Sofort) are booked by a provider, this one is {method}")]
    NotBookable {
        /// The payment method.
        method: PaymentMethod,
    },
    /// Booking needs the provider's transaction id.
    #[error("a booking needs the provider's transaction id")]
    MissingTransactionId,
    /// A booked payment cannot be booked again with another transaction id.
    #[error("a booked payment cannot be booked again with a different transaction id (booked as {existing:?}, now {attempted:?}); only an initial recurring PayPal payment takes follow-up bookings")]
    AlreadyBooked {
        /// The transaction id it was booked with, if readable.
        existing: Option<String>,
        /// The new transaction id.
        attempted: String,
    },
    /// The payment's status does not allow the action.
    #[error("cannot {action} a payment that is {}", status.as_str())]
    WrongPaymentStatus {
        /// What was attempted.
        action: &'static str,
        /// The current status.
        status: PaymentStatus,
    },
    /// Credit-card bookings must match the payment amount.
    #[error("the booked amount {got} cents differs from the payment amount {expected} cents")]
    AmountMismatch {
        /// The payment's amount.
        expected: i64,
        /// The provider's amount.
        got: i64,
    },
    /// Refunds or charge-backs may not exceed the payment's amount.
    #[error(
        "{action} of {requested} cents exceeds the {available} cents still held on this payment"
    )]
    ExceedsAmount {
        /// `refund` or `chargeback`.
        action: &'static str,
        /// Cents still held (amount minus earlier refunds and charge-backs).
        available: i64,
        /// Cents asked for.
        requested: i64,
    },
    /// A recurring PayPal follow-up needs ids for the child payment and donation.
    #[error(
        "a follow-up booking of a recurring PayPal payment needs a new payment id and donation id"
    )]
    MissingFollowUpIds,
    /// Flagging a donation that is already under moderation.
    #[error("the donation is already under moderation")]
    AlreadyUnderModeration,
    /// Approving a donation without open moderation reasons.
    #[error("only a donation with open moderation reasons can be approved")]
    NotUnderModeration,
    /// Exporting a donation with open moderation reasons.
    #[error("cannot {action}: the donation has open moderation reasons")]
    UnderModeration {
        /// What was attempted.
        action: &'static str,
    },
    /// One comment per donation.
    #[error("a donation can have only one comment")]
    CommentExists,
    /// Follow-up donations get no comment.
    #[error("a follow-up donation of a recurring payment cannot have a comment")]
    CommentOnFollowUp,
    /// The comment text is empty.
    #[error("a comment needs a text")]
    EmptyComment,
    /// Publishing or retracting without a comment.
    #[error("the donation has no comment")]
    NoComment,
    /// A comment may be public only if it passes the text policy.
    #[error("a comment may be public only if it passes the text policy")]
    CommentViolatesPolicy,
    /// The private text cannot be read (sealed and not decrypted, or scrubbed).
    #[error("the comment's private text is not readable, so it cannot be published")]
    CommentTextUnavailable,
    /// The personal data was scrubbed.
    #[error("cannot {action}: the donation's personal data was scrubbed")]
    Scrubbed {
        /// What was attempted.
        action: &'static str,
    },
    /// Exported donations cannot have donor data updated.
    #[error("cannot {action}: the donation was already exported")]
    Exported {
        /// What was attempted.
        action: &'static str,
    },
    /// A donation is exported once.
    #[error("the donation was already exported in batch {batch_id:?}")]
    AlreadyExported {
        /// The earlier batch.
        batch_id: Option<String>,
    },
    /// An export needs a batch id.
    #[error("an export needs a batch id")]
    MissingBatchId,
    /// A donation is scrubbed once.
    #[error("the donation's personal data was already scrubbed")]
    AlreadyScrubbed,
    /// No scrub rule allows it.
    #[error("the donation may not be scrubbed yet: it is not exported, not cancelled or deleted, and not an external payment left pending past the grace period")]
    NotScrubbable,
    /// The first contribution id wins.
    #[error("contribution tracking {contribution_tracking_id} is already linked to contribution {existing}, not {attempted}")]
    ContributionAlreadyLinked {
        /// The tracking id.
        contribution_tracking_id: u64,
        /// The linked contribution.
        existing: u64,
        /// The refused one.
        attempted: u64,
    },
    /// The membership stream has no `MembershipApplied` yet.
    #[error("the membership application does not exist")]
    UnknownMembership,
    /// Acting on a cancelled membership application.
    #[error("cannot {action}: the membership application is cancelled")]
    MembershipCancelled {
        /// What was attempted.
        action: &'static str,
    },
    /// Restoring a membership application that is not cancelled.
    #[error("only a cancelled membership application can be restored, this one is active")]
    MembershipNotCancelled,
    /// Acting on an exported membership application.
    #[error("cannot {action}: the membership application was already exported")]
    MembershipExported {
        /// What was attempted.
        action: &'static str,
    },
    /// Acting on a scrubbed membership application.
    #[error("cannot {action}: the membership application's personal data was scrubbed")]
    MembershipScrubbed {
        /// What was attempted.
        action: &'static str,
    },
    /// Flagging a membership application that is already under moderation.
    #[error("the membership application is already under moderation")]
    MembershipAlreadyModerated,
    /// Approving a membership application without open moderation reasons.
    #[error("only a membership application with open moderation reasons can be approved")]
    MembershipNotModerated,
    /// Exporting a membership application with open moderation reasons.
    #[error("cannot {action}: the membership application has open moderation reasons")]
    MembershipUnderModeration {
        /// What was attempted.
        action: &'static str,
    },
    /// A membership application is exported once.
    #[error("the membership application was already exported in batch {batch_id:?}")]
    MembershipAlreadyExported {
        /// The earlier batch.
        batch_id: Option<String>,
    },
    /// Only direct debit and bank transfer payments can be cancelled.
    #[error("only direct debit and bank transfer membership fees can be cancelled, this one is {method}")]
    MembershipNotCancellable {
        /// The payment method.
        method: PaymentMethod,
    },
    /// A membership application is scrubbed once.
    #[error("the membership application's personal data was already scrubbed")]
    MembershipAlreadyScrubbed,
    /// No scrub rule allows it.
    #[error("the membership application may not be scrubbed yet: it is not exported, not cancelled, and not older than the grace period")]
    MembershipNotScrubbable,
    /// The address-change stream has no `AddressChangeCreated`.
    #[error("the address change does not exist")]
    UnknownAddressChange,
    /// The token was replaced by a change made with it.
    #[error("the address-change token was already used: the address was updated with it")]
    AddressChangeTokenReplaced,
    /// An address is given once.
    #[error("the address was already changed once through this address change")]
    AddressAlreadyChanged,
    /// A change needs an address or a receipt opt-out.
    #[error("a change needs a new address or the opt-out of the donation receipt")]
    NothingToChange,
    /// Acting on a scrubbed address change.
    #[error("cannot {action}: the address change's address was scrubbed")]
    AddressChangeScrubbed {
        /// What was attempted.
        action: &'static str,
    },
    /// Exporting an address change nobody used.
    #[error("the address change was never used: there is nothing to export")]
    AddressChangeNotUsed,
    /// A version of an address change is exported once.
    #[error("the address change was already exported in batch {batch_id:?}")]
    AddressChangeAlreadyExported {
        /// The earlier batch.
        batch_id: String,
    },
    /// An address change is scrubbed once.
    #[error("the address change's address was already scrubbed")]
    AddressChangeAlreadyScrubbed,
    /// No scrub rule allows it.
    #[error("the address change may not be scrubbed yet: it holds no address, or it is not exported and was changed inside the grace period")]
    AddressChangeNotScrubbable,
    /// The subscription stream has no `SubscriptionCreated`.
    #[error("the subscription does not exist")]
    UnknownSubscription,
    /// The legacy `subscription-interval` (PT30M): the same address subscribed less than 30
    /// minutes ago.
    #[error(
        "subscription-interval: this e-mail address subscribed less than 30 minutes ago (PT30M)"
    )]
    SubscribedTooRecently,
    /// A code confirms once (the legacy error code).
    #[error("subscription_already_confirmed: the subscription was already confirmed")]
    SubscriptionAlreadyConfirmed,
    /// Acting on a removed subscription.
    #[error("cannot {action}: the subscription was removed")]
    SubscriptionRemoved {
        /// What was attempted.
        action: &'static str,
    },
    /// A subscription is exported once.
    #[error("the subscription was already exported in batch {batch_id:?}")]
    SubscriptionAlreadyExported {
        /// The earlier batch.
        batch_id: String,
    },
    /// A subscription is removed once.
    #[error("the subscription was already removed")]
    SubscriptionAlreadyRemoved,
    /// No removal rule allows it.
    #[error("the subscription may not be removed yet: it is not exported and was made inside the grace period")]
    SubscriptionNotRemovable,
}
