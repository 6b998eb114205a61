//! Predictor versions and forecast exports in the warehouse and the state
//! store: what `forecast_train` and `forecast` steps (and `recflow
//! forecast`) do, between the datasets and the pure code in `predictor.rs`.
//!
//! A predictor version lives under `<warehouse>/predictors/<name>/v<N>/`:
//! `items.csv` (each item's algorithm and backtest accuracy), the global
//! model if one was chosen, and `manifest.json` last; the store marks the
//! version active only after the manifest is written. A forecast export
//! writes its parts, then `_manifest.json`, then `_SUCCESS`: a reader that
//! waits for `_SUCCESS` never sees a partial forecast.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::attributes::ItemAttributes;
use super::global::{self, GlobalConfig, GlobalModel, GlobalSeries, QuantilePaths};
use super::panel::{Panel, SeriesSettings};
use super::predictor::{
    self, AutoChoice, Backtest, ItemForecast, Method, Metrics, PredictorSpec, quantile_column,
};
use crate::config::Env;
use crate::dataset::{self, DataFile, DatasetError};
use crate::memory::peak_rss_bytes;
use crate::progress::{self, Progress};
use crate::publish::{Export, ExportManifest, publish_version};
use crate::schema::DatasetType;
use crate::storage::Location;
use crate::store::VersionKind;

pub const ITEMS_FILE: &str = "items.csv";
pub const GLOBAL_MODEL_FILE: &str = "global_model.json";
/// The global model's backtest P50 for the items it serves (for plots).
pub const GLOBAL_BACKTESTS_FILE: &str = "global_backtests.parquet";
/// Rows per export part.
const PART_ROWS: usize = 1_000_000;

pub fn predictors_location(warehouse: &Location, predictor: &str) -> Location {
    warehouse.child(&format!("predictors/{predictor}"))
}

/// One candidate's backtest accuracy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateMetrics {
    pub algorithm: String,
    pub metrics: Metrics,
    /// The backtest's wall time.
    #[serde(default)]
    pub seconds: f64,
    /// Series it could not fit in at least one backtest window (too short
    /// for a per-series algorithm), scored with the fallback's forecast
    /// (`seasonal_naive`) as its own.
    #[serde(default)]
    pub fallback_series: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictorManifest {
    pub format_version: u32,
    pub predictor: String,
    pub version: i64,
    /// As declared: `auto` or an algorithm.
    pub algorithm: String,
    pub auto_choice: AutoChoice,
    /// The dataset-level choice (for `auto_choice: item`, the fallback).
    pub chosen: String,
    /// Items served by each algorithm.
    pub method_counts: BTreeMap<String, u64>,
    pub horizon: usize,
    pub quantiles: Vec<f64>,
    pub backtest_windows: usize,
    pub use_related: bool,
    /// Whether the global model read the `items` dataset.
    #[serde(default)]
    pub use_item_metadata: bool,
    /// The item attributes it used (see `attributes.rs`).
    #[serde(default)]
    pub item_attributes: Vec<String>,
    pub series: SeriesSettings,
    pub dataset_group: String,
    pub dataset_versions: BTreeMap<String, i64>,
    pub items: u64,
    pub periods: u64,
    pub first_period: NaiveDateTime,
    pub last_period: NaiveDateTime,
    /// The backtest accuracy of what was chosen.
    pub metrics: Metrics,
    /// Every candidate's, best first.
    pub candidates: Vec<CandidateMetrics>,
    pub files: Vec<DataFile>,
    pub training_seconds: f64,
    pub peak_rss_bytes: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<i64>,
    pub step_id: Option<String>,
}

pub struct TrainJob<'a> {
    pub predictor: &'a str,
    pub spec: &'a PredictorSpec,
    pub series: SeriesSettings,
    pub dataset_group: &'a str,
    /// Whether the pipeline declares a related_time_series dataset.
    pub has_related: bool,
    /// Whether it declares an `items` dataset (item metadata).
    pub has_items: bool,
    pub run_id: Option<i64>,
    pub step_id: Option<&'a str>,
}

/// What a predictor reads besides the target series.
#[derive(Debug, Clone, Copy)]
struct Inputs {
    related: bool,
    items: bool,
}

/// The datasets a predictor reads, loaded and turned into a panel.
async fn load_panel(
    env: &Env,
    group: &str,
    versions: Option<&BTreeMap<String, i64>>,
    inputs: Inputs,
    settings: SeriesSettings,
    horizon: usize,
) -> anyhow::Result<(Panel, BTreeMap<String, i64>)> {
    let pinned = |t: DatasetType| versions.and_then(|v| v.get(t.as_str()).copied());
    let target = dataset::load(
        env,
        group,
        DatasetType::TargetTimeSeries,
        pinned(DatasetType::TargetTimeSeries),
    )
    .await?;
    let mut used = BTreeMap::from([(
        DatasetType::TargetTimeSeries.to_string(),
        target.record.version,
    )]);
    // An input the predictor uses must have been imported.
    let mut input = async |wanted: bool, dataset: DatasetType, what: &str, setting: &str| {
        if !wanted {
            return anyhow::Ok(None);
        }
        match dataset::load(env, group, dataset, pinned(dataset)).await {
            Ok(loaded) => {
                used.insert(dataset.to_string(), loaded.record.version);
                Ok(Some(loaded))
            }
            Err(DatasetError::NoVersion { owner }) => anyhow::bail!(
                "dataset {owner} has no active version yet; import {what} first, or set `{setting}: false` on the predictor"
            ),
            Err(e) => Err(e.into()),
        }
    };
    let related = input(
        inputs.related,
        DatasetType::RelatedTimeSeries,
        "the related series",
        "use_related",
    )
    .await?
    .map(|r| r.frame);
    let items = input(
        inputs.items,
        DatasetType::Items,
        "the item metadata",
        "use_item_metadata",
    )
    .await?
    .map(|i| (i.frame, i.manifest.schema));
    let frame = target.frame;
    let panel = tokio::task::spawn_blocking(move || -> anyhow::Result<Panel> {
        let mut panel = Panel::build(&frame, related.as_ref(), &settings, horizon)?;
        if let Some((items, schema)) = items {
            let attributes = ItemAttributes::build(&items, &schema, &panel.items)?;
            for (field, reason) in &attributes.skipped {
                tracing::info!(
                    field,
                    reason,
                    "Item metadata field not used by the global model."
                );
            }
            if attributes.missing() > 0 {
                tracing::info!(
                    items = attributes.missing(),
                    "Items without a metadata row: their attributes are unknown."
                );
            }
            panel.attributes = Some(attributes);
        }
        Ok(panel)
    })
    .await??;
    Ok((panel, used))
}

