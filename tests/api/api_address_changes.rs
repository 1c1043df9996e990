//! Address changes over gRPC: the token issued with a donation (postal address only) or an
//! application, `GetAddressChange` by token, `ChangeAddress` for a person, a company and an
//! opt-out only, the token rotation (the old token refused), the export batch, idempotency,
//! and one refusal per bad-input rule (field and rule named, nothing appended).
use crate::support;

use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use support::api::*;
use tonic::Code;
use tonic_types::StatusExt;

/// Adds a donation and returns its answer.
async fn donate(app: &mut TestApp, req: api::AddDonationRequest) -> api::AddDonationResponse {
    app.client
        .add_donation(with_token(req, ADMIN))
        .await
        .unwrap()
        .into_inner()
}

/// A donation by a donor of `kind` (the address fields emptied where the kind has none).
fn donation_by(kind: ev::DonorKind) -> api::AddDonationRequest {
    let mut req = donation(ev::PaymentMethod::BankTransfer, 1_000);
    let donor = req.donor.as_mut().unwrap();
    donor.kind = kind as i32;
    match kind {
        ev::DonorKind::Company => donor.company_name = "Umzug AG".into(),
        ev::DonorKind::EmailOnly => {
            for f in [
                &mut donor.street,
                &mut donor.postcode,
                &mut donor.city,
                &mut donor.country,
            ] {
                f.clear();
            }
        }
        ev::DonorKind::Anonymous => {
            *donor = api::DonorInput {
                kind: kind as i32,
                ..Default::default()
            };
        }
        _ => {}
    }
    req
}

