//! Tables that say whether a difference is real (docs/statistics.md): `compare` on a runs frame
//! against the fixture scipy computed (tests/fixtures/gen_stats.py), the predictions the recipes
//! record for it (and what an older record cannot give), `ranks` and `plot_cd` across tables.

mod common;
use common::{eval, eval_err, eval_ok, temp_dir};
use rhai::{Array, Map};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/stats/stats.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's runs frame and predictions frame as Rhai source (label 0; the prediction 0
/// where the run was right, 1 where wrong).
fn fixture_frames() -> String {
    let f = fixture();
    let c = &f["comparison"];
    let (mut variant, mut seed, mut acc, mut run) = (vec![], vec![], vec![], vec![]);
    for r in c["runs"].as_array().unwrap() {
        variant.push(format!("\"{}\"", r["variant"].as_str().unwrap()));
        seed.push(r["seed"].to_string());
        acc.push(format!("{:?}", r["best_acc"].as_f64().unwrap()));
        run.push(format!("\"{}/seed{}\"", r["variant"].as_str().unwrap(), r["seed"]));
    }
    let (mut prun, mut index, mut label, mut pred) = (vec![], vec![], vec![], vec![]);
    for (name, correct) in c["correct"].as_object().unwrap() {
        for (i, x) in correct.as_array().unwrap().iter().enumerate() {
            prun.push(format!("\"{name}\""));
            index.push(i.to_string());
            label.push("0".to_string());
            pred.push(if x.as_bool().unwrap() { "0" } else { "1" }.to_string());
        }
    }
    format!(
        "let df = frame(#{{ variant: [{}], seed: [{}], best_acc: [{}], run: [{}] }});\n\
         let preds = frame(#{{ run: [{}], index: [{}], label: [{}], pred_best: [{}] }});\n",
        variant.join(","),
        seed.join(","),
        acc.join(","),
        run.join(","),
        prun.join(","),
        index.join(","),
        label.join(","),
        pred.join(",")
    )
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9 * (1.0 + want.abs()), "{what}: {got} against scipy's {want}");
}

#[test]
fn compare_matches_scipy_on_a_whole_table() {
    let src = fixture_frames() + "compare(df, #{ predictions: preds }).table.rows()";
    let rows = eval_ok(&src).cast::<Array>();
    let expect = &fixture()["comparison"]["expect"];
    assert_eq!(rows.len(), 4);
    let first = rows[0].clone().cast::<Map>();
    assert_eq!(first["variant"].to_string(), "concat");
    assert_eq!(first["mark"].to_string(), "reference");
    let mut marks = Vec::new();
    for r in &rows[1..] {
        let r = r.clone().cast::<Map>();
        let name = r["variant"].to_string();
        let e = &expect[&name];
        for key in ["diff", "p_seeds", "p_seeds_holm", "p_samples", "p_samples_holm"] {
            close(r[key].as_float().unwrap(), e[key].as_f64().unwrap(), &format!("{name} {key}"));
        }
        close(r["diff_low"].as_float().unwrap(), e["low"].as_f64().unwrap(), &format!("{name} low"));
        close(r["diff_high"].as_float().unwrap(), e["high"].as_f64().unwrap(), &format!("{name} high"));
        assert_eq!(r["row_only"].as_int().unwrap(), e["row_only"].as_i64().unwrap(), "{name}");
        assert_eq!(r["reference_only"].as_int().unwrap(), e["reference_only"].as_i64().unwrap(), "{name}");
        assert_eq!(r["mark"].to_string(), e["mark"].as_str().unwrap(), "{name}");
        marks.push(r["mark"].to_string());
        // Seeds needed only where a row is not distinguishable.
        assert_eq!(r["seeds_needed"].is_unit(), r["mark"].to_string() != "not distinguishable", "{name}: {:?}", r["seeds_needed"]);
    }
    // The fixture has a row each way: better by both tests, and "weak", which McNemar alone
    // would call worse but three seeds cannot.
    assert_eq!(marks, ["better", "not distinguishable", "not distinguishable"]);
    // decide: "samples" marks by the pooled test alone: weak is then worse.
    let src = fixture_frames() + "compare(df, #{ predictions: preds, decide: \"samples\" }).table.column(\"mark\")";
    let marks: Vec<String> = eval_ok(&src).cast::<Array>().iter().map(|m| m.to_string()).collect();
    assert_eq!(marks, ["reference", "better", "not distinguishable", "worse"]);
}

