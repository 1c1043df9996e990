//! The `ledger` binary: serve, bench, sequence check, the scrub policy and schedule, serve
//! riding out a read-model outage, `/metrics` and health endpoints checked against the CLI,
//! start-up failures that name the flag, the legacy import, the example clients and the status
//! console in Chromium, and CiviShare peering between real processes.
//!
//! One test binary for the area (compiling and linking a binary per file cost CI minutes);
//! each file is a module of it, its tests named `file::test`.

#[path = "../support/mod.rs"]
mod support;

mod address_change_scrub;
mod civishare;
mod cli_bench;
mod cli_sequence_check;
mod cli_serve;
mod console_browser;
mod example_clients;
mod kurrentdb_kills;
mod legacy_import;
mod membership_scrub;
mod migrate;
mod scrub_policy;
mod scrub_schedule;
mod serve_metrics;
mod serve_on_kurrentdb;
mod serve_read_model_outage;
mod start_up_failures;
mod subscription_scrub;
