//! Figures in Rhai: `plot_mixture`, `plot_curves`, `plot_evolution`, `plot_bars`, `plot_cd`,
//! `plot_embedding`. Drawing is in `crate::plot`; tables come from `crate::results`.

use super::frame::ScriptFrame;
use super::handles::ScriptModel;
use super::mixture::{values_1d, ScriptMixture};
use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::data::Split;
use crate::error::Error;
use crate::plot::{self, mixture_fig::MixtureFigure};
use crate::plot::{
    bars::BarsFigure,
    cd::CdFigure,
    curves::{CurvesFigure, Series},
    embedding::{EmbeddingFigure, Projection},
    evolution::EvolutionFigure,
};
use crate::results::{files, values, DataFrame};
use rhai::{Array, Dynamic, Engine, Map};
use std::path::Path;

fn plot_mixture(x: &Dynamic, mix: &ScriptMixture, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_mixture";
    let o = Options::new(op, opts, &["bins", "title", "xlabel", "width", "height"])?;
    let values = values_1d(op, x)?;
    let bins = o.get("bins").map(|_| o.count("bins", 0)).transpose()?;
    let mut fig = MixtureFigure::new(&values, &mix.0, bins).map_err(|e| crate::error::Error::arg(format!("{op}: {e}")))?;
    if let Some(t) = o.get("title").map(|_| o.string("title", "")).transpose()? {
        fig.title = t;
    }
    fig.x_label = o.string("xlabel", &fig.x_label)?;
    let size = (o.count("width", plot::DEFAULT_SIZE.0 as usize)? as u32, o.count("height", plot::DEFAULT_SIZE.1 as usize)? as u32);
    if size.0 < 200 || size.1 < 150 {
        return Err(crate::error::Error::arg(format!("{op}: a figure needs at least 200 x 150 pixels, got {} x {}", size.0, size.1)).into());
    }
    plot::save(&fig, Path::new(path), size)?;
    Ok(path.to_string())
}

