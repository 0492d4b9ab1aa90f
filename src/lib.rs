//! gapscope: quantify and correct multimodal imbalance, scripted in Rhai over libtorch.
//!
//! The core (`tensor`, `gap`, `mixture`, `plot`, later `data`, `train`, ...) is plain Rust and knows
//! nothing of Rhai; `host` registers it with a Rhai engine; `script` and `repl` run scripts.

pub mod cluster;
pub mod data;
pub mod error;
pub mod gap;
pub mod host;
pub mod interrupt;
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
pub mod stdlib;
pub mod sweep;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};

use host::Docs;
use rhai::{Engine, Map};
use std::cell::RefCell;
use std::rc::Rc;

/// A configured engine with everything registered, and the docs of what was registered.
pub struct Host {
    pub engine: Engine,
    pub docs: Rc<Docs>,
    /// Values given with `--set key=value`; read by `param(name, default)`.
    pub params: Rc<RefCell<Map>>,
}

impl Host {
    pub fn new() -> Self {
        let mut engine = Engine::new();
        // Debug builds default to a call depth of 8: far too shallow for recursive helpers.
        engine.set_max_call_levels(256);
        engine.set_max_expr_depths(256, 256);
        // A doubling loop (`s += s`) must end in an error, not in the kernel's OOM killer.
        engine.set_max_string_size(256 << 20);
        engine.set_max_array_size(50_000_000);
        engine.set_max_map_size(10_000_000);
        engine.set_module_resolver(host::modules::Resolver::default());
        // `var` is reserved in Rhai but is PyTorch's name for the variance: let it through as a
        // plain identifier so `x.var()` reads as it does in Python.
        #[allow(deprecated)]
        engine.on_parse_token(|token, _, _| match token {
            rhai::Token::Reserved(s) if s.as_str() == "var" => rhai::Token::Identifier(s),
            other => other,
        });
        engine.on_progress(|_| interrupt::take().map(|r| r.message().into()));
        let mut docs = Docs::default();
        let params = Rc::new(RefCell::new(Map::new()));
        host::tensor::register(&mut engine, &mut docs);
        host::autograd::register(&mut engine, &mut docs);
        host::gap::register(&mut engine, &mut docs);
        host::mixture::register(&mut engine, &mut docs);
        host::embed::register(&mut engine, &mut docs);
        host::plot::register(&mut engine, &mut docs);
        host::data::register(&mut engine, &mut docs);
        host::data::register_audio(&mut engine, &mut docs);
        host::data::register_vision(&mut engine, &mut docs);
        host::train::register(&mut engine, &mut docs);
        host::method::register(&mut engine, &mut docs);
        host::checkpoint::register(&mut engine, &mut docs);
        host::contribution::register(&mut engine, &mut docs);
        host::frame::register(&mut engine, &mut docs);
        host::record::register(&mut engine, &mut docs);
        host::sweep::register(&mut engine, &mut docs);
        host::system::register(&mut engine, &mut docs, params.clone());
        let docs = Rc::new(docs);
        host::system::register_help(&mut engine, docs.clone());
        Host { engine, docs, params }
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}
