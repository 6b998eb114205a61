//! The `deploy` step: points a campaign at a solution version, if the version
//! meets the campaign's metric floors. Otherwise the campaign stays where it was.

use serde::{Deserialize, Serialize};

use crate::group::Group;
use crate::solution;
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

/// A deploy guard: the new version against the live one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// An offline metric key, e.g. `precision_at_10`.
    pub metric: String,
    /// The least new/live ratio accepted (default 1: no worse).
    #[serde(default = "one")]
    pub min_ratio: f64,
}

fn one() -> f64 {
    1.0
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
    let p = &ctx.group.spec;
    let campaign = p
        .campaigns
        .get(&spec.campaign)
        .expect("validated: the campaign is declared");
    let wanted = spec
        .solution_version
        .or_else(|| ctx.trained_in_this_run(&campaign.solution));
    let record = solution::version_record(ctx.env, &campaign.solution, wanted).await?;
    let manifest = solution::manifest_of(&record)?;

    let mut below = Vec::new();
    for (metric, floor) in &campaign.min_metrics {
        let value = manifest.metrics.get(metric).copied().unwrap_or(0.0);
        if value < *floor {
            below.push(format!("{metric} = {value:.4} < {floor}"));
        }
    }
    let current = ctx.env.store.get_campaign(&spec.campaign).await.ok();
    if !below.is_empty() {
        let stays = match &current {
            Some(c) => format!("stays on {} v{}", c.solution, c.solution_version),
            None => "is not created".to_string(),
        };
        anyhow::bail!(
            "{} v{} is below the metric floors of campaign {} ({}); the campaign {stays}",
            campaign.solution,
            record.version,
            spec.campaign,
            below.join(", ")
        );
    }

    if let (Some(g), Some(c)) = (&spec.guard, &current)
        && c.solution_version != record.version
    {
        let live = solution::version_record(ctx.env, &c.solution, Some(c.solution_version)).await?;
        let live_value = solution::manifest_of(&live)?
            .metrics
            .get(&g.metric)
            .copied()
            .unwrap_or(0.0);
        let new_value = manifest.metrics.get(&g.metric).copied().unwrap_or(0.0);
        if new_value < live_value * g.min_ratio {
            anyhow::bail!(
                "guard: {} v{} has {} = {new_value:.4}, below {} × {live_value:.4} of the live {} v{}; campaign {} stays on v{}",
                campaign.solution,
                record.version,
                g.metric,
                g.min_ratio,
                c.solution,
                c.solution_version,
                spec.campaign,
                c.solution_version
            );
        }
        ctx.log(format!(
            "Guard passed: {} = {new_value:.4} vs live {live_value:.4} (min ratio {}).",
            g.metric, g.min_ratio
        ));
    }

    let config = serde_json::to_value(campaign)?;
    let previous = ctx
        .env
        .store
        .deploy_campaign(
            &spec.campaign,
            &p.dataset_group,
            &campaign.solution,
            record.version,
            &config,
            Some(ctx.run_id),
        )
        .await?;
    let was = match previous {
        Some(v) if v == record.version => " (unchanged)".to_string(),
        Some(v) => format!(" (was v{v})"),
        None => " (new campaign)".to_string(),
    };
    ctx.log(format!(
        "Campaign {} now serves {} v{}{was}.",
        spec.campaign, campaign.solution, record.version
    ));
    let mut outputs = serde_json::Map::new();
    outputs.insert("campaign".into(), spec.campaign.clone().into());
    outputs.insert("solution".into(), campaign.solution.clone().into());
    outputs.insert("deployed_version".into(), record.version.into());
    Ok(StepOutcome {
        summary: format!(
            "campaign {} → {} v{}{was}",
            spec.campaign, campaign.solution, record.version
        ),
        outputs,
    })
}
