//! `gapscope kernel`: a Jupyter kernel over the REPL's session (same engine, stdlib, help and
//! value printing), so notebooks, JupyterLab and `jupyter console` run gapscope cells.
//!
//! - `zmtp`: the ZeroMQ sockets (pure Rust, blocking, a thread per peer)
//! - `wire`: Jupyter's signed multipart messages
//! - `capture`: stdout and stderr as the cell's stream output
//! - `rich`: figures inline, tables as HTML
//! - `install`: the kernelspec
//! - `watch`: the kernel ends when its parent process dies or the heartbeat stops
//!
//! Cells run on the calling thread (the interpreter's, with its large stack), one at a time,
//! in the order the shell channel delivers them. The control channel has its own thread, so
//! an interrupt or a shutdown is answered while a cell runs: an interrupt (that message, or
//! SIGINT from the stop button) stops the cell at its next statement or training batch and
//! keeps the session.

pub mod capture;
pub mod install;
pub mod rich;
pub mod watch;
pub mod wire;
pub mod zmtp;

use crate::error::{Error, Result};
use crate::host::Host;
use crate::session::{self, Evaluated, Session};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use wire::{Incoming, Signer};
use zmtp::{Publisher, Router};

/// Where the kernel's own messages go: the stderr it started with (Jupyter's log), kept aside
/// before fd 2 became the notebook's stream.
static LOG_FD: AtomicI32 = AtomicI32::new(2);

fn log(msg: &str) {
    let line = format!("gapscope kernel: {msg}\n");
    unsafe { libc::write(LOG_FD.load(Ordering::SeqCst) as RawFd, line.as_ptr().cast(), line.len()) };
}

/// The ports and key Jupyter wrote for this kernel.
struct Connection {
    ip: String,
    key: String,
    shell: u16,
    iopub: u16,
    stdin: u16,
    control: u16,
    hb: u16,
}

fn read_connection(path: &Path) -> Result<Connection> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let j: Value = serde_json::from_str(&text).map_err(|e| Error::io(path, format!("not a connection file ({e})")))?;
    let transport = j["transport"].as_str().unwrap_or("tcp");
    if transport != "tcp" {
        return Err(Error::io(path, format!("transport \"{transport}\": the gapscope kernel speaks tcp only")));
    }
    let scheme = j["signature_scheme"].as_str().unwrap_or("hmac-sha256");
    if scheme != "hmac-sha256" && !j["key"].as_str().unwrap_or("").is_empty() {
        return Err(Error::io(path, format!("signature scheme \"{scheme}\": the gapscope kernel signs with hmac-sha256")));
    }
    let port = |k: &str| -> Result<u16> {
        j[k].as_u64().and_then(|p| u16::try_from(p).ok()).ok_or_else(|| Error::io(path, format!("no {k} in the connection file")))
    };
    let ip = match j["ip"].as_str().unwrap_or("127.0.0.1") {
        "*" | "" => "0.0.0.0".to_string(),
        other => other.to_string(),
    };
    Ok(Connection {
        ip,
        key: j["key"].as_str().unwrap_or("").to_string(),
        shell: port("shell_port")?,
        iopub: port("iopub_port")?,
        stdin: port("stdin_port")?,
        control: port("control_port")?,
        hb: port("hb_port")?,
    })
}

/// Publishes on iopub on behalf of the request being handled.
#[derive(Clone)]
struct Outputs {
    signer: Arc<Signer>,
    iopub: Publisher,
    parent: Arc<Mutex<Value>>,
}

impl Outputs {
    fn publish(&self, msg_type: &str, content: Value) {
        let parent = self.parent.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.publish_for(&parent, msg_type, content);
    }

    fn publish_for(&self, parent: &Value, msg_type: &str, content: Value) {
        let topic = format!("kernel.{}.{msg_type}", self.signer.session).into_bytes();
        self.iopub.send(&self.signer.build(&[topic], msg_type, parent, &content));
    }

    fn status(&self, parent: &Value, state: &str) {
        self.publish_for(parent, "status", json!({ "execution_state": state }));
    }
}

/// Figures and progress bars into the cell's output.
struct NotebookDisplay {
    out: Outputs,
    shown: Mutex<HashSet<u64>>,
}

