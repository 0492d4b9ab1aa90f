//! Printing tensors the way PyTorch does (`torch._tensor_str`), so output reads familiar:
//! `tensor([[1., 2.],\n        [3., 4.]])`, four decimals or scientific notation chosen from the
//! values shown, at most 1,000 elements before summarising with `...` (3 edge items per dim),
//! lines wrapped at 80 columns, and dtype/device suffixes when they are not the defaults.

use super::dtype::kind_name;
use super::nested::{flat_values, Nested};
use super::{check, device::device_name};
use crate::error::Result;
use tch::{Device, Kind, Tensor};

const THRESHOLD: usize = 1000;
const EDGE: i64 = 3;
const LINE_WIDTH: usize = 80;

/// Renders a tensor as PyTorch's `repr` would.
pub fn format_tensor(tensor: &Tensor) -> Result<String> {
    let shape = tensor.size();
    let kind = check("print", tensor.f_kind())?;
    let (shown, summarized) = summarize(tensor, &shape)?;
    let shown_shape = shown.size();
    let values = flat_values(&shown)?;
    let cells = Formatter::new(&values).render_all(&values);
    let prefix = "tensor(";
    let body = if shape.contains(&0) {
        "[]".to_string()
    } else {
        let mut out = String::new();
        write_block(&mut out, &cells, &shown_shape, &summarized, 0, prefix.len());
        out
    };
    let mut suffix = Vec::new();
    if shape.contains(&0) && shape.len() != 1 {
        let dims = shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        suffix.push(format!("size=({dims}{})", if shape.len() == 1 { "," } else { "" }));
    }
    let device = tensor.device();
    if device != Device::Cpu {
        suffix.push(format!("device='{}'", device_name(device)));
    }
    if !matches!(kind, Kind::Float | Kind::Int64 | Kind::Bool) {
        suffix.push(format!("dtype=torch.{}", kind_name(kind)));
    }
    let suffix = suffix.iter().map(|s| format!(", {s}")).collect::<String>();
    Ok(format!("{prefix}{body}{suffix})"))
}

/// Keeps the first and last EDGE entries of every dim longer than 2*EDGE when the tensor has more
/// than THRESHOLD elements; returns which dims were cut.
fn summarize(tensor: &Tensor, shape: &[i64]) -> Result<(Tensor, Vec<bool>)> {
    let mut shown = tensor.shallow_clone();
    let mut cut = vec![false; shape.len()];
    if tensor.numel() > THRESHOLD {
        for (dim, &n) in shape.iter().enumerate() {
            if n > 2 * EDGE {
                let head = check("print", shown.f_narrow(dim as i64, 0, EDGE))?;
                let tail = check("print", shown.f_narrow(dim as i64, n - EDGE, EDGE))?;
                shown = check("print", Tensor::f_cat(&[head, tail], dim as i64))?;
                cut[dim] = true;
            }
        }
    }
    Ok((shown, cut))
}

fn write_block(out: &mut String, cells: &[String], shape: &[i64], cut: &[bool], dim: usize, indent: usize) {
    if shape.is_empty() {
        out.push_str(&cells[0]);
        return;
    }
    let n = shape[0] as usize;
    let stride = cells.len() / n.max(1);
    out.push('[');
    if shape.len() == 1 {
        let width = cells.iter().map(String::len).max().unwrap_or(0) + 2;
        let per_line = (LINE_WIDTH.saturating_sub(indent) / width).max(1);
        let mut items: Vec<&str> = cells.iter().map(String::as_str).collect();
        if cut[dim] {
            items.insert(EDGE as usize, " ...");
        }
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
                if i % per_line == 0 {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent + 1));
                } else {
                    out.push(' ');
                }
            }
            out.push_str(item);
        }
    } else {
        let sep = format!(",{}{}", "\n".repeat(shape.len() - 1), " ".repeat(indent + 1));
        for i in 0..n {
            if i > 0 {
                out.push_str(&sep);
            }
            if cut[dim] && i == EDGE as usize {
                out.push_str("...");
                out.push_str(&sep);
            }
            write_block(out, &cells[i * stride..(i + 1) * stride], &shape[1..], cut, dim + 1, indent + 1);
        }
    }
    out.push(']');
}

/// Chooses one number format for all shown values, as PyTorch's `_Formatter` does.
struct Formatter {
    mode: Mode,
    width: usize,
}

#[derive(Clone, Copy)]
enum Mode {
    Plain,
    IntegralFloat,
    Fixed,
    Scientific,
}