/// The global model's view of the panel cut at period `end`: every item
/// with history before `end`, its related series through `end + horizon`.
fn global_series<'a>(
    panel: &'a Panel,
    end: usize,
    horizon: usize,
) -> Vec<(usize, GlobalSeries<'a>)> {
    (0..panel.items.len())
        .filter_map(|i| Some((i, global_series_of(panel, i, end, horizon)?)))
        .collect()
}

/// One item's view, or `None` when it has no history before `end`.
fn global_series_of(
    panel: &Panel,
    i: usize,
    end: usize,
    horizon: usize,
) -> Option<GlobalSeries<'_>> {
    let target = panel.history(i, end)?;
    let first = panel.series[i].first;
    let related = panel
        .related
        .as_ref()
        .map(|r| {
            r.values[i]
                .iter()
                .map(|c| &c[..(end + horizon - first).min(c.len())])
                .collect()
        })
        .unwrap_or_default();
    let attributes = panel
        .attributes
        .as_ref()
        .map_or(&[][..], |a| a.values[i].as_slice());
    Some(GlobalSeries {
        id: &panel.items[i],
        target,
        start: panel.date(first),
        related,
        attributes,
    })
}

fn global_config(panel: &Panel, horizon: usize, quantiles: &[f64]) -> GlobalConfig {
    let mut config = GlobalConfig::new(horizon, panel.frequency);
    config.quantiles = quantiles.to_vec();
    config.related = panel
        .related
        .as_ref()
        .map(|r| r.columns.clone())
        .unwrap_or_default();
    config.attributes = panel
        .attributes
        .as_ref()
        .map(|a| a.attributes.clone())
        .unwrap_or_default();
    config
}

/// Trains the global model on every item's history before `end`.
/// `done` hears the fraction of the training finished as it goes.
fn train_global(
    panel: &Panel,
    end: usize,
    horizon: usize,
    quantiles: &[f64],
    done: &dyn Fn(f64),
) -> anyhow::Result<GlobalModel> {
    let series: Vec<GlobalSeries> = global_series(panel, end, horizon)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let started = Instant::now();
    let model = global::train_reporting(&series, &global_config(panel, horizon, quantiles), done)?;
    tracing::info!(
        series = series.len(),
        forecast_from = %panel.date(end).format("%Y-%m-%d"),
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "Trained the global model."
    );
    Ok(model)
}

/// The model's quantile `p`: a trained quantile, else interpolated
/// between the nearest trained ones, else (beyond the outermost)
/// extrapolated with the normal spread the outermost one implies.
fn quantile_of(paths: &QuantilePaths, p: f64) -> Vec<f64> {
    if let Some(v) = paths.quantile(p) {
        return v.to_vec();
    }
    let qs = &paths.quantiles;
    let below = qs.iter().rev().find(|(q, _)| *q < p);
    let above = qs.iter().find(|(q, _)| *q > p);
    match (below, above) {
        (Some((a, va)), Some((b, vb))) => {
            let w = (p - a) / (b - a);
            va.iter()
                .zip(vb)
                .map(|(x, y)| x * (1.0 - w) + y * w)
                .collect()
        }
        (Some((q, v)), None) | (None, Some((q, v))) if (q - 0.5).abs() > 1e-9 => {
            let ratio = super::inverse_normal(p) / super::inverse_normal(*q);
            v.iter()
                .zip(&paths.p50)
                .map(|(x, m)| m + (x - m) * ratio)
                .collect()
        }
        _ => paths.p50.clone(),
    }
}

fn item_forecast(paths: &QuantilePaths, quantiles: &[f64], non_negative: bool) -> ItemForecast {
    ItemForecast {
        mean: paths.p50.clone(),
        quantiles: quantiles.iter().map(|q| quantile_of(paths, *q)).collect(),
    }
    .tidy(non_negative)
}

/// The global model as a backtest needs it: trained on every item's
/// history before `end`, then forecasting `horizon` periods from there.
fn global_at(
    panel: &Panel,
    end: usize,
    horizon: usize,
    quantiles: &[f64],
    done: &dyn Fn(f64),
) -> anyhow::Result<Vec<Option<ItemForecast>>> {
    let model = train_global(panel, end, horizon, quantiles, done)?;
    let cut = global_series(panel, end, horizon);
    let series: Vec<GlobalSeries> = cut.iter().map(|(_, s)| s.clone()).collect();
    let paths = model.predict_all(&series)?;
    let mut out = vec![None; panel.items.len()];
    let non_negative = panel.non_negative();
    for ((i, _), p) in cut.iter().zip(&paths) {
        out[*i] = Some(item_forecast(p, quantiles, non_negative));
    }
    Ok(out)
}

