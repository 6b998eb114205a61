//! The settings that make a pipeline a scheduled job rather than a script:
//! its schedule and catch-up policy, how many runs may overlap, run-level
//! limits, typed parameters, step defaults (retries, timeouts) and the
//! failure webhook. Parsed with the rest of the file; checked by
//! [`super::validate`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

pub use crate::spec::Dur;

/// What to do about schedule times missed while no daemon was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Skip them; wait for the next time.
    #[default]
    None,
    /// One run, for the most recent missed time.
    Latest,
    /// A run for every missed time, the most recent `max_catchup_runs`.
    All,
}

/// What a schedule does when it fires while `max_active_runs` are active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the run as skipped.
    Skip,
    /// Queue it; it starts when an active run ends.
    #[default]
    Queue,
    /// Cancel the active runs and start this one.
    CancelPrevious,
}

/// When a step runs, given how its dependencies ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every dependency succeeded.
    #[default]
    AllSuccess,
    /// Every dependency finished, however it ended.
    AllDone,
    /// At least one dependency failed (or was not run because of a failure):
    /// cleanup and alert steps.
    OneFailed,
}

/// Retry and timeout settings; on a step they override the pipeline's `defaults:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDefaults {
    /// How many times a failed attempt is retried (default 0).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Delay before the first retry (default 30s); doubles with each retry.
    #[serde(default)]
    pub retry_delay: Option<Dur>,
    /// Longest delay between retries (default 10m).
    #[serde(default)]
    pub max_retry_delay: Option<Dur>,
    /// Time limit of one attempt; a slower attempt is stopped and fails.
    #[serde(default)]
    pub timeout: Option<Dur>,
}

/// The retry policy of one step, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub timeout: Option<Duration>,
}

impl RetryPolicy {
    pub fn resolve(step: &StepDefaults, pipeline: &StepDefaults) -> RetryPolicy {
        RetryPolicy {
            retries: step.retries.or(pipeline.retries).unwrap_or(0),
            retry_delay: step
                .retry_delay
                .or(pipeline.retry_delay)
                .map_or(Duration::from_secs(30), |d| d.0),
            max_retry_delay: step
                .max_retry_delay
                .or(pipeline.max_retry_delay)
                .map_or(Duration::from_secs(600), |d| d.0),
            timeout: step.timeout.or(pipeline.timeout).map(|d| d.0),
        }
    }

    /// The delay before retry number `retry` (1 for the first): exponential
    /// from `retry_delay`, capped at `max_retry_delay`, then jittered down by
    /// up to half (`unit` in [0, 1)) so that retries of many steps that failed
    /// together do not hit a recovering service at the same instant.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let base =
            self.retry_delay.as_secs_f64() * 2f64.powi(retry.saturating_sub(1).min(30) as i32);
        let capped = base.min(self.max_retry_delay.as_secs_f64());
        Duration::from_secs_f64(capped * (1.0 - 0.5 * unit.clamp(0.0, 1.0)))
    }
}

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    /// A list of any values (YAML `[de, fr]`); on the command line, JSON
    /// (`'["de","fr"]'`) or comma-separated values (`de,fr`). Mapped steps
    /// run once per element (`for_each: "{{ params.NAME }}"`).
    List,
}

impl ParamType {
    /// Checks a value given as YAML or JSON (from a file or an API body).
    pub fn check(self, value: &serde_json::Value) -> Result<serde_json::Value, String> {
        let ok = match self {
            ParamType::String => value.is_string(),
            ParamType::Integer => value.is_i64() || value.is_u64(),
            ParamType::Number => value.is_number(),
            ParamType::Boolean => value.is_boolean(),
            ParamType::List => value.is_array(),
        };
        if ok {
            Ok(value.clone())
        } else {
            Err(format!("expected {}, found {value}", self.describe()))
        }
    }

