//! Subscriptions over gRPC: `Subscribe` (id and confirmation code, the address sealed in the
//! log, the 30-minute duplicate rule on the intake's clock), `ConfirmSubscription` (unknown
//! code, already confirmed), the export batch, `GetSubscription` and the forced removal,
//! idempotent retries, and one refusal per bad-input rule (field and rule named, nothing
//! appended).
use crate::support;

use chrono::{DateTime, Duration, Utc};
use ledger::intake::{Clock, ManualClock};
use ledger::proto::api::{self, ActorKind};
use support::api::*;
use tonic::Code;
use tonic_types::StatusExt;

/// A server whose intake clock stands at a fixed time the test moves.
async fn app_with_clock() -> (TestApp, ManualClock) {
    let clock = ManualClock::new(DateTime::from_timestamp(1_780_000_000, 0).unwrap());
    let hand = clock.clone();
    let app = spawn_app_with(|s| s.clock = Clock::Manual(hand)).await;
    (app, clock)
}

async fn subscribe(
    app: &mut TestApp,
    req: api::SubscribeRequest,
) -> Result<api::SubscribeResponse, tonic::Status> {
    app.client
        .subscribe(with_token(req, ADMIN))
        .await
        .map(tonic::Response::into_inner)
}

async fn confirm(
    app: &mut TestApp,
    code: &str,
) -> Result<api::SubscriptionResponse, tonic::Status> {
    app.client
        .confirm_subscription(with_token(
            api::ConfirmSubscriptionRequest {
                context: context(ActorKind::Frontend),
                confirmation_code: code.into(),
            },
            ADMIN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn get(app: &mut TestApp, id: u64) -> Result<api::Subscription, tonic::Status> {
    app.client
        .get_subscription(with_token(
            api::GetSubscriptionRequest {
                subscription_id: id,
            },
            ADMIN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn export(
    app: &mut TestApp,
    ids: Vec<u64>,
    batch: &str,
) -> Result<api::MarkSubscriptionsExportedResponse, tonic::Status> {
    app.client
        .mark_subscriptions_exported(with_token(
            api::MarkSubscriptionsExportedRequest {
                context: context(ActorKind::System),
                subscription_ids: ids,
                batch_id: batch.into(),
            },
            ADMIN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn remove(app: &mut TestApp, id: u64) -> Result<api::SubscriptionResponse, tonic::Status> {
    app.client
        .remove_subscription(with_token(
            api::RemoveSubscriptionRequest {
                context: context(ActorKind::FocUser),
                subscription_id: id,
            },
            ADMIN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Expects a refusal with `code` and a message containing `says`, and an unchanged log.
async fn refused_with<T: std::fmt::Debug>(
    app: &TestApp,
    before: u64,
    answer: Result<T, tonic::Status>,
    code: Code,
    says: &str,
) {
    let err = answer.expect_err("the call should be refused");
    assert_eq!(err.code(), code, "{err:?}");
    assert!(err.message().contains(says), "{says:?} not in {err:?}");
    assert_eq!(
        head(&app.log).await,
        before,
        "a refused call appended events"
    );
}

/// Expects `Subscribe` with `req` refused for `field` breaking `rule`, nothing appended.
async fn invalid(app: &mut TestApp, req: api::SubscribeRequest, field: &str, rule: &str) {
    let before = head(&app.log).await;
    let answer = subscribe(app, req).await;
    assert_invalid(app, before, answer, field, rule).await;
}

#[tokio::test]
async fn a_subscription_is_new_with_a_code_and_its_address_only_sealed_in_the_log() {
    let mut app = spawn_app().await;
    let answer = subscribe(&mut app, subscribe_request("Ada@Example.org"))
        .await
        .unwrap();
    assert!(answer.subscription_id > 0);
    let code = &answer.confirmation_code;
    assert_eq!(code.len(), 32, "{code}");
    assert!(code
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let s = get(&mut app, answer.subscription_id).await.unwrap();
    assert_eq!(s.status, "new");
    assert_eq!(s.tracking, "spring/banner");
    assert_eq!(s.source, "banner");
    assert_eq!(s.email, "Ada@Example.org");
    assert!(!s.is_exported && !s.is_removed);
    let id = answer.subscription_id;
    assert_eq!(
        types(&app.log, &format!("subscription-{id}")).await,
        ["SubscriptionCreated.v1"]
    );
    assert_eq!(
        types(&app.log, &format!("subscription_code-{code}")).await,
        ["SubscriptionCodeIssued.v1"]
    );
    // No stream of the log holds the address in clear, nor names it.
    for e in app.log.read_all(0, 10_000).await.unwrap() {
        assert!(!e.stream.to_lowercase().contains("ada@"), "{}", e.stream);
        let payload = String::from_utf8_lossy(&e.payload).to_lowercase();
        assert!(
            !payload.contains("ada@example.org"),
            "{} holds the address",
            e.stream
        );
    }
}

#[tokio::test]
async fn the_same_address_inside_thirty_minutes_is_refused_and_allowed_after_thirty_one() {
    let (mut app, clock) = app_with_clock().await;
    let start = clock.now();
    subscribe(&mut app, subscribe_request("grace@example.org"))
        .await
        .unwrap();
    // Another spelling of the same address, 29 minutes later (and across a window border).
    clock.set(start + Duration::minutes(29));
    let before = head(&app.log).await;
    let again = subscribe(&mut app, subscribe_request("  GRACE@example.org ")).await;
    refused_with(
        &app,
        before,
        again,
        Code::FailedPrecondition,
        "subscription-interval",
    )
    .await;
    // Another address is not held up.
    subscribe(&mut app, subscribe_request("other@example.org"))
        .await
        .unwrap();
    clock.set(start + Duration::minutes(31));
    let later = subscribe(&mut app, subscribe_request("grace@example.org"))
        .await
        .unwrap();
    assert!(later.subscription_id > 0);
    // And the rule counts from the latest subscription.
    clock.set(start + Duration::minutes(45));
    let before = head(&app.log).await;
    let third = subscribe(&mut app, subscribe_request("grace@example.org")).await;
    refused_with(
        &app,
        before,
        third,
        Code::FailedPrecondition,
        "subscription-interval",
    )
    .await;
}

#[tokio::test]
async fn a_code_confirms_once_and_an_unknown_code_is_not_found() {
    let mut app = spawn_app().await;
    let answer = subscribe(&mut app, subscribe_request("hopper@example.org"))
        .await
        .unwrap();
    let confirmed = confirm(&mut app, &answer.confirmation_code.to_uppercase())
        .await
        .unwrap()
        .subscription
        .unwrap();
    assert_eq!(confirmed.status, "confirmed");
    assert!(confirmed.confirmed_at.is_some());
    assert_eq!(
        confirmed.email, "",
        "a mutating call answers without the address"
    );
    let before = head(&app.log).await;
    let twice = confirm(&mut app, &answer.confirmation_code).await;
    refused_with(
        &app,
        before,
        twice,
        Code::FailedPrecondition,
        "subscription_already_confirmed",
    )
    .await;
    let unknown = confirm(&mut app, UNKNOWN_CODE).await;
    refused_with(
        &app,
        before,
        unknown,
        Code::NotFound,
        "subscription_confirmation_code_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_retry_answers_as_the_first_call_and_appends_nothing() {
    let (mut app, clock) = app_with_clock().await;
    let req = subscribe_request("retry@example.org");
    let first = subscribe(&mut app, req.clone()).await.unwrap();
    let before = head(&app.log).await;
    // Minutes later, inside the 30 minutes: the retry is not a duplicate, it is the same call.
    clock.set(clock.now() + Duration::minutes(5));
    let again = subscribe(&mut app, req).await.unwrap();
    assert_eq!(again.subscription_id, first.subscription_id);
    assert_eq!(again.confirmation_code, first.confirmation_code);
    assert_eq!(head(&app.log).await, before);
    let confirm_req = api::ConfirmSubscriptionRequest {
        context: context(ActorKind::Frontend),
        confirmation_code: first.confirmation_code.clone(),
    };
    let once = app
        .client
        .confirm_subscription(with_token(confirm_req.clone(), ADMIN))
        .await
        .unwrap()
        .into_inner();
    let before = head(&app.log).await;
    let retried = app
        .client
        .confirm_subscription(with_token(confirm_req, ADMIN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.subscription, once.subscription);
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_and_the_rule_and_nothing_appended() {
    let mut app = spawn_app().await;
    invalid(&mut app, subscribe_request(""), "email", "is required").await;
    invalid(
        &mut app,
        subscribe_request("not an address"),
        "email",
        "valid email",
    )
    .await;
    let long = format!("{}@example.org", "a".repeat(240));
    invalid(&mut app, subscribe_request(&long), "email", "250").await;
    let mut req = subscribe_request("ok@example.org");
    req.source = "s".repeat(51);
    invalid(&mut app, req, "source", "50").await;
    let mut req = subscribe_request("ok@example.org");
    req.tracking = Some(api::SubscriptionTrackingInput {
        campaign: "c".repeat(30),
        keyword: "k".repeat(30),
    });
    invalid(&mut app, req, "tracking", "50").await;
    let before = head(&app.log).await;
    for code in ["", "xyz", "0123456789abcdef0123456789abcdeg"] {
        let err = confirm(&mut app, code).await.expect_err("malformed code");
        assert_eq!(err.code(), Code::InvalidArgument, "{code:?}: {err:?}");
        let violations = err.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "confirmation_code");
    }
    let err = get(&mut app, 0).await.expect_err("id 0");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = export(&mut app, vec![], "b").await.expect_err("no ids");
    assert_eq!(
        err.get_details_bad_request().unwrap().field_violations[0].field,
        "subscription_ids"
    );
    assert_eq!(head(&app.log).await, before);
}

#[tokio::test]
async fn the_export_batch_exports_once_and_reports_earlier_exports() {
    let mut app = spawn_app().await;
    let a = subscribe(&mut app, subscribe_request("a@example.org"))
        .await
        .unwrap()
        .subscription_id;
    let b = subscribe(&mut app, subscribe_request("b@example.org"))
        .await
        .unwrap()
        .subscription_id;
    let first = export(&mut app, vec![a], "s-1").await.unwrap();
    assert_eq!(first.exported, [a]);
    let second = export(&mut app, vec![b, a, b], "s-2").await.unwrap();
    assert_eq!(second.exported, [b]);
    assert_eq!(second.already_exported, [a]);
    let s = get(&mut app, a).await.unwrap();
    assert!(s.is_exported);
    assert_eq!(s.export_batch, "s-1");
    let before = head(&app.log).await;
    let missing = export(&mut app, vec![a, 999_999], "s-3").await;
    refused_with(&app, before, missing, Code::NotFound, "999999").await;
}

#[tokio::test]
async fn a_forced_removal_shreds_the_address_and_refuses_confirming_and_exporting_it() {
    let mut app = spawn_app().await;
    let answer = subscribe(&mut app, subscribe_request("gdpr@example.org"))
        .await
        .unwrap();
    let id = answer.subscription_id;
    let removed = remove(&mut app, id).await.unwrap().subscription.unwrap();
    assert!(removed.is_removed);
    assert_eq!(removed.removal_rule, "forced_removal");
    let s = get(&mut app, id).await.unwrap();
    assert!(s.is_removed);
    assert_eq!(s.email, "", "no address after a removal");
    assert_eq!(s.status, "new");
    assert_eq!(
        types(&app.log, &format!("subscription_scrub-{id}")).await,
        ["PersonalDataScrubbed.v1"]
    );
    let before = head(&app.log).await;
    let confirm_removed = confirm(&mut app, &answer.confirmation_code).await;
    refused_with(
        &app,
        before,
        confirm_removed,
        Code::FailedPrecondition,
        "removed",
    )
    .await;
    let export_removed = export(&mut app, vec![id], "s-1").await;
    refused_with(
        &app,
        before,
        export_removed,
        Code::FailedPrecondition,
        "removed",
    )
    .await;
    let twice = remove(&mut app, id).await;
    refused_with(
        &app,
        before,
        twice,
        Code::FailedPrecondition,
        "already removed",
    )
    .await;
    let unknown = remove(&mut app, 999_999).await;
    refused_with(&app, before, unknown, Code::NotFound, "subscription 999999").await;
}

#[tokio::test]
async fn the_duplicate_index_is_a_keyed_hash_and_a_removed_address_may_subscribe_again() {
    let (mut app, clock) = app_with_clock().await;
    let start: DateTime<Utc> = clock.now();
    let id = subscribe(&mut app, subscribe_request("index@example.org"))
        .await
        .unwrap()
        .subscription_id;
    let index: Vec<String> = app
        .log
        .read_all(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.stream)
        .filter(|s| s.starts_with("subscription_email-"))
        .collect();
    assert_eq!(index.len(), 1, "{index:?}");
    let hash = index[0].trim_start_matches("subscription_email-");
    assert_eq!(hash.len(), 64, "an HMAC-SHA256 in hex: {hash}");
    // A GDPR removal two windows later also destroys the key of the window it was made in (no
    // duplicate check needs it any more); the address may subscribe again.
    clock.set(start + Duration::minutes(61));
    remove(&mut app, id).await.unwrap();
    clock.set(start + Duration::minutes(62));
    subscribe(&mut app, subscribe_request("index@example.org"))
        .await
        .unwrap();
}
