//! The gRPC intake end to end: every call through the generated client against the real server
//! on port 0, and the events each appends to the log, with the log embedded and in KurrentDB
//! (each such test runs in `embedded_log` and in `kurrentdb_log`).
use crate::support;

use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use support::api::*;
use tonic::Code;

async fn add(app: &mut TestApp, req: api::AddDonationRequest) -> api::AddDonationResponse {
    app.client
        .add_donation(with_token(req, ADMIN))
        .await
        .unwrap()
        .into_inner()
}

fn action(donation_id: u64, kind: ActorKind) -> api::DonationActionRequest {
    api::DonationActionRequest {
        context: context(kind),
        donation_id,
        reason: "because".into(),
    }
}

// The intake's calls on both event-log backends: the embedded log and KurrentDB.
crate::on_both_logs!(
    add_donation_appends_donation_payment_and_request_record_atomically,
    a_bank_transfer_gets_a_reference_code_and_an_anonymous_one_the_xr_prefix,
    the_moderation_policy_raises_amount_address_and_email_reasons_but_not_for_paypal,
    repeating_a_request_id_returns_the_first_answer_and_appends_nothing,
    identical_requests_racing_get_one_answer_and_one_donation,
    next_id_repeated_with_its_request_id_returns_the_first_ids_and_takes_none,
    a_frontend_supplied_donation_id_is_used_once,
    get_donation_sees_its_own_write_decrypted,
    booking_a_recurring_paypal_payment_again_creates_a_follow_up,
    payments_fail_refund_and_charge_back_with_their_rules,
    cancel_delete_restore_flag_approve_and_export_follow_the_domain_rules,
    comments_are_added_policed_published_and_retracted,
    update_donor_replaces_the_personal_data,
    get_history_shows_every_step_with_its_actor_like_the_cli,
);

