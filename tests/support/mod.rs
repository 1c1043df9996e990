//! Helpers shared by integration tests: real PostgreSQL and MariaDB databases per test, raw
//! file scans.
#![allow(dead_code)]

pub mod api;
pub mod ci;
pub mod kurrentdb;
pub mod log_backend;
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

/// `GET path` over HTTP/1.0 on `127.0.0.1:port`: the status code and body, or `None` while
/// nothing listens.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}
