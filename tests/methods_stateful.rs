//! PMR, MLA and D&R: the rules of ../shared/baselines.md §3, §6, §7 checked on a toy model,
//! at the level of the Rust core (prototypes, rounds and resets are not visible from a step's
//! result alone).

mod common;
use common::toy::{data, max_diff, model, opts, sgd, snapshot};
use gapscope::data::{BatchOptions, Batches};
use gapscope::train::declaration::{with_options, BuildInputs};
use gapscope::train::fusion::{entropy_gates, FusionKind};
use gapscope::train::method::{cross_entropy, EpochContext, Method};
use gapscope::train::methods::{dr, dr::Relearn, mla, mla::Mla, pmr, pmr::Pmr};
use gapscope::train::options::Value;
use gapscope::train::trainer::{self, EpochPlan};
use tch::{Kind, Tensor};

#[test]
fn pmr_prototypes_are_the_class_means_of_the_validation_features() {
    let (train, val) = data();
    let m = model(FusionKind::Concat);
    let opt = sgd(&m, 0.9);
    let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
    let mut pmr = with_options(&pmr::SPEC, &opts(&[("source", Value::Text("val".into()))]), Pmr::new).unwrap();
    pmr.begin_epoch(&EpochContext {
        model: &m,
        opt: &opt,
        train: &train,
        val: Some(&val),
        batching: &batching,
        epoch: 0,
        quiet: true,
        amp: None,
        run_epoch: trainer::epoch,
    })
    .unwrap();
    let protos = pmr.prototypes().unwrap();
    // The same means by hand: a plain loop over every validation feature row.
    let f = trainer::features(&m, &val, &BatchOptions { shuffle: false, augment: false, ..batching.clone() }, None).unwrap();
    let labels = Vec::<i64>::try_from(&f.labels).unwrap();
    for (which, feats) in [f.first(), f.second()].into_iter().enumerate() {
        for c in 0..3 {
            let rows: Vec<i64> = (0..labels.len() as i64).filter(|&i| labels[i as usize] == c).collect();
            let mean = feats.index_select(0, &Tensor::from_slice(&rows)).mean_dim([0i64].as_slice(), false, Kind::Double);
            let d = max_diff(&protos[which].get(c), &mean);
            assert!(d < 1e-5, "modality {which} class {c}: {d}");
        }
    }
}

#[test]
fn pmr_momentum_blends_exactly_from_the_third_refresh() {
    let (train, val) = data();
    let m = model(FusionKind::Concat);
    let opt = sgd(&m, 0.9);
    let mut blended =
        with_options(&pmr::SPEC, &opts(&[("momentum", Value::Float(0.5)), ("fraction", Value::Float(0.3))]), Pmr::new).unwrap();
    let mut plain = with_options(&pmr::SPEC, &opts(&[("momentum", Value::Float(0.0)), ("fraction", Value::Float(0.3))]), Pmr::new).unwrap();
    let mut before = None;
    for epoch in 0..3 {
        // A different shuffle each epoch, so the subsets (and their means) differ.
        let batching = BatchOptions { batch_size: 16, seed: 10 + epoch as u64, ..BatchOptions::default() };
        let ctx = EpochContext {
            model: &m,
            opt: &opt,
            train: &train,
            val: Some(&val),
            batching: &batching,
            epoch,
            quiet: true,
            amp: None,
            run_epoch: trainer::epoch,
        };
        if epoch == 2 {
            before = Some(blended.prototypes().unwrap()[0].copy());
        }
        blended.begin_epoch(&ctx).unwrap();
        plain.begin_epoch(&ctx).unwrap();
        if epoch < 2 {
            assert_eq!(
                max_diff(blended.prototypes().unwrap()[0], plain.prototypes().unwrap()[0]),
                0.0,
                "no momentum before the third refresh"
            );
        }
    }
    let fresh = plain.prototypes().unwrap()[0].shallow_clone();
    let want = &fresh * 0.5 + before.as_ref().unwrap() * 0.5;
    assert!(max_diff(blended.prototypes().unwrap()[0], &want) < 1e-6);
    assert!(max_diff(&fresh, before.as_ref().unwrap()) > 1e-4, "the subsets should differ");
}

