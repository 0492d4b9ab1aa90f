//! Queries on a frame. Expressions are SQL expressions (`test_acc * 100 AS acc`,
//! `avg(test_acc) AS mean`, `method = 'prob' AND seed < 3`), parsed by polars' SQL front-end,
//! so a researcher writes one expression language everywhere, the same one `sql` takes.

use super::polars_error;
use super::values::missing_column;
use crate::error::{Error, Result};
use polars::prelude::*;
use polars::sql::{sql_expr, SQLContext};

fn column_list(df: &DataFrame) -> String {
    df.get_column_names().iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}

/// A polars error from a query on `df`; a missing column names the columns there are.
fn query_error(op: &str, df: &DataFrame, err: PolarsError) -> Error {
    // Polars says `unable to find column "x"; valid columns: [...]`, sometimes inside context
    // layers: keep the name, and list the columns our way.
    let msg = err.to_string();
    if let Some(at) = msg.find("unable to find column") {
        let rest = &msg[at..];
        let what = rest.split([';', '\n']).next().unwrap_or(rest);
        return Error::arg(format!("{op}: {what}; the columns are: {}", column_list(df)));
    }
    polars_error(op, err)
}

/// The most terms an expression or query may join with operators. Polars' planner takes time
/// that grows faster than the expression (20,000 terms ran for minutes); a real query has tens.
pub const MAX_TERMS: usize = 1_000;
/// The deepest bracket nesting an expression may have (the SQL parser recurses per level).
pub const MAX_DEPTH: usize = 64;

/// Refuses text with more than `MAX_TERMS` operator-joined terms, before polars parses it.
fn check_size(op: &str, text: &str) -> Result<()> {
    let mut terms = 1usize;
    let mut in_string = false;
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' if !in_string => depth = depth.saturating_sub(1),
            '+' | '-' | '*' | '/' | '%' | '<' | '>' | '=' | ',' | '&' | '|' if !in_string => terms += 1,
            _ => {}
        }
    }
    if deepest > MAX_DEPTH {
        return Err(Error::arg(format!(
            "{op}: the expression nests brackets {deepest} deep, past the recursion limit of {MAX_DEPTH} gapscope reads; compute it in steps"
        )));
    }
    let words = text.split_whitespace().filter(|w| w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or")).count();
    if terms + words > MAX_TERMS {
        return Err(Error::arg(format!(
            "{op}: the expression has about {} terms, more than the {MAX_TERMS} gapscope reads (polars' planning time grows quickly with size); split it into steps, or compute it with tensors",
            terms + words
        )));
    }
    Ok(())
}

fn expr(op: &str, text: &str) -> Result<Expr> {
    check_size(op, text)?;
    sql_expr(text)
        .map_err(|e| Error::arg(format!("{op}: cannot read \"{text}\" as an expression: {}", e.to_string().lines().next().unwrap_or(""))))
}

fn check_columns(df: &DataFrame, names: &[String]) -> Result<()> {
    for n in names {
        if df.column(n).is_err() {
            return Err(missing_column(df, n));
        }
    }
    Ok(())
}

/// Columns or expressions (`"acc"`, `"acc * 100 AS pct"`).
pub fn select(df: &DataFrame, exprs: &[String]) -> Result<DataFrame> {
    let es = exprs.iter().map(|e| expr("select", e)).collect::<Result<Vec<_>>>()?;
    df.clone().lazy().select(es).collect().map_err(|e| query_error("select", df, e))
}

/// Rows where a boolean expression holds (`"acc > 0.9 AND method = 'prob'"`).
pub fn filter(df: &DataFrame, predicate: &str) -> Result<DataFrame> {
    let e = expr("filter", predicate)?;
    df.clone().lazy().filter(e).collect().map_err(|e| query_error("filter", df, e))
}

/// Sorted by columns, ascending unless `descending`; stable, nulls last.
pub fn sort(df: &DataFrame, by: &[String], descending: bool) -> Result<DataFrame> {
    check_columns(df, by)?;
    let opts = SortMultipleOptions::default().with_order_descending(descending).with_nulls_last(true).with_maintain_order(true);
    df.sort(by.iter().map(|s| s.as_str()).collect::<Vec<_>>(), opts).map_err(|e| query_error("sort", df, e))
}

/// One row per group of `by` (in order of first appearance) with aggregate expressions
/// (`"avg(acc) AS mean"`, `"stddev(acc) AS sd"`, `"count(*) AS n"`).
pub fn group_agg(df: &DataFrame, by: &[String], aggs: &[String]) -> Result<DataFrame> {
    check_columns(df, by)?;
    let es = aggs.iter().map(|e| expr("agg", e)).collect::<Result<Vec<_>>>()?;
    df.clone()
        .lazy()
        .group_by_stable(by.iter().map(|s| col(s.as_str())).collect::<Vec<_>>())
        .agg(es)
        .collect()
        .map_err(|e| query_error("agg", df, e))
}

