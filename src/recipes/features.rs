//! Item metadata as sparse feature vectors, for cold start and exploration.
//! Each categorical value is a feature (`GENRES=Comedy`, several values split
//! on `|`); the textual field is tokenised into lower-case words weighted by
//! TF-IDF. Vectors are L2-normalised, so a dot product is a cosine. The
//! vocabulary and IDF weights are kept, so an item added later (PutItems)
//! gets a vector in the same space without retraining.

use std::collections::HashMap;

use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::schema::Schema;

/// Words too common to say anything about an item.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its",
    "of", "on", "or", "that", "the", "this", "to", "was", "with",
];

/// Text tokens seen in fewer items are left out of the vocabulary.
const MIN_DOCUMENT_FREQUENCY: u32 = 2;
/// At most this many text tokens (the most frequent) are kept.
const MAX_TEXT_VOCABULARY: usize = 50_000;

/// The raw metadata of one item: categorical values by field, and its text.
#[derive(Debug, Clone, Default)]
pub struct ItemRecord {
    pub categorical: Vec<(String, String)>,
    pub text: Option<String>,
    pub created: Option<i64>,
}

impl ItemRecord {
    /// Reads the fields a schema marks categorical or textual from
    /// `(field, value)` pairs; `|` separates several categorical values.
    pub fn from_fields<'a>(
        schema: &Schema,
        fields: impl Iterator<Item = (&'a str, Option<String>)>,
    ) -> ItemRecord {
        let mut r = ItemRecord::default();
        for (name, value) in fields {
            let (Some(field), Some(value)) = (schema.field(name), value) else {
                continue;
            };
            if field.categorical {
                r.categorical.extend(
                    value
                        .split('|')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| (name.to_string(), v.to_string())),
                );
            } else if field.textual {
                r.text = Some(value);
            } else if field.is_timestamp() {
                r.created = value.parse().ok();
            }
        }
        r
    }
}

pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
}

/// Feature vectors of a catalog, and the vocabulary that made them.
#[derive(Debug, Clone, Default)]
pub struct ItemFeatures {
    /// Feature names: `FIELD=value` for categorical values, `text:word` for words.
    vocab: Vec<String>,
    index: HashMap<String, u32>,
    /// Weight of each feature before normalisation (IDF for words, 1 otherwise).
    weight: Vec<f32>,
    /// items × features, rows L2-normalised.
    offsets: Vec<u32>,
    features: Vec<u32>,
    values: Vec<f32>,
    /// CREATION_TIMESTAMP per item, `i64::MIN` when unknown.
    pub created: Vec<i64>,
}

impl ItemFeatures {
    /// Builds the vocabulary from `records` (indexed like the catalog; `None`
    /// for items without metadata) and the vectors of every item.
    pub fn build(records: &[Option<ItemRecord>]) -> ItemFeatures {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut categorical: HashMap<String, ()> = HashMap::new();
        for r in records.iter().flatten() {
            for (f, v) in &r.categorical {
                categorical.insert(format!("{f}={v}"), ());
            }
            if let Some(t) = &r.text {
                let mut words: Vec<String> = tokenize(t).collect();
                words.sort_unstable();
                words.dedup();
                for w in words {
                    *df.entry(w).or_default() += 1;
                }
            }
        }
        let n_docs = records
            .iter()
            .flatten()
            .filter(|r| r.text.is_some())
            .count()
            .max(1) as f32;
        let mut words: Vec<(String, u32)> = df
            .into_iter()
            .filter(|(_, n)| *n >= MIN_DOCUMENT_FREQUENCY)
            .collect();
        words.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        words.truncate(MAX_TEXT_VOCABULARY);
        let mut cats: Vec<String> = categorical.into_keys().collect();
        cats.sort_unstable();
        let mut f = ItemFeatures::default();
        for c in cats {
            f.push_feature(c, 1.0);
        }
        for (w, n) in words {
            f.push_feature(format!("text:{w}"), (n_docs / n as f32).ln() + 1.0);
        }
        f.offsets.push(0);
        for r in records {
            f.push_item(r.as_ref());
        }
        f
    }

    fn push_feature(&mut self, name: String, weight: f32) {
        self.index.insert(name.clone(), self.vocab.len() as u32);
        self.vocab.push(name);
        self.weight.push(weight);
    }

