//! `recflow bench console`: how long the console's pages and the operations
//! API take to answer on a long history — 10,000 runs of a five-step
//! pipeline (50,000 attempts) and 100 versions of a solution — on SQLite,
//! over HTTP on 127.0.0.1, one request at a time.
//!
//! The history is real: the quickstart pipeline runs once (importing,
//! training and deploying MovieLens 100K), its solution version is copied to
//! 100 versions with varied metrics, and the runs are written through the
//! store as the engine writes them. The baseline, measured in the same run
//! on the same server, is `GET /healthz`: a round trip that reads nothing,
//! so the ratio is what a page costs above the HTTP exchange itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeZone, Utc};
use clap::Args;

use crate::config::{Env, Settings};
use crate::engine::{new_run, register, run_pipeline};
use crate::http::{AppState, Auth, Faces, ServeConfig, router};
use crate::outln;
use crate::pipeline::Pipeline;
use crate::store::{AttemptEnd, RunStatus, StepStatus, VersionKind};

#[derive(Debug, Args)]
pub struct ConsoleBenchArgs {
    /// Runs in the history.
    #[arg(long, default_value_t = 10_000)]
    pub runs: usize,
    /// Versions of the quickstart's solution.
    #[arg(long, default_value_t = 100)]
    pub versions: i64,
    /// Requests per page; the median and the slowest are reported.
    #[arg(long, default_value_t = 30)]
    pub requests: usize,
    /// The pipeline that makes the solution, campaign and datasets.
    #[arg(long, default_value = "pipelines/quickstart.yaml")]
    pub pipeline: PathBuf,
}

const TOKEN: &str = "bench-admin-token";
const STEPS: [&str; 5] = ["extract", "import", "train", "deploy", "export"];

fn history_pipeline() -> String {
    let mut text =
        String::from("name: nightly\ndataset_group: bench\nschedule: \"0 3 * * *\"\nsteps:\n");
    for (i, step) in STEPS.iter().enumerate() {
        let deps = if i > 0 {
            format!(", depends_on: [{}]", STEPS[i - 1])
        } else {
            String::new()
        };
        text.push_str(&format!("  - {{id: {step}, type: noop{deps}}}\n"));
    }
    text
}

pub async fn console(args: ConsoleBenchArgs) -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    let env = Env::open(Settings {
        home: home.path().to_path_buf(),
        state_url: format!("sqlite://{}/state.db", home.path().display()),
        warehouse_url: format!("{}/warehouse/", home.path().display()),
    })
    .await?;

    let started = Instant::now();
    let quickstart = Pipeline::load(&args.pipeline)
        .with_context(|| format!("loading {}", args.pipeline.display()))?;
    let report = run_pipeline(&env, &quickstart, "bench", &Default::default(), &mut |_| {}).await?;
    anyhow::ensure!(
        report.status == RunStatus::Succeeded,
        "the quickstart run ended {}",
        report.status
    );
    let solution = quickstart
        .group
        .spec
        .solutions
        .keys()
        .next()
        .context("the pipeline declares no solution")?
        .clone();
    let campaign = quickstart
        .group
        .spec
        .campaigns
        .keys()
        .next()
        .context("the pipeline declares no campaign")?
        .clone();
    let versions = copy_versions(&env, &solution, args.versions).await?;
    let (first_run, last_run) = write_history(&env, args.runs).await?;
    outln!(
        "History: {} runs of a {}-step pipeline, {versions} versions of {solution}, written in {:.0} s.",
        args.runs,
        STEPS.len(),
        started.elapsed().as_secs_f64()
    );

    let (addr, server) = start_server(env.clone()).await?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = log_in(&client, addr).await?;
    let middle = (first_run + last_run) / 2;
    let pages: Vec<(&str, String)> = vec![
        ("baseline: health check", "/healthz".into()),
        ("console: pipelines (grids)", "/ui/".into()),
        ("console: pipeline nightly", "/ui/pipelines/nightly".into()),
        ("console: runs, first page", "/ui/runs".into()),
        (
            "console: one run (graph, Gantt)",
            format!("/ui/runs/{middle}"),
        ),
        (
            "console: a step's log",
            format!("/ui/runs/{middle}/steps/train"),
        ),
        (
            "console: solution, every version",
            format!("/ui/solutions/{solution}"),
        ),
        (
            "console: campaign (live charts)",
            format!("/ui/campaigns/{campaign}"),
        ),
        ("api: runs, 200 per page", "/api/v1/runs?limit=200".into()),
        (
            "api: runs of nightly that failed",
            "/api/v1/runs?pipeline=nightly&status=failed&limit=200".into(),
        ),
        (
            "api: grid of nightly",
            "/api/v1/pipelines/nightly/grid".into(),
        ),
        (
            "api: solution versions",
            format!("/api/v1/solutions?solution={solution}"),
        ),
    ];
    outln!(
        "Median and slowest of {} sequential GETs per page; baseline: GET /healthz on the same server.",
        args.requests
    );
    outln!(
        "{:<34} {:>9} {:>10} {:>10} {:>8}",
        "page",
        "KiB",
        "median ms",
        "max ms",
        "ratio"
    );
    let mut baseline = None;
    for (label, path) in &pages {
        let (bytes, times) = measure(&client, addr, &cookie, path, args.requests).await?;
        let median = percentile(&times, 0.5);
        let max = times.iter().copied().fold(0.0, f64::max);
        let base = *baseline.get_or_insert(median);
        outln!(
            "{label:<34} {:>9.1} {median:>10.2} {max:>10.2} {:>8.1}",
            bytes as f64 / 1024.0,
            median / base
        );
    }
    server.abort();
    Ok(())
}

