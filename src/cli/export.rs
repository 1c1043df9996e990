//! `ledger export-audit`: the change log of a period as CSV or JSON lines, for auditors' tools.
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::audit::export::{self, AuditWriter, Format};
use crate::config::StorageArgs;

/// `ledger export-audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportAuditArgs {
    /// Start of the period (RFC 3339 such as `2026-11-01T00:00:00Z`, inclusive), compared
    /// with each event's `occurredAt`.
    #[arg(long, env = "LEDGER_EXPORT_FROM", value_parser = super::time::parse_time)]
    pub from: DateTime<Utc>,
    /// End of the period (RFC 3339, exclusive).
    #[arg(long, env = "LEDGER_EXPORT_TO", value_parser = super::time::parse_time)]
    pub to: DateTime<Utc>,
    /// Output format.
    #[arg(long, env = "LEDGER_EXPORT_FORMAT", value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, env = "LEDGER_EXPORT_OUTPUT")]
    pub output: Option<PathBuf>,
}

/// Runs `ledger export-audit`.
pub async fn run(storage: &StorageArgs, args: ExportAuditArgs) -> anyhow::Result<()> {
    let log = storage
        .open_event_log()
        .await
        .context("opening the event log")?;
    let vault = storage
        .open_vault()
        .await
        .context("opening the key store")?;
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut writer = AuditWriter::new(args.format, out)?;
    let summary = export::export_period(&*log, &vault, args.from, args.to, &mut |line| {
        writer.write(&line)
    })
    .await?;
    writer.finish()?.flush()?;
    tracing::info!(
        events_read = summary.events_read,
        lines = summary.lines,
        from = %args.from,
        to = %args.to,
        "audit export written"
    );
    Ok(())
}
