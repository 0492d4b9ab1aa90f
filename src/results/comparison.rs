//! A runs table compared row by row with a reference row (`stats::compare`): the runs and
//! their recorded test predictions read from frames, and the comparison written back as a frame
//! and as the markdown the table scripts print (numbers, then a legend naming the level, the
//! tests and the correction, then what could not be computed).

use super::values::{cells, frame, missing_column, Value};
use super::DataFrame;
use crate::error::{Error, Result};
use crate::stats::compare::{compare, Comparison, Decide, Needed, Options, Run, SampleTest};
use std::collections::{BTreeMap, HashMap};

/// What to compare: rows named by column `by` (each row's runs differ by `seed`), scored by the
/// column `metric`; `order` fixes the rows' order (else the order of first appearance).
pub struct Request {
    pub by: String,
    pub metric: String,
    pub order: Option<Vec<String>>,
    pub options: Options,
}

/// The recorded prediction column a metric's per-sample test reads: fused accuracy at the
/// validation-chosen epoch (pred_best) or the last (pred_last); None for other metrics (F1,
/// a modality's accuracy), which are compared over seeds alone.
pub fn prediction_column(metric: &str) -> Option<&'static str> {
    match metric {
        "best_acc" => Some("pred_best"),
        "last_acc" => Some("pred_last"),
        _ => None,
    }
}

/// Compares the runs of `runs` (one row per run: `by`, seed, the metric and, to find the run's
/// predictions, run) using the records' predictions when given (`runs(dir, "predictions")`).
pub fn compare_runs(runs: &DataFrame, predictions: Option<&DataFrame>, req: &Request) -> Result<Comparison> {
    let rows = strings(runs, &req.by)?;
    let seeds = cells(runs, "seed")?;
    let scores = cells(runs, &req.metric)?;
    let column = prediction_column(&req.metric);
    let correct = match (predictions, column) {
        (Some(p), Some(col)) => Some(correctness(p, col)?),
        _ => None,
    };
    let run_names = if correct.is_some() { Some(strings(runs, "run")?) } else { None };
    let mut out = Vec::new();
    for i in 0..runs.height() {
        let seed = match &seeds[i] {
            Value::Int(s) => *s,
            other => return Err(Error::arg(format!("compare: column \"seed\" holds {other} at row {i}: each run needs an integer seed"))),
        };
        let score = match &scores[i] {
            Value::Float(x) => *x,
            Value::Int(x) => *x as f64,
            // A run that did not record the metric (an older record, a recipe without val).
            Value::Null => continue,
            other => return Err(Error::arg(format!("compare: column \"{}\" holds {other}: a metric is a number", req.metric))),
        };
        let correct = match (&correct, &run_names) {
            (Some(c), Some(names)) => c.get(&names[i]).cloned(),
            _ => None,
        };
        out.push(Run { row: rows[i].clone(), seed, score, correct });
    }
    let order = match &req.order {
        Some(o) => o.clone(),
        None => {
            let mut seen: Vec<String> = Vec::new();
            for r in &rows {
                if !seen.contains(r) {
                    seen.push(r.clone());
                }
            }
            seen
        }
    };
    compare(&out, &order, &req.options)
}

fn strings(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    Ok(cells(df, name)?.into_iter().map(|v| if let Value::Str(s) = v { s } else { v.to_string() }).collect())
}

/// Per run, each test sample's correctness under the prediction column `col`.
fn correctness(p: &DataFrame, col: &str) -> Result<HashMap<String, BTreeMap<i64, bool>>> {
    if p.column(col).is_err() {
        // Records of runs without a validation split have no pred_best: nothing to pool.
        return Ok(HashMap::new());
    }
    let runs = strings(p, "run")?;
    let (index, label, pred) = (cells(p, "index")?, cells(p, "label")?, cells(p, col).map_err(|_| missing_column(p, col))?);
    let mut out: HashMap<String, BTreeMap<i64, bool>> = HashMap::new();
    for i in 0..p.height() {
        let (Value::Int(ix), Value::Int(y), Value::Int(yhat)) = (&index[i], &label[i], &pred[i]) else { continue };
        out.entry(runs[i].clone()).or_default().insert(*ix, y == yhat);
    }
    Ok(out)
}

