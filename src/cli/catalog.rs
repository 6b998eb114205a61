//! `datasets ...`, `solutions ...` and `prune`.

use indicatif::HumanBytes;

use super::print::{table, when};
use super::{DatasetsCommand, PruneArgs, SolutionsCommand};
use crate::config::Env;
use crate::ops::retention::{self, PruneAsk};
use crate::ops::{PageAsk, catalog};
use crate::outln;

pub async fn datasets(env: &Env, c: DatasetsCommand) -> anyhow::Result<i32> {
    match c {
        DatasetsCommand::List => {
            let versions = catalog::dataset_versions(env, None, &PageAsk::largest())
                .await?
                .items;
            table(
                &[
                    "DATASET", "VERSION", "STATUS", "ROWS", "REJECTED", "MODE", "CREATED",
                ],
                versions
                    .into_iter()
                    .map(|v| {
                        let m = v.manifest.as_ref();
                        vec![
                            v.owner.clone(),
                            format!("v{}", v.version),
                            v.status.to_string(),
                            m.map(|m| m.rows.to_string()).unwrap_or_default(),
                            m.map(|m| m.rejected_rows.to_string()).unwrap_or_default(),
                            m.map(|m| m.mode.as_str().to_lowercase())
                                .unwrap_or_default(),
                            when(v.created_at),
                        ]
                    })
                    .collect(),
            );
        }
        DatasetsCommand::Show { dataset, version } => {
            let v = catalog::dataset_version(env, &dataset, version).await?;
            outln!(
                "{} v{}: {} (created {})",
                v.owner,
                v.version,
                v.status,
                when(v.created_at)
            );
            outln!("location: {}", v.location);
            if let Some(e) = &v.error {
                outln!("error: {e}");
            }
            if let Some(m) = &v.manifest {
                outln!("{}", serde_json::to_string_pretty(m)?);
            }
        }
    }
    Ok(0)
}

pub async fn solutions(env: &Env, c: SolutionsCommand) -> anyhow::Result<i32> {
    match c {
        SolutionsCommand::List => {
            let versions = catalog::solution_versions(env, None, &PageAsk::largest())
                .await?
                .items;
            table(
                &[
                    "SOLUTION",
                    "VERSION",
                    "STATUS",
                    "RECIPE",
                    "PRECISION@10",
                    "NDCG@10",
                    "COVERAGE",
                    "CREATED",
                ],
                versions
                    .into_iter()
                    .map(|v| {
                        let m = v.manifest.as_ref();
                        let metric = |k: &str| {
                            m.and_then(|m| m.metrics.get(k))
                                .map(|x| format!("{x:.4}"))
                                .unwrap_or_default()
                        };
                        vec![
                            v.owner.clone(),
                            format!("v{}", v.version),
                            v.status.to_string(),
                            m.map(|m| m.recipe.clone()).unwrap_or_default(),
                            metric("precision_at_10"),
                            metric("normalized_discounted_cumulative_gain_at_10"),
                            metric("coverage"),
                            when(v.created_at),
                        ]
                    })
                    .collect(),
            );
        }
        SolutionsCommand::Show { solution, version } => {
            let (record, m) = catalog::solution_version(env, &solution, version).await?;
            outln!(
                "{} v{} ({}), created {}",
                m.solution,
                m.version,
                m.recipe,
                when(m.created_at)
            );
            outln!("location: {}", record.location);
            outln!("settings: {}", m.settings);
            let datasets: Vec<String> = m
                .dataset_versions
                .iter()
                .map(|(d, v)| format!("{}/{d} v{v}", m.dataset_group))
                .collect();
            outln!(
                "data: {} ({} interactions, {} users, {} items)",
                datasets.join(", "),
                m.counts.interactions,
                m.counts.users,
                m.counts.items
            );
            outln!(
                "training: {:.2}s, peak memory {}",
                m.training_seconds,
                m.peak_rss_bytes
                    .map(|b| format!("{} MiB", b / (1 << 20)))
                    .unwrap_or_else(|| "unknown".into())
            );
            if let Some(from) = m.updated_from {
                let of = m.metrics_from_version.unwrap_or(from);
                outln!(
                    "training mode: update of v{from}; the metrics below are those of v{of}, its last full training"
                );
            }
            outln!("metrics ({} test users):", m.test_users);
            for (k, v) in &m.metrics {
                outln!("  {k:<45} {v:.4}");
            }
            if let Some(t) = &m.tuning {
                outln!("tuning (validation {}):", t.objective);
                for (i, trial) in t.trials.iter().enumerate() {
                    let score = match trial.metrics.as_ref().and_then(|x| x.get(&t.objective)) {
                        Some(x) => match trial.stderr {
                            Some(se) => format!("{x:.4} ± {se:.4}"),
                            None => format!("{x:.4}"),
                        },
                        None => format!("failed: {}", trial.error.clone().unwrap_or_default()),
                    };
                    let chosen = if i == t.best { "  ← chosen" } else { "" };
                    outln!(
                        "  #{:<3} {:<22} {score:<18} {}{chosen}",
                        i + 1,
                        trial.recipe,
                        serde_json::to_string(&trial.params).unwrap_or_default()
                    );
                }
                if let Some(d) = &t.decision {
                    outln!("  decision: {d}");
                }
            }
        }
    }
    Ok(0)
}

pub async fn prune(env: &Env, args: PruneArgs) -> anyhow::Result<i32> {
    let report = retention::prune(
        env,
        &PruneAsk {
            pipeline: args.pipeline,
            keep_last: args.keep_last,
            keep_days: args.keep_days,
            dry_run: args.dry_run,
        },
    )
    .await?;
    for p in &report.finished {
        outln!(
            "finished an interrupted prune: {:?} {} v{} ({})",
            p.kind,
            p.owner,
            p.version,
            HumanBytes(p.bytes)
        );
    }
    if !report.removed.is_empty() {
        table(
            &["KIND", "OWNER", "VERSION", "CREATED", "SIZE", "LOCATION"],
            report
                .removed
                .iter()
                .map(|p| {
                    vec![
                        format!("{:?}", p.kind).to_lowercase(),
                        p.owner.clone(),
                        p.version.to_string(),
                        when(p.created_at),
                        HumanBytes(p.bytes).to_string(),
                        p.location.clone(),
                    ]
                })
                .collect(),
        );
    }
    outln!(
        "{} {} version(s) and export(s), {} bytes ({}); kept {}.",
        if report.dry_run {
            "Dry run: would remove"
        } else {
            "Removed"
        },
        report.removed.len(),
        report.bytes_freed,
        HumanBytes(report.bytes_freed),
        report.kept
    );
    Ok(0)
}
