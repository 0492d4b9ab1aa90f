//! A multimodal classifier: one encoder per modality (two or more) and a fusion head, its
//! parameters in one `VarStore` named as PyTorch would (`<modality>_net.layer1.0.conv1.weight`,
//! `fusion.fc_out.weight`).

use super::encoder::{Encoder, EncoderKind};
use super::fusion::{Fusion, FusionKind, HeadRule, Logits};
use super::mmtm::Mmtm;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::cell::Cell;
use tch::{nn, Device};

#[derive(Clone)]
pub struct ModelSpec {
    /// The modalities, in the model's order (for two, gap order: first minus second).
    pub modalities: Vec<String>,
    pub shapes: Vec<Vec<i64>>,
    pub encoders: Vec<EncoderKind>,
    pub fusion: FusionKind,
    pub classes: i64,
    pub seed: u64,
    pub device: Device,
    /// MMTM modules after each of the encoders' last this many aligned stages (0: none; Greedy's
    /// code 3, after a ResNet's layers 2-4; BalanceBenchmark's 4). Two modalities only.
    pub mmtm: usize,
}

/// A modality's name as a parameter-name prefix: parameter names are dot-separated paths, so a
/// modality named like a safetensors key ("audio.left") gives "audio_left_net.fc1.weight".
pub fn param_prefix(modality: &str) -> String {
    modality.replace('.', "_")
}

pub struct Model {
    pub vs: nn::VarStore,
    pub modalities: Vec<String>,
    pub encoders: Vec<Encoder>,
    pub fusion: Fusion,
    pub classes: i64,
    /// A one-line description of the architecture, checked when loading checkpoints.
    pub architecture: String,
    /// Training-mode forward passes so far: every batch norm sees each one, so this is
    /// PyTorch's `num_batches_tracked` for all of them.
    pub batches_tracked: Cell<i64>,
    /// How the head turns features into logits: linear (the default) or MMCosine's cosine
    /// logits, set by the method that trains the model so evaluation predicts the same way.
    pub head_rule: Cell<HeadRule>,
    /// MMTM modules between encoder stages (M3), each with the lockstep position it follows.
    pub mmtm: Vec<(usize, Mmtm)>,
    /// The modality whose MMTM gates the next training forwards replace by their running mean
    /// (Greedy's curation; None outside it), and whether the second's running mean is taken
    /// from the first's gates (the code's bug, a Greedy switch).
    pub curation: Cell<Option<usize>>,
    pub mmtm_avg_bug: Cell<bool>,
    /// What the model was built from (G-Blending trains temporary copies).
    pub spec: ModelSpec,
}

/// Logits and the features they came from (one per modality, in the model's order).
pub struct Forward {
    pub logits: Logits,
    pub features: Vec<Tensor>,
}

impl Model {
    pub fn new(spec: &ModelSpec) -> Result<Model> {
        if spec.classes < 2 {
            return Err(Error::arg(format!("model: needs at least 2 classes, got {}", spec.classes)));
        }
        let n = spec.modalities.len();
        if n < 2 || spec.shapes.len() != n || spec.encoders.len() != n {
            return Err(Error::arg(format!(
                "model: needs two or more modalities, each with a shape and an encoder; got {n} modalities, {} shapes, {} encoders",
                spec.shapes.len(),
                spec.encoders.len()
            )));
        }
        // The initialisation is drawn from libtorch's global generator, seeded and held so a
        // run is repeatable even with models built on two threads at once.
        // tch's layer constructors unwrap libtorch's errors (a layer too large to allocate):
        // scalar_safe turns that panic back into the error, naming what could not be built.
        crate::rng::with_torch_seed(spec.seed, || match crate::tensor::scalar_safe(|| Ok(Model::build(spec))) {
            Ok(built) => built,
            Err(e) => Err(Error::arg(format!(
                "model: libtorch could not create the parameters ({}); choose smaller encoders",
                crate::error::clean_torch_message(&e.to_string())
            ))),
        })
    }

