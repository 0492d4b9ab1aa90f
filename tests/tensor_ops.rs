//! Every tensor operation of the Rhai API against values worked out by hand (or by PyTorch's
//! documented semantics), run through the script layer.

mod common;
use common::*;

#[test]
fn construction_and_dtypes() {
    assert_eq!(values("tensor([[1, 2], [3, 4]])"), (vec![1., 2., 3., 4.], vec![2, 2]));
    assert_eq!(eval_ok("tensor([1, 2]).dtype").into_string().unwrap(), "int64");
    assert_eq!(eval_ok("tensor([1, 2.5]).dtype").into_string().unwrap(), "float32");
    assert_eq!(eval_ok("tensor([true, false]).dtype").into_string().unwrap(), "bool");
    assert_eq!(eval_ok("tensor(3.0).shape").into_array().unwrap().len(), 0);
    assert_eq!(values("zeros([2, 3])").1, vec![2, 3]);
    assert_eq!(values("ones(3)").0, vec![1., 1., 1.]);
    assert_eq!(values("full([2], 0.5)").0, vec![0.5, 0.5]);
    assert_eq!(eval_ok("full([2], 7).dtype").into_string().unwrap(), "int64");
    assert_eq!(values("arange(4)").0, vec![0., 1., 2., 3.]);
    assert_eq!(values("arange(1, 7, 2)").0, vec![1., 3., 5.]);
    assert_eq!(values("arange(0.0, 1.0, 0.25)").0, vec![0., 0.25, 0.5, 0.75]);
    assert_eq!(values("linspace(0.0, 1.0, 5)").0, vec![0., 0.25, 0.5, 0.75, 1.]);
    assert_eq!(values("eye(2)").0, vec![1., 0., 0., 1.]);
    assert_eq!(eval_ok("zeros([2, 3]).numel").as_int().unwrap(), 6);
    assert_eq!(eval_ok("zeros([2, 3]).ndim").as_int().unwrap(), 2);
    assert_eq!(eval_ok("zeros(2).device").into_string().unwrap(), "cpu");
}

#[test]
fn seeded_random_repeats() {
    let a = values("seed(7); randn([3, 2])");
    let b = values("seed(7); randn([3, 2])");
    let c = values("seed(8); randn([3, 2])");
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
    let u = values("seed(1); rand([1000])").0;
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
    let mean = u.iter().sum::<f64>() / 1000.0;
    assert!((mean - 0.5).abs() < 0.05);
}

#[test]
fn arithmetic_with_broadcasting_and_scalars() {
    let x = "let x = tensor([[1.0, 2.0], [3.0, 4.0]]);";
    assert_eq!(values(&format!("{x} x + 1")).0, vec![2., 3., 4., 5.]);
    assert_eq!(values(&format!("{x} 10 - x")).0, vec![9., 8., 7., 6.]);
    assert_eq!(values(&format!("{x} x * tensor([10.0, 100.0])")).0, vec![10., 200., 30., 400.]);
    assert_eq!(values(&format!("{x} x / 2")).0, vec![0.5, 1., 1.5, 2.]);
    assert_eq!(values(&format!("{x} 12.0 / x")).0, vec![12., 6., 4., 3.]);
    assert_eq!(values(&format!("{x} x ** 2")).0, vec![1., 4., 9., 16.]);
    assert_eq!(values(&format!("{x} 2 ** x")).0, vec![2., 4., 8., 16.]);
    assert_eq!(values(&format!("{x} -x")).0, vec![-1., -2., -3., -4.]);
    assert_eq!(values(&format!("{x} x - x.mean(1, true)")).0, vec![-0.5, 0.5, -0.5, 0.5]);
    assert_eq!(values("arange(3) / 2").0, vec![0., 0.5, 1.]);
}

#[test]
fn comparisons_give_bool_tensors() {
    let x = "let x = tensor([1.0, 2.0, 3.0]);";
    assert_eq!(eval_ok(&format!("{x} (x > 1.5).dtype")).into_string().unwrap(), "bool");
    assert_eq!(values(&format!("{x} x > 1.5")).0, vec![0., 1., 1.]);
    assert_eq!(values(&format!("{x} x >= 2")).0, vec![0., 1., 1.]);
    assert_eq!(values(&format!("{x} x < 2")).0, vec![1., 0., 0.]);
    assert_eq!(values(&format!("{x} x <= 2")).0, vec![1., 1., 0.]);
    assert_eq!(values(&format!("{x} x == 2")).0, vec![0., 1., 0.]);
    assert_eq!(values(&format!("{x} x != 2")).0, vec![1., 0., 1.]);
    assert_eq!(values(&format!("{x} 2 < x")).0, vec![0., 0., 1.]);
    assert_eq!(values(&format!("{x} x == tensor([1.0, 0.0, 3.0])")).0, vec![1., 0., 1.]);
    assert!(eval_ok(&format!("{x} equal(x, tensor([1.0, 2.0, 3.0]))")).as_bool().unwrap());
    assert!(!eval_ok(&format!("{x} equal(x, tensor([1.0, 2.0]))")).as_bool().unwrap());
    assert!(eval_ok(&format!("{x} allclose(x, x + 1e-9)")).as_bool().unwrap());
}

