//! CiviShare's statuses in the read model on SQLite, PostgreSQL and MariaDB: the status
//! mirror copies every outgoing and incoming row of a node's `civishare.sqlite` — each status
//! as the queue holds it, with its peer's answer and its attempts —, shows a removed
//! peering's rows as `dropped`, fits a hostile peer's strings to the columns, and copies a
//! queue larger than its page without skipping or doubling a row.

use std::collections::BTreeSet;

use ledger::civishare::inbox::{ChangeStatus, InboxRow};
use ledger::civishare::mirror::{Outcome, StatusMirror};
use ledger::civishare::outbox::NewRow;
use ledger::civishare::{Change, CivishareStore, NewPeering};
use ledger::privacy::KeyStore;

use crate::projection_support::*;
use crate::read_model_docs::Conn;

read_model_conformance!(
    every_outgoing_and_incoming_status_reaches_the_read_model_with_its_peers_answer,
    a_removed_peerings_queue_shows_as_dropped_and_a_new_peering_of_that_name_starts_afresh,
    a_hostile_peers_strings_are_fitted_to_the_columns_and_do_not_stop_the_mirror,
    a_queue_larger_than_a_page_is_copied_whole_and_once,
);

const A: &str = "https://ledger-a.example.org";
const B: &str = "https://ledger-b.example.org";
const C: &str = "https://ledger-c.example.org";

/// A node's CiviShare database and key store in the test's directory.
async fn node(env: &Env) -> (CivishareStore, KeyStore) {
    let store = CivishareStore::open(&env.dir.path().join("civishare.sqlite"))
        .await
        .unwrap();
    let keys = KeyStore::open_sqlite(&env.dir.path().join("keys.sqlite"))
        .await
        .unwrap();
    store.set_local_node(A).await.unwrap();
    (store, keys)
}

async fn peer(store: &CivishareStore, keys: &KeyStore, name: &str) -> i64 {
    store
        .add_peering(
            keys,
            &NewPeering {
                node_name: name.into(),
                endpoint: format!("{name}/civishare/v1/messages"),
                secret: "s".repeat(40).into(),
                outgoing: BTreeSet::from(["ledger.change.donation.created".to_owned()]),
                incoming: BTreeSet::from(["ledger.change.donation.created".to_owned()]),
                history: false,
            },
        )
        .await
        .unwrap()
        .id
}

fn queued(peering_id: i64, position: u64) -> NewRow {
    NewRow {
        peering_id,
        position,
        event_id: uuid::Uuid::new_v4(),
        change_type: "ledger.change.donation.created".into(),
        entity: "Donation".into(),
        entity_reference: position.to_string(),
        loop_detection: vec!["origin".into(), "stamp".into()],
    }
}

fn change(reference: &str) -> Change {
    Change {
        change_type: "ledger.change.donation.created".into(),
        timestamp: "2026-12-08T09:00:00Z".into(),
        entity: "Donation".into(),
        entity_reference: reference.into(),
        attribute_changes: Vec::new(),
        loop_detection: vec![format!("origin-{reference}")],
    }
}

async fn receive(
    store: &CivishareStore,
    message_id: &str,
    change: &Change,
    status: ChangeStatus,
    reason: Option<&str>,
    local_reference: Option<&str>,
) {
    store
        .record(&InboxRow {
            message_id,
            sender: B,
            change_index: 0,
            change,
            status,
            reason: reason.map(str::to_owned),
            local_reference: local_reference.map(str::to_owned),
        })
        .await
        .unwrap();
}

/// Mirrors until caught up; the rounds that copied something.
async fn mirror(store: &CivishareStore, env: &Env) -> usize {
    let rm = env.read_model().await;
    let mirror = StatusMirror::new(store.clone());
    let mut rounds = 0;
    while let Outcome::Processed(_) = mirror.try_mirror(&rm).await.unwrap() {
        rounds += 1;
        assert!(rounds < 1000, "the mirror never catches up");
    }
    rm.close().await;
    rounds
}

/// `expr` as text in the dialect.
fn text(env: &Env, expr: &str) -> String {
    match env.db {
        Db::Mariadb => format!("CAST({expr} AS CHAR)"),
        _ => format!("CAST({expr} AS TEXT)"),
    }
}

async fn rows(env: &Env, sql: &str, columns: usize) -> Vec<Vec<String>> {
    Conn::open(env).await.rows(sql, columns).await.unwrap()
}

