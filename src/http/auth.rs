//! Who may call: AWS SigV4 signatures (service `personalize`) checked
//! against key pairs from `RECFLOW_ACCESS_KEYS`, or bearer tokens from
//! `RECFLOW_API_TOKENS`. Secrets come only from the environment.

use axum::http::request::Parts;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::ApiError;
use super::sigv4::{self, KeyRing, SigV4Error};

/// The credentials a server accepts.
#[derive(Clone, Default)]
pub struct Auth {
    pub keys: KeyRing,
    pub tokens: Vec<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("keys", &self.keys)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Auth {
    /// Reads `RECFLOW_ACCESS_KEYS` (`KEY_ID:SECRET,KEY_ID:SECRET`) and
    /// `RECFLOW_API_TOKENS` (`TOKEN,TOKEN`).
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
        if let Ok(tokens) = std::env::var("RECFLOW_API_TOKENS") {
            auth.tokens = tokens
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(auth)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.tokens.is_empty()
    }

    /// Checks a request; returns who signed it (an access key id or `bearer`).
    pub fn check(&self, parts: &Parts, body: &[u8]) -> Result<String, ApiError> {
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
            let given = token.trim().as_bytes();
            if self.tokens.iter().any(|t| same(t.as_bytes(), given)) {
                return Ok("bearer".into());
            }
            return Err(ApiError::unauthenticated(
                "UnrecognizedClientException",
                "the bearer token is not one of RECFLOW_API_TOKENS",
            ));
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
