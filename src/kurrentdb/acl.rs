//! A stream's access control list: the `$acl` object of its metadata, as KurrentDB documents
//! it — `$r` (read), `$w` (write), `$d` (delete), `$mr` (read the metadata), `$mw` (write the
//! metadata), each a user or group name or a list of them; `$all` names every caller, the
//! anonymous one too; `$admins` names the users of that group, who pass every list.
//!
//! An operation the list leaves out falls back to KurrentDB's default user-stream list, which
//! names `$all`. `$acl` may also name one of the two default lists, as the clients write them:
//! `"$userStreamAcl"` (everyone, for everything) or `"$systemStreamAcl"` (`$admins` only). The list narrows what the users file grants, never widens it: a call needs
//! both its grant ([`super::access`]) and its place in the list. `$all` reads are governed by
//! the grants alone (a `"*"` read grant is the port's administrator-level read).
//!
//! A metadata write whose `$acl` is not of this shape is refused, so a list that reads back is
//! always well-formed; one that does not parse anyway (written by the ledger's own operator
//! through another door) denies everyone but `$admins`.

use serde_json::{Map, Value};

/// The group whose members pass every list.
pub const ADMINS: &str = "$admins";
/// The name that covers every caller.
pub const EVERYONE: &str = "$all";

/// What a list governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading the stream (`$r`).
    Read,
    /// Appending to it (`$w`).
    Write,
    /// Deleting or tombstoning it (`$d`).
    Delete,
    /// Reading its metadata stream `$$name` (`$mr`).
    MetadataRead,
    /// Writing its metadata (`$mw`).
    MetadataWrite,
}

impl Operation {
    /// The key of the `$acl` object.
    pub fn key(self) -> &'static str {
        match self {
            Operation::Read => "$r",
            Operation::Write => "$w",
            Operation::Delete => "$d",
            Operation::MetadataRead => "$mr",
            Operation::MetadataWrite => "$mw",
        }
    }

    const ALL: [Operation; 5] = [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::MetadataRead,
        Operation::MetadataWrite,
    ];
}

/// A parsed `$acl`: for each operation it names, who may do it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAcl {
    /// `None`: no `$acl`, or it does not parse (then only `$admins` pass).
    entries: Option<[Option<Vec<String>>; 5]>,
}

impl StreamAcl {
    /// The list in a metadata object; a malformed one denies everyone but `$admins`.
    pub fn of(metadata: &Map<String, Value>) -> Self {
        match metadata.get("$acl") {
            None => Self {
                entries: Some(Default::default()),
            },
            Some(value) => Self {
                entries: parse(value).ok(),
            },
        }
    }

    /// The names allowed to do `operation`; `None` when the list leaves it to the default
    /// (everyone).
    fn names(&self, operation: Operation) -> Result<Option<&[String]>, ()> {
        let entries = self.entries.as_ref().ok_or(())?;
        let index = Operation::ALL
            .iter()
            .position(|o| *o == operation)
            .expect("every operation is listed");
        Ok(entries[index].as_deref())
    }

    /// Whether a caller named `name` (`None`: anonymous) in `groups` may do `operation`.
    pub fn allows(&self, operation: Operation, name: Option<&str>, groups: &[String]) -> bool {
        if groups.iter().any(|g| g == ADMINS) {
            return true;
        }
        match self.names(operation) {
            Err(()) => false,
            Ok(None) => true,
            Ok(Some(names)) => names.iter().any(|n| {
                n == EVERYONE || Some(n.as_str()) == name || groups.iter().any(|g| g == n)
            }),
        }
    }
}

/// Checks the `$acl` of a metadata object a client writes: absent, or an object whose keys are
/// among `$r`, `$w`, `$d`, `$mr`, `$mw`, each a name or a list of names.
pub fn check(metadata: &Map<String, Value>) -> Result<(), String> {
    match metadata.get("$acl") {
        None => Ok(()),
        Some(value) => parse(value).map(|_| ()),
    }
}

/// The name of the default list for user streams (everyone may do everything).
pub const USER_STREAM_ACL: &str = "$userStreamAcl";
/// The name of the default list for system streams (`$admins` only).
pub const SYSTEM_STREAM_ACL: &str = "$systemStreamAcl";

