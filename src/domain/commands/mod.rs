//! Decisions (the command side): pure functions from fold state to the events to append,
//! each tagged with its target stream, or a `DomainError` naming the broken rule. One file per
//! command family; a new bounded context (memberships) adds its own files.
//!
//! Decisions never read a clock: callers pass `now`. Events carry personal data in clear
//! (`personal`, `provider`, `private_text`); the privacy layer seals it before appending.
//!
//! Where each rule lives:
//! * new donations: [`create_donation`] (`donation.rs`);
//! * payments: [`book_payment`], [`fail_payment`], [`refund_payment`], [`report_chargeback`],
//!   [`follow_up_donation`] (`payment.rs`);
//! * deletion: [`cancel_by_donor`], [`delete_by_admin`], [`restore`] (`deletion.rs`);
//! * moderation: [`flag_manually`], [`approve`], [`raise_reasons`] (`moderation.rs`);
//! * comments: [`add_comment`], [`publish_comment`], [`retract_comment`] and the comment
//!   policy (`comment.rs`);
//! * donor: [`update_donor`] (`donor.rs`); export: [`mark_exported`] (`export.rs`);
//!   scrub: [`scrub`], [`scrub_rule`] (`scrub.rs`);
//! * contribution tracking: [`record_contribution_tracking`], [`link_contribution`]
//!   (`contribution_tracking.rs`).

use crate::domain::error::DomainError;
use crate::domain::types::StreamEvent;
use crate::domain::view::DonationView;

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

/// Decides on the current view, then applies the accepted events to it.
#[cfg(test)]
macro_rules! when {
    ($v:ident, $decision:expr) => {{
        let events = $decision.expect("decision accepted");
        apply_all(&mut $v, &events);
        events
    }};
}

mod comment;
mod contribution_tracking;
mod deletion;
mod donation;
mod donor;
mod export;
mod moderation;
mod payment;
mod scrub;

pub use comment::{add_comment, publish_comment, retract_comment, NewComment};
pub use contribution_tracking::{
    link_contribution, record_contribution_tracking, TrackingDecision,
};
pub use deletion::{cancel_by_donor, delete_by_admin, restore};
pub use donation::{
    create_donation, CreatedDonation, DonationIds, NewDonation, NewDonor, NewPayment,
};
pub use donor::update_donor;
pub use export::mark_exported;
pub use moderation::{approve, flag_manually, raise_reasons};
pub use payment::{
    book_payment, fail_payment, follow_up_donation, refund_payment, report_chargeback,
    takes_follow_up, BookPayment, FollowUpIds,
};
pub use scrub::{scrub, scrub_rule, ScrubPolicy};

/// Givens shared by the unit tests of every command family.
#[cfg(test)]
mod testing {
    pub use super::*;
    pub use crate::domain::deletion::DeletionState;
    pub use crate::domain::donation::DonorKind;
    pub use crate::domain::fixtures::*;
    pub use crate::domain::moderation::ModerationIdentifier;
    pub use crate::domain::types::{PaymentMethod, PaymentMethod::*};
    pub use crate::domain::DomainEvent;
    pub use crate::proto::events as ev;

    /// A donation by a person paying with `method`, one-time.
    pub fn given(method: PaymentMethod) -> DonationView {
        view(method, DonorKind::Person, 0)
    }

    /// The (stream, event type) of each event.
    pub fn types(events: &[StreamEvent]) -> Vec<(&str, &str)> {
        events
            .iter()
            .map(|e| (e.stream.as_str(), e.event.event_type()))
            .collect()
    }

    /// A provider's booking with transaction id `txn`, with ids for a follow-up.
    pub fn booking(txn: &str) -> BookPayment {
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
}
