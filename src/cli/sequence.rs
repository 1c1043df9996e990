//! `ledger sequence`: initialise, inspect and draw from the named sequence generators.
use clap::Subcommand;

use crate::config::StorageArgs;
use crate::sequence::{InitializeMode, SequenceName};

/// Sequence operations.
#[derive(Debug, Subcommand)]
pub enum SequenceCommand {
    /// Set a sequence so that the next id handed out is START + 1 (SmashPig's InitializeSequence).
    Init {
        /// `contribution-tracking`, `donation` or `payment`.
        name: SequenceName,
        /// The last id considered handed out.
        start: u64,
        /// Allow moving the sequence backwards (this is how duplicate ids happen: be sure).
        #[arg(long)]
        force: bool,
    },
    /// Print the last id handed out.
    Current {
        /// `contribution-tracking`, `donation` or `payment`.
        name: SequenceName,
    },
    /// Hand out ids and print them.
    Next {
        /// `contribution-tracking`, `donation` or `payment`.
        name: SequenceName,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
}

/// Runs a sequence command.
pub async fn run(storage: &StorageArgs, cmd: SequenceCommand) -> anyhow::Result<()> {
    let seq = storage.open_sequences().await?;
    match cmd {
        SequenceCommand::Init { name, start, force } => {
            let mode = if force {
                InitializeMode::AllowBackwards
            } else {
                InitializeMode::ForwardOnly
            };
            seq.initialize(name, start, mode).await?;
            println!("{name}: next id is {}", start + 1);
        }
        SequenceCommand::Current { name } => match seq.current(name).await? {
            Some(v) => println!("{v}"),
            None => println!("{name}: nothing handed out yet"),
        },
        SequenceCommand::Next { name, count } => {
            let block = seq.next_block(name, count).await?;
            println!("{}..={}", block.start(), block.end());
        }
    }
    Ok(())
}
