//! The `batch_segment` step: for each input line, the users most likely to
//! interact with an item (`{"itemId"}`) or with the items an attribute
//! expression matches (`{"itemAttributes": "ITEMS.GENRES = \"Comedy\""}`),
//! written as the managed service's `{"input", "output": {"recommendedUsers"}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch_inference::{
    batch_filter, default_part_lines, inputs, outcome, output_location, recommender,
    validate_filter, validate_locations, validate_model,
};
use super::{StepContext, StepOutcome};
use crate::batch::{BatchJob, BatchSettings, JobKind, OutputFormat, run_batch};
use crate::group::Group;
use crate::spec::SpecProblem;

/// Settings of a `batch_segment` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSegmentSpec {
    /// The solution (an `item-affinity` or `item-attribute-affinity` recipe).
    pub solution: String,
    /// Default: the version a `train` step of this run made, else the latest.
    #[serde(default)]
    pub solution_version: Option<i64>,
    /// JSON lines: `{"itemId": "..."}` or `{"itemAttributes": "..."}`; one object or a prefix.
    pub input: String,
    /// Output prefix (default under the warehouse's `exports/`).
    #[serde(default)]
    pub output: Option<String>,
    /// Users per segment (default 25, at most 100,000).
    #[serde(default = "default_users")]
    pub num_results: usize,
    /// A new output part every this many lines (default 1,000,000).
    #[serde(default = "default_part_lines")]
    pub part_lines: u64,
    /// A UserID filter declared under `filters:`: only users it allows are returned.
    #[serde(default)]
    pub filter: Option<String>,
    /// Values of the filter's `$PARAMS`; a line's own `filterValues` override them.
    #[serde(default)]
    pub filter_values: BTreeMap<String, String>,
}

fn default_users() -> usize {
    25
}

pub fn validate(spec: &BatchSegmentSpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems = validate_model(None, Some(&spec.solution), spec.solution_version, at, group);
    if let Some(s) = group.spec.solutions.get(&spec.solution)
        && let crate::group::SolutionRecipe::One { recipe, .. } = &s.recipe
        && !recipe.is_segment()
    {
        problems.push(SpecProblem::new(
            format!("{at}.solution"),
            format!(
                "{} uses {}; segments need item-affinity or item-attribute-affinity",
                spec.solution,
                recipe.name()
            ),
        ));
    }
    if let Err(e) = JobKind::Segments.check_num_results(spec.num_results) {
        problems.push(SpecProblem::new(format!("{at}.num_results"), e));
    }
    problems.extend(validate_locations(
        Some(&spec.input),
        spec.output.as_deref(),
        spec.part_lines,
        at,
        group,
    ));
    problems.extend(validate_filter(
        spec.filter.as_ref(),
        &spec.filter_values,
        crate::filter::Target::UserId,
        false,
        at,
        group,
    ));
    problems
}

pub async fn run(spec: &BatchSegmentSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let rec = recommender(ctx, None, Some(&spec.solution), spec.solution_version).await?;
    let output = output_location(ctx, spec.output.as_deref())?;
    let settings = BatchSettings {
        input_format: None,
        user_column: String::new(),
        output_format: OutputFormat::Json,
        num_results: spec.num_results,
        part_lines: spec.part_lines,
        item_metadata: Vec::new(),
    };
    ctx.log(format!(
        "Segments for {} with {} v{} (top {} users), writing to {output}.",
        spec.input, rec.solution, rec.version, spec.num_results
    ));
    let manifest = run_batch(BatchJob {
        recommender: &rec,
        campaign: None,
        kind: JobKind::Segments,
        input: inputs(ctx, &spec.input).await?,
        output: &output,
        settings: &settings,
        metadata_values: Default::default(),
        filter: batch_filter(ctx, spec.filter.as_ref(), &spec.filter_values, &rec).await?,
        run_id: Some(ctx.run_id),
    })
    .await?;
    ctx.log(format!("Wrote {}.", manifest.outputs.join(", ")));
    Ok(outcome(&manifest, &output))
}
