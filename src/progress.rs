//! Progress of long work: a bar on a terminal, periodic structured log events
//! otherwise (CI, daemons, pipes), so both a person and a log search can follow.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often a non-terminal progress emits a log event.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// How often a bar redraws without being advanced, so that its last count,
/// elapsed time and eta stay current while one long piece of work runs
/// (a bar redrawn only on `inc` freezes at whatever its rate limit let
/// through last).
const TICK: Duration = Duration::from_millis(250);

pub struct Progress {
    label: &'static str,
    unit: &'static str,
    bar: Option<ProgressBar>,
    state: Mutex<(u64, Instant)>,
}

fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("RECFLOW_NO_PROGRESS").is_none()
}

impl Progress {
    /// Counts bytes; `total` 0 when unknown.
    pub fn bytes(label: &'static str, total: u64) -> Progress {
        Self::new(
            label,
            "bytes",
            total,
            "{spinner} {msg} {bytes} ({bytes_per_sec})",
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
    }

    /// Counts things (`unit`: rows, users, lines, trials).
    pub fn count(label: &'static str, unit: &'static str, total: u64) -> Progress {
        Self::new(
            label,
            unit,
            total,
            "{spinner} {msg} {human_pos} ({rate})",
            "{msg} [{bar:30}] {human_pos}/{human_len} ({rate}, eta {eta})",
        )
    }

    fn new(
        label: &'static str,
        unit: &'static str,
        total: u64,
        spinner: &str,
        bar: &str,
    ) -> Progress {
        let pb = interactive().then(|| {
            let pb = if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            };
            let template = if total > 0 { bar } else { spinner };
            if let Ok(style) = ProgressStyle::with_template(template) {
                pb.set_style(
                    style
                        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&rate(s.per_sec()));
                        })
                        .progress_chars("=> "),
                );
            }
            pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            pb.set_message(format!("{label} ({unit})"));
            pb.enable_steady_tick(TICK);
            pb
        });
        Progress {
            label,
            unit,
            bar: pb,
            state: Mutex::new((0, Instant::now())),
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(pb) = &self.bar {
            pb.inc(n);
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += n;
        if state.1.elapsed() >= LOG_EVERY {
            state.1 = Instant::now();
            tracing::info!(
                task = self.label,
                unit = self.unit,
                done = state.0,
                "Progress."
            );
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A rate per second, rounded to what a reader can take in at a glance:
/// whole numbers with thousands separators from 100/s, one decimal from
/// 10/s, two below (`2,375/s`, `42.5/s`, `0.83/s`).
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0/s".into();
    }
    if per_sec >= 99.5 {
        let whole = per_sec.round() as u64;
        let digits = whole.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out.push_str("/s");
        out
    } else if per_sec >= 9.95 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.2}/s")
    }
}

/// `units` of progress handed out as a piece of work reports the fraction
/// it has done, so a long step inside a counted loop (one model training
/// standing for many series) moves the bar while it runs instead of at its
/// end. Shared across threads; never hands out more than `units` in all.
pub struct Share {
    units: u64,
    given: AtomicU64,
}

impl Share {
    pub fn new(units: u64) -> Share {
        Share {
            units,
            given: AtomicU64::new(0),
        }
    }

    /// The units to add now that `fraction` (0 to 1) of the work is done;
    /// 0 when an earlier report already went as far.
    pub fn advance_to(&self, fraction: f64) -> u64 {
        let target = (self.units as f64 * fraction.clamp(0.0, 1.0)).floor() as u64;
        let before = self.given.fetch_max(target, Ordering::Relaxed);
        target.saturating_sub(before)
    }

    /// The units not handed out yet, to add when the work ends (whatever
    /// it reported on the way).
    pub fn rest(&self) -> u64 {
        let before = self.given.swap(self.units, Ordering::Relaxed);
        self.units.saturating_sub(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_not_printed_with_four_decimals() {
        assert_eq!(rate(2375.2001), "2,375/s");
        assert_eq!(rate(1_234_567.8), "1,234,568/s");
        assert_eq!(rate(999.6), "1,000/s");
        assert_eq!(rate(100.0), "100/s");
        assert_eq!(rate(99.96), "100/s");
        assert_eq!(rate(42.4567), "42.5/s");
        assert_eq!(rate(0.8333), "0.83/s");
        assert_eq!(rate(0.0), "0/s");
        assert_eq!(rate(f64::NAN), "0/s");
    }

    #[test]
    fn a_share_hands_out_its_units_once_whatever_the_reports() {
        let share = Share::new(55);
        let mut given = 0;
        // 150 trees reporting in turn: the bar moves during the training.
        for t in 1..=150 {
            given += share.advance_to(t as f64 / 150.0);
            if t == 75 {
                assert_eq!(given, 27);
            }
        }
        assert_eq!(given, 55);
        // Late, repeated or out-of-order reports add nothing.
        assert_eq!(share.advance_to(0.5), 0);
        assert_eq!(share.advance_to(2.0), 0);
        assert_eq!(share.rest(), 0);
        // Work that reported nothing gets all its units at its end.
        let silent = Share::new(10);
        assert_eq!(silent.advance_to(0.35), 3);
        assert_eq!(silent.rest(), 7);
        assert_eq!(silent.rest(), 0);
    }
}
