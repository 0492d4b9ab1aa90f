//! `import "name"`: first the stdlib modules compiled into the binary, then files relative
//! to the importing script (Rhai's file resolver, which appends `.rhai`).

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope};

type SharedModule = rhai::Shared<Module>;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
pub struct Resolver {
    files: FileModuleResolver,
    stdlib_cache: RefCell<HashMap<String, SharedModule>>,
}

impl ModuleResolver for Resolver {
    fn resolve(&self, engine: &Engine, source: Option<&str>, path: &str, pos: Position) -> Result<SharedModule, Box<EvalAltResult>> {
        let name = path.trim_end_matches(".rhai");
        if let Some(src) = crate::stdlib::source(name) {
            if let Some(m) = self.stdlib_cache.borrow().get(name) {
                return Ok(m.clone());
            }
            let mut ast = engine.compile(src).map_err(|e| {
                EvalAltResult::ErrorInModule(format!("stdlib/{name}.rhai"), Box::new(EvalAltResult::ErrorParsing(*e.0, e.1)), pos)
            })?;
            ast.set_source(format!("stdlib/{name}.rhai"));
            let module: SharedModule = Module::eval_ast_as_new(Scope::new(), &ast, engine)
                .map_err(|e| EvalAltResult::ErrorInModule(format!("stdlib/{name}.rhai"), e, pos))?
                .into();
            self.stdlib_cache.borrow_mut().insert(name.to_string(), module.clone());
            return Ok(module);
        }
        self.files.resolve(engine, source, path, pos)
    }
}
