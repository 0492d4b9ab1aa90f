//! Tables in Rhai: the `DataFrame` type over polars, `runs(dir)`, Parquet / CSV, queries with
//! SQL expressions, and conversion to and from tensors, arrays and maps. The work is in
//! `crate::results`.

use super::options::Options;
use super::tensor::ScriptTensor;
use super::{Docs, RhaiResult};
use crate::error::Error;
use crate::results::values::{self, Value};
use crate::results::{files, query, runs, DataFrame};
use crate::tensor::{check, Kind, Tensor};
use rhai::{Array, Dynamic, Engine, Map, INT};
use std::path::Path;
use std::rc::Rc;

#[derive(Clone)]
pub struct ScriptFrame(pub Rc<DataFrame>);

/// A frame and the keys of a pending group_by (`df.group_by(["method"]).agg([...])`).
#[derive(Clone)]
pub struct ScriptGroupBy {
    frame: Rc<DataFrame>,
    keys: Vec<String>,
}

fn wrap(df: DataFrame) -> ScriptFrame {
    ScriptFrame(Rc::new(df))
}

fn value(op: &str, what: &str, v: &Dynamic) -> RhaiResult<Value> {
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::Int(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(Value::Float(f));
    }
    if v.is_string() || v.is_char() {
        return Ok(Value::Str(v.to_string()));
    }
    Err(Error::arg(format!("{op}: {what} is a {}; table cells are numbers, strings, bools or ()", v.type_name())).into())
}

fn to_dynamic(v: Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Int(i) => Dynamic::from_int(i),
        Value::Float(f) => Dynamic::from_float(f),
        Value::Str(s) => Dynamic::from(s),
    }
}

/// A tensor of rank 1 as cells (float, int or bool by its dtype).
fn tensor_cells(op: &str, name: &str, t: &Tensor) -> RhaiResult<Vec<Value>> {
    let size = t.size();
    if size.len() != 1 {
        return Err(Error::arg(format!("{op}: column \"{name}\" must be a 1-d tensor, got shape {size:?}")).into());
    }
    let cpu = check(op, t.f_to_device(tch::Device::Cpu))?;
    Ok(match cpu.kind() {
        Kind::Bool => check(op, Vec::<bool>::try_from(&cpu))?.into_iter().map(Value::Bool).collect(),
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8 => {
            check(op, cpu.f_to_kind(Kind::Int64).and_then(|c| Vec::<i64>::try_from(&c)))?.into_iter().map(Value::Int).collect()
        }
        _ => check(op, cpu.f_to_kind(Kind::Double).and_then(|c| Vec::<f64>::try_from(&c)))?.into_iter().map(Value::Float).collect(),
    })
}

fn column_cells(op: &str, name: &str, v: &Dynamic) -> RhaiResult<Vec<Value>> {
    if let Some(t) = v.clone().try_cast::<ScriptTensor>() {
        return tensor_cells(op, name, t.tensor());
    }
    if let Some(arr) = v.read_lock::<Array>() {
        return arr.iter().enumerate().map(|(i, x)| value(op, &format!("{name}[{i}]"), x)).collect();
    }
    Err(Error::arg(format!("{op}: column \"{name}\" must be an array or a 1-d tensor, found {}", v.type_name())).into())
}

/// A frame from a map of columns (arrays or 1-d tensors) or an array of row maps.
pub fn frame_from(v: &Dynamic) -> RhaiResult<ScriptFrame> {
    let op = "frame";
    if let Some(map) = v.read_lock::<Map>() {
        let cols = map.iter().map(|(k, x)| Ok((k.to_string(), column_cells(op, k, x)?))).collect::<RhaiResult<Vec<_>>>()?;
        return Ok(wrap(values::frame(cols)?));
    }
    if let Some(rows) = v.read_lock::<Array>() {
        // Columns in order of first appearance; a row without a key gives a null there.
        let mut names: Vec<String> = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let m = r.read_lock::<Map>().ok_or_else(|| Error::arg(format!("{op}: row {i} is a {}, not a map", r.type_name())))?;
            for k in m.keys() {
                if !names.iter().any(|n| n == k.as_str()) {
                    names.push(k.to_string());
                }
            }
        }
        let mut cols: Vec<(String, Vec<Value>)> = names.iter().map(|n| (n.clone(), Vec::with_capacity(rows.len()))).collect();
        for (i, r) in rows.iter().enumerate() {
            let m = r.read_lock::<Map>().expect("checked above");
            for (name, cells) in cols.iter_mut() {
                cells.push(match m.get(name.as_str()) {
                    Some(x) => value(op, &format!("row {i}.{name}"), x)?,
                    None => Value::Null,
                });
            }
        }
        return Ok(wrap(values::frame(cols)?));
    }
    Err(Error::arg(format!("{op}: expected a map of columns (#{{ acc: [..] }}) or an array of row maps, found {}", v.type_name())).into())
}

