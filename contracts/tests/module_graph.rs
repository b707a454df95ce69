//! Every crate's module import graph is acyclic: imports run one way (in contracts, from the
//! operations down through the contract modules and the transfer primitives to the leaf
//! modules; in node, from the loop, API and network down to the shared mailbox and storage),
//! so no files import each other in a circle. It reads the sources of every crate of the
//! workspace: api, contracts, consensus, node, testnet and fuzz (a library's modules; a
//! binary's own modules, declared only in its main.rs, form another crate and are left out).
//!
//! An edge is a `crate::a::b` path in one file's code (comments are skipped) naming another
//! file's module; a path naming no module file (`crate::ApplyError`) names the crate root,
//! whose edges are its `pub use` re-exports. Write in-crate paths with `crate::`, not
//! `super::`, so this test sees them.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every source file under `directory`, by module path (`ops::transfer`; the root is "").
fn modules(directory: &Path, prefix: &[String], found: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut nested = prefix.to_vec();
            nested.push(name);
            modules(&path, &nested, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let mut segments = prefix.to_vec();
            if name != "mod" && name != "lib" {
                segments.push(name);
            }
            found.insert(segments.join("::"), std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The code of a file without its line comments.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `crate::` reference names, expanding one level of `{a, b::c}` groups.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        let rest = &code[start + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                paths.push(segments(item.trim()));
            }
        } else {
            paths.push(segments(rest));
        }
    }
    paths
}

/// The leading `a::b::c` identifiers of a path.
fn segments(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|character: char| !(character.is_alphanumeric() || character == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        found.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    found
}

/// The module a path names: its longest prefix that is a module file, or the root.
fn resolve(path: &[String], modules: &BTreeMap<String, String>) -> String {
    (1..=path.len())
        .rev()
        .map(|length| path[..length].join("::"))
        .find(|candidate| modules.contains_key(candidate))
        .unwrap_or_default()
}

/// The crates whose graphs are checked, as folders of the workspace.
const CRATES: &[&str] = &["api", "contracts", "consensus", "node", "testnet", "fuzz"];

/// The modules `root_file` declares with `mod name;` or `pub mod name;`.
fn declared(root_file: &str) -> BTreeSet<String> {
    code(root_file)
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .or_else(|| line.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_string)
        })
        .collect()
}

fn graph(source: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = BTreeMap::new();
    modules(source, &[], &mut files);
    // A binary next to a library: its main.rs and the modules only it declares are another
    // crate, whose `crate::` paths mean something else.
    if let (Ok(main), Some(library)) = (
        std::fs::read_to_string(source.join("main.rs")),
        files.get("").cloned(),
    ) {
        let own = declared(&library);
        let binary_only: BTreeSet<String> = declared(&main).difference(&own).cloned().collect();
        files.retain(|module, _| {
            module != "main"
                && !binary_only
                    .iter()
                    .any(|name| module == name || module.starts_with(&format!("{name}::")))
        });
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let code = code(text);
        let mut targets: BTreeSet<String> = crate_paths(&code)
            .iter()
            .map(|path| resolve(path, &files))
            .collect();
        if module.is_empty() {
            // The root's own edges are its re-exports, written without `crate::`.
            for line in code.lines() {
                if let Some(rest) = line.trim().strip_prefix("pub use ") {
                    targets.insert(resolve(&segments(rest), &files));
                }
            }
        }
        targets.remove(module);
        edges.insert(module.clone(), targets);
    }
    edges
}

/// Tarjan's strongly connected components; each component of two or more files is a cycle.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Search<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a str) {
            let number = self.index.len();
            self.index.insert(node, number);
            self.low.insert(node, number);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in &self.edges[node] {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                loop {
                    let member = self.stack.pop().unwrap();
                    self.on_stack.remove(member);
                    component.push(member.to_string());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }
    let mut search = Search {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in edges.keys() {
        if !search.index.contains_key(node.as_str()) {
            search.visit(node);
        }
    }
    search.components
}

#[test]
fn no_module_imports_itself_through_others() {
    // Proves no crate's files import each other in a circle, naming each circle found.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in CRATES {
        let crate_edges = graph(&workspace.join(name).join("src"));
        assert!(crate_edges.len() > 2, "the sources of {name} were found");
        for component in cycles(&crate_edges) {
            found.push(
                component
                    .iter()
                    .map(|module| format!("{name}::{module}"))
                    .collect(),
            );
        }
        for (module, targets) in crate_edges {
            let targets: BTreeSet<String> = targets
                .iter()
                .map(|target| format!("{name}::{target}"))
                .collect();
            edges.insert(format!("{name}::{module}"), targets);
        }
    }
    let found: Vec<Vec<String>> = found;
    let report: Vec<String> = found
        .iter()
        .map(|component| {
            let inside: BTreeSet<&String> = component.iter().collect();
            let links: Vec<String> = component
                .iter()
                .flat_map(|from| {
                    edges[from]
                        .iter()
                        .filter(|to| inside.contains(to))
                        .map(move |to| format!("{from} -> {to}"))
                })
                .collect();
            format!("{} files: {}", component.len(), links.join(", "))
        })
        .collect();
    assert!(found.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn the_graph_reader_finds_grouped_and_nested_paths() {
    // Proves the path reader sees grouped imports and resolves nested modules and the root.
    let paths = crate_paths("use crate::{a::B, c}; let x = crate::d::e::f(); // crate::g");
    assert_eq!(paths.len(), 4);
    let mut files = BTreeMap::new();
    files.insert("d".to_string(), String::new());
    files.insert("d::e".to_string(), String::new());
    assert_eq!(resolve(&paths[2], &files), "d::e");
    assert_eq!(resolve(&paths[0], &files), "");
    assert_eq!(crate_paths(&code("let x = 1; // crate::g")).len(), 0);
}
