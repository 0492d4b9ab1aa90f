//! A table's rows against a reference row (concat, in the field's tables): for each row, the
//! mean paired difference over seeds with its Student t interval, a paired test on per-sample
//! correctness pooled over the seeds' test samples (McNemar's exact test on the summed discordant
//! counts, or the paired bootstrap), Holm's correction across the rows for each test, a mark
//! (better, worse, not distinguishable) and, where a row is not distinguishable, the seeds the
//! observed difference would need. docs/statistics.md says what each part assumes.

use super::{bootstrap, holm, mcnemar, paired, power};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// One run of one row: its score (accuracy, F1, ...) and, when its record keeps them, the
/// correctness of each test sample, keyed by the sample's dataset index.
#[derive(Clone, Debug)]
pub struct Run {
    pub row: String,
    pub seed: i64,
    pub score: f64,
    pub correct: Option<BTreeMap<i64, bool>>,
}

/// The paired test on per-sample correctness.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleTest {
    McNemar,
    Bootstrap { resamples: usize, seed: u64 },
}

/// Which tests a mark needs: both must reject (the default), or one alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decide {
    Both,
    Seeds,
    Samples,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub against: String,
    /// Confidence of the intervals; the tests reject at α = 1 − level.
    pub level: f64,
    /// The power "seeds needed" aims for.
    pub power: f64,
    pub sample_test: SampleTest,
    pub decide: Decide,
    /// The most seeds "seeds needed" reports; beyond it, "more than".
    pub most_seeds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            against: "concat".into(),
            level: 0.95,
            power: 0.8,
            sample_test: SampleTest::McNemar,
            decide: Decide::Both,
            most_seeds: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mark {
    Reference,
    Better,
    Worse,
    NotDistinguishable,
    /// Neither test could be computed (one seed and no recorded predictions).
    Untested,
}

impl Mark {
    pub fn label(&self) -> &'static str {
        match self {
            Mark::Reference => "reference",
            Mark::Better => "better",
            Mark::Worse => "worse",
            Mark::NotDistinguishable => "not distinguishable",
            Mark::Untested => "not tested",
        }
    }
}

/// The pooled test on per-sample correctness: `row_only` samples the row gets right and the
/// reference wrong, `reference_only` the reverse, over `samples` paired samples of all seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleResult {
    pub samples: usize,
    pub row_only: u64,
    pub reference_only: u64,
    /// The row's accuracy minus the reference's on the pooled samples.
    pub diff: f64,
    pub p: f64,
    /// The bootstrap's percentile interval (McNemar's test has none).
    pub interval: Option<(f64, f64)>,
}

/// How many seeds would tell the observed difference apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Needed {
    Seeds(usize),
    MoreThan(usize),
}

#[derive(Clone, Debug)]
pub struct RowComparison {
    pub row: String,
    /// Seeds the row and the reference share (the pairs).
    pub seeds: usize,
    pub mean_score: f64,
    pub over_seeds: Option<paired::Paired>,
    pub over_samples: Option<SampleResult>,
    pub p_seeds_holm: Option<f64>,
    pub p_samples_holm: Option<f64>,
    pub mark: Mark,
    pub seeds_needed: Option<Needed>,
    /// What could not be computed, and why.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Comparison {
    pub options: Options,
    /// The reference first, then the other rows in the order given.
    pub rows: Vec<RowComparison>,
    /// The rows compared with the reference (Holm's m, at most).
    pub comparisons: usize,
}

impl Comparison {
    pub fn alpha(&self) -> f64 {
        1.0 - self.options.level
    }
}

