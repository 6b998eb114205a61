//! Batch jobs: every input form, every output format, parts, reruns, segments.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::{Home, example, fails, ok, read_json_lines};

/// A pipeline with MovieLens ratings, a small items dataset (TITLE), an iALS
/// solution and a segment solution, trained once; `steps` are appended.
fn pipeline(home: &Home, steps: &str) -> PathBuf {
    pipeline_with(home, "", steps)
}

/// Like [`pipeline`], with more top-level keys (such as `filters:`).
fn pipeline_with(home: &Home, top: &str, steps: &str) -> PathBuf {
    let items = home.write("items.csv", "ITEM_ID,TITLE,GENRES\n50,Star Wars (1977),Action|Sci-Fi\n181,Return of the Jedi (1983),Action|Sci-Fi\n100,Fargo (1996),Crime|Drama\n");
    home.write(
        "batch.yaml",
        format!(
            r#"
name: batch
dataset_group: ml
datasets:
  interactions:
    schema_file: {schema}
  items:
    schema:
      fields:
        - {{name: ITEM_ID, type: string}}
        - {{name: TITLE, type: string}}
        - {{name: GENRES, type: string, categorical: true}}
  users:
    schema:
      fields:
        - {{name: USER_ID, type: string}}
        - {{name: AGE, type: int}}
        - {{name: GENDER, type: string, categorical: true}}
{top}
solutions:
  recs: {{recipe: user-personalization, algorithm: ials, factors: 16, iterations: 5}}
  segments: {{recipe: item-attribute-affinity, algorithm: ials, factors: 16, iterations: 5}}
campaigns:
  movies: {{solution: recs, exploration_weight: 0}}
steps:
  - id: ratings
    type: import
    dataset: interactions
    source: {data}
    csv: {{delimiter: "\t", header: false, columns: [USER_ID, ITEM_ID, EVENT_VALUE, TIMESTAMP]}}
  - {{id: items, type: import, dataset: items, source: {items}}}
  - id: users
    type: import
    dataset: users
    source: {users}
    csv: {{delimiter: "|", header: false, columns: [USER_ID, AGE, GENDER, occupation, zip]}}
  - {{id: train, type: train, solution: recs, depends_on: [ratings, items]}}
  - {{id: deploy, type: deploy, campaign: movies, depends_on: [train]}}
{steps}"#,
            schema = example("schemas/movielens-interactions.json"),
            data = example("data/ml-100k/u.data"),
            items = items.display(),
            users = example("data/ml-100k/u.user"),
        ),
    )
}

fn out_dir(home: &Home, step: &str, run: i64) -> PathBuf {
    home.warehouse()
        .join(format!("exports/batch/{step}/run-{run}"))
}

fn manifest(dir: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("_manifest.json")).unwrap()).unwrap()
}

#[test]
fn all_users_as_parquet_and_csv_with_item_metadata_in_parts() {
    let home = Home::new();
    let steps = "  - {id: parquet, type: batch_inference, campaign: movies, users: all, output_format: parquet, num_results: 5, depends_on: [deploy]}\n  - {id: csv, type: batch_inference, campaign: movies, users: all, output_format: csv, num_results: 3, part_lines: 400, item_metadata: [TITLE], depends_on: [deploy]}\n";
    let r = ok(home.cmd().arg("run").arg(pipeline(&home, steps)));
    assert!(r.stdout.contains("943 lines (0 errors)"), "{}", r.stdout);

    let dir = out_dir(&home, "parquet", 1);
    assert!(dir.join("_SUCCESS").exists());
    assert_eq!(manifest(&dir)["outputs"].as_array().unwrap().len(), 1);
    assert!(dir.join("all-users.out.parquet").exists());

    // 943 users at 400 lines per part: three parts, each with a header.
    let dir = out_dir(&home, "csv", 1);
    let outputs: Vec<String> = manifest(&dir)["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    assert!(outputs[1].ends_with("all-users.out.1.csv"), "{outputs:?}");
    let mut rows = 0;
    let mut titled = 0;
    for url in &outputs {
        let text = std::fs::read_to_string(url).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("user_id,rank,item_id,score,TITLE"));
        for line in lines {
            rows += 1;
            titled += line.ends_with(")") as usize;
        }
    }
    assert_eq!(rows, 943 * 3);
    assert!(
        titled > 0,
        "item metadata joined where the items dataset has the item"
    );

    // The same user's top items, through the CLI (one user at a time).
    let first = std::fs::read_to_string(&outputs[0]).unwrap();
    let row: Vec<&str> = first.lines().nth(1).unwrap().split(',').collect();
    let single = ok(home.cmd().args([
        "recommend",
        "--campaign",
        "movies",
        "--user",
        row[0],
        "--num-results",
        "3",
        "--json",
    ]))
    .stdout;
    let v: Value = serde_json::from_str(&single).unwrap();
    assert_eq!(
        v["itemList"][0]["itemId"], row[2],
        "block scoring agrees with one-user scoring"
    );
}