async fn add_donation_appends_donation_payment_and_request_record_atomically(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let r = add(&mut app, donation(ev::PaymentMethod::DirectDebit, 2_500)).await;
    assert!(r.donation_id > 0 && r.payment_id > 0);
    assert_eq!(r.payment_state, "pending");
    assert_eq!(r.moderation_state, "none");
    assert!(r.payment_reference_code.is_empty());
    let d = format!("donation-{}", r.donation_id);
    assert_eq!(types(&app.log, &d).await, ["DonationCreated.v2"]);
    assert_eq!(
        types(&app.log, &format!("payment-{}", r.payment_id)).await,
        ["PaymentInitiated.v1"]
    );
    assert!(types(&app.log, &format!("moderation-{}", r.donation_id))
        .await
        .is_empty());
    // The donor has a postal address: an address change and its token come with it.
    let ac = app
        .client
        .get_address_change(with_token(
            api::GetAddressChangeRequest {
                identifier: r.address_change_token.clone(),
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        types(
            &app.log,
            &format!("address_change-{}", ac.address_change_id)
        )
        .await,
        ["AddressChangeCreated.v1"]
    );
    // Donation, payment, address change, its token, request record: one commit,
    // consecutive positions, ours is the last.
    assert_eq!(head(&app.log).await, 5);
    assert_eq!(r.position, 5);
    let created = stream(&app.log, &d).await[0].metadata.clone();
    let created = created.ledger().expect("the ledger's envelope");
    assert_eq!(created.actor.id, "test");
    assert_eq!(created.source, "tests");
    assert_eq!(created.correlation_id.get_version_num(), 5);
}

async fn a_bank_transfer_gets_a_reference_code_and_an_anonymous_one_the_xr_prefix(
    backend: LogBackend,
) {
    let mut app = spawn_app_on(backend).await;
    let r = add(&mut app, donation(ev::PaymentMethod::BankTransfer, 500)).await;
    assert!(r.payment_reference_code.starts_with("XW-"), "{r:?}");
    assert!(ledger::intake::reference::is_valid(
        &r.payment_reference_code
    ));
    let mut anon = donation(ev::PaymentMethod::BankTransfer, 500);
    anon.donor = Some(api::DonorInput {
        kind: ev::DonorKind::Anonymous as i32,
        ..Default::default()
    });
    let r = add(&mut app, anon).await;
    assert!(r.payment_reference_code.starts_with("XR-"), "{r:?}");
}

async fn the_moderation_policy_raises_amount_address_and_email_reasons_but_not_for_paypal(
    backend: LogBackend,
) {
    let mut app = spawn_app_on(backend).await;
    let mut req = donation(ev::PaymentMethod::BankTransfer, 100_000);
    let donor = req.donor.as_mut().unwrap();
    donor.street = "Badword Allee 1".into();
    donor.email = "blocked@example.org".into();
    let r = add(&mut app, req).await;
    assert_eq!(r.moderation_state, "open");
    let sources: Vec<&str> = r
        .moderation_reasons
        .iter()
        .map(|m| m.source.as_str())
        .collect();
    assert_eq!(sources, ["amount", "street", "email"]);
    assert_eq!(
        types(&app.log, &format!("moderation-{}", r.donation_id)).await,
        ["ModerationReasonsRaised.v1"]
    );
    // Annualised: 100 EUR monthly is 1200 EUR a year.
    let mut monthly = donation(ev::PaymentMethod::DirectDebit, 10_000);
    monthly.payment.as_mut().unwrap().interval_months = 1;
    assert_eq!(add(&mut app, monthly).await.moderation_state, "open");
    let mut paypal = donation(ev::PaymentMethod::Paypal, 500_000);
    paypal.donor.as_mut().unwrap().email = "blocked@example.org".into();
    assert_eq!(add(&mut app, paypal).await.moderation_state, "none");
}

async fn repeating_a_request_id_returns_the_first_answer_and_appends_nothing(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let req = donation(ev::PaymentMethod::BankTransfer, 1_000);
    let first = add(&mut app, req.clone()).await;
    let head_after_first = head(&app.log).await;
    let again = add(&mut app, req.clone()).await;
    assert_eq!(first, again);
    assert_eq!(head(&app.log).await, head_after_first);
    // The same id for another call is refused.
    let mut cancel = action(first.donation_id, ActorKind::FocUser);
    cancel.context = req.context.clone();
    let err = app
        .client
        .cancel_donation(with_token(cancel, ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("already used for AddDonation"),
        "{err:?}"
    );
    // The same id with other content is refused too.
    let mut other = req.clone();
    other.payment.as_mut().unwrap().amount_cents = 2_000;
    let err = app
        .client
        .add_donation(with_token(other, ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(head(&app.log).await, head_after_first);
    assert_eq!(
        app.metrics.counter_value(
            "ledger_idempotent_replays_total",
            &[("method", "AddDonation")]
        ),
        1
    );
}

async fn identical_requests_racing_get_one_answer_and_one_donation(backend: LogBackend) {
    let app = spawn_app_on(backend).await;
    let req = donation(ev::PaymentMethod::DirectDebit, 1_000);
    let calls = (0..8).map(|_| {
        let mut c = app.client.clone();
        let r = req.clone();
        tokio::spawn(async move { c.add_donation(with_token(r, ADMIN)).await })
    });
    let answers: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().into_inner())
        .collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // One donation's append: donation, payment, address change, token, request record.
    assert_eq!(head(&app.log).await, 5);
}

async fn next_id_repeated_with_its_request_id_returns_the_first_ids_and_takes_none(
    backend: LogBackend,
) {
    let app = spawn_app_on(backend).await;
    let request = next_id_request("contribution-tracking", 3);
    let request_id = request.context.as_ref().unwrap().request_id.clone();
    let call = |r: api::NextIdRequest| {
        let mut c = app.client.clone();
        async move { c.next_id(with_token(r, FORM)).await }
    };
    let first = call(request.clone()).await.unwrap().into_inner();
    assert_eq!(first.last_id - first.first_id, 2);
    assert_eq!(first.allocation_token.len(), 32);
    let head_after_first = head(&app.log).await;
    assert_eq!(first.position, head_after_first);
    assert_eq!(
        types(&app.log, &format!("request-{request_id}")).await,
        ["RequestHandled.v1"]
    );

    // Repeats, one after the other and racing, get the first answer and append nothing.
    assert_eq!(call(request.clone()).await.unwrap().into_inner(), first);
    let racing = (0..6).map(|_| tokio::spawn(call(request.clone())));
    for answer in futures::future::join_all(racing).await {
        assert_eq!(answer.unwrap().unwrap().into_inner(), first);
    }
    assert_eq!(head(&app.log).await, head_after_first);
    assert_eq!(
        app.metrics
            .counter_value("ledger_idempotent_replays_total", &[("method", "NextId")]),
        7
    );
    // The request id with other content is refused.
    let mut other = request.clone();
    other.count = 4;
    let err = call(other).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("different content"), "{err:?}");
    // Without a context there is no request id: refused.
    let mut bare = request.clone();
    bare.context = None;
    let err = call(bare).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("context"), "{err:?}");

    // A new request id gets the next id and a new token: the repeats took none.
    let next = call(next_id_request("contribution-tracking", 1))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(next.allocation_token, first.allocation_token);
    assert_eq!(next.first_id, first.last_id + 1, "{next:?} {first:?}");
}

async fn a_frontend_supplied_donation_id_is_used_once(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let ids = app
        .client
        .next_id(with_token(next_id_request("donation", 1), FORM))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids.first_id, ids.last_id);
    assert_eq!(ids.allocation_token.len(), 32);
    let mut req = donation(ev::PaymentMethod::Paypal, 1_000);
    req.donation_id = ids.first_id;
    assert_eq!(add(&mut app, req.clone()).await.donation_id, ids.first_id);
    req.context = context(ActorKind::Frontend);
    let err = app
        .client
        .add_donation(with_token(req.clone(), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    req.donation_id = ids.first_id + 10_000;
    req.context = context(ActorKind::Frontend);
    let err = app
        .client
        .add_donation(with_token(req, ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("donation_id"));
}

async fn get_donation_sees_its_own_write_decrypted(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let mut req = donation(ev::PaymentMethod::DirectDebit, 1_234);
    req.comment = Some(api::CommentInput {
        text: "private thanks".into(),
        is_public: false,
        display_name: "A.".into(),
    });
    let r = add(&mut app, req).await;
    let d = app
        .client
        .get_donation(with_token(
            api::GetDonationRequest {
                donation_id: r.donation_id,
            },
            FORM,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.amount_cents, 1_234);
    assert_eq!(d.legacy_status, "N");
    assert_eq!(d.donor_kind, "person");
    assert_eq!(d.donor.unwrap().last_name, "Zwiebelmeier");
    assert_eq!(d.comment, "private thanks");
    assert!(!d.comment_is_public);
    let missing = app
        .client
        .get_donation(with_token(
            api::GetDonationRequest {
                donation_id: 999_999,
            },
            FORM,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn booking_a_recurring_paypal_payment_again_creates_a_follow_up(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let mut req = donation(ev::PaymentMethod::Paypal, 500);
    req.payment.as_mut().unwrap().interval_months = 1;
    let r = add(&mut app, req).await;
    let book = |txn: &str| api::BookPaymentRequest {
        context: context(ActorKind::Provider),
        payment_id: r.payment_id,
        transaction_id: txn.into(),
        payer_id: "PAYER-1".into(),
        ..Default::default()
    };
    let first = app
        .client
        .book_payment(with_token(book("T-1"), PROVIDER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.payment_state, "booked");
    assert_eq!(first.follow_up_payment_id, 0);
    // The same transaction again (new request id) changes nothing but the request record.
    let before = head(&app.log).await;
    app.client
        .book_payment(with_token(book("T-1"), PROVIDER))
        .await
        .unwrap();
    assert_eq!(head(&app.log).await, before + 1);
    let second = app
        .client
        .book_payment(with_token(book("T-2"), PROVIDER))
        .await
        .unwrap()
        .into_inner();
    assert!(second.follow_up_payment_id > 0 && second.follow_up_donation_id > 0);
    assert_eq!(
        types(&app.log, &format!("payment-{}", r.payment_id)).await,
        [
            "PaymentInitiated.v1",
            "PaymentBooked.v1",
            "FollowUpPaymentBooked.v1"
        ]
    );
    assert_eq!(
        types(
            &app.log,
            &format!("payment-{}", second.follow_up_payment_id)
        )
        .await,
        ["PaymentInitiated.v1", "PaymentBooked.v1"]
    );
    let child = app
        .client
        .get_donation(with_token(
            api::GetDonationRequest {
                donation_id: second.follow_up_donation_id,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(child.parent_donation_id, r.donation_id);
    assert_eq!(child.legacy_status, "B");
    assert!(
        child.donor.is_none(),
        "a recurring donor has no personal data"
    );
}

async fn payments_fail_refund_and_charge_back_with_their_rules(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let r = add(&mut app, donation(ev::PaymentMethod::CreditCard, 1_000)).await;
    let refund = |cents| api::RefundPaymentRequest {
        context: context(ActorKind::Provider),
        payment_id: r.payment_id,
        amount_cents: cents,
        currency: "EUR".into(),
        reason: "asked".into(),
    };
    let err = app
        .client
        .refund_payment(with_token(refund(0), PROVIDER))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    app.client
        .book_payment(with_token(
            api::BookPaymentRequest {
                context: context(ActorKind::Provider),
                payment_id: r.payment_id,
                transaction_id: "CC-1".into(),
                amount_cents: 1_000,
                ..Default::default()
            },
            PROVIDER,
        ))
        .await
        .unwrap();
    let p = app
        .client
        .refund_payment(with_token(refund(400), PROVIDER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.payment_state, "refunded");
    let p = app
        .client
        .report_chargeback(with_token(refund(0), PROVIDER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.payment_state, "charged_back");
    assert_eq!(
        types(&app.log, &format!("payment-{}", r.payment_id)).await,
        [
            "PaymentInitiated.v1",
            "PaymentBooked.v1",
            "PaymentRefunded.v1",
            "ChargebackReceived.v1"
        ]
    );
    let other = add(&mut app, donation(ev::PaymentMethod::Sofort, 1_000)).await;
    let failed = app
        .client
        .fail_payment(with_token(
            api::FailPaymentRequest {
                context: context(ActorKind::Provider),
                payment_id: other.payment_id,
                reason: "declined".into(),
            },
            PROVIDER,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.payment_state, "failed");
    let missing = app
        .client
        .fail_payment(with_token(
            api::FailPaymentRequest {
                context: context(ActorKind::Provider),
                payment_id: 987_654,
                reason: String::new(),
            },
            PROVIDER,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn cancel_delete_restore_flag_approve_and_export_follow_the_domain_rules(
    backend: LogBackend,
) {
    let mut app = spawn_app_on(backend).await;
    let r = add(&mut app, donation(ev::PaymentMethod::BankTransfer, 1_000)).await;
    let id = r.donation_id;
    let c = &mut app.client;
    let d = c
        .cancel_donation(with_token(action(id, ActorKind::Frontend), ADMIN))
        .await
        .unwrap()
        .into_inner();
    let view = d.donation.unwrap();
    assert_eq!(view.deletion_state, "cancelled_by_donor");
    assert_eq!(view.legacy_status, "D");
    assert!(
        view.donor.is_none(),
        "mutating answers carry no personal data"
    );
    let err = c
        .delete_donation(with_token(action(id, ActorKind::FocUser), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    c.restore_donation(with_token(action(id, ActorKind::FocUser), ADMIN))
        .await
        .unwrap();
    let flagged = c
        .flag_donation(with_token(action(id, ActorKind::FocUser), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(flagged.donation.unwrap().legacy_status, "P");
    let export = |ids: Vec<u64>| api::MarkExportedRequest {
        context: context(ActorKind::System),
        donation_ids: ids,
        batch_id: "batch-1".into(),
    };
    let err = c
        .mark_exported(with_token(export(vec![id]), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&format!("donation {id}")), "{err:?}");
    let approved = c
        .approve_donation(with_token(
            api::ApproveDonationRequest {
                context: context(ActorKind::FocUser),
                donation_id: id,
                as_anonymous: true,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let view = approved.donation.unwrap();
    assert_eq!(view.moderation_state, "approved");
    assert_eq!(view.donor_kind, "anonymous");
    let other = add(&mut app, donation(ev::PaymentMethod::DirectDebit, 1_000)).await;
    let first = app
        .client
        .mark_exported(with_token(export(vec![id]), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.exported, [id]);
    let second = app
        .client
        .mark_exported(with_token(export(vec![id, other.donation_id]), ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.exported, [other.donation_id]);
    assert_eq!(second.already_exported, [id]);
    assert_eq!(
        types(&app.log, &format!("export-{id}")).await,
        ["DonationExported.v1"]
    );
    assert_eq!(
        types(&app.log, &format!("deletion-{id}")).await,
        ["DonationCancelled.v1", "DonationRestored.v1"]
    );
}

async fn comments_are_added_policed_published_and_retracted(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let r = add(&mut app, donation(ev::PaymentMethod::DirectDebit, 1_000)).await;
    let id = r.donation_id;
    let comment = |text: &str| api::AddCommentRequest {
        context: context(ActorKind::Frontend),
        donation_id: id,
        comment: Some(api::CommentInput {
            text: text.into(),
            is_public: true,
            display_name: "Ada".into(),
        }),
    };
    let added = app
        .client
        .add_comment(with_token(comment("what a badword"), FORM))
        .await
        .unwrap()
        .into_inner()
        .donation
        .unwrap();
    assert!(
        !added.comment_is_public,
        "a violating comment is forced private"
    );
    assert_eq!(added.moderation_state, "open");
    let err = app
        .client
        .add_comment(with_token(comment("again"), FORM))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = app
        .client
        .publish_comment(with_token(action(id, ActorKind::FocUser), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    let clean = add(&mut app, donation(ev::PaymentMethod::DirectDebit, 1_000)).await;
    let mut c2 = comment("thank you");
    c2.donation_id = clean.donation_id;
    c2.comment.as_mut().unwrap().is_public = false;
    app.client.add_comment(with_token(c2, FORM)).await.unwrap();
    let published = app
        .client
        .publish_comment(with_token(
            action(clean.donation_id, ActorKind::FocUser),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
        .donation
        .unwrap();
    assert!(published.comment_is_public);
    assert_eq!(published.comment, "thank you");
    let retracted = app
        .client
        .retract_comment(with_token(
            action(clean.donation_id, ActorKind::FocUser),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
        .donation
        .unwrap();
    assert!(!retracted.comment_is_public);
}

async fn update_donor_replaces_the_personal_data(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let r = add(&mut app, donation(ev::PaymentMethod::DirectDebit, 1_000)).await;
    let mut donor = donation(ev::PaymentMethod::DirectDebit, 1).donor.unwrap();
    donor.last_name = "Neumann".into();
    app.client
        .update_donor(with_token(
            api::UpdateDonorRequest {
                context: context(ActorKind::FocUser),
                donation_id: r.donation_id,
                donor: Some(donor.clone()),
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let d = app
        .client
        .get_donation(with_token(
            api::GetDonationRequest {
                donation_id: r.donation_id,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.donor.unwrap().last_name, "Neumann");
    donor.kind = ev::DonorKind::Anonymous as i32;
    let err = app
        .client
        .update_donor(with_token(
            api::UpdateDonorRequest {
                context: context(ActorKind::FocUser),
                donation_id: r.donation_id,
                donor: Some(donor),
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("donor.kind"), "{err:?}");
}

#[tokio::test]
async fn a_form_token_cannot_export_delete_or_act_as_a_foc_user_and_no_token_is_unauthenticated() {
    let mut app = spawn_app().await;
    let r = add(&mut app, donation(ev::PaymentMethod::DirectDebit, 1_000)).await;
    let before = head(&app.log).await;
    let err = app
        .client
        .mark_exported(with_token(
            api::MarkExportedRequest {
                context: context(ActorKind::Frontend),
                donation_ids: vec![r.donation_id],
                batch_id: "b".into(),
            },
            FORM,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .client
        .delete_donation(with_token(action(r.donation_id, ActorKind::Frontend), FORM))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut as_foc = donation(ev::PaymentMethod::DirectDebit, 1_000);
    as_foc.context = context(ActorKind::FocUser);
    let err = app
        .client
        .add_donation(with_token(as_foc, FORM))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = app
        .client
        .add_donation(donation(ev::PaymentMethod::DirectDebit, 1_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(head(&app.log).await, before);
    assert_eq!(
        app.metrics.counter_value(
            "ledger_grpc_requests_total",
            &[("method", "MarkExported"), ("code", "PermissionDenied")]
        ),
        1
    );
}

/// The real event log with one concurrent writer: armed with a stream, it appends an event of
/// its own to that stream just before the next append that touches it, as another intake
/// process deciding at the same moment would.
struct RacingLog {
    inner: std::sync::Arc<dyn ledger::store::EventLog>,
    race_on: std::sync::Mutex<Option<String>>,
}

#[tonic::async_trait]
impl ledger::store::EventLog for RacingLog {
    async fn append_atomic(
        &self,
        parts: Vec<ledger::store::StreamAppend>,
    ) -> Result<Vec<ledger::store::AppendResult>, ledger::store::StoreError> {
        let armed = self.race_on.lock().unwrap().clone();
        if let Some(stream) = armed.filter(|s| parts.iter().any(|p| &p.stream == s)) {
            *self.race_on.lock().unwrap() = None;
            let event: ledger::domain::DomainEvent = ev::ManuallyFlagged {
                note: "the other writer".into(),
            }
            .into();
            self.inner
                .append(
                    &stream,
                    ledger::store::ExpectedRevision::Any,
                    vec![ledger::store::EventData {
                        id: uuid::Uuid::new_v4(),
                        event_type: event.event_type().to_owned(),
                        payload: event.encode(),
                        metadata: ledger::store::Metadata::new(
                            ledger::store::Actor::system("racer"),
                            "racer",
                            uuid::Uuid::new_v4(),
                        )
                        .into(),
                    }],
                )
                .await?;
        }
        self.inner.append_atomic(parts).await
    }
    async fn read_stream(
        &self,
        stream: &str,
        direction: ledger::store::Direction,
        from: ledger::store::StreamStart,
        max: usize,
    ) -> Result<Vec<ledger::store::RecordedEvent>, ledger::store::StoreError> {
        self.inner.read_stream(stream, direction, from, max).await
    }
    async fn read_all(
        &self,
        from: ledger::store::Position,
        max: usize,
    ) -> Result<Vec<ledger::store::RecordedEvent>, ledger::store::StoreError> {
        self.inner.read_all(from, max).await
    }

    async fn read_all_backwards(
        &self,
        before: Option<ledger::store::Position>,
        max: usize,
    ) -> Result<Vec<ledger::store::RecordedEvent>, ledger::store::StoreError> {
        self.inner.read_all_backwards(before, max).await
    }
    async fn read_category(
        &self,
        category: &str,
        from: ledger::store::Position,
        max: usize,
    ) -> Result<Vec<ledger::store::RecordedEvent>, ledger::store::StoreError> {
        self.inner.read_category(category, from, max).await
    }
    async fn stream_revision(
        &self,
        stream: &str,
    ) -> Result<ledger::store::CurrentRevision, ledger::store::StoreError> {
        self.inner.stream_revision(stream).await
    }
    async fn head_position(
        &self,
    ) -> Result<Option<ledger::store::Position>, ledger::store::StoreError> {
        self.inner.head_position().await
    }
    async fn highest_stream_number(
        &self,
        category: &str,
    ) -> Result<Option<u64>, ledger::store::StoreError> {
        self.inner.highest_stream_number(category).await
    }
    async fn stream_names_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, ledger::store::StoreError> {
        self.inner.stream_names_with_prefix(prefix).await
    }
    fn subscribe_all(&self, from: ledger::store::Position) -> ledger::store::Subscription {
        self.inner.subscribe_all(from)
    }
}

#[tokio::test]
async fn a_stale_expected_revision_is_aborted() {
    use ledger::domain::commands::{NewDonation, NewDonor, NewPayment};
    use ledger::domain::donation::DonorKind;
    use ledger::domain::PaymentMethod;
    use ledger::intake::{Intake, RequestMeta};
    use ledger::store::Actor;
    let dir = tempfile::tempdir().unwrap();
    let storage = ledger::config::StorageArgs::in_dir(dir.path());
    let log = std::sync::Arc::new(RacingLog {
        inner: storage.open_event_log().await.unwrap(),
        race_on: std::sync::Mutex::new(None),
    });
    let intake = Intake::new(
        log.clone(),
        storage.open_vault().await.unwrap(),
        storage.open_sequences().await.unwrap(),
        Default::default(),
        ledger::metrics::Metrics::new(),
        10,
    );
    let meta = |request_id: &str| {
        RequestMeta::new(
            request_id,
            Actor::system("test"),
            "tests",
            request_id.as_bytes(),
        )
        .unwrap()
    };
    let created = intake
        .add_donation(
            &meta("create"),
            NewDonation {
                payment: NewPayment {
                    amount_cents: 1_000,
                    method: Some(PaymentMethod::BankTransfer),
                    ..Default::default()
                },
                donor: NewDonor {
                    kind: DonorKind::Anonymous,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let moderation = format!("moderation-{}", created.donation_id);

    // Another writer flags the donation between this call's read and its append.
    *log.race_on.lock().unwrap() = Some(moderation.clone());
    let err = intake
        .flag_donation(&meta("flag"), created.donation_id, "looks odd")
        .await
        .unwrap_err();
    let status = ledger::api::error::to_status(&err);
    assert_eq!(status.code(), Code::Aborted, "{err}");
    assert!(
        status.message().contains(&moderation),
        "{}",
        status.message()
    );
    // Only the other writer's event landed: nothing of the refused call, no request record.
    let read: std::sync::Arc<dyn ledger::store::EventLog> = log.clone();
    assert_eq!(types(&read, &moderation).await, ["ManuallyFlagged.v1"]);
    assert!(stream(&read, "request-flag").await.is_empty());
    // Retried, the call reads the new state and is refused by the rule instead of the race.
    let again = intake
        .flag_donation(&meta("flag"), created.donation_id, "looks odd")
        .await
        .unwrap_err();
    assert_eq!(
        ledger::api::error::to_status(&again).code(),
        Code::FailedPrecondition,
        "{again}"
    );
    // On a stream that exists: the approval expected revision 0, the other writer made it 1.
    *log.race_on.lock().unwrap() = Some(moderation.clone());
    let err = intake
        .approve_donation(&meta("approve"), created.donation_id, false)
        .await
        .unwrap_err();
    assert_eq!(
        ledger::api::error::to_status(&err).code(),
        Code::Aborted,
        "{err}"
    );
    assert_eq!(
        types(&read, &moderation).await,
        ["ManuallyFlagged.v1", "ManuallyFlagged.v1"]
    );
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let app = spawn_app().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", app.port))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "ledger.api.v1.Ledger".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Reflection lists the ledger's service.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "ledger.api.v1.Ledger"),
        "{names:?}"
    );
}

async fn get_history_shows_every_step_with_its_actor_like_the_cli(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let r = add(&mut app, donation(ev::PaymentMethod::BankTransfer, 150_000)).await;
    assert_eq!(r.moderation_state, "open");
    app.client
        .approve_donation(with_token(
            api::ApproveDonationRequest {
                context: context(ActorKind::FocUser),
                donation_id: r.donation_id,
                as_anonymous: false,
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let history = app
        .client
        .get_history(with_token(
            api::GetHistoryRequest {
                donation_id: r.donation_id,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let types: Vec<&str> = history
        .entries
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "DonationCreated.v2",
            "PaymentInitiated.v1",
            "ModerationReasonsRaised.v1",
            "ModerationApproved.v1"
        ]
    );
    assert_eq!(history.entries[0].actor_kind, "frontend");
    assert_eq!(history.entries[3].actor_kind, "foc_user");
    assert!(history.entries[0]
        .changes
        .iter()
        .any(|c| c.field == "last_name" && c.after == "Zwiebelmeier"));
    assert!(history.entries[3]
        .changes
        .iter()
        .any(|c| c.field == "moderation_state" && c.before == "open" && c.after == "approved"));
    let denied = app
        .client
        .get_history(with_token(
            api::GetHistoryRequest {
                donation_id: r.donation_id,
            },
            FORM,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let missing = app
        .client
        .get_history(with_token(
            api::GetHistoryRequest {
                donation_id: 987_654_321,
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}
