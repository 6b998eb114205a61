//! Predictors and their forecasts: predictor versions with backtest
//! accuracy per algorithm, the items with the worst accuracy, an item
//! search, and one item's plot.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;

use super::{OpsError, OpsResult, Page, PageAsk, versions_page};
use crate::config::Env;
pub use crate::forecast::job::PlotWindow;
use crate::forecast::job::{self, PredictorManifest};
use crate::forecast::plot;
pub use crate::forecast::plot::PlotFormat;
use crate::store::{VersionKind, VersionQuery, VersionStatus};

/// A predictor version as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct PredictorVersion {
    pub predictor: String,
    pub version: i64,
    pub status: VersionStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub manifest: Option<PredictorManifest>,
}

/// A page of predictor versions (of one predictor, if given), by
/// predictor, each one's newest first.
pub async fn versions(
    env: &Env,
    predictor: Option<&str>,
    ask: &PageAsk,
) -> OpsResult<Page<PredictorVersion>> {
    let page = versions_page(env, VersionKind::Predictor, predictor, ask).await?;
    Ok(page.map(|v| PredictorVersion {
        predictor: v.owner,
        version: v.version,
        status: v.status,
        created_at: v.created_at,
        manifest: v.manifest.and_then(|m| serde_json::from_value(m).ok()),
    }))
}

/// The predictor a command means: the one named, or the only one there is.
pub async fn resolve(env: &Env, predictor: Option<&str>) -> OpsResult<String> {
    if let Some(p) = predictor {
        return Ok(p.to_string());
    }
    // The first predictor by name, then whether any other follows it.
    let first_of = async |after: Option<&str>| -> OpsResult<Option<String>> {
        let query = VersionQuery {
            after: after.map(|owner| (owner, i64::MIN)),
            limit: 1,
            ..VersionQuery::all(VersionKind::Predictor, None)
        };
        let found = env.store.list_versions(&query).await?;
        Ok(found.into_iter().next().map(|v| v.owner))
    };
    let mut names = Vec::new();
    if let Some(first) = first_of(None).await? {
        names.extend(first_of(Some(&first)).await?);
        names.insert(0, first);
    }
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(OpsError::NotFound(
            "no predictor has been trained yet; run a forecast_train step first".into(),
        )),
        many => Err(OpsError::Invalid(format!(
            "several predictors exist ({}, ...); name one",
            many.join(", ")
        ))),
    }
}

/// A predictor version's manifest: the choice, every candidate's backtest
/// accuracy, the data and the settings.
pub async fn metrics(
    env: &Env,
    predictor: &str,
    version: Option<i64>,
) -> OpsResult<PredictorManifest> {
    Ok(job::manifest(env, predictor, version).await?)
}

/// One item's backtest accuracy as `items.csv` records it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemAccuracy {
    pub item_id: String,
    pub algorithm: String,
    pub average_wql: f64,
    pub windows: String,
}

/// The items of a predictor version, with their algorithm and backtest
/// accuracy: those whose id contains `search` (all when empty), the worst
/// first, at most `limit`. Items without a backtest score are left out.
pub async fn items(
    env: &Env,
    m: &PredictorManifest,
    search: &str,
    limit: usize,
) -> OpsResult<Vec<ItemAccuracy>> {
    let folder =
        job::predictors_location(&env.warehouse, &m.predictor).child(&format!("v{}", m.version));
    let bytes = folder.child(job::ITEMS_FILE).get().await?;
    let mut reader = csv::Reader::from_reader(bytes.as_ref());
    let needle = search.to_lowercase();
    let mut items = Vec::new();
    for record in reader.records() {
        let r = record.map_err(|e| OpsError::Internal(format!("{}: {e}", job::ITEMS_FILE)))?;
        if !needle.is_empty() && !r[0].to_lowercase().contains(&needle) {
            continue;
        }
        items.push(ItemAccuracy {
            item_id: r[0].to_string(),
            algorithm: r[1].to_string(),
            average_wql: r[3].parse().unwrap_or(f64::NAN),
            windows: r[2].to_string(),
        });
    }
    items.retain(|i| i.average_wql.is_finite());
    items.sort_by(|a, b| b.average_wql.total_cmp(&a.average_wql));
    items.truncate(limit);
    Ok(items)
}

/// An SVG of one item: its history (as much as `window` shows), the
/// forecast's median and the bands of the quantiles the predictor
/// produces, and the backtest windows.
pub async fn plot(
    env: &Env,
    predictor: &str,
    version: Option<i64>,
    item: &str,
    window: PlotWindow,
) -> OpsResult<String> {
    Ok(plot_of_version(env, predictor, version, item, window)
        .await?
        .0)
}

/// The plot's SVG and the predictor version it shows.
async fn plot_of_version(
    env: &Env,
    predictor: &str,
    version: Option<i64>,
    item: &str,
    window: PlotWindow,
) -> OpsResult<(String, i64)> {
    // The manifest first: an unknown predictor is a 404, not a failed load.
    job::manifest(env, predictor, version).await?;
    let loaded = job::load(env, predictor, version)
        .await
        .map_err(super::internal)?;
    let index = loaded.panel.item_index(item).ok_or_else(|| {
        let some: Vec<&str> = loaded
            .panel
            .items
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        OpsError::NotFound(format!(
            "predictor {predictor} v{} has no item {item:?} ({} items, e.g. {})",
            loaded.manifest.version,
            loaded.panel.items.len(),
            some.join(", ")
        ))
    })?;
    let version = loaded.manifest.version;
    let svg = job::plot(env, Arc::new(loaded), index, window)
        .await
        .map_err(super::internal)?;
    Ok((svg, version))
}

/// Where [`write_plot`] writes, and in which format.
#[derive(Debug, Clone, Default)]
pub struct PlotFile {
    /// A file (`*.svg`, `*.png`: its extension gives the format) or a
    /// folder; by default `<home>/plots/<predictor>/v<version>/`.
    pub out: Option<PathBuf>,
    /// The format when `out` is not a file name with one (default SVG).
    pub format: Option<PlotFormat>,
}

/// Writes one item's plot to a file and returns its path: by default
/// `<home>/plots/<predictor>/v<version>/<item>.<svg|png>`, never the
/// current folder.
pub async fn write_plot(
    env: &Env,
    predictor: &str,
    version: Option<i64>,
    item: &str,
    window: PlotWindow,
    file: &PlotFile,
) -> OpsResult<PathBuf> {
    let named = file.out.as_deref().and_then(PlotFormat::of_path);
    let format = match (named, file.format) {
        (Some(n), Some(f)) if n != f => {
            return Err(OpsError::Invalid(format!(
                "--out {} names a {} file but --format is {}",
                file.out
                    .as_ref()
                    .map(|o| o.display().to_string())
                    .unwrap_or_default(),
                n.extension(),
                f.extension()
            )));
        }
        (Some(n), _) => n,
        (None, f) => f.unwrap_or_default(),
    };
    let (svg, version) = plot_of_version(env, predictor, version, item, window).await?;
    let name = format!("{}.{}", job::file_safe(item), format.extension());
    let path = match (&file.out, named) {
        (Some(out), Some(_)) => out.clone(),
        (Some(dir), None) => dir.join(name),
        (None, _) => env
            .settings
            .home
            .join("plots")
            .join(job::file_safe(predictor))
            .join(format!("v{version}"))
            .join(name),
    };
    let target = path.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        plot::write_file(&target, &format.encode(&svg)?)
    })
    .await
    .map_err(|e| OpsError::Internal(e.to_string()))?
    .map_err(super::internal)?;
    Ok(path)
}
