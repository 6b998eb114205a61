//! Running pipelines: runs and step attempts live in the state store, and
//! every decision is made from what is recorded there, so a foreground
//! `recflow run`, one `recflow schedule` daemon, or several daemons sharing
//! PostgreSQL all execute runs the same way.
//!
//! - A run is created `queued` with its pipeline text, parameters, logical
//!   date and data interval, and starts when its pipeline has fewer than
//!   `max_active_runs` running.
//! - [`plan`] decides which steps to queue, retry or record as not run; any
//!   process may apply a plan (unique keys make a second apply harmless).
//! - Workers claim queued attempts in one transaction, heartbeat while they
//!   run them, and stop an attempt when its run is cancelled or times out.
//!   An attempt whose worker stops heartbeating is failed as interrupted and
//!   retried.

pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::Env;
use crate::pipeline::Pipeline;
use crate::pipeline::template::RunVariables;
use crate::steps::{StepContext, StepOutcome};
use crate::store::{
    AttemptEnd, AttemptRecord, NewRun, PipelineRegistration, RunRecord, RunStatus, StepStatus,
    VersionKind, VersionStatus,
};

use plan::Stopping;

/// How one step attempt ended, for the caller to print.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub run_id: i64,
    pub id: String,
    /// The instance of a mapped step.
    pub map_index: Option<i64>,
    pub step_type: String,
    pub attempt: i64,
    pub status: StepStatus,
    pub summary: String,
    pub error: Option<String>,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: i64,
    pub status: RunStatus,
    pub error: Option<String>,
    pub steps: Vec<StepReport>,
    pub duration: Duration,
}

/// Timing of workers.
#[derive(Debug, Clone, Copy)]
pub struct WorkerTiming {
    /// How often a worker marks its attempts alive.
    pub heartbeat: Duration,
    /// An attempt not marked alive for this long has lost its worker.
    pub stale_after: Duration,
}

impl Default for WorkerTiming {
    fn default() -> Self {
        WorkerTiming {
            heartbeat: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
        }
    }
}

impl WorkerTiming {
    /// Heartbeats six times per stale period.
    pub fn from_stale_after(stale_after: Duration) -> WorkerTiming {
        WorkerTiming {
            heartbeat: (stale_after / 6).max(Duration::from_millis(100)),
            stale_after,
        }
    }
}

/// Why a worker stops an attempt before it ends.
#[derive(Debug, Clone, PartialEq)]
enum StopReason {
    /// The run was cancelled or timed out, or the attempt is no longer ours.
    RunStopping,
    /// The daemon is shutting down: the attempt is interrupted and retried.
    Shutdown,
}

/// The part of the engine one process runs: its worker identity, the
/// pipelines of the runs it touches, and the attempts it is running.
pub struct Engine {
    pub env: Env,
    pub worker: String,
    pub timing: WorkerTiming,
    pipelines: Mutex<HashMap<i64, Arc<Pipeline>>>,
    running: Mutex<HashMap<i64, watch::Sender<Option<StopReason>>>>,
    /// SLA misses (run, step or "") this process has seen recorded.
    sla_seen: Mutex<std::collections::HashSet<(i64, String)>>,
}

impl Engine {
    pub fn new(env: Env, timing: WorkerTiming) -> Arc<Engine> {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let worker = format!(
            "{host}:{}:{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Arc::new(Engine {
            env,
            worker,
            timing,
            pipelines: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            sla_seen: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// The pipeline a run executes: the text recorded with it, parsed once.
    pub async fn pipeline_of(&self, run_id: i64) -> anyhow::Result<Arc<Pipeline>> {
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&run_id)
        {
            return Ok(p.clone());
        }
        let (text, file) = self.env.store.run_spec(run_id).await?;
        let pipeline = Arc::new(Pipeline::from_text(std::path::Path::new(&file), text)?);
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(run_id, pipeline.clone());
        Ok(pipeline)
    }

    fn forget(&self, run_id: i64) {
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&run_id);
    }

