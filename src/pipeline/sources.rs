//! The checks of a pipeline that look outside its file, which `recflow
//! validate` runs after validation: every local file or folder a step reads
//! exists, and, when asked (`--check-sources`), every S3 object or prefix
//! answers with the configured credentials. They are kept apart from
//! validation because the world changes: the daemon does not refuse a
//! pipeline for a file that its next run will find.
//!
//! A source is not checked when its setting is a template (its value is
//! known only at run time), or when a `shell` or `wait_for` step upstream
//! may write it or wait for it.

use std::path::Path;

use super::Pipeline;
use super::graph::StepGraph;
use super::template;
use crate::spec::SpecProblem;
use crate::spec::located;
use crate::steps::StepKind;
use crate::storage::{Storage, StorageError, StorageUrl};

/// Which sources to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCheck {
    /// Local files and folders only.
    Local,
    /// Local ones, and S3 objects and prefixes (with the AWS environment's
    /// credentials).
    AlsoRemote,
}

/// Every source a step reads that is not there, each named by its step's
/// index and id, its setting, and the line and column of the value.
pub async fn check_sources(
    pipeline: &Pipeline,
    storage: &Storage,
    check: SourceCheck,
) -> Vec<SpecProblem> {
    let steps = &pipeline.spec.steps;
    let graph = StepGraph::new(
        steps
            .iter()
            .map(|s| (s.id(), s.common.depends_on.as_slice())),
    );
    let upstream = graph.walk().upstream;
    let mut problems = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let may_be_made_upstream = upstream[i]
            .ones()
            .any(|j| matches!(steps[j].kind, StepKind::Shell(_) | StepKind::WaitFor(_)));
        if may_be_made_upstream {
            continue;
        }
        for (key, value) in step.kind.sources() {
            let templated = step
                .template
                .as_ref()
                .and_then(|(_, raw)| raw.get(key))
                .is_some_and(template::is_templated);
            if templated {
                continue;
            }
            // A location that does not parse was reported by validation.
            let Ok(url) = StorageUrl::parse(value, &pipeline.group.base_dir) else {
                continue;
            };
            let found = match &url {
                StorageUrl::Local { path, prefix } => {
                    check_local(storage, &url, path, *prefix, value).await
                }
                StorageUrl::S3 { .. } if check == SourceCheck::AlsoRemote => {
                    check_remote(storage, &url).await
                }
                StorageUrl::S3 { .. } => Ok(()),
            };
            if let Err(message) = found {
                problems.push(SpecProblem::new(format!("steps[{i}].{key}"), message));
            }
        }
    }
    if let Ok(at) = located::scan(&pipeline.source_text) {
        super::parse::place(&mut problems, &at);
    }
    problems
}

/// A local file, or a folder (a path ending in `/`, or one that is a
/// folder) with files in it, as the run will read them.
async fn check_local(
    storage: &Storage,
    url: &StorageUrl,
    path: &Path,
    prefix: bool,
    written: &str,
) -> Result<(), String> {
    let relative = !(written.starts_with('/') || written.starts_with("file://"));
    let hint = if relative {
        " (a relative path resolves against the pipeline file's folder)"
    } else {
        ""
    };
    if !path.exists() {
        let what = if prefix { "folder" } else { "file" };
        return Err(format!("no such {what}: {url}{hint}"));
    }
    if !(prefix || path.is_dir()) {
        return Ok(());
    }
    if !path.is_dir() {
        return Err(format!(
            "{} is a file, not a folder (drop the trailing `/` to read the file)",
            path.display()
        ));
    }
    let files = storage
        .open(url)
        .map_err(|e| e.to_string())?
        .list()
        .await
        .map_err(|e| e.to_string())?;
    if files.is_empty() {
        return Err(format!(
            "{}/: no files in this folder (names starting with `_` or `.` are skipped)",
            path.display()
        ));
    }
    Ok(())
}

/// An S3 object, or a prefix with objects under it.
async fn check_remote(storage: &Storage, url: &StorageUrl) -> Result<(), String> {
    let location = storage.open(url).map_err(|e| e.to_string())?;
    if url.is_prefix() {
        let objects = location.list().await.map_err(|e| e.to_string())?;
        if objects.is_empty() {
            return Err(format!("{url}: no objects under this prefix"));
        }
    } else if !location.exists().await.map_err(|e| e.to_string())? {
        return Err(StorageError::NotFound {
            url: url.to_string(),
        }
        .to_string());
    }
    Ok(())
}
