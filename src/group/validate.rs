//! The checks of a group's resources: names, the event tracker, datasets
//! and their schemas (read from files next to the pipeline), time series
//! settings, predictors, solutions, campaigns and filters. Pure apart from
//! reading schema files; every problem is collected.

use std::collections::BTreeMap;
use std::path::Path;

use super::{GroupSpec, SolutionRecipe};
use crate::eval::{METRIC_KEYS, is_known_metric};
use crate::filter::Filter;
use crate::schema::{AvroSchema, DatasetType, Schema};
use crate::spec::{SpecProblem, check_resource_name, unknown};

type Checked = (
    BTreeMap<DatasetType, Schema>,
    BTreeMap<String, Filter>,
    Vec<SpecProblem>,
);

pub(super) fn check(spec: &GroupSpec, base_dir: &Path) -> Checked {
    let mut problems = Vec::new();
    let mut name = |path: &str, value: &str| {
        if let Err(e) = check_resource_name(value) {
            problems.push(SpecProblem::new(path, e));
        }
    };
    // Empty when the file names no group (then it declares no resources).
    if !spec.dataset_group.is_empty() {
        name("dataset_group", &spec.dataset_group);
    }
    for s in spec.solutions.keys() {
        name(&format!("solutions.{s}"), s);
    }
    for c in spec.campaigns.keys() {
        name(&format!("campaigns.{c}"), c);
    }
    for p in spec.predictors.keys() {
        name(&format!("predictors.{p}"), p);
    }

    if let Some(t) = &spec.event_tracker {
        let id = &t.tracking_id;
        if id.is_empty()
            || id.len() > 256
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.push(SpecProblem::new(
                "event_tracker.tracking_id",
                "must be 1 to 256 letters, digits, `-` or `_`",
            ));
        }
    }

    let schemas = check_datasets(spec, base_dir, &mut problems);

    for (name, predictor) in &spec.predictors {
        let at = format!("predictors.{name}");
        problems.extend(
            predictor
                .validate(&at)
                .into_iter()
                .map(|(path, message)| SpecProblem::new(path, message)),
        );
        if !spec.datasets.contains_key(&DatasetType::TargetTimeSeries) {
            problems.push(SpecProblem::new(
                at,
                "a predictor needs a target_time_series dataset declared under `datasets:`",
            ));
        }
    }

    for (name, solution) in &spec.solutions {
        let at = format!("solutions.{name}");
        match &solution.recipe {
            SolutionRecipe::One { recipe, hpo } => {
                problems.extend(recipe.validate(&at));
                if let Some(h) = hpo {
                    problems.extend(h.validate(recipe, &format!("{at}.hpo")));
                }
            }
            SolutionRecipe::Auto {
                candidates,
                objective,
            } => {
                if !is_known_metric(objective) {
                    problems.push(SpecProblem::new(
                        format!("{at}.objective"),
                        format!("unknown metric {objective:?}"),
                    ));
                }
                for (i, c) in candidates.iter().enumerate() {
                    let cat = format!("{at}.candidates[{i}]");
                    problems.extend(c.recipe.validate(&cat));
                    if let Some(h) = &c.hpo {
                        problems.extend(h.validate(&c.recipe, &format!("{cat}.hpo")));
                    }
                }
            }
        }
        problems.extend(solution.events.validate(&format!("solutions.{name}")));
    }
    for (name, campaign) in &spec.campaigns {
        let at = format!("campaigns.{name}");
        if !spec.solutions.contains_key(&campaign.solution) {
            problems.push(unknown(
                &format!("{at}.solution"),
                "solution",
                &campaign.solution,
                spec.solutions.keys(),
            ));
        }
        if campaign
            .exploration_weight
            .is_some_and(|w| !(0.0..=1.0).contains(&w))
        {
            problems.push(SpecProblem::new(
                format!("{at}.exploration_weight"),
                "must be between 0 and 1",
            ));
        }
        if !(campaign.exploration_item_age_cutoff > 0.0) {
            problems.push(SpecProblem::new(
                format!("{at}.exploration_item_age_cutoff"),
                "must be a number of days > 0",
            ));
        }
        for metric in campaign.min_metrics.keys() {
            if !is_known_metric(metric) {
                problems.push(SpecProblem::new(
                    format!("{at}.min_metrics.{metric}"),
                    format!("unknown metric; known metrics: {}", METRIC_KEYS.join(", ")),
                ));
            }
        }
    }

    let (filters, filter_problems) = check_filters(spec, &schemas);
    problems.extend(filter_problems);
    (schemas, filters, problems)
}

