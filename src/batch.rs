//! Batch inference: every line of the input objects (JSON lines in the
//! managed service's forms) gets one output line, in order, in the service's
//! output format. A bad line gets an `error` instead of failing the job.
//! Outputs are written as `<input name>.out` under the output prefix, then
//! `_manifest.json`, then `_SUCCESS` last: a reader that waits for `_SUCCESS`
//! never sees a partial export, and a rerun removes the old marker first.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::campaign::{Recommender, round_score};
use crate::progress::Progress;
use crate::recipes::Query;
use crate::storage::{Location, StorageError};

pub const SUCCESS_MARKER: &str = "_SUCCESS";
pub const MANIFEST_FILE: &str = "_manifest.json";

/// One input line, in any of the managed service's forms.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputLine {
    user_id: Option<String>,
    item_id: Option<String>,
    item_list: Option<Vec<String>>,
    filter_values: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct OutputLine<'a> {
    input: &'a RawValue,
    output: Option<Output>,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    recommended_items: Vec<String>,
    scores: Vec<Option<f64>>,
}

/// Counts of one batch job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchCounts {
    pub lines_in: u64,
    pub lines_out: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchManifest {
    pub solution: String,
    pub solution_version: i64,
    pub campaign: Option<String>,
    pub num_results: usize,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub counts: BatchCounts,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub run_id: Option<i64>,
}

pub struct BatchJob<'a> {
    pub recommender: &'a Recommender,
    pub campaign: Option<&'a str>,
    /// Input objects and the name each output gets (`<name>.out`).
    pub inputs: Vec<(Location, String)>,
    pub output: &'a Location,
    pub num_results: usize,
    pub run_id: Option<i64>,
}

/// Runs a batch inference job and publishes its outputs.
pub async fn run_batch(job: BatchJob<'_>) -> Result<BatchManifest, StorageError> {
    job.output.child(SUCCESS_MARKER).delete().await?;
    job.output.child(MANIFEST_FILE).delete().await?;
    let mut counts = BatchCounts::default();
    let mut outputs = Vec::new();
    let progress = Progress::count("batch inference", "lines", 0);
    for (input, name) in &job.inputs {
        let data = input.get().await?;
        let recommender = job.recommender.clone();
        let n = job.num_results;
        let (out, c) = tokio::task::spawn_blocking(move || process(&data, &recommender, n))
            .await
            .expect("batch task panicked");
        progress.inc(c.lines_in);
        counts.lines_in += c.lines_in;
        counts.lines_out += c.lines_out;
        counts.errors += c.errors;
        let target = job.output.child(&format!("{name}.out"));
        target.put(out).await?;
        outputs.push(target.url().to_string());
    }
    progress.finish();
    let manifest = BatchManifest {
        solution: job.recommender.solution.clone(),
        solution_version: job.recommender.version,
        campaign: job.campaign.map(str::to_string),
        num_results: job.num_results,
        inputs: job
            .inputs
            .iter()
            .map(|(l, _)| l.url().to_string())
            .collect(),
        outputs,
        counts,
        created_at: chrono::Utc::now(),
        run_id: job.run_id,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    job.output.child(MANIFEST_FILE).put(manifest_json).await?;
    job.output.child(SUCCESS_MARKER).put(Vec::new()).await?;
    Ok(manifest)
}

/// Answers every line of one input; CPU work, run on a blocking thread.
fn process(data: &[u8], rec: &Recommender, num_results: usize) -> (Vec<u8>, BatchCounts) {
    let mut out = Vec::with_capacity(data.len() * 8);
    let mut counts = BatchCounts::default();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        counts.lines_in += 1;
        let lineno = n + 1;
        let text = String::from_utf8_lossy(line);
        let (input, result) = match serde_json::from_str::<&RawValue>(&text) {
            Ok(raw) => (raw.to_owned(), answer(raw, rec, num_results)),
            Err(e) => {
                let as_string = serde_json::to_string(text.as_ref()).expect("string serializes");
                let raw = RawValue::from_string(as_string).expect("a JSON string is valid JSON");
                (raw, Err(format!("line {lineno}: invalid JSON: {e}")))
            }
        };
        let line_out = match result {
            Ok(output) => OutputLine {
                input: &input,
                output: Some(output),
                error: None,
            },
            Err(e) => {
                counts.errors += 1;
                let e = if e.starts_with("line ") {
                    e
                } else {
                    format!("line {lineno}: {e}")
                };
                OutputLine {
                    input: &input,
                    output: None,
                    error: Some(e),
                }
            }
        };
        serde_json::to_writer(&mut out, &line_out).expect("output serializes");
        out.push(b'\n');
        counts.lines_out += 1;
    }
    (out, counts)
}

fn answer(raw: &RawValue, rec: &Recommender, num_results: usize) -> Result<Output, String> {
    let line: InputLine =
        serde_json::from_str(raw.get()).map_err(|e| format!("not an input object: {e}"))?;
    if line.filter_values.is_some() {
        return Err("filterValues given, but this batch job has no filter".into());
    }
    let (items, scores): (Vec<String>, Vec<Option<f64>>) =
        match (&line.user_id, &line.item_id, &line.item_list) {
            (Some(user), None, Some(list)) => {
                if list.len() > crate::campaign::MAX_NUM_RESULTS {
                    return Err(format!(
                        "itemList has {} items; at most {} can be ranked",
                        list.len(),
                        crate::campaign::MAX_NUM_RESULTS
                    ));
                }
                rec.model
                    .rank(user, list)
                    .into_iter()
                    .map(|(id, s)| (id, s.map(round_score)))
                    .unzip()
            }
            (Some(user), None, None) => scored(rec.recommend(&Query::User(user), num_results))?,
            (None, Some(item), None) => scored(rec.recommend(&Query::Item(item), num_results))?,
            (Some(_), Some(_), _) => return Err("give userId or itemId, not both".into()),
            (None, _, Some(_)) => return Err("itemList needs a userId".into()),
            (None, None, None) => return Err("needs userId or itemId".into()),
        };
    Ok(Output {
        recommended_items: items,
        scores,
    })
}

fn scored(
    r: Result<Vec<crate::recipes::Scored>, crate::campaign::CampaignError>,
) -> Result<(Vec<String>, Vec<Option<f64>>), String> {
    let items = r.map_err(|e| e.to_string())?;
    Ok(items
        .into_iter()
        .map(|s| (s.item_id, Some(round_score(s.score))))
        .unzip())
}
