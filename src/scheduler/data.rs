//! Runs started by data (`on:` in a pipeline file): pollers, run by the
//! daemon that holds the scheduler lease, for a new active dataset version,
//! an upstream pipeline's run ending, and new objects under a prefix.
//!
//! Each event starts one run, whatever happens to the daemons: the run is
//! created with a key naming the event (`object:s3://b/in/a.csv`), unique
//! per pipeline in the state store, so a second poller (another daemon, or
//! this one restarted after a SIGKILL between creating the run and moving
//! its cursor) creates nothing. Each poller's cursor lives in the store
//! (`trigger_cursors`), so a restarted or another daemon goes on from it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::pipeline::Pipeline;
use crate::pipeline::orchestration::{ChainStatus, DataTrigger, wildcard_match};
use crate::store::{RunQuery, RunStatus, StateStore, VersionKind, VersionQuery, VersionStatus};

/// Objects modified up to this long before the newest one handled are
/// listed again: a slow upload (or a store whose listing lags) may show an
/// object after a newer one. Their keys make a second sighting harmless.
const OBJECT_WINDOW: Duration = Duration::from_secs(300);

/// The most runs one poll of one trigger starts; the rest wait for the next.
const MAX_RUNS_PER_POLL: usize = 100;

/// The upstream runs a chained pipeline's poller reads at a time.
const CHAIN_PAGE: i64 = 200;

/// What the pollers of this daemon remember between polls: when each
/// object prefix was last listed, and the events they started a run for
/// (or saw started), so a listing does not ask the store again.
#[derive(Default)]
pub struct Pollers {
    listed: HashMap<String, Instant>,
    seen: HashMap<String, HashSet<String>>,
}

/// Polls the `on:` trigger of every pipeline that is not paused. A trigger
/// that fails (storage down) is logged, and the others go on.
pub async fn poll<'a>(
    engine: &Engine,
    pipelines: impl Iterator<Item = &'a Pipeline>,
    pollers: &mut Pollers,
) -> anyhow::Result<()> {
    let paused: HashSet<String> = engine
        .env
        .store
        .list_pipelines()
        .await?
        .into_iter()
        .filter(|p| p.paused)
        .map(|p| p.name)
        .collect();
    for pipeline in pipelines {
        let name = &pipeline.spec.name;
        if paused.contains(name) {
            continue;
        }
        let Some(trigger) = pipeline.spec.orchestration.data_trigger() else {
            continue;
        };
        let result = match &trigger {
            DataTrigger::Object {
                prefix,
                pattern,
                poll_interval,
            } => {
                let cursor = format!("{name} on object {prefix}");
                let due = pollers
                    .listed
                    .get(&cursor)
                    .is_none_or(|t| t.elapsed() >= *poll_interval);
                if !due {
                    continue;
                }
                pollers.listed.insert(cursor.clone(), Instant::now());
                let seen = pollers.seen.entry(cursor.clone()).or_default();
                poll_objects(engine, pipeline, &cursor, prefix, pattern.as_deref(), seen).await
            }
            DataTrigger::DatasetVersion { owner } => {
                let cursor = format!("{name} on dataset_version {owner}");
                poll_versions(engine, pipeline, &cursor, owner).await
            }
            DataTrigger::Pipeline {
                name: upstream,
                status,
            } => {
                let cursor = format!("{name} on pipeline {upstream}");
                poll_chain(engine, pipeline, &cursor, upstream, *status).await
            }
        };
        if let Err(e) = result {
            tracing::error!(pipeline = %name, error = %format!("{e:#}"), "Polling the pipeline's `on:` trigger failed; retrying.");
        }
    }
    Ok(())
}

/// Creates the run an event starts, unless one exists for its key.
async fn start(
    engine: &Engine,
    pipeline: &Pipeline,
    kind: &str,
    key: String,
    info: Value,
) -> anyhow::Result<Option<i64>> {
    let mut run = crate::engine::new_run(pipeline, kind, &serde_json::Map::new(), None)?;
    run.trigger_info = Some(info);
    run.trigger_key = Some(key);
    let id = engine.env.store.create_run(&run).await?;
    if let Some(id) = id {
        tracing::info!(run_id = id, pipeline = %pipeline.spec.name, trigger = %run.trigger_key.as_deref().unwrap_or(""), "Run started by data.");
    }
    Ok(id)
}

