//! Mapped steps (`for_each:`, Airflow's dynamic task mapping): a step that
//! runs once per element of a list. The list is written in the file, or is
//! one template expression giving a list (a parameter, an upstream step's
//! output), evaluated once when the step's dependencies are done; each
//! element becomes an instance with its own attempts, retries and log, which
//! sees `{{ item }}` and `{{ map_index }}`. At most [`MAX_INSTANCES`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;

use super::template;

/// The most instances one mapped step may have. Each instance is a row per
/// attempt in the state store and a line in `recflow runs show`; a list
/// longer than this is refused, naming the step, rather than flooding the
/// store. (`recflow bench engine` measures a fan-out of 1,000.)
pub const MAX_INSTANCES: usize = 10_000;

/// `for_each:` — the list a step runs once per element of.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ForEach {
    /// A list written in the file: `for_each: [de, fr, it]`.
    Items(Vec<Json>),
    /// One template expression giving a list, as written:
    /// `for_each: "{{ params.markets }}"`.
    Expression(String),
}

impl<'de> Deserialize<'de> for ForEach {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ForEach, D::Error> {
        use serde::de::Error;
        let hint = "write a list (`for_each: [de, fr]`) or one template giving a list \
                    (`for_each: \"{{ params.markets }}\"`, `\"{{ steps.ID.outputs.json }}\"`)";
        match Json::deserialize(d)? {
            Json::Array(items) if items.len() > MAX_INSTANCES => {
                Err(D::Error::custom(too_many(items.len())))
            }
            Json::Array(items) => Ok(ForEach::Items(items)),
            Json::String(s) if template::is_one_expression(&s) => Ok(ForEach::Expression(s)),
            Json::String(s) => Err(D::Error::custom(format!(
                "{s:?} is not one template expression; {hint}"
            ))),
            other => Err(D::Error::custom(format!("found {other}; {hint}"))),
        }
    }
}

/// Why a list is refused for its length.
fn too_many(n: usize) -> String {
    format!(
        "the list has {} elements; a step runs at most {} instances (split the list, or fan out inside the step)",
        crate::steps::thousands(n as u64),
        crate::steps::thousands(MAX_INSTANCES as u64)
    )
}

impl ForEach {
    /// The elements, the expression evaluated with the run's template
    /// context; an error says what is wrong (not a list, too long, a
    /// template error) for the step's record.
    pub fn items(&self, ctx: &Json) -> Result<Vec<Json>, String> {
        let items = match self {
            ForEach::Items(items) => items.clone(),
            ForEach::Expression(s) => match template::evaluate(s, ctx) {
                Some(Ok(Json::Array(items))) => items,
                Some(Ok(other)) => {
                    return Err(format!(
                        "for_each {s:?} gave {}, not a list",
                        describe(&other)
                    ));
                }
                Some(Err(e)) => return Err(format!("for_each {s:?}: {e}")),
                None => unreachable!("parsing keeps only whole expressions"),
            },
        };
        if items.len() > MAX_INSTANCES {
            return Err(format!("for_each: {}", too_many(items.len())));
        }
        Ok(items)
    }

    /// The template expression, if the list is not written out.
    pub fn expression(&self) -> Option<&str> {
        match self {
            ForEach::Items(_) => None,
            ForEach::Expression(s) => Some(s),
        }
    }
}

fn describe(v: &Json) -> String {
    let text = v.to_string();
    let short: String = text.chars().take(60).collect();
    let kind = match v {
        Json::Null => "nothing",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Object(_) => "a mapping",
        Json::Array(_) => "a list",
    };
    if short.len() < text.len() {
        format!("{kind} ({short}…)")
    } else {
        format!("{kind} ({short})")
    }
}

/// The template context of one instance: the run's, with `item` and
/// `map_index`.
pub fn instance_context(mut ctx: Json, map_index: i64, item: &Json) -> Json {
    if let Json::Object(m) = &mut ctx {
        m.insert("item".into(), item.clone());
        m.insert("map_index".into(), map_index.into());
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(yaml: &str) -> Result<ForEach, String> {
        serde_yaml::from_str::<ForEach>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_list_or_one_expression_and_nothing_else() {
        assert_eq!(
            parse("[de, fr, 3]").unwrap(),
            ForEach::Items(vec![json!("de"), json!("fr"), json!(3)])
        );
        assert_eq!(
            parse("'{{ params.markets }}'").unwrap(),
            ForEach::Expression("{{ params.markets }}".into())
        );
        let e = parse("'markets: {{ params.markets }}'").unwrap_err();
        assert!(
            e.contains("is not one template expression; write a list"),
            "{e}"
        );
        let e = parse("de").unwrap_err();
        assert!(e.contains("\"de\" is not one template expression"), "{e}");
        let e = parse("{a: 1}").unwrap_err();
        assert!(e.starts_with("found {\"a\":1}; write a list"), "{e}");
        let long = format!("[{}]", vec!["1"; MAX_INSTANCES + 1].join(","));
        let e = parse(&long).unwrap_err();
        assert!(
            e.contains("the list has 10,001 elements; a step runs at most 10,000 instances"),
            "{e}"
        );
    }

    #[test]
    fn expressions_give_the_list_of_params_or_upstream_outputs() {
        let ctx = json!({
            "params": {"markets": ["de", "fr"], "n": 3, "csv": "a,b"},
            "steps": {"list": {"outputs": {"json": [{"p": "x/"}, {"p": "y/"}]}}},
        });
        let items = |s: &str| ForEach::Expression(s.into()).items(&ctx);
        assert_eq!(
            items("{{ params.markets }}").unwrap(),
            [json!("de"), json!("fr")]
        );
        assert_eq!(
            items("{{ steps.list.outputs.json }}").unwrap(),
            [json!({"p": "x/"}), json!({"p": "y/"})]
        );
        assert_eq!(
            items("{{ range(3) }}").unwrap(),
            [json!(0), json!(1), json!(2)]
        );
        assert_eq!(
            items("{{ params.n }}").unwrap_err(),
            "for_each \"{{ params.n }}\" gave a number (3), not a list"
        );
        let e = items("{{ params.nope }}").unwrap_err();
        assert!(
            e.starts_with("for_each \"{{ params.nope }}\": undefined value"),
            "{e}"
        );
        let e = items("{{ range(10001) }}").unwrap_err();
        assert!(
            e.contains("10,001 elements; a step runs at most 10,000"),
            "{e}"
        );
    }

    #[test]
    fn instances_see_their_item_and_index() {
        let ctx = instance_context(json!({"ds": "2026-01-01"}), 4, &json!("fr"));
        assert_eq!(
            ctx,
            json!({"ds": "2026-01-01", "item": "fr", "map_index": 4})
        );
    }
}
