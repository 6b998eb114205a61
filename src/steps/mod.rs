//! Step types: one file each, a thin adapter from a step's settings (`*Spec`)
//! to the modules that do the work. [`StepKind`] is the closed list; adding a
//! type means adding a variant, and the compiler shows every `match` to extend.

mod batch_inference;
mod batch_segment;
mod deploy;
mod forecast;
mod forecast_train;
mod import;
mod shell;
mod train;
mod wait_for;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_yaml::{Mapping, Value};

use crate::config::Env;
use crate::group::Group;
use crate::spec::SpecProblem;
use crate::spec::from_value;

pub use batch_inference::BatchInferenceSpec;
pub use batch_segment::BatchSegmentSpec;
pub use deploy::DeploySpec;
pub use forecast::ForecastSpec;
pub use forecast_train::{ForecastTrainSpec, metric as forecast_metric};
pub use import::ImportSpec;
pub use shell::{CommandLine, ShellSpec};
pub use train::TrainSpec;
pub use wait_for::WaitForSpec;

/// A step's type and its settings.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Imports a dataset from storage into a new dataset version.
    Import(ImportSpec),
    /// Trains a new solution version and computes its offline metrics.
    Train(TrainSpec),
    /// Points a campaign at a solution version.
    Deploy(DeploySpec),
    /// Writes recommendations for every line of an input (or every user) to storage.
    BatchInference(BatchInferenceSpec),
    /// Writes user segments for items or item attributes to storage.
    BatchSegment(BatchSegmentSpec),
    /// Trains a new predictor version and computes its backtest accuracy.
    ForecastTrain(ForecastTrainSpec),
    /// Writes quantile forecasts for every item to storage.
    Forecast(ForecastSpec),
    /// Runs a command.
    Shell(ShellSpec),
    /// Waits until an object or prefix exists in storage.
    WaitFor(WaitForSpec),
    /// Does nothing: a join point for dependencies.
    Noop(NoopSpec),
}

/// `noop` takes no settings.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopSpec {}

/// A step's type, as `type:` names it: the closed list. Every place that
/// depends on the type matches on this enum (or on [`StepKind`]), so a new
/// step type is a new file, a variant here and in [`StepKind`], and the
/// arms the compiler asks for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum StepType {
    Import,
    Train,
    Deploy,
    BatchInference,
    BatchSegment,
    ForecastTrain,
    Forecast,
    Shell,
    WaitFor,
    Noop,
}

impl StepType {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The type a `type:` value names, or a problem listing the known ones.
    pub fn parse(text: &str, at: &str) -> Result<StepType, SpecProblem> {
        text.parse().map_err(|_| {
            use strum::IntoEnumIterator;
            let known: Vec<&str> = StepType::iter().map(StepType::name).collect();
            SpecProblem::new(
                format!("{at}.type"),
                format!(
                    "unknown step type {text:?}; known types: {}",
                    known.join(", ")
                ),
            )
        })
    }

    /// Whether a step of this type works on the pipeline's dataset group
    /// (its datasets, solutions, campaigns or predictors), so that the file
    /// must name one. Shell, sensor and noop steps do not.
    pub fn uses_dataset_group(self) -> bool {
        !matches!(self, Self::Shell | Self::WaitFor | Self::Noop)
    }

    /// Outputs a step of this type reports, with sample values of their
    /// types: templates are checked against these (`{{ steps.ID.outputs.KEY }}`).
    pub fn sample_outputs(self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Import => {
                json!({"dataset": "interactions", "dataset_version": 1, "rows": 1, "rejected_rows": 0, "future_rows": 0})
            }
            Self::Train => json!({"solution": "sample", "solution_version": 1, "metrics": {}}),
            Self::Deploy => {
                json!({"campaign": "sample", "solution": "sample", "deployed_version": 1})
            }
            Self::BatchInference | Self::BatchSegment => {
                json!({"output": "s3://sample/", "lines": 1, "errors": 0})
            }
            Self::ForecastTrain => {
                json!({"predictor": "sample", "predictor_version": 1, "algorithm": "ets", "metrics": {}})
            }
            Self::Forecast => {
                json!({"output": "s3://sample/", "rows": 1, "items": 1, "predictor_version": 1})
            }
            // `json` only with `output_json: true`.
            Self::Shell => json!({"exit_code": 0, "last_line": "sample", "json": ["sample"]}),
            Self::WaitFor => json!({"path": "s3://sample/"}),
            Self::Noop => json!({}),
        }
    }
}

