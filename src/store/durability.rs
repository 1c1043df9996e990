//! The embedded log's syncer: the thread that fsyncs the WAL file after the writer's commits,
//! then acknowledges them, and that makes readers wait for an fsync before they hand out an
//! event that may not be on disk yet.
//!
//! The writer's connection commits with `synchronous=NORMAL` (the WAL is written, not
//! fsynced) and passes each committed group here. One `fdatasync` of the WAL file makes every
//! frame written before it durable, so the syncer takes all groups (and waiting readers) that
//! queued up during the previous fsync and covers them with the next one, while the writer
//! goes on committing. Nothing is acknowledged before the fsync that covers it returned; if an
//! fsync fails (or the writer hits an I/O error) the log stops acknowledging anything: the
//! state of the file is unknown, as after any failed fsync, and a later fsync on a new file
//! descriptor could succeed without the lost pages. It leaves a marker file beside the log
//! that makes every later open refuse until an operator has checked the disk and removed it.
//!
//! The ordering itself is watched by [`Probe`], a handful of relaxed atomic counters that are
//! always on (tests read them through `SqliteEventLog::durability_probe`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use super::{AppendResult, Position, StoreError};

/// The answer an append waits for.
pub(super) type Reply = oneshot::Sender<Result<Vec<AppendResult>, StoreError>>;

/// Work for the syncer.
pub(super) enum SyncJob {
    /// A group the writer committed (or answered from rows already written): acknowledged
    /// after the next fsync. `head` is the last position it wrote, if it wrote any.
    Group {
        head: Option<Position>,
        replies: Vec<(Reply, Result<Vec<AppendResult>, StoreError>)>,
    },
    /// A reader that read up to `position`: woken after the next fsync.
    Wait {
        position: Position,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// What the ordering probe counted since the log was opened.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeCounts {
    /// fsyncs of the WAL the syncer completed (not counting the one at start).
    pub fsyncs: u64,
    /// Committed groups the syncer acknowledged.
    pub groups: u64,
    /// Appends acknowledged as successful.
    pub appends: u64,
    /// Successful acknowledgements of a position no completed fsync covered yet: always 0
    /// unless the ordering is broken.
    pub violations: u64,
    /// The highest position a completed fsync covered.
    pub fsynced: u64,
}

/// The ordering probe: checks, on the path every successful acknowledgement takes, that the
/// acknowledged position was covered by an fsync that had completed. Independent of the
/// syncer's own bookkeeping (`Mark::durable`): the writer records the highest position it has
/// seen in the file (`written`) before handing a group over, the syncer snapshots `written`
/// before each fsync and publishes the snapshot as `fsynced` once the fsync returned. Always
/// on, and cheap enough to be: relaxed atomics only, two per group on the writer, three per
/// fsync on the syncer, one load and compare per acknowledged append (next to a channel send
/// and an fsync of about a millisecond).
#[derive(Debug, Default)]
struct Probe {
    written: AtomicU64,
    fsynced: AtomicU64,
    fsyncs: AtomicU64,
    groups: AtomicU64,
    appends: AtomicU64,
    violations: AtomicU64,
}

impl Probe {
    /// A probe for a log whose positions up to `durable` are on disk.
    fn starting_at(durable: Position) -> Self {
        Self {
            written: AtomicU64::new(durable),
            fsynced: AtomicU64::new(durable),
            ..Self::default()
        }
    }

    /// The writer saw every position up to `position` in the file (it committed or read it).
    fn written(&self, position: Position) {
        self.written.fetch_max(position, Ordering::Relaxed);
    }

    /// Before an fsync: what it is going to cover.
    fn before_fsync(&self) -> Position {
        self.written.load(Ordering::Relaxed)
    }

    /// After a successful fsync that started when `covered` was written.
    fn fsynced(&self, covered: Position) {
        self.fsynced.fetch_max(covered, Ordering::Relaxed);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends `outcome` to `reply`, checking a success against the fsynced position first.
    fn deliver(&self, reply: Reply, outcome: Result<Vec<AppendResult>, StoreError>) {
        if let Ok(results) = &outcome {
            let acknowledged = results.iter().map(|r| r.position).max().unwrap_or(0);
            if acknowledged > self.fsynced.load(Ordering::Relaxed) {
                self.violations.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    acknowledged,
                    "an append was acknowledged before the fsync that covers it"
                );
            }
            self.appends.fetch_add(1, Ordering::Relaxed);
        }
        let _ = reply.send(outcome);
    }

