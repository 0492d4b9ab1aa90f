//! The Table II methods from Rhai: each one's neutral setting is the concat step bit for bit,
//! their rules act where they should (and only there), options are checked before training,
//! each step reports the method's diagnostics, and the recipe runs every method.

mod common;
use common::*;

const SETUP: &str = "let data = dataset(\"synthetic\", #{ n: 240, classes: 3, audio_shape: [1, 8, 8], visual_shape: [64], degraded_fraction: 0.3, seed: 3 });
    let batch = (); for b in data.train.batches(#{ batch: 32, seed: 1 }) { batch = b; break; }
    fn fresh(data) { model(data, #{ encoders: [\"cnn:4\", \"mlp:256,32\"], seed: 5, device: \"cpu\" }) }
    fn step(data, batch, how) {
        let m = fresh(data);
        let o = optimizer(m, #{ kind: \"sgd\", lr: 0.5, momentum: 0.9, weight_decay: 0.0 });
        let t = train_step(m, o, batch, how);
        #{ model: m, terms: t, sd: m.state_dict() }
    }
    fn worst(a, b) {
        let w = 0.0;
        for k in a.sd.keys() { let d = (a.sd[k].to(\"float64\") - b.sd[k].to(\"float64\")).abs().max().item(); if d > w { w = d; } }
        w
    }
    let base = step(data, batch, #{ method: \"concat\" });";

fn with_setup(body: &str) -> String {
    format!("{SETUP}\n{body}")
}

#[test]
fn neutral_settings_give_the_concat_step_bit_for_bit() {
    for how in [
        "#{ method: \"ogm-ge\", alpha: 0.0, ge: false }",
        // Outside its window OGM-GE changes nothing, noise included.
        "#{ method: \"ogm-ge\", alpha: 0.8, window: [5, 10], epoch: 0 }",
        "#{ method: \"opm&ogm\", p_exe: 0.0, ogm: false, warmup: 0 }",
        // During its warm-up OPM&OGM neither drops nor modulates.
        "#{ method: \"opm&ogm\", p_exe: 1.0, epoch: 2 }",
        "#{ method: method(\"agm\", #{ alpha: 0.0, clip: false }) }",
        "#{ method: \"g-blending\", weights: [0, 0, 1] }",
    ] {
        let d = float(&with_setup(&format!("worst(base, step(data, batch, {how}))")));
        assert_eq!(d, 0.0, "{how} differs from concat by {d}");
    }
    // And a setting that is not neutral does differ (the comparison can fail).
    let d = float(&with_setup("worst(base, step(data, batch, #{ method: \"ogm-ge\", alpha: 0.8, ge: false }))"));
    assert!(d > 0.0);
}

#[test]
fn ogm_ge_adds_noise_with_the_gradients_std_and_leaves_bn_bias_and_head_alone() {
    // With α = 0 the difference from the concat step is lr · noise, on the selected tensors only.
    let src = with_setup(
        "let ge = step(data, batch, #{ method: \"ogm-ge\", alpha: 0.0, ge: true, seed: 3 });
        let m0 = fresh(data);
        let name = \"visual_net.fc1.weight\";
        let g = (m0.state_dict()[name] - base.sd[name]) / 0.5;
        let noise = (ge.sd[name] - base.sd[name]) / 0.5;
        let untouched = 0.0;
        for k in base.sd.keys() {
            if k.contains(\"bias\") || k.contains(\"bn\") || k.starts_with(\"fusion\") {
                let d = (ge.sd[k] - base.sd[k]).abs().max().item();
                if d > untouched { untouched = d; }
            }
        }
        let conv = (ge.sd[\"audio_net.conv1.weight\"] - base.sd[\"audio_net.conv1.weight\"]).abs().max().item();
        [noise.std().item() / g.std().item(), noise.mean().item() / g.std().item(), untouched, conv]",
    );
    let v: Vec<f64> = eval_ok(&src).into_array().unwrap().iter().map(|x| x.as_float().unwrap()).collect();
    eprintln!("noise std / grad std {:.4}, mean / std {:.4}", v[0], v[1]);
    // 8,192 draws: the sample std is within 3% of σ with overwhelming probability.
    assert!((v[0] - 1.0).abs() < 0.03, "noise std / gradient std = {}", v[0]);
    assert!(v[1].abs() < 0.05);
    assert_eq!(v[2], 0.0, "batch norm, biases or the head changed");
    assert!(v[3] > 0.0, "the audio encoder's conv kernel got no noise");
}

#[test]
fn each_step_and_epoch_reports_the_methods_diagnostics() {
    let src = with_setup(
        "let o = step(data, batch, #{ method: \"ogm-ge\" }).terms;
        let opm = step(data, batch, #{ method: \"opm&ogm\", warmup: 0, p_exe: 1.0 }).terms;
        let gb = step(data, batch, #{ method: \"g-blending\", weights: [1, 1, 2] }).terms;
        let agm = method(\"agm\");
        let a = step(data, batch, #{ method: agm }).terms;
        let m = fresh(data);
        let opt = optimizer(m, #{});
        let e = train_epoch(m, opt, data.train, #{ method: \"ogm-ge\", quiet: true });
        [o.coef_first, o.coef_second, opm.q_first + opm.q_second, opm.dropped, gb.w_fused, a.coef_first > 0.0, e.coef_first <= 1.0 && e.coef_second <= 1.0, \"ce_fused\" in e]",
    );
    let v = eval_ok(&src).into_array().unwrap();
    let k = [v[0].as_float().unwrap(), v[1].as_float().unwrap()];
    assert!(k.contains(&1.0) && k.iter().all(|&x| x > 0.0 && x <= 1.0), "OGM damps one modality: {k:?}");
    assert!(v[2].as_float().unwrap() > 0.0 && v[3].as_float().unwrap() == 1.0, "OPM dropped nothing");
    assert_eq!(v[4].as_float().unwrap(), 0.5);
    assert!(v[5].as_bool().unwrap() && v[6].as_bool().unwrap() && v[7].as_bool().unwrap());
}

#[test]
fn agm_running_means_average_every_step_and_come_back_from_state() {
    let src = with_setup(
        "let agm = method(\"agm\", #{ alpha: 1.5 });
        let m = fresh(data); let o = optimizer(m, #{});
        let seen = [];
        for b in data.train.batches(#{ batch: 48, seed: 2 }) { seen.push(train_step(m, o, b, #{ method: agm }).ce_first); }
        let mean = 0.0; for s in seen { mean += s; } mean /= seen.len.to_float();
        let st = agm.state();
        let again = method(\"agm\", #{ alpha: 1.5 });
        again.load_state(st);
        [st.running[0].item() - mean, st.steps[0].item(), again.state().running[0].item() == st.running[0].item(), seen.len]",
    );
    let v = eval_ok(&src).into_array().unwrap();
    assert!(v[0].as_float().unwrap().abs() < 1e-12);
    assert_eq!(v[1].as_float().unwrap() as i64, v[3].as_int().unwrap());
    assert!(v[2].as_bool().unwrap());
}

#[test]
fn mmcosine_sets_the_cosine_head_for_evaluation_and_leaves_the_bias_alone() {
    let src = with_setup(
        "let r = step(data, batch, #{ method: \"mmcosine\", scale: 5 });
        let out = forward(r.model, batch);
        [out.first.abs().max().item() <= 5.0 + 1e-9, (r.sd[\"fusion.fc_out.bias\"] - fresh(data).state_dict()[\"fusion.fc_out.bias\"]).abs().max().item()]",
    );
    let v = eval_ok(&src).into_array().unwrap();
    assert!(v[0].as_bool().unwrap(), "cosine logits exceed the scale");
    assert_eq!(v[1].as_float().unwrap(), 0.0, "the bias moved (it has no gradient under cosine logits)");
    let err = eval_err("let data = dataset(\"synthetic\", #{ n: 60, classes: 3 }); let m = model(data, #{ fusion: \"film\" }); let o = optimizer(m, #{}); for b in data.train.batches(#{ batch: 8 }) { train_step(m, o, b, #{ method: \"mmcosine\" }); }");
    assert!(err.contains("concat or sum head"), "{err}");
}

#[test]
fn bad_methods_and_options_are_errors_naming_the_valid_ones_before_training() {
    let cases = [
        ("#{ method: \"ogm\" }", "unknown method \"ogm\": use one of \"concat\", \"g-blending\", \"ogm-ge\""),
        ("#{ method: \"ogm-ge\", alpah: 1.0 }", "unknown option \"alpah\" (valid: alpha, window, ge"),
        ("#{ method: \"ogm-ge\", alpha: -0.5 }", "alpha must be a number >= 0, got -0.5"),
        ("#{ method: \"ogm-ge\", window: [50, 10] }", "window must be an epoch window [start, end]"),
        ("#{ method: \"ogm-ge\", coeff_form: \"tanh\" }", "coeff_form must be one of \"paper\", \"shifted\""),
        ("#{ method: \"opm&ogm\", p_exe: 1.5 }", "p_exe must be a number in [0, 1], got 1.5"),
        ("#{ method: \"agm\" }", "agm keeps state across steps and epochs, so build it once"),
        ("#{ method: \"g-blending\" }", "g-blending keeps state across steps and epochs"),
        (
            "#{ method: \"g-blending\", weights: [1, -1, 1] }",
            "weights must be one non-negative number per modality then one for the fused head",
        ),
        ("#{ method: method(\"ogm-ge\"), alpha: 1.0 }", "option \"alpha\" belongs to the method, which is already built"),
        ("#{ method: \"mmcosine\", scale: \"big\" }", "scale must be a number"),
    ];
    for (how, want) in cases {
        let err = eval_err(&with_setup(&format!("step(data, batch, {how})")));
        assert!(err.contains(want), "{how}: {err}");
        assert!(err.contains("test.rhai:"), "no script position: {err}");
    }
}

#[test]
fn g_blending_estimates_on_the_validation_split_and_says_what_it_needs() {
    let src = with_setup(
        "let gb = method(\"g-blending\", #{ super_epoch: 1 });
        let m = fresh(data); let o = optimizer(m, #{ lr: 0.05 });
        let e = train_epoch(m, o, data.train, #{ method: gb, val: data.val, quiet: true });
        let t = gb.state().weights; let w = [t[0].item(), t[1].item(), t[2].item()];
        [w[0] + w[1] + w[2], w[0] >= 0.0 && w[1] >= 0.0 && w[2] >= 0.0, e.w_fused == w[2], gb.state().estimated_at[0].item()]",
    );
    let v = eval_ok(&src).into_array().unwrap();
    assert!((v[0].as_float().unwrap() - 1.0).abs() < 1e-9 && v[1].as_bool().unwrap() && v[2].as_bool().unwrap());
    assert_eq!(v[3].as_float().unwrap(), 0.0);
    let err = eval_err(&with_setup(
        "let m = fresh(data); train_epoch(m, optimizer(m, #{}), data.train, #{ method: method(\"g-blending\"), quiet: true })",
    ));
    assert!(err.contains("pass val: data.val"), "{err}");
    let err = eval_err(&with_setup("let m = fresh(data); train_epoch(m, optimizer(m, #{}), data.train, #{ method: method(\"g-blending\"), val: data.val.subset([0, 1]), quiet: true })"));
    assert!(err.contains("has 2 samples; the weight estimate needs at least 3"), "{err}");
}

#[test]
fn the_base_recipe_runs_each_method_and_records_its_options() {
    let dir = temp_dir("methods-recipe");
    let d = dir.display().to_string().replace('\\', "/");
    let src = format!(
        "let data = dataset(\"synthetic\", #{{ n: 240, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 }});
        import \"train\" as tr;
        let out = [];
        for declared in methods() {{
            let name = declared.name;
            if name == \"warmup\" || name == \"adaptive\" {{ continue; }}
            let opts = switch name {{ \"g-blending\" => #{{ super_epoch: 1 }}, \"umt\" | \"g2d\" => #{{ teacher_epochs: 1 }}, \"sample\" => #{{ warmup: 1 }}, \"di-mml\" => #{{ duc_start: 1, stage2_start: 1 }}, _ => #{{}} }};
            // Each method's own model: MLA's and ReconBoost's shared classifier, LFM's head per
            // modality, MMPareto's separate heads beside the concat head.
            let fusion = switch name {{ \"mla\" => \"shared\", \"reconboost\" => \"shared_mlp\", \"lfm\" | \"g2d\" | \"greedy\" => \"sum\", \"aug\" => \"boosted\", _ => \"concat\" }};
            let heads = if name == \"mmpareto\" || name == \"di-mml\" {{ \"separate\" }} else {{ \"split\" }};
            let r = tr::baseline(data, model(data, #{{ seed: 1, fusion: fusion, heads: heads, mmtm: if name == \"greedy\" {{ 2 }} else {{ 0 }} }}), #{{ warmup: 1, epochs: 1, lr: 0.01, method: name, method_opts: opts, record: `{d}/${{name}}` }});
            out.push([name, r.history.len, \"best\" in r]);
        }}
        out.push(runs(`{d}`).columns);
        out"
    );
    let v = eval(&src);
    let text = format!("{v:?}");
    for name in [
        "concat",
        "g-blending",
        "ogm-ge",
        "pmr",
        "mmcosine",
        "agm",
        "mla",
        "d&r",
        "opm&ogm",
        "mmpareto",
        "lfm",
        "reconboost",
        "umt",
        "cml",
        "sample",
        "dgl",
        "inforeg",
        "g2d",
        "cggm",
        "mbsd",
        "amss",
        "amco",
        "aug",
        "di-mml",
        "greedy",
    ] {
        assert!(text.contains(&format!("[\"{name}\", 2, true]")), "{name} missing or wrong: {text}");
    }
    assert!(text.contains("method_opts.alpha"), "the record does not hold the method's options: {text}");
    let err = eval_err(
        "let data = dataset(\"synthetic\", #{ n: 60, classes: 3 }); import \"train\" as tr; tr::baseline(data, model(data), #{ epoch: 1 })",
    );
    assert!(err.contains("unknown recipe setting \"epoch\""), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs a table script on the quick synthetic setting (one seed, 1 + 2 epochs) into `out_dir`:
/// its stdout and the rows of its printed table, in order.
fn quick_table(script: &str, out_dir: &std::path::Path) -> (String, Vec<String>) {
    quick_table_with(script, out_dir, &[])
}

/// As `quick_table`, with more `--set` values.
fn quick_table_with(script: &str, out_dir: &std::path::Path, sets: &[&str]) -> (String, Vec<String>) {
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out_set = format!("out={}", out_dir.display());
    let mut args =
        vec!["run", &path, "--set", "dataset=synthetic", "--set", "seeds=1", "--set", "warmup=1", "--set", "epochs=2", "--set", &out_set];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let out = run_bin(&args, "", None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    // The summary's rows: the first table printed (the comparison with concat follows it).
    let rows = stdout
        .lines()
        .skip_while(|l| !l.starts_with("| variant"))
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .map(|l| l.split('|').nth(1).unwrap().trim().to_string())
        .collect();
    (stdout, rows)
}

#[test]
fn table2_runs_every_row_on_the_quick_synthetic_setting() {
    let dir = temp_dir("methods-table2");
    let out_dir = dir.join("t2");
    let (stdout, rows) = quick_table("table2.rhai", &out_dir);
    // Every row, in the paper's order, with the best-on-validation and last columns.
    assert_eq!(
        rows,
        ["concat", "g-blending", "ogm-ge", "pmr", "mmcosine", "agm", "mla", "d&r", "opm&ogm", "ours-prob", "ours-kl"],
        "{stdout}"
    );
    assert!(stdout.contains("| variant | acc | F1 | acc 1st | F1 1st | acc 2nd | F1 2nd | acc (last) |"), "{stdout}");
    assert!(out_dir.join("summary.png").exists() && out_dir.join("summary.csv").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn table2_says_which_differences_are_real() {
    let dir = temp_dir("methods-table2-compare");
    let out_dir = dir.join("t2");
    let (stdout, _) = quick_table_with("table2.rhai", &out_dir, &["seeds=2"]);
    let compared: Vec<&str> =
        stdout.lines().skip_while(|l| !l.contains("− concat (95% CI)")).skip(2).take_while(|l| l.starts_with("| ")).collect();
    assert_eq!(compared.len(), 11, "every row against concat:\n{stdout}");
    assert!(compared[0].contains("| reference |"), "{stdout}");
    assert!(stdout.contains("Holm's step-down method") && stdout.contains("McNemar's exact test"), "{stdout}");
    // Rows not distinguishable from concat carry the seeds their difference would need.
    let undecided: Vec<&&str> = compared.iter().filter(|l| l.contains("| not distinguishable |")).collect();
    assert!(!undecided.is_empty(), "{stdout}");
    let needs = |l: &str| l.trim_end_matches('|').rsplit('|').next().unwrap().trim().to_string();
    assert!(undecided.iter().any(|l| needs(l).trim_start_matches("> ").parse::<usize>().is_ok()), "{stdout}");
    let csv = std::fs::read_to_string(out_dir.join("comparison.csv")).unwrap();
    assert!(csv.starts_with("variant,seeds,mean,diff,diff_low,diff_high,p_seeds,p_seeds_holm,"), "{csv}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn table2_tuned_chooses_each_rows_knob_on_validation_and_names_it() {
    let dir = temp_dir("methods-tune");
    let out_dir = dir.join("t2");
    let (stdout, rows) = quick_table_with("table2.rhai", &out_dir, &["tune=2"]);
    // Every row but concat carries its chosen value, from the two ends of its grid.
    let want = [
        ("g-blending", "super_epoch", &["2", "10"][..]),
        ("ogm-ge", "alpha", &["0.1", "0.8"]),
        ("pmr", "alpha", &["0.5", "4.0"]),
        ("mmcosine", "scale", &["5.0", "40.0"]),
        ("agm", "alpha", &["0.5", "2.0"]),
        ("mla", "fusion", &["entropy", "fixed"]),
        ("d&r", "lambda", &["1.0", "5.0"]),
        ("opm&ogm", "q_base", &["0.3", "0.7"]),
        ("ours-prob", "alpha", &["0.5", "2.0"]),
        ("ours-kl", "alpha", &["0.5", "2.0"]),
    ];
    assert_eq!(rows[0], "concat", "{stdout}");
    for (row, (name, key, values)) in rows[1..].iter().zip(want) {
        assert!(values.iter().any(|v| *row == format!("{name} ({key}={v})")), "row {row:?}, want {name} ({key}=one of {values:?})");
    }
    assert!(stdout.contains("(tuned: 2 values per row on validation)"), "{stdout}");
    // Every candidate is a recorded run on a tuning seed, beside the table's folder; the test
    // seeds' runs are the chosen rows only.
    let tuned = dir.join("t2_tune");
    for (name, key, values) in want {
        for v in values {
            assert!(
                tuned.join(format!("{name} ({key}={v})")).join("seed1000").join("final.parquet").exists(),
                "{name} {key}={v} has no tuning record"
            );
        }
    }
    assert!(!out_dir.join("ogm-ge (alpha=0.1)").join("seed1000").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_benchmark_runs_every_method_on_the_quick_synthetic_setting() {
    let dir = temp_dir("methods-benchmark");
    let out_dir = dir.join("bench");
    let (stdout, rows) = quick_table("benchmark.rhai", &out_dir);
    assert_eq!(
        rows,
        [
            "concat",
            "g-blending",
            "ogm-ge",
            "pmr",
            "mmcosine",
            "agm",
            "mla",
            "d&r",
            "opm&ogm",
            "ours-prob",
            "ours-kl",
            "mmpareto",
            "lfm",
            "reconboost",
            "umt",
            "cml",
            "sample",
            "dgl",
            "inforeg",
            "g2d",
            "cggm",
            "BB-MBSD",
            "amss",
            "BB-AMCo",
            "aug",
            "di-mml",
            "greedy"
        ],
        "{stdout}"
    );
    // Each row has numbers, not blanks (a method that trained nothing would show NaN).
    for line in stdout.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| variant") && !l.starts_with("|--")) {
        assert!(!line.contains("NaN"), "{line}");
    }
    assert!(out_dir.join("summary.csv").exists());
    // Every row against concat, as Table II (docs/statistics.md).
    let compared = stdout.lines().skip_while(|l| !l.contains("− concat (95% CI)")).skip(2).take_while(|l| l.starts_with("| ")).count();
    assert_eq!(compared, rows.len(), "{stdout}");
    assert!(out_dir.join("comparison.csv").exists() && stdout.contains("Holm"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fig4_draws_each_methods_embedding_on_the_quick_synthetic_setting() {
    let dir = temp_dir("methods-fig4");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fig4.rhai");
    let out = run_bin(
        &[
            "run",
            script,
            "--set",
            "dataset=synthetic",
            "--set",
            "warmup=1",
            "--set",
            "epochs=1",
            "--set",
            "methods=concat,mla,ours-prob",
            "--set",
            "perplexity=10",
            "--set",
            &format!("out={}", dir.display()),
        ],
        "",
        None,
    );
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for f in ["concat.png", "mla.png", "ours-prob.png"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_else(|_| panic!("{f} was not written"));
        assert!(bytes.len() > 5000, "{f} is {} bytes", bytes.len());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pmr_mla_and_dr_train_from_rhai_with_their_diagnostics_and_state() {
    let src = with_setup(
        "let p = method(\"pmr\", #{ alpha: 1.0 });
        let m = fresh(data); let o = optimizer(m, #{});
        let e = train_epoch(m, o, data.train, #{ method: p, quiet: true });
        let sh = model(data, #{ encoders: [\"cnn:8\", \"mlp:256,32\"], fusion: \"shared\", seed: 5 });
        let ml = train_epoch(sh, optimizer(sh, #{}), data.train, #{ method: \"mla\", quiet: true });
        let dr = method(\"d&r\", #{ every: 1 });
        let m2 = fresh(data); let o2 = optimizer(m2, #{});
        let d = [];
        for ep in 0..3 { d.push(train_epoch(m2, o2, data.train, #{ method: dr, val: data.val, epoch: ep, quiet: true })); }
        [e.coef_first + e.coef_second, p.state().prototypes_first.shape, ml.ce_first > 0.0 && ml.ce_second > 0.0, sh.head,
         d[2].resets, d[2].w_first >= 0.0 && d[2].w_first <= 1.0, d[1].resets, methods().len]",
    );
    let v = eval_ok(&src).into_array().unwrap();
    assert!((v[0].as_float().unwrap() - 1.0).abs() < 1e-9, "one modality gets α each step: {:?}", v[0]);
    assert_eq!(format!("{:?}", v[1]), "[3, 16]");
    assert!(v[2].as_bool().unwrap());
    assert_eq!(v[3].clone().into_string().unwrap(), "entropy gates");
    assert_eq!(v[4].as_float().unwrap(), 1.0);
    assert!(v[5].as_bool().unwrap());
    assert_eq!(v[6].as_float().unwrap(), 0.0);
    // Every method the registry declares, and no other.
    assert_eq!(v[7].as_int().unwrap() as usize, gapscope::train::methods::ALL.len());
}

#[test]
fn stateful_methods_say_how_to_be_used() {
    let err =
        eval_err(&with_setup("let m = fresh(data); train_epoch(m, optimizer(m, #{}), data.train, #{ method: \"pmr\", quiet: true })"));
    assert!(err.contains("build it once"), "{err}");
    let err = eval_err(&with_setup("let m = fresh(data); train_step(m, optimizer(m, #{}), batch, #{ method: \"mla\" })"));
    assert!(err.contains("fusion: \"shared\""), "{err}");
    let err = eval_err("let d = dataset(\"synthetic\", #{ n: 60, classes: 3, audio_shape: [4], visual_shape: [6] }); model(d, #{ fusion: \"shared\", encoders: [\"mlp:8\", \"mlp:16\"] })");
    assert!(err.contains("features of one size, got 8 and 16"), "{err}");
    let err = eval_err("method(\"pmr\", #{ source: \"test\" })");
    assert!(err.contains("source must be one of \"train\", \"val\""), "{err}");
    let err = eval_err("method(\"mla\", #{ projection: \"project\" })");
    assert!(err.contains("projection must be one of"), "{err}");
    let err = eval_err("method(\"d&r\", #{ every: 0 })");
    assert!(err.contains("every must be an integer >= 1"), "{err}");
}

/// One test over every declaration in the registry: each builds with its defaults, with each
/// variant and with every choice of every option (so an option a rule reads but does not declare
/// fails here, not in a run), and one epoch of each logs only the terms and diagnostics it
/// declares, each filed as declared.
#[test]
fn every_declared_method_builds_and_logs_what_it_declares() {
    use gapscope::train::declaration::BuildInputs;
    use gapscope::train::methods::ALL;
    use gapscope::train::options::{Valid, Value};
    for spec in ALL {
        let inputs = BuildInputs::default();
        if spec.name == "adaptive" {
            // Its weights are not an option: without them it is a clean error.
            let err = spec.configure(&[], &inputs).err().expect("adaptive needs weights").to_string();
            assert!(err.contains("needs weights"), "{err}");
            continue;
        }
        spec.configure(&[], &inputs).unwrap_or_else(|e| panic!("{} with defaults: {e}", spec.name));
        for v in spec.variants {
            let given = vec![("variant".to_string(), Value::Text(v.name.into()))];
            let built = spec.configure(&given, &inputs).unwrap_or_else(|e| panic!("{} variant {}: {e}", spec.name, v.name));
            for (k, l) in v.values {
                assert_eq!(
                    built.options.values.iter().find(|(n, _)| n == k).map(|(_, x)| x.clone()),
                    Some(l.value()),
                    "{} {}",
                    spec.name,
                    v.name
                );
            }
        }
        for o in spec.options {
            if let Valid::Choice(choices) = o.valid {
                for c in choices {
                    spec.configure(&[(o.name.to_string(), Value::Text(c.to_string()))], &inputs)
                        .unwrap_or_else(|e| panic!("{} {}: {c}: {e}", spec.name, o.name));
                }
            }
        }
        if let Some(k) = spec.knob {
            assert!(spec.takes_option(k.key), "{}: its knob {} is not an option", spec.name, k.key);
        }
    }
    // A name is a term in every declaration or a diagnostic in every one, never both.
    for a in ALL {
        for b in ALL {
            for t in a.terms {
                assert!(!b.diagnostics.contains(t), "{t}: a term of {} and a diagnostic of {}", a.name, b.name);
            }
        }
    }
    let src = METHOD_SETUPS.to_string()
        + "let data = dataset(\"synthetic\", #{ n: 120, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 });
        let out = #{};
        for declared in methods() {
            let name = declared.name;
            if name == \"adaptive\" { continue; }
            let m = model_for(data, name);
            let meth = method(name, method_options(name));
            let o = optimizer(m, #{ lr: 0.01 });
            let names = [];
            for ep in 0..3 {
                for k in train_epoch(m, o, data.train, #{ method: meth, val: data.val, epoch: ep, quiet: true }).keys() { if !(k in names) { names.push(k); } }
            }
            out[name] = names;
        }
        out";
    let logged = eval_ok(&src).cast::<rhai::Map>();
    for spec in ALL.iter().filter(|s| s.name != "adaptive") {
        let names = logged.get(spec.name).unwrap_or_else(|| panic!("{} did not run", spec.name)).clone().into_array().unwrap();
        assert!(!names.is_empty());
        for n in names {
            let n = n.into_string().unwrap();
            if n == "loss" {
                continue;
            }
            let term = spec.declares_term(&n);
            let diagnostic = spec.declares_diagnostic(&n);
            assert!(term || diagnostic, "{} logs {n}, which it does not declare", spec.name);
            assert_eq!(gapscope::train::term_kinds::is_diagnostic(&n), diagnostic, "{} logs {n} as the other kind", spec.name);
        }
    }
}

/// ReconBoost's `ga_pass: "reference"` runs the frozen learner a second time in training mode for
/// GA, as the reference's `pre_model` call: every parameter is as with one pass, and only the
/// frozen learner's batch-norm running statistics move further.
#[test]
fn reconboost_reference_ga_pass_moves_only_the_frozen_learners_running_statistics() {
    let src = "let data = dataset(\"synthetic\", #{ n: 96, classes: 3, audio_shape: [1, 8, 8], visual_shape: [1, 8, 8], degraded_fraction: 0.3, seed: 3 });
        fn run(data, pass) {
            let m = model(data, #{ encoders: [\"cnn:4\", \"cnn:4\"], fusion: \"shared_mlp\", seed: 5, device: \"cpu\" });
            let o = optimizer(m, #{ kind: \"sgd\", lr: 0.05, momentum: 0.9 });
            let meth = method(\"reconboost\", #{ stage_epochs: 1, correct_epochs: 1, ga_pass: pass });
            // epoch 0: the first learner; 1: rectification; 2: the second learner, the first frozen, GA on.
            for ep in 0..3 { train_epoch(m, o, data.train, #{ method: meth, epoch: ep, seed: ep, quiet: true }); }
            m.state_dict()
        }
        let a = run(data, \"shared\");
        let b = run(data, \"reference\");
        let params = 0.0; let frozen_running = 0.0; let other_running = 0.0;
        for k in a.keys() {
            let d = (a[k].to(\"float64\") - b[k].to(\"float64\")).abs().max().item();
            // num_batches_tracked is one model-wide count in gapscope (it counts training
            // forwards), so it is left out here.
            if k.contains(\"num_batches\") { continue; }
            if k.contains(\"running\") {
                if k.starts_with(\"audio\") { if d > frozen_running { frozen_running = d; } } else if d > other_running { other_running = d; }
            } else if d > params { params = d; }
        }
        [params, frozen_running, other_running]";
    let v: Vec<f64> = eval_ok(src).into_array().unwrap().iter().map(|x| x.as_float().unwrap()).collect();
    assert_eq!(v[0], 0.0, "a parameter moved: {v:?}");
    assert!(v[1] > 0.0, "the frozen learner's running statistics did not move: {v:?}");
    assert_eq!(v[2], 0.0, "the training learner's running statistics moved: {v:?}");
}
