//! `recflow bench serve`: GetRecommendations over HTTP against the real
//! server (router, JSON, spawn_blocking scoring, filters) for synthetic
//! models of 10k and 50k items with 64 factors, with and without a filter.
//!
//! Two measurements per case: the most requests per second that 8 closed-
//! loop clients get, and latency at a fixed open-loop rate (default 1,000
//! requests/s): each request is due at its scheduled time and its latency
//! counts from then, so a stalled server cannot hide its queue (no
//! coordinated omission). The baseline, measured in the same run, is the
//! same answer computed in-process without HTTP.
//!
//! A third measurement offers three times the measured maximum, open loop:
//! the server must shed the excess with `ThrottlingException` (counted
//! apart from errors) and keep the wait of the requests it serves within
//! its queue deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use polars::prelude::*;

use crate::campaign::Recommender;
use crate::config::{Env, Settings};
use crate::filter::Filter;
use crate::filter::catalog::FilterData;
use crate::http::access_log::AccessLogConfig;
use crate::http::gate::GateConfig;
use crate::http::live::LiveCampaign;
use crate::http::{AppState, Auth, ServeConfig, router};
use crate::outln;
use crate::recipes::{Ask, Exploration, Query};
use crate::schema::{AvroSchema, DatasetType, Schema};
use crate::store::CampaignRecord;

#[derive(Debug, Args)]
pub struct ServeBenchArgs {
    /// Catalog sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000")]
    pub items: Vec<usize>,
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// The open-loop request rate (requests per second).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Closed-loop clients for the throughput measurement.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Also measure throughput with the access log on (every request up to
    /// 100/s, then 1 in 100, as `recflow serve --access-log`), and print
    /// its ratio to the throughput with it off. Run with `2>access.log` so
    /// the log lines are written to a file, as a service's would be.
    #[arg(long)]
    pub compare_access_log: bool,
    /// The server's queue deadline (`serve --max-queue-ms`).
    #[arg(long, default_value_t = 50)]
    pub max_queue_ms: u64,
}

/// Items fall into this many categories; the filter keeps a few of them.
const CATEGORIES: usize = 20;
const FILTER: &str = "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY) | EXCLUDE ItemID WHERE Items.PRICE > $MAX_PRICE";

pub async fn serve(args: ServeBenchArgs) -> anyhow::Result<()> {
    outln!(
        "GetRecommendations over HTTP on 127.0.0.1: {} users, {} factors, numResults 25; \
         throughput with {} closed-loop clients, latency at {} requests/s open loop, {} s each",
        args.users,
        args.factors,
        args.clients,
        args.rate,
        args.seconds
    );
    outln!(
        "filter: {FILTER}\n        with CATEGORY = 3 of {CATEGORIES} categories, MAX_PRICE = 50 (of 0..100)"
    );
    outln!();
    outln!(
        "{:>7} {:>7} {:>12} {:>10} {:>9} {:>9} {:>9} {:>7} {:>7} {:>14} {:>8}",
        "items",
        "filter",
        "max req/s",
        "at rate",
        "p50 ms",
        "p99 ms",
        "max ms",
        "shed",
        "errors",
        "in-process ms",
        "mask µs"
    );
    let mut access_log_rows = Vec::new();
    let mut overload_rows = Vec::new();
    let home = tempfile::tempdir()?;
    let env = Env::open(Settings {
        home: home.path().to_path_buf(),
        state_url: format!("sqlite://{}", home.path().join("state.db").display()),
        warehouse_url: format!("{}/", home.path().join("warehouse").display()),
    })
    .await?;
    for &n_items in &args.items {
        let (users, factors) = (args.users, args.factors);
        let live = Arc::new(
            tokio::task::spawn_blocking(move || campaign(users, n_items, factors)).await??,
        );
        let baseline = in_process(&live, 2_000);
        let mask_us = mask_cost(&live, 20_000) * 1e6;
        let (url, server) = start(&env, &live, None, args.max_queue_ms).await?;
        let logging = if args.compare_access_log {
            Some(
                start(
                    &env,
                    &live,
                    Some(AccessLogConfig::default()),
                    args.max_queue_ms,
                )
                .await?,
            )
        } else {
            None
        };
        for filtered in [false, true] {
            let max = closed_loop(&url, args.users, filtered, args.clients, args.seconds).await;
            if let Some((logged_url, _)) = &logging {
                let on =
                    closed_loop(logged_url, args.users, filtered, args.clients, args.seconds).await;
                access_log_rows.push(format!(
                    "{:>7} {:>7} {:>12.0} {:>12.0} {:>8.3}",
                    n_items,
                    if filtered { "yes" } else { "no" },
                    max,
                    on,
                    on / max.max(1e-9)
                ));
            }
            let lat = open_loop(&url, args.users, filtered, args.rate, args.seconds).await;
            let over_rate = (3.0 * max).round().max(1.0) as u64;
            let over = open_loop(&url, args.users, filtered, over_rate, args.seconds).await;
            overload_rows.push(format!(
                "{:>7} {:>7} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>7}",
                n_items,
                if filtered { "yes" } else { "no" },
                over_rate,
                over.achieved,
                over.p99 * 1e3,
                over.max * 1e3,
                over.shed,
                over.errors,
            ));
            outln!(
                "{:>7} {:>7} {:>12.0} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7} {:>14.3} {:>8}",
                n_items,
                if filtered { "yes" } else { "no" },
                max,
                lat.achieved,
                lat.p50 * 1e3,
                lat.p99 * 1e3,
                lat.max * 1e3,
                lat.shed,
                lat.errors,
                baseline[usize::from(filtered)] * 1e3,
                if filtered {
                    format!("{mask_us:.1}")
                } else {
                    "-".into()
                },
            );
        }
        server.abort();
        if let Some((_, s)) = logging {
            s.abort();
        }
    }
    outln!(
        "\nunder 3× the measured max req/s, open loop (queue deadline {} ms): the excess is shed \
         with ThrottlingException; p99 and max are of the requests served",
        args.max_queue_ms
    );
    outln!(
        "{:>7} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "items",
        "filter",
        "offered/s",
        "served/s",
        "p99 ms",
        "max ms",
        "shed",
        "errors"
    );
    for row in &overload_rows {
        outln!("{row}");
    }
    if !access_log_rows.is_empty() {
        outln!(
            "\nthroughput with the access log on (100/s, then 1 in 100), {} closed-loop clients:",
            args.clients
        );
        outln!(
            "{:>7} {:>7} {:>12} {:>12} {:>8}",
            "items",
            "filter",
            "off req/s",
            "on req/s",
            "on/off"
        );
        for row in &access_log_rows {
            outln!("{row}");
        }
    }
    outln!(
        "\n`mask µs`: getting the filter's mask for a request (item masks are cached by \
         parameter values) and applying it to the catalog's scores."
    );
    outln!(
        "`in-process ms` is the same answer (scoring, filter, top-25) without HTTP or JSON, \
         one request at a time; the server runs on this process's runtime and the load \
         clients share the machine's 2 cores with it."
    );
    Ok(())
}

