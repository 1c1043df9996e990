//! Membership decisions: pure functions from a [`MembershipView`] to the events to append,
//! each tagged with its stream, or the [`DomainError`] naming the broken rule. The legacy
//! preconditions (`domain/wmde-memberships.md` §1.4) hold here: nothing changes an exported
//! or scrubbed application; only a moderated one is approved; only a cancelled one restored.
//!
//! Decisions never read a clock and carry personal data in clear; the intake seals it.
//!
//! Over 600 lines because of its tests: one given/when/then test per rule, beside the rules.

use chrono::{DateTime, Duration, Utc};

use super::{fees, ApplicantKind, MembershipCategory, MembershipType, MembershipView};
use crate::domain::commands::Decision;
use crate::domain::error::DomainError;
use crate::domain::moderation::{ModerationIdentifier, ModerationReason};
use crate::domain::policy::ModerationPolicy;
use crate::domain::scrub::ScrubRule;
use crate::domain::types::{to_timestamp, PaymentMethod, StreamEvent};
use crate::proto::events as ev;

/// Incentives an applicant may choose (the fundraising application offers these names).
pub const INCENTIVES: &[&str] = &["tote_bag"];

/// A new application, as validated by `validation::validate_new_membership`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewMembership {
    /// Person or company.
    pub applicant_kind: ApplicantKind,
    /// Name, address, email, phone, date of birth.
    pub applicant: ev::ApplicantData,
    /// Active or sustaining.
    pub membership_type: MembershipType,
    /// The fee per interval, in euro cents.
    pub fee_cents: i64,
    /// 1, 3, 6 or 12.
    pub interval_months: u32,
    /// Direct debit or bank transfer.
    pub payment_method: Option<PaymentMethod>,
    /// Direct debit only.
    pub iban: String,
    /// Direct debit only, optional.
    pub bic: String,
    /// Campaign and keyword.
    pub tracking: ev::MembershipTracking,
    /// Incentive names from [`INCENTIVES`].
    pub incentives: Vec<String>,
    /// Whether the applicant wants a donation receipt, if they said.
    pub donation_receipt: Option<bool>,
}

/// The ids of a new application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipIds {
    /// From the `membership` sequence.
    pub membership_id: u64,
    /// From the `payment` sequence (the legacy `request.payment_id`).
    pub payment_id: u64,
}

/// What an application decided.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedMembership {
    /// The application and any moderation reasons, tagged with their streams.
    pub events: Vec<StreamEvent>,
    /// The reasons raised.
    pub reasons: Vec<ModerationReason>,
    /// Whether the payment was complete at application.
    pub confirmed: bool,
    /// Bank transfer: the reference code the member puts on the transfer (`XM-…`).
    pub payment_reference_code: String,
}

/// The moderation reasons of a new application: `MEMBERSHIP_FEE_TOO_HIGH` above 1000 EUR a
/// year, `ADDRESS_CONTENT_VIOLATION` per name or address field failing the text policy,
/// `EMAIL_BLOCKED`. Unlike donations, no payment method skips moderation. Sources are the
/// legacy ones.
pub fn moderation_reasons(policy: &ModerationPolicy, m: &NewMembership) -> Vec<ModerationReason> {
    let mut reasons = Vec::new();
    if fees::is_fee_too_high(m.fee_cents, m.interval_months) {
        reasons.push(ModerationReason::new(
            ModerationIdentifier::MembershipFeeTooHigh,
            "amount",
        ));
    }
    let a = &m.applicant;
    for (value, source) in [
        (&a.first_name, "applicant-first-name"),
        (&a.last_name, "applicant-last-name"),
        (&a.company_name, "company"),
        (&a.city, "city"),
        (&a.street, "street-address"),
    ] {
        if policy.text_violates(value) {
            reasons.push(ModerationReason::new(
                ModerationIdentifier::AddressContentViolation,
                source,
            ));
        }
    }
    if policy.email_is_blocked(&a.email) {
        reasons.push(ModerationReason::new(
            ModerationIdentifier::EmailBlocked,
            "applicant-email",
        ));
    }
    reasons
}

