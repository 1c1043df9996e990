//! `ledger bench`: the workload through every hot path, in one run, printed as a table or JSON.
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use crate::bench::{self, BenchOptions, BenchReport, Part};
use crate::config::StorageArgs;

/// `ledger bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Donations in the workload (about 8.6 events each, tracking included), with one
    /// membership application per 80 donations among them and an address change for each
    /// donation with a postal address and each application.
    #[arg(long, env = "LEDGER_BENCH_DONATIONS", default_value_t = 100_000, value_parser = at_least_one)]
    pub donations: usize,
    /// Workload seed (the same seed gives the same events).
    #[arg(long, env = "LEDGER_BENCH_SEED", default_value_t = 42)]
    pub seed: u64,
    /// The donations alone: no membership applications and no address changes in the
    /// workload (its donation events stay the same), to compare a run with them.
    #[arg(long, env = "LEDGER_BENCH_DONATIONS_ONLY", default_value_t = false)]
    pub donations_only: bool,
    /// Parts to run, comma-separated. `raw`, `scrub` and `verify` build the read model even
    /// without `projection`.
    #[arg(
        long,
        env = "LEDGER_BENCH_PARTS",
        value_enum,
        value_delimiter = ',',
        default_value = "append,intake,projection,raw,scrub,verify,kurrentdb,kurrentdb-log,civishare"
    )]
    pub parts: Vec<Part>,
    /// Also measure the read model on this PostgreSQL server: the bench creates a throw-away
    /// database there (the role needs CREATEDB) and drops it afterwards. For MariaDB, give
    /// `--read-model-url mysql://user@host:3306/db` (the user needs CREATE and DROP).
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
    /// Donations of the `civishare` part's burst (its latency run sends a tenth of them, at
    /// most 200, paced).
    #[arg(
        long,
        env = "LEDGER_BENCH_CIVISHARE_CHANGES",
        default_value_t = 2_000,
        value_parser = at_least_one
    )]
    pub civishare_changes: usize,
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
    /// The options of a run; `read_model_url` is the global `--read-model-url`, which adds a
    /// MariaDB server to measure (a `mysql://` or `mariadb://` URL) or a PostgreSQL one (like
    /// `--postgres-url`). A `sqlite://` one changes nothing: SQLite is always measured, in
    /// the scratch directory.
    fn options(&self, read_model_url: &str, event_log_url: &str) -> anyhow::Result<BenchOptions> {
        use secrecy::ExposeSecret;
        let mut postgres_url = self.postgres_url.expose_secret();
        let mut mariadb_url = "";
        if bench::is_mariadb_url(read_model_url) {
            mariadb_url = read_model_url;
        } else if read_model_url.starts_with("postgres") {
            anyhow::ensure!(
                postgres_url.is_empty() || postgres_url == read_model_url,
                "--read-model-url and --postgres-url name two PostgreSQL servers; the bench \
                 measures one: give one of them"
            );
            postgres_url = read_model_url;
        }
        let url = |u: &str| (!u.is_empty()).then(|| u.into());
        Ok(BenchOptions {
            donations: self.donations,
            seed: self.seed,
            donations_only: self.donations_only,
            parts: self.parts.iter().copied().collect(),
            postgres_url: url(postgres_url),
            mariadb_url: url(mariadb_url),
            single_writer_events: self.single_writer_events,
            intake_calls: match self.intake_calls {
                0 => self.donations.clamp(bench::CONCURRENCY, 30_000),
                n => n,
            },
            civishare_changes: self.civishare_changes,
            scratch_dir: self.scratch_dir.clone(),
            kurrentdb_url: crate::store::kurrent::is_kurrentdb_url(event_log_url)
                .then(|| event_log_url.into()),
        })
    }
}

/// Runs `ledger bench`; `--read-model-url` (of `storage`) may add a server to measure.
pub async fn run(storage: &StorageArgs, args: BenchArgs) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let options = args.options(
        storage.read_model_url.expose_secret(),
        storage.event_log_url.expose_secret(),
    )?;
    let report = bench::run(options).await?;
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
        "ledger bench: {} donations, {} membership applications, {} address changes ({} used), {} events, seed {}, {} CPUs, load average {} at start, {} at end, CPU time stolen by the hypervisor {}, {:.0} s",
        report.donations,
        report.memberships,
        report.address_changes,
        report.address_changes_used,
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
