//! Helpers shared by integration tests: real PostgreSQL and MariaDB databases per test, raw
//! file scans.
#![allow(dead_code)]

pub mod api;
pub mod ci;
pub mod mariadb;
pub mod postgres;

use std::path::{Path, PathBuf};

/// Every file under `dir` (recursively) with its raw bytes.
pub fn read_dir_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(read_dir_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The raw bytes of a data key (its Debug form hides them).
pub fn key_bytes(key: &ledger::privacy::DataKey) -> Vec<u8> {
    key.expose_for_tests().to_vec()
}
