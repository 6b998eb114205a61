//! Access logs: one structured event per request (method, path, campaign,
//! status, latency), off unless `--access-log` / `RECFLOW_ACCESS_LOG` turns
//! them on. Above `per_second` requests in a second, only one in `one_in`
//! is logged, and the next logged event counts the ones skipped
//! (`skipped`), so a busy server's log stays readable and cheap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// How much access logging a server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// Every request is logged up to this many per second...
    pub per_second: u64,
    /// ...then one in this many.
    pub one_in: u64,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            per_second: 100,
            one_in: 100,
        }
    }
}

/// The campaign a response answered for, set by the runtime handlers for
/// the access log to read.
#[derive(Debug, Clone)]
pub struct CampaignTag(pub String);

/// Decides which requests are logged: all within the per-second budget,
/// then one in `one_in`; counts the rest.
#[derive(Debug, Default)]
pub struct Sampler {
    /// The second (since the server started) `in_second` counts.
    second: AtomicU64,
    in_second: AtomicU64,
    skipped: AtomicU64,
}

impl Sampler {
    /// `Some(skipped since the last logged request)` when this request, in
    /// second `now_second`, is to be logged.
    pub fn admit(&self, config: AccessLogConfig, now_second: u64) -> Option<u64> {
        if self.second.swap(now_second, Ordering::Relaxed) != now_second {
            self.in_second.store(0, Ordering::Relaxed);
        }
        let n = self.in_second.fetch_add(1, Ordering::Relaxed);
        let over = n.saturating_sub(config.per_second);
        if n < config.per_second || over.is_multiple_of(config.one_in.max(1)) {
            Some(self.skipped.swap(0, Ordering::Relaxed))
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// The middleware: times the request and logs it when sampled.
pub async fn log(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(config) = state.config.access_log else {
        return next.run(req).await;
    };
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let second = state.started.elapsed().as_secs();
    if let Some(skipped) = state.access_sampler.admit(config, second) {
        let campaign = response
            .extensions()
            .get::<CampaignTag>()
            .map_or("", |c| c.0.as_str());
        tracing::info!(
            target: "recflow::access",
            method = %method,
            path = %path,
            campaign = %campaign,
            status = response.status().as_u16(),
            latency_ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0,
            skipped,
            "Request."
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_every_request_up_to_the_rate_then_one_in_k_and_counts_the_rest() {
        let config = AccessLogConfig {
            per_second: 3,
            one_in: 4,
        };
        let s = Sampler::default();
        let logged: Vec<Option<u64>> = (0..12).map(|_| s.admit(config, 0)).collect();
        assert_eq!(
            logged,
            [
                Some(0),
                Some(0),
                Some(0),
                // Over the rate: one in 4, carrying the count skipped.
                Some(0),
                None,
                None,
                None,
                Some(3),
                None,
                None,
                None,
                Some(3),
            ]
        );
        // A new second starts a new budget; the skipped count carries over
        // to the next logged request.
        assert_eq!(s.admit(config, 1), Some(0));
        for _ in 0..5 {
            s.admit(config, 1);
        }
        assert_eq!(s.admit(config, 2), Some(2));
    }
}
