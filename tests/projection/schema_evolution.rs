//! Schema evolution: a `DonationCreated.v1` payload stored by the first schema still decodes
//! (upcast to the current version) and folds into the expected donation.
//!
//! `tests/fixtures/DonationCreated.v1.bin` was generated once from a `DonationCreatedV1`
//! message (`proto/ledger/events/v1/legacy.proto`) and is committed; it is never regenerated,
//! so a change that breaks old events fails here.

use ledger::domain::donation::{DonationState, DonorKind};
use ledger::domain::streams;
use ledger::domain::view::DonorDisplay;
use ledger::domain::{DomainEvent, DonationView, Money, PaymentMethod};

const FIXTURE: &[u8] = include_bytes!("../fixtures/DonationCreated.v1.bin");

fn decoded() -> DomainEvent {
    DomainEvent::decode("DonationCreated.v1", FIXTURE).expect("v1 payload decodes")
}

#[test]
fn a_stored_v1_donation_created_is_upcast_to_the_current_version() {
    let event = decoded();
    assert_eq!(event.event_type(), "DonationCreated.v2");
    // Re-encoded as the current version it round-trips.
    let again = DomainEvent::decode(event.event_type(), &event.encode()).unwrap();
    assert_eq!(again, event);
}

#[test]
fn a_stored_v1_donation_created_folds_into_the_expected_donation() {
    let s = DonationState::fold(&[decoded()]);
    assert_eq!(s.id, Some(4_233_996));
    assert_eq!(
        s.created_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2022-04-21T11:20:00+00:00")
    );
    assert_eq!(s.amount, Some(Money::eur(1337)));
    assert_eq!(s.interval_months, 3);
    assert_eq!(s.payment_id, 36_779);
    assert_eq!(s.payment_method, Some(PaymentMethod::DirectDebit));
    assert_eq!(s.donor.kind, DonorKind::Person);
    assert_eq!(s.donor.salutation, "Herr");
    assert!(s.donor.wants_newsletter);
    assert!(!s.donor.wants_receipt);
    // The log held the personal data only sealed, so the fold sees none.
    assert_eq!(s.personal, None);
    let tracking = s.tracking.as_ref().expect("tracking");
    assert_eq!(tracking.campaign, "test");
    assert_eq!(tracking.keyword, "gelb");
    assert_eq!(tracking.impression_count, 3);
    assert_eq!(tracking.banner_impression_count, 1);
    assert!(s.comment.is_none());
}

#[test]
fn a_stored_v1_donation_created_yields_the_legacy_letter_n_in_the_view() {
    let mut v = DonationView::default();
    v.apply(&streams::donation(4_233_996), &decoded());
    assert_eq!(v.legacy_status(), 'N');
    assert_eq!(
        v.donor_display(),
        DonorDisplay::Withheld {
            kind: DonorKind::Person,
            salutation: "Herr"
        }
    );
}
