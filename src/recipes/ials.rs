//! Implicit-feedback ALS (Hu, Koren & Volinsky, 2008) with the conjugate-
//! gradient solver of Takács, Pilászy & Tikk (2011). Confidence is
//! c = 1 + α·w for an interaction of weight w and 1 elsewhere; each half-step
//! solves (YᵀY + Yᵀ(Cᵤ − I)Y + λI) xᵤ = YᵀCᵤ·1 for every user (then every item)
//! with a few warm-started CG steps, in parallel over rows.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Model;
use super::matrix::Csr;
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};
use crate::progress::Progress;

/// iALS hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IalsParams {
    pub factors: usize,
    pub regularization: f32,
    pub alpha: f32,
    pub iterations: usize,
    pub cg_steps: usize,
    pub seed: u64,
}

impl Default for IalsParams {
    fn default() -> Self {
        Self {
            factors: 64,
            regularization: 0.1,
            alpha: 10.0,
            iterations: 15,
            cg_steps: 3,
            seed: 42,
        }
    }
}

pub struct IalsModel {
    k: usize,
    alpha: f32,
    regularization: f32,
    /// users × k, row-major.
    users: Vec<f32>,
    /// items × k, row-major.
    items: Vec<f32>,
    /// YᵀY + λI over the items, for folding in new histories; built on first use.
    item_gram: std::sync::OnceLock<Vec<f32>>,
}

/// Trains user and item factors.
pub fn train(x: &Csr, p: &IalsParams) -> IalsModel {
    let k = p.factors;
    let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
    let mut init =
        |n: usize| -> Vec<f32> { (0..n * k).map(|_| rng.random_range(0.0..0.01f32)).collect() };
    let mut users = init(x.rows);
    let mut items = init(x.cols);
    let xt = x.transpose();
    let progress = Progress::count("iALS", "iterations", p.iterations as u64);
    for _ in 0..p.iterations {
        solve_side(&mut users, &items, x, p, k);
        solve_side(&mut items, &users, &xt, p, k);
        progress.inc(1);
    }
    progress.finish();
    IalsModel {
        k,
        alpha: p.alpha,
        regularization: p.regularization,
        users,
        items,
        item_gram: Default::default(),
    }
}

