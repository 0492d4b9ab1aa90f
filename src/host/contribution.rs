//! Which modality a model uses, in Rhai: `shapley` (exact Shapley contributions over every
//! subset of modalities), `gap_matrix` (every pair's mean gap) and `modality_scores` (each
//! modality against the others, the dominant and the most neglected). The work is in
//! `crate::train::shapley` and `crate::gap::matrix`.

use super::handles::ScriptModel;
use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::data::Split;
use crate::gap::matrix;
use crate::gap::GapKind;
use crate::train::shapley::{shapley, Removal};
use crate::train::trainer;
use rhai::{Dynamic, Engine, Map};

fn contributions(m: &ScriptModel, split: &Split, opts: &Map) -> RhaiResult<Map> {
    let op = "shapley";
    let o = Options::new(op, opts, &["remove", "per_sample", "metric"])?;
    let metric = o.string("metric", "accuracy")?;
    if metric != "accuracy" {
        return Err(crate::error::Error::arg(format!(
            "{op}: metric must be \"accuracy\" (the fused accuracy of each subset), got \"{metric}\""
        ))
        .into());
    }
    let c = shapley(&m.0, split, Removal::parse(&o.string("remove", "input")?)?, o.boolean("per_sample", false)?, 256)?;
    let mut out = Map::new();
    for (name, v) in m.0.modalities.iter().zip(&c.values) {
        out.insert(name.as_str().into(), Dynamic::from_float(*v));
    }
    out.insert("full".into(), Dynamic::from_float(c.full));
    out.insert("none".into(), Dynamic::from_float(c.none));
    // v(S) by the names in S, joined with "+" ("" is the empty set).
    let mut subsets = Map::new();
    for (mask, v) in &c.subsets {
        let names: Vec<&str> = m.0.modalities.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, n)| n.as_str()).collect();
        subsets.insert(names.join("+").into(), Dynamic::from_float(*v));
    }
    out.insert("subsets".into(), Dynamic::from_map(subsets));
    if let Some(p) = c.per_sample {
        out.insert("per_sample".into(), Dynamic::from(ScriptTensor::new(p)));
    }
    Ok(out)
}

fn kind(k: &str) -> RhaiResult<GapKind> {
    Ok(GapKind::parse(k)?)
}

fn scores(m: &ScriptModel, split: &Split, k: &str) -> RhaiResult<Map> {
    let out = trainer::predict(&m.0, split, 256)?;
    let a = matrix::against_others(&out.per, &out.labels, kind(k)?)?;
    let mut map = Map::new();
    map.insert("scores".into(), Dynamic::from(ScriptTensor::new(a.scores)));
    map.insert("against_others".into(), Dynamic::from(ScriptTensor::new(a.against_others)));
    map.insert("dominant".into(), m.0.modalities[a.dominant].clone().into());
    map.insert("neglected".into(), m.0.modalities[a.neglected].clone().into());
    map.insert("modalities".into(), Dynamic::from_array(m.0.modalities.iter().map(|s| s.clone().into()).collect()));
    Ok(map)
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "analysis";
    docs.add(a, "shapley", "shapley(model, split [, #{ remove, per_sample, metric }])",
        "Exact Shapley modality contributions over all 2^N subsets of the model's modalities: v(S) is the fused accuracy on the split with the modalities outside S removed (remove \"input\": inputs zeroed, as BalanceBenchmark; \"feature\": encoder features zeroed before the head). Returns #{ <modality>: φ, full: v(all), none: v(empty), subsets: #{ \"a+b\": v, ... } }, and with per_sample: true the per-sample contributions per_sample [n, N] (split order). The φ sum to full − none.",
        "let s = shapley(m, data.test); print(s.pix); print(s.full - s.none);");
    engine.register_fn("shapley", |m: ScriptModel, s: Split| contributions(&m, &s, &Map::new()));
    engine.register_fn("shapley", |m: ScriptModel, s: Split, opts: Map| contributions(&m, &s, &opts));
    docs.add(a, "gap_matrix", "gap_matrix(model, split [, kind])",
        "The mean gap of every ordered pair of the model's modalities over a split: [N, N] float64, entry (r, c) the row modality's mean confidence minus the column one's (kind \"prob\", Eq. 5, default; or \"kl\", Eq. 6); antisymmetric, zero on the diagonal. For two modalities (0, 1) is the paper's mean gap.",
        "let g = gap_matrix(m, data.train); print(g);");
    engine.register_fn("gap_matrix", |m: ScriptModel, s: Split| -> RhaiResult<ScriptTensor> {
        let out = trainer::predict(&m.0, &s, 256)?;
        Ok(ScriptTensor::new(matrix::gap_matrix(&out.per, &out.labels, GapKind::Prob)?))
    });
    engine.register_fn("gap_matrix", |m: ScriptModel, s: Split, k: &str| -> RhaiResult<ScriptTensor> {
        let out = trainer::predict(&m.0, &s, 256)?;
        Ok(ScriptTensor::new(matrix::gap_matrix(&out.per, &out.labels, kind(k)?)?))
    });
    docs.add(a, "modality_scores", "modality_scores(model, split [, kind])",
        "Each modality against the others, per sample: #{ scores [n, N] (true-class score, or KL to uniform for kind \"kl\"), against_others [n, N] (s_m minus the mean of the other modalities' scores), dominant and neglected (the modalities with the highest and lowest mean score), modalities }. The against_others columns are gaps a mixture can be fitted to.",
        "let ms = modality_scores(m, data.train); print(ms.neglected);");
    engine.register_fn("modality_scores", |m: ScriptModel, s: Split| scores(&m, &s, "prob"));
    engine.register_fn("modality_scores", |m: ScriptModel, s: Split, k: &str| scores(&m, &s, k));
}
