//! Shipped pipeline files never rot: each one parses and validates.

use std::path::{Path, PathBuf};

use recflow::pipeline::Pipeline;

use crate::common::repo;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn every_shipped_pipeline_file_parses_and_validates() {
    let mut files = Vec::new();
    yaml_files(&repo().join("pipelines"), &mut files);
    yaml_files(&repo().join("examples"), &mut files);
    assert!(
        files.len() >= 2,
        "expected the quickstart and the examples, found {files:?}"
    );
    let problems: Vec<String> = files
        .iter()
        .filter_map(|f| Pipeline::load(f).err().map(|e| e.to_string()))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
