//! Splitting a pass over the data across threads. EM passes are sums over points, so each
//! thread takes a contiguous slice and the partial sums are added in slice order (the result
//! does not depend on scheduling, only on the number of slices). rayon's pool is persistent:
//! spawning threads per pass cost as much as it saved at 15k points.

/// Below this many points per slice, the hand-off costs more than it saves.
const MIN_PER_SLICE: usize = 4_000;

/// How many slices a pass over `n` points uses.
pub fn slices(n: usize) -> usize {
    (n / MIN_PER_SLICE).clamp(1, rayon::current_num_threads().min(8))
}

/// Runs `f` on contiguous slices of `x` (with the matching rows of `rows`, `width` values per
/// point) and returns the results in slice order.
pub fn map_slices<R: Send>(x: &[f64], rows: &mut [f64], width: usize, f: impl Fn(&[f64], &mut [f64]) -> R + Sync) -> Vec<R> {
    let parts = slices(x.len());
    if parts == 1 {
        return vec![f(x, rows)];
    }
    let per = x.len().div_ceil(parts);
    let mut jobs: Vec<(&[f64], &mut [f64])> = Vec::with_capacity(parts);
    let mut rest = rows;
    for xs in x.chunks(per) {
        let take = if width == 0 { 0 } else { xs.len() * width };
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(take);
        rest = tail;
        jobs.push((xs, mine));
    }
    let mut results: Vec<Option<R>> = (0..jobs.len()).map(|_| None).collect();
    rayon::scope(|scope| {
        for ((xs, mine), slot) in jobs.into_iter().zip(results.iter_mut()) {
            let f = &f;
            scope.spawn(move |_| *slot = Some(f(xs, mine)));
        }
    });
    results.into_iter().map(|r| r.expect("every slice ran")).collect()
}
