//! The state store's conformance suite: every test below runs, on a fresh
//! and empty store, on SQLite (in a temporary directory) and on PostgreSQL
//! (a new database on the server `RECFLOW_TEST_POSTGRES_URL` names;
//! `scripts/test` starts one). Together they call every method of every
//! store trait; the concurrent ones show what the PostgreSQL queries do
//! under concurrent writers.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use futures::future::join_all;
use sqlx::{Connection, Executor, PgConnection};

use super::*;

macro_rules! conformance_suite {
    ($($test:ident),+ $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::on_sqlite(super::$test).await;
                }
            )+
        }

        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::on_postgres(super::$test).await;
                }
            )+
        }
    };
}

conformance_suite!(
    pipelines_register_with_their_filters,
    a_filter_name_belongs_to_one_pipeline_of_its_group,
    runs_and_attempts_round_trip,
    mapped_instances_are_queued_whole_and_once,
    a_scheduled_time_fires_once,
    runs_are_listed_newest_first_by_query,
    attempts_of_several_runs_come_in_one_call,
    attempt_logs_grow_while_the_attempt_runs,
    claims_are_exclusive_and_respect_max_parallel_steps,
    concurrent_claims_take_each_attempt_once_within_max_parallel_steps,
    heartbeats_report_cancelled_runs_and_stale_attempts_fail,
    leases_pass_on_only_when_expired,
    schedule_cursors_round_trip,
    sla_misses_are_recorded_once,
    a_trigger_key_starts_one_run,
    versions_are_numbered_per_owner_and_only_active_ones_are_latest,
    concurrent_publishing_numbers_versions_consecutively,
    versions_move_between_statuses_once,
    campaigns_remember_the_version_they_replaced,
    concurrent_campaign_moves_each_record_the_version_they_replaced,
    campaigns_never_move_to_a_version_being_deleted,
    event_trackers_are_generated_once_or_declared,
    events_and_put_records_round_trip,
);

/// Runs `test` on a new SQLite store in a temporary directory.
async fn on_sqlite(test: impl AsyncFnOnce(&dyn StateStore)) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let store = open(&url).await.unwrap();
    assert_eq!(store.describe(), url);
    test(&*store).await;
}

/// Runs `test` on a new PostgreSQL store, see [`with_fresh_database`].
async fn on_postgres(test: impl AsyncFnOnce(&dyn StateStore)) {
    with_fresh_database(async move |url| {
        let store = open(&url).await.unwrap();
        assert_eq!(store.describe(), url);
        test(&*store).await;
    })
    .await;
}

/// Runs `test` with the URL of a new, empty database on the server named
/// by `RECFLOW_TEST_POSTGRES_URL` (scripts/test starts one), and drops the
/// database afterwards, also when the test fails. Without the variable the
/// test is skipped, except in CI.
pub(super) async fn with_fresh_database(test: impl AsyncFnOnce(String)) {
    let Ok(base) = std::env::var("RECFLOW_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RECFLOW_TEST_POSTGRES_URL is not set; in CI, scripts/test provides it"
        );
        eprintln!(
            "skipped: RECFLOW_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL and sets it)"
        );
        return;
    };
    let name = format!("recflow_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", redact(&base)));
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    let outcome = AssertUnwindSafe(test(url.to_string())).catch_unwind().await;
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn registration(name: &str, dataset_group: &str, filters: &[(&str, &str)]) -> PipelineRegistration {
    PipelineRegistration {
        name: name.into(),
        dataset_group: dataset_group.into(),
        file: format!("{name}.yaml"),
        spec: format!("name: {name}"),
        filters: filters
            .iter()
            .map(|(n, e)| (n.to_string(), e.to_string()))
            .collect(),
    }
}

/// (name, pipeline, expression) of a group's filters, as listed.
async fn filters_of(s: &dyn StateStore, dataset_group: &str) -> Vec<(String, String, String)> {
    s.group_filters(dataset_group)
        .await
        .unwrap()
        .into_iter()
        .inspect(|f| assert_eq!(f.dataset_group, dataset_group))
        .map(|f| (f.name, f.pipeline, f.expression))
        .collect()
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

async fn pipelines_register_with_their_filters(s: &dyn StateStore) {
    assert!(s.list_pipelines().await.unwrap().is_empty());
    assert!(s.get_pipeline("p").await.unwrap().is_none());
    let unwatched = r#"EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")"#;
    let genre = "INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)";
    let p = registration("p", "g", &[("unwatched", unwatched), ("genre", genre)]);
    s.upsert_pipeline(&p).await.unwrap();
    s.upsert_pipeline(&registration("q", "g", &[("cheap", "C")]))
        .await
        .unwrap();
    // Another group may use the same name.
    s.upsert_pipeline(&registration("r", "h", &[("genre", "R")]))
        .await
        .unwrap();
    assert_eq!(
        filters_of(s, "g").await,
        triples(&[
            ("cheap", "q", "C"),
            ("genre", "p", genre),
            ("unwatched", "p", unwatched)
        ])
    );
    let before = s.group_filters("g").await.unwrap();

    // Registering again replaces the pipeline's filters: one dropped, one
    // changed, one added; the other pipeline's stay.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let p = registration("p", "g", &[("genre", "CHANGED"), ("new", "N")]);
    s.upsert_pipeline(&p).await.unwrap();
    assert_eq!(
        filters_of(s, "g").await,
        triples(&[
            ("cheap", "q", "C"),
            ("genre", "p", "CHANGED"),
            ("new", "p", "N")
        ])
    );
    let after = s.group_filters("g").await.unwrap();
    assert_eq!(after[0], before[0], "q's filter is untouched");
    assert!(after[1].updated_at > before[1].updated_at);

    let listed = s.list_pipelines().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["p", "q", "r"]);
    assert_eq!(
        (listed[0].dataset_group.as_str(), listed[0].file.as_str()),
        ("g", "p.yaml")
    );
    assert!(listed.iter().all(|p| !p.paused));
    let (record, spec) = s.get_pipeline("p").await.unwrap().unwrap();
    assert_eq!((record.name.as_str(), spec.as_str()), ("p", "name: p"));

    // A paused pipeline stays paused when it is registered again.
    let paused = s.set_pipeline_paused("p", true).await.unwrap();
    assert!(paused.paused && paused.name == "p" && paused.dataset_group == "g");
    s.upsert_pipeline(&p).await.unwrap();
    assert!(s.get_pipeline("p").await.unwrap().unwrap().0.paused);
    let listed = s.list_pipelines().await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.paused).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert!(!s.set_pipeline_paused("p", false).await.unwrap().paused);
    assert!(!s.get_pipeline("p").await.unwrap().unwrap().0.paused);
    assert!(matches!(
        s.set_pipeline_paused("nope", true).await,
        Err(StoreError::NotFound { .. })
    ));

    // A pipeline that moves to another group takes its filters along.
    s.upsert_pipeline(&registration("q", "h", &[("cheap", "C")]))
        .await
        .unwrap();
    assert_eq!(
        filters_of(s, "g").await,
        triples(&[("genre", "p", "CHANGED"), ("new", "p", "N")])
    );
    assert_eq!(
        filters_of(s, "h").await,
        triples(&[("cheap", "q", "C"), ("genre", "r", "R")])
    );
    assert!(s.group_filters("none").await.unwrap().is_empty());
}

