//! Fuzz targets, as property tests: the pipeline parser (with validation)
//! and the filter expression parser, fed mutated valid inputs and random
//! token soup, never panic and always answer, Ok or a typed error, in
//! bounded time. Bounded for CI: 300 cases each by default, more with
//! `PROPTEST_CASES=100000 cargo test --locked --features bench --lib fuzz`.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::filter::Filter;
use crate::pipeline::Pipeline;

/// Far above what any case takes (milliseconds), far below a hang: the
/// bound of issue 17 on any command.
const BOUND: Duration = Duration::from_secs(5);

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300);
    Config {
        cases,
        // Shrinking a slow case could take long; the first one is enough.
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    }
}

/// One edit of a text: replace a range (by fractions of its length) with
/// a token, repeat a range, or cut it.
#[derive(Debug, Clone)]
enum Edit {
    Put(f64, f64, String),
    Repeat(f64, f64, usize),
    Cut(f64, f64),
}

fn edit(tokens: &'static [&'static str]) -> impl Strategy<Value = Edit> {
    let token = prop_oneof![
        proptest::sample::select(tokens).prop_map(str::to_string),
        any::<char>().prop_map(String::from),
        "[\\[\\]{}:,\\-?|>!&*'\"#%@` \t\n\\\\a-z0-9]{0,12}",
    ];
    prop_oneof![
        (0.0..1.0f64, 0.0..0.2f64, token).prop_map(|(a, b, t)| Edit::Put(a, b, t)),
        (0.0..1.0f64, 0.0..0.1f64, 1..50usize).prop_map(|(a, b, n)| Edit::Repeat(a, b, n)),
        (0.0..1.0f64, 0.0..0.3f64).prop_map(|(a, b)| Edit::Cut(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut s = text.to_string();
    for e in edits {
        let at = |f: f64, s: &str| s.floor_char_boundary((f * s.len() as f64) as usize);
        let (a, b) = match e {
            Edit::Put(a, b, _) | Edit::Repeat(a, b, _) | Edit::Cut(a, b) => (*a, *b),
        };
        let start = at(a, &s);
        let end = at((a + b).min(1.0), &s).max(start);
        let replacement = match e {
            Edit::Put(_, _, t) => t.clone(),
            Edit::Repeat(_, _, n) => s[start..end].repeat(*n),
            Edit::Cut(..) => String::new(),
        };
        s.replace_range(start..end, &replacement);
    }
    s
}

const PIPELINE: &str = include_str!("../pipelines/quickstart.yaml");

const PIPELINE_SMALL: &str = "name: p\ndataset_group: g\nparams: {n: {type: integer, default: 3}}\nsolutions:\n  s: {recipe: popularity-count}\ncampaigns:\n  c: {solution: s}\nsteps:\n  - {id: a, type: train, solution: s}\n  - id: b\n    type: deploy\n    campaign: c\n    depends_on: [a]\n  - {id: x, type: shell, depends_on: [b], command: 'echo {{ steps.b.outputs.deployed_version }} {{ params.n }}'}\n";

const YAML_TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ": ",
    ", ",
    "- ",
    "? ",
    "\n",
    "\n  ",
    "\n    - ",
    "'",
    "\"",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!!binary ",
    "!tag ",
    "|\n",
    ">-\n",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\t",
    "{{ ",
    " }}",
    "{% for i in range(3) %}",
    "{% endfor %}",
    "{{ steps.a.outputs.solution_version }}",
    "{{ params.n }}",
    "depends_on: [a]",
    "id: z",
    "type: noop",
    "type: import",
    "steps:",
    "~",
    "null",
    "1e999",
    "-1",
    "0x10",
    "\u{feff}",
    "\u{0}",
    "é",
    "🦀",
];

const FILTER_SEEDS: &[&str] = &[
    "INCLUDE ItemID WHERE Items.GENRE IN ($G)",
    "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"watch\", \"click\")",
    "INCLUDE ItemID WHERE Items.PRICE > 10 AND Items.GENRE NOT IN (\"x\") IF CurrentUser.AGE >= 30",
    "EXCLUDE ItemID WHERE Items.GENRE IN (CurrentItem.GENRE) | INCLUDE ItemID WHERE Items.PRICE <= 3.5",
    "INCLUDE UserID WHERE Users.TIER = \"gold\" OR Users.AGE < 18",
    "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (*)",
];

const FILTER_TOKENS: &[&str] = &[
    "(",
    ")",
    "\"",
    "\\\"",
    "$",
    "$G",
    "|",
    " AND ",
    " OR ",
    " IN ",
    " NOT IN ",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "*",
    ",",
    ".",
    "CurrentItem.",
    "CurrentUser.",
    "Items.",
    "Users.",
    "Interactions.",
    "INCLUDE",
    "EXCLUDE",
    "ItemID",
    "UserID",
    "WHERE",
    " IF ",
    "1e999",
    "-0",
    "NaN",
    "\u{0}",
    "é",
    "🦀",
    "  ",
];

/// Validates a pipeline text; the answer does not matter, having one does.
fn pipeline_answers(text: &str) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let result = Pipeline::from_text(Path::new("pipelines/fuzz.yaml"), text.to_string());
    if let Err(e) = &result {
        prop_assert!(!e.problems.is_empty(), "an error without problems");
    }
    prop_assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    Ok(())
}

fn filter_answers(text: &str) -> Result<(), TestCaseError> {
    let start = Instant::now();
    match Filter::parse(text) {
        Ok(mut filter) => {
            filter.check(&crate::filter::tests::schemas());
        }
        Err(e) => prop_assert!(!e.message.is_empty()),
    }
    prop_assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_mutated_pipelines_get_an_answer(
        seed in proptest::sample::select(vec![PIPELINE, PIPELINE_SMALL]),
        edits in proptest::collection::vec(edit(YAML_TOKENS), 1..8),
    ) {
        pipeline_answers(&apply(seed, &edits))?;
    }

    #[test]
    fn fuzz_yaml_token_soup_gets_an_answer(
        tokens in proptest::collection::vec(proptest::sample::select(YAML_TOKENS), 0..300),
    ) {
        pipeline_answers(&format!("name: p\ndataset_group: g\nsteps:\n{}", tokens.concat()))?;
    }

    #[test]
    fn fuzz_mutated_filters_get_an_answer(
        seed in proptest::sample::select(FILTER_SEEDS),
        edits in proptest::collection::vec(edit(FILTER_TOKENS), 1..8),
    ) {
        filter_answers(&apply(seed, &edits))?;
    }

    #[test]
    fn fuzz_filter_token_soup_gets_an_answer(
        tokens in proptest::collection::vec(proptest::sample::select(FILTER_TOKENS), 0..700),
    ) {
        filter_answers(&tokens.concat())?;
    }
}