    fn counts(&self) -> ProbeCounts {
        ProbeCounts {
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            violations: self.violations.load(Ordering::Relaxed),
            fsynced: self.fsynced.load(Ordering::Relaxed),
        }
    }
}

/// What the syncer has made durable, shared with the writer and the readers.
#[derive(Debug)]
struct Mark {
    /// Every position up to this one is known to be on disk.
    durable: AtomicU64,
    /// Set when an fsync failed; from then on nothing is acknowledged.
    failed: OnceLock<String>,
    /// The marker file written on failure.
    marker: PathBuf,
    /// The ordering probe.
    probe: Probe,
}

impl Mark {
    /// Records a failure (the first one wins) and leaves the marker file.
    fn fail(&self, reason: &str) {
        if self.failed.set(reason.to_owned()).is_ok() {
            tracing::error!(%reason, marker = %self.marker.display(), "event log cannot make writes durable; no further writes are acknowledged");
            if let Err(e) = std::fs::write(&self.marker, format!("{reason}\n")) {
                tracing::error!(error = %e, marker = %self.marker.display(), "cannot write the failure marker");
            }
        }
    }
}

/// The file beside the log file `db` whose name is `db`'s plus `suffix` (as SQLite names its
/// WAL: `-wal`).
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The marker file an fsync failure leaves beside the log file at `db`.
fn failure_marker(db: &Path) -> PathBuf {
    beside(db, "-fsync-failed")
}

/// Refuses a log whose earlier run could not make its writes durable.
pub(super) fn check_marker(db: &Path) -> Result<(), StoreError> {
    let marker = failure_marker(db);
    match std::fs::read_to_string(&marker) {
        Ok(reason) => Err(StoreError::Corrupt(format!(
            "an earlier run could not make its writes durable ({}); check the disk and the log \
             (`ledger verify`), then remove {} to open it again",
            reason.trim(),
            marker.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Corrupt(format!(
            "cannot read {}: {e}",
            marker.display()
        ))),
    }
}

/// A handle on the syncer (cheap to clone). The syncer ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Durability {
    mark: Arc<Mark>,
    jobs: flume::Sender<SyncJob>,
}

impl Durability {
    /// Starts the syncer for the log file `db` (the name SQLite itself uses: symbolic links
    /// resolved), whose WAL is `db` + `-wal`. The WAL must exist (the writer's first read creates it);
    /// it is fsynced once here, so whatever an earlier process committed without reaching the
    /// disk is durable before anyone reads it, and every position up to `durable` is then on
    /// disk. `head` is published after each fsync that covered new commits.
    pub(super) fn start(
        db: &Path,
        durable: Position,
        head: watch::Sender<Position>,
    ) -> Result<(Self, SyncerThread), StoreError> {
        let wal = beside(db, "-wal");
        let mut file = None;
        sync_wal(&wal, &mut file).map_err(StoreError::Corrupt)?;
        let mark = Arc::new(Mark {
            durable: AtomicU64::new(durable),
            failed: OnceLock::new(),
            marker: failure_marker(db),
            probe: Probe::starting_at(durable),
        });
        let (jobs, rx) = flume::unbounded();
        let thread_mark = mark.clone();
        let thread = std::thread::Builder::new()
            .name("event-log-syncer".into())
            .spawn(move || {
                failing_on_panic(&thread_mark, || {
                    run_syncer(&wal, file, &rx, &thread_mark, &head)
                })
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the syncer thread: {e}")))?;
        let thread = SyncerThread {
            thread,
            mark: mark.clone(),
        };
        Ok((Self { mark, jobs }, thread))
    }

    /// Stops acknowledging writes (an I/O error the writer saw).
    pub(super) fn fail(&self, reason: &str) {
        self.mark.fail(reason);
    }

    /// Why the log cannot acknowledge writes any more, if an fsync failed.
    pub(super) fn failure(&self) -> Option<StoreError> {
        self.mark.failed.get().map(|e| failed(e.as_str()))
    }

    /// What the ordering probe counted.
    pub(super) fn probe(&self) -> ProbeCounts {
        self.mark.probe.counts()
    }

    /// Hands a committed group to the syncer.
    pub(super) fn acknowledge(
        &self,
        head: Option<Position>,
        replies: Vec<(Reply, Result<Vec<AppendResult>, StoreError>)>,
    ) {
        // Everything this group answers with (its own rows, or rows it found already
        // written) is in the file now: the next fsync to start covers it.
        let seen = replies
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .flatten()
            .map(|r| r.position)
            .chain(head)
            .max();
        if let Some(seen) = seen {
            self.mark.probe.written(seen);
        }
        let sent = self.jobs.send(SyncJob::Group { head, replies });
        // Only when the syncer thread died: nothing can be confirmed durable.
        if let Err(flume::SendError(SyncJob::Group { replies, .. })) = sent {
            for (reply, _) in replies {
                let _ = reply.send(Err(StoreError::Closed));
            }
        }
    }

    /// Returns once every position up to `position` is on disk (at once if known to be).
    pub(super) async fn ensure(&self, position: Position) -> Result<(), StoreError> {
        if position <= self.mark.durable.load(Ordering::Acquire) {
            return Ok(());
        }
        let (done, rx) = oneshot::channel();
        self.jobs
            .send_async(SyncJob::Wait { position, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// The syncer's thread.
#[derive(Debug)]
pub(super) struct SyncerThread {
    thread: std::thread::JoinHandle<()>,
    mark: Arc<Mark>,
}

impl SyncerThread {
    /// Waits for the syncer to end (it ends once every [`Durability`] handle is dropped) and
    /// tells whether the log failed.
    pub(super) fn join(self) -> bool {
        let _ = self.thread.join();
        self.mark.failed.get().is_some()
    }
}

/// Runs the syncer's loop `f`; if it panics, the log fails as after a failed fsync (marker
/// file included): the syncer may have died between an fsync and its acknowledgements, and
/// without it nothing the writer commits would ever be made durable.
fn failing_on_panic(mark: &Mark, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        mark.fail(&format!("the syncer thread panicked: {what}"));
    }
}

fn failed(reason: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the event log cannot make writes durable ({reason}); reopen it after fixing the disk"
    ))
}

/// fsyncs (data only) the WAL file at `wal`, opening it into `file` on first use (and again
/// if the file at `wal` was replaced). The WAL exists as long as the writer's connection is
/// open, so a missing one is an error, never "nothing to sync".
fn sync_wal(wal: &Path, file: &mut Option<File>) -> Result<(), String> {
    if file.as_ref().is_some_and(|f| !same_file(wal, f)) {
        *file = None;
    }
    if file.is_none() {
        *file = Some(File::open(wal).map_err(|e| format!("cannot open {}: {e}", wal.display()))?);
    }
    let f = file.as_ref().expect("opened above");
    f.sync_data()
        .map_err(|e| format!("fsync of {} failed: {e}", wal.display()))
}

/// Whether `file` is still the file at `path` (SQLite deletes the WAL when the last connection
/// closes; another process may then create a new one).
#[cfg(unix)]
fn same_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_path: &Path, _file: &File) -> bool {
    true
}

fn run_syncer(
    wal: &Path,
    mut file: Option<File>,
    jobs: &flume::Receiver<SyncJob>,
    mark: &Mark,
    head: &watch::Sender<Position>,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        let started = Instant::now();
        let covering = mark.probe.before_fsync();
        let synced = match mark.failed.get() {
            Some(reason) => Err(reason.clone()),
            None => sync_wal(wal, &mut file),
        };
        if synced.is_ok() {
            mark.probe.fsynced(covering);
            crate::metrics::observe_event_log(
                crate::metrics::catalog::FSYNC_DURATION,
                started.elapsed(),
            );
        }
        let mut covered = 0;
        let mut new_head = None;
        for job in &batch {
            match job {
                SyncJob::Group { head: Some(h), .. } => {
                    covered = covered.max(*h);
                    new_head = Some(*h);
                }
                SyncJob::Group { head: None, .. } => {}
                SyncJob::Wait { position, .. } => covered = covered.max(*position),
            }
        }
        match &synced {
            Ok(()) => {
                mark.durable.fetch_max(covered, Ordering::AcqRel);
                if let Some(h) = new_head {
                    head.send_replace(h);
                }
            }
            Err(reason) => {
                mark.fail(reason);
                // Wakes live subscriptions, which then end with the failure.
                head.send_modify(|_| {});
            }
        }
        tracing::trace!(
            jobs = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "event-log WAL fsynced"
        );
        for job in batch {
            match job {
                SyncJob::Group { replies, .. } => {
                    mark.probe.groups.fetch_add(1, Ordering::Relaxed);
                    for (reply, outcome) in replies {
                        let outcome = match &synced {
                            Ok(()) => outcome,
                            Err(reason) => Err(failed(reason)),
                        };
                        mark.probe.deliver(reply, outcome);
                    }
                }
                SyncJob::Wait { done, .. } => {
                    let _ = done.send(synced.clone().map_err(|r| failed(&r)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        durability: &Durability,
        head: Option<Position>,
    ) -> oneshot::Receiver<Result<Vec<AppendResult>, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let result = AppendResult {
            next_expected_revision: 0,
            position: head.unwrap_or(0),
        };
        durability.acknowledge(head, vec![(reply, Ok(vec![result]))]);
        rx
    }

    #[tokio::test]
    async fn a_group_is_acknowledged_and_published_after_the_wal_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("events.sqlite-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let (head_tx, mut head_rx) = watch::channel(3);
        let db = dir.path().join("events.sqlite");
        let (durability, thread) = Durability::start(&db, 3, head_tx).unwrap();
        // Known durable: no round trip to the syncer.
        durability.ensure(3).await.unwrap();
        let acked = group(&durability, Some(7)).await.unwrap().unwrap();
        assert_eq!(acked[0].position, 7);
        // The head was published before the acknowledgement.
        assert_eq!(*head_rx.borrow_and_update(), 7);
        assert!(durability.mark.durable.load(Ordering::Acquire) >= 7);
        // A reader that saw a position beyond the durable one waits for an fsync.
        durability.ensure(9).await.unwrap();
        assert_eq!(durability.mark.durable.load(Ordering::Acquire), 9);
        let probe = durability.probe();
        assert_eq!(
            (probe.groups, probe.appends, probe.violations, probe.fsynced),
            (1, 1, 0, 7),
            "{probe:?}"
        );
        // One fsync for the group, one for the reader (it saw no newer write: the probe does
        // not count a reader's position as covered).
        assert_eq!(probe.fsyncs, 2, "{probe:?}");
        drop(durability);
        assert!(!thread.join(), "the log did not fail");
    }

    #[test]
    fn a_missing_wal_is_an_error_not_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (head_tx, _head_rx) = watch::channel(0);
        let db = dir.path().join("events.sqlite");
        let err = Durability::start(&db, 0, head_tx).unwrap_err();
        assert!(err.to_string().contains("cannot open"), "{err}");
    }

    #[test]
    fn a_panic_of_the_syncer_fails_the_log_and_leaves_the_marker() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.sqlite");
        let mark = Mark {
            durable: AtomicU64::new(0),
            failed: OnceLock::new(),
            marker: failure_marker(&db),
            probe: Probe::default(),
        };
        failing_on_panic(&mark, || {});
        assert!(mark.failed.get().is_none(), "a normal end is no failure");
        check_marker(&db).unwrap();
        failing_on_panic(&mark, || panic!("injected"));
        assert!(mark.failed.get().unwrap().contains("injected"));
        let refused = check_marker(&db).unwrap_err().to_string();
        assert!(refused.contains("panicked: injected"), "{refused}");
    }

    /// `/dev/null` cannot be fsynced (EINVAL): the stand-in for a disk that fails once the
    /// syncer runs. Nothing is acknowledged any more, and the marker refuses later opens.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn after_a_failed_fsync_nothing_is_acknowledged_and_the_log_stays_closed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.sqlite");
        let wal = dir.path().join("events.sqlite-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let (head_tx, mut head_rx) = watch::channel(0);
        let (durability, _thread) = Durability::start(&db, 0, head_tx).unwrap();
        head_rx.borrow_and_update();
        check_marker(&db).unwrap();
        // Swap the WAL for a file that cannot be fsynced (the syncer reopens a replaced file).
        std::fs::remove_file(&wal).unwrap();
        std::os::unix::fs::symlink("/dev/null", &wal).unwrap();
        let err = group(&durability, Some(1)).await.unwrap().unwrap_err();
        assert!(
            err.to_string().contains("cannot make writes durable"),
            "{err}"
        );
        assert_eq!(*head_rx.borrow(), 0, "nothing durable was published");
        assert!(head_rx.has_changed().unwrap(), "subscriptions are woken");
        assert!(durability.failure().is_some());
        assert!(durability.ensure(1).await.is_err());
        // Later groups fail too, even if the disk recovered.
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"frames").unwrap();
        assert!(group(&durability, Some(2)).await.unwrap().is_err());
        let refused = check_marker(&db).unwrap_err().to_string();
        assert!(
            refused.contains("fsync") && refused.contains("remove"),
            "{refused}"
        );
    }
}