    /// Starts a queued run: sets its deadline and queues its first steps.
    pub async fn start_run(&self, run: &RunRecord) -> anyhow::Result<bool> {
        let pipeline = self.pipeline_of(run.id).await?;
        let deadline =
            pipeline.spec.orchestration.run_timeout.map(|d| {
                Utc::now() + chrono::Duration::from_std(d.0).unwrap_or(chrono::Duration::MAX)
            });
        if !self.env.store.start_run(run.id, deadline).await? {
            return Ok(false);
        }
        tracing::info!(run_id = run.id, pipeline = %run.pipeline, trigger = %run.trigger, "Run started.");
        let run = self.env.store.get_run(run.id).await?;
        self.advance(&run).await?;
        Ok(true)
    }

    /// Applies the next decisions of a running run; returns its status if it ended.
    pub async fn advance(&self, run: &RunRecord) -> anyhow::Result<Option<RunStatus>> {
        if run.status != RunStatus::Running {
            return Ok(run.status.is_finished().then_some(run.status));
        }
        let pipeline = self.pipeline_of(run.id).await?;
        let now = Utc::now();
        let stopping = if run.cancel_requested {
            Some(Stopping::Cancelled)
        } else {
            run.deadline.filter(|d| *d <= now).map(|_| {
                let limit = pipeline
                    .spec
                    .orchestration
                    .run_timeout
                    .map(|d| d.to_string())
                    .unwrap_or_default();
                Stopping::TimedOut(format!("the run timed out (run_timeout {limit})"))
            })
        };
        if let Some(stop) = &stopping {
            let reason = match stop {
                Stopping::Cancelled => "not run: the run was cancelled".to_string(),
                Stopping::TimedOut(why) => format!("not run: {why}"),
            };
            self.env.store.fail_queued_attempts(run.id, &reason).await?;
        }
        let attempts = self.env.store.list_attempts(run.id).await?;
        self.check_slas(&pipeline, run, &attempts, now).await?;
        // Jitter only spreads retries apart; a time-seeded generator will do.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(
            now.timestamp_nanos_opt().unwrap_or_default() as u64 ^ run.id as u64,
        );
        let decided = plan::plan(
            &pipeline.spec,
            &attempts,
            stopping.as_ref(),
            now,
            &mut || rand::Rng::random::<f64>(&mut rng),
        );
        for s in &decided.skip {
            self.env
                .store
                .skip_step(run.id, &s.step_id, s.step_type, s.status, &s.reason)
                .await?;
        }
        for q in &decided.queue {
            let queued = match q.map_index {
                None => {
                    self.env
                        .store
                        .queue_attempt(run.id, &q.step_id, q.step_type, q.attempt, q.not_before)
                        .await?
                }
                Some(i) => {
                    let item = q.map_item.clone().unwrap_or_default();
                    self.env
                        .store
                        .queue_instances(
                            run.id,
                            &q.step_id,
                            q.step_type,
                            q.attempt,
                            q.not_before,
                            &[(i, item)],
                        )
                        .await?
                        == 1
                }
            };
            if queued && q.attempt > 1 {
                tracing::info!(run_id = run.id, step = %q.step_id, map_index = q.map_index, attempt = q.attempt, not_before = %q.not_before, "Retry queued.");
            }
        }
        for e in &decided.expand {
            self.expand(&pipeline, run, &attempts, e).await?;
        }
        let Some((status, error)) = decided.finish else {
            return Ok(None);
        };
        if self
            .env
            .store
            .finish_run(run.id, status, error.as_deref())
            .await?
        {
            tracing::info!(run_id = run.id, pipeline = %run.pipeline, status = %status, "Run finished.");
            if status == RunStatus::Succeeded {
                self.apply_retention(run.id, &pipeline).await;
            }
            if status != RunStatus::Succeeded
                && let Some(hook) = &pipeline.spec.orchestration.on_failure
            {
                let run = self.env.store.get_run(run.id).await?;
                notify_failure(hook, &run, &attempts).await;
            }
        }
        self.forget(run.id);
        Ok(Some(status))
    }

    /// Records the run and each of its steps that went on past its SLA, and
    /// tells the pipeline's `on_sla_miss` webhook, once each: the store
    /// records a miss for one caller only, however many daemons look. The
    /// run goes on.
    async fn check_slas(
        &self,
        pipeline: &Pipeline,
        run: &RunRecord,
        attempts: &[AttemptRecord],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let past = |since: DateTime<Utc>, until: DateTime<Utc>, sla: crate::spec::Dur| {
            chrono::Duration::from_std(sla.0).is_ok_and(|d| since + d <= until)
        };
        let mut late: Vec<(Option<&str>, crate::spec::Dur, DateTime<Utc>)> = Vec::new();
        if let (Some(sla), Some(started)) = (pipeline.spec.orchestration.sla, run.started_at)
            && past(started, now, sla)
        {
            late.push((None, sla, started));
        }
        for step in &pipeline.spec.steps {
            let Some(sla) = step.common.sla else { continue };
            // Attempts that ran or wait to (not a record of a step not run).
            let mine = || {
                attempts
                    .iter()
                    .filter(|a| a.step_id == step.id() && a.attempt > 0)
            };
            // From when the step was first queued until now, or until it
            // ended if it ended between two checks.
            let first = mine().map(|a| a.queued_at).min();
            let until = if mine().any(|a| !a.status.is_finished()) {
                Some(now)
            } else {
                mine().filter_map(|a| a.finished_at).max()
            };
            if let (Some(first), Some(until)) = (first, until)
                && past(first, until, sla)
            {
                late.push((Some(step.id()), sla, first));
            }
        }
        for (step, sla, since) in late {
            let key = (run.id, step.unwrap_or("").to_string());
            if self.sla_seen().contains(&key) {
                continue;
            }
            let recorded = self
                .env
                .store
                .record_sla_miss(run.id, step, &sla.to_string())
                .await?;
            self.sla_seen().insert(key);
            if !recorded {
                continue;
            }
            tracing::warn!(run_id = run.id, pipeline = %run.pipeline, step = step.unwrap_or(""), sla = %sla, "SLA missed; the run goes on.");
            if let Some(hook) = &pipeline.spec.orchestration.on_sla_miss {
                let body = serde_json::json!({
                    "event": "sla_miss",
                    "pipeline": run.pipeline,
                    "run_id": run.id,
                    "step": step,
                    "sla": sla.to_string(),
                    "since": since,
                    "missed_at": now,
                    "status": run.status,
                    "trigger": run.trigger,
                    "logical_date": run.logical_date,
                });
                post_webhook(hook, run.id, &body, "SLA miss").await;
            }
        }
        Ok(())
    }

    /// Expands a mapped step whose dependencies are done: evaluates its
    /// list once, with the run's variables and its upstream outputs, and
    /// queues one instance per element in one transaction. An empty list
    /// records the step as skipped; a list that cannot be read, or is
    /// longer than [`crate::pipeline::MAX_INSTANCES`], fails the step.
    async fn expand(
        &self,
        pipeline: &Pipeline,
        run: &RunRecord,
        attempts: &[AttemptRecord],
        e: &plan::ExpandStep,
    ) -> anyhow::Result<()> {
        let Some(for_each) = pipeline.step(&e.step_id).and_then(|s| s.for_each()) else {
            anyhow::bail!("internal error: step {} is not mapped", e.step_id);
        };
        let ctx = run_variables(pipeline, run).context(&step_outputs(attempts));
        let skip = |status, reason: String| async move {
            self.env
                .store
                .skip_step(run.id, &e.step_id, e.step_type, status, &reason)
                .await
        };
        match for_each.items(&ctx) {
            Ok(items) if items.is_empty() => {
                skip(
                    StepStatus::Skipped,
                    "not run: for_each gave an empty list".to_string(),
                )
                .await?;
            }
            Ok(items) => {
                let instances: Vec<(i64, serde_json::Value)> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| (i as i64, item))
                    .collect();
                let added = self
                    .env
                    .store
                    .queue_instances(run.id, &e.step_id, e.step_type, 1, Utc::now(), &instances)
                    .await?;
                if added > 0 {
                    tracing::info!(run_id = run.id, step = %e.step_id, instances = instances.len(), "Mapped step expanded.");
                }
            }
            Err(why) => {
                tracing::warn!(run_id = run.id, step = %e.step_id, error = %why, "Mapped step could not expand.");
                skip(StepStatus::Failed, why).await?;
            }
        }
        Ok(())
    }

    fn sla_seen(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<(i64, String)>> {
        self.sla_seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a successful run of a pipeline with `retention: {after_run:
    /// true}`, prunes what the pipeline owns. A prune that fails is logged;
    /// the run stays successful and the next prune finishes the work.
    async fn apply_retention(&self, run_id: i64, pipeline: &Pipeline) {
        let Some(policy) = pipeline
            .spec
            .orchestration
            .retention
            .as_ref()
            .filter(|r| r.after_run)
        else {
            return;
        };
        let group = &pipeline.group.spec;
        let scope = crate::retention::Scope {
            dataset_group: Some(group.dataset_group.clone()),
            solutions: Some(group.solutions.keys().cloned().collect()),
            predictors: Some(group.predictors.keys().cloned().collect()),
            pipeline: Some(pipeline.spec.name.clone()),
        };
        match crate::retention::prune(&self.env, &scope, policy, false).await {
            Ok(r) => {
                tracing::info!(run_id, pipeline = %pipeline.spec.name, removed = r.removed.len(), bytes_freed = r.bytes_freed, "Retention applied.")
            }
            Err(e) => {
                tracing::warn!(run_id, pipeline = %pipeline.spec.name, error = %e, "Retention failed; the next prune retries.")
            }
        }
    }

    /// Runs one claimed attempt to its end and records it. CPU-heavy steps
    /// move their work to blocking threads themselves; this task only waits.
    pub async fn execute(self: Arc<Self>, attempt: AttemptRecord) -> StepReport {
        let started = Instant::now();
        let (stop_tx, stop_rx) = watch::channel(None);
        self.running().insert(attempt.id, stop_tx);
        let (status, end, interrupted) = match self.attempt_result(&attempt, stop_rx).await {
            Ok((outcome, log)) => (
                StepStatus::Succeeded,
                AttemptEnd {
                    summary: Some(outcome.summary),
                    outputs: serde_json::Value::Object(outcome.outputs),
                    error: None,
                    log,
                },
                false,
            ),
            Err((message, log, interrupted)) => (
                StepStatus::Failed,
                AttemptEnd {
                    summary: None,
                    outputs: serde_json::json!({}),
                    log: format!(
                        "{log}{} Error: {message}\n",
                        Utc::now().format("%H:%M:%S%.3f")
                    ),
                    error: Some(message),
                },
                interrupted,
            ),
        };
        self.running().remove(&attempt.id);
        let duration = started.elapsed();
        match self
            .env
            .store
            .finish_attempt(attempt.id, status, &end, interrupted)
            .await
        {
            Ok(true) => match status {
                StepStatus::Succeeded => {
                    tracing::info!(run_id = attempt.run_id, step = %attempt.step_id, map_index = attempt.map_index, attempt = attempt.attempt, seconds = duration.as_secs_f64(), "Step succeeded.")
                }
                _ => {
                    tracing::warn!(run_id = attempt.run_id, step = %attempt.step_id, map_index = attempt.map_index, attempt = attempt.attempt, error = end.error.as_deref().unwrap_or(""), "Step failed.")
                }
            },
            Ok(false) => {
                tracing::warn!(run_id = attempt.run_id, step = %attempt.step_id, "The attempt had already been ended elsewhere (its heartbeat was late); result dropped.")
            }
            Err(e) => {
                tracing::error!(run_id = attempt.run_id, step = %attempt.step_id, error = %e, "Recording the attempt failed; it will be failed as stale and retried.")
            }
        }
        StepReport {
            run_id: attempt.run_id,
            map_index: attempt.map_index,
            id: attempt.step_id,
            step_type: attempt.step_type,
            attempt: attempt.attempt,
            status,
            summary: end.summary.unwrap_or_default(),
            error: end.error,
            duration,
        }
    }

    /// The step's outcome and log, or the error, log and whether the
    /// attempt was interrupted (not the step's fault).
    async fn attempt_result(
        &self,
        attempt: &AttemptRecord,
        mut stop: watch::Receiver<Option<StopReason>>,
    ) -> Result<(StepOutcome, String), (String, String, bool)> {
        let fail = |m: String| (m, String::new(), false);
        let pipeline = self
            .pipeline_of(attempt.run_id)
            .await
            .map_err(|e| fail(format!("{e:#}")))?;
        let run = self
            .env
            .store
            .get_run(attempt.run_id)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let step = pipeline.step(&attempt.step_id).ok_or_else(|| {
            fail(format!(
                "the run's pipeline has no step {}",
                attempt.step_id
            ))
        })?;
        // Outputs of earlier steps, for steps that read them (templates,
        // deploy and batch steps looking for this run's solution version).
        let outputs = if step.reads_upstream_outputs() {
            step_outputs(
                &self
                    .env
                    .store
                    .list_attempts(run.id)
                    .await
                    .map_err(|e| fail(e.to_string()))?,
            )
        } else {
            BTreeMap::new()
        };
        let vars = run_variables(&pipeline, &run);
        let mut context = vars.context(&outputs);
        if let Some(i) = attempt.map_index {
            let item = attempt.map_item.clone().unwrap_or_default();
            context = crate::pipeline::for_each::instance_context(context, i, &item);
        }
        let kind = step
            .settings_for(&context)
            .map_err(|p| fail(p.to_string()))?;
        let policy = step.retry_policy(&pipeline.spec.orchestration);
        let timeout = policy.timeout.or(kind.default_timeout());
        let ctx = StepContext::new(
            &self.env,
            &pipeline.group,
            &pipeline.spec.name,
            run.id,
            &attempt.step_id,
            &outputs,
        );
        if attempt.attempt > 1 {
            ctx.log(format!("Attempt {}.", attempt.attempt));
        }
        let work = async {
            match timeout {
                Some(limit) => match tokio::time::timeout(limit, kind.run(&ctx)).await {
                    Ok(r) => r.map_err(|e| (format!("{e:#}"), false)),
                    Err(_) => Err((
                        format!("timed out after {}", humantime::format_duration(limit)),
                        false,
                    )),
                },
                None => kind.run(&ctx).await.map_err(|e| (format!("{e:#}"), false)),
            }
        };
        let stopped = async {
            loop {
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if let Some(reason) = stop.borrow().clone() {
                    return reason;
                }
            }
        };
        // The log goes to the store as it grows, so it can be followed while
        // the attempt runs (`recflow runs logs`, the API's live tail). The
        // flush is never cancelled halfway (a chunk taken but not written
        // would be lost): it is told to stop once the attempt ends, and
        // what it did not write goes with the attempt's end.
        let (ended, mut end_seen) = tokio::sync::oneshot::channel::<()>();
        let flush = async {
            let mut tick = tokio::time::interval(LOG_FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut end_seen => return,
                    _ = tick.tick() => {}
                }
                let chunk = ctx.take_log();
                if chunk.is_empty() {
                    continue;
                }
                if let Err(e) = self.env.store.append_attempt_log(attempt.id, &chunk).await {
                    tracing::warn!(run_id = attempt.run_id, step = %attempt.step_id, error = %e, "Writing the attempt's log failed; it is kept for the next write.");
                    ctx.restore_log(chunk);
                }
            }
        };
        let attempt_ends = async {
            let result = tokio::select! {
                r = work => r,
                reason = stopped => Err(match reason {
                    StopReason::RunStopping => ("stopped: the run was cancelled or timed out".to_string(), false),
                    StopReason::Shutdown => ("interrupted: the daemon shut down before the attempt finished; it will be retried".to_string(), true),
                }),
            };
            let _ = ended.send(());
            result
        };
        let (result, ()) = tokio::join!(attempt_ends, flush);
        let log = ctx.take_log();
        result
            .map(|o| (o, log.clone()))
            .map_err(|(m, interrupted)| (m, log, interrupted))
    }

    /// Marks this worker's attempts alive and stops those whose run is
    /// stopping. Called every `timing.heartbeat`.
    pub async fn heartbeat(&self) -> anyhow::Result<()> {
        let ids = self.running_ids();
        let stop = self.env.store.heartbeat(&self.worker, &ids).await?;
        self.stop_attempts(&stop, StopReason::RunStopping);
        Ok(())
    }

    fn stop_attempts(&self, ids: &[i64], reason: StopReason) {
        let running = self.running();
        for id in ids {
            if let Some(tx) = running.get(id) {
                let _ = tx.send(Some(reason.clone()));
            }
        }
    }

    /// Interrupts every attempt this worker runs (shutdown after the grace period).
    pub fn interrupt_all(&self) {
        self.stop_attempts(&self.running_ids(), StopReason::Shutdown);
    }

    /// Fails attempts whose workers stopped heartbeating; their runs retry them.
    pub async fn fail_stale(&self) -> anyhow::Result<()> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(self.timing.stale_after).unwrap_or_default();
        let lost = self.env.store.fail_stale_attempts(cutoff).await?;
        for a in &lost {
            tracing::warn!(run_id = a.run_id, step = %a.step_id, map_index = a.map_index, attempt = a.attempt, worker = a.worker.as_deref().unwrap_or(""), "Attempt lost its worker; failed as interrupted.");
        }
        let steps: Vec<(i64, &str)> = lost
            .iter()
            .map(|a| (a.run_id, a.step_id.as_str()))
            .collect();
        self.fail_orphaned_versions(&steps, "the attempt creating it lost its worker")
            .await
    }

    /// Versions that failed or stopped attempts were creating never become
    /// readable; marks them failed so that listings say so.
    async fn fail_orphaned_versions(&self, steps: &[(i64, &str)], why: &str) -> anyhow::Result<()> {
        if steps.is_empty() {
            return Ok(());
        }
        for kind in [VersionKind::Dataset, VersionKind::Solution] {
            let all = crate::store::VersionQuery::all(kind, None);
            for v in self.env.store.list_versions(&all).await? {
                let orphaned = v.status == VersionStatus::Creating
                    && steps.iter().any(|(run, step)| {
                        v.run_id == Some(*run) && v.step_id.as_deref() == Some(*step)
                    });
                if orphaned {
                    self.env
                        .store
                        .fail_version(kind, &v.owner, v.version, why)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The attempts this worker runs, and their stop signals.
    fn running(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<i64, watch::Sender<Option<StopReason>>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running_ids(&self) -> Vec<i64> {
        self.running().keys().copied().collect()
    }
}

/// How often a foreground run looks at its plan, and so at its SLAs,
/// while its attempts run.
const SLA_CHECK_EVERY: Duration = Duration::from_secs(1);

/// How often a running attempt's new log lines are written to the store.
const LOG_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Outputs of the steps of a run that succeeded, by step id. A mapped
/// step's are a list in instance order (`null` for an instance that did
/// not succeed), once any instance succeeded.
pub fn step_outputs(attempts: &[AttemptRecord]) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let mut mapped: BTreeMap<&str, BTreeMap<i64, Option<&serde_json::Value>>> = BTreeMap::new();
    for a in attempts {
        match a.map_index {
            None if a.status == StepStatus::Succeeded => {
                out.insert(a.step_id.clone(), a.outputs.clone());
            }
            None => {}
            Some(i) => {
                let slot = mapped.entry(&a.step_id).or_default().entry(i).or_default();
                if a.status == StepStatus::Succeeded {
                    *slot = Some(&a.outputs);
                }
            }
        }
    }
    for (id, instances) in mapped {
        if instances.values().any(Option::is_some) {
            let n = instances.keys().next_back().map_or(0, |i| i + 1);
            let mut list = vec![serde_json::Value::Null; n as usize];
            for (i, o) in instances {
                if let Some(o) = o {
                    list[i as usize] = o.clone();
                }
            }
            out.insert(id.to_string(), serde_json::Value::Array(list));
        }
    }
    out
}

/// The template variables of a run, dates in the pipeline's time zone.
pub fn run_variables(pipeline: &Pipeline, run: &RunRecord) -> RunVariables {
    // Validation rejected an unknown zone; UTC is only a fallback for a
    // zone that a newer tz database once knew.
    let tz: chrono_tz::Tz = pipeline
        .spec
        .orchestration
        .timezone
        .parse()
        .unwrap_or(chrono_tz::UTC);
    let local = |t: Option<DateTime<Utc>>| {
        t.unwrap_or(run.created_at)
            .with_timezone(&tz)
            .fixed_offset()
    };
    RunVariables {
        run_id: run.id,
        pipeline: run.pipeline.clone(),
        logical_date: local(run.logical_date),
        data_interval_start: local(run.data_interval_start),
        data_interval_end: local(run.data_interval_end),
        params: run.params.as_object().cloned().unwrap_or_default(),
        trigger: run
            .trigger_info
            .clone()
            .unwrap_or_else(|| serde_json::json!({})),
    }
}

/// A run of `pipeline` for `logical_date` (default now), with parameters
/// given as text or typed JSON. The data interval ends at the logical date
/// and starts at the schedule's previous time (or at the logical date for
/// an unscheduled pipeline).
pub fn new_run(
    pipeline: &Pipeline,
    trigger: &str,
    params: &serde_json::Map<String, serde_json::Value>,
    logical_date: Option<DateTime<Utc>>,
) -> anyhow::Result<NewRun> {
    let o = &pipeline.spec.orchestration;
    let params = o.resolve_params(params).map_err(|e| anyhow::anyhow!(e))?;
    let logical = logical_date.unwrap_or_else(Utc::now);
    let start = o
        .schedule
        .as_deref()
        .and_then(|s| crate::pipeline::schedule::CronSchedule::parse(s, &o.timezone).ok())
        .and_then(|s| s.prev_at_or_before(logical - chrono::Duration::seconds(1)))
        .unwrap_or(logical);
    Ok(NewRun {
        pipeline: pipeline.spec.name.clone(),
        trigger: trigger.to_string(),
        spec: pipeline.source_text.clone(),
        file: pipeline.file.display().to_string(),
        params: serde_json::Value::Object(params),
        logical_date: logical,
        data_interval: (start, logical),
        max_parallel_steps: o.max_parallel_steps.max(1) as i64,
        status: RunStatus::Queued,
        error: None,
        trigger_info: None,
        trigger_key: None,
    })
}

/// Records the pipeline (and its event tracker) in the state store, so
/// triggers and the API can find it.
pub async fn register(env: &Env, pipeline: &Pipeline) -> anyhow::Result<()> {
    let group = &pipeline.group;
    env.store
        .upsert_pipeline(&PipelineRegistration {
            name: pipeline.spec.name.clone(),
            dataset_group: group.name().to_string(),
            file: pipeline.file.display().to_string(),
            spec: pipeline.source_text.clone(),
            filters: group
                .spec
                .filters
                .iter()
                .map(|(name, f)| (name.clone(), f.expression.clone()))
                .collect(),
        })
        .await?;
    if let Some(t) = &group.spec.event_tracker {
        env.store
            .set_event_tracker(group.name(), &t.tracking_id)
            .await?;
    }
    Ok(())
}

/// Runs a pipeline now, in this process (`recflow run`). `on_step` is called
/// as each attempt ends.
pub async fn run_pipeline(
    env: &Env,
    pipeline: &Pipeline,
    trigger: &str,
    params: &serde_json::Map<String, serde_json::Value>,
    on_step: &mut (dyn FnMut(&StepReport) + Send),
) -> anyhow::Result<RunReport> {
    register(env, pipeline).await?;
    let run = new_run(pipeline, trigger, params, None)?;
    let run_id = env
        .store
        .create_run(&run)
        .await?
        .ok_or_else(|| anyhow::anyhow!("internal error: a foreground run was refused"))?;
    drive(
        Engine::new(env.clone(), WorkerTiming::default()),
        run_id,
        on_step,
    )
    .await
}

/// Executes one run in this process until it ends: starts it if queued,
/// applies its plans and runs its attempts, up to its `max_parallel_steps`
/// at once.
pub async fn drive(
    engine: Arc<Engine>,
    run_id: i64,
    on_step: &mut (dyn FnMut(&StepReport) + Send),
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let run = engine.env.store.get_run(run_id).await?;
    if run.status == RunStatus::Queued {
        engine.start_run(&run).await?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut reports = Vec::new();
    let mut heartbeat = tokio::time::interval(engine.timing.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Plans (and SLA checks) while attempts run, between heartbeats.
    let mut check = tokio::time::interval(SLA_CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let run = loop {
        let run = engine.env.store.get_run(run_id).await?;
        if run.status.is_finished() && tasks.is_empty() {
            break run;
        }
        if tasks.is_empty() && engine.advance(&run).await?.is_some() {
            break engine.env.store.get_run(run_id).await?;
        }
        while (tasks.len() as i64) < run.max_parallel_steps {
            match engine
                .env
                .store
                .claim_attempt(&engine.worker, Some(run_id))
                .await?
            {
                Some(a) => {
                    tasks.spawn(engine.clone().execute(a));
                }
                None => break,
            }
        }
        tokio::select! {
            Some(done) = tasks.join_next() => {
                // Every attempt that has ended, then one plan for all of them.
                let mut done = Some(done);
                while let Some(d) = done.take().or_else(|| tasks.try_join_next()) {
                    let report = d?;
                    on_step(&report);
                    reports.push(report);
                }
                let run = engine.env.store.get_run(run_id).await?;
                engine.advance(&run).await?;
            }
            _ = heartbeat.tick() => {
                engine.heartbeat().await?;
                if !tasks.is_empty() {
                    let run = engine.env.store.get_run(run_id).await?;
                    engine.advance(&run).await?;
                }
            }
            _ = check.tick(), if !tasks.is_empty() => {
                let run = engine.env.store.get_run(run_id).await?;
                engine.advance(&run).await?;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)), if tasks.is_empty() => {}
        }
    };
    Ok(RunReport {
        run_id,
        status: run.status,
        error: run.error,
        steps: reports,
        duration: started.elapsed(),
    })
}

/// POSTs the run summary to the pipeline's failure webhook. A webhook that
/// fails is logged; it never changes the run's own status.
async fn notify_failure(
    hook: &crate::pipeline::orchestration::OnFailureSpec,
    run: &RunRecord,
    attempts: &[AttemptRecord],
) {
    let steps: Vec<serde_json::Value> = attempts
        .iter()
        .map(|a| {
            serde_json::json!({
                "step": a.step_id, "type": a.step_type, "attempt": a.attempt,
                "status": a.status, "error": a.error,
            })
        })
        .collect();
    let body = serde_json::json!({
        "pipeline": run.pipeline,
        "run_id": run.id,
        "status": run.status,
        "error": run.error,
        "trigger": run.trigger,
        "logical_date": run.logical_date,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "steps": steps,
    });
    post_webhook(hook, run.id, &body, "Failure").await;
}

/// POSTs `body` as JSON to a pipeline's webhook (`what`: `Failure`, `SLA
/// miss`), with headers from the environment. A webhook that fails is
/// logged; it never changes the run.
async fn post_webhook(
    hook: &crate::pipeline::orchestration::OnFailureSpec,
    run_id: i64,
    body: &serde_json::Value,
    what: &str,
) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(&hook.webhook)
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, var) in &hook.headers_from_env {
        match std::env::var(var) {
            Ok(v) => request = request.header(name.as_str(), v),
            Err(_) => {
                tracing::warn!(header = %name, variable = %var, "Webhook header variable is not set; sending without it.")
            }
        }
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => {
            tracing::info!(run_id, url = %hook.webhook, "{what} webhook delivered.");
        }
        Ok(r) => {
            tracing::error!(run_id, url = %hook.webhook, status = %r.status(), "{what} webhook answered with an error.")
        }
        Err(e) => {
            tracing::error!(run_id, url = %hook.webhook, error = %e, "{what} webhook could not be delivered.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_steps_outputs_are_a_list_in_instance_order() {
        let t = Utc::now();
        let a =
            |step: &str, i: Option<i64>, n: i64, status, out: serde_json::Value| AttemptRecord {
                id: 0,
                run_id: 1,
                step_id: step.into(),
                step_type: "shell".into(),
                map_index: i,
                map_item: i.map(|_| serde_json::json!("x")),
                attempt: n,
                status,
                queued_at: t,
                not_before: t,
                started_at: None,
                finished_at: None,
                worker: None,
                heartbeat_at: None,
                interrupted: false,
                summary: None,
                outputs: out,
                error: None,
                log: String::new(),
            };
        use serde_json::json;
        let attempts = [
            a(
                "list",
                None,
                1,
                StepStatus::Succeeded,
                json!({"json": [1, 2, 3]}),
            ),
            a("fan", Some(1), 1, StepStatus::Failed, json!({})),
            a("fan", Some(0), 1, StepStatus::Succeeded, json!({"v": 0})),
            a("fan", Some(2), 1, StepStatus::Succeeded, json!({"v": 2})),
            a("fan", Some(1), 2, StepStatus::Succeeded, json!({"v": 1})),
            a("gone", Some(0), 1, StepStatus::Failed, json!({})),
        ];
        let out = step_outputs(&attempts);
        assert_eq!(out["fan"], json!([{"v": 0}, {"v": 1}, {"v": 2}]));
        assert_eq!(out["list"], json!({"json": [1, 2, 3]}));
        assert!(!out.contains_key("gone"));
        let partial = step_outputs(&attempts[..4]);
        assert_eq!(partial["fan"], json!([{"v": 0}, null, {"v": 2}]));
    }
}
