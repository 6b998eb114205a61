//! Histogram gradient-boosted regression trees for several quantiles at
//! once (the booster under `global.rs`). Features are binned to `u8` (bin 0
//! holds missing values, as LightGBM does); trees grow leaf-wise. All
//! quantiles share each tree's structure, chosen by the summed pinball-loss
//! gains, and each leaf holds one value per quantile: the quantile of the
//! residuals of its rows, as LightGBM's quantile objective renews leaves.
//! Training is deterministic for a seed, whatever the thread count.

use rand::{Rng, SeedableRng, rngs::StdRng};
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

/// The rows of one leaf while a tree grows.
struct Leaf {
    node: usize,
    depth: usize,
    rows: Vec<u32>,
    /// Per feature and bin: K gradient sums, then the row count.
    hist: Vec<f64>,
    split: Option<Split>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: u8,
}

struct Grower<'a> {
    columns: &'a [Vec<u8>],
    bins: &'a Bins,
    grads: &'a [f32],
    k: usize,
    params: &'a BoosterParams,
    allowed: Vec<usize>,
}

impl Grower<'_> {
    fn stride(&self) -> usize {
        256 * (self.k + 1)
    }

    fn histogram(&self, rows: &[u32]) -> Vec<f64> {
        let (k, stride) = (self.k, self.stride());
        let mut hist = vec![0.0; self.columns.len() * stride];
        hist.par_chunks_mut(stride)
            .enumerate()
            .filter(|(f, _)| self.allowed.contains(f))
            .for_each(|(f, h)| {
                let col = &self.columns[f];
                for &i in rows {
                    let i = i as usize;
                    let at = col[i] as usize * (k + 1);
                    let g = &self.grads[i * k..i * k + k];
                    for c in 0..k {
                        h[at + c] += g[c] as f64;
                    }
                    h[at + k] += 1.0;
                }
            });
        hist
    }

    fn best_split(&self, hist: &[f64], depth: usize) -> Option<Split> {
        if depth >= self.params.max_depth {
            return None;
        }
        let (k, stride, l2) = (self.k, self.stride(), self.params.l2);
        let min_rows = self.params.min_rows_in_leaf.max(1) as f64;
        let score = |g: &[f64], n: f64| g.iter().map(|g| g * g).sum::<f64>() / (n + l2);
        let mut best: Option<Split> = None;
        // Every allowed feature's bins sum to the leaf's totals.
        let first = &hist[self.allowed[0] * stride..(self.allowed[0] + 1) * stride];
        let mut total = vec![0.0; k + 1];
        for b in 0..256 {
            for c in 0..=k {
                total[c] += first[b * (k + 1) + c];
            }
        }
        let parent = score(&total[..k], total[k]);
        for &f in &self.allowed {
            let h = &hist[f * stride..(f + 1) * stride];
            let mut left = vec![0.0; k + 1];
            let mut right = vec![0.0; k + 1];
            for b in 0..self.bins.count(f) - 1 {
                for c in 0..=k {
                    left[c] += h[b * (k + 1) + c];
                }
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
    fn grow(&self, rows: Vec<u32>) -> (Vec<Node>, Vec<(usize, Vec<u32>)>) {
        let hist = self.histogram(&rows);
        let split = self.best_split(&hist, 0);
        let mut nodes = vec![Node::Leaf { values: Vec::new() }];
        let mut leaves = vec![Leaf {
            node: 0,
            depth: 0,
            rows,
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
            let col = &self.columns[split.feature];
            let (left_rows, right_rows): (Vec<u32>, Vec<u32>) = leaf
                .rows
                .iter()
                .partition(|&&i| col[i as usize] <= split.bin);
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
            for (node, rows, hist) in [
                (left_node, left_rows, left_hist),
                (left_node + 1, right_rows, right_hist),
            ] {
                let split = self.best_split(&hist, depth);
                leaves.push(Leaf {
                    node,
                    depth,
                    rows,
                    hist,
                    split,
                });
            }
        }
        let leaves = leaves.into_iter().map(|l| (l.node, l.rows)).collect();
        (nodes, leaves)
    }
}

/// The `tau` quantile of `v` (an order statistic; `v` is reordered).
fn order_quantile(v: &mut [f32], tau: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let at = ((v.len() - 1) as f64 * tau).round() as usize;
    *v.select_nth_unstable_by(at, f32::total_cmp).1
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
        let n = labels.len();
        let k = quantiles.len();
        assert_eq!(rows.len(), n * n_features, "rows and labels disagree");
        let bins = Bins::fit(rows, n_features, params.max_bins);
        let columns: Vec<Vec<u8>> = (0..n_features)
            .into_par_iter()
            .map(|f| {
                (0..n)
                    .map(|i| bins.bin(f, rows[i * n_features + f]))
                    .collect()
            })
            .collect();
        let base: Vec<f64> = quantiles
            .iter()
            .map(|&tau| order_quantile(&mut labels.to_vec(), tau) as f64)
            .collect();
        let mut pred: Vec<f32> = (0..n)
            .flat_map(|_| base.iter().map(|b| *b as f32))
            .collect();
        let mut grads = vec![0.0f32; n * k];
        let mut trees = Vec::with_capacity(params.trees);
        for t in 0..params.trees {
            let mut rng =
                StdRng::seed_from_u64(params.seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let bag: Vec<u32> = if params.row_fraction >= 1.0 {
                (0..n as u32).collect()
            } else {
                (0..n as u32)
                    .filter(|_| rng.random::<f64>() < params.row_fraction)
                    .collect()
            };
            let mut allowed: Vec<usize> = (0..n_features)
                .filter(|_| {
                    params.feature_fraction >= 1.0 || rng.random::<f64>() < params.feature_fraction
                })
                .collect();
            if allowed.is_empty() {
                allowed = (0..n_features).collect();
            }
            // Pinball-loss gradients: −τ below the label, 1 − τ above it.
            grads
                .par_chunks_mut(k)
                .zip(pred.par_chunks(k))
                .zip(labels.par_iter())
                .for_each(|((g, p), y)| {
                    for c in 0..k {
                        let tau = quantiles[c] as f32;
                        g[c] = if *y > p[c] { -tau } else { 1.0 - tau };
                    }
                });
            let grower = Grower {
                columns: &columns,
                bins: &bins,
                grads: &grads,
                k,
                params,
                allowed,
            };
            let (mut nodes, leaves) = grower.grow(bag);
            let lr = params.learning_rate as f32;
            let values: Vec<(usize, Vec<f32>)> = leaves
                .par_iter()
                .map(|(node, rows)| {
                    let mut residual = vec![0.0f32; rows.len()];
                    let values = (0..k)
                        .map(|c| {
                            for (r, &i) in residual.iter_mut().zip(rows) {
                                let i = i as usize;
                                *r = labels[i] - pred[i * k + c];
                            }
                            lr * order_quantile(&mut residual, quantiles[c])
                        })
                        .collect();
                    (*node, values)
                })
                .collect();
            for (node, v) in values {
                nodes[node] = Node::Leaf { values: v };
            }
            let tree = Tree { nodes };
            pred.par_chunks_mut(k).enumerate().for_each(|(i, p)| {
                let v = tree.leaf(|f, b, _| columns[f as usize][i] <= b);
                for c in 0..k {
                    p[c] += v[c];
                }
            });
            trees.push(tree);
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
        // Same seed, same model.
        let again = Booster::fit(&rows, 2, &labels, &[0.1, 0.5, 0.9], &params);
        assert_eq!(again.predict(&[0.2, 0.1]), b.predict(&[0.2, 0.1]));
    }
}
