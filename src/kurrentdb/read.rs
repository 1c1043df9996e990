//! `Streams.Read`: reads of one stream or of `$all`, forwards or backwards, from a revision, a
//! position, the start or the end, with a count or as a catch-up subscription.
//!
//! A read runs in its own task and sends into a bounded channel, so a slow client slows its
//! read down (the log is read page by page as the client takes events) and a client that goes
//! away stops it. A subscription catches up from the log, says `caught_up`, then follows the
//! log's live feed; if it falls more than [`FELL_BEHIND`] events behind the head it says
//! `fell_behind` and says `caught_up` again once it is back at the head — it is never dropped,
//! because it reads the log, not a buffer that could overflow.
//!
//! Positions: a forward `$all` read includes its start position, a backward one excludes it,
//! and a subscription starts after its position (KurrentDB's rules, which the clients' resume
//! logic relies on).
//!
//! Access: a stream read needs the caller's read grant and a place in the stream's `$acl`
//! (`$r`; `$mr` of the described stream for a metadata stream `$$name`); `$all` needs the
//! `"*"` read grant. With `resolve_links`, a link event (type `$>`, data `revision@stream`) is
//! sent with the event it points to, which the caller must be allowed to read and which must
//! still be visible (not deleted, truncated or expired); otherwise the link is sent alone, with
//! no event, as KurrentDB sends a link it could not resolve.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use uuid::Uuid;

use super::access::Caller;
use super::acl::Operation;
use super::convert;
use super::errors::Refusal;
use super::filter::Filter;
use super::stream_state::StreamState;
use super::system_streams::Projection;
use super::Port;
use crate::proto::kurrentdb::event_store::client::streams::read_req::options::{
    self as opts, all_options, stream_options, CountOption, FilterOption, ReadDirection,
    StreamOption,
};
use crate::proto::kurrentdb::event_store::client::streams::read_resp::{self, Content};
use crate::proto::kurrentdb::event_store::client::streams::{ReadReq, ReadResp};
use crate::store::{
    CurrentRevision, Direction, EventLog, Position, RecordedEvent, StoreError, StreamStart,
};

/// Events read from the log per page.
const PAGE: usize = 512;
/// A live subscription this many events behind the head has fallen behind.
pub const FELL_BEHIND: u64 = 10_000;
/// How often (in events) a subscription looks at the head to measure its lag.
const LAG_EVERY: u64 = 256;

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Start,
    End,
    At(u64),
}

/// What to read.
enum Source {
    Stream(String, Origin),
    All(Origin),
}

/// A parsed read request.
struct Plan {
    source: Source,
    direction: Direction,
    /// `None` for a subscription.
    count: Option<u64>,
    filter: Option<Filter>,
    structured_ids: bool,
    compatibility: u32,
    resolve_links: bool,
}

fn plan(request: ReadReq) -> Result<Plan, Refusal> {
    let options = request
        .options
        .ok_or_else(|| Refusal::BadRequest("missing options".into()))?;
    let direction = match ReadDirection::try_from(options.read_direction) {
        Ok(ReadDirection::Forwards) => Direction::Forwards,
        Ok(ReadDirection::Backwards) => Direction::Backwards,
        Err(_) => {
            return Err(Refusal::BadRequest(format!(
                "invalid read_direction {}: 0 (forwards) or 1 (backwards)",
                options.read_direction
            )))
        }
    };
    let count = match options.count_option {
        Some(CountOption::Count(n)) => Some(n),
        Some(CountOption::Subscription(_)) => None,
        None => {
            return Err(Refusal::BadRequest(
                "missing count_option: `count` or `subscription`".into(),
            ))
        }
    };
    let source = match options.stream_option {
        Some(StreamOption::Stream(s)) => {
            let name = convert::stream_name(s.stream_identifier.as_ref())?;
            let from = match s.revision_option {
                Some(stream_options::RevisionOption::Revision(r)) => Origin::At(r),
                Some(stream_options::RevisionOption::Start(_)) => Origin::Start,
                Some(stream_options::RevisionOption::End(_)) => Origin::End,
                None => {
                    return Err(Refusal::BadRequest(
                        "missing revision_option: `revision`, `start` or `end`".into(),
                    ))
                }
            };
            Source::Stream(name, from)
        }
        Some(StreamOption::All(a)) => Source::All(match a.all_option {
            Some(all_options::AllOption::Position(p)) => Origin::At(p.commit_position),
            Some(all_options::AllOption::Start(_)) => Origin::Start,
            Some(all_options::AllOption::End(_)) => Origin::End,
            None => {
                return Err(Refusal::BadRequest(
                    "missing all_option: `position`, `start` or `end`".into(),
                ))
            }
        }),
        None => {
            return Err(Refusal::BadRequest(
                "missing stream_option: `stream` or `all`".into(),
            ))
        }
    };
    let filter = match (&source, options.filter_option) {
        (Source::All(_), Some(FilterOption::Filter(f))) => Some(Filter::compile(&f)?),
        _ => None,
    };
    let structured_ids = matches!(
        options.uuid_option.and_then(|u| u.content),
        Some(opts::uuid_option::Content::Structured(_))
    );
    Ok(Plan {
        source,
        direction,
        count,
        filter,
        structured_ids,
        compatibility: options.control_option.map_or(0, |c| c.compatibility),
        resolve_links: options.resolve_links,
    })
}