/// A new application: `MembershipApplied` and, when the policy raises any, the reasons. The
/// payment is complete at once for direct debit and bank transfer, so such an application is
/// confirmed. `reference_code` makes a bank transfer's reference code.
pub fn apply_for_membership(
    m: &NewMembership,
    ids: MembershipIds,
    now: DateTime<Utc>,
    policy: &ModerationPolicy,
    reference_code: impl FnOnce() -> String,
) -> Result<AppliedMembership, DomainError> {
    let method = m.payment_method.ok_or(DomainError::UnknownPayment)?;
    let confirmed = !method.is_external();
    let payment_reference_code = if method == PaymentMethod::BankTransfer {
        reference_code()
    } else {
        String::new()
    };
    let bank = match method {
        PaymentMethod::DirectDebit => Some(ev::BankData {
            iban: m.iban.clone(),
            bic: m.bic.clone(),
            payment_reference_code: String::new(),
        }),
        PaymentMethod::BankTransfer => Some(ev::BankData {
            payment_reference_code: payment_reference_code.clone(),
            ..Default::default()
        }),
        _ => None,
    };
    let id = ids.membership_id;
    let mut applicant = m.applicant.clone();
    if m.applicant_kind == ApplicantKind::Company {
        // The legacy salutation of every company application.
        applicant.salutation = "Firma".into();
    }
    let mut events = vec![StreamEvent::new(
        MembershipCategory::Application.stream(id),
        ev::MembershipApplied {
            membership_id: id,
            created_at: Some(to_timestamp(now)),
            applicant_kind: m.applicant_kind as i32,
            applicant: Some(applicant),
            applicant_sealed: None,
            membership_type: m.membership_type as i32,
            fee: Some(ev::Money {
                cents: m.fee_cents,
                currency: "EUR".into(),
            }),
            interval_months: m.interval_months,
            payment_id: ids.payment_id,
            payment_method: method.to_proto(),
            bank,
            bank_sealed: None,
            confirmed,
            tracking: Some(m.tracking.clone()),
            incentives: m.incentives.clone(),
            donation_receipt: m.donation_receipt,
        },
    )];
    let reasons = moderation_reasons(policy, m);
    if !reasons.is_empty() {
        events.push(StreamEvent::new(
            MembershipCategory::Moderation.stream(id),
            ev::ModerationReasonsRaised {
                reasons: reasons.iter().map(ModerationReason::to_proto).collect(),
            },
        ));
    }
    Ok(AppliedMembership {
        events,
        reasons,
        confirmed,
        payment_reference_code,
    })
}

fn existing(view: &MembershipView) -> Result<u64, DomainError> {
    view.id().ok_or(DomainError::UnknownMembership)
}

/// Refuses an exported or scrubbed application (the legacy guard of every FOC action).
fn changeable(view: &MembershipView, action: &'static str) -> Result<u64, DomainError> {
    let id = existing(view)?;
    if view.is_scrubbed() {
        return Err(DomainError::MembershipScrubbed { action });
    }
    if view.is_exported() {
        return Err(DomainError::MembershipExported { action });
    }
    Ok(id)
}

/// Cancels an application: not exported or scrubbed, not cancelled already, paid by direct
/// debit or bank transfer.
pub fn cancel(view: &MembershipView, reason: &str) -> Decision {
    let id = changeable(view, "cancel")?;
    if view.is_cancelled() {
        return Err(DomainError::MembershipCancelled { action: "cancel" });
    }
    let method = view
        .application
        .payment_method
        .ok_or(DomainError::UnknownPayment)?;
    if !method.is_cancellable() {
        return Err(DomainError::MembershipNotCancellable { method });
    }
    Ok(vec![StreamEvent::new(
        MembershipCategory::Cancellation.stream(id),
        ev::MembershipCancelled {
            reason: reason.to_owned(),
        },
    )])
}

