//! Event types, their explicit versioned type names, and encoding with upcasting.
//!
//! The stored type name is written here by hand, never derived from a Rust type name. When a
//! payload schema changes incompatibly, the old message moves to `proto/.../legacy.proto`, the
//! type name's version goes up, and `decode` gains an upcaster from the old version, so every
//! event ever written still decodes to the current shape.

use prost::Message;

use crate::domain::types::PaymentMethod;
use crate::proto::events as ev;

/// Errors decoding a stored event.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The type name is not one this ledger has ever written.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// The payload does not decode as its type.
    #[error("payload of `{event_type}` does not decode: {source}")]
    Malformed {
        /// The stored type name.
        event_type: String,
        /// The protobuf error.
        source: prost::DecodeError,
    },
    /// An old version could not be upcast.
    #[error("cannot upcast `{event_type}`: {reason}")]
    Upcast {
        /// The stored type name.
        event_type: String,
        /// Why.
        reason: String,
    },
}

macro_rules! domain_events {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// Every event of the ledger, in its current version.
        #[derive(Debug, Clone, PartialEq)]
        pub enum DomainEvent {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant(ev::$variant),
            )+
        }

        impl DomainEvent {
            /// The explicit, versioned type name stored with the event.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $name,)+
                }
            }

            /// The protobuf encoding of the payload.
            pub fn encode(&self) -> Vec<u8> {
                match self {
                    $(Self::$variant(e) => e.encode_to_vec(),)+
                }
            }

            /// Every current type name.
            pub const CURRENT_TYPES: &'static [&'static str] = &[$($name),+];

            /// Decodes a stored event of a current type name.
            fn decode_current(event_type: &str, payload: &[u8]) -> Option<Result<Self, prost::DecodeError>> {
                match event_type {
                    $($name => Some(ev::$variant::decode(payload).map(Self::$variant)),)+
                    _ => None,
                }
            }
        }

        $(
            impl From<ev::$variant> for DomainEvent {
                fn from(e: ev::$variant) -> Self {
                    Self::$variant(e)
                }
            }
        )+
    };
}

domain_events! {
    DonationCreated => "DonationCreated.v2",
    DonorUpdated => "DonorUpdated.v1",
    CommentAdded => "CommentAdded.v1",
    CommentPublished => "CommentPublished.v1",
    CommentRetracted => "CommentRetracted.v1",
    FollowUpDonationCreated => "FollowUpDonationCreated.v1",
    PaymentInitiated => "PaymentInitiated.v1",
    PaymentBooked => "PaymentBooked.v1",
    PaymentFailed => "PaymentFailed.v1",
    PaymentCancelled => "PaymentCancelled.v1",
    PaymentRestored => "PaymentRestored.v1",
    FollowUpPaymentBooked => "FollowUpPaymentBooked.v1",
    PaymentRefunded => "PaymentRefunded.v1",
    ChargebackReceived => "ChargebackReceived.v1",
    ModerationReasonsRaised => "ModerationReasonsRaised.v1",
    ModerationApproved => "ModerationApproved.v1",
    ManuallyFlagged => "ManuallyFlagged.v1",
    DonationCancelled => "DonationCancelled.v1",
    DonationDeleted => "DonationDeleted.v1",
    DonationRestored => "DonationRestored.v1",
    DonationExported => "DonationExported.v1",
    PersonalDataScrubbed => "PersonalDataScrubbed.v1",
    ContributionTrackingRecorded => "ContributionTrackingRecorded.v1",
    ContributionLinked => "ContributionLinked.v1",
    MembershipApplied => "MembershipApplied.v1",
    MembershipCancelled => "MembershipCancelled.v1",
    MembershipRestored => "MembershipRestored.v1",
    MembershipExported => "MembershipExported.v1",
    AddressChangeCreated => "AddressChangeCreated.v1",
    AddressChanged => "AddressChanged.v1",
    DonationReceiptOptedOut => "DonationReceiptOptedOut.v1",
    AddressChangeTokenIssued => "AddressChangeTokenIssued.v1",
    AddressChangeExported => "AddressChangeExported.v1",
    SubscriptionCreated => "SubscriptionCreated.v1",
    SubscriptionConfirmed => "SubscriptionConfirmed.v1",
    SubscriptionCodeIssued => "SubscriptionCodeIssued.v1",
    SubscriptionEmailUsed => "SubscriptionEmailUsed.v1",
    SubscriptionExported => "SubscriptionExported.v1",
}

