//! The command line: `run` with `--set`, exit codes, imports from the embedded stdlib and
//! relative to the script, `--version`, `--help`, and the api subcommand.

mod common;
use common::*;

#[test]
fn run_with_set_values() {
    let dir = temp_dir("set");
    let script = dir.join("params.rhai");
    std::fs::write(&script, "let lr = param(\"lr\", 0.1);\nlet n = param(\"n\", 1);\nprint(`${lr} ${n} ${name} ${flag}`);\n").unwrap();
    let out = run_bin(&["run", script.to_str().unwrap(), "--set", "lr=1", "--set", "name=\"ave\"", "--set", "flag=true"], "", None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // lr given as int 1 becomes the float 1.0 (the default's type); n keeps its default.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.0 1 ave true");
}

#[test]
fn set_with_wrong_type_is_an_error() {
    let dir = temp_dir("settype");
    let script = dir.join("p.rhai");
    std::fs::write(&script, "let epochs = param(\"epochs\", 10);\n").unwrap();
    let out = run_bin(&["run", script.to_str().unwrap(), "--set", "epochs=abc"], "", None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("p.rhai:1:") && err.contains("--set epochs=abc"), "{err}");
    let bad = run_bin(&["run", script.to_str().unwrap(), "--set", "epochs"], "", None);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("key=value"));
}

#[test]
fn a_string_parameter_takes_any_set_text_and_infinities_are_text() {
    let dir = temp_dir("settext");
    let script = dir.join("t.rhai");
    std::fs::write(&script, "let tag = param(\"tag\", \"none\");\nlet lr = param(\"lr\", 0.1);\nprint(`${tag} ${type_of(tag)} ${lr}`);\n")
        .unwrap();
    for (given, printed) in
        [("tag=inf", "inf string 0.1"), ("tag=3", "3 string 0.1"), ("tag=true", "true string 0.1"), ("tag=nan", "nan string 0.1")]
    {
        let out = run_bin(&["run", script.to_str().unwrap(), "--set", given], "", None);
        assert!(out.status.success(), "{given}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), printed, "{given}");
    }
    // A number parameter refuses an infinity, naming the script's types.
    let out = run_bin(&["run", script.to_str().unwrap(), "--set", "lr=inf"], "", None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("expected a float like the default 0.1, got a string"), "{err}");
}

#[test]
fn missing_script_fails_cleanly() {
    let out = run_bin(&["run", "/no/such/script.rhai"], "", None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read script"));
}

#[test]
fn imports_resolve_stdlib_then_relative() {
    let dir = temp_dir("imports");
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("lib/helpers.rhai"), "fn triple(x) { x * 3 }\n").unwrap();
    std::fs::write(
        dir.join("main.rhai"),
        "import \"tensors\" as tx;\nimport \"lib/helpers\" as h;\nprint(h::triple(2));\nprint(tx::accuracy(eye(2), tensor([0, 1])));\n",
    )
    .unwrap();
    // Run from an unrelated working directory: the stdlib is inside the binary and the
    // relative import resolves against the script's own directory.
    let elsewhere = temp_dir("imports-cwd");
    let out = run_bin(&["run", dir.join("main.rhai").to_str().unwrap()], "", Some(&elsewhere));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6\n1.0");
}

#[test]
fn error_in_imported_module_names_the_module_file() {
    let dir = temp_dir("moderr");
    std::fs::write(dir.join("bad.rhai"), "fn f() {\n  ones(2) + ones(3)\n}\n").unwrap();
    std::fs::write(dir.join("main.rhai"), "import \"bad\" as b;\nb::f();\n").unwrap();
    let out = run_bin(&["run", dir.join("main.rhai").to_str().unwrap()], "", None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.rhai:2:"), "{err}");
    assert!(err.contains("main.rhai:2:"), "{err}");
}

#[test]
fn version_and_help() {
    let v = bin().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("gapscope "));
    let h = bin().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&h.stdout);
    assert!(text.contains("run") && text.contains("repl"), "{text}");
}

