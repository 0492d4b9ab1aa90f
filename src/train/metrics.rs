//! Classification metrics from predicted and true labels: accuracy, macro-F1 (over the classes
//! present in either, as sklearn's f1_score(average="macro") with zero_division 0), and
//! per-class accuracy (recall).

#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Per class: correct / support (NaN for classes with no samples).
    pub per_class: Vec<f64>,
}

pub fn scores(pred: &[i64], truth: &[i64], classes: usize) -> Scores {
    let mut tp = vec![0usize; classes];
    let mut predicted = vec![0usize; classes];
    let mut support = vec![0usize; classes];
    for (&p, &t) in pred.iter().zip(truth) {
        let (p, t) = (p as usize, t as usize);
        if p < classes {
            predicted[p] += 1;
        }
        if t < classes {
            support[t] += 1;
            if p == t {
                tp[t] += 1;
            }
        }
    }
    let n = truth.len().max(1);
    let accuracy = tp.iter().sum::<usize>() as f64 / n as f64;
    let present: Vec<usize> = (0..classes).filter(|&c| support[c] > 0 || predicted[c] > 0).collect();
    let f1 = |c: usize| {
        let denom = support[c] + predicted[c];
        if denom == 0 {
            0.0
        } else {
            2.0 * tp[c] as f64 / denom as f64
        }
    };
    let macro_f1 = if present.is_empty() { 0.0 } else { present.iter().map(|&c| f1(c)).sum::<f64>() / present.len() as f64 };
    let per_class = (0..classes).map(|c| if support[c] == 0 { f64::NAN } else { tp[c] as f64 / support[c] as f64 }).collect();
    Scores { accuracy, macro_f1, per_class }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_hand_computed_sklearn_values() {
        // sklearn: accuracy_score = 4/6; f1_score(average="macro") = mean(0.8, 0.5, 2/3).
        let truth = [0, 0, 1, 1, 2, 2];
        let pred = [0, 0, 1, 0, 2, 1];
        let s = scores(&pred, &truth, 3);
        assert!((s.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((s.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(s.per_class, vec![1.0, 0.5, 0.5]);
        // A class absent from both truth and predictions does not count in the macro average.
        assert!((scores(&pred, &truth, 4).macro_f1 - s.macro_f1).abs() < 1e-12);
    }
}
