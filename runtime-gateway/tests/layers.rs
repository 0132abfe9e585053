//! The crate's layers (ARCHITECTURE.md, `runtime-gateway`): `surface` → `engine` → `ledger` →
//! `base`, with `lib.rs` and `main.rs` on top. A module may import from its own layer and the
//! layers below, never from one above. This reads every file under `src/`, finds each
//! `crate::<module>` and `super::` path, and fails naming the file, the line and the upward
//! import.

use std::path::{Path, PathBuf};

/// The layers, bottom first; a file's layer is its top folder under `src/`.
const LAYERS: [&str; 4] = ["base", "ledger", "engine", "surface"];

/// The rank of the top (`lib.rs`, `main.rs`), above every layer.
const TOP: usize = LAYERS.len();

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

/// The module path of a file under `src/` (`engine/push/mod.rs` → `[engine, push]`).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a line: nothing of a comment (`//` outside a string literal).
fn code(line: &str) -> &str {
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '/' if !in_str && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = c;
    }
    line
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '*')).unwrap_or(s.len());
    &s[..end]
}

/// The first segments named after a path prefix: `x` in `x::…`, or each item of `{a::…, b}`.
fn first_segments(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident_at(rest).to_string()];
    };
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(ident_at(group[start..i].trim()).to_string());
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(ident_at(group[start..i].trim()).to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.retain(|s| !s.is_empty() && s != "self");
    out
}

/// Whether `line[at..]` starts a path (not the tail of a longer identifier).
fn starts_path(line: &str, at: usize) -> bool {
    !line[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// The upward imports of one file: `rel` is its path under `src/`, `text` its contents.
fn violations(rel: &Path, text: &str) -> Vec<String> {
    let module = module_path(rel);
    let own = match module.first() {
        None => TOP,
        Some(top) => match rank(top) {
            Some(r) => r,
            None => return vec![format!("src/{}: {top:?} is not a layer folder ({LAYERS:?})", rel.display())],
        },
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = code(line);
        let mut targets: Vec<String> = Vec::new();
        for (at, _) in line.match_indices("crate::") {
            if starts_path(line, at) {
                targets.extend(first_segments(&line[at + "crate::".len()..]));
            }
        }
        let mut at = 0;
        while let Some(found) = line[at..].find("super::") {
            let start = at + found;
            let mut end = start;
            let mut ups = 0;
            while line[end..].starts_with("super::") {
                ups += 1;
                end += "super::".len();
            }
            at = end;
            if !starts_path(line, start) {
                continue;
            }
            let base: Vec<String> = module.iter().take(module.len().saturating_sub(ups)).cloned().collect();
            match base.first() {
                Some(layer) => targets.push(layer.clone()),
                // At the crate root: the next segment names the layer; anything else is this
                // file's own module, seen from an inline module (`mod tests { use super::*; }`).
                None => targets.extend(first_segments(&line[end..]).into_iter().filter(|s| rank(s).is_some())),
            }
        }
        for t in targets {
            match rank(&t) {
                Some(r) if r > own => out.push(format!(
                    "src/{}:{}: {} imports from {t}, a layer above it: {}",
                    rel.display(),
                    n + 1,
                    module.first().map_or("the crate root", String::as_str),
                    line.trim()
                )),
                Some(_) => {}
                None => out.push(format!(
                    "src/{}:{}: crate::{t} is in no layer (put it under one of {LAYERS:?}): {}",
                    rel.display(),
                    n + 1,
                    line.trim()
                )),
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn imports_only_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} files under {}", files.len(), src.display());
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy();
        if rel.iter().count() == 1 && !matches!(top.as_ref(), "lib.rs" | "main.rs") {
            found.push(format!("src/{}: only lib.rs and main.rs sit above the layer folders", rel.display()));
            continue;
        }
        found.extend(violations(rel, &std::fs::read_to_string(f).unwrap()));
    }
    assert!(found.is_empty(), "imports that point up a layer:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_upward_imports() {
    let at = |p: &str, text: &str| violations(Path::new(p), text);
    // Upward, in every spelling.
    assert_eq!(at("engine/tasks.rs", "use crate::surface::state::Gateway;").len(), 1);
    assert_eq!(at("ledger/mod.rs", "use crate::{base::BoxFuture, engine::tasks::Engine};").len(), 1);
    assert_eq!(at("base/config.rs", "    let x = crate::ledger::append(s, v);").len(), 1);
    assert_eq!(at("engine/push/policy.rs", "use super::super::super::surface::error;").len(), 1);
    let e = at("engine/tasks.rs", "fn f() {\n    use crate::surface::error::GatewayError;\n}");
    assert!(e[0].starts_with("src/engine/tasks.rs:2: engine imports from surface"), "{e:?}");
    // Down, sideways, comments and strings are fine.
    assert!(
        at("surface/platform.rs", "use crate::{engine::tasks::Engine, ledger::LedgerSink, base::now_ns};").is_empty()
    );
    assert!(at("engine/push/policy.rs", "use super::Pusher;\nuse super::super::tasks::Engine;").is_empty());
    assert!(at("engine/mod.rs", "mod tests {\n    use super::*;\n}").is_empty());
    assert!(at("base/jcs.rs", "/// See [`crate::surface::a2a`].\nlet s = 1; // crate::surface").is_empty());
    assert!(at("main.rs", "use runtime_gateway::surface::router::app;").is_empty());
    // A module outside the layers is named.
    assert!(at("engine/tasks.rs", "use crate::util::x;")[0].contains("in no layer"));
    assert!(at("util/x.rs", "")[0].contains("not a layer folder"));
}