/// One response of a read.
type Answer = Result<ReadResp, Status>;

/// The stream of responses a read sends: they travel in bundles (a page's events at once), so
/// the reading task and the connection hand over a bundle, not each event.
pub type Responses = futures::stream::FlatMap<
    ReceiverStream<Vec<Answer>>,
    futures::stream::Iter<std::vec::IntoIter<Answer>>,
    fn(Vec<Answer>) -> futures::stream::Iter<std::vec::IntoIter<Answer>>,
>;

/// Events bundled before they are handed to the connection.
const BUNDLE: usize = 128;

/// Starts a read for `caller`; refusals known before reading come back at once.
pub async fn start(
    port: Arc<Port>,
    caller: &Caller,
    request: ReadReq,
) -> Result<Responses, Refusal> {
    let plan = plan(request)?;
    match &plan.source {
        Source::All(_) if !caller.may_read_all() => return Err(Refusal::AccessDenied),
        Source::All(_) => {}
        Source::Stream(name, _) => {
            let state = readable(port.log.as_ref(), caller, name)
                .await
                .map_err(|e| Refusal::Internal(e.to_string()))?
                .ok_or(Refusal::AccessDenied)?;
            if state.tombstoned {
                return Err(Refusal::StreamDeleted(name.clone()));
            }
        }
    }
    let links = plan.resolve_links.then(|| Links {
        log: port.log.clone(),
        caller: caller.clone(),
    });
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let sender = Sender {
            tx,
            structured_ids: plan.structured_ids,
            bundle: Mutex::new(Vec::with_capacity(BUNDLE)),
            links,
        };
        let outcome = match plan.count {
            Some(count) => read(&port, &sender, &plan, count).await,
            None => subscribe(&port, &sender, &plan).await,
        };
        let outcome = match outcome {
            Ok(()) => sender.flush().await,
            stopped => stopped,
        };
        if let Err(Stop::Refused(refusal)) = outcome {
            port.refused("Read", &refusal);
            sender.push(Err(refusal.status()));
            let _ = sender.flush().await;
        }
    });
    let unbundle: fn(Vec<Answer>) -> futures::stream::Iter<std::vec::IntoIter<Answer>> =
        futures::stream::iter;
    Ok(ReceiverStream::new(rx).flat_map(unbundle))
}

/// The state of `stream` if `caller` may read it (by the grants and the stream's `$acl`; for a
/// metadata stream `$$name`, by `$mr` of `name`'s), `None` if not.
pub async fn readable(
    log: &dyn EventLog,
    caller: &Caller,
    stream: &str,
) -> Result<Option<StreamState>, StoreError> {
    if !caller.may_read(stream) {
        return Ok(None);
    }
    let state = StreamState::load(log, stream).await?;
    let listed = match stream.strip_prefix("$$") {
        Some(described) => {
            let described = StreamState::load(log, described).await?;
            caller.listed(&described.metadata.acl(), Operation::MetadataRead)
        }
        None => caller.listed(&state.metadata.acl(), Operation::Read),
    };
    Ok(listed.then_some(state))
}

