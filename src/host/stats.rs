//! Statistics on tables in Rhai: `compare` (a runs table's rows against a reference row, with
//! intervals, paired tests, Holm and the seeds a claim needs) and `ranks` (average ranks across
//! tables, Friedman, the Nemenyi critical difference). The work is in `crate::results::comparison`,
//! `crate::results::ranking` and `crate::stats`.

use super::convert::type_label;
use super::frame::ScriptFrame;
use super::options::Options;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::results::comparison::{self, Request};
use crate::results::ranking::{rank_tables, Ranking, Table};
use crate::results::DataFrame;
use crate::stats::compare::{Decide, Options as CompareOptions, SampleTest};
use rhai::{Array, Dynamic, Engine, Map};
use std::rc::Rc;

/// The tables to rank over: an array of frames, a map name -> frame (the name is the table's
/// block), or one frame (its blocks from the block column).
pub fn tables_of(op: &str, tables: &Dynamic) -> RhaiResult<Vec<Table>> {
    let frame_of = |what: String, t: &Dynamic| -> RhaiResult<DataFrame> {
        t.read_lock::<ScriptFrame>()
            .map(|f| (*f.0).clone())
            .ok_or_else(|| Error::arg(format!("{op}: {what} is a {}, not a DataFrame (runs(dir) or a summary)", type_label(t))).into())
    };
    if tables.read_lock::<ScriptFrame>().is_some() {
        return Ok(vec![Table { name: None, frame: frame_of("tables".into(), tables)? }]);
    }
    if let Some(map) = tables.read_lock::<Map>() {
        return map.iter().map(|(k, t)| Ok(Table { name: Some(k.to_string()), frame: frame_of(format!("tables.{k}"), t)? })).collect();
    }
    let arr = tables.read_lock::<Array>().ok_or_else(|| {
        Error::arg(format!(
            "{op}: tables must be an array of DataFrames, a map name -> DataFrame, or one DataFrame; found {}",
            type_label(tables)
        ))
    })?;
    arr.iter().enumerate().map(|(i, t)| Ok(Table { name: None, frame: frame_of(format!("tables[{i}]"), t)? })).collect()
}

/// The significance level from opts.level (a confidence, 0.95 by default).
fn level(o: &Options) -> RhaiResult<f64> {
    let l = o.float("level", 0.95)?;
    if !(l > 0.5 && l < 1.0) {
        return Err(Error::arg(format!("{}: level is a confidence in (0.5, 1), such as 0.95; got {l}", o.op())).into());
    }
    Ok(l)
}

/// `ranks(tables, opts)` and `plot_cd` share this reading of their options.
pub fn ranking(op: &'static str, tables: &Dynamic, opts: &Map, extra: &[&str]) -> RhaiResult<Ranking> {
    let mut known = vec!["metric", "by", "block", "level"];
    known.extend_from_slice(extra);
    let o = Options::new(op, opts, &known)?;
    let metric = o.string("metric", "acc")?;
    let by = o.string("by", "variant")?;
    let block = o.string("block", "dataset")?;
    let alpha = 1.0 - level(&o)?;
    Ok(rank_tables(&tables_of(op, tables)?, &metric, &by, &block, alpha).map_err(|e| Error::arg(format!("{op}: {e}")))?)
}

fn ranking_map(r: Ranking) -> RhaiResult<Map> {
    let mut m = Map::new();
    let label = "variant";
    m.insert("markdown".into(), r.markdown(label).into());
    m.insert("rows".into(), r.rows.iter().map(|x| Dynamic::from(x.clone())).collect::<Array>().into());
    m.insert("tables".into(), r.tables.iter().map(|x| Dynamic::from(x.clone())).collect::<Array>().into());
    m.insert("average_ranks".into(), r.average_ranks.iter().map(|&x| Dynamic::from(x)).collect::<Array>().into());
    m.insert("friedman".into(), Dynamic::from(r.friedman_chi2));
    m.insert("friedman_p".into(), Dynamic::from(r.friedman_p));
    m.insert("cd".into(), Dynamic::from(r.critical_difference));
    m.insert("left_out".into(), r.left_out.iter().map(|x| Dynamic::from(x.clone())).collect::<Array>().into());
    Ok(m)
}