/// The cursor of a trigger over numbered things (dataset versions, runs):
/// everything up to `after` has ended and was handled, and only what ends
/// after `armed_at` (the trigger's first poll) starts a run.
struct SequenceCursor {
    after: i64,
    armed_at: DateTime<Utc>,
}

impl SequenceCursor {
    /// The stored cursor; on the first poll, arms one at `initial()` (what
    /// exists then is not new) and returns `None`.
    async fn load_or_arm(
        store: &dyn StateStore,
        name: &str,
        initial: impl FnOnce() -> i64,
    ) -> anyhow::Result<Option<SequenceCursor>> {
        let cursor = store.trigger_cursor(name).await?;
        if let (Some(after), Some(armed_at)) = (
            cursor.as_ref().and_then(|c| c["after"].as_i64()),
            time_of(&cursor, "armed_at"),
        ) {
            return Ok(Some(SequenceCursor { after, armed_at }));
        }
        store
            .set_trigger_cursor(name, &json!({"after": initial(), "armed_at": Utc::now()}))
            .await?;
        Ok(None)
    }

    /// Moves the cursor to `to` when it moved.
    async fn advance(&self, store: &dyn StateStore, name: &str, to: i64) -> anyhow::Result<()> {
        if to != self.after {
            store
                .set_trigger_cursor(name, &json!({"after": to, "armed_at": self.armed_at}))
                .await?;
        }
        Ok(())
    }
}

