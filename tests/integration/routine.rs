//! The daily routine of issue 19: pruning old versions and exports, asking
//! a campaign with a filter and item metadata from the CLI, and where a
//! run's output goes when stdout is not a terminal.

use recflow::store::{StateStore, VersionKind, VersionStatus};
use serde_json::Value;

use crate::common::{Home, ok, repo, runtime};

fn store(home: &Home) -> Box<dyn StateStore> {
    let url = format!("sqlite://{}", home.home().join("state.db").display());
    runtime()
        .block_on(recflow::store::open(&url))
        .expect("state store")
}

fn status(home: &Home, kind: VersionKind, owner: &str, version: i64) -> VersionStatus {
    runtime()
        .block_on(store(home).get_version(kind, owner, version))
        .unwrap()
        .status
}

/// The bytes `recflow prune` reports: `... N version(s) and export(s), B bytes`.
fn bytes_reported(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.contains(" bytes ("))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let before = line.split(" bytes (").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

fn exists(home: &Home, rel: &str) -> bool {
    home.warehouse().join(rel).exists()
}

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
fn prune_keeps_what_campaigns_serve_and_the_latest_and_frees_bytes() {
    let home = Home::new();
    let quickstart = repo().join("pipelines/quickstart.yaml");
    for _ in 0..3 {
        ok(home.cmd().arg("run").arg(&quickstart));
    }
    // The campaign goes back to v2: it serves v2, rolled back from v3.
    ok(home.cmd().args(["campaigns", "rollback", "movies"]));

    let all = [
        "datasets/movielens/interactions/v1",
        "datasets/movielens/interactions/v2",
        "datasets/movielens/interactions/v3",
        "models/popular-movies/v1",
        "models/popular-movies/v2",
        "models/popular-movies/v3",
        "models/movie-recs/v1",
        "models/movie-recs/v2",
        "models/movie-recs/v3",
        "exports/quickstart/export/run-1",
        "exports/quickstart/export/run-2",
        "exports/quickstart/export/run-3",
    ];
    // A dry run lists and counts, and removes nothing.
    let dry = ok(home.cmd().args(["prune", "--keep-last", "1", "--dry-run"]));
    assert!(
        dry.stdout.contains("Dry run: would remove"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("models/popular-movies/v1"),
        "{}",
        dry.stdout
    );
    let would_free = bytes_reported(&dry.stdout);
    assert!(would_free > 0, "{}", dry.stdout);
    for rel in all {
        assert!(exists(&home, rel), "{rel} removed by a dry run");
    }

    let pruned = ok(home.cmd().args(["prune", "--keep-last", "1"]));
    let freed = bytes_reported(&pruned.stdout);
    assert_eq!(freed, would_free, "{}", pruned.stdout);
    // Gone: old datasets, the baseline's old versions, old exports.
    for rel in [
        "datasets/movielens/interactions/v1",
        "datasets/movielens/interactions/v2",
        "models/popular-movies/v1",
        "models/popular-movies/v2",
        "exports/quickstart/export/run-1",
        "exports/quickstart/export/run-2",
    ] {
        assert!(!exists(&home, rel), "{rel} not pruned:\n{}", pruned.stdout);
    }
    // Kept: the latest of each, the version the campaign serves, the one it
    // rolled back from, and v1, deployed to it within the last week.
    for rel in [
        "datasets/movielens/interactions/v3",
        "models/popular-movies/v3",
        "models/movie-recs/v1",
        "models/movie-recs/v2",
        "models/movie-recs/v3",
        "exports/quickstart/export/run-3",
    ] {
        assert!(exists(&home, rel), "{rel} pruned:\n{}", pruned.stdout);
    }
    assert_eq!(
        status(&home, VersionKind::Dataset, "movielens/interactions", 1),
        VersionStatus::Deleted
    );
    // The campaign still answers, from v2.
    let rec = ok(home
        .cmd()
        .args(["recommend", "--campaign", "movies", "--user", "1"]));
    assert!(
        rec.stdout.starts_with("movie-recs v2 for user 1"),
        "{}",
        rec.stdout
    );
    // Nothing left to remove.
    let again = ok(home.cmd().args(["prune", "--keep-last", "1"]));
    assert_eq!(bytes_reported(&again.stdout), 0, "{}", again.stdout);

    // A prune that stopped after marking a version (before its files went)
    // is finished by the next one; nothing reads a version being deleted.
    runtime()
        .block_on(store(&home).move_version(
            VersionKind::Dataset,
            "movielens/users",
            1,
            VersionStatus::Deleted,
            VersionStatus::Deleting,
        ))
        .unwrap();
    ok(home.cmd().arg("run").arg(&quickstart));
    runtime()
        .block_on(store(&home).move_version(
            VersionKind::Dataset,
            "movielens/users",
            3,
            VersionStatus::Active,
            VersionStatus::Deleting,
        ))
        .unwrap();
    assert!(exists(&home, "datasets/movielens/users/v3"));
    let finish = ok(home.cmd().args(["prune", "--keep-last", "10"]));
    assert!(
        finish
            .stdout
            .contains("finished an interrupted prune: Dataset movielens/users v3"),
        "{}",
        finish.stdout
    );
    assert!(!exists(&home, "datasets/movielens/users/v3"));
    assert!(exists(&home, "datasets/movielens/users/v4"));
    assert_eq!(
        status(&home, VersionKind::Dataset, "movielens/users", 3),
        VersionStatus::Deleted
    );
}

#[test]
fn retention_in_the_pipeline_file_prunes_after_each_run() {
    let home = Home::new();
    let text = std::fs::read_to_string(repo().join("pipelines/quickstart.yaml"))
        .unwrap()
        .replace(
            "../examples/",
            &format!("{}/", repo().join("examples").display()),
        )
        + "\nretention: {keep_last: 1, after_run: true}\n";
    let file = home.write("pipelines/quickstart.yaml", text);
    ok(home.cmd().arg("run").arg(&file));
    ok(home.cmd().arg("run").arg(&file));
    assert!(!exists(&home, "datasets/movielens/interactions/v1"));
    assert!(exists(&home, "datasets/movielens/interactions/v2"));
    assert!(!exists(&home, "exports/quickstart/export/run-1"));
    // The campaign served v1 a moment ago: kept for a rollback.
    assert!(exists(&home, "models/movie-recs/v1"));
    // `prune --pipeline` reads the same setting.
    let r = ok(home
        .cmd()
        .args(["prune", "--pipeline", "quickstart", "--dry-run"]));
    assert_eq!(bytes_reported(&r.stdout), 0, "{}", r.stdout);
}

#[test]
fn recommend_applies_a_filter_and_prints_item_metadata() {
    let home = Home::new();
    ok(home
        .cmd()
        .arg("run")
        .arg(repo().join("pipelines/quickstart.yaml")));
    // Five comedies for user 1, with their titles and genres.
    let ask = [
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
    ];
    let table = ok(home.cmd().args(ask)).stdout;
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
    let json = ok(home.cmd().args(ask).arg("--json")).stdout;
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
        "recommend",
        "--campaign",
        "movies",
        "--user",
        "1",
        "--filter",
        "nope",
    ]));
    assert!(
        e.stderr.contains("filter \"nope\" does not exist"),
        "{}",
        e.stderr
    );
    let e = crate::common::fails(home.cmd().args([
        "recommend",
        "--campaign",
        "movies",
        "--user",
        "1",
        "--metadata",
        "PRICE",
    ]));
    assert!(
        e.stderr.contains("\"PRICE\" is not a column"),
        "{}",
        e.stderr
    );
}

