//! Contribution-tracking calls: record tracking data, link a contribution.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn record_contribution_tracking(
    svc: &LedgerService,
    request: Request<api::RecordContributionTrackingRequest>,
) -> Result<Response<api::ContributionTrackingResponse>, Status> {
    svc.call(
        Method::RecordContributionTracking,
        request,
        |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            svc.intake
                .record_contribution_tracking(
                    &meta,
                    req.contribution_tracking_id,
                    &req.allocation_token,
                    req.fields.unwrap_or_default(),
                )
                .await
                .map_err(status)
        },
    )
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn link_contribution(
    svc: &LedgerService,
    request: Request<api::LinkContributionRequest>,
) -> Result<Response<api::ContributionTrackingResponse>, Status> {
    svc.call(Method::LinkContribution, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .link_contribution(&meta, req.contribution_tracking_id, req.contribution_id)
            .await
            .map_err(status)
    })
    .await
}
