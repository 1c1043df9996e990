//! What a storage URL names, for start-up checks and error messages: the file of a
//! `sqlite:` URL, the host and port of a server URL (the port defaulting by scheme), and the
//! URL as it may be shown, with its password masked.
use std::path::PathBuf;

/// The file of a `sqlite:` URL (`sqlite://path`, `sqlite:path`, options after `?`), or `None`
/// for an in-memory database or another scheme.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.starts_with(":memory:") || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// `host` and `port` of a `scheme://[user[:password]@]host[:port][/…]` URL, the port
/// defaulting by scheme; `None` without a host, with several hosts, or with neither a port
/// nor a known scheme.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = &rest[userinfo_end(rest).map_or(0, |at| at + 1)..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty() || authority.contains(',') {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port(scheme)?,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// The port a scheme's server listens on by default.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" | "postgresql" => Some(5432),
        "redis" | "rediss" => Some(6379),
        "mysql" | "mariadb" => Some(3306),
        "esdb" | "kurrentdb" | "kdb" => Some(2113),
        _ => None,
    }
}

/// Where the user information of a URL's remainder (after `://`) ends: its last `@` before
/// the query. A password may hold `/` or `@` unescaped; none of it may be shown.
fn userinfo_end(rest: &str) -> Option<usize> {
    let query = rest.find('?').unwrap_or(rest.len());
    rest[..query].rfind('@')
}

/// `url` with its password replaced by `***`: in the user information and in a `password=`
/// query parameter. Anything that is not a URL is returned as it is.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let mut out = format!("{scheme}://");
    let rest = match userinfo_end(rest) {
        Some(at) => {
            let (user, after) = rest.split_at(at);
            match user.split_once(':') {
                Some((name, _)) => out.push_str(&format!("{name}:***")),
                None => out.push_str(user),
            }
            after
        }
        None => rest,
    };
    match rest.split_once('?') {
        Some((base, query)) => {
            out.push_str(base);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(rest),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_wherever_a_url_carries_them() {
        assert_eq!(
            mask_password("postgres://ledger:hunter2@db:5432/funds"),
            "postgres://ledger:***@db:5432/funds"
        );
        assert_eq!(
            mask_password("postgres://led:ger:hun@ter/2@db/funds?sslmode=require"),
            "postgres://led:***@db/funds?sslmode=require"
        );
        assert_eq!(
            mask_password("postgres://db/funds?user=a&password=hunter2"),
            "postgres://db/funds?user=a&password=***"
        );
        assert_eq!(
            mask_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(mask_password("./data"), "./data");
    }

    #[test]
    fn host_and_port_come_from_the_authority_or_the_schemes_default() {
        let hp = |u| host_port(u).map(|(h, p)| format!("{h}:{p}"));
        assert_eq!(
            hp("postgres://u:p@db.example:6543/x").as_deref(),
            Some("db.example:6543")
        );
        assert_eq!(hp("postgres://u:p/w@db/x").as_deref(), Some("db:5432"));
        assert_eq!(
            hp("redis://127.0.0.1/0?key_prefix=a").as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(
            hp("mysql://root@[::1]:3307/test").as_deref(),
            Some("::1:3307")
        );
        assert_eq!(hp("postgres://a,b/x"), None);
        assert_eq!(hp("postgres:///x?host=/run/postgresql"), None);
        assert_eq!(hp("unknown://host/x"), None);
    }

    #[test]
    fn sqlite_urls_name_their_file_and_in_memory_databases_none() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/ledger/events.sqlite?mode=rwc"),
            Some(PathBuf::from("/var/lib/ledger/events.sqlite"))
        );
        assert_eq!(
            sqlite_path("sqlite:rm.sqlite"),
            Some(PathBuf::from("rm.sqlite"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite://file?mode=memory"), None);
        assert_eq!(sqlite_path("postgres://db/x"), None);
    }
}
