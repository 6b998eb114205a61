//! The web console in a real browser (headless Chromium through
//! WebDriver) against a real `recflow serve`: what the README promises a
//! new user can do without a terminal.
//!
//! With `RECFLOW_SCREENSHOTS=DIR` the test saves the main pages there (the
//! README's pictures come from `RECFLOW_SCREENSHOTS=docs/screenshots`);
//! otherwise into a temporary folder.

use std::path::PathBuf;
use std::time::Duration;

use crate::api::{ADMIN, READER, call, served_quickstart};
use crate::browser::Browser;
use crate::common::{Home, example, ok};

const SLOW: Duration = Duration::from_secs(90);

fn screenshots() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("RECFLOW_SCREENSHOTS") {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let tmp = tempfile::tempdir().unwrap();
            (tmp.path().to_path_buf(), Some(tmp))
        }
    }
}

fn log_in(b: &Browser, token: &str) {
    b.fill("#token", token);
    b.click("#login");
}

#[test]
fn browser_console_runs_logs_charts_try_it_rollback_trigger_and_forecasts() {
    let home = Home::new();
    // Runs 1 and 2: the quickstart; run 3: a step whose log is hostile;
    // run 4: a forecast beside the recommender.
    let server = served_quickstart(&home);
    let hostile = home.write(
        "hostile.yaml",
        "name: hostile\ndataset_group: other\nsteps:\n  - {id: shout, type: shell, command: \"echo '<script>window.pwned = 1</script><b>bold</b>'\"}\n",
    );
    ok(home.cmd().arg("run").arg(&hostile));
    ok(home.cmd().arg("run").arg(example("demand-forecast.yaml")));
    let base = server.base.clone();
    let (dir, _keep) = screenshots();
    let b = Browser::start();

    // No session: every page sends the browser to the login, then back.
    b.open(&format!("{base}/ui/campaigns/movies"));
    b.wait_for("#token", SLOW);
    assert!(b.url().contains("/ui/login"), "{}", b.url());
    b.screenshot(&dir.join("login.png"));
    log_in(&b, "not-a-token");
    b.wait_for("#login-error", SLOW);
    log_in(&b, ADMIN);
    b.wait_for("#serves", SLOW);
    assert!(b.url().ends_with("/ui/campaigns/movies"), "{}", b.url());

    // The pipelines page: the quickstart's grid holds its two runs.
    b.open(&format!("{base}/ui/"));
    b.wait_for(
        "#pipeline-quickstart a.sq[data-run=\"2\"][data-status=\"succeeded\"]",
        SLOW,
    );

    // A run's graph, timeline and a step's log.
    b.open(&format!("{base}/ui/runs/2"));
    b.wait_for(".graph svg", SLOW);
    b.screenshot(&dir.join("run.png"));
    b.click(".graph a[href$=\"/steps/train\"]");
    b.wait_for("#log", SLOW);
    assert!(
        b.text("#log").contains("Training movie-recs"),
        "{}",
        b.text("#log")
    );

    // A log that prints markup shows it as text and runs nothing.
    b.open(&format!("{base}/ui/runs/3/steps/shout"));
    let log = b.text("#log");
    assert!(
        log.contains("<script>window.pwned = 1</script><b>bold</b>"),
        "{log}"
    );
    assert_eq!(b.script("return typeof window.pwned"), "undefined");

    // Both solutions' metrics, charted across versions.
    b.open(&format!("{base}/ui/solutions"));
    b.wait_for("[data-metric=\"precision_at_10\"] svg", SLOW);
    let chart = b.text("[data-metric=\"precision_at_10\"]");
    assert!(
        chart.contains("movie-recs") && chart.contains("popular-movies"),
        "{chart}"
    );
    b.screenshot(&dir.join("solutions.png"));

    // Try the campaign for a user with a filter and item columns: the
    // answer is the API's.
    b.open(&format!("{base}/ui/campaigns/movies"));
    b.fill("#user", "196");
    b.fill("#values", "GENRE=\"Comedy\"");
    b.fill("#columns", "TITLE,GENRES");
    b.script("document.getElementById('filter').value = 'genre'");
    b.click("#ask");
    b.wait_for("#answer[data-status=\"200\"] td.item", SLOW);
    let answer = b.text("#answer table");
    assert!(answer.contains("Comedy"), "{answer}");
    let (_, api) = call(
        "POST",
        &format!("{base}/recommendations"),
        Some(READER),
        Some(
            serde_json::json!({"campaignArn": "movies", "userId": "196", "numResults": 10,
            "filterArn": "genre", "filterValues": {"GENRE": "\"Comedy\""}}),
        ),
    );
    let first = api["itemList"][0]["itemId"].as_str().unwrap().to_string();
    assert_eq!(
        b.text("#answer td.item"),
        first,
        "the console shows the API's answer"
    );
    b.screenshot(&dir.join("try-it.png"));
    // The live charts count those answers.
    b.open(&format!("{base}/ui/campaigns/movies"));
    b.wait_for("#serves", SLOW);
    b.screenshot(&dir.join("campaign.png"));

    // Trigger the quickstart with a parameter from the form; the server's
    // workers run it; the grid shows it go to succeeded.
    b.open(&format!("{base}/ui/pipelines/quickstart/trigger"));
    b.fill("[id=\"param.top_n\"]", "3");
    b.screenshot(&dir.join("trigger.png"));
    b.click("#trigger");
    b.wait_for("#run-status", SLOW);
    let run_url = b.url();
    let run: i64 = run_url.rsplit('/').next().unwrap().parse().unwrap();
    let status = b.text("#run-status");
    assert!(
        ["queued", "running", "succeeded"]
            .iter()
            .any(|s| status.contains(s)),
        "{status}"
    );
    assert!(
        b.text("main").contains("\"top_n\":3"),
        "the run carries the param"
    );
    b.open(&format!("{base}/ui/"));
    b.wait_reloading(
        &format!("#pipeline-quickstart a.sq[data-run=\"{run}\"][data-status=\"succeeded\"]"),
        SLOW,
    );
    b.open(&format!("{base}/ui/pipelines/quickstart"));
    b.wait_for(&format!("a.sq[data-run=\"{run}\"]"), SLOW);
    b.screenshot(&dir.join("pipelines.png"));

    // Roll the campaign back with its button (behind a confirmation); the
    // API then answers from the previous version.
    server.wait_for(|v| v["campaigns"]["movies"]["solution_version"] == 3);
    b.open(&format!("{base}/ui/campaigns/movies"));
    b.click("#rollback");
    b.click("#confirm-rollback");
    b.wait_for(".notice", SLOW);
    assert!(
        b.text(".notice")
            .contains("rolled back to movie-recs v2 (was v3)"),
        "{}",
        b.text(".notice")
    );
    server.wait_for(|v| v["campaigns"]["movies"]["solution_version"] == 2);

    // A forecast: the backtests and an item's plot, zoomed to the horizon.
    b.open(&format!("{base}/ui/forecasts/oj-demand"));
    b.wait_for("#plot svg", SLOW);
    assert!(b.text("#plot").contains("P10–P90"), "{}", b.text("#plot"));
    b.click("#zoom");
    b.wait_for("#plot[data-zoom=\"true\"] svg", SLOW);
    b.screenshot(&dir.join("forecast.png"));

    // A read-only session sees everything and can act on nothing.
    b.click("button.link"); // log out
    b.wait_for("#token", SLOW);
    log_in(&b, READER);
    b.wait_for("main h1", SLOW);
    b.open(&format!("{base}/ui/campaigns/movies"));
    b.wait_for("#serves", SLOW);
    assert!(b.try_text("#rollback").is_none(), "no rollback button");
    b.open(&format!("{base}/ui/campaigns/movies/rollback"));
    assert!(
        b.text("main")
            .contains("A read-only session cannot roll back.")
    );
    assert!(b.try_text("#confirm-rollback").is_none());
    b.open(&format!("{base}/ui/pipelines/quickstart/trigger"));
    assert!(
        b.text("main")
            .contains("A read-only session cannot trigger runs.")
    );
    b.close();
}

