//! The script's handles on the core's training objects: a model, its optimizer, a weight table.
//! They stand below every host module that registers functions on them (train, method, scripted
//! methods, checkpoints, plots), so none of those needs another to name them.

use crate::train::model::Model;
use crate::train::optim::Optimizer;
use crate::train::weights::WeightTable;
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone)]
pub struct ScriptModel(pub Rc<Model>);

#[derive(Clone)]
pub struct ScriptOptimizer(pub Rc<RefCell<Optimizer>>);

/// A method's hook that reaches the optimizer its own training call is stepping (a closure that
/// captured it) gets this error, not a borrow panic.
const IN_USE: &str = "the optimizer is in use by the training call running this hook: in a method's hooks read rates with ctx.lr(group) / ectx.lr(group) and set them with ectx.set_lr(group, lr)";

impl ScriptOptimizer {
    pub fn get(&self) -> crate::error::Result<std::cell::Ref<'_, Optimizer>> {
        self.0.try_borrow().map_err(|_| crate::error::Error::arg(IN_USE))
    }

    pub fn get_mut(&self) -> crate::error::Result<std::cell::RefMut<'_, Optimizer>> {
        self.0.try_borrow_mut().map_err(|_| crate::error::Error::arg(IN_USE))
    }
}

#[derive(Clone)]
pub struct ScriptWeights(pub Rc<WeightTable>);
