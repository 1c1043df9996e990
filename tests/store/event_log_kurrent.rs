//! The event-log conformance suite against the KurrentDB backend (`--event-log-url esdb://…`),
//! with the ledger's own KurrentDB port, over an embedded log, as the server.

use std::sync::Arc;

use ledger::store::kurrent::KurrentEventLog;
use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{EventLog, StoreError};

use crate::conformance;
use crate::kurrentdb_support::{serve, Port};

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
event_log_conformance!(fresh_kurrent_log;
    appending_to_a_new_stream_starts_at_revision_zero,
    no_stream_conflicts_when_the_stream_exists_and_reports_both_revisions,
    exact_revision_accepts_the_current_revision_only,
    stream_exists_requires_an_existing_stream,
    repeating_an_append_returns_the_original_result_and_writes_nothing,
    reusing_an_event_id_in_another_stream_is_refused,
    a_foreign_event_id_is_unique_per_stream_and_repeats_within_it,
    stream_names_with_a_prefix_are_listed_in_byte_order_once_each,
    a_partly_repeated_append_is_refused_and_writes_nothing,
    a_stream_reads_forwards_and_backwards_from_a_revision,
    a_missing_stream_reads_empty_and_has_no_revision,
    read_all_is_in_global_commit_order_from_a_position,
    read_all_backwards_is_newest_first_before_a_position,
    a_foreign_envelope_round_trips_byte_for_byte_beside_the_ledgers,
    a_category_reads_only_its_own_streams,
    the_envelope_round_trips,
    an_atomic_append_writes_every_stream_or_none,
    bad_input_is_rejected_with_the_field_and_writes_nothing,
    concurrent_writers_with_exact_revisions_never_both_win,
    concurrent_appenders_all_land_with_unique_positions,
    a_subscription_catches_up_then_turns_live_with_no_gap_and_no_duplicate,
    the_highest_stream_number_of_a_category_ignores_other_categories_and_non_numbers,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_refuses_every_later_append_and_the_stream_reads_as_deleted() {
    let (log, _server) = fresh_kurrent_log().await;
    conformance::tombstone_refuses_every_later_append(&log).await;
    assert!(matches!(
        log.stream_revision("orders-7").await.unwrap_err(),
        StoreError::StreamDeleted { .. }
    ));
}