/// Parses and checks every declared filter against the schemas: the good
/// ones, and a problem for each error (`filters.NAME.expression: at column
/// 34: unknown field Items.GENER (known: ...)`).
pub fn check_filters(
    spec: &GroupSpec,
    schemas: &BTreeMap<DatasetType, Schema>,
) -> (BTreeMap<String, Filter>, Vec<SpecProblem>) {
    let mut good = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, f) in &spec.filters {
        let at = format!("filters.{name}.expression");
        if let Err(e) = check_resource_name(name) {
            problems.push(SpecProblem::new(format!("filters.{name}"), e));
        }
        match Filter::parse(&f.expression) {
            Ok(mut filter) => {
                let errors = filter.check(schemas);
                if errors.is_empty() {
                    good.insert(name.clone(), filter);
                }
                problems.extend(
                    errors
                        .into_iter()
                        .map(|e| SpecProblem::new(&at, e.to_string())),
                );
            }
            Err(e) => problems.push(SpecProblem::new(&at, e.to_string())),
        }
    }
    (good, problems)
}

fn check_datasets(
    spec: &GroupSpec,
    base_dir: &Path,
    problems: &mut Vec<SpecProblem>,
) -> BTreeMap<DatasetType, Schema> {
    let mut schemas = BTreeMap::new();
    for (ty, dataset) in &spec.datasets {
        let at = format!("datasets.{ty}");
        problems.extend(check_series_settings(spec, *ty, dataset, &at));
        let (avro, schema_at) = match (&dataset.schema, &dataset.schema_file) {
            (Some(inline), None) => (inline.clone(), format!("{at}.schema")),
            (None, Some(file)) => {
                let path = base_dir.join(file);
                let at_file = format!("{at}.schema_file");
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(SpecProblem::new(
                            at_file,
                            format!("cannot read {}: {e}", path.display()),
                        ));
                        continue;
                    }
                };
                match serde_json::from_str::<AvroSchema>(&text) {
                    Ok(avro) => (avro, format!("{at_file} ({})", path.display())),
                    Err(e) => {
                        problems.push(SpecProblem::new(
                            at_file,
                            format!("{}: not an Avro record schema: {e}", path.display()),
                        ));
                        continue;
                    }
                }
            }
            (Some(_), Some(_)) => {
                problems.push(SpecProblem::new(
                    at,
                    "give either `schema` or `schema_file`, not both",
                ));
                continue;
            }
            (None, None) => {
                if let Some(schema) = ty.default_schema() {
                    schemas.insert(*ty, schema);
                } else {
                    problems.push(SpecProblem::new(
                        at,
                        "missing `schema` (inline) or `schema_file` (Avro JSON)",
                    ));
                }
                continue;
            }
        };
        match Schema::from_avro(*ty, &avro) {
            Ok(schema) => {
                schemas.insert(*ty, schema);
            }
            Err(errs) => problems.extend(
                errs.into_iter()
                    .map(|e| SpecProblem::new(schema_at.clone(), e)),
            ),
        }
    }
    schemas
}

/// `frequency`, `fill`, `aggregation` and `future_fill` belong to time
/// series datasets; the target needs a frequency and the related series
/// follow it.
fn check_series_settings(
    spec: &GroupSpec,
    ty: DatasetType,
    dataset: &super::DatasetSpec,
    at: &str,
) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let set = [
        ("frequency", dataset.frequency.is_some()),
        ("fill", dataset.fill.is_some()),
        ("aggregation", dataset.aggregation.is_some()),
        ("future_fill", dataset.future_fill.is_some()),
    ];
    if !ty.is_time_series() {
        for (key, _) in set.iter().filter(|(_, on)| *on) {
            problems.push(SpecProblem::new(
                format!("{at}.{key}"),
                format!("only time series datasets (target_time_series, related_time_series) take `{key}`"),
            ));
        }
        return problems;
    }
    let target = spec.datasets.get(&DatasetType::TargetTimeSeries);
    match ty {
        DatasetType::TargetTimeSeries => {
            if dataset.frequency.is_none() {
                problems.push(SpecProblem::new(
                    format!("{at}.frequency"),
                    format!(
                        "required: the period of the series ({})",
                        crate::forecast::frequency::ACCEPTED
                    ),
                ));
            }
            if dataset.future_fill.is_some() {
                problems.push(SpecProblem::new(
                    format!("{at}.future_fill"),
                    "only the related_time_series has future values",
                ));
            }
        }
        _ => match target {
            None => problems.push(SpecProblem::new(
                at,
                "a related_time_series needs a target_time_series in the same file",
            )),
            Some(t) => {
                if let (Some(mine), Some(theirs)) = (dataset.frequency, t.frequency)
                    && mine != theirs
                {
                    problems.push(SpecProblem::new(
                        format!("{at}.frequency"),
                        format!(
                            "{} differs from the target_time_series frequency {}; related series are bucketed into the target's periods, so leave it out",
                            mine.name(),
                            theirs.name()
                        ),
                    ));
                }
            }
        },
    }
    problems
}
