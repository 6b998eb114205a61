//! Dataset versions (rows, rejected rows with their report, source, mode)
//! and solution versions (every offline metric charted across versions,
//! and the HPO trials or automatic choice behind each).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use maud::html;
use serde::Deserialize;

use super::charts::{self, LineChart, Series};
use super::{Page, Shared, Viewer, badge, layout, percent_encode, svg, when};
use crate::ops::{PageAsk, catalog};

/// A line's points: (version, value).
type Points = Vec<(f64, f64)>;

pub async fn datasets(viewer: Viewer, State(s): Shared) -> Page {
    let versions = catalog::dataset_versions(&s.env, None, &PageAsk::largest())
        .await
        .map_err(|e| viewer.fail(e))?
        .items;
    Ok(layout(
        &viewer,
        "Datasets",
        html! {
            h1 { "Dataset versions" }
            @if versions.is_empty() { p.muted { "No dataset has been imported yet." } }
            table.datasets {
                tr { th { "dataset" } th { "version" } th { "status" } th.num { "rows" } th.num { "rejected" } th { "mode" } th { "source" } th { "created (UTC)" } th { "run" } }
                @for v in &versions {
                    @let m = v.manifest.as_ref();
                    tr data-dataset=(v.owner) data-version=(v.version) {
                        td { (v.owner) }
                        td { "v" (v.version) }
                        td { (badge(v.status.as_str())) }
                        td.num { (m.map(|m| m.rows.to_string()).unwrap_or_default()) }
                        td.num {
                            @if let Some(m) = m {
                                @if m.rejected_rows > 0 {
                                    a.rejected href=(format!("/api/v1/datasets/{}/versions/{}/rejected", v.owner, v.version)) download { (m.rejected_rows) " (report)" }
                                } @else { "0" }
                            }
                        }
                        td { (m.map(|m| m.mode.as_str()).unwrap_or_default()) }
                        td { @if let Some(m) = m { @for src in &m.sources { div.muted { (src) } } } }
                        td { (when(v.created_at)) }
                        td { @if let Some(r) = v.run_id { a href=(format!("/ui/runs/{r}")) { "#" (r) } } }
                    }
                    @if let Some(e) = &v.error { tr { td colspan="9" { span.error { (e) } } } }
                }
            }
        },
    ))
}

