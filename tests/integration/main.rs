//! End-to-end tests: the real `recflow` binary on temporary homes, with local
//! files and with a real S3 server (SeaweedFS, started by `scripts/test`).
//! One test binary, because each links polars (~1 GB).

mod common;

mod bad_input;
mod batch;
mod examples;
mod forecast;
mod import;
mod orchestrate;
mod quickstart;
mod recipes;
mod s3;
mod serve;
