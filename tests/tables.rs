//! Tables from Rhai: DataFrames built from maps and rows, queried with SQL expressions,
//! written and read as Parquet and CSV, run records and `runs(dir)`, and the bad inputs the
//! issue lists (missing columns, truncated or foreign files, unwritable paths).

mod common;
use common::*;

const FRAME: &str = "let df = frame(#{ method: [\"concat\", \"prob\", \"kl\", \"concat\", \"prob\", \"kl\"], seed: [0, 0, 0, 1, 1, 1], acc: [0.90, 0.95, 0.94, 0.92, 0.97, 0.93] });";

fn dir_str(d: &std::path::Path) -> String {
    d.display().to_string().replace('\\', "/")
}

/// Runs a script file through the binary (stdout and stderr kept apart).
fn run_script(dir: &std::path::Path, src: &str) -> std::process::Output {
    let path = dir.join("script.rhai");
    std::fs::write(&path, src).unwrap();
    run_bin(&["run", path.to_str().unwrap()], "", None)
}

#[test]
fn frames_build_from_maps_and_rows_and_convert_back() {
    let v = eval_ok(&format!(
        "{FRAME}
        let rows = frame([#{{ a: 1, b: \"x\" }}, #{{ a: 2 }}, #{{ a: 3.5, b: \"z\", c: true }}]);
        let t = df.to_tensor([\"seed\", \"acc\"]);
        [df.height, df.width, df.columns, rows.column(\"a\"), rows[\"b\"], rows[\"c\"], t.shape, df.rows()[4].method, df.to_map().seed,
         frame(#{{ g: tensor([1.5, 2.5]), k: tensor([1, 2]) }}).column(\"k\")]"
    ));
    assert_eq!(
        format!("{v:?}"),
        "[6, 3, [\"acc\", \"method\", \"seed\"], [1.0, 2.0, 3.5], [\"x\", (), \"z\"], [(), (), true], [6, 2], \"prob\", [0, 0, 0, 1, 1, 1], [1, 2]]"
    );
}

#[test]
fn queries_select_filter_sort_group_pivot_join_and_sql() {
    let v = eval_ok(&format!(
        "{FRAME}
        let sel = df.select([\"method\", \"acc * 100 AS pct\"]);
        let fil = df.filter(\"acc > 0.93 AND method <> 'kl'\");
        let srt = df.sort(\"acc\", #{{ descending: true }});
        let grp = df.group_by(\"method\").agg([\"avg(acc) AS mean\", \"count(*) AS n\"]);
        let piv = df.pivot(#{{ index: \"method\", on: \"seed\", values: \"acc\" }});
        let extra = frame(#{{ method: [\"prob\", \"kl\"], family: [\"gmm\", \"gmm\"] }});
        let joined = df.join(extra, [\"method\"], \"left\");
        let q = df.sql(\"SELECT method, max(acc) AS best FROM self GROUP BY method ORDER BY best DESC\");
        [sel.columns, sel[\"pct\"][1], fil.height, srt[\"acc\"][0], grp[\"method\"], grp[\"n\"], piv.columns, piv[\"1\"],
         joined.filter(\"family IS NULL\").height, q[\"method\"], df.head(2).height]"
    ));
    let s = format!("{v:?}");
    assert!(s.starts_with("[[\"method\", \"pct\"], 95.0, 2, 0.97, [\"concat\", \"prob\", \"kl\"], [2, 2, 2], [\"method\", \"0\", \"1\"], [0.92, 0.97, 0.93], 2, [\"prob\", \"kl\", \"concat\"], 2]"), "{s}");
    let mean = float(&format!("{FRAME} df.group_by(\"method\").agg(\"avg(acc) AS m\")[\"m\"][1]"));
    assert!((mean - 0.96).abs() < 1e-12, "{mean}");
}

#[test]
fn a_missing_column_names_the_columns_there_are() {
    for q in [
        "df.select(\"accuracy\")",
        "df.filter(\"accuracy > 1\")",
        "df.sort(\"accuracy\")",
        "df.group_by(\"variant\").agg(\"avg(acc)\")",
        "df[\"accuracy\"]",
        "df.sql(\"SELECT accuracy FROM self\")",
    ] {
        let e = eval_err(&format!("{FRAME} {q}"));
        assert!(e.contains("accuracy") || e.contains("variant"), "{q}: {e}");
        assert!(e.contains("the columns are: acc, method, seed"), "{q}: the error should list the columns: {e}");
    }
    let e = eval_err(&format!("{FRAME} df.filter(\"acc >>> 2\")"));
    assert!(e.contains("filter"), "{e}");
    let e = eval_err("frame(#{ a: [1, 2], b: [1] })");
    assert!(e.contains("equal lengths"), "{e}");
    let e = eval_err("frame(#{ a: [1, \"x\"] })");
    assert!(e.contains("one kind of value"), "{e}");
}

#[test]
fn parquet_and_csv_round_trip_and_bad_paths_are_errors() {
    let dir = temp_dir("tables-io");
    let d = dir_str(&dir);
    let v = eval_ok(&format!(
        "{FRAME} df.write_parquet(\"{d}/t.parquet\"); df.write_csv(\"{d}/t.csv\");
        let p = read_parquet(\"{d}/t.parquet\"); let c = read_csv(\"{d}/t.csv\");
        [p[\"acc\"] == df[\"acc\"], p[\"method\"] == df[\"method\"], c[\"seed\"] == df[\"seed\"], c[\"acc\"] == df[\"acc\"]]"
    ));
    assert_eq!(format!("{v:?}"), "[true, true, true, true]");
    std::fs::write(dir.join("bad.parquet"), b"PAR1 not really").unwrap();
    let e = eval_err(&format!("read_parquet(\"{d}/bad.parquet\")"));
    assert!(e.contains("bad.parquet") && e.contains("not a readable Parquet file"), "{e}");
    let e = eval_err(&format!("read_csv(\"{d}/missing.csv\")"));
    assert!(e.contains("no such file"), "{e}");
    std::fs::write(dir.join("file"), b"x").unwrap();
    let e = eval_err(&format!("{FRAME} df.write_parquet(\"{d}/file/t.parquet\")"));
    assert!(e.contains("file"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn runs_loads_every_record_and_skips_truncated_or_foreign_files_with_a_warning() {
    let dir = temp_dir("tables-runs");
    let d = dir_str(&dir);
    let _ = eval_ok(&format!(
        "for m in [\"concat\", \"prob\"] {{ for s in [0, 1] {{
            save_run(`{d}/t2/${{m}}/seed${{s}}`, #{{ config: #{{ recipe: m, seed: s, config: #{{ gap: m, seed: s }} }},
                epochs: [#{{ epoch: 0, loss: 1.0 }}, #{{ epoch: 1, loss: 0.5 }}], final: #{{ last_acc: 0.9 + 0.01 * s }} }});
        }} }}"
    ));
    // A run in progress (no final table), a truncated final table, and a foreign config.
    let _ = eval_ok(&format!("save_run(\"{d}/t2/kl/seed0\", #{{ config: #{{ recipe: \"kl\", seed: 0 }} }})"));
    let trunc = dir.join("t2/prob/seed1/final.parquet");
    let bytes = std::fs::read(&trunc).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::create_dir_all(dir.join("t2/foreign")).unwrap();
    std::fs::write(dir.join("t2/foreign/config.json"), b"[1, 2").unwrap();
    let out = run_script(&dir, &format!("let r = runs(\"{d}/t2\"); print(r.select([\"run\", \"complete\", \"gap\", \"last_acc\"]).sort(\"run\").rows()); print(runs(\"{d}/t2\", \"epochs\").height);"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: skipped") && stderr.contains("seed1/final.parquet") && stderr.contains("foreign/config.json"),
        "{stderr}"
    );
    assert!(stdout.contains("\"run\": \"concat/seed0\"") && stdout.contains("\"run\": \"kl/seed0\""), "{stdout}");
    assert!(!stdout.contains("prob/seed1"), "the truncated run must be skipped: {stdout}");
    assert!(stdout.contains("\"complete\": false") && stdout.contains("\"gap\": \"concat\""), "{stdout}");
    assert!(stdout.lines().last().unwrap().trim() == "8", "four runs of two epochs (prob/seed1's epochs still load): {stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_recipe_with_record_writes_config_epochs_fits_samples_and_final() {
    let dir = temp_dir("tables-record");
    let d = dir_str(&dir);
    let v = eval_ok(&format!(
        "let data = dataset(\"synthetic\", #{{ n: 240, classes: 3, audio_shape: [8], visual_shape: [8], seed: 3 }});
        import \"train\" as tr;
        tr::two_stage(data, model(data, #{{ seed: 1 }}), #{{ warmup: 2, epochs: 3, refit: 2, record: \"{d}/run\", csv: true }});
        let r = runs(\"{d}\");
        let e = read_parquet(\"{d}/run/epochs.parquet\");
        let f = read_parquet(\"{d}/run/fits.parquet\");
        let s = read_parquet(\"{d}/run/samples.parquet\");
        [r.height, r[\"recipe\"][0], r[\"warmup\"][0], r[\"rho\"][0], r[\"family\"][0], r[\"dataset\"][0], r[\"device\"][0], r[\"complete\"][0],
         e.height, e[\"stage\"], f[\"epoch\"], s.height == 2 * data.train.len, s.columns, read_csv(\"{d}/run/final.csv\").height,
         r[\"git_commit\"][0] != (), r[\"last_acc\"][0] > 0.0]"
    ));
    assert_eq!(
        format!("{v:?}"),
        "[1, \"two_stage\", 2, 0.95, \"gmm\", \"synthetic\", \"cpu\", true, 5, [\"warmup\", \"warmup\", \"adaptive\", \"adaptive\", \"adaptive\"], [2, 4], true, [\"epoch\", \"index\", \"gap\", \"z\", \"w0\"], 1, true, true]"
    );
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("run/config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["alpha"], 1.0, "every default is recorded: {config}");
    assert_eq!(
        config["splits"]["train"].as_i64().unwrap()
            + config["splits"]["test"].as_i64().unwrap()
            + config["splits"]["val"].as_i64().unwrap(),
        240
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn figures_draw_from_run_folders_and_frames_and_refuse_empty_tables() {
    let dir = temp_dir("tables-figures");
    let d = dir_str(&dir);
    let _ = eval_ok(&format!(
        "let data = dataset(\"synthetic\", #{{ n: 240, classes: 3, audio_shape: [8], visual_shape: [8], seed: 3 }});
        import \"train\" as tr;
        let m = model(data, #{{ seed: 1 }});
        tr::two_stage(data, m, #{{ warmup: 1, epochs: 2, refit: 1, record: \"{d}/run\" }});
        plot_curves(\"{d}/run\", \"{d}/acc.png\");
        plot_curves(\"{d}/run\", \"{d}/loss.svg\", #{{ y: [\"ce_first\", \"ce_second\"] }});
        plot_curves(runs(\"{d}\", \"epochs\"), \"{d}/by_run.png\", #{{ y: \"test_acc\", by: \"run\" }});
        plot_evolution(\"{d}/run\", \"{d}/evolution.png\");
        let t = frame(#{{ variant: [\"a\", \"b\"], acc: [0.9, 0.8], sd: [0.01, 0.02] }});
        plot_bars(t, \"{d}/bars.png\", #{{ x: \"variant\", y: [\"acc\"], err: [\"sd\"] }});
        let b = (); for x in data.test.batches(#{{ batch: 64 }}) {{ b = x; break; }}
        let out = forward(m, b);
        plot_embedding(#{{ audio: out.features_first, visual: out.features_second }}, b.labels, \"{d}/emb.png\", #{{ quiet: true }});
        plot_embedding(m, data.test, \"{d}/fig4/tsne.png\", #{{ perplexity: 10, quiet: true }});
        plot_embedding(m, data.test, \"{d}/fig4/pca.png\", #{{ projection: \"pca\" }});"
    ));
    for f in ["acc.png", "loss.svg", "by_run.png", "evolution.png", "bars.png", "emb.png", "fig4/tsne.png", "fig4/pca.png"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_else(|_| panic!("{f} was not written"));
        assert!(bytes.len() > 1000, "{f} is {} bytes", bytes.len());
    }
    let e = eval_err(&format!("plot_curves(frame(#{{ epoch: [], test_acc: [] }}), \"{d}/empty.png\", #{{ y: \"test_acc\" }})"));
    assert!(e.contains("no points to draw"), "{e}");
    assert!(!dir.join("empty.png").exists());
    let e = eval_err(&format!("plot_bars(frame(#{{ v: [\"a\"], acc: [0.9] }}), \"{d}/x.png\", #{{ x: \"v\", y: [\"accuracy\"] }})"));
    assert!(e.contains("no column \"accuracy\"") && e.contains("the columns are: acc, v"), "{e}");
    let e = eval_err(&format!("let d = dataset(\"synthetic\", #{{ n: 90, classes: 3 }}); plot_embedding(model(d), d.test, \"{d}/x.png\", #{{ projection: \"pca\", perplexity: 5 }})"));
    assert!(e.contains("perplexity is a t-SNE option"), "{e}");
    let e = eval_err(&format!("let d = dataset(\"synthetic\", #{{ n: 90, classes: 3 }}); plot_embedding(model(d), d.test, \"{d}/x.png\")"));
    assert!(e.contains("lower perplexity"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sweeps_run_every_variant_and_seed_once_and_summarize() {
    let dir = temp_dir("tables-sweep");
    let d = dir_str(&dir);
    let src = format!(
        "import \"experiments\" as ex;
        let spec = ex::data_spec(\"synthetic\");
        spec.opts.n = 240;
        let variants = [#{{ name: \"concat\", recipe: \"baseline\", cfg: #{{}} }}, #{{ name: \"ours\", recipe: \"two_stage\", cfg: #{{ gap: \"kl\" }} }}];
        let df = ex::sweep(spec, variants, [0, 1], \"{d}/sweep\", #{{ warmup: 1, epochs: 1, lr: 0.01 }});
        let s = ex::summarize(df, \"variant\", [\"last_acc\"]);
        print([df.height, s[\"variant\"], s[\"n\"], ex::grid(#{{ a: [1, 2], b: [\"x\", \"y\", \"z\"] }}).len, ex::markdown(s, \"variant\", [\"last_acc\"], [\"acc\"]).contains(\"±\")]);"
    );
    let first = run_script(&dir, &src);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.trim_end().ends_with("[4, [\"concat\", \"ours\"], [2, 2], 6, true]"), "{out}");
    // Run again: every run is recorded, so nothing trains.
    let again = run_script(&dir, &src);
    let out = String::from_utf8_lossy(&again.stdout);
    assert_eq!(out.matches("recorded, skipped").count(), 4, "{out}");
    std::fs::remove_dir_all(&dir).ok();
}
