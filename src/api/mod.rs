//! The gRPC intake: translation between the `ledger.api.v1` messages and the ledger's intake
//! commands, authentication, and error mapping.
pub mod auth;
