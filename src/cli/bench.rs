//! `ledger bench`: the workload through every hot path, in one run, printed as a table or JSON.
use std::io::Write;

use chrono::Utc;
use clap::Args;

use crate::bench::{self, BenchReport};
use crate::workload::WorkloadConfig;

/// `ledger bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Donations in the workload (about 8 events each, tracking included).
    #[arg(long, env = "LEDGER_BENCH_DONATIONS", default_value_t = 100_000)]
    pub donations: usize,
    /// Workload seed (the same seed gives the same events).
    #[arg(long, env = "LEDGER_BENCH_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Parts to run, comma-separated: append, projection, scrub.
    #[arg(long, value_delimiter = ',', default_value = "append,projection,scrub")]
    pub parts: Vec<String>,
    /// Also measure projection into PostgreSQL (a scratch schema of this database).
    #[arg(long, env = "LEDGER_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Events appended by the single writer (a sample: one fsync per append).
    #[arg(long, default_value_t = 5_000)]
    pub single_writer_events: usize,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ledger bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let dir = scratch.path();
    let config = WorkloadConfig {
        donations: args.donations,
        seed: args.seed,
        start: Utc::now() - chrono::Duration::days(30),
    };
    let (appends, events) = bench::encoded_workload(&config);
    let mut report = BenchReport {
        donations: args.donations,
        events,
        ..Default::default()
    };
    let wants = |p: &str| args.parts.iter().any(|x| x == p);

    let log = bench::fresh_log(dir, "events.sqlite").await?;
    if wants("append") || wants("projection") || wants("scrub") {
        if wants("append") {
            let mut sample = Vec::new();
            let mut n = 0;
            for a in &appends {
                if n >= args.single_writer_events {
                    break;
                }
                n += a.len();
                sample.push(a.clone());
            }
            let single = bench::fresh_log(dir, "single.sqlite").await?;
            let rate = bench::append_rate(single, sample, 1).await?;
            report.add("append, 1 writer", rate, "events/s", None);
        }
        let rate = bench::append_rate(log.clone(), appends, 64).await?;
        report.add(
            "append, 64 writers",
            rate,
            "events/s",
            Some("≥ 50,000".into()),
        );
    }
    let sqlite_rm = format!("sqlite://{}", dir.join("readmodel.sqlite").display());
    if wants("projection") || wants("scrub") {
        let (n, took) = bench::projection_rate(log.clone(), &sqlite_rm).await?;
        report.add(
            "projection rebuild, SQLite",
            n as f64 / took.as_secs_f64(),
            "events/s",
            None,
        );
        if let Some(pg) = &args.postgres_url {
            let (n, took) = bench::projection_rate(log.clone(), pg).await?;
            report.add(
                "projection rebuild, PostgreSQL",
                n as f64 / took.as_secs_f64(),
                "events/s",
                None,
            );
        }
    }
    if wants("scrub") {
        let (found, took) = bench::scrub_selection_time(&sqlite_rm).await?;
        report.add(
            format!("scrub selection, SQLite ({found} candidates)"),
            took.as_secs_f64() * 1000.0,
            "ms",
            None,
        );
    }
    if let Some(mib) = bench::peak_memory_mib() {
        report.add("peak memory", mib, "MiB", None);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "ledger bench: {} donations, {} events, seed {}",
            report.donations, report.events, args.seed
        )?;
        for f in &report.figures {
            let target = f
                .target
                .as_deref()
                .map(|t| format!("  (target {t})"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:<45} {:>14.1} {}{}",
                f.name, f.value, f.unit, target
            )?;
        }
    }
    Ok(())
}
