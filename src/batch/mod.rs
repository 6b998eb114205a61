//! Batch inference and batch segments: every input line (or every known
//! user) gets an answer, streamed from storage to storage with bounded
//! memory. Three tasks per input overlap: a download feeds chunks to a
//! blocking scorer, which reads lines in blocks, scores users in blocks
//! (one matrix product per block for factor models, in parallel on all
//! cores) and formats output that an uploader writes as multipart parts.
//!
//! Publishing: an earlier run's `_SUCCESS`, manifest and parts are removed
//! first; parts are written, then `_manifest.json`, then `_SUCCESS` last. A
//! reader that waits for `_SUCCESS` never sees a partial export, and a failed
//! job leaves no marker.

pub mod input;
pub mod output;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use fixedbitset::FixedBitSet;

use serde::{Deserialize, Serialize};

use crate::campaign::{Recommender, round_score};
use crate::filter::catalog::{FilterData, Subject};
use crate::filter::{Filter, parse_filter_values};
use crate::progress::Progress;
use crate::publish::{Export, ExportManifest};
use crate::recipes::{Ask, Query, SegmentQuery};
use crate::storage::Location;
pub use input::{InputFormat, JobKind, Record, Request};
pub use output::{Answer, Counts, OutputFormat, Part, Row};

/// Input lines scored together; memory holds one block of lines at a time.
const BLOCK_LINES: usize = 4096;
/// Chunks in flight between the download, the scorer and the upload.
const CHANNEL_DEPTH: usize = 8;

/// How a batch job reads and writes.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Format of the inputs; by default from each object's name (JSON lines otherwise).
    pub input_format: Option<InputFormat>,
    /// The user id column of CSV and Parquet inputs.
    pub user_column: String,
    pub output_format: OutputFormat,
    pub num_results: usize,
    /// A new output part every this many lines.
    pub part_lines: u64,
    /// Item metadata columns added to CSV and Parquet rows.
    pub item_metadata: Vec<String>,
}

/// Where the lines come from.
pub enum BatchInput {
    /// Objects and the name each one's outputs get.
    Objects(Vec<(Location, String)>),
    /// Every user the solution version knows (`users: all`).
    AllUsers,
}

pub struct BatchJob<'a> {
    pub recommender: &'a Recommender,
    pub campaign: Option<&'a str>,
    pub kind: JobKind,
    pub input: BatchInput,
    pub output: &'a Location,
    pub settings: &'a BatchSettings,
    /// Values of `settings.item_metadata` by item id.
    pub metadata_values: HashMap<String, Vec<String>>,
    /// The filter applied to every line, if any.
    pub filter: Option<BatchFilter>,
    pub run_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchManifest {
    pub solution: String,
    pub solution_version: i64,
    pub campaign: Option<String>,
    /// `recommendations` or `segments`.
    pub kind: String,
    pub num_results: usize,
    pub output_format: OutputFormat,
    pub inputs: Vec<String>,
    /// Every output part, in order.
    pub outputs: Vec<String>,
    pub output_bytes: u64,
    pub counts: serde_json::Value,
    pub seconds: f64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub run_id: Option<i64>,
}

impl ExportManifest for BatchManifest {
    fn files(&self) -> Vec<&str> {
        self.outputs.iter().map(String::as_str).collect()
    }
}

