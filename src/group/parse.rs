//! Solutions in a pipeline file: `recipe:` picks the recipe whose struct
//! takes the other keys (see [`crate::spec::split_tagged`]); `recipe: auto`
//! takes candidates; the event settings are shared by every recipe.

use serde_yaml::{Mapping, Value};

use super::{SolutionRecipe, SolutionSpec};
use crate::recipes::{EventSettings, RecipeSpec};
use crate::spec::{SpecProblem, from_value, split_tagged};
use crate::tuning::{Candidate, HpoSpec};

/// Keys of a solution besides `recipe:` and the recipe's own settings.
const SOLUTION_KEYS: &[&str] = &[
    "event_types",
    "event_weights",
    "event_value_threshold",
    "recency_half_life_days",
    "hpo",
];

pub fn parse_solution(value: Value, at: &str) -> Result<SolutionSpec, Vec<SpecProblem>> {
    debug_assert!(
        EventSettings::KEYS
            .iter()
            .all(|k| SOLUTION_KEYS.contains(k))
    );
    let (recipe, mut common, rest) =
        split_tagged(value, "recipe", SOLUTION_KEYS, at).map_err(|p| vec![p])?;
    let hpo = common.remove("hpo");
    let events = from_value::<EventSettings>(Value::Mapping(common), at);
    let choice = if recipe == "auto" {
        if hpo.is_some() {
            return Err(vec![SpecProblem::new(
                format!("{at}.hpo"),
                "with `recipe: auto`, put `hpo:` on a candidate",
            )]);
        }
        parse_auto(rest, at)
    } else {
        let recipe = RecipeSpec::from_value(&recipe, rest, at).map_err(|p| vec![p]);
        let hpo = hpo
            .map(|h| from_value::<HpoSpec>(h, &format!("{at}.hpo")))
            .transpose()
            .map_err(|p| vec![p]);
        match (recipe, hpo) {
            (Ok(recipe), Ok(hpo)) => Ok(SolutionRecipe::One { recipe, hpo }),
            (a, b) => Err(a.err().into_iter().chain(b.err()).flatten().collect()),
        }
    };
    match (choice, events) {
        (Ok(recipe), Ok(events)) => Ok(SolutionSpec { recipe, events }),
        (choice, events) => Err(choice
            .err()
            .into_iter()
            .flatten()
            .chain(events.err())
            .collect()),
    }
}

/// What `recipe: auto` chooses among when no `candidates:` are given, as the
/// managed service's AutoML does: the default user-personalization first (the
/// reference, kept unless another candidate beats it beyond noise), both
/// of its algorithms with a short search of the settings that matter most
/// (Rendle et al. 2022 for iALS: regularisation and confidence), and the
/// simpler recipes that win on some catalogs. Trials are cheap next to the
/// default's training: 13 fits on the validation split in all, measured
/// by `recflow bench recipes` (BENCHMARKS.md).
pub const DEFAULT_CANDIDATES: &str = r#"
- user-personalization
- recipe: user-personalization
  hpo:
    trials: 4
    parameters:
      l2: {type: float, min: 20, max: 3000, log: true}
- recipe: user-personalization
  algorithm: ials
  hpo:
    trials: 6
    parameters:
      regularization: {type: float, min: 0.1, max: 100, log: true}
      alpha: {type: float, min: 0.5, max: 30, log: true}
- sims
- next-item
- popularity-count
"#;

/// `recipe: auto` takes `candidates:` (default [`DEFAULT_CANDIDATES`]) (recipe names, or mappings with
/// `recipe:`, settings and an optional `hpo:`) and an optional `objective:`.
fn parse_auto(mut rest: Mapping, at: &str) -> Result<SolutionRecipe, Vec<SpecProblem>> {
    let objective = match rest.remove("objective") {
        None => crate::tuning::default_objective(),
        Some(v) => from_value::<String>(v, &format!("{at}.objective")).map_err(|p| vec![p])?,
    };
    let list = match rest.remove("candidates") {
        Some(list) => list,
        None => serde_yaml::from_str(DEFAULT_CANDIDATES).expect("the default candidates parse"),
    };
    if let Some((k, _)) = rest.iter().next() {
        let key = k.as_str().unwrap_or("?");
        return Err(vec![SpecProblem::new(
            format!("{at}.{key}"),
            format!("unknown field `{key}`; `recipe: auto` takes `candidates` and `objective`"),
        )]);
    }
    let Value::Sequence(items) = list else {
        return Err(vec![SpecProblem::new(
            format!("{at}.candidates"),
            "expected a list of recipes",
        )]);
    };
    let mut candidates = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let cat = format!("{at}.candidates[{i}]");
        let item = match item {
            Value::String(name) => {
                Value::Mapping(Mapping::from_iter([("recipe".into(), Value::String(name))]))
            }
            other => other,
        };
        let parsed =
            split_tagged(item, "recipe", &["hpo"], &cat).and_then(|(recipe, mut common, rest)| {
                let hpo = common
                    .remove("hpo")
                    .map(|h| from_value::<HpoSpec>(h, &format!("{cat}.hpo")))
                    .transpose()?;
                Ok(Candidate {
                    recipe: RecipeSpec::from_value(&recipe, rest, &cat)?,
                    hpo,
                })
            });
        match parsed {
            Ok(c) => candidates.push(c),
            Err(p) => problems.push(p),
        }
    }
    if candidates.is_empty() && problems.is_empty() {
        problems.push(SpecProblem::new(
            format!("{at}.candidates"),
            "list at least one recipe",
        ));
    }
    if problems.is_empty() {
        Ok(SolutionRecipe::Auto {
            candidates,
            objective,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_without_candidates_takes_the_default_list_with_the_default_first() {
        let value: Value = serde_yaml::from_str("recipe: auto").unwrap();
        let spec = parse_solution(value, "solutions.best").unwrap();
        let SolutionRecipe::Auto { candidates, .. } = spec.recipe else {
            panic!("not auto: {spec:?}");
        };
        let names: Vec<_> = candidates.iter().map(|c| c.recipe.name()).collect();
        assert_eq!(
            names,
            [
                "user-personalization",
                "user-personalization",
                "user-personalization",
                "sims",
                "next-item",
                "popularity-count"
            ]
        );
        assert_eq!(
            candidates[0].recipe,
            RecipeSpec::UserPersonalization(Default::default())
        );
        assert!(candidates[0].hpo.is_none());
        let trials: usize = candidates
            .iter()
            .filter_map(|c| c.hpo.as_ref())
            .map(|h| h.trials)
            .sum();
        assert_eq!(trials, 10);
    }
}
