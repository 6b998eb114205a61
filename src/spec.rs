//! Spec primitives shared by everything users write in YAML: a located
//! problem ([`SpecProblem`], by YAML path and, where known, line and
//! column), strict typed reading of a YAML value with the path of any error
//! ([`from_value`]), and the naming rules of resources. At the bottom of
//! the house: it imports nothing of recflow's. Also [`Dur`], the duration
//! users write (`30s`, `2h`, `PT2H`); [`located`], where each value of a
//! YAML text is, which also refuses too-deep nesting.

pub mod located;

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::{Mapping, Value};

/// A problem in a pipeline file, located by YAML path (`steps[2].num_results`)
/// and, where the parser knows it, by line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    pub path: String,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The id of the list item the path starts in (a step's), shown after
    /// its index: `steps[6] (export).depend_on`.
    pub id: Option<String>,
}

impl SpecProblem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
            id: None,
        }
    }
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)?;
        } else if let (Some(id), Some(end)) = (&self.id, self.path.find(']')) {
            let (item, rest) = self.path.split_at(end + 1);
            write!(f, "{item} ({id}){rest}: {}", self.message)?;
        } else {
            write!(f, "{}: {}", self.path, self.message)?;
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

pub fn from_value<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, SpecProblem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner_path = e.path().to_string();
        let path = if inner_path == "." {
            at.to_string()
        } else {
            format!("{at}.{inner_path}")
        };
        yaml_problem(path, &e.into_inner())
    })
}

/// For an unknown key (`unknown field `depend_on`, expected one of ...`),
/// appends the nearest key it could have been, from the error's own list
/// and from `also` (keys read elsewhere, like a step's common keys):
/// "did you mean `depends_on`?". Other problems are returned as they are.
pub fn suggest_key(mut problem: SpecProblem, also: &[&str]) -> SpecProblem {
    let Some(rest) = problem.message.strip_prefix("unknown field `") else {
        return problem;
    };
    let Some((typed, expected)) = rest.split_once('`') else {
        return problem;
    };
    if problem.message.contains("did you mean") {
        return problem;
    }
    let listed = expected.split('`').skip(1).step_by(2);
    let nearest = listed
        .chain(also.iter().copied())
        .map(|key| (strsim::damerau_levenshtein(typed, key), key))
        .min();
    if let Some((distance, key)) = nearest
        && distance <= (typed.len() / 3).max(2)
    {
        problem.message = format!("{}; did you mean `{key}`?", problem.message);
    }
    problem
}

pub fn yaml_problem(path: String, e: &serde_yaml::Error) -> SpecProblem {
    let mut message = e.to_string();
    let (mut line, mut column) = (None, None);
    if let Some(loc) = e.location() {
        // serde_yaml appends " at line L column C"; keep the message and
        // report the location in our own format.
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
        line = Some(loc.line());
        column = Some(loc.column());
    }
    // serde_yaml prefixes the path it knows ("steps[0]: ..."); the path is ours.
    if !path.is_empty()
        && let Some(stripped) = message.strip_prefix(&format!("{path}: "))
    {
        message = stripped.to_string();
    }
    suggest_key(
        SpecProblem {
            path,
            message,
            line,
            column,
            id: None,
        },
        &[],
    )
}

pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Names of dataset groups, solutions, campaigns and pipelines: they become
/// parts of storage paths and ARNs, so they are kept to a safe alphabet.
pub fn check_resource_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit"
        ))
    }
}

/// Declared names a problem lists; the rest are counted.
const LISTED_NAMES: usize = 20;

/// A reference to something that is not declared, with what is (at most
/// 20 names, the rest counted: a long pipeline's message stays short).
pub fn unknown<'a>(
    path: &str,
    what: &str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> SpecProblem {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let hint = if known.is_empty() {
        format!("no {what} is declared in this file")
    } else if known.len() > LISTED_NAMES {
        format!(
            "declared: {} and {} more",
            known[..LISTED_NAMES].join(", "),
            known.len() - LISTED_NAMES
        )
    } else {
        format!("declared: {}", known.join(", "))
    };
    SpecProblem::new(path, format!("unknown {what} {name:?} ({hint})"))
}