/// The event type of a link (data `revision@stream`).
pub const LINK_EVENT: &str = "$>";

/// What a read with `resolve_links` needs to follow links.
struct Links {
    log: Arc<dyn EventLog>,
    caller: Caller,
}

impl Links {
    /// The event `link` points to, if it exists, is visible and the caller may read it.
    async fn resolve(&self, link: &RecordedEvent) -> Result<Option<RecordedEvent>, StoreError> {
        let Some((revision, stream)) = std::str::from_utf8(&link.payload)
            .ok()
            .and_then(|text| text.split_once('@'))
            .and_then(|(revision, stream)| Some((revision.trim().parse::<u64>().ok()?, stream)))
        else {
            return Ok(None);
        };
        let Some(state) = readable(self.log.as_ref(), &self.caller, stream).await? else {
            return Ok(None);
        };
        if state.tombstoned || state.soft_deleted() {
            return Ok(None);
        }
        let target = self
            .log
            .read_stream(
                stream,
                Direction::Forwards,
                StreamStart::Revision(revision),
                1,
            )
            .await?
            .pop();
        Ok(target.filter(|e| e.revision == revision && state.shows(e, Utc::now())))
    }
}

/// Why a read ended early.
enum Stop {
    /// The client went away.
    Gone,
    /// The read failed; the client is told.
    Refused(Refusal),
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Closed => {
                Stop::Refused(Refusal::Unavailable("Server Is Not Ready".into()))
            }
            other => Stop::Refused(Refusal::Internal(other.to_string())),
        }
    }
}

/// Sends a read's responses: events are bundled (up to [`BUNDLE`], and every page's are sent
/// when the page ends, see [`Sender::flush`]); every other message goes at once with the events
/// before it.
struct Sender {
    tx: mpsc::Sender<Vec<Answer>>,
    structured_ids: bool,
    bundle: Mutex<Vec<Answer>>,
    /// Set when the client asked for links to be resolved.
    links: Option<Links>,
}

impl Sender {
    fn push(&self, answer: Answer) -> usize {
        let mut bundle = self.bundle.lock().expect("bundle lock");
        bundle.push(answer);
        bundle.len()
    }

    /// Hands the bundled responses to the connection.
    async fn flush(&self) -> Result<(), Stop> {
        let bundle = std::mem::take(&mut *self.bundle.lock().expect("bundle lock"));
        if bundle.is_empty() {
            return Ok(());
        }
        self.tx.send(bundle).await.map_err(|_| Stop::Gone)
    }

    async fn content(&self, content: Content) -> Result<(), Stop> {
        self.push(Ok(ReadResp {
            content: Some(content),
        }));
        self.flush().await
    }

    /// Bundles an event (a link with the event it points to, when links are resolved); sends
    /// the bundle once it is full.
    async fn event(&self, event: &RecordedEvent) -> Result<(), Stop> {
        let ids = self.structured_ids;
        let (shown, link) = match &self.links {
            Some(links) if event.event_type == LINK_EVENT => (
                links
                    .resolve(event)
                    .await?
                    .map(|target| convert::recorded(&target, ids)),
                Some(convert::recorded(event, ids)),
            ),
            _ => (Some(convert::recorded(event, ids)), None),
        };
        let bundled = self.push(Ok(ReadResp {
            content: Some(Content::Event(read_resp::ReadEvent {
                event: shown,
                link,
                position: Some(read_resp::read_event::Position::CommitPosition(
                    event.position,
                )),
            })),
        }));
        if bundled >= BUNDLE {
            self.flush().await?;
        }
        Ok(())
    }

    async fn checkpoint(&self, position: Position) -> Result<(), Stop> {
        self.content(Content::Checkpoint(read_resp::Checkpoint {
            commit_position: position,
            prepare_position: position,
            timestamp: Some(now()),
        }))
        .await
    }
}

