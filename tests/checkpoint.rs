//! Checkpoints: what is saved comes back, a killed or stopped recipe resumes to the same
//! result as an uninterrupted one, and the bad cases (another architecture, another optimizer
//! kind, a NaN after the last good checkpoint) are errors that leave the checkpoint intact.

mod common;
use common::*;
use std::process::Stdio;

const DATA: &str =
    "let data = dataset(\"synthetic\", #{ n: 240, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 });";

fn dir_str(d: &std::path::Path) -> String {
    d.display().to_string().replace('\\', "/")
}

#[test]
fn model_and_optimizer_state_come_back_and_training_continues_identically() {
    let dir = temp_dir("ckpt-roundtrip");
    let d = dir_str(&dir);
    let src = format!(
        "{DATA} let m = model(data, #{{ seed: 1 }}); let o = optimizer(m, #{{ kind: \"adam\", lr: 0.01 }});
        for e in 0..2 {{ train_epoch(m, o, data.train, #{{ seed: e, quiet: true }}); }}
        let path = save_checkpoint(\"{d}/ck\", m, o, #{{ epoch: 1, note: \"two epochs\", gaps: collect_gaps(m, data.train, \"prob\").gaps, nested: #{{ a: [1, 2.5] }} }});
        let before = evaluate(m, data.test);
        let next = train_epoch(m, o, data.train, #{{ seed: 2, quiet: true }});
        let m2 = model(data, #{{ seed: 9 }}); let o2 = optimizer(m2, #{{ kind: \"adam\", lr: 0.01 }});
        let st = load_checkpoint(last_checkpoint(\"{d}/ck\"), m2, o2);
        let after = evaluate(m2, data.test);
        let next2 = train_epoch(m2, o2, data.train, #{{ seed: 2, quiet: true }});
        [before.f1 == after.f1, next.loss == next2.loss, st.epoch, st.note, st.nested.a[1], st.gaps.shape[0] == data.train.len, path.ends_with(\"epoch-0001\")]"
    );
    assert_eq!(format!("{:?}", eval_ok(&src)), "[true, true, 1, \"two epochs\", 2.5, true, true]");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn only_the_newest_checkpoints_are_kept_and_partial_folders_are_ignored() {
    let dir = temp_dir("ckpt-keep");
    let d = dir_str(&dir);
    // A half-written folder from a killed run, with a higher epoch than any complete one.
    std::fs::create_dir_all(dir.join("ck/.epoch-0009.partial-1")).unwrap();
    std::fs::create_dir_all(dir.join("ck/epoch-0008")).unwrap(); // no meta.json: incomplete
    let src = format!(
        "{DATA} let m = model(data); let o = optimizer(m, #{{}});
        for e in 0..4 {{ save_checkpoint(\"{d}/ck\", m, o, #{{ epoch: e }}, #{{ keep: 2 }}); }}
        last_checkpoint(\"{d}/ck\")"
    );
    assert!(eval_ok(&src).into_string().unwrap().ends_with("epoch-0003"));
    let mut names: Vec<String> = std::fs::read_dir(dir.join("ck"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("epoch-000") && dir.join("ck").join(n).join("meta.json").exists())
        .collect();
    names.sort();
    assert_eq!(names, ["epoch-0002", "epoch-0003"]);
    assert!(eval_ok(&format!("last_checkpoint(\"{d}/none\")")).is_unit());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn another_architecture_or_optimizer_kind_is_an_error_listing_what_differs() {
    let dir = temp_dir("ckpt-mismatch");
    let d = dir_str(&dir);
    let save = format!("{DATA} let m = model(data); let o = optimizer(m, #{{}}); save_checkpoint(\"{d}/ck\", m, o, #{{ epoch: 0 }});");
    let _ = eval_ok(&save);
    let e =
        eval_err(&format!("{DATA} let m = model(data, #{{ encoders: [\"mlp:64\", \"mlp\"] }}); load_checkpoint(\"{d}/ck/epoch-0000\", m)"));
    assert!(e.contains("does not fit this model") && e.contains("shape differs") && e.contains("audio_net.fc1.weight"), "{e}");
    let e = eval_err(&format!(
        "{DATA} let m = model(data, #{{ encoders: [\"mlp:256,256,256\", \"mlp\"] }}); load_checkpoint(\"{d}/ck/epoch-0000\", m)"
    ));
    assert!(e.contains("missing from the checkpoint (2): audio_net.fc3.bias, audio_net.fc3.weight"), "{e}");
    let e = eval_err(&format!("{DATA} let m = model(data, #{{ fusion: \"sum\" }}); load_checkpoint(\"{d}/ck/epoch-0000\", m)"));
    assert!(e.contains("not in this model (2): fusion.fc_out.bias, fusion.fc_out.weight"), "{e}");
    let e = eval_err(&format!(
        "{DATA} let m = model(data); let o = optimizer(m, #{{ kind: \"adam\" }}); load_checkpoint(\"{d}/ck/epoch-0000\", m, o)"
    ));
    assert!(e.contains("optimizer state is sgd's") && e.contains("kind: \"sgd\""), "{e}");
    let e = eval_err(&format!("{DATA} let m = model(data); save_checkpoint(\"{d}/ck\", m, (), #{{ epoch: 1, model: m }})"));
    assert!(e.contains("state.model is a Model"), "{e}");
    let e = eval_err(&format!("{DATA} let m = model(data); save_checkpoint(\"{d}/ck\", m, (), #{{}})"));
    assert!(e.contains("needs the epoch"), "{e}");
    let e = eval_err(&format!("{DATA} let m = model(data); load_checkpoint(\"{d}/nowhere\", m)"));
    assert!(e.contains("no such checkpoint"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_nan_leaves_the_last_good_checkpoint_intact() {
    let dir = temp_dir("ckpt-nan");
    let d = dir_str(&dir);
    let src = format!(
        "{DATA} let m = model(data, #{{ seed: 1 }}); let o = optimizer(m, #{{ lr: 0.01 }});
        train_epoch(m, o, data.train, #{{ seed: 0, quiet: true }});
        save_checkpoint(\"{d}/ck\", m, o, #{{ epoch: 0 }});
        let good = evaluate(m, data.test).f1;
        let bad = optimizer(m, #{{ lr: 1e30 }});
        let message = \"\";
        try {{ for e in 1..4 {{ train_epoch(m, bad, data.train, #{{ seed: e, epoch: e, quiet: true }}); save_checkpoint(\"{d}/ck\", m, bad, #{{ epoch: e }}); }} }}
        catch (err) {{ message = err; }}
        load_checkpoint(last_checkpoint(\"{d}/ck\"), m, o);
        [message.contains(\"loss term\"), last_checkpoint(\"{d}/ck\").ends_with(\"epoch-0000\"), evaluate(m, data.test).f1 == good]"
    );
    assert_eq!(format!("{:?}", eval_ok(&src)), "[true, true, true]");
    std::fs::remove_dir_all(&dir).ok();
}

/// The recipe's history (every loss and score of every epoch) and fits, printed exactly.
fn recipe_script(recipe: &str, cfg: &str, n: usize) -> String {
    recipe_script_for(recipe, cfg, n, "seed: 1")
}

/// The same with the model's options (MLA's shared head).
fn recipe_script_for(recipe: &str, cfg: &str, n: usize, model_opts: &str) -> String {
    format!(
        "let data = dataset(\"synthetic\", #{{ n: {n}, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 }});
        import \"train\" as tr;
        let r = tr::{recipe}(data, model(data, #{{ {model_opts} }}), #{{ lr: 0.01, {cfg} }});
        print(`RESULT ${{r.history}} ${{if \"fits\" in r {{ r.fits }} else {{ () }}}}`);"
    )
}

fn result_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or_else(|| panic!("no RESULT in {}", String::from_utf8_lossy(stdout)))
        .to_string()
}

fn run_script(dir: &std::path::Path, name: &str, src: &str) -> std::process::Output {
    let path = dir.join(name);
    std::fs::write(&path, src).unwrap();
    let out = run_bin(&["run", path.to_str().unwrap()], "", None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn a_stopped_recipe_resumes_to_the_result_of_an_uninterrupted_run() {
    let dir = temp_dir("ckpt-resume");
    let d = dir_str(&dir);
    for (case, (recipe, full, part)) in [
        // Stops inside the adaptive stage on an epoch that is not a refit (refit 2): the resumed
        // run rebuilds the fit from the stored gaps.
        ("two_stage", "warmup: 2, epochs: 4, refit: 2", "warmup: 2, epochs: 2, refit: 2"),
        // Stops at the end of warm-up: the resumed run resets the optimizer as the full one did.
        ("two_stage", "warmup: 2, epochs: 2, refit: 1", "warmup: 2, epochs: 0, refit: 1"),
        ("purify", "warmup: 2, epochs: 2", "warmup: 2, epochs: 1"),
        ("baseline", "warmup: 1, epochs: 2", "warmup: 1, epochs: 1"),
        // Methods with state across epochs: AGM's running means, OGM-GE's noise (seeded by the
        // global step), G-Blending's weights estimated at epoch 0 and used at epoch 1.
        ("baseline", "warmup: 1, epochs: 2, method: \"agm\"", "warmup: 1, epochs: 1, method: \"agm\""),
        ("baseline", "warmup: 1, epochs: 2, method: \"ogm-ge\"", "warmup: 1, epochs: 1, method: \"ogm-ge\""),
        (
            "baseline",
            "warmup: 1, epochs: 2, method: \"g-blending\", method_opts: #{ super_epoch: 2 }",
            "warmup: 1, epochs: 0, method: \"g-blending\", method_opts: #{ super_epoch: 2 }",
        ),
        // PMR's prototypes blend with the saved ones from the third refresh (momentum).
        (
            "baseline",
            "warmup: 1, epochs: 2, method: \"pmr\", method_opts: #{ momentum: 0.5 }",
            "warmup: 1, epochs: 1, method: \"pmr\", method_opts: #{ momentum: 0.5 }",
        ),
        // D&R resets after epochs 1 and 2 (at the start of epochs 2 and 3) from its saved θ0 and counter.
        (
            "baseline",
            "warmup: 1, epochs: 3, method: \"d&r\", method_opts: #{ every: 1, times: 2 }",
            "warmup: 1, epochs: 1, method: \"d&r\", method_opts: #{ every: 1, times: 2 }",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let uninterrupted = result_line(&run_script(&dir, "full.rhai", &recipe_script(recipe, full, 240)).stdout);
        let ck = format!("{d}/case{case}");
        run_script(&dir, "part.rhai", &recipe_script(recipe, &format!("{part}, checkpoints: \"{ck}\""), 240));
        let out = run_script(&dir, "rest.rhai", &recipe_script(recipe, &format!("{full}, checkpoints: \"{ck}\""), 240));
        assert!(String::from_utf8_lossy(&out.stdout).contains("resuming after epoch"), "{recipe} did not resume");
        assert_eq!(result_line(&out.stdout), uninterrupted, "{recipe} ({part} then {full})");
    }
    // MLA's projection matrix and round counter, on a shared head.
    let (full, part) = (
        "warmup: 1, epochs: 2, method: \"mla\", method_opts: #{ projection: \"replace\" }",
        "warmup: 1, epochs: 1, method: \"mla\", method_opts: #{ projection: \"replace\" }",
    );
    let model_opts = "seed: 1, fusion: \"shared\"";
    let uninterrupted = result_line(&run_script(&dir, "full.rhai", &recipe_script_for("baseline", full, 240, model_opts)).stdout);
    let ck = format!("{d}/mla");
    run_script(&dir, "part.rhai", &recipe_script_for("baseline", &format!("{part}, checkpoints: \"{ck}\""), 240, model_opts));
    let out = run_script(&dir, "rest.rhai", &recipe_script_for("baseline", &format!("{full}, checkpoints: \"{ck}\""), 240, model_opts));
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming after epoch"));
    assert_eq!(result_line(&out.stdout), uninterrupted, "mla");
    // BalanceBenchmark's stateful methods on their own models: LFM's learned α (updated before
    // each epoch), UMT's teachers (trained once, before epoch 0, and saved), sample
    // valuation's φ and view, ReconBoost's β and its phase optimizer (stopped between phases).
    for (name, method, model_opts) in [
        ("lfm", "method: \"lfm\", method_opts: #{ schedule: \"learned\", lr_alpha: 1.0 }", "seed: 1, fusion: \"sum\""),
        ("umt", "method: \"umt\", method_opts: #{ teacher_epochs: 2 }", "seed: 1"),
        ("sample", "method: \"sample\", method_opts: #{ warmup: 1 }", "seed: 1"),
        ("reconboost", "method: \"reconboost\", method_opts: #{ stage_epochs: 1, correct_epochs: 1 }", "seed: 1, fusion: \"shared_mlp\""),
        // InfoReg's anchors, traces and windows; G2D's teachers; CGGM's guides, their optimizer and the
        // lagged direction term (the methods of 2024-2025).
        ("inforeg", "method: \"inforeg\"", "seed: 1"),
        ("g2d", "method: \"g2d\", method_opts: #{ teacher_epochs: 2, smp_window: [0, 1] }", "seed: 1, fusion: \"sum\""),
        ("cggm", "method: \"cggm\"", "seed: 1"),
        // AMSS keeps no state, but its draws come from (seed, global step): a resume repeats them.
        ("amss", "method: \"amss\"", "seed: 1"),
        // AMCo's W* and its optimizer's momentum.
        ("amco", "method: \"amco\"", "seed: 1"),
        // AUG's grown layers (one after each epoch here), held or trained, and its score sums:
        // the resumed model rebuilds them from the checkpoint before loading.
        ("aug", "method: \"aug\", method_opts: #{ lambda: 100.0, check_every: 1 }", "seed: 1, fusion: \"boosted\""),
        (
            "aug-trained",
            "method: \"aug\", method_opts: #{ lambda: 100.0, check_every: 1, aug_new_layers: \"trained\" }",
            "seed: 1, fusion: \"boosted\"",
        ),
        // DI-MML's shared classifier, its chosen dimensions and its stage, stopped before stage 2.
        ("di-mml", "method: \"di-mml\", method_opts: #{ duc_start: 1, stage2_start: 2, tau: 1.0 }", "seed: 1, heads: \"separate\""),
        // Greedy's speed sums and curation (ε 0: curating from the unlock epoch on) and its MMTM
        // modules' running means, which are the model's.
        ("greedy", "method: \"greedy\", method_opts: #{ epsilon: 0.0 }", "seed: 1, fusion: \"sum\", mmtm: 2"),
    ] {
        let (full, part) = (format!("warmup: 1, epochs: 2, {method}"), format!("warmup: 1, epochs: 1, {method}"));
        let uninterrupted = result_line(&run_script(&dir, "full.rhai", &recipe_script_for("baseline", &full, 240, model_opts)).stdout);
        let ck = format!("{d}/{name}");
        run_script(&dir, "part.rhai", &recipe_script_for("baseline", &format!("{part}, checkpoints: \"{ck}\""), 240, model_opts));
        let out = run_script(&dir, "rest.rhai", &recipe_script_for("baseline", &format!("{full}, checkpoints: \"{ck}\""), 240, model_opts));
        assert!(String::from_utf8_lossy(&out.stdout).contains("resuming after epoch"), "{name} did not resume");
        assert_eq!(result_line(&out.stdout), uninterrupted, "{name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_killed_run_resumes_from_its_last_completed_epoch_to_the_same_result() {
    let dir = temp_dir("ckpt-kill");
    let d = dir_str(&dir);
    let cfg = "warmup: 3, epochs: 5, refit: 2";
    let uninterrupted = result_line(&run_script(&dir, "full.rhai", &recipe_script("two_stage", cfg, 1200)).stdout);
    let src = recipe_script("two_stage", &format!("{cfg}, checkpoints: \"{d}/ck\""), 1200);
    std::fs::write(dir.join("ck.rhai"), &src).unwrap();
    // Killed (SIGKILL) as soon as its second checkpoint is complete, wherever it is then.
    let mut child = bin().args(["run", dir.join("ck.rhai").to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let killed_early = common::kill_once_exists(&mut child, &dir.join("ck/epoch-0001/meta.json"));
    assert!(killed_early, "the run finished before it could be killed; make it longer");
    let out = run_script(&dir, "ck.rhai", &src);
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming after epoch"));
    assert_eq!(result_line(&out.stdout), uninterrupted);
    std::fs::remove_dir_all(&dir).ok();
}
