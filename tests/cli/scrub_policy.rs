//! The scrub policy's test matrix (from the seed document), end to end: donations go through
//! the real gRPC server (its clock set back for the donations that must be older than the test
//! run), then `ledger scrub` projects and scrubs. Afterwards the scrubbed donors' names, emails
//! and IBANs occur in no file of the data directory and in no command output, a rebuild still
//! shows them scrubbed, and `GetDonation` shows a scrubbed donor apart from an anonymous one;
//! on the embedded log and on the KurrentDB backend (whose log is in the data directory too).
use crate::support;

use std::path::Path;

use chrono::{Duration, Utc};
use ledger::intake::{Clock, ManualClock};
use ledger::projection::ReadModel;
use ledger::proto::api::{self, ActorKind};
use ledger::proto::events as ev;
use prost::Message;
use support::api::*;

use ev::PaymentMethod::{
    BankTransfer as Ueb, CreditCard as Mcp, DirectDebit as Bez, Paypal as Ppl, Sofort as Sub,
};

/// What happens to a donation after it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The provider books the payment.
    Book,
    /// The export batch exports it.
    Export,
    /// An administrator deletes it.
    Delete,
    /// The donor cancels it.
    Cancel,
}

/// A donation made through the API: the donor's data carries `n`, so each donor's personal data
/// can be searched for on its own.
struct Made {
    n: u64,
    donation_id: u64,
    payment_reference_code: String,
}

/// One row of the matrix: n, payment method, days before now it is made, amount in cents, what
/// happens to it, and the rule that scrubs it (`None`: it is kept).
type Case = (
    u64,
    ev::PaymentMethod,
    i64,
    i64,
    &'static [Step],
    Option<&'static str>,
);

/// Above the moderation policy's amount limit: the donation is moderated at once.
const MODERATED_CENTS: i64 = 150_000;

fn surname(n: u64) -> String {
    format!("Mustermann{n:04}x")
}
fn email(n: u64) -> String {
    format!("erika{n:04}@beispiel.example")
}
/// A German IBAN with a valid checksum, different for every `n`.
pub(crate) fn iban(n: u64) -> String {
    let bban = format!("37040044{:010}", 532_013_000 + n);
    let rem = format!("{bban}131400")
        .bytes()
        .fold(0u64, |r, b| (r * 10 + u64::from(b - b'0')) % 97);
    format!("DE{:02}{bban}", 98 - rem)
}
fn transaction_id(n: u64) -> String {
    format!("TX{n:04}SECRET")
}

