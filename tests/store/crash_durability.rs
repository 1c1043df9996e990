//! Crash durability of the embedded log: acknowledged writes survive SIGKILL, whole.
//!
//! Three tests. (1) A child process appends to the log directly from many tasks and prints
//! each acknowledgement; the parent kills it with SIGKILL at a random moment, reopens the file
//! and checks that every acknowledged event is there exactly once (25 rounds on one file).
//! (2) The same through the intake: a child `ledger serve` under concurrent `AddDonation` load
//! is killed and restarted on its data directory (5 rounds); every call is in the log whole or
//! not at all, positions have no holes, and a retry of every acknowledged call answers the same
//! and appends nothing. (3) SIGKILL leaves the page cache intact, so neither of those would
//! notice an acknowledgement sent before its fsync; the syncer's ordering probe does, and the
//! last test runs concurrent appenders against it.
use crate::support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger::api::auth::token_hash;
use ledger::proto::api::{self, ledger_client::LedgerClient};
use ledger::proto::events as ev;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{
    Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata, StreamAppend,
};
use prost::Message;
use rand::Rng;
use sqlx::Row;
use support::api::{donation, with_token};
use tonic::transport::Channel;
use uuid::Uuid;

const CHILD_ENV: &str = "LEDGER_CRASH_CHILD_DB";
const ROUNDS: usize = 25;

/// The child's test as the test binary names it (`module::test` inside an area's binary).
fn child_test_name() -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::crash_child_appends_and_acknowledges"),
        None => "crash_child_appends_and_acknowledges".to_owned(),
    }
}

/// The child's body: runs only when the parent starts this test binary with `CHILD_ENV` set.
#[test]
fn crash_child_appends_and_acknowledges() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let log = Arc::new(SqliteEventLog::open(Path::new(&db)).await.unwrap());
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let tasks: Vec<_> = (0..16)
            .map(|w| {
                let log = log.clone();
                let out = out.clone();
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let n = 1 + (i % 3) as usize;
                        let events: Vec<EventData> = (0..n)
                            .map(|_| EventData {
                                id: Uuid::new_v4(),
                                event_type: "CrashTest.v1".into(),
                                payload: vec![7u8; 200],
                                metadata: Metadata::new(
                                    Actor {
                                        kind: ActorKind::System,
                                        id: "crash".into(),
                                    },
                                    "crash-test",
                                    Uuid::new_v4(),
                                )
                                .into(),
                            })
                            .collect();
                        let stream = format!("donation-{}", w * 1000 + i % 50);
                        log.append(&stream, ExpectedRevision::Any, events.clone())
                            .await
                            .unwrap();
                        let mut line = String::from("ACK");
                        for e in &events {
                            line.push(' ');
                            line.push_str(&e.id.to_string());
                        }
                        line.push('\n');
                        use std::io::Write;
                        let mut o = out.lock().unwrap();
                        o.write_all(line.as_bytes()).unwrap();
                        o.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_appends_survive_sigkill_exactly_once() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.sqlite");
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<Uuid> = Vec::new();
    let mut rng = rand::thread_rng();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                &child_test_name(),
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Only complete lines count: a line cut by the kill has no trailing newline and
                // `lines()` would still return it, so re-check its shape.
                let mut parts = line.split(' ');
                if parts.next() != Some("ACK") {
                    continue;
                }
                let parsed: Result<Vec<Uuid>, _> = parts.map(str::parse).collect();
                if let Ok(parsed) = parsed {
                    ids.extend(parsed);
                }
            }
            ids
        });
        // Let it start up (opening the file, migrations) and then write for a random while.
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..600)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let round_ids = reader.join().unwrap();
        acknowledged.extend(round_ids.iter().copied());
        verify(&db, &acknowledged, round);
    }
    assert!(
        acknowledged.len() > 1000,
        "the child acknowledged only {} events",
        acknowledged.len()
    );
    eprintln!(
        "{ROUNDS} SIGKILL rounds, {} acknowledged events all present exactly once",
        acknowledged.len()
    );
}

