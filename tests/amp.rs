//! Mixed precision (`amp: "bf16" | "fp16"`): bf16 autocast trains the demo model to float32's
//! losses within a stated tolerance, fp16's loss scale skips a step whose gradients overflow and
//! recovers, the methods whose rules read gradients see them unscaled, every method trains
//! under both, and an AMP run's checkpoints resume bit for bit. On the device
//! GAPSCOPE_TEST_DEVICE names (the CPU by default).

mod common;
use common::*;

#[test]
fn bf16_trains_the_demo_model_to_float32s_losses_within_one_percent() {
    // The demo's model (mfeat pix through a CNN, fou through an MLP, concat), 4 epochs of the
    // base recipe. Measured here: every epoch's loss within 0.1%, test accuracy within 0.4 points.
    let run = |amp: &str| {
        eval_ok(&format!(
            "import \"train\" as tr;
             let data = dataset(\"mfeat\", #{{ views: [\"pix\", \"fou\"], seed: 0 }});
             let m = model(data, #{{ modalities: [\"pix\", \"fou\"], encoders: [\"cnn\", \"mlp\"], fusion: \"concat\", seed: 0 }});
             let r = tr::baseline(data, m, #{{ warmup: 2, epochs: 2, lr: 0.01, amp: \"{amp}\" }});
             [`${{r.history}}`, r.last.acc]"
        ))
        .into_array()
        .unwrap()
    };
    let (f32_run, bf16_run) = (run("none"), run("bf16"));
    let (a, b) = (history_losses(&f32_run[0].to_string()), history_losses(&bf16_run[0].to_string()));
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 0.01 * x.abs(), "float32 {a:?} against bf16 {b:?}");
    }
    assert!(a[3] < 0.6 * a[0], "float32 training did not learn: {a:?}");
    let (acc32, acc16) = (f32_run[1].as_float().unwrap(), bf16_run[1].as_float().unwrap());
    assert!((acc32 - acc16).abs() <= 0.02, "test accuracy {acc32} against bf16's {acc16}");
}

#[test]
fn fp16_skips_a_step_whose_gradients_overflow_then_recovers() {
    // Inputs 200 times too large overflow float16's gradients at the initial scale (65536):
    // each such step leaves every parameter as it was and halves the scale, until the scale fits
    // and training goes on. bf16 has float32's range and takes every step unscaled.
    let out = eval_ok(
        "let data = dataset(\"synthetic\", #{ n: 120, classes: 3, seed: 2 });
         let b = (); for x in data.train.batches(#{ batch: 32, seed: 1 }) { b = x; break; }
         b.audio = b.audio * 200.0;
         fn moved(a, b) { let w = 0.0; for k in a.keys() { let d = (a[k] - b[k]).abs().max().item(); if d > w { w = d; } } w }
         let m = model(data, #{ seed: 1 });
         let o = optimizer(m, #{ lr: 0.0001 });
         let log = [];
         for i in 0..16 {
             let before = #{}; let sd = m.state_dict(); for k in sd.keys() { before[k] = sd[k].clone(); }
             let t = train_step(m, o, b, #{ amp: \"fp16\" });
             log.push([t.amp_skipped, t.loss_scale, t.loss, moved(before, m.state_dict())]);
         }
         let m = model(data, #{ seed: 1 });
         let t = train_step(m, optimizer(m, #{ lr: 0.0001 }), b, #{ amp: \"bf16\" });
         [log, \"amp_skipped\" in t, \"loss_scale\" in t]",
    )
    .into_array()
    .unwrap();
    let log: Vec<Vec<f64>> = out[0]
        .clone()
        .into_array()
        .unwrap()
        .into_iter()
        .map(|r| r.into_array().unwrap().into_iter().map(|x| x.as_float().unwrap()).collect())
        .collect();
    let skipped = log.iter().take_while(|r| r[0] == 1.0).count();
    assert!(skipped >= 1, "no step overflowed: {log:?}");
    for (i, r) in log.iter().enumerate().take(skipped) {
        assert_eq!(r[1], 65536.0 / 2f64.powi(i as i32 + 1), "step {i} halves the scale: {log:?}");
        assert_eq!(r[3], 0.0, "skipped step {i} moved a parameter: {log:?}");
    }
    let after = &log[skipped..];
    assert!(after.len() >= 4, "the scale never recovered: {log:?}");
    assert!(after.iter().all(|r| r[0] == 0.0 && r[3] > 0.0 && r[1] == log[skipped - 1][1]), "steps after recovery: {log:?}");
    assert!(after.last().unwrap()[2] < 0.5 * after[0][2], "training did not go on after recovery: {log:?}");
    assert!(!out[1].as_bool().unwrap() && !out[2].as_bool().unwrap(), "bf16 logs no loss scale");
}

#[test]
fn methods_whose_rules_read_gradients_see_them_unscaled_under_fp16() {
    // One step from the same initial model in float32 and fp16: the update (and DGL's logged
    // gradient norm) agree within float16's rounding. Gradients left scaled by 65536
    // would move the parameters 65536 times as far; the norms would be 65536 times as large.
    let src = METHOD_SETUPS.to_string()
        + "let data = dataset(\"synthetic\", #{ n: 120, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 });
        let b = (); for x in data.train.batches(#{ batch: 64, seed: 1 }) { b = x; break; }
        fn delta(before, after) { let out = #{}; for k in before.keys() { out[k] = (after[k] - before[k]).to(\"float64\"); } out }
        let out = #{};
        for name in [\"ogm-ge\", \"agm\", \"mmpareto\", \"dgl\", \"greedy\", \"inforeg\"] {
            let runs = [];
            for amp in [\"none\", \"fp16\"] {
                let m = model_for(data, name);
                let before = #{}; let sd = m.state_dict(); for k in sd.keys() { before[k] = sd[k].clone(); }
                let o = optimizer(m, #{ lr: 0.05 });
                let t = train_step(m, o, b, #{ method: method(name, method_options(name)), amp: amp });
                runs.push(#{ terms: t, delta: delta(before, m.state_dict()) });
            }
            let worst = 0.0; let largest = 0.0;
            for k in runs[0].delta.keys() {
                let d = (runs[0].delta[k] - runs[1].delta[k]).abs().max().item();
                let l = runs[0].delta[k].abs().max().item();
                if d > worst { worst = d; } if l > largest { largest = l; }
            }
            out[name] = #{ worst: worst, largest: largest,
                norms: if \"grad_norm\" in runs[0].terms { [runs[0].terms.grad_norm, runs[1].terms.grad_norm] } else { [] } };
        }
        out";
    let out = eval_ok(&src).cast::<rhai::Map>();
    for (name, r) in &out {
        let r = r.clone().cast::<rhai::Map>();
        let worst = r["worst"].as_float().unwrap();
        let largest = r["largest"].as_float().unwrap();
        assert!(largest > 0.0, "{name}: float32's step moved nothing");
        assert!(worst <= 0.05 * largest, "{name}: fp16's update differs from float32's by {worst}, the update is {largest}");
        let norms = r["norms"].clone().into_array().unwrap();
        if let [a, b] = &norms[..] {
            let (a, b) = (a.as_float().unwrap(), b.as_float().unwrap());
            assert!((a - b).abs() <= 0.02 * a, "{name}: gradient norm {a} in float32, {b} in fp16");
        }
    }
    assert!(out.contains_key("dgl") && out["dgl"].clone().cast::<rhai::Map>()["norms"].clone().into_array().unwrap().len() == 2);
}

#[test]
fn every_method_trains_under_bf16_and_fp16() {
    let src = METHOD_SETUPS.to_string()
        + "let data = dataset(\"synthetic\", #{ n: 120, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 });
        let out = [];
        for declared in methods() {
            let name = declared.name;
            if name == \"adaptive\" { continue; }
            for amp in [\"bf16\", \"fp16\"] {
                let m = model_for(data, name);
                let meth = method(name, method_options(name));
                let o = optimizer(m, #{ lr: 0.01 });
                for ep in 0..3 {
                    let t = train_epoch(m, o, data.train, #{ method: meth, val: data.val, epoch: ep, quiet: true, amp: amp });
                    out.push([`${name} ${amp} epoch ${ep}`, t.loss]);
                }
            }
        }
        out";
    let out = eval_ok(&src).into_array().unwrap();
    assert!(out.len() >= 2 * 3 * 20, "{} epochs ran", out.len());
    for r in out {
        let r = r.into_array().unwrap();
        let loss = r[1].as_float().unwrap();
        assert!(loss.is_finite(), "{}: loss {loss}", r[0]);
    }
}

#[test]
fn an_fp16_run_resumes_bit_for_bit_with_its_loss_scale() {
    let dir = temp_dir("amp-resume");
    let (whole, resumed) = whole_and_resumed(&dir, "batch: 16, amp: \"fp16\"");
    assert_eq!(whole, resumed);
    assert!(whole.contains("loss_scale"), "{whole}");
    // The checkpoint holds the scaler: 6 batches an epoch, no overflow, so 18 clean steps.
    let last = |name: &str| -> std::collections::BTreeMap<String, f64> {
        let mut epochs: Vec<_> = std::fs::read_dir(dir.join(name))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("optimizer.safetensors").exists())
            .collect();
        epochs.sort();
        let named = tch::Tensor::read_safetensors(epochs.last().unwrap().join("optimizer.safetensors")).unwrap();
        named.into_iter().filter(|(k, _)| k.starts_with("amp.")).map(|(k, t)| (k, t.double_value(&[0]))).collect()
    };
    let (a, b) = (last("whole"), last("parts"));
    assert_eq!(a.get("amp.scale"), Some(&65536.0), "{a:?}");
    assert_eq!(a.get("amp.growth_tracker"), Some(&18.0), "{a:?}");
    assert_eq!(a, b);
    let e = eval_err("let data = dataset(\"synthetic\", #{ n: 60, classes: 3 }); let m = model(data); train_epoch(m, optimizer(m, #{ lr: 0.1 }), data.train, #{ amp: \"fp8\" })");
    assert!(e.contains("amp must be \"bf16\" or \"fp16\"") && e.contains("fp8"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
