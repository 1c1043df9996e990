//! Moderation commands: an administrator flags, a moderator approves.

use super::{Intake, IntakeError, Method, RequestMeta};
use crate::domain::commands;
use crate::proto::api;

impl Intake {
    /// An administrator flags a donation for moderation.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn flag_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        note: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        self.reasoned_decision(
            meta,
            Method::FlagDonation,
            donation_id,
            note,
            commands::flag_manually,
        )
        .await
    }

    /// A moderator approves a donation, optionally as anonymous.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn approve_donation(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        as_anonymous: bool,
    ) -> Result<api::DonationResponse, IntakeError> {
        self.donation_decision(meta, Method::ApproveDonation, donation_id, false, |v| {
            Ok(commands::approve(v, as_anonymous)?)
        })
        .await
    }
}