/// Runs a batch job and publishes its outputs.
pub async fn run_batch(job: BatchJob<'_>) -> anyhow::Result<BatchManifest> {
    let s = job.settings;
    job.kind
        .check_num_results(s.num_results)
        .map_err(|e| anyhow::anyhow!("num_results {e}"))?;
    let started = Instant::now();
    let export = Export::begin::<BatchManifest>(job.output).await?;

    let total = match &job.input {
        BatchInput::AllUsers => job.recommender.model.users.len() as u64,
        BatchInput::Objects(_) => 0,
    };
    let progress = std::sync::Arc::new(Progress::count(
        if job.kind == JobKind::Segments {
            "batch segments"
        } else {
            "batch inference"
        },
        "lines",
        total,
    ));
    let inputs: Vec<(Option<Location>, String)> = match job.input {
        BatchInput::AllUsers => vec![(None, "all-users".to_string())],
        BatchInput::Objects(list) => list.into_iter().map(|(l, n)| (Some(l), n)).collect(),
    };
    let metadata = std::sync::Arc::new(job.metadata_values);
    let filter = job.filter.map(std::sync::Arc::new);
    let mut outputs = Vec::new();
    let mut output_bytes = 0;
    let mut counts = Counts::default();
    for (location, name) in &inputs {
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_DEPTH);
        let uploader = tokio::spawn(output::upload(
            rx,
            job.output.clone(),
            name.clone(),
            s.output_format,
        ));
        let format = s
            .input_format
            .unwrap_or_else(|| InputFormat::from_name(name));
        let source = match (location, format) {
            (None, _) => Source::AllUsers,
            (Some(loc), InputFormat::Parquet) => Source::Parquet(loc.get().await?),
            (Some(loc), _) => {
                let (in_tx, in_rx) = tokio::sync::mpsc::channel(CHANNEL_DEPTH);
                let mut stream = loc.stream().await?;
                tokio::spawn(async move {
                    use futures::StreamExt;
                    while let Some(chunk) = stream.next().await {
                        let stop = chunk.is_err();
                        if in_tx.send(chunk).await.is_err() || stop {
                            break;
                        }
                    }
                });
                Source::Stream(input::ChannelReader::new(in_rx))
            }
        };
        let rec = job.recommender.clone();
        let settings = s.clone();
        let kind = job.kind;
        let name_for_scorer = name.clone();
        let progress = progress.clone();
        let metadata = metadata.clone();
        let filter = filter.clone();
        let scorer = tokio::task::spawn_blocking(move || -> anyhow::Result<Counts> {
            let mut formatter = output::Formatter::new(
                settings.output_format,
                settings.part_lines,
                settings.item_metadata.clone(),
                (*metadata).clone(),
                tx,
            );
            let mut sink = |records: Vec<Record>| -> anyhow::Result<()> {
                let n = records.len() as u64;
                let rows = answer_block(&rec, records, settings.num_results, filter.as_deref());
                formatter.write_block(&rows)?;
                progress.inc(n);
                Ok(())
            };
            match source {
                Source::AllUsers => {
                    for block in rec.model.users.ids().chunks(BLOCK_LINES) {
                        sink(block.iter().map(|u| input::user_record(u)).collect())?;
                    }
                }
                Source::Parquet(data) => {
                    let users =
                        input::parquet_users(&name_for_scorer, data, &settings.user_column)?;
                    for (b, block) in users.chunks(BLOCK_LINES).enumerate() {
                        let records = block
                            .iter()
                            .enumerate()
                            .map(|(i, u)| match u {
                                Some(u) => input::user_record(u),
                                None => Record {
                                    input: serde_json::value::RawValue::from_string("null".into())
                                        .expect("valid JSON"),
                                    request: Err(format!(
                                        "row {}: empty {}",
                                        b * BLOCK_LINES + i + 1,
                                        settings.user_column
                                    )),
                                    filter_values: None,
                                },
                            })
                            .collect();
                        sink(records)?;
                    }
                }
                Source::Stream(reader) => {
                    input::stream_records(
                        Box::new(reader),
                        &name_for_scorer,
                        format,
                        &settings.user_column,
                        kind,
                        BLOCK_LINES,
                        sink,
                    )?;
                }
            }
            formatter.finish()
        });
        let c = scorer.await??;
        let parts = uploader.await??;
        counts.lines_in += c.lines_in;
        counts.lines_out += c.lines_out;
        counts.errors += c.errors;
        counts.first_errors.extend(c.first_errors);
        for p in parts {
            output_bytes += p.bytes;
            outputs.push(p.url);
        }
    }
    progress.finish();

    let manifest = BatchManifest {
        solution: job.recommender.solution.clone(),
        solution_version: job.recommender.version,
        campaign: job.campaign.map(str::to_string),
        kind: if job.kind == JobKind::Segments {
            "segments"
        } else {
            "recommendations"
        }
        .into(),
        num_results: s.num_results,
        output_format: s.output_format,
        inputs: inputs
            .iter()
            .map(|(l, n)| l.as_ref().map_or(n.clone(), |l| l.url().to_string()))
            .collect(),
        outputs,
        output_bytes,
        counts: serde_json::to_value(&counts)?,
        seconds: started.elapsed().as_secs_f64(),
        created_at: chrono::Utc::now(),
        run_id: job.run_id,
    };
    export.finish(&manifest).await?;
    Ok(manifest)
}

enum Source {
    AllUsers,
    Parquet(bytes::Bytes),
    Stream(input::ChannelReader),
}

/// The filter a batch job applies to every line.
pub struct BatchFilter {
    pub name: String,
    pub filter: Filter,
    pub data: std::sync::Arc<FilterData>,
    /// The step's `filter_values`; a line's own `filterValues` override them key by key.
    pub values: BTreeMap<String, String>,
}

