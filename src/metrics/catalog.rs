//! Every metric the ledger exports, in one table: name, type, help and label names. A series
//! can only be recorded under a name listed here, so every series has its HELP and TYPE, and
//! the table is the reference an operator reads (the README points here).

/// Latency buckets for calls and batches, in seconds: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for the disk: 50 µs to 1 s (an fsync on a healthy SSD takes about a millisecond).
pub const DISK_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// What kind of series a metric has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Only goes up (its name ends in `_total`).
    Counter,
    /// Any value, set or added to.
    Gauge,
    /// Observations counted into these buckets (`_bucket`, `_sum`, `_count` series).
    Histogram(&'static [f64]),
}

/// One metric.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The name a scrape shows (a counter's ends in `_total`).
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// What it measures (the HELP line).
    pub help: &'static str,
    /// Its label names, in the order they are shown.
    pub labels: &'static [&'static str],
}

const fn counter(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Spec {
    Spec {
        name,
        kind: Kind::Counter,
        help,
        labels,
    }
}

const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Spec {
    Spec {
        name,
        kind: Kind::Gauge,
        help,
        labels,
    }
}

const fn histogram(
    name: &'static str,
    buckets: &'static [f64],
    labels: &'static [&'static str],
    help: &'static str,
) -> Spec {
    Spec {
        name,
        kind: Kind::Histogram(buckets),
        help,
        labels,
    }
}

/// `ledger_build_info`.
pub const BUILD_INFO: &str = "ledger_build_info";
/// `ledger_grpc_requests_total`.
pub const GRPC_REQUESTS: &str = "ledger_grpc_requests_total";
/// `ledger_grpc_request_duration_seconds`.
pub const GRPC_DURATION: &str = "ledger_grpc_request_duration_seconds";
/// `ledger_idempotent_replays_total`.
pub const IDEMPOTENT_REPLAYS: &str = "ledger_idempotent_replays_total";
/// `ledger_sequence_collisions_total`.
pub const SEQUENCE_COLLISIONS: &str = "ledger_sequence_collisions_total";
/// `ledger_contribution_link_refusals_total`.
pub const LINK_REFUSALS: &str = "ledger_contribution_link_refusals_total";
/// `ledger_event_log_append_duration_seconds`.
pub const APPEND_DURATION: &str = "ledger_event_log_append_duration_seconds";
/// `ledger_event_log_fsync_duration_seconds`.
pub const FSYNC_DURATION: &str = "ledger_event_log_fsync_duration_seconds";
/// `ledger_event_log_head_position`.
pub const LOG_HEAD: &str = "ledger_event_log_head_position";
/// `ledger_job_lease_held`.
pub const JOB_LEASE_HELD: &str = "ledger_job_lease_held";
/// `ledger_read_model_connected`.
pub const READ_MODEL_CONNECTED: &str = "ledger_read_model_connected";
/// `ledger_projector_checkpoint`.
pub const PROJECTOR_CHECKPOINT: &str = "ledger_projector_checkpoint";
/// `ledger_projector_lag_positions`.
pub const PROJECTOR_LAG: &str = "ledger_projector_lag_positions";
/// `ledger_projector_events_total`.
pub const PROJECTOR_EVENTS: &str = "ledger_projector_events_total";
/// `ledger_projector_batches_total`.
pub const PROJECTOR_BATCHES: &str = "ledger_projector_batches_total";
/// `ledger_projector_retries_total`.
pub const PROJECTOR_RETRIES: &str = "ledger_projector_retries_total";
/// `ledger_projector_quarantined_total`.
pub const PROJECTOR_QUARANTINED: &str = "ledger_projector_quarantined_total";
/// `ledger_projector_last_run_events_per_second`.
pub const PROJECTOR_RATE: &str = "ledger_projector_last_run_events_per_second";
/// `ledger_projector_stopped`.
pub const PROJECTOR_STOPPED: &str = "ledger_projector_stopped";
/// `ledger_projector_batch_duration_seconds`.
pub const PROJECTOR_BATCH_DURATION: &str = "ledger_projector_batch_duration_seconds";
/// `ledger_contribution_tracking_conflicts_total`.
pub const TRACKING_CONFLICTS: &str = "ledger_contribution_tracking_conflicts_total";
/// `ledger_scrub_eligible`.
pub const SCRUB_ELIGIBLE: &str = "ledger_scrub_eligible";
/// `ledger_scrub_oldest_eligible_age_seconds`.
pub const SCRUB_OLDEST_AGE: &str = "ledger_scrub_oldest_eligible_age_seconds";
/// `ledger_scrub_status_up`.
pub const SCRUB_STATUS_UP: &str = "ledger_scrub_status_up";
/// `ledger_scrubbed_total`.
pub const SCRUBBED: &str = "ledger_scrubbed_total";
/// `ledger_membership_scrub_eligible`.
pub const MEMBERSHIP_SCRUB_ELIGIBLE: &str = "ledger_membership_scrub_eligible";
/// `ledger_membership_scrub_oldest_eligible_age_seconds`.
pub const MEMBERSHIP_SCRUB_OLDEST_AGE: &str = "ledger_membership_scrub_oldest_eligible_age_seconds";
/// `ledger_memberships_scrubbed_total`.
pub const MEMBERSHIPS_SCRUBBED: &str = "ledger_memberships_scrubbed_total";
/// `ledger_address_change_scrub_eligible`.
pub const ADDRESS_CHANGE_SCRUB_ELIGIBLE: &str = "ledger_address_change_scrub_eligible";
/// `ledger_address_change_scrub_oldest_eligible_age_seconds`.
pub const ADDRESS_CHANGE_SCRUB_OLDEST_AGE: &str =
    "ledger_address_change_scrub_oldest_eligible_age_seconds";
