//! Deletion calls: cancel, delete, restore.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn cancel_donation(
    svc: &LedgerService,
    request: Request<api::DonationActionRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::CancelDonation, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .cancel_donation(&meta, req.donation_id, &req.reason)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn delete_donation(
    svc: &LedgerService,
    request: Request<api::DonationActionRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::DeleteDonation, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .delete_donation(&meta, req.donation_id, &req.reason)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn restore_donation(
    svc: &LedgerService,
    request: Request<api::DonationActionRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::RestoreDonation, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .restore_donation(&meta, req.donation_id, &req.reason)
            .await
            .map_err(status)
    })
    .await
}
