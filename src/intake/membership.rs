//! Membership commands: a new application, cancel and restore, flag and approve, the export
//! batch, and reading an application and its history back. The shape of the donation
//! commands: load the application's streams, fold, let the domain decide
//! (`domain::membership::commands`), seal with the application's own key, commit once per
//! request id through [`Intake::run`].

use std::collections::HashMap;

use super::decide::ContextLoad;
use super::error::invalid_if_any;
use super::export::ExportBatch;
use super::{reference, Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::address_change::{AddressType, ExternalIdKind};
use crate::domain::membership::commands::{self, MembershipIds, NewMembership};
use crate::domain::membership::{ApplicantKind, MembershipView};
use crate::domain::moderation::{ModerationReason, ModerationStatus};
use crate::domain::types::{to_timestamp, PaymentMethod, StreamEvent};
use crate::domain::validation::{validate_id, validate_new_membership, validate_reason};
use crate::domain::DomainError;
use crate::privacy::membership_key_id;
use crate::proto::api;
use crate::repository;
use crate::sequence::SequenceName;

/// What a missing application is called in errors.
const WHAT: &str = "membership application";

/// An application's view with the revisions of the streams it was folded from.
type MembershipLoad = ContextLoad<MembershipView>;

/// The application as the API shows it; with `include_personal`, the applicant when readable
/// (answers to mutating calls and idempotency records never hold it).
pub fn membership_message(view: &MembershipView, include_personal: bool) -> api::Membership {
    let a = &view.application;
    let applicant = view
        .applicant()
        .filter(|_| include_personal)
        .map(|p| api::ApplicantInput {
            kind: a.applicant_kind as i32,
            salutation: p.salutation.clone(),
            title: p.title.clone(),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            company_name: p.company_name.clone(),
            street: p.street.clone(),
            postcode: p.postcode.clone(),
            city: p.city.clone(),
            country: p.country.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            date_of_birth: p.date_of_birth.clone(),
        });
    api::Membership {
        membership_id: a.id.unwrap_or_default(),
        created_at: a.created_at.map(to_timestamp),
        applicant_kind: a.applicant_kind.as_str().to_owned(),
        applicant,
        membership_type: a.membership_type.as_str().to_owned(),
        fee_cents: a.fee_cents,
        interval_months: a.interval_months,
        yearly_fee_cents: a.yearly_fee_cents(),
        payment_id: a.payment_id,
        payment_method: a.payment_method.map_or(0, PaymentMethod::to_proto),
        is_confirmed: view.is_confirmed(),
        cancellation_state: view.cancellation.as_str().to_owned(),
        moderation_state: view.moderation.status().as_str().to_owned(),
        moderation_reasons: view
            .moderation
            .open_reasons
            .iter()
            .map(ModerationReason::to_proto)
            .collect(),
        is_exported: view.is_exported(),
        exported_at: view.export.exported_at.map(to_timestamp),
        export_batch: view.export.batch_id.clone().unwrap_or_default(),
        is_scrubbed: view.is_scrubbed(),
        scrubbed_at: view.scrub.scrubbed_at.map(to_timestamp),
        tracking: Some(api::MembershipTrackingInput {
            campaign: a.tracking.campaign.clone(),
            keyword: a.tracking.keyword.clone(),
        }),
        incentives: a.incentives.clone(),
        donation_receipt: a.donation_receipt,
        legacy_status: i32::from(view.legacy_status().code()),
    }
}

impl Intake {
    /// A new application with, when the policy says so, its moderation reasons, in one atomic
    /// append.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn apply_for_membership(
        &self,
        meta: &RequestMeta,
        cmd: NewMembership,
    ) -> Result<api::ApplyForMembershipResponse, IntakeError> {
        invalid_if_any(validate_new_membership(&cmd))?;
        // No read first: a retry conflicts on `request-…` and answers from the record.
        let (mut response, replayed) = self
            .run_flagged(
                meta,
                Method::ApplyForMembership,
                self.plan_membership(cmd),
                false,
            )
            .await?;
        if replayed && !response.payment_reference_code.is_empty() {
            // The stored answer holds a placeholder: the code is personal, sealed in the
            // application; read it back from there.
            let load = self.load_membership(response.membership_id, true).await?;
            response.payment_reference_code = load
                .view
                .application
                .bank
                .map(|b| b.payment_reference_code)
                .unwrap_or_default();
        }
        Ok(response)
    }

    async fn plan_membership(
        &self,
        cmd: NewMembership,
    ) -> Result<Plan<api::ApplyForMembershipResponse>, IntakeError> {
        let ids = MembershipIds {
            membership_id: self.ids.take(SequenceName::Membership).await?.id,
            payment_id: self.ids.take(SequenceName::Payment).await?.id,
        };
        let applied =
            commands::apply_for_membership(&cmd, ids, self.clock.now(), &self.policy, || {
                reference::with_prefix("XM")
            })?;
        let mut events = applied.events;
        self.seal(membership_key_id(ids.membership_id), &mut events)
            .await?;
        // Every application gets an address change (legacy `CreateAddressChangeHandler`).
        let address_type = match cmd.applicant_kind {
            ApplicantKind::Company => AddressType::Company,
            _ => AddressType::Person,
        };
        let (address_change, address_change_token) = self
            .new_address_change(ExternalIdKind::Membership, ids.membership_id, address_type)
            .await?;
        events.extend(address_change);
        let moderation = if applied.reasons.is_empty() {
            ModerationStatus::None
        } else {
            ModerationStatus::Open
        };
        let response = api::ApplyForMembershipResponse {
            membership_id: ids.membership_id,
            payment_id: ids.payment_id,
            confirmed: applied.confirmed,
            moderation_state: moderation.as_str().to_owned(),
            moderation_reasons: applied
                .reasons
                .iter()
                .map(ModerationReason::to_proto)
                .collect(),
            payment_reference_code: applied.payment_reference_code,
            position: 0,
            address_change_token,
        };
        // The record keeps that there was a code, not the code.
        let stored = api::ApplyForMembershipResponse {
            payment_reference_code: if response.payment_reference_code.is_empty() {
                String::new()
            } else {
                "sealed".into()
            },
            ..response.clone()
        };
        Ok(Plan {
            events,
            read: HashMap::new(),
            response,
            stored: Some(stored),
        })
    }

    /// Loads an application's five streams; personal units are unsealed when `unseal`.
    async fn load_membership(
        &self,
        membership_id: u64,
        unseal: bool,
    ) -> Result<MembershipLoad, IntakeError> {
        let loaded = repository::load_membership(&*self.log, membership_id).await?;
        self.fold_loaded(loaded, unseal, MembershipView::apply, |v| {
            v.application.exists()
        })
        .await?
        .ok_or(IntakeError::NotFound {
            what: WHAT,
            id: membership_id,
        })
    }

    /// A decision on an application's view with the action's free-text reason, checked first;
    /// the answer is the view after it, without personal data.
    async fn membership_decision(
        &self,
        meta: &RequestMeta,
        method: Method,
        membership_id: u64,
        reason: &str,
        decide: impl FnOnce(&MembershipView, &str) -> Result<Vec<StreamEvent>, DomainError>,
    ) -> Result<api::MembershipResponse, IntakeError> {
        let mut errors = validate_id("membership_id", membership_id);
        errors.extend(validate_reason(reason));
        invalid_if_any(errors)?;
        self.run(meta, method, async {
            let mut load = self.load_membership(membership_id, false).await?;
            let events = decide(&load.view, reason)?;
            for e in &events {
                load.view.apply(&e.stream, &e.event);
            }
            Ok(Plan {
                events,
                read: load.read,
                response: api::MembershipResponse {
                    membership: Some(membership_message(&load.view, false)),
                    position: 0,
                },
                stored: None,
            })
        })
        .await
    }

    /// Cancels an application.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn cancel_membership(
        &self,
        meta: &RequestMeta,
        membership_id: u64,
        reason: &str,
    ) -> Result<api::MembershipResponse, IntakeError> {
        self.membership_decision(
            meta,
            Method::CancelMembership,
            membership_id,
            reason,
            commands::cancel,
        )
        .await
    }

    /// Restores a cancelled application.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn restore_membership(
        &self,
        meta: &RequestMeta,
        membership_id: u64,
        reason: &str,
    ) -> Result<api::MembershipResponse, IntakeError> {
        self.membership_decision(
            meta,
            Method::RestoreMembership,
            membership_id,
            reason,
            commands::restore,
        )
        .await
    }

    /// An administrator flags an application for moderation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn flag_membership(
        &self,
        meta: &RequestMeta,
        membership_id: u64,
        note: &str,
    ) -> Result<api::MembershipResponse, IntakeError> {
        self.membership_decision(
            meta,
            Method::FlagMembership,
            membership_id,
            note,
            commands::flag,
        )
        .await
    }

    /// A moderator approves an application (the note is checked like a reason and kept in the
    /// request record only).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn approve_membership(
        &self,
        meta: &RequestMeta,
        membership_id: u64,
        note: &str,
    ) -> Result<api::MembershipResponse, IntakeError> {
        self.membership_decision(
            meta,
            Method::ApproveMembership,
            membership_id,
            note,
            |v, _| commands::approve(v),
        )
        .await
    }

    /// The export batch exported these applications. Already exported ones are reported, not
    /// refused; any other refusal refuses the whole batch (nothing is appended).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn mark_memberships_exported(
        &self,
        meta: &RequestMeta,
        membership_ids: &[u64],
        batch_id: &str,
    ) -> Result<api::MarkMembershipsExportedResponse, IntakeError> {
        let batch = ExportBatch {
            method: Method::MarkMembershipsExported,
            ids_field: "membership_ids",
            ids: membership_ids,
            batch_id,
            decide: commands::mark_exported,
            already_exported: |e| matches!(e, DomainError::MembershipAlreadyExported { .. }),
            in_batch: |membership_id, source| IntakeError::InMembershipBatch {
                membership_id,
                source,
            },
        };
        self.export_batch(meta, batch, |id| self.load_membership(id, false))
            .await
    }

    /// An application folded from the log and decrypted (sees its own writes while
    /// projectors lag).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn get_membership(&self, membership_id: u64) -> Result<api::Membership, IntakeError> {
        invalid_if_any(validate_id("membership_id", membership_id))?;
        let load = self.load_membership(membership_id, true).await?;
        Ok(membership_message(&load.view, true))
    }

    /// The timeline of an application across its streams, decrypted while its key exists.
    pub async fn membership_history(
        &self,
        membership_id: u64,
    ) -> Result<Vec<crate::audit::HistoryEntry>, IntakeError> {
        invalid_if_any(validate_id("membership_id", membership_id))?;
        use crate::audit::{membership, AuditError};
        match membership::load_membership(&*self.log, &self.vault, membership_id).await {
            Ok(steps) => Ok(membership::timeline(&steps)),
            Err(
                AuditError::MembershipNotFound(id)
                | AuditError::NotFound(id)
                | AuditError::AddressChangeNotFound(id)
                | AuditError::SubscriptionNotFound(id),
            ) => Err(IntakeError::NotFound { what: WHAT, id }),
            Err(AuditError::Store(e)) => Err(e.into()),
            Err(AuditError::Privacy(e)) => Err(e.into()),
            Err(AuditError::Decode { source, .. }) => Err(source.into()),
        }
    }
}
