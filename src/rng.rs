//! A small seeded random generator (SplitMix64) with the few distributions gapscope needs.
//!
//! Our own rather than the `rand` crate: a seed must give the same stream in every version of
//! gapscope, so that a recorded seed reproduces a run; `rand` does not promise that.

/// SplitMix64: 64 bits of state, passes BigCrush, and any seed (0 included) is fine.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// An independent stream for sub-task `index` of seed `seed` (e.g. the i-th initialisation).
    pub fn stream(seed: u64, index: u64) -> Self {
        let mut mixer = Rng::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Rng::new(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n); n must be > 0.
    pub fn below(&mut self, n: usize) -> usize {
        // Multiply-shift: bias below 2^-32 for any n that fits in memory.
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Standard normal (Box-Muller; one of the pair is discarded to keep the state simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang; shape > 0.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            // Boost: Gamma(a) = Gamma(a + 1) * U^(1/a).
            let u = 1.0 - self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = (1.0 + c * z).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.uniform();
            if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Student-t with `dof` degrees of freedom (standard location and scale).
    pub fn student_t(&mut self, dof: f64) -> f64 {
        let chi2 = 2.0 * self.gamma(dof / 2.0);
        self.normal() / (chi2 / dof).sqrt()
    }

    /// Standard Laplace (location 0, scale 1) by inverting its CDF.
    pub fn laplace(&mut self) -> f64 {
        let u = self.uniform() - 0.5;
        -u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Runs `f` with libtorch's global generator seeded to `seed`, holding a lock so that no other
/// thread draws from it meanwhile (the test harness builds models on several threads): the
/// draws made inside `f` depend on `seed` alone. Model initialisation and the methods' noise
/// (OGM-GE) go through here.
pub fn with_torch_seed<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    let _held = hold_torch_seed(seed);
    f()
}

static TORCH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// How many `TorchSeedHold`s this thread has open: the lock is re-entrant per thread, so a
    /// scripted method's hook that holds the generator can still build a model (which seeds it
    /// again) instead of deadlocking on itself.
    static HOLDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// libtorch's global generator, seeded and held by this thread until dropped (the guard form of
/// `with_torch_seed`, for draws spread over calls: a scripted method's `ctx.randn` in a hook).
pub struct TorchSeedHold {
    _lock: Option<std::sync::MutexGuard<'static, ()>>,
}

pub fn hold_torch_seed(seed: u64) -> TorchSeedHold {
    let lock = if HOLDS.with(|h| h.get()) == 0 { Some(TORCH_LOCK.lock().unwrap_or_else(|e| e.into_inner())) } else { None };
    HOLDS.with(|h| h.set(h.get() + 1));
    tch::manual_seed((seed & (i64::MAX as u64)) as i64);
    TorchSeedHold { _lock: lock }
}

impl Drop for TorchSeedHold {
    fn drop(&mut self) {
        HOLDS.with(|h| h.set(h.get() - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        (m, xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n)
    }

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::stream(7, 0).next_u64(), Rng::stream(7, 1).next_u64());
    }

    #[test]
    fn distributions_have_their_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let (m, v) = moments(&(0..n).map(|_| r.normal()).collect::<Vec<_>>());
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.01, "normal {m} {v}");
        let (m, v) = moments(&(0..n).map(|_| r.gamma(3.0)).collect::<Vec<_>>());
        assert!((m - 3.0).abs() < 0.03 && (v - 3.0).abs() < 0.06, "gamma {m} {v}");
        let (m, v) = moments(&(0..n).map(|_| r.laplace()).collect::<Vec<_>>());
        assert!(m.abs() < 0.01 && (v - 2.0).abs() < 0.04, "laplace {m} {v}");
        let (m, v) = moments(&(0..n).map(|_| r.student_t(6.0)).collect::<Vec<_>>());
        assert!(m.abs() < 0.02 && (v - 1.5).abs() < 0.06, "t {m} {v}");
        let (m, _) = moments(&(0..n).map(|_| r.below(10) as f64).collect::<Vec<_>>());
        assert!((m - 4.5).abs() < 0.03);
    }
}
