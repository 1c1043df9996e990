//! The domain: event types, stream names, pure folds and rules. No I/O.

/// Gives an enum its stable codes from one table: `as_str` (the code read models, APIs and
/// logs spell) and `FromStr` (its inverse, failing with [`types::UnknownCode`]).
macro_rules! codes {
    ($ty:ty, $what:literal, { $($variant:ident => $code:literal),+ $(,)? }) => {
        impl $ty {
            /// The stable code, as read models and APIs spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::domain::types::UnknownCode;

            fn from_str(code: &str) -> Result<Self, Self::Err> {
                match code {
                    $($code => Ok(Self::$variant),)+
                    _ => Err($crate::domain::types::UnknownCode::new($what, code)),
                }
            }
        }
    };
}

pub mod address_change;
pub mod admission;
pub mod codec;
pub mod commands;
pub mod contribution_tracking;
pub mod deletion;
pub mod donation;
pub mod error;
pub mod export;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod membership;
pub mod moderation;
pub mod payment;
pub mod personal;
pub mod policy;
pub mod scrub;
pub mod streams;
pub mod subscription;
pub mod types;
pub mod validation;
pub mod view;

pub use codec::{CodecError, DomainEvent};
pub use error::DomainError;
pub use types::{Money, PaymentMethod, StreamEvent};
pub use view::DonationView;

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::str::FromStr;

    use super::*;

    fn round_trip<T: Copy + PartialEq + Debug + FromStr>(all: &[T], code: fn(T) -> &'static str)
    where
        T::Err: Debug,
    {
        for v in all {
            assert_eq!(code(*v).parse::<T>().unwrap(), *v);
        }
        assert!("no such code".parse::<T>().is_err());
    }

    #[test]
    fn every_code_parses_back_to_its_value() {
        use donation::DonorKind as K;
        use moderation::ModerationIdentifier as I;
        use scrub::ScrubRule as R;
        round_trip(&PaymentMethod::ALL, PaymentMethod::as_str);
        round_trip(&streams::Category::ALL, streams::Category::as_str);
        round_trip(
            &[K::Person, K::Company, K::EmailOnly, K::Anonymous],
            K::as_str,
        );
        round_trip(
            &[
                I::AmountTooHigh,
                I::AddressContentViolation,
                I::CommentContentViolation,
                I::ManuallyFlaggedByAdmin,
                I::EmailBlocked,
                I::MembershipFeeTooHigh,
            ],
            I::as_str,
        );
        round_trip(
            &[
                R::Exported,
                R::CancelledOrDeleted,
                R::Abandoned,
                R::StaleModeration,
                R::BeforeImport,
                R::AfterGracePeriod,
                R::ForcedRemoval,
            ],
            R::as_str,
        );
        use payment::PaymentStatus as P;
        round_trip(
            &[
                P::Pending,
                P::Booked,
                P::Failed,
                P::Cancelled,
                P::Refunded,
                P::ChargedBack,
            ],
            P::as_str,
        );
        use deletion::DeletionState as D;
        round_trip(
            &[D::Active, D::CancelledByDonor, D::DeletedByAdmin],
            D::as_str,
        );
        use moderation::ModerationStatus as M;
        round_trip(&[M::None, M::Open, M::Approved], M::as_str);
        assert_eq!(K::EmailOnly.as_str(), "email_only");
        assert_eq!(
            PaymentMethod::from_code("MBK"),
            Some(PaymentMethod::CreditCard)
        );
    }
}