fn time_of(cursor: &Option<Value>, key: &str) -> Option<DateTime<Utc>> {
    cursor
        .as_ref()
        .and_then(|c| c[key].as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A run per new object under the prefix whose name matches the pattern,
/// oldest first. Objects there when the trigger is first polled count as
/// new. Hidden names (`_…`, `.…`: markers, uploads in progress) never fire.
async fn poll_objects(
    engine: &Engine,
    pipeline: &Pipeline,
    cursor_name: &str,
    prefix: &str,
    pattern: Option<&str>,
    seen: &mut HashSet<String>,
) -> anyhow::Result<()> {
    let store = &engine.env.store;
    let url = crate::storage::StorageUrl::parse(prefix, &pipeline.group.base_dir)?;
    let location = engine.env.storage.open(&url)?;
    let cursor = store.trigger_cursor(cursor_name).await?;
    let newest_handled = time_of(&cursor, "modified");
    let since =
        newest_handled.map(|t| t - chrono::Duration::from_std(OBJECT_WINDOW).unwrap_or_default());
    let mut objects: Vec<_> = location
        .objects_under()
        .await?
        .into_iter()
        .filter(|o| {
            let name = o.rel.rsplit('/').next().unwrap_or(&o.rel);
            !name.is_empty()
                && !name.starts_with('_')
                && !name.starts_with('.')
                && pattern.is_none_or(|p| wildcard_match(p, name))
                && since.is_none_or(|s| o.modified >= s)
        })
        .collect();
    objects.sort_by(|a, b| (a.modified, &a.rel).cmp(&(b.modified, &b.rel)));
    // Forget what fell out of the window.
    let mut newest = newest_handled;
    let mut started = 0;
    let mut keys_now = HashSet::new();
    for o in objects {
        let object = location.child(&o.rel).url().to_string();
        let key = format!("object:{object}");
        keys_now.insert(key.clone());
        if !seen.contains(&key) {
            if started == MAX_RUNS_PER_POLL {
                break;
            }
            let name = o.rel.rsplit('/').next().unwrap_or(&o.rel).to_string();
            let info = json!({
                "type": "object", "object": object, "name": name,
                "size": o.size, "modified": o.modified,
            });
            if start(engine, pipeline, "object", key.clone(), info)
                .await?
                .is_some()
            {
                started += 1;
            }
            seen.insert(key);
        }
        newest = newest.max(Some(o.modified));
    }
    seen.retain(|k| keys_now.contains(k));
    if newest != newest_handled
        && let Some(t) = newest
    {
        store
            .set_trigger_cursor(cursor_name, &json!({ "modified": t }))
            .await?;
    }
    Ok(())
}

/// A run per version of the dataset that becomes active after the trigger
/// was first polled. The cursor is the version up to which every version
/// has ended (active or failed), so one that takes long to import is not
/// passed over when a later one ends first.
async fn poll_versions(
    engine: &Engine,
    pipeline: &Pipeline,
    cursor_name: &str,
    owner: &str,
) -> anyhow::Result<()> {
    let store = &engine.env.store;
    let mut versions = store
        .list_versions(&VersionQuery::all(VersionKind::Dataset, Some(owner)))
        .await?;
    versions.sort_by_key(|v| v.version);
    let settled_up_to = |after: i64| {
        versions
            .iter()
            .filter(|v| v.version > after)
            .take_while(|v| v.status != VersionStatus::Creating)
            .map(|v| v.version)
            .last()
            .unwrap_or(after)
    };
    let Some(cursor) =
        SequenceCursor::load_or_arm(store.as_ref(), cursor_name, || settled_up_to(0)).await?
    else {
        tracing::info!(pipeline = %pipeline.spec.name, dataset = owner, "Dataset version trigger armed.");
        return Ok(());
    };
    let (after, armed_at) = (cursor.after, cursor.armed_at);
    for v in versions.iter().filter(|v| {
        v.version > after
            && v.status == VersionStatus::Active
            && v.finished_at.unwrap_or(v.created_at) >= armed_at
    }) {
        let info = json!({
            "type": "dataset_version", "dataset": owner, "version": v.version,
            "run_id": v.run_id,
        });
        start(
            engine,
            pipeline,
            "dataset_version",
            format!("dataset_version:{owner}:v{}", v.version),
            info,
        )
        .await?;
    }
    cursor
        .advance(store.as_ref(), cursor_name, settled_up_to(after))
        .await
}

/// A run per run of the upstream pipeline that ends with the status asked
/// for, after the trigger was first polled. The cursor is the run id up to
/// which every upstream run has ended.
async fn poll_chain(
    engine: &Engine,
    pipeline: &Pipeline,
    cursor_name: &str,
    upstream: &str,
    status: ChainStatus,
) -> anyhow::Result<()> {
    let store = &engine.env.store;
    let mut runs = store
        .list_runs(&RunQuery {
            pipeline: Some(upstream.to_string()),
            ..RunQuery::newest(CHAIN_PAGE)
        })
        .await?;
    runs.sort_by_key(|r| r.id);
    let ended_up_to = |after: i64| {
        runs.iter()
            .filter(|r| r.id > after)
            .take_while(|r| r.status.is_finished())
            .map(|r| r.id)
            .last()
            .unwrap_or(after)
    };
    let Some(cursor) = SequenceCursor::load_or_arm(store.as_ref(), cursor_name, || {
        ended_up_to(runs.first().map_or(0, |r| r.id - 1))
    })
    .await?
    else {
        tracing::info!(pipeline = %pipeline.spec.name, upstream, "Pipeline trigger armed.");
        return Ok(());
    };
    let (after, armed_at) = (cursor.after, cursor.armed_at);
    let wanted = |s: RunStatus| match status {
        ChainStatus::Succeeded => s == RunStatus::Succeeded,
        ChainStatus::Failed => s == RunStatus::Failed,
        ChainStatus::Finished => matches!(
            s,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        ),
    };
    for r in runs.iter().filter(|r| {
        r.id > after && wanted(r.status) && r.finished_at.is_some_and(|t| t >= armed_at)
    }) {
        let info = json!({
            "type": "pipeline", "pipeline": upstream, "run_id": r.id, "status": r.status,
        });
        start(
            engine,
            pipeline,
            "pipeline",
            format!("pipeline:{upstream}:run:{}", r.id),
            info,
        )
        .await?;
    }
    cursor
        .advance(store.as_ref(), cursor_name, ended_up_to(after))
        .await
}
