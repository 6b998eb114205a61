//! NPTS (Non-Parametric Time Series), as the managed forecasting service
//! describes it: each step of a sample path is a past observation drawn
//! with weights that decay exponentially with its distance (or uniformly,
//! the climatological variant), from the same season position only in the
//! seasonal variants; a drawn value joins the path's history for the next
//! step. Forecasts are bounded by the observed values, and quantiles are
//! read from the paths. Draws come from a seeded generator: the same input
//! gives the same forecast.
//!
//! The kernel's scale (its sampling temperature) is the length of the
//! sampled context: distances are measured on a time index rescaled so
//! that the context plus the horizon spans 1, as the service's NPTS
//! (GluonTS's predictor) rescales its time feature to [−0.5, 0.5]. With
//! the default λ = 1 the oldest observation weighs e^−1 of the newest, so
//! every past season contributes and the P10–P90 band reflects the
//! series' spread. (Distances in raw periods drew only the last
//! same-season value: P10 = P90 on most rows.)

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::models::Fit;

/// How past observations are weighted by their distance from the step
/// being forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NptsKernel {
    /// Weight exp(−λ·distance / (context + horizon − 1)), the distance in
    /// periods (the service's `exp_kernel_weights` is λ; larger values
    /// favour recent observations more).
    Exponential { lambda: f64 },
    /// Every observation alike: the climatological forecaster.
    Uniform,
}

/// The seasonal variant samples from the same season position only when
/// the context holds at least this many seasons: with fewer, every step
/// would draw from one or two values (P10 = P90, the median a seasonal
/// naive forecast), so the non-seasonal kernel is used instead.
pub const MIN_SEASONS: usize = 3;

/// NPTS settings, after the service's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NptsOptions {
    pub kernel: NptsKernel,
    /// Sample only from the same position in past seasons (when the
    /// season length is above 1 and the history covers [`MIN_SEASONS`]
    /// seasons).
    pub seasonal: bool,
    /// The most recent observations sampled from; all when None.
    pub context_length: Option<usize>,
    /// Sample paths drawn.
    pub paths: usize,
    pub seed: u64,
}

impl Default for NptsOptions {
    /// Seasonal NPTS with the exponential kernel at λ = 1, as GluonTS's
    /// NPTS predictor defaults; 200 paths.
    fn default() -> Self {
        NptsOptions {
            kernel: NptsKernel::Exponential { lambda: 1.0 },
            seasonal: true,
            context_length: None,
            paths: 200,
            seed: 0x4e50_5453,
        }
    }
}

/// Draws `options.paths` sample paths of `h` steps after `y` (season
/// length `m`); each path is a `Vec` of `h` values. Non-finite values are
/// never drawn; an empty (or all non-finite) history gives zeros.
pub fn sample_paths(y: &[f64], m: usize, h: usize, options: &NptsOptions) -> Vec<Vec<f64>> {
    let start = options
        .context_length
        .map_or(0, |c| y.len().saturating_sub(c.max(1)));
    let history = &y[start..];
    let paths = options.paths.max(1);
    let mut out = vec![Vec::with_capacity(h); paths];
    if !history.iter().any(|v| v.is_finite()) {
        out.iter_mut().for_each(|p| p.resize(h, 0.0));
        return out;
    }
    let len = history.len();
    let seasonal = options.seasonal && m > 1 && len >= MIN_SEASONS * m;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut cumulative = Vec::with_capacity(len + h);
    // The sampling temperature: distances in units of the whole span.
    let scale = (len + h).saturating_sub(1).max(1) as f64;
    for step in 0..h {
        // The time being forecast is len + step; candidates are 0..len+step,
        // the later ones being the path's own earlier draws.
        let now = len + step;
        cumulative.clear();
        let mut total = 0.0;
        for t in 0..now {
            let observed = history.get(t).is_none_or(|v| v.is_finite());
            let in_season = !seasonal || (now - t).is_multiple_of(m);
            let w = if observed && in_season {
                match options.kernel {
                    NptsKernel::Exponential { lambda } => {
                        (-lambda * (now - t) as f64 / scale).exp()
                    }
                    NptsKernel::Uniform => 1.0,
                }
            } else {
                0.0
            };
            total += w;
            cumulative.push(total);
        }
        for path in out.iter_mut() {
            let t = if total > 0.0 && total.is_finite() {
                let u = rng.random::<f64>() * total;
                cumulative.partition_point(|c| *c <= u).min(now - 1)
            } else {
                // Every weight underflowed: the nearest observation.
                (0..now)
                    .rev()
                    .find(|&t| t >= len || history[t].is_finite())
                    .unwrap_or(0)
            };
            let v = if t < len { history[t] } else { path[t - len] };
            path.push(v);
        }
    }
    out
}

