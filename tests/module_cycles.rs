//! The module graphs of the rule core and the scheduler have no cycle (ARCHITECTURE.md,
//! "Invariants"): shared vocabulary lives in a module that both users import (`phase_kind`,
//! `award_class`, `notice_kind`, `exit_criteria` in the core; `kind` in the scheduler), so a
//! module can be read, tested and moved without dragging its importers along.
//!
//! Checked on the source: a module is a file of `src/` (a directory with `mod.rs` is one
//! module), a `mod name { … }` block inside one, or a file of `x/` beside `x.rs` (`x::name`);
//! it depends on every `crate::name` (or child `crate::x::name`) it names in code, a name the
//! crate root re-exports counting as its module (comments and `#[cfg(test)]` modules left
//! out).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Removes comments (line and block) and string literals' contents, keeping the code.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if b[i] == '/' && b.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == '*' && b[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == 'r'
            && (b.get(i + 1) == Some(&'"') || b.get(i + 1) == Some(&'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == '_'))
        {
            // A raw string r"…" or r#"…"#: skip to the quote followed by as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(b[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len()
                && !(b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')))
            {
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1 + hashes;
        } else if b[i] == '"' {
            // A string: skip to its end (raw strings with `#` are rare in module paths).
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if b[i] == '\'' && i + 2 < b.len() && b[i + 2] == '\'' {
            // A char literal such as '{' must not count as a brace.
            i += 3;
        } else if b[i] == '\'' && b.get(i + 1) == Some(&'\\') {
            i += 2;
            while i < b.len() && b[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Splits a file's code into its own text and its inline `mod name { … }` blocks (one level),
/// dropping `#[cfg(test)]` blocks.
fn split_modules(code: &str) -> (String, Vec<(String, String)>) {
    let mut own = String::new();
    let mut inner = Vec::new();
    let mut rest = code;
    loop {
        let Some(at) = find_mod_block(rest) else {
            own.push_str(rest);
            break;
        };
        let (start, name, open) = at;
        let before = &rest[..start];
        let test = before.trim_end().ends_with("#[cfg(test)]");
        own.push_str(before);
        let mut depth = 0usize;
        let mut end = open;
        for (j, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        if !test {
            inner.push((name, rest[open..end].to_owned()));
        }
        rest = &rest[end..];
    }
    (own, inner)
}

/// The next `mod name {` at a line start: (its start, the name, the offset of `{`).
fn find_mod_block(s: &str) -> Option<(usize, String, usize)> {
    let mut offset = 0;
    for line in s.split_inclusive('\n') {
        let t = line.trim_start();
        let t2 = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        if let Some(r) = t2.strip_prefix("mod ") {
            let name: String = r
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if r[name.len()..].trim_start().starts_with('{') {
                let open = offset + line.find('{').unwrap();
                return Some((offset, name, open));
            }
        }
        offset += line.len();
    }
    None
}

/// The crate modules a piece of code names (`crate::x`, and `x` inside `use crate::{x, …}`).
fn named(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inside = &group[..group.find(';').unwrap_or(group.len())];
            for part in inside.split(',') {
                let first: String = part
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.insert(first);
            }
        } else {
            // `a`, or `a::b` (a child module, when the graph has it as a node).
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut parts = path.split("::");
            let first = parts.next().unwrap_or_default().to_owned();
            match parts.next().filter(|s| !s.is_empty()) {
                Some(second) => out.insert(format!("{first}::{second}")),
                None => out.insert(first),
            };
        }
    }
    out
}

/// The crate root's re-exports (`pub use module::{A, B}` in `lib.rs`): name → module, so
/// `crate::A` counts as an edge to `module`.
fn root_exports(src: &Path) -> BTreeMap<String, String> {
    let lib = code_only(&std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default());
    let mut out = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim();
            if !name.is_empty() {
                out.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    out
}

fn graph(src: &Path) -> Graph {
    let exports = root_exports(src);
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && !path.join("mod.rs").exists() {
            // `x.rs` with its child modules in `x/`: each child is a node `x::child`.
            for f in std::fs::read_dir(&path).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "rs") {
                    let child = f.file_stem().unwrap().to_string_lossy().into_owned();
                    let mut text = std::fs::read_to_string(&f).unwrap();
                    // `super::` in a child is its parent.
                    if text.contains("super::") {
                        text.push_str(&format!("\nuse crate::{stem};\n"));
                    }
                    files.insert(format!("{stem}::{child}"), text);
                }
            }
        } else if path.is_dir() {
            let mut text = String::new();
            for f in std::fs::read_dir(&path).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "rs") {
                    text.push_str(&std::fs::read_to_string(f).unwrap());
                    text.push('\n');
                }
            }
            if path.join("mod.rs").exists() {
                files.insert(stem, text);
            }
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            files.insert(stem, std::fs::read_to_string(&path).unwrap());
        }
    }
    let top: BTreeSet<String> = files
        .keys()
        .map(|k| k.split("::").next().unwrap().to_owned())
        .collect();
    let resolve = |deps: BTreeSet<String>| -> BTreeSet<String> {
        deps.into_iter()
            .map(|d| exports.get(&d).cloned().unwrap_or(d))
            .collect()
    };
    let mut g = Graph::new();
    for (name, text) in &files {
        let (own, inner) = split_modules(&code_only(text));
        g.insert(name.clone(), resolve(named(&own)));
        for (child, body) in inner {
            let mut deps = resolve(named(&body));
            // `super::` inside a child is its parent file.
            if body.contains("super::") {
                deps.insert(name.clone());
            }
            g.insert(format!("{name}::{child}"), deps);
        }
    }
    // Only edges to the crate's own modules, never to oneself; a child counts as its own node.
    let nodes: BTreeSet<String> = g.keys().cloned().collect();
    for (name, deps) in g.iter_mut() {
        // `crate::a::b` is an edge to the child `a::b` where that is a node, else to `a`.
        *deps = deps
            .iter()
            .map(|d| match d.split_once("::") {
                Some(_) if nodes.contains(d) => d.clone(),
                Some((first, _)) => first.to_owned(),
                None => d.clone(),
            })
            .filter(|d| (top.contains(d) || d.contains("::")) && nodes.contains(d) && d != name)
            .collect();
    }
    g
}

/// A cycle of `g`, if it has one.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(g, n, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

fn crate_src(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../services")
        .join(name)
        .join("src")
}

#[test]
fn the_rule_core_has_no_module_cycle() {
    let g = graph(&crate_src("core"));
    assert!(g.len() > 15, "{g:?}");
    assert!(
        g["school"].contains("phase"),
        "the parser sees imports: {g:?}"
    );
    if let Some(c) = cycle(&g) {
        panic!("services/core imports in a circle: {}", c.join(" → "));
    }
}

#[test]
fn the_scheduler_has_no_module_cycle() {
    let g = graph(&crate_src("scheduler"));
    assert!(g.len() > 10, "{g:?}");
    assert!(
        g["planning"].contains("outbox"),
        "the parser sees imports: {g:?}"
    );
    if let Some(c) = cycle(&g) {
        panic!("services/scheduler imports in a circle: {}", c.join(" → "));
    }
}

#[test]
fn the_check_finds_a_cycle() {
    let mut g = Graph::new();
    g.insert("a".into(), ["b".to_owned()].into());
    g.insert("b".into(), ["a".to_owned()].into());
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
    let code = code_only(
        "use crate::{x, y::Z};\n// crate::w\nfn f() { crate::v::g() }\n#[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let (own, inner) = split_modules(&code);
    assert_eq!(
        named(&own),
        ["v::g", "x", "y"].into_iter().map(String::from).collect()
    );
    assert!(inner.is_empty());
}
