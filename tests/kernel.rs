//! The notebook kernel as Jupyter runs it: `gapscope kernel install --prefix` writes the
//! kernelspec, then the real jupyter_client (PyPI) starts the installed kernel from it and
//! checks cells, state, inline figures, HTML tables, errors with positions, completion,
//! inspection, progress displays, interrupts (signal and message), restart and shutdown
//! (tests/python/kernel_client.py); nbclient executes docs/notebook.ipynb headless
//! (tests/python/run_notebook.py). Python comes from scripts/setup.sh --test.

mod common;
use common::{bin, temp_dir};
use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("GAPSCOPE_PYTHON").expect("GAPSCOPE_PYTHON is set by scripts/setup.sh in .cargo/config.toml")
}

/// Installs the kernelspec under `prefix`, plus a copy named gapscope-message that asks for
/// interrupts by message instead of SIGINT.
fn install(prefix: &Path) -> std::path::PathBuf {
    let out = bin().args(["kernel", "install", "--prefix"]).arg(prefix).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kernels = prefix.join("share/jupyter/kernels");
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(kernels.join("gapscope/kernel.json")).unwrap()).unwrap();
    let mut message = spec.clone();
    message["interrupt_mode"] = "message".into();
    std::fs::create_dir_all(kernels.join("gapscope-message")).unwrap();
    std::fs::write(kernels.join("gapscope-message/kernel.json"), message.to_string()).unwrap();
    prefix.join("share/jupyter")
}

fn jupyter(python_script: &str, args: &[&str], jupyter_path: &Path, scratch: &Path) -> String {
    // Output to a file and a wait on Python alone: a kernel left running after a failure
    // inherits Python's output, and waiting for that pipe to close would hang the test.
    let log_path = scratch.join(format!("{}.log", Path::new(python_script).file_stem().unwrap().to_string_lossy()));
    let log = std::fs::File::create(&log_path).unwrap();
    let status = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(python_script))
        .args(args)
        .env("JUPYTER_PATH", jupyter_path)
        .env("JUPYTER_RUNTIME_DIR", scratch.join("runtime"))
        .env("JUPYTER_DATA_DIR", scratch.join("data"))
        .env("JUPYTER_CONFIG_DIR", scratch.join("config"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "{python_script} failed:\n{text}");
    text
}

#[test]
fn install_writes_the_kernelspec_and_logos() {
    let prefix = temp_dir("kernel-install");
    let out = bin().args(["kernel", "install", "--prefix"]).arg(&prefix).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = prefix.join("share/jupyter/kernels/gapscope");
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("kernel.json")).unwrap()).unwrap();
    assert_eq!(spec["argv"][0].as_str().unwrap(), env!("CARGO_BIN_EXE_gapscope"));
    assert_eq!(spec["argv"][1], "kernel");
    assert_eq!(spec["language"], "rhai");
    for size in [32, 64] {
        let logo = image::open(dir.join(format!("logo-{size}x{size}.png"))).unwrap();
        assert_eq!((logo.width(), logo.height()), (size, size));
    }
    // Without a connection file the command says how it is meant to be used.
    let out = bin().arg("kernel").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("gapscope kernel install"));
    // --sys-prefix with no environment active is an error that names the way out.
    let out = bin().args(["kernel", "install", "--sys-prefix"]).env_remove("VIRTUAL_ENV").env_remove("CONDA_PREFIX").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--prefix DIR"));
}

#[test]
fn jupyter_client_runs_the_installed_kernel() {
    let scratch = temp_dir("kernel-client");
    let path = install(&scratch.join("prefix"));
    let text = jupyter("tests/python/kernel_client.py", &[scratch.to_str().unwrap()], &path, &scratch);
    assert!(text.contains("all kernel checks passed"), "{text}");
}

#[test]
fn example_notebook_executes_headless() {
    let scratch = temp_dir("kernel-notebook");
    let path = install(&scratch.join("prefix"));
    let work = scratch.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let nb = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/notebook.ipynb");
    let text = jupyter("tests/python/run_notebook.py", &[nb.to_str().unwrap(), work.to_str().unwrap()], &path, &scratch);
    assert!(text.contains("notebook ok"), "{text}");
    // The run the notebook recorded has its TensorBoard events beside its tables.
    assert!(work.join("runs/notebook/two_stage/events.out.tfevents.gapscope").is_file());
}

/// A connection file on free local ports, no signing key.
fn connection_file(dir: &Path) -> std::path::PathBuf {
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conn = serde_json::json!({
        "ip": "127.0.0.1", "transport": "tcp", "key": "", "signature_scheme": "hmac-sha256",
        "shell_port": port(), "iopub_port": port(), "stdin_port": port(), "control_port": port(), "hb_port": port(),
    });
    let path = dir.join("conn.json");
    std::fs::write(&path, conn.to_string()).unwrap();
    path
}

/// Whether process `pid` has ended (gone, or a zombie waiting for a parent to reap it).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

fn wait_ended(pid: u32, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if ended(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    ended(pid)
}

#[test]
fn a_kernel_whose_parent_dies_exits_and_says_why() {
    let dir = temp_dir("kernel-orphan");
    let conn = connection_file(&dir);
    let err = dir.join("stderr.txt");
    // A shell starts the kernel, prints its pid and exits after a second: the kernel is orphaned.
    let exe = common::bin().get_program().to_owned();
    let out = Command::new("sh")
        .args(["-c", "\"$0\" kernel --connection-file \"$1\" 2>\"$2\" & echo $!; sleep 1"])
        .arg(&exe)
        .arg(&conn)
        .arg(&err)
        .env_remove("JPY_PARENT_PID")
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let gone = wait_ended(pid, 30);
    if !gone {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(gone, "the orphaned kernel {pid} still runs; stderr: {text}");
    assert!(text.contains("gapscope kernel: its parent process") && text.contains("ended; exiting"), "{text}");

    // With JPY_PARENT_PID (as jupyter_client sets it), that process is the one watched.
    let mut parent = Command::new("sleep").arg("30").spawn().unwrap();
    let conn = connection_file(&dir);
    let mut kernel = common::bin()
        .args(["kernel", "--connection-file"])
        .arg(&conn)
        .env("JPY_PARENT_PID", parent.id().to_string())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(kernel.try_wait().unwrap().is_none(), "the kernel ended while its parent lived");
    parent.kill().unwrap();
    parent.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while kernel.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let status = kernel.try_wait().unwrap();
    if status.is_none() {
        kernel.kill().unwrap();
    }
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(status.is_some(), "the kernel outlived its JPY_PARENT_PID; stderr: {text}");
    assert!(text.contains(&format!("its parent process {} (JPY_PARENT_PID) ended", parent.id())), "{text}");
}
