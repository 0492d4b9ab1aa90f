//! Modality gaps against PyTorch (fixtures from tests/fixtures/gen_gap.py): values, gradients,
//! z-score, dominance; and the Rhai face with its errors.

mod common;
use common::*;
use gapscope::gap::{self, GapKind};
use gapscope::tensor::io::load_safetensors;
use std::collections::HashMap;
use tch::Tensor;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gap/gap.safetensors");

fn fixture() -> HashMap<String, Tensor> {
    load_safetensors(std::path::Path::new(FIXTURE)).unwrap().into_iter().collect()
}

fn vec(t: &Tensor) -> Vec<f64> {
    gap::to_f64_vec("test", t).unwrap()
}

#[test]
fn gaps_and_their_gradients_match_pytorch() {
    let f = fixture();
    for (kind, name) in [(GapKind::Prob, "prob"), (GapKind::Kl, "kl")] {
        let la = f["la"].detach().set_requires_grad(true);
        let lv = f["lv"].detach().set_requires_grad(true);
        let g = gap::gap(&la, &lv, &f["y"], kind).unwrap();
        assert_close(&vec(&g), &vec(&f[&format!("gap_{name}")]), 1e-12);
        g.sum(tch::Kind::Double).backward();
        assert_close(&vec(&la.grad()), &vec(&f[&format!("grad_la_{name}")]), 1e-12);
        assert_close(&vec(&lv.grad()), &vec(&f[&format!("grad_lv_{name}")]), 1e-12);
    }
    // float32 logits give float32 gaps, equal to the float64 ones to float32 precision.
    let g32 = gap::gap(&f["la"].to_kind(tch::Kind::Float), &f["lv"].to_kind(tch::Kind::Float), &f["y"], GapKind::Kl).unwrap();
    assert_eq!(g32.kind(), tch::Kind::Float);
    assert_close(&vec(&g32), &vec(&f["gap_kl"]), 1e-5);
}

#[test]
fn zscore_and_dominance_match_numpy() {
    let f = fixture();
    let zs = gap::zscore(&f["gap_prob"]).unwrap();
    assert_close(&vec(&zs.z), &vec(&f["z_prob"]), 1e-12);
    let d = gap::dominance(&f["la"], &f["lv"], &f["y"]).unwrap();
    assert_close(&d.mean_scores, &vec(&f["mean_score"]), 1e-12);
    assert_eq!(d.dominant, usize::from(d.mean_scores[1] > d.mean_scores[0]));
    let swapped = gap::dominance(&f["lv"], &f["la"], &f["y"]).unwrap();
    assert_eq!(swapped.dominant, 1 - d.dominant);
}

#[test]
fn rhai_gap_functions_agree_with_the_fixture() {
    let load = format!("let f = load_safetensors(\"{FIXTURE}\");");
    let (g, shape) = values(&format!("{load} gap(f.la, f.lv, f.y, \"kl\")"));
    assert_eq!(shape, vec![64]);
    assert_close(&g, &vec(&fixture()["gap_kl"]), 1e-12);
    // The named-pair form: any two modalities of a map, in the order given.
    let (pair, _) =
        values(&format!("{load} gap(#{{ audio: f.la, video: f.lv, text: f.la * 0.5 }}, f.y, [\"video\", \"audio\"], \"prob\")"));
    let want: Vec<f64> = vec(&fixture()["gap_prob"]).iter().map(|v| -v).collect();
    assert_close(&pair, &want, 1e-12);
    // modality_gap orients by dominance: the dominant modality comes first.
    let (auto, _) = values(&format!(
        "{load} let r = modality_gap(f.lv, f.la, f.y, #{{ kind: \"prob\" }}); if r.swapped != (r.dominant == 1) {{ throw \"swap\" }} r.gap"
    ));
    let d = gap::dominance(&fixture()["lv"], &fixture()["la"], &fixture()["y"]).unwrap();
    let sign = if d.dominant == 1 { 1.0 } else { -1.0 };
    assert_close(&auto, &vec(&fixture()["gap_prob"]).iter().map(|v| sign * v).collect::<Vec<_>>(), 1e-12);
    let (given, _) = values(&format!("{load} modality_gap(f.lv, f.la, f.y, #{{ order: \"given\" }}).gap"));
    assert_close(&given, &want, 1e-12);
    let (z, _) = values(&format!(
        "{load} let s = f.gap_prob.zscore_stats(); if (s.z - f.gap_prob.zscore()).abs().max().item() != 0.0 {{ throw \"differ\" }} s.z"
    ));
    assert_close(&z, &vec(&fixture()["z_prob"]), 1e-12);
}

#[test]
fn gap_errors_name_the_problem_and_the_line() {
    let e = eval_err("let la = randn([4, 3]);\nlet lv = randn([4, 3]);\ngap(la, lv, tensor([0, 1, 2, 3]), \"prob\")");
    assert!(e.contains("test.rhai:3:") && e.contains("label 3 is outside [0, 3)"), "{e}");
    let e = eval_err("gap(randn([4, 3]), randn([4, 5]), tensor([0, 1, 2, 0]), \"prob\")");
    assert!(e.contains("differ in shape"), "{e}");
    let e = eval_err("gap(randn([4, 3]), randn([4, 3]), tensor([0, 1]), \"prob\")");
    assert!(e.contains("labels must be [4]"), "{e}");
    let e = eval_err("gap(randn([4, 3]), randn([4, 3]), tensor([0.0, 1.0, 2.0, 0.0]), \"prob\")");
    assert!(e.contains("int tensor"), "{e}");
    let e = eval_err("gap(randn([4, 3]), randn([4, 3]), tensor([0, 1, 2, 0]), \"cosine\")");
    assert!(e.contains("\"prob\"") && e.contains("\"kl\""), "{e}");
    let e = eval_err("gap(#{ a: randn([2, 2]) }, tensor([0, 1]), [\"a\", \"b\"], \"prob\")");
    assert!(e.contains("no modality \"b\"") && e.contains("it has: a"), "{e}");
    let e = eval_err("ones(5).zscore()");
    assert!(e.contains("all 5 values are equal"), "{e}");
    let e = eval_err("tensor([1.0, 0.0]).log().zscore()");
    assert!(e.contains("non-finite") && e.contains("index 1"), "{e}");
    let e = eval_err("modality_gap(randn([2, 2]), randn([2, 2]), tensor([0, 1]), #{ kind: \"prob\", ordr: \"auto\" })");
    assert!(e.contains("unknown option \"ordr\"") && e.contains("order"), "{e}");
}