/// `ledger_address_changes_scrubbed_total`.
pub const ADDRESS_CHANGES_SCRUBBED: &str = "ledger_address_changes_scrubbed_total";
/// `ledger_subscription_scrub_eligible`.
pub const SUBSCRIPTION_SCRUB_ELIGIBLE: &str = "ledger_subscription_scrub_eligible";
/// `ledger_subscription_scrub_oldest_eligible_age_seconds`.
pub const SUBSCRIPTION_SCRUB_OLDEST_AGE: &str =
    "ledger_subscription_scrub_oldest_eligible_age_seconds";
/// `ledger_subscriptions_removed_total`.
pub const SUBSCRIPTIONS_REMOVED: &str = "ledger_subscriptions_removed_total";
/// `ledger_kurrentdb_calls_total`.
pub const KURRENTDB_CALLS: &str = "ledger_kurrentdb_calls_total";
/// `ledger_kurrentdb_errors_total`.
pub const KURRENTDB_ERRORS: &str = "ledger_kurrentdb_errors_total";
/// `ledger_kurrentdb_events_appended_total`.
pub const KURRENTDB_APPENDED: &str = "ledger_kurrentdb_events_appended_total";
/// `ledger_kurrentdb_events_read_total`.
pub const KURRENTDB_READ: &str = "ledger_kurrentdb_events_read_total";
/// `ledger_kurrentdb_subscriptions`.
pub const KURRENTDB_SUBSCRIPTIONS: &str = "ledger_kurrentdb_subscriptions";
/// `ledger_kurrentdb_subscriber_lag_events`.
pub const KURRENTDB_SUBSCRIBER_LAG: &str = "ledger_kurrentdb_subscriber_lag_events";

