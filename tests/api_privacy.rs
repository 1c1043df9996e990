//! Personal data never reaches the log in clear: the raw bytes of the event-log files (main
//! file and WAL) hold no name, email, IBAN, street, private comment or reference code.
mod support;

use ledger::proto::api;
use ledger::proto::events as ev;
use support::api::*;

#[tokio::test]
async fn the_log_files_never_contain_the_donors_personal_data_in_clear() {
    let mut app = spawn_app().await;
    let mut req = donation(ev::PaymentMethod::DirectDebit, 1_000);
    req.comment = Some(api::CommentInput {
        text: "Heimlicher Kommentar".into(),
        is_public: false,
        display_name: String::new(),
    });
    app.client
        .add_donation(with_token(req, ADMIN))
        .await
        .unwrap();
    let transfer = app
        .client
        .add_donation(with_token(
            donation(ev::PaymentMethod::BankTransfer, 2_000),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    let code = transfer.payment_reference_code.replace('-', "");
    // Retries answer from the request record, which must not hold the code either.
    let paypal = app
        .client
        .add_donation(with_token(
            donation(ev::PaymentMethod::Paypal, 3_000),
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    app.client
        .book_payment(with_token(
            api::BookPaymentRequest {
                context: context(api::ActorKind::Provider),
                payment_id: paypal.payment_id,
                transaction_id: "TXN-SECRET-77".into(),
                payer_id: "PAYER-SECRET-88".into(),
                ..Default::default()
            },
            PROVIDER,
        ))
        .await
        .unwrap();
    let files: Vec<_> = support::read_dir_bytes(app.dir.path())
        .into_iter()
        .filter(|(p, _)| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.sqlite")
        })
        .collect();
    assert!(
        files.len() >= 2,
        "expected the log file and its WAL: {files:?}",
        files = files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let needles = [
        "Adelheid",
        "Zwiebelmeier",
        "adelheid.zwiebelmeier@example.org",
        "Geheimweg",
        "DE02120300000000202051",
        "Heimlicher Kommentar",
        "TXN-SECRET-77",
        "PAYER-SECRET-88",
        transfer.payment_reference_code.as_str(),
        code.as_str(),
    ];
    for (path, bytes) in &files {
        for needle in needles {
            assert!(
                !support::contains(bytes, needle.as_bytes()),
                "{needle:?} in clear in {}",
                path.display()
            );
        }
    }
    // And yet the data is there for readers with the key.
    let d = app
        .client
        .get_donation(with_token(
            api::GetDonationRequest {
                donation_id: transfer.donation_id,
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.donor.unwrap().first_name, "Adelheid");
}
