//! The event-log conformance suite against the KurrentDB backend (`--event-log-url esdb://…`),
//! with the ledger's own KurrentDB port, over an embedded log, as the server; and appends that
//! find the leader by gossip (`+discover`, or several nodes of which the first is down).

use std::sync::Arc;

use ledger::store::kurrent::KurrentEventLog;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{EventLog, StoreError};

use crate::conformance;
use crate::support::kurrentdb::{serve, Port};

/// What keeps a backend's server alive for the length of a test.
pub struct Server {
    _port: Port,
    _dir: tempfile::TempDir,
}

/// A KurrentDB log backend connected as the `ledger` user to a fresh port.
pub async fn fresh_kurrent_log() -> (Arc<dyn EventLog>, Server) {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteEventLog::open(&dir.path().join("events.sqlite"))
        .await
        .unwrap();
    let port = serve(Arc::new(inner), false).await;
    let log = KurrentEventLog::connect(&port.url_as(Some(("ledger", "ledger-pw"))))
        .await
        .unwrap();
    (
        Arc::new(log),
        Server {
            _port: port,
            _dir: dir,
        },
    )
}

// Every check of the suite but one: `a_tombstoned_stream_takes_no_more_events` ends by reading
// the tombstoned stream's revision, and on KurrentDB a tombstoned stream cannot be read (it
// answers "stream deleted"; a KurrentDB node even numbers the tombstone `i64::MAX`). The ledger
// never tombstones its own streams; what a tombstone must refuse is checked below instead.
event_log_conformance!(@portable fresh_kurrent_log);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_refuses_every_later_append_and_the_stream_reads_as_deleted() {
    let (log, _server) = fresh_kurrent_log().await;
    conformance::tombstone_refuses_every_later_append(&log).await;
    assert!(matches!(
        log.stream_revision("orders-7").await.unwrap_err(),
        StoreError::StreamDeleted { .. }
    ));
}

/// A log connected as the `ledger` user through `url(port)` to a fresh port.
async fn connected_through(url: impl Fn(u16) -> String) -> (Arc<dyn EventLog>, Server) {
    let dir = tempfile::tempdir().unwrap();
    let inner = SqliteEventLog::open(&dir.path().join("events.sqlite"))
        .await
        .unwrap();
    let port = serve(Arc::new(inner), false).await;
    let log = KurrentEventLog::connect(&url(port.addr.port()))
        .await
        .unwrap();
    (
        Arc::new(log),
        Server {
            _port: port,
            _dir: dir,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_go_to_the_leader_the_gossip_names_when_the_first_node_named_is_down() {
    // Nothing listens on the first node: appends that went to the first node named (as they
    // did before discovery) would all fail.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (log, _server) = connected_through(|live| {
        format!(
            "esdb://ledger:ledger-pw@127.0.0.1:{dead},127.0.0.1:{live}?tls=false&defaultDeadline=30000"
        )
    })
    .await;
    conformance::an_atomic_append_writes_every_stream_or_none(log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discover_connection_string_appends_through_the_leader_its_seed_names() {
    let (log, _server) = connected_through(|live| {
        format!("esdb+discover://ledger:ledger-pw@localhost:{live}?tls=false&defaultDeadline=30000")
    })
    .await;
    conformance::an_atomic_append_writes_every_stream_or_none(log).await;
}