    /// Parses a value given as text (`--param k=v`).
    pub fn parse_text(self, text: &str) -> Result<serde_json::Value, String> {
        let value = match self {
            ParamType::String => return Ok(text.into()),
            ParamType::Integer => text.parse::<i64>().ok().map(Into::into),
            ParamType::Number => text.parse::<f64>().ok().map(Into::into),
            ParamType::Boolean => text.parse::<bool>().ok().map(Into::into),
            ParamType::List if text.trim_start().starts_with('[') => {
                return match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(v @ serde_json::Value::Array(_)) => Ok(v),
                    _ => Err(format!(
                        "expected a JSON list (`[\"de\", \"fr\"]`) or comma-separated values, found {text:?}"
                    )),
                };
            }
            ParamType::List => Some(serde_json::Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.to_string().into())
                    .collect(),
            )),
        };
        value.ok_or_else(|| format!("expected {}, found {text:?}", self.describe()))
    }

    fn describe(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "true or false",
            ParamType::List => "a list",
        }
    }

    fn of(value: &serde_json::Value) -> Option<ParamType> {
        match value {
            serde_json::Value::String(_) => Some(ParamType::String),
            serde_json::Value::Bool(_) => Some(ParamType::Boolean),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(ParamType::Integer),
            serde_json::Value::Number(_) => Some(ParamType::Number),
            serde_json::Value::Array(_) => Some(ParamType::List),
            _ => None,
        }
    }
}

/// A run parameter: `NAME: {type: integer, default: 25}`, or just
/// `NAME: 25` (the type is the default's).
#[derive(Debug, Clone, Serialize)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub ty: ParamType,
    pub default: Option<serde_json::Value>,
    pub description: Option<String>,
}

impl<'de> Deserialize<'de> for ParamSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ParamSpec, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            #[serde(rename = "type")]
            ty: Option<ParamType>,
            #[serde(default)]
            default: Option<serde_json::Value>,
            #[serde(default)]
            description: Option<String>,
        }
        let value = serde_json::Value::deserialize(d)?;
        let full = match value {
            serde_json::Value::Object(_) => serde_json::from_value::<Full>(value).map_err(|e| {
                D::Error::custom(format!(
                    "{e} (write `{{type: integer, default: 25}}` or just `25`)"
                ))
            })?,
            scalar => Full {
                ty: None,
                default: Some(scalar),
                description: None,
            },
        };
        let ty = match (full.ty, &full.default) {
            (Some(t), Some(v)) => {
                t.check(v)
                    .map_err(|e| D::Error::custom(format!("default: {e}")))?;
                t
            }
            (Some(t), None) => t,
            (None, Some(v)) => ParamType::of(v).ok_or_else(|| {
                D::Error::custom(
                    "a parameter is a string, an integer, a number, a boolean or a list",
                )
            })?,
            (None, None) => {
                return Err(D::Error::custom(
                    "give the parameter a `type` or a `default`",
                ));
            }
        };
        Ok(ParamSpec {
            ty,
            default: full.default,
            description: full.description,
        })
    }
}

/// `on_failure:` — who hears about a failed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnFailureSpec {
    /// Receives an HTTP POST of the run summary as JSON when a run fails.
    pub webhook: String,
    /// Extra request headers whose values come from environment variables
    /// (`{Authorization: ALERT_WEBHOOK_AUTH}`), so secrets stay out of the file.
    #[serde(default)]
    pub headers_from_env: BTreeMap<String, String>,
}

/// Which ends of the upstream pipeline's runs start a chained run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    #[default]
    Succeeded,
    Failed,
    /// Succeeded, failed or cancelled.
    Finished,
}

impl ChainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainStatus::Succeeded => "succeeded",
            ChainStatus::Failed => "failed",
            ChainStatus::Finished => "finished",
        }
    }
}

/// `on:` — what data starts a run of the pipeline (besides its schedule):
/// exactly one of `dataset_version`, `pipeline` or `object`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnSpec {
    /// `GROUP/DATASET` (e.g. `movies/interactions`): a run per new active
    /// version of the dataset, as imports publish them.
    #[serde(default)]
    pub dataset_version: Option<String>,
    /// A pipeline whose runs, once they end with `status`, start a run of
    /// this one.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// With `pipeline`: `succeeded` (the default), `failed` or `finished`.
    #[serde(default)]
    pub status: Option<ChainStatus>,
    /// A prefix ending in `/` (`s3://bucket/landing/`, `file:///data/in/`,
    /// or a local folder): a run per new object under it.
    #[serde(default)]
    pub object: Option<String>,
    /// With `object`: the objects' names (after the last `/`) to watch,
    /// with `*` and `?` wildcards (default: every object).
    #[serde(default)]
    pub pattern: Option<String>,
    /// With `object`: how often the prefix is listed (default 30s).
    #[serde(default)]
    pub poll_interval: Option<Dur>,
}