/// Trains and publishes a new predictor version.
pub async fn train(env: &Env, job: TrainJob<'_>) -> anyhow::Result<PredictorManifest> {
    let spec = job.spec.clone();
    let methods = spec.methods();
    let global = methods.contains(&Method::Global);
    let inputs = Inputs {
        related: job.has_related && spec.use_related && global,
        items: job.has_items && spec.use_item_metadata && global,
    };
    let (panel, dataset_versions) = load_panel(
        env,
        job.dataset_group,
        None,
        inputs,
        job.series,
        spec.horizon,
    )
    .await?;
    let item_attributes: Vec<String> = panel
        .attributes
        .iter()
        .flat_map(|a| a.attributes.iter().map(|a| a.name.clone()))
        .collect();
    let started = Instant::now();
    let trained = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let item_windows =
            predictor::backtest_work(panel.items.len(), methods.len(), spec.backtest_windows);
        let progress = Progress::count("backtest", "series", item_windows);
        let q = spec.quantiles.clone();
        // The global model's backtest medians, kept for plots: a refit per
        // window at plot time would cost a training each.
        let global_windows = std::sync::Mutex::new(Vec::new());
        let backtest = predictor::backtest(
            &panel,
            &methods,
            spec.horizon,
            spec.backtest_windows,
            &spec.quantiles,
            &|p: &Panel, end: usize, done: &(dyn Fn(f64) + Sync)| {
                let f = global_at(p, end, spec.horizon, &q, done)?;
                let median: Vec<Option<Vec<f64>>> = f
                    .iter()
                    .map(|x| x.as_ref().map(|x| median_of(x, &q)))
                    .collect();
                global_windows
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((end, median));
                Ok(f)
            },
            &|n| progress.inc(n),
        )?;
        progress.finish();
        let choice = predictor::choose(&backtest, &spec.quantiles, spec.auto_choice);
        let global_model = if choice.per_item.contains(&Method::Global) {
            let trees = global_config(&panel, spec.horizon, &spec.quantiles)
                .booster
                .trees as u64;
            let progress = Progress::count("global model", "trees", trees);
            let share = progress::Share::new(trees);
            let model = train_global(&panel, panel.periods, spec.horizon, &spec.quantiles, &|f| {
                progress.inc(share.advance_to(f))
            })?;
            progress.finish();
            Some(serde_json::to_vec(&model)?)
        } else {
            None
        };
        let items_csv = items_csv(&panel, &backtest, &choice.per_item, &spec.quantiles)?;
        let windows = global_windows
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let backtests = match &global_model {
            Some(_) => Some(global_backtests(&panel, &choice.per_item, windows)?),
            None => None,
        };
        Ok((panel, backtest, choice, global_model, items_csv, backtests))
    })
    .await??;
    let (panel, backtest, choice, global_model, items_csv, backtests) = trained;
    let training_seconds = started.elapsed().as_secs_f64();
    let spec = job.spec;
    let mut candidates: Vec<CandidateMetrics> = backtest
        .methods
        .iter()
        .enumerate()
        .map(|(m, method)| CandidateMetrics {
            algorithm: method.name().to_string(),
            metrics: backtest.overall(m).metrics(&spec.quantiles),
            seconds: backtest.seconds[m],
            fallback_series: backtest.fallback_series(m),
        })
        .collect();
    candidates.sort_by(|a, b| {
        let key = |c: &CandidateMetrics| c.metrics.average_wql.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b))
    });
    let metrics = predictor::accuracy_of(&backtest, &choice.per_item).metrics(&spec.quantiles);

    let prefix = predictors_location(&env.warehouse, job.predictor);
    publish_version(
        env.store.as_ref(),
        VersionKind::Predictor,
        job.predictor,
        (job.run_id, job.step_id),
        &prefix,
        |version, folder| async move {
            let mut files = Vec::new();
            let mut put = |name: &str, bytes: Vec<u8>, rows: u64| {
                files.push(DataFile::of(name, &bytes, rows));
                (folder.child(name), bytes)
            };
            let mut uploads = vec![put(ITEMS_FILE, items_csv, panel.items.len() as u64)];
            if let Some(model) = global_model {
                uploads.push(put(GLOBAL_MODEL_FILE, model, 1));
            }
            if let Some((bytes, rows)) = backtests {
                uploads.push(put(GLOBAL_BACKTESTS_FILE, bytes, rows));
            }
            for (loc, bytes) in uploads {
                loc.put(bytes).await?;
            }
            let manifest = PredictorManifest {
                format_version: 1,
                predictor: job.predictor.to_string(),
                version,
                algorithm: spec.algorithm.clone(),
                auto_choice: spec.auto_choice,
                chosen: choice.dataset.name().to_string(),
                method_counts: predictor::method_counts(&choice.per_item),
                horizon: spec.horizon,
                quantiles: spec.quantiles.clone(),
                backtest_windows: spec.backtest_windows,
                use_related: inputs.related,
                use_item_metadata: inputs.items,
                item_attributes,
                series: job.series,
                dataset_group: job.dataset_group.to_string(),
                dataset_versions,
                items: panel.items.len() as u64,
                periods: panel.periods as u64,
                first_period: panel.origin,
                last_period: panel.date(panel.periods - 1),
                metrics,
                candidates,
                files,
                training_seconds,
                peak_rss_bytes: peak_rss_bytes(),
                created_at: Utc::now(),
                run_id: job.run_id,
                step_id: job.step_id.map(str::to_string),
            };
            anyhow::Ok((manifest, ()))
        },
    )
    .await
    .map(|(manifest, ())| manifest)
}

