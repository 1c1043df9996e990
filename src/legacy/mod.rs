//! Moving in: the legacy `spenden` history and the membership applications of `request`
//! (MariaDB) into the ledger.
//!
//! * [`source`] reads the legacy tables in batches (keyset pagination by id);
//! * [`php`] reads and writes the `data` blob (base64 of a serialized PHP array);
//! * [`interpret`] turns one `spenden` row into the events that reproduce its state, or a
//!   reason;
//! * [`request`] does the same for one `request` row: the membership context's events
//!   (application with the applicant sealed as at intake, moderation with its reasons,
//!   cancellation and restoration, export, scrub);
//! * [`import`] seals, appends batch by batch with its record (one import stream per table:
//!   `import-spenden`, `import-request`), resumes, reports;
//! * [`report`] the notes of skipped and rule-imported rows, by class;
//! * [`check`] compares the `legacy_spenden` and `legacy_request` views with the source;
//! * [`fixture`] a legacy database in every state for tests and benchmarks.
//!
//! The progress bar is the commands' shared one (`crate::cli::progress`).
//!
//! Not imported: address changes and subscriptions (their tables are not read), and a
//! membership's incentives.

pub mod check;
pub mod fixture;
pub mod import;
pub mod interpret;
pub mod php;
pub mod report;
pub mod request;
pub mod source;