fn now() -> prost_types::Timestamp {
    let now = Utc::now();
    prost_types::Timestamp {
        seconds: now.timestamp(),
        nanos: now.timestamp_subsec_nanos() as i32,
    }
}

/// A read with a count.
/// Where the next page of a `$all` read starts: forwards from a position (inclusive), or
/// backwards before one (exclusive; `None` is after the head).
#[derive(Clone, Copy)]
enum AllCursor {
    From(Position),
    Before(Option<Position>),
}

async fn read(port: &Port, sender: &Sender, plan: &Plan, count: u64) -> Result<(), Stop> {
    let log = port.log.as_ref();
    let mut left = count;
    match &plan.source {
        Source::Stream(name, from) => {
            let state = StreamState::load(log, name).await?;
            let CurrentRevision::At(last) = state.revision else {
                return not_found(sender, name).await;
            };
            if state.soft_deleted() {
                return not_found(sender, name).await;
            }
            let floor = state.first_visible();
            let now = Utc::now();
            let mut next = match (plan.direction, from) {
                (Direction::Forwards, Origin::Start) => Some(floor),
                (Direction::Forwards, Origin::At(r)) => Some((*r).max(floor)),
                (Direction::Forwards, Origin::End) => None,
                (Direction::Backwards, Origin::End) => Some(last),
                (Direction::Backwards, Origin::At(r)) => Some((*r).min(last)),
                (Direction::Backwards, Origin::Start) => Some(0),
            };
            while let Some(at) = next.filter(|_| left > 0) {
                if plan.direction == Direction::Backwards && at < floor {
                    break;
                }
                let page = log
                    .read_stream(
                        name,
                        plan.direction,
                        StreamStart::Revision(at),
                        PAGE.min(left as usize),
                    )
                    .await?;
                next = match (plan.direction, page.last()) {
                    (_, None) => None,
                    (Direction::Forwards, Some(e)) => Some(e.revision + 1),
                    (Direction::Backwards, Some(e)) => e.revision.checked_sub(1),
                };
                for event in &page {
                    if left == 0 {
                        break;
                    }
                    if state.shows(event, now) {
                        sender.event(event).await?;
                        left -= 1;
                    }
                }
                port.sent(page.len());
                sender.flush().await?;
            }
            if plan.compatibility >= 1 {
                sender.content(Content::LastStreamPosition(last)).await?;
            }
        }
        Source::All(from) => {
            let mut cursor = match (plan.direction, from) {
                (Direction::Forwards, Origin::Start) => AllCursor::From(0),
                (Direction::Forwards, Origin::At(p)) => AllCursor::From(*p),
                (Direction::Backwards, Origin::At(p)) => AllCursor::Before(Some(*p)),
                (Direction::Backwards, Origin::End) => AllCursor::Before(None),
                (Direction::Forwards, Origin::End) | (Direction::Backwards, Origin::Start) => {
                    return Ok(())
                }
            };
            while left > 0 {
                let page = match cursor {
                    AllCursor::From(p) => log.read_all(p, PAGE).await?,
                    AllCursor::Before(p) => log.read_all_backwards(p, PAGE).await?,
                };
                let Some(last) = page.last() else { break };
                cursor = match cursor {
                    AllCursor::From(_) => AllCursor::From(last.position + 1),
                    AllCursor::Before(_) => AllCursor::Before(Some(last.position)),
                };
                let full = page.len() == PAGE;
                for event in &page {
                    if left == 0 {
                        break;
                    }
                    if plan.filter.as_ref().is_none_or(|f| f.matches(event)) {
                        sender.event(event).await?;
                        left -= 1;
                    }
                }
                port.sent(page.len());
                sender.flush().await?;
                if !full {
                    break;
                }
            }
        }
    }
    Ok(())
}

async fn not_found(sender: &Sender, stream: &str) -> Result<(), Stop> {
    sender
        .content(Content::StreamNotFound(read_resp::StreamNotFound {
            stream_identifier: Some(convert::stream_identifier(stream)),
        }))
        .await
}

/// Where a subscription stands, for the lag gauge and the caught-up/fell-behind messages.
struct Progress<'a> {
    port: &'a Port,
    id: Uuid,
    since_look: u64,
    behind: bool,
}

