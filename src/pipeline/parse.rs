//! Strict parsing of pipeline YAML. Every unknown key is an error, and every
//! error carries the YAML path of the value (`steps[2].num_results`).
//!
//! Steps and solutions are tagged by a key (`type:`, `recipe:`) whose value
//! picks the struct the other keys go to. serde's internally tagged enums
//! buffer the map first and lose the path of anything inside it, so the tag is
//! read by hand here and the rest is deserialized into the chosen struct with
//! `serde_path_to_error`. The same split will let templates be rendered before
//! the typed pass.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::orchestration::{
    Catchup, Dur, OnFailureSpec, Orchestration, Overlap, ParamSpec, ParamType, StepDefaults,
};
use super::template;
use super::{PipelineSpec, StepCommon, StepSpec};
use crate::group::{
    CampaignSpec, DatasetSpec, EventTrackerSpec, FilterSpec, GroupSpec, parse_solution,
};
use crate::schema::DatasetType;
use crate::spec::{SpecProblem, from_value, split_tagged, yaml_problem};
use crate::steps::{StepKind, StepType};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    #[serde(default)]
    description: Option<String>,
    dataset_group: String,
    #[serde(default)]
    datasets: BTreeMap<DatasetType, DatasetSpec>,
    #[serde(default)]
    solutions: BTreeMap<String, Value>,
    #[serde(default)]
    campaigns: BTreeMap<String, CampaignSpec>,
    #[serde(default)]
    predictors: BTreeMap<String, crate::forecast::predictor::PredictorSpec>,
    #[serde(default)]
    filters: BTreeMap<String, FilterSpec>,
    #[serde(default)]
    event_tracker: Option<EventTrackerSpec>,
    steps: Vec<Value>,
    // Orchestration (see `Orchestration`), listed here so that errors in
    // them keep their line and column.
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    catchup: Option<Catchup>,
    #[serde(default)]
    max_catchup_runs: Option<u32>,
    #[serde(default)]
    max_active_runs: Option<u32>,
    #[serde(default)]
    overlap: Option<Overlap>,
    #[serde(default)]
    run_timeout: Option<Dur>,
    #[serde(default)]
    max_parallel_steps: Option<u32>,
    #[serde(default)]
    params: BTreeMap<String, ParamSpec>,
    #[serde(default)]
    defaults: StepDefaults,
    #[serde(default)]
    on_failure: Option<OnFailureSpec>,
    #[serde(default)]
    retention: Option<crate::retention::RetentionSpec>,
}

impl RawPipeline {
    fn orchestration(&mut self) -> Orchestration {
        let d = Orchestration::default();
        Orchestration {
            schedule: self.schedule.take(),
            timezone: self.timezone.take().unwrap_or(d.timezone),
            catchup: self.catchup.unwrap_or(d.catchup),
            max_catchup_runs: self.max_catchup_runs.unwrap_or(d.max_catchup_runs),
            max_active_runs: self.max_active_runs.unwrap_or(d.max_active_runs),
            overlap: self.overlap.unwrap_or(d.overlap),
            run_timeout: self.run_timeout,
            max_parallel_steps: self.max_parallel_steps.unwrap_or(d.max_parallel_steps),
            params: std::mem::take(&mut self.params),
            defaults: std::mem::take(&mut self.defaults),
            on_failure: self.on_failure.take(),
            retention: self.retention.take(),
        }
    }
}

