//! `ledger import legacy`: the legacy `spenden` history into the log, batch by batch.
//!
//! Each batch of source rows (keyset pagination by id) is interpreted (`interpret.rs`), its
//! personal data sealed under per-donation keys as at intake (a scrubbed row carries none, so
//! it gets no key), and appended in **one atomic append** together with the batch's record in
//! the import's own stream [`STREAM`]: the last source id done and the notes of the rows it
//! skipped or imported by a rule. So an import killed at any point has either appended a batch
//! whole, with its record, or nothing of it; the next run resumes after the last record.
//! Event ids derive from the source ids ([`event_id`]), so a batch appended again (the source changed under
//! a resumed import, or a record was lost) is answered from the log instead of duplicated.
//!
//! The source is read one batch ahead of the append, so the legacy database and the log work
//! at the same time.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::Arc;

use prost::Message;
use uuid::Uuid;

use super::interpret::{event_id, interpret, Interpreted, NAMESPACE};
use super::report::{class, Note, Report};
use super::source::{Source, SourceError};
use crate::cli::progress::Progress;
use crate::privacy::{seal_with, PrivacyError, Vault};
use crate::proto::events as ev;
use crate::sequence::{InitializeMode, SequenceError, SequenceGenerator, SequenceName};
use crate::store::{
    Actor, ActorKind, Direction, EventData, EventLog, ExpectedRevision, Metadata, StoreError,
    StreamAppend, StreamStart,
};

/// The import's own stream: one record per batch, one per completed run.
pub const STREAM: &str = "import-spenden";
/// Event type of a batch's record.
pub const BATCH_IMPORTED: &str = "LegacyImportBatchImported.v1";
/// Event type of a completed run's record.
pub const COMPLETED: &str = "LegacyImportCompleted.v1";
/// The `source` of the imported events' metadata.
pub const SOURCE: &str = "ledger import legacy";
/// Default rows per batch.
pub const DEFAULT_BATCH: usize = 1000;

/// Errors of an import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The log failed.
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    /// The key store failed.
    #[error("key store: {0}")]
    Privacy(#[from] PrivacyError),
    /// The sequence generators failed.
    #[error("sequences: {0}")]
    Sequence(#[from] SequenceError),
    /// The import stream holds what this import did not write.
    #[error("{0}")]
    Stream(String),
}

/// The import's actor.
pub fn actor() -> Actor {
    Actor {
        kind: ActorKind::Import,
        id: "legacy-spenden".into(),
    }
}

/// Where the import stands, read from its stream.
#[derive(Debug, Clone, Default)]
struct Resume {
    last_id: u64,
    revision: Option<u64>,
    source: Option<String>,
}

async fn resume(log: &dyn EventLog) -> Result<Resume, ImportError> {
    let last = log
        .read_stream(STREAM, Direction::Backwards, StreamStart::Beginning, 1)
        .await?;
    let Some(last) = last.first() else {
        return Ok(Resume::default());
    };
    let corrupt = || ImportError::Stream(format!("`{STREAM}` holds an event it cannot read"));
    let (last_id, source) = match last.event_type.as_str() {
        BATCH_IMPORTED => {
            let b = ev::LegacyImportBatchImported::decode(last.payload.as_slice())
                .map_err(|_| corrupt())?;
            (b.last_id, b.source)
        }
        COMPLETED => {
            let c = ev::LegacyImportCompleted::decode(last.payload.as_slice())
                .map_err(|_| corrupt())?;
            (c.last_id, c.source)
        }
        _ => return Err(corrupt()),
    };
    Ok(Resume {
        last_id,
        revision: Some(last.revision),
        source: Some(source),
    })
}

fn expected(revision: Option<u64>) -> ExpectedRevision {
    revision.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact)
}

/// The parts of one donation's append: its streams in order, each new.
fn donation_parts(i: &Interpreted) -> Vec<StreamAppend> {
    let correlation = Uuid::new_v5(&NAMESPACE, format!("spenden/{}", i.donation_id).as_bytes());
    let mut parts: Vec<StreamAppend> = Vec::new();
    for e in &i.events {
        let mut metadata = Metadata::new(actor(), SOURCE, correlation);
        metadata.occurred_at = e.occurred_at;
        let data = EventData {
            id: e.id,
            event_type: e.event.event.event_type().to_owned(),
            payload: e.event.event.encode(),
            metadata: metadata.into(),
        };
        match parts.iter_mut().find(|p| p.stream == e.event.stream) {
            Some(p) => p.events.push(data),
            None => parts.push(StreamAppend {
                stream: e.event.stream.clone(),
                expected: ExpectedRevision::NoStream,
                events: vec![data],
            }),
        }
    }
    parts
}

