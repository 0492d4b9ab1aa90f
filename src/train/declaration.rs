//! What a training method is, as data: its name, reference, options, variants, the modalities
//! it is defined for, whether it keeps state, what it logs, its tuning knob, and how to build its
//! rule. Each method file declares one `MethodSpec` (`pub static SPEC`); `methods::ALL` lists
//! them, and everything that asks about a method (names, help, `methods()`, tuning grids,
//! TensorBoard tags, records) reads the declaration instead of building the method.
//!
//! A `Configured` method is a declaration with its resolved options and its rule (the `Method`
//! trait's behaviour): the trainer, the host and checkpoints hold this one value, so each rule
//! keeps only what it computes with.

use super::method::{EpochContext, Method, StepContext, StepLoss};
use super::model::Model;
use super::options::{resolve, Literal, OptionSpec, Resolved, Value};
use super::weights::Weights;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Where a method comes from: the paper and the code its rule follows.
#[derive(Clone, Copy, Debug)]
pub struct Reference {
    /// "Peng et al."
    pub authors: &'static str,
    /// "CVPR 2022"
    pub venue: &'static str,
    /// The public code the rule was checked against ("" where there is none).
    pub code: &'static str,
    /// That code's commit ("" where unpinned).
    pub commit: &'static str,
}

impl Reference {
    pub const NONE: Reference = Reference { authors: "", venue: "", code: "", commit: "" };
}

/// A named variant: a set of option values switched on at once by `variant: "<name>"` (the
/// option the method declares). Options the user gives explicitly win over the variant's.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub name: &'static str,
    pub help: &'static str,
    pub values: &'static [(&'static str, Literal)],
}

/// How many modalities a rule is defined for.
#[derive(Clone, Copy, Debug)]
pub enum Modalities {
    Any,
    /// At most this many, and why not more (the refusal's reason).
    AtMost(usize, &'static str),
}

/// Whether a method carries state across steps and epochs (then it must be built once and passed
/// to every step, and its state goes into checkpoints).
#[derive(Clone, Copy)]
pub enum Keeps {
    Never,
    Always,
    /// Depends on the options (G-Blending's estimated weights, MLA's projection).
    When(fn(&Resolved) -> bool, &'static str),
}

/// The option a table tunes on validation (`--set tune=K`), and its grid.
#[derive(Clone, Copy, Debug)]
pub struct Knob {
    pub key: &'static str,
    pub values: &'static [Literal],
}

/// What a constructor may need beyond plain option values.
#[derive(Clone, Default)]
pub struct BuildInputs {
    /// The adaptive loss's per-sample weights.
    pub weights: Option<Weights>,
}

pub type Build = fn(&Resolved, &BuildInputs) -> Result<Box<dyn Method>>;

/// A method's declaration.
pub struct MethodSpec {
    /// The name a script chooses it by.
    pub name: &'static str,
    /// Older names that choose it too.
    pub aliases: &'static [&'static str],
    /// One line: what its rule does.
    pub summary: &'static str,
    pub reference: Reference,
    pub options: &'static [OptionSpec],
    pub variants: &'static [Variant],
    pub modalities: Modalities,
    pub keeps_state: Keeps,
    /// The loss terms it logs; `<prefix>_*` stands for one per modality (`per_modality`).
    pub terms: &'static [&'static str],
    /// The diagnostics it logs (coefficients, weights), in the same pattern form.
    pub diagnostics: &'static [&'static str],
    pub knob: Option<Knob>,
    pub build: Build,
}

impl MethodSpec {
    /// Whether `name` chooses this method.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }

    /// Checks `given` against the declared options, fills in the defaults, and applies the
    /// variant the options name (its values, except those given explicitly).
    pub fn resolve(&self, given: &[(String, Value)]) -> Result<Resolved> {
        let mut opts = resolve(self.name, self.options, given)?;
        if let Some(Value::Text(v)) = opts.values.iter().find(|(n, _)| *n == "variant").map(|(_, v)| v.clone()) {
            if let Some(variant) = self.variants.iter().find(|x| x.name == v) {
                opts.set_unless_given(given, variant.values.iter().map(|(k, l)| (*k, l.value())).collect());
            }
        }
        Ok(opts)
    }

