//! TensorBoard events of recorded runs, read back with the PyPI tensorboard package's reader
//! (tests/python/tensorboard_read.py): every epoch value, refit and histogram equals the run
//! record's, the CRCs check out, and `gapscope tensorboard DIR` rebuilds the same file for a
//! record that lacks one.

mod common;
use common::{bin, eval_ok, temp_dir};
use gapscope::results::files::read_parquet;
use polars::prelude::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const DATA: &str =
    "let data = dataset(\"synthetic\", #{ n: 240, classes: 3, audio_shape: [8], visual_shape: [8], degraded_fraction: 0.3, seed: 3 });";

fn read_back(run: &Path) -> Value {
    let python = std::env::var("GAPSCOPE_PYTHON").expect("GAPSCOPE_PYTHON is set by scripts/setup.sh in .cargo/config.toml");
    let out =
        Command::new(python).arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/tensorboard_read.py")).arg(run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn column(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect()
}

/// The (step, value) pairs of a scalar tag.
fn scalars(events: &Value, tag: &str) -> Vec<(i64, f64)> {
    events["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no scalar tag {tag}; tags: {:?}", events["scalars"].as_object().map(|o| o.keys().collect::<Vec<_>>())))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

fn assert_matches(events: &Value, tag: &str, steps: &[f64], values: &[f64]) {
    let got = scalars(events, tag);
    assert_eq!(got.len(), values.len(), "{tag}");
    for ((s, v), (es, ev)) in got.iter().zip(steps.iter().zip(values)) {
        assert_eq!(*s, *es as i64, "{tag}");
        // Scalars are float32 in TensorBoard.
        assert!((v - ev).abs() <= 1e-6 * ev.abs().max(1.0), "{tag} at {s}: {v} vs {ev}");
    }
}

#[test]
fn two_stage_record_reads_back_in_tensorboard() {
    let d = temp_dir("tb-two-stage");
    let _ = eval_ok(&format!(
        "{DATA} import \"train\" as tr;
        tr::two_stage(data, model(data, #{{ seed: 1 }}), #{{ warmup: 2, epochs: 3, refit: 2, lr: 0.01, record: \"{}/run\" }});",
        d.display()
    ));
    let run = d.join("run");
    let events = read_back(&run);
    let epochs = read_parquet(&run.join("epochs.parquet")).unwrap();
    let steps = column(&epochs, "epoch");
    for (col, tag) in [
        ("test_acc", "test/acc"),
        ("test_f1", "test/f1"),
        ("test_acc_first", "test/acc_first"),
        ("test_acc_second", "test/acc_second"),
        ("val_acc", "val/acc"),
        ("val_f1", "val/f1"),
        ("val_acc_first", "val/acc_first"),
        ("val_f1_second", "val/f1_second"),
        ("loss", "train/loss"),
        ("ce_fused", "train/ce_fused"),
    ] {
        assert_matches(&events, tag, &steps, &column(&epochs, col));
    }
    let fits = read_parquet(&run.join("fits.parquet")).unwrap();
    let fit_steps = column(&fits, "epoch");
    assert_eq!(fit_steps, vec![2.0, 4.0]);
    for k in ["weight_0", "weight_1", "mean_0", "mean_1"] {
        assert_matches(&events, &format!("mixture/{k}"), &fit_steps, &column(&fits, k));
    }
    // One gap histogram per refit, over every training sample's gap at that refit.
    let samples = read_parquet(&run.join("samples.parquet")).unwrap();
    let hist = events["histograms"]["mixture/gap"].as_array().unwrap();
    assert_eq!(hist.len(), 2);
    for h in hist {
        let step = h["step"].as_f64().unwrap();
        let gaps: Vec<f64> =
            column(&samples, "epoch").iter().zip(column(&samples, "gap")).filter(|(e, _)| **e == step).map(|(_, g)| g).collect();
        assert_eq!(h["num"].as_f64().unwrap(), gaps.len() as f64);
        assert_eq!(h["counts"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).sum::<f64>(), gaps.len() as f64);
        assert_eq!(h["min"].as_f64().unwrap(), gaps.iter().cloned().fold(f64::INFINITY, f64::min));
        assert_eq!(h["max"].as_f64().unwrap(), gaps.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
    }
    let config = events["text"]["config"][0].as_str().unwrap();
    assert!(config.contains("\"recipe\": \"two_stage\""), "{config}");

    // An old record without events: the command rebuilds the same file.
    let file = run.join("events.out.tfevents.gapscope");
    let original = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let out = bin().arg("tensorboard").arg(&d).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), file.display().to_string());
    assert_eq!(std::fs::read(&file).unwrap(), original, "the converted file differs from the one written live");
    let out = bin().arg("tensorboard").arg(d.join("nothing-here")).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no such folder"));
}

#[test]
fn method_diagnostics_go_under_method() {
    let d = temp_dir("tb-ogm");
    let _ = eval_ok(&format!(
        "{DATA} import \"train\" as tr;
        tr::baseline(data, model(data, #{{ seed: 1 }}), #{{ warmup: 0, epochs: 2, lr: 0.01, method: \"ogm-ge\", record: \"{}/run\" }});",
        d.display()
    ));
    let run = d.join("run");
    let events = read_back(&run);
    let epochs = read_parquet(&run.join("epochs.parquet")).unwrap();
    let steps = column(&epochs, "epoch");
    assert_matches(&events, "method/coef_first", &steps, &column(&epochs, "coef_first"));
    assert_matches(&events, "test/acc", &steps, &column(&epochs, "test_acc"));
    assert!(events["scalars"].get("train/coef_first").is_none());
    // save_run(..., #{ tensorboard: false }) writes no events.
    let _ =
        eval_ok(&format!("save_run(\"{}/plain\", #{{ epochs: [#{{ epoch: 0, loss: 1.0 }}] }}, #{{ tensorboard: false }});", d.display()));
    assert!(!d.join("plain/events.out.tfevents.gapscope").exists());
}
