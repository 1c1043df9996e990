//! `NextId`: blocks of ids from the named sequence generators.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn next_id(
    svc: &LedgerService,
    request: Request<api::NextIdRequest>,
) -> Result<Response<api::NextIdResponse>, Status> {
    svc.call(Method::NextId, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .next_id(&meta, &req.sequence, req.count)
            .await
            .map_err(status)
    })
    .await
}
