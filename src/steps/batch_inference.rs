//! The `batch_inference` step: recommendations for every line of an input,
//! or for every known user, written to storage in the managed service's JSON
//! lines format or as CSV / Parquet rows.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::batch::{
    BatchFilter, BatchInput, BatchJob, BatchManifest, BatchSettings, InputFormat, JobKind,
    OutputFormat, run_batch,
};
use crate::campaign::{DEFAULT_NUM_RESULTS, Recommender};
use crate::dataset::import::resolve_sources;
use crate::filter::{Target, load_data, parse_filter_values};
use crate::group::Group;
use crate::schema::DatasetType;
use crate::spec::SpecProblem;
use crate::spec::unknown;
use crate::storage::{Location, StorageUrl};

use super::{StepContext, StepOutcome, thousands};

/// `users: all`: every user the solution version knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsersSpec {
    All,
}

/// Settings of a `batch_inference` step. Give `campaign` (serve what it
/// serves, with its exploration) or `solution` (a version of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchInferenceSpec {
    /// Use the solution version this campaign serves.
    #[serde(default)]
    pub campaign: Option<String>,
    /// Or this solution: the version a `train` step of this run made, else
    /// `solution_version`, else the latest active one.
    #[serde(default)]
    pub solution: Option<String>,
    #[serde(default)]
    pub solution_version: Option<i64>,
    /// One object or a prefix ending in `/`: JSON lines (`{"userId": "..."}`,
    /// `{"itemId": "..."}`, `{"userId": "...", "itemList": [...]}`), or CSV /
    /// Parquet with a `user_column`; `.gz` files are decompressed.
    #[serde(default)]
    pub input: Option<String>,
    /// `all`: every known user, without an input file (instead of `input`).
    #[serde(default)]
    pub users: Option<UsersSpec>,
    /// `json`, `csv` or `parquet`; default from each object's name.
    #[serde(default)]
    pub input_format: Option<InputFormat>,
    /// The user id column of CSV and Parquet inputs (default `USER_ID`).
    #[serde(default = "default_user_column")]
    pub user_column: String,
    /// Output prefix. Default: `<warehouse>/exports/<pipeline>/<step id>/run-<run id>/`.
    #[serde(default)]
    pub output: Option<String>,
    /// `json` (default: the managed service's lines), `csv` or `parquet`
    /// (rows `user_id, rank, item_id, score`).
    #[serde(default)]
    pub output_format: OutputFormat,
    /// Items per line, 1 to 500 (default 25).
    #[serde(default = "default_num_results")]
    pub num_results: usize,
    /// A new output part every this many lines (default 1,000,000).
    #[serde(default = "default_part_lines")]
    pub part_lines: u64,
    /// Items dataset columns added to CSV and Parquet rows, e.g. `[TITLE]`.
    #[serde(default)]
    pub item_metadata: Vec<String>,
    /// A filter declared under `filters:` (ItemID), applied to every line.
    #[serde(default)]
    pub filter: Option<String>,
    /// Values of the filter's `$PARAMS` for every line, in the managed
    /// service's form (`GENRE: '"Comedy","Drama"'`); a line's own
    /// `filterValues` override them.
    #[serde(default)]
    pub filter_values: BTreeMap<String, String>,
}

fn default_num_results() -> usize {
    DEFAULT_NUM_RESULTS
}
pub(crate) fn default_user_column() -> String {
    "USER_ID".into()
}
pub(crate) fn default_part_lines() -> u64 {
    1_000_000
}

pub fn validate(spec: &BatchInferenceSpec, at: &str, group: &Group) -> Vec<SpecProblem> {
    let mut problems = validate_model(
        spec.campaign.as_ref(),
        spec.solution.as_ref(),
        spec.solution_version,
        at,
        group,
    );
    if let Err(e) = JobKind::Recommendations.check_num_results(spec.num_results) {
        problems.push(SpecProblem::new(format!("{at}.num_results"), e));
    }
    match (&spec.input, spec.users) {
        (Some(_), Some(_)) => problems.push(SpecProblem::new(
            at,
            "give `input` or `users: all`, not both",
        )),
        (None, None) => problems.push(SpecProblem::new(
            at,
            "give `input` (an object or prefix) or `users: all`",
        )),
        _ => {}
    }
    if !spec.item_metadata.is_empty() && spec.output_format == OutputFormat::Json {
        problems.push(SpecProblem::new(
            format!("{at}.item_metadata"),
            "needs output_format csv or parquet",
        ));
    }
    if !spec.item_metadata.is_empty() && !group.spec.datasets.contains_key(&DatasetType::Items) {
        problems.push(SpecProblem::new(
            format!("{at}.item_metadata"),
            "needs an items dataset declared under `datasets:`",
        ));
    } else if let Some(schema) = group.schemas.get(&DatasetType::Items) {
        for (i, c) in spec.item_metadata.iter().enumerate() {
            if schema.field(c).is_none() {
                problems.push(SpecProblem::new(
                    format!("{at}.item_metadata[{i}]"),
                    format!("{c:?} is not a field of the items schema"),
                ));
            }
        }
    }
    problems.extend(validate_locations(
        spec.input.as_deref(),
        spec.output.as_deref(),
        spec.part_lines,
        at,
        group,
    ));
    problems.extend(validate_filter(
        spec.filter.as_ref(),
        &spec.filter_values,
        Target::ItemId,
        spec.users.is_some(),
        at,
        group,
    ));
    problems
}