/// A server for `live` on a free port: its /recommendations URL and task.
async fn start(
    env: &Env,
    live: &Arc<LiveCampaign>,
    access_log: Option<AccessLogConfig>,
    max_queue_ms: u64,
) -> anyhow::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let state = Arc::new(AppState::new(
        env.clone(),
        ServeConfig {
            bind: "127.0.0.1:0".parse()?,
            auth: Auth::default(),
            open_recommendations: true,
            open_metrics: false,
            max_body_bytes: ServeConfig::DEFAULT_MAX_BODY_BYTES,
            reload_interval: Duration::from_secs(3600),
            access_log,
            gate: GateConfig {
                deadline: Duration::from_millis(max_queue_ms),
                ..GateConfig::default()
            },
        },
    ));
    state.insert_campaign(live.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/recommendations", listener.local_addr()?);
    let server =
        tokio::spawn(
            async move { axum::serve(listener, router(state, crate::http::Faces::All)).await },
        );
    Ok((url, server))
}

/// A synthetic campaign: the batch benchmark's iALS model, plus items with
/// a CATEGORY and a PRICE for the filter.
fn campaign(n_users: usize, n_items: usize, k: usize) -> anyhow::Result<LiveCampaign> {
    let model = super::batch::synthetic(n_users, n_items, k)?;
    let ids: Vec<String> = model.items.ids().to_vec();
    let category: Vec<String> = (0..n_items)
        .map(|i| format!("c{}", i % CATEGORIES))
        .collect();
    let price: Vec<f64> = (0..n_items).map(|i| ((i * 37) % 100) as f64).collect();
    let items = df!("ITEM_ID" => ids, "CATEGORY" => category, "PRICE" => price)?;
    let schema = Schema::from_avro(
        DatasetType::Items,
        &serde_json::from_str::<AvroSchema>(
            r#"{"fields": [{"name": "ITEM_ID", "type": "string"},
                {"name": "CATEGORY", "type": "string", "categorical": true},
                {"name": "PRICE", "type": "double"}]}"#,
        )?,
    )
    .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    let mut filter = Filter::parse(FILTER)?;
    let schemas = [(DatasetType::Items, schema.clone())].into_iter().collect();
    anyhow::ensure!(filter.check(&schemas).is_empty(), "the bench filter checks");
    let filter_data = FilterData::build(
        &model.items,
        &model.users,
        Some((&items, &schema)),
        None,
        None,
    )?;
    let now = chrono::Utc::now();
    Ok(LiveCampaign {
        record: CampaignRecord {
            name: "bench".into(),
            dataset_group: "bench".into(),
            solution: "synthetic".into(),
            solution_version: 1,
            previous_version: None,
            created_at: now,
            updated_at: now,
            config: serde_json::json!({}),
        },
        rec: Recommender {
            solution: "synthetic".into(),
            version: 1,
            model: Arc::new(model),
            exploration: Exploration::NONE,
        },
        filters: [("by-category".to_string(), Arc::new(filter))]
            .into_iter()
            .collect(),
        broken_filters: Default::default(),
        filter_data,
        item_metadata: Default::default(),
        exclude_event_types: None,
        fingerprint: 0,
    })
}