/// The median of a forecast: the 0.5 quantile when asked for, else the mean.
fn median_of(f: &ItemForecast, quantiles: &[f64]) -> Vec<f64> {
    quantiles
        .iter()
        .position(|q| (q - 0.5).abs() < 1e-9)
        .map_or_else(|| f.mean.clone(), |k| f.quantiles[k].clone())
}

/// `global_backtests.parquet`: `item_id, window_start, step, p50` for the
/// items the global model serves.
fn global_backtests(
    panel: &Panel,
    per_item: &[Method],
    windows: Vec<(usize, Vec<Option<Vec<f64>>>)>,
) -> anyhow::Result<(Vec<u8>, u64)> {
    let (mut ids, mut starts, mut steps, mut values) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (end, forecasts) in windows {
        for (i, f) in forecasts.into_iter().enumerate() {
            if per_item[i] != Method::Global {
                continue;
            }
            for (k, v) in f.into_iter().flatten().enumerate() {
                ids.push(panel.items[i].as_str());
                starts.push(end as u32);
                steps.push(k as u32);
                values.push(v);
            }
        }
    }
    let n = ids.len();
    let frame = DataFrame::new(
        n,
        vec![
            Column::new("item_id".into(), ids),
            Column::new("window_start".into(), starts),
            Column::new("step".into(), steps),
            Column::new("p50".into(), values),
        ],
    )?;
    Ok((encode(frame, ForecastFormat::Parquet)?, n as u64))
}

/// The stored global backtest medians of one item, by window start.
async fn global_backtests_of(
    env: &Env,
    m: &PredictorManifest,
    item: &str,
) -> anyhow::Result<BTreeMap<usize, Vec<f64>>> {
    let mut out: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    if !m.files.iter().any(|f| f.path == GLOBAL_BACKTESTS_FILE) {
        return Ok(out);
    }
    let loc = predictors_location(&env.warehouse, &m.predictor)
        .child(&format!("v{}", m.version))
        .child(GLOBAL_BACKTESTS_FILE);
    let bytes = loc.get().await?;
    let item = item.to_string();
    let frame = tokio::task::spawn_blocking(move || -> PolarsResult<DataFrame> {
        ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()?
            .lazy()
            .filter(col("item_id").eq(lit(item)))
            .sort(["window_start", "step"], SortMultipleOptions::default())
            .collect()
    })
    .await??;
    let starts = frame.column("window_start")?.u32()?;
    let values = frame.column("p50")?.f64()?;
    for (s, v) in starts.into_no_null_iter().zip(values.into_no_null_iter()) {
        out.entry(s as usize).or_default().push(v);
    }
    Ok(out)
}

/// `items.csv`: each item's algorithm and its backtest accuracy under it.
fn items_csv(
    panel: &Panel,
    backtest: &Backtest,
    per_item: &[Method],
    quantiles: &[f64],
) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "item_id".to_string(),
        "algorithm".into(),
        "windows".into(),
        "average_wql".into(),
    ];
    header.extend(
        quantiles
            .iter()
            .map(|q| format!("wql_{}", quantile_column(*q))),
    );
    header.extend(["wape", "rmse", "mape", "mase"].map(String::from));
    w.write_record(&header)?;
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    for (i, item) in panel.items.iter().enumerate() {
        let m = backtest
            .methods
            .iter()
            .position(|x| *x == per_item[i])
            .expect("chosen among the backtested");
        let metrics = backtest.per_item[m][i].metrics(quantiles);
        let mut row = vec![
            item.clone(),
            per_item[i].name().to_string(),
            metrics.windows.to_string(),
            cell(metrics.average_wql),
        ];
        row.extend(metrics.wql.iter().map(|l| cell(l.loss)));
        row.extend([metrics.wape, metrics.rmse, metrics.mape, metrics.mase].map(cell));
        w.write_record(&row)?;
    }
    Ok(w.into_inner()?)
}

