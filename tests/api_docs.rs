//! Every registered function is documented, and docs/api.md is what the registrations generate.

use gapscope::host::system::documented_name;
use gapscope::Host;

#[test]
fn every_registered_function_has_a_doc() {
    let host = Host::new();
    let mut missing: Vec<String> = host
        .engine
        .gen_fn_signatures(false)
        .iter()
        .map(|s| documented_name(s))
        .filter(|name| host.docs.get(name).is_none())
        .collect();
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
