//! .npy and .safetensors: reading files Python wrote (fixtures from
//! tests/fixtures/gen_tensor_files.py), and Python reading files we wrote.

mod common;
use common::*;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tensors");

#[test]
fn reads_numpy_files() {
    let (v, s) = values(&format!("load_npy(\"{FIX}/f64_2x3.npy\")"));
    assert_eq!((v, s), (vec![0., 0.25, 0.5, 0.75, 1., 1.25], vec![2, 3]));
    assert_eq!(eval_ok(&format!("load_npy(\"{FIX}/f64_2x3.npy\").dtype")).into_string().unwrap(), "float64");
    assert_eq!(values(&format!("load_npy(\"{FIX}/i32_4.npy\")")).0, vec![-2., 0., 7., 1048576.]);
    assert_eq!(eval_ok(&format!("load_npy(\"{FIX}/i32_4.npy\").dtype")).into_string().unwrap(), "int32");
    assert_eq!(eval_ok(&format!("load_npy(\"{FIX}/bool_3.npy\").to_array()")).to_string(), "[true, false, true]");
}

#[test]
fn reads_safetensors_files() {
    let m = format!("let m = load_safetensors(\"{FIX}/layer.safetensors\");");
    assert_eq!(values(&format!("{m} m.weight")), (vec![-1.5, -0.5, 0.5, 1.5], vec![2, 2]));
    assert_eq!(values(&format!("{m} m.bias")).0, vec![3., -4.]);
    assert_eq!(eval_ok(&format!("{m} m.bias.dtype")).into_string().unwrap(), "int64");
}

#[test]
fn round_trip_and_python_reads_what_we_write() {
    let dir = temp_dir("files");
    let d = dir.display();
    let _ = eval_ok(&format!(
        "let x = arange(6).reshape([2, 3]) / 2; x.save_npy(\"{d}/x.npy\");\n\
         save_safetensors(#{{ x: x, n: tensor([1, 2]) }}, \"{d}/both.safetensors\");"
    ));
    assert_eq!(values(&format!("load_npy(\"{d}/x.npy\")")).0, vec![0., 0.5, 1., 1.5, 2., 2.5]);
    assert_eq!(values(&format!("load_safetensors(\"{d}/both.safetensors\").n")).0, vec![1., 2.]);
    // No temporary files left behind by the atomic writes.
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");

    let python = std::env::var("GAPSCOPE_PYTHON").expect("GAPSCOPE_PYTHON is set by scripts/setup.sh in .cargo/config.toml");
    let check = format!(
        "import numpy as np; from safetensors.numpy import load_file\n\
         x = np.load('{d}/x.npy'); t = load_file('{d}/both.safetensors')\n\
         assert x.shape == (2, 3) and abs(x.sum() - 7.5) < 1e-6, x\n\
         assert (t['x'] == x).all() and list(t['n']) == [1, 2], t\n\
         print('ok')"
    );
    let out = std::process::Command::new(python).args(["-c", &check]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn corrupt_files_are_errors() {
    let dir = temp_dir("corrupt");
    std::fs::write(dir.join("bad.npy"), b"\x93NUMPY garbage").unwrap();
    std::fs::write(dir.join("bad.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let e = eval_err(&format!("load_npy(\"{}/bad.npy\")", dir.display()));
    assert!(e.contains("bad.npy"), "{e}");
    let e = eval_err(&format!("load_safetensors(\"{}/bad.safetensors\")", dir.display()));
    assert!(e.contains("bad.safetensors"), "{e}");
    let e = eval_err("save_safetensors(#{ a: 1 }, \"/tmp/x.safetensors\")");
    assert!(e.contains("'a' is not a tensor"), "{e}");
}
