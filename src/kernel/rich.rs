//! Rich outputs for the notebook: a figure file as an inline image, a table as HTML.

use base64::Engine as _;
use polars::prelude::*;
use serde_json::{json, Value};
use std::path::Path;

/// Rows shown of a long table: the first and last half of this, with a gap row between.
const SHOWN_ROWS: usize = 20;

/// A figure file as display data: PNG as base64 `image/png`, SVG as `image/svg+xml`.
pub fn figure_data(path: &Path) -> Option<Value> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let bytes = std::fs::read(path).ok()?;
    let label = format!("<figure {}>", path.display());
    match ext.as_str() {
        "png" => Some(json!({ "image/png": base64::engine::general_purpose::STANDARD.encode(bytes), "text/plain": label })),
        "svg" => Some(json!({ "image/svg+xml": String::from_utf8_lossy(&bytes), "text/plain": label })),
        _ => None,
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn cell(v: AnyValue) -> String {
    match v {
        AnyValue::Null => "null".into(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// A frame as an HTML table: column names with their types, at most `SHOWN_ROWS` rows (head and
/// tail of a longer one), and its shape.
pub fn frame_html(df: &DataFrame) -> String {
    let (rows, cols) = df.shape();
    let mut h = String::from("<table class=\"dataframe\">\n<thead><tr>");
    for c in df.columns() {
        h.push_str(&format!("<th>{}<br><small>{}</small></th>", escape(c.name()), escape(&c.dtype().to_string())));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let shown: Vec<Option<usize>> = if rows <= SHOWN_ROWS {
        (0..rows).map(Some).collect()
    } else {
        (0..SHOWN_ROWS / 2).map(Some).chain([None]).chain((rows - SHOWN_ROWS / 2..rows).map(Some)).collect()
    };
    for r in shown {
        h.push_str("<tr>");
        for c in df.columns() {
            let text = match r {
                Some(i) => c.get(i).map(cell).unwrap_or_default(),
                None => "…".into(),
            };
            h.push_str(&format!("<td>{}</td>", escape(&text)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str(&format!("</tbody>\n</table>\n<p>{rows} rows × {cols} columns</p>"));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_escape_and_elide() {
        let df = df!("name" => ["<a>", "b"], "x" => [1.5, 2.0]).unwrap();
        let h = frame_html(&df);
        assert!(h.contains("<th>name<br><small>str</small></th>") && h.contains("<td>&lt;a&gt;</td>") && h.contains("<td>1.5</td>"), "{h}");
        assert!(h.contains("2 rows × 2 columns"));
        let long = df!("i" => (0..100i64).collect::<Vec<_>>()).unwrap();
        let h = frame_html(&long);
        assert!(h.contains("<td>9</td>") && h.contains("<td>…</td>") && h.contains("<td>90</td>") && !h.contains("<td>50</td>"), "{h}");
    }
}
