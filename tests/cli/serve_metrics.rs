//! Monitoring you can trust, on a real `ledger serve`: donations go in over gRPC, `/metrics`
//! is scraped and parsed, every series has its HELP and TYPE, and every gauge is compared with
//! what the CLI reports (`scrub status`, `verify --no-catch-up`, `--version`) or with what the
//! test itself did. `/healthz` answers while `/readyz` says why the ledger is not ready (a read
//! model that does not answer) and turns ready once the projector has caught up.
use crate::support;
use crate::support::http_get as get;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ledger::metrics::exposition::{self, Exposition};
use ledger::proto::api::ledger_client::LedgerClient;
use ledger::proto::events as ev;
use support::api::{context, donation, membership, new_address, with_token};

use super::cli_serve::free_port;
use super::migrate::ledger;

/// A running `ledger serve` and its ports.
struct Served {
    child: Child,
    grpc: u16,
    http: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ledger serve` on `data_dir` with `extra` flags.
fn serve(data_dir: &Path, extra: &[&str]) -> Served {
    let (grpc, http) = (free_port(), free_port());
    let child = Command::new(assert_cmd::cargo::cargo_bin("ledger"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{grpc}"),
            "--metrics-listen",
            &format!("127.0.0.1:{http}"),
            "--kurrentdb-listen",
            "off",
            "--scrub-interval-minutes",
            "0",
            "--scrub-grace-hours",
            "0",
            "--membership-scrub-grace-hours",
            "0",
            "--address-change-scrub-grace-days",
            "0",
        ])
        .args(extra)
        .env("LEDGER_DATA_DIR", data_dir)
        .env_remove("LEDGER_READ_MODEL_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Served { child, grpc, http }
}

/// Polls `check` every 100 ms until it holds, for at most `secs` seconds.
fn wait_for(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every sample belongs to a family with HELP and TYPE, every line parses, and counters (and
/// only counters) end in `_total`.
fn assert_well_formed(e: &Exposition) {
    assert!(
        e.malformed.is_empty(),
        "unparsable lines: {:?}",
        e.malformed
    );
    assert!(!e.samples.is_empty());
    for s in &e.samples {
        let family = e.family_of(&s.name);
        assert!(e.help.contains_key(family), "{} has no HELP", s.name);
        let kind = e.types.get(family).map(String::as_str);
        assert!(kind.is_some(), "{} has no TYPE", s.name);
        assert_eq!(
            kind == Some("counter"),
            family.ends_with("_total"),
            "{family} is typed {kind:?}"
        );
    }
}

fn value(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    e.value(name, labels)
        .unwrap_or_else(|| panic!("no series {name} {labels:?}"))
}

#[tokio::test]
async fn every_series_has_help_and_type_and_every_gauge_agrees_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let served = serve(dir.path(), &[]);
    wait_for("/healthz answers", 30, || {
        get(served.http, "/healthz").is_some_and(|(code, _)| code == 200)
    });

    // Three PayPal donations stay pending: abandoned at once with a grace of 0 hours, so
    // eligible for scrubbing. Two direct debits are not.
    let mut client = LedgerClient::connect(format!("http://127.0.0.1:{}", served.grpc))
        .await
        .unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let methods = [
        ev::PaymentMethod::Paypal,
        ev::PaymentMethod::Paypal,
        ev::PaymentMethod::Paypal,
        ev::PaymentMethod::DirectDebit,
        ev::PaymentMethod::DirectDebit,
    ];
    for method in methods {
        client
            .add_donation(with_token(donation(method, 2_500), token.trim()))
            .await
            .unwrap();
    }
    // One membership application: due at once with a grace of 0 hours.
    client
        .apply_for_membership(with_token(
            membership(ev::PaymentMethod::DirectDebit, 1_000, 1),
            token.trim(),
        ))
        .await
        .unwrap();
    // One address change used by the first donor: due at once with a grace of 0 days.
    let first = client
        .add_donation(with_token(
            donation(ev::PaymentMethod::DirectDebit, 2_500),
            token.trim(),
        ))
        .await
        .unwrap()
        .into_inner();
    client
        .change_address(with_token(
            ledger::proto::api::ChangeAddressRequest {
                context: context(ledger::proto::api::ActorKind::Frontend),
                identifier: first.address_change_token,
                address: Some(new_address()),
                donation_receipt_opt_out: false,
            },
            token.trim(),
        ))
        .await
        .unwrap();
    let scrape = || exposition::parse(&get(served.http, "/metrics").unwrap().1);
    wait_for("the projector caught up with the log", 60, || {
        let e = scrape();
        let p = [("projector", "readmodel")];
        e.value("ledger_event_log_head_position", &[])
            .is_some_and(|h| h > 0.0)
            && e.value("ledger_projector_lag_positions", &p) == Some(0.0)
    });
    let (code, ready) = get(served.http, "/readyz").unwrap();
    assert_eq!(code, 200, "{ready}");
    assert!(ready.contains("\"ready\":true"), "{ready}");

    let e = scrape();
    assert_well_formed(&e);
    let p = [("projector", "readmodel")];

    // What the CLI reports, from the same data directory while serve runs.
    let scrub: serde_json::Value = serde_json::from_str(&ledger(
        dir.path(),
        &[
            "scrub",
            "--scrub-grace-hours",
            "0",
            "--membership-scrub-grace-hours",
            "0",
            "--address-change-scrub-grace-days",
            "0",
            "status",
            "--json",
        ],
    ))
    .unwrap();
    let verify: serde_json::Value =
        serde_json::from_str(&ledger(dir.path(), &["verify", "--no-catch-up", "--json"])).unwrap();
    let version = ledger(dir.path(), &["--version"]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();

    let mut checked = BTreeSet::new();
    let mut check = |name: &'static str, labels: &[(&str, &str)], expected: f64| {
        assert_eq!(value(&e, name, labels), expected, "{name} {labels:?}");
        checked.insert(name);
    };
    check(
        "ledger_scrub_eligible",
        &[],
        scrub["eligible"].as_f64().unwrap(),
    );
    check("ledger_scrub_eligible", &[], 3.0);
    check(
        "ledger_membership_scrub_eligible",
        &[],
        scrub["memberships"]["eligible"].as_f64().unwrap(),
    );
    check("ledger_membership_scrub_eligible", &[], 1.0);
    check(
        "ledger_address_change_scrub_eligible",
        &[],
        scrub["address_changes"]["eligible"].as_f64().unwrap(),
    );
    check("ledger_address_change_scrub_eligible", &[], 1.0);
    // No subscription in this workload: the gauges read 0.
    check(
        "ledger_subscription_scrub_eligible",
        &[],
        scrub["subscriptions"]["eligible"].as_f64().unwrap(),
    );
    check("ledger_subscription_scrub_eligible", &[], 0.0);
    check(
        "ledger_subscription_scrub_oldest_eligible_age_seconds",
        &[],
        0.0,
    );
    check("ledger_scrub_status_up", &[], 1.0);
    let position = verify["position"].as_f64().unwrap();
    let head = verify["head_at_start"].as_f64().unwrap();
    check("ledger_projector_checkpoint", &p, position);
    check("ledger_event_log_head_position", &[], head);
    check("ledger_projector_lag_positions", &p, head - position);
    check(
        "ledger_projector_events_total",
        &p,
        verify["rebuilt_events"].as_f64().unwrap(),
    );
    check("ledger_projector_stopped", &p, 0.0);
    check("ledger_read_model_connected", &[], 1.0);
    check(
        "ledger_grpc_requests_total",
        &[("method", "AddDonation"), ("code", "Ok")],
        (methods.len() + 1) as f64,
    );
    check(
        "ledger_grpc_request_duration_seconds_count",
        &[("method", "AddDonation")],
        (methods.len() + 1) as f64,
    );

    let build = e
        .samples
        .iter()
        .find(|s| s.name == "ledger_build_info")
        .expect("ledger_build_info");
    assert_eq!(build.value, 1.0);
    assert_eq!(
        version.trim(),
        format!("ledger {}", build.label("version").unwrap()),
        "the build-info label is the version `ledger --version` prints"
    );
    checked.insert("ledger_build_info");

    // The oldest eligible donation's age: the CLI prints the time, the gauge the age at the
    // scrape, which came first.
    let oldest = chrono::DateTime::parse_from_rfc3339(scrub["oldest"].as_str().unwrap()).unwrap();
    let age_now = now.as_secs_f64() - oldest.timestamp() as f64;
    let age = value(&e, "ledger_scrub_oldest_eligible_age_seconds", &[]);
    assert!(age >= 0.0 && age <= age_now + 1.0, "{age} vs {age_now}");
    checked.insert("ledger_scrub_oldest_eligible_age_seconds");
    let oldest = scrub["memberships"]["oldest"].as_str().unwrap();
    let oldest = chrono::DateTime::parse_from_rfc3339(oldest).unwrap();
    let age_now = now.as_secs_f64() - oldest.timestamp() as f64;
    let age = value(
        &e,
        "ledger_membership_scrub_oldest_eligible_age_seconds",
        &[],
    );
    assert!(age >= 0.0 && age <= age_now + 1.0, "{age} vs {age_now}");
    checked.insert("ledger_membership_scrub_oldest_eligible_age_seconds");
    let oldest = scrub["address_changes"]["oldest"].as_str().unwrap();
    let oldest = chrono::DateTime::parse_from_rfc3339(oldest).unwrap();
    let age_now = now.as_secs_f64() - oldest.timestamp() as f64;
    let age = value(
        &e,
        "ledger_address_change_scrub_oldest_eligible_age_seconds",
        &[],
    );
    assert!(age >= 0.0 && age <= age_now + 1.0, "{age} vs {age_now}");
    checked.insert("ledger_address_change_scrub_oldest_eligible_age_seconds");
    let rate = value(&e, "ledger_projector_last_run_events_per_second", &p);
    assert!(
        rate > 0.0,
        "the last catch-up that projected anything has a rate"
    );
    checked.insert("ledger_projector_last_run_events_per_second");

    // The process: started between the test's start and now, holding memory and descriptors.
    let start = value(&e, "process_start_time_seconds", &[]);
    assert!(
        start >= started.as_secs_f64() - 2.0 && start <= now.as_secs_f64() + 1.0,
        "start time {start}"
    );
    let fds = value(&e, "process_open_fds", &[]);
    assert!(fds >= 3.0 && fds <= value(&e, "process_max_fds", &[]));
    assert!(value(&e, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(
        value(&e, "process_virtual_memory_bytes", &[])
            >= value(&e, "process_resident_memory_bytes", &[])
    );
    checked.extend([
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
    ]);

    // A lone serve on a SQLite read model holds the projector's lease (the scrub schedule's
    // only once its first run is due).
    assert_eq!(
        value(&e, "ledger_job_lease_held", &[("job", "projector")]),
        1.0
    );
    checked.insert("ledger_job_lease_held");

    // Every gauge the scrape shows was compared above.
    let gauges: BTreeSet<&str> = e
        .types
        .iter()
        .filter(|(_, kind)| *kind == "gauge")
        .map(|(name, _)| name.as_str())
        .filter(|name| e.samples.iter().any(|s| s.name == *name))
        .collect();
    let unchecked: Vec<_> = gauges.difference(&checked).collect();
    assert!(
        unchecked.is_empty(),
        "gauges nobody compared: {unchecked:?}"
    );

    // Latency histograms are filled: appends and fsyncs of the embedded log, projector
    // batches.
    assert!(value(&e, "ledger_event_log_append_duration_seconds_count", &[]) >= 5.0);
    assert!(value(&e, "ledger_event_log_fsync_duration_seconds_count", &[]) >= 1.0);
    assert!(value(&e, "ledger_projector_batch_duration_seconds_count", &p) >= 1.0);
    assert!(value(&e, "process_cpu_seconds_total", &[]) > 0.0);
}

#[test]
fn readyz_says_why_while_the_read_model_does_not_answer_and_healthz_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: serve starts anyway (intake never waits for the back office).
    let served = serve(
        dir.path(),
        &["--read-model-url", "postgres://postgres@127.0.0.1:1/test"],
    );
    wait_for("/healthz answers", 30, || {
        get(served.http, "/healthz").is_some_and(|(code, body)| code == 200 && body == "ok\n")
    });
    let (code, body) = get(served.http, "/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["ready"], false);
    let reasons = report["reasons"].to_string();
    assert!(reasons.contains("read model not connected"), "{reasons}");

    let e = exposition::parse(&get(served.http, "/metrics").unwrap().1);
    assert_well_formed(&e);
    assert_eq!(e.value("ledger_read_model_connected", &[]), Some(0.0));
    assert_eq!(e.value("ledger_scrub_status_up", &[]), Some(0.0));
    assert_eq!(
        e.value("ledger_scrub_eligible", &[]),
        None,
        "an unknown figure is absent, not 0"
    );
    assert_eq!(e.value("ledger_membership_scrub_eligible", &[]), None);
    assert_eq!(e.value("ledger_address_change_scrub_eligible", &[]), None);
    assert_eq!(e.value("ledger_subscription_scrub_eligible", &[]), None);
}