/// An `on:` trigger, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum DataTrigger {
    DatasetVersion {
        owner: String,
    },
    Pipeline {
        name: String,
        status: ChainStatus,
    },
    Object {
        prefix: String,
        pattern: Option<String>,
        poll_interval: Duration,
    },
}

impl DataTrigger {
    /// The values `{{ trigger.* }}` has in a run this trigger starts, with
    /// sample values of their types.
    pub fn sample_variables(&self) -> serde_json::Value {
        match self {
            DataTrigger::DatasetVersion { owner } => serde_json::json!({
                "type": "dataset_version", "dataset": owner, "version": 1, "run_id": 1,
            }),
            DataTrigger::Pipeline { name, status } => serde_json::json!({
                "type": "pipeline", "pipeline": name, "run_id": 1, "status": status.as_str(),
            }),
            DataTrigger::Object { prefix, .. } => serde_json::json!({
                "type": "object", "object": format!("{prefix}sample.csv"), "name": "sample.csv",
                "size": 1, "modified": "2026-01-01T00:00:00Z",
            }),
        }
    }
}

impl OnSpec {
    /// The trigger, or every problem with the settings as (key, message).
    pub fn check(&self) -> Result<DataTrigger, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let given: Vec<&str> = [
            ("dataset_version", self.dataset_version.is_some()),
            ("pipeline", self.pipeline.is_some()),
            ("object", self.object.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if given.len() != 1 {
            return Err(vec![(
                "",
                format!(
                    "give exactly one of `dataset_version`, `pipeline` or `object` (found {})",
                    if given.is_empty() {
                        "none".to_string()
                    } else {
                        given.join(", ")
                    }
                ),
            )]);
        }
        if self.status.is_some() && self.pipeline.is_none() {
            problems.push(("status", "applies to a `pipeline` trigger only".into()));
        }
        for (key, set) in [
            ("pattern", self.pattern.is_some()),
            ("poll_interval", self.poll_interval.is_some()),
        ] {
            if set && self.object.is_none() {
                problems.push((key, "applies to an `object` trigger only".into()));
            }
        }
        if self.poll_interval.is_some_and(|d| d.0.is_zero()) {
            problems.push(("poll_interval", "must be more than 0".into()));
        }
        let trigger = if let Some(owner) = &self.dataset_version {
            match owner.split_once('/') {
                Some((g, d)) if !g.is_empty() && !d.is_empty() && !d.contains('/') => {
                    if let Err(e) = crate::schema::DatasetType::try_from(d.to_string()) {
                        problems.push(("dataset_version", e));
                    }
                }
                _ => problems.push((
                    "dataset_version",
                    format!("{owner:?}: write GROUP/DATASET, e.g. movies/interactions"),
                )),
            }
            DataTrigger::DatasetVersion {
                owner: owner.clone(),
            }
        } else if let Some(name) = &self.pipeline {
            DataTrigger::Pipeline {
                name: name.clone(),
                status: self.status.unwrap_or_default(),
            }
        } else {
            let prefix = self.object.clone().unwrap_or_default();
            if !prefix.ends_with('/') {
                problems.push((
                    "object",
                    format!("{prefix:?}: an object trigger watches a prefix; end it with `/`"),
                ));
            }
            DataTrigger::Object {
                prefix,
                pattern: self.pattern.clone(),
                poll_interval: self.poll_interval.map_or(Duration::from_secs(30), |d| d.0),
            }
        };
        if problems.is_empty() {
            Ok(trigger)
        } else {
            Err(problems)
        }
    }
}

/// Whether `name` matches a pattern with `*` (any run of characters) and
/// `?` (one character).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Everything about when and how runs of a pipeline happen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orchestration {
    /// 5-field cron (`30 2 * * *`) or `@hourly`, `@daily`, `@weekly`, `@monthly`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone the schedule is read in (default UTC).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub catchup: Catchup,
    /// With `catchup: all`, at most this many runs for missed times (default 10).
    #[serde(default = "default_max_catchup")]
    pub max_catchup_runs: u32,
    /// Runs of this pipeline that may be active at once (default 1).
    #[serde(default = "default_one")]
    pub max_active_runs: u32,
    /// What a schedule does when it fires while `max_active_runs` are active.
    #[serde(default)]
    pub overlap: Overlap,
    /// Time limit of a whole run; when it passes, running steps are stopped
    /// and the run fails.
    #[serde(default)]
    pub run_timeout: Option<Dur>,
    /// Steps of one run that may run at once (default 4).
    #[serde(default = "default_parallel")]
    pub max_parallel_steps: u32,
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    /// Retry and timeout settings for every step.
    #[serde(default)]
    pub defaults: StepDefaults,
    #[serde(default)]
    pub on_failure: Option<OnFailureSpec>,
    /// How long a run may go on before it is late: past it, the run is
    /// marked as having missed its SLA and `on_sla_miss` hears of it, once.
    /// The run itself goes on.
    #[serde(default)]
    pub sla: Option<Dur>,
    /// Who hears about a run or step past its SLA (same shape as `on_failure`).
    #[serde(default)]
    pub on_sla_miss: Option<OnFailureSpec>,
    /// Runs started by data: a new dataset version, another pipeline's
    /// run ending, a new object.
    #[serde(default)]
    pub on: Option<OnSpec>,
    /// Which old versions and exports `recflow prune` (and, with
    /// `after_run: true`, each successful run) removes.
    #[serde(default)]
    pub retention: Option<crate::retention::RetentionSpec>,
}

