//! `recflow bench validate`: parsing and validating a chain of templated
//! steps (each reads its upstream step's output and the run date) at 500,
//! 1,000 and 2,000 steps (the limit), in ms per step, with the ratio of
//! the time at 2,000 steps to the time at 500: linear work gives about 4.
//! The baseline, measured in the same run, is the same chain without
//! templates. Times are this thread's CPU time, which other processes on a
//! shared machine barely move (wall time is printed beside it).

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;

use crate::outln;
use crate::pipeline::{MAX_STEPS, Pipeline};

#[derive(Debug, Args)]
pub struct ValidateBenchArgs {
    /// Chain lengths to time, comma-separated (at most the step limit).
    #[arg(long, value_delimiter = ',', default_values_t = [500, 1_000, MAX_STEPS])]
    pub steps: Vec<usize>,
    /// Times each file is validated; the fastest counts.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
}

/// A chain of `n` shell steps; with `templated`, step i's command reads
/// step i-1's output and the run date.
pub fn chain(n: usize, templated: bool) -> String {
    let mut text = String::from("name: chain\ndataset_group: bench\nsteps:\n");
    for i in 0..n {
        text.push_str(&format!("  - id: s{i}\n    type: shell\n"));
        let command = match (i, templated) {
            (0, true) => "echo {{ ds }}".to_string(),
            (_, true) => format!(
                "echo {{{{ steps.s{}.outputs.exit_code }}}} {{{{ ds }}}}",
                i - 1
            ),
            (_, false) => "echo".to_string(),
        };
        text.push_str(&format!("    command: \"{command}\"\n"));
        if i > 0 {
            text.push_str(&format!("    depends_on: [s{}]\n", i - 1));
        }
    }
    text
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The fastest of `repeat` validations: (CPU time, wall time).
fn fastest(text: &str, repeat: usize) -> anyhow::Result<(Duration, Duration)> {
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..repeat.max(1) {
        let (cpu, wall) = (thread_cpu(), Instant::now());
        Pipeline::from_text(Path::new("bench.yaml"), text.to_string())?;
        best.0 = best.0.min(thread_cpu() - cpu);
        best.1 = best.1.min(wall.elapsed());
    }
    Ok(best)
}

pub fn validate_bench(args: ValidateBenchArgs) -> anyhow::Result<()> {
    outln!(
        "Validating a chain of templated shell steps (fastest of {}); baseline: the same chain without templates.",
        args.repeat
    );
    outln!(
        "{:>6} {:>8} {:>9} {:>8} {:>12} {:>14}",
        "steps",
        "cpu ms",
        "ms/step",
        "wall ms",
        "baseline ms",
        "baseline/step"
    );
    let mut times = Vec::new();
    for &n in &args.steps {
        anyhow::ensure!(
            (1..=MAX_STEPS).contains(&n),
            "--steps: {n} is not between 1 and the limit of {MAX_STEPS}"
        );
        let (t, wall) = fastest(&chain(n, true), args.repeat)?;
        let (base, _) = fastest(&chain(n, false), args.repeat)?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        outln!(
            "{n:>6} {:>8.1} {:>9.4} {:>8.1} {:>12.1} {:>14.4}",
            ms(t),
            ms(t) / n as f64,
            ms(wall),
            ms(base),
            ms(base) / n as f64
        );
        times.push((n, t));
    }
    let at = |n: usize| times.iter().find(|(m, _)| *m == n).map(|(_, t)| *t);
    if let (Some(small), Some(large)) = (at(500), at(2_000)) {
        outln!(
            "cpu time at 2,000 steps / at 500: {:.2} (linear: 4; quadratic: 16)",
            large.as_secs_f64() / small.as_secs_f64()
        );
    }
    Ok(())
}
