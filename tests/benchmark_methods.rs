//! BalanceBenchmark's methods beyond Table II (../shared/baselines-2.md): MMPareto, LFM,
//! ReconBoost, UMT, CML and sample-level valuation, and the machinery they stand on (separate
//! heads, per-loss gradients, teachers, modality removal, resampled views), checked on a toy
//! model at the level of the Rust core. Hand-computed values of each rule are unit tests
//! beside the rule (src/train/methods/*.rs).

mod common;
use common::toy::{data, epoch_ctx, max_diff, model, opts, sgd, snapshot};
use gapscope::data::{view, Batch, BatchOptions, Batches, Split};
use gapscope::train::declaration::{with_options, BuildInputs};
use gapscope::train::fusion::FusionKind;
use gapscope::train::method::Method;
use gapscope::train::methods;
use gapscope::train::methods::sample::SampleValuation;
use gapscope::train::model::{Model, ModelSpec};
use gapscope::train::options::Value;
use gapscope::train::removal::{fused_without, Removal};
use gapscope::train::trainer::{self, EpochPlan};
use tch::Tensor;

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn build(name: &str, pairs: &[(&str, Value)]) -> Box<dyn Method> {
    Box::new(methods::build(name, &opts(pairs), &BuildInputs::default()).unwrap())
}

fn first_batch(split: &Split, size: usize) -> Batch {
    Batches::new(split, &BatchOptions { batch_size: size, seed: 1, ..BatchOptions::default() }).unwrap().next().unwrap().unwrap()
}

/// The largest difference over the tensors whose names `pick` accepts.
fn worst(a: &[(String, Tensor)], b: &[(String, Tensor)], pick: impl Fn(&str) -> bool) -> f64 {
    a.iter().zip(b).filter(|((n, _), _)| pick(n)).map(|((_, x), (_, y))| max_diff(x, y)).fold(0.0, f64::max)
}

/// One SGD step of `method` from the seed-1 model on the first batch; the state after it and
/// the step's terms.
#[allow(clippy::type_complexity)] // the parameters and the logged terms, as the step returns them
fn one_step(fusion: FusionKind, method: &mut dyn Method, momentum: f64) -> (Vec<(String, Tensor)>, Vec<(String, f64)>) {
    let (train, _) = data();
    let m = model(fusion);
    let mut o = sgd(&m, momentum);
    let terms = trainer::step(&m, &mut o, &first_batch(&train, 32), method, 0, (0, 1), None).unwrap();
    (snapshot(&m), terms)
}

fn term(terms: &[(String, f64)], name: &str) -> f64 {
    terms.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no term {name} in {terms:?}")).1
}

#[test]
fn separate_heads_give_the_unimodal_logits_and_leave_the_fused_ones_alone() {
    let (train, _) = data();
    let b = first_batch(&train, 16);
    let plain = model(FusionKind::Concat);
    let heads = model(FusionKind::ConcatHeads);
    let x: Vec<&Tensor> = b.inputs.iter().map(|(_, t)| t).collect();
    let (fp, fh) = (plain.forward_all(&x, false).unwrap(), heads.forward_all(&x, false).unwrap());
    // The separate heads are extra parameters: the shared ones start equal only if drawn
    // before them, so compare the fused logits through the head's own weights instead.
    let w = heads.vs.variables()["fusion.head_0.weight"].copy();
    let by_hand = fh.features[0].matmul(&w.tr()) + heads.vs.variables()["fusion.head_0.bias"].copy();
    assert!(max_diff(&fh.logits.per[0], &by_hand) < 1e-6, "the first unimodal logits are not h_0(x_0)");
    let split_sum = &fp.logits.per[0] + &fp.logits.per[1];
    assert!(max_diff(&fp.logits.fused, &split_sum) < 1e-6);
    assert!(heads.architecture.contains("concat+heads"), "{}", heads.architecture);
    assert!(heads.trainable_parameters().iter().any(|(n, _)| n == "fusion.head_1.weight"));
}

