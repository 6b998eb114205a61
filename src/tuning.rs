//! Hyperparameter search and automatic recipe choice. Both decide on a
//! validation split carved from the training rows (the same protocol as the
//! offline metrics, applied again with another seed), so the test users'
//! held-out interactions never influence a choice. Trials run in parallel.

use std::collections::BTreeMap;

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

    /// Trains `recipe` on the validation training rows and scores it: the
    /// metrics, and each validation user's value of `objective` (none for
    /// coverage).
    pub fn score(
        &self,
        recipe: &RecipeSpec,
        events: &EventSettings,
        objective: &str,
    ) -> anyhow::Result<Scored> {
        let part = self.data.subset(&self.train_rows);
        let td = TrainingData::new(&part, events)?;
        let model = SolutionModel::new(recipe.kind(), &td, recipe.recipe().train(&td)?);
        let (metrics, per_user) = eval::evaluate_users(&self.users, self.data.items.len(), |u| {
            model.recommend_indices(u.user, &u.given, 25)
        });
        let per_user = eval::per_user_index(objective)
            .map(|k| per_user.iter().map(|values| values[k]).collect());
        Ok(Scored { metrics, per_user })
    }
}

/// A trained candidate's validation result.
pub struct Scored {
    pub metrics: Metrics,
    /// The objective per validation user, in the split's user order.
    pub per_user: Option<Vec<f64>>,
}

