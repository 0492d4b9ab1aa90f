//! Every class of libtorch failure a script can trigger reaches the user as an error with its
//! script position and a readable message; none crashes the process.

mod common;
use common::*;

/// Runs `src` as a file through the binary and returns (exit status, stderr).
fn run_file(name: &str, src: &str) -> (i32, String) {
    let dir = temp_dir(name);
    let path = dir.join(format!("{name}.rhai"));
    std::fs::write(&path, src).unwrap();
    let out = run_bin(&["run", path.to_str().unwrap()], "", None);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn shape_mismatch_on_line_3_reports_line_3() {
    let (code, err) = run_file("shape", "let a = ones([2, 3]);\nlet b = ones([4, 5]);\nlet c = a.matmul(b);\nprint(c);\n");
    assert_ne!(code, 0);
    assert!(err.contains("shape.rhai:3:"), "{err}");
    assert!(err.contains("matmul"), "{err}");
    assert!(!err.contains("Exception raised from"), "C++ backtrace leaked: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn broadcast_mismatch() {
    let e = eval_err("let a = ones(2);\nlet b = zeros(3);\na + b");
    assert!(e.starts_with("test.rhai:3:"), "{e}");
    assert!(e.contains("must match the size"), "{e}");
}

#[test]
fn wrong_dtype() {
    // index_select needs integer indices.
    let e = eval_err("ones([3, 2]).index_select(0, tensor([0.5]))");
    assert!(e.contains("index_select"), "{e}");
    let e = eval_err("tensor([1, 2]).to(\"float128\")");
    assert!(e.contains("neither a device"), "{e}");
    let e = eval_err("tensor([true, 1])");
    assert!(e.contains("mixed bools"), "{e}");
}

#[test]
fn bad_dim() {
    for src in ["ones([2, 2]).sum(2)", "ones([2, 2]).softmax(-3)", "ones([2, 2]).transpose(0, 5)", "cat([ones(2)], 1)"] {
        let e = eval_err(src);
        assert!(e.contains("out of range"), "{src}: {e}");
        assert!(e.starts_with("test.rhai:1:"), "{src}: {e}");
    }
}

#[test]
fn index_out_of_range() {
    let e = eval_err("let x = ones(3);\nx[3]");
    assert!(e.starts_with("test.rhai:2:"), "{e}");
    assert!(e.contains("index 3 is out of range for dim 0 of size 3"), "{e}");
    assert!(eval_err("ones(3).index_select(0, [5])").contains("index_select"));
    assert!(eval_err("ones(3)[0][0]").contains("item()"));
}

#[test]
fn out_of_memory_is_an_error() {
    // 2^40 float32 elements = 4 TiB: the allocator refuses and the script gets the error.
    let e = eval_err("zeros([1048576, 1048576])");
    assert!(e.contains("zeros"), "{e}");
    assert!(e.to_lowercase().contains("memory") || e.contains("alloc"), "{e}");
}

#[test]
fn bad_arguments() {
    assert!(eval_err("zeros([2, -1])").contains("negative size"));
    assert!(eval_err("zeros([2, \"a\"])").contains("array of ints"));
    assert!(eval_err("tensor([[1, 2], [3]])").contains("ragged"));
    assert!(eval_err("tensor(\"x\")").contains("expected numbers"));
    assert!(eval_err("arange(0, 5, 0)").contains("step must not be zero"));
    assert!(eval_err("ones(2).clamp(1.0, 0.0)").contains("greater than max"));
    assert!(eval_err("ones(2).permute([0, 1])").contains("2 dims given for a 1-d"));
    assert!(eval_err("cat([])").contains("at least one"));
    assert!(eval_err("stack([ones(2), 3])").contains("array of tensors"));
    assert!(eval_err("ones(2).nonsense()").contains("Function not found"));
    assert!(eval_err("load_npy(\"/no/such/file.npy\")").contains("no such file"));
}

#[test]
fn errors_inside_functions_name_the_chain() {
    let e = eval_err("fn inner(x) {\n  x.sum(5)\n}\nfn outer(x) { inner(x) }\nouter(ones(2))");
    assert!(e.starts_with("test.rhai:2:"), "{e}");
    assert!(e.contains("in call to inner()"), "{e}");
    assert!(e.contains("in call to outer() at test.rhai:5:"), "{e}");
}

#[test]
fn syntax_errors_have_positions() {
    let (code, err) = run_file("syntax", "let x = 1;\nlet = 2;\n");
    assert_ne!(code, 0);
    assert!(err.contains("syntax.rhai:2:"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
}

/// libtorch errors from ops that take scalars reach the script as errors at their position, not
/// as "internal error" with a C++ backtrace (tch drops the scalar before reading the error).
#[test]
fn scalar_op_errors_are_script_errors_with_their_position() {
    for (src, want) in [
        ("let x = 1;\narange(5, 0)", "test.rhai:2:1: arange: upper bound and lower bound inconsistent with step sign"),
        ("tensor([1, 2]) ** -1", "Integers to negative integer powers are not allowed"),
        ("tensor([true]) - 1", "Subtraction, the `-` operator, with a bool tensor is not supported"),
        ("full([1000000000, 1000000000], 1.0)", "full:"),
        ("linspace(0.0, 1.0, 100000000000000)", "linspace:"),
    ] {
        let err = eval_err(src);
        assert!(err.contains(want) && !err.contains("internal error") && !err.contains("frame #"), "{src}: {err}");
    }
    // The session goes on: the next statement runs normally.
    assert_eq!(float("let e = \"\"; try { arange(5, 0); } catch (x) { e = x; } arange(3).sum().item()"), 3.0);
}
