//! Imports: modes, sources, rejected rows, and what a failed import leaves.

use serde_json::Value;

use crate::common::{Home, INTERACTIONS_SCHEMA, example, fails, movielens_csv, ok};

fn show(home: &Home, dataset: &str) -> Value {
    let out = ok(home.cmd().args(["datasets", "show", dataset])).stdout;
    let json = &out[out.find('{').expect("manifest JSON")..];
    serde_json::from_str(json).unwrap()
}

fn items_pipeline(home: &Home, source: &str, mode: &str) -> std::path::PathBuf {
    home.write(
        &format!("items-{mode}.yaml"),
        format!(
            r#"
name: items-{mode}
dataset_group: shop
datasets:
  items:
    schema:
      fields:
        - {{name: ITEM_ID, type: string}}
        - {{name: PRICE, type: ["null", double]}}
        - {{name: CATEGORY, type: ["null", string], categorical: true}}
steps:
  - {{id: load, type: import, dataset: items, source: {source}, mode: {mode}}}
"#
        ),
    )
}

#[test]
fn incremental_items_replace_by_id_and_full_replaces_everything() {
    let home = Home::new();
    let first = home.write(
        "items1.csv",
        "ITEM_ID,PRICE,CATEGORY\na,1.5,toys\nb,2.0,books|gifts\nc,3.25,\n",
    );
    let second = home.write(
        "items2.csv",
        "ITEM_ID,PRICE,CATEGORY\nb,9.0,books\nd,4.0,toys\n",
    );

    // INCREMENTAL before any FULL import is refused, saying why.
    let r = fails(home.cmd().arg("run").arg(items_pipeline(
        &home,
        &second.display().to_string(),
        "incremental",
    )));
    assert!(
        r.stdout
            .contains("INCREMENTAL import into shop/items, which has no earlier version"),
        "{}",
        r.stdout
    );

    ok(home
        .cmd()
        .arg("run")
        .arg(items_pipeline(&home, &first.display().to_string(), "full")));
    let r = ok(home.cmd().arg("run").arg(items_pipeline(
        &home,
        &second.display().to_string(),
        "incremental",
    )));
    assert!(
        r.stdout
            .contains("2 rows, 0 rejected, 1 replaced by id → shop/items v2 (4 rows in all)"),
        "{}",
        r.stdout
    );
    let m = show(&home, "shop/items");
    assert_eq!(
        (
            m["version"].as_i64(),
            m["rows"].as_u64(),
            m["parent_version"].as_i64()
        ),
        (Some(2), Some(4), Some(1))
    );

    // FULL replaces: only the new file's rows.
    ok(home
        .cmd()
        .arg("run")
        .arg(items_pipeline(&home, &second.display().to_string(), "full")));
    assert_eq!(show(&home, "shop/items")["rows"].as_u64(), Some(2));
}

fn interactions_pipeline(home: &Home, name: &str, source: &str, extra: &str) -> std::path::PathBuf {
    home.write(
        &format!("{name}.yaml"),
        format!(
            "name: {name}\ndataset_group: g\ndatasets:{INTERACTIONS_SCHEMA}steps:\n  - id: load\n    type: import\n    dataset: interactions\n    source: {source}\n{extra}"
        ),
    )
}

#[test]
fn rejected_rows_are_reported_with_source_row_column_and_reason() {
    let home = Home::new();
    let mut csv = String::from("USER_ID,ITEM_ID,EVENT_VALUE,TIMESTAMP\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "u{},i{},1,{}\n",
            i % 30,
            i % 17,
            1_000_000_000 + i
        ));
    }
    csv.push_str("u1,i1,1,not-a-time\n"); // row 301
    csv.push_str(",i2,1,1000000000\n"); // row 302
    let path = home.write("data/events.csv", csv);
    let r = ok(home.cmd().arg("run").arg(interactions_pipeline(
        &home,
        "rej",
        &path.display().to_string(),
        "    max_rejected_fraction: 0.05\n",
    )));
    assert!(
        r.stdout.contains("300 rows, 2 rejected (see "),
        "{}",
        r.stdout
    );
    let report = std::fs::read_to_string(
        home.warehouse()
            .join("datasets/g/interactions/v1/rejected.csv"),
    )
    .unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "source,row,column,value,reason");
    assert_eq!(
        lines[1],
        format!(
            "{},301,TIMESTAMP,not-a-time,not a UNIX timestamp in seconds or a date-time",
            path.display()
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "{},302,USER_ID,,missing value for a required field",
            path.display()
        )
    );
    assert_eq!(
        show(&home, "g/interactions")["rejected_rows"].as_u64(),
        Some(2)
    );
}

