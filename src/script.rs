//! Running Rhai source: compiling with a source name, `--set` values, error reports of the form
//! `FILE:LINE:COL: message`, and a last-resort net that turns a panic into an error.

use crate::host::Host;
use rhai::{Dynamic, EvalAltResult, Expr, ParseError, Scope, AST};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A failed script: the report to print (one or more lines).
#[derive(Debug)]
pub struct ScriptError(pub String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

/// Parses a `--set` value: int, finite float, bool, else a string (surrounding quotes removed).
pub fn parse_set_value(raw: &str) -> Dynamic {
    let s = raw.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Dynamic::from_int(i);
    }
    // Finite numbers only: "inf" and "nan" are text (a tag, a name), never a setting's value.
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            return Dynamic::from_float(f);
        }
    }
    match s {
        "true" => return Dynamic::from_bool(true),
        "false" => return Dynamic::from_bool(false),
        _ => {}
    }
    let unquoted = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s);
    Dynamic::from(unquoted.to_string())
}

/// Splits `key=value`, checking the key is a valid variable name.
pub fn parse_set(arg: &str) -> Result<(String, Dynamic), String> {
    let (k, v) = arg.split_once('=').ok_or_else(|| format!("--set expects key=value, got '{arg}'"))?;
    let k = k.trim();
    let valid =
        k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("--set key '{k}' is not a valid variable name"));
    }
    Ok((k.to_string(), parse_set_value(v)))
}

pub use crate::host::position_text;

pub fn format_parse_error(source: &str, err: &ParseError) -> String {
    format!("{}: syntax error: {}", position_text(source, err.1), err.0)
}

/// `FILE:LINE:COL: message`, for the innermost failure, followed by the call chain that led
/// there (functions and modules), innermost first.
pub fn format_eval_error(source: &str, err: &EvalAltResult) -> String {
    let mut chain = Vec::new();
    let mut cur = err;
    let mut cur_source = source.to_string();
    loop {
        match cur {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                // A scripted method's hook, named by the method (scripted/method.rs).
                match name.strip_prefix("hook:") {
                    Some(hook) => chain.push(format!("  in the {hook}, run by the call at {}", position_text(&cur_source, *pos))),
                    None => chain.push(format!("  in call to {name}() at {}", position_text(&cur_source, *pos))),
                }
                if !src.is_empty() {
                    cur_source = src.clone();
                }
                cur = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                chain.push(format!("  in module '{name}' imported at {}", position_text(&cur_source, *pos)));
                cur_source = name.clone();
                cur = inner;
            }
            _ => break,
        }
    }
    let msg = match cur {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        EvalAltResult::ErrorTerminated(v, _) => v.to_string(),
        EvalAltResult::ErrorParsing(p, _) => format!("syntax error: {p}"),
        other => {
            // Rhai appends " (line L, position C)" to its own messages; we print the position first.
            let s = other.to_string();
            match s.rfind(" (line ") {
                Some(i) if s.ends_with(')') => s[..i].to_string(),
                _ => s,
            }
        }
    };
    // Rhai names values by their Rust types; users see the script's (Tensor, map, int, ...).
    let mut msg = crate::host::type_names::for_users(&msg);
    if let EvalAltResult::ErrorFunctionNotFound(..) = cur {
        // The argument list names bare primitives: `train_epch (i64)` reads `train_epch (int)`.
        msg = msg.replace("i64", "int").replace("f64", "float");
    }
    let mut out = format!("{}: {msg}", position_text(&cur_source, cur.position()));
    for line in chain.into_iter().rev() {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

/// "; did you mean train_epoch?" for a call to a function that does not exist, from the
/// documented functions and the script's own.
fn unknown_function_hint(host: &Host, ast: &AST, err: &EvalAltResult) -> Option<String> {
    let mut cur = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) = cur {
        cur = inner;
    }
    if let Some(hint) = unknown_property_hint(host, cur) {
        return Some(hint);
    }
    if let EvalAltResult::ErrorPropertyNotFound(key, _) = cur {
        return Some(format!(
            "; a map holds only the keys set in it: test with `\"{key}\" in m`, or read m.get(\"{key}\"), which gives () for a missing key; m.keys() lists them"
        ));
    }
    let EvalAltResult::ErrorFunctionNotFound(sig, _) = cur else { return None };
    let name = sig.split([' ', '(']).next().unwrap_or(sig);
    // `(), ` or `, ()` among the argument types: the usual cause is a missing map key.
    if sig.contains("((),") || sig.contains(", ())") || sig.ends_with("(())") {
        return Some(
            "; one argument is (): a variable or map entry that holds nothing, most often a map key that was never set (a map gives () for a key it lacks: ctx.state.x before ctx.state.x = ...; check with `\"x\" in map`)".into(),
        );
    }
    // A documented function called with the wrong arguments (`x.softmax()`): how it is called.
    let usages: Vec<&str> = host.docs.entries().iter().filter(|d| d.name == name).map(|d| d.usage).collect();
    if !usages.is_empty() {
        return Some(format!("; it is called as {}", usages.join(" or ")));
    }
    let own: Vec<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
    let known = host.docs.entries().iter().map(|d| d.name).chain(own.iter().map(String::as_str));
    let mut near = crate::suggest::nearest(name, known);
    near.dedup();
    near.retain(|n| *n != name);
    near.truncate(3);
    (!near.is_empty()).then(|| format!("; did you mean {}?", near.join(", ")))
}

