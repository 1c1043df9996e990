//! Who may do what on the KurrentDB port.
//!
//! Users come from a JSON file in the tokens file's style,
//! `{"users": [{"name", "sha256" (hex SHA-256 of the password), "read": […], "write": […]}]}`,
//! and present themselves with `authorization: Basic base64(name:password)`. A grant lists
//! stream categories (`orders` or `orders-`, both meaning the streams `orders-…`) or `"*"`.
//!
//! The ledger's own categories (`donation`, `payment`, …, `request`) are read-only through this
//! port: `"*"` does not grant writing them; only a `write` entry naming the category does (or
//! `"$ledger"`, all of them: for the user of a ledger whose log lives behind this port), so a
//! foreign client cannot forge an event the intake would have refused. Deleting a stream of the
//! ledger's categories is refused to everyone (history is removed by scrubbing, not deletion).
//! Reading `$all` needs a `"*"` read grant. A stream's metadata stream `$$name` is governed by
//! the category of `name`.
//!
//! Anonymous callers (no `authorization` header) are refused unless the port was started with
//! `--kurrentdb-allow-anonymous`: then they read everything and write outside the ledger's
//! categories.
//!
//! A user may belong to `groups` (`"groups": ["$admins", "auditors"]`), which streams' access
//! control lists (`$acl` in their metadata, [`super::acl`]) name besides users; the lists
//! narrow the grants above, `$admins` pass every list (not the grants).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataMap;

use super::acl::{Operation, StreamAcl};
use super::errors::Refusal;
use crate::domain::streams::Category;
use crate::intake::REQUEST_CATEGORY;
use crate::store::category_of;

/// One configured user, as written in the users file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    sha256: String,
    #[serde(default)]
    read: Vec<String>,
    #[serde(default)]
    write: Vec<String>,
    /// The groups streams' `$acl` lists may name (`$admins` passes every list).
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
}

/// Stream categories a grant covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    everything: bool,
    ledger: bool,
    categories: Vec<String>,
}

/// The grant entry that covers every category the ledger itself writes: the user of another
/// ledger process whose log lives behind this port (`--event-log-url esdb://…`).
pub const LEDGER_GRANT: &str = "$ledger";

impl Grant {
    fn parse(entries: &[String], user: &str, which: &str) -> anyhow::Result<Self> {
        let mut grant = Self::default();
        for entry in entries {
            if entry == "*" {
                grant.everything = true;
                continue;
            }
            if entry == LEDGER_GRANT {
                grant.ledger = true;
                continue;
            }
            let category = entry.strip_suffix('-').unwrap_or(entry);
            if category.is_empty() || category.contains('-') || category.starts_with('$') {
                anyhow::bail!(
                    "user `{user}`: {which} entry {entry:?} must be \"*\", \"{LEDGER_GRANT}\" or a \
                     stream category (`orders` or `orders-`, no other `-`, not starting with `$`)"
                );
            }
            grant.categories.push(category.to_owned());
        }
        Ok(grant)
    }

    /// Everything.
    pub fn all() -> Self {
        Self {
            everything: true,
            ledger: false,
            categories: Vec::new(),
        }
    }

    fn names(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }
}

/// The categories the ledger itself writes (`import` is the legacy import's record), of every
/// context (the address-change token index and the subscription indexes included).
pub fn is_ledger_category(category: &str) -> bool {
    category == REQUEST_CATEGORY
        || category == crate::store::category_of(crate::legacy::import::STREAM)
        || Category::ALL.iter().any(|c| c.as_str() == category)
        || crate::domain::membership::MembershipCategory::ALL
            .iter()
            .any(|c| c.as_str() == category)
        || crate::domain::address_change::categories().contains(&category)
        || crate::domain::subscription::categories().contains(&category)
}

/// The category that governs access to `stream`: its own, or for `$$name` that of `name`.
pub fn governing_category(stream: &str) -> &str {
    category_of(stream.strip_prefix("$$").unwrap_or(stream))
}

/// Who is calling, and what they may do.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user's name, or `None` for an anonymous caller.
    pub name: Option<String>,
    read: Grant,
    write: Grant,
    groups: Vec<String>,
}

