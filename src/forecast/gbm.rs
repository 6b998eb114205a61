//! Histogram gradient-boosted regression trees for several quantiles at
//! once (the booster under `global.rs`). Features are binned to `u8` (bin 0
//! holds missing values, as LightGBM does); trees grow leaf-wise. All
//! quantiles share each tree's structure, chosen by the summed pinball-loss
//! gains, and each leaf holds one value per quantile: the quantile of the
//! residuals of its rows, as LightGBM's quantile objective renews leaves.
//! Training is deterministic for a seed, whatever the thread count.
//!
//! The pinball gradient takes two values per quantile, so histograms hold
//! integer counts (rows, and rows whose label lies above the prediction),
//! built row-wise from a row-major bin matrix: exact, whatever the order of
//! summation. Bagging draws come from a hash of (seed, tree, row).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The bin of missing (NaN) feature values; it sorts before every value.
const MISSING_BIN: u8 = 0;

/// Hyperparameters of the booster. Defaults suit a few hundred thousand
/// rows of scaled demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoosterParams {
    /// Boosting rounds (trees).
    pub trees: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Leaves per tree (leaf-wise growth stops here).
    pub max_leaves: usize,
    /// Depth cap of a tree.
    pub max_depth: usize,
    /// A split leaves at least this many rows on each side.
    pub min_rows_in_leaf: usize,
    /// L2 regularisation of the split gain.
    pub l2: f64,
    /// Fraction of rows each tree is grown on (bagging).
    pub row_fraction: f64,
    /// Fraction of features each tree may split on.
    pub feature_fraction: f64,
    /// Bins per feature, the missing bin included (at most 256).
    pub max_bins: usize,
    pub seed: u64,
}

impl Default for BoosterParams {
    fn default() -> Self {
        BoosterParams {
            trees: 400,
            learning_rate: 0.04,
            max_leaves: 15,
            max_depth: 10,
            min_rows_in_leaf: 100,
            l2: 1.0,
            row_fraction: 0.5,
            feature_fraction: 0.9,
            max_bins: 256,
            seed: 42,
        }
    }
}

/// Per feature, the upper edges of its value bins: a value `x` goes to bin
/// `1 + #{e < x}`, so "bin ≤ b" means `x ≤ edges[b - 1]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Bins {
    edges: Vec<Vec<f32>>,
}

impl Bins {
    /// Edges at the quantiles of (a sample of) each feature's values.
    fn fit(rows: &[f32], n_features: usize, max_bins: usize) -> Bins {
        let n = rows.len() / n_features.max(1);
        let step = (n / 200_000).max(1);
        let value_bins = max_bins.clamp(2, 256) - 1;
        let edges = (0..n_features)
            .into_par_iter()
            .map(|f| {
                let mut v: Vec<f32> = (0..n)
                    .step_by(step)
                    .map(|i| rows[i * n_features + f])
                    .filter(|x| !x.is_nan())
                    .collect();
                v.sort_by(f32::total_cmp);
                let mut distinct = v.clone();
                distinct.dedup();
                let mut edges: Vec<f32> = if distinct.len() <= value_bins {
                    distinct
                } else {
                    (1..value_bins)
                        .map(|j| v[j * v.len() / value_bins])
                        .collect()
                };
                edges.dedup();
                // The largest value needs no upper edge.
                if edges.last() == v.last() {
                    edges.pop();
                }
                edges
            })
            .collect();
        Bins { edges }
    }

    fn bin(&self, feature: usize, x: f32) -> u8 {
        if x.is_nan() {
            return MISSING_BIN;
        }
        1 + self.edges[feature].partition_point(|e| *e < x) as u8
    }

