//! Embeddings and clustering in Rhai: `tsne`, `trustworthiness`, `kmeans`, `purity`. The
//! algorithms are `crate::manifold` and `crate::cluster`.

use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::cluster::{kmeans, purity, KMeansOptions};
use crate::error::Error;
use crate::manifold::{trustworthiness, tsne, TsneMethod, TsneOptions};
use crate::tensor::Tensor;
use rhai::{Array, Dynamic, Engine, Map, INT};

pub const TSNE_KEYS: [&str; 10] =
    ["perplexity", "iterations", "learning_rate", "early_exaggeration", "angle", "method", "exact_below", "init", "seed", "quiet"];

/// t-SNE options from a script's map.
pub fn tsne_options(op: &'static str, opts: &Map) -> RhaiResult<TsneOptions> {
    let o = Options::new(op, opts, &TSNE_KEYS)?;
    let d = TsneOptions::default();
    let method = match o.string("method", "auto")?.as_str() {
        "auto" => TsneMethod::Auto,
        "exact" => TsneMethod::Exact,
        "barnes_hut" | "barnes-hut" => TsneMethod::BarnesHut,
        other => return Err(Error::arg(format!("{op}: method must be \"auto\", \"exact\" or \"barnes_hut\", got \"{other}\"")).into()),
    };
    let pca_init = match o.string("init", "pca")?.as_str() {
        "pca" => true,
        "random" => false,
        other => return Err(Error::arg(format!("{op}: init must be \"pca\" or \"random\", got \"{other}\"")).into()),
    };
    let learning_rate = match o.get("learning_rate") {
        Some(v) if v.clone().into_string().is_ok_and(|s| s == "auto") => None,
        Some(_) => Some(o.float("learning_rate", 0.0)?),
        None => None,
    };
    Ok(TsneOptions {
        perplexity: o.float("perplexity", d.perplexity)?,
        max_iter: o.count("iterations", d.max_iter)?,
        learning_rate,
        early_exaggeration: o.float("early_exaggeration", d.early_exaggeration)?,
        angle: o.float("angle", d.angle)?,
        method,
        exact_below: o.count("exact_below", d.exact_below)?,
        pca_init,
        seed: o.count("seed", 0)? as u64,
        quiet: o.boolean("quiet", false)?,
    })
}

