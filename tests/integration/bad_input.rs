//! Bad input gets an error that names the place: file, line, column, YAML
//! path or field. Each test breaks one thing.

use crate::common::{Home, INTERACTIONS_SCHEMA, example, fails, movielens_csv, ok};

fn import_pipeline(home: &Home, source: &str, extra: &str) -> std::path::PathBuf {
    home.write(
        "p.yaml",
        format!(
            "name: p\ndataset_group: g\ndatasets:{INTERACTIONS_SCHEMA}steps:\n  - id: load\n    type: import\n    dataset: interactions\n    source: {source}\n{extra}"
        ),
    )
}

#[test]
fn a_missing_required_column_names_the_file_the_field_and_the_columns_found() {
    let home = Home::new();
    let csv = home.write("events.csv", "user,ITEM_ID,TIMESTAMP\n1,2,1000000000\n");
    let r = fails(home.cmd().arg("run").arg(import_pipeline(
        &home,
        &csv.display().to_string(),
        "",
    )));
    let expected = format!(
        "{}: no column USER_ID, which the interactions schema requires (columns: user, ITEM_ID, TIMESTAMP)",
        csv.display()
    );
    assert!(r.stdout.contains(&expected), "{}", r.stdout);
}

#[test]
fn a_wrong_type_names_file_row_column_and_value() {
    let home = Home::new();
    let csv = home.write(
        "events.csv",
        "USER_ID,ITEM_ID,TIMESTAMP\n1,2,1000000000\n1,3,12:30\n",
    );
    let r = fails(home.cmd().arg("run").arg(import_pipeline(
        &home,
        &csv.display().to_string(),
        "",
    )));
    let expected = format!(
        "{}, row 2, TIMESTAMP: not a UNIX timestamp in seconds or a date-time (\"12:30\")",
        csv.display()
    );
    assert!(
        r.stdout
            .contains("1 of 2 rows rejected (50.0%), more than max_rejected_fraction 0.01"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&expected), "{}", r.stdout);
}

#[test]
fn an_empty_file_is_named() {
    let home = Home::new();
    let csv = home.write("empty.csv", "");
    let r = fails(home.cmd().arg("run").arg(import_pipeline(
        &home,
        &csv.display().to_string(),
        "",
    )));
    assert!(
        r.stdout
            .contains(&format!("{}: the file is empty", csv.display())),
        "{}",
        r.stdout
    );
}

