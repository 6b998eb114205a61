//! Pipeline files: the spec types users write in `pipelines/*.yaml`, strict
//! parsing with YAML-path errors (`parse`), and a pure validation pass that
//! collects every problem at once (`validate`). A `Pipeline` is only ever built
//! from a file that passed both, so the engine never meets an unchecked spec.

pub mod orchestration;
pub(crate) mod parse;
pub mod template;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::filter::Filter;
use crate::forecast::frequency::Frequency;
use crate::forecast::panel::{Aggregation, Fill, SeriesSettings};
use crate::forecast::predictor::PredictorSpec;
use crate::recipes::{EventSettings, RecipeSpec};
use crate::schema::{AvroSchema, DatasetType, Schema};
use crate::steps::StepKind;
use crate::tuning::{Candidate, HpoSpec};
pub use orchestration::{Orchestration, RetryPolicy, TriggerRule};

pub use parse::parse_pipeline;
pub use validate::validate;

use crate::spec::SpecProblem;

/// A pipeline file as written, before validation.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// Unique name of the pipeline, e.g. `nightly-retrain`.
    pub name: String,
    /// What the pipeline is for; shown by `recflow runs`.
    pub description: Option<String>,
    /// The dataset group every dataset, solution and campaign of this file belongs to.
    pub dataset_group: String,
    /// Datasets of the group by type (`interactions`, `items`, `users`) with their schemas.
    pub datasets: BTreeMap<DatasetType, DatasetSpec>,
    /// Solutions (a recipe and its settings) trained by `train` steps.
    pub solutions: BTreeMap<String, SolutionSpec>,
    /// Campaigns (serving endpoints) moved by `deploy` steps.
    pub campaigns: BTreeMap<String, CampaignSpec>,
    /// Predictors (forecasting models) trained by `forecast_train` steps.
    pub predictors: BTreeMap<String, PredictorSpec>,
    /// Filters of the dataset group, by name, in the managed service's
    /// expression language; campaigns and batch steps apply them by name.
    pub filters: BTreeMap<String, FilterSpec>,
    /// The dataset group's event tracker; without it one is generated
    /// (`recflow campaigns show` prints it).
    pub event_tracker: Option<EventTrackerSpec>,
    /// The steps, run in dependency order.
    pub steps: Vec<StepSpec>,
    /// Schedule, limits, parameters, retry defaults, failure webhook.
    pub orchestration: Orchestration,
}

/// The `trackingId` clients send with `PutEvents` for this dataset group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTrackerSpec {
    /// Letters, digits, `-` and `_`, at most 256 characters.
    pub tracking_id: String,
}

/// A filter: which items (or users, for segments) may be returned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// E.g. `INCLUDE ItemID WHERE Items.GENRES IN ($GENRE) | EXCLUDE ItemID
    /// WHERE Interactions.EVENT_TYPE IN ("watch")`; at most 2,500 characters.
    pub expression: String,
}

/// A dataset of the group and its schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// The schema inline, in the Avro record shape (`fields: [{name, type}]`).
    #[serde(default)]
    pub schema: Option<AvroSchema>,
    /// Or a path to the managed service's Avro schema JSON file, relative to
    /// the pipeline file; accepted as is.
    #[serde(default)]
    pub schema_file: Option<String>,
    /// Time series datasets: the period, `hourly`, `daily`, `weekly`,
    /// `monthly`, `quarterly` or `yearly` (required for `target_time_series`;
    /// the related series use the target's).
    #[serde(default)]
    pub frequency: Option<Frequency>,
    /// Time series datasets: how a missing period is filled: `zero`
    /// (the target's default), `nan`, `previous` (the related default) or a number.
    #[serde(default)]
    pub fill: Option<Fill>,
    /// Time series datasets: how several values in one period combine:
    /// `sum` (the target's default), `mean` (the related default), `min`,
    /// `max`, `first`, `last`.
    #[serde(default)]
    pub aggregation: Option<Aggregation>,
    /// Related series: how periods after an item's last value are filled
    /// when the horizon needs them (default: an error naming the items).
    #[serde(default)]
    pub future_fill: Option<Fill>,
}

