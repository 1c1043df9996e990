//! `LedgerService`: the generated `ledger.api.v1.Ledger` trait, translating messages to intake
//! commands and intake answers back. No business rule lives here.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use tonic::{Request, Response, Status};
use tracing::Level;

use super::auth::{scope, Authenticator, Principal};
use super::error::to_status;
use crate::domain::admission;
use crate::domain::commands::{NewComment, NewDonation, NewDonor, NewPayment};
use crate::domain::types::{donor_kind, to_datetime, Money, PaymentMethod};
use crate::domain::validation;
use crate::intake::{BookPaymentCommand, Intake, IntakeError, Method, MoneyBack, RequestMeta};
use crate::metrics::Metrics;
use crate::proto::api::{self, ledger_server::Ledger};
use crate::proto::events as ev;
use crate::store::{Actor, ActorKind};

/// The gRPC service over an intake.
#[derive(Clone)]
pub struct LedgerService {
    intake: Arc<Intake>,
    auth: Arc<Authenticator>,
    metrics: Metrics,
}

impl LedgerService {
    /// A service answering with `intake`, admitting the clients of `auth`.
    pub fn new(intake: Arc<Intake>, auth: Arc<Authenticator>, metrics: Metrics) -> Self {
        metrics.describe(
            "ledger_grpc_requests_total",
            "gRPC calls by method and status code.",
        );
        metrics.describe(
            "ledger_grpc_request_seconds_sum",
            "Total seconds spent in gRPC calls, by method.",
        );
        Self {
            intake,
            auth,
            metrics,
        }
    }

    /// Authorises, runs `f`, counts the call by method and code.
    async fn call<Req, Resp, F, Fut>(
        &self,
        method: Method,
        request: Request<Req>,
        f: F,
    ) -> Result<Response<Resp>, Status>
    where
        F: FnOnce(Principal, Req) -> Fut,
        Fut: Future<Output = Result<Resp, Status>>,
    {
        let started = Instant::now();
        let result = match self.auth.authorize(&request, scope(method), method.name()) {
            Ok(principal) => f(principal, request.into_inner()).await,
            Err(status) => Err(status),
        };
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        };
        if let Err(status) = &result {
            log_refusal(method.name(), status);
        }
        let code = format!("{code:?}");
        self.metrics.count(
            "ledger_grpc_requests_total",
            &[("method", method.name()), ("code", &code)],
            1,
        );
        self.metrics.gauge_add(
            "ledger_grpc_request_seconds_sum",
            &[("method", method.name())],
            started.elapsed().as_secs_f64(),
        );
        result.map(Response::new)
    }
}

/// How a refused or failed call is logged, by its code. Handlers are instrumented without
/// `err` (which logs every `Err` at ERROR, a refused donation as loudly as a broken disk);
/// [`LedgerService::call`] logs here instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalLog {
    /// Logged at this level with the method, code and message.
    At(Level),
    /// Already logged where it was decided: `PermissionDenied` and `Unauthenticated` by the
    /// authorisation (WARN, with the client and scope), `Internal` by
    /// [`crate::api::error::to_status`] (ERROR, with the cause chain).
    Elsewhere,
}

/// The log of a call answered with `code`: the client's mistakes (a broken rule, a missing
/// donation, a lost race) at INFO, resource limits at WARN, the server's failures at ERROR.
/// Exhaustive, so a new code is decided here.
pub fn refusal_log(code: tonic::Code) -> RefusalLog {
    use tonic::Code;
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::Aborted
        | Code::OutOfRange
        | Code::Cancelled
        | Code::Ok => RefusalLog::At(Level::INFO),
        Code::ResourceExhausted | Code::DeadlineExceeded | Code::Unimplemented => {
            RefusalLog::At(Level::WARN)
        }
        Code::PermissionDenied | Code::Unauthenticated | Code::Internal => RefusalLog::Elsewhere,
        Code::Unavailable | Code::Unknown | Code::DataLoss => RefusalLog::At(Level::ERROR),
    }
}

fn log_refusal(method: &'static str, status: &Status) {
    let code = status.code();
    let reason = status.message();
    match refusal_log(code) {
        RefusalLog::At(Level::ERROR) => tracing::error!(method, ?code, reason, "call failed"),
        RefusalLog::At(Level::WARN) => tracing::warn!(method, ?code, reason, "call refused"),
        RefusalLog::At(_) => tracing::info!(method, ?code, reason, "call refused"),
        RefusalLog::Elsewhere => {}
    }
}

fn invalid(field: &str, rule: &str) -> Status {
    to_status(&IntakeError::field(field, rule))
}