    /// The normalised vector of a record in this vocabulary (unknown values
    /// and words are ignored).
    pub fn vectorize(&self, r: &ItemRecord) -> Vec<(u32, f32)> {
        let mut v: HashMap<u32, f32> = HashMap::new();
        for (f, val) in &r.categorical {
            if let Some(&i) = self.index.get(&format!("{f}={val}")) {
                v.insert(i, self.weight[i as usize]);
            }
        }
        if let Some(t) = &r.text {
            for w in tokenize(t) {
                if let Some(&i) = self.index.get(&format!("text:{w}")) {
                    *v.entry(i).or_default() += self.weight[i as usize];
                }
            }
        }
        let norm = v.values().map(|x| x * x).sum::<f32>().sqrt();
        let mut out: Vec<(u32, f32)> = v
            .into_iter()
            .map(|(i, x)| (i, x / norm.max(1e-12)))
            .collect();
        out.sort_unstable_by_key(|e| e.0);
        out
    }

    /// Appends an item (a new one from PutItems, or a catalog item in `build`).
    pub fn push_item(&mut self, r: Option<&ItemRecord>) {
        if let Some(r) = r {
            for (i, x) in self.vectorize(r) {
                self.features.push(i);
                self.values.push(x);
            }
        }
        self.offsets.push(self.features.len() as u32);
        self.created
            .push(r.and_then(|r| r.created).unwrap_or(i64::MIN));
    }

    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn vocabulary_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn row(&self, item: u32) -> (&[u32], &[f32]) {
        let i = item as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => (
                &self.features[a as usize..b as usize],
                &self.values[a as usize..b as usize],
            ),
            _ => (&[], &[]),
        }
    }

    /// The categorical values of an item, as `FIELD=value` names.
    pub fn categorical_names(&self, item: u32) -> impl Iterator<Item = &str> {
        self.row(item)
            .0
            .iter()
            .map(|&f| self.vocab[f as usize].as_str())
            .filter(|n| !n.starts_with("text:"))
    }

    /// The normalised sum of the vectors of `items` (a user's taste in
    /// metadata space), as a dense vector over the vocabulary.
    pub fn profile(&self, items: &[u32]) -> Vec<f32> {
        let mut p = vec![0f32; self.vocab.len()];
        for &i in items {
            let (fs, vs) = self.row(i);
            for (&f, &v) in fs.iter().zip(vs) {
                p[f as usize] += v;
            }
        }
        let norm = p.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            p.iter_mut().for_each(|x| *x /= norm);
        }
        p
    }

    /// Cosine between an item and a profile.
    pub fn similarity(&self, item: u32, profile: &[f32]) -> f32 {
        let (fs, vs) = self.row(item);
        fs.iter()
            .zip(vs)
            .map(|(&f, &v)| v * profile[f as usize])
            .sum()
    }

    pub fn save(&self, w: &mut ArtifactWriter) {
        w.strings("features.vocab", &self.vocab);
        w.f32s("features.weight", &self.weight);
        w.u32s("features.offsets", &self.offsets);
        w.u32s("features.features", &self.features);
        w.f32s("features.values", &self.values);
        w.i64s("features.created", &self.created);
    }

    /// Loads features if the artifact has them.
    pub fn load(r: &ArtifactReader) -> Result<Option<ItemFeatures>, ArtifactError> {
        if !r.has("features.vocab") {
            return Ok(None);
        }
        let vocab = r.strings("features.vocab")?;
        let index = vocab
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        Ok(Some(ItemFeatures {
            vocab,
            index,
            weight: r.f32s("features.weight")?,
            offsets: r.u32s("features.offsets")?,
            features: r.u32s("features.features")?,
            values: r.f32s("features.values")?,
            created: r.i64s("features.created")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cats: &[(&str, &str)], text: &str) -> Option<ItemRecord> {
        Some(ItemRecord {
            categorical: cats
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            text: Some(text.to_string()),
            created: None,
        })
    }

    #[test]
    fn similar_metadata_gives_similar_vectors() {
        let f = ItemFeatures::build(&[
            rec(&[("GENRE", "Comedy")], "A funny space adventure"),
            rec(&[("GENRE", "Comedy")], "Funny family holiday"),
            rec(&[("GENRE", "Horror")], "A dark space station"),
            None,
        ]);
        assert_eq!(f.len(), 4);
        let p = f.profile(&[0]);
        assert!(f.similarity(1, &p) > f.similarity(2, &p));
        assert_eq!(f.similarity(3, &p), 0.0, "no metadata, no similarity");
        // A new item is placed in the same space.
        let mut g = f.clone();
        g.push_item(rec(&[("GENRE", "Comedy")], "funny").as_ref());
        assert!(g.similarity(4, &p) > 0.5);
        assert_eq!(f.categorical_names(0).collect::<Vec<_>>(), ["GENRE=Comedy"]);
    }

    #[test]
    fn tokenizer_lowercases_and_drops_stop_words() {
        let words: Vec<String> = tokenize("The Good, the Bad & the Ugly (1966)").collect();
        assert_eq!(words, ["good", "bad", "ugly", "1966"]);
    }
}
