//! Mapped steps (`for_each:`) end to end through `recflow run` and the
//! daemon: a fan-out of 100 instances where one fails its first attempt
//! retries only that instance and the next step reads every output as a
//! list; a list over the limit is refused naming the step; and instances
//! that finished before a SIGKILL are not run again.

use std::time::Duration;

use recflow::store::{RunStatus, StepStatus};

use crate::common::{Home, eventually_within, fails, ok};
use crate::orchestrate::{Daemon, attempts, run_status};

/// Instance 37 of 100 fails its first attempt (no marker yet), then succeeds.
const FAN_OUT: &str = r#"
name: fan
dataset_group: g
max_parallel_steps: 8
steps:
  - id: list
    type: shell
    command: "printf '['; seq -s, 0 99 | tr -d '\n'; echo ']'"
    output_json: true
  - id: each
    type: shell
    depends_on: [list]
    for_each: "{{ steps.list.outputs.json }}"
    retries: 2
    retry_delay: 1s
    command: "if [ {{ map_index }} = 37 ] && [ ! -f m37 ]; then touch m37; exit 3; fi; echo {{ item * 10 }} >> ran.txt; echo {{ item * 10 }}"
  - id: report
    type: shell
    depends_on: [each]
    command: "echo '{{ steps.each.outputs | map(attribute=\"last_line\") | join(\",\") }}' > report.txt"
"#;

#[test]
fn a_fan_out_of_100_retries_only_its_failing_instance_and_the_next_step_reads_the_list() {
    let home = Home::new();
    let file = home.write("fan.yaml", FAN_OUT);
    let out = ok(home.cmd().arg("run").arg(&file));
    assert!(out.stdout.contains("✗ each[37]"), "{}", out.all());
    assert!(out.stdout.contains("✓ each[37]"), "{}", out.all());
    assert!(out.stdout.contains("(attempt 2)"), "{}", out.all());

    let all = attempts(&home, 1);
    let each: Vec<_> = all.iter().filter(|a| a.step_id == "each").collect();
    assert_eq!(each.len(), 101, "100 instances and one retry");
    for a in &each {
        let i = a.map_index.expect("an instance");
        assert_eq!(a.map_item, Some(serde_json::json!(i)));
        let expected = if i == 37 && a.attempt == 1 {
            StepStatus::Failed
        } else {
            StepStatus::Succeeded
        };
        assert_eq!(a.status, expected, "{a:?}");
        assert!(a.attempt == 1 || i == 37, "only instance 37 retried: {a:?}");
    }
    let ran = std::fs::read_to_string(home.path().join("ran.txt")).unwrap();
    assert_eq!(ran.lines().count(), 100, "each instance ran its work once");
    let report = std::fs::read_to_string(home.path().join("report.txt")).unwrap();
    let expected: Vec<String> = (0..100).map(|i| (i * 10).to_string()).collect();
    assert_eq!(
        report.trim(),
        expected.join(","),
        "outputs in instance order"
    );

    // `runs show`: counts by status, and the retried instance's attempts.
    let show = ok(home.cmd().args(["runs", "show", "1"]));
    assert!(
        show.stdout
            .contains("Mapped step each (shell): 100 instances: 100 succeeded; 1 retried"),
        "{}",
        show.stdout
    );
    assert_eq!(
        show.stdout.matches("each[37]").count(),
        2,
        "{}",
        show.stdout
    );
    assert!(!show.stdout.contains("each[36]"), "{}", show.stdout);
    let log = ok(home
        .cmd()
        .args(["runs", "logs", "1", "each[37]", "--attempt", "1"]));
    assert!(
        log.stdout.contains("exited with exit status: 3"),
        "{}",
        log.stdout
    );
}

#[test]
fn more_instances_than_the_limit_are_refused_naming_the_step() {
    let home = Home::new();
    let file = home.write(
        "wide.yaml",
        "name: wide\ndataset_group: g\nparams:\n  ids: {type: list, default: [1]}\nsteps:\n  - {id: per_id, type: shell, for_each: '{{ params.ids }}', command: 'echo {{ item }}'}\n  - {id: after, type: noop, depends_on: [per_id]}\n",
    );
    let ids: Vec<String> = (0..10_001).map(|i| i.to_string()).collect();
    let out = fails(
        home.cmd()
            .arg("run")
            .arg(&file)
            .arg("--param")
            .arg(format!("ids={}", ids.join(","))),
    );
    assert!(
        out.stdout.contains(
            "step per_id failed: for_each: the list has 10,001 elements; a step runs at most 10,000 instances"
        ),
        "{}",
        out.all()
    );
    let all = attempts(&home, 1);
    assert_eq!(all.len(), 2, "no instance was queued: {all:#?}");
    // A list written in the file is refused by validation.
    let long = format!(
        "name: wide2\ndataset_group: g\nsteps:\n  - {{id: per_id, type: noop, for_each: [{}]}}\n",
        ids.join(",")
    );
    let file = home.write("wide2.yaml", long);
    let out = fails(home.cmd().arg("validate").arg(&file));
    assert!(
        out.stdout
            .contains("steps[0] (per_id).for_each: the list has 10,001 elements"),
        "{}",
        out.all()
    );
}

#[test]
fn instances_that_finished_before_a_sigkill_are_not_run_again() {
    let home = Home::new();
    // Instance 7 hangs the first time; the others finish at once.
    home.write(
        "pipelines/crashfan.yaml",
        "name: crashfan\ndataset_group: g\nmax_parallel_steps: 4\nsteps:\n  - id: each\n    type: shell\n    for_each: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n    command: \"if [ {{ item }} = 7 ] && [ ! -f ../m7 ]; then touch ../m7; sleep 60; fi; echo {{ item }} >> ../ran.txt\"\n  - {id: after, type: noop, depends_on: [each]}\n",
    );
    let dir = home.path().join("pipelines");
    let daemon = Daemon::start(&home, &dir, &[], &[]);
    eventually_within(Duration::from_secs(30), &mut || {
        let out = home.cmd().args(["trigger", "crashfan"]).output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    });
    let ran = home.path().join("ran.txt");
    eventually_within(Duration::from_secs(60), &mut || {
        let done = std::fs::read_to_string(&ran).unwrap_or_default();
        let seven = attempts(&home, 1)
            .into_iter()
            .any(|a| a.map_index == Some(7) && a.status == StepStatus::Running);
        if done.lines().count() == 9 && seven {
            Ok(())
        } else {
            Err(format!(
                "{} done, instance 7 running: {seven}",
                done.lines().count()
            ))
        }
    });
    daemon.signal("-KILL");
    drop(daemon);
    let _daemon = Daemon::start(&home, &dir, &[], &[]);
    eventually_within(
        Duration::from_secs(60),
        &mut || match run_status(&home, 1) {
            RunStatus::Succeeded => Ok(()),
            s => Err(format!("run {s}")),
        },
    );
    let done = std::fs::read_to_string(&ran).unwrap();
    let mut lines: Vec<&str> = done.lines().collect();
    lines.sort();
    assert_eq!(lines, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    let all = attempts(&home, 1);
    for a in all.iter().filter(|a| a.step_id == "each") {
        if a.map_index == Some(7) && a.attempt == 1 {
            assert!(a.interrupted && a.status == StepStatus::Failed, "{a:?}");
        } else {
            assert_eq!(
                (a.attempt, a.status),
                (
                    if a.map_index == Some(7) { 2 } else { 1 },
                    StepStatus::Succeeded
                ),
                "{a:?}"
            );
        }
    }
    assert_eq!(all.iter().filter(|a| a.step_id == "each").count(), 11);
}
