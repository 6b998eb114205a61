//! Campaigns: what each serves and its deployment history, its live
//! traffic and latency over the last hour, a "try it" box that asks it as
//! the API would (with a filter, its values and item metadata columns),
//! and rollback behind a confirmation.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{self, LineChart, Series};
use super::{ActForm, Page, Shared, Viewer, csrf_field, layout, percent_encode, svg, when};
use crate::http::metrics::MinuteStats;
use crate::http::runtime;
use crate::ops::campaigns;

pub async fn campaigns(viewer: Viewer, State(s): Shared) -> Page {
    let list = campaigns::list(&s.env).await.map_err(|e| viewer.fail(e))?;
    Ok(layout(
        &viewer,
        "Campaigns",
        html! {
            h1 { "Campaigns" }
            @if list.is_empty() { p.muted { "No campaign is deployed yet: a pipeline's deploy step creates one." } }
            table.campaigns {
                tr { th { "campaign" } th { "dataset group" } th { "serves" } th { "previous" } th { "updated (UTC)" } }
                @for c in &list {
                    tr data-campaign=(c.name) {
                        td { a href=(format!("/ui/campaigns/{}", percent_encode(&c.name))) { (c.name) } }
                        td { (c.dataset_group) }
                        td { (c.solution) " v" (c.solution_version) }
                        td { (c.previous_version.map(|v| format!("v{v}")).unwrap_or_default()) }
                        td { (when(c.updated_at)) }
                    }
                }
            }
        },
    ))
}

/// The "try it" form's fields.
#[derive(Deserialize, Default)]
pub struct TryIt {
    notice: Option<String>,
    user: Option<String>,
    item: Option<String>,
    n: Option<i64>,
    filter: Option<String>,
    /// `NAME="value"` pairs, one per line or `;`-separated, in the managed
    /// service's filter value form.
    values: Option<String>,
    /// Item metadata columns, comma-separated.
    columns: Option<String>,
}

impl TryIt {
    fn asked(&self) -> bool {
        self.user.as_deref().is_some_and(|u| !u.is_empty())
            || self.item.as_deref().is_some_and(|i| !i.is_empty())
    }

    /// The GetRecommendations body these fields make.
    fn request(&self, campaign: &str) -> serde_json::Value {
        let mut r = serde_json::json!({ "campaignArn": campaign });
        let set = |r: &mut serde_json::Value, k: &str, v: serde_json::Value| {
            r[k] = v;
        };
        if let Some(u) = self.user.as_deref().filter(|u| !u.is_empty()) {
            set(&mut r, "userId", u.into());
        }
        if let Some(i) = self.item.as_deref().filter(|i| !i.is_empty()) {
            set(&mut r, "itemId", i.into());
        }
        if let Some(n) = self.n {
            set(&mut r, "numResults", n.into());
        }
        if let Some(f) = self.filter.as_deref().filter(|f| !f.is_empty()) {
            set(&mut r, "filterArn", f.into());
            let values: BTreeMap<String, String> = self
                .values
                .as_deref()
                .unwrap_or("")
                .split(['\n', ';'])
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .collect();
            if !values.is_empty() {
                set(&mut r, "filterValues", serde_json::json!(values));
            }
        }
        let columns: Vec<&str> = self
            .columns
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if !columns.is_empty() {
            set(
                &mut r,
                "metadataColumns",
                serde_json::json!({ "ITEMS": columns }),
            );
        }
        r
    }
}

pub async fn campaign(
    viewer: Viewer,
    State(s): Shared,
    Path(name): Path<String>,
    Query(q): Query<TryIt>,
) -> Page {
    let d = campaigns::show(&s.env, &name)
        .await
        .map_err(|e| viewer.fail(e))?;
    let c = &d.campaign;
    let minutes = s.live.snapshot().remove(&name).unwrap_or_default();
    let filters = s
        .env
        .store
        .group_filters(&c.dataset_group)
        .await
        .map_err(|e| viewer.fail(crate::ops::OpsError::from(e)))?;
    // The answer, exactly as the API gives it.
    let answer = if q.asked() {
        let body = q.request(&name);
        let response = runtime::try_recommendations(&s, body.to_string().as_bytes())
            .await
            .unwrap_or_else(axum::response::IntoResponse::into_response);
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        Some((body, status, json))
    } else {
        None
    };
    Ok(layout(
        &viewer,
        &name,
        html! {
            h1 { "Campaign " (name) }
            @if let Some(n) = &q.notice { p.notice { (n) } }
            p id="serves" {
                "serves " strong { (c.solution) " v" (c.solution_version) }
                @if let Some(p) = c.previous_version { " · previous v" (p) }
                " · dataset group " (c.dataset_group)
                " · event tracker " code { (d.tracking_id) }
            }
            @if viewer.can_act() && c.previous_version.is_some() {
                p { a.button.danger href=(format!("/ui/campaigns/{}/rollback", percent_encode(&name))) id="rollback" { "Roll back…" } }
            }
            h2 { "Traffic, last hour" }
            (live_charts(&minutes))
            h2 { "Try it" }
            form.row method="get" action=(format!("/ui/campaigns/{}", percent_encode(&name))) id="try-it" {
                div { label for="user" { "User id" } input type="text" id="user" name="user" value=(q.user.clone().unwrap_or_default()); }
                div { label for="item" { "or item id" } input type="text" id="item" name="item" value=(q.item.clone().unwrap_or_default()); }
                div { label for="n" { "Results" } input type="number" id="n" name="n" min="1" max="500" value=(q.n.unwrap_or(10)); }
                div { label for="filter" { "Filter" }
                    select id="filter" name="filter" {
                        option value="" { "none" }
                        @for f in &filters { option value=(f.name) selected[q.filter.as_deref() == Some(f.name.as_str())] title=(f.expression) { (f.name) } }
                    }
                }
                div { label for="values" { "Filter values" } input type="text" id="values" name="values" placeholder="GENRE=\"Comedy\"" value=(q.values.clone().unwrap_or_default()); }
                div { label for="columns" { "Item columns" } input type="text" id="columns" name="columns" placeholder="TITLE,GENRES" value=(q.columns.clone().unwrap_or_default()); }
                div { button.primary type="submit" id="ask" { "Ask" } }
            }
            @if let Some((request, status, json)) = &answer {
                (answer_view(request, *status, json))
            }
            h2 { "Deployments" }
            table.deployments {
                tr { th { "deployed (UTC)" } th { "solution" } th { "version" } th { "by" } }
                @for dep in &d.deployments {
                    tr {
                        td { (when(dep.deployed_at)) }
                        td { (dep.solution) }
                        td { "v" (dep.solution_version) }
                        td { @match dep.run_id { Some(r) => a href=(format!("/ui/runs/{r}")) { "run #" (r) }, None => "update or rollback" } }
                    }
                }
            }
        },
    ))
}

