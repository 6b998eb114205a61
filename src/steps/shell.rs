//! The `shell` step: runs a command; its output goes to the attempt's log,
//! a non-zero exit fails the attempt. The command runs in its own process
//! group, which is killed whole when the attempt is stopped (timeout,
//! cancel, shutdown), so no grandchild outlives it; and it is killed when
//! the daemon itself dies.

use std::collections::BTreeMap;
use std::process::Stdio;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::group::Group;
use crate::spec::SpecProblem;

use super::{StepContext, StepOutcome};

/// A command line for `sh -c`, or a program and its arguments (no shell).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellSpec {
    pub command: CommandLine,
    /// Extra environment variables; the daemon's own environment (where
    /// secrets live) is inherited.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Folder to run in, relative to the pipeline file's folder (default: that folder).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// The command's last line of standard output is JSON (at most 1 MiB),
    /// kept as `outputs.json` for later steps: a list there can drive a
    /// mapped step (`for_each: "{{ steps.ID.outputs.json }}"`). A last line
    /// that is not JSON fails the attempt.
    #[serde(default)]
    pub output_json: bool,
}

/// The longest JSON last line a `shell` step with `output_json` keeps.
pub const MAX_JSON_OUTPUT: usize = 1 << 20;

pub fn validate(spec: &ShellSpec, at: &str, _group: &Group) -> Vec<SpecProblem> {
    let empty = match &spec.command {
        CommandLine::Shell(s) => s.trim().is_empty(),
        CommandLine::Argv(v) => v.first().is_none_or(|p| p.is_empty()),
    };
    if empty {
        vec![SpecProblem::new(
            format!("{at}.command"),
            "the command is empty",
        )]
    } else {
        Vec::new()
    }
}

/// Kills the command's whole process group if the attempt is dropped
/// before the command exits.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: killpg has no memory-safety preconditions; the group
            // id is our own child's, which we have not reaped yet.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

pub async fn run(spec: &ShellSpec, ctx: &StepContext<'_>) -> anyhow::Result<StepOutcome> {
    let mut cmd = match &spec.command {
        CommandLine::Shell(line) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        CommandLine::Argv(argv) => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    let dir = match &spec.working_dir {
        Some(d) => ctx.group.base_dir.clone().join(d),
        None => ctx.group.base_dir.clone(),
    };
    cmd.current_dir(&dir)
        .envs(&spec.env)
        .env("RECFLOW_RUN_ID", ctx.run_id.to_string())
        .env("RECFLOW_STEP_ID", ctx.step_id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes one async-signal-safe system call.
    unsafe {
        // If the daemon dies (SIGKILL), the command dies with it instead of
        // finishing unobserved while its attempt is retried elsewhere.
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start the command in {}", dir.display()))?;
    let mut guard = GroupGuard(child.id().map(|p| p as i32));
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut last_line = String::new();
    let mut last_error = String::new();
    let read_out = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            ctx.log(format!("stdout: {line}"));
            last_line = line;
        }
        anyhow::Ok(())
    };
    let read_err = async {
        let mut lines = BufReader::new(stderr).lines();
        while let Some(line) = lines.next_line().await? {
            ctx.log(format!("stderr: {line}"));
            last_error = line;
        }
        anyhow::Ok(())
    };
    let (out, err, status) = tokio::join!(read_out, read_err, child.wait());
    out?;
    err?;
    let status = status?;
    guard.0 = None;
    let code = status.code().unwrap_or(-1);
    if !status.success() {
        let detail = if last_error.is_empty() {
            String::new()
        } else {
            format!(": {last_error}")
        };
        anyhow::bail!("the command exited with {status}{detail}");
    }
    let mut outputs = serde_json::Map::new();
    outputs.insert("exit_code".into(), code.into());
    if spec.output_json {
        anyhow::ensure!(
            last_line.len() <= MAX_JSON_OUTPUT,
            "output_json: the last line of output has {} bytes; at most {} are kept (write bigger data to storage and output its location)",
            crate::steps::thousands(last_line.len() as u64),
            crate::steps::thousands(MAX_JSON_OUTPUT as u64)
        );
        let json: serde_json::Value = serde_json::from_str(&last_line).map_err(|e| {
            let start: String = last_line.chars().take(80).collect();
            anyhow::anyhow!("output_json: the last line of output is not JSON ({e}): {start:?}")
        })?;
        outputs.insert("json".into(), json);
    }
    let tail: String = last_line.chars().take(1000).collect();
    outputs.insert("last_line".into(), tail.into());
    Ok(StepOutcome {
        summary: format!("exit {code}"),
        outputs,
    })
}
