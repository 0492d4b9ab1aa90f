//! The house rule as a test: no import circle between the crate's modules. Each file's
//! `crate::…` and `super::…` paths (outside its test module) are resolved to the deepest module
//! file they name; a module may use its own ancestors (their items), and the rest must form no
//! cycle, so the modules have an order in which each uses only those below it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Module = rel.iter().map(|p| p.to_string_lossy().to_string()).collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // The test module at the end of a file may reach anywhere.
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(&text).to_string();
            out.insert(parts, text);
        }
    }
    out
}

/// The `crate::a::b` and `super::a` paths in `text`, as module paths relative to the crate.
fn paths(text: &str, me: &[String]) -> Vec<Module> {
    let mut out = Vec::new();
    for (start, _) in text.match_indices("crate::").chain(text.match_indices("super::")) {
        if start > 0 && text[..start].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut rest = &text[start..];
        let is_crate = rest.starts_with("crate::");
        // `super::super::x` climbs once per `super`.
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        let body = if is_crate { &rest[7..] } else { rest };
        let mut segs: Module = Vec::new();
        for seg in body.split("::") {
            let name: String = seg.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if name.is_empty() || !name.starts_with(|c: char| c.is_lowercase()) {
                // A group `{a, b::c}`: each lower-case head is a module path too.
                if let Some(group) = seg.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or("");
                    for item in group.split(',') {
                        let head: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if head.starts_with(|c: char| c.is_lowercase()) && head != "self" {
                            let mut p = segs.clone();
                            p.push(head);
                            out.push(p);
                        }
                    }
                }
                break;
            }
            segs.push(name);
            if seg.len() > segs.last().unwrap().len() {
                break;
            }
        }
        let full = if is_crate {
            segs
        } else {
            // A file's `super` is its parent module; a mod.rs file is its package, so the same.
            let mut base = me[..me.len().saturating_sub(up)].to_vec();
            base.extend(segs);
            base
        };
        out.push(full);
    }
    out
}

fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mods = modules(src);
    let resolve = |p: &Module| -> Module {
        let mut p = p.clone();
        while !p.is_empty() && !mods.contains_key(&p) {
            p.pop();
        }
        p
    };
    let mut g: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (me, text) in &mods {
        let edges = g.entry(me.clone()).or_default();
        for p in paths(text, me) {
            let target = resolve(&p);
            let ancestor = target.len() < me.len() && me[..target.len()] == target[..];
            if !target.is_empty() && &target != me && !ancestor {
                edges.insert(target);
            }
        }
    }
    g
}

/// A cycle in `g`, if there is one (depth-first search).
fn cycle(g: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        v: &Module,
        g: &BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<Module, Mark>,
        path: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        match marks.get(v) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let at = path.iter().position(|p| p == v).unwrap_or(0);
                let mut c = path[at..].to_vec();
                c.push(v.clone());
                return Some(c);
            }
            None => {}
        }
        marks.insert(v.clone(), Mark::Open);
        path.push(v.clone());
        for w in g.get(v).into_iter().flatten() {
            if let Some(c) = visit(w, g, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(v.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for v in g.keys() {
        if let Some(c) = visit(v, g, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_modules_import_in_one_direction() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.len() > 100, "read only {} modules", g.len());
    if let Some(c) = cycle(&g) {
        let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
        panic!("import circle: {}", names.join(" -> "));
    }
}

#[test]
fn a_circle_is_found() {
    // The check can fail: two modules naming each other are a circle.
    let m = |s: &str| -> Module { s.split("::").map(str::to_string).collect() };
    let mut g = BTreeMap::new();
    g.insert(m("host::train"), BTreeSet::from([m("host::method")]));
    g.insert(m("host::method"), BTreeSet::from([m("host::scripted::method")]));
    g.insert(m("host::scripted::method"), BTreeSet::from([m("host::train")]));
    assert_eq!(cycle(&g).map(|c| c.len()), Some(4));
    g.insert(m("host::scripted::method"), BTreeSet::new());
    assert!(cycle(&g).is_none());
}
