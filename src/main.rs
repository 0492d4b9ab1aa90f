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
        Command::Api => {
            print!("{}", Host::new().docs.markdown());
            Ok(ExitCode::SUCCESS)
        }
    }
}
