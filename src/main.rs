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
        gapscope::interrupt::install_stop_handler();
        Ok(())
    }
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
        #[command(flatten)]
        limits: Limits,
    },
    /// Print docs/api.md (the reference of every registered function) to stdout.
    Api,
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
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
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
        Command::Run { file, sets, limits } => {
            let sets = sets.iter().map(|s| script::parse_set(s)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            let mut host = Host::new();
            limits.apply(&mut host)?;
            match script::run_file(&host, &file, &sets) {
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
        Command::Api => {
            print!("{}", Host::new().docs.markdown());
            Ok(ExitCode::SUCCESS)
        }
    }
}
