//! Table II methods against their reference code, rewritten in PyTorch by
//! tests/fixtures/gen_methods.py on the model and batch of gen_train.py: one plain SGD step
//! (lr 1, no momentum or weight decay, so the parameter change is the modulated gradient) of
//! OGM (no GE; both parameter selections), MMCosine (and its eval-mode cosine logits), and AGM
//! (hooks and eval-mode zero-input passes; once without and once with its norm clipping).

mod common;
use common::*;

const TRAIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/train");
const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/methods");

/// Runs one step of `method` (a Rhai expression) with inputs scaled by `scale`; returns the
/// largest state-dict difference from the fixture, the loss difference, and the step's map.
fn step_against(fixture: &str, method: &str, scale: f64) -> (f64, f64, rhai::Map) {
    let src = format!(
        "let data = dataset(\"synthetic\", #{{ n: 60, classes: 3, audio_shape: [1, 8, 8], visual_shape: [6], seed: 1 }});
        let m = model(data, #{{ encoders: [\"cnn:4\", \"mlp:16,8\"], device: \"cpu\" }});
        load_checkpoint(\"{TRAIN}/init.safetensors\", m);
        fn diff(a, b) {{ (a.to(\"float64\") - b.to(\"float64\")).abs().max().item() }}
        let b = load_safetensors(\"{TRAIN}/batch.safetensors\");
        let batch = #{{ audio: b.audio * {scale}, visual: b.visual * {scale}, labels: b.labels }};
        let o = optimizer(m, #{{ kind: \"sgd\", lr: 1.0, momentum: 0.0, weight_decay: 0.0 }});
        let terms = train_step(m, o, batch, #{{ method: {method} }});
        let want = load_safetensors(\"{FIX}/{fixture}.safetensors\");
        let sd = m.state_dict();
        let worst = 0.0;
        for k in sd.keys() {{ let d = diff(sd[k], want[k]); if d > worst {{ worst = d; }} }}
        #{{ worst: worst, loss: (terms.loss - want.loss.item()).abs(), terms: terms, want: want, model: m }}"
    );
    let out = eval_ok(&src).try_cast::<rhai::Map>().unwrap();
    let f = |k: &str| out[k].as_float().unwrap();
    (f("worst"), f("loss"), out)
}

fn want(out: &rhai::Map, key: &str) -> Vec<f64> {
    let t = out["want"].clone().try_cast::<rhai::Map>().unwrap()[key].clone().try_cast::<gapscope::host::ScriptTensor>().unwrap();
    Vec::<f64>::try_from(&t.tensor().to_kind(tch::Kind::Double)).unwrap()
}

fn term(out: &rhai::Map, key: &str) -> f64 {
    out["terms"].clone().try_cast::<rhai::Map>().unwrap()[key].as_float().unwrap()
}

#[test]
fn ogm_scales_the_dominant_encoders_gradients_as_the_reference() {
    for (selection, params) in [("weights", "weights"), ("conv_only", "conv_only")] {
        let (worst, loss, out) = step_against(
            &format!("ogm_{selection}"),
            &format!("method(\"ogm-ge\", #{{ alpha: 0.8, ge: false, params: \"{params}\" }})"),
            1.0,
        );
        let k = want(&out, "coeffs");
        eprintln!("ogm {selection}: state diff {worst:.2e}, coefficients {k:?}");
        assert_close(&[term(&out, "coef_first"), term(&out, "coef_second")], &k, 1e-6);
        assert!(worst < 1e-5 && loss < 1e-6, "ogm {selection}: state differs by {worst}, loss by {loss}");
    }
}

#[test]
fn mmcosine_gives_the_references_cosine_logits_and_step() {
    let (worst, loss, _) = step_against("mmcosine", "\"mmcosine\"", 1.0);
    assert!(worst < 1e-5 && loss < 1e-6, "mmcosine: state differs by {worst}, loss by {loss}");
    // Evaluation after the step uses the cosine head too.
    let src = format!(
        "let data = dataset(\"synthetic\", #{{ n: 60, classes: 3, audio_shape: [1, 8, 8], visual_shape: [6], seed: 1 }});
        let m = model(data, #{{ encoders: [\"cnn:4\", \"mlp:16,8\"], device: \"cpu\" }});
        load_checkpoint(\"{TRAIN}/init.safetensors\", m);
        let b = load_safetensors(\"{TRAIN}/batch.safetensors\");
        let batch = #{{ audio: b.audio, visual: b.visual, labels: b.labels }};
        let o = optimizer(m, #{{ kind: \"sgd\", lr: 1.0, momentum: 0.0, weight_decay: 0.0 }});
        train_step(m, o, batch, #{{ method: \"mmcosine\" }});
        let want = load_safetensors(\"{FIX}/mmcosine.safetensors\");
        let ev = forward(m, batch);
        let d = 0.0;
        for k in [\"fused\", \"first\", \"second\"] {{ d = max(d, (ev[k] - want[`eval_${{k}}`]).abs().max().item()); }}
        [d, ev.first.abs().max().item()]"
    );
    let v: Vec<f64> = eval_ok(&src).into_array().unwrap().iter().map(|x| x.as_float().unwrap()).collect();
    assert!(v[0] < 1e-5, "eval cosine logits differ from the reference by {}", v[0]);
    assert!(v[1] <= 10.0 + 1e-9, "|l_m| must stay within the scale: {}", v[1]);
}

#[test]
fn agm_step_matches_the_reference_with_and_without_clipping() {
    for (fixture, scale) in [("agm", 1.0), ("agm_clip", 30.0)] {
        let (worst, loss, out) = step_against(fixture, "method(\"agm\", #{ alpha: 1.5 })", scale);
        let k = want(&out, "coeffs");
        let s = want(&out, "scores");
        eprintln!("{fixture}: state diff {worst:.2e}, coefficients {k:?}, clipped {:?}", want(&out, "clipped"));
        assert_close(&[term(&out, "coef_first"), term(&out, "coef_second")], &k, 1e-5);
        assert_close(&[term(&out, "ce_first"), term(&out, "ce_second")], &s, 1e-5);
        assert!(worst < 2e-5 && loss < 1e-5, "{fixture}: state differs by {worst}, loss by {loss}");
    }
}
