//! What commands print when their reader goes away (`recflow runs list |
//! head -4`): they end quietly, with their own status, and a pipeline run
//! whose output nobody reads still finishes.

use std::process::Stdio;

use crate::common::{Home, INTERACTIONS_SCHEMA, movielens_csv, ok};

/// Runs recflow with its stdout a pipe whose read end is closed before the
/// first write; returns the exit code and stderr.
fn with_stdout_closed(home: &Home, args: &[&str]) -> (Option<i32>, String) {
    let mut child = home
        .process()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("recflow starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("recflow ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_ends_quietly_when_its_reader_goes_away() {
    let home = Home::new();
    let csv = movielens_csv(&home, "ratings.csv", 300);
    let file = home.write(
        "p.yaml",
        format!(
            "name: p\ndataset_group: g\ndatasets:{INTERACTIONS_SCHEMA}steps:\n  - {{id: load, type: import, dataset: interactions, source: {}}}\n",
            csv.display()
        ),
    );
    // A run whose output nobody reads still runs to the end.
    let (code, stderr) = with_stdout_closed(&home, &["run", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let runs = ok(home.cmd().args(["runs", "show", "1"])).stdout;
    assert!(runs.contains("succeeded"), "{runs}");
    ok(home.cmd().arg("run").arg(&file));
    for args in [
        vec!["runs", "list"],
        vec!["runs", "show", "1", "--logs"],
        vec!["runs", "logs", "1", "load"],
        vec!["datasets", "list"],
        vec!["datasets", "show", "g/interactions"],
        vec!["solutions", "list"],
        vec!["campaigns", "list"],
        vec!["validate", file.to_str().unwrap()],
    ] {
        let (code, stderr) = with_stdout_closed(&home, &args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "recflow {args:?}: {stderr}"
        );
        assert_eq!(code, Some(0), "recflow {args:?}: {stderr}");
    }
}
