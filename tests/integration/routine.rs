//! The daily routine of issue 19: pruning old versions and exports, asking
//! a campaign with a filter and item metadata from the CLI, and where a
//! run's output goes when stdout is not a terminal.

use crate::common::{Home, ok, repo};

#[test]
fn step_lines_go_to_stdout_and_logs_to_stderr() {
    let home = Home::new();
    let r = ok(home
        .cmd()
        .env("RUST_LOG", "info")
        .arg("run")
        .arg(repo().join("pipelines/quickstart.yaml")));
    assert!(r.stdout.contains("✓ train"), "{}", r.stdout);
    assert!(r.stdout.contains("Run 1 succeeded"), "{}", r.stdout);
    assert!(
        !r.stdout.contains(" INFO ") && !r.stdout.contains("run_id="),
        "logs in stdout:\n{}",
        r.stdout
    );
    assert!(r.stderr.contains(" INFO "), "{}", r.stderr);
    assert!(r.stderr.contains("Step succeeded."), "{}", r.stderr);
    assert!(
        !r.stderr.contains('✓') && !r.stderr.contains("Run 1 succeeded"),
        "step lines in stderr:\n{}",
        r.stderr
    );
}

