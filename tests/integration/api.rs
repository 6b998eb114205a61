//! The operations API on a real `recflow serve`: its OpenAPI document
//! against the routes it serves, read-only against admin tokens, paging,
//! errors, triggering a run that the server's workers execute, campaign
//! rollback, and the live log tail.

use serde_json::{Value, json};

use crate::common::{Home, eventually, ok, repo, runtime};
use crate::serve::Server;

pub const ADMIN: &str = "admin-token";
pub const READER: &str = "read-token";

/// The quickstart run twice (two versions of `movie-recs`, the campaign on
/// v2), then `recflow serve` with an admin and a read-only token.
pub fn served_quickstart(home: &Home) -> Server {
    let quickstart = repo().join("pipelines/quickstart.yaml");
    ok(home.cmd().arg("run").arg(&quickstart));
    ok(home.cmd().arg("run").arg(&quickstart));
    let server = Server::start(
        home,
        &[
            ("RECFLOW_API_TOKENS", ADMIN),
            ("RECFLOW_READ_TOKENS", READER),
        ],
    );
    server.wait_for(|v| v["campaigns"]["movies"]["solution_version"] == 2);
    server
}

/// A request with a bearer token; the status and the body (JSON, or the text).
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut req = match method {
            "GET" => client.get(url),
            "POST" => client.post(url),
            other => panic!("method {other}"),
        };
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

#[test]
fn the_openapi_document_matches_the_routes_and_tokens_read_or_act() {
    let home = Home::new();
    let server = served_quickstart(&home);
    let api = format!("{}/api/v1", server.base);

    let (status, doc) = call("GET", &format!("{api}/openapi.json"), None, None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{} paths", paths.len());
    // Every documented operation is a real route: with sample path values a
    // GET answers (or says the resource does not exist, in JSON), and a
    // POST with a read-only token is refused for its role, never 404/405.
    let mut operations = 0;
    for (path, item) in paths {
        let url = format!(
            "{}{}",
            server.base,
            path.replace("{name}", "quickstart")
                .replace("{id}", "1")
                .replace("{step}", "train")
                .replace("{group}", "movielens")
                .replace("{dataset}", "interactions")
                .replace("{version}", "1")
                .replace("{item}", "x")
        );
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            if path.ends_with("/log/stream") {
                continue; // a stream; covered below
            }
            let (status, body) = call(&method.to_uppercase(), &url, Some(READER), None);
            match method.as_str() {
                "get" => assert!(
                    status == 200 || (status == 404 && body["__type"].is_string()),
                    "GET {url}: {status} {body}"
                ),
                "post" => assert_eq!(
                    (status, body["__type"].as_str()),
                    (403, Some("AccessDeniedException")),
                    "POST {url} with a read-only token: {body}"
                ),
                other => panic!("unexpected method {other} at {path}"),
            }
        }
    }
    assert!(operations >= 25, "{operations} operations");
    // The document describes the request bodies it accepts.
    let trigger = &paths["/api/v1/pipelines/{name}/runs"]["post"];
    assert!(trigger["requestBody"].is_object(), "{trigger}");

    // Without a credential, and with a wrong one: refused.
    assert_eq!(call("GET", &format!("{api}/runs"), None, None).0, 403);
    assert_eq!(
        call("GET", &format!("{api}/runs"), Some("nope"), None).0,
        403
    );

    // Errors have one shape and the right status.
    let (status, body) = call("GET", &format!("{api}/runs/999"), Some(READER), None);
    assert_eq!(status, 404);
    assert_eq!(body["__type"], "ResourceNotFoundException");
    assert!(
        body["message"].as_str().unwrap().contains("run 999"),
        "{body}"
    );
    let (status, body) = call(
        "GET",
        &format!("{api}/runs?status=done"),
        Some(READER),
        None,
    );
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidInputException"))
    );
}