/// Splits a tagged mapping into its tag value, the keys in `common`, and the rest.
pub fn split_tagged(
    value: Value,
    tag: &str,
    common: &[&str],
    at: &str,
) -> Result<(String, Mapping, Mapping), SpecProblem> {
    let Value::Mapping(map) = value else {
        return Err(SpecProblem::new(
            at,
            format!(
                "expected a mapping with `{tag}:`, found {}",
                kind_of(&value)
            ),
        ));
    };
    let mut tag_value = None;
    let mut common_map = Mapping::new();
    let mut rest = Mapping::new();
    for (k, v) in map {
        match k.as_str() {
            Some(key) if key == tag => match v {
                Value::String(s) => tag_value = Some(s),
                other => {
                    return Err(SpecProblem::new(
                        format!("{at}.{tag}"),
                        format!("expected a string, found {}", kind_of(&other)),
                    ));
                }
            },
            Some(key) if common.contains(&key) => {
                common_map.insert(k, v);
            }
            _ => {
                rest.insert(k, v);
            }
        }
    }
    let tag_value =
        tag_value.ok_or_else(|| SpecProblem::new(at, format!("missing field `{tag}`")))?;
    Ok((tag_value, common_map, rest))
}

/// A duration written as `30s`, `10m`, `2h`, `1h 30m` (humantime), or in
/// ISO 8601 (`PT2H`, `P1DT12H`), or a plain number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn parse(text: &str) -> Result<Dur, String> {
        let t = text.trim();
        if t.starts_with('P') {
            return parse_iso8601(t).map(Dur);
        }
        humantime::parse_duration(t).map(Dur).map_err(|e| {
            format!("invalid duration {text:?}: {e} (write e.g. `30s`, `10m`, `2h` or `PT2H`)")
        })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Dur(Duration::from_secs(s))),
            Raw::Text(t) => Dur::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// ISO 8601 durations of days and times: `P1D`, `PT2H`, `PT1H30M`, `PT0.5S`.
/// (Years and months have no fixed length and are rejected.)
fn parse_iso8601(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid ISO 8601 duration {text:?}: {why}");
    let body = text
        .strip_prefix('P')
        .ok_or_else(|| bad("must start with P"))?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut secs = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
        let mut number = String::new();
        let mut allowed = units.iter();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let scale = allowed
                .by_ref()
                .find(|(u, _)| *u == c)
                .map(|(_, s)| *s)
                .ok_or_else(|| bad(&format!("unexpected `{c}`")))?;
            let n: f64 = number.parse().map_err(|_| bad("missing number"))?;
            secs += n * scale;
            any = true;
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad("number without a unit"))
        }
    };
    if date.contains(['Y', 'M']) {
        return Err(bad("years and months have no fixed length; use days"));
    }
    take(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(t) = time {
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    if !any {
        return Err(bad("no amount"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_key_gets_the_nearest_known_one() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Export {
            num_results: u32,
            filter: Option<String>,
        }
        let value: Value = serde_yaml::from_str("{num_result: 3}").unwrap();
        let p = from_value::<Export>(value, "steps[6]").unwrap_err();
        assert_eq!(p.path, "steps[6].num_result");
        assert!(
            p.message.ends_with("; did you mean `num_results`?"),
            "{}",
            p.message
        );
        // Keys read elsewhere count too; nothing near gets no guess.
        let value: Value = serde_yaml::from_str("{num_results: 3, depend_on: [a]}").unwrap();
        let p = from_value::<Export>(value.clone(), "s").unwrap_err();
        assert!(!p.message.contains("did you mean"), "{}", p.message);
        let p = suggest_key(p, &["id", "depends_on", "retries"]);
        assert!(
            p.message.ends_with("did you mean `depends_on`?"),
            "{}",
            p.message
        );
    }

    #[test]
    fn durations_in_both_notations() {
        assert_eq!(Dur::parse("30s").unwrap().0, Duration::from_secs(30));
        assert_eq!(Dur::parse("10m").unwrap().0, Duration::from_secs(600));
        assert_eq!(Dur::parse("2h").unwrap().0, Duration::from_secs(7200));
        assert_eq!(Dur::parse("PT2H").unwrap().0, Duration::from_secs(7200));
        assert_eq!(Dur::parse("PT1H30M").unwrap().0, Duration::from_secs(5400));
        assert_eq!(Dur::parse("P1DT1S").unwrap().0, Duration::from_secs(86_401));
        assert_eq!(Dur::parse("PT0.5S").unwrap().0, Duration::from_millis(500));
        assert!(Dur::parse("P1M").unwrap_err().contains("months"));
        assert!(Dur::parse("PT").is_err());
        assert!(Dur::parse("PT5").is_err());
        assert!(
            Dur::parse("ten minutes")
                .unwrap_err()
                .contains("invalid duration")
        );
    }
}