async fn a_filter_name_belongs_to_one_pipeline_of_its_group(s: &dyn StateStore) {
    s.upsert_pipeline(&registration("a", "g", &[("f", "A")]))
        .await
        .unwrap();
    let err = s
        .upsert_pipeline(&registration("b", "g", &[("e", "E"), ("f", "B")]))
        .await
        .unwrap_err();
    match &err {
        StoreError::FilterConflict {
            dataset_group,
            filter,
            pipeline,
            other,
        } => assert_eq!(
            [dataset_group, filter, pipeline, other],
            ["g", "f", "b", "a"]
        ),
        other => panic!("{other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(r#"pipeline "a""#) && message.contains(r#"pipeline "b""#),
        "{message}"
    );
    // The registration failed as a whole: neither the pipeline nor its
    // other filter was recorded.
    assert!(s.get_pipeline("b").await.unwrap().is_none());
    assert_eq!(filters_of(s, "g").await, triples(&[("f", "a", "A")]));

    // So does a registration that would change a known pipeline.
    let mut changed = registration("a", "g", &[("f", "A2")]);
    changed.spec = "name: a # changed".into();
    s.upsert_pipeline(&registration("c", "g", &[("x", "X")]))
        .await
        .unwrap();
    changed.filters.push(("x".into(), "mine".into()));
    assert!(matches!(
        s.upsert_pipeline(&changed).await,
        Err(StoreError::FilterConflict { .. })
    ));
    assert_eq!(s.get_pipeline("a").await.unwrap().unwrap().1, "name: a");
    assert_eq!(
        filters_of(s, "g").await,
        triples(&[("f", "a", "A"), ("x", "c", "X")])
    );

    // Once `a` no longer declares it, `b` may.
    s.upsert_pipeline(&registration("a", "g", &[]))
        .await
        .unwrap();
    s.upsert_pipeline(&registration("b", "g", &[("e", "E"), ("f", "B")]))
        .await
        .unwrap();
    assert_eq!(
        filters_of(s, "g").await,
        triples(&[("e", "b", "E"), ("f", "b", "B"), ("x", "c", "X")])
    );
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
        trigger_info: None,
        trigger_key: None,
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
    assert_eq!(attempts[0].log, "line\n");
    assert_eq!(s.get_attempt(a.id).await.unwrap().log, "line\n");
    s.reopen_run(run).await.unwrap();
    let reopened = s.get_run(run).await.unwrap();
    assert_eq!(
        (reopened.status, reopened.finished_at, reopened.error),
        (RunStatus::Running, None, None)
    );
    assert_eq!(
        s.list_attempts(run).await.unwrap().len(),
        1,
        "the step that did not run is decided again"
    );
    s.finish_run(run, RunStatus::Succeeded, None).await.unwrap();
    for missing in [
        s.get_run(run + 1000).await.err(),
        s.reopen_run(run + 1000).await.err(),
        s.run_spec(run + 1000).await.err(),
        s.get_attempt(a.id + 1000).await.err(),
    ] {
        assert!(
            matches!(missing, Some(StoreError::NotFound { .. })),
            "{missing:?}"
        );
    }
}

async fn mapped_instances_are_queued_whole_and_once(s: &dyn StateStore) {
    let t = Utc::now();
    let run = s
        .create_run(&new_run("mapped", "cli", t, 2))
        .await
        .unwrap()
        .unwrap();
    s.start_run(run, None).await.unwrap();
    // More instances than one INSERT writes.
    let items: Vec<(i64, serde_json::Value)> = (0..1_200)
        .map(|i| (i, serde_json::json!({"market": format!("m{i}")})))
        .collect();
    assert_eq!(
        s.queue_instances(run, "fan", "shell", 1, t, &items)
            .await
            .unwrap(),
        1_200
    );
    assert_eq!(
        s.queue_instances(run, "fan", "shell", 1, t, &items)
            .await
            .unwrap(),
        0,
        "expanded twice"
    );
    // An unmapped step of the same id space does not collide.
    assert!(s.queue_attempt(run, "fan", "shell", 1, t).await.unwrap());
    let all = s.list_attempts(run).await.unwrap();
    assert_eq!(all.len(), 1_201);
    assert_eq!(all[7].map_index, Some(7));
    assert_eq!(all[7].map_item, Some(serde_json::json!({"market": "m7"})));
    assert_eq!(all[1_200].map_index, None);
    assert_eq!(all[1_200].map_item, None);
    // Claimed within max_parallel_steps (2), like any attempt.
    let a = s.claim_attempt("w", Some(run)).await.unwrap().unwrap();
    let b = s.claim_attempt("w", Some(run)).await.unwrap().unwrap();
    assert!(s.claim_attempt("w", Some(run)).await.unwrap().is_none());
    assert_eq!((a.map_index, b.map_index), (Some(0), Some(1)));
    s.finish_attempt(a.id, StepStatus::Failed, &AttemptEnd::default(), false)
        .await
        .unwrap();
    // A retry of one instance (due before the others, so claimed next).
    assert_eq!(
        s.queue_instances(
            run,
            "fan",
            "shell",
            2,
            t - chrono::Duration::seconds(1),
            &[(0, serde_json::json!({"market": "m0"}))]
        )
        .await
        .unwrap(),
        1
    );
    let retry = s.claim_attempt("w", Some(run)).await.unwrap().unwrap();
    assert_eq!((retry.map_index, retry.attempt), (Some(0), 2));
    assert_eq!(retry.map_item, Some(serde_json::json!({"market": "m0"})));
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
    let queued = s.runs_with_status(&[RunStatus::Queued]).await.unwrap();
    let triggers: Vec<&str> = queued.iter().map(|r| r.trigger.as_str()).collect();
    assert_eq!(triggers, ["schedule", "api", "api"], "oldest first");
    s.start_run(queued[1].id, None).await.unwrap();
    s.finish_run(queued[2].id, RunStatus::Failed, None)
        .await
        .unwrap();
    let ids = |runs: Vec<RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .runs_with_status(&[RunStatus::Running, RunStatus::Queued])
            .await
            .unwrap()),
        [queued[0].id, queued[1].id]
    );
    assert!(
        s.runs_with_status(&[RunStatus::Succeeded])
            .await
            .unwrap()
            .is_empty()
    );
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

