//! The storage layer: the event-log conformance suite, crash durability, the key store and
//! the sequence generators.
//!
//! One test binary for the area (compiling and linking a binary per file cost CI minutes);
//! each file is a module of it, its tests named `file::test`.

#[macro_use]
#[path = "../conformance/mod.rs"]
mod conformance;
#[path = "../support/mod.rs"]
mod support;

mod crash_durability;
mod event_log_kurrent;
mod event_log_sqlite;
mod key_store;
mod sequence_generators;