    /// Bins in use by a feature, the missing bin included.
    fn count(&self, feature: usize) -> usize {
        self.edges[feature].len() + 2
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Node {
    /// Rows with `x ≤ threshold` (or missing) go left; `bin` is the same
    /// test on binned rows. A split at the missing bin sends only missing
    /// values left (its threshold is unused).
    Split {
        feature: u32,
        bin: u8,
        threshold: f32,
        left: u32,
        right: u32,
    },
    Leaf {
        values: Vec<f32>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn leaf(&self, goes_left: impl Fn(u32, u8, f32) -> bool) -> &[f32] {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                Node::Leaf { values } => return values,
                Node::Split {
                    feature,
                    bin,
                    threshold,
                    left,
                    right,
                } => {
                    at = if goes_left(*feature, *bin, *threshold) {
                        *left
                    } else {
                        *right
                    } as usize
                }
            }
        }
    }
}

/// A trained multi-quantile booster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Booster {
    quantiles: Vec<f64>,
    n_features: usize,
    base: Vec<f64>,
    trees: Vec<Tree>,
}

/// Quantiles per above-mask code: a row's code for a group of up to four
/// quantiles has bit `j` set when its label lies above its current
/// prediction of the group's quantile `j`.
const GROUP: usize = 4;

/// The rows of one leaf while a tree grows.
struct Leaf {
    node: usize,
    depth: usize,
    rows: Vec<u32>,
    /// Rows outside the bag that fall in this leaf: they take its values
    /// without walking the finished tree.
    out_of_bag: Vec<u32>,
    /// Per feature (at `Grower::offsets`) and bin: per quantile the rows
    /// whose label lies above their prediction, then the row count.
    hist: Vec<u32>,
    split: Option<Split>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: u8,
}

/// Below this many row × feature visits a histogram is built on one thread:
/// rayon's hand-off costs more than it saves.
const PARALLEL_WORK: usize = 1 << 17;

struct Grower<'a> {
    /// Bins of every row, row-major: a histogram reads each row's bins
    /// from one cache line instead of one line per feature.
    binned: &'a [u8],
    n_features: usize,
    /// The same bins column-major, for partitioning rows on one feature.
    columns: &'a [Vec<u8>],
    bins: &'a Bins,
    /// Per group of quantiles, each row's above-mask code.
    codes: &'a [Vec<u8>],
    /// 1 − τ per quantile: a leaf's pinball gradient sum for quantile `c`
    /// is `(1 − τ) n − above_c`, so counts are all a histogram needs.
    one_minus_tau: &'a [f64],
    /// Where each feature's bins start in a histogram (`k + 1` counts per
    /// bin); `offsets[f] / (k + 1)` is the number of bins before `f`.
    offsets: &'a [usize],
    params: &'a BoosterParams,
    allowed: Vec<usize>,
}

