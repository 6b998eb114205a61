//! The operations API: everything the CLI can do, over HTTP, through the
//! same service functions (`crate::ops`). JSON in and out; every call is
//! authenticated (a read-only token reads, an admin token or key acts; the
//! console's session cookie with its CSRF token works too); errors have
//! the managed service's shape and the right status (see `error.rs`);
//! lists are paged by cursor and bounded.
//!
//! The OpenAPI 3 document is generated from the handlers and types below
//! (utoipa) and served at `/api/v1/openapi.json`; each route is registered
//! together with its document entry, so the two cannot drift.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Need, authorize};
use super::error::ApiError;
use super::{AppState, parse_body};
use crate::ops::{self, Page, PageAsk, catalog, forecasts, pipelines, runs};
use crate::scheduler::trigger::GivenParams;
use crate::store::RunStatus;

type ApiResult<T> = Result<T, ApiError>;
type Shared = State<Arc<AppState>>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "recflow operations API",
        description = "Pipelines, runs, versions, campaigns and forecasts: what the recflow CLI does, over HTTP. Authenticate with `Authorization: Bearer TOKEN` (RECFLOW_READ_TOKENS read, RECFLOW_API_TOKENS act) or a SigV4-signed request (RECFLOW_ACCESS_KEYS). Errors are `{\"__type\": CODE, \"message\": TEXT}`.",
        version = "1"
    ),
    tags(
        (name = "pipelines"), (name = "runs"), (name = "catalog"),
        (name = "campaigns"), (name = "forecasts"), (name = "serving")
    )
)]
struct ApiDoc;

/// The API's routes, each registered with its entry in the document.
fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_pipelines))
        .routes(routes!(show_pipeline))
        .routes(routes!(create_run))
        .routes(routes!(pause_pipeline))
        .routes(routes!(unpause_pipeline))
        .routes(routes!(backfill))
        .routes(routes!(grid))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(cancel_run))
        .routes(routes!(retry_run))
        .routes(routes!(step_log))
        .routes(routes!(step_log_stream))
        .routes(routes!(list_datasets))
        .routes(routes!(dataset_version))
        .routes(routes!(rejected_rows))
        .routes(routes!(list_solutions))
        .routes(routes!(solution_version))
        .routes(routes!(list_campaigns))
        .routes(routes!(show_campaign))
        .routes(routes!(update_campaign))
        .routes(routes!(rollback_campaign))
        .routes(routes!(prune))
        .routes(routes!(list_predictors))
        .routes(routes!(predictor_metrics))
        .routes(routes!(predictor_items))
        .routes(routes!(item_plot))
        .routes(routes!(live_metrics))
}

/// The API, and its OpenAPI document at `/api/v1/openapi.json`.
pub fn router(state: Arc<AppState>) -> axum::Router {
    let (router, doc) = routes().split_for_parts();
    router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || async move { Json(doc) }),
        )
        .with_state(state)
}

/// The OpenAPI document of exactly the routes [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The error body every failure has.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[serde(rename = "__type")]
    #[schema(example = "ResourceNotFoundException")]
    pub code: String,
    pub message: String,
}

// ---- pipelines ------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/pipelines", tag = "pipelines",
    responses((status = 200, description = "Every registered pipeline, with its schedule and next run", body = Object),
              (status = 403, body = ErrorBody)))]
async fn list_pipelines(State(s): Shared, req: Request) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let list = pipelines::list(&s.env).await?;
    Ok(Json(serde_json::json!({ "pipelines": list })).into_response())
}

#[utoipa::path(get, path = "/api/v1/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses((status = 200, description = "The pipeline, its step graph and the next 5 fire times", body = Object),
              (status = 404, body = ErrorBody)))]
async fn show_pipeline(
    State(s): Shared,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    Ok(Json(pipelines::show(&s.env, &name).await?).into_response())
}

/// A run to queue.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// Parameter values by name, typed as the pipeline declares them.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The date the run is for: `2026-11-22` or RFC 3339; default now.
    #[serde(default)]
    pub logical_date: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/pipelines/{name}/runs", tag = "pipelines",
    params(("name" = String, Path)),
    request_body(content = CreateRun, description = "May be empty"),
    responses((status = 201, description = "The queued run", body = Object),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_run(
    State(s): Shared,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (caller, body) = authorize(&s, req, Need::Admin).await?;
    let request: CreateRun = json_or_default(&body)?;
    let run = runs::trigger(
        &s.env,
        &name,
        GivenParams::Json(request.params),
        request.logical_date.as_deref(),
        caller.trigger(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "run": run }))).into_response())
}