/// `recflow serve` on a free port with `args`, its stderr into `log`; the
/// base URL once /healthz answers.
fn serve(home: &Home, args: &[&str], log: &std::path::Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = home
        .process()
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--open-recommendations",
        ])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("RECFLOW_ACCESS_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    crate::common::eventually(|| {
        runtime()
            .block_on(reqwest::get(format!("{base}/healthz")))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    (child, base)
}

#[test]
fn serve_logs_requests_only_with_access_log() {
    let home = Home::new();
    ok(home
        .cmd()
        .arg("run")
        .arg(repo().join("pipelines/quickstart.yaml")));
    let ask = |base: &str| {
        runtime().block_on(async {
            let client = reqwest::Client::new();
            for body in [
                r#"{"campaignArn": "movies", "userId": "1"}"#,
                r#"{"campaignArn": "nope", "userId": "1"}"#,
            ] {
                client
                    .post(format!("{base}/recommendations"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    for (args, logged) in [(&["--access-log"][..], true), (&[][..], false)] {
        let log = home.path().join(format!("serve-{logged}.log"));
        let (mut child, base) = serve(&home, args, &log);
        ask(&base);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("Request.")).collect();
        if !logged {
            assert!(lines.is_empty(), "{text}");
            continue;
        }
        let served = lines
            .iter()
            .find(|l| l.contains("campaign=movies"))
            .unwrap_or_else(|| panic!("no access log line for movies:\n{text}"));
        for field in [
            "method=POST",
            "path=/recommendations",
            "status=200",
            "latency_ms=",
            "skipped=0",
        ] {
            assert!(served.contains(field), "{field} in {served}");
        }
        assert!(
            lines.iter().any(|l| l.contains("status=404")),
            "the unknown campaign's 404:\n{text}"
        );
    }
}