impl PipelineSpec {
    /// The time series settings of the target (and related) datasets, when
    /// a target_time_series with a frequency is declared.
    pub fn series_settings(&self) -> Option<SeriesSettings> {
        let target = self.datasets.get(&DatasetType::TargetTimeSeries)?;
        let related = self.datasets.get(&DatasetType::RelatedTimeSeries);
        Some(SeriesSettings {
            frequency: target.frequency?,
            target_fill: target.fill.unwrap_or(Fill::Zero),
            target_aggregation: target.aggregation.unwrap_or(Aggregation::Sum),
            related_fill: related.and_then(|r| r.fill).unwrap_or(Fill::Previous),
            related_future_fill: related.and_then(|r| r.future_fill),
            related_aggregation: related
                .and_then(|r| r.aggregation)
                .unwrap_or(Aggregation::Mean),
        })
    }
}

/// A solution: a recipe and its settings. Each `train` step makes a new
/// solution version of it.
#[derive(Debug, Clone)]
pub struct SolutionSpec {
    pub recipe: SolutionRecipe,
    /// Which interactions count and how much (shared by every recipe).
    pub events: EventSettings,
}

/// How a solution's recipe is decided.
#[derive(Debug, Clone)]
pub enum SolutionRecipe {
    /// One recipe; with `hpo:`, its settings are searched on a validation split.
    One {
        recipe: RecipeSpec,
        hpo: Option<HpoSpec>,
    },
    /// `recipe: auto`: the candidate with the best `objective` on a validation split.
    Auto {
        candidates: Vec<Candidate>,
        objective: String,
    },
}

impl SolutionRecipe {
    /// What to print: the recipe, or `auto` with its candidates.
    pub fn describe(&self) -> String {
        match self {
            SolutionRecipe::One { recipe, hpo: None } => recipe.name().to_string(),
            SolutionRecipe::One {
                recipe,
                hpo: Some(h),
            } => format!("{} ({} hpo trials)", recipe.name(), h.trials),
            SolutionRecipe::Auto { candidates, .. } => {
                let names: Vec<&str> = candidates.iter().map(|c| c.recipe.name()).collect();
                format!("auto ({})", names.join(", "))
            }
        }
    }
}

/// A campaign serves one solution version at a time; `deploy` moves it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// The solution whose versions this campaign serves.
    pub solution: String,
    /// Offline-metric floors a solution version must meet before `deploy`
    /// points the campaign at it, e.g. `{precision_at_10: 0.05}`. A version
    /// below a floor fails the deploy step and the campaign stays where it was.
    #[serde(default)]
    pub min_metrics: BTreeMap<String, f64>,
    /// Share of recommendation slots (0 to 1) given to new items — created
    /// within `exploration_item_age_cutoff` days, or never interacted with —
    /// chosen by how well their metadata matches the user. Default 0.3 for
    /// user-personalization solutions with an items dataset, else 0.
    #[serde(default, alias = "explorationWeight")]
    pub exploration_weight: Option<f32>,
    /// Days before the newest interaction within which an item counts as new (default 30).
    #[serde(default = "default_age_cutoff", alias = "explorationItemAgeCutOff")]
    pub exploration_item_age_cutoff: f64,
    /// Event types whose real-time events (`PutEvents`) remove the item
    /// from that user's next answers and join their history; default every
    /// type, `[]` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_event_types: Option<Vec<String>>,
}

fn default_age_cutoff() -> f64 {
    30.0
}

/// One step of a pipeline: the settings every step has, and its typed kind.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub common: StepCommon,
    /// The settings, typed; for a templated step, as rendered with sample
    /// values at validation.
    pub kind: StepKind,
    /// For a step whose settings use templates: its type and the settings as
    /// written, rendered again for each attempt.
    pub template: Option<(String, serde_yaml::Mapping)>,
}

impl StepSpec {
    pub fn id(&self) -> &str {
        &self.common.id
    }

    /// The step's settings for one attempt: templates rendered with the
    /// run's context, then typed.
    pub fn settings_for(&self, context: &serde_json::Value) -> Result<StepKind, SpecProblem> {
        let Some((kind, raw)) = &self.template else {
            return Ok(self.kind.clone());
        };
        let at = format!("step {}", self.id());
        let raw = serde_yaml::Value::Mapping(raw.clone());
        if let Some(p) = template::check_variables(&raw, context, &at)
            .into_iter()
            .next()
        {
            return Err(p);
        }
        match template::render(&raw, context, &at)? {
            serde_yaml::Value::Mapping(m) => StepKind::from_value(kind, m, &at),
            _ => unreachable!("rendering keeps the shape"),
        }
    }

