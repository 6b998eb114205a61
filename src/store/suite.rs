//! One test suite for every state store implementation: each store's tests
//! call [`run_all`] on a fresh, empty store.

use std::time::Duration;

use chrono::Utc;

use super::*;

pub async fn run_all(s: &dyn StateStore) {
    runs_and_attempts_round_trip(s).await;
    a_scheduled_time_fires_once(s).await;
    claims_are_exclusive_and_respect_max_parallel_steps(s).await;
    heartbeats_report_cancelled_runs_and_stale_attempts_fail(s).await;
    leases_pass_on_only_when_expired(s).await;
    schedule_cursors_round_trip(s).await;
}

fn new_run(pipeline: &str, trigger: &str, logical: DateTime<Utc>, parallel: i64) -> NewRun {
    NewRun {
        pipeline: pipeline.into(),
        trigger: trigger.into(),
        spec: "name: p".into(),
        file: "p.yaml".into(),
        params: serde_json::json!({"n": 1}),
        logical_date: logical,
        data_interval: (logical - chrono::Duration::days(1), logical),
        max_parallel_steps: parallel,
        status: RunStatus::Queued,
        error: None,
    }
}

async fn runs_and_attempts_round_trip(s: &dyn StateStore) {
    let t = Utc::now();
    let run = s
        .create_run(&new_run("rt", "cli", t, 4))
        .await
        .unwrap()
        .unwrap();
    assert!(s.start_run(run, None).await.unwrap());
    assert!(
        !s.start_run(run, None).await.unwrap(),
        "only a queued run starts"
    );
    assert!(
        s.queue_attempt(run, "import", "import", 1, t)
            .await
            .unwrap()
    );
    assert!(
        !s.queue_attempt(run, "import", "import", 1, t)
            .await
            .unwrap(),
        "queued twice"
    );
    let a = s.claim_attempt("w1", Some(run)).await.unwrap().unwrap();
    assert_eq!(
        (a.step_id.as_str(), a.status, a.worker.as_deref()),
        ("import", StepStatus::Running, Some("w1"))
    );
    let end = AttemptEnd {
        summary: Some("10 rows".into()),
        outputs: serde_json::json!({"dataset_version": 3}),
        log: "line\n".into(),
        ..Default::default()
    };
    assert!(
        s.finish_attempt(a.id, StepStatus::Succeeded, &end, false)
            .await
            .unwrap()
    );
    assert!(
        !s.finish_attempt(a.id, StepStatus::Failed, &end, false)
            .await
            .unwrap(),
        "ends once"
    );
    s.skip_step(
        run,
        "train",
        "train",
        StepStatus::UpstreamFailed,
        "upstream failed",
    )
    .await
    .unwrap();
    assert!(
        s.finish_run(run, RunStatus::Failed, Some("x"))
            .await
            .unwrap()
    );
    assert!(
        !s.finish_run(run, RunStatus::Succeeded, None).await.unwrap(),
        "ends once"
    );
    let r = s.get_run(run).await.unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.params, serde_json::json!({"n": 1}));
    assert_eq!(
        r.logical_date.map(|d| d.timestamp_millis()),
        Some(t.timestamp_millis())
    );
    assert!(r.started_at.is_some() && r.finished_at.is_some());
    assert_eq!(
        s.run_spec(run).await.unwrap(),
        ("name: p".to_string(), "p.yaml".to_string())
    );
    let attempts = s.list_attempts(run).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].summary.as_deref(), Some("10 rows"));
    assert_eq!(attempts[0].outputs["dataset_version"], 3);
    assert_eq!(attempts[1].status, StepStatus::UpstreamFailed);
    s.reopen_run(run).await.unwrap();
    assert_eq!(s.get_run(run).await.unwrap().status, RunStatus::Running);
    s.finish_run(run, RunStatus::Succeeded, None).await.unwrap();
}

async fn a_scheduled_time_fires_once(s: &dyn StateStore) {
    let t = Utc::now();
    assert!(
        s.create_run(&new_run("sched", "schedule", t, 4))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.create_run(&new_run("sched", "schedule", t, 4))
            .await
            .unwrap()
            .is_none()
    );
    // Manual runs for the same date are not limited.
    assert!(
        s.create_run(&new_run("sched", "api", t, 4))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.create_run(&new_run("sched", "api", t, 4))
            .await
            .unwrap()
            .is_some()
    );
    for r in s.runs_with_status(&[RunStatus::Queued]).await.unwrap() {
        s.finish_run(r.id, RunStatus::Cancelled, None)
            .await
            .unwrap();
    }
}

