//! The Rhai face of gapscope: one file per area, each with a `register(engine, docs)`.
//! This layer only translates (argument parsing, error mapping, docs); the math lives in the
//! plain-Rust core modules.

pub mod autograd;
pub mod checkpoint;
pub mod contribution;
pub mod convert;
pub mod data;
pub mod docs;
pub mod embed;
pub mod engine;
pub mod frame;
pub mod gap;
pub mod handles;
pub mod method;
pub mod mixture;
pub mod modules;
pub mod options;
pub mod plot;
pub mod probe;
pub mod reads;
pub mod record;
pub mod scripted;
pub mod stats;
pub mod sweep;
pub mod system;
pub mod tensor;
pub mod train;
pub mod type_names;
pub mod writes;

pub use docs::{Docs, FnDoc};
pub use engine::Host;
pub use tensor::ScriptTensor;

/// Shorthand for what every registered function returns.
pub type RhaiResult<T> = Result<T, Box<rhai::EvalAltResult>>;

/// `source:line:col`, as every error names a place in a script.
pub fn position_text(source: &str, pos: rhai::Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{source}:{l}:{c}"),
        (Some(l), None) => format!("{source}:{l}"),
        _ => source.to_string(),
    }
}