async fn get(app: &mut TestApp, identifier: &str) -> Result<api::AddressChange, tonic::Status> {
    app.client
        .get_address_change(with_token(
            api::GetAddressChangeRequest {
                identifier: identifier.into(),
            },
            ADMIN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

fn change_request(
    identifier: &str,
    address: Option<api::AddressInput>,
) -> api::ChangeAddressRequest {
    api::ChangeAddressRequest {
        context: context(ActorKind::Frontend),
        identifier: identifier.into(),
        address,
        donation_receipt_opt_out: false,
    }
}

async fn change(
    app: &mut TestApp,
    req: api::ChangeAddressRequest,
) -> Result<api::ChangeAddressResponse, tonic::Status> {
    app.client
        .change_address(with_token(req, ADMIN))
        .await
        .map(tonic::Response::into_inner)
}

/// A person's donation's token.
async fn donation_token(app: &mut TestApp) -> String {
    donate(app, donation_by(ev::DonorKind::Person))
        .await
        .address_change_token
}

/// Expects INVALID_ARGUMENT whose `BadRequest` names exactly `field` with a rule containing
/// `rule`, and an unchanged log.
async fn refused(app: &mut TestApp, req: api::ChangeAddressRequest, field: &str, rule: &str) {
    let before = head(&app.log).await;
    let answer = change(app, req).await;
    assert_invalid(app, before, answer, field, rule).await;
}

#[tokio::test]
async fn donors_with_a_postal_address_get_a_token_and_email_only_and_anonymous_donors_none() {
    let mut app = spawn_app().await;
    for kind in [ev::DonorKind::Person, ev::DonorKind::Company] {
        let answer = donate(&mut app, donation_by(kind)).await;
        let token = answer.address_change_token;
        assert!(uuid::Uuid::parse_str(&token).is_ok(), "{kind:?}: {token:?}");
        assert_eq!(uuid::Uuid::parse_str(&token).unwrap().get_version_num(), 4);
        let ac = get(&mut app, &token).await.unwrap();
        assert_eq!(ac.external_id_kind, "donation");
        assert_eq!(ac.external_id, answer.donation_id);
        let expected = if kind == ev::DonorKind::Person {
            "person"
        } else {
            "company"
        };
        assert_eq!(ac.address_type, expected);
        assert!(!ac.has_address);
        assert!(ac.donation_receipt);
        assert!(ac.is_current_identifier);
        assert_eq!(ac.export_state, "no_data");
        // Created in the donation's own append: its streams are there.
        assert_eq!(
            types(
                &app.log,
                &format!("address_change-{}", ac.address_change_id)
            )
            .await,
            ["AddressChangeCreated.v1"]
        );
    }
    for kind in [ev::DonorKind::EmailOnly, ev::DonorKind::Anonymous] {
        let answer = donate(&mut app, donation_by(kind)).await;
        assert_eq!(answer.address_change_token, "", "{kind:?}");
    }
}

#[tokio::test]
async fn an_email_only_donor_who_gains_a_postal_address_gets_a_token_once() {
    let mut app = spawn_app().await;
    let added = donate(&mut app, donation_by(ev::DonorKind::EmailOnly)).await;
    assert_eq!(added.address_change_token, "");
    let update = |kind: ev::DonorKind, last_name: &str| {
        let mut donor = donation_by(kind).donor.unwrap();
        donor.last_name = last_name.into();
        with_token(
            api::UpdateDonorRequest {
                context: context(ActorKind::FocUser),
                donation_id: added.donation_id,
                donor: Some(donor),
            },
            ADMIN,
        )
    };
    let gained = app
        .client
        .update_donor(update(ev::DonorKind::Company, "Umzug"))
        .await
        .unwrap()
        .into_inner();
    let ac = get(&mut app, &gained.address_change_token).await.unwrap();
    assert_eq!(ac.external_id_kind, "donation");
    assert_eq!(ac.external_id, added.donation_id);
    assert_eq!(ac.address_type, "company");
    assert!(!ac.has_address, "the page has not been used yet");
    // It has one now: a further update, even back to email-only and to a person again, issues
    // no second one.
    let before = head(&app.log).await;
    for (kind, name) in [
        (ev::DonorKind::Person, "Weiter"),
        (ev::DonorKind::EmailOnly, "Ohne"),
        (ev::DonorKind::Person, "Wieder"),
    ] {
        let again = app
            .client
            .update_donor(update(kind, name))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.address_change_token, "", "{kind:?}");
    }
    let written = types(&app.log, "address_change-1").await;
    assert_eq!(written.len(), 1, "one address change: {written:?}");
    assert_eq!(
        head(&app.log).await,
        before + 6,
        "three updates, two events each"
    );
}

#[tokio::test]
async fn every_membership_application_gets_a_token() {
    let mut app = spawn_app().await;
    let answer = app
        .client
        .apply_for_membership(with_token(
            membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let ac = get(&mut app, &answer.address_change_token).await.unwrap();
    assert_eq!(ac.external_id_kind, "membership");
    assert_eq!(ac.external_id, answer.membership_id);
    assert_eq!(ac.address_type, "person");
}

#[tokio::test]
async fn the_address_change_answer_holds_no_personal_data_of_the_donor() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let ac = get(&mut app, &token).await.unwrap();
    let text = format!("{ac:?}");
    for personal in ["Zwiebelmeier", "Adelheid", "Geheimweg", "10963"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
}

#[tokio::test]
async fn a_person_changes_address_once_and_the_old_token_is_refused_afterwards() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let answer = change(&mut app, change_request(&token, Some(new_address())))
        .await
        .unwrap();
    assert_eq!(answer.previous_identifier, token);
    assert_ne!(answer.identifier, token);
    let ac = answer.address_change.unwrap();
    assert!(ac.has_address);
    assert_eq!(ac.export_state, "used_not_exported");
    assert_eq!(ac.address_type, "person");
    // The new address is sealed: never in clear in the log.
    for e in stream(
        &app.log,
        &format!("address_change-{}", ac.address_change_id),
    )
    .await
    {
        for needle in ["Umzugsfreund", "Neue Allee", "Leipzig"] {
            assert!(
                !String::from_utf8_lossy(&e.payload).contains(needle),
                "{needle} in clear"
            );
        }
    }
    // The old token still finds it, as "already updated".
    let old = get(&mut app, &token).await.unwrap();
    assert!(!old.is_current_identifier);
    assert!(
        get(&mut app, &answer.identifier)
            .await
            .unwrap()
            .is_current_identifier
    );
    // A change through the old token is refused and appends nothing.
    let before = head(&app.log).await;
    let err = change(&mut app, change_request(&token, Some(new_address())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("already used"), "{err:?}");
    assert_eq!(head(&app.log).await, before);
    // The address is given once, also through the new token.
    let err = change(
        &mut app,
        change_request(&answer.identifier, Some(new_address())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn a_company_address_change_is_recorded_as_a_company() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let company = api::AddressInput {
        r#type: ev::AddressType::Company as i32,
        company_name: "Umzug AG".into(),
        street: "Hafenstraße 9".into(),
        postcode: "20457".into(),
        city: "Hamburg".into(),
        country: "DE".into(),
        ..Default::default()
    };
    let answer = change(&mut app, change_request(&token, Some(company)))
        .await
        .unwrap();
    let ac = answer.address_change.unwrap();
    assert_eq!(ac.address_type, "company");
    assert!(ac.has_address);
}

#[tokio::test]
async fn an_opt_out_only_turns_the_receipt_off_and_leaves_no_data_to_export() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let mut req = change_request(&token, None);
    req.donation_receipt_opt_out = true;
    let answer = change(&mut app, req).await.unwrap();
    let ac = answer.address_change.unwrap();
    assert!(!ac.donation_receipt);
    assert!(!ac.has_address);
    assert_eq!(ac.export_state, "no_data");
    assert_eq!(
        types(
            &app.log,
            &format!("address_change-{}", ac.address_change_id)
        )
        .await,
        ["AddressChangeCreated.v1", "DonationReceiptOptedOut.v1"]
    );
    // An address may still be given once, with the new token.
    let again = change(
        &mut app,
        change_request(&answer.identifier, Some(new_address())),
    )
    .await
    .unwrap();
    assert!(again.address_change.unwrap().has_address);
}

#[tokio::test]
async fn a_retried_change_answers_as_before_and_appends_nothing() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let req = change_request(&token, Some(new_address()));
    let first = change(&mut app, req.clone()).await.unwrap();
    let after = head(&app.log).await;
    let second = change(&mut app, req).await.unwrap();
    assert_eq!(second.identifier, first.identifier);
    assert_eq!(head(&app.log).await, after);
}

#[tokio::test]
async fn an_unknown_token_is_not_found_and_appends_nothing() {
    let mut app = spawn_app().await;
    let err = get(&mut app, UNKNOWN_TOKEN).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let before = head(&app.log).await;
    let err = change(&mut app, change_request(UNKNOWN_TOKEN, Some(new_address())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn the_export_batch_marks_changed_address_changes_and_reports_repeats() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let changed = change(&mut app, change_request(&token, Some(new_address())))
        .await
        .unwrap();
    let id = changed.address_change.unwrap().address_change_id;
    let export = |batch: &str| api::MarkAddressChangesExportedRequest {
        context: context(ActorKind::System),
        address_change_ids: vec![id],
        batch_id: batch.into(),
    };
    let first = app
        .client
        .mark_address_changes_exported(with_token(export("a-1"), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.exported, [id]);
    let ac = get(&mut app, &changed.identifier).await.unwrap();
    assert_eq!(ac.export_state, "used_exported");
    assert!(ac.exported_at.is_some());
    let again = app
        .client
        .mark_address_changes_exported(with_token(export("a-2"), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.already_exported, [id]);
    // An unused one refuses the whole batch.
    let unused_token = donation_token(&mut app).await;
    let unused = get(&mut app, &unused_token).await.unwrap();
    let before = head(&app.log).await;
    let mut req = export("a-3");
    req.address_change_ids = vec![unused.address_change_id];
    let err = app
        .client
        .mark_address_changes_exported(with_token(req, ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn a_person_without_salutation_is_refused_naming_the_field() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let mut a = new_address();
    a.salutation.clear();
    refused(
        &mut app,
        change_request(&token, Some(a)),
        "address.salutation",
        "is required",
    )
    .await;
}

#[tokio::test]
async fn a_person_without_first_name_last_name_street_postcode_or_city_is_refused() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    for field in ["first_name", "last_name", "street", "postcode", "city"] {
        let mut a = new_address();
        match field {
            "first_name" => a.first_name.clear(),
            "last_name" => a.last_name.clear(),
            "street" => a.street.clear(),
            "postcode" => a.postcode.clear(),
            _ => a.city.clear(),
        }
        let path = format!("address.{field}");
        refused(
            &mut app,
            change_request(&token, Some(a)),
            &path,
            "is required",
        )
        .await;
    }
}

#[tokio::test]
async fn a_company_without_its_name_is_refused() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let mut a = new_address();
    a.r#type = ev::AddressType::Company as i32;
    refused(
        &mut app,
        change_request(&token, Some(a)),
        "address.company_name",
        "is required",
    )
    .await;
}

#[tokio::test]
async fn an_address_without_a_type_is_refused() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let mut a = new_address();
    a.r#type = ev::AddressType::Unspecified as i32;
    refused(
        &mut app,
        change_request(&token, Some(a)),
        "address.type",
        "person or company",
    )
    .await;
}

#[tokio::test]
async fn a_postcode_longer_than_the_legacy_column_is_refused() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    let mut a = new_address();
    a.postcode = "123456789".into();
    refused(
        &mut app,
        change_request(&token, Some(a)),
        "address.postcode",
        "at most 8",
    )
    .await;
}

#[tokio::test]
async fn a_request_without_address_or_opt_out_is_refused() {
    let mut app = spawn_app().await;
    let token = donation_token(&mut app).await;
    refused(
        &mut app,
        change_request(&token, None),
        "address",
        "is required",
    )
    .await;
}

#[tokio::test]
async fn a_token_that_is_not_a_uuid_is_refused() {
    let mut app = spawn_app().await;
    refused(
        &mut app,
        change_request("not-a-token", Some(new_address())),
        "identifier",
        "UUID",
    )
    .await;
    let err = get(&mut app, "not-a-token").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_export_batch_without_ids_or_batch_id_is_refused() {
    let mut app = spawn_app().await;
    let before = head(&app.log).await;
    let err = app
        .client
        .mark_address_changes_exported(with_token(
            api::MarkAddressChangesExportedRequest {
                context: context(ActorKind::System),
                address_change_ids: vec![],
                batch_id: "a-1".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let violations = err.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations[0].field, "address_change_ids");
    assert_eq!(head(&app.log).await, before);
}