    fn build(spec: &ModelSpec) -> Result<Model> {
        let vs = nn::VarStore::new(spec.device);
        let root = vs.root();
        let encoders = (0..spec.modalities.len())
            .map(|m| Encoder::new(&(&root / format!("{}_net", param_prefix(&spec.modalities[m]))), &spec.encoders[m], &spec.shapes[m]))
            .collect::<Result<Vec<_>>>()?;
        let dims: Vec<i64> = encoders.iter().map(|e| e.dim).collect();
        let fusion = Fusion::new(&(&root / "fusion"), spec.fusion, &dims, spec.classes)?;
        let mmtm = Model::build_mmtm(spec, &root, &encoders)?;
        // "a mlp:256,256 [8] + v mlp:256,256 [8] -> concat -> 3 classes" (checkpoints check it).
        let parts: Vec<String> = (0..spec.modalities.len())
            .map(|m| format!("{} {} {:?}", spec.modalities[m], spec.encoders[m].describe(), spec.shapes[m]))
            .collect();
        let mid = if spec.mmtm > 0 { format!(" -> mmtm after the last {}", mmtm.len()) } else { String::new() };
        let architecture = format!("{}{mid} -> {} -> {} classes", parts.join(" + "), spec.fusion.name(), spec.classes);
        Ok(Model {
            vs,
            modalities: spec.modalities.clone(),
            encoders,
            fusion,
            classes: spec.classes,
            architecture,
            batches_tracked: Cell::new(0),
            head_rule: Cell::new(HeadRule::Linear),
            mmtm,
            curation: Cell::new(None),
            mmtm_avg_bug: Cell::new(false),
            spec: spec.clone(),
        })
    }

    /// How many lockstep positions the encoders' stages take (the longest encoder's stages;
    /// a shorter one starts late so the last stages line up).
    fn lockstep(encoders: &[Encoder]) -> usize {
        encoders.iter().map(Encoder::stage_count).max().unwrap_or(0)
    }

    /// MMTM modules after the last `spec.mmtm` aligned stages, named `mmtm<k>` by the first
    /// encoder's 1-based stage (mmtm2..mmtm4 after a ResNet's layers 2-4, as Greedy's code).
    fn build_mmtm(spec: &ModelSpec, root: &nn::Path, encoders: &[Encoder]) -> Result<Vec<(usize, Mmtm)>> {
        if spec.mmtm == 0 {
            return Ok(Vec::new());
        }
        if encoders.len() != 2 {
            return Err(Error::arg(format!("model: mmtm fuses two modalities between their stages; this model has {}", encoders.len())));
        }
        let shortest = encoders.iter().map(Encoder::stage_count).min().unwrap_or(0);
        if spec.mmtm > shortest {
            return Err(Error::arg(format!(
                "model: mmtm {} asks for more modules than the shorter encoder has stages ({shortest}): use mmtm: {shortest} or fewer",
                spec.mmtm
            )));
        }
        let total = Model::lockstep(encoders);
        let widths = |e: &Encoder| -> Vec<i64> { e.stage_widths() };
        let (w0, w1) = (widths(&encoders[0]), widths(&encoders[1]));
        let mut out = Vec::new();
        for j in total - spec.mmtm..total {
            let k0 = j - (total - w0.len());
            let k1 = j - (total - w1.len());
            out.push((j, Mmtm::new(&(root / format!("mmtm{}", k0 + 1)), w0[k0], w1[k1])));
        }
        Ok(out)
    }

    /// An independent model with this one's architecture, parameters, buffers and head rule.
    pub fn copy(&self) -> Result<Model> {
        let other = Model::new(&self.spec)?;
        other.load_state_dict(&self.state_dict(), "copy")?;
        other.head_rule.set(self.head_rule.get());
        Ok(other)
    }

    /// The trainable parameters by name, sorted by name (what an optimiser updates).
    pub fn trainable_parameters(&self) -> Vec<(String, Tensor)> {
        let mut params: Vec<(String, Tensor)> = self.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        params
    }

