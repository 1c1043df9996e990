//! `ledger bench`: the workload through every hot path, in one run, printed as a table or JSON.
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use crate::bench::{self, BenchOptions, BenchReport, Part};

/// `ledger bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Donations in the workload (about 8.6 events each, tracking included).
    #[arg(long, env = "LEDGER_BENCH_DONATIONS", default_value_t = 100_000, value_parser = at_least_one)]
    pub donations: usize,
    /// Workload seed (the same seed gives the same events).
    #[arg(long, env = "LEDGER_BENCH_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Parts to run, comma-separated. `raw`, `scrub` and `verify` build the read model even
    /// without `projection`.
    #[arg(
        long,
        env = "LEDGER_BENCH_PARTS",
        value_enum,
        value_delimiter = ',',
        default_value = "append,intake,projection,raw,scrub,verify,kurrentdb"
    )]
    pub parts: Vec<Part>,
    /// Also measure the read model on this PostgreSQL server: the bench creates a throw-away
    /// database there (the role needs CREATEDB) and drops it afterwards.
    #[arg(
        long,
        env = "LEDGER_BENCH_POSTGRES_URL",
        default_value = "",
        hide_default_value = true
    )]
    pub postgres_url: SecretString,
    /// Events appended by the single writer (a sample: one fsync per append).
    #[arg(
        long,
        env = "LEDGER_BENCH_SINGLE_WRITER_EVENTS",
        default_value_t = 3_000,
        value_parser = at_least_one
    )]
    pub single_writer_events: usize,
    /// `AddDonation` calls measured. 0: as many as donations, at most 30,000.
    #[arg(long, env = "LEDGER_BENCH_INTAKE_CALLS", default_value_t = 0)]
    pub intake_calls: usize,
    /// Where to create the scratch directory; put it on the disk the ledger will use (on a
    /// tmpfs an fsync costs nothing). Default: the system's temporary directory.
    #[arg(long, env = "LEDGER_BENCH_SCRATCH_DIR")]
    pub scratch_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, env = "LEDGER_BENCH_JSON", default_value_t = false)]
    pub json: bool,
}

/// A count of at least one: a workload of nothing measures nothing (every rate would be 0/0).
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("must be a whole number of at least 1 ({e})")),
    }
}

impl BenchArgs {
    fn options(&self) -> BenchOptions {
        use secrecy::ExposeSecret;
        let postgres_url = self.postgres_url.expose_secret();
        BenchOptions {
            donations: self.donations,
            seed: self.seed,
            parts: self.parts.iter().copied().collect(),
            postgres_url: (!postgres_url.is_empty()).then(|| postgres_url.into()),
            single_writer_events: self.single_writer_events,
            intake_calls: match self.intake_calls {
                0 => self.donations.clamp(bench::CONCURRENCY, 30_000),
                n => n,
            },
            scratch_dir: self.scratch_dir.clone(),
        }
    }
}

/// Runs `ledger bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = bench::run(args.options()).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_table(&report, &mut out)?;
    }
    Ok(())
}

fn print_table(report: &BenchReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "ledger bench: {} donations, {} events, seed {}, {} CPUs, load average {} at start, {} at end, CPU time stolen by the hypervisor {}, {:.0} s",
        report.donations,
        report.events,
        report.seed,
        report.cpus,
        report.load_average.0.as_deref().unwrap_or("-"),
        report.load_average.1.as_deref().unwrap_or("-"),
        report
            .cpu_steal_percent
            .map_or_else(|| "-".to_owned(), |p| format!("{p:.1} %")),
        report.seconds,
    )?;
    writeln!(
        out,
        "  {:<40} {:>12} {:<9} {:<18} detail",
        "figure", "value", "unit", "target"
    )?;
    for f in &report.figures {
        let value = if f.value >= 1_000.0 {
            bench::thousands(f.value)
        } else {
            format!("{:.2}", f.value)
        };
        let target = match (f.target, f.meets_target) {
            (Some(t), Some(true)) => format!("{t} met"),
            (Some(t), _) => format!("{t} MISSED"),
            (None, _) => String::new(),
        };
        writeln!(
            out,
            "  {:<40} {:>12} {:<9} {:<18} {}",
            f.label,
            value,
            f.unit,
            target,
            f.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
