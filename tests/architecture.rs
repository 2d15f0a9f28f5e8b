//! The layers of ARCHITECTURE.md, checked on the source: each top-level module of `src/`
//! imports only the modules its layer may, and no two modules import each other in a
//! circle. A `use` that breaks a rule fails here with the file that holds it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module may import (besides itself). Anything not listed may import
/// nothing of the crate.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("clock", &[]),
    ("metrics", &[]),
    ("telemetry", &[]),
    ("output", &[]),
    ("config", &["domain"]),
    ("db", &["domain"]),
    ("rate_limit", &["config"]),
    ("service", &["domain", "db", "config", "metrics"]),
    ("systemd", &["db"]),
    ("check", &["domain", "db", "service"]),
    ("notify", &["domain", "db", "config", "metrics", "service"]),
    ("scheduler", &["domain", "db", "metrics", "service"]),
    ("transfer", &["domain", "db", "service", "output"]),
    (
        "api",
        &[
            "domain",
            "db",
            "config",
            "clock",
            "metrics",
            "rate_limit",
            "service",
        ],
    ),
    ("web", &[]),
    ("cli", &["domain", "config", "telemetry", "transfer"]),
    ("agent", &["domain", "config", "cli", "output"]),
    (
        "app",
        &[
            "domain",
            "db",
            "config",
            "clock",
            "metrics",
            "rate_limit",
            "service",
            "systemd",
            "notify",
            "scheduler",
            "api",
            "web",
        ],
    ),
    (
        "commands",
        &[
            "domain",
            "db",
            "config",
            "service",
            "notify",
            "check",
            "transfer",
            "api",
            "app",
            "cli",
            "agent",
            "telemetry",
            "output",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/api/jobs.rs` → `api`), None for the crate
/// root files.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The top-level modules a file's code (tests excluded) names as `crate::x`; `super::`
/// stays inside the file's own module, except from a top-level file.
fn imported(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let before = rest[..at].chars().last();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            if let Some(group) = after.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.insert(name);
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
        rest = after;
    }
    found
}

fn module_graph() -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for file in &files {
        let Some(from) = top_module(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for to in imported(&text) {
            if to != from && modules.contains(&to) {
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .push(file.strip_prefix(&src).unwrap().display().to_string());
            }
        }
    }
    graph
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut broken = Vec::new();
    for (from, targets) in module_graph() {
        let may = allowed.get(from.as_str()).copied().unwrap_or(&[]);
        for (to, files) in targets {
            if !may.contains(&to.as_str()) {
                broken.push(format!("{from} imports {to} (in {})", files.join(", ")));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports that break ARCHITECTURE.md's layers:\n{}",
        broken.join("\n")
    );
}

/// A depth-first search from `node` for a back edge; the circle it closes, if any.
fn circle_from(
    node: &str,
    graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|p| p == node) {
        let mut circle = path[at..].to_vec();
        circle.push(node.to_owned());
        return Some(circle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_owned());
    for next in graph.get(node).map(|t| t.keys()).into_iter().flatten() {
        if let Some(circle) = circle_from(next, graph, path, done) {
            return Some(circle);
        }
    }
    path.pop();
    done.insert(node.to_owned());
    None
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let graph = module_graph();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = circle_from(node, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "modules import each other in a circle: {}",
                circle.join(" → ")
            );
        }
    }
}

/// A file's module path: `src/api/jobs.rs` → `["api", "jobs"]`, `src/api/mod.rs` → `["api"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The paths a file's code (tests excluded) names from `crate::` or `super::`, made
/// absolute: `use super::{a, b::C}` in `api/jobs.rs` gives `["api", "a"]` and
/// `["api", "b", "C"]`.
fn absolute_paths(text: &str, me: &[String]) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|p| !p.is_empty())
            .collect()
    };
    let mut out = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", me[..me.len().saturating_sub(1)].to_vec()),
    ] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let before = rest[..at].chars().last();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                let items: Vec<&str> = match after.strip_prefix('{') {
                    Some(group) => group[..group.find('}').unwrap_or(group.len())]
                        .split(',')
                        .collect(),
                    None => vec![after],
                };
                for item in items {
                    let path = ident(item);
                    if !path.is_empty() && path[0] != "self" {
                        out.push(base.iter().cloned().chain(path).collect());
                    }
                }
            }
            rest = after;
        }
    }
    out
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let by_path: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            (
                module_path(&src, f),
                f.strip_prefix(&src).unwrap().display().to_string(),
            )
        })
        .collect();
    let mut graph: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for file in &files {
        let me = module_path(&src, file);
        let name = by_path[&me].clone();
        for path in absolute_paths(&std::fs::read_to_string(file).unwrap(), &me) {
            // The longest prefix that is a file of the crate.
            let target = (1..=path.len())
                .rev()
                .find_map(|n| by_path.get(&path[..n]).cloned());
            if let Some(target) = target.filter(|t| *t != name) {
                graph
                    .entry(name.clone())
                    .or_default()
                    .insert(target, Vec::new());
            }
        }
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = circle_from(node, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "files import each other in a circle: {}",
                circle.join(" → ")
            );
        }
    }
}

#[test]
fn the_checker_sees_grouped_and_plain_imports() {
    let text = "use crate::{db, domain::job::Job};\nuse crate::service::x;\nlet a = crate::metrics::f();\n#[cfg(test)]\nuse crate::api;";
    let found = imported(text);
    assert_eq!(
        found,
        ["db", "domain", "metrics", "service"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}
