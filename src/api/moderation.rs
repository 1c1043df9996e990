//! Moderation calls: flag, approve.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn flag_donation(
    svc: &LedgerService,
    request: Request<api::DonationActionRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::FlagDonation, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .flag_donation(&meta, req.donation_id, &req.reason)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn approve_donation(
    svc: &LedgerService,
    request: Request<api::ApproveDonationRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::ApproveDonation, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .approve_donation(&meta, req.donation_id, req.as_anonymous)
            .await
            .map_err(status)
    })
    .await
}
