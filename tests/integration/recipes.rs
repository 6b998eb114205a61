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

/// Items CSV with MovieLens genres (from u.item, Latin-1) plus two brand-new
/// items that no one has interacted with.
fn items_csv(home: &Home) -> std::path::PathBuf {
    let raw = std::fs::read(crate::common::repo().join("examples/data/ml-100k/u.item")).unwrap();
    let text: String = raw.iter().map(|&b| b as char).collect();
    let genres = [
        "unknown",
        "Action",
        "Adventure",
        "Animation",
        "Children",
        "Comedy",
        "Crime",
        "Documentary",
        "Drama",
        "Fantasy",
        "Film-Noir",
        "Horror",
        "Musical",
        "Mystery",
        "Romance",
        "Sci-Fi",
        "Thriller",
        "War",
        "Western",
    ];
    let mut csv = String::from("ITEM_ID,GENRES,CREATION_TIMESTAMP\n");
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let g: Vec<&str> = f[5..]
            .iter()
            .zip(genres)
            .filter(|(v, _)| **v == "1")
            .map(|(_, g)| g)
            .collect();
        csv.push_str(&format!("{},{},{}\n", f[0], g.join("|"), 800_000_000));
    }
    // Created a day before the newest rating (1998-04-22).
    csv.push_str("new-comedy,Comedy,893200000\nnew-horror,Horror,893200000\n");
    home.write("items.csv", csv)
}

