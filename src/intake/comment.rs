//! Comment commands: the donor adds the one comment, a moderator publishes or retracts it.

use super::error::invalid_if_any;
use super::{Intake, IntakeError, Method, RequestMeta};
use crate::domain::commands::{self, NewComment};
use crate::domain::validation::{validate_comment, validate_reason};
use crate::proto::api;

impl Intake {
    /// The donor adds the donation's one comment; the text policy may force it private.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn add_comment(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        comment: NewComment,
    ) -> Result<api::DonationResponse, IntakeError> {
        invalid_if_any(validate_comment(&comment))?;
        let policy = &self.policy;
        self.donation_decision(meta, Method::AddComment, donation_id, false, |v| {
            Ok(commands::add_comment(v, policy, &comment)?)
        })
        .await
    }

    /// A moderator publishes the comment (its private text is read, so the view is unsealed).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn publish_comment(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        invalid_if_any(validate_reason(reason))?;
        let policy = &self.policy;
        self.donation_decision(meta, Method::PublishComment, donation_id, true, |v| {
            Ok(commands::publish_comment(v, policy)?)
        })
        .await
    }

    /// A moderator retracts a published comment.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn retract_comment(
        &self,
        meta: &RequestMeta,
        donation_id: u64,
        reason: &str,
    ) -> Result<api::DonationResponse, IntakeError> {
        self.reasoned_decision(
            meta,
            Method::RetractComment,
            donation_id,
            reason,
            commands::retract_comment,
        )
        .await
    }
}
