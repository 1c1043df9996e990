//! Membership applications over gRPC: applying (fee rules, moderation, sealing), the FOC
//! actions and their independent states with the legacy status derived from them, the export
//! batch, the reads, idempotency, and one refusal per bad-input rule (field and rule named,
//! nothing appended).
//!
//! Over 600 lines for one reason: the refusal tests, one per bad-input rule of the
//! application (about twenty), each a short test of its own so a failure names its rule.
use crate::support;

use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use support::api::*;
use tonic::Code;
use tonic_types::StatusExt;

/// Applies and returns the answer.
async fn apply(
    app: &mut TestApp,
    req: api::ApplyForMembershipRequest,
) -> api::ApplyForMembershipResponse {
    app.client
        .apply_for_membership(with_token(req, ADMIN))
        .await
        .unwrap()
        .into_inner()
}

/// A membership action as an FOC user.
fn action(membership_id: u64, reason: &str) -> api::MembershipActionRequest {
    api::MembershipActionRequest {
        context: context(ActorKind::FocUser),
        membership_id,
        reason: reason.into(),
    }
}

async fn get(app: &mut TestApp, membership_id: u64) -> api::Membership {
    app.client
        .get_membership(with_token(
            api::GetMembershipRequest { membership_id },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Expects INVALID_ARGUMENT whose `BadRequest` names exactly `field` with a rule containing
/// `rule`, and an unchanged log.
async fn refused(
    app: &TestApp,
    before: u64,
    result: Result<(), tonic::Status>,
    field: &str,
    rule: &str,
) {
    let err = result.expect_err("the call should be refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let violations = err
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest detail: {err:?}"))
        .field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, field, "{violations:?}");
    assert!(
        violations[0].description.contains(rule),
        "{rule:?} not in {:?}",
        violations[0].description
    );
    assert_eq!(
        head(&app.log).await,
        before,
        "a refused call appended events"
    );
}

/// Sends an application changed by `change`, expecting the refusal of `field` by `rule`.
async fn refused_application(
    app: &mut TestApp,
    change: impl FnOnce(&mut api::ApplyForMembershipRequest),
    field: &str,
    rule: &str,
) {
    let mut req = membership(ev::PaymentMethod::DirectDebit, 1_000, 1);
    change(&mut req);
    let before = head(&app.log).await;
    let result = app
        .client
        .apply_for_membership(with_token(req, ADMIN))
        .await
        .map(drop);
    refused(app, before, result, field, rule).await;
}

fn applicant(req: &mut api::ApplyForMembershipRequest) -> &mut api::ApplicantInput {
    req.applicant.as_mut().unwrap()
}

fn as_company(req: &mut api::ApplyForMembershipRequest) {
    let a = applicant(req);
    a.kind = ev::ApplicantKind::Company as i32;
    a.company_name = "Quastenflosser GmbH".into();
    a.date_of_birth.clear();
    req.fee_cents = 10_000;
    req.interval_months = 12;
}

#[tokio::test]
async fn a_direct_debit_application_is_confirmed_sealed_and_read_back_in_full() {
    let mut app = spawn_app().await;
    let answer = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
    )
    .await;
    assert!(answer.confirmed);
    assert_eq!(answer.moderation_state, "none");
    assert!(answer.moderation_reasons.is_empty());
    assert_eq!(answer.payment_reference_code, "");
    let id = answer.membership_id;
    assert_eq!(
        types(&app.log, &format!("membership-{id}")).await,
        ["MembershipApplied.v1"]
    );
    // Personal data never reaches the log in clear.
    for e in stream(&app.log, &format!("membership-{id}")).await {
        for needle in [
            "Quastenflosser",
            "korbinian",
            "DE02120300000000202051",
            "1980-01-31",
        ] {
            assert!(
                !String::from_utf8_lossy(&e.payload).contains(needle),
                "{needle} in clear"
            );
        }
    }
    let m = get(&mut app, id).await;
    assert_eq!(m.applicant.as_ref().unwrap().last_name, "Quastenflosser");
    assert_eq!(m.applicant.as_ref().unwrap().date_of_birth, "1980-01-31");
    assert_eq!(m.applicant_kind, "person");
    assert_eq!(m.membership_type, "sustaining");
    assert_eq!(
        (m.fee_cents, m.interval_months, m.yearly_fee_cents),
        (1_000, 1, 12_000)
    );
    assert!(m.is_confirmed);
    assert_eq!(m.cancellation_state, "active");
    assert_eq!(m.legacy_status, 1);
    assert_eq!(
        m.tracking.unwrap().campaign,
        "Spring",
        "tracking is not lowercased"
    );
    assert_eq!(m.incentives, ["tote_bag"]);
    assert_eq!(m.donation_receipt, Some(true));
}

#[tokio::test]
async fn a_yearly_fee_above_1000_euros_is_moderated_and_still_confirmed() {
    let mut app = spawn_app().await;
    let answer = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 8_334, 1),
    )
    .await;
    assert_eq!(answer.moderation_state, "open");
    let reason = &answer.moderation_reasons[0];
    assert_eq!(
        reason.identifier,
        ev::ModerationIdentifier::MembershipFeeTooHigh as i32
    );
    assert_eq!(reason.source, "amount");
    let m = get(&mut app, answer.membership_id).await;
    assert!(m.is_confirmed);
    assert_eq!(m.legacy_status, -2);
    assert_eq!(
        types(
            &app.log,
            &format!("membership_moderation-{}", answer.membership_id)
        )
        .await,
        ["ModerationReasonsRaised.v1"]
    );
}

