//! What a scripted method costs: an epoch of stdlib/methods/ogm-ge.rhai (its loss and gradient
//! rule as Rhai closures) against the native "ogm-ge" in one process, on the demo's model (mfeat,
//! pix CNN + fou MLP, batch 64) and on the ResNet-18 pair (synthetic 1x128x128 spectrogram-sized
//! and 3x112x112 frame-sized inputs, batch 16, a fixed number of batches). Rounds alternate which
//! one runs first; best of ROUNDS each.
//!
//! `BENCHES=scripted bash scripts/bench.sh` rewrites the table in docs/perf.md.

use gapscope::{script, Host};
use rhai::{Array, Map, Scope};

const ROUNDS: usize = 10;

fn main() {
    tch::set_num_threads(2);
    let src = format!(
        "import \"methods/ogm-ge\" as ogm;
        fn time_pair(data, train, spec, batch, rounds) {{
            let runs = [];
            for which in [\"native\", \"script\"] {{
                let m = model(data, spec);
                let meth = if which == \"native\" {{ method(\"ogm-ge\") }} else {{ ogm::build(#{{}}) }};
                runs.push(#{{ m: m, o: optimizer(m, #{{ kind: \"sgd\", lr: 0.01 }}), meth: meth, times: [] }});
            }}
            for i in 0..2 {{ train_epoch(runs[i].m, runs[i].o, train, #{{ method: runs[i].meth, batch: batch, quiet: true }}); }}
            for r in 0..rounds {{
                for j in 0..2 {{
                    let i = (j + r) % 2;
                    let t = timestamp();
                    train_epoch(runs[i].m, runs[i].o, train, #{{ method: runs[i].meth, batch: batch, seed: r, epoch: r, quiet: true }});
                    runs[i].times.push(t.elapsed);
                }}
            }}
            [runs[0].times, runs[1].times]
        }}
        let mfeat = dataset(\"mfeat\", #{{ views: [\"pix\", \"fou\"], seed: 0 }});
        let demo = time_pair(mfeat, mfeat.train, #{{ modalities: [\"pix\", \"fou\"], encoders: [\"cnn\", \"mlp\"], seed: 0, device: \"cpu\" }}, 64, {ROUNDS});
        let images = dataset(\"synthetic\", #{{ n: 200, classes: 6, audio_shape: [1, 128, 128], visual_shape: [3, 112, 112], seed: 0 }});
        let resnet = time_pair(images, images.train.subset(arange(64)), #{{ encoders: [\"resnet18\", \"resnet18\"], seed: 0, device: \"cpu\" }}, 16, 3);
        #{{ demo: demo, resnet: resnet, n: mfeat.train.len }}"
    );
    let host = Host::new();
    let mut scope = Scope::new();
    let ast = script::compile(&host, &scope, "bench.rhai", &src).map_err(|e| e.0).unwrap();
    let out = script::eval(&host, &mut scope, "bench.rhai", &ast).map_err(|e| e.0).unwrap().cast::<Map>();
    let best = |key: &str| -> (f64, f64) {
        let pair = out[key].clone().cast::<Array>();
        let b = |i: usize| pair[i].clone().cast::<Array>().iter().map(|x| x.as_float().unwrap()).fold(f64::INFINITY, f64::min);
        (b(0), b(1))
    };
    println!("`BENCHES=scripted bash scripts/bench.sh` (benches/scripted.rs, dev profile: dependencies at opt-level 2, 2 libtorch threads): the script OGM-GE");
    println!("(stdlib/methods/ogm-ge.rhai) against the native one, seconds per epoch, best of the rounds in one process, alternating which runs first.");
    println!();
    println!("| model | native s / epoch | script s / epoch | script / native |");
    println!("|---|---:|---:|---:|");
    let (n, s) = best("demo");
    println!("| demo: mfeat ({} samples), pix cnn + fou mlp, batch 64 | {n:.3} | {s:.3} | {:.3}x |", out["n"].as_int().unwrap(), s / n);
    let (n, s) = best("resnet");
    println!("| ResNet-18 pair: 64 samples of 1x128x128 + 3x112x112, batch 16 | {n:.3} | {s:.3} | {:.3}x |", s / n);
}
