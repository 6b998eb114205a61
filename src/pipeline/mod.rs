//! Pipeline files: the step graph and the orchestration settings users write
//! in `pipelines/*.yaml`, beside the dataset group's resources
//! (`crate::group`); strict parsing with YAML-path errors (`parse`), and a
//! pure validation pass that collects every problem at once (`validate`). A
//! `Pipeline` is only ever built from a file that passed both, so the engine
//! never meets an unchecked spec.

pub mod for_each;
mod graph;
pub mod orchestration;
pub(crate) mod parse;
pub mod schedule;
pub mod sources;
pub mod template;
pub(crate) mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::group::Group;
use crate::spec::SpecProblem;
use crate::steps::{StepKind, StepType};
pub use for_each::{ForEach, MAX_INSTANCES};
pub use orchestration::{Orchestration, RetryPolicy, TriggerRule};
pub use parse::{MAX_PIPELINE_BYTES, MAX_STEPS, parse_pipeline};
pub use validate::validate;

/// A pipeline file as written, before validation.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// Unique name of the pipeline, e.g. `nightly-retrain`.
    pub name: String,
    /// What the pipeline is for; shown by `recflow runs`.
    pub description: Option<String>,
    /// The steps, run in dependency order.
    pub steps: Vec<StepSpec>,
    /// Schedule, limits, parameters, retry defaults, failure webhook.
    pub orchestration: Orchestration,
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
    pub template: Option<(StepType, serde_yaml::Mapping)>,
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
            serde_yaml::Value::Mapping(m) => StepKind::from_value(*kind, m, &at),
            _ => unreachable!("rendering keeps the shape"),
        }
    }

    /// Whether the step looks at earlier steps' outputs: through templates
    /// that read `steps`, or to find the solution version a `train` step of
    /// the run made.
    pub fn reads_upstream_outputs(&self) -> bool {
        let reads_steps = |v: &serde_yaml::Value| {
            template::variables(v, "")
                .0
                .iter()
                .any(|(_, name)| name == "steps" || name.starts_with("steps."))
        };
        self.template
            .as_ref()
            .is_some_and(|(_, raw)| reads_steps(&serde_yaml::Value::Mapping(raw.clone())))
            || matches!(
                self.kind,
                StepKind::Deploy(_)
                    | StepKind::BatchInference(_)
                    | StepKind::BatchSegment(_)
                    | StepKind::Forecast(_)
            )
    }

    /// The list a mapped step runs once per element of (`for_each:`).
    pub fn for_each(&self) -> Option<&ForEach> {
        self.common.for_each.as_ref()
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
    /// How long the step may go on, from when it was first queued, before
    /// it is late (marked, and the pipeline's `on_sla_miss` told, once).
    #[serde(default)]
    pub sla: Option<orchestration::Dur>,
    /// Runs the step once per element of a list (Airflow's `expand`): a
    /// list, or one template giving one (`"{{ params.markets }}"`,
    /// `"{{ steps.ID.outputs.json }}"`). Each instance has its own attempts
    /// and sees `{{ item }}` and `{{ map_index }}`; later steps see the
    /// step's outputs as a list, in instance order.
    #[serde(default)]
    pub for_each: Option<ForEach>,
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
        "sla",
        "for_each",
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
    /// The dataset group's checked resources, which the steps use.
    pub group: Group,
}

impl Pipeline {
    /// Reads, parses and validates a pipeline file, reporting every problem.
    /// No more than [`MAX_PIPELINE_BYTES`] are read.
    pub fn load(file: &Path) -> Result<Pipeline, PipelineError> {
        use std::io::Read as _;
        let fail = |problem| PipelineError {
            file: file.to_path_buf(),
            problems: vec![problem],
        };
        let mut text = String::new();
        std::fs::File::open(file)
            .and_then(|f| {
                f.take(MAX_PIPELINE_BYTES as u64 + 1)
                    .read_to_string(&mut text)
            })
            .map_err(|e| fail(SpecProblem::new("", format!("cannot read the file: {e}"))))?;
        if text.len() > MAX_PIPELINE_BYTES {
            return Err(fail(parse::too_large()));
        }
        Self::from_text(file, text)
    }

    pub fn from_text(file: &Path, text: String) -> Result<Pipeline, PipelineError> {
        let fail = |problems| PipelineError {
            file: file.to_path_buf(),
            problems,
        };
        let (spec, group, locations) = parse::parse_located(&text).map_err(fail)?;
        let group = validate(&spec, group, &base_dir(file)).map_err(|mut problems| {
            parse::place(&mut problems, &locations);
            fail(problems)
        })?;
        Ok(Pipeline {
            spec,
            file: file.to_path_buf(),
            source_text: text,
            group,
        })
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