/// Compares every row of `order` but the reference with the reference. Rows pair by seed; a
/// row's per-sample test needs predictions for every shared seed, on the same test samples.
pub fn compare(runs: &[Run], order: &[String], options: &Options) -> Result<Comparison> {
    let o = options;
    if !(o.level > 0.0 && o.level < 1.0) {
        return Err(Error::arg(format!("a confidence level is in (0, 1), got {}", o.level)));
    }
    if !(o.power > 0.0 && o.power < 1.0) {
        return Err(Error::arg(format!("power is in (0, 1), got {}", o.power)));
    }
    let of_row = |name: &str| -> BTreeMap<i64, &Run> { runs.iter().filter(|r| r.row == name).map(|r| (r.seed, r)).collect() };
    let reference = of_row(&o.against);
    if reference.is_empty() {
        return Err(Error::arg(format!("the reference row \"{}\" has no runs; the rows are: {}", o.against, order.join(", "))));
    }
    let alpha = 1.0 - o.level;
    let mut rows = vec![RowComparison {
        row: o.against.clone(),
        seeds: reference.len(),
        mean_score: mean(reference.values().map(|r| r.score)),
        over_seeds: None,
        over_samples: None,
        p_seeds_holm: None,
        p_samples_holm: None,
        mark: Mark::Reference,
        seeds_needed: None,
        notes: Vec::new(),
    }];
    for name in order.iter().filter(|n| **n != o.against) {
        let mine = of_row(name);
        if mine.is_empty() {
            // A row with no runs (all failed, or none with the metric) has nothing to compare.
            continue;
        }
        let shared: Vec<i64> = mine.keys().filter(|s| reference.contains_key(s)).copied().collect();
        let mut notes = Vec::new();
        let over_seeds = if shared.len() >= 2 {
            let d: Vec<f64> = shared.iter().map(|s| mine[s].score - reference[s].score).collect();
            let mut p = paired::paired(&d, o.level)?;
            // Accuracies are multiples of 1/n: differences equal in every seed come out unequal
            // only by rounding (1e-17), which would make t enormous. They do not vary.
            if p.sd <= 1e-12 * (1.0 + p.mean.abs()) {
                p = paired::Paired { sd: 0.0, low: p.mean, high: p.mean, t: f64::NAN, p: f64::NAN, ..p };
            }
            Some(p)
        } else {
            notes.push(format!("{} shared seed(s): no interval over seeds (it needs two)", shared.len()));
            None
        };
        if over_seeds.as_ref().is_some_and(|p| p.p.is_nan()) {
            notes.push("the per-seed differences do not vary: the t test is undefined".into());
        }
        let over_samples = if shared.is_empty() { None } else { sample_test(&shared, &mine, &reference, o, &mut notes)? };
        rows.push(RowComparison {
            row: name.clone(),
            seeds: shared.len(),
            mean_score: mean(mine.values().map(|r| r.score)),
            over_seeds,
            over_samples,
            p_seeds_holm: None,
            p_samples_holm: None,
            mark: Mark::Untested,
            seeds_needed: None,
            notes,
        });
    }
    // Holm across the compared rows, one family per test.
    let seeds_p: Vec<f64> = rows[1..].iter().map(|r| r.over_seeds.as_ref().map_or(f64::NAN, |p| p.p)).collect();
    let samples_p: Vec<f64> = rows[1..].iter().map(|r| r.over_samples.as_ref().map_or(f64::NAN, |s| s.p)).collect();
    let (seeds_adj, samples_adj) = (holm::adjust(&seeds_p), holm::adjust(&samples_p));
    let comparisons = rows.len() - 1;
    for (i, r) in rows[1..].iter_mut().enumerate() {
        r.p_seeds_holm = Some(seeds_adj[i]).filter(|p| !p.is_nan());
        r.p_samples_holm = Some(samples_adj[i]).filter(|p| !p.is_nan());
        let by_seeds = r.p_seeds_holm.map(|p| verdict(p, alpha, r.over_seeds.as_ref().map_or(0.0, |s| s.mean)));
        let by_samples = r.p_samples_holm.map(|p| verdict(p, alpha, r.over_samples.as_ref().map_or(0.0, |s| s.diff)));
        r.mark = match (o.decide, by_seeds, by_samples) {
            (Decide::Both, Some(a), Some(b)) => {
                if a == b {
                    a
                } else {
                    Mark::NotDistinguishable
                }
            }
            (Decide::Both, Some(a), None) | (Decide::Seeds, Some(a), _) => a,
            (Decide::Both, None, Some(b)) | (Decide::Samples, _, Some(b)) => b,
            _ => Mark::Untested,
        };
        if o.decide == Decide::Both && (by_seeds.is_none() || by_samples.is_none()) && r.mark != Mark::Untested {
            let alone = if by_seeds.is_some() { "the seeds' test" } else { "the samples' test" };
            r.notes.push(format!("marked by {alone} alone"));
        }
        if r.mark == Mark::NotDistinguishable {
            // At α/m, Holm's strictest threshold, so the number holds whatever the other rows do.
            r.seeds_needed = r.over_seeds.as_ref().and_then(|p| {
                let strictest = alpha / comparisons as f64;
                match power::seeds_needed(p.mean, p.sd, strictest, o.power, o.most_seeds) {
                    Some(n) => Some(Needed::Seeds(n)),
                    None if p.mean != 0.0 && p.sd > 0.0 => Some(Needed::MoreThan(o.most_seeds)),
                    None => None,
                }
            });
        }
    }
    Ok(Comparison { options: o.clone(), rows, comparisons })
}