impl crate::display::Display for NotebookDisplay {
    fn figure(&self, path: &Path) {
        if let Some(data) = rich::figure_data(path) {
            self.out.publish("display_data", json!({ "data": data, "metadata": {}, "transient": {} }));
        }
    }

    fn progress(&self, id: u64, line: &str, _finished: bool) {
        let first = self.shown.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        let content =
            json!({ "data": { "text/plain": line }, "metadata": {}, "transient": { "display_id": format!("gapscope-progress-{id}") } });
        self.out.publish(if first { "display_data" } else { "update_display_data" }, content);
    }
}

fn kernel_info() -> Value {
    json!({
        "status": "ok",
        "protocol_version": wire::PROTOCOL_VERSION,
        "implementation": "gapscope",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "rhai",
            "version": "1.27",
            "mimetype": "text/x-rhai",
            "file_extension": ".rhai",
            // Rhai reads like JavaScript to a highlighter.
            "pygments_lexer": "javascript",
            "codemirror_mode": "javascript"
        },
        "banner": format!("gapscope {} - help for functions, help(\"name\") for one", env!("CARGO_PKG_VERSION")),
        "help_links": []
    })
}

/// Answers a shutdown request and ends the process (a restart is Jupyter starting a new one).
fn shut_down(out: &Outputs, msg: &Incoming, reply: impl Fn(&str, Value)) -> ! {
    let restart = msg.content["restart"].as_bool().unwrap_or(false);
    reply("shutdown_reply", json!({ "status": "ok", "restart": restart }));
    out.status(&msg.header, "dead");
    // Let the replies leave before the sockets close with the process.
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::process::exit(0);
}

/// Answers the control channel on its own thread: interrupts, shutdowns and kernel_info, even
/// while a cell runs.
fn serve_control(router: Router, inbox: std::sync::mpsc::Receiver<(&'static str, zmtp::Message)>, out: Outputs) {
    std::thread::spawn(move || {
        while let Ok((_, frames)) = inbox.recv() {
            let msg = match out.signer.parse(frames) {
                Ok(m) => m,
                Err(e) => {
                    log(&format!("control: dropped a message ({e})"));
                    continue;
                }
            };
            let reply = |kind: &str, content: Value| router.send(&out.signer.build(&msg.identities, kind, &msg.header, &content));
            match msg.msg_type() {
                "interrupt_request" => {
                    crate::interrupt::request();
                    reply("interrupt_reply", json!({ "status": "ok" }));
                }
                "shutdown_request" => shut_down(&out, &msg, reply),
                "kernel_info_request" => reply("kernel_info_reply", kernel_info()),
                other => log(&format!("control: no handler for {other}")),
            }
        }
    });
}

extern "C" fn on_sigint(_: libc::c_int) {
    // An atomic store only, as a signal handler must.
    crate::interrupt::request();
}

/// Runs the kernel for the connection file until a shutdown request. Returns the exit code.
pub fn run(host: Host, connection_file: &Path) -> Result<i32> {
    let conn = read_connection(connection_file)?;
    let bind = |port: u16| {
        zmtp::bind(&conn.ip, port)
            .map(|(l, _)| l)
            .map_err(|e| Error::io(connection_file, format!("cannot listen on {}:{port} ({e})", conn.ip)))
    };
    let (shell_l, control_l, stdin_l, iopub_l, hb_l) =
        (bind(conn.shell)?, bind(conn.control)?, bind(conn.stdin)?, bind(conn.iopub)?, bind(conn.hb)?);
    let signer = Arc::new(Signer::new(&conn.key));
    let iopub = Publisher::default();
    iopub.serve(iopub_l);
    let pings = watch::Pings::default();
    let stamp = pings.clone();
    zmtp::serve_echo(hb_l, Arc::new(move || stamp.stamp()));
    let (shell_tx, shell_rx) = channel();
    let shell = Router::default();
    shell.serve(shell_l, "shell", shell_tx.clone());
    // Nothing is asked on stdin (scripts do not read input); peers may still connect.
    Router::default().serve(stdin_l, "stdin", channel().0);
    let out = Outputs { signer: signer.clone(), iopub: iopub.clone(), parent: Arc::new(Mutex::new(json!({}))) };
    let (control_tx, control_rx) = channel();
    let control = Router::default();
    control.serve(control_l, "control", control_tx);
    serve_control(control, control_rx, out.clone());

    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let streams = out.clone();
    let (capture, log_fd) =
        capture::Capture::start(Arc::new(move |name, text| streams.publish("stream", json!({ "name": name, "text": text }))))
            .map_err(|e| Error::arg(format!("kernel: cannot capture stdout and stderr ({e})")))?;
    LOG_FD.store(log_fd, Ordering::SeqCst);
    crate::display::install(Arc::new(NotebookDisplay { out: out.clone(), shown: Mutex::new(HashSet::new()) }));

    let mut kernel = Kernel { session: Session::new(host), out, shell, capture, count: 0, builtins: Vec::new() };
    kernel.builtins = session::builtin_names(&kernel.session);
    watch::start(pings, log);
    kernel.out.status(&json!({}), "starting");
    while let Ok((_, frames)) = shell_rx.recv() {
        match kernel.out.signer.parse(frames) {
            Ok(msg) => {
                // A gapscope bug must not end the session: log it, say idle, take the next cell.
                let header = msg.header.clone();
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kernel.handle(msg))).is_err() {
                    log(&format!("internal error while handling {}; the session goes on", header["msg_type"]));
                    kernel.out.status(&header, "idle");
                }
            }
            Err(e) => log(&format!("shell: dropped a message ({e})")),
        }
    }
    Ok(0)
}

