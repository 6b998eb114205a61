//! Batch inputs, read as a stream: JSON lines in the managed service's forms
//! (`{"userId"}`, `{"itemId"}`, `{"userId", "itemList"}`, `{"itemAttributes"}`),
//! or CSV / Parquet with a user id column; gzip when the name ends in `.gz`.
//! An unreadable line becomes a request that fails with its reason, so it
//! gets an output line with `error` set instead of failing the job.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::campaign::NumResults;

/// What one input line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Recommendations for a user.
    User(String),
    /// Items related to an item.
    Item(String),
    /// A user's ranking of a given list.
    Rank(String, Vec<String>),
    /// Users for an item (segments).
    ItemUsers(String),
    /// Users for an attribute expression (segments).
    AttributeUsers(String),
}

/// One input line: its text as JSON (kept for the output's `input`), and the
/// request or why it cannot be served.
#[derive(Debug)]
pub struct Record {
    pub input: Box<RawValue>,
    pub request: Result<Request, String>,
    /// The line's own `filterValues`, if any.
    pub filter_values: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// JSON lines (default).
    #[serde(alias = "jsonl")]
    Json,
    Csv,
    Parquet,
}

impl InputFormat {
    /// The format of an object by its name (`.gz` looked through).
    pub fn from_name(name: &str) -> InputFormat {
        let lower = name.to_ascii_lowercase();
        let base = lower.strip_suffix(".gz").unwrap_or(&lower);
        if base.ends_with(".csv") {
            InputFormat::Csv
        } else if base.ends_with(".parquet") {
            InputFormat::Parquet
        } else {
            InputFormat::Json
        }
    }
}

/// Which kind of job reads the lines: the keys each accepts differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Recommendations,
    Segments,
}

/// The most users a batch segment job returns per line.
pub const MAX_SEGMENT_USERS: usize = 100_000;

impl JobKind {
    /// The results per input line a job of this kind may ask for.
    pub fn check_num_results(self, n: usize) -> Result<usize, String> {
        match self {
            JobKind::Recommendations => NumResults::new(n.try_into().unwrap_or(i64::MAX))
                .map(NumResults::get)
                .map_err(|e| e.to_string()),
            JobKind::Segments if (1..=MAX_SEGMENT_USERS).contains(&n) => Ok(n),
            JobKind::Segments => Err(format!(
                "must be between 1 and {MAX_SEGMENT_USERS}, got {n}"
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonLine {
    user_id: Option<String>,
    item_id: Option<String>,
    item_list: Option<Vec<String>>,
    item_attributes: Option<String>,
    filter_values: Option<serde_json::Value>,
}

fn raw_string(text: &str) -> Box<RawValue> {
    RawValue::from_string(serde_json::to_string(text).expect("a string serializes"))
        .expect("a JSON string is JSON")
}

/// Parses one JSON line (`lineno` is 1-based) for a job kind.
pub fn parse_json_line(text: &str, lineno: u64, kind: JobKind) -> Record {
    let input = match serde_json::from_str::<Box<RawValue>>(text) {
        Ok(raw) => raw,
        Err(e) => {
            return Record {
                input: raw_string(text),
                request: Err(format!("line {lineno}: invalid JSON: {e}")),
                filter_values: None,
            };
        }
    };
    let mut filter_values = None;
    let request = serde_json::from_str::<JsonLine>(input.get())
        .map_err(|e| format!("not an input object: {e}"))
        .and_then(|mut l| {
            filter_values = l.filter_values.take().map(string_map).transpose()?;
            request_of(l, kind)
        })
        .map_err(|e| {
            if e.starts_with("line ") {
                e
            } else {
                format!("line {lineno}: {e}")
            }
        });
    Record {
        input,
        request,
        filter_values,
    }
}

/// `filterValues` as the managed service takes it: an object of strings.
fn string_map(v: serde_json::Value) -> Result<BTreeMap<String, String>, String> {
    let serde_json::Value::Object(m) = v else {
        return Err("filterValues must be an object of strings".into());
    };
    m.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            other => Err(format!(
                "filterValues.{k} must be a string (several values: \"\\\"a\\\",\\\"b\\\"\"), got {other}"
            )),
        })
        .collect()
}

fn request_of(l: JsonLine, kind: JobKind) -> Result<Request, String> {
    match kind {
        JobKind::Recommendations => match (l.user_id, l.item_id, l.item_list, l.item_attributes) {
            (_, _, _, Some(_)) => Err("itemAttributes belongs to batch segment jobs".into()),
            (Some(u), None, Some(list), None) => {
                if list.len() > crate::campaign::MAX_NUM_RESULTS {
                    Err(format!(
                        "itemList has {} items; at most {} can be ranked",
                        list.len(),
                        crate::campaign::MAX_NUM_RESULTS
                    ))
                } else {
                    Ok(Request::Rank(u, list))
                }
            }
            (Some(u), None, None, None) => Ok(Request::User(u)),
            (None, Some(i), None, None) => Ok(Request::Item(i)),
            (Some(_), Some(_), _, _) => Err("give userId or itemId, not both".into()),
            (None, _, Some(_), _) => Err("itemList needs a userId".into()),
            (None, None, None, None) => Err("needs userId or itemId".into()),
        },
        JobKind::Segments => match (l.user_id, l.item_id, l.item_list, l.item_attributes) {
            (None, Some(i), None, None) => Ok(Request::ItemUsers(i)),
            (None, None, None, Some(a)) => Ok(Request::AttributeUsers(a)),
            (Some(_), _, _, _) | (_, _, Some(_), _) => {
                Err("a segment line takes itemId or itemAttributes".into())
            }
            (None, Some(_), None, Some(_)) => Err("give itemId or itemAttributes, not both".into()),
            (None, None, None, None) => Err("needs itemId or itemAttributes".into()),
        },
    }
}

/// A blocking reader over chunks arriving from an async download.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current[..n]);
                self.current = self.current.slice(n..);
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
    }
}

/// Streams records from a JSON-lines or CSV reader in blocks of `block`,
/// calling `sink` for each block; memory holds one block at a time.
pub fn stream_records(
    reader: Box<dyn Read + Send>,
    name: &str,
    format: InputFormat,
    user_column: &str,
    kind: JobKind,
    block: usize,
    mut sink: impl FnMut(Vec<Record>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let reader: Box<dyn Read + Send> = if name.to_ascii_lowercase().ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        reader
    };
    let mut records = Vec::with_capacity(block);
    match format {
        InputFormat::Json => {
            let mut lines = BufReader::with_capacity(1 << 20, reader);
            let mut buf = Vec::new();
            let mut lineno = 0u64;
            loop {
                buf.clear();
                let n = lines
                    .read_until(b'\n', &mut buf)
                    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
                if n == 0 {
                    break;
                }
                lineno += 1;
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    continue;
                }
                records.push(parse_json_line(text, lineno, kind));
                if records.len() == block {
                    sink(std::mem::replace(&mut records, Vec::with_capacity(block)))?;
                }
            }
        }
        InputFormat::Csv => {
            let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
            let headers = csv
                .headers()
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
                .clone();
            let col = headers
                .iter()
                .position(|h| h == user_column)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{name}: no column {user_column:?} (columns: {}); set user_column",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    )
                })?;
            for (n, row) in csv.records().enumerate() {
                let lineno = n as u64 + 2;
                let record = match row {
                    Ok(r) => match r.get(col).filter(|v| !v.is_empty()) {
                        Some(u) => user_record(u),
                        None => Record {
                            input: raw_string(&r.iter().collect::<Vec<_>>().join(",")),
                            request: Err(format!("line {lineno}: empty {user_column}")),
                            filter_values: None,
                        },
                    },
                    Err(e) => Record {
                        input: raw_string(""),
                        request: Err(format!("line {lineno}: {e}")),
                        filter_values: None,
                    },
                };
                records.push(record);
                if records.len() == block {
                    sink(std::mem::replace(&mut records, Vec::with_capacity(block)))?;
                }
            }
        }
        InputFormat::Parquet => unreachable!("Parquet inputs are read whole, see parquet_users"),
    }
    if !records.is_empty() {
        sink(records)?;
    }
    Ok(())
}

