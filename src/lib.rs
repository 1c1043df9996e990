//! The fundraising ledger: an event-sourced donation ledger with gRPC intake, separate event
//! streams per concern, and relational read models.
pub mod cli_project;
pub mod domain;
pub mod projection;
pub mod proto;
pub mod store;