/// Reads a predictor version's manifest from the store: `version`, or the
/// latest active one.
/// Why a predictor version cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PredictorError {
    #[error("predictor {predictor} has no active version yet; run a forecast_train step first")]
    NoVersion { predictor: String },
    #[error("predictor {predictor} v{version} is {status} (no manifest)")]
    NotActive {
        predictor: String,
        version: i64,
        status: String,
    },
    #[error("predictor {predictor} v{version}: unreadable manifest: {reason}")]
    Corrupt {
        predictor: String,
        version: i64,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A predictor version's manifest (the latest active one when `version`
/// is `None`).
pub async fn manifest(
    env: &Env,
    predictor: &str,
    version: Option<i64>,
) -> Result<PredictorManifest, PredictorError> {
    let record = match version {
        Some(v) => {
            env.store
                .get_version(VersionKind::Predictor, predictor, v)
                .await?
        }
        None => env
            .store
            .latest_active_version(VersionKind::Predictor, predictor)
            .await?
            .ok_or_else(|| PredictorError::NoVersion {
                predictor: predictor.to_string(),
            })?,
    };
    // A version being or having been pruned keeps its manifest in the
    // store, but not its files.
    let value = record
        .manifest
        .filter(|_| record.status == crate::store::VersionStatus::Active)
        .ok_or_else(|| PredictorError::NotActive {
            predictor: predictor.to_string(),
            version: record.version,
            status: record.status.to_string(),
        })?;
    serde_json::from_value(value).map_err(|e| PredictorError::Corrupt {
        predictor: predictor.to_string(),
        version: record.version,
        reason: e.to_string(),
    })
}

/// Each item's method, from a version's `items.csv`.
async fn item_methods(
    env: &Env,
    m: &PredictorManifest,
) -> anyhow::Result<BTreeMap<String, Method>> {
    let folder =
        predictors_location(&env.warehouse, &m.predictor).child(&format!("v{}", m.version));
    let bytes = folder.child(ITEMS_FILE).get().await?;
    let mut r = csv::Reader::from_reader(bytes.as_ref());
    let mut out = BTreeMap::new();
    for row in r.records() {
        let row = row?;
        let method = Method::parse(&row[1])
            .ok_or_else(|| anyhow::anyhow!("{ITEMS_FILE}: unknown algorithm {:?}", &row[1]))?;
        out.insert(row[0].to_string(), method);
    }
    Ok(out)
}

async fn global_model(
    env: &Env,
    m: &PredictorManifest,
) -> anyhow::Result<Option<global::GlobalModel>> {
    if !m.method_counts.contains_key(Method::Global.name()) {
        return Ok(None);
    }
    let folder =
        predictors_location(&env.warehouse, &m.predictor).child(&format!("v{}", m.version));
    let loc = folder.child(GLOBAL_MODEL_FILE);
    let bytes = loc.get().await?;
    Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!("{}: unreadable global model: {e}", loc.url())
    })?))
}

/// A predictor version ready to forecast: its data, each item's method and
/// the global model.
pub struct Loaded {
    pub manifest: PredictorManifest,
    pub panel: Arc<Panel>,
    pub methods: Vec<Method>,
    pub global: Option<Arc<global::GlobalModel>>,
    /// `panel.non_negative()`, once: it reads every value of the panel and
    /// each item's forecast needs it.
    non_negative: bool,
}

pub async fn load(env: &Env, predictor: &str, version: Option<i64>) -> anyhow::Result<Loaded> {
    let manifest = manifest(env, predictor, version).await?;
    let (panel, _) = load_panel(
        env,
        &manifest.dataset_group,
        Some(&manifest.dataset_versions),
        Inputs {
            related: manifest.use_related,
            items: manifest.use_item_metadata,
        },
        manifest.series,
        manifest.horizon,
    )
    .await?;
    let by_item = item_methods(env, &manifest).await?;
    let fallback = Method::parse(&manifest.chosen).unwrap_or(Method::Local(super::Algorithm::Ets));
    let methods = panel
        .items
        .iter()
        .map(|i| by_item.get(i).copied().unwrap_or(fallback))
        .collect();
    let global = global_model(env, &manifest).await?.map(Arc::new);
    Ok(Loaded {
        manifest,
        non_negative: panel.non_negative(),
        panel: Arc::new(panel),
        methods,
        global,
    })
}

impl Loaded {
    /// Forecasts item `i` from its history before `end` (the panel's end
    /// for a forecast, a window's start for a backtest plot), with the
    /// given quantiles.
    pub fn forecast_item(
        &self,
        i: usize,
        end: usize,
        quantiles: &[f64],
    ) -> anyhow::Result<Option<ItemForecast>> {
        let p = &self.panel;
        let h = self.manifest.horizon;
        let Some(history) = p.history(i, end) else {
            return Ok(None);
        };
        Ok(Some(match self.methods[i] {
            // As in the backtest: a series too short for the algorithm gets
            // the fallback's forecast.
            Method::Local(a) => {
                predictor::local_or_fallback(
                    a,
                    history,
                    p.frequency.season_length(),
                    h,
                    quantiles,
                    self.non_negative,
                )
                .0
            }
            Method::Global => {
                let model = self
                    .global
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the predictor version has no global model"))?;
                // One item's series, not the panel's: this runs for every
                // item of a forecast.
                let series =
                    global_series_of(p, i, end, h).expect("the item has history before `end`");
                item_forecast(&model.predict(&series)?, quantiles, self.non_negative)
            }
        }))
    }
}

/// Output format of a forecast export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForecastFormat {
    #[default]
    Csv,
    Parquet,
}

pub struct ForecastJob<'a> {
    pub predictor: &'a str,
    /// Default: the latest active version.
    pub version: Option<i64>,
    pub output: Location,
    pub format: ForecastFormat,
    /// SVG plots of the items with the largest total target, under `plots/`.
    pub plot_top: usize,
    pub run_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastManifest {
    pub predictor: String,
    pub predictor_version: i64,
    pub items: u64,
    pub rows: u64,
    pub horizon: usize,
    pub first_date: String,
    pub last_date: String,
    pub columns: Vec<String>,
    pub format: ForecastFormat,
    pub outputs: Vec<String>,
    pub plots: Vec<String>,
    pub seconds: f64,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<i64>,
}

