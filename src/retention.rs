//! Retention: removing old dataset, solution and predictor versions and old
//! exports, so that a warehouse that grows with every run stops growing.
//!
//! A version is removed only when the policy lets it go (beyond the newest
//! `keep_last` and older than `keep_days`) and nothing needs it: never the
//! latest active version of its owner, a solution version a campaign serves,
//! rolled back from, or was deployed to within [`RECENTLY_SERVED`], nor a
//! version an experiment uses. Removal is crash-safe: the version is marked
//! `deleting` in the store first (readers use only `active` versions, so
//! nothing serves or reads it from then on), then its files are deleted,
//! then it is marked `deleted`. A prune that stopped in between is finished
//! by the next one ([`finish_pending`]).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Env;
use crate::storage::{Location, StorageError};
use crate::store::{StoreError, VersionKind, VersionQuery, VersionRecord, VersionStatus};

/// How long a solution version a campaign was deployed to stays protected
/// after the deployment, so that a rollback to it still works.
pub const RECENTLY_SERVED: Duration = Duration::days(7);

/// What a pipeline keeps (`retention:` in the pipeline file, or the flags
/// of `recflow prune`). A version or export is removed only when it is both
/// beyond the newest `keep_last` and older than `keep_days`; a setting left
/// out does not hold anything back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    /// Keep the newest N versions of each dataset, solution and predictor,
    /// and the newest N exports of each export step (at least 1).
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Keep every version and export younger than this many days.
    #[serde(default)]
    pub keep_days: Option<u32>,
    /// Prune the pipeline's dataset group, solutions, predictors and
    /// exports after each successful run (by `recflow run` and the daemon).
    #[serde(default)]
    pub after_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("retention: give keep_last (at least 1), keep_days, or both")]
    NoPolicy,
    #[error("retention: keep_last must be at least 1 (the latest version always stays)")]
    KeepNone,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl RetentionSpec {
    pub fn check(&self) -> Result<(), RetentionError> {
        match (self.keep_last, self.keep_days) {
            (None, None) => Err(RetentionError::NoPolicy),
            (Some(0), _) => Err(RetentionError::KeepNone),
            _ => Ok(()),
        }
    }
}

/// What a prune looks at: everything in the warehouse, or what one
/// pipeline owns.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Dataset versions of this group only (all groups when `None`).
    pub dataset_group: Option<String>,
    /// These solutions only (all when `None`).
    pub solutions: Option<Vec<String>>,
    /// These predictors only (all when `None`).
    pub predictors: Option<Vec<String>>,
    /// Exports of this pipeline only (all when `None`).
    pub pipeline: Option<String>,
}

/// What is pruned: a version of a kind, or an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrunedKind {
    Dataset,
    Solution,
    Predictor,
    /// A batch or forecast export under `<warehouse>/exports/`.
    Export,
}

impl PrunedKind {
    fn of(kind: VersionKind) -> PrunedKind {
        match kind {
            VersionKind::Dataset => PrunedKind::Dataset,
            VersionKind::Solution => PrunedKind::Solution,
            VersionKind::Predictor => PrunedKind::Predictor,
        }
    }
}

/// One version or export removed (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pruned {
    pub kind: PrunedKind,
    /// The dataset (`GROUP/TYPE`), solution or predictor; for an export,
    /// `PIPELINE/STEP`.
    pub owner: String,
    /// The version number; for an export, the run id.
    pub version: i64,
    pub location: String,
    pub bytes: u64,
    pub created_at: DateTime<Utc>,
}

/// What a prune did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct PruneReport {
    pub dry_run: bool,
    /// Removed now (or would be, in a dry run), oldest first per owner.
    pub removed: Vec<Pruned>,
    /// Versions an earlier, interrupted prune had marked and that this one
    /// finished deleting.
    pub finished: Vec<Pruned>,
    /// Versions and exports looked at and kept.
    pub kept: usize,
    /// Bytes the removed files held (would free, in a dry run).
    pub bytes_freed: u64,
}

/// Versions something outside the catalog depends on, which no prune may
/// remove: solution versions campaigns serve, rolled back from or were
/// recently deployed to, and versions experiments use.
#[derive(Debug, Default)]
pub struct Protected {
    versions: HashSet<(VersionKind, String, i64)>,
}

impl Protected {
    fn add(&mut self, kind: VersionKind, owner: &str, version: i64) {
        self.versions.insert((kind, owner.to_string(), version));
    }

    fn contains(&self, v: &VersionRecord) -> bool {
        self.versions
            .contains(&(v.kind, v.owner.clone(), v.version))
    }
}

