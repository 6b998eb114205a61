//! Forecasts: predictor versions, a version's backtest accuracy per
//! algorithm, an item search, and an item's plot (history, the median and
//! the bands of the quantiles the predictor produced, backtests).

use axum::extract::{Path, Query, State};
use maud::html;
use serde::Deserialize;

use super::{Page, Shared, Viewer, badge, layout, percent_encode, svg, when};
use crate::forecast::predictor::Metrics;
use crate::ops::{PageAsk, forecasts};

fn metric(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

pub async fn forecasts(viewer: Viewer, State(s): Shared) -> Page {
    let versions = forecasts::versions(&s.env, None, &PageAsk::largest())
        .await
        .map_err(|e| viewer.fail(e))?
        .items;
    Ok(layout(
        &viewer,
        "Forecasts",
        html! {
            h1 { "Predictors" }
            @if versions.is_empty() { p.muted { "No predictor has been trained yet: a pipeline's forecast_train step makes one." } }
            table.predictors {
                tr { th { "predictor" } th { "version" } th { "status" } th { "chosen" } th.num { "items" } th.num { "avg wQL" } th.num { "WAPE" } th.num { "MASE" } th { "created (UTC)" } }
                @for v in &versions {
                    @let m = v.manifest.as_ref();
                    tr data-predictor=(v.predictor) {
                        td { a href=(format!("/ui/forecasts/{}?version={}", percent_encode(&v.predictor), v.version)) { (v.predictor) } }
                        td { "v" (v.version) }
                        td { (badge(v.status.as_str())) }
                        td { (m.map(|m| m.chosen.clone()).unwrap_or_default()) }
                        td.num { (m.map(|m| m.items.to_string()).unwrap_or_default()) }
                        td.num { (metric(m.and_then(|m| m.metrics.average_wql))) }
                        td.num { (metric(m.and_then(|m| m.metrics.wape))) }
                        td.num { (metric(m.and_then(|m| m.metrics.mase))) }
                        td { (when(v.created_at)) }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub struct PredictorQuery {
    version: Option<i64>,
    /// Items whose id contains this.
    q: Option<String>,
    /// The item to plot.
    item: Option<String>,
    /// Zoom the plot to the horizon and the history just before it.
    zoom: Option<bool>,
}

pub async fn predictor(
    viewer: Viewer,
    State(s): Shared,
    Path(name): Path<String>,
    Query(q): Query<PredictorQuery>,
) -> Page {
    let m = forecasts::metrics(&s.env, &name, q.version)
        .await
        .map_err(|e| viewer.fail(e))?;
    let search = q.q.clone().unwrap_or_default();
    let items = forecasts::items(&s.env, &m, &search, 50)
        .await
        .map_err(|e| viewer.fail(e))?;
    let item = q
        .item
        .clone()
        .or_else(|| items.first().map(|i| i.item_id.clone()));
    let zoomed = q.zoom == Some(true);
    let window = if zoomed {
        forecasts::PlotWindow::Zoom
    } else {
        forecasts::PlotWindow::Full
    };
    let plot = match &item {
        Some(i) => Some(
            forecasts::plot(&s.env, &name, Some(m.version), i, window)
                .await
                .map_err(|e| viewer.fail(e))?,
        ),
        None => None,
    };
    let row = |x: &Metrics| -> Vec<String> {
        let mut r: Vec<String> = x.wql.iter().map(|l| metric(l.loss)).collect();
        r.extend([x.average_wql, x.wape, x.rmse, x.mape, x.mase].map(metric));
        r
    };
    let base = format!(
        "/ui/forecasts/{}?version={}",
        percent_encode(&name),
        m.version
    );
    Ok(layout(
        &viewer,
        &name,
        html! {
            h1 { "Predictor " (name) " v" (m.version) }
            p.muted {
                (m.algorithm) " · chosen " strong { (m.chosen) } " · horizon " (m.horizon) " " (m.series.frequency.name()) " periods · "
                (m.items) " items · " (m.backtest_windows) " backtest window(s) · created " (when(m.created_at))
            }
            h2 { "Backtest accuracy" }
            table.backtests {
                tr {
                    th { "algorithm" }
                    @for q in &m.quantiles { th.num { "wQL[" (q) "]" } }
                    th.num { "avg wQL" } th.num { "WAPE" } th.num { "RMSE" } th.num { "MAPE" } th.num { "MASE" } th.num title="series too short for the algorithm, forecast by seasonal_naive in the backtest" { "fell back" } th.num { "seconds" }
                }
                tr.chosen {
                    td { strong { "chosen (" (m.chosen) ")" } }
                    @for cell in row(&m.metrics) { td.num { (cell) } }
                    td {}
                    td {}
                }
                @for c in &m.candidates {
                    tr data-algorithm=(c.algorithm) {
                        td { (c.algorithm) }
                        @for cell in row(&c.metrics) { td.num { (cell) } }
                        td.num { (c.fallback_series) }
                        td.num { (format!("{:.2}", c.seconds)) }
                    }
                }
            }
            h2 { "Items" }
            form.row method="get" action=(format!("/ui/forecasts/{}", percent_encode(&name))) id="item-search" {
                input type="hidden" name="version" value=(m.version);
                div { label for="q" { "Item id contains" } input type="text" id="q" name="q" value=(search); }
                div { button type="submit" { "Search" } }
            }
            div.row {
                table.items {
                    tr { th { "item" } th { "algorithm" } th.num { "avg wQL" } }
                    @for i in &items {
                        tr {
                            td { a.item href=(format!("{base}&q={}&item={}", percent_encode(&search), percent_encode(&i.item_id))) { (i.item_id) } }
                            td { (i.algorithm) }
                            td.num { (format!("{:.4}", i.average_wql)) }
                        }
                    }
                }
                @if let (Some(i), Some(p)) = (&item, plot) {
                    div.plot id="plot" data-item=(i) data-zoom=(zoomed) {
                        p {
                            @let here = format!("{base}&q={}&item={}", percent_encode(&search), percent_encode(i));
                            @if zoomed { a id="full" href=(here) { "Full history" } }
                            @else { a id="zoom" href=(format!("{here}&zoom=true")) { "Zoom to the horizon" } }
                        }
                        (svg(p))
                    }
                }
            }
        },
    ))
}
