//! A dataset group's resources, in the managed service's nouns: datasets
//! with their schemas, solutions (a recipe and its settings), campaigns,
//! predictors, filters and the event tracker. A pipeline file declares
//! them; its steps, the server and the CLI use them.
//!
//! [`GroupSpec`] is what the file says. [`Group`] is the same after
//! [`Group::check`]: schemas read and checked, filters parsed and checked
//! against them, and the folder that relative paths resolve against.

mod parse;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::filter::Filter;
use crate::forecast::frequency::Frequency;
use crate::forecast::panel::{Aggregation, Fill, SeriesSettings};
use crate::forecast::predictor::PredictorSpec;
use crate::recipes::{EventSettings, RecipeSpec};
use crate::schema::{AvroSchema, DatasetType, Schema};
use crate::spec::SpecProblem;
use crate::tuning::{Candidate, HpoSpec};

pub use parse::parse_solution;

/// A dataset group's resources as a pipeline file declares them.
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    /// The dataset group every dataset, solution and campaign of this file
    /// belongs to; empty for a pipeline of shell, sensor and noop steps
    /// only, which names none.
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
}

/// A dataset group's checked resources: what steps are validated against
/// and run with.
#[derive(Debug, Clone)]
pub struct Group {
    pub spec: GroupSpec,
    /// The folder that relative paths (schema files, sources, outputs)
    /// resolve against: the pipeline file's.
    pub base_dir: PathBuf,
    /// Checked schemas of the declared datasets.
    pub schemas: BTreeMap<DatasetType, Schema>,
    /// The declared filters that parsed and checked against the schemas.
    pub filters: BTreeMap<String, Filter>,
}

impl Group {
    /// Checks a group's resources: names, the event tracker, datasets and
    /// their schemas, predictors, solutions, campaigns and filters. Returns
    /// the group with everything that checked out, and every problem, so a
    /// pipeline's steps can be checked against it in the same pass.
    pub fn check(spec: GroupSpec, base_dir: PathBuf) -> (Group, Vec<SpecProblem>) {
        let (schemas, filters, problems) = validate::check(&spec, &base_dir);
        let group = Group {
            spec,
            base_dir,
            schemas,
            filters,
        };
        (group, problems)
    }

    /// The dataset group's name.
    pub fn name(&self) -> &str {
        &self.spec.dataset_group
    }
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
    /// `monthly`, `quarterly`, `yearly` or one of the managed service's codes
    /// (`3M`, `2W`, `15min`; see `frequency.rs`) (required for
    /// `target_time_series`; the related series use the target's).
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

impl GroupSpec {
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