impl Default for Orchestration {
    fn default() -> Self {
        Orchestration {
            schedule: None,
            timezone: default_timezone(),
            catchup: Catchup::None,
            max_catchup_runs: default_max_catchup(),
            max_active_runs: 1,
            overlap: Overlap::Queue,
            run_timeout: None,
            max_parallel_steps: default_parallel(),
            params: BTreeMap::new(),
            defaults: StepDefaults::default(),
            on_failure: None,
            sla: None,
            on_sla_miss: None,
            on: None,
            retention: None,
        }
    }
}

impl Orchestration {
    /// The `on:` trigger of a validated pipeline.
    pub fn data_trigger(&self) -> Option<DataTrigger> {
        self.on.as_ref().and_then(|o| o.check().ok())
    }

    /// Parameter values for a run: the defaults, overridden by `given`
    /// (already typed); an unknown name or a missing required value is an error.
    pub fn resolve_params(
        &self,
        given: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let mut out = serde_json::Map::new();
        for (name, value) in given {
            let spec = self.params.get(name).ok_or_else(|| {
                let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                format!(
                    "unknown parameter {name:?} (declared: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )
            })?;
            let value = match value {
                serde_json::Value::String(s) if spec.ty != ParamType::String => {
                    spec.ty.parse_text(s)
                }
                v => spec.ty.check(v),
            }
            .map_err(|e| format!("parameter {name}: {e}"))?;
            out.insert(name.clone(), value);
        }
        for (name, spec) in &self.params {
            if !out.contains_key(name) {
                let default = spec
                    .default
                    .clone()
                    .ok_or_else(|| format!("parameter {name} has no default; give it a value"))?;
                out.insert(name.clone(), default);
            }
        }
        Ok(out)
    }
}

fn default_timezone() -> String {
    "UTC".into()
}
fn default_max_catchup() -> u32 {
    10
}
fn default_one() -> u32 {
    1
}
fn default_parallel() -> u32 {
    4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_up_to_the_cap_with_jitter_below() {
        let p = RetryPolicy {
            retries: 5,
            retry_delay: Duration::from_secs(10),
            max_retry_delay: Duration::from_secs(60),
            timeout: None,
        };
        let d = |n, u| p.delay(n, u).as_secs_f64();
        assert_eq!(
            [d(1, 0.0), d(2, 0.0), d(3, 0.0), d(4, 0.0)],
            [10.0, 20.0, 40.0, 60.0]
        );
        assert_eq!(d(2, 0.999_999).round(), 10.0);
        assert!((5.0..=10.0).contains(&d(1, 0.7)));
    }

    #[test]
    fn wildcards_match_names() {
        for (p, n, want) in [
            ("*.csv", "a.csv", true),
            ("*.csv", "a.csv.tmp", false),
            ("*.csv", ".csv", true),
            ("day-??.csv", "day-01.csv", true),
            ("day-??.csv", "day-1.csv", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ] {
            assert_eq!(wildcard_match(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn an_on_trigger_is_one_of_three_kinds() {
        let on: OnSpec = serde_yaml::from_str("{object: 's3://b/in/', pattern: '*.csv'}").unwrap();
        assert_eq!(
            on.check().unwrap(),
            DataTrigger::Object {
                prefix: "s3://b/in/".into(),
                pattern: Some("*.csv".into()),
                poll_interval: Duration::from_secs(30)
            }
        );
        let on: OnSpec = serde_yaml::from_str("{pipeline: etl}").unwrap();
        assert_eq!(
            on.check().unwrap(),
            DataTrigger::Pipeline {
                name: "etl".into(),
                status: ChainStatus::Succeeded
            }
        );
        let on: OnSpec = serde_yaml::from_str("{pipeline: etl, object: 's3://b/'}").unwrap();
        assert_eq!(
            on.check().unwrap_err()[0].1,
            "give exactly one of `dataset_version`, `pipeline` or `object` (found pipeline, object)"
        );
        let on: OnSpec = serde_yaml::from_str("{dataset_version: movies, pattern: '*'}").unwrap();
        let p = on.check().unwrap_err();
        assert_eq!(
            p[0],
            ("pattern", "applies to an `object` trigger only".into())
        );
        assert!(p[1].1.contains("write GROUP/DATASET"), "{p:?}");
    }

    #[test]
    fn params_are_typed_and_overridable() {
        let o: Orchestration = serde_yaml::from_str(
            "params:\n  n: 25\n  region: {type: string}\n  ratio: {type: number, default: 0.5}\n",
        )
        .unwrap();
        let given = serde_json::json!({"n": "30", "region": "eu"});
        let p = o.resolve_params(given.as_object().unwrap()).unwrap();
        assert_eq!(
            serde_json::Value::Object(p),
            serde_json::json!({"n": 30, "region": "eu", "ratio": 0.5})
        );
        let err = o.resolve_params(
            serde_json::json!({"n": "x", "region": "eu"})
                .as_object()
                .unwrap(),
        );
        assert_eq!(
            err.unwrap_err(),
            "parameter n: expected an integer, found \"x\""
        );
        let err = o.resolve_params(&serde_json::Map::new()).unwrap_err();
        assert_eq!(err, "parameter region has no default; give it a value");
        let err = o.resolve_params(
            serde_json::json!({"nope": 1, "region": "eu"})
                .as_object()
                .unwrap(),
        );
        assert!(err.unwrap_err().starts_with("unknown parameter \"nope\""));
    }

    #[test]
    fn list_params_come_from_yaml_json_or_commas() {
        let o: Orchestration =
            serde_yaml::from_str("params:\n  markets: [de, fr]\n  ids: {type: list}\n").unwrap();
        assert_eq!(o.params["markets"].ty, ParamType::List);
        let given = serde_json::json!({"ids": "[1, 2]"});
        let p = o.resolve_params(given.as_object().unwrap()).unwrap();
        assert_eq!(
            serde_json::Value::Object(p),
            serde_json::json!({"markets": ["de", "fr"], "ids": [1, 2]})
        );
        let given = serde_json::json!({"ids": "a, b,", "markets": ["it"]});
        let p = o.resolve_params(given.as_object().unwrap()).unwrap();
        assert_eq!(p["ids"], serde_json::json!(["a", "b"]));
        assert_eq!(p["markets"], serde_json::json!(["it"]));
        let err = o.resolve_params(serde_json::json!({"ids": "[1"}).as_object().unwrap());
        assert!(
            err.unwrap_err()
                .starts_with("parameter ids: expected a JSON list")
        );
        let err = o.resolve_params(serde_json::json!({"ids": 3}).as_object().unwrap());
        assert_eq!(err.unwrap_err(), "parameter ids: expected a list, found 3");
    }
}
