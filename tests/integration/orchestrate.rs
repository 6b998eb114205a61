//! Orchestration end to end: retries, timeouts, trigger rules, templates,
//! parallel steps and the failure webhook in a foreground run; the daemon
//! with triggers, the HTTP API, file reloads, cancel and SIGTERM; and crash
//! recovery after SIGKILL during an import, a training and an export.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use recflow::store::{
    AttemptRecord, RunQuery, RunStatus, StateStore, StepStatus, VersionKind, VersionQuery,
    VersionStatus,
};
use serde_json::{Value, json};

use crate::common::{Home, eventually, eventually_within, example, fails, ok, run, shared_runtime};

pub(crate) fn store(home: &Home) -> Box<dyn StateStore> {
    let url = format!("sqlite://{}", home.home().join("state.db").display());
    shared_runtime()
        .block_on(recflow::store::open(&url))
        .expect("state store")
}

pub(crate) fn attempts(home: &Home, run: i64) -> Vec<AttemptRecord> {
    shared_runtime()
        .block_on(store(home).list_attempts(run))
        .unwrap()
}

fn attempt<'a>(all: &'a [AttemptRecord], step: &str, n: i64) -> &'a AttemptRecord {
    all.iter()
        .find(|a| a.step_id == step && a.attempt == n)
        .unwrap_or_else(|| panic!("no attempt {n} of {step}: {all:#?}"))
}

fn status_of(all: &[AttemptRecord], step: &str) -> (i64, StepStatus) {
    let last = all
        .iter()
        .filter(|a| a.step_id == step)
        .max_by_key(|a| a.attempt)
        .unwrap_or_else(|| panic!("no {step}"));
    (last.attempt, last.status)
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// A one-shot HTTP server on 127.0.0.1 that answers 200 and hands over the
/// body of the first request.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                    tx.send(serde_json::from_str(&body[..len]).unwrap())
                        .unwrap();
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });
    (url, rx)
}

const FLOW: &str = r#"
name: flow
dataset_group: g
max_parallel_steps: 2
params:
  greeting: hello
  top_n: {type: integer, default: 3}
defaults: {retry_delay: 1s}
on_failure: {webhook: WEBHOOK}
steps:
  - id: flaky
    type: shell
    command: 'if [ -f TMP/tried ]; then echo "ready {{ params.top_n }}"; else touch TMP/tried; echo "not yet" >&2; exit 3; fi'
    retries: 2
  - {id: slow, type: shell, command: sleep 30, timeout: 1s}
  - {id: after_slow, type: noop, depends_on: [slow]}
  - id: greet
    type: shell
    depends_on: [flaky]
    command: 'echo "{{ params.greeting }} {{ ds }} {{ steps.flaky.outputs.last_line }} run {{ run_id }}"'
  - {id: alert, type: shell, command: echo alert, depends_on: [slow], trigger_rule: one_failed}
  - {id: not_needed, type: noop, depends_on: [greet], trigger_rule: one_failed}
  - {id: cleanup, type: noop, depends_on: [after_slow, greet], trigger_rule: all_done}
"#;

#[test]
fn a_run_retries_times_out_follows_trigger_rules_renders_templates_and_calls_the_webhook() {
    let home = Home::new();
    let (hook, received) = webhook_receiver();
    let text = FLOW
        .replace("WEBHOOK", &hook)
        .replace("TMP", &home.path().display().to_string());
    let file = home.write("flow.yaml", text);
    let out = fails(
        home.cmd()
            .arg("run")
            .arg(&file)
            .args(["--param", "greeting=hi"]),
    );
    assert!(out.stdout.contains("Run 1 failed"), "{}", out.all());

    let all = attempts(&home, 1);
    // Retried after a failure, with a back-off of about retry_delay (1s, jittered down by at most half).
    let first = attempt(&all, "flaky", 1);
    assert_eq!(first.status, StepStatus::Failed);
    assert!(
        first.error.as_deref().unwrap().contains("not yet"),
        "{first:?}"
    );
    let second = attempt(&all, "flaky", 2);
    assert_eq!(second.status, StepStatus::Succeeded);
    assert!(
        secs(first.finished_at.unwrap(), second.started_at.unwrap()) >= 0.5,
        "{all:#?}"
    );
    // The timeout stopped the sleep; no retries were asked for.
    let slow = attempt(&all, "slow", 1);
    assert_eq!(slow.status, StepStatus::Failed);
    assert_eq!(slow.error.as_deref(), Some("timed out after 1s"));
    assert!(secs(slow.started_at.unwrap(), slow.finished_at.unwrap()) < 10.0);
    // Independent steps ran at the same time.
    assert!(
        first.started_at.unwrap() < slow.finished_at.unwrap()
            && slow.started_at.unwrap() < first.finished_at.unwrap()
    );
    // Trigger rules.
    assert_eq!(
        status_of(&all, "after_slow"),
        (0, StepStatus::UpstreamFailed)
    );
    assert_eq!(status_of(&all, "alert"), (1, StepStatus::Succeeded));
    assert_eq!(status_of(&all, "not_needed"), (0, StepStatus::Skipped));
    assert_eq!(status_of(&all, "cleanup"), (1, StepStatus::Succeeded));
    // Templates: a parameter given on the command line, the logical date, an earlier step's output.
    let greet = ok(home.cmd().args(["runs", "logs", "1", "greet"])).stdout;
    let ds = Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        greet.contains(&format!("stdout: hi {ds} ready 3 run 1")),
        "{greet}"
    );
    let log = ok(home
        .cmd()
        .args(["runs", "logs", "1", "flaky", "--attempt", "1"]))
    .stdout;
    assert!(log.contains("stderr: not yet"), "{log}");
    let show = ok(home.cmd().args(["runs", "show", "1"])).stdout;
    assert!(
        show.contains("upstream_failed") && show.contains("timed out after 1s"),
        "{show}"
    );
    // The run history filters by state and age.
    let listed = |args: &[&str]| {
        let out = ok(home.cmd().args(["runs", "list"]).args(args)).stdout;
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(&["--status", "failed,cancelled", "--since", "1d"]),
        ["1"]
    );
    assert!(listed(&["--status", "succeeded"]).is_empty());
    assert!(
        listed(&["--until", "1d"]).is_empty(),
        "nothing is a day old"
    );
    let bad = fails(home.cmd().args(["runs", "list", "--since", "yesterday"]));
    assert!(
        bad.all().contains("invalid time \"yesterday\""),
        "{}",
        bad.all()
    );

    // The webhook got the run summary.
    let body = received
        .recv_timeout(Duration::from_secs(10))
        .expect("webhook called");
    assert_eq!(
        (body["run_id"].as_i64(), body["status"].as_str()),
        (Some(1), Some("failed"))
    );
    assert!(
        body["error"].as_str().unwrap().contains("step slow failed"),
        "{body}"
    );

    // `runs retry` reruns what failed and not what succeeded.
    std::fs::write(
        &file,
        FLOW.replace("WEBHOOK", &hook)
            .replace("TMP", &home.path().display().to_string())
            .replace("sleep 30", "true"),
    )
    .unwrap();
    let out = fails(home.cmd().args(["runs", "retry", "1"]));
    assert!(
        out.stdout.contains("Run 1 failed"),
        "the run keeps its own pipeline text: {}",
        out.all()
    );
    let all = attempts(&home, 1);
    assert_eq!(status_of(&all, "slow"), (2, StepStatus::Failed));
    assert_eq!(status_of(&all, "flaky"), (2, StepStatus::Succeeded));
}

