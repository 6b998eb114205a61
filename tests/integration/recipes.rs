//! Recipes through the pipeline: every recipe trains and answers, and
//! hyperparameter search and `recipe: auto` decide on a validation split.

use crate::common::{Home, example, ok};

fn pipeline(home: &Home, solutions: &str, trains: &[&str]) -> std::path::PathBuf {
    let steps: String = trains
        .iter()
        .map(|s| {
            format!(
                "  - {{id: train_{}, type: train, solution: {s}, depends_on: [load]}}\n",
                s.replace('-', "_")
            )
        })
        .collect();
    home.write(
        "recipes.yaml",
        format!(
            r#"
name: recipes
dataset_group: ml
datasets:
  interactions:
    schema_file: {schema}
solutions:
{solutions}
steps:
  - id: load
    type: import
    dataset: interactions
    source: {data}
    csv: {{delimiter: "\t", header: false, columns: [USER_ID, ITEM_ID, EVENT_VALUE, TIMESTAMP]}}
{steps}"#,
            schema = example("schemas/movielens-interactions.json"),
            data = example("data/ml-100k/u.data"),
        ),
    )
}

fn ndcg10(home: &Home, solution: &str) -> f64 {
    let out = ok(home.cmd().args(["solutions", "show", solution])).stdout;
    let line = out
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("normalized_discounted_cumulative_gain_at_10")
        })
        .unwrap();
    line.split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn every_recipe_trains_and_personalised_ones_beat_popularity() {
    let home = Home::new();
    let solutions = r#"
  pop: {recipe: popularity-count}
  trend: {recipe: trending-now, window: 1d}
  sims: {recipe: aws-sims, popularity_discount_factor: 0.5}
  ease: {recipe: user-personalization, algorithm: ease}
  ials: {recipe: user-personalization, algorithm: ials, factors: 32, iterations: 8}
  rank: {recipe: personalized-ranking}
  next: {recipe: next-item, session_gap_minutes: 60}
"#;
    let names = ["pop", "trend", "sims", "ease", "ials", "rank", "next"];
    let r = ok(home
        .cmd()
        .arg("run")
        .arg(pipeline(&home, solutions, &names)));
    for n in names {
        assert!(
            r.stdout.contains(&format!("{n} v1 (")),
            "{n}:\n{}",
            r.stdout
        );
    }
    let pop = ndcg10(&home, "pop");
    for n in ["sims", "ease", "ials", "next"] {
        assert!(
            ndcg10(&home, n) > pop * 1.4,
            "{n} should clearly beat popularity ({pop})"
        );
    }
}

#[test]
fn hpo_and_auto_record_their_trials_and_choose_on_validation() {
    let home = Home::new();
    let solutions = r#"
  tuned:
    recipe: user-personalization
    hpo:
      trials: 4
      parameters:
        l2: {type: float, min: 20, max: 3000, log: true}
  best:
    recipe: auto
    candidates: [popularity-count, {recipe: user-personalization, algorithm: ease}]
"#;
    ok(home
        .cmd()
        .arg("run")
        .arg(pipeline(&home, solutions, &["tuned", "best"])));
    let logs = ok(home.cmd().args(["runs", "show", "1", "--logs"])).stdout;
    assert_eq!(
        logs.matches("Trial user-personalization {\"l2\":").count(),
        4,
        "{logs}"
    );
    assert!(logs.contains("Trial popularity-count {}"), "{logs}");
    assert!(
        logs.contains("Chose user-personalization {\"algorithm\":\"ease\""),
        "auto picks the personalised candidate:\n{logs}"
    );
    let show = ok(home.cmd().args(["datasets", "list"])).stdout;
    assert!(show.contains("ml/interactions"), "{show}");
    let best = ok(home.cmd().args(["solutions", "show", "best"])).stdout;
    assert!(best.starts_with("best v1 (user-personalization)"), "{best}");
}
