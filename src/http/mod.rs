//! HTTP, recflow's one edge for it (axum). `recflow serve` answers the
//! managed service's runtime and events APIs (`runtime`, `events`: its
//! paths and JSON, so its SDK clients work with only `endpoint_url`
//! changed), the operations API (`api`, with its OpenAPI document) and the
//! web console (`console`), on one port; `recflow schedule --bind` serves
//! the operations API and the console. Who may do what is `access`.
//!
//! Every active campaign in the state store is served. A background task
//! polls the store; when a campaign's pointer (or its settings, or its
//! group's filters) changes, the new model is loaded off the request path
//! and the campaign map is swapped atomically (`ArcSwap`): a request works
//! on the snapshot it started with, so a swap never fails a request.

pub mod access;
pub mod access_log;
pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod events;
pub mod gate;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod runtime;
pub mod session;
pub mod sigv4;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::config::Env;
pub use auth::Auth;
use error::ApiError;
use live::{LiveCampaign, Realtime};
use metrics::{LiveStats, Metrics};
use session::Sessions;

/// How the server runs; secrets come from the environment (see [`Auth`]).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: SocketAddr,
    pub auth: Auth,
    /// Recommendation endpoints answer without authentication.
    pub open_recommendations: bool,
    /// `/metrics` answers without authentication (for a Prometheus that
    /// cannot send a token).
    pub open_metrics: bool,
    /// Requests with larger bodies are refused.
    pub max_body_bytes: usize,
    /// How often the state store is checked for campaign changes.
    pub reload_interval: Duration,
    /// Log requests (sampled above a rate); `None`: no access log.
    pub access_log: Option<access_log::AccessLogConfig>,
    /// How the scoring endpoints shed load.
    pub gate: gate::GateConfig,
}

impl ServeConfig {
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
}

pub struct AppState {
    pub env: Env,
    pub config: ServeConfig,
    campaigns: ArcSwap<HashMap<String, Arc<LiveCampaign>>>,
    pub realtime: Realtime,
    pub metrics: Metrics,
    /// The last hour of answers per campaign, for the console's charts.
    pub live: LiveStats,
    /// The console's logged-in browsers.
    pub sessions: Sessions,
    /// When the server started: the access log's seconds count from it.
    started: Instant,
    access_sampler: access_log::Sampler,
    /// Admission to the scoring threads (GetRecommendations, GetPersonalizedRanking).
    pub gate: gate::ScoringGate,
}

impl AppState {
    pub fn new(env: Env, config: ServeConfig) -> AppState {
        let gate = config.gate;
        AppState {
            env,
            config,
            campaigns: ArcSwap::from_pointee(HashMap::new()),
            realtime: Realtime::default(),
            metrics: Metrics::default(),
            live: LiveStats::default(),
            sessions: Sessions::default(),
            started: Instant::now(),
            access_sampler: access_log::Sampler::default(),
            gate: gate::ScoringGate::new(gate),
        }
    }