/// A figure just written also goes to the display (a notebook shows it inline; elsewhere nothing).
fn shown(written: RhaiResult<String>) -> RhaiResult<String> {
    if let Ok(path) = &written {
        crate::display::figure(std::path::Path::new(path));
    }
    written
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "plot";
    docs.add(a, "plot_mixture", "plot_mixture(x, mix, path) | plot_mixture(x, mix, path, #{ bins, title, xlabel, width, height })",
        "The paper's Fig. 3: the histogram of x as a density, the mixture density, and each weighted component labelled balanced / imbalanced with its weight and mean. PNG or SVG by the extension; written atomically; returns the path.",
        "plot_mixture(z, mix, \"runs/gap.png\")");
    engine.register_fn("plot_mixture", |x: Dynamic, mix: ScriptMixture, path: &str| shown(plot_mixture(&x, &mix, path, &Map::new())));
    engine.register_fn("plot_mixture", |x: Dynamic, mix: ScriptMixture, path: &str, opts: Map| shown(plot_mixture(&x, &mix, path, &opts)));

    docs.add(a, "plot_curves", "plot_curves(run_or_frame, path [, #{ x, y, labels, by, title, ylabel, width, height }])",
        "Lines per epoch from a run folder (its epochs table) or a DataFrame: x \"epoch\"; y the columns, default [\"test_acc\", \"test_acc_first\", \"test_acc_second\"] (the paper's Fig. 6); y: [\"ce_first\", \"ce_second\"] gives Fig. 1's unimodal training losses; by a column splitting rows into one line per value (e.g. \"run\" for runs(dir, \"epochs\")). An empty table is an error and writes nothing.",
        "plot_curves(\"runs/a\", \"runs/a/accuracy.png\"); plot_curves(\"runs/a\", \"runs/a/losses.png\", #{ y: [\"ce_first\", \"ce_second\"], ylabel: \"training loss\" });");
    engine.register_fn("plot_curves", |src: Dynamic, path: &str| shown(plot_curves(&src, path, &Map::new())));
    engine.register_fn("plot_curves", |src: Dynamic, path: &str, opts: Map| shown(plot_curves(&src, path, &opts)));
    docs.add(a, "plot_evolution", "plot_evolution(run_or_frame, path [, #{ column, title, width, height }])",
        "The paper's Fig. 5: the gap distribution at each refit, one density outline per refit epoch (light to dark), from a run folder (its samples table) or a frame with epoch and the column (default \"z\"; \"gap\" for raw units).",
        "plot_evolution(\"runs/a\", \"runs/a/evolution.png\")");
    engine.register_fn("plot_evolution", |src: Dynamic, path: &str| shown(plot_evolution(&src, path, &Map::new())));
    engine.register_fn("plot_evolution", |src: Dynamic, path: &str, opts: Map| shown(plot_evolution(&src, path, &opts)));
    docs.add(a, "plot_bars", "plot_bars(frame, path, #{ x, y, err, labels, title, ylabel, width, height })",
        "Grouped bars for an ablation table: one group per row labelled by column x, one bar per column in y, error bars from the columns in err (same order; e.g. standard deviations over seeds).",
        "plot_bars(t, \"results/table3.png\", #{ x: \"variant\", y: [\"acc_mean\"], err: [\"acc_sd\"] })");
    engine.register_fn("plot_bars", |df: ScriptFrame, path: &str, opts: Map| shown(plot_bars(&df.0, path, &opts)));
    docs.add(a, "plot_cd", "plot_cd(tables, path [, #{ metric, by, block, level, title, width, height }])",
        "The critical-difference diagram (Demšar 2006) of rows ranked across tables, as ranks() ranks them: the average-rank axis (1, the best, on the left), each row's name led out to the side with its rank, the Nemenyi critical difference at 1 − level (0.95) above the axis, and thick bars joining rows whose ranks differ by less (not distinguishable). tables: an array of DataFrames with by (\"variant\") and block (\"dataset\") columns.",
        "plot_cd([mfeat_two, mfeat_three], \"results/cd.png\", #{ metric: \"acc\" })");
    engine.register_fn("plot_cd", |tables: Dynamic, path: &str| shown(plot_cd(&tables, path, &Map::new())));
    engine.register_fn("plot_cd", |tables: Dynamic, path: &str, opts: Map| shown(plot_cd(&tables, path, &opts)));
    docs.add(a, "plot_embedding", "plot_embedding(model, split, path [, opts]) | plot_embedding(features, labels, path [, opts])",
        "The paper's Fig. 4: t-SNE of a model's features on a split, one panel per encoder and one for the fused (concatenated) feature, coloured by class; or of each entry of a features map (name -> [n, d] tensor). opts: projection \"tsne\" (default) | \"pca\", max_points (5000, a seeded subsample of a model's split), title, width, height, and tsne's options (perplexity, iterations, seed, quiet, ...).",
        "let out = forward(m, b); plot_embedding(#{ pix: out.features_first, fou: out.features_second }, b.labels, \"runs/emb.png\")");
    engine.register_fn("plot_embedding", |sets: Map, labels: ScriptTensor, path: &str| {
        shown(plot_embedding(&sets, &labels, path, &Map::new()))
    });
    engine.register_fn("plot_embedding", |sets: Map, labels: ScriptTensor, path: &str, opts: Map| {
        shown(plot_embedding(&sets, &labels, path, &opts))
    });
    engine.register_fn("plot_embedding", |m: ScriptModel, split: Split, path: &str| {
        shown(plot_model_embedding(&m, &split, path, &Map::new()))
    });
    engine.register_fn("plot_embedding", |m: ScriptModel, split: Split, path: &str, opts: Map| {
        shown(plot_model_embedding(&m, &split, path, &opts))
    });
}