impl std::fmt::Display for StepType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl StepKind {
    pub(crate) fn from_value(
        ty: StepType,
        rest: Mapping,
        at: &str,
    ) -> Result<StepKind, SpecProblem> {
        let value = Value::Mapping(rest);
        Ok(match ty {
            StepType::Import => Self::Import(from_value(value, at)?),
            StepType::Train => Self::Train(from_value(value, at)?),
            StepType::Deploy => Self::Deploy(from_value(value, at)?),
            StepType::BatchInference => Self::BatchInference(from_value(value, at)?),
            StepType::BatchSegment => Self::BatchSegment(from_value(value, at)?),
            StepType::ForecastTrain => Self::ForecastTrain(from_value(value, at)?),
            StepType::Forecast => Self::Forecast(from_value(value, at)?),
            StepType::Shell => Self::Shell(from_value(value, at)?),
            StepType::WaitFor => Self::WaitFor(from_value(value, at)?),
            StepType::Noop => Self::Noop(from_value(value, at)?),
        })
    }

    pub fn step_type(&self) -> StepType {
        match self {
            Self::Import(_) => StepType::Import,
            Self::Train(_) => StepType::Train,
            Self::Deploy(_) => StepType::Deploy,
            Self::BatchInference(_) => StepType::BatchInference,
            Self::BatchSegment(_) => StepType::BatchSegment,
            Self::ForecastTrain(_) => StepType::ForecastTrain,
            Self::Forecast(_) => StepType::Forecast,
            Self::Shell(_) => StepType::Shell,
            Self::WaitFor(_) => StepType::WaitFor,
            Self::Noop(_) => StepType::Noop,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.step_type().name()
    }

    /// The attempt time limit when the step sets none.
    pub fn default_timeout(&self) -> Option<std::time::Duration> {
        match self {
            Self::WaitFor(_) => Some(wait_for::DEFAULT_TIMEOUT),
            _ => None,
        }
    }

    /// The locations the step reads, by setting (`source`, `input`): what
    /// `recflow validate` checks exist. (A `wait_for` path need not exist
    /// yet: waiting for it is the step's job.)
    pub fn sources(&self) -> Vec<(&'static str, &str)> {
        match self {
            Self::Import(s) => vec![("source", s.source.as_str())],
            Self::BatchInference(s) => s.input.iter().map(|i| ("input", i.as_str())).collect(),
            Self::BatchSegment(s) => vec![("input", s.input.as_str())],
            Self::Train(_)
            | Self::Deploy(_)
            | Self::ForecastTrain(_)
            | Self::Forecast(_)
            | Self::Shell(_)
            | Self::WaitFor(_)
            | Self::Noop(_) => Vec::new(),
        }
    }

    pub fn validate(&self, at: &str, ctx: &Group) -> Vec<SpecProblem> {
        match self {
            Self::Import(s) => import::validate(s, at, ctx),
            Self::Train(s) => train::validate(s, at, ctx),
            Self::Deploy(s) => deploy::validate(s, at, ctx),
            Self::BatchInference(s) => batch_inference::validate(s, at, ctx),
            Self::BatchSegment(s) => batch_segment::validate(s, at, ctx),
            Self::ForecastTrain(s) => forecast_train::validate(s, at, ctx),
            Self::Forecast(s) => forecast::validate(s, at, ctx),
            Self::Shell(s) => shell::validate(s, at, ctx),
            Self::WaitFor(s) => wait_for::validate(s, at, ctx),
            Self::Noop(_) => Vec::new(),
        }
    }

    pub async fn run(&self, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
        match self {
            Self::Import(s) => import::run(s, ctx).await,
            Self::Train(s) => train::run(s, ctx).await,
            Self::Deploy(s) => deploy::run(s, ctx).await,
            Self::BatchInference(s) => batch_inference::run(s, ctx).await,
            Self::BatchSegment(s) => batch_segment::run(s, ctx).await,
            Self::ForecastTrain(s) => forecast_train::run(s, ctx).await,
            Self::Forecast(s) => forecast::run(s, ctx).await,
            Self::Shell(s) => shell::run(s, ctx).await,
            Self::WaitFor(s) => wait_for::run(s, ctx).await,
            Self::Noop(_) => Ok(StepOutcome {
                summary: "nothing to do".into(),
                outputs: serde_json::Map::new(),
            }),
        }
    }
}

/// What a running step can see: the environment, its dataset group's
/// resources, its pipeline's name and run, and the outputs of steps that
/// already finished in this run.
pub struct StepContext<'a> {
    pub env: &'a Env,
    pub group: &'a Group,
    /// The pipeline's name (default export paths carry it).
    pub pipeline: &'a str,
    pub run_id: i64,
    pub step_id: &'a str,
    /// Outputs of finished steps, by step id.
    pub upstream: &'a BTreeMap<String, serde_json::Value>,
    log: Mutex<String>,
}

