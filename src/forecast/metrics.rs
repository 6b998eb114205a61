//! Forecast accuracy: the measures the managed forecasting service reports
//! (wQL, WAPE, RMSE, MAPE, MASE) and the M3 competition's sMAPE.

/// Symmetric MAPE in percent, as scored in the M3 competition:
/// mean of 200·|y − f| / (|y| + |f|).
pub fn smape(actual: &[f64], forecast: &[f64]) -> f64 {
    mean(actual.iter().zip(forecast).map(|(y, f)| {
        let d = y.abs() + f.abs();
        if d == 0.0 {
            0.0
        } else {
            200.0 * (y - f).abs() / d
        }
    }))
}

/// Mean absolute scaled error: the forecast's MAE over the in-sample MAE of
/// the seasonal naive method with period `m` (1 for none).
pub fn mase(history: &[f64], actual: &[f64], forecast: &[f64], m: usize) -> f64 {
    let m = m.max(1);
    if history.len() <= m {
        return f64::NAN;
    }
    let scale = mean(history.windows(m + 1).map(|w| (w[m] - w[0]).abs()));
    let mae = mean(actual.iter().zip(forecast).map(|(y, f)| (y - f).abs()));
    if scale == 0.0 { f64::NAN } else { mae / scale }
}

/// Weighted absolute percentage error: Σ|y − f| / Σ|y|.
pub fn wape(actual: &[f64], forecast: &[f64]) -> f64 {
    let num: f64 = actual
        .iter()
        .zip(forecast)
        .map(|(y, f)| (y - f).abs())
        .sum();
    let den: f64 = actual.iter().map(|y| y.abs()).sum();
    if den == 0.0 { f64::NAN } else { num / den }
}

pub fn rmse(actual: &[f64], forecast: &[f64]) -> f64 {
    mean(actual.iter().zip(forecast).map(|(y, f)| (y - f).powi(2))).sqrt()
}

/// Mean absolute percentage error in percent (points with y = 0 left out).
pub fn mape(actual: &[f64], forecast: &[f64]) -> f64 {
    mean(
        actual
            .iter()
            .zip(forecast)
            .filter(|(y, _)| **y != 0.0)
            .map(|(y, f)| 100.0 * ((y - f) / y).abs()),
    )
}

/// Weighted quantile loss at quantile `tau`, as the managed service defines
/// it: 2·Σ pinball loss / Σ|y|.
pub fn wql(actual: &[f64], quantile_forecast: &[f64], tau: f64) -> f64 {
    let loss: f64 = actual
        .iter()
        .zip(quantile_forecast)
        .map(|(y, q)| {
            if y >= q {
                tau * (y - q)
            } else {
                (1.0 - tau) * (q - y)
            }
        })
        .sum();
    let den: f64 = actual.iter().map(|y| y.abs()).sum();
    if den == 0.0 {
        f64::NAN
    } else {
        2.0 * loss / den
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_on_a_hand_computed_case() {
        let y = [100.0, 200.0];
        let f = [110.0, 180.0];
        // 200·10/210 = 9.5238, 200·20/380 = 10.5263
        assert!((smape(&y, &f) - 10.02506).abs() < 1e-4);
        assert!((wape(&y, &f) - 0.1).abs() < 1e-12);
        assert!((mape(&y, &f) - 10.0).abs() < 1e-12);
        assert!((rmse(&y, &f) - (250.0f64).sqrt()).abs() < 1e-12);
        // History 1,2,3,4: naive MAE 1; forecast MAE 15.
        assert!((mase(&[1.0, 2.0, 3.0, 4.0], &y, &f, 1) - 15.0).abs() < 1e-12);
        // Pinball at 0.9: under-forecast 90 of 100 costs 0.9·10; over costs 0.1·20.
        let q = wql(&[100.0, 100.0], &[90.0, 120.0], 0.9);
        assert!((q - 2.0 * (9.0 + 2.0) / 200.0).abs() < 1e-12);
    }
}
