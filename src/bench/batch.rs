//! `recflow bench batch`: top-25 for every user of a synthetic model — by
//! default 1M users, 50k items, 64 factors — written as the managed
//! service's JSON lines, end to end through the batch job. The bound,
//! measured in the same run, is the plain dense matrix product of the same
//! shapes with the same library (faer), in the same blocks and threads,
//! with no top-K and no output: what any exact scorer must do at least.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::batch::{BatchInput, BatchJob, BatchSettings, JobKind, OutputFormat, run_batch};
use crate::campaign::Recommender;
use crate::memory::peak_rss_bytes;
use crate::outln;
use crate::recipes::ials::IalsModel;
use crate::recipes::{
    EventSettings, Exploration, Interactions, SolutionModel, TrainingData, UpModel,
};
use crate::storage::Storage;

#[derive(Debug, Args)]
pub struct BatchBenchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub users: usize,
    #[arg(long, default_value_t = 50_000)]
    pub items: usize,
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    #[arg(long, default_value_t = 25)]
    pub num_results: usize,
    /// Stage the input (one `{"userId"}` line per user) under PREFIX/input/
    /// and write under PREFIX/output/, e.g. `s3://bucket/bench/` (the bucket
    /// must exist). Default: every user (`users: all`) to a local folder.
    #[arg(long, value_name = "PREFIX")]
    pub via: Option<String>,
}

pub async fn batch(args: BatchBenchArgs) -> anyhow::Result<()> {
    let (k, n_users, n_items) = (args.factors, args.users, args.items);
    let built = Instant::now();
    let model = tokio::task::spawn_blocking(move || synthetic(n_users, n_items, k)).await??;
    let model = Arc::new(model);
    outln!(
        "synthetic model: {n_users} users, {n_items} items, {k} factors, 3 seen items per user ({:.1}s)",
        built.elapsed().as_secs_f64()
    );

    // The bound: the same products, no selection, no output.
    let m = model.clone();
    let bound = tokio::task::spawn_blocking(move || gemm_bound(&m, n_users, n_items, k)).await?;
    outln!(
        "bound (dense products of the same shapes, faer, blocks of 128 users): {bound:.1}s, {:.0} users/s",
        n_users as f64 / bound
    );

    // Scoring and selection alone, without formatting or output.
    let m = model.clone();
    let n = args.num_results;
    let scoring = tokio::task::spawn_blocking(move || {
        let ids: Vec<&str> = m.users.ids().iter().map(String::as_str).collect();
        let started = Instant::now();
        for block in ids.chunks(4096) {
            std::hint::black_box(m.recommend_users(block, n, Exploration::NONE, &[]));
        }
        started.elapsed().as_secs_f64()
    })
    .await?;
    outln!(
        "scoring and top-{n} selection alone: {scoring:.1}s, {:.0} users/s",
        n_users as f64 / scoring
    );

    let dir = tempfile::tempdir()?;
    let storage = Storage::default();
    let (input, output_url) = match &args.via {
        None => (BatchInput::AllUsers, format!("{}/", dir.path().display())),
        Some(prefix) => {
            let prefix = prefix.trim_end_matches('/');
            let staged = storage.open_str(&format!("{prefix}/input/users.jsonl"), dir.path())?;
            let mut w = staged.writer().await?;
            let mut buf = String::new();
            for u in model.users.ids() {
                buf.push_str(&format!("{{\"userId\": \"{u}\"}}\n"));
                if buf.len() > 8 << 20 {
                    w.write(buf.as_bytes()).await?;
                    buf.clear();
                }
            }
            w.write(buf.as_bytes()).await?;
            w.finish().await?;
            outln!("staged the input at {}", staged.url());
            (
                BatchInput::Objects(vec![(staged, "users.jsonl".into())]),
                format!("{prefix}/output/"),
            )
        }
    };
    let output = storage.open_str(&output_url, dir.path())?;
    let rec = Recommender {
        solution: "synthetic".into(),
        version: 1,
        model,
        exploration: Exploration::NONE,
    };
    let settings = BatchSettings {
        input_format: None,
        user_column: String::new(),
        output_format: OutputFormat::Json,
        num_results: args.num_results,
        part_lines: 1_000_000,
        item_metadata: Vec::new(),
    };
    let rss_before = peak_rss_bytes().unwrap_or(0);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let manifest = run_batch(BatchJob {
        recommender: &rec,
        campaign: None,
        kind: JobKind::Recommendations,
        input,
        output: &output,
        settings: &settings,
        metadata_values: Default::default(),
        filter: None,
        run_id: None,
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_rss_bytes().unwrap_or(0);
    outln!(
        "batch job: top-{} for {n_users} users in {secs:.1}s, {:.0} users/s, {:.0} MB of JSON lines to {output_url}",
        args.num_results,
        n_users as f64 / secs,
        manifest.output_bytes as f64 / 1e6
    );
    outln!("ratio to the bound: {:.2} (goal ≥ 0.50)", bound / secs);
    outln!(
        "peak RSS during the job: {:.0} MiB (the model alone: {:.0} MiB before the job)",
        peak as f64 / 1048576.0,
        rss_before as f64 / 1048576.0
    );
    Ok(())
}

pub(crate) fn synthetic(n_users: usize, n_items: usize, k: usize) -> anyhow::Result<SolutionModel> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut data = Interactions::default();
    for u in 0..n_users {
        data.users.intern(&format!("u{u}"));
    }
    for i in 0..n_items {
        data.items.intern(&format!("i{i}"));
    }
    for u in 0..n_users as u32 {
        for _ in 0..3 {
            data.user.push(u);
            data.item.push(rng.random_range(0..n_items as u32));
            data.timestamp.push(1_700_000_000);
        }
    }
    let users: Vec<f32> = (0..n_users * k)
        .map(|_| rng.random_range(-0.5..0.5f32))
        .collect();
    let items: Vec<f32> = (0..n_items * k)
        .map(|_| rng.random_range(-0.5..0.5f32))
        .collect();
    let td = TrainingData::new(&data, &EventSettings::default())?;
    let model = UpModel::Ials(IalsModel::from_factors(k, users, items));
    Ok(SolutionModel::new(
        crate::recipes::RecipeKind::UserPersonalization,
        &td,
        Box::new(model),
    ))
}

fn gemm_bound(model: &SolutionModel, n_users: usize, n_items: usize, k: usize) -> f64 {
    let ials = model.model().ials().expect("an iALS model");
    let items = ials.item_factors();
    let started = Instant::now();
    let users: Vec<u32> = (0..n_users as u32).collect();
    users.par_chunks(128).for_each_init(
        || vec![0f32; 128 * n_items],
        |out, block| {
            let mut lhs = Vec::with_capacity(block.len() * k);
            for &u in block {
                lhs.extend_from_slice(ials.user_factor(u).expect("trained user"));
            }
            let out = &mut out[..block.len() * n_items];
            matmul(
                MatMut::from_row_major_slice_mut(out, block.len(), n_items),
                Accum::Replace,
                MatRef::from_row_major_slice(&lhs, block.len(), k),
                MatRef::from_row_major_slice(items, n_items, k).transpose(),
                1.0f32,
                Par::Seq,
            );
            std::hint::black_box(&out[0]);
        },
    );
    started.elapsed().as_secs_f64()
}
