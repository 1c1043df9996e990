//! `ledger verify`: rebuild the read model into a scratch database and compare it with the
//! live one; print a summary (or `--json`) and exit non-zero when anything differs.
use std::io::Write;
use std::sync::Mutex;

use anyhow::Context;

use crate::config::StorageArgs;
use crate::projection::compare::{CompareMethod, CompareOptions, DifferenceKind, TableComparison};
use crate::projection::verify::{self, VerifyConfig, VerifyProgress, VerifyReport};

use super::progress::Progress;
use super::project::ReadModelArgs;

/// Rows verify's scratch rebuild caches by default (see [`VerifyArgs::write_back_rows`]):
/// none. On the 1M-donation bench the 50,000-row cache of `ledger rebuild` made verify no
/// faster and raised its peak memory from 244 MB to 405 MB.
pub const DEFAULT_WRITE_BACK_ROWS: usize = 0;

/// Events per transaction of verify's scratch rebuild by default.
pub const VERIFY_REBUILD_BATCH_SIZE: usize = 10_000;

/// `ledger verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Which projector and how it batches (the live catch-up and the rebuild use the same).
    #[command(flatten)]
    pub read_model: ReadModelArgs,
    /// Print the report as JSON.
    #[arg(long, env = "LEDGER_VERIFY_JSON", default_value_t = false)]
    pub json: bool,
    /// Do not catch the live read model up first; compare at its checkpoint instead (writes
    /// nothing to the live read model).
    #[arg(long, env = "LEDGER_VERIFY_NO_CATCH_UP", default_value_t = false)]
    pub no_catch_up: bool,
    /// Rows per page and side while comparing (each side's database renders a page into one
    /// text; memory grows with it).
    #[arg(long, env = "LEDGER_VERIFY_PAGE_SIZE", default_value_t = crate::projection::compare::DEFAULT_PAGE_SIZE)]
    pub page_size: usize,
    /// Events per transaction of the scratch rebuild (the live catch-up uses --batch-size).
    /// Smaller than `ledger rebuild`'s default: at 1M donations, 20,000 raised verify's peak
    /// memory from about 250 MB to 361 MB for 20 % less time.
    #[arg(long, env = "LEDGER_VERIFY_REBUILD_BATCH_SIZE", default_value_t = VERIFY_REBUILD_BATCH_SIZE)]
    pub rebuild_batch_size: usize,
    /// Rows of each table (donations, about 1.5 KB each with their payments; contribution
    /// tracking, memberships, address changes, subscriptions) the scratch rebuild keeps in
    /// memory between batches and writes once (0, the default: every batch writes its rows,
    /// which keeps verify's peak memory under 300 MB).
    #[arg(long, env = "LEDGER_VERIFY_WRITE_BACK_ROWS", default_value_t = DEFAULT_WRITE_BACK_ROWS)]
    pub write_back_rows: usize,
    /// Differences listed per table (all are counted).
    #[arg(long, env = "LEDGER_VERIFY_MAX_LISTED", default_value_t = crate::projection::compare::DEFAULT_MAX_LISTED)]
    pub max_listed: usize,
}

/// Progress on stderr while stderr is a terminal: a bar per phase (catch-up, scratch
/// rebuild, each table's comparison) with its rate, the time left where the end is known, and
/// one line per compared table above it. Nothing when stderr is not a terminal: the report on
/// stdout says everything.
struct ProgressDisplay {
    /// The phase shown and its bar.
    current: Mutex<Option<(String, Progress)>>,
}

impl ProgressDisplay {
    fn new() -> Self {
        Self {
            current: Mutex::new(None),
        }
    }

    /// The bar of `phase`, a new one when the phase changed.
    fn bar(&self, phase: &str, unit: &str) -> Progress {
        let mut current = self.current.lock().expect("progress lock");
        match current.as_ref() {
            Some((shown, bar)) if shown == phase => bar.clone(),
            _ => {
                if let Some((_, old)) = current.take() {
                    old.finish();
                }
                let bar = Progress::new(phase, None, unit);
                *current = Some((phase.to_owned(), bar.clone()));
                bar
            }
        }
    }

