//! `forecast list | metrics | plot`.

use super::ForecastCommand;
use super::print::{metric, table, when};
use crate::config::Env;
use crate::forecast::predictor::{AutoChoice, Metrics};
use crate::ops::PageAsk;
use crate::ops::forecasts::{self, PlotWindow};
use crate::outln;

pub async fn forecast(env: &Env, c: ForecastCommand) -> anyhow::Result<i32> {
    match c {
        ForecastCommand::List => {
            let versions = forecasts::versions(env, None, &PageAsk::largest())
                .await?
                .items;
            table(
                &[
                    "PREDICTOR",
                    "VERSION",
                    "STATUS",
                    "CHOSEN",
                    "ITEMS",
                    "AVG wQL",
                    "WAPE",
                    "MASE",
                    "CREATED",
                ],
                versions
                    .into_iter()
                    .map(|v| {
                        let m = v.manifest.as_ref();
                        let f = |get: fn(&Metrics) -> Option<f64>| {
                            metric(m.and_then(|m| get(&m.metrics)))
                        };
                        vec![
                            v.predictor.clone(),
                            format!("v{}", v.version),
                            v.status.to_string(),
                            m.map(|m| m.chosen.clone()).unwrap_or_default(),
                            m.map(|m| m.items.to_string()).unwrap_or_default(),
                            f(|x| x.average_wql),
                            f(|x| x.wape),
                            f(|x| x.mase),
                            when(v.created_at),
                        ]
                    })
                    .collect(),
            );
        }
        ForecastCommand::Metrics {
            predictor,
            version,
            worst,
        } => {
            let m = forecasts::metrics(env, &predictor, version).await?;
            outln!(
                "{} v{}: {} ({} choice), horizon {} {} periods, {} backtest window(s), created {}",
                m.predictor,
                m.version,
                m.algorithm,
                match m.auto_choice {
                    AutoChoice::Dataset => "dataset",
                    AutoChoice::Item => "per-item",
                },
                m.horizon,
                m.series.frequency.name(),
                m.backtest_windows,
                when(m.created_at)
            );
            let data: Vec<String> = m
                .dataset_versions
                .iter()
                .map(|(d, v)| format!("{}/{d} v{v}", m.dataset_group))
                .collect();
            outln!(
                "data: {} ({} items, {} periods from {} to {})",
                data.join(", "),
                m.items,
                m.periods,
                m.first_period.format("%Y-%m-%d"),
                m.last_period.format("%Y-%m-%d")
            );
            let served: Vec<String> = m
                .method_counts
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            outln!("items per algorithm: {}", served.join(", "));
            if m.candidates.iter().any(|c| c.algorithm == "global") {
                outln!(
                    "global model inputs: related series {}; item metadata {}",
                    if m.use_related { "yes" } else { "no" },
                    if m.item_attributes.is_empty() {
                        "none".to_string()
                    } else {
                        m.item_attributes.join(", ")
                    }
                );
            }
            let mut header = vec!["ALGORITHM".to_string()];
            header.extend(m.quantiles.iter().map(|q| format!("wQL[{q}]")));
            header.extend(
                [
                    "AVG wQL",
                    "WAPE",
                    "RMSE",
                    "MAPE",
                    "MASE",
                    "WINDOWS",
                    "FELL BACK",
                    "SECONDS",
                ]
                .map(String::from),
            );
            let row = |name: String, x: &Metrics, fell_back: Option<u64>, seconds: Option<f64>| {
                let mut r = vec![name];
                r.extend(x.wql.iter().map(|l| metric(l.loss)));
                r.extend([x.average_wql, x.wape, x.rmse, x.mape, x.mase].map(metric));
                r.push(x.windows.to_string());
                r.push(fell_back.map_or(String::new(), |n| n.to_string()));
                r.push(seconds.map_or(String::new(), |s| format!("{s:.2}")));
                r
            };
            let mut rows = vec![row(
                format!("chosen ({})", m.chosen),
                &m.metrics,
                None,
                None,
            )];
            rows.extend(m.candidates.iter().map(|c| {
                row(
                    c.algorithm.clone(),
                    &c.metrics,
                    Some(c.fallback_series),
                    Some(c.seconds),
                )
            }));
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            table(&header, rows);
            if worst > 0 {
                let items = forecasts::items(env, &m, "", worst).await?;
                outln!();
                table(
                    &["ITEM", "ALGORITHM", "AVG wQL", "WINDOWS"],
                    items
                        .into_iter()
                        .map(|i| vec![i.item_id, i.algorithm, i.average_wql.to_string(), i.windows])
                        .collect(),
                );
            }
        }
        ForecastCommand::Plot {
            predictor,
            item,
            version,
            out,
            format,
            zoom,
            last,
        } => {
            let window = match (last, zoom) {
                (Some(n), _) => PlotWindow::Last(n),
                (None, true) => PlotWindow::Zoom,
                (None, false) => PlotWindow::Full,
            };
            let predictor = forecasts::resolve(env, predictor.as_deref()).await?;
            let file = forecasts::PlotFile { out, format };
            let out = forecasts::write_plot(env, &predictor, version, &item, window, &file).await?;
            outln!("wrote {}", out.display());
        }
    }
    Ok(0)
}
