//! The broker's modules form layers with every import pointing down (see
//! docs/architecture.md): this test reads the sources, finds every `crate::` and `super::`
//! path, and fails on an import from a higher layer or a circle between modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, top down; a module may import from its own layer or any below, never from above.
/// Within a layer, imports must not go round in a circle.
const LAYERS: &[(&str, &[&str])] = &[
    ("handle", &["handle"]),
    (
        "services",
        &[
            "amqp",
            "amqp::queue",
            "background",
            "bridge",
            "cluster",
            "console",
            "http",
        ],
    ),
    (
        "transport",
        &[
            "transport",
            "transport::listener",
            "transport::tls",
            "transport::ws",
        ],
    ),
    ("connection", &["connection"]),
    ("core", &["core", "auth"]),
    (
        "foundation",
        &[
            "clock",
            "config",
            "error",
            "fd_limit",
            "metrics",
            "transport::io",
        ],
    ),
];

/// Modules outside the layering: the crate root, the binary and its log writer, the fuzzing
/// entry points and the guide.
const OUTSIDE: &[&str] = &["", "main", "batched_log", "fuzzing", "manual"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its module path (`core::router`, `http`, ...).
fn modules(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name")
            .to_owned();
        let join = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else if name.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}::{name}")
            }
        };
        if path.is_dir() {
            modules(&path, &join(&name), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = match name.as_str() {
                "mod" | "lib" => join(""),
                _ => join(&name),
            };
            let text = std::fs::read_to_string(&path).expect("a readable source");
            out.push((module, text));
        }
    }
}

/// The code of `text` without comments and without `#[cfg(test)]` modules (a test may reach
/// anywhere).
fn code(text: &str) -> String {
    let mut kept = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if pending_test && skip_depth.is_none() && trimmed.starts_with("mod ") {
            skip_depth = Some(depth);
        }
        pending_test = false;
        depth = depth + opens - closes.min(depth + opens);
        if let Some(at) = skip_depth {
            if depth <= at && closes > 0 {
                skip_depth = None;
            }
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// The layer of `module`: the longest matching entry of [`LAYERS`]; `None` outside them.
fn layer(module: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, (_, members)) in LAYERS.iter().enumerate() {
        for member in *members {
            let matches = module == *member || module.starts_with(&format!("{member}::"));
            if matches && best.is_none_or(|(len, _)| member.len() > len) {
                best = Some((member.len(), index));
            }
        }
    }
    best.map(|(_, index)| index)
}

/// The names the crate root re-exports, and the module each comes from.
fn reexports(root: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let flat = code(root).replace('\n', " ");
    for statement in flat.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("#[cfg(feature = \"rocketmq\")] pub use "))
        else {
            continue;
        };
        let (path, names) = match rest.split_once("::{") {
            Some((path, names)) => (path, names.trim_end_matches('}').to_owned()),
            None => match rest.rsplit_once("::") {
                Some((path, name)) => (path, name.to_owned()),
                None => continue,
            },
        };
        for name in names.split(',') {
            let name = name.trim();
            if !name.is_empty() {
                map.insert(name.to_owned(), path.trim().to_owned());
            }
        }
    }
    map
}

