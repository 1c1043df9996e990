//! `AddressChangeView`: one address change folded from its three streams (the address change
//! itself, its exports, its scrub), each concern in its own part of the fold.

use chrono::{DateTime, Utc};

use super::{AddressChangeCategory, AddressType, ExternalIdKind};
use crate::domain::scrub::ScrubState;
use crate::domain::types::opt_datetime;
use crate::domain::DomainEvent;
use crate::proto::events as ev;

/// The legacy export state (`domain/wmde-memberships.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExportStatus {
    /// No address was given (also after a change that only opted out of the receipt).
    #[default]
    NoData,
    /// Changed since the last export (or never exported).
    UsedNotExported,
    /// The current version was exported.
    UsedExported,
}

codes!(ExportStatus, "address change export state", {
    NoData => "no_data",
    UsedNotExported => "used_not_exported",
    UsedExported => "used_exported",
});

/// One export: which batch, when, and which token was current then.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportRecord {
    /// The export batch.
    pub batch_id: String,
    /// When; `None` if the event named no time.
    pub exported_at: Option<DateTime<Utc>>,
    /// The token current at the export.
    pub identifier: String,
}

/// One address change across its streams.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddressChangeView {
    /// The id, once created.
    pub id: Option<u64>,
    /// Donation or membership.
    pub external_id_kind: ExternalIdKind,
    /// The donation's or application's id.
    pub external_id: u64,
    /// Person or company: the creation's, then the change's.
    pub address_type: AddressType,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was last changed (the creation's time until then).
    pub modified_at: Option<DateTime<Utc>>,
    /// The token that allows the next change.
    pub current_identifier: String,
    /// The token used for the last change (equal to the current one until a change).
    pub previous_identifier: String,
    /// The new address when readable here (unsealed); `None` while sealed, before a change
    /// and after a scrub.
    pub address: Option<ev::AddressData>,
    /// Whether an address was given (sealed or clear), whatever a scrub did since.
    pub has_address: bool,
    /// Whether the donor still wants a donation receipt (true until an opt-out).
    pub donation_receipt: bool,
    /// Every export, in order.
    pub exports: Vec<ExportRecord>,
    /// `address_change_scrub-{id}`.
    pub scrub: ScrubState,
}

impl AddressChangeView {
    /// Folds `(stream name, event)` pairs in any order of the streams.
    pub fn fold<'a>(events: impl IntoIterator<Item = (&'a str, &'a DomainEvent)>) -> Self {
        let mut v = Self::default();
        for (stream, e) in events {
            v.apply(stream, e);
        }
        v
    }

    /// Applies an event read from `stream` (a stream name or just its category). Streams of
    /// other contexts and events before the creation are ignored. Never fails.
    pub fn apply(&mut self, stream: &str, event: &DomainEvent) {
        match AddressChangeCategory::of(stream) {
            Some(AddressChangeCategory::AddressChange) => self.apply_change(event),
            Some(AddressChangeCategory::Export) => {
                if let DomainEvent::AddressChangeExported(e) = event {
                    self.exports.push(ExportRecord {
                        batch_id: e.batch_id.clone(),
                        exported_at: opt_datetime(e.exported_at.as_ref()),
                        identifier: e.identifier.clone(),
                    });
                }
            }
            Some(AddressChangeCategory::Scrub) => self.scrub.apply(event),
            None => {}
        }
    }

    fn apply_change(&mut self, event: &DomainEvent) {
        match event {
            DomainEvent::AddressChangeCreated(e) if self.id.is_none() => {
                self.id = Some(e.address_change_id);
                self.external_id_kind = ExternalIdKind::try_from(e.external_id_kind)
                    .unwrap_or(ExternalIdKind::Unspecified);
                self.external_id = e.external_id;
                self.address_type =
                    AddressType::try_from(e.address_type).unwrap_or(AddressType::Unspecified);
                self.created_at = opt_datetime(e.created_at.as_ref());
                self.modified_at = self.created_at;
                self.current_identifier = e.identifier.clone();
                self.previous_identifier = e.identifier.clone();
                self.donation_receipt = true;
            }
            DomainEvent::AddressChanged(e) if self.id.is_some() => {
                self.rotate(&e.new_identifier, e.changed_at.as_ref());
                self.address_type =
                    AddressType::try_from(e.address_type).unwrap_or(self.address_type);
                self.address = e.address.clone();
                self.has_address = true;
                if e.donation_receipt_opted_out {
                    self.donation_receipt = false;
                }
            }
            DomainEvent::DonationReceiptOptedOut(e) if self.id.is_some() => {
                self.rotate(&e.new_identifier, e.changed_at.as_ref());
                self.donation_receipt = false;
            }
            _ => {}
        }
    }

    /// A change rotates the tokens: the current one becomes the previous one.
    fn rotate(&mut self, new_identifier: &str, at: Option<&prost_types::Timestamp>) {
        self.previous_identifier =
            std::mem::replace(&mut self.current_identifier, new_identifier.to_owned());
        if let Some(at) = opt_datetime(at) {
            self.modified_at = Some(at);
        }
    }

    /// Whether it was created.
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Whether a change was made (legacy `hasBeenUsed`: current ≠ previous).
    pub fn is_used(&self) -> bool {
        self.current_identifier != self.previous_identifier
    }

    /// The export of the current version, if any: a change after an export (a new token)
    /// makes it not exported again, as the legacy reset of the export date did.
    pub fn current_export(&self) -> Option<&ExportRecord> {
        if !self.is_used() {
            return None;
        }
        self.exports
            .iter()
            .find(|x| x.identifier == self.current_identifier)
    }

    /// Whether the current version was exported.
    pub fn is_exported(&self) -> bool {
        self.current_export().is_some()
    }

    /// The legacy export state.
    pub fn export_status(&self) -> ExportStatus {
        if !self.has_address {
            ExportStatus::NoData
        } else if self.is_exported() {
            ExportStatus::UsedExported
        } else {
            ExportStatus::UsedNotExported
        }
    }

    /// Whether the address was scrubbed.
    pub fn is_scrubbed(&self) -> bool {
        self.scrub.scrubbed
    }

    /// The new address when readable and not scrubbed.
    pub fn address(&self) -> Option<&ev::AddressData> {
        if self.is_scrubbed() {
            None
        } else {
            self.address.as_ref()
        }
    }

    /// Whether `token` is the current token.
    pub fn is_current(&self, token: &str) -> bool {
        self.exists() && self.current_identifier == token
    }
}

