//! Scrub selection time at two table sizes with the same number of candidates: 10,000 and
//! 1,000,000 donations, 1,000 of them eligible (exported, cancelled, or abandoned external
//! payments), the rest already scrubbed or not eligible. The selection reads the partial index
//! of candidates, so both figures should be about the same.
//!
//! Run: `cargo bench --bench scrub_selection` (set `LEDGER_BENCH_POSTGRES_URL` to also measure
//! PostgreSQL, e.g. `postgres://postgres@127.0.0.1:5432/test`).

use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use ledger::projection::ReadModel;

const CANDIDATES: i64 = 1_000;

/// Fills the donation table with `total` rows: `CANDIDATES` eligible, the others scrubbed (the
/// usual state of old donations) or fresh and unexported.
fn fill_sql(total: i64, postgres: bool) -> Vec<String> {
    let (t, f) = if postgres {
        ("TRUE", "FALSE")
    } else {
        ("1", "0")
    };
    let ts = |expr: &str| {
        if postgres {
            format!("now() - ({expr}) * interval '1 minute'")
        } else {
            format!("strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-' || ({expr}) || ' minutes')")
        }
    };
    let series = if postgres {
        format!("SELECT g AS n FROM generate_series(1, {total}) AS g")
    } else {
        format!("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {total}) SELECT n FROM s")
    };
    // Rows 1..=CANDIDATES are eligible in three flavours; of the rest, 1 in 100 is fresh
    // and not eligible, the others are old and scrubbed.
    vec![format!(
        "INSERT INTO donation (id, created_at, updated_at, payment_method, payment_state, deletion_state, is_exported, is_scrubbed)
         SELECT n, {created}, {created},
                CASE WHEN n % 3 = 0 THEN 'PPL' ELSE 'BEZ' END,
                CASE WHEN n <= {CANDIDATES} AND n % 3 = 0 THEN 'pending' ELSE 'booked' END,
                CASE WHEN n <= {CANDIDATES} AND n % 3 = 1 THEN 'cancelled_by_donor' ELSE 'active' END,
                CASE WHEN n <= {CANDIDATES} AND n % 3 = 2 THEN {t} ELSE {f} END,
                CASE WHEN n <= {CANDIDATES} OR n % 100 = 0 THEN {f} ELSE {t} END
         FROM ({series}) AS s",
        created = ts("n * 3 % 500000 + 4000"),
    )]
}

async fn measure(url: &str, total: i64) -> Duration {
    let rm = ReadModel::connect(url).await.unwrap();
    rm.migrate().await.unwrap();
    let postgres = url.starts_with("postgres");
    for sql in fill_sql(total, postgres) {
        rm.execute_for_bench(&sql).await.unwrap();
    }
    rm.execute_for_bench(if postgres {
        "ANALYZE donation"
    } else {
        "ANALYZE"
    })
    .await
    .unwrap();
    let cutoff = Utc::now() - Days::days(2);
    let mut times = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let c = rm.scrub_candidates(cutoff, None, usize::MAX).await.unwrap();
        times.push(start.elapsed());
        assert_eq!(
            c.len() as i64,
            CANDIDATES,
            "every eligible row and only those"
        );
    }
    times.sort();
    rm.close().await;
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    // The SQLite settings `ledger` runs with (see `configure_library`), so figures match its own.
    ledger::store::sqlite::configure_library();
    let dir = tempfile::tempdir().unwrap();
    for total in [10_000i64, 1_000_000] {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("rm{total}.sqlite")).display()
        );
        let t = measure(&url, total).await;
        println!("scrub selection  sqlite    {total:>9} donations, {CANDIDATES} candidates: median {:.2} ms", t.as_secs_f64() * 1e3);
    }
    if let Ok(base) = std::env::var("LEDGER_BENCH_POSTGRES_URL") {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
        for total in [10_000i64, 1_000_000] {
            let name = format!("ledger_bench_scrub_{total}");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
            let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
            let t = measure(&url, total).await;
            println!("scrub selection  postgres  {total:>9} donations, {CANDIDATES} candidates: median {:.2} ms", t.as_secs_f64() * 1e3);
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
}
