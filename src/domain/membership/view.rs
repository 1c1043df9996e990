//! `MembershipView`: an application folded from its five streams, each concern in its own
//! fold, and the legacy `request.status` code derived from them (never stored).

use super::{ApplicationState, CancellationState, MembershipCategory};
use crate::domain::export::ExportState;
use crate::domain::moderation::ModerationState;
use crate::domain::scrub::ScrubState;
use crate::domain::DomainEvent;
use crate::proto::events as ev;

/// The legacy `request.status` codes (`domain/wmde-memberships.md` §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyRequestStatus {
    /// `1`: the payment was complete, nothing else applies.
    Confirmed,
    /// `0`: neither confirmed, moderated nor cancelled.
    Neutral,
    /// `-1`: cancelled.
    Cancelled,
    /// `-2`: moderated.
    Moderation,
    /// `-3`: moderated and cancelled.
    CancelledModeration,
}

impl LegacyRequestStatus {
    /// The smallint the legacy table stores.
    pub const fn code(self) -> i16 {
        match self {
            Self::Confirmed => 1,
            Self::Neutral => 0,
            Self::Cancelled => -1,
            Self::Moderation => -2,
            Self::CancelledModeration => -3,
        }
    }
}

/// One application across its streams. Each concern is its own fold: none overwrites another,
/// so an application can be cancelled and moderated, or moderated and confirmed, at once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MembershipView {
    /// `membership-{id}`.
    pub application: ApplicationState,
    /// `membership_moderation-{id}`.
    pub moderation: ModerationState,
    /// `membership_cancellation-{id}`.
    pub cancellation: CancellationState,
    /// `membership_export-{id}`.
    pub export: ExportState,
    /// `membership_scrub-{id}`.
    pub scrub: ScrubState,
}

impl MembershipView {
    /// Folds `(stream name, event)` pairs in any order of the streams.
    pub fn fold<'a>(events: impl IntoIterator<Item = (&'a str, &'a DomainEvent)>) -> Self {
        let mut v = Self::default();
        for (stream, e) in events {
            v.apply(stream, e);
        }
        v
    }

    /// Applies an event read from `stream` (a stream name or just its category). Routes by
    /// category; streams of other contexts are ignored. Never fails.
    pub fn apply(&mut self, stream: &str, event: &DomainEvent) {
        match MembershipCategory::of(stream) {
            Some(MembershipCategory::Application) => self.application.apply(event),
            Some(MembershipCategory::Moderation) => self.moderation.apply(event),
            Some(MembershipCategory::Cancellation) => self.cancellation.apply(event),
            Some(MembershipCategory::Export) => self.export.apply(event),
            Some(MembershipCategory::Scrub) => self.scrub.apply(event),
            None => {}
        }
    }

    /// The membership id, once applied.
    pub fn id(&self) -> Option<u64> {
        self.application.id
    }

    /// Whether moderation reasons are open.
    pub fn is_moderated(&self) -> bool {
        self.moderation.is_open()
    }

    /// Whether cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// Whether the payment was complete at application. Moderation and cancellation do not
    /// change it (the legacy column lost it while either applied).
    pub fn is_confirmed(&self) -> bool {
        self.application.confirmed
    }

    /// Whether exported.
    pub fn is_exported(&self) -> bool {
        self.export.exported
    }

    /// Whether the personal data was scrubbed.
    pub fn is_scrubbed(&self) -> bool {
        self.scrub.scrubbed
    }

    /// The applicant's personal data when readable and not scrubbed.
    pub fn applicant(&self) -> Option<&ev::ApplicantData> {
        if self.is_scrubbed() {
            None
        } else {
            self.application.applicant.as_ref()
        }
    }

    /// The legacy status, by the legacy precedence: moderated and cancelled, moderated,
    /// cancelled, confirmed, else neutral. Export and scrub are not inputs.
    pub fn legacy_status(&self) -> LegacyRequestStatus {
        match (self.is_moderated(), self.is_cancelled()) {
            (true, true) => LegacyRequestStatus::CancelledModeration,
            (true, false) => LegacyRequestStatus::Moderation,
            (false, true) => LegacyRequestStatus::Cancelled,
            (false, false) if self.is_confirmed() => LegacyRequestStatus::Confirmed,
            (false, false) => LegacyRequestStatus::Neutral,
        }
    }
}