/// Checks a batch step's `filter` and `filter_values`; with
/// `no_line_values` (no input lines to carry `filterValues`), every
/// parameter an INCLUDE expression needs must be in `filter_values`.
pub(crate) fn validate_filter(
    filter: Option<&String>,
    values: &BTreeMap<String, String>,
    target: Target,
    no_line_values: bool,
    at: &str,
    group: &Group,
) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let Some(name) = filter else {
        if !values.is_empty() {
            problems.push(SpecProblem::new(
                format!("{at}.filter_values"),
                "given without a `filter`",
            ));
        }
        return problems;
    };
    if !group.spec.filters.contains_key(name) {
        problems.push(unknown(
            &format!("{at}.filter"),
            "filter",
            name,
            group.spec.filters.keys(),
        ));
        return problems;
    }
    if let Err(e) = parse_filter_values(values) {
        problems.push(SpecProblem::new(format!("{at}.filter_values"), e));
    }
    // A filter that failed its own checks is reported under `filters:`.
    let Some(f) = group.filters.get(name) else {
        return problems;
    };
    if f.target() != target {
        problems.push(SpecProblem::new(
            format!("{at}.filter"),
            match target {
                Target::ItemId => {
                    format!("{name} selects users (UserID); recommendations need an ItemID filter")
                }
                Target::UserId => {
                    format!("{name} selects items (ItemID); segments need a UserID filter")
                }
            },
        ));
    }
    if no_line_values {
        let missing: Vec<String> = f
            .params()
            .into_iter()
            .filter(|(p, needed)| *needed && !values.contains_key(p))
            .map(|(p, _)| format!("${p}"))
            .collect();
        if !missing.is_empty() {
            problems.push(SpecProblem::new(
                format!("{at}.filter_values"),
                format!("filter {name} needs {}", missing.join(", ")),
            ));
        }
    }
    problems
}

/// The step's filter, with what it reads loaded for the solution version.
pub(crate) async fn batch_filter(
    ctx: &StepContext<'_>,
    name: Option<&String>,
    values: &BTreeMap<String, String>,
    rec: &Recommender,
) -> anyhow::Result<Option<BatchFilter>> {
    let Some(name) = name else {
        return Ok(None);
    };
    let filter = ctx
        .group
        .filters
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("unknown filter {name:?}"))?
        .clone();
    let data = load_data(
        ctx.env,
        &ctx.group.spec.dataset_group,
        &rec.model.items,
        &rec.model.users,
        std::iter::once(&filter),
    )
    .await?;
    ctx.log(format!(
        "Filter {name}: {}",
        ctx.group.spec.filters[name].expression
    ));
    Ok(Some(BatchFilter {
        name: name.clone(),
        filter,
        data: std::sync::Arc::new(data),
        values: values.clone(),
    }))
}

pub(crate) fn validate_model(
    campaign: Option<&String>,
    solution: Option<&String>,
    version: Option<i64>,
    at: &str,
    group: &Group,
) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    match (campaign, solution) {
        (Some(c), None) => {
            if !group.spec.campaigns.contains_key(c) {
                problems.push(unknown(
                    &format!("{at}.campaign"),
                    "campaign",
                    c,
                    group.spec.campaigns.keys(),
                ));
            }
            if version.is_some() {
                problems.push(SpecProblem::new(
                    format!("{at}.solution_version"),
                    "goes with `solution`, not `campaign`",
                ));
            }
        }
        (None, Some(s)) => {
            if !group.spec.solutions.contains_key(s) {
                problems.push(unknown(
                    &format!("{at}.solution"),
                    "solution",
                    s,
                    group.spec.solutions.keys(),
                ));
            }
        }
        _ => problems.push(SpecProblem::new(at, "give either `campaign` or `solution`")),
    }
    problems
}

pub(crate) fn validate_locations(
    input: Option<&str>,
    output: Option<&str>,
    part_lines: u64,
    at: &str,
    group: &Group,
) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    for (key, value) in [("input", input), ("output", output)] {
        if let Some(v) = value
            && let Err(e) = StorageUrl::parse(v, &group.base_dir)
        {
            problems.push(SpecProblem::new(format!("{at}.{key}"), e.to_string()));
        }
    }
    if part_lines == 0 {
        problems.push(SpecProblem::new(
            format!("{at}.part_lines"),
            "must be at least 1",
        ));
    }
    problems
}

