//! The `ledger` command line: one subcommand per operator task. Each subcommand lives in its
//! own file and calls into the library; `main` only parses and dispatches.
use clap::{Parser, Subcommand};

use crate::config::StorageArgs;

pub mod sequence;
pub mod serve;

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
    /// Operate the named sequence generators.
    #[command(subcommand)]
    Sequence(sequence::SequenceCommand),
    /// Run the gRPC intake (and `/metrics`) until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sequence(cmd) => sequence::run(&cli.storage, cmd).await,
        Command::Serve(args) => serve::run(&cli.storage, args).await,
    }
}