#[test]
fn matmul() {
    let (v, s) = values("matmul(tensor([[1.0, 2.0], [3.0, 4.0]]), tensor([[5.0], [6.0]]))");
    assert_eq!((v, s), (vec![17., 39.], vec![2, 1]));
    assert_eq!(values("tensor([[1.0, 2.0]]).matmul(eye(2))").0, vec![1., 2.]);
}

#[test]
fn reductions_with_and_without_dim() {
    let x = "let x = tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]]);";
    assert_eq!(float(&format!("{x} x.sum().item()")), 21.0);
    assert_eq!(values(&format!("{x} x.sum(0)")).0, vec![5., 7., 9.]);
    assert_eq!(values(&format!("{x} x.sum(1, true)")).1, vec![2, 1]);
    assert_eq!(float(&format!("{x} x.mean().item()")), 3.5);
    assert_eq!(values(&format!("{x} x.mean(-1)")).0, vec![3., 4.]);
    // torch.std / torch.var use Bessel's correction: var([1,5,3]) = 4.
    assert_eq!(values(&format!("{x} x.var(1)")).0, vec![4., 4.]);
    assert_close(&values(&format!("{x} x.std(1)")).0, &[2., 2.], 1e-6);
    assert_close(&[float(&format!("{x} x.var().item()"))], &[3.5], 1e-6);
    assert_eq!(float(&format!("{x} x.min().item()")), 1.0);
    assert_eq!(values(&format!("{x} x.max(0)")).0, vec![4., 5., 6.]);
    assert_eq!(values(&format!("{x} x.min(1)")).0, vec![1., 2.]);
    assert_eq!(float(&format!("{x} x.argmax().item()")), 5.0);
    assert_eq!(values(&format!("{x} x.argmax(1)")).0, vec![1., 2.]);
    assert_eq!(values(&format!("{x} x.argmin(0)")).0, vec![0., 1., 0.]);
}

#[test]
fn elementwise_math() {
    assert_eq!(values("tensor([-1.0, 2.0]).abs()").0, vec![1., 2.]);
    assert_close(&values("tensor([0.0, 1.0]).exp()").0, &[1., std::f64::consts::E], 1e-6);
    assert_close(&values("tensor([1.0, 100.0]).log()").0, &[0., 100f64.ln()], 1e-5);
    assert_eq!(values("tensor([4.0, 9.0]).sqrt()").0, vec![2., 3.]);
    assert_eq!(values("tensor([-2.0, 0.5, 3.0]).clamp(0.0, 1.0)").0, vec![0., 0.5, 1.]);
    assert_eq!(values("tensor([-2.0, 0.5, 3.0]).clamp(0, ())").0, vec![0., 0.5, 3.]);
    // softmax([0, ln 3]) = [1/4, 3/4]
    assert_close(&values("tensor([[0.0, 3.0.ln()]]).softmax(-1)").0, &[0.25, 0.75], 1e-6);
    assert_close(&values("tensor([[0.0, 3.0.ln()]]).log_softmax(1)").0, &[0.25f64.ln(), 0.75f64.ln()], 1e-6);
}

#[test]
fn shape_operations() {
    assert_eq!(values("arange(6).reshape([2, 3])").1, vec![2, 3]);
    assert_eq!(values("arange(6).reshape([-1, 2])").1, vec![3, 2]);
    assert_eq!(values("arange(6).view([3, 2])").1, vec![3, 2]);
    assert_eq!(values("arange(6).reshape([2, 3]).transpose(0, 1)"), (vec![0., 3., 1., 4., 2., 5.], vec![3, 2]));
    assert_eq!(values("zeros([2, 3, 4]).permute([2, 0, 1])").1, vec![4, 2, 3]);
    assert_eq!(values("zeros([1, 3, 1]).squeeze()").1, vec![3]);
    assert_eq!(values("zeros([1, 3, 1]).squeeze(0)").1, vec![3, 1]);
    assert_eq!(values("zeros([3]).unsqueeze(-1)").1, vec![3, 1]);
    assert_eq!(values("cat([ones(2), zeros(3)])"), (vec![1., 1., 0., 0., 0.], vec![5]));
    assert_eq!(values("cat([ones([2, 1]), zeros([2, 2])], 1)").1, vec![2, 3]);
    assert_eq!(values("stack([ones(2), zeros(2)], 1)"), (vec![1., 0., 1., 0.], vec![2, 2]));
    assert_eq!(values("zeros([2, 3]).flatten()").1, vec![6]);
}