impl Caller {
    /// Whether the caller may read `stream`.
    pub fn may_read(&self, stream: &str) -> bool {
        use super::system_streams::Projection;
        // A system projection stream shows the stream names and revisions of what it links:
        // `$ce-{category}` needs that category's read grant, `$et-{type}` (every category) `*`.
        match Projection::of(stream.strip_prefix("$$").unwrap_or(stream)) {
            Some(Projection::Category(category)) => {
                self.read.everything || self.read.names(&category)
            }
            Some(Projection::EventType(_)) => self.read.everything,
            None => self.read.everything || self.read.names(governing_category(stream)),
        }
    }

    /// Whether the caller may read `$all`.
    pub fn may_read_all(&self) -> bool {
        self.read.everything
    }

    /// Whether the caller may append to `stream`.
    pub fn may_write(&self, stream: &str) -> bool {
        // The system projection streams are the projections' alone (computed from the log).
        if super::system_streams::is_projection_stream(stream) {
            return false;
        }
        let category = governing_category(stream);
        if is_ledger_category(category) {
            self.write.ledger || self.write.names(category)
        } else {
            self.write.everything || self.write.names(category)
        }
    }

    /// Whether the caller may delete or tombstone `stream`.
    pub fn may_delete(&self, stream: &str) -> bool {
        !is_ledger_category(governing_category(stream)) && self.may_write(stream)
    }

    /// Whether a stream's access control list lets the caller do `operation` (the grants are
    /// checked apart, by the `may_*` methods).
    pub fn listed(&self, acl: &StreamAcl, operation: Operation) -> bool {
        acl.allows(operation, self.name.as_deref(), &self.groups)
    }

    /// [`Caller::listed`], as a refusal.
    pub fn check_listed(&self, acl: &StreamAcl, operation: Operation) -> Result<(), Refusal> {
        if self.listed(acl, operation) {
            Ok(())
        } else {
            Err(Refusal::AccessDenied)
        }
    }

    /// The name for logs and metrics.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("anonymous")
    }
}

struct User {
    sha256: [u8; 32],
    read: Grant,
    write: Grant,
    groups: Vec<String>,
}

/// The configured users and the anonymous rule.
pub struct Users {
    by_name: HashMap<String, Arc<User>>,
    allow_anonymous: bool,
}

impl std::fmt::Debug for Users {
    /// Names only: the password hashes stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.by_name.keys().collect();
        names.sort();
        f.debug_struct("Users")
            .field("names", &names)
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

impl Users {
    /// No users; anonymous callers allowed or not.
    pub fn anonymous(allow: bool) -> Self {
        Self {
            by_name: HashMap::new(),
            allow_anonymous: allow,
        }
    }

    /// Loads the users file.
    pub fn from_file(path: &Path, allow_anonymous: bool) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --kurrentdb-users {}", path.display()))?;
        let file: UsersFile = serde_json::from_str(&text)
            .with_context(|| format!("parsing --kurrentdb-users {}", path.display()))?;
        let mut users = Self::anonymous(allow_anonymous);
        for entry in file.users {
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(entry.sha256.trim(), &mut sha256).with_context(|| {
                format!(
                    "--kurrentdb-users {}: user `{}`: `sha256` must be 64 hex digits (the \
                     SHA-256 of the password)",
                    path.display(),
                    entry.name
                )
            })?;
            if let Some(bad) = entry
                .groups
                .iter()
                .find(|g| g.trim().is_empty() || g.trim() != g.as_str())
            {
                anyhow::bail!(
                    "--kurrentdb-users {}: user `{}`: group {bad:?} must be a non-empty name \
                     without surrounding spaces",
                    path.display(),
                    entry.name
                );
            }
            let user = User {
                sha256,
                read: Grant::parse(&entry.read, &entry.name, "read")?,
                write: Grant::parse(&entry.write, &entry.name, "write")?,
                groups: entry.groups,
            };
            if users
                .by_name
                .insert(entry.name.clone(), Arc::new(user))
                .is_some()
            {
                anyhow::bail!(
                    "--kurrentdb-users {}: user `{}` is listed twice",
                    path.display(),
                    entry.name
                );
            }
        }
        Ok(users)
    }

