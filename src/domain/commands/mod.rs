//! Decisions (the command side): pure functions from fold state to the events to append,
//! each tagged with its target stream, or a `DomainError` naming the broken rule.
//!
//! Decisions never read a clock: callers pass `now`. Events carry personal data in clear
//! (`personal`, `provider`, `private_text`); the privacy layer seals it before appending.
//!
//! Where each rule lives:
//! * payments: [`book_payment`], [`fail_payment`], [`refund_payment`], [`report_chargeback`],
//!   [`follow_up_donation`];
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

/// Money leaving a payment again (a refund or a charge-back) is checked the same way: the
/// payment must be complete (BEZ/UEB from creation, external ones once booked), not failed,
/// cancelled or charged back, and the amount (default: what is still held) must be positive
/// and at most what is still held.
fn money_back(
    payment: &PaymentState,
    action: &'static str,
    amount: Option<&Money>,
) -> Result<Money, DomainError> {
    if !payment.initiated {
        return Err(DomainError::UnknownPayment);
    }
    let blocked = matches!(
        payment.status,
        PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::ChargedBack
    );
    if blocked || !payment.is_complete() {
        return Err(DomainError::WrongPaymentStatus {
            action,
            status: payment.status,
        });
    }
    let total = payment.amount.clone().unwrap_or_else(|| Money::eur(0));
    let available = total.cents - payment.refunded_cents - payment.charged_back_cents;
    let requested = amount.map_or(available, |m| m.cents);
    if requested <= 0 || requested > available {
        return Err(DomainError::ExceedsAmount {
            action,
            available,
            requested,
        });
    }
    Ok(Money {
        cents: requested,
        currency: total.currency,
    })
}

/// Records a refund (partial refunds add up; the status becomes refunded).
pub fn refund_payment(payment: &PaymentState, amount: Option<&Money>, reason: &str) -> Decision {
    let money = money_back(payment, "refund", amount)?;
    Ok(vec![StreamEvent::new(
        streams::payment(payment.payment_id),
        ev::PaymentRefunded {
            amount: Some(money.to_proto()),
            reason: reason.to_owned(),
        },
    )])
}

