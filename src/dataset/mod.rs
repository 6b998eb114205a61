//! Datasets and their versions. A dataset version is immutable: Parquet
//! files, an optional rejected-rows report, and `manifest.json` written last
//! under `<warehouse>/datasets/<group>/<type>/v<N>/`. The state store lists
//! versions; a version without a manifest (a failed or killed import) is never
//! read, because readers load only active versions and check their manifest.

pub mod import;
mod source;
mod validate;

use std::io::Cursor;

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Env;
use crate::publish::MANIFEST_FILE;
use crate::recipes::Interactions;
use crate::recipes::features::ItemRecord;
use crate::schema::{self, DatasetType, Schema};
use crate::storage::{Location, StorageError};
use crate::store::{StoreError, VersionKind, VersionRecord};

pub use import::{ImportMode, ImportSpec};
pub use validate::Rejected;

/// Manifest format written by this build.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("dataset {owner} has no active version yet; run an import step first")]
    NoVersion { owner: String },
    #[error("{file}: {reason}")]
    Corrupt { file: String, reason: String },
}

/// One data file of a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataFile {
    /// Relative to the version's folder.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl DataFile {
    /// The entry of `bytes` stored as `path`, holding `rows` rows.
    pub fn of(path: &str, bytes: &[u8], rows: u64) -> DataFile {
        DataFile {
            path: path.to_string(),
            rows,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }
}

/// What a dataset version holds and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetManifest {
    pub format_version: u32,
    pub dataset_group: String,
    pub dataset: DatasetType,
    pub version: i64,
    pub mode: ImportMode,
    /// The version this one was built on (INCREMENTAL imports).
    pub parent_version: Option<i64>,
    pub schema: Schema,
    /// Every object read.
    pub sources: Vec<String>,
    /// Rows in this version.
    pub rows: u64,
    /// Valid rows this import read (before merging with the parent).
    pub imported_rows: u64,
    /// Rows refused by validation, listed in `rejected_file`.
    pub rejected_rows: u64,
    /// Rows dropped by the import's `sql` (its WHERE clause).
    pub filtered_rows: u64,
    /// Duplicates dropped when merging (INCREMENTAL).
    pub duplicate_rows: u64,
    pub files: Vec<DataFile>,
    pub rejected_file: Option<String>,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<i64>,
    pub step_id: Option<String>,
}

/// The state-store owner of a dataset's versions.
pub fn owner(group: &str, dataset: DatasetType) -> String {
    format!("{group}/{dataset}")
}

