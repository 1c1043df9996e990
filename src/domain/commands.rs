//! Decisions (the command side): pure functions from fold state to the events to append,
//! each tagged with its target stream, or a `DomainError` naming the broken rule.
//!
//! Decisions never read a clock: callers pass `now`. Events carry personal data in clear
//! (`personal`, `provider`, `private_text`); the privacy layer seals it before appending.
//!
//! Where each rule lives:
//! * payments: [`book_payment`], [`fail_payment`], [`follow_up_donation`];
//! * deletion: [`cancel_by_donor`], [`delete_by_admin`], [`restore`];
//! * moderation: [`flag_manually`], [`approve`];
//! * comments: [`add_comment`], [`publish_comment`], [`retract_comment`];
//! * donor, export, scrub: [`update_donor`], [`mark_exported`], [`scrub`], [`scrub_rule`];
//! * contribution tracking: [`record_contribution_tracking`], [`link_contribution`].

use chrono::{DateTime, Duration, Utc};

use crate::domain::contribution_tracking::{ContributionTrackingFields, ContributionTrackingState};
use crate::domain::donation::{DonationState, PersonalData};
use crate::domain::error::DomainError;
use crate::domain::moderation::ModerationReason;
use crate::domain::payment::{PaymentState, PaymentStatus};
use crate::domain::policy::ModerationPolicy;
use crate::domain::scrub::ScrubRule;
use crate::domain::streams;
use crate::domain::types::{to_timestamp, Money, PaymentMethod, StreamEvent};
use crate::domain::view::DonationView;
use crate::proto::events as ev;

/// The outcome of a decision.
pub type Decision = Result<Vec<StreamEvent>, DomainError>;

fn existing(view: &DonationView) -> Result<u64, DomainError> {
    view.id().ok_or(DomainError::UnknownDonation)
}

fn active(view: &DonationView, action: &'static str) -> Result<(), DomainError> {
    if view.deletion.is_cancelled_or_deleted() {
        return Err(DomainError::Inactive {
            action,
            state: view.deletion,
        });
    }
    Ok(())
}

fn not_scrubbed(view: &DonationView, action: &'static str) -> Result<(), DomainError> {
    if view.is_scrubbed() {
        return Err(DomainError::Scrubbed { action });
    }
    Ok(())
}

// ---- payments ----

/// Ids for the child payment and donation of a recurring follow-up, from the sequence
/// generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUpIds {
    /// The new payment.
    pub child_payment_id: u64,
    /// The new donation.
    pub child_donation_id: u64,
}

/// A provider's notification that a payment was booked.
#[derive(Debug, Clone, PartialEq)]
pub struct BookPayment {
    /// The provider's transaction id (the idempotency key of a booking).
    pub transaction_id: String,
    /// When the provider booked it.
    pub valuation_date: DateTime<Utc>,
    /// The amount the provider reports, if it reports one.
    pub amount: Option<Money>,
    /// Further provider data (its `transaction_id` is overwritten with the one above).
    pub provider: ev::ProviderData,
    /// Ids to use should this be a recurring PayPal follow-up.
    pub follow_up: Option<FollowUpIds>,
}

