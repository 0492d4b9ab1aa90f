//! What a scripted method builds its loss from: the loss functions of `torch.nn.functional`
//! (`cross_entropy`, `nll`, `kl_div`, `mse`, `cosine_similarity`), the ops they are usually
//! combined with (`gather`, `norm`, `tanh`, `sigmoid`, `relu`), and the autograd switches
//! (`detach`, `requires_grad`). Tensors keep their graph through every op: inside a method's
//! hooks the model's outputs carry one, so anything computed from them can be differentiated.

use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::tensor::loss::{self, CrossEntropy, Reduction};
use crate::tensor::{check, ops, Tensor};
use rhai::{Dynamic, Engine, Map, INT};

type T = ScriptTensor;
type R = RhaiResult<ScriptTensor>;

fn ok(r: crate::error::Result<Tensor>) -> R {
    Ok(ScriptTensor::new(r?))
}

fn tensor_option(op: &str, key: &str, v: Option<&Dynamic>) -> RhaiResult<Option<Tensor>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v
            .clone()
            .try_cast::<ScriptTensor>()
            .map(|t| Some(t.tensor().shallow_clone()))
            .ok_or_else(|| Error::arg(format!("{op}: {key} must be a tensor, found {}", super::convert::type_label(v))).into()),
    }
}

fn reduction(op: &'static str, opts: &Map) -> RhaiResult<Reduction> {
    let o = Options::new(op, opts, &["reduction"])?;
    Ok(Reduction::parse(op, &o.string("reduction", "mean")?)?)
}

fn cross_entropy(logits: &T, labels: &T, opts: &Map) -> R {
    let op = "cross_entropy";
    let o = Options::new(op, opts, &["weights", "class_weights", "reduction", "label_smoothing"])?;
    let ce = CrossEntropy {
        weights: tensor_option(op, "weights", o.get("weights"))?,
        class_weights: tensor_option(op, "class_weights", o.get("class_weights"))?,
        reduction: Reduction::parse(op, &o.string("reduction", "mean")?)?,
        label_smoothing: o.float("label_smoothing", 0.0)?,
    };
    ok(loss::cross_entropy(logits.tensor(), labels.tensor(), &ce))
}

fn kl_div(input: &T, target: &T, opts: &Map) -> R {
    let op = "kl_div";
    let o = Options::new(op, opts, &["reduction", "log_target"])?;
    ok(loss::kl_div(input.tensor(), target.tensor(), &o.string("reduction", "mean")?, o.boolean("log_target", false)?))
}

