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

/// `recipe: auto` takes `candidates:` (recipe names, or mappings with
/// `recipe:`, settings and an optional `hpo:`) and an optional `objective:`.
fn parse_auto(mut rest: Mapping, at: &str) -> Result<SolutionRecipe, Vec<SpecProblem>> {
    let objective = match rest.remove("objective") {
        None => crate::tuning::default_objective(),
        Some(v) => from_value::<String>(v, &format!("{at}.objective")).map_err(|p| vec![p])?,
    };
    let Some(list) = rest.remove("candidates") else {
        return Err(vec![SpecProblem::new(
            at,
            "`recipe: auto` needs `candidates:`, a list of recipes",
        )]);
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