    /// Resolves the options and builds the rule.
    pub fn configure(&'static self, given: &[(String, Value)], inputs: &BuildInputs) -> Result<Configured> {
        let options = self.resolve(given)?;
        let rule = (self.build)(&options, inputs)?;
        Ok(Configured { spec: self, options, rule })
    }

    pub fn takes_option(&self, name: &str) -> bool {
        self.options.iter().any(|o| o.name == name)
    }

    /// Whether a logged name is one of the declared diagnostics (`declared` matching `pattern`
    /// exactly, or `<prefix>_<anything>` for a `<prefix>_*` pattern).
    pub fn declares_diagnostic(&self, name: &str) -> bool {
        self.diagnostics.iter().any(|p| matches_pattern(p, name))
    }

    pub fn declares_term(&self, name: &str) -> bool {
        self.terms.iter().any(|p| matches_pattern(p, name))
    }
}

/// Resolves `given` against a declaration and builds the rule's own type with `new`: for tests and
/// callers that look inside one rule (its coefficients, its phase) rather than run it.
pub fn with_options<T>(spec: &MethodSpec, given: &[(String, Value)], new: impl FnOnce(&Resolved) -> Result<T>) -> Result<T> {
    new(&spec.resolve(given)?)
}

/// `ce_*` matches ce_first, ce_audio; any other pattern matches itself.
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A method as it trains: what it is, how it was configured, and its rule.
pub struct Configured {
    pub spec: &'static MethodSpec,
    pub options: Resolved,
    pub rule: Box<dyn Method>,
}

impl Configured {
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn keeps_state(&self) -> bool {
        match self.spec.keeps_state {
            Keeps::Never => false,
            Keeps::Always => true,
            Keeps::When(f, _) => f(&self.options),
        }
    }

    /// Refuses a model with more modalities than the rule is defined for.
    fn check_modalities(&self, model: &Model) -> Result<()> {
        match self.spec.modalities {
            Modalities::AtMost(max, why) if model.modalities.len() > max => Err(Error::arg(format!(
                "method {} is defined for {max} modalities and this model has {} ({}): {why}; train it with a method defined for any number (concat, or a scripted method), or a model of {max}",
                self.spec.name,
                model.modalities.len(),
                model.modalities.join(", "),
            ))),
            _ => Ok(()),
        }
    }
}

/// The trainer runs a configured method through the same hooks as its rule; `prepare` adds the
/// declared modality limit, `load_state` the declared statelessness.
impl Method for Configured {
    fn prepare(&self, model: &Model) -> Result<()> {
        self.check_modalities(model)?;
        self.rule.prepare(model)
    }
    fn begin_epoch(&mut self, ctx: &EpochContext) -> Result<()> {
        self.rule.begin_epoch(ctx)
    }
    fn lr_changes(&mut self) -> Vec<(String, f64)> {
        self.rule.lr_changes()
    }
    fn predict(&mut self, model: &Model, fused: &Tensor, per: &[Tensor]) -> Result<Option<Tensor>> {
        self.rule.predict(model, fused, per)
    }
    fn substeps(&self, model: &Model) -> usize {
        self.rule.substeps(model)
    }
    fn loss(&mut self, ctx: &StepContext) -> Result<StepLoss> {
        self.rule.loss(ctx)
    }
    fn backward(&mut self, ctx: &StepContext, total: &Tensor, params: &[(String, Tensor)]) -> Result<Option<Vec<Tensor>>> {
        self.rule.backward(ctx, total, params)
    }
    fn epoch_view(&self) -> Option<&[(i64, u32)]> {
        self.rule.epoch_view()
    }
    fn fresh_optimizer(&self, epoch: usize) -> bool {
        self.rule.fresh_optimizer(epoch)
    }
    fn gradient_diagnostics(&mut self) -> Vec<(&'static str, f64)> {
        self.rule.gradient_diagnostics()
    }
    fn adjust_gradients(&mut self, ctx: &StepContext, params: &[(String, Tensor)], grads: &mut [Tensor]) -> Result<()> {
        self.rule.adjust_gradients(ctx, params, grads)
    }
    fn state(&self) -> Vec<(String, Tensor)> {
        self.rule.state()
    }
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        match state.first() {
            None => Ok(()),
            Some((name, _)) if !self.keeps_state() && self.rule.state().is_empty() => {
                Err(Error::arg(format!("{}: has no state, but the checkpoint holds \"{name}\"", self.spec.name)))
            }
            Some(_) => self.rule.load_state(state),
        }
    }
}
