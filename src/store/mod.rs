//! The state store: pipelines, runs, step attempts, dataset and solution
//! versions, campaigns and events, behind small traits by capability that
//! [`StateStore`] gathers. SQLite (WAL, versioned migrations) is the embedded
//! default; PostgreSQL (`postgres://` URLs), with the same schema and the same
//! SQL (`sql.rs`), holds the state several nodes share. A run is a row before
//! it is work, and versions are allocated here so two writers never share a
//! number.

mod postgres;
mod rows;
mod sql;
mod sqlite;
#[cfg(test)]
#[allow(clippy::disallowed_macros)] // test diagnostics go to stderr
mod suite;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use postgres::PostgresStore;
use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("state store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("state store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what} not found")]
    NotFound { what: String },
    /// A campaign may only point at an active version: one a prune has
    /// marked `deleting` is about to lose its files.
    #[error("{what} is {status}, not active")]
    NotActive { what: String, status: String },
    /// A filter name is the filter's identity in its dataset group (campaigns
    /// and batch jobs name it), so two pipelines of a group cannot both
    /// declare it: which expression would apply depends on which pipeline
    /// was registered last.
    #[error(
        "filter {filter:?} of dataset group {dataset_group:?} is declared by pipeline {other:?}; \
         pipeline {pipeline:?} cannot declare it too (a filter belongs to one pipeline of its group: \
         remove it from one of them)"
    )]
    FilterConflict {
        dataset_group: String,
        filter: String,
        /// The pipeline being registered.
        pipeline: String,
        /// The pipeline that declares the filter already.
        other: String,
    },
    #[error("state store holds an unexpected value: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the store named by a URL (`sqlite:///path/state.db`,
/// `postgres://user:password@host/database`).
pub async fn open(url: &str) -> StoreResult<Box<dyn StateStore>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Box::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::Open {
            url: redact(url),
            reason: "unknown scheme; expected sqlite://PATH or postgres://HOST/DATABASE".into(),
        })
    }
}

/// Every event of a group after id `after`, oldest first, read in pages.
pub async fn all_events(
    store: &dyn StateStore,
    dataset_group: &str,
    mut after: i64,
) -> StoreResult<Vec<EventRecord>> {
    let mut out = Vec::new();
    loop {
        let page = store.list_events(dataset_group, after, 10_000).await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.id;
        out.extend(page);
    }
}

/// Hides a password in a database URL before it is printed.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(StoreError::Corrupt(format!(
                        "{} {other:?}", stringify!($name)
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// The life of a run.
    RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        /// A scheduled time that fired while the pipeline had `max_active_runs`
        /// active runs, with `overlap: skip`.
        Skipped = "skipped",
    }
);

impl RunStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

string_enum!(
    /// The life of one attempt of one step.
    StepStatus {
        /// Waiting to be claimed by a worker (a retry: not before `not_before`).
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Not run: its trigger rule was not met.
        Skipped = "skipped",
        /// Not run because a step it depends on failed.
        UpstreamFailed = "upstream_failed",
    }
);

impl StepStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, StepStatus::Queued | StepStatus::Running)
    }
}

string_enum!(
    /// Dataset, solution and predictor versions share a life cycle.
    VersionKind { Dataset = "dataset", Solution = "solution", Predictor = "predictor" }
);

string_enum!(
    /// `creating` until the manifest is written, then `active`; `failed` if the
    /// step failed. Readers use only `active` versions. Retention marks a
    /// version `deleting` before it removes its files (from then on nothing
    /// reads it) and `deleted` once they are gone; a prune that stopped in
    /// between is finished by the next.
    VersionStatus {
        Creating = "creating",
        Active = "active",
        Failed = "failed",
        Deleting = "deleting",
        Deleted = "deleted",
    }
);

#[derive(Debug, Clone, Serialize)]
pub struct PipelineRecord {
    pub name: String,
    pub dataset_group: String,
    pub file: String,
    /// When the pipeline was last registered.
    pub updated_at: DateTime<Utc>,
    /// Set by an operator to stop the pipeline's schedule: the daemon fires
    /// nothing for it until it is unpaused. Triggers still queue runs.
    pub paused: bool,
}

/// A pipeline to register: its row and the filters it declares.
#[derive(Debug, Clone)]
pub struct PipelineRegistration {
    pub name: String,
    pub dataset_group: String,
    pub file: String,
    /// The pipeline file's text.
    pub spec: String,
    /// The filters the pipeline declares for its dataset group: (name,
    /// expression), names unique.
    pub filters: Vec<(String, String)>,
}

