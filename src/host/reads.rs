//! Which `--set` keys a script reads, found in its syntax tree before it runs: a key given on the
//! command line that neither the script nor a module it imports reads (as a variable, or with
//! `param("key", ...)`) is a typo whose run would silently use the default (`--set epoch=1`
//! for a script reading `epochs` trains 30 epochs). `gapscope run` and `gapscope sweep` refuse
//! it, naming the nearest key the script does read; `--allow-unused-set` lets it through.

use super::Host;
use rhai::{ASTNode, Expr, Position, Stmt, AST};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What a script and its imports read.
#[derive(Default, Debug)]
pub struct Reads {
    /// Names read as variables in the script itself (a module cannot see the run's variables).
    pub variables: BTreeSet<String>,
    /// Keys read with `param("key", ...)`, anywhere.
    pub params: BTreeSet<String>,
    /// Where a parameter's name is computed (`param(name, ...)`, a computed import path): the
    /// keys those read cannot be known.
    pub dynamic: Vec<String>,
    /// Top-level `let` of the script: a `--set` value under that name is replaced by the script's.
    pub declared: BTreeMap<String, Position>,
}

impl Reads {
    /// Reads of `ast` (the script at `source`) and, recursively, of the modules it imports.
    pub fn of(host: &Host, ast: &AST, source: &str) -> Reads {
        let mut reads = Reads::default();
        for stmt in ast.statements() {
            if let Stmt::Var(x, _, pos) = stmt {
                reads.declared.insert(x.0.name.to_string(), *pos);
            }
        }
        let mut seen = HashSet::new();
        reads.walk(host, ast, source, true, &mut seen);
        reads
    }

    fn walk(&mut self, host: &Host, ast: &AST, source: &str, is_script: bool, seen: &mut HashSet<String>) {
        let mut imports = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Expr(Expr::Variable(x, _, _))) if is_script && x.2.is_empty() => {
                    self.variables.insert(x.1.to_string());
                }
                // A call is an expression, or a statement of its own (`param("k", 1);`, a body's last line).
                Some(ASTNode::Expr(Expr::FnCall(f, pos))) | Some(ASTNode::Stmt(Stmt::FnCall(f, pos)))
                    if f.name == "param" && f.namespace.is_empty() =>
                {
                    match f.args.first() {
                        Some(Expr::StringConstant(key, _)) => {
                            self.params.insert(key.to_string());
                        }
                        _ => self.dynamic.push(super::position_text(source, *pos)),
                    }
                }
                Some(ASTNode::Stmt(Stmt::Import(x, pos))) => match &x.0 {
                    Expr::StringConstant(path, _) => imports.push(path.to_string()),
                    _ => self.dynamic.push(super::position_text(source, *pos)),
                },
                _ => {}
            }
            true
        });
        for path in imports {
            let name = path.trim_end_matches(".rhai");
            let (key, label, text) = match crate::stdlib::source(name) {
                Some(text) => (format!("stdlib:{name}"), format!("stdlib/{name}.rhai"), text.to_string()),
                None => {
                    let file = super::modules::module_file(Some(source), &path);
                    // A module that cannot be read fails the import itself, with its own message.
                    let Ok(text) = std::fs::read_to_string(&file) else { continue };
                    (std::fs::canonicalize(&file).unwrap_or(file.clone()).display().to_string(), file.display().to_string(), text)
                }
            };
            if !seen.insert(key) {
                continue;
            }
            if let Ok(module) = host.engine.compile(crate::files::without_bom(&text)) {
                self.walk(host, &module, &label, false, seen);
            }
        }
    }

    /// Every key the script reads, once each, for suggestions.
    fn names(&self) -> BTreeSet<&str> {
        self.variables.iter().chain(&self.params).map(String::as_str).collect()
    }

    /// An error naming each `--set` key the script does not use, or None when all are used.
    pub fn unused(&self, script: &str, keys: &[&str]) -> Option<String> {
        let mut problems = Vec::new();
        for &key in keys {
            if self.params.contains(key) {
                continue;
            }
            if let Some(pos) = self.declared.get(key) {
                problems.push(format!(
                    "--set {key}=... is replaced by the script's own `let {key}` at {}: read it there with param(\"{key}\", default)",
                    super::position_text(script, *pos)
                ));
                continue;
            }
            if self.variables.contains(key) {
                continue;
            }
            let near = crate::suggest::nearest(key, self.names());
            let hint = match near.as_slice() {
                [] => String::new(),
                some => format!("; did you mean {}?", some.iter().map(|k| format!("--set {k}")).collect::<Vec<_>>().join(" or ")),
            };
            problems.push(format!("--set {key}=... is never read by {script} or the modules it imports{hint}"));
        }
        if problems.is_empty() {
            return None;
        }
        let mut text = problems.join("\n");
        if !self.dynamic.is_empty() {
            text.push_str(&format!("\n(the script also reads parameters by computed names, at {}: ", self.dynamic.join(", ")));
            text.push_str("if it reads these keys that way, pass --allow-unused-set)");
        } else {
            text.push_str("\nNothing has run. Pass --allow-unused-set for a script that reads keys by computed names.");
        }
        Some(text)
    }
}
