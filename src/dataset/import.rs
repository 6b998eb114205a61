//! Dataset import: read every source object (CSV, Parquet, JSON lines) with
//! polars, apply the declared renames and SQL, validate against the schema,
//! merge with the parent version (INCREMENTAL), and publish a new version:
//! Parquet and the rejected-rows report first, `manifest.json` last, then the
//! version becomes active in the state store. On any failure the version is
//! marked failed and has no manifest, so nothing reads it.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use polars::prelude::*;
use polars::sql::SQLContext;
use serde::{Deserialize, Serialize};

pub use super::source::{CsvSpec, Encoding, SourceFormat};
use super::source::{Reading, SourceError, Wanted, one_line, read_source};
use super::validate::{ROW_COL, Rejected, SOURCE_COL, ValidateError, validate_frame};
use super::{DataFile, DatasetError, DatasetManifest, MANIFEST_FORMAT, owner, versions_location};
use crate::config::Env;
use crate::progress::Progress;
use crate::publish::publish_version;
use crate::schema::{DatasetType, Schema};
use crate::storage::{Location, StorageError, StorageUrl};
use crate::store::VersionKind;

/// Default share of rows that may be rejected before an import fails: a
/// systematic problem (wrong column, wrong unit, wrong delimiter) rejects most
/// rows and fails loudly, while a few corrupt rows in a large file are
/// reported and skipped.
pub const DEFAULT_MAX_REJECTED_FRACTION: f64 = 0.01;

/// Settings of an `import` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    /// The dataset to import into: `interactions`, `items` or `users`.
    pub dataset: DatasetType,
    /// Where the data is: a local path (relative to the pipeline file),
    /// `file:///abs/path`, `s3://bucket/key`, or a prefix ending in `/` to
    /// read every object under it.
    pub source: String,
    /// `csv`, `parquet` or `json` (JSON lines). Default: from the file
    /// extension, else CSV.
    #[serde(default)]
    pub format: Option<SourceFormat>,
    /// CSV settings.
    #[serde(default)]
    pub csv: CsvSpec,
    /// Text encoding of CSV and JSON sources: `utf-8` (default) or `latin-1`.
    #[serde(default)]
    pub encoding: Encoding,
    /// Renames source columns to schema fields: `{"Customer ID": USER_ID}`.
    /// Applied before `sql`.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// A polars SQL query over the table `source` whose result is validated,
    /// e.g. to filter rows, convert units or build columns.
    #[serde(default)]
    pub sql: Option<String>,
    /// `full` (default): the new version holds only this data. `incremental`:
    /// appended to the latest version; items and users with an existing id
    /// replace the old record, exact duplicate interactions are dropped.
    #[serde(default)]
    pub mode: ImportMode,
    /// The import fails when more than this share of rows is rejected
    /// (default 0.01). Rejected rows are listed in `rejected.csv` either way.
    #[serde(default = "default_max_rejected")]
    pub max_rejected_fraction: f64,
}

fn default_max_rejected() -> f64 {
    DEFAULT_MAX_REJECTED_FRACTION
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    #[default]
    #[serde(alias = "FULL")]
    Full,
    #[serde(alias = "INCREMENTAL")]
    Incremental,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Incremental => "INCREMENTAL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error("{url}: no objects under this prefix")]
    NoObjects { url: String },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("rename: the source has no column {column:?} (columns: {available})")]
    Rename { column: String, available: String },
    #[error("sql: {reason}")]
    Sql { reason: String },
    #[error(
        "{source_url}: no column {field}, which the {dataset} schema requires (columns: {available}); \
         map one with `rename:`, `csv.columns` or `sql`"
    )]
    MissingColumn {
        source_url: String,
        dataset: DatasetType,
        field: String,
        available: String,
    },
    #[error(
        "{source_url}: column {field} is of type {dtype}, which cannot hold the schema's {field_type} \
         values; convert it with `sql:` or fix the file"
    )]
    ColumnType {
        source_url: String,
        field: String,
        dtype: String,
        field_type: &'static str,
    },
    #[error("{source_url}: no data rows")]
    NoRows { source_url: String },
    #[error(
        "{rejected} of {total} rows rejected ({percent:.1}%), more than max_rejected_fraction {max}; first reasons:\n{first}\n\
         all rejected rows: {report}"
    )]
    TooManyRejected {
        rejected: usize,
        total: usize,
        percent: f64,
        max: f64,
        first: String,
        report: String,
    },
    #[error(
        "INCREMENTAL import into {owner}, which has no earlier version: run a FULL import first"
    )]
    IncrementalWithoutBase { owner: String },
    #[error("{0}")]
    Internal(String),
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub version: i64,
    pub manifest: DatasetManifest,
    pub location: String,
    pub ignored_columns: Vec<String>,
    /// Conversions that changed values without refusing rows, counted.
    pub notes: Vec<String>,
    pub rejected_preview: Vec<String>,
    /// Rows refused because their timestamp is in the future (counted among
    /// the rejected rows), and the first few of them as sentences.
    pub future_rows: u64,
    pub future_preview: Vec<String>,
    pub bytes_read: u64,
}