impl Formatter {
    fn new(values: &[Nested]) -> Self {
        let floats: Vec<f64> = values.iter().filter_map(|v| if let Nested::Float(f) = v { Some(*f) } else { None }).collect();
        let mode = if floats.is_empty() {
            Mode::Plain
        } else {
            let finite: Vec<f64> = floats.iter().copied().filter(|f| f.is_finite() && *f != 0.0).map(f64::abs).collect();
            let integral = floats.iter().filter(|f| f.is_finite()).all(|f| f.fract() == 0.0);
            let (lo, hi) = finite.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &f| (lo.min(f), hi.max(f)));
            if finite.is_empty() {
                if integral {
                    Mode::IntegralFloat
                } else {
                    Mode::Fixed
                }
            } else if integral {
                if hi / lo > 1000.0 || hi > 1e8 {
                    Mode::Scientific
                } else {
                    Mode::IntegralFloat
                }
            } else if hi / lo > 1000.0 || hi > 1e8 || lo < 1e-4 {
                Mode::Scientific
            } else {
                Mode::Fixed
            }
        };
        let mut f = Formatter { mode, width: 0 };
        // As PyTorch: float widths come from the nonzero finite values only (nan, inf and 0
        // neither widen nor get padding of their own); ints and bools use every value.
        f.width = values
            .iter()
            .filter(|v| !matches!(v, Nested::Float(x) if !x.is_finite() || *x == 0.0))
            .map(|v| f.raw(v).len())
            .max()
            .unwrap_or(0);
        f
    }

    fn raw(&self, v: &Nested) -> String {
        match v {
            Nested::Bool(b) => {
                if *b {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            Nested::Int(i) => i.to_string(),
            Nested::Float(f) if f.is_nan() => "nan".into(),
            Nested::Float(f) if f.is_infinite() => {
                if *f > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                }
            }
            Nested::Float(f) => match self.mode {
                Mode::IntegralFloat | Mode::Plain => format!("{f:.0}."),
                Mode::Fixed => format!("{f:.4}"),
                Mode::Scientific => scientific(*f),
            },
            Nested::List(_) => String::new(),
        }
    }

    fn render_all(&self, values: &[Nested]) -> Vec<String> {
        values.iter().map(|v| format!("{:>width$}", self.raw(v), width = self.width)).collect()
    }
}

/// `1.0000e-05` rather than Rust's `1.0000e-5`.
fn scientific(f: f64) -> String {
    let s = format!("{f:.4e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => format!("{mantissa}e{:+03}", exp.parse::<i32>().unwrap_or(0)),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(values).reshape(shape)
    }

    #[test]
    fn matches_pytorch_repr() {
        assert_eq!(format_tensor(&t(&[1., 2., 3., 4.], &[2, 2])).unwrap(), "tensor([[1., 2.],\n        [3., 4.]])");
        assert_eq!(format_tensor(&t(&[1.5, 2.25], &[2])).unwrap(), "tensor([1.5000, 2.2500])");
        assert_eq!(format_tensor(&t(&[1e-5, 1.0], &[2])).unwrap(), "tensor([1.0000e-05, 1.0000e+00])");
        assert_eq!(format_tensor(&Tensor::from_slice(&[1i64, -20, 3])).unwrap(), "tensor([  1, -20,   3])");
        assert_eq!(format_tensor(&Tensor::from_slice(&[true, false])).unwrap(), "tensor([ True, False])");
        assert_eq!(format_tensor(&Tensor::from(3.5f32)).unwrap(), "tensor(3.5000)");
        assert_eq!(format_tensor(&Tensor::from_slice(&[1.0f64, 2.0])).unwrap(), "tensor([1., 2.], dtype=torch.float64)");
        assert_eq!(format_tensor(&Tensor::from_slice::<f32>(&[])).unwrap(), "tensor([])");
        assert_eq!(format_tensor(&t(&[f32::NAN, 1.0], &[2])).unwrap(), "tensor([nan, 1.])");
        assert_eq!(format_tensor(&t(&[0.0, 100.0], &[2])).unwrap(), "tensor([  0., 100.])");
    }

    #[test]
    fn three_dims_separate_blocks_with_blank_lines() {
        let x = Tensor::arange(8, (Kind::Int64, Device::Cpu)).reshape([2, 2, 2]);
        assert_eq!(format_tensor(&x).unwrap(), "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]])");
    }

    #[test]
    fn large_tensors_are_summarised() {
        let x = Tensor::arange(2000, (Kind::Int64, Device::Cpu));
        assert_eq!(format_tensor(&x).unwrap(), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
        let m = Tensor::arange(2000, (Kind::Int64, Device::Cpu)).reshape([40, 50]);
        let s = format_tensor(&m).unwrap();
        assert!(s.starts_with("tensor([[   0,    1,    2,  ...,   47,   48,   49],\n        [  50,"));
        assert!(s.contains("        ...,\n"));
        assert!(s.ends_with("[1950, 1951, 1952,  ..., 1997, 1998, 1999]])"));
    }

    #[test]
    fn long_rows_wrap_at_80_columns() {
        let x = Tensor::arange(30, (Kind::Float, Device::Cpu)).f_mul_scalar(1.5).unwrap();
        let s = format_tensor(&x).unwrap();
        // Exactly what PyTorch 2.13 prints for torch.arange(30) * 1.5.
        let expected = "tensor([ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,\n        12.0000, 13.5000, 15.0000, 16.5000, 18.0000, 19.5000, 21.0000, 22.5000,\n        24.0000, 25.5000, 27.0000, 28.5000, 30.0000, 31.5000, 33.0000, 34.5000,\n        36.0000, 37.5000, 39.0000, 40.5000, 42.0000, 43.5000])";
        assert_eq!(s, expected);
    }
}
