//! The engine: a Rhai `Engine` with every gapscope function registered, its documentation, and
//! the `--set` parameters scripts read. The REPL, the script runner and the sweep planner each
//! start from one.

use super::Docs;
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
        engine.set_module_resolver(super::modules::Resolver::default());
        // Reading a key a map lacks is an error at that line (as a Python dict's KeyError), not a
        // () that surfaces steps later as `Function not found: + ((), int)`. `"k" in m` and
        // `m.get("k")` read optional keys; assigning a new key still adds it.
        engine.set_fail_on_invalid_map_property(true);
        // `var` is reserved in Rhai but is PyTorch's name for the variance: let it through as a
        // plain identifier so `x.var()` reads as it does in Python.
        #[allow(deprecated)]
        engine.on_parse_token(|token, _, _| match token {
            rhai::Token::Reserved(s) if s.as_str() == "var" => rhai::Token::Identifier(s),
            other => other,
        });
        // A doubling loop (`s += s`) must end in an error, not in the kernel's OOM killer: the heap
        // count is read between operations (Rhai's own size limits cost n² on large values).
        engine.on_progress(|_| crate::interrupt::take().map(|r| r.message().into()).or_else(|| crate::heap::over_limit().map(Into::into)));
        let mut docs = Docs::default();
        let params = Rc::new(RefCell::new(Map::new()));
        super::tensor::register(&mut engine, &mut docs);
        super::autograd::register(&mut engine, &mut docs);
        super::writes::register(&mut engine, &mut docs);
        super::gap::register(&mut engine, &mut docs);
        super::mixture::register(&mut engine, &mut docs);
        super::embed::register(&mut engine, &mut docs);
        super::plot::register(&mut engine, &mut docs);
        super::data::register(&mut engine, &mut docs);
        super::data::register_audio(&mut engine, &mut docs);
        super::data::register_vision(&mut engine, &mut docs);
        super::train::register(&mut engine, &mut docs);
        super::method::register(&mut engine, &mut docs);
        super::checkpoint::register(&mut engine, &mut docs);
        super::contribution::register(&mut engine, &mut docs);
        super::probe::register(&mut engine, &mut docs);
        super::frame::register(&mut engine, &mut docs);
        super::stats::register(&mut engine, &mut docs);
        super::record::register(&mut engine, &mut docs);
        super::sweep::register(&mut engine, &mut docs);
        super::system::register(&mut engine, &mut docs, params.clone());
        let docs = Rc::new(docs);
        super::system::register_help(&mut engine, docs.clone());
        Host { engine, docs, params }
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}
