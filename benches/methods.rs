//! The cost of each Table II method: seconds per training epoch on the demo's model (mfeat, pix
//! CNN against fou MLP, batch 64, SGD), every method in the same process and the same rounds as
//! concat, best of ROUNDS, and each one's ratio to concat. The order of the methods rotates each
//! round so that none gains from running after another. G-Blending is timed twice: an epoch of
//! its blended loss (fixed weights), and one epoch that also runs its estimate (3 heads x
//! super_epoch 10 epochs of a model copy plus evaluation passes), from which the amortised cost
//! of the online schedule (one estimate every 10 epochs) follows.
//!
//! D&R is timed with a reset after every epoch (the diagnosis is its only extra work), from
//! which its amortised cost on the default schedule follows. MLA trains its own shared head.
//!
//! BalanceBenchmark's methods run on their official models (MMPareto's separate heads, LFM's
//! head per modality, ReconBoost's shared MLP classifier), each phase of ReconBoost timed apart,
//! and the spec's predicted cost from its pass counts printed beside the measured ratio. The
//! methods of 2024-2025 (DGL, InfoReg, G2D on late fusion, CGGM) follow, with baselines-3.md's,
//! then BB-MBSD, AMSS, BB-AMCo, AUG on its boosted head, DI-MML's two stages and Greedy on MMTM.
//!
//! `BENCHES=methods bash scripts/bench.sh` rewrites the table in docs/perf.md.

use gapscope::{script, Host};
use rhai::{Array, Map, Scope};

const ROUNDS: usize = 5;
/// (row, builder, the method's own work, the model it trains: "concat", "heads" (MMPareto's
/// separate heads), "sum" (LFM's), "shared" (MLA's), "shared_mlp" (ReconBoost's), "boosted"
/// (AUG's), "heads_shared" (separate heads on features of one size: DI-MML's), "mmtm" (Greedy's:
/// a head per branch, MMTM after the last two stages)), then the
/// cost ../shared/baselines-2.md predicts from its pass counts (empty for Table II's rows).
const METHODS: [(&str, &str, &str, &str, &str); 29] = [
    ("concat", "method(\"concat\")", "fused CE", "concat", ""),
    ("g-blending (blended loss)", "method(\"g-blending\", #{ weights: [1, 1, 1] })", "three CE terms", "concat", ""),
    ("ogm-ge", "method(\"ogm-ge\")", "scores, std and noise per encoder tensor", "concat", ""),
    ("pmr", "method(\"pmr\")", "prototypes from 10% of the batches per epoch, B x C distances and two prototype CEs", "concat", ""),
    ("mmcosine", "method(\"mmcosine\")", "normalised features and weights", "concat", ""),
    ("agm", "method(\"agm\")", "two extra forward passes with graphs, and their backward", "concat", ""),
    (
        "mla (projection replace)",
        "method(\"mla\", #{ projection: \"replace\" })",
        "two rounds (backward + update) per batch, the d x d projection update; shared head, fou mlp:256,128",
        "shared",
        "",
    ),
    (
        "d&r (a reset every epoch)",
        "method(\"d&r\", #{ every: 1, times: 1000 })",
        "per epoch: features of train + val, 4 k-means (n_init 10), the blend",
        "concat",
        "",
    ),
    ("opm&ogm", "method(\"opm&ogm\", #{ warmup: 0 })", "a detached head pass, masks, OGM-GE", "concat", ""),
    ("two-stage adaptive (Eq. 11)", "()", "gap terms and weight lookup", "concat", ""),
    (
        "mmpareto",
        "method(\"mmpareto\")",
        "two backward passes (L_mm, then the unimodal losses), per-encoder inner products, per-tensor norms; separate heads",
        "heads",
        "1.7x",
    ),
    ("lfm (fitted α)", "method(\"lfm\")", "late fusion of two heads, the alignment term", "sum", "1x"),
    (
        "lfm (learned α)",
        "method(\"lfm\", #{ schedule: \"learned\" })",
        "as fitted, plus a double backward on 8 validation samples per epoch",
        "sum",
        "1x",
    ),
    (
        "reconboost, phase 1",
        "method(\"reconboost\", #{ stage_epochs: 10000, correct_epochs: 1 })",
        "one learner's boosting loss (backward through its encoder only); shared MLP head",
        "shared_mlp",
        "0.67-0.83x",
    ),
    (
        "reconboost, phase 2",
        "method(\"reconboost\", #{ stage_epochs: 1, correct_epochs: 10000 })",
        "CE of the ensemble, β's gradient",
        "shared_mlp",
        "1x",
    ),
    (
        "umt",
        "method(\"umt\", #{ teacher_epochs: 1 })",
        "a no-grad forward of both teachers, two feature MSEs (teachers trained before the timed epochs)",
        "concat",
        "1.33x",
    ),
    ("cml", "method(\"cml\")", "the fused logits without one modality per sample, two softmaxes, the hinge", "concat", "1x"),
    ("dgl", "method(\"dgl\")", "the head on detached features, the unimodal CEs through the detached head, the global-norm clip", "concat", "1x"),
    (
        "inforeg",
        "method(\"inforeg\")",
        "the warm-up loss; the pull towards the epoch-start weights and Σg² over encoder weights per step; anchors each epoch",
        "concat",
        "1.05x",
    ),
    (
        "g2d",
        "method(\"g2d\", #{ teacher_epochs: 1 })",
        "a no-grad forward of both teachers, their KL into the fused output and feature MSEs, kernel gradients held (teachers trained before the timed epochs); late fusion",
        "sum",
        "1.33x",
    ),
    (
        "cggm",
        "method(\"cggm\")",
        "guide heads on detached features and their own step, the factors, the direction term's gradient, the clip",
        "concat",
        "1x",
    ),
    ("bb-mbsd", "method(\"mbsd\")", "the warm-up loss, the sample weights, the response similarity and the \"KL\" term", "concat", "1x"),
    ("amss", "method(\"amss\")", "the significance (label and feature entropies), per output unit a gradient norm and a draw without replacement for every encoder weight", "concat", "1.02x"),
    ("amss+ (code weights)", "method(\"amss\", #{ variant: \"plus\" })", "as amss, the kept units reweighted", "concat", "1.02x"),
    ("bb-amco", "method(\"amco\")", "the curriculum mask, the C x C output layer and its own update, unimodal CEs, the shares", "concat", "1x"),
    ("aug", "method(\"aug\")", "one round (backward + update) per modality per batch through the shared output layer; boosted head, no layer grown", "boosted", "1x"),
    (
        "di-mml, stage 1",
        "method(\"di-mml\", #{ duc_start: 0, stage2_start: 100000, tau: 10.0 })",
        "each modality through its head and the shared classifier, the contrastive term on the exclusive dimensions; separate heads, fou mlp:256,128",
        "heads_shared",
        "1x",
    ),
    (
        "di-mml, stage 2",
        "method(\"di-mml\", #{ stage2_start: 1 })",
        "a no-grad forward of the frozen encoders per batch, the fused head's CE and step",
        "heads_shared",
        "0.33x",
    ),
    (
        "greedy",
        "method(\"greedy\", #{ unlock_epoch: 0 })",
        "MMTM gates after the last two stages, a head per branch, per step the gradient and weight norms of every tensor; against concat on the same encoders without MMTM",
        "mmtm",
        "1.05x",
    ),
];
// Sample valuation's epoch grows with its copies: timed apart, with its item count.
const SAMPLE: &str = "method(\"sample\", #{ warmup: 0 })";