/// The model a batch step uses.
pub(crate) async fn recommender(
    ctx: &StepContext<'_>,
    campaign: Option<&String>,
    solution: Option<&String>,
    version: Option<i64>,
) -> anyhow::Result<Recommender> {
    match (campaign, solution) {
        (Some(c), _) => Ok(Recommender::for_campaign(ctx.env, c).await?.1),
        (None, Some(s)) => {
            let version = version.or_else(|| ctx.trained_in_this_run(s));
            Ok(Recommender::for_solution(ctx.env, s, version).await?)
        }
        (None, None) => unreachable!("validated: campaign or solution"),
    }
}

/// The input objects, each with the name its outputs get.
pub(crate) async fn inputs(ctx: &StepContext<'_>, input: &str) -> anyhow::Result<BatchInput> {
    let base_dir = ctx.group.base_dir.clone();
    let objects = resolve_sources(ctx.env, input, &base_dir).await?;
    let root = ctx
        .env
        .storage
        .open(&StorageUrl::parse(input, &base_dir)?)?;
    let named = objects
        .into_iter()
        .map(|loc| {
            let rel = loc
                .url()
                .strip_prefix(root.url())
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
    Ok(BatchInput::Objects(named))
}

pub(crate) fn output_location(
    ctx: &StepContext<'_>,
    output: Option<&str>,
) -> anyhow::Result<Location> {
    Ok(match output {
        Some(o) => ctx.env.storage.open_str(o, &ctx.group.base_dir.clone())?,
        None => ctx.env.warehouse.child(&format!(
            "exports/{}/{}/run-{}",
            ctx.pipeline, ctx.step_id, ctx.run_id
        )),
    })
}

/// Values of the items dataset's `columns`, by item id.
async fn metadata_values(
    ctx: &StepContext<'_>,
    columns: &[String],
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    if columns.is_empty() {
        return Ok(HashMap::new());
    }
    let items = crate::dataset::load(
        ctx.env,
        &ctx.group.spec.dataset_group,
        DatasetType::Items,
        None,
    )
    .await?;
    let columns = columns.to_vec();
    tokio::task::spawn_blocking(move || -> anyhow::Result<HashMap<String, Vec<String>>> {
        use polars::prelude::*;
        let df = items.frame;
        let ids = df.column(crate::schema::ITEM_ID)?.str()?.clone();
        let cols: Vec<StringChunked> = columns
            .iter()
            .map(|c| -> anyhow::Result<StringChunked> {
                let col = df.column(c).map_err(|_| {
                    anyhow::anyhow!("item_metadata: the items dataset has no column {c:?}")
                })?;
                Ok(col.cast(&DataType::String)?.str()?.clone())
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(ids
            .iter()
            .enumerate()
            .filter_map(|(row, id)| {
                Some((
                    id?.to_string(),
                    cols.iter()
                        .map(|c| c.get(row).unwrap_or("").to_string())
                        .collect(),
                ))
            })
            .collect())
    })
    .await?
}

pub(crate) fn outcome(m: &BatchManifest, output: &Location) -> StepOutcome {
    let c = &m.counts;
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let mut outputs = serde_json::Map::new();
    outputs.insert("output".into(), output.url().into());
    outputs.insert("lines".into(), n("lines_out").into());
    outputs.insert("errors".into(), n("errors").into());
    StepOutcome {
        summary: format!(
            "{} lines ({} errors) with {} v{} in {:.1}s → {}/",
            thousands(n("lines_in")),
            thousands(n("errors")),
            m.solution,
            m.solution_version,
            m.seconds,
            output
        ),
        outputs,
    }
}

pub async fn run(spec: &BatchInferenceSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let rec = recommender(
        ctx,
        spec.campaign.as_ref(),
        spec.solution.as_ref(),
        spec.solution_version,
    )
    .await?;
    let input = match (&spec.input, spec.users) {
        (Some(i), _) => inputs(ctx, i).await?,
        (None, _) => BatchInput::AllUsers,
    };
    let output = output_location(ctx, spec.output.as_deref())?;
    let settings = BatchSettings {
        input_format: spec.input_format,
        user_column: spec.user_column.clone(),
        output_format: spec.output_format,
        num_results: spec.num_results,
        part_lines: spec.part_lines,
        item_metadata: spec.item_metadata.clone(),
    };
    let what = spec
        .input
        .clone()
        .unwrap_or_else(|| format!("all {} users", rec.model.users.len()));
    ctx.log(format!(
        "Scoring {what} with {} v{} (top {}), writing to {output}.",
        rec.solution, rec.version, spec.num_results
    ));
    let manifest = run_batch(BatchJob {
        recommender: &rec,
        campaign: spec.campaign.as_deref(),
        kind: JobKind::Recommendations,
        input,
        output: &output,
        settings: &settings,
        metadata_values: metadata_values(ctx, &spec.item_metadata).await?,
        filter: batch_filter(ctx, spec.filter.as_ref(), &spec.filter_values, &rec).await?,
        run_id: Some(ctx.run_id),
    })
    .await?;
    ctx.log(format!(
        "Wrote {} ({} bytes): {}.",
        manifest.outputs.len(),
        manifest.output_bytes,
        manifest.outputs.join(", ")
    ));
    ctx.log(format!("Counts: {}.", manifest.counts));
    Ok(outcome(&manifest, &output))
}