/// The outgoing rows: seq, peer, entity reference, status, attempts, peer status, peer
/// reason, last error, whether sent and acknowledged times are set.
async fn outgoing(env: &Env) -> Vec<Vec<String>> {
    let sql = format!(
        "SELECT {}, peer, entity_reference, status, {}, peer_status, peer_reason, last_error, \
         CASE WHEN sent_at IS NULL THEN 'unsent' ELSE 'sent' END, \
         CASE WHEN acknowledged_at IS NULL THEN 'unacknowledged' ELSE 'acknowledged' END \
         FROM civishare_outgoing AS o WHERE node = '{A}' ORDER BY o.seq",
        // `o.seq`: PostgreSQL would order by the output column, the text.
        text(env, "o.seq"),
        text(env, "attempts"),
    );
    rows(env, &sql, 10).await
}

async fn incoming(env: &Env) -> Vec<Vec<String>> {
    let sql = format!(
        "SELECT sender, message_id, entity_reference, status, reason, local_reference \
         FROM civishare_incoming WHERE node = '{A}' ORDER BY seq"
    );
    rows(env, &sql, 6).await
}

fn strings(row: &[&str]) -> Vec<String> {
    row.iter().map(|s| (*s).to_owned()).collect()
}

async fn every_outgoing_and_incoming_status_reaches_the_read_model_with_its_peers_answer(env: Env) {
    let (store, keys) = node(&env).await;
    let b = peer(&store, &keys, B).await;
    store
        .enqueue(&[queued(b, 1), queued(b, 2), queued(b, 3), queued(b, 4)], 5)
        .await
        .unwrap();
    assert!(mirror(&store, &env).await >= 1);
    assert_eq!(outgoing(&env).await.len(), 4);
    assert!(outgoing(&env).await.iter().all(|r| r[3] == "queued"));

    // 1 applied, 2 refused by the peer, 3 failed twice, 4 still in flight.
    store.mark_sent(&[1, 2, 3, 4], "m-1").await.unwrap();
    store
        .mark_acknowledged(&[
            (1, "applied".into(), None),
            (2, "refused".into(), Some("unknown_entity".into())),
        ])
        .await
        .unwrap();
    store.mark_failed(&[3], "connection refused").await.unwrap();
    store.mark_sent(&[3], "m-2").await.unwrap();
    store.mark_failed(&[3], "HTTP 503").await.unwrap();
    receive(
        &store,
        "in-1",
        &change("70"),
        ChangeStatus::Applied,
        None,
        Some("12"),
    )
    .await;
    receive(
        &store,
        "in-2",
        &change("71"),
        ChangeStatus::Refused,
        Some("validation: donor.email must be an e-mail address"),
        None,
    )
    .await;
    receive(
        &store,
        "in-3",
        &change("70"),
        ChangeStatus::IgnoredLoop,
        Some("seen"),
        None,
    )
    .await;
    mirror(&store, &env).await;

    assert_eq!(
        outgoing(&env).await,
        vec![
            strings(&[
                "1",
                B,
                "1",
                "acknowledged",
                "1",
                "applied",
                "",
                "",
                "sent",
                "acknowledged"
            ]),
            strings(&[
                "2",
                B,
                "2",
                "acknowledged",
                "1",
                "refused",
                "unknown_entity",
                "",
                "sent",
                "acknowledged"
            ]),
            strings(&[
                "3",
                B,
                "3",
                "failed",
                "2",
                "",
                "",
                "HTTP 503",
                "sent",
                "unacknowledged"
            ]),
            strings(&[
                "4",
                B,
                "4",
                "sent",
                "1",
                "",
                "",
                "",
                "sent",
                "unacknowledged"
            ]),
        ]
    );
    assert_eq!(
        incoming(&env).await,
        vec![
            strings(&[B, "in-1", "70", "applied", "", "12"]),
            strings(&[
                B,
                "in-2",
                "71",
                "refused",
                "validation: donor.email must be an e-mail address",
                ""
            ]),
            strings(&[B, "in-3", "70", "ignored_loop", "seen", ""]),
        ]
    );
    // The checkpoint is the file's newest revision: a further round copies nothing.
    assert_eq!(mirror(&store, &env).await, 0);
    let checkpoint = rows(
        &env,
        &format!(
            "SELECT {} FROM civishare_status_checkpoint WHERE node = '{A}'",
            text(&env, "revision")
        ),
        1,
    )
    .await;
    assert_eq!(
        checkpoint,
        vec![vec![store.revision().await.unwrap().to_string()]]
    );
}

