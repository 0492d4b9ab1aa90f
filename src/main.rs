//! The `gapscope` command line. Only argument handling lives here.

use anyhow::Result;
use clap::{Parser, Subcommand};
use gapscope::{repl, script, Host};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "gapscope", version, about = "Quantify and correct multimodal imbalance, scripted in Rhai over libtorch.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// How long and how much a script may run (docs/reliability.md).
#[derive(clap::Args, Clone, Default)]
struct Limits {
    /// Stop the script after this many seconds (exit status 124), as `timeout(1)` would, but at
    /// a statement or batch boundary so no file is left half-written.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Stop a script after this many Rhai operations (a runaway loop); default unlimited.
    #[arg(long, value_name = "N")]
    max_operations: Option<u64>,
    /// Stop a script when gapscope's own memory (script values, frames; not tensors) passes this
    /// many GB; default a quarter of the machine's memory.
    #[arg(long, value_name = "GB")]
    max_heap: Option<f64>,
}

impl Limits {
    fn apply(&self, host: &mut Host) -> Result<()> {
        if let Some(t) = self.timeout {
            if !(t > 0.0 && t.is_finite()) {
                anyhow::bail!("--timeout must be a positive number of seconds, got {t}");
            }
            gapscope::interrupt::start_watchdog(t);
        }
        if let Some(n) = self.max_operations {
            host.engine.set_max_operations(n);
        }
        if let Some(gb) = self.max_heap {
            if !(gb > 0.0 && gb.is_finite()) {
                anyhow::bail!("--max-heap must be a positive number of GB, got {gb}");
            }
            gapscope::heap::set_limit((gb * 1e9) as u64);
        }
        gapscope::interrupt::install_stop_handler();
        Ok(())
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    Local,
    Slurm,
    Print,
}

#[derive(Subcommand)]
enum KernelAction {
    /// Write the kernelspec (kernel.json and logos) where Jupyter finds it.
    Install {
        /// The user's Jupyter data dir (the default).
        #[arg(long, conflicts_with_all = ["prefix", "sys_prefix"])]
        user: bool,
        /// Under DIR/share/jupyter/kernels (point JUPYTER_PATH at DIR/share/jupyter).
        #[arg(long, value_name = "DIR", conflicts_with = "sys_prefix")]
        prefix: Option<PathBuf>,
        /// Into the active Python environment ($VIRTUAL_ENV or $CONDA_PREFIX).
        #[arg(long)]
        sys_prefix: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Interactive session (the default); reads statements from stdin when it is not a terminal.
    Repl {
        #[command(flatten)]
        limits: Limits,
    },
    /// Run a .rhai script.
    Run {
        /// The script to run.
        file: PathBuf,
        /// Script parameters: `--set lr=0.01` (numbers, booleans and strings parse as such).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Run even if a --set key is never read by the script or its imports (for a script that
        /// reads keys by computed names); by default such a key is an error before anything runs.
        #[arg(long)]
        allow_unused_set: bool,
        #[command(flatten)]
        limits: Limits,
    },
    /// Run an experiment grid (a table script, or any script whose runs go through ex::sweep) as
    /// independent runs: on this machine, as a Slurm job array, or as printed commands. Resumable:
    /// complete runs are never rerun. See docs/sweeps.md.
    #[command(
        after_help = "Examples:\n  gapscope sweep scripts/table2.rhai --out results/t2 --set dataset=mfeat --jobs 2\n  gapscope sweep scripts/table2.rhai --out /shared/t2 --backend slurm --partition gpu --gpus 1 --cpus 8 --time 4:00:00\n  gapscope sweep /shared/t2 --status"
    )]
    Sweep {
        /// The grid's script; or, with --status, --gather, --cancel or --task, a sweep's output folder.
        target: PathBuf,
        /// The sweep's output folder: its manifest (sweep.tsv), one folder per run, the summary.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Script parameters for every run: `--set dataset=mfeat --set seeds=5`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Run even if a --set key is never read by the script or its imports (for a script that
        /// reads keys by computed names); by default such a key is an error before anything runs.
        #[arg(long)]
        allow_unused_set: bool,
        /// local: run here, --jobs at a time; slurm: submit a job array and a gather job;
        /// print: print each incomplete run's command (for GNU parallel and other schedulers).
        #[arg(long, value_enum, default_value = "local")]
        backend: BackendArg,
        /// local: runs at a time (the cores are shared out as torch threads). Default 1.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Where each run of the sweep in TARGET stands: complete, running, queued, failed, stopped, missing.
        #[arg(long)]
        status: bool,
        /// Write the summary (Markdown, CSV, figure) of the sweep in TARGET from its complete runs.
        #[arg(long)]
        gather: bool,
        /// Cancel the Slurm jobs of the sweep in TARGET that are still queued or running (resumable).
        #[arg(long)]
        cancel: bool,
        /// Run one run of the sweep in TARGET, by its key (what the array tasks and local workers run).
        #[arg(long, value_name = "KEY")]
        task: Option<String>,
        /// Take over an output folder planned from another script or settings (complete runs are kept).
        #[arg(long)]
        replan: bool,
        /// A run that has started this many times without finishing fails (a requeue loop).
        #[arg(long, default_value_t = 10)]
        max_starts: u32,
        /// Delete each run's checkpoints once it is complete (they exist for resuming; two
        /// ResNet-18 encoders with SGD momentum take about 340 MB a run).
        #[arg(long)]
        prune_checkpoints: bool,
        /// slurm: the partition (`sbatch --partition`).
        #[arg(long)]
        partition: Option<String>,
        /// slurm: each task's time limit (`--time`, e.g. 4:00:00).
        #[arg(long)]
        time: Option<String>,
        /// slurm: GPUs per task (`--gres=gpu:N`).
        #[arg(long)]
        gpus: Option<u32>,
        /// slurm: CPUs per task (`--cpus-per-task`; also the task's torch threads).
        #[arg(long)]
        cpus: Option<u32>,
        /// slurm: memory per task (`--mem`, e.g. 16G).
        #[arg(long)]
        mem: Option<String>,
        /// slurm: the account to charge (`--account`).
        #[arg(long)]
        account: Option<String>,
        /// slurm: the quality of service (`--qos`).
        #[arg(long)]
        qos: Option<String>,
        /// slurm: at most this many tasks at once (`--array=...%N`).
        #[arg(long, value_name = "N")]
        max_parallel: Option<usize>,
        /// slurm: the largest job array (default: the cluster's MaxArraySize); longer sweeps are split.
        #[arg(long, value_name = "N")]
        array_limit: Option<usize>,
        /// slurm: seconds before the time limit at which a task stops and requeues itself.
        #[arg(long, default_value_t = 180, value_name = "SECONDS")]
        signal_before: u32,
        /// slurm: another #SBATCH option for the tasks, verbatim (repeatable): --sbatch=--constraint=a100
        #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
        sbatch: Vec<String>,
        /// No progress bar or notes.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print docs/api.md (the reference of every registered function) to stdout.
    Api,
    /// A Jupyter kernel (`gapscope kernel install` once, then pick "gapscope (Rhai)" in a
    /// notebook); Jupyter starts it with --connection-file. See docs/notebook.md.
    Kernel {
        /// The connection file Jupyter writes (ports and key).
        #[arg(long, short = 'f', value_name = "FILE")]
        connection_file: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<KernelAction>,
    },
    /// Write (or rewrite) the TensorBoard events file of every run record under DIR, from the
    /// record's tables: for records made before runs wrote their own. Then `tensorboard --logdir DIR`.
    Tensorboard {
        /// A run folder, or a folder of them (searched recursively).
        dir: PathBuf,
    },
    /// Prepare a corpus from its raw download: split files, 1 fps frames, 16 kHz wavs and
    /// audio features, in the layout `dataset("cremad" | "ave" | "ks")` reads. Needs ffmpeg.
    Prep {
        /// cremad, ave or ks.
        corpus: String,
        /// The raw download (videos, and CREMA-D's AudioWAV).
        #[arg(long)]
        raw: PathBuf,
        /// Where the prepared corpus goes (resumable: a rerun skips finished clips).
        #[arg(long)]
        out: PathBuf,
        /// The folder holding the split files, when they are not under --raw.
        #[arg(long)]
        splits: Option<PathBuf>,
        /// Clips prepared in parallel (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Front-ends to precompute features for: letters from A, B, C, comma-separated, or
        /// "none" (default: the corpus's own: A for cremad, B for ave, C for ks).
        #[arg(long)]
        features: Option<String>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`gapscope run x.rhai | head -1`)
    // would be an error on every print; the default action ends the process quietly, as Unix
    // tools do.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // libtorch would otherwise append C++ stack traces to its error messages.
    std::env::set_var("TORCH_SHOW_CPP_STACKTRACES", "0");
    // A panic is a gapscope bug; the script runner reports it as an error instead of a crash
    // (see script::guard), so keep the default hook's noisy output away from users.
    std::panic::set_hook(Box::new(|_| {}));
    // Script values can nest deeply (an array of an array ... built in a loop), and Rhai clones,
    // compares, prints and drops them recursively: on the main thread's 8 MiB stack a depth of
    // 8,000 overflowed, which aborts the process with no error at all. The interpreter runs on
    // a thread with 1 GiB of stack instead (address space; only the pages touched are used):
    // building a value that deep takes quadratic time, days before it could overflow this.
    let worker = std::thread::Builder::new().name("gapscope".into()).stack_size(SCRIPT_STACK).spawn(run);
    let outcome = match worker {
        Ok(handle) => handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("internal error: the interpreter thread stopped unexpectedly"))),
        Err(e) => Err(anyhow::anyhow!("cannot start the interpreter thread: {e}")),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The interpreter thread's stack (see `main`).
const SCRIPT_STACK: usize = 1 << 30;

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    // Torch threads from GAPSCOPE_THREADS or SLURM_CPUS_PER_TASK, where a sweep set them.
    gapscope::sweep::threads::apply_from_env();
    match cli.command.unwrap_or(Command::Repl { limits: Limits::default() }) {
        Command::Repl { limits } => {
            let mut host = Host::new();
            // The interactive REPL has its own Ctrl-C handling (a statement stops, the session
            // stays); a piped session stops like a script.
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) || limits.timeout.is_some() {
                limits.apply(&mut host)?;
            } else if let Some(n) = limits.max_operations {
                host.engine.set_max_operations(n);
            }
            Ok(ExitCode::from(repl::run(host) as u8))
        }
        Command::Run { file, sets, allow_unused_set, limits } => {
            let sets = sets.iter().map(|s| script::parse_set(s)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            let mut host = Host::new();
            limits.apply(&mut host)?;
            // A sweep's run was checked when the sweep was planned (with the sweep's own flag).
            let planned = sets.iter().any(|(k, _)| gapscope::sweep::is_own_param(k));
            let check: Vec<&str> = if allow_unused_set || planned { Vec::new() } else { sets.iter().map(|(k, _)| k.as_str()).collect() };
            match script::run_file(&host, &file, &sets, &check) {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(gapscope::interrupt::last().map(|r| r.exit_code()).unwrap_or(1)))
                }
            }
        }
        Command::Prep { corpus, raw, out, splits, jobs, features, quiet } => {
            use gapscope::data::audio::FrontEndKind;
            use gapscope::prep::{prep, CorpusKind, PrepOptions};
            let corpus = CorpusKind::parse(&corpus)?;
            let features = match features.as_deref() {
                None => vec![corpus.default_front_end().kind],
                Some("none") => Vec::new(),
                Some(list) => list.split(',').map(|k| FrontEndKind::parse(k.trim())).collect::<Result<Vec<_>, _>>()?,
            };
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
            let report = prep(&PrepOptions { corpus, raw, out, splits, jobs, features, quiet })?;
            println!("{report}");
            Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Sweep {
            target,
            out,
            sets,
            allow_unused_set,
            backend,
            jobs,
            status,
            gather,
            cancel,
            task,
            replan,
            max_starts,
            prune_checkpoints,
            partition,
            time,
            gpus,
            cpus,
            mem,
            account,
            qos,
            max_parallel,
            array_limit,
            signal_before,
            sbatch,
            quiet,
        } => {
            use gapscope::sweep::command::{self, Backend, Launch};
            gapscope::interrupt::install_stop_handler();
            let task_opts = gapscope::sweep::task::TaskOptions { max_starts, prune_checkpoints };
            let folder_modes = status as u8 + gather as u8 + cancel as u8 + task.is_some() as u8;
            if folder_modes > 1 {
                anyhow::bail!("--status, --gather, --cancel and --task each take a sweep's folder: give one of them");
            }
            if folder_modes == 1 && out.is_some() {
                anyhow::bail!("--status, --gather, --cancel and --task take the sweep's folder in place of the script: `gapscope sweep DIR --status`, without --out");
            }
            let code = if status {
                command::show_status(&target)?
            } else if gather {
                command::gather(&target)?
            } else if cancel {
                command::cancel(&target)?
            } else if let Some(key) = task {
                command::run_task(&target, &key, task_opts)?
            } else {
                let Some(out) = out else {
                    anyhow::bail!(
                        "give the sweep's output folder: gapscope sweep {} --out DIR (or DIR --status for a sweep already planned)",
                        target.display()
                    );
                };
                if jobs == 0 {
                    anyhow::bail!("--jobs must be at least 1");
                }
                let slurm = gapscope::sweep::slurm::SlurmOptions {
                    partition,
                    time,
                    gpus,
                    cpus,
                    mem,
                    account,
                    qos,
                    max_parallel,
                    array_limit,
                    signal_before,
                    extra: sbatch,
                };
                let backend = match backend {
                    BackendArg::Local => Backend::Local,
                    BackendArg::Slurm => Backend::Slurm,
                    BackendArg::Print => Backend::Print,
                };
                command::launch(&Launch {
                    script: target,
                    out,
                    sets,
                    allow_unused_set,
                    backend,
                    jobs,
                    replan,
                    quiet,
                    slurm,
                    task: task_opts,
                })?
            };
            Ok(ExitCode::from(code))
        }
        Command::Kernel { connection_file, action } => {
            use gapscope::kernel::install::{install, Target};
            match (action, connection_file) {
                (Some(KernelAction::Install { user: _, prefix, sys_prefix }), _) => {
                    let target = match (prefix, sys_prefix) {
                        (Some(p), _) => Target::Prefix(p),
                        (None, true) => Target::SysPrefix,
                        (None, false) => Target::User,
                    };
                    let exe = std::env::current_exe()?;
                    let dir = install(&target, &exe)?;
                    println!("installed the gapscope kernelspec in {}", dir.display());
                    Ok(ExitCode::SUCCESS)
                }
                (None, Some(file)) => {
                    let code = gapscope::kernel::run(Host::new(), &file)?;
                    Ok(ExitCode::from(code as u8))
                }
                (None, None) => anyhow::bail!("gapscope kernel is started by Jupyter with --connection-file FILE; to make it available, run `gapscope kernel install` (see docs/notebook.md)"),
            }
        }
        Command::Tensorboard { dir } => {
            let runs = gapscope::results::tensorboard::run_folders(&dir)?;
            if runs.is_empty() {
                anyhow::bail!("no run records under {} (a run folder holds config.json and epochs.parquet)", dir.display());
            }
            for run in &runs {
                let path = gapscope::results::tensorboard::write_events(run, &gapscope::train::term_kinds::is_diagnostic)?;
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Api => {
            print!("{}", Host::new().docs.markdown());
            Ok(ExitCode::SUCCESS)
        }
    }
}
