//! gapscope's training against PyTorch's (fixtures from tests/fixtures/gen_train.py, which
//! builds the same model in tests/fixtures/torch_models.py): a PyTorch state dict loads by name,
//! the forward pass in evaluation and training mode gives PyTorch's logits, and three steps of
//! the warm-up loss under SGD (momentum, weight decay, Nesterov), Adam and AdamW give PyTorch's
//! losses and final state (parameters, running statistics, num_batches_tracked).

mod common;
use common::*;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/train");

fn setup() -> String {
    format!(
        "let data = dataset(\"synthetic\", #{{ n: 60, classes: 3, audio_shape: [1, 8, 8], visual_shape: [6], seed: 1 }});
        fn fresh(data) {{ let m = model(data, #{{ encoders: [\"cnn:4\", \"mlp:16,8\"], device: \"cpu\" }}); load_checkpoint(\"{FIX}/init.safetensors\", m); m }}
        fn diff(a, b) {{ (a.to(\"float64\") - b.to(\"float64\")).abs().max().item() }}
        let b = load_safetensors(\"{FIX}/batch.safetensors\");
        let batch = #{{ audio: b.audio, visual: b.visual, labels: b.labels }};"
    )
}

#[test]
fn a_pytorch_state_dict_loads_by_name_and_gives_pytorchs_logits() {
    let src = format!(
        "{} let m = fresh(data);
        let ev = forward(m, batch);
        let tr = forward(fresh(data), batch, #{{ train: true }});
        [diff(ev.fused, b.eval_fused), diff(ev.first, b.eval_first), diff(ev.second, b.eval_second),
         diff(tr.fused, b.train_fused), diff(tr.first, b.train_first), diff(tr.second, b.train_second)]",
        setup()
    );
    let diffs: Vec<f64> = eval_ok(&src).into_array().unwrap().iter().map(|v| v.as_float().unwrap()).collect();
    eprintln!("logit diffs {diffs:?}");
    assert!(diffs.iter().all(|&d| d < 1e-5), "max abs differences from PyTorch: {diffs:?}");
}

#[test]
fn three_optimizer_steps_match_pytorch() {
    for (name, opts) in [
        ("sgd", "kind: \"sgd\", lr: 0.1, momentum: 0.9, weight_decay: 1e-4"),
        ("sgd_nesterov", "kind: \"sgd\", lr: 0.1, momentum: 0.9, weight_decay: 1e-3, nesterov: true"),
        ("adam", "kind: \"adam\", lr: 0.01, weight_decay: 1e-3"),
        ("adamw", "kind: \"adamw\", lr: 0.01, betas: [0.8, 0.99], weight_decay: 0.05"),
    ] {
        let src = format!(
            "{} let m = fresh(data); let o = optimizer(m, #{{ {opts} }});
            let losses = [];
            for i in 0..3 {{ losses.push(train_step(m, o, batch, #{{ loss: \"warmup\" }}).loss); }}
            let want = load_safetensors(\"{FIX}/steps_{name}.safetensors\");
            let sd = m.state_dict();
            let worst = 0.0; let worst_name = \"\";
            for k in sd.keys() {{ let d = diff(sd[k], want[k]); if d > worst {{ worst = d; worst_name = k; }} }}
            let missing = want.keys().filter(|k| k != \"losses\" && !(k in sd));
            [diff(tensor(losses), want.losses), worst, worst_name, missing.len, sd.keys().len]",
            setup()
        );
        let v = eval_ok(&src).into_array().unwrap();
        let (loss_diff, worst) = (v[0].as_float().unwrap(), v[1].as_float().unwrap());
        eprintln!("{name}: loss diff {loss_diff:.2e}, state diff {worst:.2e}");
        assert!(loss_diff < 1e-5, "{name}: losses differ from PyTorch's by {loss_diff}");
        assert!(worst < 1e-5, "{name}: state differs from PyTorch's by {worst} at {}", v[2]);
        assert_eq!(v[3].as_int().unwrap(), 0, "{name}: PyTorch has names gapscope lacks");
        assert_eq!(v[4].as_int().unwrap(), 24, "{name}: the state dict's size");
    }
}

/// A ResNet-18 pair at a small input size (32x32 spectrograms, two 32x32 frames) trains for one
/// epoch, and its checkpoint loads into the PyTorch version with `strict=True` and gives the
/// same logits there (checked by tests/fixtures/check_torch_load.py under the venv's Python).
#[test]
fn a_resnet18_checkpoint_loads_into_pytorch_and_gives_the_same_logits() {
    let dir = temp_dir("torch-load");
    let d = dir.display().to_string().replace('\\', "/");
    let src = format!(
        "let data = dataset(\"synthetic\", #{{ n: 40, classes: 4, audio_shape: [1, 32, 32], visual_shape: [3, 2, 32, 32], seed: 2 }});
        let m = model(data, #{{ encoders: [\"resnet18\", \"resnet18\"], seed: 3, device: \"cpu\" }});
        let o = optimizer(m, #{{ lr: 0.01 }});
        let terms = train_epoch(m, o, data.train, #{{ batch: 8, quiet: true }});
        save_checkpoint(\"{d}/ck\", m, o, #{{ epoch: 0 }});
        let b = ();
        for x in data.test.batches(#{{ batch: 6 }}) {{ b = x; break; }}
        let out = forward(m, b);
        save_safetensors(#{{ audio: b.audio, visual: b.visual, fused: out.fused, first: out.first, second: out.second }}, \"{d}/batch.safetensors\");
        [terms.loss, data.train.len, m.parameters]"
    );
    let v = eval_ok(&src).into_array().unwrap();
    let loss = v[0].as_float().unwrap();
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    let steps = (v[1].as_int().unwrap() + 7) / 8;
    // Two ResNet-18 trunks (11.17M each, 1- and 3-channel conv1) and a 1024 -> 4 head.
    assert_eq!(v[2].as_int().unwrap(), 11_170_240 + 11_176_512 + 1024 * 4 + 4);
    let python = std::env::var("GAPSCOPE_PYTHON").expect("GAPSCOPE_PYTHON is set by scripts/setup.sh in .cargo/config.toml");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check_torch_load.py");
    let out = std::process::Command::new(python)
        .args([script, &format!("{d}/ck/epoch-0000"), &format!("{d}/batch.safetensors"), "resnet18", "resnet18", "4", &steps.to_string()])
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{said}");
    assert!(out.status.success(), "PyTorch could not load the checkpoint or disagrees: {said}");
    std::fs::remove_dir_all(&dir).ok();
}