/// NPTS forecast: the paths' mean and standard deviation per step, and
/// their sorted values for quantiles.
pub fn npts(y: &[f64], m: usize, h: usize, options: &NptsOptions) -> Fit {
    let paths = sample_paths(y, m, h, options);
    let by_step = (0..h)
        .map(|i| paths.iter().map(|p| p[i]).collect())
        .collect();
    Fit::from_samples(by_step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_ordered_and_within_the_observed_range() {
        let y: Vec<f64> = (0..60).map(|t| ((t * 37) % 11) as f64 + 5.0).collect();
        let options = NptsOptions {
            kernel: NptsKernel::Exponential { lambda: 0.05 },
            seasonal: false,
            ..NptsOptions::default()
        };
        let fit = npts(&y, 1, 6, &options);
        let (lo, hi) = (5.0, 15.0);
        let qs: Vec<Vec<f64>> = [0.0, 0.1, 0.5, 0.9, 1.0]
            .iter()
            .map(|p| fit.quantile(*p))
            .collect();
        for step in 0..6 {
            for pair in qs.windows(2) {
                assert!(pair[0][step] <= pair[1][step], "{qs:?}");
            }
            assert!(qs[0][step] >= lo && qs[4][step] <= hi, "{qs:?}");
            // A wide kernel reaches most of the range.
            assert!(qs[4][step] - qs[0][step] >= 6.0, "{qs:?}");
            assert!(fit.sigma[step] > 0.0 && fit.mean[step] > lo && fit.mean[step] < hi);
        }
    }

    #[test]
    fn recent_values_are_drawn_more_often() {
        // 50 zeros then 10 ones: a decaying kernel favours the ones, the
        // uniform one draws in proportion.
        let y: Vec<f64> = (0..60).map(|t| if t >= 50 { 1.0 } else { 0.0 }).collect();
        // λ = 6 over a span of 60 periods: e^(−0.1) per period.
        let decaying = NptsOptions {
            kernel: NptsKernel::Exponential { lambda: 6.0 },
            seasonal: false,
            paths: 2000,
            ..NptsOptions::default()
        };
        let share = npts(&y, 1, 1, &decaying).mean[0];
        // P(one) = Σ_{d=1..10} e^(−0.1d) / Σ_{d=1..60} e^(−0.1d) ≈ 0.63.
        assert!((share - 0.63).abs() < 0.05, "{share}");
        let uniform = NptsOptions {
            kernel: NptsKernel::Uniform,
            ..decaying
        };
        let share = npts(&y, 1, 1, &uniform).mean[0];
        assert!((share - 10.0 / 60.0).abs() < 0.04, "{share}");
    }

    #[test]
    fn the_seasonal_variant_reproduces_a_pure_seasonal_pattern() {
        let pattern = [3.0, 9.0, 1.0, 7.0, 5.0];
        let y: Vec<f64> = (0..40).map(|t| pattern[t % 5]).collect();
        let fit = npts(&y, 5, 12, &NptsOptions::default());
        for (i, v) in fit.mean.iter().enumerate() {
            assert_eq!(*v, pattern[(40 + i) % 5]);
            assert_eq!(fit.quantile(0.1)[i], *v);
            assert_eq!(fit.quantile(0.9)[i], *v);
        }
    }

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut StdRng) -> f64 {
        let u: f64 = rng.random::<f64>().max(1e-12);
        let v: f64 = rng.random();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// The share of held-out points inside [P10, P90], and the share of
    /// rows with P10 < P90, over noisy series of season `m`.
    fn coverage(m: usize, options: &NptsOptions) -> (f64, f64) {
        let pattern = [20.0, 26.0, 31.0, 24.0, 18.0, 35.0, 29.0];
        let mut rng = StdRng::seed_from_u64(21);
        let (history, h) = (16 * 7, 14);
        let (mut inside, mut wide, mut rows) = (0usize, 0usize, 0usize);
        for _ in 0..40 {
            let y: Vec<f64> = (0..history + h)
                .map(|t| {
                    let base = if m > 1 { pattern[t % 7] } else { 25.0 };
                    base + 4.0 * normal(&mut rng)
                })
                .collect();
            let fit = npts(&y[..history], m, h, options);
            let (p10, p90) = (fit.quantile(0.1), fit.quantile(0.9));
            for i in 0..h {
                rows += 1;
                let actual = y[history + i];
                inside += usize::from(p10[i] <= actual && actual <= p90[i]);
                wide += usize::from(p10[i] < p90[i]);
            }
        }
        (inside as f64 / rows as f64, wide as f64 / rows as f64)
    }

    #[test]
    fn the_p10_to_p90_band_covers_about_80_percent_of_held_out_points() {
        // Distances in raw periods (λ = 1 per period, as before) drew only
        // the last same-season value: P10 = P90 and coverage near zero.
        for (m, seasonal) in [(7, true), (1, false)] {
            let options = NptsOptions {
                seasonal,
                ..NptsOptions::default()
            };
            let (covered, wide) = coverage(m, &options);
            assert!(
                (0.65..=0.92).contains(&covered),
                "season {m}: P10–P90 covers {covered:.3}"
            );
            assert!(
                wide >= 0.95,
                "season {m}: P10 < P90 on only {wide:.3} of rows"
            );
        }
        // The climatological variant covers as well.
        let uniform = NptsOptions {
            kernel: NptsKernel::Uniform,
            ..NptsOptions::default()
        };
        let (covered, _) = coverage(7, &uniform);
        assert!((0.65..=0.92).contains(&covered), "uniform: {covered:.3}");
    }

    #[test]
    fn too_few_seasons_sample_from_every_period() {
        // Weekly data with 52-week seasons and under two years of history
        // (the orange juice panel): the same-week values alone are one or
        // two per step.
        let mut rng = StdRng::seed_from_u64(7);
        let y: Vec<f64> = (0..97).map(|_| 50.0 + 10.0 * normal(&mut rng)).collect();
        let fit = npts(&y, 52, 8, &NptsOptions::default());
        let (p10, p90) = (fit.quantile(0.1), fit.quantile(0.9));
        assert!((0..8).all(|i| p90[i] - p10[i] > 10.0), "{p10:?} {p90:?}");
        // With three seasons the seasonal variant applies.
        let pattern: Vec<f64> = (0..3 * 52).map(|t| (t % 52) as f64).collect();
        let fit = npts(&pattern, 52, 4, &NptsOptions::default());
        assert_eq!(fit.mean, [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn forecasts_are_deterministic_and_survive_odd_input() {
        let y: Vec<f64> = (0..30).map(|t| (t % 4) as f64).collect();
        let options = NptsOptions::default();
        assert_eq!(npts(&y, 4, 5, &options), npts(&y, 4, 5, &options));
        assert_eq!(npts(&[], 1, 3, &options).mean, vec![0.0; 3]);
        let fit = npts(&[1.0, f64::NAN, 3.0], 12, 4, &options);
        assert!(fit.mean.iter().all(|v| v.is_finite()), "{fit:?}");
        let huge = npts(&[1e308, 1e308], 1, 2, &options);
        assert!(huge.mean.iter().all(|v| v.is_finite()), "{huge:?}");
    }
}
