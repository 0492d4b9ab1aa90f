//! The modality gap in Rhai: `gap`, `true_class_score`, `dominance`, `modality_gap`,
//! `zscore` and `zscore_stats`. The math is in `crate::gap`.

use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::gap::{self, GapKind};
use rhai::{Array, Dynamic, Engine, Map, INT};

type T = ScriptTensor;

fn dominance_map(d: &gap::Dominance) -> Map {
    let mut m = Map::new();
    m.insert("dominant".into(), Dynamic::from_int(d.dominant as INT));
    m.insert("mean_scores".into(), Dynamic::from_array(d.mean_scores.iter().map(|s| Dynamic::from_float(*s)).collect()));
    m
}

/// The logits of modality `name` in a map of logits.
fn named_logits(logits: &Map, name: &str) -> RhaiResult<ScriptTensor> {
    let known = || logits.keys().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
    let v = logits.get(name).ok_or_else(|| Error::arg(format!("gap: no modality \"{name}\" in the logits map; it has: {}", known())))?;
    v.clone()
        .try_cast::<ScriptTensor>()
        .ok_or_else(|| Error::arg(format!("gap: logits[\"{name}\"] must be a tensor, found {}", v.type_name())).into())
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "gap";
    docs.add(a, "gap", "gap(la, lv, y, kind) | gap(logits_map, y, [first, second], kind)",
        "Per-sample modality gap [B]: kind \"prob\" = s_a[y] - s_v[y] (Eq. 5), \"kl\" = KL(s_a||U) - KL(s_v||U) (Eq. 6). Logits [B, classes], int labels [B]. Differentiable; any device. With a map of logits, the gap of the named pair.",
        "let g = gap(la, lv, y, \"prob\");");
    engine.register_fn("gap", |la: T, lv: T, y: T, kind: &str| -> RhaiResult<T> {
        Ok(gap::gap(la.tensor(), lv.tensor(), y.tensor(), GapKind::parse(kind)?)?.into())
    });
    engine.register_fn("gap", |logits: Map, y: T, pair: Array, kind: &str| -> RhaiResult<T> {
        let names: Vec<String> = pair.iter().filter_map(|d| d.clone().into_string().ok()).collect();
        if names.len() != 2 || pair.len() != 2 {
            return Err(Error::arg("gap: name the pair as two strings, e.g. [\"audio\", \"video\"]").into());
        }
        let (first, second) = (named_logits(&logits, &names[0])?, named_logits(&logits, &names[1])?);
        Ok(gap::gap(first.tensor(), second.tensor(), y.tensor(), GapKind::parse(kind)?)?.into())
    });

    docs.add(
        a,
        "true_class_score",
        "true_class_score(logits, y)",
        "s[y]: each row's softmax score of its true class, [B]. Differentiable.",
        "true_class_score(la, y).mean()",
    );
    engine.register_fn("true_class_score", |l: T, y: T| -> RhaiResult<T> { Ok(gap::true_class_score(l.tensor(), y.tensor())?.into()) });

    docs.add(a, "dominance", "dominance(la, lv, y)", "Which modality dominates: #{ dominant: 0 or 1, mean_scores: [mean s_a[y], mean s_v[y]] } (the higher mean true-class score; ties go to 0).", "dominance(la, lv, y).dominant");
    engine.register_fn("dominance", |la: T, lv: T, y: T| -> RhaiResult<Map> {
        Ok(dominance_map(&gap::dominance(la.tensor(), lv.tensor(), y.tensor())?))
    });

    docs.add(a, "modality_gap", "modality_gap(la, lv, y, #{ kind, order })",
        "The gap oriented by dominance: order \"auto\" (default) puts the dominant modality first so its gap is mostly positive; \"given\" keeps (la, lv). Returns #{ gap, kind, dominant, swapped, mean_scores }.",
        "let r = modality_gap(la, lv, y, #{ kind: \"kl\" }); r.gap");
    engine.register_fn("modality_gap", |la: T, lv: T, y: T, opts: Map| -> RhaiResult<Map> {
        let o = Options::new("modality_gap", &opts, &["kind", "order"])?;
        let kind = GapKind::parse(&o.string("kind", "prob")?)?;
        let swap_allowed = match o.string("order", "auto")?.as_str() {
            "auto" => true,
            "given" => false,
            other => return Err(Error::arg(format!("modality_gap: order \"{other}\": use \"auto\" or \"given\"")).into()),
        };
        let d = gap::dominance(la.tensor(), lv.tensor(), y.tensor())?;
        let swapped = swap_allowed && d.dominant == 1;
        let (first, second) = if swapped { (&lv, &la) } else { (&la, &lv) };
        let mut m = dominance_map(&d);
        m.insert("gap".into(), Dynamic::from(T::from(gap::gap(first.tensor(), second.tensor(), y.tensor(), kind)?)));
        m.insert("kind".into(), kind.name().into());
        m.insert("swapped".into(), swapped.into());
        Ok(m)
    });

    docs.add(
        a,
        "zscore",
        "t.zscore()",
        "(t - mean) / std over all elements with the population std (Eq. 7). All-equal or non-finite values are an error.",
        "fit_mixture(g.zscore(), #{})",
    );
    engine.register_fn("zscore", |t: &mut T| -> RhaiResult<T> { Ok(gap::zscore(t.tensor())?.z.into()) });
    docs.add(a, "zscore_stats", "t.zscore_stats()", "#{ z, mean, std }: the z-scored tensor and the mean and std used, to map fitted means back to raw gap units (fit_mixture's raw option).", "let zs = g.zscore_stats(); fit_mixture(zs.z, #{ raw: zs })");
    engine.register_fn("zscore_stats", |t: &mut T| -> RhaiResult<Map> {
        let zs = gap::zscore(t.tensor())?;
        let mut m = Map::new();
        m.insert("z".into(), Dynamic::from(T::from(zs.z)));
        m.insert("mean".into(), zs.mean.into());
        m.insert("std".into(), zs.std.into());
        Ok(m)
    });
}
