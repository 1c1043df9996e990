//! The fundraising ledger: an event-sourced donation ledger with gRPC intake, separate event
//! streams per concern, and relational read models.
pub mod api;
pub mod audit;
pub mod bench;
pub mod civishare;
pub mod cli;
pub mod config;
pub mod console;
pub mod domain;
pub mod intake;
pub mod jobs;
pub mod kurrentdb;
pub mod legacy;
pub mod metrics;
pub mod privacy;
pub mod projection;
pub mod proto;
pub mod repository;
pub mod sequence;
pub mod store;
pub mod telemetry;
pub mod workload;