impl Scored {
    fn stderr(&self) -> Option<f64> {
        self.per_user
            .as_deref()
            .map(|v| round4(eval::mean_and_stderr(v).1))
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// One trial of a search, or one candidate of `recipe: auto`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    pub recipe: String,
    pub params: BTreeMap<String, serde_json::Value>,
    /// Validation metrics; absent when the trial failed.
    pub metrics: Option<Metrics>,
    /// Standard error of the objective over the validation users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<f64>,
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
    /// Why `recipe: auto` chose `best`: by how much it beat the reference
    /// candidate, or why the reference was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// Random search over `hpo.parameters` for `recipe`; returns the best
/// recipe settings and the report.
pub fn search(
    recipe: &RecipeSpec,
    hpo: &HpoSpec,
    events: &EventSettings,
    val: &Validation,
) -> anyhow::Result<(RecipeSpec, TuningReport)> {
    search_scored(recipe, hpo, events, val).map(|(spec, report, _)| (spec, report))
}

/// [`search`], with the best trial's per-user objective.
fn search_scored(
    recipe: &RecipeSpec,
    hpo: &HpoSpec,
    events: &EventSettings,
    val: &Validation,
) -> anyhow::Result<(RecipeSpec, TuningReport, Option<Vec<f64>>)> {
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
    let (trials, mut per_user): (Vec<Trial>, Vec<Option<Vec<f64>>>) = draws
        .into_par_iter()
        .map(|params| {
            let result = apply(recipe, &params)
                .map_err(anyhow::Error::msg)
                .and_then(|spec| val.score(&spec, events, &hpo.objective));
            progress.inc(1);
            trial(recipe, params, result)
        })
        .unzip();
    progress.finish();
    let best = best_of(&trials, &hpo.objective)?;
    let spec = apply(recipe, &trials[best].params).map_err(anyhow::Error::msg)?;
    let best_per_user = per_user.swap_remove(best);
    Ok((
        spec,
        TuningReport {
            objective: hpo.objective.clone(),
            trials,
            best,
            decision: None,
        },
        best_per_user,
    ))
}

/// A trial's record, and its per-user objective to compare with.
fn trial(
    recipe: &RecipeSpec,
    params: BTreeMap<String, serde_json::Value>,
    result: anyhow::Result<Scored>,
) -> (Trial, Option<Vec<f64>>) {
    let (metrics, stderr, per_user, error) = match result {
        Ok(scored) => (
            Some(scored.metrics.clone()),
            scored.stderr(),
            scored.per_user,
            None,
        ),
        Err(e) => (None, None, None, Some(format!("{e:#}"))),
    };
    let trial = Trial {
        recipe: recipe.name().to_string(),
        params,
        metrics,
        stderr,
        error,
    };
    (trial, per_user)
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

/// Standard errors by which a candidate must beat the reference to be chosen.
pub const CHOICE_MARGIN_SE: f64 = 2.0;

/// The candidate `recipe: auto` keeps unless another beats it beyond noise:
/// user-personalization with its defaults when listed, else the first.
fn reference(candidates: &[Candidate]) -> usize {
    let default = RecipeSpec::UserPersonalization(Default::default());
    candidates
        .iter()
        .position(|c| c.hpo.is_none() && c.recipe == default)
        .unwrap_or(0)
}

/// Chooses among candidates by the objective on the validation split; each
/// candidate with `hpo` is searched first. All are scored on the same
/// validation users. The best is chosen only when it beats the reference
/// candidate ([`reference`]) by more than [`CHOICE_MARGIN_SE`] standard
/// errors of the paired per-user difference; otherwise the reference is
/// kept, since a near tie on one split is noise, not a better model.
/// Returns the winner and a report with one trial per candidate (its best
/// settings, validation metrics and standard error) and the decision.
pub fn choose(
    candidates: &[Candidate],
    objective: &str,
    events: &EventSettings,
    val: &Validation,
) -> anyhow::Result<(RecipeSpec, TuningReport)> {
    let mut specs = Vec::with_capacity(candidates.len());
    let mut trials = Vec::with_capacity(candidates.len());
    let mut per_user = Vec::with_capacity(candidates.len());
    for c in candidates {
        let (spec, result) = match &c.hpo {
            Some(hpo) => match search_scored(&c.recipe, hpo, events, val) {
                Ok((spec, report, users)) => {
                    let best = &report.trials[report.best];
                    let scored = Scored {
                        metrics: best.metrics.clone().unwrap_or_default(),
                        per_user: users,
                    };
                    (spec, Ok(scored))
                }
                Err(e) => (c.recipe.clone(), Err(e)),
            },
            None => (c.recipe.clone(), val.score(&c.recipe, events, objective)),
        };
        let params = match spec.settings() {
            serde_json::Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        let (t, users) = trial(&spec, params, result);
        specs.push(spec);
        trials.push(t);
        per_user.push(users);
    }
    let top = best_of(&trials, objective)?;
    let reference = reference(candidates);
    let (best, decision) = decide(&trials, &per_user, top, reference, objective);
    let spec = specs.swap_remove(best);
    Ok((
        spec,
        TuningReport {
            objective: objective.to_string(),
            trials,
            best,
            decision: Some(decision),
        },
    ))
}

/// The top candidate, or the reference when the top one's lead is noise.
fn decide(
    trials: &[Trial],
    per_user: &[Option<Vec<f64>>],
    top: usize,
    reference: usize,
    objective: &str,
) -> (usize, String) {
    let name = |i: usize| format!("#{} {}", i + 1, trials[i].recipe);
    if top == reference {
        return (top, format!("{} scored best on {objective}", name(top)));
    }
    if trials[reference].metrics.is_none() {
        return (
            top,
            format!(
                "{} scored best; the reference {} failed",
                name(top),
                name(reference)
            ),
        );
    }
    let (Some(a), Some(b)) = (&per_user[top], &per_user[reference]) else {
        return (
            top,
            format!(
                "{} scored best on {objective} (not a per-user metric, so no test of noise)",
                name(top)
            ),
        );
    };
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (lead, se) = eval::mean_and_stderr(&diffs);
    let margin = format!("{lead:+.4} ± {se:.4} over {} validation users", diffs.len());
    if lead > CHOICE_MARGIN_SE * se {
        (
            top,
            format!(
                "{} beat the reference {} by {margin}",
                name(top),
                name(reference)
            ),
        )
    } else {
        (
            reference,
            format!(
                "kept the reference {}: the best, {}, led by {margin}, within {CHOICE_MARGIN_SE} standard errors",
                name(reference),
                name(top)
            ),
        )
    }
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

    #[test]
    fn auto_keeps_the_reference_unless_another_leads_beyond_noise() {
        let objective = "normalized_discounted_cumulative_gain_at_10";
        let trial = |name: &str, score: f64| Trial {
            recipe: name.into(),
            params: BTreeMap::new(),
            metrics: Some(Metrics::from([(objective.to_string(), score)])),
            stderr: None,
            error: None,
        };
        let trials = [
            trial("next-item", 0.21),
            trial("user-personalization", 0.20),
        ];
        // A lead of 0.01 with per-user differences of ±0.3: noise.
        let noisy: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 0.5 } else { 0.2 })
            .collect();
        let base: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 0.2 } else { 0.48 })
            .collect();
        let per_user = [Some(noisy), Some(base.clone())];
        let (chosen, why) = decide(&trials, &per_user, 0, 1, objective);
        assert_eq!(chosen, 1, "{why}");
        assert!(why.starts_with("kept the reference #2 user-personalization: the best, #1 next-item, led by +0.0100 ± 0.0"), "{why}");
        // The same lead on every user: a real one.
        let better: Vec<f64> = base.iter().map(|x| x + 0.01).collect();
        let per_user = [Some(better), Some(base)];
        let (chosen, why) = decide(&trials, &per_user, 0, 1, objective);
        assert_eq!(chosen, 0, "{why}");
        assert!(why.starts_with("#1 next-item beat the reference #2 user-personalization by +0.0100 ± 0.0000 over 100 validation users"), "{why}");
    }
}