/// Books an external payment.
///
/// * BEZ and UEB are never booked by a provider (`NotBookable`).
/// * A transaction id already booked on this payment or one of its follow-ups is an
///   idempotent no-op (no events).
/// * A booked initial recurring PayPal payment (no parent, interval > 0) booked with a new
///   transaction id gets a follow-up: `FollowUpPaymentBooked` on its own stream and
///   `PaymentInitiated` + `PaymentBooked` on the child's stream (wmde.md §3). The caller then
///   creates the child donation with [`follow_up_donation`].
/// * Any other booked payment refuses a different transaction id (`AlreadyBooked`).
/// * Only a pending payment can be booked; credit-card amounts must match.
pub fn book_payment(payment: &PaymentState, cmd: &BookPayment) -> Decision {
    if !payment.initiated {
        return Err(DomainError::UnknownPayment);
    }
    let method = payment.method.ok_or(DomainError::UnknownPayment)?;
    if !method.is_external() {
        return Err(DomainError::NotBookable { method });
    }
    let txn = cmd.transaction_id.trim();
    if txn.is_empty() {
        return Err(DomainError::MissingTransactionId);
    }
    if payment.knows_transaction(txn) {
        return Ok(Vec::new());
    }
    let amount = cmd.amount.clone().or_else(|| payment.amount.clone());
    let provider = ev::ProviderData {
        transaction_id: txn.to_owned(),
        ..cmd.provider.clone()
    };
    let booked = ev::PaymentBooked {
        valuation_date: Some(to_timestamp(cmd.valuation_date)),
        amount: amount.as_ref().map(Money::to_proto),
        provider: Some(provider.clone()),
        provider_sealed: None,
    };
    if payment.was_booked() || payment.status == PaymentStatus::Booked {
        let recurring_initial = method == PaymentMethod::PayPal
            && payment.interval_months > 0
            && payment.parent_payment_id.is_none()
            && payment.status == PaymentStatus::Booked;
        if !recurring_initial {
            return Err(DomainError::AlreadyBooked {
                existing: payment.transaction_id.clone(),
                attempted: txn.to_owned(),
            });
        }
        let ids = cmd.follow_up.ok_or(DomainError::MissingFollowUpIds)?;
        let child = streams::payment(ids.child_payment_id);
        return Ok(vec![
            StreamEvent::new(
                streams::payment(payment.payment_id),
                ev::FollowUpPaymentBooked {
                    child_payment_id: ids.child_payment_id,
                    child_donation_id: ids.child_donation_id,
                    valuation_date: booked.valuation_date,
                    amount: booked.amount.clone(),
                    provider: Some(provider),
                    provider_sealed: None,
                },
            ),
            StreamEvent::new(
                child.clone(),
                ev::PaymentInitiated {
                    payment_id: ids.child_payment_id,
                    donation_id: ids.child_donation_id,
                    method: method.to_proto(),
                    amount: booked.amount.clone(),
                    interval_months: payment.interval_months,
                    bank: None,
                    bank_sealed: None,
                    parent_payment_id: payment.payment_id,
                },
            ),
            StreamEvent::new(child, booked),
        ]);
    }
    if payment.status != PaymentStatus::Pending {
        return Err(DomainError::WrongPaymentStatus {
            action: "book",
            status: payment.status,
        });
    }
    if method == PaymentMethod::CreditCard {
        if let (Some(got), Some(expected)) = (&cmd.amount, &payment.amount) {
            if got.cents != expected.cents {
                return Err(DomainError::AmountMismatch {
                    expected: expected.cents,
                    got: got.cents,
                });
            }
        }
    }
    Ok(vec![StreamEvent::new(
        streams::payment(payment.payment_id),
        booked,
    )])
}

/// Records a provider's failure. Only a pending payment can fail; failing a failed one again
/// is a no-op. A booked payment is refunded or charged back instead.
pub fn fail_payment(payment: &PaymentState, reason: &str) -> Decision {
    if !payment.initiated {
        return Err(DomainError::UnknownPayment);
    }
    match payment.status {
        PaymentStatus::Failed => Ok(Vec::new()),
        PaymentStatus::Pending => Ok(vec![StreamEvent::new(
            streams::payment(payment.payment_id),
            ev::PaymentFailed {
                reason: reason.to_owned(),
            },
        )]),
        status => Err(DomainError::WrongPaymentStatus {
            action: "fail",
            status,
        }),
    }
}

/// Creates the child donation of a recurring follow-up booking: same amount, interval,
/// method and tracking; a recurring donor (salutation and kind only); no comment.
pub fn follow_up_donation(
    parent: &DonationState,
    ids: FollowUpIds,
    created_at: DateTime<Utc>,
) -> Decision {
    let parent_id = parent.id.ok_or(DomainError::UnknownDonation)?;
    Ok(vec![StreamEvent::new(
        streams::donation(ids.child_donation_id),
        ev::FollowUpDonationCreated {
            donation_id: ids.child_donation_id,
            parent_donation_id: parent_id,
            payment_id: ids.child_payment_id,
            created_at: Some(to_timestamp(created_at)),
            amount: parent.amount.as_ref().map(Money::to_proto),
            interval_months: parent.interval_months,
            payment_method: parent.payment_method.map_or(0, PaymentMethod::to_proto),
            donor: Some(ev::DonorPublic {
                kind: parent.donor.kind as i32,
                salutation: parent.donor.salutation.clone(),
                wants_newsletter: false,
                wants_receipt: false,
            }),
            tracking: parent.tracking.clone(),
        },
    )])
}