/// Queues `attempts` attempts of a new running run that may run `parallel`
/// of them at once.
async fn running_run(s: &dyn StateStore, attempts: usize, parallel: i64) -> i64 {
    let now = Utc::now();
    let run = s
        .create_run(&new_run("race", "api", now, parallel))
        .await
        .unwrap()
        .unwrap();
    for i in 0..attempts {
        s.queue_attempt(run, &format!("s{i}"), "noop", 1, now)
            .await
            .unwrap();
    }
    assert!(s.start_run(run, None).await.unwrap());
    run
}

/// Two workers claim (and never finish) attempts at the same time until
/// none is left for them; returns the ids each one got.
async fn race(s: &dyn StateStore) -> Vec<Vec<i64>> {
    join_all(["w1", "w2"].map(async |worker| {
        let mut ids = Vec::new();
        while let Some(a) = s.claim_attempt(worker, None).await.unwrap() {
            ids.push(a.id);
        }
        ids
    }))
    .await
}

async fn concurrent_claims_take_each_attempt_once_within_max_parallel_steps(s: &dyn StateStore) {
    let wide = running_run(s, 50, 50).await;
    let got = race(s).await;
    let mut claimed: Vec<i64> = got.concat();
    claimed.sort();
    claimed.dedup();
    assert_eq!(
        claimed.len(),
        got[0].len() + got[1].len(),
        "claimed twice: {got:?}"
    );
    let queued: Vec<i64> = s
        .list_attempts(wide)
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(claimed, queued, "every attempt is claimed");
    s.finish_run(wide, RunStatus::Cancelled, None)
        .await
        .unwrap();

    // Narrow runs: the two workers together start only 3 of each. (A few
    // runs, as an overshoot needs both to count at once.)
    for _ in 0..10 {
        let narrow = running_run(s, 20, 3).await;
        let got = race(s).await;
        assert_eq!(got[0].len() + got[1].len(), 3, "{got:?}");
        let attempts = s.list_attempts(narrow).await.unwrap();
        let running = attempts
            .iter()
            .filter(|x| x.status == StepStatus::Running)
            .count();
        assert_eq!(running, 3);
        s.finish_run(narrow, RunStatus::Cancelled, None)
            .await
            .unwrap();
    }
}

