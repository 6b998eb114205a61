//! `validate`, `run`, `trigger` and `runs ...`.

use std::path::PathBuf;

use super::print::{attempt_suffix, mark, seconds, step_printer, table, when};
use super::{RunsCommand, TriggerArgs};
use crate::config::Env;
use crate::ops::pipelines;
use crate::ops::runs::{self, RunFilter};
use crate::pipeline::Pipeline;
use crate::pipeline::sources::SourceCheck;
use crate::scheduler::trigger::GivenParams;
use crate::store::RunStatus;
use crate::{errln, out, outln};

/// `train`, or `train[3]` for an instance of a mapped step.
fn instance_name(a: &crate::store::AttemptRecord) -> String {
    match a.map_index {
        Some(i) => format!("{}[{i}]", a.step_id),
        None => a.step_id.clone(),
    }
}

pub async fn validate(files: &[PathBuf], check_sources: bool) -> i32 {
    let check = if check_sources {
        SourceCheck::AlsoRemote
    } else {
        SourceCheck::Local
    };
    let mut failed = 0;
    for checked in pipelines::validate(files, check).await {
        match checked.result {
            Ok((name, steps)) => outln!(
                "ok: {} (pipeline {name}, {steps} steps)",
                checked.file.display()
            ),
            Err(e) => {
                failed += 1;
                outln!("{e}");
            }
        }
    }
    if failed > 0 { 1 } else { 0 }
}

pub async fn run_file(
    env: &Env,
    pipeline: &Pipeline,
    params: Vec<(String, String)>,
) -> anyhow::Result<i32> {
    let width = pipeline
        .spec
        .steps
        .iter()
        // Instances of mapped steps print as `ID[N]`.
        .map(|s| s.id().len() + if s.for_each().is_some() { 6 } else { 0 })
        .max()
        .unwrap_or(4);
    outln!(
        "Running pipeline {} ({}; state {}, warehouse {})",
        pipeline.spec.name,
        pipeline.file.display(),
        crate::store::redact(&env.settings.state_url),
        env.warehouse
    );
    let mut print = step_printer(width);
    let report = runs::run_here(env, pipeline, params, &mut print).await?;
    let secs = report.duration.as_secs_f64();
    match report.status {
        RunStatus::Succeeded => {
            outln!("Run {} succeeded in {secs:.1}s.", report.run_id);
            for step in report
                .steps
                .iter()
                .filter(|s| s.step_type == "batch_inference")
            {
                if let Some(out) = step.summary.rsplit("→ ").next() {
                    outln!("Export ({}): {out}", step.id);
                }
            }
            Ok(0)
        }
        status => {
            outln!(
                "Run {} {status} in {secs:.1}s{}; details: recflow runs show {} --logs",
                report.run_id,
                report.error.map(|e| format!(" ({e})")).unwrap_or_default(),
                report.run_id
            );
            Ok(1)
        }
    }
}

pub async fn trigger(env: &Env, args: TriggerArgs) -> anyhow::Result<i32> {
    let run = runs::trigger(
        env,
        &args.pipeline,
        GivenParams::Text(args.params),
        args.logical_date.as_deref(),
        "trigger",
    )
    .await?;
    outln!("{}", run.id);
    if !args.wait {
        return Ok(0);
    }
    // Follow the run: print attempts as they end, then the run's status.
    let run = runs::follow(env, run.id, &mut |a| {
        let text = a.error.clone().or(a.summary.clone()).unwrap_or_default();
        errln!(
            "  {} {}  {text}{}",
            mark(a.status),
            instance_name(a),
            attempt_suffix(a.attempt)
        );
    })
    .await?;
    errln!(
        "Run {} {}{}",
        run.id,
        run.status,
        run.error.map(|e| format!(": {e}")).unwrap_or_default()
    );
    Ok(if run.status == RunStatus::Succeeded {
        0
    } else {
        1
    })
}

