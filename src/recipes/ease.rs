//! EASE (Steck, 2019): a closed-form item-item model. With the Gram matrix
//! G = XᵀX of the user × item matrix, P = (G + λI)⁻¹ and B = I − P·diag(1/diag P)
//! with a zero diagonal; a user's scores are their history row times B.
//! One Cholesky inverse of an items × items matrix, so it suits catalogs up to
//! about ten thousand items; larger catalogs use iALS.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use rayon::prelude::*;

use super::Model;
use super::matrix::Csr;
use crate::artifact::{ArtifactError, ArtifactReader, ArtifactWriter};

/// Bytes EASE holds at its peak for `items` items: the f64 Gram matrix, its
/// f64 inverse and the f32 weights, each items × items.
pub fn peak_bytes(items: usize) -> u64 {
    let cells = (items as u64).saturating_mul(items as u64);
    cells.saturating_mul(8 + 8 + 4)
}

/// Refuses a catalog whose items × items matrices would not fit in the
/// memory available (`None`: unknown, then nothing is refused), with a
/// message that says what to use instead, rather than failing to allocate.
pub fn check_fits(items: usize, available: Option<u64>) -> anyhow::Result<()> {
    let need = peak_bytes(items);
    match available {
        Some(have) if need > have => anyhow::bail!(
            "EASE cannot train on {items} items: its items × items matrices take {} and {} \
             of memory is available; use `algorithm: ials` (or `auto`, which uses iALS for \
             catalogs EASE cannot hold)",
            crate::memory::human_bytes(need),
            crate::memory::human_bytes(have),
        ),
        _ => Ok(()),
    }
}

/// Trains B from a users × items matrix (values are the interaction weights).
pub fn train(x: &Csr, l2: f64) -> anyhow::Result<EaseModel> {
    let n = x.cols;
    anyhow::ensure!(n > 0, "no items to train on");
    check_fits(n, crate::memory::available_bytes())?;
    // G = XᵀX + λI, from each user's outer product; sequential, since it is
    // cheap next to the inverse and one n × n buffer is all the memory it takes.
    let mut g = Mat::<f64>::zeros(n, n);
    for u in 0..x.rows {
        let (items, values) = x.row(u);
        for (a, &i) in items.iter().enumerate() {
            let vi = values[a] as f64;
            let col = g.col_as_slice_mut(i as usize);
            for (b, &j) in items.iter().enumerate() {
                col[j as usize] += vi * values[b] as f64;
            }
        }
    }
    for i in 0..n {
        g[(i, i)] += l2;
    }
    let p = g
        .llt(Side::Lower)
        .map_err(|e| {
            anyhow::anyhow!(
                "EASE: the regularised Gram matrix is not positive definite ({e:?}); raise l2"
            )
        })?
        .inverse();
    // B[i][j] = -P[i][j] / P[j][j], B[i][i] = 0; stored row-major as f32.
    let mut b = vec![0f32; n * n];
    b.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if i == j {
                0.0
            } else {
                (-p[(i, j)] / p[(j, j)]) as f32
            };
        }
    });
    Ok(EaseModel { n, b })
}

pub struct EaseModel {
    n: usize,
    /// Row-major items × items weights.
    b: Vec<f32>,
}

impl EaseModel {
    pub fn load(r: &ArtifactReader) -> Result<EaseModel, ArtifactError> {
        let b = r.f32s("ease.b")?;
        let n = (b.len() as f64).sqrt() as usize;
        if n * n != b.len() {
            return Err(ArtifactError::Corrupt {
                file: "model".into(),
                reason: "ease.b is not square".into(),
            });
        }
        Ok(EaseModel { n, b })
    }

    fn row(&self, i: u32) -> &[f32] {
        &self.b[i as usize * self.n..(i as usize + 1) * self.n]
    }

    /// Adds `weight ×` row `i` of B to `out`.
    pub fn accumulate(&self, i: u32, weight: f32, out: &mut [f32]) {
        if (i as usize) < self.n {
            out.iter_mut()
                .zip(self.row(i))
                .for_each(|(o, b)| *o += weight * b);
        }
    }
}

impl Model for EaseModel {
    fn score_user(&self, _user: Option<u32>, history: &[u32], out: &mut [f32]) {
        out.fill(0.0);
        // The model was trained on a 0/1 matrix: a repeated item counts once.
        let mut distinct = history.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for i in distinct {
            self.accumulate(i, 1.0, out);
        }
    }

    fn score_related(&self, item: u32, out: &mut [f32]) {
        out.fill(0.0);
        // Column `item` of B: how much each item's presence predicts `item`,
        // made symmetric with the row so "related" reads both ways.
        for (j, o) in out.iter_mut().enumerate().take(self.n) {
            *o = self.b[j * self.n + item as usize] + self.b[item as usize * self.n + j];
        }
    }

    fn score_users(
        &self,
        items: &[u32],
        histories: &super::Histories,
        _n_items: usize,
        out: &mut [f32],
    ) {
        use rayon::prelude::*;
        // s(u) = Σ_{j ∈ history(u)} Σ_{i ∈ items} B[j][i]: one column sum per item j.
        let col: Vec<f32> = (0..self.n)
            .map(|j| {
                items
                    .iter()
                    .filter(|&&i| (i as usize) < self.n)
                    .map(|&i| self.b[j * self.n + i as usize])
                    .sum()
            })
            .collect();
        out.par_iter_mut().enumerate().for_each(|(u, o)| {
            let mut h = histories.of(u as u32).to_vec();
            h.sort_unstable();
            h.dedup();
            *o = h
                .iter()
                .filter(|&&j| (j as usize) < self.n)
                .map(|&j| col[j as usize])
                .sum();
        });
    }

    fn save(&self, w: &mut ArtifactWriter) {
        w.f32s("ease.b", &self.b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_co_occurrence_and_never_recommends_an_item_for_itself() {
        // Items 0 and 1 always together; item 2 with 3.
        let mut entries = Vec::new();
        for u in 0..20u32 {
            let pair = if u % 2 == 0 { [0, 1] } else { [2, 3] };
            for i in pair {
                entries.push((u, i, 1.0));
            }
        }
        let x = Csr::from_triplets(20, 4, &entries);
        let m = train(&x, 1.0).unwrap();
        let mut out = vec![0.0; 4];
        m.score_user(None, &[0], &mut out);
        assert_eq!(out[0], 0.0);
        assert!(
            out[1] > 0.5 && out[2].abs() < 1e-6 && out[3].abs() < 1e-6,
            "{out:?}"
        );
    }

    #[test]
    fn a_catalog_too_big_for_memory_is_refused_before_allocating() {
        // The managed service's largest catalog: 750,000 items.
        let x = Csr::from_triplets(1, 750_000, &[(0, 3, 1.0)]);
        let err = train(&x, 250.0).err().expect("refused");
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "EASE cannot train on 750000 items: its items × items matrices take 10.2 TiB"
            ),
            "{msg}"
        );
        assert!(msg.contains("use `algorithm: ials`"), "{msg}");
        assert!(check_fits(2_000, Some(100 << 20)).is_ok());
        assert!(check_fits(3_000, Some(100 << 20)).is_err());
        assert!(check_fits(3_000, None).is_ok());
    }
}