impl Grower<'_> {
    fn k(&self) -> usize {
        self.one_minus_tau.len()
    }

    fn row(&self, i: u32) -> &[u8] {
        let i = i as usize;
        &self.binned[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Adds the counts of `rows` to `h`.
    fn count(&self, rows: &[u32], h: &mut [u32]) {
        let k = self.k();
        let total_bins = h.len() / (k + 1);
        for (g, codes) in self.codes.iter().enumerate() {
            let in_group = GROUP.min(k - g * GROUP);
            let n_codes = 1 << in_group;
            if rows.len() * self.allowed.len() < total_bins * n_codes {
                // A small leaf: count each quantile directly.
                for &i in rows {
                    let (row, code) = (self.row(i), codes[i as usize]);
                    for &f in &self.allowed {
                        let at = self.offsets[f] + row[f] as usize * (k + 1);
                        for j in 0..in_group {
                            h[at + g * GROUP + j] += ((code >> j) & 1) as u32;
                        }
                        if g == 0 {
                            h[at + k] += 1;
                        }
                    }
                }
                continue;
            }
            // Count (bin, code) pairs, one increment per row and feature,
            // then split the codes into per-quantile counts.
            let mut by_code = vec![0u32; total_bins << in_group];
            let starts: Vec<usize> = self
                .allowed
                .iter()
                .map(|&f| self.offsets[f] / (k + 1))
                .collect();
            for &i in rows {
                let (row, code) = (self.row(i), codes[i as usize] as usize);
                for (&f, &start) in self.allowed.iter().zip(&starts) {
                    by_code[((start + row[f] as usize) << in_group) | code] += 1;
                }
            }
            for (&f, &start) in self.allowed.iter().zip(&starts) {
                let bins = self.bins.count(f);
                let counts = &by_code[start << in_group..(start + bins) << in_group];
                let out = &mut h[self.offsets[f]..self.offsets[f + 1]];
                for (counts, out) in counts.chunks(n_codes).zip(out.chunks_mut(k + 1)) {
                    for (code, &n) in counts.iter().enumerate() {
                        for j in 0..in_group {
                            out[g * GROUP + j] += n * ((code >> j) & 1) as u32;
                        }
                        if g == 0 {
                            out[k] += n;
                        }
                    }
                }
            }
        }
    }

    fn histogram(&self, rows: &[u32]) -> Vec<u32> {
        let size = *self.offsets.last().expect("offsets end");
        let threads = rayon::current_num_threads();
        if threads == 1 || rows.len() * self.allowed.len() < PARALLEL_WORK {
            let mut hist = vec![0u32; size];
            self.count(rows, &mut hist);
            return hist;
        }
        // Counts are integers, so the sum is the same however rows are split.
        rows.par_chunks(rows.len().div_ceil(threads))
            .map(|part| {
                let mut hist = vec![0u32; size];
                self.count(part, &mut hist);
                hist
            })
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            })
            .expect("rows are not empty")
    }

    fn best_split(&self, hist: &[u32], depth: usize) -> Option<Split> {
        if depth >= self.params.max_depth {
            return None;
        }
        let (k, l2) = (self.k(), self.params.l2);
        let min_rows = self.params.min_rows_in_leaf.max(1) as u32;
        let score = |above: &[u32], n: u32| {
            let n = n as f64;
            let g2: f64 = above
                .iter()
                .zip(self.one_minus_tau)
                .map(|(a, w)| (w * n - *a as f64).powi(2))
                .sum();
            g2 / (n + l2)
        };
        let mut best: Option<Split> = None;
        // Every allowed feature's bins sum to the leaf's totals.
        let f0 = self.allowed[0];
        let mut total = vec![0u32; k + 1];
        for b in hist[self.offsets[f0]..self.offsets[f0 + 1]].chunks(k + 1) {
            total.iter_mut().zip(b).for_each(|(t, v)| *t += v);
        }
        let parent = score(&total[..k], total[k]);
        let mut left = vec![0u32; k + 1];
        let mut right = vec![0u32; k + 1];
        for &f in &self.allowed {
            let h = &hist[self.offsets[f]..self.offsets[f + 1]];
            left.fill(0);
            for b in 0..self.bins.count(f) - 1 {
                let bin = &h[b * (k + 1)..(b + 1) * (k + 1)];
                if bin[k] == 0 {
                    // No rows: the same split as the previous bin.
                    continue;
                }
                left.iter_mut().zip(bin).for_each(|(l, v)| *l += v);
                let n_left = left[k];
                let n_right = total[k] - n_left;
                if n_right < min_rows {
                    break;
                }
                if n_left < min_rows {
                    continue;
                }
                for c in 0..k {
                    right[c] = total[c] - left[c];
                }
                let gain = score(&left[..k], n_left) + score(&right[..k], n_right) - parent;
                if gain > 1e-9 && best.is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        gain,
                        feature: f,
                        bin: b as u8,
                    });
                }
            }
        }
        best
    }

    /// Grows one tree on `rows`; returns it with each leaf's rows (leaf
    /// values are filled in by the caller).
    fn grow(&self, rows: Vec<u32>, out_of_bag: Vec<u32>) -> (Vec<Node>, Vec<Leaf>) {
        let hist = self.histogram(&rows);
        let split = self.best_split(&hist, 0);
        let mut nodes = vec![Node::Leaf { values: Vec::new() }];
        let mut leaves = vec![Leaf {
            node: 0,
            depth: 0,
            rows,
            out_of_bag,
            hist,
            split,
        }];
        while leaves.len() < self.params.max_leaves.max(2) {
            let Some((at, _)) = leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.split.map(|s| (i, s.gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            else {
                break;
            };
            let leaf = leaves.swap_remove(at);
            let split = leaf.split.expect("chosen leaves have a split");
            let (left_rows, right_rows) = self.partition(&leaf.rows, split);
            let (left_oob, right_oob) = self.partition(&leaf.out_of_bag, split);
            let left_node = nodes.len();
            nodes.push(Node::Leaf { values: Vec::new() });
            nodes.push(Node::Leaf { values: Vec::new() });
            nodes[leaf.node] = Node::Split {
                feature: split.feature as u32,
                bin: split.bin,
                threshold: match split.bin {
                    MISSING_BIN => 0.0,
                    b => self.bins.edges[split.feature][b as usize - 1],
                },
                left: left_node as u32,
                right: left_node as u32 + 1,
            };
            // Histogram the smaller child; the larger is the parent's minus it.
            let left_smaller = left_rows.len() <= right_rows.len();
            let small = self.histogram(if left_smaller {
                &left_rows
            } else {
                &right_rows
            });
            let mut large = leaf.hist;
            large.iter_mut().zip(&small).for_each(|(l, s)| *l -= s);
            let (left_hist, right_hist) = if left_smaller {
                (small, large)
            } else {
                (large, small)
            };
            let depth = leaf.depth + 1;
            for (node, rows, out_of_bag, hist) in [
                (left_node, left_rows, left_oob, left_hist),
                (left_node + 1, right_rows, right_oob, right_hist),
            ] {
                let split = self.best_split(&hist, depth);
                leaves.push(Leaf {
                    node,
                    depth,
                    rows,
                    out_of_bag,
                    hist,
                    split,
                });
            }
        }
        (nodes, leaves)
    }

    /// Rows going left and right at `split`, in their order.
    fn partition(&self, rows: &[u32], split: Split) -> (Vec<u32>, Vec<u32>) {
        let col = &self.columns[split.feature];
        split_rows(rows.iter().copied(), rows.len(), |i| {
            col[i as usize] <= split.bin
        })
    }
}

/// `rows` split by `left` without branching on it (a random split
/// mispredicts half the time), each side in order.
fn split_rows(
    rows: impl Iterator<Item = u32>,
    len: usize,
    left: impl Fn(u32) -> bool,
) -> (Vec<u32>, Vec<u32>) {
    let (mut l, mut r) = (vec![0u32; len], vec![0u32; len]);
    let (mut nl, mut nr) = (0, 0);
    for i in rows {
        let go = left(i) as usize;
        l[nl] = i;
        r[nr] = i;
        nl += go;
        nr += 1 - go;
    }
    l.truncate(nl);
    r.truncate(nr);
    (l, r)
}

/// The `tau` quantile of `v` (an order statistic; `v` is reordered).
fn order_quantile(v: &mut [f32], tau: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let at = ((v.len() - 1) as f64 * tau).round() as usize;
    *v.select_nth_unstable_by(at, f32::total_cmp).1
}

/// A uniform draw in [0, 1) from (seed, tree, row) by SplitMix64: bagging
/// draws one per row per tree, and a hash keeps that cheap in builds whose
/// dependencies are unoptimised, and independent of the order rows are
/// visited in.
fn uniform(seed: u64, tree: u64, row: u64) -> f64 {
    let mut z =
        seed ^ tree.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ row.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Booster {
    /// Fits `quantiles` of `labels` given `rows` (row-major, `n_features`
    /// per row, NaN for missing). Labels must be finite.
    pub fn fit(
        rows: &[f32],
        n_features: usize,
        labels: &[f32],
        quantiles: &[f64],
        params: &BoosterParams,
    ) -> Booster {
        Self::fit_reporting(rows, n_features, labels, quantiles, params, &|_| {})
    }

    /// [`Booster::fit`], calling `trees_done` with the number of trees
    /// grown after each one (the trees are most of a fit's time).
    pub fn fit_reporting(
        rows: &[f32],
        n_features: usize,
        labels: &[f32],
        quantiles: &[f64],
        params: &BoosterParams,
        trees_done: &dyn Fn(usize),
    ) -> Booster {
        let n = labels.len();
        let k = quantiles.len();
        assert_eq!(rows.len(), n * n_features, "rows and labels disagree");
        let bins = Bins::fit(rows, n_features, params.max_bins);
        let mut binned = vec![MISSING_BIN; n * n_features];
        binned
            .par_chunks_mut(n_features.max(1))
            .zip(rows.par_chunks(n_features.max(1)))
            .for_each(|(b, x)| {
                for f in 0..n_features {
                    b[f] = bins.bin(f, x[f]);
                }
            });
        let columns: Vec<Vec<u8>> = (0..n_features)
            .into_par_iter()
            .map(|f| (0..n).map(|i| binned[i * n_features + f]).collect())
            .collect();
        let base: Vec<f64> = quantiles
            .iter()
            .map(|&tau| order_quantile(&mut labels.to_vec(), tau) as f64)
            .collect();
        let mut pred: Vec<f32> = (0..n)
            .flat_map(|_| base.iter().map(|b| *b as f32))
            .collect();
        let groups = k.div_ceil(GROUP);
        let mut codes = vec![vec![0u8; n]; groups];
        let one_minus_tau: Vec<f64> = quantiles.iter().map(|tau| 1.0 - tau).collect();
        let mut offsets = vec![0];
        for f in 0..n_features {
            offsets.push(offsets[f] + bins.count(f) * (k + 1));
        }
        let mut trees = Vec::with_capacity(params.trees);
        for t in 0..params.trees {
            let (bag, out_of_bag) = split_rows(0..n as u32, n, |i| {
                params.row_fraction >= 1.0
                    || uniform(params.seed, t as u64, i as u64) < params.row_fraction
            });
            let mut allowed: Vec<usize> = (0..n_features)
                .filter(|&f| {
                    params.feature_fraction >= 1.0
                        || uniform(!params.seed, t as u64, f as u64) < params.feature_fraction
                })
                .collect();
            if allowed.is_empty() {
                allowed = (0..n_features).collect();
            }
            // The pinball-loss gradient is −τ below the label and 1 − τ
            // above it, so whether the label lies above is all it takes.
            for (g, codes) in codes.iter_mut().enumerate() {
                let group = g * GROUP..k.min((g + 1) * GROUP);
                codes
                    .par_chunks_mut(1 << 14)
                    .enumerate()
                    .for_each(|(chunk, codes)| {
                        let first = chunk << 14;
                        for (j, code) in codes.iter_mut().enumerate() {
                            let i = first + j;
                            let p = &pred[i * k..(i + 1) * k];
                            *code = group
                                .clone()
                                .enumerate()
                                .map(|(bit, c)| ((labels[i] > p[c]) as u8) << bit)
                                .sum();
                        }
                    });
            }
            let grower = Grower {
                binned: &binned,
                n_features,
                columns: &columns,
                bins: &bins,
                codes: &codes,
                one_minus_tau: &one_minus_tau,
                offsets: &offsets,
                params,
                allowed,
            };
            let (mut nodes, leaves) = grower.grow(bag, out_of_bag);
            let lr = params.learning_rate as f32;
            let values: Vec<Vec<f32>> = leaves
                .par_iter()
                .map(|leaf| {
                    let mut residual = vec![0.0f32; leaf.rows.len()];
                    (0..k)
                        .map(|c| {
                            for (r, &i) in residual.iter_mut().zip(&leaf.rows) {
                                let i = i as usize;
                                *r = labels[i] - pred[i * k + c];
                            }
                            lr * order_quantile(&mut residual, quantiles[c])
                        })
                        .collect()
                })
                .collect();
            for (leaf, v) in leaves.iter().zip(values) {
                for &i in leaf.rows.iter().chain(&leaf.out_of_bag) {
                    let i = i as usize;
                    pred[i * k..(i + 1) * k]
                        .iter_mut()
                        .zip(&v)
                        .for_each(|(p, v)| *p += v);
                }
                nodes[leaf.node] = Node::Leaf { values: v };
            }
            let tree = Tree { nodes };
            trees.push(tree);
            trees_done(t + 1);
        }
        Booster {
            quantiles: quantiles.to_vec(),
            n_features,
            base,
            trees,
        }
    }

    pub fn quantiles(&self) -> &[f64] {
        &self.quantiles
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// One value per quantile for a row of raw features.
    pub fn predict(&self, row: &[f32]) -> Vec<f64> {
        let mut out = self.base.clone();
        for tree in &self.trees {
            let v = tree.leaf(|f, bin, threshold| {
                let x = row[f as usize];
                x.is_nan() || (bin != MISSING_BIN && x <= threshold)
            });
            for (o, v) in out.iter_mut().zip(v) {
                *o += *v as f64;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn learns_a_step_and_its_spread() {
        // y = 10 for x < 0.5 else 20, plus uniform noise in [−1, 1].
        let mut rng = StdRng::seed_from_u64(7);
        let n = 4000;
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..n {
            let x: f32 = rng.random();
            let noise: f32 = rng.random::<f32>() * 2.0 - 1.0;
            rows.push(x);
            rows.push(if rng.random::<f32>() < 0.1 {
                f32::NAN
            } else {
                rng.random()
            });
            labels.push(if x < 0.5 { 10.0 } else { 20.0 } + noise);
        }
        let params = BoosterParams {
            trees: 200,
            learning_rate: 0.1,
            ..Default::default()
        };
        let b = Booster::fit(&rows, 2, &labels, &[0.1, 0.5, 0.9], &params);
        let low = b.predict(&[0.2, f32::NAN]);
        let high = b.predict(&[0.8, 0.3]);
        assert!(
            (low[1] - 10.0).abs() < 0.3 && (high[1] - 20.0).abs() < 0.3,
            "{low:?} {high:?}"
        );
        assert!(
            (low[0] - 9.2).abs() < 0.3 && (low[2] - 10.8).abs() < 0.3,
            "{low:?}"
        );
        // Same seed, same model, on one thread too.
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let again =
            one_thread.install(|| Booster::fit(&rows, 2, &labels, &[0.1, 0.5, 0.9], &params));
        for x in [[0.2, 0.1], [0.7, f32::NAN], [0.51, 0.9]] {
            assert_eq!(again.predict(&x), b.predict(&x));
        }
    }

    #[test]
    fn five_quantiles_use_two_code_groups() {
        // More than four quantiles: the above-masks span two groups.
        let mut rng = StdRng::seed_from_u64(8);
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for _ in 0..3000 {
            let x: f32 = rng.random();
            rows.push(x);
            labels.push(x * 10.0 + rng.random::<f32>());
        }
        let params = BoosterParams {
            trees: 100,
            learning_rate: 0.1,
            ..Default::default()
        };
        let quantiles = [0.1, 0.3, 0.5, 0.7, 0.9];
        let b = Booster::fit(&rows, 1, &labels, &quantiles, &params);
        let p = b.predict(&[0.5]);
        for (q, v) in quantiles.iter().zip(&p) {
            let expected = 5.0 + *q as f32;
            assert!((*v as f32 - expected).abs() < 0.15, "{quantiles:?} {p:?}");
        }
    }
}