pub async fn runs(env: &Env, c: RunsCommand) -> anyhow::Result<i32> {
    match c {
        RunsCommand::List {
            pipeline,
            status,
            since,
            until,
            limit,
        } => {
            let now = chrono::Utc::now();
            let time = |t: Option<String>| t.map(|t| runs::parse_time(&t, now)).transpose();
            let page = runs::list(
                env,
                &RunFilter {
                    pipeline,
                    statuses: status,
                    since: time(since)?,
                    until: time(until)?,
                    limit: Some(limit),
                    ..RunFilter::default()
                },
            )
            .await?;
            table(
                &["RUN", "PIPELINE", "STATUS", "TRIGGER", "CREATED", "SECONDS"],
                page.items
                    .into_iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.pipeline,
                            r.status.to_string(),
                            r.trigger,
                            when(r.created_at),
                            seconds(r.started_at, r.finished_at),
                        ]
                    })
                    .collect(),
            );
        }
        RunsCommand::Show { run_id, logs } => {
            let runs::RunDetail {
                run: r,
                attempts,
                sla_misses,
            } = runs::show(env, run_id).await?;
            outln!(
                "Run {} of pipeline {}: {} (trigger {}, created {})",
                r.id,
                r.pipeline,
                r.status,
                r.trigger,
                when(r.created_at)
            );
            if let (Some(ld), Some(a), Some(b)) =
                (r.logical_date, r.data_interval_start, r.data_interval_end)
            {
                outln!(
                    "Logical date {}, data interval {} to {}",
                    when(ld),
                    when(a),
                    when(b)
                );
            }
            if r.params.as_object().is_some_and(|m| !m.is_empty()) {
                outln!("Params {}", r.params);
            }
            if let Some(t) = &r.trigger_info {
                outln!("Triggered by {t}");
            }
            if let Some(e) = &r.error {
                outln!("Error: {e}");
            }
            for m in &sla_misses {
                outln!(
                    "SLA missed: {} went on past its SLA of {} (at {})",
                    m.step_id
                        .as_deref()
                        .map_or("the run".to_string(), |s| format!("step {s}")),
                    m.sla,
                    when(m.missed_at)
                );
            }
            // Mapped steps: their instances counted by status; only the
            // instances that were retried or did not succeed are listed.
            let mapped = runs::mapped_steps(&attempts);
            let mut listed = std::collections::HashSet::new();
            for m in &mapped {
                let counts: Vec<String> = m
                    .counts
                    .iter()
                    .map(|(status, n)| format!("{n} {status}"))
                    .collect();
                let retried = m.instances.iter().filter(|i| i.attempts.len() > 1).count();
                outln!(
                    "Mapped step {} ({}): {} instances: {}{}",
                    m.step_id,
                    m.step_type,
                    m.instances.len(),
                    counts.join(", "),
                    if retried > 0 {
                        format!("; {retried} retried")
                    } else {
                        String::new()
                    }
                );
                listed.extend(m.eventful().map(|i| (m.step_id.clone(), i.map_index)));
            }
            table(
                &[
                    "", "STEP", "TYPE", "ATTEMPT", "STATUS", "START", "END", "SECONDS", "RESULT",
                ],
                attempts
                    .iter()
                    .filter(|a| {
                        a.map_index
                            .is_none_or(|i| logs || listed.contains(&(a.step_id.clone(), i)))
                    })
                    .map(|a| {
                        let result = a
                            .error
                            .clone()
                            .map(|e| format!("error: {e}"))
                            .or(a.summary.clone())
                            .unwrap_or_default();
                        vec![
                            mark(a.status).to_string(),
                            instance_name(a),
                            a.step_type.clone(),
                            a.attempt.to_string(),
                            a.status.to_string(),
                            a.started_at.map(when).unwrap_or_default(),
                            a.finished_at.map(when).unwrap_or_default(),
                            seconds(a.started_at, a.finished_at),
                            result,
                        ]
                    })
                    .collect(),
            );
            if logs {
                for a in attempts.iter().filter(|a| !a.log.is_empty()) {
                    outln!("\n{} attempt {}:", instance_name(a), a.attempt);
                    for line in a.log.lines() {
                        outln!("  {line}");
                    }
                }
            }
        }
        RunsCommand::Logs {
            run_id,
            step,
            attempt,
            follow,
        } => {
            let a = runs::attempt(env, run_id, &step, attempt).await?;
            out!("{}", a.log);
            if follow {
                let mut sent = a.log.len();
                // Until the attempt ends, or the reader leaves.
                while !crate::out::closed()
                    && let runs::LogTail::Text(text, now) =
                        runs::tail_log(env, run_id, &step, a.attempt, sent).await?
                {
                    out!("{text}");
                    crate::out::flush();
                    sent = now;
                }
            }
        }
        RunsCommand::Cancel { run_id } => {
            runs::cancel(env, run_id).await?;
            outln!("Run {run_id}: cancel requested; running steps stop at their next heartbeat.");
        }
        RunsCommand::Retry { run_id } => {
            outln!("Retrying run {run_id}:");
            let report = runs::retry_here(env, run_id, &mut step_printer(20)).await?;
            outln!("Run {run_id} {}.", report.status);
            return Ok(if report.status == RunStatus::Succeeded {
                0
            } else {
                1
            });
        }
    }
    Ok(0)
}
