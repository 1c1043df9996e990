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

/// The KurrentDB client protocol (v1), server side, nested as its protobuf packages.
pub mod kurrentdb {
    /// `event_store.client` and its services.
    pub mod event_store {
        /// Shared types: UUIDs, stream identifiers, positions, error details.
        pub mod client {
            include!(concat!(env!("OUT_DIR"), "/event_store.client.rs"));
            /// `event_store.client.streams.Streams`.
            pub mod streams {
                include!(concat!(env!("OUT_DIR"), "/event_store.client.streams.rs"));
            }
            /// `event_store.client.gossip.Gossip`.
            pub mod gossip {
                include!(concat!(env!("OUT_DIR"), "/event_store.client.gossip.rs"));
            }
            /// `event_store.client.server_features.ServerFeatures`.
            pub mod server_features {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/event_store.client.server_features.rs"
                ));
            }
            /// `event_store.client.persistent_subscriptions.PersistentSubscriptions` (`List`).
            pub mod persistent_subscriptions {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/event_store.client.persistent_subscriptions.rs"
                ));
            }
        }
    }
    /// KurrentDB's protocol v2, as far as the ledger serves and calls it: the multi-stream
    /// `AppendSession` and its error details.
    pub mod kurrentdb {
        /// `kurrentdb.protocol`.
        pub mod protocol {
            /// `kurrentdb.protocol.v2`.
            pub mod v2 {
                /// `kurrentdb.protocol.v2.streams.StreamsService`.
                pub mod streams {
                    include!(concat!(
                        env!("OUT_DIR"),
                        "/kurrentdb.protocol.v2.streams.rs"
                    ));
                    /// The details of its refusals.
                    pub mod errors {
                        include!(concat!(
                            env!("OUT_DIR"),
                            "/kurrentdb.protocol.v2.streams.errors.rs"
                        ));
                    }
                }
            }
        }
    }
    /// `google.rpc.Status`, in KurrentDB's one-`Any` form.
    pub mod google {
        /// The status message.
        pub mod rpc {
            include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        }
    }
}
