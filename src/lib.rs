//! gapscope: quantify and correct multimodal imbalance, scripted in Rhai over libtorch.
//!
//! The core (`tensor`, `gap`, `mixture`, `plot`, later `data`, `train`, ...) is plain Rust and knows
//! nothing of Rhai; `host` registers it with a Rhai engine; `script` and `repl` run scripts.

// Clippy lints that fight the notation, allowed for the whole crate: the rules index several
// per-modality arrays by one m (as their equations do); `!(x > 0.0)` is written so NaN fails a
// check too; lists of named tensors read clearer inline than behind a type alias.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord, clippy::nonminimal_bool, clippy::type_complexity)]

pub mod checksum;
pub mod cluster;
pub mod data;
pub mod display;
pub mod error;
pub mod files;
pub mod gap;
pub mod heap;
pub mod host;
#[cfg(test)]
mod import_graph;
pub mod interrupt;
pub mod kernel;
pub mod limits;
pub mod manifold;
pub mod mixture;
pub mod plot;
pub mod prep;
pub mod progress;
pub mod repl;
pub mod results;
pub mod rng;
pub mod script;
pub mod session;
pub mod stats;
pub mod stdlib;
pub mod suggest;
pub mod sweep;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};

#[cfg(feature = "heap-count")]
#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

/// The engine with every gapscope function registered (src/host/engine.rs).
pub use host::Host;