    fn show(&self, p: VerifyProgress) {
        match p {
            VerifyProgress::CatchingUp { events } => self
                .bar("catching up the live read model", "events")
                .set_position(events),
            VerifyProgress::Rebuilding { events, target } => {
                let bar = self.bar("rebuilding into scratch", "events");
                if let Some(target) = target {
                    // Positions of the embedded log count its events.
                    bar.set_total(target.max(events), "events");
                }
                bar.set_position(events);
            }
            VerifyProgress::Comparing { table, rows } => self
                .bar(&format!("comparing {table}"), "rows")
                .set_position(rows),
            VerifyProgress::TableDone(t) => {
                let line = format!(
                    "compared {}: {} rows in {:.1} s, {}",
                    t.table,
                    t.live_rows,
                    t.seconds,
                    if t.is_identical() {
                        format!("identical{}", method_note(&t))
                    } else {
                        format!("{} rows differ", t.differing_rows)
                    }
                );
                self.bar(&format!("comparing {}", t.table), "rows")
                    .println(&line);
            }
        }
    }

    fn finish(&self) {
        if let Some((_, bar)) = self.current.lock().expect("progress lock").take() {
            bar.finish();
        }
    }
}

/// Says when a view was compared by its definition and inputs instead of row by row.
fn method_note(t: &TableComparison) -> &'static str {
    match t.method {
        CompareMethod::Rows => "",
        CompareMethod::DefinitionAndInputs => {
            " (same definition over identical tables; rows not read)"
        }
    }
}

fn print_text(
    report: &VerifyReport,
    max_listed: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    print_comparison(report, max_listed, out)?;
    if !report.quarantined.is_empty() {
        writeln!(
            out,
            "\nQUARANTINED: {} event(s) are in the log but in no read-model row (the projector \
             could not project them; fix, then `ledger project --replay-quarantined POSITION`):",
            report.quarantined.len()
        )?;
        for q in report.quarantined.iter().take(max_listed.max(1)) {
            writeln!(
                out,
                "  position {}  {}  {}: {}",
                q.position, q.stream, q.event_type, q.cause
            )?;
        }
    }
    Ok(())
}

