//! Mid-fusion between encoder stages (M3 of ../shared/baselines-2.md): MMTM modules (Joze et
//! al., CVPR 2020) as Greedy's code uses them (`src/balanced_mmtm.py`). After an aligned stage of
//! two encoders with maps h_0, h_1 (c_0, c_1 channels):
//!
//! ```text
//! z_m = spatial mean of h_m,  e = ReLU(W_s[z_0; z_1] + b_s)  (width (c_0 + c_1)/2),
//! g_m = σ(W_m e + b_m),  outputs h_m ⊙ g_m
//! ```
//!
//! Each module keeps a running mean of each modality's batch-mean gates, ḡ ← (mean_i g + t·ḡ)/(t + 1)
//! over its training forwards, in the model's state (so checkpoints carry it). Under curation of
//! modality c the gate of c is replaced by ḡ_c, the same vector for every sample: branch c then
//! gets no sample-specific signal from the other modality.

use super::encoder::Staged;
use super::layers::Linear;
use crate::error::{Error, Result};
use crate::tensor::{Kind, Tensor};
use tch::nn;

pub struct Mmtm {
    squeeze: Linear,
    excite: [Linear; 2],
    /// ḡ_0, ḡ_1 and the count t of training forwards (buffers).
    running: [Tensor; 2],
    steps: Tensor,
}

impl Mmtm {
    pub fn new(p: &nn::Path, c0: i64, c1: i64) -> Mmtm {
        let width = (c0 + c1) / 2;
        Mmtm {
            squeeze: Linear::new(&(p / "fc_squeeze"), c0 + c1, width),
            excite: [Linear::new(&(p / "fc_0"), width, c0), Linear::new(&(p / "fc_1"), width, c1)],
            running: [p.zeros_no_train("running_gate_0", &[c0]), p.zeros_no_train("running_gate_1", &[c1])],
            steps: p.zeros_no_train("steps", &[1]),
        }
    }

    /// The gates [B, c_m] of both modalities for these stage outputs.
    pub fn gates(&self, h: [&Staged; 2]) -> Result<[Tensor; 2]> {
        let z = Tensor::f_cat(&[h[0].squeeze()?, h[1].squeeze()?], 1)?;
        let e = self.squeeze.forward(&z)?.f_relu()?;
        Ok([self.excite[0].forward(&e)?.f_sigmoid()?, self.excite[1].forward(&e)?.f_sigmoid()?])
    }

    /// ḡ_m: the running means of the batch-mean gates.
    pub fn running(&self) -> [&Tensor; 2] {
        [&self.running[0], &self.running[1]]
    }

    /// The module on a training or evaluation forward: `train` updates the running means (with
    /// `first_for_both`, the code's bug: the second's from the first's gates, which needs equal
    /// widths), and `curate` replaces that modality's gates by its running mean afterwards.
    pub fn forward(&self, h: [Staged; 2], train: bool, curate: Option<usize>, first_for_both: bool) -> Result<[Staged; 2]> {
        let mut g = self.gates([&h[0], &h[1]])?;
        if train {
            let _guard = tch::no_grad_guard();
            let t = self.steps.f_double_value(&[0])?;
            for m in 0..2 {
                let source = if first_for_both { &g[0] } else { &g[m] };
                if source.size()[1] != self.running[m].size()[0] {
                    return Err(Error::arg("greedy_avg_bug needs both modalities' channels equal at every MMTM (the code's running mean is sized by the first)"));
                }
                let mean = source.f_detach()?.f_mean_dim([0i64].as_slice(), false, Kind::Float)?;
                let next = mean.f_add(&self.running[m].f_mul_scalar(t)?)?.f_div_scalar(t + 1.0)?;
                self.running[m].shallow_clone().f_copy_(&next)?;
            }
            let _ = self.steps.shallow_clone().f_add_scalar_(1.0)?;
        }
        if let Some(c) = curate {
            let b = g[c].size()[0];
            g[c] = self.running[c].f_unsqueeze(0)?.f_expand([b, -1], false)?.f_detach()?;
        }
        let [h0, h1] = h;
        Ok([h0.gated(&g[0])?, h1.gated(&g[1])?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn staged(t: &Tensor) -> Staged {
        Staged { h: t.shallow_clone(), batch: t.size()[0], frames: None }
    }

    fn diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn gates_running_means_and_curation() {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = Mmtm::new(&(vs.root() / "mmtm2"), 3, 4);
        let batches: Vec<[Tensor; 2]> = (0..3)
            .map(|_| [Tensor::randn([5, 3], (Kind::Float, Device::Cpu)), Tensor::randn([5, 4], (Kind::Float, Device::Cpu))])
            .collect();
        // Plain: h ⊙ g; ḡ is the mean over training forwards of each forward's batch-mean gates.
        let mut sums = [Tensor::zeros([3], (Kind::Float, Device::Cpu)), Tensor::zeros([4], (Kind::Float, Device::Cpu))];
        for [a, b] in &batches {
            let g = m.gates([&staged(a), &staged(b)]).unwrap();
            let [oa, ob] = m.forward([staged(a), staged(b)], true, None, false).unwrap();
            assert!(diff(&oa.h, &(a * &g[0])) < 1e-7 && diff(&ob.h, &(b * &g[1])) < 1e-7);
            for k in 0..2 {
                sums[k] = &sums[k] + g[k].mean_dim([0i64].as_slice(), false, Kind::Float);
            }
        }
        for k in 0..2 {
            assert!(diff(m.running()[k], &(&sums[k] / 3.0)) < 1e-6, "ḡ_{k}");
        }
        // Evaluation forwards leave ḡ as it is.
        let before = m.running()[0].copy();
        m.forward([staged(&batches[0][0]), staged(&batches[0][1])], false, None, false).unwrap();
        assert_eq!(diff(m.running()[0], &before), 0.0);
        // Curating the first: its gate is ḡ_0 (after this forward's update) on every row; the
        // second's is its own.
        let [a, b] = &batches[1];
        let g = m.gates([&staged(a), &staged(b)]).unwrap();
        let [oa, ob] = m.forward([staged(a), staged(b)], true, Some(0), false).unwrap();
        let rows = m.running()[0].unsqueeze(0).expand([5, 3], false);
        assert!(diff(&oa.h, &(a * &rows)) < 1e-7);
        assert!(diff(&ob.h, &(b * &g[1])) < 1e-7);
    }

    #[test]
    fn the_codes_bug_takes_the_seconds_mean_from_the_firsts_gates() {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = Mmtm::new(&(vs.root() / "mmtm"), 3, 3);
        let (a, b) = (Tensor::randn([4, 3], (Kind::Float, Device::Cpu)), Tensor::randn([4, 3], (Kind::Float, Device::Cpu)));
        let g = m.gates([&staged(&a), &staged(&b)]).unwrap();
        m.forward([staged(&a), staged(&b)], true, None, true).unwrap();
        assert!(diff(m.running()[1], &g[0].mean_dim([0i64].as_slice(), false, Kind::Float)) < 1e-7);
        let odd = Mmtm::new(&(vs.root() / "odd"), 3, 4);
        let b4 = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        assert!(odd.forward([staged(&a), staged(&b4)], true, None, true).is_err());
    }
}