async fn claims_are_exclusive_and_respect_max_parallel_steps(s: &dyn StateStore) {
    let t = Utc::now();
    let run = s
        .create_run(&new_run("par", "api", t, 2))
        .await
        .unwrap()
        .unwrap();
    for i in 0..5 {
        s.queue_attempt(run, &format!("s{i}"), "noop", 1, t)
            .await
            .unwrap();
    }
    let later = t + chrono::Duration::hours(1);
    s.queue_attempt(run, "retry", "noop", 2, later)
        .await
        .unwrap();
    assert!(
        s.claim_attempt("w", Some(run)).await.unwrap().is_none(),
        "a queued run's steps wait"
    );
    s.start_run(run, None).await.unwrap();
    let a = s.claim_attempt("w1", None).await.unwrap().unwrap();
    let b = s.claim_attempt("w2", None).await.unwrap().unwrap();
    assert_ne!(a.id, b.id);
    assert!(
        s.claim_attempt("w3", None).await.unwrap().is_none(),
        "max_parallel_steps is 2"
    );
    s.finish_attempt(a.id, StepStatus::Succeeded, &AttemptEnd::default(), false)
        .await
        .unwrap();
    let c = s.claim_attempt("w3", None).await.unwrap().unwrap();
    assert!(c.id != a.id && c.id != b.id);
    for x in [b.id, c.id] {
        s.finish_attempt(x, StepStatus::Succeeded, &AttemptEnd::default(), false)
            .await
            .unwrap();
    }
    let mut claimed = Vec::new();
    while let Some(x) = s.claim_attempt("w", Some(run)).await.unwrap() {
        claimed.push(x.step_id.clone());
        s.finish_attempt(x.id, StepStatus::Succeeded, &AttemptEnd::default(), false)
            .await
            .unwrap();
    }
    assert_eq!(
        claimed.len(),
        2,
        "the retry waits for its time: {claimed:?}"
    );
    assert!(!claimed.contains(&"retry".to_string()));
    s.fail_queued_attempts(run, "cancelled").await.unwrap();
    let attempts = s.list_attempts(run).await.unwrap();
    let retry = attempts.iter().find(|a| a.step_id == "retry").unwrap();
    assert_eq!(
        (retry.status, retry.error.as_deref()),
        (StepStatus::Failed, Some("cancelled"))
    );
    s.finish_run(run, RunStatus::Succeeded, None).await.unwrap();
}

async fn heartbeats_report_cancelled_runs_and_stale_attempts_fail(s: &dyn StateStore) {
    let t = Utc::now();
    let run = s
        .create_run(&new_run("hb", "cli", t, 4))
        .await
        .unwrap()
        .unwrap();
    s.start_run(run, None).await.unwrap();
    s.queue_attempt(run, "a", "noop", 1, t).await.unwrap();
    s.queue_attempt(run, "b", "noop", 1, t).await.unwrap();
    let a = s.claim_attempt("w1", Some(run)).await.unwrap().unwrap();
    let b = s.claim_attempt("w2", Some(run)).await.unwrap().unwrap();
    assert!(s.heartbeat("w1", &[a.id]).await.unwrap().is_empty());
    // w2 stops heartbeating: after the cutoff its attempt fails as interrupted.
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.heartbeat("w1", &[a.id]).await.unwrap();
    let cutoff = Utc::now() - chrono::Duration::milliseconds(10);
    let stale = s.fail_stale_attempts(cutoff).await.unwrap();
    assert_eq!(stale.iter().map(|x| x.id).collect::<Vec<_>>(), [b.id]);
    let b2 = s.get_attempt(b.id).await.unwrap();
    assert!(b2.interrupted && b2.status == StepStatus::Failed, "{b2:?}");
    assert!(b2.error.unwrap().contains("w2 stopped heartbeating"));
    // The late worker learns that its attempt is no longer its own.
    assert_eq!(s.heartbeat("w2", &[b.id]).await.unwrap(), [b.id]);
    assert!(
        !s.finish_attempt(b.id, StepStatus::Succeeded, &AttemptEnd::default(), false)
            .await
            .unwrap()
    );
    // A passed deadline (run_timeout) reaches the worker through its heartbeat.
    let timed = s
        .create_run(&new_run("hb2", "cli", t, 4))
        .await
        .unwrap()
        .unwrap();
    s.start_run(timed, Some(Utc::now() - chrono::Duration::seconds(1)))
        .await
        .unwrap();
    s.queue_attempt(timed, "x", "noop", 1, t).await.unwrap();
    let x = s.claim_attempt("w1", Some(timed)).await.unwrap().unwrap();
    assert_eq!(s.heartbeat("w1", &[a.id, x.id]).await.unwrap(), [x.id]);
    s.finish_attempt(x.id, StepStatus::Failed, &AttemptEnd::default(), false)
        .await
        .unwrap();
    s.finish_run(timed, RunStatus::Failed, None).await.unwrap();
    // A cancel reaches the worker through its heartbeat.
    assert!(s.request_cancel(run).await.unwrap().cancel_requested);
    assert_eq!(s.heartbeat("w1", &[a.id]).await.unwrap(), [a.id]);
    s.finish_attempt(a.id, StepStatus::Failed, &AttemptEnd::default(), false)
        .await
        .unwrap();
    s.finish_run(run, RunStatus::Cancelled, None).await.unwrap();
}

async fn leases_pass_on_only_when_expired(s: &dyn StateStore) {
    let ttl = Duration::from_millis(200);
    assert!(s.try_lease("scheduler", "a", ttl).await.unwrap());
    assert!(!s.try_lease("scheduler", "b", ttl).await.unwrap());
    assert!(
        s.try_lease("scheduler", "a", ttl).await.unwrap(),
        "the holder renews"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        s.try_lease("scheduler", "b", ttl).await.unwrap(),
        "expired: b takes over"
    );
    assert!(!s.try_lease("scheduler", "a", ttl).await.unwrap());
    s.release_lease("scheduler", "b").await.unwrap();
    assert!(s.try_lease("scheduler", "a", ttl).await.unwrap());
    s.release_lease("scheduler", "a").await.unwrap();
}

async fn schedule_cursors_round_trip(s: &dyn StateStore) {
    assert_eq!(s.schedule_cursor("nightly").await.unwrap(), None);
    let t = Utc::now();
    s.set_schedule_cursor("nightly", t).await.unwrap();
    s.set_schedule_cursor("nightly", t).await.unwrap();
    let got = s.schedule_cursor("nightly").await.unwrap().unwrap();
    assert_eq!(got.timestamp_millis(), t.timestamp_millis());
}