impl Progress<'_> {
    /// Measures the lag every [`LAG_EVERY`] events; tells the client when it falls behind or
    /// catches up again.
    async fn after(&mut self, sender: &Sender, position: Position, live: bool) -> Result<(), Stop> {
        self.since_look += 1;
        if self.since_look < LAG_EVERY {
            return Ok(());
        }
        self.since_look = 0;
        let head = self.port.log.head_position().await?.unwrap_or(0);
        let lag = head.saturating_sub(position);
        self.port.lag.set(self.id, lag, &self.port.metrics);
        if live && !self.behind && lag > FELL_BEHIND {
            self.behind = true;
            sender
                .content(Content::FellBehind(read_resp::FellBehind {
                    timestamp: Some(now()),
                    stream_revision: None,
                    position: Some(read_resp::Position {
                        commit_position: position,
                        prepare_position: position,
                    }),
                }))
                .await?;
        } else if self.behind && lag < LAG_EVERY {
            self.behind = false;
            caught_up_all(sender, Some(position)).await?;
        }
        Ok(())
    }
}

async fn caught_up_all(sender: &Sender, position: Option<Position>) -> Result<(), Stop> {
    sender
        .content(Content::CaughtUp(read_resp::CaughtUp {
            timestamp: Some(now()),
            stream_revision: None,
            position: position.map(|p| read_resp::Position {
                commit_position: p,
                prepare_position: p,
            }),
        }))
        .await
}

/// A catch-up subscription, until the client goes away or the server stops.
async fn subscribe(port: &Arc<Port>, sender: &Sender, plan: &Plan) -> Result<(), Stop> {
    let id = Uuid::new_v4();
    // Counted before it is confirmed, so a client that holds a confirmation sees it counted.
    let _live = port.subscription_started(id);
    sender
        .content(Content::Confirmation(read_resp::SubscriptionConfirmation {
            subscription_id: id.to_string(),
        }))
        .await?;
    let mut progress = Progress {
        port,
        id,
        since_look: 0,
        behind: false,
    };
    match &plan.source {
        Source::All(from) => subscribe_all(port, sender, plan, *from, &mut progress).await?,
        Source::Stream(name, from) => {
            subscribe_stream(port, sender, name, *from, &mut progress).await?
        }
    }
    // A subscription never ends cleanly: a client takes a clean end for "no more events" (the
    // Rust client even polls an ended stream in a loop), so the server's stop is an error.
    Err(Stop::Refused(Refusal::Unavailable(
        "Server Is Shutting Down".into(),
    )))
}

async fn subscribe_all(
    port: &Port,
    sender: &Sender,
    plan: &Plan,
    from: Origin,
    progress: &mut Progress<'_>,
) -> Result<(), Stop> {
    let log = port.log.as_ref();
    let mut next = match from {
        Origin::Start => 0,
        Origin::At(p) => p.saturating_add(1),
        Origin::End => log.head_position().await?.map_or(0, |h| h + 1),
    };
    let interval = plan.filter.as_ref().map(|f| f.checkpoint_interval);
    let mut scanned = 0u64;
    let mut last_seen: Option<Position> = next.checked_sub(1).filter(|p| *p > 0);
    // Catch up page by page.
    loop {
        let page = log.read_all(next, PAGE).await?;
        let full = page.len() == PAGE;
        for event in &page {
            next = event.position + 1;
            last_seen = Some(event.position);
            deliver(sender, plan, event, interval, &mut scanned).await?;
            progress.after(sender, event.position, false).await?;
        }
        port.sent(page.len());
        sender.flush().await?;
        if !full {
            break;
        }
    }
    if let (Some(_), Some(p)) = (interval, last_seen) {
        if scanned > 0 {
            sender.checkpoint(p).await?;
            scanned = 0;
        }
    }
    caught_up_all(sender, last_seen).await?;
    port.lag.set(progress.id, 0, &port.metrics);
    // Live.
    let mut live = log.subscribe_all(next);
    while let Some(event) = tokio::select! {
        event = live.next() => event,
        () = port.shutdown.cancelled() => None,
        () = sender.tx.closed() => None,
    } {
        let event = event?;
        deliver(sender, plan, &event, interval, &mut scanned).await?;
        port.sent(1);
        sender.flush().await?;
        progress.after(sender, event.position, true).await?;
    }
    Ok(())
}

