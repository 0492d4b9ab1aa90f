//! fit_mixture, the Mixture type and plot_mixture from Rhai: fields, posteriors, printing,
//! figures on disk, and every bad input as a script error with its position.

mod common;
use common::*;

const BIMODAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mixture/bimodal.npy");

fn with_fit(body: &str) -> String {
    format!("let x = load_npy(\"{BIMODAL}\");\nlet mix = fit_mixture(x, #{{ family: \"gmm\", k: 2, n_init: 3, seed: 1 }});\n{body}")
}

#[test]
fn fields_and_posteriors() {
    // Fixture weights from sklearn: 0.7 / 0.3 by construction, means ascending.
    let w = eval_ok(&with_fit("mix.weights")).into_array().unwrap();
    assert_eq!(w.len(), 2);
    assert!((w[0].as_float().unwrap() - 0.7).abs() < 0.05);
    assert_eq!(float(&with_fit("mix.k")), 2.0);
    assert_eq!(float(&with_fit("mix.balanced")), 0.0);
    assert!(eval_ok(&with_fit("mix.converged")).as_bool().unwrap());
    assert!(float(&with_fit("mix.bic")) > float(&with_fit("mix.aic")));
    assert!(eval_ok(&with_fit("mix.dofs")).into_array().unwrap().is_empty());
    let (post, shape) = values(&with_fit("mix.posterior(x.reshape([-1, 1]))"));
    assert_eq!(shape, vec![2000, 2]);
    assert!(post.chunks(2).all(|r| (r[0] + r[1] - 1.0).abs() < 1e-9));
    let (bw, shape) = values(&with_fit("mix.balance_weights([0.0, -0.5, 1.8])"));
    assert_eq!(shape, vec![3, 2]);
    assert!(bw[2] > 0.9 && bw[5] > 0.9, "{bw:?}"); // -0.5 is balanced, 1.8 is not
                                                   // Arrays in, float32 out; float64 tensors keep float64.
    assert_eq!(eval_ok(&with_fit("mix.pdf([0.0, 1.0]).dtype")).into_string().unwrap(), "float32");
    assert_eq!(eval_ok(&with_fit("mix.pdf(x).dtype")).into_string().unwrap(), "float64");
    let m = eval_ok(&with_fit("mix.to_map()")).cast::<rhai::Map>();
    for key in ["family", "weights", "means", "scales", "loglik", "bic", "aic", "n_iter", "converged", "balanced", "balanced_rule"] {
        assert!(m.contains_key(key), "to_map lacks {key}");
    }
    // The zero rule with raw units: means mapped back through raw = mean + std * z.
    assert_eq!(float(&with_fit("mix.with_rule(\"zero\", #{ mean: -1.8, std: 1.0 }).balanced")), 1.0);
}

#[test]
fn families_and_bic_choice_from_script() {
    assert_eq!(eval_ok(&with_fit("fit_mixture(x, #{ family: \"smm\" }).dofs.len()")).as_int().unwrap(), 2);
    assert_eq!(eval_ok(&with_fit("fit_mixture(x, #{ family: \"lmm\" }).family")).into_string().unwrap(), "lmm");
    assert_eq!(float(&with_fit("fit_mixture(x, #{ k: [1, 2, 3] }).k")), 2.0);
    assert_eq!(float(&with_fit("fit_mixture(x, #{ k: [1, 2, 3] }).to_map().selection.len()")), 3.0);
    // Same seed, same fit; default options work.
    assert_eq!(float(&with_fit("fit_mixture(x, #{ seed: 9 }).loglik - fit_mixture(x, #{ seed: 9 }).loglik")), 0.0);
    assert!(float(&with_fit("fit_mixture(x).loglik")).is_finite());
}