fn print_comparison(
    report: &VerifyReport,
    max_listed: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let at = report
        .position
        .map_or("an empty log".to_owned(), |p| format!("log position {p}"));
    let live = if report.live_caught_up {
        format!(
            "live read model caught up first ({} events applied)",
            report.live_events_applied
        )
    } else {
        let behind = match (report.head_at_start, report.position) {
            (Some(h), Some(p)) if h > p => format!(", {} positions behind the head {h}", h - p),
            (Some(h), None) => format!(", behind the head {h}"),
            _ => String::new(),
        };
        format!("compared at the live checkpoint as it is{behind}")
    };
    if report.is_identical() {
        writeln!(
            out,
            "read model identical to a rebuild at {at} ({live}; {} events rebuilt in {:.1} s, compared in {:.1} s)",
            report.rebuilt_events, report.rebuild_seconds, report.compare_seconds
        )?;
        writeln!(out, "{:<32} {:>12}  checksum (sha-256)", "table", "rows")?;
        for t in &report.tables {
            writeln!(
                out,
                "{:<32} {:>12}  {}{}",
                t.table,
                t.live_rows,
                t.live_checksum,
                method_note(t)
            )?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "READ MODEL DIFFERS from a rebuild at {at} ({live}); differing: {}",
        report.differing_tables().join(", ")
    )?;
    writeln!(
        out,
        "{:<32} {:>12} {:>12} {:>9}  live checksum / rebuilt checksum",
        "table", "live rows", "rebuilt rows", "differ"
    )?;
    for t in &report.tables {
        let sums = if t.is_identical() {
            t.live_checksum.clone()
        } else {
            format!("{} / {}", t.live_checksum, t.rebuilt_checksum)
        };
        writeln!(
            out,
            "{:<32} {:>12} {:>12} {:>9}  {sums}",
            t.table, t.live_rows, t.rebuilt_rows, t.differing_rows
        )?;
    }
    for t in report.tables.iter().filter(|t| !t.is_identical()) {
        print_differences(t, max_listed, out)?;
    }
    Ok(())
}

fn print_differences(
    t: &TableComparison,
    max_listed: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "\n{}: {} rows differ", t.table, t.differing_rows)?;
    // A changed value prints quoted, SQL NULL bare: the text 'NULL' stays distinguishable.
    let shown = |v: &Option<String>| v.as_ref().map_or("NULL".to_owned(), |v| format!("{v:?}"));
    let row = |v: &Option<String>| v.clone().unwrap_or_default();
    for d in &t.differences {
        match d.kind {
            DifferenceKind::Changed => writeln!(
                out,
                "  {}  {}: live {}, rebuilt {}",
                d.key,
                d.column.as_deref().unwrap_or("(row shape)"),
                shown(&d.live),
                shown(&d.rebuilt)
            )?,
            DifferenceKind::OnlyLive => writeln!(
                out,
                "  {}  only in the live read model: {}",
                d.key,
                row(&d.live)
            )?,
            DifferenceKind::OnlyRebuilt => writeln!(
                out,
                "  {}  missing from the live read model (rebuilt: {})",
                d.key,
                row(&d.rebuilt)
            )?,
        }
    }
    if t.differences.len() >= max_listed {
        writeln!(
            out,
            "  (at most {max_listed} differences listed per table; see --max-listed)"
        )?;
    }
    Ok(())
}

/// Runs `ledger verify`.
pub async fn run(storage: &StorageArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let (log, mut projector, url) = args.read_model.open(storage).await?;
    projector.rebuild_batch_size = args.rebuild_batch_size.max(1);
    projector.write_back_rows = args.write_back_rows;
    let config = VerifyConfig {
        projector,
        catch_up_live: !args.no_catch_up,
        compare: CompareOptions {
            page_size: args.page_size.max(1),
            max_listed: args.max_listed,
        },
    };
    let display = ProgressDisplay::new();
    let report = verify::verify(log, &url, config, &|p| display.show(p)).await;
    display.finish();
    let report = report.context("verifying the read model")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["identical"] = report.is_identical().into();
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    } else {
        print_text(&report, args.max_listed, &mut out)?;
    }
    out.flush()?;
    if report.is_identical() {
        Ok(())
    } else {
        anyhow::bail!(
            "the read model differs from its rebuild in: {}",
            report.differing_tables().join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::compare::RowDifference;

    #[test]
    fn a_listed_null_prints_bare_and_the_text_null_quoted() {
        let changed = |live: Option<&str>, rebuilt: Option<&str>| RowDifference {
            key: "id=1".into(),
            kind: DifferenceKind::Changed,
            column: Some("referrer".into()),
            live: live.map(str::to_owned),
            rebuilt: rebuilt.map(str::to_owned),
        };
        let table = TableComparison {
            table: "contribution_tracking".into(),
            live_rows: 1,
            rebuilt_rows: 1,
            live_checksum: "a".into(),
            rebuilt_checksum: "b".into(),
            differing_rows: 1,
            differences: vec![changed(None, Some("NULL")), changed(Some(""), None)],
            method: CompareMethod::Rows,
            seconds: 0.0,
        };
        let mut out = Vec::new();
        print_differences(&table, 20, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("id=1  referrer: live NULL, rebuilt \"NULL\"\n"),
            "{text}"
        );
        assert!(
            text.contains("id=1  referrer: live \"\", rebuilt NULL\n"),
            "{text}"
        );
    }
}