/// The comparison as a frame: one row per table row (the reference first).
pub fn comparison_frame(c: &Comparison, by: &str) -> Result<DataFrame> {
    let f = |x: Option<f64>| x.map_or(Value::Null, Value::Float);
    let i = |x: Option<u64>| x.map_or(Value::Null, |v| Value::Int(v as i64));
    let mut cols: Vec<(String, Vec<Value>)> = [
        by,
        "seeds",
        "mean",
        "diff",
        "diff_low",
        "diff_high",
        "p_seeds",
        "p_seeds_holm",
        "row_only",
        "reference_only",
        "sample_diff",
        "p_samples",
        "p_samples_holm",
        "mark",
        "seeds_needed",
        "note",
    ]
    .iter()
    .map(|n| (n.to_string(), Vec::new()))
    .collect();
    for r in &c.rows {
        let s = r.over_seeds.as_ref();
        let t = r.over_samples.as_ref();
        let row = [
            Value::Str(r.row.clone()),
            Value::Int(r.seeds as i64),
            Value::Float(r.mean_score),
            f(s.map(|p| p.mean)),
            f(s.map(|p| p.low)),
            f(s.map(|p| p.high)),
            f(s.map(|p| p.p).filter(|p| !p.is_nan())),
            f(r.p_seeds_holm),
            i(t.map(|t| t.row_only)),
            i(t.map(|t| t.reference_only)),
            f(t.map(|t| t.diff)),
            f(t.map(|t| t.p)),
            f(r.p_samples_holm),
            Value::Str(r.mark.label().into()),
            match r.seeds_needed {
                Some(Needed::Seeds(n)) => Value::Str(n.to_string()),
                Some(Needed::MoreThan(n)) => Value::Str(format!("> {n}")),
                None => Value::Null,
            },
            Value::Str(r.notes.join("; ")),
        ];
        for (col, v) in cols.iter_mut().zip(row) {
            col.1.push(v);
        }
    }
    frame(cols)
}

/// Percentage points with a sign: "+2.3".
fn points(x: f64) -> String {
    format!("{:+.1}", x * 100.0)
}

fn p_value(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

/// The comparison as a markdown table followed by its legend (`legend`).
pub fn markdown(c: &Comparison, label: &str, metric: &str, metric_name: &str) -> String {
    let sample_name = match c.options.sample_test {
        SampleTest::McNemar => "McNemar",
        SampleTest::Bootstrap { .. } => "bootstrap",
    };
    let pct = (c.options.level * 100.0).round();
    let mut s = format!(
        "| {label} | {metric_name} | − {} ({pct}% CI), points | p seeds (Holm) | right only: row / {} | p {sample_name} (Holm) | mark | seeds needed |\n|---|---:|---:|---:|---:|---:|---|---:|\n",
        c.options.against, c.options.against
    );
    for r in &c.rows {
        let diff = match &r.over_seeds {
            Some(p) => format!("{} [{}, {}]", points(p.mean), points(p.low), points(p.high)),
            None if r.mark == crate::stats::compare::Mark::Reference => String::new(),
            None => "–".into(),
        };
        let discordant = r.over_samples.as_ref().map_or("–".into(), |t| format!("{} / {}", t.row_only, t.reference_only));
        let needed = match r.seeds_needed {
            Some(Needed::Seeds(n)) => n.to_string(),
            Some(Needed::MoreThan(n)) => format!("> {n}"),
            None => String::new(),
        };
        if r.mark == crate::stats::compare::Mark::Reference {
            s += &format!("| {} | {:.1} | | | | | reference | |\n", r.row, r.mean_score * 100.0);
        } else {
            s += &format!(
                "| {} | {:.1} | {diff} | {} | {discordant} | {} | {} | {needed} |\n",
                r.row,
                r.mean_score * 100.0,
                p_value(r.p_seeds_holm),
                p_value(r.p_samples_holm),
                r.mark.label()
            );
        }
    }
    s + "\n" + legend(c, metric, metric_name).as_str()
}

/// What the table's columns and marks mean: the level, the tests, the correction, and each row's
/// notes (what could not be computed).
pub fn legend(c: &Comparison, metric: &str, metric_name: &str) -> String {
    let o = &c.options;
    let alpha = c.alpha();
    let pct = (o.level * 100.0).round();
    let m = c.comparisons.max(1);
    let samples = match o.sample_test {
        SampleTest::McNemar => "McNemar's exact test on per-sample correctness, the discordant samples of every shared seed pooled".to_string(),
        SampleTest::Bootstrap { resamples, seed } => format!(
            "the paired bootstrap of the accuracy difference over the shared seeds' pooled test samples ({resamples} resamples, seed {seed})"
        ),
    };
    let rule = match o.decide {
        Decide::Both => "better / worse: both tests reject at that level after Holm, in the same direction; otherwise not distinguishable",
        Decide::Seeds => "better / worse: the paired t test over seeds rejects at that level after Holm; otherwise not distinguishable",
        Decide::Samples => "better / worse: the test over samples rejects at that level after Holm; otherwise not distinguishable",
    };
    let mut s = format!(
        "Each row against {against} on {metric_name}: the mean paired difference over seeds with its {pct}% Student t interval \
         (paired t test, scipy's ttest_rel); {samples}. Level α = {alpha:.2}; each test's p-values corrected across the {m} \
         compared rows with Holm's step-down method. {rule}. Seeds needed: the fewest seeds for {power}% power of the \
         two-sided paired t test at α/{m} (Holm's strictest step) with the observed mean and spread of the per-seed \
         differences, a planning figure (docs/statistics.md).\n",
        against = o.against,
        power = (o.power * 100.0).round(),
    );
    if prediction_column(metric).is_none() {
        s += "The test over samples applies to fused accuracy; this metric is compared over seeds alone.\n";
    }
    for r in c.rows.iter().filter(|r| !r.notes.is_empty()) {
        s += &format!("- {}: {}\n", r.row, r.notes.join("; "));
    }
    s
}