    /// Adds a boosting layer to modality m's list in a `boosted` head (AUG, M13): d_m → 256,
    /// Xavier-normal weight and zero bias drawn from (the model's seed, m, its number), named
    /// `fusion.boost<m>_<k>` when trained (a trainable parameter the trainer hands the optimizer
    /// with empty state, `grown_parameters`) or `fusion.fixed<m>_<k>` when held at its
    /// initialisation (no gradient: the released AUG code's optimizer never sees its layers).
    /// The names record the structure, so a checkpoint rebuilds it (`load_state_dict`).
    /// Returns the new weight's name.
    pub fn grow_booster(&self, m: usize, trained: bool) -> Result<String> {
        if self.fusion.kind != FusionKind::Boosted {
            return Err(Error::arg(format!(
                "boosting layers need a model built with fusion: \"boosted\", not {}",
                self.fusion.kind.name()
            )));
        }
        if m >= self.modalities.len() {
            return Err(Error::arg(format!("no modality {m}: this model has {}", self.modalities.len())));
        }
        let k = self.fusion.booster_counts()[m] + 1;
        let name = format!("{}{m}_{k}", if trained { "boost" } else { "fixed" });
        let seed = self.spec.seed ^ (0xB005_7000 + (m as u64) * 1000 + k as u64);
        let layer = crate::rng::with_torch_seed(seed, || {
            super::layers::Linear::new(&(self.vs.root() / "fusion" / name.as_str()), self.fusion.dim(m), super::fusion::BOOSTED_HIDDEN)
        });
        if !trained {
            for t in [&layer.weight, &layer.bias] {
                let _ = t.set_requires_grad(false);
            }
        }
        self.fusion.push_booster(m, layer)?;
        Ok(format!("fusion.{name}.weight"))
    }

    /// The trainable tensors grown during training (trained boosting layers): the trainer adds
    /// the ones an optimizer lacks to it, with empty state.
    pub fn grown_parameters(&self) -> Vec<(String, Tensor)> {
        self.trainable_parameters().into_iter().filter(|(n, _)| n.starts_with("fusion.boost")).collect()
    }

    /// Grows the boosting layers a state dict names and this model lacks, in order.
    fn grow_to(&self, named: &[(String, Tensor)]) -> Result<()> {
        if self.fusion.kind != FusionKind::Boosted {
            return Ok(());
        }
        let mut wanted: Vec<(usize, usize, bool)> = named
            .iter()
            .filter_map(|(n, _)| {
                let rest = n.strip_prefix("fusion.")?.strip_suffix(".weight")?;
                let (trained, rest) = match (rest.strip_prefix("boost"), rest.strip_prefix("fixed")) {
                    (Some(r), _) => (true, r),
                    (_, Some(r)) => (false, r),
                    _ => return None,
                };
                let (m, k) = rest.split_once('_')?;
                Some((m.parse().ok()?, k.parse().ok()?, trained))
            })
            .collect();
        wanted.sort();
        for (m, k, trained) in wanted {
            if m < self.modalities.len() && k == self.fusion.booster_counts()[m] + 1 {
                self.grow_booster(m, trained)?;
            }
        }
        Ok(())
    }

