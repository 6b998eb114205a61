//! Console sessions: logging in with an API token gives a session cookie
//! (HttpOnly, SameSite=Strict, random 256-bit id) and a CSRF token that
//! every state-changing request must carry. Sessions live in this process's
//! memory and expire after [`SESSION_TTL`] of inactivity; a restart logs
//! everyone out, which a token login undoes in seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::auth::Role;

/// The session cookie's name.
pub const COOKIE: &str = "recflow_session";
/// A session ends after this long without a request.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// At most this many sessions are kept; the least recently used go first.
const MAX_SESSIONS: usize = 10_000;

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    /// Sent back with every state-changing request (form field or header).
    pub csrf: String,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 244 random bits from the operating system (two v4 UUIDs), 64 hex digits.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// Starts a session; returns its id (the cookie's value) and the session.
    pub fn start(&self, role: Role) -> (String, Session) {
        let id = random_token();
        let session = Session {
            role,
            csrf: random_token(),
            last_seen: Instant::now(),
        };
        let mut map = self.by_id.lock().expect("sessions");
        map.retain(|_, s| s.last_seen.elapsed() < SESSION_TTL);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session with this id, refreshed.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.by_id.lock().expect("sessions");
        match map.get_mut(id) {
            Some(s) if s.last_seen.elapsed() < SESSION_TTL => {
                s.last_seen = Instant::now();
                Some(s.clone())
            }
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, id: &str) {
        self.by_id.lock().expect("sessions").remove(id);
    }
}

/// The session id in a request's `Cookie` header, if any.
pub fn cookie_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value that starts (or, with `None`, ends) a session.
pub fn set_cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_read_and_end() {
        let s = Sessions::default();
        let (id, started) = s.start(Role::Read);
        assert_eq!(id.len(), 64);
        let got = s.get(&id).expect("live");
        assert_eq!(
            (got.role, got.csrf.as_str()),
            (Role::Read, started.csrf.as_str())
        );
        assert!(s.get("not-a-session").is_none());
        s.end(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_strictly() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; recflow_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_of(&h).as_deref(), Some("abc"));
        let set = set_cookie(Some("abc"));
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    }
}