#[test]
fn runs_page_by_cursor_trigger_runs_on_the_server_and_a_campaign_rolls_back() {
    let home = Home::new();
    let server = served_quickstart(&home);
    let api = format!("{}/api/v1", server.base);

    // Two runs, one per page.
    let (_, first) = call("GET", &format!("{api}/runs?limit=1"), Some(READER), None);
    assert_eq!(first["items"][0]["id"], 2, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, second) = call(
        "GET",
        &format!("{api}/runs?limit=1&cursor={cursor}"),
        Some(READER),
        None,
    );
    assert_eq!(second["items"][0]["id"], 1, "{second}");
    assert!(second["next_cursor"].is_null(), "{second}");
    let (_, filtered) = call(
        "GET",
        &format!("{api}/runs?pipeline=quickstart&status=failed"),
        Some(READER),
        None,
    );
    assert_eq!(filtered["items"], json!([]));

    // Versions page too: movie-recs v2, then v1 and popular-movies' own.
    let (_, page) = call(
        "GET",
        &format!("{api}/solutions?limit=1"),
        Some(READER),
        None,
    );
    let at = |p: &Value| {
        p["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{}/v{}", v["owner"].as_str().unwrap(), v["version"]))
            .collect::<Vec<_>>()
    };
    assert_eq!(at(&page), ["movie-recs/v2"], "{page}");
    let cursor = page["next_cursor"].as_str().expect("more versions");
    let (_, rest) = call(
        "GET",
        &format!("{api}/solutions?limit=200&cursor={cursor}"),
        Some(READER),
        None,
    );
    assert_eq!(
        at(&rest),
        ["movie-recs/v1", "popular-movies/v2", "popular-movies/v1"],
        "{rest}"
    );
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let (status, bad) = call(
        "GET",
        &format!("{api}/solutions?cursor=nonsense"),
        Some(READER),
        None,
    );
    assert_eq!(status, 400, "{bad}");

    // A run triggered with a typed parameter is executed by the server.
    let (status, body) = call(
        "POST",
        &format!("{api}/pipelines/quickstart/runs"),
        Some(ADMIN),
        Some(json!({"params": {"top_n": 3}})),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["run"]["params"]["top_n"], 3);
    let id = body["run"]["id"].as_i64().unwrap();
    eventually(
        || match call("GET", &format!("{api}/runs/{id}"), Some(READER), None) {
            (200, v) if v["run"]["status"] == "succeeded" => Ok(()),
            (_, v) if v["run"]["status"] == "failed" => panic!("{v}"),
            other => Err(format!("{other:?}")),
        },
    );
    // Its log, after the fact, and as a stream that ends with the status.
    let (_, log) = call(
        "GET",
        &format!("{api}/runs/{id}/steps/export/log"),
        Some(READER),
        None,
    );
    assert!(log["log"].as_str().unwrap().contains("lines"), "{log}");
    let stream = runtime().block_on(async {
        reqwest::Client::new()
            .get(format!("{api}/runs/{id}/steps/export/log/stream"))
            .header("Authorization", format!("Bearer {READER}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(stream.contains("event: log"), "{stream}");
    assert!(stream.contains("event: end\ndata: succeeded"), "{stream}");

    // Rollback: a read-only token cannot; an admin can, and the campaign
    // serves the version before the triggered run's again.
    let rollback = format!("{api}/campaigns/movies/rollback");
    let (status, body) = call("POST", &rollback, Some(READER), None);
    assert_eq!(
        (status, body["__type"].as_str()),
        (403, Some("AccessDeniedException"))
    );
    let (status, body) = call("POST", &rollback, Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["campaign"]["solution_version"].as_i64(),
            body["from"].as_i64()
        ),
        (Some(2), Some(3)),
        "the triggered run deployed v3 over v2: {body}"
    );
    server.wait_for(|v| v["campaigns"]["movies"]["solution_version"] == 2);
    let (_, campaign) = call(
        "GET",
        &format!("{api}/campaigns/movies"),
        Some(READER),
        None,
    );
    assert_eq!(
        campaign["deployments"][0]["solution_version"], 2,
        "{campaign}"
    );

    // Live serving metrics count each answer and each error, per minute.
    let ask = |user: &str| {
        call(
            "POST",
            &format!("{}/recommendations", server.base),
            Some(READER),
            Some(json!({"campaignArn": "movies", "userId": user, "numResults": 5})),
        )
    };
    assert_eq!(ask("196").0, 200);
    assert_eq!(ask("186").0, 200);
    let (status, live) = call("GET", &format!("{api}/metrics/live"), Some(READER), None);
    assert_eq!(status, 200, "{live}");
    let minutes = live["campaigns"]["movies"]
        .as_array()
        .expect("movies' minutes");
    let requests: u64 = minutes
        .iter()
        .map(|m| m["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 2, "{live}");
    assert!(
        minutes.iter().any(|m| m["p99_ms"].as_f64().is_some()),
        "{live}"
    );
}

/// A newcomer who starts `recflow serve` with no credential configured is
/// told where the console is and given a token made for that process; the
/// server still answers nothing without it.
#[test]
fn serve_without_tokens_prints_the_console_address_and_a_token_for_this_process() {
    use std::io::BufRead as _;
    let home = Home::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("recflow"))
        .arg("--home")
        .arg(home.home())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("RECFLOW_HOME")
        .env_remove("RECFLOW_STATE_URL")
        .env_remove("RECFLOW_WAREHOUSE")
        .env_remove("RECFLOW_ACCESS_KEYS")
        .env_remove("RECFLOW_API_TOKENS")
        .env_remove("RECFLOW_READ_TOKENS")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("recflow serve starts");
    let mut first = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let _server = KillOnDrop(child);
    let prefix = format!("Console: http://127.0.0.1:{port}/ui/  (log in with the token ");
    assert!(first.starts_with(&prefix), "{first}");
    let token = first[prefix.len()..].trim_end().trim_end_matches(')');
    assert_eq!(token.len(), 32, "{first}");
    let pipelines = format!("http://127.0.0.1:{port}/api/v1/pipelines");
    // The line is printed once the socket listens: requests wait for the
    // server, none is refused.
    assert_eq!(call("GET", &pipelines, Some(token), None).0, 200);
    assert_eq!(call("GET", &pipelines, None, None).0, 403);
    assert_eq!(call("GET", &pipelines, Some("guess"), None).0, 403);
    drop(stdout);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pause and unpause, backfill, and retrying a failed run, through the API
/// on a server whose workers run what it queues.
#[test]
fn pipelines_pause_and_backfill_and_a_failed_run_is_retried_over_the_api() {
    let home = Home::new();
    let marker = home.home().join("ready");
    // A daily pipeline whose step fails until the marker exists.
    let file = home.write(
        "flaky.yaml",
        format!(
            "name: flaky\ndataset_group: ops\nschedule: \"0 3 * * *\"\nsteps:\n  - {{id: check, type: shell, command: \"test -f {}\"}}\n",
            marker.display()
        ),
    );
    crate::common::fails(home.cmd().arg("run").arg(&file));
    let server = Server::start(
        &home,
        &[
            ("RECFLOW_API_TOKENS", ADMIN),
            ("RECFLOW_READ_TOKENS", READER),
        ],
    );
    let api = format!("{}/api/v1", server.base);
    let get = |path: &str| call("GET", &format!("{api}{path}"), Some(READER), None);
    let post =
        |path: &str, body: Option<Value>| call("POST", &format!("{api}{path}"), Some(ADMIN), body);

    // Paused: no next fire time; unpaused: the schedule's next one.
    let (status, body) = post("/pipelines/flaky/pause", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pipeline"]["paused"], true, "{body}");
    let (_, shown) = get("/pipelines/flaky");
    assert_eq!(shown["paused"], true, "{shown}");
    assert!(shown["next_run_at"].is_null(), "{shown}");
    let (_, body) = post("/pipelines/flaky/unpause", None);
    assert_eq!(body["pipeline"]["paused"], false, "{body}");
    let (_, shown) = get("/pipelines/flaky");
    assert!(shown["next_run_at"].as_str().is_some(), "{shown}");

    // A run the server's workers ran fails; once the cause is fixed it is
    // retried and succeeds.
    let status_of = |id: i64| get(&format!("/runs/{id}")).1["run"]["status"].clone();
    let reaches = |id: i64, want: &'static str| {
        move || match status_of(id).as_str() {
            Some(s) if s == want => Ok(()),
            other => Err(format!("run {id} is {other:?}, not {want}")),
        }
    };
    let (status, body) = post("/pipelines/flaky/runs", None);
    assert_eq!(status, 201, "{body}");
    let id = body["run"]["id"].as_i64().unwrap();
    eventually(reaches(id, "failed"));
    std::fs::write(&marker, "").unwrap();
    let (status, body) = post(&format!("/runs/{id}/retry"), None);
    assert_eq!(status, 200, "{body}");
    eventually(reaches(id, "succeeded"));
    let (status, body) = post(&format!("/runs/{id}/retry"), None);
    assert_eq!(status, 409, "a succeeded run has nothing to retry: {body}");
    // The terminal's own run is retried from the terminal.
    let (status, body) = post("/runs/1/retry", None);
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("recflow runs retry 1"),
        "{body}"
    );

    // A backfill queues one run per scheduled time in [from, to).
    let (status, body) = post(
        "/pipelines/flaky/backfill",
        Some(json!({"from": "2026-01-01", "to": "2026-01-04"})),
    );
    assert_eq!(status, 201, "{body}");
    let ids: Vec<i64> = body["runs"]
        .as_array()
        .expect("the queued runs")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{body}");
    for id in ids {
        eventually(reaches(id, "succeeded"));
    }
    let (_, page) = get("/runs?pipeline=flaky&status=succeeded&limit=200");
    assert_eq!(page["items"].as_array().unwrap().len(), 4, "{page}");
}
