//! The `ledger` command line: one subcommand per operator task. Each subcommand lives in its
//! own file and calls into the library; `main` only parses and dispatches.
use clap::{Parser, Subcommand};

use crate::config::StorageArgs;

pub mod audit;
pub mod bench;
pub mod export;
pub mod jobs;
pub mod project;
pub mod scrub;
pub mod sequence;
pub mod serve;
pub mod verify;

/// An event-sourced fundraising ledger.
#[derive(Debug, Parser)]
#[command(name = "ledger", version, about)]
pub struct Cli {
    /// Where the data lives.
    #[command(flatten)]
    pub storage: StorageArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The full timeline of a donation, payment or contribution-tracking record.
    History(audit::HistoryArgs),
    /// A donation as it was at a time or log position.
    State(audit::StateArgs),
    /// Run the projectors: follow the log into the read models (`--once`: catch up and exit).
    Project(project::ProjectArgs),
    /// Rebuild the read models from position 0 into new tables, then switch to them.
    Rebuild(project::RebuildArgs),
    /// Measure the hot paths with a realistic workload, in scratch files.
    Bench(bench::BenchArgs),
    /// Scrub personal data the policy no longer allows to keep (`--dry-run` to list only).
    Scrub(scrub::ScrubArgs),
    /// Rebuild the read model into a scratch database and compare it with the live one,
    /// table by table; exits non-zero naming the tables and rows that differ.
    Verify(verify::VerifyArgs),
    /// The change log of a period for auditors' tools, one line per event (CSV or JSON lines).
    ExportAudit(export::ExportAuditArgs),
    /// Operate the named sequence generators.
    #[command(subcommand)]
    Sequence(sequence::SequenceCommand),
    /// Run the gRPC intake (and `/metrics`) until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::History(args) => audit::history(&cli.storage, args).await,
        Command::State(args) => audit::state(&cli.storage, args).await,
        Command::Project(args) => project::project(&cli.storage, args).await,
        Command::Rebuild(args) => project::rebuild(&cli.storage, args).await,
        Command::Bench(args) => bench::run(&cli.storage, args).await,
        Command::Scrub(args) => scrub::run(&cli.storage, args).await,
        Command::Verify(args) => verify::run(&cli.storage, args).await,
        Command::ExportAudit(args) => export::run(&cli.storage, args).await,
        Command::Sequence(cmd) => sequence::run(&cli.storage, cmd).await,
        Command::Serve(args) => serve::run(&cli.storage, args).await,
    }
}
