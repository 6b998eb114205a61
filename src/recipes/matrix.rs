//! Sparse user × item matrices (compressed rows) and the weighting that turns
//! interactions into them: event-type filters and weights, the event-value
//! threshold, and recency decay. Every recipe trains from this one view, so
//! the same settings mean the same thing for all of them.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Interactions;
use crate::spec::SpecProblem;

/// A sparse matrix in compressed-row form; duplicate entries are summed.
#[derive(Debug, Clone, Default)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds from `(row, col, value)` entries, summing duplicates; columns
    /// within a row are sorted.
    pub fn from_triplets(rows: usize, cols: usize, entries: &[(u32, u32, f32)]) -> Csr {
        Self::build(rows, cols, entries, |a, b| a + b)
    }

    /// Like [`Csr::from_triplets`], keeping the largest of duplicate entries.
    pub fn from_triplets_max(rows: usize, cols: usize, entries: &[(u32, u32, f32)]) -> Csr {
        Self::build(rows, cols, entries, f32::max)
    }

    fn build(
        rows: usize,
        cols: usize,
        entries: &[(u32, u32, f32)],
        merge: impl Fn(f32, f32) -> f32,
    ) -> Csr {
        let mut counts = vec![0usize; rows + 1];
        for &(r, _, _) in entries {
            counts[r as usize + 1] += 1;
        }
        for i in 0..rows {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut cols_of = vec![0u32; entries.len()];
        let mut vals_of = vec![0f32; entries.len()];
        for &(r, c, v) in entries {
            let at = next[r as usize];
            cols_of[at] = c;
            vals_of[at] = v;
            next[r as usize] += 1;
        }
        // Sort each row by column and merge duplicates.
        let mut indptr = Vec::with_capacity(rows + 1);
        let mut indices = Vec::with_capacity(entries.len());
        let mut values = Vec::with_capacity(entries.len());
        indptr.push(0);
        let mut row: Vec<(u32, f32)> = Vec::new();
        for r in 0..rows {
            row.clear();
            row.extend((counts[r]..counts[r + 1]).map(|k| (cols_of[k], vals_of[k])));
            row.sort_unstable_by_key(|e| e.0);
            for &(c, v) in &row {
                if indices.len() > indptr[r] && *indices.last().expect("non-empty") == c {
                    let last = values.last_mut().expect("non-empty");
                    *last = merge(*last, v);
                } else {
                    indices.push(c);
                    values.push(v);
                }
            }
            indptr.push(indices.len());
        }
        Csr {
            rows,
            cols,
            indptr,
            indices,
            values,
        }
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    pub fn row_len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }

    /// The transpose (items × users for a users × items matrix).
    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.cols {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let at = next[c as usize];
                indices[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Csr {
            rows: self.cols,
            cols: self.rows,
            indptr: counts,
            indices,
            values,
        }
    }

    /// The same pattern with every value set to 1.
    pub fn binary(&self) -> Csr {
        Csr {
            values: vec![1.0; self.nnz()],
            ..self.clone()
        }
    }

    /// Number of entries per column.
    pub fn column_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.cols];
        for &c in &self.indices {
            counts[c as usize] += 1;
        }
        counts
    }
}

/// How interactions become training weights; shared by every recipe and
/// written beside `recipe:` in a solution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Use only interactions of these event types (case-insensitive); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Weight per event type, e.g. `{purchase: 4, click: 1}`; unlisted types weigh 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_weights: BTreeMap<String, f32>,
    /// Drop interactions whose EVENT_VALUE is below this (e.g. ratings below 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_value_threshold: Option<f32>,
    /// Halve an interaction's weight for every this many days it is older than
    /// the newest interaction; no decay when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recency_half_life_days: Option<f64>,
}

