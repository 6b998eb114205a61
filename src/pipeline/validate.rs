//! The second pass over a parsed pipeline: names, references between steps,
//! datasets, solutions and campaigns, the step graph, schemas and URLs. Pure
//! apart from reading schema files next to the pipeline; nothing here touches
//! object storage or the state store. Every problem is collected.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::{PipelineSpec, SolutionRecipe};
use crate::eval::{METRIC_KEYS, is_known_metric};
use crate::filter::Filter;
use crate::schema::{AvroSchema, DatasetType, Schema};
use crate::spec::{SpecProblem, check_resource_name, unknown};

/// What step validators may look at.
pub struct ValidationContext<'a> {
    pub spec: &'a PipelineSpec,
    pub base_dir: &'a Path,
    pub schemas: &'a BTreeMap<DatasetType, Schema>,
    /// The filters that parsed and checked.
    pub filters: &'a BTreeMap<String, Filter>,
}

/// Parses and checks every declared filter against the schemas: the good
/// ones, and a problem for each error (`filters.NAME.expression: at column
/// 34: unknown field Items.GENER (known: ...)`).
pub fn check_filters(
    spec: &PipelineSpec,
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

fn check_step_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid step id {id:?}: use letters, digits and '_', starting with a letter \
             (ids appear in templates such as {{{{ steps.ID.outputs.KEY }}}})"
        ))
    }
}

/// Validates a parsed pipeline; on success returns the checked dataset schemas.
pub fn validate(
    spec: &PipelineSpec,
    base_dir: &Path,
) -> Result<BTreeMap<DatasetType, Schema>, Vec<SpecProblem>> {
    let mut problems = Vec::new();
    let mut name = |path: &str, value: &str| {
        if let Err(e) = check_resource_name(value) {
            problems.push(SpecProblem::new(path, e));
        }
    };
    name("name", &spec.name);
    name("dataset_group", &spec.dataset_group);
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

    check_step_graph(spec, &mut problems);
    check_orchestration(spec, &mut problems);
    let ctx = ValidationContext {
        spec,
        base_dir,
        schemas: &schemas,
        filters: &filters,
    };
    for (i, step) in spec.steps.iter().enumerate() {
        problems.extend(step.kind.validate(&format!("steps[{i}]"), &ctx));
    }

    if problems.is_empty() {
        Ok(schemas)
    } else {
        Err(problems)
    }
}

/// Schedule, time zone, limits, parameters and trigger rules.
fn check_orchestration(spec: &PipelineSpec, problems: &mut Vec<SpecProblem>) {
    let o = &spec.orchestration;
    if o.timezone.parse::<chrono_tz::Tz>().is_err() {
        problems.push(SpecProblem::new(
            "timezone",
            format!(
                "unknown time zone {:?}; use an IANA name such as Europe/Berlin or UTC",
                o.timezone
            ),
        ));
    } else if let Some(expr) = &o.schedule
        && let Err(e) = crate::engine::cron::CronSchedule::parse(expr, &o.timezone)
    {
        problems.push(SpecProblem::new("schedule", e.to_string()));
    }
    for (key, value) in [
        ("max_active_runs", o.max_active_runs),
        ("max_parallel_steps", o.max_parallel_steps),
        ("max_catchup_runs", o.max_catchup_runs),
    ] {
        if value == 0 {
            problems.push(SpecProblem::new(key, "must be at least 1"));
        }
    }
    if o.schedule.is_some() {
        for (name, p) in &o.params {
            if p.default.is_none() {
                problems.push(SpecProblem::new(
                    format!("params.{name}"),
                    "a scheduled pipeline's parameters need defaults (scheduled runs give no values)",
                ));
            }
        }
    }
    for name in o.params.keys() {
        if let Err(e) = check_step_id(name) {
            problems.push(SpecProblem::new(
                format!("params.{name}"),
                e.replace("step id", "parameter name"),
            ));
        }
    }
    if let Some(hook) = &o.on_failure
        && !(hook.webhook.starts_with("http://") || hook.webhook.starts_with("https://"))
    {
        problems.push(SpecProblem::new(
            "on_failure.webhook",
            "must be an http:// or https:// URL",
        ));
    }
    let zero = |d: Option<super::orchestration::Dur>| d.is_some_and(|d| d.0.is_zero());
    if zero(o.run_timeout) {
        problems.push(SpecProblem::new("run_timeout", "must be more than 0"));
    }
    if zero(o.defaults.timeout) {
        problems.push(SpecProblem::new("defaults.timeout", "must be more than 0"));
    }
    for (i, step) in spec.steps.iter().enumerate() {
        if zero(step.common.timeout) {
            problems.push(SpecProblem::new(
                format!("steps[{i}].timeout"),
                "must be more than 0",
            ));
        }
        if step.common.trigger_rule != super::TriggerRule::AllSuccess
            && step.common.depends_on.is_empty()
        {
            problems.push(SpecProblem::new(
                format!("steps[{i}].trigger_rule"),
                "a trigger rule applies to the steps in depends_on; this step has none",
            ));
        }
    }
}

