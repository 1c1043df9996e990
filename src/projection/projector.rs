//! [`Projector`]: the loop that folds the log into one read model — a step reads the batch
//! after the checkpoint (prefetched while the previous one was written), folds it
//! (`batch.rs`) and commits rows and checkpoint together; transient failures are retried with
//! back-off; an event that cannot be projected is quarantined (or, with quarantine off, stops
//! the projector until an operator skips it).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::backend::{store_error, ProjectionError};
use super::batch::{self, Decoded};
use super::cache::RowCache;
use super::config::{CatchUpOutcome, Lag, ProjectorConfig, StatsHandle, StepOutcome};
use super::read_model::{SkippedEvent, QUARANTINE};
use super::reader::{read_batch, release};
use super::ReadModel;
use crate::store::{EventLog, Position};
use crate::telemetry::format_chain;

/// Longest cause, stream or type stored with a quarantined event.
const MAX_RECORDED_CHARS: usize = 1000;

/// `s` fit for a read-model text column and a log line: control characters escaped, cut to
/// [`MAX_RECORDED_CHARS`] (a foreign writer's stream name or type may hold anything).
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_RECORDED_CHARS));
    for c in s.chars().take(MAX_RECORDED_CHARS) {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A projector: folds the log into one read model. Clones share the stats handle.
#[derive(Clone)]
pub struct Projector {
    log: Arc<dyn EventLog>,
    read_model: ReadModel,
    config: ProjectorConfig,
    stats: StatsHandle,
    prefetch: Arc<Mutex<Option<Prefetch>>>,
    cache: Option<Arc<tokio::sync::Mutex<RowCache>>>,
    /// Up to this position the projector reads one event per batch: a batch of several
    /// failed on a value the database refused, and this finds which event it was.
    narrow: Arc<Mutex<Option<Position>>>,
}

/// The next batch, read, decoded and unsealed in the background while the current one is
/// written (after a full batch, the log very likely has more). Used only if the step after
/// starts exactly where it did; otherwise it is dropped and the batch is read again.
struct Prefetch {
    from: Position,
    task: tokio::task::JoinHandle<Result<Vec<Decoded>, ProjectionError>>,
}

impl Drop for Projector {
    fn drop(&mut self) {
        // Clones share the prefetch; the last one cancels a read still in flight.
        if Arc::strong_count(&self.prefetch) == 1 {
            if let Some(p) = self.prefetch.lock().ok().and_then(|mut g| g.take()) {
                p.task.abort();
            }
        }
    }
}

impl Projector {
    /// A projector with the default configuration.
    pub fn new(log: Arc<dyn EventLog>, read_model: ReadModel) -> Self {
        Self::with_config(log, read_model, ProjectorConfig::default())
    }

    /// A projector with `config`.
    pub fn with_config(
        log: Arc<dyn EventLog>,
        read_model: ReadModel,
        config: ProjectorConfig,
    ) -> Self {
        let stats = StatsHandle::default();
        stats.update(|s| s.projector = config.name.clone());
        let cache = (config.write_back_rows > 0).then(|| {
            Arc::new(tokio::sync::Mutex::new(RowCache::new(
                config.write_back_rows,
            )))
        });
        Self {
            log,
            read_model,
            config,
            stats,
            prefetch: Arc::new(Mutex::new(None)),
            cache,
            narrow: Arc::new(Mutex::new(None)),
        }
    }

    /// The shared stats handle.
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// The read model it writes.
    pub fn read_model(&self) -> &ReadModel {
        &self.read_model
    }

    /// Reads one batch after the checkpoint and applies it. Errors are not retried here.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(projector = %self.config.name))]
    pub async fn try_step(&self) -> Result<StepOutcome, ProjectionError> {
        let name = &self.config.name;
        let mut cache = match &self.cache {
            Some(c) => Some(c.lock().await),
            None => None,
        };
        let checkpoint = self.read_model.checkpoint(name).await?;
        if let Some(cache) = cache.as_deref_mut() {
            // No checkpoint: nothing was ever applied to these tables, so they are empty
            // (a write-back projector only fills fresh tables).
            if checkpoint.is_none() {
                cache.set_started_empty(true);
            }
        }
        let from = checkpoint.map_or(0, |p| p + 1);
        let narrowed = {
            let mut narrow = self.narrow.lock().expect("narrow lock");
            if narrow.is_some_and(|until| from > until) {
                *narrow = None;
            }
            narrow.is_some()
        };
        let max = if narrowed {
            1
        } else {
            self.config.batch_size.max(1)
        };
        let prefetched = self.prefetch.lock().expect("prefetch lock").take();
        let events = match prefetched {
            Some(p) if p.from == from => match p.task.await {
                Ok(events) => events?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {
                    read_batch(self.log.clone(), self.config.vault.clone(), from, max).await?
                }
            },
            stale => {
                if let Some(p) = stale {
                    p.task.abort();
                }
                read_batch(self.log.clone(), self.config.vault.clone(), from, max).await?
            }
        };
        if events.is_empty() {
            if let Some(cache) = cache.as_deref_mut().filter(|c| c.is_dirty()) {
                let mut session = self.read_model.begin().await?;
                cache.flush(session.as_mut()).await?;
                session.commit().await?;
                cache.flushed();
            }
            self.stats.update(|s| {
                s.checkpoint = checkpoint;
                s.lag_positions = s
                    .head_position
                    .unwrap_or(0)
                    .saturating_sub(checkpoint.unwrap_or(0));
            });
            return Ok(StepOutcome::CaughtUp);
        }
        if events.len() == max {
            let next = events.last().map_or(from, |d| d.record.position + 1);
            let task = tokio::spawn(read_batch(
                self.log.clone(),
                self.config.vault.clone(),
                next,
                max,
            ));
            *self.prefetch.lock().expect("prefetch lock") = Some(Prefetch { from: next, task });
        }
        let batch_started = Instant::now();
        let written = async {
            let mut session = self.read_model.begin().await?;
            let (outcome, committed) = batch::apply(
                session.as_mut(),
                name,
                checkpoint,
                &events,
                cache.as_deref(),
            )
            .await?;
            if !outcome.raced {
                session.commit().await?;
            }
            Ok::<_, ProjectionError>((outcome, committed))
        }
        .await;
        let (outcome, committed) = match written {
            Ok(done) => done,
            // A value the database refused: find the event (one per batch) and quarantine
            // it. Not with a write-back cache, whose rows are written batches after their
            // events; there the error ends the rebuild.
            Err(e) if e.is_data() && self.config.quarantine && cache.is_none() => {
                let (first, last) = (&events[0].record, &events[events.len() - 1].record);
                if events.len() > 1 {
                    tracing::warn!(projector = %name, from = first.position, to = last.position, cause = %format_chain(&e), read_model = %self.read_model.location(), "the database refused a value of this batch; retrying its events one by one");
                    *self.narrow.lock().expect("narrow lock") = Some(last.position);
                    if let Some(p) = self.prefetch.lock().expect("prefetch lock").take() {
                        p.task.abort();
                    }
                } else {
                    self.quarantine(SkippedEvent::of(first), &format_chain(&e))
                        .await?;
                }
                return Ok(StepOutcome::Processed {
                    events: 0,
                    checkpoint,
                });
            }
            Err(e) => return Err(e),
        };
        if outcome.raced {
            tracing::info!(projector = %name, "another projector advanced the checkpoint; re-reading");
            return Ok(StepOutcome::Processed {
                events: 0,
                checkpoint: None,
            });
        }
        if let Some(metrics) = &self.config.metrics {
            metrics.observe(
                crate::metrics::catalog::PROJECTOR_BATCH_DURATION,
                &[("projector", name)],
                batch_started.elapsed().as_secs_f64(),
            );
        }
        if let Some(cache) = cache.as_deref_mut() {
            committed.finish(cache);
        }
        release(events);

        let head = self.log.head_position().await.map_err(store_error)?;
        let (mut cid, mut alloc) = (0, 0);
        for c in &outcome.conflicts {
            if c.kind == "allocation_collision" {
                alloc += 1;
            } else {
                cid += 1;
            }
            tracing::warn!(
                projector = %name,
                contribution_tracking_id = c.contribution_tracking_id,
                kind = c.kind,
                existing = %c.existing,
                attempted = %c.attempted,
                position = c.position,
                "contribution_tracking change refused"
            );
        }
        self.stats.update(|s| {
            s.checkpoint = outcome.checkpoint;
            s.head_position = head;
            s.lag_positions = head
                .unwrap_or(0)
                .saturating_sub(outcome.checkpoint.unwrap_or(0));
            s.events_total += outcome.processed as u64;
            s.skipped_total += outcome.skipped as u64;
            s.batches_total += 1;
            s.contribution_id_conflicts_total += cid;
            s.allocation_collisions_total += alloc;
        });
        tracing::debug!(projector = %name, events = outcome.processed, checkpoint = ?outcome.checkpoint, "batch committed");
        match outcome.error {
            Some(ProjectionError::EventRejected {
                position,
                stream,
                event_type,
                reason,
                ..
            }) if self.config.quarantine => {
                let event = SkippedEvent {
                    position,
                    stream: &stream,
                    event_type: &event_type,
                };
                self.quarantine(event, &reason).await?;
            }
            Some(error) => {
                tracing::error!(projector = %name, error = %error, "projector stopped at an event it cannot apply");
                self.stats
                    .update(|s| s.last_error = Some(error.to_string()));
                return Err(error);
            }
            None => {}
        }
        Ok(StepOutcome::Processed {
            events: outcome.processed,
            checkpoint: outcome.checkpoint,
        })
    }

    /// Records that the event at `event` cannot be projected because of `cause`, so this
    /// projector (and a rebuild) passes over it, counts it and says so loudly. Recording it
    /// again (a crash came between the record and the checkpoint) changes nothing.
    async fn quarantine(
        &self,
        event: SkippedEvent<'_>,
        cause: &str,
    ) -> Result<(), ProjectionError> {
        let name = &self.config.name;
        let (stream, event_type) = (printable(event.stream), printable(event.event_type));
        let cause = printable(cause);
        let record = SkippedEvent {
            stream: &stream,
            event_type: &event_type,
            ..event
        };
        match self
            .read_model
            .insert_skipped(name, &record, &cause, QUARANTINE)
            .await
        {
            Ok(()) | Err(ProjectionError::SkipRefused { .. }) => {}
            Err(e) => return Err(e),
        }
        self.stats.update(|s| s.quarantined_total += 1);
        tracing::error!(
            projector = %name,
            position = event.position,
            stream = %stream,
            event_type = %event_type,
            cause = %cause,
            "event quarantined: it cannot be projected, the projector passes over it \
             (`ledger verify` lists it; `ledger project --replay-quarantined` after a fix)"
        );
        Ok(())
    }

    /// Catches up to the head and returns, retrying transient failures with back-off (up to
    /// the policy's attempts per step).
    #[tracing::instrument(skip_all, err, fields(projector = %self.config.name))]
    pub async fn run_once(&self) -> Result<CatchUpOutcome, ProjectionError> {
        self.catch_up(None).await
    }

    async fn catch_up(
        &self,
        shutdown: Option<&CancellationToken>,
    ) -> Result<CatchUpOutcome, ProjectionError> {
        let started = Instant::now();
        let (mut events, mut batches, mut retries, mut attempt) = (0u64, 0u64, 0u64, 0u32);
        let mut checkpoint = None;
        loop {
            if shutdown.is_some_and(CancellationToken::is_cancelled) {
                break;
            }
            match self.try_step().await {
                Ok(StepOutcome::Processed {
                    events: n,
                    checkpoint: c,
                }) => {
                    attempt = 0;
                    events += n as u64;
                    batches += 1;
                    checkpoint = c.or(checkpoint);
                }
                Ok(StepOutcome::CaughtUp) => break,
                Err(e) if e.is_transient() => {
                    attempt += 1;
                    retries += 1;
                    let from = self.refresh_lag().await.map_or(0, |p| p + 1);
                    self.stats.update(|s| {
                        s.retries_total += 1;
                        s.last_error = Some(e.to_string());
                    });
                    let limited = shutdown.is_none();
                    if limited && self.config.retry.max_attempts.is_some_and(|m| attempt >= m) {
                        return Err(ProjectionError::RetriesExhausted {
                            attempts: attempt,
                            last: Box::new(e),
                        });
                    }
                    let delay = self.config.retry.delay(attempt);
                    tracing::warn!(
                        projector = %self.config.name,
                        read_model = %self.read_model.location(),
                        from_position = from,
                        error = %format_chain(&e),
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "transient failure; backing off"
                    );
                    match shutdown {
                        Some(token) => {
                            tokio::select! {
                                () = token.cancelled() => break,
                                () = tokio::time::sleep(delay) => {}
                            }
                        }
                        None => tokio::time::sleep(delay).await,
                    }
                }
                Err(e) => {
                    // The caller logs it (`ledger serve`'s job: with the read model's location).
                    self.refresh_lag().await;
                    return Err(e);
                }
            }
        }
        let elapsed = started.elapsed();
        let checkpoint = match checkpoint {
            Some(c) => Some(c),
            None => self.stats.snapshot().checkpoint,
        };
        self.stats.update(|s| {
            // The last run that projected anything: a live projector's catch-ups mostly find
            // nothing new, and would otherwise show a rate of 0 between bursts.
            if events > 0 {
                s.last_run_events = events;
                s.last_run_seconds = elapsed.as_secs_f64();
                s.last_run_events_per_second = if elapsed.as_secs_f64() > 0.0 {
                    events as f64 / elapsed.as_secs_f64()
                } else {
                    0.0
                };
            }
            if events > 0 || retries == 0 {
                s.last_error = None;
            }
        });
        Ok(CatchUpOutcome {
            events,
            batches,
            retries,
            checkpoint,
            elapsed,
        })
    }

    /// After a failed step: reads the log's head (the read model may be away, the log usually
    /// is not) and recomputes lag from the last committed checkpoint, so lag keeps rising
    /// while nothing is projected. Returns that checkpoint.
    async fn refresh_lag(&self) -> Option<Position> {
        match self.log.head_position().await {
            Ok(head) => self.stats.update(|s| {
                s.head_position = head;
                s.lag_positions = head.unwrap_or(0).saturating_sub(s.checkpoint.unwrap_or(0));
            }),
            Err(e) => tracing::warn!(
                projector = %self.config.name,
                error = %format_chain(&e),
                "reading the log's head for the lag failed"
            ),
        }
        self.stats.snapshot().checkpoint
    }

    /// Catches up, then follows the log live until `shutdown` is cancelled. Transient
    /// failures are retried forever; an event it cannot apply ends it with an error.
    #[tracing::instrument(skip_all, err, fields(projector = %self.config.name))]
    pub async fn run_until_stopped(
        &self,
        shutdown: CancellationToken,
    ) -> Result<(), ProjectionError> {
        while !shutdown.is_cancelled() {
            let outcome = self.catch_up(Some(&shutdown)).await?;
            if outcome.events > 0 {
                tracing::info!(projector = %self.config.name, events = outcome.events, checkpoint = ?outcome.checkpoint, "caught up");
            }
            // Wait for the next event: a subscription from just after the checkpoint wakes
            // us as soon as one is committed; the poll interval bounds the wait regardless.
            let from = self.stats.snapshot().checkpoint.map_or(0, |p| p + 1);
            let mut subscription = self.log.subscribe_all(from);
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = subscription.next() => {}
                () = tokio::time::sleep(self.config.idle_poll) => {}
            }
        }
        Ok(())
    }

    /// How far behind the log the projector is: positions, and events counted by reading up
    /// to `cap` of them.
    pub async fn lag(&self, cap: usize) -> Result<Lag, ProjectionError> {
        let checkpoint = self.read_model.checkpoint(&self.config.name).await?;
        let head = self.log.head_position().await.map_err(store_error)?;
        let from = checkpoint.map_or(0, |p| p + 1);
        let behind = self
            .log
            .read_all(from, cap)
            .await
            .map_err(store_error)?
            .len();
        Ok(Lag {
            positions: head.unwrap_or(0).saturating_sub(checkpoint.unwrap_or(0)),
            events: behind as u64,
            capped: behind >= cap,
        })
    }

    /// Records that `operator` told this projector to pass over the event at `position`
    /// (typically the one it stopped at) because of `reason`. The projector then treats it
    /// as applied without changing any row.
    pub async fn skip_event(
        &self,
        position: Position,
        reason: &str,
        operator: &str,
    ) -> Result<(), ProjectionError> {
        let refuse = |reason: &str| ProjectionError::SkipRefused {
            position,
            reason: reason.to_owned(),
        };
        if reason.trim().is_empty() || operator.trim().is_empty() {
            return Err(refuse("a reason and an operator are required"));
        }
        let checkpoint = self.read_model.checkpoint(&self.config.name).await?;
        if checkpoint.is_some_and(|c| position <= c) {
            return Err(refuse("the projector is already past it"));
        }
        let events = self.log.read_all(position, 1).await.map_err(store_error)?;
        let event = events
            .into_iter()
            .next()
            .filter(|e| e.position == position)
            .ok_or_else(|| refuse("no event at this position"))?;
        self.read_model
            .insert_skipped(
                &self.config.name,
                &SkippedEvent::of(&event),
                reason,
                operator,
            )
            .await?;
        tracing::warn!(
            projector = %self.config.name,
            position,
            stream = %event.stream,
            event_type = %event.event_type,
            reason,
            operator,
            "event skipped by operator"
        );
        Ok(())
    }
}
