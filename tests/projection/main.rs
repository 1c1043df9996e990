//! The projector: read-model rows per event, resilience (outages, kills, aborted batches),
//! rebuild and verify, the read-model docs' queries, on SQLite, PostgreSQL and MariaDB.
//!
//! One test binary for the area (compiling and linking a binary per file cost CI minutes);
//! each file is a module of it, its tests named `file::test`.

#[macro_use]
#[path = "../projection_support/mod.rs"]
mod projection_support;
#[path = "../support/mod.rs"]
mod support;
#[path = "../verify_support/mod.rs"]
mod verify_support;

mod address_change_change_log;
mod address_change_rows;
mod bench_raw_insert;
mod civishare_status_rows;
mod fold_agreement;
mod membership_change_log;
mod membership_rows;
mod membership_streams;
mod projection_cli;
mod projection_resilience;
mod projection_rows;
mod read_model_docs;
mod row_cache;
mod schema_evolution;
mod subscription_rows;
mod verify_compare;
mod verify_mariadb;
mod verify_postgres;
mod verify_sqlite;