#[utoipa::path(post, path = "/api/v1/pipelines/{name}/pause", tag = "pipelines",
    params(("name" = String, Path)),
    responses((status = 200, description = "The pipeline; its schedule no longer fires", body = Object),
              (status = 404, body = ErrorBody)))]
async fn pause_pipeline(
    State(s): Shared,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Admin).await?;
    let p = pipelines::set_paused(&s.env, &name, true).await?;
    Ok(Json(serde_json::json!({ "pipeline": p })).into_response())
}

#[utoipa::path(post, path = "/api/v1/pipelines/{name}/unpause", tag = "pipelines",
    params(("name" = String, Path)),
    responses((status = 200, description = "The pipeline; its schedule fires again", body = Object),
              (status = 404, body = ErrorBody)))]
async fn unpause_pipeline(
    State(s): Shared,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Admin).await?;
    let p = pipelines::set_paused(&s.env, &name, false).await?;
    Ok(Json(serde_json::json!({ "pipeline": p })).into_response())
}

/// Scheduled times to run again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    /// The first scheduled time included (a date or RFC 3339).
    pub from: String,
    /// The end of the range, excluded.
    pub to: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
}

#[utoipa::path(post, path = "/api/v1/pipelines/{name}/backfill", tag = "pipelines",
    params(("name" = String, Path)),
    request_body = Backfill,
    responses((status = 201, description = "One queued run per scheduled time in [from, to)", body = Object),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn backfill(State(s): Shared, Path(name): Path<String>, req: Request) -> ApiResult<Response> {
    let (_, body) = authorize(&s, req, Need::Admin).await?;
    let b: Backfill = parse_body(&body)?;
    let queued = pipelines::backfill(&s.env, &name, &b.from, &b.to, b.params).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "runs": queued })),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct GridQuery {
    /// How many recent runs (default 25, at most 200).
    runs: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/pipelines/{name}/grid", tag = "pipelines",
    params(("name" = String, Path), GridQuery),
    responses((status = 200, description = "Recent runs × steps with each step's status", body = Object)))]
async fn grid(
    State(s): Shared,
    Path(name): Path<String>,
    Query(q): Query<GridQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let n = ops::page_size(q.runs, 25);
    Ok(Json(runs::grid(&s.env, &name, n).await?).into_response())
}

// ---- runs -----------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
pub struct RunsQuery {
    /// Runs of this pipeline only.
    pipeline: Option<String>,
    /// Comma-separated statuses: queued, running, succeeded, failed, cancelled, skipped.
    status: Option<String>,
    /// Runs created at or after: an age (`2d`, `12h`), a date or RFC 3339.
    since: Option<String>,
    /// Runs created before: an age (`2d`, `12h`), a date or RFC 3339.
    until: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 25).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, description = "A page of runs, newest first, and the next page's cursor", body = Object),
              (status = 400, body = ErrorBody)))]
async fn list_runs(
    State(s): Shared,
    Query(q): Query<RunsQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let statuses = q
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<RunStatus>()
                .map_err(|_| ApiError::invalid(format!("status: unknown run status {s:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let now = chrono::Utc::now();
    let time = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| runs::parse_time(t, now))
            .transpose()
            .map_err(|e| ApiError::invalid(format!("{name}: {e}")))
    };
    let page = runs::list(
        &s.env,
        &runs::RunFilter {
            pipeline: q.pipeline,
            statuses,
            since: time("since", &q.since)?,
            until: time("until", &q.until)?,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(page).into_response())
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The run and its step attempts (`steps`)", body = Object),
              (status = 404, body = ErrorBody)))]
