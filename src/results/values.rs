//! Columns of plain values. Scripts hand tables over as maps of arrays or arrays of maps; each
//! column becomes the narrowest polars type that holds all its values (bool, int64, float64,
//! string), with nulls for missing entries.

use super::polars_error;
use crate::error::{Error, Result};
use polars::prelude::*;

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s}"),
        }
    }
}

/// A column from cells: bools, ints (promoted to floats when any float is present), floats,
/// or strings (numbers and bools mixed with strings are an error: say which).
pub fn column(name: &str, cells: &[Value]) -> Result<Column> {
    let (mut bools, mut ints, mut floats, mut strings) = (0, 0, 0, 0);
    for c in cells {
        match c {
            Value::Null => {}
            Value::Bool(_) => bools += 1,
            Value::Int(_) => ints += 1,
            Value::Float(_) => floats += 1,
            Value::Str(_) => strings += 1,
        }
    }
    let name: PlSmallStr = name.into();
    let kinds = [bools > 0, ints + floats > 0, strings > 0].iter().filter(|&&k| k).count();
    if kinds > 1 {
        return Err(Error::arg(format!(
            "column \"{name}\" mixes {} bools, {} numbers and {} strings: a column holds one kind of value",
            bools,
            ints + floats,
            strings
        )));
    }
    Ok(if strings > 0 {
        let v: Vec<Option<String>> = cells.iter().map(|c| if let Value::Str(s) = c { Some(s.clone()) } else { None }).collect();
        Column::new(name, v)
    } else if floats > 0 {
        let v: Vec<Option<f64>> = cells
            .iter()
            .map(|c| match c {
                Value::Float(f) => Some(*f),
                Value::Int(i) => Some(*i as f64),
                _ => None,
            })
            .collect();
        Column::new(name, v)
    } else if ints > 0 {
        let v: Vec<Option<i64>> = cells.iter().map(|c| if let Value::Int(i) = c { Some(*i) } else { None }).collect();
        Column::new(name, v)
    } else if bools > 0 {
        let v: Vec<Option<bool>> = cells.iter().map(|c| if let Value::Bool(b) = c { Some(*b) } else { None }).collect();
        Column::new(name, v)
    } else {
        // All null: a float column of nulls (the common case is a metric that was never set).
        Column::new(name, vec![None::<f64>; cells.len()])
    })
}

/// A frame from named columns of equal length.
pub fn frame(columns: Vec<(String, Vec<Value>)>) -> Result<DataFrame> {
    let height = columns.first().map(|c| c.1.len()).unwrap_or(0);
    if let Some((name, cells)) = columns.iter().find(|c| c.1.len() != height) {
        return Err(Error::arg(format!(
            "column \"{name}\" has {} values, column \"{}\" has {height}: columns of a table have equal lengths",
            cells.len(),
            columns[0].0
        )));
    }
    let cols = columns.iter().map(|(n, cells)| column(n, cells)).collect::<Result<Vec<_>>>()?;
    DataFrame::new(height, cols).map_err(|e| polars_error("frame", e))
}

/// One cell of a frame as a plain value (dates and other types as their text).
pub fn cell(v: AnyValue) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::Int8(x) => Value::Int(x as i64),
        AnyValue::Int16(x) => Value::Int(x as i64),
        AnyValue::Int32(x) => Value::Int(x as i64),
        AnyValue::Int64(x) => Value::Int(x),
        AnyValue::UInt8(x) => Value::Int(x as i64),
        AnyValue::UInt16(x) => Value::Int(x as i64),
        AnyValue::UInt32(x) => Value::Int(x as i64),
        AnyValue::UInt64(x) => Value::Int(x as i64),
        AnyValue::Float32(x) => Value::Float(x as f64),
        AnyValue::Float64(x) => Value::Float(x),
        AnyValue::String(s) => Value::Str(s.to_string()),
        AnyValue::StringOwned(s) => Value::Str(s.to_string()),
        other => Value::Str(other.to_string()),
    }
}

/// A column's cells, by name; a missing name is an error listing the columns there are.
pub fn cells(df: &DataFrame, name: &str) -> Result<Vec<Value>> {
    let col = df.column(name).map_err(|_| missing_column(df, name))?;
    let s = col.as_materialized_series();
    Ok(s.iter().map(cell).collect())
}

/// "no column \"x\"; the columns are: a, b, c".
pub fn missing_column(df: &DataFrame, name: &str) -> Error {
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    Error::arg(format!("no column \"{name}\"; the columns are: {}", names.join(", ")))
}

/// Numeric columns as a row-major [height, columns] f64 matrix (nulls as NaN).
pub fn matrix(df: &DataFrame, names: &[String]) -> Result<Vec<f64>> {
    let h = df.height();
    let mut out = vec![0.0; h * names.len()];
    for (j, name) in names.iter().enumerate() {
        let col = df.column(name).map_err(|_| missing_column(df, name))?;
        // A cast of text to numbers gives nulls, which would come back as NaN without a word.
        if !(col.dtype().is_primitive_numeric() || col.dtype() == &DataType::Boolean || col.dtype() == &DataType::Null) {
            return Err(Error::arg(format!(
                "column \"{name}\" holds {} values, not numbers: pick numeric columns, or convert it in sql (e.g. CAST({name} AS DOUBLE))",
                col.dtype()
            )));
        }
        let cast = col.cast(&DataType::Float64).map_err(|_| Error::arg(format!("column \"{name}\" is {}, not numeric", col.dtype())))?;
        let ca = cast.f64().map_err(|e| polars_error("to_tensor", e))?;
        for (i, v) in ca.iter().enumerate() {
            out[i * names.len() + j] = v.unwrap_or(f64::NAN);
        }
    }
    Ok(out)
}
