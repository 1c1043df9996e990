//! Personal data never reaches the disk in clear: the raw bytes of every file of the data
//! directory (the log and its WAL, the key store, the sequences) hold no name, email, IBAN,
//! street, private comment or reference code.
use crate::support;

use ledger::proto::api;
use ledger::proto::events as ev;
use support::api::*;

#[tokio::test]
async fn no_file_of_the_data_directory_contains_the_donors_personal_data_in_clear() {
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
    // Every file of the data directory: the log and its WAL, the key store, the sequences.
    let files = support::read_dir_bytes(app.dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["events.sqlite", "events.sqlite-wal", "keys.sqlite"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
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