#[test]
fn new_items_are_explored_for_users_whose_history_matches_them() {
    let home = Home::new();
    let items = items_csv(&home);
    let users = home.write(
        "users.jsonl",
        "{\"userId\": \"1\"}\n{\"userId\": \"someone-new\"}\n",
    );
    let pipeline = home.write(
        "cold.yaml",
        format!(
            r#"
name: cold
dataset_group: ml
datasets:
  interactions:
    schema_file: {schema}
  items:
    schema:
      fields:
        - {{name: ITEM_ID, type: string}}
        - {{name: GENRES, type: string, categorical: true}}
        - {{name: CREATION_TIMESTAMP, type: long}}
solutions:
  recs: {{recipe: user-personalization}}
campaigns:
  explore: {{solution: recs, exploration_weight: 0.2, exploration_item_age_cutoff: 7}}
  exploit: {{solution: recs, exploration_weight: 0}}
steps:
  - id: interactions
    type: import
    dataset: interactions
    source: {data}
    csv: {{delimiter: "\t", header: false, columns: [USER_ID, ITEM_ID, EVENT_VALUE, TIMESTAMP]}}
  - {{id: items, type: import, dataset: items, source: {items}}}
  - {{id: train, type: train, solution: recs, depends_on: [interactions, items]}}
  - {{id: explore, type: deploy, campaign: explore, depends_on: [train]}}
  - {{id: exploit, type: deploy, campaign: exploit, depends_on: [train]}}
  - {{id: export, type: batch_inference, campaign: explore, input: {users}, num_results: 10, depends_on: [explore]}}
"#,
            schema = example("schemas/movielens-interactions.json"),
            data = example("data/ml-100k/u.data"),
            items = items.display(),
            users = users.display(),
        ),
    );
    ok(home.cmd().arg("run").arg(&pipeline));
    let recs = |campaign: &str, user: &str| -> Vec<String> {
        let out = ok(home.cmd().args([
            "recommend",
            "--campaign",
            campaign,
            "--user",
            user,
            "--num-results",
            "10",
            "--json",
        ]))
        .stdout;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["itemList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["itemId"].as_str().unwrap().to_string())
            .collect()
    };
    // User 1 rated many comedies: two slots (10 × 0.2) go to the new items,
    // the comedy first; without exploration neither appears.
    let explored = recs("explore", "1");
    let comedy = explored
        .iter()
        .position(|i| i == "new-comedy")
        .unwrap_or_else(|| panic!("new comedy explored: {explored:?}"));
    let horror = explored
        .iter()
        .position(|i| i == "new-horror")
        .expect("new horror explored");
    assert!(comedy < horror, "{explored:?}");
    assert_eq!(explored.len(), 10);
    let exploited = recs("exploit", "1");
    assert!(
        !exploited.iter().any(|i| i.starts_with("new-")),
        "{exploited:?}"
    );
    // The batch export through the campaign explores too.
    let out = crate::common::read_json_lines(
        &home
            .warehouse()
            .join("exports/cold/export/run-1/users.jsonl.out"),
    );
    let items: Vec<&str> = out[0]["output"]["recommendedItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(items.contains(&"new-comedy"), "{items:?}");
    // The metrics record both datasets.
    let show = ok(home.cmd().args(["solutions", "show", "recs"])).stdout;
    assert!(show.contains("ml/items v1"), "{show}");
    assert!(
        show.contains("1684 items"),
        "the two new items join the catalog: {show}"
    );
}

#[test]
fn segments_find_users_for_an_item_and_for_attributes() {
    let home = Home::new();
    let items = items_csv(&home);
    let pipeline = home.write(
        "segments.yaml",
        format!(
            r#"
name: segments
dataset_group: ml
datasets:
  interactions:
    schema_file: {schema}
  items:
    schema:
      fields:
        - {{name: ITEM_ID, type: string}}
        - {{name: GENRES, type: string, categorical: true}}
        - {{name: CREATION_TIMESTAMP, type: long}}
solutions:
  affinity: {{recipe: item-affinity}}
  attributes: {{recipe: item-attribute-affinity, algorithm: ials}}
steps:
  - id: interactions
    type: import
    dataset: interactions
    source: {data}
    csv: {{delimiter: "\t", header: false, columns: [USER_ID, ITEM_ID, EVENT_VALUE, TIMESTAMP]}}
  - {{id: items, type: import, dataset: items, source: {items}}}
  - {{id: affinity, type: train, solution: affinity, depends_on: [interactions, items]}}
  - {{id: attributes, type: train, solution: attributes, depends_on: [interactions, items]}}
"#,
            schema = example("schemas/movielens-interactions.json"),
            data = example("data/ml-100k/u.data"),
            items = items.display(),
        ),
    );
    ok(home.cmd().arg("run").arg(&pipeline));
    // Segment metrics are reported beside the usual ones.
    let show = ok(home.cmd().args(["solutions", "show", "affinity"])).stdout;
    let metric = |name: &str| -> f64 {
        show.lines()
            .find(|l| l.trim_start().starts_with(name))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap()
    };
    assert!(metric("hit") > 0.05 && metric("recall") > 0.0, "{show}");

    let out = ok(home.cmd().args([
        "segment",
        "--solution",
        "affinity",
        "--item",
        "50",
        "--json",
    ]))
    .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["input"]["itemId"], "50");
    let users: Vec<&str> = v["output"]["recommendedUsers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 25);
    let data = std::fs::read_to_string(crate::common::repo().join("examples/data/ml-100k/u.data"))
        .unwrap();
    let rated_50: std::collections::HashSet<&str> = data
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1] == "50").then_some(f[0])
        })
        .collect();
    assert!(
        users.iter().all(|u| !rated_50.contains(u)),
        "users who already rated Star Wars are left out"
    );

    let out = ok(home.cmd().args([
        "segment",
        "--solution",
        "attributes",
        "--attributes",
        r#"ITEMS.GENRES = "Horror""#,
        "--num-results",
        "10",
        "--json",
    ]))
    .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["output"]["recommendedUsers"].as_array().unwrap().len(),
        10
    );
    let bad = crate::common::fails(home.cmd().args([
        "segment",
        "--solution",
        "attributes",
        "--attributes",
        "ITEMS.GENRES = Horror",
    ]));
    assert!(
        bad.stderr
            .contains("itemAttributes: expected a quoted value at character 16"),
        "{}",
        bad.stderr
    );
}