impl<'a> StepContext<'a> {
    pub fn new(
        env: &'a Env,
        group: &'a Group,
        pipeline: &'a str,
        run_id: i64,
        step_id: &'a str,
        upstream: &'a BTreeMap<String, serde_json::Value>,
    ) -> Self {
        Self {
            env,
            group,
            pipeline,
            run_id,
            step_id,
            upstream,
            log: Mutex::new(String::new()),
        }
    }

    /// Adds a line to the attempt's log (kept in the state store) and emits it
    /// as a tracing event.
    pub fn log(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        tracing::info!(run_id = self.run_id, step = self.step_id, "{line}");
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.push_str(&format!(
            "{} {line}\n",
            chrono::Utc::now().format("%H:%M:%S%.3f")
        ));
    }

    /// Adds a warning to the attempt's log, marked `WARNING:`, and emits it
    /// as a tracing event at WARN level.
    pub fn warn(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        tracing::warn!(run_id = self.run_id, step = self.step_id, "{line}");
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.push_str(&format!(
            "{} WARNING: {line}\n",
            chrono::Utc::now().format("%H:%M:%S%.3f")
        ));
    }

    /// The log lines written since the last call.
    pub fn take_log(&self) -> String {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts back lines [`StepContext::take_log`] took but could not store,
    /// before any written since.
    pub fn restore_log(&self, taken: String) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let newer = std::mem::replace(&mut *log, taken);
        log.push_str(&newer);
    }

    /// The solution version a `train` step of this run made for `solution`.
    pub fn trained_in_this_run(&self, solution: &str) -> Option<i64> {
        self.upstream.values().find_map(|o| {
            (o.get("solution")?.as_str()? == solution)
                .then(|| o.get("solution_version")?.as_i64())
                .flatten()
        })
    }
}

/// What a finished step reports: key figures in one line, and small outputs
/// for later steps.
#[derive(Debug, Clone, Default)]
pub struct StepOutcome {
    pub summary: String,
    pub outputs: serde_json::Map<String, serde_json::Value>,
}

/// Formats a count with thousands separators: 100000 → `100,000`.
pub fn thousands(n: impl Into<u64>) -> String {
    let s = n.into().to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_type_parses_by_its_name_and_reports_sample_outputs() {
        use strum::IntoEnumIterator;
        for ty in StepType::iter() {
            assert_eq!(StepType::parse(ty.name(), "steps[0]"), Ok(ty));
            assert!(ty.sample_outputs().is_object(), "{ty}");
        }
        let e = StepType::parse("trian", "steps[3]").unwrap_err();
        assert_eq!(e.path, "steps[3].type");
        assert!(e.message.contains("known types: import, train,"), "{e}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0u64), "0");
        assert_eq!(super::thousands(999u64), "999");
        assert_eq!(super::thousands(100_000u64), "100,000");
        assert_eq!(super::thousands(1_234_567u64), "1,234,567");
    }
}
