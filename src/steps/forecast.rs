//! The `forecast` step: quantile forecasts for every item over the
//! predictor's horizon, exported to storage as CSV or Parquet
//! (`item_id, date, p10, p50, p90, mean`) and published whole or not at all.

use serde::{Deserialize, Serialize};

use crate::forecast::job::{self, ForecastFormat, ForecastJob};
use crate::group::Group;
use crate::spec::SpecProblem;
use crate::storage::StorageUrl;

use super::batch_inference::output_location;
use super::{StepContext, StepOutcome, thousands};

/// Settings of a `forecast` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSpec {
    /// The predictor: the version a `forecast_train` step of this run made,
    /// else `predictor_version`, else the latest active one.
    pub predictor: String,
    #[serde(default)]
    pub predictor_version: Option<i64>,
    /// Output prefix. Default: `<warehouse>/exports/<pipeline>/<step id>/run-<run id>/`.
    #[serde(default)]
    pub output: Option<String>,
    /// `csv` (default) or `parquet`.
    #[serde(default)]
    pub output_format: ForecastFormat,
    /// SVG plots (history, the median forecast, the bands between the
    /// predictor's quantiles, backtest windows) of the items with the
    /// largest total target, under `plots/` (default 0).
    #[serde(default)]
    pub plot_top: usize,
}

/// More plots than this would be a report nobody opens.
const MAX_PLOTS: usize = 1000;

pub fn validate(spec: &ForecastSpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems: Vec<SpecProblem> =
        super::forecast_train::check_predictor(&spec.predictor, at, group)
            .into_iter()
            .collect();
    if let Some(o) = &spec.output
        && let Err(e) = StorageUrl::parse(o, &group.base_dir)
    {
        problems.push(SpecProblem::new(format!("{at}.output"), e.to_string()));
    }
    if spec.plot_top > MAX_PLOTS {
        problems.push(SpecProblem::new(
            format!("{at}.plot_top"),
            format!("at most {MAX_PLOTS}"),
        ));
    }
    problems
}

pub async fn run(spec: &ForecastSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let version = ctx
        .upstream
        .values()
        .find_map(|o| {
            (o.get("predictor")?.as_str()? == spec.predictor)
                .then(|| o.get("predictor_version")?.as_i64())
                .flatten()
        })
        .or(spec.predictor_version);
    let output = output_location(ctx, spec.output.as_deref())?;
    ctx.log(format!(
        "Forecasting with predictor {}{} to {}.",
        spec.predictor,
        version.map_or(String::new(), |v| format!(" v{v}")),
        output.url()
    ));
    let m = job::forecast(
        ctx.env,
        ForecastJob {
            predictor: &spec.predictor,
            version,
            output: output.clone(),
            format: spec.output_format,
            plot_top: spec.plot_top,
            run_id: Some(ctx.run_id),
        },
    )
    .await?;
    let summary = format!(
        "{} items × {} periods ({} to {}) from {} v{} → {} ({} rows{}) in {:.2}s",
        thousands(m.items),
        m.horizon,
        m.first_date,
        m.last_date,
        m.predictor,
        m.predictor_version,
        output.url(),
        thousands(m.rows),
        match m.plots.len() {
            0 => String::new(),
            n => format!(", {n} plots"),
        },
        m.seconds
    );
    let mut outputs = serde_json::Map::new();
    outputs.insert("output".into(), output.url().into());
    outputs.insert("rows".into(), m.rows.into());
    outputs.insert("items".into(), m.items.into());
    outputs.insert("predictor_version".into(), m.predictor_version.into());
    Ok(StepOutcome { summary, outputs })
}
