//! Payment calls: a provider books, fails, refunds or charges back a payment.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::error::to_status;
use super::service::LedgerService;
use crate::domain::types::Money;
use crate::domain::validation::{self, FieldError};
use crate::intake::{BookPaymentCommand, IntakeError, Method, MoneyBack};
use crate::proto::{api, events as ev};

#[tracing::instrument(skip_all)]
pub(super) async fn book_payment(
    svc: &LedgerService,
    request: Request<api::BookPaymentRequest>,
) -> Result<Response<api::PaymentResponse>, Status> {
    svc.call(Method::BookPayment, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        let valuation_date =
            validation::optional_time("valuation_date", req.valuation_date.as_ref())
                .map_err(field_error)?;
        let cmd = BookPaymentCommand {
            payment_id: req.payment_id,
            valuation_date,
            amount: optional_money(req.amount_cents, &req.currency)?,
            provider: ev::ProviderData {
                transaction_id: req.transaction_id.clone(),
                payer_id: req.payer_id,
                subscription_id: req.subscription_id,
                payer_status: req.payer_status,
                payment_status: req.payment_status,
                ..Default::default()
            },
            transaction_id: req.transaction_id,
        };
        svc.intake.book_payment(&meta, cmd).await.map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn fail_payment(
    svc: &LedgerService,
    request: Request<api::FailPaymentRequest>,
) -> Result<Response<api::PaymentResponse>, Status> {
    svc.call(Method::FailPayment, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .fail_payment(&meta, req.payment_id, &req.reason)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn refund_payment(
    svc: &LedgerService,
    request: Request<api::RefundPaymentRequest>,
) -> Result<Response<api::PaymentResponse>, Status> {
    svc.call(Method::RefundPayment, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        let cmd = MoneyBack {
            payment_id: req.payment_id,
            amount: optional_money(req.amount_cents, &req.currency)?,
            reason: req.reason,
        };
        svc.intake.refund_payment(&meta, cmd).await.map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn report_chargeback(
    svc: &LedgerService,
    request: Request<api::RefundPaymentRequest>,
) -> Result<Response<api::PaymentResponse>, Status> {
    svc.call(Method::ReportChargeback, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        let cmd = MoneyBack {
            payment_id: req.payment_id,
            amount: optional_money(req.amount_cents, &req.currency)?,
            reason: req.reason,
        };
        svc.intake
            .report_chargeback(&meta, cmd)
            .await
            .map_err(status)
    })
    .await
}

/// An amount given as cents and currency; 0 cents means "not given".
fn optional_money(cents: i64, currency: &str) -> Result<Option<Money>, Status> {
    validation::optional_money(cents, currency).map_err(field_error)
}

fn field_error(e: FieldError) -> Status {
    to_status(&IntakeError::Invalid(vec![e]))
}