/// Copies the quickstart's trained version to `total` active versions with
/// metrics that drift, as months of nightly training would leave them.
async fn copy_versions(env: &Env, solution: &str, total: i64) -> anyhow::Result<i64> {
    let first = env
        .store
        .latest_active_version(VersionKind::Solution, solution)
        .await?
        .context("the quickstart left no active solution version")?;
    let manifest = first
        .manifest
        .clone()
        .context("an active version has a manifest")?;
    let location = first
        .location
        .rsplit_once("/v")
        .map(|(prefix, _)| prefix.to_string())
        .unwrap_or_else(|| first.location.clone());
    let mut made = first.version;
    while made < total {
        let version = env
            .store
            .create_version(VersionKind::Solution, solution, None, None, &location)
            .await?;
        let mut m = manifest.clone();
        m["version"] = version.into();
        if let Some(metrics) = m.get_mut("metrics").and_then(|v| v.as_object_mut()) {
            let drift = 1.0 + 0.05 * ((version as f64) * 0.7).sin();
            for value in metrics.values_mut() {
                if let Some(x) = value.as_f64() {
                    *value = (x * drift).into();
                }
            }
        }
        env.store
            .activate_version(VersionKind::Solution, solution, version, &m)
            .await?;
        made = version;
    }
    Ok(made)
}

/// `runs` finished runs of a five-step chain, one a day back from today;
/// one in seven fails at its last step. Returns the first and last run ids.
async fn write_history(env: &Env, runs: usize) -> anyhow::Result<(i64, i64)> {
    let file = PathBuf::from("nightly.yaml");
    let pipeline = Pipeline::from_text(&file, history_pipeline())?;
    register(env, &pipeline).await?;
    let origin = Utc.with_ymd_and_hms(2000, 1, 1, 3, 0, 0).unwrap();
    let (mut first, mut last) = (None, 0);
    for n in 0..runs {
        let logical = origin + chrono::Duration::hours(n as i64);
        let run = new_run(&pipeline, "schedule", &Default::default(), Some(logical))?;
        let id = env
            .store
            .create_run(&run)
            .await?
            .context("each run has its own logical date")?;
        first.get_or_insert(id);
        last = id;
        env.store.start_run(id, None).await?;
        let fails = n % 7 == 6;
        for (i, step) in STEPS.iter().enumerate() {
            env.store
                .queue_attempt(id, step, "noop", 1, Utc::now())
                .await?;
            let attempt = env
                .store
                .claim_attempt("bench", Some(id))
                .await?
                .context("the attempt just queued")?;
            let failed = fails && i == STEPS.len() - 1;
            let end = AttemptEnd {
                summary: Some(format!("{step} done")),
                outputs: serde_json::json!({}),
                error: failed.then(|| "exit status 1".to_string()),
                log: format!("{step}: line one\n{step}: line two\n{step}: done\n"),
            };
            let status = if failed {
                StepStatus::Failed
            } else {
                StepStatus::Succeeded
            };
            env.store
                .finish_attempt(attempt.id, status, &end, false)
                .await?;
        }
        let status = if fails {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        env.store.finish_run(id, status, None).await?;
    }
    Ok((first.unwrap_or(0), last))
}

async fn start_server(env: Env) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let config = ServeConfig {
        bind: "127.0.0.1:0".parse()?,
        auth: Auth {
            tokens: vec![TOKEN.into()],
            ..Auth::default()
        },
        open_recommendations: false,
        open_metrics: false,
        max_body_bytes: ServeConfig::DEFAULT_MAX_BODY_BYTES,
        reload_interval: Duration::from_secs(3600),
        access_log: None,
        gate: Default::default(),
    };
    let state = Arc::new(AppState::new(env, config));
    state.reload().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = router(state, Faces::All);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, server))
}

/// Logs in as a browser does; the session cookie to send.
async fn log_in(client: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<String> {
    let response = client
        .post(format!("http://{addr}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}&next=%2Fui%2F"))
        .send()
        .await?;
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("logging in set no session cookie")?;
    Ok(cookie.to_string())
}

/// Bytes of the answer and the milliseconds of each request (as the
/// logged-in browser), after two warm-up requests.
async fn measure(
    client: &reqwest::Client,
    addr: SocketAddr,
    cookie: &str,
    path: &str,
    requests: usize,
) -> anyhow::Result<(usize, Vec<f64>)> {
    let url = format!("http://{addr}{path}");
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0;
    for i in 0..requests + 2 {
        let started = Instant::now();
        let response = client
            .get(&url)
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            status == reqwest::StatusCode::OK,
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        bytes = body.len();
        if i >= 2 {
            times.push(ms);
        }
    }
    Ok((bytes, times))
}

fn percentile(times: &[f64], p: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
