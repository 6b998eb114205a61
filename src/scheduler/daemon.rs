//! `recflow schedule DIR`: the daemon. It loads every pipeline in a folder
//! (reloading changed files; an invalid change is reported and the previous
//! version stays), fires schedules while it holds the scheduler lease,
//! starts queued runs within `max_active_runs`, and executes step attempts.
//! Several daemons may share one state store: one fires schedules, all
//! execute. On SIGTERM it starts nothing new and lets running attempts
//! finish within the grace period; what is still running then is recorded
//! as interrupted, and retried by whichever daemon runs next.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Env;
use crate::engine::{Engine, WorkerTiming};
use crate::pipeline::Pipeline;
use crate::pipeline::orchestration::{Catchup, Overlap};
use crate::pipeline::schedule::CronSchedule;
use crate::store::{RunStatus, StateStore, StoreError};

/// The lease that lets one daemon fire schedules.
const SCHEDULER_LEASE: &str = "scheduler";

/// A scheduled time fired within this long after it passed is on time;
/// older ones were missed (the daemon was down) and follow `catchup`.
const ON_TIME: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The folder of pipeline files to load, watch and fire schedules for;
    /// `None` only runs what is queued (`recflow serve` runs the runs its
    /// console and API trigger, and leaves schedules to `recflow schedule`).
    pub dir: Option<PathBuf>,
    /// Step attempts this process runs at once.
    pub workers: usize,
    pub timing: WorkerTiming,
    /// How long running attempts may finish after SIGTERM.
    pub grace_period: Duration,
    /// How often the folder is checked for changed pipeline files.
    pub reload_interval: Duration,
}

struct Loaded {
    text: String,
    pipeline: Arc<Pipeline>,
    schedule: Option<CronSchedule>,
}

/// The pipelines of the folder, by name.
#[derive(Default)]
struct Folder {
    by_file: HashMap<PathBuf, String>,
    pipelines: BTreeMap<String, Loaded>,
}

impl Folder {
    /// Reads the folder; registers new and changed pipelines. Returns how
    /// many files failed to load (their previous version, if any, stays).
    async fn reload(&mut self, env: &Env, dir: &Path) -> anyhow::Result<usize> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut failed = 0;
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            if let Some(name) = self.by_file.get(file)
                && self.pipelines.get(name).is_some_and(|l| l.text == text)
            {
                continue;
            }
            let pipeline = match Pipeline::from_text(file, text.clone()) {
                Ok(p) => p,
                Err(e) => {
                    failed += 1;
                    let keeping = self
                        .by_file
                        .get(file)
                        .map(|n| format!("; pipeline {n} keeps its previous version"))
                        .unwrap_or_default();
                    tracing::error!(file = %file.display(), "Invalid pipeline file{keeping}:\n{e}");
                    // Report a broken file once, until it changes again.
                    if let Some(name) = self.by_file.get(file).cloned()
                        && let Some(l) = self.pipelines.get_mut(&name)
                    {
                        l.text = text;
                    }
                    continue;
                }
            };
            let name = pipeline.spec.name.clone();
            if let Some(other) = self
                .by_file
                .iter()
                .find(|(f, n)| **n == name && *f != file)
                .map(|(f, _)| f.clone())
            {
                failed += 1;
                tracing::error!(file = %file.display(), other = %other.display(), "Two files declare pipeline {name}; ignoring this one.");
                continue;
            }
            let o = &pipeline.spec.orchestration;
            let schedule = match &o.schedule {
                Some(expr) => Some(CronSchedule::parse(expr, &o.timezone)?),
                None => None,
            };
            // A filter that another pipeline of the group declares makes
            // the file invalid, as a bad file would; it is tried again at
            // each reload, so it loads once the other pipeline drops it.
            if let Err(e) = crate::engine::register(env, &pipeline).await {
                match e.downcast_ref::<StoreError>() {
                    Some(StoreError::FilterConflict { .. }) => {
                        failed += 1;
                        tracing::error!(file = %file.display(), "Pipeline not loaded: {e:#}");
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            let verb = if self.pipelines.contains_key(&name) {
                "Reloaded"
            } else {
                "Loaded"
            };
            tracing::info!(pipeline = %name, file = %file.display(), schedule = o.schedule.as_deref().unwrap_or("none"), "{verb} pipeline.");
            self.by_file.insert(file.clone(), name.clone());
            self.pipelines.insert(
                name,
                Loaded {
                    text,
                    pipeline: Arc::new(pipeline),
                    schedule,
                },
            );
        }
        // Files that disappeared take their pipeline's schedule with them.
        let gone: Vec<PathBuf> = self
            .by_file
            .keys()
            .filter(|f| !files.contains(f))
            .cloned()
            .collect();
        for file in gone {
            if let Some(name) = self.by_file.remove(&file) {
                tracing::info!(pipeline = %name, file = %file.display(), "Pipeline file removed; its schedule stops.");
                self.pipelines.remove(&name);
            }
        }
        Ok(failed)
    }
}

/// Runs the daemon until SIGTERM or Ctrl-C.
pub async fn run(env: Env, config: DaemonConfig) -> anyhow::Result<()> {
    let engine = Engine::new(env.clone(), config.timing);
    let mut folder = Folder::default();
    let failed = match &config.dir {
        Some(dir) => folder.reload(&env, dir).await?,
        None => 0,
    };
    tracing::info!(
        worker = %engine.worker,
        pipelines = folder.pipelines.len(),
        invalid = failed,
        state = %crate::store::redact(&env.settings.state_url),
        "Daemon started."
    );
    // A prune a stopped daemon left half done: its versions are marked
    // `deleting` (nothing reads them); their files go now.
    match crate::retention::finish_pending(&env).await {
        Ok(done) if !done.is_empty() => {
            tracing::info!(versions = done.len(), "Finished an interrupted prune.")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "Finishing an interrupted prune failed; the next prune retries.")
        }
    }