/// Test-only builders of address-change events.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::domain::fixtures::t0;
    use crate::domain::scrub::ScrubRule;
    use crate::domain::types::to_timestamp;

    /// Address change id used by the fixtures.
    pub const AID: u64 = 21;
    /// Its first token.
    pub const TOKEN_1: &str = "0b7d2f3e-5c1a-4b8e-9f00-000000000001";
    /// The token after the first change.
    pub const TOKEN_2: &str = "0b7d2f3e-5c1a-4b8e-9f00-000000000002";
    /// The token after the second change.
    pub const TOKEN_3: &str = "0b7d2f3e-5c1a-4b8e-9f00-000000000003";

    /// `(stream, event)` on a stream of [`AID`].
    pub fn on(
        category: AddressChangeCategory,
        event: impl Into<DomainEvent>,
    ) -> (String, DomainEvent) {
        (category.stream(AID), event.into())
    }

    /// Created for donation 7, a person, with [`TOKEN_1`].
    pub fn created() -> (String, DomainEvent) {
        on(
            AddressChangeCategory::AddressChange,
            ev::AddressChangeCreated {
                address_change_id: AID,
                identifier: TOKEN_1.into(),
                external_id_kind: ExternalIdKind::Donation as i32,
                external_id: 7,
                address_type: AddressType::Person as i32,
                created_at: Some(to_timestamp(t0())),
            },
        )
    }

    /// A person's new address.
    pub fn person_address() -> ev::AddressData {
        ev::AddressData {
            salutation: "Frau".into(),
            first_name: "Grace".into(),
            last_name: "Hopper".into(),
            street: "Navy Yard 3".into(),
            postcode: "10115".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            ..Default::default()
        }
    }

    /// The address changed to [`person_address`], the token rotated to `new`.
    pub fn changed(new: &str) -> (String, DomainEvent) {
        on(
            AddressChangeCategory::AddressChange,
            ev::AddressChanged {
                new_identifier: new.into(),
                address_type: AddressType::Person as i32,
                address: Some(person_address()),
                address_sealed: None,
                donation_receipt_opted_out: false,
                changed_at: Some(to_timestamp(t0() + chrono::Duration::days(1))),
            },
        )
    }

    /// An opt-out of the receipt only, the token rotated to `new`.
    pub fn opted_out(new: &str) -> (String, DomainEvent) {
        on(
            AddressChangeCategory::AddressChange,
            ev::DonationReceiptOptedOut {
                new_identifier: new.into(),
                changed_at: Some(to_timestamp(t0() + chrono::Duration::days(1))),
            },
        )
    }

    /// Exported in batch `b1` while `identifier` was current.
    pub fn exported(identifier: &str) -> (String, DomainEvent) {
        on(
            AddressChangeCategory::Export,
            ev::AddressChangeExported {
                batch_id: "b1".into(),
                exported_at: Some(to_timestamp(t0() + chrono::Duration::days(2))),
                identifier: identifier.into(),
            },
        )
    }

    /// Scrubbed by the export rule.
    pub fn scrubbed() -> (String, DomainEvent) {
        on(
            AddressChangeCategory::Scrub,
            ev::PersonalDataScrubbed {
                rule: ScrubRule::Exported as i32,
                scrubbed_at: Some(to_timestamp(t0() + chrono::Duration::days(3))),
            },
        )
    }

    /// The view after `history`.
    pub fn view(history: &[(String, DomainEvent)]) -> AddressChangeView {
        AddressChangeView::fold(history.iter().map(|(s, e)| (s.as_str(), e)))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn given_nothing_when_created_then_both_tokens_are_the_first_and_there_is_no_data() {
        let v = view(&[created()]);
        assert_eq!(v.id, Some(AID));
        assert_eq!(v.external_id_kind, ExternalIdKind::Donation);
        assert_eq!(v.external_id, 7);
        assert_eq!(v.current_identifier, TOKEN_1);
        assert_eq!(v.previous_identifier, TOKEN_1);
        assert!(!v.is_used());
        assert!(v.donation_receipt);
        assert_eq!(v.export_status(), ExportStatus::NoData);
        assert_eq!(v.modified_at, v.created_at);
    }

    #[test]
    fn given_a_new_address_change_when_the_address_changes_then_the_token_rotates() {
        let v = view(&[created(), changed(TOKEN_2)]);
        assert_eq!(v.current_identifier, TOKEN_2);
        assert_eq!(v.previous_identifier, TOKEN_1);
        assert!(v.is_used());
        assert_eq!(v.address().unwrap().last_name, "Hopper");
        assert_eq!(v.export_status(), ExportStatus::UsedNotExported);
        assert!(v.modified_at > v.created_at);
        assert!(v.donation_receipt);
    }

    #[test]
    fn given_a_new_address_change_when_the_donor_opts_out_then_the_receipt_is_off_and_there_is_still_no_data(
    ) {
        let v = view(&[created(), opted_out(TOKEN_2)]);
        assert!(!v.donation_receipt);
        assert!(v.is_used());
        assert!(!v.has_address);
        assert_eq!(v.export_status(), ExportStatus::NoData);
    }

    #[test]
    fn given_a_changed_address_when_exported_then_the_current_version_is_exported() {
        let v = view(&[created(), changed(TOKEN_2), exported(TOKEN_2)]);
        assert_eq!(v.export_status(), ExportStatus::UsedExported);
        assert_eq!(v.current_export().unwrap().batch_id, "b1");
    }

    #[test]
    fn given_an_exported_change_when_changed_again_then_it_is_not_exported_any_more() {
        let v = view(&[
            created(),
            changed(TOKEN_2),
            exported(TOKEN_2),
            opted_out(TOKEN_3),
        ]);
        assert_eq!(v.export_status(), ExportStatus::UsedNotExported);
        assert_eq!(v.previous_identifier, TOKEN_2);
        assert!(!v.donation_receipt);
        assert!(v.address().is_some());
    }

    #[test]
    fn given_an_exported_change_when_scrubbed_then_the_address_is_gone_and_the_rest_is_kept() {
        let v = view(&[created(), changed(TOKEN_2), exported(TOKEN_2), scrubbed()]);
        assert!(v.is_scrubbed());
        assert_eq!(v.address(), None);
        assert!(v.has_address);
        assert_eq!(v.current_identifier, TOKEN_2);
        assert_eq!(v.export_status(), ExportStatus::UsedExported);
    }

    #[test]
    fn the_streams_fold_in_any_order_and_ignore_other_contexts() {
        let history = [created(), changed(TOKEN_2), exported(TOKEN_2), scrubbed()];
        let mut reordered = history.to_vec();
        reordered.swap(2, 3);
        assert_eq!(view(&reordered), view(&history));
        let mut v = view(&history);
        v.apply("membership_export-21", &history[2].1);
        v.apply("scrub-21", &history[3].1);
        assert_eq!(v, view(&history));
    }

    #[test]
    fn changes_before_the_creation_and_a_second_creation_change_nothing() {
        assert_eq!(view(&[changed(TOKEN_2)]), AddressChangeView::default());
        let mut second = created();
        if let DomainEvent::AddressChangeCreated(e) = &mut second.1 {
            e.identifier = TOKEN_3.into();
        }
        assert_eq!(view(&[created(), second]), view(&[created()]));
    }
}
