//! Templating of step settings with run variables (`{{ ds }}`,
//! `{{ params.top_n }}`, `{{ steps.train.outputs.solution_version }}`), by
//! minijinja in strict mode: a variable that does not exist is an error,
//! never an empty string.
//!
//! A step's settings are kept as YAML and rendered for each attempt, then
//! typed. Validation renders them once with sample values of the right types
//! (a parameter's default, `1` for a version number) so the typed checks of
//! every step still run on a templated file, and names any unknown variable.
//! A setting that is one whole expression (`version: "{{ ... }}"`) takes the
//! type of what it renders to, so numbers stay numbers.

use serde_json::{Map, Value as Json, json};
use serde_yaml::Value;

use crate::spec::SpecProblem;

/// Whether any string in `v` holds a template.
pub fn is_templated(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Sequence(items) => items.iter().any(is_templated),
        Value::Mapping(m) => m.values().any(is_templated),
        Value::Tagged(t) => is_templated(&t.value),
        _ => false,
    }
}

/// The most instructions one render may run: a setting's template runs a
/// few dozen; nested loops (`range(1000)` in `range(1000)`) run out.
const FUEL: u64 = 100_000;

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // Rendered values are YAML settings, not HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_keep_trailing_newline(true);
    env
}

/// Renders every templated string in `v` with `ctx`, reporting the first
/// problem at its YAML path below `at`.
pub fn render(v: &Value, ctx: &Json, at: &str) -> Result<Value, SpecProblem> {
    let env = environment();
    let ctx = minijinja::Value::from_serialize(ctx);
    render_with(&env, v, &ctx, at)
}

fn render_with(
    env: &minijinja::Environment<'static>,
    v: &Value,
    ctx: &minijinja::Value,
    at: &str,
) -> Result<Value, SpecProblem> {
    Ok(match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            let out = env
                .render_str(s, ctx)
                .map_err(|e| SpecProblem::new(at, format!("template {s:?}: {}", describe(&e))))?;
            if is_one_expression(s) {
                // `"{{ x }}"` takes the type of what it renders to.
                match serde_yaml::from_str::<Value>(&out) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
                    _ => Value::String(out),
                }
            } else {
                Value::String(out)
            }
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render_with(env, item, ctx, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(m) => {
            let mut out = serde_yaml::Mapping::new();
            for (k, item) in m {
                let key = k.as_str().unwrap_or("?");
                out.insert(
                    k.clone(),
                    render_with(env, item, ctx, &format!("{at}.{key}"))?,
                );
            }
            Value::Mapping(out)
        }
        other => other.clone(),
    })
}

/// The value of a setting that is one whole expression (`"{{ params.markets }}"`),
/// as JSON rather than as text: how `for_each:` reads its list. `None` when
/// `s` is not one whole expression.
pub fn evaluate(s: &str, ctx: &Json) -> Option<Result<Json, String>> {
    if !is_one_expression(s) {
        return None;
    }
    let t = s.trim();
    let env = environment();
    Some(
        env.compile_expression(&t[2..t.len() - 2])
            .and_then(|e| e.eval(ctx))
            .map_err(|e| describe(&e))
            .and_then(|v| {
                // Strict mode fails a template printing an undefined value;
                // an expression's value is checked here.
                if v.is_undefined() {
                    Err(format!(
                        "undefined value: `{}` does not exist",
                        t[2..t.len() - 2].trim()
                    ))
                } else {
                    Ok(v)
                }
            })
            .and_then(|v| serde_json::to_value(&v).map_err(|e| e.to_string())),
    )
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

pub(crate) fn is_one_expression(s: &str) -> bool {
    let t = s.trim();
    t.len() >= 4
        && t.starts_with("{{")
        && t.ends_with("}}")
        && !t[2..t.len() - 2].contains("{{")
        && !t[2..t.len() - 2].contains("}}")
}

/// Every variable the templates in `v` use, dotted
/// (`steps.train.outputs.solution_version`), with the YAML path of its
/// string below `at`; a template that does not parse is a problem.
pub fn variables(v: &Value, at: &str) -> (Vec<(String, String)>, Vec<SpecProblem>) {
    let env = environment();
    // Functions such as `range` are globals, not run variables.
    let globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
    let mut used = Vec::new();
    let mut problems = Vec::new();
    walk_strings(v, at, &mut |s, path| match env.template_from_str(s) {
        Ok(template) => {
            let mut names: Vec<String> = template
                .undeclared_variables(true)
                .into_iter()
                .filter(|n| !globals.contains(&n.split('.').next().unwrap_or(n)))
                .collect();
            names.sort();
            used.extend(names.into_iter().map(|name| (path.to_string(), name)));
        }
        Err(e) => problems.push(SpecProblem::new(
            path,
            format!("template {s:?}: {}", describe(&e)),
        )),
    });
    (used, problems)
}

/// A template variable that `ctx` does not have, as a problem naming it
/// and what is available.
pub fn unknown_variable(ctx: &Json, path: &str, name: &str) -> Option<SpecProblem> {
    resolve(ctx, name)
        .err()
        .map(|why| SpecProblem::new(path, format!("unknown template variable `{name}`: {why}")))
}

/// Every variable the templates in `v` use that `ctx` does not have, as a
/// problem naming it and what is available.
pub fn check_variables(v: &Value, ctx: &Json, at: &str) -> Vec<SpecProblem> {
    let (used, mut problems) = variables(v, at);
    problems.extend(
        used.iter()
            .filter_map(|(path, name)| unknown_variable(ctx, path, name)),
    );
    problems
}

/// Looks a dotted name up in the context; says which part is missing.
fn resolve(ctx: &Json, name: &str) -> Result<(), String> {
    let mut current = ctx;
    let mut so_far = String::new();
    for part in name.split('.') {
        let Json::Object(map) = current else {
            // Below a value that is not a mapping (e.g. a metrics object's
            // entries): the render itself decides.
            return Ok(());
        };
        match map.get(part) {
            Some(next) => current = next,
            None => {
                let mut known: Vec<&str> = map.keys().map(String::as_str).collect();
                known.sort_unstable();
                let scope = if so_far.is_empty() {
                    "variables".to_string()
                } else {
                    format!("keys of `{so_far}`")
                };
                return Err(if known.is_empty() {
                    format!(
                        "`{}` has no {}",
                        if so_far.is_empty() {
                            "the run"
                        } else {
                            &so_far
                        },
                        if so_far == "steps" {
                            "upstream steps (list the step in depends_on)"
                        } else {
                            "entries"
                        }
                    )
                } else {
                    format!("{scope}: {}", known.join(", "))
                });
            }
        }
        if !so_far.is_empty() {
            so_far.push('.');
        }
        so_far.push_str(part);
    }
    Ok(())
}

fn walk_strings(v: &Value, at: &str, f: &mut dyn FnMut(&str, &str)) {
    match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => f(s, at),
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_strings(item, &format!("{at}[{i}]"), f);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m {
                walk_strings(item, &format!("{at}.{}", k.as_str().unwrap_or("?")), f);
            }
        }
        _ => {}
    }
}

