//! The crate layering of ARCHITECTURE.md ("Invariants"), checked against the resolved
//! dependency graph (`cargo metadata`) instead of prose:
//! - the rule core and the spreadsheet crate do no I/O: no async runtime, database, mailer, HTTP
//!   client or gRPC anywhere below them;
//! - only the edge crates depend on tonic or prost (directly or through another crate).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Crates allowed to reach tonic/prost: the generated code and the programs that serve or call it.
const EDGE: &[&str] = &[
    "junheng-proto",
    "junheng-edge",
    "junheng-cli",
    "junheng-workflow",
    "junheng-scheduler",
    "junheng-bench",
    "junheng-tests",
];
const GRPC: &[&str] = &["tonic", "prost"];
const IO: &[&str] = &[
    "tokio", "sqlx", "lettre", "reqwest", "hyper", "tonic", "prost", "mio",
];

/// Package name → names of every package it reaches through normal (non-dev, non-build)
/// dependencies.
fn closures() -> BTreeMap<String, BTreeSet<String>> {
    // Only this platform's graph: other platforms' crates need not be downloaded.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(String::from))
        .expect("rustc names its host");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap();
        let normal = node["deps"].as_array().unwrap().iter().filter(|d| {
            d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null())
        });
        edges.insert(id, normal.map(|d| d["pkg"].as_str().unwrap()).collect());
    }
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    members
        .into_iter()
        .map(|m| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![m];
            while let Some(id) = stack.pop() {
                for d in edges.get(id).into_iter().flatten() {
                    if seen.insert(*d) {
                        stack.push(d);
                    }
                }
            }
            (
                names[m].to_string(),
                seen.into_iter().map(|id| names[id].to_string()).collect(),
            )
        })
        .collect()
}

#[test]
fn the_layers_hold_in_the_dependency_graph() {
    let all = closures();
    for must in ["junheng-core", "junheng-store", "junheng-workflow"] {
        assert!(all.contains_key(must), "{must} is a workspace member");
    }
    let mut problems = Vec::new();
    for pure in ["junheng-core", "junheng-sheets"] {
        let reached: Vec<&String> = all[pure]
            .iter()
            .filter(|d| IO.contains(&d.as_str()))
            .collect();
        if !reached.is_empty() {
            problems.push(format!("{pure} must do no I/O but depends on {reached:?}"));
        }
    }
    for (krate, deps) in &all {
        let grpc: Vec<&String> = deps.iter().filter(|d| GRPC.contains(&d.as_str())).collect();
        if !grpc.is_empty() && !EDGE.contains(&krate.as_str()) {
            problems.push(format!(
                "{krate} is not an edge crate but depends on {grpc:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The check sees what it should: the workflow does reach tonic, the store reaches sqlx.
    assert!(all["junheng-workflow"].contains("tonic"));
    assert!(all["junheng-store"].contains("sqlx"));
}
