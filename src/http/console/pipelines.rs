//! Pipelines and runs: the pipelines with a grid of their recent runs, one
//! pipeline's step graph and schedule, the trigger form built from its
//! typed parameters, the run history, a run's graph, timeline and
//! attempts, and a step's log (followed live while it runs).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{self, DagNode, GanttBar};
use super::{
    ActForm, Page, Shared, Viewer, action_button, badge, csrf_field, layout, percent_encode, svg,
    when,
};
use crate::http::error::ApiError;
use crate::ops::OpsError;
use crate::ops::pipelines::{self, PipelineSummary};
use crate::ops::runs::{self, Grid, RunFilter};
use crate::pipeline::orchestration::ParamType;
use crate::scheduler::trigger::GivenParams;
use crate::store::{AttemptRecord, RunRecord, RunStatus, StepStatus};

/// Runs a grid shows.
const GRID_RUNS: i64 = 25;

#[derive(Deserialize)]
pub struct Notice {
    notice: Option<String>,
}

fn notice(n: &Option<String>) -> Markup {
    html! { @if let Some(n) = n { p.notice { (n) } } }
}

pub async fn index(viewer: Viewer, State(s): Shared, Query(q): Query<Notice>) -> Page {
    let list = pipelines::list(&s.env).await.map_err(|e| viewer.fail(e))?;
    let mut grids = Vec::new();
    for p in &list {
        grids.push(
            runs::grid(&s.env, &p.name, GRID_RUNS)
                .await
                .map_err(|e| viewer.fail(e))?,
        );
    }
    Ok(layout(
        &viewer,
        "Pipelines",
        html! {
            h1 { "Pipelines" }
            (notice(&q.notice))
            @if list.is_empty() {
                p.muted { "No pipeline is registered yet: run one with " code { "recflow run FILE" } " or start " code { "recflow schedule DIR" } "." }
            }
            @for (p, grid) in list.iter().zip(&grids) {
                section.card.pipeline id=(format!("pipeline-{}", p.name)) {
                    h2 { a href=(format!("/ui/pipelines/{}", p.name)) { (p.name) } }
                    (summary_line(&viewer, p))
                    (grid_table(grid))
                }
            }
        },
    ))
}

fn summary_line(viewer: &Viewer, p: &PipelineSummary) -> Markup {
    html! {
        p {
            @if let Some(d) = &p.description { span { (d) } br; }
            @if !p.dataset_group.is_empty() {
                span.muted { "dataset group " (p.dataset_group) }
                " · "
            }
            @match &p.schedule {
                Some(s) => span { "schedule " code { (s) } " " (p.timezone) }
                None => span.muted { "no schedule" }
            }
            " · "
            @if p.paused {
                span.badge.paused data-status="paused" { "paused" }
            } @else if let Some(next) = p.next_run_at {
                span { "next run " (when(next)) " UTC" }
            }
        }
        p {
            a href=(format!("/ui/pipelines/{}/trigger", p.name)) class="trigger" { "Trigger…" }
            " "
            @if p.paused {
                (action_button(viewer, &format!("/ui/pipelines/{}/unpause", p.name), "Unpause", ""))
            } @else if p.schedule.is_some() {
                (action_button(viewer, &format!("/ui/pipelines/{}/pause", p.name), "Pause", ""))
            }
        }
    }
}