struct Kernel {
    session: Session,
    out: Outputs,
    shell: Router,
    capture: capture::Capture,
    /// Executions so far (the `In [n]` of the notebook).
    count: u64,
    builtins: Vec<String>,
}

/// A `cursor_pos` (Unicode code points, protocol 5.2+) as a byte offset into `code`.
fn byte_offset(code: &str, cursor: usize) -> usize {
    code.char_indices().nth(cursor).map_or(code.len(), |(i, _)| i)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifier around a byte offset.
fn word_at(code: &str, at: usize) -> &str {
    let start = code[..at].rfind(|c: char| !is_word(c)).map_or(0, |i| i + code[i..].chars().next().map_or(1, |c| c.len_utf8()));
    let end = code[at..].find(|c: char| !is_word(c)).map_or(code.len(), |i| at + i);
    &code[start..end]
}

impl Kernel {
    fn reply(&self, to: &Incoming, msg_type: &str, content: Value) {
        self.shell.send(&self.out.signer.build(&to.identities, msg_type, &to.header, &content));
    }

    fn handle(&mut self, msg: Incoming) {
        *self.out.parent.lock().unwrap_or_else(|p| p.into_inner()) = msg.header.clone();
        self.out.status(&msg.header, "busy");
        match msg.msg_type() {
            "kernel_info_request" => self.reply(&msg, "kernel_info_reply", kernel_info()),
            "execute_request" => self.execute(&msg),
            "complete_request" => self.complete(&msg),
            "inspect_request" => self.inspect(&msg),
            "is_complete_request" => self.is_complete(&msg),
            "history_request" => self.reply(&msg, "history_reply", json!({ "status": "ok", "history": [] })),
            "comm_info_request" => self.reply(&msg, "comm_info_reply", json!({ "status": "ok", "comms": {} })),
            "shutdown_request" => shut_down(&self.out, &msg, |kind, content| self.reply(&msg, kind, content)),
            other => log(&format!("shell: no handler for {other}")),
        }
        self.out.status(&msg.header, "idle");
    }

    fn execute(&mut self, msg: &Incoming) {
        let code = msg.content["code"].as_str().unwrap_or("").to_string();
        let silent = msg.content["silent"].as_bool().unwrap_or(false);
        if !silent && msg.content["store_history"].as_bool().unwrap_or(true) {
            self.count += 1;
        }
        let n = self.count;
        if !silent {
            self.out.publish("execute_input", json!({ "code": code, "execution_count": n }));
        }
        self.session.source = format!("cell[{n}]");
        crate::interrupt::reset();
        let evaluated = self.session.evaluate(&code, 1);
        let interrupted = crate::interrupt::last().is_some();
        let shown = match evaluated {
            Evaluated::Value(v) if !v.is_unit() => {
                let mut data = json!({ "text/plain": self.session.render(v.clone()) });
                if let Some(f) = v.try_cast::<crate::host::frame::ScriptFrame>() {
                    data["text/html"] = Value::String(rich::frame_html(&f.0));
                }
                Ok(Some(data))
            }
            Evaluated::Value(_) => Ok(None),
            Evaluated::Output(s) if s.is_empty() => Ok(None),
            Evaluated::Output(s) => Ok(Some(json!({ "text/plain": s }))),
            Evaluated::Quit => {
                Ok(Some(json!({ "text/plain": "the kernel keeps running: stop it from the notebook (Kernel > Shut Down)" })))
            }
            Evaluated::Failed(e) => Err(e),
        };
        let _ = std::io::stdout().flush();
        self.capture.flush();
        match shown {
            Ok(data) => {
                if let (Some(data), false) = (data, silent) {
                    self.out.publish("execute_result", json!({ "execution_count": n, "data": data, "metadata": {} }));
                }
                self.reply(msg, "execute_reply", json!({ "status": "ok", "execution_count": n, "user_expressions": {}, "payload": [] }));
            }
            Err(e) => {
                let ename = if interrupted { "Interrupted" } else { "Error" };
                let error = json!({ "ename": ename, "evalue": e, "traceback": [e] });
                if !silent {
                    self.out.publish("error", error.clone());
                }
                let mut content = json!({ "status": "error", "execution_count": n });
                for k in ["ename", "evalue", "traceback"] {
                    content[k] = error[k].clone();
                }
                self.reply(msg, "execute_reply", content);
            }
        }
    }

    fn complete(&self, msg: &Incoming) {
        let code = msg.content["code"].as_str().unwrap_or("");
        let cursor = msg.content["cursor_pos"].as_u64().map_or(code.chars().count(), |c| c as usize);
        let at = byte_offset(code, cursor);
        let (start, matches) = session::complete_word(&self.builtins, &self.session.local_names(), code, at);
        self.reply(
            msg,
            "complete_reply",
            json!({
                "status": "ok",
                "matches": matches,
                "cursor_start": code[..start].chars().count(),
                "cursor_end": cursor,
                "metadata": {}
            }),
        );
    }

    fn inspect(&self, msg: &Incoming) {
        let code = msg.content["code"].as_str().unwrap_or("");
        let cursor = msg.content["cursor_pos"].as_u64().map_or(code.chars().count(), |c| c as usize);
        let name = word_at(code, byte_offset(code, cursor));
        let engine = &self.session.host.engine;
        let text = if name.is_empty() {
            None
        } else {
            self.session.host.docs.detail(name, &crate::host::system::signatures_of(engine, name)).or_else(|| {
                self.session
                    .scope
                    .get(name)
                    .map(|v| format!("{name}: {}\n{}", engine.map_type_name(v.type_name()), self.session.render(v.clone())))
            })
        };
        let found = text.is_some();
        let data = text.map_or(json!({}), |t| json!({ "text/plain": t }));
        self.reply(msg, "inspect_reply", json!({ "status": "ok", "found": found, "data": data, "metadata": {} }));
    }

    fn is_complete(&self, msg: &Incoming) {
        let code = msg.content["code"].as_str().unwrap_or("");
        let status = if !self.session.is_complete(code) {
            "incomplete"
        } else if !code.trim_start().starts_with(':') && self.session.host.engine.compile(code).is_err() {
            "invalid"
        } else {
            "complete"
        };
        let mut content = json!({ "status": status });
        if status == "incomplete" {
            content["indent"] = json!("");
        }
        self.reply(msg, "is_complete_reply", content);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_positions_are_code_points() {
        let code = "let é = softm";
        assert_eq!(byte_offset(code, 13), code.len());
        assert_eq!(byte_offset(code, 5), 6);
        assert_eq!(word_at("x.softmax(1)", 4), "softmax");
        assert_eq!(word_at("help", 4), "help");
        assert_eq!(word_at("a + b", 2), "");
    }
}