fn verify(db: &Path, acknowledged: &[Uuid], round: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = SqliteEventLog::open(db)
            .await
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(log.pool())
            .await
            .unwrap();
        assert_eq!(check, "ok", "round {round}: integrity check");
        let all = log.read_all(0, usize::MAX).await.unwrap();
        let mut counts: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
        for e in &all {
            *counts.entry(e.id).or_default() += 1;
        }
        for id in acknowledged {
            assert_eq!(
                counts.get(id).copied(),
                Some(1),
                "round {round}: acknowledged event {id} present once"
            );
        }
        // Positions strictly increase and every stream's revisions are contiguous from 0.
        assert!(all.windows(2).all(|w| w[0].position < w[1].position));
        let rows = sqlx::query(
            "SELECT stream_name, COUNT(*), MAX(revision) FROM events GROUP BY stream_name",
        )
        .fetch_all(log.pool())
        .await
        .unwrap();
        for row in rows {
            let count: i64 = row.get(1);
            let max: i64 = row.get(2);
            assert_eq!(
                count,
                max + 1,
                "round {round}: stream {} has gaps",
                row.get::<String, _>(0)
            );
        }
        let unique: HashSet<Uuid> = acknowledged.iter().copied().collect();
        assert_eq!(unique.len(), acknowledged.len());
    });
}

