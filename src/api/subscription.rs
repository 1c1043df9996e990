//! Subscription calls: a banner's or form's subscription, its confirmation by code, the export
//! batch, the back office's read and forced removal by id. Messages map straight to the
//! intake's subscription commands.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::intake::Method;
use crate::proto::api;

#[tracing::instrument(skip_all)]
pub(super) async fn subscribe(
    svc: &LedgerService,
    request: Request<api::SubscribeRequest>,
) -> Result<Response<api::SubscribeResponse>, Status> {
    svc.call(Method::Subscribe, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        let tracking = req.tracking.clone().unwrap_or_default();
        svc.intake
            .subscribe(
                &meta,
                &req.email,
                &tracking.campaign,
                &tracking.keyword,
                &req.source,
            )
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn confirm_subscription(
    svc: &LedgerService,
    request: Request<api::ConfirmSubscriptionRequest>,
) -> Result<Response<api::SubscriptionResponse>, Status> {
    svc.call(Method::ConfirmSubscription, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .confirm_subscription(&meta, &req.confirmation_code)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn mark_subscriptions_exported(
    svc: &LedgerService,
    request: Request<api::MarkSubscriptionsExportedRequest>,
) -> Result<Response<api::MarkSubscriptionsExportedResponse>, Status> {
    svc.call(
        Method::MarkSubscriptionsExported,
        request,
        |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            svc.intake
                .mark_subscriptions_exported(&meta, &req.subscription_ids, &req.batch_id)
                .await
                .map_err(status)
        },
    )
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn get_subscription(
    svc: &LedgerService,
    request: Request<api::GetSubscriptionRequest>,
) -> Result<Response<api::Subscription>, Status> {
    svc.call(Method::GetSubscription, request, |_, req| async move {
        svc.intake
            .get_subscription(req.subscription_id)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn remove_subscription(
    svc: &LedgerService,
    request: Request<api::RemoveSubscriptionRequest>,
) -> Result<Response<api::SubscriptionResponse>, Status> {
    svc.call(Method::RemoveSubscription, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .remove_subscription(&meta, req.subscription_id)
            .await
            .map_err(status)
    })
    .await
}
