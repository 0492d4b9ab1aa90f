//! Mixture models on 1-D data (the paper's Eq. 8-9 and Table V): Gaussian, Student-t and
//! Laplace mixtures fitted by EM in f64, with posteriors, densities and BIC/AIC.
//!
//! - `family`: the component distributions and their log-densities
//! - `init`: k-means++ starting points
//! - `em`: the E-step, each family's M-step, and the loop
//! - `fit`: options, data checks, several initialisations, k by BIC
//! - `parallel`: EM passes split across threads
//! - `model`: the fitted `Mixture` and what it answers

pub mod em;
pub mod family;
pub mod fit;
pub mod init;
pub mod model;
pub mod parallel;
pub mod special;

pub use family::{Component, Family};
pub use fit::{check_data, fit, FitOptions};
pub use model::{BalancedRule, Mixture, RawUnits};

/// Components are held in fixed-size buffers in the E-step; more than this is never useful in 1-D.
pub const MAX_COMPONENTS: usize = 16;
