//! Batch outputs: the managed service's JSON lines (one output line per
//! input line, in order), or CSV / Parquet rows `user_id, rank, item_id,
//! score` with optional item metadata columns. Bytes go to an async uploader
//! as they are produced, part by part (a new part every `part_lines` lines),
//! each part one multipart upload that becomes visible only when complete.

use std::collections::HashMap;
use std::io::Write;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc::Sender;

use crate::storage::Location;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The managed service's JSON lines (default).
    #[default]
    #[serde(alias = "jsonl")]
    Json,
    Csv,
    Parquet,
}

impl OutputFormat {
    fn extension(self) -> &'static str {
        match self {
            OutputFormat::Json => "",
            OutputFormat::Csv => ".csv",
            OutputFormat::Parquet => ".parquet",
        }
    }
}

/// The answer to one line.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Items with scores (`None` for unknown items in a ranking).
    Items(Vec<(String, Option<f64>)>),
    Users(Vec<String>),
}

/// One output line: the input as given, the user asked about (for rows
/// output), and the answer or the reason there is none.
#[derive(Debug)]
pub struct Row {
    pub input: Box<RawValue>,
    pub user: Option<String>,
    pub answer: Result<Answer, String>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    input: &'a RawValue,
    output: Option<JsonOutput<'a>>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged, rename_all = "camelCase")]
enum JsonOutput<'a> {
    Items {
        #[serde(rename = "recommendedItems")]
        recommended_items: Vec<&'a str>,
        scores: Vec<Option<f64>>,
    },
    Users {
        #[serde(rename = "recommendedUsers")]
        recommended_users: &'a [String],
    },
}

/// What flows to the uploader.
pub enum Chunk {
    Bytes(Vec<u8>),
    EndPart,
}

/// A `Write` that hands its bytes to the uploader.
struct ChannelWriter {
    tx: Sender<Chunk>,
    buf: Vec<u8>,
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        // The Parquet writer owns its sink: its footer leaves on drop.
        let _ = self.flush();
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let bytes = std::mem::take(&mut self.buf);
            self.tx
                .blocking_send(Chunk::Bytes(bytes))
                .map_err(|_| std::io::Error::other("the upload stopped"))?;
        }
        Ok(())
    }
}

/// Counts of what was written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub lines_in: u64,
    pub lines_out: u64,
    pub errors: u64,
    /// The first errors, for CSV and Parquet outputs (which have no error column).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub first_errors: Vec<String>,
}

/// Turns rows into the output format, rolling parts.
pub struct Formatter {
    format: OutputFormat,
    part_lines: u64,
    in_part: u64,
    metadata: Vec<String>,
    metadata_values: HashMap<String, Vec<String>>,
    out: ChannelWriter,
    parquet: Option<polars::io::parquet::write::BatchedWriter<ChannelWriter>>,
    csv_header_written: bool,
    pub counts: Counts,
}

/// At most this many error messages are kept for CSV and Parquet outputs.
const KEPT_ERRORS: usize = 100;

impl Formatter {
    pub fn new(
        format: OutputFormat,
        part_lines: u64,
        metadata: Vec<String>,
        metadata_values: HashMap<String, Vec<String>>,
        tx: Sender<Chunk>,
    ) -> Formatter {
        Formatter {
            format,
            part_lines: part_lines.max(1),
            in_part: 0,
            metadata,
            metadata_values,
            out: ChannelWriter {
                tx,
                buf: Vec::with_capacity(1 << 20),
            },
            parquet: None,
            csv_header_written: false,
            counts: Counts::default(),
        }
    }

    pub fn write_block(&mut self, rows: &[Row]) -> anyhow::Result<()> {
        let mut rest = rows;
        while !rest.is_empty() {
            if self.in_part >= self.part_lines {
                self.end_part()?;
            }
            let room = (self.part_lines - self.in_part) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.write_rows(now)?;
            rest = later;
        }
        Ok(())
    }