async fn a_removed_peerings_queue_shows_as_dropped_and_a_new_peering_of_that_name_starts_afresh(
    env: Env,
) {
    let (store, keys) = node(&env).await;
    let b = peer(&store, &keys, B).await;
    let c = peer(&store, &keys, C).await;
    store
        .enqueue(&[queued(b, 1), queued(c, 1), queued(b, 2)], 3)
        .await
        .unwrap();
    store.mark_sent(&[1], "m-1").await.unwrap();
    store
        .mark_acknowledged(&[(1, "applied".into(), None)])
        .await
        .unwrap();
    mirror(&store, &env).await;
    store.remove_peering(&keys, B).await.unwrap();
    let b_again = peer(&store, &keys, B).await;
    store.enqueue(&[queued(b_again, 3)], 4).await.unwrap();
    mirror(&store, &env).await;

    let statuses: Vec<(String, String, String)> = outgoing(&env)
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("1".into(), B.into(), "dropped".into()),
            ("2".into(), C.into(), "queued".into()),
            ("3".into(), B.into(), "dropped".into()),
            ("4".into(), B.into(), "queued".into()),
        ]
    );
    // The dropped row keeps what had happened to it before.
    assert_eq!(outgoing(&env).await[0][5], "applied");
}

async fn a_hostile_peers_strings_are_fitted_to_the_columns_and_do_not_stop_the_mirror(env: Env) {
    let (store, _keys) = node(&env).await;
    let long = "x".repeat(5000);
    let hostile = change(&format!("7\u{0}1\n{long}"));
    receive(
        &store,
        "in-\u{1b}[31m",
        &hostile,
        ChangeStatus::Refused,
        Some(&format!("validation: \u{0}{long}")),
        None,
    )
    .await;
    receive(
        &store,
        "in-2",
        &change("8"),
        ChangeStatus::Applied,
        None,
        Some("9"),
    )
    .await;
    mirror(&store, &env).await;

    let rows = incoming(&env).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (message, reference, reason) = (&rows[0][1], &rows[0][2], &rows[0][4]);
    assert_eq!(message, "in-\u{FFFD}[31m");
    assert!(
        reference.starts_with("7\u{FFFD}1\u{FFFD}xxx"),
        "{reference:?}"
    );
    assert_eq!(reference.chars().count(), 255);
    assert!(reason.starts_with("validation: \u{FFFD}xxx"));
    assert_eq!(reason.chars().count(), 2000);
    assert!(!rows.concat().concat().chars().any(char::is_control));
    assert_eq!(rows[1][5], "9");
}

async fn a_queue_larger_than_a_page_is_copied_whole_and_once(env: Env) {
    let (store, keys) = node(&env).await;
    let b = peer(&store, &keys, B).await;
    // More rows than a round copies (500 per source), outgoing and incoming interleaved in
    // revision order, so the page bound between sources is exercised.
    for chunk in 0..6u64 {
        let rows: Vec<NewRow> = (0..200).map(|i| queued(b, chunk * 200 + i + 1)).collect();
        store.enqueue(&rows, (chunk + 1) * 200 + 1).await.unwrap();
        for i in 0..90 {
            let reference = (chunk * 90 + i).to_string();
            receive(
                &store,
                &format!("in-{reference}"),
                &change(&reference),
                ChangeStatus::Applied,
                None,
                Some(&reference),
            )
            .await;
        }
    }
    let rounds = mirror(&store, &env).await;
    assert!(rounds >= 3, "{rounds} rounds for 1,740 rows");

    let out = outgoing(&env).await;
    assert_eq!(out.len(), 1200);
    let seqs: Vec<String> = out.iter().map(|r| r[0].clone()).collect();
    let expected: Vec<String> = (1..=1200).map(|s: u64| s.to_string()).collect();
    assert_eq!(seqs, expected);
    let inc = incoming(&env).await;
    assert_eq!(inc.len(), 540);
    let references: BTreeSet<String> = inc.iter().map(|r| r[2].clone()).collect();
    assert_eq!(references.len(), 540);
}
