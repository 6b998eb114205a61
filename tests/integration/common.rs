//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example(rel: &str) -> String {
    repo().join("examples").join(rel).display().to_string()
}

/// A temporary recflow home and a folder for test files.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// `recflow --home <home>` with a clean environment for recflow's own settings.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.process())
    }

    /// [`Home::cmd`] as a process to spawn and watch while it runs.
    pub fn process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("recflow"));
        cmd.arg("--home").arg(self.home());
        cmd.env_remove("RECFLOW_HOME")
            .env_remove("RECFLOW_STATE_URL")
            .env_remove("RECFLOW_WAREHOUSE");
        cmd.env("RECFLOW_NO_PROGRESS", "1").env("RUST_LOG", "warn");
        cmd
    }

    /// Writes a file under the test folder and returns its path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn warehouse(&self) -> PathBuf {
        self.home().join("warehouse")
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("recflow runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs and asserts success, printing everything on failure.
pub fn ok(cmd: &mut Command) -> Run {
    let r = run(cmd);
    assert_eq!(r.code, 0, "expected success:\n{}", r.all());
    r
}

/// Runs and asserts failure.
pub fn fails(cmd: &mut Command) -> Run {
    let r = run(cmd);
    assert_ne!(r.code, 0, "expected failure:\n{}", r.all());
    r
}

/// A small interactions schema, inline.
pub const INTERACTIONS_SCHEMA: &str = r#"
  interactions:
    schema:
      fields:
        - {name: USER_ID, type: string}
        - {name: ITEM_ID, type: string}
        - {name: TIMESTAMP, type: long}
        - {name: EVENT_VALUE, type: ["null", float]}
"#;

/// MovieLens ratings as a CSV with a header, written under the test folder.
pub fn movielens_csv(home: &Home, rel: &str, rows: usize) -> PathBuf {
    let data = std::fs::read_to_string(repo().join("examples/data/ml-100k/u.data")).unwrap();
    let mut csv = String::from("USER_ID,ITEM_ID,EVENT_VALUE,TIMESTAMP\n");
    for line in data.lines().take(rows) {
        csv.push_str(&line.replace('\t', ","));
        csv.push('\n');
    }
    home.write(rel, csv)
}

/// The items each MovieLens user rated, from u.data.
pub fn rated_by(user: &str) -> Vec<String> {
    let data = std::fs::read_to_string(repo().join("examples/data/ml-100k/u.data")).unwrap();
    data.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            (f.next()? == user).then(|| f.next().unwrap().to_string())
        })
        .collect()
}

pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// One runtime for the whole test binary. A state store keeps its
/// connections on the runtime that opened them (PostgreSQL's are sockets of
/// that runtime's driver), so a store used across calls must be opened and
/// used on this one, not on a fresh [`runtime`] that is dropped in between.
pub fn shared_runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(runtime)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Retries `check` every 100 ms until it returns `Ok`; after 30 s fails
/// with the last `Err` (what was seen instead).
pub fn eventually(mut check: impl FnMut() -> Result<(), String>) {
    eventually_within(std::time::Duration::from_secs(30), &mut check)
}

pub fn eventually_within(
    limit: std::time::Duration,
    check: &mut dyn FnMut() -> Result<(), String>,
) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match check() {
            Ok(()) => return,
            Err(seen) if std::time::Instant::now() >= deadline => panic!("{seen}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}
