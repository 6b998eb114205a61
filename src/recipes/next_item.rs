//! `next-item`: session-aware recommendations (the role of the managed
//! service's legacy HRNN family). Sequential rules learn which items follow
//! which within a session — a pair b after a, j − i ≤ `rule_distance` steps
//! apart in one session, counts 1/(j − i) — and a user's most recent events
//! (weighted by how recent they are) pick the next items by those rules. An
//! item-to-item co-occurrence model over the whole history (as in `sims`) is
//! blended in with weight `blend`, so a short session still gets sensible
//! answers. Sessions break after `session_gap_minutes` without an event.
//! Real-time events a server passes in as history move the answer at once.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::sims::{SimsModel, SimsSpec};
use super::{Model, Recipe, TrainingData};
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::spec::SpecProblem;

/// Settings of `next-item`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextItemSpec {
    /// A gap longer than this starts a new session (default 30).
    #[serde(default = "default_gap")]
    pub session_gap_minutes: f64,
    /// Rules link items at most this many events apart (default 5).
    #[serde(default = "default_distance")]
    pub rule_distance: usize,
    /// How many of the latest events drive the answer (default 10).
    #[serde(default = "default_recent")]
    pub recent_events: usize,
    /// Weight of the whole-history co-occurrence model, 0 to 1 (default 0.3).
    #[serde(default = "default_blend")]
    pub blend: f32,
    /// Rules and neighbours kept per item (default 100).
    #[serde(default = "default_neighbors")]
    pub neighbors: usize,
}

fn default_gap() -> f64 {
    30.0
}
fn default_distance() -> usize {
    5
}
fn default_recent() -> usize {
    10
}
fn default_blend() -> f32 {
    0.3
}
fn default_neighbors() -> usize {
    100
}

impl Default for NextItemSpec {
    fn default() -> Self {
        Self {
            session_gap_minutes: default_gap(),
            rule_distance: default_distance(),
            recent_events: default_recent(),
            blend: default_blend(),
            neighbors: default_neighbors(),
        }
    }
}

impl NextItemSpec {
    pub fn validate(&self, at: &str) -> Vec<SpecProblem> {
        let mut p = Vec::new();
        if !(self.session_gap_minutes > 0.0) {
            p.push(SpecProblem::new(
                format!("{at}.session_gap_minutes"),
                "must be > 0",
            ));
        }
        if !(0.0..=1.0).contains(&self.blend) {
            p.push(SpecProblem::new(
                format!("{at}.blend"),
                "must be between 0 and 1",
            ));
        }
        if self.rule_distance == 0 || self.recent_events == 0 || self.neighbors == 0 {
            p.push(SpecProblem::new(
                at,
                "rule_distance, recent_events and neighbors must be at least 1",
            ));
        }
        p
    }
}

impl Recipe for NextItemSpec {
    fn train(&self, data: &TrainingData) -> anyhow::Result<Box<dyn Model>> {
        let d = data.interactions;
        let n_items = d.items.len();
        let gap = (self.session_gap_minutes * 60.0) as i64;
        // Sessions: each user's kept events in time order, split at gaps.
        let mut sessions: Vec<Vec<u32>> = Vec::new();
        for rows in d.rows_by_user() {
            let mut current: Vec<u32> = Vec::new();
            let mut last: Option<i64> = None;
            for r in rows.into_iter().filter(|&r| data.row_weights[r] > 0.0) {
                let t = d.timestamp[r];
                if last.is_some_and(|l| t - l > gap) && !current.is_empty() {
                    sessions.push(std::mem::take(&mut current));
                }
                if current.last() != Some(&d.item[r]) {
                    current.push(d.item[r]);
                }
                last = Some(t);
            }
            if current.len() > 1 {
                sessions.push(current);
            }
        }
        // Pairs (a → b, weight) grouped by a.
        let mut pairs: Vec<(u32, u32, f32)> = sessions
            .par_iter()
            .flat_map_iter(|s| {
                let dist = self.rule_distance;
                (0..s.len()).flat_map(move |i| {
                    (i + 1..s.len().min(i + dist + 1))
                        .filter(move |&j| s[j] != s[i])
                        .map(move |j| (s[i], s[j], 1.0 / (j - i) as f32))
                })
            })
            .collect();
        pairs.par_sort_unstable_by_key(|p| (p.0, p.1));
        let mut rules: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_items];
        for (a, b, w) in pairs {
            let list = &mut rules[a as usize];
            match list.last_mut() {
                Some(last) if last.0 == b => last.1 += w,
                _ => list.push((b, w)),
            }
        }
        rules.par_iter_mut().for_each(|list| {
            // Normalise per source item so busy items do not drown the rest.
            let total: f32 = list.iter().map(|e| e.1).sum();
            list.sort_unstable_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            list.truncate(self.neighbors);
            if total > 0.0 {
                list.iter_mut().for_each(|e| e.1 /= total);
            }
        });
        let rules = SimsModel::new(rules, &vec![0.0; n_items]);
        let knn = SimsSpec {
            neighbors: self.neighbors,
            ..SimsSpec::default()
        }
        .train_model(data);
        Ok(Box::new(NextItemModel {
            rules,
            knn,
            recent: self.recent_events,
            blend: self.blend,
        }))
    }
}

pub struct NextItemModel {
    rules: SimsModel,
    knn: SimsModel,
    recent: usize,
    blend: f32,
}

impl NextItemModel {
    pub fn load(r: &ArtifactReader) -> Result<NextItemModel, ArtifactError> {
        let params = r.f32s("next.params")?;
        let [recent, blend] = params[..] else {
            return Err(ArtifactError::Corrupt {
                file: "model".into(),
                reason: "bad next-item header".into(),
            });
        };
        Ok(NextItemModel {
            rules: SimsModel::load_prefixed(r, "next.rules")?,
            knn: SimsModel::load_prefixed(r, "next.knn")?,
            recent: recent as usize,
            blend,
        })
    }
}

impl Model for NextItemModel {
    fn score_user(&self, user: Option<u32>, history: &[u32], out: &mut [f32]) {
        self.knn.score_user(user, history, out);
        out.iter_mut().for_each(|o| *o *= self.blend);
        for (age, &item) in history.iter().rev().take(self.recent).enumerate() {
            let w = (1.0 - self.blend) / (1.0 + age as f32);
            let (js, ss) = self.rules.of(item);
            for (&j, &s) in js.iter().zip(ss) {
                out[j as usize] += w * s;
            }
        }
    }

    fn score_related(&self, item: u32, out: &mut [f32]) {
        self.score_user(None, &[item], out);
    }

    fn save(&self, w: &mut ArtifactWriter) {
        w.f32s("next.params", &[self.recent as f32, self.blend]);
        self.rules.save_prefixed(w, "next.rules");
        self.knn.save_prefixed(w, "next.knn");
    }
}
