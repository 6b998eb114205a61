//! Seasonality: a test at the seasonal lag, and classical multiplicative
//! decomposition, as the M3/M4 Theta benchmarks apply them before a
//! non-seasonal model.

/// Whether the series is seasonal with period `m`: the autocorrelation at
/// lag `m` exceeds its 90% limit, 1.645·√((1 + 2Σᵢ<ₘ rᵢ²)/n). Needs at
/// least three seasons.
pub fn is_seasonal(y: &[f64], m: usize) -> bool {
    let n = y.len();
    if m < 2 || n < 3 * m {
        return false;
    }
    let r: Vec<f64> = (1..=m).map(|k| acf(y, k)).collect();
    let sum: f64 = r[..m - 1].iter().map(|x| x * x).sum();
    let limit = 1.645 * ((1.0 + 2.0 * sum) / n as f64).sqrt();
    r[m - 1].abs() > limit
}

fn acf(y: &[f64], k: usize) -> f64 {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n as f64;
    let var: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    if var == 0.0 {
        return 0.0;
    }
    let cov: f64 = (k..n).map(|t| (y[t] - mean) * (y[t - k] - mean)).sum();
    cov / var
}

/// The centred moving average of `y` over one season around `t`: 2×m for
/// an even `m`, m for an odd one; None where the window leaves the series.
pub fn centred_moving_average(y: &[f64], m: usize, t: usize) -> Option<f64> {
    let half = m / 2;
    if t < half || t + half >= y.len() {
        return None;
    }
    Some(if m.is_multiple_of(2) {
        let inner: f64 = y[t + 1 - half..t + half].iter().sum();
        (inner + 0.5 * (y[t - half] + y[t + half])) / m as f64
    } else {
        y[t - half..=t + half].iter().sum::<f64>() / m as f64
    })
}

/// Multiplicative seasonal indices (mean 1), indexed by position modulo
/// `m` from the start of the series: ratios to a centred moving average,
/// averaged by season.
pub fn seasonal_indices(y: &[f64], m: usize) -> Vec<f64> {
    let n = y.len();
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    for t in 0..n {
        let Some(cma) = centred_moving_average(y, m, t) else {
            continue;
        };
        if cma != 0.0 {
            sums[t % m] += y[t] / cma;
            counts[t % m] += 1;
        }
    }
    let mut idx: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, c)| if *c == 0 { 1.0 } else { s / *c as f64 })
        .collect();
    let mean = idx.iter().sum::<f64>() / m as f64;
    if mean > 0.0 {
        idx.iter_mut().for_each(|v| *v /= mean);
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarterly_pattern_is_found_and_recovered() {
        let pattern = [0.8, 1.2, 1.1, 0.9];
        let y: Vec<f64> = (0..40)
            .map(|t| (100.0 + t as f64) * pattern[t % 4])
            .collect();
        assert!(is_seasonal(&y, 4));
        let idx = seasonal_indices(&y, 4);
        for (a, b) in idx.iter().zip(pattern) {
            assert!((a - b).abs() < 0.02, "{idx:?}");
        }
        let trend: Vec<f64> = (0..40).map(|t| 100.0 + t as f64).collect();
        assert!(
            !is_seasonal(&trend[..], 4)
                || seasonal_indices(&trend, 4)
                    .iter()
                    .all(|v| (v - 1.0).abs() < 0.01)
        );
    }
}