#[test]
fn mmpareto_two_and_four_passes_agree_and_the_heads_keep_the_summed_gradient() {
    let (two, t2) = one_step(FusionKind::ConcatHeads, build("mmpareto", &[]).as_mut(), 0.0);
    let (four, _) = one_step(FusionKind::ConcatHeads, build("mmpareto", &[("passes", Value::Int(4))]).as_mut(), 0.0);
    let d = worst(&two, &four, |_| true);
    assert!(d < 1e-6, "2-pass and 4-pass steps differ by {d}");
    // The warm-up loss is L_mm + Σ L_m with one plain backward: the heads' update must match,
    // the encoders' must not (the Pareto rule changes them).
    let (plain, _) = one_step(FusionKind::ConcatHeads, build("warmup", &[]).as_mut(), 0.0);
    let head = worst(&two, &plain, |n| n.starts_with("fusion."));
    let enc = worst(&two, &plain, |n| n.starts_with("audio_net.") || n.starts_with("visual_net."));
    assert!(head < 1e-6, "the heads' step differs from the summed gradient's by {head}");
    assert!(enc > 1e-5, "the encoders took the plain summed step");
    for name in ["cos_first", "cos_second", "k_first", "k_second"] {
        let v = term(&t2, name);
        assert!(v.is_finite(), "{name} = {v}");
    }
    let k = term(&t2, "k_first");
    assert!(k > 0.0 && k < 1.0);
}

#[test]
fn mmpareto_as_balancebenchmark_released_it_is_the_summed_step_times_two_gamma_on_the_encoders() {
    let (bb, _) = one_step(FusionKind::Concat, build("mmpareto", &[("variant", text("bb_bug")), ("heads", text("split"))]).as_mut(), 0.0);
    let (plain, _) = one_step(FusionKind::Concat, build("warmup", &[]).as_mut(), 0.0);
    let start = snapshot(&model(FusionKind::Concat));
    for ((name, b), ((_, p), (_, s))) in bb.iter().zip(plain.iter().zip(&start)) {
        if name.ends_with("num_batches_tracked") || name.contains("running") {
            continue;
        }
        let (moved_bb, moved_plain) = (b - s, p - s);
        let factor = if name.starts_with("fusion.") { 1.0 } else { 3.0 };
        let d = max_diff(&moved_bb, &(moved_plain * factor));
        assert!(d < 1e-6, "{name}: BB-MMPareto's update is not {factor}x the summed one ({d})");
    }
}

#[test]
fn mmpareto_and_lfm_refuse_a_model_without_their_heads() {
    let m = model(FusionKind::Concat);
    let e = build("mmpareto", &[]).prepare(&m).unwrap_err().to_string();
    assert!(e.contains("heads: \"separate\""), "{e}");
    let e = build("lfm", &[]).prepare(&m).unwrap_err().to_string();
    assert!(e.contains("fusion: \"sum\""), "{e}");
    let e = build("reconboost", &[]).prepare(&m).unwrap_err().to_string();
    assert!(e.contains("shared_mlp"), "{e}");
    assert!(build("lfm", &[("heads", text("split"))]).prepare(&m).is_ok());
}

#[test]
fn lfm_with_no_alignment_is_twice_the_late_fusion_cross_entropy() {
    let (_, t) = one_step(FusionKind::Sum, build("lfm", &[("schedule", text("fixed")), ("alpha_align", Value::Float(0.0))]).as_mut(), 0.0);
    assert!((term(&t, "loss") - 2.0 * term(&t, "ce_fused")).abs() < 1e-6, "{t:?}");
    assert_eq!(term(&t, "alpha_ce"), 1.0);
    // The official fitted schedule at epoch 0: 2·(0.2046·CE + 0.7954·A).
    let (_, t) = one_step(FusionKind::Sum, build("lfm", &[]).as_mut(), 0.0);
    let want = 2.0 * (term(&t, "alpha_ce") * term(&t, "ce_fused") + term(&t, "alpha_align") * term(&t, "align"));
    assert!((term(&t, "loss") - want).abs() < 1e-6);
    assert!((term(&t, "alpha_ce") - 0.204623704).abs() < 1e-9);
}

