//! Dataset import: read every source object (CSV, Parquet, JSON lines) with
//! polars, apply the declared renames and SQL, validate against the schema,
//! merge with the parent version (INCREMENTAL), and publish a new version:
//! Parquet and the rejected-rows report first, `manifest.json` last, then the
//! version becomes active in the state store. On any failure the version is
//! marked failed and has no manifest, so nothing reads it.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use chrono::Utc;
use polars::prelude::*;
use polars::sql::SQLContext;
use serde::{Deserialize, Serialize};

use super::validate::{MissingColumn, ROW_COL, Rejected, SOURCE_COL, validate_frame};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Csv,
    Parquet,
    /// JSON lines: one JSON object per line.
    #[serde(alias = "jsonl", alias = "ndjson")]
    Json,
}

impl SourceFormat {
    fn from_name(name: &str) -> Option<SourceFormat> {
        let lower = name.to_ascii_lowercase();
        let ext = lower.rsplit('.').next().unwrap_or("");
        match ext {
            "parquet" | "pq" => Some(Self::Parquet),
            "json" | "jsonl" | "ndjson" => Some(Self::Json),
            "csv" | "tsv" | "txt" | "data" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// How CSV sources are laid out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSpec {
    /// Field separator, one character (default `,`; `"\t"` for tab).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first line names the columns (default true).
    #[serde(default = "default_true")]
    pub header: bool,
    /// Names of the columns, in order: required when `header: false`, and
    /// replaces the header's names otherwise.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Quote character (default `"`); `null` for none.
    #[serde(default = "default_quote")]
    pub quote: Option<char>,
    /// Values read as missing, e.g. `["", "NA"]`.
    #[serde(default)]
    pub null_values: Vec<String>,
}

impl Default for CsvSpec {
    fn default() -> Self {
        Self {
            delimiter: ',',
            header: true,
            columns: None,
            quote: Some('"'),
            null_values: Vec::new(),
        }
    }
}

fn default_delimiter() -> char {
    ','
}
fn default_true() -> bool {
    true
}
fn default_quote() -> Option<char> {
    Some('"')
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    #[serde(rename = "latin-1", alias = "latin1", alias = "iso-8859-1")]
    Latin1,
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
    #[error("{source_url}: the file is empty")]
    Empty { source_url: String },
    #[error(
        "{source_url}: not valid UTF-8 at line {line}, column {column} (byte offset {offset}: 0x{byte:02X}); \
         if the file is Latin-1, set `encoding: latin-1` on the import step"
    )]
    Encoding {
        source_url: String,
        line: usize,
        column: usize,
        offset: usize,
        byte: u8,
    },
    #[error("{source_url}: cannot read as {format}: {reason}")]
    Read {
        source_url: String,
        format: &'static str,
        reason: String,
    },
    #[error("{source_url}: {reason}")]
    Layout { source_url: String, reason: String },
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
    pub rejected_preview: Vec<String>,
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
    let report = ImportReport {
        version,
        location: folder.url().to_string(),
        ignored_columns: prepared.ignored_columns,
        rejected_preview: preview(&prepared.rejected, &urls, 3),
        bytes_read,
        manifest: manifest.clone(),
    };
    Ok((manifest, report))
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
    for (index, (url, data)) in fetched.into_iter().enumerate() {
        let read = read_source(spec, &url, data, index as u32)?;
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
    let validated =
        validate_frame(&frame, schema, latest).map_err(|MissingColumn { field, available }| {
            ImportError::MissingColumn {
                source_url: if spec.sql.is_some() {
                    format!("{first_url} (after sql)")
                } else {
                    first_url.clone()
                },
                dataset: schema.dataset_type,
                field,
                available: visible(&available),
            }
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

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct ReadSource {
    frame: DataFrame,
    /// Lines refused before parsing (JSON lines that are not JSON objects).
    rejected: Vec<Rejected>,
}

/// Reads one object into a frame with `__source` and `__row` columns.
fn read_source(
    spec: &ImportSpec,
    url: &str,
    data: bytes::Bytes,
    index: u32,
) -> Result<ReadSource, ImportError> {
    if data.is_empty() {
        return Err(ImportError::Empty {
            source_url: url.to_string(),
        });
    }
    let format = spec
        .format
        .or_else(|| SourceFormat::from_name(url))
        .unwrap_or(SourceFormat::Csv);
    let read_err = |format: &'static str| {
        move |e: PolarsError| ImportError::Read {
            source_url: url.to_string(),
            format,
            reason: one_line(&e.to_string()),
        }
    };
    let mut rejected = Vec::new();
    let (mut frame, rows): (DataFrame, Option<Vec<u64>>) = match format {
        SourceFormat::Parquet => (
            ParquetReader::new(Cursor::new(data))
                .finish()
                .map_err(read_err("Parquet"))?,
            None,
        ),
        SourceFormat::Csv => {
            let text = decode(url, data, spec.encoding)?;
            let frame = read_csv(&spec.csv, url, text)?;
            (frame, None)
        }
        SourceFormat::Json => {
            let text = decode(url, data, spec.encoding)?;
            let (valid, lines) = json_lines(&text, index, &mut rejected);
            if lines.is_empty() {
                (DataFrame::default(), Some(lines))
            } else {
                let frame = JsonReader::new(Cursor::new(valid))
                    .with_json_format(JsonFormat::JsonLines)
                    .infer_schema_len(None)
                    .finish()
                    .map_err(read_err("JSON lines"))?;
                (frame, Some(lines))
            }
        }
    };
    let height = frame.height();
    let row_numbers: Vec<u64> = rows.unwrap_or_else(|| (1..=height as u64).collect());
    frame
        .with_column(Column::new(SOURCE_COL.into(), vec![index; height]))
        .and_then(|f| f.with_column(Column::new(ROW_COL.into(), row_numbers)))
        .map_err(|e| ImportError::Internal(e.to_string()))?;
    Ok(ReadSource { frame, rejected })
}

/// Checks or converts text to UTF-8, naming the first bad byte's place.
fn decode(url: &str, data: bytes::Bytes, encoding: Encoding) -> Result<bytes::Bytes, ImportError> {
    match encoding {
        Encoding::Latin1 => {
            // Latin-1 maps each byte to the code point of the same value.
            let text: String = data.iter().map(|&b| b as char).collect();
            Ok(bytes::Bytes::from(text.into_bytes()))
        }
        Encoding::Utf8 => {
            let body = data
                .strip_prefix(b"\xEF\xBB\xBF")
                .map(|_| data.slice(3..))
                .unwrap_or(data);
            match std::str::from_utf8(&body) {
                Ok(_) => Ok(body),
                Err(e) => {
                    let offset = e.valid_up_to();
                    let before = &body[..offset];
                    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                    let line_start = before
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |p| p + 1);
                    let column = String::from_utf8_lossy(&before[line_start..])
                        .chars()
                        .count()
                        + 1;
                    Err(ImportError::Encoding {
                        source_url: url.to_string(),
                        line,
                        column,
                        offset,
                        byte: body[offset],
                    })
                }
            }
        }
    }
}

fn read_csv(csv: &CsvSpec, url: &str, text: bytes::Bytes) -> Result<DataFrame, ImportError> {
    let layout = |reason: String| ImportError::Layout {
        source_url: url.to_string(),
        reason,
    };
    let ascii = |c: char, what: &str| -> Result<u8, ImportError> {
        u8::try_from(c)
            .ok()
            .filter(|b| b.is_ascii())
            .ok_or_else(|| layout(format!("csv.{what} must be one ASCII character")))
    };
    let mut parse = CsvParseOptions::default()
        .with_separator(ascii(csv.delimiter, "delimiter")?)
        .with_quote_char(match csv.quote {
            Some(q) => Some(ascii(q, "quote")?),
            None => None,
        });
    if !csv.null_values.is_empty() {
        parse = parse.with_null_values(Some(NullValues::AllColumns(
            csv.null_values.iter().map(|s| s.as_str().into()).collect(),
        )));
    }
    let frame = CsvReadOptions::default()
        .with_has_header(csv.header)
        // Every column is read as text; validation converts to the schema's
        // types and reports each value that does not fit.
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(false)
        .with_parse_options(parse)
        .into_reader_with_file_handle(Cursor::new(text))
        .finish()
        .map_err(|e| ImportError::Read {
            source_url: url.to_string(),
            format: "CSV",
            reason: one_line(&e.to_string()),
        })?;
    match &csv.columns {
        None if !csv.header => Err(layout(
            "the CSV has no header (`header: false`); name its columns with `csv.columns`"
                .to_string(),
        )),
        None => Ok(frame),
        Some(names) => {
            if names.len() != frame.width() {
                return Err(layout(format!(
                    "csv.columns names {} columns, the file has {} per line",
                    names.len(),
                    frame.width()
                )));
            }
            let mut frame = frame;
            frame
                .set_column_names(&names.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                .map_err(|e| layout(e.to_string()))?;
            Ok(frame)
        }
    }
}

/// Splits JSON lines into the valid objects (returned as one buffer) and the
/// line numbers they came from; other non-empty lines are rejected.
fn json_lines(text: &[u8], index: u32, rejected: &mut Vec<Rejected>) -> (Vec<u8>, Vec<u64>) {
    let mut valid = Vec::with_capacity(text.len());
    let mut lines = Vec::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let lineno = n as u64 + 1;
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(_)) => {
                valid.extend_from_slice(line);
                valid.push(b'\n');
                lines.push(lineno);
            }
            Ok(_) => rejected.push(Rejected {
                source: Some(index),
                row: lineno,
                column: String::new(),
                value: String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned(),
                reason: "not a JSON object".into(),
            }),
            Err(e) => rejected.push(Rejected {
                source: Some(index),
                row: lineno,
                column: String::new(),
                value: String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned(),
                reason: format!("invalid JSON: {e}"),
            }),
        }
    }
    (valid, lines)
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
    fn utf8_errors_name_line_column_and_offset() {
        let data = bytes::Bytes::from_static(b"id|title\n1|Caf\xe9 Society\n");
        let err = decode("u.item", data, Encoding::Utf8)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("u.item: not valid UTF-8 at line 2, column 6 (byte offset 14: 0xE9)"),
            "{err}"
        );
        assert!(err.contains("encoding: latin-1"), "{err}");
    }

    #[test]
    fn latin1_is_transcoded() {
        let data = bytes::Bytes::from_static(b"Caf\xe9");
        assert_eq!(
            &decode("x", data, Encoding::Latin1).unwrap()[..],
            "Café".as_bytes()
        );
    }

    #[test]
    fn json_lines_keep_line_numbers_and_reject_bad_lines() {
        let mut rejected = Vec::new();
        let (valid, lines) = json_lines(b"{\"a\": 1}\n\n[1]\n{bad\n{\"a\": 2}\n", 0, &mut rejected);
        assert_eq!(lines, [1, 5]);
        assert_eq!(valid, b"{\"a\": 1}\n{\"a\": 2}\n");
        let reasons: Vec<(u64, &str)> = rejected.iter().map(|r| (r.row, &r.reason[..12])).collect();
        assert_eq!(reasons, [(3, "not a JSON o"), (4, "invalid JSON")]);
    }

    #[test]
    fn headerless_csv_needs_column_names() {
        let csv = CsvSpec {
            header: false,
            ..CsvSpec::default()
        };
        let err = read_csv(&csv, "u.data", bytes::Bytes::from_static(b"1,2\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("name its columns with `csv.columns`"), "{err}");
        let csv = CsvSpec {
            header: false,
            delimiter: '\t',
            columns: Some(vec!["A".into(), "B".into()]),
            ..CsvSpec::default()
        };
        let df = read_csv(&csv, "u.data", bytes::Bytes::from_static(b"1\t2\n3\t4\n")).unwrap();
        assert_eq!(df.get_column_names(), ["A", "B"]);
        assert_eq!(df.height(), 2);
    }

    #[test]
    fn quoted_csv_fields_keep_delimiters_and_quotes() {
        let text =
            bytes::Bytes::from_static(b"ITEM_ID,TITLE\n1,\"Hello, \"\"world\"\"\"\n2,plain\n");
        let df = read_csv(&CsvSpec::default(), "x.csv", text).unwrap();
        let titles: Vec<Option<&str>> = df.column("TITLE").unwrap().str().unwrap().iter().collect();
        assert_eq!(titles, [Some("Hello, \"world\""), Some("plain")]);
    }

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
}
