//! Scheduling: the daemon that fires pipelines' schedules and runs queued
//! runs (`daemon`), the pollers of runs started by data (`data`), and queuing a run of a registered pipeline by hand
//! (`trigger`). Runs themselves are executed by `crate::engine`.

pub mod daemon;
pub mod data;
pub mod trigger;
