//! Test-only builders of events and views shared by the unit tests of the domain (and of the
//! read model's rows).

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::donation::{DonorKind, PersonalData};
use crate::domain::moderation::{ModerationIdentifier, ModerationReason};
use crate::domain::streams;
use crate::domain::types::{to_timestamp, PaymentMethod, StreamEvent};
use crate::domain::view::DonationView;
use crate::domain::DomainEvent;
use crate::proto::events as ev;

/// Donation id used by the fixtures.
pub const ID: u64 = 7;
/// Its payment id.
pub const PAYMENT_ID: u64 = 70;

/// When fixture donations are created.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
}

/// `DonationCreated` for donation [`ID`].
pub fn created(method: PaymentMethod, kind: DonorKind, interval: u32) -> DomainEvent {
    ev::DonationCreated {
        donation_id: ID,
        created_at: Some(to_timestamp(t0())),
        amount: Some(ev::Money {
            cents: 1337,
            currency: "EUR".into(),
        }),
        interval_months: interval,
        payment_id: PAYMENT_ID,
        payment_method: method.to_proto(),
        donor: Some(ev::DonorPublic {
            kind: kind as i32,
            salutation: "Frau".into(),
            wants_newsletter: true,
            wants_receipt: true,
        }),
        personal: (kind != DonorKind::Anonymous).then(|| PersonalData {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            city: "Berlin".into(),
            email: "ada@example.org".into(),
            ..Default::default()
        }),
        personal_sealed: None,
        tracking: Some(ev::Tracking {
            campaign: "test".into(),
            keyword: "gelb".into(),
            impression_count: 3,
            banner_impression_count: 1,
            contribution_tracking_id: 0,
        }),
        comment: None,
    }
    .into()
}

/// `PaymentInitiated` for payment [`PAYMENT_ID`].
pub fn initiated(method: PaymentMethod, interval: u32) -> DomainEvent {
    ev::PaymentInitiated {
        payment_id: PAYMENT_ID,
        donation_id: ID,
        method: method.to_proto(),
        amount: Some(ev::Money {
            cents: 1337,
            currency: "EUR".into(),
        }),
        interval_months: interval,
        ..Default::default()
    }
    .into()
}

/// `PaymentBooked` with a transaction id.
pub fn booked(txn: &str) -> DomainEvent {
    ev::PaymentBooked {
        valuation_date: Some(to_timestamp(t0())),
        amount: None,
        provider: Some(ev::ProviderData {
            transaction_id: txn.into(),
            ..Default::default()
        }),
        provider_sealed: None,
    }
    .into()
}

/// `ModerationReasonsRaised` with one reason.
pub fn raised(identifier: ModerationIdentifier, source: &str) -> DomainEvent {
    ev::ModerationReasonsRaised {
        reasons: vec![ModerationReason::new(identifier, source).to_proto()],
    }
    .into()
}

/// `PersonalDataScrubbed`.
pub fn scrubbed() -> DomainEvent {
    ev::PersonalDataScrubbed {
        rule: ev::ScrubRule::Exported as i32,
        scrubbed_at: Some(to_timestamp(t0())),
    }
    .into()
}

/// A view of a created donation with an initiated payment.
pub fn view(method: PaymentMethod, kind: DonorKind, interval: u32) -> DonationView {
    let mut v = DonationView::default();
    v.apply(&streams::donation(ID), &created(method, kind, interval));
    v.apply(&streams::payment(PAYMENT_ID), &initiated(method, interval));
    v
}

/// Applies decided events to the view, as a projector would after appending them.
pub fn apply_all(view: &mut DonationView, events: &[StreamEvent]) {
    for e in events {
        view.apply(&e.stream, &e.event);
    }
}