/// A frame given directly, or a run folder's `<table>.parquet`.
fn frame_or_run(op: &str, src: &Dynamic, table: &str) -> RhaiResult<DataFrame> {
    if let Some(f) = src.clone().try_cast::<ScriptFrame>() {
        return Ok(f.0.as_ref().clone());
    }
    if src.is_string() {
        let dir = src.to_string();
        return Ok(files::read_parquet(&Path::new(&dir).join(format!("{table}.parquet")))?);
    }
    Err(Error::arg(format!("{op}: expected a run folder or a DataFrame, found {}", src.type_name())).into())
}

fn size(op: &str, o: &Options) -> RhaiResult<(u32, u32)> {
    let size = (o.count("width", plot::DEFAULT_SIZE.0 as usize)? as u32, o.count("height", plot::DEFAULT_SIZE.1 as usize)? as u32);
    if size.0 < 200 || size.1 < 150 {
        return Err(Error::arg(format!("{op}: a figure needs at least 200 x 150 pixels, got {} x {}", size.0, size.1)).into());
    }
    Ok(size)
}

fn names(op: &str, o: &Options, key: &str, default: &[&str]) -> RhaiResult<Vec<String>> {
    match o.get(key) {
        None => Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(v) if v.is_string() => Ok(vec![v.to_string()]),
        Some(v) => v
            .read_lock::<Array>()
            .map(|a| a.iter().map(|s| s.to_string()).collect())
            .ok_or_else(|| Error::arg(format!("{op}: {key} must be a column name or an array of them")).into()),
    }
}

fn numbers(df: &DataFrame, name: &str) -> RhaiResult<Vec<f64>> {
    Ok(values::matrix(df, &[name.to_string()])?)
}

fn plot_curves(src: &Dynamic, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_curves";
    let o = Options::new(op, opts, &["x", "y", "labels", "by", "title", "ylabel", "width", "height"])?;
    let df = frame_or_run(op, src, "epochs")?;
    let x = o.string("x", "epoch")?;
    let ys = names(op, &o, "y", &["test_acc", "test_acc_first", "test_acc_second"])?;
    let labels = names(op, &o, "labels", &[])?;
    let xs = numbers(&df, &x)?;
    let by: Option<Vec<String>> = match o.get("by") {
        Some(_) => Some(values::cells(&df, &o.string("by", "")?)?.into_iter().map(|v| v.to_string()).collect()),
        None => None,
    };
    let mut series = Vec::new();
    for (j, y) in ys.iter().enumerate() {
        let vals = numbers(&df, y)?;
        let label = labels.get(j).cloned().unwrap_or_else(|| y.clone());
        match &by {
            None => series.push(Series { label, points: xs.iter().copied().zip(vals).collect() }),
            Some(groups) => {
                let mut seen: Vec<String> = Vec::new();
                for g in groups {
                    if !seen.contains(g) {
                        seen.push(g.clone());
                    }
                }
                for g in seen {
                    let points = xs.iter().zip(&vals).zip(groups).filter(|(_, gg)| **gg == g).map(|((x, v), _)| (*x, *v)).collect();
                    series.push(Series { label: format!("{label} ({g})"), points });
                }
            }
        }
    }
    let default_title =
        if ys.iter().all(|y| y.starts_with("ce_") || y.contains("loss")) { "Training loss per epoch" } else { "Accuracy per epoch" };
    let fig = CurvesFigure::new(
        series,
        o.string("title", default_title)?,
        x.clone(),
        o.string("ylabel", if default_title.starts_with("Acc") { "accuracy" } else { "loss" })?,
    )
    .map_err(|e| Error::arg(format!("{op}: {e}")))?;
    plot::save(&fig, Path::new(path), size(op, &o)?)?;
    Ok(path.to_string())
}

