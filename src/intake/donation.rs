//! New donations (`AddDonation`) and reading one back (`GetDonation`).

use std::collections::HashMap;

use super::error::invalid_if_any;
use super::{donation_message, reference, Intake, IntakeError, Method, Plan, RequestMeta};
use crate::domain::address_change::{AddressType, ExternalIdKind};
use crate::domain::commands::{self, DonationIds, NewDonation};
use crate::domain::donation::DonorKind;
use crate::domain::moderation::{ModerationReason, ModerationStatus};
use crate::domain::payment::PaymentStatus;
use crate::domain::streams;
use crate::domain::validation::{validate_id, validate_new_donation};
use crate::proto::api;
use crate::sequence::SequenceName;

impl Intake {
    /// A new donation with its payment and, when the policy says so, moderation reasons, in one
    /// atomic append.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn add_donation(
        &self,
        meta: &RequestMeta,
        cmd: NewDonation,
    ) -> Result<api::AddDonationResponse, IntakeError> {
        invalid_if_any(validate_new_donation(&cmd))?;
        let supplied = cmd.donation_id;
        let result = self
            .run_flagged(meta, Method::AddDonation, self.plan_donation(cmd), false)
            .await;
        let response = match (result, supplied) {
            (
                Err(IntakeError::Store(crate::store::StoreError::Conflict { stream, .. })),
                Some(id),
            ) if stream == streams::donation(id) => {
                return Err(IntakeError::AlreadyExists {
                    what: "donation",
                    id,
                })
            }
            (result, _) => result?,
        };
        let (mut response, replayed) = response;
        if replayed {
            // An answer from the idempotency record: the code is personal (sealed in the
            // payment stream), so it is read back from there.
            if let Ok((payment, _)) = self.load_payment(response.payment_id).await {
                if let Some(bank) = payment.bank {
                    response.payment_reference_code = bank.payment_reference_code;
                }
            }
        }
        Ok(response)
    }

    async fn plan_donation(
        &self,
        cmd: NewDonation,
    ) -> Result<Plan<api::AddDonationResponse>, IntakeError> {
        let (donation_id, key) = match cmd.donation_id {
            Some(id) => {
                let current = self.sequences.current(SequenceName::Donation).await?;
                if current.is_none_or(|c| id > c) {
                    return Err(IntakeError::field(
                        "donation_id",
                        "was not handed out by NextId(donation)",
                    ));
                }
                (id, None)
            }
            None => {
                let r = self.ids.take(SequenceName::Donation).await?;
                (r.id, r.key)
            }
        };
        let payment_id = self.ids.take(SequenceName::Payment).await?.id;
        let ids = DonationIds {
            donation_id,
            payment_id,
        };
        let created = commands::create_donation(
            &cmd,
            ids,
            self.clock.now(),
            &self.policy,
            reference::generate,
        )?;
        let mut events = created.events;
        // Donors with a postal address get an address change (legacy
        // `CreateAddressChangeHandler`); email-only and anonymous donors none.
        let address_type = postal_address_type(cmd.donor.kind);
        let mut address_change_token = String::new();
        let mut address_change_events = Vec::new();
        if let Some(address_type) = address_type {
            let (more, token) = self
                .new_address_change(ExternalIdKind::Donation, donation_id, address_type)
                .await?;
            address_change_events = more;
            address_change_token = token;
        }
        match key {
            // The key was created with the id block: no key-store commit on this path.
            Some(key) => {
                for e in &mut events {
                    crate::privacy::seal_with(
                        std::slice::from_mut(&mut e.event),
                        donation_id,
                        &key,
                    );
                }
            }
            None => self.seal(donation_id, &mut events).await?,
        }
        // Nothing personal in them: they need no key.
        events.extend(address_change_events);
        let moderation = if created.reasons.is_empty() {
            ModerationStatus::None
        } else {
            ModerationStatus::Open
        };
        let response = api::AddDonationResponse {
            donation_id,
            payment_id,
            payment_state: PaymentStatus::Pending.as_str().to_owned(),
            moderation_state: moderation.as_str().to_owned(),
            moderation_reasons: created
                .reasons
                .iter()
                .map(ModerationReason::to_proto)
                .collect(),
            payment_reference_code: created.payment_reference_code,
            position: 0,
            address_change_token,
        };
        let stored = api::AddDonationResponse {
            payment_reference_code: String::new(),
            ..response.clone()
        };
        Ok(Plan {
            events,
            read: HashMap::new(),
            response,
            stored: Some(stored),
        })
    }

    /// The combined view of a donation folded from the log and decrypted: a confirmation page
    /// sees its own write even while projectors lag.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn get_donation(&self, donation_id: u64) -> Result<api::Donation, IntakeError> {
        invalid_if_any(validate_id("donation_id", donation_id))?;
        let load = self.load_view(donation_id, true).await?;
        Ok(donation_message(&load.view, true))
    }
}

/// The address type of an address change for a donor of `kind`; `None` for donors without a
/// postal address (email-only, anonymous), who get none.
pub(super) fn postal_address_type(kind: DonorKind) -> Option<AddressType> {
    match kind {
        DonorKind::Person => Some(AddressType::Person),
        DonorKind::Company => Some(AddressType::Company),
        _ => None,
    }
}
