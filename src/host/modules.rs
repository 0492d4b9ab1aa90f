//! `import "name"`: first the stdlib modules compiled into the binary, then `name.rhai`
//! relative to the importing script's directory (the working directory in the REPL).
//! Modules are compiled with their file path as source, so errors inside them name the file.

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

type SharedModule = rhai::Shared<Module>;

#[derive(Default)]
pub struct Resolver {
    cache: RefCell<HashMap<String, SharedModule>>,
    /// The modules being loaded, outermost first: an import of one of them is a cycle, which
    /// would otherwise recurse until the stack overflows.
    loading: RefCell<Vec<(String, String)>>,
}

impl Resolver {
    fn load(
        &self,
        engine: &Engine,
        key: String,
        source_name: String,
        text: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        if let Some(m) = self.cache.borrow().get(&key) {
            return Ok(m.clone());
        }
        if let Some(i) = self.loading.borrow().iter().position(|(k, _)| *k == key) {
            let chain: Vec<String> = self.loading.borrow()[i..].iter().map(|(_, name)| name.clone()).chain([source_name.clone()]).collect();
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!(
                    "import cycle: {}; a module cannot import itself, directly or through others: move what both need into a third module",
                    chain.join(" imports ")
                )
                .into(),
                pos,
            )));
        }
        let in_module = |e: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(source_name.clone(), e, pos));
        let mut ast = engine.compile(text).map_err(|e| in_module(Box::new(EvalAltResult::ErrorParsing(*e.0, e.1))))?;
        ast.set_source(source_name.as_str());
        self.loading.borrow_mut().push((key.clone(), source_name.clone()));
        let evaluated = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        self.loading.borrow_mut().pop();
        let module: SharedModule = evaluated.map_err(in_module)?.into();
        self.cache.borrow_mut().insert(key, module.clone());
        Ok(module)
    }
}

/// `path` (with `.rhai` added when missing) relative to the directory of `source`.
pub fn module_file(source: Option<&str>, path: &str) -> PathBuf {
    let file = if path.ends_with(".rhai") { PathBuf::from(path) } else { PathBuf::from(format!("{path}.rhai")) };
    if file.is_absolute() {
        return file;
    }
    match source.map(Path::new).and_then(Path::parent) {
        Some(dir) => dir.join(file),
        None => file,
    }
}

impl ModuleResolver for Resolver {
    fn resolve(&self, engine: &Engine, source: Option<&str>, path: &str, pos: Position) -> Result<SharedModule, Box<EvalAltResult>> {
        let name = path.trim_end_matches(".rhai");
        if let Some(text) = crate::stdlib::source(name) {
            return self.load(engine, format!("stdlib:{name}"), format!("stdlib/{name}.rhai"), text, pos);
        }
        let file = module_file(source, path);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            let stdlib: Vec<&str> = crate::stdlib::MODULES.iter().map(|(n, _)| *n).collect();
            Box::new(EvalAltResult::ErrorModuleNotFound(
                format!("{path} (not a stdlib module [{}], and {}: {e})", stdlib.join(", "), file.display()),
                pos,
            ))
        })?;
        let key = std::fs::canonicalize(&file).unwrap_or(file.clone()).display().to_string();
        self.load(engine, key, file.display().to_string(), crate::files::without_bom(&text), pos)
    }
}
