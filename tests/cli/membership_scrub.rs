//! The membership scrub rule end to end (`domain/wmde-memberships.md` §1.6): applications go
//! through the real gRPC server (its clock set back for those that must be older than the
//! test run), then `ledger scrub` projects and scrubs them beside the donations. Exported and
//! cancelled applications are scrubbed at once, every other one after the grace period,
//! moderated or not; younger ones are kept. Afterwards the statistics columns (applicant kind,
//! fee, interval, membership type, payment method) are kept, the applicant's names, address,
//! email, phone and bank data occur in no file of the data directory and no command output, a
//! rebuild still shows the rows scrubbed, and `GetMembership` has no applicant; on the
//! embedded log and on the KurrentDB backend.
use crate::scrub_policy::{found_nowhere, iban, ledger, read_model, report_of};
use crate::support;

use chrono::{Duration, Utc};
use ledger::intake::{Clock, ManualClock};
use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use support::api::*;

/// What happens to an application after it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The export batch exports it.
    Export,
    /// An administrator cancels it.
    Cancel,
}

/// Who applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A person paying 10 EUR a month.
    Person,
    /// A person paying 83.34 EUR a month: above 1000 EUR a year, moderated at once.
    Moderated,
    /// A company paying 100 EUR a year.
    Company,
}

/// One row of the matrix: n, who applies, days before now, what happens to it, and the rule
/// that scrubs it (`None`: it is kept).
type Case = (u64, Kind, i64, &'static [Step], Option<&'static str>);

fn surname(n: u64) -> String {
    format!("Quastenflosser{n:04}x")
}
fn company(n: u64) -> String {
    format!("Flossenwerk{n:04} GmbH")
}
fn email(n: u64) -> String {
    format!("korbinian{n:04}@mitglied.example")
}
fn street(n: u64) -> String {
    format!("Mitgliedsgasse{n:04}y 3")
}
fn phone(n: u64) -> String {
    format!("+49 30 77{n:04}")
}
/// What of applicant `n` must not survive its scrub.
fn personal_data(n: u64) -> Vec<String> {
    vec![
        surname(n),
        company(n),
        email(n),
        street(n),
        phone(n),
        iban(500 + n),
    ]
}