/// Restores a cancelled application that is not exported or scrubbed.
pub fn restore(view: &MembershipView, reason: &str) -> Decision {
    let id = changeable(view, "restore")?;
    if !view.is_cancelled() {
        return Err(DomainError::MembershipNotCancelled);
    }
    Ok(vec![StreamEvent::new(
        MembershipCategory::Cancellation.stream(id),
        ev::MembershipRestored {
            reason: reason.to_owned(),
        },
    )])
}

/// An administrator flags an application for moderation: not exported, scrubbed, cancelled or
/// moderated already.
pub fn flag(view: &MembershipView, note: &str) -> Decision {
    let id = changeable(view, "flag")?;
    if view.is_moderated() {
        return Err(DomainError::MembershipAlreadyModerated);
    }
    if view.is_cancelled() {
        return Err(DomainError::MembershipCancelled { action: "flag" });
    }
    Ok(vec![StreamEvent::new(
        MembershipCategory::Moderation.stream(id),
        ev::ManuallyFlagged {
            note: note.to_owned(),
        },
    )])
}

/// A moderator approves: clears every open reason. Needs open reasons; not exported or
/// scrubbed.
pub fn approve(view: &MembershipView) -> Decision {
    let id = changeable(view, "approve")?;
    if !view.is_moderated() {
        return Err(DomainError::MembershipNotModerated);
    }
    Ok(vec![StreamEvent::new(
        MembershipCategory::Moderation.stream(id),
        ev::ModerationApproved {
            as_anonymous: false,
        },
    )])
}

/// The export batch exported an application: once, with a batch id, not while moderated,
/// cancelled or scrubbed.
pub fn mark_exported(view: &MembershipView, batch_id: &str, at: DateTime<Utc>) -> Decision {
    let id = existing(view)?;
    if view.is_exported() {
        return Err(DomainError::MembershipAlreadyExported {
            batch_id: view.export.batch_id.clone(),
        });
    }
    if batch_id.trim().is_empty() {
        return Err(DomainError::MissingBatchId);
    }
    if view.is_scrubbed() {
        return Err(DomainError::MembershipScrubbed { action: "export" });
    }
    if view.is_cancelled() {
        return Err(DomainError::MembershipCancelled { action: "export" });
    }
    if view.is_moderated() {
        return Err(DomainError::MembershipUnderModeration { action: "export" });
    }
    Ok(vec![StreamEvent::new(
        MembershipCategory::Export.stream(id),
        ev::MembershipExported {
            batch_id: batch_id.to_owned(),
            exported_at: Some(to_timestamp(at)),
        },
    )])
}

/// When an application may be scrubbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipScrubPolicy {
    /// Applications created longer ago than this are scrubbed whatever their state (2 days,
    /// what the legacy command used; the production value is not public).
    pub grace_period: Duration,
}

impl Default for MembershipScrubPolicy {
    fn default() -> Self {
        Self {
            grace_period: Duration::days(2),
        }
    }
}

/// The first rule that allows scrubbing `view` at `now`, in the order exported, cancelled,
/// after the grace period (`domain/wmde-memberships.md` §1.6, the rule since 2026-07);
/// `None` when none does or it is already scrubbed. Moderation is no input: a moderated
/// application inside the grace period is kept, after it scrubbed.
pub fn scrub_rule(
    view: &MembershipView,
    now: DateTime<Utc>,
    policy: &MembershipScrubPolicy,
) -> Option<ScrubRule> {
    if view.is_scrubbed() || !view.application.exists() {
        return None;
    }
    if view.is_exported() {
        return Some(ScrubRule::Exported);
    }
    if view.is_cancelled() {
        return Some(ScrubRule::CancelledOrDeleted);
    }
    let created = view.application.created_at?;
    (created <= now - policy.grace_period).then_some(ScrubRule::AfterGracePeriod)
}

