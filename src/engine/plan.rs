//! What happens next in a run, decided from its recorded attempts alone:
//! which steps to queue (first attempts and retries), which to record as
//! not run, and whether the run is over. Pure, so every process sharing a
//! state store reaches the same decisions, and the store's unique keys make
//! applying them twice harmless.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::pipeline::{PipelineSpec, TriggerRule};
use crate::store::{AttemptRecord, RunStatus, StepStatus};

/// Extra attempts granted for attempts lost to a crash or shutdown, on top
/// of the step's own retries (a step that kills its worker every time must
/// still end).
pub const MAX_INTERRUPTED_RETRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Active,
    Succeeded,
    /// Failed, with no retry left.
    Failed,
    Skipped,
    UpstreamFailed,
}

impl State {
    fn is_done(self) -> bool {
        !matches!(self, State::Pending | State::Active)
    }
    fn is_failure(self) -> bool {
        matches!(self, State::Failed | State::UpstreamFailed)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueStep {
    pub step_id: String,
    pub step_type: &'static str,
    pub attempt: i64,
    pub not_before: DateTime<Utc>,
    /// The instance of a mapped step, and its element.
    pub map_index: Option<i64>,
    pub map_item: Option<serde_json::Value>,
}

/// A mapped step whose dependencies are done: its list is to be evaluated
/// and its instances queued (or the step recorded as not run or failed).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandStep {
    pub step_id: String,
    pub step_type: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SkipStep {
    pub step_id: String,
    pub step_type: &'static str,
    pub status: StepStatus,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub queue: Vec<QueueStep>,
    pub expand: Vec<ExpandStep>,
    pub skip: Vec<SkipStep>,
    /// The run is over, with this status and error.
    pub finish: Option<(RunStatus, Option<String>)>,
}

/// Why a run is being stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopping {
    Cancelled,
    TimedOut(String),
}

/// Decides the next actions of a run. `unit()` gives numbers in [0, 1) for
/// retry jitter.
pub fn plan(
    spec: &PipelineSpec,
    attempts: &[AttemptRecord],
    stopping: Option<&Stopping>,
    now: DateTime<Utc>,
    unit: &mut dyn FnMut() -> f64,
) -> Plan {
    let mut by_step: HashMap<&str, Vec<&AttemptRecord>> = HashMap::new();
    for a in attempts {
        by_step.entry(a.step_id.as_str()).or_default().push(a);
    }
    let mut plan = Plan::default();
    let mut states: BTreeMap<&str, State> = BTreeMap::new();
    let mut first_failure: Option<String> = None;

    for step in &spec.steps {
        let id = step.id();
        let mine = by_step.remove(id).unwrap_or_default();
        let state = if step.for_each().is_none() {
            attempts_state(step, spec, mine, None, stopping, now, unit, &mut plan)
        } else {
            mapped_state(step, spec, mine, stopping, now, unit, &mut plan)
        };
        if let Some((State::Failed, message)) = &state
            && first_failure.is_none()
        {
            first_failure = Some(message.clone());
        }
        states.insert(id, state.map_or(State::Pending, |(s, _)| s));
    }

    // Decide pending steps until nothing changes: a step recorded as not
    // run settles the steps after it in the same pass.
    loop {
        let mut changed = false;
        for step in &spec.steps {
            let id = step.id();
            if states[id] != State::Pending {
                continue;
            }
            let skip = |status, reason: String| SkipStep {
                step_id: id.to_string(),
                step_type: step.kind.type_name(),
                status,
                reason,
            };
            if let Some(stop) = stopping {
                let reason = match stop {
                    Stopping::Cancelled => "not run: the run was cancelled".to_string(),
                    Stopping::TimedOut(why) => format!("not run: {why}"),
                };
                plan.skip.push(skip(StepStatus::Skipped, reason));
                states.insert(id, State::Skipped);
                changed = true;
                continue;
            }
            let deps: Vec<(&str, State)> = step
                .common
                .depends_on
                .iter()
                .map(|d| {
                    (
                        d.as_str(),
                        states.get(d.as_str()).copied().unwrap_or(State::Succeeded),
                    )
                })
                .collect();
            if !deps.iter().all(|(_, s)| s.is_done()) {
                continue;
            }
            let failed: Vec<&str> = deps
                .iter()
                .filter(|(_, s)| s.is_failure())
                .map(|(d, _)| *d)
                .collect();
            let not_ok: Vec<&str> = deps
                .iter()
                .filter(|(_, s)| *s != State::Succeeded)
                .map(|(d, _)| *d)
                .collect();
            let run_it = match step.common.trigger_rule {
                TriggerRule::AllSuccess => not_ok.is_empty(),
                TriggerRule::AllDone => true,
                TriggerRule::OneFailed => !failed.is_empty(),
            };
            if run_it {
                if step.for_each().is_some() {
                    plan.expand.push(ExpandStep {
                        step_id: id.to_string(),
                        step_type: step.kind.type_name(),
                    });
                } else {
                    plan.queue.push(QueueStep {
                        step_id: id.to_string(),
                        step_type: step.kind.type_name(),
                        attempt: 1,
                        not_before: now,
                        map_index: None,
                        map_item: None,
                    });
                }
                states.insert(id, State::Active);
            } else if step.common.trigger_rule == TriggerRule::AllSuccess && !failed.is_empty() {
                plan.skip.push(skip(
                    StepStatus::UpstreamFailed,
                    format!("not run: {} did not succeed", failed.join(", ")),
                ));
                states.insert(id, State::UpstreamFailed);
            } else {
                let reason = match step.common.trigger_rule {
                    TriggerRule::OneFailed => "not run: no step it depends on failed".to_string(),
                    _ => format!("not run: {} did not run", not_ok.join(", ")),
                };
                plan.skip.push(skip(StepStatus::Skipped, reason));
                states.insert(id, State::Skipped);
            }
            changed = true;
        }
        if !changed {
            break;
        }
    }

    if states.values().all(|s| s.is_done()) {
        plan.finish = Some(match stopping {
            Some(Stopping::Cancelled) => (RunStatus::Cancelled, Some("cancelled".to_string())),
            Some(Stopping::TimedOut(why)) => (RunStatus::Failed, Some(why.clone())),
            None => match first_failure {
                Some(e) => (RunStatus::Failed, Some(e)),
                None => (RunStatus::Succeeded, None),
            },
        });
    }
    plan
}

/// The state of a step that is not mapped, or of one instance of a mapped
/// step, from its attempts: `None` if it has none; with the failure message
/// when it failed for good. Queues a retry where one is due.
#[allow(clippy::too_many_arguments)]
fn attempts_state(
    step: &crate::pipeline::StepSpec,
    spec: &PipelineSpec,
    mut mine: Vec<&AttemptRecord>,
    map_index: Option<i64>,
    stopping: Option<&Stopping>,
    now: DateTime<Utc>,
    unit: &mut dyn FnMut() -> f64,
    plan: &mut Plan,
) -> Option<(State, String)> {
    let id = step.id();
    mine.sort_by_key(|a| a.attempt);
    let last = mine.last()?;
    let state = match last.status {
        StepStatus::Queued | StepStatus::Running => State::Active,
        StepStatus::Succeeded => State::Succeeded,
        StepStatus::Skipped => State::Skipped,
        StepStatus::UpstreamFailed => State::UpstreamFailed,
        StepStatus::Failed => {
            let policy = step.retry_policy(&spec.orchestration);
            let interrupted = mine.iter().filter(|a| a.interrupted).count() as u32;
            let budget = policy.retries + interrupted.min(MAX_INTERRUPTED_RETRIES);
            let used = (last.attempt - 1).max(0) as u32;
            // Attempt 0 of a mapped step records a list that could not be
            // expanded: there is nothing to retry.
            if stopping.is_none() && used < budget && last.attempt > 0 {
                // Interrupted attempts are retried at once; a step's
                // own failures back off exponentially.
                let failures = mine.iter().filter(|a| !a.interrupted).count() as u32;
                let not_before = if last.interrupted {
                    now
                } else {
                    let delay = policy.delay(failures, unit());
                    last.finished_at.unwrap_or(now)
                        + chrono::Duration::from_std(delay).unwrap_or_default()
                };
                plan.queue.push(QueueStep {
                    step_id: id.to_string(),
                    step_type: step.kind.type_name(),
                    attempt: last.attempt + 1,
                    not_before,
                    map_index,
                    map_item: last.map_item.clone(),
                });
                State::Active
            } else {
                let name = match map_index {
                    Some(i) => format!("{id}[{i}]"),
                    None => id.to_string(),
                };
                let why = last
                    .error
                    .as_deref()
                    .or(last.summary.as_deref())
                    .unwrap_or("no error recorded");
                return Some((State::Failed, format!("step {name} failed: {why}")));
            }
        }
    };
    Some((state, String::new()))
}

/// The state of a mapped step: pending until it expands; then active while
/// any instance is, failed if any instance failed for good, succeeded when
/// every instance did. A step that did not expand (not run, an empty list,
/// a list that could not be read) has one record without a map index.
fn mapped_state(
    step: &crate::pipeline::StepSpec,
    spec: &PipelineSpec,
    mine: Vec<&AttemptRecord>,
    stopping: Option<&Stopping>,
    now: DateTime<Utc>,
    unit: &mut dyn FnMut() -> f64,
    plan: &mut Plan,
) -> Option<(State, String)> {
    let mut instances: BTreeMap<i64, Vec<&AttemptRecord>> = BTreeMap::new();
    let mut record = Vec::new();
    for a in mine {
        match a.map_index {
            Some(i) => instances.entry(i).or_default().push(a),
            None => record.push(a),
        }
    }
    if instances.is_empty() {
        return attempts_state(step, spec, record, None, stopping, now, unit, plan);
    }
    let (mut active, mut failure, mut all_succeeded) = (false, None, true);
    for (i, attempts) in instances {
        match attempts_state(step, spec, attempts, Some(i), stopping, now, unit, plan) {
            Some((State::Active, _)) => active = true,
            Some((State::Succeeded, _)) => {}
            Some((State::Failed, message)) => {
                all_succeeded = false;
                failure.get_or_insert(message);
            }
            _ => all_succeeded = false,
        }
    }
    Some(if active {
        (State::Active, String::new())
    } else if let Some(message) = failure {
        (State::Failed, message)
    } else if all_succeeded {
        (State::Succeeded, String::new())
    } else {
        (
            State::Failed,
            format!("step {} failed: an instance did not run", step.id()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse_pipeline;

    fn spec(steps: &str) -> PipelineSpec {
        parse_pipeline(&format!("name: p\ndataset_group: g\nsteps:\n{steps}"))
            .unwrap()
            .0
    }

    fn attempt(step: &str, n: i64, status: StepStatus) -> AttemptRecord {
        let t = Utc::now();
        AttemptRecord {
            id: 0,
            run_id: 1,
            step_id: step.into(),
            step_type: "noop".into(),
            map_index: None,
            map_item: None,
            attempt: n,
            status,
            queued_at: t,
            not_before: t,
            started_at: Some(t),
            finished_at: Some(t),
            worker: None,
            heartbeat_at: None,
            interrupted: false,
            summary: None,
            outputs: serde_json::json!({}),
            error: Some("boom".into()),
            log: String::new(),
        }
    }

    fn queued(p: &Plan) -> Vec<(&str, i64)> {
        p.queue
            .iter()
            .map(|q| (q.step_id.as_str(), q.attempt))
            .collect()
    }

    fn skipped(p: &Plan) -> Vec<(&str, StepStatus)> {
        p.skip
            .iter()
            .map(|s| (s.step_id.as_str(), s.status))
            .collect()
    }

    const GRAPH: &str = "  - {id: a, type: noop}\n  - {id: b, type: noop}\n  - {id: c, type: noop, depends_on: [a, b]}\n  - {id: alert, type: noop, depends_on: [c], trigger_rule: one_failed}\n  - {id: cleanup, type: noop, depends_on: [c], trigger_rule: all_done}\n";

    #[test]
    fn independent_steps_are_queued_together_and_the_rest_waits() {
        let p = plan(&spec(GRAPH), &[], None, Utc::now(), &mut || 0.0);
        assert_eq!(queued(&p), [("a", 1), ("b", 1)]);
        assert!(p.skip.is_empty() && p.finish.is_none());
    }

    #[test]
    fn a_failure_skips_downstream_and_fires_one_failed_and_all_done() {
        let s = spec(GRAPH);
        let attempts = [
            attempt("a", 1, StepStatus::Failed),
            attempt("b", 1, StepStatus::Succeeded),
        ];
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert_eq!(skipped(&p), [("c", StepStatus::UpstreamFailed)]);
        assert_eq!(queued(&p), [("alert", 1), ("cleanup", 1)]);
        assert!(p.skip[0].reason.contains("a did not succeed"));
    }

    #[test]
    fn success_skips_one_failed_steps_and_finishes() {
        let s = spec(GRAPH);
        let mut attempts: Vec<_> = ["a", "b", "c", "cleanup"]
            .iter()
            .map(|x| attempt(x, 1, StepStatus::Succeeded))
            .collect();
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert_eq!(skipped(&p), [("alert", StepStatus::Skipped)]);
        assert_eq!(p.finish, Some((RunStatus::Succeeded, None)));
        attempts[0] = attempt("a", 1, StepStatus::Failed);
        attempts.remove(2);
        attempts.push(attempt("c", 0, StepStatus::UpstreamFailed));
        attempts.push(attempt("alert", 1, StepStatus::Succeeded));
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert_eq!(
            p.finish,
            Some((RunStatus::Failed, Some("step a failed: boom".into()))),
            "an alert does not hide the failure"
        );
    }

    #[test]
    fn retries_back_off_from_the_failure_and_stop_at_the_limit() {
        let s = spec("  - {id: a, type: noop, retries: 2, retry_delay: 10s}\n");
        let mut attempts = vec![attempt("a", 1, StepStatus::Failed)];
        let now = Utc::now();
        let p = plan(&s, &attempts, None, now, &mut || 0.0);
        assert_eq!(queued(&p), [("a", 2)]);
        let wait = p.queue[0].not_before - attempts[0].finished_at.unwrap();
        assert_eq!(wait.num_seconds(), 10);
        attempts.push(attempt("a", 2, StepStatus::Failed));
        let p = plan(&s, &attempts, None, now, &mut || 0.0);
        assert_eq!(queued(&p), [("a", 3)]);
        assert_eq!(
            (p.queue[0].not_before - attempts[1].finished_at.unwrap()).num_seconds(),
            20
        );
        attempts.push(attempt("a", 3, StepStatus::Failed));
        let p = plan(&s, &attempts, None, now, &mut || 0.0);
        assert!(p.queue.is_empty());
        assert_eq!(p.finish.unwrap().0, RunStatus::Failed);
    }

    #[test]
    fn interrupted_attempts_are_retried_at_once_whatever_the_policy() {
        let s = spec("  - {id: a, type: noop}\n");
        let mut lost = attempt("a", 1, StepStatus::Failed);
        lost.interrupted = true;
        let now = Utc::now();
        let p = plan(&s, &[lost], None, now, &mut || 0.0);
        assert_eq!(queued(&p), [("a", 2)]);
        assert_eq!(p.queue[0].not_before, now);
    }

    #[test]
    fn a_cancelled_run_skips_what_has_not_started_and_ends_when_nothing_runs() {
        let s = spec(GRAPH);
        let attempts = [attempt("a", 1, StepStatus::Running)];
        let p = plan(
            &s,
            &attempts,
            Some(&Stopping::Cancelled),
            Utc::now(),
            &mut || 0.0,
        );
        assert_eq!(p.skip.len(), 4);
        assert!(p.queue.is_empty() && p.finish.is_none(), "a still runs");
        let attempts = [attempt("a", 1, StepStatus::Failed)];
        let p = plan(
            &s,
            &attempts,
            Some(&Stopping::Cancelled),
            Utc::now(),
            &mut || 0.0,
        );
        assert!(p.queue.is_empty(), "no retry when cancelled");
        assert_eq!(p.finish.unwrap().0, RunStatus::Cancelled);
    }

    fn instance(step: &str, i: i64, n: i64, status: StepStatus) -> AttemptRecord {
        let mut a = attempt(step, n, status);
        a.map_index = Some(i);
        a.map_item = Some(serde_json::json!(format!("item{i}")));
        a
    }

    const MAPPED: &str = "  - {id: list, type: noop}\n  - {id: fan, type: noop, depends_on: [list], for_each: [a, b, c], retries: 1, retry_delay: 1s}\n  - {id: after, type: noop, depends_on: [fan]}\n";

    #[test]
    fn a_mapped_step_expands_once_its_dependencies_are_done() {
        let s = spec(MAPPED);
        let p = plan(&s, &[], None, Utc::now(), &mut || 0.0);
        assert_eq!(queued(&p), [("list", 1)]);
        assert!(p.expand.is_empty());
        let done = [attempt("list", 1, StepStatus::Succeeded)];
        let p = plan(&s, &done, None, Utc::now(), &mut || 0.0);
        assert_eq!(
            p.expand,
            [ExpandStep {
                step_id: "fan".into(),
                step_type: "noop"
            }]
        );
        assert!(p.queue.is_empty() && p.finish.is_none());
    }

    #[test]
    fn only_the_failed_instance_is_retried_and_downstream_waits_for_all() {
        let s = spec(MAPPED);
        let mut attempts = vec![
            attempt("list", 1, StepStatus::Succeeded),
            instance("fan", 0, 1, StepStatus::Succeeded),
            instance("fan", 1, 1, StepStatus::Failed),
            instance("fan", 2, 1, StepStatus::Running),
        ];
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert_eq!(queued(&p), [("fan", 2)]);
        assert_eq!(p.queue[0].map_index, Some(1));
        assert_eq!(p.queue[0].map_item, Some(serde_json::json!("item1")));
        assert!(p.expand.is_empty() && p.skip.is_empty() && p.finish.is_none());
        // The retry queued and the last instance done: still waiting.
        attempts[3] = instance("fan", 2, 1, StepStatus::Succeeded);
        attempts.push(instance("fan", 1, 2, StepStatus::Queued));
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert!(p.queue.is_empty() && p.finish.is_none(), "{p:?}");
        // Every instance succeeded: the step after it runs.
        attempts.pop();
        attempts.push(instance("fan", 1, 2, StepStatus::Succeeded));
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert_eq!(queued(&p), [("after", 1)]);
        assert_eq!(p.queue[0].map_index, None);
    }

    #[test]
    fn an_instance_out_of_retries_fails_the_step_once_the_others_end() {
        let s = spec(MAPPED);
        let mut attempts = vec![
            attempt("list", 1, StepStatus::Succeeded),
            instance("fan", 0, 1, StepStatus::Running),
            instance("fan", 1, 1, StepStatus::Failed),
            instance("fan", 1, 2, StepStatus::Failed),
            instance("fan", 2, 1, StepStatus::Succeeded),
        ];
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert!(
            p.queue.is_empty() && p.skip.is_empty() && p.finish.is_none(),
            "{p:?}"
        );
        attempts[1] = instance("fan", 0, 1, StepStatus::Succeeded);
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert_eq!(skipped(&p), [("after", StepStatus::UpstreamFailed)]);
        assert_eq!(
            p.finish,
            Some((RunStatus::Failed, Some("step fan[1] failed: boom".into())))
        );
    }

    #[test]
    fn a_list_that_could_not_expand_fails_the_step_without_retries() {
        let s = spec(MAPPED);
        let mut refused = attempt("fan", 0, StepStatus::Failed);
        refused.error = None;
        refused.summary = Some("for_each: the list has 10,001 elements".into());
        let attempts = [attempt("list", 1, StepStatus::Succeeded), refused];
        let p = plan(&s, &attempts, None, Utc::now(), &mut || 0.0);
        assert!(p.queue.is_empty() && p.expand.is_empty());
        assert_eq!(
            p.finish,
            Some((
                RunStatus::Failed,
                Some("step fan failed: for_each: the list has 10,001 elements".into())
            ))
        );
    }
}
