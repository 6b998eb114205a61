//! Reading one source object into a frame. Every import passes through here,
//! so this is where untrusted bytes are judged:
//!
//! - what the bytes are: gzip is unpacked (by its magic bytes, whatever the
//!   name), UTF-16 with a byte order mark is transcoded, and a Parquet file,
//!   a ZIP archive or UTF-16 without a mark given as text is named as such
//!   instead of failing as "not UTF-8";
//! - CSV is checked with the `csv` crate before polars parses it: polars lets
//!   the first of two same-named columns win, pads short rows with nulls and
//!   refuses long ones with its own advice. Here a duplicate column refuses
//!   the file, and a row whose field count differs from the header's is
//!   rejected (reported with its line and both counts, like any bad row);
//! - JSON lines are parsed strictly, line by line: a key given twice (serde
//!   and polars both keep one silently), an object or array where the schema
//!   wants a value, and an id given as a number that cannot be held exactly
//!   reject the line.
//!
//! Type conversion and per-value checks happen later, in `validate`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{Cursor, Read};

use polars::prelude::*;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::validate::{ROW_COL, Rejected, SOURCE_COL, truncate};
use crate::schema::{FieldType, Schema};

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
    /// The format of an object by its name (`.gz` looked through).
    pub fn from_name(name: &str) -> Option<SourceFormat> {
        let lower = name.to_ascii_lowercase();
        let base = lower.strip_suffix(".gz").unwrap_or(&lower);
        let ext = base.rsplit('.').next().unwrap_or("");
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

/// How to read the objects of one import.
pub struct Reading<'a> {
    pub format: Option<SourceFormat>,
    pub csv: &'a CsvSpec,
    pub encoding: Encoding,
    pub wanted: &'a Wanted,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
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
    /// The bytes are something else than the text format expected.
    #[error("{source_url}: this is {what}, not {format} text; {hint}")]
    NotText {
        source_url: String,
        what: &'static str,
        format: &'static str,
        hint: &'static str,
    },
    #[error("{source_url}: cannot unpack gzip: {reason}")]
    Gzip { source_url: String, reason: String },
    #[error("{source_url}: cannot read as {format}: {reason}")]
    Read {
        source_url: String,
        format: &'static str,
        reason: String,
    },
    #[error("{source_url}: {reason}")]
    Layout { source_url: String, reason: String },
}

/// One source object, read: a frame with `__source` and `__row` columns.
pub struct ReadSource {
    pub frame: DataFrame,
    /// Lines and records refused before parsing (bad JSON, ragged CSV rows).
    pub rejected: Vec<Rejected>,
}

/// What the schema expects under a source key, for the JSON lines checks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// An id: text, or a whole number that converts exactly.
    Id,
    /// Any scalar (text, number, boolean).
    Scalar,
}

/// The source keys that end up in schema fields: each field's own name and
/// every `rename:` source that maps onto it.
pub struct Wanted(BTreeMap<String, Expect>);

impl Wanted {
    pub fn new(schema: &Schema, rename: &BTreeMap<String, String>) -> Wanted {
        let mut keys = BTreeMap::new();
        for field in &schema.fields {
            let expect = if field.is_id() && field.field_type == FieldType::String {
                Expect::Id
            } else {
                Expect::Scalar
            };
            keys.insert(field.name.clone(), expect);
            for (from, to) in rename {
                if *to == field.name {
                    keys.insert(from.clone(), expect);
                }
            }
        }
        Wanted(keys)
    }
}