/// Type names of older versions that `decode` upcasts.
pub const LEGACY_TYPES: &[&str] = &["DonationCreated.v1"];

impl DomainEvent {
    /// Decodes a stored event, upcasting older versions to the current one.
    pub fn decode(event_type: &str, payload: &[u8]) -> Result<Self, CodecError> {
        let malformed = |source| CodecError::Malformed {
            event_type: event_type.to_owned(),
            source,
        };
        if let Some(decoded) = Self::decode_current(event_type, payload) {
            return decoded.map_err(malformed);
        }
        match event_type {
            "DonationCreated.v1" => {
                let old = ev::DonationCreatedV1::decode(payload).map_err(malformed)?;
                upcast_donation_created_v1(old).map(Self::DonationCreated)
            }
            other => Err(CodecError::UnknownType(other.to_owned())),
        }
    }
}

/// `DonationCreated.v1` → `.v2`: EUR cents become `Money`, legacy codes become enums, the
/// legacy `campaign/keyword` string becomes structured tracking.
fn upcast_donation_created_v1(
    old: ev::DonationCreatedV1,
) -> Result<ev::DonationCreated, CodecError> {
    let fail = |reason: String| CodecError::Upcast {
        event_type: "DonationCreated.v1".into(),
        reason,
    };
    let payment_method = PaymentMethod::from_code(&old.payment_type).ok_or_else(|| {
        fail(format!(
            "unknown legacy payment type {:?}",
            old.payment_type
        ))
    })?;
    let kind = ev::DonorKind::from_legacy_code(&old.address_type).ok_or_else(|| {
        fail(format!(
            "unknown legacy address type {:?}",
            old.address_type
        ))
    })?;
    let (campaign, keyword) = match old.tracking.split_once('/') {
        Some((c, k)) => (c.to_owned(), k.to_owned()),
        None => (old.tracking.clone(), String::new()),
    };
    Ok(ev::DonationCreated {
        donation_id: old.donation_id,
        created_at: old.created_at,
        amount: Some(ev::Money {
            cents: old.amount_cents,
            currency: "EUR".into(),
        }),
        interval_months: old.interval_months,
        payment_id: old.payment_id,
        payment_method: payment_method.to_proto(),
        donor: Some(ev::DonorPublic {
            kind: kind as i32,
            salutation: old.salutation,
            wants_newsletter: old.wants_newsletter,
            wants_receipt: old.wants_receipt,
        }),
        personal: old.personal,
        personal_sealed: old.personal_sealed,
        tracking: Some(ev::Tracking {
            campaign,
            keyword,
            impression_count: old.impression_count,
            banner_impression_count: old.banner_impression_count,
            contribution_tracking_id: 0,
        }),
        comment: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(cents: i64) -> Option<ev::Money> {
        Some(ev::Money {
            cents,
            currency: "CHF".into(),
        })
    }

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds,
            nanos: 123_456_789,
        })
    }

    fn sealed() -> Option<ev::Sealed> {
        Some(ev::Sealed {
            key_id: 7,
            key_version: 2,
            nonce: vec![1; 24],
            ciphertext: vec![2, 3, 4],
        })
    }

    /// An event of type `name` with every field set to something other than its default.
    fn sample(name: &str) -> DomainEvent {
        let personal = || {
            Some(ev::PersonalData {
                title: "Dr.".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                company_name: "Engines Ltd".into(),
                street: "Main 1".into(),
                postcode: "12345".into(),
                city: "Berlin".into(),
                country: "DE".into(),
                email: "ada@example.org".into(),
            })
        };
        let donor = || {
            Some(ev::DonorPublic {
                kind: ev::DonorKind::Company as i32,
                salutation: "Frau".into(),
                wants_newsletter: true,
                wants_receipt: true,
            })
        };
        let tracking = || {
            Some(ev::Tracking {
                campaign: "spring".into(),
                keyword: "banner".into(),
                impression_count: 3,
                banner_impression_count: 2,
                contribution_tracking_id: 99,
            })
        };
        let provider = || {
            Some(ev::ProviderData {
                transaction_id: "T".into(),
                payer_id: "P".into(),
                subscription_id: "S".into(),
                payer_status: "verified".into(),
                payment_status: "Completed".into(),
                session_id: "sess".into(),
                auth_code: "auth".into(),
            })
        };
        let comment = || {
            Some(ev::Comment {
                is_public: true,
                display_name: "A.".into(),
                public_text: "thanks".into(),
                private_text: Some(ev::CommentText {
                    text: "private".into(),
                }),
                private_text_sealed: sealed(),
            })
        };
        match name {
            "DonationCreated.v2" => ev::DonationCreated {
                donation_id: 1,
                created_at: at(1_700_000_000),
                amount: money(1337),
                interval_months: 3,
                payment_id: 2,
                payment_method: ev::PaymentMethod::Paypal as i32,
                donor: donor(),
                personal: personal(),
                personal_sealed: sealed(),
                tracking: tracking(),
                comment: comment(),
            }
            .into(),
            "DonorUpdated.v1" => ev::DonorUpdated {
                donor: donor(),
                personal: personal(),
                personal_sealed: sealed(),
            }
            .into(),
            "CommentAdded.v1" => ev::CommentAdded { comment: comment() }.into(),
            "CommentPublished.v1" => ev::CommentPublished {
                public_text: "now public".into(),
                display_name: "Ada".into(),
            }
            .into(),
            "CommentRetracted.v1" => ev::CommentRetracted {
                reason: "spam".into(),
            }
            .into(),
            "FollowUpDonationCreated.v1" => ev::FollowUpDonationCreated {
                donation_id: 3,
                parent_donation_id: 1,
                payment_id: 4,
                created_at: at(1_700_000_100),
                amount: money(500),
                interval_months: 1,
                payment_method: ev::PaymentMethod::Paypal as i32,
                donor: donor(),
                tracking: tracking(),
            }
            .into(),
            "PaymentInitiated.v1" => ev::PaymentInitiated {
                payment_id: 2,
                donation_id: 1,
                method: ev::PaymentMethod::DirectDebit as i32,
                amount: money(1337),
                interval_months: 12,
                bank: Some(ev::BankData {
                    iban: "DE02120300000000202051".into(),
                    bic: "BYLADEM1001".into(),
                    payment_reference_code: "XW-DAR-E99-T".into(),
                }),
                bank_sealed: sealed(),
                parent_payment_id: 5,
            }
            .into(),
            "PaymentBooked.v1" => ev::PaymentBooked {
                valuation_date: at(1_700_000_200),
                amount: money(1337),
                provider: provider(),
                provider_sealed: sealed(),
            }
            .into(),
            "PaymentFailed.v1" => ev::PaymentFailed {
                reason: "declined".into(),
            }
            .into(),
            "PaymentCancelled.v1" => ev::PaymentCancelled {
                reason: "donor".into(),
            }
            .into(),
            "PaymentRestored.v1" => ev::PaymentRestored {
                reason: "mistake".into(),
            }
            .into(),
            "FollowUpPaymentBooked.v1" => ev::FollowUpPaymentBooked {
                child_payment_id: 6,
                child_donation_id: 7,
                valuation_date: at(1_700_000_300),
                amount: money(250),
                provider: provider(),
                provider_sealed: sealed(),
            }
            .into(),
            "PaymentRefunded.v1" => ev::PaymentRefunded {
                amount: money(100),
                reason: "asked".into(),
            }
            .into(),
            "ChargebackReceived.v1" => ev::ChargebackReceived {
                amount: money(200),
                reason: "bank".into(),
            }
            .into(),
            "ModerationReasonsRaised.v1" => ev::ModerationReasonsRaised {
                reasons: vec![ev::ModerationReason {
                    identifier: ev::ModerationIdentifier::EmailBlocked as i32,
                    source: "email".into(),
                }],
            }
            .into(),
            "ModerationApproved.v1" => ev::ModerationApproved { as_anonymous: true }.into(),
            "ManuallyFlagged.v1" => ev::ManuallyFlagged { note: "odd".into() }.into(),
            "DonationCancelled.v1" => ev::DonationCancelled {
                reason: "donor".into(),
            }
            .into(),
            "DonationDeleted.v1" => ev::DonationDeleted {
                reason: "test".into(),
            }
            .into(),
            "DonationRestored.v1" => ev::DonationRestored {
                reason: "oops".into(),
            }
            .into(),
            "DonationExported.v1" => ev::DonationExported {
                batch_id: "b-1".into(),
                exported_at: at(1_700_000_400),
            }
            .into(),
            "PersonalDataScrubbed.v1" => ev::PersonalDataScrubbed {
                rule: ev::ScrubRule::StaleModeration as i32,
                scrubbed_at: at(1_700_000_500),
            }
            .into(),
            "ContributionTrackingRecorded.v1" => ev::ContributionTrackingRecorded {
                contribution_tracking_id: 8,
                allocation_token: "tok".into(),
                fields: Some(ev::ContributionTrackingFields {
                    amount: Some("13.37".into()),
                    usd_amount: Some("14.00".into()),
                    is_recurring: Some(false),
                    payment_method_id: Some(-3),
                    tracking_date: at(1_700_000_600),
                    screen_width: Some(1920),
                    app_install_id: Some("app".into()),
                    ..Default::default()
                }),
            }
            .into(),
            "ContributionLinked.v1" => ev::ContributionLinked { contribution_id: 9 }.into(),
            "MembershipApplied.v1" => ev::MembershipApplied {
                membership_id: 11,
                created_at: at(1_700_000_700),
                applicant_kind: ev::ApplicantKind::Company as i32,
                applicant: Some(ev::ApplicantData {
                    salutation: "Firma".into(),
                    title: "Dr.".into(),
                    first_name: "Ada".into(),
                    last_name: "Lovelace".into(),
                    company_name: "Engines Ltd".into(),
                    street: "Main 1".into(),
                    postcode: "12345".into(),
                    city: "Berlin".into(),
                    country: "DE".into(),
                    email: "ada@example.org".into(),
                    phone: "+49 30 1234".into(),
                    date_of_birth: "1815-12-10".into(),
                }),
                applicant_sealed: sealed(),
                membership_type: ev::MembershipType::Active as i32,
                fee: money(2500),
                interval_months: 3,
                payment_id: 12,
                payment_method: ev::PaymentMethod::DirectDebit as i32,
                bank: Some(ev::BankData {
                    iban: "DE02120300000000202051".into(),
                    bic: "BYLADEM1001".into(),
                    payment_reference_code: "XM-DAR-E99-T".into(),
                }),
                bank_sealed: sealed(),
                confirmed: true,
                tracking: Some(ev::MembershipTracking {
                    campaign: "spring".into(),
                    keyword: "banner".into(),
                }),
                incentives: vec!["tote_bag".into()],
                donation_receipt: Some(false),
            }
            .into(),
            "MembershipCancelled.v1" => ev::MembershipCancelled {
                reason: "moved".into(),
            }
            .into(),
            "MembershipRestored.v1" => ev::MembershipRestored {
                reason: "mistake".into(),
            }
            .into(),
            "MembershipExported.v1" => ev::MembershipExported {
                batch_id: "m-1".into(),
                exported_at: at(1_700_000_800),
            }
            .into(),
            "AddressChangeCreated.v1" => ev::AddressChangeCreated {
                address_change_id: 13,
                identifier: "0b7d2f3e-5c1a-4b8e-9f00-000000000001".into(),
                external_id_kind: ev::ExternalIdKind::Membership as i32,
                external_id: 11,
                address_type: ev::AddressType::Company as i32,
                created_at: at(1_700_000_900),
            }
            .into(),
            "AddressChanged.v1" => ev::AddressChanged {
                new_identifier: "0b7d2f3e-5c1a-4b8e-9f00-000000000002".into(),
                address_type: ev::AddressType::Person as i32,
                address: Some(ev::AddressData {
                    salutation: "Frau".into(),
                    title: "Dr.".into(),
                    first_name: "Ada".into(),
                    last_name: "Lovelace".into(),
                    company_name: "Engines Ltd".into(),
                    street: "Main 1".into(),
                    postcode: "12345".into(),
                    city: "Berlin".into(),
                    country: "DE".into(),
                }),
                address_sealed: sealed(),
                donation_receipt_opted_out: true,
                changed_at: at(1_700_001_000),
            }
            .into(),
            "DonationReceiptOptedOut.v1" => ev::DonationReceiptOptedOut {
                new_identifier: "0b7d2f3e-5c1a-4b8e-9f00-000000000003".into(),
                changed_at: at(1_700_001_100),
            }
            .into(),
            "AddressChangeTokenIssued.v1" => ev::AddressChangeTokenIssued {
                address_change_id: 13,
            }
            .into(),
            "AddressChangeExported.v1" => ev::AddressChangeExported {
                batch_id: "a-1".into(),
                exported_at: at(1_700_001_200),
                identifier: "0b7d2f3e-5c1a-4b8e-9f00-000000000002".into(),
            }
            .into(),
            "SubscriptionCreated.v1" => ev::SubscriptionCreated {
                subscription_id: 17,
                subscriber: Some(ev::SubscriberData {
                    email: "ada@example.org".into(),
                }),
                subscriber_sealed: sealed(),
                tracking: "spring/banner".into(),
                source: "banner".into(),
                created_at: at(1_700_001_300),
                confirmation_code: "00112233445566778899aabbccddeeff".into(),
            }
            .into(),
            "SubscriptionConfirmed.v1" => ev::SubscriptionConfirmed {
                confirmed_at: at(1_700_001_400),
            }
            .into(),
            "SubscriptionCodeIssued.v1" => ev::SubscriptionCodeIssued {
                subscription_id: 17,
            }
            .into(),
            "SubscriptionEmailUsed.v1" => ev::SubscriptionEmailUsed {
                subscription_id: 17,
                subscribed_at: at(1_700_001_300),
            }
            .into(),
            "SubscriptionExported.v1" => ev::SubscriptionExported {
                batch_id: "s-1".into(),
                exported_at: at(1_700_001_500),
            }
            .into(),
            other => panic!("no sample of {other}: add one for the new event type"),
        }
    }

    #[test]
    fn every_current_type_round_trips_with_every_field_set() {
        for name in DomainEvent::CURRENT_TYPES {
            let e = sample(name);
            assert_eq!(e.event_type(), *name);
            assert_ne!(
                DomainEvent::decode(name, &[]).unwrap(),
                e,
                "{name}: the sample is not all defaults"
            );
            let back = DomainEvent::decode(e.event_type(), &e.encode()).unwrap();
            assert_eq!(back, e, "{name}");
        }
    }

    #[test]
    fn type_names_are_unique_and_versioned() {
        let mut names: Vec<&str> = DomainEvent::CURRENT_TYPES.to_vec();
        names.extend(LEGACY_TYPES);
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate type name");
        for n in names {
            let (_, v) = n.rsplit_once(".v").expect("versioned");
            assert!(v.parse::<u32>().is_ok(), "{n}");
        }
    }

    #[test]
    fn unknown_type_is_an_error_naming_it() {
        let err = DomainEvent::decode("DonationVanished.v1", &[]).unwrap_err();
        assert!(err.to_string().contains("DonationVanished.v1"));
    }
}
