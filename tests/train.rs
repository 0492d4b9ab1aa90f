//! The trainer from Rhai: steps, epochs, evaluation, gap collection, the recipes, and the bad
//! inputs the issue lists. Small synthetic data keeps it fast.

mod common;
use common::*;

const DATA: &str =
    "let data = dataset(\"synthetic\", #{ n: 240, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 });";

#[test]
fn epochs_lower_the_loss_and_evaluation_reports_every_score() {
    let src = format!(
        "{DATA} let m = model(data, #{{ seed: 1 }}); let o = optimizer(m, #{{ kind: \"adam\", lr: 0.01 }});
        let first = train_epoch(m, o, data.train, #{{ batch: 32, seed: 0, quiet: true }});
        let last = ();
        for e in 1..6 {{ last = train_epoch(m, o, data.train, #{{ batch: 32, seed: e, quiet: true }}); }}
        let ev = evaluate(m, data.test);
        [first.loss, last.loss, ev.acc, ev.f1, ev.acc_first, ev.acc_second, first.keys().len]"
    );
    let v: Vec<f64> =
        eval_ok(&src).into_array().unwrap().iter().map(|x| x.as_float().unwrap_or_else(|_| x.as_int().unwrap() as f64)).collect();
    assert!(v[1] < v[0] * 0.8, "loss {} -> {}", v[0], v[1]);
    assert!(v[2] > 0.6 && v[2] <= 1.0 && v[3] > 0.0, "{v:?}");
    assert_eq!(v[6], 4.0); // loss, ce_fused, ce_first, ce_second
}

#[test]
fn one_step_returns_every_adaptive_term_and_same_seed_same_result() {
    let src = format!("{DATA} let m = model(data, #{{ seed: 2 }}); let o = optimizer(m, #{{}});
        let c = collect_gaps(m, data.train, \"kl\");
        let zs = c.gaps.zscore_stats();
        let mix = fit_mixture(zs.z, #{{ k: 2, raw: zs }});
        let table = weight_table(data.train, mix.balance_weights(zs.z));
        let out = ();
        for b in data.train.batches(#{{ batch: 16, seed: 4 }}) {{ out = train_step(m, o, b, #{{ loss: \"adaptive\", weights: table, gap: \"kl\", t: 2, rho: 0.9 }}); break; }}
        out");
    let a = eval_ok(&src).cast::<rhai::Map>();
    for key in ["loss", "fusion", "gap_reg", "gap_align", "ce_fused", "ce_first", "ce_second", "gap"] {
        assert!(a.contains_key(key), "missing {key}: {a:?}");
    }
    let b = eval_ok(&src).cast::<rhai::Map>();
    assert_eq!(a["loss"].as_float().unwrap(), b["loss"].as_float().unwrap());
    // loss = mean(alpha w0 CE_f) + rho^t mean(beta g^2 + gamma w1 (g - mu0)^2 + CE_a + CE_v)
    let f = |k: &str| a[k].as_float().unwrap();
    let want = f("fusion") + 0.81 * (f("gap_reg") + f("gap_align") + f("ce_first") + f("ce_second"));
    assert!((f("loss") - want).abs() < 1e-5, "{} vs {want}", f("loss"));
}

#[test]
fn recipes_run_and_report_last_and_best_epochs_with_their_fits() {
    let src = format!("{DATA} import \"train\" as tr; let m = model(data, #{{ seed: 1 }});
        let r = tr::two_stage(data, m, #{{ warmup: 2, epochs: 2, refit: 1, lr: 0.01 }});
        let p = tr::purify(data, model(data, #{{ seed: 1 }}), #{{ warmup: 1, epochs: 1, tau: 0.5 }});
        [r.history.len, r.fits.len, r.last_epoch, \"best_epoch\" in r, r.best.rule, p.kept_fraction > 0.0 && p.kept_fraction <= 1.0, r.history[2].stage]");
    let v = format!("{:?}", eval_ok(&src));
    assert_eq!(v, "[4, 2, 3, true, \"best validation accuracy\", true, \"adaptive\"]");
}

#[test]
fn bad_inputs_are_errors_that_say_what_to_do() {
    let e = eval_err(&format!("{DATA} let m = model(data); let t = weight_table(data.train, zeros([5, 2])); t"));
    assert!(e.contains("weights: expected [") && e.contains("same split"), "{e}");
    let e = eval_err(&format!(
        "{DATA} let m = model(data); let m2 = model(data, #{{ fusion: \"sum\" }}); let o = optimizer(m2, #{{}});
        for b in data.train.batches(#{{}}) {{ train_step(m, o, b, #{{}}); }}"
    ));
    assert!(e.contains("optimizer was built for another model"), "{e}");
    let e = eval_err(&format!(
        "{DATA} let m = model(data); let o = optimizer(m, #{{}});
        for b in data.train.batches(#{{ batch: 4 }}) {{ b.labels = b.labels + 7; train_step(m, o, b, #{{}}); }}"
    ));
    assert!(e.contains("outside [0, 3)"), "{e}");
    let e = eval_err(&format!(
        "{DATA} let m = model(data); let o = optimizer(m, #{{}}); train_epoch(m, o, data.train, #{{ loss: \"adaptive\" }})"
    ));
    assert!(e.contains("weight_table"), "{e}");
    let e = eval_err(&format!(
        "{DATA} let m = model(data); let o = optimizer(m, #{{ lr: 1e30 }});
        for e in 0..3 {{ train_epoch(m, o, data.train, #{{ quiet: true, epoch: e }}); }}"
    ));
    assert!(e.contains("epoch") && e.contains("step") && e.contains("loss term"), "{e}");
    let e = eval_err(&format!("{DATA} model(data, #{{ encoders: [\"transformer\", \"mlp\"] }})"));
    assert!(e.contains("unknown encoder"), "{e}");
}

#[test]
fn live_batch_weights_follow_the_current_gaps_under_the_fitted_mixture() {
    // One step with weights from the live batch equals one step with a weight table built from
    // the same model's gaps on that same batch (nothing has changed in between).
    let src = format!("fn tr_two_stage(data) {{ import \"train\" as tr; tr::two_stage(data, model(data, #{{ seed: 1 }}), #{{ warmup: 1, epochs: 1, weights: \"live\" }}).history.len }}
        {DATA} let m = model(data, #{{ seed: 2 }});
        let c = collect_gaps(m, data.train, \"prob\");
        let zs = c.gaps.zscore_stats();
        let mix = fit_mixture(zs.z, #{{ k: 2, raw: zs }});
        let table = weight_table(data.train, mix.balance_weights(zs.z));
        let b = ();
        for x in data.train.batches(#{{ batch: 16, seed: 4 }}) {{ b = x; break; }}
        let live = train_step(m, optimizer(m, #{{}}), b, #{{ loss: \"adaptive\", weights: mix }});
        let m2 = model(data, #{{ seed: 2 }});
        let stored = train_step(m2, optimizer(m2, #{{}}), b, #{{ loss: \"adaptive\", weights: table }});
        let r = tr_two_stage(data);
        [live.loss, stored.loss, r]");
    let v = eval_ok(&src).into_array().unwrap();
    let (live, stored) = (v[0].as_float().unwrap(), v[1].as_float().unwrap());
    // collect_gaps runs in eval mode, the step in train mode (batch-norm free MLPs here, so the
    // logits agree to float precision).
    assert!((live - stored).abs() < 1e-5, "live {live} vs stored {stored}");
    assert_eq!(v[2].as_int().unwrap(), 2);
    let e = eval_err(&format!(
        "{DATA} let m = model(data); let o = optimizer(m, #{{}}); train_epoch(m, o, data.train, #{{ loss: \"adaptive\", weights: 3 }})"
    ));
    assert!(e.contains("the fitted mixture itself"), "{e}");
}

#[test]
fn a_step_without_a_method_trains_concat_as_the_recipes_do() {
    // The recipes default to concat; a bare train_step / train_epoch must train the same loss.
    let src = format!(
        "{DATA} let b = (); for x in data.train.batches(#{{ batch: 16 }}) {{ b = x; break; }}
        let m1 = model(data, #{{ seed: 4 }}); let m2 = model(data, #{{ seed: 4 }});
        let bare = train_step(m1, optimizer(m1, #{{}}), b, #{{}});
        let named = train_step(m2, optimizer(m2, #{{}}), b, #{{ method: \"concat\" }});
        let e1 = train_epoch(m1, optimizer(m1, #{{}}), data.train, #{{ seed: 1, quiet: true }});
        let e2 = train_epoch(m2, optimizer(m2, #{{}}), data.train, #{{ seed: 1, quiet: true, method: \"concat\" }});
        [bare.loss, named.loss, bare.ce_fused, e1.loss, e2.loss]"
    );
    let v: Vec<f64> = eval_ok(&src).into_array().unwrap().iter().map(|x| x.as_float().unwrap()).collect();
    assert_eq!(v[0], v[1], "{v:?}");
    assert_eq!(v[0], v[2], "concat's loss is the fused CE alone: {v:?}");
    assert_eq!(v[3], v[4], "{v:?}");
}

#[test]
fn training_runs_on_the_device_gapscope_test_device_names() {
    // GAPSCOPE_TEST_DEVICE (cpu by default) pins where models go, here and in spawned binaries.
    let want = gapscope::tensor::device::device_name(gapscope::tensor::device::parse_device(common::test_device()).unwrap());
    let src = "let data = dataset(\"synthetic\", #{ n: 120, classes: 3, seed: 1 }); let m = model(data); \
               let o = optimizer(m, #{ lr: 0.01 }); train_epoch(m, o, data.train, #{ quiet: true }); \
               let e = evaluate(m, data.test, #{ samples: true }); print(`DEVICE ${m.device} ${e.acc >= 0.0}`); [m.device, e.acc >= 0.0]";
    assert_eq!(eval_ok(src).to_string(), format!("[\"{want}\", true]"));
    let dir = common::temp_dir("train-device");
    let path = dir.join("device.rhai");
    std::fs::write(&path, src).unwrap();
    let out = common::run_bin(&["run", path.to_str().unwrap()], "", None);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("DEVICE {want} true")), "{}", String::from_utf8_lossy(&out.stderr));
    // A device named in the variable that this machine lacks is an error, not a silent CPU run.
    if !tch::Cuda::is_available() {
        let out = common::bin().env("GAPSCOPE_DEVICE", "cuda:3").args(["run", path.to_str().unwrap()]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("GAPSCOPE_DEVICE=cuda:3") && err.contains("no CUDA device"), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn channels_last_is_a_recipe_option_and_resumes_bit_for_bit() {
    // A CNN on a [3, 8, 8] view; the whole run against one stopped after an epoch and resumed.
    let dir = common::temp_dir("train-channels-last");
    let (whole, resumed) = common::whole_and_resumed(&dir, "channels_last: true");
    assert_eq!(whole, resumed);
    // The default layout trains to the same losses within float rounding.
    let plain = eval_ok(&common::small_recipe_run(&dir, "plain", 2, "channels_last: false")).to_string();
    let (a, b) = (common::history_losses(&whole), common::history_losses(&plain));
    assert_eq!(a.len(), 3, "{whole}");
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{a:?} against {b:?}");
    }
    let e = eval_err("let data = dataset(\"synthetic\", #{ n: 60, classes: 3 }); let m = model(data); train_epoch(m, optimizer(m, #{ lr: 0.1 }), data.train, #{ channels_last: 3 })");
    assert!(e.contains("channels_last"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
