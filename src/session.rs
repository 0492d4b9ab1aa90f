//! An interactive session, independent of any terminal: the scope, functions and imports that
//! persist from one input to the next, the `:` commands, completion candidates, and whether an
//! input is complete. The REPL (`repl.rs`) and the notebook kernel (`kernel/`) feed it.

use crate::host::Host;
use crate::script::{self, ScriptError};
use rhai::{Dynamic, Scope, AST};
use std::time::Instant;

pub const SOURCE: &str = "repl";

/// What one input produced, before rendering: a front-end that shows values richly (the
/// notebook kernel) takes the value itself.
pub enum Evaluated {
    /// The value of the input's last expression (unit when it has none).
    Value(Dynamic),
    /// A REPL command's text.
    Output(String),
    Failed(String),
    Quit,
}

/// What one input produced.
pub enum Outcome {
    /// Text to show (may be empty).
    Output(String),
    /// The input failed; the session and its variables are intact.
    Failed(String),
    Quit,
}

pub struct Session {
    pub host: Host,
    pub scope: Scope<'static>,
    /// Functions defined so far (`fn f(x) { ... }` persists across inputs).
    functions: AST,
    /// The `import` statements of earlier inputs, re-run before each input so modules persist.
    imports: AST,
    echo: AST,
    first_line: usize,
    /// The name errors give the input (`repl:2:5: ...`; the kernel names each cell).
    pub source: String,
}

impl Session {
    pub fn new(host: Host) -> Self {
        let echo = host.engine.compile("to_debug(__echo)").expect("echo expression compiles");
        Session {
            host,
            scope: Scope::new(),
            functions: AST::empty(),
            imports: AST::empty(),
            echo,
            first_line: 1,
            source: SOURCE.to_string(),
        }
    }

    /// Whether `input` is a whole statement yet: brackets and strings closed, and the parser
    /// not stopped by the end of the text (`let q = 1 +` continues on the next line).
    pub fn is_complete(&self, input: &str) -> bool {
        if input.trim_start().starts_with(':') {
            return true;
        }
        is_complete(input) && !matches!(self.host.engine.compile(input), Err(e) if matches!(*e.0, rhai::ParseErrorType::UnexpectedEOF))
    }

    /// Runs one complete input: a REPL command or Rhai code.
    pub fn eval_input(&mut self, input: &str) -> Outcome {
        self.eval_input_at(input, 1)
    }

    /// As `eval_input`, for input that starts on line `first_line` of a longer stream, so error
    /// positions name the stream's line.
    pub fn eval_input_at(&mut self, input: &str, first_line: usize) -> Outcome {
        match self.evaluate(input, first_line) {
            Evaluated::Value(v) => Outcome::Output(self.render(v)),
            Evaluated::Output(s) => Outcome::Output(s),
            Evaluated::Failed(e) => Outcome::Failed(e),
            Evaluated::Quit => Outcome::Quit,
        }
    }

