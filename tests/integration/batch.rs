//! Batch jobs: every input form, every output format, parts, reruns, segments.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::{Home, example, fails, ok, read_json_lines};

/// A pipeline with MovieLens ratings, a small items dataset (TITLE), an iALS
/// solution and a segment solution, trained once; `steps` are appended.
fn pipeline(home: &Home, steps: &str) -> PathBuf {
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
  - {{id: train, type: train, solution: recs, depends_on: [ratings, items]}}
  - {{id: deploy, type: deploy, campaign: movies, depends_on: [train]}}
{steps}"#,
            schema = example("schemas/movielens-interactions.json"),
            data = example("data/ml-100k/u.data"),
            items = items.display(),
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
        "steps[4].num_results: must be between 1 and 500",
        "steps[5].solution: recs uses user-personalization; segments need item-affinity or item-attribute-affinity",
        "steps[6]: give `input` or `users: all`, not both",
    ] {
        assert!(r.stdout.contains(expected), "{expected}\n{}", r.stdout);
    }
}