fn verdict(p: f64, alpha: f64, diff: f64) -> Mark {
    if p <= alpha && diff > 0.0 {
        Mark::Better
    } else if p <= alpha && diff < 0.0 {
        Mark::Worse
    } else {
        Mark::NotDistinguishable
    }
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    s / n as f64
}

/// The per-sample test pooled over the shared seeds, or None (with a note) when a run lacks
/// predictions or the two rows were scored on different samples.
fn sample_test(
    shared: &[i64],
    mine: &BTreeMap<i64, &Run>,
    reference: &BTreeMap<i64, &Run>,
    o: &Options,
    notes: &mut Vec<String>,
) -> Result<Option<SampleResult>> {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for s in shared {
        let (Some(a), Some(b)) = (&mine[s].correct, &reference[s].correct) else {
            notes.push(format!("seed {s}: a record without per-sample predictions (recorded before they were kept): no test over samples"));
            return Ok(None);
        };
        if a.len() != b.len() || a.keys().zip(b.keys()).any(|(x, y)| x != y) {
            notes.push(format!("seed {s}: the rows were scored on different test samples: no test over samples"));
            return Ok(None);
        }
        first.extend(a.values());
        second.extend(b.values());
    }
    let (row_only, reference_only) = mcnemar::discordant(&first, &second);
    let samples = first.len();
    let diff = (row_only as f64 - reference_only as f64) / samples as f64;
    Ok(Some(match o.sample_test {
        SampleTest::McNemar => {
            SampleResult { samples, row_only, reference_only, diff, p: mcnemar::exact(row_only, reference_only), interval: None }
        }
        SampleTest::Bootstrap { resamples, seed } => {
            let b = bootstrap::paired_accuracy(&first, &second, o.level, resamples, seed)?;
            SampleResult { samples, row_only, reference_only, diff, p: b.p, interval: Some((b.low, b.high)) }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(row: &str, seed: i64, score: f64, correct: Option<&[bool]>) -> Run {
        Run { row: row.into(), seed, score, correct: correct.map(|c| c.iter().enumerate().map(|(i, &x)| (i as i64, x)).collect()) }
    }

    #[test]
    fn a_large_consistent_gain_is_better_and_a_noisy_one_is_not() {
        let right: Vec<bool> = (0..200).map(|i| i % 10 != 0).collect();
        let ref_right: Vec<bool> = (0..200).map(|i| i % 3 != 0).collect();
        let runs = vec![
            run("concat", 0, 0.66, Some(&ref_right)),
            run("concat", 1, 0.67, Some(&ref_right)),
            run("concat", 2, 0.65, Some(&ref_right)),
            run("good", 0, 0.90, Some(&right)),
            run("good", 1, 0.93, Some(&right)),
            run("good", 2, 0.89, Some(&right)),
            run("noisy", 0, 0.70, Some(&ref_right)),
            run("noisy", 1, 0.60, Some(&ref_right)),
            run("noisy", 2, 0.69, Some(&ref_right)),
        ];
        let order: Vec<String> = ["concat", "good", "noisy"].map(String::from).to_vec();
        let c = compare(&runs, &order, &Options::default()).unwrap();
        assert_eq!(c.rows[0].mark, Mark::Reference);
        assert_eq!(c.rows[1].mark, Mark::Better, "{:?}", c.rows[1]);
        assert_eq!(c.rows[2].mark, Mark::NotDistinguishable);
        // Identical predictions: nothing discordant, p = 1.
        assert_eq!(c.rows[2].over_samples.as_ref().unwrap().p, 1.0);
        assert!(c.rows[2].seeds_needed.is_some());
        assert!(c.rows[1].seeds_needed.is_none());
        // Holm over two rows doubles the smaller p-value.
        let good = c.rows[1].over_seeds.as_ref().unwrap().p;
        let noisy = c.rows[2].over_seeds.as_ref().unwrap().p;
        let (lo, hi) = if good < noisy { (1, 2) } else { (2, 1) };
        let (p_lo, p_hi) = (good.min(noisy), good.max(noisy));
        assert!((c.rows[lo].p_seeds_holm.unwrap() - (2.0 * p_lo).min(1.0)).abs() < 1e-12);
        assert!((c.rows[hi].p_seeds_holm.unwrap() - p_hi.max((2.0 * p_lo).min(1.0))).abs() < 1e-12);
    }

    #[test]
    fn pooled_mcnemar_sums_the_seeds_discordant_counts() {
        let a = [true, true, false, true];
        let b = [false, true, true, false];
        let runs = vec![
            run("concat", 0, 0.5, Some(&b)),
            run("concat", 1, 0.5, Some(&b)),
            run("x", 0, 0.75, Some(&a)),
            run("x", 1, 0.75, Some(&a)),
        ];
        let order: Vec<String> = ["concat", "x"].map(String::from).to_vec();
        let c = compare(&runs, &order, &Options::default()).unwrap();
        let s = c.rows[1].over_samples.as_ref().unwrap();
        assert_eq!((s.row_only, s.reference_only, s.samples), (4, 2, 8));
        assert!((s.p - mcnemar::exact(4, 2)).abs() < 1e-15);
        // The per-seed differences do not vary: the t test is undefined and says so.
        assert!(c.rows[1].notes.iter().any(|n| n.contains("do not vary")));
    }

    #[test]
    fn differences_equal_but_for_rounding_do_not_vary() {
        // 0.9133 − 0.91 and 0.8033 − 0.80 differ in the 17th digit: the same 1/300 each seed.
        let runs = vec![
            run("concat", 0, 0.91, None),
            run("concat", 1, 0.80, None),
            run("concat", 2, 0.6, None),
            run("x", 0, 0.91 + 1.0 / 300.0, None),
            run("x", 1, 0.80 + 1.0 / 300.0, None),
            run("x", 2, 0.6 + 1.0 / 300.0, None),
        ];
        let order: Vec<String> = ["concat", "x"].map(String::from).to_vec();
        let c = compare(&runs, &order, &Options::default()).unwrap();
        let p = c.rows[1].over_seeds.as_ref().unwrap();
        assert!(p.p.is_nan() && p.sd == 0.0 && c.rows[1].p_seeds_holm.is_none(), "{p:?}");
        assert_eq!(c.rows[1].mark, Mark::Untested);
        assert!(c.rows[1].seeds_needed.is_none());
    }

    #[test]
    fn a_record_without_predictions_says_what_it_cannot_compute() {
        let runs = vec![run("concat", 0, 0.5, None), run("concat", 1, 0.6, None), run("x", 0, 0.7, None), run("x", 1, 0.75, None)];
        let order: Vec<String> = ["concat", "x"].map(String::from).to_vec();
        let c = compare(&runs, &order, &Options::default()).unwrap();
        assert!(c.rows[1].over_samples.is_none());
        assert!(c.rows[1].notes.iter().any(|n| n.contains("without per-sample predictions")), "{:?}", c.rows[1].notes);
        assert!(c.rows[1].notes.iter().any(|n| n.contains("seeds' test alone")));
        assert!(compare(&runs, &order, &Options { against: "nope".into(), ..Options::default() }).is_err());
    }
}
