//! Structured stochastic gradient masks (M14 of ../shared/baselines-3.md): per output channel of
//! a weight (a conv kernel's filter, a linear layer's row), an importance from its gradient, a
//! draw of the channels whose gradient is kept, and a weight for each kept channel. AMSS samples
//! a subnetwork this way every step; the draws come from a (seed, step) generator so a resumed
//! run repeats them.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Kind, Tensor};

/// How a channel's importance is measured from its gradient g and weight w (AMSS's `gn_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Importance {
    /// Σ g² over the channel.
    Gn,
    /// Σ g² / Σ w².
    GnWn,
    /// √(Σ g²).
    SqrtGn,
}

impl Importance {
    pub fn parse(name: &str) -> Importance {
        match name {
            "gn_wn" => Importance::GnWn,
            "sqrt_gn" => Importance::SqrtGn,
            _ => Importance::Gn,
        }
    }
}

/// How the kept channels are chosen (AMSS's `sample_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// `keep` channels drawn without replacement with probabilities q (torch.multinomial).
    Adaptive,
    /// The `keep` most important.
    TopK,
    /// `keep` channels uniformly, without replacement.
    Random,
    /// Each channel kept with probability q_j on its own (`keep` ignored).
    Bernoulli,
}

impl Sampling {
    pub fn parse(name: &str) -> Sampling {
        match name {
            "topk" => Sampling::TopK,
            "random" => Sampling::Random,
            "bernoulli" => Sampling::Bernoulli,
            _ => Sampling::Adaptive,
        }
    }
}

/// The weight a kept channel's gradient is multiplied by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeptWeight {
    /// 1 (AMSS).
    One,
    /// 1/(q_j + 1/n): AMSS+ as its code computes it (not unbiased; up to n/2 for uniform q).
    Code,
    /// 1/π_j, π_j the channel's inclusion probability in the without-replacement draw
    /// (Horvitz–Thompson: the kept gradient's expectation is the full gradient).
    Ht,
}

/// Per output channel importances of a gradient (and its weight, for `GnWn`): [n] values.
pub fn importances(grad: &Tensor, weight: &Tensor, how: Importance) -> Result<Vec<f64>> {
    let per_channel = |t: &Tensor| -> Result<Tensor> {
        let flat = t.f_to_kind(Kind::Double)?.f_flatten(1, -1)?;
        Ok(flat.f_square()?.f_sum_dim_intlist([1i64].as_slice(), false, Kind::Double)?)
    };
    let g = per_channel(&grad.f_reshape([grad.size()[0], -1])?)?;
    let v = match how {
        Importance::Gn => g,
        Importance::SqrtGn => g.f_sqrt()?,
        Importance::GnWn => g.f_div(&per_channel(&weight.f_reshape([weight.size()[0], -1])?)?)?,
    };
    Ok(Vec::<f64>::try_from(&v)?)
}

/// A draw: which channels keep their gradient, and how many of them were filled in uniformly
/// because fewer channels than asked had a non-zero importance (dead filters; torch.multinomial
/// would fail there).
#[derive(Clone, Debug, PartialEq)]
pub struct Draw {
    pub kept: Vec<usize>,
    pub filled: usize,
}

/// Normalised importances q (q_j = v_j / Σ v; non-finite or negative values count as 0).
pub fn normalise(v: &[f64]) -> Vec<f64> {
    let clean: Vec<f64> = v.iter().map(|&x| if x.is_finite() && x > 0.0 { x } else { 0.0 }).collect();
    let total: f64 = clean.iter().sum();
    if total > 0.0 {
        clean.iter().map(|x| x / total).collect()
    } else {
        vec![0.0; v.len()]
    }
}

