//! Progress of long work: a bar on a terminal, periodic structured log events
//! otherwise (CI, daemons, pipes), so both a person and a log search can follow.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a non-terminal progress emits a log event.
const LOG_EVERY: Duration = Duration::from_secs(5);

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
            "{spinner} {msg} {human_pos} ({per_sec})",
            "{msg} [{bar:30}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
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
                pb.set_style(style.progress_chars("=> "));
            }
            pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            pb.set_message(format!("{label} ({unit})"));
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