// ---- deletion ----

/// The donor cancels. Only BEZ and UEB donations can be cancelled, and not twice. Appends
/// `DonationCancelled` to the deletion stream and `PaymentCancelled` to the payment stream.
pub fn cancel_by_donor(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    let method = view.payment_method().ok_or(DomainError::UnknownPayment)?;
    if !method.is_cancellable() {
        return Err(DomainError::NotCancellable { method });
    }
    active(view, "cancel")?;
    let mut events = vec![StreamEvent::new(
        streams::deletion(id),
        ev::DonationCancelled {
            reason: reason.to_owned(),
        },
    )];
    events.extend(cancel_payment(view, reason));
    Ok(events)
}

fn cancel_payment(view: &DonationView, reason: &str) -> Option<StreamEvent> {
    let cancellable = view.payment_method().is_some_and(PaymentMethod::is_cancellable);
    (cancellable && view.payment.status != PaymentStatus::Cancelled).then(|| {
        StreamEvent::new(
            streams::payment(view.donation.payment_id),
            ev::PaymentCancelled {
                reason: reason.to_owned(),
            },
        )
    })
}

/// An administrator deletes a donation of any method; a BEZ/UEB payment is cancelled with it.
pub fn delete_by_admin(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    active(view, "delete")?;
    let mut events = vec![StreamEvent::new(
        streams::deletion(id),
        ev::DonationDeleted {
            reason: reason.to_owned(),
        },
    )];
    events.extend(cancel_payment(view, reason));
    Ok(events)
}

/// Restores a cancelled or deleted donation (and its cancelled payment, which returns to its
/// previous status). Refused once scrubbed: the donor data it would need is gone.
pub fn restore(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    if !view.deletion.is_cancelled_or_deleted() {
        return Err(DomainError::NotCancelledOrDeleted);
    }
    not_scrubbed(view, "restore")?;
    let mut events = vec![StreamEvent::new(
        streams::deletion(id),
        ev::DonationRestored {
            reason: reason.to_owned(),
        },
    )];
    if view.payment.status == PaymentStatus::Cancelled {
        events.push(StreamEvent::new(
            streams::payment(view.donation.payment_id),
            ev::PaymentRestored {
                reason: reason.to_owned(),
            },
        ));
    }
    Ok(events)
}

// ---- moderation ----

/// An administrator flags a donation; refused while reasons are open.
pub fn flag_manually(view: &DonationView, note: &str) -> Decision {
    let id = existing(view)?;
    if view.moderation.is_open() {
        return Err(DomainError::AlreadyUnderModeration);
    }
    Ok(vec![StreamEvent::new(
        streams::moderation(id),
        ev::ManuallyFlagged {
            note: note.to_owned(),
        },
    )])
}

/// A moderator approves, optionally as anonymous; needs open reasons. Approval as anonymous is
/// only recorded in the moderation stream; the view then shows the donor as anonymous.
pub fn approve(view: &DonationView, as_anonymous: bool) -> Decision {
    let id = existing(view)?;
    if !view.moderation.is_open() {
        return Err(DomainError::NotUnderModeration);
    }
    Ok(vec![StreamEvent::new(
        streams::moderation(id),
        ev::ModerationApproved { as_anonymous },
    )])
}

/// Raises moderation reasons (e.g. from [`ModerationPolicy::reasons_for`]); no events when
/// there are none.
pub fn raise_reasons(donation_id: u64, reasons: &[ModerationReason]) -> Vec<StreamEvent> {
    if reasons.is_empty() {
        return Vec::new();
    }
    vec![StreamEvent::new(
        streams::moderation(donation_id),
        ev::ModerationReasonsRaised {
            reasons: reasons.iter().map(ModerationReason::to_proto).collect(),
        },
    )]
}

// ---- comments ----

/// A comment a donor adds after donating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewComment {
    /// The text.
    pub text: String,
    /// Whether the donor wants it public.
    pub is_public: bool,
    /// The name to show beside it.
    pub display_name: String,
}

