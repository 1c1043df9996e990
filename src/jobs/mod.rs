//! The long-running jobs of `ledger serve`, as library code: each is a value built from the
//! stores it needs and run with `run_until_stopped(shutdown)`, ending when the token is
//! cancelled. `cli::jobs` only reads the flags and spawns them.
//!
//! In the layering of `DESIGN.md` this sits above `projection`, `audit` and `privacy` (it
//! drives them) and below `api` and `cli`.
//!
//! * [`projector::LiveProjector`] — the live projector, surviving its database being away at
//!   start-up or later, and its metrics; [`projector::ProjectorReady`] hands the running
//!   projector to the jobs that need its read model.
//! * [`lease`] — which of several `serve` processes sharing a log and a read model runs each
//!   singleton job (a lock in the read-model database).
//! * [`scrub::Scrubber`] — one scrub run (also used by `ledger scrub`).
//! * [`scrub_schedule::ScrubSchedule`] and [`scrub_schedule::ScrubStatusRefresh`] — the
//!   scheduled scrub and the refresh of the scrub-eligible gauges.

pub mod lease;
pub mod projector;
pub mod scrub;
pub mod scrub_schedule;
