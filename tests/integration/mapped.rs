//! Mapped steps (`for_each:`) end to end through `recflow run` and the
//! daemon: a fan-out of 100 instances where one fails its first attempt
//! retries only that instance and the next step reads every output as a
//! list; a list over the limit is refused naming the step; and instances
//! that finished before a SIGKILL are not run again, also with two daemons
//! sharing PostgreSQL.

use std::time::Duration;

use recflow::store::{RunStatus, StepStatus};

use crate::common::{Home, eventually_within, fails, ok, shared_runtime};
use crate::orchestrate::{Daemon, attempts, fresh_postgres_database, run_status};

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

/// Two daemons share PostgreSQL and work the instances of one mapped step;
/// one is killed while it runs some. Every instance runs to success once
/// (an instance interrupted by the kill is retried, and only it), and the
/// two daemons together never run more than `max_parallel_steps` at once.
#[test]
fn two_daemons_on_postgres_share_a_fan_out_and_survive_one_being_killed() {
    let Some(url) = fresh_postgres_database() else {
        return;
    };
    let home = Home::new();
    home.write(
        "pipelines/pgfan.yaml",
        "name: pgfan\nmax_parallel_steps: 6\nsteps:\n  - id: each\n    type: shell\n    for_each: \"{{ range(60) }}\"\n    command: \"sleep 0.3; echo {{ item }} >> ../ran.txt\"\n  - {id: after, type: noop, depends_on: [each]}\n",
    );
    let dir = home.path().join("pipelines");
    let env = [("RECFLOW_STATE_URL", url.as_str())];
    let mut a = Daemon::start(&home, &dir, &["--workers", "4"], &env);
    let b = Daemon::start(&home, &dir, &["--workers", "4"], &env);
    eventually_within(Duration::from_secs(30), &mut || {
        let out = home
            .cmd()
            .env("RECFLOW_STATE_URL", &url)
            .args(["trigger", "pgfan"])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    });
    let rt = shared_runtime();
    let store = rt.block_on(recflow::store::open(&url)).unwrap();
    let pid = format!(":{}:", a.child.id());
    eventually_within(Duration::from_secs(60), &mut || {
        let on_a = rt
            .block_on(store.list_attempts(1))
            .unwrap()
            .iter()
            .filter(|x| {
                x.status == StepStatus::Running
                    && x.worker.as_deref().is_some_and(|w| w.contains(&pid))
            })
            .count();
        if on_a >= 1 {
            Ok(())
        } else {
            Err("no instance running on the first daemon yet".into())
        }
    });
    a.signal("-KILL");
    let _ = a.child.wait();
    eventually_within(Duration::from_secs(120), &mut || {
        let run = rt.block_on(store.get_run(1)).unwrap();
        if run.status == RunStatus::Succeeded {
            Ok(())
        } else {
            Err(format!("run {}", run.status))
        }
    });
    drop(b);
    let all = rt.block_on(store.list_attempts(1)).unwrap();
    let each: Vec<_> = all.iter().filter(|x| x.step_id == "each").collect();
    for i in 0..60 {
        let mine: Vec<_> = each.iter().filter(|x| x.map_index == Some(i)).collect();
        let succeeded = mine
            .iter()
            .filter(|x| x.status == StepStatus::Succeeded)
            .count();
        assert_eq!(succeeded, 1, "instance {i}: {mine:#?}");
        // Any other attempt of it is one the kill interrupted.
        assert!(
            mine.iter()
                .all(|x| x.status == StepStatus::Succeeded || x.interrupted),
            "instance {i}: {mine:#?}"
        );
    }
    let workers: std::collections::HashSet<_> =
        each.iter().filter_map(|x| x.worker.clone()).collect();
    assert!(
        workers.len() >= 2,
        "both daemons ran instances: {workers:?}"
    );
    // Instances running at once, from the attempts' start and end times.
    let mut edges: Vec<(chrono::DateTime<chrono::Utc>, i32)> = Vec::new();
    for x in &each {
        if let (Some(s), Some(e)) = (x.started_at, x.finished_at) {
            edges.push((s, 1));
            edges.push((e, -1));
        }
    }
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    assert!(
        most <= 6,
        "{most} instances ran at once; max_parallel_steps is 6"
    );
    let ran = std::fs::read_to_string(home.path().join("ran.txt")).unwrap();
    let mut seen: Vec<i64> = ran.lines().map(|l| l.parse().unwrap()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, (0..60).collect::<Vec<i64>>());
}
