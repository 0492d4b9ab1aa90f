//! The linear probe (`linear_probe`, recipes' `probe: true`): new linear classifiers on frozen
//! features, the field's unimodal accuracy. The model must be untouched, the result repeatable,
//! the epoch chosen on validation, and the recipes must record it beside the split-head scores.

mod common;
use common::{eval_err, eval_ok, float, temp_dir};

const SETUP: &str = "let d = dataset(\"synthetic\", #{ n: 240, classes: 3, audio_shape: [6], visual_shape: [6], seed: 2 });
let m = model(d, #{ seed: 1 });
import \"train\" as tr;
tr::baseline(d, m, #{ warmup: 0, epochs: 2, lr: 0.05 });
";

#[test]
fn the_probe_leaves_the_model_untouched_and_repeats_with_its_seed() {
    let same = eval_ok(&format!(
        "{SETUP}
        let before = [];
        for t in m.state_dict().values() {{ before.push(t.to(\"float64\")); }}
        let a = linear_probe(m, d, #{{ epochs: 4, seed: 3 }});
        let after = m.state_dict().values();
        let moved = 0.0;
        for i in 0..before.len {{ moved = max(moved, (after[i].to(\"float64\") - before[i]).abs().max().item()); }}
        let b = linear_probe(m, d, #{{ epochs: 4, seed: 3 }});
        [moved, a.acc_audio == b.acc_audio && a.acc == b.acc && a.f1_visual == b.f1_visual, a.acc_first == a.acc_audio]"
    ));
    assert_eq!(format!("{same:?}"), "[0.0, true, true]");
}

#[test]
fn each_probe_keeps_its_best_validation_epoch_and_reports_test_scores() {
    // The concatenated features of a trained model separate the classes well; the kept epoch is
    // one of the epochs run, and its validation accuracy is the best of the run (so one more
    // epoch can only keep or raise it).
    let acc = float(&format!("{SETUP} linear_probe(m, d, #{{ epochs: 10 }}).acc"));
    assert!(acc > 0.8, "fused probe accuracy {acc}");
    let epoch = float(&format!("{SETUP} linear_probe(m, d, #{{ epochs: 6 }}).epoch_audio"));
    assert!((0.0..6.0).contains(&epoch), "{epoch}");
    let v6 = float(&format!("{SETUP} linear_probe(m, d, #{{ epochs: 6 }}).val_acc_visual"));
    let v7 = float(&format!("{SETUP} linear_probe(m, d, #{{ epochs: 7 }}).val_acc_visual"));
    assert!(v7 >= v6, "the kept validation accuracy fell with one more epoch: {v6} -> {v7}");
    let only = eval_ok(&format!("{SETUP} linear_probe(m, d, #{{ epochs: 2, modalities: [\"visual\"] }}).keys()"));
    let only = format!("{only:?}");
    assert!(only.contains("acc_visual") && !only.contains("acc_audio"), "{only}");
}

#[test]
fn bad_probe_settings_are_errors_that_say_what_exists() {
    let e = eval_err(&format!("{SETUP} linear_probe(m, d, #{{ modalities: [\"pix\"] }})"));
    assert!(e.contains("no modality \"pix\"") && e.contains("audio, visual"), "{e}");
    let e = eval_err(&format!("{SETUP} linear_probe(m, d, #{{ epochs: 0 }})"));
    assert!(e.contains("epochs and batch must be at least 1"), "{e}");
    let e = eval_err(&format!("{SETUP} linear_probe(m, d, #{{ epoch: 3 }})"));
    assert!(e.contains("epoch"), "{e}");
}

#[test]
fn a_recipe_with_probe_records_the_probe_beside_the_split_head_scores() {
    let dir = temp_dir("probe-record");
    let d = dir.display().to_string().replace('\\', "/");
    let cols = eval_ok(&format!(
        "let d = dataset(\"synthetic\", #{{ n: 240, classes: 3, audio_shape: [6], visual_shape: [6], seed: 2 }});
        import \"train\" as tr;
        let r = tr::baseline(d, model(d, #{{ seed: 1 }}), #{{ warmup: 0, epochs: 1, probe: true, record: \"{d}/run\" }});
        [r.probe.acc_audio, runs(\"{d}\").columns]"
    ));
    let text = format!("{cols:?}");
    for col in ["probe_acc_audio", "probe_acc_first", "probe_f1_visual", "probe_acc", "last_acc_first"] {
        assert!(text.contains(&format!("\"{col}\"")), "{col} not recorded: {text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