#[tokio::test]
async fn a_blocked_email_and_a_denied_word_raise_their_reasons() {
    let mut app = spawn_app().await;
    let mut req = membership(ev::PaymentMethod::DirectDebit, 1_000, 1);
    applicant(&mut req).email = "blocked@example.org".into();
    applicant(&mut req).street = "Badword Street 1".into();
    let answer = apply(&mut app, req).await;
    let sources: Vec<&str> = answer
        .moderation_reasons
        .iter()
        .map(|r| r.source.as_str())
        .collect();
    assert_eq!(sources, ["street-address", "applicant-email"]);
}

#[tokio::test]
async fn repeating_a_request_id_returns_the_first_answer_and_appends_nothing() {
    let mut app = spawn_app().await;
    let req = membership(ev::PaymentMethod::BankTransfer, 1_000, 1);
    let first = apply(&mut app, req.clone()).await;
    let head_after_first = head(&app.log).await;
    let again = apply(&mut app, req).await;
    assert_eq!(again.membership_id, first.membership_id);
    assert_eq!(head(&app.log).await, head_after_first);
    // The reference code is personal: it is read back from the sealed application.
    assert!(first.payment_reference_code.starts_with("XM-"), "{first:?}");
    assert_eq!(again.payment_reference_code, first.payment_reference_code);
}

#[tokio::test]
async fn cancel_flag_approve_and_restore_keep_their_states_apart() {
    let mut app = spawn_app().await;
    let id = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
    )
    .await
    .membership_id;
    let c = &mut app.client;
    let status = |r: api::MembershipResponse| r.membership.unwrap().legacy_status;

    let r = c
        .cancel_membership(with_token(action(id, "moved away"), ADMIN))
        .await;
    assert_eq!(status(r.unwrap().into_inner()), -1);
    // A cancelled application cannot be flagged (the legacy precondition).
    let err = c
        .flag_membership(with_token(action(id, ""), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("cancelled"), "{err:?}");
    let r = c
        .restore_membership(with_token(action(id, "mistake"), ADMIN))
        .await;
    assert_eq!(status(r.unwrap().into_inner()), 1);
    let r = c
        .flag_membership(with_token(action(id, "check"), ADMIN))
        .await;
    assert_eq!(status(r.unwrap().into_inner()), -2);
    // Cancelled and moderated at once: -3, each state kept.
    let r = c.cancel_membership(with_token(action(id, ""), ADMIN)).await;
    let m = r.unwrap().into_inner().membership.unwrap();
    assert_eq!(m.legacy_status, -3);
    assert_eq!(
        (m.cancellation_state.as_str(), m.moderation_state.as_str()),
        ("cancelled", "open")
    );
    assert!(m.is_confirmed);
    assert!(
        m.applicant.is_none(),
        "answers to mutating calls hold no personal data"
    );
    let r = c
        .approve_membership(with_token(action(id, ""), ADMIN))
        .await;
    assert_eq!(status(r.unwrap().into_inner()), -1);
    let r = c
        .restore_membership(with_token(action(id, ""), ADMIN))
        .await;
    assert_eq!(status(r.unwrap().into_inner()), 1);
    assert_eq!(
        types(&app.log, &format!("membership_cancellation-{id}")).await,
        [
            "MembershipCancelled.v1",
            "MembershipRestored.v1",
            "MembershipCancelled.v1",
            "MembershipRestored.v1"
        ]
    );
}

