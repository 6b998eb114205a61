//! `sims`: related items from co-occurrence in user histories. For items i
//! and j seen together by co(i, j) users, sim(i, j) = co / (pop(i)·pop(j))^β
//! with β the `popularity_discount_factor` (0: raw counts, 0.5: cosine,
//! 1: lift). Pairs seen together fewer than `min_cointeraction_count` times
//! are dropped; only each user's most recent `max_history_length` items count,
//! so a few very long histories do not dominate. Popular items fill in when
//! an item has too few neighbours. For a user, scores of the items in their
//! history are summed (item-based kNN).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Histories, Model, Recipe, TrainingData};
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::spec::SpecProblem;

/// Settings of `sims`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimsSpec {
    /// 0 to 1: how much popular items are discounted (default 0.5).
    #[serde(default = "default_discount")]
    pub popularity_discount_factor: f32,
    /// Pairs seen together by fewer users are ignored (default 3).
    #[serde(default = "default_min_co")]
    pub min_cointeraction_count: u32,
    /// Only each user's most recent this many items count (default 200).
    #[serde(default = "default_history")]
    pub max_history_length: usize,
    /// Neighbours kept per item (default 100).
    #[serde(default = "default_neighbors")]
    pub neighbors: usize,
}

fn default_discount() -> f32 {
    0.5
}
fn default_min_co() -> u32 {
    3
}
fn default_history() -> usize {
    200
}
fn default_neighbors() -> usize {
    100
}

impl Default for SimsSpec {
    fn default() -> Self {
        Self {
            popularity_discount_factor: default_discount(),
            min_cointeraction_count: default_min_co(),
            max_history_length: default_history(),
            neighbors: default_neighbors(),
        }
    }
}

impl SimsSpec {
    pub fn validate(&self, at: &str) -> Vec<SpecProblem> {
        let mut p = Vec::new();
        if !(0.0..=1.0).contains(&self.popularity_discount_factor) {
            p.push(SpecProblem::new(
                format!("{at}.popularity_discount_factor"),
                "must be between 0 and 1",
            ));
        }
        if self.max_history_length == 0 || self.neighbors == 0 {
            p.push(SpecProblem::new(
                at,
                "max_history_length and neighbors must be at least 1",
            ));
        }
        p
    }
}

/// Each user's distinct recent items (latest last), capped.
pub(crate) fn recent_distinct(
    h: &Histories,
    users: usize,
    cap: usize,
    keep: impl Fn(u32, u32) -> bool + Sync,
) -> Vec<Vec<u32>> {
    (0..users as u32)
        .into_par_iter()
        .map(|u| {
            let mut seen = std::collections::HashSet::new();
            let mut out: Vec<u32> = h
                .of(u)
                .iter()
                .rev()
                .filter(|&&i| keep(u, i) && seen.insert(i))
                .take(cap)
                .copied()
                .collect();
            out.reverse();
            out
        })
        .collect()
}

impl Recipe for SimsSpec {
    fn train(&self, data: &TrainingData) -> anyhow::Result<Box<dyn Model>> {
        Ok(Box::new(self.train_model(data)))
    }
}

impl SimsSpec {
    /// The trained neighbour lists, for `sims` and for recipes built on it.
    pub fn train_model(&self, data: &TrainingData) -> SimsModel {
        let n_items = data.interactions.items.len();
        let m = &data.matrix;
        let kept = |u: u32, i: u32| m.row(u as usize).0.binary_search(&i).is_ok();
        let histories = recent_distinct(&data.histories, m.rows, self.max_history_length, kept);
        // item → users who have it in their capped history
        let mut users_of: Vec<Vec<u32>> = vec![Vec::new(); n_items];
        for (u, items) in histories.iter().enumerate() {
            for &i in items {
                users_of[i as usize].push(u as u32);
            }
        }
        let pop: Vec<f32> = users_of.iter().map(|u| u.len() as f32).collect();
        let beta = self.popularity_discount_factor;
        let min_co = self.min_cointeraction_count.max(1);
        let k = self.neighbors;
        let neighbours: Vec<Vec<(u32, f32)>> = (0..n_items)
            .into_par_iter()
            .map_init(
                || (vec![0u32; n_items], Vec::<u32>::new()),
                |(counts, touched), i| {
                    for &u in &users_of[i] {
                        for &j in &histories[u as usize] {
                            if counts[j as usize] == 0 {
                                touched.push(j);
                            }
                            counts[j as usize] += 1;
                        }
                    }
                    let mut out: Vec<(u32, f32)> = touched
                        .iter()
                        .filter(|&&j| j as usize != i && counts[j as usize] >= min_co)
                        .map(|&j| {
                            let co = counts[j as usize] as f32;
                            (j, co / (pop[i] * pop[j as usize]).powf(beta))
                        })
                        .collect();
                    for &j in touched.iter() {
                        counts[j as usize] = 0;
                    }
                    touched.clear();
                    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    out.truncate(k);
                    out
                },
            )
            .collect();
        SimsModel::new(neighbours, &pop)
    }
}