fn record(id: Uuid, event_type: &str, payload: Vec<u8>, revision: Option<u64>) -> StreamAppend {
    let metadata = Metadata::new(actor(), SOURCE, id);
    StreamAppend {
        stream: STREAM.to_owned(),
        expected: expected(revision),
        events: vec![EventData {
            id,
            event_type: event_type.to_owned(),
            payload,
            metadata: metadata.into(),
        }],
    }
}

/// What to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Rows per batch.
    pub batch: usize,
    /// Show a progress line on stderr (only when it is a terminal).
    pub progress: bool,
}

/// The importer: a source, a log, a key store and the sequences to move past imported ids.
pub struct Importer {
    /// The legacy database.
    pub source: Source,
    /// The ledger's log.
    pub log: Arc<dyn EventLog>,
    /// The key store.
    pub vault: Vault,
    /// The sequence generators, moved past the imported donation and payment ids.
    pub sequences: Arc<dyn SequenceGenerator>,
}

/// One batch interpreted and sealed, ready to append.
struct Prepared {
    first_id: u64,
    last_id: u64,
    rows: u32,
    donations: Vec<(u64, Vec<StreamAppend>)>,
    notes: Vec<Note>,
    max_payment: u64,
}

impl Importer {
    /// Imports every source row after the last one done, then checks the whole source for
    /// payments without a donation, and returns the report of every run so far (read back
    /// from the import's stream).
    pub async fn run(&self, options: &ImportOptions) -> Result<Report, ImportError> {
        let log = &*self.log;
        let mut at = resume(log).await?;
        if let Some(recorded) = &at.source {
            if recorded != self.source.location() {
                return Err(ImportError::Stream(format!(
                    "this ledger's `{STREAM}` records an import from {recorded}, not {}; a \
                     second source needs a ledger of its own",
                    self.source.location()
                )));
            }
        }
        let total = self.source.count_after(at.last_id).await?;
        let progress = Progress::with_target(
            "importing",
            Some(total),
            "rows",
            options.progress && std::io::stderr().is_terminal(),
        );
        tracing::info!(
            source = self.source.location(),
            after = at.last_id,
            rows = total,
            "legacy import starts"
        );
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let source = self.source.clone();
        let batch = options.batch.max(1);
        let mut after = at.last_id;
        let reader = tokio::spawn(async move {
            loop {
                let rows = source.batch(after, batch).await;
                let done = match &rows {
                    Ok(rows) => rows.is_empty(),
                    Err(_) => true,
                };
                if let Ok(rows) = &rows {
                    if let Some(last) = rows.last() {
                        after = last.id;
                    }
                }
                if tx.send(rows).await.is_err() || done {
                    break;
                }
            }
        });
        // Interpreting and sealing the next batch overlaps the append of this one.
        let (ptx, mut prx) = tokio::sync::mpsc::channel(2);
        let vault = self.vault.clone();
        let preparer = tokio::spawn(async move {
            while let Some(rows) = rx.recv().await {
                let prepared = match rows {
                    Ok(rows) if rows.is_empty() => break,
                    Ok(rows) => prepare(&vault, &rows).await,
                    Err(e) => Err(e.into()),
                };
                let failed = prepared.is_err();
                if ptx.send(prepared).await.is_err() || failed {
                    break;
                }
            }
        });
        let mut max_payment = 0u64;
        while let Some(prepared) = prx.recv().await {
            let prepared = prepared?;
            max_payment = max_payment.max(prepared.max_payment);
            let n = prepared.rows;
            let last = prepared.last_id;
            at.revision = Some(self.append(prepared, at.revision).await?);
            at.last_id = last;
            progress.inc(u64::from(n));
        }
        preparer.await.ok();
        reader.await.ok();
        progress.finish();
        self.complete(&mut at).await?;
        self.advance_sequences(at.last_id, max_payment).await?;
        read_report(log).await
    }

