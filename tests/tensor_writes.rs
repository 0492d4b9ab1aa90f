//! index_put, scatter, scatter_add and index_add against PyTorch (fixtures from
//! tests/fixtures/gen_writes.py): each result, and the gradients of sum(result * w) with respect to
//! the tensor written into and the values written, through the core and through scripts.

mod common;
use common::{assert_close, values};
use gapscope::tensor::writes;
use tch::{Kind, Tensor};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/writes/writes.safetensors");

fn get(name: &str) -> Tensor {
    let all = Tensor::read_safetensors(FIXTURE).unwrap();
    all.into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("fixture has no {name}")).1
}

fn flat(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// `write(x, src)` in float64 against the fixture `name`, with both gradients.
fn check(name: &str, src: &str, write: impl Fn(&Tensor, &Tensor) -> gapscope::Result<Tensor>) {
    let x = get("x").set_requires_grad(true);
    let s = get(src).set_requires_grad(true);
    let y = write(&x, &s).unwrap();
    assert_close(&flat(&y), &flat(&get(name)), 1e-12);
    let g = Tensor::run_backward(&[&(&y * get("w")).sum(Kind::Double)], &[&x, &s], false, false);
    assert_close(&flat(&g[0]), &flat(&get(&format!("{name}_grad_x"))), 1e-12);
    assert_close(&flat(&g[1]), &flat(&get(&format!("{name}_grad_src"))), 1e-12);
}

#[test]
fn writes_and_their_gradients_match_pytorch() {
    check("put_pairs_acc", "put_vals", |x, s| writes::index_put(x, &[get("rows"), get("cols")], s, true));
    check("put_rows", "unique_row_vals", |x, s| writes::index_put(x, &[get("unique_rows")], s, false));
    check("put_rows_acc", "row_vals", |x, s| writes::index_put(x, &[get("rows")], s, true));
    check("put_mask", "mask_vals", |x, s| writes::index_put(x, &[get("mask")], s, false));
    check("scatter", "sc_src", |x, s| writes::scatter(x, 0, &get("sc_index"), s));
    check("scatter_add", "add_src", |x, s| writes::scatter_add(x, 1, &get("add_index"), s));
    check("index_add", "ia_src", |x, s| writes::index_add(x, 0, &get("ia_index"), s, 1.0));
    check("index_add_alpha", "ia_src", |x, s| writes::index_add(x, 0, &get("ia_index"), s, -0.5));
}

#[test]
fn the_script_methods_give_the_same_values() {
    let load = format!("let f = load_safetensors(\"{FIXTURE}\"); let x = f.x;");
    let cases = [
        ("x.index_put([f.rows, f.cols], f.put_vals, true)", "put_pairs_acc"),
        ("x.index_put(f.unique_rows, f.unique_row_vals)", "put_rows"),
        ("x.index_put([f.rows], f.row_vals, true)", "put_rows_acc"),
        ("x.index_put([f.mask], f.mask_vals)", "put_mask"),
        ("x.index_put([tensor([-1, -5])], 9.0)", "negative_rows"),
        ("x.scatter(0, f.sc_index, f.sc_src)", "scatter"),
        ("x.slice(0, 0, 4).scatter(1, f.cols.unsqueeze(1), 2.5)", "scatter_value"),
        ("x.scatter_add(1, f.add_index, f.add_src)", "scatter_add"),
        ("x.index_add(0, f.ia_index, f.ia_src)", "index_add"),
        ("x.index_add(0, f.ia_index, f.ia_src, #{ alpha: -0.5 })", "index_add_alpha"),
    ];
    for (expr, name) in cases {
        let (got, _) = values(&format!("{load} {expr}"));
        assert_close(&got, &flat(&get(name)), 1e-12);
    }
    // The documented examples: one-hot rows, per-class sums with a number, an int source into floats.
    let (onehot, _) = values("zeros([3, 3]).scatter(1, tensor([[2], [0], [1]]), 1.0)");
    assert_eq!(onehot, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let (sums, _) = values("zeros([3]).scatter_add(0, tensor([0, 2, 0]), tensor([1.0, 2.0, 3.0]))");
    assert_eq!(sums, vec![4.0, 0.0, 2.0]);
    let (counts, _) = values("zeros([3]).scatter_add(0, tensor([0, 2, 0]), 1)");
    assert_eq!(counts, vec![2.0, 0.0, 1.0]);
    let (ints, _) = values("zeros([2, 2]).index_put([tensor([1])], tensor([7, 8]))");
    assert_eq!(ints, vec![0.0, 0.0, 7.0, 8.0]);
}

#[test]
fn bad_writes_are_errors_that_say_what_to_change() {
    for (expr, want) in [
        ("zeros([3]).index_put([tensor([3])], 1.0)", "index 0 holds 3, outside [-3, 3)"),
        ("zeros([3]).index_put([tensor([0.0])], 1.0)", "must be an int tensor"),
        ("zeros([3]).index_put([], 1.0)", "give between 1 and 1 index tensors"),
        ("zeros([3]).index_put(3, 1.0)", "indices must be a tensor or an array of tensors"),
        ("zeros([3]).index_put([tensor([0]), tensor([0])], 1.0)", "give between 1 and 1"),
        ("zeros([3]).index_put([tensor([0])], \"a\")", "values"),
        ("zeros([3]).to(\"float32\").index_put([tensor([0])], ones([1]).to(\"float64\"))", "values is Double but the tensor is Float"),
        ("zeros([2, 3]).scatter(1, tensor([[3]]), 1.0)", "index holds 3, outside [0, 3)"),
        ("zeros([2, 3]).scatter(1, tensor([[-1]]), 1.0)", "outside [0, 3)"),
        ("zeros([2, 3]).scatter(1, tensor([0, 1]), ones([2]))", "index must have the tensor's 2 dimensions"),
        ("zeros([2, 3]).scatter(1, tensor([[0], [1], [0]]), ones([3, 1]))", "longer than the tensor"),
        ("zeros([2, 3]).scatter(1, tensor([[0, 1]]), ones([1, 1]))", "at least as long as index"),
        ("zeros([2, 3]).scatter(4, tensor([[0]]), 1.0)", "dim"),
        ("zeros([2, 3]).scatter_add(1, tensor([[0, 1]]), ones([1, 1]))", "at least as long as index"),
        ("zeros([3, 2]).index_add(0, tensor([[0]]), ones([1, 2]))", "index must be 1-d"),
        (
            "zeros([3, 2]).index_add(0, tensor([0, 1]), ones([3, 2]))",
            "src must be shaped as the tensor [3, 2] with dim 0 as long as index (2)",
        ),
        ("zeros([3, 2]).index_add(0, tensor([5]), ones([1, 2]))", "index holds 5, outside [0, 3)"),
        ("zeros([3, 2]).index_add(0, tensor([0]), ones([1, 2]), #{ alpha: \"x\" })", "alpha"),
        ("zeros([3, 2]).index_add(0, tensor([0]), ones([1, 2]), #{ beta: 1 })", "beta"),
    ] {
        let err = common::eval(expr).map(|v| format!("the value {v}")).unwrap_or_else(|e| e);
        assert!(err.contains(want), "{expr}: wanted \"{want}\" in {err}");
        assert!(!err.contains("Exception raised from"), "{expr}: {err}");
    }
}