impl BatchFilter {
    fn values_for(
        &self,
        line: Option<&BTreeMap<String, String>>,
    ) -> Result<BTreeMap<String, Vec<String>>, String> {
        let mut merged = self.values.clone();
        if let Some(l) = line {
            merged.extend(l.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        parse_filter_values(&merged)
    }

    /// The mask for one line: items for recommendations, users for segments.
    fn mask(&self, r: &Record) -> Option<Result<FixedBitSet, String>> {
        let request = r.request.as_ref().ok()?;
        let values = match self.values_for(r.filter_values.as_ref()) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        fn subject<'a>(user: Option<&'a str>, item: Option<&'a str>) -> Subject<'a> {
            Subject {
                user,
                item,
                recent_events: &[],
            }
        }
        Some(
            match request {
                Request::User(u) | Request::Rank(u, _) => {
                    self.data
                        .item_mask(&self.filter, &values, &subject(Some(u), None))
                }
                Request::Item(i) => {
                    self.data
                        .item_mask(&self.filter, &values, &subject(None, Some(i)))
                }
                Request::ItemUsers(_) | Request::AttributeUsers(_) => {
                    self.data.user_mask(&self.filter, &values)
                }
            }
            .map_err(|e| format!("filter {}: {e}", self.name)),
        )
    }
}

/// Answers a block of records; user recommendations are scored together,
/// the other lines in parallel.
pub fn answer_block(
    rec: &Recommender,
    records: Vec<Record>,
    n: usize,
    filter: Option<&BatchFilter>,
) -> Vec<Row> {
    use rayon::prelude::*;
    // Each line's filter mask, or why it has none.
    let masks: Vec<Option<Result<FixedBitSet, String>>> = match filter {
        Some(f) => records.par_iter().map(|r| f.mask(r)).collect(),
        None => records
            .iter()
            .map(|r| {
                r.filter_values.as_ref().map(|_| {
                    Err("filterValues given, but this batch job has no filter".to_string())
                })
            })
            .collect(),
    };
    let ok_mask = |i: usize| masks[i].as_ref().and_then(|m| m.as_ref().ok());
    let user_rows: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            matches!(r.request, Ok(Request::User(_))) && !matches!(masks[*i], Some(Err(_)))
        })
        .map(|(i, _)| i)
        .collect();
    let users: Vec<&str> = user_rows
        .iter()
        .map(|&i| match &records[i].request {
            Ok(Request::User(u)) => u.as_str(),
            _ => unreachable!("user rows hold user requests"),
        })
        .collect();
    let user_masks: Vec<Option<&FixedBitSet>> = if filter.is_some() {
        user_rows.iter().map(|&i| ok_mask(i)).collect()
    } else {
        Vec::new()
    };
    let mut user_answers: Vec<Option<Vec<crate::recipes::Scored>>> = vec![None; records.len()];
    for (i, answer) in
        user_rows.iter().zip(
            rec.model
                .recommend_users(&users, n, rec.exploration, &user_masks),
        )
    {
        user_answers[*i] = Some(answer);
    }
    let items = |list: Vec<crate::recipes::Scored>| -> Answer {
        Answer::Items(
            list.into_iter()
                .map(|s| (s.item_id, Some(round_score(s.score))))
                .collect(),
        )
    };
    let users_of = |r: Result<Vec<(String, f32)>, String>| {
        r.map(|u| Answer::Users(u.into_iter().map(|x| x.0).collect()))
    };
    records
        .into_par_iter()
        .zip(user_answers)
        .enumerate()
        .map(|(pos, (r, user_answer))| {
            let ask = Ask {
                exploration: rec.exploration,
                allowed: ok_mask(pos),
                recent: &[],
            };
            let (user, answer) = match (r.request, &masks[pos]) {
                (Err(e), _) => (None, Err(e)),
                (Ok(Request::User(u) | Request::Rank(u, _)), Some(Err(e))) => {
                    (Some(u), Err(e.clone()))
                }
                (Ok(_), Some(Err(e))) => (None, Err(e.clone())),
                (Ok(Request::User(u)), _) => (Some(u), Ok(items(user_answer.unwrap_or_default()))),
                (Ok(Request::Item(i)), _) => (
                    None,
                    Ok(items(rec.model.recommend_with(&Query::Item(&i), n, &ask))),
                ),
                (Ok(Request::Rank(u, list)), _) => {
                    let ranked = rec.model.rank(&u, &list, &ask);
                    (
                        Some(u),
                        Ok(Answer::Items(
                            ranked
                                .into_iter()
                                .map(|(i, s)| (i, s.map(round_score)))
                                .collect(),
                        )),
                    )
                }
                (Ok(Request::ItemUsers(i)), _) => (
                    None,
                    users_of(rec.model.segment(&SegmentQuery::Item(&i), n, ask.allowed)),
                ),
                (Ok(Request::AttributeUsers(a)), _) => (
                    None,
                    users_of(
                        rec.model
                            .segment(&SegmentQuery::Attributes(&a), n, ask.allowed),
                    ),
                ),
            };
            Row {
                input: r.input,
                user,
                answer,
            }
        })
        .collect()
}
