//! Address-change commands: the address change issued with a donation or an application, the
//! address-change page's read and change by token, the export batch. The shape of the
//! membership commands: find the address change (by token through its token stream), load its
//! streams, fold, let the domain decide (`domain::address_change::commands`), seal the new
//! address with the address change's own key, commit once per request id through
//! [`Intake::run`].

use uuid::Uuid;

use super::decide::ContextLoad;
use super::error::invalid_if_any;
use super::export::ExportBatch;
use super::{Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::address_change::commands::{self, AddressChangeInput};
use crate::domain::address_change::{token_stream, AddressChangeView, AddressType, ExternalIdKind};
use crate::domain::types::{to_timestamp, StreamEvent};
use crate::domain::validation::{validate_change_address, validate_token};
use crate::domain::{DomainError, DomainEvent};
use crate::privacy::address_change_key_id;
use crate::proto::api;
use crate::repository;
use crate::sequence::SequenceName;

/// What a missing address change is called in errors.
const WHAT: &str = "address change";

/// An address change's view with the revisions of the streams it was folded from.
type AddressChangeLoad = ContextLoad<AddressChangeView>;

/// The address change as the API shows it: never the address. `asked_with` is the token a
/// page asked with (whether it is still the current one); `None` for the back office.
pub fn address_change_message(
    view: &AddressChangeView,
    asked_with: Option<&str>,
) -> api::AddressChange {
    api::AddressChange {
        address_change_id: view.id.unwrap_or_default(),
        external_id_kind: view.external_id_kind.as_str().to_owned(),
        external_id: view.external_id,
        address_type: view.address_type.as_str().to_owned(),
        has_address: view.has_address,
        donation_receipt: view.donation_receipt,
        export_state: view.export_status().as_str().to_owned(),
        is_current_identifier: asked_with.is_none_or(|t| view.is_current(t)),
        is_scrubbed: view.is_scrubbed(),
        created_at: view.created_at.map(to_timestamp),
        modified_at: view.modified_at.map(to_timestamp),
        exported_at: view
            .current_export()
            .and_then(|x| x.exported_at)
            .map(to_timestamp),
    }
}

/// A fresh token: a UUID v4, lower-case and hyphenated.
fn new_token() -> String {
    Uuid::new_v4().to_string()
}

impl Intake {
    /// The events of a new address change for a donation or an application (appended with
    /// it, in its atomic append) and the token to hand out.
    pub(super) async fn new_address_change(
        &self,
        kind: ExternalIdKind,
        external_id: u64,
        address_type: AddressType,
    ) -> Result<(Vec<StreamEvent>, String), IntakeError> {
        let id = self.ids.take(SequenceName::AddressChange).await?.id;
        let token = new_token();
        let events = commands::create(
            id,
            &token,
            kind,
            external_id,
            address_type,
            self.clock.now(),
        );
        Ok((events, token))
    }

    /// The address change a token was issued for (current or replaced).
    async fn address_change_id_of(&self, token: &str) -> Result<u64, IntakeError> {
        match self.first_of(&token_stream(token)).await? {
            Some(DomainEvent::AddressChangeTokenIssued(e)) => Ok(e.address_change_id),
            _ => Err(IntakeError::UnknownAddressChangeToken),
        }
    }

    /// Loads an address change's three streams; the address is unsealed when `unseal`.
    async fn load_address_change(
        &self,
        id: u64,
        unseal: bool,
    ) -> Result<AddressChangeLoad, IntakeError> {
        let loaded = repository::load_address_change(&*self.log, id).await?;
        self.fold_loaded(
            loaded,
            unseal,
            AddressChangeView::apply,
            AddressChangeView::exists,
        )
        .await?
        .ok_or(IntakeError::NotFound { what: WHAT, id })
    }

    /// The address change behind a token, without personal data: for the address-change
    /// page (a replaced token answers with `is_current_identifier` false).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn get_address_change(
        &self,
        identifier: &str,
    ) -> Result<api::AddressChange, IntakeError> {
        invalid_if_any(validate_token("identifier", identifier))?;
        let token = identifier.to_ascii_lowercase();
        let id = self.address_change_id_of(&token).await?;
        let load = self.load_address_change(id, false).await?;
        Ok(address_change_message(&load.view, Some(&token)))
    }

    /// A new address or a receipt opt-out through the current token, which the change
    /// replaces with a new one.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn change_address(
        &self,
        meta: &RequestMeta,
        identifier: &str,
        input: AddressChangeInput,
    ) -> Result<api::ChangeAddressResponse, IntakeError> {
        invalid_if_any(validate_change_address(identifier, &input))?;
        let token = identifier.to_ascii_lowercase();
        self.run(meta, Method::ChangeAddress, async {
            let id = self.address_change_id_of(&token).await?;
            let mut load = self.load_address_change(id, false).await?;
            let new = new_token();
            let mut events = commands::change(&load.view, &token, &input, &new, self.clock.now())?;
            self.seal(address_change_key_id(id), &mut events).await?;
            for e in &events {
                load.view.apply(&e.stream, &e.event);
            }
            Ok(Plan {
                events,
                read: load.read,
                response: api::ChangeAddressResponse {
                    address_change: Some(address_change_message(&load.view, None)),
                    identifier: new,
                    previous_identifier: token.clone(),
                    position: 0,
                },
                stored: None,
            })
        })
        .await
    }

    /// The export batch exported these address changes. Already exported ones are reported,
    /// not refused; any other refusal refuses the whole batch (nothing is appended).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn mark_address_changes_exported(
        &self,
        meta: &RequestMeta,
        address_change_ids: &[u64],
        batch_id: &str,
    ) -> Result<api::MarkAddressChangesExportedResponse, IntakeError> {
        let batch = ExportBatch {
            method: Method::MarkAddressChangesExported,
            ids_field: "address_change_ids",
            ids: address_change_ids,
            batch_id,
            decide: commands::mark_exported,
            already_exported: |e| matches!(e, DomainError::AddressChangeAlreadyExported { .. }),
            in_batch: |address_change_id, source| IntakeError::InAddressChangeBatch {
                address_change_id,
                source,
            },
        };
        self.export_batch(meta, batch, |id| self.load_address_change(id, false))
            .await
    }

    /// An address change folded from the log with its address unsealed while its key exists
    /// (the back office and the audit; no RPC answers with it).
    pub async fn address_change_view(&self, id: u64) -> Result<AddressChangeView, IntakeError> {
        Ok(self.load_address_change(id, true).await?.view)
    }
}
