//! Splitting a pass over the data across threads. EM passes are sums over points, so each
//! thread takes a contiguous slice and the partial sums are added in slice order (the result
//! does not depend on scheduling, only on the number of threads).

use std::sync::OnceLock;

/// Below this many points per thread, spawning costs more than it saves.
const MIN_PER_THREAD: usize = 6_000;

fn available() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8))
}

/// How many slices a pass over `n` points uses.
pub fn slices(n: usize) -> usize {
    (n / MIN_PER_THREAD).clamp(1, available())
}

/// Runs `f` on contiguous slices of `x` (with the matching rows of `rows`, `width` values per
/// point) and returns the results in slice order.
pub fn map_slices<R: Send>(
    x: &[f64],
    rows: &mut [f64],
    width: usize,
    f: impl Fn(&[f64], &mut [f64]) -> R + Sync,
) -> Vec<R> {
    let parts = slices(x.len());
    if parts == 1 {
        return vec![f(x, rows)];
    }
    let per = x.len().div_ceil(parts);
    std::thread::scope(|scope| {
        let f = &f;
        let mut handles = Vec::with_capacity(parts);
        let mut rest = rows;
        for xs in x.chunks(per) {
            let take = if width == 0 { 0 } else { xs.len() * width };
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(take);
            rest = tail;
            handles.push(scope.spawn(move || f(xs, mine)));
        }
        handles.into_iter().map(|h| h.join().expect("EM worker panicked")).collect()
    })
}