#[test]
fn a_prefix_reads_every_object_and_json_lines_keep_their_line_numbers() {
    let home = Home::new();
    home.write(
        "parts/a.jsonl",
        "{\"USER_ID\": \"u1\", \"ITEM_ID\": \"i1\", \"TIMESTAMP\": 1000000000}\n",
    );
    home.write(
        "parts/b.jsonl",
        "{\"USER_ID\": \"u2\", \"ITEM_ID\": \"i1\", \"TIMESTAMP\": 1000000001.0, \"EVENT_VALUE\": 2}\n\n{oops\n",
    );
    home.write("parts/_SUCCESS", "");
    let prefix = format!("{}/parts/", home.path().display());
    let r = ok(home.cmd().arg("run").arg(interactions_pipeline(
        &home,
        "parts",
        &prefix,
        "    max_rejected_fraction: 0.5\n",
    )));
    assert!(r.stdout.contains("2 rows, 1 rejected"), "{}", r.stdout);
    let m = show(&home, "g/interactions");
    assert_eq!(
        m["sources"].as_array().unwrap().len(),
        2,
        "markers are not read: {m}"
    );
    let report = std::fs::read_to_string(
        home.warehouse()
            .join("datasets/g/interactions/v1/rejected.csv"),
    )
    .unwrap();
    assert!(
        report.contains("parts/b.jsonl,3,,{oops,invalid JSON"),
        "{report}"
    );
}

#[test]
fn a_failed_import_publishes_nothing_and_the_previous_version_stays() {
    let home = Home::new();
    let good = movielens_csv(&home, "good.csv", 2000);
    ok(home.cmd().arg("run").arg(interactions_pipeline(
        &home,
        "good",
        &good.display().to_string(),
        "",
    )));
    let bad = home.write(
        "bad.csv",
        "USER_ID,ITEM_ID,EVENT_VALUE,TIMESTAMP\n1,2,3,yesterday\n1,3,3,today\n",
    );
    let r = fails(home.cmd().arg("run").arg(interactions_pipeline(
        &home,
        "bad",
        &bad.display().to_string(),
        "",
    )));
    assert!(
        r.stdout.contains("2 of 2 rows rejected (100.0%)"),
        "{}",
        r.stdout
    );
    // v2 has its report but no manifest: no reader will ever use it.
    let v2 = home.warehouse().join("datasets/g/interactions/v2");
    assert!(v2.join("rejected.csv").exists());
    assert!(!v2.join("manifest.json").exists());
    assert!(!v2.join("part-00000.parquet").exists());
    let m = show(&home, "g/interactions");
    assert_eq!(
        (m["version"].as_i64(), m["rows"].as_u64()),
        (Some(1), Some(2000))
    );
    let list = ok(home.cmd().args(["datasets", "list"])).stdout;
    assert!(
        list.lines()
            .any(|l| l.contains("v2") && l.contains("failed")),
        "{list}"
    );
}

#[test]
fn the_managed_services_avro_schema_file_is_accepted_as_is() {
    let home = Home::new();
    let csv = movielens_csv(&home, "ratings.csv", 10);
    let pipeline = home.write(
        "avro.yaml",
        format!(
            "name: avro\ndataset_group: g\ndatasets:\n  interactions:\n    schema_file: {}\nsteps:\n  - {{id: load, type: import, dataset: interactions, source: {}}}\n",
            example("schemas/movielens-interactions.json"),
            csv.display()
        ),
    );
    let r = ok(home.cmd().arg("run").arg(pipeline));
    assert!(r.stdout.contains("10 rows, 0 rejected"), "{}", r.stdout);
}