/// What campaigns (and, once they exist, experiments) need kept.
pub async fn protected(env: &Env, now: DateTime<Utc>) -> Result<Protected, RetentionError> {
    let mut p = Protected::default();
    for c in env.store.list_campaigns().await? {
        p.add(VersionKind::Solution, &c.solution, c.solution_version);
        if let Some(prev) = c.previous_version {
            p.add(VersionKind::Solution, &c.solution, prev);
        }
        for d in env.store.list_deployments(&c.name).await? {
            if now - d.deployed_at <= RECENTLY_SERVED {
                p.add(VersionKind::Solution, &d.solution, d.solution_version);
            }
        }
    }
    experiment_versions(env, &mut p).await?;
    Ok(p)
}

/// The hook for experiments (A/B tests between solution versions): when
/// they exist, every version an experiment that has not ended uses goes
/// into `p` here. There are none yet.
async fn experiment_versions(_env: &Env, _p: &mut Protected) -> Result<(), RetentionError> {
    Ok(())
}

/// Which of one owner's versions (newest first) the policy removes: not
/// the latest active one, not a protected one, not one being created, and
/// only beyond the newest `keep_last` active ones and older than
/// `keep_days`. Failed versions count towards nothing and go once older
/// than `keep_days`.
pub fn doomed<'a>(
    versions: &'a [VersionRecord],
    policy: &RetentionSpec,
    protected: &Protected,
    now: DateTime<Utc>,
) -> Vec<&'a VersionRecord> {
    let old_enough = |v: &VersionRecord| {
        policy
            .keep_days
            .is_none_or(|d| now - v.created_at > Duration::days(d as i64))
    };
    let keep_last = policy.keep_last.unwrap_or(1).max(1) as usize;
    let mut active_seen = 0;
    let mut out = Vec::new();
    for v in versions {
        match v.status {
            VersionStatus::Active => {
                active_seen += 1;
                let within_last = active_seen <= keep_last;
                // The first active one is the latest: it always stays.
                if active_seen == 1
                    || (policy.keep_last.is_some() && within_last)
                    || !old_enough(v)
                    || protected.contains(v)
                {
                    continue;
                }
                out.push(v);
            }
            VersionStatus::Failed if old_enough(v) && !protected.contains(v) => out.push(v),
            _ => {}
        }
    }
    out
}

/// Prunes what `scope` covers by `policy`; with `dry_run`, only reports.
/// Finishes an earlier prune's half-done deletions first.
pub async fn prune(
    env: &Env,
    scope: &Scope,
    policy: &RetentionSpec,
    dry_run: bool,
) -> Result<PruneReport, RetentionError> {
    policy.check()?;
    let now = Utc::now();
    let mut report = PruneReport {
        dry_run,
        ..PruneReport::default()
    };
    if !dry_run {
        report.finished = finish_pending(env).await?;
    }
    let protected = protected(env, now).await?;
    for kind in [
        VersionKind::Dataset,
        VersionKind::Solution,
        VersionKind::Predictor,
    ] {
        let all = env
            .store
            .list_versions(&VersionQuery::all(kind, None))
            .await?;
        let mut by_owner: BTreeMap<&str, Vec<VersionRecord>> = BTreeMap::new();
        for v in &all {
            if scope.covers(kind, &v.owner) {
                by_owner.entry(&v.owner).or_default().push(v.clone());
            }
        }
        for versions in by_owner.values() {
            let doomed = doomed(versions, policy, &protected, now);
            report.kept += versions
                .iter()
                .filter(|v| matches!(v.status, VersionStatus::Active | VersionStatus::Failed))
                .count()
                - doomed.len();
            for v in doomed.into_iter().rev() {
                if let Some(p) = remove_version(env, v, dry_run).await? {
                    report.bytes_freed += p.bytes;
                    report.removed.push(p);
                }
            }
        }
    }
    prune_exports(env, scope, policy, dry_run, now, &mut report).await?;
    for p in &report.removed {
        tracing::info!(kind = ?p.kind, owner = %p.owner, version = p.version, bytes = p.bytes, dry_run, "Pruned.");
    }
    Ok(report)
}

impl Scope {
    fn covers(&self, kind: VersionKind, owner: &str) -> bool {
        let named = |names: &Option<Vec<String>>| {
            names.as_ref().is_none_or(|n| n.iter().any(|x| x == owner))
        };
        match kind {
            VersionKind::Dataset => self
                .dataset_group
                .as_ref()
                .is_none_or(|g| owner.split_once('/').is_some_and(|(og, _)| og == g)),
            VersionKind::Solution => named(&self.solutions),
            VersionKind::Predictor => named(&self.predictors),
        }
    }
}