async fn get_run(State(s): Shared, Path(id): Path<i64>, req: Request) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let d = runs::show(&s.env, id).await?;
    let steps: Vec<_> = d
        .attempts
        .iter()
        .map(|a| {
            serde_json::json!({
                "step": a.step_id, "type": a.step_type, "attempt": a.attempt, "status": a.status,
                "queued_at": a.queued_at, "started_at": a.started_at, "finished_at": a.finished_at,
                "summary": a.summary, "outputs": a.outputs, "error": a.error, "worker": a.worker,
            })
        })
        .collect();
    Ok(
        Json(serde_json::json!({ "run": d.run, "steps": steps, "sla_misses": d.sla_misses }))
            .into_response(),
    )
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The run, cancel requested", body = Object),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_run(State(s): Shared, Path(id): Path<i64>, req: Request) -> ApiResult<Response> {
    authorize(&s, req, Need::Admin).await?;
    let run = runs::cancel(&s.env, id).await?;
    Ok(Json(serde_json::json!({ "run": run })).into_response())
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/retry", tag = "runs",
    params(("id" = i64, Path)),
    responses((status = 200, description = "The reopened run; its failed steps are queued again", body = Object),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry_run(State(s): Shared, Path(id): Path<i64>, req: Request) -> ApiResult<Response> {
    authorize(&s, req, Need::Admin).await?;
    let run = runs::retry(&s.env, id).await?;
    Ok(Json(serde_json::json!({ "run": run })).into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct AttemptQuery {
    /// The attempt number (default the latest).
    attempt: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/steps/{step}/log", tag = "runs",
    params(("id" = i64, Path), ("step" = String, Path), AttemptQuery),
    responses((status = 200, description = "The attempt, with its log so far", body = Object),
              (status = 404, body = ErrorBody)))]
async fn step_log(
    State(s): Shared,
    Path((id, step)): Path<(i64, String)>,
    Query(q): Query<AttemptQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    Ok(Json(runs::attempt(&s.env, id, &step, q.attempt).await?).into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct TailQuery {
    /// The attempt number (default the latest).
    attempt: Option<i64>,
    /// Start after this many bytes of the log (what the caller has already).
    from: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/steps/{step}/log/stream", tag = "runs",
    params(("id" = i64, Path), ("step" = String, Path), TailQuery),
    responses((status = 200, description = "Server-sent events: `log` events carry new log text as the attempt writes it; one `end` event carries its final status", content_type = "text/event-stream")))]
async fn step_log_stream(
    State(s): Shared,
    Path((id, step)): Path<(i64, String)>,
    Query(q): Query<TailQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    // Fails with 404 now, rather than inside the stream, if there is none.
    let first = runs::attempt(&s.env, id, &step, q.attempt).await?;
    let from = q.from.unwrap_or(0).min(first.log.len());
    Ok(Sse::new(log_tail(s.clone(), id, step, first.attempt, from))
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

fn log_tail(
    state: Arc<AppState>,
    run: i64,
    step: String,
    attempt: i64,
    from: usize,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(Some(from), move |sent| {
        let (state, step) = (state.clone(), step.clone());
        async move {
            let event = match runs::tail_log(&state.env, run, &step, attempt, sent?).await {
                Ok(runs::LogTail::Text(text, sent)) => {
                    return Some((Ok(Event::default().event("log").data(text)), Some(sent)));
                }
                Ok(runs::LogTail::End(status)) => status.to_string(),
                Err(e) => e.to_string(),
            };
            Some((Ok(Event::default().event("end").data(event)), None))
        }
    })
}

// ---- catalog --------------------------------------------------------------

fn ask(cursor: Option<String>, limit: Option<i64>) -> PageAsk {
    PageAsk { cursor, limit }
}

/// A page of versions: `{"versions": [...], "next_cursor": ...}`.
fn versions_json<T: serde::Serialize>(page: Page<T>) -> Response {
    Json(serde_json::json!({ "versions": page.items, "next_cursor": page.next_cursor }))
        .into_response()
}

#[derive(Deserialize, IntoParams)]
pub struct DatasetsQuery {
    /// One dataset, `GROUP/DATASET`.
    dataset: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/datasets", tag = "catalog", params(DatasetsQuery),
    responses((status = 200, description = "Dataset versions, newest first, with their manifests (a page, by owner, and the next page's cursor)", body = Object)))]
async fn list_datasets(
    State(s): Shared,
    Query(q): Query<DatasetsQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let page =
        catalog::dataset_versions(&s.env, q.dataset.as_deref(), &ask(q.cursor, q.limit)).await?;
    Ok(versions_json(page))
}

#[utoipa::path(get, path = "/api/v1/datasets/{group}/{dataset}/versions/{version}", tag = "catalog",
    params(("group" = String, Path), ("dataset" = String, Path), ("version" = i64, Path)),
    responses((status = 200, description = "The version and its manifest", body = Object),
              (status = 404, body = ErrorBody)))]
async fn dataset_version(
    State(s): Shared,
    Path((group, dataset, version)): Path<(String, String, i64)>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let v = catalog::dataset_version(&s.env, &format!("{group}/{dataset}"), Some(version)).await?;
    Ok(Json(v).into_response())
}

#[utoipa::path(get, path = "/api/v1/datasets/{group}/{dataset}/versions/{version}/rejected", tag = "catalog",
    params(("group" = String, Path), ("dataset" = String, Path), ("version" = i64, Path)),
    responses((status = 200, description = "The rejected-rows report", content_type = "text/csv"),
              (status = 404, body = ErrorBody)))]