#[test]
fn the_printed_comparison_names_its_level_tests_and_correction() {
    let md = eval_ok(&(fixture_frames() + "compare(df, #{ predictions: preds, name: \"acc\" }).markdown")).to_string();
    for want in ["Holm", "McNemar", "95% Student t interval", "not distinguishable", "seeds needed", "α = 0.05", "| strong |"] {
        assert!(md.contains(want), "{want} missing:\n{md}");
    }
    // Without predictions the table says what it cannot compute, and marks by the seeds alone.
    let md = eval_ok(&(fixture_frames() + "compare(df).markdown")).to_string();
    assert!(md.contains("without per-sample predictions") && md.contains("seeds' test alone"), "{md}");
    // The bootstrap instead of McNemar, named with its resamples and seed.
    let md =
        eval_ok(&(fixture_frames() + "compare(df, #{ predictions: preds, test: \"bootstrap\", resamples: 2000 }).markdown")).to_string();
    assert!(md.contains("paired bootstrap") && md.contains("2000 resamples, seed 0"), "{md}");
}

#[test]
fn compare_refuses_what_it_cannot_read() {
    let e = eval_err(&(fixture_frames() + "compare(df, #{ against: \"nope\" })"));
    assert!(e.contains("reference row \"nope\" has no runs") && e.contains("strong"), "{e}");
    let e = eval_err(&(fixture_frames() + "compare(df, #{ metric: \"best_f9\" })"));
    assert!(e.contains("no column \"best_f9\""), "{e}");
    let e = eval_err(&(fixture_frames() + "compare(df, #{ test: \"wilcoxon\" })"));
    assert!(e.contains("\"mcnemar\" or \"bootstrap\""), "{e}");
    let e = eval_err(&(fixture_frames() + "compare(df, #{ predictions: preds, test: \"bootstrap\", resamples: 100000000000 })"));
    assert!(e.contains("resamples is at most 1000000"), "{e}");
    let e = eval_err(&(fixture_frames() + "compare(df, #{ level: 5 })"));
    assert!(e.contains("level"), "{e}");
    let e = eval_err(&(fixture_frames() + "compare(df, #{ predictions: 3 })"));
    assert!(e.contains("predictions is a DataFrame"), "{e}");
    // Errors carry the script position.
    assert!(e.contains("test.rhai:3"), "{e}");
}

/// Two runs (1 + `epochs` epochs) of a noisy synthetic set with records.
fn recorded_runs(dir: &std::path::Path, epochs: i64, extra: &str) -> String {
    format!(
        "import \"train\" as tr;\n\
         let data = dataset(\"synthetic\", #{{ n: 600, classes: 4, audio_snr: 0.6, visual_snr: 0.5, seed: 3 }});\n\
         for v in [\"concat\", \"ogm-ge\"] {{\n\
           let m = model(data, #{{ seed: 3 }});\n\
           tr::baseline(data, m, #{{ warmup: 1, epochs: {epochs}, lr: 0.05, seed: 3, method: v, variant: v, record: `{}/${{v}}/seed3` {extra} }});\n\
         }}\n",
        dir.display()
    )
}