fn strings(op: &str, what: &str, v: &Dynamic) -> RhaiResult<Vec<String>> {
    if v.is_string() {
        return Ok(vec![v.to_string()]);
    }
    let arr = v
        .read_lock::<Array>()
        .ok_or_else(|| Error::arg(format!("{op}: {what} must be a string or an array of strings, found {}", v.type_name())))?;
    arr.iter()
        .map(|s| {
            if s.is_string() {
                Ok(s.to_string())
            } else {
                Err(Error::arg(format!("{op}: {what} must be strings, found a {}", s.type_name())).into())
            }
        })
        .collect()
}

fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn column_array(df: &DataFrame, name: &str) -> RhaiResult<Array> {
    Ok(values::cells(df, name)?.into_iter().map(to_dynamic).collect())
}

fn to_tensor(df: &DataFrame, names: &[String]) -> RhaiResult<ScriptTensor> {
    let m = values::matrix(df, names)?;
    let t = Tensor::from_slice(&m);
    let shape = if names.len() == 1 { vec![df.height() as i64] } else { vec![df.height() as i64, names.len() as i64] };
    Ok(ScriptTensor::new(check("to_tensor", t.f_reshape(shape))?))
}

/// How polars' warnings reach users: polars prints them raw (`Deprecation: casting ...`) from
/// deep inside a query; here they read as gapscope's other warnings, with what they mean.
pub fn polars_warning(message: &str, kind: polars::error::PolarsWarning) {
    eprintln!("{}", polars_warning_text(message, &kind));
}

/// The line `polars_warning` prints.
pub fn polars_warning_text(message: &str, kind: &polars::error::PolarsWarning) -> String {
    use polars::error::PolarsWarning;
    let what = match kind {
        PolarsWarning::Deprecation => "a table operation uses a form polars will drop (the result is still right)",
        PolarsWarning::CategoricalRemappingWarning => "categories were remapped while combining tables",
        PolarsWarning::MapWithoutReturnDtypeWarning => "a mapped column has no declared type",
        PolarsWarning::UserWarning => "from the table engine",
    };
    format!("warning: {what}: {}", message.trim().replace('\n', " "))
}