/// Airflow's grid: steps as rows, recent runs as columns (oldest left),
/// each cell the step's status in that run.
fn grid_table(grid: &Grid) -> Markup {
    let mut runs: Vec<_> = grid.runs.iter().collect();
    runs.reverse();
    html! {
        @if runs.is_empty() {
            p.muted { "No runs yet." }
        } @else {
            div.scroll {
                table.grid {
                    tr {
                        th {}
                        @for r in &runs {
                            th.run title=(format!("run {} · {} · {}", r.run.id, r.run.status, when(r.run.created_at))) {
                                a href=(format!("/ui/runs/{}", r.run.id)) { "#" (r.run.id) }
                            }
                        }
                    }
                    tr {
                        th { "run" }
                        @for r in &runs {
                            td.cell {
                                a.sq href=(format!("/ui/runs/{}", r.run.id))
                                    style=(format!("background:{}", charts::status_colour(r.run.status.as_str())))
                                    data-run=(r.run.id) data-status=(r.run.status.as_str())
                                    title=(format!("run {}: {}", r.run.id, r.run.status)) {}
                            }
                        }
                    }
                    @for step in &grid.steps {
                        tr {
                            th { (step) }
                            @for r in &runs {
                                td.cell {
                                    @match r.steps.get(step) {
                                        Some(st) => a.sq href=(format!("/ui/runs/{}/steps/{}", r.run.id, percent_encode(step)))
                                            style=(format!("background:{}", charts::status_colour(st.as_str())))
                                            data-status=(st.as_str())
                                            title=(format!("{step} in run {}: {st}", r.run.id)) {},
                                        None => span.sq {},
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn pipeline(
    viewer: Viewer,
    State(s): Shared,
    Path(name): Path<String>,
    Query(q): Query<Notice>,
) -> Page {
    let d = pipelines::show(&s.env, &name)
        .await
        .map_err(|e| viewer.fail(e))?;
    let grid = runs::grid(&s.env, &name, GRID_RUNS)
        .await
        .map_err(|e| viewer.fail(e))?;
    // The graph in the colours of the latest run.
    let latest = grid.runs.first();
    let nodes: Vec<DagNode> = d
        .steps
        .iter()
        .map(|st| DagNode {
            id: st.id.clone(),
            label: st.step_type.to_string(),
            status: latest
                .and_then(|r| r.steps.get(&st.id))
                .map(|s| s.to_string()),
            href: latest.map(|r| format!("/ui/runs/{}/steps/{}", r.run.id, percent_encode(&st.id))),
        })
        .collect();
    let edges: Vec<(String, String)> = d
        .steps
        .iter()
        .flat_map(|st| st.depends_on.iter().map(|dep| (dep.clone(), st.id.clone())))
        .collect();
    Ok(layout(
        &viewer,
        &name,
        html! {
            h1 { "Pipeline " (name) }
            (notice(&q.notice))
            (summary_line(&viewer, &d.summary))
            h2 { "Steps" }
            div.scroll.graph { (svg(charts::dag(&nodes, &edges))) }
            @if !d.next_runs.is_empty() {
                h2 { "Next scheduled runs (UTC)" }
                ul { @for t in &d.next_runs { li { (when(*t)) } } }
            }
            h2 { "Recent runs" }
            (grid_table(&grid))
            p { a href=(format!("/ui/runs?pipeline={}", percent_encode(&name))) { "All runs of " (name) } }
        },
    ))
}

pub async fn trigger_form(viewer: Viewer, State(s): Shared, Path(name): Path<String>) -> Page {
    let d = pipelines::show(&s.env, &name)
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(layout(
        &viewer,
        &format!("Trigger {name}"),
        html! {
            h1 { "Trigger " (name) }
            @if !viewer.can_act() {
                p.error { "A read-only session cannot trigger runs." }
            }
            form method="post" action=(format!("/ui/pipelines/{name}/trigger")) id="trigger-form" {
                (csrf_field(&viewer))
                @for (param, spec) in &d.summary.params {
                    @let field = format!("param.{param}");
                    @let default = spec.default.as_ref().map(json_text).unwrap_or_default();
                    label for=(field) { (param) " " span.muted { "(" (type_name(spec.ty)) ")" } }
                    @match spec.ty {
                        ParamType::Boolean => select id=(field) name=(field) {
                            option value="" { "default (" (default) ")" }
                            option value="true" { "true" }
                            option value="false" { "false" }
                        },
                        ParamType::Integer => input type="number" step="1" id=(field) name=(field) placeholder=(default);,
                        ParamType::Number => input type="number" step="any" id=(field) name=(field) placeholder=(default);,
                        ParamType::String | ParamType::List => input type="text" id=(field) name=(field) placeholder=(default);,
                    }
                    @if let Some(help) = &spec.description { div.field-help { (help) } }
                }
                label for="logical_date" { "Logical date " span.muted { "(optional: 2026-11-22 or RFC 3339; default now)" } }
                input type="text" id="logical_date" name="logical_date";
                p { button.primary type="submit" id="trigger" disabled[!viewer.can_act()] { "Trigger run" } }
            }
        },
    ))
}

fn type_name(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
        ParamType::List => "list: JSON or comma-separated",
    }
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn trigger(
    viewer: Viewer,
    State(s): Shared,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<BTreeMap<String, String>>,
) -> Page {
    viewer.may_act(form.get("csrf").map_or("", String::as_str))?;
    let d = pipelines::show(&s.env, &name)
        .await
        .map_err(|e| viewer.fail(e))?;
    // Empty fields keep the defaults; the others are typed as declared.
    let mut params = serde_json::Map::new();
    for (param, spec) in &d.summary.params {
        let Some(text) = form
            .get(&format!("param.{param}"))
            .filter(|t| !t.trim().is_empty())
        else {
            continue;
        };
        let text = text.trim();
        let value = match spec.ty {
            ParamType::String => Ok(serde_json::Value::String(text.to_string())),
            _ => serde_json::from_str::<serde_json::Value>(text).map_err(|_| {
                OpsError::Invalid(format!("{param}: {text:?} is not a {}", type_name(spec.ty)))
            }),
        }
        .map_err(|e| viewer.fail(e))?;
        params.insert(param.clone(), value);
    }
    let logical = form
        .get("logical_date")
        .map(|d| d.trim())
        .filter(|d| !d.is_empty());
    let run = runs::trigger(&s.env, &name, GivenParams::Json(params), logical, "console")
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to(&format!("/ui/runs/{}", run.id)).into_response())
}

pub async fn pause(viewer: Viewer, s: Shared, p: Path<String>, f: axum::Form<ActForm>) -> Page {
    set_paused(viewer, s, p, f, true).await
}

pub async fn unpause(viewer: Viewer, s: Shared, p: Path<String>, f: axum::Form<ActForm>) -> Page {
    set_paused(viewer, s, p, f, false).await
}

async fn set_paused(
    viewer: Viewer,
    State(s): Shared,
    Path(name): Path<String>,
    axum::Form(f): axum::Form<ActForm>,
    paused: bool,
) -> Page {
    viewer.may_act(&f.csrf)?;
    pipelines::set_paused(&s.env, &name, paused)
        .await
        .map_err(|e| viewer.fail(e))?;
    let what = if paused { "paused" } else { "unpaused" };
    let to = format!(
        "/ui/pipelines/{}?notice={}",
        percent_encode(&name),
        percent_encode(&format!("{name} {what}"))
    );
    Ok(Redirect::to(&to).into_response())
}

#[derive(Deserialize)]
pub struct RunsQuery {
    pipeline: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

pub async fn runs(viewer: Viewer, State(s): Shared, Query(q): Query<RunsQuery>) -> Page {
    let pipeline = q.pipeline.clone().filter(|p| !p.is_empty());
    let status = q.status.clone().filter(|p| !p.is_empty());
    let statuses =
        match &status {
            Some(st) => vec![st.parse::<RunStatus>().map_err(|_| {
                viewer.fail(ApiError::invalid(format!("unknown run status {st:?}")))
            })?],
            None => Vec::new(),
        };
    let page = runs::list(
        &s.env,
        &RunFilter {
            pipeline: pipeline.clone(),
            statuses,
            cursor: q.cursor.clone(),
            limit: Some(50),
            ..RunFilter::default()
        },
    )
    .await
    .map_err(|e| viewer.fail(e))?;
    let names = pipelines::list(&s.env).await.map_err(|e| viewer.fail(e))?;
    let older = page.next_cursor.as_ref().map(|next| {
        let mut link = format!("/ui/runs?cursor={}", percent_encode(next));
        if let Some(p) = &pipeline {
            link.push_str(&format!("&pipeline={}", percent_encode(p)));
        }
        if let Some(st) = &status {
            link.push_str(&format!("&status={}", percent_encode(st)));
        }
        link
    });
    let statuses = [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "skipped",
    ];
    Ok(layout(
        &viewer,
        "Runs",
        html! {
            h1 { "Runs" }
            form.row method="get" action="/ui/runs" {
                div { label for="pipeline" { "Pipeline" }
                    select id="pipeline" name="pipeline" {
                        option value="" { "all" }
                        @for p in &names { option value=(p.name) selected[pipeline.as_deref() == Some(p.name.as_str())] { (p.name) } }
                    }
                }
                div { label for="status" { "Status" }
                    select id="status" name="status" {
                        option value="" { "all" }
                        @for st in statuses { option value=(st) selected[status.as_deref() == Some(st)] { (st) } }
                    }
                }
                div { button type="submit" { "Show" } }
            }
            (runs_table(&page.items))
            @if let Some(link) = &older {
                p { a href=(link) id="older" { "Older runs →" } }
            }
        },
    ))
}

fn runs_table(runs: &[RunRecord]) -> Markup {
    html! {
        table.runs {
            tr { th { "run" } th { "pipeline" } th { "status" } th { "trigger" } th { "created (UTC)" } th.num { "seconds" } th { "error" } }
            @for r in runs {
                tr data-run=(r.id) {
                    td { a href=(format!("/ui/runs/{}", r.id)) { "#" (r.id) } }
                    td { a href=(format!("/ui/pipelines/{}", r.pipeline)) { (r.pipeline) } }
                    td { (badge(r.status.as_str())) }
                    td { (r.trigger) }
                    td { (when(r.created_at)) }
                    td.num { (seconds(r.started_at, r.finished_at)) }
                    td.error { (r.error.clone().unwrap_or_default()) }
                }
            }
        }
    }
}

fn seconds(
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    match (start, end) {
        (Some(a), Some(b)) => format!("{:.1}", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => String::new(),
    }
}

/// The latest attempt of each step, by step id.
fn latest_attempts(attempts: &[AttemptRecord]) -> BTreeMap<&str, &AttemptRecord> {
    let mut latest: BTreeMap<&str, &AttemptRecord> = BTreeMap::new();
    for a in attempts {
        let e = latest.entry(a.step_id.as_str()).or_insert(a);
        if a.attempt >= e.attempt {
            *e = a;
        }
    }
    latest
}

pub async fn run(
    viewer: Viewer,
    State(s): Shared,
    Path(id): Path<i64>,
    Query(q): Query<Notice>,
) -> Page {
    let runs::RunDetail {
        run,
        attempts,
        sla_misses,
    } = runs::show(&s.env, id).await.map_err(|e| viewer.fail(e))?;
    // The graph: the run's own pipeline text, coloured by its attempts.
    let spec = s
        .env
        .store
        .run_spec(id)
        .await
        .ok()
        .and_then(|(text, _)| crate::pipeline::parse_pipeline(&text).ok())
        .map(|(spec, _)| spec);
    let latest = latest_attempts(&attempts);
    let mapped = runs::mapped_steps(&attempts);
    // A mapped step's node: running while any instance runs or waits,
    // failed if any failed, else succeeded.
    let mapped_status = |id: &str| {
        let m = mapped.iter().find(|m| m.step_id == id)?;
        let any = |f: fn(StepStatus) -> bool| m.counts.keys().any(|s| f(*s));
        Some(if any(|s| !s.is_finished()) {
            "running"
        } else if any(|s| s == StepStatus::Failed) {
            "failed"
        } else {
            "succeeded"
        })
    };
    let (nodes, edges): (Vec<DagNode>, Vec<(String, String)>) = match &spec {
        Some(spec) => (
            spec.steps
                .iter()
                .map(|st| DagNode {
                    id: st.id().to_string(),
                    label: st.kind.type_name().to_string(),
                    status: mapped_status(st.id())
                        .map(str::to_string)
                        .or_else(|| latest.get(st.id()).map(|a| a.status.to_string())),
                    href: Some(format!("/ui/runs/{id}/steps/{}", percent_encode(st.id()))),
                })
                .collect(),
            spec.steps
                .iter()
                .flat_map(|st| {
                    st.common
                        .depends_on
                        .iter()
                        .map(|d| (d.clone(), st.id().to_string()))
                })
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let now = chrono::Utc::now();
    // A mapped step is one bar, from its first instance's start to its
    // last one's end.
    let mut bars: Vec<GanttBar> = mapped
        .iter()
        .filter_map(|m| {
            let mine = || attempts.iter().filter(|a| a.step_id == m.step_id);
            Some(GanttBar {
                label: format!("{} ×{}", m.step_id, m.instances.len()),
                start: mine().filter_map(|a| a.started_at).min()?,
                end: if mine().all(|a| a.status.is_finished()) {
                    mine().filter_map(|a| a.finished_at).max()
                } else {
                    None
                },
                status: mapped_status(&m.step_id).unwrap_or("running").to_string(),
            })
        })
        .collect();
    bars.extend(
        attempts
            .iter()
            .filter(|a| a.map_index.is_none())
            .filter_map(|a| {
                Some(GanttBar {
                    label: format!("{} #{}", a.step_id, a.attempt),
                    start: a.started_at?,
                    end: a.finished_at,
                    status: a.status.to_string(),
                })
            }),
    );
    bars.sort_by_key(|b| b.start);
    let t0 = bars.iter().map(|b| b.start).min().unwrap_or(run.created_at);
    let t1 = if run.status.is_finished() {
        bars.iter()
            .map(|b| b.end.unwrap_or(b.start))
            .chain(run.finished_at)
            .max()
            .unwrap_or(now)
    } else {
        now
    };
    let running = !run.status.is_finished();
    Ok(layout(
        &viewer,
        &format!("Run {id}"),
        html! {
            @if running { div data-refresh="2000" {} }
            h1 { "Run #" (run.id) " of " a href=(format!("/ui/pipelines/{}", run.pipeline)) { (run.pipeline) } " " span id="run-status" { (badge(run.status.as_str())) } }
            (notice(&q.notice))
            p.muted {
                "trigger " (run.trigger) " · created " (when(run.created_at))
                @if let Some(ld) = run.logical_date { " · logical date " (when(ld)) }
                @if run.params.as_object().is_some_and(|m| !m.is_empty()) { " · params " code { (run.params.to_string()) } }
                @if let Some(t) = &run.trigger_info { " · triggered by " code.trigger-info { (t.to_string()) } }
            }
            @if let Some(e) = &run.error { p.error { (e) } }
            @for m in &sla_misses {
                p.error.sla-miss data-step=(m.step_id.as_deref().unwrap_or("")) {
                    "SLA missed: "
                    @match &m.step_id { Some(st) => { "step " (st) } None => { "the run" } }
                    " went on past its SLA of " (m.sla) " (at " (when(m.missed_at)) ")"
                }
            }
            p {
                @if running {
                    (action_button(&viewer, &format!("/ui/runs/{id}/cancel"), "Cancel run", "danger"))
                }
                @if matches!(run.status, RunStatus::Failed | RunStatus::Cancelled) && run.trigger != "cli" {
                    (action_button(&viewer, &format!("/ui/runs/{id}/retry"), "Retry failed steps", "primary"))
                }
            }
            h2 { "Graph" }
            div.scroll.graph { (svg(charts::dag(&nodes, &edges))) }
            h2 { "Timeline" }
            div.scroll { (svg(charts::gantt(&bars, t0, t1.max(t0)))) }
            @for m in &mapped {
                h2 { "Mapped step " (m.step_id) " · " (m.instances.len()) " instances" }
                p.mapped-counts data-step=(m.step_id) {
                    @for (status, n) in &m.counts { (badge(status.as_str())) " " (n) " " }
                }
                details open[m.eventful().next().is_some() && m.instances.len() <= 100] {
                    summary { "Instances and their attempts" }
                    table.instances {
                        tr { th.num { "map_index" } th { "item" } th { "status" } th { "attempts" } }
                        @for i in &m.instances {
                            @let name = format!("{}[{}]", m.step_id, i.map_index);
                            tr data-instance=(name) {
                                td.num { (i.map_index) }
                                td { code { (json_text(&i.item)) } }
                                td { (badge(i.status.as_str())) }
                                td {
                                    @for (n, status) in &i.attempts {
                                        a href=(format!("/ui/runs/{id}/steps/{}?attempt={n}", percent_encode(&name))) title=(status.as_str()) { "#" (n) " " (status.as_str()) }
                                        " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Attempts" }
            table.attempts {
                tr { th { "step" } th { "type" } th.num { "attempt" } th { "status" } th { "started (UTC)" } th.num { "seconds" } th { "result" } th {} }
                @for a in attempts.iter().filter(|a| a.map_index.is_none()) {
                    tr data-step=(a.step_id) {
                        td { (a.step_id) }
                        td { (a.step_type) }
                        td.num { (a.attempt) }
                        td { (badge(a.status.as_str())) }
                        td { (a.started_at.map(when).unwrap_or_default()) }
                        td.num { (seconds(a.started_at, a.finished_at)) }
                        td {
                            @if let Some(e) = &a.error { span.error { (e) } }
                            @else { (a.summary.clone().unwrap_or_default()) }
                        }
                        td { a.log href=(format!("/ui/runs/{id}/steps/{}?attempt={}", percent_encode(&a.step_id), a.attempt)) { "log" } }
                    }
                }
            }
        },
    ))
}

pub async fn cancel(
    viewer: Viewer,
    State(s): Shared,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<ActForm>,
) -> Page {
    viewer.may_act(&f.csrf)?;
    runs::cancel(&s.env, id).await.map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to(&format!("/ui/runs/{id}?notice=cancel+requested")).into_response())
}

pub async fn retry(
    viewer: Viewer,
    State(s): Shared,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<ActForm>,
) -> Page {
    viewer.may_act(&f.csrf)?;
    runs::retry(&s.env, id).await.map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to(&format!("/ui/runs/{id}?notice=retrying+the+failed+steps")).into_response())
}

#[derive(Deserialize)]
pub struct AttemptQuery {
    attempt: Option<i64>,
}

pub async fn step_log(
    viewer: Viewer,
    State(s): Shared,
    Path((id, step)): Path<(i64, String)>,
    Query(q): Query<AttemptQuery>,
) -> Page {
    let a = runs::attempt(&s.env, id, &step, q.attempt)
        .await
        .map_err(|e| viewer.fail(e))?;
    let all = runs::show(&s.env, id).await.map_err(|e| viewer.fail(e))?;
    let tries: Vec<i64> = all
        .attempts
        .iter()
        .filter(|x| x.step_id == a.step_id && x.map_index == a.map_index)
        .map(|x| x.attempt)
        .collect();
    let running = !a.status.is_finished();
    let stream = format!(
        "/api/v1/runs/{id}/steps/{}/log/stream?attempt={}&from={}",
        percent_encode(&step),
        a.attempt,
        a.log.len()
    );
    Ok(layout(
        &viewer,
        &format!("{step} · run {id}"),
        html! {
            h1 { "Step " (step) " of " a href=(format!("/ui/runs/{id}")) { "run #" (id) } " " (badge(a.status.as_str())) }
            p.muted {
                (a.step_type) " · attempt " (a.attempt)
                @if tries.len() > 1 {
                    " · attempts: "
                    @for t in &tries {
                        a href=(format!("/ui/runs/{id}/steps/{}?attempt={t}", percent_encode(&step))) { "#" (t) } " "
                    }
                }
                @if let Some(w) = &a.worker { " · worker " (w) }
            }
            @if let Some(e) = &a.error { p.error { (e) } }
            @if let Some(sm) = &a.summary { p { (sm) } }
            @if running {
                p { "Following the log live… " span id="tail-status" {} }
                pre.log id="log" data-tail=(stream) { (a.log) }
            } @else {
                pre.log id="log" { (a.log) }
            }
        },
    ))
}
