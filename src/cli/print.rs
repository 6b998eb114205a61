//! How the CLI prints: aligned tables, times, status marks, step lines.

use chrono::{DateTime, Utc};

use crate::engine::StepReport;
use crate::outln;
use crate::store::StepStatus;

/// Prints a table with left-aligned columns two spaces apart.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Seconds between two times, one decimal; empty while unfinished.
pub fn seconds(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    match (start, end) {
        (Some(a), Some(b)) => format!("{:.1}", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => String::new(),
    }
}

/// A metric with 4 decimals, `-` when absent.
pub fn metric(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

pub fn mark(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "✓",
        StepStatus::Failed => "✗",
        StepStatus::Skipped | StepStatus::UpstreamFailed => "-",
        StepStatus::Running | StepStatus::Queued => "…",
    }
}

/// ` (attempt N)` after a step line, for retries.
pub fn attempt_suffix(attempt: i64) -> String {
    if attempt > 1 {
        format!(" (attempt {attempt})")
    } else {
        String::new()
    }
}

/// Prints each step attempt as it ends.
pub fn step_printer(width: usize) -> impl FnMut(&StepReport) + Send {
    move |r: &StepReport| {
        let text = match &r.error {
            Some(e) => format!("{} failed: {e}", r.step_type),
            None => r.summary.clone(),
        };
        let id = match r.map_index {
            Some(i) => format!("{}[{i}]", r.id),
            None => r.id.clone(),
        };
        outln!(
            "  {} {:<width$}  {:>6.1}s  {text}{}",
            mark(r.status),
            id,
            r.duration.as_secs_f64(),
            attempt_suffix(r.attempt)
        );
    }
}