#[test]
fn mixture_prints_a_readable_table() {
    let s = eval_ok(&with_fit("mix.to_string()")).into_string().unwrap();
    assert!(s.starts_with("Mixture(gmm, k=2, n=2000, loglik="), "{s}");
    assert!(s.contains("balanced") && s.contains("imbalanced") && s.contains("converged in"), "{s}");
    let out = run_bin(&["repl"], &format!("{}\nmix\n", with_fit("").replace('\n', " ")), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Mixture(gmm, k=2"), "{stdout}");
}

#[test]
fn bad_input_is_a_script_error_with_position() {
    let cases = [
        ("fit_mixture(tensor([1.0, 0.0 / 0.0, 2.0, 1.0 / 0.0]), #{})", "2 non-finite value(s)"),
        ("fit_mixture(tensor([1.0, 0.0 / 0.0, 2.0, 1.0 / 0.0]), #{})", "index 1"),
        ("fit_mixture([1.0], #{ k: 2 })", "1 point(s) for 2 components"),
        ("fit_mixture([1.0, 2.0], #{ k: 0 })", "k = 0"),
        ("fit_mixture([1.0, 2.0], #{ family: \"bmm\" })", "unknown mixture family \"bmm\""),
        ("fit_mixture([1.0, 2.0], #{ n_inits: 3 })", "unknown option \"n_inits\""),
        ("fit_mixture([1.0, 2.0], #{ k: \"two\" })", "option k must be an int"),
        ("fit_mixture([1.0, 2.0], #{ balanced_rule: \"largest\" })", "unknown balanced_rule"),
        ("fit_mixture(randn([4, 2]), #{})", "got shape [4, 2]"),
        ("fit_mixture([1.0, \"a\"], #{})", "element 1"),
        ("fit_mixture([1.0, 2.0, 3.0], #{ raw: #{ mean: 0.0, std: 0.0 } })", "std finite and > 0"),
        ("fit_mixture([1.0, 2.0, 3.0], #{}).posterior(randn([3, 2]))", "got shape [3, 2]"),
        ("fit_mixture([1.0, 2.0, 3.0], #{}).posterior([0.0, 0.0 / 0.0])", "posterior: the data hold 1 non-finite"),
        ("fit_mixture([1.0, 2.0, 3.0], #{}).pdf([1.0 / 0.0])", "pdf: the data hold 1 non-finite"),
    ];
    for (src, want) in cases {
        let e = eval_err(&format!("let a = 1;\n{src}"));
        assert!(e.contains(want), "{src}: {e}");
        assert!(e.contains("test.rhai:2:"), "{src}: no position in {e}");
    }
    // All values equal: a valid fit, no NaN anywhere.
    let m = eval_ok("fit_mixture([0.5, 0.5, 0.5, 0.5], #{}).to_map()").cast::<rhai::Map>();
    for key in ["loglik", "bic", "aic"] {
        assert!(m[key].as_float().unwrap().is_finite(), "{key}");
    }
    for key in ["weights", "means", "scales"] {
        assert!(m[key].clone().into_array().unwrap().iter().all(|v| v.as_float().unwrap().is_finite()), "{key}");
    }
}

#[test]
fn plot_mixture_writes_png_and_svg() {
    let dir = temp_dir("plot_mixture");
    let png = dir.join("gap.png");
    let svg = dir.join("sub/gap.svg");
    let _ = eval_ok(&with_fit(&format!(
        "plot_mixture(x, mix, \"{}\"); plot_mixture(x, fit_mixture(x, #{{ family: \"smm\", k: 3 }}), \"{}\", #{{ bins: 30, title: \"SMM\" }})",
        png.display(),
        svg.display()
    )));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 10_000, "a 900x560 figure with text and curves: {} bytes", bytes.len());
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg") && text.contains("balanced (component") && text.contains("imbalanced") && text.contains("SMM"));
    // No temporary files are left behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty());
}

#[test]
fn plot_mixture_errors_write_nothing() {
    let dir = temp_dir("plot_mixture_bad");
    let cases = [
        ("plot_mixture([], mix, \"{}/empty.png\")", "empty"),
        ("plot_mixture(x, mix, \"{}/gap.jpg\")", ".png or .svg"),
        ("plot_mixture(x, mix, \"{}/w.png\", #{ width: 10 })", "at least 200 x 150"),
        ("plot_mixture(x, mix, \"{}/w.png\", #{ colour: 1 })", "unknown option \"colour\""),
        ("plot_mixture([1.0, 1.0 / 0.0], mix, \"{}/inf.png\")", "non-finite"),
    ];
    for (src, want) in cases {
        let e = eval_err(&with_fit(&src.replace("{}", &dir.display().to_string())));
        assert!(e.contains(want) && e.contains("test.rhai:3:"), "{src}: {e}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "an error must not leave a file");
    let e = eval_err(&with_fit("plot_mixture(x, mix, \"/proc/no/such/dir/gap.png\")"));
    assert!(e.contains("/proc/no/such/dir"), "{e}");
}
