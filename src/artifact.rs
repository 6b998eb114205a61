//! The model artifact container: a self-describing binary file with named,
//! typed sections (id tables, f32/u32/i64 arrays) and a checksum. Layout:
//!
//! ```text
//! "RFMODEL\0" | format version u32 LE | header length u32 LE | header JSON | payload
//! ```
//!
//! The header names the recipe, each section's type, offset and length in the
//! payload (8-byte aligned, little-endian), and the payload's SHA-256. A file
//! that is truncated, corrupt or from a newer format is refused with a reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"RFMODEL\0";
/// The artifact format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{file}: not a recflow model artifact (bad magic bytes)")]
    NotAnArtifact { file: String },
    #[error(
        "{file}: written in artifact format {found}; this recflow reads format {FORMAT_VERSION} — retrain or upgrade recflow"
    )]
    Incompatible { file: String, found: u32 },
    #[error("{file}: corrupt model artifact: {reason}")]
    Corrupt { file: String, reason: String },
    #[error("{file}: model artifact has no section {section:?} (recipe {recipe})")]
    MissingSection {
        file: String,
        section: String,
        recipe: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SectionKind {
    F32,
    U32,
    I64,
    Strings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SectionEntry {
    name: String,
    kind: SectionKind,
    offset: u64,
    len: u64,
    /// Number of elements.
    count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    recipe: String,
    /// Recipe-specific small settings (hyperparameters, dimensions).
    meta: serde_json::Value,
    sections: Vec<SectionEntry>,
    payload_sha256: String,
}

/// Builds an artifact in memory.
pub struct ArtifactWriter {
    recipe: String,
    meta: serde_json::Value,
    sections: Vec<SectionEntry>,
    payload: Vec<u8>,
}

impl ArtifactWriter {
    pub fn new(recipe: &str, meta: serde_json::Value) -> Self {
        Self {
            recipe: recipe.to_string(),
            meta,
            sections: Vec::new(),
            payload: Vec::new(),
        }
    }

    fn begin(&mut self) -> u64 {
        while !self.payload.len().is_multiple_of(8) {
            self.payload.push(0);
        }
        self.payload.len() as u64
    }

    fn end(&mut self, name: &str, kind: SectionKind, offset: u64, count: usize) {
        let len = self.payload.len() as u64 - offset;
        self.sections.push(SectionEntry {
            name: name.to_string(),
            kind,
            offset,
            len,
            count: count as u64,
        });
    }

    pub fn f32s(&mut self, name: &str, values: &[f32]) {
        let offset = self.begin();
        for v in values {
            self.payload.extend_from_slice(&v.to_le_bytes());
        }
        self.end(name, SectionKind::F32, offset, values.len());
    }

    pub fn u32s(&mut self, name: &str, values: &[u32]) {
        let offset = self.begin();
        for v in values {
            self.payload.extend_from_slice(&v.to_le_bytes());
        }
        self.end(name, SectionKind::U32, offset, values.len());
    }

    pub fn i64s(&mut self, name: &str, values: &[i64]) {
        let offset = self.begin();
        for v in values {
            self.payload.extend_from_slice(&v.to_le_bytes());
        }
        self.end(name, SectionKind::I64, offset, values.len());
    }

    /// A string table: `count` u64 end offsets, then the UTF-8 bytes.
    pub fn strings<S: AsRef<str>>(&mut self, name: &str, values: &[S]) {
        let offset = self.begin();
        let mut end = 0u64;
        for v in values {
            end += v.as_ref().len() as u64;
            self.payload.extend_from_slice(&end.to_le_bytes());
        }
        for v in values {
            self.payload.extend_from_slice(v.as_ref().as_bytes());
        }
        self.end(name, SectionKind::Strings, offset, values.len());
    }

    /// The finished file's bytes.
    pub fn finish(self) -> Vec<u8> {
        let header = Header {
            recipe: self.recipe,
            meta: self.meta,
            sections: self.sections,
            payload_sha256: hex::encode(Sha256::digest(&self.payload)),
        };
        let header = serde_json::to_vec(&header).expect("header serializes");
        let mut out = Vec::with_capacity(16 + header.len() + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.payload);
        out
    }
}

/// A checked artifact, read from bytes.
pub struct ArtifactReader {
    file: String,
    header: Header,
    payload: bytes::Bytes,
    index: BTreeMap<String, usize>,
}

impl ArtifactReader {
    /// Parses and verifies an artifact; `file` names it in errors.
    pub fn parse(file: &str, data: bytes::Bytes) -> Result<ArtifactReader, ArtifactError> {
        let corrupt = |reason: &str| ArtifactError::Corrupt {
            file: file.to_string(),
            reason: reason.to_string(),
        };
        if data.len() < 16 || &data[..8] != MAGIC {
            return Err(ArtifactError::NotAnArtifact {
                file: file.to_string(),
            });
        }
        let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(ArtifactError::Incompatible {
                file: file.to_string(),
                found: version,
            });
        }
        let header_len = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
        if data.len() < 16 + header_len {
            return Err(corrupt("truncated header"));
        }
        let header: Header = serde_json::from_slice(&data[16..16 + header_len])
            .map_err(|e| corrupt(&format!("bad header: {e}")))?;
        let payload = data.slice(16 + header_len..);
        if hex::encode(Sha256::digest(&payload)) != header.payload_sha256 {
            return Err(corrupt(
                "checksum mismatch (the file was changed or truncated)",
            ));
        }
        for s in &header.sections {
            if s.offset
                .checked_add(s.len)
                .is_none_or(|end| end > payload.len() as u64)
            {
                return Err(corrupt(&format!(
                    "section {:?} lies outside the file",
                    s.name
                )));
            }
        }
        let index = header
            .sections
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Ok(ArtifactReader {
            file: file.to_string(),
            header,
            payload,
            index,
        })
    }

    pub fn recipe(&self) -> &str {
        &self.header.recipe
    }

    /// Whether a section is present (optional parts of a model).
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn meta(&self) -> &serde_json::Value {
        &self.header.meta
    }

    fn section(&self, name: &str, kind: SectionKind) -> Result<(&[u8], usize), ArtifactError> {
        let entry = self
            .index
            .get(name)
            .map(|&i| &self.header.sections[i])
            .ok_or_else(|| ArtifactError::MissingSection {
                file: self.file.clone(),
                section: name.to_string(),
                recipe: self.header.recipe.clone(),
            })?;
        if entry.kind != kind {
            return Err(ArtifactError::Corrupt {
                file: self.file.clone(),
                reason: format!(
                    "section {name:?} has type {:?}, expected {kind:?}",
                    entry.kind
                ),
            });
        }
        let bytes = &self.payload[entry.offset as usize..(entry.offset + entry.len) as usize];
        Ok((bytes, entry.count as usize))
    }

    fn fixed<const N: usize, T>(
        &self,
        name: &str,
        kind: SectionKind,
        f: fn([u8; N]) -> T,
    ) -> Result<Vec<T>, ArtifactError> {
        let (bytes, count) = self.section(name, kind)?;
        if bytes.len() != count * N {
            return Err(ArtifactError::Corrupt {
                file: self.file.clone(),
                reason: format!("section {name:?} has a wrong length"),
            });
        }
        Ok(bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk of N")))
            .collect())
    }

    pub fn f32s(&self, name: &str) -> Result<Vec<f32>, ArtifactError> {
        self.fixed(name, SectionKind::F32, f32::from_le_bytes)
    }

    pub fn u32s(&self, name: &str) -> Result<Vec<u32>, ArtifactError> {
        self.fixed(name, SectionKind::U32, u32::from_le_bytes)
    }

    pub fn i64s(&self, name: &str) -> Result<Vec<i64>, ArtifactError> {
        self.fixed(name, SectionKind::I64, i64::from_le_bytes)
    }

    pub fn strings(&self, name: &str) -> Result<Vec<String>, ArtifactError> {
        let (bytes, count) = self.section(name, SectionKind::Strings)?;
        let corrupt = || ArtifactError::Corrupt {
            file: self.file.clone(),
            reason: format!("string table {name:?} is malformed"),
        };
        let ends_len = count
            .checked_mul(8)
            .filter(|&n| n <= bytes.len())
            .ok_or_else(corrupt)?;
        let (ends, text) = bytes.split_at(ends_len);
        let mut out = Vec::with_capacity(count);
        let mut start = 0usize;
        for chunk in ends.chunks_exact(8) {
            let end = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) as usize;
            let s = text.get(start..end).ok_or_else(corrupt)?;
            out.push(std::str::from_utf8(s).map_err(|_| corrupt())?.to_string());
            start = end;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = ArtifactWriter::new("popularity-count", serde_json::json!({"k": 1}));
        w.strings("items", &["a", "bé", ""]);
        w.f32s("scores", &[0.5, 0.25, 0.0]);
        w.u32s("order", &[0, 1, 2]);
        w.i64s("ts", &[-1, 7]);
        w.finish()
    }

    #[test]
    fn round_trips_every_section_type() {
        let r = ArtifactReader::parse("m", bytes::Bytes::from(sample())).unwrap();
        assert_eq!(r.recipe(), "popularity-count");
        assert_eq!(r.meta()["k"], 1);
        assert_eq!(r.strings("items").unwrap(), ["a", "bé", ""]);
        assert_eq!(r.f32s("scores").unwrap(), [0.5, 0.25, 0.0]);
        assert_eq!(r.u32s("order").unwrap(), [0, 1, 2]);
        assert_eq!(r.i64s("ts").unwrap(), [-1, 7]);
        assert!(matches!(
            r.f32s("nope"),
            Err(ArtifactError::MissingSection { .. })
        ));
    }

    #[test]
    fn refuses_a_flipped_byte() {
        let mut bytes = sample();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let err = ArtifactReader::parse("models/x/v1/model.rfm", bytes.into())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("models/x/v1/model.rfm: corrupt model artifact: checksum mismatch"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_newer_format() {
        let mut bytes = sample();
        bytes[8] = 9;
        let err = ArtifactReader::parse("m", bytes.into())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("written in artifact format 9"), "{err}");
    }

    #[test]
    fn refuses_a_truncated_file() {
        let bytes = sample();
        let err = ArtifactReader::parse("m", bytes[..bytes.len() - 3].to_vec().into())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