/// A filter of a dataset group, as the pipeline declaring it registered it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FilterRecord {
    pub dataset_group: String,
    pub name: String,
    pub expression: String,
    /// The pipeline that declares it.
    pub pipeline: String,
    pub updated_at: DateTime<Utc>,
}

/// Which versions to list: ordered by owner, then newest first.
#[derive(Debug, Clone)]
pub struct VersionQuery<'a> {
    pub kind: VersionKind,
    /// One owner's versions only; `None` lists every owner of `kind`.
    pub owner: Option<&'a str>,
    /// A page's cursor: versions after this `(owner, version)` (the last
    /// one of the previous page) in the listing's order.
    pub after: Option<(&'a str, i64)>,
    /// At most this many versions.
    pub limit: i64,
}

impl<'a> VersionQuery<'a> {
    /// Every version of `kind` (of `owner`, if given), without a bound: for
    /// the engine's own bookkeeping, never for a request.
    pub fn all(kind: VersionKind, owner: Option<&'a str>) -> VersionQuery<'a> {
        VersionQuery {
            kind,
            owner,
            after: None,
            limit: i64::MAX,
        }
    }
}

/// Which runs to list, newest (highest id) first.
#[derive(Debug, Clone)]
pub struct RunQuery {
    /// Runs of this pipeline only.
    pub pipeline: Option<String>,
    /// Runs in one of these states; empty for every state.
    pub statuses: Vec<RunStatus>,
    /// Runs created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Runs created before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// A page's cursor: runs with an id below this one (the last id of the
    /// previous page).
    pub before_id: Option<i64>,
    /// At most this many runs.
    pub limit: i64,
}

impl RunQuery {
    /// The newest `limit` runs of every pipeline; set the other fields to
    /// narrow it: `RunQuery { pipeline: Some(name), ..RunQuery::newest(20) }`.
    pub fn newest(limit: i64) -> RunQuery {
        RunQuery {
            pipeline: None,
            statuses: Vec::new(),
            created_after: None,
            created_before: None,
            before_id: None,
            limit,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub pipeline: String,
    pub status: RunStatus,
    /// How the run started: `cli` (`recflow run`), `trigger`, `schedule`, `api`.
    pub trigger: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// The pipeline file the run came from.
    pub file: Option<String>,
    /// Parameter values, defaults applied.
    pub params: serde_json::Value,
    /// The time the run is for, and the data interval it covers.
    pub logical_date: Option<DateTime<Utc>>,
    pub data_interval_start: Option<DateTime<Utc>>,
    pub data_interval_end: Option<DateTime<Utc>>,
    pub max_parallel_steps: i64,
    /// When a running run times out (`run_timeout`).
    pub deadline: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    /// For a run an `on:` trigger started: what started it (`type`, and
    /// `object`, `version`, `pipeline`, `run_id`...), as templates see it
    /// (`{{ trigger.object }}`).
    pub trigger_info: Option<serde_json::Value>,
}

/// A run, or a step of it, that went on past its SLA.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaMiss {
    pub run_id: i64,
    /// The step, or `None` for the run itself.
    pub step_id: Option<String>,
    /// The SLA as the file wrote it, e.g. `2h`.
    pub sla: String,
    pub missed_at: DateTime<Utc>,
}

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub pipeline: String,
    pub trigger: String,
    /// The pipeline file's text: the run executes this version of it, even
    /// if the file changes while it runs.
    pub spec: String,
    pub file: String,
    pub params: serde_json::Value,
    pub logical_date: DateTime<Utc>,
    pub data_interval: (DateTime<Utc>, DateTime<Utc>),
    pub max_parallel_steps: i64,
    /// `Queued`, or `Skipped` to record a scheduled time that did not run.
    pub status: RunStatus,
    pub error: Option<String>,
    /// What started a run an `on:` trigger started.
    pub trigger_info: Option<serde_json::Value>,
    /// The event that started it, unique per pipeline: a second run for the
    /// same key is not created.
    pub trigger_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub id: i64,
    pub run_id: i64,
    pub step_id: String,
    pub step_type: String,
    /// Which instance of a mapped step (`for_each:`) this is, from 0; `None`
    /// for a step that is not mapped (and for the record of a mapped step
    /// that did not expand).
    pub map_index: Option<i64>,
    /// The list element this instance runs for (`{{ item }}`).
    pub map_item: Option<serde_json::Value>,
    /// 1 for the first attempt; 0 for a step recorded as not run.
    pub attempt: i64,
    pub status: StepStatus,
    pub queued_at: DateTime<Utc>,
    /// A queued retry waits until then.
    pub not_before: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The daemon process running (or that ran) the attempt.
    pub worker: Option<String>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// The attempt ended because its worker stopped, not because the step failed.
    pub interrupted: bool,
    /// Key figures in one line, e.g. `100,000 rows, 0 rejected → v3`.
    pub summary: Option<String>,
    /// Small outputs later steps can use (`solution_version`, `dataset_version`).
    pub outputs: serde_json::Value,
    pub error: Option<String>,
    /// The attempt's log lines.
    pub log: String,
}

/// Everything recorded when an attempt ends.
#[derive(Debug, Clone, Default)]
pub struct AttemptEnd {
    pub summary: Option<String>,
    pub outputs: serde_json::Value,
    pub error: Option<String>,
    pub log: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    pub kind: VersionKind,
    /// `GROUP/DATASET_TYPE` for datasets, the solution name for solutions.
    pub owner: String,
    pub version: i64,
    pub status: VersionStatus,
    pub run_id: Option<i64>,
    pub step_id: Option<String>,
    /// Where the version's files are.
    pub location: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The manifest, once active.
    pub manifest: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignRecord {
    pub name: String,
    pub dataset_group: String,
    pub solution: String,
    pub solution_version: i64,
    pub previous_version: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Campaign settings from the pipeline file, as JSON.
    pub config: serde_json::Value,
}

/// One event from `PutEvents`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventRecord {
    pub id: i64,
    pub dataset_group: String,
    pub user_id: Option<String>,
    pub session_id: String,
    pub event_type: String,
    pub item_id: Option<String>,
    pub event_value: Option<f64>,
    /// UNIX seconds.
    pub sent_at: i64,
    pub recommendation_id: Option<String>,
    /// Item ids shown, `|`-separated (the dataset column's form).
    pub impression: Option<String>,
    /// The event's `properties` JSON string.
    pub properties: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentRecord {
    pub campaign: String,
    pub solution: String,
    pub solution_version: i64,
    pub run_id: Option<i64>,
    pub deployed_at: DateTime<Utc>,
}

/// Pipelines as registered, and the filters they declare for their dataset
/// group.
#[async_trait]
pub trait PipelineStore: Send + Sync {
    /// Records the pipeline and replaces the filters it declares, in one
    /// transaction; a paused pipeline stays paused. Fails with
    /// [`StoreError::FilterConflict`] (and records nothing) when another
    /// pipeline of the group declares one of its filters.
    async fn upsert_pipeline(&self, pipeline: &PipelineRegistration) -> StoreResult<()>;
    async fn list_pipelines(&self) -> StoreResult<Vec<PipelineRecord>>;
    /// The stored pipeline and its source text.
    async fn get_pipeline(&self, name: &str) -> StoreResult<Option<(PipelineRecord, String)>>;
    /// Pauses or resumes a pipeline's schedule.
    async fn set_pipeline_paused(&self, name: &str, paused: bool) -> StoreResult<PipelineRecord>;
    /// The filters of a dataset group, by name.
    async fn group_filters(&self, dataset_group: &str) -> StoreResult<Vec<FilterRecord>>;
}

/// The run queue: runs, the attempts of their steps, which workers claim and
/// heartbeat, the scheduler's lease and each schedule's cursor.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Records a run; `None` when it is a scheduled run for a logical date
    /// that already has one (each scheduled time fires once).
    async fn create_run(&self, run: &NewRun) -> StoreResult<Option<i64>>;
    /// The pipeline text and file a run executes.
    async fn run_spec(&self, run_id: i64) -> StoreResult<(String, String)>;
    /// `queued` → `running`, setting its start and deadline; false if the
    /// run was not queued.
    async fn start_run(&self, run_id: i64, deadline: Option<DateTime<Utc>>) -> StoreResult<bool>;
    /// Ends a run that has not ended yet; false if it already had.
    async fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> StoreResult<bool>;
    /// Asks a run to stop: queued steps will not start, running ones are
    /// stopped by their workers.
    async fn request_cancel(&self, run_id: i64) -> StoreResult<RunRecord>;
    /// Makes a finished run `running` again (for `recflow runs retry`); the
    /// records of steps that did not run are dropped, to be decided again.
    async fn reopen_run(&self, run_id: i64) -> StoreResult<()>;
    async fn get_run(&self, run_id: i64) -> StoreResult<RunRecord>;
    /// Runs that match `query`, newest first.
    async fn list_runs(&self, query: &RunQuery) -> StoreResult<Vec<RunRecord>>;
    /// Runs in one of these states, oldest first.
    async fn runs_with_status(&self, statuses: &[RunStatus]) -> StoreResult<Vec<RunRecord>>;

