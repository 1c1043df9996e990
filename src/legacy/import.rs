//! `ledger import legacy`: the legacy `spenden` history into the log, batch by batch, then the
//! membership applications of `request` the same way.
//!
//! Each batch of source rows (keyset pagination by id) is interpreted (`interpret.rs` for
//! `spenden`, `request.rs` for `request`), its personal data sealed under the row's own key as
//! at intake (a donation's id, an application's `membership_key_id`; a scrubbed row carries
//! none, so it gets no key), and appended in **one atomic append** together with the batch's
//! record in the table's own import stream ([`STREAM`] for `spenden`, [`REQUEST_STREAM`] for
//! `request`): the last source id done and the notes of the rows it skipped or imported by a
//! rule. So an import killed at any point has either appended a batch whole, with its record,
//! or nothing of it; the next run resumes after the last record of each stream. Event ids
//! derive from the source ids ([`event_id`]), so a batch appended again (the source changed
//! under a resumed import, or a record was lost) is answered from the log instead of
//! duplicated.
//!
//! The source is read one batch ahead of the append, so the legacy database and the log work
//! at the same time. At the end the donation, payment and membership sequences move past the
//! imported ids.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::Arc;

use prost::Message;
use uuid::Uuid;

use super::interpret::{event_id, interpret, ImportEvent, Interpreted, NAMESPACE};
use super::report::{class, Note, Report};
use super::request::{interpret_request, InterpretedRequest};
use super::source::{Source, SourceError, SourceRequest, SourceRow};
use crate::cli::progress::Progress;
use crate::privacy::{membership_key_id, seal_with, PrivacyError, Vault};
use crate::proto::events as ev;
use crate::sequence::{InitializeMode, SequenceError, SequenceGenerator, SequenceName};
use crate::store::{
    Actor, ActorKind, Direction, EventData, EventLog, ExpectedRevision, Metadata, StoreError,
    StreamAppend, StreamStart,
};

/// The import's own stream for `spenden`: one record per batch, one per completed run.
pub const STREAM: &str = "import-spenden";
/// The import's own stream for `request` (membership applications), kept like [`STREAM`].
pub const REQUEST_STREAM: &str = "import-request";
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
    Table::Spenden.actor()
}

/// The legacy table an import run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// Donations.
    Spenden,
    /// Membership applications.
    Request,
}

impl Table {
    /// The table's name, as its notes name it.
    fn name(self) -> &'static str {
        match self {
            Self::Spenden => "spenden",
            Self::Request => "request",
        }
    }

    /// The import stream of the table.
    fn stream(self) -> &'static str {
        match self {
            Self::Spenden => STREAM,
            Self::Request => REQUEST_STREAM,
        }
    }

    fn actor(self) -> Actor {
        Actor {
            kind: ActorKind::Import,
            id: format!("legacy-{}", self.name()),
        }
    }

    /// A note that row `id` of this table was skipped.
    fn skipped(self, id: u64, class: &str, detail: impl Into<String>) -> Note {
        match self {
            Self::Spenden => Note::skipped(id, class, detail),
            Self::Request => Note::request(id, class, false, detail),
        }
    }
}

/// A batch of source rows of either table.
enum Rows {
    Spenden(Vec<SourceRow>),
    Request(Vec<SourceRequest>),
}

impl Rows {
    /// The ids of the batch's rows, in order.
    fn ids(&self) -> Vec<u64> {
        match self {
            Self::Spenden(r) => r.iter().map(|r| r.id).collect(),
            Self::Request(r) => r.iter().map(|r| r.id).collect(),
        }
    }
}

/// One source row interpreted, whichever its table: what the importer seals and appends.
struct Unit {
    /// The source id (the donation or membership id).
    id: u64,
    /// The key its personal data is sealed with.
    key_id: u64,
    /// The payment it names.
    payment_id: u64,
    events: Vec<ImportEvent>,
    notes: Vec<Note>,
}

impl From<Interpreted> for Unit {
    fn from(i: Interpreted) -> Self {
        let payment_id = match i.events.first().map(|e| &e.event.event) {
            Some(crate::domain::DomainEvent::DonationCreated(c)) => c.payment_id,
            _ => 0,
        };
        Self {
            id: i.donation_id,
            key_id: i.donation_id,
            payment_id,
            events: i.events,
            notes: i.notes,
        }
    }
}

