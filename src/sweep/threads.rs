//! Torch's thread count from the environment a sweep backend sets: `GAPSCOPE_THREADS` (the local
//! backend divides the cores among its processes), else Slurm's `SLURM_CPUS_PER_TASK`, else
//! libtorch's default (every core, which oversubscribes a node shared by several tasks).

/// The thread count the environment asks for, if any; an unusable value is ignored with a warning.
pub fn from_env() -> Option<usize> {
    for var in ["GAPSCOPE_THREADS", "SLURM_CPUS_PER_TASK"] {
        if let Ok(v) = std::env::var(var) {
            match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => return Some(n),
                _ => eprintln!("warning: {var}={v:?} is not a positive thread count; ignored"),
            }
        }
    }
    None
}

/// Applies `from_env()` to libtorch (intra-op threads), once at start.
pub fn apply_from_env() {
    if let Some(n) = from_env() {
        tch::set_num_threads(n as i32);
    }
}

/// Threads for each of `jobs` processes sharing this machine's cores.
pub fn per_process(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    (cores / jobs.max(1)).max(1)
}