/// The modules of this crate that `text` (the code of `module`) refers to.
fn imports(
    module: &str,
    text: &str,
    known: &BTreeSet<String>,
    reexported: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut resolve = |path: &str| {
        // The longest known module that `path` starts with.
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        for n in (1..=segments.len()).rev() {
            let candidate = segments[..n].join("::");
            if known.contains(&candidate) {
                found.insert(candidate);
                return;
            }
        }
        if let Some(first) = segments.first() {
            if let Some(from) = reexported.get(*first) {
                found.insert(from.clone());
            }
        }
    };
    for (start, _) in text.match_indices("crate::") {
        if start > 0 && text[..start].ends_with(|c: char| ident(c) || c == '$') {
            continue;
        }
        let rest = &text[start + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            for item in inner.split(',') {
                resolve(item.trim());
            }
        } else {
            let path: String = rest.chars().take_while(|&c| ident(c) || c == ':').collect();
            let path = path.trim_end_matches(':');
            let group = rest[path.len()..].strip_prefix("::{");
            match group {
                Some(group) => {
                    for item in group.split('}').next().unwrap_or_default().split(',') {
                        let item = item.trim().split(" as ").next().unwrap_or_default();
                        let item = item.split("::{").next().unwrap_or_default();
                        resolve(&format!("{path}::{item}"));
                    }
                }
                None => resolve(path),
            }
        }
    }
    // `super::x` from `a::b` is `a::x` (from a `mod.rs`, `a::b` itself is the parent).
    for (start, _) in text.match_indices("super::") {
        if start > 0 && text[..start].ends_with(|c: char| ident(c) || c == ':') {
            continue;
        }
        let rest = &text[start + "super::".len()..];
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let names: Vec<String> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().split("::").next().unwrap_or_default().to_owned())
                .collect(),
            None => vec![rest.chars().take_while(|&c| ident(c)).collect()],
        };
        for name in names {
            let candidate = if parent.is_empty() {
                name.clone()
            } else {
                format!("{parent}::{name}")
            };
            if known.contains(&candidate) {
                found.insert(candidate);
            } else if !parent.is_empty() {
                found.insert(parent.to_owned());
            }
        }
    }
    found.remove(module);
    found
}

#[test]
fn imports_point_down_the_layers_and_never_in_a_circle() {
    let mut files = Vec::new();
    modules(&src(), "", &mut files);
    let known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let root = files
        .iter()
        .find(|(m, _)| m.is_empty())
        .map(|(_, t)| t.clone())
        .expect("lib.rs");
    let reexported = reexports(&root);
    assert!(
        reexported.contains_key("BrokerConfig") && reexported.contains_key("Metrics"),
        "the re-exports of lib.rs were not understood: {reexported:?}"
    );
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, text) in &files {
        if OUTSIDE.contains(&module.as_str()) {
            continue;
        }
        let Some(own) = layer(module) else {
            panic!("module {module} is in no layer: add it to LAYERS");
        };
        let deps = imports(module, &code(text), &known, &reexported);
        for dep in &deps {
            if OUTSIDE.contains(&dep.as_str()) {
                upward.push(format!("{module} -> {dep} (outside the layers)"));
                continue;
            }
            let Some(theirs) = layer(dep) else { continue };
            if theirs < own {
                upward.push(format!(
                    "{module} ({}) -> {dep} ({})",
                    LAYERS[own].0, LAYERS[theirs].0
                ));
            }
        }
        graph.insert(module.clone(), deps);
    }
    assert!(
        upward.is_empty(),
        "imports pointing up the layers:\n{}",
        upward.join("\n")
    );
    // A module's parent (`core` for `core::router`) declares it; that edge is not an import.
    let circles = circles(&graph);
    assert!(circles.is_empty(), "import circles: {circles:?}");
    // The listing, for whoever wants to see it: `cargo test --test layers -- --nocapture`.
    for (module, deps) in &graph {
        println!(
            "{module} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}

/// Every circle of imports between modules that are not nested in each other.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let nested =
        |a: &str, b: &str| a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"));
    let mut found = Vec::new();
    for start in graph.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if nested(&at, next) {
                    continue;
                }
                if next == start {
                    let mut circle = path.clone();
                    circle.push(next.clone());
                    found.push(circle);
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    found
}

#[test]
fn the_reader_finds_imports_it_must_find() {
    let known: BTreeSet<String> = ["core", "core::router", "core::deliver", "config", "error"]
        .into_iter()
        .map(String::from)
        .collect();
    let reexported: BTreeMap<String, String> =
        [("BrokerError".to_owned(), "error".to_owned())].into();
    let text = "use super::deliver::{self, Blocked};\nuse crate::{config::Limits, BrokerError};\n";
    let found = imports("core::router", &code(text), &known, &reexported);
    assert_eq!(
        found,
        ["config", "core::deliver", "error"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let test_only = "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::config::Limits;\n}\n";
    assert!(imports("core::router", &code(test_only), &known, &reexported).is_empty());
}
