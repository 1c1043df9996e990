//! The process-wide SQLite settings `ledger` applies before its first connection. Its own
//! test binary: the settings only take while SQLite is not yet initialised in the process.

#[test]
fn memory_statistics_are_off_once_configured_before_the_first_connection() {
    ledger::store::sqlite::configure_library();
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE t (v TEXT); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO t SELECT printf('%0100d', i) FROM n;",
    )
    .unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 10_000);
    // With statistics on (SQLite's default) this counts the megabyte the table holds in the
    // page cache; with them off, SQLite keeps no count and takes no mutex per allocation.
    // SAFETY: a plain read of SQLite's global counter.
    #[allow(unsafe_code)]
    let used = unsafe { rusqlite::ffi::sqlite3_memory_used() };
    assert_eq!(used, 0, "SQLite still counts its memory");
}
