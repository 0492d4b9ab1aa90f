//! Mixtures in Rhai: `fit_mixture(x, opts)` and the `Mixture` type (parameters, fit
//! statistics, posteriors, densities). The EM is in `crate::mixture`.

use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::gap::to_f64_vec;
use crate::mixture::{self, BalancedRule, Family, FitOptions, Mixture, RawUnits};
use crate::tensor::{check, dtype, Kind, Tensor};
use rhai::{Array, Dynamic, Engine, Map, INT};
use std::rc::Rc;

/// A fitted mixture as a Rhai value (immutable; `Rc` makes copies free).
#[derive(Clone)]
pub struct ScriptMixture(pub Rc<Mixture>);

type M = ScriptMixture;

/// 1-D data from a tensor ([N] or [N, 1]) or an array of numbers.
pub fn values_1d(op: &str, x: &Dynamic) -> RhaiResult<Vec<f64>> {
    if let Some(t) = x.clone().try_cast::<ScriptTensor>() {
        let shape = t.tensor().size();
        let ok = shape.len() == 1 || (shape.len() == 2 && shape[1] == 1);
        if !ok {
            return Err(Error::arg(format!("{op}: expected a 1-d tensor of N values (or [N, 1]), got shape {shape:?}")).into());
        }
        return Ok(to_f64_vec(op, t.tensor())?);
    }
    if let Some(arr) = x.read_lock::<Array>() {
        return arr
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_float()
                    .or_else(|_| v.as_int().map(|n| n as f64))
                    .map_err(|_| Error::arg(format!("{op}: element {i} is a {}, not a number", v.type_name())).into())
            })
            .collect();
    }
    Err(Error::arg(format!("{op}: expected a tensor or an array of numbers, found {}", x.type_name())).into())
}

/// Values laid out as `shape`, in the float dtype and on the device of `like` (float32 on the
/// CPU when `like` is an array or an int tensor).
fn to_tensor(op: &str, values: Vec<f64>, shape: &[i64], like: &Dynamic) -> RhaiResult<ScriptTensor> {
    let (kind, device) = match like.clone().try_cast::<ScriptTensor>() {
        Some(t) if dtype::is_float(t.tensor().kind()) => (t.tensor().kind(), t.tensor().device()),
        Some(t) => (Kind::Float, t.tensor().device()),
        None => (Kind::Float, tch::Device::Cpu),
    };
    let t = Tensor::from_slice(&values);
    Ok(check(op, t.f_reshape(shape).and_then(|t| t.f_to_kind(kind)).and_then(|t| t.f_to_device(device)))?.into())
}

fn floats(xs: impl Iterator<Item = f64>) -> Array {
    xs.map(Dynamic::from_float).collect()
}

fn raw_units(op: &str, v: &Dynamic) -> RhaiResult<RawUnits> {
    let map = v
        .read_lock::<Map>()
        .ok_or_else(|| Error::arg(format!("{op}: option raw must be a map #{{ mean, std }} (zscore_stats returns one)")))?;
    let get = |k: &str| -> RhaiResult<f64> {
        let x = map.get(k).ok_or_else(|| Error::arg(format!("{op}: option raw needs a \"{k}\" entry")))?;
        x.as_float().or_else(|_| x.as_int().map(|i| i as f64)).map_err(|_| Error::arg(format!("{op}: raw.{k} must be a number")).into())
    };
    let (mean, std) = (get("mean")?, get("std")?);
    // The raw std scales z-scores back to gap units: zero or negative would flip or collapse them.
    if !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(Error::arg(format!(
            "{op}: raw: mean must be finite and std finite and > 0 (pass the map zscore_stats returns), got mean {mean}, std {std}"
        ))
        .into());
    }
    Ok(RawUnits { mean, std })
}

const FIT_KEYS: [&str; 12] =
    ["family", "k", "n_init", "tol", "max_iter", "seed", "balanced_rule", "var_floor", "raw", "start_dof", "dof_min", "dof_max"];

fn fit_options(opts: &Map) -> RhaiResult<FitOptions> {
    let op = "fit_mixture";
    let o = Options::new(op, opts, &FIT_KEYS)?;
    let d = FitOptions::default();
    let ks = match o.get("k") {
        None => d.ks.clone(),
        Some(v) if v.is_array() => v
            .read_lock::<Array>()
            .and_then(|a| a.iter().map(|x| x.as_int().ok().and_then(|i| usize::try_from(i).ok())).collect::<Option<Vec<_>>>())
            .ok_or_else(|| Error::arg(format!("{op}: option k as a list must hold ints >= 0, e.g. [1, 2, 3]")))?,
        Some(_) => vec![o.count("k", 2)?],
    };
    let raw = match o.get("raw") {
        Some(v) => raw_units(op, v)?,
        None => d.raw,
    };
    Ok(FitOptions {
        family: Family::parse(&o.string("family", d.family.name())?)?,
        ks,
        n_init: o.count("n_init", d.n_init)?,
        tol: o.float("tol", d.tol)?,
        max_iter: o.count("max_iter", d.max_iter)?,
        var_floor: o.float("var_floor", d.var_floor)?,
        seed: o.count("seed", d.seed as usize)? as u64,
        rule: BalancedRule::parse(&o.string("balanced_rule", d.rule.name())?)?,
        raw,
        start_dof: o.float("start_dof", d.start_dof)?,
        dof_min: o.float("dof_min", d.dof_min)?,
        dof_max: o.float("dof_max", d.dof_max)?,
    })
}

