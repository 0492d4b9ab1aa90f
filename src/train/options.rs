//! A method's options: each method declares its knobs (name, default, valid range) in one table,
//! and `resolve` checks what a user gave against it before anything trains: unknown names list
//! the valid ones, a value of the wrong type or outside its range names the option and the range.
//! The resolved table (every default filled in) is what run records store.

use crate::error::{Error, Result};

/// An option's value, as a script gives it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    Bool(bool),
    Text(String),
    /// A list of numbers (G-Blending's fixed weights; an epoch window [start, end]).
    List(Vec<f64>),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Float(x) => write!(f, "{x}"),
            Value::Int(x) => write!(f, "{x}"),
            Value::Bool(x) => write!(f, "{x}"),
            Value::Text(s) => write!(f, "\"{s}\""),
            Value::List(v) => write!(f, "{v:?}"),
        }
    }
}

/// What values an option accepts.
#[derive(Clone, Copy, Debug)]
pub enum Valid {
    /// A float in [lo, hi] (integers are accepted as floats).
    Float(f64, f64),
    /// An integer in [lo, hi].
    Int(i64, i64),
    Bool,
    Choice(&'static [&'static str]),
    /// An inclusive 0-based epoch window [start, end]; end -1 means "to the end of training".
    Window,
    /// One non-negative weight per modality, then the fused head's (G-Blending), with a positive
    /// sum, or an empty list; the count is checked against the model when training starts.
    HeadWeights,
    /// Whatever a scripted method's options map holds (the script checks its own).
    Any,
}

/// An option's default as a declaration writes it (`Value` owns its text and lists, which a
/// `static` cannot).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Literal {
    Float(f64),
    Int(i64),
    Bool(bool),
    Text(&'static str),
    List(&'static [f64]),
}

impl Literal {
    pub fn value(self) -> Value {
        match self {
            Literal::Float(x) => Value::Float(x),
            Literal::Int(i) => Value::Int(i),
            Literal::Bool(b) => Value::Bool(b),
            Literal::Text(s) => Value::Text(s.to_string()),
            Literal::List(l) => Value::List(l.to_vec()),
        }
    }
}

/// One option of a method: its name, default, accepted values and a one-line help.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    pub name: &'static str,
    pub default: Literal,
    pub valid: Valid,
    pub help: &'static str,
}

pub const fn opt(name: &'static str, default: Literal, valid: Valid, help: &'static str) -> OptionSpec {
    OptionSpec { name, default, valid, help }
}