#[tokio::test]
async fn an_export_is_recorded_once_and_then_refuses_every_foc_action() {
    let mut app = spawn_app().await;
    let a = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
    )
    .await
    .membership_id;
    let b = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
    )
    .await
    .membership_id;
    let export = |ids: Vec<u64>, batch: &str| api::MarkMembershipsExportedRequest {
        context: context(ActorKind::System),
        membership_ids: ids,
        batch_id: batch.into(),
    };
    let first = app
        .client
        .mark_memberships_exported(with_token(export(vec![a], "m-1"), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.exported, [a]);
    let second = app
        .client
        .mark_memberships_exported(with_token(export(vec![a, b], "m-2"), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (second.exported, second.already_exported),
        (vec![b], vec![a])
    );
    let m = get(&mut app, a).await;
    assert!(m.is_exported);
    assert_eq!(m.export_batch, "m-1");
    assert_eq!(
        m.legacy_status, 1,
        "export is not an input of the legacy status"
    );
    let before = head(&app.log).await;
    let err = app
        .client
        .cancel_membership(with_token(action(a, ""), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("exported"), "{err:?}");
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn an_export_batch_with_a_moderated_application_is_refused_whole() {
    let mut app = spawn_app().await;
    let fine = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
    )
    .await
    .membership_id;
    let moderated = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 9_000, 1),
    )
    .await
    .membership_id;
    let before = head(&app.log).await;
    let err = app
        .client
        .mark_memberships_exported(with_token(
            api::MarkMembershipsExportedRequest {
                context: context(ActorKind::System),
                membership_ids: vec![fine, moderated],
                batch_id: "m-1".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains(&format!("membership application {moderated}")),
        "{err:?}"
    );
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn the_history_lists_every_event_with_its_actor_and_changes() {
    let mut app = spawn_app().await;
    let id = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
    )
    .await
    .membership_id;
    app.client
        .flag_membership(with_token(action(id, "check"), ADMIN))
        .await
        .unwrap();
    let history = app
        .client
        .get_membership_history(with_token(
            api::GetMembershipHistoryRequest { membership_id: id },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;
    let shape: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|e| {
            (
                e.stream.as_str(),
                e.event_type.as_str(),
                e.actor_kind.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                format!("membership-{id}").as_str(),
                "MembershipApplied.v1",
                "frontend"
            ),
            (
                format!("membership_moderation-{id}").as_str(),
                "ManuallyFlagged.v1",
                "foc_user"
            ),
        ]
    );
    let changed = |i: usize, field: &str| {
        history[i]
            .changes
            .iter()
            .find(|c| c.field == field)
            .map(|c| c.after.clone())
    };
    assert_eq!(changed(0, "last_name").as_deref(), Some("Quastenflosser"));
    assert_eq!(changed(1, "legacy_status").as_deref(), Some("-2"));
}

#[tokio::test]
async fn an_unknown_application_is_not_found_on_every_call() {
    let mut app = spawn_app().await;
    let err = app
        .client
        .get_membership(with_token(
            api::GetMembershipRequest { membership_id: 99 },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("membership application 99"),
        "{err:?}"
    );
    let err = app
        .client
        .cancel_membership(with_token(action(99, ""), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(head(&app.log).await, 0);
}

#[tokio::test]
async fn a_client_without_the_membership_scope_is_refused() {
    let mut app = spawn_app().await;
    let err = app
        .client
        .apply_for_membership(with_token(
            membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
            FORM,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(head(&app.log).await, 0);
}

// ---- one refusal per bad-input rule ----

#[tokio::test]
async fn an_application_without_an_applicant_kind_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| applicant(r).kind = 0,
        "applicant.kind",
        "person or company",
    )
    .await;
}

#[tokio::test]
async fn a_person_without_a_last_name_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| applicant(r).last_name.clear(),
        "applicant.last_name",
        "is required for this applicant kind",
    )
    .await;
}

#[tokio::test]
async fn a_company_without_a_company_name_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| {
            as_company(r);
            applicant(r).company_name.clear();
        },
        "applicant.company_name",
        "is required",
    )
    .await;
}

#[tokio::test]
async fn a_city_longer_than_the_legacy_column_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| applicant(r).city = "x".repeat(101),
        "applicant.city",
        "100",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_email_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| applicant(r).email = "not-an-email".into(),
        "applicant.email",
        "valid email",
    )
    .await;
}

#[tokio::test]
async fn a_phone_number_starting_with_a_letter_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| applicant(r).phone = "call 0301234".into(),
        "applicant.phone",
        "must start with a digit",
    )
    .await;
}

#[tokio::test]
async fn a_date_of_birth_that_is_no_date_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| applicant(r).date_of_birth = "1980-02-30".into(),
        "applicant.date_of_birth",
        "YYYY-MM-DD",
    )
    .await;
}

#[tokio::test]
async fn a_company_with_a_date_of_birth_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| {
            as_company(r);
            applicant(r).date_of_birth = "1980-01-31".into();
        },
        "applicant.date_of_birth",
        "a company has no date of birth",
    )
    .await;
}

#[tokio::test]
async fn an_application_without_a_membership_type_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.membership_type = 0,
        "membership_type",
        "active or sustaining",
    )
    .await;
}