/// Adds the one comment of a donation; none on cancelled donations or follow-ups. A comment
/// failing the text policy is forced private and raises `COMMENT_CONTENT_VIOLATION`.
pub fn add_comment(view: &DonationView, policy: &ModerationPolicy, cmd: &NewComment) -> Decision {
    let id = existing(view)?;
    if view.donation.is_follow_up() {
        return Err(DomainError::CommentOnFollowUp);
    }
    active(view, "add a comment")?;
    if view.donation.comment.is_some() {
        return Err(DomainError::CommentExists);
    }
    if cmd.text.trim().is_empty() {
        return Err(DomainError::EmptyComment);
    }
    let reasons = policy.comment_reasons(&cmd.text);
    let is_public = cmd.is_public && reasons.is_empty();
    let comment = if is_public {
        ev::Comment {
            is_public,
            display_name: cmd.display_name.clone(),
            public_text: cmd.text.clone(),
            ..Default::default()
        }
    } else {
        ev::Comment {
            is_public,
            display_name: cmd.display_name.clone(),
            private_text: Some(ev::CommentText {
                text: cmd.text.clone(),
            }),
            ..Default::default()
        }
    };
    let mut events = vec![StreamEvent::new(
        streams::donation(id),
        ev::CommentAdded {
            comment: Some(comment),
        },
    )];
    events.extend(raise_reasons(id, &reasons));
    Ok(events)
}

/// Publishes the comment; it must pass the text policy and its text must be readable. Already
/// public is a no-op.
pub fn publish_comment(view: &DonationView, policy: &ModerationPolicy) -> Decision {
    let id = existing(view)?;
    let comment = view.donation.comment.as_ref().ok_or(DomainError::NoComment)?;
    active(view, "publish a comment")?;
    not_scrubbed(view, "publish a comment")?;
    if comment.is_public {
        return Ok(Vec::new());
    }
    let text = comment.text().ok_or(DomainError::CommentTextUnavailable)?;
    if policy.text_violates(text) {
        return Err(DomainError::CommentViolatesPolicy);
    }
    Ok(vec![StreamEvent::new(
        streams::donation(id),
        ev::CommentPublished {
            public_text: text.to_owned(),
            display_name: comment.display_name.clone(),
        },
    )])
}

/// Makes the comment private again; a private one is a no-op.
pub fn retract_comment(view: &DonationView, reason: &str) -> Decision {
    let id = existing(view)?;
    let comment = view.donation.comment.as_ref().ok_or(DomainError::NoComment)?;
    if !comment.is_public {
        return Ok(Vec::new());
    }
    Ok(vec![StreamEvent::new(
        streams::donation(id),
        ev::CommentRetracted {
            reason: reason.to_owned(),
        },
    )])
}

// ---- donor, export, scrub ----

/// Replaces the donor; refused when scrubbed, exported, cancelled or deleted.
pub fn update_donor(
    view: &DonationView,
    donor: ev::DonorPublic,
    personal: PersonalData,
) -> Decision {
    let id = existing(view)?;
    not_scrubbed(view, "update the donor")?;
    if view.is_exported() {
        return Err(DomainError::Exported {
            action: "update the donor",
        });
    }
    active(view, "update the donor")?;
    Ok(vec![StreamEvent::new(
        streams::donation(id),
        ev::DonorUpdated {
            donor: Some(donor),
            personal: Some(personal),
            personal_sealed: None,
        },
    )])
}

/// Records an export. Refused when already exported (the first batch stays), cancelled or
/// deleted (nothing to hand over), under open moderation (exported once approved), or
/// scrubbed (the donor data is gone). Pending external payments are not refused here: which
/// donations an export batch selects is the exporter's policy.
pub fn mark_exported(view: &DonationView, batch_id: &str, at: DateTime<Utc>) -> Decision {
    let id = existing(view)?;
    if view.is_exported() {
        return Err(DomainError::AlreadyExported {
            batch_id: view.export.batch_id.clone(),
        });
    }
    if batch_id.trim().is_empty() {
        return Err(DomainError::MissingBatchId);
    }
    active(view, "export")?;
    if view.moderation.is_open() {
        return Err(DomainError::UnderModeration { action: "export" });
    }
    not_scrubbed(view, "export")?;
    Ok(vec![StreamEvent::new(
        streams::export(id),
        ev::DonationExported {
            batch_id: batch_id.to_owned(),
            exported_at: Some(to_timestamp(at)),
        },
    )])
}

