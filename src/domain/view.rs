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
use crate::domain::streams::Category;
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
        match Category::of(stream) {
            Some(Category::Donation) => self.donation.apply(event),
            Some(Category::Payment) => self.payment.apply(event),
            Some(Category::Moderation) => self.moderation.apply(event),
            Some(Category::Deletion) => self.deletion.apply(event),
            Some(Category::Export) => self.export.apply(event),
            Some(Category::Scrub) => self.scrub.apply(event),
            Some(Category::ContributionTracking) | None => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::*;
    use crate::domain::moderation::ModerationIdentifier;
    use crate::domain::streams;
    use crate::proto::events as ev;
    use PaymentMethod::*;

    fn with(mut v: DonationView, stream: String, e: DomainEvent) -> DonationView {
        v.apply(&stream, &e);
        v
    }

    fn cancelled(v: DonationView) -> DonationView {
        with(
            v,
            streams::deletion(ID),
            ev::DonationCancelled::default().into(),
        )
    }

    fn moderated(v: DonationView) -> DonationView {
        with(
            v,
            streams::moderation(ID),
            raised(ModerationIdentifier::AmountTooHigh, "amount"),
        )
    }

    fn scrub(v: DonationView) -> DonationView {
        with(v, streams::scrub(ID), scrubbed())
    }

    fn book(v: DonationView) -> DonationView {
        with(v, streams::payment(PAYMENT_ID), booked("T-1"))
    }

    fn base(m: PaymentMethod) -> DonationView {
        view(m, DonorKind::Person, 0)
    }

    /// Every (method, booked) combination with its row 4–9 letter.
    fn payment_rows() -> Vec<(DonationView, char)> {
        vec![
            (base(DirectDebit), 'N'),
            (base(BankTransfer), 'Z'),
            (base(Sofort), 'X'),
            (book(base(Sofort)), 'Z'),
            (book(base(CreditCard)), 'B'),
            (book(base(PayPal)), 'B'),
            (base(CreditCard), 'X'),
            (base(PayPal), 'X'),
        ]
    }

    #[test]
    fn every_row_of_the_legacy_status_table_is_derived() {
        // Rows 4–9: by payment.
        for (v, letter) in payment_rows() {
            assert_eq!(v.legacy_status(), letter, "{:?}", v.payment_method());
            // Row 1: cancelled wins over everything, moderation and scrub included.
            assert_eq!(cancelled(v.clone()).legacy_status(), 'D');
            assert_eq!(scrub(moderated(cancelled(v.clone()))).legacy_status(), 'D');
            // Row 2: open moderation reasons, scrubbed or not.
            assert_eq!(moderated(v.clone()).legacy_status(), 'P');
            assert_eq!(scrub(moderated(v.clone())).legacy_status(), 'P');
            // Row 3: a scrubbed donation keeps the letter it had.
            assert_eq!(scrub(v.clone()).legacy_status(), letter);
        }
        // Row 10: unknown payment method.
        let unknown = DonationView::default();
        assert_eq!(unknown.try_legacy_status(), None);
        assert_eq!(unknown.legacy_status(), UNKNOWN_LEGACY_STATUS);
    }

    #[test]
    fn an_admin_deletion_also_reads_as_d() {
        let v = with(
            base(PayPal),
            streams::deletion(ID),
            ev::DonationDeleted::default().into(),
        );
        assert_eq!(v.legacy_status(), 'D');
    }

    #[test]
    fn scrubbing_does_not_change_the_letter() {
        for (v, letter) in payment_rows() {
            let before = v.legacy_status();
            let after = scrub(v).legacy_status();
            assert_eq!((before, after), (letter, letter));
        }
    }

    #[test]
    fn approval_turns_p_into_the_payment_letter() {
        let v = with(
            moderated(base(DirectDebit)),
            streams::moderation(ID),
            ev::ModerationApproved::default().into(),
        );
        assert_eq!(v.legacy_status(), 'N');
    }

    #[test]
    fn restoring_turns_d_back_into_n_or_into_p_while_moderated() {
        let restored = |v| {
            with(
                v,
                streams::deletion(ID),
                ev::DonationRestored::default().into(),
            )
        };
        assert_eq!(restored(cancelled(base(DirectDebit))).legacy_status(), 'N');
        assert_eq!(
            restored(cancelled(moderated(base(BankTransfer)))).legacy_status(),
            'P'
        );
    }

    #[test]
    fn a_cancelled_payment_alone_already_reads_as_d() {
        let v = with(
            base(DirectDebit),
            streams::payment(PAYMENT_ID),
            ev::PaymentCancelled::default().into(),
        );
        assert_eq!(v.legacy_status(), 'D');
    }

    #[test]
    fn a_refunded_external_payment_keeps_its_booked_letter() {
        let v = with(
            book(base(PayPal)),
            streams::payment(PAYMENT_ID),
            ev::PaymentRefunded::default().into(),
        );
        assert_eq!(v.legacy_status(), 'B');
    }

    #[test]
    fn anonymous_and_scrubbed_donors_stay_distinguishable() {
        let anonymous = view(BankTransfer, DonorKind::Anonymous, 0);
        assert_eq!(anonymous.donor_display(), DonorDisplay::Anonymous);
        assert!(!anonymous.is_scrubbed());

        let known = base(BankTransfer);
        assert_eq!(known.donor_display().as_str(), "known");

        let gone = scrub(known);
        assert!(gone.is_scrubbed());
        assert_eq!(
            gone.donor_display(),
            DonorDisplay::Scrubbed {
                kind: DonorKind::Person,
                salutation: "Frau"
            }
        );
        assert_ne!(gone.donor_display(), anonymous.donor_display());
    }

    #[test]
    fn a_donor_approved_as_anonymous_is_shown_anonymous() {
        let v = with(
            moderated(base(DirectDebit)),
            streams::moderation(ID),
            ev::ModerationApproved { as_anonymous: true }.into(),
        );
        assert_eq!(v.donor_display(), DonorDisplay::Anonymous);
    }

    #[test]
    fn sealed_personal_data_is_withheld_not_scrubbed() {
        let mut v = base(DirectDebit);
        v.donation.personal = None;
        assert_eq!(v.donor_display().as_str(), "withheld");
    }

    #[test]
    fn events_are_routed_by_stream_name_or_bare_category() {
        let mut v = DonationView::default();
        v.apply("export", &ev::DonationExported::default().into());
        v.apply("scrub-7", &scrubbed());
        v.apply("unknown-7", &ev::DonationCancelled::default().into());
        v.apply("nonsense", &ev::DonationCancelled::default().into());
        assert!(v.is_exported() && v.is_scrubbed());
        assert_eq!(v.deletion, DeletionState::Active);
    }

    mod interleaving {
        use super::*;
        use proptest::prelude::*;

        type Streams = Vec<(String, Vec<DomainEvent>)>;

        fn method() -> impl Strategy<Value = PaymentMethod> {
            prop::sample::select(PaymentMethod::ALL.to_vec())
        }

        fn kind() -> impl Strategy<Value = DonorKind> {
            prop::sample::select(vec![
                DonorKind::Person,
                DonorKind::Company,
                DonorKind::EmailOnly,
                DonorKind::Anonymous,
            ])
        }

        fn donation_stream() -> impl Strategy<Value = Vec<DomainEvent>> {
            (
                method(),
                kind(),
                prop::sample::select(vec![0u32, 1, 3, 6, 12]),
                prop::collection::vec(0u8..4, 0..5),
            )
                .prop_map(|(m, k, interval, ops)| {
                    let mut events = vec![created(m, k, interval)];
                    for op in ops {
                        events.push(match op {
                            0 => ev::DonorUpdated {
                                donor: Some(ev::DonorPublic {
                                    kind: DonorKind::Company as i32,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }
                            .into(),
                            1 => ev::CommentAdded {
                                comment: Some(ev::Comment {
                                    public_text: "thanks".into(),
                                    ..Default::default()
                                }),
                            }
                            .into(),
                            2 => ev::CommentPublished {
                                public_text: "thanks".into(),
                                display_name: "A".into(),
                            }
                            .into(),
                            _ => ev::CommentRetracted::default().into(),
                        });
                    }
                    events
                })
        }

        fn payment_stream() -> impl Strategy<Value = Vec<DomainEvent>> {
            (method(), prop::collection::vec(0u8..7, 0..6)).prop_map(|(m, ops)| {
                let mut events = vec![initiated(m, 1)];
                for (i, op) in ops.into_iter().enumerate() {
                    events.push(match op {
                        0 => booked(&format!("T{i}")),
                        1 => ev::PaymentFailed::default().into(),
                        2 => ev::PaymentCancelled::default().into(),
                        3 => ev::PaymentRestored::default().into(),
                        4 => ev::FollowUpPaymentBooked {
                            child_payment_id: 100 + i as u64,
                            ..Default::default()
                        }
                        .into(),
                        5 => ev::PaymentRefunded::default().into(),
                        _ => ev::ChargebackReceived::default().into(),
                    });
                }
                events
            })
        }

        fn moderation_stream() -> impl Strategy<Value = Vec<DomainEvent>> {
            prop::collection::vec(0u8..5, 0..5).prop_map(|ops| {
                ops.into_iter()
                    .map(|op| match op {
                        0 => raised(ModerationIdentifier::AmountTooHigh, "amount"),
                        1 => raised(ModerationIdentifier::EmailBlocked, "email"),
                        2 => ev::ModerationApproved {
                            as_anonymous: false,
                        }
                        .into(),
                        3 => ev::ModerationApproved { as_anonymous: true }.into(),
                        _ => ev::ManuallyFlagged::default().into(),
                    })
                    .collect()
            })
        }

        fn deletion_stream() -> impl Strategy<Value = Vec<DomainEvent>> {
            prop::collection::vec(0u8..3, 0..4).prop_map(|ops| {
                ops.into_iter()
                    .map(|op| match op {
                        0 => ev::DonationCancelled::default().into(),
                        1 => ev::DonationDeleted::default().into(),
                        _ => ev::DonationRestored::default().into(),
                    })
                    .collect()
            })
        }

        fn once(e: DomainEvent) -> impl Strategy<Value = Vec<DomainEvent>> {
            prop::collection::vec(Just(e), 0..2)
        }

        fn history() -> impl Strategy<Value = Streams> {
            (
                donation_stream(),
                payment_stream(),
                moderation_stream(),
                deletion_stream(),
                once(
                    ev::DonationExported {
                        batch_id: "b".into(),
                        exported_at: None,
                    }
                    .into(),
                ),
                once(scrubbed()),
            )
                .prop_map(|(d, p, m, del, ex, s)| {
                    vec![
                        (streams::donation(ID), d),
                        (streams::payment(PAYMENT_ID), p),
                        (streams::moderation(ID), m),
                        (streams::deletion(ID), del),
                        (streams::export(ID), ex),
                        (streams::scrub(ID), s),
                    ]
                })
        }

        /// Merges the streams, keeping each stream's order, choosing the next stream by `picks`.
        fn interleave(streams: &Streams, picks: &[u16]) -> Vec<(String, DomainEvent)> {
            let mut cursors = vec![0usize; streams.len()];
            let total: usize = streams.iter().map(|(_, e)| e.len()).sum();
            let mut out = Vec::with_capacity(total);
            for i in 0..total {
                let open: Vec<usize> = (0..streams.len())
                    .filter(|&s| cursors[s] < streams[s].1.len())
                    .collect();
                let s = open[usize::from(picks.get(i).copied().unwrap_or(0)) % open.len()];
                out.push((streams[s].0.clone(), streams[s].1[cursors[s]].clone()));
                cursors[s] += 1;
            }
            out
        }

        proptest! {
            #[test]
            fn any_interleaving_folds_to_the_same_view_as_stream_by_stream(
                streams in history(),
                picks in prop::collection::vec(any::<u16>(), 0..40),
            ) {
                let stream_by_stream = DonationView::fold(
                    streams.iter().flat_map(|(s, es)| es.iter().map(move |e| (s.as_str(), e))),
                );
                let mixed = interleave(&streams, &picks);
                let interleaved = DonationView::fold(mixed.iter().map(|(s, e)| (s.as_str(), e)));
                prop_assert_eq!(&interleaved, &stream_by_stream);
                prop_assert_eq!(interleaved.legacy_status(), stream_by_stream.legacy_status());

                let reversed = DonationView::fold(
                    streams.iter().rev().flat_map(|(s, es)| es.iter().map(move |e| (s.as_str(), e))),
                );
                prop_assert_eq!(&reversed, &stream_by_stream);
            }

            #[test]
            fn an_event_delivered_to_a_stream_of_another_category_changes_nothing(
                streams in history(),
            ) {
                let mut v = DonationView::default();
                for (home, events) in &streams {
                    for e in events {
                        for (target, _) in streams.iter().filter(|(t, _)| t != home) {
                            let before = v.clone();
                            v.apply(target, e);
                            prop_assert_eq!(&v, &before, "{} delivered to {}", e.event_type(), target);
                        }
                        v.apply(home, e);
                    }
                }
                let direct = DonationView::fold(
                    streams.iter().flat_map(|(s, es)| es.iter().map(move |e| (s.as_str(), e))),
                );
                prop_assert_eq!(&v, &direct);
                prop_assert!("DPNZBX".contains(v.legacy_status()), "{}", v.legacy_status());
            }
        }
    }
}
