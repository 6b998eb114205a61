//! `recflow serve` as a real process on 127.0.0.1: the managed service's
//! API through boto3, model swaps under load, and events that survive a
//! SIGKILL and reach the next training.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Home, eventually, example, ok, repo, runtime};

/// MovieLens ratings as `rating` events, three items with genres, one
/// user-personalization solution and the campaign `movies`, with filters.
fn pipeline(home: &Home) -> PathBuf {
    let items = home.write(
        "items.csv",
        "ITEM_ID,TITLE,GENRES\n50,Star Wars (1977),Action|Sci-Fi\n181,Return of the Jedi (1983),Action|Sci-Fi\n100,Fargo (1996),Crime|Drama\n",
    );
    home.write(
        "serve.yaml",
        format!(
            r#"
name: serve
dataset_group: ml
datasets:
  interactions:
    schema:
      fields:
        - {{name: USER_ID, type: string}}
        - {{name: ITEM_ID, type: string}}
        - {{name: EVENT_TYPE, type: string}}
        - {{name: TIMESTAMP, type: long}}
  items:
    schema:
      fields:
        - {{name: ITEM_ID, type: string}}
        - {{name: TITLE, type: string}}
        - {{name: GENRES, type: string, categorical: true}}
event_tracker: {{tracking_id: ml-events}}
filters:
  genre: {{expression: 'INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)'}}
  unwatched: {{expression: 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")'}}
solutions:
  recs: {{recipe: user-personalization}}
campaigns:
  movies: {{solution: recs, exploration_weight: 0}}
steps:
  - id: ratings
    type: import
    dataset: interactions
    source: {data}
    csv: {{delimiter: "\t", header: false, columns: [USER_ID, ITEM_ID, rating, TIMESTAMP]}}
    sql: "SELECT USER_ID, ITEM_ID, 'rating' AS EVENT_TYPE, TIMESTAMP FROM source"
  - {{id: items, type: import, dataset: items, source: {items}}}
  - {{id: train, type: train, solution: recs, depends_on: [ratings, items]}}
  - {{id: deploy, type: deploy, campaign: movies, depends_on: [train]}}
"#,
            data = example("data/ml-100k/u.data"),
            items = items.display(),
        ),
    )
}

/// A running `recflow serve` on a free port of 127.0.0.1, killed when
/// dropped (the browser tests use it too).
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Server {
    pub fn start(home: &Home, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("recflow"));
        cmd.arg("--home")
            .arg(home.home())
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--reload-interval",
                "100ms",
            ])
            .env_remove("RECFLOW_HOME")
            .env_remove("RECFLOW_STATE_URL")
            .env_remove("RECFLOW_WAREHOUSE")
            .env_remove("RECFLOW_ACCESS_KEYS")
            .env_remove("RECFLOW_API_TOKENS")
            .env_remove("RECFLOW_READ_TOKENS")
            .env_remove("RECFLOW_OPEN_RECOMMENDATIONS")
            // `wait_for` reads the versions served from /metrics; a test
            // of its authentication sets this to 0.
            .env("RECFLOW_OPEN_METRICS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut server = Server {
            child: cmd.spawn().expect("recflow serve starts"),
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get_json(&format!("{}/healthz", server.base)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("recflow serve exited with {status} (its error is above)");
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Polls what the server serves, `{"campaigns": {NAME: {"solution_version": N}}}`
    /// (from /metrics), until `cond` holds (60 s at most).
    pub fn wait_for(&self, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(v) = self.served()
                && cond(&v)
            {
                return v;
            }
            assert!(Instant::now() < deadline, "the server did not get ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// The campaigns served and their versions, read from the
    /// `recflow_campaign_solution_version{campaign="NAME"} N` lines of /metrics.
    fn served(&self) -> Result<Value, String> {
        let text = runtime().block_on(async {
            let r = reqwest::get(format!("{}/metrics", self.base))
                .await
                .map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("/metrics answered {}", r.status()));
            }
            r.text().await.map_err(|e| e.to_string())
        })?;
        let mut campaigns = serde_json::Map::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("recflow_campaign_solution_version{campaign=\"")
                && let Some((name, value)) = rest.split_once("\"} ")
                && let Ok(v) = value.trim().parse::<i64>()
            {
                campaigns.insert(name.to_string(), serde_json::json!({"solution_version": v}));
            }
        }
        Ok(serde_json::json!({"campaigns": campaigns}))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get_json(url: &str) -> Result<Value, String> {
    runtime().block_on(async {
        let r = reqwest::get(url).await.map_err(|e| e.to_string())?;
        let text = r.text().await.map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    })
}

/// POSTs JSON; returns the status, the body and the answering solution version.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    token: Option<&str>,
) -> (u16, Value, Option<i64>) {
    let mut req = client.post(url).body(body.to_string());
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let r = req.send().await.expect("request sent");
    let status = r.status().as_u16();
    let version = r
        .headers()
        .get("x-recflow-solution-version")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        version,
    )
}

fn tracking_id(home: &Home) -> String {
    let out = ok(home.cmd().args(["campaigns", "show", "movies"])).stdout;
    out.lines()
        .find_map(|l| l.strip_prefix("event tracker (trackingId for PutEvents): "))
        .unwrap_or_else(|| panic!("no tracker in {out}"))
        .trim()
        .to_string()
}

fn item_ids(v: &Value) -> Vec<String> {
    v["itemList"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|i| i["itemId"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn boto3_clients_work_against_recflow_serve() {
    let python = std::env::var("RECFLOW_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "this test drives the server with boto3: run the suite with `scripts/test` \
             (it installs boto3 into a venv and sets RECFLOW_TEST_PYTHON)"
        )
    });
    let home = Home::new();
    ok(home.cmd().arg("run").arg(pipeline(&home)));
    let tracking = tracking_id(&home);
    assert_eq!(
        tracking, "ml-events",
        "the tracking id the pipeline declares"
    );
    let server = Server::start(&home, &[("RECFLOW_ACCESS_KEYS", "AKIDRECFLOWTEST:s3cret")]);
    let out = std::process::Command::new(python)
        .arg(repo().join("tests/integration/serve_client.py"))
        .env("RECFLOW_ENDPOINT", &server.base)
        .env("RECFLOW_TRACKING_ID", &tracking)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "boto3 client failed:\n{stdout}\n{stderr}"
    );

    // Recommendations need credentials unless opened.
    let (status, body, _) = runtime().block_on(post(
        &reqwest::Client::new(),
        &format!("{}/recommendations", server.base),
        &serde_json::json!({"campaignArn": "movies", "userId": "1"}),
        None,
    ));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");

    // /metrics counts what happened.
    let metrics = runtime().block_on(async {
        reqwest::get(format!("{}/metrics", server.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    for expected in [
        r#"recflow_requests_total{operation="GetRecommendations",campaign="movies",code="200"}"#,
        r#"recflow_events_ingested_total{dataset_group="ml"} 1"#,
        r#"recflow_campaign_solution_version{campaign="movies"} 1"#,
        "recflow_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(expected), "{expected}\n{metrics}");
    }
}

#[test]
fn models_swap_under_load_with_no_failed_request() {
    let home = Home::new();
    let file = pipeline(&home);
    ok(home.cmd().arg("run").arg(&file));
    // Training runs beside the server on the same cores: a generous queue
    // deadline keeps load shedding out of what this test measures.
    let server = Server::start(
        &home,
        &[
            ("RECFLOW_OPEN_RECOMMENDATIONS", "true"),
            ("RECFLOW_MAX_QUEUE_MS", "30000"),
        ],
    );
    let rt = runtime();
    let url = format!("{}/recommendations", server.base);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|c| {
            let url = url.clone();
            let stop = stop.clone();
            rt.spawn(async move {
                let client = reqwest::Client::new();
                let mut seen = Vec::new();
                let mut failures = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let user = ((n * 4 + c) % 943 + 1).to_string();
                    let body = serde_json::json!({"campaignArn": "movies", "userId": user});
                    let (status, body, version) = post(&client, &url, &body, None).await;
                    if status != 200 && failures.len() < 5 {
                        failures.push(format!("{status} {body}"));
                    }
                    if let Some(v) = version
                        && seen.last() != Some(&v)
                    {
                        seen.push(v);
                    }
                    n += 1;
                }
                (n, seen, failures)
            })
        })
        .collect();
    // Five more runs: each trains a version and its deploy step moves the campaign.
    for version in 2..=6 {
        ok(home.cmd().arg("run").arg(&file));
        server.wait_for(|h| h["campaigns"]["movies"]["solution_version"] == version);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Rolling back is moving the pointer too.
    ok(home.cmd().args(["campaigns", "rollback", "movies"]));
    server.wait_for(|h| h["campaigns"]["movies"]["solution_version"] == 5);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut versions = std::collections::BTreeSet::new();
    for task in load {
        let (n, seen, failures) = rt.block_on(task).unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
        // Each client sees versions only move forward, then the rollback.
        total += n;
        versions.extend(seen);
    }
    assert!(total > 50, "only {total} requests");
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6],
        "answers came from every version in turn"
    );
    let (_, _, version) = rt.block_on(post(
        &reqwest::Client::new(),
        &url,
        &serde_json::json!({"campaignArn": "movies", "userId": "1"}),
        None,
    ));
    assert_eq!(version, Some(5), "after the rollback, v5 answers");
}

#[test]
fn an_event_is_durable_before_its_200_and_reaches_the_next_training() {
    let home = Home::new();
    let file = pipeline(&home);
    ok(home.cmd().arg("run").arg(&file));
    let tracking = tracking_id(&home);
    let env = [
        ("RECFLOW_OPEN_RECOMMENDATIONS", "1"),
        ("RECFLOW_API_TOKENS", "t0ken"),
    ];
    let mut server = Server::start(&home, &env);
    let rt = runtime();
    let client = reqwest::Client::new();
    let ask = serde_json::json!({"campaignArn": "movies", "userId": "7", "numResults": 10});
    let (_, before, _) = rt.block_on(post(
        &client,
        &format!("{}/recommendations", server.base),
        &ask,
        None,
    ));
    let top = item_ids(&before)[0].clone();
    let event = serde_json::json!({
        "trackingId": tracking, "userId": "7", "sessionId": "s",
        "eventList": [{"eventType": "watch", "sentAt": 1_800_000_000.25, "itemId": top}]
    });
    let (status, body, _) = rt.block_on(post(
        &client,
        &format!("{}/events", server.base),
        &event,
        Some("t0ken"),
    ));
    assert_eq!(status, 200, "{body}");
    // Killed right after the 200: nothing in memory survives.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);

    let server = Server::start(&home, &env);
    let (_, after, _) = rt.block_on(post(
        &client,
        &format!("{}/recommendations", server.base),
        &ask,
        None,
    ));
    assert!(
        !item_ids(&after).contains(&top),
        "{top} still recommended: {after}"
    );
    // The Interactions filter reads the real-time event too: ranking keeps
    // what it is given, except what the filter removes.
    let rank = serde_json::json!({
        "campaignArn": "movies", "userId": "7", "inputList": [top.clone(), "1"],
        "filterArn": "arn:aws:personalize:us-east-1:1:filter/unwatched"
    });
    let (status, ranked, _) = rt.block_on(post(
        &client,
        &format!("{}/personalize-ranking", server.base),
        &rank,
        None,
    ));
    assert_eq!(status, 200, "{ranked}");
    let ids: Vec<&str> = ranked["personalizedRanking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["itemId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1"], "{ranked}");
    // PutItems changes what filters read, live: Fargo becomes an Action film.
    let put = serde_json::json!({
        "datasetArn": "arn:aws:personalize:us-east-1:1:dataset/ml/ITEMS",
        "items": [{"itemId": "100", "properties": "{\"genres\": \"Action|Crime\"}"}]
    });
    let (status, body, _) = rt.block_on(post(
        &client,
        &format!("{}/items", server.base),
        &put,
        Some("t0ken"),
    ));
    assert_eq!(status, 200, "{body}");
    let action = serde_json::json!({
        "campaignArn": "movies", "userId": "7", "inputList": ["50", "100", "1"],
        "filterArn": "genre", "filterValues": {"GENRE": "\"Action\""}
    });
    eventually(|| {
        let (_, ranked, _) = rt.block_on(post(
            &client,
            &format!("{}/personalize-ranking", server.base),
            &action,
            None,
        ));
        let mut ids: Vec<&str> = ranked["personalizedRanking"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["itemId"].as_str().unwrap())
            .collect();
        ids.sort();
        if ids == ["100", "50"] {
            Ok(())
        } else {
            Err(format!("the posted genre never applied: {ranked}"))
        }
    });
    // Bad events are refused with the member named, and nothing is stored.
    let bad = serde_json::json!({"trackingId": tracking, "sessionId": "s", "eventList": []});
    let (status, body, _) = rt.block_on(post(
        &client,
        &format!("{}/events", server.base),
        &bad,
        Some("t0ken"),
    ));
    assert_eq!(
        (status, body["__type"].as_str()),
        (400, Some("InvalidInputException"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("eventList"),
        "{body}"
    );
    drop(server);

    // The next training reads it.
    let r = ok(home.cmd().arg("run").arg(&file));
    assert!(r.stdout.contains("(1 from tracked events)"), "{}", r.stdout);
}

#[test]
fn a_guarded_deploy_keeps_the_live_version_when_the_new_one_is_worse() {
    let home = Home::new();
    let file = pipeline(&home);
    ok(home.cmd().arg("run").arg(&file));
    // The same solution retrained as a popularity baseline, behind a guard.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("recs: {recipe: user-personalization}", "recs: {recipe: popularity-count}")
        .replace(
            "{id: deploy, type: deploy, campaign: movies, depends_on: [train]}",
            "{id: deploy, type: deploy, campaign: movies, depends_on: [train], guard: {metric: normalized_discounted_cumulative_gain_at_10, min_ratio: 0.95}}",
        );
    let worse = home.write("worse.yaml", text);
    let r = crate::common::fails(home.cmd().arg("run").arg(&worse));
    assert!(
        r.all()
            .contains("guard: recs v2 has normalized_discounted_cumulative_gain_at_10 = 0.0")
            && r.all().contains("below 0.95 × 0.1")
            && r.all().contains("campaign movies stays on v1"),
        "{}",
        r.all()
    );
    let shown = ok(home.cmd().args(["campaigns", "show", "movies"])).stdout;
    assert!(shown.contains("serves recs v1"), "{shown}");
    // A bad guard is a validation error.
    let bad = home.write(
        "bad.yaml",
        std::fs::read_to_string(&worse)
            .unwrap()
            .replace("min_ratio: 0.95", "min_ratio: 0"),
    );
    let r = crate::common::fails(home.cmd().arg("validate").arg(&bad));
    assert!(
        r.stdout
            .contains("steps[3] (deploy).guard.min_ratio: must be a ratio above 0"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_posted_item_is_recommended_through_exploration_without_retraining() {
    let home = Home::new();
    let text = std::fs::read_to_string(pipeline(&home))
        .unwrap()
        .replace("exploration_weight: 0}", "exploration_weight: 0.5}");
    let file = home.write("explore.yaml", text);
    ok(home.cmd().arg("run").arg(&file));
    let env = [
        ("RECFLOW_OPEN_RECOMMENDATIONS", "true"),
        ("RECFLOW_API_TOKENS", "t0ken"),
    ];
    let server = Server::start(&home, &env);
    let rt = runtime();
    let client = reqwest::Client::new();
    let ask = serde_json::json!({"campaignArn": "movies", "userId": "1", "numResults": 10});
    let url = format!("{}/recommendations", server.base);
    let (_, before, _) = rt.block_on(post(&client, &url, &ask, None));
    assert!(!item_ids(&before).contains(&"brand-new".to_string()));
    let put = serde_json::json!({
        "datasetArn": "arn:aws:personalize:us-east-1:1:dataset/ml/ITEMS",
        "items": [{"itemId": "brand-new", "properties": "{\"title\": \"A New Hope II\", \"genres\": \"Action|Sci-Fi\"}"}]
    });
    let (status, body, _) = rt.block_on(post(
        &client,
        &format!("{}/items", server.base),
        &put,
        Some("t0ken"),
    ));
    assert_eq!(status, 200, "{body}");
    eventually(|| {
        let (status, after, _) = rt.block_on(post(&client, &url, &ask, None));
        assert_eq!(status, 200, "{after}");
        if item_ids(&after).contains(&"brand-new".to_string()) {
            Ok(())
        } else {
            Err(format!("the posted item was never recommended: {after}"))
        }
    });
}

#[test]
fn a_filter_that_cannot_be_applied_fails_requests_naming_it_with_its_reason() {
    let home = Home::new();
    ok(home.cmd().arg("run").arg(pipeline(&home)));
    // Another pipeline of the group registered a filter on a field the
    // group's items do not have (its own file declared it).
    runtime().block_on(async {
        let url = format!("sqlite://{}/state.db", home.home().display());
        let store = recflow::store::open(&url).await.unwrap();
        store
            .upsert_pipeline(&recflow::store::PipelineRegistration {
                name: "other".into(),
                dataset_group: "ml".into(),
                file: "other.yaml".into(),
                spec: "name: other".into(),
                filters: vec![(
                    "by-studio".into(),
                    r#"INCLUDE ItemID WHERE Items.STUDIO IN ("Lucasfilm")"#.into(),
                )],
            })
            .await
            .unwrap();
    });
    let server = Server::start(&home, &[("RECFLOW_OPEN_RECOMMENDATIONS", "true")]);
    server.wait_for(|v| v["campaigns"]["movies"].is_object());
    let ask = |filter: &str| {
        let body = serde_json::json!({"campaignArn": "movies", "userId": "196", "filterArn": filter,
            "filterValues": {"GENRE": "\"Drama\""}});
        runtime().block_on(post(
            &reqwest::Client::new(),
            &format!("{}/recommendations", server.base),
            &body,
            None,
        ))
    };
    let (status, body, _) = ask("by-studio");
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("filter \"by-studio\" cannot be applied") && message.contains("STUDIO"),
        "{message}"
    );
    let (status, body, _) = ask("genre");
    assert_eq!(status, 200, "the group's other filters still work: {body}");

    // A member the API does not have is named, not ignored.
    let wrong_case = serde_json::json!({"campaignArn": "movies", "userID": "196"});
    let (status, body, _) = runtime().block_on(post(
        &reqwest::Client::new(),
        &format!("{}/recommendations", server.base),
        &wrong_case,
        None,
    ));
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("unknown field `userID`"), "{message}");
}

/// POSTs a body to the events or runtime API as the admin `t0ken`; returns
/// the status, the error code and the message.
fn refused(server: &Server, path: &str, body: &Value) -> (u16, String, String) {
    let (status, body, _) = runtime().block_on(post(
        &reqwest::Client::new(),
        &format!("{}{path}", server.base),
        body,
        Some("t0ken"),
    ));
    (
        status,
        body["__type"].as_str().unwrap_or_default().to_string(),
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// What the store holds for a group: posted items and users, and events.
fn stored(home: &Home, group: &str) -> (usize, usize) {
    runtime().block_on(async {
        let url = format!("sqlite://{}/state.db", home.home().display());
        let store = recflow::store::open(&url).await.unwrap();
        let mut records = 0;
        for t in ["items", "users"] {
            records += store.list_put_records(group, t).await.unwrap().len();
        }
        let events = recflow::store::all_events(store.as_ref(), group, 0)
            .await
            .unwrap()
            .len();
        (records, events)
    })
}

#[test]
fn put_items_and_users_refuse_unknown_datasets_bad_names_and_unknown_properties() {
    let home = Home::new();
    ok(home.cmd().arg("run").arg(pipeline(&home)));
    let server = Server::start(&home, &[("RECFLOW_API_TOKENS", "t0ken")]);
    let arn =
        |resource: &str| format!("arn:aws:personalize:us-east-1:123456789012:dataset/{resource}");
    let items = |arn: String, properties: &str| serde_json::json!({"datasetArn": arn, "items": [{"itemId": "i1", "properties": properties}]});
    // A group that does not exist, and a group without a users dataset: 404.
    for (path, body) in [
        ("/items", items(arn("nope/ITEMS"), "{}")),
        (
            "/users",
            serde_json::json!({"datasetArn": arn("ml/USERS"), "users": [{"userId": "u1"}]}),
        ),
        ("/items", items(arn("ml"), "{}")),
    ] {
        let (status, code, message) = refused(&server, path, &body);
        assert_eq!(
            (status, code.as_str()),
            (404, "ResourceNotFoundException"),
            "{body}: {message}"
        );
    }
    // Names that could reach a path are invalid, before anything is looked up.
    for group in ["..%2F..", "../..", "m\u{0}l", "ml\n"] {
        let (status, code, message) = refused(
            &server,
            "/items",
            &items(arn(&format!("{group}/ITEMS")), "{}"),
        );
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidInputException"),
            "{group:?}: {message}"
        );
        assert!(message.contains("datasetArn"), "{message}");
    }
    // A property that is not a field of the schema is named.
    let (status, code, message) = refused(
        &server,
        "/items",
        &items(
            arn("ml/ITEMS"),
            r#"{"genres": "Drama", "studio": "Lucasfilm"}"#,
        ),
    );
    assert_eq!(
        (status, code.as_str()),
        (400, "InvalidInputException"),
        "{message}"
    );
    assert!(
        message.starts_with("items.1.properties.studio: \"studio\" is not a field of the ITEMS dataset of dataset group ml (its fields: title, genres)"),
        "{message}"
    );
    // So is a value the field cannot hold.
    let (status, _, message) = refused(
        &server,
        "/items",
        &items(arn("ml/ITEMS"), r#"{"genres": {"a": 1}}"#),
    );
    assert_eq!(status, 400, "{message}");
    assert!(
        message.contains("items.1.properties.genres: GENRES is string: expected a single value"),
        "{message}"
    );
    // Nothing of the above was stored, for any group.
    for group in ["ml", "nope", "..%2F..", "../.."] {
        assert_eq!(stored(&home, group), (0, 0), "{group}");
    }
    // A good record still goes through.
    let (status, _, message) = refused(
        &server,
        "/items",
        &items(arn("ml/ITEMS"), r#"{"genres": "Drama"}"#),
    );
    assert_eq!(status, 200, "{message}");
    assert_eq!(stored(&home, "ml"), (1, 0));
}

#[test]
fn the_managed_services_limits_are_enforced_with_the_member_and_the_limit_named() {
    let home = Home::new();
    ok(home.cmd().arg("run").arg(pipeline(&home)));
    let tracking = tracking_id(&home);
    let server = Server::start(&home, &[("RECFLOW_API_TOKENS", "t0ken")]);
    let event = |extra: Value| {
        let mut e =
            serde_json::json!({"eventType": "watch", "sentAt": 1_700_000_000, "itemId": "50"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let events = |top: Value, list: Vec<Value>| {
        let mut b = serde_json::json!({"trackingId": tracking, "userId": "7", "sessionId": "s", "eventList": list});
        b.as_object_mut()
            .unwrap()
            .extend(top.as_object().unwrap().clone());
        b
    };
    let long = |n: usize| "x".repeat(n);
    let ok_event = event(serde_json::json!({}));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/events",
            events(
                serde_json::json!({}),
                vec![
                    ok_event.clone(),
                    ok_event.clone(),
                    event(serde_json::json!({"recommendationId": long(41)})),
                ],
            ),
            "eventList.3.recommendationId: at most 40 characters, got 41",
        ),
        (
            "/events",
            events(
                serde_json::json!({}),
                vec![event(serde_json::json!({"eventId": long(257)}))],
            ),
            "eventList.1.eventId: at most 256 characters, got 257",
        ),
        (
            "/events",
            events(
                serde_json::json!({"sessionId": long(257)}),
                vec![ok_event.clone()],
            ),
            "sessionId: at most 256 characters, got 257",
        ),
        (
            "/events",
            events(
                serde_json::json!({"userId": "a\u{1}b"}),
                vec![ok_event.clone()],
            ),
            "userId: control characters are not allowed (U+0001 at character 2)",
        ),
        (
            "/events",
            events(
                serde_json::json!({}),
                vec![event(
                    serde_json::json!({"properties": format!("{{\"a\": \"{}\"}}", long(1_020))}),
                )],
            ),
            "eventList.1.properties: at most 1024 characters, got 1029",
        ),
        (
            "/events",
            events(serde_json::json!({}), vec![ok_event.clone(); 11]),
            "eventList: must have 1 to 10 entries, got 11",
        ),
        (
            "/events",
            events(
                serde_json::json!({}),
                vec![event(serde_json::json!({"impression": vec!["1"; 26]}))],
            ),
            "eventList.1.impression: must have 1 to 25 entries, got 26",
        ),
        (
            "/items",
            serde_json::json!({"datasetArn": "ml/ITEMS", "items": (0..11).map(|i| serde_json::json!({"itemId": i.to_string()})).collect::<Vec<_>>()}),
            "items: must have 1 to 10 entries, got 11",
        ),
        (
            "/items",
            serde_json::json!({"datasetArn": "ml/ITEMS", "items": [{"itemId": long(257)}]}),
            "items.1.itemId: at most 256 characters, got 257",
        ),
        (
            "/recommendations",
            serde_json::json!({"campaignArn": "movies", "userId": "1", "numResults": 501}),
            "numResults: must be between 1 and 500, got 501",
        ),
        (
            "/personalize-ranking",
            serde_json::json!({"campaignArn": "movies", "userId": "1", "inputList": vec!["1"; 501]}),
            "inputList: must have 1 to 500 entries, got 501",
        ),
        (
            "/recommendations",
            serde_json::json!({"campaignArn": "movies", "userId": "1", "filterArn": "genre",
                "filterValues": (0..26).map(|i| (format!("K{i}"), Value::from("\"x\""))).collect::<serde_json::Map<_, _>>()}),
            "filterValues: at most 25 entries, got 26",
        ),
        (
            "/recommendations",
            serde_json::json!({"campaignArn": "movies", "userId": "1",
                "context": (0..151).map(|i| (format!("K{i}"), Value::from("x"))).collect::<serde_json::Map<_, _>>()}),
            "context: at most 150 entries, got 151",
        ),
        (
            "/recommendations",
            serde_json::json!({"campaignArn": "movies", "userId": "1", "promotions": [{"name": "p", "percentPromotedItems": 101, "filterArn": "genre"}]}),
            "promotions.1.percentPromotedItems: must be between 1 and 100, got 101",
        ),
        (
            "/events",
            serde_json::json!({"trackingId": tracking, "sessionId": "s", "eventList": [{"eventType": "watch", "sentAt": "yesterday"}]}),
            "eventList.1.sentAt: invalid type: string \"yesterday\"",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, code, message) = refused(&server, path, &body);
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidInputException"),
            "{path} {expected}: {message}"
        );
        assert!(
            message.contains(expected),
            "{path}: expected {expected:?} in {message:?}"
        );
    }
    assert_eq!(stored(&home, "ml"), (0, 0), "nothing refused was stored");
    // An unknown event property is refused like an item's.
    let (status, _, message) = refused(
        &server,
        "/events",
        &events(
            serde_json::json!({}),
            vec![event(
                serde_json::json!({"properties": "{\"mood\": \"happy\"}"}),
            )],
        ),
    );
    assert_eq!(status, 400, "{message}");
    assert!(
        message.contains(
            "eventList.1.properties.mood: \"mood\" is not a field of the INTERACTIONS dataset"
        ),
        "{message}"
    );
    // Within the limits, the same requests pass.
    let (status, _, message) = refused(
        &server,
        "/events",
        &events(
            serde_json::json!({}),
            vec![
                ok_event.clone(),
                event(
                    serde_json::json!({"recommendationId": long(40), "impression": vec!["1"; 25]}),
                ),
            ],
        ),
    );
    assert_eq!(status, 200, "{message}");
    assert_eq!(stored(&home, "ml"), (0, 2));
}

#[test]
fn metrics_need_a_credential_unless_opened_and_healthz_says_only_ok() {
    let home = Home::new();
    ok(home.cmd().arg("run").arg(pipeline(&home)));
    let get = |url: String, token: Option<&str>| {
        runtime().block_on(async {
            let mut req = reqwest::Client::new().get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let server = Server::start(
        &home,
        &[
            ("RECFLOW_READ_TOKENS", "r3ad"),
            ("RECFLOW_OPEN_METRICS", "0"),
        ],
    );
    let (status, body) = get(format!("{}/healthz", server.base), None);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = get(format!("{}/metrics", server.base), None);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
    assert!(!body.contains("movies"), "{body}");
    let (status, _) = get(format!("{}/metrics", server.base), Some("wrong"));
    assert_eq!(status, 403);
    let (status, body) = get(format!("{}/metrics", server.base), Some("r3ad"));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#"recflow_campaign_solution_version{campaign="movies"} 1"#),
        "{body}"
    );
    drop(server);
    // `--open-metrics` / RECFLOW_OPEN_METRICS=1 opens it (the harness's default).
    let server = Server::start(&home, &[("RECFLOW_READ_TOKENS", "r3ad")]);
    let (status, body) = get(format!("{}/metrics", server.base), None);
    assert_eq!(status, 200, "{body}");
}

/// A SigV4 `Authorization` for `body` (or for `UNSIGNED-PAYLOAD`), as the
/// SDKs compute it, with the x-amz-content-sha256 header signed.
fn sigv4_headers(host: &str, path: &str, body: &[u8], unsigned: bool) -> Vec<(String, String)> {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let hmac = |key: &[u8], data: &str| {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let now = chrono::Utc::now();
    let (date, stamp) = (
        now.format("%Y%m%d").to_string(),
        now.format("%Y%m%dT%H%M%SZ").to_string(),
    );
    let payload = if unsigned {
        "UNSIGNED-PAYLOAD".to_string()
    } else {
        hex::encode(Sha256::digest(body))
    };
    let signed = "content-type;host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "POST\n{path}\n\ncontent-type:application/json\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{stamp}\n\n{signed}\n{payload}"
    );
    let scope = format!("{date}/us-east-1/personalize/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(b"AWS4s3cret", &date);
    for part in ["us-east-1", "personalize", "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex::encode(hmac(&key, &to_sign));
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-amz-date".into(), stamp),
        ("x-amz-content-sha256".into(), payload),
        (
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDRECFLOWTEST/{scope}, SignedHeaders={signed}, Signature={signature}"
            ),
        ),
    ]
}

#[test]
fn a_request_signed_with_unsigned_payload_is_refused_so_its_body_cannot_be_swapped() {
    let home = Home::new();
    ok(home.cmd().arg("run").arg(pipeline(&home)));
    let server = Server::start(&home, &[("RECFLOW_ACCESS_KEYS", "AKIDRECFLOWTEST:s3cret")]);
    let host = server.base.trim_start_matches("http://").to_string();
    let send = |headers: Vec<(String, String)>, body: &str| {
        runtime().block_on(async {
            let mut req = reqwest::Client::new()
                .post(format!("{}/recommendations", server.base))
                .body(body.to_string());
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            (status, body)
        })
    };
    let body = r#"{"campaignArn": "movies", "userId": "1"}"#;
    // The signer is right: the body's hash signed is accepted.
    let (status, answer) = send(
        sigv4_headers(&host, "/recommendations", body.as_bytes(), false),
        body,
    );
    assert_eq!(status, 200, "{answer}");
    // Signed with UNSIGNED-PAYLOAD: refused, with the body it was signed
    // with and with another one.
    let headers = sigv4_headers(&host, "/recommendations", body.as_bytes(), true);
    for b in [
        body,
        r#"{"campaignArn": "movies", "userId": "2", "numResults": 500}"#,
    ] {
        let (status, answer) = send(headers.clone(), b);
        assert_eq!(status, 403, "{answer}");
        assert_eq!(answer["__type"], "IncompleteSignatureException", "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("UNSIGNED-PAYLOAD"),
            "{answer}"
        );
    }
}

/// Overload is refused at once with the managed service's
/// ThrottlingException (HTTP 400, its code in `__type` and
/// `x-amzn-ErrorType`, which the SDKs retry with backoff), counted in
/// /metrics; the requests admitted are answered.
#[test]
fn overload_is_shed_with_throttling_exception() {
    let home = Home::new();
    ok(home.cmd().arg("run").arg(pipeline(&home)));
    // One scoring thread, at most one request waiting, for 1 ms.
    let server = Server::start(
        &home,
        &[
            ("RECFLOW_OPEN_RECOMMENDATIONS", "true"),
            ("RECFLOW_SCORING_THREADS", "1"),
            ("RECFLOW_MAX_QUEUE_MS", "1"),
            ("RECFLOW_MAX_QUEUED", "1"),
        ],
    );
    let url = format!("{}/recommendations", server.base);
    let answers = runtime().block_on(async {
        let client = reqwest::Client::new();
        let all = (0..200).map(|i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let body = serde_json::json!({"campaignArn": "movies", "userId": (i % 943 + 1).to_string(), "numResults": 500});
                let r = client.post(&url).body(body.to_string()).send().await.unwrap();
                let status = r.status().as_u16();
                let code = r
                    .headers()
                    .get("x-amzn-ErrorType")
                    .map(|v| v.to_str().unwrap().to_string());
                (status, code, r.text().await.unwrap())
            }
        });
        futures::future::join_all(all).await
    });
    let served = answers.iter().filter(|a| a.0 == 200).count();
    let shed: Vec<_> = answers.iter().filter(|a| a.0 != 200).collect();
    assert!(served >= 1, "some requests are answered");
    assert!(
        !shed.is_empty(),
        "200 requests at once on one thread: some are shed"
    );
    for (status, code, body) in &shed {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(code.as_deref(), Some("ThrottlingException"), "{body}");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["__type"], "ThrottlingException", "{body}");
        assert!(
            v["message"].as_str().unwrap().contains("within 1 ms"),
            "{body}"
        );
    }
    let metrics = get_json_text(&format!("{}/metrics", server.base));
    let line = format!(
        "recflow_requests_shed_total{{operation=\"GetRecommendations\",campaign=\"movies\"}} {}",
        shed.len()
    );
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
}

fn get_json_text(url: &str) -> String {
    runtime().block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}
