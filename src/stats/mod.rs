//! Statistics for comparing runs: whether a difference between two rows of a table is real.
//! Each concept in its own file, every one checked against scipy.stats on committed fixtures
//! (tests/statistics.rs, tests/fixtures/gen_stats.py). The distributions come from statrs.
//!
//! - `paired`: the mean paired difference over seeds, its Student t interval and test
//! - `mcnemar`: McNemar's exact test on paired per-sample correctness
//! - `bootstrap`: the paired bootstrap of an accuracy difference over test samples
//! - `holm`: Holm's step-down correction over several comparisons
//! - `power`: the seeds a paired t test needs to tell a difference apart (noncentral t)
//! - `ranks`: average ranks over datasets, Friedman's test, the Nemenyi critical difference
//! - `compare`: a table's rows against a reference row, with all of the above

pub mod bootstrap;
pub mod compare;
pub mod holm;
pub mod mcnemar;
pub mod paired;
pub mod power;
pub mod ranks;
