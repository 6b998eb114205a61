//! The `forecast_train` step: a new predictor version, backtested and
//! chosen, from the latest time series dataset versions.

use serde::{Deserialize, Serialize};

use crate::forecast::job::{self, TrainJob};
use crate::group::Group;
use crate::schema::DatasetType;
use crate::spec::SpecProblem;
use crate::spec::unknown;

use super::{StepContext, StepOutcome, thousands};

/// Settings of a `forecast_train` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastTrainSpec {
    /// The predictor (declared under `predictors:`) to make a new version of.
    pub predictor: String,
}

/// A step's `predictor` must be declared under `predictors:`.
pub(super) fn check_predictor(name: &str, at: &str, ctx: &Group) -> Option<SpecProblem> {
    (!ctx.spec.predictors.contains_key(name)).then(|| {
        unknown(
            &format!("{at}.predictor"),
            "predictor",
            name,
            ctx.spec.predictors.keys(),
        )
    })
}

pub fn validate(spec: &ForecastTrainSpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems: Vec<SpecProblem> = check_predictor(&spec.predictor, at, group)
        .into_iter()
        .collect();
    if !group
        .spec
        .datasets
        .contains_key(&DatasetType::TargetTimeSeries)
    {
        problems.push(SpecProblem::new(
            at,
            "forecast training needs a `target_time_series` dataset declared under `datasets:`",
        ));
    }
    problems
}

/// `0.1234` → `0.1234`, `None` → `-`.
pub fn metric(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

pub async fn run(spec: &ForecastTrainSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let p = &ctx.group.spec;
    let declared = p
        .predictors
        .get(&spec.predictor)
        .expect("validated: the predictor is declared");
    let series = p
        .series_settings()
        .expect("validated: the target_time_series has a frequency");
    ctx.log(format!(
        "Training predictor {} ({}, horizon {}, {} backtest window(s), quantiles {:?}).",
        spec.predictor,
        declared.algorithm,
        declared.horizon,
        declared.backtest_windows,
        declared.quantiles
    ));
    let m = job::train(
        ctx.env,
        TrainJob {
            predictor: &spec.predictor,
            spec: declared,
            series,
            dataset_group: &p.dataset_group,
            has_related: p.datasets.contains_key(&DatasetType::RelatedTimeSeries),
            has_items: p.datasets.contains_key(&DatasetType::Items),
            run_id: Some(ctx.run_id),
            step_id: Some(ctx.step_id),
        },
    )
    .await?;
    for c in &m.candidates {
        let fell_back = if c.fallback_series > 0 {
            format!(
                " ({} series too short for it forecast by seasonal_naive)",
                thousands(c.fallback_series)
            )
        } else {
            String::new()
        };
        ctx.log(format!(
            "Backtest {}: average wQL {}, WAPE {}, RMSE {}, MASE {}{fell_back}.",
            c.algorithm,
            metric(c.metrics.average_wql),
            metric(c.metrics.wape),
            metric(c.metrics.rmse),
            metric(c.metrics.mase)
        ));
    }
    let served: Vec<String> = m
        .method_counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let summary = format!(
        "{} v{} ({}): {} items × {} periods, {}; average wQL {}, WAPE {}, MASE {}",
        m.predictor,
        m.version,
        m.chosen,
        thousands(m.items),
        thousands(m.periods),
        served.join(", "),
        metric(m.metrics.average_wql),
        metric(m.metrics.wape),
        metric(m.metrics.mase),
    );
    let mut outputs = serde_json::Map::new();
    outputs.insert("predictor".into(), m.predictor.clone().into());
    outputs.insert("predictor_version".into(), m.version.into());
    outputs.insert("algorithm".into(), m.chosen.clone().into());
    outputs.insert("metrics".into(), serde_json::to_value(&m.metrics)?);
    Ok(StepOutcome { summary, outputs })
}
