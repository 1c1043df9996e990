//! CiviShare peering (`docs/civishare.md`): linked ledgers share changes as signed JSON
//! messages. The log is the change detector: an outgoing projector queues one row per change
//! and peer (`outbox.rs`), a delivery worker sends them over HTTP with back-off (`deliver.rs`);
//! `POST /civishare/v1/messages` verifies, deduplicates and applies what peers send through
//! the intake (`receive.rs`, `inbox.rs`). `message.rs` is the wire format, `signing.rs` the
//! signing and loop-detection digests, `changes.rs` the mapping between ledger events and
//! changes, `peers.rs` nodes and peerings, `store.rs` the SQLite file that holds them all, and
//! `mirror.rs` copies the statuses of that file into the read model.

pub mod changes;
pub mod deliver;
pub mod inbox;
pub mod message;
pub mod mirror;
pub mod outbox;
pub mod peers;
pub mod receive;
pub mod signing;
pub mod store;

use crate::privacy::PrivacyError;
use crate::store::StoreError;

pub use message::{AttributeChange, Change, Envelope, Payload};
pub use peers::{NewPeering, Peering};
pub use store::CivishareStore;

/// The path of the endpoint that receives messages.
pub const MESSAGES_PATH: &str = "/civishare/v1/messages";

/// Errors of the CiviShare layer. The first six refuse a whole message.
#[derive(Debug, thiserror::Error)]
pub enum CivishareError {
    /// The body is not a message in the documented layout.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// No `payload_signature`.
    #[error("the message is not signed: `payload_signature` is missing or empty")]
    Unsigned,
    /// No peering with the sender.
    #[error("no peering with sender {0:?}")]
    UnknownSender(String),
    /// The signature does not verify under the peering's secret.
    #[error("the payload signature does not verify (the message was altered, or signed with another secret)")]
    BadSignature,
    /// `sent` is outside the clock window.
    #[error(
        "the message was sent at {sent}, more than {window_secs} s from this node's clock ({now})"
    )]
    Stale {
        /// The message's `sent`.
        sent: String,
        /// The receiver's time.
        now: String,
        /// The window.
        window_secs: u64,
    },
    /// The message id was seen before.
    #[error("message id {0:?} was already received")]
    Replayed(String),
    /// A command-line or configuration value breaks a rule.
    #[error("{field} {rule}")]
    Invalid {
        /// The flag or field.
        field: &'static str,
        /// The rule it breaks.
        rule: String,
    },
    /// The local node has no name yet.
    #[error("the local node has no name: run `ledger peer node --name <its base URL>` first")]
    NoLocalNode,
    /// The local node has peerings and another name was asked for.
    #[error(
        "cannot rename node {current:?} while it has {peerings} peering(s): its peers know it by \
         that name and its loop-detection stamps are made of it; remove the peerings first \
         (`ledger peer remove`), rename, and add them again on both sides"
    )]
    RenamePeered {
        /// Its name.
        current: String,
        /// How many peerings it has.
        peerings: i64,
    },
    /// No peering with that node.
    #[error("no peering with node {0:?}")]
    NoPeering(String),
    /// A peering with that node exists.
    #[error("a peering with node {0:?} exists; remove it first")]
    PeeringExists(String),
    /// The CiviShare database failed.
    #[error("CiviShare database error")]
    Database(#[from] sqlx::Error),
    /// Its schema could not be migrated.
    #[error("CiviShare database migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The key store failed, or a sealed secret does not open.
    #[error("key store")]
    Privacy(#[from] PrivacyError),
    /// The event log failed.
    #[error("event log")]
    Store(#[from] StoreError),
}

impl CivishareError {
    /// The short code of a refused message (`error` in the JSON answer, `reason` of the
    /// refusal counter), or `None` for a failure of this node.
    pub fn refusal_code(&self) -> Option<&'static str> {
        match self {
            Self::Malformed(_) => Some("malformed"),
            Self::Unsigned => Some("unsigned"),
            Self::UnknownSender(_) => Some("unknown_sender"),
            Self::BadSignature => Some("bad_signature"),
            Self::Stale { .. } => Some("stale"),
            Self::Replayed(_) => Some("replayed"),
            Self::Invalid { .. }
            | Self::NoLocalNode
            | Self::RenamePeered { .. }
            | Self::NoPeering(_)
            | Self::PeeringExists(_)
            | Self::Database(_)
            | Self::Migrate(_)
            | Self::Privacy(_)
            | Self::Store(_) => None,
        }
    }
}
