//! The domain: event types, stream names, pure folds and rules. No I/O.
pub mod admission;
pub mod codec;
pub mod commands;
pub mod contribution_tracking;
pub mod deletion;
pub mod donation;
pub mod error;
pub mod export;
#[cfg(test)]
mod fixtures;
pub mod moderation;
pub mod payment;
pub mod personal;
pub mod policy;
pub mod scrub;
pub mod streams;
pub mod types;
pub mod validation;
pub mod view;

pub use codec::{CodecError, DomainEvent};
pub use error::DomainError;
pub use types::{Money, PaymentMethod, StreamEvent};
pub use view::DonationView;
