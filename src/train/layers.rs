//! The few layers the encoders and heads are built from, as variables on a `VarStore` path
//! (so parameter names follow PyTorch's: `conv1.weight`, `bn1.running_mean`, ...) and forward
//! passes through fallible libtorch calls, so a bad input is an error, never a panic.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use tch::nn::{self, Init};

pub struct Conv {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: i64,
    pub padding: i64,
}

impl Conv {
    /// k x k convolution, Kaiming-normal (fan out, ReLU) as torchvision's ResNet initialises.
    pub fn new(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64, bias: bool) -> Conv {
        let init = Init::Kaiming {
            dist: nn::init::NormalOrUniform::Normal,
            fan: nn::init::FanInOut::FanOut,
            non_linearity: nn::init::NonLinearity::ReLU,
        };
        let weight = p.var("weight", &[cout, cin, k, k], init);
        let bias = bias.then(|| p.var("bias", &[cout], Init::Const(0.0)));
        Conv { weight, bias, stride, padding }
    }

    /// As `new` with a bias, initialised as PyTorch's `nn.Conv2d` does when nothing overrides it:
    /// uniform in ±1/√(cin·k·k) (PMR's compress stack re-initialises only the weights).
    pub fn with_default_bias(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64) -> Conv {
        let mut conv = Conv::new(p, cin, cout, k, stride, padding, false);
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        conv.bias = Some(p.var("bias", &[cout], Init::Uniform { lo: -bound, up: bound }));
        conv
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.f_conv2d(&self.weight, self.bias.as_ref(), [self.stride], [self.padding], [1], 1).map_err(Error::from)
    }
}

/// A transposed convolution (`nn.ConvTranspose2d`, no padding), with PyTorch's default init:
/// weight [cin, cout, kh, kw] and bias uniform in ±1/√(cout·kh·kw).
pub struct ConvTranspose {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: i64,
}

impl ConvTranspose {
    pub fn new(p: &nn::Path, cin: i64, cout: i64, k: [i64; 2], stride: i64) -> ConvTranspose {
        let bound = 1.0 / ((cout * k[0] * k[1]) as f64).sqrt();
        ConvTranspose {
            weight: p.var("weight", &[cin, cout, k[0], k[1]], Init::Uniform { lo: -bound, up: bound }),
            bias: p.var("bias", &[cout], Init::Uniform { lo: -bound, up: bound }),
            stride,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.f_conv_transpose2d(&self.weight, Some(&self.bias), [self.stride], [0], [0], 1, [1]).map_err(Error::from)
    }
}

pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
}

impl BatchNorm {
    /// Weight 1, bias 0 (the public code's BN init), PyTorch's momentum 0.1 and eps 1e-5.
    pub fn new(p: &nn::Path, c: i64) -> BatchNorm {
        BatchNorm {
            weight: p.var("weight", &[c], Init::Const(1.0)),
            bias: p.var("bias", &[c], Init::Const(0.0)),
            running_mean: p.zeros_no_train("running_mean", &[c]),
            running_var: p.ones_no_train("running_var", &[c]),
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Tensor::f_batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            0.1,
            1e-5,
            true,
        )
        .map_err(Error::from)
    }
}

pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    /// Xavier-normal weights (the public code's init for linear layers), zero bias.
    pub fn new(p: &nn::Path, din: i64, dout: i64) -> Linear {
        let std = (2.0 / (din + dout) as f64).sqrt();
        Linear {
            weight: p.var("weight", &[dout, din], Init::Randn { mean: 0.0, stdev: std }),
            bias: p.var("bias", &[dout], Init::Const(0.0)),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.f_linear(&self.weight, Some(&self.bias)).map_err(Error::from)
    }
}

pub fn relu(x: Tensor) -> Result<Tensor> {
    x.f_relu().map_err(Error::from)
}
