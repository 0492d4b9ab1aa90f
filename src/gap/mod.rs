//! The modality gap (the paper's Eq. 5-7): per-sample differences between two modalities'
//! confidence, its z-score, and which modality dominates.
//!
//! - `metric`: prob and KL gaps from logits, differentiable (the adaptive loss uses them)
//! - `zscore`: standardisation with the mean and std it used
//! - `dominance`: which modality has the higher mean true-class score
//! - `matrix`: among N modalities, every pair's mean gap and each one against the others

pub mod dominance;
pub mod matrix;
pub mod metric;
pub mod zscore;

pub use dominance::{dominance, Dominance};
pub use metric::{gap, gap_against_rest, true_class_score, GapKind};
pub use zscore::{zscore, ZScore};

/// Copies a tensor to the CPU as f64 values (any float or int dtype, any device, any shape).
pub fn to_f64_vec(op: &str, t: &tch::Tensor) -> crate::error::Result<Vec<f64>> {
    let flat = crate::tensor::check(op, t.f_to_kind(tch::Kind::Double).and_then(|d| d.f_to_device(tch::Device::Cpu)))?;
    let flat = crate::tensor::check(op, flat.f_flatten(0, -1))?;
    crate::tensor::check(op, Vec::<f64>::try_from(&flat))
}