fn location(env: &Env, v: &VersionRecord) -> Result<Location, RetentionError> {
    Ok(env.storage.open_str(&v.location, &env.settings.home)?)
}

/// Marks, deletes and records one version; `None` when another process
/// (or a campaign update) got to it first.
async fn remove_version(
    env: &Env,
    v: &VersionRecord,
    dry_run: bool,
) -> Result<Option<Pruned>, RetentionError> {
    let files = location(env, v)?;
    let pruned = |bytes| Pruned {
        kind: PrunedKind::of(v.kind),
        owner: v.owner.clone(),
        version: v.version,
        location: v.location.clone(),
        bytes,
        created_at: v.created_at,
    };
    if dry_run {
        return Ok(Some(pruned(files.size().await?)));
    }
    // Marked first: from here on nothing reads it.
    if !env
        .store
        .move_version(
            v.kind,
            &v.owner,
            v.version,
            v.status,
            VersionStatus::Deleting,
        )
        .await?
    {
        return Ok(None);
    }
    // A campaign moved to it between the listing and the mark: give it back.
    // A move after the mark fails, since a campaign moves only to an active
    // version, checked in the move's own transaction (see the store's
    // `served_version_is_active`), so this re-read closes the race.
    if v.kind == VersionKind::Solution && protected(env, Utc::now()).await?.contains(v) {
        env.store
            .move_version(
                v.kind,
                &v.owner,
                v.version,
                VersionStatus::Deleting,
                v.status,
            )
            .await?;
        return Ok(None);
    }
    let bytes = files.delete_all().await?;
    env.store
        .move_version(
            v.kind,
            &v.owner,
            v.version,
            VersionStatus::Deleting,
            VersionStatus::Deleted,
        )
        .await?;
    Ok(Some(pruned(bytes)))
}

/// Deletes the files of versions marked `deleting` by a prune that
/// stopped before it finished, and marks them `deleted`.
pub async fn finish_pending(env: &Env) -> Result<Vec<Pruned>, RetentionError> {
    let mut out = Vec::new();
    for kind in [
        VersionKind::Dataset,
        VersionKind::Solution,
        VersionKind::Predictor,
    ] {
        for v in env
            .store
            .list_versions(&VersionQuery::all(kind, None))
            .await?
        {
            if v.status != VersionStatus::Deleting {
                continue;
            }
            let bytes = location(env, &v)?.delete_all().await?;
            env.store
                .move_version(
                    kind,
                    &v.owner,
                    v.version,
                    VersionStatus::Deleting,
                    VersionStatus::Deleted,
                )
                .await?;
            tracing::info!(kind = %kind, owner = %v.owner, version = v.version, bytes, "Finished an interrupted prune.");
            out.push(Pruned {
                kind: PrunedKind::of(kind),
                owner: v.owner.clone(),
                version: v.version,
                location: v.location.clone(),
                bytes,
                created_at: v.created_at,
            });
        }
    }
    Ok(out)
}

/// One export: `exports/<pipeline>/<step>/run-<id>/`.
struct Export {
    owner: String,
    run_id: i64,
    location: Location,
    bytes: u64,
    modified: DateTime<Utc>,
}

/// Exports written to the warehouse's default place, by pipeline and step,
/// newest run first. Exports written elsewhere (`output:`) are the
/// reader's to manage.
async fn exports(env: &Env, scope: &Scope) -> Result<Vec<Vec<Export>>, RetentionError> {
    let root = env.warehouse.child("exports");
    let mut by_run: BTreeMap<(String, String, i64), Export> = BTreeMap::new();
    for o in root.objects_under().await? {
        let parts: Vec<&str> = o.rel.split('/').collect();
        let [pipeline, step, run, _, ..] = parts.as_slice() else {
            continue;
        };
        let Some(run_id) = run.strip_prefix("run-").and_then(|r| r.parse().ok()) else {
            continue;
        };
        if scope.pipeline.as_deref().is_some_and(|p| p != *pipeline) {
            continue;
        }
        let e = by_run
            .entry((pipeline.to_string(), step.to_string(), run_id))
            .or_insert_with(|| Export {
                owner: format!("{pipeline}/{step}"),
                run_id,
                location: root.child(&format!("{pipeline}/{step}/{run}")),
                bytes: 0,
                modified: o.modified,
            });
        e.bytes += o.size;
        e.modified = e.modified.max(o.modified);
    }
    let mut groups: BTreeMap<String, Vec<Export>> = BTreeMap::new();
    for e in by_run.into_values() {
        groups.entry(e.owner.clone()).or_default().push(e);
    }
    Ok(groups
        .into_values()
        .map(|mut g| {
            g.sort_by_key(|e| std::cmp::Reverse(e.run_id));
            g
        })
        .collect())
}

