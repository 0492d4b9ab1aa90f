//! The REPL driven over stdin, as another program would drive it.

mod common;
use common::*;

fn repl(input: &str) -> (String, String, i32) {
    let out = run_bin(&["repl"], input, None);
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code().unwrap_or(-1))
}

#[test]
fn variables_survive_an_error() {
    let (out, err, code) = repl("let a = tensor([1.0, 2.0]);\nlet b = a + ones(3);\na.sum()\n");
    assert!(err.contains("repl:2:"), "{err}");
    assert!(err.contains("must match the size"), "{err}");
    assert_eq!(out.trim(), "tensor(3.)");
    assert_eq!(code, 1, "a failed statement makes the exit status non-zero");
}

#[test]
fn values_are_echoed_and_functions_persist() {
    let (out, err, code) = repl("fn double(x) {\n  x * 2\n}\ndouble(21)\n\"text\"\nlet u = 1;\n[1, 2]\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "42\n\"text\"\n[1, 2]\n");
}

#[test]
fn multi_line_statements_continue() {
    let (out, err, code) = repl("let total = 1 +\n  2;\nif total > 2 {\n  print(\"big\");\n}\ntotal\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "big\n3\n");
}

#[test]
fn imports_persist_across_inputs() {
    let (out, err, code) = repl("import \"tensors\" as tx;\ntx::one_hot(tensor([1]), 2)\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "tensor([[0., 1.]])");
}

#[test]
fn commands_vars_time_load_help() {
    let dir = temp_dir("repl-load");
    let file = dir.join("setup.rhai");
    std::fs::write(&file, "let loaded = 5;\nfn sq(x) { x * x }\n").unwrap();
    let input = format!(":load {}\nsq(loaded)\n:vars\n:time 1 + 1\nhelp(\"softmax\")\nhelp\n:quit\nprint(\"not reached\");\n", file.display());
    let (out, err, code) = repl(&input);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("loaded ") && out.contains("25"), "{out}");
    assert!(out.contains("loaded: i64") || out.contains("loaded: int"), "{out}");
    assert!(out.contains("fn sq(x)"), "{out}");
    assert!(out.contains("time: "), "{out}");
    assert!(out.contains("t.softmax(dim)") && out.contains("example:"), "{out}");
    assert!(out.contains("create") && out.contains("zeros"), "{out}");
    assert!(!out.contains("not reached"), "{out}");
}

#[test]
fn unknown_command_and_unfinished_input_are_reported() {
    let (_, err, code) = repl(":frobnicate\nlet x = [1, 2\n");
    assert!(err.contains("unknown command"), "{err}");
    assert!(err.contains("unfinished statement"), "{err}");
    assert_eq!(code, 1);
}
