//! The `deploy` step: points a campaign at a solution version, if the version
//! meets the campaign's metric floors and the guard (`campaign::deploy`).
//! Otherwise the campaign stays where it was.

use serde::{Deserialize, Serialize};

use crate::campaign::{self, Deployment, GuardSpec};
use crate::group::Group;
use crate::spec::SpecProblem;
use crate::spec::unknown;

use super::{StepContext, StepOutcome};

/// Settings of a `deploy` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySpec {
    /// The campaign (declared under `campaigns:`) to update.
    pub campaign: String,
    /// The solution version to serve. Default: the version a `train` step of
    /// this run made for the campaign's solution, else the latest active one.
    #[serde(default)]
    pub solution_version: Option<i64>,
    /// Compare with the version the campaign serves now: the pointer moves
    /// only if the new version's `metric` is at least `min_ratio` times the
    /// live one's, e.g. `{metric: normalized_discounted_cumulative_gain_at_10,
    /// min_ratio: 0.95}`.
    #[serde(default)]
    pub guard: Option<GuardSpec>,
}

pub fn validate(spec: &DeploySpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    if !group.spec.campaigns.contains_key(&spec.campaign) {
        problems.push(unknown(
            &format!("{at}.campaign"),
            "campaign",
            &spec.campaign,
            group.spec.campaigns.keys(),
        ));
    }
    if let Some(g) = &spec.guard {
        if !crate::eval::is_known_metric(&g.metric) {
            problems.push(SpecProblem::new(
                format!("{at}.guard.metric"),
                format!(
                    "unknown metric {:?}; known metrics: {}",
                    g.metric,
                    crate::eval::METRIC_KEYS.join(", ")
                ),
            ));
        }
        if !(g.min_ratio > 0.0 && g.min_ratio <= 10.0) {
            problems.push(SpecProblem::new(
                format!("{at}.guard.min_ratio"),
                "must be a ratio above 0 (e.g. 0.95)",
            ));
        }
    }
    if spec.solution_version.is_some_and(|v| v < 1) {
        problems.push(SpecProblem::new(
            format!("{at}.solution_version"),
            "versions start at 1",
        ));
    }
    problems
}

pub async fn run(spec: &DeploySpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let settings = ctx
        .group
        .spec
        .campaigns
        .get(&spec.campaign)
        .expect("validated: the campaign is declared");
    let deployed = campaign::deploy(
        ctx.env,
        Deployment {
            campaign: &spec.campaign,
            spec: settings,
            dataset_group: ctx.group.name(),
            version: spec
                .solution_version
                .or_else(|| ctx.trained_in_this_run(&settings.solution)),
            guard: spec.guard.as_ref(),
            run_id: Some(ctx.run_id),
        },
    )
    .await?;
    if let Some((metric, new, live, ratio)) = &deployed.guard {
        ctx.log(format!(
            "Guard passed: {metric} = {new:.4} vs live {live:.4} (min ratio {ratio})."
        ));
    }
    let was = match deployed.previous {
        Some(v) if v == deployed.version => " (unchanged)".to_string(),
        Some(v) => format!(" (was v{v})"),
        None => " (new campaign)".to_string(),
    };
    ctx.log(format!(
        "Campaign {} now serves {} v{}{was}.",
        spec.campaign, deployed.solution, deployed.version
    ));
    let mut outputs = serde_json::Map::new();
    outputs.insert("campaign".into(), spec.campaign.clone().into());
    outputs.insert("solution".into(), deployed.solution.clone().into());
    outputs.insert("deployed_version".into(), deployed.version.into());
    Ok(StepOutcome {
        summary: format!(
            "campaign {} → {} v{}{was}",
            spec.campaign, deployed.solution, deployed.version
        ),
        outputs,
    })
}