/// Where a dataset's versions live in the warehouse.
pub fn versions_location(warehouse: &Location, group: &str, dataset: DatasetType) -> Location {
    warehouse.child(&format!("datasets/{group}/{dataset}"))
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A loaded dataset version.
pub struct LoadedDataset {
    pub record: VersionRecord,
    pub manifest: DatasetManifest,
    pub frame: DataFrame,
}

/// A dataset version's record: the given one, or the latest active one.
pub async fn version_record(
    env: &Env,
    group: &str,
    dataset: DatasetType,
    version: Option<i64>,
) -> Result<VersionRecord, DatasetError> {
    let owner = owner(group, dataset);
    Ok(match version {
        Some(v) => {
            env.store
                .get_version(VersionKind::Dataset, &owner, v)
                .await?
        }
        None => env
            .store
            .latest_active_version(VersionKind::Dataset, &owner)
            .await?
            .ok_or(DatasetError::NoVersion { owner })?,
    })
}

/// Loads a version (the latest active one when `version` is `None`),
/// verifying each file's checksum against the manifest.
pub async fn load(
    env: &Env,
    group: &str,
    dataset: DatasetType,
    version: Option<i64>,
) -> Result<LoadedDataset, DatasetError> {
    let record = version_record(env, group, dataset, version).await?;
    let folder =
        versions_location(&env.warehouse, group, dataset).child(&format!("v{}", record.version));
    let manifest_loc = folder.child(MANIFEST_FILE);
    let manifest: DatasetManifest =
        serde_json::from_slice(&manifest_loc.get().await?).map_err(|e| DatasetError::Corrupt {
            file: manifest_loc.url().to_string(),
            reason: format!("unreadable manifest: {e}"),
        })?;
    let mut parts = Vec::new();
    for file in &manifest.files {
        let loc = folder.child(&file.path);
        parts.push((loc.url().to_string(), file.sha256.clone(), loc.get().await?));
    }
    let frame = tokio::task::spawn_blocking(move || -> Result<DataFrame, DatasetError> {
        let mut frame: Option<DataFrame> = None;
        for (url, sha, bytes) in parts {
            if sha256_hex(&bytes) != sha {
                return Err(DatasetError::Corrupt {
                    file: url,
                    reason: "checksum differs from the manifest".into(),
                });
            }
            let df = ParquetReader::new(Cursor::new(bytes))
                .finish()
                .map_err(|e| DatasetError::Corrupt {
                    file: url.clone(),
                    reason: e.to_string(),
                })?;
            match &mut frame {
                None => frame = Some(df),
                Some(f) => {
                    f.vstack_mut_owned(df).map_err(|e| DatasetError::Corrupt {
                        file: url,
                        reason: e.to_string(),
                    })?;
                }
            }
        }
        Ok(frame.unwrap_or_default())
    })
    .await
    .expect("dataset load task panicked")?;
    Ok(LoadedDataset {
        record,
        manifest,
        frame,
    })
}

/// The latest version of an items or users dataset with the records posted
/// since by `PutItems` / `PutUsers` merged in (they replace rows with the
/// same id, and new ids become new rows). `frame` is the merged data;
/// `record` and `manifest` still describe the stored version.
pub async fn load_with_puts(
    env: &Env,
    group: &str,
    dataset: DatasetType,
) -> Result<LoadedDataset, DatasetError> {
    let mut loaded = load(env, group, dataset, None).await?;
    let puts = env.store.list_put_records(group, dataset.as_str()).await?;
    if puts.is_empty() {
        return Ok(loaded);
    }
    let Some(key) = dataset.key_field() else {
        return Ok(loaded);
    };
    let frame = std::mem::take(&mut loaded.frame);
    loaded.frame = tokio::task::spawn_blocking(move || with_put_records(frame, key, &puts))
        .await
        .expect("merging posted records panicked")
        .map_err(|e| DatasetError::Corrupt {
            file: format!("{group}/{dataset} posted records"),
            reason: e.to_string(),
        })?;
    Ok(loaded)
}

/// `numRatings`, `NUM_RATINGS` and `num_ratings` name the same field.
pub fn field_key(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Merges `(id, properties JSON)` records into a frame of the schema's
/// columns; the properties' keys are the managed service's camelCase forms
/// of the field names. A record replaces the row with its id.
pub fn with_put_records(
    frame: DataFrame,
    key: &str,
    records: &[(String, String)],
) -> PolarsResult<DataFrame> {
    let props: Vec<serde_json::Map<String, serde_json::Value>> = records
        .iter()
        .map(|(_, p)| match serde_json::from_str(p) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        })
        .collect();
    let mut columns = Vec::new();
    for c in frame.columns() {
        let name = c.name().clone();
        let values: Vec<Option<String>> = if name.as_str() == key {
            records.iter().map(|(id, _)| Some(id.clone())).collect()
        } else {
            let wanted = field_key(name.as_str());
            props
                .iter()
                .map(|m| {
                    m.iter()
                        .find(|(k, _)| field_key(k) == wanted)
                        .and_then(|(_, v)| match v {
                            serde_json::Value::Null => None,
                            serde_json::Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                })
                .collect()
        };
        let series = Series::new(name, values).cast(c.dtype())?;
        columns.push(series.into_column());
    }
    let extra = DataFrame::new(records.len(), columns)?;
    frame
        .vstack(&extra)?
        .unique_stable(Some(&[key.to_string()]), UniqueKeepStrategy::Last, None)
}

/// The metadata records of an items dataset frame, by item id: categorical
/// and textual fields and CREATION_TIMESTAMP, as the schema declares them.
pub fn item_records(df: &DataFrame, schema: &Schema) -> PolarsResult<Vec<(String, ItemRecord)>> {
    let ids = df.column(schema::ITEM_ID)?.str()?;
    let used: Vec<(String, Column)> = schema
        .fields
        .iter()
        .filter(|f| f.categorical || f.textual || f.name == schema::CREATION_TIMESTAMP)
        .filter_map(|f| {
            df.column(&f.name)
                .ok()
                .map(|c| (f.name.clone(), c.cast(&DataType::String)))
        })
        .map(|(n, c)| c.map(|c| (n, c)))
        .collect::<PolarsResult<_>>()?;
    let strs: Vec<(&str, &StringChunked)> = used
        .iter()
        .map(|(n, c)| c.str().map(|s| (n.as_str(), s)))
        .collect::<PolarsResult<_>>()?;
    Ok(ids
        .iter()
        .enumerate()
        .filter_map(|(row, id)| {
            let id = id?.to_string();
            let fields = strs
                .iter()
                .map(|(n, s)| (*n, s.get(row).map(str::to_string)));
            Some((id, ItemRecord::from_fields(schema, fields)))
        })
        .collect())
}

/// Interactions of a dataset frame, as dense indices for recipes.
pub fn to_interactions(df: &DataFrame) -> PolarsResult<Interactions> {
    let users = df.column(schema::USER_ID)?.str()?;
    let items = df.column(schema::ITEM_ID)?.str()?;
    let ts = df.column(schema::TIMESTAMP)?.i64()?;
    let event_type = match df.column(schema::EVENT_TYPE) {
        Ok(c) => Some(c.str()?.clone()),
        Err(_) => None,
    };
    let event_value = match df.column(schema::EVENT_VALUE) {
        Ok(c) => Some(c.cast(&DataType::Float32)?.f32()?.clone()),
        Err(_) => None,
    };
    let mut et_iter = event_type.as_ref().map(|c| c.iter());
    let mut ev_iter = event_value.as_ref().map(|c| c.iter());
    let rows = users
        .iter()
        .zip(items.iter())
        .zip(ts.iter())
        .map(move |((u, i), t)| {
            let et = et_iter.as_mut().and_then(|it| it.next().flatten());
            let ev = ev_iter.as_mut().and_then(|it| it.next().flatten());
            (u.unwrap_or(""), i.unwrap_or(""), t.unwrap_or(0), et, ev)
        });
    Ok(Interactions::from_rows(rows).into_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posted_records_replace_rows_by_id_and_add_new_ones() {
        let frame = df!(
            "ITEM_ID" => ["a", "b"],
            "GENRES" => [Some("Drama"), None],
            "NUM_RATINGS" => [Some(3i64), Some(4)],
        )
        .unwrap();
        let posted = [
            (
                "b".to_string(),
                r#"{"genres": "Comedy|Drama", "numRatings": 9}"#.to_string(),
            ),
            ("c".to_string(), r#"{"GENRES": "Horror"}"#.to_string()),
        ];
        let merged = with_put_records(frame, "ITEM_ID", &posted).unwrap();
        let ids: Vec<_> = merged
            .column("ITEM_ID")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ids, [Some("a"), Some("b"), Some("c")]);
        let genres: Vec<_> = merged
            .column("GENRES")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            genres,
            [Some("Drama"), Some("Comedy|Drama"), Some("Horror")]
        );
        let n: Vec<_> = merged
            .column("NUM_RATINGS")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(n, [Some(3), Some(9), None]);
    }
}
