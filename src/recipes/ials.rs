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
            regularization: 1.0,
            alpha: 1.0,
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

impl IalsModel {
    /// A model from given factors (row-major users × k and items × k), as
    /// benchmarks and tests build synthetic ones.
    pub fn from_factors(k: usize, users: Vec<f32>, items: Vec<f32>) -> IalsModel {
        let d = IalsParams::default();
        IalsModel {
            k,
            alpha: d.alpha,
            regularization: d.regularization,
            users,
            items,
            item_gram: Default::default(),
        }
    }
}

/// Trains user and item factors.
pub fn train(x: &Csr, p: &IalsParams) -> IalsModel {
    train_from(x, p, None, p.iterations)
}

/// Warm-started training (`training_mode: update`): item factors start from
/// `previous` where the item is known there (by the given index map), new
/// items from small random values; a few iterations then fold in the new
/// interactions, users and items.
pub fn update(
    x: &Csr,
    p: &IalsParams,
    previous: &IalsModel,
    item_map: &[Option<u32>],
    iterations: usize,
) -> IalsModel {
    let k = p.factors;
    let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
    let mut items: Vec<f32> = Vec::with_capacity(x.cols * k);
    for old in item_map.iter().take(x.cols) {
        match old.and_then(|o| previous.items.get(o as usize * k..(o as usize + 1) * k)) {
            Some(f) if previous.k == k => items.extend_from_slice(f),
            _ => items.extend((0..k).map(|_| rng.random_range(0.0..0.01f32))),
        }
    }
    train_from(x, p, Some(items), iterations)
}

fn train_from(x: &Csr, p: &IalsParams, items: Option<Vec<f32>>, iterations: usize) -> IalsModel {
    let k = p.factors;
    let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
    let mut init =
        |n: usize| -> Vec<f32> { (0..n * k).map(|_| rng.random_range(0.0..0.01f32)).collect() };
    let mut users = init(x.rows);
    let mut items = items.unwrap_or_else(|| init(x.cols));
    let xt = x.transpose();
    let progress = Progress::count("iALS", "iterations", iterations as u64);
    for _ in 0..iterations {
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

/// Fused multiply-add where the CPU has it (the AVX2 kernel), else plain.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn dot_k<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: FMA = true is only instantiated under `solve_row_avx2`,
        // which runs only after AVX2 and FMA were detected.
        return unsafe { avx::dot(a, b) };
    }
    // Sixteen partial sums, reduced as a tree (16 → 8 → 4 → 2 → 1).
    let mut acc = [0f32; 16];
    let (ac, bc) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..16 {
            acc[l] = madd::<FMA>(x[l], y[l], acc[l]);
        }
    }
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    let mut s = acc[0];
    for (x, y) in ar.iter().zip(br) {
        s = madd::<FMA>(*x, *y, s);
    }
    s
}

#[inline(always)]
fn axpy_k<const FMA: bool>(alpha: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: as in `dot_k`.
        return unsafe { avx::axpy(alpha, x, y) };
    }
    y.iter_mut()
        .zip(x)
        .for_each(|(y, x)| *y = madd::<FMA>(alpha, *x, *y));
}