#[test]
fn a_latin1_file_read_as_utf8_names_line_and_column_and_suggests_the_encoding() {
    let home = Home::new();
    let source = example("data/ml-100k/u.item");
    let pipeline = home.write(
        "items.yaml",
        format!(
            r#"
name: items
dataset_group: g
datasets:
  items:
    schema:
      fields: [{{name: ITEM_ID, type: string}}, {{name: TITLE, type: string}}]
steps:
  - id: load
    type: import
    dataset: items
    source: {source}
    csv: {{delimiter: "|", header: false, quote: null, columns: [ITEM_ID, TITLE, a, b, c, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13, d14, d15, d16, d17, d18, d19]}}
"#
        ),
    );
    let r = fails(home.cmd().arg("run").arg(&pipeline));
    // Line 72 is "Belle de jour" with the Latin-1 é of "Ménage"... the first
    // non-ASCII byte of the file.
    let message = r
        .stdout
        .lines()
        .find(|l| l.contains("not valid UTF-8"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        message.contains(&format!("{source}: not valid UTF-8 at line ")),
        "{message}"
    );
    assert!(message.contains("set `encoding: latin-1`"), "{message}");
    let at = message.split("at line ").nth(1).unwrap();
    let line: usize = at.split(',').next().unwrap().parse().unwrap();
    let text = std::fs::read(&source).unwrap();
    let bad_line = text.split(|&b| b == b'\n').nth(line - 1).unwrap();
    assert!(
        std::str::from_utf8(bad_line).is_err(),
        "line {line} really is the bad one"
    );

    // With the encoding declared, the same file imports.
    let fixed = std::fs::read_to_string(&pipeline)
        .unwrap()
        .replace("    csv:", "    encoding: latin-1\n    csv:");
    let r = ok(home
        .cmd()
        .arg("run")
        .arg(home.write("items-latin1.yaml", fixed)));
    assert!(r.stdout.contains("1,682 rows"), "{}", r.stdout);
}

#[test]
fn a_yaml_typo_names_the_file_and_the_yaml_path() {
    let home = Home::new();
    let original =
        std::fs::read_to_string(crate::common::repo().join("pipelines/quickstart.yaml")).unwrap();
    let text = original.replacen("    num_results:", "    num_result:", 1);
    assert_ne!(
        text, original,
        "the quickstart no longer has the field this test misspells"
    );
    let file = home.write("pipelines/typo.yaml", text);
    let r = fails(home.cmd().arg("validate").arg(&file));
    let expected = format!(
        "{}: steps[6] (export).num_result: unknown field `num_result`",
        file.display()
    );
    assert!(r.stdout.contains(&expected), "{}", r.stdout);
    assert!(
        r.stdout.contains("did you mean `num_results`?"),
        "{}",
        r.stdout
    );
    // A step's common key, mistyped, is suggested too.
    let text = original.replacen("    depends_on: [train]", "    depend_on: [train]", 1);
    assert_ne!(text, original);
    let file = home.write("pipelines/typo2.yaml", text);
    let r = fails(home.cmd().arg("validate").arg(&file));
    assert!(
        r.stdout.contains("unknown field `depend_on`"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("did you mean `depends_on`?"),
        "{}",
        r.stdout
    );
}

#[test]
fn validate_reports_a_cycle_and_every_other_problem_at_once() {
    let home = Home::new();
    let file = home.write(
        "cycle.yaml",
        format!(
            r#"
name: cycle
dataset_group: g
datasets:{INTERACTIONS_SCHEMA}
solutions:
  s: {{recipe: popularity-count}}
campaigns:
  c: {{solution: s}}
steps:
  - {{id: train, type: train, solution: s, depends_on: [deploy]}}
  - {{id: deploy, type: deploy, campaign: c, depends_on: [train]}}
  - {{id: load, type: import, dataset: items, source: "gs://bucket/x.csv"}}
  - {{id: export, type: batch_inference, campaign: nope, input: x.jsonl, num_results: 501}}
"#
        ),
    );
    let r = fails(home.cmd().arg("validate").arg(&file));
    for expected in [
        "steps: the steps form a cycle: train → deploy → train",
        "steps[2] (load).dataset: unknown dataset \"items\" (declared: interactions)",
        "steps[3] (export).campaign: unknown campaign \"nope\" (declared: c)",
        "steps[3] (export).num_results: must be between 1 and 500",
    ] {
        assert!(
            r.stdout
                .contains(&format!("{}: {expected}", file.display())),
            "{expected}\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("4 problems"), "{}", r.stdout);
}

#[test]
fn training_below_the_minimum_says_what_is_missing() {
    let home = Home::new();
    let csv = movielens_csv(&home, "few.csv", 500);
    let pipeline = home.write(
        "few.yaml",
        format!(
            "name: few\ndataset_group: g\ndatasets:{INTERACTIONS_SCHEMA}solutions:\n  s: {{recipe: popularity-count}}\nsteps:\n  - {{id: load, type: import, dataset: interactions, source: {}}}\n  - {{id: train, type: train, solution: s, depends_on: [load]}}\n",
            csv.display()
        ),
    );
    let r = fails(home.cmd().arg("run").arg(pipeline));
    assert!(
        r.stdout
            .contains("not enough data to train s: 500 interactions (500 more needed)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_version_below_the_campaigns_metric_floor_is_not_deployed() {
    let home = Home::new();
    let csv = movielens_csv(&home, "ratings.csv", 20_000);
    let pipeline = |floor: f64| {
        format!(
            "name: guard\ndataset_group: g\ndatasets:{INTERACTIONS_SCHEMA}solutions:\n  s: {{recipe: popularity-count}}\ncampaigns:\n  c: {{solution: s, min_metrics: {{precision_at_10: {floor}}}}}\nsteps:\n  - {{id: load, type: import, dataset: interactions, source: {}}}\n  - {{id: train, type: train, solution: s, depends_on: [load]}}\n  - {{id: deploy, type: deploy, campaign: c, depends_on: [train]}}\n",
            csv.display()
        )
    };
    ok(home
        .cmd()
        .arg("run")
        .arg(home.write("ok.yaml", pipeline(0.0))));
    let r = fails(
        home.cmd()
            .arg("run")
            .arg(home.write("strict.yaml", pipeline(0.99))),
    );
    assert!(
        r.stdout
            .contains("s v2 is below the metric floors of campaign c (precision_at_10 = "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("the campaign stays on s v1"),
        "{}",
        r.stdout
    );
    let campaign = ok(home.cmd().args(["campaigns", "show", "c"])).stdout;
    assert!(campaign.contains("serves s v1"), "{campaign}");
}

#[test]
fn a_gzipped_csv_with_ragged_rows_imports_the_rest_and_names_each_bad_line() {
    use std::io::Write;
    let home = Home::new();
    let mut text = String::from("USER_ID,ITEM_ID,TIMESTAMP\n");
    for i in 0..300 {
        text += &format!("u{},i{},{}\n", i % 7, i % 11, 1_000_000_000 + i);
        if i == 100 {
            text += "u1,i2\n";
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let path = home.write("day.csv.gz", gz.finish().unwrap());
    let r = ok(home
        .cmd()
        .arg("run")
        .arg(import_pipeline(&home, &path.display().to_string(), "")));
    assert!(r.stdout.contains("300 rows, 1 rejected"), "{}", r.stdout);
    let report = std::fs::read_to_string(
        home.warehouse()
            .join("datasets/g/interactions/v1/rejected.csv"),
    )
    .unwrap();
    assert!(
        report.contains("day.csv.gz,102,,\"u1,i2\",\"line 103 has 2 fields, the header has 3\""),
        "{report}"
    );
}

#[test]
fn a_csv_with_two_columns_of_one_name_is_refused() {
    let home = Home::new();
    let csv = home.write(
        "dup.csv",
        "USER_ID,ITEM_ID,TIMESTAMP,USER_ID\n1,2,1000000000,3\n",
    );
    let r = fails(home.cmd().arg("run").arg(import_pipeline(
        &home,
        &csv.display().to_string(),
        "",
    )));
    let expected = format!(
        "{}: columns 1 and 4 are both named \"USER_ID\" in the header (line 1)",
        csv.display()
    );
    assert!(r.stdout.contains(&expected), "{}", r.stdout);
}

/// The 1-based line and column where `needle` first appears in `text`.
fn place_of(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"))
}

#[test]
fn a_strict_config_error_names_the_step_by_index_and_id_with_line_and_column() {
    let home = Home::new();
    let original =
        std::fs::read_to_string(crate::common::repo().join("pipelines/quickstart.yaml")).unwrap();
    let text = original.replacen("    depends_on: [deploy]", "    depend_on: [deploy]", 1);
    assert_ne!(text, original);
    let (line, column) = place_of(&text, "depend_on: [deploy]");
    let file = home.write("pipelines/typo.yaml", &text);
    let r = fails(home.cmd().arg("validate").arg(&file));
    let expected = format!(
        "{}: steps[6] (export).depend_on: unknown field `depend_on`",
        file.display()
    );
    assert!(r.stdout.contains(&expected), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "did you mean `depends_on`? (line {line}, column {column})"
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn validate_names_a_missing_local_source_by_step_id_line_and_column() {
    let home = Home::new();
    // import_pipeline writes p.yaml; each case keeps its own file.
    let pipeline = |name: &str, source: &str, extra: &str| {
        let to = home.path().join(name);
        std::fs::rename(import_pipeline(&home, source, extra), &to).unwrap();
        to
    };
    let file = pipeline("missing.yaml", "data/events.csv", "");
    let text = std::fs::read_to_string(&file).unwrap();
    let (line, column) = place_of(&text, "data/events.csv");
    let r = fails(home.cmd().arg("validate").arg(&file));
    let expected = format!(
        "{}: steps[0] (load).source: no such file: {} (a relative path resolves against the \
         pipeline file's folder) (line {line}, column {column})",
        file.display(),
        home.path().join("data/events.csv").display()
    );
    assert!(r.stdout.contains(&expected), "{expected}\n{}", r.stdout);

    // An empty folder given as a prefix is named too.
    std::fs::create_dir_all(home.path().join("data/empty")).unwrap();
    let folder = pipeline("folder.yaml", "data/empty/", "");
    let r = fails(home.cmd().arg("validate").arg(&folder));
    assert!(r.stdout.contains("no files in this folder"), "{}", r.stdout);

    // Once the file is there, the pipeline is valid.
    home.write(
        "data/events.csv",
        "USER_ID,ITEM_ID,TIMESTAMP\n1,2,1000000000\n",
    );
    let r = ok(home.cmd().arg("validate").arg(&file));
    assert!(r.stdout.contains("ok: "), "{}", r.stdout);

    // A source known only at run time, or one a shell step upstream may
    // write, is not checked.
    let templated = pipeline("templated.yaml", "'data/{{ ds }}.csv'", "");
    ok(home.cmd().arg("validate").arg(&templated));
    let made = pipeline(
        "made.yaml",
        "data/made.csv",
        "    depends_on: [fetch]\n  - {id: fetch, type: shell, command: 'touch data/made.csv'}\n",
    );
    ok(home.cmd().arg("validate").arg(&made));
}

#[test]
fn a_pipeline_without_steps_is_refused_naming_the_key_and_line() {
    let home = Home::new();
    let file = home.write("p.yaml", "name: p\ndataset_group: g\nsteps: []\n");
    let r = fails(home.cmd().arg("validate").arg(&file));
    assert!(
        r.stdout.contains(&format!(
            "{}: steps: the pipeline has no steps, so a run would do nothing; list at least one step (line 3, column 8)",
            file.display()
        )),
        "{}",
        r.stdout
    );
}

#[test]
fn deeply_nested_yaml_is_refused_at_its_place_not_after_a_minute() {
    // 200 KB of nesting took serde_yaml 27 to 59 s to refuse; the depth is
    // now checked as the file is read, so this test would time out before.
    let home = Home::new();
    let flow = home.write(
        "flow.yaml",
        format!(
            "name: p\ndataset_group: g\nsteps: {}\n",
            "[".repeat(200_000)
        ),
    );
    let r = fails(home.cmd().arg("validate").arg(&flow));
    assert!(
        r.stdout.contains(
            "the YAML nests mappings and lists more than 64 levels deep; a pipeline needs fewer than 10"
        ) && r.stdout.contains("(line 3, column 71)"),
        "{}",
        r.stdout
    );
    let mut text = String::from("name: p\ndataset_group: g\nsteps:\n");
    for depth in 0..400 {
        text += &format!("{}- k{depth}:\n", " ".repeat(2 + 2 * depth));
    }
    let block = home.write("block.yaml", text);
    let r = fails(home.cmd().arg("validate").arg(&block));
    assert!(
        r.stdout.contains("more than 64 levels deep") && r.stdout.contains("(line 35, column"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_pipeline_file_over_the_limits_is_refused_at_once() {
    let home = Home::new();
    let big = home.write(
        "big.yaml",
        format!("name: p\ndataset_group: g\n#{}\n", "x".repeat(1 << 20)),
    );
    let r = fails(home.cmd().arg("validate").arg(&big));
    assert!(
        r.stdout.contains(
            "the file is larger than 1 MiB (1,048,576 bytes), the most a pipeline file may have"
        ),
        "{}",
        r.stdout
    );
    let mut text = String::from("name: p\ndataset_group: g\nsteps:\n");
    for i in 0..2_001 {
        text += &format!("  - {{id: s{i}, type: noop}}\n");
    }
    let many = home.write("many.yaml", text);
    let r = fails(home.cmd().arg("validate").arg(&many));
    assert!(
        r.stdout
            .contains("steps: 2,001 steps; a pipeline has at most 2,000 (fan out inside a step, or split the pipeline) (line 4, column 3)"),
        "{}",
        r.stdout
    );
}