fn to_map(m: &Mixture) -> Map {
    let mut map = Map::new();
    let c = &m.components;
    map.insert("family".into(), m.family.name().into());
    map.insert("k".into(), (m.k() as INT).into());
    map.insert("n".into(), (m.n as INT).into());
    map.insert("weights".into(), floats(c.iter().map(|c| c.weight)).into());
    map.insert("means".into(), floats(c.iter().map(|c| c.mean)).into());
    map.insert("scales".into(), floats(c.iter().map(|c| c.scale)).into());
    if m.family == Family::StudentT {
        map.insert("dofs".into(), floats(c.iter().map(|c| c.dof)).into());
    }
    map.insert("loglik".into(), m.loglik.into());
    map.insert("bic".into(), m.bic().into());
    map.insert("aic".into(), m.aic().into());
    map.insert("n_iter".into(), (m.n_iter as INT).into());
    map.insert("converged".into(), m.converged.into());
    map.insert("balanced".into(), (m.balanced as INT).into());
    map.insert("balanced_rule".into(), m.rule.name().into());
    map.insert("raw_mean".into(), m.raw.mean.into());
    map.insert("raw_std".into(), m.raw.std.into());
    if !m.selection.is_empty() {
        let sel: Array = m
            .selection
            .iter()
            .map(|(k, b)| {
                let mut e = Map::new();
                e.insert("k".into(), (*k as INT).into());
                e.insert("bic".into(), (*b).into());
                e.into()
            })
            .collect();
        map.insert("selection".into(), sel.into());
    }
    map
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    engine.register_type_with_name::<ScriptMixture>("Mixture");
    let a = "mixture";
    docs.add(a, "fit_mixture", "fit_mixture(x, #{ family, k, n_init, tol, max_iter, seed, balanced_rule, var_floor, raw, start_dof, dof_min, dof_max })",
        "Fits a 1-D mixture by EM (f64) to a tensor [N] / [N, 1] or an array. family \"gmm\" | \"smm\" (Student-t) | \"lmm\" (Laplace); k an int, or a list [1, 2, 3] to choose by lowest BIC. Defaults: gmm, k 2, n_init 5, tol 1e-6 (change of mean log-likelihood), max_iter 1000, seed 0, balanced_rule \"weight\" (or \"zero\": mean nearest a zero raw gap, using raw = #{ mean, std }), var_floor 1e-6, Student-t dof from 10 within [0.5, 1000].",
        "let mix = fit_mixture(g.zscore(), #{ family: \"gmm\", k: 2, n_init: 5 });");
    engine.register_fn("fit_mixture", |x: Dynamic| -> RhaiResult<M> { fit(&x, &Map::new()) });
    engine.register_fn("fit_mixture", |x: Dynamic, opts: Map| -> RhaiResult<M> { fit(&x, &opts) });

    docs.add(a, "weights", "mix.weights", "Component weights π (components sorted by mean).", "mix.weights");
    engine.register_get("weights", |m: &mut M| floats(m.0.components.iter().map(|c| c.weight)));
    docs.add(a, "means", "mix.means", "Component means, ascending.", "mix.means");
    engine.register_get("means", |m: &mut M| floats(m.0.components.iter().map(|c| c.mean)));
    docs.add(a, "scales", "mix.scales", "Component scales: std (gmm), t scale (smm), b (lmm).", "mix.scales");
    engine.register_get("scales", |m: &mut M| floats(m.0.components.iter().map(|c| c.scale)));
    docs.add(a, "dofs", "mix.dofs", "Student-t degrees of freedom per component; an empty array for gmm and lmm.", "mix.dofs");
    engine.register_get("dofs", |m: &mut M| -> Array {
        if m.0.family == Family::StudentT {
            floats(m.0.components.iter().map(|c| c.dof))
        } else {
            Array::new()
        }
    });
    docs.add(a, "family", "mix.family", "\"gmm\", \"smm\" or \"lmm\".", "mix.family");
    engine.register_get("family", |m: &mut M| m.0.family.name().to_string());
    docs.add(a, "k", "mix.k", "The number of components.", "mix.k");
    engine.register_get("k", |m: &mut M| m.0.k() as INT);
    docs.add(a, "loglik", "mix.loglik", "Total log-likelihood of the fitted data.", "mix.loglik");
    engine.register_get("loglik", |m: &mut M| m.0.loglik);
    docs.add(a, "mean_loglik", "mix.mean_loglik", "Log-likelihood per sample (sklearn's score).", "mix.mean_loglik");
    engine.register_get("mean_loglik", |m: &mut M| m.0.mean_loglik());
    docs.add(a, "bic", "mix.bic", "-2 loglik + p ln n (lower is better).", "mix.bic");
    engine.register_get("bic", |m: &mut M| m.0.bic());
    docs.add(a, "aic", "mix.aic", "-2 loglik + 2p.", "mix.aic");
    engine.register_get("aic", |m: &mut M| m.0.aic());
    docs.add(a, "n_iter", "mix.n_iter", "EM iterations of the kept initialisation.", "mix.n_iter");
    engine.register_get("n_iter", |m: &mut M| m.0.n_iter as INT);
    docs.add(a, "converged", "mix.converged", "Whether EM met tol before max_iter.", "mix.converged");
    engine.register_get("converged", |m: &mut M| m.0.converged);
    docs.add(
        a,
        "balanced",
        "mix.balanced",
        "Index of the balanced component (the paper's k = 0) under the balanced_rule.",
        "mix.means[mix.balanced]",
    );
    engine.register_get("balanced", |m: &mut M| m.0.balanced as INT);
    docs.add(a, "history", "mix.history", "Mean log-likelihood per sample at each EM step (never decreasing).", "mix.history");
    engine.register_get("history", |m: &mut M| floats(m.0.history.iter().copied()));

    docs.add(
        a,
        "posterior",
        "mix.posterior(x)",
        "Posteriors [N, k] of new points (rows sum to 1; columns in component order), in x's float dtype and device.",
        "let w = mix.posterior(z);",
    );
    engine.register_fn("posterior", |m: &mut M, x: Dynamic| -> RhaiResult<ScriptTensor> {
        let v = values_1d("posterior", &x)?;
        mixture::check_data(&v, 0).map_err(|e| Error::arg(format!("posterior: {e}")))?;
        let n = v.len() as i64;
        to_tensor("posterior", m.0.posterior(&v), &[n, m.0.k() as i64], &x)
    });
    docs.add(
        a,
        "balance_weights",
        "mix.balance_weights(x)",
        "The paper's (w0, w1) per point, [N, 2]: w0 = posterior of the balanced component, w1 = 1 - w0. With k = 1, w0 = 1.",
        "let w = mix.balance_weights(z); w.select(1, 0)",
    );
    engine.register_fn("balance_weights", |m: &mut M, x: Dynamic| -> RhaiResult<ScriptTensor> {
        let v = values_1d("balance_weights", &x)?;
        mixture::check_data(&v, 0).map_err(|e| Error::arg(format!("balance_weights: {e}")))?;
        let n = v.len() as i64;
        to_tensor("balance_weights", m.0.balance_weights(&v), &[n, 2], &x)
    });
    docs.add(a, "pdf", "mix.pdf(x)", "Mixture density Σ π_k p_k(x) at each point, [N].", "mix.pdf(linspace(-3.0, 3.0, 7))");
    engine.register_fn("pdf", |m: &mut M, x: Dynamic| -> RhaiResult<ScriptTensor> {
        let v = values_1d("pdf", &x)?;
        mixture::check_data(&v, 0).map_err(|e| Error::arg(format!("pdf: {e}")))?;
        let n = v.len() as i64;
        to_tensor("pdf", m.0.pdf(&v), &[n], &x)
    });
    docs.add(a, "with_rule", "mix.with_rule(rule) | mix.with_rule(rule, raw)", "The same fit with the balanced component chosen by another rule (\"weight\" or \"zero\"; raw = #{ mean, std } maps means back to raw gap units).", "mix.with_rule(\"zero\", zs).balanced");
    engine.register_fn("with_rule", |m: &mut M, rule: &str| -> RhaiResult<M> {
        Ok(ScriptMixture(Rc::new((*m.0).clone().with_rule(BalancedRule::parse(rule)?, m.0.raw))))
    });
    engine.register_fn("with_rule", |m: &mut M, rule: &str, raw: Dynamic| -> RhaiResult<M> {
        let raw = raw_units("with_rule", &raw)?;
        Ok(ScriptMixture(Rc::new((*m.0).clone().with_rule(BalancedRule::parse(rule)?, raw))))
    });
    docs.add(a, "to_map", "mix.to_map()", "Every field as a map (family, k, n, weights, means, scales, dofs, loglik, bic, aic, n_iter, converged, balanced, balanced_rule, raw_mean, raw_std, selection).", "mix.to_map().bic");
    engine.register_fn("to_map", |m: &mut M| to_map(&m.0));
    engine.register_fn("to_string", |m: &mut M| m.0.to_string());
    engine.register_fn("to_debug", |m: &mut M| m.0.to_string());
}

fn fit(x: &Dynamic, opts: &Map) -> RhaiResult<M> {
    let options = fit_options(opts)?;
    let values = values_1d("fit_mixture", x)?;
    let m = mixture::fit(&values, &options).map_err(|e| Error::arg(format!("fit_mixture: {e}")))?;
    Ok(ScriptMixture(Rc::new(m)))
}