/// The request context as intake metadata; the actor kind must be one the client may act as.
fn meta<M: Message>(
    principal: &Principal,
    context: Option<&api::RequestContext>,
    request: &M,
) -> Result<RequestMeta, Status> {
    let context =
        context.ok_or_else(|| invalid("context", "is required (request_id, actor, source)"))?;
    let actor = context
        .actor
        .as_ref()
        .ok_or_else(|| invalid("context.actor", "is required"))?;
    let kind = match api::ActorKind::try_from(actor.kind) {
        Ok(api::ActorKind::Frontend) => ActorKind::Frontend,
        Ok(api::ActorKind::FocUser) => ActorKind::FocUser,
        Ok(api::ActorKind::Provider) => ActorKind::Provider,
        Ok(api::ActorKind::System) => ActorKind::System,
        Ok(api::ActorKind::Unspecified) | Err(_) => {
            return Err(invalid(
                "context.actor.kind",
                "must be FRONTEND, FOC_USER, PROVIDER or SYSTEM",
            ))
        }
    };
    if !principal.may_act_as(kind) {
        tracing::warn!(client = %principal.name, actor_kind = kind.as_str(), "refused: actor kind not allowed");
        return Err(Status::permission_denied(format!(
            "client `{}` may not act as {}",
            principal.name,
            kind.as_str()
        )));
    }
    let id = if actor.id.is_empty() {
        principal.name.clone()
    } else {
        actor.id.clone()
    };
    RequestMeta::new(
        &context.request_id,
        Actor { kind, id },
        &context.source,
        &request.encode_to_vec(),
    )
    .map_err(|e| to_status(&e))
}

/// The donor of a request, its kind mapped straight to the domain's (unknown values read as
/// unspecified, which validation refuses).
fn new_donor(d: api::DonorInput) -> NewDonor {
    NewDonor {
        kind: donor_kind(d.kind),
        salutation: d.salutation,
        title: d.title,
        first_name: d.first_name,
        last_name: d.last_name,
        company_name: d.company_name,
        street: d.street,
        postcode: d.postcode,
        city: d.city,
        country: d.country,
        email: d.email,
        wants_newsletter: d.wants_newsletter,
        wants_receipt: d.wants_receipt,
    }
}

/// An amount given as cents and currency; 0 cents means "not given".
fn optional_money(cents: i64, currency: &str) -> Result<Option<Money>, Status> {
    validation::optional_money(cents, currency)
        .map_err(|e| to_status(&IntakeError::Invalid(vec![e])))
}

fn status(e: IntakeError) -> Status {
    to_status(&e)
}