    /// Appends a batch with its record; returns the import stream's new revision.
    async fn append(&self, p: Prepared, revision: Option<u64>) -> Result<u64, ImportError> {
        let record_of = |donations: u32, events: u32, notes: &[Note]| {
            let mut notes = notes.to_vec();
            notes.sort();
            ev::LegacyImportBatchImported {
                source: self.source.location().to_owned(),
                first_id: p.first_id,
                last_id: p.last_id,
                rows: p.rows,
                donations,
                events,
                notes: notes.iter().map(Note::to_proto).collect(),
            }
            .encode_to_vec()
        };
        let id = event_id(
            p.last_id,
            14,
            0,
            &format!("import/batch/{}-{}", p.first_id, p.last_id),
        );
        let count = |d: &[(u64, Vec<StreamAppend>)]| -> u32 {
            d.iter()
                .flat_map(|(_, parts)| parts.iter().map(|x| x.events.len() as u32))
                .sum()
        };
        let mut parts: Vec<StreamAppend> = p
            .donations
            .iter()
            .flat_map(|(_, parts)| parts.iter().cloned())
            .collect();
        let events = count(&p.donations);
        parts.push(record(
            id,
            BATCH_IMPORTED,
            record_of(p.donations.len() as u32, events, &p.notes),
            revision,
        ));
        match self.log.append_atomic(parts).await {
            Ok(results) => return Ok(results.last().expect("a record").next_expected_revision),
            Err(StoreError::Conflict { stream, .. }) if stream != STREAM => {
                tracing::warn!(%stream, "a stream of the batch exists already; appending its donations one by one");
            }
            Err(e) => return Err(e.into()),
        }
        // Some donation of the batch conflicts with what the log holds: each on its own, the
        // conflicting ones reported.
        let mut notes = p.notes.clone();
        let mut done = Vec::new();
        for (donation, parts) in &p.donations {
            match self.log.append_atomic(parts.clone()).await {
                Ok(_) => done.push((*donation, parts.clone())),
                Err(StoreError::Conflict { stream, .. })
                | Err(StoreError::DuplicateEventId {
                    existing_stream: stream,
                    ..
                }) => notes.push(Note::skipped(
                    *donation,
                    class::ALREADY_IN_LEDGER,
                    format!("`{stream}` already holds other events"),
                )),
                Err(e) => return Err(e.into()),
            }
        }
        let events = count(&done);
        let results = self
            .log
            .append_atomic(vec![record(
                id,
                BATCH_IMPORTED,
                record_of(done.len() as u32, events, &notes),
                revision,
            )])
            .await?;
        Ok(results[0].next_expected_revision)
    }

    /// Checks the whole source for payments without a donation and records the run's end.
    async fn complete(&self, at: &mut Resume) -> Result<(), ImportError> {
        let memberships = self.source.has_table("request").await?;
        let mut notes = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = self
                .source
                .orphan_payments(after, 10_000, memberships)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            for (id, method) in &page {
                notes.push(Note::payment(
                    id.unsigned_abs(),
                    class::PAYMENT_WITHOUT_DONATION,
                    format!("payment {id} ({method}) belongs to no donation"),
                ));
            }
        }
        let membership_rows = self.source.membership_rows().await?;
        let digest = format!(
            "import/completed/{}/{}/{}",
            at.last_id,
            notes.len(),
            notes.last().map_or(0, |n: &Note| n.id)
        );
        let id = event_id(at.last_id, 13, 0, &digest);
        let payload = ev::LegacyImportCompleted {
            source: self.source.location().to_owned(),
            last_id: at.last_id,
            notes: notes.iter().map(Note::to_proto).collect(),
            membership_rows,
        }
        .encode_to_vec();
        let results = self
            .log
            .append_atomic(vec![record(id, COMPLETED, payload, at.revision)])
            .await?;
        at.revision = Some(results[0].next_expected_revision);
        Ok(())
    }

    /// Moves the donation and payment sequences past the imported ids, so the intake never
    /// hands one of them out again.
    async fn advance_sequences(&self, donation: u64, payment: u64) -> Result<(), ImportError> {
        for (name, highest) in [
            (SequenceName::Donation, donation),
            (SequenceName::Payment, payment),
        ] {
            if highest == 0 {
                continue;
            }
            let current = self.sequences.current(name).await?;
            if current.is_none_or(|c| c < highest) {
                self.sequences
                    .initialize(name, highest, InitializeMode::ForwardOnly)
                    .await?;
                tracing::info!(sequence = %name, next = highest + 1, "sequence moved past the imported ids");
            }
        }
        Ok(())
    }
}