/// Scrubs the applicant's personal data (the caller then destroys the application's key):
/// `PersonalDataScrubbed` with the rule that allowed it, on the application's scrub stream.
pub fn scrub(
    view: &MembershipView,
    now: DateTime<Utc>,
    policy: &MembershipScrubPolicy,
) -> Decision {
    let id = existing(view)?;
    if view.is_scrubbed() {
        return Err(DomainError::MembershipAlreadyScrubbed);
    }
    let rule = scrub_rule(view, now, policy).ok_or(DomainError::MembershipNotScrubbable)?;
    Ok(vec![StreamEvent::new(
        MembershipCategory::Scrub.stream(id),
        ev::PersonalDataScrubbed {
            rule: rule as i32,
            scrubbed_at: Some(to_timestamp(now)),
        },
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::t0;
    use crate::domain::membership::view::fixtures::*;
    use crate::domain::membership::LegacyRequestStatus;

    fn new_membership(fee_cents: i64, interval_months: u32) -> NewMembership {
        NewMembership {
            applicant_kind: ApplicantKind::Person,
            applicant: ev::ApplicantData {
                salutation: "Herr".into(),
                first_name: "Bob".into(),
                last_name: "Builder".into(),
                street: "Road 2".into(),
                postcode: "12345".into(),
                city: "Hamburg".into(),
                country: "DE".into(),
                email: "bob@example.org".into(),
                ..Default::default()
            },
            membership_type: MembershipType::Active,
            fee_cents,
            interval_months,
            payment_method: Some(PaymentMethod::DirectDebit),
            iban: "DE02120300000000202051".into(),
            ..Default::default()
        }
    }

    const IDS: MembershipIds = MembershipIds {
        membership_id: MID,
        payment_id: 110,
    };

    fn decide(m: &NewMembership, policy: &ModerationPolicy) -> AppliedMembership {
        apply_for_membership(m, IDS, t0(), policy, || "XM-AAA-AAA-A".into()).unwrap()
    }

    /// Applies decided events to a view.
    fn then(mut view: MembershipView, events: &[StreamEvent]) -> MembershipView {
        for e in events {
            view.apply(&e.stream, &e.event);
        }
        view
    }

    fn streams(events: &[StreamEvent]) -> Vec<(&str, &str)> {
        events
            .iter()
            .map(|e| (e.stream.as_str(), e.event.event_type()))
            .collect()
    }

    #[test]
    fn a_direct_debit_application_is_confirmed_at_once_and_not_moderated() {
        let applied = decide(&new_membership(1500, 1), &ModerationPolicy::default());
        assert_eq!(
            streams(&applied.events),
            [("membership-11", "MembershipApplied.v1")]
        );
        let v = then(MembershipView::default(), &applied.events);
        assert!(v.is_confirmed());
        assert_eq!(v.legacy_status(), LegacyRequestStatus::Confirmed);
        assert_eq!(applied.payment_reference_code, "");
    }

    #[test]
    fn a_yearly_fee_above_1000_euros_raises_membership_fee_too_high_on_its_own_stream() {
        let applied = decide(&new_membership(8_334, 1), &ModerationPolicy::default());
        assert_eq!(
            streams(&applied.events)[1],
            ("membership_moderation-11", "ModerationReasonsRaised.v1")
        );
        assert_eq!(
            applied.reasons[0].identifier_name(),
            "MEMBERSHIP_FEE_TOO_HIGH"
        );
        assert_eq!(applied.reasons[0].source, "amount");
        let v = then(MembershipView::default(), &applied.events);
        assert!(v.is_moderated() && v.is_confirmed());
        assert_eq!(v.legacy_status().code(), -2);
    }

    #[test]
    fn address_and_email_policies_raise_reasons_with_the_legacy_sources() {
        let policy = ModerationPolicy {
            deny_words: vec!["spam".into()],
            blocked_emails: vec!["@example.org".into()],
            ..Default::default()
        };
        let mut m = new_membership(1500, 1);
        m.applicant.city = "Spam City".into();
        let applied = decide(&m, &policy);
        let got: Vec<(&str, &str)> = applied
            .reasons
            .iter()
            .map(|r| (r.identifier_name(), r.source.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("ADDRESS_CONTENT_VIOLATION", "city"),
                ("EMAIL_BLOCKED", "applicant-email")
            ]
        );
    }

    #[test]
    fn a_bank_transfer_application_gets_a_reference_code_and_a_company_the_salutation_firma() {
        let mut m = new_membership(2_500, 3);
        m.applicant_kind = ApplicantKind::Company;
        m.applicant.company_name = "Engines Ltd".into();
        m.payment_method = Some(PaymentMethod::BankTransfer);
        m.iban.clear();
        let applied = decide(&m, &ModerationPolicy::default());
        assert_eq!(applied.payment_reference_code, "XM-AAA-AAA-A");
        let v = then(MembershipView::default(), &applied.events);
        assert_eq!(v.applicant().unwrap().salutation, "Firma");
        assert_eq!(
            v.application.bank.unwrap().payment_reference_code,
            "XM-AAA-AAA-A"
        );
    }

    #[test]
    fn given_an_application_when_cancelled_twice_then_the_second_is_refused() {
        let v = given(&[confirmed_application()]);
        let v = then(v.clone(), &cancel(&v, "moved").unwrap());
        assert!(v.is_cancelled());
        assert_eq!(
            cancel(&v, "again"),
            Err(DomainError::MembershipCancelled { action: "cancel" })
        );
    }

    #[test]
    fn given_a_moderated_application_when_cancelled_then_it_is_both() {
        let v = given(&[confirmed_application(), fee_too_high()]);
        let v = then(v.clone(), &cancel(&v, "").unwrap());
        assert_eq!(v.legacy_status(), LegacyRequestStatus::CancelledModeration);
    }

    #[test]
    fn given_an_exported_or_scrubbed_application_then_no_foc_action_is_allowed() {
        for history in [
            vec![confirmed_application(), exported()],
            vec![
                confirmed_application(),
                fee_too_high(),
                cancelled(),
                scrubbed(),
            ],
        ] {
            let v = given(&history);
            assert!(cancel(&v, "").is_err());
            assert!(restore(&v, "").is_err());
            assert!(flag(&v, "").is_err());
            assert!(approve(&v).is_err());
        }
        let v = given(&[confirmed_application(), exported()]);
        assert_eq!(
            flag(&v, "").unwrap_err().to_string(),
            "cannot flag: the membership application was already exported"
        );
    }

    #[test]
    fn given_an_active_application_when_restored_then_it_is_refused() {
        let v = given(&[confirmed_application()]);
        assert_eq!(restore(&v, ""), Err(DomainError::MembershipNotCancelled));
        let v = given(&[confirmed_application(), cancelled()]);
        let v = then(v.clone(), &restore(&v, "mistake").unwrap());
        assert!(!v.is_cancelled());
    }

    #[test]
    fn given_a_flagged_application_then_flagging_again_is_refused_and_approval_clears_it() {
        let v = given(&[confirmed_application()]);
        assert_eq!(approve(&v), Err(DomainError::MembershipNotModerated));
        let v = then(v.clone(), &flag(&v, "odd").unwrap());
        assert_eq!(flag(&v, ""), Err(DomainError::MembershipAlreadyModerated));
        let v = then(v.clone(), &approve(&v).unwrap());
        assert!(!v.is_moderated());
        assert_eq!(v.legacy_status(), LegacyRequestStatus::Confirmed);
    }

    #[test]
    fn given_a_cancelled_application_when_flagged_then_it_is_refused() {
        let v = given(&[confirmed_application(), cancelled()]);
        assert_eq!(
            flag(&v, ""),
            Err(DomainError::MembershipCancelled { action: "flag" })
        );
    }

    #[test]
    fn an_export_is_recorded_once_and_refused_while_moderated_or_cancelled() {
        let v = given(&[confirmed_application()]);
        let events = mark_exported(&v, "b7", t0()).unwrap();
        assert_eq!(
            streams(&events),
            [("membership_export-11", "MembershipExported.v1")]
        );
        let v = then(v, &events);
        assert_eq!(
            mark_exported(&v, "b8", t0()),
            Err(DomainError::MembershipAlreadyExported {
                batch_id: Some("b7".into())
            })
        );
        let moderated = given(&[confirmed_application(), fee_too_high()]);
        assert!(matches!(
            mark_exported(&moderated, "b", t0()),
            Err(DomainError::MembershipUnderModeration { .. })
        ));
        let cancelled = given(&[confirmed_application(), cancelled()]);
        assert!(mark_exported(&cancelled, "b", t0()).is_err());
        assert_eq!(
            mark_exported(&MembershipView::default(), "b", t0()),
            Err(DomainError::UnknownMembership)
        );
    }

    fn scrub_rule_of(events: &[StreamEvent]) -> i32 {
        match &events[0].event {
            crate::domain::DomainEvent::PersonalDataScrubbed(e) => e.rule,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn given_an_exported_application_when_scrubbed_then_the_export_rule_allowed_it_once() {
        let policy = MembershipScrubPolicy::default();
        let v = given(&[confirmed_application(), exported()]);
        let events = scrub(&v, t0(), &policy).unwrap();
        assert_eq!(
            streams(&events),
            [("membership_scrub-11", "PersonalDataScrubbed.v1")]
        );
        assert_eq!(scrub_rule_of(&events), ScrubRule::Exported as i32);
        let v = then(v, &events);
        assert!(v.is_scrubbed());
        assert_eq!(v.applicant(), None);
        assert_eq!(v.legacy_status(), LegacyRequestStatus::Confirmed);
        assert_eq!(
            scrub(&v, t0(), &policy),
            Err(DomainError::MembershipAlreadyScrubbed)
        );
    }

    #[test]
    fn given_a_cancelled_and_moderated_application_then_it_may_be_scrubbed_at_once() {
        let v = given(&[confirmed_application(), fee_too_high(), cancelled()]);
        let events = scrub(&v, t0(), &MembershipScrubPolicy::default()).unwrap();
        assert_eq!(scrub_rule_of(&events), ScrubRule::CancelledOrDeleted as i32);
    }

    #[test]
    fn given_a_moderated_application_then_it_is_kept_inside_the_grace_period_and_scrubbed_after() {
        let policy = MembershipScrubPolicy::default();
        let v = given(&[confirmed_application(), fee_too_high()]);
        let inside = t0() + Duration::days(2) - Duration::seconds(1);
        assert_eq!(scrub_rule(&v, inside, &policy), None);
        assert_eq!(
            scrub(&v, inside, &policy),
            Err(DomainError::MembershipNotScrubbable)
        );
        let after = t0() + Duration::days(2);
        assert_eq!(
            scrub_rule(&v, after, &policy),
            Some(ScrubRule::AfterGracePeriod)
        );
        assert_eq!(ScrubRule::AfterGracePeriod.as_str(), "after_grace_period");
    }

    #[test]
    fn an_unknown_application_cannot_be_scrubbed() {
        let v = MembershipView::default();
        assert_eq!(
            scrub_rule(&v, t0(), &MembershipScrubPolicy::default()),
            None
        );
        assert_eq!(
            scrub(&v, t0(), &MembershipScrubPolicy::default()),
            Err(DomainError::UnknownMembership)
        );
    }

    #[test]
    fn an_unknown_application_refuses_every_action() {
        let v = MembershipView::default();
        for d in [cancel(&v, ""), restore(&v, ""), flag(&v, ""), approve(&v)] {
            assert_eq!(d, Err(DomainError::UnknownMembership));
        }
    }
}