/// One import into one dataset.
pub struct ImportJob<'a> {
    pub spec: &'a ImportSpec,
    pub schema: &'a Schema,
    pub dataset_group: &'a str,
    /// Folder relative source paths resolve against.
    pub base_dir: &'a Path,
    pub run_id: Option<i64>,
    pub step_id: Option<&'a str>,
}

/// Resolves the sources: one object, or every object under a prefix.
pub async fn resolve_sources(
    env: &Env,
    source: &str,
    base_dir: &Path,
) -> Result<Vec<Location>, ImportError> {
    let url = StorageUrl::parse(source, base_dir)?;
    let is_dir = matches!(&url, StorageUrl::Local { path, .. } if path.is_dir());
    let loc = env.storage.open(&url)?;
    if url.is_prefix() || is_dir {
        let objects = loc.list().await?;
        if objects.is_empty() {
            return Err(ImportError::NoObjects {
                url: url.to_string(),
            });
        }
        Ok(objects)
    } else {
        Ok(vec![loc])
    }
}

/// Runs an import and publishes the new version.
pub async fn run_import(env: &Env, job: ImportJob<'_>) -> Result<ImportReport, ImportError> {
    let spec = job.spec;
    let owner = owner(job.dataset_group, spec.dataset);
    let sources = resolve_sources(env, &spec.source, job.base_dir).await?;

    let parent = match spec.mode {
        ImportMode::Full => None,
        ImportMode::Incremental => Some(
            env.store
                .latest_active_version(VersionKind::Dataset, &owner)
                .await?
                .ok_or_else(|| ImportError::IncrementalWithoutBase {
                    owner: owner.clone(),
                })?,
        ),
    };

    let prefix = versions_location(&env.warehouse, job.dataset_group, spec.dataset);
    let parent = parent.map(|p| p.version);
    let (manifest, report) = publish_version(
        env.store.as_ref(),
        VersionKind::Dataset,
        &owner,
        (job.run_id, job.step_id),
        &prefix,
        |version, folder| import_into(env, &job, &sources, parent, version, folder),
    )
    .await?;
    Ok(ImportReport { manifest, ..report })
}