/// Test-only builders of membership events and histories.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::domain::fixtures::t0;
    use crate::domain::membership::{ApplicantKind, MembershipType};
    use crate::domain::moderation::{ModerationIdentifier, ModerationReason};
    use crate::domain::types::{to_timestamp, PaymentMethod};

    /// Membership id used by the fixtures.
    pub const MID: u64 = 11;

    /// `MembershipApplied` of a person, sustaining, 10 EUR a quarter.
    pub fn applied(method: PaymentMethod, confirmed: bool) -> DomainEvent {
        ev::MembershipApplied {
            membership_id: MID,
            created_at: Some(to_timestamp(t0())),
            applicant_kind: ApplicantKind::Person as i32,
            applicant: Some(ev::ApplicantData {
                salutation: "Frau".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                street: "Main 1".into(),
                postcode: "10117".into(),
                city: "Berlin".into(),
                country: "DE".into(),
                email: "ada@example.org".into(),
                ..Default::default()
            }),
            applicant_sealed: None,
            membership_type: MembershipType::Sustaining as i32,
            fee: Some(ev::Money {
                cents: 1000,
                currency: "EUR".into(),
            }),
            interval_months: 3,
            payment_id: 110,
            payment_method: method.to_proto(),
            bank: None,
            bank_sealed: None,
            confirmed,
            tracking: Some(ev::MembershipTracking {
                campaign: "spring".into(),
                keyword: "banner".into(),
            }),
            incentives: vec!["tote_bag".into()],
            donation_receipt: Some(true),
        }
        .into()
    }

    /// `(stream, event)` on the application stream.
    pub fn on(category: MembershipCategory, event: DomainEvent) -> (String, DomainEvent) {
        (category.stream(MID), event)
    }

    /// A confirmed direct-debit application.
    pub fn confirmed_application() -> (String, DomainEvent) {
        on(
            MembershipCategory::Application,
            applied(PaymentMethod::DirectDebit, true),
        )
    }

    /// An application whose payment was not complete (an imported legacy row, status 0).
    pub fn unconfirmed_application() -> (String, DomainEvent) {
        on(
            MembershipCategory::Application,
            applied(PaymentMethod::DirectDebit, false),
        )
    }

    /// `MEMBERSHIP_FEE_TOO_HIGH` raised.
    pub fn fee_too_high() -> (String, DomainEvent) {
        on(
            MembershipCategory::Moderation,
            ev::ModerationReasonsRaised {
                reasons: vec![ModerationReason::new(
                    ModerationIdentifier::MembershipFeeTooHigh,
                    "amount",
                )
                .to_proto()],
            }
            .into(),
        )
    }

    /// A manual flag.
    pub fn flagged() -> (String, DomainEvent) {
        on(
            MembershipCategory::Moderation,
            ev::ManuallyFlagged {
                note: "check".into(),
            }
            .into(),
        )
    }

    /// An approval.
    pub fn approved() -> (String, DomainEvent) {
        on(
            MembershipCategory::Moderation,
            ev::ModerationApproved::default().into(),
        )
    }

    /// A cancellation.
    pub fn cancelled() -> (String, DomainEvent) {
        on(
            MembershipCategory::Cancellation,
            ev::MembershipCancelled {
                reason: "moved away".into(),
            }
            .into(),
        )
    }

    /// A restoration.
    pub fn restored() -> (String, DomainEvent) {
        on(
            MembershipCategory::Cancellation,
            ev::MembershipRestored {
                reason: "mistake".into(),
            }
            .into(),
        )
    }

    /// An export in batch `b1`.
    pub fn exported() -> (String, DomainEvent) {
        on(
            MembershipCategory::Export,
            ev::MembershipExported {
                batch_id: "b1".into(),
                exported_at: Some(to_timestamp(t0())),
            }
            .into(),
        )
    }

    /// A scrub by the export rule.
    pub fn scrubbed() -> (String, DomainEvent) {
        on(
            MembershipCategory::Scrub,
            ev::PersonalDataScrubbed {
                rule: ev::ScrubRule::Exported as i32,
                scrubbed_at: Some(to_timestamp(t0())),
            }
            .into(),
        )
    }

    /// The view of a history.
    pub fn given(history: &[(String, DomainEvent)]) -> MembershipView {
        MembershipView::fold(history.iter().map(|(s, e)| (s.as_str(), e)))
    }

    /// The view after one more event.
    pub fn when(mut view: MembershipView, event: (String, DomainEvent)) -> MembershipView {
        view.apply(&event.0, &event.1);
        view
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::LegacyRequestStatus as S;
    use crate::domain::membership::CancellationState;
    use crate::domain::moderation::{ModerationIdentifier, ModerationStatus};

    #[test]
    fn given_a_confirmed_application_then_it_is_confirmed_and_nothing_else() {
        let v = given(&[confirmed_application()]);
        assert!(v.is_confirmed());
        assert!(!v.is_moderated() && !v.is_cancelled() && !v.is_exported() && !v.is_scrubbed());
        assert_eq!(v.legacy_status(), S::Confirmed);
        assert_eq!(v.legacy_status().code(), 1);
    }

    #[test]
    fn given_an_unconfirmed_application_then_its_legacy_status_is_neutral() {
        let v = given(&[unconfirmed_application()]);
        assert_eq!(v.legacy_status(), S::Neutral);
        assert_eq!(v.legacy_status().code(), 0);
    }

    #[test]
    fn given_a_confirmed_application_when_the_fee_is_too_high_then_it_is_moderated_and_still_confirmed(
    ) {
        let v = when(given(&[confirmed_application()]), fee_too_high());
        assert!(v.is_moderated());
        assert!(
            v.is_confirmed(),
            "the legacy status lost this; the fold keeps it"
        );
        let reason = v.moderation.open_reasons.iter().next().unwrap();
        assert_eq!(
            reason.identifier,
            ModerationIdentifier::MembershipFeeTooHigh
        );
        assert_eq!(reason.identifier_name(), "MEMBERSHIP_FEE_TOO_HIGH");
        assert_eq!(v.legacy_status().code(), -2);
    }

    #[test]
    fn given_a_moderated_application_when_approved_then_it_is_confirmed_again() {
        let v = when(
            given(&[confirmed_application(), fee_too_high()]),
            approved(),
        );
        assert!(!v.is_moderated());
        assert_eq!(v.moderation.status(), ModerationStatus::Approved);
        assert_eq!(v.legacy_status(), S::Confirmed);
    }

    #[test]
    fn given_an_application_when_flagged_then_it_is_moderated_by_an_admin() {
        let v = when(given(&[confirmed_application()]), flagged());
        let reason = v.moderation.open_reasons.iter().next().unwrap();
        assert_eq!(
            reason.identifier,
            ModerationIdentifier::ManuallyFlaggedByAdmin
        );
        assert_eq!(v.legacy_status(), S::Moderation);
    }

    #[test]
    fn given_an_application_when_cancelled_then_it_is_cancelled_and_still_confirmed() {
        let v = when(given(&[confirmed_application()]), cancelled());
        assert_eq!(v.cancellation, CancellationState::Cancelled);
        assert!(v.is_confirmed());
        assert_eq!(v.legacy_status().code(), -1);
    }

    #[test]
    fn given_a_cancelled_application_when_restored_then_it_is_active_and_confirmed() {
        let v = when(given(&[confirmed_application(), cancelled()]), restored());
        assert!(!v.is_cancelled());
        assert_eq!(v.legacy_status(), S::Confirmed);
    }

    #[test]
    fn given_a_moderated_application_when_cancelled_then_it_is_cancelled_and_moderated_at_once() {
        let v = when(
            given(&[confirmed_application(), fee_too_high()]),
            cancelled(),
        );
        assert!(v.is_cancelled() && v.is_moderated() && v.is_confirmed());
        assert_eq!(v.legacy_status(), S::CancelledModeration);
        assert_eq!(v.legacy_status().code(), -3);
    }

    #[test]
    fn given_a_cancelled_application_when_flagged_then_the_cancellation_stays() {
        let v = when(given(&[confirmed_application(), cancelled()]), flagged());
        assert!(v.is_cancelled() && v.is_moderated());
        assert_eq!(v.legacy_status().code(), -3);
    }

    #[test]
    fn given_a_cancelled_and_moderated_application_when_approved_then_only_the_cancellation_remains(
    ) {
        let v = when(
            given(&[confirmed_application(), fee_too_high(), cancelled()]),
            approved(),
        );
        assert!(v.is_cancelled() && !v.is_moderated());
        assert_eq!(v.legacy_status(), S::Cancelled);
    }

    #[test]
    fn given_a_cancelled_and_moderated_application_when_restored_then_only_the_moderation_remains()
    {
        let v = when(
            given(&[confirmed_application(), fee_too_high(), cancelled()]),
            restored(),
        );
        assert!(!v.is_cancelled() && v.is_moderated());
        assert_eq!(v.legacy_status(), S::Moderation);
    }

    #[test]
    fn given_an_application_when_exported_then_export_is_recorded_and_the_status_is_unchanged() {
        let v = when(given(&[confirmed_application()]), exported());
        assert!(v.is_exported());
        assert_eq!(v.export.batch_id.as_deref(), Some("b1"));
        assert_eq!(v.legacy_status(), S::Confirmed);
    }

    #[test]
    fn given_an_exported_application_when_scrubbed_then_the_applicant_is_gone_and_the_rest_stays() {
        let v = when(given(&[confirmed_application(), exported()]), scrubbed());
        assert!(v.is_scrubbed() && v.is_exported());
        assert_eq!(v.applicant(), None);
        assert_eq!(v.application.applicant_kind.as_str(), "person");
        assert_eq!(v.application.fee_cents, 1000);
        assert_eq!(v.application.tracking.keyword, "banner");
        assert_eq!(v.legacy_status(), S::Confirmed);
    }

    #[test]
    fn the_streams_of_an_application_fold_to_the_same_view_in_any_order() {
        let history = [
            confirmed_application(),
            fee_too_high(),
            cancelled(),
            exported(),
            scrubbed(),
        ];
        let expected = given(&history);
        let mut reversed = history.to_vec();
        reversed.reverse();
        assert_eq!(given(&reversed), expected);
        assert_eq!(expected.legacy_status(), S::CancelledModeration);
    }

    #[test]
    fn donation_streams_change_nothing() {
        let (_, event) = cancelled();
        let v = when(
            given(&[confirmed_application()]),
            ("deletion-11".into(), event),
        );
        let (_, raised) = fee_too_high();
        let v = when(v, ("moderation-11".into(), raised));
        assert_eq!(v, given(&[confirmed_application()]));
    }
}