pub struct SimsModel {
    offsets: Vec<u32>,
    neighbors: Vec<u32>,
    scores: Vec<f32>,
    /// Tiny popularity scores that fill in after the neighbours.
    fallback: Vec<f32>,
}

/// Fallback scores stay below any neighbour's score.
const FALLBACK_SCALE: f32 = 1e-6;

impl SimsModel {
    pub fn new(neighbours: Vec<Vec<(u32, f32)>>, popularity: &[f32]) -> SimsModel {
        let mut offsets = vec![0u32];
        let (mut neighbors, mut scores) = (Vec::new(), Vec::new());
        for list in neighbours {
            for (j, s) in list {
                neighbors.push(j);
                scores.push(s);
            }
            offsets.push(neighbors.len() as u32);
        }
        let max = popularity.iter().copied().fold(0.0f32, f32::max).max(1.0);
        let fallback = popularity
            .iter()
            .map(|p| FALLBACK_SCALE * p / max)
            .collect();
        SimsModel {
            offsets,
            neighbors,
            scores,
            fallback,
        }
    }

    pub fn load(r: &ArtifactReader) -> Result<SimsModel, ArtifactError> {
        Self::load_prefixed(r, "sims")
    }

    pub fn load_prefixed(r: &ArtifactReader, prefix: &str) -> Result<SimsModel, ArtifactError> {
        Ok(SimsModel {
            offsets: r.u32s(&format!("{prefix}.offsets"))?,
            neighbors: r.u32s(&format!("{prefix}.neighbors"))?,
            scores: r.f32s(&format!("{prefix}.scores"))?,
            fallback: r.f32s(&format!("{prefix}.fallback"))?,
        })
    }

    pub fn save_prefixed(&self, w: &mut ArtifactWriter, prefix: &str) {
        w.u32s(&format!("{prefix}.offsets"), &self.offsets);
        w.u32s(&format!("{prefix}.neighbors"), &self.neighbors);
        w.f32s(&format!("{prefix}.scores"), &self.scores);
        w.f32s(&format!("{prefix}.fallback"), &self.fallback);
    }

    /// The neighbours of an item and their similarities.
    pub fn of(&self, item: u32) -> (&[u32], &[f32]) {
        let i = item as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => (
                &self.neighbors[a as usize..b as usize],
                &self.scores[a as usize..b as usize],
            ),
            _ => (&[], &[]),
        }
    }
}

impl Model for SimsModel {
    fn score_user(&self, _user: Option<u32>, history: &[u32], out: &mut [f32]) {
        out.copy_from_slice(&self.fallback);
        for &h in history.iter().rev().take(default_history()) {
            let (js, ss) = self.of(h);
            for (&j, &s) in js.iter().zip(ss) {
                out[j as usize] += s;
            }
        }
    }

    fn score_related(&self, item: u32, out: &mut [f32]) {
        out.copy_from_slice(&self.fallback);
        let (js, ss) = self.of(item);
        for (&j, &s) in js.iter().zip(ss) {
            out[j as usize] += s;
        }
    }

    fn save(&self, w: &mut ArtifactWriter) {
        self.save_prefixed(w, "sims");
    }
}
