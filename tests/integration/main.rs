//! End-to-end tests: the real `recflow` binary on temporary homes, with local
//! files, with a real S3 server (SeaweedFS, started by `scripts/test`), and
//! in a real headless Chromium (through ChromeDriver, also started by it).
//! One test binary, because each links polars (~1 GB).

// Tests report on stderr as they like; clippy.toml's rule is for recflow's commands.
#![allow(clippy::disallowed_macros)]

mod common;

mod api;
mod bad_input;
mod batch;
mod browser;
mod cli_output;
mod console;
mod examples;
mod forecast;
mod import;
mod mapped;
mod orchestrate;
mod quickstart;
mod recipes;
mod routine;
mod s3;
mod serve;
