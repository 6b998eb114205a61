//! The catalog of versions: dataset versions with their rejected-rows
//! reports, and solution versions with their offline metrics and HPO trials.

use bytes::Bytes;
use serde::Serialize;

use super::{OpsError, OpsResult, Page, PageAsk, versions_page};
use crate::config::Env;
use crate::dataset::{self, DatasetManifest};
use crate::schema::DatasetType;
use crate::solution::{self, SolutionManifest};
use crate::store::{VersionKind, VersionRecord, VersionStatus};

/// A version as lists show it: the store's record, with the manifest read
/// (`None` until the version is active, or when it is unreadable).
#[derive(Debug, Clone, Serialize)]
pub struct Version<M> {
    pub owner: String,
    pub version: i64,
    pub status: VersionStatus,
    pub run_id: Option<i64>,
    pub location: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub error: Option<String>,
    pub manifest: Option<M>,
}

impl<M: serde::de::DeserializeOwned> Version<M> {
    fn of(r: VersionRecord) -> Self {
        let manifest = r.manifest.and_then(|m| serde_json::from_value::<M>(m).ok());
        Version {
            owner: r.owner,
            version: r.version,
            status: r.status,
            run_id: r.run_id,
            location: r.location,
            created_at: r.created_at,
            error: r.error,
            manifest,
        }
    }
}

pub type DatasetVersion = Version<DatasetManifest>;
pub type SolutionVersion = Version<SolutionManifest>;

/// `GROUP/DATASET` (e.g. `movielens/interactions`) as a group and a type.
pub fn dataset_name(name: &str) -> OpsResult<(&str, DatasetType)> {
    let (group, ty) = name.split_once('/').ok_or_else(|| {
        OpsError::Invalid(format!(
            "name the dataset as GROUP/DATASET, e.g. movielens/interactions (got {name:?})"
        ))
    })?;
    let ty = DatasetType::parse(ty).ok_or_else(|| {
        OpsError::Invalid(format!(
            "unknown dataset type {ty:?}: interactions, items, users, target_time_series or related_time_series"
        ))
    })?;
    Ok((group, ty))
}

/// A page of dataset versions (of one dataset, `GROUP/DATASET`, if given),
/// by dataset, each one's newest first.
pub async fn dataset_versions(
    env: &Env,
    dataset: Option<&str>,
    ask: &PageAsk,
) -> OpsResult<Page<DatasetVersion>> {
    let owner = match dataset {
        Some(d) => {
            let (group, ty) = dataset_name(d)?;
            Some(dataset::owner(group, ty))
        }
        None => None,
    };
    let page = versions_page(env, VersionKind::Dataset, owner.as_deref(), ask).await?;
    Ok(page.map(Version::of))
}

/// One dataset version (the latest active one when `version` is `None`).
pub async fn dataset_version(
    env: &Env,
    dataset: &str,
    version: Option<i64>,
) -> OpsResult<DatasetVersion> {
    let (group, ty) = dataset_name(dataset)?;
    Ok(Version::of(
        dataset::version_record(env, group, ty, version).await?,
    ))
}

/// A dataset version's rejected-rows report (CSV: source, line, column,
/// value, reason).
pub async fn rejected_rows(env: &Env, dataset: &str, version: i64) -> OpsResult<Bytes> {
    let v = dataset_version(env, dataset, Some(version)).await?;
    let file = v
        .manifest
        .and_then(|m| m.rejected_file)
        .ok_or_else(|| OpsError::NotFound(format!("{dataset} v{version} rejected no rows")))?;
    let (group, ty) = dataset_name(dataset)?;
    let loc = dataset::versions_location(&env.warehouse, group, ty)
        .child(&format!("v{version}"))
        .child(&file);
    Ok(loc.get().await?)
}

/// A page of solution versions (of one solution, if given), by solution,
/// each one's newest first.
pub async fn solution_versions(
    env: &Env,
    solution: Option<&str>,
    ask: &PageAsk,
) -> OpsResult<Page<SolutionVersion>> {
    let page = versions_page(env, VersionKind::Solution, solution, ask).await?;
    Ok(page.map(Version::of))
}

/// One active solution version (the latest when `version` is `None`) with
/// its manifest: recipe, settings, data, metrics and tuning trials.
pub async fn solution_version(
    env: &Env,
    name: &str,
    version: Option<i64>,
) -> OpsResult<(VersionRecord, SolutionManifest)> {
    let record = solution::version_record(env, name, version).await?;
    let manifest = solution::manifest_of(&record)?;
    Ok((record, manifest))
}