/// Two option tables as one (OPM&OGM's own options, then OGM's): `C` must be `A + B`.
pub const fn join<const A: usize, const B: usize, const C: usize>(a: [OptionSpec; A], b: [OptionSpec; B]) -> [OptionSpec; C] {
    assert!(A + B == C, "join: C must be A + B");
    let mut out = [opt("", Literal::Bool(false), Valid::Bool, ""); C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < C {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// A method's options with every default filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub method: &'static str,
    pub values: Vec<(&'static str, Value)>,
}

/// What values an option accepts, in words (errors and help).
pub fn range_text(valid: Valid) -> String {
    match valid {
        Valid::Float(lo, hi) if hi == f64::INFINITY => format!("a number >= {lo}"),
        Valid::Float(lo, hi) => format!("a number in [{lo}, {hi}]"),
        Valid::Int(lo, hi) if hi == i64::MAX => format!("an integer >= {lo}"),
        Valid::Int(lo, hi) => format!("an integer in [{lo}, {hi}]"),
        Valid::Bool => "true or false".into(),
        Valid::Choice(names) => format!("one of {}", names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")),
        Valid::Window => "an epoch window [start, end] with 0 <= start <= end (end -1: to the end of training)".into(),
        Valid::Any => "any value".into(),
        Valid::HeadWeights => "one non-negative number per modality then one for the fused head (3 for two modalities), with a positive sum (or [] to estimate them)".into(),
    }
}

fn accept(valid: Valid, value: &Value) -> Option<Value> {
    match (valid, value) {
        (Valid::Float(lo, hi), Value::Float(x)) if x.is_finite() && *x >= lo && *x <= hi => Some(Value::Float(*x)),
        (Valid::Float(lo, hi), Value::Int(i)) if (*i as f64) >= lo && (*i as f64) <= hi => Some(Value::Float(*i as f64)),
        (Valid::Int(lo, hi), Value::Int(i)) if *i >= lo && *i <= hi => Some(Value::Int(*i)),
        (Valid::Bool, Value::Bool(b)) => Some(Value::Bool(*b)),
        (Valid::Choice(names), Value::Text(s)) if names.contains(&s.as_str()) => Some(value.clone()),
        (Valid::Window, Value::List(w)) if w.len() == 2 && w.iter().all(|x| x.fract() == 0.0) => {
            let (s, e) = (w[0], w[1]);
            (s >= 0.0 && (e == -1.0 || e >= s)).then(|| value.clone())
        }
        (Valid::HeadWeights, Value::List(w))
            if w.is_empty() || (w.len() >= 3 && w.iter().all(|x| x.is_finite() && *x >= 0.0) && w.iter().sum::<f64>() > 0.0) =>
        {
            Some(value.clone())
        }
        (Valid::Any, v) => Some(v.clone()),
        _ => None,
    }
}

/// Checks `given` against `specs` and fills in the defaults.
pub fn resolve(method: &'static str, specs: &[OptionSpec], given: &[(String, Value)]) -> Result<Resolved> {
    for (name, _) in given {
        if !specs.iter().any(|s| s.name == name) {
            let valid: Vec<&str> = specs.iter().map(|s| s.name).collect();
            let list = if valid.is_empty() { "it takes none".to_string() } else { format!("valid: {}", valid.join(", ")) };
            return Err(Error::arg(format!("{method}: unknown option \"{name}\" ({list})")));
        }
    }
    let mut values = Vec::with_capacity(specs.len());
    for s in specs {
        let value = match given.iter().rev().find(|(n, _)| n == s.name) {
            None => s.default.value(),
            Some((_, v)) => {
                accept(s.valid, v).ok_or_else(|| Error::arg(format!("{method}: {} must be {}, got {v}", s.name, range_text(s.valid))))?
            }
        };
        values.push((s.name, value));
    }
    Ok(Resolved { method, values })
}

impl Resolved {
    /// Sets the options a named variant fixes (BalanceBenchmark's form of a method), except
    /// those the user gave, which win.
    pub fn set_unless_given(&mut self, given: &[(String, Value)], values: Vec<(&'static str, Value)>) {
        for (name, value) in values {
            if given.iter().any(|(n, _)| n == name) {
                continue;
            }
            if let Some(v) = self.values.iter_mut().find(|(n, _)| *n == name) {
                v.1 = value;
            }
        }
    }

    fn get(&self, name: &str) -> &Value {
        // Every name a method reads is in its own spec table; a miss is a bug in that method.
        &self.values.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{}: option {name} is not in its spec table", self.method)).1
    }

    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Value::Float(x) => *x,
            Value::Int(i) => *i as f64,
            other => panic!("{}: option {name} is {other}, not a number", self.method),
        }
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Value::Int(i) => *i,
            other => panic!("{}: option {name} is {other}, not an integer", self.method),
        }
    }

    pub fn boolean(&self, name: &str) -> bool {
        matches!(self.get(name), Value::Bool(true))
    }

    pub fn text(&self, name: &str) -> &str {
        match self.get(name) {
            Value::Text(s) => s,
            other => panic!("{}: option {name} is {other}, not text", self.method),
        }
    }

    pub fn list(&self, name: &str) -> &[f64] {
        match self.get(name) {
            Value::List(v) => v,
            other => panic!("{}: option {name} is {other}, not a list", self.method),
        }
    }

    pub fn window(&self, name: &str) -> Window {
        let w = self.list(name);
        Window { start: w[0] as usize, end: if w[1] < 0.0 { None } else { Some(w[1] as usize) } }
    }
}

/// An inclusive, 0-based range of epochs in which a method acts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub start: usize,
    pub end: Option<usize>,
}

impl Window {
    pub fn contains(&self, epoch: usize) -> bool {
        epoch >= self.start && self.end.is_none_or(|e| epoch <= e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<OptionSpec> {
        vec![
            opt("alpha", Literal::Float(0.8), Valid::Float(0.0, f64::INFINITY), ""),
            opt("window", Literal::List(&[0.0, 50.0]), Valid::Window, ""),
            opt("form", Literal::Text("paper"), Valid::Choice(&["paper", "shifted"]), ""),
        ]
    }

    fn given(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn unknown_names_wrong_types_and_ranges_are_named() {
        let err = resolve("ogm-ge", &specs(), &given(&[("alpah", Value::Float(1.0))])).unwrap_err().to_string();
        assert!(err.contains("unknown option \"alpah\"") && err.contains("valid: alpha, window, form"), "{err}");
        let err = resolve("ogm-ge", &specs(), &given(&[("alpha", Value::Float(-0.1))])).unwrap_err().to_string();
        assert!(err.contains("alpha must be a number >= 0"), "{err}");
        let err = resolve("ogm-ge", &specs(), &given(&[("window", Value::List(vec![50.0, 10.0]))])).unwrap_err().to_string();
        assert!(err.contains("window must be an epoch window"), "{err}");
        let err = resolve("ogm-ge", &specs(), &given(&[("form", Value::Text("tanh".into()))])).unwrap_err().to_string();
        assert!(err.contains("one of \"paper\", \"shifted\""), "{err}");
        let ok = resolve("ogm-ge", &specs(), &given(&[("alpha", Value::Int(2)), ("window", Value::List(vec![0.0, -1.0]))])).unwrap();
        assert_eq!(ok.float("alpha"), 2.0);
        assert_eq!(ok.window("window"), Window { start: 0, end: None });
        assert!(ok.window("window").contains(10_000));
    }
}
