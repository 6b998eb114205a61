//! Executing one run of a pipeline: the run is a row in the state store
//! before any work starts; steps run in dependency order (file order among
//! steps that are ready), each attempt recorded with its summary, outputs,
//! error and log. A step whose dependencies did not all succeed is recorded
//! as skipped. The run fails if any step failed.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crate::config::Env;
use crate::pipeline::Pipeline;
use crate::steps::{StepContext, StepOutcome};
use crate::store::{AttemptEnd, RunStatus, StepStatus};

/// How one step ended, for the caller to print.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub id: String,
    pub step_type: &'static str,
    pub status: StepStatus,
    pub summary: String,
    pub error: Option<String>,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: i64,
    pub status: RunStatus,
    pub steps: Vec<StepReport>,
    pub duration: Duration,
}

/// Runs a pipeline now, in this process. `on_step` is called as each step ends.
pub async fn run_pipeline(
    env: &Env,
    pipeline: &Pipeline,
    trigger: &str,
    on_step: &mut (dyn FnMut(&StepReport) + Send),
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let spec = &pipeline.spec;
    env.store
        .upsert_pipeline(
            &spec.name,
            &spec.dataset_group,
            &pipeline.file.display().to_string(),
            &pipeline.source_text,
        )
        .await?;
    if let Some(t) = &spec.event_tracker {
        env.store
            .set_event_tracker(&spec.dataset_group, &t.tracking_id)
            .await?;
    }
    let run_id = env.store.create_run(&spec.name, trigger).await?;
    env.store
        .set_run_status(run_id, RunStatus::Running, None)
        .await?;
    tracing::info!(run_id, pipeline = %spec.name, "Run started.");

    let mut outputs: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut succeeded: HashSet<String> = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut reports = Vec::new();
    let mut first_error: Option<String> = None;

    while done.len() < spec.steps.len() {
        // The first step in file order whose dependencies have all finished.
        let Some(step) = spec.steps.iter().find(|s| {
            !done.contains(s.id()) && s.common.depends_on.iter().all(|d| done.contains(d))
        }) else {
            anyhow::bail!("internal error: no runnable step, but validation rules out cycles");
        };
        let id = step.id().to_string();
        let step_type = step.kind.type_name();
        let failed_deps: Vec<&String> = step
            .common
            .depends_on
            .iter()
            .filter(|d| !succeeded.contains(*d))
            .collect();
        let step_started = Instant::now();
        let report = if !failed_deps.is_empty() {
            let reason = format!(
                "not run: {} did not succeed",
                failed_deps
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            env.store.skip_step(run_id, &id, step_type, &reason).await?;
            StepReport {
                id: id.clone(),
                step_type,
                status: StepStatus::Skipped,
                summary: reason,
                error: None,
                duration: Duration::ZERO,
            }
        } else {
            let attempt_id = env.store.start_attempt(run_id, &id, step_type, 1).await?;
            let ctx = StepContext::new(env, pipeline, run_id, &id, &outputs);
            let result = step.kind.run(&ctx).await;
            let log = ctx.take_log();
            let duration = step_started.elapsed();
            match result {
                Ok(StepOutcome {
                    summary,
                    outputs: step_outputs,
                }) => {
                    let step_outputs = serde_json::Value::Object(step_outputs);
                    let end = AttemptEnd {
                        summary: Some(summary.clone()),
                        outputs: step_outputs.clone(),
                        error: None,
                        log,
                    };
                    env.store
                        .finish_attempt(attempt_id, StepStatus::Succeeded, &end)
                        .await?;
                    outputs.insert(id.clone(), step_outputs);
                    succeeded.insert(id.clone());
                    tracing::info!(run_id, step = %id, seconds = duration.as_secs_f64(), "Step succeeded.");
                    StepReport {
                        id: id.clone(),
                        step_type,
                        status: StepStatus::Succeeded,
                        summary,
                        error: None,
                        duration,
                    }
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    let log = format!(
                        "{log}{} Error: {message}\n",
                        chrono::Utc::now().format("%H:%M:%S%.3f")
                    );
                    let end = AttemptEnd {
                        summary: None,
                        outputs: serde_json::json!({}),
                        error: Some(message.clone()),
                        log,
                    };
                    env.store
                        .finish_attempt(attempt_id, StepStatus::Failed, &end)
                        .await?;
                    tracing::warn!(run_id, step = %id, error = %message, "Step failed.");
                    first_error.get_or_insert_with(|| format!("step {id} failed: {message}"));
                    StepReport {
                        id: id.clone(),
                        step_type,
                        status: StepStatus::Failed,
                        summary: String::new(),
                        error: Some(message),
                        duration,
                    }
                }
            }
        };
        on_step(&report);
        reports.push(report);
        done.insert(id);
    }

    let status = if first_error.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    env.store
        .set_run_status(run_id, status, first_error.as_deref())
        .await?;
    tracing::info!(run_id, status = %status, "Run finished.");
    Ok(RunReport {
        run_id,
        status,
        steps: reports,
        duration: started.elapsed(),
    })
}
