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

#[derive(Clone)]
pub struct ScriptWeights(pub Rc<WeightTable>);
