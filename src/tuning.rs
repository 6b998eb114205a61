//! Hyperparameter search and automatic recipe choice. Both decide on a
//! validation split carved from the training rows (the same protocol as the
//! offline metrics, applied again with another seed), so the test users'
//! held-out interactions never influence a choice. Trials run in parallel.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::{self, METRIC_KEYS, Metrics};
use crate::progress::Progress;
use crate::recipes::{EventSettings, Interactions, RecipeSpec, SolutionModel, TrainingData};
use crate::spec::SpecProblem;

/// `hpo:` on a solution: which settings to search and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpoSpec {
    /// The metric to maximise (default `normalized_discounted_cumulative_gain_at_10`).
    #[serde(default = "default_objective")]
    pub objective: String,
    /// Number of trials (default 20).
    #[serde(default = "default_trials")]
    pub trials: usize,
    /// `random` (default): settings drawn independently from the ranges.
    #[serde(default)]
    pub strategy: Strategy,
    /// Seed of the draws.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The ranges, by recipe setting name.
    pub parameters: BTreeMap<String, ParamRange>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[default]
    Random,
}

/// A range to draw a setting from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ParamRange {
    /// Whole numbers in [min, max]; `log: true` draws uniformly in log space.
    Int {
        min: i64,
        max: i64,
        #[serde(default)]
        log: bool,
    },
    /// Numbers in [min, max]; `log: true` draws uniformly in log space.
    Float {
        min: f64,
        max: f64,
        #[serde(default)]
        log: bool,
    },
    /// One of the listed values.
    Categorical { values: Vec<serde_json::Value> },
}

pub fn default_objective() -> String {
    "normalized_discounted_cumulative_gain_at_10".into()
}
fn default_trials() -> usize {
    20
}
fn default_seed() -> u64 {
    7
}

impl ParamRange {
    fn draw(&self, rng: &mut impl Rng) -> serde_json::Value {
        match self {
            ParamRange::Int { min, max, log } => {
                let v = if *log {
                    let (a, b) = ((*min as f64).ln(), (*max as f64 + 1.0).ln());
                    (rng.random_range(a..b).exp().floor() as i64).clamp(*min, *max)
                } else {
                    rng.random_range(*min..=*max)
                };
                v.into()
            }
            ParamRange::Float { min, max, log } => {
                let v = if *log {
                    rng.random_range(min.ln()..=max.ln()).exp()
                } else {
                    rng.random_range(*min..=*max)
                };
                // Four significant digits keep trial reports readable.
                let digits = 3 - v.abs().log10().floor() as i32;
                let scale = 10f64.powi(digits);
                ((v * scale).round() / scale).into()
            }
            ParamRange::Categorical { values } => values[rng.random_range(0..values.len())].clone(),
        }
    }

    fn check(&self, at: &str) -> Option<SpecProblem> {
        let bad = |m: &str| Some(SpecProblem::new(at, m));
        match self {
            ParamRange::Int { min, max, log } if min > max || (*log && *min < 1) => {
                bad("needs min ≤ max, and min ≥ 1 with log")
            }
            ParamRange::Float { min, max, log } if !(min <= max) || (*log && *min <= 0.0) => {
                bad("needs min ≤ max, and min > 0 with log")
            }
            ParamRange::Categorical { values } if values.is_empty() => {
                bad("needs at least one value")
            }
            _ => None,
        }
    }
}