    fn write_rows(&mut self, rows: &[Row]) -> anyhow::Result<()> {
        self.counts.lines_in += rows.len() as u64;
        self.in_part += rows.len() as u64;
        match self.format {
            OutputFormat::Json => {
                // Lines are formatted in parallel (a block holds thousands),
                // then written in input order.
                use rayon::prelude::*;
                let lines: Vec<Vec<u8>> = rows
                    .par_iter()
                    .map(|r| {
                        let (output, error) = match &r.answer {
                            Ok(Answer::Items(items)) => (
                                Some(JsonOutput::Items {
                                    recommended_items: items.iter().map(|i| i.0.as_str()).collect(),
                                    scores: items.iter().map(|i| i.1).collect(),
                                }),
                                None,
                            ),
                            Ok(Answer::Users(users)) => (
                                Some(JsonOutput::Users {
                                    recommended_users: users,
                                }),
                                None,
                            ),
                            Err(e) => (None, Some(e.as_str())),
                        };
                        let mut line = serde_json::to_vec(&JsonLine {
                            input: &r.input,
                            output,
                            error,
                        })
                        .expect("serializes");
                        line.push(b'\n');
                        line
                    })
                    .collect();
                for line in lines {
                    self.out.write_all(&line)?;
                }
                self.counts.errors += rows.iter().filter(|r| r.answer.is_err()).count() as u64;
                self.counts.lines_out += rows.len() as u64;
            }
            OutputFormat::Csv | OutputFormat::Parquet => {
                let mut users = Vec::new();
                let mut ranks = Vec::new();
                let mut items = Vec::new();
                let mut scores = Vec::new();
                for r in rows {
                    match (&r.answer, &r.user) {
                        (Ok(Answer::Items(list)), Some(user)) => {
                            for (rank, (item, score)) in list.iter().enumerate() {
                                users.push(user.as_str());
                                ranks.push(rank as u32 + 1);
                                items.push(item.as_str());
                                scores.push(*score);
                            }
                            self.counts.lines_out += 1;
                        }
                        (Ok(_), None) => self
                            .error("related-item and segment lines need JSON lines output".into()),
                        (Ok(Answer::Users(_)), Some(_)) => {
                            self.error("segment lines need JSON lines output".into())
                        }
                        (Err(e), _) => self.error(e.clone()),
                    }
                }
                let mut columns = vec![
                    Column::new("user_id".into(), users),
                    Column::new("rank".into(), ranks),
                    Column::new("item_id".into(), items.clone()),
                    Column::new("score".into(), scores),
                ];
                for (c, name) in self.metadata.iter().enumerate() {
                    let values: Vec<Option<&str>> = items
                        .iter()
                        .map(|i| {
                            self.metadata_values
                                .get(*i)
                                .and_then(|v| v.get(c))
                                .map(String::as_str)
                        })
                        .collect();
                    columns.push(Column::new(name.as_str().into(), values));
                }
                let mut df = DataFrame::new_infer_height(columns)?;
                if self.format == OutputFormat::Csv {
                    CsvWriter::new(&mut self.out)
                        .include_header(!self.csv_header_written)
                        .finish(&mut df)?;
                    self.csv_header_written = true;
                } else {
                    if self.parquet.is_none() {
                        let sink = ChannelWriter {
                            tx: self.out.tx.clone(),
                            buf: Vec::with_capacity(1 << 20),
                        };
                        self.parquet = Some(
                            ParquetWriter::new(sink)
                                .with_compression(ParquetCompression::Zstd(None))
                                .batched(df.schema())?,
                        );
                    }
                    self.parquet.as_mut().expect("just set").write_batch(&df)?;
                }
            }
        }
        Ok(())
    }

    fn error(&mut self, e: String) {
        self.counts.errors += 1;
        if self.counts.first_errors.len() < KEPT_ERRORS {
            self.counts.first_errors.push(e);
        }
    }

    fn end_part(&mut self) -> anyhow::Result<()> {
        if let Some(w) = self.parquet.take() {
            w.finish()?;
            // Dropping the writer drops (and so flushes) its sink, before
            // the part ends.
            drop(w);
        }
        self.out.flush()?;
        self.out
            .tx
            .blocking_send(Chunk::EndPart)
            .map_err(|_| anyhow::anyhow!("the upload stopped"))?;
        self.in_part = 0;
        self.csv_header_written = false;
        Ok(())
    }

    /// Ends the last part and returns the counts.
    pub fn finish(mut self) -> anyhow::Result<Counts> {
        self.end_part()?;
        Ok(self.counts)
    }
}

/// The name of part `n` of the outputs for input `name`.
pub fn part_name(name: &str, n: usize, format: OutputFormat) -> String {
    let ext = format.extension();
    if n == 0 {
        format!("{name}.out{ext}")
    } else {
        format!("{name}.out.{n}{ext}")
    }
}

/// One written part.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    pub url: String,
    pub bytes: u64,
}

/// Receives chunks and writes them as parts under `output`.
pub async fn upload(
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
    output: Location,
    name: String,
    format: OutputFormat,
) -> anyhow::Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut current: Option<(crate::storage::ObjectWriter, u64)> = None;
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Chunk::Bytes(b) => {
                if current.is_none() {
                    let loc = output.child(&part_name(&name, parts.len(), format));
                    current = Some((loc.writer().await?, 0));
                }
                let (w, size) = current.as_mut().expect("just set");
                *size += b.len() as u64;
                w.write(&b).await?;
            }
            Chunk::EndPart => {
                if let Some((w, size)) = current.take() {
                    let url = w.finish().await?;
                    parts.push(Part { url, bytes: size });
                }
            }
        }
    }
    if let Some((w, size)) = current.take() {
        let url = w.finish().await?;
        parts.push(Part { url, bytes: size });
    }
    Ok(parts)
}