async fn runs_are_listed_newest_first_by_query(s: &dyn StateStore) {
    // Three runs of `a` and two of `b` in two batches, apart in time, in
    // several states.
    let create = async |pipeline: &str, status: RunStatus| {
        let run = NewRun {
            status,
            ..new_run(pipeline, "api", Utc::now(), 1)
        };
        s.create_run(&run).await.unwrap().unwrap()
    };
    let gap = || tokio::time::sleep(Duration::from_millis(20));
    let t0 = Utc::now();
    gap().await;
    let a1 = create("a", RunStatus::Queued).await;
    let a2 = create("a", RunStatus::Queued).await;
    gap().await;
    let t1 = Utc::now();
    gap().await;
    let b1 = create("b", RunStatus::Queued).await;
    let a3 = create("a", RunStatus::Queued).await;
    let b2 = create("b", RunStatus::Skipped).await;
    s.start_run(a1, None).await.unwrap();
    s.finish_run(a1, RunStatus::Succeeded, None).await.unwrap();
    s.finish_run(a2, RunStatus::Failed, Some("x"))
        .await
        .unwrap();
    s.start_run(b1, None).await.unwrap();

    let list = async |query: RunQuery| -> Vec<i64> {
        let runs = s.list_runs(&query).await.unwrap();
        runs.iter().map(|r| r.id).collect()
    };
    assert_eq!(list(RunQuery::newest(10)).await, [b2, a3, b1, a2, a1]);
    assert_eq!(list(RunQuery::newest(2)).await, [b2, a3]);
    assert!(list(RunQuery::newest(0)).await.is_empty());
    let of_a = || RunQuery {
        pipeline: Some("a".into()),
        ..RunQuery::newest(10)
    };
    assert_eq!(list(of_a()).await, [a3, a2, a1]);
    let in_states = |statuses: &[RunStatus]| RunQuery {
        statuses: statuses.to_vec(),
        ..RunQuery::newest(10)
    };
    assert_eq!(
        list(in_states(&[RunStatus::Failed, RunStatus::Queued])).await,
        [a3, a2]
    );
    assert_eq!(list(in_states(&[RunStatus::Running])).await, [b1]);
    assert_eq!(list(in_states(&[RunStatus::Skipped])).await, [b2]);
    assert!(list(in_states(&[RunStatus::Cancelled])).await.is_empty());
    let between = |after: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>| RunQuery {
        created_after: after,
        created_before: before,
        ..RunQuery::newest(10)
    };
    assert_eq!(list(between(Some(t1), None)).await, [b2, a3, b1]);
    assert_eq!(list(between(None, Some(t1))).await, [a2, a1]);
    assert_eq!(list(between(Some(t0), Some(t1))).await, [a2, a1]);
    assert!(list(between(Some(t1), Some(t0))).await.is_empty());
    assert_eq!(
        list(RunQuery {
            created_after: Some(t1),
            ..of_a()
        })
        .await,
        [a3]
    );
    assert_eq!(
        list(RunQuery {
            statuses: vec![RunStatus::Succeeded, RunStatus::Queued],
            ..of_a()
        })
        .await,
        [a3, a1]
    );

    // Pages: each page's last id is the next page's cursor.
    let mut pages = Vec::new();
    let mut cursor = None;
    // A few pages at most: a cursor that did not move would page forever.
    for _ in 0..5 {
        let page = list(RunQuery {
            before_id: cursor,
            ..RunQuery::newest(2)
        })
        .await;
        let Some(&last) = page.last() else { break };
        cursor = Some(last);
        pages.push(page);
    }
    assert_eq!(pages, [vec![b2, a3], vec![b1, a2], vec![a1]]);
    assert_eq!(
        list(RunQuery {
            before_id: Some(a3),
            ..of_a()
        })
        .await,
        [a2, a1]
    );

    let runs = s.list_runs(&RunQuery::newest(1)).await.unwrap();
    assert_eq!(
        (runs[0].pipeline.as_str(), runs[0].status),
        ("b", RunStatus::Skipped)
    );
}

async fn attempts_of_several_runs_come_in_one_call(s: &dyn StateStore) {
    let t = Utc::now();
    let run = async || {
        s.create_run(&new_run("grid", "api", t, 4))
            .await
            .unwrap()
            .unwrap()
    };
    let (r1, r2, r3) = (run().await, run().await, run().await);
    for (r, step) in [(r2, "import"), (r1, "import"), (r1, "train"), (r2, "train")] {
        s.queue_attempt(r, step, "noop", 1, t).await.unwrap();
    }
    s.skip_step(r1, "deploy", "deploy", StepStatus::Skipped, "not needed")
        .await
        .unwrap();
    let listed = |runs: Vec<AttemptRecord>| {
        runs.iter()
            .map(|a| (a.run_id, a.step_id.clone()))
            .collect::<Vec<_>>()
    };
    let both = s.list_attempts_of_runs(&[r2, r1, r3]).await.unwrap();
    assert_eq!(
        listed(both.clone()),
        [
            (r1, "import".to_string()),
            (r1, "train".to_string()),
            (r1, "deploy".to_string()),
            (r2, "import".to_string()),
            (r2, "train".to_string())
        ]
    );
    let of_r1 = s.list_attempts(r1).await.unwrap();
    assert_eq!(listed(of_r1), listed(both[..3].to_vec()));
    assert_eq!(s.list_attempts_of_runs(&[r2]).await.unwrap().len(), 2);
    assert!(s.list_attempts_of_runs(&[r3]).await.unwrap().is_empty());
    assert!(s.list_attempts_of_runs(&[]).await.unwrap().is_empty());
}