/// YᵀY + λI, k × k row-major.
fn gram(y: &[f32], k: usize, reg: f32) -> Vec<f32> {
    let view = ArrayView2::from_shape((y.len() / k, k), y).expect("factor matrix shape");
    let g = view.t().dot(&view);
    let mut out: Vec<f32> = g.iter().copied().collect();
    for d in 0..k {
        out[d * k + d] += reg;
    }
    out
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four partial sums let the compiler keep several vector lanes busy.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[inline]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

/// out = G·v for a k × k row-major G.
#[inline]
fn matvec(g: &[f32], v: &[f32], out: &mut [f32], k: usize) {
    for (r, o) in out.iter_mut().enumerate() {
        *o = dot(&g[r * k..(r + 1) * k], v);
    }
}

/// One half-step: re-solves every row of `x` against the fixed factors `y`.
fn solve_side(x: &mut [f32], y: &[f32], m: &Csr, p: &IalsParams, k: usize) {
    let g = gram(y, k, p.regularization);
    x.par_chunks_mut(k).enumerate().for_each_init(
        || vec![0f32; 3 * k],
        |scratch, (u, xu)| {
            let (idx, vals) = m.row(u);
            if idx.is_empty() {
                xu.fill(0.0);
                return;
            }
            let (r, rest) = scratch.split_at_mut(k);
            let (pv, ap) = rest.split_at_mut(k);
            // r = YᵀCᵤ1 − (YᵀY + λI + Yᵀ(Cᵤ − I)Y) x
            matvec(&g, xu, r, k);
            r.iter_mut().for_each(|v| *v = -*v);
            for (&i, &w) in idx.iter().zip(vals) {
                let yi = &y[i as usize * k..(i as usize + 1) * k];
                let c = 1.0 + p.alpha * w;
                axpy(c - (c - 1.0) * dot(yi, xu), yi, r);
            }
            pv.copy_from_slice(r);
            let mut rs_old = dot(r, r);
            if rs_old < 1e-20 {
                return;
            }
            for _ in 0..p.cg_steps {
                matvec(&g, pv, ap, k);
                for (&i, &w) in idx.iter().zip(vals) {
                    let yi = &y[i as usize * k..(i as usize + 1) * k];
                    axpy(p.alpha * w * dot(yi, pv), yi, ap);
                }
                let step = rs_old / dot(pv, ap);
                axpy(step, pv, xu);
                axpy(-step, ap, r);
                let rs_new = dot(r, r);
                if rs_new < 1e-20 {
                    break;
                }
                let beta = rs_new / rs_old;
                pv.iter_mut()
                    .zip(r.iter())
                    .for_each(|(p, r)| *p = r + beta * *p);
                rs_old = rs_new;
            }
        },
    );
}

impl IalsModel {
    pub fn load(r: &ArtifactReader) -> Result<IalsModel, ArtifactError> {
        let meta = r.u32s("ials.shape")?;
        let params = r.f32s("ials.params")?;
        let (k, alpha, regularization) = match (meta.as_slice(), params.as_slice()) {
            ([k], [a, reg]) => (*k as usize, *a, *reg),
            _ => {
                return Err(ArtifactError::Corrupt {
                    file: "model".into(),
                    reason: "bad iALS header".into(),
                });
            }
        };
        Ok(IalsModel {
            k,
            alpha,
            regularization,
            users: r.f32s("ials.users")?,
            items: r.f32s("ials.items")?,
            item_gram: Default::default(),
        })
    }

    pub fn factors(&self) -> usize {
        self.k
    }

    pub fn n_items(&self) -> usize {
        self.items.len() / self.k
    }

    pub fn item_factors(&self) -> &[f32] {
        &self.items
    }

    pub fn user_factor(&self, u: u32) -> Option<&[f32]> {
        self.users
            .get(u as usize * self.k..(u as usize + 1) * self.k)
    }

    /// A factor for a history the model has not trained on (a new user, or
    /// a known user's latest events): one exact least-squares solve.
    pub fn fold_in(&self, history: &[u32]) -> Vec<f32> {
        let k = self.k;
        let mut a = Mat::<f32>::zeros(k, k);
        let g = self
            .item_gram
            .get_or_init(|| gram(&self.items, k, self.regularization));
        for r in 0..k {
            for c in 0..k {
                a[(r, c)] = g[r * k + c];
            }
        }
        let mut b = Mat::<f32>::zeros(k, 1);
        let c = 1.0 + self.alpha;
        for &i in history.iter().filter(|&&i| (i as usize) < self.n_items()) {
            let yi = &self.items[i as usize * k..(i as usize + 1) * k];
            for r in 0..k {
                b[(r, 0)] += c * yi[r];
                for col in 0..k {
                    a[(r, col)] += (c - 1.0) * yi[r] * yi[col];
                }
            }
        }
        match a.llt(Side::Lower) {
            Ok(llt) => {
                let x = llt.solve(&b);
                (0..k).map(|r| x[(r, 0)]).collect()
            }
            Err(_) => vec![0.0; k],
        }
    }

    /// Scores every item against a user factor.
    pub fn scores_for(&self, factor: &[f32], out: &mut [f32]) {
        let k = self.k;
        for (i, o) in out.iter_mut().enumerate().take(self.n_items()) {
            *o = dot(&self.items[i * k..(i + 1) * k], factor);
        }
    }
}

impl Model for IalsModel {
    fn score_user(&self, user: Option<u32>, history: &[u32], out: &mut [f32]) {
        out.fill(0.0);
        match user.and_then(|u| self.user_factor(u)) {
            Some(f) => self.scores_for(f, out),
            None if !history.is_empty() => {
                let f = self.fold_in(history);
                self.scores_for(&f, out);
            }
            None => {}
        }
    }

    fn score_related(&self, item: u32, out: &mut [f32]) {
        let k = self.k;
        out.fill(0.0);
        let Some(q) = self.items.get(item as usize * k..(item as usize + 1) * k) else {
            return;
        };
        let qn = dot(q, q).sqrt().max(1e-12);
        for (i, o) in out.iter_mut().enumerate().take(self.n_items()) {
            let y = &self.items[i * k..(i + 1) * k];
            *o = dot(q, y) / (qn * dot(y, y).sqrt().max(1e-12));
        }
    }

    fn save(&self, w: &mut ArtifactWriter) {
        w.u32s("ials.shape", &[self.k as u32]);
        w.f32s("ials.params", &[self.alpha, self.regularization]);
        w.f32s("ials.users", &self.users);
        w.f32s("ials.items", &self.items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_two_clusters_and_folds_in_a_new_user() {
        // Users 0..30 like items 0..5, users 30..60 like items 5..10.
        let mut entries = Vec::new();
        for u in 0..60u32 {
            let base = if u < 30 { 0 } else { 5 };
            for i in 0..5 {
                if (u + i) % 5 != 0 {
                    entries.push((u, base + i, 1.0));
                }
            }
        }
        let x = Csr::from_triplets(60, 10, &entries);
        let m = train(
            &x,
            &IalsParams {
                factors: 8,
                iterations: 10,
                ..IalsParams::default()
            },
        );
        let mut out = vec![0.0; 10];
        m.score_user(Some(0), &[], &mut out);
        let first: f32 = out[..5].iter().sum();
        let second: f32 = out[5..].iter().sum();
        assert!(first > 3.0 * second.abs(), "{out:?}");
        m.score_user(None, &[6, 7], &mut out);
        assert!(out[8] > out[2], "{out:?}");
    }
}