/// Applies as applicant `n` through the API and applies `steps`, each through the API too.
/// Returns the membership id.
pub(crate) async fn make(app: &mut TestApp, n: u64, kind: Kind, steps: &[Step]) -> u64 {
    let mut req = membership(ev::PaymentMethod::DirectDebit, 1_000, 1);
    let a = req.applicant.as_mut().unwrap();
    a.last_name = surname(n);
    a.email = email(n);
    a.street = street(n);
    a.phone = phone(n);
    req.payment.as_mut().unwrap().iban = iban(500 + n);
    match kind {
        Kind::Person => {}
        Kind::Moderated => req.fee_cents = 8_334,
        Kind::Company => {
            let a = req.applicant.as_mut().unwrap();
            a.kind = ev::ApplicantKind::Company as i32;
            a.company_name = company(n);
            a.date_of_birth.clear();
            req.fee_cents = 10_000;
            req.interval_months = 12;
        }
    }
    let applied = app
        .client
        .apply_for_membership(with_token(req, ADMIN))
        .await
        .unwrap()
        .into_inner();
    let moderated = if kind == Kind::Moderated {
        "open"
    } else {
        "none"
    };
    assert_eq!(applied.moderation_state, moderated, "application {n}");
    let id = applied.membership_id;
    for step in steps {
        match step {
            Step::Export => {
                let exported = app
                    .client
                    .mark_memberships_exported(with_token(
                        api::MarkMembershipsExportedRequest {
                            context: context(ActorKind::System),
                            membership_ids: vec![id],
                            batch_id: "M1".into(),
                        },
                        ADMIN,
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(exported.exported, [id], "application {n}");
            }
            Step::Cancel => {
                app.client
                    .cancel_membership(with_token(
                        api::MembershipActionRequest {
                            context: context(ActorKind::FocUser),
                            membership_id: id,
                            reason: "test".into(),
                        },
                        ADMIN,
                    ))
                    .await
                    .unwrap();
            }
        }
    }
    id
}

/// The membership ids and rules of a `ledger scrub --json` report, by id.
fn report(out: &std::process::Output) -> Vec<(u64, String)> {
    assert_eq!(
        report_of(out, "scrubbed", "donation_id"),
        [],
        "no donations here, and the donations' key is still there"
    );
    report_of(out, "memberships_scrubbed", "membership_id")
}

/// `ledger scrub [policy] status --json`: (eligible donations, eligible applications).
fn eligible(app: &TestApp, policy: &[&str]) -> (u64, u64) {
    let args = [&["scrub"][..], policy, &["status", "--json"]].concat();
    let status: serde_json::Value = serde_json::from_slice(&ledger(app, &args).stdout).unwrap();
    (
        status["eligible"].as_u64().unwrap(),
        status["memberships"]["eligible"].as_u64().unwrap(),
    )
}

crate::on_both_logs!(
    exported_cancelled_and_overdue_applications_are_scrubbed_keeping_only_the_statistics,
);

async fn exported_cancelled_and_overdue_applications_are_scrubbed_keeping_only_the_statistics(
    backend: LogBackend,
) {
    let now = Utc::now();
    let clock = ManualClock::new(now);
    let mut app = spawn_app_on_with(backend, |s| s.clock = Clock::Manual(clock.clone())).await;
    let matrix: Vec<Case> = vec![
        // Scrubbed at once: exported, cancelled (moderated or not).
        (1, Kind::Person, 1, &[Step::Export], Some("exported")),
        (2, Kind::Company, 1, &[Step::Export], Some("exported")),
        (
            3,
            Kind::Person,
            1,
            &[Step::Cancel],
            Some("cancelled_or_deleted"),
        ),
        (
            4,
            Kind::Moderated,
            1,
            &[Step::Cancel],
            Some("cancelled_or_deleted"),
        ),
        // Scrubbed after the grace period of two days, moderated or not.
        (5, Kind::Person, 3, &[], Some("after_grace_period")),
        (6, Kind::Moderated, 3, &[], Some("after_grace_period")),
        (7, Kind::Company, 30, &[], Some("after_grace_period")),
        // Kept: neither exported nor cancelled, inside the grace period.
        (20, Kind::Person, 1, &[], None),
        (21, Kind::Moderated, 1, &[], None),
        (22, Kind::Company, 1, &[], None),
    ];
    let mut made = Vec::new();
    for (n, kind, days, steps, rule) in &matrix {
        clock.set(now - Duration::days(*days));
        let id = make(&mut app, *n, *kind, steps).await;
        made.push((*n, *kind, id, *rule));
    }
    clock.set(now);
    let mut expected: Vec<(u64, String)> = made
        .iter()
        .filter_map(|(_, _, id, rule)| rule.map(|r| (*id, r.to_owned())))
        .collect();
    expected.sort();
    let scrubbed = |id: u64| expected.iter().any(|(e, _)| *e == id);

    let mut outputs = Vec::new();
    let dry = ledger(&app, &["scrub", "--dry-run", "--json"]);
    assert_eq!(
        report(&dry),
        expected,
        "the dry run lists exactly the matrix's scrubbed applications, with their rules"
    );
    outputs.push(dry);
    let text = ledger(&app, &["scrub", "--dry-run"]);
    let listed = String::from_utf8_lossy(&text.stdout).into_owned();
    for (id, rule) in &expected {
        assert!(
            listed.contains(&format!("would scrub membership {id:<10}")) && listed.contains(rule),
            "{listed}"
        );
    }
    outputs.push(text);
    assert_eq!(eligible(&app, &[]), (0, expected.len() as u64));
    // The grace period is the policy's: at 12 hours the day-old applications are due too.
    assert_eq!(
        eligible(&app, &["--membership-scrub-grace-hours", "12"]),
        (0, expected.len() as u64 + 3)
    );

    let run = ledger(&app, &["scrub", "--json"]);
    assert_eq!(
        report(&run),
        expected,
        "the run scrubs what the dry run listed"
    );
    outputs.push(run);
    let status = ledger(&app, &["scrub", "status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("membership applications eligible, not yet scrubbed: 0"),
        "{status:?}"
    );
    outputs.push(status);
    assert_eq!(eligible(&app, &[]), (0, 0));

    // The read model: scrubbed rows keep only the statistics.
    let rm = read_model(app.dir.path()).await;
    for (n, kind, id, _) in &made {
        let row = rm
            .row("membership_application", *id as i64)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("row of application {n}"));
        assert_eq!(
            row["is_scrubbed"],
            scrubbed(*id).to_string(),
            "application {n}: {row:?}"
        );
        let (applicant_kind, fee, interval) = match kind {
            Kind::Person => ("person", "1000", "1"),
            Kind::Moderated => ("person", "8334", "1"),
            Kind::Company => ("company", "10000", "12"),
        };
        assert_eq!(row["applicant_kind"], applicant_kind, "application {n}");
        assert_eq!(row["fee_cents"], fee, "application {n}");
        assert_eq!(row["interval_months"], interval, "application {n}");
        assert_eq!(row["membership_type"], "sustaining", "application {n}");
        assert_eq!(row["payment_method"], "BEZ", "application {n}");
        assert_eq!(row["campaign"], "Spring", "tracking kept for {n}");
        if scrubbed(*id) {
            let personal = "salutation first_name last_name company_name street postcode city \
                            email phone date_of_birth iban bic";
            for c in personal.split_whitespace() {
                assert_eq!(row[c], "", "{c} of {n}");
            }
        } else {
            assert_eq!(row["last_name"], surname(*n), "application {n}");
        }
    }
    let dump = rm.dump().await.unwrap();
    rm.close().await;

    // A rebuild still shows them scrubbed.
    outputs.push(ledger(&app, &["rebuild"]));
    let rm = read_model(app.dir.path()).await;
    assert_eq!(
        rm.dump().await.unwrap()["membership_application"],
        dump["membership_application"],
        "a rebuild yields the same membership rows"
    );
    rm.close().await;

    // GetMembership folds the log: scrubbed applications have no applicant any more.
    for (n, _, id, _) in &made {
        let m = app
            .client
            .get_membership(with_token(
                api::GetMembershipRequest { membership_id: *id },
                ADMIN,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.is_scrubbed, scrubbed(*id), "application {n}");
        assert_eq!(
            m.applicant.map(|a| a.last_name),
            (!scrubbed(*id)).then(|| surname(*n)),
            "application {n}"
        );
    }
    let (_, _, first, _) = made[0];
    let history = ledger(
        &app,
        &["history", "membership", &first.to_string(), "--json"],
    );
    assert!(support::contains(
        &history.stdout,
        b"PersonalDataScrubbed.v1"
    ));
    assert!(support::contains(&history.stdout, b"<scrubbed>"));
    outputs.push(history);

    // No file of the data directory and no command output holds a scrubbed applicant's data;
    // the kept applicants' data is still there (sealed in the log, clear in the read model).
    let files = support::read_dir_bytes(app.dir.path());
    for (n, _, id, _) in &made {
        if !scrubbed(*id) {
            continue;
        }
        for needle in personal_data(*n) {
            found_nowhere(&needle, &files, &outputs);
        }
    }
    assert!(
        files
            .iter()
            .any(|(_, b)| support::contains(b, surname(20).as_bytes())),
        "kept applicants are still readable"
    );
}