/// The export's date column: ISO 8601 in UTC, as the managed service writes it.
pub fn date_text(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Forecasts every item of a predictor version and publishes the export.
pub async fn forecast(env: &Env, job: ForecastJob<'_>) -> anyhow::Result<ForecastManifest> {
    let started = Instant::now();
    let loaded = Arc::new(load(env, job.predictor, job.version).await?);
    let quantiles = loaded.manifest.quantiles.clone();
    let format = job.format;
    let l = loaded.clone();
    let (parts, rows) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<Vec<u8>>, u64)> {
            use rayon::prelude::*;
            let p = &l.panel;
            let progress = Progress::count("forecast", "series", p.items.len() as u64);
            let forecasts: Vec<anyhow::Result<Option<ItemForecast>>> = (0..p.items.len())
                .into_par_iter()
                .map(|i| {
                    let f = l.forecast_item(i, p.periods, &quantiles);
                    progress.inc(1);
                    f
                })
                .collect();
            progress.finish();
            let h = l.manifest.horizon;
            let dates: Vec<String> = (0..h).map(|k| date_text(p.date(p.periods + k))).collect();
            let mut parts = Vec::new();
            let mut rows = 0u64;
            let items_per_part = (PART_ROWS / h.max(1)).max(1);
            let all: Vec<ItemForecast> = forecasts
                .into_iter()
                .map(|f| f.map(|f| f.expect("every item has history at the panel's end")))
                .collect::<anyhow::Result<_>>()?;
            for (c, chunk) in all.chunks(items_per_part).enumerate() {
                let ids = &p.items[c * items_per_part..c * items_per_part + chunk.len()];
                let frame = export_frame(ids, chunk, &dates, &quantiles)?;
                rows += frame.height() as u64;
                parts.push(encode(frame, format)?);
            }
            Ok((parts, rows))
        })
        .await??;

    let export = Export::begin::<ForecastManifest>(&job.output).await?;
    let ext = match format {
        ForecastFormat::Csv => "csv",
        ForecastFormat::Parquet => "parquet",
    };
    let mut outputs = Vec::new();
    for (n, bytes) in parts.into_iter().enumerate() {
        outputs.push(export.put(&format!("forecast-{n:05}.{ext}"), bytes).await?);
    }
    let plots = if job.plot_top > 0 {
        let svgs = top_plots(env, &loaded, job.plot_top).await?;
        let mut urls = Vec::new();
        for (item, svg) in svgs {
            let rel = format!("plots/{}.svg", file_safe(&item));
            urls.push(export.put(&rel, svg.into_bytes()).await?);
        }
        urls
    } else {
        Vec::new()
    };
    let m = &loaded.manifest;
    let p = &loaded.panel;
    let mut columns = vec!["item_id".to_string(), "date".into()];
    columns.extend(m.quantiles.iter().map(|q| quantile_column(*q)));
    columns.push("mean".into());
    let manifest = ForecastManifest {
        predictor: m.predictor.clone(),
        predictor_version: m.version,
        items: p.items.len() as u64,
        rows,
        horizon: m.horizon,
        first_date: date_text(p.date(p.periods)),
        last_date: date_text(p.date(p.periods + m.horizon - 1)),
        columns,
        format,
        outputs,
        plots,
        seconds: started.elapsed().as_secs_f64(),
        created_at: Utc::now(),
        run_id: job.run_id,
    };
    export.finish(&manifest).await?;
    Ok(manifest)
}

impl ExportManifest for ForecastManifest {
    fn files(&self) -> Vec<&str> {
        self.outputs
            .iter()
            .chain(&self.plots)
            .map(String::as_str)
            .collect()
    }
}

fn export_frame(
    ids: &[String],
    forecasts: &[ItemForecast],
    dates: &[String],
    quantiles: &[f64],
) -> anyhow::Result<DataFrame> {
    let h = dates.len();
    let n = ids.len() * h;
    let mut item_col = Vec::with_capacity(n);
    let mut date_col = Vec::with_capacity(n);
    let mut q_cols: Vec<Vec<f64>> = vec![Vec::with_capacity(n); quantiles.len()];
    let mut mean_col = Vec::with_capacity(n);
    for (id, f) in ids.iter().zip(forecasts) {
        for (t, date) in dates.iter().enumerate() {
            item_col.push(id.as_str());
            date_col.push(date.as_str());
            for (k, col) in q_cols.iter_mut().enumerate() {
                col.push(round(f.quantiles[k][t]));
            }
            mean_col.push(round(f.mean[t]));
        }
    }
    let mut columns = vec![
        Column::new("item_id".into(), item_col),
        Column::new("date".into(), date_col),
    ];
    for (q, values) in quantiles.iter().zip(q_cols) {
        columns.push(Column::new(quantile_column(*q).into(), values));
    }
    columns.push(Column::new("mean".into(), mean_col));
    Ok(DataFrame::new(n, columns)?)
}

/// Six significant decimals are plenty for a forecast and keep CSVs small.
fn round(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn encode(mut frame: DataFrame, format: ForecastFormat) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match format {
        ForecastFormat::Csv => CsvWriter::new(&mut buf)
            .include_header(true)
            .finish(&mut frame)?,
        ForecastFormat::Parquet => {
            ParquetWriter::new(&mut buf)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut frame)?;
        }
    }
    Ok(buf)
}

/// A file name for an item id: letters, digits, `-`, `_` and `.` kept,
/// anything else percent-encoded, so no id can leave the plots folder.
pub fn file_safe(item: &str) -> String {
    let mut out = String::with_capacity(item.len());
    for b in item.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How much of an item's history a plot shows before the forecast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlotWindow {
    /// All of it.
    #[default]
    Full,
    /// The last three horizons: the forecast reads at the scale of the
    /// recent past instead of a sliver at the right of a long series.
    Zoom,
    /// The last `n` periods (at least one).
    Last(usize),
}

