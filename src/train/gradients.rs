//! Gradients beyond the one backward of a step's loss: each loss's own gradients before the
//! update (MMPareto compares the multimodal and unimodal losses' gradients per encoder, M4 of
//! ../shared/baselines-2.md), inner products and norms over a group of tensors (an encoder's
//! gradient is one vector made of many tensors), and a Hessian-vector product by double
//! backward (LFM's learned α, M6). A gradient a loss does not reach is undefined, as PyTorch's
//! `None`; every function here reads it as zeros.

use super::loss_scale::StepScale;
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};

/// The gradient of each loss w.r.t. `params`, in order, one backward pass each, through the
/// step's loss scale (`StepScale::unit()` outside a step). The graph is kept for every pass but
/// the last, so the losses may share their forward.
pub fn per_loss(losses: &[&Tensor], params: &[&Tensor], scale: &StepScale) -> Result<Vec<Vec<Tensor>>> {
    let mut out = Vec::with_capacity(losses.len());
    for (i, loss) in losses.iter().enumerate() {
        let keep = i + 1 < losses.len();
        out.push(scale.backward(&[*loss], params, keep, false)?);
    }
    Ok(out)
}

/// Σ_t ⟨a_t, b_t⟩ over the tensors of a group (undefined gradients count as zeros), in f64.
pub fn dot(a: &[&Tensor], b: &[&Tensor]) -> Result<f64> {
    let mut total = 0.0;
    for (x, y) in a.iter().zip(b) {
        if x.defined() && y.defined() {
            total += x.f_mul(y).and_then(|p| p.f_sum(Kind::Double)).and_then(|s| s.f_double_value(&[]))?;
        }
    }
    Ok(total)
}

/// ‖g‖² of one tensor (0 for an undefined gradient), in f64.
pub fn squared_norm(g: &Tensor) -> Result<f64> {
    if !g.defined() {
        return Ok(0.0);
    }
    dot(&[g], &[g])
}

/// Scales every gradient by min(1, max / (‖g‖ + 1e-6)), ‖g‖ the norm of all of them as one
/// vector, as torch.nn.utils.clip_grad_norm_ does (DGL's recipe clips at 40, CGGM's at 0.8).
/// Returns ‖g‖ before clipping.
pub fn clip_global_norm(grads: &mut [Tensor], max: f64) -> Result<f64> {
    let mut squares = 0.0;
    for g in grads.iter() {
        squares += squared_norm(g)?;
    }
    let norm = squares.sqrt();
    let coef = max / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut().filter(|g| g.defined()) {
            *g = g.f_mul_scalar(coef)?;
        }
    }
    Ok(norm)
}

/// A method's global-norm clip (0: none) and the norm it last saw, logged as `grad_norm`.
pub struct NormClip {
    max: f64,
    last: f64,
}

impl NormClip {
    pub fn new(max: f64) -> NormClip {
        NormClip { max, last: f64::NAN }
    }

    /// Clips `grads` in place (nothing when the limit is 0).
    pub fn apply(&mut self, grads: &mut [Tensor]) -> Result<()> {
        if self.max > 0.0 {
            self.last = clip_global_norm(grads, self.max)?;
        }
        Ok(())
    }

    /// `grad_norm`, the norm before clipping, when the clip is on.
    pub fn diagnostics(&self) -> Vec<(&'static str, f64)> {
        if self.max > 0.0 {
            vec![("grad_norm", self.last)]
        } else {
            Vec::new()
        }
    }
}

/// The zero tensor shaped as `like` where `g` is undefined, else `g` itself.
pub fn or_zeros(g: &Tensor, like: &Tensor) -> Result<Tensor> {
    if g.defined() {
        Ok(g.shallow_clone())
    } else {
        like.f_zeros_like().map_err(Error::from)
    }
}

