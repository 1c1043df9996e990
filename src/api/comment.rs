//! Comment calls: add, publish, retract.

use tonic::{Request, Response, Status};

use super::context::{invalid, meta, status};
use super::service::LedgerService;
use crate::domain::commands::NewComment;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn add_comment(
    svc: &LedgerService,
    request: Request<api::AddCommentRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::AddComment, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        let c = req
            .comment
            .ok_or_else(|| invalid("comment", "is required"))?;
        let comment = NewComment {
            text: c.text,
            is_public: c.is_public,
            display_name: c.display_name,
        };
        svc.intake
            .add_comment(&meta, req.donation_id, comment)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn publish_comment(
    svc: &LedgerService,
    request: Request<api::DonationActionRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::PublishComment, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .publish_comment(&meta, req.donation_id, &req.reason)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn retract_comment(
    svc: &LedgerService,
    request: Request<api::DonationActionRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::RetractComment, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .retract_comment(&meta, req.donation_id, &req.reason)
            .await
            .map_err(status)
    })
    .await
}

/// A comment as the domain takes it.
pub(super) fn new_comment(c: api::CommentInput) -> NewComment {
    NewComment {
        text: c.text,
        is_public: c.is_public,
        display_name: c.display_name,
    }
}
