//! Runs: list (filtered, paged), show with step attempts, logs, trigger,
//! cancel, retry, and the run × step grid of a pipeline's recent runs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{OpsError, OpsResult, Page, page_size};
use crate::config::Env;
use crate::engine::{self, RunReport, StepReport};
use crate::pipeline::Pipeline;
use crate::scheduler::trigger::{self, GivenParams};
use crate::store::{AttemptRecord, RunQuery, RunRecord, RunStatus, SlaMiss, StepStatus};

/// Which runs to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub pipeline: Option<String>,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<RunStatus>,
    /// Runs created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Runs created before.
    pub until: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (default 25, at most [`super::MAX_PAGE`]).
    pub limit: Option<i64>,
}

pub async fn list(env: &Env, filter: &RunFilter) -> OpsResult<Page<RunRecord>> {
    let before_id = match &filter.cursor {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| OpsError::Invalid(format!("invalid cursor {c:?}")))?,
        ),
    };
    let limit = page_size(filter.limit, 25);
    let mut items = env
        .store
        .list_runs(&RunQuery {
            pipeline: filter.pipeline.clone(),
            statuses: filter.statuses.clone(),
            created_after: filter.since,
            created_before: filter.until,
            before_id,
            limit: limit + 1,
        })
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// A run and every attempt of its steps, in the order they were queued.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub run: RunRecord,
    pub attempts: Vec<AttemptRecord>,
    /// The run and the steps of it that went on past their SLA.
    pub sla_misses: Vec<SlaMiss>,
}

pub async fn show(env: &Env, run_id: i64) -> OpsResult<RunDetail> {
    Ok(RunDetail {
        run: env.store.get_run(run_id).await?,
        attempts: env.store.list_attempts(run_id).await?,
        sla_misses: env.store.list_sla_misses(run_id).await?,
    })
}

/// One attempt of a step, or of an instance of a mapped step (`train[3]`),
/// the latest when `attempt` is `None`, with its log.
pub async fn attempt(
    env: &Env,
    run_id: i64,
    step: &str,
    attempt: Option<i64>,
) -> OpsResult<AttemptRecord> {
    let (id, map_index) = instance_ref(step);
    env.store
        .list_attempts(run_id)
        .await?
        .into_iter()
        .filter(|a| {
            a.step_id == id
                && map_index.is_none_or(|i| a.map_index == Some(i))
                && attempt.is_none_or(|n| a.attempt == n)
        })
        .max_by_key(|a| a.attempt)
        .ok_or_else(|| {
            OpsError::NotFound(format!(
                "run {run_id} has no attempt{} of step {step:?}",
                attempt.map(|n| format!(" {n}")).unwrap_or_default()
            ))
        })
}

/// A mapped step of a run: its instances, each with its attempts.
#[derive(Debug, Clone, Serialize)]
pub struct MappedStep {
    pub step_id: String,
    pub step_type: String,
    /// Instances by latest status: how many succeeded, failed, run, wait.
    pub counts: BTreeMap<StepStatus, usize>,
    /// In instance order.
    pub instances: Vec<Instance>,
}

/// One instance of a mapped step.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub map_index: i64,
    pub item: serde_json::Value,
    /// The latest attempt's status.
    pub status: StepStatus,
    /// Each attempt's number and status, oldest first.
    pub attempts: Vec<(i64, StepStatus)>,
}

impl MappedStep {
    /// Instances that needed more than one attempt or did not succeed.
    pub fn eventful(&self) -> impl Iterator<Item = &Instance> {
        self.instances
            .iter()
            .filter(|i| i.attempts.len() > 1 || i.status != StepStatus::Succeeded)
    }
}