async fn prune_exports(
    env: &Env,
    scope: &Scope,
    policy: &RetentionSpec,
    dry_run: bool,
    now: DateTime<Utc>,
    report: &mut PruneReport,
) -> Result<(), RetentionError> {
    let keep_last = policy.keep_last.unwrap_or(1).max(1) as usize;
    for group in exports(env, scope).await? {
        for (i, e) in group.iter().enumerate() {
            let old_enough = policy
                .keep_days
                .is_none_or(|d| now - e.modified > Duration::days(d as i64));
            let within_last = i < keep_last && (i == 0 || policy.keep_last.is_some());
            // An export of a run still going may be half written: its own.
            let finished = match env.store.get_run(e.run_id).await {
                Ok(r) => r.status.is_finished(),
                Err(StoreError::NotFound { .. }) => true,
                Err(err) => return Err(err.into()),
            };
            if within_last || !old_enough || !finished {
                report.kept += 1;
                continue;
            }
            // `_SUCCESS` goes first: a reader that waits for it stops
            // trusting the export before its files go.
            let bytes = if dry_run {
                e.bytes
            } else {
                e.location.delete_all().await?
            };
            report.bytes_freed += bytes;
            report.removed.push(Pruned {
                kind: PrunedKind::Export,
                owner: e.owner.clone(),
                version: e.run_id,
                location: e.location.to_string(),
                bytes,
                created_at: e.modified,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: i64, status: VersionStatus, days_old: i64, now: DateTime<Utc>) -> VersionRecord {
        VersionRecord {
            kind: VersionKind::Solution,
            owner: "sims".into(),
            version: n,
            status,
            run_id: None,
            step_id: None,
            location: format!("w/models/sims/v{n}"),
            created_at: now - Duration::days(days_old),
            finished_at: None,
            manifest: None,
            error: None,
        }
    }

    fn numbers(v: Vec<&VersionRecord>) -> Vec<i64> {
        v.iter().map(|v| v.version).collect()
    }

    #[test]
    fn keeps_the_latest_the_newest_n_the_young_and_the_served() {
        let now = Utc::now();
        use VersionStatus::*;
        // Newest first, as the store lists them.
        let versions = vec![
            version(7, Creating, 0, now),
            version(6, Active, 1, now),
            version(5, Failed, 2, now),
            version(4, Active, 3, now),
            version(3, Active, 10, now),
            version(2, Active, 20, now),
            version(1, Active, 30, now),
        ];
        let none = Protected::default();
        let keep = |keep_last, keep_days| RetentionSpec {
            keep_last,
            keep_days,
            after_run: false,
        };
        // Keep 1: everything but the latest active (and the one being made).
        assert_eq!(
            numbers(doomed(&versions, &keep(Some(1), None), &none, now)),
            [5, 4, 3, 2, 1]
        );
        assert_eq!(
            numbers(doomed(&versions, &keep(Some(2), None), &none, now)),
            [5, 3, 2, 1]
        );
        // Keep what is younger than 15 days: the latest stays even if old.
        assert_eq!(
            numbers(doomed(&versions, &keep(None, Some(15)), &none, now)),
            [2, 1]
        );
        // Both: only what is beyond the newest 2 *and* older than 5 days.
        assert_eq!(
            numbers(doomed(&versions, &keep(Some(2), Some(5)), &none, now)),
            [3, 2, 1]
        );
        // A campaign serves v2 and rolled back from v3.
        let mut served = Protected::default();
        served.add(VersionKind::Solution, "sims", 2);
        served.add(VersionKind::Solution, "sims", 3);
        assert_eq!(
            numbers(doomed(&versions, &keep(Some(1), None), &served, now)),
            [5, 4, 1]
        );
        // Even when every version is old, the latest active one stays.
        let old = vec![version(2, Active, 90, now), version(1, Active, 99, now)];
        assert_eq!(numbers(doomed(&old, &keep(None, Some(1)), &none, now)), [1]);
    }

    #[test]
    fn a_policy_must_keep_something() {
        assert!(RetentionSpec::default().check().is_err());
        let none = RetentionSpec {
            keep_last: Some(0),
            ..RetentionSpec::default()
        };
        assert!(none.check().is_err());
        let days = RetentionSpec {
            keep_days: Some(30),
            ..RetentionSpec::default()
        };
        assert!(days.check().is_ok());
    }
}
