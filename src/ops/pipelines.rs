//! Pipelines: the registered ones with their schedules, one with its step
//! graph and next fire times, pause and unpause, backfill over a date
//! range, and checking pipeline files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{OpsError, OpsResult};
use crate::config::Env;
use crate::pipeline::orchestration::ParamSpec;
use crate::pipeline::schedule::CronSchedule;
use crate::pipeline::sources::{SourceCheck, check_sources};
use crate::pipeline::{Pipeline, PipelineError, TriggerRule};
use crate::scheduler::trigger::{self, GivenParams};
use crate::storage::Storage;
use crate::store::{PipelineRecord, RunRecord};

/// The most runs one backfill queues.
pub const MAX_BACKFILL_RUNS: usize = 500;

/// A registered pipeline as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineSummary {
    pub name: String,
    pub description: Option<String>,
    pub dataset_group: String,
    pub file: String,
    pub updated_at: DateTime<Utc>,
    /// A paused pipeline's schedule does not fire; triggers still queue runs.
    pub paused: bool,
    pub schedule: Option<String>,
    pub timezone: String,
    /// When its schedule fires next (none when paused or unscheduled).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Its typed parameters, for a trigger form.
    pub params: BTreeMap<String, ParamSpec>,
}

/// One step of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct StepNode {
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: &'static str,
    pub depends_on: Vec<String>,
    pub trigger_rule: TriggerRule,
}

/// A pipeline with its step graph and the schedule's next fire times.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineDetail {
    #[serde(flatten)]
    pub summary: PipelineSummary,
    pub steps: Vec<StepNode>,
    pub next_runs: Vec<DateTime<Utc>>,
}

pub async fn list(env: &Env) -> OpsResult<Vec<PipelineSummary>> {
    let mut out = Vec::new();
    for record in env.store.list_pipelines().await? {
        let pipeline = trigger::registered_pipeline(env, &record.name).await?;
        out.push(summary(record, &pipeline));
    }
    Ok(out)
}

pub async fn show(env: &Env, name: &str) -> OpsResult<PipelineDetail> {
    let (record, _) = env
        .store
        .get_pipeline(name)
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("pipeline {name:?} not found")))?;
    let pipeline = trigger::registered_pipeline(env, name).await?;
    let mut next_runs = Vec::new();
    if let Some(s) = schedule_of(&pipeline).filter(|_| !record.paused) {
        let mut at = Utc::now();
        while next_runs.len() < 5 {
            match s.next_after(at) {
                Some(t) => {
                    next_runs.push(t);
                    at = t;
                }
                None => break,
            }
        }
    }
    let steps = pipeline
        .spec
        .steps
        .iter()
        .map(|s| StepNode {
            id: s.id().to_string(),
            step_type: s.kind.type_name(),
            depends_on: s.common.depends_on.clone(),
            trigger_rule: s.common.trigger_rule,
        })
        .collect();
    Ok(PipelineDetail {
        summary: summary(record, &pipeline),
        steps,
        next_runs,
    })
}

/// Pauses or unpauses a pipeline's schedule.
pub async fn set_paused(env: &Env, name: &str, paused: bool) -> OpsResult<PipelineSummary> {
    let record = env.store.set_pipeline_paused(name, paused).await?;
    let pipeline = trigger::registered_pipeline(env, name).await?;
    Ok(summary(record, &pipeline))
}

/// Queues one run for every time the pipeline's schedule fired in
/// `[from, to)` (Airflow's backfill), with the given parameters. A time
/// that already has a scheduled run is left as it is.
pub async fn backfill(
    env: &Env,
    name: &str,
    from: &str,
    to: &str,
    params: serde_json::Map<String, serde_json::Value>,
) -> OpsResult<Vec<RunRecord>> {
    let parse = |t: &str| trigger::parse_logical_date(t).map_err(OpsError::Invalid);
    let (from, to) = (parse(from)?, parse(to)?);
    if from >= to {
        return Err(OpsError::Invalid(format!(
            "the backfill range is empty: {from} is not before {to}"
        )));
    }
    let pipeline = trigger::registered_pipeline(env, name).await?;
    let schedule = schedule_of(&pipeline).ok_or_else(|| {
        OpsError::Invalid(format!(
            "pipeline {name} has no schedule to backfill; trigger runs for the dates you need"
        ))
    })?;
    // `fire_times_between` takes (after, until]; the range is [from, to).
    let just_before = |t: DateTime<Utc>| t - chrono::TimeDelta::nanoseconds(1);
    let times =
        schedule.fire_times_between(just_before(from), just_before(to), MAX_BACKFILL_RUNS + 1);
    if times.len() > MAX_BACKFILL_RUNS {
        return Err(OpsError::Invalid(format!(
            "the range holds more than {MAX_BACKFILL_RUNS} scheduled times; backfill a shorter range"
        )));
    }
    let mut runs = Vec::new();
    for at in times {
        let mut run = crate::engine::new_run(&pipeline, "backfill", &params, Some(at))
            .map_err(|e| OpsError::Invalid(format!("{e:#}")))?;
        run.trigger = "backfill".into();
        if let Some(id) = env.store.create_run(&run).await? {
            runs.push(env.store.get_run(id).await?);
        }
    }
    Ok(runs)
}

/// Parameters given as JSON (API) or text (CLI); see [`GivenParams`].
pub fn json_params(params: GivenParams) -> serde_json::Map<String, serde_json::Value> {
    match params {
        GivenParams::Json(m) => m,
        GivenParams::Text(pairs) => pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    }
}

/// What checking one pipeline file found.
pub struct Checked {
    pub file: PathBuf,
    pub result: Result<(String, usize), PipelineError>,
}

/// Parses and validates pipeline files, reporting every problem of each,
/// then checks that the sources their steps read exist (see
/// [`check_sources`]); `Ok` holds the pipeline's name and number of steps.
pub async fn validate(files: &[PathBuf], check: SourceCheck) -> Vec<Checked> {
    let storage = Storage::default();
    let mut out = Vec::new();
    for file in files {
        let result = match Pipeline::load(file) {
            Ok(pipeline) => {
                let problems = check_sources(&pipeline, &storage, check).await;
                if problems.is_empty() {
                    Ok((pipeline.spec.name, pipeline.spec.steps.len()))
                } else {
                    Err(PipelineError {
                        file: file.clone(),
                        problems,
                    })
                }
            }
            Err(e) => Err(e),
        };
        out.push(Checked {
            file: file.clone(),
            result,
        });
    }
    out
}

/// Loads a pipeline file for `recflow run`.
pub fn load(file: &Path) -> OpsResult<Pipeline> {
    Ok(Pipeline::load(file)?)
}

fn schedule_of(pipeline: &Pipeline) -> Option<CronSchedule> {
    let o = &pipeline.spec.orchestration;
    CronSchedule::parse(o.schedule.as_deref()?, &o.timezone).ok()
}

fn summary(record: PipelineRecord, pipeline: &Pipeline) -> PipelineSummary {
    let o = &pipeline.spec.orchestration;
    let next_run_at = schedule_of(pipeline)
        .filter(|_| !record.paused)
        .and_then(|s| s.next_after(Utc::now()));
    PipelineSummary {
        name: record.name,
        description: pipeline.spec.description.clone(),
        dataset_group: record.dataset_group,
        file: record.file,
        updated_at: record.updated_at,
        paused: record.paused,
        schedule: o.schedule.clone(),
        timezone: o.timezone.clone(),
        next_run_at,
        params: o.params.clone(),
    }
}
