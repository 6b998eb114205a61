//! Who may call, and with which role: AWS SigV4 signatures (service
//! `personalize`) checked against key pairs from `RECFLOW_ACCESS_KEYS`, and
//! bearer tokens from `RECFLOW_API_TOKENS`, act (admin); bearer tokens from
//! `RECFLOW_READ_TOKENS` only read. Secrets come only from the environment.

use axum::http::request::Parts;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::ApiError;
use super::sigv4::{self, KeyRing, SigV4Error};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Look: every read of the operations API and the console, and
    /// recommendations.
    Read,
    /// Act as well: trigger, cancel, retry, pause, update and roll back
    /// campaigns, post events.
    Admin,
}

/// The credentials a server accepts.
#[derive(Clone, Default)]
pub struct Auth {
    pub keys: KeyRing,
    /// Tokens that act (`RECFLOW_API_TOKENS`).
    pub tokens: Vec<String>,
    /// Tokens that only read (`RECFLOW_READ_TOKENS`).
    pub read_tokens: Vec<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("keys", &self.keys)
            .field("tokens", &self.tokens.len())
            .field("read_tokens", &self.read_tokens.len())
            .finish()
    }
}

impl Auth {
    /// Reads `RECFLOW_ACCESS_KEYS` (`KEY_ID:SECRET,KEY_ID:SECRET`),
    /// `RECFLOW_API_TOKENS` and `RECFLOW_READ_TOKENS` (`TOKEN,TOKEN`).
    pub fn from_env() -> anyhow::Result<Auth> {
        let mut auth = Auth::default();
        if let Ok(pairs) = std::env::var("RECFLOW_ACCESS_KEYS") {
            for (i, pair) in pairs
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .enumerate()
            {
                let (id, secret) = pair.split_once(':').ok_or_else(|| {
                    anyhow::anyhow!(
                        "RECFLOW_ACCESS_KEYS entry {}: expected KEY_ID:SECRET",
                        i + 1
                    )
                })?;
                auth.keys.insert(id.trim(), secret.trim());
            }
        }
        let list = |name: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        };
        auth.tokens = list("RECFLOW_API_TOKENS");
        auth.read_tokens = list("RECFLOW_READ_TOKENS");
        Ok(auth)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.tokens.is_empty() && self.read_tokens.is_empty()
    }

    /// The role a bearer token gives, if it is one of ours (constant time).
    pub fn token_role(&self, token: &str) -> Option<Role> {
        let given = token.trim().as_bytes();
        // Every token is compared, so the time taken does not say which matched.
        let admin = self
            .tokens
            .iter()
            .fold(false, |hit, t| hit | same(t.as_bytes(), given));
        let read = self
            .read_tokens
            .iter()
            .fold(false, |hit, t| hit | same(t.as_bytes(), given));
        if admin {
            Some(Role::Admin)
        } else if read {
            Some(Role::Read)
        } else {
            None
        }
    }

    /// Checks a request's `Authorization`; returns the caller's role.
    pub fn check(&self, parts: &Parts, body: &[u8]) -> Result<Role, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if header.is_empty() {
            return Err(ApiError::unauthenticated(
                "MissingAuthenticationTokenException",
                "this endpoint needs a SigV4-signed request (service personalize) or `Authorization: Bearer TOKEN`",
            ));
        }
        if let Some(token) = header.strip_prefix("Bearer ") {
            return self.token_role(token).ok_or_else(|| {
                ApiError::unauthenticated(
                    "UnrecognizedClientException",
                    "the bearer token is not one of RECFLOW_API_TOKENS or RECFLOW_READ_TOKENS",
                )
            });
        }
        sigv4::verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
            &self.keys,
            "personalize",
            chrono::Utc::now(),
        )
        .map(|_key| Role::Admin)
        .map_err(|e| {
            let code = match e {
                SigV4Error::UnknownAccessKey { .. } => "UnrecognizedClientException",
                SigV4Error::SignatureMismatch => "InvalidSignatureException",
                _ => "IncompleteSignatureException",
            };
            ApiError::unauthenticated(code, e.to_string())
        })
    }
}

/// Constant-time equality: HMAC both under one key and compare the tags.
fn same(a: &[u8], b: &[u8]) -> bool {
    let tag = |x: &[u8]| {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(b"recflow-token-compare")
            .expect("HMAC takes keys of any length");
        m.update(x);
        m
    };
    let expected = tag(a).finalize().into_bytes();
    tag(b).verify_slice(&expected).is_ok()
}