/// Explicit AVX2/FMA kernels for the two operations iALS spends its time in.
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// Σ a·b with two 8-lane accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: every load reads 8 floats at i < n - 7 of both slices.
        unsafe {
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            while i + 16 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    acc1,
                );
                i += 16;
            }
            if i + 8 <= n {
                acc0 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                i += 8;
            }
            let acc = _mm256_add_ps(acc0, acc1);
            let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            let mut r = _mm_cvtss_f32(s);
            while i < n {
                r += a[i] * b[i];
                i += 1;
            }
            r
        }
    }

    /// Widest factor dimension the register-resident kernels take (8 × 8 = 64).
    pub const MAX_VECTORS: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }

    /// out = G·v for symmetric k × k G (k a multiple of 8), four output
    /// vectors at a time held in registers.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn symv(g: &[f32], v: &[f32], out: &mut [f32]) {
        let k = out.len();
        assert!(g.len() >= k * k && v.len() >= k);
        let pg = g.as_ptr();
        if k == 64 {
            // The default size: all 64 outputs in eight registers, one pass.
            // SAFETY: row j of G holds 64 floats at j * 64.
            unsafe {
                let mut acc = [_mm256_setzero_ps(); 8];
                for (j, &vj) in v.iter().enumerate().take(64) {
                    let s = _mm256_set1_ps(vj);
                    let row = pg.add(j * 64);
                    for (c, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(s, _mm256_loadu_ps(row.add(8 * c)), *a);
                    }
                }
                for (c, a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(out.as_mut_ptr().add(8 * c), *a);
                }
            }
            return;
        }
        let mut b = 0;
        // SAFETY: loads stay within row j (j < k) of G at columns b..b+32 ≤ k.
        unsafe {
            while b < k {
                let nv = ((k - b) / 8).min(4);
                let mut acc = [_mm256_setzero_ps(); 4];
                for (j, &vj) in v.iter().enumerate().take(k) {
                    let s = _mm256_set1_ps(vj);
                    let row = pg.add(j * k + b);
                    for (c, a) in acc.iter_mut().enumerate().take(nv) {
                        *a = _mm256_fmadd_ps(s, _mm256_loadu_ps(row.add(8 * c)), *a);
                    }
                }
                for (c, a) in acc.iter().enumerate().take(nv) {
                    _mm256_storeu_ps(out.as_mut_ptr().add(b + 8 * c), *a);
                }
                b += 8 * nv;
            }
        }
    }

    /// See `item_pass` above; `acc` stays in registers across all items.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn item_pass(
        y: &[f32],
        idx: &[u32],
        vals: &[f32],
        v: &[f32],
        acc: &mut [f32],
        alpha: f32,
        residual: bool,
    ) {
        // A constant vector count lets the compiler unroll the loops and keep
        // the accumulator in registers; 64 factors (8 vectors) is the default.
        // SAFETY: forwarded; the caller checked the CPU features.
        unsafe {
            match v.len() / 8 {
                8 => item_pass_n::<8>(y, idx, vals, v, acc, alpha, residual),
                4 => item_pass_n::<4>(y, idx, vals, v, acc, alpha, residual),
                2 => item_pass_n::<2>(y, idx, vals, v, acc, alpha, residual),
                n => item_pass_dyn(n, y, idx, vals, v, acc, alpha, residual),
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn item_pass_n<const NV: usize>(
        y: &[f32],
        idx: &[u32],
        vals: &[f32],
        v: &[f32],
        acc: &mut [f32],
        alpha: f32,
        residual: bool,
    ) {
        // SAFETY: forwarded.
        unsafe { item_pass_dyn(NV, y, idx, vals, v, acc, alpha, residual) }
    }

    #[inline(always)]
    unsafe fn item_pass_dyn(
        nv: usize,
        y: &[f32],
        idx: &[u32],
        vals: &[f32],
        v: &[f32],
        acc: &mut [f32],
        alpha: f32,
        residual: bool,
    ) {
        let k = nv * 8;
        assert!(nv <= MAX_VECTORS && acc.len() >= k && v.len() >= k);
        // SAFETY: every item index is < y.len() / k (checked), every load is
        // 8 floats inside row i of y, v or acc.
        unsafe {
            let mut a = [_mm256_setzero_ps(); MAX_VECTORS];
            for c in 0..nv {
                a[c] = _mm256_loadu_ps(acc.as_ptr().add(8 * c));
            }
            let pv = v.as_ptr();
            let rows = y.len() / k;
            for (&i, &w) in idx.iter().zip(vals) {
                let i = i as usize;
                assert!(i < rows);
                let py = y.as_ptr().add(i * k);
                let (mut d0, mut d1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                let mut c = 0;
                while c + 1 < nv {
                    d0 = _mm256_fmadd_ps(
                        _mm256_loadu_ps(py.add(8 * c)),
                        _mm256_loadu_ps(pv.add(8 * c)),
                        d0,
                    );
                    d1 = _mm256_fmadd_ps(
                        _mm256_loadu_ps(py.add(8 * c + 8)),
                        _mm256_loadu_ps(pv.add(8 * c + 8)),
                        d1,
                    );
                    c += 2;
                }
                if c < nv {
                    d0 = _mm256_fmadd_ps(
                        _mm256_loadu_ps(py.add(8 * c)),
                        _mm256_loadu_ps(pv.add(8 * c)),
                        d0,
                    );
                }
                let d = hsum(_mm256_add_ps(d0, d1));
                let coef = if residual {
                    1.0 + alpha * w - alpha * w * d
                } else {
                    alpha * w * d
                };
                let s = _mm256_set1_ps(coef);
                for c in 0..nv {
                    a[c] = _mm256_fmadd_ps(s, _mm256_loadu_ps(py.add(8 * c)), a[c]);
                }
            }
            for c in 0..nv {
                _mm256_storeu_ps(acc.as_mut_ptr().add(8 * c), a[c]);
            }
        }
    }

    /// y += alpha·x.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let mut i = 0;
        // SAFETY: every access is 8 floats at i < n - 7 of both slices.
        unsafe {
            let va = _mm256_set1_ps(alpha);
            while i + 8 <= n {
                let v = _mm256_fmadd_ps(va, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i)));
                _mm256_storeu_ps(py.add(i), v);
                i += 8;
            }
        }
        while i < n {
            y[i] += alpha * x[i];
            i += 1;
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_k::<false>(a, b)
}

/// out = G·v for a symmetric k × k G, as a sum of G's rows scaled by v:
/// k vector multiply-adds with no horizontal sums.
#[inline(always)]
fn symv_k<const FMA: bool>(g: &[f32], v: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if FMA && out.len().is_multiple_of(8) {
        // SAFETY: as in `dot_k`.
        return unsafe { avx::symv(g, v, out) };
    }
    out.fill(0.0);
    for (row, &vj) in g.chunks_exact(out.len()).zip(v) {
        axpy_k::<FMA>(vj, row, out);
    }
}

/// One row's solve: warm-started conjugate gradient on
/// (G + Yᵀ(Cᵤ − I)Y) x = YᵀCᵤ1, with G = YᵀY + λI.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn solve_row<const FMA: bool>(
    g: &[f32],
    y: &[f32],
    idx: &[u32],
    vals: &[f32],
    alpha: f32,
    cg_steps: usize,
    xu: &mut [f32],
    scratch: &mut [f32],
) {
    let k = xu.len();
    if idx.is_empty() {
        xu.fill(0.0);
        return;
    }
    let (r, rest) = scratch.split_at_mut(k);
    let (pv, ap) = rest.split_at_mut(k);
    // r = YᵀCᵤ1 − (G + Yᵀ(Cᵤ − I)Y) x
    symv_k::<FMA>(g, xu, r);
    r.iter_mut().for_each(|v| *v = -*v);
    item_pass::<FMA>(y, idx, vals, xu, r, alpha, true);
    pv.copy_from_slice(r);
    let mut rs_old = dot_k::<FMA>(r, r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..cg_steps {
        symv_k::<FMA>(g, pv, ap);
        item_pass::<FMA>(y, idx, vals, pv, ap, alpha, false);
        let step = rs_old / dot_k::<FMA>(pv, ap);
        axpy_k::<FMA>(step, pv, xu);
        axpy_k::<FMA>(-step, ap, r);
        let rs_new = dot_k::<FMA>(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        pv.iter_mut()
            .zip(r.iter())
            .for_each(|(p, r)| *p = madd::<FMA>(beta, *p, *r));
        rs_old = rs_new;
    }
}

/// The per-interaction part of a solve, over the row's items i with weights w:
/// the residual pass adds Σ (c − (c − 1)·yᵢ·v)·yᵢ with c = 1 + αw, the CG pass
/// adds Σ αw·(yᵢ·v)·yᵢ, both to `acc`.
#[inline(always)]
fn item_pass<const FMA: bool>(
    y: &[f32],
    idx: &[u32],
    vals: &[f32],
    v: &[f32],
    acc: &mut [f32],
    alpha: f32,
    residual: bool,
) {
    let k = v.len();
    #[cfg(target_arch = "x86_64")]
    if FMA && k.is_multiple_of(8) && k <= 8 * avx::MAX_VECTORS {
        // SAFETY: as in `dot_k`.
        return unsafe { avx::item_pass(y, idx, vals, v, acc, alpha, residual) };
    }
    for (&i, &w) in idx.iter().zip(vals) {
        let yi = &y[i as usize * k..(i as usize + 1) * k];
        let d = dot_k::<FMA>(yi, v);
        let coef = if residual {
            1.0 + alpha * w - alpha * w * d
        } else {
            alpha * w * d
        };
        axpy_k::<FMA>(coef, yi, acc);
    }
}

type RowSolver = fn(&[f32], &[f32], &[u32], &[f32], f32, usize, &mut [f32], &mut [f32]);

fn solve_row_portable(
    g: &[f32],
    y: &[f32],
    idx: &[u32],
    vals: &[f32],
    alpha: f32,
    steps: usize,
    xu: &mut [f32],
    s: &mut [f32],
) {
    solve_row::<false>(g, y, idx, vals, alpha, steps, xu, s)
}

/// The same code compiled for AVX2 and FMA: 8-lane fused multiply-adds,
/// chosen at run time, so one binary runs everywhere and fast where it can.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn solve_row_avx2(
    g: &[f32],
    y: &[f32],
    idx: &[u32],
    vals: &[f32],
    alpha: f32,
    steps: usize,
    xu: &mut [f32],
    s: &mut [f32],
) {
    solve_row::<true>(g, y, idx, vals, alpha, steps, xu, s)
}

fn row_solver() -> RowSolver {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return |g, y, idx, vals, alpha, steps, xu, s| unsafe {
            solve_row_avx2(g, y, idx, vals, alpha, steps, xu, s)
        };
    }
    solve_row_portable
}

/// One half-step: re-solves every row of `x` against the fixed factors `y`.
fn solve_side(x: &mut [f32], y: &[f32], m: &Csr, p: &IalsParams, k: usize) {
    let g = gram(y, k, p.regularization);
    let solve = row_solver();
    x.par_chunks_mut(k)
        .enumerate()
        .with_min_len(64)
        .for_each_init(
            || vec![0f32; 3 * k],
            |scratch, (u, xu)| {
                let (idx, vals) = m.row(u);
                solve(&g, y, idx, vals, p.alpha, p.cg_steps, xu, scratch);
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
        let mut distinct = history.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for &i in distinct.iter().filter(|&&i| (i as usize) < self.n_items()) {
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
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: both features were just detected.
            unsafe { self.scores_for_avx2(factor, out) };
            return;
        }
        let k = self.k;
        for (i, o) in out.iter_mut().enumerate().take(self.n_items()) {
            *o = dot(&self.items[i * k..(i + 1) * k], factor);
        }
    }

    /// One user's scores with FMA dot products: the real-time path, where
    /// one request scores the whole catalog (`recflow bench serve`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scores_for_avx2(&self, factor: &[f32], out: &mut [f32]) {
        let k = self.k;
        for (o, y) in out.iter_mut().zip(self.items.chunks_exact(k)) {
            // SAFETY: AVX2 and FMA are enabled for this function.
            *o = unsafe { avx::dot(y, factor) };
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

    fn score_users(
        &self,
        items: &[u32],
        _histories: &super::Histories,
        _n_items: usize,
        out: &mut [f32],
    ) {
        // Σ_i uᵀyᵢ = uᵀ(Σ_i yᵢ): one vector, then one dot product per user.
        let k = self.k;
        let mut q = vec![0f32; k];
        for &i in items.iter().filter(|&&i| (i as usize) < self.n_items()) {
            q.iter_mut()
                .zip(&self.items[i as usize * k..(i as usize + 1) * k])
                .for_each(|(a, b)| *a += b);
        }
        out.par_iter_mut().enumerate().for_each(|(u, o)| {
            *o = self
                .users
                .get(u * k..(u + 1) * k)
                .map_or(0.0, |f| dot(f, &q));
        });
    }

    fn ials(&self) -> Option<&IalsModel> {
        Some(self)
    }

    fn score_block(&self, users: &[u32], histories: &super::Histories, out: &mut [f32]) {
        use faer::linalg::matmul::matmul;
        use faer::{Accum, MatMut, MatRef, Par};
        let k = self.k;
        let n = self.n_items();
        if out.len() != users.len() * n || users.iter().any(|&u| self.user_factor(u).is_none()) {
            // Not a block of trained users: score one by one.
            for (&u, row) in users
                .iter()
                .zip(out.chunks_exact_mut(out.len() / users.len().max(1)))
            {
                self.score_user(Some(u), histories.of(u), row);
            }
            return;
        }
        let mut lhs = Vec::with_capacity(users.len() * k);
        for &u in users {
            lhs.extend_from_slice(self.user_factor(u).expect("checked above"));
        }
        let lhs = MatRef::from_row_major_slice(&lhs, users.len(), k);
        let rhs = MatRef::from_row_major_slice(&self.items, n, k).transpose();
        let dst = MatMut::from_row_major_slice_mut(out, users.len(), n);
        matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
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
        let same_cluster = (out[5] + out[8] + out[9]) / 3.0;
        let other_cluster = out[..5].iter().sum::<f32>() / 5.0;
        assert!(same_cluster > other_cluster + 0.05, "{out:?}");
    }
}
