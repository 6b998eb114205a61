//! `recflow bench scale`: training time and peak memory on a synthetic
//! catalog the size of a real shop — by default 10M interactions from 1M
//! users over 100k items, with power-law (Zipf) item popularity and user
//! activity. user-personalization resolves to iALS at this catalog size.
//! The baseline measured in the same run is the bare data preparation
//! (building the user × item matrix), so the ratio is what training adds.

use std::time::Instant;

use clap::Args;
use rand::{Rng, SeedableRng};

use crate::memory::peak_rss_bytes;
use crate::outln;
use crate::recipes::{EventSettings, Interactions, Recipe, TrainingData, UserPersonalizationSpec};

#[derive(Debug, Args)]
pub struct ScaleBenchArgs {
    #[arg(long, default_value_t = 10_000_000)]
    pub interactions: usize,
    #[arg(long, default_value_t = 1_000_000)]
    pub users: usize,
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
}

/// Draws indices in `0..n` with probability ∝ 1/(rank + 1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for r in 0..n {
            total += 1.0 / ((r + 1) as f64).powf(s);
            cdf.push(total);
        }
        cdf.iter_mut().for_each(|c| *c /= total);
        Zipf { cdf }
    }

    fn draw(&self, rng: &mut impl Rng) -> u32 {
        let x: f64 = rng.random();
        self.cdf.partition_point(|&c| c < x).min(self.cdf.len() - 1) as u32
    }
}

pub fn scale(args: ScaleBenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let items = Zipf::new(args.items, 0.9);
    let users = Zipf::new(args.users, 0.5);
    let mut data = Interactions::default();
    for u in 0..args.users {
        data.users.intern(&format!("u{u}"));
    }
    for i in 0..args.items {
        data.items.intern(&format!("i{i}"));
    }
    data.user.reserve(args.interactions);
    data.item.reserve(args.interactions);
    data.timestamp.reserve(args.interactions);
    for n in 0..args.interactions {
        data.user.push(users.draw(&mut rng));
        data.item.push(items.draw(&mut rng));
        data.timestamp.push(1_700_000_000 + n as i64 / 10);
    }
    outln!(
        "synthetic data: {} interactions, {} users, {} items (Zipf 0.9 items, 0.5 users) in {:.1}s",
        args.interactions,
        args.users,
        args.items,
        started.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let td = TrainingData::new(&data, &EventSettings::default())?;
    let prepare = t.elapsed().as_secs_f64();
    outln!(
        "baseline (user × item matrix, {} non-zeros): {prepare:.2}s",
        td.matrix.nnz()
    );

    let spec = UserPersonalizationSpec {
        factors: args.factors,
        iterations: args.iterations,
        ..Default::default()
    };
    outln!(
        "user-personalization resolves to {:?} for {} items",
        spec.resolve(args.items),
        args.items
    );
    let t = Instant::now();
    let model = spec.train(&td)?;
    let train = t.elapsed().as_secs_f64();
    let peak = peak_rss_bytes().map(|b| b as f64 / (1u64 << 30) as f64);
    outln!(
        "training: {train:.1}s ({:.2}s per iteration, {:.1}x the baseline); peak RSS {} (target < 4 GiB)",
        train / args.iterations as f64,
        train / prepare,
        peak.map_or("unknown".to_string(), |g| format!("{g:.2} GiB"))
    );
    drop(model);
    Ok(())
}