#[test]
fn lfm_learns_alpha_on_a_validation_batch_within_its_bounds_and_saves_it() {
    let (train, val) = data();
    let m = model(FusionKind::Sum);
    let o = sgd(&m, 0.9);
    let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
    let mut lfm = build("lfm", &[("schedule", text("learned")), ("lr_alpha", Value::Float(10.0))]);
    let e = lfm.begin_epoch(&epoch_ctx(&m, &o, &train, None, &batching, 0)).unwrap_err().to_string();
    assert!(e.contains("pass val: data.val"), "{e}");
    // α_1 ← clip(α_1 − η·a, 0.05, 0.95), with a (the mean H·g over the first weight) saved as hvp.
    let mut moved = false;
    for epoch in 0..3 {
        let before = lfm.state()[0].1.double_value(&[0]);
        lfm.begin_epoch(&epoch_ctx(&m, &o, &train, Some(&val), &batching, epoch)).unwrap();
        let st = lfm.state();
        let (a1, hvp) = (st[0].1.double_value(&[0]), st[1].1.double_value(&[0]));
        assert!(hvp.is_finite() && hvp != 0.0, "H·g = {hvp}");
        assert!((a1 - (before - 10.0 * hvp).clamp(0.05, 0.95)).abs() < 1e-12, "α_1 {before} -> {a1} with a = {hvp}");
        moved |= a1 != before;
    }
    // From BalanceBenchmark's start (α_1 = 0.05) the same rule moves it one way or the other.
    let mut bb = build("lfm", &[("schedule", text("learned")), ("init", text("bb")), ("lr_alpha", Value::Float(10.0))]);
    bb.begin_epoch(&epoch_ctx(&m, &o, &train, Some(&val), &batching, 0)).unwrap();
    moved |= bb.state()[0].1.double_value(&[0]) != 0.05;
    assert!(moved, "α never moved from either start");
    let mut again = build("lfm", &[("schedule", text("learned"))]);
    again.load_state(&lfm.state()).unwrap();
    assert_eq!(again.state()[0].1.double_value(&[0]), lfm.state()[0].1.double_value(&[0]));
}

#[test]
fn removal_by_logit_is_feature_zero_on_a_concat_head_and_input_zero_is_not() {
    let (train, _) = data();
    let b = first_batch(&train, 16);
    let m = model(FusionKind::Concat);
    // Trained a little, so the biases and batch-norm statistics are no longer their zero starts.
    let mut o = sgd(&m, 0.9);
    trainer::epoch(
        &m,
        &mut o,
        &EpochPlan {
            train: &train,
            val: None,
            batching: &BatchOptions { batch_size: 16, ..BatchOptions::default() },
            epoch: 0,
            quiet: true,
            amp: None,
        },
        build("concat", &[]).as_mut(),
    )
    .unwrap();
    let x: Vec<&Tensor> = b.inputs.iter().map(|(_, t)| t).collect();
    let fwd = m.forward_all(&x, false).unwrap();
    let keep = Tensor::from_slice(&[1.0f32, 0.0]).reshape([1, 2]).repeat([16, 1]);
    let by_logit = fused_without(&m, &x, &fwd, &keep, Removal::Logit, false).unwrap();
    let by_feature = fused_without(&m, &x, &fwd, &keep, Removal::FeatureZero, false).unwrap();
    let by_input = fused_without(&m, &x, &fwd, &keep, Removal::InputZero, false).unwrap();
    assert!(max_diff(&by_logit, &by_feature) < 1e-6);
    // z_p + l_r − b/2 = z_s.
    let bias = m.vs.variables()["fusion.fc_out.bias"].copy();
    let d = max_diff(&(&by_logit + &fwd.logits.per[1] - bias / 2.0), &fwd.logits.fused);
    assert!(d < 1e-5, "z_p + l_r - b/2 differs from z_s by {d}");
    // An MLP's biases make its output on a zero input non-zero.
    assert!(max_diff(&by_input, &by_feature) > 1e-4);
    // Features zeroed are exactly zero at the head: the head alone on [x_a; 0] gives the same.
    let zeroed = m.head_all(&[fwd.features[0].shallow_clone(), fwd.features[1].zeros_like()]).unwrap();
    assert_eq!(max_diff(&zeroed.fused, &by_feature), 0.0);
    let shared = Model::new(&ModelSpec { fusion: FusionKind::Shared, ..m.spec.clone() }).unwrap();
    assert!(Removal::Logit.check("cml", &shared).is_err());
}