/// The run variables of one run.
#[derive(Debug, Clone)]
pub struct RunVariables {
    pub run_id: i64,
    pub pipeline: String,
    /// The time the run is for, in the pipeline's time zone.
    pub logical_date: chrono::DateTime<chrono::FixedOffset>,
    pub data_interval_start: chrono::DateTime<chrono::FixedOffset>,
    pub data_interval_end: chrono::DateTime<chrono::FixedOffset>,
    pub params: Map<String, Json>,
    /// What started the run, for a run an `on:` trigger started
    /// (`{{ trigger.object }}`, `{{ trigger.version }}`); else empty.
    pub trigger: Json,
}

impl RunVariables {
    /// The template context: run variables, and the outputs of the steps
    /// that succeeded so far (`steps.ID.outputs.KEY`).
    pub fn context(&self, outputs: &std::collections::BTreeMap<String, Json>) -> Json {
        let steps: Map<String, Json> = outputs
            .iter()
            .map(|(id, o)| (id.clone(), json!({ "outputs": o })))
            .collect();
        json!({
            "ds": self.logical_date.format("%Y-%m-%d").to_string(),
            "ds_nodash": self.logical_date.format("%Y%m%d").to_string(),
            "logical_date": self.logical_date.to_rfc3339(),
            "data_interval_start": self.data_interval_start.to_rfc3339(),
            "data_interval_end": self.data_interval_end.to_rfc3339(),
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "params": self.params,
            "trigger": self.trigger,
            "steps": steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn ctx() -> Json {
        json!({
            "ds": "2026-03-29", "ds_nodash": "20260329", "run_id": 7, "pipeline": "p",
            "params": {"top_n": 25, "region": "eu"},
            "steps": {"train": {"outputs": {"solution_version": 3, "solution": "s"}}},
        })
    }

    #[test]
    fn renders_strings_and_keeps_whole_expressions_typed() {
        let v = yaml(
            "output: 's3://b/recs/{{ ds_nodash }}/{{ params.region }}/'\nnum_results: '{{ params.top_n }}'\nversion: '{{ steps.train.outputs.solution_version }}'\nname: '{{ params.region }}'\n",
        );
        let out = render(&v, &ctx(), "steps[0]").unwrap();
        assert_eq!(
            out,
            yaml("output: s3://b/recs/20260329/eu/\nnum_results: 25\nversion: 3\nname: eu\n")
        );
    }

    #[test]
    fn unknown_variables_are_errors_not_empty_strings() {
        let v = yaml(
            "output: 's3://b/{{ params.regoin }}/'\nversion: '{{ steps.tran.outputs.solution_version }}'\nx: '{{ dss }}'\n",
        );
        let p: Vec<String> = check_variables(&v, &ctx(), "steps[1]")
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("steps[1].output: unknown template variable `params.regoin`: keys of `params`: region, top_n"), "{p:?}");
        assert!(
            p[1].contains("`steps.tran.outputs.solution_version`: keys of `steps`: train"),
            "{p:?}"
        );
        assert!(
            p[2].contains("`dss`: variables: ds, ds_nodash, params"),
            "{p:?}"
        );
        // And rendering, the last line of defence, fails rather than printing nothing.
        assert!(render(&yaml("x: 'a{{ nope }}b'"), &ctx(), "s").is_err());
    }

    #[test]
    fn syntax_errors_name_the_setting() {
        let p = check_variables(&yaml("output: '{{ ds '"), &ctx(), "steps[2]");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].to_string().starts_with("steps[2].output: template"),
            "{}",
            p[0]
        );
    }
}