impl HpoSpec {
    /// Checks ranges, the objective, and that every parameter is a setting of
    /// the recipe (by applying a drawn value to it).
    pub fn validate(&self, recipe: &RecipeSpec, at: &str) -> Vec<SpecProblem> {
        let mut problems = Vec::new();
        if !eval::is_known_metric(&self.objective) {
            problems.push(SpecProblem::new(
                format!("{at}.objective"),
                format!(
                    "unknown metric {:?}; known: {}",
                    self.objective,
                    METRIC_KEYS.join(", ")
                ),
            ));
        }
        if self.trials == 0 || self.trials > 1000 {
            problems.push(SpecProblem::new(
                format!("{at}.trials"),
                "must be between 1 and 1000",
            ));
        }
        if self.parameters.is_empty() {
            problems.push(SpecProblem::new(
                format!("{at}.parameters"),
                "name at least one setting to search",
            ));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        for (name, range) in &self.parameters {
            let pat = format!("{at}.parameters.{name}");
            if let Some(p) = range.check(&pat) {
                problems.push(p);
                continue;
            }
            let one = BTreeMap::from([(name.clone(), range.draw(&mut rng))]);
            if let Err(e) = apply(recipe, &one) {
                problems.push(SpecProblem::new(pat, e));
            }
        }
        problems
    }
}

/// The recipe with some settings replaced; the settings are checked by the
/// recipe's own (strict) deserialisation and validation.
pub fn apply(
    recipe: &RecipeSpec,
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<RecipeSpec, String> {
    let mut settings = recipe.settings();
    let map = settings
        .as_object_mut()
        .ok_or("recipe settings are not a mapping")?;
    for (k, v) in params {
        map.insert(k.clone(), v.clone());
    }
    let yaml: serde_yaml::Value = serde_json::from_value(settings).map_err(|e| e.to_string())?;
    let mapping = match yaml {
        serde_yaml::Value::Mapping(m) => m,
        _ => serde_yaml::Mapping::new(),
    };
    let spec = RecipeSpec::from_value(recipe.name(), mapping, "").map_err(|p| p.message)?;
    let problems = spec.validate("");
    match problems.first() {
        Some(p) => Err(format!("{}: {}", p.path.trim_start_matches('.'), p.message)),
        None => Ok(spec),
    }
}

/// A validation split of training data: rows to train on and users to score.
pub struct Validation<'a> {
    pub data: &'a Interactions,
    pub train_rows: Vec<usize>,
    pub users: Vec<eval::TestUser>,
}

impl<'a> Validation<'a> {
    /// Carves a validation split from `data` (already the training part).
    pub fn carve(data: &'a Interactions) -> Validation<'a> {
        let s = eval::split(data, eval::SPLIT_SEED + 1);
        Validation {
            data,
            train_rows: s.train_rows,
            users: s.test_users,
        }
    }

    /// Trains `recipe` on the validation training rows and scores it.
    pub fn score(&self, recipe: &RecipeSpec, events: &EventSettings) -> anyhow::Result<Metrics> {
        let part = self.data.subset(&self.train_rows);
        let td = TrainingData::new(&part, events)?;
        let model = SolutionModel::new(recipe.kind(), &td, recipe.recipe().train(&td)?);
        Ok(eval::evaluate(&self.users, self.data.items.len(), |u| {
            model.recommend_indices(u.user, &u.given, 25)
        }))
    }
}

/// One trial of a search, or one candidate of `recipe: auto`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    pub recipe: String,
    pub params: BTreeMap<String, serde_json::Value>,
    /// Validation metrics; absent when the trial failed.
    pub metrics: Option<Metrics>,
    pub error: Option<String>,
}

impl Trial {
    fn objective(&self, key: &str) -> f64 {
        self.metrics
            .as_ref()
            .and_then(|m| m.get(key).copied())
            .unwrap_or(f64::NEG_INFINITY)
    }
}

/// What tuning chose, and every trial it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuningReport {
    pub objective: String,
    pub trials: Vec<Trial>,
    /// Index of the chosen trial.
    pub best: usize,
}

/// Random search over `hpo.parameters` for `recipe`; returns the best
/// recipe settings and the report.
pub fn search(
    recipe: &RecipeSpec,
    hpo: &HpoSpec,
    events: &EventSettings,
    val: &Validation,
) -> anyhow::Result<(RecipeSpec, TuningReport)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(hpo.seed);
    let draws: Vec<BTreeMap<String, serde_json::Value>> = (0..hpo.trials)
        .map(|_| {
            hpo.parameters
                .iter()
                .map(|(k, r)| (k.clone(), r.draw(&mut rng)))
                .collect()
        })
        .collect();
    let progress = Progress::count("hyperparameter search", "trials", draws.len() as u64);
    let trials: Vec<Trial> = draws
        .into_par_iter()
        .map(|params| {
            let result = apply(recipe, &params)
                .map_err(anyhow::Error::msg)
                .and_then(|spec| val.score(&spec, events));
            progress.inc(1);
            let (metrics, error) = match result {
                Ok(m) => (Some(m), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            Trial {
                recipe: recipe.name().to_string(),
                params,
                metrics,
                error,
            }
        })
        .collect();
    progress.finish();
    let best = best_of(&trials, &hpo.objective)?;
    let spec = apply(recipe, &trials[best].params).map_err(anyhow::Error::msg)?;
    Ok((
        spec,
        TuningReport {
            objective: hpo.objective.clone(),
            trials,
            best,
        },
    ))
}

fn best_of(trials: &[Trial], objective: &str) -> anyhow::Result<usize> {
    let best = (0..trials.len())
        .filter(|&i| trials[i].metrics.is_some())
        .max_by(|&a, &b| {
            trials[a]
                .objective(objective)
                .total_cmp(&trials[b].objective(objective))
                .then(b.cmp(&a))
        });
    best.ok_or_else(|| {
        let first = trials
            .iter()
            .find_map(|t| t.error.clone())
            .unwrap_or_default();
        anyhow::anyhow!("every trial failed; the first error: {first}")
    })
}

/// A candidate of `recipe: auto`: a recipe with its settings, optionally searched.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub recipe: RecipeSpec,
    pub hpo: Option<HpoSpec>,
}

