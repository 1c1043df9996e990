//! The `ledger` command line: one subcommand per operator task. Each subcommand lives in its
//! own file and calls into the library; `main` only parses and dispatches. Before a command
//! runs, the storage flags it uses are checked (`preflight.rs`) and, for a command that writes
//! the embedded log, its directory is locked (`lock.rs`).
use clap::{Parser, Subcommand};

use crate::config::StorageArgs;
use preflight::{Needs, ReadModelUse};

pub mod audit;
pub mod bench;
pub mod export;
pub mod import;
pub mod jobs;
pub mod lock;
pub mod migrate;
pub mod peer;
pub mod preflight;
pub mod progress;
pub mod project;
pub mod scrub;
pub mod sequence;
pub mod serve;
pub mod storage_url;
pub mod time;
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
    /// Apply the schema migrations of the event log, key store and read model
    /// (`--list`: show each one, applied or pending, and change nothing).
    Migrate(migrate::MigrateArgs),
    /// Operate the named sequence generators.
    #[command(subcommand)]
    Sequence(sequence::SequenceCommand),
    /// Run the gRPC intake (and `/metrics`) until SIGINT or SIGTERM.
    Serve(Box<serve::ServeArgs>),
    /// CiviShare peering: the local node and the linked ledgers changes are shared with.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// Move in from another system: `import legacy --from mysql://…` (the legacy `spenden`
    /// history), `--check` to compare after projecting.
    #[command(subcommand)]
    Import(import::ImportCommand),
}

impl Command {
    /// What the command uses: the stores its start-up checks cover, whether it may create a
    /// ledger, and whether it appends to the log (and so holds the data directory's lock).
    pub fn needs(&self) -> Needs {
        let reads_log = Needs {
            event_log: true,
            key_store: true,
            ..Needs::default()
        };
        let projects = Needs {
            read_model: ReadModelUse::Required,
            ..reads_log
        };
        match self {
            Command::History(_) | Command::State(_) | Command::ExportAudit(_) => reads_log,
            Command::Project(_) | Command::Rebuild(_) | Command::Verify(_) => projects,
            Command::Scrub(args) => Needs {
                writes_log: args.action.is_none() && !args.dry_run,
                ..projects
            },
            Command::Bench(_) => Needs::default(),
            Command::Migrate(args) if args.list => projects,
            // Migrating may create a new ledger's stores, and changes the log's schema: not
            // while a `serve` holds the log.
            Command::Migrate(_) => Needs {
                creates: true,
                writes_log: true,
                ..projects
            },
            Command::Sequence(cmd) => sequence::needs(cmd),
            Command::Import(cmd) => import::needs(cmd),
            Command::Peer(cmd) => peer::needs(cmd),
            Command::Serve(args) => Needs {
                event_log: true,
                key_store: true,
                sequences: true,
                read_model: if args.jobs.projectors {
                    ReadModelUse::Background
                } else {
                    ReadModelUse::Unused
                },
                creates: true,
                writes_log: true,
                data_dir: args.tokens_file.is_none(),
            },
        }
    }
}

/// Runs the parsed command line: its start-up checks, then the command (holding the lock the
/// checks took until it ends).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Serve(args) = &cli.command {
        args.check()?;
    }
    let _checked = preflight::check(&cli.storage, cli.command.needs()).await?;
    match cli.command {
        Command::History(args) => audit::history(&cli.storage, args).await,
        Command::State(args) => audit::state(&cli.storage, args).await,
        Command::Project(args) => project::project(&cli.storage, args).await,
        Command::Rebuild(args) => project::rebuild(&cli.storage, args).await,
        Command::Bench(args) => bench::run(&cli.storage, args).await,
        Command::Scrub(args) => scrub::run(&cli.storage, args).await,
        Command::Verify(args) => verify::run(&cli.storage, args).await,
        Command::ExportAudit(args) => export::run(&cli.storage, args).await,
        Command::Migrate(args) => migrate::run(&cli.storage, args).await,
        Command::Sequence(cmd) => sequence::run(&cli.storage, cmd).await,
        Command::Serve(args) => serve::run(&cli.storage, *args).await,
        Command::Import(cmd) => import::run(&cli.storage, cmd).await,
        Command::Peer(cmd) => peer::run(&cli.storage, cmd).await,
    }
}