/// Wide from long: one row per `index` group, one column per distinct value of `on` (in
/// sorted order), holding `agg` of `values` ("mean", "first", "sum", "min", "max", "count",
/// "std", "median").
pub fn pivot(df: &DataFrame, index: &[String], on: &str, values: &str, agg: &str) -> Result<DataFrame> {
    let op = "pivot";
    check_columns(df, index)?;
    check_columns(df, &[on.to_string(), values.to_string()])?;
    let v = col(values);
    let aggregated = match agg {
        "mean" => v.mean(),
        "first" => v.first(),
        "sum" => v.sum(),
        "min" => v.min(),
        "max" => v.max(),
        "count" => v.count(),
        "std" => v.std(1),
        "median" => v.median(),
        other => return Err(Error::arg(format!("{op}: unknown agg \"{other}\": use mean, first, sum, min, max, count, std or median"))),
    };
    let keys: Vec<Expr> = index.iter().map(|s| col(s.as_str())).collect();
    let mut all_keys = keys.clone();
    all_keys.push(col(on).cast(DataType::String));
    let long =
        df.clone().lazy().group_by_stable(all_keys).agg([aggregated.alias("__value")]).collect().map_err(|e| query_error(op, df, e))?;
    let on_values = long.column(on).and_then(|c| c.unique_stable()).map_err(|e| query_error(op, df, e))?;
    let mut names: Vec<String> = on_values
        .as_materialized_series()
        .iter()
        .map(|v| match v {
            AnyValue::String(s) => s.to_string(),
            AnyValue::StringOwned(s) => s.to_string(),
            other => other.to_string(),
        })
        .collect();
    names.sort();
    let mut out = df.clone().lazy().select(keys.clone()).unique_stable(None, UniqueKeepStrategy::First);
    for name in &names {
        let part = long
            .clone()
            .lazy()
            .filter(col(on).eq(lit(name.clone())))
            .select(keys.iter().cloned().chain([col("__value").alias(name.as_str())]).collect::<Vec<_>>());
        let mut args = JoinArgs::new(JoinType::Left);
        args.maintain_order = MaintainOrderJoin::Left;
        out = out.join(part, keys.clone(), keys.clone(), args);
    }
    out.collect().map_err(|e| query_error(op, df, e))
}

/// Joins on columns present in both: "inner", "left", "full" or "cross" (no keys).
/// An upper bound on a join's rows: Σ over keys of (left count × right count), plus every row
/// of both sides (the unmatched ones of a left or full join); a cross join's product.
fn joined_rows(left: &DataFrame, right: &DataFrame, keys: &[Expr], cross: bool) -> Result<u64> {
    let (l, r) = (left.height() as u64, right.height() as u64);
    if cross {
        return l.checked_mul(r).ok_or_else(|| Error::arg("join: the cross join's size overflows"));
    }
    let counts = |df: &DataFrame, name: &str| df.clone().lazy().group_by(keys).agg([len().alias(name)]);
    let matched = counts(left, "__gapscope_nl")
        .join(counts(right, "__gapscope_nr"), keys.to_vec(), keys.to_vec(), JoinArgs::new(JoinType::Inner))
        .select([(col("__gapscope_nl").cast(DataType::Float64) * col("__gapscope_nr").cast(DataType::Float64)).sum().alias("rows")])
        .collect()
        .map_err(|e| query_error("join", left, e))?;
    let pairs = matched.column("rows").ok().and_then(|c| c.f64().ok().and_then(|c| c.get(0))).unwrap_or(0.0);
    Ok((pairs.min(u64::MAX as f64) as u64).saturating_add(l).saturating_add(r))
}

pub fn join(left: &DataFrame, right: &DataFrame, on: &[String], how: &str) -> Result<DataFrame> {
    let op = "join";
    let kind = match how {
        "inner" => JoinType::Inner,
        "left" => JoinType::Left,
        "full" | "outer" => JoinType::Full,
        "cross" => JoinType::Cross,
        other => return Err(Error::arg(format!("{op}: unknown how \"{other}\": use inner, left, full or cross"))),
    };
    if !matches!(kind, JoinType::Cross) {
        if on.is_empty() {
            return Err(Error::arg(format!("{op}: name the key columns, e.g. [\"run\"]")));
        }
        check_columns(left, on).map_err(|e| Error::arg(format!("{op}: left table: {e}")))?;
        check_columns(right, on).map_err(|e| Error::arg(format!("{op}: right table: {e}")))?;
    }
    let keys: Vec<Expr> = on.iter().map(|s| col(s.as_str())).collect();
    // Keys repeated on both sides multiply: check the result's size before polars builds it (a
    // failed allocation there aborts the process).
    let rows = joined_rows(left, right, &keys, matches!(kind, JoinType::Cross))?;
    crate::limits::elements(
        &format!("{op}: the result of {rows} rows (keys repeated on both sides multiply; deduplicate or filter first)"),
        &[rows, (left.width() + right.width()).max(1) as u64],
        8,
    )?;
    let mut args = JoinArgs::new(kind);
    args.maintain_order = MaintainOrderJoin::Left;
    if matches!(args.how, JoinType::Full) {
        args = args.with_coalesce(JoinCoalesce::CoalesceColumns);
    }
    left.clone().lazy().join(right.clone().lazy(), keys.clone(), keys, args).collect().map_err(|e| query_error(op, left, e))
}

/// A SQL query over the frame, which it calls `self`.
pub fn sql(df: &DataFrame, query: &str) -> Result<DataFrame> {
    check_size("sql", query)?;
    let mut ctx = SQLContext::new();
    ctx.register("self", df.clone().lazy());
    ctx.execute(query).and_then(|lf| lf.collect()).map_err(|e| query_error("sql", df, e))
}

/// The first n rows.
pub fn head(df: &DataFrame, n: usize) -> DataFrame {
    df.head(Some(n))
}