#[test]
fn recipes_record_the_test_predictions_of_the_chosen_and_the_last_epoch() {
    let dir = temp_dir("comparison-records");
    let src = recorded_runs(&dir, 3, "")
        + format!(
            "let out = [];\n\
             for v in [\"concat\", \"ogm-ge\"] {{\n\
               let p = read_parquet(`{d}/${{v}}/seed3/predictions.parquet`);\n\
               let f = read_parquet(`{d}/${{v}}/seed3/final.parquet`).rows()[0];\n\
               let c = p.sql(\"SELECT avg(CAST(pred_best = label AS DOUBLE)) AS b, avg(CAST(pred_last = label AS DOUBLE)) AS l, count(*) AS n FROM self\").rows()[0];\n\
               out += [c.b - f.best_acc, c.l - f.last_acc, c.n, data.test.len, p.columns];\n\
             }}\n\
             out += [runs(\"{d}\", \"predictions\").columns];\n\
             out",
            d = dir.display()
        )
        .as_str();
    let v = eval_ok(&src).cast::<Array>();
    for k in 0..2 {
        let row = &v[k * 5..k * 5 + 5];
        // The recorded predictions score exactly what the final table says.
        assert_eq!(row[0].as_float().unwrap(), 0.0, "best accuracy from predictions differs: {v:?}");
        assert_eq!(row[1].as_float().unwrap(), 0.0, "last accuracy from predictions differs: {v:?}");
        assert_eq!(row[2].as_int().unwrap(), row[3].as_int().unwrap(), "one row per test sample");
        assert_eq!(row[4].to_string(), "[\"index\", \"label\", \"pred_last\", \"pred_best\"]");
    }
    assert_eq!(v[10].to_string(), "[\"run\", \"index\", \"label\", \"pred_last\", \"pred_best\"]");
    // compare() reads them from the folder's records.
    let md = eval_ok(&format!("let d = \"{}\"; compare(runs(d), #{{ predictions: runs(d, \"predictions\") }}).markdown", dir.display()))
        .to_string();
    assert!(md.contains("| ogm-ge |") && !md.contains("without per-sample predictions"), "{md}");
    // A record from before predictions were kept: the table says what it cannot compute.
    std::fs::remove_file(dir.join("ogm-ge/seed3/predictions.parquet")).unwrap();
    let md = eval_ok(&format!("let d = \"{}\"; compare(runs(d), #{{ predictions: runs(d, \"predictions\") }}).markdown", dir.display()))
        .to_string();
    assert!(md.contains("seed 3: a record without per-sample predictions"), "{md}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_recipe_records_its_test_predictions() {
    let dir = temp_dir("comparison-recipes");
    let src = format!(
        "import \"train\" as tr;\n\
         let data = dataset(\"synthetic\", #{{ n: 300, classes: 3, audio_snr: 0.6, visual_snr: 0.5, seed: 2 }});\n\
         let out = [];\n\
         for r in [\"two_stage\", \"purify\"] {{\n\
           let rec = `{d}/${{r}}`;\n\
           let res = if r == \"two_stage\" {{ tr::two_stage(data, model(data), #{{ warmup: 1, epochs: 2, record: rec }}) }}\n\
                     else {{ tr::purify(data, model(data), #{{ warmup: 1, epochs: 2, record: rec }}) }};\n\
           let p = read_parquet(`${{rec}}/predictions.parquet`);\n\
           let c = p.sql(\"SELECT avg(CAST(pred_best = label AS DOUBLE)) AS b, avg(CAST(pred_last = label AS DOUBLE)) AS l FROM self\").rows()[0];\n\
           out += [c.b == res.best.acc, c.l == res.last.acc, p.height == data.test.len];\n\
         }}\n\
         out",
        d = dir.display()
    );
    assert_eq!(eval_ok(&src).to_string(), "[true, true, true, true, true, true]");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_resumed_run_records_the_same_predictions_as_an_uninterrupted_one() {
    let dir = temp_dir("comparison-resume");
    let whole = dir.join("whole");
    let parts = dir.join("parts");
    let _ = eval_ok(&recorded_runs(&whole, 5, ""));
    // Concat's best epoch on validation (1) comes before the stop (after epoch 2): the resumed
    // run must carry the recorded best predictions, not take its first new epoch's.
    let best = eval_ok(&format!("read_parquet(\"{}/concat/seed3/final.parquet\").rows()[0].best_epoch", whole.display()));
    assert_eq!(best.as_int().unwrap(), 1);
    // Stop after three epochs (warmup 1 + epochs 2), then resume to the full length.
    let ck = format!(", checkpoints: `{}/ck/${{v}}`", parts.display());
    let _ = eval_ok(&recorded_runs(&parts, 2, &ck));
    let _ = eval_ok(&recorded_runs(&parts, 5, &ck));
    for v in ["concat", "ogm-ge"] {
        let read = |root: &std::path::Path| {
            eval_ok(&format!("read_parquet(\"{}/{v}/seed3/predictions.parquet\").rows()", root.display())).to_string()
        };
        assert!(read(&whole) == read(&parts), "{v}: the resumed run recorded other predictions than the uninterrupted one");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Two settings' runs frames: five rows, scores chosen so the ranks are known.
const TWO_TABLES: &str = r#"
let a = frame(#{ variant: ["concat", "x", "y", "z", "w"], dataset: ["two", "two", "two", "two", "two"], best_acc: [0.80, 0.90, 0.85, 0.70, 0.60] });
let b = frame(#{ variant: ["concat", "x", "y", "z", "w", "only-here"], dataset: ["three", "three", "three", "three", "three", "three"], best_acc: [0.75, 0.95, 0.70, 0.72, 0.50, 0.99] });
"#;

#[test]
fn ranks_across_tables_match_the_hand_count_and_scipy() {
    let r = eval_ok(&format!("{TWO_TABLES} ranks([a, b], #{{ metric: \"acc\" }})")).cast::<Map>();
    let rows: Vec<String> = r["rows"].clone().cast::<Array>().iter().map(|x| x.to_string()).collect();
    assert_eq!(rows, ["concat", "x", "y", "z", "w"]);
    let ranks: Vec<f64> = r["average_ranks"].clone().cast::<Array>().iter().map(|x| x.as_float().unwrap()).collect();
    // two: x 1, y 2, concat 3, z 4, w 5; three: x 1, concat 2, z 3, y 4, w 5.
    assert_eq!(ranks, [2.5, 1.0, 3.0, 3.5, 5.0]);
    assert_eq!(r["left_out"].to_string(), "[\"only-here\"]");
    // scipy.stats.friedmanchisquare([.8, .75], [.9, .95], [.85, .7], [.7, .72], [.6, .5]):
    // statistic 6.8, p 0.14684238782543443.
    assert!((r["friedman"].as_float().unwrap() - 6.8).abs() < 1e-12, "{:?}", r["friedman"]);
    assert!((r["friedman_p"].as_float().unwrap() - 0.146_842_387_825_434_43).abs() < 1e-9, "{:?}", r["friedman_p"]);
    assert!(r["markdown"].to_string().contains("Nemenyi critical difference"));
    // A map names each table's block; two tables of one dataset are two settings.
    let named = eval_ok(&format!("{TWO_TABLES} ranks(#{{ first: a, second: b }}).average_ranks")).to_string();
    assert_eq!(named, "[2.5, 1.0, 3.0, 3.5, 5.0]");
    let same = eval_ok(&format!(
        "{TWO_TABLES} let b2 = b.select([\"variant\", \"'two' AS dataset\", \"best_acc\"]); let r = ranks([a, b2]); [r.tables, r.average_ranks]"
    ))
    .to_string();
    assert_eq!(same, "[[\"two\", \"two (table 2)\"], [2.5, 1.0, 3.0, 3.5, 5.0]]");
    let e = eval_err(&format!("{TWO_TABLES} ranks([a], #{{ metric: \"acc\" }})"));
    assert!(e.contains("two or more tables"), "{e}");
    let e = eval_err(&format!("{TWO_TABLES} ranks([a, 3])"));
    assert!(e.contains("tables[1] is a"), "{e}");
    let e = eval_err(&format!("{TWO_TABLES} ranks([a, b], #{{ metric: \"nope\" }})"));
    assert!(e.contains("no column for metric \"nope\""), "{e}");
}

#[test]
fn plot_cd_draws_the_ranks_of_several_tables() {
    let dir = temp_dir("comparison-cd");
    for ext in ["png", "svg"] {
        let path = dir.join(format!("cd.{ext}"));
        let out = eval_ok(&format!("{TWO_TABLES} plot_cd([a, b], \"{}\", #{{ metric: \"acc\" }})", path.display()));
        assert_eq!(out.to_string(), path.display().to_string());
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
    }
    let svg = std::fs::read_to_string(dir.join("cd.svg")).unwrap();
    for want in ["CD = ", "x (1.00)", "w (5.00)", "concat (2.50)"] {
        assert!(svg.contains(want), "{want} missing from the diagram");
    }
    assert!(eval(&format!("{TWO_TABLES} plot_cd([a, b], \"{}/cd.txt\")", dir.display())).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
