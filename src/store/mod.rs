//! The state store: pipelines, runs, step attempts, dataset and solution
//! versions, and campaigns, behind one trait. SQLite (WAL, versioned
//! migrations) is the embedded default; a PostgreSQL implementation plugs in
//! behind the same trait for several nodes. A run is a row before it is work,
//! and versions are allocated here so two writers never share a number.

mod sqlite;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub use sqlite::SqliteStore;

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
    #[error("state store holds an unexpected value: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Opens the store named by a URL (`sqlite:///path/state.db`).
pub async fn open(url: &str) -> StoreResult<Box<dyn StateStore>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Err(StoreError::Open {
            url: redact(url),
            reason: "PostgreSQL is not supported by this build yet; use a sqlite: URL".into(),
        })
    } else {
        Err(StoreError::Open {
            url: redact(url),
            reason: "unknown scheme; expected sqlite://PATH".into(),
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
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name { $($variant),+ }

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
    RunStatus { Queued = "queued", Running = "running", Succeeded = "succeeded", Failed = "failed" }
);

string_enum!(
    /// The life of one attempt of one step.
    StepStatus { Running = "running", Succeeded = "succeeded", Failed = "failed", Skipped = "skipped" }
);

string_enum!(
    /// Dataset versions and solution versions share a life cycle.
    VersionKind { Dataset = "dataset", Solution = "solution" }
);

string_enum!(
    /// `creating` until the manifest is written, then `active`; `failed` if the
    /// step failed. Readers use only `active` versions.
    VersionStatus { Creating = "creating", Active = "active", Failed = "failed" }
);

#[derive(Debug, Clone, Serialize)]
pub struct PipelineRecord {
    pub name: String,
    pub dataset_group: String,
    pub file: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub pipeline: String,
    pub status: RunStatus,
    /// How the run started: `cli`, `schedule`, `api`.
    pub trigger: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub id: i64,
    pub run_id: i64,
    pub step_id: String,
    pub step_type: String,
    pub attempt: i64,
    pub status: StepStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
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

/// The state store. Every method is one short transaction.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// A printable form of where the state lives (no secrets).
    fn describe(&self) -> String;

    async fn upsert_pipeline(
        &self,
        name: &str,
        dataset_group: &str,
        file: &str,
        spec: &str,
    ) -> StoreResult<()>;
    async fn list_pipelines(&self) -> StoreResult<Vec<PipelineRecord>>;

    async fn create_run(&self, pipeline: &str, trigger: &str) -> StoreResult<i64>;
    async fn set_run_status(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> StoreResult<()>;
    async fn get_run(&self, run_id: i64) -> StoreResult<RunRecord>;
    async fn list_runs(&self, pipeline: Option<&str>, limit: i64) -> StoreResult<Vec<RunRecord>>;

    /// Starts attempt number `attempt` of a step and returns its id.
    async fn start_attempt(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        attempt: i64,
    ) -> StoreResult<i64>;
    async fn finish_attempt(
        &self,
        attempt_id: i64,
        status: StepStatus,
        end: &AttemptEnd,
    ) -> StoreResult<()>;
    /// Records a step that did not run (an upstream step failed).
    async fn skip_step(
        &self,
        run_id: i64,
        step_id: &str,
        step_type: &str,
        reason: &str,
    ) -> StoreResult<()>;
    async fn list_attempts(&self, run_id: i64) -> StoreResult<Vec<AttemptRecord>>;

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
    /// Versions, newest first; `owner` filters, `None` lists all of `kind`.
    async fn list_versions(
        &self,
        kind: VersionKind,
        owner: Option<&str>,
    ) -> StoreResult<Vec<VersionRecord>>;

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
    /// recording a deployment.
    async fn set_campaign_version(&self, name: &str, version: i64) -> StoreResult<CampaignRecord>;

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
    /// Records stored by [`StateStore::put_records`]: (id, properties JSON).
    async fn list_put_records(
        &self,
        dataset_group: &str,
        dataset_type: &str,
    ) -> StoreResult<Vec<(String, String)>>;
    /// The source text of the group's pipelines (filters live there).
    async fn pipeline_sources(&self, dataset_group: &str) -> StoreResult<Vec<String>>;
    async fn list_campaigns(&self) -> StoreResult<Vec<CampaignRecord>>;
    async fn list_deployments(&self, campaign: &str) -> StoreResult<Vec<DeploymentRecord>>;
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