pub async fn solutions(viewer: Viewer, State(s): Shared) -> Page {
    let mut versions = catalog::solution_versions(&s.env, None, &PageAsk::largest())
        .await
        .map_err(|e| viewer.fail(e))?
        .items;
    versions.reverse(); // oldest first, for the charts
    // One chart per metric; a line per solution, across its versions.
    let mut metrics: BTreeMap<&str, BTreeMap<&str, Points>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut newest = 0;
    for v in &versions {
        *counts.entry(v.owner.as_str()).or_default() += 1;
        let Some(m) = &v.manifest else { continue };
        newest = newest.max(v.version);
        for (key, value) in &m.metrics {
            metrics
                .entry(key.as_str())
                .or_default()
                .entry(v.owner.as_str())
                .or_default()
                .push((v.version as f64, *value));
        }
    }
    let labels: Vec<(f64, String)> = (1..=newest).map(|n| (n as f64, format!("v{n}"))).collect();
    Ok(layout(
        &viewer,
        "Solutions",
        html! {
            h1 { "Solutions" }
            @if versions.is_empty() { p.muted { "No solution has been trained yet." } }
            ul.solutions {
                @for (name, n) in &counts {
                    li { a href=(format!("/ui/solutions/{}", percent_encode(name))) { (name) } " " span.muted { "(" (n) " versions)" } }
                }
            }
            @if !metrics.is_empty() {
                h2 { "Offline metrics across versions" }
                div.cards.metric-charts {
                    @for (key, by_solution) in &metrics {
                        div.card data-metric=(key) {
                            (svg(charts::line_chart(&LineChart {
                                title: key.to_string(),
                                series: by_solution.iter().map(|(name, points)| Series { name: name.to_string(), points: points.clone() }).collect(),
                                x_labels: labels.clone(),
                                width: 420,
                                height: 220,
                                ..LineChart::default()
                            })))
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<i64>,
}

pub async fn solution(
    viewer: Viewer,
    State(s): Shared,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Page {
    let mut versions = catalog::solution_versions(&s.env, Some(&name), &PageAsk::largest())
        .await
        .map_err(|e| viewer.fail(e))?
        .items;
    versions.reverse(); // oldest first, for the charts
    // One chart per metric, across the versions that have it.
    let mut metrics: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut labels = Vec::new();
    for v in &versions {
        let Some(m) = &v.manifest else { continue };
        labels.push((v.version as f64, format!("v{}", v.version)));
        for (key, value) in &m.metrics {
            metrics
                .entry(key.as_str())
                .or_default()
                .push((v.version as f64, *value));
        }
    }
    let shown = match q.version {
        Some(n) => versions.iter().find(|v| v.version == n),
        None => versions.iter().rev().find(|v| v.manifest.is_some()),
    };
    Ok(layout(
        &viewer,
        &name,
        html! {
            h1 { "Solution " (name) }
            h2 { "Versions" }
            table.versions {
                tr { th { "version" } th { "status" } th { "recipe" } th.num { "precision@10" } th.num { "NDCG@10" } th.num { "coverage" } th.num { "training s" } th { "created (UTC)" } }
                @for v in versions.iter().rev() {
                    @let m = v.manifest.as_ref();
                    @let metric = |k: &str| m.and_then(|m| m.metrics.get(k)).map(|x| format!("{x:.4}")).unwrap_or_default();
                    tr data-version=(v.version) {
                        td { a href=(format!("/ui/solutions/{}?version={}", percent_encode(&name), v.version)) { "v" (v.version) } }
                        td { (badge(v.status.as_str())) }
                        td { (m.map(|m| m.recipe.clone()).unwrap_or_default()) }
                        td.num { (metric("precision_at_10")) }
                        td.num { (metric("normalized_discounted_cumulative_gain_at_10")) }
                        td.num { (metric("coverage")) }
                        td.num { (m.map(|m| format!("{:.1}", m.training_seconds)).unwrap_or_default()) }
                        td { (when(v.created_at)) }
                    }
                }
            }
            h2 { "Offline metrics across versions" }
            div.cards.metric-charts {
                @for (key, points) in &metrics {
                    div.card data-metric=(key) {
                        (svg(charts::line_chart(&LineChart {
                            title: key.to_string(),
                            series: vec![Series { name: name.clone(), points: points.clone() }],
                            x_labels: labels.clone(),
                            width: 420,
                            height: 220,
                            ..LineChart::default()
                        })))
                    }
                }
            }
            @if let Some(v) = shown {
                @if let Some(m) = &v.manifest {
                    h2 { "v" (v.version) ": " (m.recipe) }
                    p.muted {
                        "trained on " (m.counts.interactions) " interactions, " (m.counts.users) " users, " (m.counts.items) " items · "
                        (m.test_users) " test users · " (format!("{:.1}", m.training_seconds)) " s"
                    }
                    p { "settings " code { (m.settings.to_string()) } }
                    @if let Some(t) = &m.tuning {
                        h2 { "Tuning trials (validation " (t.objective) ")" }
                        table.trials {
                            tr { th.num { "#" } th { "recipe" } th { "settings" } th.num { (t.objective) } th {} }
                            @for (i, trial) in t.trials.iter().enumerate() {
                                tr data-trial=(i) {
                                    td.num { (i + 1) }
                                    td { (trial.recipe) }
                                    td { code { (serde_json::to_string(&trial.params).unwrap_or_default()) } }
                                    td.num {
                                        @match trial.metrics.as_ref().and_then(|x| x.get(&t.objective)) {
                                            Some(x) => (match trial.stderr {
                                                Some(se) => format!("{x:.4} ± {se:.4}"),
                                                None => format!("{x:.4}"),
                                            }),
                                            None => span.error { (trial.error.clone().unwrap_or_default()) },
                                        }
                                    }
                                    td { @if i == t.best { strong { "chosen" } } }
                                }
                            }
                        }
                        @if let Some(d) = &t.decision { p.decision { (d) } }
                    }
                }
            }
        },
    ))
}
