//! Deletion commands: the donor cancels, an administrator deletes or restores.

use super::{Intake, IntakeError, Method, RequestMeta};
use crate::domain::commands;
use crate::proto::api;

impl Intake {
    /// The donor cancels (direct debit and bank transfer only).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn cancel_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        self.reasoned_decision(
            meta,
            Method::CancelDonation,
            donation_id,
            reason,
            commands::cancel_by_donor,
        )
        .await
    }

    /// An administrator deletes a donation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        self.reasoned_decision(
            meta,
            Method::DeleteDonation,
            donation_id,
            reason,
            commands::delete_by_admin,
        )
        .await
    }

    /// An administrator restores a cancelled or deleted donation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn restore_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        self.reasoned_decision(
            meta,
            Method::RestoreDonation,
            donation_id,
            reason,
            commands::restore,
        )
        .await
    }
}
