//! Moving in: the legacy `spenden` history (MariaDB) into the ledger.
//!
//! * [`source`] reads the legacy tables in batches (keyset pagination by id);
//! * [`php`] reads and writes the `data` blob (base64 of a serialized PHP array);
//! * [`interpret`] turns one row into the events that reproduce its state, or a reason;
//! * [`import`] seals, appends batch by batch with its record, resumes, reports;
//! * [`report`] the notes of skipped and rule-imported rows, by class;
//! * [`check`] compares the `legacy_spenden` view with the source;
//! * [`fixture`] a legacy database in every state for tests and benchmarks.
//!
//! The progress bar is the commands' shared one (`crate::cli::progress`).
//!
//! Memberships (the `request` table) are not imported: that context does not exist yet; the
//! report counts their rows.

pub mod check;
pub mod fixture;
pub mod import;
pub mod interpret;
pub mod php;
pub mod report;
pub mod source;