#[test]
fn gzip_csv_and_parquet_inputs_and_a_rerun_replaces_the_parts() {
    let home = Home::new();
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for u in ["1", "2", "not-json", "3"] {
        if u == "not-json" {
            writeln!(gz, "{{oops").unwrap();
        } else {
            writeln!(gz, "{{\"userId\": \"{u}\"}}").unwrap();
        }
    }
    let inputs = home.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("a.jsonl.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(inputs.join("b.csv"), "USER_ID,segment\n10,x\n11,y\n").unwrap();
    let steps = format!(
        "  - {{id: many, type: batch_inference, campaign: movies, input: {}/, num_results: 4, depends_on: [deploy]}}\n",
        inputs.display()
    );
    let out = home.path().join("out");
    let steps = steps.replace(
        "num_results: 4,",
        &format!("num_results: 4, output: {}/,", out.display()),
    );
    let file = pipeline(&home, &steps);
    let r = ok(home.cmd().arg("run").arg(&file));
    assert!(r.stdout.contains("6 lines (1 errors)"), "{}", r.stdout);
    let a = read_json_lines(&out.join("a.jsonl.gz.out"));
    assert_eq!(a.len(), 4);
    assert!(
        a[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("line 3: invalid JSON"),
        "{}",
        a[2]
    );
    assert_eq!(a[3]["input"]["userId"], "3");
    let b = read_json_lines(&out.join("b.csv.out"));
    assert_eq!(b[1]["input"]["userId"], "11");
    assert_eq!(
        b[1]["output"]["recommendedItems"].as_array().unwrap().len(),
        4
    );

    // A rerun with one input less removes the other's old part.
    std::fs::remove_file(inputs.join("b.csv")).unwrap();
    ok(home.cmd().arg("run").arg(&file));
    assert!(!out.join("b.csv.out").exists(), "stale part removed");
    assert!(out.join("_SUCCESS").exists());
    assert_eq!(manifest(&out)["outputs"].as_array().unwrap().len(), 1);

    // A job that fails leaves no success marker, not even the old one.
    std::fs::write(inputs.join("c.parquet"), b"not parquet").unwrap();
    fails(home.cmd().arg("run").arg(&file));
    assert!(!out.join("_SUCCESS").exists());
}

#[test]
fn batch_segments_write_users_for_items_and_attributes() {
    let home = Home::new();
    let input = home.write("segments.jsonl", "{\"itemId\": \"50\"}\n{\"itemAttributes\": \"ITEMS.GENRES = \\\"Crime\\\"\"}\n{\"itemId\": \"no-such-item\"}\n");
    let steps = format!(
        "  - {{id: train_segments, type: train, solution: segments, depends_on: [ratings, items]}}\n  - {{id: segment, type: batch_segment, solution: segments, input: {}, num_results: 7, depends_on: [train_segments]}}\n",
        input.display()
    );
    let r = ok(home.cmd().arg("run").arg(pipeline(&home, &steps)));
    assert!(r.stdout.contains("3 lines (1 errors)"), "{}", r.stdout);
    let out = read_json_lines(&out_dir(&home, "segment", 1).join("segments.jsonl.out"));
    assert_eq!(
        out[0]["output"]["recommendedUsers"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(
        out[1]["input"]["itemAttributes"],
        "ITEMS.GENRES = \"Crime\""
    );
    assert_eq!(
        out[1]["output"]["recommendedUsers"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert!(
        out[2]["error"]
            .as_str()
            .unwrap()
            .contains("unknown item \"no-such-item\""),
        "{}",
        out[2]
    );
}

#[test]
fn batch_limits_are_checked_before_any_work() {
    let home = Home::new();
    let steps = "  - {id: big, type: batch_inference, campaign: movies, users: all, num_results: 501}\n  - {id: seg, type: batch_segment, solution: recs, input: x.jsonl}\n  - {id: both, type: batch_inference, campaign: movies, users: all, input: x.jsonl}\n";
    let r = fails(home.cmd().arg("validate").arg(pipeline(&home, steps)));
    for expected in [
        "steps[5] (big).num_results: must be between 1 and 500",
        "steps[6] (seg).solution: recs uses user-personalization; segments need item-affinity or item-attribute-affinity",
        "steps[7] (both): give `input` or `users: all`, not both",
    ] {
        assert!(r.stdout.contains(expected), "{expected}\n{}", r.stdout);
    }
}

#[test]
fn filters_apply_to_every_line_with_its_own_values_and_to_segments() {
    let home = Home::new();
    let input = home.write(
        "lines.jsonl",
        [
            r#"{"itemId": "100", "filterValues": {"GENRE": "\"Action\""}}"#,
            r#"{"itemId": "50"}"#,
            r#"{"userId": "1", "itemList": ["50", "100", "181"], "filterValues": {"GENRE": "\"Crime\",\"Sci-Fi\""}}"#,
            r#"{"userId": "2", "filterValues": {"GENRE": "\"Crime\""}}"#,
            r#"{"userId": "3", "filterValues": {"GENRE": 7}}"#,
        ]
        .join("\n"),
    );
    let segments = home.write("segments.jsonl", "{\"itemId\": \"50\"}\n");
    let top = r#"
filters:
  genre: {expression: 'INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)'}
  no_action: {expression: 'EXCLUDE ItemID WHERE Items.GENRES IN ("Action")'}
  seniors: {expression: 'INCLUDE UserID WHERE Users.AGE >= $AGE'}
"#;
    let steps = format!(
        r#"  - {{id: lines, type: batch_inference, campaign: movies, input: {input}, filter: genre, filter_values: {{GENRE: '"Crime"'}}, num_results: 5, depends_on: [deploy, users]}}
  - {{id: everyone, type: batch_inference, campaign: movies, users: all, filter: no_action, num_results: 20, depends_on: [deploy, users]}}
  - {{id: train_segments, type: train, solution: segments, depends_on: [ratings, items]}}
  - {{id: segment, type: batch_segment, solution: segments, input: {segments}, filter: seniors, filter_values: {{AGE: "50"}}, num_results: 30, depends_on: [train_segments, users]}}
"#,
        input = input.display(),
        segments = segments.display(),
    );
    let r = ok(home.cmd().arg("run").arg(pipeline_with(&home, top, &steps)));
    assert!(r.stdout.contains("5 lines (1 errors)"), "{}", r.stdout);

    let out = read_json_lines(&out_dir(&home, "lines", 1).join("lines.jsonl.out"));
    let items = |v: &Value| -> Vec<String> {
        v["output"]["recommendedItems"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    // The line's own value: only Action items (100 itself is left out).
    assert_eq!(items(&out[0]), ["50", "181"]);
    // No value on the line: the step's (Crime) applies.
    assert_eq!(items(&out[1]), ["100"]);
    // Ranking keeps the allowed items of the list only.
    let mut ranked = items(&out[2]);
    ranked.sort();
    assert_eq!(ranked, ["100", "181", "50"]);
    assert!(items(&out[3]).iter().all(|i| i == "100"), "{}", out[3]);
    assert!(
        out[4]["error"].as_str().unwrap().contains("filterValues"),
        "{}",
        out[4]
    );

    // An EXCLUDE filter over every user: no Action item anywhere.
    let text =
        std::fs::read_to_string(out_dir(&home, "everyone", 1).join("all-users.out")).unwrap();
    assert_eq!(text.lines().count(), 943);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let got = items(&v);
        assert_eq!(got.len(), 20);
        assert!(!got.iter().any(|i| i == "50" || i == "181"), "{line}");
    }

    // Segments keep users aged 50 and over.
    let ages: std::collections::HashMap<String, u32> =
        std::fs::read_to_string(example("data/ml-100k/u.user"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                (f[0].to_string(), f[1].parse().unwrap())
            })
            .collect();
    let seg = read_json_lines(&out_dir(&home, "segment", 1).join("segments.jsonl.out"));
    let users = seg[0]["output"]["recommendedUsers"].as_array().unwrap();
    assert_eq!(users.len(), 30, "{}", seg[0]);
    assert!(
        users.iter().all(|u| ages[u.as_str().unwrap()] >= 50),
        "{}",
        seg[0]
    );
}

#[test]
fn filter_problems_are_reported_by_validate() {
    let home = Home::new();
    let top = r#"
filters:
  typo: {expression: 'INCLUDE ItemID WHERE Items.GENRE IN ($G)'}
  users_only: {expression: 'INCLUDE UserID WHERE Users.AGE > 3'}
  by_genre: {expression: 'INCLUDE ItemID WHERE Items.GENRES IN ($G)'}
"#;
    let steps = "  - {id: a, type: batch_inference, campaign: movies, users: all, filter: users_only}\n  - {id: b, type: batch_inference, campaign: movies, users: all, filter: by_genre}\n  - {id: c, type: batch_inference, campaign: movies, users: all, filter: nope}\n";
    let r = fails(
        home.cmd()
            .arg("validate")
            .arg(pipeline_with(&home, top, steps)),
    );
    for expected in [
        "filters.typo.expression: at column 22: unknown field Items.GENRE (known: ITEM_ID, TITLE, GENRES)",
        "steps[5] (a).filter: users_only selects users (UserID); recommendations need an ItemID filter",
        "steps[6] (b).filter_values: filter by_genre needs $G",
        "steps[7] (c).filter: unknown filter \"nope\" (declared: by_genre, typo, users_only)",
    ] {
        assert!(r.stdout.contains(expected), "{expected}\n{}", r.stdout);
    }
}
