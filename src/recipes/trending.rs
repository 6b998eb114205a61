//! `trending-now`: items whose interactions grow fastest. With c₁ the
//! interactions in the latest window (ending at the newest interaction) and
//! c₀ those in the window before, the trend is (c₁ − c₀)/√(c₀ + 1): growth
//! measured in the noise of the earlier count, so one item going from 0 to 1
//! does not beat one going from 50 to 120. Items without growth follow, by
//! recent popularity.

use serde::{Deserialize, Serialize};

use super::{Model, Recipe, TrainingData};
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::spec::SpecProblem;

/// Settings of `trending-now`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendingNowSpec {
    /// The trend window: `30m`, `1h`, `3h` (default) or `1d`.
    #[serde(default = "default_window")]
    pub window: String,
}

fn default_window() -> String {
    "3h".into()
}

impl Default for TrendingNowSpec {
    fn default() -> Self {
        Self {
            window: default_window(),
        }
    }
}

impl TrendingNowSpec {
    pub const WINDOWS: &'static [(&'static str, i64)] =
        &[("30m", 1800), ("1h", 3600), ("3h", 10_800), ("1d", 86_400)];

    fn seconds(&self) -> Option<i64> {
        Self::WINDOWS
            .iter()
            .find(|(w, _)| *w == self.window)
            .map(|(_, s)| *s)
    }

    pub fn validate(&self, at: &str) -> Vec<SpecProblem> {
        match self.seconds() {
            Some(_) => Vec::new(),
            None => vec![SpecProblem::new(
                format!("{at}.window"),
                "must be one of 30m, 1h, 3h, 1d",
            )],
        }
    }
}

impl Recipe for TrendingNowSpec {
    fn train(&self, data: &TrainingData) -> anyhow::Result<Box<dyn Model>> {
        let d = data.interactions;
        let w = self.seconds().unwrap_or(10_800);
        let newest = d.timestamp.iter().copied().max().unwrap_or(0);
        let weights = &data.row_weights;
        let mut now = vec![0f32; d.items.len()];
        let mut before = vec![0f32; d.items.len()];
        for r in 0..d.len() {
            let age = newest - d.timestamp[r];
            let i = d.item[r] as usize;
            if age < w {
                now[i] += weights[r];
            } else if age < 2 * w {
                before[i] += weights[r];
            }
        }
        let max_now = now.iter().copied().fold(1.0f32, f32::max);
        let scores = now
            .iter()
            .zip(&before)
            .map(|(&c1, &c0)| {
                let growth = (c1 - c0) / (c0 + 1.0).sqrt();
                // Growing items first (≥ 1), then the rest by recent count (< 1).
                if growth > 0.0 {
                    1.0 + growth
                } else {
                    c1 / (max_now + 1.0)
                }
            })
            .collect();
        Ok(Box::new(TrendingModel { scores }))
    }
}

pub struct TrendingModel {
    scores: Vec<f32>,
}

impl TrendingModel {
    pub fn load(r: &ArtifactReader) -> Result<TrendingModel, ArtifactError> {
        Ok(TrendingModel {
            scores: r.f32s("trending.scores")?,
        })
    }
}

impl Model for TrendingModel {
    fn score_user(&self, _user: Option<u32>, _history: &[u32], out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }

    fn score_related(&self, _item: u32, out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }

    fn save(&self, w: &mut ArtifactWriter) {
        w.f32s("trending.scores", &self.scores);
    }
}