/// Parses pipeline YAML into a spec and its dataset group's resources. Structural errors (bad YAML, unknown or
/// mistyped top-level keys) stop at the first; problems inside steps and
/// solutions are all collected.
pub fn parse_pipeline(text: &str) -> Result<(PipelineSpec, GroupSpec), Vec<SpecProblem>> {
    let de = serde_yaml::Deserializer::from_str(text);
    let mut raw: RawPipeline = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        vec![yaml_problem(
            if path == "." { String::new() } else { path },
            &inner,
        )]
    })?;

    let orchestration = raw.orchestration();
    let mut problems = Vec::new();
    let mut solutions = BTreeMap::new();
    for (name, value) in raw.solutions {
        let at = format!("solutions.{name}");
        match parse_solution(value, &at) {
            Ok(solution) => {
                solutions.insert(name, solution);
            }
            Err(p) => problems.extend(p),
        }
    }

    let mut parts = Vec::new();
    for (i, value) in std::mem::take(&mut raw.steps).into_iter().enumerate() {
        let at = format!("steps[{i}]");
        match split_tagged(value, "type", StepCommon::KEYS, &at) {
            Ok((kind, common, rest)) => {
                let common = from_value::<StepCommon>(Value::Mapping(common), &at);
                match (common, StepType::parse(&kind, &at)) {
                    (Ok(common), Ok(kind)) => parts.push((at, kind, common, rest)),
                    (common, kind) => problems.extend(common.err().into_iter().chain(kind.err())),
                }
            }
            Err(p) => problems.push(p),
        }
    }
    let mut steps = Vec::new();
    for (at, kind, common, rest) in &parts {
        let raw_settings = Value::Mapping(rest.clone());
        let templated = template::is_templated(&raw_settings);
        let settings = if templated {
            // Typed checks run on the settings rendered with sample values.
            let ctx = sample_context(&orchestration, &parts, &common.id);
            let found = template::check_variables(&raw_settings, &ctx, at);
            if !found.is_empty() {
                problems.extend(found);
                continue;
            }
            match template::render(&raw_settings, &ctx, at) {
                Ok(Value::Mapping(m)) => m,
                Ok(_) => unreachable!("rendering keeps the shape"),
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            }
        } else {
            rest.clone()
        };
        match StepKind::from_value(*kind, settings, at) {
            Ok(step_kind) => steps.push(StepSpec {
                common: common.clone(),
                kind: step_kind,
                template: templated.then(|| (*kind, rest.clone())),
            }),
            Err(p) => problems.push(crate::spec::suggest_key(p, StepCommon::KEYS)),
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    let pipeline = PipelineSpec {
        name: raw.name,
        description: raw.description,
        steps,
        orchestration,
    };
    let group = GroupSpec {
        dataset_group: raw.dataset_group,
        datasets: raw.datasets,
        solutions,
        campaigns: raw.campaigns,
        predictors: raw.predictors,
        filters: raw.filters,
        event_tracker: raw.event_tracker,
    };
    Ok((pipeline, group))
}

/// The template context validation renders with: sample run variables,
/// each parameter's default (or a value of its type), and sample outputs of
/// the steps this one depends on, directly or not.
fn sample_context(
    orchestration: &Orchestration,
    steps: &[(String, StepType, StepCommon, Mapping)],
    id: &str,
) -> serde_json::Value {
    let params: serde_json::Map<String, serde_json::Value> = orchestration
        .params
        .iter()
        .map(|(name, p)| {
            let sample = p.default.clone().unwrap_or_else(|| match p.ty {
                ParamType::String => "sample".into(),
                ParamType::Integer => 1.into(),
                ParamType::Number => 1.5.into(),
                ParamType::Boolean => true.into(),
            });
            (name.clone(), sample)
        })
        .collect();
    // Ancestors by depth-first search; a cycle is reported by validation.
    let mut outputs = BTreeMap::new();
    let mut stack = vec![id.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(current) = stack.pop() {
        let Some((_, _, common, _)) = steps.iter().find(|(_, _, c, _)| c.id == current) else {
            continue;
        };
        for dep in &common.depends_on {
            if seen.insert(dep.clone()) {
                if let Some((_, kind, _, _)) = steps.iter().find(|(_, _, c, _)| &c.id == dep) {
                    outputs.insert(dep.clone(), kind.sample_outputs());
                }
                stack.push(dep.clone());
            }
        }
    }
    let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").expect("constant");
    template::RunVariables {
        run_id: 1,
        pipeline: "sample".into(),
        logical_date: t,
        data_interval_start: t,
        data_interval_end: t,
        params,
    }
    .context(&outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        parse_pipeline(yaml)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn unknown_top_level_key_names_line_and_key() {
        let p = problems("name: a\ndataset_group: g\nstepz: []\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("unknown field `stepz`"), "{p:?}");
        assert!(p[0].contains("line 3"), "{p:?}");
    }

    #[test]
    fn unknown_step_setting_names_its_yaml_path() {
        let yaml = "name: a\ndataset_group: g\nsteps:\n  - id: one\n    type: deploy\n    campaign: c\n  - id: two\n    type: batch_inference\n    campaign: c\n    input: x.jsonl\n    num_result: 3\n";
        let p = problems(yaml);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("steps[1].num_result: unknown field `num_result`"),
            "{p:?}"
        );
    }

    #[test]
    fn mistyped_step_setting_names_the_nested_path() {
        let yaml = "name: a\ndataset_group: g\nsteps:\n  - id: one\n    type: batch_inference\n    campaign: c\n    input: x\n    num_results: ten\n";
        let p = problems(yaml);
        assert!(
            p[0].starts_with("steps[0].num_results: invalid type: string \"ten\""),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_step_type_lists_the_known_ones() {
        let yaml = "name: a\ndataset_group: g\nsteps:\n  - id: one\n    type: imprt\n";
        let p = problems(yaml);
        assert!(
            p[0].contains("steps[0].type: unknown step type \"imprt\""),
            "{p:?}"
        );
        assert!(
            p[0].contains("import, train, deploy, batch_inference"),
            "{p:?}"
        );
    }

    #[test]
    fn collects_problems_of_every_step() {
        let yaml = "name: a\ndataset_group: g\nsteps:\n  - id: one\n  - type: deploy\n    id: two\n    campaign: 3\n    extra: 1\n";
        let p = problems(yaml);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("steps[0]: missing field `type`"), "{p:?}");
        assert!(
            p[1].starts_with("steps[1].campaign: invalid type: integer `3`"),
            "{p:?}"
        );
    }

    #[test]
    fn common_keys_match_the_struct() {
        let yaml = serde_yaml::to_value(StepCommon::default()).unwrap();
        let keys: Vec<String> = yaml
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, StepCommon::KEYS);
    }
}