#[test]
fn cml_in_balancebenchmarks_form_with_no_penalty_is_the_mean_of_the_two_cross_entropies() {
    let (_, t) = one_step(FusionKind::Concat, build("cml", &[("variant", text("bb")), ("lambda", Value::Float(0.0))]).as_mut(), 0.0);
    assert!((term(&t, "loss") - 0.5 * (term(&t, "ce_fused") + term(&t, "ce_removed"))).abs() < 1e-6, "{t:?}");
    let (_, t) = one_step(FusionKind::Concat, build("cml", &[("lambda", Value::Float(1.0))]).as_mut(), 0.0);
    assert!((term(&t, "loss") - 0.5 * (term(&t, "ce_fused") + term(&t, "ce_removed")) - term(&t, "penalty")).abs() < 1e-6);
    assert!(term(&t, "penalty") >= 0.0);
    for removal in ["feature_zero", "input_zero"] {
        let (_, t) = one_step(FusionKind::Concat, build("cml", &[("removal", text(removal))]).as_mut(), 0.0);
        assert!(term(&t, "loss").is_finite());
    }
}

#[test]
fn umt_with_no_distillation_is_concat_bit_for_bit_and_its_teachers_stay_frozen() {
    let (a, _) = one_step(FusionKind::Concat, build("umt", &[("lambda", Value::Float(0.0))]).as_mut(), 0.9);
    let (b, _) = one_step(FusionKind::Concat, build("concat", &[]).as_mut(), 0.9);
    assert_eq!(worst(&a, &b, |_| true), 0.0);
    // Teachers are trained before the first epoch, then every step distils from them.
    let (train, val) = data();
    let mut umt = build("umt", &[("teacher_epochs", Value::Int(2))]);
    let lone = model(FusionKind::Concat);
    let e = trainer::step(&lone, &mut sgd(&lone, 0.0), &first_batch(&train, 8), umt.as_mut(), 0, (0, 1), None)
        .expect_err("a lone step without teachers")
        .to_string();
    assert!(e.contains("train_epoch"), "a lone step without teachers should say how to train them: {e}");
    let m = model(FusionKind::Concat);
    let o = sgd(&m, 0.9);
    let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
    umt.begin_epoch(&epoch_ctx(&m, &o, &train, Some(&val), &batching, 0)).unwrap();
    let teachers: Vec<(String, Tensor)> = umt.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
    assert!(
        teachers.iter().any(|(n, _)| n.starts_with("teacher0.audio_net."))
            && teachers.iter().any(|(n, _)| n.starts_with("teacher1.visual_net."))
    );
    let acc = teachers.iter().find(|(n, _)| n == "teacher0_val_acc").unwrap().1.double_value(&[0]);
    assert!(acc > 0.34, "the audio teacher learned nothing on val ({acc})");
    let (distilled, t) = one_step(FusionKind::Concat, umt.as_mut(), 0.0);
    let (plain, _) = one_step(FusionKind::Concat, build("concat", &[]).as_mut(), 0.0);
    // The distillation term reaches the encoders only: the head's step is concat's exactly.
    assert_eq!(worst(&distilled, &plain, |n| n.starts_with("fusion.")), 0.0);
    assert!(worst(&distilled, &plain, |n| n.starts_with("audio_net.")) > 0.0);
    assert!(term(&t, "distill_first") > 0.0);
    let after = umt.state();
    assert_eq!(worst(&teachers, &after, |_| true), 0.0, "a step changed the teachers");
    // A restored method distils from the same teachers.
    let mut restored = build("umt", &[]);
    restored.load_state(&after).unwrap();
    let (again, _) = one_step(FusionKind::Concat, restored.as_mut(), 0.0);
    assert_eq!(worst(&again, &distilled, |_| true), 0.0);
}