fn main() {
    tch::set_num_threads(2);
    let names: Vec<String> = METHODS.iter().map(|m| format!("\"{}\"", m.0)).collect();
    let builders: Vec<String> = METHODS.iter().map(|m| m.1.to_string()).collect();
    let src = format!(
        "let data = dataset(\"mfeat\", #{{ views: [\"pix\", \"fou\"], seed: 0 }});
        let names = [{names}];
        let runs = [];
        let kinds = [{kinds}];
        fn build(data, kind) {{
            let sh = kind == \"shared\" || kind == \"shared_mlp\" || kind == \"heads_shared\";
            let fusion = switch kind {{ \"heads\" | \"heads_shared\" => \"concat\", \"mmtm\" => \"sum\", _ => kind }};
            let mmtm = if kind == \"mmtm\" {{ 2 }} else {{ 0 }};
            let heads = if kind == \"heads\" || kind == \"heads_shared\" {{ \"separate\" }} else {{ \"split\" }};
            model(data, #{{ modalities: [\"pix\", \"fou\"], encoders: [\"cnn\", if sh {{ \"mlp:256,128\" }} else {{ \"mlp\" }}], fusion: fusion, heads: heads, seed: 0, device: \"cpu\", mmtm: mmtm }})
        }}
        for i in 0..names.len {{
            let m = build(data, kinds[i]);
            runs.push(#{{ m: m, o: optimizer(m, #{{ kind: \"sgd\", lr: 0.01 }}), times: [] }});
        }}
        let builders = [{builders}];
        let c = collect_gaps(runs[0].m, data.train, \"prob\");
        let zs = c.gaps.zscore_stats();
        let mix = fit_mixture(zs.z, #{{ k: 2, raw: zs }});
        let table = weight_table(data.train, mix.balance_weights(zs.z));
        for i in 0..names.len {{
            runs[i].opts = if builders[i] == () {{ #{{ method: \"adaptive\", weights: table }} }} else {{ #{{ method: builders[i] }} }};
            runs[i].opts.quiet = true; runs[i].opts.batch = 64; runs[i].opts.val = data.val;
            train_epoch(runs[i].m, runs[i].o, data.train, runs[i].opts);
        }}
        for r in 0..{ROUNDS} {{
            for j in 0..names.len {{
                let i = (j + r) % names.len;
                let opts = runs[i].opts; opts.seed = r; opts.epoch = 10 + r;
                let t = timestamp();
                train_epoch(runs[i].m, runs[i].o, data.train, opts);
                runs[i].times.push(t.elapsed);
            }}
        }}
        let gb = method(\"g-blending\", #{{ super_epoch: 10 }});
        let m = model(data, #{{ modalities: [\"pix\", \"fou\"], encoders: [\"cnn\", \"mlp\"], seed: 0, device: \"cpu\" }});
        let t = timestamp();
        train_epoch(m, optimizer(m, #{{ kind: \"sgd\", lr: 0.01 }}), data.train, #{{ method: gb, val: data.val, quiet: true, epoch: 0 }});
        let estimate = t.elapsed;
        // Sample valuation: each epoch values the split, then trains it plus its copies.
        let sv = {SAMPLE};
        let ms = build(data, \"concat\");
        let os = optimizer(ms, #{{ kind: \"sgd\", lr: 0.01 }});
        let sample_times = [];
        let items = 0.0;
        for r in 0..{ROUNDS} {{
            let t = timestamp();
            let res = train_epoch(ms, os, data.train, #{{ method: sv, quiet: true, batch: 64, seed: r, epoch: r }});
            sample_times.push(t.elapsed);
            items = res.extra_items;
        }}
        let out = #{{ names: names, estimate: estimate, n: data.train.len, sample: sample_times, sample_items: items }};
        out.times = [];
        for r in runs {{ out.times.push(r.times); }}
        out",
        names = names.join(", "),
        builders = builders.join(", "),
        kinds = METHODS.iter().map(|m| format!("\"{}\"", m.3)).collect::<Vec<_>>().join(", "),
    );
    let host = Host::new();
    let mut scope = Scope::new();
    let ast = script::compile(&host, &scope, "bench.rhai", &src).map_err(|e| e.0).unwrap();
    let out = script::eval(&host, &mut scope, "bench.rhai", &ast).map_err(|e| e.0).unwrap().cast::<Map>();
    let times: Vec<f64> = out["times"]
        .clone()
        .cast::<Array>()
        .iter()
        .map(|t| t.clone().cast::<Array>().iter().map(|x| x.as_float().unwrap()).fold(f64::INFINITY, f64::min))
        .collect();
    let concat = times[0];
    println!("`BENCHES=methods bash scripts/bench.sh` (benches/methods.rs, dev profile: dependencies at opt-level 2): seconds per epoch on the demo's model");
    println!("(mfeat, {} training samples, pix cnn + fou mlp, batch 64, SGD, 2 libtorch threads), best of {ROUNDS} in one process, rotating the order each round.", out["n"].as_int().unwrap());
    println!();
    println!("| method | s / epoch | / concat | spec's pass count | the method's own work |");
    println!("|---|---:|---:|---:|---|");
    for (i, (name, _, what, _, spec)) in METHODS.iter().enumerate() {
        println!("| {name} | {:.3} | {:.2}x | {spec} | {what} |", times[i], times[i] / concat);
    }
    let sample = out["sample"].clone().cast::<Array>().iter().map(|x| x.as_float().unwrap()).fold(f64::INFINITY, f64::min);
    let n = out["n"].as_int().unwrap() as f64;
    let items = out["sample_items"].as_float().unwrap();
    let spec = 1.0 / 3.0 + (n + items) / n;
    println!("| sample (valuation + {items:.0} copies) | {sample:.3} | {:.2}x | {spec:.2}x | a no-grad forward of the split and three head passes, then an epoch of {:.0} items |", sample / concat, n + items);
    let estimate = out["estimate"].as_float().unwrap();
    let amortised = times[1] + (estimate - times[1]) / 10.0;
    println!("| g-blending, online (an estimate every 10 epochs, amortised) | {amortised:.3} | {:.2}x | | estimate epoch: {estimate:.2} s (30 epochs of a copy + 12 evaluation passes) |", amortised / concat);
    // D&R's default schedule diagnoses after every 20th epoch (3 times in 90): its amortised cost.
    let dr = METHODS.iter().position(|m| m.0.starts_with("d&r")).unwrap();
    let dr_amortised = concat + (times[dr] - concat) / 20.0;
    println!(
        "| d&r, default schedule (a reset every 20 epochs, amortised) | {dr_amortised:.3} | {:.2}x | | a reset epoch: {:.2} s |",
        dr_amortised / concat,
        times[dr]
    );
}
