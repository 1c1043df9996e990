//! `ledger import`: moving in from another system.
//!
//! * `ledger import legacy --from mysql://…` imports the legacy `spenden` history and then the
//!   membership applications of `request` into the log the other commands use
//!   (`--data-dir` / `--event-log-url`), resumably, and writes its report; `--check` compares
//!   the read model's `legacy_spenden` and `legacy_request` views with the source instead.
//! * `ledger import legacy-fixture --to mysql://… --rows N --seed S` fills an empty database
//!   with legacy tables in every state, for tests and benchmarks.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use super::preflight::{Needs, ReadModelUse};
use crate::config::StorageArgs;
use crate::legacy::check::{check, check_requests};
use crate::legacy::fixture;
use crate::legacy::import::{ImportOptions, Importer, DEFAULT_BATCH};
use crate::legacy::source::Source;
use crate::projection::ReadModel;

/// What to import.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the legacy `spenden` history and the membership applications of `request`
    /// (MariaDB), or with `--check` compare the `legacy_spenden` and `legacy_request` views
    /// with them.
    Legacy(LegacyArgs),
    /// Create the legacy tables in an empty MariaDB database and fill them with fixture rows
    /// in every state (tests and benchmarks).
    LegacyFixture(FixtureArgs),
}

/// `ledger import legacy`.
#[derive(Debug, Args)]
pub struct LegacyArgs {
    /// The legacy database: `mysql://user:password@host:3306/database` (or `mariadb://…`).
    #[arg(long, env = "LEDGER_LEGACY_URL", hide_env_values = true)]
    pub from: SecretString,
    /// Compare the read model's `legacy_spenden` and `legacy_request` views with the source
    /// instead of importing (run `ledger project --once` after the import first); exits
    /// non-zero on differences.
    #[arg(long, env = "LEDGER_LEGACY_CHECK", default_value_t = false)]
    pub check: bool,
    /// Source rows per batch (one atomic append each).
    #[arg(long, env = "LEDGER_LEGACY_BATCH_SIZE", default_value_t = DEFAULT_BATCH)]
    pub batch_size: usize,
    /// Where to write the report of skipped and rule-imported rows (CSV). Default:
    /// `legacy-import-report.csv` in the data directory.
    #[arg(long, env = "LEDGER_LEGACY_REPORT")]
    pub report: Option<PathBuf>,
    /// No progress line (it is only shown when stderr is a terminal anyway).
    #[arg(long, env = "LEDGER_LEGACY_QUIET", default_value_t = false)]
    pub quiet: bool,
    /// Leave the membership applications (`request`) alone: import or check `spenden` only.
    #[arg(long, env = "LEDGER_LEGACY_SKIP_MEMBERSHIPS", default_value_t = false)]
    pub skip_memberships: bool,
}

/// `ledger import legacy-fixture`.
#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// An empty MariaDB database: `mysql://root@127.0.0.1:3306/legacy_fixture`.
    #[arg(long, env = "LEDGER_LEGACY_FIXTURE_URL", hide_env_values = true)]
    pub to: SecretString,
    /// Donations to write.
    #[arg(long, env = "LEDGER_LEGACY_FIXTURE_ROWS", default_value_t = 1000)]
    pub rows: u64,
    /// Membership applications to write (at least one per membership state). Default: one per
    /// state plus one per 1009 donations.
    #[arg(long, env = "LEDGER_LEGACY_FIXTURE_MEMBERSHIPS")]
    pub memberships: Option<u64>,
    /// Random seed: the same seed and size give the same rows.
    #[arg(long, env = "LEDGER_LEGACY_FIXTURE_SEED", default_value_t = 1)]
    pub seed: u64,
}

/// What an import command uses.
pub fn needs(cmd: &ImportCommand) -> Needs {
    match cmd {
        ImportCommand::Legacy(args) if args.check => Needs {
            read_model: ReadModelUse::Required,
            ..Needs::default()
        },
        ImportCommand::Legacy(_) => Needs {
            event_log: true,
            key_store: true,
            sequences: true,
            creates: true,
            writes_log: true,
            ..Needs::default()
        },
        ImportCommand::LegacyFixture(_) => Needs::default(),
    }
}

/// Runs an import command.
pub async fn run(storage: &StorageArgs, cmd: ImportCommand) -> anyhow::Result<()> {
    match cmd {
        ImportCommand::Legacy(args) if args.check => run_check(storage, args).await,
        ImportCommand::Legacy(args) => run_import(storage, args).await,
        ImportCommand::LegacyFixture(args) => {
            let source = Source::connect(args.to.expose_secret())
                .await
                .context("--to")?;
            let started = Instant::now();
            let summary =
                fixture::generate_with(source.pool(), args.rows, args.memberships, args.seed)
                    .await?;
            println!(
                "legacy fixture: {} donations (ids 1 to {}), {} payments without a donation, \
                 {} memberships in {} ({:.1} s)",
                group(summary.rows),
                summary.max_id,
                summary.orphan_payments.len(),
                summary.memberships,
                source.location(),
                started.elapsed().as_secs_f64()
            );
            for (scenario, n) in summary.counts() {
                println!("  {scenario:?}: {n}");
            }
            for (scenario, n) in summary.membership_counts() {
                println!("  membership {scenario:?}: {n}");
            }
            Ok(())
        }
    }
}

async fn run_import(storage: &StorageArgs, args: LegacyArgs) -> anyhow::Result<()> {
    let source = Source::connect(args.from.expose_secret())
        .await
        .context("--from")?;
    let importer = Importer {
        log: storage.open_event_log().await?,
        vault: storage.open_vault().await?,
        sequences: storage.open_sequences().await?,
        source,
    };
    let started = Instant::now();
    let report = importer
        .run(&ImportOptions {
            batch: args.batch_size,
            progress: !args.quiet,
            memberships: !args.skip_memberships,
        })
        .await?;
    let path = match args.report {
        Some(p) => p,
        None => {
            storage.ensure_data_dir()?;
            storage.data_dir.join("legacy-import-report.csv")
        }
    };
    report
        .write_csv(&path)
        .with_context(|| format!("writing the report {}", path.display()))?;
    print!("{}", report.summary());
    println!(
        "report: {} ({} rows noted); this run: {:.1} s",
        path.display(),
        report.notes.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run_check(storage: &StorageArgs, args: LegacyArgs) -> anyhow::Result<()> {
    let source = Source::connect(args.from.expose_secret())
        .await
        .context("--from")?;
    let read_model = ReadModel::connect(&storage.read_model_url()?).await?;
    let report = check(&source, &read_model, args.batch_size).await?;
    print!("{}", report.summary());
    let mut n = report.difference_count();
    if !args.skip_memberships && source.has_table("request").await? {
        let requests = check_requests(&source, &read_model, args.batch_size).await?;
        print!("{}", requests.summary());
        n += requests.difference_count();
    }
    if n > 0 {
        anyhow::bail!(
            "{n} differences between the legacy tables and the ledger's legacy_spenden and \
             legacy_request views"
        );
    }
    Ok(())
}

/// `1234567` → `1,234,567`.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