async fn attempt_logs_grow_while_the_attempt_runs(s: &dyn StateStore) {
    let t = Utc::now();
    let run = s
        .create_run(&new_run("logs", "api", t, 4))
        .await
        .unwrap()
        .unwrap();
    s.queue_attempt(run, "a", "noop", 1, t).await.unwrap();
    s.queue_attempt(run, "b", "noop", 1, t).await.unwrap();
    s.start_run(run, None).await.unwrap();
    let a = s.claim_attempt("w", Some(run)).await.unwrap().unwrap();
    let b = s.get_attempt(a.id + 1).await.unwrap();
    assert_eq!((b.step_id.as_str(), b.status), ("b", StepStatus::Queued));
    assert!(
        !s.append_attempt_log(b.id, "early\n").await.unwrap(),
        "a queued attempt has no log yet"
    );
    assert!(s.append_attempt_log(a.id, "one\n").await.unwrap());
    assert!(s.append_attempt_log(a.id, "two ünïcode\n").await.unwrap());
    assert_eq!(s.get_attempt(a.id).await.unwrap().log, "one\ntwo ünïcode\n");
    // The end's log comes after what was appended.
    let end = AttemptEnd {
        log: "done\n".into(),
        ..Default::default()
    };
    assert!(
        s.finish_attempt(a.id, StepStatus::Succeeded, &end, false)
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_attempt(a.id).await.unwrap().log,
        "one\ntwo ünïcode\ndone\n"
    );
    assert!(!s.append_attempt_log(a.id, "late\n").await.unwrap());
    assert!(!s.append_attempt_log(a.id + 1000, "none\n").await.unwrap());
    assert_eq!(
        s.get_attempt(a.id).await.unwrap().log,
        "one\ntwo ünïcode\ndone\n"
    );
    assert_eq!(s.get_attempt(b.id).await.unwrap().log, "");
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
    // The cutoff is taken before w1's last beat, so however slow the store
    // is to answer, w1's beat is after it and w2's claim well before.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = Utc::now() - chrono::Duration::milliseconds(10);
    s.heartbeat("w1", &[a.id]).await.unwrap();
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

async fn a_trigger_key_starts_one_run(s: &dyn StateStore) {
    let t = Utc::now();
    let run = |key: &str| NewRun {
        trigger_info: Some(serde_json::json!({"type": "object", "object": key})),
        trigger_key: Some(key.to_string()),
        ..new_run("watch", "object", t, 1)
    };
    let (a, b) = (run("s3://b/in/a.csv"), run("s3://b/in/a.csv"));
    let both = join_all([s.create_run(&a), s.create_run(&b)]).await;
    let ids: Vec<i64> = both.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(ids.len(), 1, "two racing pollers start one run");
    let got = s.get_run(ids[0]).await.unwrap();
    assert_eq!(
        got.trigger_info,
        Some(serde_json::json!({"type": "object", "object": "s3://b/in/a.csv"}))
    );
    assert!(
        s.create_run(&run("s3://b/in/b.csv"))
            .await
            .unwrap()
            .is_some()
    );
    // Another pipeline may be started by the same object; runs without a key are not limited.
    let other = NewRun {
        pipeline: "other".into(),
        ..run("s3://b/in/a.csv")
    };
    assert!(s.create_run(&other).await.unwrap().is_some());
    assert!(
        s.create_run(&new_run("watch", "api", t, 1))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.create_run(&new_run("watch", "api", t, 1))
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(s.trigger_cursor("watch on object").await.unwrap(), None);
    let c = serde_json::json!({"modified": "2026-01-01T00:00:00Z"});
    s.set_trigger_cursor("watch on object", &c).await.unwrap();
    s.set_trigger_cursor("watch on object", &c).await.unwrap();
    assert_eq!(s.trigger_cursor("watch on object").await.unwrap(), Some(c));
}

async fn sla_misses_are_recorded_once(s: &dyn StateStore) {
    let run = running_run(s, 1, 1).await;
    assert!(s.list_sla_misses(run).await.unwrap().is_empty());
    let both = join_all([
        s.record_sla_miss(run, None, "2h"),
        s.record_sla_miss(run, None, "2h"),
    ])
    .await;
    assert_eq!(
        both.into_iter().filter(|r| *r.as_ref().unwrap()).count(),
        1,
        "one of two racing recorders records the miss"
    );
    assert!(s.record_sla_miss(run, Some("s0"), "1s").await.unwrap());
    assert!(!s.record_sla_miss(run, Some("s0"), "1s").await.unwrap());
    let misses = s.list_sla_misses(run).await.unwrap();
    let got: Vec<(Option<&str>, &str)> = misses
        .iter()
        .map(|m| (m.step_id.as_deref(), m.sla.as_str()))
        .collect();
    assert_eq!(got, [(None, "2h"), (Some("s0"), "1s")]);
}

async fn versions_are_numbered_per_owner_and_only_active_ones_are_latest(s: &dyn StateStore) {
    let k = VersionKind::Dataset;
    let create = async |kind, owner: &str, prefix: &str| {
        s.create_version(kind, owner, Some(7), Some("import"), prefix)
            .await
            .unwrap()
    };
    assert_eq!(create(k, "g/interactions", "w/d").await, 1);
    assert_eq!(create(k, "g/interactions", "w/d/").await, 2);
    assert_eq!(create(k, "g/items", "w/i").await, 1);
    assert_eq!(create(VersionKind::Solution, "g/items", "w/s").await, 1);
    assert!(
        s.latest_active_version(k, "g/interactions")
            .await
            .unwrap()
            .is_none()
    );
    let v1 = s.get_version(k, "g/interactions", 1).await.unwrap();
    assert_eq!(
        (v1.status, v1.run_id, v1.step_id.as_deref(), v1.manifest),
        (VersionStatus::Creating, Some(7), Some("import"), None)
    );
    s.activate_version(k, "g/interactions", 1, &serde_json::json!({"rows": 5}))
        .await
        .unwrap();
    s.fail_version(k, "g/interactions", 2, "boom")
        .await
        .unwrap();
    let latest = s
        .latest_active_version(k, "g/interactions")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((latest.version, latest.location.as_str()), (1, "w/d/v1"));
    assert_eq!(latest.manifest.unwrap()["rows"], 5);
    assert!(latest.finished_at.is_some());
    let v2 = s.get_version(k, "g/interactions", 2).await.unwrap();
    assert_eq!(
        (v2.status, v2.error.as_deref(), v2.location.as_str()),
        (VersionStatus::Failed, Some("boom"), "w/d/v2")
    );

    let listed = |versions: Vec<VersionRecord>| {
        versions
            .iter()
            .map(|v| (v.owner.clone(), v.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(s.list_versions(&VersionQuery::all(k, None)).await.unwrap()),
        [
            ("g/interactions".to_string(), 2),
            ("g/interactions".to_string(), 1),
            ("g/items".to_string(), 1)
        ]
    );
    assert_eq!(
        listed(
            s.list_versions(&VersionQuery::all(k, Some("g/items")))
                .await
                .unwrap()
        ),
        [("g/items".to_string(), 1)]
    );
    // Pages of two, each starting after the last of the one before.
    let page = |after| VersionQuery {
        after,
        limit: 2,
        ..VersionQuery::all(k, None)
    };
    assert_eq!(
        listed(s.list_versions(&page(None)).await.unwrap()),
        [
            ("g/interactions".to_string(), 2),
            ("g/interactions".to_string(), 1)
        ]
    );
    assert_eq!(
        listed(
            s.list_versions(&page(Some(("g/interactions", 1))))
                .await
                .unwrap()
        ),
        [("g/items".to_string(), 1)]
    );
    assert_eq!(
        listed(
            s.list_versions(&page(Some(("g/interactions", 2))))
                .await
                .unwrap()
        ),
        [
            ("g/interactions".to_string(), 1),
            ("g/items".to_string(), 1)
        ]
    );
    assert_eq!(
        s.list_versions(&VersionQuery::all(VersionKind::Predictor, None))
            .await
            .unwrap()
            .len(),
        0
    );
    assert!(matches!(
        s.activate_version(k, "g/interactions", 9, &serde_json::json!({}))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_version(k, "g/users", 1).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn versions_move_between_statuses_once(s: &dyn StateStore) {
    let k = VersionKind::Solution;
    for _ in 0..2 {
        s.create_version(k, "sims", None, None, "w/m")
            .await
            .unwrap();
    }
    s.activate_version(k, "sims", 1, &serde_json::json!({}))
        .await
        .unwrap();
    s.activate_version(k, "sims", 2, &serde_json::json!({}))
        .await
        .unwrap();
    let (from, to) = (VersionStatus::Active, VersionStatus::Deleting);
    assert!(s.move_version(k, "sims", 2, from, to).await.unwrap());
    // The second of two prunes finds it moved already.
    assert!(!s.move_version(k, "sims", 2, from, to).await.unwrap());
    assert!(!s.move_version(k, "sims", 9, from, to).await.unwrap());
    assert_eq!(
        s.get_version(k, "sims", 2).await.unwrap().status,
        VersionStatus::Deleting
    );
    // A version being deleted is never the latest active one.
    let latest = s.latest_active_version(k, "sims").await.unwrap().unwrap();
    assert_eq!(latest.version, 1);
    assert!(
        s.move_version(k, "sims", 2, to, VersionStatus::Deleted)
            .await
            .unwrap()
    );
    // Numbers are never reused after a deletion.
    assert_eq!(
        s.create_version(k, "sims", None, None, "w/m")
            .await
            .unwrap(),
        3
    );
}

async fn concurrent_publishing_numbers_versions_consecutively(s: &dyn StateStore) {
    let k = VersionKind::Solution;
    let publish = async |owner: &str| s.create_version(k, owner, None, None, "w/s").await.unwrap();
    let mut numbers = join_all((0..40).map(|_| publish("recs"))).await;
    numbers.sort();
    assert_eq!(numbers, (1..=40).collect::<Vec<i64>>());
    let listed = s
        .list_versions(&VersionQuery::all(k, Some("recs")))
        .await
        .unwrap();
    assert_eq!(listed.len(), 40);
    assert!(
        listed
            .iter()
            .all(|v| v.location == format!("w/s/v{}", v.version))
    );
}

/// Publishes active versions 1..=n of solution `owner` (campaigns point
/// only at active versions).
async fn active_solution_versions(s: &dyn StateStore, owner: &str, n: i64) {
    let k = VersionKind::Solution;
    for v in 1..=n {
        assert_eq!(
            s.create_version(k, owner, None, None, "w/s").await.unwrap(),
            v
        );
        s.activate_version(k, owner, v, &serde_json::json!({}))
            .await
            .unwrap();
    }
}

async fn campaigns_remember_the_version_they_replaced(s: &dyn StateStore) {
    let cfg = serde_json::json!({"minProvisionedTPS": 1});
    active_solution_versions(s, "sol", 2).await;
    active_solution_versions(s, "other", 5).await;
    assert_eq!(
        s.deploy_campaign("c", "g", "sol", 1, &cfg, Some(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.deploy_campaign("c", "g", "sol", 2, &cfg, Some(2))
            .await
            .unwrap(),
        Some(1)
    );
    let c = s.get_campaign("c").await.unwrap();
    assert_eq!(
        (c.solution_version, c.previous_version, c.config.clone()),
        (2, Some(1), cfg.clone())
    );
    // A rollback.
    let c = s.set_campaign_version("c", 1).await.unwrap();
    assert_eq!(
        (c.solution_version, c.previous_version, c.solution.as_str()),
        (1, Some(2), "sol")
    );
    assert_eq!(c.config, cfg);
    let deployed: Vec<(i64, Option<i64>)> = s
        .list_deployments("c")
        .await
        .unwrap()
        .iter()
        .map(|d| (d.solution_version, d.run_id))
        .collect();
    assert_eq!(deployed, [(1, None), (2, Some(2)), (1, Some(1))]);
    s.deploy_campaign("b", "g", "other", 5, &cfg, None)
        .await
        .unwrap();
    let names: Vec<String> = s
        .list_campaigns()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert!(s.list_deployments("none").await.unwrap().is_empty());
    assert!(matches!(
        s.get_campaign("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.set_campaign_version("nope", 1).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn concurrent_campaign_moves_each_record_the_version_they_replaced(s: &dyn StateStore) {
    let cfg = serde_json::json!({});
    active_solution_versions(s, "sol", 100).await;
    s.deploy_campaign("c", "g", "sol", 100, &cfg, None)
        .await
        .unwrap();
    let moves = join_all((1..=16).map(|v| s.set_campaign_version("c", v))).await;
    let moves: Vec<CampaignRecord> = moves.into_iter().map(Result::unwrap).collect();
    // Every move is recorded, in the order the moves committed, and each
    // replaced the version the one before it set.
    let mut order: Vec<i64> = s
        .list_deployments("c")
        .await
        .unwrap()
        .iter()
        .map(|d| d.solution_version)
        .collect();
    order.reverse();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (1..=16).chain([100]).collect::<Vec<i64>>(),
        "{order:?}"
    );
    assert_eq!(order[0], 100);
    for pair in order.windows(2) {
        let m = moves
            .iter()
            .find(|m| m.solution_version == pair[1])
            .unwrap();
        assert_eq!(
            m.previous_version,
            Some(pair[0]),
            "moves in order {order:?}"
        );
    }
    let c = s.get_campaign("c").await.unwrap();
    assert_eq!(
        (c.solution_version, c.previous_version),
        (order[16], Some(order[15]))
    );
}

/// A prune marks a version `deleting`, then re-reads what campaigns serve.
/// A campaign move to that version either fails (it came after the mark)
/// or is seen by the re-read (it came before), never neither.
async fn campaigns_never_move_to_a_version_being_deleted(s: &dyn StateStore) {
    let k = VersionKind::Solution;
    let cfg = serde_json::json!({});
    active_solution_versions(s, "sol", 2).await;
    s.deploy_campaign("c", "g", "sol", 2, &cfg, None)
        .await
        .unwrap();
    let (active, deleting) = (VersionStatus::Active, VersionStatus::Deleting);
    assert!(s.move_version(k, "sol", 1, active, deleting).await.unwrap());
    let err = s.set_campaign_version("c", 1).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NotActive { status, .. } if status == "deleting"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "solution version sol v1 is deleting, not active"
    );
    assert!(matches!(
        s.deploy_campaign("c", "g", "sol", 1, &cfg, None).await,
        Err(StoreError::NotActive { .. })
    ));
    assert!(matches!(
        s.set_campaign_version("c", 7).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.get_campaign("c").await.unwrap().solution_version, 2);
    assert_eq!(s.list_deployments("c").await.unwrap().len(), 1);

    // The race itself, many times: a move to v1 against a prune's mark of
    // v1 followed by its re-read of the campaign.
    assert!(s.move_version(k, "sol", 1, deleting, active).await.unwrap());
    for _ in 0..30 {
        let moved = async { s.set_campaign_version("c", 1).await.is_ok() };
        let prune = async {
            let marked = s.move_version(k, "sol", 1, active, deleting).await.unwrap();
            let seen = s.get_campaign("c").await.unwrap().solution_version == 1;
            (marked, seen)
        };
        let (moved, (marked, seen)) = tokio::join!(moved, prune);
        assert!(
            !(moved && marked && !seen),
            "the campaign moved to v1 after the prune marked it and re-read the campaign"
        );
        // Back to the start.
        if marked {
            s.move_version(k, "sol", 1, deleting, active).await.unwrap();
        }
        s.set_campaign_version("c", 2).await.unwrap();
    }
}

async fn event_trackers_are_generated_once_or_declared(s: &dyn StateStore) {
    let generated = s.event_tracker("ml").await.unwrap();
    assert_eq!(s.event_tracker("ml").await.unwrap(), generated);
    assert_eq!(
        s.tracker_group(&generated).await.unwrap().as_deref(),
        Some("ml")
    );
    s.set_event_tracker("ml", "ml-events").await.unwrap();
    assert_eq!(s.event_tracker("ml").await.unwrap(), "ml-events");
    assert_eq!(s.tracker_group(&generated).await.unwrap(), None);
    s.set_event_tracker("ml", "ml-events").await.unwrap();
    let err = s.set_event_tracker("other", "ml-events").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("already belongs to dataset group ml"),
        "{err}"
    );
}

async fn events_and_put_records_round_trip(s: &dyn StateStore) {
    let event = |group: &str, session: &str| EventRecord {
        id: 0,
        dataset_group: group.into(),
        user_id: Some("u".into()),
        session_id: session.into(),
        event_type: "click".into(),
        item_id: Some("i".into()),
        event_value: Some(0.5),
        sent_at: 1_700_000_000,
        recommendation_id: None,
        impression: Some("a|b".into()),
        properties: Some("{}".into()),
    };
    let anonymous = EventRecord {
        user_id: None,
        item_id: None,
        event_value: None,
        impression: None,
        properties: None,
        recommendation_id: Some("rid".into()),
        ..event("g", "s3")
    };
    s.insert_events(&[event("g", "s1"), event("h", "x"), event("g", "s2")])
        .await
        .unwrap();
    s.insert_events(std::slice::from_ref(&anonymous))
        .await
        .unwrap();
    s.insert_events(&[]).await.unwrap();
    let events = all_events(s, "g", 0).await.unwrap();
    let sessions: Vec<&str> = events.iter().map(|e| e.session_id.as_str()).collect();
    assert_eq!(sessions, ["s1", "s2", "s3"]);
    assert_eq!(
        events[1],
        EventRecord {
            id: events[1].id,
            ..event("g", "s2")
        }
    );
    assert_eq!(
        events[2],
        EventRecord {
            id: events[2].id,
            ..anonymous
        }
    );
    // Pages after an id.
    let page = s.list_events("g", events[0].id, 1).await.unwrap();
    assert_eq!(page, events[1..2]);
    assert_eq!(all_events(s, "g", events[1].id).await.unwrap(), events[2..]);
    assert_eq!(s.list_events("h", 0, 10).await.unwrap().len(), 1);

    for properties in [r#"{"a":1}"#, r#"{"a":2}"#] {
        s.put_records("g", "ITEMS", &[("i2".into(), properties.into())])
            .await
            .unwrap();
    }
    s.put_records("g", "ITEMS", &[("i1".into(), "{}".into())])
        .await
        .unwrap();
    s.put_records("g", "USERS", &[("u1".into(), "{}".into())])
        .await
        .unwrap();
    assert_eq!(
        s.list_put_records("g", "ITEMS").await.unwrap(),
        [
            ("i1".to_string(), "{}".to_string()),
            ("i2".to_string(), r#"{"a":2}"#.to_string())
        ]
    );
    assert_eq!(s.list_put_records("g", "USERS").await.unwrap().len(), 1);
    assert!(s.list_put_records("h", "ITEMS").await.unwrap().is_empty());
}

/// Not a test but a measurement, to rerun when run lists change: how long
/// each shape of `list_runs` takes with `RECFLOW_MEASURE_RUNS` runs (10,000
/// unless set) of seven pipelines, on both stores.
///
/// ```text
/// RECFLOW_MEASURE_RUNS=100000 cargo test --lib store::suite::measure -- --ignored --nocapture --test-threads=1
/// ```
async fn measure_run_lists(s: &dyn StateStore) {
    let n: usize = std::env::var("RECFLOW_MEASURE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // A pipeline file's size; one run in 13 failed; `rare` has one run in 5,000.
    let spec = "x".repeat(2000);
    let started = std::time::Instant::now();
    let t0 = Utc::now();
    let mut middle = t0;
    for chunk in 0..n / 100 {
        if chunk == n / 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            middle = Utc::now();
        }
        let runs: Vec<NewRun> = (0..100)
            .map(|i| {
                let pipeline = match (i, chunk % 50) {
                    (0, 0) => "rare".to_string(),
                    _ => format!("p{}", i % 7),
                };
                let status = match i % 13 {
                    0 => RunStatus::Failed,
                    _ => RunStatus::Queued,
                };
                NewRun {
                    spec: spec.clone(),
                    status,
                    ..new_run(&pipeline, "api", t0, 4)
                }
            })
            .collect();
        join_all(runs.iter().map(|r| s.create_run(r))).await;
    }
    let store = if s.describe().starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    eprintln!("{store}: {n} runs created in {:.1?}", started.elapsed());
    let recent = Utc::now() - chrono::Duration::milliseconds(1);
    let newest = || RunQuery::newest(25);
    let shapes = [
        ("newest (warms the cache)", newest()),
        ("newest", newest()),
        (
            "a page deep down",
            RunQuery {
                before_id: Some(100),
                ..newest()
            },
        ),
        (
            "pipeline rare",
            RunQuery {
                pipeline: Some("rare".into()),
                ..newest()
            },
        ),
        (
            "pipeline p1",
            RunQuery {
                pipeline: Some("p1".into()),
                ..newest()
            },
        ),
        (
            "status failed",
            RunQuery {
                statuses: vec![RunStatus::Failed],
                ..newest()
            },
        ),
        (
            "status queued (most)",
            RunQuery {
                statuses: vec![RunStatus::Queued],
                ..newest()
            },
        ),
        (
            "status running (none)",
            RunQuery {
                statuses: vec![RunStatus::Running],
                ..newest()
            },
        ),
        (
            "created after now (none)",
            RunQuery {
                created_after: Some(recent),
                ..newest()
            },
        ),
        (
            "created after the middle",
            RunQuery {
                created_after: Some(middle),
                ..newest()
            },
        ),
        (
            "created before the middle",
            RunQuery {
                created_before: Some(middle),
                ..newest()
            },
        ),
        (
            "created from the middle to now",
            RunQuery {
                created_after: Some(middle),
                created_before: Some(recent),
                ..newest()
            },
        ),
    ];
    for (label, query) in shapes {
        let start = std::time::Instant::now();
        let mut listed = 0;
        for _ in 0..5 {
            listed = s.list_runs(&query).await.unwrap().len();
        }
        eprintln!(
            "{store}: {label}: {listed} runs in {:.2?}",
            start.elapsed() / 5
        );
    }
}

mod measure {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement; see measure_run_lists"]
    async fn run_lists_on_sqlite() {
        super::on_sqlite(super::measure_run_lists).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement; see measure_run_lists"]
    async fn run_lists_on_postgres() {
        super::on_postgres(super::measure_run_lists).await
    }
}