    /// Serves a campaign loaded elsewhere (benchmarks, tests).
    pub fn insert_campaign(&self, live: impl Into<Arc<LiveCampaign>>) {
        let live: Arc<LiveCampaign> = live.into();
        let name = live.record.name.clone();
        self.metrics.swapped(&name, live.rec.version);
        self.campaigns.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(name.clone(), live.clone());
            m
        });
    }

    /// The live campaign a `campaignArn` names (a full ARN or a bare name).
    fn campaign(&self, arn: Option<&String>) -> Result<Arc<LiveCampaign>, ApiError> {
        let arn = arn.ok_or_else(|| ApiError::invalid("campaignArn is required"))?;
        let name = resource_name(arn, "campaign");
        self.campaigns.load().get(name).cloned().ok_or_else(|| {
            ApiError::not_found(format!(
                "campaign {name:?} is not deployed (campaignArn {arn})"
            ))
        })
    }

    /// Records a finished request and turns its result into a response.
    fn finish(
        &self,
        operation: &'static str,
        campaign: &str,
        timer: Timer,
        result: Result<Response, ApiError>,
    ) -> Response {
        if let Err(ApiError::Throttled(_)) = &result {
            self.metrics.shed(operation, campaign);
        }
        let mut response = result.unwrap_or_else(IntoResponse::into_response);
        if self.config.access_log.is_some() {
            response
                .extensions_mut()
                .insert(access_log::CampaignTag(campaign.to_string()));
        }
        let (status, seconds) = (response.status().as_u16(), timer.0.elapsed().as_secs_f64());
        self.metrics.request(operation, campaign, status, seconds);
        self.live
            .record(campaign, status, seconds, chrono::Utc::now());
        response
    }

    /// Brings the campaign map in line with the state store: new or moved
    /// campaigns are loaded (a failure keeps the previous model serving),
    /// deleted ones dropped. Returns how many campaigns were swapped in.
    pub async fn reload(&self) -> anyhow::Result<usize> {
        let records = self.env.store.list_campaigns().await?;
        let current = self.campaigns.load_full();
        let mut next = HashMap::new();
        let mut swapped = 0;
        for record in records {
            let filters = self.env.store.group_filters(&record.dataset_group).await?;
            // Items and users posted since the datasets were imported change
            // what filters and metadata read.
            let mut posted = Vec::new();
            for t in ["items", "users"] {
                posted.extend(
                    self.env
                        .store
                        .list_put_records(&record.dataset_group, t)
                        .await?,
                );
            }
            let fingerprint = live::fingerprint(&record, &filters, &posted);
            let old = current.get(&record.name);
            if let Some(old) = old
                && old.fingerprint == fingerprint
            {
                next.insert(record.name.clone(), old.clone());
                continue;
            }
            // Once per (re)load, not per tick: the group's stored events and
            // its event tracker (created on first use).
            self.realtime
                .load_group(&self.env, &record.dataset_group)
                .await?;
            self.env.store.event_tracker(&record.dataset_group).await?;
            match LiveCampaign::load(&self.env, record.clone(), &filters, &posted).await {
                Ok(l) => {
                    tracing::info!(
                        campaign = %record.name,
                        solution = %l.rec.solution,
                        version = l.rec.version,
                        filters = l.filters.len(),
                        "Campaign loaded."
                    );
                    self.metrics.swapped(&record.name, l.rec.version);
                    next.insert(record.name.clone(), Arc::new(l));
                    swapped += 1;
                }
                Err(e) => {
                    tracing::error!(campaign = %record.name, error = %format!("{e:#}"), "Cannot load the campaign; the previous model keeps serving.");
                    if let Some(old) = old {
                        next.insert(record.name.clone(), old.clone());
                    }
                }
            }
        }
        if swapped > 0 || next.len() != current.len() {
            self.campaigns.store(Arc::new(next));
        }
        Ok(swapped)
    }
}

/// The last part of an ARN of `kind` (`arn:aws:personalize:R:A:campaign/NAME`), or the name itself.
pub fn resource_name<'a>(arn: &'a str, kind: &str) -> &'a str {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.rsplit_once(&format!(":{kind}/")))
        .map_or(arn, |(_, name)| name)
}

struct Timer(Instant);

impl Timer {
    fn start() -> Timer {
        Timer(Instant::now())
    }
}

/// Reads a body within the size limit; with `need`, the caller must have it.
async fn read_body(
    state: &AppState,
    req: Request,
    need: Option<access::Need>,
) -> Result<Bytes, ApiError> {
    match need {
        Some(need) => Ok(access::authorize(state, req, need).await?.1),
        None => {
            let limit = state.config.max_body_bytes;
            axum::body::to_bytes(req.into_body(), limit)
                .await
                .map_err(|_| ApiError::TooLarge { limit })
        }
    }
}

/// Parses a JSON body; an error names the member as the limits do
/// (`eventList.1.sentAt: ...`, list entries counted from 1).
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let mut path = limits::Path::root();
        for segment in e.path().iter() {
            use serde_path_to_error::Segment;
            path = match segment {
                Segment::Seq { index } => path.entry(*index),
                Segment::Map { key } => path.member(key),
                Segment::Enum { variant } => path.member(variant),
                Segment::Unknown => path.member("?"),
            };
        }
        let inner = e.into_inner();
        if path.to_string().is_empty() {
            ApiError::invalid(format!("the body is not a valid request: {inner}"))
        } else {
            ApiError::invalid(format!("{path}: {inner}"))
        }
    })?;
    // One JSON value, nothing after it.
    de.end()
        .map_err(|e| ApiError::invalid(format!("the body is not a valid request: {e}")))?;
    Ok(parsed)
}

