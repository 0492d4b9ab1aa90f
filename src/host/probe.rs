//! `linear_probe(model, data [, opts])` in Rhai: new linear classifiers on a trained model's
//! frozen features, the field's unimodal accuracy. The work is `crate::train::probe`.

use super::data::ScriptDataset;
use super::handles::ScriptModel;
use super::options::Options;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::train::probe::{linear_probe, ProbeOptions};
use rhai::{Dynamic, Engine, Map};

fn probe(m: &ScriptModel, d: &ScriptDataset, opts: &Map) -> RhaiResult<Map> {
    let op = "linear_probe";
    let o = Options::new(op, opts, &["epochs", "lr", "batch", "modalities", "seed", "quiet"])?;
    let modalities = match o.get("modalities") {
        None => Vec::new(),
        Some(v) => v
            .as_array_ref()
            .map_err(|_| Error::arg(format!("{op}: modalities must be an array of modality names, e.g. [\"audio\"]")))?
            .iter()
            .map(|x| {
                x.clone()
                    .into_string()
                    .map_err(|_| Error::arg(format!("{op}: modalities must be an array of modality names, e.g. [\"audio\"]")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let options = ProbeOptions {
        epochs: o.count("epochs", 20)?,
        lr: o.float("lr", 0.01)?,
        batch: o.count("batch", 64)?,
        modalities,
        seed: o.count("seed", 0)? as u64,
        quiet: o.boolean("quiet", true)?,
    };
    let has = |name: &str| d.0.splits.iter().any(|(n, _)| n == name);
    let val = if has("val") { Some(d.0.split("val")?) } else { None };
    let results = linear_probe(&m.0, &d.0.split("train")?, val.as_ref(), &d.0.split("test")?, &options)?;
    let two = m.0.modalities.len() == 2;
    let mut out = Map::new();
    for r in results {
        let mut put = |suffix: &str| {
            let key = |k: &str| if suffix.is_empty() { k.to_string() } else { format!("{k}_{suffix}") };
            out.insert(key("acc").into(), Dynamic::from_float(r.test_acc));
            out.insert(key("f1").into(), Dynamic::from_float(r.test_f1));
            out.insert(key("val_acc").into(), Dynamic::from_float(r.val_acc));
            out.insert(key("epoch").into(), Dynamic::from_int(r.epoch as i64));
        };
        if r.name == "fused" {
            put("");
        } else {
            put(&r.name);
            // Two-modality records also name them first / second, as evaluate's scores do.
            if let (true, Some(i)) = (two, m.0.modalities.iter().position(|x| *x == r.name)) {
                put(["first", "second"][i]);
            }
        }
    }
    Ok(out)
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "training";
    docs.add(
        a,
        "linear_probe",
        "linear_probe(model, data [, #{ epochs, lr, batch, modalities, seed, quiet }])",
        "The linear probe, what the field's unimodal accuracy usually means (OGM-GE's Table 1, BalanceBenchmark's linear_probe mode): the model's encoders frozen (features computed once in evaluation mode; the model is untouched), a new linear classifier per modality and one on the concatenated features trained on data.train (SGD, momentum 0.9; epochs 20, lr 0.01, batch 64), each at the epoch with the best accuracy on data.val (the last without one). Returns test scores #{ acc_<modality>, f1_<modality>, val_acc_<modality>, epoch_<modality>, and acc, f1, val_acc, epoch for the concatenation }; two-modality models also as acc_first / acc_second. modalities: which to probe (all by default). Recipes take probe: true and record probe_acc_<modality>.",
        "let p = linear_probe(m, data); print(p.acc_audio);",
    );
    engine.register_fn("linear_probe", |m: ScriptModel, d: ScriptDataset| probe(&m, &d, &Map::new()));
    engine.register_fn("linear_probe", |m: ScriptModel, d: ScriptDataset, opts: Map| probe(&m, &d, &opts));
}
