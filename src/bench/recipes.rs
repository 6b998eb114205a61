//! `recflow bench recipes`: offline accuracy and training cost of every
//! recipe on MovieLens 100K and Online Retail, beside two peers run on the
//! same split by `benches/peers.py` — ALS from the `implicit` package and EASE
//! in numpy — and the popularity baseline.
//!
//! Protocol: the managed service's split gives training rows and test users;
//! a second split of the training rows gives a validation set. Every tunable
//! recipe and peer picks its hyperparameters on the validation set only, is
//! retrained on all training rows, and is scored once on the test users, by
//! the same metric code for recflow and the peers.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;

use crate::eval::{self, TestUser};
use crate::recipes::{
    Algorithm, EventSettings, Interactions, NextItemSpec, RecipeSpec, SimsSpec, SolutionModel,
    TrainingData, TrendingNowSpec, UserPersonalizationSpec,
};
use crate::{out, outln};

#[derive(Debug, Args)]
pub struct RecipesBenchArgs {
    /// MovieLens 100K ratings (tab-separated user, item, rating, time).
    #[arg(long, default_value = "examples/data/ml-100k/u.data")]
    pub movielens: PathBuf,
    /// Online Retail interactions CSV (user_id, item_id, timestamp, ...).
    #[arg(
        long,
        default_value = "../shared/datasets/online_retail/interactions.csv"
    )]
    pub retail: PathBuf,
    /// Skip the Python peers (implicit ALS, numpy EASE).
    #[arg(long)]
    pub no_peers: bool,
    /// Python with `implicit`, `numpy` and `scipy` (scripts/bench-peers-env installs one).
    #[arg(long, env = "RECFLOW_BENCH_PYTHON", default_value = "python3")]
    pub python: String,
}

const EASE_GRID: &[f64] = &[50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0];
const ALS_REG_GRID: &[f32] = &[0.01, 0.1, 1.0, 10.0];
const ALS_ALPHA_GRID: &[f32] = &[1.0, 5.0, 20.0, 50.0];
/// The fixed setting both ALS implementations are timed at.
const SPEED_FACTORS: usize = 64;
const SPEED_ITERATIONS: usize = 15;
const SPEED_REG: f32 = 1.0;
const SPEED_ALPHA: f32 = 1.0;

/// Test-set figures of one recipe.
struct Row {
    name: String,
    ndcg10: f64,
    ndcg10_se: f64,
    precision10: f64,
    recall20: f64,
    mrr25: f64,
    coverage: f64,
    seconds: f64,
    peak_mb: Option<f64>,
    tuned: String,
}

fn score(
    name: &str,
    test: &[TestUser],
    n_items: usize,
    recs: &[Vec<u32>],
    seconds: f64,
    peak_mb: Option<f64>,
    tuned: String,
) -> Row {
    let n = test.len().max(1) as f64;
    let ndcg: Vec<f64> = test
        .iter()
        .zip(recs)
        .map(|(t, r)| eval::ndcg_at_k(r, &t.relevant, 10))
        .collect();
    let (mean, se) = eval::mean_and_stderr(&ndcg);
    let avg = |f: &dyn Fn(&TestUser, &Vec<u32>) -> f64| {
        test.iter().zip(recs).map(|(t, r)| f(t, r)).sum::<f64>() / n
    };
    let covered: HashSet<u32> = recs
        .iter()
        .flat_map(|r| r.iter().take(25).copied())
        .collect();
    Row {
        name: name.to_string(),
        ndcg10: mean,
        ndcg10_se: se,
        precision10: avg(&|t, r| eval::precision_at_k(r, &t.relevant, 10)),
        recall20: avg(&|t, r| eval::recall_at_k(r, &t.relevant, 20)),
        mrr25: avg(&|t, r| eval::reciprocal_rank_at_k(r, &t.relevant, 25)),
        coverage: covered.len() as f64 / n_items.max(1) as f64,
        seconds,
        peak_mb,
        tuned,
    }
}