/// Reads one object into a frame with `__source` and `__row` columns.
pub fn read_source(
    spec: &Reading,
    url: &str,
    data: bytes::Bytes,
    index: u32,
) -> Result<ReadSource, SourceError> {
    if data.is_empty() {
        return Err(SourceError::Empty {
            source_url: url.to_string(),
        });
    }
    let data = gunzip(url, data)?;
    if data.is_empty() {
        return Err(SourceError::Empty {
            source_url: url.to_string(),
        });
    }
    let format = spec
        .format
        .or_else(|| SourceFormat::from_name(url))
        .unwrap_or(SourceFormat::Csv);
    let read_err = |format: &'static str| {
        move |e: PolarsError| SourceError::Read {
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
            let text = decode(url, data, spec.encoding, "CSV")?;
            let checked = check_csv(spec.csv, url, text, index, &mut rejected)?;
            let frame = read_csv(spec.csv, url, checked.text)?;
            if let Some(rows) = &checked.rows
                && rows.len() != frame.height()
            {
                return Err(SourceError::Read {
                    source_url: url.to_string(),
                    format: "CSV",
                    reason: format!(
                        "{} records after refusing ragged rows, but the parser found {}",
                        rows.len(),
                        frame.height()
                    ),
                });
            }
            (frame, checked.rows)
        }
        SourceFormat::Json => {
            let text = decode(url, data, spec.encoding, "JSON lines")?;
            let (valid, lines) = json_lines(&text, spec.wanted, index, &mut rejected);
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
        .map_err(read_err("a table"))?;
    Ok(ReadSource { frame, rejected })
}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Unpacks gzip, known by its magic bytes (so `.gz` or not, it is read).
fn gunzip(url: &str, data: bytes::Bytes) -> Result<bytes::Bytes, SourceError> {
    if !data.starts_with(&[0x1F, 0x8B]) {
        return Ok(data);
    }
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(&data[..])
        .read_to_end(&mut out)
        .map_err(|e| SourceError::Gzip {
            source_url: url.to_string(),
            reason: e.to_string(),
        })?;
    Ok(out.into())
}

/// Checks or converts text to UTF-8, naming what the bytes are when they are
/// not text, and the first bad byte's place when they are not UTF-8.
pub fn decode(
    url: &str,
    data: bytes::Bytes,
    encoding: Encoding,
    format: &'static str,
) -> Result<bytes::Bytes, SourceError> {
    let not_text = |what, hint| SourceError::NotText {
        source_url: url.to_string(),
        what,
        format,
        hint,
    };
    // A byte order mark says what the text is, whatever `encoding` says.
    if let Some(be) = match data.get(..2) {
        Some([0xFF, 0xFE]) => Some(false),
        Some([0xFE, 0xFF]) => Some(true),
        _ => None,
    } {
        return utf16(&data[2..], be).map(Into::into).ok_or_else(|| {
            not_text(
                "UTF-16 text that is cut or corrupt",
                "save it again as UTF-8",
            )
        });
    }
    if data.starts_with(b"PAR1") {
        return Err(not_text(
            "a Parquet file",
            "set `format: parquet` on the import step, or name it .parquet",
        ));
    }
    if data.starts_with(b"PK\x03\x04") {
        return Err(not_text(
            "a ZIP archive (an Excel .xlsx file is one)",
            "unpack it, or export the sheet as CSV",
        ));
    }
    if looks_like_utf16(&data) {
        return Err(not_text(
            "UTF-16 text without a byte order mark (every other byte is 0)",
            "save it as UTF-8",
        ));
    }
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
                    Err(SourceError::Encoding {
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

fn utf16(body: &[u8], big_endian: bool) -> Option<String> {
    if !body.len().is_multiple_of(2) {
        return None;
    }
    let units = body.chunks_exact(2).map(|p| {
        if big_endian {
            u16::from_be_bytes([p[0], p[1]])
        } else {
            u16::from_le_bytes([p[0], p[1]])
        }
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// ASCII text in UTF-16 has a zero in every other byte: if most of the first
/// pairs have one (and text never does), it is UTF-16.
fn looks_like_utf16(data: &[u8]) -> bool {
    let pairs: Vec<&[u8]> = data.chunks_exact(2).take(256).collect();
    if pairs.len() < 2 {
        return false;
    }
    let zero_in_pair = pairs.iter().filter(|p| (p[0] == 0) != (p[1] == 0)).count();
    zero_in_pair * 4 >= pairs.len() * 3
}

struct CheckedCsv {
    /// The text polars parses: the source, or the source without its ragged
    /// records.
    text: bytes::Bytes,
    /// The data record numbers polars' rows have, when records were removed.
    rows: Option<Vec<u64>>,
}

/// Checks the header for duplicate names and every record's field count,
/// with the `csv` crate (the same RFC 4180 quoting polars reads). A ragged
/// record is rejected with its line and counts, and cut out of the text.
fn check_csv(
    csv: &CsvSpec,
    url: &str,
    text: bytes::Bytes,
    index: u32,
    rejected: &mut Vec<Rejected>,
) -> Result<CheckedCsv, SourceError> {
    let layout = |reason: String| SourceError::Layout {
        source_url: url.to_string(),
        reason,
    };
    let delimiter = ascii(csv.delimiter, "delimiter").map_err(layout)?;
    let mut builder = csv::ReaderBuilder::new();
    builder
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true);
    match csv.quote {
        Some(q) => builder.quote(ascii(q, "quote").map_err(layout)?),
        None => builder.quoting(false),
    };
    let mut reader = builder.from_reader(&text[..]);
    let mut record = csv::ByteRecord::new();
    let read = |reader: &mut csv::Reader<&[u8]>, record: &mut csv::ByteRecord| {
        reader
            .read_byte_record(record)
            .map_err(|e| SourceError::Read {
                source_url: url.to_string(),
                format: "CSV",
                reason: e.to_string(),
            })
    };

    let (width, against) = if csv.header {
        if !read(&mut reader, &mut record)? {
            return Ok(CheckedCsv { text, rows: None });
        }
        let header: Vec<String> = record
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let names = csv.columns.as_ref().unwrap_or(&header);
        if let Some(problem) = duplicate_name(names) {
            let whose = if csv.columns.is_some() {
                "csv.columns"
            } else {
                "the header (line 1)"
            };
            return Err(layout(format!("{problem} in {whose}")));
        }
        (header.len(), "the header has")
    } else {
        let Some(names) = &csv.columns else {
            return Ok(CheckedCsv { text, rows: None });
        };
        if let Some(problem) = duplicate_name(names) {
            return Err(layout(format!("{problem} in csv.columns")));
        }
        (names.len(), "csv.columns names")
    };

    let mut removed: Vec<(usize, usize)> = Vec::new();
    let mut kept: Vec<u64> = Vec::new();
    let mut ordinal = 0u64;
    loop {
        let start = reader.position().byte() as usize;
        if !read(&mut reader, &mut record)? {
            break;
        }
        ordinal += 1;
        if record.len() == width {
            kept.push(ordinal);
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        let end = reader.position().byte() as usize;
        let raw = String::from_utf8_lossy(&text[start..end]);
        rejected.push(Rejected {
            source: Some(index),
            row: ordinal,
            column: String::new(),
            value: truncate(raw.trim_end(), 60),
            reason: format!(
                "line {line} has {} field{}, {against} {width}",
                record.len(),
                if record.len() == 1 { "" } else { "s" }
            ),
        });
        removed.push((start, end));
    }
    if removed.is_empty() {
        return Ok(CheckedCsv { text, rows: None });
    }
    let mut clean = Vec::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in removed {
        clean.extend_from_slice(&text[at..start]);
        at = end;
    }
    clean.extend_from_slice(&text[at..]);
    // A removed last record may leave the text without its final newline;
    // the previous record keeps its own.
    Ok(CheckedCsv {
        text: clean.into(),
        rows: Some(kept),
    })
}

/// `columns 2 and 4 are both named "ITEM_ID"`, for the first repeat.
fn duplicate_name(names: &[String]) -> Option<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(first) = seen.insert(name.as_str(), i) {
            return Some(format!(
                "columns {} and {} are both named {name:?}",
                first + 1,
                i + 1
            ));
        }
    }
    None
}

fn ascii(c: char, what: &str) -> Result<u8, String> {
    u8::try_from(c)
        .ok()
        .filter(|b| b.is_ascii())
        .ok_or_else(|| format!("csv.{what} must be one ASCII character"))
}

pub fn read_csv(csv: &CsvSpec, url: &str, text: bytes::Bytes) -> Result<DataFrame, SourceError> {
    let layout = |reason: String| SourceError::Layout {
        source_url: url.to_string(),
        reason,
    };
    let mut parse = CsvParseOptions::default()
        .with_separator(ascii(csv.delimiter, "delimiter").map_err(layout)?)
        .with_quote_char(match csv.quote {
            Some(q) => Some(ascii(q, "quote").map_err(layout)?),
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
        .map_err(|e| SourceError::Read {
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
/// line numbers they came from; every other non-empty line is rejected.
pub fn json_lines(
    text: &[u8],
    wanted: &Wanted,
    index: u32,
    rejected: &mut Vec<Rejected>,
) -> (Vec<u8>, Vec<u64>) {
    let mut valid = Vec::with_capacity(text.len());
    let mut lines = Vec::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let lineno = n as u64 + 1;
        let refuse = |column: String, reason: String| Rejected {
            source: Some(index),
            row: lineno,
            column,
            value: String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned(),
            reason,
        };
        let mut de = serde_json::Deserializer::from_slice(line);
        let object = match Object::deserialize(&mut de).and_then(|o| de.end().map(|_| o)) {
            Ok(Object(Some(members))) => members,
            Ok(Object(None)) => {
                rejected.push(refuse(String::new(), "not a JSON object".into()));
                continue;
            }
            Err(e) => {
                rejected.push(refuse(String::new(), format!("invalid JSON: {e}")));
                continue;
            }
        };
        match check_members(&object, wanted) {
            Some((key, reason)) => rejected.push(refuse(key, reason)),
            None => {
                valid.extend_from_slice(line);
                valid.push(b'\n');
                lines.push(lineno);
            }
        }
    }
    (valid, lines)
}

/// The first member that cannot be imported as given, with the reason.
fn check_members(members: &[(String, Kind)], wanted: &Wanted) -> Option<(String, String)> {
    let mut seen = HashSet::with_capacity(members.len());
    for (key, kind) in members {
        if !seen.insert(key.as_str()) {
            return Some((
                key.clone(),
                format!("key {key:?} appears twice in the object"),
            ));
        }
        let Some(expect) = wanted.0.get(key) else {
            continue;
        };
        let problem = match (kind, expect) {
            (Kind::Object, _) => Some("a JSON object where a single value is expected"),
            (Kind::Array, _) => Some("a JSON array where a single value is expected"),
            (Kind::InexactNumber, Expect::Id) => {
                Some("an id given as a number too large to hold exactly; write it as a string")
            }
            (Kind::HugeInteger, _) => {
                Some("a whole number larger than 64 bits can hold; write it as a string")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Some((key.clone(), problem.to_string()));
        }
    }
    None
}

/// A JSON line's top level: its members in order (duplicates kept, so they
/// can be refused), or `None` when it is not an object.
struct Object(Option<Vec<(String, Kind)>>);

/// What a member's value is, without keeping it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Scalar,
    /// A float whose value is not a whole number exactly representable in
    /// an f64 (beyond 2^53, digits were lost while parsing).
    InexactNumber,
    /// An integer above i64::MAX.
    HugeInteger,
    Object,
    Array,
}

impl<'de> de::Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let kind = map.next_value::<Kind>()?;
                    members.push((key, kind));
                }
                Ok(Object(Some(members)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Object, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Object(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Object, E> {
                Ok(Object(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Object, E> {
                Ok(Object(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Object, E> {
                Ok(Object(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Object, E> {
                Ok(Object(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Object, E> {
                Ok(Object(None))
            }
            fn visit_unit<E>(self) -> Result<Object, E> {
                Ok(Object(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> de::Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Kind::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Kind::Array)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
                Ok(if v > i64::MAX as u64 {
                    Kind::HugeInteger
                } else {
                    Kind::Scalar
                })
            }
            fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
                // serde_json hands integers beyond u64 over as f64.
                Ok(if v.abs() >= 9_007_199_254_740_992.0 {
                    Kind::InexactNumber
                } else {
                    Kind::Scalar
                })
            }
            fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_string<E>(self, _: String) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Kind, E> {
                Ok(Kind::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AvroSchema, DatasetType};

    fn schema() -> Schema {
        let avro: AvroSchema = serde_json::from_str(
            r#"{"fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                {"name": "EVENT_TYPE", "type": "string"}, {"name": "TIMESTAMP", "type": "long"}]}"#,
        )
        .unwrap();
        Schema::from_avro(DatasetType::Interactions, &avro).unwrap()
    }

    fn wanted() -> Wanted {
        Wanted::new(
            &schema(),
            &BTreeMap::from([("user".into(), "USER_ID".into())]),
        )
    }

    fn read(name: &str, data: &[u8]) -> Result<ReadSource, SourceError> {
        let (csv, wanted) = (CsvSpec::default(), wanted());
        let reading = Reading {
            format: None,
            csv: &csv,
            encoding: Encoding::Utf8,
            wanted: &wanted,
        };
        read_source(&reading, name, bytes::Bytes::copy_from_slice(data), 0)
    }

    fn reasons(rejected: &[Rejected]) -> Vec<(u64, String, String)> {
        rejected
            .iter()
            .map(|r| (r.row, r.column.clone(), r.reason.clone()))
            .collect()
    }

    fn column<'a>(df: &'a DataFrame, name: &str) -> Vec<Option<&'a str>> {
        df.column(name).unwrap().str().unwrap().iter().collect()
    }

    #[test]
    fn utf8_errors_name_line_column_and_offset() {
        let data = bytes::Bytes::from_static(b"id|title\n1|Caf\xe9 Society\n");
        let err = decode("u.item", data, Encoding::Utf8, "CSV")
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
            &decode("x", data, Encoding::Latin1, "CSV").unwrap()[..],
            "Café".as_bytes()
        );
    }

    #[test]
    fn json_lines_keep_line_numbers_and_reject_bad_lines() {
        let mut rejected = Vec::new();
        let (valid, lines) = json_lines(
            b"{\"a\": 1}\n\n[1]\n{bad\n{\"a\": 2}\n",
            &wanted(),
            0,
            &mut rejected,
        );
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
    fn duplicate_csv_columns_refuse_the_file_naming_both() {
        let err = read("x.csv", b"USER_ID,ITEM_ID,TIMESTAMP,ITEM_ID\nu,a,1,b\n")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "x.csv: columns 2 and 4 are both named \"ITEM_ID\" in the header (line 1)"
        );
        let csv = CsvSpec {
            header: false,
            columns: Some(vec!["A".into(), "A".into()]),
            ..CsvSpec::default()
        };
        let err = check_csv(
            &csv,
            "y.csv",
            bytes::Bytes::from_static(b"1,2\n"),
            0,
            &mut Vec::new(),
        )
        .err()
        .unwrap()
        .to_string();
        assert_eq!(
            err,
            "y.csv: columns 1 and 2 are both named \"A\" in csv.columns"
        );
    }

    #[test]
    fn ragged_csv_rows_are_rejected_with_their_line_and_field_counts() {
        // Record 2 spans lines 3-4 (a quoted newline): line numbers follow
        // the file, row numbers the records.
        let text = b"USER_ID,ITEM_ID,TIMESTAMP\nu1,a,1\nu2,\"b\nb\",2\nu3,c\nu4,d,4,extra\nu5,e,5";
        let got = read("x.csv", text).unwrap();
        assert_eq!(
            reasons(&got.rejected),
            [
                (
                    3,
                    String::new(),
                    "line 5 has 2 fields, the header has 3".into()
                ),
                (
                    4,
                    String::new(),
                    "line 6 has 4 fields, the header has 3".into()
                ),
            ]
        );
        assert_eq!(got.rejected[1].value, "u4,d,4,extra");
        let df = got.frame;
        assert_eq!(column(&df, "USER_ID"), [Some("u1"), Some("u2"), Some("u5")]);
        assert_eq!(column(&df, "ITEM_ID"), [Some("a"), Some("b\nb"), Some("e")]);
        let rows: Vec<u64> = df
            .column(ROW_COL)
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(rows, [1, 2, 5]);
        // Without ragged rows nothing is copied or renumbered.
        let got = read("x.csv", b"USER_ID,ITEM_ID,TIMESTAMP\nu1,a,1\n").unwrap();
        assert!(got.rejected.is_empty());
        assert_eq!(got.frame.height(), 1);
    }

    #[test]
    fn json_lines_refuse_duplicate_keys_nested_values_and_inexact_ids() {
        let text = br#"{"user": "u1", "ITEM_ID": "a", "EVENT_TYPE": "click", "TIMESTAMP": 1}
{"user": "u2", "ITEM_ID": "b", "ITEM_ID": "c", "TIMESTAMP": 2}
{"user": "u3", "ITEM_ID": "d", "EVENT_TYPE": {"kind": "click"}, "TIMESTAMP": 3}
{"user": ["u4"], "ITEM_ID": "e", "TIMESTAMP": 4}
{"user": 123456789012345678901234, "ITEM_ID": "f", "TIMESTAMP": 5}
{"user": "u6", "ITEM_ID": "g", "TIMESTAMP": 18446744073709551615}
{"user": "u7", "ITEM_ID": "h", "TIMESTAMP": 7, "context": {"device": "ios", "tags": [1, 2]}}
{"user": "u8", "ITEM_ID": 42, "TIMESTAMP": 8, "extra": 1, "extra": 2}
"#;
        let mut rejected = Vec::new();
        let (_, lines) = json_lines(text, &wanted(), 0, &mut rejected);
        assert_eq!(lines, [1, 7], "an ignored key may hold anything");
        assert_eq!(
            reasons(&rejected),
            [
                (
                    2,
                    "ITEM_ID".into(),
                    "key \"ITEM_ID\" appears twice in the object".into()
                ),
                (
                    3,
                    "EVENT_TYPE".into(),
                    "a JSON object where a single value is expected".into()
                ),
                (
                    4,
                    "user".into(),
                    "a JSON array where a single value is expected".into()
                ),
                (
                    5,
                    "user".into(),
                    "an id given as a number too large to hold exactly; write it as a string"
                        .into()
                ),
                (
                    6,
                    "TIMESTAMP".into(),
                    "a whole number larger than 64 bits can hold; write it as a string".into()
                ),
                (
                    8,
                    "extra".into(),
                    "key \"extra\" appears twice in the object".into()
                ),
            ]
        );
    }

    #[test]
    fn gzip_is_unpacked_by_its_magic_bytes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"USER_ID,ITEM_ID,TIMESTAMP\nu1,a,1\nu2,b,2\n")
            .unwrap();
        let data = gz.finish().unwrap();
        for name in ["day.csv.gz", "day.csv"] {
            let got = read(name, &data).unwrap();
            assert_eq!(
                column(&got.frame, "ITEM_ID"),
                [Some("a"), Some("b")],
                "{name}"
            );
        }
        let err = read("cut.csv.gz", &data[..data.len() / 2])
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("cut.csv.gz: cannot unpack gzip: "), "{err}");
        assert_eq!(
            SourceFormat::from_name("a/b.jsonl.gz"),
            Some(SourceFormat::Json)
        );
    }

    #[test]
    fn utf16_is_transcoded_or_named_and_binary_files_are_named() {
        let text = "USER_ID,ITEM_ID,TIMESTAMP\nu1,Café,1\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(
            column(&read("x.csv", &le).unwrap().frame, "ITEM_ID"),
            [Some("Café")]
        );
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(
            column(&read("x.csv", &be).unwrap().frame, "ITEM_ID"),
            [Some("Café")]
        );

        let bare: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let err = read("x.csv", &bare).err().unwrap().to_string();
        assert_eq!(
            err,
            "x.csv: this is UTF-16 text without a byte order mark (every other byte is 0), not CSV text; \
             save it as UTF-8"
        );
        assert!(!err.contains("latin-1"));
        let err = read("x.csv", b"PAR1\x15\x04").err().unwrap().to_string();
        assert!(
            err.contains("this is a Parquet file, not CSV text; set `format: parquet`"),
            "{err}"
        );
        let err = read("x.json", b"PK\x03\x04\x14\0")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("this is a ZIP archive"), "{err}");
    }
}
