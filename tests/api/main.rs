//! The gRPC intake end to end: every call, its validation and the fuzzing harness, privacy
//! of what it stores, and the audit paths over what it wrote; and the KurrentDB port, driven
//! by the official Rust and Python clients and by the project's own protocol client.
//!
//! One test binary for the area (compiling and linking a binary per file cost CI minutes);
//! each file is a module of it, its tests named `file::test`.

#[path = "../support/mod.rs"]
mod support;
#[path = "../verify_support/mod.rs"]
mod verify_support;

mod api_address_changes;
mod api_calls;
mod api_memberships;
mod api_peering;
mod api_privacy;
mod api_subscriptions;
mod api_tracking;
mod api_validation;
mod audit_history;
mod auth_matrix;
mod export_audit;
mod fuzz;
mod kurrentdb_client;
mod kurrentdb_load;
mod kurrentdb_protocol;
mod kurrentdb_python;
mod reflection;
