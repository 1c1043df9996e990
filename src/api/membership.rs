//! Membership calls: apply, cancel, restore, flag, approve, the export batch, and the reads.
//! Messages map straight to the intake's membership commands.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::domain::membership::commands::NewMembership;
use crate::domain::membership::{ApplicantKind, MembershipType};
use crate::domain::types::PaymentMethod;
use crate::intake::Method;
use crate::proto::api;
use crate::proto::events as ev;

/// The request as the domain's new application; unknown enum values read as unspecified
/// (which validation refuses by field).
fn new_membership(req: &api::ApplyForMembershipRequest) -> NewMembership {
    let a = req.applicant.clone().unwrap_or_default();
    let payment = req.payment.clone().unwrap_or_default();
    let tracking = req.tracking.clone().unwrap_or_default();
    NewMembership {
        applicant_kind: ApplicantKind::try_from(a.kind).unwrap_or(ApplicantKind::Unspecified),
        applicant: ev::ApplicantData {
            salutation: a.salutation,
            title: a.title,
            first_name: a.first_name,
            last_name: a.last_name,
            company_name: a.company_name,
            street: a.street,
            postcode: a.postcode,
            city: a.city,
            country: a.country,
            email: a.email,
            phone: a.phone,
            date_of_birth: a.date_of_birth,
        },
        membership_type: MembershipType::try_from(req.membership_type)
            .unwrap_or(MembershipType::Unspecified),
        fee_cents: req.fee_cents,
        interval_months: req.interval_months,
        payment_method: PaymentMethod::from_proto(payment.method),
        iban: payment.iban,
        bic: payment.bic,
        tracking: ev::MembershipTracking {
            campaign: tracking.campaign,
            keyword: tracking.keyword,
        },
        incentives: req.incentives.clone(),
        donation_receipt: req.donation_receipt,
    }
}

#[tracing::instrument(skip_all)]
pub(super) async fn apply_for_membership(
    svc: &LedgerService,
    request: Request<api::ApplyForMembershipRequest>,
) -> Result<Response<api::ApplyForMembershipResponse>, Status> {
    svc.call(Method::ApplyForMembership, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        svc.intake
            .apply_for_membership(&meta, new_membership(&req))
            .await
            .map_err(status)
    })
    .await
}

/// The four actions on one application share their request and answer.
macro_rules! action {
    ($name:ident, $method:ident, $intake:ident) => {
        #[tracing::instrument(skip_all)]
        pub(super) async fn $name(
            svc: &LedgerService,
            request: Request<api::MembershipActionRequest>,
        ) -> Result<Response<api::MembershipResponse>, Status> {
            svc.call(Method::$method, request, |p, req| async move {
                let meta = meta(&p, req.context.as_ref(), &req)?;
                svc.intake
                    .$intake(&meta, req.membership_id, &req.reason)
                    .await
                    .map_err(status)
            })
            .await
        }
    };
}

action!(cancel_membership, CancelMembership, cancel_membership);
action!(restore_membership, RestoreMembership, restore_membership);
action!(flag_membership, FlagMembership, flag_membership);
action!(approve_membership, ApproveMembership, approve_membership);

#[tracing::instrument(skip_all)]
pub(super) async fn mark_memberships_exported(
    svc: &LedgerService,
    request: Request<api::MarkMembershipsExportedRequest>,
) -> Result<Response<api::MarkMembershipsExportedResponse>, Status> {
    svc.call(
        Method::MarkMembershipsExported,
        request,
        |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            svc.intake
                .mark_memberships_exported(&meta, &req.membership_ids, &req.batch_id)
                .await
                .map_err(status)
        },
    )
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn get_membership(
    svc: &LedgerService,
    request: Request<api::GetMembershipRequest>,
) -> Result<Response<api::Membership>, Status> {
    svc.call(Method::GetMembership, request, |_, req| async move {
        svc.intake
            .get_membership(req.membership_id)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn get_membership_history(
    svc: &LedgerService,
    request: Request<api::GetMembershipHistoryRequest>,
) -> Result<Response<api::GetHistoryResponse>, Status> {
    svc.call(Method::GetMembershipHistory, request, |_, req| async move {
        let entries = svc
            .intake
            .membership_history(req.membership_id)
            .await
            .map_err(status)?;
        Ok(super::history::history_response(entries))
    })
    .await
}