#[test]
fn stdlib_table_matches_the_folder() {
    // Modules by path under stdlib/, without .rhai: "train", "methods/ogm-ge".
    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let path = e.path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(&path, &format!("{prefix}{name}/"), out);
            } else if path.extension().is_some_and(|x| x == "rhai") {
                out.push(format!("{prefix}{name}"));
            }
        }
    }
    let mut on_disk = Vec::new();
    walk(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib")), "", &mut on_disk);
    on_disk.sort();
    let mut embedded: Vec<String> = gapscope::stdlib::MODULES.iter().map(|(n, _)| n.to_string()).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded, "add new stdlib files to src/stdlib.rs");
}

#[test]
fn scripts_and_modules_saved_with_a_byte_order_mark_run() {
    let dir = temp_dir("cli-bom");
    std::fs::write(dir.join("helpers.rhai"), "\u{feff}fn twice(x) { x * 2 }\n").unwrap();
    std::fs::write(dir.join("main.rhai"), "\u{feff}import \"helpers\" as h;\nprint(h::twice(21));\n").unwrap();
    let out = run_bin(&["run", dir.join("main.rhai").to_str().unwrap()], "", None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_set_key_the_script_never_reads_stops_the_run_before_anything_runs() {
    let dir = temp_dir("unread");
    let module = "fn rate() { param(\"lr\", 0.1) }\n";
    std::fs::write(dir.join("knobs.rhai"), module).unwrap();
    let script = dir.join("s.rhai");
    let text = "import \"knobs\" as k;\nlet epochs = param(\"epochs\", 30);\nlet seed = 3;\nwrite_text(out_marker, \"ran\");\nprint(`${epochs} ${k::rate()} ${seed}`);\n";
    std::fs::write(&script, text).unwrap();
    let marker = dir.join("ran.txt");
    let marker_set = format!("out_marker=\"{}\"", marker.display());
    let run = |sets: &[&str]| {
        let mut args = vec!["run", script.to_str().unwrap(), "--set", &marker_set];
        for s in sets {
            args.push("--set");
            args.push(s);
        }
        run_bin(&args, "", None)
    };
    // Read by param in the script, by param in an imported module, as a variable: all used.
    let ok = run(&["epochs=2", "lr=0.5"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "2 0.5 3");
    std::fs::remove_file(&marker).unwrap();
    // A typo: refused with the nearest key, and the script never started.
    let typo = run(&["epoch=2"]);
    let err = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(typo.status.code(), Some(1));
    assert!(err.contains("--set epoch=... is never read by") && err.contains("did you mean --set epochs?"), "{err}");
    assert!(!marker.exists(), "the script ran despite the unread key");
    // A key the script replaces with its own `let`.
    let shadowed = run(&["seed=9"]);
    let err = String::from_utf8_lossy(&shadowed.stderr);
    assert!(err.contains("replaced by the script's own `let seed` at") && err.contains("s.rhai:3:1"), "{err}");
    // --allow-unused-set lets a script that reads keys by computed names through.
    let mut args = vec!["run", script.to_str().unwrap(), "--set", &marker_set, "--set", "epoch=2", "--allow-unused-set"];
    let allowed = run_bin(&args, "", None);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert_eq!(String::from_utf8_lossy(&allowed.stdout).trim(), "30 0.1 3");
    // A computed name is pointed out, since it may be what reads the key.
    let dynamic = dir.join("d.rhai");
    std::fs::write(&dynamic, "let name = \"ep\" + \"ochs\";\nprint(param(name, 1));\n").unwrap();
    args = vec!["run", dynamic.to_str().unwrap(), "--set", "epochs=2"];
    let err = String::from_utf8_lossy(&run_bin(&args, "", None).stderr).to_string();
    assert!(err.contains("reads parameters by computed names, at") && err.contains("d.rhai:2:"), "{err}");
}