#[test]
fn pmr_with_alpha_zero_trains_an_epoch_exactly_as_concat() {
    let (train, val) = data();
    let batching = BatchOptions { batch_size: 16, seed: 4, ..BatchOptions::default() };
    let plan = EpochPlan { train: &train, val: Some(&val), batching: &batching, epoch: 0, quiet: true, amp: None };
    let (a, b) = (model(FusionKind::Concat), model(FusionKind::Concat));
    let (mut oa, mut ob) = (sgd(&a, 0.9), sgd(&b, 0.9));
    trainer::epoch(&a, &mut oa, &plan, &mut gapscope::train::methods::build("concat", &[], &BuildInputs::default()).unwrap()).unwrap();
    let terms =
        trainer::epoch(&b, &mut ob, &plan, &mut with_options(&pmr::SPEC, &opts(&[("alpha", Value::Float(0.0))]), Pmr::new).unwrap())
            .unwrap();
    for ((k, x), (_, y)) in snapshot(&a).iter().zip(snapshot(&b).iter()) {
        assert_eq!(max_diff(x, y), 0.0, "{k}");
    }
    assert!(terms.iter().any(|(k, _)| k == "proto_ce_first"));
}

#[test]
fn mla_rounds_are_one_sgd_step_per_modality_through_the_shared_head() {
    let (train, _) = data();
    let batch =
        Batches::new(&train, &BatchOptions { batch_size: 32, seed: 1, ..BatchOptions::default() }).unwrap().next().unwrap().unwrap();
    let m = model(FusionKind::Shared);
    let mut opt = sgd(&m, 0.0);
    let start = snapshot(&m);
    trainer::step(&m, &mut opt, &batch, &mut with_options(&mla::SPEC, &[], Mla::new).unwrap(), 0, (0, 1), None).unwrap();
    let after = snapshot(&m);
    // By hand on a copy: CE(h(x_audio)) step, then CE(h(x_visual)) step with the updated head.
    let r = model(FusionKind::Shared);
    let labels = &batch.labels;
    let params = r.trainable_parameters();
    for (round, name) in ["audio", "visual"].iter().enumerate() {
        let x = &batch.inputs.iter().find(|(n, _)| n == name).unwrap().1;
        let feats = r.encoders[round].forward(x, true).unwrap();
        let loss = cross_entropy(&r.fusion.shared_logits(&feats).unwrap(), labels).unwrap().mean(Kind::Float);
        let used: Vec<&Tensor> = params.iter().map(|(_, p)| p).collect();
        let grads = Tensor::run_backward(&[loss], &used, false, false);
        let _guard = tch::no_grad_guard();
        for ((_, p), g) in params.iter().zip(grads) {
            if g.defined() {
                let mut p = p.shallow_clone();
                let _ = p.f_sub_(&(g * 0.1)).unwrap();
            }
        }
    }
    for ((k, x), (_, y)) in after.iter().zip(snapshot(&r).iter()) {
        assert!(max_diff(x, y) < 1e-6, "{k}: {}", max_diff(x, y));
    }
    // Each encoder moved (its own round), the head moved twice.
    for (k, x) in &after {
        let s = &start.iter().find(|(n, _)| n == k).unwrap().1;
        if k.ends_with("weight") {
            assert!(max_diff(x, s) > 0.0, "{k} did not train");
        }
    }
}

#[test]
fn mla_entropy_gates_follow_the_spec() {
    let c = 6;
    let uniform = Tensor::zeros([1, c], (Kind::Float, tch::Device::Cpu));
    let mut one_hot = vec![0f32; c as usize];
    one_hot[2] = 1000.0;
    let sharp = Tensor::from_slice(&one_hot).reshape([1, c]);
    let g = entropy_gates(&[sharp.shallow_clone(), uniform.shallow_clone()]).unwrap();
    assert!((g.double_value(&[0, 0]) - 6.0 / 7.0).abs() < 1e-5, "{g}");
    let g = entropy_gates(&[uniform.shallow_clone(), uniform.shallow_clone()]).unwrap();
    assert!((g.double_value(&[0, 0]) - 0.5).abs() < 1e-7);
    // Three modalities: H = (0, ln 6, ln 6), so λ = (6, 1, 1) / 8.
    let g = entropy_gates(&[sharp.shallow_clone(), uniform.shallow_clone(), uniform.shallow_clone()]).unwrap();
    assert!((g.double_value(&[0, 0]) - 0.75).abs() < 1e-5 && (g.double_value(&[0, 2]) - 0.125).abs() < 1e-5, "{g}");
    // A sample's gates do not depend on the rest of its batch.
    let a = Tensor::randn([5, c], (Kind::Float, tch::Device::Cpu));
    let b = Tensor::randn([5, c], (Kind::Float, tch::Device::Cpu));
    let whole = entropy_gates(&[a.shallow_clone(), b.shallow_clone()]).unwrap();
    let alone = entropy_gates(&[a.narrow(0, 3, 1), b.narrow(0, 3, 1)]).unwrap();
    assert!(max_diff(&whole.narrow(0, 3, 1), &alone) < 1e-7);
}

