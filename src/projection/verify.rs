//! `verify`: rebuilds the read model from position 0 into a scratch database with the real
//! projector, then compares it with the live read model table by table (see `compare.rs`).
//!
//! Both sides must describe the same log position. The live projector is first caught up to
//! the log's head `H` (or left alone with `catch_up_live: false`); a snapshot of the live
//! read model is then opened and its checkpoint `L` read inside it, and the scratch rebuild
//! projects exactly the events up to `L` (through [`BoundedLog`]). Events appended meanwhile
//! are in neither side, and a live projector running elsewhere cannot move the snapshot.
//!
//! The scratch database is an SQLite file next to the live one (`<file>.verify-<pid>`) or the
//! PostgreSQL schema `<schema>_verify`, without secondary indexes; it is removed afterwards,
//! also on failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use super::backend::{db_error, store_error, ProjectionError, Scratch};
use super::compare::{self, CompareOptions, Snapshot, TableComparison};
use super::rows;
use super::{CatchUpOutcome, Projector, ProjectorConfig, ReadModel};
use crate::store::{
    AppendResult, CurrentRevision, Direction, EventLog, Position, RecordedEvent, StoreError,
    StreamAppend, StreamStart, Subscription,
};

/// A read-only view of a log that ends at a fixed position: the scratch rebuild projects
/// exactly the events the live read model has seen.
pub struct BoundedLog {
    inner: Arc<dyn EventLog>,
    last: Option<Position>,
}

impl BoundedLog {
    /// The events of `inner` up to `last` inclusive (`None`: no event at all).
    pub fn new(inner: Arc<dyn EventLog>, last: Option<Position>) -> Self {
        Self { inner, last }
    }

    fn keep(&self, events: &mut Vec<RecordedEvent>) {
        match self.last {
            Some(last) => events.retain(|e| e.position <= last),
            None => events.clear(),
        }
    }
}

#[async_trait::async_trait]
impl EventLog for BoundedLog {
    async fn append_atomic(
        &self,
        _parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        Err(StoreError::InvalidInput {
            field: "stream",
            rule: "a bounded view of the log is read-only".into(),
        })
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        from: StreamStart,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_stream(stream, direction, from, max).await?;
        self.keep(&mut events);
        Ok(events)
    }

    async fn read_all_backwards(
        &self,
        before: Option<Position>,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Some(last) = self.last else {
            return Ok(Vec::new());
        };
        let before = before.map_or(last.saturating_add(1), |b| b.min(last.saturating_add(1)));
        self.inner.read_all_backwards(Some(before), max).await
    }

    async fn read_all(&self, from: Position, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.last.is_none_or(|last| from > last) {
            return Ok(Vec::new());
        }
        let mut events = self.inner.read_all(from, max).await?;
        self.keep(&mut events);
        Ok(events)
    }

    async fn read_category(
        &self,
        category: &str,
        from: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if self.last.is_none_or(|last| from > last) {
            return Ok(Vec::new());
        }
        let mut events = self.inner.read_category(category, from, max).await?;
        self.keep(&mut events);
        Ok(events)
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision, StoreError> {
        self.inner.stream_revision(stream).await
    }

    async fn highest_stream_number(&self, category: &str) -> Result<Option<u64>, StoreError> {
        // Used only by the sequence check, never by a projector; the unbounded answer is an
        // upper bound of the bounded one.
        self.inner.highest_stream_number(category).await
    }

    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        let head = self.inner.head_position().await?;
        Ok(match (head, self.last) {
            (Some(h), Some(l)) => Some(h.min(l)),
            _ => None,
        })
    }

    /// Not bounded: names say nothing of positions (and verify lists none).
    async fn stream_names_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.stream_names_with_prefix(prefix).await
    }

    fn subscribe_all(&self, from: Position) -> Subscription {
        let last = self.last;
        self.inner
            .subscribe_all(from)
            .take_while(move |e| {
                let keep = match (e, last) {
                    (Ok(e), Some(l)) => e.position <= l,
                    (Ok(_), None) => false,
                    (Err(_), _) => true,
                };
                std::future::ready(keep)
            })
            .boxed()
    }
}