/// Chooses among candidates by the objective on the validation split; each
/// candidate with `hpo` is searched first. Returns the winner and a report
/// with one trial per candidate (its best settings and validation metrics).
pub fn choose(
    candidates: &[Candidate],
    objective: &str,
    events: &EventSettings,
    val: &Validation,
) -> anyhow::Result<(RecipeSpec, TuningReport)> {
    let searched: Mutex<Vec<Option<TuningReport>>> = Mutex::new(vec![None; candidates.len()]);
    let trials: Vec<Trial> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (spec, metrics, error) = match &c.hpo {
                Some(hpo) => match search(&c.recipe, hpo, events, val) {
                    Ok((spec, report)) => {
                        let m = report.trials[report.best].metrics.clone();
                        searched.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(report);
                        (spec, m, None)
                    }
                    Err(e) => (c.recipe.clone(), None, Some(format!("{e:#}"))),
                },
                None => match val.score(&c.recipe, events) {
                    Ok(m) => (c.recipe.clone(), Some(m), None),
                    Err(e) => (c.recipe.clone(), None, Some(format!("{e:#}"))),
                },
            };
            let params = match spec.settings() {
                serde_json::Value::Object(m) => m.into_iter().collect(),
                _ => BTreeMap::new(),
            };
            Trial {
                recipe: spec.name().to_string(),
                params,
                metrics,
                error,
            }
        })
        .collect();
    let best = best_of(&trials, objective)?;
    let chosen = &trials[best];
    let base = candidates[best].recipe.clone();
    let spec = apply(&base, &chosen.params).map_err(anyhow::Error::msg)?;
    Ok((
        spec,
        TuningReport {
            objective: objective.to_string(),
            trials,
            best,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipes::UserPersonalizationSpec;

    fn up() -> RecipeSpec {
        RecipeSpec::UserPersonalization(UserPersonalizationSpec::default())
    }

    #[test]
    fn draws_stay_in_range_and_log_ranges_cover_decades() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let r = ParamRange::Float {
            min: 0.001,
            max: 10.0,
            log: true,
        };
        let draws: Vec<f64> = (0..200)
            .map(|_| r.draw(&mut rng).as_f64().unwrap())
            .collect();
        assert!(draws.iter().all(|v| (0.001..=10.0).contains(v)));
        assert!(draws.iter().any(|&v| v < 0.01) && draws.iter().any(|&v| v > 1.0));
        let i = ParamRange::Int {
            min: 16,
            max: 128,
            log: true,
        };
        assert!((0..100).all(|_| (16..=128).contains(&i.draw(&mut rng).as_i64().unwrap())));
    }

    #[test]
    fn apply_replaces_settings_and_refuses_unknown_ones() {
        let tuned = apply(
            &up(),
            &BTreeMap::from([("l2".to_string(), serde_json::json!(42.0))]),
        )
        .unwrap();
        match tuned {
            RecipeSpec::UserPersonalization(s) => assert_eq!(s.l2, 42.0),
            other => panic!("{other:?}"),
        }
        let err = apply(
            &up(),
            &BTreeMap::from([("l3".to_string(), serde_json::json!(1))]),
        )
        .unwrap_err();
        assert!(err.contains("unknown field `l3`"), "{err}");
        let err = apply(
            &up(),
            &BTreeMap::from([("factors".to_string(), serde_json::json!(0))]),
        )
        .unwrap_err();
        assert!(err.contains("factors: must be between 1 and 1024"), "{err}");
    }

    #[test]
    fn validation_names_bad_parameters_and_objectives() {
        let hpo: HpoSpec = serde_yaml::from_str(
            "objective: ndcg\nparameters:\n  l3: {type: float, min: 1, max: 2}\n  l2: {type: float, min: 5, max: 1}\n",
        )
        .unwrap();
        let p: Vec<String> = hpo
            .validate(&up(), "solutions.s.hpo")
            .iter()
            .map(|p| p.to_string())
            .collect();
        let all = p.join("\n");
        assert!(
            all.contains("solutions.s.hpo.objective: unknown metric \"ndcg\""),
            "{all}"
        );
        assert!(
            all.contains("solutions.s.hpo.parameters.l3: unknown field `l3`"),
            "{all}"
        );
        assert!(
            all.contains("solutions.s.hpo.parameters.l2: needs min ≤ max"),
            "{all}"
        );
    }
}