fn compare(df: &ScriptFrame, opts: &Map) -> RhaiResult<Map> {
    let op = "compare";
    let o = Options::new(
        op,
        opts,
        &["against", "metric", "by", "order", "level", "power", "test", "resamples", "bootstrap_seed", "decide", "predictions", "name"],
    )?;
    let sample_test = match o.string("test", "mcnemar")?.as_str() {
        "mcnemar" => SampleTest::McNemar,
        "bootstrap" => {
            // Each resample is a pass over every pooled sample and a stored difference.
            let resamples = o.count("resamples", 10_000)?;
            if resamples > 1_000_000 {
                return Err(Error::arg(format!(
                    "{op}: resamples is at most 1000000 (10000 gives the interval to about 0.001), got {resamples}"
                ))
                .into());
            }
            SampleTest::Bootstrap { resamples, seed: o.count("bootstrap_seed", 0)? as u64 }
        }
        other => return Err(Error::arg(format!("{op}: test \"{other}\" is not one: use \"mcnemar\" or \"bootstrap\"")).into()),
    };
    let decide = match o.string("decide", "both")?.as_str() {
        "both" => Decide::Both,
        "seeds" => Decide::Seeds,
        "samples" => Decide::Samples,
        other => return Err(Error::arg(format!("{op}: decide \"{other}\" is not one: use \"both\", \"seeds\" or \"samples\"")).into()),
    };
    let power = o.float("power", 0.8)?;
    let order = match o.get("order") {
        None => None,
        Some(v) => Some(
            v.read_lock::<Array>()
                .ok_or_else(|| Error::arg(format!("{op}: order is an array of row names, found {}", type_label(v))))?
                .iter()
                .map(|x| x.to_string())
                .collect(),
        ),
    };
    let predictions = match o.get("predictions").filter(|v| !v.is_unit()) {
        None => None,
        Some(v) => Some(
            v.read_lock::<ScriptFrame>()
                .ok_or_else(|| {
                    Error::arg(format!("{op}: predictions is a DataFrame (runs(dir, \"predictions\")), found {}", type_label(v)))
                })?
                .0
                .clone(),
        ),
    };
    let metric = o.string("metric", "best_acc")?;
    let by = o.string("by", "variant")?;
    let req = Request {
        by: by.clone(),
        metric: metric.clone(),
        order,
        options: CompareOptions {
            against: o.string("against", "concat")?,
            level: level(&o)?,
            power,
            sample_test,
            decide,
            ..CompareOptions::default()
        },
    };
    let c = comparison::compare_runs(&df.0, predictions.as_deref(), &req).map_err(|e| Error::arg(format!("{op}: {e}")))?;
    let name = o.string("name", &metric)?;
    let mut m = Map::new();
    m.insert("table".into(), Dynamic::from(ScriptFrame(Rc::new(comparison::comparison_frame(&c, &by)?))));
    m.insert("markdown".into(), comparison::markdown(&c, &by, &metric, &name).into());
    m.insert("legend".into(), comparison::legend(&c, &metric, &name).into());
    Ok(m)
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    let a = "statistics";
    docs.add(a, "compare", "compare(runs_frame [, #{ against, metric, by, order, level, power, test, resamples, bootstrap_seed, decide, predictions, name }])",
        "Every row of a runs table (one row per run: by (\"variant\"), seed, the metric, and run to find its predictions) against the reference row against (\"concat\"): the mean paired difference of metric (\"best_acc\") over shared seeds with its level (0.95) Student t interval and test; with predictions (runs(dir, \"predictions\")) and a fused-accuracy metric (best_acc, last_acc), a test on per-sample correctness pooled over the seeds' test samples: test \"mcnemar\" (exact, default) or \"bootstrap\" (resamples 10000, bootstrap_seed 0); each test Holm-corrected across the rows; a mark per row (better / worse / not distinguishable; decide \"both\" tests must agree, or \"seeds\" / \"samples\" alone) and, where not distinguishable, the seeds needed for power (0.8) at α/m. Returns #{ table (a DataFrame), markdown (the table with its legend), legend }. What each test assumes: docs/statistics.md.",
        "let c = compare(runs(\"results/mfeat/table2\"), #{ predictions: runs(\"results/mfeat/table2\", \"predictions\") }); print(c.markdown);");
    engine.register_fn("compare", |df: ScriptFrame| compare(&df, &Map::new()));
    engine.register_fn("compare", |df: ScriptFrame, opts: Map| compare(&df, &opts));

    docs.add(a, "ranks", "ranks(tables [, #{ metric, by, block, level }])",
        "Rows ranked across tables (Demšar 2006): tables is an array of DataFrames (runs frames or summaries) with a row column by (\"variant\") and a block column (\"dataset\"), each table a block per dataset it holds (two tables of one dataset are two settings, told apart by position), or a map name -> DataFrame (each a block by that name, as #{ \"two views\": a, \"three views\": b }); each row's score in a block is its mean metric (\"acc\": the column acc, best_acc, acc_mean or best_acc_mean, the first present); rows some block lacks are left out. Returns #{ rows, average_ranks (1 the best), friedman (χ², with ties corrected as scipy), friedman_p, cd (the Nemenyi critical difference at 1 − level), tables, left_out, markdown }.",
        "let r = ranks([two_view, three_view], #{ metric: \"acc\" }); print(r.markdown);");
    engine.register_fn("ranks", |tables: Dynamic| ranking_map(ranking("ranks", &tables, &Map::new(), &[])?));
    engine.register_fn("ranks", |tables: Dynamic, opts: Map| ranking_map(ranking("ranks", &tables, &opts, &[])?));
}
