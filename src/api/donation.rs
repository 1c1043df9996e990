//! `AddDonation`, `UpdateDonor` and `GetDonation`: the donation and donor messages mapped
//! straight to the domain's commands (proto enums to domain enums, no string codes).

use tonic::{Request, Response, Status};

use super::comment::new_comment;
use super::context::{invalid, meta, status};
use super::service::LedgerService;
use crate::domain::commands::{NewDonation, NewDonor, NewPayment};
use crate::domain::types::{donor_kind, PaymentMethod};
use crate::intake::Method;
use crate::proto::{api, events as ev};

#[tracing::instrument(skip_all)]
pub(super) async fn add_donation(
    svc: &LedgerService,
    request: Request<api::AddDonationRequest>,
) -> Result<Response<api::AddDonationResponse>, Status> {
    svc.call(Method::AddDonation, request, |p, req| async move {
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
            comment: new_comment(comment),
            tracking: ev::Tracking {
                campaign: tracking.campaign,
                keyword: tracking.keyword,
                impression_count: tracking.impression_count,
                banner_impression_count: tracking.banner_impression_count,
                contribution_tracking_id: tracking.contribution_tracking_id,
            },
            donation_id: (req.donation_id != 0).then_some(req.donation_id),
        };
        svc.intake.add_donation(&meta, cmd).await.map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn update_donor(
    svc: &LedgerService,
    request: Request<api::UpdateDonorRequest>,
) -> Result<Response<api::DonationResponse>, Status> {
    svc.call(Method::UpdateDonor, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        let donor = req.donor.ok_or_else(|| invalid("donor", "is required"))?;
        svc.intake
            .update_donor(&meta, req.donation_id, new_donor(donor))
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn get_donation(
    svc: &LedgerService,
    request: Request<api::GetDonationRequest>,
) -> Result<Response<api::Donation>, Status> {
    svc.call(Method::GetDonation, request, |_, req| async move {
        svc.intake
            .get_donation(req.donation_id)
            .await
            .map_err(status)
    })
    .await
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