    /// Number of configured users.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no user is configured.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The caller a request's `authorization` header names.
    pub fn caller(&self, headers: &MetadataMap) -> Result<Caller, Refusal> {
        let Some(value) = headers.get("authorization") else {
            if self.allow_anonymous {
                return Ok(Caller {
                    name: None,
                    read: Grant::all(),
                    write: Grant::all(),
                    groups: Vec::new(),
                });
            }
            return Err(Refusal::AccessDenied);
        };
        let (name, password) = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(n, p)| (n.to_owned(), p.to_owned())))
            .ok_or(Refusal::BadCredentials)?;
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        match self.by_name.get(&name) {
            Some(user) if constant_time_eq(&user.sha256, &digest) => Ok(Caller {
                name: Some(name),
                read: user.read.clone(),
                write: user.write.clone(),
                groups: user.groups.clone(),
            }),
            _ => Err(Refusal::BadCredentials),
        }
    }
}

/// Compares two digests without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(json: &str) -> anyhow::Result<Users> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        std::fs::write(&path, json).unwrap();
        Users::from_file(&path, false)
    }

    fn basic(name: &str, password: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        map.insert("authorization", format!("Basic {token}").parse().unwrap());
        map
    }

    fn hash(password: &str) -> String {
        hex::encode(Sha256::digest(password.as_bytes()))
    }

    #[test]
    fn a_star_write_grant_does_not_reach_the_ledgers_categories() {
        let users = users(&format!(
            r#"{{"users": [{{"name": "etl", "sha256": "{}", "read": ["*"], "write": ["*"]}},
                          {{"name": "ops", "sha256": "{}", "write": ["donation-"]}}]}}"#,
            hash("pw"),
            hash("ops")
        ))
        .unwrap();
        let etl = users.caller(&basic("etl", "pw")).unwrap();
        assert!(etl.may_write("orders-1"));
        assert!(!etl.may_write("donation-1"));
        assert!(!etl.may_write("$$donation-1"));
        assert!(!etl.may_write("request-abc"));
        assert!(etl.may_read("donation-1") && etl.may_read_all());
        let ops = users.caller(&basic("ops", "ops")).unwrap();
        assert!(ops.may_write("donation-1"));
        assert!(!ops.may_delete("donation-1"));
        assert!(!ops.may_read("donation-1") && !ops.may_read_all());
    }

    #[test]
    fn wrong_or_malformed_credentials_are_refused_and_anonymous_only_when_allowed() {
        let users = users(&format!(
            r#"{{"users": [{{"name": "etl", "sha256": "{}", "read": ["*"]}}]}}"#,
            hash("pw")
        ))
        .unwrap();
        assert_eq!(
            users.caller(&basic("etl", "nope")).unwrap_err(),
            Refusal::BadCredentials
        );
        assert_eq!(
            users.caller(&basic("who", "pw")).unwrap_err(),
            Refusal::BadCredentials
        );
        let mut garbage = MetadataMap::new();
        garbage.insert("authorization", "Basic !!!".parse().unwrap());
        assert_eq!(users.caller(&garbage).unwrap_err(), Refusal::BadCredentials);
        assert_eq!(
            users.caller(&MetadataMap::new()).unwrap_err(),
            Refusal::AccessDenied
        );
        let open = Users::anonymous(true).caller(&MetadataMap::new()).unwrap();
        assert!(open.may_write("orders-1") && !open.may_write("payment-3"));
    }

    #[test]
    fn a_users_file_with_a_bad_grant_or_hash_is_refused_naming_the_user() {
        let bad_grant = users(&format!(
            r#"{{"users": [{{"name": "x", "sha256": "{}", "read": ["a-b"]}}]}}"#,
            hash("pw")
        ));
        let message = format!("{:#}", bad_grant.unwrap_err());
        assert!(
            message.contains("user `x`") && message.contains("\"a-b\""),
            "{message}"
        );
        let bad_hash = users(r#"{"users": [{"name": "y", "sha256": "zz"}]}"#);
        assert!(format!("{:#}", bad_hash.unwrap_err()).contains("user `y`"));
    }
}
