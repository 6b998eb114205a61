//! Offline metrics with the managed service's protocol: 10% of the users with
//! at least 5 interactions (a seeded draw) are test users; a model trained on
//! everyone else plus the oldest 90% of each test user's interactions must
//! predict the newest 10%. Items a test user already saw are excluded from
//! both the ranking and the relevant set. Metric keys are the service's.

use std::collections::{BTreeMap, HashSet};

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::recipes::Interactions;

/// Every metric key a solution version reports.
pub const METRIC_KEYS: &[&str] = &[
    "coverage",
    "mean_reciprocal_rank_at_25",
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_5",
    "precision_at_10",
    "precision_at_25",
];

/// Metrics of segment recipes (item → users): at the top 1% of users.
pub const SEGMENT_METRIC_KEYS: &[&str] = &["hit", "recall"];

/// Every metric key a solution version can report.
pub fn is_known_metric(key: &str) -> bool {
    METRIC_KEYS.contains(&key) || SEGMENT_METRIC_KEYS.contains(&key)
}

/// Users need this many interactions to be drawn as test users.
pub const MIN_TEST_USER_INTERACTIONS: usize = 5;
/// Share of eligible users held out.
pub const TEST_USER_FRACTION: f64 = 0.1;
/// Seed of the test-user draw, so metrics of two versions are comparable.
pub const SPLIT_SEED: u64 = 42;

pub type Metrics = BTreeMap<String, f64>;

/// One held-out user: what the model is given and what it must find.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub user: u32,
    /// Oldest 90% of the user's items, in time order.
    pub given: Vec<u32>,
    /// Items of the newest 10% not already in `given`.
    pub relevant: HashSet<u32>,
}

/// The result of the split: row indices for training, and the test users.
#[derive(Debug, Clone)]
pub struct Split {
    pub train_rows: Vec<usize>,
    pub test_users: Vec<TestUser>,
}

/// Splits interactions by the managed service's protocol.
pub fn split(data: &Interactions, seed: u64) -> Split {
    let by_user = data.rows_by_user();
    let mut eligible: Vec<u32> = (0..by_user.len() as u32)
        .filter(|&u| by_user[u as usize].len() >= MIN_TEST_USER_INTERACTIONS)
        .collect();
    // The draw is over user ids, not indices, which follow the file's order.
    eligible.sort_unstable_by(|&a, &b| data.users.id(a).cmp(data.users.id(b)));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    eligible.shuffle(&mut rng);
    let n_test = ((eligible.len() as f64) * TEST_USER_FRACTION).ceil() as usize;
    let mut test: Vec<u32> = eligible.into_iter().take(n_test).collect();
    test.sort_unstable();
    let is_test: HashSet<u32> = test.iter().copied().collect();

    let mut train_rows = Vec::with_capacity(data.len());
    let mut test_users = Vec::with_capacity(test.len());
    for (u, rows) in by_user.iter().enumerate() {
        if !is_test.contains(&(u as u32)) {
            train_rows.extend_from_slice(rows);
            continue;
        }
        // rows_by_user is in time order (ties by a seeded draw, not row order).
        let cut = (rows.len() as f64 * 0.9).floor() as usize;
        let (given_rows, held_rows) = rows.split_at(cut.clamp(1, rows.len() - 1));
        train_rows.extend_from_slice(given_rows);
        let given: Vec<u32> = given_rows.iter().map(|&r| data.item[r]).collect();
        let seen: HashSet<u32> = given.iter().copied().collect();
        let relevant: HashSet<u32> = held_rows
            .iter()
            .map(|&r| data.item[r])
            .filter(|i| !seen.contains(i))
            .collect();
        if !relevant.is_empty() {
            test_users.push(TestUser {
                user: u as u32,
                given,
                relevant,
            });
        }
    }
    train_rows.sort_unstable();
    Split {
        train_rows,
        test_users,
    }
}

/// Normalized discounted cumulative gain at `k` (gain 1/log2(1+rank)).
pub fn ndcg_at_k(ranked: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, item)| relevant.contains(item))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    dcg / ideal
}

/// Share of the top `k` that is relevant.
pub fn precision_at_k(ranked: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .filter(|i| relevant.contains(i))
        .count() as f64
        / k as f64
}