/// Liveness for load balancers and orchestrators: the process answers.
/// Nothing else, so an unauthenticated caller learns nothing about what is
/// served; the campaigns and their versions are in `/metrics`.
async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Prometheus text. It names campaigns, solution versions and dataset
/// groups, so it needs a credential (a read-only token is enough) unless
/// the server was started with `--open-metrics`.
async fn metrics_text(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if !state.config.open_metrics
        && let Err(e) = access::authorize(&state, req, access::Need::Read).await
    {
        return e.into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// What a server answers besides the operations API and the console:
/// `recflow serve` also the runtime and events APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Faces {
    All,
    Operations,
}

/// Every route a server answers: health, Prometheus metrics (with a
/// credential unless opened), the runtime and events APIs (with
/// [`Faces::All`], at the managed service's paths), the operations API
/// under `/api/v1/` and the console under `/ui/`.
pub fn router(state: Arc<AppState>, faces: Faces) -> Router {
    let mut routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text));
    if faces == Faces::All {
        routes = routes
            .route("/recommendations", post(runtime::recommendations))
            .route("/personalize-ranking", post(runtime::personalized_ranking))
            .route("/events", post(events::put_events))
            .route("/items", post(events::put_items))
            .route("/users", post(events::put_users));
    }
    routes
        .with_state(state.clone())
        .merge(api::router(state.clone()))
        .merge(console::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state, access_log::log))
}

/// Binds the address; the error names it.
async fn listen(bind: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))
}

/// Says where the console is. With no credential configured, the server
/// makes one admin token for this process and prints it beside the address
/// (as Jupyter does), so a newcomer can open the console at once; nothing
/// is ever served without a credential.
fn announce(auth: &mut Auth, addr: SocketAddr) {
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), addr.port())
    } else {
        addr
    };
    // Written, not println!'d: a server whose stdout was closed keeps serving.
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = if auth.is_empty() {
        let token = uuid::Uuid::new_v4().simple().to_string();
        auth.tokens.push(token.clone());
        writeln!(
            out,
            "Console: http://{host}/ui/  (log in with the token {token})\n  No RECFLOW_API_TOKENS, RECFLOW_READ_TOKENS or RECFLOW_ACCESS_KEYS are set: that admin token was made for this process only."
        )
    } else {
        writeln!(
            out,
            "Console: http://{host}/ui/  (log in with a token from RECFLOW_API_TOKENS or RECFLOW_READ_TOKENS)"
        )
    };
    let _ = out.flush();
}

/// `recflow serve`: every campaign, the runtime, events and operations APIs
/// and the console, until SIGTERM or Ctrl-C. `ready` receives the bound
/// address once campaigns are loaded and the socket is listening.
pub async fn serve(
    env: Env,
    config: ServeConfig,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    let listener = listen(config.bind).await?;
    let addr = listener.local_addr()?;
    let mut config = config;
    announce(&mut config.auth, addr);
    let interval = config.reload_interval;
    let state = Arc::new(AppState::new(env, config));
    state.reload().await?;
    let poller = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = poller.reload().await {
                tracing::error!(error = %format!("{e:#}"), "Reloading campaigns failed; serving what is loaded.");
            }
        }
    });
    let campaigns: Vec<String> = state.campaigns.load().keys().cloned().collect();
    tracing::info!(%addr, campaigns = ?campaigns, "Serving.");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    axum::serve(listener, router(state, Faces::All))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

/// `recflow schedule --bind`: the operations API and the console.
pub async fn serve_operations(env: Env, config: ServeConfig) -> anyhow::Result<()> {
    let listener = listen(config.bind).await?;
    let addr = listener.local_addr()?;
    let mut config = config;
    announce(&mut config.auth, addr);
    tracing::info!(%addr, "Operations API and console listening.");
    let state = Arc::new(AppState::new(env, config));
    axum::serve(listener, router(state, Faces::Operations))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("Shutting down: finishing requests in flight.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_bare_names_resolve() {
        assert_eq!(
            resource_name(
                "arn:aws:personalize:us-east-1:123456789012:campaign/movies",
                "campaign"
            ),
            "movies"
        );
        assert_eq!(resource_name("movies", "campaign"), "movies");
        assert_eq!(
            resource_name("arn:aws:personalize:eu-west-1:1:filter/no-horror", "filter"),
            "no-horror"
        );
    }
}
