//! The `train` step: a new solution version from the latest dataset versions.

use serde::{Deserialize, Serialize};

use crate::group::Group;
use crate::schema::DatasetType;
use crate::solution::{self, TrainJob, TrainingMode};
use crate::spec::SpecProblem;
use crate::spec::unknown;

use super::{StepContext, StepOutcome, thousands};

/// Settings of a `train` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The solution (declared under `solutions:`) to make a new version of.
    pub solution: String,
    /// `full` (default) trains from scratch with offline metrics; `update`
    /// folds new interactions, users and items into the latest version
    /// quickly (iALS is warm-started; other recipes retrain) and carries the
    /// metrics of the last full training.
    #[serde(default)]
    pub training_mode: TrainingMode,
}

pub fn validate(spec: &TrainSpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    if !group.spec.solutions.contains_key(&spec.solution) {
        problems.push(unknown(
            &format!("{at}.solution"),
            "solution",
            &spec.solution,
            group.spec.solutions.keys(),
        ));
    }
    if !group.spec.datasets.contains_key(&DatasetType::Interactions) {
        problems.push(SpecProblem::new(
            at,
            "training needs an `interactions` dataset declared under `datasets:`",
        ));
    }
    problems
}

pub async fn run(spec: &TrainSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let p = &ctx.group.spec;
    let declared = p
        .solutions
        .get(&spec.solution)
        .expect("validated: the solution is declared");
    ctx.log(format!(
        "Training {} with recipe {}.",
        spec.solution,
        declared.recipe.describe()
    ));
    let m = solution::train(
        ctx.env,
        TrainJob {
            training_mode: spec.training_mode,
            solution: &spec.solution,
            spec: declared,
            dataset_group: &p.dataset_group,
            run_id: Some(ctx.run_id),
            step_id: Some(ctx.step_id),
        },
    )
    .await?;
    ctx.log(format!(
        "Trained on {} interactions ({} users, {} items) in {:.2}s; metrics on {} test users: {}.",
        m.counts.interactions,
        m.counts.users,
        m.counts.items,
        m.training_seconds,
        m.test_users,
        serde_json::to_string(&m.metrics).unwrap_or_default()
    ));
    if let Some(t) = &m.tuning {
        for trial in &t.trials {
            let value = trial
                .metrics
                .as_ref()
                .and_then(|mm| mm.get(&t.objective))
                .map_or("failed".to_string(), |v| format!("{v:.4}"));
            let params = serde_json::to_string(&trial.params).unwrap_or_default();
            ctx.log(format!(
                "Trial {} {params}: {} = {value}",
                trial.recipe, t.objective
            ));
        }
        let best = &t.trials[t.best];
        let params = serde_json::to_string(&best.params).unwrap_or_default();
        ctx.log(format!(
            "Chose {} {params} on the validation split.",
            best.recipe
        ));
    }
    let metric = |k: &str| m.metrics.get(k).copied().unwrap_or(0.0);
    let mode = match m.updated_from {
        Some(v) => format!(
            ", updated from v{v}; metrics of v{}",
            m.metrics_from_version.unwrap_or(v)
        ),
        None => String::new(),
    };
    let summary = format!(
        "{} v{} ({}{mode}): {} interactions{}, precision@10 {:.4}, ndcg@10 {:.4}, coverage {:.4}",
        spec.solution,
        m.version,
        m.recipe,
        thousands(m.counts.interactions),
        match m.counts.tracked_events {
            0 => String::new(),
            n => format!(" ({} from tracked events)", thousands(n)),
        },
        metric("precision_at_10"),
        metric("normalized_discounted_cumulative_gain_at_10"),
        metric("coverage"),
    );
    let mut outputs = serde_json::Map::new();
    outputs.insert("solution".into(), spec.solution.clone().into());
    outputs.insert("solution_version".into(), m.version.into());
    outputs.insert("metrics".into(), serde_json::to_value(&m.metrics)?);
    Ok(StepOutcome { summary, outputs })
}