fn ints(op: &str, what: &str, v: &Dynamic) -> RhaiResult<Vec<i64>> {
    if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
        return Ok(crate::tensor::check(
            op,
            t.tensor().f_to_kind(tch::Kind::Int64).and_then(|t| t.f_flatten(0, -1)).and_then(|t| Vec::<i64>::try_from(&t)),
        )?);
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().map(|x| x.as_int().map_err(|_| Error::arg(format!("{op}: {what} must hold ints")).into())).collect();
    }
    Err(Error::arg(format!("{op}: {what} must be a tensor or an array of ints")).into())
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "analytics";
    docs.add(a, "tsne", "tsne(x [, #{ perplexity, iterations, learning_rate, early_exaggeration, angle, method, exact_below, init, seed, quiet }])",
        "A 2-D t-SNE embedding [N, 2] of the rows of x [N, D], as scikit-learn's TSNE computes it (its defaults: perplexity 30, iterations 1000, learning_rate \"auto\" = max(N/48, 50), early_exaggeration 12, angle 0.5, init \"pca\" | \"random\" with seed). method \"auto\" (exact below exact_below = 2000 points, Barnes-Hut from there), \"exact\" or \"barnes_hut\". Shows a progress bar unless quiet. Needs more points than the perplexity and no NaN rows.",
        "let e = tsne(forward(m, b).features_first, #{ perplexity: 30, seed: 1 });");
    engine.register_fn("tsne", |x: ScriptTensor, opts: Map| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(tsne(x.tensor(), &tsne_options("tsne", &opts)?)?.embedding))
    });
    engine.register_fn("tsne", |x: ScriptTensor| -> RhaiResult<ScriptTensor> {
        Ok(ScriptTensor::new(tsne(x.tensor(), &TsneOptions::default())?.embedding))
    });
    docs.add(
        a,
        "tsne_fit",
        "tsne_fit(x [, opts])",
        "tsne with its record: #{ embedding, kl (the KL divergence reached, as sklearn's kl_divergence_), iterations, exact }.",
        "let r = tsne_fit(x, #{ quiet: true }); print(r.kl);",
    );
    let fit = |x: &ScriptTensor, opts: &Map| -> RhaiResult<Map> {
        let r = tsne(x.tensor(), &tsne_options("tsne_fit", opts)?)?;
        let mut out = Map::new();
        out.insert("embedding".into(), Dynamic::from(ScriptTensor::new(r.embedding)));
        out.insert("kl".into(), Dynamic::from_float(r.kl));
        out.insert("iterations".into(), Dynamic::from_int(r.iterations as INT));
        out.insert("exact".into(), Dynamic::from_bool(r.exact));
        Ok(out)
    };
    engine.register_fn("tsne_fit", move |x: ScriptTensor, opts: Map| fit(&x, &opts));
    engine.register_fn("tsne_fit", move |x: ScriptTensor| fit(&x, &Map::new()));

    docs.add(a, "trustworthiness", "trustworthiness(x, embedding [, k])",
        "How well an embedding keeps each point's neighbourhood (1 is perfect), as sklearn.manifold.trustworthiness with n_neighbors k (default 5).",
        "print(trustworthiness(x, tsne(x), 5));");
    engine.register_fn("trustworthiness", |x: ScriptTensor, e: ScriptTensor, k: INT| -> RhaiResult<f64> {
        Ok(trustworthiness(x.tensor(), e.tensor(), usize::try_from(k).unwrap_or(0))?)
    });
    engine.register_fn("trustworthiness", |x: ScriptTensor, e: ScriptTensor| -> RhaiResult<f64> {
        Ok(trustworthiness(x.tensor(), e.tensor(), 5)?)
    });

    docs.add(a, "kmeans", "kmeans(x, k [, #{ n_init, max_iter, tol, seed }])",
        "k-means of the rows of x with sklearn's algorithm pinned (k-means++ starts, n_init 10, max_iter 300, tol 1e-4 of the mean variance, seed 0): #{ labels: T [N] int64, centers: T [k, D], inertia, iterations }.",
        "let km = kmeans(x, 10); print(purity(km.labels, y));");
    let km = |x: &ScriptTensor, k: INT, opts: &Map| -> RhaiResult<Map> {
        let o = Options::new("kmeans", opts, &["n_init", "max_iter", "tol", "seed"])?;
        let d = KMeansOptions::default();
        let ko = KMeansOptions {
            n_init: o.count("n_init", d.n_init)?,
            max_iter: o.count("max_iter", d.max_iter)?,
            tol: o.float("tol", d.tol)?,
            seed: o.count("seed", 0)? as u64,
        };
        let r = kmeans(x.tensor(), usize::try_from(k).unwrap_or(0), &ko)?;
        let mut out = Map::new();
        out.insert("labels".into(), Dynamic::from(ScriptTensor::new(Tensor::from_slice(&r.labels))));
        out.insert("centers".into(), Dynamic::from(ScriptTensor::new(r.centers)));
        out.insert("inertia".into(), Dynamic::from_float(r.inertia));
        out.insert("iterations".into(), Dynamic::from_int(r.iterations as INT));
        Ok(out)
    };
    engine.register_fn("kmeans", move |x: ScriptTensor, k: INT, opts: Map| km(&x, k, &opts));
    engine.register_fn("kmeans", move |x: ScriptTensor, k: INT| km(&x, k, &Map::new()));
    docs.add(
        a,
        "purity",
        "purity(clusters, labels)",
        "The fraction of points whose cluster's majority class is their own (D&R's diagnosis): tensors or arrays of ints.",
        "print(purity(km.labels, y));",
    );
    engine.register_fn("purity", |c: Dynamic, y: Dynamic| -> RhaiResult<f64> {
        Ok(purity(&ints("purity", "clusters", &c)?, &ints("purity", "labels", &y)?)?)
    });
}
