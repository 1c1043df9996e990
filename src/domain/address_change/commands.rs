//! Address-change decisions: pure functions from an [`AddressChangeView`] to the events to
//! append, each tagged with its stream, or the [`DomainError`] naming the broken rule. The
//! legacy rules (`domain/wmde-memberships.md` §2): a token allows one change and is replaced
//! by it; an address is given once; an opt-out of the receipt needs no address; an export is
//! recorded once per version. Added here: nothing changes a scrubbed address change.
//!
//! Decisions never read a clock or draw a token; the intake passes both in, and seals the
//! address.

use chrono::{DateTime, Duration, Utc};

use super::{token_stream, AddressChangeCategory, AddressChangeView, AddressType, ExternalIdKind};
use crate::domain::commands::Decision;
use crate::domain::error::DomainError;
use crate::domain::scrub::ScrubRule;
use crate::domain::types::{to_timestamp, StreamEvent};
use crate::proto::events as ev;

/// What a `ChangeAddress` asks for, as validated by `validation::validate_change_address`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddressChangeInput {
    /// The new address with its type; `None` for an opt-out of the receipt only.
    pub address: Option<(AddressType, ev::AddressData)>,
    /// Whether the donor opts out of the donation receipt.
    pub donation_receipt_opt_out: bool,
}

/// A new address change for a donation or an application: its creation and the token's index
/// entry. `identifier` is a fresh UUID v4.
pub fn create(
    id: u64,
    identifier: &str,
    external_id_kind: ExternalIdKind,
    external_id: u64,
    address_type: AddressType,
    now: DateTime<Utc>,
) -> Vec<StreamEvent> {
    vec![
        StreamEvent::new(
            AddressChangeCategory::AddressChange.stream(id),
            ev::AddressChangeCreated {
                address_change_id: id,
                identifier: identifier.to_owned(),
                external_id_kind: external_id_kind as i32,
                external_id,
                address_type: address_type as i32,
                created_at: Some(to_timestamp(now)),
            },
        ),
        issued(id, identifier),
    ]
}

fn issued(id: u64, identifier: &str) -> StreamEvent {
    StreamEvent::new(
        token_stream(identifier),
        ev::AddressChangeTokenIssued {
            address_change_id: id,
        },
    )
}

fn existing(view: &AddressChangeView) -> Result<u64, DomainError> {
    view.id.ok_or(DomainError::UnknownAddressChange)
}

/// A change through `token`: a new address (once), or an opt-out of the receipt, or both;
/// the token must be the current one and is replaced by `new_identifier`.
pub fn change(
    view: &AddressChangeView,
    token: &str,
    input: &AddressChangeInput,
    new_identifier: &str,
    now: DateTime<Utc>,
) -> Decision {
    let id = existing(view)?;
    if view.is_scrubbed() {
        return Err(DomainError::AddressChangeScrubbed { action: "change" });
    }
    if !view.is_current(token) {
        return Err(DomainError::AddressChangeTokenReplaced);
    }
    let stream = AddressChangeCategory::AddressChange.stream(id);
    let changed_at = Some(to_timestamp(now));
    let event = match &input.address {
        Some(_) if view.has_address => return Err(DomainError::AddressAlreadyChanged),
        Some((address_type, address)) => StreamEvent::new(
            stream,
            ev::AddressChanged {
                new_identifier: new_identifier.to_owned(),
                address_type: *address_type as i32,
                address: Some(address.clone()),
                address_sealed: None,
                donation_receipt_opted_out: input.donation_receipt_opt_out,
                changed_at,
            },
        ),
        None if input.donation_receipt_opt_out => StreamEvent::new(
            stream,
            ev::DonationReceiptOptedOut {
                new_identifier: new_identifier.to_owned(),
                changed_at,
            },
        ),
        None => return Err(DomainError::NothingToChange),
    };
    Ok(vec![event, issued(id, new_identifier)])
}