/// Rows `wrt` of the Hessian of `loss` over `params` times `v` (one tensor per parameter), by
/// double backward: H·v = ∇_wrt ⟨∇_θ L, sg(v)⟩ (only the rows asked for are computed). `loss`
/// must have been computed with the graph on; the graph is freed afterwards.
pub fn hessian_vector(loss: &Tensor, params: &[&Tensor], v: &[Tensor], wrt: &[&Tensor]) -> Result<Vec<Tensor>> {
    let grads = Tensor::f_run_backward(&[loss], params, true, true)?;
    let mut inner: Option<Tensor> = None;
    for (g, v) in grads.iter().zip(v) {
        if !g.defined() || !v.defined() {
            continue;
        }
        let term = v.f_detach().and_then(|v| g.f_mul(&v)).and_then(|p| p.f_sum(Kind::Float))?;
        inner = Some(match inner {
            None => term,
            Some(t) => t.f_add(&term)?,
        });
    }
    match inner {
        // The loss does not depend on these parameters: its Hessian there is zero.
        None => wrt.iter().map(|p| p.f_zeros_like().map_err(Error::from)).collect(),
        Some(inner) if !inner.requires_grad() => wrt.iter().map(|p| p.f_zeros_like().map_err(Error::from)).collect(),
        Some(inner) => Tensor::f_run_backward(&[&inner], wrt, false, false).map_err(Error::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_scales_all_gradients_by_one_factor_only_above_the_limit() {
        // ‖(3, 4)‖ = 5: clipped to 1 each entry is divided by 5 (+1e-6), as clip_grad_norm_.
        let mut g = vec![Tensor::from_slice(&[3.0f32]), Tensor::from_slice(&[4.0f32]), Tensor::new()];
        let norm = clip_global_norm(&mut g, 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-12);
        let (a, b) = (g[0].double_value(&[0]), g[1].double_value(&[0]));
        assert!((a - 3.0 / 5.000001).abs() < 1e-6 && (b - 4.0 / 5.000001).abs() < 1e-6, "{a} {b}");
        assert!(!g[2].defined(), "an undefined gradient stays undefined");
        let mut h = vec![Tensor::from_slice(&[3.0f32]), Tensor::from_slice(&[4.0f32])];
        clip_global_norm(&mut h, 40.0).unwrap();
        assert_eq!(h[1].double_value(&[0]), 4.0, "below the limit nothing changes");
    }

    #[test]
    fn per_loss_gradients_are_each_losss_own() {
        let w = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let a = (&w * &w).sum(Kind::Float); // ∇ = 2w
        let b = (&w * 3.0).sum(Kind::Float); // ∇ = 3
        let g = per_loss(&[&a, &b], &[&w], &StepScale::unit()).unwrap();
        assert_eq!(Vec::<f32>::try_from(&g[0][0]).unwrap(), vec![2.0, 4.0]);
        assert_eq!(Vec::<f32>::try_from(&g[1][0]).unwrap(), vec![3.0, 3.0]);
        assert_eq!(dot(&[&g[0][0]], &[&g[1][0]]).unwrap(), 18.0);
        assert_eq!(squared_norm(&g[0][0]).unwrap(), 20.0);
    }

    #[test]
    fn hessian_vector_matches_finite_differences_on_a_two_parameter_model() {
        // L(θ) = θ0²·θ1 + sin(θ1)·θ0 + θ1³: a non-quadratic loss, so the Hessian depends on θ.
        let loss_at = |t: &Tensor| {
            let (t0, t1) = (t.get(0), t.get(1));
            &t0 * &t0 * &t1 + t1.sin() * &t0 + &t1 * &t1 * &t1
        };
        let theta = Tensor::from_slice(&[0.7f64, -0.3]).set_requires_grad(true);
        let v = Tensor::from_slice(&[0.4f64, 1.3]);
        let h = hessian_vector(&loss_at(&theta), &[&theta], &[v.shallow_clone()], &[&theta]).unwrap();
        let h = Vec::<f64>::try_from(&h[0]).unwrap();
        // Central differences of the gradient along v.
        let grad_at = |t: &Tensor| {
            let t = t.detach().set_requires_grad(true);
            let g = Tensor::run_backward(&[loss_at(&t)], &[&t], false, false);
            Vec::<f64>::try_from(&g[0]).unwrap()
        };
        let e = 1e-5;
        let plus = grad_at(&(theta.detach() + &v * e));
        let minus = grad_at(&(theta.detach() - &v * e));
        for i in 0..2 {
            let fd = (plus[i] - minus[i]) / (2.0 * e);
            assert!((h[i] - fd).abs() < 1e-6, "component {i}: double backward {} vs finite differences {fd}", h[i]);
        }
    }
}