/// Interprets a batch, creates the keys its personal data needs and seals it.
async fn prepare(
    vault: &Vault,
    rows: &[super::source::SourceRow],
) -> Result<Prepared, ImportError> {
    let mut notes = Vec::new();
    let mut interpreted = Vec::with_capacity(rows.len());
    let mut streams_used: HashMap<String, u64> = HashMap::new();
    let mut max_payment = 0;
    for row in rows {
        match interpret(row) {
            Ok(mut i) => {
                // Two donations of one batch naming one payment: the second is refused
                // (across batches the log's expected revision refuses it).
                if let Some(other) = i
                    .events
                    .iter()
                    .find_map(|e| streams_used.get(&e.event.stream))
                {
                    notes.push(Note::skipped(
                        i.donation_id,
                        class::ALREADY_IN_LEDGER,
                        format!("its payment is also the payment of donation {other}"),
                    ));
                    continue;
                }
                for e in &i.events {
                    streams_used.insert(e.event.stream.clone(), i.donation_id);
                }
                if let Some(crate::domain::DomainEvent::DonationCreated(c)) =
                    i.events.first().map(|e| &e.event.event)
                {
                    max_payment = max_payment.max(c.payment_id);
                }
                notes.append(&mut i.notes);
                interpreted.push(i);
            }
            Err(note) => notes.push(note),
        }
    }
    let needing: Vec<u64> = interpreted
        .iter_mut()
        .filter_map(|i| {
            let personal = i
                .events
                .iter_mut()
                .any(|e| e.event.event.has_clear_personal_data());
            personal.then_some(i.donation_id)
        })
        .collect();
    let keys = vault.keys().create_many(&needing).await?;
    let mut donations = Vec::with_capacity(interpreted.len());
    for mut i in interpreted {
        if let Some(key) = keys.get(&i.donation_id) {
            for e in &mut i.events {
                seal_with(std::slice::from_mut(&mut e.event.event), i.donation_id, key);
            }
        } else if needing.contains(&i.donation_id) {
            // A destroyed key: the ledger scrubbed this donation after an earlier import.
            notes.push(Note::skipped(
                i.donation_id,
                class::ALREADY_IN_LEDGER,
                "its key was destroyed (scrubbed in the ledger)",
            ));
            continue;
        }
        donations.push((i.donation_id, donation_parts(&i)));
    }
    Ok(Prepared {
        first_id: rows.first().map_or(0, |r| r.id),
        last_id: rows.last().map_or(0, |r| r.id),
        rows: rows.len() as u32,
        donations,
        notes,
        max_payment,
    })
}

/// The report of every import into `log` so far, from its stream: the sums and notes of every
/// batch, and the notes of the latest completed run.
pub async fn read_report(log: &dyn EventLog) -> Result<Report, ImportError> {
    let mut report = Report::default();
    let mut from = 0u64;
    let mut completed_notes = Vec::new();
    let mut seen: HashSet<(String, u64, String)> = HashSet::new();
    loop {
        let page = log
            .read_stream(
                STREAM,
                Direction::Forwards,
                StreamStart::Revision(from),
                512,
            )
            .await?;
        let Some(last) = page.last() else { break };
        from = last.revision + 1;
        let done = page.len() < 512;
        for e in page {
            let corrupt = || ImportError::Stream(format!("`{STREAM}` holds an unreadable event"));
            match e.event_type.as_str() {
                BATCH_IMPORTED => {
                    let b = ev::LegacyImportBatchImported::decode(e.payload.as_slice())
                        .map_err(|_| corrupt())?;
                    report.rows += u64::from(b.rows);
                    report.donations += u64::from(b.donations);
                    report.events += u64::from(b.events);
                    report.last_id = report.last_id.max(b.last_id);
                    for n in &b.notes {
                        if seen.insert((n.table.clone(), n.id, n.class.clone())) {
                            report.notes.push(Note::from_proto(n));
                        }
                    }
                }
                COMPLETED => {
                    let c = ev::LegacyImportCompleted::decode(e.payload.as_slice())
                        .map_err(|_| corrupt())?;
                    completed_notes = c.notes.iter().map(Note::from_proto).collect();
                    report.membership_rows = c.membership_rows;
                }
                _ => return Err(corrupt()),
            }
        }
        if done {
            break;
        }
    }
    report.notes.extend(completed_notes);
    report.notes.sort();
    Ok(report)
}