    let mut tasks = tokio::task::JoinSet::new();
    let mut heartbeat = tokio::time::interval(config.timing.heartbeat);
    let mut scheduler_tick = tokio::time::interval(Duration::from_secs(1));
    let mut reload_tick = tokio::time::interval(config.reload_interval);
    for t in [&mut heartbeat, &mut scheduler_tick, &mut reload_tick] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut is_scheduler = false;
    let mut pollers = super::data::Pollers::default();

    loop {
        // Runs: start queued ones, move running ones on, claim their steps.
        if let Err(e) = step_runs(&engine).await {
            tracing::error!(error = %format!("{e:#}"), "Advancing runs failed; retrying.");
        }
        while tasks.len() < config.workers {
            match env.store.claim_attempt(&engine.worker, None).await {
                Ok(Some(a)) => {
                    tracing::info!(run_id = a.run_id, step = %a.step_id, attempt = a.attempt, "Attempt claimed.");
                    tasks.spawn(engine.clone().execute(a));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "Claiming an attempt failed.");
                    break;
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown => break,
            Some(done) = tasks.join_next() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "An attempt task panicked.");
                }
            }
            _ = heartbeat.tick() => {
                if let Err(e) = engine.heartbeat().await {
                    tracing::error!(error = %e, "Heartbeat failed.");
                }
                if let Err(e) = engine.fail_stale().await {
                    tracing::error!(error = %e, "Checking for lost attempts failed.");
                }
                if let Err(e) = fail_orphaned_foreground_runs(&engine).await {
                    tracing::error!(error = %e, "Checking for abandoned foreground runs failed.");
                }
            }
            _ = scheduler_tick.tick(), if config.dir.is_some() => {
                match env.store.try_lease(SCHEDULER_LEASE, &engine.worker, config.timing.stale_after).await {
                    Ok(true) => {
                        if !is_scheduler {
                            tracing::info!(worker = %engine.worker, "This daemon now fires schedules.");
                        }
                        is_scheduler = true;
                        if let Err(e) = fire_schedules(&engine, &folder, Utc::now()).await {
                            tracing::error!(error = %format!("{e:#}"), "Firing schedules failed.");
                        }
                        let pipelines = folder.pipelines.values().map(|l| l.pipeline.as_ref());
                        if let Err(e) = super::data::poll(&engine, pipelines, &mut pollers).await {
                            tracing::error!(error = %format!("{e:#}"), "Polling `on:` triggers failed.");
                        }
                    }
                    Ok(false) => is_scheduler = false,
                    Err(e) => tracing::error!(error = %e, "Renewing the scheduler lease failed."),
                }
            }
            _ = reload_tick.tick(), if config.dir.is_some() => {
                let dir = config.dir.as_deref().expect("checked");
                if let Err(e) = folder.reload(&env, dir).await {
                    tracing::error!(error = %format!("{e:#}"), "Reloading pipelines failed.");
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }

    // Shutdown: nothing new starts; running attempts get the grace period.
    if is_scheduler {
        let _ = env
            .store
            .release_lease(SCHEDULER_LEASE, &engine.worker)
            .await;
    }
    tracing::info!(running = tasks.len(), grace = %humantime::format_duration(config.grace_period), "Shutting down: waiting for running attempts.");
    let deadline = tokio::time::Instant::now() + config.grace_period;
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = heartbeat.tick() => { let _ = engine.heartbeat().await; }
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(running = tasks.len(), "Grace period over: interrupting running attempts; they will be retried.");
                engine.interrupt_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    // Let the runs whose attempts just ended record it.
    let _ = step_runs(&engine).await;
    tracing::info!("Daemon stopped.");
    Ok(())
}

/// Starts queued runs where `max_active_runs` allows, and advances the
/// running ones. Foreground runs (`recflow run`) belong to their process.
async fn step_runs(engine: &Arc<Engine>) -> anyhow::Result<()> {
    let store = &engine.env.store;
    let runs = store
        .runs_with_status(&[RunStatus::Running, RunStatus::Queued])
        .await?;
    let mut active: HashMap<String, u32> = HashMap::new();
    for r in runs.iter().filter(|r| r.status == RunStatus::Running) {
        *active.entry(r.pipeline.clone()).or_default() += 1;
    }
    for run in runs.iter().filter(|r| r.trigger != "cli") {
        let result = async {
            if run.status == RunStatus::Queued {
                let limit = engine
                    .pipeline_of(run.id)
                    .await?
                    .spec
                    .orchestration
                    .max_active_runs;
                let n = active.entry(run.pipeline.clone()).or_default();
                if *n < limit.max(1) && engine.start_run(run).await? {
                    *n += 1;
                }
            } else {
                engine.advance(run).await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = result {
            // A run whose recorded pipeline no longer parses cannot go on.
            tracing::error!(run_id = run.id, error = %format!("{e:#}"), "Run cannot proceed; failing it.");
            store
                .finish_run(run.id, RunStatus::Failed, Some(&format!("{e:#}")))
                .await?;
        }
    }
    Ok(())
}

/// A `recflow run` whose process died leaves its run `running` with nothing
/// left to do in it (its lost attempt was failed as stale). Daemons do not
/// take such runs over — the user started them by hand — but end them, so
/// that history says what happened and `recflow runs retry` can finish them.
async fn fail_orphaned_foreground_runs(engine: &Arc<Engine>) -> anyhow::Result<()> {
    let store = &engine.env.store;
    let now = Utc::now();
    let quiet = chrono::Duration::from_std(engine.timing.stale_after).unwrap_or_default();
    for run in store.runs_with_status(&[RunStatus::Running]).await? {
        if run.trigger != "cli" {
            continue;
        }
        let attempts = store.list_attempts(run.id).await?;
        if attempts.iter().any(|a| !a.status.is_finished()) {
            continue;
        }
        let last = attempts
            .iter()
            .filter_map(|a| a.finished_at)
            .chain(run.started_at)
            .max()
            .unwrap_or(run.created_at);
        if now - last > quiet {
            let why = format!(
                "the `recflow run` process running it stopped; `recflow runs retry {}` runs what is left",
                run.id
            );
            if store
                .finish_run(run.id, RunStatus::Failed, Some(&why))
                .await?
            {
                tracing::warn!(run_id = run.id, pipeline = %run.pipeline, "Foreground run abandoned by its process; marked failed.");
            }
        }
    }
    Ok(())
}

/// Creates the runs of every schedule time due by `now`. A paused
/// pipeline fires nothing and its cursor stays: once unpaused, the times it
/// missed follow its catch-up policy, as times missed while no daemon ran do.
async fn fire_schedules(
    engine: &Arc<Engine>,
    folder: &Folder,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let store = engine.env.store.as_ref();
    let paused: std::collections::HashSet<String> = store
        .list_pipelines()
        .await?
        .into_iter()
        .filter(|p| p.paused)
        .map(|p| p.name)
        .collect();
    for (name, loaded) in &folder.pipelines {
        let Some(schedule) = &loaded.schedule else {
            continue;
        };
        if paused.contains(name) {
            continue;
        }
        let o = &loaded.pipeline.spec.orchestration;
        let Some(cursor) = store.schedule_cursor(name).await? else {
            // First sight of this schedule: nothing was missed.
            store.set_schedule_cursor(name, now).await?;
            if let Some(next) = schedule.next_after(now) {
                tracing::info!(pipeline = %name, next = %next, "Schedule armed.");
            }
            continue;
        };
        let limit = match o.catchup {
            Catchup::All => o.max_catchup_runs.max(1) as usize,
            _ => 1,
        };
        let due = schedule.fire_times_between(cursor, now, limit);
        let Some(&latest) = due.last() else {
            continue;
        };
        let on_time = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default() <= ON_TIME;
        let fire: Vec<DateTime<Utc>> = match o.catchup {
            Catchup::None => due.iter().copied().filter(|t| on_time(*t)).collect(),
            Catchup::Latest | Catchup::All => due.clone(),
        };
        if fire.len() < due.len() {
            tracing::info!(pipeline = %name, missed = due.len() - fire.len(), "Schedule times missed while no daemon ran were passed over (catchup: none).");
        }
        for t in fire {
            fire_one(engine, loaded, t, !on_time(t)).await?;
        }
        store.set_schedule_cursor(name, latest).await?;
    }
    Ok(())
}

/// One scheduled run. A catch-up run is always queued; an on-time one
/// follows the overlap policy when the pipeline is at `max_active_runs`.
async fn fire_one(
    engine: &Arc<Engine>,
    loaded: &Loaded,
    at: DateTime<Utc>,
    catchup: bool,
) -> anyhow::Result<()> {
    let store: &dyn StateStore = engine.env.store.as_ref();
    let pipeline = &loaded.pipeline;
    let o = &pipeline.spec.orchestration;
    let mut run = crate::engine::new_run(pipeline, "schedule", &serde_json::Map::new(), Some(at))?;
    let active: Vec<_> = store
        .runs_with_status(&[RunStatus::Running, RunStatus::Queued])
        .await?
        .into_iter()
        .filter(|r| r.pipeline == pipeline.spec.name)
        .collect();
    if !catchup && active.len() as u32 >= o.max_active_runs.max(1) {
        match o.overlap {
            Overlap::Queue => {}
            Overlap::Skip => {
                run.status = RunStatus::Skipped;
                run.error = Some(format!(
                    "skipped: {} run(s) still active (overlap: skip, max_active_runs {})",
                    active.len(),
                    o.max_active_runs
                ));
            }
            Overlap::CancelPrevious => {
                for r in &active {
                    tracing::warn!(run_id = r.id, pipeline = %r.pipeline, "Cancelling the previous run (overlap: cancel_previous).");
                    store.request_cancel(r.id).await?;
                }
            }
        }
    }
    match store.create_run(&run).await? {
        Some(id) => {
            tracing::info!(run_id = id, pipeline = %pipeline.spec.name, logical_date = %at, status = %run.status, "Schedule fired.")
        }
        None => {
            tracing::debug!(pipeline = %pipeline.spec.name, logical_date = %at, "Already fired by another daemon.")
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: the daemon claims work
/// before its loop first waits on the signal, and a SIGTERM in between
/// would otherwise kill the process with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler can be installed");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler can be installed");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("Stop requested.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::store::RunQuery;

    async fn env(dir: &Path) -> Env {
        Env::open(Settings {
            home: dir.to_path_buf(),
            state_url: format!("sqlite://{}/state.db", dir.display()),
            warehouse_url: format!("{}/warehouse/", dir.display()),
        })
        .await
        .unwrap()
    }

    fn folder_with(dir: &Path, settings: &str) -> Folder {
        let file = dir.join("p.yaml");
        let text = format!(
            "name: hourly\ndataset_group: g\nschedule: '0 * * * *'\n{settings}steps:\n  - {{id: a, type: noop}}\n"
        );
        let pipeline = Pipeline::from_text(&file, text.clone()).unwrap();
        let o = &pipeline.spec.orchestration;
        let schedule =
            Some(CronSchedule::parse(o.schedule.as_deref().unwrap(), &o.timezone).unwrap());
        let mut folder = Folder::default();
        folder.by_file.insert(file, "hourly".into());
        folder.pipelines.insert(
            "hourly".into(),
            Loaded {
                text,
                pipeline: Arc::new(pipeline),
                schedule,
            },
        );
        folder
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn a_filter_two_pipelines_of_a_group_declare_loads_only_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path()).await;
        let folder_dir = dir.path().join("pipelines");
        std::fs::create_dir(&folder_dir).unwrap();
        let write = |name: &str, filters: &str| {
            let text = format!(
                "name: {name}\ndataset_group: g\ndatasets:\n  interactions:\n    schema:\n      fields:\n\
                 \x20       - {{name: USER_ID, type: string}}\n\
                 \x20       - {{name: ITEM_ID, type: string}}\n\
                 \x20       - {{name: EVENT_TYPE, type: string}}\n\
                 \x20       - {{name: TIMESTAMP, type: long}}\n\
                 {filters}steps:\n  - {{id: s, type: noop}}\n"
            );
            std::fs::write(folder_dir.join(format!("{name}.yaml")), text).unwrap();
        };
        let unwatched = "filters:\n  unwatched: {expression: 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"watch\")'}\n";
        write("a", unwatched);
        write("b", unwatched);
        let mut folder = Folder::default();
        assert_eq!(folder.reload(&env, &folder_dir).await.unwrap(), 1);
        assert_eq!(folder.pipelines.keys().collect::<Vec<_>>(), ["a"]);
        // Once `a` no longer declares it, `b` loads at the next reload.
        write("a", "");
        assert_eq!(folder.reload(&env, &folder_dir).await.unwrap(), 0);
        assert_eq!(folder.pipelines.keys().collect::<Vec<_>>(), ["a", "b"]);
        let filters = env.store.group_filters("g").await.unwrap();
        let owners: Vec<_> = filters
            .iter()
            .map(|f| (f.name.as_str(), f.pipeline.as_str()))
            .collect();
        assert_eq!(owners, [("unwatched", "b")]);
    }

    /// The newest `limit` runs of the pipeline `hourly`.
    fn hourly_runs(limit: i64) -> RunQuery {
        RunQuery {
            pipeline: Some("hourly".into()),
            ..RunQuery::newest(limit)
        }
    }

    /// Logical dates of the pipeline's scheduled runs, oldest first, with status.
    async fn fired(env: &Env) -> Vec<(String, RunStatus)> {
        let mut runs = env.store.list_runs(&hourly_runs(100)).await.unwrap();
        runs.reverse();
        runs.iter()
            .map(|r| {
                (
                    r.logical_date.unwrap().format("%H:%M").to_string(),
                    r.status,
                )
            })
            .collect()
    }

    async fn after_downtime(settings: &str) -> Vec<(String, RunStatus)> {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path()).await;
        let engine = Engine::new(env.clone(), WorkerTiming::default());
        let folder = folder_with(dir.path(), settings);
        // First sight arms the schedule; nothing before it counts as missed.
        fire_schedules(&engine, &folder, at("2026-11-22T00:00:30Z"))
            .await
            .unwrap();
        assert!(fired(&env).await.is_empty());
        // Down from 00:00:30 to 03:20: 01:00, 02:00 and 03:00 were missed.
        fire_schedules(&engine, &folder, at("2026-11-22T03:20:00Z"))
            .await
            .unwrap();
        // Firing again at the same moment (another tick, another daemon) adds nothing.
        fire_schedules(&engine, &folder, at("2026-11-22T03:20:00Z"))
            .await
            .unwrap();
        fired(&env).await
    }

    #[tokio::test]
    async fn catchup_none_passes_over_missed_times_and_fires_the_next_on_time() {
        assert!(after_downtime("").await.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path()).await;
        let engine = Engine::new(env.clone(), WorkerTiming::default());
        let folder = folder_with(dir.path(), "");
        fire_schedules(&engine, &folder, at("2026-11-22T00:59:00Z"))
            .await
            .unwrap();
        fire_schedules(&engine, &folder, at("2026-11-22T01:00:01Z"))
            .await
            .unwrap();
        fire_schedules(&engine, &folder, at("2026-11-22T01:00:02Z"))
            .await
            .unwrap();
        assert_eq!(
            fired(&env).await,
            [("01:00".to_string(), RunStatus::Queued)]
        );
        let run = &env.store.list_runs(&hourly_runs(1)).await.unwrap()[0];
        assert_eq!(
            run.data_interval_start,
            Some(at("2026-11-22T00:00:00Z")),
            "the interval starts at the previous time"
        );
        assert_eq!(run.data_interval_end, Some(at("2026-11-22T01:00:00Z")));
    }

    #[tokio::test]
    async fn a_paused_pipeline_fires_nothing_and_catches_up_by_its_policy_once_unpaused() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path()).await;
        let engine = Engine::new(env.clone(), WorkerTiming::default());
        let folder = folder_with(dir.path(), "catchup: latest\n");
        crate::engine::register(&env, &folder.pipelines["hourly"].pipeline)
            .await
            .unwrap();
        fire_schedules(&engine, &folder, at("2026-11-22T00:00:30Z"))
            .await
            .unwrap();
        env.store.set_pipeline_paused("hourly", true).await.unwrap();
        for t in ["2026-11-22T01:00:01Z", "2026-11-22T02:00:01Z"] {
            fire_schedules(&engine, &folder, at(t)).await.unwrap();
        }
        assert!(fired(&env).await.is_empty(), "paused: nothing fires");
        env.store
            .set_pipeline_paused("hourly", false)
            .await
            .unwrap();
        fire_schedules(&engine, &folder, at("2026-11-22T02:30:00Z"))
            .await
            .unwrap();
        assert_eq!(
            fired(&env).await,
            [("02:00".to_string(), RunStatus::Queued)],
            "catchup: latest runs the latest missed time"
        );
    }

    #[tokio::test]
    async fn catchup_latest_and_all() {
        let q = RunStatus::Queued;
        assert_eq!(
            after_downtime("catchup: latest\n").await,
            [("03:00".to_string(), q)]
        );
        assert_eq!(
            after_downtime("catchup: all\n").await,
            [
                ("01:00".to_string(), q),
                ("02:00".to_string(), q),
                ("03:00".to_string(), q)
            ]
        );
        assert_eq!(
            after_downtime("catchup: all\nmax_catchup_runs: 2\n").await,
            [("02:00".to_string(), q), ("03:00".to_string(), q)]
        );
    }

    #[tokio::test]
    async fn overlap_policies_when_a_run_is_still_active() {
        for (policy, expect_new, expect_old) in [
            ("skip", RunStatus::Skipped, false),
            ("queue", RunStatus::Queued, false),
            ("cancel_previous", RunStatus::Queued, true),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let env = env(dir.path()).await;
            let engine = Engine::new(env.clone(), WorkerTiming::default());
            let folder = folder_with(dir.path(), &format!("overlap: {policy}\n"));
            fire_schedules(&engine, &folder, at("2026-11-22T00:59:00Z"))
                .await
                .unwrap();
            fire_schedules(&engine, &folder, at("2026-11-22T01:00:01Z"))
                .await
                .unwrap();
            let first = env.store.list_runs(&hourly_runs(1)).await.unwrap()[0].id;
            let run = env.store.get_run(first).await.unwrap();
            engine.start_run(&run).await.unwrap();
            fire_schedules(&engine, &folder, at("2026-11-22T02:00:01Z"))
                .await
                .unwrap();
            let runs = env.store.list_runs(&hourly_runs(1)).await.unwrap();
            assert_eq!(runs[0].status, expect_new, "{policy}");
            assert_eq!(
                env.store.get_run(first).await.unwrap().cancel_requested,
                expect_old,
                "{policy}"
            );
        }
    }
}