    /// Runs one complete input and returns its value unrendered.
    pub fn evaluate(&mut self, input: &str, first_line: usize) -> Evaluated {
        self.first_line = first_line.max(1);
        crate::interrupt::clear();
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Evaluated::Output(String::new());
        }
        if let Some(cmd) = trimmed.strip_prefix(':') {
            return match self.command(cmd) {
                Outcome::Output(s) => Evaluated::Output(s),
                Outcome::Failed(e) => Evaluated::Failed(e),
                Outcome::Quit => Evaluated::Quit,
            };
        }
        match trimmed.trim_end_matches(';').trim() {
            "help" | "help()" => return Evaluated::Output(self.host.docs.listing()),
            "quit" | "exit" => return Evaluated::Quit,
            _ => {}
        }
        let padded = format!("{}{input}", "\n".repeat(self.first_line - 1));
        let source = self.source.clone();
        match self.run_code(&source, &padded) {
            Ok(v) => Evaluated::Value(v),
            Err(e) => Evaluated::Failed(e.0),
        }
    }

    fn command(&mut self, cmd: &str) -> Outcome {
        let (name, arg) = cmd.split_once(char::is_whitespace).map_or((cmd, ""), |(n, a)| (n, a.trim()));
        match name {
            "q" | "quit" | "exit" => Outcome::Quit,
            "vars" => Outcome::Output(self.vars()),
            "help" => Outcome::Output(format!("{}\n{}", self.host.docs.listing(), COMMANDS)),
            "load" if !arg.is_empty() => match std::fs::read_to_string(arg) {
                Ok(text) => match self.run_code(arg, &text) {
                    Ok(_) => Outcome::Output(format!("loaded {arg}")),
                    Err(e) => Outcome::Failed(e.0),
                },
                Err(e) => Outcome::Failed(format!(":load {arg}: {e}")),
            },
            "time" if !arg.is_empty() => {
                let start = Instant::now();
                let source = self.source.clone();
                let r = self.run_code(&source, arg);
                let took = format_duration(start.elapsed().as_secs_f64());
                match r {
                    Ok(v) => {
                        let shown = self.render(v);
                        Outcome::Output(if shown.is_empty() { format!("time: {took}") } else { format!("{shown}\ntime: {took}") })
                    }
                    Err(e) => Outcome::Failed(format!("{}\ntime: {took}", e.0)),
                }
            }
            _ => Outcome::Failed(format!("unknown command ':{cmd}'\n{COMMANDS}")),
        }
    }

    fn run_code(&mut self, source: &str, text: &str) -> Result<Dynamic, ScriptError> {
        let ast = script::compile(&self.host, &self.scope, source, text)?;
        let merged = self.imports.merge(&self.functions).merge(&ast);
        let result = script::eval(&self.host, &mut self.scope, source, &merged);
        self.functions = merged.clone_functions_only();
        self.keep_imports(&ast);
        result
    }

    /// The input's top-level imports join those re-run before each input, wherever they stood
    /// and whatever followed them, as a script keeps an import to its end. One that does not
    /// load on its own (a typo in its path) is left out, or every later input would fail on it.
    fn keep_imports(&mut self, ast: &AST) {
        let key = |stmt: &rhai::Stmt| match stmt {
            rhai::Stmt::Import(x, _) => Some((format!("{:?}", x.0), x.1.name.to_string())),
            _ => None,
        };
        for stmt in ast.statements() {
            let Some(this) = key(stmt) else { continue };
            if self.imports.statements().iter().any(|kept| key(kept).as_ref() == Some(&this)) {
                continue;
            }
            let one = AST::new_with_source([stmt.clone()], rhai::Module::new(), ast.source().unwrap_or(SOURCE));
            let with = self.imports.merge(&one);
            if script::guard(|| self.host.engine.run_ast_with_scope(&mut Scope::new(), &with).map_err(|e| ScriptError(e.to_string())))
                .is_ok()
            {
                self.imports = with;
            }
        }
    }

    /// The echo of a value: PyTorch-style for tensors, Rhai's debug form for the rest.
    pub fn render(&self, value: Dynamic) -> String {
        if value.is_unit() {
            return String::new();
        }
        let mut scope = Scope::new();
        scope.push_dynamic("__echo", value.clone());
        let shown = script::guard(|| {
            self.host.engine.eval_ast_with_scope::<String>(&mut scope, &self.echo).map_err(|e| ScriptError(e.to_string()))
        });
        shown.unwrap_or_else(|_| value.to_string())
    }

    fn vars(&self) -> String {
        let mut lines = Vec::new();
        for (name, constant, value) in self.scope.iter() {
            let kind = if let Some(t) = value.clone().try_cast::<crate::host::ScriptTensor>() {
                let t = t.tensor();
                format!("Tensor{:?} {}", t.size(), crate::tensor::dtype::kind_name(t.kind()))
            } else {
                self.host.engine.map_type_name(value.type_name()).to_string()
            };
            lines.push(format!("{}{name}: {kind}", if constant { "const " } else { "" }));
        }
        for f in self.functions.iter_functions() {
            lines.push(format!("fn {}({})", f.name, f.params.join(", ")));
        }
        if lines.is_empty() {
            "(no variables yet)".into()
        } else {
            lines.join("\n")
        }
    }

    /// Names for completion: variables in scope and functions defined in the session.
    pub fn local_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.scope.iter().map(|(n, _, _)| n.to_string()).collect();
        names.extend(self.functions.iter_functions().map(|f| f.name.to_string()));
        names
    }
}

pub const COMMANDS: &str = "commands: :load FILE   :time EXPR   :vars   :help   :quit   (help(\"name\") for one function)";

fn format_duration(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.1} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.3} s")
    }
}

/// Whether an input is complete: brackets balanced outside strings and comments, no string left
/// open. An open `{`, `(` or `[` means the statement continues on the next line.
pub fn is_complete(input: &str) -> bool {
    let mut depth = 0i64;
    let mut chars = input.chars().peekable();
    let mut in_str: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                c if c == q => in_str = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => in_str = Some(c),
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                // Inside an unclosed block comment the statement goes on.
                if !closed {
                    return false;
                }
            }
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            _ => {}
        }
    }
    // Unbalanced closers are complete (and will be a syntax error), not a reason to wait.
    in_str.is_none() && depth <= 0
}

/// Completion candidates for the word before `pos`: registered functions, keywords, commands
/// and the session's own variables and functions. Returns where the word starts.
pub fn complete_word(builtins: &[String], locals: &[String], line: &str, pos: usize) -> (usize, Vec<String>) {
    let start = line[..pos].rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |i| i + 1);
    let word = &line[start..pos];
    if word.is_empty() {
        return (pos, vec![]);
    }
    let mut out: Vec<String> = builtins.iter().chain(locals).filter(|n| n.starts_with(word)).cloned().collect();
    out.sort();
    out.dedup();
    (start, out)
}

/// Everything completion offers besides the session's own names.
pub fn builtin_names(session: &Session) -> Vec<String> {
    let mut names: Vec<String> = session
        .host
        .engine
        .gen_fn_signatures(false)
        .iter()
        .map(|s| crate::host::system::documented_name(s))
        .filter(|n| n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .collect();
    names.extend(crate::stdlib::MODULES.iter().map(|(n, _)| format!("\"{n}\"")));
    for kw in [
        "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "break", "continue", "return", "import", "as", "true", "false",
        "print", "debug",
    ] {
        names.push(kw.to_string());
    }
    for cmd in [":load", ":time", ":vars", ":help", ":quit"] {
        names.push(cmd.to_string());
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completeness() {
        assert!(is_complete("let x = 1;"));
        assert!(!is_complete("fn f(x) {"));
        assert!(!is_complete("let s = \"abc"));
        assert!(is_complete("let s = \"{\";"));
        assert!(is_complete("// {\nlet x = 1;"));
        assert!(!is_complete("let a = [1,\n2"));
        assert!(is_complete("}"));
    }
}