fn parse(value: &Value) -> Result<[Option<Vec<String>>; 5], String> {
    match value.as_str() {
        Some(USER_STREAM_ACL) => return Ok(Default::default()),
        Some(SYSTEM_STREAM_ACL) => return Ok(std::array::from_fn(|_| Some(vec![ADMINS.into()]))),
        _ => {}
    }
    let object = value.as_object().ok_or_else(|| {
        format!(
            "`$acl` must be an object with the keys $r, $w, $d, $mr, $mw, or \
             \"{USER_STREAM_ACL}\" or \"{SYSTEM_STREAM_ACL}\""
        )
    })?;
    for key in object.keys() {
        if !Operation::ALL.iter().any(|o| o.key() == key) {
            return Err(format!(
                "`$acl` has the key {key:?}; its keys are $r, $w, $d, $mr and $mw"
            ));
        }
    }
    let mut entries: [Option<Vec<String>>; 5] = Default::default();
    for (slot, operation) in entries.iter_mut().zip(Operation::ALL) {
        let key = operation.key();
        *slot = match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(vec![name.clone()]),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_owned).ok_or_else(|| {
                            format!("`$acl.{key}` must list names (strings), not {item}")
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => {
                return Err(format!(
                    "`$acl.{key}` must be a name or a list of names, not {other}"
                ))
            }
        };
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(json: &str) -> StreamAcl {
        let value: Value = serde_json::from_str(json).unwrap();
        StreamAcl::of(value.as_object().unwrap())
    }

    #[test]
    fn a_list_names_users_groups_or_everyone_and_leaves_unnamed_operations_open() {
        let list = acl(r#"{"$acl": {"$w": "greg", "$r": ["greg", "john", "auditors"], "$d": []}}"#);
        let none: &[String] = &[];
        let auditors = ["auditors".to_owned()];
        assert!(list.allows(Operation::Write, Some("greg"), none));
        assert!(!list.allows(Operation::Write, Some("john"), none));
        assert!(!list.allows(Operation::Write, None, none));
        assert!(list.allows(Operation::Read, Some("john"), none));
        assert!(list.allows(Operation::Read, Some("eve"), &auditors));
        assert!(!list.allows(Operation::Read, Some("eve"), none));
        // An empty list removes everyone but the administrators.
        assert!(!list.allows(Operation::Delete, Some("greg"), none));
        assert!(list.allows(Operation::Delete, Some("root"), &[ADMINS.to_owned()]));
        // Not named: the default list, `$all`.
        assert!(list.allows(Operation::MetadataWrite, None, none));
        let open = acl(r#"{"$acl": {"$r": "$all"}}"#);
        assert!(open.allows(Operation::Read, None, none));
        assert!(acl(r#"{"$maxCount": 3}"#).allows(Operation::Write, None, none));
    }

    #[test]
    fn a_malformed_list_is_refused_on_write_and_denies_all_but_admins_if_read() {
        for (json, names) in [
            (r#"{"$acl": "greg"}"#, "an object"),
            (r#"{"$acl": {"$x": "greg"}}"#, "\"$x\""),
            (r#"{"$acl": {"$r": 5}}"#, "`$acl.$r`"),
            (r#"{"$acl": {"$w": ["greg", 7]}}"#, "`$acl.$w`"),
        ] {
            let value: Value = serde_json::from_str(json).unwrap();
            let message = check(value.as_object().unwrap()).unwrap_err();
            assert!(message.contains(names), "{json}: {message}");
            let list = StreamAcl::of(value.as_object().unwrap());
            assert!(!list.allows(Operation::Read, Some("greg"), &[]), "{json}");
            assert!(list.allows(Operation::Read, Some("greg"), &[ADMINS.to_owned()]));
        }
        let fine: Value = serde_json::from_str(r#"{"$acl": {"$r": "$all", "$mw": null}}"#).unwrap();
        assert_eq!(check(fine.as_object().unwrap()), Ok(()));
    }

    #[test]
    fn the_two_default_lists_can_be_named_as_the_clients_write_them() {
        let user = acl(r#"{"$acl": "$userStreamAcl"}"#);
        let system = acl(r#"{"$acl": "$systemStreamAcl"}"#);
        assert!(user.allows(Operation::MetadataWrite, None, &[]));
        assert!(!system.allows(Operation::Read, Some("greg"), &[]));
        assert!(system.allows(Operation::Read, Some("greg"), &[ADMINS.to_owned()]));
    }
}
