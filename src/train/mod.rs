//! Training: encoders, fusion heads, the paper's losses, optimisers, and the step / epoch /
//! evaluate / collect functions the Rhai recipe (stdlib/train.rhai) is written on.
//!
//! - `layers`: conv, batch norm and linear layers with PyTorch's names and inits
//! - `encoder`: MLP, small CNN, ResNet-18 (2-D, or per frame with 3-D pooling)
//! - `fusion`: concat (Eq. 2 split), sum, shared for N modalities; FiLM, gated for two
//! - `model`: one encoder per modality (two or more) and a head in one VarStore
//! - `shapley`: exact Shapley modality contributions over every subset of modalities
//! - `gradients`: per-loss gradient capture, group inner products, Hessian-vector products
//! - `removal`: modality removal at the input, the features or the logits (CML, sample valuation)
//! - `teacher`: frozen unimodal teachers trained before a run (UMT)
//! - `inference`: predict, evaluate, collect gaps and features over a split (no gradients)
//! - `loss`: warm-up (Eq. 10) and adaptive (Eq. 11) losses, term by term
//! - `declaration`: what a method is, as data (`MethodSpec`), and a configured method
//! - `weights`: the adaptive loss's per-sample weights
//! - `method`: the `Method` trait, its step and epoch contexts, and the helpers methods share
//! - `methods`: every Table II row as one `Method` (concat, the paper's objectives, G-Blending,
//!   OGM-GE, AGM, MMCosine, OPM&OGM) hooked into the one step loop
//! - `optim`: SGD / Adam / AdamW with PyTorch's update rules, LR schedules
//! - `options`: each method's option table, checked before training
//! - `metrics`: accuracy, macro-F1, per-class accuracy
//! - `trainer`: step (a method's loss, backward, its gradient changes, update), epoch, predict,
//!   evaluate, collect
//! - `checkpoint`: model + optimizer + script state per epoch, written atomically

pub mod anchors;
pub mod autocast;
pub mod checkpoint;
pub mod declaration;
pub mod encoder;
pub mod filter_masks;
pub mod fusion;
pub mod grad_stats;
pub mod gradients;
pub mod guides;
pub mod head_stage;
pub mod inference;
pub mod layers;
pub mod loss;
pub mod loss_scale;
pub mod memory_format;
pub mod method;
pub mod methods;
pub mod metrics;
pub mod mmtm;
pub mod model;
pub mod optim;
pub mod options;
pub mod owned_layer;
pub mod probe;
pub mod removal;
pub mod shapley;
pub mod teacher;
pub mod term_kinds;
pub mod trainer;
pub mod weights;
