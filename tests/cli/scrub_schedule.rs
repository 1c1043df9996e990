//! Scrubbing you can see coming: the scrub-eligible gauge `serve` publishes right after
//! start-up already shows the figure of `ledger scrub status` (it waits for the projector's
//! catch-up instead of counting a read model behind the log); `--scrub-at-start` runs the first
//! scheduled scrub at once, of donations and membership applications (by default it waits one
//! interval, see `cli::jobs`' unit tests and `cli_serve`); a dry run says "would scrub" on
//! stdout and in its log line and changes nothing. Each on the embedded log and on the
//! KurrentDB backend.
use crate::membership_scrub::{self, Kind};
use crate::serve_read_model_outage::{
    add_donations, cli_eligible, eventually, job_args, scrub_gauges, start_jobs, stop_jobs,
};
use crate::support;

use std::time::Duration;

use ledger::proto::events as ev;
use support::api::*;

/// A SQLite read model of its own in `app`'s directory, new and empty.
fn fresh_read_model(app: &TestApp, name: &str) -> String {
    format!("sqlite://{}", app.dir.path().join(name).display())
}

// The schedule on both event-log backends: the embedded log and KurrentDB.
crate::on_both_logs!(
    the_scrub_gauge_published_at_start_up_is_the_figure_of_scrub_status,
    scrub_at_start_runs_the_first_scheduled_scrub_at_once,
    a_dry_run_says_would_scrub_and_scrubs_nothing,
);

async fn the_scrub_gauge_published_at_start_up_is_the_figure_of_scrub_status(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    add_donations(&mut app, ev::PaymentMethod::Paypal, 5).await;
    add_donations(&mut app, ev::PaymentMethod::BankTransfer, 2).await;
    // A read model behind the log (new), and no refresh but the first for an hour: the first
    // publication is the one an operator sees for that hour.
    let url = fresh_read_model(&app, "jobs-readmodel.sqlite");
    let mut args = job_args();
    args.scrub.scrub_grace_hours = 0;
    args.scrub_status_interval_seconds = 3600;
    let (jobs, shutdown) = start_jobs(&app, &url, args).await;
    let metrics = app.metrics.clone();
    eventually("the scrub gauges are published", 60, || async {
        scrub_gauges(&metrics).0.is_some()
    })
    .await;
    let published = scrub_gauges(&metrics);
    let figure = cli_eligible(&app, &url);
    assert_eq!(figure, 5.0, "the pending PayPal donations are eligible");
    assert_eq!(
        published,
        (Some(figure), Some(1.0)),
        "the first publication shows what `ledger scrub status` prints"
    );
    stop_jobs(jobs, shutdown).await;
}

async fn scrub_at_start_runs_the_first_scheduled_scrub_at_once(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let ids = add_donations(&mut app, ev::PaymentMethod::Paypal, 3).await;
    // A membership application, due at once with a grace of 0 hours: the schedule scrubs it
    // too.
    let application = membership_scrub::make(&mut app, 1, Kind::Person, &[]).await;
    let url = fresh_read_model(&app, "jobs-readmodel.sqlite");
    let mut args = job_args();
    args.scrub.scrub_grace_hours = 0;
    args.scrub.membership_scrub_grace_hours = 0;
    args.scrub_interval_minutes = 60;
    args.scrub_at_start = true;
    assert_eq!(args.scrub_first_run_after(), Duration::ZERO);
    let (jobs, shutdown) = start_jobs(&app, &url, args).await;
    let log = app.log.clone();
    eventually(
        "every abandoned donation and the application are scrubbed at start",
        60,
        || {
            let (log, ids) = (log.clone(), ids.clone());
            async move {
                for id in ids {
                    if types(&log, &format!("scrub-{id}")).await.is_empty() {
                        return false;
                    }
                }
                let stream = format!("membership_scrub-{application}");
                !types(&log, &stream).await.is_empty()
            }
        },
    )
    .await;
    stop_jobs(jobs, shutdown).await;
}

async fn a_dry_run_says_would_scrub_and_scrubs_nothing(backend: LogBackend) {
    let mut app = spawn_app_on(backend).await;
    let ids = add_donations(&mut app, ev::PaymentMethod::Paypal, 2).await;
    let out = app
        .ledger()
        .env("RUST_LOG", "info")
        .args(["scrub", "--dry-run", "--scrub-grace-hours", "0"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("would scrub 2 donation(s)"), "{stdout}");
    let line = stderr
        .lines()
        .find(|l| l.contains("scrub dry run finished"))
        .unwrap_or_else(|| panic!("no dry-run log line: {stderr}"));
    assert!(line.contains("would_scrub=2"), "{line}");
    assert!(
        !stderr.contains("scrubbed="),
        "a dry run scrubs nothing: {stderr}"
    );
    for id in ids {
        assert!(types(&app.log, &format!("scrub-{id}")).await.is_empty());
    }
}
