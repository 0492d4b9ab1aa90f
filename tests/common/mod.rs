//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod toy;

use gapscope::host::ScriptTensor;
use gapscope::script;
use gapscope::Host;
use rhai::{Dynamic, Scope};
use std::process::{Command, Output, Stdio};

/// The switch the test suites train under: GAPSCOPE_TEST_DEVICE ("cpu" by default; "cuda",
/// "cuda:N"). Every model a test builds without naming a device goes there, in this process
/// and in every gapscope it spawns (as GAPSCOPE_DEVICE). A device this machine lacks skips the
/// suite, saying so: `GAPSCOPE_TEST_DEVICE=cuda cargo test` checks the CUDA path on a GPU
/// machine with the same tests that check the CPU here.
pub const TEST_DEVICE_ENV: &str = "GAPSCOPE_TEST_DEVICE";

/// The test device's name, pinned as this process's default device on first use.
pub fn test_device() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let name = std::env::var(TEST_DEVICE_ENV).ok().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "cpu".into());
        match gapscope::tensor::device::parse_device(&name) {
            Ok(d) => {
                gapscope::tensor::device::pin_default_device(d);
            }
            Err(e) => {
                // Past the harness's capture (eprintln! inside a test is captured, then lost).
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "{TEST_DEVICE_ENV}={name}: {e}; skipping this test suite");
                std::process::exit(0);
            }
        }
        name
    })
}

/// Evaluates script source in a fresh host; the error is the formatted report.
pub fn eval(src: &str) -> Result<Dynamic, String> {
    test_device();
    let host = Host::new();
    let mut scope = Scope::new();
    let ast = script::compile(&host, &scope, "test.rhai", src).map_err(|e| e.0)?;
    script::eval(&host, &mut scope, "test.rhai", &ast).map_err(|e| e.0)
}

pub fn eval_ok(src: &str) -> Dynamic {
    eval(src).unwrap_or_else(|e| panic!("script failed: {e}\n--- script ---\n{src}"))
}

pub fn eval_err(src: &str) -> String {
    match eval(src) {
        Ok(v) => panic!("expected an error, got {v:?}\n--- script ---\n{src}"),
        Err(e) => e,
    }
}

/// A float script value.
pub fn float(src: &str) -> f64 {
    let v = eval_ok(src);
    v.as_float().or_else(|_| v.as_int().map(|i| i as f64)).unwrap_or_else(|_| panic!("not a number: {v:?}"))
}

/// A tensor result's values (flattened, as f64) and shape.
pub fn values(src: &str) -> (Vec<f64>, Vec<i64>) {
    let v = eval_ok(src);
    let t = v.try_cast::<ScriptTensor>().expect("expected a tensor");
    let t = t.tensor();
    let shape = t.size();
    let flat = t.to_kind(tch::Kind::Double).reshape([-1]);
    let n = flat.numel();
    let mut out = vec![0.0; n];
    flat.copy_data(&mut out, n);
    (out, shape)
}

pub fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len(), "length: {actual:?} vs {expected:?}");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= tol, "element {i}: {a} vs {e} (all: {actual:?} vs {expected:?})");
    }
}

/// The gapscope binary, on the test device (`test_device`).
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gapscope"));
    c.env(gapscope::tensor::device::DEVICE_ENV, test_device());
    c
}

/// Runs the binary with `args`, feeding `stdin`.
pub fn run_bin(args: &[&str], stdin: &str, cwd: Option<&std::path::Path>) -> Output {
    use std::io::Write;
    let mut cmd = bin();
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().expect("spawn gapscope");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gapscope-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Kills `child` (SIGKILL) as soon as `marker` exists, wherever the run is then; true when it
/// was still running at that moment (a run that already finished proves nothing).
pub fn kill_once_exists(child: &mut std::process::Child, marker: &std::path::Path) -> bool {
    let start = std::time::Instant::now();
    while !marker.exists() && start.elapsed() < std::time::Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok();
    child.wait().unwrap();
    running
}

/// Rhai functions giving each built-in method what it needs to train a few quick epochs:
/// `method_options(name)` (short schedules for the staged ones) and `model_for(data, name)` (the
/// fusion and heads the method requires; seed 1).
pub const METHOD_SETUPS: &str = "
    fn method_options(name) {
        switch name { \"g-blending\" => #{ super_epoch: 1 }, \"umt\" | \"g2d\" => #{ teacher_epochs: 1 }, \"sample\" => #{ warmup: 0 }, \"d&r\" => #{ every: 1 }, \"reconboost\" => #{ stage_epochs: 1, correct_epochs: 1 }, \"lfm\" => #{ schedule: \"learned\" }, \"mla\" => #{ projection: \"replace\" }, \"pmr\" => #{ source: \"train\" }, \"di-mml\" => #{ duc_start: 1, stage2_start: 2 }, _ => #{} }
    }
    fn model_for(data, name) {
        let fusion = switch name { \"mla\" => \"shared\", \"reconboost\" => \"shared_mlp\", \"lfm\" | \"g2d\" | \"greedy\" => \"sum\", \"aug\" => \"boosted\", _ => \"concat\" };
        let heads = if name == \"mmpareto\" || name == \"di-mml\" { \"separate\" } else { \"split\" };
        model(data, #{ seed: 1, fusion: fusion, heads: heads, mmtm: if name == \"greedy\" { 1 } else { 0 } })
    }
";

/// The base recipe on a small synthetic set with a CNN view ([3, 8, 8]), checkpointed under
/// `dir/name`, with `settings` added to its cfg (e.g. `channels_last: true`); the script's value
/// is `${r.history}`.
pub fn small_recipe_run(dir: &std::path::Path, name: &str, epochs: i64, settings: &str) -> String {
    format!(
        "let data = dataset(\"synthetic\", #{{ n: 120, classes: 3, audio_shape: [6], visual_shape: [3, 8, 8], seed: 2 }});\n\
         import \"train\" as tr;\n\
         let r = tr::baseline(data, model(data, #{{ seed: 1 }}), #{{ warmup: 1, epochs: {epochs}, lr: 0.05, {settings}, checkpoints: \"{}/{name}\" }});\n\
         `${{r.history}}`",
        dir.display()
    )
}

/// `small_recipe_run`'s history for two epochs uninterrupted ("whole"), and for a run stopped
/// after its warm-up epoch and resumed ("parts"): equal when resume is exact.
pub fn whole_and_resumed(dir: &std::path::Path, settings: &str) -> (String, String) {
    let whole = eval_ok(&small_recipe_run(dir, "whole", 2, settings)).to_string();
    let _ = eval_ok(&small_recipe_run(dir, "parts", 0, settings));
    let resumed = eval_ok(&small_recipe_run(dir, "parts", 2, settings)).to_string();
    (whole, resumed)
}

/// The epochs' losses in a `${r.history}` string.
pub fn history_losses(history: &str) -> Vec<f64> {
    history.split("\"loss\": ").skip(1).map(|s| s.split([',', '}']).next().unwrap().trim().parse().unwrap()).collect()
}