fn norm(t: &T, p: f64, dim: Option<INT>, keep: bool) -> R {
    let op = "norm";
    let x = t.tensor();
    let dims: Vec<i64> = match dim {
        Some(d) => vec![ops::norm_dim(op, d, x.dim())?],
        None => (0..x.dim() as i64).collect(),
    };
    if !x.is_floating_point() {
        return Err(Error::arg(format!(
            "{op}: needs a float tensor, got {}; convert with .to(\"float32\")",
            crate::tensor::dtype::kind_name(x.kind())
        ))
        .into());
    }
    ok(check(op, x.f_norm_scalaropt_dim(p, dims.as_slice(), keep)))
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "autograd";
    docs.add(a, "cross_entropy", "cross_entropy(logits, labels [, #{ weights, class_weights, reduction, label_smoothing }])",
        "F.cross_entropy: logits [B, C], int labels [B]. weights [B] weights each sample (the mean is then Σ w_i·CE_i / B); class_weights [C] is PyTorch's weight; reduction \"mean\" (default) | \"sum\" | \"none\" ([B]); label_smoothing in [0, 1]. Without options it is the native methods' own cross-entropy, bit for bit. Differentiable.",
        "let loss = cross_entropy(out.fused, ctx.labels);");
    engine.register_fn("cross_entropy", |l: T, y: T| cross_entropy(&l, &y, &Map::new()));
    engine.register_fn("cross_entropy", |l: T, y: T, opts: Map| cross_entropy(&l, &y, &opts));
    docs.add(a, "nll", "nll(log_probs, labels [, #{ reduction }])", "F.nll_loss: −log_probs at each label, log_probs [B, C] (from log_softmax), int labels [B]; reduction \"mean\" | \"sum\" | \"none\".", "nll(out.fused.log_softmax(-1), ctx.labels)");
    engine.register_fn("nll", |l: T, y: T| -> R { ok(loss::nll(l.tensor(), y.tensor(), Reduction::Mean)) });
    engine.register_fn("nll", |l: T, y: T, opts: Map| -> R { ok(loss::nll(l.tensor(), y.tensor(), reduction("nll", &opts)?)) });
    docs.add(a, "kl_div", "kl_div(input, target [, #{ reduction, log_target }])",
        "F.kl_div: input holds log-probabilities, target probabilities (log-probabilities with log_target: true); reduction \"mean\" (PyTorch's default: over every element) | \"batchmean\" (the KL divergence proper: the sum over the batch size) | \"sum\" | \"none\".",
        "kl_div(student.log_softmax(-1), teacher.softmax(-1), #{ reduction: \"batchmean\" })");
    engine.register_fn("kl_div", |i: T, t: T| kl_div(&i, &t, &Map::new()));
    engine.register_fn("kl_div", |i: T, t: T, opts: Map| kl_div(&i, &t, &opts));
    docs.add(
        a,
        "mse",
        "mse(input, target [, #{ reduction }])",
        "F.mse_loss: the mean (or sum, or none) of squared differences; the two shapes must match.",
        "mse(f_a, f_v.detach())",
    );
    engine.register_fn("mse", |i: T, t: T| -> R { ok(loss::mse(i.tensor(), t.tensor(), Reduction::Mean)) });
    engine.register_fn("mse", |i: T, t: T, opts: Map| -> R { ok(loss::mse(i.tensor(), t.tensor(), reduction("mse", &opts)?)) });
    docs.add(
        a,
        "cosine_similarity",
        "cosine_similarity(a, b [, dim [, eps]])",
        "F.cosine_similarity along dim (default 1), eps 1e-8: [B] for two [B, D] feature tensors.",
        "cosine_similarity(f.audio, f.visual).mean()",
    );
    engine.register_fn("cosine_similarity", |x: T, y: T| -> R { ok(loss::cosine_similarity(x.tensor(), y.tensor(), 1, 1e-8)) });
    engine.register_fn("cosine_similarity", |x: T, y: T, dim: INT| -> R { ok(loss::cosine_similarity(x.tensor(), y.tensor(), dim, 1e-8)) });
    engine.register_fn("cosine_similarity", |x: T, y: T, dim: INT, eps: f64| -> R {
        ok(loss::cosine_similarity(x.tensor(), y.tensor(), dim, eps))
    });

    docs.add(
        a,
        "detach",
        "t.detach()",
        "The same values cut from the autograd graph: gradients do not flow back through it (PyTorch's detach; shares storage).",
        "let target = out.fused.detach().softmax(-1);",
    );
    engine.register_fn("detach", |t: &mut T| -> R { ok(check("detach", t.tensor().f_detach())) });
    docs.add(
        a,
        "requires_grad",
        "t.requires_grad",
        "true when the tensor is part of an autograd graph (a model output inside a method's hook, or anything computed from one).",
        "if !loss.requires_grad { throw \"no graph\"; }",
    );
    engine.register_get("requires_grad", |t: &mut T| t.tensor().requires_grad());
    docs.add(
        a,
        "gather",
        "t.gather(dim, index)",
        "torch.gather: picks t[i][index[i][j]] along dim; index is an int tensor of t's rank. Differentiable in t.",
        "p.gather(1, y.unsqueeze(1)).squeeze(1)  // each row's true-class probability",
    );
    engine.register_fn("gather", |t: &mut T, dim: INT, idx: T| -> R {
        let d = ops::norm_dim("gather", dim, t.tensor().dim())?;
        ok(check("gather", t.tensor().f_gather(d, idx.tensor(), false)))
    });
    docs.add(
        a,
        "norm",
        "t.norm(p?, dim?, keepdim?)",
        "The p-norm (default 2) of all elements, or along dim. Differentiable.",
        "f.norm(2.0, 1)  // each row's length",
    );
    engine.register_fn("norm", |t: &mut T| norm(t, 2.0, None, false));
    engine.register_fn("norm", |t: &mut T, p: f64| norm(t, p, None, false));
    engine.register_fn("norm", |t: &mut T, p: f64, dim: INT| norm(t, p, Some(dim), false));
    engine.register_fn("norm", |t: &mut T, p: f64, dim: INT, keep: bool| norm(t, p, Some(dim), keep));
    type Unary = fn(&Tensor) -> Result<Tensor, tch::TchError>;
    let unary: [(&'static str, &'static str, &'static str, &'static str, Unary); 3] = [
        ("tanh", "t.tanh()", "Elementwise hyperbolic tangent.", "(x * 0.8).tanh()", |t| t.f_tanh()),
        ("sigmoid", "t.sigmoid()", "Elementwise logistic sigmoid.", "gate.sigmoid()", |t| t.f_sigmoid()),
        ("relu", "t.relu()", "Elementwise max(x, 0).", "(ratio - 1.0).relu()", |t| t.f_relu()),
    ];
    for (name, usage, summary, example, f) in unary {
        docs.add(a, name, usage, summary, example);
        engine.register_fn(name, move |t: &mut T| -> R { ok(check(name, f(t.tensor()))) });
    }
}
