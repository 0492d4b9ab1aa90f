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

#[derive(Subcommand)]
enum Command {
    /// Interactive session (the default); reads statements from stdin when it is not a terminal.
    Repl,
    /// Run a .rhai script.
    Run {
        /// The script to run.
        file: PathBuf,
        /// Script parameters: `--set lr=0.01` (numbers, booleans and strings parse as such).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
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
    match cli.command.unwrap_or(Command::Repl) {
        Command::Repl => Ok(ExitCode::from(repl::run(Host::new()) as u8)),
        Command::Run { file, sets } => {
            let sets = sets.iter().map(|s| script::parse_set(s)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            let host = Host::new();
            match script::run_file(&host, &file, &sets) {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
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