/// When scrubbing is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubPolicy {
    /// An external payment still unbooked after this long counts as abandoned (2 days).
    pub grace_period: Duration,
    /// Off by default: scrub donations still under moderation after this long.
    pub stale_moderation_after: Option<Duration>,
}

impl Default for ScrubPolicy {
    fn default() -> Self {
        Self {
            grace_period: Duration::days(2),
            stale_moderation_after: None,
        }
    }
}

/// The first rule that allows scrubbing `view` at `now`, in the order exported, cancelled or
/// deleted, abandoned, stale moderation; `None` when none does or it is already scrubbed.
///
/// Moderation is otherwise ignored. Abandoned means: external method (PPL, MCP, SUB), never
/// booked (pending, or failed, which is never going to be booked either), and created at least
/// the grace period before `now`.
pub fn scrub_rule(view: &DonationView, now: DateTime<Utc>, policy: &ScrubPolicy) -> Option<ScrubRule> {
    if view.is_scrubbed() {
        return None;
    }
    if view.is_exported() {
        return Some(ScrubRule::Exported);
    }
    if view.deletion.is_cancelled_or_deleted() {
        return Some(ScrubRule::CancelledOrDeleted);
    }
    let older_than = |d: Duration| view.donation.created_at.is_some_and(|c| c <= now - d);
    let unbooked = !view.payment.was_booked()
        && matches!(
            view.payment.status,
            PaymentStatus::Pending | PaymentStatus::Failed
        );
    if view.payment_method().is_some_and(PaymentMethod::is_external)
        && unbooked
        && older_than(policy.grace_period)
    {
        return Some(ScrubRule::Abandoned);
    }
    if let Some(period) = policy.stale_moderation_after {
        if view.moderation.is_open() && older_than(period) {
            return Some(ScrubRule::StaleModeration);
        }
    }
    None
}

/// Scrubs the personal data (the caller then destroys the key).
pub fn scrub(view: &DonationView, now: DateTime<Utc>, policy: &ScrubPolicy) -> Decision {
    let id = existing(view)?;
    if view.is_scrubbed() {
        return Err(DomainError::AlreadyScrubbed);
    }
    let rule = scrub_rule(view, now, policy).ok_or(DomainError::NotScrubbable)?;
    Ok(vec![StreamEvent::new(
        streams::scrub(id),
        ev::PersonalDataScrubbed {
            rule: rule as i32,
            scrubbed_at: Some(to_timestamp(now)),
        },
    )])
}

// ---- contribution tracking ----

/// Records tracking fields. Repeats with the same allocation token are legitimate; a new
/// token for an id that already has one means the id was allocated twice, which is refused
/// (`DoubleAllocation`) so that the caller reports it and asks for a fresh id.
pub fn record_contribution_tracking(
    state: &ContributionTrackingState,
    contribution_tracking_id: u64,
    allocation_token: &str,
    fields: ContributionTrackingFields,
) -> Decision {
    if !allocation_token.is_empty()
        && !state.allocation_tokens.is_empty()
        && !state.allocation_tokens.contains(allocation_token)
    {
        return Err(DomainError::DoubleAllocation {
            contribution_tracking_id,
            token: allocation_token.to_owned(),
        });
    }
    Ok(vec![StreamEvent::new(
        streams::contribution_tracking(contribution_tracking_id),
        ev::ContributionTrackingRecorded {
            contribution_tracking_id,
            allocation_token: allocation_token.to_owned(),
            fields: Some(fields),
        },
    )])
}

/// Links the contribution id. The first wins: the same id again is a no-op, a different one is
/// refused (the caller counts the refusal).
pub fn link_contribution(
    state: &ContributionTrackingState,
    contribution_tracking_id: u64,
    contribution_id: u64,
) -> Decision {
    match state.contribution_id {
        Some(existing) if existing == contribution_id => Ok(Vec::new()),
        Some(existing) => Err(DomainError::ContributionAlreadyLinked {
            contribution_tracking_id,
            existing,
            attempted: contribution_id,
        }),
        None => Ok(vec![StreamEvent::new(
            streams::contribution_tracking(contribution_tracking_id),
            ev::ContributionLinked { contribution_id },
        )]),
    }
}