/// The mapped steps among a run's attempts, in the order they expanded.
pub fn mapped_steps(attempts: &[AttemptRecord]) -> Vec<MappedStep> {
    let mut steps: Vec<MappedStep> = Vec::new();
    for a in attempts {
        let Some(i) = a.map_index else { continue };
        let step = match steps.iter().position(|m| m.step_id == a.step_id) {
            Some(p) => &mut steps[p],
            None => {
                steps.push(MappedStep {
                    step_id: a.step_id.clone(),
                    step_type: a.step_type.clone(),
                    counts: BTreeMap::new(),
                    instances: Vec::new(),
                });
                steps.last_mut().expect("just pushed")
            }
        };
        // Instances are queued in order, so an instance's index is its
        // position; a retry finds it there.
        let found = match step.instances.get(i as usize) {
            Some(x) if x.map_index == i => Some(i as usize),
            _ => step.instances.iter().position(|x| x.map_index == i),
        };
        match found.map(|p| &mut step.instances[p]) {
            Some(x) => {
                x.attempts.push((a.attempt, a.status));
                x.attempts.sort_by_key(|(n, _)| *n);
                x.status = x.attempts.last().map_or(a.status, |(_, s)| *s);
            }
            None => step.instances.push(Instance {
                map_index: i,
                item: a.map_item.clone().unwrap_or_default(),
                status: a.status,
                attempts: vec![(a.attempt, a.status)],
            }),
        }
    }
    for step in &mut steps {
        step.instances.sort_by_key(|x| x.map_index);
        for x in &step.instances {
            *step.counts.entry(x.status).or_default() += 1;
        }
    }
    steps
}

/// A step, or one instance of a mapped step: `train` or `train[3]`.
pub fn instance_ref(step: &str) -> (&str, Option<i64>) {
    step.strip_suffix(']')
        .and_then(|s| s.split_once('['))
        .and_then(|(id, i)| Some((id, Some(i.parse().ok()?))))
        .unwrap_or((step, None))
}

/// What a live tail of an attempt's log gets next.
#[derive(Debug, Clone, PartialEq)]
pub enum LogTail {
    /// New text, and the log's length after it (the next call's `sent`).
    Text(String, usize),
    /// The attempt ended with this status and its log has been sent.
    End(StepStatus),
}

/// How often a live tail looks for new log text.
pub const TAIL_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Waits until attempt `attempt` of `step` has log text beyond the first
/// `sent` bytes (returns it) or has ended with nothing more to send. The
/// log reaches the store every second while the attempt runs.
pub async fn tail_log(
    env: &Env,
    run_id: i64,
    step: &str,
    attempt: i64,
    sent: usize,
) -> OpsResult<LogTail> {
    loop {
        let a = self::attempt(env, run_id, step, Some(attempt)).await?;
        if a.log.len() > sent {
            // A caller's offset may fall inside a character.
            let mut start = sent;
            while !a.log.is_char_boundary(start) {
                start -= 1;
            }
            return Ok(LogTail::Text(a.log[start..].to_string(), a.log.len()));
        }
        if a.status.is_finished() {
            return Ok(LogTail::End(a.status));
        }
        tokio::time::sleep(TAIL_EVERY).await;
    }
}

/// A time for run filters: an age (`2d`, `12h`, `30m`) before `now`, a date
/// (`2026-11-22`) or an RFC 3339 time.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> OpsResult<DateTime<Utc>> {
    if let Ok(age) = humantime::parse_duration(text.trim()) {
        let age = chrono::Duration::from_std(age)
            .map_err(|_| OpsError::Invalid(format!("{text:?} is too long ago")))?;
        return now
            .checked_sub_signed(age)
            .ok_or_else(|| OpsError::Invalid(format!("{text:?} is too long ago")));
    }
    trigger::parse_logical_date(text).map_err(|_| {
        OpsError::Invalid(format!(
            "invalid time {text:?}: write an age (2d, 12h, 30m), a date (2026-11-22) or 2026-11-22T02:30:00Z"
        ))
    })
}

/// Queues a run of a registered pipeline for the daemon (or a server's
/// workers). `logical_date` is RFC 3339 or a date; default now.
pub async fn trigger(
    env: &Env,
    pipeline: &str,
    params: GivenParams,
    logical_date: Option<&str>,
    how: &str,
) -> OpsResult<RunRecord> {
    let logical = logical_date
        .map(trigger::parse_logical_date)
        .transpose()
        .map_err(OpsError::Invalid)?;
    let id = trigger::queue_run(env, pipeline, params, logical, how).await?;
    Ok(env.store.get_run(id).await?)
}

