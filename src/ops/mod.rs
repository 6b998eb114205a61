//! The service layer: every operation a user performs on recflow — on
//! pipelines and their runs, the catalog of dataset, solution and predictor
//! versions, and campaigns — as a function that returns typed data. The
//! faces (the CLI, the HTTP API, the web console) call these same functions
//! and only format what they return, so the three never disagree.
//!
//! Errors are one enum, [`OpsError`], whose variants say what kind of
//! failure it is (not found, invalid, conflict, internal); each face maps
//! them once.

pub mod campaigns;
pub mod catalog;
pub mod forecasts;
pub mod pipelines;
pub mod retention;
pub mod runs;
pub mod serving;

use serde::Serialize;

use crate::campaign::CampaignError;
use crate::dataset::DatasetError;
use crate::pipeline::PipelineError;
use crate::scheduler::trigger::TriggerError;
use crate::solution::SolutionError;
use crate::storage::StorageError;
use crate::store::StoreError;

/// What went wrong in an operation, by the kind of failure.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The pipeline, run, version, campaign or item does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (a bad parameter, date or value).
    #[error("{0}")]
    Invalid(String),
    /// The request is fine, but the resource's state does not allow it
    /// (cancelling a finished run, rolling back without a previous version).
    #[error("{0}")]
    Conflict(String),
    /// A pipeline file has problems.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Anything else: the state store or storage failed, a file is corrupt.
    #[error("{0}")]
    Internal(String),
}

pub type OpsResult<T> = Result<T, OpsError>;

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => OpsError::NotFound(e.to_string()),
            StoreError::FilterConflict { .. } | StoreError::NotActive { .. } => {
                OpsError::Conflict(e.to_string())
            }
            StoreError::Open { .. }
            | StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::Corrupt(_) => OpsError::Internal(e.to_string()),
        }
    }
}

impl From<StorageError> for OpsError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound { .. } => OpsError::NotFound(e.to_string()),
            StorageError::BadUrl { .. } => OpsError::Invalid(e.to_string()),
            StorageError::Io { .. } | StorageError::Config { .. } => {
                OpsError::Internal(e.to_string())
            }
        }
    }
}

impl From<SolutionError> for OpsError {
    fn from(e: SolutionError) -> Self {
        match e {
            SolutionError::NoVersion { .. } => OpsError::NotFound(e.to_string()),
            SolutionError::NotActive { .. } => OpsError::Conflict(e.to_string()),
            SolutionError::Store(s) => s.into(),
            SolutionError::TooLittleData { .. }
            | SolutionError::UpdateWithoutBase { .. }
            | SolutionError::Manifest { .. } => OpsError::Internal(e.to_string()),
        }
    }
}

impl From<CampaignError> for OpsError {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::NotFound { .. } => OpsError::NotFound(e.to_string()),
            CampaignError::NoPrevious { .. }
            | CampaignError::BelowFloor { .. }
            | CampaignError::Guard { .. } => OpsError::Conflict(e.to_string()),
            CampaignError::Load { .. } => OpsError::Internal(e.to_string()),
            CampaignError::Solution(s) => s.into(),
            CampaignError::Store(s) => s.into(),
        }
    }
}

impl From<DatasetError> for OpsError {
    fn from(e: DatasetError) -> Self {
        match e {
            DatasetError::NoVersion { .. } => OpsError::NotFound(e.to_string()),
            DatasetError::Store(s) => s.into(),
            DatasetError::Storage(s) => s.into(),
            other => OpsError::Internal(other.to_string()),
        }
    }
}

impl From<TriggerError> for OpsError {
    fn from(e: TriggerError) -> Self {
        match e {
            TriggerError::UnknownPipeline(_) => OpsError::NotFound(e.to_string()),
            TriggerError::Invalid(m) => OpsError::Invalid(m),
            TriggerError::Store(s) => s.into(),
            TriggerError::Other(o) => OpsError::Internal(format!("{o:#}")),
        }
    }
}

impl From<crate::forecast::job::PredictorError> for OpsError {
    fn from(e: crate::forecast::job::PredictorError) -> Self {
        use crate::forecast::job::PredictorError;
        match e {
            PredictorError::NoVersion { .. } => OpsError::NotFound(e.to_string()),
            PredictorError::NotActive { .. } => OpsError::Conflict(e.to_string()),
            PredictorError::Corrupt { .. } => OpsError::Internal(e.to_string()),
            PredictorError::Store(s) => s.into(),
        }
    }
}

/// Errors of the domain code that still reports `anyhow` (training,
/// forecasting internals): an internal failure, its whole chain kept.
pub(crate) fn internal(e: anyhow::Error) -> OpsError {
    OpsError::Internal(format!("{e:#}"))
}

/// The largest page any list returns; no request lists without bound.
pub const MAX_PAGE: i64 = 200;

/// A page of a long list, newest first, and the cursor of the next page
/// (`None` on the last one).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Which page of a long list to read.
#[derive(Debug, Clone, Default)]
pub struct PageAsk {
    /// The `next_cursor` of the previous page; `None` for the first.
    pub cursor: Option<String>,
    /// Page size (at most [`MAX_PAGE`]).
    pub limit: Option<i64>,
}

impl PageAsk {
    /// The first page, as large as pages get: what the console and the CLI
    /// show of a list.
    pub fn largest() -> PageAsk {
        PageAsk {
            cursor: None,
            limit: Some(MAX_PAGE),
        }
    }
}

/// A page of versions of `kind` (of `owner`, if given): by owner, each
/// owner's newest first. Cursors read `VERSION:OWNER`.
pub(crate) async fn versions_page(
    env: &crate::config::Env,
    kind: crate::store::VersionKind,
    owner: Option<&str>,
    ask: &PageAsk,
) -> OpsResult<Page<crate::store::VersionRecord>> {
    let after = match &ask.cursor {
        None => None,
        Some(c) => {
            let parsed = c
                .split_once(':')
                .and_then(|(v, owner)| Some((owner, v.parse::<i64>().ok()?)));
            Some(parsed.ok_or_else(|| OpsError::Invalid(format!("invalid cursor {c:?}")))?)
        }
    };
    let limit = page_size(ask.limit, 50);
    let mut items = env
        .store
        .list_versions(&crate::store::VersionQuery {
            kind,
            owner,
            after,
            limit: limit + 1,
        })
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|v| format!("{}:{}", v.version, v.owner))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// A page size as asked, within 1..=[`MAX_PAGE`] (default `default`).
pub fn page_size(asked: Option<i64>, default: i64) -> i64 {
    asked.unwrap_or(default).clamp(1, MAX_PAGE)
}