async fn import_into(
    env: &Env,
    job: &ImportJob<'_>,
    sources: &[Location],
    parent_version: Option<i64>,
    version: i64,
    folder: Location,
) -> Result<(DatasetManifest, ImportReport), ImportError> {
    let spec = job.spec.clone();
    let schema = job.schema.clone();
    let urls: Vec<String> = sources.iter().map(|s| s.url().to_string()).collect();

    let progress = Progress::bytes("reading", 0);
    let mut fetched = Vec::with_capacity(sources.len());
    let mut bytes_read = 0u64;
    for src in sources {
        let data = src.get().await?;
        bytes_read += data.len() as u64;
        progress.inc(data.len() as u64);
        fetched.push((src.url().to_string(), data));
    }
    progress.finish();

    let prepared = tokio::task::spawn_blocking(move || prepare(&spec, &schema, fetched))
        .await
        .map_err(|e| ImportError::Internal(format!("import task failed: {e}")))??;

    let rejected_count = prepared.rejected.len();
    let rejected_rows = prepared.rejected_rows;
    let rejected_file = if rejected_count > 0 {
        let loc = folder.child("rejected.csv");
        loc.put(rejected_csv(&prepared.rejected, &urls)).await?;
        Some(loc)
    } else {
        None
    };
    let total = prepared.presented_rows;
    if total > 0 && rejected_rows as f64 / total as f64 > job.spec.max_rejected_fraction {
        return Err(ImportError::TooManyRejected {
            rejected: rejected_rows,
            total,
            percent: 100.0 * rejected_rows as f64 / total as f64,
            max: job.spec.max_rejected_fraction,
            first: preview(&prepared.rejected, &urls, 5).join("\n"),
            report: rejected_file
                .map(|l| l.url().to_string())
                .unwrap_or_default(),
        });
    }
    if prepared.frame.height() == 0 {
        return Err(ImportError::NoRows {
            source_url: urls.join(", "),
        });
    }

    let imported_rows = prepared.frame.height() as u64;
    let (frame, duplicate_rows) = match parent_version {
        None => (prepared.frame, 0),
        Some(pv) => {
            let parent = super::load(env, job.dataset_group, job.spec.dataset, Some(pv)).await?;
            let dataset = job.spec.dataset;
            let new = prepared.frame;
            tokio::task::spawn_blocking(move || merge(parent.frame, new, dataset))
                .await
                .map_err(|e| ImportError::Internal(format!("merge task failed: {e}")))?
                .map_err(|e| ImportError::Internal(format!("merging with v{pv}: {e}")))?
        }
    };

    let rows = frame.height() as u64;
    let parquet = tokio::task::spawn_blocking(move || write_parquet(frame))
        .await
        .map_err(|e| ImportError::Internal(format!("parquet task failed: {e}")))??;
    let part = DataFile::of("part-00000.parquet", &parquet, rows);
    folder.child(&part.path).put(parquet).await?;

    let manifest = DatasetManifest {
        format_version: MANIFEST_FORMAT,
        dataset_group: job.dataset_group.to_string(),
        dataset: job.spec.dataset,
        version,
        mode: job.spec.mode,
        parent_version,
        schema: job.schema.clone(),
        sources: urls.clone(),
        rows,
        imported_rows,
        rejected_rows: rejected_rows as u64,
        filtered_rows: prepared.filtered_rows as u64,
        duplicate_rows,
        files: vec![part],
        rejected_file: (rejected_count > 0).then(|| "rejected.csv".to_string()),
        created_at: Utc::now(),
        run_id: job.run_id,
        step_id: job.step_id.map(str::to_string),
    };
    let future = future_dated(&prepared.rejected);
    let report = ImportReport {
        version,
        location: folder.url().to_string(),
        ignored_columns: prepared.ignored_columns,
        notes: prepared.notes,
        rejected_preview: preview(&prepared.rejected, &urls, 3),
        future_rows: future.len() as u64,
        future_preview: preview(&future, &urls, 3),
        bytes_read,
        manifest: manifest.clone(),
    };
    Ok((manifest, report))
}

/// The rejected rows whose timestamp is in the future, one per row.
fn future_dated(rejected: &[Rejected]) -> Vec<Rejected> {
    // Rejections are sorted by source and row: equal rows are adjacent.
    let mut future: Vec<Rejected> = rejected
        .iter()
        .filter(|r| super::validate::is_future(r))
        .cloned()
        .collect();
    future.dedup_by_key(|r| (r.source, r.row));
    future
}

/// The CPU part of an import, on a blocking thread.
struct Prepared {
    frame: DataFrame,
    rejected: Vec<Rejected>,
    /// Distinct rows with at least one rejected value.
    rejected_rows: usize,
    /// Rows handed to validation (after `sql`), plus lines refused unparsed.
    presented_rows: usize,
    filtered_rows: usize,
    ignored_columns: Vec<String>,
    notes: Vec<String>,
}

