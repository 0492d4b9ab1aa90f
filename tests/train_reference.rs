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

/// Trains `encoder` on a synthetic pair (spectrograms `audio`, frames `visual`) for one epoch,
/// saves a checkpoint and a batch's logits, and has tests/fixtures/check_torch_load.py load the
/// checkpoint into the PyTorch version with `strict=True` and compare the logits there. Returns
/// the model's parameter count.
fn trains_and_loads_into_pytorch(name: &str, encoder: &str, audio: &str, visual: &str, n: usize) -> i64 {
    let dir = temp_dir(name);
    let d = dir.display().to_string().replace('\\', "/");
    let src = format!(
        "let data = dataset(\"synthetic\", #{{ n: {n}, classes: 4, audio_shape: {audio}, visual_shape: {visual}, seed: 2 }});
        let m = model(data, #{{ encoders: [\"{encoder}\", \"{encoder}\"], seed: 3, device: \"cpu\" }});
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
    let python = std::env::var("GAPSCOPE_PYTHON").expect("GAPSCOPE_PYTHON is set by scripts/setup.sh in .cargo/config.toml");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check_torch_load.py");
    let out = std::process::Command::new(python)
        .args([script, &format!("{d}/ck/epoch-0000"), &format!("{d}/batch.safetensors"), encoder, encoder, "4", &steps.to_string()])
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{said}");
    assert!(out.status.success(), "PyTorch could not load the {encoder} checkpoint or disagrees: {said}");
    std::fs::remove_dir_all(&dir).ok();
    v[2].as_int().unwrap()
}

/// A ResNet-18 pair at a small input size (32x32 spectrograms, two 32x32 frames) trains for one
/// epoch, and its checkpoint loads into the PyTorch version with `strict=True` and gives the
/// same logits there.
#[test]
fn a_resnet18_checkpoint_loads_into_pytorch_and_gives_the_same_logits() {
    let params = trains_and_loads_into_pytorch("torch-load", "resnet18", "[1, 32, 32]", "[3, 2, 32, 32]", 40);
    // Two ResNet-18 trunks (11.17M each, 1- and 3-channel conv1) and a 1024 -> 4 head.
    assert_eq!(params, 11_170_240 + 11_176_512 + 1024 * 4 + 4);
}

/// PMR's backbone (`resnet18:compress`, its compress / recover stack after layer 2) at the sizes
/// it was built for: CREMA-D's 257 x 299 spectrograms and 224 x 224 frames. Its checkpoint
/// loads into PyTorch's version of the reference's layers and gives the same logits.
#[test]
fn pmrs_compress_backbone_loads_into_pytorch_and_gives_the_same_logits() {
    let params = trains_and_loads_into_pytorch("torch-load-compress", "resnet18:compress", "[1, 257, 299]", "[3, 1, 224, 224]", 40);
    // The stacks add 4 convs (3 of 128 -> 128, one 128 -> 512, with biases) and 4 transposed
    // convs per trunk; their kernels differ between the audio and visual recover stacks.
    let convs = 3 * (128 * 128 * 9 + 128) + (128 * 512 * 9 + 512);
    let audio_up = 512 * 128 * 16 + 128 * 128 * 4 + 128 * 128 * 8 + 128 * 128 * 12 + 4 * 128;
    let visual_up = 512 * 128 * 9 + 128 * 128 * 9 + 2 * 128 * 128 * 4 + 4 * 128;
    assert_eq!(params, 11_170_240 + 11_176_512 + 1024 * 4 + 4 + 2 * convs + audio_up + visual_up);
    let err = common::eval_err("let d = dataset(\"synthetic\", #{ n: 20, classes: 2, audio_shape: [1, 64, 64], visual_shape: [8] }); model(d, #{ encoders: [\"resnet18:compress\", \"mlp\"] })");
    assert!(err.contains("28 x 28") && err.contains("give 8 x 8"), "{err}");
}