impl EventSettings {
    /// The YAML keys of these settings (split from a solution's recipe settings).
    pub const KEYS: &'static [&'static str] = &[
        "event_types",
        "event_weights",
        "event_value_threshold",
        "recency_half_life_days",
    ];

    pub fn validate(&self, at: &str) -> Vec<SpecProblem> {
        let mut problems = Vec::new();
        for (t, w) in &self.event_weights {
            if !w.is_finite() || *w < 0.0 {
                problems.push(SpecProblem::new(
                    format!("{at}.event_weights.{t}"),
                    "must be a number ≥ 0",
                ));
            }
        }
        if self
            .recency_half_life_days
            .is_some_and(|d| d <= 0.0 || !d.is_finite())
        {
            problems.push(SpecProblem::new(
                format!("{at}.recency_half_life_days"),
                "must be a number of days > 0",
            ));
        }
        problems
    }

    /// The weight of each interaction row; 0 drops it.
    pub fn row_weights(&self, data: &Interactions) -> anyhow::Result<Vec<f32>> {
        let type_weight: Option<Vec<f32>> = data.event_type.as_ref().map(|_| {
            data.event_types
                .ids()
                .iter()
                .map(|t| {
                    let listed = self.event_types.is_empty()
                        || self.event_types.iter().any(|e| e.eq_ignore_ascii_case(t));
                    if !listed {
                        return 0.0;
                    }
                    self.event_weights
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(t))
                        .map_or(1.0, |(_, w)| *w)
                })
                .collect()
        });
        if !self.event_types.is_empty() && data.event_type.is_none() {
            anyhow::bail!("event_types is set, but the interactions have no EVENT_TYPE column");
        }
        if self.event_value_threshold.is_some() && data.event_value.is_none() {
            anyhow::bail!(
                "event_value_threshold is set, but the interactions have no EVENT_VALUE column"
            );
        }
        let newest = data.timestamp.iter().copied().max().unwrap_or(0);
        let decay = self
            .recency_half_life_days
            .map(|d| std::f64::consts::LN_2 / (d * 86_400.0));
        let weights: Vec<f32> = (0..data.len())
            .into_par_iter()
            .map(|r| {
                let mut w = match (&type_weight, &data.event_type) {
                    (Some(tw), Some(types)) => tw[types[r] as usize],
                    _ => 1.0,
                };
                if let (Some(t), Some(values)) = (self.event_value_threshold, &data.event_value)
                    && !(values[r] >= t)
                {
                    w = 0.0;
                }
                if let Some(rate) = decay {
                    w *= (-(rate * (newest - data.timestamp[r]) as f64)).exp() as f32;
                }
                w
            })
            .collect();
        if weights.iter().all(|&w| w == 0.0) {
            anyhow::bail!(
                "no interaction is left after event_types / event_value_threshold (the data has event types: {})",
                data.event_types
                    .ids()
                    .iter()
                    .filter(|t| !t.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(weights)
    }

    /// The users × items matrix of summed weights.
    pub fn matrix(&self, data: &Interactions) -> anyhow::Result<Csr> {
        let weights = self.row_weights(data)?;
        let entries: Vec<(u32, u32, f32)> = (0..data.len())
            .filter(|&r| weights[r] > 0.0)
            .map(|r| (data.user[r], data.item[r], weights[r]))
            .collect();
        Ok(Csr::from_triplets(
            data.users.len(),
            data.items.len(),
            &entries,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_sum_duplicates_and_sort_columns() {
        let m = Csr::from_triplets(2, 3, &[(0, 2, 1.0), (0, 0, 1.0), (0, 2, 2.0), (1, 1, 5.0)]);
        assert_eq!(m.row(0), (&[0u32, 2][..], &[1.0f32, 3.0][..]));
        assert_eq!(m.row(1), (&[1u32][..], &[5.0f32][..]));
        let t = m.transpose();
        assert_eq!(t.row(2), (&[0u32][..], &[3.0f32][..]));
        assert_eq!(t.rows, 3);
        assert_eq!(m.column_counts(), [1, 1, 1]);
    }

    #[test]
    fn weights_filter_types_threshold_and_decay() {
        let rows = [
            ("u", "a", 0, Some("click"), Some(5.0)),
            ("u", "b", 86_400, Some("buy"), Some(5.0)),
            ("u", "c", 86_400, Some("view"), Some(1.0)),
            ("v", "a", 86_400, Some("click"), Some(2.0)),
        ];
        let data = Interactions::from_rows(rows.into_iter());
        let s = EventSettings {
            event_types: vec!["click".into(), "BUY".into()],
            event_weights: BTreeMap::from([("buy".to_string(), 4.0)]),
            event_value_threshold: Some(3.0),
            recency_half_life_days: Some(1.0),
        };
        let w = s.row_weights(&data).unwrap();
        assert!((w[0] - 0.5).abs() < 1e-6, "a day old: half weight, {w:?}");
        assert_eq!(w[1], 4.0);
        assert_eq!(w[2], 0.0, "view is not a listed type");
        assert_eq!(w[3], 0.0, "below the value threshold");
    }
}