pub fn register(engine: &mut Engine, docs: &mut Docs) {
    polars::error::set_warning_function(polars_warning);
    engine.register_type_with_name::<ScriptFrame>("DataFrame");
    engine.register_type_with_name::<ScriptGroupBy>("GroupBy");
    let a = "tables";
    type F = ScriptFrame;

    docs.add(a, "frame", "frame(columns) | frame(rows)",
        "A DataFrame from a map of columns (arrays or 1-d tensors of equal length) or from an array of row maps (a missing key is a null). Each column takes the narrowest type holding its values: bool, int, float or string.",
        "let df = frame(#{ method: [\"concat\", \"prob\"], acc: [0.98, 0.97] });");
    engine.register_fn("frame", |v: Dynamic| frame_from(&v));

    docs.add(a, "runs", "runs(dir) | runs(dir, table)",
        "Every run under dir (a folder holding config.json, nested as deep as 4 levels) as one DataFrame: run (its path under dir), complete, the config flattened to columns (nested keys joined with '.'), and the final metrics. runs(dir, \"epochs\" | \"fits\" | \"samples\" | \"predictions\" | \"final\") stacks that table of every run with a run column. Unreadable files are skipped with a warning naming them.",
        "let df = runs(\"runs/table2\"); print(df.group_by(\"method\").agg(\"avg(last_acc) AS acc\"));");
    engine.register_fn("runs", |dir: &str| -> RhaiResult<F> {
        let (df, w) = runs::runs(Path::new(dir))?;
        warn_all(&w);
        Ok(wrap(df))
    });
    engine.register_fn("runs", |dir: &str, table: &str| -> RhaiResult<F> {
        let (df, w) = runs::table(Path::new(dir), table)?;
        warn_all(&w);
        Ok(wrap(df))
    });

    docs.add(
        a,
        "read_parquet",
        "read_parquet(path)",
        "Reads a Parquet file into a DataFrame.",
        "let e = read_parquet(\"runs/a/epochs.parquet\");",
    );
    engine.register_fn("read_parquet", |path: &str| -> RhaiResult<F> { Ok(wrap(files::read_parquet(Path::new(path))?)) });
    docs.add(
        a,
        "read_csv",
        "read_csv(path)",
        "Reads a CSV file with a header row into a DataFrame (types inferred).",
        "let t = read_csv(\"results/table2.csv\");",
    );
    engine.register_fn("read_csv", |path: &str| -> RhaiResult<F> { Ok(wrap(files::read_csv(Path::new(path))?)) });
    docs.add(
        a,
        "write_parquet",
        "df.write_parquet(path)",
        "Writes the frame as Parquet, atomically (a killed write leaves the old file). Returns the path.",
        "df.write_parquet(\"results/t.parquet\");",
    );
    engine.register_fn("write_parquet", |df: &mut F, path: &str| -> RhaiResult<String> {
        files::write_parquet(&df.0, Path::new(path))?;
        Ok(path.to_string())
    });
    docs.add(
        a,
        "write_csv",
        "df.write_csv(path)",
        "Writes the frame as CSV with a header row, atomically. Returns the path.",
        "df.write_csv(\"results/t.csv\");",
    );
    engine.register_fn("write_csv", |df: &mut F, path: &str| -> RhaiResult<String> {
        files::write_csv(&df.0, Path::new(path))?;
        Ok(path.to_string())
    });

    docs.add(a, "select", "df.select(exprs)",
        "Columns or SQL expressions, one string or an array: \"acc\", \"acc * 100 AS pct\", \"upper(method) AS m\". A missing column is an error listing the columns there are.",
        "df.select([\"method\", \"last_acc * 100 AS acc\"])");
    engine.register_fn("select", |df: &mut F, exprs: Dynamic| -> RhaiResult<F> {
        Ok(wrap(query::select(&df.0, &strings("select", "exprs", &exprs)?)?))
    });
    docs.add(
        a,
        "filter",
        "df.filter(predicate)",
        "Rows where a SQL boolean expression holds: \"last_acc > 0.9 AND gap = 'kl'\".",
        "df.filter(\"seed < 3\")",
    );
    engine.register_fn("filter", |df: &mut F, predicate: &str| -> RhaiResult<F> { Ok(wrap(query::filter(&df.0, predicate)?)) });
    docs.add(
        a,
        "sort",
        "df.sort(by [, #{ descending }])",
        "Sorted by a column or an array of columns (stable, nulls last); descending false by default.",
        "df.sort(\"last_acc\", #{ descending: true })",
    );
    engine.register_fn("sort", |df: &mut F, by: Dynamic| -> RhaiResult<F> {
        Ok(wrap(query::sort(&df.0, &strings("sort", "by", &by)?, false)?))
    });
    engine.register_fn("sort", |df: &mut F, by: Dynamic, opts: Map| -> RhaiResult<F> {
        let o = Options::new("sort", &opts, &["descending"])?;
        Ok(wrap(query::sort(&df.0, &strings("sort", "by", &by)?, o.boolean("descending", false)?)?))
    });
    docs.add(a, "group_by", "df.group_by(keys).agg(exprs)",
        "One row per group of the key columns (in order of first appearance) with SQL aggregate expressions: \"avg(acc) AS mean\", \"stddev(acc) AS sd\", \"count(*) AS n\", \"min(loss)\".",
        "df.group_by([\"method\"]).agg([\"avg(last_acc) AS acc\", \"stddev(last_acc) AS sd\"])");
    engine.register_fn("group_by", |df: &mut F, keys: Dynamic| -> RhaiResult<ScriptGroupBy> {
        Ok(ScriptGroupBy { frame: df.0.clone(), keys: strings("group_by", "keys", &keys)? })
    });
    docs.add(
        a,
        "agg",
        "df.group_by(keys).agg(exprs)",
        "The aggregates of a group_by, as SQL expressions (see group_by).",
        "df.group_by(\"method\").agg(\"avg(last_acc) AS acc\")",
    );
    engine.register_fn("agg", |g: &mut ScriptGroupBy, exprs: Dynamic| -> RhaiResult<F> {
        Ok(wrap(query::group_agg(&g.frame, &g.keys, &strings("agg", "exprs", &exprs)?)?))
    });
    docs.add(a, "pivot", "df.pivot(#{ index, on, values, agg })",
        "Long to wide: one row per index group, one column per distinct value of on (sorted), holding agg (\"mean\" default, \"first\", \"sum\", \"min\", \"max\", \"count\", \"std\", \"median\") of values.",
        "df.pivot(#{ index: \"method\", on: \"seed\", values: \"last_acc\" })");
    engine.register_fn("pivot", |df: &mut F, opts: Map| -> RhaiResult<F> {
        let op = "pivot";
        let o = Options::new(op, &opts, &["index", "on", "values", "agg"])?;
        let index = strings(
            op,
            "index",
            o.get("index")
                .ok_or_else(|| Error::arg(format!("{op}: name the index column(s): #{{ index: \"method\", on: .., values: .. }}")))?,
        )?;
        let on = o.string("on", "")?;
        let values = o.string("values", "")?;
        if on.is_empty() || values.is_empty() {
            return Err(Error::arg(format!("{op}: name the on and values columns")).into());
        }
        Ok(wrap(query::pivot(&df.0, &index, &on, &values, &o.string("agg", "mean")?)?))
    });
    docs.add(
        a,
        "join",
        "df.join(other, on [, how])",
        "Joins on key columns present in both: how \"inner\" (default), \"left\", \"full\", or \"cross\" (with on []).",
        "runs_df.join(extra, [\"run\"], \"left\")",
    );
    engine.register_fn("join", |df: &mut F, other: F, on: Dynamic| -> RhaiResult<F> {
        Ok(wrap(query::join(&df.0, &other.0, &strings("join", "on", &on)?, "inner")?))
    });
    engine.register_fn("join", |df: &mut F, other: F, on: Dynamic, how: &str| -> RhaiResult<F> {
        let keys = if on.read_lock::<Array>().is_some_and(|a| a.is_empty()) { Vec::new() } else { strings("join", "on", &on)? };
        Ok(wrap(query::join(&df.0, &other.0, &keys, how)?))
    });
    docs.add(a, "sql", "df.sql(query)", "A SQL query over the frame, called self in the query (polars' SQL: SELECT, WHERE, GROUP BY, ORDER BY, LIMIT, joins of self with itself...).", "df.sql(\"SELECT method, avg(last_acc) AS acc FROM self GROUP BY method ORDER BY acc DESC\")");
    engine.register_fn("sql", |df: &mut F, q: &str| -> RhaiResult<F> { Ok(wrap(query::sql(&df.0, q)?)) });
    docs.add(a, "head", "df.head([n])", "The first n rows (default 10).", "df.head(5)");
    engine.register_fn("head", |df: &mut F, n: INT| -> RhaiResult<F> {
        let n = usize::try_from(n).map_err(|_| Error::arg(format!("head: n must be >= 0, got {n}")))?;
        Ok(wrap(query::head(&df.0, n)))
    });
    engine.register_fn("head", |df: &mut F| wrap(query::head(&df.0, 10)));
    docs.add(
        a,
        "concat",
        "concat(frames)",
        "Stacks frames by column name; a column missing from one frame is null in its rows.",
        "let all = concat([a, b]);",
    );
    engine.register_fn("concat", |frames: Array| -> RhaiResult<F> {
        let parts = frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.clone()
                    .try_cast::<F>()
                    .map(|f| f.0.as_ref().clone())
                    .ok_or_else(|| Error::arg(format!("concat: element {i} is a {}, not a DataFrame", f.type_name())).into())
            })
            .collect::<RhaiResult<Vec<_>>>()?;
        if parts.is_empty() {
            return Err(Error::arg("concat: needs at least one frame, got an empty array").into());
        }
        Ok(wrap(polars::functions::concat_df_diagonal(&parts).map_err(|e| crate::results::polars_error("concat", e))?))
    });

    docs.add(a, "columns", "df.columns", "The column names.", "print(df.columns);");
    engine
        .register_get("columns", |df: &mut F| -> Array { df.0.get_column_names().iter().map(|s| Dynamic::from(s.to_string())).collect() });
    docs.add(a, "height", "df.height | df.len()", "The number of rows.", "print(df.height);");
    engine.register_get("height", |df: &mut F| df.0.height() as INT);
    engine.register_fn("len", |df: &mut F| df.0.height() as INT);
    docs.add(a, "width", "df.width", "The number of columns.", "print(df.width);");
    engine.register_get("width", |df: &mut F| df.0.width() as INT);
    docs.add(a, "column", "df.column(name) | df[name]", "A column's values as an array (nulls as ()).", "let accs = df[\"last_acc\"];");
    engine.register_fn("column", |df: &mut F, name: &str| column_array(&df.0, name));
    engine.register_indexer_get(|df: &mut F, name: &str| column_array(&df.0, name));
    docs.add(
        a,
        "to_tensor",
        "df.to_tensor(column | columns)",
        "Numeric columns as a float64 tensor: [height] for one name, [height, k] for an array of k (nulls as NaN).",
        "let x = df.to_tensor([\"gap\", \"w0\"]);",
    );
    engine.register_fn("to_tensor", |df: &mut F, names: Dynamic| -> RhaiResult<ScriptTensor> {
        to_tensor(&df.0, &strings("to_tensor", "columns", &names)?)
    });
    docs.add(a, "rows", "df.rows()", "The rows as an array of maps.", "for r in df.rows() { print(r.run); }");
    engine.register_fn("rows", |df: &mut F| -> RhaiResult<Array> {
        let names: Vec<String> = df.0.get_column_names().iter().map(|s| s.to_string()).collect();
        let cols = names.iter().map(|n| values::cells(&df.0, n)).collect::<crate::error::Result<Vec<_>>>()?;
        Ok((0..df.0.height())
            .map(|i| Dynamic::from_map(names.iter().zip(&cols).map(|(n, c)| (n.as_str().into(), to_dynamic(c[i].clone()))).collect()))
            .collect())
    });
    docs.add(a, "to_map", "df.to_map()", "The columns as a map name -> array.", "let m = df.to_map(); m.last_acc");
    engine.register_fn("to_map", |df: &mut F| -> RhaiResult<Map> {
        let names: Vec<String> = df.0.get_column_names().iter().map(|s| s.to_string()).collect();
        names.iter().map(|n| Ok((n.as_str().into(), Dynamic::from_array(column_array(&df.0, n)?)))).collect()
    });
    engine.register_fn("to_string", |df: &mut F| df.0.to_string());
    engine.register_fn("to_debug", |df: &mut F| df.0.to_string());
}

#[cfg(test)]
mod tests {
    #[test]
    fn polars_warnings_read_as_gapscopes() {
        let text = super::polars_warning_text(
            "casting from UInt32 to Categorical is deprecated.\nInstead of `.cast(..)`, use `.cat.to(..)`.",
            &polars::error::PolarsWarning::Deprecation,
        );
        assert!(text.starts_with("warning: a table operation uses a form polars will drop"), "{text}");
        assert!(!text.contains('\n') && !text.contains("Deprecation:"), "{text}");
    }
}