fn plot_evolution(src: &Dynamic, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_evolution";
    let o = Options::new(op, opts, &["column", "title", "width", "height"])?;
    let df = frame_or_run(op, src, "samples")?;
    let column = o.string("column", "z")?;
    let epochs = numbers(&df, "epoch")?;
    let vals = numbers(&df, &column)?;
    let mut groups: Vec<(i64, Vec<f64>)> = Vec::new();
    for (e, v) in epochs.iter().zip(vals) {
        let e = *e as i64;
        match groups.iter_mut().find(|(g, _)| *g == e) {
            Some((_, list)) => list.push(v),
            None => groups.push((e, vec![v])),
        }
    }
    groups.sort_by_key(|(e, _)| *e);
    let label = if column == "z" { "gap (z-score)".to_string() } else { column.clone() };
    let mut fig = EvolutionFigure::new(groups, label).map_err(|e| Error::arg(format!("{op}: {e}")))?;
    if o.get("title").is_some() {
        fig.title = o.string("title", "")?;
    }
    plot::save(&fig, Path::new(path), size(op, &o)?)?;
    Ok(path.to_string())
}

fn plot_cd(tables: &Dynamic, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_cd";
    let r = super::stats::ranking(op, tables, opts, &["title", "width", "height"])?;
    let o = Options::new(op, opts, &["metric", "by", "block", "level", "title", "width", "height"])?;
    let default_title = format!("Average ranks of {} over {} tables (Friedman p = {:.3})", r.metric, r.tables.len(), r.friedman_p);
    let fig = CdFigure::new(r.rows.clone(), r.average_ranks.clone(), r.critical_difference, o.string("title", &default_title)?)
        .map_err(|e| Error::arg(format!("{op}: {e}")))?;
    let rows = r.rows.len().div_ceil(2);
    let size = (o.count("width", 900)? as u32, o.count("height", (140 + 30 * rows).max(260))? as u32);
    plot::save(&fig, Path::new(path), size)?;
    Ok(path.to_string())
}

fn plot_bars(df: &DataFrame, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_bars";
    let o = Options::new(op, opts, &["x", "y", "err", "labels", "title", "ylabel", "width", "height"])?;
    let x = o.string("x", "")?;
    if x.is_empty() {
        return Err(Error::arg(format!("{op}: name the column labelling the groups: #{{ x: \"variant\", y: [..] }}")).into());
    }
    let groups: Vec<String> = values::cells(df, &x)?.into_iter().map(|v| v.to_string()).collect();
    let ys = names(op, &o, "y", &[])?;
    if ys.is_empty() {
        return Err(Error::arg(format!("{op}: name the value columns: y: [\"acc\"]")).into());
    }
    let errs = names(op, &o, "err", &[])?;
    let labels = names(op, &o, "labels", &[])?;
    // One error column and one label per value column, or none: a shorter or longer list
    // would pair a bar with another bar's error.
    for (key, list) in [("err", &errs), ("labels", &labels)] {
        if !list.is_empty() && list.len() != ys.len() {
            return Err(Error::arg(format!(
                "{op}: {key} has {} entries for {} value columns (y: {:?}); give one per column, in y's order, or none",
                list.len(),
                ys.len(),
                ys
            ))
            .into());
        }
    }
    let mut metrics = Vec::new();
    for (j, y) in ys.iter().enumerate() {
        let err = match errs.get(j) {
            Some(name) => Some(numbers(df, name)?),
            None => None,
        };
        metrics.push((labels.get(j).cloned().unwrap_or_else(|| y.clone()), numbers(df, y)?, err));
    }
    let fig =
        BarsFigure::new(groups, metrics, o.string("title", "")?, o.string("ylabel", "")?).map_err(|e| Error::arg(format!("{op}: {e}")))?;
    plot::save(&fig, Path::new(path), size(op, &o)?)?;
    Ok(path.to_string())
}

/// The projection an embedding figure asks for: t-SNE (default, with its options) or PCA.
fn projection(op: &'static str, opts: &Map) -> RhaiResult<Projection> {
    let mut tsne_opts = opts.clone();
    for k in ["title", "width", "height", "projection", "max_points"] {
        tsne_opts.remove(k);
    }
    match opts.get("projection").map(|v| v.to_string()).as_deref() {
        None | Some("tsne") | Some("t-sne") => Ok(Projection::Tsne(super::embed::tsne_options(op, &tsne_opts)?)),
        Some("pca") => match tsne_opts.keys().next() {
            Some(k) => Err(Error::arg(format!("{op}: option {k} is a t-SNE option; projection \"pca\" takes none")).into()),
            None => Ok(Projection::Pca),
        },
        Some(other) => Err(Error::arg(format!("{op}: projection must be \"tsne\" or \"pca\", got \"{other}\"")).into()),
    }
}

