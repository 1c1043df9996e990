//! Access to the personal-data units inside events, so the privacy layer can seal and unseal
//! them without knowing each event's shape.
use crate::proto::events as ev;

use super::DomainEvent;

/// A personal-data unit of an event: its clear form (in memory only) and its sealed form (in
/// the log).
pub enum UnitMut<'a> {
    /// Names, address, email.
    Personal(&'a mut Option<ev::PersonalData>, &'a mut Option<ev::Sealed>),
    /// IBAN, BIC, payment reference code.
    Bank(&'a mut Option<ev::BankData>, &'a mut Option<ev::Sealed>),
    /// Provider payer and transaction identifiers.
    Provider(&'a mut Option<ev::ProviderData>, &'a mut Option<ev::Sealed>),
    /// A private comment's text.
    Comment(&'a mut Option<ev::CommentText>, &'a mut Option<ev::Sealed>),
    /// A membership applicant's name, address, email, phone and date of birth.
    Applicant(
        &'a mut Option<ev::ApplicantData>,
        &'a mut Option<ev::Sealed>,
    ),
    /// An address change's new address.
    Address(&'a mut Option<ev::AddressData>, &'a mut Option<ev::Sealed>),
    /// A subscriber's e-mail address.
    Subscriber(
        &'a mut Option<ev::SubscriberData>,
        &'a mut Option<ev::Sealed>,
    ),
}

impl UnitMut<'_> {
    /// A stable label, bound into the ciphertext so a unit cannot be swapped for another.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Personal(..) => "PersonalData",
            Self::Bank(..) => "BankData",
            Self::Provider(..) => "ProviderData",
            Self::Comment(..) => "CommentText",
            Self::Applicant(..) => "ApplicantData",
            Self::Address(..) => "AddressData",
            Self::Subscriber(..) => "SubscriberData",
        }
    }
}

fn comment_units(c: &mut Option<ev::Comment>) -> Vec<UnitMut<'_>> {
    match c {
        Some(c) => vec![UnitMut::Comment(
            &mut c.private_text,
            &mut c.private_text_sealed,
        )],
        None => vec![],
    }
}

impl DomainEvent {
    /// Every personal-data unit of this event.
    pub fn personal_units_mut(&mut self) -> Vec<UnitMut<'_>> {
        match self {
            Self::DonationCreated(e) => {
                let mut units = vec![UnitMut::Personal(&mut e.personal, &mut e.personal_sealed)];
                units.extend(comment_units(&mut e.comment));
                units
            }
            Self::DonorUpdated(e) => {
                vec![UnitMut::Personal(&mut e.personal, &mut e.personal_sealed)]
            }
            Self::CommentAdded(e) => comment_units(&mut e.comment),
            Self::PaymentInitiated(e) => vec![UnitMut::Bank(&mut e.bank, &mut e.bank_sealed)],
            Self::PaymentBooked(e) => {
                vec![UnitMut::Provider(&mut e.provider, &mut e.provider_sealed)]
            }
            Self::FollowUpPaymentBooked(e) => {
                vec![UnitMut::Provider(&mut e.provider, &mut e.provider_sealed)]
            }
            Self::MembershipApplied(e) => vec![
                UnitMut::Applicant(&mut e.applicant, &mut e.applicant_sealed),
                UnitMut::Bank(&mut e.bank, &mut e.bank_sealed),
            ],
            Self::AddressChanged(e) => {
                vec![UnitMut::Address(&mut e.address, &mut e.address_sealed)]
            }
            Self::SubscriptionCreated(e) => {
                vec![UnitMut::Subscriber(
                    &mut e.subscriber,
                    &mut e.subscriber_sealed,
                )]
            }
            _ => vec![],
        }
    }

    /// Whether any personal unit is present in clear.
    pub fn has_clear_personal_data(&mut self) -> bool {
        self.personal_units_mut().iter().any(|u| match u {
            UnitMut::Personal(c, _) => c.is_some(),
            UnitMut::Bank(c, _) => c.is_some(),
            UnitMut::Provider(c, _) => c.is_some(),
            UnitMut::Comment(c, _) => c.is_some(),
            UnitMut::Applicant(c, _) => c.is_some(),
            UnitMut::Address(c, _) => c.is_some(),
            UnitMut::Subscriber(c, _) => c.is_some(),
        })
    }
}