#[test]
fn an_update_folds_new_users_and_items_into_the_latest_version() {
    let home = Home::new();
    let ratings =
        std::fs::read_to_string(crate::common::repo().join("examples/data/ml-100k/u.data"))
            .unwrap();
    let rows: Vec<String> = ratings.lines().map(|l| l.replace('\t', ",")).collect();
    let header = "USER_ID,ITEM_ID,EVENT_VALUE,TIMESTAMP\n";
    let first = home.write(
        "first.csv",
        format!("{header}{}\n", rows[..90_000].join("\n")),
    );
    // The rest, a new user with a history, and a new item seen by 30 users.
    let mut more = rows[90_000..].join("\n");
    for item in [
        "50", "172", "181", "174", "173", "210", "168", "195", "204", "96",
    ] {
        more.push_str(&format!("\nnewbie,{item},5,893286000"));
    }
    for u in 1..=30 {
        more.push_str(&format!("\n{u},brand-new,4,893286000"));
    }
    let second = home.write("second.csv", format!("{header}{more}\n"));
    let users = home.write(
        "users.jsonl",
        "{\"userId\": \"newbie\"}\n{\"userId\": \"nobody\"}\n{\"itemId\": \"brand-new\"}\n",
    );
    let pipeline = |name: &str, source: &std::path::Path, mode: &str| {
        home.write(
            &format!("{name}.yaml"),
            format!(
                r#"
name: {name}
dataset_group: ml
datasets:{schema}
solutions:
  s: {{recipe: user-personalization, algorithm: ials, factors: 16, iterations: 10}}
steps:
  - {{id: load, type: import, dataset: interactions, source: {source}, mode: {mode}}}
  - {{id: train, type: train, solution: s, training_mode: {train_mode}, depends_on: [load]}}
  - {{id: export, type: batch_inference, solution: s, input: {users}, num_results: 5, depends_on: [train]}}
"#,
                schema = crate::common::INTERACTIONS_SCHEMA,
                source = source.display(),
                train_mode = if mode == "full" { "full" } else { "update" },
                users = users.display(),
            ),
        )
    };
    ok(home.cmd().arg("run").arg(pipeline("full", &first, "full")));
    let r = ok(home
        .cmd()
        .arg("run")
        .arg(pipeline("update", &second, "incremental")));
    assert!(
        r.stdout
            .contains("s v2 (user-personalization, updated from v1; metrics of v1)"),
        "{}",
        r.stdout
    );
    let show = ok(home.cmd().args(["solutions", "show", "s"])).stdout;
    assert!(show.contains("training mode: update of v1"), "{show}");
    let out = crate::common::read_json_lines(
        &home
            .warehouse()
            .join("exports/update/export/run-2/users.jsonl.out"),
    );
    let items = |i: usize| out[i]["output"]["recommendedItems"].clone();
    // The new user is known to the updated model: not the popularity answer
    // an unknown user gets; the new item has related items of its own.
    assert_ne!(items(0), items(1), "{out:?}");
    assert_eq!(out[2]["error"], serde_json::Value::Null);
    assert_ne!(items(2), items(1), "{out:?}");
}

/// `recipe: auto` with no `candidates:` chooses among the default list, and
/// an items dataset with only ITEM_ID is accepted and defines the catalog
/// (its two items that no one touched join it).
#[test]
fn auto_without_candidates_and_items_with_only_ids() {
    let home = Home::new();
    let mut items = String::from("ITEM_ID\n");
    for id in 1..=1682 {
        items.push_str(&format!("{id}\n"));
    }
    items.push_str("cold-1\ncold-2\n");
    let items = home.write("items.csv", items);
    let schema = home.write(
        "items.json",
        r#"{"type": "record", "name": "Items", "fields": [{"name": "ITEM_ID", "type": "string"}], "version": "1.0"}"#,
    );
    let p = home.write(
        "auto.yaml",
        format!(
            r#"
name: auto
dataset_group: ml
datasets:
  interactions:
    schema_file: {interactions}
  items:
    schema_file: {schema}
solutions:
  best: {{recipe: auto}}
steps:
  - id: load
    type: import
    dataset: interactions
    source: {data}
    csv: {{delimiter: "\t", header: false, columns: [USER_ID, ITEM_ID, EVENT_VALUE, TIMESTAMP]}}
  - {{id: items, type: import, dataset: items, source: {items}}}
  - {{id: train, type: train, solution: best, depends_on: [load, items]}}
"#,
            interactions = example("schemas/movielens-interactions.json"),
            data = example("data/ml-100k/u.data"),
            schema = schema.display(),
            items = items.display(),
        ),
    );
    ok(home.cmd().arg("run").arg(p));
    let show = ok(home.cmd().args(["solutions", "show", "best"])).stdout;
    assert!(
        show.contains("1684 items"),
        "cold items join the catalog:\n{show}"
    );
    for (i, name) in [
        "user-personalization",
        "user-personalization",
        "user-personalization",
        "sims",
        "next-item",
        "popularity-count",
    ]
    .iter()
    .enumerate()
    {
        let row = format!("#{}   {name}", i + 1);
        assert!(show.contains(&row), "default candidate {row}:\n{show}");
    }
    assert!(show.contains("  decision: "), "{show}");
    assert!(
        show.contains("\"algorithm\":\"ials\""),
        "iALS is searched:\n{show}"
    );
}
