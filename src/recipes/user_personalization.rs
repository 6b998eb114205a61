//! `user-personalization` (and `personalized-ranking`, which re-ranks with the
//! same model): implicit-feedback collaborative filtering.
//!
//! Two algorithms, chosen by measurement (`recflow bench recipes`, see
//! BENCHMARKS.md): EASE is the more accurate on catalogs it can hold — one
//! items × items matrix — and iALS scales to any catalog with memory linear
//! in users and items. `algorithm: auto` (the default) uses EASE up to
//! `ease_max_items` items and iALS beyond.

use serde::{Deserialize, Serialize};

use super::{Model, Recipe, SolutionModel, TrainingData, ease, ials};
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::spec::SpecProblem;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Auto,
    Ease,
    Ials,
}

/// Settings of `user-personalization` and `personalized-ranking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPersonalizationSpec {
    /// `auto` (default), `ease` or `ials`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// `auto` uses EASE up to this many items (default 10,000).
    #[serde(default = "default_ease_max_items")]
    pub ease_max_items: usize,
    /// EASE: L2 regularisation λ (default 250).
    #[serde(default = "default_l2")]
    pub l2: f64,
    /// iALS: latent factors (default 64). Also accepted: `hidden_dimension`.
    #[serde(default = "default_factors", alias = "hidden_dimension")]
    pub factors: usize,
    /// iALS: L2 regularisation (default 1).
    #[serde(default = "default_regularization")]
    pub regularization: f32,
    /// iALS: confidence per unit of interaction weight, c = 1 + α·w (default 1).
    #[serde(default = "default_alpha")]
    pub alpha: f32,
    /// iALS: alternating iterations (default 15).
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    /// iALS: conjugate-gradient steps per solve (default 3).
    #[serde(default = "default_cg_steps")]
    pub cg_steps: usize,
    /// iALS: seed of the initial factors.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_ease_max_items() -> usize {
    10_000
}
fn default_l2() -> f64 {
    250.0
}
fn default_factors() -> usize {
    ials::IalsParams::default().factors
}
fn default_regularization() -> f32 {
    ials::IalsParams::default().regularization
}
fn default_alpha() -> f32 {
    ials::IalsParams::default().alpha
}
fn default_iterations() -> usize {
    ials::IalsParams::default().iterations
}
fn default_cg_steps() -> usize {
    ials::IalsParams::default().cg_steps
}
fn default_seed() -> u64 {
    ials::IalsParams::default().seed
}

impl Default for UserPersonalizationSpec {
    fn default() -> Self {
        serde_yaml::from_str("{}").expect("defaults deserialize")
    }
}

impl UserPersonalizationSpec {
    pub fn validate(&self, at: &str) -> Vec<SpecProblem> {
        let mut p = Vec::new();
        if self.l2 <= 0.0 || !self.l2.is_finite() {
            p.push(SpecProblem::new(format!("{at}.l2"), "must be > 0"));
        }
        if !(1..=1024).contains(&self.factors) {
            p.push(SpecProblem::new(
                format!("{at}.factors"),
                "must be between 1 and 1024",
            ));
        }
        if self.regularization < 0.0 || self.alpha < 0.0 {
            p.push(SpecProblem::new(at, "regularization and alpha must be ≥ 0"));
        }
        if self.iterations == 0 || self.cg_steps == 0 {
            p.push(SpecProblem::new(
                at,
                "iterations and cg_steps must be at least 1",
            ));
        }
        p
    }

    /// The algorithm `auto` resolves to for a catalog of `items` items.
    pub fn resolve(&self, items: usize) -> Algorithm {
        match self.algorithm {
            Algorithm::Auto
                if items <= self.ease_max_items
                    && ease::check_fits(items, crate::memory::available_bytes()).is_ok() =>
            {
                Algorithm::Ease
            }
            Algorithm::Auto => Algorithm::Ials,
            other => other,
        }
    }

    pub fn ials_params(&self) -> ials::IalsParams {
        ials::IalsParams {
            factors: self.factors,
            regularization: self.regularization,
            alpha: self.alpha,
            iterations: self.iterations,
            cg_steps: self.cg_steps,
            seed: self.seed,
        }
    }
}

impl Recipe for UserPersonalizationSpec {
    fn train(&self, data: &TrainingData) -> anyhow::Result<Box<dyn Model>> {
        Ok(match self.resolve(data.matrix.cols) {
            Algorithm::Ease => Box::new(UpModel::Ease(ease::train(&data.matrix, self.l2)?)),
            _ => Box::new(UpModel::Ials(ials::train(
                &data.matrix,
                &self.ials_params(),
            ))),
        })
    }

    fn update(
        &self,
        data: &TrainingData,
        previous: &SolutionModel,
    ) -> anyhow::Result<Box<dyn Model>> {
        let catalog = &data.interactions.items;
        match (self.resolve(data.matrix.cols), previous.model().ials()) {
            (Algorithm::Ials, Some(old)) => {
                let map: Vec<Option<u32>> = catalog
                    .ids()
                    .iter()
                    .map(|id| previous.items.get(id))
                    .collect();
                let iterations = UPDATE_ITERATIONS.min(self.iterations);
                Ok(Box::new(UpModel::Ials(ials::update(
                    &data.matrix,
                    &self.ials_params(),
                    old,
                    &map,
                    iterations,
                ))))
            }
            // EASE is a closed form: its "update" is a retrain.
            _ => self.train(data),
        }
    }
}

/// Alternating iterations of a warm-started iALS update.
const UPDATE_ITERATIONS: usize = 3;

/// The trained model: one of the two algorithms.
pub enum UpModel {
    Ease(ease::EaseModel),
    Ials(ials::IalsModel),
}

impl UpModel {
    pub fn load(r: &ArtifactReader) -> Result<UpModel, ArtifactError> {
        match r.u32s("up.algorithm")?.as_slice() {
            [0] => Ok(UpModel::Ease(ease::EaseModel::load(r)?)),
            [1] => Ok(UpModel::Ials(ials::IalsModel::load(r)?)),
            _ => Err(ArtifactError::Corrupt {
                file: "model".into(),
                reason: "unknown user-personalization algorithm".into(),
            }),
        }
    }

    fn inner(&self) -> &dyn Model {
        match self {
            UpModel::Ease(m) => m,
            UpModel::Ials(m) => m,
        }
    }
}

impl Model for UpModel {
    fn score_user(&self, user: Option<u32>, history: &[u32], out: &mut [f32]) {
        self.inner().score_user(user, history, out)
    }

    fn score_related(&self, item: u32, out: &mut [f32]) {
        self.inner().score_related(item, out)
    }

    fn score_users(
        &self,
        items: &[u32],
        histories: &super::Histories,
        n_items: usize,
        out: &mut [f32],
    ) {
        self.inner().score_users(items, histories, n_items, out)
    }

    fn ials(&self) -> Option<&ials::IalsModel> {
        self.inner().ials()
    }

    fn score_block(&self, users: &[u32], histories: &super::Histories, out: &mut [f32]) {
        self.inner().score_block(users, histories, out)
    }

    fn save(&self, w: &mut ArtifactWriter) {
        w.u32s("up.algorithm", &[matches!(self, UpModel::Ials(_)) as u32]);
        self.inner().save(w)
    }
}
