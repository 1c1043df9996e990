//! `MarkExported`: the export batch.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn mark_exported(
    svc: &LedgerService,
    request: Request<api::MarkExportedRequest>,
) -> Result<Response<api::MarkExportedResponse>, Status> {
    svc.call(Method::MarkExported, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .mark_exported(&meta, &req.donation_ids, &req.batch_id)
            .await
            .map_err(status)
    })
    .await
}
