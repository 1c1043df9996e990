//! Every validation rule of the gRPC intake: INVALID_ARGUMENT naming the field and the rule,
//! and nothing appended to the log.
use crate::support;

use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use support::api::*;
use tonic::Code;
use tonic_types::StatusExt;

/// Sends `req`, expects INVALID_ARGUMENT mentioning every `needle`, and an unchanged log.
async fn refused(app: &mut TestApp, req: api::AddDonationRequest, needles: &[&str]) {
    let before = head(&app.log).await;
    let err = app
        .client
        .add_donation(with_token(req, ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // The same violations, machine-readable (`google.rpc.BadRequest`), as in the message.
    let bad_request = err
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest detail: {err:?}"));
    assert!(!bad_request.field_violations.is_empty());
    for violation in &bad_request.field_violations {
        assert!(
            err.message()
                .contains(&format!("{}: {}", violation.field, violation.description)),
            "{violation:?} not in {:?}",
            err.message()
        );
    }
    for needle in needles {
        assert!(
            err.message().contains(needle),
            "{needle:?} not in {:?}",
            err.message()
        );
    }
    assert_eq!(
        head(&app.log).await,
        before,
        "a rejected call appended events"
    );
}

fn with_payment(f: impl FnOnce(&mut api::PaymentInput)) -> api::AddDonationRequest {
    let mut req = donation(ev::PaymentMethod::DirectDebit, 1_000);
    f(req.payment.as_mut().unwrap());
    req
}

fn with_donor(f: impl FnOnce(&mut api::DonorInput)) -> api::AddDonationRequest {
    let mut req = donation(ev::PaymentMethod::DirectDebit, 1_000);
    f(req.donor.as_mut().unwrap());
    req
}

#[tokio::test]
async fn amounts_below_one_euro_or_from_one_hundred_thousand_euros_are_refused() {
    let mut app = spawn_app().await;
    refused(
        &mut app,
        with_payment(|p| p.amount_cents = 99),
        &["payment.amount_cents: must be at least 100 cents"],
    )
    .await;
    refused(
        &mut app,
        with_payment(|p| p.amount_cents = 10_000_000),
        &["payment.amount_cents: must be below"],
    )
    .await;
    refused(
        &mut app,
        with_payment(|p| p.amount_cents = -5),
        &["payment.amount_cents"],
    )
    .await;
}

#[tokio::test]
async fn unknown_methods_intervals_and_donor_kinds_are_refused() {
    let mut app = spawn_app().await;
    refused(
        &mut app,
        with_payment(|p| p.method = 0),
        &["payment.method: must be a known payment method"],
    )
    .await;
    refused(
        &mut app,
        with_payment(|p| p.method = 42),
        &["payment.method"],
    )
    .await;
    refused(
        &mut app,
        with_payment(|p| p.interval_months = 2),
        &["payment.interval_months: must be one of 0, 1, 3, 6, 12"],
    )
    .await;
    refused(&mut app, with_donor(|d| d.kind = 0), &["donor.kind"]).await;
    let mut sofort = donation(ev::PaymentMethod::Sofort, 1_000);
    sofort.payment.as_mut().unwrap().interval_months = 1;
    refused(&mut app, sofort, &["Sofort payments are one-time only"]).await;
}

#[tokio::test]
async fn an_anonymous_donor_cannot_pay_by_direct_debit() {
    let mut app = spawn_app().await;
    let req = with_donor(|d| {
        *d = api::DonorInput {
            kind: ev::DonorKind::Anonymous as i32,
            ..Default::default()
        }
    });
    refused(
        &mut app,
        req,
        &["payment.method: anonymous donors cannot pay by direct debit"],
    )
    .await;
}

#[tokio::test]
async fn malformed_iban_bic_and_email_are_refused_together() {
    let mut app = spawn_app().await;
    let mut req = with_payment(|p| {
        p.iban = "DE02120300000000202052".into();
        p.bic = "nope".into();
    });
    req.donor.as_mut().unwrap().email = "not-an-email".into();
    refused(
        &mut app,
        req,
        &[
            "payment.iban: must be a valid IBAN",
            "payment.bic",
            "donor.email: must be a valid email",
        ],
    )
    .await;
    refused(
        &mut app,
        with_payment(|p| p.iban.clear()),
        &["payment.iban: is required for direct debit"],
    )
    .await;
}

#[tokio::test]
async fn oversized_strings_and_missing_required_fields_are_named() {
    let mut app = spawn_app().await;
    refused(
        &mut app,
        with_donor(|d| d.city = "x".repeat(251)),
        &["donor.city: must be at most 250 characters"],
    )
    .await;
    refused(
        &mut app,
        with_donor(|d| d.last_name.clear()),
        &["donor.last_name: is required"],
    )
    .await;
    let mut long_comment = donation(ev::PaymentMethod::DirectDebit, 1_000);
    long_comment.comment = Some(api::CommentInput {
        text: "y".repeat(3000),
        ..Default::default()
    });
    refused(
        &mut app,
        long_comment,
        &["comment.text: must be at most 2048"],
    )
    .await;
    let mut long_tracking = donation(ev::PaymentMethod::DirectDebit, 1_000);
    long_tracking.tracking.as_mut().unwrap().campaign = "c".repeat(300);
    refused(&mut app, long_tracking, &["tracking.campaign"]).await;
}

#[tokio::test]
async fn the_request_context_is_required_and_checked() {
    let mut app = spawn_app().await;
    let mut no_context = donation(ev::PaymentMethod::DirectDebit, 1_000);
    no_context.context = None;
    refused(&mut app, no_context, &["context: is required"]).await;
    let mut empty_id = donation(ev::PaymentMethod::DirectDebit, 1_000);
    empty_id.context.as_mut().unwrap().request_id.clear();
    refused(&mut app, empty_id, &["context.request_id: is required"]).await;
    let mut long_id = donation(ev::PaymentMethod::DirectDebit, 1_000);
    long_id.context.as_mut().unwrap().request_id = "r".repeat(129);
    refused(&mut app, long_id, &["context.request_id"]).await;
    let mut spaced = donation(ev::PaymentMethod::DirectDebit, 1_000);
    spaced.context.as_mut().unwrap().request_id = "has space".into();
    refused(
        &mut app,
        spaced,
        &["context.request_id: must be printable ASCII"],
    )
    .await;
    let mut no_kind = donation(ev::PaymentMethod::DirectDebit, 1_000);
    no_kind
        .context
        .as_mut()
        .unwrap()
        .actor
        .as_mut()
        .unwrap()
        .kind = 0;
    refused(&mut app, no_kind, &["context.actor.kind"]).await;
}

#[tokio::test]
async fn missing_ids_are_refused_on_every_call_that_needs_one() {
    let mut app = spawn_app().await;
    let before = head(&app.log).await;
    let c = &mut app.client;
    let action = api::DonationActionRequest {
        context: context(ActorKind::FocUser),
        donation_id: 0,
        reason: String::new(),
    };
    let err = c
        .cancel_donation(with_token(action.clone(), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("donation_id"), "{err:?}");
    let err = c
        .book_payment(with_token(
            api::BookPaymentRequest {
                context: context(ActorKind::Provider),
                transaction_id: "T".into(),
                ..Default::default()
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert!(err.message().contains("payment_id"), "{err:?}");
    let err = c
        .book_payment(with_token(
            api::BookPaymentRequest {
                context: context(ActorKind::Provider),
                payment_id: 5,
                ..Default::default()
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert!(
        err.message().contains("transaction_id: is required"),
        "{err:?}"
    );
    let err = c
        .link_contribution(with_token(
            api::LinkContributionRequest {
                context: context(ActorKind::System),
                contribution_tracking_id: 1,
                contribution_id: 0,
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert!(err.message().contains("contribution_id"), "{err:?}");
    let err = c
        .mark_exported(with_token(
            api::MarkExportedRequest {
                context: context(ActorKind::System),
                donation_ids: vec![],
                batch_id: String::new(),
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert!(
        err.message().contains("donation_ids") && err.message().contains("batch_id"),
        "{err:?}"
    );
    let err = c
        .next_id(with_token(next_id_request("donations", 1), ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("sequence"), "{err:?}");
    assert_eq!(head(&app.log).await, before);
}

/// Expects `result` to be INVALID_ARGUMENT naming `field`, and the log unchanged since
/// `before`.
async fn refused_naming(
    app: &TestApp,
    what: &str,
    result: Result<(), tonic::Status>,
    field: &str,
    before: u64,
) {
    let err = result.expect_err(what);
    assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    assert!(
        err.message().contains(&format!("{field}: ")),
        "{what}: {field} not named in {:?}",
        err.message()
    );
    assert_eq!(head(&app.log).await, before, "{what} appended events");
}

#[tokio::test]
async fn control_characters_in_the_actor_id_or_source_are_refused_on_every_mutating_call() {
    let mut app = spawn_app().await;
    let before = head(&app.log).await;
    for (field, bad) in [
        ("context.actor.id", "admin\u{0}"),
        ("context.actor.id", "bell\u{7}"),
        ("context.source", "esc\u{1b}[2J"),
        ("context.source", "nul\u{0}"),
    ] {
        let calls = Call::every_mutating(ActorKind::System);
        assert_eq!(calls.len(), 30, "every mutating method");
        for mut call in calls {
            let method = call.method();
            let ctx = call.context_mut().unwrap().as_mut().unwrap();
            match field {
                "context.source" => ctx.source = bad.into(),
                _ => ctx.actor.as_mut().unwrap().id = bad.into(),
            }
            let result = call.send(&mut app.client, ADMIN).await;
            refused_naming(&app, &format!("{method} {bad:?}"), result, field, before).await;
        }
    }
}

#[tokio::test]
async fn values_no_read_model_column_can_hold_are_refused_with_their_field() {
    let mut app = spawn_app().await;
    let before = head(&app.log).await;
    // Ids above BIGINT, counts above INTEGER.
    let mut big_id = donation(ev::PaymentMethod::BankTransfer, 1_000);
    big_id.tracking.as_mut().unwrap().contribution_tracking_id = 1 << 63;
    let result = Call::AddDonation(big_id).send(&mut app.client, ADMIN).await;
    refused_naming(
        &app,
        "ct id 2^63",
        result,
        "tracking.contribution_tracking_id",
        before,
    )
    .await;
    let mut many = donation(ev::PaymentMethod::BankTransfer, 1_000);
    many.tracking.as_mut().unwrap().impression_count = u32::MAX;
    let result = Call::AddDonation(many).send(&mut app.client, ADMIN).await;
    refused_naming(
        &app,
        "impressions",
        result,
        "tracking.impression_count",
        before,
    )
    .await;

    // Money no column keeps, times outside 1000..9999 or with negative nanos.
    let book = |f: &dyn Fn(&mut api::BookPaymentRequest)| {
        let mut r = api::BookPaymentRequest {
            context: context(ActorKind::Provider),
            payment_id: 1,
            transaction_id: "T-1".into(),
            ..Default::default()
        };
        f(&mut r);
        Call::BookPayment(r)
    };
    let result = book(&|r| r.amount_cents = i64::MAX)
        .send(&mut app.client, ADMIN)
        .await;
    refused_naming(&app, "i64::MAX cents", result, "amount_cents", before).await;
    for ts in [
        prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: -1,
        },
        prost_types::Timestamp {
            seconds: -62_135_596_800, // year 1
            nanos: 0,
        },
        prost_types::Timestamp {
            seconds: 1 << 62,
            nanos: 0,
        },
    ] {
        let result = book(&|r| r.valuation_date = Some(ts))
            .send(&mut app.client, ADMIN)
            .await;
        refused_naming(&app, &format!("{ts:?}"), result, "valuation_date", before).await;
    }

    // Tracking: a negative amount, a tracking date at 2^62 seconds.
    let tracking = |fields: ev::ContributionTrackingFields| {
        Call::RecordContributionTracking(api::RecordContributionTrackingRequest {
            context: context(ActorKind::Frontend),
            contribution_tracking_id: 1,
            allocation_token: "t1".into(),
            fields: Some(fields),
        })
    };
    let result = tracking(ev::ContributionTrackingFields {
        amount: Some("-1".into()),
        ..Default::default()
    })
    .send(&mut app.client, ADMIN)
    .await;
    refused_naming(&app, "amount -1", result, "fields.amount", before).await;
    let result = tracking(ev::ContributionTrackingFields {
        tracking_date: Some(prost_types::Timestamp {
            seconds: 1 << 62,
            nanos: 0,
        }),
        ..Default::default()
    })
    .send(&mut app.client, ADMIN)
    .await;
    refused_naming(
        &app,
        "tracking date 2^62",
        result,
        "fields.tracking_date",
        before,
    )
    .await;

    // A reason PublishComment used to take unchecked.
    let result = Call::PublishComment(api::DonationActionRequest {
        context: context(ActorKind::FocUser),
        donation_id: 1,
        reason: "x".repeat(1 << 20),
    })
    .send(&mut app.client, ADMIN)
    .await;
    refused_naming(&app, "1 MB reason", result, "reason", before).await;
}

#[tokio::test]
async fn linking_a_contribution_to_a_tracking_id_never_handed_out_is_refused() {
    let mut app = spawn_app().await;
    let before = head(&app.log).await;
    let link = |id: u64| {
        Call::LinkContribution(api::LinkContributionRequest {
            context: context(ActorKind::System),
            contribution_tracking_id: id,
            contribution_id: 7,
        })
    };
    let result = link(1).send(&mut app.client, ADMIN).await;
    refused_naming(
        &app,
        "no id handed out",
        result,
        "contribution_tracking_id",
        before,
    )
    .await;
    let ids = app
        .client
        .next_id(with_token(
            next_id_request("contribution-tracking", 2),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let before = head(&app.log).await;
    let result = link(ids.last_id + 1).send(&mut app.client, ADMIN).await;
    refused_naming(
        &app,
        "beyond the sequence",
        result,
        "contribution_tracking_id",
        before,
    )
    .await;
    link(ids.last_id)
        .send(&mut app.client, ADMIN)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_megabyte_sequence_name_is_refused_with_a_short_message() {
    let mut app = spawn_app().await;
    let name = "x".repeat(1 << 20);
    let err = app
        .client
        .next_id(with_token(next_id_request(&name, 1), FORM))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{:.200}", err.message());
    assert!(err.message().contains("invalid name"), "{}", err.message());
    assert!(err.message().contains('…'), "{}", err.message());
    assert!(err.message().len() < 512, "{} bytes", err.message().len());
}

/// Request and response bytes as they are, for sending what no client generated from the
/// schema would send.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(buf);
        Ok(Some(bytes::Buf::copy_to_bytes(buf, n).to_vec()))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

#[tokio::test]
async fn a_request_that_does_not_decode_is_an_invalid_argument() {
    let app = spawn_app().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", app.port))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    // A field with wire type 7 (there is none), a length running past the end, a varint that
    // never ends: none is a message, whatever the schema.
    let garbage: [&[u8]; 3] = [b"\x0f\x01", b"\x0a\xff\x01abc", &[0xff; 12]];
    for (i, body) in garbage.into_iter().enumerate() {
        for method in ["AddDonation", "NextId"] {
            grpc.ready().await.unwrap();
            let path = format!("/ledger.api.v1.Ledger/{method}").parse().unwrap();
            let err = grpc
                .unary(with_token(body.to_vec(), ADMIN), path, RawCodec)
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "body {i} to {method}: {err:?}"
            );
            assert!(err.message().contains("does not decode"), "{err:?}");
        }
    }
    assert_eq!(head(&app.log).await, 0, "nothing appended");
}

/// Log lines written while a test runs on this thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn all(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines at `level` (`ERROR`, `WARN`, `INFO`, `DEBUG`) that contain every needle.
    fn at(&self, level: &str, needles: &[&str]) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(level))
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn refused_calls_log_at_info_or_warn_replays_at_debug_and_none_at_error() {
    // A current-thread runtime: the server's tasks run on this thread, under this subscriber.
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("ledger=debug"))
        .with_writer({
            let c = captured.clone();
            move || c.clone()
        })
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut app = spawn_app().await;
    // Other tests of this binary hit the same log statements on other threads, without a
    // subscriber; one that registered a statement while this subscriber was being installed
    // may have cached it as disabled. Recomputed now, every statement sees this subscriber.
    tracing::callsite::rebuild_interest_cache();
    let c = &mut app.client;

    let err = c
        .add_donation(with_token(
            donation(ev::PaymentMethod::DirectDebit, 50),
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .get_donation(with_token(
            api::GetDonationRequest { donation_id: 4711 },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let paypal = c
        .add_donation(with_token(
            donation(ev::PaymentMethod::Paypal, 1_000),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let cancel = api::DonationActionRequest {
        context: context(ActorKind::Frontend),
        donation_id: paypal.donation_id,
        reason: "test".into(),
    };
    let err = c
        .cancel_donation(with_token(cancel, ADMIN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = c
        .get_history(with_token(api::GetHistoryRequest { donation_id: 1 }, FORM))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = c
        .get_donation(tonic::Request::new(api::GetDonationRequest {
            donation_id: 1,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let request = next_id_request("donation", 1);
    let first = c.next_id(with_token(request.clone(), FORM)).await.unwrap();
    let again = c.next_id(with_token(request, FORM)).await.unwrap();
    assert_eq!(first.into_inner(), again.into_inner());

    // The server logs a refusal as its call ends, which may be just after the client has its
    // answer: wait (up to 10 s) for each line before counting them.
    for words in [
        [
            "call refused",
            "AddDonation",
            "InvalidArgument",
            "payment.amount_cents",
        ],
        ["call refused", "GetDonation", "NotFound", "does not exist"],
        [
            "call refused",
            "CancelDonation",
            "FailedPrecondition",
            "cancelled",
        ],
    ] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while captured.at("INFO", &words).is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let refused = |method: &str, code: &str, rule: &str| {
        let lines = captured.at("INFO", &["call refused", method, code, rule]);
        assert_eq!(lines.len(), 1, "{method}: {lines:?} in {}", captured.all());
    };
    refused("AddDonation", "InvalidArgument", "payment.amount_cents");
    refused("GetDonation", "NotFound", "does not exist");
    refused("CancelDonation", "FailedPrecondition", "cancelled");
    assert_eq!(captured.at("WARN", &["refused: out of scope"]).len(), 1);
    assert_eq!(captured.at("WARN", &["refused: no token"]).len(), 1);
    assert_eq!(
        captured.at("DEBUG", &["idempotent replay", "NextId"]).len(),
        1
    );
    assert_eq!(captured.at("ERROR", &[]), Vec::<String>::new());
}