/// Asks a queued or running run to stop: nothing new starts, running steps
/// stop at their next heartbeat.
pub async fn cancel(env: &Env, run_id: i64) -> OpsResult<RunRecord> {
    let run = env.store.get_run(run_id).await?;
    if run.status.is_finished() {
        return Err(OpsError::Conflict(format!(
            "run {run_id} already ended ({})",
            run.status
        )));
    }
    Ok(env.store.request_cancel(run_id).await?)
}

/// Reopens a failed or cancelled run: its failed steps are queued again,
/// steps that did not run are decided again as the run goes on, and steps
/// that succeeded are not redone. A daemon (or a server's workers) takes
/// it from there; [`retry_here`] drives it in this process instead.
pub async fn retry(env: &Env, run_id: i64) -> OpsResult<RunRecord> {
    let run = env.store.get_run(run_id).await?;
    if run.trigger == "cli" {
        return Err(OpsError::Conflict(format!(
            "run {run_id} was started by `recflow run` and is driven by that terminal; retry it there with `recflow runs retry {run_id}`"
        )));
    }
    reopen(env, &run).await?;
    Ok(env.store.get_run(run_id).await?)
}

/// [`retry`], driven in this process until the run ends (`recflow runs
/// retry`); `on_step` is called as each attempt ends.
pub async fn retry_here(
    env: &Env,
    run_id: i64,
    on_step: &mut (dyn FnMut(&StepReport) + Send),
) -> OpsResult<RunReport> {
    let run = env.store.get_run(run_id).await?;
    reopen(env, &run).await?;
    let engine = engine::Engine::new(env.clone(), Default::default());
    engine::drive(engine, run_id, on_step)
        .await
        .map_err(super::internal)
}

