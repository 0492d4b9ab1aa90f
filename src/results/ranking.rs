//! Rows ranked across several tables (datasets, or modality settings): each table's rows scored
//! by one metric (averaged over a row's seeds), the rows every table has, their average ranks,
//! Friedman's test and the Nemenyi critical difference (`stats::ranks`, Demšar 2006).

use super::values::{cells, missing_column, Value};
use super::DataFrame;
use crate::error::{Error, Result};
use crate::stats::ranks;

pub struct Ranking {
    pub metric: String,
    /// The rows every table scores, in the first table's order.
    pub rows: Vec<String>,
    /// The tables' names (their `dataset` values), in order.
    pub tables: Vec<String>,
    /// scores[table][row]: the row's mean metric over its runs in that table.
    pub scores: Vec<Vec<f64>>,
    pub average_ranks: Vec<f64>,
    pub friedman_chi2: f64,
    pub friedman_p: f64,
    pub critical_difference: f64,
    pub alpha: f64,
    /// Rows some table lacks, left out of the ranking.
    pub left_out: Vec<String>,
}

/// The column a metric name means in a table: itself, else best_<m>, <m>_mean, best_<m>_mean
/// (a runs frame or a summary of one, as the table scripts write them).
pub fn metric_column(df: &DataFrame, metric: &str) -> Result<String> {
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let tried = [metric.to_string(), format!("best_{metric}"), format!("{metric}_mean"), format!("best_{metric}_mean")];
    tried.iter().find(|c| names.contains(c)).cloned().ok_or_else(|| {
        Error::arg(format!("no column for metric \"{metric}\" (tried {}); the columns are: {}", tried.join(", "), names.join(", ")))
    })
}

/// One table to rank over: its frame and, when the caller names it, its name (else the values of
/// its `block` column name its blocks).
pub struct Table {
    pub name: Option<String>,
    pub frame: DataFrame,
}

/// Ranks the rows (column `by`) of `tables` over their blocks: a named table is one block; an
/// unnamed one has a block per value of its `block` column (its dataset), and blocks named alike
/// in different tables (two settings of one dataset) are told apart by the table's position.
/// Higher scores rank first.
pub fn rank_tables(tables: &[Table], metric: &str, by: &str, block: &str, alpha: f64) -> Result<Ranking> {
    // (block, row) -> (sum, count), in first-seen order of blocks and rows.
    let mut blocks: Vec<String> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    let mut sums: std::collections::HashMap<(String, String), (f64, usize)> = std::collections::HashMap::new();
    let mut owner: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (t, table) in tables.iter().enumerate() {
        let df = &table.frame;
        let col = metric_column(df, metric)?;
        let b: Vec<String> = match &table.name {
            Some(n) => vec![n.clone(); df.height()],
            None => cells(df, block).map_err(|_| missing_column(df, block))?.iter().map(|v| v.to_string()).collect(),
        };
        // A block another table already holds: this table's is another setting of it.
        let b: Vec<String> = b
            .into_iter()
            .map(|name| match owner.get(&name) {
                Some(&o) if o != t => format!("{name} (table {})", t + 1),
                _ => {
                    owner.insert(name.clone(), t);
                    name
                }
            })
            .collect();
        let r = cells(df, by).map_err(|_| missing_column(df, by))?;
        let v = cells(df, &col)?;
        for i in 0..df.height() {
            let x = match &v[i] {
                Value::Float(x) => *x,
                Value::Int(x) => *x as f64,
                Value::Null => continue,
                other => return Err(Error::arg(format!("table {t}: column \"{col}\" holds {other}: a metric is a number"))),
            };
            let (bk, rk) = (b[i].clone(), r[i].to_string());
            if !blocks.contains(&bk) {
                blocks.push(bk.clone());
            }
            if !rows.contains(&rk) {
                rows.push(rk.clone());
            }
            let e = sums.entry((bk, rk)).or_insert((0.0, 0));
            e.0 += x;
            e.1 += 1;
        }
    }
    let (kept, left_out): (Vec<String>, Vec<String>) =
        rows.into_iter().partition(|r| blocks.iter().all(|b| sums.contains_key(&(b.clone(), r.clone()))));
    let scores: Vec<Vec<f64>> = blocks
        .iter()
        .map(|b| {
            kept.iter()
                .map(|r| {
                    let (s, n) = sums[&(b.clone(), r.clone())];
                    s / n as f64
                })
                .collect()
        })
        .collect();
    let average_ranks = ranks::average_ranks(&scores)?;
    let (friedman_chi2, friedman_p) = ranks::friedman(&scores)?;
    let critical_difference = ranks::nemenyi_cd(kept.len(), blocks.len(), alpha)?;
    Ok(Ranking {
        metric: metric.to_string(),
        rows: kept,
        tables: blocks,
        scores,
        average_ranks,
        friedman_chi2,
        friedman_p,
        critical_difference,
        alpha,
        left_out,
    })
}

impl Ranking {
    /// A markdown table (rows by average rank, a column of scores per table) and what it means.
    pub fn markdown(&self, label: &str) -> String {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by(|&a, &b| self.average_ranks[a].total_cmp(&self.average_ranks[b]));
        let mut s = format!("| {label} | average rank |");
        for t in &self.tables {
            s += &format!(" {t} |");
        }
        s += "\n|---|---:|";
        s += &"---:|".repeat(self.tables.len());
        s += "\n";
        for &i in &order {
            s += &format!("| {} | {:.2} |", self.rows[i], self.average_ranks[i]);
            for t in 0..self.tables.len() {
                s += &format!(" {:.1} |", self.scores[t][i] * 100.0);
            }
            s += "\n";
        }
        s += &format!(
            "\nRanks of {} over {} tables (1 the best; ties share their mean rank). Friedman's test that all rows rank alike: \
             χ² = {:.2}, p = {:.3} (k = {}, N = {}). Nemenyi critical difference at α = {:.2}: {:.2}; rows whose average \
             ranks differ by less are not distinguishable (Demšar 2006). Tables of one dataset's modality subsets share \
             their samples, so they are not independent (docs/statistics.md).\n",
            self.metric,
            self.tables.len(),
            self.friedman_chi2,
            self.friedman_p,
            self.rows.len(),
            self.tables.len(),
            self.alpha,
            self.critical_difference
        );
        if !self.left_out.is_empty() {
            s += &format!("Left out (not in every table): {}.\n", self.left_out.join(", "));
        }
        s
    }
}
