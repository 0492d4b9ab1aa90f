//! Every registered function is documented, and docs/api.md is what the registrations generate.

use gapscope::host::system::documented_name;
use gapscope::Host;

#[test]
fn every_registered_function_has_a_doc() {
    let host = Host::new();
    let mut missing: Vec<String> =
        host.engine.gen_fn_signatures(false).iter().map(|s| documented_name(s)).filter(|name| host.docs.get(name).is_none()).collect();
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "registered without a doc (add docs.add(...) next to the registration): {missing:?}");
    for d in host.docs.entries() {
        assert!(!d.summary.is_empty() && !d.example.is_empty() && !d.usage.is_empty(), "incomplete doc for {}", d.name);
    }
}

#[test]
fn every_doc_names_a_registered_function() {
    let host = Host::new();
    let names: Vec<String> = host.engine.gen_fn_signatures(false).iter().map(|s| documented_name(s)).collect();
    for d in host.docs.entries() {
        assert!(names.iter().any(|n| n == d.name), "doc for '{}' but nothing registered under that name", d.name);
    }
}

#[test]
fn api_md_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    let generated = Host::new().docs.markdown();
    assert!(on_disk == generated, "docs/api.md is stale: regenerate it with `cargo run -q -- api > docs/api.md`");
}

#[test]
fn help_shows_script_types_only() {
    // help("name") lists each overload with the types a script writes (map, array, Tensor,
    // string, int, float, any), never a Rust path such as alloc::collections::btree::map::BTreeMap.
    let host = Host::new();
    let mut leaks = Vec::new();
    for d in host.docs.entries() {
        for sig in gapscope::host::system::signatures_of(&host.engine, d.name) {
            if sig.contains("::") || sig.contains("Script") || sig.contains("Result<") || sig.contains("i64") || sig.contains("f64") {
                leaks.push(sig);
            }
        }
    }
    assert!(leaks.is_empty(), "{} overloads show Rust types: {:?}", leaks.len(), &leaks[..leaks.len().min(10)]);
}

#[test]
fn help_shows_indexers_and_properties_as_scripts_write_them() {
    // Rhai's internal names (index$get$, get$shape) never reach the user: t[i], t.shape.
    let host = Host::new();
    let mut internal = Vec::new();
    for d in host.docs.entries() {
        internal.extend(gapscope::host::system::signatures_of(&host.engine, d.name).into_iter().filter(|s| s.contains('$')));
    }
    assert!(internal.is_empty(), "{} overloads show internal names: {:?}", internal.len(), &internal[..internal.len().min(10)]);
    let index = gapscope::host::system::signatures_of(&host.engine, "[]");
    assert!(index.iter().any(|s| s == "Tensor[int] -> Tensor"), "{index:?}");
    let shape = gapscope::host::system::signatures_of(&host.engine, "shape");
    assert!(shape.iter().any(|s| s.starts_with("Tensor.shape")), "{shape:?}");
}