/// The export batch exported the current version: a used, unscrubbed address change, once
/// per version (a change after an export makes it exportable again).
pub fn mark_exported(view: &AddressChangeView, batch_id: &str, at: DateTime<Utc>) -> Decision {
    let id = existing(view)?;
    if let Some(x) = view.current_export() {
        return Err(DomainError::AddressChangeAlreadyExported {
            batch_id: x.batch_id.clone(),
        });
    }
    if batch_id.trim().is_empty() {
        return Err(DomainError::MissingBatchId);
    }
    if view.is_scrubbed() {
        return Err(DomainError::AddressChangeScrubbed { action: "export" });
    }
    if !view.is_used() {
        return Err(DomainError::AddressChangeNotUsed);
    }
    Ok(vec![StreamEvent::new(
        AddressChangeCategory::Export.stream(id),
        ev::AddressChangeExported {
            batch_id: batch_id.to_owned(),
            exported_at: Some(to_timestamp(at)),
            identifier: view.current_identifier.clone(),
        },
    )])
}

/// When an address change's address may be scrubbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressChangeScrubPolicy {
    /// An address not exported this long after its change is scrubbed anyway (the legacy
    /// deleter's `exportGracePeriod`; its tests use one month, the production value is not
    /// public).
    pub grace_period: Duration,
}

impl Default for AddressChangeScrubPolicy {
    fn default() -> Self {
        Self {
            grace_period: Duration::days(30),
        }
    }
}

/// The first rule that allows scrubbing `view` at `now`: exported, else changed longer ago
/// than the grace period (the legacy `remove-exported` deleter: `export_date IS NOT NULL OR
/// modified_at <= now - grace`). Only an address change that holds an address has anything
/// to scrub: one never used, or used only to opt out, holds nothing personal and is never
/// selected. `None` when no rule allows it or it is scrubbed.
pub fn scrub_rule(
    view: &AddressChangeView,
    now: DateTime<Utc>,
    policy: &AddressChangeScrubPolicy,
) -> Option<ScrubRule> {
    if view.is_scrubbed() || !view.exists() || !view.has_address {
        return None;
    }
    if view.is_exported() {
        return Some(ScrubRule::Exported);
    }
    let modified = view.modified_at?;
    (modified <= now - policy.grace_period).then_some(ScrubRule::AfterGracePeriod)
}