fn check_datasets(
    spec: &PipelineSpec,
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
    spec: &PipelineSpec,
    ty: DatasetType,
    dataset: &crate::pipeline::DatasetSpec,
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
                    "required: the period of the series (hourly, daily, weekly, monthly, quarterly or yearly)",
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

fn check_step_graph(spec: &PipelineSpec, problems: &mut Vec<SpecProblem>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, step) in spec.steps.iter().enumerate() {
        let at = format!("steps[{i}].id");
        if let Err(e) = check_step_id(step.id()) {
            problems.push(SpecProblem::new(&at, e));
        }
        if let Some(first) = seen.insert(step.id(), i) {
            problems.push(SpecProblem::new(
                at,
                format!("duplicate step id {:?} (also steps[{first}])", step.id()),
            ));
        }
    }
    for (i, step) in spec.steps.iter().enumerate() {
        let mut deps = HashSet::new();
        for (j, dep) in step.common.depends_on.iter().enumerate() {
            let at = format!("steps[{i}].depends_on[{j}]");
            if dep == step.id() {
                problems.push(SpecProblem::new(at, "a step cannot depend on itself"));
            } else if !seen.contains_key(dep.as_str()) {
                let ids: Vec<String> = spec.steps.iter().map(|s| s.id().to_string()).collect();
                problems.push(unknown(&at, "step", dep, ids.iter()));
            } else if !deps.insert(dep) {
                problems.push(SpecProblem::new(at, format!("{dep:?} is listed twice")));
            }
        }
    }
    if let Some(cycle) = find_cycle(spec) {
        problems.push(SpecProblem::new(
            "steps",
            format!("the steps form a cycle: {}", cycle.join(" → ")),
        ));
    }
}

/// Depth-first search for a dependency cycle; returns it as a closed path.
fn find_cycle(spec: &PipelineSpec) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id(), i))
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; spec.steps.len()];
    let mut stack: Vec<usize> = Vec::new();

    fn visit(
        i: usize,
        spec: &PipelineSpec,
        index: &HashMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        marks[i] = Mark::Open;
        stack.push(i);
        for dep in &spec.steps[i].common.depends_on {
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            match marks[j] {
                Mark::Open => {
                    let start = stack.iter().position(|&k| k == j).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[start..]
                        .iter()
                        .map(|&k| spec.steps[k].id().to_string())
                        .collect();
                    cycle.push(spec.steps[j].id().to_string());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(j, spec, index, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
        None
    }

    (0..spec.steps.len()).find_map(|i| {
        if marks[i] == Mark::New {
            visit(i, spec, &index, &mut marks, &mut stack)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_pipeline;
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let spec = parse_pipeline(yaml).expect("parses");
        validate(&spec, Path::new("."))
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    const HEAD: &str = "name: p\ndataset_group: g\nsolutions:\n  s:\n    recipe: popularity-count\ncampaigns:\n  c:\n    solution: s\n";

    #[test]
    fn reports_a_cycle_with_its_path() {
        let yaml = format!(
            "{HEAD}steps:\n  - {{id: a, type: deploy, campaign: c, depends_on: [c]}}\n  - {{id: b, type: deploy, campaign: c, depends_on: [a]}}\n  - {{id: c, type: deploy, campaign: c, depends_on: [b]}}\n"
        );
        let p = problems(&yaml);
        assert_eq!(p, ["steps: the steps form a cycle: a → c → b → a"]);
    }

    #[test]
    fn reports_all_reference_problems_together() {
        let yaml = format!(
            "{HEAD}steps:\n  - {{id: a, type: deploy, campaign: nope}}\n  - {{id: a, type: deploy, campaign: c, depends_on: [zz]}}\n  - {{id: t, type: train, solution: missing}}\n"
        );
        let p = problems(&yaml);
        let all = p.join("\n");
        assert!(
            all.contains("steps[0].campaign: unknown campaign \"nope\" (declared: c)"),
            "{all}"
        );
        assert!(
            all.contains("steps[1].id: duplicate step id \"a\" (also steps[0])"),
            "{all}"
        );
        assert!(
            all.contains("steps[1].depends_on[0]: unknown step \"zz\""),
            "{all}"
        );
        assert!(
            all.contains("steps[2].solution: unknown solution \"missing\" (declared: s)"),
            "{all}"
        );
    }

    #[test]
    fn rejects_unsafe_names() {
        assert!(check_resource_name("../etc").is_err());
        assert!(check_resource_name("movies-2024_v1").is_ok());
        assert!(check_resource_name("").is_err());
    }
}