fn answer_view(request: &serde_json::Value, status: u16, json: &serde_json::Value) -> Markup {
    let items = json["itemList"].as_array().cloned().unwrap_or_default();
    let mut columns: Vec<String> = Vec::new();
    for i in &items {
        if let Some(m) = i["metadata"].as_object() {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    html! {
        div.answer id="answer" data-status=(status) {
            @if status == 200 {
                table.items {
                    tr { th.num { "rank" } th { "item" } th.num { "score" } @for c in &columns { th { (c) } } }
                    @for (rank, i) in items.iter().enumerate() {
                        tr {
                            td.num { (rank + 1) }
                            td.item { (i["itemId"].as_str().unwrap_or("")) }
                            td.num { (i["score"].as_f64().map(|s| format!("{s:.6}")).unwrap_or_default()) }
                            @for c in &columns { td { (i["metadata"][c].as_str().unwrap_or("")) } }
                        }
                    }
                }
            } @else {
                p.error { "HTTP " (status) ": " (json["message"].as_str().unwrap_or("")) }
            }
            details {
                summary { "Request and response JSON" }
                pre.json { "POST /recommendations\n" (serde_json::to_string_pretty(request).unwrap_or_default()) }
                pre.json.response { (serde_json::to_string_pretty(json).unwrap_or_default()) }
            }
        }
    }
}

/// Requests, latency and errors, minute by minute over the last hour.
fn live_charts(minutes: &[MinuteStats]) -> Markup {
    let x = |m: &MinuteStats| m.minute.timestamp() as f64 / 60.0;
    let labels: Vec<(f64, String)> = minutes
        .iter()
        .map(|m| (x(m), m.minute.format("%H:%M").to_string()))
        .collect();
    let series = |name: &str, f: &dyn Fn(&MinuteStats) -> Option<f64>| Series {
        name: name.to_string(),
        points: minutes.iter().filter_map(|m| Some((x(m), f(m)?))).collect(),
    };
    let chart = |title: &str, unit: &str, series: Vec<Series>| {
        svg(charts::line_chart(&LineChart {
            title: title.to_string(),
            series,
            x_labels: labels.clone(),
            y_unit: Some(unit.to_string()),
            width: 420,
            height: 220,
        }))
    };
    html! {
        div.cards.live-charts {
            div.card { (chart("Requests per minute", "requests", vec![series("requests", &|m| Some(m.requests as f64))])) }
            div.card { (chart("Latency", "ms", vec![series("p50", &|m| m.p50_ms), series("p99", &|m| m.p99_ms)])) }
            div.card { (chart("Errors per minute", "errors", vec![series("errors", &|m| Some(m.errors as f64))])) }
        }
    }
}

pub async fn rollback_confirm(viewer: Viewer, State(s): Shared, Path(name): Path<String>) -> Page {
    let d = campaigns::show(&s.env, &name)
        .await
        .map_err(|e| viewer.fail(e))?;
    let c = &d.campaign;
    Ok(layout(
        &viewer,
        &format!("Roll back {name}"),
        html! {
            h1 { "Roll back " (name) "?" }
            @match c.previous_version {
                Some(p) => {
                    p { "Campaign " strong { (name) } " serves " (c.solution) " v" (c.solution_version) ". Rolling back points it at " strong { "v" (p) } "; a running server swaps it in within a second." }
                    @if viewer.can_act() {
                        form method="post" action=(format!("/ui/campaigns/{}/rollback", percent_encode(&name))) {
                            (csrf_field(&viewer))
                            button.danger type="submit" id="confirm-rollback" { "Roll back to v" (p) }
                            " "
                            a href=(format!("/ui/campaigns/{}", percent_encode(&name))) { "Cancel" }
                        }
                    } @else {
                        p.error { "A read-only session cannot roll back." }
                    }
                }
                None => p { "There is no previous version to roll back to." }
            }
        },
    ))
}

pub async fn rollback(
    viewer: Viewer,
    State(s): Shared,
    Path(name): Path<String>,
    axum::Form(f): axum::Form<ActForm>,
) -> Page {
    viewer.may_act(&f.csrf)?;
    let moved = campaigns::rollback(&s.env, &name)
        .await
        .map_err(|e| viewer.fail(e))?;
    let notice = format!(
        "rolled back to {} v{} (was v{})",
        moved.campaign.solution, moved.campaign.solution_version, moved.from
    );
    let to = format!(
        "/ui/campaigns/{}?notice={}",
        percent_encode(&name),
        percent_encode(&notice)
    );
    Ok(Redirect::to(&to).into_response())
}
