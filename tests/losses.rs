//! The loss functions of scripted methods against torch.nn.functional (fixtures from
//! tests/fixtures/gen_losses.py): values, and the gradient of their mean, which is what a
//! method trains on.

mod common;
use common::{assert_close, values};
use gapscope::tensor::loss::{self, CrossEntropy, Reduction};
use tch::{Kind, Tensor};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/losses/losses.safetensors");

fn fixture() -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(FIXTURE).unwrap()
}

fn get(f: &[(String, Tensor)], name: &str) -> Tensor {
    f.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("fixture has no {name}")).1.shallow_clone()
}

fn flat(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// The value of `f(x)` and the gradient of its mean, against the fixture's `name`.
fn check(f: &[(String, Tensor)], name: &str, input: &str, loss: impl Fn(&Tensor) -> Tensor) {
    let x = get(f, input).to_kind(Kind::Float).set_requires_grad(true);
    let y = loss(&x);
    assert_close(&flat(&y), &flat(&get(f, name)), 2e-6);
    let g = Tensor::run_backward(&[&y.mean(Kind::Float)], &[&x], false, false);
    assert_close(&flat(&g[0]), &flat(&get(f, &format!("{name}_grad"))), 2e-6);
}

#[test]
fn cross_entropy_matches_pytorch_in_every_form() {
    let f = fixture();
    let y = get(&f, "labels");
    let ce = |o: CrossEntropy| move |x: &Tensor| loss::cross_entropy(x, &get(&fixture(), "labels"), &o).unwrap();
    check(&f, "ce", "logits", ce(CrossEntropy::default()));
    check(&f, "ce_none", "logits", ce(CrossEntropy { reduction: Reduction::None, ..CrossEntropy::default() }));
    check(&f, "ce_sum", "logits", ce(CrossEntropy { reduction: Reduction::Sum, ..CrossEntropy::default() }));
    check(&f, "ce_class", "logits", ce(CrossEntropy { class_weights: Some(get(&f, "class_w")), ..CrossEntropy::default() }));
    check(&f, "ce_smooth", "logits", ce(CrossEntropy { label_smoothing: 0.1, ..CrossEntropy::default() }));
    check(&f, "ce_sample", "logits", ce(CrossEntropy { weights: Some(get(&f, "sample_w")), ..CrossEntropy::default() }));
    let _ = y;
}

#[test]
fn nll_kl_mse_cosine_gather_and_norm_match_pytorch() {
    let f = fixture();
    let y = get(&f, "labels");
    let p = get(&f, "p").to_kind(Kind::Float);
    let b = get(&f, "b").to_kind(Kind::Float);
    check(&f, "nll", "logits", |x| loss::nll(&x.log_softmax(-1, Kind::Float), &y, Reduction::Mean).unwrap());
    check(&f, "kl_mean", "logits", |x| loss::kl_div(&x.log_softmax(-1, Kind::Float), &p, "mean", false).unwrap());
    check(&f, "kl_batchmean", "logits", |x| loss::kl_div(&x.log_softmax(-1, Kind::Float), &p, "batchmean", false).unwrap());
    check(&f, "kl_log_target", "logits", |x| loss::kl_div(&x.log_softmax(-1, Kind::Float), &p.log(), "sum", true).unwrap());
    check(&f, "mse", "a", |x| loss::mse(x, &b, Reduction::Mean).unwrap());
    check(&f, "cos", "a", |x| loss::cosine_similarity(x, &b, 1, 1e-8).unwrap());
    check(&f, "gather", "logits", |x| x.gather(1, &y.unsqueeze(1), false).squeeze_dim(1));
}

#[test]
fn the_script_functions_give_the_same_values() {
    let f = fixture();
    let load = format!("let f = load_safetensors(\"{FIXTURE}\"); let x = f.logits.to(\"float32\"); let y = f.labels; let a = f.a.to(\"float32\"); let b = f.b.to(\"float32\");");
    let cases = [
        ("cross_entropy(x, y)", "ce"),
        ("cross_entropy(x, y, #{ reduction: \"none\" })", "ce_none"),
        ("cross_entropy(x, y, #{ class_weights: f.class_w })", "ce_class"),
        ("cross_entropy(x, y, #{ label_smoothing: 0.1 })", "ce_smooth"),
        ("cross_entropy(x, y, #{ weights: f.sample_w })", "ce_sample"),
        ("nll(x.log_softmax(-1), y)", "nll"),
        ("kl_div(x.log_softmax(-1), f.p.to(\"float32\"), #{ reduction: \"batchmean\" })", "kl_batchmean"),
        ("mse(a, b)", "mse"),
        ("cosine_similarity(a, b)", "cos"),
        ("x.gather(1, y.unsqueeze(1)).squeeze(1)", "gather"),
        ("a.norm(2.0, 1)", "norm"),
        ("a.norm(1.0)", "norm1"),
    ];
    for (expr, name) in cases {
        let (got, _) = values(&format!("{load} {expr}"));
        assert_close(&got, &flat(&get(&f, name)), 2e-6);
    }
}

#[test]
fn bad_loss_inputs_are_errors_that_say_what_to_do() {
    for (expr, want) in [
        ("cross_entropy(randn([3, 4]), tensor([0.0, 1.0, 2.0]))", "labels must be an int tensor"),
        ("cross_entropy(randn([3, 4]), tensor([0, 1]))", "labels must be [3]"),
        ("cross_entropy(randn([3, 4]), tensor([0, 1, 4]))", "outside [0, 4)"),
        ("cross_entropy(randn([3, 4]), tensor([0, 1, 2]), #{ reduction: \"avg\" })", "reduction must be"),
        ("cross_entropy(randn([3, 4]), tensor([0, 1, 2]), #{ weights: ones([2]) })", "weights must be [3]"),
        ("cross_entropy(randn([3, 4]), tensor([0, 1, 2]), #{ label_smoothing: 2.0 })", "label_smoothing must be in [0, 1]"),
        ("cross_entropy(randn([3, 4]), tensor([0, 1, 2]), #{ smoothing: 0.1 })", "smoothing"),
        ("mse(ones([3]), ones([4]))", "must have one shape"),
        ("kl_div(ones([3]), ones([3]), #{ reduction: \"avg\" })", "reduction must be"),
        ("ones([3]).to(\"int64\").norm()", "needs a float tensor"),
        ("ones([2, 3]).gather(5, tensor([[0]]))", "gather"),
    ] {
        let err = common::eval_err(expr);
        assert!(err.contains(want), "{expr}: wanted \"{want}\" in {err}");
    }
}