async fn reopen(env: &Env, run: &RunRecord) -> OpsResult<()> {
    if !matches!(run.status, RunStatus::Failed | RunStatus::Cancelled) {
        return Err(OpsError::Conflict(format!(
            "run {} is {}; only a failed or cancelled run can be retried",
            run.id, run.status
        )));
    }
    let attempts = env.store.list_attempts(run.id).await?;
    env.store.reopen_run(run.id).await?;
    // The latest attempt of each step, and of each instance of a mapped
    // step. (Records of steps that did not run, attempt 0, are dropped by
    // the reopening and decided again: a mapped step whose list could not
    // be read expands anew.)
    let mut latest: BTreeMap<(&str, Option<i64>), &AttemptRecord> = BTreeMap::new();
    for a in attempts.iter().filter(|a| a.attempt > 0) {
        let e = latest.entry((a.step_id.as_str(), a.map_index)).or_insert(a);
        if a.attempt >= e.attempt {
            *e = a;
        }
    }
    for ((step, map_index), a) in latest {
        if a.status != StepStatus::Failed {
            continue;
        }
        match map_index {
            None => {
                env.store
                    .queue_attempt(run.id, step, &a.step_type, a.attempt + 1, Utc::now())
                    .await?;
            }
            Some(i) => {
                let item = a.map_item.clone().unwrap_or_default();
                env.store
                    .queue_instances(
                        run.id,
                        step,
                        &a.step_type,
                        a.attempt + 1,
                        Utc::now(),
                        &[(i, item)],
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Waits for a run to end, calling `on_attempt` once for each attempt as it
/// ends (`recflow trigger --wait`); returns the finished run.
pub async fn follow(
    env: &Env,
    run_id: i64,
    on_attempt: &mut (dyn FnMut(&AttemptRecord) + Send),
) -> OpsResult<RunRecord> {
    let mut reported = std::collections::HashSet::new();
    loop {
        let run = env.store.get_run(run_id).await?;
        for a in env.store.list_attempts(run_id).await? {
            if a.status.is_finished() && reported.insert(a.id) {
                on_attempt(&a);
            }
        }
        if run.status.is_finished() {
            return Ok(run);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Runs a pipeline file now, in this process (`recflow run`); `on_step` is
/// called as each attempt ends.
pub async fn run_here(
    env: &Env,
    pipeline: &Pipeline,
    params: Vec<(String, String)>,
    on_step: &mut (dyn FnMut(&StepReport) + Send),
) -> OpsResult<RunReport> {
    let params = params
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    engine::run_pipeline(env, pipeline, "cli", &params, on_step)
        .await
        .map_err(super::internal)
}

/// A pipeline's recent runs and the status of each of their steps: Airflow's
/// grid. Steps are in the pipeline's order; a step a run has no record of
/// is absent from its row.
#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    pub steps: Vec<String>,
    pub runs: Vec<GridRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GridRow {
    pub run: RunRecord,
    /// The latest attempt's status of each step, by step id.
    pub steps: BTreeMap<String, StepStatus>,
}

pub async fn grid(env: &Env, pipeline: &str, runs: i64) -> OpsResult<Grid> {
    let page = list(
        env,
        &RunFilter {
            pipeline: Some(pipeline.to_string()),
            limit: Some(runs),
            ..RunFilter::default()
        },
    )
    .await?;
    let ids: Vec<i64> = page.items.iter().map(|r| r.id).collect();
    let attempts = env.store.list_attempts_of_runs(&ids).await?;
    let mut by_run: BTreeMap<i64, BTreeMap<String, (i64, StepStatus)>> = BTreeMap::new();
    let mut seen_steps: Vec<String> = Vec::new();
    // Instances of mapped steps: the latest attempt of each.
    let mut instances: BTreeMap<(i64, String, i64), (i64, StepStatus)> = BTreeMap::new();
    for a in attempts {
        if !seen_steps.contains(&a.step_id) {
            seen_steps.push(a.step_id.clone());
        }
        if let Some(i) = a.map_index {
            let e = instances
                .entry((a.run_id, a.step_id, i))
                .or_insert((a.attempt, a.status));
            if a.attempt >= e.0 {
                *e = (a.attempt, a.status);
            }
            continue;
        }
        let steps = by_run.entry(a.run_id).or_default();
        let e = steps.entry(a.step_id).or_insert((a.attempt, a.status));
        if a.attempt >= e.0 {
            *e = (a.attempt, a.status);
        }
    }
    // A mapped step's cell: running while an instance runs or waits, else
    // failed if one failed, else succeeded.
    let rank = |s: StepStatus| match s {
        StepStatus::Queued | StepStatus::Running => 3,
        StepStatus::Failed => 2,
        StepStatus::Skipped | StepStatus::UpstreamFailed => 1,
        StepStatus::Succeeded => 0,
    };
    for ((run, step, _), (_, status)) in instances {
        let e = by_run
            .entry(run)
            .or_default()
            .entry(step)
            .or_insert((1, status));
        if rank(status) > rank(e.1) {
            e.1 = status;
        }
    }
    // The registered pipeline's step order, then steps only old runs had.
    let mut steps: Vec<String> = match env.store.get_pipeline(pipeline).await? {
        Some((_, text)) => crate::pipeline::parse_pipeline(&text)
            .map(|(spec, _)| spec.steps.iter().map(|s| s.id().to_string()).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    for s in seen_steps {
        if !steps.contains(&s) {
            steps.push(s);
        }
    }
    let runs = page
        .items
        .into_iter()
        .map(|run| {
            let steps = by_run
                .remove(&run.id)
                .unwrap_or_default()
                .into_iter()
                .map(|(step, (_, status))| (step, status))
                .collect();
            GridRow { run, steps }
        })
        .collect();
    Ok(Grid { steps, runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_ages_dates_or_instants() {
        let now = "2026-12-07T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let at = |t: &str| parse_time(t, now).unwrap().to_rfc3339();
        assert_eq!(at("2d"), "2026-12-05T12:00:00+00:00");
        assert_eq!(at("90m"), "2026-12-07T10:30:00+00:00");
        assert_eq!(at("2026-11-22"), "2026-11-22T00:00:00+00:00");
        assert_eq!(at("2026-11-22T02:30:00Z"), "2026-11-22T02:30:00+00:00");
        let bad = parse_time("yesterday", now).unwrap_err().to_string();
        assert!(bad.contains("invalid time \"yesterday\""), "{bad}");
    }
}
