//! The daily routine of issue 19: pruning old versions and exports, asking
//! a campaign with a filter and item metadata from the CLI, and where a
//! run's output goes when stdout is not a terminal.

use serde_json::Value;

use crate::common::{Home, ok, repo};

#[test]
fn step_lines_go_to_stdout_and_logs_to_stderr() {
    let home = Home::new();
    let r = ok(home
        .cmd()
        .env("RUST_LOG", "info")
        .arg("run")
        .arg(repo().join("pipelines/quickstart.yaml")));
    assert!(r.stdout.contains("✓ train"), "{}", r.stdout);
    assert!(r.stdout.contains("Run 1 succeeded"), "{}", r.stdout);
    assert!(
        !r.stdout.contains(" INFO ") && !r.stdout.contains("run_id="),
        "logs in stdout:\n{}",
        r.stdout
    );
    assert!(r.stderr.contains(" INFO "), "{}", r.stderr);
    assert!(r.stderr.contains("Step succeeded."), "{}", r.stderr);
    assert!(
        !r.stderr.contains('✓') && !r.stderr.contains("Run 1 succeeded"),
        "step lines in stderr:\n{}",
        r.stderr
    );
}

#[test]
fn recommend_applies_a_filter_and_prints_item_metadata() {
    let home = Home::new();
    ok(home
        .cmd()
        .arg("run")
        .arg(repo().join("pipelines/quickstart.yaml")));
    let table = ok(home.cmd().args([
        "recommend",
        "--campaign",
        "movies",
        "--user",
        "1",
        "--num-results",
        "5",
        "--filter",
        "genre",
        "--filter-values",
        "GENRE=Comedy",
        "--metadata",
        "TITLE,GENRES",
    ]))
    .stdout;
    assert!(table.contains("(filter genre)"), "{table}");
    let header = table.lines().nth(1).unwrap();
    assert!(
        header.contains("TITLE") && header.contains("GENRES"),
        "{table}"
    );
    let rows: Vec<&str> = table.lines().skip(2).collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert!(rows.iter().all(|r| r.contains("Comedy")), "{table}");
    // Titles beside the ids (MovieLens titles end with the year).
    assert!(rows.iter().all(|r| r.contains("(19")), "{table}");

    // The JSON is the runtime API's answer: metadata per item.
    let json = ok(home.cmd().args([
        "recommend",
        "--campaign",
        "movies",
        "--user",
        "1",
        "--num-results",
        "5",
        "--filter",
        "genre",
        "--filter-values",
        "GENRE=Comedy",
        "--metadata",
        "TITLE,GENRES",
        "--json",
    ]))
    .stdout;
    let answer: Value = serde_json::from_str(&json).unwrap();
    let list = answer["itemList"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    for item in list {
        let genres = item["metadata"]["GENRES"].as_str().unwrap();
        assert!(genres.split('|').any(|g| g == "Comedy"), "{item}");
        assert!(!item["metadata"]["TITLE"].as_str().unwrap().is_empty());
    }
    // Unknown filters and columns are named, as the API names them.
    let e = crate::common::fails(home.cmd().args([
        "recommend", "--campaign", "movies", "--user", "1", "--filter", "nope",
    ]));
    assert!(e.stderr.contains("filter \"nope\" does not exist"), "{}", e.stderr);
    let e = crate::common::fails(home.cmd().args([
        "recommend", "--campaign", "movies", "--user", "1", "--metadata", "PRICE",
    ]));
    assert!(e.stderr.contains("\"PRICE\" is not a column"), "{}", e.stderr);
}
