//! `ledger sequence`: initialise, inspect and draw from the named sequence generators.
use clap::Subcommand;

use super::preflight::Needs;
use crate::config::StorageArgs;
use crate::intake::sequence_check::check_sequences;
use crate::sequence::{InitializeMode, SequenceName};

/// Sequence operations.
#[derive(Debug, Subcommand)]
pub enum SequenceCommand {
    /// Set a sequence so that the next id handed out is START + 1 (SmashPig's InitializeSequence).
    Init {
        /// `contribution-tracking`, `donation`, `payment`, `membership`, `address-change` or `subscription`.
        name: SequenceName,
        /// The last id considered handed out.
        start: u64,
        /// Allow moving the sequence backwards (this is how duplicate ids happen: be sure).
        #[arg(long)]
        force: bool,
    },
    /// Print the last id handed out.
    Current {
        /// `contribution-tracking`, `donation`, `payment`, `membership`, `address-change` or `subscription`.
        name: SequenceName,
    },
    /// Hand out ids and print them.
    Next {
        /// `contribution-tracking`, `donation`, `payment`, `membership`, `address-change` or `subscription`.
        name: SequenceName,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// Compare every sequence with the highest id in the event log; fails when one is behind
    /// (it would hand out ids already in use, e.g. after a Redis failover).
    Check,
}

/// What a sequence command uses: `init` and `next` may start the sequences of a new ledger;
/// `check` also reads the log.
pub fn needs(cmd: &SequenceCommand) -> Needs {
    let sequences = Needs {
        sequences: true,
        ..Needs::default()
    };
    match cmd {
        SequenceCommand::Init { .. } | SequenceCommand::Next { .. } => Needs {
            creates: true,
            ..sequences
        },
        SequenceCommand::Current { .. } => sequences,
        SequenceCommand::Check => Needs {
            event_log: true,
            ..sequences
        },
    }
}

/// Runs a sequence command.
pub async fn run(storage: &StorageArgs, cmd: SequenceCommand) -> anyhow::Result<()> {
    let seq = storage.open_sequences().await?;
    match cmd {
        SequenceCommand::Check => {
            let log = storage.open_event_log().await?;
            let checks = check_sequences(log.as_ref(), seq.as_ref()).await?;
            let mut behind = Vec::new();
            for c in &checks {
                let show = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
                let verdict = if c.is_ahead() { "ok" } else { "BEHIND" };
                println!(
                    "{}: sequence {} log {} {verdict}",
                    c.name,
                    show(c.current),
                    show(c.highest_in_log)
                );
                if !c.is_ahead() {
                    behind.push(c.name.as_str());
                }
            }
            if !behind.is_empty() {
                anyhow::bail!("sequences behind the event log: {}", behind.join(", "));
            }
        }
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