fn prepare(
    spec: &ImportSpec,
    schema: &Schema,
    fetched: Vec<(String, bytes::Bytes)>,
) -> Result<Prepared, ImportError> {
    let mut frames = Vec::with_capacity(fetched.len());
    let mut rejected = Vec::new();
    let first_url = fetched
        .first()
        .map(|(url, _)| url.clone())
        .unwrap_or_default();
    let wanted = Wanted::new(schema, &spec.rename);
    let reading = Reading {
        format: spec.format,
        csv: &spec.csv,
        encoding: spec.encoding,
        wanted: &wanted,
    };
    for (index, (url, data)) in fetched.into_iter().enumerate() {
        let read = read_source(&reading, &url, data, index as u32)?;
        rejected.extend(read.rejected);
        frames.push(read.frame);
    }
    let mut frame = union_frames(frames)
        .map_err(|e| ImportError::Internal(format!("combining sources: {e}")))?;

    let columns: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (from, to) in &spec.rename {
        if !columns.contains(from) {
            return Err(ImportError::Rename {
                column: from.clone(),
                available: visible(&columns),
            });
        }
        frame
            .rename(from, to.as_str().into())
            .map_err(|e| ImportError::Internal(e.to_string()))?;
    }

    let before_sql = frame.height();
    if let Some(query) = &spec.sql {
        let mut ctx = SQLContext::new();
        ctx.register("source", frame.lazy());
        frame = ctx
            .execute(query)
            .and_then(|lf| lf.collect())
            .map_err(|e| ImportError::Sql {
                reason: one_line(&e.to_string()),
            })?;
    }
    let presented_rows = frame.height();
    let filtered_rows = before_sql.saturating_sub(presented_rows);

    // Related time series are known into the future (next month's price):
    // their timestamps have no upper bound.
    let latest = match schema.dataset_type {
        DatasetType::RelatedTimeSeries => i64::MAX / 2,
        _ => Utc::now().timestamp(),
    };
    let place = if spec.sql.is_some() {
        format!("{first_url} (after sql)")
    } else {
        first_url.clone()
    };
    let validated = validate_frame(&frame, schema, latest).map_err(|e| match e {
        ValidateError::MissingColumn { field, available } => ImportError::MissingColumn {
            source_url: place,
            dataset: schema.dataset_type,
            field,
            available: visible(&available),
        },
        ValidateError::ColumnType {
            field,
            dtype,
            field_type,
        } => ImportError::ColumnType {
            source_url: place,
            field,
            dtype,
            field_type: field_type.as_str(),
        },
    })?;
    // Lines refused before parsing (bad JSON) count as rows too.
    let unparsed = rejected.len();
    let rejected_rows = unparsed + presented_rows - validated.frame.height();
    rejected.extend(validated.rejected);
    Ok(Prepared {
        frame: validated.frame,
        rejected,
        rejected_rows,
        presented_rows: presented_rows + unparsed,
        filtered_rows,
        ignored_columns: validated.ignored_columns,
        notes: validated.notes,
    })
}