fn embedding_keys() -> Vec<&'static str> {
    let mut keys = vec!["title", "width", "height", "projection", "max_points"];
    keys.extend(super::embed::TSNE_KEYS);
    keys
}

fn draw_embedding(
    op: &'static str,
    list: Vec<(String, crate::tensor::Tensor)>,
    labels: Vec<i64>,
    path: &str,
    opts: &Map,
) -> RhaiResult<String> {
    let keys = embedding_keys();
    let o = Options::new(op, opts, &keys)?;
    let panels = list.len();
    let mut fig = EmbeddingFigure::new(list, labels, &projection(op, opts)?).map_err(|e| Error::arg(format!("{op}: {e}")))?;
    if o.get("title").is_some() {
        fig.title = o.string("title", "")?;
    }
    let default = (plot::DEFAULT_SIZE.0.max(420 * panels as u32) as usize, 480usize);
    let size = (o.count("width", default.0)? as u32, o.count("height", default.1)? as u32);
    plot::save(&fig, Path::new(path), size)?;
    Ok(path.to_string())
}

fn plot_embedding(sets: &Map, labels: &ScriptTensor, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_embedding";
    let mut list = Vec::new();
    for (name, v) in sets {
        let t = v
            .clone()
            .try_cast::<ScriptTensor>()
            .ok_or_else(|| Error::arg(format!("{op}: features.{name} is a {}, not a tensor", v.type_name())))?;
        list.push((name.to_string(), t.tensor().shallow_clone()));
    }
    let labels = crate::tensor::check(op, labels.tensor().f_to_kind(crate::tensor::Kind::Int64).and_then(|l| Vec::<i64>::try_from(&l)))?;
    draw_embedding(op, list, labels, path, opts)
}

/// Fig. 4 for a model: each encoder's features on a split and their concatenation (the fused
/// feature the head reads), at most max_points of them (an even, seeded subsample).
fn plot_model_embedding(m: &ScriptModel, split: &Split, path: &str, opts: &Map) -> RhaiResult<String> {
    let op = "plot_embedding";
    let keys = embedding_keys();
    let o = Options::new(op, opts, &keys)?;
    let batching = crate::data::BatchOptions { batch_size: 256, shuffle: false, augment: false, ..Default::default() };
    let f = crate::train::inference::features(&m.0, split, &batching, None)?;
    let n = f.labels.size()[0];
    let cap = o.count("max_points", 5000)? as i64;
    let check = |t: Result<crate::tensor::Tensor, tch::TchError>| crate::tensor::check(op, t);
    let (per, labels) = if n > cap && cap > 0 {
        let mut rng = crate::rng::Rng::new(o.count("seed", 0)? as u64);
        let mut idx: Vec<i64> = (0..n).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.below(i + 1));
        }
        idx.truncate(cap as usize);
        idx.sort_unstable();
        let idx = crate::tensor::Tensor::from_slice(&idx);
        (
            f.per.iter().map(|x| check(x.f_index_select(0, &idx))).collect::<crate::error::Result<Vec<_>>>()?,
            check(f.labels.f_index_select(0, &idx))?,
        )
    } else {
        (f.per, f.labels)
    };
    // One panel per modality, then the features the head reads (all of them side by side).
    let fused = check(crate::tensor::Tensor::f_cat(&per, 1))?;
    let labels = crate::tensor::check(op, labels.f_to_kind(crate::tensor::Kind::Int64).and_then(|l| Vec::<i64>::try_from(&l)))?;
    let mut panels: Vec<(String, crate::tensor::Tensor)> = m.0.modalities.iter().cloned().zip(per).collect();
    panels.push(("fused".into(), fused));
    draw_embedding(op, panels, labels, path, opts)
}