    /// Queues attempt number `attempt` of a step; false if it exists
    /// already (another process queued it).
    async fn queue_attempt(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        attempt: i64,
        not_before: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Queues attempt number `attempt` of instances of a mapped step, each
    /// a (map index, list element), in one transaction: a step expands
    /// whole or not at all. Instances that exist already are left alone;
    /// returns how many were new.
    async fn queue_instances(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        attempt: i64,
        not_before: DateTime<Utc>,
        instances: &[(i64, serde_json::Value)],
    ) -> StoreResult<u64>;
    /// Claims the oldest ready attempt (of `run_id` only, if given) for
    /// `worker`, within its run's `max_parallel_steps`; the claim is one
    /// transaction, so two workers never get the same attempt.
    async fn claim_attempt(
        &self,
        worker: &str,
        run_id: Option<i64>,
    ) -> StoreResult<Option<AttemptRecord>>;
    /// Marks `worker`'s attempts alive; returns those among them that must
    /// stop: their run was cancelled, timed out or ended, or they are no
    /// longer this worker's (failed as stale).
    async fn heartbeat(&self, worker: &str, attempt_ids: &[i64]) -> StoreResult<Vec<i64>>;
    /// Appends to a running attempt's log, so that it can be read while the
    /// attempt runs; false if the attempt is not running.
    async fn append_attempt_log(&self, attempt_id: i64, chunk: &str) -> StoreResult<bool>;
    /// Ends an attempt that is still queued or running (false if it had
    /// ended already, e.g. failed as stale while its worker was paused);
    /// `end.log` is appended to the log the attempt has.
    async fn finish_attempt(
        &self,
        attempt_id: i64,
        status: StepStatus,
        end: &AttemptEnd,
        interrupted: bool,
    ) -> StoreResult<bool>;
    /// Records a step that did not run.
    async fn skip_step(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        status: StepStatus,
        reason: &str,
    ) -> StoreResult<()>;
    /// Fails (as interrupted) every running attempt whose last heartbeat is
    /// older than `stale_before`, and returns them.
    async fn fail_stale_attempts(
        &self,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<Vec<AttemptRecord>>;
    /// Fails every queued attempt of a run with `reason` (a cancelled run).
    async fn fail_queued_attempts(&self, run_id: i64, reason: &str) -> StoreResult<()>;
    async fn list_attempts(&self, run_id: i64) -> StoreResult<Vec<AttemptRecord>>;
    /// The attempts of several runs in one query, by run and then in order.
    async fn list_attempts_of_runs(&self, run_ids: &[i64]) -> StoreResult<Vec<AttemptRecord>>;
    async fn get_attempt(&self, attempt_id: i64) -> StoreResult<AttemptRecord>;
    /// Records that a run (`step_id` `None`) or one of its steps went past
    /// its SLA; true only for the one call that recorded it, so the
    /// webhook that follows is sent once across processes.
    async fn record_sla_miss(
        &self,
        run_id: i64,
        step_id: Option<&str>,
        sla: &str,
    ) -> StoreResult<bool>;
    /// The SLA misses of a run: the run's own first, then its steps by id.
    async fn list_sla_misses(&self, run_id: i64) -> StoreResult<Vec<SlaMiss>>;

    /// Takes or renews the lease `name` for `ttl`; true while `holder` has it.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<bool>;
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// The last scheduled time of a pipeline that was handled.
    async fn schedule_cursor(&self, pipeline: &str) -> StoreResult<Option<DateTime<Utc>>>;
    async fn set_schedule_cursor(
        &self,
        pipeline: &str,
        fired_up_to: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Where the poller of an `on:` trigger is (its own JSON).
    async fn trigger_cursor(&self, name: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn set_trigger_cursor(&self, name: &str, cursor: &serde_json::Value) -> StoreResult<()>;
}

/// Dataset, solution and predictor versions.
#[async_trait]
pub trait VersionStore: Send + Sync {
    /// Allocates the next version number of `owner` in state `creating`;
    /// its files go to `{location_prefix}/v{N}`.
    async fn create_version(
        &self,
        kind: VersionKind,
        owner: &str,
        run_id: Option<i64>,
        step_id: Option<&str>,
        location_prefix: &str,
    ) -> StoreResult<i64>;
    /// Marks a version active with its manifest; from now on readers see it.
    async fn activate_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
        manifest: &serde_json::Value,
    ) -> StoreResult<()>;
    async fn fail_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
        error: &str,
    ) -> StoreResult<()>;
    async fn get_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
    ) -> StoreResult<VersionRecord>;
    /// The newest active version, if any.
    async fn latest_active_version(
        &self,
        kind: VersionKind,
        owner: &str,
    ) -> StoreResult<Option<VersionRecord>>;
    /// Versions by owner, each owner's newest first, a page at a time.
    async fn list_versions(&self, query: &VersionQuery<'_>) -> StoreResult<Vec<VersionRecord>>;
    /// Moves a version from status `from` to `to` if it is in `from` now;
    /// returns whether it moved (a compare-and-set: of two processes moving
    /// the same version, one wins).
    async fn move_version(
        &self,
        kind: VersionKind,
        owner: &str,
        version: i64,
        from: VersionStatus,
        to: VersionStatus,
    ) -> StoreResult<bool>;
}

/// Campaigns (which solution version serves) and their deployments.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Points a campaign at a solution version (creating it if new) and
    /// records the deployment. Returns the version it pointed at before.
    async fn deploy_campaign(
        &self,
        name: &str,
        dataset_group: &str,
        solution: &str,
        version: i64,
        config: &serde_json::Value,
        run_id: Option<i64>,
    ) -> StoreResult<Option<i64>>;
    async fn get_campaign(&self, name: &str) -> StoreResult<CampaignRecord>;
    /// Moves a campaign's pointer to a version (an update or a rollback),
    /// recording a deployment; `previous_version` is the version it pointed
    /// at when the move committed.
    async fn set_campaign_version(&self, name: &str, version: i64) -> StoreResult<CampaignRecord>;
    async fn list_campaigns(&self) -> StoreResult<Vec<CampaignRecord>>;
    /// A campaign's deployments, newest first.
    async fn list_deployments(&self, campaign: &str) -> StoreResult<Vec<DeploymentRecord>>;
}

/// Real-time data: event trackers, events (`PutEvents`), and items and users
/// (`PutItems`, `PutUsers`).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// The dataset group's event tracker, created on first use.
    async fn event_tracker(&self, dataset_group: &str) -> StoreResult<String>;
    /// Gives a dataset group the tracking id its pipeline file declares.
    async fn set_event_tracker(&self, dataset_group: &str, tracking_id: &str) -> StoreResult<()>;
    /// The dataset group an event tracker belongs to.
    async fn tracker_group(&self, tracking_id: &str) -> StoreResult<Option<String>>;
    /// Stores events in one transaction; they are durable when this returns.
    async fn insert_events(&self, events: &[EventRecord]) -> StoreResult<()>;
    /// Events of a group with an id above `after`, oldest first.
    async fn list_events(
        &self,
        dataset_group: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Creates or replaces items or users (`PutItems`, `PutUsers`) by id.
    async fn put_records(
        &self,
        dataset_group: &str,
        dataset_type: &str,
        records: &[(String, String)],
    ) -> StoreResult<()>;
    /// Records stored by [`EventStore::put_records`]: (id, properties JSON).
    async fn list_put_records(
        &self,
        dataset_group: &str,
        dataset_type: &str,
    ) -> StoreResult<Vec<(String, String)>>;
}

/// The whole state store, as the engine, the server and the CLI hold it
/// (`Arc<dyn StateStore>`). Every method is one short transaction.
pub trait StateStore: PipelineStore + RunStore + VersionStore + CampaignStore + EventStore {
    /// A printable form of where the state lives (no secrets).
    fn describe(&self) -> String;
}

/// Timestamps are stored as RFC 3339 text in UTC with milliseconds, so that
/// text order is time order in every database.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}