#[test]
fn validate_names_orchestration_mistakes() {
    let home = Home::new();
    let parse_time = home.write(
        "templates.yaml",
        "name: t\ndataset_group: g\nparams: {region: eu}\nsteps:\n  - {id: a, type: shell, command: 'echo {{ params.regoin }}'}\n  - {id: b, type: shell, command: 'echo {{ steps.a.outputs.exit_code }}'}\n  - {id: c, type: noop, timeout: ten minutes}\n",
    );
    let out = fails(home.cmd().arg("validate").arg(&parse_time));
    assert!(
        out.all().contains(
            "steps[0] (a).command: unknown template variable `params.regoin`: keys of `params`: region"
        ),
        "{}",
        out.all()
    );
    assert!(out.all().contains("steps[1] (b).command: unknown template variable `steps.a.outputs.exit_code`: `steps` has no upstream steps"), "{}", out.all());
    assert!(
        out.all()
            .contains("steps[2] (c).timeout: invalid duration \"ten minutes\""),
        "{}",
        out.all()
    );

    let checks = home.write(
        "checks.yaml",
        "name: c\ndataset_group: g\nschedule: '30 25 * * *'\ntimezone: Europe/Berlin\nparams: {region: {type: string}}\nsteps:\n  - {id: a, type: noop, trigger_rule: one_failed}\n",
    );
    let out = fails(home.cmd().arg("validate").arg(&checks));
    for expected in [
        "schedule: bad cron expression \"30 25 * * *\": hour 25 out of range 0-23",
        "params.region: a scheduled pipeline's parameters need defaults",
        "steps[0] (a).trigger_rule: a trigger rule applies to the steps in depends_on",
    ] {
        assert!(
            out.all().contains(expected),
            "missing {expected:?} in {}",
            out.all()
        );
    }
    let tz = home.write("tz.yaml", "name: z\ndataset_group: g\nschedule: '@daily'\ntimezone: Mars/Base\nsteps:\n  - {id: a, type: noop}\n");
    let out = fails(home.cmd().arg("validate").arg(&tz));
    assert!(
        out.all()
            .contains("timezone: unknown time zone \"Mars/Base\""),
        "{}",
        out.all()
    );
}

/// A running `recflow schedule`, killed when dropped.
pub(crate) struct Daemon {
    pub(crate) child: Child,
}

impl Daemon {
    pub(crate) fn start(home: &Home, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("recflow"));
        cmd.arg("--home")
            .arg(home.home())
            .arg("schedule")
            .arg(dir)
            .args(["--stale-after", "3s", "--reload-interval", "200ms"])
            .args(args)
            .env_remove("RECFLOW_HOME")
            .env_remove("RECFLOW_STATE_URL")
            .env_remove("RECFLOW_WAREHOUSE")
            .env_remove("RECFLOW_API_TOKENS")
            .env_remove("RECFLOW_BIND")
            .env_remove("RECFLOW_ACCESS_KEYS")
            .env("RECFLOW_NO_PROGRESS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon {
            child: cmd.spawn().expect("recflow schedule starts"),
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    shared_runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (
                    status,
                    serde_json::from_str(&text).unwrap_or(Value::String(text)),
                )
            }
            Err(e) => (0, Value::String(e.to_string())),
        }
    })
}

pub(crate) fn run_status(home: &Home, run: i64) -> RunStatus {
    shared_runtime()
        .block_on(store(home).get_run(run))
        .unwrap()
        .status
}

const WORK: &str = "name: work\ndataset_group: g\nparams: {n: 1}\nsteps:\n  - {id: say, type: shell, command: 'echo run {{ params.n }} for {{ ds }}'}\n";