/// Trains on `rows` of `data` and returns the top 25 for each user.
fn run(
    recipe: &RecipeSpec,
    data: &Interactions,
    rows: &[usize],
    users: &[TestUser],
) -> anyhow::Result<(Vec<Vec<u32>>, f64, Option<f64>)> {
    let part = data.subset(rows);
    reset_peak_rss();
    let started = Instant::now();
    let td = TrainingData::new(&part, &EventSettings::default())?;
    let model = SolutionModel::new(recipe.kind(), &td, recipe.recipe().train(&td)?);
    let seconds = started.elapsed().as_secs_f64();
    let peak = crate::memory::peak_rss_bytes().map(|b| b as f64 / 1048576.0);
    let recs = users
        .iter()
        .map(|t| model.recommend_indices(t.user, &t.given, 25))
        .collect();
    Ok((recs, seconds, peak))
}

fn mean_ndcg(recs: &[Vec<u32>], users: &[TestUser]) -> f64 {
    users
        .iter()
        .zip(recs)
        .map(|(t, r)| eval::ndcg_at_k(r, &t.relevant, 10))
        .sum::<f64>()
        / users.len().max(1) as f64
}

/// Linux: resets the process's peak RSS so the next reading covers one phase.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Picks the candidate with the best validation NDCG@10.
fn tune(
    candidates: Vec<(String, RecipeSpec)>,
    data: &Interactions,
    inner_rows: &[usize],
    validation: &[TestUser],
) -> anyhow::Result<(String, RecipeSpec)> {
    let mut best: Option<(f64, String, RecipeSpec)> = None;
    for (label, spec) in candidates {
        let (recs, _, _) = run(&spec, data, inner_rows, validation)?;
        let s = mean_ndcg(&recs, validation);
        if best.as_ref().is_none_or(|b| s > b.0) {
            best = Some((s, label, spec));
        }
    }
    let (_, label, spec) = best.context("no candidate")?;
    Ok((label, spec))
}

fn up(f: impl FnOnce(&mut UserPersonalizationSpec)) -> RecipeSpec {
    let mut s = UserPersonalizationSpec::default();
    f(&mut s);
    RecipeSpec::UserPersonalization(s)
}

pub fn recipes(args: RecipesBenchArgs) -> anyhow::Result<()> {
    let datasets = [
        ("MovieLens 100K", load_movielens(&args.movielens)?),
        ("Online Retail", load_retail(&args.retail)?),
    ];
    for (name, data) in &datasets {
        bench_dataset(name, data, &args)?;
    }
    Ok(())
}

