//! Generated protobuf and gRPC code (prost, tonic). Nothing else in the crate is generated.
#![allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]

/// Event payloads, as stored in the log.
pub mod events {
    include!(concat!(env!("OUT_DIR"), "/ledger.events.v1.rs"));
}

/// The encoded file descriptor set of every schema, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ledger_descriptor.bin"));
