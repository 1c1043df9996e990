//! Address-change calls: the address-change page's read and change by token, and the export
//! batch. Messages map straight to the intake's address-change commands.

use tonic::{Request, Response, Status};

use super::context::{meta, status};
use super::service::LedgerService;
use crate::domain::address_change::AddressType;
use crate::domain::validation::address_change_input;
use crate::intake::Method;
use crate::proto::api;
use crate::proto::events as ev;

#[tracing::instrument(skip_all)]
pub(super) async fn get_address_change(
    svc: &LedgerService,
    request: Request<api::GetAddressChangeRequest>,
) -> Result<Response<api::AddressChange>, Status> {
    svc.call(Method::GetAddressChange, request, |_, req| async move {
        svc.intake
            .get_address_change(&req.identifier)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn change_address(
    svc: &LedgerService,
    request: Request<api::ChangeAddressRequest>,
) -> Result<Response<api::ChangeAddressResponse>, Status> {
    svc.call(Method::ChangeAddress, request, |p, req| async move {
        let meta = meta(&p, req.context.as_ref(), &req)?;
        let a = req.address.clone().unwrap_or_default();
        // An unknown type reads as unspecified (which validation refuses by field).
        let address_type = AddressType::try_from(a.r#type).unwrap_or(AddressType::Unspecified);
        let input = address_change_input(
            address_type,
            ev::AddressData {
                salutation: a.salutation,
                title: a.title,
                first_name: a.first_name,
                last_name: a.last_name,
                company_name: a.company_name,
                street: a.street,
                postcode: a.postcode,
                city: a.city,
                country: a.country,
            },
            req.donation_receipt_opt_out,
        );
        svc.intake
            .change_address(&meta, &req.identifier, input)
            .await
            .map_err(status)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub(super) async fn mark_address_changes_exported(
    svc: &LedgerService,
    request: Request<api::MarkAddressChangesExportedRequest>,
) -> Result<Response<api::MarkAddressChangesExportedResponse>, Status> {
    svc.call(
        Method::MarkAddressChangesExported,
        request,
        |p, req| async move {
            let meta = meta(&p, req.context.as_ref(), &req)?;
            svc.intake
                .mark_address_changes_exported(&meta, &req.address_change_ids, &req.batch_id)
                .await
                .map_err(status)
        },
    )
    .await
}