#[test]
fn mla_needs_a_shared_head_of_one_feature_size() {
    let m = model(FusionKind::Concat);
    let err = with_options(&mla::SPEC, &[], Mla::new).unwrap().prepare(&m).unwrap_err().to_string();
    assert!(err.contains("fusion: \"shared\""), "{err}");
}

#[test]
fn dr_resets_blend_towards_the_start_and_leave_the_head_alone() {
    let (train, val) = data();
    let m = model(FusionKind::Concat);
    let mut opt = sgd(&m, 0.9);
    let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
    let mut dr = with_options(&dr::SPEC, &opts(&[("every", Value::Int(1)), ("lambda", Value::Float(0.0))]), Relearn::new).unwrap();
    let initial = snapshot(&m);
    for epoch in 0..3 {
        let plan = EpochPlan { train: &train, val: Some(&val), batching: &batching, epoch, quiet: true, amp: None };
        // λ = 0: each reset has w = 0, so training is concat's.
        trainer::epoch(&m, &mut opt, &plan, &mut dr).unwrap();
    }
    let trained = snapshot(&m);
    assert!(
        dr.state().iter().any(|(k, t)| k == "resets" && t.double_value(&[0]) == 1.0),
        "one reset (after epoch 1, at the start of epoch 2)"
    );
    // w = 1 puts every encoder parameter back to θ0 exactly; the head and BN buffers stay.
    dr.reset(&m, &[1.0, 1.0]).unwrap();
    for (k, now) in snapshot(&m) {
        let (start, before) = (&initial.iter().find(|(n, _)| *n == k).unwrap().1, &trained.iter().find(|(n, _)| *n == k).unwrap().1);
        if m.encoder_of(&k).is_some() && !k.contains("running") && !k.ends_with("num_batches_tracked") {
            assert_eq!(max_diff(&now, start), 0.0, "{k} not restored");
        } else {
            assert_eq!(max_diff(&now, before), 0.0, "{k} changed by a reset");
        }
    }
    // The concat comparison: the same three epochs without D&R.
    let c = model(FusionKind::Concat);
    let mut oc = sgd(&c, 0.9);
    for epoch in 0..3 {
        let plan = EpochPlan { train: &train, val: Some(&val), batching: &batching, epoch, quiet: true, amp: None };
        trainer::epoch(&c, &mut oc, &plan, &mut gapscope::train::methods::build("concat", &[], &BuildInputs::default()).unwrap()).unwrap();
    }
    for ((k, x), (_, y)) in trained.iter().zip(snapshot(&c).iter()) {
        assert_eq!(max_diff(x, y), 0.0, "λ = 0 changed {k}");
    }
}

#[test]
fn dr_without_a_validation_split_says_which_to_add() {
    let (train, _) = data();
    let m = model(FusionKind::Concat);
    let mut opt = sgd(&m, 0.9);
    let batching = BatchOptions { batch_size: 16, ..BatchOptions::default() };
    let plan = EpochPlan { train: &train, val: None, batching: &batching, epoch: 0, quiet: true, amp: None };
    let err = trainer::epoch(&m, &mut opt, &plan, &mut with_options(&dr::SPEC, &[], Relearn::new).unwrap()).unwrap_err().to_string();
    assert!(err.contains("add a val split"), "{err}");
    let err = trainer::epoch(
        &m,
        &mut opt,
        &plan,
        &mut with_options(&pmr::SPEC, &opts(&[("source", Value::Text("val".into()))]), Pmr::new).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("add a val split"), "{err}");
}