#[test]
fn indexing_and_selection() {
    let x = "let x = arange(6).reshape([3, 2]);";
    assert_eq!(values(&format!("{x} x[1]")).0, vec![2., 3.]);
    assert_eq!(values(&format!("{x} x[-1]")).0, vec![4., 5.]);
    assert_eq!(eval_ok(&format!("{x} x[2][1].item()")).as_int().unwrap(), 5);
    assert_eq!(values(&format!("{x} x.slice(0, 1, 3)")).0, vec![2., 3., 4., 5.]);
    assert_eq!(values(&format!("{x} x.slice(1, -1, 2)")).0, vec![1., 3., 5.]);
    assert_eq!(values(&format!("{x} x.index_select(0, [2, 0])")).0, vec![4., 5., 0., 1.]);
    assert_eq!(values(&format!("{x} x.index_select(1, tensor([1]))")).0, vec![1., 3., 5.]);
    assert_eq!(values(&format!("{x} x.masked_select(x > 3)")).0, vec![4., 5.]);
    assert_eq!(values("let y = tensor([-1.0, 2.0]); where(y > 0, y, 0.0)").0, vec![0., 2.]);
    assert_eq!(values("let y = tensor([-1.0, 2.0]); where(y > 0, ones(2), zeros(2))").0, vec![0., 1.]);
}

#[test]
fn conversions_back_to_script_values() {
    assert_eq!(eval_ok("tensor([[1, 2], [3, 4]]).to_array()").to_string(), "[[1, 2], [3, 4]]");
    assert_eq!(eval_ok("tensor([0.5, 1.5]).to_array()").to_string(), "[0.5, 1.5]");
    assert_eq!(eval_ok("(tensor([1, 2]) > 1).to_array()").to_string(), "[false, true]");
    assert!(eval_ok("tensor([3]).item()").is_int());
    assert_eq!(float("tensor([[2.5]]).item()"), 2.5);
    assert!(eval_err("ones(2).item()").contains("2 elements"));
    assert_eq!(eval_ok("ones(2).to(\"float64\").dtype").into_string().unwrap(), "float64");
    assert_eq!(eval_ok("ones(2).to(\"cpu\").device").into_string().unwrap(), "cpu");
    assert_eq!(eval_ok("let a = ones(2); let b = a.clone(); b.sum().item()").as_float().unwrap(), 2.0);
}

#[test]
fn printing_follows_pytorch() {
    assert_eq!(eval_ok("to_string(tensor([[1.0, 2.0], [3.0, 4.0]]))").into_string().unwrap(), "tensor([[1., 2.],\n        [3., 4.]])");
    assert_eq!(eval_ok("`${tensor([1.5, 2.25])}`").into_string().unwrap(), "tensor([1.5000, 2.2500])");
    assert_eq!(eval_ok("to_string(arange(2000))").into_string().unwrap(), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
    assert_eq!(eval_ok("to_string(ones(2).to(\"float64\"))").into_string().unwrap(), "tensor([1., 1.], dtype=torch.float64)");
}

#[test]
fn device_reports_the_best_available() {
    let d = eval_ok("device()").into_string().unwrap();
    assert_eq!(d, if tch::Cuda::is_available() { "cuda" } else { "cpu" });
    let moved = eval_ok("ones(2).to(device()).device").into_string().unwrap();
    assert!(moved.starts_with(&d));
}

#[test]
fn stdlib_helpers() {
    assert_close(
        &[float("import \"tensors\" as tx; tx::accuracy(tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0]]), tensor([0, 1, 1]))")],
        &[2.0 / 3.0],
        1e-6,
    );
    assert_eq!(values("import \"tensors\" as tx; tx::one_hot(tensor([2, 0]), 3)").0, vec![0., 0., 1., 1., 0., 0.]);
    // population z-score of [1, 2, 3]: std = sqrt(2/3)
    let s = (2.0f64 / 3.0).sqrt();
    assert_close(&values("tensor([1.0, 2.0, 3.0]).zscore()").0, &[-1. / s, 0., 1. / s], 1e-6);
}

#[test]
fn clamp_with_int_bounds_keeps_ints() {
    assert_eq!(eval_ok("tensor([-3, 5, 9]).clamp(0, 6).dtype").into_string().unwrap(), "int64");
    assert_eq!(values("tensor([-3, 5, 9]).clamp(0, 6)").0, vec![0., 5., 6.]);
}

#[test]
fn select_and_randint() {
    assert_eq!(values("tensor([[1, 2], [3, 4]]).select(1, 0)").0, vec![1., 3.]);
    assert_eq!(values("tensor([[1, 2], [3, 4]]).select(0, -1)").0, vec![3., 4.]);
    assert!(eval_err("tensor([[1, 2]]).select(0, 1)").contains("index 1 is out of range"));
    let (v, shape) = values("seed(1); randint(2, 5, [1000])");
    assert_eq!(shape, vec![1000]);
    assert!(v.iter().all(|x| (2.0..5.0).contains(x)) && v.contains(&2.0) && v.contains(&4.0));
    assert_eq!(eval_ok("randint(0, 3, [2]).dtype").into_string().unwrap(), "int64");
    assert!(eval_err("randint(3, 3, [2])").contains("must be greater"));
}