/// Makes donation `n` through the API and applies `steps`, each through the API too.
async fn make(
    app: &mut TestApp,
    n: u64,
    method: ev::PaymentMethod,
    kind: ev::DonorKind,
    amount_cents: i64,
    steps: &[Step],
) -> Made {
    let mut req = donation(method, amount_cents);
    let donor = req.donor.as_mut().unwrap();
    donor.kind = kind as i32;
    donor.last_name = surname(n);
    donor.email = email(n);
    if method == Bez {
        req.payment.as_mut().unwrap().iban = iban(n);
    }
    let added = app
        .client
        .add_donation(with_token(req, ADMIN))
        .await
        .unwrap()
        .into_inner();
    let moderated = if amount_cents >= MODERATED_CENTS {
        "open"
    } else {
        "none"
    };
    assert_eq!(added.moderation_state, moderated, "donation {n}");
    let id = added.donation_id;
    let action = |kind: ActorKind| api::DonationActionRequest {
        context: context(kind),
        donation_id: id,
        reason: "test".into(),
    };
    for step in steps {
        match step {
            Step::Book => {
                let booked = app
                    .client
                    .book_payment(with_token(
                        api::BookPaymentRequest {
                            context: context(ActorKind::Provider),
                            payment_id: added.payment_id,
                            transaction_id: transaction_id(n),
                            payer_id: format!("PAYER{n:04}"),
                            ..Default::default()
                        },
                        PROVIDER,
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(booked.payment_state, "booked", "donation {n}");
            }
            Step::Export => {
                let exported = app
                    .client
                    .mark_exported(with_token(
                        api::MarkExportedRequest {
                            context: context(ActorKind::System),
                            donation_ids: vec![id],
                            batch_id: "B1".into(),
                        },
                        ADMIN,
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(exported.exported, [id], "donation {n}");
            }
            Step::Delete => {
                app.client
                    .delete_donation(with_token(action(ActorKind::FocUser), ADMIN))
                    .await
                    .unwrap();
            }
            Step::Cancel => {
                app.client
                    .cancel_donation(with_token(action(ActorKind::Frontend), ADMIN))
                    .await
                    .unwrap();
            }
        }
    }
    Made {
        n,
        donation_id: id,
        payment_reference_code: added.payment_reference_code,
    }
}

/// Runs the built `ledger` on `app`'s data directory and log; it must succeed.
pub(crate) fn ledger(app: &TestApp, args: &[&str]) -> std::process::Output {
    let out = app.ledger().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The ids and rules of a `ledger scrub --json` report, by donation id.
fn report(out: &std::process::Output) -> Vec<(u64, String)> {
    report_of(out, "scrubbed", "donation_id")
}

/// The ids (`id_key`) and rules of the entries under `list_key` of a `ledger scrub --json`
/// report, by id.
pub(crate) fn report_of(
    out: &std::process::Output,
    list_key: &str,
    id_key: &str,
) -> Vec<(u64, String)> {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rules: Vec<(u64, String)> = report[list_key]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s[id_key].as_u64().unwrap(),
                s["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rules.sort();
    rules
}

/// `ledger scrub [policy] status`: how many donations are eligible.
fn eligible(app: &TestApp, policy: &[&str]) -> u64 {
    let args = [&["scrub"][..], policy, &["status", "--json"]].concat();
    let status: serde_json::Value = serde_json::from_slice(&ledger(app, &args).stdout).unwrap();
    status["eligible"].as_u64().unwrap()
}

/// The SQLite read model of the data directory `dir`.
pub(crate) async fn read_model(dir: &Path) -> ReadModel {
    ReadModel::connect(&format!(
        "sqlite://{}",
        dir.join("readmodel.sqlite").display()
    ))
    .await
    .unwrap()
}

async fn get_donation(app: &mut TestApp, id: u64) -> api::Donation {
    app.client
        .get_donation(with_token(
            api::GetDonationRequest { donation_id: id },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
}

// The scrub on both event-log backends: the embedded log and KurrentDB.
crate::on_both_logs!(
    the_scrub_policy_matrix_holds_through_the_api_and_no_personal_data_survives_anywhere,
    get_donation_after_a_scrub_shows_the_scrubbed_donor_apart_from_an_anonymous_one,
);

async fn the_scrub_policy_matrix_holds_through_the_api_and_no_personal_data_survives_anywhere(
    backend: LogBackend,
) {
    let now = Utc::now();
    let clock = ManualClock::new(now);
    let mut app = spawn_app_on_with(backend, |s| s.clock = Clock::Manual(clock.clone())).await;
    let person = ev::DonorKind::Person;
    let matrix: Vec<Case> = vec![
        // Scrubbed: abandoned PayPal, credit card and Sofort older than the grace period.
        (1, Ppl, 3, 2_500, &[], Some("abandoned")),
        (2, Mcp, 3, 2_500, &[], Some("abandoned")),
        (3, Sub, 3, 2_500, &[], Some("abandoned")),
        // Scrubbed: deleted by an administrator; cancelled by the donor.
        (
            4,
            Bez,
            1,
            2_500,
            &[Step::Delete],
            Some("cancelled_or_deleted"),
        ),
        (
            5,
            Ueb,
            1,
            2_500,
            &[Step::Cancel],
            Some("cancelled_or_deleted"),
        ),
        // Scrubbed: exported donations of every payment method, external ones booked first.
        (6, Bez, 1, 2_500, &[Step::Export], Some("exported")),
        (7, Ueb, 1, 2_500, &[Step::Export], Some("exported")),
        (
            8,
            Mcp,
            1,
            2_500,
            &[Step::Book, Step::Export],
            Some("exported"),
        ),
        (
            9,
            Ppl,
            1,
            2_500,
            &[Step::Book, Step::Export],
            Some("exported"),
        ),
        (
            10,
            Sub,
            1,
            2_500,
            &[Step::Book, Step::Export],
            Some("exported"),
        ),
        // Scrubbed: a moderated donation that is deleted.
        (
            11,
            Bez,
            1,
            MODERATED_CENTS,
            &[Step::Delete],
            Some("cancelled_or_deleted"),
        ),
        // Kept: pending PayPal and credit card inside the grace period.
        (20, Ppl, 1, 2_500, &[], None),
        (21, Mcp, 1, 2_500, &[], None),
        // Kept: unexported donations of every payment method (external ones booked), old.
        (22, Bez, 30, 2_500, &[], None),
        (23, Ueb, 30, 2_500, &[], None),
        (24, Mcp, 30, 2_500, &[Step::Book], None),
        (25, Ppl, 30, 2_500, &[Step::Book], None),
        (26, Sub, 30, 2_500, &[Step::Book], None),
        // Kept: a moderated donation neither exported nor deleted.
        (27, Bez, 60, MODERATED_CENTS, &[], None),
    ];
    let mut made = Vec::new();
    for (n, method, days, cents, steps, rule) in &matrix {
        clock.set(now - Duration::days(*days));
        let m = make(&mut app, *n, *method, person, *cents, steps).await;
        made.push((m, *rule));
    }
    clock.set(now);
    let data = app.dir.path().to_owned();
    let mut expected: Vec<(u64, String)> = made
        .iter()
        .filter_map(|(m, rule)| rule.map(|r| (m.donation_id, r.to_owned())))
        .collect();
    expected.sort();
    let scrubbed = |id: u64| expected.iter().any(|(e, _)| *e == id);

    let mut outputs = Vec::new();
    let dry = ledger(&app, &["scrub", "--dry-run", "--json"]);
    assert_eq!(
        report(&dry),
        expected,
        "the dry run lists exactly the matrix's scrubbed donations, with their rules"
    );
    outputs.push(dry);
    assert_eq!(eligible(&app, &[]), expected.len() as u64);
    // The grace period is the policy's: at 12 hours the pending day-old PayPal and credit-card
    // donations count as abandoned too.
    assert_eq!(
        eligible(&app, &["--scrub-grace-hours", "12"]),
        expected.len() as u64 + 2
    );

    let run = ledger(&app, &["scrub", "--json"]);
    assert_eq!(
        report(&run),
        expected,
        "the run scrubs what the dry run listed"
    );
    outputs.push(run);
    outputs.push(ledger(&app, &["scrub", "status"]));
    assert_eq!(eligible(&app, &[]), 0);

    // The read model: scrubbed rows keep only what the policy allows.
    let rm = read_model(&data).await;
    for (m, _) in &made {
        let row = rm
            .row("donation", m.donation_id as i64)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("row of donation {}", m.n));
        assert_eq!(
            row["is_scrubbed"],
            scrubbed(m.donation_id).to_string(),
            "donation {}: {row:?}",
            m.n
        );
        assert_eq!(row["salutation"], "Frau", "salutation kept for {}", m.n);
        assert_eq!(row["donor_kind"], "person", "donor kind kept for {}", m.n);
        if scrubbed(m.donation_id) {
            for c in [
                "first_name",
                "last_name",
                "email",
                "street",
                "postcode",
                "city",
            ] {
                assert_eq!(row[c], "", "{c} of {}", m.n);
            }
        } else {
            assert_eq!(row["last_name"], surname(m.n));
        }
    }
    let dump = rm.dump().await.unwrap();
    rm.close().await;

    // A rebuild still shows them scrubbed.
    outputs.push(ledger(&app, &["rebuild"]));
    let rm = read_model(&data).await;
    assert_eq!(
        rm.dump().await.unwrap()["donation"],
        dump["donation"],
        "a rebuild yields the same donation rows"
    );
    rm.close().await;

    // GetDonation folds the log: the same verdict, with the server's own view of the keys.
    for (m, _) in &made {
        let d = get_donation(&mut app, m.donation_id).await;
        assert_eq!(d.is_scrubbed, scrubbed(m.donation_id), "donation {}", m.n);
        assert_eq!(
            d.donor.map(|p| p.last_name),
            (!scrubbed(m.donation_id)).then(|| surname(m.n)),
            "donation {}",
            m.n
        );
    }
    for (m, _) in made.iter().filter(|(m, _)| scrubbed(m.donation_id)).take(2) {
        let id = m.donation_id.to_string();
        let history = ledger(&app, &["history", "donation", &id, "--json"]);
        assert!(support::contains(&history.stdout, b"<scrubbed>"));
        outputs.push(history);
    }

    // No file of the data directory holds a scrubbed donor's surname, email, IBAN, provider
    // transaction id or reference code; the kept donors' data is still there (sealed in the
    // log, clear in the read model).
    let needles = |m: &Made| {
        let mut v = vec![surname(m.n), email(m.n), iban(m.n), transaction_id(m.n)];
        if !m.payment_reference_code.is_empty() {
            v.push(m.payment_reference_code.clone());
            v.push(m.payment_reference_code.replace('-', ""));
        }
        v
    };
    let files = support::read_dir_bytes(&data);
    for (m, _) in made.iter().filter(|(m, _)| scrubbed(m.donation_id)) {
        for needle in needles(m) {
            found_nowhere(&needle, &files, &outputs);
        }
    }
    let kept = made.iter().find(|(m, _)| m.n == 22).unwrap();
    assert!(
        files
            .iter()
            .any(|(_, b)| support::contains(b, surname(kept.0.n).as_bytes())),
        "kept donors are still readable"
    );
}

/// Asserts that `needle` is in none of `files` (path and bytes) and in no stdout or stderr of
/// `outputs`.
/// `ledger export-audit --format jsonl` over `[from, to)`: its lines, parsed, and its output.
pub(crate) fn audit_export(
    app: &TestApp,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> (Vec<serde_json::Value>, std::process::Output) {
    let audit = ledger(
        app,
        &[
            "export-audit",
            "--from",
            &from.to_rfc3339(),
            "--to",
            &to.to_rfc3339(),
            "--format",
            "jsonl",
        ],
    );
    let lines = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, audit)
}

/// Whether the audit export has an `event_type` line of a stream of `context` (its category
/// starts with it) of entity `id`.
pub(crate) fn audited(
    lines: &[serde_json::Value],
    context: &str,
    id: u64,
    event_type: &str,
) -> bool {
    lines.iter().any(|l| {
        let stream = l["stream"].as_str().unwrap_or_default();
        stream.starts_with(context)
            && stream.ends_with(&format!("-{id}"))
            && l["event_type"] == event_type
    })
}

pub(crate) fn found_nowhere(
    needle: &str,
    files: &[(std::path::PathBuf, Vec<u8>)],
    outputs: &[std::process::Output],
) {
    for (path, bytes) in files {
        assert!(
            !support::contains(bytes, needle.as_bytes()),
            "{needle} found in {}",
            path.display()
        );
    }
    for out in outputs {
        assert!(
            !support::contains(&out.stdout, needle.as_bytes())
                && !support::contains(&out.stderr, needle.as_bytes()),
            "{needle} in the output of a command"
        );
    }
}

async fn get_donation_after_a_scrub_shows_the_scrubbed_donor_apart_from_an_anonymous_one(
    backend: LogBackend,
) {
    let mut app = spawn_app_on(backend).await;
    let (person, anonymous) = (ev::DonorKind::Person, ev::DonorKind::Anonymous);
    let scrubbed = make(&mut app, 1, Bez, person, 2_500, &[Step::Export]).await;
    let anonymous_kept = make(&mut app, 2, Ueb, anonymous, 2_500, &[]).await;
    let anonymous_scrubbed = make(&mut app, 3, Ueb, anonymous, 2_500, &[Step::Export]).await;
    let before = get_donation(&mut app, scrubbed.donation_id).await;
    assert_eq!(before.donor.unwrap().last_name, surname(1));

    let data = app.dir.path().to_owned();
    let run = ledger(&app, &["scrub", "--json"]);
    assert_eq!(
        report(&run),
        [
            (scrubbed.donation_id, "exported".to_owned()),
            (anonymous_scrubbed.donation_id, "exported".to_owned())
        ]
    );

    // The scrubbed person: salutation and kind kept, personal data gone, marked scrubbed.
    let d = get_donation(&mut app, scrubbed.donation_id).await;
    assert!(d.is_scrubbed);
    assert!(d.scrubbed_at.is_some());
    assert_eq!(d.donor_kind, "person");
    assert_eq!(d.salutation, "Frau");
    assert_eq!(d.donor, None, "names, address and email are gone");
    assert_eq!(d.amount_cents, 2_500);
    assert_eq!(d.tracking.as_ref().unwrap().campaign, "spring");
    let bytes = d.encode_to_vec();
    for needle in [
        surname(1),
        email(1),
        iban(1),
        "Adelheid".into(),
        "Geheimweg".into(),
    ] {
        assert!(
            !support::contains(&bytes, needle.as_bytes()),
            "{needle} in GetDonation"
        );
    }
    // An anonymous donor gave no data: anonymous, not scrubbed, and still so once scrubbed.
    let a = get_donation(&mut app, anonymous_kept.donation_id).await;
    assert!(!a.is_scrubbed);
    assert_eq!(a.donor_kind, "anonymous");
    assert_eq!(a.donor, None);
    let s = get_donation(&mut app, anonymous_scrubbed.donation_id).await;
    assert!(s.is_scrubbed);
    assert_eq!(s.donor_kind, "anonymous");

    // The read model tells them apart the same way.
    let rm = read_model(&data).await;
    let row = rm
        .row("donation", scrubbed.donation_id as i64)
        .await
        .unwrap();
    assert_eq!(row.unwrap()["salutation"], "Frau");
    for (id, kind, is_scrubbed) in [
        (scrubbed.donation_id, "person", "true"),
        (anonymous_kept.donation_id, "anonymous", "false"),
        (anonymous_scrubbed.donation_id, "anonymous", "true"),
    ] {
        let row = rm.row("donation", id as i64).await.unwrap().unwrap();
        assert_eq!(
            (row["donor_kind"].as_str(), row["is_scrubbed"].as_str()),
            (kind, is_scrubbed),
            "donation {id}: {row:?}"
        );
        assert_eq!(row["last_name"], "", "donation {id}");
    }
    rm.close().await;
}

/// The raw bytes of every file of the PostgreSQL read model at `url` (schema `readmodel`):
/// its tables, their TOAST tables and all their indexes, every fork and segment, after a
/// `CHECKPOINT` wrote the buffers out. Read straight from the server's data directory (the
/// tests run as root on the machine that runs PostgreSQL).
async fn postgres_read_model_files(url: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("CHECKPOINT").execute(&mut conn).await.unwrap();
    let data_directory: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let relations: Vec<String> = sqlx::query_scalar(
        "WITH rel AS ( \
             SELECT c.oid, c.reltoastrelid FROM pg_class c \
             WHERE c.relnamespace = 'readmodel'::regnamespace AND c.relkind IN ('r', 'm') \
         ), every AS ( \
             SELECT oid FROM rel \
             UNION SELECT reltoastrelid FROM rel WHERE reltoastrelid <> 0 \
         ), with_indexes AS ( \
             SELECT oid FROM every \
             UNION SELECT i.indexrelid FROM pg_index i JOIN every e ON i.indrelid = e.oid \
         ) \
         SELECT pg_relation_filepath(oid) FROM with_indexes \
         WHERE pg_relation_filepath(oid) IS NOT NULL",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert!(
        relations.len() > 10,
        "tables, TOAST and indexes: {relations:?}"
    );
    let mut files = Vec::new();
    for relation in relations {
        let base = std::path::Path::new(&data_directory).join(&relation);
        let dir = base.parent().unwrap();
        let stem = base.file_name().unwrap().to_string_lossy().into_owned();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // `1234`, its segments `1234.1` and forks `1234_fsm`, `1234_vm`.
            if name == stem
                || name.starts_with(&format!("{stem}."))
                || name.starts_with(&format!("{stem}_"))
            {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_of_a_postgres_read_model_keeps_a_scrubbed_donors_data() {
    let Some(db) = support::postgres::fresh_database("scrub").await else {
        return;
    };
    let now = Utc::now();
    let clock = ManualClock::new(now);
    let mut app = spawn_app_with(|s| s.clock = Clock::Manual(clock.clone())).await;
    clock.set(now - Duration::days(1));
    let gone = make(
        &mut app,
        4,
        Bez,
        ev::DonorKind::Person,
        2_500,
        &[Step::Delete],
    )
    .await;
    clock.set(now - Duration::days(30));
    let kept = make(&mut app, 22, Bez, ev::DonorKind::Person, 2_500, &[]).await;
    clock.set(now);
    let url = db.url.clone();
    let on_postgres = |args: &[&'static str]| -> Vec<String> {
        ["--read-model-url", url.as_str()]
            .iter()
            .chain(args)
            .map(|a| (*a).to_owned())
            .collect()
    };
    let args = on_postgres(&["project", "--once"]);
    ledger(&app, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let any_file_has = |files: &[(std::path::PathBuf, Vec<u8>)], needle: &str| {
        files
            .iter()
            .any(|(_, bytes)| support::contains(bytes, needle.as_bytes()))
    };
    // The search finds what is there: both donors, in clear, before the scrub.
    let before = postgres_read_model_files(&db.url).await;
    for m in [&gone, &kept] {
        assert!(
            any_file_has(&before, &surname(m.n)),
            "{} before the scrub",
            surname(m.n)
        );
    }

    let args = on_postgres(&["scrub", "--json"]);
    let scrub = ledger(&app, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        report(&scrub),
        [(gone.donation_id, "cancelled_or_deleted".to_owned())]
    );
    let after = postgres_read_model_files(&db.url).await;
    for needle in [surname(gone.n), email(gone.n), iban(gone.n)] {
        for (path, bytes) in &after {
            assert!(
                !support::contains(bytes, needle.as_bytes()),
                "{needle} of the scrubbed donor found in {}",
                path.display()
            );
        }
    }
    assert!(
        any_file_has(&after, &surname(kept.n)),
        "the kept donor is still there"
    );
    assert!(any_file_has(&after, &email(kept.n)));
}
