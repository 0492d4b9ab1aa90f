//! Reading an options map (`#{ k: 2, seed: 7 }`) with typed defaults. Unknown keys are errors
//! that list the keys the function knows: a typo (`n_inits`) must not be silently ignored.

use super::RhaiResult;
use crate::error::Error;
use rhai::{Dynamic, Map, INT};

pub struct Options<'a> {
    op: &'static str,
    map: &'a Map,
}

impl<'a> Options<'a> {
    pub fn new(op: &'static str, map: &'a Map, known: &[&str]) -> RhaiResult<Options<'a>> {
        if let Some(bad) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::arg(format!("{op}: unknown option \"{bad}\"; the options are: {}", known.join(", "))).into());
        }
        Ok(Options { op, map })
    }

    /// The function these options belong to (for messages).
    pub fn op(&self) -> &'static str {
        self.op
    }

    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    fn wrong(&self, key: &str, want: &str, got: &Dynamic) -> Box<rhai::EvalAltResult> {
        Error::arg(format!("{}: option {key} must be {want}, found {} ({got})", self.op, got.type_name())).into()
    }

    pub fn int(&self, key: &str, default: INT) -> RhaiResult<INT> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_int().map_err(|_| self.wrong(key, "an int", v)),
        }
    }

    /// A non-negative int (counts, seeds, iteration caps).
    pub fn count(&self, key: &str, default: usize) -> RhaiResult<usize> {
        let v = self.int(key, default as INT)?;
        usize::try_from(v).map_err(|_| Error::arg(format!("{}: option {key} must be >= 0, found {v}", self.op)).into())
    }

    pub fn float(&self, key: &str, default: f64) -> RhaiResult<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_float().or_else(|_| v.as_int().map(|i| i as f64)).map_err(|_| self.wrong(key, "a number", v)),
        }
    }

    pub fn string(&self, key: &str, default: &str) -> RhaiResult<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(v) => v.clone().into_string().map_err(|_| self.wrong(key, "a string", v)),
        }
    }

    pub fn boolean(&self, key: &str, default: bool) -> RhaiResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().map_err(|_| self.wrong(key, "true or false", v)),
        }
    }
}