    /// Whether the step looks at earlier steps' outputs: through templates,
    /// or to find the solution version a `train` step of the run made.
    pub fn reads_upstream_outputs(&self) -> bool {
        self.template.is_some()
            || matches!(
                self.kind,
                StepKind::Deploy(_)
                    | StepKind::BatchInference(_)
                    | StepKind::BatchSegment(_)
                    | StepKind::Forecast(_)
            )
    }

    /// Retries and timeout, the pipeline's defaults applied.
    pub fn retry_policy(&self, pipeline: &Orchestration) -> RetryPolicy {
        RetryPolicy::resolve(&self.common.policy(), &pipeline.defaults)
    }
}

/// Settings every step has, whatever its type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCommon {
    /// Unique id of the step in this pipeline: letters, digits and `_`.
    pub id: String,
    /// Steps that finish before this one starts.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// When the step runs, given how its dependencies ended (default `all_success`).
    #[serde(default)]
    pub trigger_rule: TriggerRule,
    /// Retries of a failed attempt (default: the pipeline's `defaults`, else 0).
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub retry_delay: Option<orchestration::Dur>,
    #[serde(default)]
    pub max_retry_delay: Option<orchestration::Dur>,
    /// Time limit of one attempt.
    #[serde(default)]
    pub timeout: Option<orchestration::Dur>,
}

impl StepCommon {
    /// The YAML keys that belong to [`StepCommon`] rather than to a step type.
    /// (`type` selects the step type.) Kept in step with the struct by a test.
    pub const KEYS: &'static [&'static str] = &[
        "id",
        "depends_on",
        "trigger_rule",
        "retries",
        "retry_delay",
        "max_retry_delay",
        "timeout",
    ];

    fn policy(&self) -> orchestration::StepDefaults {
        orchestration::StepDefaults {
            retries: self.retries,
            retry_delay: self.retry_delay,
            max_retry_delay: self.max_retry_delay,
            timeout: self.timeout,
        }
    }
}

/// Every problem found in one pipeline file.
#[derive(Debug, thiserror::Error)]
pub struct PipelineError {
    pub file: PathBuf,
    pub problems: Vec<SpecProblem>,
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {p}", self.file.display())?;
        }
        Ok(())
    }
}

/// A parsed and validated pipeline, ready to run.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub spec: PipelineSpec,
    /// The file it came from; relative paths inside resolve against its folder.
    pub file: PathBuf,
    /// The file's text, recorded with each run.
    pub source_text: String,
    /// Checked schemas of the declared datasets.
    pub schemas: BTreeMap<DatasetType, Schema>,
    /// The declared filters, parsed and checked against the schemas.
    pub filters: BTreeMap<String, Filter>,
}

impl Pipeline {
    /// Reads, parses and validates a pipeline file, reporting every problem.
    pub fn load(file: &Path) -> Result<Pipeline, PipelineError> {
        let fail = |problems| PipelineError {
            file: file.to_path_buf(),
            problems,
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            fail(vec![SpecProblem::new(
                "",
                format!("cannot read the file: {e}"),
            )])
        })?;
        Self::from_text(file, text)
    }

    pub fn from_text(file: &Path, text: String) -> Result<Pipeline, PipelineError> {
        let fail = |problems| PipelineError {
            file: file.to_path_buf(),
            problems,
        };
        let spec = parse_pipeline(&text).map_err(fail)?;
        let base = base_dir(file);
        let schemas = validate(&spec, &base).map_err(fail)?;
        let (filters, _) = validate::check_filters(&spec, &schemas);
        Ok(Pipeline {
            spec,
            file: file.to_path_buf(),
            source_text: text,
            schemas,
            filters,
        })
    }

    /// The folder that relative paths in this pipeline resolve against.
    pub fn base_dir(&self) -> PathBuf {
        base_dir(&self.file)
    }

    pub fn step(&self, id: &str) -> Option<&StepSpec> {
        self.spec.steps.iter().find(|s| s.id() == id)
    }
}

fn base_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
