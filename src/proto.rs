//! Generated protobuf and gRPC code (prost, tonic). Nothing else in the crate is generated.
#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

/// Modules nested as the protobuf packages, so generated cross-package paths resolve.
pub mod ledger {
    /// Event payloads.
    pub mod events {
        /// Version 1 of the event schemas.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/ledger.events.v1.rs"));
        }
    }
    /// The gRPC intake.
    pub mod api {
        /// Version 1 of the API.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/ledger.api.v1.rs"));
        }
    }
}

/// The gRPC intake service.
pub use ledger::api::v1 as api;
/// Event payloads, as stored in the log.
pub use ledger::events::v1 as events;

/// The encoded file descriptor set of every schema, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ledger_descriptor.bin"));