#[tokio::test]
async fn a_one_time_fee_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.interval_months = 0,
        "interval_months",
        "never one-time",
    )
    .await;
}

#[tokio::test]
async fn a_fee_that_is_not_positive_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.fee_cents = -100,
        "fee_cents",
        "must be positive",
    )
    .await;
}

#[tokio::test]
async fn a_person_paying_less_than_24_euros_a_year_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| {
            r.fee_cents = 599;
            r.interval_months = 3;
        },
        "fee_cents",
        "a person must be at least 2400 cents",
    )
    .await;
}

#[tokio::test]
async fn a_company_paying_less_than_100_euros_a_year_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| {
            as_company(r);
            r.fee_cents = 9_999;
        },
        "fee_cents",
        "a company must be at least 10000 cents",
    )
    .await;
}

#[tokio::test]
async fn a_yearly_fee_above_100000_euros_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.fee_cents = 833_334,
        "fee_cents",
        "at most 10,000,000 cents",
    )
    .await;
}

#[tokio::test]
async fn a_paypal_membership_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.payment.as_mut().unwrap().method = ev::PaymentMethod::Paypal as i32,
        "payment.method",
        "direct debit (BEZ) or bank transfer (UEB)",
    )
    .await;
}

#[tokio::test]
async fn a_direct_debit_without_an_iban_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.payment.as_mut().unwrap().iban.clear(),
        "payment.iban",
        "is required for direct debit",
    )
    .await;
}

#[tokio::test]
async fn an_iban_with_a_wrong_checksum_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.payment.as_mut().unwrap().iban = "DE02120300000000202052".into(),
        "payment.iban",
        "mod-97",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_bic_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.payment.as_mut().unwrap().bic = "NOPE".into(),
        "payment.bic",
        "valid BIC",
    )
    .await;
}

#[tokio::test]
async fn a_bank_transfer_with_an_iban_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.payment.as_mut().unwrap().method = ev::PaymentMethod::BankTransfer as i32,
        "payment.iban",
        "must be empty for bank transfer",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_incentive_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.incentives = vec!["mug".into()],
        "incentives[0]",
        "known incentive: tote_bag",
    )
    .await;
}

#[tokio::test]
async fn a_repeated_incentive_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.incentives = vec!["tote_bag".into(), "tote_bag".into()],
        "incentives[1]",
        "must not repeat",
    )
    .await;
}

#[tokio::test]
async fn a_campaign_longer_than_50_characters_is_refused() {
    let mut app = spawn_app().await;
    refused_application(
        &mut app,
        |r| r.tracking.as_mut().unwrap().campaign = "c".repeat(51),
        "tracking.campaign",
        "50",
    )
    .await;
}

#[tokio::test]
async fn an_action_without_a_membership_id_is_refused() {
    let mut app = spawn_app().await;
    let before = head(&app.log).await;
    let result = app
        .client
        .cancel_membership(with_token(action(0, ""), ADMIN))
        .await
        .map(drop);
    refused(&app, before, result, "membership_id", "positive id").await;
}

#[tokio::test]
async fn an_action_with_a_reason_over_1000_characters_is_refused() {
    let mut app = spawn_app().await;
    let id = apply(
        &mut app,
        membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
    )
    .await
    .membership_id;
    let before = head(&app.log).await;
    let result = app
        .client
        .flag_membership(with_token(action(id, &"r".repeat(1001)), ADMIN))
        .await
        .map(drop);
    refused(&app, before, result, "reason", "1000").await;
}

#[tokio::test]
async fn an_export_without_ids_is_refused() {
    let mut app = spawn_app().await;
    let result = app
        .client
        .mark_memberships_exported(with_token(
            api::MarkMembershipsExportedRequest {
                context: context(ActorKind::System),
                membership_ids: vec![],
                batch_id: "m-1".into(),
            },
            ADMIN,
        ))
        .await
        .map(drop);
    refused(&app, 0, result, "membership_ids", "1 to 1000 ids").await;
}

#[tokio::test]
async fn an_export_without_a_batch_id_is_refused() {
    let mut app = spawn_app().await;
    let result = app
        .client
        .mark_memberships_exported(with_token(
            api::MarkMembershipsExportedRequest {
                context: context(ActorKind::System),
                membership_ids: vec![1],
                batch_id: " ".into(),
            },
            ADMIN,
        ))
        .await
        .map(drop);
    refused(&app, 0, result, "batch_id", "is required").await;
}

#[tokio::test]
async fn reading_membership_zero_is_refused() {
    let mut app = spawn_app().await;
    let result = app
        .client
        .get_membership(with_token(
            api::GetMembershipRequest { membership_id: 0 },
            ADMIN,
        ))
        .await
        .map(drop);
    refused(&app, 0, result, "membership_id", "positive id").await;
}