/// Draws the kept channels from normalised importances `q`.
pub fn draw(q: &[f64], keep: usize, how: Sampling, rng: &mut Rng) -> Draw {
    let n = q.len();
    let keep = keep.min(n);
    match how {
        Sampling::Bernoulli => Draw { kept: (0..n).filter(|&j| rng.uniform() < q[j]).collect(), filled: 0 },
        Sampling::TopK => {
            let mut order: Vec<usize> = (0..n).collect();
            // Stable: ties keep the lower index first.
            order.sort_by(|&a, &b| q[b].partial_cmp(&q[a]).unwrap_or(std::cmp::Ordering::Equal));
            order.truncate(keep);
            order.sort_unstable();
            Draw { kept: order, filled: 0 }
        }
        Sampling::Random => Draw { kept: uniform_subset((0..n).collect(), keep, rng), filled: 0 },
        Sampling::Adaptive => {
            let mut left: Vec<usize> = (0..n).filter(|&j| q[j] > 0.0).collect();
            let mut kept = Vec::with_capacity(keep);
            while kept.len() < keep && !left.is_empty() {
                let mass: f64 = left.iter().map(|&j| q[j]).sum();
                let mut u = rng.uniform() * mass;
                let mut at = left.len() - 1;
                for (i, &j) in left.iter().enumerate() {
                    if u < q[j] {
                        at = i;
                        break;
                    }
                    u -= q[j];
                }
                kept.push(left.remove(at));
            }
            let filled = keep - kept.len();
            if filled > 0 {
                let dead: Vec<usize> = (0..n).filter(|&j| q[j] <= 0.0).collect();
                kept.extend(uniform_subset(dead, filled, rng));
            }
            kept.sort_unstable();
            Draw { kept, filled }
        }
    }
}

fn uniform_subset(mut from: Vec<usize>, k: usize, rng: &mut Rng) -> Vec<usize> {
    rng.shuffle(&mut from);
    from.truncate(k);
    from.sort_unstable();
    from
}

/// The multiplier of every channel: 0 where dropped, the kept weight where kept.
pub fn channel_mask(q: &[f64], d: &Draw, weight: KeptWeight) -> Vec<f64> {
    let n = q.len();
    let mut mask = vec![0.0; n];
    let pi = match weight {
        KeptWeight::Ht => Some(inclusion_probabilities(q, d.kept.len())),
        _ => None,
    };
    for &j in &d.kept {
        mask[j] = match weight {
            KeptWeight::One => 1.0,
            KeptWeight::Code => 1.0 / (q[j] + 1.0 / n as f64),
            // A filled-in dead channel has π = 0 in the draw over live ones: it keeps weight 1.
            KeptWeight::Ht => pi.as_ref().map(|p| if p[j] > 0.0 { 1.0 / p[j] } else { 1.0 }).unwrap_or(1.0),
        };
    }
    mask
}

/// Each channel's probability of being among the first `k` draws without replacement with
/// probabilities q (successive sampling), by the exponential-clock form: channel j's clock runs
/// out at E_j ~ Exp(q_j), the first k are the k earliest, so
/// π_j = ∫₀^∞ q_j e^{−q_j t} P(fewer than k other clocks before t) dt. The count of other clocks
/// is a Poisson-binomial, built once per point over all channels and divided by channel j's
/// factor; the integral is a trapezoid in ln t, where the integrand decays exponentially at both
/// ends. Σ π = k (a test checks it); zero-q channels get 0.
pub fn inclusion_probabilities(q: &[f64], k: usize) -> Vec<f64> {
    let n = q.len();
    let live: Vec<usize> = (0..n).filter(|&j| q[j] > 0.0).collect();
    let mut pi = vec![0.0; n];
    if k == 0 || live.is_empty() {
        return pi;
    }
    if k >= live.len() {
        for &j in &live {
            pi[j] = 1.0;
        }
        return pi;
    }
    let qs: Vec<f64> = live.iter().map(|&j| q[j]).collect();
    let (qmin, qmax) = qs.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let (s_lo, s_hi) = ((1e-6 / qmax).ln(), (60.0 / qmin).ln());
    let points = 400;
    let h = (s_hi - s_lo) / points as f64;
    let mut acc = vec![0.0; qs.len()];
    let m = qs.len();
    for i in 0..=points {
        let t = (s_lo + h * i as f64).exp();
        let p: Vec<f64> = qs.iter().map(|&x| -(-x * t).exp_m1()).collect();
        // Poisson-binomial of all live clocks before t.
        let mut all = vec![0.0; m + 1];
        all[0] = 1.0;
        for (c, &pj) in p.iter().enumerate() {
            for r in (1..=c + 1).rev() {
                all[r] = all[r] * (1.0 - pj) + all[r - 1] * pj;
            }
            all[0] *= 1.0 - pj;
        }
        let trap = if i == 0 || i == points { 0.5 } else { 1.0 };
        for (c, (&x, &pj)) in qs.iter().zip(&p).enumerate() {
            let fewer = fewer_than_without(&all, pj, k);
            acc[c] += trap * h * t * x * (-x * t).exp() * fewer;
        }
    }
    // Below the grid every other clock is still running (P = 1 up to O(t²)): ∫ q e^{−qt} dt.
    let t_lo = s_lo.exp();
    for (c, &j) in live.iter().enumerate() {
        pi[j] = (acc[c] - (-qs[c] * t_lo).exp_m1()).clamp(0.0, 1.0);
    }
    pi
}

