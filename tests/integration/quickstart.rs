//! The README's first command: the quickstart pipeline on embedded defaults.

use serde_json::Value;

use crate::common::{Home, ok, rated_by, read_json_lines, repo, run};

#[test]
fn quickstart_runs_end_to_end_and_again() {
    let home = Home::new();
    let quickstart = repo().join("pipelines/quickstart.yaml");

    let first = ok(home.cmd().arg("run").arg(&quickstart));
    for step in [
        "import_interactions",
        "import_items",
        "import_users",
        "train",
        "deploy",
        "export",
    ] {
        assert!(
            first
                .stdout
                .lines()
                .any(|l| l.contains(&format!("✓ {step}"))),
            "{step} not ✓:\n{}",
            first.stdout
        );
    }
    assert!(
        first
            .stdout
            .contains("100,000 rows, 0 rejected → movielens/interactions v1"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("Run 1 succeeded"), "{}", first.stdout);

    // The export: one output line per input line, in order, in the managed
    // service's format.
    let out_dir = home.warehouse().join("exports/quickstart/export/run-1");
    assert!(out_dir.join("_SUCCESS").exists());
    assert!(
        first.stdout.contains(&out_dir.display().to_string()),
        "export location printed:\n{}",
        first.stdout
    );
    let inputs: Vec<Value> = read_json_lines(&repo().join("examples/data/batch/users.jsonl"));
    let outputs = read_json_lines(&out_dir.join("users.jsonl.out"));
    assert_eq!(outputs.len(), inputs.len());
    for (input, output) in inputs.iter().zip(&outputs) {
        assert_eq!(&output["input"], input);
        assert_eq!(output["error"], Value::Null, "{output}");
    }
    let items = |o: &Value| -> Vec<String> {
        o["output"]["recommendedItems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    // User 1 gets 10 items, none of which they already rated.
    let for_user_1 = items(&outputs[0]);
    assert_eq!(for_user_1.len(), 10);
    let rated = rated_by("1");
    assert!(
        for_user_1.iter().all(|i| !rated.contains(i)),
        "{for_user_1:?}"
    );
    // A new user gets the most popular movies: Star Wars (50) first.
    assert_eq!(items(&outputs[3])[0], "50");
    let scores = outputs[3]["output"]["scores"].as_array().unwrap();
    let scores: Vec<f64> = scores.iter().map(|s| s.as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "scores descend: {scores:?}"
    );
    // Ranking keeps the list, unknown items last and unscored.
    let ranked = items(&outputs[5]);
    assert_eq!(ranked.len(), 4);
    assert_eq!(ranked[3], "not-a-movie");
    assert_eq!(outputs[5]["output"]["scores"][3], Value::Null);

    // The CLI answers through the same code path.
    let rec = ok(home
        .cmd()
        .args(["recommend", "--campaign", "movies", "--user", "1", "--json"]));
    let response: Value = serde_json::from_str(&rec.stdout).unwrap();
    let list = response["itemList"].as_array().unwrap();
    assert_eq!(list.len(), 25);
    assert_eq!(list[0]["itemId"].as_str().unwrap(), for_user_1[0]);
    assert!(
        response["recommendationId"]
            .as_str()
            .unwrap()
            .starts_with("RID-")
    );

    // Running again makes new versions and a new run; the campaign moves.
    let second = ok(home.cmd().arg("run").arg(&quickstart));
    assert!(
        second.stdout.contains("movielens/interactions v2"),
        "{}",
        second.stdout
    );
    assert!(
        second
            .stdout
            .contains("campaign movies → movie-recs v2 (was v1)"),
        "{}",
        second.stdout
    );
    assert!(
        home.warehouse()
            .join("exports/quickstart/export/run-2/_SUCCESS")
            .exists()
    );

    let datasets = ok(home.cmd().args(["datasets", "list"])).stdout;
    for v in [
        "movielens/interactions  v2",
        "movielens/interactions  v1",
        "movielens/items",
        "movielens/users",
    ] {
        assert!(datasets.contains(v), "{v} in:\n{datasets}");
    }
    let runs = ok(home.cmd().args(["runs", "list"])).stdout;
    assert!(
        runs.lines()
            .filter(|l| l.contains("quickstart") && l.contains("succeeded"))
            .count()
            == 2,
        "{runs}"
    );
    let show = ok(home.cmd().args(["runs", "show", "2", "--logs"])).stdout;
    assert!(show.contains("Published interactions v2"), "{show}");
    let campaign = ok(home.cmd().args(["campaigns", "show", "movies"])).stdout;
    assert!(campaign.contains("serves movie-recs v2"), "{campaign}");
    assert_eq!(
        campaign
            .lines()
            .filter(|l| l.contains("movie-recs v"))
            .count(),
        3,
        "{campaign}"
    );
    let solution = ok(home.cmd().args(["solutions", "show", "movie-recs"])).stdout;
    assert!(
        solution.contains("normalized_discounted_cumulative_gain_at_10"),
        "{solution}"
    );
    assert!(solution.contains("movielens/interactions v2"), "{solution}");

    // A version that exists is shown; one that does not is an error naming it.
    let missing = run(home
        .cmd()
        .args(["solutions", "show", "movie-recs", "--version", "9"]));
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("movie-recs v9 not found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn online_retail_raw_sheet_becomes_interactions_from_the_pipeline_file_alone() {
    let home = Home::new();
    let r = ok(home
        .cmd()
        .arg("run")
        .arg(repo().join("examples/online-retail.yaml")));
    // The same rows as the dataset's own derivation script (derive.py).
    assert!(
        r.stdout
            .contains("407,664 rows, 0 rejected, 117,797 filtered by sql → retail/interactions v1"),
        "{}",
        r.stdout
    );
    let out = read_json_lines(
        &home
            .warehouse()
            .join("exports/online-retail/export/run-1/customers.jsonl.out"),
    );
    assert_eq!(out.len(), 4);
    assert_eq!(
        out[0]["output"]["recommendedItems"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    // Float customer ids (13635.0) became "13635": the customer is known, so
    // the best seller they already bought is not recommended to them.
    let known = ok(home.cmd().args([
        "recommend",
        "--campaign",
        "shop",
        "--user",
        "13635",
        "--num-results",
        "5",
    ]))
    .stdout;
    let new = ok(home.cmd().args([
        "recommend",
        "--campaign",
        "shop",
        "--user",
        "someone-new",
        "--num-results",
        "5",
    ]))
    .stdout;
    assert!(
        new.contains("85123A") && !known.contains("85123A"),
        "known:\n{known}\nnew:\n{new}"
    );
}