impl From<InterpretedRequest> for Unit {
    fn from(i: InterpretedRequest) -> Self {
        Self {
            id: i.membership_id,
            key_id: membership_key_id(i.membership_id),
            payment_id: i.payment_id,
            events: i.events,
            notes: i.notes,
        }
    }
}

/// Where the import stands, read from its stream.
#[derive(Debug, Clone, Default)]
struct Resume {
    last_id: u64,
    revision: Option<u64>,
    source: Option<String>,
}

async fn resume(log: &dyn EventLog, stream: &str) -> Result<Resume, ImportError> {
    let last = log
        .read_stream(stream, Direction::Backwards, StreamStart::Beginning, 1)
        .await?;
    let Some(last) = last.first() else {
        return Ok(Resume::default());
    };
    let corrupt = || ImportError::Stream(format!("`{stream}` holds an event it cannot read"));
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

/// The parts of one row's append: its streams in order, each new.
fn unit_parts(table: Table, i: &Unit) -> Vec<StreamAppend> {
    let correlation = Uuid::new_v5(&NAMESPACE, format!("{}/{}", table.name(), i.id).as_bytes());
    let mut parts: Vec<StreamAppend> = Vec::new();
    for e in &i.events {
        let mut metadata = Metadata::new(table.actor(), SOURCE, correlation);
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

fn record(
    table: Table,
    id: Uuid,
    event_type: &str,
    payload: Vec<u8>,
    revision: Option<u64>,
) -> StreamAppend {
    let metadata = Metadata::new(table.actor(), SOURCE, id);
    StreamAppend {
        stream: table.stream().to_owned(),
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
    /// Import the membership applications (`request`) after the donations.
    pub memberships: bool,
}

/// The importer: a source, a log, a key store and the sequences to move past imported ids.
pub struct Importer {
    /// The legacy database.
    pub source: Source,
    /// The ledger's log.
    pub log: Arc<dyn EventLog>,
    /// The key store.
    pub vault: Vault,
    /// The sequence generators, moved past the imported donation, payment and membership
    /// ids.
    pub sequences: Arc<dyn SequenceGenerator>,
}

/// One batch interpreted and sealed, ready to append.
struct Prepared {
    first_id: u64,
    last_id: u64,
    rows: u32,
    /// Each imported row's id and the parts of its append.
    donations: Vec<(u64, Vec<StreamAppend>)>,
    notes: Vec<Note>,
    max_payment: u64,
}

impl Importer {
    /// Imports every `spenden` row after the last one done, checks the whole source for
    /// payments without a donation, then (with `options.memberships`, when the source has a
    /// `request` table) every `request` row after the last one done; moves the sequences past
    /// the imported ids and returns the report of every run so far (read back from the
    /// import's streams).
    pub async fn run(&self, options: &ImportOptions) -> Result<Report, ImportError> {
        let donations = self.run_table(Table::Spenden, options).await?;
        let mut memberships = (0, 0);
        if options.memberships && self.source.has_table("request").await? {
            memberships = self.run_table(Table::Request, options).await?;
        }
        self.advance_sequences(&[
            (SequenceName::Donation, donations.0),
            (SequenceName::Payment, donations.1.max(memberships.1)),
            (SequenceName::Membership, memberships.0),
        ])
        .await?;
        read_report(&*self.log).await
    }

    /// Imports the rows of `table` after the last one its stream records and records the run's
    /// end; returns the last source id done and the highest payment id imported.
    async fn run_table(
        &self,
        table: Table,
        options: &ImportOptions,
    ) -> Result<(u64, u64), ImportError> {
        let log = &*self.log;
        let stream = table.stream();
        let mut at = resume(log, stream).await?;
        if let Some(recorded) = &at.source {
            if recorded != self.source.location() {
                return Err(ImportError::Stream(format!(
                    "this ledger's `{stream}` records an import from {recorded}, not {}; a \
                     second source needs a ledger of its own",
                    self.source.location()
                )));
            }
        }
        let total = match table {
            Table::Spenden => self.source.count_after(at.last_id).await?,
            Table::Request => self.source.request_count_after(at.last_id).await?,
        };
        let progress = Progress::with_target(
            match table {
                Table::Spenden => "importing",
                Table::Request => "importing memberships",
            },
            Some(total),
            "rows",
            options.progress && std::io::stderr().is_terminal(),
        );
        tracing::info!(
            source = self.source.location(),
            table = table.name(),
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
                let rows = match table {
                    Table::Spenden => source.batch(after, batch).await.map(Rows::Spenden),
                    Table::Request => source.request_batch(after, batch).await.map(Rows::Request),
                };
                let ids = rows.as_ref().map(Rows::ids).unwrap_or_default();
                let done = ids.is_empty();
                if let Some(last) = ids.last() {
                    after = *last;
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
                    Ok(rows) if rows.ids().is_empty() => break,
                    Ok(rows) => prepare(&vault, table, &rows).await,
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
            at.revision = Some(self.append(table, prepared, at.revision).await?);
            at.last_id = last;
            progress.inc(u64::from(n));
        }
        preparer.await.ok();
        reader.await.ok();
        progress.finish();
        self.complete(table, &mut at).await?;
        Ok((at.last_id, max_payment))
    }

    /// Appends a batch with its record; returns the import stream's new revision.
    async fn append(
        &self,
        table: Table,
        p: Prepared,
        revision: Option<u64>,
    ) -> Result<u64, ImportError> {
        let record_of = |imported: u32, events: u32, notes: &[Note]| {
            let mut notes = notes.to_vec();
            notes.sort();
            let (donations, memberships) = match table {
                Table::Spenden => (imported, 0),
                Table::Request => (0, imported),
            };
            ev::LegacyImportBatchImported {
                source: self.source.location().to_owned(),
                first_id: p.first_id,
                last_id: p.last_id,
                rows: p.rows,
                donations,
                events,
                notes: notes.iter().map(Note::to_proto).collect(),
                memberships,
            }
            .encode_to_vec()
        };
        let name = match table {
            Table::Spenden => format!("import/batch/{}-{}", p.first_id, p.last_id),
            Table::Request => format!("import-request/batch/{}-{}", p.first_id, p.last_id),
        };
        let id = event_id(p.last_id, 14, 0, &name);
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
            table,
            id,
            BATCH_IMPORTED,
            record_of(p.donations.len() as u32, events, &p.notes),
            revision,
        ));
        match self.log.append_atomic(parts).await {
            Ok(results) => return Ok(results.last().expect("a record").next_expected_revision),
            Err(StoreError::Conflict { stream, .. }) if stream != table.stream() => {
                tracing::warn!(%stream, "a stream of the batch exists already; appending its rows one by one");
            }
            Err(e) => return Err(e.into()),
        }
        // Some row of the batch conflicts with what the log holds: each on its own, the
        // conflicting ones reported.
        let mut notes = p.notes.clone();
        let mut done = Vec::new();
        for (row, parts) in &p.donations {
            match self.log.append_atomic(parts.clone()).await {
                Ok(_) => done.push((*row, parts.clone())),
                Err(StoreError::Conflict { stream, .. })
                | Err(StoreError::DuplicateEventId {
                    existing_stream: stream,
                    ..
                }) => notes.push(table.skipped(
                    *row,
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
                table,
                id,
                BATCH_IMPORTED,
                record_of(done.len() as u32, events, &notes),
                revision,
            )])
            .await?;
        Ok(results[0].next_expected_revision)
    }

    /// Records the run's end in the table's stream; for `spenden` after checking the whole
    /// source for payments without a donation (or a membership application).
    async fn complete(&self, table: Table, at: &mut Resume) -> Result<(), ImportError> {
        let memberships = self.source.has_table("request").await?;
        let mut notes = Vec::new();
        let mut after = i64::MIN;
        // Payments without a donation: a check of the donations' run only.
        if table == Table::Spenden {
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
        }
        let membership_rows = self.source.membership_rows().await?;
        let digest = match table {
            Table::Spenden => format!(
                "import/completed/{}/{}/{}",
                at.last_id,
                notes.len(),
                notes.last().map_or(0, |n: &Note| n.id)
            ),
            Table::Request => format!("import-request/completed/{}", at.last_id),
        };
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
            .append_atomic(vec![record(table, id, COMPLETED, payload, at.revision)])
            .await?;
        at.revision = Some(results[0].next_expected_revision);
        Ok(())
    }

    /// Moves each sequence past the highest imported id, so the intake never hands one of
    /// them out again.
    async fn advance_sequences(&self, highest: &[(SequenceName, u64)]) -> Result<(), ImportError> {
        for &(name, highest) in highest {
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
async fn prepare(vault: &Vault, table: Table, rows: &Rows) -> Result<Prepared, ImportError> {
    let interpreted: Vec<Result<Unit, Note>> = match rows {
        Rows::Spenden(rows) => rows.iter().map(|r| interpret(r).map(Unit::from)).collect(),
        Rows::Request(rows) => rows
            .iter()
            .map(|r| interpret_request(r).map(Unit::from))
            .collect(),
    };
    let mut notes = Vec::new();
    let mut units = Vec::with_capacity(interpreted.len());
    let mut streams_used: HashMap<String, u64> = HashMap::new();
    let mut max_payment = 0;
    for unit in interpreted {
        match unit {
            Ok(mut i) => {
                // Two donations of one batch naming one payment: the second is refused
                // (across batches the log's expected revision refuses it).
                if let Some(other) = i
                    .events
                    .iter()
                    .find_map(|e| streams_used.get(&e.event.stream))
                {
                    notes.push(table.skipped(
                        i.id,
                        class::ALREADY_IN_LEDGER,
                        format!("its payment is also the payment of donation {other}"),
                    ));
                    continue;
                }
                for e in &i.events {
                    streams_used.insert(e.event.stream.clone(), i.id);
                }
                max_payment = max_payment.max(i.payment_id);
                notes.append(&mut i.notes);
                units.push(i);
            }
            Err(note) => notes.push(note),
        }
    }
    let needing: Vec<u64> = units
        .iter_mut()
        .filter_map(|i| {
            let personal = i
                .events
                .iter_mut()
                .any(|e| e.event.event.has_clear_personal_data());
            personal.then_some(i.key_id)
        })
        .collect();
    let keys = vault.keys().create_many(&needing).await?;
    let mut imported = Vec::with_capacity(units.len());
    for mut i in units {
        if let Some(key) = keys.get(&i.key_id) {
            for e in &mut i.events {
                seal_with(std::slice::from_mut(&mut e.event.event), i.key_id, key);
            }
        } else if needing.contains(&i.key_id) {
            // A destroyed key: the ledger scrubbed this row after an earlier import.
            notes.push(table.skipped(
                i.id,
                class::ALREADY_IN_LEDGER,
                "its key was destroyed (scrubbed in the ledger)",
            ));
            continue;
        }
        imported.push((i.id, unit_parts(table, &i)));
    }
    let ids = rows.ids();
    Ok(Prepared {
        first_id: ids.first().copied().unwrap_or(0),
        last_id: ids.last().copied().unwrap_or(0),
        rows: ids.len() as u32,
        donations: imported,
        notes,
        max_payment,
    })
}

/// The report of every import into `log` so far, from its streams: the sums and notes of
/// every batch of both tables, and the notes of the latest completed run.
pub async fn read_report(log: &dyn EventLog) -> Result<Report, ImportError> {
    let mut report = Report::default();
    let mut completed_notes = Vec::new();
    let mut seen: HashSet<(String, u64, String)> = HashSet::new();
    for table in [Table::Spenden, Table::Request] {
        let stream = table.stream();
        let mut from = 0u64;
        loop {
            let page = log
                .read_stream(
                    stream,
                    Direction::Forwards,
                    StreamStart::Revision(from),
                    512,
                )
                .await?;
            let Some(last) = page.last() else { break };
            from = last.revision + 1;
            let done = page.len() < 512;
            for e in page {
                let corrupt =
                    || ImportError::Stream(format!("`{stream}` holds an unreadable event"));
                match e.event_type.as_str() {
                    BATCH_IMPORTED => {
                        let b = ev::LegacyImportBatchImported::decode(e.payload.as_slice())
                            .map_err(|_| corrupt())?;
                        match table {
                            Table::Spenden => {
                                report.rows += u64::from(b.rows);
                                report.donations += u64::from(b.donations);
                                report.events += u64::from(b.events);
                                report.last_id = report.last_id.max(b.last_id);
                            }
                            Table::Request => {
                                report.request_rows += u64::from(b.rows);
                                report.memberships += u64::from(b.memberships);
                                report.membership_events += u64::from(b.events);
                            }
                        }
                        for n in &b.notes {
                            if seen.insert((n.table.clone(), n.id, n.class.clone())) {
                                report.notes.push(Note::from_proto(n));
                            }
                        }
                    }
                    COMPLETED => {
                        let c = ev::LegacyImportCompleted::decode(e.payload.as_slice())
                            .map_err(|_| corrupt())?;
                        if table == Table::Spenden {
                            completed_notes = c.notes.iter().map(Note::from_proto).collect();
                        }
                        report.membership_rows = c.membership_rows;
                    }
                    _ => return Err(corrupt()),
                }
            }
            if done {
                break;
            }
        }
    }
    report.notes.extend(completed_notes);
    report.notes.sort();
    Ok(report)
}
