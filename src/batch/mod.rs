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

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::campaign::{MAX_NUM_RESULTS, Recommender, round_score};
use crate::progress::Progress;
use crate::recipes::{Query, SegmentQuery};
use crate::storage::Location;
pub use input::{InputFormat, JobKind, Record, Request};
pub use output::{Answer, Counts, OutputFormat, Part, Row};

pub const SUCCESS_MARKER: &str = "_SUCCESS";
pub const MANIFEST_FILE: &str = "_manifest.json";
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

/// Runs a batch job and publishes its outputs.
pub async fn run_batch(job: BatchJob<'_>) -> anyhow::Result<BatchManifest> {
    let s = job.settings;
    let max = match job.kind {
        JobKind::Recommendations => MAX_NUM_RESULTS,
        JobKind::Segments => crate::steps::MAX_SEGMENT_USERS,
    };
    anyhow::ensure!(
        (1..=max).contains(&s.num_results),
        "num_results must be between 1 and {max}, got {}",
        s.num_results
    );
    let started = Instant::now();
    clear_previous(job.output).await?;

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
                let rows = answer_block(&rec, records, settings.num_results, kind);
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
    job.output
        .child(MANIFEST_FILE)
        .put(serde_json::to_vec_pretty(&manifest)?)
        .await?;
    job.output.child(SUCCESS_MARKER).put(Vec::new()).await?;
    Ok(manifest)
}

enum Source {
    AllUsers,
    Parquet(bytes::Bytes),
    Stream(input::ChannelReader),
}

/// Removes an earlier run's marker first (so no reader trusts the prefix
/// while it changes), then its manifest and the parts it listed.
async fn clear_previous(output: &Location) -> anyhow::Result<()> {
    output.child(SUCCESS_MARKER).delete().await?;
    let manifest = output.child(MANIFEST_FILE);
    if let Ok(bytes) = manifest.get().await
        && let Ok(old) = serde_json::from_slice::<BatchManifest>(&bytes)
    {
        for url in old.outputs {
            if let Some(name) = url.rsplit('/').next() {
                output.child(name).delete().await?;
            }
        }
    }
    manifest.delete().await?;
    Ok(())
}

/// Answers a block of records; user recommendations are scored together,
/// the other lines in parallel.
pub fn answer_block(rec: &Recommender, records: Vec<Record>, n: usize, kind: JobKind) -> Vec<Row> {
    use rayon::prelude::*;
    let _ = kind;
    let users: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.request {
            Ok(Request::User(u)) => Some(u.as_str()),
            _ => None,
        })
        .collect();
    let mut user_answers = rec
        .model
        .recommend_users(&users, n, rec.exploration)
        .into_iter();
    let work: Vec<(Record, Option<Vec<crate::recipes::Scored>>)> = records
        .into_iter()
        .map(|r| {
            let answer = matches!(r.request, Ok(Request::User(_)))
                .then(|| user_answers.next().unwrap_or_default());
            (r, answer)
        })
        .collect();
    let items = |list: Vec<crate::recipes::Scored>| -> Answer {
        Answer::Items(
            list.into_iter()
                .map(|s| (s.item_id, Some(round_score(s.score))))
                .collect(),
        )
    };
    work.into_par_iter()
        .map(|(r, user_answer)| {
            let (user, answer) = match r.request {
                Err(e) => (None, Err(e)),
                Ok(Request::User(u)) => (Some(u), Ok(items(user_answer.unwrap_or_default()))),
                Ok(Request::Item(i)) => (
                    None,
                    Ok(items(rec.model.recommend_exploring(
                        &Query::Item(&i),
                        n,
                        rec.exploration,
                    ))),
                ),
                Ok(Request::Rank(u, list)) => {
                    let ranked = rec.model.rank(&u, &list);
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
                Ok(Request::ItemUsers(i)) => (
                    None,
                    rec.model
                        .segment(&SegmentQuery::Item(&i), n)
                        .map(|u| Answer::Users(u.into_iter().map(|x| x.0).collect())),
                ),
                Ok(Request::AttributeUsers(a)) => (
                    None,
                    rec.model
                        .segment(&SegmentQuery::Attributes(&a), n)
                        .map(|u| Answer::Users(u.into_iter().map(|x| x.0).collect())),
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