    /// Which modality (its index) a parameter's encoder belongs to, from its name; None for the head.
    pub fn encoder_of(&self, name: &str) -> Option<usize> {
        (0..self.modalities.len())
            .find(|&m| name.strip_prefix(param_prefix(&self.modalities[m]).as_str()).is_some_and(|rest| rest.starts_with("_net.")))
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The forward pass on each modality's input, in the model's order (moved to its device).
    pub fn forward_all(&self, inputs: &[&Tensor], train: bool) -> Result<Forward> {
        let features = self.encode_all(inputs, train)?;
        let logits = self.head_all(&features)?;
        Ok(Forward { logits, features })
    }

    /// The forward pass of a two-modality model (the two-modality methods' form).
    pub fn forward(&self, first: &Tensor, second: &Tensor, train: bool) -> Result<Forward> {
        self.forward_all(&[first, second], train)
    }

    /// The encoders alone (methods that change features before the head, like OPM, call this
    /// and `head_all` separately).
    pub fn encode_all(&self, inputs: &[&Tensor], train: bool) -> Result<Vec<Tensor>> {
        let all = vec![Some(true); self.modalities.len()];
        Ok(self.encode_some(inputs, train, &all)?.into_iter().map(|f| f.expect("every encoder ran")).collect())
    }

    /// The encoders `which` names: Some(true) with the autograd graph, Some(false) without
    /// (a no-grad pass, as a method's frozen part), None not run. ReconBoost's learner phase
    /// needs one encoder's graph and the others' outputs only.
    pub fn encode_some(&self, inputs: &[&Tensor], train: bool, which: &[Option<bool>]) -> Result<Vec<Option<Tensor>>> {
        if inputs.len() != self.modalities.len() || which.len() != self.modalities.len() {
            return Err(Error::arg(format!(
                "forward: {} inputs for a model of {} modalities ({})",
                inputs.len(),
                self.modalities.len(),
                self.modalities.join(", ")
            )));
        }
        let dev = self.device();
        if !self.mmtm.is_empty() {
            return self.encode_fused_stages(inputs, train, which);
        }
        let mut out = Vec::with_capacity(inputs.len());
        for (m, x) in inputs.iter().enumerate() {
            let Some(grad) = which[m] else {
                out.push(None);
                continue;
            };
            let _guard = (!grad).then(tch::no_grad_guard);
            let x = crate::tensor::check("forward", x.f_to_device(dev))?;
            out.push(Some(self.encoders[m].forward(&x, train).map_err(|e| Error::arg(format!("{} {e}", self.modalities[m])))?));
        }
        if train {
            self.batches_tracked.set(self.batches_tracked.get() + 1);
        }
        Ok(out)
    }

    /// Both encoders in lockstep with the MMTM modules between their aligned stages (M3); under
    /// curation (`curation`) a training forward replaces that modality's gates by their running
    /// means. Both encoders always run (each gates the other); a no-grad request for one of
    /// them detaches its features.
    fn encode_fused_stages(&self, inputs: &[&Tensor], train: bool, which: &[Option<bool>]) -> Result<Vec<Option<Tensor>>> {
        let dev = self.device();
        let total = Model::lockstep(&self.encoders);
        let mut s = Vec::with_capacity(2);
        for (m, x) in inputs.iter().enumerate() {
            let x = crate::tensor::check("forward", x.f_to_device(dev))?;
            s.push(Some(self.encoders[m].begin(&x).map_err(|e| Error::arg(format!("{} {e}", self.modalities[m])))?));
        }
        let curate = if train { self.curation.get() } else { None };
        for j in 0..total {
            for (m, e) in self.encoders.iter().enumerate() {
                let offset = total - e.stage_count();
                if j >= offset {
                    let st = s[m].take().expect("staged");
                    s[m] = Some(e.stage(j - offset, st, train)?);
                }
            }
            if let Some((_, module)) = self.mmtm.iter().find(|(at, _)| *at == j) {
                let (a, b) = (s[0].take().expect("staged"), s[1].take().expect("staged"));
                let [a, b] = module.forward([a, b], train, curate, self.mmtm_avg_bug.get())?;
                s[0] = Some(a);
                s[1] = Some(b);
            }
        }
        if train {
            self.batches_tracked.set(self.batches_tracked.get() + 1);
        }
        let mut out = Vec::with_capacity(2);
        for (m, st) in s.into_iter().enumerate() {
            let f = self.encoders[m].finish(st.expect("staged"))?;
            out.push(match which[m] {
                None => None,
                Some(true) => Some(f),
                Some(false) => Some(f.f_detach()?),
            });
        }
        Ok(out)
    }

    /// The two encoders of a two-modality model.
    pub fn encode(&self, first: &Tensor, second: &Tensor, train: bool) -> Result<[Tensor; 2]> {
        let mut f = self.encode_all(&[first, second], train)?;
        let second = f.pop().expect("two features");
        let first = f.pop().expect("two features");
        Ok([first, second])
    }

    /// The fusion head on encoder features, under the model's head rule.
    pub fn head_all(&self, features: &[Tensor]) -> Result<Logits> {
        self.fusion.forward(features, self.head_rule.get())
    }

    /// The head of a two-modality model.
    pub fn head(&self, first: &Tensor, second: &Tensor) -> Result<Logits> {
        self.head_all(&[first.shallow_clone(), second.shallow_clone()])
    }

    pub fn parameter_count(&self) -> i64 {
        self.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }

    /// The state dict PyTorch's `load_state_dict` reads: parameters and buffers by name, plus
    /// `num_batches_tracked` (int64) for every batch norm, sorted by name.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        let tracked: Vec<String> =
            out.iter().filter_map(|(n, _)| n.strip_suffix(".running_mean")).map(|p| format!("{p}.num_batches_tracked")).collect();
        for name in tracked {
            out.push((name, Tensor::from(self.batches_tracked.get())));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Copies a state dict in by name. Every name must match in both directions with the same
    /// shape; otherwise the error lists the missing, unexpected and mis-shaped names (the
    /// usual sign of a checkpoint from another architecture) and nothing is changed.
    pub fn load_state_dict(&self, named: &[(String, Tensor)], source: &str) -> Result<()> {
        self.grow_to(named)?;
        let own = self.state_dict();
        let mut missing = Vec::new();
        let mut shapes = Vec::new();
        let mut kinds = Vec::new();
        for (name, t) in &own {
            match named.iter().find(|(n, _)| n == name) {
                None => missing.push(name.clone()),
                Some((_, given)) if given.size() != t.size() => {
                    shapes.push(format!("{name} (checkpoint {:?}, model {:?})", given.size(), t.size()))
                }
                // A tensor of another dtype would be cast without a word (float64 weights
                // rounded, integer weights made float): say so instead.
                Some((_, given)) if given.kind() != t.kind() => kinds.push(format!(
                    "{name} (checkpoint {}, model {})",
                    crate::tensor::dtype::kind_name(given.kind()),
                    crate::tensor::dtype::kind_name(t.kind())
                )),
                Some(_) => {}
            }
        }
        let mut unexpected: Vec<String> = named.iter().filter(|(n, _)| !own.iter().any(|(o, _)| o == n)).map(|(n, _)| n.clone()).collect();
        unexpected.sort();
        if !(missing.is_empty() && unexpected.is_empty() && shapes.is_empty() && kinds.is_empty()) {
            let list = |what: &str, names: &[String]| -> Option<String> {
                if names.is_empty() {
                    return None;
                }
                let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
                let more = if names.len() > 8 { format!(" and {} more", names.len() - 8) } else { String::new() };
                Some(format!("{what} ({}): {}{more}", names.len(), shown.join(", ")))
            };
            let parts: Vec<String> = [
                list("missing from the checkpoint", &missing),
                list("not in this model", &unexpected),
                list("shape differs", &shapes),
                list("dtype differs (convert the checkpoint, e.g. PyTorch's model.float(), before loading)", &kinds),
            ]
            .into_iter()
            .flatten()
            .collect();
            return Err(Error::arg(format!(
                "{source} does not fit this model ({}): {}. Build the model with the architecture the checkpoint was saved from",
                self.architecture,
                parts.join("; ")
            )));
        }
        let _guard = tch::no_grad_guard();
        let vars = self.vs.variables();
        for (name, given) in named {
            if name.ends_with(".num_batches_tracked") {
                self.batches_tracked.set(crate::tensor::check("load", given.f_int64_value(&[]))?);
                continue;
            }
            let mut target = vars[name].shallow_clone();
            let value = crate::tensor::check("load", given.f_to_kind(target.kind()).and_then(|g| g.f_to_device(target.device())))?;
            crate::tensor::check("load", target.f_copy_(&value))?;
        }
        Ok(())
    }
}