/// A run with a mapped step and a missed SLA, on its console page: the
/// instances with their items (escaped) and attempts, and the SLA miss.
#[test]
fn browser_run_page_shows_mapped_instances_and_sla_misses() {
    let home = Home::new();
    let fan = home.write(
        "fan.yaml",
        "name: fan\nsla: 1s\nsteps:\n  - id: each\n    type: shell\n    for_each: [north, \"<b>south</b>\", east]\n    command: 'sleep 1.5; echo done'\n  - {id: after, type: noop, depends_on: [each]}\n",
    );
    ok(home.cmd().arg("run").arg(&fan));
    let server = crate::serve::Server::start(&home, &[("RECFLOW_API_TOKENS", ADMIN)]);
    let base = server.base.clone();
    let b = Browser::start();
    b.open(&format!("{base}/ui/runs/1"));
    b.wait_for("#token", SLOW);
    log_in(&b, ADMIN);
    b.wait_for("table.instances", SLOW);
    let counts = b.text("p.mapped-counts[data-step=\"each\"]");
    assert!(counts.contains("succeeded 3"), "{counts}");
    // All succeeded at once: the instance table starts folded.
    b.click("details summary");
    let south = b.text("tr[data-instance=\"each[1]\"]");
    assert!(south.contains("<b>south</b>"), "{south}");
    assert_eq!(
        b.script("return document.querySelector('table.instances b') === null"),
        serde_json::json!(true),
        "an item's markup is shown as text"
    );
    assert!(
        b.text("tr[data-instance=\"each[2]\"]")
            .contains("#1 succeeded"),
        "{}",
        b.text("table.instances")
    );
    let sla = b.text(".sla-miss[data-step=\"\"]");
    assert!(
        sla.starts_with("SLA missed: the run went on past its SLA of 1s"),
        "{sla}"
    );
    b.close();
}
