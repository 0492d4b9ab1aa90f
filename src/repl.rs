//! The interactive REPL: persistent history, multi-line input, completion, `help`, `:load`,
//! `:time`, `:vars`, `:quit`; Ctrl-C cancels a line or interrupts a running statement. With
//! stdin not a terminal it reads statements from stdin so another program can drive it. The
//! session it feeds (state, commands, completion) is `session.rs`, shared with the kernel.

use crate::host::Host;
use crate::session::{builtin_names, complete_word, is_complete, Outcome, Session, SOURCE};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;

struct ReplHelper {
    /// A bare engine for the parser-based completeness check (the session's is borrowed elsewhere).
    parser: rhai::Engine,
    builtins: Vec<String>,
    locals: Rc<RefCell<Vec<String>>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;
    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = complete_word(&self.builtins, &self.locals.borrow(), line, pos);
        Ok((start, words.into_iter().map(|w| Pair { display: w.clone(), replacement: w }).collect()))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        let complete = input.trim_start().starts_with(':')
            || (is_complete(input) && !matches!(self.parser.compile(input), Err(e) if matches!(*e.0, rhai::ParseErrorType::UnexpectedEOF)));
        Ok(if complete { ValidationResult::Valid(None) } else { ValidationResult::Incomplete })
    }
}
impl Helper for ReplHelper {}

fn history_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("GAPSCOPE_HISTORY")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share/gapscope/history")))?;
    if let Some(dir) = base.parent() {
        std::fs::create_dir_all(dir).ok()?;
    }
    Some(base)
}

/// Entry point of `gapscope` / `gapscope repl`. Returns the process exit code.
pub fn run(host: Host) -> i32 {
    let mut session = Session::new(host);
    if std::io::stdin().is_terminal() {
        interactive(&mut session)
    } else {
        piped(&mut session, std::io::stdin().lock())
    }
}

/// Reads statements from a non-terminal input as they arrive, evaluating each complete one.
/// Results go to stdout, errors to stderr; the exit code is 1 when any input failed (124 / 130
/// when a --timeout or a signal stopped it). A line that is not UTF-8 is an error for that line
/// only; a statement still open at the end of the input is reported at the line it starts on,
/// and the lines after that line are read again as statements of their own, so one unclosed
/// bracket does not swallow the rest of the session.
pub fn piped(session: &mut Session, mut input: impl BufRead) -> i32 {
    let mut failed = false;
    let mut out = std::io::stdout();
    // Lines to read again (after an unfinished statement), before any more input.
    let mut replay: std::collections::VecDeque<(usize, Option<String>)> = Default::default();
    // The current statement's lines, kept for such a replay.
    let mut held: Vec<(usize, Option<String>)> = Vec::new();
    let mut buffer = String::new();
    let mut line_no = 0;
    let mut raw = Vec::new();
    loop {
        let next = match replay.pop_front() {
            Some(l) => Some(l),
            None => {
                raw.clear();
                match input.read_until(b'\n', &mut raw) {
                    Ok(0) => None,
                    Ok(_) => {
                        while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            raw.pop();
                        }
                        line_no += 1;
                        Some((line_no, String::from_utf8(raw.clone()).ok()))
                    }
                    Err(e) => {
                        eprintln!("error reading input: {e}");
                        return 1;
                    }
                }
            }
        };
        let Some((no, line)) = next else {
            if buffer.trim().is_empty() {
                break;
            }
            let start = held[0].0;
            eprintln!("{SOURCE}:{start}: input ended inside an unfinished statement that starts on this line (an unclosed bracket, string or comment); the lines after it are read on their own");
            failed = true;
            buffer.clear();
            replay.extend(held.drain(..).skip(1));
            continue;
        };
        let Some(text) = line else {
            eprintln!(
                "{SOURCE}:{no}: this line is not valid UTF-8 text; it was skipped{}",
                if buffer.is_empty() { "" } else { ", with the unfinished statement before it" }
            );
            failed = true;
            buffer.clear();
            held.clear();
            continue;
        };
        held.push((no, Some(text.clone())));
        buffer.push_str(&text);
        buffer.push('\n');
        if !session.is_complete(&buffer) {
            continue;
        }
        let input = std::mem::take(&mut buffer);
        let start = held[0].0;
        held.clear();
        crate::interrupt::reset();
        let outcome = session.eval_input_at(&input, start);
        if let Some(r) = crate::interrupt::last() {
            if let Outcome::Failed(e) = &outcome {
                eprintln!("{e}");
            }
            return i32::from(r.exit_code());
        }
        match outcome {
            Outcome::Output(s) if !s.is_empty() => {
                let _ = writeln!(out, "{}", s.trim_end());
            }
            Outcome::Output(_) => {}
            Outcome::Failed(e) => {
                failed = true;
                let _ = out.flush();
                eprintln!("{e}");
            }
            Outcome::Quit => return i32::from(failed),
        }
    }
    i32::from(failed)
}

fn interactive(session: &mut Session) -> i32 {
    // Ctrl-C while a statement runs: flag it for the engine's progress callback. At the prompt,
    // rustyline puts the terminal in raw mode and reports Ctrl-C itself.
    match ctrlc::set_handler(crate::interrupt::request) {
        // --timeout installed the stop handler already; it flags Ctrl-C the same way.
        Ok(()) | Err(ctrlc::Error::MultipleHandlers) => {}
        Err(e) => eprintln!("warning: Ctrl-C will end the session ({e})"),
    }
    let config = rustyline::Config::builder().auto_add_history(false).max_history_size(10_000).map(|b| b.build());
    let config = config.unwrap_or_default();
    let mut editor = match rustyline::Editor::<ReplHelper, rustyline::history::DefaultHistory>::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot start the line editor ({e}); reading from stdin instead");
            return piped(session, std::io::stdin().lock());
        }
    };
    let locals = Rc::new(RefCell::new(session.local_names()));
    editor.set_helper(Some(ReplHelper { parser: rhai::Engine::new_raw(), builtins: builtin_names(session), locals: locals.clone() }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "{} - help for functions, :help for commands, Ctrl-D to quit",
        session.host.engine.eval::<String>("version()").unwrap_or_default()
    );
    loop {
        match editor.readline("gapscope> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(h) = &history {
                        let _ = editor.append_history(h);
                    }
                }
                match session.eval_input(&line) {
                    Outcome::Output(s) if !s.is_empty() => println!("{}", s.trim_end()),
                    Outcome::Output(_) => {}
                    Outcome::Failed(e) => eprintln!("{e}"),
                    Outcome::Quit => break,
                }
                *locals.borrow_mut() = session.local_names();
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("input error: {e}");
                break;
            }
        }
    }
    0
}