impl PlotWindow {
    /// The first period shown, of a panel of `periods` periods forecast
    /// `horizon` periods ahead.
    pub fn first_period(self, periods: usize, horizon: usize) -> usize {
        let shown = match self {
            PlotWindow::Full => return 0,
            PlotWindow::Zoom => horizon.saturating_mul(3),
            PlotWindow::Last(n) => n,
        };
        periods.saturating_sub(shown.max(1))
    }
}

/// An SVG of one item: its history (as much as `window` shows), the
/// forecast's median and the intervals between the predictor's
/// quantiles, and the backtest windows' median over the actuals they
/// forecast.
pub async fn plot(
    env: &Env,
    l: Arc<Loaded>,
    item: usize,
    window: PlotWindow,
) -> anyhow::Result<String> {
    let stored = match l.methods[item] {
        Method::Global => Some(global_backtests_of(env, &l.manifest, &l.panel.items[item]).await?),
        Method::Local(_) => None,
    };
    tokio::task::spawn_blocking(move || plot_item(&l, item, stored.as_ref(), window)).await?
}

/// The plot of one item; the global model's backtest medians come from
/// `stored` (per-series models are refitted: the same history gives the
/// same forecast). Only the quantiles the predictor was trained and
/// backtested for are drawn; without 0.5 among them, the mean stands in
/// for the median, as in `global_backtests.parquet`.
pub fn plot_item(
    l: &Loaded,
    item: usize,
    stored: Option<&BTreeMap<usize, Vec<f64>>>,
    window: PlotWindow,
) -> anyhow::Result<String> {
    use super::plot::{BacktestWindow, PlotData, Quantile, svg};
    let p = &l.panel;
    let m = &l.manifest;
    let h = m.horizon;
    let s = &p.series[item];
    let first = window.first_period(p.periods, h);
    let history: Vec<(NaiveDateTime, f64)> = s
        .values
        .iter()
        .enumerate()
        .map(|(k, v)| (s.first + k, *v))
        .filter(|(t, _)| *t >= first)
        .map(|(t, v)| (p.date(t), v))
        .collect();
    // Ascending: `ItemForecast::tidy` orders each step's values so.
    let mut levels = m.quantiles.clone();
    levels.sort_by(f64::total_cmp);
    let f = l
        .forecast_item(item, p.periods, &levels)?
        .ok_or_else(|| anyhow::anyhow!("item {} has no history", p.items[item]))?;
    let center: &[f64] = if levels.iter().any(|q| (q - 0.5).abs() < 1e-9) {
        &[0.5]
    } else {
        &[]
    };
    let mut backtests = Vec::new();
    for w in 0..m.backtest_windows {
        let Some(end) = predictor::window_start(p.periods, h, w) else {
            continue;
        };
        let values = match (l.methods[item], stored) {
            (Method::Global, Some(s)) => s.get(&end).cloned(),
            (Method::Global, None) => None,
            (Method::Local(_), _) => l
                .forecast_item(item, end, center)?
                .filter(|_| {
                    p.history(item, end)
                        .is_some_and(|x| x.len() >= predictor::MIN_HISTORY)
                })
                .map(|b| median_of(&b, center)),
        };
        let Some(values) = values else {
            continue;
        };
        // A window reaching back before the view is cut at its start.
        let (dates, center) = values
            .into_iter()
            .enumerate()
            .filter(|(k, _)| end + k >= first)
            .map(|(k, v)| (p.date(end + k), v))
            .unzip::<_, _, Vec<_>, Vec<_>>();
        if !dates.is_empty() {
            backtests.push(BacktestWindow { dates, center });
        }
    }
    backtests.reverse();
    let forecast_dates: Vec<NaiveDateTime> = (0..h).map(|k| p.date(p.periods + k)).collect();
    let quantiles: Vec<Quantile> = levels
        .iter()
        .zip(f.quantiles)
        .map(|(&level, values)| Quantile { level, values })
        .collect();
    let title = format!(
        "{} — {} ({}, predictor {} v{})",
        p.items[item],
        l.methods[item].name(),
        p.frequency.name(),
        m.predictor,
        m.version
    );
    Ok(svg(&PlotData {
        title: &title,
        history: &history,
        forecast_dates: &forecast_dates,
        quantiles: &quantiles,
        mean: &f.mean,
        backtests: &backtests,
        unit: None,
    }))
}

