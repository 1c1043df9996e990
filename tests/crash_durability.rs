//! Crash test of the embedded log: a child process appends from many concurrent tasks and
//! prints each acknowledgement; the parent kills it with SIGKILL at a random moment, reopens
//! the file and checks that every acknowledged event is there exactly once. 25 rounds on one
//! file, so later rounds also recover from earlier kills.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger::store::sqlite::SqliteEventLog;
use ledger::store::{Actor, ActorKind, EventData, EventLog, ExpectedRevision, Metadata};
use rand::Rng;
use sqlx::Row;
use uuid::Uuid;

const CHILD_ENV: &str = "LEDGER_CRASH_CHILD_DB";
const ROUNDS: usize = 25;

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
                                ),
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
                "crash_child_appends_and_acknowledges",
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