#[test]
fn the_daemon_runs_triggers_and_api_calls_reloads_files_cancels_and_stops_on_sigterm() {
    let home = Home::new();
    let dir = home.path().join("pipelines");
    home.write("pipelines/work.yaml", WORK);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("http://127.0.0.1:{port}/api/v1");
    // The address comes from RECFLOW_BIND, the variable `serve` reads too.
    let bind = format!("127.0.0.1:{port}");
    let daemon = Daemon::start(
        &home,
        &dir,
        &[],
        &[("RECFLOW_API_TOKENS", "secret"), ("RECFLOW_BIND", &bind)],
    );
    eventually(
        || match http("GET", &format!("{api}/pipelines"), Some("secret"), None) {
            (200, v) if v["pipelines"][0]["name"] == "work" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    // `recflow trigger --wait` queues a run that the daemon executes.
    let out = ok(home.cmd().args([
        "trigger",
        "work",
        "--param",
        "n=7",
        "--logical-date",
        "2026-11-21",
        "--wait",
    ]));
    let run: i64 = out.stdout.trim().parse().expect("the run id");
    assert!(
        ok(home.cmd().args(["runs", "logs", &run.to_string(), "say"]))
            .stdout
            .contains("stdout: run 7 for 2026-11-21")
    );
    assert!(
        fails(home.cmd().args(["trigger", "work", "--param", "n=x"]))
            .all()
            .contains("parameter n: expected an integer, found \"x\"")
    );
    assert!(
        fails(home.cmd().args(["trigger", "nope"]))
            .all()
            .contains("pipeline \"nope\" is not known")
    );

    // The API: authentication first, then runs by POST, read back by GET.
    assert_eq!(http("GET", &format!("{api}/pipelines"), None, None).0, 403);
    assert_eq!(
        http("GET", &format!("{api}/pipelines"), Some("wrong"), None).0,
        403
    );
    let (code, body) = http(
        "POST",
        &format!("{api}/pipelines/work/runs"),
        Some("secret"),
        Some(json!({"params": {"n": 8}})),
    );
    assert_eq!(code, 201, "{body}");
    let id = body["run"]["id"].as_i64().unwrap();
    eventually(
        || match http("GET", &format!("{api}/runs/{id}"), Some("secret"), None) {
            (200, v) if v["run"]["status"] == "succeeded" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let (code, body) = http(
        "POST",
        &format!("{api}/pipelines/work/runs"),
        Some("secret"),
        Some(json!({"params": {"n": "x"}})),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        http(
            "POST",
            &format!("{api}/pipelines/nope/runs"),
            Some("secret"),
            Some(json!({}))
        )
        .0,
        404
    );

    // An invalid change is reported and the previous version keeps running.
    home.write("pipelines/work.yaml", format!("{WORK}    surprise: 1\n"));
    std::thread::sleep(Duration::from_millis(800));
    let out = ok(home.cmd().args(["trigger", "work", "--wait"]));
    let run: i64 = out.stdout.trim().parse().unwrap();
    assert_eq!(run_status(&home, run), RunStatus::Succeeded);

    // A valid change is picked up: a long step, cancelled through the API.
    home.write(
        "pipelines/work.yaml",
        format!("{WORK}  - {{id: long, type: shell, command: sleep 60, depends_on: [say]}}\n"),
    );
    eventually(|| {
        match shared_runtime()
            .block_on(store(&home).get_pipeline("work"))
            .unwrap()
        {
            Some((_, text)) if text.contains("long") => Ok(()),
            other => Err(format!("not reloaded yet: {other:?}")),
        }
    });
    let (code, body) = http(
        "POST",
        &format!("{api}/pipelines/work/runs"),
        Some("secret"),
        Some(json!({})),
    );
    assert_eq!(code, 201, "{body}");
    let id = body["run"]["id"].as_i64().unwrap();
    eventually(
        || match attempts(&home, id).iter().find(|a| a.step_id == "long") {
            Some(a) if a.status == StepStatus::Running => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let (code, body) = http(
        "POST",
        &format!("{api}/runs/{id}/cancel"),
        Some("secret"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    eventually(|| match run_status(&home, id) {
        RunStatus::Cancelled => Ok(()),
        s => Err(format!("{s}")),
    });
    let long = attempt(&attempts(&home, id), "long", 1).clone();
    assert_eq!(long.status, StepStatus::Failed);
    assert!(long.error.unwrap().contains("cancelled"));

    // SIGTERM: nothing new starts, the running attempt finishes, the daemon exits cleanly.
    home.write(
        "pipelines/work.yaml",
        format!("{WORK}  - {{id: brief, type: shell, command: sleep 2, depends_on: [say]}}\n"),
    );
    eventually(|| {
        match shared_runtime()
            .block_on(store(&home).get_pipeline("work"))
            .unwrap()
        {
            Some((_, text)) if text.contains("brief") => Ok(()),
            other => Err(format!("not reloaded yet: {other:?}")),
        }
    });
    let run: i64 = ok(home.cmd().args(["trigger", "work"]))
        .stdout
        .trim()
        .parse()
        .unwrap();
    eventually(
        || match attempts(&home, run).iter().find(|a| a.step_id == "brief") {
            Some(a) if a.status == StepStatus::Running => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    daemon.signal("-TERM");
    let mut daemon = daemon;
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        status_of(&attempts(&home, run), "brief"),
        (1, StepStatus::Succeeded)
    );
    assert_eq!(run_status(&home, run), RunStatus::Succeeded);
}

/// Online Retail into interactions (a few seconds), an ALS model, its
/// campaign and recommendations for every customer.
fn crash_pipeline(home: &Home) -> PathBuf {
    home.write(
        "pipelines/crash.yaml",
        format!(
            r#"
name: crash
dataset_group: retail
datasets:
  interactions:
    schema:
      fields:
        - {{name: USER_ID, type: string}}
        - {{name: ITEM_ID, type: string}}
        - {{name: TIMESTAMP, type: long}}
solutions:
  recs: {{recipe: user-personalization, factors: 64, iterations: 30}}
campaigns:
  shop: {{solution: recs}}
steps:
  - id: import
    type: import
    dataset: interactions
    source: {source}
    sql: |
      SELECT "Customer ID" AS USER_ID, StockCode AS ITEM_ID, InvoiceDate AS TIMESTAMP
      FROM source WHERE "Customer ID" IS NOT NULL AND Quantity > 0
  - {{id: train, type: train, solution: recs, depends_on: [import]}}
  - {{id: deploy, type: deploy, campaign: shop, depends_on: [train]}}
  - {{id: export, type: batch_inference, campaign: shop, users: all, num_results: 200, depends_on: [deploy]}}
"#,
            source = example("data/online_retail/online_retail_ii_2009_2010.parquet"),
        ),
    )
}

#[test]
fn sigkill_during_import_training_and_export_then_a_restart_completes_the_run() {
    let home = Home::new();
    crash_pipeline(&home);
    let dir = home.path().join("pipelines");
    let mut daemon = Daemon::start(&home, &dir, &[], &[]);
    eventually(|| {
        let out = home.cmd().args(["trigger", "crash"]).output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    });
    let run = 1;
    for step in ["import", "train", "export"] {
        // Kill the daemon while the step runs.
        eventually_within(Duration::from_secs(120), &mut || match attempts(&home, run)
            .iter()
            .filter(|a| a.step_id == step)
            .max_by_key(|a| a.attempt)
        {
            Some(a) if a.status == StepStatus::Running => Ok(()),
            other => Err(format!("waiting for {step} to run: {other:?}")),
        });
        daemon.signal("-KILL");
        let _ = daemon.child.wait();
        let all = attempts(&home, run);
        let killed = all
            .iter()
            .filter(|a| a.step_id == step)
            .max_by_key(|a| a.attempt)
            .unwrap();
        assert_eq!(
            killed.status,
            StepStatus::Running,
            "{step} was still running when killed"
        );
        daemon = Daemon::start(&home, &dir, &[], &[]);
    }
    eventually_within(
        Duration::from_secs(180),
        &mut || match run_status(&home, run) {
            RunStatus::Succeeded => Ok(()),
            s => Err(format!("run {s}: {:#?}", attempts(&home, run))),
        },
    );

    let all = attempts(&home, run);
    for step in ["import", "train", "export"] {
        // The killed attempt is failed as interrupted and retried once; the
        // steps before it were not redone.
        let lost = attempt(&all, step, 1);
        assert!(
            lost.status == StepStatus::Failed && lost.interrupted,
            "{lost:?}"
        );
        assert!(
            lost.error
                .as_deref()
                .unwrap()
                .contains("stopped heartbeating"),
            "{lost:?}"
        );
        assert_eq!(
            status_of(&all, step),
            (2, StepStatus::Succeeded),
            "{all:#?}"
        );
    }
    assert_eq!(status_of(&all, "deploy"), (1, StepStatus::Succeeded));

    // No partial dataset version or model is visible: the killed attempts'
    // versions are failed, the active ones are the retries'.
    let s = store(&home);
    let rt = shared_runtime();
    for (kind, owner) in [
        (VersionKind::Dataset, "retail/interactions"),
        (VersionKind::Solution, "recs"),
    ] {
        let versions = rt
            .block_on(s.list_versions(&VersionQuery::all(kind, Some(owner))))
            .unwrap();
        let active: Vec<i64> = versions
            .iter()
            .filter(|v| v.status == VersionStatus::Active)
            .map(|v| v.version)
            .collect();
        assert_eq!(active.len(), 1, "{versions:#?}");
        assert!(
            versions.iter().all(|v| v.status != VersionStatus::Creating),
            "{versions:#?}"
        );
        let latest = rt
            .block_on(s.latest_active_version(kind, owner))
            .unwrap()
            .unwrap();
        assert_eq!(
            latest.step_id.as_deref(),
            Some(if kind == VersionKind::Dataset {
                "import"
            } else {
                "train"
            })
        );
    }
    // The export holds exactly what its manifest lists.
    let out_dir = home.warehouse().join("exports/crash/export/run-1");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("_manifest.json")).unwrap()).unwrap();
    let mut listed: Vec<String> = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    let mut present: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
        .collect();
    listed.sort();
    present.sort();
    assert_eq!(listed, present);
    assert!(
        manifest["counts"]["lines_out"].as_u64().unwrap() > 4000,
        "{manifest}"
    );
}

#[test]
fn the_nightly_example_renders_params_and_step_outputs_into_typed_settings() {
    let home = Home::new();
    let out = ok(home
        .cmd()
        .args(["run", &example("nightly.yaml"), "--param", "top_n=5"]));
    assert!(out.stdout.contains("Run 1 succeeded"), "{}", out.all());
    let dir = home.warehouse().join("exports/nightly/export/run-1");
    let lines = crate::common::read_json_lines(&dir.join("all-users.out"));
    assert_eq!(lines.len(), 943);
    assert!(
        lines
            .iter()
            .all(|l| l["output"]["recommendedItems"].as_array().unwrap().len() == 5)
    );
    let all = attempts(&home, 1);
    assert_eq!(status_of(&all, "page_on_failure"), (0, StepStatus::Skipped));
    let announce = ok(home.cmd().args(["runs", "logs", "1", "announce"])).stdout;
    assert!(
        announce.contains("943 users' recommendations for"),
        "{announce}"
    );
    // A parameter of the wrong type is refused before anything runs.
    let out = fails(
        home.cmd()
            .args(["run", &example("nightly.yaml"), "--param", "top_n=many"]),
    );
    assert!(
        out.all()
            .contains("parameter top_n: expected an integer, found \"many\""),
        "{}",
        out.all()
    );
}

/// A fresh database on the test PostgreSQL server (`scripts/test` starts
/// one); `None` outside CI when there is none.
pub(crate) fn fresh_postgres_database() -> Option<String> {
    let Ok(base) = std::env::var("RECFLOW_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RECFLOW_TEST_POSTGRES_URL is not set: run the suite with scripts/test, which starts PostgreSQL"
        );
        eprintln!("skipping: RECFLOW_TEST_POSTGRES_URL is not set (scripts/test sets it)");
        return None;
    };
    let name = format!("recflow_daemons_{}", uuid::Uuid::new_v4().simple());
    shared_runtime().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::postgres::PgConnection::connect(&base)
            .await
            .expect("PostgreSQL reachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

#[test]
fn two_daemons_share_postgres_and_survive_one_being_killed() {
    let Some(url) = fresh_postgres_database() else {
        return;
    };
    let home = Home::new();
    let outputs = home.path().join("outputs");
    std::fs::create_dir_all(&outputs).unwrap();
    // Twelve parallel steps that each append their id to the run's file
    // once they have slept: a step run twice shows up twice.
    let mut text = String::from(
        "name: fan\ndataset_group: g\nschedule: '* * * * *'\ncatchup: all\nmax_catchup_runs: 3\nmax_active_runs: 4\nmax_parallel_steps: 12\nsteps:\n",
    );
    for i in 0..12 {
        text.push_str(&format!(
            "  - {{id: s{i}, type: shell, command: 'sleep 1.5 && echo s{i} >> {}/run-{{{{ run_id }}}}.txt'}}\n",
            outputs.display()
        ));
    }
    text.push_str("  - {id: done, type: noop, depends_on: [s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11]}\n");
    home.write("pipelines/fan.yaml", text);
    let dir = home.path().join("pipelines");
    let rt = shared_runtime();
    let store = rt.block_on(recflow::store::open(&url)).unwrap();
    let fan_runs = RunQuery {
        pipeline: Some("fan".into()),
        ..RunQuery::newest(100)
    };
    // The schedule was last handled five minutes ago: the daemon that holds
    // the scheduler lease catches up the three latest minutes.
    rt.block_on(store.set_schedule_cursor("fan", Utc::now() - chrono::Duration::minutes(5)))
        .unwrap();

    let env = [("RECFLOW_STATE_URL", url.as_str())];
    let mut a = Daemon::start(&home, &dir, &["--workers", "8"], &env);
    let b = Daemon::start(&home, &dir, &["--workers", "8"], &env);
    // Kill the first daemon once it runs attempts.
    let pid = format!(":{}:", a.child.id());
    eventually_within(Duration::from_secs(60), &mut || {
        let runs = rt.block_on(store.list_runs(&fan_runs)).unwrap();
        let running = runs
            .iter()
            .flat_map(|r| rt.block_on(store.list_attempts(r.id)).unwrap())
            .filter(|x| {
                x.status == StepStatus::Running
                    && x.worker.as_deref().is_some_and(|w| w.contains(&pid))
            })
            .count();
        if running >= 2 {
            Ok(())
        } else {
            Err(format!(
                "{running} attempts running on the first daemon; runs {runs:#?}"
            ))
        }
    });
    a.signal("-KILL");
    let _ = a.child.wait();

    eventually_within(Duration::from_secs(120), &mut || {
        let runs = rt.block_on(store.list_runs(&fan_runs)).unwrap();
        if runs.len() >= 3 && runs.iter().all(|r| r.status == RunStatus::Succeeded) {
            Ok(())
        } else {
            Err(format!(
                "{:?}",
                runs.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>()
            ))
        }
    });
    drop(b);

    let runs = rt.block_on(store.list_runs(&fan_runs)).unwrap();
    // Each scheduled time fired once: three catch-up runs, three distinct minutes.
    let mut minutes: Vec<_> = runs
        .iter()
        .filter(|r| r.trigger == "schedule")
        .map(|r| r.logical_date.unwrap())
        .collect();
    minutes.sort();
    minutes.dedup();
    assert!(minutes.len() >= 3, "{runs:#?}");
    assert_eq!(
        minutes.len(),
        runs.iter().filter(|r| r.trigger == "schedule").count()
    );
    let mut interrupted = 0;
    for run in &runs {
        let all = rt.block_on(store.list_attempts(run.id)).unwrap();
        interrupted += all.iter().filter(|x| x.interrupted).count();
        for i in 0..12 {
            let step = format!("s{i}");
            let ok = all
                .iter()
                .filter(|x| x.step_id == step && x.status == StepStatus::Succeeded)
                .count();
            assert_eq!(ok, 1, "run {} step {step}: {all:#?}", run.id);
        }
        // Every step's line is in the file. A step whose attempt died with
        // the killed daemon may have written it twice: if the kill came after
        // its command ended but before its success was recorded, the retry
        // runs it again (a shell step is at least once, as in Airflow). Any
        // other step wrote it exactly once.
        let lines = std::fs::read_to_string(outputs.join(format!("run-{}.txt", run.id))).unwrap();
        for i in 0..12 {
            let step = format!("s{i}");
            let written = lines.lines().filter(|l| *l == step).count();
            let was_interrupted = all.iter().any(|x| x.step_id == step && x.interrupted);
            let allowed = if was_interrupted { 1..=2 } else { 1..=1 };
            assert!(
                allowed.contains(&written),
                "run {} step {step} wrote its line {written} times (interrupted: {was_interrupted}): {lines}",
                run.id
            );
        }
    }
    assert!(
        interrupted >= 2,
        "the killed daemon's attempts were failed as interrupted and retried"
    );
}

#[test]
fn a_sensor_waits_for_its_object_and_times_out_without_it() {
    let home = Home::new();
    let tmp = home.path().display().to_string();
    let file = home.write(
        "sensor.yaml",
        format!(
            "name: sensor\ndataset_group: g\nsteps:\n  - {{id: produce, type: shell, command: 'sleep 1 && touch {tmp}/ready'}}\n  - {{id: wait, type: wait_for, path: '{tmp}/ready', poke_interval: 200ms}}\n  - {{id: never, type: wait_for, path: '{tmp}/never/', poke_interval: 200ms, timeout: 1s}}\n"
        ),
    );
    fails(home.cmd().arg("run").arg(&file));
    let all = attempts(&home, 1);
    let wait = attempt(&all, "wait", 1);
    assert_eq!(wait.status, StepStatus::Succeeded);
    let checks: u32 = wait
        .summary
        .as_deref()
        .unwrap()
        .split(" found after ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(checks > 1, "it waited: {wait:?}");
    let never = attempt(&all, "never", 1);
    assert_eq!(
        (never.status, never.error.as_deref()),
        (StepStatus::Failed, Some("timed out after 1s"))
    );
}

#[test]
fn run_timeout_stops_the_run_and_a_dead_webhook_leaves_its_status_alone() {
    let home = Home::new();
    // Port 1 on loopback: nothing listens, the webhook fails.
    let file = home.write(
        "deadline.yaml",
        "name: deadline\ndataset_group: g\nrun_timeout: 1s\non_failure: {webhook: 'http://127.0.0.1:1/hook'}\nsteps:\n  - {id: long, type: shell, command: sleep 60}\n  - {id: after, type: noop, depends_on: [long]}\n",
    );
    let out = fails(home.cmd().arg("run").arg(&file));
    assert!(
        out.stdout.contains("the run timed out (run_timeout 1s)"),
        "{}",
        out.all()
    );
    let all = attempts(&home, 1);
    let long = attempt(&all, "long", 1);
    assert_eq!(long.status, StepStatus::Failed);
    assert!(
        long.error.as_deref().unwrap().contains("timed out"),
        "{long:?}"
    );
    assert!(
        secs(long.started_at.unwrap(), long.finished_at.unwrap()) < 30.0,
        "{long:?}"
    );
    assert_eq!(status_of(&all, "after"), (0, StepStatus::Skipped));
    assert_eq!(run_status(&home, 1), RunStatus::Failed);
}

#[test]
fn sigterm_past_the_grace_period_interrupts_and_the_next_daemon_retries() {
    let home = Home::new();
    home.write(
        "pipelines/grace.yaml",
        "name: grace\ndataset_group: g\nsteps:\n  - {id: work, type: shell, command: 'sleep 4 && echo done'}\n",
    );
    let dir = home.path().join("pipelines");
    let mut daemon = Daemon::start(&home, &dir, &["--grace-period", "1s"], &[]);
    eventually(|| {
        let out = home.cmd().args(["trigger", "grace"]).output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    });
    eventually(|| match attempts(&home, 1).first() {
        Some(a) if a.status == StepStatus::Running => Ok(()),
        other => Err(format!("{other:?}")),
    });
    daemon.signal("-TERM");
    assert!(daemon.child.wait().unwrap().success());
    let first = attempt(&attempts(&home, 1), "work", 1).clone();
    assert!(
        first.status == StepStatus::Failed && first.interrupted,
        "{first:?}"
    );
    assert!(first.error.unwrap().contains("shut down"));
    assert_eq!(
        run_status(&home, 1),
        RunStatus::Running,
        "the run waits for a daemon"
    );

    let _next = Daemon::start(&home, &dir, &[], &[]);
    eventually(|| match run_status(&home, 1) {
        RunStatus::Succeeded => Ok(()),
        s => Err(format!("{s}")),
    });
    assert_eq!(
        status_of(&attempts(&home, 1), "work"),
        (2, StepStatus::Succeeded)
    );
}

#[test]
fn a_foreground_run_whose_process_is_killed_is_ended_by_a_daemon_and_can_be_retried() {
    let home = Home::new();
    let marker = home.path().join("second-time");
    let file = home.write(
        "pipelines/fg.yaml",
        format!(
            "name: fg\ndataset_group: g\nsteps:\n  - {{id: long, type: shell, command: 'if [ -f {m} ]; then echo quick; else touch {m}; sleep 60; fi'}}\n",
            m = marker.display()
        ),
    );
    let mut fg = home
        .process()
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(|| match std::fs::metadata(&marker) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    });
    fg.kill().unwrap();
    let _ = fg.wait();
    assert_eq!(run_status(&home, 1), RunStatus::Running);

    // A daemon fails the lost attempt, then ends the abandoned run.
    let dir = home.path().join("pipelines");
    let _daemon = Daemon::start(&home, &dir, &[], &[]);
    eventually(|| match run_status(&home, 1) {
        RunStatus::Failed => Ok(()),
        s => Err(format!("{s}")),
    });
    let run = shared_runtime().block_on(store(&home).get_run(1)).unwrap();
    assert!(run.error.unwrap().contains("recflow runs retry 1"));
    let lost = attempt(&attempts(&home, 1), "long", 1).clone();
    assert!(lost.interrupted, "{lost:?}");
    // The retry finishes it in the foreground.
    ok(home.cmd().args(["runs", "retry", "1"]));
    assert_eq!(run_status(&home, 1), RunStatus::Succeeded);
    assert_eq!(
        status_of(&attempts(&home, 1), "long"),
        (2, StepStatus::Succeeded)
    );
}

#[test]
fn a_running_steps_log_can_be_read_before_it_ends() {
    let home = Home::new();
    let release = home.path().join("release");
    let file = home.write(
        "live.yaml",
        format!(
            "name: live\ndataset_group: g\nsteps:\n  - {{id: talk, type: shell, command: 'echo first line; while [ ! -f {r} ]; do sleep 0.1; done; echo last line'}}\n",
            r = release.display()
        ),
    );
    let mut fg = home
        .process()
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // While the step waits, its first line is already in the store.
    eventually(|| {
        let log = run(home.cmd().args(["runs", "logs", "1", "talk"])).stdout;
        if log.contains("stdout: first line") {
            Ok(())
        } else {
            Err(format!("log so far: {log:?}"))
        }
    });
    // `runs logs --follow` prints what is there and then each new line
    // until the attempt ends.
    let follow = home
        .process()
        .args(["runs", "logs", "1", "talk", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = attempt(&attempts(&home, 1), "talk", 1).clone();
    assert_eq!(running.status, StepStatus::Running);
    assert!(!running.log.contains("last line"), "{}", running.log);
    std::fs::write(&release, "").unwrap();
    assert!(fg.wait().unwrap().success());
    let followed = follow.wait_with_output().unwrap();
    assert!(followed.status.success());
    let followed = String::from_utf8(followed.stdout).unwrap();
    assert_eq!(
        (
            followed.matches("first line").count(),
            followed.matches("last line").count()
        ),
        (1, 1),
        "{followed}"
    );
    let done = attempt(&attempts(&home, 1), "talk", 1).clone();
    assert_eq!(
        done.log.matches("first line").count(),
        1,
        "each line once: {}",
        done.log
    );
    assert!(done.log.contains("stdout: last line"), "{}", done.log);
}

#[test]
fn a_pipeline_of_shell_steps_runs_without_a_dataset_group() {
    let home = Home::new();
    let out_file = home.path().join("etl.txt");
    let file = home.write(
        "etl.yaml",
        format!(
            "name: etl\nsteps:\n  - {{id: extract, type: shell, command: 'echo rows > {}'}}\n  - {{id: load, type: shell, depends_on: [extract], command: 'cat {}'}}\n",
            out_file.display(),
            out_file.display()
        ),
    );
    let out = ok(home.cmd().arg("run").arg(&file));
    assert!(out.stdout.contains("Run 1 succeeded"), "{}", out.all());
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "rows\n");
    let all = attempts(&home, 1);
    assert_eq!(status_of(&all, "load"), (1, StepStatus::Succeeded));

    // A step that needs a dataset group names itself.
    let bad = home.write(
        "bad.yaml",
        "name: etl\nsteps:\n  - {id: a, type: shell, command: 'true'}\n  - {id: ship, type: deploy, campaign: c}\n",
    );
    let out = fails(home.cmd().arg("validate").arg(&bad));
    assert!(
        out.all().contains(
            "steps[1] (ship).type: step \"ship\" is a `deploy` step, which works on a dataset group"
        ),
        "{}",
        out.all()
    );
    assert!(out.all().contains("(line 4, column 22)"), "{}", out.all());
}

/// An HTTP server on 127.0.0.1 that answers 200 to every request and hands
/// over each JSON body, as long as the test runs.
fn webhooks_receiver() -> (String, std::sync::mpsc::Receiver<Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.read(&mut buf) {
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ = conn.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        if tx
                            .send(serde_json::from_str(&body[..len]).unwrap())
                            .is_err()
                        {
                            return;
                        }
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
        }
    });
    (url, rx)
}

/// Every body the receiver got until it stayed quiet for `quiet`.
fn received_until_quiet(rx: &std::sync::mpsc::Receiver<Value>, quiet: Duration) -> Vec<Value> {
    let mut all = Vec::new();
    while let Ok(v) = rx.recv_timeout(quiet) {
        all.push(v);
    }
    all
}

#[test]
fn a_run_and_a_step_past_their_sla_call_the_webhook_once_and_are_marked() {
    let home = Home::new();
    let (hook, received) = webhooks_receiver();
    let file = home.write(
        "late.yaml",
        format!(
            "name: late\nsla: 2s\non_sla_miss: {{webhook: {hook}}}\nsteps:\n  - {{id: quick, type: shell, command: 'true', sla: 1h}}\n  - {{id: slow, type: shell, command: 'sleep 4', sla: 1s, depends_on: [quick]}}\n  - {{id: last, type: noop, depends_on: [slow]}}\n"
        ),
    );
    let out = ok(home.cmd().arg("run").arg(&file));
    assert!(out.stdout.contains("Run 1 succeeded"), "{}", out.all());
    let mut hooks = received_until_quiet(&received, Duration::from_secs(2));
    hooks.sort_by_key(|h| h["step"].as_str().map(str::to_string));
    assert_eq!(hooks.len(), 2, "{hooks:#?}");
    assert_eq!(
        (
            &hooks[0]["event"],
            &hooks[0]["run_id"],
            &hooks[0]["step"],
            &hooks[0]["sla"]
        ),
        (&json!("sla_miss"), &json!(1), &Value::Null, &json!("2s"))
    );
    assert_eq!(
        (&hooks[1]["step"], &hooks[1]["sla"], &hooks[1]["pipeline"]),
        (&json!("slow"), &json!("1s"), &json!("late"))
    );
    // The run went on: every step ran.
    let all = attempts(&home, 1);
    assert_eq!(status_of(&all, "last"), (1, StepStatus::Succeeded));

    let shown = ok(home.cmd().args(["runs", "show", "1"]));
    assert!(
        shown
            .stdout
            .contains("SLA missed: the run went on past its SLA of 2s"),
        "{}",
        shown.all()
    );
    assert!(
        shown
            .stdout
            .contains("SLA missed: step slow went on past its SLA of 1s"),
        "{}",
        shown.all()
    );
    assert!(
        !shown.stdout.contains("step quick went on"),
        "{}",
        shown.all()
    );

    // A second run that ends in time misses nothing.
    let fast = home.write(
        "fast.yaml",
        format!(
            "name: fast\nsla: 1h\non_sla_miss: {{webhook: {hook}}}\nsteps:\n  - {{id: a, type: shell, command: 'true', sla: 30m}}\n"
        ),
    );
    ok(home.cmd().arg("run").arg(&fast));
    assert!(received.recv_timeout(Duration::from_secs(1)).is_err());
    let shown = ok(home.cmd().args(["runs", "show", "2"]));
    assert!(!shown.stdout.contains("SLA missed"), "{}", shown.all());
}

/// Runs of `pipeline`, oldest first.
fn runs_of(store: &dyn StateStore, pipeline: &str) -> Vec<recflow::store::RunRecord> {
    let mut runs = shared_runtime()
        .block_on(store.list_runs(&RunQuery {
            pipeline: Some(pipeline.into()),
            ..RunQuery::newest(1000)
        }))
        .unwrap();
    runs.reverse();
    runs
}

/// Waits until `pipeline` has `n` runs, all succeeded.
fn wait_for_runs(store: &dyn StateStore, pipeline: &str, n: usize) {
    eventually_within(Duration::from_secs(90), &mut || {
        let runs = runs_of(store, pipeline);
        if runs.len() == n && runs.iter().all(|r| r.status == RunStatus::Succeeded) {
            Ok(())
        } else {
            Err(format!(
                "{pipeline}: {:?}",
                runs.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>()
            ))
        }
    });
}

/// Writes an object the way an uploader should: a hidden name, then a rename.
fn land(dir: &Path, name: &str, content: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The objects the runs of `pipeline` were started by.
fn trigger_objects(store: &dyn StateStore, pipeline: &str) -> Vec<String> {
    runs_of(store, pipeline)
        .iter()
        .map(|r| {
            r.trigger_info.as_ref().expect("trigger recorded")["object"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Pipelines started by data: new objects (with `{{ trigger.name }}`),
/// chained on their runs, and a new dataset version.
fn data_pipelines(home: &Home, landing: &str, poll: &str) -> PathBuf {
    let out = home.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let out = out.display();
    home.write(
        "pipelines/landing.yaml",
        format!(
            "name: landing\non: {{object: '{landing}', pattern: '*.csv', poll_interval: {poll}}}\nsteps:\n  - {{id: load, type: shell, command: 'echo {{{{ trigger.name }}}} >> {out}/landed.txt'}}\n"
        ),
    );
    home.write(
        "pipelines/after.yaml",
        format!(
            "name: after\non: {{pipeline: landing, status: succeeded}}\nsteps:\n  - {{id: next, type: shell, command: 'echo {{{{ trigger.pipeline }}}} {{{{ trigger.run_id }}}} >> {out}/chained.txt'}}\n"
        ),
    );
    home.path().join("pipelines")
}

#[test]
fn runs_start_on_new_objects_chained_runs_and_new_dataset_versions_through_the_daemon() {
    let home = Home::new();
    let landing = home.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    land(&landing, "old.csv", "a\n");
    let dir = data_pipelines(&home, &format!("{}/", landing.display()), "200ms");
    let csv = crate::common::movielens_csv(&home, "ratings.csv", 500);
    home.write(
        "pipelines/importer.yaml",
        format!(
            "name: importer\ndataset_group: g\ndatasets:{}steps:\n  - {{id: load, type: import, dataset: interactions, source: {}}}\n",
            crate::common::INTERACTIONS_SCHEMA,
            csv.display()
        ),
    );
    let out = home.path().join("out");
    home.write(
        "pipelines/on_version.yaml",
        format!(
            "name: on_version\non: {{dataset_version: g/interactions}}\nsteps:\n  - {{id: use, type: shell, command: 'echo {{{{ trigger.dataset }}}} v{{{{ trigger.version }}}} >> {}/versions.txt'}}\n",
            out.display()
        ),
    );
    let store = store(&home);
    let daemon = Daemon::start(&home, &dir, &[], &[]);
    // An object there before the first poll counts as new; others land later.
    wait_for_runs(store.as_ref(), "landing", 1);
    land(&landing, "b.csv", "b\n");
    land(&landing, "c.csv", "c\n");
    land(&landing, "notes.txt", "not a csv\n");
    land(&landing, "_SUCCESS", "");
    wait_for_runs(store.as_ref(), "landing", 3);
    wait_for_runs(store.as_ref(), "after", 3);
    let mut landed: Vec<String> = std::fs::read_to_string(out.join("landed.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    landed.sort();
    assert_eq!(landed, ["b.csv", "c.csv", "old.csv"]);
    let landing_ids: Vec<String> = runs_of(store.as_ref(), "landing")
        .iter()
        .map(|r| format!("landing {}", r.id))
        .collect();
    let mut chained: Vec<String> = std::fs::read_to_string(out.join("chained.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    chained.sort();
    let mut want = landing_ids.clone();
    want.sort();
    assert_eq!(chained, want);

    // The run says what started it.
    let first = &runs_of(store.as_ref(), "landing")[0];
    assert_eq!(first.trigger, "object");
    let shown = ok(home.cmd().args(["runs", "show", &first.id.to_string()]));
    assert!(
        shown.stdout.contains(&format!(
            r#"Triggered by {{"type":"object","object":"{}/old.csv","name":"old.csv","size":2,"modified":"#,
            landing.display()
        )),
        "{}",
        shown.all()
    );

    // An import publishes version 1 of g/interactions: on_version runs once.
    assert!(runs_of(store.as_ref(), "on_version").is_empty());
    ok(home.cmd().args(["trigger", "importer"]));
    wait_for_runs(store.as_ref(), "importer", 1);
    wait_for_runs(store.as_ref(), "on_version", 1);
    assert_eq!(
        std::fs::read_to_string(out.join("versions.txt")).unwrap(),
        "g/interactions v1\n"
    );

    // A restarted daemon goes on from the cursors: nothing fires twice.
    daemon.signal("-TERM");
    drop(daemon);
    let _daemon = Daemon::start(&home, &dir, &[], &[]);
    land(&landing, "d.csv", "d\n");
    wait_for_runs(store.as_ref(), "landing", 4);
    wait_for_runs(store.as_ref(), "after", 4);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(runs_of(store.as_ref(), "landing").len(), 4);
    assert_eq!(runs_of(store.as_ref(), "on_version").len(), 1);
    assert_eq!(runs_of(store.as_ref(), "after").len(), 4);
}

#[test]
fn an_object_trigger_fires_once_per_object_when_daemons_are_killed_while_they_poll() {
    let home = Home::new();
    let landing = home.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    home.write(
        "pipelines/landing.yaml",
        format!(
            "name: landing\nmax_active_runs: 50\non: {{object: '{}/', poll_interval: 50ms}}\nsteps:\n  - {{id: a, type: noop}}\n",
            landing.display()
        ),
    );
    let dir = home.path().join("pipelines");
    let store = store(&home);
    let mut objects = 0;
    for round in 0..3 {
        for i in 0..40 {
            land(&landing, &format!("r{round}-{i:03}.csv"), "x\n");
        }
        objects += 40;
        let before = runs_of(store.as_ref(), "landing").len();
        let daemon = Daemon::start(&home, &dir, &[], &[]);
        // Killed as soon as its poll has started runs, before it can finish.
        eventually_within(Duration::from_secs(60), &mut || {
            let n = runs_of(store.as_ref(), "landing").len();
            if n > before {
                Ok(())
            } else {
                Err(format!("no new run yet ({n})"))
            }
        });
        daemon.signal("-KILL");
        drop(daemon);
    }
    let _daemon = Daemon::start(&home, &dir, &[], &[]);
    wait_for_runs(store.as_ref(), "landing", objects);
    std::thread::sleep(Duration::from_secs(1));
    let mut fired = trigger_objects(store.as_ref(), "landing");
    assert_eq!(fired.len(), objects);
    fired.sort();
    fired.dedup();
    assert_eq!(fired.len(), objects, "each object started exactly one run");
}

#[test]
fn two_daemons_on_postgres_fire_each_object_version_and_chained_run_once() {
    let Some(url) = fresh_postgres_database() else {
        return;
    };
    let home = Home::new();
    let landing = home.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let dir = data_pipelines(&home, &format!("{}/", landing.display()), "100ms");
    let csv = crate::common::movielens_csv(&home, "ratings.csv", 500);
    home.write(
        "pipelines/importer.yaml",
        format!(
            "name: importer\ndataset_group: g\ndatasets:{}steps:\n  - {{id: load, type: import, dataset: interactions, source: {}}}\n",
            crate::common::INTERACTIONS_SCHEMA,
            csv.display()
        ),
    );
    home.write(
        "pipelines/on_version.yaml",
        "name: on_version\non: {dataset_version: g/interactions}\nsteps:\n  - {id: use, type: shell, command: 'echo v{{ trigger.version }}'}\n",
    );
    let store = shared_runtime()
        .block_on(recflow::store::open(&url))
        .unwrap();
    let env = [("RECFLOW_STATE_URL", url.as_str())];
    let a = Daemon::start(&home, &dir, &[], &env);
    let _b = Daemon::start(&home, &dir, &[], &env);
    // Armed (its first poll) before the import publishes version 1.
    eventually(|| {
        match shared_runtime()
            .block_on(store.trigger_cursor("on_version on dataset_version g/interactions"))
            .unwrap()
        {
            Some(_) => Ok(()),
            None => Err("not polled yet".into()),
        }
    });
    ok(home
        .cmd()
        .env("RECFLOW_STATE_URL", &url)
        .args(["trigger", "importer"]));
    wait_for_runs(store.as_ref(), "importer", 1);
    wait_for_runs(store.as_ref(), "on_version", 1);
    let started = &runs_of(store.as_ref(), "on_version")[0];
    assert_eq!(
        started.trigger_info.as_ref().unwrap()["version"],
        json!(1),
        "{started:#?}"
    );
    for i in 0..10 {
        land(&landing, &format!("{i}.csv"), "x\n");
    }
    wait_for_runs(store.as_ref(), "landing", 10);
    wait_for_runs(store.as_ref(), "after", 10);
    // The daemon that polls may die: the other takes over from the cursors.
    a.signal("-KILL");
    drop(a);
    for i in 10..15 {
        land(&landing, &format!("{i}.csv"), "x\n");
    }
    wait_for_runs(store.as_ref(), "landing", 15);
    wait_for_runs(store.as_ref(), "after", 15);
    std::thread::sleep(Duration::from_secs(1));
    let mut fired = trigger_objects(store.as_ref(), "landing");
    fired.sort();
    fired.dedup();
    assert_eq!(fired.len(), 15);
    let mut upstream: Vec<i64> = runs_of(store.as_ref(), "after")
        .iter()
        .map(|r| r.trigger_info.as_ref().unwrap()["run_id"].as_i64().unwrap())
        .collect();
    upstream.sort();
    let landing_ids: Vec<i64> = runs_of(store.as_ref(), "landing")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(upstream, landing_ids, "one chained run per upstream run");
    assert_eq!(runs_of(store.as_ref(), "on_version").len(), 1);
}

#[test]
fn an_object_trigger_on_s3_fires_once_per_new_object_under_the_prefix() {
    let rt = shared_runtime();
    let client = rt.block_on(crate::s3::client());
    let bucket = rt.block_on(crate::s3::bucket(&client, "on-object"));
    let put = |key: &str| {
        rt.block_on(crate::s3::put(&client, &bucket, key, b"x\n".to_vec()));
    };
    put("landing/a.csv");
    put("elsewhere/z.csv");
    let home = Home::new();
    let dir = data_pipelines(&home, &format!("s3://{bucket}/landing/"), "200ms");
    let store = store(&home);
    let _daemon = Daemon::start(&home, &dir, &[], &[]);
    wait_for_runs(store.as_ref(), "landing", 1);
    put("landing/b.csv");
    put("landing/c.txt");
    put("landing/sub/d.csv");
    wait_for_runs(store.as_ref(), "landing", 3);
    wait_for_runs(store.as_ref(), "after", 3);
    std::thread::sleep(Duration::from_secs(1));
    let mut fired = trigger_objects(store.as_ref(), "landing");
    fired.sort();
    assert_eq!(
        fired,
        ["a.csv", "b.csv", "sub/d.csv"].map(|k| format!("s3://{bucket}/landing/{k}"))
    );
}

#[test]
fn two_daemons_on_postgres_record_and_send_each_sla_miss_once() {
    let Some(url) = fresh_postgres_database() else {
        return;
    };
    let home = Home::new();
    let (hook, received) = webhooks_receiver();
    home.write(
        "pipelines/late.yaml",
        format!(
            "name: late\nsla: 1s\non_sla_miss: {{webhook: {hook}}}\nsteps:\n  - {{id: slow, type: shell, command: 'sleep 3', sla: 1s}}\n"
        ),
    );
    let dir = home.path().join("pipelines");
    let env = [("RECFLOW_STATE_URL", url.as_str())];
    let _a = Daemon::start(&home, &dir, &[], &env);
    let _b = Daemon::start(&home, &dir, &[], &env);
    let store = shared_runtime()
        .block_on(recflow::store::open(&url))
        .unwrap();
    eventually(|| {
        match shared_runtime()
            .block_on(store.get_pipeline("late"))
            .unwrap()
        {
            Some(_) => Ok(()),
            None => Err("not registered yet".into()),
        }
    });
    ok(home
        .cmd()
        .env("RECFLOW_STATE_URL", &url)
        .args(["trigger", "late"]));
    wait_for_runs(store.as_ref(), "late", 1);
    // Both daemons move the run on and see it late; one records each miss.
    let mut hooks = received_until_quiet(&received, Duration::from_secs(2));
    hooks.sort_by_key(|h| h["step"].as_str().map(str::to_string));
    let got: Vec<(&Value, &Value)> = hooks.iter().map(|h| (&h["step"], &h["sla"])).collect();
    assert_eq!(
        got,
        [(&Value::Null, &json!("1s")), (&json!("slow"), &json!("1s"))],
        "{hooks:#?}"
    );
    let run = runs_of(store.as_ref(), "late")[0].id;
    let misses = shared_runtime()
        .block_on(store.list_sla_misses(run))
        .unwrap();
    assert_eq!(misses.len(), 2, "{misses:#?}");
}