/// For a property a gapscope type lacks (`data.tset`): the properties it has.
fn unknown_property_hint(host: &Host, err: &EvalAltResult) -> Option<String> {
    let EvalAltResult::ErrorDotExpr(msg, _) = err else { return None };
    let rest = msg.strip_prefix("Unknown property '")?;
    let (typed, rest) = rest.split_once('\'')?;
    let ty = rest.split('\'').nth(1)?;
    let have = properties_of(host, ty);
    if have.is_empty() {
        return None;
    }
    let near = crate::suggest::nearest(typed, have.iter().map(String::as_str));
    let guess = near.first().map(|n| format!("did you mean {n}? ")).unwrap_or_default();
    Some(format!("; {guess}a {ty} has: {}", have.join(", ")))
}

/// The getters registered for the type named `ty`, sorted.
fn properties_of(host: &Host, ty: &str) -> Vec<String> {
    let mut names: Vec<String> = host
        .engine
        .gen_fn_signatures(false)
        .iter()
        .filter_map(|sig| {
            let rest = sig.strip_prefix("get$")?;
            let (name, params) = rest.split_once('(')?;
            let first = params.split([',', ')']).next()?;
            let first_type = first.rsplit(':').next()?.trim().trim_start_matches("&mut ").trim();
            (first_type == ty).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// For `r.acc2` where `r` is a map variable of the script (a run record, a config): "; r holds
/// acc, f1, ..." from the variable itself, found by the failing property's position.
fn missing_key_of_variable(ast: &AST, scope: &Scope, err: &EvalAltResult) -> Option<String> {
    let EvalAltResult::ErrorPropertyNotFound(_, pos) = err else { return None };
    let mut name = None;
    ast.walk(&mut |path: &[rhai::ASTNode]| {
        if let Some(rhai::ASTNode::Expr(Expr::Dot(x, ..) | Expr::Index(x, ..))) = path.last() {
            let key_pos = match &x.rhs {
                Expr::Dot(inner, ..) | Expr::Index(inner, ..) => inner.lhs.position(),
                other => other.position(),
            };
            if let (Expr::Variable(v, ..), true) = (&x.lhs, key_pos == *pos) {
                name = Some(v.1.to_string());
                return false;
            }
        }
        true
    });
    let name = name?;
    let map = scope.get_value::<rhai::Map>(&name)?;
    let mut keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
    keys.sort();
    Some(format!("; {name} holds {}", if keys.is_empty() { "no keys".to_string() } else { keys.join(", ") }))
}

/// Runs `f`, converting a panic (a bug in gapscope, never user error) into a message rather
/// than a crash; the REPL survives it.
pub fn guard<R>(f: impl FnOnce() -> Result<R, ScriptError>) -> Result<R, ScriptError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(ScriptError(format!("internal error (a gapscope bug; please report it): {msg}")))
        }
    }
}

/// Compiles source text with a source name for error reports and relative imports.
pub fn compile(host: &Host, scope: &Scope, source_name: &str, text: &str) -> Result<AST, ScriptError> {
    let text = crate::files::without_bom(text);
    let mut ast = host.engine.compile_with_scope(scope, text).map_err(|e| ScriptError(format_parse_error(source_name, &e)))?;
    ast.set_source(source_name);
    Ok(ast)
}

/// Evaluates an AST in `scope`, reporting errors against `source_name`.
pub fn eval(host: &Host, scope: &mut Scope, source_name: &str, ast: &AST) -> Result<Dynamic, ScriptError> {
    guard(|| {
        host.engine.eval_ast_with_scope::<Dynamic>(scope, ast).map_err(|e| {
            let mut text = format_eval_error(source_name, &e);
            if let Some(keys) = missing_key_of_variable(ast, scope, &e) {
                let at = text.find('\n').unwrap_or(text.len());
                text.insert_str(at, &keys);
            }
            if let Some(hint) = unknown_function_hint(host, ast, &e) {
                // After the first line (the innermost failure), before the call chain.
                let at = text.find('\n').unwrap_or(text.len());
                text.insert_str(at, &hint);
            }
            ScriptError(text)
        })
    })
}

/// `gapscope run FILE --set k=v ...`: the `--set` values are both variables in the script's
/// scope and answers to `param(name, default)`. Each key of `check` must be read by the script or
/// a module it imports (`host::reads`), or nothing runs.
pub fn run_file(host: &Host, path: &std::path::Path, sets: &[(String, Dynamic)], check: &[&str]) -> Result<Dynamic, ScriptError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScriptError(format!("{name}: cannot read script: {e}")))?;
    let mut scope = Scope::new();
    for (k, v) in sets {
        scope.push_dynamic(k.clone(), v.clone());
        host.params.borrow_mut().insert(k.as_str().into(), v.clone());
    }
    let ast = compile(host, &scope, &name, &text)?;
    if !check.is_empty() {
        if let Some(e) = crate::host::reads::Reads::of(host, &ast, &name).unused(&name, check) {
            return Err(ScriptError(e));
        }
    }
    eval(host, &mut scope, &name, &ast)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_parse_as_types() {
        assert!(parse_set_value("3").is_int());
        assert!(parse_set_value("0.5").is_float());
        assert!(parse_set_value("true").is_bool());
        assert!(parse_set_value("inf").is_string() && parse_set_value("NaN").is_string());
        assert_eq!(parse_set_value("\"cremad\"").into_string().unwrap(), "cremad");
        assert!(parse_set("a b=1").is_err());
        assert!(parse_set("lr").is_err());
    }
}
