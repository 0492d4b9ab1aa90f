//! The one place that names types for script authors. Rhai reports values by their Rust type
//! paths (`gapscope::host::tensor::ScriptTensor`, `alloc::collections::btree::map::BTreeMap<...>`)
//! in its own errors and in generated signatures; users write `Tensor`, `map`, `array`, `string`,
//! `int`, `float`. Every message and signature shown to a user goes through `for_users`.

/// The script name of one Rust type path (generic arguments included or not).
pub fn script_type(rust: &str) -> String {
    let rust = rust.trim().trim_start_matches("&mut ").trim_start_matches('&');
    let base = rust.split('<').next().unwrap_or(rust);
    let last = base.rsplit("::").next().unwrap_or(base);
    match last {
        "f64" | "f32" | "FLOAT" => "float".into(),
        "i64" | "i32" | "u64" | "u32" | "usize" | "INT" => "int".into(),
        "bool" => "bool".into(),
        "ImmutableString" | "String" | "str" | "SmartString" => "string".into(),
        "char" => "char".into(),
        "BTreeMap" | "Map" => "map".into(),
        "Vec" | "Array" => "array".into(),
        "Dynamic" => "any".into(),
        "()" => "()".into(),
        "FnPtr" => "function".into(),
        "Blob" => "blob".into(),
        "Split" => "Split".into(),
        "BatchPlan" => "Batches".into(),
        "ScriptWeights" => "WeightTable".into(),
        "ScriptFrame" => "DataFrame".into(),
        "StepHook" => "StepContext".into(),
        "EpochHook" => "EpochContext".into(),
        other => other.strip_prefix("Script").unwrap_or(other).to_string(),
    }
}

/// The crates whose paths Rhai and gapscope print.
const RUST_ROOTS: &[&str] = &["gapscope", "alloc", "core", "std", "rhai", "types", "smartstring", "polars", "tch"];

/// `text` with every Rust type path in it (a `::`-joined path, with its generic arguments)
/// replaced by its script name; `core::result::Result<T, Box<EvalAltResult>>` becomes T's name.
pub fn for_users(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        if ident(chars[i]) && (i == 0 || !ident(chars[i - 1])) {
            // A path: identifiers joined by "::", then optional balanced <...>.
            let start = i;
            let mut j = i;
            let mut segments = 0;
            loop {
                while j < chars.len() && ident(chars[j]) {
                    j += 1;
                }
                segments += 1;
                if j + 2 < chars.len() && chars[j] == ':' && chars[j + 1] == ':' && ident(chars[j + 2]) {
                    j += 2;
                } else {
                    break;
                }
            }
            let mut end = j;
            let mut generics = None;
            if segments > 1 && end < chars.len() && chars[end] == '<' {
                let mut depth = 0;
                let mut k = end;
                while k < chars.len() {
                    match chars[k] {
                        '<' => depth += 1,
                        '>' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                if k < chars.len() {
                    generics = Some(chars[end + 1..k].iter().collect::<String>());
                    end = k + 1;
                }
            }
            let path: String = chars[start..j].iter().collect();
            // Only Rust paths: a script's own module paths (tr::baseline) are the user's words.
            let root = path.split("::").next().unwrap_or("");
            if segments > 1 && RUST_ROOTS.contains(&root) {
                let name = if path.ends_with("::Result") {
                    // The Ok type of a fallible function.
                    let inner = generics.unwrap_or_default();
                    let ok = split_top_level(&inner).into_iter().next().unwrap_or_default();
                    for_users(&ok)
                } else {
                    script_type(&path)
                };
                out.push_str(&name);
                i = end;
                continue;
            }
            out.extend(&chars[start..j]);
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Splits generic arguments at their top-level commas.
fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        parts.push(cur.trim().to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_paths_become_script_types() {
        assert_eq!(
            for_users("Data type incorrect: gapscope::host::tensor::ScriptTensor (expecting bool)"),
            "Data type incorrect: Tensor (expecting bool)"
        );
        assert_eq!(
            for_users("f(alloc::collections::btree::map::BTreeMap<smartstring::SmartString<smartstring::config::LazyCompact>, rhai::types::dynamic::Dynamic>) -> gapscope::host::mixture::ScriptMixture"),
            "f(map) -> Mixture"
        );
        assert_eq!(for_users("fit_mixture(types::dynamic::Dynamic) -> core::result::Result<gapscope::host::mixture::ScriptMixture, alloc::boxed::Box<rhai::types::error::EvalAltResult>>"), "fit_mixture(any) -> Mixture");
        assert_eq!(for_users("g(alloc::vec::Vec<rhai::types::dynamic::Dynamic>, rhai::ImmutableString, i64)"), "g(array, string, i64)");
        // Plain words, a ratio "1:2" and a script's module path stay as written.
        assert_eq!(for_users("ratio 1:2, no paths here"), "ratio 1:2, no paths here");
        assert_eq!(
            for_users("method \"ogm-ge\" applies to tr::baseline; see ex::sweep"),
            "method \"ogm-ge\" applies to tr::baseline; see ex::sweep"
        );
    }
}