fn bench_dataset(name: &str, data: &Interactions, args: &RecipesBenchArgs) -> anyhow::Result<()> {
    let outer = eval::split(data, eval::SPLIT_SEED);
    let train = data.subset(&outer.train_rows);
    let inner = eval::split(&train, eval::SPLIT_SEED + 1);
    // Inner rows index `train`; map them back to rows of `data`.
    let inner_rows: Vec<usize> = inner
        .train_rows
        .iter()
        .map(|&r| outer.train_rows[r])
        .collect();
    let validation = &inner.test_users;
    let test = &outer.test_users;
    outln!(
        "\n{name}: {} interactions, {} users, {} items; {} test users, {} validation users",
        data.len(),
        data.users.len(),
        data.items.len(),
        test.len(),
        validation.len()
    );

    let mut rows = Vec::new();
    let mut fixed = |label: &str, spec: RecipeSpec| -> anyhow::Result<()> {
        let (recs, secs, peak) = run(&spec, data, &outer.train_rows, test)?;
        rows.push(score(
            label,
            test,
            data.items.len(),
            &recs,
            secs,
            peak,
            "defaults".into(),
        ));
        Ok(())
    };
    fixed(
        "popularity-count",
        RecipeSpec::PopularityCount(Default::default()),
    )?;
    fixed(
        "trending-now (1d)",
        RecipeSpec::TrendingNow(TrendingNowSpec {
            window: "1d".into(),
        }),
    )?;
    fixed("sims", RecipeSpec::Sims(SimsSpec::default()))?;
    fixed("next-item", RecipeSpec::NextItem(NextItemSpec::default()))?;
    fixed("user-personalization (defaults)", up(|_| {}))?;

    let ease = EASE_GRID
        .iter()
        .map(|&l2| {
            (
                format!("l2={l2}"),
                up(|s| {
                    s.algorithm = Algorithm::Ease;
                    s.l2 = l2
                }),
            )
        })
        .collect();
    let (label, spec) = tune(ease, data, &inner_rows, validation)?;
    let (recs, secs, peak) = run(&spec, data, &outer.train_rows, test)?;
    rows.push(score(
        "user-personalization EASE, tuned",
        test,
        data.items.len(),
        &recs,
        secs,
        peak,
        label,
    ));

    let mut ials = Vec::new();
    for &reg in ALS_REG_GRID {
        for &alpha in ALS_ALPHA_GRID {
            ials.push((
                format!("factors={SPEED_FACTORS} reg={reg} alpha={alpha}"),
                up(|s| {
                    s.algorithm = Algorithm::Ials;
                    s.factors = SPEED_FACTORS;
                    s.iterations = SPEED_ITERATIONS;
                    s.regularization = reg;
                    s.alpha = alpha;
                }),
            ));
        }
    }
    let (label, spec) = tune(ials, data, &inner_rows, validation)?;
    let (recs, secs, peak) = run(&spec, data, &outer.train_rows, test)?;
    rows.push(score(
        "user-personalization iALS, tuned",
        test,
        data.items.len(),
        &recs,
        secs,
        peak,
        label,
    ));

    // Speed at one fixed setting, median of seven (as for implicit): these
    // runs take a tenth of a second, where this machine's noise is large.
    let speed_spec = up(|s| {
        s.algorithm = Algorithm::Ials;
        s.factors = SPEED_FACTORS;
        s.iterations = SPEED_ITERATIONS;
        s.regularization = SPEED_REG;
        s.alpha = SPEED_ALPHA;
    });
    let mut times = (0..7)
        .map(|_| -> anyhow::Result<f64> {
            let part = data.subset(&outer.train_rows);
            let td = TrainingData::new(&part, &EventSettings::default())?;
            let started = Instant::now();
            let _ = speed_spec.recipe().train(&td)?;
            Ok(started.elapsed().as_secs_f64())
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    times.sort_by(f64::total_cmp);
    let ours = times[times.len() / 2];

    let mut implicit_seconds = None;
    if !args.no_peers {
        let dir = tempfile::tempdir()?;
        write_split(
            dir.path(),
            data,
            &outer.train_rows,
            &inner_rows,
            validation,
            test,
        )?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers.py");
        let status = std::process::Command::new(&args.python)
            .arg(&script)
            .arg(dir.path())
            .env("OPENBLAS_NUM_THREADS", "1")
            .status()
            .with_context(|| format!("running {} {}", args.python, script.display()))?;
        anyhow::ensure!(
            status.success(),
            "{} failed ({status}); install its packages with scripts/bench-peers-env",
            script.display()
        );
        let peers: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(dir.path().join("peers.json"))?)?;
        let peak = peers.get("_peak_rss_mb").and_then(|v| v.as_f64());
        for (peer, v) in &peers {
            if peer.starts_with('_') {
                continue;
            }
            let p: PeerResult = serde_json::from_value(v.clone())?;
            rows.push(score(
                peer,
                test,
                data.items.len(),
                &p.recs,
                p.seconds,
                peak,
                p.tuned,
            ));
        }
        implicit_seconds = peers
            .get("_speed")
            .and_then(|s| s["implicit_als_seconds"].as_f64());
    }

    outln!(
        "{:<36} {:>16} {:>8} {:>9} {:>7} {:>8} {:>8} {:>8}  tuned on validation",
        "recipe",
        "NDCG@10 ± se",
        "P@10",
        "recall@20",
        "MRR@25",
        "coverage",
        "train s",
        "peak MB"
    );
    for r in &rows {
        outln!(
            "{:<36} {:>8.4} ± {:.4} {:>8.4} {:>9.4} {:>7.4} {:>8.4} {:>8.2} {:>8}  {}",
            r.name,
            r.ndcg10,
            r.ndcg10_se,
            r.precision10,
            r.recall20,
            r.mrr25,
            r.coverage,
            r.seconds,
            r.peak_mb.map(|m| format!("{m:.0}")).unwrap_or_default(),
            r.tuned
        );
    }
    out!(
        "iALS training time at {SPEED_FACTORS} factors, {SPEED_ITERATIONS} iterations (median of 7): recflow {ours:.3}s"
    );
    match implicit_seconds {
        Some(theirs) => outln!(
            ", implicit {theirs:.3}s, recflow is {:.2}x faster",
            theirs / ours
        ),
        None => outln!(),
    }
    Ok(())
}

#[derive(Deserialize)]
struct PeerResult {
    recs: Vec<Vec<u32>>,
    seconds: f64,
    tuned: String,
}

fn write_split(
    dir: &Path,
    data: &Interactions,
    train_rows: &[usize],
    inner_rows: &[usize],
    validation: &[TestUser],
    test: &[TestUser],
) -> anyhow::Result<()> {
    let pairs = |path: &Path, rows: &[usize]| -> anyhow::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for &r in rows {
            writeln!(f, "{},{}", data.user[r], data.item[r])?;
        }
        Ok(())
    };
    pairs(&dir.join("train.csv"), train_rows)?;
    pairs(&dir.join("inner_train.csv"), inner_rows)?;
    let users = |path: &Path, list: &[TestUser], with_relevant: bool| -> anyhow::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for t in list {
            let mut v = serde_json::json!({"user": t.user, "given": t.given});
            if with_relevant {
                v["relevant"] = serde_json::json!(t.relevant.iter().collect::<Vec<_>>());
            }
            writeln!(f, "{v}")?;
        }
        Ok(())
    };
    users(&dir.join("validation.jsonl"), validation, true)?;
    // The test users' held-out items stay on this side.
    users(&dir.join("test.jsonl"), test, false)?;
    let meta = serde_json::json!({
        "users": data.users.len(), "items": data.items.len(),
        "ease_grid": EASE_GRID, "als_reg_grid": ALS_REG_GRID, "als_alpha_grid": ALS_ALPHA_GRID,
        "als_factors": SPEED_FACTORS, "als_iterations": SPEED_ITERATIONS,
        "speed_reg": SPEED_REG, "speed_alpha": SPEED_ALPHA,
    });
    std::fs::write(dir.join("meta.json"), meta.to_string())?;
    Ok(())
}

fn load_movielens(path: &Path) -> anyhow::Result<Interactions> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: pass --movielens PATH", path.display()))?;
    let rows: Vec<(&str, &str, i64)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.next()?, {
                f.next()?;
                f.next()?.parse().ok()?
            }))
        })
        .collect();
    Ok(Interactions::from_rows(
        rows.into_iter().map(|(u, i, t)| (u, i, t, None, None)),
    ))
}

fn load_retail(path: &Path) -> anyhow::Result<Interactions> {
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("{}: pass --retail PATH", path.display()))?;
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec?;
        rows.push((
            rec[0].to_string(),
            rec[1].to_string(),
            rec[2].parse::<i64>()?,
        ));
    }
    Ok(Interactions::from_rows(
        rows.iter()
            .map(|(u, i, t)| (u.as_str(), i.as_str(), *t, None, None)),
    ))
}