#[tonic::async_trait]
impl Ledger for LedgerService {
    #[tracing::instrument(skip_all)]
    async fn add_donation(
        &self,
        request: Request<api::AddDonationRequest>,
    ) -> Result<Response<api::AddDonationResponse>, Status> {
        self.call(Method::AddDonation, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            let payment = req.payment.unwrap_or_default();
            let tracking = req.tracking.unwrap_or_default();
            let comment = req.comment.unwrap_or_default();
            let cmd = NewDonation {
                payment: NewPayment {
                    amount_cents: payment.amount_cents,
                    currency: payment.currency,
                    interval_months: payment.interval_months,
                    method: PaymentMethod::from_proto(payment.method),
                    iban: payment.iban,
                    bic: payment.bic,
                },
                donor: new_donor(req.donor.unwrap_or_default()),
                comment: NewComment {
                    text: comment.text,
                    is_public: comment.is_public,
                    display_name: comment.display_name,
                },
                tracking: ev::Tracking {
                    campaign: tracking.campaign,
                    keyword: tracking.keyword,
                    impression_count: tracking.impression_count,
                    banner_impression_count: tracking.banner_impression_count,
                    contribution_tracking_id: tracking.contribution_tracking_id,
                },
                donation_id: (req.donation_id != 0).then_some(req.donation_id),
            };
            self.intake.add_donation(&meta, cmd).await.map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn book_payment(
        &self,
        request: Request<api::BookPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        self.call(Method::BookPayment, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            let valuation_date = match &req.valuation_date {
                None => None,
                Some(ts) => match admission::time_misfit(ts) {
                    Some(rule) => return Err(invalid("valuation_date", &rule)),
                    None => to_datetime(ts),
                },
            };
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
            self.intake.book_payment(&meta, cmd).await.map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn fail_payment(
        &self,
        request: Request<api::FailPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        self.call(Method::FailPayment, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .fail_payment(&meta, req.payment_id, &req.reason)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn refund_payment(
        &self,
        request: Request<api::RefundPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        self.call(Method::RefundPayment, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            let cmd = MoneyBack {
                payment_id: req.payment_id,
                amount: optional_money(req.amount_cents, &req.currency)?,
                reason: req.reason,
            };
            self.intake.refund_payment(&meta, cmd).await.map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn report_chargeback(
        &self,
        request: Request<api::RefundPaymentRequest>,
    ) -> Result<Response<api::PaymentResponse>, Status> {
        self.call(Method::ReportChargeback, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            let cmd = MoneyBack {
                payment_id: req.payment_id,
                amount: optional_money(req.amount_cents, &req.currency)?,
                reason: req.reason,
            };
            self.intake
                .report_chargeback(&meta, cmd)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::CancelDonation, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .cancel_donation(&meta, req.donation_id, &req.reason)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn delete_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::DeleteDonation, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .delete_donation(&meta, req.donation_id, &req.reason)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn restore_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::RestoreDonation, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .restore_donation(&meta, req.donation_id, &req.reason)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn flag_donation(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::FlagDonation, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .flag_donation(&meta, req.donation_id, &req.reason)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn approve_donation(
        &self,
        request: Request<api::ApproveDonationRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::ApproveDonation, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .approve_donation(&meta, req.donation_id, req.as_anonymous)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn add_comment(
        &self,
        request: Request<api::AddCommentRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::AddComment, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            let c = req
                .comment
                .ok_or_else(|| invalid("comment", "is required"))?;
            let comment = NewComment {
                text: c.text,
                is_public: c.is_public,
                display_name: c.display_name,
            };
            self.intake
                .add_comment(&meta, req.donation_id, comment)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn publish_comment(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::PublishComment, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .publish_comment(&meta, req.donation_id, &req.reason)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn retract_comment(
        &self,
        request: Request<api::DonationActionRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::RetractComment, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .retract_comment(&meta, req.donation_id, &req.reason)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn update_donor(
        &self,
        request: Request<api::UpdateDonorRequest>,
    ) -> Result<Response<api::DonationResponse>, Status> {
        self.call(Method::UpdateDonor, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            let donor = req.donor.ok_or_else(|| invalid("donor", "is required"))?;
            self.intake
                .update_donor(&meta, req.donation_id, new_donor(donor))
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn mark_exported(
        &self,
        request: Request<api::MarkExportedRequest>,
    ) -> Result<Response<api::MarkExportedResponse>, Status> {
        self.call(Method::MarkExported, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .mark_exported(&meta, &req.donation_ids, &req.batch_id)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn record_contribution_tracking(
        &self,
        request: Request<api::RecordContributionTrackingRequest>,
    ) -> Result<Response<api::ContributionTrackingResponse>, Status> {
        self.call(
            Method::RecordContributionTracking,
            request,
            |p, req| async move {
                let meta = meta(&p, req.context.as_ref(), &req)?;
                self.intake
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
    async fn link_contribution(
        &self,
        request: Request<api::LinkContributionRequest>,
    ) -> Result<Response<api::ContributionTrackingResponse>, Status> {
        self.call(Method::LinkContribution, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .link_contribution(&meta, req.contribution_tracking_id, req.contribution_id)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_donation(
        &self,
        request: Request<api::GetDonationRequest>,
    ) -> Result<Response<api::Donation>, Status> {
        self.call(Method::GetDonation, request, |_, req| async move {
            self.intake
                .get_donation(req.donation_id)
                .await
                .map_err(status)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_history(
        &self,
        request: Request<api::GetHistoryRequest>,
    ) -> Result<Response<api::GetHistoryResponse>, Status> {
        self.call(Method::GetHistory, request, |_, req| async move {
            let entries = self.intake.history(req.donation_id).await.map_err(status)?;
            Ok(api::GetHistoryResponse {
                entries: entries
                    .into_iter()
                    .map(|e| api::HistoryEntry {
                        occurred_at: Some(crate::domain::types::to_timestamp(e.occurred_at)),
                        position: e.position,
                        stream: e.stream,
                        event_type: e.event_type,
                        actor_kind: e.actor_kind,
                        actor: e.actor,
                        source: e.source,
                        changes: e
                            .changes
                            .into_iter()
                            .map(|c| api::HistoryChange {
                                field: c.field,
                                before: c.before,
                                after: c.after,
                            })
                            .collect(),
                    })
                    .collect(),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn next_id(
        &self,
        request: Request<api::NextIdRequest>,
    ) -> Result<Response<api::NextIdResponse>, Status> {
        self.call(Method::NextId, request, |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            self.intake
                .next_id(&meta, &req.sequence, req.count)
                .await
                .map_err(status)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn client_mistakes_log_at_info_server_faults_at_error_and_nothing_twice() {
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::AlreadyExists,
            Code::Aborted,
        ] {
            assert_eq!(refusal_log(code), RefusalLog::At(Level::INFO), "{code:?}");
        }
        assert_eq!(
            refusal_log(Code::ResourceExhausted),
            RefusalLog::At(Level::WARN)
        );
        for code in [Code::Unavailable, Code::Unknown, Code::DataLoss] {
            assert_eq!(refusal_log(code), RefusalLog::At(Level::ERROR), "{code:?}");
        }
        // Logged where decided: the authorisation (WARN), `to_status` (ERROR with the cause).
        for code in [
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Internal,
        ] {
            assert_eq!(refusal_log(code), RefusalLog::Elsewhere, "{code:?}");
        }
    }
}
