//! Who is looking at the console: a token typed into the sign-in form becomes a session (a
//! random id in an `HttpOnly`, `SameSite=Strict` cookie, valid for [`SESSION_HOURS`] hours,
//! forgotten at sign-out and at restart); scripts may send `Authorization: Bearer <token>`
//! instead. The token itself is never stored in the browser. Every page needs `audit:read`;
//! personal data additionally needs `donations:read`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

use crate::api::auth::{Authenticator, Principal, Scope};

/// How long a session lasts.
pub const SESSION_HOURS: u64 = 8;
/// The session cookie's name.
pub const COOKIE: &str = "ledger_console";

/// Signed-in sessions. Cheap to clone; clones share.
#[derive(Clone, Default)]
pub struct Sessions {
    open: Arc<Mutex<HashMap<String, (Principal, Instant)>>>,
}

/// Why a request may not see a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No session and no token, or an unknown or expired one: sign in.
    SignIn,
    /// Signed in, but without the scope the page needs.
    Scope(&'static str),
}

impl Sessions {
    /// Opens a session for a token that grants `audit:read`; the session id for the cookie.
    pub fn open(&self, auth: &Authenticator, token: &str) -> Result<String, Denied> {
        let principal = auth.principal(token.trim()).ok_or(Denied::SignIn)?;
        if !principal.grants(Scope::AuditRead) {
            return Err(Denied::Scope("audit:read"));
        }
        let id = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let mut open = self.open.lock().expect("sessions lock");
        let now = Instant::now();
        open.retain(|_, (_, expires)| *expires > now);
        open.insert(
            id.clone(),
            (
                principal.clone(),
                now + Duration::from_secs(SESSION_HOURS * 3600),
            ),
        );
        Ok(id)
    }

    /// Forgets the session of `headers`, if any.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.open.lock().expect("sessions lock").remove(&id);
        }
    }

    /// The client behind a request (session cookie or bearer token), if it may read the
    /// console.
    pub fn viewer(&self, auth: &Authenticator, headers: &HeaderMap) -> Result<Principal, Denied> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let principal = if let Some(token) = bearer {
            auth.principal(token.trim()).cloned()
        } else if let Some(id) = cookie(headers) {
            let open = self.open.lock().expect("sessions lock");
            open.get(&id)
                .filter(|(_, expires)| *expires > Instant::now())
                .map(|(p, _)| p.clone())
        } else {
            None
        };
        let principal = principal.ok_or(Denied::SignIn)?;
        if principal.grants(Scope::AuditRead) {
            Ok(principal)
        } else {
            Err(Denied::Scope("audit:read"))
        }
    }
}

/// The session id in the request's cookies.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value for a new session (`secure` over TLS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn auth() -> Authenticator {
        Authenticator::default()
            .with_token("ops", "ops-secret", BTreeSet::from([Scope::AuditRead]))
            .with_token("form", "form-secret", BTreeSet::from([Scope::DonationsAdd]))
    }

    fn with_cookie(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_token_with_audit_read_opens_a_session_that_the_cookie_then_carries() {
        let sessions = Sessions::default();
        let auth = auth();
        let id = sessions.open(&auth, " ops-secret\n").unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(
            sessions.viewer(&auth, &with_cookie(&id)).unwrap().name,
            "ops"
        );
        sessions.close(&with_cookie(&id));
        assert_eq!(
            sessions.viewer(&auth, &with_cookie(&id)).unwrap_err(),
            Denied::SignIn
        );
    }

    #[test]
    fn unknown_tokens_made_up_sessions_and_tokens_without_the_scope_are_refused() {
        let sessions = Sessions::default();
        let auth = auth();
        assert_eq!(sessions.open(&auth, "guess").unwrap_err(), Denied::SignIn);
        assert_eq!(
            sessions.open(&auth, "form-secret").unwrap_err(),
            Denied::Scope("audit:read")
        );
        assert_eq!(
            sessions
                .viewer(&auth, &with_cookie(&"0".repeat(64)))
                .unwrap_err(),
            Denied::SignIn
        );
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer form-secret".parse().unwrap());
        assert_eq!(
            sessions.viewer(&auth, &bearer).unwrap_err(),
            Denied::Scope("audit:read")
        );
        bearer.insert(header::AUTHORIZATION, "Bearer ops-secret".parse().unwrap());
        assert!(sessions.viewer(&auth, &bearer).is_ok());
    }
}