/// How `verify` runs.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// The projector settings of both the live catch-up and the scratch rebuild (name,
    /// batch sizes, retries, and the vault, so personal columns decrypt as they do live). The
    /// live catch-up ignores `write_back_rows`; the scratch rebuild batches by
    /// `rebuild_batch_size` and caches `write_back_rows` rows.
    pub projector: ProjectorConfig,
    /// Catch the live read model up to the log's head first (`false`: compare at the live
    /// checkpoint as it is, writing nothing to the live read model).
    pub catch_up_live: bool,
    /// Paging and listing limits of the comparison.
    pub compare: CompareOptions,
}

/// What `verify` is doing, for progress displays.
#[derive(Debug, Clone)]
pub enum VerifyProgress {
    /// Catching the live read model up; events applied so far.
    CatchingUp {
        /// Events applied.
        events: u64,
    },
    /// Rebuilding into the scratch database; events projected so far.
    Rebuilding {
        /// Events projected.
        events: u64,
        /// The position the rebuild stops at.
        target: Option<Position>,
    },
    /// Comparing a table; rows read so far (per side).
    Comparing {
        /// The table.
        table: String,
        /// Rows read.
        rows: u64,
    },
    /// A table is compared.
    TableDone(TableComparison),
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The log position both sides were compared at (`None`: empty log).
    pub position: Option<Position>,
    /// The log's head when `verify` started.
    pub head_at_start: Option<Position>,
    /// Whether the live read model was caught up before comparing.
    pub live_caught_up: bool,
    /// Events the live catch-up applied.
    pub live_events_applied: u64,
    /// Events projected into the scratch database.
    pub rebuilt_events: u64,
    /// Seconds spent catching up the live read model.
    pub catch_up_seconds: f64,
    /// Seconds spent rebuilding.
    pub rebuild_seconds: f64,
    /// Seconds spent comparing.
    pub compare_seconds: f64,
    /// Per table (and the legacy view).
    pub tables: Vec<TableComparison>,
    /// Events the projector quarantined: in the log, in neither side's rows.
    pub quarantined: Vec<QuarantinedEvent>,
}

/// An event the projector could not project and passed over.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantinedEvent {
    /// Its log position.
    pub position: Position,
    /// Its stream (control characters escaped).
    pub stream: String,
    /// Its stored type name (control characters escaped).
    pub event_type: String,
    /// Why it could not be projected.
    pub cause: String,
}

impl VerifyReport {
    /// Whether every table is identical.
    pub fn is_identical(&self) -> bool {
        self.tables.iter().all(TableComparison::is_identical)
    }

    /// The tables that differ.
    pub fn differing_tables(&self) -> Vec<&str> {
        self.tables
            .iter()
            .filter(|t| !t.is_identical())
            .map(|t| t.table.as_str())
            .collect()
    }
}

/// Runs a projector's catch-up, reporting its progress every quarter second.
async fn run_with_progress(
    projector: &Projector,
    progress: &(dyn Fn(VerifyProgress) + Send + Sync),
    report: impl Fn(u64) -> VerifyProgress,
) -> Result<CatchUpOutcome, ProjectionError> {
    let stats = projector.stats();
    let run = projector.run_once();
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            outcome = &mut run => {
                if let Ok(o) = &outcome {
                    progress(report(o.events));
                }
                return outcome;
            }
            _ = tick.tick() => progress(report(stats.snapshot().events_total)),
        }
    }
}

/// Copies the operators' skips and the projector's quarantines, exactly, from the live
/// snapshot into the scratch read model, so the rebuild passes over the same events; returns
/// `projector`'s quarantined events.
async fn copy_skips(
    live: &mut Snapshot,
    scratch: &ReadModel,
    projector: &str,
) -> Result<Vec<QuarantinedEvent>, ProjectionError> {
    let mut quarantined = Vec::new();
    let layout = rows::TABLES
        .iter()
        .find(|l| l.name == "projector_skipped_event")
        .expect("layout of projector_skipped_event");
    for row in live.all_rows(layout).await? {
        let text = |i: usize| row[i].as_text().unwrap_or_default().to_owned();
        if text(0) == projector && text(5) == super::QUARANTINE {
            quarantined.push(QuarantinedEvent {
                position: row[1].as_i64().unwrap_or_default() as Position,
                stream: text(2),
                event_type: text(3),
                cause: text(4),
            });
        }
        scratch.insert_row(layout, &row).await.map_err(db_error)?;
    }
    Ok(quarantined)
}