/// A `{"userId": ...}` record.
pub fn user_record(user: &str) -> Record {
    let input = RawValue::from_string(serde_json::json!({ "userId": user }).to_string())
        .expect("valid JSON");
    Record {
        input,
        request: Ok(Request::User(user.to_string())),
        filter_values: None,
    }
}

/// The user ids of a Parquet input's `user_column`, in order.
pub fn parquet_users(
    name: &str,
    data: Bytes,
    user_column: &str,
) -> anyhow::Result<Vec<Option<String>>> {
    use polars::prelude::*;
    let df = ParquetReader::new(std::io::Cursor::new(data))
        .with_columns(Some(vec![user_column.to_string()]))
        .finish()
        .map_err(|e| {
            anyhow::anyhow!("{name}: cannot read column {user_column:?} as Parquet: {e}")
        })?;
    let col = df
        .column(user_column)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
        .cast(&DataType::String)?;
    Ok(col.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_names_bad_lines() {
        let r = |t: &str| parse_json_line(t, 7, JobKind::Recommendations).request;
        assert_eq!(r(r#"{"userId": "5"}"#), Ok(Request::User("5".into())));
        assert_eq!(r(r#"{"itemId": "105"}"#), Ok(Request::Item("105".into())));
        assert_eq!(
            r(r#"{"userId": "891", "itemList": ["27", "886"]}"#),
            Ok(Request::Rank("891".into(), vec!["27".into(), "886".into()]))
        );
        assert!(r("{oops").unwrap_err().starts_with("line 7: invalid JSON"));
        assert_eq!(
            r(r#"{"user": "5"}"#).unwrap_err(),
            "line 7: needs userId or itemId"
        );
        let s = |t: &str| parse_json_line(t, 1, JobKind::Segments).request;
        assert_eq!(
            s(r#"{"itemAttributes": "ITEMS.G = \"x\""}"#),
            Ok(Request::AttributeUsers("ITEMS.G = \"x\"".into()))
        );
        assert_eq!(
            s(r#"{"userId": "5"}"#).unwrap_err(),
            "line 1: a segment line takes itemId or itemAttributes"
        );
    }

    #[test]
    fn streams_gzip_and_csv_in_blocks() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..10 {
            writeln!(gz, "{{\"userId\": \"u{i}\"}}").unwrap();
        }
        let data = gz.finish().unwrap();
        let mut blocks = Vec::new();
        stream_records(
            Box::new(std::io::Cursor::new(data)),
            "in.jsonl.gz",
            InputFormat::Json,
            "",
            JobKind::Recommendations,
            4,
            |b| {
                blocks.push(b.len());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(blocks, [4, 4, 2]);

        let csv = "id,USER_ID\n1,a\n2,\n3,c\n";
        let mut seen = Vec::new();
        stream_records(
            Box::new(std::io::Cursor::new(csv)),
            "u.csv",
            InputFormat::Csv,
            "USER_ID",
            JobKind::Recommendations,
            10,
            |b| {
                seen.extend(b.into_iter().map(|r| r.request));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            seen,
            [
                Ok(Request::User("a".into())),
                Err("line 3: empty USER_ID".into()),
                Ok(Request::User("c".into()))
            ]
        );
    }
}
