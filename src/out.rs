//! What commands print, through [`outln!`](crate::outln) and
//! [`errln!`](crate::errln) instead of `println!`/`eprintln!`, which panic
//! (exit 101) when the reader has gone: `recflow runs list | head -4`.
//!
//! The choice: the first write that fails with `BrokenPipe` marks stdout
//! closed, and later output is dropped. The command finishes what it was
//! doing — a pipeline run is not abandoned halfway because its reader left
//! — and exits with its own status, quietly (0 for a listing). Loops that
//! only print (`runs logs --follow`) stop when [`closed`] says so. SIGPIPE
//! stays ignored, as Rust sets it, so `serve` and `schedule` never die of a
//! client's closed socket. Any other write error (a full disk) is kept and
//! reported by `main` as the command's failure. Clippy's
//! `disallowed-macros` (clippy.toml) keeps the std macros out of the crate.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Prints a line on stdout; see the module for a closed pipe.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints on stdout without a newline; see the module for a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!($($arg)*))
    };
}

/// Prints a line on stderr; a closed stderr is ignored (there is nowhere
/// left to say so).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes to stdout unless it was closed; the macros call this.
pub fn stdout(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        failed(e);
    }
}

/// Sends what was printed without a newline (progress that grows in place).
pub fn flush() {
    if !CLOSED.load(Ordering::Relaxed)
        && let Err(e) = io::stdout().lock().flush()
    {
        failed(e);
    }
}

/// Writes to stderr, ignoring failure.
pub fn stderr(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Whether stdout is closed (its reader left, or writing failed).
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// A write error other than a closed pipe, for `main` to report.
pub fn failure() -> Option<String> {
    FAILED.lock().map(|f| f.clone()).unwrap_or_default()
}

fn failed(e: io::Error) {
    CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != io::ErrorKind::BrokenPipe
        && let Ok(mut f) = FAILED.lock()
    {
        f.get_or_insert_with(|| format!("cannot write to stdout: {e}"));
    }
}