/// Scrubs the address (the caller then destroys the address change's key):
/// `PersonalDataScrubbed` with the rule that allowed it, on its scrub stream.
pub fn scrub(
    view: &AddressChangeView,
    now: DateTime<Utc>,
    policy: &AddressChangeScrubPolicy,
) -> Decision {
    let id = existing(view)?;
    if view.is_scrubbed() {
        return Err(DomainError::AddressChangeAlreadyScrubbed);
    }
    let rule = scrub_rule(view, now, policy).ok_or(DomainError::AddressChangeNotScrubbable)?;
    Ok(vec![StreamEvent::new(
        AddressChangeCategory::Scrub.stream(id),
        ev::PersonalDataScrubbed {
            rule: rule as i32,
            scrubbed_at: Some(to_timestamp(now)),
        },
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::address_change::view::fixtures::*;
    use crate::domain::address_change::ExportStatus;
    use crate::domain::fixtures::t0;

    fn person() -> AddressChangeInput {
        AddressChangeInput {
            address: Some((AddressType::Person, person_address())),
            donation_receipt_opt_out: false,
        }
    }

    fn opt_out() -> AddressChangeInput {
        AddressChangeInput {
            address: None,
            donation_receipt_opt_out: true,
        }
    }

    /// Applies decided events to a view.
    fn then(mut view: AddressChangeView, events: &[StreamEvent]) -> AddressChangeView {
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

    fn later() -> DateTime<Utc> {
        t0() + Duration::days(1)
    }

    #[test]
    fn given_a_donation_when_created_then_the_address_change_and_its_token_index_are_written() {
        let events = create(
            AID,
            TOKEN_1,
            ExternalIdKind::Donation,
            7,
            AddressType::Company,
            t0(),
        );
        assert_eq!(
            streams(&events),
            [
                ("address_change-21", "AddressChangeCreated.v1"),
                (
                    "address_change_token-0b7d2f3e-5c1a-4b8e-9f00-000000000001",
                    "AddressChangeTokenIssued.v1"
                ),
            ]
        );
        let v = then(AddressChangeView::default(), &events);
        assert_eq!(v.address_type, AddressType::Company);
        assert!(v.is_current(TOKEN_1));
    }

    #[test]
    fn given_a_new_address_change_when_a_person_changes_address_then_the_token_is_replaced() {
        let given = view(&[created()]);
        let events = change(&given, TOKEN_1, &person(), TOKEN_2, later()).unwrap();
        assert_eq!(
            streams(&events)[0],
            ("address_change-21", "AddressChanged.v1")
        );
        assert_eq!(events[1].stream, token_stream(TOKEN_2));
        let v = then(given, &events);
        assert_eq!(
            (
                v.current_identifier.as_str(),
                v.previous_identifier.as_str()
            ),
            (TOKEN_2, TOKEN_1)
        );
        assert_eq!(v.export_status(), ExportStatus::UsedNotExported);
        assert_eq!(v.modified_at, Some(later()));
    }

    #[test]
    fn given_a_new_address_change_when_a_company_changes_address_and_opts_out_then_both_hold() {
        let given = view(&[created()]);
        let input = AddressChangeInput {
            address: Some((
                AddressType::Company,
                ev::AddressData {
                    company_name: "Engines Ltd".into(),
                    ..person_address()
                },
            )),
            donation_receipt_opt_out: true,
        };
        let v = then(
            given.clone(),
            &change(&given, TOKEN_1, &input, TOKEN_2, later()).unwrap(),
        );
        assert_eq!(v.address_type, AddressType::Company);
        assert!(!v.donation_receipt);
        assert_eq!(v.address().unwrap().company_name, "Engines Ltd");
    }

    #[test]
    fn given_a_new_address_change_when_the_donor_only_opts_out_then_no_address_is_recorded() {
        let given = view(&[created()]);
        let events = change(&given, TOKEN_1, &opt_out(), TOKEN_2, later()).unwrap();
        assert_eq!(
            streams(&events)[0],
            ("address_change-21", "DonationReceiptOptedOut.v1")
        );
        let v = then(given, &events);
        assert!(!v.donation_receipt);
        assert_eq!(v.export_status(), ExportStatus::NoData);
        // An address may still be given once, with the new token.
        assert!(change(&v, TOKEN_2, &person(), TOKEN_3, later()).is_ok());
    }

    #[test]
    fn given_a_changed_address_when_changed_again_then_it_is_refused() {
        let given = view(&[created(), changed(TOKEN_2)]);
        assert_eq!(
            change(&given, TOKEN_2, &person(), TOKEN_3, later()),
            Err(DomainError::AddressAlreadyChanged)
        );
        // An opt-out with the current token is still allowed.
        assert!(change(&given, TOKEN_2, &opt_out(), TOKEN_3, later()).is_ok());
    }

    #[test]
    fn given_a_changed_address_when_the_old_token_is_used_then_it_is_refused() {
        let given = view(&[created(), opted_out(TOKEN_2)]);
        for input in [person(), opt_out()] {
            assert_eq!(
                change(&given, TOKEN_1, &input, TOKEN_3, later()),
                Err(DomainError::AddressChangeTokenReplaced)
            );
        }
    }

    #[test]
    fn given_a_scrubbed_address_change_when_changed_then_it_is_refused() {
        let given = view(&[created(), changed(TOKEN_2), exported(TOKEN_2), scrubbed()]);
        for input in [person(), opt_out()] {
            assert_eq!(
                change(&given, TOKEN_2, &input, TOKEN_3, later()),
                Err(DomainError::AddressChangeScrubbed { action: "change" })
            );
        }
    }

    #[test]
    fn a_change_without_address_or_opt_out_or_before_the_creation_is_refused() {
        let given = view(&[created()]);
        assert_eq!(
            change(
                &given,
                TOKEN_1,
                &AddressChangeInput::default(),
                TOKEN_2,
                later()
            ),
            Err(DomainError::NothingToChange)
        );
        assert_eq!(
            change(
                &AddressChangeView::default(),
                TOKEN_1,
                &person(),
                TOKEN_2,
                later()
            ),
            Err(DomainError::UnknownAddressChange)
        );
    }

    #[test]
    fn given_a_changed_address_when_exported_then_the_export_names_the_current_token() {
        let given = view(&[created(), changed(TOKEN_2)]);
        let events = mark_exported(&given, "b9", later()).unwrap();
        assert_eq!(
            streams(&events),
            [("address_change_export-21", "AddressChangeExported.v1")]
        );
        let v = then(given, &events);
        assert_eq!(v.export_status(), ExportStatus::UsedExported);
        assert_eq!(
            mark_exported(&v, "b10", later()),
            Err(DomainError::AddressChangeAlreadyExported {
                batch_id: "b9".into()
            })
        );
    }

    #[test]
    fn an_unused_or_scrubbed_address_change_is_not_exported() {
        assert_eq!(
            mark_exported(&view(&[created()]), "b1", later()),
            Err(DomainError::AddressChangeNotUsed)
        );
        let scrubbed = view(&[created(), changed(TOKEN_2), scrubbed()]);
        assert_eq!(
            mark_exported(&scrubbed, "b1", later()),
            Err(DomainError::AddressChangeScrubbed { action: "export" })
        );
        assert_eq!(
            mark_exported(&view(&[created(), changed(TOKEN_2)]), " ", later()),
            Err(DomainError::MissingBatchId)
        );
    }

    #[test]
    fn given_an_exported_address_when_scrubbed_then_the_export_rule_is_recorded() {
        let policy = AddressChangeScrubPolicy::default();
        let given = view(&[created(), changed(TOKEN_2), exported(TOKEN_2)]);
        let events = scrub(&given, later(), &policy).unwrap();
        assert_eq!(
            streams(&events),
            [("address_change_scrub-21", "PersonalDataScrubbed.v1")]
        );
        let v = then(given, &events);
        assert_eq!(v.scrub.rule, Some(ScrubRule::Exported));
        assert_eq!(v.address(), None);
        assert_eq!(
            scrub(&v, later(), &policy),
            Err(DomainError::AddressChangeAlreadyScrubbed)
        );
    }

    #[test]
    fn an_address_not_exported_is_scrubbed_only_after_the_grace_period_since_its_change() {
        let policy = AddressChangeScrubPolicy::default();
        let v = view(&[created(), changed(TOKEN_2)]);
        let changed_at = v.modified_at.unwrap();
        assert_eq!(
            scrub_rule(&v, changed_at + Duration::days(29), &policy),
            None
        );
        assert_eq!(
            scrub_rule(&v, changed_at + Duration::days(30), &policy),
            Some(ScrubRule::AfterGracePeriod)
        );
    }

    #[test]
    fn an_address_change_without_an_address_has_nothing_to_scrub() {
        let policy = AddressChangeScrubPolicy::default();
        let far = t0() + Duration::days(400);
        assert_eq!(scrub_rule(&view(&[created()]), far, &policy), None);
        let opted = view(&[created(), opted_out(TOKEN_2), exported(TOKEN_2)]);
        assert_eq!(scrub_rule(&opted, far, &policy), None);
        assert_eq!(
            scrub(&opted, far, &policy),
            Err(DomainError::AddressChangeNotScrubbable)
        );
    }
}