/// SVGs of the `top` items with the largest total target.
async fn top_plots(
    env: &Env,
    l: &Arc<Loaded>,
    top: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let p = &l.panel;
    let mut order: Vec<(usize, f64)> = p
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.values.iter().filter(|v| !v.is_nan()).sum()))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out = Vec::new();
    for (i, _) in order.into_iter().take(top) {
        let svg = plot(env, l.clone(), i, PlotWindow::Full).await?;
        out.push((p.items[i].clone(), svg));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Algorithm;
    use crate::forecast::frequency::Frequency;
    use crate::forecast::panel::{Aggregation, Fill, ItemSeries};
    use crate::forecast::predictor::Accuracy;

    /// A predictor version of one weekly item, served by ETS, with the
    /// given quantiles; 120 weeks from 2024-01-01, an 8-week horizon and
    /// two backtest windows.
    fn loaded(quantiles: &[f64]) -> Loaded {
        let origin = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let periods = 120;
        let values = (0..periods)
            .map(|i| 100.0 + (i % 4) as f64 * 15.0 + i as f64)
            .collect();
        let panel = Panel {
            frequency: Frequency::WEEKLY,
            origin,
            periods,
            items: vec!["a".into()],
            series: vec![ItemSeries { first: 0, values }],
            related: None,
            attributes: None,
            aggregated_rows: 0,
        };
        let metrics = Accuracy::default().metrics(quantiles);
        let manifest = PredictorManifest {
            format_version: 1,
            predictor: "demand".into(),
            version: 1,
            algorithm: "ets".into(),
            auto_choice: AutoChoice::Dataset,
            chosen: "ets".into(),
            method_counts: BTreeMap::from([("ets".into(), 1)]),
            horizon: 8,
            quantiles: quantiles.to_vec(),
            backtest_windows: 2,
            use_related: false,
            use_item_metadata: false,
            item_attributes: Vec::new(),
            series: SeriesSettings {
                frequency: Frequency::WEEKLY,
                target_fill: Fill::Zero,
                target_aggregation: Aggregation::Sum,
                related_fill: Fill::Previous,
                related_future_fill: None,
                related_aggregation: Aggregation::Mean,
            },
            dataset_group: "oj".into(),
            dataset_versions: BTreeMap::new(),
            items: 1,
            periods: periods as u64,
            first_period: origin,
            last_period: panel.date(periods - 1),
            metrics,
            candidates: Vec::new(),
            files: Vec::new(),
            training_seconds: 0.0,
            peak_rss_bytes: None,
            created_at: Utc::now(),
            run_id: None,
            step_id: None,
        };
        Loaded {
            manifest,
            non_negative: panel.non_negative(),
            panel: Arc::new(panel),
            methods: vec![Method::Local(Algorithm::Ets)],
            global: None,
        }
    }

    fn plot(quantiles: &[f64], window: PlotWindow) -> String {
        plot_item(&loaded(quantiles), 0, None, window).unwrap()
    }

    /// The points of a line, by its class.
    fn points(svg: &str, class: &str) -> usize {
        let Some(rest) = svg.split(&format!("class=\"{class}\" d=\"")).nth(1) else {
            return 0;
        };
        let d = &rest[..rest.find('"').unwrap()];
        d.matches(['M', 'L']).count()
    }

    #[test]
    fn a_plot_draws_only_the_predictors_own_quantiles() {
        let svg = plot(&[0.1, 0.5, 0.9], PlotWindow::Full);
        assert!(svg.contains(">80% interval (P10–P90)<"), "{svg}");
        assert!(svg.contains(">P50 forecast<") && svg.contains(">backtest P50<"));
        for absent in ["P05", "P25", "P75", "P95"] {
            assert!(!svg.contains(absent), "{absent} drawn for [0.1, 0.5, 0.9]");
        }
        assert_eq!(svg.matches("class=\"band\"").count(), 1);

        let svg = plot(&[0.05, 0.25, 0.5, 0.75, 0.95], PlotWindow::Full);
        assert!(svg.contains(">90% interval (P05–P95)<"), "{svg}");
        assert!(svg.contains(">50% interval (P25–P75)<"), "{svg}");
        assert!(!svg.contains("P10") && !svg.contains("P90"));
        assert_eq!(svg.matches("class=\"band\"").count(), 2);
    }

    #[test]
    fn a_predictor_without_a_median_is_drawn_with_its_mean() {
        let svg = plot(&[0.1, 0.9], PlotWindow::Full);
        assert!(svg.contains(">mean forecast<") && svg.contains(">backtest mean<"));
        assert!(svg.contains(">80% interval (P10–P90)<"));
        assert!(!svg.contains("P50"), "{svg}");
        assert_eq!(points(&svg, "backtest-center"), 16);
    }

    #[test]
    fn quantiles_declared_out_of_order_plot_as_sorted() {
        assert_eq!(
            plot(&[0.9, 0.1, 0.5], PlotWindow::Full),
            plot(&[0.1, 0.5, 0.9], PlotWindow::Full)
        );
    }

    #[test]
    fn a_zoomed_plot_starts_later_and_keeps_the_forecast() {
        let q = [0.1, 0.5, 0.9];
        let full = plot(&q, PlotWindow::Full);
        let zoom = plot(&q, PlotWindow::Zoom);
        let last = plot(&q, PlotWindow::Last(12));
        assert_eq!(points(&full, "history"), 120);
        assert_eq!(points(&zoom, "history"), 3 * 8);
        assert_eq!(points(&last, "history"), 12);
        // The x axis: the full plot starts in 2024, the zoomed one in late
        // 2025 (its ticks name only the later year).
        assert!(full.contains(">2024<") && !zoom.contains(">2024<"));
        for svg in [&full, &zoom, &last] {
            // The forecast joins the last actual: one point more.
            assert_eq!(points(svg, "center"), 8 + 1);
            assert_eq!(svg.matches("class=\"band\"").count(), 1);
        }
        // Both backtest windows fit in three horizons; the last 12 weeks
        // hold one whole window and half of the other.
        assert_eq!(points(&full, "backtest-center"), 16);
        assert_eq!(points(&zoom, "backtest-center"), 16);
        assert_eq!(points(&last, "backtest-center"), 12);
        assert_eq!(full, plot(&q, PlotWindow::default()));
    }

    #[test]
    fn plot_windows_show_at_least_one_period() {
        assert_eq!(PlotWindow::Full.first_period(100, 8), 0);
        assert_eq!(PlotWindow::Zoom.first_period(100, 8), 76);
        assert_eq!(PlotWindow::Zoom.first_period(10, 8), 0);
        assert_eq!(PlotWindow::Last(5).first_period(100, 8), 95);
        assert_eq!(PlotWindow::Last(0).first_period(100, 8), 99);
        assert_eq!(PlotWindow::Last(500).first_period(100, 8), 0);
    }
}
