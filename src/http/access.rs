//! Who may do what over HTTP. A caller shows a credential — a bearer token
//! or a SigV4 signature (`auth.rs`), or the console's session cookie
//! (`session.rs`) — which gives a role. Reading needs any role; acting needs
//! the admin role, and a session that acts must also present its CSRF
//! token (`x-csrf-token` header, or the `csrf` field of a console form).

use axum::extract::Request;
use axum::http::request::Parts;
use bytes::Bytes;

use super::AppState;
use super::auth::Role;
use super::error::ApiError;
use super::session::{self, Session};

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Admin,
}

/// Who called.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// Set when the caller is a console session (cookie).
    pub session: Option<Session>,
}

impl Caller {
    /// How a run this caller queues is recorded (`trigger` in run history).
    pub fn trigger(&self) -> &'static str {
        if self.session.is_some() {
            "console"
        } else {
            "api"
        }
    }
}

/// The header a console page's script sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Reads the body within the size limit and checks the caller against
/// `need`; returns the caller and the body.
pub async fn authorize(
    state: &AppState,
    req: Request,
    need: Need,
) -> Result<(Caller, Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let limit = state.config.max_body_bytes;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit })?;
    let caller = identify(state, &parts, &body)?;
    permit(&caller, need, csrf_of(&parts).as_deref())?;
    Ok((caller, body))
}

/// The caller a request's credential names.
pub fn identify(state: &AppState, parts: &Parts, body: &[u8]) -> Result<Caller, ApiError> {
    let auth = &state.config.auth;
    if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        if auth.is_empty() {
            return Err(ApiError::unauthenticated(
                "UnrecognizedClientException",
                "no credentials are configured: set RECFLOW_API_TOKENS, RECFLOW_READ_TOKENS or RECFLOW_ACCESS_KEYS",
            ));
        }
        let role = auth.check(parts, body)?;
        return Ok(Caller {
            role,
            session: None,
        });
    }
    if let Some(s) = session::cookie_of(&parts.headers).and_then(|id| state.sessions.get(&id)) {
        return Ok(Caller {
            role: s.role,
            session: Some(s),
        });
    }
    // No credential at all: the same answer as an SDK without keys gets.
    auth.check(parts, body).map(|role| Caller {
        role,
        session: None,
    })
}

/// Whether `caller` may do what `need` asks; a session acting must show
/// its CSRF token.
pub fn permit(caller: &Caller, need: Need, csrf: Option<&str>) -> Result<(), ApiError> {
    if need == Need::Admin {
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden(
                "this credential can read but not act; use a token from RECFLOW_API_TOKENS".into(),
            ));
        }
        if let Some(s) = &caller.session
            && csrf != Some(s.csrf.as_str())
        {
            return Err(ApiError::Forbidden(
                "the request lacks the session's CSRF token; reload the page and try again".into(),
            ));
        }
    }
    Ok(())
}

fn csrf_of(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