async fn rejected_rows(
    State(s): Shared,
    Path((group, dataset, version)): Path<(String, String, i64)>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let name = format!("{group}/{dataset}");
    let csv = catalog::rejected_rows(&s.env, &name, version).await?;
    let file = format!("attachment; filename=\"{group}-{dataset}-v{version}-rejected.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, file),
        ],
        csv,
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct SolutionsQuery {
    /// One solution's versions.
    solution: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/solutions", tag = "catalog", params(SolutionsQuery),
    responses((status = 200, description = "Solution versions, newest first, with metrics and tuning trials (a page, by owner, and the next page's cursor)", body = Object)))]
async fn list_solutions(
    State(s): Shared,
    Query(q): Query<SolutionsQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let page =
        catalog::solution_versions(&s.env, q.solution.as_deref(), &ask(q.cursor, q.limit)).await?;
    Ok(versions_json(page))
}

#[utoipa::path(get, path = "/api/v1/solutions/{name}/versions/{version}", tag = "catalog",
    params(("name" = String, Path), ("version" = i64, Path)),
    responses((status = 200, description = "An active version's manifest: recipe, settings, data, metrics, HPO trials", body = Object),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn solution_version(
    State(s): Shared,
    Path((name, version)): Path<(String, i64)>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let (record, manifest) = catalog::solution_version(&s.env, &name, Some(version)).await?;
    Ok(Json(serde_json::json!({ "version": record, "manifest": manifest })).into_response())
}

// ---- campaigns ------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    responses((status = 200, description = "Every campaign and what it serves", body = Object)))]
async fn list_campaigns(State(s): Shared, req: Request) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let list = ops::campaigns::list(&s.env).await?;
    Ok(Json(serde_json::json!({ "campaigns": list })).into_response())
}

#[utoipa::path(get, path = "/api/v1/campaigns/{name}", tag = "campaigns",
    params(("name" = String, Path)),
    responses((status = 200, description = "The campaign, its event tracker and deployment history", body = Object),
              (status = 404, body = ErrorBody)))]
async fn show_campaign(
    State(s): Shared,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    Ok(Json(ops::campaigns::show(&s.env, &name).await?).into_response())
}

/// The solution version a campaign should serve.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaign {
    pub solution_version: i64,
}