/// The table. Process metrics (`process_*`) are read from `/proc` at each scrape and are not
/// listed here (see `process.rs`).
pub const CATALOG: &[Spec] = &[
    gauge(
        BUILD_INFO,
        &["version"],
        "Always 1; the label names the ledger's version.",
    ),
    counter(
        GRPC_REQUESTS,
        &["method", "code"],
        "gRPC calls by method and status code.",
    ),
    histogram(
        GRPC_DURATION,
        LATENCY_BUCKETS,
        &["method"],
        "Seconds from a gRPC call's arrival to its answer, by method.",
    ),
    counter(
        IDEMPOTENT_REPLAYS,
        &["method"],
        "Calls answered from the record of an earlier call with the same request id.",
    ),
    counter(
        SEQUENCE_COLLISIONS,
        &["sequence"],
        "Ids seen from two different sequence allocations (a sequence generator fault).",
    ),
    counter(
        LINK_REFUSALS,
        &[],
        "Refused attempts to change the contribution id linked to a tracking id.",
    ),
    histogram(
        APPEND_DURATION,
        LATENCY_BUCKETS,
        &[],
        "Seconds from an append's arrival at the embedded log to its acknowledgement (durable).",
    ),
    histogram(
        FSYNC_DURATION,
        DISK_BUCKETS,
        &[],
        "Seconds one fsync of the embedded log's WAL took.",
    ),
    gauge(
        LOG_HEAD,
        &[],
        "The log's last durable position (0 when empty), read at scrape time.",
    ),
    gauge(
        JOB_LEASE_HELD,
        &["job"],
        "1 while this process holds the job's lease and runs it (the projector, the scrub \
         schedule); 0 while another process sharing the read model does.",
    ),
    gauge(
        READ_MODEL_CONNECTED,
        &[],
        "1 once the live projector's read model has answered (and been migrated), else 0.",
    ),
    gauge(
        PROJECTOR_CHECKPOINT,
        &["projector"],
        "The last log position the projector applied (0 before the first).",
    ),
    gauge(
        PROJECTOR_LAG,
        &["projector"],
        "Log positions between the projector's checkpoint and the head, at scrape time.",
    ),
    counter(
        PROJECTOR_EVENTS,
        &["projector"],
        "Events the projector applied or passed over since start.",
    ),
    counter(
        PROJECTOR_BATCHES,
        &["projector"],
        "Batches (read-model transactions) the projector committed since start.",
    ),
    counter(
        PROJECTOR_RETRIES,
        &["projector"],
        "Transient read-model failures the projector retried since start.",
    ),
    counter(
        PROJECTOR_QUARANTINED,
        &["projector"],
        "Events the projector could not project and quarantined (see `ledger verify`).",
    ),
    gauge(
        PROJECTOR_RATE,
        &["projector"],
        "Events per second of the projector's last catch-up that applied any.",
    ),
    gauge(
        PROJECTOR_STOPPED,
        &["projector"],
        "1 while the projector is stopped or retrying after an error, else 0.",
    ),
    histogram(
        PROJECTOR_BATCH_DURATION,
        LATENCY_BUCKETS,
        &["projector"],
        "Seconds to apply one batch to the read model and commit it with its checkpoint.",
    ),
    counter(
        TRACKING_CONFLICTS,
        &["kind"],
        "contribution_tracking changes the projector refused, by kind.",
    ),
    gauge(
        SCRUB_ELIGIBLE,
        &[],
        "Donations eligible for scrubbing but not yet scrubbed (as `ledger scrub status`).",
    ),
    gauge(
        SCRUB_OLDEST_AGE,
        &[],
        "Age in seconds of the oldest eligible, unscrubbed donation (0 when none).",
    ),
    gauge(
        SCRUB_STATUS_UP,
        &[],
        "1 when the scrub status could be read from the read model; 0 when not (the read \
         model is away) and the scrub-eligible gauges are absent.",
    ),
    counter(SCRUBBED, &["rule"], "Donations scrubbed, by rule."),
    gauge(
        MEMBERSHIP_SCRUB_ELIGIBLE,
        &[],
        "Membership applications eligible for scrubbing but not yet scrubbed (as `ledger scrub \
         status`).",
    ),
    gauge(
        MEMBERSHIP_SCRUB_OLDEST_AGE,
        &[],
        "Age in seconds of the oldest eligible, unscrubbed membership application (0 when none).",
    ),
    counter(
        MEMBERSHIPS_SCRUBBED,
        &["rule"],
        "Membership applications scrubbed, by rule.",
    ),
    gauge(
        ADDRESS_CHANGE_SCRUB_ELIGIBLE,
        &[],
        "Address changes whose address is eligible for scrubbing but not yet scrubbed (as \
         `ledger scrub status`).",
    ),
    gauge(
        ADDRESS_CHANGE_SCRUB_OLDEST_AGE,
        &[],
        "Age in seconds since the change of the oldest eligible, unscrubbed address change (0 \
         when none).",
    ),
    counter(
        ADDRESS_CHANGES_SCRUBBED,
        &["rule"],
        "Address changes scrubbed, by rule.",
    ),
    gauge(
        SUBSCRIPTION_SCRUB_ELIGIBLE,
        &[],
        "Subscriptions eligible for removal (their address crypto-shredded) but not yet \
         removed (as `ledger scrub status`).",
    ),
    gauge(
        SUBSCRIPTION_SCRUB_OLDEST_AGE,
        &[],
        "Age in seconds of the oldest subscription eligible for removal, not yet removed (0 \
         when none).",
    ),
    counter(
        SUBSCRIPTIONS_REMOVED,
        &["rule"],
        "Subscriptions removed by the removal job, by rule.",
    ),
    counter(
        KURRENTDB_CALLS,
        &["method"],
        "Calls to the KurrentDB port, by method.",
    ),
    counter(
        KURRENTDB_ERRORS,
        &["method", "error"],
        "Calls to the KurrentDB port answered with an error, by method and error.",
    ),
    counter(
        KURRENTDB_APPENDED,
        &[],
        "Events appended through the KurrentDB port.",
    ),
    counter(
        KURRENTDB_READ,
        &[],
        "Events read from the log for KurrentDB-port reads and subscriptions.",
    ),
    gauge(
        KURRENTDB_SUBSCRIPTIONS,
        &[],
        "Live catch-up subscriptions on the KurrentDB port.",
    ),
    counter(
        crate::civishare::receive::REFUSALS,
        &["reason"],
        "CiviShare messages refused whole (nothing appended), by reason: malformed, unsigned, \
         unknown_sender, bad_signature, stale, replayed.",
    ),
    counter(
        crate::civishare::receive::RECEIVED,
        &["status"],
        "Changes received from CiviShare peers, by what became of them: applied, ignored_loop, \
         refused.",
    ),
    counter(
        crate::civishare::deliver::SENT,
        &["peer"],
        "Changes delivered to a CiviShare peer (acknowledged), by peer.",
    ),
    counter(
        crate::civishare::deliver::FAILURES,
        &["peer"],
        "Failed deliveries to a CiviShare peer (each retried after a back-off), by peer.",
    ),
    gauge(
        crate::civishare::deliver::QUEUE_DEPTH,
        &["peer"],
        "Changes queued for a CiviShare peer and not yet acknowledged.",
    ),
    gauge(
        crate::civishare::deliver::OLDEST_UNDELIVERED,
        &["peer"],
        "Age in seconds of the oldest change queued for a CiviShare peer and not yet \
         acknowledged (0 when none).",
    ),
    gauge(
        KURRENTDB_SUBSCRIBER_LAG,
        &[],
        "The largest lag, in events behind the log's head, of a KurrentDB-port subscription.",
    ),
];

/// The entry for `name`.
pub fn spec(name: &str) -> Option<&'static Spec> {
    CATALOG.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_only_counters_end_in_total() {
        for s in CATALOG {
            assert_eq!(
                s.kind == Kind::Counter,
                s.name.ends_with("_total"),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn names_are_unique_and_every_metric_is_explained() {
        let mut names: Vec<_> = CATALOG.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len());
        assert!(CATALOG.iter().all(|s| s.help.len() > 10));
    }
}
