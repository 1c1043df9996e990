//! `DonationView`: the six donation-related folds side by side, with the derived legacy status
//! letter and the donor as it may be displayed.
//!
//! The view never lets one stream influence how another is folded, so any interleaving of the
//! streams folds to the same view (a property test below checks this).
//!
//! Scrubbing and the legacy letter: the legacy system froze a scrubbed donation's letter,
//! because its scrub erased the `ext_payment_id` the letter was computed from. Here scrubbing
//! only destroys the personal-data key; payment state (status, valuation date) lives in its
//! own stream and is not erased, so recomputing the letter after a scrub gives the letter the
//! donation had. One deliberate difference: a provider booking that arrives *after* a scrub
//! moves `X` to `B` here, where the legacy letter stayed `X`; the ledger reports the truth.

use crate::domain::deletion::DeletionState;
use crate::domain::donation::{DonationState, DonorKind, PersonalData};
use crate::domain::export::ExportState;
use crate::domain::moderation::ModerationState;
use crate::domain::payment::{PaymentState, PaymentStatus};
use crate::domain::scrub::ScrubState;
use crate::domain::streams::category;
use crate::domain::types::PaymentMethod;
use crate::domain::DomainEvent;

/// The letter written when the payment method is unknown (legacy row 10 threw an exception).
pub const UNKNOWN_LEGACY_STATUS: char = '?';

/// One donation seen through all of its streams.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DonationView {
    /// `donation-{id}`.
    pub donation: DonationState,
    /// `payment-{payment id}`.
    pub payment: PaymentState,
    /// `moderation-{id}`.
    pub moderation: ModerationState,
    /// `deletion-{id}`.
    pub deletion: DeletionState,
    /// `export-{id}`.
    pub export: ExportState,
    /// `scrub-{id}`.
    pub scrub: ScrubState,
}

/// How the donor may be shown. Anonymous (the donor gave no data) and scrubbed (we removed
/// it) stay distinguishable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DonorDisplay<'a> {
    /// The donor chose to give no data, or a moderator approved the donation as anonymous.
    Anonymous,
    /// The personal data was scrubbed (key destroyed); salutation and original kind remain.
    Scrubbed {
        /// The original donor kind.
        kind: DonorKind,
        /// The salutation.
        salutation: &'a str,
    },
    /// Personal data is readable.
    Known {
        /// The donor kind.
        kind: DonorKind,
        /// The salutation.
        salutation: &'a str,
        /// Name, address, email.
        personal: &'a PersonalData,
    },
    /// Personal data exists but is not readable here: only sealed (not decrypted for this
    /// reader), or a recurring follow-up donor that carries salutation and kind only.
    Withheld {
        /// The donor kind.
        kind: DonorKind,
        /// The salutation.
        salutation: &'a str,
    },
}

impl DonorDisplay<'_> {
    /// Stable English name: `anonymous`, `scrubbed`, `known`, `withheld`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Scrubbed { .. } => "scrubbed",
            Self::Known { .. } => "known",
            Self::Withheld { .. } => "withheld",
        }
    }
}

impl DonationView {
    /// Folds `(stream name, event)` pairs in any order of the streams.
    pub fn fold<'a>(events: impl IntoIterator<Item = (&'a str, &'a DomainEvent)>) -> Self {
        let mut v = Self::default();
        for (stream, e) in events {
            v.apply(stream, e);
        }
        v
    }

    /// Applies an event read from `stream` (a stream name such as `payment-5`, or just its
    /// category). Routes by category; other categories are ignored. Never fails.
    pub fn apply(&mut self, stream: &str, event: &DomainEvent) {
        let cat = stream.split_once('-').map_or(stream, |(c, _)| c);
        match cat {
            category::DONATION => self.donation.apply(event),
            category::PAYMENT => self.payment.apply(event),
            category::MODERATION => self.moderation.apply(event),
            category::DELETION => self.deletion.apply(event),
            category::EXPORT => self.export.apply(event),
            category::SCRUB => self.scrub.apply(event),
            _ => {}
        }
    }

    /// The donation id, once created.
    pub fn id(&self) -> Option<u64> {
        self.donation.id
    }

    /// The payment method: the payment stream's, else the donation's.
    pub fn payment_method(&self) -> Option<PaymentMethod> {
        self.payment.method.or(self.donation.payment_method)
    }

    /// Whether the donation is cancelled or deleted, or its payment cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.deletion.is_cancelled_or_deleted() || self.payment.status == PaymentStatus::Cancelled
    }

    /// Whether the personal data was scrubbed.
    pub fn is_scrubbed(&self) -> bool {
        self.scrub.scrubbed
    }

    /// Whether the donation was exported.
    pub fn is_exported(&self) -> bool {
        self.export.exported
    }

    /// The legacy status letter, by the derivation table at the end of `domain/wmde.md`;
    /// `None` for row 10 (unknown payment method).
    pub fn try_legacy_status(&self) -> Option<char> {
        // Row 1: cancelled or deleted. A cancelled payment counts too, in case only one of
        // the two appends of a cancellation has landed yet.
        if self.is_cancelled() {
            return Some('D');
        }
        // Row 2: open moderation reasons.
        if self.moderation.is_open() {
            return Some('P');
        }
        // Row 3 (scrubbed keeps its letter) needs no branch: see the module docs.
        let booked = self.payment.was_booked();
        Some(match self.payment_method()? {
            PaymentMethod::DirectDebit => 'N',
            PaymentMethod::BankTransfer => 'Z',
            PaymentMethod::Sofort if booked => 'Z',
            PaymentMethod::CreditCard | PaymentMethod::PayPal if booked => 'B',
            PaymentMethod::Sofort | PaymentMethod::CreditCard | PaymentMethod::PayPal => 'X',
        })
    }

    /// The legacy status letter; [`UNKNOWN_LEGACY_STATUS`] when the payment method is unknown.
    pub fn legacy_status(&self) -> char {
        self.try_legacy_status().unwrap_or(UNKNOWN_LEGACY_STATUS)
    }

    /// The donor as it may be shown.
    pub fn donor_display(&self) -> DonorDisplay<'_> {
        let d = &self.donation.donor;
        if d.kind == DonorKind::Anonymous || self.moderation.approved_as_anonymous {
            return DonorDisplay::Anonymous;
        }
        if self.is_scrubbed() {
            return DonorDisplay::Scrubbed {
                kind: d.kind,
                salutation: &d.salutation,
            };
        }
        match &self.donation.personal {
            Some(personal) => DonorDisplay::Known {
                kind: d.kind,
                salutation: &d.salutation,
                personal,
            },
            None => DonorDisplay::Withheld {
                kind: d.kind,
                salutation: &d.salutation,
            },
        }
    }
}
