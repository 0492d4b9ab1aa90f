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
fn an_import_among_other_statements_persists_and_a_failed_one_does_not() {
    // An import kept wherever it stands in an input, even one whose later statement failed; an
    // import that cannot load is not re-run before every later input.
    let input = "import \"tensors\" as tx; let a = 1;\nimport \"train\" as tr; no_such_variable\nimport \"no_such_module\" as nm;\ntx::one_hot(tensor([1]), 2)\ntype_of(tr::optional_keys())\n";
    let (out, err, code) = repl(input);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no_such_variable") && err.contains("no_such_module"), "{err}");
    assert_eq!(err.matches("no_such_module").count(), 1, "the failed import was re-run: {err}");
    assert!(out.contains("tensor([[0., 1.]])") && out.contains("\"array\""), "{out}\n{err}");
}

#[test]
fn commands_vars_time_load_help() {
    let dir = temp_dir("repl-load");
    let file = dir.join("setup.rhai");
    std::fs::write(&file, "let loaded = 5;\nfn sq(x) { x * x }\n").unwrap();
    let input =
        format!(":load {}\nsq(loaded)\n:vars\n:time 1 + 1\nhelp(\"softmax\")\nhelp\n:quit\nprint(\"not reached\");\n", file.display());
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

#[test]
fn ctrl_c_interrupts_a_running_statement_and_keeps_the_session() {
    use gapscope::session::{Outcome, Session};
    let mut session = Session::new(gapscope::Host::new());
    assert!(matches!(session.eval_input("let kept = 41;"), Outcome::Output(_)));
    // What the Ctrl-C handler does, 200 ms into an endless loop.
    let signal = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        gapscope::interrupt::request();
    });
    // Bounded, so a broken interrupt fails the test (the loop finishes) instead of hanging it.
    match session.eval_input("let n = 0;\nwhile n < 100000000 { n += 1; }") {
        Outcome::Failed(e) => assert!(e.contains("interrupted"), "{e}"),
        _ => panic!("the loop should have been interrupted"),
    }
    signal.join().unwrap();
    match session.eval_input("kept + 1") {
        Outcome::Output(s) => assert_eq!(s, "42"),
        _ => panic!("session lost its variables"),
    }
}

#[test]
fn completion_offers_functions_methods_and_variables() {
    use gapscope::session::{builtin_names, complete_word, Session};
    let mut session = Session::new(gapscope::Host::new());
    session.eval_input("let logits_a = ones(2);");
    let builtins = builtin_names(&session);
    let locals = session.local_names();
    let (start, words) = complete_word(&builtins, &locals, "let s = logits_a.soft", 21);
    assert_eq!(start, 17);
    assert_eq!(words, vec!["softmax".to_string()]);
    assert_eq!(complete_word(&builtins, &locals, "print(logi", 10).1, vec!["logits_a".to_string()]);
    assert!(complete_word(&builtins, &locals, ":lo", 3).1.contains(&":load".to_string()));
    assert!(complete_word(&builtins, &locals, "lins", 4).1.contains(&"linspace".to_string()));
}