/// The token the served intake accepts in the SIGKILL test.
const TOKEN: &str = "crash-secret";
/// Rounds of load, SIGKILL and restart on one data directory.
const SERVE_ROUNDS: usize = 5;
/// Concurrent callers during the load.
const CALLERS: usize = 12;
/// Acknowledged calls to wait for in a round before the kill may come.
const ACKS_BEFORE_KILL: usize = 40;
/// How long a child server may take to answer, or to stop.
const PATIENCE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ledger serve` child and a client connected to it.
struct Served {
    child: Child,
    client: LedgerClient<Channel>,
}

/// Starts `ledger serve` on `data` (the intake alone: no projectors, no scrub schedule, whose
/// own appends would blur the log's accounting) and waits until it answers. Its log goes to
/// `serve.log` in `data`'s parent, appended over the rounds.
async fn serve(data: &Path, tokens: &Path) -> Served {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.parent().unwrap().join("serve.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--kurrentdb-listen",
            "off",
            "--tokens-file",
            tokens.to_str().unwrap(),
            "--projectors",
            "false",
            "--scrub-interval-minutes",
            "0",
        ])
        .env("LEDGER_DATA_DIR", data)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let client = loop {
        if let Ok(c) = LedgerClient::connect(format!("http://127.0.0.1:{port}")).await {
            break c;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("serve exited with {status} before answering; see serve.log");
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Served { child, client }
}

/// An acknowledged `AddDonation`: what was sent and what came back.
#[derive(Clone)]
struct Ack {
    request: api::AddDonationRequest,
    response: api::AddDonationResponse,
}

impl Ack {
    fn request_id(&self) -> &str {
        &self.request.context.as_ref().unwrap().request_id
    }
}

/// A valid donation with a fresh request id, its method picked by `n`.
fn nth_donation(n: usize) -> api::AddDonationRequest {
    let method = [
        ev::PaymentMethod::Paypal,
        ev::PaymentMethod::BankTransfer,
        ev::PaymentMethod::DirectDebit,
        ev::PaymentMethod::CreditCard,
    ][n % 4];
    donation(method, 500 + n as i64)
}

/// Puts `CALLERS` concurrent callers of `AddDonation` on the server, kills it with SIGKILL at
/// a random moment after `ACKS_BEFORE_KILL` acknowledgements, and returns every acknowledged
/// call. A call that fails before the kill fails the test.
async fn load_then_sigkill(mut served: Served, rng: &mut impl Rng) -> Vec<Ack> {
    let acks = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let mut client = served.client.clone();
            let (acks, killed) = (acks.clone(), killed.clone());
            tokio::spawn(async move {
                for n in (caller..).step_by(CALLERS) {
                    let request = nth_donation(n);
                    match client
                        .add_donation(with_token(request.clone(), TOKEN))
                        .await
                    {
                        Ok(response) => acks.lock().unwrap().push(Ack {
                            request,
                            response: response.into_inner(),
                        }),
                        Err(_) if killed.load(std::sync::atomic::Ordering::SeqCst) => return,
                        Err(status) => panic!("AddDonation failed before the kill: {status}"),
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while acks.lock().unwrap().len() < ACKS_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "only {} calls were acknowledged",
            acks.lock().unwrap().len()
        );
        if let Some(caller) = callers.iter().find(|c| c.is_finished()) {
            panic!("a caller ended before the kill: {caller:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(rng.gen_range(0..400))).await;
    killed.store(true, std::sync::atomic::Ordering::SeqCst);
    served.child.kill().unwrap(); // SIGKILL on Unix
    served.child.wait().unwrap();
    for caller in callers {
        tokio::time::timeout(PATIENCE, caller)
            .await
            .expect("callers stop once the server is gone")
            .expect("no call failed before the kill");
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    acks
}

/// One call as the log holds it: the answer its idempotency record keeps.
#[derive(Debug, Clone, PartialEq)]
struct Logged {
    donation_id: u64,
    payment_id: u64,
    /// The position of the record, the call's last event: the answer's position.
    position: u64,
}

/// Reads the whole log (`$all` from position 0) from the file of a running server, without a
/// writer of our own, and checks its shape: positions 1, 2, … with no hole and no duplicate,
/// and every call whole: its events (grouped by their correlation id) sit at consecutive
/// positions and are exactly a `DonationCreated` at revision 0 of `donation-{id}`, a
/// `PaymentInitiated` at revision 0 of `payment-{id}`, possibly moderation, and last its record
/// in `request-{request_id}` naming those ids. Returns each call by request id, and the head.
fn read_calls(db: &Path, round: usize) -> (HashMap<String, Logged>, u64) {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "round {round}: integrity check");
    let mut stmt = conn
        .prepare(
            "SELECT position, stream_name, revision, event_type, payload, metadata \
             FROM events ORDER BY position",
        )
        .unwrap();
    struct Row {
        position: u64,
        stream: String,
        revision: u64,
        event_type: String,
        payload: Vec<u8>,
    }
    let mut groups: HashMap<Uuid, Vec<Row>> = HashMap::new();
    let mut head = 0;
    let mut rows = stmt.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        let position = r.get::<_, i64>(0).unwrap() as u64;
        assert_eq!(
            position,
            head + 1,
            "round {round}: $all has a hole or a duplicate after position {head}"
        );
        head = position;
        let metadata = Metadata::from_bytes(&r.get::<_, Vec<u8>>(5).unwrap()).unwrap();
        groups
            .entry(metadata.correlation_id)
            .or_default()
            .push(Row {
                position,
                stream: r.get(1).unwrap(),
                revision: r.get::<_, i64>(2).unwrap() as u64,
                event_type: r.get(3).unwrap(),
                payload: r.get(4).unwrap(),
            });
    }
    let mut calls = HashMap::new();
    let mut scattered = Vec::new();
    for (correlation, events) in groups {
        let streams: Vec<&str> = events.iter().map(|e| e.stream.as_str()).collect();
        let whole = |what: &str| format!("round {round}: call {correlation} {what}: {streams:?}");
        let record = events.last().unwrap();
        let request_id = record
            .stream
            .strip_prefix("request-")
            .unwrap_or_else(|| panic!("{}", whole("has no idempotency record last")));
        // Checked after every call was found whole, so a half call is named as such.
        if events
            .windows(2)
            .any(|w| w[1].position != w[0].position + 1)
        {
            scattered.push(whole("is not at consecutive positions"));
        }
        let handled = api::RequestHandled::decode(record.payload.as_slice()).unwrap();
        assert_eq!(handled.method, "AddDonation", "{}", whole("is no donation"));
        let answer = api::AddDonationResponse::decode(handled.response.as_slice()).unwrap();
        let first = |stream: String, event_type: &str| {
            let found: Vec<&Row> = events.iter().filter(|e| e.stream == stream).collect();
            assert!(
                found.len() == 1
                    && found[0].revision == 0
                    && found[0].event_type.starts_with(event_type),
                "{}",
                whole(&format!(
                    "lacks {event_type} as the first event of {stream}"
                ))
            );
        };
        first(
            format!("donation-{}", answer.donation_id),
            "DonationCreated.",
        );
        first(
            format!("payment-{}", answer.payment_id),
            "PaymentInitiated.",
        );
        let moderation = format!("moderation-{}", answer.donation_id);
        // The donor has a postal address: the call also issued its address change, found by the
        // token it answered.
        let token = format!("address_change_token-{}", answer.address_change_token);
        let address_changes = events
            .iter()
            .filter(|e| e.stream.starts_with("address_change-"))
            .count();
        assert!(
            address_changes == 1 && events.iter().any(|e| e.stream == token),
            "{}",
            whole("lacks its address change")
        );
        assert!(
            events.iter().all(|e| e.stream == record.stream
                || e.stream == moderation
                || e.stream == token
                || e.stream.starts_with("address_change-")
                || e.stream == format!("donation-{}", answer.donation_id)
                || e.stream == format!("payment-{}", answer.payment_id)),
            "{}",
            whole("holds a stream of another call")
        );
        let logged = Logged {
            donation_id: answer.donation_id,
            payment_id: answer.payment_id,
            position: record.position,
        };
        assert!(
            calls.insert(request_id.to_owned(), logged).is_none(),
            "{}",
            whole("repeats a request id")
        );
    }
    assert!(scattered.is_empty(), "{}", scattered.join("\n"));
    (calls, head)
}

/// Checks every acknowledged call against the log: present, with the ids and the position it
/// was answered with.
fn assert_acknowledged_present(calls: &HashMap<String, Logged>, acks: &[Ack], round: usize) {
    for ack in acks {
        let logged = calls.get(ack.request_id()).unwrap_or_else(|| {
            panic!(
                "round {round}: acknowledged call {} is not in the log",
                ack.request_id()
            )
        });
        let answered = Logged {
            donation_id: ack.response.donation_id,
            payment_id: ack.response.payment_id,
            position: ack.response.position,
        };
        assert_eq!(
            logged,
            &answered,
            "round {round}: call {}",
            ack.request_id()
        );
    }
}

/// Sends every call in `acks` again (same request id, same content) and checks each gets the
/// answer it got the first time.
async fn retry_all(client: &LedgerClient<Channel>, acks: &[Ack], round: usize) {
    let retries: Vec<_> = acks
        .chunks(acks.len().div_ceil(CALLERS).max(1))
        .map(|chunk| {
            let (mut client, chunk) = (client.clone(), chunk.to_vec());
            tokio::spawn(async move {
                for ack in chunk {
                    let again = client
                        .add_donation(with_token(ack.request.clone(), TOKEN))
                        .await
                        .unwrap_or_else(|s| panic!("round {round}: retry failed: {s}"))
                        .into_inner();
                    assert_eq!(
                        again,
                        ack.response,
                        "round {round}: a retry of {} answers differently",
                        ack.request_id()
                    );
                }
            })
        })
        .collect();
    for retry in retries {
        retry.await.unwrap();
    }
}

/// Sends SIGTERM and waits (with a deadline) for a clean exit.
async fn stop(mut served: Served) {
    let pid = served.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(s) = served.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "serve stopped with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_donations_survive_sigkill_of_serve_whole_and_retries_answer_the_same_appending_nothing(
) {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tokens = dir.path().join("tokens.json");
    std::fs::write(
        &tokens,
        format!(
            r#"{{"tokens": [{{"name": "crash", "sha256": "{}", "scopes": ["*"]}}]}}"#,
            token_hash(TOKEN)
        ),
    )
    .unwrap();
    let db = data.join("events.sqlite");
    let mut rng = rand::thread_rng();
    let mut acknowledged: Vec<Ack> = Vec::new();
    let mut last_round: Vec<Ack> = Vec::new();
    for round in 0..=SERVE_ROUNDS {
        let served = serve(&data, &tokens).await;
        if round > 0 {
            // Restarted on the data directory of the server killed in the previous round.
            let (calls, head) = read_calls(&db, round);
            assert_acknowledged_present(&calls, &acknowledged, round);
            retry_all(&served.client, &last_round, round).await;
            let (after, head_after) = read_calls(&db, round);
            assert_eq!(head_after, head, "round {round}: retries appended");
            assert_eq!(after, calls, "round {round}: retries changed the log");
        }
        if round == SERVE_ROUNDS {
            stop(served).await;
            break;
        }
        last_round = load_then_sigkill(served, &mut rng).await;
        acknowledged.extend(last_round.iter().cloned());
    }
    let requests: HashSet<&str> = acknowledged.iter().map(Ack::request_id).collect();
    assert_eq!(requests.len(), acknowledged.len(), "request ids are fresh");
    eprintln!(
        "{SERVE_ROUNDS} SIGKILL rounds of serve: {} acknowledged donations all whole, retried to the same answer",
        acknowledged.len()
    );
}

/// An event for the probe test.
fn probe_event() -> EventData {
    EventData {
        id: Uuid::new_v4(),
        event_type: "ProbeTest.v1".into(),
        payload: vec![1u8; 64],
        metadata: Metadata::new(
            Actor {
                kind: ActorKind::System,
                id: "probe".into(),
            },
            "crash-test",
            Uuid::new_v4(),
        )
        .into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_append_is_acknowledged_before_the_fsync_that_covers_it_under_concurrent_writers() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    const WRITERS: u64 = 48;
    const APPENDS: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteEventLog::open(&dir.path().join("events.sqlite"))
        .await
        .unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..APPENDS {
                    let donation = format!("donation-{}", w * 100 + i % 7);
                    match i % 3 {
                        // One stream, one or more events.
                        0 => {
                            let events = (0..1 + i % 4).map(|_| probe_event()).collect();
                            log.append(&donation, ExpectedRevision::Any, events)
                                .await
                                .unwrap();
                        }
                        // An atomic append to three streams, the intake's shape.
                        1 => {
                            let part = |stream: String| StreamAppend {
                                stream,
                                expected: ExpectedRevision::Any,
                                events: vec![probe_event()],
                            };
                            log.append_atomic(vec![
                                part(donation.clone()),
                                part(format!("payment-{}", w * 100 + i)),
                                part(format!("request-{w}-{i}")),
                            ])
                            .await
                            .unwrap();
                        }
                        // A repeat of events already written: answered from the log.
                        _ => {
                            let events = vec![probe_event()];
                            let stream = format!("payment-{}", w * 100 + i);
                            for _ in 0..2 {
                                log.append(&stream, ExpectedRevision::Any, events.clone())
                                    .await
                                    .unwrap();
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let probe = log.durability_probe();
    let head = log.head_position().await.unwrap().unwrap();
    let expected_appends = WRITERS * (APPENDS / 3) * 4;
    assert_eq!(probe.violations, 0, "{probe:?}");
    assert_eq!(probe.appends, expected_appends, "{probe:?}");
    assert!(probe.fsyncs > 0, "{probe:?}");
    assert!(probe.fsyncs <= probe.groups, "{probe:?}");
    assert!(probe.fsynced >= head, "head {head}, {probe:?}");
    eprintln!("{probe:?}");
}
