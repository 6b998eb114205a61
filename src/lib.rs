//! recflow: recommender pipelines in one binary — import datasets from
//! object storage, train solution versions, deploy campaigns, and export
//! batch recommendations, with every run recorded in a state store.
//!
//! `main.rs` only parses the command line and calls [`cli::run`].

pub mod artifact;
pub mod batch;
#[cfg(feature = "bench")]
pub mod bench;
pub mod campaign;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod filter;
pub mod forecast;
#[cfg(test)]
mod fuzz;
pub mod group;
pub mod http;
pub mod memory;
pub mod ops;
pub mod out;
pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod recipes;
pub mod retention;
pub mod scheduler;
pub mod schema;
pub mod solution;
pub mod spec;
pub mod steps;
pub mod storage;
pub mod store;
pub mod tuning;
