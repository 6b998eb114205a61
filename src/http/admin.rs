//! The pipelines HTTP API (authentication required on every call, the same
//! credentials as the events API): trigger a run, read a run, list
//! pipelines, cancel a run. Served by `recflow schedule --bind` and by
//! `recflow serve`.
//!
//! - `POST /api/v1/pipelines/{name}/runs` `{"params": {...}, "logical_date": "..."}` → 201 run
//! - `GET /api/v1/runs/{id}` → the run and its step attempts
//! - `GET /api/v1/pipelines` → every registered pipeline
//! - `POST /api/v1/runs/{id}/cancel` → the run

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::auth::Auth;
use super::error::ApiError;
use crate::config::Env;
use crate::scheduler::trigger::{self, GivenParams, TriggerError};
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    pub auth: Auth,
    pub max_body_bytes: usize,
}

pub struct ApiState {
    pub env: Env,
    pub auth: Auth,
    pub max_body_bytes: usize,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/v1/pipelines", get(list_pipelines))
        .route("/api/v1/pipelines/{name}/runs", post(create_run))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/runs/{id}/cancel", post(cancel_run))
        .with_state(state)
}

/// Serves the API alone (the daemon's `--bind`).
pub async fn serve(env: Env, config: ApiConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
    tracing::info!(addr = %listener.local_addr()?, "Pipelines API listening.");
    if config.auth.is_empty() {
        tracing::warn!(
            "No credentials configured (RECFLOW_API_TOKENS, RECFLOW_ACCESS_KEYS): the API refuses every request."
        );
    }
    let state = Arc::new(ApiState {
        env,
        auth: config.auth,
        max_body_bytes: config.max_body_bytes,
    });
    axum::serve(listener, router(state)).await?;
    Ok(())
}

/// Reads the body within the size limit and checks the caller.
async fn authorized(state: &ApiState, req: Request) -> Result<bytes::Bytes, ApiError> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| ApiError::TooLarge {
            limit: state.max_body_bytes,
        })?;
    if state.auth.is_empty() {
        return Err(ApiError::unauthenticated(
            "UnrecognizedClientException",
            "no credentials are configured: set RECFLOW_API_TOKENS or RECFLOW_ACCESS_KEYS",
        ));
    }
    state.auth.check(&parts, &body)?;
    Ok(body)
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { what } => ApiError::not_found(format!("{what} not found")),
        other => ApiError::internal(other),
    }
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn list_pipelines(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    respond(
        async {
            authorized(&state, req).await?;
            let mut out = Vec::new();
            for p in state
                .env
                .store
                .list_pipelines()
                .await
                .map_err(store_error)?
            {
                let pipeline = trigger::registered_pipeline(&state.env, &p.name).await.ok();
                let o = pipeline.as_ref().map(|x| &x.spec.orchestration);
                let next = o
                    .and_then(|o| {
                        Some(
                            crate::pipeline::schedule::CronSchedule::parse(
                                o.schedule.as_deref()?,
                                &o.timezone,
                            )
                            .ok()?
                            .next_after(chrono::Utc::now()),
                        )
                    })
                    .flatten();
                out.push(json!({
                    "name": p.name,
                    "dataset_group": p.dataset_group,
                    "file": p.file,
                    "updated_at": p.updated_at,
                    "schedule": o.and_then(|o| o.schedule.clone()),
                    "timezone": o.map(|o| o.timezone.clone()),
                    "next_run_at": next,
                    "params": o.map(|o| &o.params),
                }));
            }
            Ok(axum::Json(json!({ "pipelines": out })).into_response())
        }
        .await,
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateRun {
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    logical_date: Option<String>,
}

async fn create_run(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    respond(
        async {
            let body = authorized(&state, req).await?;
            let request: CreateRun = if body.iter().all(u8::is_ascii_whitespace) {
                CreateRun::default()
            } else {
                let mut de = serde_json::Deserializer::from_slice(&body);
                serde_path_to_error::deserialize(&mut de)
                    .map_err(|e| ApiError::invalid(format!("{}: {}", e.path(), e.inner())))?
            };
            let logical = request
                .logical_date
                .as_deref()
                .map(trigger::parse_logical_date)
                .transpose()
                .map_err(ApiError::invalid)?;
            let id = trigger::queue_run(
                &state.env,
                &name,
                GivenParams::Json(request.params),
                logical,
                "api",
            )
            .await
            .map_err(|e| match e {
                TriggerError::UnknownPipeline(_) => ApiError::not_found(e.to_string()),
                TriggerError::Invalid(m) => ApiError::invalid(m),
                TriggerError::Store(s) => store_error(s),
                TriggerError::Other(o) => ApiError::internal(format!("{o:#}")),
            })?;
            let run = state.env.store.get_run(id).await.map_err(store_error)?;
            Ok((StatusCode::CREATED, axum::Json(json!({ "run": run }))).into_response())
        }
        .await,
    )
}

async fn get_run(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    respond(async {
        authorized(&state, req).await?;
        let run = state.env.store.get_run(id).await.map_err(store_error)?;
        let attempts = state.env.store.list_attempts(id).await.map_err(store_error)?;
        let steps: Vec<_> = attempts
            .iter()
            .map(|a| {
                json!({
                    "step": a.step_id, "type": a.step_type, "attempt": a.attempt, "status": a.status,
                    "queued_at": a.queued_at, "started_at": a.started_at, "finished_at": a.finished_at,
                    "summary": a.summary, "outputs": a.outputs, "error": a.error, "worker": a.worker,
                })
            })
            .collect();
        Ok(axum::Json(json!({ "run": run, "steps": steps })).into_response())
    }
    .await)
}

async fn cancel_run(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    respond(
        async {
            authorized(&state, req).await?;
            let run = state.env.store.get_run(id).await.map_err(store_error)?;
            if run.status.is_finished() {
                return Err(ApiError::invalid(format!(
                    "run {id} already ended ({})",
                    run.status
                )));
            }
            let run = state
                .env
                .store
                .request_cancel(id)
                .await
                .map_err(store_error)?;
            Ok(axum::Json(json!({ "run": run })).into_response())
        }
        .await,
    )
}