/// Stacks the frames of several source objects. A column missing from some
/// objects is null there; a column whose type differs between objects (JSON
/// lines infer types per file) is read as text, which validation converts.
fn union_frames(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let mut names: Vec<PlSmallStr> = Vec::new();
    let mut types: Vec<DataType> = Vec::new();
    for f in &frames {
        for c in f.columns() {
            match names.iter().position(|n| n == c.name()) {
                None => {
                    names.push(c.name().clone());
                    types.push(c.dtype().clone());
                }
                Some(i) if &types[i] != c.dtype() && c.dtype() != &DataType::Null => {
                    types[i] = if types[i] == DataType::Null {
                        c.dtype().clone()
                    } else {
                        DataType::String
                    };
                }
                Some(_) => {}
            }
        }
    }
    let mut out: Option<DataFrame> = None;
    for f in frames {
        let height = f.height();
        let columns = names
            .iter()
            .zip(&types)
            .map(|(name, dtype)| match f.column(name) {
                Ok(c) => c.cast(dtype),
                Err(_) => Ok(Column::full_null(name.clone(), height, dtype)),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let f = DataFrame::new(height, columns)?;
        match &mut out {
            None => out = Some(f),
            Some(o) => {
                o.vstack_mut_owned(f)?;
            }
        }
    }
    let mut frame = out.unwrap_or_default();
    frame.rechunk_mut();
    Ok(frame)
}

fn visible(columns: &[String]) -> String {
    columns
        .iter()
        .filter(|c| *c != SOURCE_COL && *c != ROW_COL)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rejected-rows report: one CSV line per refused value.
fn rejected_csv(rejected: &[Rejected], urls: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["source", "row", "column", "value", "reason"]);
    for r in rejected {
        let source = r
            .source
            .and_then(|i| urls.get(i as usize))
            .map_or("(sql output)", |s| s.as_str());
        let _ = w.write_record([source, &r.row.to_string(), &r.column, &r.value, &r.reason]);
    }
    w.into_inner().unwrap_or_default()
}

/// The first `n` rejections as sentences: `file, row 3, USER_ID: empty id`.
fn preview(rejected: &[Rejected], urls: &[String], n: usize) -> Vec<String> {
    rejected
        .iter()
        .take(n)
        .map(|r| {
            let place = match r.source.and_then(|i| urls.get(i as usize)) {
                Some(url) => format!("{url}, row {}", r.row),
                None => format!("sql output row {}", r.row),
            };
            let column = if r.column.is_empty() {
                String::new()
            } else {
                format!(", {}", r.column)
            };
            let value = if r.value.is_empty() {
                String::new()
            } else {
                format!(" ({:?})", r.value)
            };
            format!("  {place}{column}: {}{value}", r.reason)
        })
        .collect()
}

/// Merges a new import into its parent: items and users by id (the new
/// record wins), interactions by dropping exact duplicates.
fn merge(
    parent: DataFrame,
    new: DataFrame,
    dataset: DatasetType,
) -> PolarsResult<(DataFrame, u64)> {
    let parent = align(parent, &new)?;
    let total = parent.height() + new.height();
    let merged = concat([parent.lazy(), new.lazy()], UnionArgs::default())?;
    let out = match dataset.key_fields() {
        [] => merged
            .unique_stable(None, UniqueKeepStrategy::First)
            .collect()?,
        keys => merged
            .unique_stable(Some(cols(keys.iter().copied())), UniqueKeepStrategy::Last)
            .collect()?,
    };
    let dropped = (total - out.height()) as u64;
    Ok((out, dropped))
}

/// Gives the parent the new frame's columns (a schema may gain nullable fields).
fn align(parent: DataFrame, new: &DataFrame) -> PolarsResult<DataFrame> {
    let height = parent.height();
    let mut columns = Vec::with_capacity(new.width());
    for c in new.columns() {
        let col = match parent.column(c.name()) {
            Ok(p) => p.cast(c.dtype())?,
            Err(_) => Column::full_null(c.name().clone(), height, c.dtype()),
        };
        columns.push(col);
    }
    DataFrame::new(height, columns)
}

fn write_parquet(mut frame: DataFrame) -> Result<Vec<u8>, ImportError> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut frame)
        .map_err(|e| ImportError::Internal(format!("writing Parquet: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_items_replace_by_id_and_interactions_drop_duplicates() {
        let parent = df!("ITEM_ID" => ["a", "b"], "GENRE" => ["x", "y"]).unwrap();
        let new = df!("ITEM_ID" => ["b", "c"], "GENRE" => ["z", "w"]).unwrap();
        let (out, dropped) = merge(parent, new, DatasetType::Items).unwrap();
        let genres: Vec<Option<&str>> =
            out.column("GENRE").unwrap().str().unwrap().iter().collect();
        assert_eq!(genres, [Some("x"), Some("z"), Some("w")]);
        assert_eq!(dropped, 1);

        let parent = df!("USER_ID" => ["u"], "ITEM_ID" => ["a"], "TIMESTAMP" => [1i64]).unwrap();
        let new = df!("USER_ID" => ["u", "u"], "ITEM_ID" => ["a", "a"], "TIMESTAMP" => [1i64, 2])
            .unwrap();
        let (out, dropped) = merge(parent, new, DatasetType::Interactions).unwrap();
        assert_eq!((out.height(), dropped), (2, 1));
        // Time series: a corrected value for an item's period replaces the old one.
        let parent =
            df!("item_id" => ["a", "a"], "timestamp" => [1i64, 2], "target_value" => [5.0, 6.0])
                .unwrap();
        let new =
            df!("item_id" => ["a", "b"], "timestamp" => [2i64, 2], "target_value" => [7.0, 1.0])
                .unwrap();
        let (out, dropped) = merge(parent, new, DatasetType::TargetTimeSeries).unwrap();
        assert_eq!(dropped, 1);
        let values: Vec<f64> = out
            .column("target_value")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(values, [5.0, 7.0, 1.0]);
    }

    fn interactions() -> Schema {
        let avro: crate::schema::AvroSchema = serde_json::from_str(
            r#"{"fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                {"name": "EVENT_TYPE", "type": ["null", "string"]}, {"name": "TIMESTAMP", "type": "long"}]}"#,
        )
        .unwrap();
        Schema::from_avro(DatasetType::Interactions, &avro).unwrap()
    }

    fn prepare_one(name: &str, data: Vec<u8>, extra: &str) -> Result<Prepared, ImportError> {
        let spec: ImportSpec =
            serde_yaml::from_str(&format!("dataset: interactions\nsource: {name}\n{extra}"))
                .unwrap();
        prepare(
            &spec,
            &interactions(),
            vec![(name.to_string(), data.into())],
        )
    }

    fn reasons(p: &Prepared) -> Vec<(u64, String, String)> {
        p.rejected
            .iter()
            .map(|r| (r.row, r.column.clone(), r.reason.clone()))
            .collect()
    }

    #[test]
    fn a_parquet_list_column_is_refused_by_name_and_type() {
        let items = Series::new(
            "ITEM_ID".into(),
            [
                Series::new("".into(), ["a", "b"]),
                Series::new("".into(), ["c"]),
            ],
        );
        let mut df = DataFrame::new(
            2,
            vec![
                Series::new("USER_ID".into(), ["u1", "u2"]).into(),
                items.into(),
                Series::new("TIMESTAMP".into(), [1i64, 2]).into(),
            ],
        )
        .unwrap();
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
        let err = prepare_one("x.parquet", buf, "").err().unwrap().to_string();
        assert_eq!(
            err,
            "x.parquet: column ITEM_ID is of type list[str], which cannot hold the schema's string \
             values; convert it with `sql:` or fix the file"
        );
    }

    #[test]
    fn future_rows_are_refused_and_counted_in_a_target_and_accepted_in_a_related_series() {
        let far = Utc::now().timestamp() + 30 * 86_400;
        let prepare_as = |dataset: DatasetType| {
            let value = match dataset {
                DatasetType::TargetTimeSeries => "target_value",
                _ => "price",
            };
            let text = format!("item_id,timestamp,{value}\na,1700000000,3\na,{far},4\n");
            let spec: ImportSpec = serde_yaml::from_str(&format!(
                "dataset: {}\nsource: x.csv\nmax_rejected_fraction: 1",
                dataset.as_str()
            ))
            .unwrap();
            let schema = dataset.default_schema().unwrap_or_else(|| {
                let avro: crate::schema::AvroSchema = serde_json::from_str(
                    r#"{"fields": [{"name": "item_id", "type": "string"},
                        {"name": "timestamp", "type": "long"},
                        {"name": "price", "type": "double"}]}"#,
                )
                .unwrap();
                Schema::from_avro(dataset, &avro).unwrap()
            });
            prepare(
                &spec,
                &schema,
                vec![("x.csv".into(), text.into_bytes().into())],
            )
            .unwrap()
        };
        let target = prepare_as(DatasetType::TargetTimeSeries);
        assert_eq!((target.frame.height(), target.rejected_rows), (1, 1));
        let future = future_dated(&target.rejected);
        assert_eq!(future.len(), 1);
        assert_eq!((future[0].row, future[0].column.as_str()), (2, "timestamp"));
        // Other rejections are not counted as future ones.
        let mut other = target.rejected.clone();
        other[0].reason = "not a number".into();
        assert!(future_dated(&other).is_empty());
        let related = prepare_as(DatasetType::RelatedTimeSeries);
        assert_eq!((related.frame.height(), related.rejected_rows), (2, 0));
    }

    #[test]
    fn lossy_timestamps_are_refused_or_counted_never_silent() {
        let text = "{\"USER_ID\": \"u\", \"ITEM_ID\": \"a\", \"TIMESTAMP\": 1700000060.5}\n\
                    {\"USER_ID\": \"u\", \"ITEM_ID\": \"b\", \"TIMESTAMP\": 1700000060.0}\n\
                    {\"USER_ID\": \"u\", \"ITEM_ID\": \"c\", \"TIMESTAMP\": \"2023-11-14T22:14:20.250Z\"}\n";
        let p = prepare_one("x.jsonl", text.into(), "max_rejected_fraction: 1").unwrap();
        assert_eq!(
            reasons(&p),
            [(
                1,
                "TIMESTAMP".into(),
                "a fraction of a second in a number of seconds; timestamps are whole UNIX seconds (round it with `sql:`)"
                    .into()
            )]
        );
        let ts: Vec<i64> = p
            .frame
            .column("TIMESTAMP")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(ts, [1700000060, 1700000060]);
        assert_eq!(
            p.notes,
            [
                "TIMESTAMP: 1 value had a fraction of a second, dropped (timestamps are whole UNIX seconds)"
            ]
        );
        let p = prepare_one(
            "x.csv",
            b"USER_ID,ITEM_ID,TIMESTAMP\nu,a,1700000060.5\nu,b,1\n".to_vec(),
            "max_rejected_fraction: 1",
        )
        .unwrap();
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.frame.height(), 1);
    }

    #[test]
    fn ids_with_control_characters_and_text_with_nul_are_rejected() {
        let text = "USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP\nu\u{0}1,a,click,1\nu2,b\u{7},click,2\nu3,c,cl\u{0}ick,3\nu4,d,\"two\twords\",4\n";
        let p = prepare_one("x.csv", text.into(), "max_rejected_fraction: 1").unwrap();
        assert_eq!(
            reasons(&p),
            [
                (
                    1,
                    "USER_ID".into(),
                    "id contains the control character U+0000".into()
                ),
                (
                    2,
                    "ITEM_ID".into(),
                    "id contains the control character U+0007".into()
                ),
                (
                    3,
                    "EVENT_TYPE".into(),
                    "text contains the control character U+0000".into()
                ),
            ]
        );
        assert_eq!(p.rejected[0].value, "u\\01");
        assert_eq!(p.frame.height(), 1, "a tab in text is fine");
    }

    /// Pieces of CSV, JSON, encodings and magic bytes that hostile files are
    /// made of.
    fn hostile_piece() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let pieces: Vec<&'static [u8]> = vec![
            b"USER_ID",
            b"ITEM_ID",
            b"TIMESTAMP",
            b"EVENT_TYPE",
            b",",
            b",",
            b"\"",
            b"\"\"",
            b"\n",
            b"\n",
            b"\r\n",
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b"\"USER_ID\": ",
            b"\"ITEM_ID\": ",
            b"\"TIMESTAMP\": ",
            b"\xEF\xBB\xBF",
            b"\xFF\xFE",
            b"\x1F\x8B",
            b"PAR1",
            b"PK\x03\x04",
            b"\0",
            b"\x07",
            b"1700000000",
            b"1700000000.5",
            b"1e400",
            b"-1",
            b"18446744073709551616",
            b"2023-11-14T22:14:20.25Z",
            b"null",
            b"true",
            b"u1",
            b"\xE9",
            b"\xC3\xA9",
            b"\t",
        ];
        prop_oneof![
            4 => proptest::sample::select(pieces).prop_map(<[u8]>::to_vec),
            1 => proptest::collection::vec(any::<u8>(), 0..6),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            // The fuzz budget: PROPTEST_CASES overrides it for a longer run.
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
            failure_persistence: None,
            ..Default::default()
        })]
        /// Whatever the bytes, reading and validating ends with rows or an
        /// error, never a panic, and what it keeps is sound: every row is
        /// either kept or rejected, and no kept id is empty or holds a
        /// control character.
        #[test]
        fn fuzz_hostile_csv_and_json_lines(
            header in proptest::bool::ANY,
            pieces in proptest::collection::vec(hostile_piece(), 0..80),
            json in proptest::bool::ANY,
        ) {
            let mut data = Vec::new();
            if header && !json {
                data.extend_from_slice(b"USER_ID,ITEM_ID,TIMESTAMP\n");
            }
            data.extend(pieces.concat());
            let name = if json { "f.jsonl" } else { "f.csv" };
            if let Ok(p) = prepare_one(name, data, "max_rejected_fraction: 1") {
                proptest::prop_assert_eq!(p.frame.height() + p.rejected_rows, p.presented_rows);
                for id in ["USER_ID", "ITEM_ID"] {
                    for v in p.frame.column(id).unwrap().str().unwrap().iter().flatten() {
                        proptest::prop_assert!(!v.is_empty() && !v.chars().any(char::is_control), "{v:?}");
                    }
                }
            }
        }
    }
}
