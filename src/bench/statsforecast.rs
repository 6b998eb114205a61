//! statsforecast's AutoETS and AutoARIMA on M3, for `recflow bench forecast
//! --statsforecast`: spawns `benches/statsforecast_m3.py` (which scores them
//! with recflow's sMAPE and MASE on the same CSVs) and parses its JSON.
//! The interpreter comes from `scripts/statsforecast-env`, which pins the
//! version, so two runs compare the same code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{out, outln};
use serde::{Deserialize, Deserializer};

/// The two statsforecast models the script runs, in table order.
pub const MODELS: [&str; 2] = ["AutoETS", "AutoARIMA"];

/// The script's exit code when statsforecast does not import.
const NOT_INSTALLED: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum StatsforecastError {
    #[error(
        "{python} cannot import statsforecast: run scripts/statsforecast-env and pass the python it prints"
    )]
    NotInstalled { python: PathBuf },
    #[error("could not start {python}")]
    Spawn {
        python: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{script} failed ({status})")]
    Failed {
        script: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("{script} printed no scores JSON")]
    BadOutput {
        script: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What the script prints: per model, per frequency (and `ALL`).
#[derive(Debug, Deserialize)]
pub struct ExternalScores {
    pub statsforecast_version: String,
    /// Worker processes statsforecast used (the number of cores).
    pub n_jobs: usize,
    /// First calls on a few series, left out of `ms_per_1000`.
    pub warmup_s: f64,
    pub models: BTreeMap<String, ModelScores>,
}

#[derive(Debug, Deserialize)]
pub struct ModelScores {
    /// Fitting plus forecasting, per 1,000 series.
    pub ms_per_1000: f64,
    /// By M3 period (`YEARLY`, …) and `ALL`.
    #[serde(flatten)]
    pub groups: BTreeMap<String, GroupScores>,
}

#[derive(Debug, Deserialize)]
pub struct GroupScores {
    #[serde(deserialize_with = "nan_for_null")]
    pub smape: f64,
    #[serde(deserialize_with = "nan_for_null")]
    pub mase: f64,
    pub n: usize,
}

/// JSON has no NaN: the script writes non-finite means as null.
fn nan_for_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/statsforecast_m3.py")
}

/// The interpreter for `--statsforecast [PYTHON]`: the one given, else the
/// venv `scripts/statsforecast-env` makes, else none.
pub fn default_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".bench-venv/bin/python");
    venv.exists().then_some(venv)
}

/// Fails fast, before minutes of recflow forecasting, if `python` cannot
/// import statsforecast.
pub fn check(python: &Path) -> Result<(), StatsforecastError> {
    let status = Command::new(python)
        .args(["-c", "import statsforecast"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| StatsforecastError::Spawn {
            python: python.to_owned(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(StatsforecastError::NotInstalled {
            python: python.to_owned(),
        })
    }
}

/// Runs AutoETS and AutoARIMA on the M3 folder `m3` with `python`; the
/// script's progress goes to our stderr.
pub fn run(m3: &Path, python: &Path) -> anyhow::Result<ExternalScores> {
    let script = script();
    let output = Command::new(python)
        .arg(&script)
        .arg(m3)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| StatsforecastError::Spawn {
            python: python.to_owned(),
            source,
        })?;
    if output.status.code() == Some(NOT_INSTALLED) {
        return Err(StatsforecastError::NotInstalled {
            python: python.to_owned(),
        }
        .into());
    }
    if !output.status.success() {
        return Err(StatsforecastError::Failed {
            script,
            status: output.status,
        }
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)
        .map_err(|source| StatsforecastError::BadOutput { script, source })?)
}

/// Prints one table row per model, laid out as `bench forecast` lays out
/// its own: name, then `sMAPE (MASE)` per group of `order`, then ms per
/// 1,000 series. Names are `sf AutoETS`, `sf AutoARIMA`, to fit the
/// 16-character name column; a note under them spells out `sf`.
pub fn print_rows(scores: &ExternalScores, order: &[&str]) {
    for name in MODELS {
        let Some(model) = scores.models.get(name) else {
            continue;
        };
        out!("{:<16}", format!("sf {name}"));
        for g in order {
            let cell = model.groups.get(*g).map_or("-".to_string(), |c| {
                format!("{:.2} ({:.2})", c.smape, c.mase)
            });
            out!(" {cell:>16}");
        }
        outln!(" {:>14.0}", model.ms_per_1000);
    }
    outln!(
        "  sf = statsforecast {}, n_jobs={}, warm-up {:.1} s (not counted)",
        scores.statsforecast_version,
        scores.n_jobs,
        scores.warmup_s
    );
}

/// One recflow algorithm's overall figures, for the comparison line.
pub struct RecflowAll {
    pub name: &'static str,
    pub smape: f64,
    pub ms_per_1000: f64,
}

/// `recflow ets vs statsforecast AutoETS: sMAPE 13.50 vs 13.20 (+0.30),
/// 4.2x faster`, and the same for `arima` vs AutoARIMA (`ets` stands in
/// while recflow has no `arima`).
pub fn print_comparison(scores: &ExternalScores, recflow: &[RecflowAll]) {
    let find = |name: &str| recflow.iter().find(|r| r.name == name);
    let pairs = [
        (find("ets").map(|r| (r, "ets".to_string())), "AutoETS"),
        (
            find("arima")
                .map(|r| (r, "arima".to_string()))
                .or_else(|| find("ets").map(|r| (r, "ets (no arima yet)".to_string()))),
            "AutoARIMA",
        ),
    ];
    for (ours, theirs) in pairs {
        let Some((r, label)) = ours else { continue };
        let Some(t) = scores.models.get(theirs) else {
            continue;
        };
        let Some(all) = t.groups.get("ALL") else {
            continue;
        };
        let ratio = t.ms_per_1000 / r.ms_per_1000;
        let speed = if ratio >= 1.0 {
            format!("recflow {ratio:.1}x faster")
        } else {
            format!("recflow {:.1}x slower", 1.0 / ratio)
        };
        outln!(
            "recflow {label} vs statsforecast {theirs}: sMAPE {:.2} vs {:.2} ({:+.2}), {speed}",
            r.smape,
            all.smape,
            r.smape - all.smape,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_scripts_json_with_null_for_nan() {
        let json = r#"{"statsforecast_version": "2.1.1", "n_jobs": 2, "warmup_s": 3.5,
            "models": {"AutoETS": {"YEARLY": {"smape": 17.1, "mase": null, "n": 645},
                                   "ALL": {"smape": 13.2, "mase": 1.4, "n": 3003},
                                   "ms_per_1000": 812.5}}}"#;
        let s: ExternalScores = serde_json::from_str(json).unwrap();
        let ets = &s.models["AutoETS"];
        assert_eq!(ets.ms_per_1000, 812.5);
        assert_eq!(ets.groups["ALL"].n, 3003);
        assert!(ets.groups["YEARLY"].mase.is_nan());
    }

    #[test]
    fn a_python_without_statsforecast_is_told_to_run_the_env_script() {
        // `false` stands in for an interpreter whose import fails.
        let err = check(Path::new("false")).unwrap_err();
        assert!(matches!(err, StatsforecastError::NotInstalled { .. }));
        assert!(err.to_string().contains("scripts/statsforecast-env"));
        let err = check(Path::new("/nonexistent/python")).unwrap_err();
        assert!(matches!(err, StatsforecastError::Spawn { .. }));
    }
}