#[test]
fn sample_values_do_not_depend_on_the_batch_and_the_view_adds_the_tables_copies() {
    let (train, _) = data();
    let m = model(FusionKind::Concat);
    let sv = with_options(&methods::sample::SPEC, &[], SampleValuation::new).unwrap();
    let small = sv.valuate(&m, &train, &BatchOptions { batch_size: 7, ..BatchOptions::default() }).unwrap();
    let large = sv.valuate(&m, &train, &BatchOptions { batch_size: 64, ..BatchOptions::default() }).unwrap();
    assert_eq!(small, large, "per-sample values changed with the batch size");
    for phi in &small {
        assert!(phi[0] + phi[1] == 0.0 || phi[0] + phi[1] == 2.0, "φ_a + φ_v = {} is not v(full)", phi[0] + phi[1]);
        assert!(phi.iter().all(|p| [-0.5, 0.0, 0.5, 1.0, 1.5].contains(p)), "{phi:?}");
    }
    let mut method = build("sample", &[("warmup", Value::Int(0))]);
    let o = sgd(&m, 0.0);
    let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
    method.begin_epoch(&epoch_ctx(&m, &o, &train, None, &batching, 0)).unwrap();
    let items = method.epoch_view().unwrap().to_vec();
    let expected: usize = small.iter().map(|p| p.iter().map(|&x| gapscope::train::methods::sample::copies(x)).sum::<usize>()).sum();
    assert_eq!(items.len(), train.len() + expected);
    assert!(items[..train.len()].iter().zip(train.indices.iter()).all(|((r, bits), i)| r == i && *bits == 3));
    assert!(items[train.len()..].iter().all(|(_, bits)| *bits == 1 || *bits == 2));
    // Batches over the view keep each row's label, and its keep mask.
    let labels = Vec::<i64>::try_from(&train.dataset.labels).unwrap();
    for b in view::batches(&train, &items, &batching, 2).unwrap() {
        let b = b.unwrap();
        let idx = Vec::<i64>::try_from(&b.indices).unwrap();
        let lab = Vec::<i64>::try_from(&b.labels).unwrap();
        assert!(idx.iter().zip(&lab).all(|(i, l)| labels[*i as usize] == *l));
        assert_eq!(b.keep.as_ref().unwrap().size(), vec![idx.len() as i64, 2]);
    }
    // An epoch over the view trains (its copies' removed features are zero at the head).
    let mut o = sgd(&m, 0.0);
    let r = trainer::epoch(
        &m,
        &mut o,
        &EpochPlan { train: &train, val: None, batching: &batching, epoch: 0, quiet: true, amp: None },
        method.as_mut(),
    )
    .unwrap();
    assert_eq!(r.iter().find(|(n, _)| n == "extra_items").unwrap().1, expected as f64);
}

#[test]
fn reconboost_moves_only_the_scheduled_learner_in_phase_one_and_beta_in_phase_two() {
    let (train, _) = data();
    let m = model(FusionKind::SharedMlp);
    let mut o = sgd(&m, 0.9);
    let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
    let mut rb = build("reconboost", &[("stage_epochs", Value::Int(1)), ("correct_epochs", Value::Int(1))]);
    let before = snapshot(&m);
    let beta0 = rb.state()[0].1.double_value(&[0]);
    trainer::epoch(&m, &mut o, &EpochPlan { train: &train, val: None, batching: &batching, epoch: 0, quiet: true, amp: None }, rb.as_mut())
        .unwrap();
    let after = snapshot(&m);
    let moved = |n: &str| n.contains("weight") || n.contains("bias");
    assert_eq!(
        worst(&before, &after, |n| n.starts_with("visual_net.") && moved(n)),
        0.0,
        "phase 1 of the audio learner moved the visual encoder"
    );
    assert!(worst(&before, &after, |n| n.starts_with("audio_net.")) > 0.0);
    assert!(worst(&before, &after, |n| n.starts_with("fusion.")) > 0.0);
    assert_eq!(rb.state()[0].1.double_value(&[0]), beta0, "β moved in phase 1");
    trainer::epoch(&m, &mut o, &EpochPlan { train: &train, val: None, batching: &batching, epoch: 1, quiet: true, amp: None }, rb.as_mut())
        .unwrap();
    assert_ne!(rb.state()[0].1.double_value(&[0]), beta0, "β did not move in phase 2");
    let after2 = snapshot(&m);
    assert!(worst(&after, &after2, |n| n.starts_with("visual_net.")) > 0.0);
    // Stage 1 trains the visual learner: the audio encoder stays.
    trainer::epoch(&m, &mut o, &EpochPlan { train: &train, val: None, batching: &batching, epoch: 2, quiet: true, amp: None }, rb.as_mut())
        .unwrap();
    assert_eq!(worst(&after2, &snapshot(&m), |n| n.starts_with("audio_net.") && moved(n)), 0.0);
}