/// Share of the relevant items found in the top `k`.
pub fn recall_at_k(ranked: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    ranked
        .iter()
        .take(k)
        .filter(|i| relevant.contains(i))
        .count() as f64
        / relevant.len() as f64
}

/// Reciprocal rank of the first relevant item within the top `k`, else 0.
pub fn reciprocal_rank_at_k(ranked: &[u32], relevant: &HashSet<u32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|i| relevant.contains(i))
        .map_or(0.0, |p| 1.0 / (p + 1) as f64)
}

/// Averages the ranking metrics over test users. `recommend` returns the top
/// 25 items for a test user (seen items already excluded); `catalog_size` is
/// the number of items coverage is measured against.
pub fn evaluate(
    test_users: &[TestUser],
    catalog_size: usize,
    recommend: impl Fn(&TestUser) -> Vec<u32>,
) -> Metrics {
    evaluate_users(test_users, catalog_size, recommend).0
}

/// [`evaluate`], with each test user's value of every metric but coverage
/// (in [`METRIC_KEYS`] order from the second key), for standard errors and
/// paired comparisons.
pub fn evaluate_users(
    test_users: &[TestUser],
    catalog_size: usize,
    recommend: impl Fn(&TestUser) -> Vec<u32>,
) -> (Metrics, Vec<[f64; 7]>) {
    let mut sums = [0.0f64; 7];
    let mut per_user = Vec::with_capacity(test_users.len());
    let mut recommended: HashSet<u32> = HashSet::new();
    for tu in test_users {
        let ranked = recommend(tu);
        let r = &tu.relevant;
        let values = [
            reciprocal_rank_at_k(&ranked, r, 25),
            ndcg_at_k(&ranked, r, 5),
            ndcg_at_k(&ranked, r, 10),
            ndcg_at_k(&ranked, r, 25),
            precision_at_k(&ranked, r, 5),
            precision_at_k(&ranked, r, 10),
            precision_at_k(&ranked, r, 25),
        ];
        for (s, v) in sums.iter_mut().zip(values) {
            *s += v;
        }
        per_user.push(values);
        recommended.extend(ranked.iter().take(25));
    }
    let n = test_users.len().max(1) as f64;
    let mut metrics = Metrics::new();
    metrics.insert(
        "coverage".into(),
        if catalog_size == 0 {
            0.0
        } else {
            round4(recommended.len() as f64 / catalog_size as f64)
        },
    );
    for (key, sum) in METRIC_KEYS[1..].iter().zip(sums) {
        metrics.insert((*key).to_string(), round4(sum / n));
    }
    (metrics, per_user)
}

/// Where a metric's per-user value sits in [`evaluate_users`]' arrays;
/// `None` for coverage, which is not a per-user metric.
pub fn per_user_index(key: &str) -> Option<usize> {
    METRIC_KEYS[1..].iter().position(|k| *k == key)
}