/// Mean seconds per answer in-process: [without filter, with filter].
fn in_process(live: &LiveCampaign, n: usize) -> [f64; 2] {
    let filter = &live.filters["by-category"];
    let values = filter_values();
    let parsed = crate::filter::parse_filter_values(&values).expect("valid values");
    let mut out = [0.0; 2];
    for (slot, filtered) in [false, true].into_iter().enumerate() {
        let started = Instant::now();
        for r in 0..n {
            let user = format!("u{}", (r * 7919) % live.rec.model.users.len());
            let mask = filtered.then(|| {
                live.filter_data
                    .item_mask(filter, &parsed, &Default::default())
                    .expect("filter applies")
            });
            let ask = Ask {
                allowed: mask.as_ref(),
                ..Ask::default()
            };
            std::hint::black_box(live.rec.model.recommend_with(&Query::User(&user), 25, &ask));
        }
        out[slot] = started.elapsed().as_secs_f64() / n as f64;
    }
    out
}

/// Seconds per request to get the filter's mask (cached) and apply it to a
/// catalog's scores.
fn mask_cost(live: &LiveCampaign, n: usize) -> f64 {
    let filter = &live.filters["by-category"];
    let parsed = crate::filter::parse_filter_values(&filter_values()).expect("valid values");
    let mut scores = vec![0.5f32; live.rec.model.items.len()];
    let started = Instant::now();
    for _ in 0..n {
        let mask = live
            .filter_data
            .item_mask(filter, &parsed, &Default::default())
            .expect("filter applies");
        crate::recipes::mask_scores(&mut scores, Some(&mask));
        std::hint::black_box(&scores);
    }
    started.elapsed().as_secs_f64() / n as f64
}

fn filter_values() -> std::collections::BTreeMap<String, String> {
    [
        ("CATEGORY".to_string(), r#""c1","c7","c13""#.to_string()),
        ("MAX_PRICE".to_string(), "50".to_string()),
    ]
    .into_iter()
    .collect()
}

fn body(users: usize, r: u64, filtered: bool) -> String {
    let user = format!("u{}", (r as usize * 7919) % users);
    let mut b = serde_json::json!({"campaignArn": "arn:aws:personalize:us-east-1:1:campaign/bench", "userId": user, "numResults": 25});
    if filtered {
        b["filterArn"] = "arn:aws:personalize:us-east-1:1:filter/by-category".into();
        b["filterValues"] = serde_json::to_value(filter_values()).expect("a map");
    }
    b.to_string()
}

/// Requests per second with `clients` clients each waiting for its answer.
async fn closed_loop(url: &str, users: usize, filtered: bool, clients: usize, seconds: u64) -> f64 {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, url, done, stop) =
                (client.clone(), url.to_string(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut r = c as u64;
                while !stop.load(Ordering::Relaxed) {
                    let ok = client
                        .post(&url)
                        .body(body(users, r, filtered))
                        .send()
                        .await;
                    if let Ok(resp) = ok {
                        let _ = resp.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    r += clients as u64;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

struct Latency {
    achieved: f64,
    p50: f64,
    p99: f64,
    max: f64,
    /// Refused with ThrottlingException (load shed), not counted as errors.
    shed: u64,
    errors: u64,
}

enum Outcome {
    Served,
    Shed,
    Failed,
}

/// Latency at a fixed rate, each request timed from when it was due.
async fn open_loop(url: &str, users: usize, filtered: bool, rate: u64, seconds: u64) -> Latency {
    let client = reqwest::Client::new();
    let total = rate * seconds;
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for r in 0..total {
        let due = started + Duration::from_nanos(r * 1_000_000_000 / rate);
        tokio::time::sleep_until(due).await;
        let (client, url) = (client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let outcome = match client
                .post(&url)
                .body(body(users, r, filtered))
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                    Ok(_) => Outcome::Served,
                    Err(_) => Outcome::Failed,
                },
                Ok(resp)
                    if resp
                        .headers()
                        .get("x-amzn-ErrorType")
                        .is_some_and(|v| v == "ThrottlingException") =>
                {
                    Outcome::Shed
                }
                _ => Outcome::Failed,
            };
            (due.elapsed().as_secs_f64(), outcome)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let (mut shed, mut errors) = (0, 0);
    for t in tasks {
        match t.await {
            Ok((l, Outcome::Served)) => lat.push(l),
            Ok((_, Outcome::Shed)) => shed += 1,
            _ => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Latency {
        achieved: lat.len() as f64 / elapsed,
        p50: q(0.5),
        p99: q(0.99),
        max: lat.last().copied().unwrap_or(f64::NAN),
        shed,
        errors,
    }
}
