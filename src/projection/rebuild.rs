//! `rebuild`: projects the whole log into fresh tables beside the live ones, without their
//! secondary indexes and with a write-back cache, builds the indexes, and switches the fresh
//! tables in atomically (see [`Backend::switch_in`](super::backend::Backend)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{ProjectionError, Scratch};
use super::read_model::SkippedEvent;
use super::rows;
use super::{Projector, ProjectorConfig, ReadModel, REBUILD_CACHE_ROWS};
use crate::store::{EventLog, Position};

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildReport {
    /// Events applied (or skipped) into the fresh tables.
    pub events: u64,
    /// Wall time of the projection, without the switch.
    pub projection: Duration,
    /// Wall time of the switch.
    pub switch: Duration,
    /// Throughput of the projection.
    pub events_per_second: f64,
    /// The checkpoint the rebuilt tables start from.
    pub checkpoint: Option<Position>,
}

/// Rebuilds the read model at `url` from position 0 into fresh tables while the old ones keep
/// serving, then switches atomically. PostgreSQL: fills schema `<schema>_new` and renames it
/// over the live schema in one transaction. SQLite: fills `<file>.rebuild` and copies it into
/// the live file in one write transaction. MariaDB: fills database `<database>_new` and moves
/// its tables into the live database with one `RENAME TABLE`. Operator skips carry over.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    url: &str,
    config: ProjectorConfig,
) -> Result<RebuildReport, ProjectionError> {
    rebuild_with_progress(log, url, config, &|_| {}).await
}

/// How far a rebuild got: events projected into the fresh tables, and the log position it
/// reached out of the head it runs to (positions as far as the log's head at the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Events projected so far.
    pub events: u64,
    /// The last position projected.
    pub position: Option<Position>,
    /// The log's head when the rebuild started.
    pub head: Option<Position>,
    /// The projection is over (the indexes and the switch follow): the last report.
    pub finished: bool,
}

/// [`rebuild`], calling `progress` about four times a second while it projects.
#[tracing::instrument(name = "rebuild", skip_all, err)]
pub async fn rebuild_with_progress(
    log: Arc<dyn EventLog>,
    url: &str,
    config: ProjectorConfig,
    progress: &(dyn Fn(RebuildProgress) + Send + Sync),
) -> Result<RebuildReport, ProjectionError> {
    let head = log
        .head_position()
        .await
        .map_err(super::backend::store_error)?;
    let live = ReadModel::connect(url).await?;
    live.migrate().await?;
    let fresh = live.scratch(Scratch::Rebuild).await?;
    fresh.migrate().await?;
    copy_skipped(&live, &fresh).await?;
    let indexes = fresh.defer_indexes().await?;

    let config = ProjectorConfig {
        batch_size: config.rebuild_batch_size.max(1),
        write_back_rows: if config.write_back_rows > 0 {
            config.write_back_rows
        } else {
            REBUILD_CACHE_ROWS
        },
        ..config
    };
    let projector = Projector::with_config(log, fresh.clone(), config);
    let started = Instant::now();
    let stats = projector.stats();
    let report = |finished| {
        let s = stats.snapshot();
        progress(RebuildProgress {
            events: s.events_total,
            position: s.checkpoint,
            head,
            finished,
        })
    };
    let run = projector.run_once();
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome?,
            _ = tick.tick() => report(false),
        }
    };
    report(true);
    fresh.create_indexes(&indexes).await?;
    let projection = started.elapsed();

    let started = Instant::now();
    live.switch_in(&fresh).await?;
    let switch = started.elapsed();
    tracing::info!(
        events = outcome.events,
        ?projection,
        ?switch,
        "read model rebuilt and switched"
    );
    Ok(RebuildReport {
        events: outcome.events,
        projection,
        switch,
        events_per_second: if projection.as_secs_f64() > 0.0 {
            outcome.events as f64 / projection.as_secs_f64()
        } else {
            0.0
        },
        checkpoint: outcome.checkpoint,
    })
}

/// Copies the operators' skips from the live read model into the fresh one.
async fn copy_skipped(live: &ReadModel, fresh: &ReadModel) -> Result<(), ProjectionError> {
    let layout = rows::TABLES
        .iter()
        .find(|l| l.name == "projector_skipped_event")
        .expect("layout");
    let rows = live.all_rows(layout).await?;
    for row in rows {
        let text = |i: usize| row[i].as_text().unwrap_or_default();
        let event = SkippedEvent {
            position: row[1].as_i64().unwrap_or_default() as Position,
            stream: text(2),
            event_type: text(3),
        };
        fresh
            .insert_skipped(text(0), &event, text(4), text(5))
            .await?;
    }
    Ok(())
}
