//! The domain: event types, stream names, pure folds and rules. No I/O.
pub mod codec;
pub mod personal;
pub mod streams;

pub use codec::{CodecError, DomainEvent};