/// Sends `event` if the filter lets it through, and a checkpoint every `interval` events read.
async fn deliver(
    sender: &Sender,
    plan: &Plan,
    event: &RecordedEvent,
    interval: Option<u64>,
    scanned: &mut u64,
) -> Result<(), Stop> {
    if plan.filter.as_ref().is_none_or(|f| f.matches(event)) {
        sender.event(event).await?;
    }
    if let Some(interval) = interval {
        *scanned += 1;
        if *scanned >= interval {
            *scanned = 0;
            sender.checkpoint(event.position).await?;
        }
    }
    Ok(())
}

/// Sends a subscription the next page of `stream` from `next_revision` (which it moves on),
/// telling `progress` of each event while catching up; says whether the page was full.
async fn send_page(
    port: &Port,
    sender: &Sender,
    stream: &str,
    next_revision: &mut u64,
    mut progress: Option<&mut Progress<'_>>,
) -> Result<bool, Stop> {
    let page = port
        .log
        .read_stream(
            stream,
            Direction::Forwards,
            StreamStart::Revision(*next_revision),
            PAGE,
        )
        .await?;
    for event in &page {
        *next_revision = event.revision + 1;
        if event.event_type == super::stream_state::TOMBSTONE_EVENT {
            return Err(Stop::Refused(Refusal::StreamDeleted(stream.to_owned())));
        }
        sender.event(event).await?;
        if let Some(progress) = progress.as_deref_mut() {
            progress.after(sender, event.position, false).await?;
        }
    }
    port.sent(page.len());
    sender.flush().await?;
    Ok(page.len() == PAGE)
}

async fn subscribe_stream(
    port: &Port,
    sender: &Sender,
    stream: &str,
    from: Origin,
    progress: &mut Progress<'_>,
) -> Result<(), Stop> {
    let log = port.log.as_ref();
    // Everything after this position reaches the live feed below; the catch-up reads the stream
    // itself, and the live feed skips the revisions the catch-up already sent.
    let head = log.head_position().await?.unwrap_or(0);
    let state = StreamState::load(log, stream).await?;
    let mut next_revision = match from {
        Origin::Start => state.first_visible(),
        Origin::At(r) => r.saturating_add(1),
        Origin::End => match state.revision {
            CurrentRevision::NoStream => 0,
            CurrentRevision::At(r) => r + 1,
        },
    };
    while send_page(
        port,
        sender,
        stream,
        &mut next_revision,
        Some(&mut *progress),
    )
    .await?
    {}
    sender
        .content(Content::CaughtUp(read_resp::CaughtUp {
            timestamp: Some(now()),
            stream_revision: next_revision.checked_sub(1).map(|r| r as i64),
            position: None,
        }))
        .await?;
    port.lag.set(progress.id, 0, &port.metrics);
    let projection = Projection::of(stream);
    let mut live = log.subscribe_all(head + 1);
    while let Some(event) = tokio::select! {
        event = live.next() => event,
        () = port.shutdown.cancelled() => None,
        () = sender.tx.closed() => None,
    } {
        let event = event?;
        progress.after(sender, event.position, true).await?;
        if let Some(projection) = &projection {
            // A projection's links are not in the log: a linked event brings the links made
            // since the last one sent (the index reads up to the head, so it has this one).
            if projection.links(&event) {
                while send_page(port, sender, stream, &mut next_revision, None).await? {}
            }
            continue;
        }
        if event.stream != stream || event.revision < next_revision {
            continue;
        }
        if event.event_type == super::stream_state::TOMBSTONE_EVENT {
            return Err(Stop::Refused(Refusal::StreamDeleted(stream.to_owned())));
        }
        next_revision = event.revision + 1;
        sender.event(&event).await?;
        port.sent(1);
        sender.flush().await?;
    }
    Ok(())
}