/// Rebuilds the read model at `url` into a scratch database and compares it with the live
/// one. Returns the report whether or not they differ; errors are failures to run at all.
#[tracing::instrument(skip_all, err)]
pub async fn verify(
    log: Arc<dyn EventLog>,
    url: &str,
    config: VerifyConfig,
    progress: &(dyn Fn(VerifyProgress) + Send + Sync),
) -> Result<VerifyReport, ProjectionError> {
    let live = ReadModel::connect(url).await?;
    live.migrate().await?;
    let head_at_start = log.head_position().await.map_err(store_error)?;

    let started = Instant::now();
    let mut live_events_applied = 0;
    if config.catch_up_live {
        let bounded: Arc<dyn EventLog> = Arc::new(BoundedLog::new(log.clone(), head_at_start));
        // Never a write-back cache on the live read model: its readers would see the
        // checkpoint run ahead of the rows.
        let live_config = ProjectorConfig {
            write_back_rows: 0,
            ..config.projector.clone()
        };
        let projector = Projector::with_config(bounded, live.clone(), live_config);
        let outcome = run_with_progress(&projector, progress, |events| {
            VerifyProgress::CatchingUp { events }
        })
        .await?;
        live_events_applied = outcome.events;
    }
    let catch_up_seconds = started.elapsed().as_secs_f64();

    let mut live_snapshot = Snapshot::begin(&live).await?;
    let position = live_snapshot.checkpoint(&config.projector.name).await?;
    if !config.catch_up_live && position != head_at_start {
        tracing::warn!(
            checkpoint = ?position,
            head = ?head_at_start,
            "the live read model is behind the log; comparing at its checkpoint"
        );
    }

    let scratch = live.scratch(Scratch::Verify).await?;
    let result = async {
        scratch.migrate().await?;
        // Secondary indexes only serve readers; the compare reads by primary key. Like
        // `ledger rebuild`, the fill runs without them; unlike it, nothing builds them after.
        scratch.defer_indexes().await?;
        let quarantined = copy_skips(&mut live_snapshot, &scratch, &config.projector.name).await?;
        let started = Instant::now();
        let bounded: Arc<dyn EventLog> = Arc::new(BoundedLog::new(log.clone(), position));
        // The scratch rebuild batches as `ledger rebuild` does, and caches rows when
        // `write_back_rows` asks for it: nobody reads it before the compare, which starts
        // after the final flush.
        let rebuild_config = ProjectorConfig {
            batch_size: config.projector.rebuild_batch_size.max(1),
            ..config.projector.clone()
        };
        let projector = Projector::with_config(bounded, scratch.clone(), rebuild_config);
        let outcome =
            run_with_progress(&projector, progress, |events| VerifyProgress::Rebuilding {
                events,
                target: position,
            })
            .await?;
        let rebuild_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let mut scratch_snapshot = Snapshot::begin(&scratch).await?;
        let tables = compare::compare_snapshots(
            &mut live_snapshot,
            &mut scratch_snapshot,
            config.compare,
            &mut |table, rows| {
                progress(VerifyProgress::Comparing {
                    table: table.to_owned(),
                    rows,
                })
            },
            &mut |t| progress(VerifyProgress::TableDone(t.clone())),
        )
        .await?;
        scratch_snapshot.finish().await?;
        live_snapshot.finish().await?;
        Ok::<_, ProjectionError>((
            outcome.events,
            rebuild_seconds,
            tables,
            started.elapsed(),
            quarantined,
        ))
    }
    .await;
    // A failed clean-up is logged, not returned: the comparison's result matters more.
    if let Err(e) = live.remove_scratch(&scratch).await {
        tracing::warn!(error = %e, "could not remove the scratch read model");
    }
    let (rebuilt_events, rebuild_seconds, tables, compare_time, quarantined) = result?;
    Ok(VerifyReport {
        position,
        head_at_start,
        live_caught_up: config.catch_up_live,
        live_events_applied,
        rebuilt_events,
        catch_up_seconds,
        rebuild_seconds,
        compare_seconds: compare_time.as_secs_f64(),
        tables,
        quarantined,
    })
}
