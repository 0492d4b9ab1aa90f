//! Parameter groups (`optimizer(m, #{ groups })`): each modality's encoder and the head at its
//! own learning rate, weight decay and momentum, under SGD and Adam; rates read and set from a
//! method's hooks; checkpointed; and MSLR (stdlib/methods/mslr.rhai) built on them.

mod common;
use common::{eval_err, eval_ok, temp_dir};

const SETUP: &str = r#"
let data = dataset("synthetic", #{ n: 120, classes: 3, audio_shape: [8], visual_shape: [8], seed: 3 });
let b = (); for x in data.train.batches(#{ batch: 32 }) { b = x; break; }
/// The largest |after - before| over the parameters whose names start with `prefix`.
fn moved(before, after, prefix) {
    let worst = 0.0;
    for k in before.keys() { if k.starts_with(prefix) { worst = max(worst, (after[k] - before[k]).abs().max().item()); } }
    worst
}
/// A copy of a model's parameters (state_dict's tensors are the live ones).
fn copy(m) { let out = #{}; let sd = m.state_dict(); for k in sd.keys() { out[k] = sd[k].to("float64"); } out }
/// One step of twin models: one optimizer without groups, one with `groups`; returns how far each
/// model's audio encoder, visual encoder and head moved.
fn twin_step(data, b, kind, groups) {
    let m1 = model(data, #{ seed: 5 }); let m2 = model(data, #{ seed: 5 });
    let o1 = optimizer(m1, #{ kind: kind, lr: 0.01, momentum: 0.0, weight_decay: 0.0 });
    let o2 = optimizer(m2, #{ kind: kind, lr: 0.01, momentum: 0.0, weight_decay: 0.0, groups: groups });
    let before = copy(m1);
    train_step(m1, o1, b, #{}); train_step(m2, o2, b, #{});
    let a1 = copy(m1); let a2 = copy(m2);
    [moved(before, a1, "audio_net"), moved(before, a2, "audio_net"), moved(before, a1, "visual_net"), moved(before, a2, "visual_net"), moved(before, a1, "fusion"), moved(before, a2, "fusion")]
}
"#;

fn floats(src: &str) -> Vec<f64> {
    eval_ok(&format!("{SETUP}\n{src}")).into_array().unwrap().iter().map(|v| v.as_float().unwrap()).collect()
}

#[test]
fn a_groups_rate_reaches_the_update_under_sgd_and_adam() {
    // SGD: the step is lr·g; Adam's first step is lr·m̂/(√v̂+ε): both linear in lr, so a group at
    // ten times the rate moves ten times as far, and the other parameters exactly as without groups.
    for kind in ["sgd", "adam"] {
        let v = floats(&format!("twin_step(data, b, \"{kind}\", #{{ audio: #{{ lr: 0.1 }} }})"));
        assert!(v[0] > 0.0, "{kind}: {v:?}");
        let ratio = v[1] / v[0];
        assert!((ratio - 10.0).abs() < 1e-3, "{kind}: the audio group moved {ratio}x, not 10x: {v:?}");
        assert_eq!(v[2], v[3], "{kind}: the visual encoder moved differently: {v:?}");
        assert_eq!(v[4], v[5], "{kind}: the head moved differently: {v:?}");
    }
    // The head is a group too.
    let v = floats("twin_step(data, b, \"adam\", #{ head: #{ lr: 0.001 } })");
    assert!((v[5] / v[4] - 0.1).abs() < 1e-3 && v[0] == v[1], "{v:?}");
}

#[test]
fn a_groups_weight_decay_and_momentum_apply_to_it_alone() {
    // Zero gradient for the decayed group is not needed: compare with twins that differ only there.
    let v = floats(
        "let m1 = model(data, #{ seed: 5 }); let m2 = model(data, #{ seed: 5 });
        let o1 = optimizer(m1, #{ lr: 0.01, momentum: 0.0, weight_decay: 0.0 });
        let o2 = optimizer(m2, #{ lr: 0.01, momentum: 0.0, weight_decay: 0.0, groups: #{ visual: #{ weight_decay: 0.5, momentum: 0.9 } } });
        for i in 0..3 { train_step(m1, o1, b, #{}); train_step(m2, o2, b, #{}); }
        let a1 = copy(m1); let a2 = copy(m2);
        [moved(a1, a2, \"audio_net\"), moved(a1, a2, \"visual_net\")]",
    );
    assert!(v[1] > 1e-4, "the visual group's decay and momentum changed nothing: {v:?}");
    // The audio encoder's own update is the same; only through the shared loss can it differ.
    assert!(v[0] < v[1], "{v:?}");
}

#[test]
fn group_rates_are_read_and_set_from_hooks_and_checkpointed() {
    let dir = temp_dir("groups-ck");
    let d = dir.display().to_string();
    let v = eval_ok(&format!(
        "{SETUP}
        let m = model(data, #{{ seed: 1 }});
        let o = optimizer(m, #{{ kind: \"adam\", lr: 0.01, groups: #{{ audio: #{{ lr: 0.02 }}, visual: #{{}} }} }});
        let meth = method(#{{ name: \"halves\", state: #{{ seen: [] }},
            begin_epoch: |ectx| {{ ectx.set_lr(\"visual\", ectx.lr(\"visual\") / 2.0); }},
            loss: |ctx| {{ ctx.state.seen.push(ctx.lr(\"visual\")); cross_entropy(ctx.forward().fused, ctx.labels) }} }});
        for e in 0..2 {{ train_epoch(m, o, data.train, #{{ method: meth, epoch: e, quiet: true, batch: 64 }}); }}
        save_checkpoint(\"{d}/ck\", m, o, #{{ epoch: 1 }});
        let o2 = optimizer(m, #{{ kind: \"adam\", lr: 0.01, groups: #{{ audio: #{{ lr: 0.02 }}, visual: #{{}} }} }});
        load_checkpoint(last_checkpoint(\"{d}/ck\"), m, o2);
        [o.lr(\"audio\"), o.lr(\"visual\"), o2.lr(\"visual\"), o.lr, meth.state().seen[0], meth.state().seen[meth.state().seen.len - 1]]"
    ))
    .into_array()
    .unwrap();
    let v: Vec<f64> = v.iter().map(|x| x.as_float().unwrap()).collect();
    assert_eq!(v, vec![0.02, 0.0025, 0.0025, 0.01, 0.005, 0.0025], "audio, visual after two halvings, restored, own lr, seen by steps");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_groups_are_errors_that_say_what_to_do() {
    for (expr, want) in [
        (
            "optimizer(model(data, #{}), #{ groups: #{ text: #{ lr: 0.1 } } })",
            "neither a modality of the model nor \"head\": use audio, visual, head",
        ),
        ("optimizer(model(data, #{}), #{ groups: 3 })", "groups must be a map"),
        ("optimizer(model(data, #{}), #{ groups: #{ audio: 0.1 } })", "groups.audio must be a map"),
        ("optimizer(model(data, #{}), #{ groups: #{ audio: #{ rate: 0.1 } } })", "unknown option \"rate\""),
        ("optimizer(model(data, #{}), #{ groups: #{ audio: #{ lr: -1.0 } } })", "group audio: lr must be positive"),
        ("optimizer(model(data, #{}), #{ kind: \"adam\", groups: #{ audio: #{ momentum: 0.5 } } })", "momentum is SGD's"),
        ("optimizer(model(data, #{}), #{ groups: #{ audio: #{ momentum: 1.5 } } })", "momentum must be in [0, 1)"),
        ("optimizer(model(data, #{}), #{}).lr(\"audio\")", "no parameter groups, so no group audio"),
        ("optimizer(model(data, #{}), #{ groups: #{ audio: #{} } }).set_lr(\"visual\", 0.1)", "no group visual; its groups: audio"),
        ("optimizer(model(data, #{}), #{ groups: #{ audio: #{} } }).set_lr(\"audio\", 0.0)", "must be a positive number"),
    ] {
        let err = eval_err(&format!("{SETUP}\n{expr}"));
        assert!(err.contains(want), "{expr}: wanted \"{want}\" in {err}");
    }
}

#[test]
fn mslr_sets_each_modalitys_rate_and_adapts_it_on_validation() {
    let keep = eval_ok(&format!(
        "{SETUP}
        import \"methods/mslr\" as mslr;
        let m = model(data, #{{ seed: 1 }});
        let o = optimizer(m, #{{ kind: \"adam\", lr: 0.01, groups: #{{ audio: #{{}}, visual: #{{}} }} }});
        train_epoch(m, o, data.train, #{{ method: mslr::build(#{{ rates: #{{ audio: 0.001, visual: 0.02 }} }}), epoch: 0, quiet: true }});
        [o.lr(\"audio\"), o.lr(\"visual\")]"
    ))
    .into_array()
    .unwrap();
    assert_eq!(keep.iter().map(|x| x.as_float().unwrap()).collect::<Vec<_>>(), vec![0.001, 0.02]);

    // The dynamic rule, epoch by epoch: with history 2, before epochs 3 and 5 each rate is
    // multiplied by (the last unimodal validation accuracy) / (the mean of the last two); at other
    // epochs it stays.
    let rows = eval_ok(
        "import \"methods/mslr\" as mslr;
        let data = dataset(\"synthetic\", #{ n: 600, classes: 4, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.5, seed: 3 });
        let m = model(data, #{ seed: 1 });
        let o = optimizer(m, #{ kind: \"sgd\", lr: 0.0002, groups: #{ audio: #{}, visual: #{} } });
        let meth = mslr::build(#{ strategy: \"dynamic\", history: 2 });
        let rows = [];
        for e in 0..6 {
            train_epoch(m, o, data.train, #{ method: meth, epoch: e, quiet: true, val: data.val });
            let s = meth.state();
            let h = if \"visual\" in s.accs { [s.accs.audio, s.accs.visual] } else { [[], []] };
            rows.push([[o.lr(\"audio\"), o.lr(\"visual\")], h]);
        }
        rows",
    )
    .into_array()
    .unwrap();
    let f = |d: &rhai::Dynamic| -> Vec<f64> { d.clone().into_array().unwrap().iter().map(|x| x.as_float().unwrap()).collect() };
    let rates: Vec<Vec<f64>> = rows.iter().map(|r| f(&r.clone().into_array().unwrap()[0])).collect();
    let hist: Vec<Vec<Vec<f64>>> =
        rows.iter().map(|r| r.clone().into_array().unwrap()[1].clone().into_array().unwrap().iter().map(f).collect()).collect();
    assert!(rates[..3].iter().all(|r| r == &vec![0.0002, 0.0002]), "{rates:?}");
    for e in 3..6 {
        for m in 0..2 {
            let h = &hist[e][m];
            let expected =
                if e % 2 == 1 { rates[e - 1][m] * h[h.len() - 1] / (h.iter().sum::<f64>() / h.len() as f64) } else { rates[e - 1][m] };
            assert!((rates[e][m] - expected).abs() < 1e-15, "epoch {e}, modality {m}: {} not {expected}; {rates:?} {hist:?}", rates[e][m]);
        }
    }
    assert!(rates[5] != vec![0.0002, 0.0002], "the dynamic strategy changed no rate in six epochs: {rates:?} {hist:?}");
    let err = eval_err(&format!(
        "{SETUP}
        import \"methods/mslr\" as mslr;
        let m = model(data, #{{}}); let o = optimizer(m, #{{ groups: #{{ audio: #{{}}, visual: #{{}} }} }});
        for e in 0..2 {{ train_epoch(m, o, data.train, #{{ method: mslr::build(#{{ strategy: \"dynamic\" }}), epoch: e, quiet: true }}); }}"
    ));
    assert!(err.contains("pass val: data.val"), "{err}");
}
