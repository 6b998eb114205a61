//! The `batch_inference` step: recommendations for every line of an input,
//! written to storage in the managed service's JSON lines format.

use serde::{Deserialize, Serialize};

use crate::batch::{BatchJob, run_batch};
use crate::campaign::{DEFAULT_NUM_RESULTS, MAX_NUM_RESULTS, Recommender};
use crate::dataset::import::resolve_sources;
use crate::pipeline::SpecProblem;
use crate::pipeline::validate::{ValidationContext, unknown};
use crate::storage::StorageUrl;

use super::{StepContext, StepOutcome, thousands};

/// Settings of a `batch_inference` step. Give `campaign` (serve what it
/// serves) or `solution` (a version of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInferenceSpec {
    /// Use the solution version this campaign serves.
    #[serde(default)]
    pub campaign: Option<String>,
    /// Or use this solution: the version a `train` step of this run made,
    /// else `solution_version`, else the latest active one.
    #[serde(default)]
    pub solution: Option<String>,
    #[serde(default)]
    pub solution_version: Option<i64>,
    /// JSON lines input: one object (`.../users.jsonl`) or a prefix ending in `/`.
    /// Lines: `{"userId": "..."}`, `{"itemId": "..."}`, or
    /// `{"userId": "...", "itemList": [...]}` to re-rank a list.
    pub input: String,
    /// Output prefix; `<input name>.out` files, `_manifest.json` and
    /// `_SUCCESS` are written under it. Default:
    /// `<warehouse>/exports/<pipeline>/<step id>/run-<run id>/`.
    #[serde(default)]
    pub output: Option<String>,
    /// Items per line, 1 to 500 (default 25).
    #[serde(default = "default_num_results")]
    pub num_results: usize,
}

fn default_num_results() -> usize {
    DEFAULT_NUM_RESULTS
}

pub fn validate(spec: &BatchInferenceSpec, at: &str, ctx: &ValidationContext) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    match (&spec.campaign, &spec.solution) {
        (Some(c), None) => {
            if !ctx.spec.campaigns.contains_key(c) {
                problems.push(unknown(
                    &format!("{at}.campaign"),
                    "campaign",
                    c,
                    ctx.spec.campaigns.keys(),
                ));
            }
            if spec.solution_version.is_some() {
                problems.push(SpecProblem::new(
                    format!("{at}.solution_version"),
                    "goes with `solution`, not `campaign`",
                ));
            }
        }
        (None, Some(s)) => {
            if !ctx.spec.solutions.contains_key(s) {
                problems.push(unknown(
                    &format!("{at}.solution"),
                    "solution",
                    s,
                    ctx.spec.solutions.keys(),
                ));
            }
        }
        _ => problems.push(SpecProblem::new(at, "give either `campaign` or `solution`")),
    }
    if spec.num_results == 0 || spec.num_results > MAX_NUM_RESULTS {
        problems.push(SpecProblem::new(
            format!("{at}.num_results"),
            format!("must be between 1 and {MAX_NUM_RESULTS}"),
        ));
    }
    if let Err(e) = StorageUrl::parse(&spec.input, ctx.base_dir) {
        problems.push(SpecProblem::new(format!("{at}.input"), e.to_string()));
    }
    if let Some(out) = &spec.output
        && let Err(e) = StorageUrl::parse(out, ctx.base_dir)
    {
        problems.push(SpecProblem::new(format!("{at}.output"), e.to_string()));
    }
    problems
}

pub async fn run(spec: &BatchInferenceSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let env = ctx.env;
    let recommender = match (&spec.campaign, &spec.solution) {
        (Some(c), _) => Recommender::for_campaign(env, c).await?.1,
        (None, Some(s)) => {
            let version = spec.solution_version.or_else(|| ctx.trained_in_this_run(s));
            Recommender::for_solution(env, s, version).await?
        }
        (None, None) => unreachable!("validated: campaign or solution"),
    };
    let base_dir = ctx.pipeline.base_dir();
    let inputs = resolve_sources(env, &spec.input, &base_dir).await?;
    let input_url = StorageUrl::parse(&spec.input, &base_dir)?;
    let input_root = env.storage.open(&input_url)?;
    let named = inputs
        .into_iter()
        .map(|loc| {
            let rel = loc
                .url()
                .strip_prefix(input_root.url())
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string();
            let name = if rel.is_empty() {
                loc.file_name().to_string()
            } else {
                rel
            };
            (loc, name)
        })
        .collect();
    let output = match &spec.output {
        Some(o) => env.storage.open_str(o, &base_dir)?,
        None => env.warehouse.child(&format!(
            "exports/{}/{}/run-{}",
            ctx.pipeline.spec.name, ctx.step_id, ctx.run_id
        )),
    };
    ctx.log(format!(
        "Scoring {} with {} v{} (top {}), writing to {}.",
        spec.input, recommender.solution, recommender.version, spec.num_results, output
    ));
    let manifest = run_batch(BatchJob {
        recommender: &recommender,
        campaign: spec.campaign.as_deref(),
        inputs: named,
        output: &output,
        num_results: spec.num_results,
        run_id: Some(ctx.run_id),
    })
    .await?;
    let c = &manifest.counts;
    ctx.log(format!(
        "Wrote {} lines ({} with errors) to {}.",
        c.lines_out,
        c.errors,
        manifest.outputs.join(", ")
    ));
    let mut outputs = serde_json::Map::new();
    outputs.insert("output".into(), output.url().into());
    outputs.insert("lines".into(), c.lines_out.into());
    outputs.insert("errors".into(), c.errors.into());
    Ok(StepOutcome {
        summary: format!(
            "{} lines ({} errors) with {} v{} → {}/",
            thousands(c.lines_out),
            thousands(c.errors),
            recommender.solution,
            recommender.version,
            output
        ),
        outputs,
    })
}