#[utoipa::path(post, path = "/api/v1/campaigns/{name}/update", tag = "campaigns",
    params(("name" = String, Path)),
    request_body = UpdateCampaign,
    responses((status = 200, description = "The campaign and the version it served before (`from`)", body = Object),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_campaign(
    State(s): Shared,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (_, body) = authorize(&s, req, Need::Admin).await?;
    let u: UpdateCampaign = parse_body(&body)?;
    Ok(Json(ops::campaigns::update(&s.env, &name, u.solution_version).await?).into_response())
}

#[utoipa::path(post, path = "/api/v1/campaigns/{name}/rollback", tag = "campaigns",
    params(("name" = String, Path)),
    responses((status = 200, description = "The campaign, back on its previous version", body = Object),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rollback_campaign(
    State(s): Shared,
    Path(name): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Admin).await?;
    Ok(Json(ops::campaigns::rollback(&s.env, &name).await?).into_response())
}

// ---- retention ------------------------------------------------------------

/// What to prune (`recflow prune`'s flags).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// A registered pipeline: only what it owns, by its `retention:` unless
    /// `keep_last` or `keep_days` are given. Absent: the whole warehouse.
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub keep_last: Option<u32>,
    #[serde(default)]
    pub keep_days: Option<u32>,
    /// List what would go and the bytes it would free; remove nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[utoipa::path(post, path = "/api/v1/prune", tag = "retention",
    request_body = PruneRequest,
    responses((status = 200, description = "What was removed (or would be, in a dry run) and the bytes freed", body = crate::retention::PruneReport),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn prune(State(s): Shared, req: Request) -> ApiResult<Response> {
    let (_, body) = authorize(&s, req, Need::Admin).await?;
    let r: PruneRequest = parse_body(&body)?;
    let ask = ops::retention::PruneAsk {
        pipeline: r.pipeline,
        keep_last: r.keep_last,
        keep_days: r.keep_days,
        dry_run: r.dry_run,
    };
    Ok(Json(ops::retention::prune(&s.env, &ask).await?).into_response())
}

// ---- forecasts ------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
pub struct PredictorsQuery {
    /// One predictor's versions.
    predictor: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/predictors", tag = "forecasts", params(PredictorsQuery),
    responses((status = 200, description = "Predictor versions, newest first, with backtest accuracy (a page, by owner, and the next page's cursor)", body = Object)))]
async fn list_predictors(
    State(s): Shared,
    Query(q): Query<PredictorsQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let page = forecasts::versions(&s.env, q.predictor.as_deref(), &ask(q.cursor, q.limit)).await?;
    Ok(versions_json(page))
}

#[derive(Deserialize, IntoParams)]
pub struct VersionQuery {
    /// The version (default the latest active one).
    version: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/predictors/{name}", tag = "forecasts",
    params(("name" = String, Path), VersionQuery),
    responses((status = 200, description = "The version's manifest: the choice and every candidate's backtests", body = Object),
              (status = 404, body = ErrorBody)))]
async fn predictor_metrics(
    State(s): Shared,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    Ok(Json(forecasts::metrics(&s.env, &name, q.version).await?).into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct ItemsQuery {
    version: Option<i64>,
    /// Items whose id contains this text (case-insensitive).
    search: Option<String>,
    /// At most this many (default 50, at most 200).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/predictors/{name}/items", tag = "forecasts",
    params(("name" = String, Path), ItemsQuery),
    responses((status = 200, description = "Items with their algorithm and backtest accuracy, worst first", body = Object)))]
async fn predictor_items(
    State(s): Shared,
    Path(name): Path<String>,
    Query(q): Query<ItemsQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let m = forecasts::metrics(&s.env, &name, q.version).await?;
    let limit = ops::page_size(q.limit, 50) as usize;
    let items = forecasts::items(&s.env, &m, q.search.as_deref().unwrap_or(""), limit).await?;
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct PlotQuery {
    version: Option<i64>,
    /// Show only the last three horizons of history before the forecast.
    zoom: Option<bool>,
    /// Or only the last this many periods.
    last: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/predictors/{name}/items/{item}/plot.svg", tag = "forecasts",
    params(("name" = String, Path), ("item" = String, Path), PlotQuery),
    responses((status = 200, description = "The item's history, forecast quantiles and backtests", content_type = "image/svg+xml"),
              (status = 404, body = ErrorBody)))]
async fn item_plot(
    State(s): Shared,
    Path((name, item)): Path<(String, String)>,
    Query(q): Query<PlotQuery>,
    req: Request,
) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let window = match (q.zoom, q.last) {
        (_, Some(n)) => forecasts::PlotWindow::Last(n),
        (Some(true), None) => forecasts::PlotWindow::Zoom,
        _ => forecasts::PlotWindow::Full,
    };
    let svg = forecasts::plot(&s.env, &name, q.version, &item, window).await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

// ---- serving --------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/metrics/live", tag = "serving",
    responses((status = 200, description = "Per campaign, per minute of the last hour: requests, errors, p50 and p99 latency (ms)", body = Object)))]
async fn live_metrics(State(s): Shared, req: Request) -> ApiResult<Response> {
    authorize(&s, req, Need::Read).await?;
    let by_campaign: BTreeMap<String, _> = s.live.snapshot();
    Ok(Json(serde_json::json!({ "campaigns": by_campaign })).into_response())
}

// ---- bodies ---------------------------------------------------------------

/// [`parse_body`], with an empty body meaning the defaults.
fn json_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_body(body)
    }
}