/// Records a charge-back by the payer's bank; a charged-back payment takes no further one.
pub fn report_chargeback(payment: &PaymentState, amount: Option<&Money>, reason: &str) -> Decision {
    let money = money_back(payment, "chargeback", amount)?;
    Ok(vec![StreamEvent::new(
        streams::payment(payment.payment_id),
        ev::ChargebackReceived {
            amount: Some(money.to_proto()),
            reason: reason.to_owned(),
        },
    )])
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
    let cancellable = view
        .payment_method()
        .is_some_and(PaymentMethod::is_cancellable);
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
    let comment = view
        .donation
        .comment
        .as_ref()
        .ok_or(DomainError::NoComment)?;
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
    let comment = view
        .donation
        .comment
        .as_ref()
        .ok_or(DomainError::NoComment)?;
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
/// Moderation is otherwise ignored. Abandoned means exactly what the policy says: an external
/// method (PPL, MCP, SUB) whose payment is still pending, created at least the grace period
/// before `now`. A failed payment is not pending and does not make a donation abandoned.
pub fn scrub_rule(
    view: &DonationView,
    now: DateTime<Utc>,
    policy: &ScrubPolicy,
) -> Option<ScrubRule> {
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
    let unbooked = view.payment.status == PaymentStatus::Pending;
    if view
        .payment_method()
        .is_some_and(PaymentMethod::is_external)
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

/// Tracking data for an id, decided: the event to append, and whether it comes from another
/// allocation than the row's.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingDecision {
    /// The `ContributionTrackingRecorded` event.
    pub events: Vec<StreamEvent>,
    /// The id was allocated before under another token (a sequence-generator fault): the event
    /// is evidence of the collision, and the fold and the projector keep it out of the row.
    pub collision: bool,
}

/// Records tracking fields. Repeats with the same allocation token are legitimate; a new token
/// for an id that already has one means the id was allocated twice. The data is recorded either
/// way, so the collision is reported from the log, and is never merged into the row.
pub fn record_contribution_tracking(
    state: &ContributionTrackingState,
    contribution_tracking_id: u64,
    allocation_token: &str,
    fields: ContributionTrackingFields,
) -> TrackingDecision {
    TrackingDecision {
        collision: state.collides_with(allocation_token),
        events: vec![StreamEvent::new(
            streams::contribution_tracking(contribution_tracking_id),
            ev::ContributionTrackingRecorded {
                contribution_tracking_id,
                allocation_token: allocation_token.to_owned(),
                fields: Some(fields),
            },
        )],
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deletion::DeletionState;
    use crate::domain::donation::DonorKind;
    use crate::domain::fixtures::*;
    use crate::domain::moderation::ModerationIdentifier;
    use crate::domain::DomainEvent;
    use PaymentMethod::*;

    fn given(method: PaymentMethod) -> DonationView {
        view(method, DonorKind::Person, 0)
    }

    /// Decides on the current view, then applies the accepted events to it.
    macro_rules! when {
        ($v:ident, $decision:expr) => {{
            let events = $decision.expect("decision accepted");
            apply_all(&mut $v, &events);
            events
        }};
    }

    fn types(events: &[StreamEvent]) -> Vec<(&str, &str)> {
        events
            .iter()
            .map(|e| (e.stream.as_str(), e.event.event_type()))
            .collect()
    }

    fn booking(txn: &str) -> BookPayment {
        BookPayment {
            transaction_id: txn.into(),
            valuation_date: t0(),
            amount: None,
            provider: ev::ProviderData::default(),
            follow_up: Some(FollowUpIds {
                child_payment_id: 71,
                child_donation_id: 8,
            }),
        }
    }

    // ---- payments ----

    #[test]
    fn booking_a_pending_paypal_payment_books_it() {
        let mut v = given(PayPal);
        let events = when!(v, book_payment(&v.payment, &booking("T1")));
        assert_eq!(types(&events), [("payment-70", "PaymentBooked.v1")]);
        assert_eq!(v.payment.status, PaymentStatus::Booked);
        assert_eq!(v.payment.transaction_id.as_deref(), Some("T1"));
        assert_eq!(v.legacy_status(), 'B');
    }

    #[test]
    fn a_booked_payment_is_refunded_in_parts_up_to_its_amount() {
        let mut v = given(PayPal);
        assert!(matches!(
            refund_payment(&v.payment, None, "r"),
            Err(DomainError::WrongPaymentStatus { .. })
        ));
        when!(v, book_payment(&v.payment, &booking("T1")));
        let half = Money::eur(v.payment.amount.as_ref().unwrap().cents / 2);
        when!(v, refund_payment(&v.payment, Some(&half), "r"));
        assert_eq!(v.payment.status, PaymentStatus::Refunded);
        let too_much = Money::eur(v.payment.amount.as_ref().unwrap().cents);
        assert!(matches!(
            refund_payment(&v.payment, Some(&too_much), "r"),
            Err(DomainError::ExceedsAmount { .. })
        ));
        when!(v, report_chargeback(&v.payment, None, "bank"));
        assert_eq!(v.payment.status, PaymentStatus::ChargedBack);
        assert!(report_chargeback(&v.payment, None, "bank").is_err());
    }

    #[test]
    fn booking_again_with_the_same_transaction_id_is_a_no_op() {
        let mut v = given(CreditCard);
        when!(v, book_payment(&v.payment, &booking("T1")));
        assert_eq!(book_payment(&v.payment, &booking("T1")), Ok(vec![]));
    }

    #[test]
    fn booking_a_booked_payment_with_another_transaction_id_is_refused() {
        let mut v = given(Sofort);
        when!(v, book_payment(&v.payment, &booking("T1")));
        let err = book_payment(&v.payment, &booking("T2")).unwrap_err();
        assert!(matches!(err, DomainError::AlreadyBooked { .. }));
        assert!(err.to_string().contains("different transaction id"));
    }

    #[test]
    fn rebooking_a_recurring_paypal_payment_creates_a_follow_up() {
        let mut v = view(PayPal, DonorKind::Person, 1);
        when!(v, book_payment(&v.payment, &booking("T1")));
        let events = book_payment(&v.payment, &booking("T2")).unwrap();
        assert_eq!(
            types(&events),
            [
                ("payment-70", "FollowUpPaymentBooked.v1"),
                ("payment-71", "PaymentInitiated.v1"),
                ("payment-71", "PaymentBooked.v1"),
            ]
        );
        apply_all(&mut v, &events);
        assert_eq!(v.payment.follow_ups.len(), 1);
        // The follow-up's transaction is known now: a repeat is a no-op.
        assert_eq!(book_payment(&v.payment, &booking("T2")), Ok(vec![]));
        let DomainEvent::PaymentInitiated(child) = &events[1].event else {
            panic!("child payment")
        };
        assert_eq!(child.parent_payment_id, 70);
    }

    #[test]
    fn a_follow_up_without_new_ids_is_refused() {
        let mut v = view(PayPal, DonorKind::Person, 1);
        when!(v, book_payment(&v.payment, &booking("T1")));
        let cmd = BookPayment {
            follow_up: None,
            ..booking("T2")
        };
        assert_eq!(
            book_payment(&v.payment, &cmd),
            Err(DomainError::MissingFollowUpIds)
        );
    }

    #[test]
    fn the_follow_up_donation_is_a_recurring_donor_without_comment() {
        let v = given(PayPal);
        let ids = FollowUpIds {
            child_payment_id: 71,
            child_donation_id: 8,
        };
        let events = follow_up_donation(&v.donation, ids, t0()).unwrap();
        let child = crate::domain::donation::DonationState::fold(events.iter().map(|e| &e.event));
        assert_eq!(events[0].stream, "donation-8");
        assert_eq!(child.parent_donation_id, Some(ID));
        assert_eq!(child.donor.salutation, "Frau");
        assert!(child.personal.is_none() && child.comment.is_none());
        assert_eq!(child.tracking, v.donation.tracking);
    }

    #[test]
    fn booking_a_direct_debit_is_refused_because_it_is_complete_at_creation() {
        let v = given(DirectDebit);
        let err = book_payment(&v.payment, &booking("T1")).unwrap_err();
        assert_eq!(
            err,
            DomainError::NotBookable {
                method: DirectDebit
            }
        );
        assert!(v.payment.is_complete());
    }

    #[test]
    fn booking_without_a_transaction_id_is_refused() {
        let v = given(PayPal);
        assert_eq!(
            book_payment(&v.payment, &booking(" ")),
            Err(DomainError::MissingTransactionId)
        );
    }

    #[test]
    fn booking_a_credit_card_payment_with_another_amount_is_refused() {
        let v = given(CreditCard);
        let cmd = BookPayment {
            amount: Some(Money::eur(1)),
            ..booking("T1")
        };
        assert_eq!(
            book_payment(&v.payment, &cmd),
            Err(DomainError::AmountMismatch {
                expected: 1337,
                got: 1
            })
        );
    }

    #[test]
    fn booking_a_failed_payment_is_refused() {
        let mut v = given(PayPal);
        when!(v, fail_payment(&v.payment, "declined"));
        assert_eq!(v.payment.status, PaymentStatus::Failed);
        assert!(matches!(
            book_payment(&v.payment, &booking("T1")),
            Err(DomainError::WrongPaymentStatus { .. })
        ));
    }

    #[test]
    fn failing_a_failed_payment_is_a_no_op_and_a_booked_one_is_refused() {
        let mut v = given(PayPal);
        when!(v, fail_payment(&v.payment, "x"));
        assert_eq!(fail_payment(&v.payment, "x"), Ok(vec![]));
        let mut w = given(PayPal);
        when!(w, book_payment(&w.payment, &booking("T1")));
        assert!(fail_payment(&w.payment, "x").is_err());
        assert_eq!(
            fail_payment(&PaymentState::default(), "x"),
            Err(DomainError::UnknownPayment)
        );
    }

    // ---- deletion ----

    #[test]
    fn cancelling_a_direct_debit_donation_cancels_donation_and_payment() {
        let mut v = given(DirectDebit);
        let events = when!(v, cancel_by_donor(&v, "changed my mind"));
        assert_eq!(
            types(&events),
            [
                ("deletion-7", "DonationCancelled.v1"),
                ("payment-70", "PaymentCancelled.v1")
            ]
        );
        assert_eq!(v.deletion, DeletionState::CancelledByDonor);
        assert_eq!(v.legacy_status(), 'D');
    }

    #[test]
    fn cancelling_a_paypal_donation_is_refused() {
        let v = given(PayPal);
        let err = cancel_by_donor(&v, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "only direct debit and bank transfer payments can be cancelled, this one is PayPal"
        );
    }

    #[test]
    fn cancelling_a_credit_card_donation_names_the_method() {
        let err = cancel_by_donor(&given(CreditCard), "").unwrap_err();
        assert!(err.to_string().ends_with("this one is credit card"));
    }

    #[test]
    fn cancelling_twice_is_refused() {
        let mut v = given(BankTransfer);
        when!(v, cancel_by_donor(&v, ""));
        assert!(matches!(
            cancel_by_donor(&v, ""),
            Err(DomainError::Inactive { .. })
        ));
    }

    #[test]
    fn cancelling_an_unknown_donation_is_refused() {
        assert_eq!(
            cancel_by_donor(&DonationView::default(), ""),
            Err(DomainError::UnknownDonation)
        );
    }

    #[test]
    fn an_admin_can_delete_a_paypal_donation_without_touching_its_payment() {
        let mut v = given(PayPal);
        let events = when!(v, delete_by_admin(&v, "fraud"));
        assert_eq!(types(&events), [("deletion-7", "DonationDeleted.v1")]);
        assert_eq!(v.deletion, DeletionState::DeletedByAdmin);
        assert!(delete_by_admin(&v, "again").is_err());
    }

    #[test]
    fn restoring_a_cancelled_bank_transfer_restores_the_payment_status() {
        let mut v = given(BankTransfer);
        when!(v, cancel_by_donor(&v, ""));
        let events = when!(v, restore(&v, "mistake"));
        assert_eq!(events.len(), 2);
        assert_eq!(v.deletion, DeletionState::Active);
        assert_eq!(v.payment.status, PaymentStatus::Pending);
        assert_eq!(v.legacy_status(), 'Z');
    }

    #[test]
    fn restoring_an_active_or_scrubbed_donation_is_refused() {
        let mut v = given(DirectDebit);
        assert_eq!(restore(&v, ""), Err(DomainError::NotCancelledOrDeleted));
        when!(v, cancel_by_donor(&v, ""));
        v.apply("scrub-7", &scrubbed());
        assert!(matches!(restore(&v, ""), Err(DomainError::Scrubbed { .. })));
    }

    // ---- moderation ----

    #[test]
    fn a_manual_flag_opens_moderation_and_cannot_be_repeated() {
        let mut v = given(DirectDebit);
        when!(v, flag_manually(&v, "looks odd"));
        assert_eq!(v.legacy_status(), 'P');
        assert_eq!(
            flag_manually(&v, ""),
            Err(DomainError::AlreadyUnderModeration)
        );
    }

    #[test]
    fn approving_needs_open_reasons() {
        let mut v = given(DirectDebit);
        assert_eq!(approve(&v, false), Err(DomainError::NotUnderModeration));
        apply_all(
            &mut v,
            &raise_reasons(
                ID,
                &[ModerationReason::new(
                    ModerationIdentifier::AmountTooHigh,
                    "amount",
                )],
            ),
        );
        when!(v, approve(&v, true));
        assert!(v.moderation.approved_as_anonymous);
        assert_eq!(v.legacy_status(), 'N');
    }

    #[test]
    fn raising_no_reasons_appends_nothing() {
        assert!(raise_reasons(ID, &[]).is_empty());
    }

    // ---- comments ----

    fn comment(text: &str, is_public: bool) -> NewComment {
        NewComment {
            text: text.into(),
            is_public,
            display_name: "Ada".into(),
        }
    }

    fn strict() -> ModerationPolicy {
        ModerationPolicy {
            deny_words: vec!["badword".into()],
            ..Default::default()
        }
    }

    #[test]
    fn adding_a_public_comment_shows_it_publicly() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("Good luck", true)));
        let c = v.donation.comment.clone().unwrap();
        assert!(c.is_public);
        assert_eq!(c.public_text, "Good luck");
    }

    #[test]
    fn a_comment_failing_the_text_policy_is_forced_private_and_moderated() {
        let mut v = given(BankTransfer);
        let events = when!(v, add_comment(&v, &strict(), &comment("badword", true)));
        assert_eq!(
            types(&events),
            [
                ("donation-7", "CommentAdded.v1"),
                ("moderation-7", "ModerationReasonsRaised.v1")
            ]
        );
        let c = v.donation.comment.clone().unwrap();
        assert!(!c.is_public && c.public_text.is_empty());
        assert_eq!(c.private_text.as_deref(), Some("badword"));
        assert_eq!(v.legacy_status(), 'P');
        assert_eq!(
            publish_comment(&v, &strict()),
            Err(DomainError::CommentViolatesPolicy)
        );
    }

    #[test]
    fn a_donation_has_only_one_comment() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("one", false)));
        assert_eq!(
            add_comment(&v, &strict(), &comment("two", false)),
            Err(DomainError::CommentExists)
        );
    }

    #[test]
    fn commenting_on_a_cancelled_donation_is_refused() {
        let mut v = given(DirectDebit);
        when!(v, cancel_by_donor(&v, ""));
        assert!(matches!(
            add_comment(&v, &strict(), &comment("hi", true)),
            Err(DomainError::Inactive { .. })
        ));
    }

    #[test]
    fn empty_comments_and_comments_on_follow_ups_are_refused() {
        let v = given(PayPal);
        assert_eq!(
            add_comment(&v, &strict(), &comment("  ", true)),
            Err(DomainError::EmptyComment)
        );
        let mut child = DonationView::default();
        apply_all(
            &mut child,
            &follow_up_donation(
                &v.donation,
                FollowUpIds {
                    child_payment_id: 71,
                    child_donation_id: 8,
                },
                t0(),
            )
            .unwrap(),
        );
        assert_eq!(
            add_comment(&child, &strict(), &comment("hi", true)),
            Err(DomainError::CommentOnFollowUp)
        );
    }

    #[test]
    fn a_private_comment_is_published_and_retracted() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("Thanks", false)));
        when!(v, publish_comment(&v, &strict()));
        assert!(v.donation.comment.as_ref().unwrap().is_public);
        assert_eq!(publish_comment(&v, &strict()), Ok(vec![]));
        when!(v, retract_comment(&v, "asked by donor"));
        assert!(!v.donation.comment.as_ref().unwrap().is_public);
        assert_eq!(retract_comment(&v, ""), Ok(vec![]));
    }

    #[test]
    fn publishing_or_retracting_without_a_comment_is_refused() {
        let v = given(BankTransfer);
        assert_eq!(publish_comment(&v, &strict()), Err(DomainError::NoComment));
        assert_eq!(retract_comment(&v, ""), Err(DomainError::NoComment));
    }

    #[test]
    fn publishing_after_a_scrub_is_refused() {
        let mut v = given(BankTransfer);
        when!(v, add_comment(&v, &strict(), &comment("Thanks", false)));
        v.apply("scrub-7", &scrubbed());
        assert!(matches!(
            publish_comment(&v, &strict()),
            Err(DomainError::Scrubbed { .. })
        ));
    }

    // ---- donor ----

    fn new_donor() -> (ev::DonorPublic, PersonalData) {
        (
            ev::DonorPublic {
                kind: DonorKind::Person as i32,
                salutation: "Herr".into(),
                ..Default::default()
            },
            PersonalData {
                last_name: "Babbage".into(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn updating_the_donor_replaces_it() {
        let mut v = given(BankTransfer);
        let (d, p) = new_donor();
        when!(v, update_donor(&v, d, p));
        assert_eq!(v.donation.personal.as_ref().unwrap().last_name, "Babbage");
    }

    #[test]
    fn updating_the_donor_is_refused_when_exported_scrubbed_or_cancelled() {
        let (d, p) = new_donor();
        let mut exported = given(BankTransfer);
        when!(exported, mark_exported(&exported, "b1", t0()));
        assert!(matches!(
            update_donor(&exported, d.clone(), p.clone()),
            Err(DomainError::Exported { .. })
        ));
        let mut gone = given(BankTransfer);
        gone.apply("scrub-7", &scrubbed());
        assert!(matches!(
            update_donor(&gone, d.clone(), p.clone()),
            Err(DomainError::Scrubbed { .. })
        ));
        let mut cancelled = given(BankTransfer);
        when!(cancelled, cancel_by_donor(&cancelled, ""));
        assert!(matches!(
            update_donor(&cancelled, d, p),
            Err(DomainError::Inactive { .. })
        ));
    }

    // ---- export ----

    #[test]
    fn exporting_records_the_batch_once() {
        let mut v = given(DirectDebit);
        when!(v, mark_exported(&v, "batch-1", t0()));
        assert_eq!(v.export.batch_id.as_deref(), Some("batch-1"));
        assert_eq!(v.legacy_status(), 'N');
        assert_eq!(
            mark_exported(&v, "batch-2", t0()),
            Err(DomainError::AlreadyExported {
                batch_id: Some("batch-1".into())
            })
        );
    }

    #[test]
    fn exporting_is_refused_when_cancelled_moderated_scrubbed_or_without_batch() {
        let v = given(DirectDebit);
        assert_eq!(
            mark_exported(&v, "", t0()),
            Err(DomainError::MissingBatchId)
        );
        let mut c = v.clone();
        when!(c, cancel_by_donor(&c, ""));
        assert!(matches!(
            mark_exported(&c, "b", t0()),
            Err(DomainError::Inactive { .. })
        ));
        let mut m = v.clone();
        when!(m, flag_manually(&m, ""));
        assert!(matches!(
            mark_exported(&m, "b", t0()),
            Err(DomainError::UnderModeration { .. })
        ));
        let mut s = v;
        s.apply("scrub-7", &scrubbed());
        assert!(matches!(
            mark_exported(&s, "b", t0()),
            Err(DomainError::Scrubbed { .. })
        ));
    }

    // ---- scrub ----

    fn rule_of(events: &[StreamEvent]) -> i32 {
        match &events[0].event {
            DomainEvent::PersonalDataScrubbed(e) => e.rule,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_exported_donation_may_be_scrubbed() {
        let mut v = given(DirectDebit);
        when!(v, mark_exported(&v, "b", t0()));
        let events = when!(v, scrub(&v, t0(), &ScrubPolicy::default()));
        assert_eq!(rule_of(&events), ScrubRule::Exported as i32);
        assert!(v.is_scrubbed());
        assert_eq!(v.legacy_status(), 'N');
        assert_eq!(
            scrub(&v, t0(), &ScrubPolicy::default()),
            Err(DomainError::AlreadyScrubbed)
        );
    }

    #[test]
    fn a_cancelled_donation_may_be_scrubbed_even_while_moderated() {
        let mut v = given(BankTransfer);
        when!(v, flag_manually(&v, ""));
        when!(v, cancel_by_donor(&v, ""));
        let events = scrub(&v, t0(), &ScrubPolicy::default()).unwrap();
        assert_eq!(rule_of(&events), ScrubRule::CancelledOrDeleted as i32);
    }

    #[test]
    fn scrub_skips_pending_paypal_inside_grace_period() {
        let v = given(PayPal);
        let now = t0() + Duration::days(2) - Duration::seconds(1);
        assert_eq!(
            scrub(&v, now, &ScrubPolicy::default()),
            Err(DomainError::NotScrubbable)
        );
    }

    #[test]
    fn an_abandoned_external_payment_may_be_scrubbed_after_the_grace_period() {
        for m in [PayPal, CreditCard, Sofort] {
            let v = given(m);
            let events = scrub(&v, t0() + Duration::days(2), &ScrubPolicy::default()).unwrap();
            assert_eq!(rule_of(&events), ScrubRule::Abandoned as i32, "{m}");
        }
    }

    #[test]
    fn a_failed_paypal_payment_does_not_make_a_donation_abandoned() {
        let mut v = given(PayPal);
        when!(v, fail_payment(&v.payment, "declined"));
        assert_eq!(
            scrub(&v, t0() + Duration::days(30), &ScrubPolicy::default()),
            Err(DomainError::NotScrubbable)
        );
    }

    #[test]
    fn a_booked_external_or_a_direct_debit_donation_is_not_abandoned() {
        let mut booked_v = given(PayPal);
        when!(booked_v, book_payment(&booked_v.payment, &booking("T")));
        let later = t0() + Duration::days(30);
        for v in [booked_v, given(DirectDebit), given(BankTransfer)] {
            assert_eq!(
                scrub(&v, later, &ScrubPolicy::default()),
                Err(DomainError::NotScrubbable)
            );
        }
    }

    #[test]
    fn stale_moderation_is_scrubbed_only_when_the_rule_is_on() {
        let mut v = given(DirectDebit);
        when!(v, flag_manually(&v, ""));
        let later = t0() + Duration::days(40);
        assert_eq!(scrub_rule(&v, later, &ScrubPolicy::default()), None);
        let on = ScrubPolicy {
            stale_moderation_after: Some(Duration::days(30)),
            ..Default::default()
        };
        assert_eq!(scrub_rule(&v, later, &on), Some(ScrubRule::StaleModeration));
        assert_eq!(scrub_rule(&v, t0() + Duration::days(29), &on), None);
    }

    // ---- contribution tracking ----

    #[test]
    fn repeated_tracking_with_the_same_allocation_is_recorded() {
        let mut s = ContributionTrackingState::default();
        for _ in 0..2 {
            let decided = record_contribution_tracking(&s, 3, "alloc-a", Default::default());
            assert!(!decided.collision);
            assert_eq!(decided.events[0].stream, "contribution_tracking-3");
            for e in &decided.events {
                s.apply(&e.event);
            }
        }
        assert_eq!(s.records, 2);
    }

    #[test]
    fn tracking_from_a_second_allocation_of_the_same_id_is_recorded_as_a_collision() {
        let mut s = ContributionTrackingState::default();
        let banner = |b: &str| ContributionTrackingFields {
            banner: Some(b.into()),
            ..Default::default()
        };
        for e in record_contribution_tracking(&s, 3, "alloc-a", banner("B1")).events {
            s.apply(&e.event);
        }
        let decided = record_contribution_tracking(&s, 3, "alloc-b", banner("B2"));
        assert!(decided.collision);
        assert_eq!(decided.events.len(), 1);
        for e in &decided.events {
            s.apply(&e.event);
        }
        assert_eq!(s.fields.banner.as_deref(), Some("B1"));
        assert_eq!(s.collisions, 1);
    }

    #[test]
    fn the_first_contribution_link_wins() {
        let mut s = ContributionTrackingState::default();
        for e in link_contribution(&s, 3, 900).unwrap() {
            s.apply(&e.event);
        }
        assert_eq!(link_contribution(&s, 3, 900), Ok(vec![]));
        assert_eq!(
            link_contribution(&s, 3, 901),
            Err(DomainError::ContributionAlreadyLinked {
                contribution_tracking_id: 3,
                existing: 900,
                attempted: 901
            })
        );
    }
}
