//! The methods of 2024-2025 (../shared/baselines-3.md) at the level of the Rust core, on the toy
//! model: what each rule must reduce to at its neutral settings, and what it must change
//! otherwise. The spec's hand-computed values are unit tests beside each rule
//! (src/train/methods/*.rs).

mod common;
use common::toy::{data, epoch_ctx, max_diff, model, opts, sgd, snapshot};
use gapscope::data::{Batch, BatchOptions, Batches, Split};
use gapscope::train::declaration::BuildInputs;
use gapscope::train::encoder::EncoderKind;
use gapscope::train::fusion::FusionKind;
use gapscope::train::method::Method;
use gapscope::train::methods;
use gapscope::train::model::{Model, ModelSpec};
use gapscope::train::options::Value;
use gapscope::train::trainer::{self, EpochPlan};
use tch::Tensor;

fn build(name: &str, pairs: &[(&str, Value)]) -> Box<dyn Method> {
    Box::new(methods::build(name, &opts(pairs), &BuildInputs::default()).unwrap())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn batches(split: &Split, size: usize) -> Vec<Batch> {
    Batches::new(split, &BatchOptions { batch_size: size, seed: 1, ..BatchOptions::default() }).unwrap().map(|b| b.unwrap()).collect()
}

/// `steps` SGD steps of `method` (momentum 0.9) from the seed-1 model in epoch `epoch`; the
/// parameters after them and the last step's logged values.
#[allow(clippy::type_complexity)]
fn steps(fusion: FusionKind, method: &mut dyn Method, n: usize, epoch: usize) -> (Vec<(String, Tensor)>, Vec<(String, f64)>) {
    let (train, _) = data();
    let m = model(fusion);
    let mut o = sgd(&m, 0.9);
    let mut last = Vec::new();
    for (i, b) in batches(&train, 32).iter().take(n).enumerate() {
        last = trainer::step(&m, &mut o, b, method, epoch, (i, n), None).unwrap();
    }
    (snapshot(&m), last)
}

fn worst(a: &[(String, Tensor)], b: &[(String, Tensor)], pick: impl Fn(&str) -> bool) -> f64 {
    a.iter().zip(b).filter(|((n, _), _)| pick(n)).map(|((_, x), (_, y))| max_diff(x, y)).fold(0.0, f64::max)
}

fn logged(values: &[(String, f64)], name: &str) -> f64 {
    values.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in {values:?}")).1
}

fn three_modality_model() -> Model {
    Model::new(&ModelSpec {
        modalities: vec!["a".into(), "b".into(), "c".into()],
        shapes: vec![vec![6], vec![6], vec![6]],
        encoders: vec![EncoderKind::parse("mlp:8").unwrap(); 3],
        fusion: FusionKind::Concat,
        classes: 3,
        seed: 1,
        device: tch::Device::Cpu,
        mmtm: 0,
    })
    .unwrap()
}

#[test]
fn inforeg_without_a_pull_is_the_warmup_step_and_without_unimodal_loss_the_concat_step() {
    let zero = [("beta_first", Value::Float(0.0)), ("beta_second", Value::Float(0.0))];
    let (ir, _) = steps(FusionKind::Concat, build("inforeg", &zero).as_mut(), 3, 0);
    let (wp, _) = steps(FusionKind::Concat, build("warmup", &[]).as_mut(), 3, 0);
    assert_eq!(worst(&ir, &wp, |_| true), 0.0, "β = 0 must be the warm-up step bit for bit");
    let mut fused_only = zero.to_vec();
    fused_only.push(("unimodal_loss", Value::Bool(false)));
    let (ir, _) = steps(FusionKind::Concat, build("inforeg", &fused_only).as_mut(), 3, 0);
    let (cc, _) = steps(FusionKind::Concat, build("concat", &[]).as_mut(), 3, 0);
    assert_eq!(worst(&ir, &cc, |_| true), 0.0, "β = 0 without unimodal losses must be concat bit for bit");
}

#[test]
fn inforeg_pulls_only_after_the_epochs_first_step_and_only_the_leaders_encoder() {
    // The anchor is the epoch-start weights, so the first step's pull is zero whatever β.
    let strong = [("beta_first", Value::Float(1.0)), ("beta_second", Value::Float(1.0))];
    let (one, first_log) = steps(FusionKind::Concat, build("inforeg", &strong).as_mut(), 1, 0);
    let (wp, _) = steps(FusionKind::Concat, build("warmup", &[]).as_mut(), 1, 0);
    assert_eq!(worst(&one, &wp, |_| true), 0.0);
    assert_eq!(logged(&first_log, "k_first"), 1.0, "the window statistic is 1 at epoch 0");
    // The second step's gradient is the warm-up's plus β·(θ − θ̄) on the leader's encoder alone:
    // from the same weights, plain SGD at lr 0.1 differs by exactly −0.1·β·(θ − θ̄) there.
    let (train, _) = data();
    let bs = batches(&train, 32);
    let m = model(FusionKind::Concat);
    let mut o = sgd(&m, 0.0);
    let mut ir = build("inforeg", &strong);
    trainer::step(&m, &mut o, &bs[0], ir.as_mut(), 0, (0, 3), None).unwrap();
    let (anchor, before) = (snapshot(&model(FusionKind::Concat)), snapshot(&m));
    let m2 = m.copy().unwrap();
    let mut o2 = sgd(&m2, 0.0);
    let log = trainer::step(&m, &mut o, &bs[1], ir.as_mut(), 0, (1, 3), None).unwrap();
    trainer::step(&m2, &mut o2, &bs[1], build("warmup", &[]).as_mut(), 0, (1, 3), None).unwrap();
    let (b1, b2) = (logged(&log, "beta_first"), logged(&log, "beta_second"));
    assert!((b1 > 0.0) != (b2 > 0.0), "exactly one modality leads: {b1} {b2}");
    let (leader, beta) = if b1 > 0.0 { ("audio_net.", b1) } else { ("visual_net.", b2) };
    let trainable: Vec<String> = m.trainable_parameters().into_iter().map(|(n, _)| n).collect();
    let (after, plain) = (snapshot(&m), snapshot(&m2));
    for (i, (name, _)) in after.iter().enumerate().filter(|(_, (n, _))| trainable.contains(n)) {
        let want = if name.starts_with(leader) { (&before[i].1 - &anchor[i].1) * (-0.1 * beta) } else { before[i].1.zeros_like() };
        let d = max_diff(&(&after[i].1 - &plain[i].1), &want);
        assert!(d < 1e-6, "{name}: the pull is off by {d}");
    }
}

#[test]
fn inforeg_keeps_its_traces_and_windows_across_epochs_and_in_its_state() {
    let (train, _) = data();
    let m = model(FusionKind::Concat);
    let mut o = sgd(&m, 0.9);
    let batching = BatchOptions { batch_size: 32, seed: 1, ..BatchOptions::default() };
    let mut ir = build("inforeg", &[]);
    for epoch in 0..3 {
        trainer::epoch(
            &m,
            &mut o,
            &EpochPlan { train: &train, val: None, batching: &batching, epoch, quiet: true, amp: None },
            ir.as_mut(),
        )
        .unwrap();
    }
    let state = ir.state();
    let history = &state.iter().find(|(n, _)| n == "trace_history").unwrap().1;
    assert_eq!(history.size(), vec![2, 2], "two closed epochs of two modalities");
    assert!(state.iter().any(|(n, _)| n == "anchor.audio_net.fc1.weight" || n.starts_with("anchor.audio_net.")));
    // A fresh method loaded with the state takes the same next step as the one that made it.
    let mut back = build("inforeg", &[]);
    back.load_state(&state).unwrap();
    let b = &batches(&train, 32)[0];
    let m2 = m.copy().unwrap();
    let (mut o1, mut o2) = (sgd(&m, 0.0), sgd(&m2, 0.0));
    let a = trainer::step(&m, &mut o1, b, ir.as_mut(), 3, (0, 1), None).unwrap();
    let c = trainer::step(&m2, &mut o2, b, back.as_mut(), 3, (0, 1), None).unwrap();
    assert_eq!(worst(&snapshot(&m), &snapshot(&m2), |_| true), 0.0);
    assert_eq!(logged(&a, "k_first"), logged(&c, "k_first"));
    assert_eq!(logged(&a, "trace_first"), logged(&c, "trace_first"));
    assert!(logged(&a, "trace_first") > 0.0);
}

#[test]
fn inforeg_takes_more_than_two_modalities_only_in_its_paper_form() {
    let m = three_modality_model();
    let e = build("inforeg", &[]).prepare(&m).unwrap_err().to_string();
    assert!(e.contains("two modalities") && e.contains("variant: \"paper\""), "{e}");
    assert!(build("inforeg", &[("variant", text("paper"))]).prepare(&m).is_ok());
    let e = build("inforeg", &[("heads", text("separate"))]).prepare(&model(FusionKind::Concat)).unwrap_err().to_string();
    assert!(e.contains("heads: \"separate\""), "{e}");
}

#[test]
fn dgl_trains_the_head_on_the_fused_loss_alone_and_each_encoder_on_its_own_loss() {
    // Against concat: the head's first step is the same (its gradient is ∇CE_f either way,
    // and the features are the same before any update); the encoders' are not.
    let (dgl, log) = steps(FusionKind::Concat, build("dgl", &[("clip_norm", Value::Float(0.0))]).as_mut(), 1, 0);
    let (cc, _) = steps(FusionKind::Concat, build("concat", &[]).as_mut(), 1, 0);
    assert!(worst(&dgl, &cc, |n| n.starts_with("fusion.")) < 1e-6, "the head's step is not the fused loss's");
    assert!(worst(&dgl, &cc, |n| n.starts_with("audio_net.")) > 1e-5);
    assert!(log.iter().all(|(n, _)| n != "grad_norm"), "no clipping, no norm");
    // α = 0: the encoders get no gradient, so with no momentum history they do not move.
    let (still, _) = steps(FusionKind::Concat, build("dgl", &[("alpha", Value::Float(0.0))]).as_mut(), 1, 0);
    let start = snapshot(&model(FusionKind::Concat));
    assert_eq!(worst(&still, &start, |n| n.contains("_net.") && !n.contains("running") && !n.contains("num_batches")), 0.0);
}

#[test]
fn dgl_clips_the_global_norm_and_logs_it() {
    let (free, log) = steps(FusionKind::Concat, build("dgl", &[("clip_norm", Value::Float(1e9))]).as_mut(), 1, 0);
    let norm = logged(&log, "grad_norm");
    assert!(norm > 0.0);
    let (clipped, _) = steps(FusionKind::Concat, build("dgl", &[("clip_norm", Value::Float(norm / 4.0))]).as_mut(), 1, 0);
    let start = snapshot(&model(FusionKind::Concat));
    // Plain SGD on the first step: every update is exactly a quarter (up to the 1e-6 guard).
    for ((name, f), ((_, c), (_, s))) in free.iter().zip(clipped.iter().zip(&start)) {
        if name.contains("running") || name.contains("num_batches") {
            continue;
        }
        let d = max_diff(&((f - s) / 4.0), &(c - s));
        assert!(d < 1e-6, "{name}: the clipped update is not a quarter of the free one ({d})");
    }
}

#[test]
fn dgl_runs_on_three_modalities_and_refuses_heads_without_a_split() {
    assert!(build("dgl", &[]).prepare(&three_modality_model()).is_ok());
    let e = build("dgl", &[]).prepare(&model(FusionKind::Gated)).unwrap_err().to_string();
    assert!(e.contains("concat or sum head"), "{e}");
    let (_, log) = steps(FusionKind::Sum, build("dgl", &[]).as_mut(), 2, 0);
    assert!(logged(&log, "ce_first") > 0.0 && logged(&log, "ce_fused") > 0.0);
}

/// A method whose epoch has begun (G2D's teachers trained for one epoch each on the toy
/// split, CGGM's guides built), ready for lone steps.
fn begun(m: &Model, name: &str, pairs: &[(&str, Value)]) -> Box<dyn Method> {
    let (train, val) = data();
    let mut g = build(name, pairs);
    let o = sgd(m, 0.9);
    let batching = BatchOptions { batch_size: 32, seed: 1, ..BatchOptions::default() };
    g.begin_epoch(&epoch_ctx(m, &o, &train, Some(&val), &batching, 0)).unwrap();
    g
}

fn g2d_with_teachers(m: &Model, pairs: &[(&str, Value)]) -> Box<dyn Method> {
    let mut all = vec![("teacher_epochs", Value::Int(1))];
    all.extend(pairs.iter().cloned());
    begun(m, "g2d", &all)
}

#[test]
fn g2d_without_distillation_or_prioritisation_is_the_late_fusion_step() {
    let (train, _) = data();
    let b = &batches(&train, 32)[0];
    let m = model(FusionKind::Sum);
    let off = [("kd_weight", Value::Float(0.0)), ("feat_weight", Value::Float(0.0)), ("smp_window", Value::List(vec![100.0, 100.0]))];
    let mut g = g2d_with_teachers(&m, &off);
    let teachers_before: Vec<(String, Tensor)> = g.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
    let mut o = sgd(&m, 0.9);
    trainer::step(&m, &mut o, b, g.as_mut(), 0, (0, 1), None).unwrap();
    // By hand: CE of the halved sum head, one backward, the same SGD.
    let m2 = model(FusionKind::Sum);
    let mut o2 = sgd(&m2, 0.9);
    let x = gapscope::train::inference::inputs(&m2, b).unwrap();
    let fused = m2.forward_all(&x, true).unwrap().logits.fused / 2.0;
    let loss = fused.cross_entropy_for_logits(&b.labels);
    let grads = o2.gradients(&loss).unwrap();
    o2.update(&grads).unwrap();
    assert_eq!(worst(&snapshot(&m), &snapshot(&m2), |_| true), 0.0, "not the late-fusion step bit for bit");
    let after = g.state();
    for ((n, a), (_, b)) in teachers_before.iter().zip(&after) {
        assert_eq!(max_diff(a, b), 0.0, "teacher tensor {n} moved");
    }
}

#[test]
fn g2d_zeroes_the_more_confident_modalitys_weight_gradients_inside_its_window() {
    let (train, _) = data();
    let b = &batches(&train, 32)[0];
    let m = model(FusionKind::Sum);
    let mut g = g2d_with_teachers(&m, &[("params", text("weights")), ("smp_window", Value::List(vec![0.0, 0.0]))]);
    let mut o = sgd(&m, 0.0);
    let log = trainer::step(&m, &mut o, b, g.as_mut(), 0, (0, 1), None).unwrap();
    let (f1, f2) = (logged(&log, "frozen_first"), logged(&log, "frozen_second"));
    assert_eq!(f1 + f2, 1.0, "exactly one modality held: {f1} {f2}");
    let held = if f1 == 1.0 { "audio_net." } else { "visual_net." };
    let start = snapshot(&model(FusionKind::Sum));
    let after = snapshot(&m);
    for ((name, a), (_, s)) in after.iter().zip(&start) {
        let moved = max_diff(a, s);
        if name.starts_with(held) && a.dim() >= 2 {
            assert_eq!(moved, 0.0, "{name} moved although its modality was held");
        } else if name.starts_with(held) && name.ends_with("bias") {
            assert!(moved > 0.0, "{name}: biases are never held");
        }
    }
    assert!(logged(&log, "kd_first") > 0.0 && logged(&log, "feat_second") > 0.0);
    // Outside the window, both train.
    let log = trainer::step(&m, &mut o, b, g.as_mut(), 1, (0, 1), None).unwrap();
    assert_eq!(logged(&log, "frozen_first") + logged(&log, "frozen_second"), 0.0);
    // A concat model is refused with what to build.
    let e = build("g2d", &[]).prepare(&model(FusionKind::Concat)).unwrap_err().to_string();
    assert!(e.contains("fusion: \"sum\""), "{e}");
}

#[test]
fn cggm_scales_each_encoders_step_by_its_factor_and_leaves_the_head_alone_at_first() {
    let (train, _) = data();
    let b = &batches(&train, 32)[0];
    let m = model(FusionKind::Concat);
    let plain = [("rho", Value::Float(1.0)), ("lambda", Value::Float(0.0)), ("clip_norm", Value::Float(0.0))];
    let mut c = begun(&m, "cggm", &plain);
    let mut o = sgd(&m, 0.0);
    let log = trainer::step(&m, &mut o, b, c.as_mut(), 0, (0, 1), None).unwrap();
    let m2 = model(FusionKind::Concat);
    let mut o2 = sgd(&m2, 0.0);
    trainer::step(&m2, &mut o2, b, build("concat", &[]).as_mut(), 0, (0, 1), None).unwrap();
    let start = snapshot(&model(FusionKind::Concat));
    let (after, concat) = (snapshot(&m), snapshot(&m2));
    let factor = [logged(&log, "factor_first"), logged(&log, "factor_second")];
    assert!((factor[0] + factor[1] - 1.0).abs() < 1e-6, "two factors sum to one: {factor:?}");
    for (i, (name, _)) in after.iter().enumerate() {
        let k = if name.starts_with("audio_net.") {
            factor[0]
        } else if name.starts_with("visual_net.") {
            factor[1]
        } else {
            1.0
        };
        let d = max_diff(&(&after[i].1 - &start[i].1), &((&concat[i].1 - &start[i].1) * k));
        assert!(d < 1e-6, "{name}: the step is not {k} times concat's ({d})");
    }
    assert!(logged(&log, "guide_acc_first") >= 0.0 && logged(&log, "direction") == 0.0);
    // The guides are the method's: the run's optimizer never holds them.
    assert!(o.params().iter().all(|(n, _)| !n.contains("guide")));
    assert!(c.state().iter().any(|(n, _)| n.starts_with("guide.")));
}

#[test]
fn cggm_direction_term_reaches_only_the_head_from_the_second_step() {
    let (train, _) = data();
    let bs = batches(&train, 32);
    let run = |pairs: &[(&str, Value)]| {
        let m = model(FusionKind::Concat);
        let mut c = begun(&m, "cggm", pairs);
        let mut o = sgd(&m, 0.0);
        let mut logs = Vec::new();
        for (i, b) in bs.iter().take(2).enumerate() {
            logs.push(trainer::step(&m, &mut o, b, c.as_mut(), 0, (i, 2), None).unwrap());
        }
        (snapshot(&m), logs)
    };
    let (with, logs) = run(&[("lambda", Value::Float(5.0)), ("clip_norm", Value::Float(0.0))]);
    let (without, _) = run(&[("lambda", Value::Float(5.0)), ("clip_norm", Value::Float(0.0)), ("direction", text("off"))]);
    assert!(logged(&logs[1], "direction") != 0.0, "the second step has the first step's term");
    // The first step is the same; the second differs on the head only (its encoder updates
    // depend on the head only through the loss of later steps).
    assert!(worst(&with, &without, |n| n == "fusion.fc_out.weight") > 1e-6, "the direction term did not reach the head");
    assert_eq!(worst(&with, &without, |n| n.contains("_net.")), 0.0, "the direction term reached an encoder");
    assert_eq!(worst(&with, &without, |n| n == "fusion.fc_out.bias"), 0.0, "the direction term reached the bias");
}

#[test]
fn bb_mbsd_outside_its_window_is_concat_and_inside_adds_its_two_terms_to_the_warmup_loss() {
    let (outside, _) = steps(FusionKind::Concat, build("mbsd", &[("window", Value::List(vec![100.0, 100.0]))]).as_mut(), 2, 0);
    let (cc, _) = steps(FusionKind::Concat, build("concat", &[]).as_mut(), 2, 0);
    assert_eq!(worst(&outside, &cc, |_| true), 0.0, "outside the window it must be concat bit for bit");
    let (_, log) = steps(FusionKind::Concat, build("mbsd", &[]).as_mut(), 1, 0);
    let sum = logged(&log, "ce_fused") + logged(&log, "ce_first") + logged(&log, "ce_second") + logged(&log, "rs") + logged(&log, "kl");
    assert!((logged(&log, "loss") - sum).abs() < 1e-5, "the loss is not the sum of its terms: {log:?}");
    assert!(logged(&log, "weighted") > 0.0);
}

#[test]
fn amss_outside_its_window_is_concat_and_draws_repeat_for_the_same_seed_and_step() {
    let off = [("window", Value::List(vec![5.0, 9.0]))];
    let (am, _) = steps(FusionKind::Concat, build("amss", &off).as_mut(), 3, 0);
    let (cc, _) = steps(FusionKind::Concat, build("concat", &[]).as_mut(), 3, 0);
    assert_eq!(worst(&am, &cc, |_| true), 0.0, "outside its window AMSS must be concat bit for bit");
    let (a, _) = steps(FusionKind::Concat, build("amss", &[]).as_mut(), 3, 0);
    let (b, _) = steps(FusionKind::Concat, build("amss", &[]).as_mut(), 3, 0);
    assert_eq!(worst(&a, &b, |_| true), 0.0, "the same (seed, step) must draw the same masks");
    let (c, _) = steps(FusionKind::Concat, build("amss", &[("seed", Value::Int(9))]).as_mut(), 3, 0);
    assert!(worst(&a, &c, |n| n.contains("_net")) > 0.0, "another seed must draw other masks");
    assert!(worst(&a, &cc, |n| n.contains("_net")) > 0.0, "inside its window AMSS must mask");
}

#[test]
fn amss_keeps_exactly_the_ceiling_of_n_kappa_filters_of_each_weight_and_zeroes_the_rest() {
    // One plain SGD step (no momentum, no decay): a row of an encoder's weight moves iff its
    // gradient was kept.
    let (train, _) = data();
    let m = model(FusionKind::Concat);
    let before = snapshot(&m);
    let mut o = sgd(&m, 0.0);
    let mut meth = build("amss", &[]);
    let b = &batches(&train, 32)[0];
    let logged_values = trainer::step(&m, &mut o, b, meth.as_mut(), 0, (0, 1), None).unwrap();
    let after = snapshot(&m);
    let kappa = [logged(&logged_values, "kappa_first"), logged(&logged_values, "kappa_second")];
    assert!(kappa.iter().all(|k| (0.1..=0.9).contains(k)), "{kappa:?}");
    let mut checked = 0;
    for ((name, x), (_, y)) in before.iter().zip(&after) {
        let m_index = if name.starts_with("audio_net") {
            0
        } else if name.starts_with("visual_net") {
            1
        } else {
            continue;
        };
        if x.dim() < 2 {
            continue;
        }
        let rows = x.size()[0];
        let moved = (0..rows).filter(|&r| max_diff(&x.get(r), &y.get(r)) > 0.0).count();
        assert_eq!(moved, (rows as f64 * kappa[m_index]).ceil() as usize, "{name}: rows moved");
        checked += 1;
    }
    assert_eq!(checked, 2, "one weight matrix per mlp:8 encoder");
    // The head is not masked (the audio-visual code): every row of it moves.
    let (w0, w1) = (
        &before.iter().find(|(n, _)| n == "fusion.fc_out.weight").unwrap().1,
        &after.iter().find(|(n, _)| n == "fusion.fc_out.weight").unwrap().1,
    );
    assert!((0..w0.size()[0]).all(|r| max_diff(&w0.get(r), &w1.get(r)) > 0.0));
}

#[test]
fn amss_plus_reweights_and_its_head_mask_and_block_conv_choice_work() {
    // One step: the same draws, so AMSS+ changes only the kept encoder rows' size, never the
    // head's step; the HT weight is another size again.
    let (plain, _) = steps(FusionKind::Concat, build("amss", &[]).as_mut(), 1, 0);
    let (plus, _) = steps(FusionKind::Concat, build("amss", &[("variant", text("plus"))]).as_mut(), 1, 0);
    let (ht, _) = steps(FusionKind::Concat, build("amss", &[("variant", text("plus")), ("amss_plus_weight", text("ht"))]).as_mut(), 1, 0);
    assert_eq!(worst(&plain, &plus, |n| n.starts_with("fusion")), 0.0);
    assert!(worst(&plain, &plus, |n| n.contains("_net") && n.ends_with("weight")) > 0.0);
    assert!(worst(&plus, &ht, |n| n.contains("_net") && n.ends_with("weight")) > 0.0);
    let (head, _) = steps(FusionKind::Concat, build("amss", &[("head_mask", text("on"))]).as_mut(), 1, 0);
    let (nohead, _) = steps(FusionKind::Concat, build("amss", &[]).as_mut(), 1, 0);
    assert!(worst(&head, &nohead, |n| n == "fusion.fc_out.weight") > 0.0, "the head mask changes the head's step");
    // "block_convs" on MLP encoders masks nothing: the concat step.
    let (bc, _) = steps(FusionKind::Concat, build("amss", &[("params", text("block_convs"))]).as_mut(), 3, 0);
    let (cc, _) = steps(FusionKind::Concat, build("concat", &[]).as_mut(), 3, 0);
    assert_eq!(worst(&bc, &cc, |_| true), 0.0);
}

fn state_of(m: &dyn Method, name: &str) -> Tensor {
    m.state().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in the state")).1
}

#[test]
fn amco_trains_its_output_layer_by_the_runs_rule_and_predicts_through_it() {
    // σ = 2 flags nothing: the loss is CE(W*(ℓ_a + ℓ_v) + b*) + CE_a + CE_v, and W* takes one
    // plain SGD step of that loss's gradient at the run's rate.
    let (train, _) = data();
    let b = &batches(&train, 32)[0];
    let m = model(FusionKind::Concat);
    let mut a = begun(&m, "amco", &[("sigma", Value::Float(2.0))]);
    let (w0, b0) =
        (state_of(a.as_ref(), "w_star.weight").set_requires_grad(true), state_of(a.as_ref(), "w_star.bias").set_requires_grad(true));
    let inputs: Vec<&Tensor> = b.inputs.iter().map(|(_, t)| t).collect();
    let fwd = m.forward_all(&inputs, true).unwrap();
    let z = fwd.logits.fused.detach().linear(&w0, Some(&b0));
    let ce = z.cross_entropy_for_logits(&b.labels);
    let grads = Tensor::run_backward(&[&ce], &[&w0, &b0], false, false);
    let mut o = sgd(&m, 0.0);
    let log = trainer::step(&m, &mut o, b, a.as_mut(), 0, (0, 1), None).unwrap();
    assert!((logged(&log, "ce_fused") - ce.double_value(&[])).abs() < 1e-6);
    assert_eq!((logged(&log, "dependent_first"), logged(&log, "dependent_second"), logged(&log, "masked")), (0.0, 0.0, 0.0));
    let w1 = state_of(a.as_ref(), "w_star.weight");
    assert!(max_diff(&w1, &(&w0.detach() - &grads[0] * 0.1)) < 1e-6, "W* must take the run's SGD step");
    assert!(max_diff(&w1, &w0.detach()) > 0.0);
    // The run's optimizer never holds W*; evaluation predicts through it, unmasked.
    assert!(o.params().iter().all(|(n, _)| !n.contains("w_star")));
    let fused = m.forward_all(&inputs, false).unwrap().logits.fused;
    let p = a.predict(&m, &fused, &[]).unwrap().unwrap();
    let want = fused.linear(&w1, Some(&state_of(a.as_ref(), "w_star.bias")));
    assert_eq!(max_diff(&p, &want), 0.0);
}

#[test]
fn amco_masks_the_dependent_modality_wholly_once_the_curriculum_is_full() {
    // Epoch 3 of a logits-mode run: from its second batch all C logits of the flagged modality
    // are zero, so its CE is ln C exactly; one of two modalities is flagged at σ = 0.5.
    let (train, _) = data();
    let m = model(FusionKind::Concat);
    let mut a = begun(&m, "amco", &[("amco_mask_on", text("logits"))]);
    let mut o = sgd(&m, 0.9);
    let bs = batches(&train, 16);
    let mut seen = 0;
    let mut shares = [0.0, 0.0];
    for (j, b) in bs.iter().enumerate() {
        let log = trainer::step(&m, &mut o, b, a.as_mut(), 3, (j, bs.len()), None).unwrap();
        let dep = [logged(&log, "dependent_first"), logged(&log, "dependent_second")];
        let before = shares;
        shares = [logged(&log, "share_first"), logged(&log, "share_second")];
        if j == 0 {
            assert_eq!(dep, [0.0, 0.0], "flags start false every epoch");
            continue;
        }
        assert_eq!(dep[0] + dep[1], 1.0, "step {j}: {log:?}");
        assert_eq!(dep[0] == 1.0, before[0] > 0.5, "step {j}: the modality flagged is the one whose share exceeded σ a step before");
        assert_eq!(logged(&log, "masked"), 3.0);
        let ce = if dep[0] == 1.0 { logged(&log, "ce_first") } else { logged(&log, "ce_second") };
        assert!((ce - 3f64.ln()).abs() < 1e-6, "step {j}: {ce}");
        seen += 1;
    }
    assert!(seen >= 5);
    // Feature masking (the default) zeroes the flagged modality's pooled features instead: its
    // logits are then its bias share alone.
    let mut f = begun(&m, "amco", &[]);
    for (j, b) in bs.iter().enumerate().take(3) {
        let log = trainer::step(&m, &mut o, b, f.as_mut(), 3, (j, bs.len()), None).unwrap();
        if j > 0 {
            assert_eq!(logged(&log, "masked"), 8.0, "U = d = 8 units");
        }
    }
    // A lone step before any epoch has no W*: an error that says what to do.
    let e = trainer::step(&m, &mut o, &bs[0], build("amco", &[]).as_mut(), 0, (0, 1), None).unwrap_err().to_string();
    assert!(e.contains("train_epoch"), "{e}");
}

fn boosted_epochs(m: &Model, o: &mut gapscope::train::optim::Optimizer, meth: &mut dyn Method, epochs: std::ops::Range<usize>) {
    let (train, _) = data();
    let batching = BatchOptions { batch_size: 32, seed: 1, ..BatchOptions::default() };
    for epoch in epochs {
        trainer::epoch(m, o, &EpochPlan { train: &train, val: None, batching: &batching, epoch, quiet: true, amp: None }, meth).unwrap();
    }
}

#[test]
fn aug_without_boosting_layers_is_one_round_per_modality_through_the_updated_output_layer() {
    let (train, _) = data();
    let b = &batches(&train, 32)[0];
    let m = model(FusionKind::Boosted);
    let mut o = sgd(&m, 0.9);
    let mut a = build("aug", &[]);
    a.prepare(&m).unwrap();
    let log = trainer::step(&m, &mut o, b, a.as_mut(), 0, (0, 1), None).unwrap();
    // By hand: both encoders once, then round m's CE(f_m), its backward and update in turn.
    let r = model(FusionKind::Boosted);
    let mut ro = sgd(&r, 0.9);
    let inputs: Vec<&Tensor> = b.inputs.iter().map(|(_, t)| t).collect();
    let x = r.encode_all(&inputs, true).unwrap();
    for (mi, xm) in x.iter().enumerate() {
        let (f, _, newest) = r.fusion.boosted_parts(mi, xm).unwrap();
        assert!(newest.is_none());
        let l = f.cross_entropy_for_logits(&b.labels);
        let g = ro.gradients(&l).unwrap();
        ro.update(&g).unwrap();
    }
    assert_eq!(worst(&snapshot(&m), &snapshot(&r), |_| true), 0.0);
    assert!(logged(&log, "ce_first") > 0.0 && logged(&log, "layers_first") == 0.0);
    // Evaluation mixes 0.4·f_first + 0.6·f_second.
    let out = m.forward_all(&inputs, false).unwrap().logits;
    assert!(max_diff(&out.fused, &(&out.per[0] * 0.4 + &out.per[1] * 0.6)) < 1e-6);
}

#[test]
fn aug_adds_a_layer_after_a_check_and_holds_it_unless_asked_to_train_it() {
    // λ = 100: the first modality lags by far, so every check gives it a layer.
    let lag = [("lambda", Value::Float(100.0)), ("check_every", Value::Int(1))];
    let m = model(FusionKind::Boosted);
    let mut o = sgd(&m, 0.9);
    let mut a = build("aug", &lag);
    boosted_epochs(&m, &mut o, a.as_mut(), 0..1);
    assert_eq!(m.fusion.booster_counts(), vec![0, 0]);
    boosted_epochs(&m, &mut o, a.as_mut(), 1..2);
    assert_eq!(m.fusion.booster_counts(), vec![1, 0], "a layer after epoch 0's check, for the first modality");
    let frozen = snapshot(&m);
    boosted_epochs(&m, &mut o, a.as_mut(), 2..3);
    assert_eq!(m.fusion.booster_counts(), vec![2, 0]);
    let after = snapshot(&m);
    assert_eq!(worst(&frozen, &after, |n| n.starts_with("fusion.fixed0_1")), 0.0, "a held layer never moves");
    assert!(worst(&frozen, &after, |n| n == "fusion.fc_out.weight") > 0.0 && worst(&frozen, &after, |n| n.starts_with("audio_net")) > 0.0);
    assert!(o.params().iter().all(|(n, _)| !n.contains("fixed")), "the optimizer never holds a held layer");
    // "trained": the layer joins the optimizer with empty state and moves.
    let m = model(FusionKind::Boosted);
    let mut o = sgd(&m, 0.9);
    let mut a = build("aug", &[lag[0].clone(), lag[1].clone(), ("aug_new_layers", text("trained"))]);
    boosted_epochs(&m, &mut o, a.as_mut(), 0..2);
    assert!(o.params().iter().any(|(n, _)| n == "fusion.boost0_1.weight"));
    let before = snapshot(&m);
    boosted_epochs(&m, &mut o, a.as_mut(), 2..3);
    assert!(worst(&before, &snapshot(&m), |n| n.starts_with("fusion.boost0_1")) > 0.0);
    // The grown model's state dict rebuilds the layers in a fresh model.
    let fresh = model(FusionKind::Boosted);
    fresh.load_state_dict(&m.state_dict(), "test").unwrap();
    assert_eq!(fresh.fusion.booster_counts(), m.fusion.booster_counts());
    assert_eq!(worst(&snapshot(&fresh), &snapshot(&m), |_| true), 0.0);
}

#[test]
fn aug_refuses_other_heads_and_its_first_round_can_step_twice_as_pytorch_111() {
    let e = build("aug", &[]).prepare(&model(FusionKind::Concat)).unwrap_err().to_string();
    assert!(e.contains("fusion: \"boosted\""), "{e}");
    // With momentum, PyTorch 1.11's zero gradients step the first round's tensors again.
    let (skip, _) = steps(FusionKind::Boosted, build("aug", &[]).as_mut(), 2, 0);
    let (twice, _) = steps(FusionKind::Boosted, build("aug", &[("round_zero_grad", text("torch111"))]).as_mut(), 2, 0);
    assert!(worst(&skip, &twice, |n| n.starts_with("audio_net")) > 0.0);
}

#[test]
fn di_mml_stage_one_without_its_shared_or_contrastive_terms_trains_each_head_alone() {
    let (train, _) = data();
    let b = &batches(&train, 32)[0];
    let m = model(FusionKind::ConcatHeads);
    let mut d = begun(&m, "di-mml", &[("w", Value::Float(0.0)), ("duc_start", Value::Int(100)), ("stage2_start", Value::Int(200))]);
    let mut o = sgd(&m, 0.9);
    let log = trainer::step(&m, &mut o, b, d.as_mut(), 0, (0, 1), None).unwrap();
    // By hand: Σ_m CE(h_m(x_m)), one backward, one update.
    let r = model(FusionKind::ConcatHeads);
    let mut ro = sgd(&r, 0.9);
    let inputs: Vec<&Tensor> = b.inputs.iter().map(|(_, t)| t).collect();
    let per = r.forward_all(&inputs, true).unwrap().logits.per;
    let l = per[0].cross_entropy_for_logits(&b.labels) + per[1].cross_entropy_for_logits(&b.labels);
    let g = ro.gradients(&l).unwrap();
    ro.update(&g).unwrap();
    assert_eq!(worst(&snapshot(&m), &snapshot(&r), |_| true), 0.0);
    assert!(logged(&log, "shared_first") > 0.0 && logged(&log, "stage2") == 0.0);
    // The fused head took no step in stage 1.
    assert_eq!(worst(&snapshot(&m), &snapshot(&model(FusionKind::ConcatHeads)), |n| n.starts_with("fusion.fc_out")), 0.0);
}

#[test]
fn di_mml_chooses_dimensions_then_trains_a_fresh_fused_head_on_frozen_encoders() {
    let m = model(FusionKind::ConcatHeads);
    let mut o = sgd(&m, 0.9);
    let mut d = build("di-mml", &[("duc_start", Value::Int(1)), ("stage2_start", Value::Int(2)), ("tau", Value::Float(1.0))]);
    boosted_epochs(&m, &mut o, d.as_mut(), 0..2);
    let state = d.state();
    assert!(state.iter().any(|(n, _)| n == "exclusive.0") && state.iter().any(|(n, _)| n == "shared.weight"));
    let stage1 = snapshot(&m);
    boosted_epochs(&m, &mut o, d.as_mut(), 2..3);
    let after = snapshot(&m);
    assert_eq!(worst(&stage1, &after, |n| !n.starts_with("fusion.fc_out")), 0.0, "stage 2 moves the fused head only");
    assert!(worst(&stage1, &after, |n| n == "fusion.fc_out.weight") > 0.0);
    // Prediction: the confidence-weighted heads and fused head.
    let (train, _) = data();
    let b = &batches(&train, 32)[0];
    let inputs: Vec<&Tensor> = b.inputs.iter().map(|(_, t)| t).collect();
    let out = m.forward_all(&inputs, false).unwrap().logits;
    let p = d.predict(&m, &out.fused, &out.per).unwrap().unwrap();
    let want = gapscope::train::head_stage::confidence_weighted(
        &[out.per[0].shallow_clone(), out.per[1].shallow_clone(), out.fused.shallow_clone()],
        1.0,
    )
    .unwrap();
    assert_eq!(max_diff(&p, &want), 0.0);
    // Cached stage-2 features train the same head as recomputed ones (no augmentation here).
    let m2 = model(FusionKind::ConcatHeads);
    let mut o2 = sgd(&m2, 0.9);
    let mut c = build(
        "di-mml",
        &[("duc_start", Value::Int(1)), ("stage2_start", Value::Int(2)), ("tau", Value::Float(1.0)), ("stage2_features", text("cache"))],
    );
    boosted_epochs(&m2, &mut o2, c.as_mut(), 0..3);
    assert!(worst(&after, &snapshot(&m2), |_| true) < 1e-5);
    // Other heads are refused.
    let e = build("di-mml", &[]).prepare(&model(FusionKind::Concat)).unwrap_err().to_string();
    assert!(e.contains("heads: \"separate\""), "{e}");
}

/// The toy model with an MMTM module after its encoders' one stage.
fn mmtm_model(fusion: FusionKind) -> Model {
    Model::new(&ModelSpec { mmtm: 1, fusion, ..model(fusion).spec.clone() }).unwrap()
}

#[test]
fn greedy_without_curation_is_the_mmtm_models_late_fusion_step() {
    let (train, _) = data();
    let bs = batches(&train, 32);
    let m = mmtm_model(FusionKind::Sum);
    let mut o = sgd(&m, 0.9);
    let mut g = build("greedy", &[("epsilon", Value::Float(1e300)), ("unlock_epoch", Value::Int(0))]);
    for (j, b) in bs.iter().take(3).enumerate() {
        trainer::step(&m, &mut o, b, g.as_mut(), 0, (j, 3), None).unwrap();
    }
    // By hand: Σ_m CE(ℓ_m) through the MMTM-gated encoders, one backward and update per batch.
    let r = mmtm_model(FusionKind::Sum);
    let mut ro = sgd(&r, 0.9);
    for b in bs.iter().take(3) {
        let inputs: Vec<&Tensor> = b.inputs.iter().map(|(_, t)| t).collect();
        let per = r.forward_all(&inputs, true).unwrap().logits.per;
        let l = per[0].cross_entropy_for_logits(&b.labels) + per[1].cross_entropy_for_logits(&b.labels);
        let grads = ro.gradients(&l).unwrap();
        ro.update(&grads).unwrap();
    }
    assert_eq!(worst(&snapshot(&m), &snapshot(&r), |_| true), 0.0);
    assert!(snapshot(&m).iter().any(|(n, _)| n == "mmtm1.running_gate_0"), "the running means are model state");
}

#[test]
fn greedy_curates_q_steps_once_the_speeds_part_and_refuses_models_without_mmtm() {
    let (train, _) = data();
    let bs = batches(&train, 16);
    let m = mmtm_model(FusionKind::Sum);
    let mut o = sgd(&m, 0.9);
    let mut g = build("greedy", &[("epsilon", Value::Float(0.0)), ("unlock_epoch", Value::Int(0)), ("curation_steps", Value::Int(3))]);
    let mut curating = Vec::new();
    for (j, b) in bs.iter().take(9).enumerate() {
        let log = trainer::step(&m, &mut o, b, g.as_mut(), 0, (j, 9), None).unwrap();
        curating.push(logged(&log, "curating"));
    }
    // ε = 0: every uncurated step starts a curation of 3 steps.
    assert_eq!(curating, vec![0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
    // Locked epochs never curate.
    let mut locked = build("greedy", &[("epsilon", Value::Float(0.0))]);
    let log = trainer::step(&m, &mut o, &bs[0], locked.as_mut(), 0, (0, 1), None).unwrap();
    let log2 = trainer::step(&m, &mut o, &bs[1], locked.as_mut(), 0, (1, 2), None).unwrap();
    assert_eq!((logged(&log, "curating"), logged(&log2, "curating")), (0.0, 0.0));
    let e = build("greedy", &[]).prepare(&model(FusionKind::Sum)).unwrap_err().to_string();
    assert!(e.contains("mmtm: 3"), "{e}");
    let e = build("greedy", &[]).prepare(&mmtm_model(FusionKind::Concat)).unwrap_err().to_string();
    assert!(e.contains("fusion: \"sum\""), "{e}");
    assert!(build("greedy", &[("greedy_variant", text("bb"))]).prepare(&mmtm_model(FusionKind::Concat)).is_ok());
}