/// P(count < k) of a Poisson-binomial with one member of probability p taken out of `all`
/// (the distribution with it): forward division where p ≤ ½, backward where p > ½, each the
/// stable direction.
fn fewer_than_without(all: &[f64], p: f64, k: usize) -> f64 {
    let m = all.len() - 1; // members with it; without it, counts 0..m-1
    let mut r = vec![0.0; m];
    if p <= 0.5 {
        r[0] = all[0] / (1.0 - p);
        for c in 1..m {
            r[c] = (all[c] - r[c - 1] * p) / (1.0 - p);
        }
    } else {
        r[m - 1] = all[m] / p;
        for c in (1..m).rev() {
            r[c - 1] = (all[c] - r[c] * (1.0 - p)) / p;
        }
    }
    r.iter().take(k).map(|x| x.max(0.0)).sum::<f64>().min(1.0)
}

/// g ← g ⊙ mask along the output channels (dimension 0).
pub fn apply(grad: &Tensor, mask: &[f64]) -> Result<Tensor> {
    let n = grad.size()[0];
    if mask.len() as i64 != n {
        return Err(Error::arg(format!("filter mask: {} values for {n} channels", mask.len())));
    }
    let mut shape = vec![n];
    shape.resize(grad.dim(), 1);
    let m = Tensor::from_slice(mask).f_to_kind(grad.kind())?.f_to(grad.device())?.f_reshape(shape.as_slice())?;
    grad.f_mul(&m).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusion_probabilities_of_the_specs_example() {
        // q = (0.4, 0.3, 0.2, 0.1), two draws: π = (0.71587, 0.60833, 0.44127, 0.23452).
        let pi = inclusion_probabilities(&[0.4, 0.3, 0.2, 0.1], 2);
        for (got, want) in pi.iter().zip([0.71587, 0.60833, 0.44127, 0.23452]) {
            assert!((got - want).abs() < 1e-5, "{pi:?}");
        }
        // Σ π = k on a wide, uneven layer.
        let q = normalise(&(0..512).map(|j| 1.0 + (j % 17) as f64 * (j % 5) as f64).collect::<Vec<_>>());
        let pi = inclusion_probabilities(&q, 200);
        assert!((pi.iter().sum::<f64>() - 200.0).abs() < 1e-6, "{}", pi.iter().sum::<f64>());
    }

    #[test]
    fn code_and_ht_weights_of_the_specs_example() {
        let q = [0.4, 0.3, 0.2, 0.1];
        let all = Draw { kept: vec![0, 1, 2, 3], filled: 0 };
        let code = channel_mask(&q, &all, KeptWeight::Code);
        for (got, want) in code.iter().zip([1.53846, 1.81818, 2.22222, 2.85714]) {
            assert!((got - want).abs() < 1e-5, "{code:?}");
        }
        let two = Draw { kept: vec![0, 3], filled: 0 };
        let ht = channel_mask(&q, &two, KeptWeight::Ht);
        assert!((ht[0] - 1.39690).abs() < 1e-4 && (ht[3] - 4.26396).abs() < 1e-4 && ht[1] == 0.0, "{ht:?}");
        // Uniform importances over 64 filters: every code weight is 32.
        let u = vec![1.0 / 64.0; 64];
        let d = Draw { kept: (0..23).collect(), filled: 0 };
        assert!(channel_mask(&u, &d, KeptWeight::Code).iter().take(23).all(|w| (w - 32.0).abs() < 1e-12));
    }

    #[test]
    fn draws_keep_exactly_k_repeat_per_stream_and_fill_dead_filters() {
        let q = normalise(&[5.0, 1.0, 0.0, 3.0, 2.0, 0.0, 4.0, 1.0]);
        let a = draw(&q, 5, Sampling::Adaptive, &mut Rng::stream(7, 3));
        assert_eq!(a.kept.len(), 5);
        assert_eq!(a, draw(&q, 5, Sampling::Adaptive, &mut Rng::stream(7, 3)));
        assert!(a.kept.iter().all(|&j| q[j] > 0.0) && a.filled == 0);
        // Seven asked, six alive: one dead filter filled in, and counted.
        let b = draw(&q, 7, Sampling::Adaptive, &mut Rng::stream(7, 3));
        assert_eq!((b.kept.len(), b.filled), (7, 1));
        assert_eq!(draw(&q, 3, Sampling::TopK, &mut Rng::new(0)).kept, vec![0, 3, 6]);
        assert_eq!(draw(&q, 4, Sampling::Random, &mut Rng::new(1)).kept.len(), 4);
        // Adaptive draws follow q: over many draws of one, the frequencies approach q.
        let mut hits = [0usize; 8];
        let mut rng = Rng::new(11);
        for _ in 0..20000 {
            hits[draw(&q, 1, Sampling::Adaptive, &mut rng).kept[0]] += 1;
        }
        for j in 0..8 {
            assert!((hits[j] as f64 / 20000.0 - q[j]).abs() < 0.01, "{hits:?}");
        }
    }

    #[test]
    fn importances_and_apply_work_per_output_channel() {
        let g = Tensor::from_slice(&[1.0f32, 2.0, 0.0, 3.0]).reshape([2, 2, 1, 1]);
        let w = Tensor::from_slice(&[1.0f32, 1.0, 2.0, 0.0]).reshape([2, 2, 1, 1]);
        assert_eq!(importances(&g, &w, Importance::Gn).unwrap(), vec![5.0, 9.0]);
        assert_eq!(importances(&g, &w, Importance::SqrtGn).unwrap(), vec![5f64.sqrt(), 3.0]);
        assert_eq!(importances(&g, &w, Importance::GnWn).unwrap(), vec![2.5, 2.25]);
        let out = apply(&g, &[0.0, 2.0]).unwrap();
        assert_eq!(Vec::<f32>::try_from(out.reshape([-1])).unwrap(), vec![0.0, 0.0, 0.0, 6.0]);
    }

    #[test]
    fn horvitz_thompson_masks_are_unbiased_and_the_codes_are_not() {
        // Over many adaptive draws the mean HT multiplier of every channel is 1; the code's is not.
        let q = normalise(&[6.0, 3.0, 2.0, 1.0, 1.0, 0.5]);
        let (mut ht, mut code) = (vec![0.0; 6], vec![0.0; 6]);
        let pi = inclusion_probabilities(&q, 3);
        let mut rng = Rng::new(5);
        let draws = 40000;
        for _ in 0..draws {
            let d = draw(&q, 3, Sampling::Adaptive, &mut rng);
            for &j in &d.kept {
                ht[j] += 1.0 / pi[j] / draws as f64;
            }
            for (a, m) in code.iter_mut().zip(channel_mask(&q, &d, KeptWeight::Code)) {
                *a += m / draws as f64;
            }
        }
        assert!(ht.iter().all(|m| (m - 1.0).abs() < 0.03), "{ht:?}");
        assert!(code.iter().any(|m| (m - 1.0).abs() > 0.3), "{code:?}");
    }
}