/// Mean and standard error of the mean.
pub fn mean_and_stderr(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Segment metrics, the managed service's `hit` and `recall`: for each item a
/// test user interacted with in the held-out part (a seeded sample of at most
/// `max_items`), the top 1% of users by `user_scores(item)` is taken; `hit`
/// is the share of items where it contains a held-out user, `recall` the
/// share of held-out users it contains, averaged over items.
pub fn segment_metrics(
    test_users: &[TestUser],
    n_users: usize,
    max_items: usize,
    user_scores: impl Fn(u32) -> Vec<f32> + Sync,
) -> Metrics {
    use rayon::prelude::*;
    let mut by_item: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for tu in test_users {
        for &i in &tu.relevant {
            by_item.entry(i).or_default().push(tu.user);
        }
    }
    let mut items: Vec<(u32, Vec<u32>)> = by_item.into_iter().collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(SPLIT_SEED);
    items.shuffle(&mut rng);
    items.truncate(max_items);
    let top = n_users.div_ceil(100).max(1);
    let per_item: Vec<(f64, f64)> = items
        .par_iter()
        .map(|(item, users)| {
            let scores = user_scores(*item);
            let chosen: HashSet<u32> = crate::recipes::top_k(&scores, top)
                .into_iter()
                .map(|(u, _)| u)
                .collect();
            let found = users.iter().filter(|u| chosen.contains(u)).count();
            (
                if found > 0 { 1.0 } else { 0.0 },
                found as f64 / users.len() as f64,
            )
        })
        .collect();
    let n = per_item.len().max(1) as f64;
    let mut m = Metrics::new();
    m.insert(
        "hit".into(),
        round4(per_item.iter().map(|x| x.0).sum::<f64>() / n),
    );
    m.insert(
        "recall".into(),
        round4(per_item.iter().map(|x| x.1).sum::<f64>() / n),
    );
    m
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(items: &[u32]) -> HashSet<u32> {
        items.iter().copied().collect()
    }

    #[test]
    fn ndcg_matches_the_managed_services_worked_example() {
        // Relevant items at ranks 2 and 5, K = 5.
        let ranked = [10, 1, 11, 12, 2];
        let v = ndcg_at_k(&ranked, &set(&[1, 2]), 5);
        assert!((v - 0.6241).abs() < 1e-4, "{v}");
    }

    #[test]
    fn precision_and_mrr_by_hand() {
        let ranked = [7, 3, 9, 1, 5];
        let r = set(&[3, 5]);
        assert_eq!(precision_at_k(&ranked, &r, 5), 0.4);
        assert_eq!(reciprocal_rank_at_k(&ranked, &r, 25), 0.5);
        assert_eq!(reciprocal_rank_at_k(&[1, 2], &r, 25), 0.0);
    }

    proptest! {
        #[test]
        fn metrics_stay_within_zero_and_one(
            ranked in proptest::collection::vec(0u32..50, 0..30),
            relevant in proptest::collection::hash_set(0u32..50, 1..10),
            k in 1usize..30,
        ) {
            let mut seen = HashSet::new();
            let ranked: Vec<u32> = ranked.into_iter().filter(|i| seen.insert(*i)).collect();
            for v in [ndcg_at_k(&ranked, &relevant, k), precision_at_k(&ranked, &relevant, k),
                      reciprocal_rank_at_k(&ranked, &relevant, k)] {
                prop_assert!((0.0..=1.0).contains(&v), "{v}");
            }
        }

        #[test]
        fn a_perfect_ranking_scores_one(relevant in proptest::collection::hash_set(0u32..100, 1..20), k in 1usize..25) {
            let mut ranked: Vec<u32> = relevant.iter().copied().collect();
            ranked.sort_unstable();
            prop_assert!((ndcg_at_k(&ranked, &relevant, k) - 1.0).abs() < 1e-9);
            prop_assert_eq!(reciprocal_rank_at_k(&ranked, &relevant, 25), 1.0);
        }
    }

    #[test]
    fn split_holds_out_the_newest_tenth_of_a_tenth_of_users() {
        // 100 users with 10 interactions each, times increasing per user.
        let mut rows = Vec::new();
        for u in 0..100 {
            for t in 0..10 {
                rows.push((
                    format!("u{u}"),
                    format!("i{}", (u + t) % 37),
                    1000 + t as i64,
                ));
            }
        }
        let data = Interactions::from_rows(
            rows.iter()
                .map(|(u, i, t)| (u.as_str(), i.as_str(), *t, None, None)),
        );
        let s = split(&data, SPLIT_SEED);
        assert!(
            s.test_users.len() <= 10 && s.test_users.len() >= 9,
            "{}",
            s.test_users.len()
        );
        for tu in &s.test_users {
            assert_eq!(tu.given.len(), 9);
            assert!(tu.relevant.len() <= 1);
        }
        assert_eq!(s.train_rows.len(), 1000 - s.test_users.len());
        // The held-out interactions are never among the training rows.
        let train: HashSet<usize> = s.train_rows.iter().copied().collect();
        let by_user = data.rows_by_user();
        for tu in &s.test_users {
            let held: Vec<usize> = by_user[tu.user as usize]
                .iter()
                .copied()
                .filter(|r| !train.contains(r))
                .collect();
            assert_eq!(held.len(), 1);
            assert!(tu.relevant.contains(&data.item[held[0]]));
        }
        // Same seed, same split.
        let again = split(&data, SPLIT_SEED);
        let users = |s: &Split| s.test_users.iter().map(|t| t.user).collect::<Vec<_>>();
        assert_eq!(users(&s), users(&again));
    }
}
