//! The second pass over a parsed pipeline: its dataset group's resources
//! (`crate::group`), the step graph, the orchestration settings, and each
//! step's settings against the group. Pure apart from reading schema files
//! next to the pipeline; nothing here touches object storage or the state
//! store. Every problem is collected.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::PipelineSpec;
use super::graph::StepGraph;
use crate::group::{Group, GroupSpec};
use crate::spec::{SpecProblem, check_resource_name, unknown};

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
/// Checks a parsed pipeline with its dataset group: the group's resources,
/// the step graph, the orchestration settings, and every step's settings
/// against the group. Every problem is reported; a pipeline passes whole.
pub fn validate(
    spec: &PipelineSpec,
    group: GroupSpec,
    base_dir: &Path,
) -> Result<Group, Vec<SpecProblem>> {
    let mut problems = Vec::new();
    if let Err(e) = check_resource_name(&spec.name) {
        problems.push(SpecProblem::new("name", e));
    }
    let (group, group_problems) = Group::check(group, base_dir.to_path_buf());
    problems.extend(group_problems);
    check_step_graph(spec, &mut problems);
    check_orchestration(spec, &mut problems);
    check_on(spec, base_dir, &mut problems);
    for (i, step) in spec.steps.iter().enumerate() {
        problems.extend(step.kind.validate(&format!("steps[{i}]"), &group));
    }
    if problems.is_empty() {
        Ok(group)
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
        && let Err(e) = super::schedule::CronSchedule::parse(expr, &o.timezone)
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
    if o.schedule.is_some() || o.on.is_some() {
        for (name, p) in &o.params {
            if p.default.is_none() {
                problems.push(SpecProblem::new(
                    format!("params.{name}"),
                    if o.schedule.is_some() {
                        "a scheduled pipeline's parameters need defaults (scheduled runs give no values)"
                    } else {
                        "an `on:` triggered pipeline's parameters need defaults (runs started by data give no values)"
                    },
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
    for (key, hook) in [
        ("on_failure", &o.on_failure),
        ("on_sla_miss", &o.on_sla_miss),
    ] {
        if let Some(hook) = hook
            && !(hook.webhook.starts_with("http://") || hook.webhook.starts_with("https://"))
        {
            problems.push(SpecProblem::new(
                format!("{key}.webhook"),
                "must be an http:// or https:// URL",
            ));
        }
    }
    if let Some(Err(e)) = o.retention.as_ref().map(|r| r.check()) {
        let message = e.to_string();
        problems.push(SpecProblem::new(
            "retention",
            message.trim_start_matches("retention: "),
        ));
    }
    let zero = |d: Option<super::orchestration::Dur>| d.is_some_and(|d| d.0.is_zero());
    if zero(o.run_timeout) {
        problems.push(SpecProblem::new("run_timeout", "must be more than 0"));
    }
    if zero(o.sla) {
        problems.push(SpecProblem::new("sla", "must be more than 0"));
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
        if zero(step.common.sla) {
            problems.push(SpecProblem::new(
                format!("steps[{i}].sla"),
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

/// The `on:` trigger: one kind, its settings, a pipeline other than this
/// one, a storage URL that parses.
fn check_on(spec: &PipelineSpec, base_dir: &Path, problems: &mut Vec<SpecProblem>) {
    use super::orchestration::DataTrigger;
    let Some(on) = &spec.orchestration.on else {
        return;
    };
    match on.check() {
        Err(found) => problems.extend(found.into_iter().map(|(key, message)| {
            SpecProblem::new(
                if key.is_empty() {
                    "on".to_string()
                } else {
                    format!("on.{key}")
                },
                message,
            )
        })),
        Ok(DataTrigger::Pipeline { name, .. }) => {
            if name == spec.name {
                problems.push(SpecProblem::new(
                    "on.pipeline",
                    "a pipeline cannot be started by its own runs (each run would start the next)",
                ));
            } else if let Err(e) = check_resource_name(&name) {
                problems.push(SpecProblem::new("on.pipeline", e));
            }
        }
        Ok(DataTrigger::Object { prefix, .. }) => {
            if let Err(e) = crate::storage::StorageUrl::parse(&prefix, base_dir) {
                problems.push(SpecProblem::new("on.object", e.to_string()));
            }
        }
        Ok(DataTrigger::DatasetVersion { .. }) => {}
    }
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
    let ids: Vec<String> = spec.steps.iter().map(|s| s.id().to_string()).collect();
    for (i, step) in spec.steps.iter().enumerate() {
        let mut deps = HashSet::new();
        for (j, dep) in step.common.depends_on.iter().enumerate() {
            let at = format!("steps[{i}].depends_on[{j}]");
            if dep == step.id() {
                problems.push(SpecProblem::new(at, "a step cannot depend on itself"));
            } else if !seen.contains_key(dep.as_str()) {
                problems.push(unknown(&at, "step", dep, ids.iter()));
            } else if !deps.insert(dep) {
                problems.push(SpecProblem::new(at, format!("{dep:?} is listed twice")));
            }
        }
    }
    let graph = StepGraph::new(
        spec.steps
            .iter()
            .map(|s| (s.id(), s.common.depends_on.as_slice())),
    );
    if let Some(cycle) = graph.walk().cycle {
        let ids: Vec<&str> = cycle.iter().map(|&i| graph.id(i)).collect();
        problems.push(SpecProblem::new(
            "steps",
            format!("the steps form a cycle: {}", ids.join(" → ")),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_pipeline;
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let (spec, group) = parse_pipeline(yaml).expect("parses");
        validate(&spec, group, Path::new("."))
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
    fn an_on_trigger_is_checked_and_templates_read_what_it_gives() {
        let ok = "name: p\non: {object: 'in/', pattern: '*.csv'}\nsteps:\n  - {id: a, type: shell, command: 'wc -l {{ trigger.object }} {{ trigger.name }}'}\n";
        let (spec, group) = parse_pipeline(ok).expect("parses");
        validate(&spec, group, Path::new(".")).expect("valid");

        let p = problems(
            "name: p\non: {pipeline: p, status: failed}\nsteps:\n  - {id: a, type: noop}\n",
        );
        assert_eq!(
            p,
            [
                "on.pipeline: a pipeline cannot be started by its own runs (each run would start the next)"
            ]
        );
        let p = problems("name: p\non: {object: 'in'}\nsteps:\n  - {id: a, type: noop}\n");
        assert_eq!(
            p,
            ["on.object: \"in\": an object trigger watches a prefix; end it with `/`"]
        );
        // A variable the trigger does not give is named where it is used.
        let err = parse_pipeline(
            "name: p\non: {dataset_version: g/interactions}\nsteps:\n  - {id: a, type: shell, command: 'echo {{ trigger.object }}'}\n",
        )
        .unwrap_err();
        assert!(
            err[0].to_string().starts_with(
                "steps[0] (a).command: unknown template variable `trigger.object`: keys of `trigger`: dataset, run_id, type, version (line 4"
            ),
            "{}",
            err[0]
        );
    }

    #[test]
    fn rejects_unsafe_names() {
        assert!(check_resource_name("../etc").is_err());
        assert!(check_resource_name("movies-2024_v1").is_ok());
        assert!(check_resource_name("").is_err());
    }
}
